#!/usr/bin/env python3
"""test_kube.py - the Kubernetes client (src/net/kubeconfig.c, kube.c,
kube_coderun.c, kube_watch.c) against the Kubernetes stub (TLS with a
throw-away CA carried in the kubeconfig, bearer token): configuration and
TLS (tls-server-name against a certificate valid only for that name,
proxy-url through the proxy stand-in: HTTP CONNECT and SOCKS5), pods,
logs, events, ArgoCD applications, path safety, CodeRun
create/list/get/delete, their typed status and their Job's output, and the
list+watch loop the remediation loop rests on: bookmarks and resuming, 410
Gone both ways, cut connections, 5xx/429 with Retry-After, ERROR events,
paged lists, the stop flag and the restart counters."""
import json
import os
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

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
# the sanitizer builds run several times slower (make test sets 3 for them)
TIME_SCALE = max(1.0, float(os.environ.get("HEALER_TEST_TIME_SCALE") or 1))


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
# tls-server-name: the server is addressed by IP (a tunnel, a load balancer)
# and its certificate names only the tls-server-name; kubectl sends that
# name as the SNI and checks the certificate against it
named = make_ca("named", san="DNS:kube.internal.test")
_, nport = start_stub("kube_stub.py", "--cert", named["cert"], "--key", named["key"], "--token",
                      TOKEN, "--crd", CRD)
nserver = f"https://127.0.0.1:{nport}"
ctl_named = lambda m, p, b=None: http(m, nserver + p, b, ctx=ssl._create_unverified_context())
ctl_named("POST", "/_stub/seed", {"pods": [pod("named-pod", [{"name": "web", "image": "nginx"}],
                                              [{"name": "web", "ready": True, "restartCount": 0,
                                                "state": {"running": {}}}])]})
plain = write_kubeconfig(os.path.join(TMP, "kc-named-plain"), nserver, named["ca"], token=TOKEN)
rc, out, err = netprobe("kube", "get-pod", "prod", "named-pod", env={"KUBECONFIG": plain})
check("a certificate valid only for another name is refused without tls-server-name",
      rc == 1 and out["error"] == "io_error", out)
sni = write_kubeconfig(os.path.join(TMP, "kc-named"), nserver, named["ca"], token=TOKEN,
                       cluster_extra=["tls-server-name: kube.internal.test"])
ctl_named("POST", "/_stub/reset")
rc, out, err = netprobe("kube", "get-pod", "prod", "named-pod", env={"KUBECONFIG": sni})
seen = [r for r in ctl_named("GET", "/_stub/requests") if r["path"].endswith("/named-pod")]
check("kubeconfig tls-server-name: the certificate is checked against it (SNI), the "
      "connection goes to the server's address, its Host header stays the server's",
      rc == 0 and out["metadata"]["name"] == "named-pod" and len(seen) == 1
      and seen[0]["headers"].get("host") == f"127.0.0.1:{nport}", (out, err, seen))
rc, out, err = netprobe("kube", "config", env={"KUBECONFIG": sni})
check("... the server stays as configured, the URLs carry the name",
      rc == 0 and out["server"] == nserver and out.get("tls_server_name") == "kube.internal.test"
      and out.get("url_base") == f"https://kube.internal.test:{nport}"
      and out.get("connect_to") == f"kube.internal.test:{nport}:127.0.0.1:{nport}", out)
wrongname = write_kubeconfig(os.path.join(TMP, "kc-named-wrong"), nserver, named["ca"],
                             token=TOKEN, cluster_extra=["tls-server-name: other.internal.test"])
rc, out, err = netprobe("kube", "get-pod", "prod", "named-pod", env={"KUBECONFIG": wrongname})
check("... and a tls-server-name the certificate does not name is refused",
      rc == 1 and out["error"] == "io_error", out)
badname = write_kubeconfig(os.path.join(TMP, "kc-named-bad"), nserver, named["ca"], token=TOKEN,
                           cluster_extra=["tls-server-name: 'evil/x@y'"])
rc, out, err = netprobe("kube", "config", env={"KUBECONFIG": badname})
check("a tls-server-name that is not a host name is refused at load",
      rc == 1 and out["error"] == "invalid" and "tls-server-name" in out["message"], out)

# proxy-url: http (CONNECT), https is the same CONNECT over TLS, socks5; the
# proxy's credentials never reach a message or the log
PROXY_PASS = "pr0xy-s3cret-7c1"
_, pport = start_stub("proxy_stub.py", "--user", f"kubeuser:{PROXY_PASS}")
purl = f"http://127.0.0.1:{pport}"


def proxy_used():
    return http("GET", purl + "/_stub/used") or []


via_http = write_kubeconfig(os.path.join(TMP, "kc-proxy-http"), server, ca["ca"], token=TOKEN,
                            cluster_extra=[f"proxy-url: http://kubeuser:{PROXY_PASS}"
                                           f"@127.0.0.1:{pport}"])
