#!/usr/bin/env python3
"""test_classify_payload.py - `healer classify` on a case that carries the
raw webhook payload (contract section 5) decides as the server does for the
same payload: the payload is normalized as the event the case names (or the
one guessed from it), and the failed step, workflow and job names and, with
no log, the check run's output fill what the case leaves empty. Explicit
case fields win; a payload the server would refuse makes the line an error.

The decisions are compared with those of a `healer server` (directory
dispatch, no GitHub credentials: no job log, as in the case) that is posted
the same payloads on /api/remediate/ci-failure."""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests"))
from tap import check, finish  # noqa: E402

HEALER = os.environ["HEALER_BIN"]
ROOT = os.environ["HEALER_SOURCE_ROOT"]
TIME_SCALE = max(1.0, float(os.environ.get("HEALER_TEST_TIME_SCALE") or 1))
API_TOKEN = "classify-payload-token"
SHA = "0123456789abcdef0123456789abcdef01234567"
tmp = tempfile.mkdtemp(prefix="healer-classify-payload-")


def clean_env(extra=None):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("HEALER_", "GITHUB_", "KUBERNETES_", "PG", "ARGOCD_", "LOKI_",
                              "PROMETHEUS_", "OPENMEMORY_"))}
    e.pop("KUBECONFIG", None)
    e["HOME"] = tmp
    e.update(extra or {})
    return e


def classify(cases):
    p = subprocess.run([HEALER, "classify"], input="".join(json.dumps(c) + "\n" for c in cases),
                       capture_output=True, text=True, env=clean_env(), timeout=60)
    return p.returncode, [json.loads(l) for l in p.stdout.split("\n") if l.strip()], p.stderr


def verdict(r):
    """What the server's decision and classify's result share."""
    ev = r.get("evidence") or {}
    return {"agent": r.get("agent"), "failure_type": r.get("failure_type"),
            "category": r.get("category"), "rule": r.get("rule"),
            "line_number": ev.get("line_number"), "line": ev.get("line"),
            "reason": ev.get("reason"), "confidence": r.get("confidence")}


JOB = json.load(open(os.path.join(ROOT, "examples", "workflow_job_failure.json")))
TSC = "error TS2322: Type 'string' is not assignable to type 'number'."
CHECK_RUN = {
    "action": "completed",
    "check_run": {
        "id": 7701, "name": "typecheck", "head_sha": SHA, "status": "completed",
        "conclusion": "failure", "app": {"slug": "acme-ci", "id": 99},
        "html_url": "https://ci.example.com/checks/7701",
        "check_suite": {"id": 55, "head_branch": "feat/types", "head_sha": SHA},
        "output": {"title": "1 error", "summary": TSC, "text": None},
        "pull_requests": [],
    },
    "repository": {"full_name": "acme/web", "html_url": "https://github.com/acme/web",
                   "default_branch": "main"},
    "sender": {"login": "dev", "type": "User"},
}


def server_decisions(payloads):
    """Posts each payload to a fresh server's sensor route; its decisions."""
    data = os.path.join(tmp, "srv")
    os.makedirs(data)
    pf = os.path.join(data, "port")
    log = open(os.path.join(data, "server.log"), "ab")
    proc = subprocess.Popen(
        [HEALER, "server", "--listen", "127.0.0.1:0", "--data-dir", data, "--port-file", pf],
        env=clean_env({"HEALER_DISPATCH": "directory", "HEALER_API_TOKEN": API_TOKEN,
                       "HEALER_LOG_LEVEL": "error"}), stdout=log, stderr=log)
    out = []
    try:
        deadline = time.time() + 20 * TIME_SCALE
        while time.time() < deadline and proc.poll() is None and not (
                os.path.exists(pf) and open(pf).read().strip()):
            time.sleep(0.02)
        port = int(open(pf).read())

        def req(method, path, body=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30 * TIME_SCALE)
            try:
                c.request(method, path, body=body, headers={
                    "Content-Type": "application/json",
                    "Authorization": "Bearer " + API_TOKEN})
                r = c.getresponse()
                return r.status, json.loads(r.read() or b"null")
            finally:
                c.close()

        for p in payloads:
            st, ans = req("POST", "/api/remediate/ci-failure", json.dumps(p).encode())
            tid, dec = (ans or {}).get("task_id"), None
            deadline = time.time() + 15 * TIME_SCALE
            while tid and time.time() < deadline:
                st, t = req("GET", "/api/remediations/" + tid)
                dec = (t or {}).get("decision") if st == 200 else None
                if dec and dec.get("rule"):
                    break
                time.sleep(0.05)
            out.append(dec or {"answer": ans})
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20 * TIME_SCALE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return out, open(os.path.join(data, "server.log"), errors="replace").read()[-2000:]


