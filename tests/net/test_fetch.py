#!/usr/bin/env python3
"""test_fetch.py - the fetch engine (src/net/fetch.c) against real local
servers: parallel requests finish in about the slowest one's time, 5xx and
connection errors are retried, rate limits are honoured within the deadline
and given up beyond it, redirects drop the Authorization header, the size
cap keeps the tail, and TLS is verified against the configured CA."""
import email.utils
import json
import os
import socket
import time

from dtest import TMP, check, finish, http, make_ca, netprobe, start_stub

# the sanitizer builds run several times slower (make test sets 3 for them)
TIME_SCALE = max(1.0, float(os.environ.get("HEALER_TEST_TIME_SCALE") or 1))

# three "sources", each answering after 1000 ms (long enough that the
# margin below stays well clear of the 3000 ms a sequential fetch takes)
SLOW_MS = 1000
routes = [{"path": f"/slow/{n}", "delay_ms": SLOW_MS, "body": {"source": n}}
          for n in ("argocd", "loki", "prom")]
routes += [
    {"path": "/ok", "body": {"ok": True}},
    {"path": "/big", "body": "".join(f"line {i:05d}\n" for i in range(2000))},
]
rf = os.path.join(TMP, "routes.json")
with open(rf, "w") as f:
    json.dump(routes, f)
_, port = start_stub("generic_stub.py", "--routes", rf)
base = f"http://127.0.0.1:{port}"


def fetch(reqs, deadline_ms=0):
    rc, out, err = netprobe("fetch", stdin=json.dumps({"requests": reqs,
                                                      "deadline_ms": deadline_ms}))
    return out if rc == 0 else {"error": err, "results": []}


def control(body):
    http("POST", f"{base}/_stub/config", body)


def requests_seen():
    return http("GET", f"{base}/_stub/requests")


# -- parallelism: 3 x 1000 ms complete in about max, not sum
out = fetch([{"url": f"{base}/slow/{n}", "timeout_ms": 5000} for n in ("argocd", "loki", "prom")])
res = out["results"]
check("parallel: all three sources answered 200",
      len(res) == 3 and all(r["status"] == 200 for r in res), out)
# one request's time plus a margin (1000 ms, 1500 ms under the sanitizers)
# that stays below the 3 x 1000 ms of a sequential fetch
check("parallel: 3 x 1000 ms finish in under the 3000 ms sum",
      SLOW_MS <= out["elapsed_ms"] < SLOW_MS + min(1000 * TIME_SCALE, 1500),
      f"elapsed {out['elapsed_ms']} ms")

# -- a slow source never blocks a fast one
control({"rules": [{"path": "/slow/loki", "delay_ms": 1500}]})
out = fetch([{"url": f"{base}/slow/loki", "timeout_ms": 5000}, {"url": f"{base}/ok"}])
res = out["results"]
check("slow source: the fast request completes long before the slow one",
      # the fast one within 1000 ms (1200 ms under the sanitizers): blocked
      # behind the slow one it would take its 1500 ms
      res[1]["status"] == 200 and res[1]["elapsed_ms"] < min(1000 * TIME_SCALE, 1200)
      and res[0]["elapsed_ms"] >= 1500,
      out)

# -- a per-request timeout cuts a slow source off without failing the batch
out = fetch([{"url": f"{base}/slow/loki", "timeout_ms": 400, "max_retries": 0},
             {"url": f"{base}/ok"}])
res = out["results"]
check("timeout: the slow request fails with 'timeout', the other succeeds",
      res[0]["error"] == "timeout" and res[1]["status"] == 200 and out["elapsed_ms"] < 1200, out)

# -- retry on 5xx with backoff
control({"rules": [{"path": "/ok", "status": 503, "times": 2}]})
http("POST", f"{base}/_stub/reset", {})
out = fetch([{"url": f"{base}/ok", "backoff_ms": 50, "timeout_ms": 5000}])
r = out["results"][0]
check("retry: two 503 answers then 200 after 3 attempts",
      r["status"] == 200 and r["attempts"] == 3 and r["error"] == "", r)
check("retry: exponential backoff waited between attempts (>= 25 + 50 ms with jitter)",
      r["elapsed_ms"] >= 75, r)
check("retry: the server saw exactly 3 requests",
      len([q for q in requests_seen() if q["path"] == "/ok"]) == 3)

