#!/usr/bin/env python3
"""test_webhooks.py - the Discord and Slack senders (src/notify) against
the stand-ins tests/stubs/discord_stub.py and slack_stub.py: the design's
escalation as an embed and as blocks, limits and hostile text as the
services see them, and every result class: delivered, retry later with the
service's wait (429 retry_after / Retry-After, 5xx, timeouts, refused
connections) and permanent failures (Discord's JSON codes, Slack's error
strings, malformed URLs). Webhook tokens never appear in a result."""
import json

from ntest import (check, finish, hostile_report, http, make_ca, probe, refused_port,
                   start_stub, stop)

WID, WTOKEN = "112233445566778899", "sEcReT-ToKeN_abc.def"
_, dport = start_stub("discord_stub.py", "--webhook", f"{WID}:{WTOKEN}")
dbase = f"http://127.0.0.1:{dport}"
DURL = f"{dbase}/api/webhooks/{WID}/{WTOKEN}"
HOOK = "T0001/B0002/SlAcKsEcReT99"
_, sport = start_stub("slack_stub.py", "--hook", HOOK)
sbase = f"http://127.0.0.1:{sport}"
SURL = f"{sbase}/services/{HOOK}"


def dc(path, body=None):
    return http("POST" if body is not None else "GET", f"{dbase}/_stub/{path}", body)


def sl(path, body=None):
    return http("POST" if body is not None else "GET", f"{sbase}/_stub/{path}", body)


def send(channel, url, report=None, env=None, raw=None):
    if raw is not None:
        rc, out, err = probe("send-raw", channel, url, stdin=raw, env=env)
    else:
        rc, out, err = probe("send", channel, url, report=report, env=env)
    return out if rc == 0 and isinstance(out, dict) else {"rc": rc, "out": out, "err": err}


def strings(v):
    """Every string inside a JSON value."""
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [s for x in v.values() for s in strings(x)]
    if isinstance(v, list):
        return [s for x in v for s in strings(x)]
    return []


def no_secret(res, *secrets):
    text = json.dumps(res)
    return not any(s in text for s in secrets)


# ---- Discord: the design's escalation ----
res = send("discord", DURL)
msgs = dc("messages")
check("discord: delivered (200 with wait=true)",
      res.get("result") == "delivered" and res.get("code") == 200 and res.get("error") == "",
      res)
check("discord: one message, asked with wait=true",
      len(msgs) == 1 and msgs[0]["query"].get("wait") == "true", msgs)
p = msgs[0]["payload"] if msgs else {}
e = (p.get("embeds") or [{}])[0]
fields = {f["name"]: f["value"] for f in e.get("fields", [])}
check("discord: mentions are off", p.get("allowed_mentions") == {"parse": []}, p)
check("discord: title, red colour, timestamp, footer",
      e.get("title", "").endswith("CI Remediation Failed: 5dlabs/cto")
      and e.get("color") == 0xE74C3C and e.get("timestamp", "").startswith("2025-11-24T16:00")
      and e.get("footer", {}).get("text", "") == "healer \u00b7 task ci-9876543210-clippy", e)
check("discord: fields as the design shows",
      fields.get("Repository") == "5dlabs/cto" and fields.get("Workflow") == "Controller CI"
      and fields.get("Job") == "clippy" and fields.get("Branch") == "feat/new-feature"
      and fields.get("Failure Type") == "rust\\_clippy", fields)
check("discord: PR, attempts and agents tried",
      fields.get("PR") == "[#1234](https://github.com/5dlabs/cto/pull/1234)"
      and fields.get("Attempts") == "3 (max 3)"
      and fields.get("Agents Tried") == "Rex (2x), Atlas (1x)", fields)
d = e.get("description", "")
check("discord: one summary line per attempt",
      "\n1. Rex: CI still failing - Fixed clippy lint, but new test failure appeared" in d
      and "\n2. Rex: CI still failing - Fixed test, but introduced new clippy error" in d
      and "\n3. Atlas: agent failed - Tried general fix approach, still failing" in d, d)
check("discord: the current failure in a code block, backticks broken",
      "```\nerror\\[E0382\\]" not in d
      and "```\nerror[E0382]: borrow of moved value: `\u200bconfig`\u200b\n```" in d, d)
check("discord: points to the PR",
      "Please investigate: https://github.com/5dlabs/cto/pull/1234" in d, d)
