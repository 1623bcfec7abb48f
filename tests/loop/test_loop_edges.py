#!/usr/bin/env python3
"""test_loop_edges.py - edges of the remediation loop (contract section 9)
that a restart or an early event could bend, against the same stand-ins as
test_loop.py (imported: its stand-ins, helpers and environment):

- healer SIGKILLed while a retry is being prepared (GitHub slow, so the
  attempt sits in phase `preparing`): the restart resumes that attempt
  under its own number, on the same agent, and it holds no CodeRun slot
  once the task ends (HEALER_MAX_ACTIVE_CODERUNS=1: the next task starts);
- the job failing again while the agent still works: once its CodeRun
  Succeeded that failure is no verdict; the job's next result is;
- an agent that waits for CI before it ends: the job passing on its push
  while the CodeRun still runs judges the attempt success once it
  Succeeded (a pass followed by a failure does not);
- a new failure of the same workflow + job on the branch while the first
  failure's task is still being decided (GitHub slow): it waits for the
  decision and is that task's result, no second task or CodeRun; when the
  deciding task ends skipped (its commit's skip tag), the waiting failure
  starts its own task;
- /healer stop on the PR of a task queued for a CodeRun slot: the task
  (which records its branch's PR) ends stopped and never gets a CodeRun;
- a check run of an active task's job on its branch from a run GitHub
  answers 404 for: that task's result, never a second task;
- a failure's delivery processed again (replayed, or its claim taken
  over) after its task went on to a second attempt: nothing changes;
- /healer stop while a job failure's first attempt is being decided (the
  event names no PR; the task learns it with its decision), also past the
  two minutes a claim counts as being decided: the task ends stopped and
  stays so, and its CodeRuns are deleted, one it never recorded too;
- /healer stop on a fork's PR: the task of the repository's branch of the
  same name goes on; the PR's failure at a commit pushed over is stopped;
- a 409 from GitHub while /healer fix runs: the command is retried;
- a log line that looks like the escalation comment's marker, with a
  comment holding it posted first: the escalation comment is still posted;
- /healer retry HINT while the only CodeRun slot is held: queued, and the
  attempt made when the slot frees carries the hint;
- a task of a workflow_run failure (no job named) and one of another CI's
  check run: the workflow's next run, the check's next result, passing
  after the fix is success; a job of that workflow failing meanwhile is
  the run's task's result;
- a runner failure whose run still goes: the re-run GitHub refuses is
  asked again once the run has ended, and no agent goes.
- runs of a fork's pull request on a branch named like a task's: no
  result of it, and a fork's failure starts no task on its own;
- the agent's push failing again, sent by its bot: the task's result; a
  retry that waited for a slot carries the current CI log; a fix branch
  off main is judged there, not by main; a skip-tagged task holds no slot;
- a PR closed or merged while its task's attempt runs: no next attempt and,
  after the last attempt, no escalation message; the task ends stopped
  saying why; a GitHub that does not answer for the PR holds nothing up;
  a queued task whose PR closed while it waited never starts.
- a Dependabot alert reopened while its task is open: that task's, no
  second task or CodeRun on the alert's fix branch; reopened once its task
  has ended (escalated): a new task with its own CodeRun.
- an attempt's timeout while its CodeRun Succeeded unseen by the watch:
  asked for by name, judged by how it ended (verifying, then success), not
  deleted, no attempt 2;
- a relist after a 410 that takes longer than a watch session (three slow
  pages): it runs to its end, and a Failed CodeRun on its last page starts
  attempt 2.

Standard library only; prints TAP."""
import copy
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_loop as T  # noqa: E402  (starts the stand-ins)
from test_loop import check, dtest, Healer, wait_for  # noqa: E402


def attempts(srv, tid):
    return [(a["number"], a.get("phase"), a.get("outcome"), a.get("agent"))
            for a in T.task_of(srv, tid).get("attempts", [])]


def kill_while_preparing():
    env = dict(T.BASE_ENV, HEALER_MAX_ACTIVE_CODERUNS="1")
    srv = Healer(os.path.join(dtest.TMP, "prep"), env).start()
    T.seed_job(7500)
    T.seed_job(7501)
    tid = T.deliver(srv, T.job_event(7500, 8500, "edge/prep"))
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    check("a failure gets its first CodeRun", len(runs) == 1, srv.log_tail())
    # GitHub answers slowly: attempt 2's context takes seconds to gather
    T.gh("POST", "/_stub/config", {"rules": [{"method": "GET", "path": "/repos/",
                                              "delay_ms": 2500}]})
    T.set_phase(runs[0]["metadata"]["name"], "Failed", message="first try failed")
    preparing = wait_for(lambda: (2, "preparing", None, "rex") in attempts(srv, tid), 15)
    srv.kill()
    T.gh("POST", "/_stub/config", {"rules": []})
    srv = Healer(srv.data_dir, env).start()
    runs = wait_for(lambda: len(T.by_task(tid)) >= 2 and T.by_task(tid), 40) or []
    labels = [(c["metadata"]["labels"]["healer/attempt"], c["metadata"]["labels"]["healer/agent"])
              for c in runs]
    done = wait_for(lambda: all(a[1] != "preparing" for a in attempts(srv, tid)), 10)
    check("killed while attempt 2 was prepared: the restart makes attempt 2 (same agent), "
          "none is skipped or left preparing",
          preparing and labels == [("1", "rex"), ("2", "rex")] and done
          and [a[0] for a in attempts(srv, tid)] == [1, 2], [labels, attempts(srv, tid)])
    if len(runs) == 2:
        T.set_phase(runs[1]["metadata"]["name"], "Failed", message="second try failed")
    runs = wait_for(lambda: len(T.by_task(tid)) >= 3 and T.by_task(tid), 20) or []
    third = runs[2]["metadata"]["labels"] if len(runs) > 2 else {}
    check("attempt 3 follows the two real failures (the runner-up agent)",
          third.get("healer/attempt") == "3" and third.get("healer/agent") not in (None, "rex"),
          [third, attempts(srv, tid)])
    if len(runs) > 2:
        T.set_phase(runs[2]["metadata"]["name"], "Failed", message="third try failed")
    escalated = T.wait_state(srv, tid, "escalated", 20)
    # the only slot is free again: a new failure gets its CodeRun
    tb = T.deliver(srv, T.job_event(7501, 8501, "edge/prep2"))
    started = wait_for(lambda: T.by_task(tb), 15)
    check("after the escalation no attempt holds the CodeRun slot: the next task starts",
          escalated and started, [T.task_of(srv, tid).get("state"), T.task_of(srv, tb)])
    srv.stop()
    return srv


def ci_while_agent_runs():
    srv = Healer(os.path.join(dtest.TMP, "early"), T.BASE_ENV).start()
    T.seed_job(7510)
    tid = T.deliver(srv, T.job_event(7510, 8510, "edge/early"))
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    name = runs[0]["metadata"]["name"] if runs else "?"
    # a status whose jobName is no Job name (it would add a term to the pod
    # list's label selector): no pod is looked up by it
    before = len(T.kube("GET", "/_stub/requests"))
    T.set_phase(name, "Running", status={"jobName": "job-e1,app=intruder"})
    wait_for(lambda: (T.task_of(srv, tid).get("attempts") or [{}])[0].get("phase") == "running",
             10)
    time.sleep(0.5)
    sels = [r["query"].get("labelSelector", "") for r in T.kube("GET", "/_stub/requests")[before:]
            if r["path"].endswith("/pods")]
    check("a CodeRun's jobName that is no Job name selects no pods (no selector term of it)",
          not any("intruder" in q for q in sels), sels)
    # the job fails again on a push made while the agent is still at work
    T.seed_job(7511)
    T.deliver(srv, T.job_event(7511, 8511, "edge/early", sha=T.SHA1))
    wait_for(lambda: "ci result recorded" in srv.log_tail(), 10)
    # a status message of megabytes (a broken controller, or a hostile API
    # server): its head is kept, never the whole of it on every write
    T.set_phase(name, "Running", message="still working: " + "y" * (3 << 20),
                status={"pullRequestUrl": f"https://github.com/{T.REPO}/pull/1?" + "z" * (1 << 20)})
    msg = wait_for(lambda: (lambda m: m if (m or "").startswith("still working: ") else None)(
        (T.task_of(srv, tid).get("attempts") or [{}])[0].get("status_message")), 15) or ""
    a0 = (T.task_of(srv, tid).get("attempts") or [{}])[0]
    check("a CodeRun's status message of 3 MiB is kept cut to its first 8 KiB, saying so; a "
          "pullRequestUrl of 1 MiB is none", msg.startswith("still working: yyy")
          and len(msg.encode()) <= 8192 + 64 and msg.endswith("more bytes cut]")
          and a0.get("pr_url") is None, [len(msg), msg[-80:], len(a0.get("pr_url") or "")])
    T.set_phase(name, "Succeeded")
    verifying = T.wait_state(srv, tid, "verifying", 15)
    time.sleep(1.5)  # a verdict would be applied within the loop's interval
    t = T.task_of(srv, tid)
    check("a CI failure that came while the agent still ran is no verdict once its CodeRun "
          "Succeeded: the task waits for CI (verifying), no attempt 2",
          verifying and t.get("state") == "verifying" and len(T.by_task(tid)) == 1
          and not t["attempts"][0].get("outcome"), t)
    T.deliver(srv, T.job_event(7512, 8512, "edge/early", conclusion="success", sha=T.SHA1))
    ok = T.wait_state(srv, tid, "succeeded", 15)
    check("... and the job passing after it judges the attempt success",
          ok and T.task_of(srv, tid)["attempts"][0].get("outcome") == "success",
          T.task_of(srv, tid))
    srv.stop()
    return srv


