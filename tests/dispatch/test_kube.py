#!/usr/bin/env python3
"""test_kube.py - the Kubernetes client (src/net/kube.c), CodeRun dispatch,
`healer fetch-logs` and `healer spawn-remediation` against the Kubernetes
stub (TLS with a throw-away CA carried in the kubeconfig, bearer token)."""
import json
import os
import socket
import ssl
import subprocess
import time

from dtest import (CRD, NETPROBE, TMP, check, clean_env, finish, healer, http, make_ca, netprobe,
                   start_stub, write_kubeconfig)

TOKEN = "kube-test-token-5f2b"
ca = make_ca("kube")
wrong = make_ca("wrong")
_, port = start_stub("kube_stub.py", "--cert", ca["cert"], "--key", ca["key"], "--token", TOKEN,
                     "--crd", CRD)
server = f"https://127.0.0.1:{port}"
ctx = ssl.create_default_context(cafile=ca["ca"])
KCFG = write_kubeconfig(os.path.join(TMP, "kubeconfig"), server, ca["ca"], token=TOKEN,
                        namespace="prod")
KENV = {"KUBECONFIG": KCFG}


def ctl(method, path, body=None):
    return http(method, server + path, body, ctx=ctx)


def pod(name, containers, statuses, init=None, labels=None):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "prod", "labels": labels or {"app": name},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": name + "-rs"}]},
            "spec": {"nodeName": "node-1", "containers": containers,
                     "initContainers": init or []},
            "status": {"phase": "Running", "hostIP": "10.0.0.5", "podIP": "10.1.0.9",
                       "startTime": "2026-11-24T00:00:00Z", "qosClass": "Burstable",
                       "conditions": [{"type": "Ready", "status": "False"}],
                       "containerStatuses": statuses}}


