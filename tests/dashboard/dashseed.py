"""dashseed.py - a real `healer server` seeded with remediations for the
dashboard's tests: the GitHub stand-in (tests/stubs/github_stub.py) serves
the job logs and a pull request, healer runs in directory dispatch (each
CodeRun is a file whose status the test edits, contract section 9), and
signed workflow_job deliveries through the real intake make the tasks.
One of them carries a hostile job name and its PR a hostile title.
Standard library only."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import Healer, wait_for  # noqa: E402

SECRET = "dash-webhook-secret"
GTOKEN = "ghs_dash_token_value"
API_TOKEN = "dash-api-token-5f1c"
XSS = "<img src=x onerror=alert(1)>"
SHA0 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

LOGS = {
    "rex": "\n".join([
        "2025-01-15T10:30:00.0000000Z ##[group]Run cargo clippy --all-targets -- -D warnings",
        "2025-01-15T10:30:02.0000000Z error: this expression creates a reference which is "
        "immediately dereferenced by the compiler",
        "2025-01-15T10:30:02.0000000Z   --> src/lib.rs:34:9",
        "2025-01-15T10:30:03.0000000Z error: could not compile `gadgets` (lib) due to 1 "
        "previous error",
        "2025-01-15T10:30:03.0000000Z ##[error]Process completed with exit code 101."]) + "\n",
    "blaze": "> eslint .\n/src/app.ts\n  12:5  error  'x' is assigned a value but never used"
             "  @typescript-eslint/no-unused-vars\n\n\u2716 1 problem (1 error, 0 warnings)\n"
             "##[error]Process completed with exit code 1.\n",
    "bolt": "#8 [build 3/5] RUN make\n#8 ERROR: process \"/bin/sh -c make\" did not complete "
            "successfully: exit code: 2\nERROR: failed to solve: process \"/bin/sh -c make\" did "
            "not complete successfully: exit code: 2\n##[error]Process completed with exit code 1.\n",
}

# (repository, branch, workflow, job name, agent of the log)
TASKS = [
    ("acme/gadgets", "feat/one", "Gadget CI", "clippy", "rex"),
    ("acme/gadgets", "feat/two", "Gadget CI", "clippy", "rex"),
    ("acme/web", "ui/forms", "Web", "lint", "blaze"),
    ("acme/web", "ui/table", "Web", "lint", "blaze"),
    ("acme/infra", "ops/image", "Images", "docker", "bolt"),
    ("acme/web", "ui/hostile", "Web", XSS, "blaze"),
]


def job_event(repo, job_id, run_id, branch, workflow, name, pr=None):
    job = {"id": job_id, "run_id": run_id, "run_attempt": 1, "workflow_name": workflow,
           "name": name, "head_branch": branch, "head_sha": SHA0, "status": "completed",
           "conclusion": "failure",
           "html_url": f"https://github.com/{repo}/actions/runs/{run_id}/job/{job_id}",
           "steps": [{"name": "Run " + name, "status": "completed", "conclusion": "failure",
                      "number": 3}]}
    ev = {"action": "completed", "workflow_job": job,
          "repository": {"full_name": repo, "html_url": f"https://github.com/{repo}",
                         "default_branch": "main"},
          "sender": {"login": "dev", "type": "User"}}
    return ev


class Seeded:
    """A seeded healer: .srv (Healer), .tasks [(task_id, repo, agent)],
    .coderuns (its CodeRun directory), .hostile (the hostile task's id)."""

    def __init__(self, name, token=True, env=None):
        _, gport = dtest.start_stub("github_stub.py", "--token", GTOKEN)
        self.gurl = f"http://127.0.0.1:{gport}"
        logs = {}
        for i, t in enumerate(TASKS):
            logs[str(7100 + i)] = LOGS[t[4]]
        dtest.http("POST", self.gurl + "/_stub/seed", {
            "logs": logs,
            "pulls": [{"number": 88, "state": "open", "title": XSS, "user": {"login": "dev"},
                       "html_url": "https://github.com/acme/web/pull/88", "body": XSS,
                       "head": {"ref": "ui/hostile", "sha": SHA0}, "base": {"ref": "main"}}],
        }, token=GTOKEN)
        e = {"GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": self.gurl,
             "GITHUB_TOKEN": GTOKEN, "HEALER_DISPATCH": "directory",
             "HEALER_SOURCE_TIMEOUT_MS": "1500", "HEALER_CONTEXT_TIMEOUT_MS": "4000",
             "HEALER_TIME_WINDOW_MINS": "0", "HEALER_LOOP_INTERVAL_MS": "100",
             "HEALER_LOG_LEVEL": "info"}
        if token:
            e["HEALER_API_TOKEN"] = API_TOKEN
        e.update(env or {})
        self.token = API_TOKEN if token else None
        self.srv = Healer(os.path.join(dtest.TMP, name), e).start()
        self.coderuns = os.path.join(self.srv.data_dir, "coderuns")
        self.tasks = []
        for i, (repo, branch, wf, job, agent) in enumerate(TASKS):
            st, ans = self.srv.deliver(job_event(repo, 7100 + i, 8100 + i, branch, wf, job))
            tid = ans.get("task_id") if st == 202 else None
            self.tasks.append((tid, repo, agent))
            # the workers take deliveries in parallel: each task is made
            # before the next is sent, so the newest is the last one
            if tid:
                wait_for(lambda: bool(self.task(tid)), 20)
        self.hostile = self.tasks[-1][0]

    def auth(self):
        return {"Authorization": "Bearer " + self.token} if self.token else {}

    def task(self, tid):
        st, d = self.srv.request("GET", f"/api/remediations/{tid}", headers=self.auth())
        # {} until the task is written (not while its delivery waits)
        return d if st == 200 and "delivery_id" not in d else {}

    def wait_running(self, timeout=30):
        """True once every task has a CodeRun and left 'queued'."""
        return wait_for(lambda: all(t[0] and self.task(t[0]).get("state") in
                                    ("running", "verifying") for t in self.tasks), timeout)

    def succeed(self, i, timeout=20):
        """Task i's CodeRun succeeds and its job then passes on the branch
        (a later workflow_job with another sha): the task ends succeeded."""
        tid, repo, _ = self.tasks[i]
        _, branch, wf, job, _ = TASKS[i]
        self.set_phase(tid, "Succeeded", f"https://github.com/{repo}/pull/{500 + i}")
        if not wait_for(lambda: self.task(tid).get("state") == "verifying", timeout):
            return False
        ev = job_event(repo, 7900 + i, 8900 + i, branch, wf, job)
        ev["workflow_job"].update(conclusion="success", head_sha="b" * 40)
        ev["workflow_job"]["steps"][0]["conclusion"] = "success"
        self.srv.deliver(ev)
        return wait_for(lambda: self.task(tid).get("state") == "succeeded", timeout)

    def set_phase(self, tid, phase, pr_url=None):
        """Writes status.phase into the CodeRun file of task tid."""
        for f in sorted(os.listdir(self.coderuns)):
            # healer's staging files (".NAME.json.tmp.PID") may be half written
            if f.startswith(".") or not f.endswith(".json"):
                continue
            path = os.path.join(self.coderuns, f)
            m = json.load(open(path))
            if m["metadata"]["labels"].get("healer/task-id") == tid:
                m["status"] = {"phase": phase}
                if pr_url:
                    m["status"]["pullRequestUrl"] = pr_url
                with open(path + ".tmp", "w") as fh:
                    json.dump(m, fh)
                os.rename(path + ".tmp", path)
                return True
        return False
