#!/usr/bin/env python3
"""openmemory_stub.py - a stand-in for OpenMemory's REST server, following
the real server's behaviour (CaviraOSS/OpenMemory packages/openmemory-js,
research notes section 14), not its docs:

  auth        x-api-key: <key> (or Authorization: Bearer <key>); missing
              -> 401 {"error":"unauthorized"}, wrong -> 403
              {"error":"forbidden"}. The tenant is the first 16 hex digits of
              SHA-256(key); a user_id (body or filters) that is not the
              tenant -> 403 {"error":"tenant_mismatch"}
  POST /memory/add        content (1-200000 chars, required), tags (<= 64
              strings), metadata (object), user_id -> {id, primary_sector,
              sectors, deduplicated?}; identical content is merged: the
              first memory's id with deduplicated: true (its salience grows)
  POST /memory/query      query (required, <= 8192), k (1-200, default 8) ->
              {query, matches: [{id, content, score, sectors,
              primary_sector, path, salience, last_seen_at}]}; matches are
              memories sharing words with the query, most shared first
  POST /memory/reinforce  id, boost (0-100) -> {ok: true} / 404 {"err":"nf"}
  validation errors       400 {"error":"invalid_request", "details": ...}

Controls (besides stubcommon's /_stub/requests, /_stub/config rules):
  GET  /_stub/memories    every stored memory with its salience
  POST /_stub/fail        {"rate_limit": N, "retry_after": S} answers the next
                          N calls 429 {"error":"rate_limit_exceeded",
                          retry_after}; {"query_failed": N} answers the next N
                          queries 500 {"error":"query_failed"}

Usage: openmemory_stub.py --key KEY   (prints "PORT <n>")
Python standard library only.
"""
import argparse
import hashlib
import hmac
import json
import re
import threading
import time
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stubcommon  # noqa: E402

LOCK = threading.Lock()
STATE = {"key": "", "memories": [], "rate_limit": 0, "retry_after": 1, "query_failed": 0}
WORD = re.compile(r"[A-Za-z0-9_]{3,}")


def tenant(key):
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def words(text):
    return {w.lower() for w in WORD.findall(text or "")}


class OpenMemoryHandler(stubcommon.StubHandler):
    def rule_body(self, status):
        return {"error": "stub_rule"}

    def stub_control(self, path):
        if path == "/_stub/memories":
            with LOCK:
                self.send(200, STATE["memories"])
            return True
        if path == "/_stub/fail" and self.command == "POST":
            body = self.body_json() or {}
            with LOCK:
                for k in ("rate_limit", "retry_after", "query_failed"):
                    if k in body:
                        STATE[k] = body[k]
            self.send(200, {"ok": True})
            return True
        return False

    def authorized(self):
        given = self.headers.get("x-api-key")
        auth = self.headers.get("Authorization") or ""
        if not given and auth.startswith("Bearer "):
            given = auth[7:]
        if not given:
            self.send(401, {"error": "unauthorized", "message": "missing api key"})
            return False
        if not hmac.compare_digest(given.encode(), STATE["key"].encode()):
            self.send(403, {"error": "forbidden", "message": "invalid api key"})
            return False
        return True

    def invalid(self, details):
        self.send(400, {"error": "invalid_request", "details": details})

    def route(self, path, q):
        if self.command != "POST" or path not in ("/memory/add", "/memory/query",
                                                  "/memory/reinforce"):
            return self.send(404, {"error": "not_found"})
        if not self.authorized():
            return None
        body = self.body_json()
        if not isinstance(body, dict):
            return self.invalid("body must be a JSON object")
        uid = body.get("user_id", (body.get("filters") or {}).get("user_id"))
        if uid is not None and uid != tenant(STATE["key"]):
            return self.send(403, {"error": "tenant_mismatch"})
        with LOCK:
            if STATE["rate_limit"] > 0:
                STATE["rate_limit"] -= 1
                ra = STATE["retry_after"]
                return self.send(429, {"error": "rate_limit_exceeded", "retry_after": ra},
                                 {"Retry-After": str(ra)})
        if path == "/memory/add":
            return self.add(body)
        if path == "/memory/query":
            return self.query(body)
        return self.reinforce(body)

    def add(self, body):
        content, tags, meta = body.get("content"), body.get("tags", []), body.get("metadata", {})
        if not isinstance(content, str) or not 1 <= len(content) <= 200000:
            return self.invalid("content: 1 to 200000 characters")
        if not isinstance(tags, list) or len(tags) > 64 or \
                not all(isinstance(t, str) for t in tags):
            return self.invalid("tags: at most 64 strings")
        if not isinstance(meta, dict):
            return self.invalid("metadata: an object")
        with LOCK:
            for m in STATE["memories"]:
                if m["content"] == content:
                    m["salience"] = min(1.0, m["salience"] + 0.1)
                    return self.send(200, {"id": m["id"], "primary_sector": "episodic",
                                           "sectors": ["episodic"], "deduplicated": True})
            mid = "mem-%04d" % (len(STATE["memories"]) + 1)
            STATE["memories"].append({"id": mid, "content": content, "tags": tags,
                                      "metadata": meta, "salience": 0.5,
                                      "created_at": time.time()})
        return self.send(200, {"id": mid, "primary_sector": "episodic",
                               "sectors": ["episodic"]})

    def query(self, body):
        query, k = body.get("query"), body.get("k", 8)
        if not isinstance(query, str) or not query or len(query) > 8192:
            return self.invalid("query: 1 to 8192 characters")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 200:
            return self.invalid("k: 1 to 200")
        with LOCK:
            if STATE["query_failed"] > 0:
                STATE["query_failed"] -= 1
                return self.send(500, {"error": "query_failed"})
            qw = words(query)
            scored = []
            for m in STATE["memories"]:
                shared = len(qw & words(m["content"]))
                if shared:
                    scored.append((shared / max(1, len(qw)), m))
            scored.sort(key=lambda s: (-s[0], s[1]["id"]))
            matches = [{"id": m["id"], "content": m["content"], "score": round(sc, 4),
                        "sectors": ["episodic"], "primary_sector": "episodic", "path": [],
                        "salience": m["salience"], "last_seen_at": int(time.time() * 1000)}
                       for sc, m in scored[:k]]
        return self.send(200, {"query": query, "matches": matches})

    def reinforce(self, body):
        mid, boost = body.get("id"), body.get("boost", 1)
        if not isinstance(mid, str) or not isinstance(boost, (int, float)) or \
                not 0 <= boost <= 100:
            return self.invalid("id: a string, boost: 0 to 100")
        with LOCK:
            for m in STATE["memories"]:
                if m["id"] == mid:
                    m["salience"] = min(1.0, m["salience"] + boost / 100.0)
                    return self.send(200, {"ok": True})
        return self.send(404, {"err": "nf"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    a = ap.parse_args()
    STATE["key"] = a.key
    stubcommon.serve(OpenMemoryHandler, 0)
    stubcommon.wait_forever()


if __name__ == "__main__":
    main()
