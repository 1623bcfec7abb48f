#!/usr/bin/env python3
"""test_soak.py - healer under a steady load for a while: its resident
memory, open file descriptors and threads must stay flat.

A `healer server` (Kubernetes dispatch to the TLS stand-in, GitHub and the
context sources on the other stand-ins) receives a steady stream of
deliveries at SOAK_RATE a second for SOAK_SECONDS (default 100): failed jobs
(remediated: job log, context, classification, a CodeRun, which a
controller thread fails at once so the task escalates), successful jobs,
redeliveries of both, sensor calls, and /api/status, /metrics and
/api/remediations reads. Every second the driver samples VmRSS and Threads
from /proc/PID/status and counts /proc/PID/fd.

The first SOAK_WARMUP seconds (default a third of the run) fill caches,
pools and the SQLite page cache and are not judged. Then, comparing the
medians of the first and the last fifth of the judged samples:
  - RSS grows by at most max(8 MiB, 10%) (RSS_TOLERANCE_MB / _PCT), and
    the least-squares slope over the judged window, projected over one
    hour of this load, stays under 64 MiB;
  - descriptors other than sockets grow by at most 1 (sockets come and go
    with the connections in flight), and the last sample of all
    descriptors once idle is at most the first judged median + 2;
  - threads do not grow.
Every delivery must be answered 202 and the backlog must drain at the end.
`make soak SOAK_SECONDS=1800` runs it longer. Standard library only;
prints TAP."""
import hashlib
import hmac
import http.client
import json
import os
import ssl
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import Healer, wait_for  # noqa: E402


def note(text):
    """A line for the log (stderr: the TAP stream on stdout starts at the end)."""
    print("# " + text, file=sys.stderr, flush=True)


SECRET = "soak-webhook-secret"
API_TOKEN = "soak-api-token"
GTOKEN = "ghs_soak_token"
KTOKEN = "kube-soak-token"
REPO = "acme/widgets"
SHA = "0123456789abcdef0123456789abcdef01234567"
SECONDS = float(os.environ.get("SOAK_SECONDS", "100"))
WARMUP = float(os.environ.get("SOAK_WARMUP", str(SECONDS / 3)))
RATE = float(os.environ.get("SOAK_RATE", "40"))
RSS_TOL_MB = float(os.environ.get("RSS_TOLERANCE_MB", "8"))
RSS_TOL_PCT = float(os.environ.get("RSS_TOLERANCE_PCT", "10"))
LOG = ("##[group]Run cargo clippy\nerror: this expression creates a reference which is "
       "immediately dereferenced by the compiler\n##[error]Process completed with exit code 101.\n")


def job(job_id, run_id, conclusion):
    return {
        "action": "completed",
        "workflow_job": {
            "id": job_id, "run_id": run_id, "run_attempt": 1, "workflow_name": "Rust CI",
            "name": "clippy", "head_branch": f"feat/r{run_id}", "head_sha": SHA,
            "status": "completed", "conclusion": conclusion,
            "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}/job/{job_id}",
            "steps": [{"name": "Run clippy", "status": "completed", "conclusion": conclusion,
                       "number": 3}],
        },
        "repository": {"full_name": REPO, "html_url": f"https://github.com/{REPO}",
                       "default_branch": "main"},
        "sender": {"login": "dev", "type": "User"},
    }


ca = dtest.make_ca("kube")
_, kport = dtest.start_stub("kube_stub.py", "--cert", ca["cert"], "--key", ca["key"],
                            "--token", KTOKEN, "--crd", dtest.CRD)
KURL = f"https://127.0.0.1:{kport}"
KCTX = ssl.create_default_context(cafile=ca["ca"])
kubeconfig = dtest.write_kubeconfig(os.path.join(dtest.TMP, "kubeconfig"), KURL,
                                    ca_path=ca["ca"], token=KTOKEN, namespace="cto")
