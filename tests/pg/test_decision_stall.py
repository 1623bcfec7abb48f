#!/usr/bin/env python3
"""test_decision_stall.py - a sensor call is answered when its decision
wait ends although the database has stalled meanwhile: every PostgreSQL
process is stopped (SIGSTOP: the connections stay open and answer nothing,
as a database behind a partition does) while the call waits. The periodic
reads of the waiting calls' decisions then hang in the store, and so would
a read of the stored decision while the answer is built; neither may hold
up the answer (HEALER_DECISION_WAIT_MS), which says the decision is pending
and names the task. After the database continues, the server goes on and
the next call is answered as usual.

The call's failure stays undecided through the wait: its context source
(Loki) answers only after 25 s. Standard library only; prints TAP.
"""
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, job_event, wait_for  # noqa: E402

check = dtest.check
WAIT_MS = 3000
STALL_S = 10


def cluster_pids():
    """The postmaster and its children."""
    with open(os.path.join(os.environ["HEALER_TEST_PG_DATA"], "postmaster.pid")) as f:
        master = int(f.readline())
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        kids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return [master] + kids


def signal_all(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def statements_since(offset):
    """(pid, statement) of what the cluster logged (log_statement) after
    offset of its log."""
    with open(os.environ["HEALER_TEST_PG_LOG"], errors="replace") as f:
        f.seek(offset)
        text = f.read()
    return [(m.group(1), m.group(2).strip()) for m in re.finditer(
        r"\[(\d+)\][^\n]*?LOG:  (?:execute [^:\n]*|statement): ([^\n]*)", text)]


def repeat_taken_in(offset):
    """The server took in the repeated call since offset: it read the
    delivery's first answer (the same delivery again), committed that
    intake, and then read the first delivery's decision (the duplicate's
    wait begins with that read)."""
    st = statements_since(offset)
    for i, (pid, q) in enumerate(st):
        if re.match(r"SELECT answer\b.* FROM deliveries WHERE delivery_id", q):
            for j in range(i + 1, len(st)):
                if st[j] == (pid, "COMMIT"):
                    return any(q2.startswith("SELECT decision_json FROM deliveries")
                               for _, q2 in st[j + 1:])
    return False


def main():
    surl = hltest.slow_loki(25000)
    url = pgtest.create_database("decstall")
    dbname = url.split("///", 1)[1].split("?", 1)[0]
    # every statement of healer's sessions goes to the cluster's log: the
    # repeated call below is seen taken in before the cluster is stopped
    with pgtest.admin() as adm:
        adm.query(f'ALTER DATABASE "{dbname}" SET log_statement = \'all\'')
    env = hltest.base_env(HEALER_DISPATCH="none", HEALER_DECISION_WAIT_MS=str(WAIT_MS),
                          LOKI_URL=surl, HEALER_SOURCE_TIMEOUT_MS="27000",
                          HEALER_CONTEXT_TIMEOUT_MS="28000")
    srv = hltest.Healer(os.path.join(dtest.TMP, "decstall"), env, store_url=url).start()
    con = pgtest.connect(dbname)
    answer = {}

    def call():
        t = time.monotonic()
        answer["reply"] = srv.sensor(job_event(931, 93, branch="fix/stall"), timeout=60)
        answer["took"] = time.monotonic() - t
    ct = threading.Thread(target=call)
    ct.start()
    stored = wait_for(lambda: con.query("SELECT state FROM deliveries").fetchall()
                      == [("processing",)], 10, 0.02)
    con.close()
    check("the sensor call's delivery is stored and being processed", stored)

    # the same call again while the first is undecided: it waits for the
    # first call's decision (the reader found none yet), and is answered
    # when its own wait ends, its reads stalled too
    def dup_call():
        t = time.monotonic()
        answer["dup"] = srv.sensor(job_event(931, 93, branch="fix/stall"), timeout=60)
        answer["dup_took"] = time.monotonic() - t
    log_at = os.path.getsize(os.environ["HEALER_TEST_PG_LOG"])
    dt = threading.Thread(target=dup_call)
    dt.start()
    # the database is stopped once the server has taken the repeat in (its
    # intake committed, its wait begun), not after a guessed while
    took_in = wait_for(lambda: repeat_taken_in(log_at), 10, 0.01)
    check("setup: the server took in the repeated call before the database is stopped "
          "(the cluster's log shows its intake committed and its decision read)",
          took_in, None if took_in else statements_since(log_at)[-20:])
    pids = cluster_pids()
    t_stall = time.monotonic()
    signal_all(pids, signal.SIGSTOP)
    try:
        ct.join(timeout=STALL_S - 1)
        answered_in = time.monotonic() - t_stall if not ct.is_alive() else None
    finally:
        time.sleep(max(0.0, STALL_S - (time.monotonic() - t_stall)))
        signal_all(pids, signal.SIGCONT)
    ct.join(timeout=60)
    dt.join(timeout=60)
    st, d = answer.get("reply", (None, {}))
    dst, dd = answer.get("dup", (None, {}))
    check(f"its repeat, waiting for that decision, is answered when its {WAIT_MS // 1000} s "
          "wait ends: a duplicate with the task's id and null decision keys",
          answer.get("dup_took", 99) < WAIT_MS / 1000 + 2.5 and dst == 202
          and dd.get("status") == "duplicate" and dd.get("task_id") == d.get("task_id")
          and "agent" in dd and dd.get("agent") is None and dd.get("coderun_name") is None,
          (answer.get("dup_took"), dst, dd))
    check(f"with the database stopped, the call is answered when its {WAIT_MS // 1000} s "
          f"wait ends, not when the database continues ({STALL_S} s)",
          answered_in is not None and answer["took"] < WAIT_MS / 1000 + 2.5,
          (answered_in, answer.get("took")))
    check("the answer is 202, the decision pending, with the task's id",
          st == 202 and d.get("decision") == "pending" and d.get("task_id"), (st, d))
    ok = wait_for(lambda: srv.request("GET", "/ready")[0] == 200, 30)
    check("after the database continues the server is ready", ok)
    st2, d2 = srv.sensor(job_event(932, 94, conclusion="success", branch="fix/stall"))
    check("and the next call is answered as usual", st2 == 202, (st2, d2))
    check("the server is alive", srv.alive())
    srv.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
