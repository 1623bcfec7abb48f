#!/usr/bin/env python3
"""test_retention.py - HEALER_RETENTION_DAYS against a real `healer server`
on either backend (tests/pg/pgrun.py for PostgreSQL). Deliveries that ended
more than the retention ago are removed when the server starts (and every
hour), with their event keys; one still waiting for a worker and the newer
ones stay; the heal workspace's files (pods' diagnostics and analyses) last
written more than the retention ago go too, today's stay; the task a
removed delivery made stays, and so do the delivery
counters of /api/status, also after a restart rebuilds them from the rows;
/metrics counts what was removed. HEALER_RETENTION_DAYS=0 keeps everything,
and a retention shorter than GitHub's three days of redelivery is refused.

Old deliveries are made by moving stored ones back in time (the store's
received_ms), as if five days had passed. Standard library only; prints TAP.
"""
import http.client
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import Healer, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(dtest.ROOT, "tests", "pg"))
import pgtest  # noqa: E402

SECRET = "retention-secret"
REPO = "acme/widgets"
DAY_MS = 24 * 3600 * 1000


def job_event(job_id, run_id):
    return {
        "action": "completed",
        "workflow_job": {
            "id": job_id, "run_id": run_id, "run_attempt": 1, "workflow_name": "CI",
            "name": "clippy", "head_branch": "feat/r", "head_sha": "a" * 40,
            "status": "completed", "conclusion": "failure",
            "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}/job/{job_id}",
            "steps": [{"name": "Run clippy", "status": "completed", "conclusion": "failure",
                       "number": 3}]},
        "repository": {"full_name": REPO, "html_url": f"https://github.com/{REPO}",
                       "default_branch": "main"},
        "sender": {"login": "dev", "type": "User"},
    }


def ping(srv, i):
    return srv.deliver({"zen": "x", "hook_id": i}, event="ping", delivery=f"ping-{i}")


def query(data, sql):
    con = pgtest.store_db(data)
    try:
        rows = con.execute(sql).fetchall()
    finally:
        con.close()
    return rows


def metrics_text(srv):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    finally:
        c.close()


def removed_total(srv):
    for line in metrics_text(srv).splitlines():
        if line.startswith("healer_retention_removed_total "):
            return int(float(line.split()[1]))
    return None


def deliveries(srv):
    st, d = srv.request("GET", "/api/status")
    return d.get("deliveries") if st == 200 else None