ctl("POST", "/_stub/seed", {
    "pods": [
        pod("api-7d9f", [
            {"name": "app", "image": "ghcr.io/5dlabs/api:1.2",
             "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}}},
            {"name": "sidecar", "image": "envoy:1.30"}],
            [{"name": "app", "ready": False, "restartCount": 3,
              "state": {"waiting": {"reason": "CrashLoopBackOff"}},
              "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                           "finishedAt": "2026-11-24T00:10:00Z"}}},
             {"name": "sidecar", "ready": True, "restartCount": 0,
              "state": {"running": {"startedAt": "2026-11-24T00:00:05Z"}}}],
            init=[{"name": "init-db", "image": "busybox"}]),
        pod("calm-pod", [{"name": "web", "image": "nginx"}],
            [{"name": "web", "ready": True, "restartCount": 0, "state": {"running": {}}}]),
    ],
    "logs": [
        {"namespace": "prod", "pod": "api-7d9f", "container": "app",
         "text": "".join(f"app line {i}\n" for i in range(1, 21))},
        {"namespace": "prod", "pod": "api-7d9f", "container": "app", "previous": True,
         "text": "panic: runtime error: out of memory\n"},
        {"namespace": "prod", "pod": "api-7d9f", "container": "sidecar", "text": "envoy ok\n"},
        {"namespace": "prod", "pod": "api-7d9f", "container": "init-db", "text": "migrated\n"},
        {"namespace": "prod", "pod": "calm-pod", "container": "web", "text": "GET / 200\n"},
    ],
    "events": [
        {"metadata": {"name": "e1", "namespace": "prod"}, "type": "Warning", "reason": "BackOff",
         "message": "Back-off restarting failed container app", "count": 12,
         "lastTimestamp": "2026-11-24T00:11:00Z", "source": {"component": "kubelet"},
         "involvedObject": {"kind": "Pod", "name": "api-7d9f"}},
        {"metadata": {"name": "e2", "namespace": "prod"}, "type": "Warning",
         "reason": "OOMKilling", "message": "Memory cgroup out of memory: Killed process 1",
         "involvedObject": {"kind": "Pod", "name": "api-7d9f"}},
        {"metadata": {"name": "e3", "namespace": "prod"}, "type": "Normal", "reason": "Pulled",
         "message": "ok", "involvedObject": {"kind": "Pod", "name": "calm-pod"}},
        {"metadata": {"name": "e4", "namespace": "other"}, "type": "Normal", "reason": "Other",
         "message": "other ns", "involvedObject": {"kind": "Pod", "name": "api-7d9f"}},
    ],
    "applications": [
        {"metadata": {"name": "cto-controller", "namespace": "argocd"},
         "status": {"health": {"status": "Degraded"}, "sync": {"status": "OutOfSync"}}}],
})

# ---- client configuration and TLS ----
rc, out, err = netprobe("kube", "config", env=KENV)
check("kubeconfig: server, inline CA, token and namespace loaded",
      rc == 0 and out["server"] == server and out["has_ca_data"] and out["has_token"]
      and out["namespace"] == "prod", out)
rc, out, err = netprobe("kube", "get-pod", "prod", "api-7d9f", env=KENV)
check("get pod over TLS verified with certificate-authority-data",
      rc == 0 and out["metadata"]["name"] == "api-7d9f", (out, err))
bad = write_kubeconfig(os.path.join(TMP, "kc-wrong-ca"), server, wrong["ca"], token=TOKEN)
rc, out, err = netprobe("kube", "get-pod", "prod", "api-7d9f", env={"KUBECONFIG": bad})
check("a server certificate from another CA is refused", rc == 1 and out["error"] == "io_error",
      out)
filec = write_kubeconfig(os.path.join(TMP, "kc-file-ca"), server, ca["ca"], ca_inline=False,
                         token=TOKEN)
rc, out, err = netprobe("kube", "get-pod", "prod", "calm-pod", env={"KUBECONFIG": filec})
check("certificate-authority file works too", rc == 0 and out["metadata"]["name"] == "calm-pod",
      out)
with open(os.path.join(TMP, "tok"), "w") as f:
    f.write("wrong-token\n")
badtok = write_kubeconfig(os.path.join(TMP, "kc-bad-token"), server, ca["ca"],
                          token_file=os.path.join(TMP, "tok"))
rc, out, err = netprobe("kube", "get-pod", "prod", "api-7d9f", env={"KUBECONFIG": badtok})
check("a wrong bearer token gets 401 -> unauthorized", rc == 1 and out["error"] == "unauthorized",
      out)
rc, out, err = netprobe("kube", "get-pod", "prod", "nope", env=KENV)
check("a missing pod is not_found with the API's message",
      rc == 1 and out["error"] == "not_found" and 'pods "nope" not found' in out["message"], out)
rc, out, err = netprobe("kube", "log", "prod", "api-7d9f", "app", "3", "0", env=KENV)
check("pod log with tailLines", rc == 0 and out["log"] == "app line 18\napp line 19\napp line 20\n",
      out)
rc, out, err = netprobe("kube", "log", "prod", "api-7d9f", "app", "0", "1", env=KENV)
check("previous container log", rc == 0 and "out of memory" in out["log"], out)
rc, out, err = netprobe("kube", "events", "prod", "api-7d9f", env=KENV)
check("events by fieldSelector involvedObject.name (namespaced)",
      rc == 0 and sorted(e["reason"] for e in out["items"]) == ["BackOff", "OOMKilling"], out)
rc, out, err = netprobe("kube", "list-pods", "prod", "app=calm-pod", env=KENV)
check("list pods by label selector",
      rc == 0 and [p["metadata"]["name"] for p in out["items"]] == ["calm-pod"], out)
rc, out, err = netprobe("kube", "argocd", "argocd", "cto-controller", env=KENV)
check("argocd application status from the cluster",
      rc == 0 and out["health"] == "Degraded" and out["sync"] == "OutOfSync", out)

# ---- CodeRuns: create, 409, 422, selectors ----
spec = {"agent": "rex", "failure_type": "rust_clippy", "repository": "5dlabs/cto",
        "branch": "feat/x", "head_sha": "0123456789abcdef", "workflow_run_id": 111,
        "task_id": "ci-111", "dedup_key": "5dlabs/cto#111#clippy", "prompt": "fix it"}
rc, out, err = netprobe("dispatch", "kubernetes", "-", "cto", "submit-ci", stdin=json.dumps(spec),
                        env=KENV)
check("dispatch kubernetes: created (201)", rc == 0 and out["outcome"] == "created", (out, err))
name = out.get("name") if isinstance(out, dict) else None
rc, out, err = netprobe("dispatch", "kubernetes", "-", "cto", "submit-ci", stdin=json.dumps(spec),
                        env=KENV)
check("dispatch kubernetes: the same dedup key again is 'existing' (409), same name",
      rc == 0 and out["outcome"] == "existing" and out["name"] == name, out)
stored = [c for c in ctl("GET", "/_stub/coderuns") if c["metadata"]["namespace"] == "cto"]
check("exactly one CodeRun stored for the dedup key", len(stored) == 1, stored)
cr = stored[0] if stored else {}
check("stored CodeRun has the contract labels",
      cr and cr["metadata"]["labels"].get("healer/workflow-run-id") == "111"
      and cr["metadata"]["labels"].get("healer/branch") == "feat-x"
      and cr["spec"]["env"].get("TARGET_BRANCH") == "feat/x", cr)

http("POST", f"{server}/_stub/config", {"rules": [
    {"method": "POST", "path": "/apis/agents.platform/v1/namespaces/cto/coderuns", "status": 503,
     "times": 1, "body": {"kind": "Status", "code": 503, "message": "etcd busy"}}]}, ctx=ctx)
spec2 = dict(spec, dedup_key="5dlabs/cto#222#clippy", workflow_run_id=222, task_id="ci-222")
rc, out, err = netprobe("dispatch", "kubernetes", "-", "cto", "submit-ci", stdin=json.dumps(spec2),
                        env=KENV)
posts = [r for r in ctl("GET", "/_stub/requests") if r["method"] == "POST"
         and r["path"].endswith("/coderuns")]
check("a named create is retried after a 503 and ends 'created' (idempotent by name)",
      rc == 0 and out["outcome"] == "created" and len(posts) >= 4, (out, len(posts)))
http("POST", f"{server}/_stub/config", {"rules": []}, ctx=ctx)

manifest = json.loads(json.dumps(cr))
for k in ("uid", "resourceVersion", "creationTimestamp", "generation"):
    manifest["metadata"].pop(k, None)
manifest["metadata"]["name"] = "raw-create-1"
manifest["metadata"]["labels"]["healer/branch"] = "feat/not valid!"
rc, out, err = netprobe("kube", "create-coderun", "cto", stdin=json.dumps(manifest), env=KENV)
check("an invalid label value is a 422 Invalid from the API",
      rc == 1 and out["error"] == "invalid" and "is invalid" in out["message"], out)
manifest["metadata"]["labels"]["healer/branch"] = "ok"
del manifest["spec"]["githubApp"]
rc, out, err = netprobe("kube", "create-coderun", "cto", stdin=json.dumps(manifest), env=KENV)
check("a missing required spec field (from the CRD) is a 422",
      rc == 1 and out["error"] == "invalid" and "spec.githubApp" in out["message"], out)
rc, out, err = netprobe("dispatch", "kubernetes", "-", "cto", "find-active",
                        "app.kubernetes.io/name=healer,healer/workflow-run-id=111", env=KENV)
check("find-active (kubernetes): the new CodeRun counts as active", rc == 0 and out == [name], out)
rc, out, err = netprobe("kube", "list-coderuns", "cto", "healer/workflow-run-id in (5, 6)",
                        env=KENV)
check("label selector 'in' filters on the server", rc == 0 and out["items"] == [], out)
patched = http("PATCH", f"{server}/apis/agents.platform/v1/namespaces/cto/coderuns/{name}/status",
               {"status": {"phase": "Succeeded", "pullRequestUrl": "https://github.com/pr/1"}},
               ctx=ctx, token=TOKEN)
rc, out, err = netprobe("kube", "get-coderun", "cto", name, env=KENV)
check("status subresource: a PATCH .../status is read back by get",
      rc == 0 and out["status"]["phase"] == "Succeeded"
      and out["status"]["pullRequestUrl"] == "https://github.com/pr/1", out)
rc, out, err = netprobe("dispatch", "kubernetes", "-", "cto", "find-active",
                        "healer/workflow-run-id=111", env=KENV)
check("find-active: a Succeeded CodeRun is no longer active", rc == 0 and out == [], out)

# ---- watch ----
def watch(args, actions, mode):
    http("POST", server + "/_stub/config", {"gone_mode": mode}, ctx=ctx)
    p = subprocess.Popen([NETPROBE, "kube", "watch", *args], stdout=subprocess.PIPE, text=True,
                         env=clean_env(KENV))
    t_end = time.monotonic() + 8
    time.sleep(0.6)  # the initial list and the watch start
    for a in actions:
        a()
        time.sleep(0.3)
    try:
        rest, _ = p.communicate(timeout=max(1, t_end - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        rest, _ = p.communicate()
    return [ln for ln in rest.splitlines() if ln]


def create(n, sel_label="w"):
    m = json.loads(json.dumps(manifest))
    m["spec"]["githubApp"] = "5DLabs-Rex"
    m["metadata"]["name"] = n
    m["metadata"]["labels"] = {"watch": sel_label}
    netprobe("kube", "create-coderun", "cto", stdin=json.dumps(m), env=KENV)


create("w-0")
lines = watch(["cto", "watch=w", "2500", "0"], [
    lambda: create("w-1"),
    lambda: ctl("POST", "/_stub/coderun-phase", {"namespace": "cto", "name": "w-1",
                                                 "phase": "Running"}),
    lambda: create("w-other", "x")], "http")
check("watch: list first (SYNC), then ADDED and MODIFIED for matching CodeRuns only",
      lines[0] == "SYNC w-0 -" and "ADDED w-1 -" in lines and "MODIFIED w-1 Running" in lines
      and not any("w-other" in ln for ln in lines) and lines[-1].startswith("END "), lines)

for mode in ("http", "event"):
    lines = watch(["cto", "watch=w", "3000", "0"], [
        lambda: ctl("POST", "/_stub/compact", {}),
        lambda: create(f"w-after-{mode}")], mode)
    syncs = [ln for ln in lines if ln.startswith("SYNC w-1")]
    check(f"watch: 410 Gone ({mode}) after compaction -> relist and re-watch",
          len(syncs) == 2 and f"ADDED w-after-{mode} -" in lines, lines)
reqs = ctl("GET", "/_stub/requests")
check("watch requests carry watch=1 and a resourceVersion",
      any(r["query"].get("watch") == "1" and r["query"].get("resourceVersion") for r in reqs))

# ---- fetch-logs ----
out_dir = os.path.join(TMP, "logs")
rc, out, err = healer("fetch-logs", "--pod-name", "api-7d9f", "--namespace", "prod",
                      "--output-dir", out_dir, env=KENV)
files = sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []
check("fetch-logs: exit 0 and all four files for a restarted pod",
      rc == 0 and files == ["api-7d9f-current.log", "api-7d9f-describe.txt",
                            "api-7d9f-events.yaml", "api-7d9f-previous.log"], (rc, files, err))


def read(n):
    try:
        return open(os.path.join(out_dir, n)).read()
    except OSError:
        return ""


cur = read("api-7d9f-current.log")
check("current.log has every container under its header",
      "==> container init-db <==\nmigrated\n" in cur and "==> container app <==\napp line 1\n" in cur
      and "==> container sidecar <==\nenvoy ok\n" in cur, cur)
prev = read("api-7d9f-previous.log")
check("previous.log holds only the restarted container",
      "==> container app <==" in prev and "out of memory" in prev and "sidecar" not in prev, prev)
ev = read("api-7d9f-events.yaml")
check("events.yaml is YAML of this pod's events only",
      ev.startswith("---") or ev.startswith("apiVersion") or "items:" in ev)
check("events.yaml content", "reason: BackOff" in ev and "OOMKilling" in ev and "Pulled" not in ev
      and "kind: List" in ev and "other ns" not in ev, ev)
desc = read("api-7d9f-describe.txt")
check("describe.txt reports node, phase, states, OOMKilled exit code, restarts, limits, events",
      "Name:             api-7d9f" in desc and "Node:             node-1/10.0.0.5" in desc
      and "CrashLoopBackOff" in desc and "OOMKilled" in desc and "Exit Code:    137" in desc
      and "Restart Count:  3" in desc and "memory:  128Mi" in desc and "BackOff" in desc
      and "Controlled By:    ReplicaSet/api-7d9f-rs" in desc, desc)

rc, out, err = healer("fetch-logs", "--pod-name", "calm-pod", "--namespace", "prod",
                      "--output-dir", out_dir, "--tail", "1", env=KENV)
check("fetch-logs: a pod without restarts gets no previous.log",
      rc == 0 and not os.path.exists(os.path.join(out_dir, "calm-pod-previous.log"))
      and os.path.exists(os.path.join(out_dir, "calm-pod-current.log")), (rc, err))
check("fetch-logs: --tail 1 keeps one line",
      read("calm-pod-current.log") == "==> container web <==\nGET / 200\n",
      read("calm-pod-current.log"))
reqs = ctl("GET", "/_stub/requests")
check("fetch-logs talks to the API with the bearer token and tailLines",
      any(r["path"].endswith("/calm-pod/log") and r["query"].get("tailLines") == "1"
          and r["headers"].get("authorization") == f"Bearer {TOKEN}" for r in reqs))

gone_dir = os.path.join(TMP, "gone")
rc, out, err = healer("fetch-logs", "--pod-name", "gone-pod", "--namespace", "prod",
                      "--output-dir", gone_dir, env=KENV)
check("fetch-logs: a deleted pod still gets its (empty) events, exit 0, and says what is missing",
      rc == 0 and sorted(os.listdir(gone_dir)) == ["gone-pod-events.yaml"]
      and 'pods "gone-pod" not found' in err, (rc, os.listdir(gone_dir), err))

s = socket.socket()
s.bind(("127.0.0.1", 0))
dead = s.getsockname()[1]
s.close()
down = write_kubeconfig(os.path.join(TMP, "kc-down"), f"https://127.0.0.1:{dead}", ca["ca"],
                        token=TOKEN)
down_dir = os.path.join(TMP, "down")
rc, out, err = healer("fetch-logs", "--pod-name", "api-7d9f", "--namespace", "prod",
                      "--output-dir", down_dir, env={"KUBECONFIG": down})
check("fetch-logs: API down -> exit 1, says why, writes nothing",
      rc == 1 and "healer: error:" in err and "could not get" in err
      and os.listdir(down_dir) == [], (rc, err))
rc, out, err = healer("fetch-logs", "--pod-name", "x", "--namespace", "prod", env=KENV)
check("fetch-logs: a missing --output-dir is a usage error (exit 2)",
      rc == 2 and "--output-dir" in err, err)

# ---- spawn-remediation ----
issue = os.path.join(TMP, "A7-api-7d9f.md")
with open(issue, "w") as f:
    f.write("# Pod Failure: api-7d9f\n\n## Summary\nOOM\n")
SENV = dict(KENV, HEALER_DISPATCH="kubernetes", HEALER_NAMESPACE="cto",
            HEALER_DATA_DIR=os.path.join(TMP, "var"))


def heal_runs():
    return [c for c in ctl("GET", "/_stub/coderuns")
            if c["metadata"].get("labels", {}).get("remediation") == "true"]


rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "42", "--issue-file",
                      issue, "--target-pod", "api-7d9f", env=SENV)
runs = heal_runs()
check("spawn-remediation: created", rc == 0 and len(runs) == 1, (rc, out, err))
r = runs[0] if runs else {"metadata": {"labels": {}}, "spec": {"env": {}}}
lab, env = r["metadata"]["labels"], r["spec"]["env"]
check("spawn-remediation: labels alert-type, task-id, target-pod, remediation, heal type",
      lab.get("alert-type") == "a7" and lab.get("task-id") == "42"
      and lab.get("target-pod") == "api-7d9f" and lab.get("remediation") == "true"
      and lab.get("agents.platform/type") == "heal-remediation", lab)
check("spawn-remediation: env HEAL_PROMPT_FILE, ALERT_TYPE, TASK_ID, REMEDIATION_MODE",
      env.get("HEAL_PROMPT_FILE") == issue and env.get("ALERT_TYPE") == "a7"
      and env.get("TASK_ID") == "42" and env.get("REMEDIATION_MODE") == "true", env)
check("spawn-remediation: heal-workspace markers (service heal + annotation) and the prompt",
      r["spec"].get("service") == "heal"
      and r["metadata"].get("annotations", {}).get("healer/workspace-pvc") == "heal-workspace"
      and r["spec"].get("promptModification", "").startswith("# Pod Failure: api-7d9f"), r)
check("spawn-remediation: generateName gave a server-assigned name",
      r["metadata"].get("name", "").startswith("healer-remediation-a7-")
      and r["metadata"]["name"] in out, (r["metadata"], out))

rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "43", "--issue-file",
                      issue, "--target-pod", "api-7d9f", env=SENV)
check("spawn-remediation: refused while the first is Pending (empty phase)",
      rc == 1 and "still" in err and len(heal_runs()) == 1, (rc, err))
ctl("POST", "/_stub/coderun-phase", {"namespace": "cto", "name": r["metadata"]["name"],
                                     "phase": "Running"})
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "43", "--issue-file",
                      issue, "--target-pod", "api-7d9f", env=SENV)
check("spawn-remediation: refused while Running", rc == 1 and "Running" in err, err)
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "44", "--issue-file",
                      issue, "--target-pod", "other-pod", env=SENV)
