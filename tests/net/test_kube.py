#!/usr/bin/env python3
"""test_kube.py - the Kubernetes client (src/net/kubeconfig.c, kube.c,
kube_watch.c) against the Kubernetes stub (TLS with a throw-away CA carried
in the kubeconfig, bearer token): configuration and TLS, pods, logs,
events, ArgoCD applications, CodeRun create/list/get and the status
subresource, and the list+watch loop."""
import json
import os
import ssl
import subprocess
import time

from dtest import (CRD, NETPROBE, TMP, check, clean_env, finish, http, make_ca, netprobe,
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


# ---- path safety: names stay one segment, or are refused before any request ----
ctl("POST", "/_stub/reset", {})
bad = [("prod", ".."), ("prod", "."), ("prod", "a/b"), ("prod", "a%2Fb"), ("..", "api-7d9f"),
       ("kube-system/pods", "x")]
res = [netprobe("kube", "get-pod", ns, n, env=KENV) for ns, n in bad]
check("path safety: '.', '..', '/' or '%' in a namespace or name -> invalid, no request",
      all(rc == 1 and out["error"] == "invalid" for rc, out, _ in res)
      and ctl("GET", "/_stub/requests") == [], [o for _, o, _ in res])
rc, out, err = netprobe("kube", "events", "prod", "../x", env=KENV)
check("path safety: an event selector for a name the API would refuse -> invalid",
      rc == 1 and out["error"] == "invalid", out)
rc, out, err = netprobe("kube", "log", "prod", "api-7d9f", "app&previous=true", "0", "0",
                        env=KENV)
reqs = ctl("GET", "/_stub/requests")
check("path safety: a container name is one query value ('&' encoded)",
      rc == 1 and reqs and reqs[-1]["query"].get("container") == "app&previous=true"
      and "previous" not in reqs[-1]["query"], (out, reqs[-1:] if reqs else reqs))

# ---- CodeRuns: create, 422, selectors, status subresource ----
def coderun(name, labels=None):
    """A CodeRun manifest with the CRD's required spec fields."""
    return {"apiVersion": "agents.platform/v1", "kind": "CodeRun",
            "metadata": {"name": name, "labels": labels or {"app.kubernetes.io/name": "healer"}},
            "spec": {"service": "cto", "repositoryUrl": "https://github.com/5dlabs/cto",
                     "docsRepositoryUrl": "https://github.com/5dlabs/cto",
                     "workingDirectory": ".", "model": "claude-opus-4-5-20250929",
                     "githubApp": "5DLabs-Rex",
                     "cliConfig": {"cliType": "Factory", "model": "claude-opus-4-5-20250929"}}}


rc, out, err = netprobe("kube", "create-coderun", "cto", stdin=json.dumps(coderun("cr-1")),
                        env=KENV)
check("create CodeRun: 201 gives the created object's name",
      rc == 0 and out == {"result": "created", "name": "cr-1"}, (out, err))
rc, out, err = netprobe("kube", "create-coderun", "cto", stdin=json.dumps(coderun("cr-1")),
                       env=KENV)
check("create CodeRun again: 409 AlreadyExists reads as 'exists'",
      rc == 0 and out["result"] == "exists" and "already exists" in out["message"], out)
manifest = coderun("raw-create-1", {"healer/branch": "feat/not valid!"})
rc, out, err = netprobe("kube", "create-coderun", "cto", stdin=json.dumps(manifest), env=KENV)
check("an invalid label value is a 422 Invalid from the API",
      rc == 1 and out["error"] == "invalid" and "is invalid" in out["message"], out)
manifest["metadata"]["labels"]["healer/branch"] = "ok"
del manifest["spec"]["githubApp"]
rc, out, err = netprobe("kube", "create-coderun", "cto", stdin=json.dumps(manifest), env=KENV)
check("a missing required spec field (from the CRD) is a 422",
      rc == 1 and out["error"] == "invalid" and "spec.githubApp" in out["message"], out)
manifest["spec"]["githubApp"] = "5DLabs-Rex"
rc, out, err = netprobe("kube", "list-coderuns", "cto", "healer/workflow-run-id in (5, 6)",
                        env=KENV)
check("label selector 'in' filters on the server", rc == 0 and out["items"] == [], out)
name = "cr-1"
patched = http("PATCH", f"{server}/apis/agents.platform/v1/namespaces/cto/coderuns/{name}/status",
               {"status": {"phase": "Succeeded", "pullRequestUrl": "https://github.com/pr/1"}},
               ctx=ctx, token=TOKEN)
rc, out, err = netprobe("kube", "get-coderun", "cto", name, env=KENV)
check("status subresource: a PATCH .../status is read back by get",
      rc == 0 and out["status"]["phase"] == "Succeeded"
      and out["status"]["pullRequestUrl"] == "https://github.com/pr/1", out)
rc, out, err = netprobe("kube", "get-coderun", "cto", "no-such-run", env=KENV)
check("get of a missing CodeRun is not_found", rc == 1 and out["error"] == "not_found", out)

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
    m = coderun(n, {"watch": sel_label})
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


finish()