rc, out, err = netprobe("kube", "get-pod", "prod", "calm-pod", env={"KUBECONFIG": via_http})
used = proxy_used()
check("kubeconfig proxy-url (http): the API is reached through the proxy (CONNECT to the "
      "server, with the proxy's credentials)",
      rc == 0 and out["metadata"]["name"] == "calm-pod"
      and [u["kind"] for u in used] == ["connect"] and used[0]["target"] == f"127.0.0.1:{port}"
      and used[0]["user"] == "kubeuser" and used[0]["auth_ok"], (out, err, used))
rc, out, err = netprobe("kube", "config", env={"KUBECONFIG": via_http})
check("... the proxy shown in messages has no credentials",
      rc == 0 and out.get("proxy_shown") == f"http://127.0.0.1:{pport}/"
      and PROXY_PASS not in str(out.get("proxy_shown")), out)
rc, out, err = netprobe("kube", "redact", f"proxy said kubeuser:{PROXY_PASS} twice",
                        env={"KUBECONFIG": via_http})
check("... and its password is redacted from the log",
      rc == 0 and PROXY_PASS not in out.get("redacted", "")
      and "[REDACTED]" in out.get("redacted", ""), out)
http("POST", purl + "/_stub/reset")
wrongpass = write_kubeconfig(os.path.join(TMP, "kc-proxy-wrong"), server, ca["ca"], token=TOKEN,
                             cluster_extra=[f"proxy-url: http://kubeuser:x{PROXY_PASS}"
                                            f"@127.0.0.1:{pport}"])
rc, out, err = netprobe("kube", "get-pod", "prod", "calm-pod", env={"KUBECONFIG": wrongpass})
check("a proxy refusing the credentials (407) is unauthorized, not asked again; the password "
      "is in no message",
      rc == 1 and out["error"] == "unauthorized" and [u["status"] for u in proxy_used()] == [407]
      and PROXY_PASS not in json.dumps(out) + err, (out, err, proxy_used()))
http("POST", purl + "/_stub/reset")
wrongsocks = write_kubeconfig(os.path.join(TMP, "kc-proxy-wrong-socks"), server, ca["ca"],
                              token=TOKEN, cluster_extra=[f"proxy-url: socks5://kubeuser:x"
                                                          f"{PROXY_PASS}@127.0.0.1:{pport}"])
rc, out, err = netprobe("kube", "get-pod", "prod", "calm-pod", env={"KUBECONFIG": wrongsocks})
check("... so is a SOCKS5 proxy refusing them",
      rc == 1 and out["error"] == "unauthorized"
      and [u["status"] for u in proxy_used()] == ["bad credentials"]
      and PROXY_PASS not in json.dumps(out) + err, (out, err, proxy_used()))
# an https proxy is checked with the cluster's CA, as kubectl (Go's
# transport) checks it: this one's certificate comes from the same CA
_, tport = start_stub("proxy_stub.py", "--user", f"kubeuser:{PROXY_PASS}", "--cert", ca["cert"],
                      "--key", ca["key"])
via_https = write_kubeconfig(os.path.join(TMP, "kc-proxy-https"), server, ca["ca"], token=TOKEN,
                             cluster_extra=[f"proxy-url: https://kubeuser:{PROXY_PASS}"
                                            f"@127.0.0.1:{tport}"])
rc, out, err = netprobe("kube", "get-pod", "prod", "calm-pod", env={"KUBECONFIG": via_https})
tused = http("GET", f"http://127.0.0.1:{tport}/_stub/used") or []
check("kubeconfig proxy-url (https): TLS to the proxy, checked with the cluster's CA, then "
      "CONNECT", rc == 0 and out.get("metadata", {}).get("name") == "calm-pod"
      and [(u["kind"], u["tls"], u["status"]) for u in tused] == [("connect", True, 200)],
      (out, err, tused))
http("POST", purl + "/_stub/reset")
via_socks = write_kubeconfig(os.path.join(TMP, "kc-proxy-socks"), nserver, named["ca"],
                             token=TOKEN,
                             cluster_extra=["tls-server-name: kube.internal.test",
                                            f"proxy-url: socks5://kubeuser:{PROXY_PASS}"
                                            f"@localhost:{pport}"])
rc, out, err = netprobe("kube", "get-pod", "prod", "named-pod", env={"KUBECONFIG": via_socks})
used = proxy_used()
check("kubeconfig proxy-url (socks5) with a tls-server-name: the proxy is asked for the "
      "server's own address, the certificate checked against the name",
      rc == 0 and out["metadata"]["name"] == "named-pod"
      and [u["kind"] for u in used] == ["socks5"] and used[0]["target"] == f"127.0.0.1:{nport}"
      and used[0]["auth_ok"], (out, err, used))
http("POST", purl + "/_stub/reset")
via_connect_name = write_kubeconfig(
    os.path.join(TMP, "kc-proxy-name"), f"https://localhost:{port}", ca["ca"], token=TOKEN,
    cluster_extra=[f"proxy-url: socks5://kubeuser:{PROXY_PASS}@127.0.0.1:{pport}"])
rc, out, err = netprobe("kube", "get-pod", "prod", "calm-pod",
                        env={"KUBECONFIG": via_connect_name})
used = proxy_used()
check("... a socks5 proxy resolves the server's name itself, as kubectl's dialer asks it to",
      rc == 0 and used and used[0]["atyp"] == "domain"
      and used[0]["target"] == f"localhost:{port}", (out, err, used))