check("discord: no limit violation seen by the stand-in", dc("violations") == [],
      dc("violations"))
dc("clear", {})
res = send("discord", DURL + "?thread_id=42")
msgs = dc("messages")
check("discord: a thread_id query is kept and wait=true added",
      res.get("result") == "delivered" and msgs
      and msgs[0]["query"] == {"thread_id": "42", "wait": "true"}, (res, msgs))
res = send("discord", DURL + "?wait=false")
check("discord: a URL naming wait itself is left alone; 204 is delivered",
      res.get("result") == "delivered" and res.get("code") == 204
      and dc("messages")[-1]["query"] == {"wait": "false"}, res)

# ---- Discord: hostile and huge text ----
dc("clear", {})
for scale in (1, 60):
    res = send("discord", DURL, report=hostile_report(scale))
    check(f"discord: hostile report x{scale} delivered", res.get("result") == "delivered", res)
viol = dc("violations")
check("discord: huge hostile reports stay within every embed limit", viol == [], viol)
msgs = dc("messages")
raw = "\n".join(strings([m["payload"] for m in msgs]))
# the Markdown Discord renders (the footer is plain text), outside code blocks
md = "\n".join(x for m in msgs for e in m["payload"]["embeds"]
               for x in [e["title"], e["description"]]
               + [f[k] for f in e["fields"] for k in ("name", "value")])
outside = "".join(md.split("```")[0::2])
e = msgs[-1]["payload"]["embeds"][0] if msgs else {}
total = sum(len(x.strip()) for x in [e.get("title", ""), e.get("description", ""),
                                     e.get("footer", {}).get("text", "")]
            + [f["name"] for f in e.get("fields", [])] + [f["value"] for f in e.get("fields", [])])
check("discord: the huge embed uses the budget but stays under 6000",
      4000 < total <= 6000 and len(e.get("description", "")) <= 4096, total)
check("discord: cut text ends with the marker", "\u2026" in e.get("description", ""),
      e.get("description", "")[-200:])
check("discord: no @everyone/@here survives (zero-width space after @)",
      "@everyone" not in raw and "@here" not in raw and "@\u200beveryone" in raw, raw[:300])
check("discord: no mention, link or markup syntax survives outside code blocks",
      "<@" not in outside.replace("\\<@", "") and "<#" not in outside.replace("\\<\\#", "")
      and "](javascript" not in outside and "**bold**" not in outside
      and "\\<@\u200bU123\\>" in outside
      and "\\[click\\]\\(javascript:alert\\(1\\)\\)" in outside, outside[:500])
check("discord: no bidi override or raw CR survives",
      "\u202e" not in raw and "\r" not in raw, "")
check("discord: code blocks hold no fence from the input",
      raw.count("```") % 2 == 0 and "``\u200b`" not in raw.replace("`\u200b", ""), "")

# ---- Discord: results ----
dc("clear", {})
dc("ratelimit", {"times": 1, "retry_after": 0.35, "retry_after_header": "1"})
res = send("discord", DURL, env={"NOTIFY_TIMEOUT_MS": "5000"})
rec = dc("received")
check("discord: a 429 whose wait fits in the timeout is waited out, then delivered",
      res.get("result") == "delivered" and len(rec) == 2 and rec[0]["status"] == 429
      and res.get("elapsed_ms", 0) >= 900, (res, [r["status"] for r in rec]))

dc("clear", {})
dc("ratelimit", {"times": 1, "retry_after": 0.35, "retry_after_header": "1"})
res = send("discord", DURL, env={"NOTIFY_TIMEOUT_MS": "5000", "NOTIFY_NO_RATE_WAIT": "1"})
check("discord: with no_rate_wait (the outbox) a 429 that would fit is answered at once",
      res.get("result") == "retry" and res.get("error") == "rate_limited"
      and res.get("retry_after_ms") == 350 and len(dc("received")) == 1
      and res.get("elapsed_ms", 9999) < 900, res)

dc("clear", {})
dc("ratelimit", {"times": 5, "retry_after": 0.35, "retry_after_header": "1"})
res = send("discord", DURL, env={"NOTIFY_TIMEOUT_MS": "800"})
check("discord: 429 -> retry with retry_after from the JSON body (0.35 s = 350 ms)",
      res.get("result") == "retry" and res.get("code") == 429
      and res.get("error") == "rate_limited" and res.get("retry_after_ms") == 350, res)
