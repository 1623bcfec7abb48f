#!/usr/bin/env python3
"""make_corpus.py - (re)writes the seed corpora under tests/fuzz/corpus/
from real examples in the repository: GitHub's webhook examples
(@octokit/webhooks-examples, installed by scripts/install-deps.sh) trimmed of
their API URL fields, the alert bodies and CodeRuns of the integration tests,
the classification rules and cases, the README's service map, the test
kubeconfigs, the upstream answers of the research notes (docs of GitHub,
Kubernetes, ArgoCD, Loki, Prometheus, Grafana, OpenMemory). Regression inputs (files named regress-*) are never touched.

usage: make_corpus.py [SOURCE_ROOT]"""
import ast
import glob
import json
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
EXAMPLES = os.path.join(ROOT, "tests", "node", "node_modules", "@octokit", "webhooks-examples",
                        "api.github.com", "index.json")
KEEP_URLS = {"html_url", "logs_url", "jobs_url", "url"}


def compact(v):
    return json.dumps(v, separators=(",", ":"), sort_keys=False)


def trim(v):
    """Drops the API URL fields and node ids that make up most of a payload."""
    if isinstance(v, dict):
        return {k: trim(x) for k, x in v.items()
                if not ((k.endswith("_url") and k not in KEEP_URLS) or k in ("node_id", "gravatar_id"))}
    if isinstance(v, list):
        return [trim(x) for x in v]
    return v


def reset(target):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if not f.startswith("regress-"):
            os.remove(os.path.join(d, f))
    return d


def put(target, name, data):
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def from_source(path, names, env=None):
    """The module-level functions and assignments called names in a test
    driver, evaluated without running the driver."""
    tree = ast.parse(open(os.path.join(ROOT, path)).read())
    ns = dict(env or {})
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            exec(compile(ast.Module([node], []), path, "exec"), ns)
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in names for t in node.targets):
            exec(compile(ast.Module([node], []), path, "exec"), ns)
    return ns


def webhook_and_sensor():
    reset("webhook")
    reset("sensor")
    events = {"workflow_job": 4, "workflow_run": 2, "check_run": 3, "check_suite": 1,
              "issue_comment": 2, "pull_request": 2, "pull_request_review": 1,
              "pull_request_review_comment": 1, "push": 1,
              "status": 1, "merge_group": 1, "ping": 1, "dependabot_alert": 2,
              "code_scanning_alert": 1, "secret_scanning_alert": 1,
              "repository_vulnerability_alert": 1}
    index = json.load(open(EXAMPLES))
    for e in index:
        n = events.get(e["name"], 0)
        for i, ex in enumerate(e["examples"][:n]):
            body = compact(trim(ex))
            put("webhook", "%s-%d" % (e["name"], i), e["name"] + "\n" + body)
            if e["name"] in ("workflow_job", "workflow_run", "check_run"):
                put("sensor", "%s-%d-bare" % (e["name"], i), "\n" + body)
                put("sensor", "%s-%d-wrapped" % (e["name"], i),
                    e["name"] + "\n" + compact({"body": trim(ex)}))
                if i == 0:
                    put("sensor", "%s-string" % e["name"], "\n" + compact({"body": body}))
            elif e["name"].endswith("_alert") and i == 0:
                put("sensor", "%s-bare" % e["name"], "\n" + body)
    sample = open(os.path.join(ROOT, "examples", "workflow_job_failure.json")).read()
    put("webhook", "example-workflow_job", "workflow_job\n" + sample)
    put("webhook", "no-event", sample)


def alerts():
    reset("alerts")
    ns = from_source("tests/alerts/test_alerts.py", {"am_body", "am_alert", "ARGO_APP"},
                     {"APP_NS": "shop"})
    am_body, am_alert = ns["am_body"], ns["am_alert"]
    put("alerts", "am-firing", b"\0" + compact(am_body([am_alert("api-7d9f8b6c5d-x1", "f00")])).encode())
    put("alerts", "am-two", b"\0" + compact(am_body([
        am_alert("api-7d9f8b6c5d-x1", "f01"),
        am_alert("worker-5b6c7d8e9f-q2", "f02", name="KubePodNotReady")])).encode())
    put("alerts", "am-resolved", b"\0" + compact(am_body(
        [am_alert("api-7d9f8b6c5d-x1", "f00", status="resolved")], status="resolved")).encode())
    put("alerts", "am-not-pod", b"\0" + compact(am_body([{
        "status": "firing", "labels": {"alertname": "Watchdog"}, "annotations": {},
        "startsAt": "2026-01-01T10:05:00Z", "fingerprint": "f03"}])).encode())
    app = ns["ARGO_APP"]
    put("alerts", "argocd-degraded", b"\1" + compact({"application": app}).encode())
    healthy = json.loads(json.dumps(app))
    healthy["status"]["health"] = {"status": "Healthy"}
    healthy["status"]["operationState"]["phase"] = "Succeeded"
    put("alerts", "argocd-healthy", b"\1" + compact({"application": healthy}).encode())