SHA2 = "cccccccccccccccccccccccccccccccccccccccc"


def ci_results_recorded(srv):
    return open(os.path.join(srv.data_dir, "server.log"),
                errors="replace").read().count("ci result recorded")


def pass_while_agent_runs():
    srv = Healer(os.path.join(dtest.TMP, "waits"), T.BASE_ENV).start()
    outcomes = {}
    for job, branch, first, second in ((7540, "edge/waits", "failure", "success"),
                                       (7550, "edge/waits2", "success", "failure")):
        T.seed_job(job)
        tid = T.deliver(srv, T.job_event(job, job + 1000, branch))
        runs = wait_for(lambda: T.by_task(tid), 15) or []
        name = runs[0]["metadata"]["name"] if runs else "?"
        T.set_phase(name, "Running")
        wait_for(lambda: (T.task_of(srv, tid).get("attempts") or [{}])[0].get("phase")
                 == "running", 10)
        # the agent pushes twice and waits for CI on each push, then ends
        seen = ci_results_recorded(srv)
        T.seed_job(job + 1)
        T.deliver(srv, T.job_event(job + 1, job + 1001, branch, conclusion=first, sha=T.SHA1))
        wait_for(lambda: ci_results_recorded(srv) > seen, 10)
        T.seed_job(job + 2)
        T.deliver(srv, T.job_event(job + 2, job + 1002, branch, conclusion=second, sha=SHA2))
        wait_for(lambda: ci_results_recorded(srv) > seen + 1, 10)
        T.set_phase(name, "Succeeded")
        if second == "success":
            T.wait_state(srv, tid, "succeeded", 15)
        else:
            T.wait_state(srv, tid, "verifying", 15)
            time.sleep(1.5)  # a verdict would be applied within the loop's interval
        t = T.task_of(srv, tid)
        outcomes[second] = (t.get("state"), t["attempts"][0].get("outcome"),
                            len(T.by_task(tid)))
    check("the job passing on the agent's last push before its CodeRun Succeeded judges the "
          "attempt success at once (not at the verify timeout)",
          outcomes.get("success") == ("succeeded", "success", 1), outcomes)
    check("... a pass followed by a failure before Succeeded is no verdict: the task waits "
          "for CI (verifying)",
          outcomes.get("failure") == ("verifying", None, 1), outcomes)
    srv.stop()
    return srv


SHA3 = "dddddddddddddddddddddddddddddddddddddddd"


def asked_github(job_id):
    """Waits until healer asked the GitHub stand-in about job_id (a task
    claimed for it gathers its context)."""
    wait_for(lambda: any(f"/{job_id}" in (r.get("path") or "")
                         for r in T.gh("GET", "/_stub/requests") or []), 10, step=0.05)


def failure_while_deciding():
    srv = Healer(os.path.join(dtest.TMP, "deciding"), T.BASE_ENV).start()
    slow = {"rules": [{"method": "GET", "path": "/repos/", "delay_ms": 1200}]}
    # 1. the first task is decided into a CodeRun: the second failure is its result
    T.seed_job(7560)
    T.seed_job(7561)
    T.gh("POST", "/_stub/config", slow)
    first = T.deliver(srv, T.job_event(7560, 8560, "edge/deciding"))
    asked_github(7560)  # the first failure's task is claimed, its context on its way
    second = T.deliver(srv, T.job_event(7561, 8561, "edge/deciding", sha=T.SHA1))
    runs = wait_for(lambda: T.by_task(first), 20) or []
    T.gh("POST", "/_stub/config", {"rules": []})
    settled = wait_for(lambda: T.task_of(srv, second).get("task_id") == first, 20)
    time.sleep(1.0)
    check("a failure of the job while its first failure's task is being decided is that "
          "task's result: one task, one CodeRun",
          settled and len(runs) == 1 and len(T.coderuns("edge/deciding")) == 1
          and T.task_of(srv, first).get("state") in ("running", "verifying"),
          [T.task_of(srv, second).get("task_id"), first, len(T.coderuns("edge/deciding"))])
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Failed", message="no")
    # 2. the deciding task ends skipped (its commit carries a skip tag): the
    # waiting failure starts its own task
    T.gh("POST", "/_stub/seed", {"commits": {SHA3: {
        "sha": SHA3, "commit": {"message": "wip [skip-healer]"}, "files": []}}})
    T.seed_job(7570)
    T.seed_job(7571)
    T.gh("POST", "/_stub/config", slow)
    skipped = T.deliver(srv, T.job_event(7570, 8570, "edge/deciding2", sha=SHA3))
    asked_github(7570)
    own = T.deliver(srv, T.job_event(7571, 8571, "edge/deciding2", sha=T.SHA1))
    ended = T.wait_state(srv, skipped, "skipped", 20)
    T.gh("POST", "/_stub/config", {"rules": []})
    started = wait_for(lambda: T.by_task(own), 30) or []
    check("... and when that task ends skipped, the waiting failure starts its own task "
          "and CodeRun",
          ended and own and own != skipped and len(started) == 1
          and not T.by_task(skipped),
          [T.task_of(srv, skipped).get("state"), T.task_of(srv, own), srv.log_tail()[-1500:]])
    srv.stop()
    return srv


def stop_queued():
    env = dict(T.BASE_ENV, HEALER_MAX_ACTIVE_CODERUNS="1")
    T.gh("POST", "/_stub/seed", {
        "pulls": [{"number": 95, "state": "open", "title": "Queued", "user": {"login": "dev"},
                   "html_url": f"https://github.com/{T.REPO}/pull/95", "body": "",
                   "head": {"ref": "edge/q2", "sha": T.SHA0, "repo": {"full_name": T.REPO}},
                   "base": {"ref": "main", "repo": {"full_name": T.REPO}}}],
        "issue_comments": {"9595": {"id": 9595}}})
    srv = Healer(os.path.join(dtest.TMP, "queued"), env).start()
    T.seed_job(7520)
    T.seed_job(7521)
    ta = T.deliver(srv, T.job_event(7520, 8520, "edge/q1"))
    runs = wait_for(lambda: T.by_task(ta), 15) or []
    tq = T.deliver(srv, T.job_event(7521, 8521, "edge/q2"))
    queued = T.wait_state(srv, tq, "queued", 15)
    check("a failure over the CodeRun budget is queued with its branch's PR",
          queued and T.task_of(srv, tq).get("pr_number") == 95, T.task_of(srv, tq))
    T.deliver(srv, T.comment_event(9595, 95, "/healer stop", "OWNER"), event="issue_comment")
    stopped = T.wait_state(srv, tq, "stopped", 15)
    check("/healer stop on the PR of a queued task ends it stopped",
          stopped, [T.task_of(srv, tq), srv.log_tail()[-1500:]])
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Failed", message="no")
    # the freed slot goes to A's attempt 2, never to the stopped task
    wait_for(lambda: len(T.by_task(ta)) >= 2, 15)
    time.sleep(1.0)
    check("... and the stopped task never gets a CodeRun",
          not T.by_task(tq) and T.task_of(srv, tq).get("state") == "stopped"
          and not T.task_of(srv, tq).get("attempts"), T.task_of(srv, tq))
    srv.stop()
    return srv


def check_run_of_unknown_run():
    srv = Healer(os.path.join(dtest.TMP, "checkrun"), T.BASE_ENV).start()
    T.seed_job(7530)
    tid = T.deliver(srv, T.job_event(7530, 8530, "edge/cr"))
    wait_for(lambda: T.by_task(tid), 15)
    # a check run of the job failing again on the branch, from a run GitHub
    # answers 404 for (not visible yet): the active task's, not a new task
    T.seed_job(7531)
    cid = 7531
    st, ans = srv.deliver(
        {"action": "completed",
         "check_run": {"id": cid, "name": "clippy", "head_sha": T.SHA1, "status": "completed",
                       "conclusion": "failure", "app": {"slug": "github-actions"},
                       "html_url": f"https://github.com/{T.REPO}/runs/{cid}",
                       "details_url": f"https://github.com/{T.REPO}/actions/runs/8531/job/{cid}",
                       "check_suite": {"id": cid + 100000, "head_branch": "edge/cr",
                                       "head_sha": T.SHA1},
                       "output": {"title": "clippy", "summary": "1 error", "text": None}},
         "repository": {"full_name": T.REPO, "default_branch": "main"},
         "sender": {"login": "dev", "type": "User"}}, event="check_run")
    attached = wait_for(lambda: "ci result recorded" in srv.log_tail(), 10)
    time.sleep(1.0)
    _, lst = srv.request("GET", "/api/remediations?limit=50")
    tasks = [x["task_id"] for x in lst.get("remediations", []) if x.get("branch") == "edge/cr"]
    # the id the check run was answered with reads as the active task
    alias = T.task_of(srv, ans.get("task_id"))
    check("a check run of an active task's job from a run GitHub does not know is that "
          "task's result: no second task or CodeRun",
          st == 202 and attached and tasks == [tid] and len(T.coderuns("edge/cr")) == 1
          and alias.get("task_id") == tid,
          [ans, tasks, alias, [c["metadata"]["name"] for c in T.coderuns("edge/cr")]])
    srv.stop()
    return srv