# a 503 with Retry-After is asked again no sooner than that; one whose
# Retry-After is past the deadline is given up at once
control({"rules": [{"path": "/ok", "status": 503, "times": 1, "headers": {"Retry-After": "1"}}]})
http("POST", f"{base}/_stub/reset", {})
out = fetch([{"url": f"{base}/ok", "backoff_ms": 50, "timeout_ms": 5000}])
r = out["results"][0]
seen = [q["time"] for q in requests_seen() if q["path"] == "/ok"]
check("retry: a 503 with Retry-After: 1 is asked again after a second, then 200",
      r["status"] == 200 and r["attempts"] == 2 and len(seen) == 2
      and seen[1] - seen[0] >= 0.95, (r, seen))
control({"rules": [{"path": "/ok", "status": 503, "times": 5,
                    "headers": {"Retry-After": "30"}}]})
http("POST", f"{base}/_stub/reset", {})
out = fetch([{"url": f"{base}/ok", "backoff_ms": 50, "timeout_ms": 3000}])
r = out["results"][0]
check("retry: a 503 whose Retry-After is past the deadline is not asked again",
      r["status"] == 503 and r["attempts"] == 1 and r["error"] == "upstream_error"
      and len([q for q in requests_seen() if q["path"] == "/ok"]) == 1, r)
control({"rules": []})

control({"rules": [{"path": "/ok", "status": 500, "times": 10}]})
out = fetch([{"url": f"{base}/ok", "backoff_ms": 20, "max_retries": 2, "timeout_ms": 5000}])
r = out["results"][0]
check("retry: gives up after max_retries with upstream_error and the last status",
      r["status"] == 500 and r["attempts"] == 3 and r["error"] == "upstream_error", r)

control({"rules": [{"path": "/ok", "status": 404, "times": 1}]})
out = fetch([{"url": f"{base}/ok", "backoff_ms": 20}])
r = out["results"][0]
check("no retry for a 4xx answer", r["status"] == 404 and r["attempts"] == 1, r)
control({"rules": []})

control({"rules": [{"method": "POST", "path": "/ok", "status": 503, "times": 5}]})
http("POST", f"{base}/_stub/reset", {})
out = fetch([{"method": "POST", "url": f"{base}/ok", "body": "{}", "backoff_ms": 20}])
r = out["results"][0]
check("a POST is not retried by default (not idempotent)",
      r["attempts"] == 1 and r["status"] == 503
      and len([q for q in requests_seen() if q["path"] == "/ok"]) == 1, r)
control({"rules": []})

# -- connection refused is retried, then reported as an I/O error
s = socket.socket()
s.bind(("127.0.0.1", 0))
dead = s.getsockname()[1]
s.close()
out = fetch([{"url": f"http://127.0.0.1:{dead}/x", "backoff_ms": 20, "max_retries": 2,
              "timeout_ms": 3000}])
r = out["results"][0]
check("connection refused: retried then io_error", r["error"] == "io_error" and r["attempts"] == 3, r)
out = fetch([{"url": f"http://loki:s3cr3t-pw@127.0.0.1:{dead}/loki/api/v1/query?query=up",
              "max_retries": 0, "timeout_ms": 3000}])
r = out["results"][0]
check("error messages name the URL without its user:password@ (and query)",
      r["error"] == "io_error" and f"'http://127.0.0.1:{dead}/loki/api/v1/query'" in r["message"]
      and "s3cr3t" not in r["message"] and "loki:" not in r["message"], r)

# -- rate limits: Retry-After within the deadline is waited out
control({"rules": [{"path": "/ok", "status": 429, "times": 1, "headers": {"Retry-After": "1"},
                    "body": {"message": "slow down"}}]})
out = fetch([{"url": f"{base}/ok", "timeout_ms": 5000}])
r = out["results"][0]
check("rate limit 429 + Retry-After: 1 waited, then 200",
      r["status"] == 200 and r["attempts"] == 2 and r["elapsed_ms"] >= 950, r)

# Retry-After as an HTTP-date (RFC 9110 section 10.2.3: proxies and CDNs
# send one) is the wait until that time, as the number of seconds is
for status in (429, 503):
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    control({"rules": [{"path": "/ok", "status": status, "times": 1,
                        "headers": {"Retry-After": when}, "body": {"message": "slow down"}}]})
    out = fetch([{"url": f"{base}/ok", "timeout_ms": 6000}])
    r = out["results"][0]
    check(f"{status} + Retry-After as an HTTP-date ({when}): waited until then, then 200",
          r["status"] == 200 and r["attempts"] == 2 and r["elapsed_ms"] >= 900, r)

# 403 + X-RateLimit-Remaining: 0 + reset within the deadline
control({"rules": [{"path": "/ok", "status": 403, "times": 1, "reset_in": 1,
                    "body": {"message": "API rate limit exceeded"}}]})