def rules():
    reset("rules")
    text = open(os.path.join(ROOT, "rules", "default.yaml")).read()
    put("rules", "default.yaml", text)
    # the header and the first few rules: small files the fuzzer can mutate
    body = "".join(l for l in text.splitlines(True) if not l.lstrip().startswith("#"))
    parts = re.split(r"(?m)^(?=- name:)", body)
    for k in (1, 3, 6, 12):
        put("rules", "default-%d.yaml" % k, "".join(parts[:k + 1]))


def classify():
    reset("classify")
    n = 0
    for line in open(os.path.join(ROOT, "tests", "classify", "cases.jsonl")):
        c = json.loads(line)
        if not c.get("log") or len(c["log"]) > 6000:
            continue
        put("classify", c["id"], (c.get("failed_step") or "") + "\n" + c["log"])
        n += 1
        if n >= 24:
            break


def config_and_services():
    reset("config")
    reset("services")
    put("config", "minimal.yaml", "listen: 127.0.0.1:8080\ndata_dir: /nonexistent/var\n")
    put("config", "full.yaml", "\n".join([
        "HEALER_LISTEN: 127.0.0.1:9090", "data_dir: /nonexistent/var",
        "HEALER_NAMESPACE: cto", "dispatch: none", "repositories:", "  - acme/shop",
        "  - acme/api", "max_attempts: 3", "attempt_timeout_mins: 60",
        "command_associations: [OWNER, MEMBER]", "log_level: debug",
        "github_api_url: http://127.0.0.1:1/api", "workers: 2",
        "allow_unauthenticated: false", "process_bot_commits: true", ""]))
    put("config", "bad-key.yaml", "no_such_key: 1\n")
    put("config", "nested.yaml", "listen:\n  host: x\n")
    put("config", "database.yaml", "database_url: postgres://u:p@127.0.0.1:5432/healer\n")
    readme = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"```yaml\n(services:\n.*?)```", readme, re.S)
    if m:
        put("services", "readme.yaml", m.group(1))
    put("services", "list.yaml", "- repository: acme/api\n  namespace: prod\n"
        "- repository: acme/web\n  service: web\n  workload: web-frontend\n")
    put("services", "bad-key.yaml", "- repository: acme/api\n  argocd: x\n")


def kubeconfig():
    reset("kubeconfig")
    ns = from_source("tests/dispatch/dtest.py", {"write_kubeconfig"}, {"base64": __import__("base64")})
    tmp = os.path.join(OUT, "kubeconfig", ".tmp")
    variants = {
        "token": dict(token="t0ken", namespace="cto"),
        "token-file": dict(token_file="token", namespace="cto"),
        "ca-file-insecure": dict(ca_path="ca.crt", ca_inline=False, insecure=True),
        "no-user": {},
    }
    for name, kw in variants.items():
        ns["write_kubeconfig"](tmp, "https://127.0.0.1:6443", **kw)
        os.rename(tmp, os.path.join(OUT, "kubeconfig", name))
    put("kubeconfig", "client-cert", "\n".join([
        "apiVersion: v1", "kind: Config", "current-context: c",
        "clusters: [{name: k, cluster: {server: 'https://[::1]:6443/'}}]",
        "contexts: [{name: c, context: {cluster: k, user: u, namespace: ns}}]",
        "users: [{name: u, user: {client-certificate-data: LS0tLS1CRUdJTg==, "
        "client-key-data: LS0tLS1CRUdJTg==}}]", ""]))
    put("kubeconfig", "exec-user", "\n".join([
        "current-context: c", "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:8001'}}]",
        "contexts: [{name: c, context: {cluster: k, user: u}}]",
        "users: [{name: u, user: {exec: {command: kubectl}}}]", ""]))
    put("kubeconfig", "tls-server-name-proxy", "\n".join([
        "current-context: c",
        "clusters: [{name: k, cluster: {server: 'https://[::1]:6443/k8s', "
        "tls-server-name: kube.example.test, proxy-url: 'socks5://u:p%40ss@proxy.test:1080'}}]",
        "contexts: [{name: c, context: {cluster: k, user: u}}]",
        "users: [{name: u, user: {token: t0ken}}]", ""]))
    put("kubeconfig", "proxy-http", "\n".join([
        "current-context: c",
        "clusters: [{name: k, cluster: {server: 'https://10.0.0.1', "
        "proxy-url: 'HTTP://proxy.test:3128'}}]",
        "contexts: [{name: c, context: {cluster: k}}]", ""]))
    put("kubeconfig", "anchors", "a: &x {server: 'https://h'}\nclusters: [{name: k, cluster: *x}]\n")