check("discord: 429 answered at once, not waited past the timeout",
      len(dc("received")) == 1 and res.get("elapsed_ms", 9999) < 800, res)

dc("clear", {})
dc("ratelimit", {"times": 1, "retry_after": 64.57, "global": True})
res = send("discord", DURL, env={"NOTIFY_TIMEOUT_MS": "2000"})
check("discord: a global 429 of 64.57 s -> retry after 64570 ms",
      res.get("result") == "retry" and res.get("retry_after_ms") == 64570
      and "global" in res.get("message", ""), res)

dc("clear", {})
dc("script", {"answers": [{"status": 400, "body": {"code": 50006,
                                                   "message": "Cannot send an empty message"}}]})
res = send("discord", DURL)
check("discord: 400 code 50006 -> failed discord_50006",
      res.get("result") == "failed" and res.get("code") == 400
      and res.get("error") == "discord_50006" and "empty message" in res.get("message", ""),
      res)
res = send("discord", f"{dbase}/api/webhooks/999/{WTOKEN}")
check("discord: deleted webhook -> 404 failed discord_10015 (Unknown Webhook)",
      res.get("result") == "failed" and res.get("code") == 404
      and res.get("error") == "discord_10015" and "Unknown Webhook" in res.get("message", ""),
      res)
check("discord: the result names no webhook token or id", no_secret(res, WTOKEN, "/999/"), res)
res = send("discord", f"{dbase}/api/webhooks/{WID}/wrong-token-123")
check("discord: wrong token -> 401 failed discord_50027",
      res.get("result") == "failed" and res.get("code") == 401
      and res.get("error") == "discord_50027" and no_secret(res, "wrong-token-123"), res)
res = send("discord", DURL, raw="{")
check("discord: invalid JSON -> 400 failed discord_50109",
      res.get("result") == "failed" and res.get("error") == "discord_50109", res)
res = send("discord", DURL, raw="{}")
check("discord: an empty message -> 400 failed discord_50006",
      res.get("result") == "failed" and res.get("error") == "discord_50006", res)
dc("clear", {})
dc("script", {"answers": [{"status": 500, "body": {"message": "500: Internal Server Error",
                                                   "code": 0}}]})
res = send("discord", DURL)
check("discord: 5xx -> retry server_error, the POST made once",
      res.get("result") == "retry" and res.get("code") == 500
      and res.get("error") == "server_error" and len(dc("received")) == 1, res)
dc("script", {"answers": [{"status": 502, "body": "<html>bad gateway</html>",
                           "headers": {"Retry-After": "7"}}]})
res = send("discord", DURL)
check("discord: 502 with Retry-After -> retry after 7000 ms",
      res.get("result") == "retry" and res.get("retry_after_ms") == 7000, res)

# Discord's bucket headers come with every answer: a delivery that leaves it
# empty (X-RateLimit-Remaining 0) tells how long the next request would get a 429
dc("clear", {})
dc("bucket", {"limit": 2, "reset_after": 1.5})
res = send("discord", DURL)
check("discord: a delivery leaving requests in the bucket -> no hold",
      res.get("result") == "delivered" and res.get("hold_ms") == 0, res)
res = send("discord", DURL)
check("discord: a delivery with X-RateLimit-Remaining 0 -> hold until Reset-After",
      res.get("result") == "delivered" and 500 <= res.get("hold_ms", 0) <= 1500, res)
res = send("discord", DURL, env={"NOTIFY_TIMEOUT_MS": "500"})
check("discord: the stand-in answers 429 to a request inside that hold (not executed)",
      res.get("result") == "retry" and res.get("error") == "rate_limited"
      and 0 < res.get("hold_ms", 0) <= 1500 and len(dc("messages")) == 2, res)
dc("bucket", {"limit": 1, "reset_after": 86400 * 365})
res = send("discord", DURL)
check("discord: an absurd Reset-After (a year) -> a hold of at most 60 s",
      res.get("result") == "delivered" and res.get("hold_ms") == 60000, res)
dc("bucket", {"limit": 1000, "reset_after": 1.0})

http("POST", f"{dbase}/_stub/config",
     {"rules": [{"method": "POST", "path": "/api/webhooks/", "delay_ms": 3000, "times": 1}]})
