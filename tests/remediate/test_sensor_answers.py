#!/usr/bin/env python3
"""test_sensor_answers.py - the answers of POST /api/remediate/ci-failure
beyond a plain new failure, against the stub servers (Kubernetes, GitHub):

- the same call sent again answers what the first call answered: a
  [bot] sender's failure skipped with its reason, an invalid repository
  skipped with its reason, a successful job tracked, a failure within the
  branch's time window skipped with its reason, a dispatched failure with
  its task, agent and CodeRun; also after a restart (read from the store);
- an empty X-GitHub-Delivery header is an absent one (the sensor-... id);
- a failure over the CodeRun budget answers "reason":"queued",
  "decision":"queued" and the budget's prose in "message";
- a workflow_run and its workflow_job, in either order, are one task: the
  second answers "attached" with the first's task id, agent and CodeRun,
  and starts no task of its own (none skipped either).
Standard library only; prints TAP."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import TIME_SCALE, Healer, wait_for  # noqa: E402

KTOKEN = "kube-sensor-answers"
GTOKEN = "ghs_sensor_answers"
API_TOKEN = "sensor-answers-token"
REPO = "acme/answers"
SHA = "0123456789abcdef0123456789abcdef01234567"
LOG = ("2025-01-15T10:30:02.0000000Z error: this expression creates a reference which is "
       "immediately dereferenced by the compiler\n"
       "2025-01-15T10:30:03.0000000Z ##[error]Process completed with exit code 101.\n")

ca = dtest.make_ca("kube")
_, kport = dtest.start_stub("kube_stub.py", "--cert", ca["cert"], "--key", ca["key"],
                            "--token", KTOKEN, "--crd", dtest.CRD)
kubeconfig = dtest.write_kubeconfig(os.path.join(dtest.TMP, "kubeconfig"),
                                    f"https://127.0.0.1:{kport}", ca_path=ca["ca"],
                                    token=KTOKEN, namespace="cto")
_, gport = dtest.start_stub("github_stub.py", "--token", GTOKEN)
GURL = f"http://127.0.0.1:{gport}"

ENV = {"HEALER_API_TOKEN": API_TOKEN, "GITHUB_API_URL": GURL, "GITHUB_TOKEN": GTOKEN,
       "KUBECONFIG": kubeconfig, "HEALER_DISPATCH": "kubernetes", "HEALER_NAMESPACE": "cto",
       "HEALER_TIME_WINDOW_MINS": "60", "HEALER_MAX_ACTIVE_CODERUNS": "1",
       "HEALER_DECISION_WAIT_MS": "8000", "HEALER_SOURCE_TIMEOUT_MS": "1000",
       "HEALER_CONTEXT_TIMEOUT_MS": "2000"}


def job(job_id, run_id, branch, conclusion="failure", sender="dev", repo=REPO, name="clippy"):
    return {"action": "completed",
            "workflow_job": {"id": job_id, "run_id": run_id, "run_attempt": 1,
                             "workflow_name": "Rust CI", "name": name,
                             "head_branch": branch, "head_sha": SHA, "status": "completed",
                             "conclusion": conclusion,
                             "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}"
                                         f"/job/{job_id}", "steps": []},
            "repository": {"full_name": repo, "html_url": f"https://github.com/{repo}",
                           "default_branch": "main"},
            "sender": {"login": sender, "type": "Bot" if "[bot]" in sender else "User"}}


def run(run_id, branch):
    return {"action": "completed",
            "workflow_run": {"id": run_id, "run_attempt": 1, "name": "Rust CI",
                             "head_branch": branch, "head_sha": SHA, "status": "completed",
                             "conclusion": "failure", "event": "push", "pull_requests": [],
                             "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}",
                             "head_repository": {"full_name": REPO}},
            "repository": {"full_name": REPO, "html_url": f"https://github.com/{REPO}",
                           "default_branch": "main"},
            "sender": {"login": "dev", "type": "User"}}


def call(srv, payload, delivery, event="workflow_job"):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}",
               "X-GitHub-Event": event}
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    return srv.request("POST", "/api/remediate/ci-failure", json.dumps(payload).encode(),
                       headers)


KEYS = ("task_id", "reason", "dedup_status", "decision", "agent", "failure_type",
        "coderun_name")


def same_answer(first, again):
    """The repeat says what the first call said (but its status)."""
    return again.get("status") == "duplicate" and \
        all(first.get(k) == again.get(k) for k in KEYS)


def main():
    dtest.http("POST", GURL + "/_stub/seed",
               {"logs": {str(j): LOG for j in (7101, 7102, 7105, 7106)}}, token=GTOKEN)
    srv = Healer(os.path.join(dtest.TMP, "h1"), ENV).start()
    cases = {}

    # a failure dispatched: the CodeRun budget's one slot
    st, a = call(srv, job(7101, 8101, "feat/a"), "sa-dispatched")
    check("a failure is dispatched (rex, a CodeRun)",
          st == 202 and a.get("dedup_status") == "new" and a.get("agent") == "rex"
          and a.get("coderun_name"), a)
    cases["dispatched"] = a
    # the same branch within the time window: skipped with its reason
    st, a = call(srv, job(7102, 8102, "feat/a", name="test"), "sa-window")
    check("another run on the branch within the window is skipped with the reason",
          st == 202 and a.get("dedup_status") == "skipped" and a.get("reason"), a)
    cases["window"] = a
    # a [bot] sender's failure starts nothing
    st, a = call(srv, job(7103, 8103, "feat/b", sender="renovate[bot]"), "sa-bot")
    check("a [bot] sender's failure is skipped: bot_sender",
          st == 202 and a.get("dedup_status") == "skipped"
          and a.get("reason") == "bot_sender" and a.get("task_id") is None, a)
    cases["bot"] = a
    # a successful job is tracked
    st, a = call(srv, job(7104, 8104, "feat/c", conclusion="success"), "sa-tracked")
    check("a successful job is tracked",
          st == 202 and a.get("decision") == "tracked" and a.get("dedup_status") == "skipped",
          a)
    cases["tracked"] = a
    # an invalid repository is skipped at intake
    st, a = call(srv, job(7107, 8107, "feat/d", repo="acme/x/../y"), "sa-invalid")
    check("an invalid repository is skipped: invalid_payload",
          st == 202 and a.get("status") == "skipped" and a.get("reason") == "invalid_payload"
          and a.get("dedup_status") == "skipped", a)
    cases["invalid"] = a
    # over the CodeRun budget: queued, a code with the prose beside it
    st, a = call(srv, job(7105, 8105, "feat/e"), "sa-queued")
    check("over the CodeRun budget: reason queued, decision queued, the prose in message",
          st == 202 and a.get("reason") == "queued" and a.get("decision") == "queued"
          and a.get("dedup_status") == "new" and a.get("task_id")
          and "CodeRun slot" in (a.get("message") or "")
          and all(k in a for k in ("agent", "failure_type", "coderun_name")), a)
    cases["queued"] = a

    deliveries = {"dispatched": ("sa-dispatched", job(7101, 8101, "feat/a")),
                  "window": ("sa-window", job(7102, 8102, "feat/a", name="test")),
                  "bot": ("sa-bot", job(7103, 8103, "feat/b", sender="renovate[bot]")),
                  "tracked": ("sa-tracked", job(7104, 8104, "feat/c", conclusion="success")),
                  "invalid": ("sa-invalid", job(7107, 8107, "feat/d", repo="acme/x/../y")),
                  "queued": ("sa-queued", job(7105, 8105, "feat/e"))}
    for when in ("fresh", "after a restart"):
        if when != "fresh":
            srv.stop()
            srv = Healer(os.path.join(dtest.TMP, "h1"), ENV).start()
        for name, (did, payload) in deliveries.items():
            t0 = time.monotonic()
            st, again = call(srv, payload, did)
            took = time.monotonic() - t0
            # 4 s (6 s under the sanitizers): a call held for the decision
            # would wait HEALER_DECISION_WAIT_MS, 8 s
            check(f"the {name} call sent again ({when}) answers as the first did, at once",
                  st == 202 and same_answer(cases[name], again)
                  and took < min(1.0 + 3.0 * TIME_SCALE, 6.0),
                  [cases[name], again, took])

    # an empty X-GitHub-Delivery header is an absent one
    p = job(7106, 8106, "feat/f", conclusion="success")
    st, a = call(srv, p, "")
    st2, b = call(srv, p, None)
    check("an empty X-GitHub-Delivery is the hashed sensor-... id, as a missing one",
          st == 202 and (a.get("delivery_id") or "").startswith("sensor-")
          and st2 == 202 and b.get("delivery_id") == a.get("delivery_id")
          and b.get("status") == "duplicate", [st, a, st2, b])
    srv.stop()
    dtest._scan(open(os.path.join(srv.data_dir, "server.log"), errors="replace").read())

    # a workflow_run and its job, in either order: one task
    env2 = dict(ENV, HEALER_TIME_WINDOW_MINS="0", HEALER_MAX_ACTIVE_CODERUNS="20")
    srv = Healer(os.path.join(dtest.TMP, "h2"), env2).start()
    for order, run_id, job_id in (("job first", 8201, 7201), ("run first", 8202, 7202)):
        branch = f"feat/r{run_id}"
        dtest.http("POST", GURL + "/_stub/seed", {"logs": {str(job_id): LOG}, "jobs": {
            str(run_id): [{"id": job_id, "name": "clippy", "run_id": run_id,
                           "run_attempt": 1, "status": "completed", "conclusion": "failure",
                           "steps": [{"name": "Run clippy", "conclusion": "failure",
                                      "number": 3}]}]}}, token=GTOKEN)
        calls = [(job(job_id, run_id, branch), f"sa-j{run_id}", "workflow_job"),
                 (run(run_id, branch), f"sa-r{run_id}", "workflow_run")]
        if order == "run first":
            calls.reverse()
        st, first = call(srv, *calls[0])
        st2, second = call(srv, *calls[1])
        st3, doc = srv.request("GET", f"/api/remediations/{second.get('task_id')}")
        con = dtest.store_db(srv.data_dir)
        try:
            n = con.execute("SELECT count(*) FROM remediation_tasks WHERE run_id = %d" % run_id
                            ).fetchone()[0]
        finally:
            con.close()
        check(f"{order}: the second delivery of the run answers attached with the first's "
              "task, agent and CodeRun, and no task of its own exists",
              st == 202 and st2 == 202 and first.get("coderun_name")
              and second.get("task_id") == first.get("task_id")
              and second.get("dedup_status") == "existing"
              and second.get("reason") == "attached"
              and second.get("agent") == first.get("agent")
              and second.get("coderun_name") == first.get("coderun_name")
              and st3 == 200 and doc.get("task_id") == first.get("task_id") and n == 1,
              [first, second, doc.get("task_id"), doc.get("state"), n])
    srv.stop()
    dtest._scan(open(os.path.join(srv.data_dir, "server.log"), errors="replace").read())
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
