#!/usr/bin/env python3
"""test_heal_replicas.py - the heal flow's one-CodeRun-per-pod rule across
two `healer server` replicas on one PostgreSQL database (run through
pgrun.py) and the Kubernetes stand-in.

Many crash-looping pods, each hit by two different alerts at once
(KubePodCrashLooping and a custom PodRestartingTooOften, two fingerprints,
so two tasks), the first sent to one replica and the second to the other.
Each replica's worker checks the pod's active CodeRuns and creates one; the
stand-in delays every CodeRun list, so without a guard held across the
replicas both see none and both create one. Checked: every alert is
processed, each pod has exactly one heal CodeRun, one alert of each pod
dispatched it and the other found it ("existing"), whichever replica held
the pod's lock, and the other replica waited or gave its delivery back for
a later retry (never blocked); with a CodeRun create slower than the lock's
wait, the other replica gives its alert back and its retry finds the
CodeRun; with the pod's lock lost while a replica's CodeRun create is in
flight (its listener session terminated), the other replica creates one
too, and the replica whose create landed later withdraws its own. Standard
library only; prints TAP.
"""
import concurrent.futures
import json
import os
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, wait_for  # noqa: E402

check = dtest.check
KTOKEN = "kube-heal-replicas"
NS = "cto"       # CodeRuns
APP_NS = "prod"  # the pods
N_PODS = 40
LIST_DELAY_MS = 250  # each CodeRun list of the stand-in takes this long
N_SLOW = 3
SLOW_CREATE_MS = 4500  # longer than a replica waits for a pod's lock (3 s)
# how late the apiserver stores the CodeRun create whose lock is lost: the
# other replica takes the lock, gathers its context and creates its own
# meanwhile, so the window stretches under the sanitizers (HEALER_TEST_TIME_SCALE);
# capped under healer's 15 s Kubernetes request timeout, so the slow create
# is still answered, not given up on
LOST_CREATE_MS = int(min(4000 * hltest.TIME_SCALE, 12000))


def pod(name):
    return {
        "metadata": {"name": name, "namespace": APP_NS,
                     "labels": {"app": "shop", "pod-template-hash": "5f6d7c8b9a"},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "shop-5f6d7c8b9a",
                                          "controller": True}]},
        "spec": {"nodeName": "node-1",
                 "containers": [{"name": "api", "image": "ghcr.io/acme/shop:2.0.1"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "api", "ready": False, "restartCount": 9,
            "image": "ghcr.io/acme/shop:2.0.1",
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": "back-off 5m0s restarting failed container"}},
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1,
                                         "finishedAt": "2026-01-01T10:04:00Z"}}}]},
    }


def alert(pod_name, name, fp):
    return {"status": "firing",
            "labels": {"alertname": name, "namespace": APP_NS, "pod": pod_name,
                       "container": "api", "severity": "warning"},
            "annotations": {"summary": "Pod is crash looping."},
            "startsAt": "2026-01-01T10:05:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph?g0.expr=x", "fingerprint": fp}


def body(alerts):
    return {"version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing",
            "receiver": "healer", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
            "alerts": alerts}