http("POST", purl + "/_stub/reset")
rc, out, err = netprobe("kube", "get-pod", "prod", "calm-pod",
                        env={"KUBECONFIG": via_http, "no_proxy": "127.0.0.1,localhost",
                             "NO_PROXY": "127.0.0.1,localhost"})
check("a kubeconfig's proxy-url is used whatever NO_PROXY says (as kubectl)",
      rc == 0 and len(proxy_used()) == 1, (out, err, proxy_used()))
ftp = write_kubeconfig(os.path.join(TMP, "kc-proxy-ftp"), server, ca["ca"], token=TOKEN,
                       cluster_extra=[f"proxy-url: ftp://kubeuser:{PROXY_PASS}@127.0.0.1:21"])
rc, out, err = netprobe("kube", "config", env={"KUBECONFIG": ftp})
check("a proxy-url scheme kubectl refuses is refused at load, without the URL in the message",
      rc == 1 and out["error"] == "invalid" and "must be http, https, or socks5" in out["message"]
      and PROXY_PASS not in out["message"], out)
with open(os.path.join(TMP, "tok"), "w") as f:
    f.write("wrong-token\n")
badtok = write_kubeconfig(os.path.join(TMP, "kc-bad-token"), server, ca["ca"],
                          token_file=os.path.join(TMP, "tok"))
rc, out, err = netprobe("kube", "get-pod", "prod", "api-7d9f", env={"KUBECONFIG": badtok})
check("a wrong bearer token gets 401 -> unauthorized", rc == 1 and out["error"] == "unauthorized",
      out)
# the tokens healer holds are redacted from its logs: a static one, and each
# token the token file rotates to (the last of 80, past the table's 64)
rc, out, err = netprobe("kube", "redact", f"static {TOKEN} seen", env=KENV)
check("a kubeconfig's static token is redacted from the log",
      rc == 0 and out.get("redacted") == "static [REDACTED] seen", out)
rc, out, err = netprobe("kube", "rotate-redact", "prod", "api-7d9f", "80",
                        os.path.join(TMP, "tok"), "token kube-rot-000080 seen",
                        env={"KUBECONFIG": badtok})
