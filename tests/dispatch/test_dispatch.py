#!/usr/bin/env python3
"""test_dispatch.py - CodeRun dispatch in kubernetes mode (src/dispatch
through dispatchprobe) and `healer spawn-remediation` (kubernetes,
directory and none modes) against the Kubernetes stub (TLS with a
throw-away CA carried in the kubeconfig, bearer token)."""
import json
import os
import ssl
import subprocess

from dtest import (CRD, HEALER, TMP, check, clean_env, dispatchprobe, finish, healer, http,
                   make_ca, start_stub, write_kubeconfig)

TOKEN = "kube-test-token-5f2b"
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


# ---- CodeRuns through the dispatcher: create, 409, retried 503, find-active ----
spec = {"agent": "rex", "failure_type": "rust_clippy", "repository": "5dlabs/cto",
        "branch": "feat/x", "head_sha": "0123456789abcdef", "workflow_run_id": 111,
        "task_id": "ci-111", "dedup_key": "5dlabs/cto#111#clippy", "prompt": "fix it"}
rc, out, err = dispatchprobe("kubernetes", "-", "cto", "submit-ci", stdin=json.dumps(spec),
                        env=KENV)
check("dispatch kubernetes: created (201)", rc == 0 and out["outcome"] == "created", (out, err))
name = out.get("name") if isinstance(out, dict) else None
rc, out, err = dispatchprobe("kubernetes", "-", "cto", "submit-ci", stdin=json.dumps(spec),
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
rc, out, err = dispatchprobe("kubernetes", "-", "cto", "submit-ci", stdin=json.dumps(spec2),
                        env=KENV)
posts = [r for r in ctl("GET", "/_stub/requests") if r["method"] == "POST"
         and r["path"].endswith("/coderuns")]
check("a named create is retried after a 503 and ends 'created' (idempotent by name)",
      rc == 0 and out["outcome"] == "created" and len(posts) >= 4, (out, len(posts)))
http("POST", f"{server}/_stub/config", {"rules": [
    {"method": "POST", "path": "/apis/agents.platform/v1/namespaces/cto/coderuns", "status": 409,
     "times": 1, "body": {"kind": "Status", "code": 409, "reason": "Conflict",
                          "message": "the object has been modified"}}]}, ctx=ctx)
spec3 = dict(spec, dedup_key="5dlabs/cto#333#clippy", workflow_run_id=333, task_id="ci-333")
rc, out, err = dispatchprobe("kubernetes", "-", "cto", "submit-ci", stdin=json.dumps(spec3),
                        env=KENV)
stored = [c for c in ctl("GET", "/_stub/coderuns")
          if c["metadata"]["labels"].get("healer/workflow-run-id") == "333"]
check("a 409 for a CodeRun that does not exist is an error to retry, not 'existing'",
      rc != 0 and not stored and "409" in json.dumps(out), (rc, out, err))
# the namespace's ResourceQuota used up (other CodeRuns of the platform):
# an upstream error to try again, never the refusal a 403 for credentials is
# (before: 'unauthorized', and the task was escalated to people at once)
http("POST", f"{server}/_stub/config", {"rules": [
    {"method": "POST", "path": "/apis/agents.platform/v1/namespaces/cto/coderuns", "status": 403,
     "times": 1, "body": {"kind": "Status", "code": 403, "reason": "Forbidden",
                          "message": "coderuns.agents.platform \"x\" is forbidden: exceeded "
                                     "quota: coderuns, requested: count/coderuns.agents.platform"
                                     "=1, used: count/coderuns.agents.platform=10, limited: "
                                     "count/coderuns.agents.platform=10"}}]}, ctx=ctx)
spec4 = dict(spec, dedup_key="5dlabs/cto#444#clippy", workflow_run_id=444, task_id="ci-444")
rc, out, err = dispatchprobe("kubernetes", "-", "cto", "submit-ci", stdin=json.dumps(spec4),
                        env=KENV)
check("a 403 'exceeded quota' is an upstream error to retry, not a refusal",
      rc != 0 and isinstance(out, dict) and out.get("error") == "upstream_error"
      and "exceeded quota" in out.get("message", ""), (rc, out, err))
http("POST", f"{server}/_stub/config", {"rules": []}, ctx=ctx)

rc, out, err = dispatchprobe("kubernetes", "-", "cto", "find-active",
                        "app.kubernetes.io/name=healer,healer/workflow-run-id=111", env=KENV)
check("find-active (kubernetes): the new CodeRun counts as active", rc == 0 and out == [name], out)
http("PATCH", f"{server}/apis/agents.platform/v1/namespaces/cto/coderuns/{name}/status",
               {"status": {"phase": "Succeeded", "pullRequestUrl": "https://github.com/pr/1"}},
               ctx=ctx, token=TOKEN)
rc, out, err = dispatchprobe("kubernetes", "-", "cto", "find-active",
                        "healer/workflow-run-id=111", env=KENV)
check("find-active: a Succeeded CodeRun is no longer active", rc == 0 and out == [], out)


# ---- spawn-remediation ----
issue = os.path.join(TMP, "A7-api-7d9f.md")
with open(issue, "w") as f:
    f.write("# Pod Failure: api-7d9f\n\n## Summary\nOOM\n")
SENV = dict(KENV, HEALER_DISPATCH="kubernetes", HEALER_NAMESPACE="cto",
            HEALER_DATA_DIR=os.path.join(TMP, "var"), HEALER_HEAL_REPOSITORY="acme/heal")


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
check("spawn-remediation: every contract section 7 label (attempt 1, empty where none "
      "applies)",
      lab.get("app.kubernetes.io/name") == "healer" and lab.get("healer/agent") == "rex"
      and lab.get("healer/task-id") == "42" and lab.get("healer/attempt") == "1"
      and all(lab.get(k) == "" for k in ("healer/failure-type", "healer/workflow-run-id",
                                          "healer/branch")), lab)
check("spawn-remediation: every contract section 7 env key",
      env.get("HEALER_TASK_ID") == "42"
      and all(env.get(k) == "" for k in ("FAILURE_TYPE", "WORKFLOW_RUN_ID", "PR_NUMBER",
                                          "TARGET_BRANCH")), env)
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
check("spawn-remediation: the CodeRun goes to HEALER_HEAL_REPOSITORY",
      r["spec"].get("repositoryUrl") == "https://github.com/acme/heal", r["spec"])

# no built-in repository (before: 5dlabs/cto): HEALER_HEAL_REPOSITORY, else
# the allowlist's first, else a clear error and no CodeRun
NOREPO = {k: v for k, v in SENV.items() if k != "HEALER_HEAL_REPOSITORY"}
n_before = len(heal_runs())
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "norepo-1",
                      "--issue-file", issue, "--target-pod", "norepo-pod", env=NOREPO)
