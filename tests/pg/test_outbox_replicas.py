#!/usr/bin/env python3
"""test_outbox_replicas.py - the outbox's "each is delivered once"
(contract section 9) with two `healer server` replicas on one PostgreSQL
database (run through pgrun.py) and the Discord stand-in.

Every replica runs an outbox thread over the same notifications table.
Pending notifications are written straight into the store (as an
escalation would enqueue them), and the stand-in takes a while to answer
each POST, so both replicas see the same rows due while one of them is
still sending. Checked: every notification is delivered, the stand-in
received each exactly once, and the replicas together made exactly one
delivery attempt per notification; a rate limit one replica is told holds
the channel on the other too; a sender whose database session (and the
message's lock with it) is cut mid-send is not doubled by the other
replica; a sender killed mid-send is taken over once its lease ends.
Standard library only; prints TAP.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, stub_json, wait_for  # noqa: E402

check = dtest.check
N_MSGS = 6
ANSWER_DELAY_MS = 700  # each POST to the stand-in takes this long
N_LIMITED = 5  # messages in the rate-limit part, the first one limited
LEASE_S = 3  # HEALER_LEASE_SECONDS: a sender's lease on the message it sends


def main():
    _, dport = dtest.start_stub("discord_stub.py", "--webhook", "111:disc-token")
    stub_json(dport, "/_stub/config", {"rules": [
        {"method": "POST", "path": "/api/webhooks/", "delay_ms": ANSWER_DELAY_MS}]})
    url = pgtest.create_database("outbox")
    shared = os.path.join(dtest.TMP, "outbox")
    env = hltest.base_env(HEALER_DISPATCH="none", HEALER_LOOP_INTERVAL_MS="100",
                          HEALER_LEASE_SECONDS=str(LEASE_S),
                          DISCORD_WEBHOOK_URL=f"http://127.0.0.1:{dport}/api/webhooks/111/"
                                              "disc-token")
    reps = [hltest.Healer(shared, env, store_url=f"{url}&application_name=outbox-r{i}",
                          name=f"r{i}") for i in range(2)]
    for r in reps:
        r.start()
    con = pgtest.connect(url.split("///", 1)[1].split("?", 1)[0])
    now = int(time.time() * 1000)
    for i in range(N_MSGS):
        payload = json.dumps({"content": f"escalation {i}",
                              "allowed_mentions": {"parse": []}})
        con.execute("INSERT INTO notifications (task_id, channel, kind, ref, state, attempts,"
                    " next_ms, payload, created_ms)"
                    " VALUES (?, 'discord', 'escalation', '3', 'pending', 0, ?, ?, ?)",
                    (f"outbox-task-{i}", now, payload, now))

    def states():
        return con.query("SELECT state, count(*), sum(attempts) FROM notifications"
                         " GROUP BY state").fetchall()

    done = wait_for(lambda: states() == [("delivered", N_MSGS, N_MSGS)] or
                    (len(stub_json(dport, "/_stub/messages")) >= 2 * N_MSGS and "x"),
                    N_MSGS * ANSWER_DELAY_MS / 1000.0 * 2 + 20, step=0.2)
    # give a duplicate still on its way the time to arrive
    time.sleep(2 * ANSWER_DELAY_MS / 1000.0)
    msgs = stub_json(dport, "/_stub/messages")
    texts = sorted(m["payload"]["content"] for m in msgs)
    check("every notification delivered, one attempt each", done is True and
          states() == [("delivered", N_MSGS, N_MSGS)], repr(states()))
    check("the stand-in received each notification exactly once",
          texts == sorted(f"escalation {i}" for i in range(N_MSGS)), repr(texts))
    for r in reps:
        check(f"replica {r.name} still runs", r.alive(), r.log()[-2000:])

    # a rate limit told to one replica holds the channel on the other too:
    # the stand-in answers the next POST 429 (retry_after 4 s) and the
    # replica it answered is killed at once; the messages enqueued then wait
    # for the end of that wait on the other replica (its outbox reads the
    # store's hold once a pass), then each is delivered once
    stub_json(dport, "/_stub/clear", {})
    stub_json(dport, "/_stub/config", {"rules": []})
    stub_json(dport, "/_stub/ratelimit", {"times": 1, "retry_after": 4})

    def enqueue(task_id):
        t = int(time.time() * 1000)
        con.execute("INSERT INTO notifications (task_id, channel, kind, ref, state, attempts,"
                    " next_ms, payload, created_ms)"
                    " VALUES (?, 'discord', 'escalation', '3', 'pending', 0, ?, ?, ?)",
                    (task_id, t, json.dumps({"content": task_id}), t))

    enqueue("outbox-rl-0")
    limited = wait_for(lambda: [r for r in stub_json(dport, "/_stub/received")
                                if r["status"] == 429], 20, step=0.05) or []
    t_429 = limited[0]["at"] if limited else time.time()
    # the limited replica records its hold as it reads the answer, then
    # logs the message's result
    told = wait_for(lambda: next((r for r in reps if "outbox-rl-0" in r.log()), None), 10,
                    step=0.05)
    if told:
        told.kill()
    for i in range(1, N_LIMITED):
        enqueue(f"outbox-rl-{i}")

    def rl_states():
        return con.query("SELECT state, count(*) FROM notifications"
                         " WHERE task_id LIKE 'outbox-rl-%' GROUP BY state").fetchall()
    delivered = wait_for(lambda: rl_states() == [("delivered", N_LIMITED)], 30, step=0.2)
    received = stub_json(dport, "/_stub/received")
    early = [(r["raw"][:40], round(r["at"] - t_429, 2)) for r in received
             if r["status"] != 429 and r["at"] < t_429 + 3.9]
    texts = sorted(m["payload"]["content"] for m in stub_json(dport, "/_stub/messages"))
    check("a rate limit one replica was told holds the channel on the other: nothing is "
          "sent inside its wait, then each message once",
          len(limited) == 1 and told and not early and delivered
          and texts == sorted(f"outbox-rl-{i}" for i in range(N_LIMITED)),
          repr([len(limited), told and told.name, early, rl_states(), texts]))
    if told:
        told.start()

    # the sender's database session holding the message's lock is cut
    # while the message is on its way (the stand-in holds the POST 5 s):
    # the lock goes with it, but the row stays taken by its live sender,
    # so the other replica does not send it again
    stub_json(dport, "/_stub/clear", {})
    stub_json(dport, "/_stub/reset", {})
    stub_json(dport, "/_stub/config", {"rules": [
        {"method": "POST", "path": "/api/webhooks/", "delay_ms": 5000, "times": 1}]})
    enqueue("outbox-cut")
    first = wait_for(lambda: stub_json(dport, "/_stub/requests"), 20, step=0.05)
    t_first = time.time()
    listeners = ("SELECT DISTINCT a.pid FROM pg_stat_activity a JOIN pg_locks l"
                 " ON l.pid = a.pid AND l.locktype = 'advisory'"
                 " WHERE a.application_name LIKE 'outbox-r%'")
    cut = 0
    for (pid,) in con.query(listeners).fetchall():
        con.query(f"SELECT pg_terminate_backend({int(pid)})")
        cut += 1
    sent = wait_for(lambda: con.query("SELECT state FROM notifications"
                                      " WHERE task_id = 'outbox-cut'").fetchall()
                    == [("delivered",)], 20, step=0.1)
    # the held POST ends 5 s after it began; a second send may end first
    time.sleep(max(0.0, t_first + 7 - time.time()))
    texts = [m["payload"]["content"] for m in stub_json(dport, "/_stub/messages")]
    check("a message whose sender lost its lock's database session mid-send is sent once",
          first and cut >= 1 and sent and texts == ["outbox-cut"],
          repr([cut, sent, texts]))

    # a replica killed while its message is on the way: the other replica
    # sends it once the killed one's lease on it ends, unrenewed (the
    # stand-in holds the first POST, then would answer 503; the other
    # replica starts once the first is sending)
    reps[1].stop()
    stub_json(dport, "/_stub/clear", {})
    stub_json(dport, "/_stub/reset", {})
    stub_json(dport, "/_stub/config", {"rules": [
        {"method": "POST", "path": "/api/webhooks/", "delay_ms": 5000, "status": 503,
         "times": 1}]})
    con.execute("INSERT INTO notifications (task_id, channel, kind, ref, state, attempts,"
                " next_ms, payload, created_ms)"
                " VALUES ('outbox-task-killed', 'discord', 'escalation', '3', 'pending', 0, ?,"
                " ?, ?)", (int(time.time() * 1000),
                           json.dumps({"content": "escalation killed"}), now))
    first = wait_for(lambda: stub_json(dport, "/_stub/requests"), 20, step=0.05)
    reps[1].start()
    reps[0].kill()
    t_kill = time.time()
    taken = wait_for(lambda: stub_json(dport, "/_stub/messages"), 10, step=0.05)
    waited = time.time() - t_kill
    row = wait_for(lambda: con.query("SELECT state, attempts FROM notifications WHERE"
                                     " task_id = 'outbox-task-killed' AND state = 'delivered'")
                   .fetchall(), 10, step=0.1)
    check("a message whose sender was killed mid-send is sent by the other replica once "
          "the sender's lease ends",
          len(first or []) == 1 and [m["payload"]["content"] for m in taken or []]
          == ["escalation killed"] and waited < LEASE_S + 3 * hltest.TIME_SCALE
          and row == [("delivered", 2)],  # the killed send counts as an attempt
          repr([first, taken, waited, row]))
    reps[1].stop()
    logs = "".join(r.log() for r in reps)
    check("no replica recorded a result another had recorded",
          "is not pending" not in logs,
          "\n".join(line for line in logs.splitlines() if "is not pending" in line)[:2000])
    check("the webhook's token is in no log", "disc-token" not in logs)
    con.close()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
