#!/usr/bin/env python3
"""test_lock.py - one `healer server` per SQLite data directory: a second
server on the same directory is refused at once with a message naming the
lock, the first keeps serving and processing, the store can still be read
while it runs (what read-only commands do), a SIGKILLed server's lock does
not outlive it, and an empty healer.db is refused instead of silently
becoming a new store. Standard library only; prints TAP."""
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import check, finish  # noqa: E402

HEALER = os.environ["HEALER_BIN"]
TMP = tempfile.mkdtemp(prefix="healer-lock-")
SECRET = "lock-test-secret"
procs = []


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "GITHUB_"))}
    e.pop("KUBECONFIG", None)
    e.update({"HOME": TMP, "HEALER_DISPATCH": "none", "GITHUB_API_URL": "http://127.0.0.1:9",
              "GITHUB_WEBHOOK_SECRET": SECRET})
    return e


def serve(data_dir, name):
    """(process, port or None, log text when it exited)."""
    os.makedirs(data_dir, exist_ok=True)
    pf = os.path.join(TMP, name + ".port")
    log = os.path.join(TMP, name + ".log")
    with open(log, "wb") as lf:
        p = subprocess.Popen([HEALER, "server", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                              "--port-file", pf], env=env(), stdout=lf, stderr=lf)
    procs.append(p)
    deadline = time.time() + 20
    while time.time() < deadline:
        if os.path.exists(pf) and open(pf).read().strip():
            return p, int(open(pf).read()), ""
        if p.poll() is not None:
            return p, None, open(log, errors="replace").read()
        time.sleep(0.02)
    return p, None, open(log, errors="replace").read()


def deliver(port, delivery, job_id):
    body = json.dumps({"action": "completed", "workflow_job": {
        "id": job_id, "run_id": job_id, "run_attempt": 1, "name": "build", "status": "completed",
        "conclusion": "success", "head_branch": "main", "head_sha": "b" * 40},
        "repository": {"full_name": "acme/widgets"}, "sender": {"login": "dev"}}).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "X-GitHub-Event": "workflow_job",
                                          "X-GitHub-Delivery": delivery,
                                          "X-Hub-Signature-256": sig})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def health(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
        return r.status


def main():
    d = os.path.join(TMP, "data")
    a, pa, _ = serve(d, "a")
    check("the first server starts", pa is not None)
    t0 = time.time()
    b, pb, text = serve(d, "b")
    check("a second server on the same data directory is refused at once",
          pb is None and b.returncode == 1 and time.time() - t0 < 10
          and "another healer server" in text and "healer.db.lock" in text, text[-500:])
    check("the first one still serves", pa and health(pa) == 200)
    ok = pa and all(deliver(pa, f"lock-{i}", 8000 + i) == 202 for i in range(4))
    check("the first one still takes deliveries", ok)
    con = sqlite3.connect(f"file:{os.path.join(d, 'healer.db')}?mode=ro", uri=True, timeout=5)
    n = None
    deadline = time.time() + 20
    while time.time() < deadline:
        n = con.execute("SELECT COUNT(*), SUM(process_count) FROM deliveries WHERE delivery_id"
                        " LIKE 'lock-%' AND state = 'processed'").fetchone()
        if n[0] == 4:
            break
        time.sleep(0.1)
    con.close()
    check("the store can be read while the server runs; each delivery processed once",
          n == (4, 4), n)
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=10)
    c, pc, text = serve(d, "c")
    check("after the first server is killed (SIGKILL) a new one starts", pc is not None, text[-500:])
    if pc:
        c.send_signal(signal.SIGTERM)
        c.wait(timeout=20)
        check("it stops cleanly", c.returncode == 0, c.returncode)

    e = os.path.join(TMP, "empty")
    os.makedirs(e)
    open(os.path.join(e, "healer.db"), "w").close()
    p, pe, text = serve(e, "e")
    check("an empty healer.db is refused, naming it, and left alone",
          pe is None and p.returncode == 1 and "empty" in text and "healer.db" in text
          and os.path.getsize(os.path.join(e, "healer.db")) == 0, text[-500:])
    finish()


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["rm", "-rf", TMP])
