#!/usr/bin/env python3
"""discord_stub.py - a stand-in for Discord's "Execute Webhook" endpoint,
answering as Discord does (developer docs: resources/webhook, message,
topics/rate-limits, opcodes-and-status-codes).

  POST /api/webhooks/{id}/{token}[?wait=true]
    204 No Content; with wait=true 200 and a message object
    400 {"code": 50109, ...} the body is not JSON
    400 {"code": 50006, "message": "Cannot send an empty message"}
    400 {"code": 50035, "message": "Invalid Form Body", "errors": {...}}
        an embed breaks a limit (title 256, description 4096, 25 fields,
        field name 256 / value 1024 and both non-empty, footer 2048,
        author 256, 6000 over all embeds, counted after trimming
        whitespace; content 2000; 10 embeds) - also recorded as a
        violation, which a test must never produce
    401 {"code": 50027, "message": "Invalid Webhook Token"}
    404 {"code": 10015, "message": "Unknown Webhook"}
  Every answer, 2xx included, carries X-RateLimit-Limit/-Remaining/-Reset/
  -Reset-After/-Bucket headers from the webhook's bucket: LIMIT requests per
  window of RESET seconds, the window starting at its first request; a
  request made while the bucket is empty (Remaining was 0 and Reset-After
  has not passed) gets Discord's 429 (retry_after = the rest of the window,
  X-RateLimit-Scope: user) and is not executed. The default bucket (1000
  per second) is wide so tests of other behaviour are not limited; a test
  of the limit narrows it with --bucket or POST /_stub/bucket.

Webhooks: --webhook ID:TOKEN (repeatable) or POST /_stub/webhooks
{"ID": "TOKEN"}. Controls (besides stubcommon's):
  GET  /_stub/messages    payloads accepted, [{webhook, query, payload}]
  GET  /_stub/received    every execute request [{webhook, query, headers, raw, status}]
  GET  /_stub/violations  limit violations seen
  POST /_stub/script      {"answers": [{"status", "body", "headers"}]}: the
                          next requests get these answers, in order (the
                          payload is still validated and recorded)
  POST /_stub/ratelimit   {"times": N, "retry_after": 0.35, "global": false,
                          "retry_after_header": "1"}: the next N requests get
                          Discord's 429 with its headers
  POST /_stub/bucket      {"limit": 1, "reset_after": 1.5}: each webhook's
                          bucket from now on (its count starts afresh)
  POST /_stub/clear       forget messages, received, violations, script
Python standard library only.

usage: discord_stub.py [--webhook ID:TOKEN]... [--bucket LIMIT:SECONDS] [--cert C --key K]
"""
import argparse
import json
import math
import re
import threading
import time

import stubcommon

LOCK = threading.Lock()
STATE = {"webhooks": {}, "messages": [], "received": [], "violations": [], "script": [],
         "next_id": 1000, "bucket": {"limit": 1000, "reset_after": 1.0}, "buckets": {}}

LIMITS = {"title": 256, "description": 4096, "fields": 25, "field.name": 256,
          "field.value": 1024, "footer.text": 2048, "author.name": 256, "total": 6000,
          "content": 2000, "embeds": 10}


def _len(s):
    return len(s.strip()) if isinstance(s, str) else 0


def validate(payload):
    """Returns (code, message, errors, violations) for a bad payload, or None."""
    if not isinstance(payload, dict):
        return 50109, "The request body contains invalid JSON.", {}, []
    content = payload.get("content") or ""
    embeds = payload.get("embeds") or []
    viol = []
    if not isinstance(embeds, list):
        return 50035, "Invalid Form Body", {"embeds": "not a list"}, ["embeds not a list"]
    if not content.strip() and not embeds:
        return 50006, "Cannot send an empty message", {}, []
    if _len(content) > LIMITS["content"]:
        viol.append(f"content {_len(content)} > 2000")
    if len(embeds) > LIMITS["embeds"]:
        viol.append(f"{len(embeds)} embeds > 10")
    total = 0
    for i, e in enumerate(embeds):
        if not isinstance(e, dict):
            viol.append(f"embed {i} not an object")
            continue

        def lim(name, value, key):
            n = _len(value)
            if n > LIMITS[key]:
                viol.append(f"embed {i} {name} {n} > {LIMITS[key]}")
            return n

        total += lim("title", e.get("title"), "title")
        total += lim("description", e.get("description"), "description")
        total += lim("footer.text", (e.get("footer") or {}).get("text"), "footer.text")
        total += lim("author.name", (e.get("author") or {}).get("name"), "author.name")
        fields = e.get("fields") or []
        if len(fields) > LIMITS["fields"]:
            viol.append(f"embed {i} has {len(fields)} fields > 25")
        for j, f in enumerate(fields):
            name, value = f.get("name"), f.get("value")
            if not isinstance(name, str) or not name.strip():
                viol.append(f"embed {i} field {j} name empty")
            if not isinstance(value, str) or not value.strip():
                viol.append(f"embed {i} field {j} value empty")
            total += lim(f"field {j} name", name, "field.name")
            total += lim(f"field {j} value", value, "field.value")
        if e.get("url") is not None and not re.match(r"^https?://\S+$", str(e.get("url"))):
            viol.append(f"embed {i} url not an http(s) url")
    if total > LIMITS["total"]:
        viol.append(f"embeds total {total} > 6000")
    am = payload.get("allowed_mentions")
    if am is not None:
        parse = am.get("parse", []) if isinstance(am, dict) else None
        if not isinstance(parse, list) or any(p not in ("users", "roles", "everyone")
                                              for p in parse):
            viol.append("allowed_mentions.parse invalid")
    if viol:
        errors = {"embeds": {"0": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                                                "message": v} for v in viol]}}}
        return 50035, "Invalid Form Body", errors, viol
    return None


