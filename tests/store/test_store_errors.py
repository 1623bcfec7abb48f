#!/usr/bin/env python3
"""test_store_errors.py - a store that fails for a while (here: its write
lock held by another connection for longer than healer's busy timeout, as a
full disk or a stuck writer would) must not leave deliveries `processing`:
the workers retry their finish with backoff, and once the store answers
again every delivery reaches a final state without a restart.

Two failed jobs are delivered; while their remediation waits on a slow
context source, this test takes SQLite's write lock on healer.db and holds
it until a worker's finish of a delivery (its give-back after the
remediation's write was refused, or its mark as processed) has been refused
too, at most 90 s: without retries that delivery stays `processing` until
its claim's lease runs out. Then it lets go and waits (with a deadline) for
both deliveries to be finished. Standard library only; prints TAP."""
import http.client
import json
import os
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import TIME_SCALE, Healer, wait_for  # noqa: E402

_, sport = dtest.start_stub("generic_stub.py")
SURL = f"http://127.0.0.1:{sport}"
dtest.http("POST", SURL + "/_stub/config", {"routes": [
    {"method": "GET", "path": "/loki/api/v1/query_range", "delay_ms": 500,
     "body": {"status": "success", "data": {"resultType": "streams", "result": []}}}]})

ENV = {"GITHUB_WEBHOOK_SECRET": "store-errors-secret", "HEALER_DISPATCH": "none",
       "LOKI_URL": SURL, "HEALER_SOURCE_TIMEOUT_MS": "4000", "HEALER_CONTEXT_TIMEOUT_MS": "5000",
       "HEALER_TIME_WINDOW_MINS": "0", "HEALER_WORKERS": "2", "GITHUB_API_URL": "http://127.0.0.1:9",
       "HEALER_LOG_LEVEL": "info"}


def job(job_id):
    return {"action": "completed",
            "workflow_job": {"id": job_id, "run_id": job_id + 1, "run_attempt": 1,
                             "workflow_name": "CI", "name": "build", "head_branch": "main",
                             "head_sha": "a" * 40, "status": "completed", "conclusion": "failure",
                             "steps": []},
            "repository": {"full_name": "acme/widgets", "default_branch": "main"},
            "sender": {"login": "dev", "type": "User"}}


def states(db, ids):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        rows = con.execute("SELECT delivery_id, state FROM deliveries WHERE delivery_id IN"
                           " (%s)" % ",".join("?" * len(ids)), ids).fetchall()
    finally:
        con.close()
    return dict(rows)


def metrics_while_a_write_waits(srv, db):
    """/metrics (open to anyone) reads through the server's read-only handle:
    it answers at once while an intake write waits for the store's lock
    (before, it queued behind that write on the store's own handle, and a
    scrape of a large store's every task and attempt held up the intake)."""
    locker = sqlite3.connect(db, timeout=5, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    posted = []
    t = threading.Thread(target=lambda: posted.append(
        srv.deliver({"zen": "wait", "hook_id": 1}, event="ping", delivery="store-err-ping")[0]))
    t.start()
    time.sleep(0.5)  # the delivery reaches the committer, which waits for the lock
    t0 = time.time()
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    c.request("GET", "/metrics")
    res = c.getresponse()
    text = res.read().decode(errors="replace")
    took = time.time() - t0
    c.close()
    waiting = t.is_alive()
    time.sleep(1.0)
    locker.execute("ROLLBACK")
    locker.close()
    t.join(30)
    # 3 s (4 s under the sanitizers): queued behind the write, /metrics
    # would wait out its 5 s busy timeout (and the write would be over)
    check("/metrics answers while an intake write waits for the store's lock",
          res.status == 200 and "healer_tasks{" in text and "healer_queue_depth" in text
          and waiting and took < min(1.0 + 2.0 * TIME_SCALE, 4.0),
          [res.status, took, waiting, posted])


def main():
    srv = Healer(os.path.join(dtest.TMP, "h"), ENV).start()
    db = os.path.join(srv.data_dir, "healer.db")
    metrics_while_a_write_waits(srv, db)
    ids = ["store-err-1", "store-err-2"]
    for i, d in enumerate(ids):
        st, ans = srv.deliver(job(7100 + 10 * i), delivery=d)
        check(f"delivery {d} accepted", st == 202 and ans.get("status") == "accepted", ans)
    busy = wait_for(lambda: (lambda s: s if set(s.values()) == {"processing"} and len(s) == 2
                             else None)(states(db, ids)), 10)
    check("both deliveries are being processed", busy, states(db, ids))

    # the store fails: its write lock is held elsewhere beyond the busy
    # timeout, until a worker's finish has been refused (the retry under
    # test). Other writers (a worker's claim, the lease keeper) queue on the
    # same connection and may use up several 5 s busy waits first, so a fixed
    # hold would not make sure a finish meets the lock; the hold is bounded.
    log_path = os.path.join(srv.data_dir, "server.log")
    locker = sqlite3.connect(db, timeout=5, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    refused = wait_for(lambda: "finishing delivery" in open(log_path, errors="replace").read(),
                       90, step=0.2)
    during = states(db, ids)
    locker.execute("ROLLBACK")
    locker.close()
    check("while the store refused writes nothing was finished",
          set(during.values()) <= {"processing", "received"}, during)
    check("a worker's finish met the refusing store", refused,
          open(log_path, errors="replace").read()[-1500:])

    done = wait_for(lambda: (lambda s: s if len(s) == 2 and not set(s.values()) &
                             {"processing", "received"} else None)(states(db, ids)), 40)
    check("after the store recovers every delivery is finished, without a restart",
          done and set(done.values()) <= {"processed", "failed"}, states(db, ids))
    st, status = srv.request("GET", "/api/status")
    check("nothing is left in the queue", st == 200 and status.get("queue_depth") == 0, status)
    log = open(log_path, errors="replace").read()
    check("the worker said it retried the finish the store refused",
          "finishing delivery" in log and "retrying" in log, log[-1500:])
    srv.stop()
    check("the server stops cleanly", srv.proc.returncode == 0, srv.log_tail())
    dtest._scan(open(os.path.join(srv.data_dir, "server.log"), errors="replace").read())
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
