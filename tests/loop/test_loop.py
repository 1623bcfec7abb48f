#!/usr/bin/env python3
"""test_loop.py - the remediation loop (contract section 9) end to end: a
real `healer server` against the Kubernetes stand-in (watch streams with
resourceVersions, bookmarks, 410 Gone, cut connections, CodeRun status
changes, pods and their logs, DELETE), the GitHub stand-in (PRs, comments,
reactions, re-runs, check runs), the Discord and Slack stand-ins and a real
SMTP server (aiosmtpd).

Scenarios: an old CodeRun of a task the store does not know does not hold
back the watch's resume point; success on attempt 1 (CodeRun Succeeded, then the job passes on
the branch); the agent fails -> attempt 2 carries the CodeRun's message and
the agent's own output; the CodeRun succeeds but CI still fails -> attempt 3
on another agent; the last failure -> exactly one Discord, Slack, email and
PR comment, with Discord answering 429 first and healer killed while the
outbox is full; /healer retry failing again -> a second escalation round on
every channel, once, across a kill and a replay of the round; SIGKILL while
an attempt fails and a compacted watch on
restart -> exactly one next attempt; a CodeRun deleted while healer was
down; a running CodeRun's labels edited (a selector watch's DELETED, the
CodeRun followed by name); a cut watch -> reconnect; /healer
commands from allowed and disallowed authors, a redelivered comment,
/healer status and /healer stop; a runner shutdown is re-run before any
agent; a budget of one CodeRun with three failures; the loop in directory
dispatch. Standard library only; prints TAP."""
import http.client
import json
import urllib.parse
import os
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import Healer, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(dtest.ROOT, "tests", "notify"))
import ntest  # noqa: E402

SECRET = "loop-webhook-secret"
GTOKEN = "ghs_loop_token_value"
LEAK_PW = "pushpw9917"  # a password in a URL a CodeRun's message quotes
KTOKEN = "kube-loop-token"
REPO = "acme/gadgets"
NS = "cto"
SHA0 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
SHA1 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
CLIPPY_LOG = "\n".join([
    "2025-01-15T10:30:00.0000000Z ##[group]Run cargo clippy --all-targets -- -D warnings",
    "2025-01-15T10:30:02.0000000Z error: this expression creates a reference which is "
    "immediately dereferenced by the compiler",
    "2025-01-15T10:30:02.0000000Z   --> src/lib.rs:34:9",
    "2025-01-15T10:30:03.0000000Z error: could not compile `gadgets` (lib) due to 1 previous error",
    "2025-01-15T10:30:03.0000000Z ##[error]Process completed with exit code 101.",
]) + "\n"
RUNNER_LOG = "\n".join([
    "2025-01-15T10:30:00.0000000Z ##[group]Run cargo test",
    "2025-01-15T10:31:00.0000000Z ##[error]The runner has received a shutdown signal. "
    "This can happen when the runner service is stopped, or a manually started runner is "
    "canceled.",
    "2025-01-15T10:31:00.0000000Z ##[error]The operation was canceled.",
]) + "\n"


def job_event(job_id, run_id, branch, name="clippy", conclusion="failure", sha=SHA0,
              run_attempt=1):
    return {
        "action": "completed",
        "workflow_job": {
            "id": job_id, "run_id": run_id, "run_attempt": run_attempt,
            "workflow_name": "Gadget CI", "name": name, "head_branch": branch,
            "head_sha": sha, "status": "completed", "conclusion": conclusion,
            "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}/job/{job_id}",
            "steps": [{"name": "Run clippy", "status": "completed", "conclusion": conclusion,
                       "number": 3}],
        },
        "repository": {"full_name": REPO, "html_url": f"https://github.com/{REPO}",
                       "default_branch": "main"},
        "sender": {"login": "dev", "type": "User"},
    }


def comment_event(comment_id, pr, body, association):
    return {"action": "created",
            "issue": {"number": pr, "title": "Gadgets",
                      "pull_request": {"url": f"https://api.github.com/repos/{REPO}/pulls/{pr}"}},
            "comment": {"id": comment_id, "body": body, "author_association": association,
                        "user": {"login": "someone", "type": "User"}},
            "repository": {"full_name": REPO, "default_branch": "main"},
            "sender": {"login": "someone", "type": "User"}}


def review_comment_event(comment_id, pr, body, association):
    """A comment on a line of PR pr's diff (pull_request_review_comment)."""
    return {"action": "created",
            "pull_request": {"number": pr, "title": "Gadgets", "state": "open"},
            "comment": {"id": comment_id, "body": body, "author_association": association,
                        "path": "src/lib.rs", "line": 3,
                        "user": {"login": "someone", "type": "User"}},
            "repository": {"full_name": REPO, "default_branch": "main"},
            "sender": {"login": "someone", "type": "User"}}


# ---- stand-ins ---------------------------------------------------------------
ca = dtest.make_ca("kube")
_, kport = dtest.start_stub("kube_stub.py", "--cert", ca["cert"], "--key", ca["key"],
                            "--token", KTOKEN, "--crd", dtest.CRD)
KURL = f"https://127.0.0.1:{kport}"
KCTX = ssl.create_default_context(cafile=ca["ca"])
kubeconfig = dtest.write_kubeconfig(os.path.join(dtest.TMP, "kubeconfig"), KURL,
                                    ca_path=ca["ca"], token=KTOKEN, namespace=NS)
_, gport = dtest.start_stub("github_stub.py", "--token", GTOKEN)
GURL = f"http://127.0.0.1:{gport}"
_, dport = ntest.start_stub("discord_stub.py", "--webhook", "111:disc-token")
DURL = f"http://127.0.0.1:{dport}"
_, slport = ntest.start_stub("slack_stub.py", "--hook", "T1/B1/slacksecret")
SLURL = f"http://127.0.0.1:{slport}"
_, smtp_port, MAILDIR = ntest.start_smtp()


def kube(method, path, body=None):
    return dtest.http(method, KURL + path, body, ctx=KCTX, token=KTOKEN)


def gh(method, path, body=None):
    return dtest.http(method, GURL + path, body, token=GTOKEN)


def coderuns(branch=None):
    runs = kube("GET", "/_stub/coderuns") or []
    if branch:
        runs = [c for c in runs
                if c["spec"].get("env", {}).get("TARGET_BRANCH", "").startswith(branch)
                or c["metadata"]["labels"].get("healer/branch") == branch.replace("/", "-")]
    return runs


def by_task(tid):
    runs = kube("GET", "/_stub/coderuns?labelSelector=healer/task-id="
                + urllib.parse.quote(tid)) or []
    return sorted(runs, key=lambda c: int(c["metadata"]["labels"].get("healer/attempt", "0")))


def set_phase(name, phase, message=None, status=None):
    return kube("POST", "/_stub/coderun-phase", {"namespace": NS, "name": name, "phase": phase,
                                                "message": message, "status": status or {}})


def check_run(cid, run_id, branch, sha, conclusion):
    """An Actions check run of job cid of run run_id, as GitHub lists it."""
    return {"id": cid, "name": "clippy", "head_sha": sha, "status": "completed",
            "conclusion": conclusion, "app": {"slug": "github-actions"},
            "html_url": f"https://github.com/{REPO}/runs/{cid}",
            "details_url": f"https://github.com/{REPO}/actions/runs/{run_id}/job/{cid}",
            "check_suite": {"id": cid + 100000, "head_branch": branch, "head_sha": sha},
            "output": {"title": "clippy", "summary": "1 error", "text": None}}


def run_of(run_id, branch, sha, conclusion):
    """A workflow run as GitHub's runs API answers it."""
    return {"id": run_id, "name": "Gadget CI", "head_branch": branch, "head_sha": sha,
            "status": "completed", "conclusion": conclusion, "run_attempt": 1,
            "workflow_id": 55}


def pull(number, branch, sha, title="Gadgets"):
    """An open pull request of branch at sha."""
    return {"number": number, "state": "open", "title": title, "user": {"login": "dev"},
            "html_url": f"https://github.com/{REPO}/pull/{number}", "body": "",
            "head": {"ref": branch, "sha": sha, "repo": {"full_name": REPO}},
            "base": {"ref": "main", "repo": {"full_name": REPO}}}


def seed_job(job_id, log=CLIPPY_LOG):
    gh("POST", "/_stub/seed", {"logs": {str(job_id): log}})


BASE_ENV = {
    "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": GURL, "GITHUB_TOKEN": GTOKEN,
    "KUBECONFIG": kubeconfig, "HEALER_DISPATCH": "kubernetes", "HEALER_NAMESPACE": NS,
    "HEALER_SOURCE_TIMEOUT_MS": "1500", "HEALER_CONTEXT_TIMEOUT_MS": "4000",
    "HEALER_LOG_LEVEL": "info", "HEALER_TIME_WINDOW_MINS": "0",
    "HEALER_LOOP_INTERVAL_MS": "100", "HEALER_VERIFY_TIMEOUT_MINS": "30",
    # every section's attempts are of one repository, within the hour
    "HEALER_MAX_ATTEMPTS_PER_HOUR": "60",
    "DISCORD_WEBHOOK_URL": f"{DURL}/api/webhooks/111/disc-token",
    "SLACK_WEBHOOK_URL": f"{SLURL}/services/T1/B1/slacksecret",
    "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "HEALER_EMAIL_TO": "oncall@example.com",
    "HEALER_EMAIL_FROM": "healer@example.com",
}


def task_of(srv, tid):
    """The task as written; {} while there is none (also while its delivery
    waits for a worker: a queued document naming the delivery)."""
    st, d = srv.request("GET", f"/api/remediations/{tid}")
    return d if st == 200 and "delivery_id" not in d else {}


def wait_state(srv, tid, state, timeout=20):
    return wait_for(lambda: task_of(srv, tid).get("state") == state, timeout)


def deliver(srv, payload, event="workflow_job", delivery=None):
    st, ans = srv.deliver(payload, event=event, delivery=delivery)
    return ans.get("task_id") if st == 202 else None


