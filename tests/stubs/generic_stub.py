#!/usr/bin/env python3
"""generic_stub.py - a route-table HTTP stub for the thin context sources
(ArgoCD REST, Loki, Prometheus) and for fetch-engine tests.

Routes come from a JSON file (--routes) or POST /_stub/config {"routes": [...]}:
  {"method": "GET", "path": "/api/v1/query", "status": 200,
   "body": <json or string>, "headers": {...}, "delay_ms": 300,
   "token": "secret"}            # answers 401 unless "Bearer secret" is sent
A route with "repeat": N sends its (string) body N times, then "tail",
streamed (a job log of hundreds of MB without holding it in memory).
Exact path match (the query string is ignored but recorded). Optional TLS
(--cert/--key). Python standard library only.

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
            body = r.get("body", {})
            ctype = "text/plain" if isinstance(body, str) else "application/json"
            return self.send(r.get("status", 200), body, r.get("headers"), ctype=ctype)
        self.read_body()
        self.send(404, {"error": "no route"})

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
