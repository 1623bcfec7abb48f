#!/usr/bin/env python3
"""test_shutdown.py - the server's signals and shutdown sequence against a
real `healer server` on 127.0.0.1: SIGHUP, SIGUSR1 and SIGUSR2 are logged
and ignored (the server keeps serving; nothing is reloaded); after SIGTERM
the workers claim nothing more, so deliveries stored during the shutdown
delay stay `received` for the next start, the process exits 0 within the
delay plus a few seconds, and the next start processes them. Standard
library only; prints TAP."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import Healer, TIME_SCALE, wait_for  # noqa: E402

SECRET = "shutdown-webhook-secret"
ENV = {"GITHUB_WEBHOOK_SECRET": SECRET, "HEALER_DISPATCH": "directory",
       "HEALER_LOG_LEVEL": "info", "HEALER_SHUTDOWN_DELAY_S": "2",
       "GITHUB_API_URL": "http://127.0.0.1:9", "HEALER_SOURCE_TIMEOUT_MS": "500",
       "HEALER_CONTEXT_TIMEOUT_MS": "1000"}


def job(n):
    """A failed job: stored waiting for a worker (not skipped at intake)."""
    repo, sha = "acme/shutdown", "0123456789abcdef0123456789abcdef01234567"
    jid, rid = 910000 + n, 810000 + n
    return {"action": "completed", "workflow_job": {
        "id": jid, "run_id": rid, "run_attempt": 1, "workflow_name": "CI", "name": "test",
        "head_branch": f"sd/b{n}", "head_sha": sha, "status": "completed",
        "conclusion": "failure",
        "html_url": f"https://github.com/{repo}/actions/runs/{rid}/job/{jid}",
        "steps": [{"name": "Run tests", "status": "completed", "conclusion": "failure",
                   "number": 3}]},
        "repository": {"full_name": repo, "html_url": f"https://github.com/{repo}",
                       "default_branch": "main"},
        "sender": {"login": "dev", "type": "User"}}


def done(st):
    return st not in (None, "received", "processing")


def states(data_dir, ids):
    con = dtest.store_db(data_dir)
    try:
        rows = con.execute("SELECT delivery_id, state FROM deliveries").fetchall()
    finally:
        con.close()
    return {d: s for d, s in rows if d in ids}


def main():
    d = os.path.join(dtest.TMP, "sd1")
    srv = Healer(d, ENV).start()
    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        srv.proc.send_signal(sig)
    time.sleep(0.5)
    st, _ = srv.request("GET", "/health")
    check("SIGHUP, SIGUSR1 and SIGUSR2 leave the server running and serving",
          srv.proc.poll() is None and st == 200, [srv.proc.poll(), st, srv.log_tail()[-800:]])
    check("each ignored signal is logged",
          srv.log_tail().count("signal ignored") == 3, srv.log_tail()[-1500:])

    st, _ = srv.deliver(job(1), delivery="sd-before")
    check("before SIGTERM a delivery is taken by a worker",
          wait_for(lambda: done(states(d, {"sd-before"}).get("sd-before")), 15),
          [st, states(d, {"sd-before"})])
    t0 = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    ids = set()
    for i in range(6):
        st, _ = srv.deliver(job(10 + i), delivery=f"sd-during-{i}")
        if st == 202:
            ids.add(f"sd-during-{i}")
        time.sleep(0.15)
    rc = srv.proc.wait(timeout=30 * TIME_SCALE)
    took = time.time() - t0
    check("SIGTERM: exit 0 within the shutdown delay and a few seconds",
          rc == 0 and took < 2 + 5 * TIME_SCALE, [rc, round(took, 2)])
    got = states(d, ids)
    check("deliveries accepted during the shutdown delay are left received, not claimed",
          len(ids) == 6 and got == {i: "received" for i in ids}, [sorted(ids), got])
    srv.start()
    check("the next start processes them",
          wait_for(lambda: all(done(v) for v in states(d, ids).values()), 15),
          states(d, ids))
    srv.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
