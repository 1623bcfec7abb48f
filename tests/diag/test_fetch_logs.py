#!/usr/bin/env python3
"""test_fetch_logs.py - pod diagnostics (src/diag, `healer fetch-logs`,
contract section 8) against the Kubernetes stub: the four files, their
content, --tail, a deleted pod, an unreachable API and usage errors."""
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys

from dtest import (CRD, HEALER, TMP, check, clean_env, finish, healer, http, make_ca, start_stub,
                   write_kubeconfig)

TOKEN = "kube-test-token-5f2b"
# the longest pod name Kubernetes allows (253: a DNS-1123 subdomain); with
# "-previous.log" it would be 266 bytes, over the file system's 255
LONG_POD = ".".join(f"seg{i}-" + "x" * 58 for i in range(3)) + "." + "y" * 60 + "z"
assert len(LONG_POD) == 253
LONG_STEM = LONG_POD[:225] + "-" + hashlib.sha256(LONG_POD.encode()).hexdigest()[:16]
EDGE_POD = "e" * 242  # the longest name that is its own file stem
ca = make_ca("kube")
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
        pod(LONG_POD, [{"name": "app", "image": "app:1"}],
            [{"name": "app", "ready": False, "restartCount": 1,
              "state": {"waiting": {"reason": "CrashLoopBackOff"}},
              "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}]),
        pod(EDGE_POD, [{"name": "web", "image": "nginx"}],
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
        {"namespace": "prod", "pod": LONG_POD, "container": "app", "text": "long now\n"},
        {"namespace": "prod", "pod": LONG_POD, "container": "app", "previous": True,
         "text": "long before\n"},
        {"namespace": "prod", "pod": EDGE_POD, "container": "web", "text": "edge\n"},
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


# ---- fetch-logs ----
out_dir = os.path.join(TMP, "logs")
rc, out, err = healer("fetch-logs", "--pod-name", "api-7d9f", "--namespace", "prod",
                      "--output-dir", out_dir, env=KENV)
files = sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []
check("fetch-logs: exit 0 and all four files for a restarted pod",
      rc == 0 and files == ["api-7d9f-current.log", "api-7d9f-describe.txt",
                            "api-7d9f-events.yaml", "api-7d9f-previous.log"], (rc, files, err))

# ---- links planted at the staging names (the heal workspace is shared with
# the remediation pods) are replaced, never written through --------------------
link_dir = os.path.join(TMP, "linked")
os.makedirs(link_dir)
precious = os.path.join(TMP, "precious.txt")
with open(precious, "w") as f:
    f.write("precious\n")
# the shell waits for a line, then becomes healer (the same pid)
p = subprocess.Popen(["sh", "-c", 'read _; exec "$0" "$@"', HEALER, "fetch-logs", "--pod-name",
                      "api-7d9f", "--namespace", "prod", "--output-dir", link_dir],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     env=clean_env(KENV))
for name in ("current.log", "previous.log", "events.yaml", "describe.txt"):
    base = os.path.join(link_dir, f"api-7d9f-{name}.tmp.{p.pid}")
    for link in [base] + [f"{base}.{n}" for n in range(16)]:
        os.symlink(precious, link)
out, err = p.communicate(b"go\n", timeout=30)
kept = open(precious).read()
written = [os.path.join(link_dir, f"api-7d9f-{n}") for n in ("current.log", "describe.txt")]
check("fetch-logs: a link planted at a staging file's name is not written through",
      p.returncode == 0 and kept == "precious\n"
      and all(os.path.isfile(w) and not os.path.islink(w) for w in written),
      (p.returncode, kept[:200], err.decode()[-300:]))


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

# a previous.log left by an earlier pod of this name (recreated since) would be read
# as this pod's last crash: it goes
with open(os.path.join(out_dir, "calm-pod-previous.log"), "w") as f:
    f.write("==> container web <==\nan earlier pod's crash\n")
rc, out, err = healer("fetch-logs", "--pod-name", "calm-pod", "--namespace", "prod",
                      "--output-dir", out_dir, "--tail", "1", env=KENV)
check("fetch-logs: a pod without restarts gets no previous.log (a stale one is removed)",
      rc == 0 and not os.path.exists(os.path.join(out_dir, "calm-pod-previous.log"))
      and os.path.exists(os.path.join(out_dir, "calm-pod-current.log")), (rc, err))
check("fetch-logs: --tail 1 keeps one line",
      read("calm-pod-current.log") == "==> container web <==\nGET / 200\n",
      read("calm-pod-current.log"))
reqs = ctl("GET", "/_stub/requests")
check("fetch-logs talks to the API with the bearer token and tailLines",
      any(r["path"].endswith("/calm-pod/log") and r["query"].get("tailLines") == "1"
          and r["headers"].get("authorization") == f"Bearer {TOKEN}" for r in reqs))
# without --tail the lines kept are HEALER_HEAL_LOG_TAIL's (before: always
# 10000, the setting checked and then ignored); --tail still wins over it
ctl("POST", "/_stub/reset")
rc, out, err = healer("fetch-logs", "--pod-name", "calm-pod", "--namespace", "prod",
                      "--output-dir", out_dir, env=dict(KENV, HEALER_HEAL_LOG_TAIL="7"))
rc2, _, err2 = healer("fetch-logs", "--pod-name", "calm-pod", "--namespace", "prod",
                      "--output-dir", out_dir, "--tail", "3",
                      env=dict(KENV, HEALER_HEAL_LOG_TAIL="7"))
tails = [r["query"].get("tailLines") for r in ctl("GET", "/_stub/requests")
         if r["path"].endswith("/calm-pod/log")]
check("fetch-logs: HEALER_HEAL_LOG_TAIL is the default tail; --tail overrides it",
      rc == 0 and rc2 == 0 and tails and tails[0] == "7" and tails[-1] == "3",
      (tails, err, err2))

# ---- a pod name too long for a file name: one shortened, hash-suffixed stem
long_dir = os.path.join(TMP, "long")
rc, out, err = healer("fetch-logs", "--pod-name", LONG_POD, "--namespace", "prod",
                      "--output-dir", long_dir, env=KENV)
files = sorted(os.listdir(long_dir)) if os.path.isdir(long_dir) else []
want = [f"{LONG_STEM}-{n}" for n in ("current.log", "describe.txt", "events.yaml",
                                      "previous.log")]
check("fetch-logs: a 253-character pod name gets its four files under the shortened stem",
      rc == 0 and files == want and len(LONG_STEM) == 242, (rc, files, err))
check("fetch-logs: the shortened files hold the pod's logs and description, and stdout"
      " names them",
      files == want and "long now" in open(os.path.join(long_dir, want[0])).read()
      and "long before" in open(os.path.join(long_dir, want[3])).read()
      and f"Name:             {LONG_POD}" in open(os.path.join(long_dir, want[1])).read()
      and all(os.path.join(long_dir, w) in out for w in want), out)
rc, out, err = healer("fetch-logs", "--pod-name", EDGE_POD, "--namespace", "prod",
                      "--output-dir", long_dir, env=KENV)
check("fetch-logs: a 242-character pod name keeps its own name",
      rc == 0 and os.path.isfile(os.path.join(long_dir, EDGE_POD + "-current.log")), (rc, err))
issue = os.path.join(TMP, "long-issue.md")
with open(issue, "w") as f:
    f.write("# Pod Failure\n")
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "t-long", "--issue-file",
                      issue, "--target-pod", LONG_POD,
                      env={"HEALER_DISPATCH": "none", "HEALER_DATA_DIR": TMP,
                           "HEALER_HEAL_REPOSITORY": "acme/api"})
try:
    log_env = json.loads(out)["spec"]["env"].get("HEAL_LOG_FILE")
except (ValueError, KeyError, TypeError):
    log_env = None
check("spawn-remediation: HEAL_LOG_FILE names the file fetch-logs wrote for a long pod name",
      rc == 0 and log_env == f"/workspace/logs/{LONG_STEM}-current.log", (rc, log_env, err))

# ---- a big log (10,000 lines of 2 KB, current and previous: 2 x 20 MB): streamed to
# its file, never whole in memory (before: the bodies and their copies were buffered,
# ~130 MB resident for one pod; two alerts at once in the server passed 400 MB)
BIG_LINE = "E" * 2000
big_text = "".join(f"{i:06d} {BIG_LINE}\n" for i in range(10000))
ctl("POST", "/_stub/seed", {
    "pods": [pod("big-pod", [{"name": "app", "image": "app:1"}],
                 [{"name": "app", "ready": False, "restartCount": 4,
                   "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                   "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}])],
    "logs": [{"namespace": "prod", "pod": "big-pod", "container": "app", "text": big_text},
             {"namespace": "prod", "pod": "big-pod", "container": "app", "previous": True,
              "text": big_text}]})
del big_text
big_dir = os.path.join(TMP, "big")
# a small interpreter of its own forks and waits: the test's own (large) memory is not
# counted in the child's peak, as it would be before its exec
MAXRSS = ("import os, sys\n"
          "pid = os.fork()\n"
          "if pid == 0:\n"
          "    fd = os.open(os.devnull, os.O_WRONLY)\n"
          "    os.dup2(fd, 1)\n"
          "    os.dup2(fd, 2)\n"
          "    os.execv(sys.argv[1], sys.argv[1:])\n"
          "_, st, ru = os.wait4(pid, 0)\n"
          "print(os.waitstatus_to_exitcode(st), ru.ru_maxrss)\n")
# freed memory is not held back by a sanitizer's quarantine (an ASan build
# would count every streamed chunk): the rise over a small pod's run is
# what the logs cost
MEM_ENV = dict(KENV)
if "ASAN_OPTIONS" in os.environ or "asan" in HEALER:
    MEM_ENV["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                               ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0")


def peak_rss(pod, out_dir):
    """fetch-logs of pod under MAXRSS: (exit code, peak resident KiB)."""
    p = subprocess.run([sys.executable, "-c", MAXRSS, HEALER, "fetch-logs", "--pod-name", pod,
                        "--namespace", "prod", "--output-dir", out_dir], env=clean_env(MEM_ENV),
                       capture_output=True, text=True, timeout=60)
    return tuple(int(x) for x in (p.stdout.split() or ["-1", "0"]))


_, base_rss = peak_rss("calm-pod", os.path.join(TMP, "calm-base"))
big_rc, big_rss = peak_rss("big-pod", big_dir)
sizes = {n: os.path.getsize(os.path.join(big_dir, n))
         for n in (os.listdir(big_dir) if os.path.isdir(big_dir) else [])}
want_size = len("==> container app <==\n") + 10000 * (7 + 2000 + 1)
check("fetch-logs: a 20 MB current and previous log -> both files whole, nothing else left "
      "in the directory (no temporary file)",
      big_rc == 0 and sizes.get("big-pod-current.log") == want_size
      and sizes.get("big-pod-previous.log") == want_size
      and sorted(sizes) == ["big-pod-current.log", "big-pod-describe.txt",
                            "big-pod-events.yaml", "big-pod-previous.log"], sizes)
check("fetch-logs: ... streamed: peak resident memory under 40 MB more than a small pod's "
      "for 40 MB of logs",
      0 < base_rss and 0 < big_rss and big_rss - base_rss < 40 * 1024,
      f"{base_rss} -> {big_rss} KiB")
with open(os.path.join(big_dir, "big-pod-current.log")) as f:
    head = f.read(4096)
check("fetch-logs: the big log's file starts with its section and its first line",
      head.startswith("==> container app <==\n000000 EEE"), head[:100])

# ---- a Pod object listing more containers than any real pod (a broken or
# hostile API server): the logs of the first 64 only, in one bounded batch,
# and a description that says how many it left out
CROWD = 150
ctl("POST", "/_stub/seed", {
    "pods": [pod("crowd-pod", [{"name": f"c{i}", "image": "busybox"} for i in range(CROWD)],
                 [{"name": f"c{i}", "ready": False, "restartCount": 1,
                   "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
                  for i in range(CROWD)])],
    "logs": [{"namespace": "prod", "pod": "crowd-pod", "container": "c0", "text": "first\n"},
             {"namespace": "prod", "pod": "crowd-pod", "container": "c0", "previous": True,
              "text": "first before\n"}],
})
crowd_dir = os.path.join(TMP, "crowd")
before = len(ctl("GET", "/_stub/requests"))
rc, out, err = healer("fetch-logs", "--pod-name", "crowd-pod", "--namespace", "prod",
                      "--output-dir", crowd_dir, "--tail", "5", env=KENV)
log_reqs = [r for r in ctl("GET", "/_stub/requests")[before:]
            if r["path"].endswith("/crowd-pod/log")]
asked = {r["query"].get("container") for r in log_reqs}
check("fetch-logs: a pod listing 150 containers gets the logs of its first 64 only"
      " (current and previous: 128 requests), and stderr says so",
      rc == 0 and len(log_reqs) == 128 and asked == {f"c{i}" for i in range(64)}
      and "150 containers" in err, (rc, len(log_reqs), err[-400:]))
crowd_desc = ""
try:
    crowd_desc = open(os.path.join(crowd_dir, "crowd-pod-describe.txt")).read()
except OSError:
    pass
check("fetch-logs: the description of that pod shows 64 containers and how many more there are",
      "  c63:\n" in crowd_desc and "  c64:\n" not in crowd_desc
      and "(86 more containers not shown)" in crowd_desc, crowd_desc[-300:])

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
# an output directory that is a file: said at once (before: every write failed
# one by one after the fetches, "could not write 'FILE/api-7d9f-current.log'")
a_file = os.path.join(TMP, "not-a-dir")
with open(a_file, "w") as f:
    f.write("x")
before = len(ctl("GET", "/_stub/requests"))
rc, out, err = healer("fetch-logs", "--pod-name", "api-7d9f", "--namespace", "prod",
                      "--output-dir", a_file, env=KENV)
check("fetch-logs: an --output-dir that is a file -> exit 1 naming it, before any request",
      rc == 1 and "not-a-dir" in err and "a file of that name exists" in err
      and len(ctl("GET", "/_stub/requests")) == before, (rc, err))
rc, out, err = healer("fetch-logs", "--pod-name", "x", "--namespace", "prod", env=KENV)
check("fetch-logs: a missing --output-dir is a usage error (exit 2)",
      rc == 2 and "--output-dir" in err, err)
before = len(ctl("GET", "/_stub/requests"))
bad = []
for pod, ns in (("api-7d9f", ".."), ("api-7d9f", "prod/../kube-system"), ("api-7d9f", "Prod"),
                ("..", "prod"), ("API_pod", "prod"), ("a" * 254, "prod")):
    rc, out, err = healer("fetch-logs", "--pod-name", pod, "--namespace", ns, "--output-dir",
                          os.path.join(TMP, "bad-names"), env=KENV)
    if rc != 2 or ("--namespace" not in err and "--pod-name" not in err):
        bad.append((pod[:20], ns, rc, err))
check("fetch-logs: namespace and pod names Kubernetes would refuse are usage errors, never"
      " requests", not bad and len(ctl("GET", "/_stub/requests")) == before, bad)

finish()
