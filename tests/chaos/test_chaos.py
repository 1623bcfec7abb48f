#!/usr/bin/env python3
"""test_chaos.py - thousands of deliveries while healer is SIGKILLed at
random moments and its neighbours fail, then: zero lost, zero doubled.

A `healer server` (Kubernetes dispatch to the TLS stand-in, GitHub and the
context sources on the other stand-ins) receives a shuffled stream of
deliveries from four senders: every failed job arrives as a workflow_job
from two hooks, as the check_run GitHub sends for it and once more as a
redelivery of the first; successful and still-running jobs arrive in
between. A sender that gets no answer, or 503, sends the same delivery
again (GitHub's redelivery), so every delivery ends answered 202.

Meanwhile a chaos thread, driven by a seeded RNG (the seed is printed;
CHAOS_SEED=N replays a run's schedule), SIGKILLs healer and starts it again
on the same data directory, and injects faults: GitHub 5xx, 429 and
secondary rate limits; context sources that hang past their deadline;
Kubernetes 503 and 409 Conflict on CodeRun creation, 410 Gone (a
compaction) and cut watch streams; a full disk (the SQLite data directory is
a small tmpfs that a ballast file fills for a moment); on PostgreSQL
(run through tests/pg/pgrun.py) a database restart instead. A completer
thread plays the CodeRun controller: each CodeRun fails at once, and with
HEALER_MAX_ATTEMPTS=1 its task ends escalated.

Checks, once the faults stop and the backlog drains: every delivery was
answered 202; every failure has exactly one task and exactly one CodeRun
(none for anything else); every task is in a final state or queued; every
stored delivery is processed, none left received or processing; no
sanitizer report in healer's log. Bounded: CHAOS_SECONDS of chaos
(default 60), then at most 90 s to drain. Standard library only; prints
TAP."""
import atexit
import hashlib
import hmac
import http.client
import json
import os
import random
import ssl
import subprocess
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


SECRET = "chaos-webhook-secret"
GTOKEN = "ghs_chaos_token"
KTOKEN = "kube-chaos-token"
REPO = "acme/widgets"
SHA = "0123456789abcdef0123456789abcdef01234567"
PG = dtest.on_postgres()
SEED = int(os.environ.get("CHAOS_SEED") or int.from_bytes(os.urandom(4), "big"))
CHAOS_SECONDS = float(os.environ.get("CHAOS_SECONDS", "60"))
FAILURES = int(os.environ.get("CHAOS_FAILURES", "150" if PG else "250"))
LOG = "\n".join([
    "2025-01-15T10:30:00.0000000Z ##[group]Run cargo clippy --all-targets -- -D warnings",
    "2025-01-15T10:30:02.0000000Z error: this expression creates a reference which is "
    "immediately dereferenced by the compiler",
    "2025-01-15T10:30:03.0000000Z error: could not compile `widgets` (lib) due to 1 previous error",
    "2025-01-15T10:30:03.0000000Z ##[error]Process completed with exit code 101.",
]) + "\n"
FINAL_OR_QUEUED = {"succeeded", "escalated", "stopped", "skipped", "queued"}

note(f"chaos seed {SEED} (CHAOS_SEED={SEED} replays it), {CHAOS_SECONDS:.0f} s, "
      f"{FAILURES} failures, store {'postgresql' if PG else 'sqlite'}")
rng = random.Random(SEED)


def job(job_id, run_id, conclusion, action="completed", branch=None):
    status = "completed" if action == "completed" else action
    return {
        "action": action,
        "workflow_job": {
            "id": job_id, "run_id": run_id, "run_attempt": 1, "workflow_name": "Rust CI",
            "name": "clippy", "head_branch": branch or f"feat/r{run_id}", "head_sha": SHA,
            "status": status, "conclusion": conclusion if action == "completed" else None,
            "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}/job/{job_id}",
            "steps": [{"name": "Run clippy", "status": status, "conclusion": conclusion,
                       "number": 3}],
        },
        "repository": {"full_name": REPO, "html_url": f"https://github.com/{REPO}",
                       "default_branch": "main"},
        "sender": {"login": "dev", "type": "User"},
    }