check("spawn-remediation: no HEALER_HEAL_REPOSITORY nor HEALER_REPOSITORIES -> an error "
      "naming HEALER_HEAL_REPOSITORY, no CodeRun",
      rc == 1 and "HEALER_HEAL_REPOSITORY" in err and len(heal_runs()) == n_before, (rc, err))
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "norepo-2",
                      "--issue-file", issue, "--target-pod", "norepo-pod",
                      env=dict(NOREPO, HEALER_DISPATCH="none",
                               HEALER_REPOSITORIES="acme/first,acme/second"))
try:
    url = json.loads(out)["spec"].get("repositoryUrl")
except (ValueError, KeyError, TypeError):
    url = None
check("spawn-remediation: without HEALER_HEAL_REPOSITORY, the first of HEALER_REPOSITORIES",
      rc == 0 and url == "https://github.com/acme/first", (rc, url, err))

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
# --target-namespace: same-named pods of two namespaces have a run each (before: one
# blocked the other's for good); a run without the label still counts for every one
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "ns-1", "--issue-file",
                      issue, "--target-pod", "twin-pod", "--target-namespace", "prod", env=SENV)
rc2, out2, err2 = healer("spawn-remediation", "--alert", "a7", "--task-id", "ns-2",
                         "--issue-file", issue, "--target-pod", "twin-pod",
                         "--target-namespace", "staging", env=SENV)
rc3, out3, err3 = healer("spawn-remediation", "--alert", "a7", "--task-id", "ns-3",
                         "--issue-file", issue, "--target-pod", "twin-pod",
                         "--target-namespace", "prod", env=SENV)
twins = {c["metadata"]["labels"].get("task-id"): c for c in heal_runs()
         if c["metadata"]["labels"].get("target-pod") == "twin-pod"}
check("spawn-remediation: --target-namespace labels the run; another namespace's pod of the "
      "name gets its own, the same namespace's is refused",
      rc == 0 and rc2 == 0 and rc3 == 1 and "still" in err3 and sorted(twins) == ["ns-1", "ns-2"]
      and twins["ns-1"]["metadata"]["labels"].get("target-namespace") == "prod"
      and twins["ns-2"]["metadata"]["labels"].get("target-namespace") == "staging"
      and twins["ns-2"]["spec"]["env"].get("HEAL_LOG_FILE")
      == "/workspace/logs/twin-pod-current.log", (rc, err, rc2, err2, rc3, err3))
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "ns-4", "--issue-file",
                      issue, "--target-pod", "api-7d9f", "--target-namespace", "prod", env=SENV)
rc2, out2, err2 = healer("spawn-remediation", "--alert", "a7", "--task-id", "ns-5",
                         "--issue-file", issue, "--target-namespace", "prod", env=SENV)