def delivery_state(srv, did):
    con = dtest.store_db(srv.data_dir)
    try:
        row = con.execute("SELECT state, finished_ms FROM deliveries WHERE delivery_id = ?",
                          (did,)).fetchone()
    finally:
        con.close()
    return tuple(row) if row else None


def replayed_after_a_retry():
    srv = Healer(os.path.join(dtest.TMP, "replayed"), T.BASE_ENV).start()
    T.seed_job(7580)
    did = "edge-replayed-7580"
    st, ans = srv.deliver(T.job_event(7580, 8580, "edge/replayed"), delivery=did)
    tid = ans.get("task_id")
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Failed", message="first try failed")
    runs = wait_for(lambda: len(T.by_task(tid)) >= 2 and T.by_task(tid), 20) or []
    # the CodeRun exists a moment before attempt 2 is recorded as created
    # ("preparing" -> "pending"): compare against the settled attempt
    wait_for(lambda: (lambda a: len(a) == 2 and a[1][1] not in (None, "preparing"))(
        attempts(srv, tid)), 10)
    before = attempts(srv, tid)
    first = delivery_state(srv, did)
    # the failure's delivery is processed again (replayed; or a replica
    # taking over its claim): its task went on meanwhile, and deciding it
    # again set attempt 1 back to pending and the task's count to 1
    rc, out, err = dtest.healer("replay", did, env=dict(T.BASE_ENV,
                                                        HEALER_DATA_DIR=srv.data_dir))
    again = wait_for(lambda: (lambda d: d and first and d[0] == "processed"
                              and int(d[1] or 0) > int(first[1] or 0))(
        delivery_state(srv, did)), 20)
    time.sleep(0.5)
    t = T.task_of(srv, tid)
    check("a failure's delivery processed again after its task went on (attempt 2 running) "
          "changes nothing: no attempt reset, no third CodeRun",
          rc == 0 and again and len(before) == 2 and attempts(srv, tid) == before
          and t.get("state") == "running" and len(T.by_task(tid)) == 2,
          [rc, err[-300:], first, delivery_state(srv, did), before, attempts(srv, tid),
           t.get("state"), [c["metadata"]["name"] for c in T.by_task(tid)]])
    srv.stop()
    return srv


def fork_pull(number, branch, sha, fork):
    """An open pull request of a fork's branch at sha."""
    p = T.pull(number, branch, sha)
    p["head"]["repo"] = {"full_name": fork}
    return p


def check_stopped(srv, tid, settle_s, name):
    """Checks that task tid ends stopped, stays so for settle_s, its first
    attempt stopped and no CodeRun of it left."""
    stopped = T.wait_state(srv, tid, "stopped", 15)
    time.sleep(settle_s)
    t = T.task_of(srv, tid)
    check(name, stopped and t.get("state") == "stopped"
          and (t.get("attempts") or [{}])[0].get("outcome") == "stopped"
          and not T.by_task(tid),
          [{k: t.get(k) for k in ("state", "attempts")},
           [c["metadata"]["name"] for c in T.by_task(tid)],
           [ln for ln in srv.log_tail().splitlines() if "healer command" in ln][-2:]])


def stop_while_a_job_failure_is_decided():
    # a workflow_job event names no PR: its task learns the PR with its
    # decision, so a stop meanwhile found no task of the PR and was dropped
    # while the agent went on
    srv = Healer(os.path.join(dtest.TMP, "stopdecided"), T.BASE_ENV).start()
    T.gh("POST", "/_stub/seed", {"pulls": [T.pull(84, "edge/stopd", T.SHA0)]})
    T.seed_job(7590)
    T.kube("POST", "/_stub/config", {"create_reply_delay_ms": 3000})
    tid = T.deliver(srv, T.job_event(7590, 8590, "edge/stopd"))
    wait_for(lambda: T.by_task(tid), 20, 0.02)
    # and a CodeRun of the task whose name it never recorded (its create
    # answered too late, stored all the same): the stop deletes it too
    T.kube("POST", "/_stub/seed", {"coderuns": [{
        "apiVersion": "agents.platform/v1", "kind": "CodeRun",
        "metadata": {"name": "edge-stopd-unrecorded", "namespace": T.NS,
                     "labels": {"app.kubernetes.io/name": "healer", "healer/task-id": tid,
                                "healer/attempt": "9"}},
        "spec": {"service": "healer-ci"}, "status": {"phase": "Pending"}}]})
    T.deliver(srv, T.comment_event(9021, 84, "/healer stop", "OWNER"), event="issue_comment")
    T.kube("POST", "/_stub/config", {"create_reply_delay_ms": 0})
    check_stopped(srv, tid, 0.5,
                  "/healer stop while a job failure's first attempt is being decided (its event "
                  "names no PR): the task ends stopped, its CodeRuns deleted (one it never "
                  "recorded too)")

    # a stop while a decision older than the two minutes a claim counts as
    # being decided is still at work (its CodeRun create answered late):
    # found by the PR's branch, the task is stopped, its CodeRun deleted,
    # and the decision coming back does not set it running again (before,
    # the stop found nothing and the agent went on)
    T.gh("POST", "/_stub/seed", {"pulls": [T.pull(85, "edge/stopold", T.SHA0)]})
    T.seed_job(7592)
    T.kube("POST", "/_stub/config", {"create_reply_delay_ms": 3000})
    tid = T.deliver(srv, T.job_event(7592, 8592, "edge/stopold"))
    wait_for(lambda: T.by_task(tid), 20, 0.02)
    dtest.store_exec(srv.data_dir, "UPDATE remediation_tasks SET created_ms = created_ms - "
                     "180000 WHERE task_id = ?", (tid,))
    T.deliver(srv, T.comment_event(9022, 85, "/healer stop", "OWNER"), event="issue_comment")
    T.kube("POST", "/_stub/config", {"create_reply_delay_ms": 0})
    check_stopped(srv, tid, 2.0,
                  "/healer stop while an old claim's decision is still at work: the task ends "
                  "stopped and stays so, its CodeRun deleted")

    # a fork's PR shares its branch name with a branch of the repository (a
    # fork's main): a stop on the PR found the repository branch's task,
    # decided without a PR, and stopped it
    T.gh("POST", "/_stub/seed", {
        "pulls": [fork_pull(87, "edge/forkmain", "f" * 40, "fork3/gadgets")],
        "pull_commits": {"87": [{"sha": "f" * 40}]}})
    T.seed_job(7593)
    tid = T.deliver(srv, T.job_event(7593, 8593, "edge/forkmain", sha="e" * 40))
    T.wait_state(srv, tid, "running", 20)
    wait_for(lambda: T.by_task(tid), 20, 0.02)
    T.deliver(srv, T.comment_event(9023, 87, "/healer stop", "OWNER"), event="issue_comment")
    time.sleep(2.0)
    t = T.task_of(srv, tid)
    check("/healer stop on a fork's PR leaves the task of the repository's branch of the same "
          "name running", t.get("state") == "running" and len(T.by_task(tid)) == 1,
          [t.get("state"), [c["metadata"]["name"] for c in T.by_task(tid)],
           [ln for ln in srv.log_tail().splitlines() if "healer command" in ln][-2:]])

    # and the fork PR's own failure at a commit the fork has pushed over
    # since (the PR's CI runs in the repository, on the fork's branch name):
    # the stop finds it among the PR's commits
    T.gh("POST", "/_stub/seed", {
        "pulls": [fork_pull(88, "edge/forkpushed", "d" * 40, "fork4/gadgets")],
        "pull_commits": {"88": [{"sha": "c" * 40}, {"sha": "d" * 40}]}})
    T.seed_job(7594)
    tid = T.deliver(srv, T.job_event(7594, 8594, "edge/forkpushed", sha="c" * 40))
    T.wait_state(srv, tid, "running", 20)
    wait_for(lambda: T.by_task(tid), 20, 0.02)
    T.deliver(srv, T.comment_event(9024, 88, "/healer stop", "OWNER"), event="issue_comment")
    check_stopped(srv, tid, 0.5,
                  "/healer stop on a fork's PR stops the task of its failure at an earlier "
                  "commit of the PR")

    # a conflict (409) while a command runs: the worker read the pipeline's
    # HL_ECONFLICT as "another process finished it" and left the delivery
    # claimed until a restart
    sha = "9" * 40
    T.gh("POST", "/_stub/seed", {
        "pulls": [T.pull(86, "edge/conflict", sha)],
        "check_runs_by_ref": {sha: [T.check_run(7591, 8591, "edge/conflict", sha, "failure")]},
        "runs": [T.run_of(8591, "edge/conflict", sha, "failure")]})
    T.seed_job(7591)
    T.gh("POST", "/_stub/config", {"rules": [
        {"method": "GET", "path": f"/repos/{T.REPO}/pulls/86", "status": 409, "times": 1,
         "body": {"message": "Conflict"}}]})
    T.deliver(srv, T.comment_event(9031, 86, "/healer fix", "MEMBER"), event="issue_comment")
    runs = wait_for(lambda: [c for c in T.coderuns()
                             if c["spec"].get("env", {}).get("PR_NUMBER") == "86"], 30) or []
    T.gh("POST", "/_stub/config", {"rules": []})
    check("a 409 from GitHub while /healer fix runs: the command is retried and the fix starts",
          len(runs) == 1, [ln for ln in srv.log_tail().splitlines()
                           if "Conflict" in ln or "healer command" in ln][-4:])
    srv.stop()
    return srv


