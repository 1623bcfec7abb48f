#!/usr/bin/env python3
"""test_loop_durable.py - what a 2xx promises survives a process that dies,
or a delivery that fails for good (contract sections 9 and 11: a delivery
is handled exactly once; every task ends final or queued), against the same
stand-ins as test_loop.py (imported). The state a crash leaves is reached
by killing healer (SIGKILL) while a stand-in holds a call, or by writing the
store while healer is stopped:

- a delivery failing for good while its task's first attempt is prepared
  (the CodeRun create refused for an hour): that attempt ends, saying why,
  and the next attempt is made from the event the claim stored; a claim
  with no attempt yet ends skipped, saying why;
- GitHub refusing the token (401) when asked whether a run is a fork's:
  not a fork's, logged; the failure gets its CodeRun;
- healer killed while GitHub is asked to re-run the failed jobs: the
  restart adopts that re-run (GitHub's run_attempt went up), never asks
  again, and its result ends the task;
- healer killed while a /healer retry HINT attempt is prepared: the
  restart's attempt carries the hint;
- the memory of a finished task failing to be written (the store refusing
  it): written by the loop's next pass once the store takes it, also
  after a restart.

Standard library only; prints TAP."""
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_loop as T  # noqa: E402  (starts the stand-ins)
from test_loop import check, dtest, Healer, wait_for  # noqa: E402


def db(srv):
    con = sqlite3.connect(os.path.join(srv.data_dir, "healer.db"), timeout=10)
    con.isolation_level = None
    return con


def attempts(srv, tid):
    return [(a["number"], a.get("kind"), a.get("phase"), a.get("outcome"), a.get("reason"))
            for a in T.task_of(srv, tid).get("attempts", [])]


def give_up(srv, delivery):
    """The delivery as one kept an hour and claimed as often as any: its next
    transient failure is its last (healer stopped)."""
    con = db(srv)
    con.execute("UPDATE deliveries SET claims = 5, received_ms = received_ms - 7200000,"
                " not_before_ms = 0 WHERE delivery_id = ?", (delivery,))
    con.close()


def delivery_failed():
    env = dict(T.BASE_ENV, HEALER_MAX_ATTEMPTS="2")
    srv = Healer(os.path.join(dtest.TMP, "dgiveup"), env).start()
    T.seed_job(7901)
    T.seed_job(7902)
    # (a) the CodeRun create fails (503) until the delivery gives up
    T.kube("POST", "/_stub/config", {"rules": [{"method": "POST", "path": "/apis/",
                                                "status": 503}]})
    tid = T.deliver(srv, T.job_event(7901, 8901, "dur/giveup"), delivery="dur-giveup-1")
    prep = wait_for(lambda: [a for a in attempts(srv, tid) if a[2] == "preparing"], 20)
    # (b) GitHub fails the fork check (503) until the delivery gives up: a claim only
    T.gh("POST", "/_stub/config", {"rules": [{"method": "GET",
                                              "path": f"/repos/{T.REPO}/actions/runs/8902",
                                              "status": 503}]})
    tb = T.deliver(srv, T.job_event(7902, 8902, "dur/giveup2"), delivery="dur-giveup-2")
    claim = wait_for(lambda: T.task_of(srv, tb).get("state") == "running"
                     and "retry" in srv.log_tail(), 20)
    srv.stop()
    give_up(srv, "dur-giveup-1")
    give_up(srv, "dur-giveup-2")
    srv = Healer(srv.data_dir, env).start()
    ended = wait_for(lambda: [a for a in attempts(srv, tid) if a[0] == 1 and a[2] == "done"], 20)
    T.kube("POST", "/_stub/config", {"rules": []})
    # the second delivery fails for good before GitHub answers again (its
    # retry may come after the first's)
    skipped = T.wait_state(srv, tb, "skipped", 20)
    T.gh("POST", "/_stub/config", {"rules": []})
    runs = wait_for(lambda: T.by_task(tid), 20) or []
    a = attempts(srv, tid)
    check("a delivery failing for good while its first attempt is prepared: that attempt "
          "ends saying why, and attempt 2 is made from the event the claim stored",
          prep and ended and "delivery failed" in (a[0][4] or "") and len(runs) == 1
          and runs[0]["metadata"]["labels"].get("healer/attempt") == "2",
          [a, [c["metadata"]["name"] for c in runs], srv.log_tail()[-2000:]])
    check("a delivery failing for good with its task only claimed: the task ends skipped, "
          "saying why",
          claim and skipped and "delivery failed" in (T.task_of(srv, tb).get("reason") or ""),
          [T.task_of(srv, tb).get("state"), T.task_of(srv, tb).get("reason")])
    srv.stop()
    return srv