check("the 80th token a token file rotated to is redacted from the log",
      rc == 0 and out.get("redacted") == "token [REDACTED] seen", out)
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
def wait_for(pred, timeout=8.0):
    """Polls pred until it returns a true value or the deadline passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return None


def watchers():
    return ctl("GET", "/_stub/watchers")


def watch(args, actions, mode):
    http("POST", server + "/_stub/config", {"gone_mode": mode}, ctx=ctx)
    started = watchers()["started"]
    p = subprocess.Popen([NETPROBE, "kube", "watch", *args], stdout=subprocess.PIPE, text=True,
                         env=clean_env(KENV))
    t_end = time.monotonic() + 8
    wait_for(lambda: watchers()["started"] > started, 5)  # the initial list and the watch start
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

def compact_and_wait_rewatch():
    """Compacts, then waits for the 410 answer and the watch that follows it."""
    started = watchers()["started"]
    ctl("POST", "/_stub/compact", {})
    wait_for(lambda: watchers()["started"] >= started + 2, 5)


for mode in ("http", "event"):
    lines = watch(["cto", "watch=w", "4000", "0"], [
        compact_and_wait_rewatch,
        lambda: create(f"w-after-{mode}")], mode)
    syncs = [ln for ln in lines if ln.startswith("SYNC w-1")]
    check(f"watch: 410 Gone ({mode}) after compaction -> relist and re-watch",
          len(syncs) == 2 and f"ADDED w-after-{mode} -" in lines, lines)
reqs = ctl("GET", "/_stub/requests")
check("watch requests carry watch=1 and a resourceVersion",
      any(r["query"].get("watch") == "1" and r["query"].get("resourceVersion") for r in reqs))



# ---- the watch for the remediation loop ----
def raw(method, path, body=None, ctype="application/json"):
    """A call to the stub's API with the token; returns (status, parsed body)."""
    req = urllib.request.Request(server + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if body is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class Watch:
    """netprobe kube watch in the background; lines are collected as they come."""

    def __init__(self, *args):
        self.p = subprocess.Popen([NETPROBE, "kube", "watch", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=clean_env(KENV))
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for ln in self.p.stdout:
            self.lines.append(ln.rstrip("\n"))

    def wait(self, pred, timeout=8.0):
        return wait_for(lambda: next((ln for ln in list(self.lines) if pred(ln)), None),
                        timeout)

    def stop(self):
        t0 = time.monotonic()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        return self.finish(), (time.monotonic() - t0) * 1000

    def finish(self, timeout=10):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.t.join(timeout=5)
        return self.p.returncode

    def end(self):
        """(resume resourceVersion, stats) from the END line."""
        ln = next((ln for ln in self.lines if ln.startswith("END ")), None)
        if not ln:
            return None, {}
        _, rv, stats = ln.split(" ", 2)
        return rv, json.loads(stats)


def run_watch(*args, timeout=10):
    w = Watch(*args)
    w.finish(timeout)
    return w


def watch_requests():
    return [r for r in ctl("GET", "/_stub/requests") if r["path"].endswith("/coderuns")
            and r["method"] == "GET" and r["query"].get("watch") == "1"]


def list_requests():
    return [r for r in ctl("GET", "/_stub/requests") if r["path"].endswith("/coderuns")
            and r["method"] == "GET" and "watch" not in r["query"]]


http("POST", server + "/_stub/config", {"gone_mode": "http"}, ctx=ctx)

# bookmarks, the stop flag, resuming
create("bm-0", "bm")
ctl("POST", "/_stub/reset", {})
started = watchers()["started"]
wt = Watch("cto", "watch=bm", "0", "0", "sigterm=1")
synced = wt.wait(lambda ln: ln == "SYNCED")
wait_for(lambda: watchers()["started"] > started)
ctl("POST", "/_stub/bookmark", {})
bm = wt.wait(lambda ln: ln.startswith("BOOKMARK "))
rc, stop_wall_ms = wt.stop()
end_rv, stats = wt.end()
bm_rv, buf_rv = (bm.split()[1], bm.split()[2]) if bm else (None, None)
check("watch: SYNC for each object, then SYNCED once the list is complete",
      wt.lines[:2] == ["SYNC bm-0 -", "SYNCED"], wt.lines)
check("watch: a BOOKMARK is delivered with its resourceVersion, already in the resume buffer",
      bm and bm_rv == buf_rv and int(bm_rv) > 0, wt.lines)
wr = watch_requests()
check("watch: asks allowWatchBookmarks=true, from the list's resourceVersion",
      wr and wr[0]["query"].get("allowWatchBookmarks") == "true"
      and wr[0]["query"].get("resourceVersion") and wr[0]["query"].get("timeoutSeconds"), wr[:1])
# 500 ms (x TIME_SCALE under the sanitizers); a stop the silent stream
# ignores ends no END line before the kill (stop_ms -1)
check("watch: the stop flag ends a silent watch within 500 ms (SIGTERM sets it)",
      rc == 0 and 0 <= stats.get("stop_ms", -1) <= 500 * TIME_SCALE
      and stop_wall_ms < 1500 * TIME_SCALE,
      (rc, stats, stop_wall_ms))
check("watch: the resume point after a bookmark is the bookmark's resourceVersion",
      end_rv == bm_rv, (end_rv, bm_rv))
create("bm-1", "bm")
ctl("POST", "/_stub/reset", {})
w2 = run_watch("cto", "watch=bm", "3000", "1", f"rv={end_rv}")
wr = watch_requests()
check("watch: resumed from that resourceVersion: no list, only the change made after it",
      w2.lines[0] == "ADDED bm-1 -" and not any(ln.startswith("SYNC") for ln in w2.lines)
      and list_requests() == [] and wr and wr[0]["query"].get("resourceVersion") == end_rv,
      (w2.lines, wr[:1]))
http("POST", server + "/_stub/config", {"bookmark_ms": 150}, ctx=ctx)
w3 = run_watch("cto", "watch=bm", "1200", "0")
_, st3 = w3.end()
check("watch: periodic bookmarks are counted and the last one is the resume point",
      st3.get("bookmarks", 0) >= 3 and w3.end()[0] == [ln for ln in w3.lines
                                                         if ln.startswith("BOOKMARK")][-1].split()[1],
      (w3.lines[-3:], st3))
# a server that sends a bookmark and ends every stream at once is not asked
# again and again without a pause (before: a stream that delivered anything
# reset the backoff, so the watch reconnected in a tight loop)
http("POST", server + "/_stub/config", {"bookmark_ms": 20, "watch_close_after": 1}, ctx=ctx)
w4 = run_watch("cto", "watch=bm", "2500", "0", "rv=1", "backoff=200", "backoff_max=1000")
_, st4 = w4.end()
check("watch: streams that keep ending at once after a bookmark -> backoff, not a tight loop",
      2 <= st4.get("bookmarks", 0) <= 12 and "ending at once" in st4.get("last_error", ""),
      (st4, w4.lines[-3:]))
http("POST", server + "/_stub/config", {"bookmark_ms": 0, "watch_close_after": 0}, ctx=ctx)

# a connection cut mid-stream resumes from the last resourceVersion
http("POST", server + "/_stub/config", {"watch_cut_after": 1}, ctx=ctx)
started = watchers()["started"]
wt = Watch("cto", "watch=cut", "0", "0", "sigterm=1", "backoff=50", "backoff_max=200")
wt.wait(lambda ln: ln == "SYNCED")
wait_for(lambda: watchers()["started"] > started)
for n in ("cut-1", "cut-2", "cut-3"):
    create(n, "cut")
wt.wait(lambda ln: ln == "ADDED cut-3 -")
wt.stop()
_, stats = wt.end()
added = [ln for ln in wt.lines if ln.startswith("ADDED")]
check("watch: cut mid-stream -> reconnect from the last resourceVersion, every change once",
      added == ["ADDED cut-1 -", "ADDED cut-2 -", "ADDED cut-3 -"] and stats["reconnects"] >= 2
      and stats["relists"] == 0 and stats["restarts"] == stats["reconnects"] + stats["relists"],
      (wt.lines, stats))
check("watch: the reason of the last restart is kept", "kubernetes" in stats.get("last_error", "")
      or "'" in stats.get("last_error", ""), stats)
http("POST", server + "/_stub/config", {"watch_cut_after": 0}, ctx=ctx)

# 5xx, then 429 with Retry-After: backoff between attempts, at least Retry-After
WATCH_PATH = "/apis/agents.platform/v1/namespaces/cto/coderuns"
ctl("POST", "/_stub/reset", {})
http("POST", server + "/_stub/config", {"rules": [
    {"method": "GET", "path": WATCH_PATH, "query": {"watch": "1"}, "status": 503, "times": 2}]},
    ctx=ctx)
w = run_watch("cto", "watch=cut", "2500", "0", "backoff=100", "backoff_max=1000")
_, stats = w.end()
wr = watch_requests()
gaps = [b["time"] - a["time"] for a, b in zip(wr, wr[1:])]
check("watch: 503 twice -> two reconnects after backoffs of at least 100 and 200 ms",
      len(wr) >= 3 and gaps[0] >= 0.1 and gaps[1] >= 0.2 and stats["reconnects"] >= 2
      and stats["relists"] == 0, (gaps, stats))
check("watch: the 503's Status message is the last error",
      "503" in stats.get("last_error", "") or "injected" in stats.get("last_error", ""), stats)
ctl("POST", "/_stub/reset", {})
http("POST", server + "/_stub/config", {"rules": [
    {"method": "GET", "path": WATCH_PATH, "query": {"watch": "1"}, "status": 429, "times": 1,
     "headers": {"Retry-After": "1"}}]}, ctx=ctx)
w = run_watch("cto", "watch=cut", "2500", "0", "backoff=50", "backoff_max=100")
wr = watch_requests()
check("watch: 429 with Retry-After: 1 -> the next watch waits at least 1 s (backoff 50 ms)",
      len(wr) >= 2 and wr[1]["time"] - wr[0]["time"] >= 0.95,
      [r["time"] - wr[0]["time"] for r in wr])
http("POST", server + "/_stub/config", {"rules": [
    {"method": "GET", "path": WATCH_PATH, "query": {"watch": "1"}, "status": 403}]}, ctx=ctx)
t0 = time.monotonic()
# a deadline of 8 s: a 403 retried runs into it, while "at once" (starting the
# probe included) is under 2 + 1.5 x TIME_SCALE s (3.5 s, 6.5 s sanitized)
w = run_watch("cto", "watch=cut", "8000", "0", "backoff=50", timeout=15)
out = json.loads(w.lines[-1]) if w.lines and w.lines[-1].startswith("{") else {}
check("watch: 403 is not retried: the watch returns 'unauthorized' at once",
      w.p.returncode == 1 and out.get("error") == "unauthorized"
      and time.monotonic() - t0 < 2 + 1.5 * TIME_SCALE,
      (w.lines, time.monotonic() - t0))
http("POST", server + "/_stub/config", {"rules": []}, ctx=ctx)

# an ERROR event other than 410 inside a 200 stream -> reconnect, no relist
http("POST", server + "/_stub/config", {"watch_error": {"code": 500, "times": 1}}, ctx=ctx)
w = run_watch("cto", "watch=cut", "3000", "0", "backoff=50")
_, stats = w.end()
check("watch: an ERROR event (500) in the stream -> reconnect, no relist",
      stats.get("reconnects", 0) >= 1 and stats.get("relists") == 0
      and "error event 500" in stats.get("last_error", ""), (w.lines, stats))
http("POST", server + "/_stub/config", {"watch_error": None}, ctx=ctx)

# a server's wait of 1e9 s (68 years in an int32 is the schema's limit) in an
# ERROR event or a Retry-After header: honoured only up to the longest wait
# (here retry_after_max=1500 ms; 60 s by default), counted and reported
for how in ("event", "header"):
    ctl("POST", "/_stub/reset", {})
    if how == "event":
        http("POST", server + "/_stub/config", {"watch_error": {
            "code": 500, "times": 1, "retry_after": 1000000000}}, ctx=ctx)
    else:
        http("POST", server + "/_stub/config", {"rules": [
            {"method": "GET", "path": WATCH_PATH, "query": {"watch": "1"}, "status": 503,
             "times": 1, "headers": {"Retry-After": "1000000000"}}]}, ctx=ctx)
    w = run_watch("cto", "watch=cut", "4500", "0", "backoff=50", "backoff_max=100",
                  "retry_after_max=1500")
    _, stats = w.end()
    wr = watch_requests()
    gap = wr[1]["time"] - wr[0]["time"] if len(wr) >= 2 else None
    capped = [ln for ln in w.lines if ln.startswith("CAPPED ")]
    frm = "an ERROR event's retryAfterSeconds" if how == "event" else "Retry-After"
    check(f"watch: a wait of 1e9 s asked by {'an ERROR event' if how == 'event' else 'a 503'}"
          " -> reconnects after the longest wait (1.5 s), not never",
          gap is not None and 1.4 <= gap < 3.0 and stats.get("reconnects", 0) >= 1,
          (gap, w.lines[-3:], stats))
    check(f"watch: the cut wait ({how}) is counted and reported with what the server asked",
          stats.get("waits_capped") == 1 and capped == [f"CAPPED 1000000000 1500 {frm}"],
          (capped, stats))
    http("POST", server + "/_stub/config", {"watch_error": None, "rules": []}, ctx=ctx)

# 410 both ways -> relist; SYNCED lets the caller notice what vanished meanwhile
for mode in ("http", "event"):
    create(f"gone-a-{mode}", f"g{mode}")
    create(f"gone-b-{mode}", f"g{mode}")
    w = run_watch("cto", f"watch=g{mode}", "1000", "0")
    old_rv, _ = w.end()
    netprobe("kube", "delete-coderun", "cto", f"gone-a-{mode}", env=KENV)
    ctl("POST", "/_stub/compact", {})
    http("POST", server + "/_stub/config", {"gone_mode": mode}, ctx=ctx)
    ctl("POST", "/_stub/reset", {})
    # 3 s: the 410, the relist and the new watch all well inside the run,
    # also on a loaded machine (a request cut by the run's end is a restart)
    w = run_watch("cto", f"watch=g{mode}", "3000", "0", f"rv={old_rv}")
    _, stats = w.end()
    wr = watch_requests()
    check(f"watch: 410 ({mode}) when resuming from a compacted version -> relist: SYNC of what "
          "exists, SYNCED, no event for what vanished",
          w.lines[:2] == [f"SYNC gone-b-{mode} -", "SYNCED"]
          and not any(f"gone-a-{mode}" in ln for ln in w.lines)
          and wr and wr[0]["query"].get("resourceVersion") == old_rv
          and stats["relists"] == 1 and stats["restarts"] == 1, (w.lines, stats))
http("POST", server + "/_stub/config", {"gone_mode": "http"}, ctx=ctx)

# paged lists; an expired continue token restarts the list
for i in range(5):
    create(f"pg-{i}", "pg")
ctl("POST", "/_stub/reset", {})
w = run_watch("cto", "watch=pg", "1500", "0", "limit=2")
lr = list_requests()
check("watch: the list is read in pages (limit, continue) and SYNCED comes after the last",
      [ln for ln in w.lines if ln.startswith("SYNC")] ==
      [f"SYNC pg-{i} -" for i in range(5)] + ["SYNCED"]
      and len(lr) == 3 and lr[0]["query"].get("limit") == "2" and lr[1]["query"].get("continue"),
      (w.lines, [r["query"] for r in lr]))
http("POST", server + "/_stub/config", {"continue_gone": 1}, ctx=ctx)
w = run_watch("cto", "watch=pg", "1500", "0", "limit=2", "backoff=50", "lists=1")
_, stats = w.end()
check("watch: an expired continue token (410) restarts the list from the start",
      w.lines.count("SYNC pg-0 -") == 2 and w.lines.count("SYNCED") == 1
      and stats["relists"] == 1, (w.lines, stats))
# each list's start is said (LIST): what a list cut short delivered says
# nothing of what exists (the caller forgets those SYNCs)
syncs = [ln for ln in w.lines if ln.startswith(("LIST", "SYNC"))]
check("watch: LIST before each list, the restarted one too",
      syncs[:1] == ["LIST"] and syncs.count("LIST") == 2
      and syncs[syncs.index("LIST", 1) + 1] == "SYNC pg-0 -", syncs)

# a list that does not end within max_pages (a server always answering with
# a continue token): tried again after a backoff (before: at once, forever)
http("POST", server + "/_stub/config", {"continue_gone": 0}, ctx=ctx)
ctl("POST", "/_stub/reset", {})
w = run_watch("cto", "watch=pg", "2000", "0", "limit=1", "max_pages=2", "backoff=200",
              "backoff_max=1000")
_, stats = w.end()
lr = list_requests()
check("watch: a list longer than its page cap -> relisted after backoffs, not in a loop",
      4 <= len(lr) <= 16 and "not complete after 2 pages" in stats.get("last_error", "")
      and "SYNCED" not in w.lines, (len(lr), stats))

# a page of CodeRuns over the body cap (each holds its prompt, up to
# etcd's 1.5 MiB per object): smaller pages, learned for the next lists
big = "p" * (1024 * 1024)
for i in range(20):
    m = coderun(f"big-{i:02d}", {"watch": "big"})
    m["spec"]["promptModification"] = big
    netprobe("kube", "create-coderun", "cto", stdin=json.dumps(m), env=KENV)
ctl("POST", "/_stub/reset", {})
w = run_watch("cto", "watch=big", "6000", "0", "limit=20", "backoff=50", timeout=30)
_, stats = w.end()
lr = list_requests()
check("watch: a list page over the body cap is asked again in halves: every CodeRun SYNCed",
      [ln for ln in w.lines if ln.startswith("SYNC")] ==
      [f"SYNC big-{i:02d} -" for i in range(20)] + ["SYNCED"]
      and stats["list_page"] == 10 and [r["query"].get("limit") for r in lr][:2] == ["20", "10"],
      ([ln[:40] for ln in w.lines], stats, [r["query"] for r in lr]))
for i in range(20):
    netprobe("kube", "delete-coderun", "cto", f"big-{i:02d}", env=KENV)

# ---- CodeRuns for the loop: scripted phases, typed status, the Job's output, delete ----
create("loop-1", "loop")
ctl("POST", "/_stub/seed", {
    "pods": [
        {"metadata": {"name": "loop-1-job-bbbb", "namespace": "cto",
                      "creationTimestamp": "2026-11-24T00:00:05Z",
                      "labels": {"job-name": "loop-1-job"}},
         "spec": {"containers": [{"name": "agent"}]}},
        {"metadata": {"name": "loop-1-job-aaaa", "namespace": "cto",
                      "creationTimestamp": "2026-11-24T00:00:01Z",
                      "labels": {"job-name": "loop-1-job"}},
         "spec": {"initContainers": [{"name": "clone"}], "containers": [{"name": "agent"}]}},
        {"metadata": {"name": "other-job-x", "namespace": "cto",
                      "labels": {"job-name": "other-job"}},
         "spec": {"containers": [{"name": "agent"}]}}],
    "logs": [
        {"namespace": "cto", "pod": "loop-1-job-aaaa", "container": "clone", "text": "cloned\n"},
        {"namespace": "cto", "pod": "loop-1-job-aaaa", "container": "agent",
         "text": "attempt 1\ncargo clippy\nerror: boom\n"},
        {"namespace": "cto", "pod": "loop-1-job-bbbb", "container": "agent",
         "text": "attempt 2\nfixed lint\npushed abc123\nopened PR 9\n"}]})
started = watchers()["started"]
wt = Watch("cto", "watch=loop", "0", "0", "sigterm=1")
wt.wait(lambda ln: ln == "SYNCED")
wait_for(lambda: watchers()["started"] > started)
ctl("POST", "/_stub/coderun-script", {"namespace": "cto", "name": "loop-1", "steps": [
    {"after_ms": 30, "phase": "Running", "status": {"jobName": "loop-1-job"}},
    {"after_ms": 60, "phase": "Succeeded", "message": "fixed the lint",
     "status": {"pullRequestUrl": "https://github.com/acme/widgets/pull/9",
                "workCompleted": True, "finishedAt": "2026-11-24T00:09:00Z"}}]})
wt.wait(lambda ln: ln == "MODIFIED loop-1 Succeeded")
mods = [ln for ln in wt.lines if ln.startswith("MODIFIED loop-1")]
check("watch: a scripted CodeRun is seen Running, then Succeeded, in order",
      mods == ["MODIFIED loop-1 Running", "MODIFIED loop-1 Succeeded"], wt.lines)
rc, out, err = netprobe("kube", "coderun-status", "cto", "loop-1", env=KENV)
check("coderun status: phase, terminal, message, PR URL, job name, workCompleted, finishedAt",
      rc == 0 and out["phase"] == "Succeeded" and out["terminal"] is True
      and out["message"] == "fixed the lint"
      and out["pull_request_url"] == "https://github.com/acme/widgets/pull/9"
      and out["job_name"] == "loop-1-job" and out["work_completed"] is True
      and out["finished_at"] == "2026-11-24T00:09:00Z", out)
rc, out, err = netprobe("kube", "job-pods", "cto", "loop-1-job", env=KENV)
check("job pods: selected by job-name, oldest first",
      rc == 0 and out == ["loop-1-job-aaaa", "loop-1-job-bbbb"], out)
reqs = ctl("GET", "/_stub/requests")
check("job pods: asked with labelSelector job-name=<job>",
      any(r["path"] == "/api/v1/namespaces/cto/pods"
          and r["query"].get("labelSelector") == "job-name=loop-1-job" for r in reqs))
before = len(ctl("GET", "/_stub/requests"))
rc, out, err = netprobe("kube", "job-pods", "cto", "loop-1-job,app=other", env=KENV)
check("job pods: a name that is no Job name (a ',' would add a selector term) is refused, "
      "never asked", rc == 1 and out["error"] == "invalid"
      and len(ctl("GET", "/_stub/requests")) == before, out)
rc, out, err = netprobe("kube", "job-logs", "cto", "loop-1-job", "2", "0", env=KENV)
log = out.get("log", "") if isinstance(out, dict) else ""
check("job logs: the tail of every container of every pod, oldest pod first, under headers",
      rc == 0 and log == ("==> pod loop-1-job-aaaa container clone <==\ncloned\n"
                          "==> pod loop-1-job-aaaa container agent <==\ncargo clippy\nerror: boom\n"
                          "==> pod loop-1-job-bbbb container agent <==\npushed abc123\nopened PR 9\n"),
      log)
rc, out, err = netprobe("kube", "job-logs", "cto", "no-such-job", "2", "0", env=KENV)
check("job logs: a Job without pods is not_found", rc == 1 and out["error"] == "not_found", out)
rc, out, err = netprobe("kube", "job-logs", "cto", "loop-1-job", "0", "60", env=KENV)
check("job logs: over the caller's cap is too_large", rc == 1 and out["error"] == "too_large", out)

create("loop-2", "loop")
code, cur = raw("GET", f"{WATCH_PATH}/loop-2")
stale = dict(cur, status={"phase": "Running"})
stale["metadata"] = dict(cur["metadata"], resourceVersion="1")
code, body = raw("PUT", f"{WATCH_PATH}/loop-2/status", stale)
check("stand-in: PUT .../status with a stale resourceVersion is 409 Conflict",
      code == 409 and body["reason"] == "Conflict", (code, body))
code, body = raw("PATCH", f"{WATCH_PATH}/loop-2/status", {"status": {"phase": "Running"}},
                 ctype="application/strategic-merge-patch+json")
check("stand-in: a strategic merge patch of a custom resource is 415", code == 415, (code, body))
put = dict(cur, status={"conditions": [{"type": "Failed", "status": "True", "reason": "JobFailed",
                                        "message": "agent crashed",
                                        "lastTransitionTime": "2026-11-24T00:05:00Z"}],
                        "retryCount": 2, "remediationStatus": "failed", "qaStatus": "skipped"})
code, body = raw("PUT", f"{WATCH_PATH}/loop-2/status", put)
rc, out, err = netprobe("kube", "coderun-status", "cto", "loop-2", env=KENV)
check("coderun status: without status.phase the seed's condition gives Failed and its message",
      code == 200 and rc == 0 and out["phase"] == "Failed" and out["terminal"] is True
      and out["message"] == "agent crashed" and out["condition_reason"] == "JobFailed"
      and out["retry_count"] == 2 and out["remediation_status"] == "failed"
      and out["qa_status"] == "skipped", (code, out))
code, body = raw("PATCH", f"{WATCH_PATH}/loop-2", {"status": {"phase": "Succeeded"},
                                                   "metadata": {"labels": {"watch": "loop",
                                                                           "x": "y"}}},
                 ctype="application/merge-patch+json")
rc, out, err = netprobe("kube", "coderun-status", "cto", "loop-2", env=KENV)
check("stand-in: a PATCH of the object itself changes labels, never the status",
      code == 200 and body["metadata"]["labels"].get("x") == "y" and out["phase"] == "Failed",
      (code, out))
create("loop-3", "loop")
rc, out, err = netprobe("kube", "coderun-status", "cto", "loop-3", env=KENV)
check("coderun status: a new CodeRun has no phase and is not terminal",
      rc == 0 and out["phase"] == "" and out["terminal"] is False, out)

ctl("POST", "/_stub/reset", {})
http("POST", server + "/_stub/config", {"rules": [
    {"method": "DELETE", "path": f"{WATCH_PATH}/loop-1", "status": 503, "times": 1}]}, ctx=ctx)
rc, out, err = netprobe("kube", "delete-coderun", "cto", "loop-1", env=KENV)
dels = [r for r in ctl("GET", "/_stub/requests") if r["method"] == "DELETE"]
deleted = [d for d in ctl("GET", "/_stub/deleted") if d["name"] == "loop-1"]
check("delete: propagationPolicy=Background, retried after a 503, the Job's pods collected",
      rc == 0 and len(dels) == 2 and dels[-1]["query"].get("propagationPolicy") == "Background"
      and deleted and sorted(deleted[0]["pods"]) == ["loop-1-job-aaaa", "loop-1-job-bbbb"],
      (out, dels, deleted))
http("POST", server + "/_stub/config", {"rules": []}, ctx=ctx)
wt.wait(lambda ln: ln.startswith("DELETED loop-1"))
wt.stop()
check("watch: the deletion arrives as DELETED with the last state",
      "DELETED loop-1 Succeeded" in wt.lines, wt.lines[-4:])
rc, out, err = netprobe("kube", "delete-coderun", "cto", "loop-1", env=KENV)
check("delete: a CodeRun already gone counts as deleted (404 -> ok)", rc == 0 and out == {"ok": True},
      out)
rc, out, err = netprobe("kube", "delete-coderun", "cto", "../loop-1", env=KENV)
check("delete: a bad name is invalid", rc == 1 and out["error"] == "invalid", out)
http("POST", server + "/_stub/config", {"rules": [
    {"method": "DELETE", "path": f"{WATCH_PATH}/loop-2", "status": 403}]}, ctx=ctx)
rc, out, err = netprobe("kube", "delete-coderun", "cto", "loop-2", env=KENV)
check("delete: 403 is unauthorized, with the API's Status message",
      rc == 1 and out["error"] == "unauthorized" and "injected" in out["message"], out)
http("POST", server + "/_stub/config", {"rules": []}, ctx=ctx)

# the stop flag also cuts a backoff short
http("POST", server + "/_stub/config", {"rules": [
    {"method": "GET", "path": WATCH_PATH, "query": {"watch": "1"}, "status": 503}]}, ctx=ctx)
ctl("POST", "/_stub/reset", {})
wt = Watch("cto", "watch=loop", "0", "0", "sigterm=1", "backoff=5000", "backoff_max=5000")
wait_for(lambda: watch_requests())
rc, ms = wt.stop()
_, stats = wt.end()
# 500 ms x TIME_SCALE: a stop that waits the backoff out takes up to 5 s
check("watch: the stop flag ends a 5 s backoff within 500 ms",
      rc == 0 and 0 <= stats.get("stop_ms", -1) <= 500 * TIME_SCALE, (rc, stats, ms))
http("POST", server + "/_stub/config", {"rules": []}, ctx=ctx)

finish()