def spoofed_marker():
    """A job's log line that looks like the escalation comment's marker, and a
    comment holding it posted before: the escalation comment is still posted
    (before, the quoted line was taken for the marker, the spoof was found and
    the escalation recorded delivered with no comment of healer's)."""
    spoof = "<!-- healer:owned -->"
    log = T.CLIPPY_LOG.replace("Z error: ", f"Z {spoof} error: ")
    srv = Healer(os.path.join(dtest.TMP, "spoof"), T.BASE_ENV).start()
    T.gh("POST", "/_stub/seed", {"pulls": [T.pull(93, "edge/spoof", T.SHA0)]})
    T.gh("POST", f"/repos/{T.REPO}/issues/93/comments", {"body": f"first! {spoof}"})
    T.seed_job(7930, log)
    tid = T.deliver(srv, T.job_event(7930, 8930, "edge/spoof"))
    for n in (1, 2, 3):
        runs = wait_for(lambda: len(T.by_task(tid)) >= n and T.by_task(tid), 30) or []
        if len(runs) >= n:
            T.set_phase(runs[n - 1]["metadata"]["name"], "Failed", message=f"try {n} failed")
    escalated = T.wait_state(srv, tid, "escalated", 20)
    posted = wait_for(lambda: [c for c in T.gh("GET", "/_stub/comments")
                               if c["issue"] == 93 and "first!" not in c["body"]], 20) or []
    gh_note = [n for n in T.task_of(srv, tid).get("notifications", [])
               if n["channel"] == "github"]
    check("a log line like the comment's marker and a comment holding it: the escalation "
          "comment is still posted, marked by its own last line",
          escalated and len(posted) == 1 and spoof in posted[0]["body"]
          and posted[0]["body"].rstrip().splitlines()[-1] != spoof,
          [escalated, posted, gh_note])
    srv.stop()
    return srv


def retry_hint_queued():
    """/healer retry HINT while the only CodeRun slot is held: the task waits
    queued, the reply says so, and the attempt made when the slot frees
    carries the hint (before: the reply said retrying and the hint was lost)."""
    env = dict(T.BASE_ENV, HEALER_MAX_ACTIVE_CODERUNS="1")
    T.gh("POST", "/_stub/seed", {
        "pulls": [T.pull(97, "edge/h1", T.SHA0), T.pull(98, "edge/h2", T.SHA0)],
        "issue_comments": {str(i): {"id": i} for i in (9701, 9702, 9703, 9704)}})
    srv = Healer(os.path.join(dtest.TMP, "retryq"), env).start()
    T.seed_job(7960)
    T.seed_job(7961)
    tb = T.deliver(srv, T.job_event(7960, 8960, "edge/h1"))
    wait_for(lambda: T.by_task(tb), 15)
    T.deliver(srv, T.comment_event(9701, 97, "/healer stop", "OWNER"), event="issue_comment")
    stopped = T.wait_state(srv, tb, "stopped", 15)
    tc = T.deliver(srv, T.job_event(7961, 8961, "edge/h2"))
    held = wait_for(lambda: T.by_task(tc), 15)
    T.deliver(srv, T.comment_event(9702, 97, "/healer retry HINTQ-7 pin the toolchain", "OWNER"),
              event="issue_comment")
    queued = T.wait_state(srv, tb, "queued", 15)
    said = wait_for(lambda: [ln for ln in srv.log_tail().splitlines()
                             if "healer command" in ln and "queued" in ln], 10)
    check("/healer retry HINT with the only slot held: the task waits queued, and the "
          "command says queued", stopped and held and queued and said
          and len(T.by_task(tb)) <= 1, [T.task_of(srv, tb).get("state"), srv.log_tail()[-1500:]])
    # the slot frees: the queued attempt starts with the hint
    T.deliver(srv, T.comment_event(9703, 98, "/healer stop", "OWNER"), event="issue_comment")
    runs = wait_for(lambda: [c for c in T.by_task(tb)
                             if c["metadata"]["labels"].get("healer/attempt") == "2"], 20) or []
    p2 = runs[0]["spec"].get("promptModification", "") if runs else ""
    # taken out once the attempt has started (just after its CodeRun)
    wait_for(lambda: "queued_hint" not in (T.task_of(srv, tb).get("decision") or {}), 10)
    decision = T.task_of(srv, tb).get("decision") or {}
    check("... and its attempt, once the slot frees, carries the hint (kept no longer), "
          "credited to its commenter", "HINTQ-7" in p2 and "queued_hint" not in decision
          and "Requested by `someone` (`comment`: `retry`)" in p2
          and "queued_hint_author" not in decision,
          [len(runs), p2[-1200:], decision.get("queued_hint")])
    srv.stop()
    return srv


def many_attempts():
    """Past the limit and past 16 attempts: each /healer retry after the
    escalation grants one more attempt; the 18th attempt's prompt lists the
    newest 16 previous attempts (2..17, before: 1..16, the newest missing)
    and says "18 of 18" (before: "18 of 10")."""
    env = dict(T.BASE_ENV, HEALER_MAX_ATTEMPTS="10", HEALER_MAX_ATTEMPTS_PER_HOUR="100")
    T.gh("POST", "/_stub/seed", {
        "pulls": [T.pull(96, "edge/many", T.SHA0)],
        "issue_comments": {str(i): {"id": i} for i in range(9601, 9610)}})
    srv = Healer(os.path.join(dtest.TMP, "many"), env).start()
    T.seed_job(7950)
    tid = T.deliver(srv, T.job_event(7950, 8950, "edge/many"))
    runs = []
    for n in range(1, 18):
        runs = wait_for(lambda: len(T.by_task(tid)) >= n and T.by_task(tid), 20) or []
        if len(runs) < n:
            break
        T.wait_state(srv, tid, "running", 15)
        T.set_phase(runs[n - 1]["metadata"]["name"], "Failed", message=f"MANY-FAIL-{n}")
        if n >= 10:
            T.wait_state(srv, tid, "escalated", 20)
            T.deliver(srv, T.comment_event(9601 + n - 10, 96, "/healer retry", "OWNER"),
                      event="issue_comment")
    runs = wait_for(lambda: len(T.by_task(tid)) >= 18 and T.by_task(tid), 20) or []
    p = runs[17]["spec"].get("promptModification", "") if len(runs) >= 18 else ""
    listed = [n for n in range(1, 18) if f"### Attempt {n} by" in p]
    check("the 18th attempt lists the newest 16 previous attempts (2..17), as 18 of 18",
          listed == list(range(2, 18)) and "Retry Attempt 18 of 18" in p,
          [len(runs), listed, p[:600]])
    srv.stop()
    return srv


def wf_run_event(run_id, branch, conclusion, sha):
    return {"action": "completed",
            "workflow_run": {"id": run_id, "name": "Gadget CI", "run_attempt": 1,
                             "check_suite_id": run_id + 50000, "status": "completed",
                             "conclusion": conclusion, "head_branch": branch, "head_sha": sha,
                             "html_url": f"https://github.com/{T.REPO}/actions/runs/{run_id}",
                             "head_commit": {"message": "gadgets"}},
            "repository": {"full_name": T.REPO, "default_branch": "main"},
            "sender": {"login": "dev", "type": "User"}}


def circle_check(cid, branch, conclusion, sha, name="ci/circleci: clippy"):
    """A check run of another CI (CircleCI's app): no Actions run behind it."""
    return {"action": "completed",
            "check_run": {"id": cid, "name": name, "status": "completed",
                          "conclusion": conclusion, "head_sha": sha,
                          "app": {"slug": "circleci-checks"},
                          "details_url": f"https://circleci.com/gh/{T.REPO}/{cid}",
                          "html_url": f"https://github.com/{T.REPO}/runs/{cid}",
                          "check_suite": {"id": cid + 1000, "head_branch": branch,
                                          "head_sha": sha},
                          "output": {"title": "clippy", "summary": "error: could not compile",
                                     "text": None}},
            "repository": {"full_name": T.REPO, "default_branch": "main"},
            "sender": {"login": "dev", "type": "User"}}