def fork_check_refused():
    srv = Healer(os.path.join(dtest.TMP, "dfork"), T.BASE_ENV).start()
    T.seed_job(7911)
    T.gh("POST", "/_stub/config", {"rules": [{"method": "GET",
                                              "path": f"/repos/{T.REPO}/actions/runs/8911",
                                              "status": 401, "times": 1,
                                              "body": {"message": "Bad credentials"}}]})
    tid = T.deliver(srv, T.job_event(7911, 8911, "dur/fork401"))
    runs = wait_for(lambda: T.by_task(tid), 20) or []
    T.gh("POST", "/_stub/config", {"rules": []})
    warned = [ln for ln in srv.log_tail().splitlines()
              if "telling a fork" in ln and '"warn' in ln.lower()]
    check("GitHub refusing the token (401) in the fork check: not a fork's (logged), the "
          "failure gets its CodeRun",
          len(runs) == 1 and warned, [T.task_of(srv, tid).get("state"), srv.log_tail()[-1500:]])
    srv.stop()
    return srv


def killed_while_rerun_asked():
    T.seed_job(7921, T.RUNNER_LOG)
    T.gh("POST", "/_stub/seed", {"runs": [{"id": 8921, "name": "Gadget CI",
                                           "head_branch": "dur/rerun", "head_sha": T.SHA0,
                                           "status": "completed", "conclusion": "failure",
                                           "run_attempt": 1, "workflow_id": 55}]})
    rpath = f"/repos/{T.REPO}/actions/runs/8921/rerun-failed-jobs"
    T.gh("POST", "/_stub/config", {"rules": [{"method": "POST", "path": rpath,
                                              "delay_ms": 3000}]})

    def posts():
        return [r for r in T.gh("GET", "/_stub/requests")
                if r["method"] == "POST" and r["path"] == rpath]

    srv = Healer(os.path.join(dtest.TMP, "drerun"), T.BASE_ENV).start()
    tid = T.deliver(srv, T.job_event(7921, 8921, "dur/rerun", name="test"),
                    delivery="dur-rerun-1")
    asked = wait_for(posts, 20)
    srv.kill()  # GitHub re-runs the jobs; healer never hears of it
    T.gh("POST", "/_stub/config", {"rules": []})
    time.sleep(3.5)
    srv = Healer(srv.data_dir, T.BASE_ENV).start()
    adopted = wait_for(lambda: [a for a in attempts(srv, tid)
                                if a[1] == "rerun" and a[2] == "verifying"], 30)
    time.sleep(2)
    check("killed while GitHub was asked to re-run the failed jobs: the restart adopts that "
          "re-run and never asks again",
          asked and adopted and len(posts()) == 1 and not T.by_task(tid),
          [len(posts()), attempts(srv, tid), srv.log_tail()[-1500:]])
    T.deliver(srv, T.job_event(7922, 8921, "dur/rerun", name="test", conclusion="success",
                               run_attempt=2))
    ok = T.wait_state(srv, tid, "succeeded", 20)
    check("... and that re-run passing ends the task rerun_passed",
          ok and attempts(srv, tid)[0][3] == "rerun_passed", attempts(srv, tid))
    srv.stop()
    return srv


