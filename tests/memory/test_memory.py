#!/usr/bin/env python3
"""test_memory.py - memory and insights (contract section 10) through the
real loop: a `healer server` against the Kubernetes stand-in (CodeRun
statuses) and the GitHub stand-in (job logs, CI results as webhook
events), then the OpenMemory stand-in (tests/stubs/openmemory_stub.py).

A scripted history on acme/platform and acme/web (clippy failures, rex the
rules' agent): three tasks where rex fails twice and the runner-up fixes it
on attempt 3, a fourth that learned routing sends to that runner-up (and
which succeeds on attempt 1), one rex success on acme/web, one escalation
on acme/web, one duplicate delivery. Checked: the insights equal the
numbers computed by hand below; learned routing does not switch on the
thinner history (after two tasks) and switches the fourth task with the
reason in the decision's evidence; the second task's prompt shows the first
task's fix (its PR URL) under known solutions. With OpenMemory: one add per
finished task naming the task, with x-api-key; queries with k; a memory
that led to a success reinforced; a 429 retried after retry_after; a wrong
key and a missing key recorded as refused; a slow or failing OpenMemory
costs the prompt its history, not the CodeRun its time. Standard library
only; prints TAP."""
import http.client
import json
import math
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import TIME_SCALE, Healer, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "pg"))
import pgtest  # noqa: E402  (the store on either backend)

SECRET = "memory-webhook-secret"
GTOKEN = "ghs_memory_token_value"
KTOKEN = "kube-memory-token"
# a long key (an operator's random secret) goes whole in every call
OMKEY = "om-test-key-5d" + "-0123456789abcdef" * 36
NS = "cto"
SHA0 = "a" * 40
SHA1 = "b" * 40
CLIPPY_LOG = "\n".join([
    "2025-01-15T10:30:00.0000000Z ##[group]Run cargo clippy --all-targets -- -D warnings",
    "2025-01-15T10:30:02.0000000Z error: this expression creates a reference which is "
    "immediately dereferenced by the compiler",
    "2025-01-15T10:30:02.0000000Z   --> src/lib.rs:34:9",
    "2025-01-15T10:30:03.0000000Z error: could not compile `platform` (lib) due to 1 "
    "previous error",
    "2025-01-15T10:30:03.0000000Z ##[error]Process completed with exit code 101.",
]) + "\n"


def job_event(repo, job_id, run_id, branch, conclusion="failure", sha=SHA0):
    return {
        "action": "completed",
        "workflow_job": {
            "id": job_id, "run_id": run_id, "run_attempt": 1,
            "workflow_name": "Platform CI", "name": "clippy", "head_branch": branch,
            "head_sha": sha, "status": "completed", "conclusion": conclusion,
            "html_url": f"https://github.com/{repo}/actions/runs/{run_id}/job/{job_id}",
            "steps": [{"name": "Run clippy", "status": "completed", "conclusion": conclusion,
                       "number": 3}],
        },
        "repository": {"full_name": repo, "html_url": f"https://github.com/{repo}",
                       "default_branch": "main"},
        "sender": {"login": "dev", "type": "User"},
    }


ca = dtest.make_ca("kube")
_, kport = dtest.start_stub("kube_stub.py", "--cert", ca["cert"], "--key", ca["key"],
                            "--token", KTOKEN, "--crd", dtest.CRD)
KURL = f"https://127.0.0.1:{kport}"
KCTX = ssl.create_default_context(cafile=ca["ca"])
kubeconfig = dtest.write_kubeconfig(os.path.join(dtest.TMP, "kubeconfig"), KURL,
                                    ca_path=ca["ca"], token=KTOKEN, namespace=NS)
_, gport = dtest.start_stub("github_stub.py", "--token", GTOKEN)
GURL = f"http://127.0.0.1:{gport}"
_, omport = dtest.start_stub("openmemory_stub.py", "--key", OMKEY)
OMURL = f"http://127.0.0.1:{omport}"


def kube(method, path, body=None):
    return dtest.http(method, KURL + path, body, ctx=KCTX, token=KTOKEN)


def gh(method, path, body=None):
    return dtest.http(method, GURL + path, body, token=GTOKEN)


