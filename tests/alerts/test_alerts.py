#!/usr/bin/env python3
"""test_alerts.py - alerts from running systems (contract section 14) end to
end: a real `healer server` against the Kubernetes stand-in (pods, their
logs and events, CodeRuns) and a route-table stand-in for the ArgoCD REST
API, Loki and Grafana.

Scenarios: an OOMKilled pod alert -> the four diagnostic files, an analysis
naming OOM with its evidence line, one CodeRun on the heal template and
PVC (Bolt); the same alert again -> a duplicate and no second task; a
CrashLoopBackOff with a Rust panic in another pod of the same deployment ->
a second task, Rex, the panic line and its first stack frame; the loop
follows the heal CodeRuns (a failed one gets attempt 2 with the first in
its analysis, a succeeded one ends the task); a resolved alert ends its
task and deletes the CodeRun that had not started; a non-pod alert is
skipped; the Kubernetes API failing -> the alert is kept and retried until
it answers; the heal settings and commands (the A7 prompt's --target-pod,
the template and service map checks, `healer heal ...` and a binary named
heal); an unreachable cluster -> a clear error in the log and the
delivery kept for retry; an ArgoCD Degraded notification -> Bolt with the
application's conditions and unhealthy resources in the prompt, a healthy
one skipped; a group of 2,000 pod alerts in one body -> 202, each stored
once, the same body again -> all duplicates; malformed bodies -> 400 with a
reason, a missing token 401, a wrong content type 415. Standard library only; prints TAP."""
import hashlib
import http.client
import json
import os
import re
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import TIME_SCALE, Healer, wait_for  # noqa: E402

KTOKEN = "kube-alerts-token"
API_TOKEN = "alerts-api-token"
NS = "cto"          # CodeRuns
APP_NS = "prod"     # the failing workload
POD_OOM = "api-7d9f8b6c5d-x2k4p"
POD_PANIC = "api-7d9f8b6c5d-q9w8e"
POD_FLAKY = "worker-5b6c7d8e9f-a1b2c"
POD_REFUSED = "worker-5b6c7d8e9f-r3f5d"  # its heal CodeRun is refused (422)
PANIC_LINE = "thread 'main' panicked at src/handler.rs:27:9:"
POD_CART1 = "cart-6f7a8b9c0d-k1l2m"  # resolved in the body of its firing
POD_CART2 = "cart-6f7a8b9c0d-n3o4p"  # resolved before its firing arrived
POD_CART3 = "cart-6f7a8b9c0d-q5r6s"  # two alerts at once
POD_CART4 = "cart-6f7a8b9c0d-w9x0y"  # a panic at a long non-ASCII location
POD_GUARD1 = "cart-6f7a8b9c0d-g1g1g"  # a retry while another task's CodeRun is active
POD_ODD = "odd-1a2b3c4d5e-o0d1d"  # its owner's name is no Kubernetes name
POD_LOST = "api-7d9f8b6c5d-l0s7r"  # its CodeRun's create answer is lost
POD_GUARD2 = "cart-6f7a8b9c0d-g2g2g"  # a running CodeRun relabelled, then another alert
POD_TWIN = "cart-6f7a8b9c0d-t4t4t"  # a pod of this name in two namespaces
POD_ROGUE = "rogue-1a2b3c4d5e-r0g0e"  # its workload maps to a repository not allowed
POD_INST = "inv-3c4d5e6f7a-i1n2s"  # labelled app.kubernetes.io/instance and /name
POD_LINK = "link-4d5e6f7a8b-l1n2k"  # a symlink is planted among its files, then it goes
POD_NOREPO = "loner-5e6f7a8b9c-n0r3p"  # no service map entry, no HEALER_HEAL_REPOSITORY
POD_NARROW = "narrow-6a7b8c9d0e-n4r5w"  # resolved after HEALER_ALERT_NAMESPACES narrowed
POD_SWAP = "swap-7b8c9d0e1f-s6w7p"  # logs/ swapped for a symlink during a retry
POD_BIG = "big-9d0e1f2a3b-b1g0g"  # 10,000 lines of 2 KB, current and previous
POD_FORBID = "secret-8c9d0e1f2a-f0r8d"  # the API answers 403 for it (RBAC)
POD_UNAUTH = "secret-8c9d0e1f2a-u4a7h"  # the API answers 401 for it (a token rotating)
# the longest pod name Kubernetes allows: "<pod>-previous.log" and
# "A7-<pod>.md" would pass the file system's 255 bytes; its files take the
# shortened stem (hl_diag_file_stem)
POD_LONG = "cart-" + "l" * 247 + "z"
STEM_LONG = POD_LONG[:225] + "-" + hashlib.sha256(POD_LONG.encode()).hexdigest()[:16]
UTF8_PANIC = ("thread 'main' panicked at src/" + "\u00e9" * 130 + ".rs:1:1:\n"
              "   0: std::x\n   1: app::" + "\u00fc" * 150 + "\n")


def pod(name, workload, hash_, statuses, containers=("api",), labels=None):
    return {
        "metadata": {"name": name, "namespace": APP_NS,
                     "labels": dict({"app": workload, "pod-template-hash": hash_}, **(labels or {})),
                     "ownerReferences": [{"kind": "ReplicaSet", "name": f"{workload}-{hash_}",
                                          "controller": True}]},
        "spec": {"nodeName": "node-1",
                 "containers": [{"name": c, "image": f"ghcr.io/acme/{workload}:1.4.2",
                                 "resources": {"limits": {"memory": "256Mi"}}}
                                for c in containers]},
        "status": {"phase": "Running", "containerStatuses": statuses},
    }


def crash_status(container, reason, code, restarts):
    return {"name": container, "ready": False, "restartCount": restarts,
            "image": "ghcr.io/acme/api:1.4.2",
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": "back-off 5m0s restarting failed container"}},
            "lastState": {"terminated": {"reason": reason, "exitCode": code,
                                         "finishedAt": "2026-01-01T10:04:00Z"}}}


def event(pod_name, reason, message, typ="Warning"):
    return {"metadata": {"name": f"{pod_name}.{reason.lower()}", "namespace": APP_NS},
            "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": APP_NS},
            "type": typ, "reason": reason, "message": message, "count": 7,
            "lastTimestamp": "2026-01-01T10:04:00Z"}


OOM_PREVIOUS = "\n".join([
    "2026-01-01T10:00:00Z INFO api starting on :8080",
    "2026-01-01T10:00:01Z INFO loading product catalogue into memory (4,000,000 rows)",
    "2026-01-01T10:00:09Z INFO loaded 3,100,000 rows",
]) + "\n"
PANIC_PREVIOUS = "\n".join([
    "2026-01-01T10:00:00Z INFO api starting on :8080",
    "2026-01-01T10:00:02Z INFO GET /orders/42",
    # healer's own API token and a URL's password, printed by the pod: the
    # analysis (the heal prompt) quotes the log without them
    "2026-01-01T10:00:02Z DEBUG auth alerts-api-token from https://svc:pw7731@cfg.example/a",
    PANIC_LINE,
    "index out of bounds: the len is 3 but the index is 7",
    "stack backtrace:",
    "   0: rust_begin_unwind",
    "   1: core::panicking::panic_fmt",
    "   2: core::panicking::panic_bounds_check",
    "   3: api::handler::route",
    "             at ./src/handler.rs:27:9",
    "   4: api::main",
    "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
]) + "\n"


def am_body(alerts, status="firing"):
    return {"version": "4", "groupKey": '{}:{alertname="KubePodCrashLooping"}',
            "truncatedAlerts": 0, "status": status, "receiver": "healer",
            "groupLabels": {"alertname": "KubePodCrashLooping"}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
            "alerts": alerts}


def am_alert(pod_name, fp, status="firing", name="KubePodCrashLooping", starts="2026-01-01T10:05:00Z",
             container="api"):
    labels = {"alertname": name, "namespace": APP_NS, "pod": pod_name, "container": container,
              "severity": "warning", "job": "kube-state-metrics"}
    return {"status": status, "labels": labels,
            "annotations": {"summary": "Pod is crash looping.",
                            "description": f"Pod {APP_NS}/{pod_name} ({container}) is in waiting "
                                           "state (reason: \"CrashLoopBackOff\")."},
            "startsAt": starts,
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-01-01T11:00:00Z",
            "generatorURL": "http://prometheus/graph?g0.expr=x", "fingerprint": fp}


# ---- stand-ins ------------------------------------------------------------------
ca = dtest.make_ca("kube")
_, kport = dtest.start_stub("kube_stub.py", "--cert", ca["cert"], "--key", ca["key"],
                            "--token", KTOKEN, "--crd", dtest.CRD)
KURL = f"https://127.0.0.1:{kport}"
KCTX = ssl.create_default_context(cafile=ca["ca"])
kubeconfig = dtest.write_kubeconfig(os.path.join(dtest.TMP, "kubeconfig"), KURL,
                                    ca_path=ca["ca"], token=KTOKEN, namespace=NS)
_, sport = dtest.start_stub("generic_stub.py")
SURL = f"http://127.0.0.1:{sport}"


def kube(method, path, body=None):
    return dtest.http(method, KURL + path, body, ctx=KCTX, token=KTOKEN)


def coderuns(task_id=None):
    sel = "?labelSelector=healer/task-id=" + urllib.parse.quote(task_id) if task_id else ""
    runs = kube("GET", "/_stub/coderuns" + sel) or []
    return sorted(runs, key=lambda c: int(c["metadata"]["labels"].get("healer/attempt", "0")))


def set_phase(name, phase, message=None):
    return kube("POST", "/_stub/coderun-phase", {"namespace": NS, "name": name, "phase": phase,
                                                "message": message, "status": {}})


def relabel(name, labels):
    """kubectl label coderun NAME ...: None removes a label."""
    return kube("PATCH", f"/apis/agents.platform/v1/namespaces/{NS}/coderuns/{name}",
                {"metadata": {"labels": labels}})