res = send("discord", DURL, env={"NOTIFY_TIMEOUT_MS": "500"})
check("discord: no answer within the timeout -> retry timeout",
      res.get("result") == "retry" and res.get("error") == "timeout" and res.get("code") == 0
      and no_secret(res, WTOKEN, WID), res)
http("POST", f"{dbase}/_stub/config", {"rules": []})
dead = refused_port()
res = send("discord", f"http://127.0.0.1:{dead}/api/webhooks/{WID}/{WTOKEN}")
check("discord: connection refused -> retry connect, no token in the message",
      res.get("result") == "retry" and res.get("error") == "connect"
      and f"127.0.0.1:{dead}" in res.get("message", "") and no_secret(res, WTOKEN, WID), res)
for bad in ("not a url", "ftp://discord.com/api/webhooks/1/x", "http://", "",
            "https://user:pw@[::1/api/webhooks/1/tok"):
    res = send("discord", bad)
    check(f"discord: malformed url {bad!r} -> failed bad_url",
          res.get("result") == "failed" and res.get("error") == "bad_url"
          and no_secret(res, "pw@", "/tok"), res)

ca = make_ca("discord-tls")
tp, tport = start_stub("discord_stub.py", "--webhook", f"{WID}:{WTOKEN}", "--cert", ca["cert"],
                       "--key", ca["key"])
turl = f"https://127.0.0.1:{tport}/api/webhooks/{WID}/{WTOKEN}"
res = send("discord", turl, env={"NOTIFY_CA_FILE": ca["ca"]})
check("discord: https with the given CA -> delivered", res.get("result") == "delivered", res)
res = send("discord", turl)
check("discord: https with an unknown CA -> failed tls",
      res.get("result") == "failed" and res.get("error") == "tls" and no_secret(res, WTOKEN),
      res)
stop(tp)

# ---- Slack: the design's escalation ----
res = send("slack", SURL)
msgs = sl("messages")
check("slack: delivered (200 ok)",
      res.get("result") == "delivered" and res.get("code") == 200, res)
p = msgs[0]["payload"] if msgs else {}
blocks = p.get("blocks", [])
types = [b.get("type") for b in blocks]
check("slack: header, sections, context blocks and a text fallback",
      types[:3] == ["header", "section", "section"] and types[-1] == "context"
      and "CI remediation failed after 3 attempts: 5dlabs/cto Controller CI on "
          "feat/new-feature" == p.get("text"), p)
fields = [f["text"] for b in blocks for f in b.get("fields", [])]
check("slack: fields (workflow, branch, PR link, attempts, agents)",
      "*Workflow*\nController CI" in fields and "*Branch*\nfeat/new-feature" in fields
      and "*PR*\n<https://github.com/5dlabs/cto/pull/1234|#1234>" in fields
      and "*Attempts*\n3 (max 3)" in fields and "*Agents tried*\nRex (2x), Atlas (1x)" in fields,
      fields)
texts = [b.get("text", {}).get("text", "") for b in blocks]
check("slack: summary lines and the current failure fenced",
      any("\n1. Rex: CI still failing - Fixed clippy lint" in t for t in texts)
      and any("```error[E0382]: borrow of moved value: `\u200bconfig`\u200b```" in t
              for t in texts), texts)
check("slack: context links to the run and the task page",
      "<https://github.com/5dlabs/cto/actions/runs/9876543210|workflow run>"
      in blocks[-1]["elements"][0]["text"], blocks[-1])

sl("clear", {})
for scale in (1, 60):
    res = send("slack", SURL, report=hostile_report(scale))
    check(f"slack: hostile report x{scale} delivered", res.get("result") == "delivered", res)
viol = sl("violations")
check("slack: huge hostile reports stay within every block limit", viol == [], viol)
msgs = sl("messages")
raw = "\n".join(strings([m["payload"] for m in msgs]))
stripped = raw
for link in ("<https://github.com/5dlabs/cto/pull/1234|",
             "<https://github.com/5dlabs/cto/actions/runs/9876543210|",
             "<http://healer.example.com/api/remediations/ci-9876543210-clippy|",
             "<https://github.com/5dlabs/cto/pull/1234>"):
    stripped = stripped.replace(link, "")
