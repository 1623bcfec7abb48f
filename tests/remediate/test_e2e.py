#!/usr/bin/env python3
"""test_e2e.py - the whole path, signed webhook in -> CodeRun out, against
the project's stub servers: a TLS Kubernetes API (CA from the kubeconfig,
bearer token, generateName, 409, 422), a GitHub API (token, job logs behind
a redirect to another host, PRs, commit files) and ArgoCD / Loki /
Prometheus stubs.

Checks: the CodeRun's labels, env, prompt and target branch; the decision
with its evidence and per-source status at /api/remediations/{task_id};
50 concurrent deliveries of one failure from two hook ids -> one CodeRun;
a workflow_job and the check_run GitHub sends for the same job -> one
CodeRun; a hanging source -> the CodeRun still created within its deadline
and the prompt names the missing source; SIGKILL in the middle of a
remediation and restart -> no duplicate, also when the re-run classifies
otherwise (the CodeRun is found by its labels); a create answered 200 with an
HTML page (a proxy) -> asked again; a CodeRun the API refuses (422 on
the first attempt or on a retry) -> the task escalated at once, the
attempt's reason quoting the API; a create denied once (401) -> created on
the next try; denied on every try (403) -> refused after 5; the sensor's ci-failure call
answers with the decision; directory dispatch writes a readable manifest.
Standard library only; prints TAP."""
import concurrent.futures
import copy
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import TIME_SCALE, Healer, wait_for  # noqa: E402

SECRET = "e2e-webhook-secret"
GTOKEN = "ghs_e2e_token_value"
KTOKEN = "kube-e2e-token"
API_TOKEN = "sensor-e2e-token"
REPO = "acme/widgets"
SHA = "0123456789abcdef0123456789abcdef01234567"
CLIPPY_LOG = "\n".join([
    "2025-01-15T10:30:00.0000000Z ##[group]Run cargo clippy --all-targets -- -D warnings",
    "2025-01-15T10:30:01.0000000Z     Checking widgets v0.1.0 (/home/runner/work/widgets)",
    "2025-01-15T10:30:02.0000000Z error: this expression creates a reference which is immediately dereferenced by the compiler",
    "2025-01-15T10:30:02.0000000Z   --> src/lib.rs:34:9",
    "2025-01-15T10:30:02.0000000Z    = note: `-D clippy::needless-borrow` implied by `-D warnings`",
    "2025-01-15T10:30:03.0000000Z error: could not compile `widgets` (lib) due to 1 previous error",
    "2025-01-15T10:30:03.0000000Z ##[error]Process completed with exit code 101.",
]) + "\n"


def job_event(job_id, run_id=9000, branch="feat/faster", name="clippy", sha=SHA):
    return {
        "action": "completed",
        "workflow_job": {
            "id": job_id, "run_id": run_id, "run_attempt": 1, "workflow_name": "Rust CI",
            "name": name, "head_branch": branch, "head_sha": sha, "status": "completed",
            "conclusion": "failure",
            "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}/job/{job_id}",
            "steps": [{"name": "Run clippy", "status": "completed", "conclusion": "failure",
                       "number": 3}],
        },
        "repository": {"full_name": REPO, "html_url": f"https://github.com/{REPO}",
                       "default_branch": "main"},
        "sender": {"login": "dev", "type": "User"},
    }


def check_run_event(job_id, run_id=9000, branch="feat/faster", name="clippy", sha=SHA, prs=()):
    return {
        "action": "completed",
        "check_run": {
            "id": job_id, "name": name, "head_sha": sha, "status": "completed",
            "conclusion": "failure", "external_id": "x",
            "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}/job/{job_id}",
            "details_url": f"https://github.com/{REPO}/actions/runs/{run_id}/job/{job_id}",
            "app": {"slug": "github-actions", "id": 15368},
            "check_suite": {"id": 1, "head_branch": branch, "head_sha": sha},
            "output": {"title": None, "summary": None, "text": None},
            "pull_requests": [{"number": n, "head": {"ref": branch, "sha": sha},
                               "base": {"ref": "main"}} for n in prs],
        },
        "repository": {"full_name": REPO, "html_url": f"https://github.com/{REPO}",
                       "default_branch": "main"},
        "sender": {"login": "dev", "type": "User"},
    }


# ---- stubs -----------------------------------------------------------------
ca = dtest.make_ca("kube")
_, kport = dtest.start_stub("kube_stub.py", "--cert", ca["cert"], "--key", ca["key"],
                            "--token", KTOKEN, "--crd", dtest.CRD)
KURL = f"https://127.0.0.1:{kport}"
import ssl  # noqa: E402
KCTX = ssl.create_default_context(cafile=ca["ca"])
kubeconfig = dtest.write_kubeconfig(os.path.join(dtest.TMP, "kubeconfig"), KURL,
                                    ca_path=ca["ca"], token=KTOKEN, namespace="cto")
_, gport = dtest.start_stub("github_stub.py", "--token", GTOKEN)
GURL = f"http://127.0.0.1:{gport}"
_, sport = dtest.start_stub("generic_stub.py")
SURL = f"http://127.0.0.1:{sport}"


def kube(method, path, body=None):
    return dtest.http(method, KURL + path, body, ctx=KCTX, token=KTOKEN)


def coderuns():
    return kube("GET", "/_stub/coderuns") or []


def seed_github(job_ids, commit_message="perf: faster widgets"):
    dtest.http("POST", GURL + "/_stub/seed", {
        "logs": {str(j): CLIPPY_LOG for j in job_ids},
        "pulls": [{"number": 42, "state": "open", "title": "Faster widgets",
                   "html_url": f"https://github.com/{REPO}/pull/42", "body": "Speeds things up.",
                   "user": {"login": "dev"},
                   "head": {"ref": "feat/faster", "sha": SHA}, "base": {"ref": "main"}}],
        "commits": {SHA: {"sha": SHA, "commit": {"message": commit_message},
                          "files": [{"filename": "src/lib.rs", "status": "modified",
                                     "additions": 3, "deletions": 1}]}},
    }, token=GTOKEN)