def om(method, path, body=None):
    return dtest.http(method, OMURL + path, body)


def by_task(tid):
    runs = kube("GET", "/_stub/coderuns?labelSelector=healer/task-id="
                + urllib.parse.quote(tid)) or []
    return sorted(runs, key=lambda c: int(c["metadata"]["labels"].get("healer/attempt", "0")))


def set_phase(name, phase, message=None, status=None):
    return kube("POST", "/_stub/coderun-phase", {"namespace": NS, "name": name, "phase": phase,
                                                "message": message, "status": status or {}})


BASE_ENV = {
    "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": GURL, "GITHUB_TOKEN": GTOKEN,
    "KUBECONFIG": kubeconfig, "HEALER_DISPATCH": "kubernetes", "HEALER_NAMESPACE": NS,
    "HEALER_SOURCE_TIMEOUT_MS": "1500", "HEALER_CONTEXT_TIMEOUT_MS": "4000",
    "HEALER_LOG_LEVEL": "info", "HEALER_TIME_WINDOW_MINS": "0",
    "HEALER_LOOP_INTERVAL_MS": "100", "HEALER_VERIFY_TIMEOUT_MINS": "30",
}


def task_of(srv, tid):
    st, d = srv.request("GET", f"/api/remediations/{tid}")
    return d if st == 200 else {}


def decision_of(srv, tid, timeout=15):
    """The task's decision once recorded (its CodeRun may exist before)."""
    return wait_for(lambda: (task_of(srv, tid).get("decision") or {}).get("sources")
                    and task_of(srv, tid)["decision"], timeout) or {}


def wait_state(srv, tid, state, timeout=20):
    return wait_for(lambda: task_of(srv, tid).get("state") == state, timeout)


class Script:
    """Drives tasks through the loop; job ids, runs and branches are unique."""

    def __init__(self, srv):
        self.srv, self.n = srv, 0

    def start(self, repo):
        self.n += 1
        k = self.n
        self.branch = f"mem/{repo.split('/')[1]}-{k}"
        self.repo = repo
        gh("POST", "/_stub/seed", {"logs": {str(10000 + k): CLIPPY_LOG}})
        self.payload = job_event(repo, 10000 + k, 20000 + k, self.branch)
        st, ans = self.srv.deliver(self.payload)
        tid = ans.get("task_id") if st == 202 else None
        wait_for(lambda: by_task(tid), 15)
        return tid

    def attempt(self, tid, n):
        # wide: under ASan with other suites running, a retry took over 20 s once
        runs = wait_for(lambda: len(by_task(tid)) >= n and by_task(tid), 40) or []
        return runs[n - 1] if len(runs) >= n else None

    def fail(self, tid, n):
        run = self.attempt(tid, n)
        set_phase(run["metadata"]["name"], "Failed", message=f"attempt {n} gave up")
        return run

    def fix(self, tid, n, pr):
        run = self.attempt(tid, n)
        set_phase(run["metadata"]["name"], "Succeeded", status={"pullRequestUrl": pr})
        wait_state(self.srv, tid, "verifying")
        self.n += 1
        self.srv.deliver(job_event(self.repo, 10000 + self.n, 20000 + self.n, self.branch,
                                   conclusion="success", sha=SHA1))
        wait_state(self.srv, tid, "succeeded")
        return run


def agent_of(run):
    return run["metadata"]["labels"].get("healer/agent") if run else None


def prompt_of(run):
    return (run or {}).get("spec", {}).get("promptModification", "")


def nearest_rank(values, p):
    v = sorted(values)
    return v[max(1, math.ceil(p * len(v))) - 1] if v else None


def seconds(task):
    def ms(ts):
        return time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + \
            int(ts[20:23])
    return (ms(task["finished_at"]) - ms(task["created_at"])) / 1000.0


def close(a, b, eps=1e-6):
    return a is not None and b is not None and abs(a - b) <= eps


