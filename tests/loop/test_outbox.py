#!/usr/bin/env python3
"""test_outbox.py - the outbox of a `healer server` (contract section 9,
escalation: "each is delivered once") where a send and its record part:

- An email some recipients refuse for now (452) goes to the others at once,
  and later to those only (the same message, the same Message-ID); the
  others never get it twice. Its envelope is the one stored with it (not
  the settings at send time); a row in the old form (the bare message) goes
  to the settings' addresses. A delivery some recipients refused for good
  (550) keeps their text as the notification's last_error and is logged
  at WARN.
- A send that dies with its process (SIGKILL mid-send) has used an attempt:
  the count is made when the row is taken, so a row whose sends keep
  killing the process is given up at the limit; the row sent again after
  such a death is logged at WARN as in doubt, naming it.
- A rate limit (429) uses no attempt: a row at 31 attempts answered 429 forty
  times is still pending, and delivered once the limit ends (a channel that
  limits a row for 24 h since it was enqueued gives it up).
- A row left taken by this process itself (its hold or give-back not
  written) is not logged as in doubt when taken again.
- A result the store refuses past the outbox's retry window (15 s; SQLite
  only: the test holds the write lock until the outbox says it keeps the
  result) is kept in memory and written once the store answers: the
  message is sent once.

Standard library only; prints TAP."""
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402
import pgtest  # noqa: E402

sys.path.insert(0, dtest.STUBS)
from healerproc import Healer, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(dtest.ROOT, "tests", "notify"))
import ntest  # noqa: E402

_, slport = dtest.start_stub("slack_stub.py", "--hook", "T1/B1/slacksecret")
_, dport = dtest.start_stub("discord_stub.py", "--webhook", "111:disc-token")
DURL = f"http://127.0.0.1:{dport}"
SLURL = f"http://127.0.0.1:{slport}"
_, smtp_port, MAILDIR = ntest.start_smtp("--defer", "later@example.com",
                                         "--reject", "gone@example.com")

ENV = {
    "GITHUB_WEBHOOK_SECRET": "outbox-webhook-secret", "GITHUB_API_URL": "http://127.0.0.1:9",
    "HEALER_DISPATCH": "none", "HEALER_LOG_LEVEL": "info", "HEALER_TIME_WINDOW_MINS": "0",
    "HEALER_LOOP_INTERVAL_MS": "100", "HEALER_LEASE_SECONDS": "2",
    "SLACK_WEBHOOK_URL": f"{SLURL}/services/T1/B1/slacksecret",
    "DISCORD_WEBHOOK_URL": f"{DURL}/api/webhooks/111/disc-token",
    "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "HEALER_EMAIL_FROM": "healer@example.com",
    "HEALER_EMAIL_TO": "ops@example.com",
}


def message(mid, to):
    return (f"From: healer@example.com\r\nTo: {to}\r\nSubject: outbox {mid}\r\n"
            f"Message-ID: <{mid}@example.com>\r\n\r\nbody of {mid}\r\n")


def enqueue(data_dir, rows):
    """Writes pending notifications straight into the store, as the loop
    enqueues them: (task, channel, payload[, attempts, sending_by])."""
    con = pgtest.store_db(data_dir)
    now = int(time.time() * 1000)
    for row in rows:
        task, channel, payload = row[:3]
        attempts, sender = (row[3], row[4]) if len(row) > 3 else (0, None)
        con.execute("INSERT INTO notifications (task_id, channel, kind, ref, state, attempts,"
                    " next_ms, payload, created_ms, sending_by)"
                    " VALUES (?, ?, 'escalation', '1', 'pending', ?, ?, ?, ?, ?)",
                    (task, channel, attempts, now, payload, now, sender))
    if hasattr(con, "commit"):  # SQLite; the PostgreSQL client commits each statement
        con.commit()
    con.close()


def row(data_dir, task):
    con = pgtest.store_db(data_dir)
    try:
        r = con.execute("SELECT id, state, attempts, last_error, sending_by, payload"
                        " FROM notifications WHERE task_id = ?", (task,)).fetchone()
    finally:
        con.close()
    return dict(zip(("id", "state", "attempts", "last_error", "sending_by", "payload"), r)) \
        if r else {}


def slack_texts():
    return [m["payload"].get("text") for m in dtest.http("GET", SLURL + "/_stub/messages") or []]


def log_lines(srv):
    with open(os.path.join(srv.data_dir, "server.log"), errors="replace") as f:
        return [json.loads(x) for x in f if x.startswith("{")]


