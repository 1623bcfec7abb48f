#!/usr/bin/env python3
"""test_login_guard.py - the failed-login limit (src/http/login_guard.c)
holds wherever the token is judged and against many addresses: a bearer
token on GET / counts like one on the API (ten wrong ones block the
address; a blocked address's right token gets 429, not the app); a blocked
address keeps its block while hundreds of other addresses fail once each
(the table never evicts a slot that is still blocked); IPv6 clients are
limited per /64; and 600 failures within a minute from all addresses
together block every login and bearer call. Runs the real binary on
loopback (127.0.0.0/8: any source address binds); standard library only;
prints TAP."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import check, finish, reap, run  # noqa: E402
import bareserver  # noqa: E402

TMP = tempfile.mkdtemp(prefix="healer-guard-")
TOKEN = "guard-api-token-8d2e"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
procs = []


def serve(name, extra=None):
    return bareserver.start(procs, os.path.join(TMP, name), TMP,
                            dict({"HEALER_API_TOKEN": TOKEN}, **(extra or {})))


req = bareserver.req


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def is_app(st, body):
    return st == 200 and b"/assets/app.js" in body


def is_login(st, body):
    return st == 200 and b'action="/login"' in body and b"/assets/app.js" not in body


def root_oracle():
    """GET / judges a bearer token under the limit."""
    port = serve("root")
    flood, other = "127.0.1.1", "127.0.1.2"
    st, _, body = req(port, "GET", "/", headers=bearer(TOKEN), source=other)
    check("GET / with the right bearer token is the app", is_app(st, body), (st, body[:200]))
    answers = [req(port, "GET", "/", headers=bearer(f"guess-{i}"), source=flood)
               for i in range(10)]
    check("ten wrong bearer tokens on GET /: each gets the login page",
          all(is_login(a[0], a[2]) for a in answers), [a[0] for a in answers])
    st, h, body = req(port, "GET", "/", headers=bearer("guess-10"), source=flood)
    check("the eleventh wrong bearer token on GET / is 429 with Retry-After",
          st == 429 and h.get("retry-after", "").isdigit(), (st, h, body[:200]))
    st, _, body = req(port, "GET", "/", headers=bearer(TOKEN), source=flood)
    check("a blocked address's right bearer token on GET / is 429, not the app",
          st == 429 and b"/assets/app.js" not in body, (st, body[:200]))
    st, _, _ = req(port, "GET", "/api/status", headers=bearer(TOKEN), source=flood)
    check("... and the API blocks that address too (the same count)", st == 429, st)
    st, _, body = req(port, "GET", "/", source=flood)
    check("without a bearer token the blocked address still gets the login page",
          is_login(st, body), (st, body[:200]))
    st, _, body = req(port, "GET", "/", headers=bearer(TOKEN), source=other)
    check("another address still gets the app with the right bearer token",
          is_app(st, body), (st, body[:200]))
    # wrong tokens on / and on the API add up
    mixed = "127.0.1.3"
    codes = [req(port, "GET", "/", headers=bearer(f"g{i}"), source=mixed)[0] for i in range(5)]
    codes += [req(port, "GET", "/api/status", headers=bearer(f"h{i}"), source=mixed)[0]
              for i in range(5)]
    st, _, _ = req(port, "GET", "/", headers=bearer(TOKEN), source=mixed)
    check("five wrong tokens on GET / and five on the API block the address",
          codes == [200] * 5 + [401] * 5 and st == 429, (codes, st))


def no_eviction():
    """A blocked address keeps its block while 300 others fail once each
    (more addresses than the table has slots)."""
    port = serve("evict")
    blocked = "127.0.2.1"
    codes = [req(port, "GET", "/api/status", headers=bearer(f"guess-{i}"), source=blocked)[0]
             for i in range(10)]
    st, _, _ = req(port, "GET", "/api/status", headers=bearer(TOKEN), source=blocked)
    check("ten wrong tokens block an address", codes == [401] * 10 and st == 429, (codes, st))
    codes = {}
    for i in range(300):
        src = f"127.0.{3 + i // 200}.{1 + i % 200}"
        st = req(port, "GET", "/api/status", headers=bearer("wrong"), source=src)[0]
        codes[st] = codes.get(st, 0) + 1
    check("300 other addresses, one wrong token each: each is 401", codes == {401: 300}, codes)
    st, _, body = req(port, "GET", "/", headers=bearer(TOKEN), source=blocked)
    check("the blocked address is still blocked on GET / (its slot was not taken)",
          st == 429, (st, body[:200]))
    st, _, _ = req(port, "GET", "/api/status", headers=bearer(TOKEN), source=blocked)
    check("... and on the API", st == 429, st)
    st, _, _ = req(port, "GET", "/api/status", headers=bearer(TOKEN), source="127.0.9.9")
    check("a new address still reads with the right token", st == 200, st)


def ipv6_per_64():
    """Behind a trusted proxy, IPv6 clients of one /64 share one limit."""
    port = serve("v6", {"HEALER_TRUSTED_PROXIES": "127.0.0.1"})

    def via(client, tok):
        return req(port, "GET", "/api/status",
                   headers=dict(bearer(tok), **{"X-Forwarded-For": client}))[0]
    codes = [via(f"2001:db8:1:2::{i + 1:x}", "wrong") for i in range(10)]
    check("ten wrong tokens from ten hosts of one IPv6 /64: each 401", codes == [401] * 10, codes)
    st = via("2001:db8:1:2:ffff:ffff:ffff:fffe", TOKEN)
    check("another host of that /64 is blocked, the right token too", st == 429, st)
    st = via("2001:db8:1:3::1", TOKEN)
    check("a host of the next /64 is not", st == 200, st)


def global_ceiling():
    """600 failures within a minute from all addresses together block every
    login and bearer call, from any address."""
    port = serve("global")
    codes = {}
    for a in range(60):
        src = f"127.0.{20 + a // 50}.{1 + a % 50}"
        for i in range(10):
            st = req(port, "GET", "/api/status", headers=bearer(f"g{i}"), source=src)[0]
            codes[st] = codes.get(st, 0) + 1
    check("60 addresses, ten wrong tokens each: each 401", codes == {401: 600}, codes)
    fresh = "127.0.30.1"
    st, h, _ = req(port, "GET", "/api/status", headers=bearer(TOKEN), source=fresh)
    check("then an address that never failed is 429 with Retry-After, the right token too",
          st == 429 and h.get("retry-after", "").isdigit() and 1 <= int(h["retry-after"]) <= 60,
          (st, h))
    st, h, _ = req(port, "POST", "/login", ("token=" + TOKEN).encode(), FORM, source=fresh)
    check("... at the login form too (no session)", st == 429 and "set-cookie" not in h, (st, h))
    st, _, body = req(port, "GET", "/", headers=bearer(TOKEN), source=fresh)
    check("... and on GET /", st == 429 and b"/assets/app.js" not in body, st)
    st, _, _ = req(port, "GET", "/health", source=fresh)
    check("the open probes still answer", st == 200, st)
    # the sensors' and alert webhooks' routes keep to each client's own limit:
    # guessing from many addresses never shuts intake
    st, _, _ = req(port, "POST", "/api/remediate/ci-failure", b"{}",
                   {"Content-Type": "application/json", **bearer(TOKEN)}, source=fresh)
    check("... while a sensor's call with the right token is still taken (not 429)",
          st not in (401, 429), st)
    st, _, _ = req(port, "POST", "/api/remediate/ci-failure", b"{}",
                   {"Content-Type": "application/json", **bearer("bad")}, source="127.0.20.1")
    check("... and an address that guessed there is still held by its own limit", st == 429, st)


def main():
    root_oracle()
    no_eviction()
    ipv6_per_64()
    global_ceiling()
    finish()


if __name__ == "__main__":
    try:
        run(main)
    finally:
        reap(procs, TMP)
