#!/usr/bin/env python3
"""test_handoff_lease.py - a delivery handed to this process's workers at
intake is stored as their claim, with a lease. Its batch can wait longer
than that lease (the deliveries table locked, here for twice the lease):
the claim is then stored with a lease that runs from when it was stored,
not from when the batch began, so no lease keeper (this replica's or
another's) takes it back as expired and has it processed a second time.

Standard library only; prints TAP.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, job_event  # noqa: E402

check = dtest.check
LEASE_S = 3
LOCK_S = 2 * LEASE_S


def main():
    url = pgtest.create_database("handoff")
    env = hltest.base_env(HEALER_DISPATCH="directory", HEALER_LEASE_SECONDS=str(LEASE_S))
    srv = hltest.Healer(os.path.join(dtest.TMP, "handoff"), env, store_url=url).start()
    dbname = url.split("///", 1)[1].split("?", 1)[0]
    st, _ = srv.deliver(job_event(951, 96, branch="fix/warm-up"), "handoff-warm-up")
    check("a first delivery is accepted", st == 202, st)
    hltest.wait_for(lambda: srv.queue_depth() == 0, 30)

    # the row as its batch stored it, before a worker or a renewal changes it
    con = pgtest.connect(dbname)
    con.query("CREATE TABLE stored_as (delivery_id text, state text, lease_until_ms bigint,"
              " claimed_by text)")
    con.query("CREATE FUNCTION keep_stored() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
              " INSERT INTO stored_as VALUES (NEW.delivery_id, NEW.state, NEW.lease_until_ms,"
              " NEW.claimed_by); RETURN NEW; END $$")
    con.query("CREATE TRIGGER keep_stored AFTER INSERT ON deliveries FOR EACH ROW"
              " EXECUTE FUNCTION keep_stored()")
    lock = pgtest.connect(dbname)
    lock.query("BEGIN")
    lock.query("LOCK TABLE deliveries IN EXCLUSIVE MODE")
    answer = {}

    def send():
        answer["reply"] = srv.deliver(job_event(952, 97, branch="fix/handoff"), "handoff-1",
                                      timeout=60)
    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(LOCK_S)
    released_ms = int(time.time() * 1000)
    lock.query("ROLLBACK")
    lock.close()

    sender.join(timeout=60)
    rows = con.query("SELECT state, lease_until_ms, claimed_by FROM stored_as"
                     " WHERE delivery_id = 'handoff-1'").rows
    first = rows[0] if rows else None
    st = answer.get("reply", (None, {}))[0]
    check(f"the delivery sent while the table was locked ({LOCK_S} s) is accepted", st == 202, st)
    check("it was stored as this process's claim (handed off at intake)",
          first is not None and first[0] == "processing" and first[2], first)
    check(f"its lease runs from when it was stored, not from when its batch began "
          f"({LOCK_S} s before; the lease is {LEASE_S} s)",
          first is not None and first[1] is not None
          and first[1] >= released_ms + LEASE_S * 1000 // 2,
          (first, released_ms))

    def done():
        rows = con.query("SELECT state, claims FROM deliveries"
                         " WHERE delivery_id = 'handoff-1'").rows
        return rows[0] if rows and rows[0][0] not in ("received", "processing") else None
    end = hltest.wait_for(done, 60)
    check("it is processed once: one claim, never taken back and claimed again",
          end is not None and end[0] == "processed" and end[1] == 1, end)
    con.close()
    check("the server is alive", srv.alive())
    srv.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