def recorded_for(srv, tid):
    log = open(os.path.join(srv.data_dir, "server.log"), errors="replace").read()
    return sum(1 for ln in log.splitlines() if "ci result recorded" in ln and tid in ln)


def whole_run_and_other_ci():
    """A task started by a workflow_run failure (no job named) and one by
    another CI's check run (no Actions run behind it) are judged by CI too:
    the workflow's next run, or the check of that name, passing after the
    CodeRun Succeeded is success; a job of that workflow failing while the
    run's task is active is that task's, not a second task's (before: their
    results were never recorded, and at the verify timeout the attempt was
    ci_still_failing and another agent went)."""
    srv = Healer(os.path.join(dtest.TMP, "wholerun"), T.BASE_ENV).start()
    T.gh("POST", "/_stub/seed", {"jobs": {"8980": [
        {"id": 7980, "name": "clippy", "conclusion": "failure",
         "steps": [{"name": "Run clippy", "conclusion": "failure", "number": 3}]}]}})
    T.seed_job(7980)
    tid = T.deliver(srv, wf_run_event(8980, "edge/wholerun", "failure", T.SHA0),
                    event="workflow_run")
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    T.seed_job(7982)
    T.deliver(srv, T.job_event(7982, 8982, "edge/wholerun", sha=T.SHA1))
    attached = wait_for(lambda: recorded_for(srv, tid) >= 1, 10)
    check("a job of the workflow failing while its run's task is active is that task's result",
          runs and attached and len(T.by_task(tid)) == 1, [tid, attached, srv.log_tail()[-800:]])
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Succeeded")
    T.wait_state(srv, tid, "verifying", 15)
    T.deliver(srv, wf_run_event(8983, "edge/wholerun", "success", SHA2), event="workflow_run")
    ok = T.wait_state(srv, tid, "succeeded", 15)
    t = T.task_of(srv, tid)
    check("a workflow_run failure's task: the workflow passing on the branch after the fix is "
          "success", ok and (t.get("attempts") or [{}])[0].get("outcome") == "success"
          and len(T.by_task(tid)) == 1, [t.get("state"), t.get("attempts")])

    cid = T.deliver(srv, circle_check(99001, "edge/circle", "failure", T.SHA0), event="check_run")
    runs = wait_for(lambda: T.by_task(cid), 15) or []
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Succeeded")
    T.wait_state(srv, cid, "verifying", 15)
    T.deliver(srv, circle_check(99002, "edge/circle", "success", T.SHA1), event="check_run")
    ok = T.wait_state(srv, cid, "succeeded", 15)
    t = T.task_of(srv, cid)
    check("another CI's check run: the check passing on the branch after the fix is success",
          runs and ok and (t.get("attempts") or [{}])[0].get("outcome") == "success",
          [t.get("state"), t.get("attempts"), srv.log_tail()[-800:]])

    # another CI's check named like an Actions job an active task fixes is not that
    # job's result
    T.seed_job(7986)
    aid = T.deliver(srv, T.job_event(7986, 8986, "edge/samename"))
    wait_for(lambda: T.by_task(aid), 15)
    T.deliver(srv, circle_check(99003, "edge/samename", "success", T.SHA1, name="clippy"),
              event="check_run", delivery="circle-samename")
    processed = wait_for(lambda: any(d.get("delivery_id") == "circle-samename"
                                     and d.get("state") in ("processed", "skipped")
                                     for d in srv.request("GET", "/api/status")[1]
                                     .get("recent", [])), 10)
    check("another CI's check named like an Actions job is not that job's result",
          processed and recorded_for(srv, aid) == 0, [processed, recorded_for(srv, aid)])
    srv.stop()
    return srv


def rerun_after_the_run_ends():
    """A runner failure whose run is still going (its other jobs run on):
    GitHub refuses the re-run ("This workflow is already running"), and
    healer asks again once the run has ended, sending no agent (before: the
    refusal sent Bolt at once); the waiting re-run holds no CodeRun slot."""
    srv = Healer(os.path.join(dtest.TMP, "rerunlater"),
                 dict(T.BASE_ENV, HEALER_MAX_ACTIVE_CODERUNS="1")).start()
    run = {"id": 8990, "name": "Gadget CI", "head_branch": "edge/rerun", "head_sha": T.SHA0,
           "status": "in_progress", "conclusion": None, "run_attempt": 1, "workflow_id": 55}
    T.gh("POST", "/_stub/seed", {"runs": [run]})
    T.seed_job(7990, T.RUNNER_LOG)
    tid = T.deliver(srv, T.job_event(7990, 8990, "edge/rerun", name="test"))
    refused = wait_for(lambda: [r for r in T.gh("GET", "/_stub/requests") or []
                                if r["method"] == "POST" and "/8990/rerun-failed-jobs"
                                in r["path"]], 15)
    time.sleep(1.0)  # the refusal's consequence: no agent, no re-run yet
    check("a re-run refused while the run still goes sends no agent",
          refused and not T.by_task(tid)
          and not [r for r in T.gh("GET", "/_stub/reruns") if r["run_id"] == 8990],
          [bool(refused), [c["metadata"]["name"] for c in T.by_task(tid)]])
    T.seed_job(7991)
    other = T.deliver(srv, T.job_event(7991, 8991, "edge/rerun-other"))
    check("... and holds no CodeRun slot: another failure gets the only one",
          wait_for(lambda: T.by_task(other), 15), T.task_of(srv, other).get("state"))
    T.gh("POST", "/_stub/seed", {"runs": [dict(run, status="completed", conclusion="failure")]})
    reruns = wait_for(lambda: [r for r in T.gh("GET", "/_stub/reruns") if r["run_id"] == 8990],
                      30)
    t = wait_for(lambda: (lambda t: t if t.get("attempts") else None)(T.task_of(srv, tid)), 10)
    check("... once the run has ended it is re-run, and still no agent goes",
          reruns and not T.by_task(tid) and t and t["attempts"][0]["kind"] == "rerun",
          [reruns, t and t.get("attempts"), [c["metadata"]["name"] for c in T.by_task(tid)]])
    srv.stop()
    return srv


def delivery_reason(srv, did):
    con = dtest.store_db(srv.data_dir)
    try:
        row = con.execute("SELECT state, reason FROM deliveries WHERE delivery_id = ?",
                          (did,)).fetchone()
    finally:
        con.close()
    return tuple(row) if row else None


