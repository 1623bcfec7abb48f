#!/usr/bin/env python3
"""latency.py - measures webhook-to-CodeRun latency of `healer server`
against the stub servers with every context source delayed (see run.sh).

The sensor's POST /api/remediate/ci-failure is answered once the CodeRun
exists (the answer carries its name), so the time of that call is the
webhook-to-CodeRun latency. Sources: GitHub job log (behind a redirect),
PR, commit files; ArgoCD; Loki; Prometheus; Kubernetes events; OpenMemory: each
answers after DELAY_MS."""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "remediate"))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 40
import test_e2e as e  # noqa: E402  (stubs, helpers and payloads of the whole-path test)

DELAY_MS = 300
SOURCES = ["github_log", "github_pr", "github_files", "argocd", "loki", "prometheus",
           "kubernetes", "memory"]

e.set_sources(delay_ms=DELAY_MS)
e.dtest.http("POST", e.GURL + "/_stub/config", {"rules": [
    {"path": "/repos", "delay_ms": DELAY_MS}]})
e.kube("POST", "/_stub/config", {"rules": [
    {"method": "GET", "path": "/api/v1/namespaces/cto/events", "delay_ms": DELAY_MS}]})
jobs = list(range(70000, 70000 + N + 1))
e.seed_github(jobs)
env = dict(e.BASE_ENV, HEALER_DECISION_WAIT_MS="20000", HEALER_LOG_LEVEL="warn",
           HEALER_SOURCE_TIMEOUT_MS="5000", HEALER_CONTEXT_TIMEOUT_MS="10000",
           HEALER_MAX_ACTIVE_CODERUNS="0", HEALER_MAX_ATTEMPTS_PER_HOUR="0")
srv = e.Healer(os.path.join(e.dtest.TMP, "bench"), env).start()


def one(job_id):
    # each failure on its own branch: a failure of the same job on the branch of
    # an active remediation belongs to that remediation (no new CodeRun)
    body = json.dumps(e.job_event(job_id, run_id=job_id + 1000000,
                                  branch=f"bench/b{job_id}")).encode()
    t = time.monotonic()
    st, ans = srv.request("POST", "/api/remediate/ci-failure", body,
                          {"Content-Type": "application/json",
                           "Authorization": f"Bearer {e.API_TOKEN}",
                           "X-GitHub-Event": "workflow_job"}, timeout=30)
    ms = (time.monotonic() - t) * 1000
    if st != 202 or not ans.get("coderun_name"):
        raise SystemExit(f"no CodeRun in the answer: {st} {ans}")
    if os.environ.get("BENCH_VERBOSE"):
        rem = srv.request("GET", f"/api/remediations/{ans['task_id']}")[1]
        d = rem.get("decision") or {}
        print(f"  {ms:.0f} ms, steps {d.get('timings_ms')}: " + ", ".join(
            f"{s['name']}={s['elapsed_ms']}" for s in d.get("sources", [])), file=sys.stderr)
    return ms


one(jobs[0])  # warm-up (TLS session, caches)
lat = sorted(one(j) for j in jobs[1:])
p50 = statistics.median(lat)
p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
dec = srv.request("GET", f"/api/status")[1]
srv.stop()
total = DELAY_MS * len(SOURCES)
print(f"requests: {len(lat)}  sources: {len(SOURCES)} x {DELAY_MS} ms")
print(f"webhook-to-CodeRun latency: p50 {p50:.0f} ms  p99 {p99:.0f} ms  min {lat[0]:.0f} ms")
print(f"sum of source delays: {total} ms   slowest source: {DELAY_MS} ms")
print(f"ratio p50 / slowest source: {p50 / DELAY_MS:.2f}  (goal <= 1.2)")
print(f"ratio p50 / sum of delays:  {p50 / total:.2f}  (sequential gathering = 1.0)")
