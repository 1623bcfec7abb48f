#!/usr/bin/env python3
"""test_outage.py - a `healer server` on PostgreSQL while its database goes
away and comes back (run through pgrun.py): while the database is down
/ready answers 503 and deliveries 503 (never 202), /health stays 200, and
the workers back off; once it is back the same process recovers without a
restart, every delivery answered 202 is processed exactly once, and every
failure has one CodeRun, also those whose remediation was under way when
the database went away. Sessions the server ends while healer is idle cost
no delivery and no read: the next delivery is stored on a new session
(202), and /ready and the API's reads answer 200. Standard library only;
prints TAP.
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


def main():
    # a GitHub that answers slowly: remediations are under way (claimed,
    # not finished) when the database goes away
    _, gport = dtest.start_stub("generic_stub.py")
    dtest.http("POST", f"http://127.0.0.1:{gport}/_stub/config",
               {"rules": [{"path": "/", "delay_ms": 1500}]})
    data_dir = os.path.join(dtest.TMP, "outage")
    srv = hltest.Healer(data_dir, hltest.base_env(
        HEALER_DISPATCH="directory", HEALER_WORKERS="2", GITHUB_TOKEN="gh-token",
        GITHUB_API_URL=f"http://127.0.0.1:{gport}", HEALER_SOURCE_TIMEOUT_MS="4000",
        HEALER_CONTEXT_TIMEOUT_MS="6000")).start()
    db = lambda: dtest.store_db(data_dir)  # noqa: E731
    acked, answers, lock = [], {}, threading.Lock()

    def send(name, payload):
        try:
            st, d = srv.deliver(payload, name, timeout=20)
        except OSError as e:
            st, d = 0, str(e)
        with lock:
            answers[name] = st
            if st == 202:
                acked.append(name)
        return st, d

    # before: failures (remediated, slowly) and successes (tracked)
    for i in range(4):  # four failures, each of its own branch
        send(f"fail-{i}", job_event(7000 + i, 900 + i, branch=f"feat/{i}"))
    for i in range(30):
        send(f"ok-a-{i}", job_event(8000 + i, 800, "success"))
    check("deliveries are accepted while the database is up",
          len(acked) == 34, sorted(set(answers.values())))
    busy = wait_for(lambda: db().execute(
        "SELECT count(*) FROM deliveries WHERE state = 'processing'").fetchone()[0] > 0, 10)
    check("remediations are under way", busy)

    # the database goes away
    t_down = time.monotonic()
    pgtest.stop("fast")
    ready = wait_for(lambda: srv.request("GET", "/ready")[0] == 503, 10)
    check("/ready answers 503 while the database is down", ready)
    st, body = srv.request("GET", "/ready")
    check("/ready says the store is unavailable", st == 503 and "store" in str(body), body)
    check("/health still answers 200", srv.request("GET", "/health")[0] == 200)
    down = []
    threads = [threading.Thread(target=lambda i=i: down.append(
        send(f"down-{i}", job_event(9000 + i, 700, "success"))[0])) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    check("20 deliveries while it is down all answer 503, none 202",
          len(down) == 20 and set(down) == {503}, down)
    st, d = srv.request("GET", "/api/status")
    check("/api/status answers 503 too", st == 503, (st, d))
    time.sleep(3)  # the remediations under way end meanwhile
    t_back = time.monotonic()
    pgtest.start()

    # it comes back: the same process recovers
    ready = wait_for(lambda: srv.request("GET", "/ready")[0] == 200, 30)
    check("/ready answers 200 again once the database is back, without a restart",
          ready and srv.alive(), srv.log()[-2000:])
    for i in range(10):
        send(f"ok-c-{i}", job_event(9500 + i, 600, "success"))
    check("deliveries are accepted again",
          all(answers.get(f"ok-c-{i}") == 202 for i in range(10)),
          {k: v for k, v in answers.items() if k.startswith("ok-c")})
    idle = wait_for(lambda: srv.queue_depth() == 0, 90, 0.2)
    check("the backlog drains", idle)

    con = db()
    rows = {r[0]: (r[1], r[2]) for r in con.execute(
        "SELECT delivery_id, state, process_count FROM deliveries").fetchall()}
    lost = [a for a in acked if a not in rows]
    not_once = [a for a in acked if a in rows and rows[a] != ("processed", 1)]
    stored_503 = [k for k in rows if answers.get(k) == 503]
    check(f"every delivery answered 202 ({len(acked)}) is processed exactly once",
          len(acked) == 44 and not lost and not not_once,
          (len(acked), lost[:5], [(a, rows[a]) for a in not_once[:5]]))
    check("no delivery answered 503 was stored", not stored_503, stored_503[:5])
    check("the store is consistent", dtest.store_integrity(con) == "ok")
    runs = [f for f in os.listdir(os.path.join(data_dir, "coderuns")) if f.endswith(".json")]
    check("one CodeRun per failure", len(runs) == 4, (runs, con.execute(
        "SELECT delivery_id, reason, decision_json FROM deliveries"
        " WHERE delivery_id LIKE 'fail-%' ORDER BY 1").fetchall()))
    log = srv.log()
    fails = log.count("claiming a delivery failed")
    down_s = t_back - t_down
    check(f"the workers back off while it is down ({fails} failed claims in {down_s:.0f} s)",
          fails <= 2 * (down_s + 2) * 1.5, fails)

    # the sessions end while healer is idle (a restart or failover of the
    # server, an administrator, a pooler): the database is there, so the
    # next delivery is stored on a new session, not answered 503
    adm = pgtest.admin()
    pids = [r[0] for r in adm.query("SELECT pid FROM pg_stat_activity"
                                    " WHERE application_name = 'healer'").fetchall()]
    adm.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
              " WHERE pid IN (%s)" % ",".join(map(str, pids or [0])))
    gone = wait_for(lambda: not adm.query("SELECT pid FROM pg_stat_activity WHERE pid IN (%s)"
                                          % ",".join(map(str, pids or [0]))).fetchall(), 10)
    adm.close()
    st_ready, ready_doc = srv.request("GET", "/ready")
    check("/ready answers 200 after healer's sessions ended (a new one, not 503)",
          gone and st_ready == 200, (gone, st_ready, ready_doc))
    st, d = send("after-terminate", job_event(9900, 500, "success"))
    check("a delivery after healer's sessions ended is stored on a new one (202, not 503)",
          gone and st == 202, (gone, st, d))
    task = db().execute("SELECT task_id FROM remediation_tasks LIMIT 1").fetchone()[0]
    st_task, doc = srv.request("GET", f"/api/remediations/{task}")
    st_list, _ = srv.request("GET", "/api/remediations?limit=5")
    check("and the API's reads answer from new sessions too (200, not 503)",
          st_task == 200 and doc.get("task_id") == task and st_list == 200,
          (st_task, doc, st_list))
    check("and processed once", wait_for(lambda: db().execute(
        "SELECT state, process_count FROM deliveries WHERE delivery_id = 'after-terminate'"
    ).fetchone() == ("processed", 1), 30))
    check("SIGTERM exits 0", srv.stop() == 0)
    dtest.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception:  # report, do not hide
        import traceback
        check("test driver ran to completion", False, traceback.format_exc())
        dtest.finish()
