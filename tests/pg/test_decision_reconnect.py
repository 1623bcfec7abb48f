#!/usr/bin/env python3
"""test_decision_reconnect.py - a sensor call waiting at a replica whose
listener session dropped gets the decision another replica made meanwhile
soon after the listener is back, not at the end of its decision wait.

The NOTIFY that carries a decision is lost while the listener session of
the replica holding the call is down. Replica A (one worker, kept busy by a
failure whose context source is slow) takes the sensor call; its listener
session is terminated and kept from reconnecting (the database takes no new
connections) while replica B (run through pgrun.py on the same database)
decides the call's failure. Once A's listener is back, A reads the waiting
call's decision from the store and answers with it, well before its
decision wait (20 s) ends. Standard library only; prints TAP.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, job_event, wait_for  # noqa: E402

check = dtest.check
WAIT_MS = 20000


def main():
    surl = hltest.slow_loki(25000)
    url = pgtest.create_database("decisions")
    name = url.split("///", 1)[1].split("?", 1)[0]
    env = hltest.base_env(HEALER_DISPATCH="none", HEALER_DECISION_WAIT_MS=str(WAIT_MS))
    # A's only worker waits on the slow context source (B has none), and A
    # keeps no delivery for itself at intake: B's workers take the call's
    env_a = dict(env, HEALER_WORKERS="1", HEALER_WORKER_HANDOFF="0", LOKI_URL=surl,
                 HEALER_SOURCE_TIMEOUT_MS="27000", HEALER_CONTEXT_TIMEOUT_MS="28000")
    shared = os.path.join(dtest.TMP, "decisions")
    a = hltest.Healer(shared, env_a, store_url=url + "&application_name=replica-a",
                      name="a").start()
    con = pgtest.connect(name)
    st, _ = a.deliver(job_event(800, 80, branch="fix/busy"), "dr-busy")
    busy = wait_for(lambda: con.query("SELECT state FROM deliveries WHERE delivery_id ="
                                      " 'dr-busy'").fetchall() == [("processing",)], 10)
    check("replica A's only worker is busy with another failure", st == 202 and busy,
          con.query("SELECT delivery_id, state FROM deliveries").fetchall())
    b = hltest.Healer(shared, dict(env, HEALER_WORKERS="2"),
                      store_url=url + "&application_name=replica-b", name="b").start()

    # A's listener session (the one holding advisory locks) is terminated
    # and cannot come back until the decision is stored
    listener = ("SELECT DISTINCT a.pid FROM pg_stat_activity a JOIN pg_locks l"
                " ON l.pid = a.pid AND l.locktype = 'advisory'"
                " WHERE a.application_name = 'replica-a'")
    killer = pgtest.connect(name)  # its own session: used by the killing thread only
    adm = pgtest.admin()
    adm.query(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    stop_killing, killed = threading.Event(), [0]

    def kill_listener():
        while not stop_killing.is_set():
            for (pid,) in killer.query(listener).fetchall():
                killer.query(f"SELECT pg_terminate_backend({int(pid)})")
                killed[0] += 1
            time.sleep(0.02)
    kt = threading.Thread(target=kill_listener)
    kt.start()
    try:
        wait_for(lambda: killed[0] >= 1, 5)
        time.sleep(0.3)  # the listener is surely gone
        answer = {}

        def call():
            t = time.monotonic()
            answer["reply"] = a.sensor(job_event(801, 81, branch="fix/sensor"), timeout=60)
            answer["took"] = time.monotonic() - t
            answer["at"] = time.monotonic()
        ct = threading.Thread(target=call)
        t_post = time.monotonic()
        ct.start()
        decided = wait_for(lambda: con.query(
            "SELECT delivery_id FROM deliveries WHERE decision_json IS NOT NULL"
            " AND delivery_id <> 'dr-busy'").fetchall(), 10, 0.05)
        time.sleep(0.5)  # its NOTIFY surely came and went
        check("replica B decided the sensor call's failure while A's listener was down",
              bool(decided) and killed[0] >= 1 and "reply" not in answer,
              (decided, killed[0], answer, b.log()[-3000:]))
    finally:
        stop_killing.set()
        kt.join()
        adm.query(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        adm.close()
    t_allow = time.monotonic()
    ct.join(timeout=WAIT_MS / 1000 + 30)
    st, d = answer.get("reply", (None, {}))
    took = answer.get("took")
    after = answer["at"] - t_allow if "at" in answer else None
    check("the sensor call answers 202 with the decision (agent, type; decided only: no"
          " CodeRun)",
          st == 202 and d.get("agent") and d.get("failure_type") and "coderun_name" in d
          and "decision" not in d and d.get("dedup_status") == "new", (st, d))
    check(f"it is answered soon after A's listener is back ({after and round(after, 2)} s), "
          f"well before its decision wait ({WAIT_MS // 1000} s) ends",
          took is not None and after is not None and after < 4 + 2 * hltest.TIME_SCALE
          and took < WAIT_MS / 1000 - 5, (took, after, t_allow - t_post))
    check("replica B made the decision",
          decided and any('"remediation decided"' in line and decided[0][0] in line
                          for line in b.log().splitlines()), b.log()[-1500:])
    check("replica A is alive", a.alive())
    a.stop()
    b.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