def main():
    ca = dtest.make_ca("kube")
    _, kport = dtest.start_stub("kube_stub.py", "--cert", ca["cert"], "--key", ca["key"],
                                "--token", KTOKEN, "--crd", dtest.CRD)
    kurl = f"https://127.0.0.1:{kport}"
    kctx = ssl.create_default_context(cafile=ca["ca"])

    def kube(method, path, b=None):
        return dtest.http(method, kurl + path, b, ctx=kctx, token=KTOKEN)

    kubeconfig = dtest.write_kubeconfig(os.path.join(dtest.TMP, "kubeconfig"), kurl,
                                        ca_path=ca["ca"], token=KTOKEN, namespace=NS)
    pods = [f"shop-5f6d7c8b9a-p{i:03d}" for i in range(N_PODS)]
    kube("POST", "/_stub/seed", {
        "pods": [pod(p) for p in pods],
        "logs": [{"namespace": APP_NS, "pod": p, "container": "api", "previous": True,
                  "text": "Error: connection refused (os error 111)\n"} for p in pods]})
    # the window between a replica's look at the pod's CodeRuns and its
    # create: every list of CodeRuns is slow
    kube("POST", "/_stub/config", {"rules": [
        {"method": "GET", "path": f"/apis/agents.platform/v1/namespaces/{NS}/coderuns",
         "delay_ms": LIST_DELAY_MS}]})

    url = pgtest.create_database("heal_replicas")
    env = hltest.base_env(KUBECONFIG=kubeconfig, HEALER_DISPATCH="kubernetes",
                          HEALER_NAMESPACE=NS, HEALER_WORKERS="4",
                          HEALER_SOURCE_TIMEOUT_MS="2000", HEALER_CONTEXT_TIMEOUT_MS="4000",
                          HEALER_REPOSITORIES="acme/shop", HEALER_HEAL_REPOSITORY="acme/shop",
                          HEALER_MAX_ACTIVE_CODERUNS="0",
                          HEALER_MAX_ATTEMPTS_PER_HOUR="0")
    reps = []
    for i in range(2):
        d = os.path.join(dtest.TMP, f"r{i}")
        reps.append(hltest.Healer(d, dict(env, HEALER_HEAL_WORKSPACE=os.path.join(d, "ws")),
                                  store_url=url + f"&application_name=heal-r{i}",
                                  name=f"r{i}").start())
    con = pgtest.connect(url.split("///", 1)[1].split("?", 1)[0])

    def post(rep, b):
        return rep.request("POST", "/api/alerts/alertmanager", json.dumps(b).encode(),
                           {"Content-Type": "application/json",
                            "Authorization": "Bearer " + hltest.TOKEN})

    # each pod: its two alerts at once, one at each replica
    def send(i):
        p = pods[i]
        a = alert(p, "KubePodCrashLooping", f"{i:04x}aaaa00000000")
        b = alert(p, "PodRestartingTooOften", f"{i:04x}bbbb00000000")
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as two:
            fa = two.submit(post, reps[0], body([a]))
            fb = two.submit(post, reps[1], body([b]))
            return fa.result(), fb.result()

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(N_PODS)))
    check(f"{2 * N_PODS} alerts ({N_PODS} pods, two alerts each, one per replica) -> 202 accepted",
          all(st == 202 and d.get("status") == "accepted" for pair in answers for st, d in pair),
          [pair for pair in answers
           if any(st != 202 or d.get("status") != "accepted" for st, d in pair)][:3])

    drained = wait_for(lambda: con.query(
        "SELECT count(*) FROM deliveries WHERE state IN ('received', 'processing')"
        " AND source = 'alertmanager'").fetchone()[0] == 0, 180, 0.25)
    states = con.query("SELECT state, count(*) FROM deliveries WHERE source = 'alertmanager'"
                       " GROUP BY 1").fetchall()
    check("every alert is processed by one of the replicas", drained
          and dict(states) == {"processed": 2 * N_PODS}, states)

    runs = kube("GET", "/_stub/coderuns") or []
    per_pod = {}
    for c in runs:
        tp = c["metadata"]["labels"].get("target-pod")
        per_pod.setdefault(tp, []).append(c["metadata"]["name"])
    doubled = {p: n for p, n in per_pod.items() if len(n) != 1}
    check(f"exactly one heal CodeRun per pod ({N_PODS} pods, {len(runs)} CodeRuns)",
          len(runs) == N_PODS and sorted(per_pod) == sorted(pods) and not doubled,
          (len(runs), len(doubled), sorted(doubled.items())[:5]))

    outcomes = {}
    for did, dec in con.query("SELECT delivery_id, decision_json FROM deliveries"
                              " WHERE source = 'alertmanager'").fetchall():
        d = json.loads(dec) if dec else {}
        outcomes.setdefault(d.get("outcome"), 0)
        outcomes[d.get("outcome")] += 1
    check("of each pod's two alerts one dispatched the CodeRun, the other found it",
          outcomes == {"dispatched": N_PODS, "existing": N_PODS}, outcomes)
    retried = sum(r.log().count("is being worked on by another replica") for r in reps)
    check(f"a replica that could not get a pod's lock in time gave its delivery back "
          f"({retried} retries) and nothing was left waiting", drained, retried)
    tasks = con.query("SELECT count(*), count(coderun_name) FROM remediation_tasks"
                      " WHERE kind = 'alert'").fetchone()
    check("each pod's CodeRun is recorded on one task", tasks[1] == N_PODS, tasks)

    # a holder slower than the wait: the CodeRun create takes longer than
    # a replica waits for the pod's lock, so the other gives its alert back
    # and finds the CodeRun on its retry (its worker is never blocked)
    slow = [f"shop-5f6d7c8b9a-s{i:03d}" for i in range(N_SLOW)]
    kube("POST", "/_stub/seed", {
        "pods": [pod(p) for p in slow],
        "logs": [{"namespace": APP_NS, "pod": p, "container": "api", "previous": True,
                  "text": "Error: connection refused (os error 111)\n"} for p in slow]})
    kube("POST", "/_stub/config", {"create_reply_delay_ms": SLOW_CREATE_MS})
    before = sum(r.log().count("is being worked on by another replica") for r in reps)

    def send_slow(i):
        p = slow[i]
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as two:
            fa = two.submit(post, reps[0], body([alert(p, "KubePodCrashLooping",
                                                       f"{i:04x}cccc00000000")]))
            fb = two.submit(post, reps[1], body([alert(p, "PodRestartingTooOften",
                                                       f"{i:04x}dddd00000000")]))
            return fa.result(), fb.result()

    with concurrent.futures.ThreadPoolExecutor(max_workers=N_SLOW) as pool:
        answers = list(pool.map(send_slow, range(N_SLOW)))
    drained = wait_for(lambda: con.query(
        "SELECT count(*) FROM deliveries WHERE state IN ('received', 'processing')"
        " AND source = 'alertmanager'").fetchone()[0] == 0, 120, 0.25)
    kube("POST", "/_stub/config", {"create_reply_delay_ms": 0})
    runs = [c for c in kube("GET", "/_stub/coderuns") or []
            if c["metadata"]["labels"].get("target-pod") in slow]
    retried = sum(r.log().count("is being worked on by another replica") for r in reps) - before
    check(f"a pod's lock held longer than the wait ({SLOW_CREATE_MS} ms create): the other "
          f"replica gave its alert back ({retried} times), then found the CodeRun; one per pod",
          all(st == 202 for pair in answers for st, _ in pair) and drained and retried >= 1
          and len(runs) == N_SLOW
          and sorted(c["metadata"]["labels"]["target-pod"] for c in runs) == sorted(slow),
          (retried, [c["metadata"]["name"] for c in runs]))
    # the pod's lock lost between its last check and the create: one
    # replica's CodeRun create is slow to arrive (the apiserver stores it
    # LOST_CREATE_MS later) and that replica's listener session, which holds the pod's
    # lock, is terminated meanwhile; the other replica then takes the lock
    # for another alert of the pod, sees no CodeRun and creates one. When
    # the slow create lands, its replica finds the other's CodeRun, deletes
    # its own and retries the alert later, which then finds the other's:
    # one CodeRun for the pod.
    lost = "shop-5f6d7c8b9a-l000"
    kube("POST", "/_stub/seed", {
        "pods": [pod(lost)],
        "logs": [{"namespace": APP_NS, "pod": lost, "container": "api", "previous": True,
                  "text": "Error: connection refused (os error 111)\n"}]})
    def lose_lock_while_creating(source, send_first, send_second):
        """send_first(rep) at replica 0, whose CodeRun create the apiserver
        stores LOST_CREATE_MS late; meanwhile the listener session (the lock) of the
        replica that holds the delivery is terminated and send_second(rep)
        goes to the other. Returns (answered 202 both, create seen, holder
        found, drained)."""
        kube("POST", "/_stub/reset")
        kube("POST", "/_stub/config", {"rules": [
            {"method": "POST", "path": f"/apis/agents.platform/v1/namespaces/{NS}/coderuns",
             "delay_ms": LOST_CREATE_MS, "times": 1}]})
        st1 = send_first(reps[0])
        creating = wait_for(lambda: [r for r in kube("GET", "/_stub/requests")
                                     if r["method"] == "POST"
                                     and r["path"].endswith("/coderuns")], 20, 0.02)
        holder = con.query(f"SELECT claimed_by FROM deliveries WHERE source = '{source}'"
                           " AND state = 'processing'").fetchall()
        first = [i for i, r in enumerate(reps) if holder and f":{r.proc.pid}:" in holder[0][0]]
        other = reps[1 - first[0]] if first else reps[1]
        if first:
            con.query("SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a"
                      " JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory'"
                      f" WHERE a.application_name = 'heal-r{first[0]}'")
        st2 = send_second(other)
        drained = wait_for(lambda: con.query(
            "SELECT count(*) FROM deliveries WHERE state IN ('received', 'processing')"
            f" AND source = '{source}'").fetchone()[0] == 0, 60, 0.25)
        return st1 == 202 and st2 == 202, bool(creating), bool(first), drained, holder

    ok202, creating, first, drained, holder = lose_lock_while_creating(
        "alertmanager",
        lambda rep: post(rep, body([alert(lost, "KubePodCrashLooping", "ffff0000aaaa0000")]))[0],
        lambda rep: post(rep, body([alert(lost, "PodRestartingTooOften",
                                          "ffff0000bbbb0000")]))[0])
    check("setup: a replica's CodeRun create is in flight when its listener session (the "
          "pod's lock) is terminated; the other takes the pod's second alert",
          ok202 and creating and first, holder)
    runs = [c["metadata"]["name"] for c in kube("GET", "/_stub/coderuns") or []
            if c["metadata"]["labels"].get("target-pod") == lost]
    outcomes = sorted((json.loads(d) if d else {}).get("outcome") or "" for (d,) in con.query(
        "SELECT decision_json FROM deliveries WHERE source = 'alertmanager' AND"
        " delivery_id IN (SELECT delivery_id FROM deliveries ORDER BY received_ms DESC"
        " LIMIT 2)").fetchall())
    check("a pod's lock lost while its CodeRun was being created: still one CodeRun for the "
          "pod (the late one is withdrawn), one alert dispatched it, the other found it",
          drained and len(runs) == 1 and outcomes == ["dispatched", "existing"]
          and any("the lock was lost while a CodeRun was created" in r.log() for r in reps),
          (drained, runs, outcomes, [r.log()[-1500:] for r in reps]))

    # the same for an ArgoCD application: its failed sync at one replica,
    # whose create is slow to land and whose lock is lost meanwhile, and its
    # Degraded notice at the other
    app = {"metadata": {"name": "billing", "namespace": "argocd"},
           "spec": {"project": "default",
                    "source": {"repoURL": "https://github.com/acme/shop.git"}},
           "status": {"health": {"status": "Degraded",
                                 "lastTransitionTime": "2026-01-01T09:00:00Z"},
                      "sync": {"status": "OutOfSync", "revision": "9f8e"}}}
    failed = json.loads(json.dumps(app))
    failed["status"]["operationState"] = {"phase": "Failed", "message": "apply failed",
                                          "startedAt": "2026-01-01T08:59:00Z"}

    def notify(rep, application):
        return rep.request("POST", "/api/alerts/argocd",
                           json.dumps({"application": application}).encode(),
                           {"Content-Type": "application/json",
                            "Authorization": "Bearer " + hltest.TOKEN})
    ok202, creating, first, drained, holder = lose_lock_while_creating(
        "argocd", lambda rep: notify(rep, failed)[0], lambda rep: notify(rep, app)[0])
    runs = [c["metadata"]["name"] for c in kube("GET", "/_stub/coderuns") or []
            if c["metadata"]["labels"].get("healer/argocd-app") == "billing"]
    outcomes = sorted((json.loads(d) if d else {}).get("outcome") or "" for (d,) in con.query(
        "SELECT decision_json FROM deliveries WHERE source = 'argocd'").fetchall())
    check("an ArgoCD application's lock lost while its CodeRun was being created: one "
          "CodeRun for the application, one notification dispatched it, the other found it",
          ok202 and creating and first and drained and len(runs) == 1
          and outcomes == ["dispatched", "existing"],
          (holder, drained, runs, outcomes, [r.log()[-1500:] for r in reps]))

    for r in reps:
        check(f"replica {r.name} stops cleanly", r.stop() == 0)
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
