#!/usr/bin/env python3
"""test_loop_edges.py - edges of the remediation loop (contract section 9)
that a restart or an early event could bend, against the same stand-ins as
test_loop.py (imported: its stand-ins, helpers and environment):

- healer SIGKILLed while a retry is being prepared (GitHub slow, so the
  attempt sits in phase `preparing`): the restart resumes that attempt
  under its own number, on the same agent, and it holds no CodeRun slot
  once the task ends (HEALER_MAX_ACTIVE_CODERUNS=1: the next task starts).

Standard library only; prints TAP."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_loop as T  # noqa: E402  (starts the stand-ins)
from test_loop import check, dtest, Healer, wait_for  # noqa: E402


def attempts(srv, tid):
    return [(a["number"], a.get("phase"), a.get("outcome"), a.get("agent"))
            for a in T.task_of(srv, tid).get("attempts", [])]


def kill_while_preparing():
    env = dict(T.BASE_ENV, HEALER_MAX_ACTIVE_CODERUNS="1")
    srv = Healer(os.path.join(dtest.TMP, "prep"), env).start()
    T.seed_job(7500)
    T.seed_job(7501)
    tid = T.deliver(srv, T.job_event(7500, 8500, "edge/prep"))
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    check("a failure gets its first CodeRun", len(runs) == 1, srv.log_tail())
    # GitHub answers slowly: attempt 2's context takes seconds to gather
    T.gh("POST", "/_stub/config", {"rules": [{"method": "GET", "path": "/repos/",
                                              "delay_ms": 2500}]})
    T.set_phase(runs[0]["metadata"]["name"], "Failed", message="first try failed")
    preparing = wait_for(lambda: (2, "preparing", None, "rex") in attempts(srv, tid), 15)
    srv.kill()
    T.gh("POST", "/_stub/config", {"rules": []})
    srv = Healer(srv.data_dir, env).start()
    runs = wait_for(lambda: len(T.by_task(tid)) >= 2 and T.by_task(tid), 40) or []
    labels = [(c["metadata"]["labels"]["healer/attempt"], c["metadata"]["labels"]["healer/agent"])
              for c in runs]
    done = wait_for(lambda: all(a[1] != "preparing" for a in attempts(srv, tid)), 10)
    check("killed while attempt 2 was prepared: the restart makes attempt 2 (same agent), "
          "none is skipped or left preparing",
          preparing and labels == [("1", "rex"), ("2", "rex")] and done
          and [a[0] for a in attempts(srv, tid)] == [1, 2], [labels, attempts(srv, tid)])
    if len(runs) == 2:
        T.set_phase(runs[1]["metadata"]["name"], "Failed", message="second try failed")
    runs = wait_for(lambda: len(T.by_task(tid)) >= 3 and T.by_task(tid), 20) or []
    third = runs[2]["metadata"]["labels"] if len(runs) > 2 else {}
    check("attempt 3 follows the two real failures (the runner-up agent)",
          third.get("healer/attempt") == "3" and third.get("healer/agent") not in (None, "rex"),
          [third, attempts(srv, tid)])
    if len(runs) > 2:
        T.set_phase(runs[2]["metadata"]["name"], "Failed", message="third try failed")
    escalated = T.wait_state(srv, tid, "escalated", 20)
    # the only slot is free again: a new failure gets its CodeRun
    tb = T.deliver(srv, T.job_event(7501, 8501, "edge/prep2"))
    started = wait_for(lambda: T.by_task(tb), 15)
    check("after the escalation no attempt holds the CodeRun slot: the next task starts",
          escalated and started, [T.task_of(srv, tid).get("state"), T.task_of(srv, tb)])
    srv.stop()
    return srv


def main():
    servers = [kill_while_preparing()]
    for h in servers:  # sanitizer builds report leaks and errors at exit
        dtest._scan(open(os.path.join(h.data_dir, "server.log"), errors="replace").read())
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