def check_run(job_id, run_id):
    url = f"https://github.com/{REPO}/actions/runs/{run_id}/job/{job_id}"
    return {
        "action": "completed",
        "check_run": {
            "id": job_id, "name": "clippy", "head_sha": SHA, "status": "completed",
            "conclusion": "failure", "external_id": "x", "html_url": url, "details_url": url,
            "app": {"slug": "github-actions", "id": 15368},
            "check_suite": {"id": 1, "head_branch": f"feat/r{run_id}", "head_sha": SHA},
            "output": {"title": None, "summary": None, "text": None}, "pull_requests": [],
        },
        "repository": {"full_name": REPO, "html_url": f"https://github.com/{REPO}",
                       "default_branch": "main"},
        "sender": {"login": "dev", "type": "User"},
    }


# ---- the deliveries ---------------------------------------------------------------
# (delivery id, event, hook, body bytes, failure job id or None)
deliveries, failure_ids = [], []
for i in range(FAILURES):
    jid, rid = 700000 + i, 300000 + i
    failure_ids.append(jid)
    body = json.dumps(job(jid, rid, "failure")).encode()
    deliveries.append((f"f{i}-h1", "workflow_job", "1", body, jid))
    deliveries.append((f"f{i}-h2", "workflow_job", "2", body, jid))
    deliveries.append((f"f{i}-cr", "check_run", "1", json.dumps(check_run(jid, rid)).encode(), jid))
    deliveries.append((f"f{i}-h1", "workflow_job", "1", body, jid))  # a redelivery
for i in range(FAILURES * 2):
    jid, rid = 800000 + i, 400000 + i // 4
    deliveries.append((f"ok{i}", "workflow_job", "1", json.dumps(job(jid, rid, "success")).encode(),
                       None))
for i in range(FAILURES):
    jid, rid = 900000 + i, 500000 + i
    deliveries.append((f"run{i}", "workflow_job", "1",
                       json.dumps(job(jid, rid, None, action="in_progress")).encode(), None))
rng.shuffle(deliveries)

# ---- stand-ins and the data directory ---------------------------------------------
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

data_dir = os.path.join(dtest.TMP, "chaos")
os.makedirs(data_dir)
tmpfs = False
if not PG:
    # a small disk of its own, so a ballast file can fill it
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", data_dir],
                       capture_output=True, text=True)
    tmpfs = r.returncode == 0
    if not tmpfs:
        note(f"no tmpfs for the data directory ({r.stderr.strip()}): no full-disk fault")
    elif not os.environ.get("DTEST_KEEP"):
        atexit.register(lambda: subprocess.run(["umount", "-l", data_dir], capture_output=True))


def kube(method, path, body=None):
    return dtest.http(method, KURL + path, body, ctx=KCTX, token=KTOKEN)