# a budget no run of this test spends (the stand-in keeps GitHub's 5000 an
# hour by default, and refuses past it as GitHub does)
_, gport = dtest.start_stub("github_stub.py", "--token", GTOKEN, "--budget", "100000000:3600")
GURL = f"http://127.0.0.1:{gport}"
_, sport = dtest.start_stub("generic_stub.py")
SURL = f"http://127.0.0.1:{sport}"
dtest.http("POST", SURL + "/_stub/config", {"routes": [
    {"method": "GET", "path": "/api/v1/applications/",
     "body": {"metadata": {"name": "widgets"},
              "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}}},
    {"method": "GET", "path": "/loki/api/v1/query_range",
     "body": {"status": "success", "data": {"resultType": "streams", "result": []}}},
    {"method": "GET", "path": "/api/v1/query",
     "body": {"status": "success", "data": {"resultType": "vector", "result": []}}}]})
# every failed job's log (ids are allotted below, one in ten deliveries)
N_TOTAL = int(SECONDS * RATE) + 10
dtest.http("POST", GURL + "/_stub/seed",
           {"logs": {str(600000 + i): LOG for i in range(N_TOTAL // 10 + 10)}}, token=GTOKEN)


def kube(method, path, body=None):
    return dtest.http(method, KURL + path, body, ctx=KCTX, token=KTOKEN)


ENV = {
    "GITHUB_WEBHOOK_SECRET": SECRET, "HEALER_API_TOKEN": API_TOKEN,
    "GITHUB_API_URL": GURL, "GITHUB_TOKEN": GTOKEN,
    "KUBECONFIG": kubeconfig, "HEALER_DISPATCH": "kubernetes", "HEALER_NAMESPACE": "cto",
    "ARGOCD_SERVER": SURL, "LOKI_URL": SURL, "PROMETHEUS_URL": SURL,
    "HEALER_TIME_WINDOW_MINS": "0", "HEALER_MAX_ATTEMPTS": "1",
    "HEALER_MAX_ACTIVE_CODERUNS": "0", "HEALER_MAX_ATTEMPTS_PER_HOUR": "0",
    "HEALER_LOOP_INTERVAL_MS": "200", "HEALER_LOG_LEVEL": "warn",
}
srv = Healer(os.path.join(dtest.TMP, "soak"), ENV).start()
PID = srv.proc.pid


def sample():
    with open(f"/proc/{PID}/status") as f:
        st = dict(line.split(":", 1) for line in f if ":" in line)
    fds = os.listdir(f"/proc/{PID}/fd")
    files = 0
    for fd in fds:
        try:
            files += not os.readlink(f"/proc/{PID}/fd/{fd}").startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return {"t": time.monotonic(), "rss": int(st["VmRSS"].split()[0]) * 1024,
            "threads": int(st["Threads"]), "fds": len(fds), "files": files}


def signed(body, event, delivery):
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig}


class Conn:
    """One kept-alive connection per sender, as a proxy in front of healer
    would keep; reopened when healer closes it."""

    def __init__(self):
        self.c = None

    def call(self, method, path, body=None, headers=None):
        for _ in range(2):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            try:
                self.c.request(method, path, body, headers or {})
                r = self.c.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.c.close()
                    self.c = None
                return r.status, data
            except (OSError, http.client.HTTPException):
                self.c.close()
                self.c = None
        return 0, b""


stats = {"sent": 0, "ok": 0, "bad": [], "failures": 0}
lock = threading.Lock()
stop = threading.Event()


def sender(idx, n_senders):
    """Delivery k (k = idx, idx + n_senders, ...) at k / RATE seconds."""
    conn, t0, k = Conn(), time.monotonic(), idx
    while not stop.is_set():
        due = t0 + k / RATE
        if due > t0 + SECONDS:
            return
        time.sleep(max(0.0, due - time.monotonic()))
        kind = k % 10
        if kind == 0:  # a failure, remediated
            body = json.dumps(job(600000 + k // 10, 200000 + k // 10, "failure")).encode()
            st, _ = conn.call("POST", "/webhook", body, signed(body, "workflow_job", f"s{k}"))
            with lock:
                stats["failures"] += 1
        elif kind == 5:  # a redelivery of the previous failure
            j = k // 10
            body = json.dumps(job(600000 + j, 200000 + j, "failure")).encode()
            st, _ = conn.call("POST", "/webhook", body, signed(body, "workflow_job", f"s{j * 10}"))
        elif kind == 7:  # the CI sensor
            body = json.dumps({"body": job(650000 + k, 250000 + k, "success")}).encode()
            st, _ = conn.call("POST", "/api/remediate/ci-failure", body, {
                "Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}",
                "X-GitHub-Event": "workflow_job", "X-GitHub-Delivery": f"sensor{k}"})
        else:  # successes, tracked
            body = json.dumps(job(700000 + k, 300000 + k // 4, "success")).encode()
            st, _ = conn.call("POST", "/webhook", body, signed(body, "workflow_job", f"s{k}"))
        with lock:
            stats["sent"] += 1
            if st in (200, 202):
                stats["ok"] += 1
            else:
                stats["bad"].append((k, st))
        k += n_senders


def reader():
    conn, i = Conn(), 0
    while not stop.wait(0.5):
        path = ["/api/status", "/metrics", "/health", "/ready"][i % 4]
        conn.call("GET", path, headers={"Authorization": f"Bearer {API_TOKEN}"})
        i += 1


def completer():
    done = set()
    while not stop.wait(0.3):
        try:
            for cr in kube("GET", "/_stub/coderuns?phase=") or []:
                name = cr["metadata"]["name"]
                if name not in done and not (cr.get("status") or {}).get("phase"):
                    kube("POST", "/_stub/coderun-phase", {
                        "namespace": "cto", "name": name, "phase": "Failed",
                        "message": "done (soak)", "status": {}})
                    done.add(name)
        except OSError:
            pass


def slope(xs, ys):
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def main():
    n_senders = 4
    threads = [threading.Thread(target=sender, args=(i, n_senders)) for i in range(n_senders)]
    threads += [threading.Thread(target=reader), threading.Thread(target=completer)]
    t0 = time.monotonic()
    samples = [sample()]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads[:n_senders]):
        time.sleep(1.0)
        samples.append(sample())
    elapsed = time.monotonic() - t0
    # drain: every failure has its CodeRun and the workers are idle
    fails = stats["failures"]
    drained = wait_for(lambda: len(kube("GET", "/_stub/coderuns") or []) >= fails, 60)
    time.sleep(2.0)
    idle = sample()
    stop.set()
    for t in threads:
        t.join(timeout=30)

    judged = [s for s in samples if s["t"] - t0 >= WARMUP]
    fifth = max(1, len(judged) // 5)
    first, last = judged[:fifth], judged[-fifth:]
    med = lambda xs, k: statistics.median(s[k] for s in xs)  # noqa: E731
    rss0, rss1 = med(first, "rss"), med(last, "rss")
    fd0, fd1 = med(first, "fds"), med(last, "fds")
    fl0, fl1 = med(first, "files"), med(last, "files")
    th0, th1 = med(first, "threads"), med(last, "threads")
    per_s = slope([s["t"] for s in judged], [s["rss"] for s in judged])
    mib = 1024 * 1024
    note(f"{stats['sent']} requests in {elapsed:.0f} s ({stats['sent'] / elapsed:.0f}/s), "
          f"{fails} failures remediated; {len(judged)} samples judged after {WARMUP:.0f} s")
    note(f"RSS {rss0 / mib:.1f} -> {rss1 / mib:.1f} MiB (slope {per_s * 3600 / mib:.1f} MiB/h), "
          f"fds {fd0:.0f} -> {fd1:.0f} (idle {idle['fds']}), threads {th0:.0f} -> {th1:.0f}")
    check(f"every request ({stats['sent']}) was answered 2xx",
          stats["sent"] > 0 and stats["ok"] == stats["sent"], stats["bad"][:10])
    check("the backlog drained: every failure has its CodeRun", drained,
          srv.log_tail()[-1500:])
    allowed = max(RSS_TOL_MB * mib, rss0 * RSS_TOL_PCT / 100)
    check(f"RSS stays flat: +{(rss1 - rss0) / mib:.1f} MiB <= {allowed / mib:.1f} MiB",
          rss1 - rss0 <= allowed, [(round(s["t"] - t0), s["rss"] // 1024) for s in samples])
    check(f"RSS trend under 64 MiB per hour ({per_s * 3600 / mib:.1f})",
          per_s * 3600 < 64 * mib, per_s)
    # sockets come and go with the connections in flight (the context
    # fetches of each failure: more at once on a loaded machine), so under
    # load only the other descriptors must stay flat; every socket must be
    # closed again once idle
    check(f"descriptors other than sockets stay flat: {fl0:.0f} -> {fl1:.0f}",
          fl1 <= fl0 + 1, [(round(s["t"] - t0), s["files"]) for s in samples])
    check(f"open descriptors once idle are back to the start: {fd0:.0f} under load at the "
          f"start, idle {idle['fds']}", idle["fds"] <= fd0 + 2,
          [(round(s["t"] - t0), s["fds"]) for s in samples])
    check(f"threads stay flat: {th0:.0f} -> {th1:.0f}", th1 <= th0, (th0, th1))
    srv.stop()
    check("SIGTERM stops the server cleanly after the soak", srv.proc.returncode == 0,
          srv.log_tail()[-1500:])
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
