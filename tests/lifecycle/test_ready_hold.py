#!/usr/bin/env python3
"""test_ready_hold.py - /ready on a full disk against a real `healer
server` whose data directory is a small tmpfs: once a delivery cannot be
stored (503 store_unavailable), /ready answers 503 with the reason, also
when a small write would still go through, until a delivery is stored
again; then 200. Skipped when a tmpfs cannot be mounted (not root, no
permission) or on PostgreSQL. Standard library only; prints TAP."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import Healer  # noqa: E402

SECRET = "ready-full-secret"
ENV = {"GITHUB_WEBHOOK_SECRET": SECRET, "HEALER_DISPATCH": "none", "HEALER_LOG_LEVEL": "info",
       "HEALER_RETENTION_DAYS": "0"}


def job(n, pad=0):
    repo, sha = "acme/readyfull", "0123456789abcdef0123456789abcdef01234567"
    jid, rid = 930000 + n, 830000 + n
    return {"action": "completed", "workflow_job": {
        "id": jid, "run_id": rid, "run_attempt": 1, "workflow_name": "CI", "name": "test",
        "head_branch": f"rf/b{n}", "head_sha": sha, "status": "completed",
        "conclusion": "failure", "labels": ["x" * pad] if pad else [],
        "html_url": f"https://github.com/{repo}/actions/runs/{rid}/job/{jid}",
        "steps": [{"name": "Run tests", "status": "completed", "conclusion": "failure",
                   "number": 3}]},
        "repository": {"full_name": repo, "html_url": f"https://github.com/{repo}",
                       "default_branch": "main"},
        "sender": {"login": "dev", "type": "User"}}


def fill(path):
    """Writes path until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def main():
    if dtest.on_postgres():
        print("1..0 # SKIP the data directory's disk matters on SQLite only")
        sys.exit(0)
    mnt = os.path.join(dtest.TMP, "rf-mnt")
    os.makedirs(mnt, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
                      capture_output=True).returncode != 0:
        print("1..0 # SKIP cannot mount a tmpfs here")
        sys.exit(0)
    srv = None
    try:
        d = os.path.join(mnt, "d")
        srv = Healer(d, ENV).start()
        st, _ = srv.request("GET", "/ready")
        check("ready before the disk fills", st == 200, st)
        filler = os.path.join(mnt, "filler")
        fill(filler)
        refused = None
        for i in range(40):
            st, body = srv.deliver(job(i, pad=8000))
            if st == 503:
                refused = body
                break
        check("a delivery the full disk cannot take is refused 503 store_unavailable",
              refused is not None and refused.get("error") == "store_unavailable",
              [st, refused])
        # room for a small write again: the probe alone would say ready
        os.truncate(filler, max(0, os.path.getsize(filler) - 48 * 1024))
        st, body = srv.request("GET", "/ready")
        check("/ready answers 503 with the reason while deliveries are not stored",
              st == 503 and "could not be stored" in json.dumps(body), [st, body])
        st, body = srv.request("GET", "/ready")
        check("and still 503 on the next probe", st == 503, [st, body])
        time.sleep(1.5)  # past the probe write's own 1 s cache: the hold decides
        st, body = srv.request("GET", "/ready")
        check("and 1.5 s later, the probe write succeeding, still 503",
              st == 503 and "could not be stored" in json.dumps(body), [st, body])
        os.unlink(filler)
        st, _ = srv.deliver(job(100))
        check("with room again a delivery is stored", st == 202, st)
        st, body = srv.request("GET", "/ready")
        check("/ready is 200 again after a delivery is stored", st == 200, [st, body])
        srv.stop()
    finally:
        if srv and srv.proc and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait(timeout=10)
        subprocess.run(["umount", "-l", mnt])
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
