#!/usr/bin/env python3
"""test_notify_limits.py - what a `healer server` sends to people, against
the limits of the services and of the people who can make it send:

- Discord's bucket (contract section 9, escalation "each is delivered
  once"): Discord sends X-RateLimit-Remaining and -Reset-After with every
  answer, and a request made while the bucket is empty gets a 429. Two
  escalations enqueued back to back, with a bucket of one request per
  window, must both be delivered once and neither earn a 429; a Slack
  message enqueued with them is not held back by Discord's wait.
  A 429 holds Discord only: a Slack message due with it is not kept
  waiting behind the wait Discord named.
- GitHub's token budget (apis.md, rate limits): GitHub sends
  X-RateLimit-Remaining and -Reset with every answer, and refuses (403,
  Remaining 0) every request before the reset once it is 0. Two PR comments
  enqueued back to back with a budget of one comment per window are both
  delivered once, and no request is refused: the second waits for the
  reset.
- Refusals (contract section 9, commands: "others get a reply saying so"):
  twenty `/healer` commands from one author outside
  HEALER_COMMAND_ASSOCIATIONS on one PR get one reply, another author gets
  their own, and the limit holds across a restart.
- A message delivered while the store refuses to record it (its write lock
  held for 17 s) is sent once: the result is recorded again until it
  takes, under the message's lock (SQLite only: the test holds the lock).

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
from healerproc import TIME_SCALE, Healer, wait_for  # noqa: E402

SECRET = "limits-webhook-secret"
GTOKEN = "ghs_limits_token_value"
REPO = "acme/limits"
WINDOW_S = 2.0  # the Discord stand-in's bucket: one request per window
GH_WINDOW_S = 3  # the GitHub stand-in's budget window in the token-budget check

_, dport = dtest.start_stub("discord_stub.py", "--webhook", "111:disc-token",
                            "--bucket", f"1:{WINDOW_S}")
DURL = f"http://127.0.0.1:{dport}"
_, slport = dtest.start_stub("slack_stub.py", "--hook", "T1/B1/slacksecret")
SLURL = f"http://127.0.0.1:{slport}"
_, gport = dtest.start_stub("github_stub.py", "--token", GTOKEN)
GURL = f"http://127.0.0.1:{gport}"

ENV = {
    "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": GURL, "GITHUB_TOKEN": GTOKEN,
    "HEALER_DISPATCH": "none", "HEALER_LOG_LEVEL": "info", "HEALER_TIME_WINDOW_MINS": "0",
    "HEALER_LOOP_INTERVAL_MS": "100",
    "DISCORD_WEBHOOK_URL": f"{DURL}/api/webhooks/111/disc-token",
    "SLACK_WEBHOOK_URL": f"{SLURL}/services/T1/B1/slacksecret",
}


def comment_event(comment_id, pr, body, login, association="NONE"):
    return {"action": "created",
            "issue": {"number": pr, "title": "Limits",
                      "pull_request": {"url": f"https://api.github.com/repos/{REPO}/pulls/{pr}"}},
            "comment": {"id": comment_id, "body": body, "author_association": association,
                        "user": {"login": login, "type": "User"}},
            "repository": {"full_name": REPO, "default_branch": "main"},
            "sender": {"login": login, "type": "User"}}


def enqueue(data_dir, rows, ahead_ms=0):
    """Writes pending notifications straight into the store, as an
    escalation enqueues them (one per channel); ahead_ms makes them due
    that much earlier (the outbox sends the oldest due first)."""
    con = pgtest.store_db(data_dir)
    now = int(time.time() * 1000) - ahead_ms
    for task, channel, payload in rows:
        con.execute("INSERT INTO notifications (task_id, channel, kind, ref, state, attempts,"
                    " next_ms, payload, created_ms)"
                    " VALUES (?, ?, 'escalation', '1', 'pending', 0, ?, ?, ?)",
                    (task, channel, now, payload, now))
    if hasattr(con, "commit"):  # SQLite; the PostgreSQL client commits each statement
        con.commit()
    con.close()


def main():
    srv = Healer(os.path.join(dtest.TMP, "limits"), ENV).start()

    # ---- Discord's bucket: two escalations back to back ---------------------------------
    disc = [json.dumps({"content": f"escalation {i}", "allowed_mentions": {"parse": []}})
            for i in range(2)]
    enqueue(srv.data_dir, [("limits-task-1", "discord", disc[0]),
                           ("limits-task-2", "discord", disc[1]),
                           ("limits-task-1", "slack", json.dumps({"text": "escalation s"}))])
    msgs = wait_for(lambda: len(dtest.http("GET", DURL + "/_stub/messages")) >= 2
                    and dtest.http("GET", DURL + "/_stub/messages"), 20) or []
    slack = dtest.http("GET", SLURL + "/_stub/messages") or []
    time.sleep(0.5)  # a message sent twice would show up by now
    msgs = dtest.http("GET", DURL + "/_stub/messages") or []
    received = dtest.http("GET", DURL + "/_stub/received") or []
    check("two Discord escalations back to back are both delivered, each once",
          sorted(m["payload"]["content"] for m in msgs) == ["escalation 0", "escalation 1"],
          msgs)
    check("no request to Discord is made while its bucket is empty (no 429)",
          [r["status"] for r in received] == [200, 200], [(r["status"], r["at"])
                                                          for r in received])
    check("the second waits for the bucket's reset (X-RateLimit-Reset-After)",
          len(received) == 2 and received[1]["at"] - received[0]["at"] >= WINDOW_S - 0.3,
          [r["at"] for r in received])
    check("a Slack message enqueued with them is not held by Discord's wait",
          len(slack) == 1, slack)

    # ---- a 429 holds its channel, not the outbox: Slack is not kept waiting ---------------
    time.sleep(WINDOW_S)  # Discord's bucket has refilled
    dtest.http("POST", DURL + "/_stub/clear", {})
    # the wait Discord names (6 s, 10 s under the sanitizers) stays well above
    # the bound on Slack's "at once" below (4 s, 8 s): a Slack message held
    # behind Discord's wait would take all of it
    ra = int(4 + 2 * TIME_SCALE)
    dtest.http("POST", DURL + "/_stub/ratelimit", {"times": 1, "retry_after": float(ra),
                                                   "retry_after_header": str(ra)})
    enqueue(srv.data_dir, [("limits-task-3", "discord", json.dumps(
        {"content": "escalation 3", "allowed_mentions": {"parse": []}}))], ahead_ms=50)
    enqueue(srv.data_dir, [("limits-task-3", "slack", json.dumps({"text": "escalation s3"}))])
    t0 = time.time()
    wait_for(lambda: len(dtest.http("GET", SLURL + "/_stub/messages") or []) >= 2, 15)
    slack_at = time.time()
    msgs = wait_for(lambda: dtest.http("GET", DURL + "/_stub/messages"), 15 + ra) or []
    received = dtest.http("GET", DURL + "/_stub/received") or []
    first = received[0]["at"] if received else t0
    check(f"a Discord 429 (retry_after {ra} s) holds Discord only: the Slack message due with "
          "it goes at once, not after the wait", slack_at - first < 2 + 2 * TIME_SCALE,
          [round(slack_at - first, 2), [r["status"] for r in received]])
    check("the Discord message goes once after the wait it named",
          [r["status"] for r in received] == [429, 200] and len(msgs) == 1
          and received[1]["at"] - received[0]["at"] >= ra - 0.1, [(r["status"], r["at"])
                                                             for r in received])

    # ---- GitHub's token budget: two PR comments back to back ----------------------------
    # every comment costs two requests (the marker look-up, then the POST):
    # a budget of two per window is one comment per window, and the answer
    # to the first comment's POST says X-RateLimit-Remaining 0
    dtest.http("POST", GURL + "/_stub/budget", {"limit": 2, "window": GH_WINDOW_S})
    dtest.http("POST", GURL + "/_stub/reset", {})
    enqueue(srv.data_dir, [(f"limits-task-g{i}", "github", json.dumps(
        {"repo": REPO, "number": 601,
         "body": f"escalation g{i}\n<!-- healer:{i:032x} -->"})) for i in range(2)])

    def on_601():
        return [c for c in dtest.http("GET", GURL + "/_stub/comments") or []
                if c["issue"] == 601]
    wait_for(lambda: len(on_601()) >= 2, 30)
    time.sleep(0.5)  # a comment posted twice would show up by now
    got = on_601()
    refused = dtest.http("GET", GURL + "/_stub/refused") or []
    posts = [r["time"] for r in dtest.http("GET", GURL + "/_stub/requests") or []
             if r["method"] == "POST" and r["path"].endswith("/issues/601/comments")]
    check("two PR comments back to back with a spent token budget are both delivered, "
          "each once", sorted(c["body"].split("\n")[0] for c in got)
          == ["escalation g0", "escalation g1"], [c["body"][:40] for c in got])
    check("no request to GitHub is made while the token's budget is spent (no 403)",
          refused == [], refused)
    check("the second comment waits for the budget's reset (X-RateLimit-Reset)",
          len(posts) == 2 and posts[1] - posts[0] >= GH_WINDOW_S - 1.5, posts)
    dtest.http("POST", GURL + "/_stub/budget", {"limit": 5000, "window": 3600})

    # ---- refusals: one reply per author and PR ------------------------------------------
    # a record older than the hour, and another key: a new reply removes the first only
    old_ms = int(time.time() * 1000) - 2 * 3600 * 1000
    dtest.store_exec(srv.data_dir, "INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, ?)",
                     ("refusal:acme/old#1:gone", str(old_ms), old_ms))
    dtest.store_exec(srv.data_dir, "INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, ?)",
                     ("refusals-kept", "x", old_ms))
    for i in range(20):
        srv.deliver(comment_event(9100 + i, 501, "/healer status", "drive-by"),
                    event="issue_comment")
    srv.deliver(comment_event(9200, 501, "/healer fix please", "another-one"),
                event="issue_comment")

    def replies():
        return [c for c in dtest.http("GET", GURL + "/_stub/comments") or []
                if c["issue"] == 501]
    wait_for(lambda: len(replies()) >= 2, 20)
    time.sleep(1.5)  # every delivery handled and every reply sent by now
    got = replies()
    by = sorted(("drive-by" in c["body"], "another-one" in c["body"]) for c in got)
    check("20 refused commands of one author on a PR get one reply; another author "
          "gets their own", by == [(False, True), (True, False)],
          [c["body"][:120] for c in got])
    log = srv.log_tail()
    check("the refusals not answered are logged", "refusal reply suppressed" in log,
          log[-1500:])
    con = dtest.store_db(srv.data_dir)
    try:
        keys = sorted(r[0] for r in con.execute("SELECT key FROM kv WHERE key LIKE 'refusal%'")
                      .fetchall())
    finally:
        con.close()
    check("a reply removes the refusal records older than the hour, and nothing else",
          keys == ["refusal:acme/limits#501:another-one", "refusal:acme/limits#501:drive-by",
                   "refusals-kept"], keys)
    srv.stop()
    srv = Healer(srv.data_dir, ENV).start()
    srv.deliver(comment_event(9300, 501, "/healer retry", "Drive-By"), event="issue_comment")
    srv.deliver(comment_event(9301, 502, "/healer retry", "drive-by"), event="issue_comment")
    wait_for(lambda: any(c["issue"] == 502 for c in dtest.http("GET", GURL + "/_stub/comments")),
             20)
    time.sleep(1.0)
    got = replies()
    other = [c for c in dtest.http("GET", GURL + "/_stub/comments") if c["issue"] == 502]
    check("after a restart the author is still not answered again on that PR "
          "(names compared without case), but is on another PR",
          len(got) == 2 and len(other) == 1, [len(got), len(other)])

    # ---- a message delivered while the store refuses to record it: sent once ----------
    # (the result's write failed once, was only logged, and the message, still
    # due, was sent again by the next pass)
    if not pgtest.enabled():
        dtest.http("POST", SLURL + "/_stub/reset", {})
        dtest.http("POST", SLURL + "/_stub/config", {"rules": [
            {"method": "POST", "path": "/services/", "delay_ms": 2000, "times": 1}]})
        enqueue(srv.data_dir, [("limits-task-9", "slack", json.dumps({"text": "escalation 9"}))])
        sending = wait_for(lambda: any(r["method"] == "POST" for r in
                                       dtest.http("GET", SLURL + "/_stub/requests") or []), 20,
                           0.02)
        # the store's write lock, held while Slack answers and past three of
        # healer's 5 s busy waits in a row (the result's write waits its turn
        # behind the other writers)
        held = sqlite3.connect(os.path.join(srv.data_dir, "healer.db"), timeout=10,
                               isolation_level=None)
        held.execute("BEGIN IMMEDIATE")
        time.sleep(17.0)
        held.execute("ROLLBACK")
        held.close()

        def state():
            con = dtest.store_db(srv.data_dir)
            try:
                row = con.execute("SELECT state FROM notifications"
                                  " WHERE task_id = 'limits-task-9'").fetchone()
            finally:
                con.close()
            return row[0] if row else None
        wait_for(lambda: state() == "delivered", 20)
        time.sleep(1.5)  # a second send would show up by now
        msgs = [m for m in dtest.http("GET", SLURL + "/_stub/messages") or []
                if "escalation 9" in json.dumps(m)]
        check("a message delivered while the store refused its result for 17 s is sent once",
              sending and len(msgs) == 1 and state() == "delivered",
              [len(msgs), state(), srv.log_tail()[-800:]])
        dtest.http("POST", SLURL + "/_stub/config", {"rules": []})
    srv.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