def sources(delay_ms=0):
    body = {"status": "success", "data": {"resultType": "vector", "result": []}}
    dtest.http("POST", SURL + "/_stub/config", {"routes": [
        {"method": "GET", "path": "/api/v1/applications/", "delay_ms": delay_ms,
         "body": {"metadata": {"name": "widgets"},
                  "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}}},
        {"method": "GET", "path": "/loki/api/v1/query_range", "delay_ms": delay_ms,
         "body": {"status": "success", "data": {"resultType": "streams", "result": []}}},
        {"method": "GET", "path": "/api/v1/query", "delay_ms": delay_ms, "body": body}]})


dtest.http("POST", GURL + "/_stub/seed", {"logs": {str(j): LOG for j in failure_ids}},
           token=GTOKEN)
sources()
kube("POST", "/_stub/config", {"watch_max_s": 5})

ENV = {
    "GITHUB_WEBHOOK_SECRET": SECRET, "HEALER_API_TOKEN": "chaos-api-token",
    "GITHUB_API_URL": GURL, "GITHUB_TOKEN": GTOKEN,
    "KUBECONFIG": kubeconfig, "HEALER_DISPATCH": "kubernetes", "HEALER_NAMESPACE": "cto",
    "ARGOCD_SERVER": SURL, "LOKI_URL": SURL, "PROMETHEUS_URL": SURL,
    "HEALER_SOURCE_TIMEOUT_MS": "800", "HEALER_CONTEXT_TIMEOUT_MS": "2000",
    "HEALER_TIME_WINDOW_MINS": "0", "HEALER_MAX_ATTEMPTS": "1",
    "HEALER_MAX_ACTIVE_CODERUNS": "0", "HEALER_MAX_ATTEMPTS_PER_HOUR": "0",
    "HEALER_WORKERS": "4", "HEALER_LOOP_INTERVAL_MS": "200", "HEALER_LEASE_SECONDS": "3",
    "HEALER_LOG_LEVEL": "info",
}
srv_lock = threading.Lock()  # held while healer is down or being restarted
srv = Healer(data_dir, ENV).start()
stats = {"kills": 0, "faults": {}, "retries": 0, "unexpected": []}
stats_lock = threading.Lock()


def count(key, sub=None):
    with stats_lock:
        if sub is None:
            stats[key] += 1
        else:
            stats[key][sub] = stats[key].get(sub, 0) + 1


# ---- senders ----------------------------------------------------------------------
answers = {}  # delivery index -> the 202 answer
queue = list(range(len(deliveries)))
queue_lock = threading.Lock()
stop_sending = threading.Event()


def post(d):
    did, event, hook, body, _ = d
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    with srv_lock:
        port = srv.port
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request("POST", "/webhook", body, {
            "Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": did, "X-GitHub-Hook-ID": hook, "X-Hub-Signature-256": sig})
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if r.status == 202 else data[:200])
    finally:
        c.close()


def sender(pace):
    """Sends deliveries from the queue, one every pace seconds at most, so
    they spread over most of the chaos."""
    jitter = random.Random()  # the chaos schedule alone comes from the seed
    while not stop_sending.is_set():
        t_next = time.monotonic() + pace
        with queue_lock:
            if not queue:
                return
            k = queue.pop()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not stop_sending.is_set():
            try:
                st, ans = post(deliveries[k])
            except (OSError, http.client.HTTPException, ValueError):
                st, ans = 0, None
            if st == 202:
                answers[k] = ans
                break
            if st not in (0, 503):
                with stats_lock:
                    stats["unexpected"].append((deliveries[k][0], st, ans))
                break
            count("retries")
            time.sleep(0.05 + jitter.random() * 0.2)
        time.sleep(max(0.0, t_next - time.monotonic()))


# ---- the CodeRun controller -------------------------------------------------------
stop_completer = threading.Event()


def completer():
    done = set()
    while not stop_completer.is_set():
        try:
            for cr in kube("GET", "/_stub/coderuns?phase=") or []:
                name = cr["metadata"]["name"]
                if name not in done and not (cr.get("status") or {}).get("phase"):
                    kube("POST", "/_stub/coderun-phase", {
                        "namespace": "cto", "name": name, "phase": "Failed",
                        "message": "the agent gave up (chaos)", "status": {}})
                    done.add(name)
        except OSError:
            pass
        stop_completer.wait(0.3)


# ---- chaos ------------------------------------------------------------------------
def restart():
    global srv
    with srv_lock:
        srv.kill()
        count("kills")
        srv = Healer(data_dir, ENV).start()


def fill_disk(hold_s):
    ballast = os.path.join(data_dir, "ballast")
    try:
        with open(ballast, "wb") as f:
            chunk = b"\0" * (1 << 20)
            while True:
                f.write(chunk)
                f.flush()
    except OSError:
        pass  # full
    time.sleep(hold_s)
    os.unlink(ballast)


def pg_restart(down_s):
    import pgtest
    pgtest.stop(rng.choice(["fast", "immediate"]))
    time.sleep(down_s)
    pgtest.start()


GITHUB_FAULTS = {
    "github-5xx": {"method": "GET", "path": "/repos/", "status": 502, "times": 40},
    "github-429": {"method": "GET", "path": "/repos/", "status": 429, "times": 20, "reset_in": 1,
                   "body": {"message": "API rate limit exceeded"}},
    "github-secondary": {"method": "GET", "path": "/repos/", "status": 403, "times": 20,
                         "headers": {"Retry-After": "1"},
                         "body": {"message": "You have exceeded a secondary rate limit."}},
}
KUBE_FAULTS = {
    "kube-503": {"method": "POST", "path": "/apis/agents.platform/v1/", "status": 503, "times": 8},
    "kube-409": {"method": "POST", "path": "/apis/agents.platform/v1/", "status": 409, "times": 4,
                 "body": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "reason": "Conflict", "code": 409,
                          "message": "Operation cannot be fulfilled on coderuns.agents.platform: "
                                     "the object has been modified; please apply your changes "
                                     "to the latest version and try again"}},
}