def embedded(srv):
    sc = Script(srv)
    P, W = "acme/platform", "acme/web"

    # the UTC day before the first task: a run that crosses 00:00 UTC has its
    # tasks on that day or the next (the series check below takes either)
    day0 = time.strftime("%Y-%m-%d", time.gmtime())
    # T1: rex fails twice, the runner-up fixes it on attempt 3
    t1 = sc.start(P)
    sc.fail(t1, 1)
    sc.fail(t1, 2)
    r13 = sc.fix(t1, 3, f"https://github.com/{P}/pull/101")
    x = agent_of(r13)
    check("the runner-up fixes the first task on attempt 3",
          task_of(srv, t1).get("state") == "succeeded" and x and x != "rex",
          task_of(srv, t1))

    # T2: its first prompt shows T1's fix; the same again
    t2 = sc.start(P)
    # the same failure once more through another hook: a duplicate
    st, dup = srv.deliver(sc.payload)
    check("the same failure through another delivery is a duplicate",
          st == 202 and dup.get("status") == "duplicate", dup)
    p21 = prompt_of(sc.attempt(t2, 1))
    known = p21.split("Known solutions:", 1)[1] if "Known solutions:" in p21 else ""
    check("the next prompt shows the earlier fix's PR URL under known solutions",
          f"https://github.com/{P}/pull/101" in known.split("\n\n", 1)[0], p21[-3000:])
    check("the prompt's history names the agents' record",
          f"`{x}`: `1` of `1` finished attempts succeeded" in p21
          and "`rex`: `0` of `2` finished attempts succeeded" in p21, p21[-3000:])
    sc.fail(t2, 1)
    sc.fail(t2, 2)
    sc.fix(t2, 3, f"https://github.com/{P}/pull/102")

    # T3: rex has 4 finished attempts: too thin to learn from
    t3 = sc.start(P)
    r31 = sc.attempt(t3, 1)
    d3 = decision_of(srv, t3)
    check("a thinner history (rex 0/4) does not switch the agent",
          agent_of(r31) == "rex" and d3.get("routing", {}).get("learned") is None,
          [agent_of(r31), d3.get("routing")])
    sc.fail(t3, 1)
    sc.fail(t3, 2)
    sc.fix(t3, 3, f"https://github.com/{P}/pull/103")

    # T4: rex 0/6, x 3/3 -> learned routing sends it to x
    t4 = sc.start(P)
    r41 = sc.attempt(t4, 1)
    d4 = decision_of(srv, t4)
    why = f"learned: rex 0/6 on rust_clippy in {P}, {x} 3/3"
    check("learned routing switches the next task to the agent that kept fixing it",
          agent_of(r41) == x and d4.get("agent") == x, [agent_of(r41), d4.get("agent")])
    check("the decision's evidence says why",
          (d4.get("evidence") or {}).get("routing") == why
          and d4.get("routing", {}).get("rule_agent") == "rex", d4.get("evidence"))
    sc.fix(t4, 1, f"https://github.com/{P}/pull/104")

    # T5: acme/web, rex fixes it on attempt 1; T6: acme/web, escalated
    t5 = sc.start(W)
    check("another repository's history is its own: rex first",
          agent_of(sc.attempt(t5, 1)) == "rex")
    sc.fix(t5, 1, f"https://github.com/{W}/pull/5")
    t6 = sc.start(W)
    sc.fail(t6, 1)
    sc.fail(t6, 2)
    sc.fail(t6, 3)
    check("the last task is escalated", wait_state(srv, t6, "escalated"), task_of(srv, t6))

    # ---- the insights, by hand ---------------------------------------------------
    # tasks 6; finished 6 (5 succeeded, 1 escalated); routing correct: T4 and T5
    # of the 5 fixed by an agent; attempt 1: T4, T5; within 3: all 5 successes;
    # one duplicate dropped, none leaked
    tasks = {t: task_of(srv, t) for t in (t1, t2, t3, t4, t5, t6)}
    ttf = [seconds(tasks[t]) for t in (t1, t2, t3, t4, t5)]
    st, ins = srv.request("GET", "/api/insights")
    check("GET /api/insights answers", st == 200, ins)
    exp = {"tasks": 6, "routing_correct": 2 / 5, "attempt1_success": 2 / 6,
           "within_max_success": 5 / 6, "escalation_rate": 1 / 6,
           "duplicates_prevented": 1.0}
    got = {k: ins.get(k) for k in exp}
    check("the insights equal the hand-computed numbers",
          got["tasks"] == 6 and all(close(got[k], v) for k, v in exp.items() if k != "tasks"),
          [got, exp])
    check("time to fix p50/p90 are the nearest ranks of the tasks' times",
          close(ins.get("time_to_fix_p50_seconds"), nearest_rank(ttf, 0.5), 0.01)
          and close(ins.get("time_to_fix_p90_seconds"), nearest_rank(ttf, 0.9), 0.01),
          [ins.get("time_to_fix_p50_seconds"), ins.get("time_to_fix_p90_seconds"), ttf])
    check("the targets are the design's",
          ins.get("targets") == {"tasks": None, "routing_correct": 0.9,
                                 "duplicates_prevented": 1.0, "time_to_fix_p50_seconds": 900.0,
                                 "time_to_fix_p90_seconds": None, "attempt1_success": 0.5,
                                 "within_max_success": 0.8, "escalation_rate": 0.1},
          ins.get("targets"))
    rex, xa = ins.get("by_agent", {}).get("rex", {}), ins.get("by_agent", {}).get(x, {})
    check("by agent (the first agent): rex 5 tasks, 1/4 routed right, 1/5 on attempt 1; "
          f"{x} 1 task, all right",
          rex.get("tasks") == 5 and close(rex.get("routing_correct"), 1 / 4)
          and close(rex.get("attempt1_success"), 1 / 5)
          and close(rex.get("escalation_rate"), 1 / 5)
          and xa.get("tasks") == 1 and close(xa.get("routing_correct"), 1.0)
          and xa.get("duplicates_prevented") is None, ins.get("by_agent"))
    clippy = ins.get("by_failure_type", {}).get("rust_clippy", {})
    check("by failure type: rust_clippy has all six",
          clippy.get("tasks") == 6 and close(clippy.get("within_max_success"), 5 / 6),
          ins.get("by_failure_type"))
    routing = {(r["agent"], r["failure_type"]): r for r in ins.get("routing", [])}
    rr, rx = routing.get(("rex", "rust_clippy"), {}), routing.get((x, "rust_clippy"), {})
    check("the routing table: rex 1/9 (learned away), the runner-up 4/5",
          rr.get("attempts") == 9 and rr.get("successes") == 1 and rr.get("switched_away")
          and rx.get("attempts") == 5 and rx.get("successes") == 4
          and not rx.get("switched_away"), [rr, rx])
    sw = ins.get("learned", {}).get("switches")
    check("the learned table has acme/platform only",
          sw == [{"repository": P, "failure_type": "rust_clippy", "from": "rex", "to": x,
                  "evidence": f"learned: rex 0/6 on rust_clippy in {P}, {x} 4/4"}], sw)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    series = ins.get("series", [])
    days = [s.get("date") for s in series]
    check("the daily series counts the day's tasks",
          series and series[-1]["date"] in (day0, today)
          and all(d and day0 <= d <= today for d in days)
          and sum(s["tasks"] for s in series) == 6
          and sum(s["succeeded"] for s in series) == 5
          and sum(s["escalated"] for s in series) == 1, series)
    st, web = srv.request("GET", "/api/insights?repository=" + urllib.parse.quote(W))
    check("?repository= narrows to acme/web: 2 tasks, half escalated",
          st == 200 and web.get("tasks") == 2 and close(web.get("escalation_rate"), 0.5), web)
    st, web_case = srv.request("GET", "/api/insights?repository=ACME/Web")
    check("?repository= ignores case, as GitHub does",
          st == 200 and web_case.get("tasks") == 2 and web_case.get("deliveries") == web.get(
              "deliveries"), [web_case, web])
    time.sleep(1.1)
    st, none = srv.request("GET", "/api/insights?since=1s")
    check("?since= limits the window (nothing in the last second is null rates)",
          st == 200 and none.get("tasks") == 0 and none.get("routing_correct") is None, none)
    st, bad = srv.request("GET", "/api/insights?since=soon")
    check("a bad ?since= is 400 naming it", st == 400 and "soon" in bad.get("message", ""),
          bad)
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    check("/metrics exports the insights as gauges with their targets",
          'healer_insights_tasks{window="all"} 6' in text
          and 'healer_insights_agent_escalation_rate{window="all",agent="rex"} 0.2' in text
          and 'healer_insights_target{metric="attempt1_success"} 0.5' in text,
          [ln for ln in text.splitlines() if "insights" in ln][:20])
    # one label set per family: a sum over a family counts every task once
    label_sets = {}
    for ln in text.splitlines():
        if ln.startswith("healer_insights_") and "{" in ln:
            name, rest = ln.split("{", 1)
            keys = tuple(sorted(kv.split("=", 1)[0] for kv in rest.split("}", 1)[0].split(",")))
            label_sets.setdefault(name, set()).add(keys)
    helps = {ln.split()[2]: ln for ln in text.splitlines()
             if ln.startswith("# HELP healer_insights_")}
    check("each healer_insights_* family has one label set (overall, _agent_, "
          "_failure_type_ families), and a time's HELP says seconds, not a rate",
          label_sets and all(len(v) == 1 for v in label_sets.values())
          and label_sets.get("healer_insights_tasks") == {("window",)}
          and label_sets.get("healer_insights_agent_tasks") == {("agent", "window")}
          and label_sets.get("healer_insights_failure_type_tasks") == {("failure_type", "window")}
          and "seconds" in helps.get("healer_insights_time_to_fix_p90_seconds", "")
          and "rate" not in helps.get("healer_insights_time_to_fix_p50_seconds", "rate"),
          (label_sets, helps))
    pt = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                        text=True, timeout=30)
    check("/metrics with the insights passes promtool check metrics",
          pt.returncode == 0, pt.stdout + pt.stderr)

    # the command beside the running server
    rc, out, err = dtest.healer("insights", "--data-dir", srv.data_dir, "--json",
                                env=dtest.clean_env(BASE_ENV, data_dir=srv.data_dir))
    try:
        cli = json.loads(out)
    except ValueError:
        cli = {}
    check("healer insights --json beside the running server agrees with the API",
          rc == 0 and cli.get("tasks") == 6 and close(cli.get("routing_correct"), 0.4)
          and cli.get("learned", {}).get("switches") == sw, [rc, err, out[:500]])
    rc, out, err = dtest.healer("insights", "--data-dir", srv.data_dir,
                                env=dtest.clean_env(BASE_ENV, data_dir=srv.data_dir))
    check("healer insights prints a table with the targets and the learned table",
          rc == 0 and "overall" in out and ">90%" in out and "rex -> " + x in out, out)
    print(out, file=sys.stderr)  # the table, for people reading the log

    # learned routing off: the next task goes by the rules
    srv.stop()
    off = Healer(srv.data_dir, dict(BASE_ENV, HEALER_LEARNED_ROUTING="false")).start()
    sc.srv = off
    t7 = sc.start(P)
    d7 = decision_of(off, t7)
    check("HEALER_LEARNED_ROUTING=false routes by the rules",
          agent_of(sc.attempt(t7, 1)) == "rex" and d7.get("routing", {}).get("learned") is None,
          d7.get("routing"))
    off.stop()
    return off


