#!/usr/bin/env python3
"""test_lists_work.py - on PostgreSQL, dashboards that poll a filtered task
list do not hold up the remediations. GET /api/remediations filtered on a
column no index leads with (failure_type) walks every task; on 100,000
tasks a scan takes tens of milliseconds. The lists read on a connection of
their own: when they read on the main connection, every store operation of
the workers and the loop (which share it, one at a time) waited for the
scan in progress, so each sensor call's decision, a dozen such operations,
waited for about as many scans.

A sensor call is answered with its decision (HEALER_DECISION_WAIT_MS); its
answer time while two clients poll the list without pause must stay
within four scans of its answer time alone (it was fifteen). Standard library only; prints TAP.
"""
import http.client
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, job_event  # noqa: E402

check = dtest.check
TASKS = 100000
CALLS = 7
POLLERS = 2
# a failure type no seeded task has: the filter scans every task, answers none
LIST = "/api/remediations?failure_type=terraform&limit=50"


def seed(con):
    """TASKS finished tasks, each its own repository."""
    now = int(time.time() * 1000)
    con.query("INSERT INTO remediation_tasks (task_id, dedup_key, repository, run_id, job,"
              " failure_type, state, created_ms, updated_ms, attempts, finished_ms)"
              f" SELECT 'hl-s' || lpad(i::text, 18, '0'), 'scale|' || i,"
              " 'org/repo-' || lpad(i::text, 6, '0'), 1000 + i, 'lint', 'rust_clippy',"
              f" CASE WHEN i % 4 = 0 THEN 'escalated' ELSE 'succeeded' END,"
              f" {now} - 86400000 - i * 1000, {now} - 86400000 - i * 1000 + 1000, 1,"
              f" {now} - 86400000 - i * 1000 + 600000"
              f" FROM generate_series(0, {TASKS - 1}) AS i")
    con.query("ANALYZE remediation_tasks")


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t = time.monotonic()
    try:
        c.request("GET", path, headers={"Authorization": "Bearer " + hltest.TOKEN})
        r = c.getresponse()
        r.read()
        return r.status, time.monotonic() - t
    finally:
        c.close()


def decided(srv, first):
    """Answer times of CALLS sensor calls, each a new failure, and whether
    each came with its decision."""
    out = []
    for i in range(CALLS):
        t = time.monotonic()
        st, d = srv.sensor(job_event(first + i, first + i, branch=f"fix/l{first + i}"),
                           timeout=60)
        out.append((time.monotonic() - t, st == 202 and bool(d.get("agent"))))
    return out


def main():
    url = pgtest.create_database("listswork")
    con = pgtest.connect(url.split("///", 1)[1].split("?", 1)[0])
    env = hltest.base_env(HEALER_DISPATCH="none", HEALER_DECISION_WAIT_MS="20000",
                          HEALER_LOG_LEVEL="warn")
    srv = hltest.Healer(os.path.join(dtest.TMP, "listswork"), env, store_url=url).start()
    seed(con)
    con.close()
    get(srv.port, LIST)
    scans = [get(srv.port, LIST) for _ in range(3)]
    scan = min(dt for _, dt in scans)
    check("the filtered list answers on the large ledger",
          all(st == 200 for st, _ in scans), scans)
    decided(srv, 5000)  # warm-up
    alone = decided(srv, 6000)
    stop = threading.Event()
    polls = []

    def poller():
        while not stop.is_set():
            polls.append(get(srv.port, LIST))
    threads = [threading.Thread(target=poller) for _ in range(POLLERS)]
    for th in threads:
        th.start()
    try:
        time.sleep(0.3)
        busy = decided(srv, 7000)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=120)
    # measured again after: load from elsewhere during one phase alone
    # must not make the comparison
    after = decided(srv, 8000)
    p_alone = max(statistics.median(dt for dt, _ in alone),
                  statistics.median(dt for dt, _ in after))
    p_busy = statistics.median(dt for dt, _ in busy)
    figures = "scan %.1f ms; alone p50 %.1f ms; polled p50 %.1f ms, max %.1f ms" % (
        scan * 1e3, p_alone * 1e3, p_busy * 1e3, max(dt for dt, _ in busy) * 1e3)
    sys.stderr.write(figures + "\n")
    check("every sensor call is answered with its decision",
          all(ok for _, ok in alone + busy + after), alone + busy + after)
    check(f"the pollers scanned the tasks meanwhile ({len(polls)} scans)",
          len(polls) >= 2 * POLLERS and all(st == 200 for st, _ in polls), polls[:10])
    check("a decision does not wait for the lists' scans: its median answer time while "
          "polled stays under its time alone plus four scans",
          p_busy < p_alone + 4 * scan, figures)
    check("the server is alive", srv.alive())
    srv.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
