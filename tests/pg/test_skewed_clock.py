#!/usr/bin/env python3
"""test_skewed_clock.py - two `healer server` replicas on one PostgreSQL
database, the second one's wall clock a minute ahead (tests/pg/skewclock.c,
LD_PRELOAD). Leases are measured on the database's clock and a live
replica's claims are never taken: replica B starting (its recovery) and
running (its claims, its lease keeper) leaves alone the delivery replica A
is working on (its failure's context source answers only after a few
seconds), although A's lease looks a minute past to B. Then the claim of a
second failure is moved to B by hand while A still works on it (as a
listener's session cut for a moment could): B does not get the task's
lease from a live A, so the task is decided once. Each failure gets one
CodeRun (directory dispatch into one shared directory). Standard library
only; prints TAP.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, job_event, wait_for  # noqa: E402

check = dtest.check
LEASE_S = 3
HOLD_MS = 7000  # how long A's worker waits for the failure's context
SKEW_MS = 60000


def main():
    shim = os.environ.get("HEALER_SKEWCLOCK")
    if not shim or not os.path.exists(shim):
        raise RuntimeError("HEALER_SKEWCLOCK (the skewclock module) is not set")
    loki = hltest.slow_loki(HOLD_MS)
    url = pgtest.create_database("skew")
    con = pgtest.connect(url.split("///", 1)[1].split("?", 1)[0])
    shared = os.path.join(dtest.TMP, "skew")
    env = hltest.base_env(HEALER_DISPATCH="directory", HEALER_WORKERS="1",
                          HEALER_LEASE_SECONDS=str(LEASE_S), LOKI_URL=loki,
                          HEALER_SOURCE_TIMEOUT_MS=str(HOLD_MS + 5000),
                          HEALER_CONTEXT_TIMEOUT_MS=str(HOLD_MS + 6000),
                          HEALER_MAX_ACTIVE_CODERUNS="0", HEALER_MAX_ATTEMPTS_PER_HOUR="0")
    a = hltest.Healer(shared, env, store_url=url, name="a").start()

    def row(delivery):
        return con.query("SELECT state, claimed_by, claims FROM deliveries"
                         f" WHERE delivery_id = '{delivery}'").fetchone()

    def in_flight(delivery):
        r = row(delivery)
        return r if r and r[0] == "processing" and r[1] else None

    st, _ = a.deliver(job_event(710001, 7101, branch="fix/skew-1"), "skew-1")
    first = wait_for(lambda: in_flight("skew-1"), 10)
    check("replica A claims the first failure and works on it", st == 202 and first, (st, first))
    owner_a = first[1] if first else None

    b = hltest.Healer(shared, dict(env, LD_PRELOAD=os.path.abspath(shim),
                                   HEALER_TEST_SKEW_MS=str(SKEW_MS),
                                   ASAN_OPTIONS="verify_asan_link_order=0"),
                      store_url=url, name="b").start()
    seen = set()
    t_end = time.monotonic() + LEASE_S + 1.5
    while time.monotonic() < t_end:
        r = row("skew-1")
        seen.add((r[0], r[1], r[2]))
        time.sleep(0.1)
    check(f"replica B, its clock {SKEW_MS // 1000} s ahead, leaves A's claim alone for more "
          f"than the lease ({LEASE_S} s): A's, claimed once",
          seen == {("processing", owner_a, 1)}, seen)
    done = wait_for(lambda: row("skew-1")[0] == "processed", HOLD_MS / 1000 + 20)
    check("A ends it", done and row("skew-1")[2] == 1, row("skew-1"))
    # how many context reads one decision makes
    per_decision = len(dtest.http("GET", loki + "/_stub/requests") or [])
    dtest.http("POST", loki + "/_stub/reset", {})

    # the second failure's claim moves to B while A works on it
    st, _ = a.deliver(job_event(710002, 7102, branch="fix/skew-2"), "skew-2")
    second = wait_for(lambda: in_flight("skew-2"), 10)
    check("A claims the second failure", st == 202 and second and second[1] == owner_a,
          (st, second))
    time.sleep(0.5)
    con.query("UPDATE deliveries SET state = 'received', claimed_by = NULL,"
              " lease_until_ms = NULL, not_before_ms = 0 WHERE delivery_id = 'skew-2'")
    con.query("SELECT pg_notify('healer', 'work@test|')")
    moved = wait_for(lambda: row("skew-2")[2] >= 2, 10)
    check("B claims it while A still works on it", moved, row("skew-2"))
    wait_for(lambda: row("skew-2")[0] in ("processed", "failed", "skipped"), HOLD_MS / 1000 + 30)
    tasks = con.query("SELECT count(*) FROM remediation_tasks").fetchone()[0]

    def coderuns():
        d = os.path.join(shared, "coderuns")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []
    time.sleep(2)
    runs = coderuns()
    check("each failure was decided once: one CodeRun per task", tasks == 2 and len(runs) == 2,
          (tasks, runs))
    reads = len(dtest.http("GET", loki + "/_stub/requests") or [])
    check("the second failure's context was gathered once (by A, not by B too)",
          per_decision > 0 and reads == per_decision, (per_decision, reads))
    attempts = con.query("SELECT task_id, count(*) FROM attempts GROUP BY 1"
                         " ORDER BY 1").fetchall()
    check("one attempt per task", [r[1] for r in attempts] == [1, 1], attempts)
    check("both replicas are alive", a.alive() and b.alive())
    a.stop()
    b.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
