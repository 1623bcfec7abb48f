#!/usr/bin/env python3
"""slack_stub.py - a stand-in for Slack incoming webhooks, answering as
Slack does: an HTTP status and a plain-text body
(https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks,
Block Kit limits from https://api.slack.com/reference/block-kit/blocks).

  POST /services/{T}/{B}/{secret}
    200 ok
    400 invalid_payload       the body is not a JSON object
    400 no_text               neither text nor blocks
    400 invalid_blocks        a block breaks a limit (50 blocks, header
                              plain_text 150, section text 3000, 10 fields of
                              2000, context 10 elements) - also recorded as a
                              violation, which a test must never produce
    404 no_service            unknown or revoked webhook
    404 channel_not_found, 410 channel_is_archived, 403 action_prohibited
                              when the hook's state says so
  A 429 comes with Retry-After (scripted).

Hooks: --hook T/B/secret (repeatable) or POST /_stub/hooks {"T/B/secret":
"ok" | "channel_is_archived" | "channel_not_found" | "action_prohibited"}.
Controls (besides stubcommon's):
  GET  /_stub/messages    payloads accepted [{hook, payload}]
  GET  /_stub/received    every request [{hook, headers, raw, status}]
  GET  /_stub/violations  limit violations seen
  POST /_stub/script      {"answers": [{"status", "body", "headers"}]}: the
                          next requests get these answers, in order
  POST /_stub/clear       forget messages, received, violations, script
Python standard library only.

usage: slack_stub.py [--hook T/B/secret]...
"""
import argparse
import json
import re
import threading

import stubcommon

LOCK = threading.Lock()
STATE = {"hooks": {}, "messages": [], "received": [], "violations": [], "script": []}
HOOK_STATES = {"ok": None, "channel_is_archived": 410, "channel_not_found": 404,
               "action_prohibited": 403, "invalid_token": 403}


def text_of(obj):
    return obj.get("text") if isinstance(obj, dict) else None


def validate(payload):
    """Returns (error string, violations) for a bad payload, or None."""
    if not isinstance(payload, dict):
        return "invalid_payload", []
    blocks = payload.get("blocks")
    text = payload.get("text")
    if not (isinstance(text, str) and text.strip()) and not blocks:
        return "no_text", []
    viol = []
    if blocks is not None:
        if not isinstance(blocks, list):
            return "invalid_blocks", ["blocks not a list"]
        if len(blocks) > 50:
            viol.append(f"{len(blocks)} blocks > 50")
        for i, b in enumerate(blocks):
            t = b.get("type") if isinstance(b, dict) else None
            if t == "header":
                tt = b.get("text") or {}
                if tt.get("type") != "plain_text":
                    viol.append(f"block {i} header text not plain_text")
                if len(tt.get("text") or "") > 150:
                    viol.append(f"block {i} header {len(tt['text'])} > 150")
            elif t == "section":
                s = text_of(b.get("text"))
                fields = b.get("fields") or []
                if s is None and not fields:
                    viol.append(f"block {i} section without text or fields")
                if s is not None and not 1 <= len(s) <= 3000:
                    viol.append(f"block {i} section text {len(s)} not in 1..3000")
                if len(fields) > 10:
                    viol.append(f"block {i} {len(fields)} fields > 10")
                for j, f in enumerate(fields):
                    ft = text_of(f) or ""
                    if not 1 <= len(ft) <= 2000:
                        viol.append(f"block {i} field {j} {len(ft)} not in 1..2000")
            elif t == "context":
                els = b.get("elements") or []
                if not 1 <= len(els) <= 10:
                    viol.append(f"block {i} context {len(els)} elements")
                for j, e in enumerate(els):
                    et = text_of(e)
                    if et is not None and not 1 <= len(et) <= 3000:
                        viol.append(f"block {i} context element {j} {len(et)}")
            elif t == "divider":
                pass
            else:
                viol.append(f"block {i} unknown type {t!r}")
    if viol:
        return "invalid_blocks", viol
    return None


class SlackHandler(stubcommon.StubHandler):
    def stub_control(self, path):
        if path in ("/_stub/messages", "/_stub/received", "/_stub/violations"):
            with LOCK:
                self.send(200, STATE[path.rsplit("/", 1)[1]])
            return True
        if self.command != "POST":
            return False
        body = self.body_json() or {}
        with LOCK:
            if path == "/_stub/hooks":
                STATE["hooks"].update(body)
            elif path == "/_stub/script":
                STATE["script"].extend(body.get("answers", []))
            elif path == "/_stub/clear":
                for k in ("messages", "received", "violations", "script"):
                    STATE[k] = []
            else:
                return False
        self.send(200, {"ok": True})
        return True

    def text(self, status, body, headers=None):
        self.send(status, body, headers, ctype="text/html")

    def route(self, path, q):
        raw = self.read_body()
        m = re.fullmatch(r"/services/(T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+)", path)
        if not m or self.command != "POST":
            return self.text(404, "no_service")
        hook = m.group(1)
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        with LOCK:
            scripted = STATE["script"].pop(0) if STATE["script"] else None
            hook_state = STATE["hooks"].get(hook)
        bad = validate(payload)
        if bad and bad[1]:
            with LOCK:
                STATE["violations"].extend(bad[1])
        if scripted is not None:
            status, body = scripted.get("status", 200), scripted.get("body", "ok")
            headers = scripted.get("headers")
        elif hook_state is None:
            status, body, headers = 404, "no_service", None
        elif HOOK_STATES.get(hook_state):
            status, body, headers = HOOK_STATES[hook_state], hook_state, None
        elif bad:
            status, body, headers = 400, bad[0], None
        else:
            status, body, headers = 200, "ok", None
            with LOCK:
                STATE["messages"].append({"hook": hook, "payload": payload})
        with LOCK:
            STATE["received"].append({"hook": hook, "status": status,
                                      "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "raw": raw.decode("utf-8", "replace")})
        return self.text(status, body, headers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hook", action="append", default=[])
    a = ap.parse_args()
    for h in a.hook:
        STATE["hooks"][h] = "ok"
    stubcommon.serve(SlackHandler, 0)
    stubcommon.wait_forever()


if __name__ == "__main__":
    main()