try:
    cases = [
        {"id": "job", "event": "workflow_job", "payload": JOB},
        {"id": "job-guessed", "payload": JOB},
        {"id": "check", "event": "check_run", "payload": CHECK_RUN},
        {"id": "check-guessed", "payload": CHECK_RUN},
        # explicit fields win over the payload's
        {"id": "job-step", "event": "workflow_job", "failed_step": "Run cargo test",
         "log": "test result: FAILED. 1 passed; 1 failed\n", "payload": JOB},
        {"id": "check-log", "payload": CHECK_RUN,
         "log": "error[E0308]: mismatched types\n"},
        # a payload the server refuses: the line's error, the rest go on
        {"id": "no-repo", "event": "workflow_job",
         "payload": {"workflow_job": {"name": "clippy", "steps": []}}},
        {"id": "wrong-event", "event": "check_run", "payload": JOB},
        # not a GitHub event healer knows: read for ArgoCD's status only
        {"id": "argo", "event": "argocd", "payload": {
            "application": {"status": {"sync": {"status": "OutOfSync"},
                                       "health": {"status": "Healthy"}}}}},
    ]
    rc, res, err = classify(cases)
    by = {r.get("id"): r for r in res if r.get("id") is not None}
    check("classify answers every case line, in order", rc == 0 and len(res) == len(cases),
          json.dumps(res) + err)
    for cid in ("job", "job-guessed"):
        r = by.get(cid, {})
        check(f"{cid}: the example workflow_job routes by its failed step to rust_clippy",
              r.get("agent") == "rex" and r.get("failure_type") == "rust_clippy"
              and r.get("rule") == "name-rust-clippy"
              and "Run Clippy (pedantic)" in ((r.get("evidence") or {}).get("reason") or ""),
              json.dumps(r))
    for cid in ("check", "check-guessed"):
        r = by.get(cid, {})
        check(f"{cid}: a check run's output summary is its log: frontend_typecheck",
              r.get("agent") == "blaze" and r.get("failure_type") == "frontend_typecheck"
              and r.get("rule") == "tsc-error"
              and (r.get("evidence") or {}).get("line") == TSC, json.dumps(r))
    r = by.get("job-step", {})
    check("a case's own failed step and log win over the payload's",
          r.get("agent") == "rex" and r.get("failure_type") == "rust_test", json.dumps(r))
    r = by.get("check-log", {})
    check("a case's own log wins over the check run's output",
          r.get("agent") == "rex" and r.get("category") == "rust"
          and (r.get("evidence") or {}).get("line") == "error[E0308]: mismatched types",
          json.dumps(r))
    if len(res) == len(cases):
        bad = res[6:8]
        check("a payload the server would refuse is that line's error (id null, naming it)",
              all(b.get("id", "x") is None and "'payload'" in b.get("error", "")
                  for b in bad), json.dumps(bad))
        check("the rest go on after it: an ArgoCD payload under another event name",
              res[8].get("id") == "argo" and res[8].get("agent") == "bolt"
              and res[8].get("failure_type") == "argocd_sync", json.dumps(res[8]))

    # The server, posted the same payloads, decides the same.
    decs, slog = server_decisions([JOB, CHECK_RUN])
    for name, dec, cid in (("the example workflow_job", decs[0], "job"),
                           ("the check run", decs[1], "check")):
        check(f"{name}: classify's verdict is the server's decision",
              dec.get("rule") and verdict(dec) == verdict(by.get(cid, {})),
              json.dumps([verdict(dec), verdict(by.get(cid, {})), dec]) + "\n" + slog)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

finish()
