#!/usr/bin/env python3
"""test_commands.py - the store's operator commands (contract section 11)
on either backend (SQLite here, PostgreSQL under tests/pg/pgrun.py):
`healer migrate` applies the schema and prints its version, `healer status`
lists tasks and shows one (a table, or --json as the API shows it) while a
server runs on the same store, `healer replay --failed | DELIVERY_ID`
queues deliveries again and a running server processes them. Standard
library only; prints TAP.
"""
import json
import re
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "pg"))
import hltest  # noqa: E402
from hltest import dtest, job_event, wait_for  # noqa: E402

check = dtest.check
D = os.path.join(dtest.TMP, "store")


def healer(*args):
    """Runs a command on the store of D (its URL on PostgreSQL)."""
    return dtest.healer(*args, "--data-dir", D, env={"HEALER_DATA_DIR": D})


def db():
    return dtest.store_db(D)


def least_privilege():
    """A role that may read and write the tables but create nothing (the
    schema applied as its owner, as `healer migrate` in a deploy job does):
    migrate finds nothing to do, status reads, a server starts."""
    import pgtest
    url = pgtest.store_env(D)["HEALER_DATABASE_URL"]
    name = url.split("///", 1)[1].split("?", 1)[0]
    role = f"hl_app_{os.getpid()}"
    with pgtest.connect(name) as con:
        for sql in (f"CREATE ROLE {role} LOGIN",
                    f"GRANT USAGE ON SCHEMA public TO {role}",
                    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public"
                    f" TO {role}",
                    f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
                    "REVOKE CREATE ON SCHEMA public FROM PUBLIC"):
            con.query(sql)
    app = {"HEALER_DATA_DIR": D,
           "HEALER_DATABASE_URL": url.replace("user=postgres", f"user={role}")}
    rc, out, err = dtest.healer("migrate", env=app)
    check("a role without CREATE on the schema: migrate of an up-to-date store applies "
          "nothing", rc == 0 and "(0 migrations applied)" in out, (rc, out, err))
    rc, out, err = dtest.healer("status", env=app)
    check("and status reads it", rc == 0 and "(no tasks)" in out, (rc, out, err))
    # a password among the URL's parameters (trust here: never asked for)
    srv = hltest.Healer(os.path.join(dtest.TMP, "app"), hltest.base_env(HEALER_DISPATCH="none"),
                        store_url=app["HEALER_DATABASE_URL"] + "&password=Sekr1t", name="app")
    try:
        srv.start()
        st, _ = srv.request("GET", "/ready")
    except Exception as e:  # report, do not hide
        st = repr(e)
    check("and a server runs on it (/ready 200)", st == 200, (st, srv.log()[-800:]))
    srv.stop()
    check("the server's log shows the store without the password among its parameters",
          "Sekr1t" not in srv.log() and "password=***" in srv.log(), srv.log()[-800:])


def attached_alias():
    """status of the id a failure was answered with before it went to an
    active task (a failure of that task's job on its branch) shows that
    task, as GET /api/remediations/{id} does."""
    e = os.path.join(dtest.TMP, "alias")
    srv = hltest.Healer(e, hltest.base_env(HEALER_DISPATCH="directory")).start()
    st, a = srv.deliver(job_event(301, 31, branch="alias/x"), "c-alias-1")
    task = a.get("task_id", "")
    # decided: running with its agent and first attempt
    active = wait_for(lambda: (lambda d: d.get("state") == "running" and d.get("agent")
                               and d.get("attempts"))(
        srv.request("GET", f"/api/remediations/{task}")[1]), 30)
    st, a2 = srv.deliver(job_event(302, 32, branch="alias/x"), "c-alias-2")
    alias = a2.get("task_id", "")
    wait_for(lambda: srv.queue_depth() == 0, 30)
    st_api, api_doc = srv.request("GET", f"/api/remediations/{alias}")
    env = {"HEALER_DATA_DIR": e}
    rc, out, err = dtest.healer("status", alias, "--data-dir", e, env=env)
    rcj, outj, errj = dtest.healer("status", alias, "--json", "--data-dir", e, env=env)
    try:
        jdoc = json.loads(outj)
    except ValueError:
        jdoc = {}
    check("status of the id an attached failure was answered with shows the active task",
          active and alias and alias != task and api_doc.get("task_id") == task and rc == 0
          and f"task        {task}" in out and rcj == 0 and jdoc.get("task_id") == task,
          (a2, st_api, api_doc.get("task_id"), rc, out[:300], err, errj))
    srv.stop()


