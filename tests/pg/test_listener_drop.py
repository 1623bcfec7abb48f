#!/usr/bin/env python3
"""test_listener_drop.py - a replica whose listener session drops (an
administrator's pg_terminate_backend, a proxy's idle cut, a database
restart) while it processes deliveries is alive: the other replica must
not take its claims away (contract section 11: every delivery is processed
once).

Replica A holds two failed jobs (their remediation waits on a slow context
source, several seconds); its listener session, which holds A's liveness
lock, is terminated and kept from reconnecting for two lease keeper
periods of replica B (run through pgrun.py). A's claims stay A's: each delivery is
processed once, by A. Standard library only; prints TAP.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, job_event, wait_for  # noqa: E402

check = dtest.check


def main():
    surl = hltest.slow_loki(14000)
    url = pgtest.create_database("listener")
    name = url.split("///", 1)[1].split("?", 1)[0]
    env = hltest.base_env(HEALER_DISPATCH="none", HEALER_WORKERS="2", LOKI_URL=surl,
                          HEALER_SOURCE_TIMEOUT_MS="16000", HEALER_CONTEXT_TIMEOUT_MS="17000")
    shared = os.path.join(dtest.TMP, "listener")
    a = hltest.Healer(shared, env, store_url=url + "&application_name=replica-a",
                      name="a").start()
    b = hltest.Healer(shared, env, store_url=url + "&application_name=replica-b",
                      name="b").start()
    con = pgtest.connect(name)
    for i in range(2):
        st, _ = a.deliver(job_event(700 + i, 70 + i, branch=f"fix/{i}"), f"ld-{i}")
        check(f"replica A accepts failure {i}", st == 202, st)
    owner_of = "SELECT DISTINCT claimed_by FROM deliveries WHERE state = 'processing'"
    held = wait_for(lambda: len(con.query(owner_of).fetchall()) == 1
                    and con.query("SELECT count(*) FROM deliveries WHERE state = 'processing'"
                                  ).fetchone()[0] == 2, 10)
    check("replica A holds both claims while their context is gathered", held,
          con.query("SELECT delivery_id, state, claimed_by FROM deliveries").fetchall())
    # A's listener (its session holding advisory locks) is terminated and
    # cannot come back for 11 s (two of B's lease keeper periods): the
    # database takes no new connections meanwhile; A's others stay
    listener = ("SELECT DISTINCT a.pid FROM pg_stat_activity a JOIN pg_locks l"
                " ON l.pid = a.pid AND l.locktype = 'advisory'"
                " WHERE a.application_name = 'replica-a'")
    adm = pgtest.admin()
    adm.query(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    killed, deadline = 0, time.time() + 11
    try:
        while time.time() < deadline:
            for (pid,) in con.query(listener).fetchall():
                con.query(f"SELECT pg_terminate_backend({int(pid)})")
                killed += 1
            time.sleep(0.05)
    finally:
        adm.query(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        adm.close()
    check("A's listener session was terminated while A worked", killed >= 1, killed)
    done = wait_for(lambda: con.query(
        "SELECT count(*) FROM deliveries WHERE delivery_id LIKE 'ld-%' AND state <> 'processing'"
        " AND state <> 'received'").fetchone()[0] == 2, 40, 0.2)
    rows = con.query("SELECT delivery_id, state, process_count, claims FROM deliveries"
                     " WHERE delivery_id LIKE 'ld-%' ORDER BY 1").fetchall()
    check("both deliveries are finished", done, rows)
    check("each was claimed and processed once (B did not take A's live claims)",
          [(r[2], r[3]) for r in rows] == [(1, 1), (1, 1)], (rows, b.log()[-1500:]))
    check("replica A is alive", a.alive())
    a.stop()
    b.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
