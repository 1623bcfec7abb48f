#!/usr/bin/env python3
"""test_agent_output.py - the agent's output in a retry's prompt (contract
section 9), against the stand-ins of test_loop.py (imported: its stand-ins,
helpers and environment):

- the Job's pod appears a second after the CodeRun's Running (the
  controller names the Job first): the retry still quotes the agent;
- a CodeRun that goes straight to Failed with its jobName: the same;
- a pod of two containers, beside an older pod of the same Job (retried):
  the newest pod's containers are all read (the API refuses a log asked
  without a container for such a pod), and no API error body is quoted;
- the pod not found when the CodeRun ended (the pod list refused once):
  looked up again as the retry is prepared;
- the pod list slow as the CodeRun ends, then refused once, while another
  failing job of the run wakes the task: the retry is prepared after the
  watch's lookup, with the pod it found;
- an agent's log and a job's log with NUL bytes: the prompts quote what
  follows them (a NUL ended the quote) and carry no NUL.

Standard library only; prints TAP."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_loop as T  # noqa: E402  (starts the stand-ins)
from test_loop import check, dtest, Healer, wait_for  # noqa: E402


def pod(name, job, containers, created=None):
    md = {"name": name, "namespace": T.NS, "labels": {"job-name": job}}
    if created:
        md["creationTimestamp"] = created
    return {"metadata": md, "spec": {"containers": [{"name": c} for c in containers]},
            "status": {"phase": "Failed"}}


def log(pod_name, container, text):
    return {"namespace": T.NS, "pod": pod_name, "container": container, "text": text}


def retry_prompt(srv, tid):
    runs = wait_for(lambda: len(T.by_task(tid)) >= 2 and T.by_task(tid), 20) or []
    return runs[1]["spec"].get("promptModification", "") if len(runs) > 1 else ""


def shown(p, srv):
    """What a failed check shows of a retry's prompt: the server's lines
    about the agent's pods, then the prompt's missing context and failure
    output."""
    log = open(os.path.join(srv.data_dir, "server.log"), errors="replace").read()
    parts = [ln for ln in log.splitlines() if "agent's pod" in ln or "agent_output" in ln][-10:]
    for head in ("## Context That Was Missing", "## Why It Failed"):
        at = p.find(head)
        if at >= 0:
            parts.append(p[at:at + 1500])
    return "\n".join(parts) if parts else p[:3000]


def first_run(srv, job_id, run_id, branch):
    T.seed_job(job_id)
    tid = T.deliver(srv, T.job_event(job_id, run_id, branch))
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    return tid, runs[0]["metadata"]["name"] if runs else "?"


def main():
    srv = Healer(os.path.join(dtest.TMP, "agent-output"), T.BASE_ENV).start()

    # ---- the pod appears after the Running that names its Job ----------------
    tid, name = first_run(srv, 7801, 8801, "ao/pod-late")
    T.set_phase(name, "Running", status={"jobName": "job-ao-late"})
    time.sleep(1.0)
    T.kube("POST", "/_stub/seed", {
        "pods": [pod("job-ao-late-q8w2n", "job-ao-late", ["agent"])],
        "logs": [log("job-ao-late-q8w2n", "agent", "AO-LATE-MARKER the build broke\n")]})
    T.set_phase(name, "Running", status={"jobName": "job-ao-late"})
    T.set_phase(name, "Failed", message="agent exited 1")
    p = retry_prompt(srv, tid)
    check("a pod that appeared after the CodeRun's Running: the retry quotes the agent's output",
          "AO-LATE-MARKER" in p and "pod is not known" not in p, shown(p, srv))

    # ---- straight to Failed, naming its Job ----------------------------------
    tid, name = first_run(srv, 7802, 8802, "ao/failed")
    T.kube("POST", "/_stub/seed", {
        "pods": [pod("job-ao-failed-m4k7z", "job-ao-failed", ["agent"])],
        "logs": [log("job-ao-failed-m4k7z", "agent", "AO-FAILED-MARKER out of memory\n")]})
    T.set_phase(name, "Failed", message="agent exited 137",
                status={"jobName": "job-ao-failed"})
    p = retry_prompt(srv, tid)
    check("a CodeRun gone straight to Failed with its jobName: the retry quotes the agent's "
          "output", "AO-FAILED-MARKER" in p and "pod is not known" not in p, shown(p, srv))

    # ---- a pod of two containers, after an older pod of the Job ---------------
    tid, name = first_run(srv, 7803, 8803, "ao/two")
    T.kube("POST", "/_stub/seed", {
        "pods": [pod("job-ao-two-old1x", "job-ao-two", ["agent"], "2026-01-01T00:00:00Z"),
                 pod("job-ao-two-new2y", "job-ao-two", ["agent", "git-sync"])],
        "logs": [log("job-ao-two-old1x", "agent", "AO-OLD-POD-MARKER first try\n"),
                 log("job-ao-two-new2y", "agent", "AO-TWO-AGENT-MARKER tests fail\n"),
                 log("job-ao-two-new2y", "git-sync", "AO-TWO-SIDECAR-MARKER synced\n")]})
    T.set_phase(name, "Running", status={"jobName": "job-ao-two"})
    time.sleep(0.8)
    T.set_phase(name, "Failed", message="agent exited 2")
    p = retry_prompt(srv, tid)
    check("a pod of two containers: the retry quotes both containers' logs of the newest pod",
          "AO-TWO-AGENT-MARKER" in p and "AO-TWO-SIDECAR-MARKER" in p
          and p.find("AO-TWO-AGENT-MARKER") < p.find("AO-TWO-SIDECAR-MARKER")
          and "AO-OLD-POD-MARKER" not in p, p[:4000])
    check("... and no API error body", "container name must be specified" not in p
          and '"kind"' not in p, p[:4000])

    # ---- the pod not found when the CodeRun ended (the API refused the list
    # once): looked up again as the retry is prepared ---------------------------
    tid, name = first_run(srv, 7804, 8804, "ao/lookup")
    T.kube("POST", "/_stub/seed", {
        "pods": [pod("job-ao-look-h3j9v", "job-ao-look", ["agent"])],
        "logs": [log("job-ao-look-h3j9v", "agent", "AO-LOOKUP-MARKER lint failed\n")]})
    T.kube("POST", "/_stub/config", {"rules": [{
        "method": "GET", "path": f"/api/v1/namespaces/{T.NS}/pods", "status": 403, "times": 1,
        "query": {"labelSelector": "job-name=job-ao-look"}}]})
    T.set_phase(name, "Failed", message="agent exited 1", status={"jobName": "job-ao-look"})
    p = retry_prompt(srv, tid)
    T.kube("POST", "/_stub/config", {"rules": []})
    check("a pod the watch could not look up: found as the retry is prepared, its output "
          "quoted", "AO-LOOKUP-MARKER" in p and "pod is not known" not in p, shown(p, srv))

    # ---- the pod list slow as the CodeRun ends (then refused once), while
    # another failing job of the run wakes the task: the watch's lookup is
    # done before the attempt shows the end, so the retry is prepared with
    # the pod it found, not with a lookup of its own refused meanwhile -------
    tid, name = first_run(srv, 7806, 8806, "ao/slow")
    T.kube("POST", "/_stub/seed", {
        "pods": [pod("job-ao-slow-w5t8c", "job-ao-slow", ["agent"])],
        "logs": [log("job-ao-slow-w5t8c", "agent", "AO-SLOW-MARKER tests timed out\n")]})
    slow = {"method": "GET", "path": f"/api/v1/namespaces/{T.NS}/pods",
            "query": {"labelSelector": "job-name=job-ao-slow"}, "times": 1}
    T.kube("POST", "/_stub/config", {"rules": [dict(slow, delay_ms=4000),
                                               dict(slow, status=403)]})
    T.set_phase(name, "Failed", message="agent exited 1", status={"jobName": "job-ao-slow"})
    # the watch's lookup has begun (the stand-in holds it 4 s)
    wait_for(lambda: any(r["query"].get("labelSelector") == "job-name=job-ao-slow"
                         for r in T.kube("GET", "/_stub/requests?method=GET&path=/api/v1/")
                         or []), 10)
    T.seed_job(7807)
    other = T.deliver(srv, T.job_event(7807, 8806, "ao/slow"))
    p = retry_prompt(srv, tid)
    # the second job's id names the first one's task (it attached to it)
    woke = T.task_of(srv, other).get("task_id") if other else None
    T.kube("POST", "/_stub/config", {"rules": []})
    check("a pod list slow as the CodeRun ends, the task woken meanwhile: the retry waits "
          "for it and quotes the agent's output",
          woke == tid and "AO-SLOW-MARKER" in p and "pod is not known" not in p,
          f"the second job's task {woke}, not {tid}\n" + shown(p, srv))

    # ---- NUL bytes in the agent's log and in the job's log ---------------------
    T.seed_job(7805, "error: AO-JOBLOG-BEFORE\0AO-JOBLOG-AFTER-NUL linker failed\n"
               + T.CLIPPY_LOG)
    tid = T.deliver(srv, T.job_event(7805, 8805, "ao/nul"))
    runs = wait_for(lambda: T.by_task(tid), 15) or []
    name = runs[0]["metadata"]["name"] if runs else "?"
    p1 = runs[0]["spec"].get("promptModification", "") if runs else ""
    check("a job log with a NUL byte: the prompt quotes what follows it, without the NUL",
          "AO-JOBLOG-AFTER-NUL" in p1 and "\0" not in p1, p1[:3000])
    T.kube("POST", "/_stub/seed", {
        "pods": [pod("job-ao-nul-k2p4r", "job-ao-nul", ["agent"])],
        "logs": [log("job-ao-nul-k2p4r", "agent",
                     "AO-BEFORE-NUL\0AO-AFTER-NUL the real error: linker failed\n")]})
    T.set_phase(name, "Failed", message="agent exited 1", status={"jobName": "job-ao-nul"})
    p = retry_prompt(srv, tid)
    check("an agent's log with a NUL byte: the retry quotes what follows it, without the NUL",
          "AO-BEFORE-NUL" in p and "AO-AFTER-NUL the real error" in p and "\0" not in p,
          p[:4000])
    srv.stop()
    dtest._scan(open(os.path.join(srv.data_dir, "server.log"), errors="replace").read())
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