def main():
    backend = "postgres" if dtest.on_postgres() else "sqlite"
    rc, out, err = healer("migrate")
    check(f"migrate creates the {backend} schema and prints its version",
          rc == 0 and out.strip() == f"schema version {hltest.MIGRATIONS} ({hltest.MIGRATIONS} migrations applied)", (rc, out, err))
    rc, out, err = healer("migrate")
    check("migrate again applies nothing", rc == 0 and "(0 migrations applied)" in out, out)
    # three at once on an empty store: each migration is applied once (by
    # whichever holds the lock), and the counts printed add up to that
    # (each said it had applied them all)
    fresh = os.path.join(dtest.TMP, "fresh-migrate")
    os.makedirs(fresh, exist_ok=True)
    procs = [subprocess.Popen([dtest.HEALER, "migrate"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=dtest.clean_env({"HEALER_DATA_DIR": fresh}))
             for _ in range(3)]
    outs = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
    applied = [int(o.split("(")[1].split()[0]) if o.startswith("schema version") else None
               for o, _, _ in outs]
    check("three migrates at once print counts that add up to the migrations applied once",
          all(rc == 0 for _, _, rc in outs) and None not in applied
          and sum(applied) == hltest.MIGRATIONS, outs)
    if backend == "postgres":
        least_privilege()
    # settings libpq cannot read: refused before any connection, the
    # password shown nowhere (libpq's own message quotes it)
    for url in ("postgres://u:Sekr1t%zz@127.0.0.1:9/h",
                "postgres://u:Sekr1t@[::1:9/h",
                "postgres://u:Sekr1t%00@127.0.0.1:9/h",
                "postgres://u:pa@Sekr1t@127.0.0.1:9/h",
                "postgres://u:pa/Sekr1t@127.0.0.1:9/h",
                "postgres://127.0.0.1:9/h?password=Sekr1t%zz",
                "host=127.0.0.1 port=9 password=pa Sekr1t"):
        for cmd in ("status", "migrate"):
            rc, out, err = dtest.healer(cmd, env={"HEALER_DATA_DIR": D,
                                                  "HEALER_DATABASE_URL": url})
            check(f"{cmd} refuses unreadable settings without showing the password ({url})",
                  rc == 1 and "cannot read the settings" in err and "Sekr1t" not in err
                  and "Sekr1t" not in out, (rc, out, err))
        rc, out, err = dtest.healer("check-config", env={"HEALER_DATA_DIR": D,
                                                        "HEALER_DATABASE_URL": url})
        check(f"check-config refuses them too, without the password ({url})",
              rc == 1 and "HEALER_DATABASE_URL: libpq cannot read the settings" in err
              and "configuration ok" not in out and "Sekr1t" not in out + err, (rc, out, err))
    rc, out, err = healer("status")
    check("status of an empty store prints an empty table",
          rc == 0 and "TASK" in out and "(no tasks)" in out, (rc, out, err))

    srv = hltest.Healer(D, hltest.base_env(HEALER_DISPATCH="none")).start()
    st, a = srv.deliver(job_event(101, 11), "c-fail")
    check("a failure is accepted", st == 202 and a.get("task_id"), a)
    task = a.get("task_id", "")
    for i in range(3):
        srv.deliver(job_event(200 + i, 12, "success"), f"c-ok-{i}")
    check("the server processes them", wait_for(lambda: srv.queue_depth() == 0, 60))
    wait_for(lambda: db().execute("SELECT agent FROM remediation_tasks WHERE task_id = ?",
                                  (task,)).fetchone(), 10)

    # status beside the running server
    rc, out, err = healer("status")
    check("status lists the task while the server runs",
          rc == 0 and task in out and "rex" in out and "rust_clippy" in out, (rc, out, err))
    rc, out, err = healer("status", task)
    check("status TASK_ID shows the task and its attempts",
          rc == 0 and f"task        {task}" in out and "KIND" in out
          and ("(no attempts)" in out or "agent" in out), (rc, out, err))
    rc, out, err = healer("status", task, "--json")
    try:
        doc = json.loads(out)
    except ValueError:
        doc = {}
    check("status TASK_ID --json is the API's document",
          rc == 0 and doc.get("task_id") == task and doc.get("agent") == "rex"
          and isinstance(doc.get("attempts"), list), (rc, out[:500], err))
    # its numbers as the API writes them: 0.4, not 0.40000000000000002
    reals = re.findall(r"-?\d+\.\d+(?:[eE][-+]?\d+)?", out)
    long_reals = [n for n in reals
                  if len(re.sub(r"[eE].*", "", n).replace("-", "").replace(".", "")
                         .lstrip("0")) > 15]
    st, api = srv.request("GET", f"/api/remediations/{task}")
    check("status TASK_ID --json writes numbers with the API's 15 digits",
          reals and not long_reals and st == 200
          and (doc.get("decision") or {}).get("confidence")
          == (api.get("decision") or {}).get("confidence"), (reals, long_reals))
    rc, out, err = healer("status", "--json", "--limit", "5")
    try:
        lst = json.loads(out)
    except ValueError:
        lst = {}
    check("status --json lists the tasks", rc == 0 and [t.get("task_id") for t in
                                                        lst.get("tasks", [])] == [task], out)
    rc, out, err = healer("status", "--state", "escalated")
    check("status --state filters", rc == 0 and task not in out and "(no tasks)" in out, out)
    # names from outside reach the operator's terminal as text only
    ev = job_event(131, 13, branch="fix\x1b]0;owned\x07/x\r\nstate       succeeded")
    ev["workflow_job"]["name"] = "clippy\x1b[2J\u009b31m"
    st, a = srv.deliver(ev, "c-esc")
    esc_task = a.get("task_id", "")
    wait_for(lambda: srv.queue_depth() == 0, 30)
    rc, out, err = healer("status", esc_task)
    check("status TASK_ID prints outside names without control characters",
          rc == 0 and esc_task and f"task        {esc_task}" in out and "\x1b" not in out
          and "\x07" not in out and "\r" not in out and "\u009b" not in out
          and "\nstate       succeeded" not in out and "clippy?[2J?31m" in out, (rc, out, err))
    rc, out, err = healer("status", esc_task, "--json")
    try:
        doc = json.loads(out)
    except ValueError:
        doc = {}
    check("status TASK_ID --json writes the C1 control of a job name as \\u009b",
          rc == 0 and "\u009b" not in out and "\\u009b" in out
          and doc.get("job") == "clippy\x1b[2J\u009b31m", (rc, out[:800], err))
    rc, out, err = healer("status", "hl-nope")
    check("status of an unknown task exits 1 naming it",
          rc == 1 and err.startswith("healer: error:") and "'hl-nope'" in err, err)
    for cmd in ("status", "replay"):
        rc, out, err = healer(cmd, "hl-\x1b]0;owned\x07\x1b[2J\u009b31m")
        check(f"{cmd} of an unknown id quotes it without control characters",
              rc == 1 and "'hl-?]0;owned??[2J?31m'" in err and "\x1b" not in err
              and "\x07" not in err and "\u009b" not in err, (rc, err))
    rc, out, err = healer("status", "--state", "dreaming")
    check("a bad state is a usage error naming it", rc == 2 and "'dreaming'" in err, err)

    # replay by id, beside the running server
    rc, out, err = healer("replay", "c-ok-0")
    check("replay DELIVERY_ID queues it again", rc == 0 and out.strip() == "1 delivery queued again",
          (rc, out, err))
    twice = wait_for(lambda: db().execute(
        "SELECT state, process_count FROM deliveries WHERE delivery_id = 'c-ok-0'").fetchone()
        == ("processed", 2), 30, 0.1)
    check("the running server processes the replayed delivery", twice)
    rc, out, err = healer("replay", "c-unknown")
    check("replay of an unknown delivery exits 1 naming it",
          rc == 1 and "'c-unknown'" in err, err)
    rc, out, err = healer("replay")
    check("replay without --failed or an id is a usage error", rc == 2, err)
    rc, out, err = healer("replay", "--failed", "c-ok-1")
    check("replay with both is a usage error", rc == 2, err)
    # after "--" every word is an operand, even one that looks like an option
    env = {"HEALER_DATA_DIR": D}
    rc, out, err = dtest.healer("replay", "--data-dir", D, "--", "--failed", env=env)
    rc2, out2, err2 = dtest.healer("status", "--data-dir", D, "--", "--json", env=env)
    check("replay -- --failed and status -- --json name a delivery and a task '--...'",
          rc == 1 and "'--failed'" in err and rc2 == 1 and "'--json'" in err2 and not out2,
          (rc, err, rc2, out2[:200], err2))

    # a duplicate of a known event keeps no body of its own: the first
    # delivery keeps it, and is the one to replay
    st, a = srv.deliver(job_event(101, 11), "c-fail-again")
    check("another delivery of the failure is its duplicate",
          st == 202 and a.get("status") == "duplicate" and a.get("task_id") == task, a)
    rows = dict((r[0], r[1:]) for r in db().execute(
        "SELECT delivery_id, body_encoding, length(body), body_size, duplicate_of"
        " FROM deliveries WHERE delivery_id IN ('c-fail', 'c-fail-again')").fetchall())
    first, dup = rows.get("c-fail"), rows.get("c-fail-again")
    check("the duplicate is stored without a body, naming the first delivery",
          dup is not None and first is not None and dup[0] == "duplicate" and dup[1] == 0
          and dup[2] == first[2] and dup[3] == "c-fail", rows)
    check("the first delivery keeps the body",
          first is not None and first[0] != "duplicate" and first[1] > 100, rows)
    rc, out, err = healer("replay", "c-fail-again")
    check("replay of that duplicate exits 1 naming the delivery to replay",
          rc == 1 and "'c-fail-again'" in err and "replay 'c-fail'" in err, (rc, out, err))

    # replay --failed: two deliveries failed (as a bad payload would)
    check("the server stops", srv.stop() == 0)
    con = db()
    con.execute("UPDATE deliveries SET state = 'failed', reason = 'invalid_payload'"
                " WHERE delivery_id IN ('c-ok-1', 'c-ok-2')")
    if hasattr(con, "commit"):
        con.commit()
    srv.start()  # its recovery rebuilds the counters from the rows
    rc, out, err = healer("replay", "--failed")
    check("replay --failed queues the failed deliveries",
          rc == 0 and out.strip() == "2 deliveries queued again", (rc, out, err))
    done = wait_for(lambda: db().execute(
        "SELECT count(*) FROM deliveries WHERE state = 'processed'"
        " AND delivery_id IN ('c-ok-1', 'c-ok-2')").fetchone()[0] == 2, 30, 0.1)
    check("and the server processes them", done)
    rc, out, err = healer("replay", "--failed")
    check("nothing failed is left", rc == 0 and out.strip() == "0 deliveries queued again", out)
    check("the server stops cleanly", srv.stop() == 0)
    check("the store is consistent", dtest.store_integrity(db()) == "ok")
    attached_alias()
    dtest.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception:  # report, do not hide
        import traceback
        check("test driver ran to completion", False, traceback.format_exc())
        dtest.finish()