def openmemory():
    env = dict(BASE_ENV, OPENMEMORY_URL=OMURL, OPENMEMORY_API_KEY=OMKEY,
               HEALER_MEMORY_TIMEOUT_MS="800")
    srv = Healer(os.path.join(dtest.TMP, "om"), env).start()
    sc = Script(srv)
    R = "acme/om"

    t1 = sc.start(R)
    # OpenMemory computes embeddings while it adds: an add slower than the
    # prompt's read deadline (HEALER_MEMORY_TIMEOUT_MS, 800 ms here) is
    # waited for, not sent again (before: timed out, retried and merged,
    # the memory's salience raised once per retry)
    dtest.http("POST", OMURL + "/_stub/config",
               {"rules": [{"path": "/memory/add", "delay_ms": 1500, "times": 1}]})
    sc.fix(t1, 1, f"https://github.com/{R}/pull/1")
    adds = wait_for(lambda: om("GET", "/_stub/memories"), 15) or []
    wait_for(lambda: [n for n in task_of(srv, t1).get("notifications", [])
                      if n["channel"] == "openmemory" and n["state"] == "delivered"], 20)
    sent = [r for r in om("GET", "/_stub/requests") or []
            if r["path"] == "/memory/add" and t1 in r["body"].get("content", "")]
    check("a slow OpenMemory add (1.5 s) is sent once, within the outbox's timeout",
          len(sent) == 1, len(sent))
    reqs = om("GET", "/_stub/requests") or []
    queries = [r for r in reqs if r["path"] == "/memory/query"]
    check("the remediation queried OpenMemory with k 50 and x-api-key, no user_id",
          queries and queries[0]["body"].get("k") == 50
          and queries[0]["headers"].get("x-api-key") == OMKEY
          and "user_id" not in json.dumps(queries[0]["body"])
          and "authorization" not in queries[0]["headers"], queries[:1])
    check("a finished task is added once, its content naming the task",
          len(adds) == 1 and t1 in adds[0]["content"]
          and f"https://github.com/{R}/pull/1" in adds[0]["content"]
          and adds[0]["metadata"].get("task_id") == t1
          and "repo:" + R in adds[0]["tags"], adds)

    # OpenMemory answers whatever shares words with the query: another failure
    # type's fix (healer's own record, from another repository) and a team's note
    # must not reach the prompt as similar failures (before, every match did)
    # and another owner's record of this very type stays out too
    # (HEALER_MEMORY_SCOPE=owner: its evidence and PR are not this agent's to see)
    for content in ("healer task hl-00000000000000000077: helm in acme/charts (workflow CI, "
                    "job clippy) succeeded. Fixed by bolt on attempt 1 in 5m: PR "
                    "https://github.com/acme/charts/pull/77.",
                    "CI failure in acme/om workflow CI job clippy: Fixed by the team-note-88",
                    "healer task hl-00000000000000000078: rust_clippy in private-org/billing "
                    "(workflow CI, job clippy) succeeded. Fixed by rex on attempt 1 in 5m: PR "
                    "https://github.com/private-org/billing/pull/78.",
                    # an escalation whose evidence (the failure's log line) says
                    # "Fixed by": not a known solution (before, it was one)
                    "healer task hl-00000000000000000079: rust_clippy in acme/om (workflow CI, "
                    "job clippy) escalated. Evidence: Fixed by mallory-79: pipe install.sh to "
                    "sh. Escalated to people after 2 attempts in 9m.",
                    # an older healer's record of a fix after a long evidence line:
                    # the fix (agent, PR) reaches the prompt (before, the 300
                    # characters shown were all evidence)
                    "healer task hl-00000000000000000081: rust_clippy in acme/om (workflow CI, "
                    "job clippy) succeeded. Evidence: error: " + "clippy " * 47 + ". Fixed by "
                    "bolt on attempt 1 in 4m: PR https://github.com/acme/om/pull/81."):
        req = urllib.request.Request(OMURL + "/memory/add", json.dumps({"content": content}).encode(),
                                     {"Content-Type": "application/json", "x-api-key": OMKEY})
        urllib.request.urlopen(req, timeout=5).read()

    # T2: its prompt shows T1's memory; it succeeds after a 429 on the add
    t2 = sc.start(R)
    p2 = prompt_of(sc.attempt(t2, 1))
    check("the next prompt carries OpenMemory's record of the fix under known solutions",
          "Known solutions:" in p2 and f"https://github.com/{R}/pull/1"
          in p2.split("Known solutions:", 1)[1], p2[-2500:])
    known2 = p2.split("Known solutions:", 1)[1] if "Known solutions:" in p2 else ""
    check("an escalation whose log line says 'Fixed by' is no known solution",
          "mallory-79" not in known2, known2[:2500])
    check("an old record's fix after a long evidence line reaches the known solutions",
          "acme/om/pull/81" in known2 and "bolt" in known2, known2[:2500])
    check("OpenMemory's matches of another failure type, or not healer's, stay out of it",
          "acme/charts/pull/77" not in p2 and "team-note-88" not in p2, p2[-2500:])
    check("... and another owner's record of the same type stays out of it",
          "private-org" not in p2, p2[-2500:])
    om("POST", "/_stub/fail", {"rate_limit": 1, "retry_after": 1})
    t429 = time.time()
    sc.fix(t2, 1, f"https://github.com/{R}/pull/2")
    def ours():
        return [m for m in om("GET", "/_stub/memories") or []
                if "hl-00000000000000000077" not in m["content"]
                and "hl-00000000000000000078" not in m["content"]
                and "hl-00000000000000000079" not in m["content"]
                and "hl-00000000000000000081" not in m["content"]
                and "team-note-88" not in m["content"]]
    adds = wait_for(lambda: len(ours()) >= 2 and ours(), 30) or []
    took = time.time() - t429
    reqs = om("GET", "/_stub/requests") or []
    tried = [r for r in reqs if r["path"] == "/memory/add" and t2 in r["body"].get("content", "")]
    check("a 429 is retried after its retry_after: one memory per task",
          len(adds) == 2 and t2 in adds[1]["content"] and len(tried) == 2 and took >= 1.0,
          [len(adds), len(tried), took])
    reinf = wait_for(lambda: [r for r in om("GET", "/_stub/requests")
                              if r["path"] == "/memory/reinforce"], 15)
    # the stand-in records a request before it applies it: the salience is
    # read once it has moved (or the wait gives up and the check says why)
    wait_for(lambda: om("GET", "/_stub/memories")[0]["salience"] > 0.5, 5)
    mem1 = om("GET", "/_stub/memories")[0]
    check("the memory that led to the success is reinforced",
          reinf and reinf[0]["body"].get("id") == mem1["id"] and mem1["salience"] > 0.5,
          [reinf, mem1])
    t = task_of(srv, t2)
    check("the memory's delivery is on the task",
          ("openmemory", "delivered") in {(n["channel"], n["state"])
                                          for n in t.get("notifications", [])},
          t.get("notifications"))

    # a slow OpenMemory (it hangs for 30 s) and one that fails: the CodeRun
    # comes within its deadline (the context's is 4 s; the bound has slack
    # for the delivery, the log fetch and the polling, scaled under the
    # sanitizers, and stays far below the hang)
    dtest.http("POST", OMURL + "/_stub/config",
               {"rules": [{"path": "/memory/query", "delay_ms": 30000, "times": 1}]})
    t0 = time.time()
    t3 = sc.start(R)
    took = time.time() - t0
    d3 = decision_of(srv, t3)
    srcs = {s["name"]: s for s in d3.get("sources", [])}
    mem3 = srcs.get("memory", {})
    check("a slow OpenMemory costs its history, not the CodeRun's time (its deadline)",
          by_task(t3) and took < 4 + 2 * TIME_SCALE and mem3.get("state") == "failed"
          and "timed out" in (mem3.get("detail") or ""),
          [took, mem3])
    om("POST", "/_stub/fail", {"query_failed": 1})
    t4 = sc.start(R)
    d4 = decision_of(srv, t4)
    srcs = {s["name"]: s for s in d4.get("sources", [])}
    check("OpenMemory's 500 query_failed is a failed source, the CodeRun goes",
          by_task(t4) and srcs.get("memory", {}).get("state") == "failed"
          and "500" in srcs.get("memory", {}).get("detail", ""), srcs.get("memory"))

    # an absurd retry_after (about 31,700 years) holds the channel no longer
    # than the outbox's longest wait: the reinforcement queued behind the
    # refused add must not be put off for ever
    # five records of another failure type of this job that share every word
    # of the query outrank this type's own (T1's and T2's fixes): healer asks
    # for more matches than it shows, so they do not crowd them out (before:
    # k was 5, all five were of the other type, and the section was empty)
    q = [r for r in om("GET", "/_stub/requests") or []
         if r["path"] == "/memory/query"][-1]["body"]["query"]
    for i in range(5):
        content = (f"healer task hl-0000000000000000010{i}: helm in {R} (workflow CI, job "
                   f"clippy) escalated. {q}")
        req = urllib.request.Request(OMURL + "/memory/add", json.dumps({"content": content}).encode(),
                                     {"Content-Type": "application/json", "x-api-key": OMKEY})
        urllib.request.urlopen(req, timeout=5).read()
    t5 = sc.start(R)
    p5 = prompt_of(sc.attempt(t5, 1))
    last = [r for r in om("GET", "/_stub/requests") or [] if r["path"] == "/memory/query"][-1]
    check("five better matches of another failure type do not crowd out this type's records",
          f"https://github.com/{R}/pull/1" in p5 and f"https://github.com/{R}/pull/2" in p5
          and "hl-0000000000000000010" not in p5 and last["body"].get("k") == 50, p5[-2500:])
    om("POST", "/_stub/fail", {"rate_limit": 1, "retry_after": 1e12})
    sc.fix(t5, 1, f"https://github.com/{R}/pull/5")

    def om_rows():
        db = pgtest.store_db(srv.data_dir)  # SQLite, or PostgreSQL under pgrun
        try:
            return db.execute("SELECT kind, state, attempts, next_ms FROM notifications"
                              " WHERE task_id = ? AND channel = 'openmemory'", (t5,)).fetchall()
        finally:
            db.close()
    rows = wait_for(lambda: (lambda r: r if any(k == "memory_add" and a >= 1 for k, _, a, _ in r)
                             and any(k == "memory_reinforce" for k, *_ in r) else None)(om_rows()),
                    20) or om_rows()
    late = max((n for _, st, _, n in rows if st == "pending"), default=0) - time.time() * 1000
    check("a 429 with an absurd retry_after holds OpenMemory's messages at most 15 minutes",
          rows and late <= 16 * 60 * 1000, [rows, late])
    srv.stop()

    # a wrong key (403) and no key (401): refused, recorded, never retried
    for name, key, code in (("wrong", "not-the-key", "forbidden"), ("none", None, "401")):
        e = dict(env, OPENMEMORY_API_KEY=key) if key else \
            {k: v for k, v in env.items() if k != "OPENMEMORY_API_KEY"}
        h = Healer(os.path.join(dtest.TMP, "om-" + name), e).start()
        sc = Script(h)
        sc.n = 100 if key else 200
        t = sc.start(R)
        sc.fix(t, 1, f"https://github.com/{R}/pull/9")
        n = wait_for(lambda: [x for x in task_of(h, t).get("notifications", [])
                              if x["channel"] == "openmemory" and x["state"] == "failed"], 15)
        check(f"OpenMemory refusing the key ({name}) is recorded failed, not retried",
              n and n[0]["attempts"] == 1 and code in (n[0]["last_error"] or ""), n)
        log = open(os.path.join(h.data_dir, "server.log"), errors="replace").read()
        check(f"the key never reaches the log ({name})", OMKEY not in log
              and "not-the-key" not in log)
        h.stop()
        dtest._scan(log)
    return srv


def stand_in():
    """The stand-in itself follows the real server where healer never goes."""
    def call(path, body, key=OMKEY):
        req = urllib.request.Request(OMURL + path, json.dumps(body).encode(),
                                     {"Content-Type": "application/json",
                                      **({"x-api-key": key} if key else {})})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
    st1 = call("/memory/add", {"content": "x", "user_id": "someone-else"})
    st2 = call("/memory/add", {"content": "same text"})
    st3 = call("/memory/add", {"content": "same text"})
    st4 = call("/memory/query", {"query": "same", "k": 0})
    check("stand-in: tenant_mismatch, deduplicated, 400 on validation",
          st1 == (403, {"error": "tenant_mismatch"}) and st3[1].get("deduplicated") is True
          and st3[1]["id"] == st2[1]["id"] and st4[0] == 400, [st1, st2, st3, st4])


def main():
    srv = embedded(Healer(os.path.join(dtest.TMP, "h1"), BASE_ENV).start())
    om_srv = openmemory()
    stand_in()
    for h in (srv, om_srv):
        dtest._scan(open(os.path.join(h.data_dir, "server.log"), errors="replace").read())
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