def agent_results():
    """What judges an agent's work, and what a retry that waited knows:
    - the job failing again on the agent's own push (a GitHub App's bot is
      the sender) is the task's result; a bot's failure no task owns starts
      none (before: skipped at intake, so a failed fix waited for the verify
      timeout);
    - a retry that waited queued for a CodeRun slot carries the current CI
      log (before: the first failure's);
    - an agent pushing to a fix branch off main is judged there: main
      failing again meanwhile is not its result (before: ci_still_failing);
    - a task ended skipped by its fetched commit's skip tag holds no CodeRun
      slot (before: its attempt stayed preparing and held it for good)."""
    env = dict(T.BASE_ENV, HEALER_MAX_ACTIVE_CODERUNS="1", HEALER_VERIFY_TIMEOUT_MINS="60")
    srv = Healer(os.path.join(dtest.TMP, "results"), env).start()
    bot = {"login": "gadget-fixer[bot]", "type": "Bot"}
    # 1. a bot's failure of a job no task fixes: stored, skipped, no task
    ev = T.job_event(7980, 8980, "edge/nobody")
    ev["sender"] = bot
    st, ans = srv.deliver(ev, delivery="bot-alone")
    wait_for(lambda: (delivery_reason(srv, "bot-alone") or ("",))[0] == "skipped", 10)
    check("a bot's CI failure no task fixes is stored and skipped (bot_sender), no task",
          st == 202 and delivery_reason(srv, "bot-alone") == ("skipped", "bot_sender")
          and not ans.get("task_id"), [st, ans, delivery_reason(srv, "bot-alone")])
    # a bot's command is refused at intake as before, never left to the worker
    cmd = T.comment_event(9801, 99, "/healer retry", "OWNER")
    cmd["sender"] = cmd["comment"]["user"] = bot
    st, ans = srv.deliver(cmd, event="issue_comment", delivery="bot-command")
    check("... and a bot's /healer command is answered skipped (bot_sender), never obeyed",
          st == 202 and ans.get("status") == "skipped" and ans.get("reason") == "bot_sender"
          and delivery_reason(srv, "bot-command") == ("skipped", "bot_sender"), [st, ans])
    # 2. the agent's push fails again, sent by the agent's bot, while task B
    # holds the only CodeRun slot
    T.seed_job(7981)
    T.seed_job(7984)
    ta = T.deliver(srv, T.job_event(7981, 8981, "edge/botpush"))
    runs = wait_for(lambda: T.by_task(ta), 15) or []
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Succeeded")
    T.wait_state(srv, ta, "verifying", 15)
    tb = T.deliver(srv, T.job_event(7984, 8984, "edge/holder"))
    runs_b = wait_for(lambda: T.by_task(tb), 15) or []
    marker = "error: MARKER-CURRENT-CI-7982 unused variable"
    T.seed_job(7982, T.CLIPPY_LOG + "2025-01-15T10:40:00.0000000Z " + marker + "\n")
    ev = T.job_event(7982, 8982, "edge/botpush", sha=T.SHA1)
    ev["sender"] = bot
    srv.deliver(ev, delivery="bot-push-fails")
    judged = wait_for(lambda: [a for a in T.task_of(srv, ta).get("attempts", [])
                               if a.get("outcome") == "ci_still_failing"], 15)
    check("the job failing again on the agent's push, sent by its bot, judges the attempt "
          "ci_still_failing at once", judged and runs_b,
          [T.task_of(srv, ta).get("attempts"), delivery_reason(srv, "bot-push-fails")])
    # 3. the retry waits for the slot, then carries the current CI log
    queued = T.wait_state(srv, ta, "queued", 10)
    if runs_b:
        T.set_phase(runs_b[0]["metadata"]["name"], "Succeeded")
    runs = wait_for(lambda: len(T.by_task(ta)) >= 2 and T.by_task(ta), 20) or []
    p2 = runs[1]["spec"].get("promptModification", "") if len(runs) > 1 else ""
    check("a retry that waited for a CodeRun slot carries the current CI log (the failure "
          "of the agent's push)", queued and "MARKER-CURRENT-CI-7982" in p2,
          [queued, len(runs), p2[-1500:]])
    if len(runs) > 1:
        T.set_phase(runs[1]["metadata"]["name"], "Succeeded")
    T.wait_state(srv, ta, "verifying", 15)
    # 4. a failure on main: the agent pushes to fix/clippy-cccccccc and is
    # judged there, not by main failing again on someone else's commit
    T.seed_job(7983)
    T.seed_job(7985)
    tm = T.deliver(srv, T.job_event(7983, 8983, "main", sha=SHA2))
    runs = wait_for(lambda: T.by_task(tm), 15) or []
    target = runs[0]["spec"]["env"].get("TARGET_BRANCH") if runs else None
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Succeeded")
    T.wait_state(srv, tm, "verifying", 15)
    srv.deliver(T.job_event(7985, 8985, "main", sha=SHA3), delivery="main-fails-again")
    wait_for(lambda: (delivery_reason(srv, "main-fails-again") or ("",))[0] == "processed", 10)
    time.sleep(1.0)
    check("an agent pushing to a fix branch is not judged by main failing again meanwhile",
          target == "fix/clippy-cccccccc" and T.task_of(srv, tm).get("state") == "verifying"
          and len(T.by_task(tm)) == 1,
          [target, T.task_of(srv, tm).get("state"), T.task_of(srv, tm).get("attempts")])
    srv.deliver(T.job_event(7986, 8986, "fix/clippy-cccccccc", conclusion="success",
                            sha=T.SHA1), delivery="fix-branch-passes")
    check("... and its fix branch passing is success",
          T.wait_state(srv, tm, "succeeded", 15), T.task_of(srv, tm).get("attempts"))
    # the fix branch passes while the agent still works, then main fails on
    # someone else's commit: once the CodeRun Succeeded the pass judges
    # (before: main's failure, the latest result, hid it until the timeout)
    sha_m = "1f" * 20
    T.seed_job(7970)
    tm2 = T.deliver(srv, T.job_event(7970, 8970, "main", sha=sha_m))
    runs = wait_for(lambda: T.by_task(tm2), 15) or []
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Running")
    srv.deliver(T.job_event(7971, 8971, "fix/clippy-1f1f1f1f", conclusion="success",
                            sha=T.SHA1), delivery="fix2-passes")
    T.seed_job(7972)
    srv.deliver(T.job_event(7972, 8972, "main", sha="2e" * 20), delivery="main2-fails")
    wait_for(lambda: all((delivery_reason(srv, d) or ("",))[0] == "processed"
                         for d in ("fix2-passes", "main2-fails")), 10)
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Succeeded")
    check("the fix branch passing before main failed again judges the agent's attempt success "
          "once its CodeRun Succeeded", T.wait_state(srv, tm2, "succeeded", 15),
          [T.task_of(srv, tm2).get("state"), T.task_of(srv, tm2).get("attempts")])
    # 5. a task ended skipped by its fetched commit's skip tag holds no slot
    sha_e = "0e" * 20  # a commit of its own: the stand-in is shared
    T.gh("POST", "/_stub/seed", {"commits": {sha_e: {
        "sha": sha_e, "commit": {"message": "wip [skip-healer]"}, "files": []}}})
    T.seed_job(7987)
    T.seed_job(7988)
    ts = T.deliver(srv, T.job_event(7987, 8987, "edge/skipme", sha=sha_e))
    skipped = T.wait_state(srv, ts, "skipped", 15)
    tn = T.deliver(srv, T.job_event(7988, 8988, "edge/after"))
    started = wait_for(lambda: T.by_task(tn), 15)
    check("a task skipped by its commit's skip tag holds no CodeRun slot: the next failure "
          "gets its CodeRun", skipped and started,
          [T.task_of(srv, ts).get("attempts"), T.task_of(srv, tn).get("state")])
    srv.stop()
    return srv


def fork_run(run_id, branch, sha, conclusion):
    """A run of a fork's pull request as GitHub's runs API shows it."""
    return {"id": run_id, "name": "Gadget CI", "head_branch": branch, "head_sha": sha,
            "status": "completed", "conclusion": conclusion, "run_attempt": 1,
            "workflow_id": 55, "event": "pull_request",
            "head_repository": {"full_name": "mallory/gadgets"},
            "created_at": "2030-01-01T00:00:00Z"}


def fork_runs():
    """Runs of a fork's pull request carry the fork's branch name: a fork
    branch named like the task's is no result of it (before: its success
    judged the agent's attempt success, its failure fed the retry its log),
    and a fork's failure starts no task on its own (before: a task and a
    CodeRun on this repository's branch of that name)."""
    srv = Healer(os.path.join(dtest.TMP, "forks"), T.BASE_ENV).start()
    T.seed_job(7995)
    tid = T.deliver(srv, T.job_event(7995, 8995, "edge/forked"))
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Succeeded")
    T.wait_state(srv, tid, "verifying", 15)
    T.gh("POST", "/_stub/seed", {"runs": [fork_run(8996, "edge/forked", T.SHA1, "success"),
                                          fork_run(8997, "edge/forked", T.SHA1, "failure"),
                                          fork_run(8998, "main", T.SHA1, "failure")]})
    T.seed_job(7997)
    T.seed_job(7998)
    srv.deliver(T.job_event(7996, 8996, "edge/forked", conclusion="success", sha=T.SHA1),
                delivery="fork-passes")
    srv.deliver(T.job_event(7997, 8997, "edge/forked", sha=T.SHA1), delivery="fork-fails")
    wf = wf_run_event(8999, "edge/forked", "success", T.SHA1)
    wf["workflow_run"]["head_repository"] = {"full_name": "mallory/gadgets"}
    srv.deliver(wf, event="workflow_run", delivery="fork-run-passes")
    done = wait_for(lambda: all((delivery_state(srv, d) or ("",))[0] in ("processed", "skipped")
                                for d in ("fork-passes", "fork-fails", "fork-run-passes")), 15)
    time.sleep(1.0)
    t = T.task_of(srv, tid)
    check("a fork's pull request runs on a branch named like the task's are no result of it: "
          "the task still waits for CI, no attempt 2",
          done and t.get("state") == "verifying" and len(T.by_task(tid)) == 1,
          [t.get("state"), t.get("attempts"), [delivery_state(srv, d) for d in
                                               ("fork-passes", "fork-fails", "fork-run-passes")]])
    fork_task = T.deliver(srv, T.job_event(7998, 8998, "main", sha=T.SHA1))
    skipped = T.wait_state(srv, fork_task, "skipped", 15)
    ft = T.task_of(srv, fork_task)
    check("a fork's failure starts no task or CodeRun on its own (fork_run)",
          skipped and "fork_run" in (ft.get("reason") or "") and not T.by_task(fork_task),
          [ft.get("state"), ft.get("reason"), delivery_state(srv, "fork-fails")])
    srv.deliver(T.job_event(7994, 8994, "edge/forked", conclusion="success", sha=SHA2),
                delivery="own-passes")
    check("... and the repository's own run passing is success",
          T.wait_state(srv, tid, "succeeded", 15), T.task_of(srv, tid).get("attempts"))
    srv.stop()
    return srv


