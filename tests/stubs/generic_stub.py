#!/usr/bin/env python3
"""generic_stub.py - a route-table HTTP stub for the thin context sources
(ArgoCD REST, Loki, Prometheus) and for fetch-engine tests.

Routes come from a JSON file (--routes) or POST /_stub/config {"routes": [...]}:
  {"method": "GET", "path": "/api/v1/query", "status": 200,
   "body": <json or string>, "headers": {...}, "delay_ms": 300,
   "token": "secret"}            # answers 401 unless "Bearer secret" is sent
A route with "repeat": N sends its (string) body N times, then "tail",
streamed (a job log of hundreds of MB without holding it in memory).
A route with "loki_lines": {"count": N, "bytes": B, "text": T} answers as
Loki's query_range does: the request's `limit` most recent of N lines (at
most; newest first, one stream), line i being "T #i " padded to B bytes.
Exact path match (the query string is otherwise ignored but recorded).
Optional TLS (--cert/--key). Python standard library only.

usage: generic_stub.py [--routes FILE] [--cert C --key K]
"""
import argparse
import json
import time

import stubcommon


class GenericHandler(stubcommon.StubHandler):
    def route(self, path, q):
        for r in self.server.config.get("routes", []):
            if r.get("method", "GET") != self.command or r.get("path") != path:
                continue
            self.read_body()
            if r.get("token") and self.headers.get("Authorization") != f"Bearer {r['token']}":
                return self.send(401, {"error": "unauthorized"})
            if r.get("delay_ms"):
                time.sleep(r["delay_ms"] / 1000.0)
            if r.get("repeat"):
                return self.send_repeated(r)
            if r.get("loki_lines"):
                return self.send_loki(r["loki_lines"], q)
            body = r.get("body", {})
            ctype = "text/plain" if isinstance(body, str) else "application/json"
            return self.send(r.get("status", 200), body, r.get("headers"), ctype=ctype)
        self.read_body()
        self.send(404, {"error": "no route"})

    def send_loki(self, spec, q):
        try:
            limit = int(q.get("limit", "100"))
        except ValueError:
            return self.send(400, {"status": "error", "errorType": "bad_data",
                                   "error": "invalid limit"})
        now = time.time_ns()
        values = []
        for i in range(min(limit, spec.get("count", 100))):
            head = f"{spec.get('text', 'error')} #{i} "
            values.append([str(now - i * 1000000),
                           head + "x" * max(0, spec.get("bytes", 0) - len(head))])
        return self.send(200, {"status": "success", "data": {
            "resultType": "streams", "result": [{"stream": {"app": "widgets"},
                                                 "values": values}]}})

    def send_repeated(self, r):
        unit, tail = r["body"].encode(), r.get("tail", "").encode()
        per = max(1, (1 << 20) // len(unit))
        block = unit * per
        left = r["repeat"]
        self.send_response(r.get("status", 200))
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(unit) * left + len(tail)))
        self.end_headers()
        try:
            while left >= per:
                self.wfile.write(block)
                left -= per
            self.wfile.write(unit * left + tail)
        except OSError:
            pass  # the client gave up


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    srv = stubcommon.serve(GenericHandler, 0, a.cert, a.key, announce=False)
    if a.routes:
        srv.config["routes"] = json.load(open(a.routes))
    print(f"PORT {srv.server_address[1]}", flush=True)
    stubcommon.wait_forever()


if __name__ == "__main__":
    main()
