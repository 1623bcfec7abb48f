"""healerproc.py - a `healer server` process for the integration drivers:
start it on a free loopback port with an environment, send signed
deliveries and API requests, kill it (SIGKILL) or stop it (SIGTERM), and
wait for conditions with a deadline. On PostgreSQL (tests/pg/pgrun.py) each
data directory gets a database of its own (dtest.clean_env). Python
standard library only."""
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import time

import dtest

# Deadlines of waits for the server (not of checks that something does
# not happen) stretch by HEALER_TEST_TIME_SCALE: the sanitizer builds run
# several times slower (make test sets 3 for them, as meson's timeouts).
TIME_SCALE = max(1.0, float(os.environ.get("HEALER_TEST_TIME_SCALE") or 1))


class Healer:
    def __init__(self, data_dir, env):
        self.data_dir, self.env = data_dir, env
        self.proc = None

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        pf = os.path.join(self.data_dir, "port")
        if os.path.exists(pf):
            os.unlink(pf)
        log = open(os.path.join(self.data_dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [dtest.HEALER, "server", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
             "--port-file", pf], env=dtest.clean_env(self.env, data_dir=self.data_dir),
            stdout=log, stderr=log)
        dtest._procs.append(self.proc)
        if not any(d == self.data_dir for d, _ in dtest.servers):
            dtest.servers.append((self.data_dir, self.log_tail))
        deadline = time.time() + 20 * TIME_SCALE
        while time.time() < deadline:
            if os.path.exists(pf) and open(pf).read().strip():
                self.port = int(open(pf).read())
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("healer did not start: " + self.log_tail())

    def log_tail(self):
        return open(os.path.join(self.data_dir, "server.log"), errors="replace").read()[-3000:]

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20 * TIME_SCALE)

    def request(self, method, path, body=None, headers=None, timeout=30):
        headers = dict(headers or {})
        if method == "GET" and self.env.get("HEALER_API_TOKEN"):
            # the read API needs the token when one is set (contract section 13)
            headers.setdefault("Authorization", "Bearer " + self.env["HEALER_API_TOKEN"])
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            try:
                return r.status, json.loads(data)
            except ValueError:
                return r.status, {"raw": data[:300].decode("latin-1")}
        finally:
            c.close()

    def deliver(self, payload, event="workflow_job", delivery=None, hook="1"):
        body = json.dumps(payload).encode()
        sig = "sha256=" + hmac.new(self.env["GITHUB_WEBHOOK_SECRET"].encode(), body,
                                   hashlib.sha256).hexdigest()
        return self.request("POST", "/webhook", body, {
            "Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or os.urandom(8).hex(), "X-GitHub-Hook-ID": hook,
            "X-Hub-Signature-256": sig})


def wait_for(fn, timeout, step=0.1):
    deadline = time.time() + timeout * TIME_SCALE
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()
