#!/usr/bin/env python3
"""test_ready_full.py - readiness on a full disk (contract section 4: /ready
is 200 only while the store works). The data directory is a 3 MB tmpfs;
once a ballast file fills it, deliveries get 503 store_unavailable, and
/ready must answer 503 too (the Service stops sending deliveries here)
instead of 200 while every delivery fails; once the ballast is gone /ready
is 200 again without any delivery (its own write goes through) and a
delivery is stored. Needs root to mount the tmpfs (skipped otherwise).
Standard library only; prints TAP."""
import atexit
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import Healer, wait_for  # noqa: E402

ENV = {"GITHUB_WEBHOOK_SECRET": "ready-full-secret", "HEALER_DISPATCH": "none",
       "HEALER_TIME_WINDOW_MINS": "0", "GITHUB_API_URL": "http://127.0.0.1:9",
       "HEALER_WORKERS": "1", "HEALER_LOG_LEVEL": "info"}


def job(job_id):
    return {"action": "completed",
            "workflow_job": {"id": job_id, "run_id": job_id + 1, "run_attempt": 1,
                             "workflow_name": "CI", "name": "build", "head_branch": "main",
                             "head_sha": "a" * 40, "status": "completed", "conclusion": "failure",
                             "steps": [], "padding": os.urandom(6000).hex()},
            "repository": {"full_name": "acme/widgets", "default_branch": "main"},
            "sender": {"login": "dev", "type": "User"}}


def fill(path):
    try:
        with open(path, "wb") as f:
            while True:
                f.write(os.urandom(1 << 16))
                f.flush()
    except OSError:
        pass  # full


def main():
    data_dir = os.path.join(dtest.TMP, "full")
    os.makedirs(data_dir)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", data_dir],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"1..0 # SKIP no tmpfs for the data directory ({r.stderr.strip()})")
        return
    atexit.register(lambda: subprocess.run(["umount", "-l", data_dir], capture_output=True))
    srv = Healer(data_dir, ENV).start()
    st, _ = srv.request("GET", "/ready")
    check("/ready is 200 on a store with room", st == 200, st)
    st, ans = srv.deliver(job(8100))
    check("a delivery is stored", st == 202, (st, ans))

    ballast = os.path.join(data_dir, "ballast")
    fill(ballast)
    refused = None
    for i in range(40):
        st, ans = srv.deliver(job(8200 + 10 * i))
        if st == 503:
            refused = ans
            break
    check("on the full disk a delivery gets 503 store_unavailable",
          refused and refused.get("error") == "store_unavailable", (st, ans))
    st, ans = srv.request("GET", "/ready")
    check("/ready answers 503 while intake cannot store", st == 503
          and ans.get("error") == "not_ready", (st, ans))
    time.sleep(1.2)
    st, ans = srv.request("GET", "/ready")
    check("and still 503 a second later (its own write fails too)", st == 503, (st, ans))

    os.unlink(ballast)
    ready = wait_for(lambda: srv.request("GET", "/ready")[0] == 200, 10)
    check("with room again /ready is 200 without any delivery", ready,
          srv.request("GET", "/ready"))
    st, ans = srv.deliver(job(9100))
    check("and a delivery is stored again", st == 202, (st, ans))
    srv.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
