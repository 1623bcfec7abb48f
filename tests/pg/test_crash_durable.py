#!/usr/bin/env python3
"""test_crash_durable.py - what healer was told is written stays written
when the database server crashes (an immediate stop: no checkpoint, its
shared memory gone) while healer lives on.

A sensor call's answer names the decision (task, agent, CodeRun): by then
the task, its attempt with the CodeRun's name and the delivery's end are
committed. Right after that answer the database is stopped immediately and
started again: all of it must still be there. Were any of it lost, healer
would build on it after reconnecting (finish a delivery whose attempt
record is gone, leaving a CodeRun no task follows).

Standard library only; prints TAP.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, job_event  # noqa: E402

check = dtest.check
ROUNDS = 4


def main():
    url = pgtest.create_database("crash")
    env = hltest.base_env(HEALER_DISPATCH="directory", HEALER_DECISION_WAIT_MS="10000")
    srv = hltest.Healer(os.path.join(dtest.TMP, "crash"), env, store_url=url).start()
    dbname = url.split("///", 1)[1].split("?", 1)[0]
    # a commit that does not wait for its flush stays in memory up to the
    # WAL writer's next round: 10 s here, not 200 ms, so a lost write is
    # lost for sure, not only when the stop comes soon enough
    with pgtest.admin() as con:
        con.query("ALTER SYSTEM SET wal_writer_delay = '10s'")
        con.query("SELECT pg_reload_conf()")
    lost = []
    for i in range(ROUNDS):
        if not hltest.wait_for(lambda: srv.request("GET", "/ready")[0] == 200, 60):
            check(f"round {i + 1}: the server is ready", False, srv.log()[-1500:])
            break
        st, ans = srv.sensor(job_event(961 + i, 101 + i, branch=f"fix/crash-{i}"))
        if st != 202 or not ans.get("coderun_name"):
            check(f"round {i + 1}: the failure is accepted with its decision", False, (st, ans))
            break
        pgtest.stop("immediate")
        pgtest.start()
        pgtest.wait_ready()
        con = pgtest.connect(dbname)
        task = con.query("SELECT state, agent FROM remediation_tasks"
                         f" WHERE task_id = '{ans['task_id']}'").rows
        attempt = con.query("SELECT coderun_name FROM attempts"
                            f" WHERE task_id = '{ans['task_id']}' AND n = 1").rows
        con.close()
        if not (task and task[0][1] == ans.get("agent") and attempt
                and attempt[0][0] == ans["coderun_name"]):
            lost.append((i + 1, ans.get("task_id"), task, attempt))
    check(f"after each of {ROUNDS} immediate database stops right after a decision was "
          "answered, its task and its attempt with the CodeRun's name are in the store",
          not lost, lost)
    ready = hltest.wait_for(lambda: srv.request("GET", "/ready")[0] == 200, 60)
    check("healer is ready again on the restarted database", ready, srv.log()[-1500:])
    st, ans = srv.sensor(job_event(971, 111, branch="fix/crash-after"))
    check("and remediates a new failure", st == 202 and ans.get("coderun_name"), (st, ans))
    check("the server is alive", srv.alive())
    srv.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