def pull_rule(number, answer):
    """A stand-in rule: GitHub answers GET of PR number with answer (a PR
    object, or a status alone); the stand-in's seeded pulls stay as they are
    (the open PR is still found by its branch)."""
    r = {"method": "GET", "path": f"/repos/{T.REPO}/pulls/{number}"}
    if isinstance(answer, int):
        r["status"] = answer
    else:
        r.update(status=200, body=answer)
    return r


def ended(number, branch, merged):
    """PR number as GitHub shows it once closed, or merged."""
    p = dict(T.pull(number, branch, T.SHA0), state="closed")
    p.update(merged=merged, merged_at="2030-01-01T00:00:00Z" if merged else None,
             closed_at="2030-01-01T00:00:00Z")
    return p


def people_told(number):
    """Messages sent so far: Discord, Slack, emails, and PR number's comments."""
    return (len(dtest.http("GET", T.DURL + "/_stub/messages") or []),
            len(dtest.http("GET", T.SLURL + "/_stub/messages") or []),
            len([f for f in os.listdir(T.MAILDIR) if f.endswith(".eml")]),
            len([c for c in T.gh("GET", "/_stub/comments") or [] if c["issue"] == number]))


def pr_ended_while_attempt_runs():
    """A PR closed or merged while an attempt of its task runs: the attempt
    failing sends no next attempt (to push to a merged or deleted branch)
    and, after the last one, tells nobody; the task ends stopped saying why.
    A GitHub that cannot tell does not hold the loop up (the retry goes);
    a queued task whose PR closed while it waited never starts."""
    srv = Healer(os.path.join(dtest.TMP, "prended"), T.BASE_ENV).start()
    T.gh("POST", "/_stub/seed", {"pulls": [T.pull(n, f"edge/pr{n}", T.SHA0)
                                           for n in (63, 64, 65, 66, 67)]})
    cases = ((63, False, "the pull request was closed"),
             (64, True, "the pull request was merged"))
    for n, merged, why in cases:
        T.seed_job(7600 + n)
        tid = T.deliver(srv, T.job_event(7600 + n, 8600 + n, f"edge/pr{n}"))
        runs = wait_for(lambda: T.by_task(tid), 15) or []
        # the task is recorded, with the PR it learnt, just after its CodeRun is created
        learnt = wait_for(lambda: T.task_of(srv, tid).get("pr_number"), 15)
        before = people_told(n)
        T.gh("POST", "/_stub/config", {"rules": [pull_rule(n, ended(n, f"edge/pr{n}", merged))]})
        if runs:
            T.set_phase(runs[0]["metadata"]["name"], "Failed", message="first try failed")
        stopped = T.wait_state(srv, tid, "stopped", 15)
        time.sleep(1.5)  # an attempt 2 or an escalation would come within the loop's interval
        T.gh("POST", "/_stub/config", {"rules": []})
        t = T.task_of(srv, tid)
        check(f"a PR {'merged' if merged else 'closed'} while attempt 1 runs: its failure sends "
              f"no attempt 2, the task ends stopped ({why}), no one is told",
              learnt == n and stopped and t.get("state") == "stopped" and t.get("reason") == why
              and len(T.by_task(tid)) == 1 and [a["number"] for a in t["attempts"]] == [1]
              and t["attempts"][0].get("outcome") == "agent_failed"
              and not t.get("notifications") and people_told(n) == before,
              [learnt, t.get("state"), t.get("reason"), t.get("attempts"),
               t.get("notifications"), before, people_told(n)])

    # GitHub does not answer for the PR: the loop goes on as before
    T.seed_job(7665)
    tid = T.deliver(srv, T.job_event(7665, 8665, "edge/pr65"))
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    T.gh("POST", "/_stub/config", {"rules": [pull_rule(65, 503)]})
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Failed", message="first try failed")
    again = wait_for(lambda: len(T.by_task(tid)) >= 2, 30)
    T.gh("POST", "/_stub/config", {"rules": []})
    check("a GitHub that does not answer for the PR holds nothing up: attempt 2 starts",
          again and T.task_of(srv, tid).get("state") == "running",
          [T.task_of(srv, tid).get("state"), T.task_of(srv, tid).get("attempts")])
    srv.stop()
    dtest._scan(open(os.path.join(srv.data_dir, "server.log"), errors="replace").read())

    # the last attempt (HEALER_MAX_ATTEMPTS=1): no escalation for a closed PR;
    # a task queued for the only CodeRun slot whose PR closes: it never starts
    env = dict(T.BASE_ENV, HEALER_MAX_ATTEMPTS="1", HEALER_MAX_ACTIVE_CODERUNS="1")
    srv = Healer(os.path.join(dtest.TMP, "prended2"), env).start()
    T.seed_job(7666)
    T.seed_job(7667)
    T.seed_job(7668)
    tid = T.deliver(srv, T.job_event(7666, 8666, "edge/pr66"))
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    tq = T.deliver(srv, T.job_event(7667, 8667, "edge/pr67"))
    queued = T.wait_state(srv, tq, "queued", 15)
    before = people_told(66)
    # both PRs close: 66 while its attempt runs, 67 while its task waits
    T.gh("POST", "/_stub/config", {"rules": [pull_rule(66, ended(66, "edge/pr66", False)),
                                             pull_rule(67, ended(67, "edge/pr67", False))]})
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Failed", message="the only try failed")
    stopped = T.wait_state(srv, tid, "stopped", 15)
    time.sleep(1.5)  # the escalation's messages would be sent by now
    t = T.task_of(srv, tid)
    check("a PR closed while its task's last attempt runs: no escalation (no Discord, Slack, "
          "email or PR comment), the task ends stopped",
          stopped and t.get("reason") == "the pull request was closed"
          and not t.get("notifications") and people_told(66) == before,
          [t.get("state"), t.get("reason"), t.get("notifications"), before, people_told(66)])
    # the slot is free now: the task of PR 67 is due to start
    tb = T.deliver(srv, T.job_event(7668, 8668, "edge/pr68"))
    q_stopped = T.wait_state(srv, tq, "stopped", 15)
    started = wait_for(lambda: T.by_task(tb), 15)
    T.gh("POST", "/_stub/config", {"rules": []})
    t = T.task_of(srv, tq)
    check("a queued task whose PR closed while it waited ends stopped when a slot frees, "
          "with no CodeRun; the slot goes to the next task",
          queued and q_stopped and t.get("reason") == "the pull request was closed"
          and not T.by_task(tq) and not t.get("attempts") and started,
          [queued, t.get("pr_number"), t.get("state"), t.get("reason"), t.get("attempts"),
           [c["metadata"]["name"] for c in T.by_task(tq)], T.task_of(srv, tb).get("state")])
    srv.stop()
    return srv


def dependabot_alert(number, action):
    """GitHub's example of a created Dependabot alert, as number and action."""
    ex = json.load(open(os.path.join(dtest.ROOT, "tests", "node", "node_modules", "@octokit",
                                     "webhooks-examples", "api.github.com", "index.json")))
    alert = next(x for x in next(e for e in ex if e["name"] == "dependabot_alert")["examples"]
                 if x["action"] == "created")
    alert = copy.deepcopy(alert)
    alert["action"] = action
    alert["alert"]["number"] = number
    alert["repository"]["full_name"] = T.REPO
    return alert


def alert_runs(number):
    return [c for c in T.coderuns()
            if c["spec"].get("env", {}).get("TARGET_BRANCH") == f"fix/dependabot-alert-{number}"]


def reopened_alerts():
    env = dict(T.BASE_ENV, HEALER_MAX_ATTEMPTS="1")
    srv = Healer(os.path.join(dtest.TMP, "alerts"), env).start()
    ta = T.deliver(srv, dependabot_alert(61, "created"), event="dependabot_alert",
                   delivery="alert61-created")
    runs = wait_for(lambda: T.by_task(ta), 15) or []
    tr = T.deliver(srv, dependabot_alert(61, "reopened"), event="dependabot_alert",
                   delivery="alert61-reopened")
    handled = wait_for(lambda: (delivery_state(srv, "alert61-reopened") or ("",))[0]
                       == "processed", 15)
    time.sleep(1.0)
    check("a Dependabot alert reopened while its task is open is that task's: no second task"
          " or CodeRun on its fix branch",
          ta and tr and tr != ta and handled and len(runs) == 1 and len(alert_runs(61)) == 1
          and not T.task_of(srv, tr)
          and T.task_of(srv, ta).get("state") in ("running", "verifying"),
          [ta, tr, handled, [c["metadata"]["name"] for c in alert_runs(61)],
           T.task_of(srv, tr).get("state"), T.task_of(srv, ta).get("state")])
    # another alert's task ends (its only attempt fails: escalated), then
    # the alert is reopened: the fix did not hold, it is remediated again
    t1 = T.deliver(srv, dependabot_alert(62, "created"), event="dependabot_alert",
                   delivery="alert62-created")
    first = wait_for(lambda: T.by_task(t1), 15) or []
    if first:
        T.set_phase(first[0]["metadata"]["name"], "Failed", message="no fix")
    escalated = T.wait_state(srv, t1, "escalated", 20)
    t2 = T.deliver(srv, dependabot_alert(62, "reopened"), event="dependabot_alert",
                   delivery="alert62-reopened")
    second = wait_for(lambda: T.by_task(t2), 15) or []
    check("an alert reopened after its task ended (escalated) gets a new task with its own"
          " CodeRun",
          escalated and t2 and t2 != t1 and len(second) == 1 and len(alert_runs(62)) == 2
          and second[0]["metadata"]["name"] != first[0]["metadata"]["name"]
          and T.task_of(srv, t2).get("state") == "running"
          and T.task_of(srv, t2).get("dedup_key", "").endswith("|alert=62|generation=2"),
          [escalated, t1, t2, [c["metadata"]["name"] for c in alert_runs(62)],
           T.task_of(srv, t2).get("state"), srv.log_tail()[-1500:]])
    srv.stop()
    return srv