def set_sources(delay_ms=0, loki_delay_ms=None, loki=None, argocd=None):
    """The sources' answers; loki / argocd replace those routes' answers
    (route keys: "body", or the stub's "loki_lines")."""
    routes = [
        {"method": "GET", "path": "/api/v1/applications/widgets", "delay_ms": delay_ms,
         "body": {"metadata": {"name": "widgets"},
                  "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}}},
        {"method": "GET", "path": "/loki/api/v1/query_range",
         "delay_ms": delay_ms if loki_delay_ms is None else loki_delay_ms,
         "body": {"status": "success", "data": {"resultType": "streams", "result": [
             {"stream": {"app": "widgets"}, "values": [["1", "level=error msg=boom"]]}]}}},
        {"method": "POST", "path": "/memory/query", "delay_ms": delay_ms,
         "body": {"query": "q", "matches": [
             {"id": "m1", "content": "healer task hl-00000000000000000091: rust_clippy in "
                                     "acme/widgets (workflow CI, job clippy) succeeded. Fixed "
                                     "by rex on attempt 1 in 4m: clippy needless_borrow fixed "
                                     "by removing the &.", "score": 0.91}]}},
        {"method": "GET", "path": "/api/v1/query", "delay_ms": delay_ms,
         "body": {"status": "success", "data": {"resultType": "vector", "result": [
             {"metric": {}, "value": [1, "0.02"]}]}}},
    ]
    for path, repl in (("/loki/api/v1/query_range", loki), ("/api/v1/applications/widgets",
                                                             argocd)):
        for r in routes:
            if repl and r["path"] == path:
                r.pop("body")
                r.update(repl)
    dtest.http("POST", SURL + "/_stub/config", {"routes": routes})


BASE_ENV = {
    "GITHUB_WEBHOOK_SECRET": SECRET, "HEALER_API_TOKEN": API_TOKEN,
    "GITHUB_API_URL": GURL, "GITHUB_TOKEN": GTOKEN, "KUBECONFIG": kubeconfig,
    "HEALER_DISPATCH": "kubernetes", "HEALER_NAMESPACE": "cto",
    "ARGOCD_SERVER": SURL, "LOKI_URL": SURL, "PROMETHEUS_URL": SURL, "OPENMEMORY_URL": SURL,
    "HEALER_SOURCE_TIMEOUT_MS": "1500", "HEALER_CONTEXT_TIMEOUT_MS": "4000",
    "HEALER_LOG_LEVEL": "info", "HEALER_TIME_WINDOW_MINS": "0",
    # every section's CodeRun stays Pending: more than the default budget of 10
    "HEALER_MAX_ACTIVE_CODERUNS": "20",
}
set_sources()


def main():
    # ---- 1. one failed job -> one CodeRun with everything its agent needs --------
    seed_github([5001, 5002, 5003, 5004, 5005, 5006, 5007])
    srv = Healer(os.path.join(dtest.TMP, "h1"), BASE_ENV).start()
    st, ans = srv.deliver(job_event(5001))
    check("webhook accepted", st == 202 and ans.get("status") == "accepted", ans)
    task_id = ans.get("task_id")
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == task_id], 15)
    check("a CodeRun is created for the failed job", len(runs) == 1, coderuns())
    cr = runs[0] if runs else {"metadata": {"labels": {}}, "spec": {"env": {}}}
    labels, spec = cr["metadata"]["labels"], cr.get("spec", {})
    env = spec.get("env", {})
    check("CodeRun is agents.platform/v1 in the namespace",
          cr.get("apiVersion") == "agents.platform/v1" and cr["metadata"].get("namespace") == "cto", cr)
    check("routed to rex as rust_clippy",
          labels.get("healer/agent") == "rex" and labels.get("healer/failure-type") == "rust_clippy"
          and spec.get("githubApp") == "5DLabs-Rex", labels)
    check("labels carry run, branch, task and attempt",
          labels.get("app.kubernetes.io/name") == "healer"
          and labels.get("healer/workflow-run-id") == "9000"
          and labels.get("healer/branch") == "feat-faster" and labels.get("healer/attempt") == "1",
          labels)
    check("env carries task, type, run, PR and target branch",
          env.get("HEALER_TASK_ID") == task_id and env.get("FAILURE_TYPE") == "rust_clippy"
          and env.get("WORKFLOW_RUN_ID") == "9000" and env.get("PR_NUMBER") == "42"
          and env.get("TARGET_BRANCH") == "feat/faster", env)
    prompt = spec.get("promptModification", "")
    check("prompt carries the evidence line and the log",
          "needless-borrow" in prompt and "could not compile" in prompt, prompt[:2000])
    check("prompt carries the PR and the changed file",
          "Faster widgets" in prompt and "src/lib.rs" in prompt, prompt[:3000])
    check("the job log was fetched without the token on the redirect",
          dtest.http("GET", GURL + "/_stub/blob-violations", token=GTOKEN) in ([], None),
          "token leaked to the blob host")
    # the CodeRun exists before the task records it: wait for the record
    st, rem = wait_for(lambda: (lambda a: a if a[0] == 200 and a[1].get("coderun_name") else None)(
        srv.request("GET", f"/api/remediations/{task_id}")), 10) or (0, {})
    check("GET /api/remediations/{task_id} answers 200", st == 200, rem)
    dec = rem.get("decision") or {}
    if isinstance(dec, str):
        dec = json.loads(dec)
    srcs = {s["name"]: s["state"] for s in dec.get("sources", [])}
    check("the decision carries rule and evidence",
          dec.get("rule") and (dec.get("evidence") or {}).get("line", "").startswith(
              "error: this expression creates a reference"), dec)
    cands = dec.get("candidates") or []
    check("the decision carries its confidence, evidence kind and the ranked candidates",
          isinstance(dec.get("confidence"), float) and 0 < dec["confidence"] <= 1
          and dec["evidence"].get("kind") == "log" and dec["evidence"].get("reason") is None
          and cands and cands[0]["agent"] == dec.get("agent")
          and cands[0]["rule"] == dec.get("rule") and "score" in cands[0], dec)
    check("every context source reported ok",
          all(srcs.get(k) == "ok" for k in ("github_log", "github_pr", "github_files", "argocd",
                                              "loki", "prometheus", "kubernetes",
                                              "memory")), srcs)
    check("the prompt carries the memory of similar failures",
          "removing the &" in prompt, prompt[-2500:])
    check("the prompt size is recorded", dec.get("prompt_bytes", 0) > 500, dec)

    # ---- 2. the check_run GitHub sends for the same job -> no second CodeRun ------
    st, ans2 = srv.deliver(check_run_event(5001), event="check_run")
    time.sleep(1.5)
    same = [c for c in coderuns() if c["metadata"]["labels"].get("healer/workflow-run-id") == "9000"]
    check("check_run for the same job does not create a second CodeRun",
          st == 202 and len(same) == 1, [ans2, len(same)])

    # ---- 2a. an Actions run's check suite is that run: never a second task ------
    # (the payload names no run; GitHub lists the run of a suite. The window
    # that joins a branch's failures is 0 here, as a user may set it.)
    def suite_event(suite_id, branch):
        return {"action": "completed",
                "check_suite": {"id": suite_id, "head_branch": branch, "head_sha": SHA,
                                "status": "completed", "conclusion": "failure",
                                "app": {"slug": "github-actions", "id": 15368},
                                "pull_requests": []},
                "repository": {"full_name": REPO, "html_url": f"https://github.com/{REPO}",
                               "default_branch": "main"},
                "sender": {"login": "dev", "type": "User"}}

    def record(tid):
        st, rem = wait_for(lambda: (lambda a: a if a[0] == 200 and a[1].get("state") not in
                                    (None, "running", "queued") or a[1].get("coderun_name")
                                    else None)(srv.request("GET", f"/api/remediations/{tid}")),
                           15) or (0, {})
        return rem
    dtest.http("POST", GURL + "/_stub/seed", {"runs": [
        {"id": 9000, "check_suite_id": 7770, "head_branch": "feat/faster", "head_sha": SHA,
         "run_attempt": 1, "status": "completed", "conclusion": "failure",
         "created_at": "2026-01-01T00:00:00Z"},
        {"id": 9400, "check_suite_id": 7771, "head_branch": "feat/r9400", "head_sha": SHA,
         "run_attempt": 1, "status": "completed", "conclusion": "failure",
         "created_at": "2026-01-01T00:00:01Z"}],
        "jobs": {"9400": [{"id": 5400, "name": "clippy", "run_id": 9400, "run_attempt": 1,
                           "status": "completed", "conclusion": "failure", "steps": [
                               {"name": "Run clippy", "conclusion": "failure", "number": 3}]}]},
        "logs": {"5400": CLIPPY_LOG}}, token=GTOKEN)
    st, ans3 = srv.deliver(suite_event(7770, "feat/faster"), event="check_suite")
    rem = record(ans3.get("task_id"))
    same = [c for c in coderuns() if c["metadata"]["labels"].get("healer/workflow-run-id") == "9000"]
    check("the check suite of a remediated Actions run is that run's: no second task or CodeRun "
          "(its id names the run's task)",
          st == 202 and rem.get("task_id") == task_id
          and len(same) == 1, [ans3, rem, len(same)])
    st, ans4 = srv.deliver(suite_event(7771, "feat/r9400"), event="check_suite")
    rem = record(ans4.get("task_id"))
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id")
                             == ans4.get("task_id")], 15) or []
    p = runs[0]["spec"].get("promptModification", "") if runs else ""
    check("a check suite first: its task is the run's (run id label, the failed job's log)",
          len(runs) == 1 and runs[0]["metadata"]["labels"].get("healer/workflow-run-id")
          == "9400" and "needless-borrow" in p, [rem, len(runs), p[:1500]])
    st, ans5 = srv.deliver(job_event(5400, run_id=9400, branch="feat/r9400"))
    rem = record(ans5.get("task_id"))
    n9400 = [c for c in coderuns() if c["metadata"]["labels"].get("healer/workflow-run-id") == "9400"]
    check("... and the run's workflow_job after it is no second task (its id names the run's)",
          st == 202 and rem.get("task_id") == ans4.get("task_id") and len(n9400) == 1,
          [ans5, rem, len(n9400)])

    # ---- 2a2. another job of a run whose CodeRun is active, that CodeRun relabelled --
    # (before: the active-CodeRun lookup went by the healer/workflow-run-id label
    # only, so a running CodeRun someone relabelled was missed: a second one)
    dtest.http("POST", GURL + "/_stub/seed", {"logs": {"5501": CLIPPY_LOG, "5502": CLIPPY_LOG}},
               token=GTOKEN)
    st, a1 = srv.deliver(job_event(5501, run_id=9500, branch="feat/r9500"))
    rem1 = record(a1.get("task_id"))
    c1 = rem1.get("coderun_name") or "?"
    kube("PATCH", f"/apis/agents.platform/v1/namespaces/cto/coderuns/{c1}",
         {"metadata": {"labels": {"healer/workflow-run-id": None}}})
    st, a2 = srv.deliver(job_event(5502, run_id=9500, branch="feat/r9500", name="test"))
    rem2 = record(a2.get("task_id"))
    time.sleep(0.5)
    check("another job of a run whose running CodeRun was relabelled -> no second CodeRun; "
          "skipped naming it",
          rem1.get("coderun_name") and rem2.get("state") == "skipped"
          and f"CodeRun {c1} is still active for the run" in (rem2.get("reason") or "")
          and not [c for c in coderuns()
                   if c["metadata"]["labels"].get("healer/task-id") == a2.get("task_id")],
          [rem2, [c["metadata"]["name"] for c in coderuns()
                  if c["metadata"]["labels"].get("healer/task-id") == a2.get("task_id")]])

    # ---- 2b. a repository name that climbs to another API path with the token ---
    hostile = job_event(5090, run_id=9090, branch="feat/r9090")
    hostile["repository"]["full_name"] = "acme/x/../../../orgs/acme/actions/secrets#"
    st, ans = srv.deliver(hostile)
    check("a traversal in repository.full_name is answered skipped invalid_payload",
          st == 202 and ans.get("status") == "skipped" and ans.get("reason") == "invalid_payload"
          and ans.get("task_id") is None, ans)
    for sender in (srv.deliver, lambda p: srv.request(
            "POST", "/api/remediate/ci-failure", json.dumps(p).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}"})):
        sender(dict(hostile, workflow_job=dict(hostile["workflow_job"], id=5091)))
    time.sleep(2.0)  # what a remediation would have fetched by now
    reqs = dtest.http("GET", GURL + "/_stub/requests", token=GTOKEN) or []
    check("GitHub never sees a request outside the repository's own paths",
          not [r for r in reqs if "/orgs/" in r.get("path", "") or "secrets" in r.get("path", "")]
          and not [c for c in coderuns()
                   if c["metadata"]["labels"].get("healer/workflow-run-id") == "9090"],
          [r.get("path") for r in reqs][-10:])

    # ---- 2c. a 256-byte branch ending in a two-byte character --------------------
    # (a cut copy made it no JSON string: the CodeRun was never built and the
    # task stayed running; a branch cut short would be another branch)
    seed_github([5001, 5002, 5003, 5004, 5005, 5006, 5007, 5095])
    long_branch = "x" * 254 + "\u00e9"
    st, ans = srv.deliver(job_event(5095, run_id=9095, branch=long_branch))
    tid = ans.get("task_id")
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == tid], 15)
    env = runs[0]["spec"]["env"] if runs else {}
    check("a 256-byte branch gets its CodeRun with the whole name to push to",
          st == 202 and len(runs) == 1 and env.get("TARGET_BRANCH") == long_branch
          and env.get("FAILURE_BRANCH") == long_branch, [ans, env.get("TARGET_BRANCH")])

    # ---- 2d. a PR of more files than GitHub lists on one page --------------------
    # (the head commits are unknown to GitHub here, so the PR's files are read:
    # the first page of 100; the prompt once said "Changed Files (100)")
    def many_files_pr(number, branch, sha):
        return {"number": number, "state": "open", "title": f"Big change {number}",
                "html_url": f"https://github.com/{REPO}/pull/{number}", "body": "",
                "user": {"login": "dev"}, "changed_files": 150,
                "head": {"ref": branch, "sha": sha}, "base": {"ref": "main"}}
    sha_a, sha_b = "a" * 40, "b" * 40
    dtest.http("POST", GURL + "/_stub/seed", {
        "logs": {"5096": CLIPPY_LOG, "5097": CLIPPY_LOG},
        "pulls": [many_files_pr(44, "feat/many", sha_a), many_files_pr(45, "feat/many2", sha_b)],
        "files": {n: [{"filename": f"src/m{i}.rs", "status": "modified", "additions": 1,
                       "deletions": 0} for i in range(150)] for n in ("44", "45")}},
        token=GTOKEN)

    def prompt_of(ans):
        runs = wait_for(lambda: [c for c in coderuns() if c["metadata"]["labels"].get(
            "healer/task-id") == ans.get("task_id")], 15) or []
        return runs[0]["spec"].get("promptModification", "") if runs else ""
    st, ans = srv.deliver(check_run_event(5096, run_id=9096, branch="feat/many", sha=sha_a,
                                          prs=(44,)), event="check_run")
    p = prompt_of(ans)
    check("a PR of 150 files read by number: its prompt lists 100 of 150",
          "## Changed Files (100 of 150)" in p and "`src/m99.rs`" in p
          and "`src/m100.rs`" not in p, [ans, p[p.find("## Changed"):][:200]])
    st, ans = srv.deliver(job_event(5097, run_id=9097, branch="feat/many2", sha=sha_b))
    p = prompt_of(ans)
    check("... found by its branch (GitHub's list does not count files): the first 100, and more",
          "## Changed Files (the first 100; the change touches more)" in p,
          [ans, p[p.find("## Changed"):][:200]])

    # ---- 2e. a job log that prints healer's own token and a URL's password -----
    # (the log went into the decision's evidence and the prompt as it was)
    leaky = CLIPPY_LOG.replace(
        "error: this expression creates a reference",
        f"error: push with {GTOKEN} to https://ci:hunter2@registry.example/w failed; "
        "this expression creates a reference")
    dtest.http("POST", GURL + "/_stub/seed", {"logs": {"5098": leaky}}, token=GTOKEN)
    st, ans = srv.deliver(job_event(5098, run_id=9098, branch="feat/r9098"))
    p = prompt_of(ans)
    # the CodeRun exists before the task records its decision
    rem = wait_for(lambda: (lambda r: r if r[0] == 200 and r[1].get("decision") else None)(
        srv.request("GET", f"/api/remediations/{ans.get('task_id')}")), 15) or (0, {})
    doc = json.dumps(rem[1])
    check("a log printing healer's GitHub token and a URL password: neither reaches the prompt "
          "or the decision, the evidence line says [REDACTED]",
          p and GTOKEN not in p and "hunter2" not in p and GTOKEN not in doc
          and "hunter2" not in doc and "push with [REDACTED] to https://registry.example/w" in p
          and "[REDACTED]" in doc, [p[:1500], doc[:1500]])

    # ---- 2f. an upstream's error that echoes a credential --------------------------
    # (the error's excerpt was kept in the decision's source detail as it came)
    set_sources(loki={"status": 400, "body": {"error": f"token {GTOKEN} is not allowed"}})
    dtest.http("POST", GURL + "/_stub/seed", {"logs": {"5091": CLIPPY_LOG}}, token=GTOKEN)
    st, ans = srv.deliver(job_event(5091, run_id=9091, branch="feat/r9091"))
    rem = wait_for(lambda: (lambda r: r if r[0] == 200 and r[1].get("decision") else None)(
        srv.request("GET", f"/api/remediations/{ans.get('task_id')}")), 15) or (0, {})
    set_sources()
    loki = {s["name"]: s for s in rem[1].get("decision", {}).get("sources", [])}.get("loki", {})
    check("an upstream error that echoes healer's token: the source's detail in the decision "
          "says [REDACTED]",
          loki.get("state") not in (None, "ok") and GTOKEN not in json.dumps(rem[1])
          and "[REDACTED]" in (loki.get("detail") or ""), loki)

    # ---- 3. 50 concurrent deliveries of one failure from two hook ids ------------
    payload = job_event(5002, run_id=9100, branch="feat/r9100")
    with concurrent.futures.ThreadPoolExecutor(max_workers=25) as ex:
        futs = [ex.submit(srv.deliver, payload, "workflow_job", os.urandom(8).hex(), str(1 + i % 2))
                for i in range(50)]
        answers = [f.result() for f in futs]
    statuses = [a[1].get("status") for a in answers]
    time.sleep(0.5)
    n9100 = wait_for(lambda: [c for c in coderuns()
                              if c["metadata"]["labels"].get("healer/workflow-run-id") == "9100"], 15)
    time.sleep(1.0)
    n9100 = [c for c in coderuns() if c["metadata"]["labels"].get("healer/workflow-run-id") == "9100"]
    check("50 concurrent deliveries from two hooks -> one accepted",
          statuses.count("accepted") == 1 and statuses.count("duplicate") == 49, statuses)
    check("50 concurrent deliveries from two hooks -> one CodeRun", len(n9100) == 1, len(n9100))

    # ---- 4. a hanging source: the CodeRun is still created within its deadline ----
    set_sources(loki_delay_ms=20000)
    t0 = time.time()
    st, ans = srv.deliver(job_event(5003, run_id=9200, branch="feat/r9200"))
    tid = ans.get("task_id")
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == tid], 12)
    took = time.time() - t0
    # the context deadline is 4 s; the source hangs for 20: 8 s (14 s under
    # the sanitizers) leaves room for a loaded machine and tells the two apart
    check("a hanging source does not block the CodeRun (within its deadline)",
          len(runs) == 1 and took < 5 + 3 * TIME_SCALE, f"{len(runs)} CodeRuns after {took:.1f}s")
    p = runs[0]["spec"]["promptModification"] if runs else ""
    check("the prompt names the missing source", "loki" in p.lower(), p[-1500:])

    # ---- 4b. answers over the 1 MiB cap degrade instead of vanishing ---------------
    # a crash loop printing 50 KB stack traces: 50 lines are 2.5 MB, so Loki is
    # asked again for the 12 most recent, each kept line cut to 1 KiB; an
    # Application of 1.5 MB (thousands of resources, under etcd's limit) is still read
    resources = [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "prod",
                  "name": f"widgets-part-{i:05d}", "status": "Synced",
                  "health": {"status": "Healthy", "message": "ok " + "m" * 150}}
                 for i in range(4500)]
    resources.append({"kind": "Deployment", "namespace": "prod", "name": "widgets-broken-svc",
                      "status": "Synced", "health": {"status": "Degraded",
                                                     "message": "crash looping"}})
    big_app = {"metadata": {"name": "widgets"}, "status": {
        "sync": {"status": "Synced"}, "health": {"status": "Degraded"}, "resources": resources}}
    set_sources(loki={"loki_lines": {"count": 200, "bytes": 50000,
                                     "text": "panic: widget crash loop"}},
                argocd={"body": big_app})
    def sourced_run(job, run_id):
        """Delivers job's failure; its CodeRuns, prompt, sources by name and
        the limits Loki was asked for."""
        seed_github([5001, 5002, 5003, 5004, 5005, 5006, 5007, 5095] + list(range(5008, job + 1)))
        dtest.http("POST", SURL + "/_stub/reset", {})
        _, ans = srv.deliver(job_event(job, run_id=run_id, branch=f"feat/r{run_id}"))
        tid = ans.get("task_id")
        runs = wait_for(lambda: [c for c in coderuns()
                                 if c["metadata"]["labels"].get("healer/task-id") == tid],
                        15) or []
        p = runs[0]["spec"]["promptModification"] if runs else ""
        _, rem = wait_for(lambda: (lambda a: a if a[0] == 200 and a[1].get("coderun_name")
                                   else None)(srv.request("GET", f"/api/remediations/{tid}")),
                          10) or (0, {})
        dec = rem.get("decision") or {}
        if isinstance(dec, str):
            dec = json.loads(dec)
        limits = [r["query"].get("limit")
                  for r in dtest.http("GET", SURL + "/_stub/requests") or []
                  if r["path"] == "/loki/api/v1/query_range"]
        return runs, p, {s["name"]: s for s in dec.get("sources", [])}, limits

    runs, p, srcs, limits = sourced_run(5008, 9210)
    loki_src = srcs.get("loki", {})
    note = ("Note: reduced: Loki's answer for the 50 most recent lines was over 1048576 bytes, "
            "so only the 12 most recent were asked for; 12 lines longer than 1024 bytes cut to "
            "their first 1024")
    check("a Loki answer over 1 MiB is asked again for the 12 most recent lines: the source is "
          "ok and says it was reduced",
          limits == ["50", "12"] and loki_src.get("state") == "ok"
          and loki_src.get("detail", "").startswith("reduced: Loki's answer"),
          [limits, loki_src])
    check("the prompt's Loki section has the most recent lines, cut, and says it was reduced",
          note in p and "panic: widget crash loop #0 xxx" in p and "more bytes cut]" in p
          and "x" * 1100 not in p, p[p.find("## Loki"):][:1500])
    check("an ArgoCD Application over 1 MiB is still read: its unhealthy resource is in the prompt",
          srcs.get("argocd", {}).get("state") == "ok" and "widgets-broken-svc" in p,
          [srcs.get("argocd"), len(json.dumps(big_app))])
    # one line over 1 MiB: asked again for 12, 3, then 1 line, then given up
    set_sources(loki={"loki_lines": {"count": 2, "bytes": 1200000, "text": "panic: huge"}})
    runs, p, srcs, limits = sourced_run(5009, 9220)
    loki_src = srcs.get("loki", {})
    check("a single Loki line over 1 MiB: asked again three times at most, then the source "
          "fails and the prompt names it",
          limits == ["50", "12", "3", "1"] and loki_src.get("state") == "failed"
          and "(asked again for 1 of 50 lines)" in loki_src.get("detail", "")
          and len(runs) == 1 and "asked again for 1 of 50 lines" in p, [limits, loki_src])
    set_sources()

    # ---- 5. sensor call: the answer carries the decision --------------------------
    wf_run = {"action": "completed", "workflow_run": {
        "id": 9300, "name": "Rust CI", "run_attempt": 1, "conclusion": "failure", "status": "completed",
        "head_branch": "feat/faster", "head_sha": SHA, "html_url": "https://github.com/x",
        "head_commit": {"message": "perf: faster"}}, "repository": {
        "full_name": REPO, "default_branch": "main"}, "sender": {"login": "dev"}}
    dtest.http("POST", GURL + "/_stub/seed", {"jobs": {"9300": [
        {"id": 5004, "name": "clippy", "conclusion": "failure", "steps": [
            {"name": "Run clippy", "conclusion": "failure", "number": 3}]},
        {"id": 5099, "name": "fmt", "conclusion": "success", "steps": []}]}}, token=GTOKEN)
    st, ans = srv.request("POST", "/api/remediate/ci-failure", json.dumps({"body": wf_run}).encode(),
                          {"Content-Type": "application/json",
                           "Authorization": f"Bearer {API_TOKEN}"})
    check("sensor ci-failure answers with the decision",
          st in (200, 202) and ans.get("agent") == "rex" and ans.get("failure_type") == "rust_clippy"
          and ans.get("coderun_name", "").startswith("healer-rex-")
          and ans.get("dedup_status") == "new", ans)

    # ---- 5a. concurrent repeats of one sensor call all carry its decision -------
    # (slow sources: the repeats arrive while the first call is decided; they
    # were answered at once with null keys read from the undecided task)
    set_sources(delay_ms=1000)
    wf_run2 = json.loads(json.dumps(wf_run))
    wf_run2["workflow_run"].update(id=9301, head_branch="feat/r9301")
    dtest.http("POST", GURL + "/_stub/seed", {"jobs": {"9301": [
        {"id": 5098, "name": "clippy", "conclusion": "failure", "steps": [
            {"name": "Run clippy", "conclusion": "failure", "number": 3}]}]}}, token=GTOKEN)
    seed_github([5004, 5098])
    rep_body = json.dumps({"body": wf_run2}).encode()

    def repeat(_):
        return srv.request("POST", "/api/remediate/ci-failure", rep_body,
                           {"Content-Type": "application/json",
                            "Authorization": f"Bearer {API_TOKEN}"})

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as ex:
        reps = list(ex.map(repeat, range(10)))
    set_sources()
    rep_ans = [a for _, a in reps]
    check("10 concurrent repeats of a sensor call: one accepted, the others duplicates, all"
          " carrying the first call's task and decision",
          all(st == 202 for st, _ in reps)
          and [a.get("status") for a in rep_ans].count("accepted") == 1
          and len({a.get("task_id") for a in rep_ans}) == 1
          and all(a.get("agent") == "rex" and a.get("failure_type") == "rust_clippy"
                  and (a.get("coderun_name") or "").startswith("healer-rex-")
                  and a.get("coderun_name") == rep_ans[0].get("coderun_name")
                  for a in rep_ans), rep_ans)

    # ---- 5b. a Dependabot alert from the security sensor -> Cipher ------------
    ex = json.load(open(os.path.join(dtest.ROOT, "tests", "node", "node_modules", "@octokit",
                                     "webhooks-examples", "api.github.com", "index.json")))
    alert = next(x for x in next(e for e in ex if e["name"] == "dependabot_alert")["examples"]
                 if x["action"] == "created")
    alert = copy.deepcopy(alert)
    alert["repository"]["full_name"] = REPO
    num = alert["alert"]["number"]
    st, ans = srv.request("POST", "/api/remediate/security-alert", json.dumps(alert).encode(),
                          {"Content-Type": "application/json",
                           "Authorization": f"Bearer {API_TOKEN}"})
    tid = ans.get("task_id")
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == tid], 15)
    cr = runs[0] if runs else {"metadata": {"labels": {}}, "spec": {"env": {}}}
    p = cr["spec"].get("promptModification", "")
    adv = alert["alert"]["security_advisory"]
    check("a Dependabot alert becomes a Cipher CodeRun with the advisory in its prompt",
          st == 202 and cr["metadata"]["labels"].get("healer/agent") == "cipher"
          and cr["metadata"]["labels"].get("healer/failure-type") == "security_dependabot"
          and cr["spec"].get("githubApp") == "5DLabs-Cipher"
          and adv["ghsa_id"] in p
          and alert["alert"]["dependency"]["package"]["name"] in p, [ans, p[:1500]])
    check("an alert without a branch gets its own fix branch",
          cr["spec"]["env"].get("TARGET_BRANCH") == f"fix/dependabot-alert-{num}",
          cr["spec"]["env"])
    check("an alert's CodeRun has no run id (empty, not \"0\") and its fix branch as the"
          " branch label",
          cr["spec"]["env"].get("WORKFLOW_RUN_ID") == ""
          and cr["metadata"]["labels"].get("healer/workflow-run-id") == ""
          and cr["metadata"]["labels"].get("healer/branch") == f"fix-dependabot-alert-{num}",
          [cr["metadata"]["labels"], cr["spec"]["env"]])
    check("the security sensor's answer waits for the decision: Cipher, the type, the CodeRun",
          ans.get("agent") == "cipher" and ans.get("failure_type") == "security_dependabot"
          and ans.get("coderun_name") == cr["metadata"].get("name")
          and ans.get("dedup_status") == "new" and "decision" not in ans, ans)
    reopened = copy.deepcopy(alert)
    reopened["action"] = "reopened"
    st, again = srv.request("POST", "/api/remediate/security-alert",
                            json.dumps(reopened).encode(),
                            {"Content-Type": "application/json",
                             "Authorization": f"Bearer {API_TOKEN}"})
    time.sleep(0.5)
    fix_runs = [c for c in coderuns()
                if c["spec"].get("env", {}).get("TARGET_BRANCH") == f"fix/dependabot-alert-{num}"]
    check("the alert reopened while its task is open answers existing with that task and"
          " its CodeRun, and starts no second CodeRun",
          st == 202 and again.get("dedup_status") == "existing" and again.get("task_id") == tid
          and again.get("coderun_name") == cr["metadata"].get("name") and len(fix_runs) == 1,
          [again, [c["metadata"]["name"] for c in fix_runs]])

    # ---- 5c. /healer fix on a PR -> a CodeRun for its failing check with the hint --
    dtest.http("POST", GURL + "/_stub/seed", {
        "logs": {"6001": CLIPPY_LOG},
        "check_runs_by_ref": {SHA: [
            {"id": 6001, "name": "clippy-strict", "head_sha": SHA, "status": "completed",
             "conclusion": "failure", "app": {"slug": "github-actions"},
             "html_url": f"https://github.com/{REPO}/runs/6001",
             "output": {"title": "clippy", "summary": "1 error", "text": None}},
            {"id": 6002, "name": "fmt", "head_sha": SHA, "status": "completed",
             "conclusion": "success", "app": {"slug": "github-actions"}}]}}, token=GTOKEN)
    comment = {"action": "created",
               "issue": {"number": 42, "title": "Faster widgets",
                         "pull_request": {"url": f"https://api.github.com/repos/{REPO}/pulls/42"}},
               "comment": {"id": 777001, "body": "Please have a look.\n/healer fix the clippy lint in src/lib.rs\n",
                           "author_association": "MEMBER",
                           "user": {"login": "maintainer", "type": "User"}},
               "repository": {"full_name": REPO, "default_branch": "main"},
               "sender": {"login": "maintainer", "type": "User"}}
    st, ans = srv.deliver(comment, event="issue_comment")
    tid = hashlib.sha256(f"{ans.get('task_id')}|check=6001".encode()).hexdigest()[:20]
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == "hl-" + tid], 15)
    cr = runs[0] if runs else {"metadata": {"labels": {}}, "spec": {"env": {}}}
    p = cr["spec"].get("promptModification", "")
    check("/healer fix on a PR creates a CodeRun for its failing check with the hint",
          st == 202 and cr["spec"]["env"].get("PR_NUMBER") == "42"
          and cr["spec"]["env"].get("TARGET_BRANCH") == "feat/faster"
          and "the clippy lint in src/lib.rs" in p and "maintainer" in p, [ans, p[:2000]])
    check("only the failing check is remediated",
          not [c for c in coderuns() if c["spec"].get("env", {}).get("HEALER_TASK_ID") == "hl-"
               + hashlib.sha256(f"{ans.get('task_id')}|check=6002".encode()).hexdigest()[:20]])

    # ---- 5d. /healer fix in a comment on a line of a PR's diff: the hint says where --
    sha43 = "43" * 20
    dtest.http("POST", GURL + "/_stub/seed", {
        "logs": {"6003": CLIPPY_LOG},
        "review_comments": {"778001": {"id": 778001}},
        "pulls": [{"number": 43, "state": "open", "title": "Checked widgets",
                   "html_url": f"https://github.com/{REPO}/pull/43", "body": "",
                   "user": {"login": "dev"},
                   "head": {"ref": "feat/checked", "sha": sha43}, "base": {"ref": "main"}}],
        "check_runs_by_ref": {sha43: [
            {"id": 6003, "name": "clippy-strict", "head_sha": sha43, "status": "completed",
             "conclusion": "failure", "app": {"slug": "github-actions"},
             "html_url": f"https://github.com/{REPO}/runs/6003",
             "output": {"title": "clippy", "summary": "1 error", "text": None}}]}},
        token=GTOKEN)
    review = {"action": "created",
              "pull_request": {"number": 43, "title": "Checked widgets", "state": "open"},
              "comment": {"id": 778001, "body": "/healer fix use checked_add here",
                          "path": "src/lib.rs", "line": 12, "start_line": 10,
                          "author_association": "MEMBER",
                          "user": {"login": "maintainer", "type": "User"}},
              "repository": {"full_name": REPO, "default_branch": "main"},
              "sender": {"login": "maintainer", "type": "User"}}
    st, ans = srv.deliver(review, event="pull_request_review_comment")
    tid = hashlib.sha256(f"{ans.get('task_id')}|check=6003".encode()).hexdigest()[:20]
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == "hl-" + tid], 15)
    cr = runs[0] if runs else {"metadata": {"labels": {}}, "spec": {"env": {}}}
    p = cr["spec"].get("promptModification", "")
    eyes = wait_for(lambda: [r for r in dtest.http("GET", GURL + "/_stub/reactions", token=GTOKEN)
                             if r["comment_id"] == 778001 and r["on"] == "review_comment"], 10)
    check("/healer fix in a review comment on lines 10-12 of src/lib.rs: a CodeRun whose hint "
          "says where, and an eyes reaction on the review comment",
          st == 202 and cr["spec"]["env"].get("PR_NUMBER") == "43"
          and "on src/lib.rs lines 10-12: use checked_add here" in p and bool(eyes),
          [ans, p[:2000], eyes])
    if runs:  # its CodeRun slot freed for the cases below
        kube("POST", "/_stub/coderun-phase", {"namespace": "cto",
                                              "name": runs[0]["metadata"]["name"],
                                              "phase": "Succeeded"})
        wait_for(lambda: srv.request("GET", f"/api/remediations/hl-{tid}")[1].get("state")
                 == "verifying", 15)

    # ---- 5e. the Stitch button: a check run's requested action, routed by its output --
    stitch = check_run_event(6101, run_id=9360, branch="feat/r9360", name="Stitch review")
    stitch["action"] = "requested_action"
    stitch["requested_action"] = {"identifier": "rex_remediate"}
    stitch["check_run"].update({
        "app": {"slug": "stitch", "id": 99},
        "details_url": "https://stitch.example/reviews/1",
        "html_url": f"https://github.com/{REPO}/runs/6101",
        "output": {"title": "Stitch found 1 problem", "summary": "Review of feat/r9360",
                   "text": "src/app.tsx(12,5): error TS2322: Type 'string' is not assignable "
                           "to type 'number'.\nFound 1 error."}})
    st, ans = srv.deliver(stitch, event="check_run")
    tid = ans.get("task_id")
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == tid], 15) or []
    p = runs[0]["spec"].get("promptModification", "") if runs else ""
    check("the Stitch button (requested_action) is remediated, routed by the check run's text",
          st == 202 and tid and len(runs) == 1
          and runs[0]["metadata"]["labels"].get("healer/agent") == "blaze" and "TS2322" in p,
          [st, ans, [c["metadata"]["labels"] for c in runs], srv.log_tail()[-1500:]])
    st, ans2 = srv.deliver(dict(stitch, requested_action={"identifier": "show_details"}),
                           event="check_run")
    check("a requested action that is not a remediation is skipped",
          st == 202 and ans2.get("task_id") is None and ans2.get("status") == "skipped", ans2)

    # ---- 5d. the Kubernetes API fails for a while: the remediation is retried ----
    kube("POST", "/_stub/config", {"rules": [
        {"method": "POST", "path": "/apis/agents.platform/v1/namespaces/cto/coderuns",
         "status": 503, "times": 6, "body": {"kind": "Status", "code": 503}}]})
    st, ans = srv.deliver(job_event(5007, run_id=9350, branch="feat/r9350"))
    tid = ans.get("task_id")
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == tid], 20)
    check("a Kubernetes outage delays the CodeRun but does not lose it", len(runs) == 1,
          srv.log_tail()[-1500:])
    kube("POST", "/_stub/config", {"rules": []})

    # ---- 5d2. a proxy answers the create with a login page: retried, not lost ---
    # (before: "parse_error", the delivery failed at once and the attempt
    # stayed unfinished until the attempt timeout)
    kube("POST", "/_stub/config", {"rules": [
        {"method": "POST", "path": "/apis/agents.platform/v1/namespaces/cto/coderuns",
         "status": 200, "times": 2, "headers": {"Content-Type": "text/html"},
         "body": "<html><body>Please sign in</body></html>"}]})
    seed_github([5017])
    st, ans = srv.deliver(job_event(5017, run_id=9355, branch="feat/r9355"))
    tid = ans.get("task_id")
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == tid], 20)
    check("a create answered 200 with an HTML page is asked again: the CodeRun is not lost",
          runs and len(runs) == 1, srv.log_tail()[-1500:])
    kube("POST", "/_stub/config", {"rules": []})

    # ---- 5e. a CodeRun the API refuses: the task goes to people at once ---------
    # (before: the attempt stayed unfinished and the task "running", holding a
    # CodeRun slot until the attempt timeout; every retry then failed the same
    # way once a minute for ever)
    cr_path = "/apis/agents.platform/v1/namespaces/cto/coderuns"

    def task(tid):
        st, t = srv.request("GET", f"/api/remediations/{tid}")
        return t if st == 200 else {}

    def posts():
        return sum(1 for r in kube("GET", "/_stub/requests?method=POST&path=" + cr_path) or []
                   if r["path"] == cr_path)

    kube("POST", "/_stub/config", {"rules": [{
        "method": "POST", "path": cr_path, "status": 422,
        "body": {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
                 "reason": "Invalid", "message": 'CodeRun.agents.platform "x" is invalid: '
                 'spec.model: Unsupported value: "opus-9"'}}]})
    before = posts()
    seed_github([5018])
    st, ans = srv.deliver(job_event(5018, run_id=9380, branch="feat/r9380"))
    tid = ans.get("task_id")
    t = wait_for(lambda: (lambda t: t if t.get("state") == "escalated" else None)(task(tid)),
                 10) or task(tid)
    a = (t.get("attempts") or [{}])[0]
    check("a CodeRun refused with 422 escalates its task at once, the attempt saying why",
          t.get("state") == "escalated" and len(t.get("attempts", [])) == 1
          and a.get("phase") == "done" and a.get("coderun") is None
          and "status 422" in (a.get("reason") or "")
          and 'Unsupported value: "opus-9"' in (a.get("reason") or "")
          and not [c for c in coderuns()
                   if c["metadata"]["labels"].get("healer/task-id") == tid],
          [t, srv.log_tail()[-1500:]])
    time.sleep(1.5)
    check("a refused CodeRun is not asked for again and again", posts() - before == 1,
          posts() - before)

    # a later attempt refused (422: its manifest invalid)
    kube("POST", "/_stub/config", {"rules": []})
    seed_github([5019])
    st, ans = srv.deliver(job_event(5019, run_id=9390, branch="feat/r9390"))
    tid = ans.get("task_id")
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == tid], 15) or []
    kube("POST", "/_stub/config", {"rules": [{"method": "POST", "path": cr_path, "status": 422}]})
    if runs:
        kube("POST", "/_stub/coderun-phase", {"namespace": "cto",
                                              "name": runs[0]["metadata"]["name"],
                                              "phase": "Failed", "message": "tests broke"})
    t = wait_for(lambda: (lambda t: t if t.get("state") == "escalated" else None)(task(tid)),
                 15) or task(tid)
    at = t.get("attempts") or []
    check("a retry whose CodeRun is refused (422) escalates the task, both attempts recorded",
          len(runs) == 1 and t.get("state") == "escalated" and len(at) == 2
          and at[0].get("outcome") == "agent_failed"
          and "status 422" in (at[1].get("reason") or ""), [t, srv.log_tail()[-1500:]])
    kube("POST", "/_stub/config", {"rules": []})

    # ---- 5f. a create denied once (401: a token being rotated) -------------------
    # is asked again, not a refusal (before: the task went to people at once)
    kube("POST", "/_stub/config", {"rules": [{"method": "POST", "path": cr_path, "status": 401,
                                              "times": 1}]})
    before = posts()
    seed_github([5041])
    st, ans = srv.deliver(job_event(5041, run_id=9391, branch="feat/r9391"))
    tid = ans.get("task_id")
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == tid], 20) or []
    # the attempt names its CodeRun once the create's answer is recorded
    t = wait_for(lambda: (lambda t: t if (t.get("attempts") or [{}])[0].get("coderun") else None)(
        task(tid)), 10) or task(tid)
    check("a CodeRun create answered 401 once is created on the next try; the task is not "
          "escalated", len(runs) == 1 and posts() - before == 2
          and t.get("state") not in ("escalated", None) and len(t.get("attempts", [])) == 1
          and t["attempts"][0].get("coderun") == runs[0]["metadata"]["name"],
          [posts() - before, t, srv.log_tail()[-1500:]])
    if runs:  # its CodeRun slot freed for the cases below
        kube("POST", "/_stub/coderun-phase", {"namespace": "cto",
                                              "name": runs[0]["metadata"]["name"],
                                              "phase": "Succeeded"})
        wait_for(lambda: task(tid).get("state") == "verifying", 15)

    # ---- 5g. a create denied for good (403: the service account lost its RBAC) ----
    # ends refused once it persists (HL_REMEDIATE_DENIED_TRIES creates in a row)
    kube("POST", "/_stub/config", {"rules": [{"method": "POST", "path": cr_path, "status": 403}]})
    before = posts()
    seed_github([5042])
    st, ans = srv.deliver(job_event(5042, run_id=9392, branch="feat/r9392"))
    tid = ans.get("task_id")
    t = wait_for(lambda: (lambda t: t if t.get("state") == "escalated" else None)(task(tid)),
                 90) or task(tid)
    a = (t.get("attempts") or [{}])[0]
    check("a CodeRun create answered 403 on every try ends refused after 5 tries, the task "
          "escalated", t.get("state") == "escalated" and posts() - before == 5
          and a.get("phase") == "done" and "status 403" in (a.get("reason") or ""),
          [posts() - before, t, [ln for ln in open(os.path.join(srv.data_dir, "server.log"))
                                 if "denied" in ln or "goes to people" in ln][-12:]])
    kube("POST", "/_stub/config", {"rules": []})

    # ---- 6. SIGKILL in the middle of a remediation, restart: no duplicate --------
    set_sources(delay_ms=1500)
    st, ans = srv.deliver(job_event(5005, run_id=9400, branch="feat/r9400"))
    tid = ans.get("task_id")
    time.sleep(0.5)  # the worker is waiting on the sources now
    srv.kill()
    set_sources()
    srv = Healer(srv.data_dir, BASE_ENV).start()
    runs = wait_for(lambda: [c for c in coderuns()
                             if c["metadata"]["labels"].get("healer/task-id") == tid], 15)
    time.sleep(1.0)
    runs = [c for c in coderuns() if c["metadata"]["labels"].get("healer/workflow-run-id") == "9400"]
    check("a restart in the middle leaves exactly one CodeRun", len(runs) == 1, len(runs))

    # ---- 6b. killed after the API stored the CodeRun, before its answer: the re-run
    # classifies otherwise (the log reads differently now) and adopts it ----------
    # (before: a second CodeRun by the new name, a second agent on one failure)
    TS_LOG = ("2025-01-15T10:30:00.0000000Z ##[group]Run npm run typecheck\n"
              "2025-01-15T10:30:02.0000000Z src/app.tsx(12,5): error TS2322: Type 'string' is "
              "not assignable to type 'number'.\n"
              "2025-01-15T10:30:02.0000000Z Found 1 error.\n"
              "2025-01-15T10:30:03.0000000Z ##[error]Process completed with exit code 2.\n")
    seed_github([5021])
    kube("POST", "/_stub/config", {"create_reply_delay_ms": 4000})
    st, ans = srv.deliver(job_event(5021, run_id=9410, branch="feat/r9410", name="build"))
    tid = ans.get("task_id")
    first = wait_for(lambda: [c for c in coderuns()
                              if c["metadata"]["labels"].get("healer/task-id") == tid], 15) or []
    srv.kill()
    kube("POST", "/_stub/config", {"create_reply_delay_ms": 0})
    dtest.http("POST", GURL + "/_stub/seed", {"logs": {"5021": TS_LOG}}, token=GTOKEN)
    srv = Healer(srv.data_dir, BASE_ENV).start()
    t = wait_for(lambda: (lambda t: t if t.get("coderun_name") else None)(
        (lambda r: r[1] if r[0] == 200 else {})(srv.request("GET", f"/api/remediations/{tid}"))),
        15) or {}
    runs = [c for c in coderuns() if c["metadata"]["labels"].get("healer/task-id") == tid]
    check("a re-run after a kill that classifies otherwise adopts the CodeRun made before",
          len(first) == 1 and len(runs) == 1 and t.get("coderun_name") == first[0]["metadata"][
              "name"] and t.get("agent") == first[0]["metadata"]["labels"].get("healer/agent"),
          [[c["metadata"]["name"] for c in runs], t.get("coderun_name"), t.get("agent"),
           srv.log_tail()[-1500:]])
    srv.stop()
    check("SIGTERM stops the server cleanly", srv.proc.returncode == 0, srv.log_tail())

    # ---- 7. directory dispatch: a readable manifest on disk ----------------------
    denv = dict(BASE_ENV, HEALER_DISPATCH="directory")
    denv.pop("KUBECONFIG")
    cdir = os.path.join(dtest.TMP, "h2", "coderuns")
    os.makedirs(cdir, exist_ok=True)
    killed = os.path.join(cdir, ".healer-old.json.x7k2m.tmp.999")  # a SIGKILLed write
    open(killed, "w").write("{")
    os.utime(killed, (1, 1))
    dsrv = Healer(os.path.join(dtest.TMP, "h2"), denv).start()
    check("a server starting in directory dispatch removes a killed write's temporary file",
          not os.path.exists(killed), os.listdir(cdir))
    st, ans = dsrv.deliver(job_event(5006, run_id=9500, branch="feat/r9500"))
    files = wait_for(lambda: os.path.isdir(cdir) and [f for f in os.listdir(cdir)
                                                      if f.endswith(".json")], 15)
    ok = False
    if files:
        m = json.load(open(os.path.join(cdir, files[0])))
        ok = (m.get("kind") == "CodeRun" and m["spec"].get("githubApp") == "5DLabs-Rex"
              and "needless-borrow" in m["spec"].get("promptModification", ""))
    check("directory dispatch writes a readable CodeRun manifest", ok, files)
    dsrv.stop()

    for h in (srv, dsrv):  # sanitizer builds report leaks and errors at exit
        dtest._scan(open(os.path.join(h.data_dir, "server.log"), errors="replace").read())
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
