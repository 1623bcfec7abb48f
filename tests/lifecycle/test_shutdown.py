#!/usr/bin/env python3
"""test_shutdown.py - the server's signals and shutdown sequence against a
real `healer server` on 127.0.0.1: SIGHUP, SIGUSR1 and SIGUSR2 are logged
and ignored (the server keeps serving; nothing is reloaded); after SIGTERM
deliveries are still processed during the shutdown delay and the process
exits 0 within the delay plus a few seconds; once the drain starts (here
held by a client sending its body slowly) the workers claim nothing more:
a backlog stays `received` for the next start.
Standard library only; prints TAP."""
import os
import signal
import hashlib
import hmac
import http.server
import json
import socket
import threading
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
    st, _ = srv.deliver(job(10), delivery="sd-during")
    check("a delivery during the shutdown delay is accepted and processed in it",
          st == 202 and wait_for(lambda: done(states(d, {"sd-during"}).get("sd-during")), 1.5),
          [st, states(d, {"sd-during"})])
    rc = srv.proc.wait(timeout=30 * TIME_SCALE)
    took = time.time() - t0
    check("SIGTERM: exit 0 within the shutdown delay and a few seconds",
          rc == 0 and took < 2 + 5 * TIME_SCALE, [rc, round(took, 2)])
    srv.stop()

    # a backlog (one worker, each delivery held by a slow GitHub) and a drain held by a client sending its body slowly: the
    # workers take no delivery of the backlog once the drain starts
    class Slow(http.server.BaseHTTPRequestHandler):
        """A GitHub answering every call 404, after 100 ms."""
        def do_GET(self):
            time.sleep(0.1)
            body = b'{"message": "Not Found"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        do_POST = do_PATCH = do_PUT = do_GET

        def log_message(self, *a):
            pass
    hole = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=hole.serve_forever, daemon=True).start()
    d2 = os.path.join(dtest.TMP, "sd2")
    env2 = dict(ENV, HEALER_SHUTDOWN_DELAY_S="0", HEALER_WORKERS="1", GITHUB_TOKEN="ghs_sd_token",
                HEALER_TIME_WINDOW_MINS="0",
                GITHUB_API_URL=f"http://127.0.0.1:{hole.server_address[1]}",
                HEALER_SOURCE_TIMEOUT_MS="1000", HEALER_CONTEXT_TIMEOUT_MS="1000")
    srv2 = Healer(d2, env2).start()
    ids = {f"sd-backlog-{i}" for i in range(12)}
    for i in range(12):
        srv2.deliver(job(100 + i), delivery=f"sd-backlog-{i}")
    slow = socket.create_connection(("127.0.0.1", srv2.port), timeout=20)
    body = json.dumps(job(99)).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    slow.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: sd-slow\r\n"
                 b"X-GitHub-Hook-ID: 1\r\nX-Hub-Signature-256: " + sig.encode() +
                 b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:20])
    time.sleep(0.3)
    at_term = states(d2, ids)
    t0 = time.time()
    srv2.proc.send_signal(signal.SIGTERM)
    time.sleep(3)
    slow.close()
    rc = srv2.proc.wait(timeout=30 * TIME_SCALE)
    took = time.time() - t0
    after = states(d2, ids)
    # handed off to the workers (stored claimed) or waiting in the store
    waiting = [k for k, v in at_term.items() if not done(v)]
    taken = [k for k in waiting if done(after.get(k))]
    check("a backlog waits at SIGTERM (the set-up holds)", len(waiting) >= 4, at_term)
    check("once the drain started only the delivery in hand is finished; the rest wait",
          len(taken) <= 1 and all(after.get(k) == "received" for k in waiting if k not in taken),
          [at_term, after])
    check("the process exits 0 once the drain and the delivery in hand end",
          rc == 0 and took < 3 + 8 * TIME_SCALE, [rc, round(took, 2)])
    hole.shutdown()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