def seed_other_run(like, name, phase="Running"):
    """A CodeRun of another task with the same target as like (made by another
    alert's task, or another replica, while like's task was between attempts)."""
    labels = dict(like["metadata"]["labels"], **{"healer/task-id": "another-task",
                                                  "healer/attempt": "1"})
    kube("POST", "/_stub/seed", {"coderuns": [{
        "apiVersion": "agents.platform/v1", "kind": "CodeRun",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": like["spec"], "status": {"phase": phase}}]})


def processed(srv, tids):
    ds = [d for d in srv.request("GET", "/api/status")[1].get("recent", [])
          if d.get("task_id") in tids]
    return len(ds) == len(tids) and all(d.get("state") == "processed" for d in ds)


ARGO_APP = {
    "metadata": {"name": "shop", "namespace": "argocd"},
    "spec": {"project": "default",
             "source": {"repoURL": "https://github.com/acme/shop-deploy.git", "path": "k8s"},
             "destination": {"namespace": "shop"}},
    "status": {
        "health": {"status": "Degraded",
                   "message": "Deployment \"shop\" exceeded its progress deadline",
                   "lastTransitionTime": "2026-01-01T09:00:00Z"},
        "sync": {"status": "OutOfSync", "revision": "0a1b2c3d"},
        "conditions": [{"type": "SyncError",
                        "message": "Failed sync attempt to 0a1b2c3d: one or more objects failed "
                                   "to apply, reason: ConfigMap \"shop-config\" not found"}],
        "operationState": {"phase": "Failed", "message": "one or more objects failed to apply",
                           "startedAt": "2026-01-01T08:59:00Z",
                           "syncResult": {"revision": "0a1b2c3d", "resources": [
                               {"group": "apps", "kind": "Deployment", "namespace": "shop",
                                "name": "shop", "status": "SyncFailed",
                                "message": "Deployment.apps \"shop\" is invalid: "
                                           "spec.template.spec.containers[0].image: Required value"}]}},
        "resources": [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop",
                       "name": "shop", "status": "OutOfSync",
                       "health": {"status": "Degraded",
                                  "message": "Deployment does not have minimum availability."}}],
    },
}


def set_routes(grafana_status=200, loki_delay_ms=0):
    routes = [
        {"method": "GET", "path": "/api/v1/applications/shop", "token": "argo-token",
         "body": ARGO_APP},
        {"method": "GET", "path": "/api/v1/applications/shop/resource-tree", "token": "argo-token",
         "body": {"nodes": [{"group": "", "kind": "Pod", "namespace": "shop",
                             "name": "shop-6c5d4b3a2-zz9yy",
                             "health": {"status": "Degraded",
                                        "message": "ImagePullBackOff: manifest unknown"}}]}},
        {"method": "GET", "path": "/loki/api/v1/query_range", "delay_ms": loki_delay_ms,
         "body": {"status": "success", "data": {"resultType": "streams", "result": [
             {"stream": {"app": "api"}, "values": [
                 ["1", "level=error msg=\"index out of bounds\""],
                 # a service logging its database URL and healer's own token
                 ["2", f"level=error msg=\"dial postgres://app:lokipw5521@db:5432 failed "
                       f"(auth {API_TOKEN})\""]]}]}}},
        {"method": "POST", "path": "/api/webhooks/1/alerts-discord", "status": 204, "body": ""},
        {"method": "GET", "path": "/api/v1/query",
         "body": {"status": "success", "data": {"resultType": "vector", "result": []}}},
        {"method": "GET", "path": "/api/annotations", "status": grafana_status,
         "body": [{"id": 1, "dashboardUID": "api-overview", "panelId": 4, "time": 1767261600000,
                   "timeEnd": 1767261900000, "text": "deploy 1.4.2", "tags": ["deploy"]}]},
    ]
    dtest.http("POST", SURL + "/_stub/config", {"routes": routes})


def seed():
    oom_pod = pod(POD_OOM, "api", "7d9f8b6c5d", [crash_status("api", "OOMKilled", 137, 4)])
    panic_pod = pod(POD_PANIC, "api", "7d9f8b6c5d", [crash_status("api", "Error", 101, 6)])
    flaky_pod = pod(POD_FLAKY, "worker", "5b6c7d8e9f", [crash_status("api", "Error", 1, 2)])
    refused_pod = pod(POD_REFUSED, "worker", "5b6c7d8e9f", [crash_status("api", "Error", 1, 2)])
    cart = [pod(p, "cart", "6f7a8b9c0d", [crash_status("api", "Error", 1, 3)])
            for p in (POD_CART1, POD_CART2, POD_CART3, POD_CART4, POD_LONG, POD_GUARD1,
                      POD_GUARD2)]
    kube("POST", "/_stub/seed", {
        "pods": [oom_pod, panic_pod, flaky_pod, refused_pod] + cart,
        "logs": [
            {"namespace": APP_NS, "pod": POD_OOM, "container": "api",
             "text": "2026-01-01T10:05:00Z INFO api starting on :8080\n"},
            {"namespace": APP_NS, "pod": POD_OOM, "container": "api", "previous": True,
             "text": OOM_PREVIOUS},
            {"namespace": APP_NS, "pod": POD_PANIC, "container": "api",
             "text": "2026-01-01T10:05:00Z INFO api starting on :8080\n"},
            {"namespace": APP_NS, "pod": POD_PANIC, "container": "api", "previous": True,
             "text": PANIC_PREVIOUS},
            {"namespace": APP_NS, "pod": POD_FLAKY, "container": "api",
             "text": "worker up\n"},
            {"namespace": APP_NS, "pod": POD_FLAKY, "container": "api", "previous": True,
             "text": "thread 'main' panicked at src/queue.rs:9:5:\nqueue closed\n"},
            {"namespace": APP_NS, "pod": POD_REFUSED, "container": "api", "previous": True,
             "text": "thread 'main' panicked at src/queue.rs:9:5:\nqueue closed\n"},
        ] + [{"namespace": APP_NS, "pod": p, "container": "api",
              "text": "Error: connection refused (os error 111)\n"}
           for p in (POD_CART1, POD_CART2, POD_CART3, POD_LONG, POD_GUARD1, POD_GUARD2)]
        + [{"namespace": APP_NS, "pod": POD_CART4, "container": "api", "previous": True,
            "text": UTF8_PANIC}],
        "events": [
            event(POD_OOM, "BackOff", f"Back-off restarting failed container api in pod {POD_OOM}"),
            event(POD_PANIC, "BackOff",
                  f"Back-off restarting failed container api in pod {POD_PANIC}"),
            event(POD_FLAKY, "BackOff", "Back-off restarting failed container api"),
        ],
    })


def post(srv, path, body, token=API_TOKEN, ctype="application/json"):
    headers = {"Content-Type": ctype} if ctype else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return srv.request("POST", path, data, headers)


def task_of(srv, tid):
    """The task as written; {} while there is none (also while its delivery
    waits for a worker: a queued document naming the delivery)."""
    st, d = srv.request("GET", f"/api/remediations/{tid}")
    return d if st == 200 and "delivery_id" not in d else {}


def server_log(srv):
    with open(os.path.join(srv.data_dir, "server.log"), errors="replace") as f:
        return f.read().splitlines()


def vm_hwm_kib(pid):
    """The process's peak resident memory (VmHWM), in KiB; 0 when unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_state(srv, tid, state, timeout=20):
    return wait_for(lambda: task_of(srv, tid).get("state") == state, timeout)


_HELD = []


def refused_port():
    """A loopback port a connection to is refused for the rest of this test:
    bound here and never listened on, so no other process's bind(0) or
    connect is handed it meanwhile (as a port closed after bind(0) can be)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


def commands(services):
    """The heal flow's settings and commands outside the server."""
    p = subprocess.run(
        [dtest.HEALER, "render", "alerts/a7-pod-failure.hbs", "-"],
        input=json.dumps({"alert": {"id": "A7", "pod_name": "web-1", "namespace": "prod",
                                    "task_id": "t-9"}}),
        capture_output=True, text=True, env=dtest.clean_env(), timeout=30)
    check("the A7 prompt passes --target-pod to spawn-remediation",
          p.returncode == 0 and '--target-pod "$POD"' in p.stdout
          and "pod name `web-1`" in p.stdout
          and "heal/claude" in p.stdout, p.stdout[-800:] + p.stderr)
    rc, out, err = dtest.healer("check-config", env={"HEALER_HEAL_TEMPLATE": "claude"})
    check("a heal template that is not FAMILY/NAME is refused, naming the key",
          rc == 1 and "HEALER_HEAL_TEMPLATE" in err, err)
    bad = os.path.join(dtest.TMP, "bad-services.yaml")
    with open(bad, "w") as f:
        f.write("- repository: acme/api\n  argocd: x\n")
    rc, out, err = dtest.healer("check-config", env={"HEALER_SERVICES_FILE": bad})
    check("a service map with an unknown key is refused, naming the file, line and key",
          rc == 1 and "HEALER_SERVICES_FILE" in err and ":2: unknown key 'argocd'" in err, err)
    rc, out, err = dtest.healer("check-config", "--print", env={"HEALER_SERVICES_FILE": services})
    check("check-config takes the service map and shows the heal defaults",
          rc == 0 and "HEALER_HEAL_TEMPLATE=heal/claude" in out
          and "HEALER_HEAL_LOG_TAIL=10000" in out and "HEALER_SERVICES_FILE=" + services in out,
          out + err)
    # the seed's names: `healer heal ...`, and a binary named heal
    d1 = os.path.join(dtest.TMP, "heal-cmd")
    rc, out, err = dtest.healer("heal", "fetch-logs", "--pod-name", POD_OOM, "--namespace", APP_NS,
                                "--output-dir", d1, env={"KUBECONFIG": kubeconfig})
    check("healer heal fetch-logs writes the diagnostics",
          rc == 0 and os.path.exists(os.path.join(d1, f"{POD_OOM}-describe.txt")), err)
    link = os.path.join(dtest.TMP, "heal")
    os.symlink(dtest.HEALER, link)
    issue = os.path.join(dtest.TMP, "issue.md")
    with open(issue, "w") as f:
        f.write("# Pod Failure: web-1\n")
    p = subprocess.run(
        [link, "spawn-remediation", "--alert", "a7", "--task-id", "42", "--issue-file", issue,
         "--target-pod", "web-1"], capture_output=True, text=True, timeout=30,
        env=dtest.clean_env({"HEALER_DISPATCH": "none", "HEALER_HEAL_REPOSITORY": "acme/api"}))
    m = json.loads(p.stdout) if p.returncode == 0 and p.stdout.startswith("{") else {}
    check("heal spawn-remediation (a binary named heal) builds the heal CodeRun on heal/claude",
          m.get("spec", {}).get("cliConfig", {}).get("settings", {}).get("template")
          == "heal/claude" and m["metadata"]["labels"].get("target-pod") == "web-1",
          p.stdout[:500] + p.stderr)


def large_body(env):
    """A bad rollout: 2,000 crash-looping pods in one Alertmanager group, one
    body (Alertmanager does not retry a 4xx: a body refused for its count is
    lost until repeat_interval). A server without a cluster, so each pod
    alert is recorded skipped at once and the check is the intake."""
    env3 = {k: v for k, v in env.items() if k != "KUBECONFIG"}
    env3.update(HEALER_DISPATCH="directory", HEALER_HEAL_WORKSPACE=os.path.join(dtest.TMP, "ws3"))
    data3 = os.path.join(dtest.TMP, "h3")
    srv3 = Healer(data3, env3).start()
    n = 2000
    big = am_body([am_alert(f"web-5f6d7c8b9a-{i:05d}", f"{i + 1:016x}") for i in range(n)])
    raw = json.dumps(big).encode()
    t0 = time.monotonic()
    st, ans = post(srv3, "/api/alerts/alertmanager", raw)
    took = time.monotonic() - t0
    items = ans.get("alerts") or []
    check(f"a body of {n} alerts ({len(raw) // 1024} KiB) -> 202, every alert accepted, one task"
          f" each, answered in {took:.2f} s",
          st == 202 and ans.get("status") == "accepted" and len(items) == n
          and all(a.get("status") == "accepted" for a in items)
          and len(ans.get("task_ids") or []) == n and len(set(ans.get("task_ids") or [])) == n
          and took < 10 * TIME_SCALE,
          (st, {k: v for k, v in ans.items() if k != "alerts"}, items[:2]))
    con = dtest.store_db(data3)
    rows = con.execute("SELECT count(*), count(DISTINCT delivery_id) FROM deliveries"
                       " WHERE source = 'alertmanager'").fetchone()
    check(f"each of the {n} alerts is stored once, as its own delivery",
          tuple(rows) == (n, n) and {a.get("delivery_id") for a in items}
          == {r[0] for r in con.execute("SELECT delivery_id FROM deliveries"
                                        " WHERE source = 'alertmanager'").fetchall()}, rows)
    t0 = time.monotonic()
    st, again = post(srv3, "/api/alerts/alertmanager", raw)
    took2 = time.monotonic() - t0
    check(f"the same body again (Alertmanager's repeat) -> 202, all {n} duplicates, nothing"
          f" stored ({took2:.2f} s)",
          st == 202 and again.get("status") == "duplicate"
          and len(again.get("alerts") or []) == n
          and all(a.get("status") == "duplicate" for a in again["alerts"])
          and sorted(again.get("task_ids") or []) == sorted(ans.get("task_ids") or [])
          and tuple(con.execute("SELECT count(*) FROM deliveries"
                                " WHERE source = 'alertmanager'").fetchone()) == (n,),
          {k: v for k, v in again.items() if k != "alerts"})
    # the same alert twice in one body (a sender's own repeat): one task, named once
    twice = am_alert("web-5f6d7c8b9a-twice", "7777777777777777")
    st, ans2 = post(srv3, "/api/alerts/alertmanager", am_body([twice, dict(twice)]))
    check("the same alert twice in one body: both answered, its task named once",
          st == 202 and len(ans2.get("alerts") or []) == 2 and len(ans2.get("task_ids") or []) == 1,
          ans2)
    settled = wait_for(lambda: con.execute(
        "SELECT count(*) FROM deliveries WHERE source = 'alertmanager'"
        " AND state IN ('received', 'processing')").fetchone()[0] == 0, 60 * TIME_SCALE)
    check("every stored alert is processed (no cluster: each recorded skipped)", settled,
          con.execute("SELECT state, count(*) FROM deliveries GROUP BY 1").fetchall())
    con.close()
    srv3.stop()


def no_repository(env):
    """Without HEALER_HEAL_REPOSITORY (and no list): a pod alert whose workload
    the service map does not map, and an Application whose repoURL is not
    GitHub's, are skipped no_repository, nothing fetched (before: a CodeRun
    for the built-in 5dlabs/cto)."""
    env4 = {k: v for k, v in env.items()
            if k not in ("HEALER_HEAL_REPOSITORY", "HEALER_REPOSITORIES")}
    ws4 = os.path.join(dtest.TMP, "ws4")
    env4.update(HEALER_HEAL_WORKSPACE=ws4)
    srv4 = Healer(os.path.join(dtest.TMP, "h4"), env4).start()
    loner = pod(POD_NOREPO, "loner", "5e6f7a8b9c", [crash_status("api", "Error", 1, 2)])
    kube("POST", "/_stub/seed", {"pods": [loner], "logs": [
        {"namespace": APP_NS, "pod": POD_NOREPO, "container": "api", "text": "Error: x\n"}]})
    st, ans = post(srv4, "/api/alerts/alertmanager", am_body([am_alert(POD_NOREPO, "7e7e7e01")]))
    tid = (ans.get("task_ids") or ["?"])[0]
    t = wait_for(lambda: (lambda d: d if d.get("state") else None)(task_of(srv4, tid)), 15) or {}
    time.sleep(0.5)
    logs4 = os.path.join(ws4, "logs")
    check("no HEALER_HEAL_REPOSITORY: a pod alert without a service map entry -> skipped "
          "no_repository, no CodeRun, no diagnostics written",
          st == 202 and t.get("state") == "skipped" and t.get("reason") == "no_repository"
          and not coderuns(tid) and not (os.path.isdir(logs4) and os.listdir(logs4)),
          [t, os.listdir(logs4) if os.path.isdir(logs4) else []])
    d = json.loads(json.dumps(ARGO_APP))
    d["metadata"]["name"] = "gitlabbed"
    d["spec"]["source"]["repoURL"] = "https://gitlab.example/acme/gitlabbed.git"
    st, ans = post(srv4, "/api/alerts/argocd", {"application": d})
    check("no HEALER_HEAL_REPOSITORY: an Application whose repoURL is not GitHub's -> skipped "
          "no_repository, no task",
          st == 202 and ans.get("status") == "skipped" and ans.get("reason") == "no_repository"
          and ans.get("task_ids") == [], ans)
    srv4.stop()


def resolved_after_narrowing(env):
    """A task opened while its namespace was allowed still ends when its alert
    resolves after a restart with a narrower HEALER_ALERT_NAMESPACES (before:
    the resolution was screened like a firing alert, skipped without a task,
    and the CodeRun and task were left running). A resolution without a task
    in a namespace the screens refuse is still skipped."""
    data5 = os.path.join(dtest.TMP, "h5")
    env5 = dict(env, HEALER_HEAL_WORKSPACE=os.path.join(dtest.TMP, "ws5"))
    srv5 = Healer(data5, env5).start()
    narrow = pod(POD_NARROW, "narrow", "6a7b8c9d0e", [crash_status("api", "Error", 1, 2)])
    kube("POST", "/_stub/seed", {"pods": [narrow], "logs": [
        {"namespace": APP_NS, "pod": POD_NARROW, "container": "api", "text": "Error: x\n"}]})
    st, ans = post(srv5, "/api/alerts/alertmanager", am_body([am_alert(POD_NARROW, "5a5a5a01")]))
    tid = (ans.get("task_ids") or ["?"])[0]
    runs = wait_for(lambda: coderuns(tid), 20) or []
    wait_for(lambda: task_of(srv5, tid).get("coderun_name"), 10)
    srv5.stop()
    check("a firing alert of an allowed namespace -> a task and its CodeRun",
          st == 202 and len(runs) == 1, [ans, len(runs)])
    srv5 = Healer(data5, dict(env5, HEALER_ALERT_NAMESPACES="staging")).start()
    st, ans = post(srv5, "/api/alerts/alertmanager",
                   am_body([am_alert(POD_NARROW, "5a5a5a01", status="resolved")], "resolved"))
    ok = wait_state(srv5, tid, "stopped")
    t = task_of(srv5, tid)
    name = runs[0]["metadata"]["name"] if runs else "?"
    deleted = [d for d in (kube("GET", "/_stub/deleted") or []) if d.get("name") == name]
    check("restarted with HEALER_ALERT_NAMESPACES=staging: the resolved alert still reaches "
          "its task -> stopped, the CodeRun that had not started deleted",
          st == 202 and ans.get("status") == "accepted" and ans.get("task_ids") == [tid]
          and ok and deleted and (t.get("attempts") or [{}])[0].get("outcome") == "stopped",
          [ans, t.get("state"), t.get("reason"), deleted])
    st, ans = post(srv5, "/api/alerts/alertmanager",
                   am_body([am_alert("narrow-6a7b8c9d0e-z9z9z", "5a5a5a02", status="resolved")],
                           "resolved"))
    tid2 = (ans.get("task_ids") or ["?"])[0]
    wait_for(lambda: processed(srv5, [tid2]), 15)
    check("... a resolution without a task in a namespace no longer allowed -> skipped, "
          "no task recorded",
          st == 202 and processed(srv5, [tid2]) and not task_of(srv5, tid2), [ans, task_of(srv5, tid2)])
    srv5.stop()


def swapped_logs_dir(env):
    """The agent can write the heal workspace: logs/ swapped for a symbolic
    link to another directory while a retry is fetching (after healer opened
    it) -> nothing is written to or read from the link's target; the files
    go to the directory healer opened (before: logs/ was checked with lstat,
    then written and read by path, through the link)."""
    ws6 = os.path.join(dtest.TMP, "ws6")
    srv6 = Healer(os.path.join(dtest.TMP, "h6"), dict(env, HEALER_HEAL_WORKSPACE=ws6)).start()
    sp = pod(POD_SWAP, "swap", "7b8c9d0e1f", [crash_status("api", "Error", 1, 2)])
    kube("POST", "/_stub/seed", {"pods": [sp], "logs": [
        {"namespace": APP_NS, "pod": POD_SWAP, "container": "api", "text": "swap up\n"},
        {"namespace": APP_NS, "pod": POD_SWAP, "container": "api", "previous": True,
         "text": "Error: swap broke\n"}]})
    st, ans = post(srv6, "/api/alerts/alertmanager", am_body([am_alert(POD_SWAP, "5b5b5b01")]))
    tid = (ans.get("task_ids") or ["?"])[0]
    r1 = wait_for(lambda: coderuns(tid), 20) or []
    logs6, moved = os.path.join(ws6, "logs"), os.path.join(ws6, "logs.orig")
    target = os.path.join(dtest.TMP, "swap-target")
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, f"{POD_SWAP}-current.log"), "w") as f:
        f.write("thread 'main' panicked at src/swap.rs:1:1:\nSWAPSECRET-5151\n")
    # the retry's events list waits: healer has opened logs/ by then
    kube("POST", "/_stub/reset")
    kube("POST", "/_stub/config", {"rules": [
        {"method": "GET", "path": f"/api/v1/namespaces/{APP_NS}/events",
         "query": {"fieldSelector": f"involvedObject.name={POD_SWAP}"}, "delay_ms": 1800}]})
    if r1:
        set_phase(r1[0]["metadata"]["name"], "Running")
        set_phase(r1[0]["metadata"]["name"], "Failed", "exit 1")

    def events_asked():
        path = f"/api/v1/namespaces/{APP_NS}/events"
        return [r for r in kube("GET", "/_stub/requests?path=" + path) or []
                if r.get("path") == path
                and POD_SWAP in (r.get("query") or {}).get("fieldSelector", "")]
    asked = wait_for(events_asked, 20, 0.02) if r1 else None
    swapped = time.time()
    os.rename(logs6, moved)
    os.symlink(target, logs6)
    r2 = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(coderuns(tid)), 20) or []
    kube("POST", "/_stub/config", {"rules": []})
    p2 = r2[1]["spec"].get("promptModification", "") if len(r2) == 2 else ""
    cur = os.path.join(moved, f"{POD_SWAP}-current.log")
    check("logs/ swapped for a symlink while a retry fetched: nothing written to the link's "
          "target, the files went to the directory healer opened, the target not quoted",
          len(r1) == 1 and asked and len(r2) == 2
          and sorted(os.listdir(target)) == [f"{POD_SWAP}-current.log"]
          and os.path.getmtime(cur) >= swapped - 1 and "SWAPSECRET-5151" not in p2
          and "This is attempt 2" in p2,
          [len(r1), bool(asked), len(r2), sorted(os.listdir(target)), p2[:1500]])
    for c in coderuns(tid):
        set_phase(c["metadata"]["name"], "Succeeded")
    srv6.stop()


