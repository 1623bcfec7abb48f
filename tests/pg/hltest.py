"""hltest.py - `healer server` processes for the PostgreSQL drivers
(test_outage.py, test_replicas.py): start one on a data directory and a
store URL, talk to it (signed webhooks, sensor calls, JSON), stop or kill
it. Uses tests/dispatch/dtest.py for the clean environment, the stubs and
TAP. Standard library only.
"""
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402

SECRET = "pg-webhook-secret"
TOKEN = "pg-sensor-token"
REPO = "acme/widgets"


def job_event(job_id, run_id, conclusion="failure", branch="feat/x"):
    """A workflow_job completion (a failure is remediated, a success tracked)."""
    return {
        "action": "completed",
        "workflow_job": {
            "id": job_id, "run_id": run_id, "run_attempt": 1, "workflow_name": "Rust CI",
            "name": "clippy", "head_branch": branch, "head_sha": "a" * 40,
            "status": "completed", "conclusion": conclusion,
            "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}/job/{job_id}",
            "steps": [{"name": "Run clippy", "status": "completed", "conclusion": conclusion,
                       "number": 3}],
        },
        "repository": {"full_name": REPO, "html_url": f"https://github.com/{REPO}",
                       "default_branch": "main"},
        "sender": {"login": "dev", "type": "User"},
    }


class Healer:
    """One server. Replicas may share a data directory (their CodeRun
    files then land in one place): name tells their port and log files
    apart."""

    def __init__(self, data_dir, env, store_url=None, name="server", listen="127.0.0.1:0"):
        self.data_dir, self.env, self.store_url = data_dir, dict(env), store_url
        self.name, self.listen = name, listen
        self.proc, self.port = None, None

    def start(self, timeout=30):
        os.makedirs(self.data_dir, exist_ok=True)
        pf = os.path.join(self.data_dir, self.name + ".port")
        if os.path.exists(pf):
            os.unlink(pf)
        env = dtest.clean_env(self.env, data_dir=None if self.store_url else self.data_dir)
        if self.store_url:
            env["HEALER_DATABASE_URL"] = self.store_url
        log = open(os.path.join(self.data_dir, self.name + ".log"), "ab")
        self.proc = subprocess.Popen(
            [dtest.HEALER, "server", "--listen", self.listen, "--data-dir", self.data_dir,
             "--port-file", pf], env=env, stdout=log, stderr=log)
        log.close()
        dtest._procs.append(self.proc)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(pf) and open(pf).read().strip():
                self.port = int(open(pf).read())
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("healer did not start: " + self.log()[-3000:])

    def log(self):
        return open(os.path.join(self.data_dir, self.name + ".log"), errors="replace").read()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        dtest._scan(self.log())

    def stop(self, timeout=30):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        dtest._scan(self.log())  # sanitizer reports fail dtest.finish()
        return self.proc.returncode

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

    def deliver(self, payload, delivery, event="workflow_job", timeout=30):
        body = json.dumps(payload).encode()
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return self.request("POST", "/webhook", body, {
            "Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig}, timeout=timeout)

    def sensor(self, payload, timeout=30):
        return self.request("POST", "/api/remediate/ci-failure", json.dumps(payload).encode(), {
            "Content-Type": "application/json", "Authorization": "Bearer " + TOKEN},
            timeout=timeout)

    def queue_depth(self):
        st, d = self.request("GET", "/api/status")
        return d.get("queue_depth") if st == 200 else None


def slow_loki(delay_ms):
    """A Loki stand-in whose queries answer (empty) only after delay_ms: a
    failure whose context reads it keeps its worker busy that long, and
    stays undecided. Returns its base URL (for LOKI_URL)."""
    _, port = dtest.start_stub("generic_stub.py")
    url = f"http://127.0.0.1:{port}"
    dtest.http("POST", url + "/_stub/config", {"routes": [
        {"method": "GET", "path": "/loki/api/v1/query_range", "delay_ms": delay_ms,
         "body": {"status": "success", "data": {"resultType": "streams", "result": []}}}]})
    return url


def base_env(**extra):
    e = {"GITHUB_WEBHOOK_SECRET": SECRET, "HEALER_API_TOKEN": TOKEN,
         "HEALER_TIME_WINDOW_MINS": "0", "HEALER_LOG_LEVEL": "info",
         "GITHUB_API_URL": "http://127.0.0.1:9"}
    e.update(extra)
    return e


def stub_json(port, path, body=None):
    """GET (no body) or POST body as JSON to a stand-in's control path; its
    JSON answer."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


# sanitizer builds run several times slower: deadlines stretch by this
TIME_SCALE = max(1.0, float(os.environ.get("HEALER_TEST_TIME_SCALE") or 1))


def wait_for(fn, timeout, step=0.05):
    """fn() until it is truthy or timeout seconds (times TIME_SCALE) passed;
    its last value."""
    deadline = time.time() + timeout * TIME_SCALE
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


# how many migrations the binary carries (one .sql file per step and backend)
MIGRATIONS = len([f for f in os.listdir(os.path.join(os.environ["HEALER_SOURCE_ROOT"], "src",
                                                     "store", "migrations", "sqlite"))
                  if f.endswith(".sql")])