rc3, out3, err3 = healer("spawn-remediation", "--alert", "a7", "--task-id", "ns-6",
                         "--issue-file", issue, "--target-pod", "x", "--target-namespace",
                         "Bad_NS", env=SENV)
check("spawn-remediation: a run without target-namespace still blocks the pod in any "
      "namespace; --target-namespace needs --target-pod and a namespace name",
      rc == 1 and "still" in err and rc2 == 2 and "--target-namespace" in err2 and rc3 == 2
      and "--target-namespace" in err3, (rc, err, rc2, err2, rc3, err3))
# an empty --target-pod is no target pod: the refusal names none
rc, out, err = healer("spawn-remediation", "--alert", "a9", "--task-id", "47", "--issue-file",
                      issue, "--target-pod", "", env=SENV)
rc2, out2, err2 = healer("spawn-remediation", "--alert", "a9", "--task-id", "48", "--issue-file",
                         issue, "--target-pod", "", env=SENV)
check("spawn-remediation: --target-pod '' is none, and the refusal says no pod",
      rc == 0 and rc2 == 1 and "for alert 'a9' is still" in err2 and "and pod" not in err2,
      (rc, err, rc2, err2))
# a name no pod can have is refused as fetch-logs refuses it (before: a
# CodeRun for pod "API_pod/with:weird..." pointing at logs never written)
weird = "API_pod/with:weird..chars__and-a-very-long-name-that-goes-past-sixty-three-characters-"
before = len(heal_runs())
bad = []
for pod_name, task in ((weird, "46"), ("Bad Pod", "46"), ("web-1", "x y/../z")):
    rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", task, "--issue-file",
                          issue, "--target-pod", pod_name, env=SENV)
    if rc != 2 or ("--target-pod" not in err and "--task-id" not in err):
        bad.append((pod_name[:20], task, rc, err))
check("spawn-remediation: a target pod or task id no pod or task can have is a usage error",
      not bad and len(heal_runs()) == before, bad)
# the alert type is the alert-type label unchanged and part of HEAL_LOG_FILE's
# path (before: '../../../etc/shadow #' and a newline went into the CodeRun's
# env, and 'bad/alert' shared the label 'bad-alert' with 'bad-alert')
bad = []
for alert in ("../../../etc/shadow #", "x\ny", "bad/alert", "-a7", "a7.", "", "a" * 64):
    rc, out, err = healer("spawn-remediation", "--alert", alert, "--task-id", "46",
                          "--issue-file", issue, "--target-pod", "web-1", env=SENV)
    if rc != 2 or "--alert" not in err:
        bad.append((alert[:20], rc, err))
check("spawn-remediation: an alert type that is no label value is a usage error",
      not bad and len(heal_runs()) == before, bad)
long_label_pod = "api." + "x" * 70 + ".web-1"  # valid: parts need not be 63 or shorter
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "46", "--issue-file",
                      issue, "--target-pod", long_label_pod, env=SENV)
w = [c for c in heal_runs() if c["spec"]["env"].get("TASK_ID") == "46"]
check("spawn-remediation: a pod name too long for a label is hashed into a valid one (no 422)",
      rc == 0 and w and len(w[0]["metadata"]["labels"]["target-pod"]) <= 63
      and w[0]["metadata"]["labels"]["target-pod"].startswith("api.xxx"), (rc, err, w))
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "47", "--issue-file",
                      os.path.join(TMP, "missing.md"), env=SENV)
check("spawn-remediation: a missing issue file -> exit 1 naming it",
      rc == 1 and "missing.md" in err and "No such file" in err, err)
# an issue file it cannot read is named as given (before: the error printed
# the freed buffer holding its path)
big = os.path.join(TMP, "too-big-issue.md")
with open(big, "w") as f:
    f.write("X" * (2 << 20))
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "47", "--issue-file",
                      big, env=SENV)
check("spawn-remediation: an issue file too large -> exit 1 naming its path",
      rc == 1 and f"issue file '{big}'" in err and "too large" in err, (rc, err))
# a relative issue file is named absolutely: the CodeRun's pod has another
# working directory
p = subprocess.run([HEALER, "spawn-remediation", "--alert", "a7", "--task-id", "47",
                    "--issue-file", os.path.join(".", os.path.basename(issue)), "--target-pod",
                    "rel-pod"], capture_output=True, text=True, env=clean_env(SENV),
                   cwd=os.path.dirname(issue), timeout=30)
w = [c for c in heal_runs() if c["spec"]["env"].get("TARGET_POD") == "rel-pod"]
check("spawn-remediation: a relative issue file -> HEAL_PROMPT_FILE is its absolute path",
      p.returncode == 0 and w and w[0]["spec"]["env"].get("HEAL_PROMPT_FILE") == issue,
      (p.returncode, p.stderr, w[0]["spec"]["env"] if w else None))
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "47", "--issue-file",
                      TMP, env=SENV)