def main():
    srv = Healer(os.path.join(dtest.TMP, "outbox"), ENV).start()

    # ---- an email some recipients refuse for now, others for good ------------------------
    enqueue(srv.data_dir, [
        ("outbox-mail-1", "email", json.dumps({
            "from": "healer@example.com",
            "rcpt": "first@example.com, later@example.com, gone@example.com",
            "message": message("outbox-mail-1", "first@example.com, later@example.com")})),
        ("outbox-mail-2", "email", json.dumps({
            "from": "healer@example.com", "rcpt": "second@example.com, gone@example.com",
            "message": message("outbox-mail-2", "second@example.com")})),
        ("outbox-mail-3", "email", message("outbox-mail-3", "ops@example.com"))])
    first = ntest.wait_mail(MAILDIR, 3, 20)
    r1 = row(srv.data_dir, "outbox-mail-1")
    envs = sorted(tuple(e["rcpt_tos"]) for _, e in first)
    check("452 for one recipient: the others get the email at once, each from the envelope "
          "stored with it; the old form goes to the settings' address",
          envs == [("first@example.com",), ("ops@example.com",), ("second@example.com",)],
          envs)
    check("the one refused for now is still pending, alone, with the reason",
          r1.get("state") == "pending" and r1.get("attempts") == 1
          and json.loads(r1.get("payload") or "{}").get("rcpt") == "later@example.com"
          and "later@example.com (452" in (r1.get("last_error") or ""), r1)
    ntest.wait_mail(MAILDIR, 4, 20)
    time.sleep(1.0)  # a third send would show up by now
    mails = ntest.wait_mail(MAILDIR, 4, 1)
    r1 = row(srv.data_dir, "outbox-mail-1")
    to_later = [raw for raw, e in mails if e["rcpt_tos"] == ["later@example.com"]]
    to_first = [raw for raw, e in mails if "first@example.com" in e["rcpt_tos"]]
    check("the retry goes to that recipient only, the same message (Message-ID); the others "
          "never twice", len(mails) == 4 and len(to_later) == 1 and len(to_first) == 1
          and b"Message-ID: <outbox-mail-1@example.com>" in to_later[0]
          and r1.get("state") == "delivered" and r1.get("attempts") == 2,
          ([e["rcpt_tos"] for _, e in mails], r1))
    r2 = row(srv.data_dir, "outbox-mail-2")
    warned = [x for x in log_lines(srv) if x.get("msg") == "notification sent"
              and x.get("task_id") == "outbox-mail-2"]
    check("550 for one recipient: delivered, its text kept as last_error, logged at WARN",
          r2.get("state") == "delivered" and "gone@example.com (550" in (r2.get("last_error")
                                                                         or "")
          and warned and warned[0].get("level") == "warn", (r2, warned))

    # ---- a send that kills its process has used an attempt --------------------------------
    dtest.http("POST", SLURL + "/_stub/config", {"rules": [
        {"method": "POST", "path": "/services/", "delay_ms": 6000, "times": 1}]})
    enqueue(srv.data_dir, [("outbox-kill-1", "slack", json.dumps({"text": "escalation k1"}))])
    sending = wait_for(lambda: any(r["method"] == "POST" for r in
                                   dtest.http("GET", SLURL + "/_stub/requests") or []), 20, 0.02)
    srv.kill()
    k1 = row(srv.data_dir, "outbox-kill-1")
    check("a send under way has its attempt counted (before the SIGKILL that ends it)",
          sending and k1.get("state") == "pending" and k1.get("attempts") == 1
          and k1.get("sending_by"), k1)
    # a row whose 32nd send (the limit) killed its process too
    enqueue(srv.data_dir, [("outbox-kill-2", "slack", json.dumps({"text": "escalation k2"}),
                            32, "a-dead-sender")])
    srv = Healer(srv.data_dir, ENV).start()
    wait_for(lambda: row(srv.data_dir, "outbox-kill-1").get("state") == "delivered"
             and row(srv.data_dir, "outbox-kill-2").get("state") == "failed", 20)
    time.sleep(6.5)  # the killed request's answer (6 s) and any resend are in by now
    k1, k2 = row(srv.data_dir, "outbox-kill-1"), row(srv.data_dir, "outbox-kill-2")
    doubt = [x for x in log_lines(srv) if x.get("msg", "").startswith("notification in doubt")]
    check("sent again after its sender died: delivered, two attempts, logged at WARN as in "
          "doubt naming the row", k1.get("state") == "delivered" and k1.get("attempts") == 2
          and any(x.get("level") == "warn" and x.get("id") == str(k1["id"]) for x in doubt),
          (k1, doubt))
    check("a row whose sends keep killing the process is given up at the limit, unsent",
          k2.get("state") == "failed" and "escalation k2" not in slack_texts(),
          (k2, slack_texts()))
    dtest.http("POST", SLURL + "/_stub/config", {"rules": []})

    # ---- a rate limit uses no attempt ------------------------------------------------------
    dtest.http("POST", DURL + "/_stub/ratelimit", {"times": 40, "retry_after": 0.05})
    enqueue(srv.data_dir, [("outbox-limit-1", "discord",
                            json.dumps({"content": "escalation l1"}), 31, None)])
    limited = wait_for(lambda: len([r for r in dtest.http("GET", DURL + "/_stub/received")
                                    or [] if r.get("status") == 429]) >= 40, 60, 0.1)
    l1 = row(srv.data_dir, "outbox-limit-1")
    check("40 rate limits (429) on a row at 31 of its 32 attempts: still pending, no "
          "attempt used", limited and l1.get("state") in ("pending", "delivered")
          and l1.get("attempts") in (31, 32), l1)
    wait_for(lambda: row(srv.data_dir, "outbox-limit-1").get("state") != "pending", 20)
    l1 = row(srv.data_dir, "outbox-limit-1")
    msgs = [m["payload"].get("content") for m in dtest.http("GET", DURL + "/_stub/messages")
            or []]
    check("delivered once the limit ends", l1.get("state") == "delivered"
          and msgs.count("escalation l1") == 1, (l1, msgs))

    # ---- a row this process left taken is not in doubt ------------------------------------
    dtest.http("POST", SLURL + "/_stub/config", {"rules": [
        {"method": "POST", "path": "/services/", "delay_ms": 1500, "times": 1}]})
    enqueue(srv.data_dir, [("outbox-own-1", "slack", json.dumps({"text": "escalation o1"}))])
    me = wait_for(lambda: row(srv.data_dir, "outbox-own-1").get("sending_by"), 20, 0.02)
    wait_for(lambda: row(srv.data_dir, "outbox-own-1").get("state") == "delivered", 20)
    # as a held take whose write failed leaves it: taken by this process, no result
    enqueue(srv.data_dir, [("outbox-own-3", "slack", json.dumps({"text": "escalation o3"}),
                            0, me)])
    wait_for(lambda: row(srv.data_dir, "outbox-own-3").get("state") == "delivered", 20)
    o3 = row(srv.data_dir, "outbox-own-3")
    doubt = [x for x in log_lines(srv) if x.get("msg", "").startswith("notification in doubt")
             and x.get("id") == str(o3.get("id"))]
    check("a row left taken by this live process (a hold it did not write) is sent without "
          "an in-doubt WARN", me and o3.get("state") == "delivered" and not doubt,
          (me, o3, doubt))
    dtest.http("POST", SLURL + "/_stub/config", {"rules": []})

    # ---- a result the store refuses past the retry window: sent once ----------------------
    if not pgtest.enabled():
        dtest.http("POST", SLURL + "/_stub/config", {"rules": [
            {"method": "POST", "path": "/services/", "delay_ms": 2000, "times": 1}]})
        n_req = len(dtest.http("GET", SLURL + "/_stub/requests") or [])
        enqueue(srv.data_dir, [("outbox-full-1", "slack",
                                json.dumps({"text": "escalation f1"}))])
        sending = wait_for(lambda: len(dtest.http("GET", SLURL + "/_stub/requests") or [])
                           > n_req, 20, 0.02)
        # the store's write lock, held while Slack answers and past the
        # outbox's 15 s of trying to record the result
        held = sqlite3.connect(os.path.join(srv.data_dir, "healer.db"), timeout=10,
                               isolation_level=None)
        held.execute("BEGIN IMMEDIATE")
        # held until the outbox has given up trying and kept the result
        # (each try waits out the store's busy timeout, and its turn at the
        # store behind the other threads waiting there)
        kept = wait_for(lambda: [x for x in log_lines(srv) if x.get("msg", "").startswith(
            "recording a notification failed; its result is kept")], 90, 0.5)
        held.execute("ROLLBACK")
        held.close()
        wait_for(lambda: row(srv.data_dir, "outbox-full-1").get("state") == "delivered", 20)
        time.sleep(3.0)  # past the lease: a second send would show up by now
        f1 = row(srv.data_dir, "outbox-full-1")
        sent = [t for t in slack_texts() if t == "escalation f1"]
        late = [x for x in log_lines(srv)
                if x.get("msg") == "a notification's result recorded late"]
        check("a message whose result the store refused past the retry window is kept, "
              "sent once, then recorded",
              sending and kept and late and len(sent) == 1 and f1.get("state") == "delivered",
              [len(kept), len(late), len(sent), f1, srv.log_tail()[-800:]])
        dtest.http("POST", SLURL + "/_stub/config", {"rules": []})
    srv.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