def killed_while_hint_prepared():
    env = dict(T.BASE_ENV, HEALER_MAX_ATTEMPTS="1")
    hint = "ZEBRA-HINT-9931-use-the-new-allocator"
    T.gh("POST", "/_stub/seed", {"pulls": [T.pull(931, "dur/hint", T.SHA0)],
                                 "issue_comments": {"99311": {"id": 99311}}})
    T.seed_job(7931)
    srv = Healer(os.path.join(dtest.TMP, "dhint"), env).start()
    tid = T.deliver(srv, T.job_event(7931, 8931, "dur/hint"))
    runs = wait_for(lambda: T.by_task(tid), 20) or []
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Failed", message="agent gave up")
    escalated = T.wait_state(srv, tid, "escalated", 20)
    # GitHub answers slowly: the retry's attempt sits preparing
    T.gh("POST", "/_stub/config", {"rules": [{"method": "GET", "path": "/repos/",
                                              "delay_ms": 2500}]})
    T.deliver(srv, T.comment_event(99311, 931, "/healer retry " + hint, "OWNER"),
              event="issue_comment", delivery="dur-hint-retry")
    preparing = wait_for(lambda: [a for a in attempts(srv, tid)
                                  if a[0] == 2 and a[2] == "preparing"], 20)
    srv.kill()
    T.gh("POST", "/_stub/config", {"rules": []})
    srv = Healer(srv.data_dir, env).start()
    runs = wait_for(lambda: len(T.by_task(tid)) >= 2 and T.by_task(tid), 40) or []
    second = [c for c in runs if c["metadata"]["labels"].get("healer/attempt") == "2"]
    check("killed while a /healer retry HINT attempt was prepared: the restart's attempt "
          "carries the hint",
          escalated and preparing and len(second) == 1 and hint in json.dumps(second[0])
          and "Requested by `someone` (`comment`: `retry`)"
          in second[0]["spec"].get("promptModification", ""),
          [attempts(srv, tid), [c["metadata"]["name"] for c in runs], srv.log_tail()[-1500:]])
    srv.stop()
    return srv


def memory_write_failed():
    env = dict(T.BASE_ENV, HEALER_MAX_ATTEMPTS="1")
    T.seed_job(7941)
    srv = Healer(os.path.join(dtest.TMP, "dmem"), env).start()
    srv.stop()
    con = db(srv)  # the store refuses every memory for now
    con.execute("CREATE TRIGGER dur_no_memory BEFORE INSERT ON memories"
                " BEGIN SELECT RAISE(ABORT, 'injected: no memory'); END")
    con.close()
    srv = Healer(srv.data_dir, env).start()
    tid = T.deliver(srv, T.job_event(7941, 8941, "dur/mem"))
    runs = wait_for(lambda: T.by_task(tid), 20) or []
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Failed", message="agent gave up")
    escalated = T.wait_state(srv, tid, "escalated", 20)
    failed = wait_for(lambda: "remembering a task failed" in srv.log_tail(), 10)
    srv.stop()
    con = db(srv)
    con.execute("DROP TRIGGER dur_no_memory")
    before = con.execute("SELECT COUNT(*) FROM memories WHERE task_id = ?", (tid,)).fetchone()[0]
    con.close()
    srv = Healer(srv.data_dir, env).start()

    def remembered():
        c = db(srv)
        n = c.execute("SELECT COUNT(*) FROM memories WHERE task_id = ?", (tid,)).fetchone()[0]
        c.close()
        return n == 1

    ok = wait_for(remembered, 15)
    check("the memory of an escalated task the store refused: written by the loop's next "
          "pass once the store takes it (after a restart)",
          escalated and failed and before == 0 and ok,
          [escalated, failed, before, srv.log_tail()[-1500:]])
    srv.stop()
    return srv


def main():
    servers = [delivery_failed(), fork_check_refused(), killed_while_rerun_asked(),
               killed_while_hint_prepared(), memory_write_failed()]
    for h in servers:  # sanitizer builds report leaks and errors at exit
        dtest._scan(open(os.path.join(h.data_dir, "server.log"), errors="replace").read())
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
