#!/usr/bin/env python3
"""test_list_index.py - the remediations list filtered by repository (the
dashboard's ?repository=, compared without case) is read from an index,
newest first, without sorting: on SQLite the index on (repository COLLATE
NOCASE, created_ms, task_id), on PostgreSQL the one on (lower(repository),
created_ms, task_id) (migration 22). A healer server makes the schema, the
table gets 20,000 tasks over 200 repositories and is analyzed, then the
list's statement (src/store/sqlite_ledger.c hl_sq_task_page,
src/store/pg_ledger.c) is explained. Run plain for SQLite, through
tests/pg/pgrun.py for PostgreSQL. Standard library only; prints TAP."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "pg"))
import pgtest  # noqa: E402
from tap import check, finish, run  # noqa: E402

HEALER = os.environ["HEALER_BIN"]
TMP = tempfile.mkdtemp(prefix="healer-listix-")
COLS = ("task_id, repository, branch, workflow, job, agent, failure_type, kind, reason, state,"
        " attempts, pr_number, created_ms, updated_ms, finished_ms")


def make_schema(d):
    pf, log = os.path.join(d, "port"), os.path.join(d, "server.log")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "GITHUB_"))}
    e.update({"HOME": TMP, "HEALER_DISPATCH": "none", "GITHUB_API_URL": "http://127.0.0.1:9",
              "HEALER_API_TOKEN": "list-index-token"})
    e.update(pgtest.store_env(d))
    with open(log, "wb") as lf:
        p = subprocess.Popen([HEALER, "server", "--listen", "127.0.0.1:0", "--data-dir", d,
                              "--port-file", pf], env=e, stdout=lf, stderr=lf)
    deadline = time.time() + 30
    while time.time() < deadline and not (os.path.exists(pf) and open(pf).read().strip()):
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.terminate()
    p.wait(timeout=30)
    return open(log).read()


def main():
    d = os.path.join(TMP, "store")
    os.makedirs(d)
    make_schema(d)
    con = pgtest.store_db(d)
    pg = pgtest.enabled()
    n = 20000
    if pg:
        con.query("INSERT INTO remediation_tasks (task_id, repository, state, created_ms, updated_ms)"
                  f" SELECT 't' || lpad(i::text, 6, '0'), 'Org/Repo' || (i % 200), 'succeeded', i, i"
                  f" FROM generate_series(1, {n}) AS i; ANALYZE remediation_tasks")
        # PG_TASK_PAGE with its parameters as literals (an unnamed statement
        # is planned with its parameters' values, as these are)
        sql = (f"SELECT {COLS} FROM remediation_tasks"
               " WHERE (NULL::text[] IS NULL OR state = ANY(NULL::text[]))"
               " AND ('org/repo7'::text IS NULL OR lower(repository) = lower('org/repo7'))"
               " AND (NULL::text IS NULL OR agent = NULL) AND (NULL::text IS NULL OR"
               " failure_type = NULL) AND (NULL::text IS NULL OR kind = NULL)"
               " AND created_ms >= 0 AND (NULL::bigint IS NULL OR created_ms < NULL"
               " OR (created_ms = NULL AND task_id < NULL::text))"
               " ORDER BY created_ms DESC, task_id DESC LIMIT 51")
        plan = "\n".join(r[0] for r in con.query("EXPLAIN " + sql).fetchall())
        rows = con.query(sql).fetchall()
        index = "remediation_tasks_repo_lower_created"
        # the store keeps the statement prepared (src/store/pg.c): after its
        # first uses PostgreSQL may plan it once for any parameters, which
        # must not fall back to reading the table in order
        con.query(f"PREPARE page(text[], text, text, text, text, bigint, bigint, text, bigint) AS"
                  f" SELECT {COLS} FROM remediation_tasks"
                  " WHERE ($1::text[] IS NULL OR state = ANY($1::text[]))"
                  " AND ($2::text IS NULL OR lower(repository) = lower($2))"
                  " AND ($3::text IS NULL OR agent = $3) AND ($4::text IS NULL OR failure_type = $4)"
                  " AND ($5::text IS NULL OR kind = $5) AND created_ms >= $6"
                  " AND ($7::bigint IS NULL OR created_ms < $7"
                  " OR (created_ms = $7 AND task_id < $8::text))"
                  " ORDER BY created_ms DESC, task_id DESC LIMIT $9")
        args = "(NULL, 'org/repo7', NULL, NULL, NULL, 0, NULL, NULL, 51)"
        for _ in range(8):
            con.query("EXECUTE page" + args)
        prepared = "\n".join(r[0] for r in con.query("EXPLAIN EXECUTE page" + args).fetchall())
        check("PostgreSQL: the prepared statement, after many uses, still uses the index",
              index in prepared and "Seq Scan" not in prepared, prepared)
        check("PostgreSQL: the repository filter is an index condition on lower(repository) "
              "of the new index, in the list's order (no sort, no sequential scan)",
              index in plan and "Seq Scan" not in plan and "Sort" not in plan, plan)
    else:
        con.execute("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)"
                    " INSERT INTO remediation_tasks (task_id, repository, state, created_ms,"
                    " updated_ms) SELECT printf('t%06d', i), 'Org/Repo' || (i % 200), 'succeeded',"
                    " i, i FROM s", (n,))
        con.commit()
        con.execute("ANALYZE")
        sql = (f"SELECT {COLS} FROM remediation_tasks WHERE repository = ?1 COLLATE NOCASE"
               " ORDER BY created_ms DESC, task_id DESC LIMIT ?8")
        args = ("org/repo7", None, None, None, None, None, None, 51)
        plan = "\n".join(r[-1] for r in con.execute("EXPLAIN QUERY PLAN " + sql, args))
        rows = con.execute(sql, args).fetchall()
        check("SQLite: the repository filter searches the NOCASE index in the list's order "
              "(no temporary b-tree for ORDER BY)",
              "remediation_tasks_repo_nocase_created" in plan and "TEMP B-TREE" not in plan, plan)
        cur = sql.replace(" ORDER BY", " AND (created_ms < ?6 OR (created_ms = ?6 AND task_id < ?7))"
                          " ORDER BY")
        args = ("org/repo7", None, None, None, None, 5000, "t005000", 51)
        plan = "\n".join(r[-1] for r in con.execute("EXPLAIN QUERY PLAN " + cur, args))
        check("SQLite: the next page (a cursor) too",
              "remediation_tasks_repo_nocase_created" in plan and "TEMP B-TREE" not in plan, plan)
    check("the filter matches without case, newest first",
          len(rows) == 51 and all(r[1] == "Org/Repo7" for r in rows)
          and [r[12] for r in rows] == sorted((r[12] for r in rows), reverse=True), rows[:3])
    con.close()
    finish()


if __name__ == "__main__":
    try:
        run(main)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