check("spawn-remediation: another target pod is not blocked", rc == 0 and len(heal_runs()) == 2,
      (rc, err))
ctl("POST", "/_stub/coderun-phase", {"namespace": "cto", "name": r["metadata"]["name"],
                                     "phase": "Succeeded"})
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "45", "--issue-file",
                      issue, "--target-pod", "api-7d9f", env=SENV)
check("spawn-remediation: allowed again once the first Succeeded",
      rc == 0 and len(heal_runs()) == 3, (rc, err))
weird = "API_pod/with:weird..chars__and-a-very-long-name-that-goes-past-sixty-three-characters-"
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "46", "--issue-file",
                      issue, "--target-pod", weird, env=SENV)
w = [c for c in heal_runs() if c["spec"]["env"].get("TASK_ID") == "46"]
check("spawn-remediation: a weird pod name is sanitised into a valid label (no 422)",
      rc == 0 and w and len(w[0]["metadata"]["labels"]["target-pod"]) <= 63
      and w[0]["metadata"]["labels"]["target-pod"].startswith("API_pod-with-weird"), (rc, err, w))
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "47", "--issue-file",
                      os.path.join(TMP, "missing.md"), env=SENV)
check("spawn-remediation: a missing issue file -> exit 1 naming it",
      rc == 1 and "missing.md" in err, err)