def main():
    data = os.path.join(dtest.TMP, "retention")
    env = {"GITHUB_WEBHOOK_SECRET": SECRET, "HEALER_DISPATCH": "none",
           "GITHUB_API_URL": "http://127.0.0.1:9", "HEALER_RETENTION_DAYS": "4",
           "HEALER_LOG_LEVEL": "info"}
    srv = Healer(data, env).start()
    for i in range(4):
        st, _ = ping(srv, i)
        assert st == 202, st
    st, first = srv.deliver(job_event(501, 601), delivery="job-old")
    tid = first.get("task_id")
    check("a failure is accepted with its task", st == 202 and tid, first)
    done = wait_for(lambda: query(data, "SELECT COUNT(*) FROM deliveries WHERE state IN"
                                        " ('received', 'processing')")[0][0] == 0, 30)
    check("every delivery ended", done)
    srv.stop()
    # five days pass for the five deliveries so far; one more waits for a
    # worker (stored as received), also five days old
    pgtest.store_exec(data, f"UPDATE deliveries SET received_ms = received_ms - {5 * DAY_MS}")
    pgtest.store_exec(data, f"UPDATE event_keys SET first_seen_ms = first_seen_ms - {5 * DAY_MS}")
    pgtest.store_exec(
        data, "INSERT INTO deliveries (delivery_id, source, event_name, headers_json, body,"
              " received_ms, state, answer, updated_ms, body_encoding, body_size,"
              " not_before_ms) SELECT 'waiting-old', source, event_name, headers_json, body,"
              " received_ms, 'received', answer, updated_ms, body_encoding, body_size,"
              f" {2 ** 62} FROM deliveries WHERE delivery_id = 'ping-0'")
    before_rows = query(data, "SELECT COUNT(*) FROM deliveries")[0][0]
    check("six deliveries are stored, five days old", before_rows == 6, before_rows)
    # the heal workspace of pods alerted five days ago, and one of today
    ws = os.path.join(data, "heal")
    old_files = [os.path.join(ws, "logs", "api-1a2b3c-x1y2z-current.log"),
                 os.path.join(ws, "alerts", "A7-api-1a2b3c-x1y2z.md")]
    new_file = os.path.join(ws, "logs", "api-9f8e7d-q1w2e-current.log")
    outside = os.path.join(dtest.TMP, "not-the-workspace.txt")
    link = os.path.join(ws, "logs", "old-link.log")
    for p in old_files + [new_file, outside]:
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write("x\n")
    os.symlink(outside, link)
    five_days_ago = time.time() - 5 * 86400
    for p in old_files + [outside]:
        os.utime(p, (five_days_ago, five_days_ago))
    os.utime(link, (five_days_ago, five_days_ago), follow_symlinks=False)
    # two days old, within the retention: the files of a pod no open task names (its
    # task ended) go once a day has passed; those of an open alert task's pod stay, under
    # both of its stems, and so does a file that is no pod's diagnostics (before: every
    # one stayed the whole retention, 128 MiB of logs a pod)
    ended_files = [os.path.join(ws, "logs", "web-ended-2d-current.log"),
                   os.path.join(ws, "logs", "staging_web-ended-2d-previous.log"),
                   os.path.join(ws, "alerts", "A7-web-ended-2d.md")]
    open_files = [os.path.join(ws, "logs", "web-open-2d-current.log"),
                  os.path.join(ws, "logs", "staging_web-open-2d-events.yaml"),
                  os.path.join(ws, "alerts", "A7-staging_web-open-2d.md"),
                  os.path.join(ws, "logs", "notes.txt")]
    two_days_ago = time.time() - 2 * 86400
    for p in ended_files + open_files:
        with open(p, "w") as f:
            f.write("x\n")
        os.utime(p, (two_days_ago, two_days_ago))
    now_ms = int(time.time() * 1000)
    pgtest.store_exec(
        data, "INSERT INTO remediation_tasks (task_id, state, kind, event_json, attempts,"
              " created_ms, updated_ms, next_check_ms) VALUES ('alert-open-2d', 'running',"
              " 'alert', '{\"key\":\"k\",\"alert\":{\"labels\":{\"namespace\":\"staging\","
              f"\"pod\":\"web-open-2d\"}}}}}}', 1, {now_ms}, {now_ms}, {2 ** 62})")

    srv = Healer(data, env).start()
    st, _ = ping(srv, 9)  # a new one
    counted = deliveries(srv)
    gone = wait_for(lambda: removed_total(srv) == 5, 20)
    left = sorted(r[0] for r in query(data, "SELECT delivery_id FROM deliveries"))
    check("at start the five ended deliveries older than 4 days are removed; the waiting one "
          "and the new one stay",
          gone and left == ["ping-9", "waiting-old"], (removed_total(srv), left))
    files_gone = wait_for(lambda: not any(os.path.lexists(p) for p in old_files + [link]), 10)
    check("the heal workspace's files older than 4 days are removed (a link, not what it "
          "names); today's stay",
          files_gone and os.path.exists(new_file) and os.path.exists(outside),
          [p for p in old_files + [link, new_file, outside] if os.path.lexists(p)])
    ended_gone = wait_for(lambda: not any(os.path.lexists(p) for p in ended_files), 10)
    check("the heal workspace's files of a pod no open task names, last written over a day "
          "ago, are removed within the retention; an open alert task's pod's stay (both "
          "stems), and so does a file that is no diagnostics",
          ended_gone and all(os.path.exists(p) for p in open_files)
          and "healer_retention_files_removed_total 6" in metrics_text(srv),
          [[p for p in ended_files if os.path.lexists(p)],
           [p for p in open_files if not os.path.exists(p)],
           [ln for ln in metrics_text(srv).splitlines() if "files_removed" in ln]])
    check("their event keys are removed with them",
          query(data, "SELECT COUNT(*) FROM event_keys")[0][0] == 0,
          query(data, "SELECT * FROM event_keys"))
    st, task = srv.request("GET", f"/api/remediations/{tid}")
    check("the task the removed failure made is kept", st == 200 and task.get("task_id") == tid,
          (st, task))
    after = deliveries(srv)
    check("/api/status still counts every delivery received",
          counted and after and after.get("total") == counted.get("total") == 7
          and after.get("by_state") == counted.get("by_state"), (counted, after))
    srv.stop()
    srv = Healer(data, env).start()
    rebuilt = deliveries(srv)
    check("... also after a restart rebuilds the counters from the rows",
          rebuilt and rebuilt.get("total") == 7 and rebuilt.get("by_state") == after.get("by_state"),
          (rebuilt, after))
    check("/metrics has the retention's families",
          "healer_retention_passes_total{result=\"ok\"}" in metrics_text(srv)
          and "healer_retention_freed_bytes_total " in metrics_text(srv))
    srv.stop()

    # retention off: nothing is removed
    pgtest.store_exec(data, f"UPDATE deliveries SET received_ms = received_ms - {5 * DAY_MS}"
                            " WHERE delivery_id = 'ping-9'")
    off = dict(env, HEALER_RETENTION_DAYS="0")
    srv = Healer(data, off).start()
    wait_for(lambda: False, 1.5)
    check("HEALER_RETENTION_DAYS=0 keeps old deliveries",
          query(data, "SELECT COUNT(*) FROM deliveries WHERE delivery_id = 'ping-9'")[0][0] == 1
          and removed_total(srv) == 0)
    srv.stop()

    for bad in ("3", "-1", "x"):
        rc, _, errtext = dtest.healer("check-config", env=dict(env, HEALER_RETENTION_DAYS=bad))
        check(f"HEALER_RETENTION_DAYS={bad} is refused, naming the key",
              rc != 0 and "HEALER_RETENTION_DAYS" in errtext, (rc, errtext))
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