out = fetch([{"url": f"{base}/ok", "timeout_ms": 5000}])
r = out["results"][0]
check("rate limit 403 + X-RateLimit-Reset soon: waited, then 200",
      r["status"] == 200 and r["attempts"] == 2, r)

# beyond the deadline: give up at once with 'upstream' "rate limited"
control({"rules": [{"path": "/ok", "status": 403, "times": 1, "reset_in": 3600,
                    "body": {"message": "API rate limit exceeded"}}]})
out = fetch([{"url": f"{base}/ok", "timeout_ms": 3000}])
r = out["results"][0]
check("rate limit reset past the deadline: gives up quickly with 'rate limited'",
      r["error"] == "upstream_error" and "rate limited" in r["message"] and r["elapsed_ms"] < 1000
      and r["rl_remaining"] == 0, r)

# absurd values (a broken or hostile upstream) are waits past any deadline:
# given up at once, never wrapped into a negative wait and asked again
for hdrs in ({"Retry-After": "99999999999999999999"}, {"Retry-After": "9300000000000000"},
             {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "99999999999999999999"}):
    control({"rules": [{"path": "/ok", "status": 429, "headers": hdrs,
                        "body": {"message": "slow down"}}]})
    http("POST", f"{base}/_stub/reset", {})
    out = fetch([{"url": f"{base}/ok", "timeout_ms": 3000}])
    r = out["results"][0]
    check(f"rate limit {hdrs}: given up at once after one request",
          r["error"] == "upstream_error" and "rate limited" in r["message"]
          and "-" not in r["message"].split("lifts in", 1)[-1] and r["attempts"] == 1
          and len([q for q in requests_seen() if q["path"] == "/ok"]) == 1, r)

# a 429 that says neither Retry-After nor a reset: a short backoff by
# default; a client that asks for a longer one (GitHub: "wait at least one
# minute" for a secondary rate limit) is not asked again within its
# deadline, it gives up at once after one request
control({"rules": [{"path": "/ok", "status": 429, "body": {"message": "secondary rate limit"}}]})
http("POST", f"{base}/_stub/reset", {})
out = fetch([{"url": f"{base}/ok", "timeout_ms": 3000, "rate_wait_unsaid_ms": 60000}])
r = out["results"][0]
check("a bare 429 with a minute's wait asked for: given up at once after one request",
      r["error"] == "upstream_error" and "rate limited" in r["message"] and r["attempts"] == 1
      and r["elapsed_ms"] < 1000
      and len([q for q in requests_seen() if q["path"] == "/ok"]) == 1, r)
http("POST", f"{base}/_stub/reset", {})
out = fetch([{"url": f"{base}/ok", "timeout_ms": 3000, "backoff_ms": 20}])
r = out["results"][0]
check("a bare 429 by default: asked again after a short backoff",
      len([q for q in requests_seen() if q["path"] == "/ok"]) > 1, r)

# a plain 403 (no rate-limit headers) is an answer, not a wait
control({"rules": [{"path": "/ok", "status": 403, "times": 1, "body": {"message": "forbidden"}}]})
out = fetch([{"url": f"{base}/ok", "timeout_ms": 3000}])
r = out["results"][0]
check("plain 403 is returned as is", r["status"] == 403 and r["attempts"] == 1 and
      r["error"] == "", r)
control({"rules": []})

# -- redirects: followed without the Authorization header
_, port2 = start_stub("generic_stub.py")
other = f"http://127.0.0.1:{port2}"
http("POST", f"{other}/_stub/config", {"routes": [{"path": "/blob", "body": "blob bytes\n"}]})
http("POST", f"{base}/_stub/config", {"routes": routes + [
    {"path": "/redir", "status": 302, "headers": {"Location": f"{other}/blob"}, "body": ""},
    {"path": "/moved", "status": 301, "headers": {"Location": "/ok"}, "body": ""}]})
out = fetch([{"url": f"{base}/redir", "auth": "Bearer ghp_supersecret", "follow_redirects": True}])
r = out["results"][0]
seen = [q for q in http("GET", f"{other}/_stub/requests") if q["path"] == "/blob"]
first = [q for q in requests_seen() if q["path"] == "/redir"]
check("redirect: followed to the other host and its body returned",
      r["status"] == 200 and r["body"] == "blob bytes\n", r)
check("redirect: the token went to the API host only",
      first and first[-1]["headers"].get("authorization") == "Bearer ghp_supersecret"
      and seen and "authorization" not in seen[-1]["headers"], (first, seen))