# directory and none modes
DENV = {"HEALER_DISPATCH": "directory", "HEALER_DATA_DIR": os.path.join(TMP, "var"),
        "HEALER_NAMESPACE": "cto"}
rc, out, err = healer("spawn-remediation", "--alert", "a9", "--task-id", "7", "--issue-file",
                      issue, "--target-pod", "p1", env=DENV)
cdir = os.path.join(TMP, "var", "coderuns")
files = os.listdir(cdir) if os.path.isdir(cdir) else []
ok = rc == 0 and len(files) == 1
m = json.load(open(os.path.join(cdir, files[0]))) if ok else {}
check("directory mode: one readable manifest file named after the CodeRun",
      ok and m["metadata"]["name"] + ".json" == files[0]
      and m["metadata"]["labels"]["alert-type"] == "a9" and m["kind"] == "CodeRun", (rc, err, files))
rc, out, err = healer("spawn-remediation", "--alert", "a9", "--task-id", "8", "--issue-file",
                      issue, "--target-pod", "p1", env=DENV)
check("directory mode: a second one for the same alert and pod is refused",
      rc == 1 and len(os.listdir(cdir)) == 1, err)
rc, out, err = healer("spawn-remediation", "--alert", "a9", "--task-id", "9", "--issue-file",
                      issue, env=dict(DENV, HEALER_DISPATCH="none"))
check("none mode: prints the manifest, writes nothing",
      rc == 0 and json.loads(out)["spec"]["service"] == "heal" and len(os.listdir(cdir)) == 1,
      (rc, out, err))

finish()