def timeout_after_unseen_success():
    srv = Healer(os.path.join(dtest.TMP, "unseen"), T.BASE_ENV).start()
    T.seed_job(7610)
    tid = T.deliver(srv, T.job_event(7610, 8610, "edge/unseen"))
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    check("a failure gets its first CodeRun", len(runs) == 1, srv.log_tail())
    name = runs[0]["metadata"]["name"] if runs else "?"
    T.set_phase(name, "Running")
    wait_for(lambda: (1, "running", None, "rex") in attempts(srv, tid)
             or [a[1] for a in attempts(srv, tid)] == ["running"], 10)
    # the watch misses the end: Succeeded with its PR, never streamed
    pr = f"https://github.com/{T.REPO}/pull/610"
    T.kube("POST", "/_stub/config", {"watch_hide": [name]})
    T.set_phase(name, "Succeeded", status={"pullRequestUrl": pr})
    time.sleep(1)
    # the attempt's timeout passes (its start an hour before the limit)
    dtest.store_exec(srv.data_dir, "UPDATE attempts SET started_ms = started_ms - 7200000"
                     " WHERE task_id = ?", (tid,))

    def due_and_verifying():
        dtest.store_exec(srv.data_dir, "UPDATE remediation_tasks SET next_check_ms = 0"
                         " WHERE task_id = ? AND state = 'running'", (tid,))
        return T.task_of(srv, tid).get("state") == "verifying"
    verifying = wait_for(due_and_verifying, 20)
    T.kube("POST", "/_stub/config", {"watch_hide": []})
    t = T.task_of(srv, tid)
    first = (t.get("attempts") or [{}])[0]
    deleted = [d for d in T.kube("GET", "/_stub/deleted") or [] if d["name"] == name]
    check("at an attempt's timeout its CodeRun, Succeeded unseen by the watch, is asked for by"
          " name: the attempt is judged by it (verifying, its PR kept), the CodeRun is not"
          " deleted and no attempt 2 starts",
          verifying and len(t.get("attempts", [])) == 1 and first.get("outcome") is None
          and first.get("pr_url") == pr and not deleted and len(T.by_task(tid)) == 1,
          [t, deleted, srv.log_tail()[-2000:]])
    T.deliver(srv, T.job_event(7611, 8611, "edge/unseen", conclusion="success", sha=T.SHA1))
    ok = T.wait_state(srv, tid, "succeeded")
    t = T.task_of(srv, tid)
    check("... and the job passing then makes it succeed",
          ok and [a.get("outcome") for a in t.get("attempts", [])] == ["success"], t)
    srv.stop()
    return srv


def long_relist():
    # sessions of 3 s (half the lease), a list of three pages of 1.5 s each;
    # a page may take as long as a session (3 s), so a loaded machine has
    # 1.5 s beyond the page's delay to serve it
    env = dict(T.BASE_ENV, HEALER_LEASE_SECONDS="6")
    srv = Healer(os.path.join(dtest.TMP, "relist"), env).start()
    T.seed_job(7620)
    tid = T.deliver(srv, T.job_event(7620, 8620, "edge/relist"))
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    check("a failure gets its first CodeRun", len(runs) == 1, srv.log_tail())
    name = runs[0]["metadata"]["name"] if runs else "?"
    # 1,100 CodeRuns whose names sort before it: it is on the third page of 500
    T.kube("POST", "/_stub/seed", {"coderuns": [{
        "apiVersion": "agents.platform/v1", "kind": "CodeRun",
        "metadata": {"name": f"aa-relist-filler-{i:04d}", "namespace": T.NS,
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"app.kubernetes.io/name": "healer"}},
        "spec": {"service": "healer-ci"}, "status": {"phase": "Succeeded"}}
        for i in range(1100)]})
    time.sleep(2)  # the watch has taken them in
    # the watch misses the failure; a compaction then makes it relist (410)
    T.kube("POST", "/_stub/config", {"watch_hide": [name], "list_page_delay_ms": 1500})
    T.set_phase(name, "Failed", message="relist-marker: the agent failed")
    time.sleep(1)
    T.kube("POST", "/_stub/compact")
    runs = wait_for(lambda: len(T.by_task(tid)) >= 2 and T.by_task(tid), 40) or []
    T.kube("POST", "/_stub/config", {"watch_hide": [], "list_page_delay_ms": 0})
    check("after a 410 a relist longer than a watch session runs to its end: the Failed"
          " CodeRun on its last page starts attempt 2",
          len(runs) == 2 and runs[1]["metadata"]["labels"].get("healer/attempt") == "2",
          [attempts(srv, tid), srv.log_tail()[-2000:]])
    srv.stop()
    return srv


def pr_ended_while_agent_works():
    """No webhook told (the sensors forward failures only): the PR of a task
    whose agent is at work is read every HEALER_PR_CHECK_SECONDS, no more
    often, and once it reads merged the agent is stopped (its CodeRun
    deleted, the attempt and the task stopped), not when its CodeRun ends
    (before: the agent ran on, then its failure was read as the PR's end)."""
    n = 69
    srv = Healer(os.path.join(dtest.TMP, "prwatch"),
                 dict(T.BASE_ENV, HEALER_PR_CHECK_SECONDS="1")).start()
    T.gh("POST", "/_stub/seed", {"pulls": [T.pull(n, f"edge/pr{n}", T.SHA0)]})
    T.seed_job(7600 + n)
    tid = T.deliver(srv, T.job_event(7600 + n, 8600 + n, f"edge/pr{n}"))
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    learnt = wait_for(lambda: T.task_of(srv, tid).get("pr_number"), 15)
    if runs:
        T.set_phase(runs[0]["metadata"]["name"], "Running")
    t0 = time.time()
    # the agent reports progress ten times a second: each change of its
    # CodeRun brings a pass of the loop, which reads the PR no sooner
    for i in range(35):
        if runs:
            T.set_phase(runs[0]["metadata"]["name"], "Running", message=f"step {i}")
        time.sleep(0.1)

    def reads():
        return [r for r in T.gh("GET", "/_stub/requests") or []
                if r["method"] == "GET" and r["path"] == f"/repos/{T.REPO}/pulls/{n}"
                and r["time"] >= t0]
    open_reads = len(reads())
    check("the open PR of a task whose agent is at work is read about once a second "
          "(HEALER_PR_CHECK_SECONDS=1), not on every pass its CodeRun's changes bring; the "
          "agent goes on",
          learnt == n and 1 <= open_reads <= 5
          and T.task_of(srv, tid).get("state") == "running", [learnt, open_reads])
    T.gh("POST", "/_stub/config", {"rules": [pull_rule(n, ended(n, f"edge/pr{n}", True))]})
    stopped = T.wait_state(srv, tid, "stopped", 15)
    T.gh("POST", "/_stub/config", {"rules": []})
    t = T.task_of(srv, tid)
    deleted = [d.get("name") for d in T.kube("GET", "/_stub/deleted") or []]
    check("a PR merged while its agent is at work, no webhook event: the agent is stopped at "
          "the next read, its CodeRun deleted, the attempt and the task stopped as merged",
          stopped and runs and runs[0]["metadata"]["name"] in deleted
          and t.get("reason") == "the pull request was merged"
          and [a.get("outcome") for a in t.get("attempts") or []] == ["stopped"]
          and not t.get("notifications"),
          [t.get("state"), t.get("reason"), t.get("attempts"), deleted[-3:]])
    srv.stop()
    return srv


def main():
    servers = [reopened_alerts(), pr_ended_while_attempt_runs(), pr_ended_while_agent_works(), fork_runs(), agent_results(), rerun_after_the_run_ends(), whole_run_and_other_ci(), retry_hint_queued(), spoofed_marker(), kill_while_preparing(), ci_while_agent_runs(), pass_while_agent_runs(),
               failure_while_deciding(), stop_queued(),
               check_run_of_unknown_run(), replayed_after_a_retry(),
               stop_while_a_job_failure_is_decided(),
               timeout_after_unseen_success(), long_relist(), many_attempts()]
    for h in servers:  # sanitizer builds report leaks and errors at exit
        dtest._scan(open(os.path.join(h.data_dir, "server.log"), errors="replace").read())
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
