#!/usr/bin/env python3
"""test_replicas.py - three `healer server` replicas on one PostgreSQL
database (run through pgrun.py) behind a round-robin sender: thousands of
signed deliveries, each sent to two replicas and some as the same event
under another delivery id, one replica SIGKILLed mid-stream (a sender that
loses its replica sends to the next one, as GitHub's redelivery would).
Every delivery answered 2xx is processed exactly once (checked in the
database), every failure has one CodeRun (directory dispatch into one
directory shared by the replicas), the dead replica's claims are taken
over, and a /api/remediate/ci-failure call answered by one replica hears
the decision made by another (LISTEN/NOTIFY). Standard library only;
prints TAP.
"""
import concurrent.futures
import http.client
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, job_event, wait_for  # noqa: E402

check = dtest.check
N_OK = 1500       # tracked successes, each sent to two replicas
N_FAIL = 30       # failures, remediated (each its own run and branch)
N_SENSOR = 12     # sensor calls to one replica


def main():
    url = pgtest.create_database("replicas")
    shared = os.path.join(dtest.TMP, "replicas")
    env = hltest.base_env(HEALER_DISPATCH="directory", HEALER_WORKERS="2",
                          HEALER_DECISION_WAIT_MS="20000", HEALER_MAX_ACTIVE_CODERUNS="0",
                          HEALER_MAX_ATTEMPTS_PER_HOUR="0")
    # r0 hands nothing straight to its own workers: what it takes in waits
    # in the database, so the other replicas decide some of its sensor
    # calls; r2 (killed mid-stream) holds hand-offs that must be taken back
    reps = [hltest.Healer(shared, dict(env, HEALER_WORKER_HANDOFF="0" if i == 0 else "32"),
                          store_url=url, name=f"r{i}") for i in range(3)]
    for r in reps:
        r.start()
    # the schema was migrated once, by whichever replica came first
    con = pgtest.connect(url.split("///", 1)[1].split("?", 1)[0])
    check("three replicas started on one database (migrated once)",
          all(r.alive() for r in reps)
          and con.query("SELECT count(*) FROM schema_migrations").fetchone()[0] == hltest.MIGRATIONS)

    work = []
    for n in range(N_OK):
        body = job_event(100000 + n, 5000 + n // 50, "success")
        work.append((f"d-{n}", body, n))
        if n % 10 == 0:  # the same event through another hook
            work.append((f"e-{n}", body, n + 1))
    for n in range(N_FAIL):
        work.append((f"f-{n}", job_event(200000 + n, 6000 + n, branch=f"fix/{n}"), n))
    answers, lock = {}, threading.Lock()
    dead = threading.Event()
    sent, held = [0], [0]

    def send(item):
        delivery, body, n = item
        out = []
        # twice, to two replicas; a lost replica's share goes to the next
        for copy in range(2):
            for attempt in range(3):
                r = reps[(n + copy + attempt) % 3]
                try:
                    st, d = r.deliver(body, delivery, timeout=30)
                except (OSError, http.client.HTTPException):
                    continue
                out.append((st, d.get("status"), d.get("reason")))
                break
        with lock:
            answers[delivery] = out
            sent[0] += 1
            if sent[0] == len(work) * 2 // 5 and not dead.is_set():
                reps[2].kill()  # mid-stream
                dead.set()
                held[0] = con.query(
                    "SELECT count(*) FROM deliveries WHERE state = 'processing'"
                    f" AND claimed_by LIKE '%:{reps[2].proc.pid}:%'").fetchone()[0]
        return out

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(send, work))
    elapsed = time.monotonic() - t0
    check(f"{len(work)} deliveries sent twice each over three replicas in {elapsed:.1f} s,"
          " one replica SIGKILLed mid-stream", dead.is_set() and not reps[2].alive()
          and reps[0].alive() and reps[1].alive())
    codes = [a[0] for out in answers.values() for a in out]
    check("every answer is 202 or a 503 (never lost silently)",
          set(codes) <= {202, 503} and codes.count(202) >= len(work), sorted(set(codes)))
    acked = {k for k, out in answers.items() if any(a[0] == 202 for a in out)}
    first = {k: next(a for a in out if a[0] == 202) for k, out in answers.items()
             if any(a[0] == 202 for a in out)}
    check("a delivery is accepted at most once; its second copy answers duplicate_delivery",
          all(len([a for a in out if a[1] == "accepted"]) <= 1
              and all(a[1] == "duplicate" for a in out[1:]) for out in answers.values()),
          [(k, v) for k, v in answers.items() if len(v) > 1 and v[1][1] != "duplicate"][:3])

    # the survivors take over the dead one's claims and drain everything
    drained = wait_for(lambda: con.query(
        "SELECT count(*) FROM deliveries WHERE state IN ('received', 'processing')"
    ).fetchone()[0] == 0, 120, 0.2)
    check(f"the survivors drain the queue, the dead replica's claims ({held[0]} when it"
          " died) included", drained,
          con.query("SELECT state, claimed_by, count(*) FROM deliveries"
                    " WHERE state IN ('received', 'processing') GROUP BY 1, 2").fetchall())
    rows = {r[0]: r[1:] for r in con.query(
        "SELECT delivery_id, state, answer, process_count FROM deliveries").fetchall()}
    # one event under two delivery ids: whichever came first is accepted,
    # the other stored as its duplicate (and answered so, unless its
    # answer was lost with the replica and a resend found it stored)
    pairs = [(f"d-{n}", f"e-{n}") for n in range(0, N_OK, 10)]
    dup_event = {k for p in pairs for k in p if rows.get(k, (None, None))[1] == "duplicate"}
    bad_pairs = [p for p in pairs if sorted(rows.get(k, (None, None))[1] for k in p)
                 != ["accepted", "duplicate"] or any(
                     first[k][1:] not in (("accepted", None), ("duplicate", "duplicate_event"),
                                          ("duplicate", "duplicate_delivery")) for k in p)]
    check("of one event under two delivery ids one is accepted, the other its duplicate",
          not bad_pairs, [(p, [(rows.get(k), first.get(k)) for k in p]) for p in bad_pairs[:3]])
    lost = [k for k in acked if k not in rows]
    wrong = [(k, rows[k]) for k in acked if k in rows and rows[k] != (
        ("skipped", "duplicate", 0) if k in dup_event else ("processed", "accepted", 1))]
    twice = [k for k, v in rows.items() if v[2] > 1]
    check(f"every delivery answered 2xx ({len(acked)}) is in the database once and processed"
          " exactly once (a duplicate of an event never)",
          not lost and not wrong and not twice and len(acked) == len(work),
          (len(acked), lost[:5], wrong[:5], twice[:5]))
    runs = sorted(f for f in os.listdir(os.path.join(shared, "coderuns"))
                  if f.endswith(".json"))
    tasks = con.query("SELECT count(*), count(DISTINCT coderun_name) FROM remediation_tasks"
                      " WHERE agent IS NOT NULL").fetchone()
    check(f"one CodeRun per failure ({N_FAIL})",
          len(runs) == N_FAIL and len(set(runs)) == N_FAIL and tasks == (N_FAIL, N_FAIL),
          (len(runs), tasks))
    check("the store is consistent", dtest.store_integrity(con) == "ok")

    # the sensor's call at one replica hears the decision made by another
    calls = {}

    def sensor(i):
        body = job_event(300000 + i, 7000 + i, branch=f"sensor/{i}")
        t = time.monotonic()
        st, d = reps[0].sensor(body, timeout=40)
        return i, st, d, time.monotonic() - t

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for i, st, d, took in pool.map(sensor, range(N_SENSOR)):
            calls[i] = (st, d, took)
    decided_by = {}
    for r, rep in enumerate(reps[:2]):
        for line in rep.log().splitlines():
            if '"remediation decided"' in line:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                decided_by.setdefault(rec.get("delivery_id"), r)
    ids = {i: d.get("delivery_id") for i, (st, d, took) in calls.items()}
    answered = [i for i, (st, d, took) in calls.items()
                if st == 202 and d.get("coderun_name") and d.get("agent") == "rex"
                and d.get("dedup_status") == "new"]
    elsewhere = [i for i in answered if decided_by.get(ids[i]) == 1]
    check(f"{N_SENSOR} sensor calls at one replica all carry their decision",
          len(answered) == N_SENSOR, {i: c[:2] for i, c in calls.items() if i not in answered})
    check(f"decisions made by the other replica reach the waiting call ({len(elsewhere)} of"
          f" {N_SENSOR})", len(elsewhere) >= 1 and all(calls[i][2] < 20 for i in elsewhere),
          (decided_by, ids))
    for r in reps[:2]:
        check(f"replica {r.name} stops cleanly", r.stop() == 0)
    dtest.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception:  # report, do not hide
        import traceback
        check("test driver ran to completion", False, traceback.format_exc())
        dtest.finish()