def chaos():
    """Every kind of fault once, in a seeded order, then seeded picks (kills
    weighted up) until CHAOS_SECONDS have passed."""
    kinds = ["kill", "github-5xx", "github-429", "github-secondary", "kube-503", "kube-409",
             "kube-compact", "kube-cut", "hang", "pg" if PG else ("disk" if tmpfs else "kill")]
    plan = list(kinds)
    rng.shuffle(plan)
    end = time.monotonic() + CHAOS_SECONDS
    while time.monotonic() < end:
        time.sleep(0.3 + rng.random() * 1.5)
        what = plan.pop() if plan else rng.choice(kinds + ["kill"] * 4)
        count("faults", what)
        try:
            if what == "kill":
                time.sleep(rng.random() * 0.5)
                restart()
            elif what in GITHUB_FAULTS:
                dtest.http("POST", GURL + "/_stub/config", {"rules": [GITHUB_FAULTS[what]]})
            elif what in KUBE_FAULTS:
                kube("POST", "/_stub/config", {"rules": [KUBE_FAULTS[what]]})
            elif what == "kube-compact":
                kube("POST", "/_stub/compact")
            elif what == "kube-cut":
                kube("POST", "/_stub/cut")
            elif what == "hang":
                sources(delay_ms=3000)
                time.sleep(1.0 + rng.random())
                sources()
            elif what == "disk":
                fill_disk(0.5 + rng.random() * 1.5)
            elif what == "pg":
                pg_restart(0.5 + rng.random() * 1.5)
        except (OSError, RuntimeError) as e:
            note(f"chaos step {what}: {e}")
    # the neighbours heal
    dtest.http("POST", GURL + "/_stub/config", {"rules": []})
    kube("POST", "/_stub/config", {"rules": []})
    sources()