def main():
    gh("POST", "/_stub/seed", {"pulls": [
        {"number": 77, "state": "open", "title": "More gadgets", "user": {"login": "dev"},
         "html_url": f"https://github.com/{REPO}/pull/77", "body": "",
         "head": {"ref": "loop/b", "sha": SHA0}, "base": {"ref": "main"}},
        {"number": 78, "state": "open", "title": "Stop me", "user": {"login": "dev"},
         "html_url": f"https://github.com/{REPO}/pull/78", "body": "",
         "head": {"ref": "loop/g", "sha": SHA0}, "base": {"ref": "main"}}]})
    # a CodeRun of healer's made long ago for a task this store does not know
    # (a reset store): never kept waiting for its attempt, so the watch saves
    # its resume point (before: kept 10 minutes, again after every relist, and
    # while kept the resume point was never saved)
    kube("POST", "/_stub/seed", {"coderuns": [{
        "apiVersion": "agents.platform/v1", "kind": "CodeRun",
        "metadata": {"name": "healer-rex-clippy-0000000000", "namespace": NS,
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"app.kubernetes.io/name": "healer", "healer/task-id": "hl-of-old",
                                "healer/attempt": "1"}},
        "spec": {"service": "healer-ci"}, "status": {"phase": "Succeeded"}}, {
        # and one `healer spawn-remediation` made just now: its task id is
        # the operator's, no task of this store (before: kept 10 minutes)
        "apiVersion": "agents.platform/v1", "kind": "CodeRun",
        "metadata": {"name": "healer-heal-cli-0000000001", "namespace": NS,
                     "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "labels": {"app.kubernetes.io/name": "healer", "healer/task-id": "cli-t1",
                                "healer/attempt": "1", "remediation": "true"}},
        "spec": {"service": "healer-heal"}, "status": {"phase": "Running"}}]})
    srv = Healer(os.path.join(dtest.TMP, "h1"), BASE_ENV).start()

    def resume_point():
        con = dtest.store_db(srv.data_dir)
        try:
            row = con.execute("SELECT value FROM kv WHERE key = "
                              "'watch.coderuns.resource_version'").fetchone()
        finally:
            con.close()
        return row[0] if row else None
    check("an old CodeRun of an unknown task, or a new one of a task this store does not "
          "have, does not hold back the watch's resume point",
          wait_for(resume_point, 10), srv.log_tail()[-1500:])

    # ---- A. success on attempt 1 ----------------------------------------------------
    seed_job(7001)
    tid = deliver(srv, job_event(7001, 8001, "loop/a"))
    runs = wait_for(lambda: by_task(tid), 15)
    check("a failure gets its first CodeRun", len(runs) == 1, srv.log_tail())
    name = runs[0]["metadata"]["name"] if runs else "?"
    set_phase(name, "Running")
    set_phase(name, "Succeeded", status={"pullRequestUrl": f"https://github.com/{REPO}/pull/5"})
    check("a Succeeded CodeRun waits for CI (verifying)", wait_state(srv, tid, "verifying"),
          task_of(srv, tid))
    deliver(srv, job_event(7101, 8101, "loop/a", conclusion="success", sha=SHA1))
    ok = wait_state(srv, tid, "succeeded")
    t = task_of(srv, tid)
    check("the job passing at the fixed commit makes the task succeed, with no retry",
          ok and len(t.get("attempts", [])) == 1
          and t["attempts"][0]["outcome"] == "success"
          and t["attempts"][0]["pr_url"] == f"https://github.com/{REPO}/pull/5", t)

    # ---- A2. the CodeRun finishes before its attempt is recorded ------------------
    # (the apiserver answers the create late; the watch already shows the object
    # and the controller moves it to Succeeded meanwhile)
    kube("POST", "/_stub/config", {"create_reply_delay_ms": 2500})
    seed_job(7011)
    tid_a2 = deliver(srv, job_event(7011, 8011, "loop/a2"))
    runs = wait_for(lambda: by_task(tid_a2), 15) or []
    if runs:
        set_phase(runs[0]["metadata"]["name"], "Succeeded")
    kube("POST", "/_stub/config", {"create_reply_delay_ms": 0})
    check("a CodeRun that ended before its attempt was recorded is still judged (verifying)",
          runs and wait_state(srv, tid_a2, "verifying", 20), task_of(srv, tid_a2))

    # ---- A3. the Kubernetes API refusing for longer than five claims ------------------
    # (the delivery is given back with a growing pause for an hour, not failed)
    cr_path = f"/apis/agents.platform/v1/namespaces/{NS}/coderuns"
    kube("POST", "/_stub/config", {"rules": [{"method": "POST", "path": cr_path, "status": 503}]})
    seed_job(7012)
    tid_a3 = deliver(srv, job_event(7012, 8012, "loop/a3"), delivery="loop-a3")

    def a3_delivery():
        return next((d for d in srv.request("GET", "/api/status")[1].get("recent", [])
                     if d.get("delivery_id") == "loop-a3"), {})
    kept = wait_for(lambda: a3_delivery().get("claims", 0) >= 5
                    and a3_delivery().get("state") == "received", 60)
    check("a Kubernetes API down past five claims: the delivery is kept for another claim",
          kept and not by_task(tid_a3), a3_delivery())
    kube("POST", "/_stub/config", {"rules": []})
    check("... and remediated once the API answers",
          len(wait_for(lambda: by_task(tid_a3), 60) or []) == 1, [a3_delivery(), srv.log_tail()])

    # ---- A4. killed between the CodeRun and its attempt's record ----------------------
    # (the task already names its CodeRun, its attempt is still `preparing`: the
    # delivery, processed again after the restart, resumes its own remediation;
    # it is not a CI result of the task it started, which would leave the
    # attempt without its CodeRun until the attempt's timeout)
    seed_job(7014)
    tid_a4 = deliver(srv, job_event(7014, 8014, "loop/a4"), delivery="loop-a4")

    def a4_attempt():
        return (task_of(srv, tid_a4).get("attempts") or [{}])[0]
    def a4_delivery():
        return next((d for d in srv.request("GET", "/api/status")[1].get("recent", [])
                     if d.get("delivery_id") == "loop-a4"), {})
    first = wait_for(lambda: a4_attempt().get("coderun"), 15)
    # the worker finishes the delivery just after the attempt names its
    # CodeRun: killed before that, the delivery is still being processed,
    # replay refuses it and the restart takes it back instead; this case
    # replays a processed one
    wait_for(lambda: a4_delivery().get("state") == "processed", 15)
    srv.kill()
    dtest.store_exec(srv.data_dir, "UPDATE attempts SET phase = 'preparing', coderun_name = NULL"
                     " WHERE task_id = ? AND n = 1", (tid_a4,))
    rc, _, err = dtest.healer("replay", "loop-a4", env=dict(BASE_ENV, HEALER_DATA_DIR=srv.data_dir))
    srv = Healer(srv.data_dir, BASE_ENV).start()
    resumed = wait_for(lambda: a4_attempt().get("coderun") == first
                       and a4_attempt().get("phase") != "preparing", 20)
    check("a delivery replayed after a kill between its CodeRun and the attempt's record"
          " resumes the attempt (one CodeRun), not taken for its own task's CI result",
          rc == 0 and first and resumed and len(by_task(tid_a4)) == 1
          and a4_delivery().get("reason") != "attached",
          [err, a4_attempt(), a4_delivery()])

    # ---- B. the agent fails -> attempt 2 with its message and output ---------------
    seed_job(7002)
    tid_b = deliver(srv, job_event(7002, 8002, "loop/b"))
    runs = wait_for(lambda: by_task(tid_b), 15)
    n1 = runs[0]["metadata"]["name"] if runs else "?"
    kube("POST", "/_stub/seed", {
        "pods": [{"metadata": {"name": "job-b1-x7k2p", "namespace": NS,
                               "labels": {"job-name": "job-b1"}},
                  "spec": {"containers": [{"name": "agent"}]}, "status": {"phase": "Failed"}}],
        "logs": [{"namespace": NS, "pod": "job-b1-x7k2p", "container": "agent",
                  "text": "agent: tried removing the borrow\nAGENT-OUTPUT-MARKER build broke\n"}]})
    set_phase(n1, "Running", status={"jobName": "job-b1"})
    time.sleep(0.8)  # the loop notes the Job's pod while the agent runs
    set_phase(n1, "Failed", message="agent exited 1: STATUS-MESSAGE-MARKER")
    runs = wait_for(lambda: len(by_task(tid_b)) >= 2 and by_task(tid_b), 20) or []
    p2 = runs[1]["spec"].get("promptModification", "") if len(runs) > 1 else ""
    check("a failed CodeRun starts attempt 2 (label healer/attempt=2)",
          len(runs) == 2 and runs[1]["metadata"]["labels"].get("healer/attempt") == "2",
          [c["metadata"]["labels"] for c in runs])
    check("attempt 2's prompt carries the CodeRun's status message and the agent's output",
          "STATUS-MESSAGE-MARKER" in p2 and "AGENT-OUTPUT-MARKER" in p2
          and "Retry Attempt 2" in p2, p2[:3000])
    t = task_of(srv, tid_b)
    check("attempt 1 is recorded agent_failed with the reason",
          t.get("attempts") and t["attempts"][0]["outcome"] == "agent_failed"
          and "STATUS-MESSAGE-MARKER" in (t["attempts"][0]["reason"] or ""), t)

    # ---- C. the CodeRun succeeds but CI still fails -> attempt 3, another agent -----
    n2 = runs[1]["metadata"]["name"] if len(runs) > 1 else "?"
    set_phase(n2, "Succeeded", status={"pullRequestUrl": f"https://github.com/{REPO}/pull/77"})
    wait_state(srv, tid_b, "verifying")
    seed_job(7202)
    deliver(srv, job_event(7202, 8202, "loop/b", sha=SHA1))
    runs = wait_for(lambda: len(by_task(tid_b)) >= 3 and by_task(tid_b), 20) or []
    a3 = runs[2]["metadata"]["labels"].get("healer/agent") if len(runs) > 2 else None
    t = task_of(srv, tid_b)
    check("CI failing after a Succeeded CodeRun is ci_still_failing, and attempt 3 goes to "
          "another agent", len(runs) == 3 and a3 and a3 != "rex"
          and t["attempts"][1]["outcome"] == "ci_still_failing", [a3, t.get("attempts")])

    # ---- D. the last failure: one message per channel, 429 first, a kill ------------
    ntest_http = dtest.http
    ntest_http("POST", DURL + "/_stub/ratelimit", {"times": 1, "retry_after": 8})
    # GitHub creates the PR comment but the answer is lost (502): its retry finds it
    gh("POST", "/_stub/config", {"comment_then_fail": 1})
    n3 = runs[2]["metadata"]["name"] if len(runs) > 2 else "?"
    # the agent's word for its PR: a link elsewhere, labelled like a PR here
    # the CodeRun's message quotes healer's GitHub token and a URL's
    # password (a git error): neither reaches the store, the API or a message
    set_phase(n3, "Failed", message=f"gave up: git push https://bot:{LEAK_PW}"
              f"@git.example/{REPO}.git refused; token {GTOKEN} expired",
              status={"pullRequestUrl": f"https://evil.example/{REPO}/pull/77"})
    escalated = wait_state(srv, tid_b, "escalated", 20)
    # the kill comes once Slack, the email and the PR comment are recorded
    # delivered and Discord's message waits for its 429's 8 s: the outbox
    # holds a message and no request is on its way (a message on its way at
    # a kill may go twice: no service takes an idempotency key)
    wait_for(lambda: sorted(n["channel"] for n in task_of(srv, tid_b).get("notifications", [])
                            if n["state"] == "delivered") == ["email", "github", "slack"], 20)
    srv.kill()
    srv = Healer(srv.data_dir, BASE_ENV).start()
    discord = wait_for(lambda: ntest_http("GET", DURL + "/_stub/messages"), 20) or []
    slack = wait_for(lambda: ntest_http("GET", SLURL + "/_stub/messages"), 20) or []
    mails = ntest.wait_mail(MAILDIR, 1, 20)
    comments = wait_for(lambda: [c for c in gh("GET", "/_stub/comments")
                                 if c["issue"] == 77], 20) or []
    time.sleep(1.5)  # anything sent twice would show up by now
    discord = ntest_http("GET", DURL + "/_stub/messages")
    slack = ntest_http("GET", SLURL + "/_stub/messages")
    mails = ntest.wait_mail(MAILDIR, 1, 1)
    comments = [c for c in gh("GET", "/_stub/comments") if c["issue"] == 77]
    check("after the last attempt the task is escalated", escalated, task_of(srv, tid_b))
    check("exactly one Discord message (after a 429), one Slack message, one email and one "
          "PR comment (created, answered 502, found by its retry)", len(discord) == 1 and len(slack) == 1 and len(mails) == 1
          and len(comments) == 1, [len(discord), len(slack), len(mails), len(comments)])
    check("no message broke a service's limits",
          not ntest_http("GET", DURL + "/_stub/violations")
          and not ntest_http("GET", SLURL + "/_stub/violations"))
    sent = json.dumps([discord, slack]) + "".join(m[0].decode("utf-8", "replace")
                                                  for m in mails) \
        + "".join(c["body"] for c in comments)
    check("a CodeRun's pullRequestUrl outside the task's repository is linked nowhere; the "
          "repository's own PR is", "evil.example" not in sent
          and f"(https://github.com/{REPO}/pull/77)" in "".join(c["body"] for c in comments),
          sent[:4000])
    con = dtest.store_db(srv.data_dir)
    try:
        rows = [list(r) for r in con.execute("SELECT * FROM attempts WHERE task_id = ?",
                                             (tid_b,)).fetchall()]
    finally:
        con.close()
    stored = json.dumps(task_of(srv, tid_b)) + json.dumps(rows, default=str)
    check("a secret in a CodeRun's message reaches no message, no API answer and no stored "
          "attempt", "gave up" in sent and LEAK_PW not in sent and GTOKEN not in sent
          and "gave up" in stored and LEAK_PW not in stored and GTOKEN not in stored,
          [sent[:3000], stored[:3000]])
    emb = (discord[0]["payload"].get("embeds") or [{}])[0] if discord else {}
    check("the escalation names the workflow, the branch and the attempts",
          "Gadget CI" in json.dumps(emb) and "loop/b" in json.dumps(emb)
          and comments and "healer-" in comments[0]["body"], [emb, comments[:1]])
    t = wait_for(lambda: all(n["state"] == "delivered"
                             for n in task_of(srv, tid_b).get("notifications", []))
                 and task_of(srv, tid_b), 20) or task_of(srv, tid_b)
    check("the notifications are recorded delivered on the task",
          sorted((n["channel"], n["state"]) for n in t.get("notifications", []))
          == [("discord", "delivered"), ("email", "delivered"), ("github", "delivered"),
              ("slack", "delivered")], t.get("notifications"))
    again = [c for c in gh("GET", "/_stub/comments") if c["issue"] == 77]
    check("the PR comment GitHub created but answered 502 for is not posted again by its retry",
          len(again) == 1 and [n["attempts"] for n in t.get("notifications", [])
                               if n["channel"] == "github"] == [2], [len(again), t.get(
                                   "notifications")])

    # ---- D2. /healer retry with a hint after the escalation; a closed PR -----------
    gh("POST", "/_stub/seed", {"issue_comments": {"9010": {"id": 9010}, "9011": {"id": 9011},
                                                  "9012": {"id": 9012}}})
    deliver(srv, comment_event(9010, 77, "/healer retry RETRY-HINT-MARKER pin the toolchain",
                               "OWNER"), event="issue_comment")
    runs = wait_for(lambda: len(by_task(tid_b)) >= 4 and by_task(tid_b), 20) or []
    p4 = runs[3]["spec"].get("promptModification", "") if len(runs) > 3 else ""
    check("/healer retry HINT after the escalation: one more attempt whose prompt carries "
          "the hint", len(runs) == 4 and "RETRY-HINT-MARKER pin the toolchain" in p4,
          [len(runs), p4[:3000]])
    # the hint is credited to who commented it (not the failure's sender, dev)
    check("... credited to the commenter of the /healer retry, as a retry",
          "Requested by `someone` (`comment`: `retry`)" in p4, [p4[:3000]])

    # ---- D3. the retry fails too: a second escalation round, told once ----------------
    # (the first round's messages are not sent again; a kill after the second
    # round was delivered, and a driver that enqueued it but died before
    # recording the task escalated, send nothing twice)
    wait_state(srv, tid_b, "running", 15)
    n4 = runs[3]["metadata"]["name"] if len(runs) > 3 else "?"
    set_phase(n4, "Failed", message="gave up again")
    escalated = wait_for(lambda: task_of(srv, tid_b).get("state") == "escalated"
                         and len(task_of(srv, tid_b).get("attempts", [])) == 4, 20)
    # a kill once the second round is recorded delivered: the restart sends
    # nothing again (a kill while a message is on its way to a service can
    # send it twice: none of the services takes an idempotency key)
    wait_for(lambda: sorted((n["channel"], n["state"])
                            for n in task_of(srv, tid_b).get("notifications", [])
                            if n.get("ref") == "4")
             == [("discord", "delivered"), ("email", "delivered"), ("github", "delivered"),
                 ("slack", "delivered")], 20)
    srv.kill()
    srv = Healer(srv.data_dir, BASE_ENV).start()

    def round_counts():
        return [len(ntest_http("GET", DURL + "/_stub/messages")),
                len(ntest_http("GET", SLURL + "/_stub/messages")),
                len(ntest.wait_mail(MAILDIR, 1, 0.1)),
                len([c for c in gh("GET", "/_stub/comments") if c["issue"] == 77])]
    wait_for(lambda: round_counts() == [2, 2, 2, 2], 20)
    time.sleep(1.5)  # anything sent twice would show up by now
    counts = round_counts()
    check("/healer retry failing again escalates again: a second Discord message, Slack "
          "message, email and PR comment (new, not an edit of the first)",
          escalated and counts == [2, 2, 2, 2], [escalated, counts, task_of(srv, tid_b)])
    discord = ntest_http("GET", DURL + "/_stub/messages")
    slack = ntest_http("GET", SLURL + "/_stub/messages")
    mails = ntest.wait_mail(MAILDIR, 2, 1)
    comments = [c for c in gh("GET", "/_stub/comments") if c["issue"] == 77]
    emb2 = (discord[1]["payload"].get("embeds") or [{}])[0] if len(discord) > 1 else {}
    ids = [ln for m in mails for ln in m[0].decode("utf-8", "replace").splitlines()
           if ln.lower().startswith("message-id:")]
    check("the second round tells the attempts so far (4, attempt 4's outcome and CodeRun), "
          "its email with a Message-ID of its own",
          "4 (max 3)" in json.dumps(emb2) and "gave up again" in json.dumps(emb2)
          and len(slack) > 1 and "after 4 attempts" in json.dumps(slack[1])
          and len(comments) > 1 and "I tried 4 times" in comments[1]["body"]
          and n4 in comments[1]["body"] and "I tried 3 times" in comments[0]["body"]
          and len(ids) == 2 and ids[0] != ids[1],
          [emb2, slack[1:], comments[1:], ids])
    srv.kill()
    dtest.store_exec(srv.data_dir, "UPDATE remediation_tasks SET state = 'running',"
                     " next_check_ms = ?, lease_owner = NULL, lease_until_ms = NULL"
                     " WHERE task_id = ?", (int(time.time() * 1000), tid_b))
    srv = Healer(srv.data_dir, BASE_ENV).start()
    again = wait_state(srv, tid_b, "escalated", 20)
    time.sleep(1.5)
    counts = round_counts()
    t = task_of(srv, tid_b)
    check("the second round applied again after a restart (enqueued, not yet recorded) "
          "sends nothing twice; the task lists both rounds delivered",
          again and counts == [2, 2, 2, 2]
          and sorted((n["channel"], n.get("ref"), n["state"])
                     for n in t.get("notifications", []))
          == sorted((ch, r, "delivered") for ch in ("discord", "email", "github", "slack")
                    for r in ("3", "4")), [again, counts, t.get("notifications")])

    # another retry, then /healer stop
    gh("POST", "/_stub/seed", {"issue_comments": {"9013": {"id": 9013}}})
    deliver(srv, comment_event(9013, 77, "/healer retry", "OWNER"), event="issue_comment")
    runs = wait_for(lambda: len(by_task(tid_b)) >= 5 and by_task(tid_b), 20) or []
    check("a second /healer retry after the second escalation: attempt 5", len(runs) == 5,
          [len(runs), task_of(srv, tid_b).get("state")])
    wait_state(srv, tid_b, "running", 15)
    deliver(srv, comment_event(9011, 77, "/healer stop", "OWNER"), event="issue_comment")
    check("... and /healer stop ends it", wait_state(srv, tid_b, "stopped", 15),
          task_of(srv, tid_b).get("state"))
    sha2 = "c" * 40
    gh("POST", "/_stub/seed", {
        "pulls": [{"number": 79, "state": "closed", "merged": False, "title": "Abandoned",
                   "user": {"login": "dev"}, "html_url": f"https://github.com/{REPO}/pull/79",
                   "body": "", "head": {"ref": "loop/closed", "sha": sha2},
                   "base": {"ref": "main"}}],
        "check_runs_by_ref": {sha2: [
            {"id": 7401, "name": "clippy", "head_sha": sha2, "status": "completed",
             "conclusion": "failure", "app": {"slug": "github-actions"},
             "html_url": f"https://github.com/{REPO}/runs/7401",
             "output": {"title": "clippy", "summary": "1 error", "text": None}}]}})
    seed_job(7401)
    deliver(srv, comment_event(9012, 79, "/healer fix please", "OWNER"), event="issue_comment",
            delivery="cmd-closed")

    def closed_delivery():
        return next((d for d in srv.request("GET", "/api/status")[1].get("recent", [])
                     if d.get("delivery_id") == "cmd-closed"), {})
    done = wait_for(lambda: closed_delivery().get("state") == "processed", 20)
    time.sleep(0.5)
    sent = [c["metadata"]["name"] for c in coderuns()
            if c["spec"].get("env", {}).get("PR_NUMBER") == "79"]
    check("/healer fix on a closed PR sends no agent", done and not sent,
          [closed_delivery(), sent])

    # ---- D3. /healer fix on a PR from a fork whose branch is called "main" -------------
    # (its head ref names the fork's branch: the agent cannot push there, and
    # the same name here is this repository's default branch; the fix goes to a
    # fix branch of the PR's head commit)
    sha3 = "d" * 40
    gh("POST", "/_stub/seed", {
        "pulls": [{"number": 80, "state": "open", "title": "From a fork",
                   "user": {"login": "outsider"},
                   "html_url": f"https://github.com/{REPO}/pull/80", "body": "",
                   "head": {"ref": "main", "sha": sha3,
                            "repo": {"full_name": "outsider/gadgets"}},
                   "base": {"ref": "main", "repo": {"full_name": REPO}}}],
        "check_runs_by_ref": {sha3: [
            {"id": 7402, "name": "clippy", "head_sha": sha3, "status": "completed",
             "conclusion": "failure", "app": {"slug": "github-actions"},
             "html_url": f"https://github.com/{REPO}/runs/7402",
             "details_url": f"https://github.com/{REPO}/actions/runs/8402/job/7402",
             "output": {"title": "clippy", "summary": "1 error", "text": None}}]},
        "runs": [{"id": 8402, "name": "Gadget CI", "head_branch": "main", "head_sha": sha3,
                  "status": "completed", "conclusion": "failure", "run_attempt": 1,
                  "workflow_id": 55}]})
    seed_job(7402)
    deliver(srv, comment_event(9014, 80, "/healer fix", "MEMBER"), event="issue_comment",
            delivery="cmd-fork")
    fork_runs = wait_for(lambda: [c for c in coderuns()
                                  if c["spec"].get("env", {}).get("PR_NUMBER") == "80"], 20) or []
    targets = [c["spec"]["env"].get("TARGET_BRANCH") for c in fork_runs]
    check("/healer fix on a fork's PR from its main: the agent pushes to a fix branch of the "
          "PR's head, not to this repository's main", targets == ["fix/clippy-dddddddd"],
          [targets, [ln for ln in srv.log_tail().splitlines() if "healer command" in ln]])
    # the job passing on this repository's main is not the fork task's CI status
    tid_d3 = fork_runs[0]["metadata"]["labels"]["healer/task-id"] if fork_runs else "?"
    if fork_runs:
        set_phase(fork_runs[0]["metadata"]["name"], "Succeeded")
    wait_state(srv, tid_d3, "verifying", 15)
    deliver(srv, job_event(7410, 8410, "main", conclusion="success", sha="5" * 40),
            delivery="main-passes")
    wait_for(lambda: next((d for d in srv.request("GET", "/api/status")[1].get("recent", [])
                           if d.get("delivery_id") == "main-passes"), {}).get("state")
             == "processed", 15)
    time.sleep(0.5)
    t = task_of(srv, tid_d3)
    check("... and the job passing on this repository's main does not judge the fork's task",
          t.get("state") == "verifying" and t.get("branch") != "main",
          {k: t.get(k) for k in ("state", "branch", "target_branch", "attempts")})

    # ---- D4. a task started from a check run is judged by the job's next result --------
    # (a check run names no workflow: an Actions one's is its run's, whose id
    # its details_url holds; without it the task had no workflow and no run,
    # no result of the job was ever its CI status, and a fix that passed was
    # judged ci_still_failing at the verify timeout)
    sha4, sha5 = "1" * 40, "2" * 40

    gh("POST", "/_stub/seed", {
        "pulls": [{"number": 81, "state": "open", "title": "Fix me", "user": {"login": "dev"},
                   "html_url": f"https://github.com/{REPO}/pull/81", "body": "",
                   "head": {"ref": "loop/d4", "sha": sha4, "repo": {"full_name": REPO}},
                   "base": {"ref": "main", "repo": {"full_name": REPO}}}],
        "check_runs_by_ref": {sha4: [check_run(7403, 8403, "loop/d4", sha4, "failure")]},
        "runs": [run_of(8403, "loop/d4", sha4, "failure"), run_of(8404, "loop/d4", sha5, "success"),
                 run_of(8405, "loop/d5", SHA0, "failure"), run_of(8406, "loop/d5", sha5, "success")]})
    seed_job(7403)
    deliver(srv, comment_event(9015, 81, "/healer fix", "MEMBER"), event="issue_comment")
    d4 = wait_for(lambda: [c for c in coderuns()
                           if c["spec"].get("env", {}).get("PR_NUMBER") == "81"], 20) or []
    tid_d4 = d4[0]["metadata"]["labels"]["healer/task-id"] if d4 else "?"
    if d4:
        set_phase(d4[0]["metadata"]["name"], "Succeeded")
    wait_state(srv, tid_d4, "verifying", 15)
    deliver(srv, job_event(7404, 8404, "loop/d4", conclusion="success", sha=sha5))
    check("/healer fix's task (from a check run) succeeds when the job then passes (a "
          "workflow_job event)", wait_state(srv, tid_d4, "succeeded", 15),
          {k: task_of(srv, tid_d4).get(k) for k in ("state", "workflow", "run_id", "attempts")})
    seed_job(7405)
    tid_d5 = deliver(srv, job_event(7405, 8405, "loop/d5"))
    d5 = wait_for(lambda: by_task(tid_d5), 15) or []
    if d5:
        set_phase(d5[0]["metadata"]["name"], "Succeeded")
    wait_state(srv, tid_d5, "verifying", 15)
    deliver(srv, {"action": "completed",
                  "check_run": check_run(7406, 8406, "loop/d5", sha5, "success"),
                  "repository": {"full_name": REPO, "default_branch": "main"},
                  "sender": {"login": "dev", "type": "User"}}, event="check_run")
    check("a check_run event of the job passing at another commit judges the attempt success",
          wait_state(srv, tid_d5, "succeeded", 15),
          {k: task_of(srv, tid_d5).get(k) for k in ("state", "workflow", "attempts")})

    # a check run of a job no task fixes on its branch costs no GitHub request
    # (its run's workflow is asked for only when a task could take it)
    deliver(srv, {"action": "completed",
                  "check_run": check_run(7499, 8499, "loop/none", sha5, "success"),
                  "repository": {"full_name": REPO, "default_branch": "main"},
                  "sender": {"login": "dev", "type": "User"}}, event="check_run",
            delivery="cr-none")
    wait_for(lambda: next((d for d in srv.request("GET", "/api/status")[1].get("recent", [])
                           if d.get("delivery_id") == "cr-none"), {}).get("state")
             == "processed", 15)
    asked = [r.get("path") for r in (gh("GET", "/_stub/requests") or [])
             if r.get("path", "").endswith("/actions/runs/8499")]
    check("a check run of a job no task fixes on its branch asks GitHub nothing", not asked,
          asked)

    # ---- D6. /healer stop while the PR's newest task has ended and an older one runs ----
    # (/healer fix starts a task per failing check; stop used to look at the
    # newest task only, answered "the task is succeeded" and left the other
    # agent running)
    sha6 = "6" * 40
    d6_checks = [check_run(7407, 8407, "loop/d6", sha6, "failure"),
                 dict(check_run(7408, 8408, "loop/d6", sha6, "failure"), name="fmt")]
    gh("POST", "/_stub/seed", {
        "pulls": [{"number": 82, "state": "open", "title": "Two checks",
                   "user": {"login": "dev"}, "html_url": f"https://github.com/{REPO}/pull/82",
                   "body": "", "head": {"ref": "loop/d6", "sha": sha6, "repo": {"full_name": REPO}},
                   "base": {"ref": "main", "repo": {"full_name": REPO}}}],
        "check_runs_by_ref": {sha6: d6_checks},
        "runs": [run_of(8407, "loop/d6", sha6, "failure"), run_of(8408, "loop/d6", sha6, "failure")]})
    seed_job(7407)
    seed_job(7408)
    deliver(srv, comment_event(9016, 82, "/healer fix", "MEMBER"), event="issue_comment")
    d6 = wait_for(lambda: len([c for c in coderuns()
                               if c["spec"].get("env", {}).get("PR_NUMBER") == "82"]) == 2
                  and [c for c in coderuns() if c["spec"].get("env", {}).get("PR_NUMBER") == "82"],
                  20) or []
    d6_tasks = sorted((task_of(srv, c["metadata"]["labels"]["healer/task-id"]) for c in d6),
                      key=lambda d: d.get("created_at") or "")
    older, newest = (d6_tasks + [{}, {}])[:2]
    for c in d6:
        if c["metadata"]["labels"]["healer/task-id"] == newest.get("task_id"):
            set_phase(c["metadata"]["name"], "Succeeded")
    wait_state(srv, newest.get("task_id"), "verifying", 15)
    deliver(srv, job_event(7409, 8409, "loop/d6", name=newest.get("job") or "?",
                           conclusion="success", sha=sha5))
    wait_state(srv, newest.get("task_id"), "succeeded", 15)
    deliver(srv, comment_event(9017, 82, "/healer stop", "OWNER"), event="issue_comment")
    older_run = next((c["metadata"]["name"] for c in d6
                      if c["metadata"]["labels"]["healer/task-id"] == older.get("task_id")), "?")
    stopped = wait_state(srv, older.get("task_id"), "stopped", 15)
    deleted = [d for d in (kube("GET", "/_stub/deleted") or []) if d.get("name") == older_run]
    check("/healer stop stops the PR's task still running although a newer one has ended",
          len(d6) == 2 and stopped and deleted
          and task_of(srv, newest.get("task_id")).get("state") == "succeeded",
          [len(d6), task_of(srv, older.get("task_id")).get("state"), deleted,
           [ln for ln in srv.log_tail().splitlines() if "healer command" in ln][-1:]])

    # ---- D6b. /healer status on a PR with several tasks, and on one with none ----------
    # (before: only the newest task; with none, a made-up "State: skipped"
    # record named after the delivery)
    gh("POST", "/_stub/seed", {"issue_comments": {"9031": {"id": 9031}, "9032": {"id": 9032}}})
    deliver(srv, comment_event(9031, 82, "/healer status", "MEMBER"), event="issue_comment")
    deliver(srv, comment_event(9032, 84, "/healer status", "MEMBER"), event="issue_comment",
            delivery="status-none-9032")
    both = [t.get("task_id") for t in (older, newest) if t.get("task_id")]
    reply = wait_for(lambda: [c["body"] for c in gh("GET", "/_stub/comments")
                              if c["issue"] == 82 and "Healer status" in c["body"]], 15) or [""]
    check("/healer status on a PR with two tasks lists both, newest first, in one reply",
          len(reply) == 1 and len(both) == 2 and all(t in reply[0] for t in both)
          and reply[0].index(newest["task_id"]) < reply[0].index(older["task_id"]), reply)
    none = wait_for(lambda: [c["body"] for c in gh("GET", "/_stub/comments")
                             if c["issue"] == 84], 15) or [""]
    check("/healer status on a PR without a task says so, no made-up task",
          len(none) == 1 and "no remediation for this pull request" in none[0]
          and "skipped" not in none[0] and "status-none" not in none[0], none)

    # ---- D7. /healer retry after /healer stop ----------------------------------------
    # (a stopped task keeps its failure, so /healer fix found it taken and
    # /healer retry said "use /healer fix": nothing could start it again)
    sha7 = "7" * 40
    gh("POST", "/_stub/seed", {
        "pulls": [{"number": 83, "state": "open", "title": "Stop and go",
                   "user": {"login": "dev"}, "html_url": f"https://github.com/{REPO}/pull/83",
                   "body": "", "head": {"ref": "loop/d7", "sha": sha7, "repo": {"full_name": REPO}},
                   "base": {"ref": "main", "repo": {"full_name": REPO}}}],
        "check_runs_by_ref": {sha7: [check_run(7411, 8411, "loop/d7", sha7, "failure")]},
        "runs": [run_of(8411, "loop/d7", sha7, "failure")]})
    seed_job(7411)
    # the stop comes while the first attempt is being decided: its CodeRun
    # exists (the apiserver answers the create late), its attempt not yet
    # (before, the stop found no task of the PR, or was overwritten by the
    # decision, and that agent ran on)
    kube("POST", "/_stub/config", {"create_reply_delay_ms": 3000})
    deliver(srv, comment_event(9018, 83, "/healer fix", "MEMBER"), event="issue_comment")
    d7 = wait_for(lambda: [c for c in coderuns()
                           if c["spec"].get("env", {}).get("PR_NUMBER") == "83"], 20, 0.02) or []
    tid_d7 = d7[0]["metadata"]["labels"]["healer/task-id"] if d7 else "?"
    deliver(srv, comment_event(9019, 83, "/healer stop", "OWNER"), event="issue_comment")
    kube("POST", "/_stub/config", {"create_reply_delay_ms": 0})
    stopped = wait_state(srv, tid_d7, "stopped", 15)
    time.sleep(0.5)
    t = task_of(srv, tid_d7)
    check("/healer stop while the first attempt is being decided: the task ends stopped, "
          "its CodeRun deleted",
          stopped and t.get("state") == "stopped"
          and (t.get("attempts") or [{}])[0].get("outcome") == "stopped"
          and not [c for c in by_task(tid_d7)],
          [{k: t.get(k) for k in ("state", "attempts")},
           [c["metadata"]["name"] for c in by_task(tid_d7)]])
    deliver(srv, comment_event(9020, 83, "/healer retry D7-HINT keep the API", "OWNER"),
            event="issue_comment")
    # the task as it is first seen with its second attempt: running while
    # that attempt is prepared (it stayed stopped, with its end time, until
    # the CodeRun existed)
    first_seen = wait_for(lambda: (lambda t: t if len(t.get("attempts") or []) >= 2 else None)(
        task_of(srv, tid_d7)), 20, 0.005) or {}
    check("/healer retry after /healer stop: the task is running again as soon as its next "
          "attempt exists, with no end time",
          first_seen.get("state") == "running" and first_seen.get("finished_at") is None,
          {k: first_seen.get(k) for k in ("state", "finished_at", "attempts")})
    # (the stopped attempt's CodeRun was deleted)
    again = wait_for(lambda: [c for c in by_task(tid_d7)
                              if c["metadata"]["labels"].get("healer/attempt") == "2"], 20) or []
    t = task_of(srv, tid_d7)
    check("/healer retry after /healer stop: attempt 2 with the hint, the task running again",
          len(again) == 1 and "D7-HINT" in again[0]["spec"].get("promptModification", "")
          and t.get("state") == "running" and t.get("finished_at") is None,
          [len(again), {k: t.get(k) for k in ("state", "finished_at", "attempts")},
           [ln for ln in srv.log_tail().splitlines() if "healer command" in ln][-2:]])

    # ---- D8. a pull request merged or closed stops its remediations -------------------
    # (before: the agents of a closed PR ran on until their CodeRuns ended;
    # only then did the loop see the PR closed and stop the task)
    sha8 = "8a" * 20
    d8_checks = [check_run(7421, 8421, "loop/d8", sha8, "failure"),
                 dict(check_run(7422, 8422, "loop/d8", sha8, "failure"), name="fmt")]
    d8_pr = {"number": 87, "state": "open", "title": "Merged meanwhile", "user": {"login": "dev"},
             "html_url": f"https://github.com/{REPO}/pull/87", "body": "",
             "head": {"ref": "loop/d8", "sha": sha8, "repo": {"full_name": REPO}},
             "base": {"ref": "main", "repo": {"full_name": REPO}}}
    d9_pr = dict(d8_pr, number=88, title="Closed meanwhile",
                 html_url=f"https://github.com/{REPO}/pull/88",
                 head={"ref": "loop/d9", "sha": "9b" * 20, "repo": {"full_name": REPO}})
    gh("POST", "/_stub/seed", {
        "pulls": [d8_pr, d9_pr],
        "check_runs_by_ref": {sha8: d8_checks,
                              "9b" * 20: [check_run(7423, 8423, "loop/d9", "9b" * 20, "failure")]},
        "runs": [run_of(8421, "loop/d8", sha8, "failure"), run_of(8422, "loop/d8", sha8, "failure"),
                 run_of(8423, "loop/d9", "9b" * 20, "failure")]})
    for j in (7421, 7422, 7423):
        seed_job(j)

    def pr_runs(number):
        return [c for c in coderuns() if c["spec"].get("env", {}).get("PR_NUMBER") == str(number)]

    def pr_closed(pr, merged, delivery):
        return deliver(srv, {"action": "closed", "number": pr["number"],
                             "pull_request": dict(pr, state="closed", merged=merged,
                                                  merged_at="2026-12-07T10:00:00Z" if merged
                                                  else None),
                             "repository": {"full_name": REPO, "default_branch": "main"},
                             "sender": {"login": "dev", "type": "User"}},
                       event="pull_request", delivery=delivery)

    deliver(srv, comment_event(9041, 87, "/healer fix", "MEMBER"), event="issue_comment")
    deliver(srv, comment_event(9042, 88, "/healer fix", "MEMBER"), event="issue_comment")
    d8 = wait_for(lambda: len(pr_runs(87)) == 2 and len(pr_runs(88)) == 1 and pr_runs(87),
                  20) or []
    d9 = pr_runs(88)
    d8_tid = [c["metadata"]["labels"]["healer/task-id"] for c in d8]
    # one agent is done (its task waits for CI's verdict); the other runs on
    if d8:
        set_phase(d8[0]["metadata"]["name"], "Succeeded")
        wait_state(srv, d8_tid[0], "verifying", 15)
    pr_closed(d8_pr, True, "pr-87-closed")
    stopped = wait_state(srv, d8_tid[1] if len(d8_tid) == 2 else "?", "stopped", 15)
    t = task_of(srv, d8_tid[1]) if len(d8_tid) == 2 else {}
    deleted = [d.get("name") for d in (kube("GET", "/_stub/deleted") or [])]
    check("a merged pull request stops its remediation whose agent is at work: its CodeRun "
          "deleted, the attempt and the task stopped as merged",
          len(d8) == 2 and stopped and d8[1]["metadata"]["name"] in deleted
          and t.get("reason") == "the pull request was merged"
          and (t.get("attempts") or [{}])[-1].get("outcome") == "stopped"
          and (t.get("attempts") or [{}])[-1].get("reason") == "the pull request was merged",
          [len(d8), {k: t.get(k) for k in ("state", "reason", "attempts")}, deleted[-3:]])
    v = task_of(srv, d8_tid[0]) if d8_tid else {}
    check("... and leaves the one whose agent is done to CI's verdict (verifying, its CodeRun "
          "kept)", v.get("state") == "verifying" and d8[0]["metadata"]["name"] not in deleted,
          {k: v.get(k) for k in ("state", "reason")})
    pr_closed(d9_pr, False, "pr-88-closed")
    d9_tid = d9[0]["metadata"]["labels"]["healer/task-id"] if d9 else "?"
    stopped = wait_state(srv, d9_tid, "stopped", 15)
    t = task_of(srv, d9_tid)
    check("a pull request closed unmerged stops its remediation as closed",
          stopped and t.get("reason") == "the pull request was closed"
          and d9[0]["metadata"]["name"] in [d.get("name") for d in
                                            (kube("GET", "/_stub/deleted") or [])],
          {k: t.get(k) for k in ("state", "reason", "attempts")})
    recent = {d.get("delivery_id"): d for d in srv.request("GET", "/api/status")[1].get("recent", [])}
    check("the closed pull requests' deliveries say what they did",
          [recent.get(k, {}).get("reason") for k in ("pr-87-closed", "pr-88-closed")]
          == ["pr_closed_stopped", "pr_closed_stopped"],
          {k: recent.get(k) for k in ("pr-87-closed", "pr-88-closed")})
    logs = [ln for ln in srv.log_tail().splitlines() if "remediation stopped" in ln]
    check("each stop is logged with its task, reason and CodeRun",
          any(d9_tid in ln and "the pull request was closed" in ln for ln in logs), logs[-3:])

    # ---- E. SIGKILL while an attempt fails; a compacted watch on restart ------------
    seed_job(7003)
    tid_e = deliver(srv, job_event(7003, 8003, "loop/e"))
    runs = wait_for(lambda: by_task(tid_e), 15)
    ne = runs[0]["metadata"]["name"] if runs else "?"
    set_phase(ne, "Running")
    time.sleep(0.5)
    srv.kill()
    set_phase(ne, "Failed", message="killed meanwhile")
    kube("POST", "/_stub/compact")
    srv = Healer(srv.data_dir, BASE_ENV).start()
    runs = wait_for(lambda: len(by_task(tid_e)) >= 2 and by_task(tid_e), 20) or []
    time.sleep(1.0)
    runs = by_task(tid_e)
    check("after a restart with a compacted watch the failure is seen: exactly one next "
          "attempt", len(runs) == 2, [c["metadata"]["name"] for c in runs])

    # ---- E2. a CodeRun deleted while healer was down: no DELETED event comes ---------
    seed_job(7013)
    tid_e2 = deliver(srv, job_event(7013, 8013, "loop/e2"))
    runs = wait_for(lambda: by_task(tid_e2), 15) or []
    ne2 = runs[0]["metadata"]["name"] if runs else "?"
    set_phase(ne2, "Running")
    wait_for(lambda: (task_of(srv, tid_e2).get("attempts") or [{}])[0].get("phase")
             == "running", 10)
    srv.kill()
    kube("DELETE", f"/apis/agents.platform/v1/namespaces/{NS}/coderuns/{ne2}")
    kube("POST", "/_stub/compact")  # the resume point is too old: a relist
    srv = Healer(srv.data_dir, BASE_ENV).start()

    def e2_first():
        return (task_of(srv, tid_e2).get("attempts") or [{}])[0]
    ended = wait_for(lambda: e2_first().get("outcome") == "agent_failed", 20)
    check("a CodeRun deleted while healer was down ends its attempt agent_failed at the "
          "relist (not at the attempt timeout), and the next attempt starts",
          ended and "deleted" in (e2_first().get("reason") or "")
          and wait_for(lambda: len(by_task(tid_e2)) == 1
                       and by_task(tid_e2)[0]["metadata"]["name"] != ne2, 15),
          [task_of(srv, tid_e2), [c["metadata"]["name"] for c in by_task(tid_e2)]])

    # ---- E3. a running CodeRun's labels edited: the selector watch says DELETED ------
    # (the API server sends DELETED when an object stops matching a watch's
    # label selector, though it still exists and its agent runs on; before,
    # healer ended the attempt as deleted and started the next one)
    seed_job(7015)
    tid_e3 = deliver(srv, job_event(7015, 8015, "loop/e3"))
    runs = wait_for(lambda: by_task(tid_e3), 15) or []
    ne3 = runs[0]["metadata"]["name"] if runs else "?"

    def e3_first():
        return (task_of(srv, tid_e3).get("attempts") or [{}])[0]
    set_phase(ne3, "Running")
    wait_for(lambda: e3_first().get("phase") == "running", 10)
    # another CodeRun of the label, none of healer's attempts': it leaves too
    foreign = "someone-elses-run"
    kube("POST", "/_stub/seed", {"coderuns": [{
        "apiVersion": "agents.platform/v1", "kind": "CodeRun",
        "metadata": {"name": foreign, "namespace": NS,
                     "labels": {"app.kubernetes.io/name": "healer"}},
        "spec": {"service": "other"}, "status": {"phase": "Running"}}]})
    time.sleep(0.5)
    # kubectl label coderun NAME app.kubernetes.io/name-
    for n in (ne3, foreign):
        kube("PATCH", f"/apis/agents.platform/v1/namespaces/{NS}/coderuns/{n}",
             {"metadata": {"labels": {"app.kubernetes.io/name": None}}})
    time.sleep(2.5)
    check("a running CodeRun whose labels no longer match the watch's selector is not taken "
          "as deleted: its attempt runs on, no next attempt",
          e3_first().get("phase") == "running" and not e3_first().get("outcome")
          and len(by_task(tid_e3)) == 1, [task_of(srv, tid_e3), srv.log_tail()[-1500:]])
    set_phase(ne3, "Succeeded", status={"pullRequestUrl": f"https://github.com/{REPO}/pull/9"})
    check("... and it is still followed by name: its Succeeded status is seen (verifying)",
          wait_state(srv, tid_e3, "verifying", 20)
          and e3_first().get("pr_url") == f"https://github.com/{REPO}/pull/9",
          [task_of(srv, tid_e3), srv.log_tail()[-1500:]])
    time.sleep(1.0)
    gets = [r for r in kube("GET", "/_stub/requests") or []
            if r["method"] == "GET" and r["path"].endswith("/coderuns/" + foreign)]
    check("a CodeRun of none of healer's attempts that leaves the selector is asked for once, "
          "not followed", len(gets) == 1, len(gets))

    # ---- E4. the same while healer was down: the relist lacks it, a GET finds it -----
    # (before, such a CodeRun was left alone: its end was never seen and only
    # the attempt timeout ended the attempt)
    seed_job(7016)
    tid_e4 = deliver(srv, job_event(7016, 8016, "loop/e4"))
    runs = wait_for(lambda: by_task(tid_e4), 15) or []
    ne4 = runs[0]["metadata"]["name"] if runs else "?"

    def e4_first():
        return (task_of(srv, tid_e4).get("attempts") or [{}])[0]
    set_phase(ne4, "Running")
    wait_for(lambda: e4_first().get("phase") == "running", 10)
    srv.kill()
    kube("PATCH", f"/apis/agents.platform/v1/namespaces/{NS}/coderuns/{ne4}",
         {"metadata": {"labels": {"app.kubernetes.io/name": "someone-else"}}})
    kube("POST", "/_stub/compact")  # the resume point is too old: a relist
    srv = Healer(srv.data_dir, BASE_ENV).start()
    time.sleep(1.5)
    set_phase(ne4, "Failed", message="agent exited 1: E4-MARKER")
    check("a running CodeRun that left the selector while healer was down is followed by name "
          "after the relist: its Failed status is seen, not taken as deleted",
          wait_for(lambda: e4_first().get("outcome") == "agent_failed", 20)
          and "E4-MARKER" in (e4_first().get("reason") or ""),
          [task_of(srv, tid_e4), srv.log_tail()[-1500:]])

    # ---- E5. one followed by name when healer restarts: found again from the store ----
    # (before, the set of CodeRuns followed by name lived in memory only: a
    # restart resuming the watch from its stored point, or another replica
    # taking the watch over, lost it until the next full relist, 5 minutes)
    seed_job(7017)
    tid_e5 = deliver(srv, job_event(7017, 8017, "loop/e5"))
    runs = wait_for(lambda: by_task(tid_e5), 15) or []
    ne5 = runs[0]["metadata"]["name"] if runs else "?"

    def e5_first():
        return (task_of(srv, tid_e5).get("attempts") or [{}])[0]
    set_phase(ne5, "Running")
    wait_for(lambda: e5_first().get("phase") == "running", 10)
    kube("PATCH", f"/apis/agents.platform/v1/namespaces/{NS}/coderuns/{ne5}",
         {"metadata": {"labels": {"app.kubernetes.io/name": None}}})
    time.sleep(1.0)  # the watch saw it leave the selector, and follows it by name
    srv.stop()  # the resume point is saved past that: the restart lists nothing
    srv = Healer(srv.data_dir, BASE_ENV).start()
    time.sleep(1.0)
    set_phase(ne5, "Failed", message="agent exited 1: E5-MARKER")
    check("a CodeRun followed by name before a restart is followed again after it (from the "
          "store's running attempts): its Failed status is seen within seconds",
          wait_for(lambda: e5_first().get("outcome") == "agent_failed", 20)
          and "E5-MARKER" in (e5_first().get("reason") or ""),
          [task_of(srv, tid_e5), srv.log_tail()[-1500:]])

    # ---- F. a cut watch reconnects ---------------------------------------------------
    seed_job(7004)
    tid_f = deliver(srv, job_event(7004, 8004, "loop/f"))
    runs = wait_for(lambda: by_task(tid_f), 15)
    nf = runs[0]["metadata"]["name"] if runs else "?"
    kube("POST", "/_stub/cut")
    time.sleep(0.3)
    set_phase(nf, "Succeeded")
    check("a change after a cut watch is still seen", wait_state(srv, tid_f, "verifying", 20),
          task_of(srv, tid_f))
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request("GET", "/metrics")
    mtext = c.getresponse().read().decode()
    c.close()
    restarts = [ln for ln in mtext.splitlines() if ln.startswith("healer_watch_restarts_total ")]
    check("the reconnect is counted in healer_watch_restarts_total",
          restarts and float(restarts[0].split()[1]) >= 1, restarts)
    check("/metrics has the loop's families", all(f in mtext for f in (
        "healer_attempts_total{", "healer_tasks{state=\"succeeded\"}",
        "healer_time_to_fix_seconds_bucket", "healer_notifications_total{channel=\"discord\"",
        "healer_watch_restarts_total")), mtext[-2500:])

    # ---- F2. task signals do not cut the watch's error backoff short -------------------
    def watch_requests():
        return sum(1 for r in kube("GET", "/_stub/requests?method=GET&path=/apis/") or []
                   if r["query"].get("watch") == "1")
    # a refusal retrying cannot fix (403) ends the watch; the loop waits 5 s
    kube("POST", "/_stub/config", {"rules": [{"method": "GET", "path": "/apis/",
                                               "query": {"watch": "1"}, "status": 403}]})
    kube("POST", "/_stub/cut")
    time.sleep(1.0)  # the reconnect is refused; the watch waits out its backoff
    w0 = watch_requests()
    for i in range(6):  # new results of task F's job: each one signals the task
        deliver(srv, job_event(7204 + i, 8004, "loop/f", conclusion="failure",
                               run_attempt=2 + i))
        time.sleep(0.5)
    w1 = watch_requests()
    kube("POST", "/_stub/config", {"rules": []})
    check("while the CodeRun watch fails, task signals do not cut its backoff short",
          w1 - w0 <= 1, [w0, w1])
    check("the watch comes back once the API answers",
          wait_for(lambda: kube("GET", "/_stub/watchers")["open"] >= 1, 15),
          kube("GET", "/_stub/watchers"))

    # ---- G. commands -------------------------------------------------------------
    seed_job(7005)
    tid_g = deliver(srv, job_event(7005, 8005, "loop/g"))
    runs = wait_for(lambda: by_task(tid_g), 15)
    ng = runs[0]["metadata"]["name"] if runs else "?"
    gh("POST", "/_stub/seed", {"issue_comments": {"9001": {"id": 9001}, "9002": {"id": 9002},
                                                  "9003": {"id": 9003}}})
    deliver(srv, comment_event(9001, 78, "/healer stop", "NONE"), event="issue_comment",
            delivery="cmd-9001")
    deliver(srv, comment_event(9001, 78, "/healer stop", "NONE"), event="issue_comment",
            delivery="cmd-9001")  # the same delivery again
    refusals = wait_for(lambda: [c for c in gh("GET", "/_stub/comments")
                                 if c["issue"] == 78 and "healer" in c["body"].lower()], 15)
    time.sleep(0.8)
    refusals = [c for c in gh("GET", "/_stub/comments") if c["issue"] == 78]
    check("a command from an author outside HEALER_COMMAND_ASSOCIATIONS is refused once, "
          "with a reply", len(refusals) == 1 and task_of(srv, tid_g).get("state") == "running",
          [refusals, task_of(srv, tid_g).get("state")])
    deliver(srv, comment_event(9002, 78, "/healer status", "MEMBER"), event="issue_comment")
    status = wait_for(lambda: [c for c in gh("GET", "/_stub/comments")
                               if c["issue"] == 78 and ng in c["body"]], 15)
    check("/healer status answers with the task's attempts", bool(status), gh("GET",
          "/_stub/comments")[-2:])
    # the same command on a line of the PR's diff: a review comment, numbered
    # apart from the conversation's comments (9002 again is another comment)
    gh("POST", "/_stub/seed", {"review_comments": {"9002": {"id": 9002}}})
    deliver(srv, review_comment_event(9002, 78, "/healer status", "MEMBER"),
            event="pull_request_review_comment")

    def review_eyes():
        return [r for r in gh("GET", "/_stub/reactions") or []
                if r.get("on") == "review_comment" and r["comment_id"] == 9002]
    status = wait_for(lambda: review_eyes() and len([c for c in gh("GET", "/_stub/comments")
                                                     if c["issue"] == 78 and ng in c["body"]])
                      == 2, 15)
    check("/healer status in a review comment answers in the PR's conversation too, and its "
          "eyes reaction goes on the review comment", bool(status),
          [review_eyes(), gh("GET", "/_stub/comments")[-2:]])
    # and in a review's body (a review has no reactions; its id is 9002 too)
    n_reactions = len(gh("GET", "/_stub/reactions") or [])
    deliver(srv, {"action": "submitted",
                  "review": {"id": 9002, "state": "commented", "body": "/healer status",
                             "author_association": "MEMBER",
                             "user": {"login": "someone", "type": "User"}},
                  "pull_request": {"number": 78, "title": "Stop me", "state": "open"},
                  "repository": {"full_name": REPO, "default_branch": "main"},
                  "sender": {"login": "someone", "type": "User"}},
            event="pull_request_review")
    status = wait_for(lambda: len([c for c in gh("GET", "/_stub/comments")
                                   if c["issue"] == 78 and ng in c["body"]]) == 3, 15)
    check("/healer status in a review's body answers in the PR's conversation, with no "
          "reaction asked for", bool(status)
          and len(gh("GET", "/_stub/reactions") or []) == n_reactions,
          gh("GET", "/_stub/comments")[-2:])
    deliver(srv, comment_event(9003, 78, "/healer stop", "OWNER"), event="issue_comment")
    stopped = wait_state(srv, tid_g, "stopped", 15)
    deleted = [d for d in (kube("GET", "/_stub/deleted") or []) if d.get("name") == ng]
    t = task_of(srv, tid_g)
    check("/healer stop deletes the active CodeRun and the task ends stopped",
          stopped and deleted and t["attempts"][-1]["outcome"] == "stopped", [t, deleted])
    reactions = gh("GET", "/_stub/reactions") or []
    check("obeyed commands get one eyes reaction each; the refused one none",
          sorted(r["comment_id"] for r in reactions
                 if r["content"] == "eyes" and r["on"] == "issue_comment"
                 and 9001 <= r["comment_id"] <= 9003) == [9002, 9003],
          reactions)

    # ---- G2. GitHub's secondary rate limit holds every comment, not just one ----------
    # (a wait longer than a send's 15 s timeout, so the fetch engine does not
    # wait it out itself)
    cpath = f"/repos/{REPO}/issues/78/comments"
    t0 = time.time()
    gh("POST", "/_stub/config", {"rules": [{"method": "POST", "path": cpath, "times": 1,
                                            "status": 403, "headers": {"retry-after": "16"},
                                            "body": {"message": "You have exceeded a "
                                                     "secondary rate limit."}}]})
    gh("POST", "/_stub/seed", {"issue_comments": {"9004": {"id": 9004}, "9005": {"id": 9005}}})
    deliver(srv, comment_event(9004, 78, "/healer status", "MEMBER"), event="issue_comment")
    deliver(srv, comment_event(9005, 78, "/healer status", "MEMBER"), event="issue_comment")

    def comment_posts():
        return [r for r in gh("GET", "/_stub/requests") or []
                if r["method"] == "POST" and r["path"] == cpath and r["time"] >= t0]
    posts = wait_for(lambda: len(comment_posts()) >= 3 and comment_posts(), 45) or []
    gh("POST", "/_stub/config", {"rules": []})
    gaps = [round(p["time"] - posts[0]["time"], 2) for p in posts[1:]]
    check("after GitHub answers a comment with a secondary rate limit (Retry-After: 16), no "
          "comment is posted before those 16 s are over; both replies arrive",
          len(posts) == 3 and all(g >= 15.9 for g in gaps), gaps)

    # ---- H. a runner shutdown is re-run before any agent -------------------------------
    seed_job(7006, RUNNER_LOG)
    gh("POST", "/_stub/seed", {"runs": [{"id": 8006, "name": "Gadget CI", "head_branch": "loop/h",
                                         "head_sha": SHA0, "status": "completed",
                                         "conclusion": "failure", "run_attempt": 1,
                                         "workflow_id": 55}]})
    tid_h = deliver(srv, job_event(7006, 8006, "loop/h", name="test"))
    reruns = wait_for(lambda: [r for r in gh("GET", "/_stub/reruns") if r["run_id"] == 8006], 15)
    check("an infra_runner failure asks GitHub to re-run the failed jobs, no CodeRun",
          reruns and not by_task(tid_h), [reruns, by_task(tid_h)])
    deliver(srv, job_event(7106, 8006, "loop/h", name="test", conclusion="success",
                           run_attempt=2))
    ok = wait_state(srv, tid_h, "succeeded", 15)
    t = task_of(srv, tid_h)
    check("the re-run passing ends the task rerun_passed",
          ok and t["attempts"][0]["kind"] == "rerun"
          and t["attempts"][0]["outcome"] == "rerun_passed", t)

    # ---- H3. a new failure of an active task's job: the answer's task id exists ---------
    # (before: the 202 named a task never written; GET answered 404)
    seed_job(7007)
    tid_k = deliver(srv, job_event(7007, 8007, "loop/k"))
    wait_for(lambda: by_task(tid_k), 15)
    st, ans = srv.deliver(job_event(7107, 8107, "loop/k", sha=SHA1))
    other = ans.get("task_id") if st == 202 else None
    owner = wait_for(lambda: task_of(srv, other) if other else None, 15) or {}
    _, listed = srv.request("GET", "/api/remediations?limit=500")
    check("a failure attached to the active task answers a task id that reads as that task"
          " (no task, no CodeRun of its own)",
          other and other != tid_k and owner.get("task_id") == tid_k
          and other not in [t["task_id"] for t in listed.get("remediations", [])]
          and len(by_task(tid_k)) == 1 and not by_task(other), [ans, owner])
    # the CI sensor's call for one more failure of that job: the owner's
    # decision (agent, type, its CodeRun), the reason a code, its prose apart
    seed_job(7507)
    st, ans = srv.request("POST", "/api/remediate/ci-failure",
                          json.dumps(job_event(7507, 8507, "loop/k", sha=SHA1)).encode(),
                          {"Content-Type": "application/json", "X-GitHub-Event": "workflow_job"})
    kr = by_task(tid_k)
    check("a sensor call for a failure the active task owns answers existing with that"
          " task's agent, failure type and CodeRun",
          st == 202 and ans.get("dedup_status") == "existing" and ans.get("task_id") == tid_k
          and len(kr) == 1 and ans.get("coderun_name") == kr[0]["metadata"]["name"]
          and ans.get("agent") == kr[0]["metadata"]["labels"].get("healer/agent")
          and ans.get("failure_type") == kr[0]["metadata"]["labels"].get("healer/failure-type")
          and ans.get("agent") and ans.get("failure_type")
          and ans.get("reason") == "attached" and ans.get("message"), [ans, kr])

    # ---- H2. the API server asks the watch to wait 1e9 s: it waits 60 s, and says so ----
    # (last before the stop: the watch then waits out those 60 s; the stop ends the wait)
    kube("POST", "/_stub/config", {"watch_error": {"code": 500, "times": 1,
                                                   "retry_after": 1000000000}})
    kube("POST", "/_stub/cut")
    said = wait_for(lambda: "asked the CodeRun watch to wait longer" in srv.log_tail(), 15)
    line = next((ln for ln in srv.log_tail().splitlines()
                 if "asked the CodeRun watch to wait longer" in ln), "")
    check("a watch wait of 1e9 s asked by the API server is logged as cut to 60 s",
          said and '"asked_s":"1000000000"' in line and '"waiting_ms":"60000"' in line
          and '"level":"warn"' in line, [line, srv.log_tail()[-1500:]])
    kube("POST", "/_stub/config", {"watch_error": None})
    srv.stop()

    # ---- I/J. budgets and the loop in directory dispatch --------------------------------
    denv = dict(BASE_ENV, HEALER_DISPATCH="directory", HEALER_MAX_ACTIVE_CODERUNS="1")
    denv.pop("KUBECONFIG")
    dsrv = Healer(os.path.join(dtest.TMP, "h2"), denv).start()
    cdir = os.path.join(dsrv.data_dir, "coderuns")
    tids = []
    for i in range(3):
        seed_job(7300 + i)
        tids.append(deliver(dsrv, job_event(7300 + i, 8300 + i, f"loop/i{i}")))
    files = wait_for(lambda: os.path.isdir(cdir) and os.listdir(cdir), 15) or []
    # each failure is decided once a worker is free: wait for all three
    wait_for(lambda: sorted(task_of(dsrv, t).get("state") or "" for t in tids)
             == ["queued", "queued", "running"], 15)
    states = sorted(task_of(dsrv, t).get("state") or "" for t in tids)
    check("three failures and one slot: one CodeRun, two queued",
          len(os.listdir(cdir)) == 1 and states == ["queued", "queued", "running"], states)
    running = next((t for t in tids if task_of(dsrv, t).get("state") == "running"), tids[0])
    # FIFO by queued_at; two tasks queued in the same millisecond go by task id
    waiting = sorted((t for t in tids if t != running),
                     key=lambda t: (task_of(dsrv, t).get("queued_at") or "", t))

    def finish_file(tid, phase):
        for f in os.listdir(cdir):
            path = os.path.join(cdir, f)
            m = json.load(open(path))
            if m["metadata"]["labels"].get("healer/task-id") == tid:
                m["status"] = {"phase": phase}
                with open(path + ".tmp", "w") as fh:
                    json.dump(m, fh)
                os.rename(path + ".tmp", path)
                return True
        return False

    check("a CodeRun file's status is read (directory dispatch)",
          finish_file(running, "Succeeded") and wait_state(dsrv, running, "verifying", 15),
          task_of(dsrv, running))
    started = wait_for(lambda: task_of(dsrv, waiting[0]).get("state") == "running", 15)
    check("the freed slot starts the task queued first; the next one still waits",
          started and task_of(dsrv, waiting[1]).get("state") == "queued",
          [task_of(dsrv, t) for t in waiting])
    finish_file(waiting[0], "Failed")
    retried = wait_for(lambda: len(task_of(dsrv, waiting[0]).get("attempts", [])) == 2
                       or task_of(dsrv, waiting[1]).get("state") == "running", 15)
    t1, t2 = task_of(dsrv, waiting[0]), task_of(dsrv, waiting[1])
    check("a failed CodeRun file starts the next attempt or frees the slot for the queue",
          retried and (len(t1.get("attempts", [])) == 2 or t2.get("state") == "running"),
          [t1.get("state"), t2.get("state")])
    # ---- a CodeRun file removed by hand ------------------------------------------------
    def open_attempt():
        for t in tids:
            d = task_of(dsrv, t)
            a = (d.get("attempts") or [{}])[-1]
            if d.get("state") == "running" and a.get("coderun") \
                    and a.get("phase") in ("pending", "running"):
                return t, a["coderun"]
        return None
    found = wait_for(open_attempt, 10)
    gone_tid, gone_cr = found or (None, None)
    removed = False
    for f in os.listdir(cdir):
        m = json.load(open(os.path.join(cdir, f)))
        if m["metadata"]["name"] == gone_cr:
            os.remove(os.path.join(cdir, f))
            removed = True

    def gone_attempt():
        return next((a for a in task_of(dsrv, gone_tid).get("attempts", [])
                     if a.get("coderun") == gone_cr), {})
    check("a CodeRun file removed while it runs ends its attempt agent_failed",
          removed and wait_for(lambda: gone_attempt().get("outcome") == "agent_failed", 20)
          and "deleted" in (gone_attempt().get("reason") or ""),
          [found, removed, task_of(dsrv, gone_tid) if gone_tid else None])

    # ---- the task list (GET /api/remediations) -----------------------------------------
    def page(q):
        st, d = dsrv.request("GET", "/api/remediations" + q)
        return d if st == 200 else {"status": st, "body": d}
    first = page("?limit=2")
    rest = page("?limit=2&cursor=" + urllib.parse.quote(first.get("next_cursor") or ""))
    listed = [t["task_id"] for t in first.get("remediations", []) + rest.get("remediations", [])]
    check("the task list pages newest first with a cursor and ends with next_cursor null",
          sorted(listed) == sorted(tids) and len(first.get("remediations", [])) == 2
          and rest.get("next_cursor") is None and len(set(listed)) == len(listed),
          [first, rest])
    # The tasks may still be moving (a freed slot starts a queued one): the
    # filtered page is compared with the states read before and after it, and
    # only when those two agree.
    def queued_while_still():
        before = {t: task_of(dsrv, t).get("state") for t in tids}
        listed = page("?state=queued")
        after = {t: task_of(dsrv, t).get("state") for t in tids}
        return (before, listed) if before == after else None
    by_state, queued = wait_for(queued_while_still, 20) or ({}, {})
    check("the task list filters by state",
          len(by_state) == len(tids)  # the states held still around one page
          and sorted(t["task_id"] for t in queued.get("remediations", []))
          == sorted(t for t, s in by_state.items() if s == "queued"), [queued, by_state])
    repo = task_of(dsrv, tids[0]).get("repository") or ""
    folded = page("?limit=500&repository=" + urllib.parse.quote(repo.swapcase()))
    check("the repository filter ignores case, as GitHub and HEALER_REPOSITORIES do",
          tids[0] in [t["task_id"] for t in folded.get("remediations", [])]
          and {t["repository"] for t in folded.get("remediations", [])} == {repo},
          [repo, folded])
    none = page("?repository=nobody/else&limit=5")
    check("a filter matching nothing is an empty page",
          none.get("remediations") == [] and none.get("next_cursor") is None, none)
    bad = [dsrv.request("GET", "/api/remediations" + q)[0]
           for q in ("?state=sleeping", "?limit=0", "?limit=501", "?cursor=%%%",
                     # a cursor as the server writes it: digits, '.', the id
                     "?cursor=%201.x", "?cursor=%2B1.x")]
    check("a bad state, limit or cursor is 400", bad == [400] * 6, bad)
    def status_while_still():
        before = {t: task_of(dsrv, t).get("state") for t in tids}
        st, d = dsrv.request("GET", "/api/status")
        after = {t: task_of(dsrv, t).get("state") for t in tids}
        return (before, d if st == 200 else {}) if before == after else None
    by_state, status = wait_for(status_while_still, 20) or ({}, {})
    active = status.get("remediations", {}).get("active")
    check("/api/status lists the active tasks",
          isinstance(active, list) and sorted(t["task_id"] for t in active)
          == sorted(t for t, s in by_state.items() if s in ("queued", "running", "verifying")),
          [status.get("remediations"), by_state])
    # recent outcomes are the tasks that ended last: one created long ago and
    # ended now comes before one created later and ended earlier, whatever
    # their states
    now_ms = int(time.time() * 1000)
    for tid_, state_, created, finished in (("done-old-created", "escalated", now_ms - 86400000,
                                             now_ms + 60000),
                                            ("done-new-created", "succeeded", now_ms - 1000,
                                             now_ms + 30000)):
        dtest.store_exec(dsrv.data_dir,
                         "INSERT INTO remediation_tasks (task_id, repository, state, kind,"
                         " created_ms, updated_ms, finished_ms) VALUES (?, 'acme/done', ?, 'ci',"
                         " ?, ?, ?)", (tid_, state_, created, finished, finished))
    st, status = dsrv.request("GET", "/api/status")
    recent = [t["task_id"] for t in status.get("remediations", {}).get("recent_outcomes", [])]
    check("/api/status's recent outcomes come newest finished first",
          recent[:2] == ["done-old-created", "done-new-created"], recent)
    dsrv.stop()

    for h in (srv, dsrv):  # sanitizer builds report leaks and errors at exit
        dtest._scan(open(os.path.join(h.data_dir, "server.log"), errors="replace").read())
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