check("spawn-remediation: a directory as the issue file -> exit 1 saying so (not 'does not"
      " exist')", rc == 1 and "is a directory" in err, err)

# an issue file that quotes a pod log: invalid UTF-8 and a NUL byte (before:
# "out of memory" and no CodeRun for the first, a prompt cut at the NUL for
# the second)
raw_issue = os.path.join(TMP, "A7-raw.md")
with open(raw_issue, "wb") as f:
    f.write(b"# Pod Failure: raw\nlog: \xff\xfe\xc3 bytes\n\x00after the NUL: panic here\n")
rc, out, err = healer("spawn-remediation", "--alert", "a7", "--task-id", "48", "--issue-file",
                      raw_issue, "--target-pod", "raw-pod", env=SENV)
w = [c for c in heal_runs() if c["spec"]["env"].get("TASK_ID") == "48"]
p = w[0]["spec"].get("promptModification", "") if w else ""
check("spawn-remediation: an issue file with invalid UTF-8 and a NUL byte is created whole"
      " (invalid bytes as U+FFFD, the NUL dropped)",
      rc == 0 and p == "# Pod Failure: raw\nlog: \ufffd\ufffd\ufffd bytes\n"
      "after the NUL: panic here\n"
      and w[0]["spec"]["env"].get("TARGET_POD") == "raw-pod"
      and w[0]["metadata"]["labels"].get("target-pod", "") == "raw-pod",
      (rc, err, p, w))

# two pods whose names share their first 63 characters: a remediation of one
# does not block the other's (before, both labels were the same 63 characters)
long_pod = "batch-import-worker-for-the-nightly-customer-reconciliation-job"
rc1, out, err1 = healer("spawn-remediation", "--alert", "a7", "--task-id", "49", "--issue-file",
                        issue, "--target-pod", long_pod + "-pod-a", env=SENV)
rc2, out, err2 = healer("spawn-remediation", "--alert", "a7", "--task-id", "50", "--issue-file",
                        issue, "--target-pod", long_pod + "-pod-b", env=SENV)
rc3, out, err3 = healer("spawn-remediation", "--alert", "a7", "--task-id", "51", "--issue-file",
                        issue, "--target-pod", long_pod + "-pod-a", env=SENV)
w = [c["metadata"]["labels"].get("target-pod", "") for c in heal_runs()
     if c["spec"]["env"].get("TASK_ID") in ("49", "50")]
check("spawn-remediation: pods sharing their first 63 characters are told apart (the second is"
      " created, the first's again refused)",
      rc1 == 0 and rc2 == 0 and rc3 == 1 and len(w) == 2 and w[0] != w[1]
      and all(len(x) <= 63 and x[-1].isalnum() for x in w), (rc1, err1, rc2, err2, rc3, w))

# directory and none modes
DENV = {"HEALER_DISPATCH": "directory", "HEALER_DATA_DIR": os.path.join(TMP, "var"),
        "HEALER_HEAL_REPOSITORY": "acme/heal",
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
# what a SIGKILLed writer leaves behind is cleaned when a dispatcher opens
stale = [".healer-x.json.bcdf2", ".healer-x.json.bcdf2.tmp.4242", "healer-y.json.tmp.4243"]
for n in stale + [".healer-z.json.fresh", "notes.txt"]:
    open(os.path.join(cdir, n), "w").write("{}")
for n in stale + ["notes.txt"]:
    os.utime(os.path.join(cdir, n), (1, 1))
rc, out, err = healer("spawn-remediation", "--alert", "a10", "--task-id", "10", "--issue-file",
                      issue, "--target-pod", "p2", env=DENV)
left = sorted(os.listdir(cdir))
check("directory mode: stale temporary files of a killed writer are removed at start, a fresh"
      " one and other files are kept",
      rc == 0 and not set(stale) & set(left) and ".healer-z.json.fresh" in left
      and "notes.txt" in left and files[0] in left, (rc, err, left))
for n in (".healer-z.json.fresh", "notes.txt"):
    os.unlink(os.path.join(cdir, n))
for n in left:
    if n not in files and n.endswith(".json") and n != files[0]:
        os.unlink(os.path.join(cdir, n))
rc, out, err = healer("spawn-remediation", "--alert", "a9", "--task-id", "9", "--issue-file",
                      issue, env=dict(DENV, HEALER_DISPATCH="none"))
check("none mode: prints the manifest, writes nothing",
      rc == 0 and json.loads(out)["spec"]["service"] == "heal" and len(os.listdir(cdir)) == 1,
      (rc, out, err))

finish()

finish()
