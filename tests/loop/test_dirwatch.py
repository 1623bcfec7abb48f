#!/usr/bin/env python3
"""test_dirwatch.py - directory dispatch's CodeRun files on a running
`healer server`: the watcher reads each file once and then only the new or
changed ones (healer_coderun_files_read_total stays put while nothing
changes, however many files there are), and retention removes an old
CodeRun file in a terminal phase whose task is over while it keeps an old
active one and a recent finished one. Standard library only; prints TAP."""
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import Healer, wait_for  # noqa: E402

ENV = {"GITHUB_WEBHOOK_SECRET": "dirwatch-secret", "HEALER_DISPATCH": "directory",
       "HEALER_LOOP_INTERVAL_MS": "100", "HEALER_RETENTION_DAYS": "4",
       "HEALER_LOG_LEVEL": "info"}


def put(cdir, name, task, phase, days_old=0):
    m = {"apiVersion": "agents.platform/v1", "kind": "CodeRun",
         "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "healer",
                                               "healer/task-id": task}},
         "spec": {}, "status": {"phase": phase}}
    path = os.path.join(cdir, name + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(m, f)
    os.rename(path + ".tmp", path)
    if days_old:
        t = time.time() - days_old * 86400
        os.utime(path, (t, t))


def metric(srv):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    for ln in text.splitlines():
        if ln.startswith("healer_coderun_files_read_total "):
            return int(float(ln.split()[1]))
    return None


def main():
    d = os.path.join(dtest.TMP, "dw1")
    cdir = os.path.join(d, "coderuns")
    os.makedirs(cdir, exist_ok=True)
    for i in range(40):
        put(cdir, f"dw-recent-{i:02d}", f"dw-task-{i}", "Failed")
    put(cdir, "dw-old-done", "dw-task-old", "Succeeded", days_old=6)
    put(cdir, "dw-old-active", "dw-task-old2", "Running", days_old=6)
    srv = Healer(d, ENV).start()
    check("every CodeRun file is read once at the start",
          wait_for(lambda: (metric(srv) or 0) >= 41, 10), metric(srv))
    time.sleep(0.5)
    before = metric(srv)
    time.sleep(1.5)
    after = metric(srv)
    check("while nothing changes no CodeRun file is read again (15 passes)",
          before is not None and after == before, [before, after])
    put(cdir, "dw-recent-05", "dw-task-5", "Succeeded")
    # alone: once, or twice when a pass came while its write was under
    # 100 ms old (not yet remembered)
    check("a changed file is read again, alone",
          wait_for(lambda: metric(srv) >= before + 1, 5) and
          (time.sleep(0.5) or before + 1 <= metric(srv) <= before + 2), [before, metric(srv)])
    # a file whose last write is this moment (here: its time set ahead) is
    # read on every pass: a rewrite in place within one timestamp tick
    # would otherwise look unchanged
    put(cdir, "dw-racy", "dw-task-racy", "Pending")
    ahead = time.time() + 60
    os.utime(os.path.join(cdir, "dw-racy.json"), (ahead, ahead))
    time.sleep(0.3)
    b = metric(srv)
    # passes come every 100 ms: four more reads (bounded wait; a file read
    # once and then remembered stays at one)
    check("a file written in the last moments is read again on each pass",
          wait_for(lambda: metric(srv) - b >= 4, 5), [b, metric(srv)])
    os.unlink(os.path.join(cdir, "dw-racy.json"))
    names = set(os.listdir(cdir))
    check("retention removed the old finished CodeRun file of a task no longer stored",
          "dw-old-done.json" not in names, sorted(names)[:5])
    check("retention kept the old active one and the recent finished ones",
          "dw-old-active.json" in names and
          sum(n.startswith("dw-recent-") for n in names) == 40, len(names))
    srv.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
