#!/usr/bin/env python3
"""test_live.py - the dashboard's pages over time (live.cjs in Debian's
chromium, playwright-core) against a healer without a token on loopback:
pull request links checked against the task's repository, ages and running
durations counting on through 304s, the health page's sources asked again,
and the insight tables marked against their targets. The API documents
are the browser script's own. Standard library only; prints TAP."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import check, finish, reap, run  # noqa: E402
import bareserver  # noqa: E402

TMP = tempfile.mkdtemp(prefix="healer-live-")
procs = []


def serve():
    return bareserver.start(procs, TMP, TMP)


def main():
    port = serve()
    p = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "live.cjs")],
                       env=dict(os.environ, DASH_URL=f"http://127.0.0.1:{port}"),
                       capture_output=True, text=True, timeout=200)
    n = 0
    for line in p.stdout.splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        n += 1
        check(r["name"], r["ok"], r.get("detail"))
    check("the browser run printed its checks and exited 0", n >= 10 and p.returncode == 0,
          p.stdout[-1500:] + p.stderr[-1500:])
    finish()


if __name__ == "__main__":
    try:
        run(main)
    finally:
        reap(procs, TMP)
