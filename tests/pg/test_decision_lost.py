#!/usr/bin/env python3
"""test_decision_lost.py - a sensor call waiting at one replica gets the
decision another replica made although that replica could not send its
signal: the NOTIFY carrying a decision fails at its sender (a broken
connection at that moment; here, deterministically, a session that may not
call pg_notify), while the decision itself is stored. The waiting replica
reads the decisions of its waiting calls from the store while they wait,
so the call is answered with the decision within about a second of it,
not at the end of its decision wait.

Replica A (one worker, kept busy by a failure whose context source is slow)
takes the sensor call; replica B, connected as a role whose EXECUTE on
pg_notify is revoked (every NOTIFY it sends fails), decides the call's
failure. Standard library only; prints TAP.
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
WAIT_MS = 15000


def main():
    surl = hltest.slow_loki(25000)
    url = pgtest.create_database("declost")
    name = url.split("///", 1)[1].split("?", 1)[0]
    env = hltest.base_env(HEALER_DISPATCH="none", HEALER_DECISION_WAIT_MS=str(WAIT_MS))
    # A's only worker waits on the slow context source, and A keeps no
    # delivery for itself at intake: B's workers take the sensor call's
    env_a = dict(env, HEALER_WORKERS="1", HEALER_WORKER_HANDOFF="0", LOKI_URL=surl,
                 HEALER_SOURCE_TIMEOUT_MS="27000", HEALER_CONTEXT_TIMEOUT_MS="28000")
    shared = os.path.join(dtest.TMP, "declost")
    a = hltest.Healer(shared, env_a, store_url=url + "&application_name=replica-a",
                      name="a").start()  # (creates the schema)
    con = pgtest.connect(name)
    st, _ = a.deliver(job_event(900, 90, branch="fix/busy"), "dl-busy")
    busy = wait_for(lambda: con.query("SELECT state FROM deliveries WHERE delivery_id ="
                                      " 'dl-busy'").fetchall() == [("processing",)], 10)
    check("replica A's only worker is busy with another failure", st == 202 and busy,
          con.query("SELECT delivery_id, state FROM deliveries").fetchall())

    # B's role may use the tables but not send a NOTIFY
    role = f"nonotify_{os.getpid()}"
    adm = pgtest.admin()
    adm.query(f'CREATE ROLE "{role}" LOGIN')
    adm.close()
    con.query(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"')
    con.query(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
    con.query(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
    con.query("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) FROM PUBLIC")
    b_url = url.replace("user=postgres", f"user={role}") + "&application_name=replica-b"
    b = hltest.Healer(shared, dict(env, HEALER_WORKERS="2"), store_url=b_url,
                      name="b").start()

    answer = {}

    def call():
        t = time.monotonic()
        answer["reply"] = a.sensor(job_event(901, 91, branch="fix/sensor"), timeout=60)
        answer["at"] = time.monotonic()
        answer["took"] = answer["at"] - t
    ct = threading.Thread(target=call)
    ct.start()
    decided = wait_for(lambda: con.query(
        "SELECT delivery_id FROM deliveries WHERE decision_json IS NOT NULL"
        " AND delivery_id <> 'dl-busy'").fetchall(), 20, 0.05)
    t_decided = time.monotonic()
    ct.join(timeout=WAIT_MS / 1000 + 30)
    st, d = answer.get("reply", (None, {}))
    after = answer["at"] - t_decided if "at" in answer else None
    check("replica B decided the sensor call's failure, and its NOTIFY failed",
          bool(decided) and "publishing the decision" in b.log(),
          (decided, b.log()[-2000:]))
    check("the sensor call answers 202 with the decision (agent, type; decided only: no"
          " CodeRun)",
          st == 202 and d.get("agent") and d.get("failure_type") and "coderun_name" in d
          and "decision" not in d and d.get("dedup_status") == "new", (st, d))
    check(f"it is answered within about a second of the decision ({after and round(after, 2)}"
          f" s), not at the end of its decision wait ({WAIT_MS // 1000} s)",
          after is not None and after < 1 + 2 * hltest.TIME_SCALE
          and answer["took"] < WAIT_MS / 1000 - 5,
          (answer.get("took"), after))
    check("replica A is alive", a.alive())
    a.stop()
    b.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