def main():
    set_routes()
    seed()
    ws = os.path.join(dtest.TMP, "ws")
    services = os.path.join(dtest.TMP, "services.yaml")
    with open(services, "w") as f:
        f.write("services:\n"
                "- repository: acme/shop-deploy\n"
                "  argocd_app: shop\n"
                "  namespace: shop\n"
                "  pod_selector: app.kubernetes.io/instance=shop\n"
                "  grafana_dashboard: shop-overview\n"
                # a workload the map gives a repository outside HEALER_REPOSITORIES
                "- repository: evil/pods\n"
                "  namespace: prod\n"
                "  workload: rogue\n")
    env = {"KUBECONFIG": kubeconfig, "HEALER_DISPATCH": "kubernetes", "HEALER_NAMESPACE": NS,
           "HEALER_API_TOKEN": API_TOKEN, "HEALER_HEAL_WORKSPACE": ws,
           "HEALER_SOURCE_TIMEOUT_MS": "2000", "HEALER_CONTEXT_TIMEOUT_MS": "4000",
           "HEALER_LOOP_INTERVAL_MS": "100", "HEALER_LOG_LEVEL": "info",
           # the ArgoCD applications' repositories (the service map's and
           # their repoURLs') and the pod alerts' (HEALER_HEAL_REPOSITORY)
           "HEALER_REPOSITORIES": "acme/api,acme/shop-deploy,acme/billing,acme/orders,"
                                  "acme/invoices,acme/ledger,acme/cellar,acme/flap",
           "HEALER_HEAL_REPOSITORY": "acme/api",
           "ARGOCD_SERVER": SURL, "ARGOCD_TOKEN": "argo-token",
           "LOKI_URL": SURL, "GRAFANA_URL": SURL, "PROMETHEUS_URL": SURL,
           "DISCORD_WEBHOOK_URL": SURL + "/api/webhooks/1/alerts-discord",
           "HEALER_SERVICES_FILE": services}
    commands(services)
    srv = Healer(os.path.join(dtest.TMP, "h1"), env).start()

    # ---- malformed bodies, auth, content type ----------------------------------------
    st, ans = post(srv, "/api/alerts/alertmanager", b"{not json")
    check("a body that is not JSON -> 400 invalid_json",
          st == 400 and ans.get("error") == "invalid_json" and ans.get("message"), ans)
    st, ans = post(srv, "/api/alerts/alertmanager", {"version": "4", "status": "firing"})
    check("an Alertmanager body without alerts -> 400 with the reason",
          st == 400 and ans.get("error") == "invalid_payload" and "alerts" in ans.get("message", ""),
          ans)
    st, ans = post(srv, "/api/alerts/alertmanager", dict(am_body([am_alert(POD_OOM, "f00")]),
                                                         version="3"))
    check("another webhook version -> 400 naming the version",
          st == 400 and "version" in ans.get("message", ""), ans)
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([{"status": "firing"}]))
    check("an alert without labels -> 400 naming it",
          st == 400 and "alerts[0]" in ans.get("message", "") and "labels" in ans["message"], ans)
    bad = am_alert(POD_OOM, "f01")
    bad["status"] = "pending"
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([bad]))
    check("an alert whose status is not firing/resolved -> 400",
          st == 400 and "firing or resolved" in ans.get("message", ""), ans)
    st, ans = srv.request("POST", "/api/alerts/alertmanager",
                          json.dumps(am_body([am_alert(POD_OOM, "f02", status="resolved")],
                                             status="resolved")).encode(),
                          {"Content-Type": "application/json",
                           "Authorization": f"Bearer {API_TOKEN}",
                           "User-Agent": "Alertmanager/0.27 caf\xe9"})
    check("an alert whose User-Agent is not UTF-8 is taken (202), not a 500 retried forever",
          st == 202, (st, ans))
    st, ans = post(srv, "/api/alerts/argocd", {"hello": "world"})
    check("an ArgoCD notification without an application -> 400 with the reason",
          st == 400 and ans.get("error") == "invalid_payload"
          and "application" in ans.get("message", ""), ans)
    st, ans = post(srv, "/api/alerts/argocd", {"application": "Shop/../x"})
    check("an application name that is not a Kubernetes name -> 400",
          st == 400 and "Kubernetes name" in ans.get("message", ""), ans)
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_OOM, "f02")]), token=None)
    check("no bearer token -> 401", st == 401, ans)
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_OOM, "f03")]),
                   ctype="text/plain")
    check("a non-JSON content type -> 415", st == 415, ans)

    # ---- a pod with 2 x 20 MB of logs: the server's peak memory barely moves (the logs ----
    # are streamed to their files; before: the bodies and their copies were all in memory,
    # over 100 MB for this one alert, 443 MB for two at once)
    big_text = "".join(f"{i:06d} {'E' * 2000}\n" for i in range(10000))
    kube("POST", "/_stub/seed", {
        "pods": [pod(POD_BIG, "big", "9d0e1f2a3b", [crash_status("api", "Error", 1, 4)])],
        "logs": [{"namespace": APP_NS, "pod": POD_BIG, "container": "api", "text": big_text},
                 {"namespace": APP_NS, "pod": POD_BIG, "container": "api", "previous": True,
                  "text": big_text}]})
    del big_text
    hwm0 = vm_hwm_kib(srv.proc.pid)
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_BIG, "b16b16b1")]))
    tid_big = (ans.get("task_ids") or ["?"])[0]
    wait_for(lambda: processed(srv, [tid_big]), 30)
    hwm1 = vm_hwm_kib(srv.proc.pid)
    big_log = os.path.join(ws, "logs", f"{POD_BIG}-current.log")
    big_size = os.path.getsize(big_log) if os.path.exists(big_log) else 0
    # a sanitizer's quarantine keeps every freed chunk of the stream: the
    # memory bound is the plain build's
    sanitized = (any(k in os.environ for k in ("ASAN_OPTIONS", "TSAN_OPTIONS")) or
                 any(b in os.environ.get("HEALER_BIN", "") for b in ("asan", "tsan")))
    check("a pod alert with 2 x 20 MB of logs -> its files whole, the server's peak resident "
          "memory up by under 40 MB (plain build)",
          st == 202 and coderuns(tid_big) and big_size > 20_000_000 and hwm0 > 0
          and (sanitized or hwm1 - hwm0 < 40 * 1024),
          [hwm0, hwm1, big_size, srv.log_tail()[-800:]])
    post(srv, "/api/alerts/alertmanager",
         am_body([am_alert(POD_BIG, "b16b16b1", status="resolved")], "resolved"))
    wait_state(srv, tid_big, "stopped", 10)

    # ---- an OOMKilled pod alert ---------------------------------------------------------
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_OOM, "a1b2c3d4e5f60718",
                                                                      name="KubePodCrashLooping")]))
    tids = ans.get("task_ids") or []
    check("a firing pod alert -> 202 accepted with its task id",
          st == 202 and ans.get("status") == "accepted" and len(tids) == 1
          and tids[0].startswith("hl-"), ans)
    tid_oom = tids[0] if tids else "?"
    runs = wait_for(lambda: coderuns(tid_oom), 20)
    check("the alert gets one CodeRun", len(runs or []) == 1, srv.log_tail())
    cr = runs[0] if runs else {"metadata": {"labels": {}, "annotations": {}}, "spec": {}}
    logs = os.path.join(ws, "logs")
    files = sorted(os.listdir(logs)) if os.path.isdir(logs) else []
    want = [f"{POD_OOM}-{s}" for s in ("current.log", "describe.txt", "events.yaml", "previous.log")]
    check("the four diagnostic files are written under HEALER_HEAL_WORKSPACE/logs/",
          all(w in files for w in want), files)
    prev = open(os.path.join(logs, f"{POD_OOM}-previous.log")).read() if want[3] in files else ""
    check("the previous log is the previous container's, verbatim", "3,100,000 rows" in prev, prev)
    analysis_path = os.path.join(ws, "alerts", f"A7-{POD_OOM}.md")
    analysis = open(analysis_path).read() if os.path.exists(analysis_path) else ""
    check("the analysis has the heal flow's sections",
          all(h in analysis for h in ("# Pod Failure: " + POD_OOM, "## Summary", "## Error",
                                      "## Root Cause", "## Remediation Required",
                                      "## Relevant Logs")), analysis[:600])
    check("the analysis names OOM with the evidence line",
          "OOMKilled" in analysis and "OOM." in analysis and "runtime_oom" in analysis
          and "describe.txt" in analysis, analysis[:2000])
    check("the analysis lists the four file paths",
          all(os.path.join(logs, w) in analysis for w in want), analysis[-1500:])
    check("the analysis (the CodeRun's prompt) quotes Loki's lines without a URL's password "
          "or healer's token", "dial postgres://" in analysis and "lokipw5521" not in analysis
          and API_TOKEN not in analysis
          and "lokipw5521" not in cr["spec"].get("promptModification", ""), analysis[-3000:])
    labels = cr["metadata"]["labels"]
    check("the CodeRun uses the heal template and the heal-workspace PVC",
          cr["spec"].get("cliConfig", {}).get("settings", {}).get("template") == "heal/claude"
          and cr["spec"].get("cliConfig", {}).get("cliType") == "claude"
          and cr["metadata"].get("annotations", {}).get("healer/workspace-pvc") == "heal-workspace"
          and cr["spec"].get("service") == "heal"
          and labels.get("agents.platform/type") == "heal-remediation", cr.get("spec", {}).get("cliConfig"))
    check("the CodeRun is labelled for the loop and keyed by its pod",
          labels.get("healer/task-id") == tid_oom and labels.get("healer/attempt") == "1"
          and labels.get("target-pod") == POD_OOM and labels.get("alert-type") == "a7"
          and labels.get("app.kubernetes.io/name") == "healer", labels)
    env_ = cr["spec"].get("env", {})
    check("OOM goes to Bolt; the prompt is the analysis; env names the issue file and pod",
          cr["spec"].get("githubApp") == "5DLabs-Bolt"
          and cr["spec"].get("promptModification") == analysis
          and env_.get("HEAL_PROMPT_FILE") == analysis_path and env_.get("TARGET_POD") == POD_OOM
          and env_.get("ALERT_TYPE") == "a7" and env_.get("TASK_ID") == tid_oom, env_)
    t = wait_for(lambda: (lambda d: d if d.get("coderun_name") else None)(task_of(srv, tid_oom)), 10) or {}
    dec = t.get("decision") or {}
    check("the task records the decision: runtime_oom, Bolt, evidence, the diagnostics",
          t.get("state") == "running" and t.get("agent") == "bolt"
          and t.get("failure_type") == "runtime_oom"
          and "OOMKilled" in (dec.get("evidence") or {}).get("line", "")
          and (dec.get("diagnostics") or {}).get("previous", "").endswith("previous.log"), t)
    srcs = {s["name"]: s["state"] for s in dec.get("sources", [])}
    check("the workload's context was gathered in the batch (pods, Loki, Grafana)",
          srcs.get("kubernetes") == "ok" and srcs.get("loki") == "ok"
          and srcs.get("grafana") == "ok", srcs)
    check("the analysis lists the workload's pods with restarts and last termination",
          POD_PANIC in analysis and "restarts 6" in analysis
          and "last terminated: OOMKilled, exit code 137" in analysis, analysis)
    lq = [r for r in dtest.http("GET", SURL + "/_stub/requests")
          if r["path"].startswith("/loki/")]
    check("Loki is asked for the pod's own streams",
          lq and POD_OOM in lq[-1]["query"].get("query", ""), lq[-1:] if lq else lq)

    # ---- the same alert again -> duplicate, one task --------------------------------------
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_OOM, "a1b2c3d4e5f60718")]))
    time.sleep(1.0)
    check("the same firing alert again -> duplicate with the same task",
          st == 202 and ans.get("status") == "duplicate" and ans.get("task_ids") == [tid_oom], ans)
    check("... and still one CodeRun", len(coderuns(tid_oom)) == 1, len(coderuns(tid_oom)))
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request("GET", "/metrics", headers={"Authorization": "Bearer " + API_TOKEN})
    metrics = c.getresponse().read().decode()
    c.close()
    check("/metrics counts the alerts under their source, not 'unknown'",
          re.search(r'^healer_intake_total\{event="alertmanager",status="accepted"\} [1-9]', metrics, re.M)
          and re.search(r'^healer_intake_total\{event="alertmanager",status="duplicate"\} [1-9]', metrics,
                        re.M)
          and 'healer_intake_total{event="unknown"' not in metrics,
          [l for l in metrics.splitlines() if l.startswith("healer_intake_total")])

    # ---- a Rust panic in another pod of the deployment; a non-pod alert in the batch -----
    job_alert = {"status": "firing", "labels": {"alertname": "KubeJobFailed", "namespace": APP_NS,
                                                "job_name": "nightly"},
                 "annotations": {}, "startsAt": "2026-01-01T10:00:00Z", "fingerprint": "0b0b0b"}
    st, ans = post(srv, "/api/alerts/alertmanager",
                   am_body([am_alert(POD_PANIC, "9f8e7d6c5b4a3921"), job_alert]))
    tids = ans.get("task_ids") or []
    per = {a.get("alert") + ":" + a.get("status"): a for a in ans.get("alerts", [])}
    check("a batch: the pod alert is accepted, the job alert skipped (not_pod_alert)",
          st == 202 and ans.get("status") == "accepted" and len(tids) == 1 and tids[0] != tid_oom
          and [a.get("reason") for a in ans.get("alerts", []) if a["status"] == "skipped"]
          == ["not_pod_alert"], ans)
    tid_panic = tids[0] if tids else "?"
    runs = wait_for(lambda: coderuns(tid_panic), 20) or []
    cr2 = runs[0] if runs else {"metadata": {"labels": {}}, "spec": {}}
    p2 = cr2["spec"].get("promptModification", "")
    check("two pods of one deployment -> two tasks, two CodeRuns",
          len(runs) == 1 and len(coderuns(tid_oom)) == 1, [len(runs), len(coderuns(tid_oom))])
    check("a CrashLoopBackOff with a Rust panic -> Rex with the panic line",
          cr2["spec"].get("githubApp") == "5DLabs-Rex" and PANIC_LINE in p2
          and "runtime_crash" in p2, p2[:1500])
    check("the analysis quotes the pod's log without healer's token or a URL's password",
          "DEBUG auth [REDACTED] from https://cfg.example/a" in p2
          and API_TOKEN not in p2 and "pw7731" not in p2, p2[:3000])
    check("the analysis gives the panic's first stack frame",
          "src/handler.rs:27:9 in api::handler::route" in p2, p2[:1500])

    # ---- non-pod alert only -> skipped ---------------------------------------------------
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([dict(job_alert, fingerprint="0c0c0c")]))
    check("a body of non-pod alerts -> 202 skipped with the reason and no task",
          st == 202 and ans.get("status") == "skipped" and ans.get("task_ids") == []
          and ans.get("reason") == "not_pod_alert", ans)

    # ---- a pod name the API cannot have: skipped at intake, not accepted and failed -------
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert("api..x", "0d0d0d")]))
    check("a pod name that is not a DNS subdomain (a..b) -> 202 skipped invalid_pod_name",
          st == 202 and ans.get("status") == "skipped" and ans.get("task_ids") == []
          and ans.get("reason") == "invalid_pod_name", ans)

    # ---- a pod that does not exist (404; its events still list): skipped, no CodeRun -----
    st, ans = post(srv, "/api/alerts/alertmanager",
                   am_body([am_alert("api-7d9f8b6c5d-gone1", "0e0e0e0e")]))
    tid_gone = (ans.get("task_ids") or ["?"])[0]
    tg = wait_for(lambda: (lambda d: d if d.get("state") else None)(task_of(srv, tid_gone)), 15) or {}
    time.sleep(0.5)
    check("a pod that does not exist -> the task is skipped naming it, no CodeRun",
          st == 202 and tg.get("state") == "skipped" and "does not exist" in (tg.get("reason") or "")
          and not coderuns(tid_gone), [tg, [c["metadata"]["name"] for c in coderuns(tid_gone)]])

    # ---- a pod whose workload the service map gives a repository outside the ------------
    # allowlist: skipped, no CodeRun (the alert's labels never name a repository)
    rogue = pod(POD_ROGUE, "rogue", "1a2b3c4d5e", [crash_status("api", "Error", 1, 2)])
    kube("POST", "/_stub/seed", {"pods": [rogue], "logs": [
        {"namespace": APP_NS, "pod": POD_ROGUE, "container": "api", "text": "panic\n"}]})
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_ROGUE, "0f0f0f0f")]))
    tid_rogue = (ans.get("task_ids") or ["?"])[0]
    tr = wait_for(lambda: (lambda d: d if d.get("state") else None)(task_of(srv, tid_rogue)), 15) or {}
    time.sleep(0.5)
    check("a pod alert whose workload maps to a repository outside HEALER_REPOSITORIES -> "
          "the task is skipped (repository_not_allowed), no CodeRun",
          st == 202 and tr.get("state") == "skipped"
          and tr.get("reason") == "repository_not_allowed" and not coderuns(tid_rogue),
          [tr, [c["metadata"]["name"] for c in coderuns(tid_rogue)]])
    rogue_files = [f for f in os.listdir(logs) if f.startswith(POD_ROGUE)] \
        if os.path.isdir(logs) else []
    check("... and none of its diagnostics were fetched or written (before: written first)",
          not rogue_files and not os.path.exists(os.path.join(ws, "alerts", f"A7-{POD_ROGUE}.md")),
          rogue_files)

    # ---- a pod of a Kubernetes system namespace: skipped before anything is read ---------
    st, ans = post(srv, "/api/alerts/alertmanager",
                   am_body([dict(am_alert("kube-proxy-ns5k1", "5e5e5e5e01"),
                                 labels={"alertname": "KubePodCrashLooping",
                                         "namespace": "kube-system", "pod": "kube-proxy-ns5k1"})]))
    check("a pod alert of kube-system (HEALER_ALERT_NAMESPACES unset) -> 202 skipped "
          "namespace_not_allowed, no task",
          st == 202 and ans.get("status") == "skipped" and ans.get("task_ids") == []
          and ans.get("reason") == "namespace_not_allowed", ans)

    # ---- the workload's pods by app.kubernetes.io/instance (a key with dots) -------------
    inst = pod(POD_INST, "inv", "3c4d5e6f7a", [crash_status("api", "Error", 1, 2)],
               labels={"app.kubernetes.io/instance": "inv-e2e", "app.kubernetes.io/name": "inv"})
    kube("POST", "/_stub/seed", {"pods": [inst], "logs": [
        {"namespace": APP_NS, "pod": POD_INST, "container": "api", "text": "Error: boom\n"}]})
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_INST, "1a51a51a")]))
    tid_inst = (ans.get("task_ids") or ["?"])[0]
    ti = wait_for(lambda: (lambda d: d if d.get("coderun_name") else None)(task_of(srv, tid_inst)),
                  20) or {}
    svc = (ti.get("decision") or {}).get("service") or {}
    check("a pod labelled app.kubernetes.io/instance -> its workload's pods are selected by it "
          "(before: app=<workload>)", svc.get("pods") == "app.kubernetes.io/instance=inv-e2e",
          svc)
    check("a pod alert without a service map entry goes to HEALER_HEAL_REPOSITORY",
          ti.get("repository") == "acme/api"
          and (coderuns(tid_inst) or [{"spec": {}}])[0]["spec"].get("repositoryUrl")
          == "https://github.com/acme/api", [ti.get("repository")])
    for c in coderuns(tid_inst):  # its slot frees for what follows
        set_phase(c["metadata"]["name"], "Succeeded")

    # ---- resolved with, or before, its firing: no CodeRun for a resolved alert -----------
    st, ans = post(srv, "/api/alerts/alertmanager",
                   am_body([am_alert(POD_CART1, "c4c4c4c401"),
                            am_alert(POD_CART1, "c4c4c4c401", status="resolved")]))
    tid_both = (ans.get("task_ids") or ["?"])[0]
    st2, ans2 = post(srv, "/api/alerts/alertmanager",
                     am_body([am_alert(POD_CART2, "c4c4c4c402", status="resolved")], "resolved"))
    tid_late = (ans2.get("task_ids") or ["?"])[0]
    wait_for(lambda: [d for d in srv.request("GET", "/api/status")[1].get("recent", [])
                      if d.get("task_id") == tid_late and d.get("state") == "processed"], 15)
    st3, ans3 = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_CART2, "c4c4c4c402")]))

    def settled():
        ds = [d for d in srv.request("GET", "/api/status")[1].get("recent", [])
              if d.get("task_id") in (tid_both, tid_late)]
        return len(ds) == 4 and all(d.get("state") == "processed" for d in ds)
    wait_for(settled, 20)
    time.sleep(0.5)
    tb, tl = task_of(srv, tid_both), task_of(srv, tid_late)
    check("firing and resolved in one body -> the task ends (stopped or skipped), no CodeRun",
          st == 202 and tb.get("state") in ("stopped", "skipped") and not coderuns(tid_both),
          [tb, [c["metadata"]["name"] for c in coderuns(tid_both)]])
    check("resolved before its firing arrived -> skipped; the late firing makes no CodeRun",
          st2 == 202 and st3 == 202 and ans3.get("task_ids") == [tid_late]
          and tl.get("state") == "skipped"
          and "resolved before its firing" in (tl.get("reason") or "")
          and not coderuns(tid_late),
          [tl, [c["metadata"]["name"] for c in coderuns(tid_late)]])

    # ---- a stack frame of long non-ASCII names: cut between characters --------------------
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_CART4, "c4c4c4c405")]))
    tid_u = (ans.get("task_ids") or ["?"])[0]
    runs_u = wait_for(lambda: coderuns(tid_u), 15) or []
    tu = wait_for(lambda: (lambda d: d if d.get("coderun_name") else None)(task_of(srv, tid_u)),
                  10) or task_of(srv, tid_u)
    check("a panic at a long non-ASCII location -> a CodeRun, and the frame in its decision",
          len(runs_u) == 1 and tu.get("coderun_name")
          and "\u00e9" * 20 in ((tu.get("decision") or {}).get("first_frame") or ""),
          [len(runs_u), tu.get("state"), tu.get("reason")])

    # ---- a 253-character pod name: its files, analysis and CodeRun agree on one stem ----
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_LONG, "c4c4c4c406")]))
    tid_l = (ans.get("task_ids") or ["?"])[0]
    runs_l = wait_for(lambda: coderuns(tid_l), 15) or []
    long_logs = sorted(f for f in os.listdir(os.path.join(ws, "logs")) if f.startswith(STEM_LONG))
    long_analysis = os.path.join(ws, "alerts", f"A7-{STEM_LONG}.md")
    env_l = runs_l[0]["spec"].get("env", {}) if runs_l else {}
    check("a 253-character pod name -> its diagnostics and A7 analysis under the shortened"
          " stem, and a CodeRun pointing at them",
          len(runs_l) == 1 and os.path.isfile(long_analysis)
          and long_logs == [f"{STEM_LONG}-current.log", f"{STEM_LONG}-describe.txt",
                            f"{STEM_LONG}-events.yaml"]
          and env_l.get("HEAL_PROMPT_FILE") == long_analysis
          and env_l.get("HEAL_LOG_FILE") == f"/workspace/logs/{STEM_LONG}-current.log"
          and os.path.join(ws, "logs", f"{STEM_LONG}-current.log") in open(long_analysis).read(),
          [len(runs_l), long_logs, env_l, task_of(srv, tid_l).get("reason")])

    # ---- two alerts of one pod at once (slow context): one CodeRun, the other skipped ------
    set_routes(loki_delay_ms=1000)
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_CART3, "c4c4c4c403")]))
    time.sleep(0.2)
    st2, ans2 = post(srv, "/api/alerts/alertmanager",
                     am_body([am_alert(POD_CART3, "c4c4c4c404", name="KubePodNotReady")]))
    tids3 = (ans.get("task_ids") or []) + (ans2.get("task_ids") or [])

    wait_for(lambda: processed(srv, tids3), 20)
    set_routes()
    runs3 = [c for c in coderuns() if c["metadata"]["labels"].get("target-pod") == POD_CART3]
    reasons = [task_of(srv, t).get("reason") or "" for t in tids3]
    check("two alerts of one pod handled at once -> one CodeRun; the other skipped naming it",
          len(tids3) == 2 and len(runs3) == 1
          and sum("is still active for pod" in r for r in reasons) == 1,
          [[c["metadata"]["name"] for c in runs3], reasons])

    # ---- same-named pods of two namespaces at once (slow context): a CodeRun each; the -----
    # second's files take the namespace-qualified stem, so it never rewrites what the
    # first's agent reads (before: the staging alert was skipped as "still active for
    # pod", and its pod never healed)
    twins = []
    for ns in (APP_NS, "staging"):
        p = pod(POD_TWIN, "cart", "6f7a8b9c0d", [crash_status("api", "Error", 1, 3)])
        p["metadata"]["namespace"] = ns
        twins.append(p)
    kube("POST", "/_stub/seed", {
        "pods": twins,
        "logs": [{"namespace": ns, "pod": POD_TWIN, "container": "api",
                  "text": f"Error: connection refused (os error 111) [{ns} twin]\n"}
                 for ns in (APP_NS, "staging")]})
    set_routes(loki_delay_ms=1000)
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_TWIN, "e5e5e5e501")]))
    time.sleep(0.2)
    staging = am_alert(POD_TWIN, "e5e5e5e502")
    staging["labels"]["namespace"] = "staging"
    st2, ans2 = post(srv, "/api/alerts/alertmanager", am_body([staging]))
    tids4 = (ans.get("task_ids") or []) + (ans2.get("task_ids") or [])

    wait_for(lambda: processed(srv, tids4), 20)
    set_routes()
    runs4 = [c for c in coderuns() if c["metadata"]["labels"].get("target-pod") == POD_TWIN]
    reasons4 = [task_of(srv, t).get("reason") or "" for t in tids4]
    twin_log = os.path.join(ws, "logs", f"{POD_TWIN}-current.log")
    twin_text = open(twin_log).read() if os.path.exists(twin_log) else ""
    stage_stem = f"staging_{POD_TWIN}"
    stage_log = os.path.join(ws, "logs", f"{stage_stem}-current.log")
    stage_text = open(stage_log).read() if os.path.exists(stage_log) else ""
    by_task = {c["metadata"]["labels"].get("healer/task-id"): c for c in runs4}
    run_prod, run_stage = by_task.get(tids4[0], {}), by_task.get(tids4[-1], {})
    check("same-named pods of two namespaces at once -> a CodeRun each, labelled with its "
          "namespace; the second's files under the namespace-qualified stem, the first's "
          "untouched",
          len(tids4) == 2 and len(runs4) == 2 and run_prod and run_stage
          and run_prod["metadata"]["labels"].get("target-namespace") == APP_NS
          and run_stage["metadata"]["labels"].get("target-namespace") == "staging"
          and not any("is still active" in r for r in reasons4)
          and f"[{APP_NS} twin]" in twin_text and "[staging twin]" not in twin_text
          and "[staging twin]" in stage_text
          and run_stage["spec"]["env"].get("HEAL_LOG_FILE")
          == f"/workspace/logs/{stage_stem}-current.log"
          and run_prod["spec"]["env"].get("HEAL_LOG_FILE")
          == f"/workspace/logs/{POD_TWIN}-current.log"
          and os.path.exists(os.path.join(ws, "alerts", f"A7-{stage_stem}.md"))
          and f"{stage_stem}-current.log" in run_stage["spec"].get("promptModification", ""),
          [[c["metadata"]["name"] for c in runs4], reasons4, twin_text, stage_text,
           [c["spec"]["env"].get("HEAL_LOG_FILE") for c in runs4]])
    # both resolve: their CodeRuns (not started) go, and free their slots
    for fp, ns in (("e5e5e5e501", APP_NS), ("e5e5e5e502", "staging")):
        done = am_alert(POD_TWIN, fp, status="resolved")
        done["labels"]["namespace"] = ns
        post(srv, "/api/alerts/alertmanager", am_body([done], "resolved"))
    for t in tids4:
        wait_state(srv, t, "stopped", 10)

    # ---- resolved: the panic's CodeRun never started -> deleted, task stopped ------------
    st, ans = post(srv, "/api/alerts/alertmanager",
                   am_body([am_alert(POD_PANIC, "9f8e7d6c5b4a3921", status="resolved")], "resolved"))
    check("a resolved alert -> 202 accepted naming the same task",
          st == 202 and ans.get("status") == "accepted" and ans.get("task_ids") == [tid_panic], ans)
    ok = wait_state(srv, tid_panic, "stopped")
    t2 = task_of(srv, tid_panic)
    name2 = cr2["metadata"].get("name", "?")
    deleted = [d for d in (kube("GET", "/_stub/deleted") or []) if d.get("name") == name2]
    check("resolved -> the task ends stopped and the CodeRun that had not started is deleted",
          ok and deleted and "resolved" in (t2.get("reason") or "")
          and (t2.get("attempts") or [{}])[0].get("outcome") == "stopped", [t2, deleted])

    # ---- the loop: a failed heal CodeRun -> attempt 2; succeeded -> the task succeeds ----
    name1 = cr["metadata"].get("name", "?")
    set_phase(name1, "Running")
    set_phase(name1, "Failed", "container exited 1: could not find the leak")
    runs = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(coderuns(tid_oom)), 20) or []
    second = runs[1] if len(runs) == 2 else {"metadata": {"labels": {}}, "spec": {}}
    p3 = second["spec"].get("promptModification", "")
    check("a failed heal CodeRun -> the loop makes attempt 2 through the alert's own handler",
          len(runs) == 2 and second["metadata"]["labels"].get("healer/attempt") == "2"
          and second["spec"].get("cliConfig", {}).get("settings", {}).get("template")
          == "heal/claude", [c["metadata"]["labels"] for c in runs])
    check("attempt 2's analysis carries attempt 1 and what its CodeRun said",
          "## Previous Attempts" in p3 and "could not find the leak" in p3
          and "This is attempt 2" in p3, p3[-1500:])
    # a Succeeded heal CodeRun is no verdict while the alert fires: past the
    # verify timeout the pod judges (still crash looping: attempt 3), and the
    # alert resolving ends the task succeeded (before: succeeded at once, the
    # firing alert's repeats answered duplicate for good)
    set_phase(second["metadata"].get("name", "?"), "Succeeded")
    verifying = wait_state(srv, tid_oom, "verifying")
    time.sleep(0.5)
    check("a succeeded heal CodeRun while the alert still fires: the task verifies",
          verifying and task_of(srv, tid_oom).get("state") == "verifying", task_of(srv, tid_oom))
    dtest.store_exec(srv.data_dir, "UPDATE attempts SET agent_done_ms = agent_done_ms - ?"
                     " WHERE task_id = ? AND n = 2", (46 * 60000, tid_oom))
    dtest.store_exec(srv.data_dir, "UPDATE remediation_tasks SET next_check_ms = ?"
                     " WHERE task_id = ?", (int(time.time() * 1000), tid_oom))
    runs = wait_for(lambda: (lambda r: r if len(r) == 3 else None)(coderuns(tid_oom)), 20) or []
    a2 = next((a for a in task_of(srv, tid_oom).get("attempts", []) if a.get("number") == 2), {})
    check("... past the verify timeout its pod still crash loops: ci_still_failing, attempt 3",
          len(runs) == 3 and a2.get("outcome") == "ci_still_failing"
          and "pod still fails" in (a2.get("reason") or ""), [a2, len(runs)])
    third = runs[2] if len(runs) == 3 else {"metadata": {"name": "?"}}
    set_phase(third["metadata"]["name"], "Succeeded")
    wait_state(srv, tid_oom, "verifying")
    st, ans = post(srv, "/api/alerts/alertmanager",
                   am_body([am_alert(POD_OOM, "a1b2c3d4e5f60718", status="resolved")], "resolved"))
    check("... and the alert resolving after the CodeRun Succeeded ends the task succeeded",
          st == 202 and wait_state(srv, tid_oom, "succeeded"), task_of(srv, tid_oom))

    def oom_memories():
        con = sqlite3.connect(os.path.join(srv.data_dir, "healer.db"), timeout=10)
        n = con.execute("SELECT COUNT(*) FROM memories WHERE task_id = ?",
                        (tid_oom,)).fetchone()[0]
        con.close()
        return n
    check("... and that task, succeeded by its alert resolving, is remembered",
          wait_for(lambda: oom_memories() == 1, 10), oom_memories())

    # ---- one active CodeRun per pod holds for the loop's retries -------------------------
    # (before: the retry never looked, and made a second active CodeRun on the pod
    # when another alert's task had made one after this task's CodeRun failed)
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_GUARD1, "d1d1d1d101")]))
    tid_g1 = (ans.get("task_ids") or ["?"])[0]
    runs = wait_for(lambda: coderuns(tid_g1), 15) or []
    g1 = runs[0] if runs else {"metadata": {"name": "?", "labels": {}}, "spec": {}}
    wait_for(lambda: task_of(srv, tid_g1).get("coderun_name"), 10)
    seed_other_run(g1, "heal-other-g1")
    set_phase(g1["metadata"]["name"], "Running")
    set_phase(g1["metadata"]["name"], "Failed", "container exited 1: G1-MARKER")
    wait_for(lambda: task_of(srv, tid_g1).get("state") != "running", 20)
    time.sleep(0.5)
    tg1 = task_of(srv, tid_g1)
    a2 = ((tg1.get("attempts") or [{}, {}]) + [{}])[1]
    on_pod = [c["metadata"]["name"] for c in coderuns()
              if c["metadata"]["labels"].get("target-pod") == g1["metadata"]["labels"].get(
                  "target-pod")]
    check("a retry while another task's CodeRun is active for the pod -> no second CodeRun; "
          "the task ends stopped, superseded, naming the other CodeRun",
          len(coderuns(tid_g1)) == 1 and sorted(on_pod) == sorted([g1["metadata"]["name"],
                                                                    "heal-other-g1"])
          and tg1.get("state") == "stopped" and "superseded" in (tg1.get("reason") or "")
          and "heal-other-g1" in (tg1.get("reason") or "")
          and a2.get("outcome") == "stopped" and a2.get("coderun") is None,
          [tg1, on_pod, srv.log_tail()[-1500:]])
    lines = [json.loads(x) for x in open(os.path.join(srv.data_dir, "server.log"),
                                         errors="replace") if x.startswith("{")]
    said = [x.get("msg") for x in lines if x.get("task_id") == tid_g1
            and str(x.get("msg", "")).startswith("next attempt")]
    check("... and the log says the superseded retry was not started (not 'next attempt "
          "started')", said == ["next attempt not started"]
          and any(x.get("outcome") == "superseded" for x in lines
                  if x.get("msg") == "next attempt not started"), said)
    kube("DELETE", f"/apis/agents.platform/v1/namespaces/{NS}/coderuns/heal-other-g1")

    # ---- a running CodeRun whose labels were edited still counts for its pod ----------
    # (before: the label selectors missed it and another alert made a second one)
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_GUARD2, "d2d2d2d201")]))
    tid_g2 = (ans.get("task_ids") or ["?"])[0]
    runs = wait_for(lambda: coderuns(tid_g2), 15) or []
    ng2 = runs[0]["metadata"]["name"] if runs else "?"
    wait_for(lambda: task_of(srv, tid_g2).get("coderun_name"), 10)
    set_phase(ng2, "Running")
    # kubectl label coderun NAME target-pod- remediation-
    relabel(ng2, {"target-pod": None, "remediation": None})
    st, ans = post(srv, "/api/alerts/alertmanager",
                   am_body([am_alert(POD_GUARD2, "d2d2d2d202", name="KubePodNotReady")]))
    tid_g2b = (ans.get("task_ids") or ["?"])[0]
    wait_for(lambda: processed(srv, [tid_g2, tid_g2b]), 20)
    time.sleep(0.3)
    tg2b = task_of(srv, tid_g2b)
    check("a running CodeRun relabelled, then another alert of its pod -> no second CodeRun; "
          "the alert is skipped naming it",
          st == 202 and not coderuns(tid_g2b)
          and [c["metadata"]["name"] for c in coderuns()
               if c["spec"].get("env", {}).get("TARGET_POD") == POD_GUARD2] == [ng2]
          and f"CodeRun {ng2} is still active for pod" in (tg2b.get("reason") or ""),
          [tg2b, [c["metadata"]["name"] for c in coderuns(tid_g2b)]])

    # ---- the API failing: the alert is kept and retried until it answers -----------------
    kube("POST", "/_stub/config", {"rules": [
        {"method": "GET", "path": f"/api/v1/namespaces/{APP_NS}/pods/{POD_FLAKY}", "status": 503},
        {"method": "GET", "path": f"/api/v1/namespaces/{APP_NS}/events", "status": 503}]})
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_FLAKY, "77aa88bb")]))
    tid_flaky = (ans.get("task_ids") or ["?"])[0]
    kept = wait_for(lambda: [d for d in srv.request("GET", "/api/status")[1].get("recent", [])
                             if d.get("task_id") == tid_flaky and d.get("state") == "received"
                             and d.get("claims", 0) >= 2], 15)
    check("the Kubernetes API failing -> the alert is kept for retry, no task yet",
          st == 202 and kept and not coderuns(tid_flaky) and not task_of(srv, tid_flaky),
          srv.request("GET", "/api/status")[1].get("recent"))
    kube("POST", "/_stub/config", {"rules": []})
    runs = wait_for(lambda: coderuns(tid_flaky), 30) or []
    check("... and remediated once the API answers", len(runs) == 1, srv.log_tail())
    if runs:
        set_phase(runs[0]["metadata"]["name"], "Running")
        wait_for(lambda: (task_of(srv, tid_flaky).get("attempts") or [{}])[0].get("phase")
                 != "pending", 5)
    st, ans = post(srv, "/api/alerts/alertmanager",
                   am_body([am_alert(POD_FLAKY, "77aa88bb", status="resolved")], "resolved"))
    ok = wait_state(srv, tid_flaky, "stopped")
    gone = [d for d in (kube("GET", "/_stub/deleted") or [])
            if runs and d.get("name") == runs[0]["metadata"]["name"]]
    check("a resolution while the CodeRun runs ends the task and leaves the run to finish",
          ok and not gone and "left to finish" in (task_of(srv, tid_flaky).get("reason") or ""),
          task_of(srv, tid_flaky))

    # ---- a 403 for the pod (the Role does not cover its namespace): skipped at once, ------
    # "forbidden" (before: retried like an outage for an hour); a 401 is still retried
    kube("POST", "/_stub/config", {"rules": [
        {"method": "GET", "path": f"/api/v1/namespaces/{APP_NS}/pods/{POD_FORBID}",
         "status": 403},
        {"method": "GET", "path": f"/api/v1/namespaces/{APP_NS}/pods/{POD_UNAUTH}",
         "status": 401}]})
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_FORBID, "4f3f2f1f")]))
    tid_forbid = (ans.get("task_ids") or ["?"])[0]
    st2, ans2 = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_UNAUTH, "4a3a2a1a")]))
    tid_unauth = (ans2.get("task_ids") or ["?"])[0]
    ok = wait_state(srv, tid_forbid, "skipped", 10)
    tf = task_of(srv, tid_forbid)
    recent = srv.request("GET", "/api/status")[1].get("recent", [])
    claims = [d.get("claims", 0) for d in recent if d.get("task_id") == tid_forbid]
    check("a 403 for the alert's pod -> skipped at once, reason forbidden, no retry, no "
          "CodeRun, a warning naming the namespace",
          st == 202 and ok and tf.get("reason") == "forbidden" and claims and max(claims) <= 1
          and not coderuns(tid_forbid)
          and any("Role does not cover its namespace" in ln and APP_NS in ln
                  and POD_FORBID in ln for ln in server_log(srv)),
          [tf, recent, srv.log_tail()[-1500:]])
    kept = wait_for(lambda: [d for d in srv.request("GET", "/api/status")[1].get("recent", [])
                             if d.get("task_id") == tid_unauth and d.get("state") == "received"
                             and d.get("claims", 0) >= 2], 15)
    check("a 401 for the alert's pod -> kept for retry (a token being rotated)",
          st2 == 202 and kept and not task_of(srv, tid_unauth),
          srv.request("GET", "/api/status")[1].get("recent"))
    kube("POST", "/_stub/config", {"rules": []})

    # ---- the API refusing the heal CodeRun (422): escalated at once, saying why ----------
    # (before: the attempt stayed unfinished and the task "running" until the
    # attempt timeout, holding a CodeRun slot)
    cr_path = f"/apis/agents.platform/v1/namespaces/{NS}/coderuns"
    kube("POST", "/_stub/config", {"rules": [{
        "method": "POST", "path": cr_path, "status": 422,
        "body": {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
                 "reason": "Invalid", "message": "admission webhook denied the request: "
                 "no heal runs in this namespace"}}]})
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_REFUSED, "5e5e6f6f")]))
    tid_ref = (ans.get("task_ids") or ["?"])[0]
    ok = wait_state(srv, tid_ref, "escalated", 20)
    tr = task_of(srv, tid_ref)
    at = (tr.get("attempts") or [{}])[0]
    check("a heal CodeRun the API refuses (422) -> the task escalated at once, the attempt "
          "quoting the API", ok and at.get("phase") == "done" and at.get("coderun") is None
          and "admission webhook denied the request" in (at.get("reason") or "")
          and not coderuns(tid_ref), [tr, srv.log_tail()[-1500:]])
    kube("POST", "/_stub/config", {"rules": []})

    # ---- ArgoCD ------------------------------------------------------------------------
    st, ans = post(srv, "/api/alerts/argocd", {"application": {
        "metadata": {"name": "shop", "namespace": "argocd"},
        "spec": ARGO_APP["spec"],
        "status": {"health": {"status": "Degraded", "lastTransitionTime": "2026-01-01T09:00:00Z"},
                   "sync": {"status": "OutOfSync"}}}})
    tids = ans.get("task_ids") or []
    check("an ArgoCD Degraded notification -> 202 accepted with a task",
          st == 202 and ans.get("status") == "accepted" and len(tids) == 1, ans)
    tid_argo = tids[0] if tids else "?"
    runs = wait_for(lambda: coderuns(tid_argo), 20) or []
    cr3 = runs[0] if runs else {"metadata": {"labels": {}}, "spec": {}}
    p4 = cr3["spec"].get("promptModification", "")
    check("... -> a Bolt CodeRun labelled with the application",
          len(runs) == 1 and cr3["spec"].get("githubApp") == "5DLabs-Bolt"
          and cr3["metadata"]["labels"].get("healer/argocd-app") == "shop"
          and cr3["spec"].get("repositoryUrl") == "https://github.com/acme/shop-deploy",
          [cr3["metadata"].get("labels"), cr3["spec"].get("repositoryUrl")])
    check("the prompt carries the application's conditions from the ArgoCD API",
          "ArgoCD Application Fix" in p4 and 'ConfigMap "shop-config" not found' in p4
          and "SyncError" in p4, p4[:3000])
    check("the prompt carries the failed and unhealthy resources (resource tree too)",
          "spec.template.spec.containers[0].image: Required value" in p4
          and "shop-6c5d4b3a2-zz9yy" in p4 and "manifest unknown" in p4, p4[:3000])
    check("the prompt has Grafana panel links of the mapped dashboard",
          "/d/shop-overview?" in p4 and "/d/api-overview?viewPanel=4" in p4, p4[-3000:])
    ta = wait_for(lambda: (lambda d: d if d.get("coderun_name") else None)(task_of(srv, tid_argo)), 10) or {}
    check("the ArgoCD task records Bolt and an infrastructure type",
          ta.get("agent") == "bolt" and ta.get("failure_type") in (
              "argocd_sync", "kubernetes_manifest", "helm", "yaml_syntax", "docker_build"), ta)
    # two notifications of one application at once (slow context): one CodeRun
    set_routes(loki_delay_ms=1000)
    billing = {"metadata": {"name": "billing", "namespace": "argocd"},
               "spec": {"project": "default",
                        "source": {"repoURL": "https://github.com/acme/billing.git"}},
               "status": {"health": {"status": "Degraded",
                                     "lastTransitionTime": "2026-01-01T09:00:00Z"},
                          "sync": {"status": "OutOfSync", "revision": "9f8e"}}}
    failed = json.loads(json.dumps(billing))
    failed["status"]["operationState"] = {"phase": "Failed", "message": "apply failed",
                                          "startedAt": "2026-01-01T08:59:00Z"}
    st, ans = post(srv, "/api/alerts/argocd", {"application": failed})
    time.sleep(0.2)
    st2, ans2 = post(srv, "/api/alerts/argocd", {"application": billing})
    tids_b = (ans.get("task_ids") or []) + (ans2.get("task_ids") or [])

    wait_for(lambda: processed(srv, tids_b), 20)
    set_routes()
    runs_b = [c for c in coderuns() if c["metadata"]["labels"].get("healer/argocd-app") == "billing"]
    reasons = [task_of(srv, t).get("reason") or "" for t in tids_b]
    check("a failed sync and a Degraded notice of one application at once -> one CodeRun",
          len(tids_b) == 2 and len(runs_b) == 1
          and sum("is still active for application" in r for r in reasons) == 1,
          [[c["metadata"]["name"] for c in runs_b], reasons])
    # applications in any namespace may share a name, and names (up to 253
    # characters) may share their first 63: each is its own application with
    # its own CodeRun (before: the second was skipped, "still active")
    long_a = "platform-observability-stack-production-us-east-1-cluster-a-" + "p" * 8 + "-prom"
    long_b = long_a[:-len("prom")] + "alertmanager"
    tids_n = []
    for ns, name in (("team-a", "web"), ("team-b", "web"), ("argocd", long_a),
                     ("argocd", long_b)):
        d = json.loads(json.dumps(billing))
        d["metadata"].update(name=name, namespace=ns)
        st, ans = post(srv, "/api/alerts/argocd", {"application": d})
        tids_n += ans.get("task_ids") or []
    wait_for(lambda: processed(srv, tids_n), 20)
    reasons_n = [task_of(srv, t).get("reason") or "" for t in tids_n]
    made = {}

    def each_made():
        # each CodeRun made ends at once (its slot frees: one waiting for a
        # slot gets it, under HEALER_MAX_ACTIVE_CODERUNS)
        for t in tids_n:
            n = task_of(srv, t).get("coderun_name")
            if n and t not in made:
                made[t] = n
                set_phase(n, "Succeeded")
        return len(made) == len(tids_n)
    wait_for(each_made, 30)
    check("same-named applications of two namespaces, and two long names alike in their "
          "first 63 characters: a CodeRun each",
          len(tids_n) == 4 and len(set(made.values())) == 4
          and not any("still active" in r for r in reasons_n), [made, reasons_n])
    # one active CodeRun per application holds for the loop's retries (before:
    # the retry never looked and made a second one)
    def app_doc(name, failed=False):
        d = json.loads(json.dumps(billing))
        d["metadata"]["name"] = name
        d["spec"]["source"]["repoURL"] = f"https://github.com/acme/{name}.git"
        if failed:
            d["status"]["operationState"] = {"phase": "Failed", "message": "apply failed",
                                             "startedAt": "2026-01-01T08:59:00Z"}
        return d

    def app_runs(name):
        return [c["metadata"]["name"] for c in coderuns()
                if c["metadata"]["labels"].get("healer/argocd-app") == name]
    st, ans = post(srv, "/api/alerts/argocd", {"application": app_doc("orders")})
    tid_o = (ans.get("task_ids") or ["?"])[0]
    runs = wait_for(lambda: coderuns(tid_o), 20) or []
    o1 = runs[0] if runs else {"metadata": {"name": "?", "labels": {}}, "spec": {}}
    wait_for(lambda: task_of(srv, tid_o).get("coderun_name"), 10)
    seed_other_run(o1, "argo-other-orders")
    set_phase(o1["metadata"]["name"], "Running")
    set_phase(o1["metadata"]["name"], "Failed", "agent exited 1")
    wait_for(lambda: task_of(srv, tid_o).get("state") != "running", 20)
    time.sleep(0.5)
    to = task_of(srv, tid_o)
    check("an ArgoCD retry while another task's CodeRun is active for the application -> no "
          "second CodeRun; the task ends stopped, superseded",
          len(coderuns(tid_o)) == 1
          and sorted(app_runs("orders")) == sorted([o1["metadata"]["name"], "argo-other-orders"])
          and to.get("state") == "stopped" and "argo-other-orders" in (to.get("reason") or ""),
          [to, app_runs("orders"), srv.log_tail()[-1500:]])
    # a running CodeRun of an application relabelled: another notification of it
    # still finds it (before: the label selector missed it, a second one was made)
    st, ans = post(srv, "/api/alerts/argocd", {"application": app_doc("invoices")})
    tid_i = (ans.get("task_ids") or ["?"])[0]
    runs = wait_for(lambda: coderuns(tid_i), 20) or []
    ni = runs[0]["metadata"]["name"] if runs else "?"
    wait_for(lambda: task_of(srv, tid_i).get("coderun_name"), 10)
    set_phase(ni, "Running")
    relabel(ni, {"healer/argocd-app": None})
    st, ans = post(srv, "/api/alerts/argocd", {"application": app_doc("invoices", failed=True)})
    tid_i2 = (ans.get("task_ids") or ["?"])[0]
    wait_for(lambda: processed(srv, [tid_i, tid_i2]), 20)
    time.sleep(0.3)
    ti2 = task_of(srv, tid_i2)
    check("a running ArgoCD CodeRun relabelled, then another notification of the application "
          "-> no second CodeRun, skipped naming it",
          tid_i2 != tid_i and not coderuns(tid_i2)
          and f"CodeRun {ni} is still active for application" in (ti2.get("reason") or ""),
          [ti2, [c["metadata"]["name"] for c in coderuns(tid_i2)]])
    # an application whose CodeRun the API refuses (403: no RBAC for coderuns)
    kube("POST", "/_stub/config", {"rules": [{
        "method": "POST", "path": f"/apis/agents.platform/v1/namespaces/{NS}/coderuns",
        "status": 403}]})
    ledger = {"metadata": {"name": "ledger", "namespace": "argocd"},
              "spec": {"project": "default",
                       "source": {"repoURL": "https://github.com/acme/ledger.git"}},
              "status": {"health": {"status": "Degraded",
                                    "lastTransitionTime": "2026-01-01T09:00:00Z"},
                         "sync": {"status": "Synced"},
                         # ArgoCD quoting a repository URL with its password
                         "operationState": {"phase": "Running", "message":
                                            "fetching https://git:ledgerpw4471@git.example"
                                            "/acme/ledger.git"}}}
    st, ans = post(srv, "/api/alerts/argocd", {"application": ledger})
    tid_l = (ans.get("task_ids") or ["?"])[0]
    # a refusal once it persists: the fifth create, 15 s of pauses on
    ok = wait_state(srv, tid_l, "escalated", 60)
    tl = task_of(srv, tid_l)
    check("an ArgoCD CodeRun the API refuses (403) -> the task escalated, saying why",
          ok and "status 403" in ((tl.get("attempts") or [{}])[0].get("reason") or "")
          and not [c for c in coderuns()
                   if c["metadata"]["labels"].get("healer/argocd-app") == "ledger"],
          [tl, srv.log_tail()[-1500:]])
    sent = wait_for(lambda: [r for r in dtest.http("GET", SURL + "/_stub/requests")
                             if r["path"] == "/api/webhooks/1/alerts-discord"
                             and "ledger" in json.dumps(r.get("body"))], 20) or []
    check("the escalation of that application quotes ArgoCD's message without the URL's "
          "password", sent and "git.example/acme/ledger.git" in json.dumps(sent)
          and "ledgerpw4471" not in json.dumps(sent), json.dumps(sent)[:2000])

    kube("POST", "/_stub/config", {"rules": []})
    st, ans = post(srv, "/api/alerts/argocd", {"application": "shop", "namespace": "argocd",
                                               "health_status": "Healthy", "sync_status": "Synced"})
    check("a healthy application (flat form) -> skipped, no task",
          st == 202 and ans.get("status") == "skipped" and ans.get("reason") == "not_degraded"
          and ans.get("task_ids") == [], ans)
    # an Application whose repoURL names a repository outside HEALER_REPOSITORIES:
    # skipped, no task, no CodeRun (before: accepted, and a Bolt CodeRun was
    # made for evil/x)
    evil = app_doc("evil")
    evil["spec"]["source"]["repoURL"] = "https://github.com/evil/x.git"
    st, ans = post(srv, "/api/alerts/argocd", {"application": evil})
    time.sleep(1.0)
    check("an ArgoCD application of a repository outside HEALER_REPOSITORIES -> skipped "
          "(repository_not_allowed), no task, no CodeRun",
          st == 202 and ans.get("status") == "skipped"
          and ans.get("reason") == "repository_not_allowed" and ans.get("task_ids") == []
          and not app_runs("evil")
          and not [c for c in coderuns() if "evil/x" in json.dumps(c.get("spec"))],
          [ans, app_runs("evil")])
    # Degraded -> Healthy -> Degraded at the same revision, from an Argo CD that
    # sends no health.lastTransitionTime (before 2.14): while the first task
    # works a notification is its duplicate; after it ended one starts a new
    # task (before: a duplicate of the first episode, never remediated)
    flap = app_doc("flap")
    del flap["status"]["health"]["lastTransitionTime"]
    st, ans = post(srv, "/api/alerts/argocd", {"application": flap})
    tid_f1 = (ans.get("task_ids") or ["?"])[0]
    runs_f = wait_for(lambda: coderuns(tid_f1), 20) or []
    wait_for(lambda: task_of(srv, tid_f1).get("coderun_name"), 10)
    st2, ans2 = post(srv, "/api/alerts/argocd", {"application": flap})
    check("a Degraded notification again while its task runs -> duplicate, one task",
          st == 202 and ans.get("status") == "accepted" and len(runs_f) == 1
          and st2 == 202 and ans2.get("status") == "duplicate"
          and ans2.get("task_ids") == [tid_f1], [ans, ans2])
    if runs_f:
        set_phase(runs_f[0]["metadata"]["name"], "Succeeded")
    ended = wait_state(srv, tid_f1, "succeeded", 20)
    st3, ans3 = post(srv, "/api/alerts/argocd", {"application": flap})
    tid_f2 = (ans3.get("task_ids") or ["?"])[0]
    runs_f2 = wait_for(lambda: coderuns(tid_f2), 20) or []
    st4, ans4 = post(srv, "/api/alerts/argocd", {"application": flap})
    check("the same Degraded notification after its task ended -> a new task and CodeRun; "
          "again -> a duplicate of the new one",
          ended and st3 == 202 and ans3.get("status") == "accepted" and tid_f2 != tid_f1
          and len(runs_f2) == 1 and sorted(app_runs("flap")) == sorted(
              [runs_f[0]["metadata"]["name"] if runs_f else "?", runs_f2[0]["metadata"]["name"]
               if runs_f2 else "?"])
          and ans4.get("status") == "duplicate" and ans4.get("task_ids") == [tid_f2],
          [ended, ans3, ans4, app_runs("flap")])
    if runs_f2:  # its slot frees for what follows
        set_phase(runs_f2[0]["metadata"]["name"], "Succeeded")
        wait_state(srv, tid_f2, "succeeded", 20)
    # Alertmanager's truncatedAlerts (the receiver's max_alerts cut the group):
    # said in the answer, the log and /metrics (before: ignored)
    cut = am_body([{"status": "firing", "labels": {"alertname": "KubeJobFailed",
                                                     "namespace": APP_NS, "job_name": "cut"},
                    "annotations": {}, "startsAt": "2026-01-01T10:00:00Z",
                    "fingerprint": "c0c0c0"}])
    cut["truncatedAlerts"] = 7
    cut["groupKey"] = '{}:{alertname="KubeJobFailed"}'
    st, ans = post(srv, "/api/alerts/alertmanager", cut)
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request("GET", "/metrics", headers={"Authorization": "Bearer " + API_TOKEN})
    metrics = c.getresponse().read().decode()
    c.close()
    log = open(os.path.join(srv.data_dir, "server.log"), errors="replace").read()
    check("a body Alertmanager cut (truncatedAlerts 7) -> 202 saying truncated_alerts 7, a "
          "warning naming the group, healer_alerts_truncated_total",
          st == 202 and ans.get("truncated_alerts") == 7
          and re.search(r"^healer_alerts_truncated_total 7$", metrics, re.M)
          and [l for l in log.splitlines() if "max_alerts" in l and "KubeJobFailed" in l
               and "truncated_alerts" in l],
          [ans, [l for l in metrics.splitlines() if "truncated" in l], log[-1500:]])
    # a firing whose CodeRun was stored but the create's answer lost (503),
    # resolved before the firing's retry recorded the CodeRun's name: the
    # resolution finds it by its labels and deletes it, and the attempt ends
    # (before, the CodeRun ran on, unknown, and the attempt stayed
    # preparing, holding a CodeRun slot for good)
    lost = pod(POD_LOST, "api", "7d9f8b6c5d", [crash_status("api", "Error", 1, 2)])
    kube("POST", "/_stub/seed", {"pods": [lost], "logs": [
        {"namespace": APP_NS, "pod": POD_LOST, "container": "api", "text": "panic\n"}]})
    kube("POST", "/_stub/config", {"create_reply_lost": 1})
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_LOST, "10571057")]))
    tid_lost = (ans.get("task_ids") or ["?"])[0]
    made = wait_for(lambda: coderuns(tid_lost), 20, 0.02)
    st2, ans2 = post(srv, "/api/alerts/alertmanager",
                     am_body([am_alert(POD_LOST, "10571057", status="resolved")], "resolved"))
    ended = wait_for(lambda: task_of(srv, tid_lost).get("state") in ("stopped", "skipped"), 20)
    time.sleep(1.5)  # the firing's retry meanwhile changes nothing
    t_lost = task_of(srv, tid_lost)
    check("resolved while its CodeRun's create answer was lost: the CodeRun found by its "
          "labels is deleted, the attempt ends stopped",
          st == 202 and st2 == 202 and made and ended and t_lost.get("state") == "stopped"
          and not coderuns(tid_lost)
          and [a.get("outcome") for a in t_lost.get("attempts") or []] == ["stopped"],
          [t_lost.get("state"), t_lost.get("reason"), t_lost.get("attempts"),
           [c["metadata"]["name"] for c in coderuns(tid_lost)]])
    kube("POST", "/_stub/config", {"create_reply_lost": 0})

    # a pod whose owner's name is no Kubernetes name (a broken or hostile API
    # server): never the workload quoted in the Prometheus query
    odd = pod(POD_ODD, "odd", "1a2b3c4d5e", [crash_status("api", "Error", 1, 2)])
    odd["metadata"]["ownerReferences"][0]["name"] = 'odd"} or vector(1) or {x="'
    kube("POST", "/_stub/seed", {"pods": [odd], "logs": [
        {"namespace": APP_NS, "pod": POD_ODD, "container": "api", "text": "odd\n"}]})
    before = len(dtest.http("GET", SURL + "/_stub/requests"))
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_ODD, "0dd0dd0d")]))
    tid_odd = (ans.get("task_ids") or ["?"])[0]
    wait_for(lambda: processed(srv, [tid_odd]), 20)
    pq = [r["query"].get("query", "") for r in dtest.http("GET", SURL + "/_stub/requests")[before:]
          if r["path"] == "/api/v1/query"]
    check("a pod whose owner's name holds a quote -> the Prometheus query does not take it",
          st == 202 and pq and not any("vector(1)" in q for q in pq)
          and all(POD_ODD in q for q in pq), [ans, pq])
    # an Application's destination namespace that is no namespace: never a
    # piece of the LogQL selector (a quote would end the label value)
    cellar = app_doc("cellar", failed=True)
    cellar["spec"]["destination"] = {"namespace": 'cellar"} |= "injected'}
    cellar["status"]["operationState"]["message"] = (
        "ComparisonError: failed to fetch https://git:cellarpw8812@git.example/acme/cellar.git:"
        " authentication required")
    before = len(dtest.http("GET", SURL + "/_stub/requests"))
    st, ans = post(srv, "/api/alerts/argocd", {"application": cellar})
    tid_c = (ans.get("task_ids") or ["?"])[0]
    wait_for(lambda: processed(srv, [tid_c]), 20)
    lq = [r["query"].get("query", "") for r in dtest.http("GET", SURL + "/_stub/requests")[before:]
          if r["path"].startswith("/loki/")]
    check("an Application whose destination namespace holds a quote -> the Loki selector does "
          "not take it", st == 202 and lq and not any("injected" in q for q in lq), [ans, lq])
    tc = task_of(srv, tid_c)
    check("the task's decision (ArgoCD's status text classified) quotes ArgoCD's message "
          "without the URL's password", tc.get("decision")
          and "git.example/acme/cellar.git" in json.dumps(tc.get("decision"))
          and "cellarpw8812" not in json.dumps(tc), json.dumps(tc.get("decision"))[:3000])

    # ArgoCD: GitHub URLs the allowlist missed (ssh://, upper case, www.), a
    # GitHub URL naming no repository, a second spec.sources[] entry, and a
    # destination namespace of the system: all skipped at intake (before,
    # the first four passed: only two exact prefixes were recognised)
    forms = [("ssh://git@github.com/evil/repo.git", "repository_not_allowed"),
             ("HTTPS://github.com/evil/repo", "repository_not_allowed"),
             ("https://www.github.com/evil/repo", "repository_not_allowed"),
             ("https://github.com/evil", "repository_not_allowed")]
    for i, (url, why) in enumerate(forms):
        d = app_doc(f"form{i}")
        d["spec"]["source"]["repoURL"] = url
        st, ans = post(srv, "/api/alerts/argocd", {"application": d})
        check(f"an Application of repoURL {url} -> skipped {why}, no task",
              st == 202 and ans.get("status") == "skipped" and ans.get("reason") == why
              and ans.get("task_ids") == [], ans)
    d = app_doc("multisrc")
    del d["spec"]["source"]
    d["spec"]["sources"] = [{"repoURL": "https://github.com/acme/orders.git"},
                            {"repoURL": "git@github.com:evil/charts.git"}]
    st, ans = post(srv, "/api/alerts/argocd", {"application": d})
    check("an Application whose second spec.sources entry is outside HEALER_REPOSITORIES -> "
          "skipped repository_not_allowed",
          st == 202 and ans.get("reason") == "repository_not_allowed"
          and ans.get("task_ids") == [], ans)
    d = app_doc("sysdest")
    d["spec"]["source"]["repoURL"] = "https://github.com/acme/orders.git"
    d["spec"]["destination"] = {"namespace": "kube-system"}
    st, ans = post(srv, "/api/alerts/argocd", {"application": d})
    check("an Application deploying into kube-system -> skipped namespace_not_allowed",
          st == 202 and ans.get("reason") == "namespace_not_allowed"
          and ans.get("task_ids") == [], ans)

    # ---- a symlink planted in the heal workspace: never read into a retry's prompt --------
    # (the agent can write the heal-workspace PVC; before, a retry after the
    # pod was gone took logs/<pod>-previous.log through the link)
    for c in coderuns():  # the slots the runs above hold free for this one
        if (c.get("status") or {}).get("phase") in (None, "", "Pending", "Running"):
            set_phase(c["metadata"]["name"], "Succeeded")
    secret = os.path.join(dtest.TMP, "healer-own-secret.txt")
    with open(secret, "w") as f:
        f.write("thread 'main' panicked at src/secret.rs:1:1:\nLINKSECRET-4242 index out of "
                "bounds\nstack backtrace:\n   0: rust_begin_unwind\n   1: app::secret\n")
    lp = pod(POD_LINK, "link", "4d5e6f7a8b", [crash_status("api", "Error", 1, 2)],
             labels={"job-name": "linkjob-e2e"})
    kube("POST", "/_stub/seed", {"pods": [lp], "logs": [
        {"namespace": APP_NS, "pod": POD_LINK, "container": "api", "text": "link up\n"},
        {"namespace": APP_NS, "pod": POD_LINK, "container": "api", "previous": True,
         "text": "Error: link broke\n"}]})
    st, ans = post(srv, "/api/alerts/alertmanager", am_body([am_alert(POD_LINK, "11ee11ee")]))
    tid_link = (ans.get("task_ids") or ["?"])[0]
    r1 = wait_for(lambda: coderuns(tid_link), 20) or []
    # the pod goes (its Job's garbage collection), then the link is planted
    kube("POST", "/_stub/seed", {"coderuns": [{
        "apiVersion": "agents.platform/v1", "kind": "CodeRun",
        "metadata": {"name": "linkjob-owner", "namespace": APP_NS},
        "spec": {}, "status": {"jobName": "linkjob-e2e"}}]})
    kube("DELETE", f"/apis/agents.platform/v1/namespaces/{APP_NS}/coderuns/linkjob-owner")
    prev_link = os.path.join(ws, "logs", f"{POD_LINK}-previous.log")
    if os.path.lexists(prev_link):
        os.unlink(prev_link)
    os.symlink(secret, prev_link)
    # its events cannot be listed either: nothing is fetched, and the retry
    # takes the files an earlier attempt left (heal_files_on_disk)
    kube("POST", "/_stub/config", {"rules": [
        {"method": "GET", "path": f"/api/v1/namespaces/{APP_NS}/events",
         "query": {"fieldSelector": f"involvedObject.name={POD_LINK}"}, "status": 422}]})
    if r1:
        set_phase(r1[0]["metadata"]["name"], "Running")
        set_phase(r1[0]["metadata"]["name"], "Failed", "exit 1")
    r2 = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(coderuns(tid_link)), 20) or []
    p_link = r2[1]["spec"].get("promptModification", "") if len(r2) == 2 else ""
    check("a retry after the pod is gone with logs/<pod>-previous.log a symlink to another "
          "file: attempt 2's prompt does not quote that file",
          len(r2) == 2 and "LINKSECRET-4242" not in p_link and "This is attempt 2" in p_link
          and f"{POD_LINK}-previous.log" in p_link,
          [len(r1), len(r2), p_link[:2500]])
    kube("POST", "/_stub/config", {"rules": []})
    for c in coderuns(tid_link):
        set_phase(c["metadata"]["name"], "Succeeded")
    srv.stop()

    # ---- a large group in one body -------------------------------------------------------
    large_body(env)

    # ---- no repository anywhere: no built-in one --------------------------------------------
    no_repository(env)

    # ---- a resolution after the namespaces narrowed ------------------------------------------
    resolved_after_narrowing(env)

    # ---- logs/ swapped for a symbolic link during a retry -----------------------------------
    swapped_logs_dir(env)

    # ---- an unreachable cluster -----------------------------------------------------------
    dead = dtest.write_kubeconfig(os.path.join(dtest.TMP, "dead-kubeconfig"),
                                  f"https://127.0.0.1:{refused_port()}", ca_path=ca["ca"],
                                  token=KTOKEN, namespace=NS)
    env2 = dict(env, KUBECONFIG=dead, HEALER_DISPATCH="directory",
                HEALER_HEAL_WORKSPACE=os.path.join(dtest.TMP, "ws2"))
    srv2 = Healer(os.path.join(dtest.TMP, "h2"), env2).start()
    st, ans = post(srv2, "/api/alerts/alertmanager", am_body([am_alert(POD_OOM, "dead0001")]))
    tid_dead = (ans.get("task_ids") or ["?"])[0]
    kept = wait_for(lambda: [d for d in srv2.request("GET", "/api/status")[1].get("recent", [])
                             if d.get("task_id") == tid_dead and d.get("state") == "received"
                             and d.get("claims", 0) >= 2], 20)
    log = open(os.path.join(dtest.TMP, "h2", "server.log")).read()
    check("an unreachable cluster -> accepted, a clear error, the alert kept for retry",
          st == 202 and ans.get("status") == "accepted" and kept
          and f"the Kubernetes API did not answer for pod '{APP_NS}/{POD_OOM}': Failed to connect"
          in log and "Couldn't connect to server" in log and not task_of(srv2, tid_dead),
          log[-1500:])
    srv2.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