def main():
    t0 = time.monotonic()
    pace = CHAOS_SECONDS * 0.7 / (len(deliveries) / 4)
    senders = [threading.Thread(target=sender, args=(pace,)) for _ in range(4)]
    threads = senders + [threading.Thread(target=completer)]
    for t in threads:
        t.start()
    chaos()
    with srv_lock:
        if srv.proc.poll() is not None:  # a kill left it down: start it again
            srv.start()
    for t in senders:
        t.join(timeout=150)
    stop_sending.set()
    t_chaos = time.monotonic() - t0
    note(f"{len(deliveries)} deliveries in {t_chaos:.0f} s; kills {stats['kills']}, "
          f"sender retries {stats['retries']}, faults {json.dumps(stats['faults'], sort_keys=True)}")
    check(f"every delivery ({len(deliveries)}) was answered 202 in the end",
          len(answers) == len(deliveries) and not stats["unexpected"],
          f"{len(deliveries) - len(answers)} unanswered; unexpected {stats['unexpected'][:5]}")

    # the tasks of each failure: its workflow_job deliveries (two hooks and a
    # redelivery) name one task; the check_run names its own, which the
    # claim of the failure key makes a duplicate
    tasks, task_job = {}, {}
    for k, ans in answers.items():
        jid = deliveries[k][4]
        if jid is not None and ans.get("task_id"):
            tasks.setdefault((jid, deliveries[k][1]), set()).add(ans["task_id"])
            task_job[ans["task_id"]] = jid
    split = {j: t for j, t in tasks.items() if j[1] == "workflow_job" and len(t) != 1}
    named = {j for j, _ in tasks}
    check("every failure has a task, one for all its workflow_job deliveries",
          len(named) == FAILURES and not split,
          f"{FAILURES - len(named)} without a task; split {list(split.items())[:3]}")

    def per_failure():
        by, stray = {}, []
        for cr in kube("GET", "/_stub/coderuns") or []:
            tid = cr["metadata"].get("labels", {}).get("healer/task-id")
            if tid in task_job:
                by[task_job[tid]] = by.get(task_job[tid], 0) + 1
            else:
                stray.append(tid)
        return by, stray

    def task_states():
        states = {}
        for t in task_job:
            st, rem = srv.request("GET", f"/api/remediations/{t}")
            states[t] = rem.get("state") if st == 200 else f"http {st}"
        return states

    def deliveries_settled():
        # a delivery claimed by a killed process is taken back within its
        # lease (on PostgreSQL, once the claim was not renewed for two
        # thirds of it: a live replica may only have lost its listener)
        con = dtest.store_db(data_dir)
        try:
            rows = dict(con.execute("SELECT state, count(*) FROM deliveries"
                                    " GROUP BY state").fetchall())
        finally:
            con.close()
        return not rows.get("received") and not rows.get("processing")

    def drained():
        by, _ = per_failure()
        if any(by.get(j, 0) != 1 for j in failure_ids):
            return None
        states = task_states()
        if not all(s in FINAL_OR_QUEUED or s == "http 404" for s in states.values()):
            return None
        return states if deliveries_settled() else None

    got = wait_for(drained, 90)
    stop_completer.set()
    by, stray = per_failure()
    missing = [j for j in failure_ids if by.get(j, 0) == 0]
    doubled = {j: n for j, n in by.items() if n > 1}
    check(f"zero lost: every failure ({FAILURES}) has a CodeRun",
          not missing, f"{len(missing)} without: jobs {missing[:5]}\n" + srv.log_tail()[-1500:])
    check("zero doubled: no failure has two CodeRuns", not doubled, doubled)
    check("no CodeRun for a success, a running job or an unknown task", not stray, stray[:5])
    states = task_states()
    hist = {}
    for s in states.values():
        hist[s] = hist.get(s, 0) + 1
    note(f"task states {json.dumps(hist, sort_keys=True)}; drained {'yes' if got else 'no'} "
          f"after {time.monotonic() - t0:.0f} s")
    owners = {cr["metadata"].get("labels", {}).get("healer/task-id")
              for cr in kube("GET", "/_stub/coderuns") or []}
    bad = {t: s for t, s in states.items()
           if s not in FINAL_OR_QUEUED and (t in owners or s != "http 404")}
    detail = ""
    log = open(os.path.join(data_dir, "server.log"), errors="replace").read().splitlines()
    con = dtest.store_db(data_dir)
    for t in list(bad)[:2]:  # what a stuck task, its row, its CodeRun and the log say
        row = con.execute("SELECT state, next_check_ms, lease_owner, lease_until_ms "
                          f"FROM remediation_tasks WHERE task_id = '{t}'").fetchall()
        detail += f"\nrow {row} now {int(time.time() * 1000)}"
        try:
            detail += "\nattempts " + str(con.execute(
                f"SELECT n, phase, coderun_name FROM attempts WHERE task_id = '{t}'").fetchall())
            # the deliveries of its failure: the one that made it, the ones attached
            detail += "\ndeliveries " + str(con.execute(
                "SELECT delivery_id, event_name, state, reason, claims FROM deliveries"
                f" WHERE task_id = '{t}' OR failure_key = (SELECT dedup_key FROM"
                f" remediation_tasks WHERE task_id = '{t}')").fetchall())[:1500]
        except Exception as e:  # the report goes on without them
            detail += f"\n(reading its attempts and deliveries failed: {e})"
        # what the server said of it (not the test's own reads of it)
        detail += "".join(["\n" + ln[:300] for ln in log
                           if t in ln and '"msg":"request"' not in ln][-12:])
        rem = srv.request("GET", f"/api/remediations/{t}")[1]
        detail += "\n" + json.dumps({k: rem.get(k) for k in (
            "state", "reason", "coderun_name", "attempt", "attempts", "updated_at")})[:1500]
        detail += "\n" + json.dumps([cr.get("status") for cr in kube("GET", "/_stub/coderuns")
                                     if cr["metadata"].get("labels", {}).get(
                                         "healer/task-id") == t])[:500]
    con.close()
    check(f"every task ({len(owners)} with a CodeRun) is in a final state or queued; "
          "a duplicate's has no record",
          not bad, f"{hist} {list(bad.items())[:5]}{detail}")

    con = dtest.store_db(data_dir)
    rows = dict(con.execute("SELECT state, count(*) FROM deliveries GROUP BY state").fetchall())
    stored = con.execute("SELECT count(*) FROM deliveries").fetchone()[0]
    con.close()
    unique = len({d[0] for d in deliveries})
    check(f"every delivery id ({unique}) is stored once and processed",
          stored == unique and not rows.get("received") and not rows.get("processing"),
          (stored, rows))
    srv.stop()
    check("SIGTERM stops the server cleanly after the chaos", srv.proc.returncode == 0,
          srv.log_tail()[-1500:])
    log = open(os.path.join(data_dir, "server.log"), errors="replace").read()
    check("no sanitizer report in healer's log",
          "runtime error:" not in log and "Sanitizer" not in log,
          log[log.find("Sanitizer") - 200:][:3000] if "Sanitizer" in log else "")
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