def rl_headers(remaining=4, reset_after=1.0, limit=5):
    now = time.time()
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{now + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": "b6f7c2a9e1d04e3f"}


def bucket_take(wid):
    """Counts a request against webhook wid's bucket (under LOCK): returns
    (allowed, headers) - allowed False when the bucket is empty."""
    now = time.monotonic()
    limit, window = STATE["bucket"]["limit"], STATE["bucket"]["reset_after"]
    b = STATE["buckets"].get(wid)
    if b is None or now >= b["reset_at"]:
        b = STATE["buckets"][wid] = {"remaining": limit, "reset_at": now + window}
    after = max(0.0, b["reset_at"] - now)
    if b["remaining"] <= 0:
        h = rl_headers(0, after, limit)
        h["Retry-After"] = str(max(1, math.ceil(after)))
        h["X-RateLimit-Scope"] = "user"
        return False, h
    b["remaining"] -= 1
    return True, rl_headers(b["remaining"], after, limit)


class DiscordHandler(stubcommon.StubHandler):
    def stub_control(self, path):
        if path == "/_stub/messages":
            with LOCK:
                self.send(200, STATE["messages"])
            return True
        if path == "/_stub/received":
            with LOCK:
                self.send(200, STATE["received"])
            return True
        if path == "/_stub/violations":
            with LOCK:
                self.send(200, STATE["violations"])
            return True
        if self.command != "POST":
            return False
        body = self.body_json() or {}
        with LOCK:
            if path == "/_stub/webhooks":
                STATE["webhooks"].update(body)
            elif path == "/_stub/script":
                STATE["script"].extend(body.get("answers", []))
            elif path == "/_stub/ratelimit":
                ra = float(body.get("retry_after", 0.35))
                headers = rl_headers(0, ra)
                headers["Retry-After"] = str(body.get("retry_after_header",
                                                      max(1, math.ceil(ra))))
                headers["X-RateLimit-Scope"] = "global" if body.get("global") else "user"
                if body.get("global"):
                    headers["X-RateLimit-Global"] = "true"
                for _ in range(int(body.get("times", 1))):
                    STATE["script"].append({
                        "status": 429, "headers": headers,
                        "body": {"message": "You are being rate limited.", "retry_after": ra,
                                 "global": bool(body.get("global"))}})
            elif path == "/_stub/bucket":
                STATE["bucket"] = {"limit": int(body.get("limit", 5)),
                                   "reset_after": float(body.get("reset_after", 2.0))}
                STATE["buckets"] = {}
            elif path == "/_stub/clear":
                for k in ("messages", "received", "violations", "script"):
                    STATE[k] = []
            else:
                return False
        self.send(200, {"ok": True})
        return True

    def route(self, path, q):
        m = re.fullmatch(r"/api/webhooks/(\d+)/([A-Za-z0-9_.-]+)", path)
        raw = self.read_body()
        if not m or self.command != "POST":
            return self.send(404, {"message": "404: Not Found", "code": 0})
        wid, token = m.group(1), m.group(2)
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = ValueError
        with LOCK:
            scripted = STATE["script"].pop(0) if STATE["script"] else None
            allowed, hdrs = bucket_take(wid)
        bad = validate(payload) if payload is not ValueError else (
            50109, "The request body contains invalid JSON.", {}, [])
        if bad and bad[3]:
            with LOCK:
                STATE["violations"].extend(bad[3])
        if not allowed and scripted is None:
            after = float(hdrs["X-RateLimit-Reset-After"])
            status, body, headers = 429, {"message": "You are being rate limited.",
                                          "retry_after": after, "global": False}, None
        else:
            status, body, headers = self.answer(wid, token, q, payload, bad, scripted)
        with LOCK:
            STATE["received"].append({"webhook": wid, "query": q, "status": status,
                                      "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "raw": raw.decode("utf-8", "replace"),
                                      "at": time.time()})
        hdrs.update(headers or {})
        if status == 204:
            self.send_response(204)
            for k, v in hdrs.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self.send(status, body, hdrs)

    def answer(self, wid, token, q, payload, bad, scripted):
        if scripted is not None:
            return scripted.get("status", 200), scripted.get("body"), scripted.get("headers")
        with LOCK:
            known = STATE["webhooks"].get(wid)
        if known is None:
            return 404, {"message": "Unknown Webhook", "code": 10015}, None
        if known != token:
            return 401, {"message": "Invalid Webhook Token", "code": 50027}, None
        if bad:
            body = {"code": bad[0], "message": bad[1]}
            if bad[2]:
                body["errors"] = bad[2]
            return 400, body, None
        with LOCK:
            STATE["next_id"] += 1
            mid = str(STATE["next_id"])
            STATE["messages"].append({"webhook": wid, "query": q, "payload": payload})
        if q.get("wait") == "true":
            return 200, {"id": mid, "type": 0, "channel_id": "1", "webhook_id": wid,
                         "content": payload.get("content", ""),
                         "embeds": payload.get("embeds", [])}, None
        return 204, None, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webhook", action="append", default=[])
    ap.add_argument("--bucket")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    for w in a.webhook:
        wid, token = w.split(":", 1)
        STATE["webhooks"][wid] = token
    if a.bucket:
        limit, secs = a.bucket.split(":", 1)
        STATE["bucket"] = {"limit": int(limit), "reset_after": float(secs)}
    stubcommon.serve(DiscordHandler, 0, a.cert, a.key)
    stubcommon.wait_forever()


if __name__ == "__main__":
    main()