http("POST", f"{base}/_stub/reset", {})
out = fetch([{"url": f"{base}/moved", "auth": "Bearer ghp_supersecret", "follow_redirects": True}])
okreq = [q for q in requests_seen() if q["path"] == "/ok"]
check("redirect within the same origin (relative Location) keeps the token",
      out["results"][0]["status"] == 200 and okreq
      and okreq[-1]["headers"].get("authorization") == "Bearer ghp_supersecret", (out, okreq))
out = fetch([{"url": f"{base}/redir", "auth": "Bearer x"}])
check("redirect: not followed unless asked (302 + Location reported)",
      out["results"][0]["status"] == 302 and out["results"][0]["location"].endswith("/blob"), out)

# -- size cap: error, or keep the tail
out = fetch([{"url": f"{base}/big", "max_body": 1000}])
check("size cap: over the cap fails with too_large",
      out["results"][0]["error"] == "too_large", out["results"][0])
out = fetch([{"url": f"{base}/big", "max_body": 1000, "keep_tail": True}])
r = out["results"][0]
check("size cap with keep_tail: the last 1000 bytes are kept",
      r["truncated"] and len(r["body"]) == 1000 and r["body"].endswith("line 01999\n"),
      r["body"][-40:])

# a job log of 400 MB: the last 4 MiB (where the error is) arrive well
# within a source's deadline; dropping the head must not cost a copy of the
# kept tail for every chunk received
unit = "2026-01-01T10:00:00.0000000Z compiling crate number 0042 of many\n"
tail = "error[E0308]: mismatched types\nProcess completed with exit code 101.\n"
http("POST", f"{base}/_stub/config", {"routes": routes + [
    {"path": "/huge", "body": unit, "repeat": 400 * 2**20 // len(unit), "tail": tail}]})
cap = 4 * 2**20
out = fetch([{"url": f"{base}/huge", "max_body": cap, "keep_tail": True, "timeout_ms": 6000,
              "max_retries": 0}])
r = out["results"][0]
want = (unit * (cap // len(unit) + 2) + tail)[-cap:]
check("a 400 MB log with keep_tail: answered within the deadline, truncated",
      r["status"] == 200 and r["error"] == "" and r["truncated"],
      {k: r[k] for k in ("status", "error", "message", "elapsed_ms", "truncated")})
check("a 400 MB log with keep_tail: exactly its last 4 MiB are kept",
      len(r["body"]) == cap and r["body"] == want, (len(r["body"]), r["body"][-80:]))

# -- TLS: verified against the given CA, refused with a wrong CA
good, bad = make_ca("good"), make_ca("bad")
_, tport = start_stub("generic_stub.py", "--cert", good["cert"], "--key", good["key"])
turl = f"https://127.0.0.1:{tport}"
http("POST", f"{turl}/_stub/config", {"routes": [{"path": "/tls", "body": {"tls": True}}]},
     ctx=__import__("ssl").create_default_context(cafile=good["ca"]))
out = fetch([{"url": f"{turl}/tls", "ca_file": good["ca"]},
             {"url": f"{turl}/tls", "ca_data": open(good["ca"]).read()},
             {"url": f"{turl}/tls", "ca_file": bad["ca"], "max_retries": 0},
             {"url": f"{turl}/tls", "insecure": True}])
res = out["results"]
check("tls: verified with the CA file", res[0]["status"] == 200, res[0])
check("tls: verified with in-memory CA data", res[1]["status"] == 200, res[1])
check("tls: refused with the wrong CA", res[2]["status"] == 0 and res[2]["error"] == "io_error", res[2])
check("tls: insecure skips verification", res[3]["status"] == 200, res[3])
# a redirect from https to plain http is not followed; https to https is
http("POST", f"{turl}/_stub/config", {"routes": [
    {"path": "/tls", "body": {"tls": True}},
    {"path": "/down", "status": 302, "headers": {"Location": f"{other}/blob"}, "body": ""},
    {"path": "/same", "status": 302, "headers": {"Location": "/tls"}, "body": ""}]},
     ctx=__import__("ssl").create_default_context(cafile=good["ca"]))
http("POST", f"{other}/_stub/reset", {})
out = fetch([{"url": f"{turl}/down", "ca_file": good["ca"], "follow_redirects": True},
             {"url": f"{turl}/same", "ca_file": good["ca"], "follow_redirects": True}])
res = out["results"]
blob = [q for q in http("GET", f"{other}/_stub/requests") if q["path"] == "/blob"]
check("redirect: https to http is refused, never fetched (upstream_error)",
      res[0]["error"] == "upstream_error" and "https" in res[0].get("message", "https")
      and not blob, (res[0], blob))
check("redirect: https to https is followed", res[1]["status"] == 200, res[1])

finish()