def watch():
    reset("watch")
    ns = from_source("tests/net/test_kube.py", {"coderun"})
    st = from_source("tests/stubs/kube_stub.py", {"status_obj"})["status_obj"]

    def cr(name, rv, phase=None, deleting=False):
        o = ns["coderun"](name, {"healer/task-id": "hl-0123456789abcdef0123"})
        o["metadata"].update({"namespace": "cto", "resourceVersion": str(rv), "uid": "u-" + name})
        if deleting:
            o["metadata"]["deletionTimestamp"] = "2026-01-01T10:00:00Z"
        if phase:
            o["status"] = {"phase": phase, "message": "job " + phase.lower(),
                           "pullRequestUrl": "https://github.com/5dlabs/cto/pull/7",
                           "conditions": [{"type": phase, "status": "True", "reason": "JobCompleted"}]}
        return o

    def lines(evs):
        return "".join(compact(e) + "\n" for e in evs)

    stream = [{"type": "ADDED", "object": cr("cr-1", 11)},
              {"type": "MODIFIED", "object": cr("cr-1", 12, "Running")},
              {"type": "BOOKMARK", "object": {"kind": "CodeRun", "apiVersion": "agents.platform/v1",
                                              "metadata": {"resourceVersion": "13"}}},
              {"type": "MODIFIED", "object": cr("cr-1", 14, "Succeeded")},
              {"type": "DELETED", "object": cr("cr-1", 15, "Succeeded", deleting=True)}]
    for size in (1, 7, 64):
        put("watch", "stream-chunk%d" % size, bytes([size - 1]) + lines(stream).encode())
    put("watch", "gone-410", b"\x10" + lines([{"type": "ERROR", "object": st(
        410, "Expired", "too old resource version: 3 (9)")}]).encode())
    put("watch", "error-500", b"\x10" + lines([stream[0], {"type": "ERROR", "object": st(
        500, "InternalError", "injected", {"retryAfterSeconds": 2})}]).encode())
    put("watch", "garbled", b"\x03" + (lines(stream[:1]) + '{"type": "MODIFIED", "obj\r\n').encode())
    put("watch", "unknown-type", b"\x20" + lines([{"type": "SYNC", "object": cr("cr-2", 5)},
                                                  {"type": "ADDED", "object": "not an object"},
                                                  {"type": "ADDED"}]).encode())


