#!/usr/bin/env python3
"""test_plans.py - a `healer server` on a fresh PostgreSQL database (run
through pgrun.py) keeps its per-delivery reads of the task table to index
lookups while that table grows from empty.

PostgreSQL chooses a prepared statement's generic plan after its first
executions and keeps it until its tables are analyzed again. On a fresh
database they are nearly empty then, so that plan can be a sequential scan
which every later execution pays for as the table grows: before the store
prepared its statements again as they are used, each failure read the
whole task table (quadratic in the number of tasks). Autovacuum is turned
off for the table here, so nothing else refreshes the plans meanwhile.
The bound: a statement's first 100 uses in each session may still scan
the table while it is small, and how the uses fall on the sessions varies
from run to run (10,000 to 85,000 rows read seen, the most under ASan in
a loaded run); a plan that lasts reads it for every failure (327,000 rows
for 800), twice the bound.
Standard library only; prints TAP.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
from hltest import dtest, job_event, wait_for  # noqa: E402

check = dtest.check
FAILURES = 800


def main():
    data_dir = os.path.join(dtest.TMP, "plans")
    srv = hltest.Healer(data_dir, hltest.base_env(
        HEALER_DISPATCH="none", HEALER_WORKERS="2", HEALER_LOG_LEVEL="warn")).start()
    con = dtest.store_db(data_dir)
    con.query("ALTER TABLE remediation_tasks SET (autovacuum_enabled = false)")
    answers = [srv.deliver(job_event(50000 + i, 7000 + i), delivery=f"plan-{i}")[0]
               for i in range(FAILURES)]
    check(f"{FAILURES} distinct failures are accepted", answers.count(202) == FAILURES,
          sorted(set(answers)))
    drained = wait_for(lambda: srv.request("GET", "/api/status")[1].get("queue_depth") == 0,
                       300)
    tasks = con.query("SELECT count(*) FROM remediation_tasks").fetchall()[0][0]
    check("each failure got its task", drained and tasks == FAILURES, (drained, tasks))
    check("SIGTERM exits 0", srv.stop() == 0)  # its sessions' statistics are flushed
    read = con.query("SELECT seq_scan, seq_tup_read, idx_scan FROM pg_stat_user_tables"
                     " WHERE relname = 'remediation_tasks'").fetchall()[0]
    check(f"the task table is read by index, not scanned per failure "
          f"(sequential scans, rows read, index scans: {list(read)})",
          read[1] < 200 * FAILURES, list(read))
    con.close()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