check("slack: untrusted & < > arrive escaped; no <!channel> or <@U123>",
      "<!channel>" not in raw and "<@U123>" not in raw and "&lt;!channel&gt;" in raw
      and "&amp;amp;" in raw and "<" not in stripped.replace("|workflow run>", ""), stripped[:400])
check("slack: no @here/@everyone survives", "@here" not in raw and "@everyone" not in raw, "")
big = msgs[-1]["payload"] if msgs else {}
check("slack: the huge message's section texts are cut with the marker, within 3000",
      all(len(b.get("text", {}).get("text", "")) <= 3000 for b in big.get("blocks", []))
      and any("\u2026" in b.get("text", {}).get("text", "") for b in big.get("blocks", [])),
      [len(b.get("text", {}).get("text", "")) for b in big.get("blocks", [])])

# ---- Slack: results ----
sl("clear", {})
sl("script", {"answers": [{"status": 429, "body": "rate_limited",
                           "headers": {"Retry-After": "30"}}]})
res = send("slack", SURL, env={"NOTIFY_TIMEOUT_MS": "2000"})
check("slack: 429 -> retry with Retry-After (30 s = 30000 ms)",
      res.get("result") == "retry" and res.get("code") == 429
      and res.get("error") == "rate_limited" and res.get("retry_after_ms") == 30000
      and len(sl("received")) == 1, res)
sl("clear", {})
sl("script", {"answers": [{"status": 429, "body": "rate_limited",
                           "headers": {"Retry-After": "1"}}]})
res = send("slack", SURL, env={"NOTIFY_TIMEOUT_MS": "5000"})
check("slack: a 429 of 1 s within the timeout is waited out, then delivered",
      res.get("result") == "delivered" and len(sl("received")) == 2, res)
res = send("slack", SURL, raw="not json")
check("slack: a body that is not JSON -> failed invalid_payload",
      res.get("result") == "failed" and res.get("code") == 400
      and res.get("error") == "invalid_payload", res)
res = send("slack", SURL, raw="{}")
check("slack: neither text nor blocks -> failed no_text",
      res.get("result") == "failed" and res.get("error") == "no_text", res)
res = send("slack", SURL, raw=json.dumps({"text": "x", "blocks": [
    {"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}]}))
check("slack: a section over 3000 -> failed invalid_blocks",
      res.get("result") == "failed" and res.get("error") == "invalid_blocks", res)
sl("clear", {})  # that payload was a deliberate violation
res = send("slack", f"{sbase}/services/T0001/B0002/RevokedSecret1")
check("slack: unknown or revoked webhook -> 404 failed no_service",
      res.get("result") == "failed" and res.get("code") == 404
      and res.get("error") == "no_service" and no_secret(res, "RevokedSecret1", "B0002"), res)
for state, code in (("channel_is_archived", 410), ("channel_not_found", 404),
                    ("action_prohibited", 403)):
    sl("hooks", {HOOK: state})
    res = send("slack", SURL)
    check(f"slack: {code} {state} -> failed {state}",
          res.get("result") == "failed" and res.get("code") == code
          and res.get("error") == state and no_secret(res, "SlAcKsEcReT99"), res)
sl("hooks", {HOOK: "ok"})
sl("script", {"answers": [{"status": 403, "body": "invalid_token"}]})
res = send("slack", SURL)
check("slack: 403 invalid_token -> failed invalid_token",
      res.get("result") == "failed" and res.get("error") == "invalid_token", res)
sl("script", {"answers": [{"status": 500, "body": "rollup_error"}]})
res = send("slack", SURL)
check("slack: 500 rollup_error -> retry rollup_error",
      res.get("result") == "retry" and res.get("code") == 500
      and res.get("error") == "rollup_error", res)
res = send("slack", f"http://127.0.0.1:{dead}/services/{HOOK}")
check("slack: connection refused -> retry connect",
      res.get("result") == "retry" and res.get("error") == "connect"
      and no_secret(res, "SlAcKsEcReT99"), res)
res = send("slack", "hooks.slack.com/services/T/B/x")
check("slack: a url without scheme -> failed bad_url",
      res.get("result") == "failed" and res.get("error") == "bad_url"
      and no_secret(res, "T/B/x"), res)
check("slack: no limit violation in the messages healer built", sl("violations") == [],
      sl("violations"))

finish()