def upstream():
    """fuzz_upstream: byte 0 picks the parser (the order of its enum), byte 1
    the status of an error answer, then the Link header line, then the body."""
    reset("upstream")
    st = from_source("tests/stubs/kube_stub.py", {"status_obj"})["status_obj"]
    (COMMIT, PR_FILES, PR, JOBS, ARGOCD, TREE, LOKI, PROM, EVENTS, PODS, GRAFANA, MEMORY,
     COMMITS, LOG, AGENT, STATUS, LINK) = range(17)
    nxt = '<https://api.github.com/repositories/1/pulls/7/files?page=2>; rel="next", ' \
          '<https://api.github.com/repositories/1/pulls/7/files?page=3>; rel="last"'

    def up(name, which, body, link="", status=0):
        put("upstream", name, bytes([which, status]) + (link + "\n").encode()
            + (body if isinstance(body, str) else compact(body)).encode())

    f = {"filename": "src/main.rs", "status": "modified", "additions": 3, "deletions": 1,
         "changes": 4, "patch": "@@ -1 +1 @@"}
    up("commit", COMMIT, {"sha": "abc", "commit": {"message": "fix: the build"},
                          "files": [f, dict(f, filename="Cargo.toml", status="added")]})
    up("pr-files-next", PR_FILES, [f] * 3, nxt)
    up("pr", PR, {"number": 7, "title": "Fix", "body": "@everyone <!channel>", "changed_files": 9,
                  "user": {"login": "octocat"}, "head": {"ref": "fix", "sha": "abc"}})
    up("pr-search", PR, [{"number": 8, "title": "x"}])
    up("jobs", JOBS, {"total_count": 3, "jobs": [
        {"id": 1, "name": "build", "conclusion": "failure",
         "steps": [{"name": "cargo test", "conclusion": "failure", "number": 3}]},
        {"id": 2, "name": "lint", "conclusion": "timed_out"},
        {"id": 3, "name": "docs", "conclusion": "success"}]})
    app = {"metadata": {"name": "api", "namespace": "argocd"},
           "status": {"health": {"status": "Degraded", "message": "Deployment api degraded"},
                      "sync": {"status": "OutOfSync", "revision": "abc"},
                      "operationState": {"phase": "Failed", "message": "one or more objects failed"},
                      "resources": [{"kind": "Deployment", "name": "api", "namespace": "prod",
                                     "status": "OutOfSync",
                                     "health": {"status": "Degraded", "message": "crash"}},
                                    {"kind": "Service", "name": "api", "status": "Synced",
                                     "health": {"status": "Healthy"}}]}}
    up("argocd-app", ARGOCD, app)
    up("argocd-tree", TREE, {"nodes": [
        {"kind": "Pod", "name": "api-1", "namespace": "prod", "parentRefs": [],
         "health": {"status": "Degraded", "message": "CrashLoopBackOff"}},
        {"kind": "Deployment", "name": "api", "health": {"status": "Degraded"}}],
        "orphanedNodes": [], "hosts": []})
    up("loki", LOKI, {"status": "success", "data": {"resultType": "streams", "result": [
        {"stream": {"app": "api"}, "values": [["1700000000000000000", "panic: boom"],
                                              ["1700000000000000001", "x" * 1500]]}]}})
    up("loki-error", LOKI, {"status": "error", "errorType": "bad_data", "error": "parse error"})
    up("prom", PROM, {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "api"}, "value": [1700000000.5, "0.25"]}]}})
    up("events", EVENTS, {"kind": "EventList", "items": [
        {"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
         "count": 12, "involvedObject": {"kind": "Pod", "name": "api-1"}},
        {"type": "Warning", "reason": "FailedMount", "count": 1e300,
         "involvedObject": {"name": "api"}}]})
    up("pods", PODS, {"kind": "PodList", "items": [
        {"metadata": {"name": "api-1", "namespace": "prod"},
         "status": {"phase": "Running", "containerStatuses": [
             {"name": "app", "restartCount": 3,
              "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
              "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                           "finishedAt": "2026-01-01T10:00:00Z"}}}]}},
        {"metadata": {"name": "api-2"}, "status": {"phase": "Pending", "reason": "Evicted",
                                                   "message": "low on memory"}}]})
    up("grafana", GRAFANA, [{"dashboardUID": "dash-1", "panelId": 4, "time": 1700000000000,
                             "timeEnd": 1700000060000, "text": "deploy"},
                            {"dashboardUID": "bad`uid", "panelId": 1, "time": 1}])
    up("memory", MEMORY, {"matches": [{"id": "m1", "content": "cargo clippy fix", "score": 0.91},
                                      {"id": "m2", "content": "x", "score": "high"}]})
    up("commits", COMMITS, {"status": "ahead", "ahead_by": 2, "commits": [
        {"sha": "a1", "commit": {"message": "wip", "author": {"name": "Ann"}}},
        {"sha": "b2", "commit": {"message": "fix", "author": {"name": "Bob"}}}]})
    up("log", LOG, "2026-01-01T10:00:00.0Z error[E0308]: mismatched types\n\x1b[31mred\x1b[0m\n")
    up("agent-output", AGENT, "agent: pushed the fix\n")
    up("status-kube-404", STATUS, st(404, "NotFound", 'pods "p" not found'), status=102)
    up("status-github-422", STATUS, {"message": "Validation Failed", "errors": [
        {"resource": "Issue", "field": "body", "code": "missing_field"}]}, status=111)
    up("status-plain-503", STATUS, "upstream connect error\r\n", status=151)
    up("status-ok", STATUS, "{}", status=0)
    up("link-next", LINK, "", nxt)
    up("link-no-next", LINK, "", '<https://api.github.com/x?page=1>; rel="prev"')


webhook_and_sensor()
alerts()
rules()
classify()
config_and_services()
kubeconfig()
watch()
upstream()
for t in sorted(os.listdir(OUT)):
    files = glob.glob(os.path.join(OUT, t, "*"))
    print("%-12s %3d files %7d bytes" % (t, len(files), sum(os.path.getsize(f) for f in files)))
