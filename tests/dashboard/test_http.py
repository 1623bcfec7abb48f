#!/usr/bin/env python3
"""test_http.py - the dashboard's HTTP side without a browser (contract
section 13): GET / and /assets/* with their content types, security
headers (a Content-Security-Policy without inline script), ETags and 304;
the login form (a wrong token gets no cookie; the right one an HttpOnly,
SameSite=Strict session cookie that is not the token; a cross-site post
is refused; ten wrong tokens from one address make its logins 429 for a
minute, other addresses unaffected; wrong bearer tokens on the API count
the same), read access with the cookie or the
bearer token and without either refused, a tampered or expired session
refused; the remediation documents' ETags (304 until something changes);
an attempt's prompt as text; X-Content-Type-Options: nosniff on every
answer, errors too; and without HEALER_API_TOKEN everything open. Runs
the real binary on loopback; standard library only; prints TAP."""
import hashlib
import hmac
import http.client
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dashseed  # noqa: E402
from dashseed import dtest  # noqa: E402
from dtest import check  # noqa: E402


def req(port, method, path, body=None, headers=None, source=None):
    """One request; source is the loopback address to send it from."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                   source_address=(source, 0) if source else None)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def session_for(token, exp, sid="5e55" * 8):
    key = hmac.new(token.encode(), b"healer dashboard session v1", hashlib.sha256).hexdigest()
    sig = hmac.new(key.encode(), f"{exp}.{sid}".encode(), hashlib.sha256).hexdigest()
    return f"{exp}.{sid}.{sig}"


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def hostile_urls(s, port, auth, tid):
    """Paths and query strings no client should get a document for."""
    # libmicrohttpd decodes %00 into the end of the string: the rest of the
    # path or value would silently go
    for what, path in (("a task id", f"/api/remediations/{tid}%00junk"),
                       ("a probe's path", "/health%00.json"),
                       ("a filter's value", "/api/remediations?agent=rex%00x&limit=1")):
        st, _, b = req(port, "GET", path, headers=auth)
        check(f"an encoded NUL byte in {what} answers 400", st == 400, (st, b[:120]))
    # a path longer than any route's, which cut to its first 159 bytes would
    # be attempt 1's prompt
    head = f"/api/remediations/{tid}/attempts/"
    path = head + "0" * (159 - len(head) - len("1/prompt")) + "1/prompt" + "-and-more"
    st, _, b = req(port, "GET", path, headers=auth)
    check("an over-long path is no route's (404), not the route of its first bytes",
          st == 404, (st, b[:120]))
    for n in ("01", "+1"):
        st, _, _ = req(port, "GET", f"/api/remediations/{tid}/attempts/{n}/prompt", headers=auth)
        check(f"attempts/{n}/prompt is no attempt's path (404)", st == 404, st)
    long_list = "running," * 16 + "sleeping"
    st, _, b = req(port, "GET", "/api/remediations?state=" + long_list, headers=auth)
    check("a bad state after a long list of states is still 400",
          st == 400 and b"sleeping" in b, (st, b[:160]))
    st, _, b = req(port, "GET", "/api/remediations?state=,running,,", headers=auth)
    check("empty items of the state list are skipped", st == 200, (st, b[:160]))
    for q in ("+2", "%202", "2%20", "2.0", "0x2"):
        st, _, _ = req(port, "GET", "/api/remediations?limit=" + q, headers=auth)
        check(f"limit={q} is not a whole number (400)", st == 400, st)
    # a misspelt or unknown filter is refused, never an unfiltered (or
    # empty) list; so is a parameter given twice
    for q in ("agent=bogus", "kind=x", "failure_type=nope", "foo=bar", "limit=", "limit",
              "limit=1&limit=abc", "limit=1&limit=1", "state=running&state=queued",
              "agent=rex&agent=blaze", "Limit=1"):
        st, h, b = req(port, "GET", "/api/remediations?" + q, headers=auth)
        try:
            doc = json.loads(b)
        except ValueError:
            doc = {}
        check(f"/api/remediations?{q} answers 400 with the JSON error",
              st == 400 and doc.get("error") == "bad_request" and doc.get("message")
              and h.get("content-type") == "application/json; charset=utf-8", (st, b[:160]))
    for q in ("since=7d&since=1d", "sinse=7d", "repository=a&repository=b"):
        st, _, b = req(port, "GET", "/api/insights?" + q, headers=auth)
        check(f"/api/insights?{q} answers 400", st == 400 and b'"bad_request"' in b, (st, b[:160]))
    # what the dashboard sends, and the filters' known values
    for q in ("state=running%2Cqueued&agent=rex&failure_type=rust_clippy&repository=acme%2Fx"
              "&limit=25", "kind=ci&limit=500", "kind=alert", "agent=&repository=",
              "cursor="):
        st, _, b = req(port, "GET", "/api/remediations?" + q, headers=auth)
        check(f"/api/remediations?{q} answers 200", st == 200, (st, b[:160]))
    # a reason stored with half a character (older data, an SQLite store
    # keeps any bytes): the document still has every key, the half as U+FFFD
    if not dashseed.dtest.pgtest.enabled():
        dashseed.dtest.pgtest.store_exec(
            s.srv.data_dir, "UPDATE attempts SET reason = CAST(? AS TEXT) WHERE task_id = ? AND n = 1",
            (b"cut \xc3", tid))
        st, _, b = req(port, "GET", f"/api/remediations/{tid}", headers=auth)
        doc = json.loads(b) if st == 200 else {}
        a1 = (doc.get("attempts") or [{}])[0]
        check("an attempt's reason holding half a character keeps its key (U+FFFD)",
              a1.get("reason") == "cut \ufffd", (st, a1))


def source_detail_utf8(s, auth):
    """A context source failing with an answer of non-ASCII text: the
    decision keeps why it failed (the excerpt is cut between characters)."""
    repo = "acme/unicode"
    dashseed.dtest.http("POST", s.gurl + "/_stub/seed", {"logs": {"7190": dashseed.LOGS["rex"]}},
                        token=dashseed.GTOKEN)
    dashseed.dtest.http("POST", s.gurl + "/_stub/config", {"rules": [
        {"path": f"/repos/{repo}/commits/", "status": 422, "body": "x" + "\u00e9" * 200}]},
        token=dashseed.GTOKEN)
    st, ans = s.srv.deliver(dashseed.job_event(repo, 7190, 8190, "feat/u", "CI", "clippy"))
    tid = ans.get("task_id") if st == 202 else None
    dashseed.wait_for(lambda: bool(s.task(tid).get("decision")), 20)
    sources = {x.get("name"): x for x in (s.task(tid).get("decision") or {}).get("sources", [])}
    files = sources.get("github_files", {})
    check("a source failing with non-ASCII text keeps its detail in the decision",
          files.get("state") == "failed" and "status 422" in files.get("detail", "")
          and "\u00e9" in files.get("detail", ""), files)


def error_headers(port, auth):
    """Every answer says nosniff, the JSON errors too (a browser must never
    take one that quotes the request for HTML)."""
    for what, method, path, headers in (
            ("a 401", "GET", "/api/remediations", None),
            ("a 404", "GET", "/no/such/<b>page</b>", None),
            ("a 400", "GET", "/api/remediations?limit=abc", auth),
            ("a 405", "DELETE", "/health", None),
            ("an API answer", "GET", "/api/remediations", auth),
            ("a page", "GET", "/", None),
            ("a probe", "GET", "/health", None)):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            r.read()
            st, values = r.status, [v for k, v in r.getheaders()
                                    if k.lower() == "x-content-type-options"]
        finally:
            c.close()
        check(f"{what} carries X-Content-Type-Options: nosniff (once)",
              values == ["nosniff"], (what, st, values))


def login_limit(port, token):
    """Ten wrong tokens within a minute from one address: its next login is
    429 with Retry-After, even with the right token, while another address
    still gets the form back for a wrong one and a session for the right
    one; behind trusted proxies the forwarded client is the one limited. Run
    last: the flooding address stays blocked for a minute."""
    flood, other = "127.0.0.3", "127.0.0.4"
    codes = [req(port, "POST", "/login", f"token=guess-{i}".encode(), FORM, source=flood)[0]
             for i in range(10)]
    check("ten wrong tokens from one address: each goes back to the form",
          codes == [303] * 10, codes)
    st, h, body = req(port, "POST", "/login", b"token=guess-10", FORM, source=flood)
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {}
    retry = h.get("retry-after", "")
    check("the eleventh from that address is 429 with Retry-After and too_many_attempts",
          st == 429 and retry.isdigit() and 1 <= int(retry) <= 60
          and doc.get("error") == "too_many_attempts" and "set-cookie" not in h,
          (st, h, body[:300]))
    st, h, _ = req(port, "POST", "/login", ("token=" + token).encode(), FORM, source=flood)
    check("while blocked, even the right token from that address is 429 without a cookie",
          st == 429 and "set-cookie" not in h, (st, h))
    # the login form's own post (a browser's Accept): a page, not JSON
    st, h, body = req(port, "POST", "/login", b"token=guess-11",
                      dict(FORM, Accept="text/html,application/xhtml+xml,*/*;q=0.8"),
                      source=flood)
    page = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    check("a browser's blocked login gets a page saying when to try again, with a link "
          "back to the form",
          st == 429 and h.get("content-type", "").startswith("text/html")
          and h.get("retry-after", "").isdigit()
          and f"Try again in {h.get('retry-after')} seconds" in page
          and 'href="/"' in page and "content-security-policy" in h
          and "set-cookie" not in h, (st, h, page[:400]))
    st, h, _ = req(port, "POST", "/login", b"token=wrong", FORM, source=other)
    check("another address still gets the form back for a wrong token",
          st == 303 and h.get("location") == "/?login=failed", (st, h))
    st, h, _ = req(port, "POST", "/login", ("token=" + token).encode(), FORM, source=other)
    check("and a session for the right one",
          st == 303 and h.get("set-cookie", "").startswith("healer_session="), (st, h))
    ok = 0
    for _ in range(12):
        st, h, _ = req(port, "POST", "/login", ("token=" + token).encode(), FORM, source=other)
        ok += st == 303 and "set-cookie" in h
    check("successful logins do not count as failures", ok == 12, ok)

    # behind trusted proxies (HEALER_TRUSTED_PROXIES: 127.0.0.5 and 127.0.0.6), the
    # client is the first address from X-Forwarded-For's end that no trusted proxy is
    proxy, chained = "127.0.0.5", "127.0.0.6"

    def via(xff, tok, source=proxy):
        return req(port, "POST", "/login", f"token={tok}".encode(),
                   dict(FORM, **{"X-Forwarded-For": xff}), source=source)[:2]
    codes = [via("203.0.113.7", f"guess-{i}")[0] for i in range(10)]
    st, h = via("203.0.113.7", "guess-10")
    check("behind a trusted proxy, ten wrong tokens of one forwarded client block that "
          "client", codes == [303] * 10 and st == 429, (codes, st))
    st, h = via("203.0.113.8", token)
    check("another client behind the same proxy still logs in",
          st == 303 and h.get("set-cookie", "").startswith("healer_session="), (st, h))
    st, _ = via("198.51.100.1, 203.0.113.7", token)
    check("an address the client wrote itself in front of its own is not believed",
          st == 429, st)
    st, _ = via("203.0.113.7, 127.0.0.6", token)
    check("through two trusted proxies the client is still found", st == 429, st)
    st, h = via("203.0.113.7", token, source=other)
    check("X-Forwarded-For from a peer that is not a trusted proxy is ignored",
          st == 303 and "set-cookie" in h, (st, h))
    st, h = via("not-an-address", token)
    check("a forwarded value that is no address leaves the proxy as the client",
          st == 303 and "set-cookie" in h, (st, h))


def bearer_limit(port, token):
    """The bearer token is the login's secret: ten wrong ones from one
    address on the API make it 429 there (the right one too, and the login
    form), while another address still reads with the right one. Run last:
    the address stays blocked for a minute."""
    flood, other = "127.0.0.7", "127.0.0.8"
    codes = [req(port, "GET", "/api/status", None, {"Authorization": f"Bearer guess-{i}"},
                 source=flood)[0] for i in range(10)]
    check("ten wrong bearer tokens from one address: each is 401", codes == [401] * 10, codes)
    st, h, body = req(port, "GET", "/api/status", None, {"Authorization": "Bearer guess-10"},
                      source=flood)
    check("the eleventh from that address is 429 with Retry-After",
          st == 429 and h.get("retry-after", "").isdigit(), (st, h, body[:200]))
    st, _, _ = req(port, "GET", "/api/status", None, {"Authorization": f"Bearer {token}"},
                   source=flood)
    check("while blocked, even the right bearer token from that address is 429", st == 429, st)
    st, _, _ = req(port, "POST", "/api/remediate/ci-failure", b"{}",
                   {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                   source=flood)
    check("... on a sensor route too", st == 429, st)
    st, h, _ = req(port, "POST", "/login", ("token=" + token).encode(), FORM, source=flood)
    check("... and at the login form", st == 429 and "set-cookie" not in h, (st, h))
    st, _, _ = req(port, "GET", "/api/status", None, {"Authorization": f"Bearer {token}"},
                   source=other)
    check("another address still reads with the right bearer token", st == 200, st)


def main():
    s = dashseed.Seeded("http", env={"HEALER_TRUSTED_PROXIES": "127.0.0.5, 127.0.0.6/32"})
    port, token = s.srv.port, s.token
    s.wait_running(30)

    # ---- pages and assets -------------------------------------------------------
    st, h, body = req(port, "GET", "/")
    csp = h.get("content-security-policy", "")
    check("without a session GET / is the login page",
          st == 200 and b'action="/login"' in body and b"/assets/app.js" not in body, body[:300])
    check("the page's CSP allows scripts from the page's origin only, never inline",
          "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
          and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, csp)
    check("the page has nosniff, DENY framing and a same-origin referrer policy",
          h.get("x-content-type-options") == "nosniff" and h.get("x-frame-options") == "DENY"
          and h.get("referrer-policy") == "same-origin", h)
    check("the page has no inline script", not re.search(rb"<script(?![^>]*\bsrc=)", body)
          and not re.search(rb"\son[a-z]+=", body), body)
    st, h, js = req(port, "GET", "/assets/app.js")
    etag = h.get("etag", "")
    check("an asset is served with its type, an ETag and revalidation",
          st == 200 and h.get("content-type") == "text/javascript; charset=utf-8"
          and re.fullmatch(r'"[0-9a-f]{32}"', etag) and h.get("cache-control") == "no-cache"
          and b"textContent" in js, h)
    st, h, b = req(port, "GET", "/assets/app.js", headers={"If-None-Match": etag})
    check("a matching If-None-Match gets 304 without a body or a Content-Type (RFC 9110 15.4.5)",
          st == 304 and b == b"" and "content-type" not in h and h.get("etag") == etag, (st, h, b[:80]))
    # the list's failure-type filter offers every type of the catalogue
    # (rules/catalog.yaml), the alert flow's runtime_* types too
    catalog = open(os.path.join(os.environ["HEALER_SOURCE_ROOT"], "rules", "catalog.yaml")).read()
    types = re.findall(r"^- name: ([a-z0-9_]+)$", catalog.split("\nfailure_types:", 1)[1], re.M)
    m = re.search(rb"const FAILURE_TYPES = \[(.*?)\];", js, re.S)
    offered = re.findall(r'"([a-z0-9_]+)"', m.group(1).decode()) if m else []
    check("the dashboard's failure-type filter offers every type of the catalogue",
          types and set(offered) == set(types), sorted(set(types) ^ set(offered)))
    st, h, _ = req(port, "HEAD", "/assets/app.css")
    check("HEAD of the stylesheet answers text/css",
          st == 200 and h.get("content-type") == "text/css; charset=utf-8", h)
    for bad in ("/assets/nope.js", "/assets/index.html", "/assets/../meson.build",
                "/assets/web/app.js"):
        st, _, _ = req(port, "GET", bad)
        check(f"{bad} answers 404", st == 404, st)
    st, h, _ = req(port, "POST", "/assets/app.js", b"", FORM)
    check("an asset refuses POST (405)", st == 405, st)

    # ---- read access -------------------------------------------------------------
    for path in ("/api/remediations", f"/api/remediations/{s.tasks[0][0]}", "/api/status"):
        st, _, _ = req(port, "GET", path)
        check(f"{path} without the token or a session answers 401", st == 401, st)
        st, _, _ = req(port, "GET", path, headers={"Authorization": "Bearer " + token})
        check(f"{path} with the bearer token answers 200", st == 200, st)
    # what needs the token is never kept by a shared cache (a proxy or a
    # CDN before the ingress): private, and revalidated on every use
    for path in ("/api/remediations", f"/api/remediations/{s.tasks[0][0]}", "/api/status",
                 "/api/insights", f"/api/remediations/{s.tasks[0][0]}/attempts/1/prompt"):
        st, h, _ = req(port, "GET", path, headers={"Authorization": "Bearer " + token})
        cc = [v.strip() for v in h.get("cache-control", "").split(",")]
        check(f"{path} answers Cache-Control private, no-cache",
              st == 200 and "private" in cc and "no-cache" in cc, (st, h.get("cache-control")))
    st, _, _ = req(port, "GET", "/api/remediations", headers={"Authorization": "Bearer wrong"})
    check("a wrong bearer token answers 401", st == 401, st)
    for path in ("/health", "/ready", "/metrics"):
        st, _, _ = req(port, "GET", path)
        check(f"{path} stays open for probes and scrapers", st == 200, st)

    # ---- login --------------------------------------------------------------------
    st, h, _ = req(port, "POST", "/login", b"token=wrong", FORM)
    check("a wrong token: 303 back to the form with no cookie",
          st == 303 and h.get("location") == "/?login=failed" and "set-cookie" not in h, h)
    st, h, _ = req(port, "POST", "/login", b"nothing=here", FORM)
    check("a form without a token: no cookie", st == 303 and "set-cookie" not in h, h)
    st, h, _ = req(port, "POST", "/login", ("token=" + token).encode(),
                   dict(FORM, Origin="http://evil.example"))
    check("a login posted from another origin is refused", st == 403 and "set-cookie" not in h,
          (st, h))
    st, h, _ = req(port, "POST", "/login", ("token=" + token).encode(),
                   dict(FORM, **{"Sec-Fetch-Site": "cross-site"}))
    check("a cross-site login (Sec-Fetch-Site) is refused", st == 403, st)
    st, h, _ = req(port, "POST", "/login", ("token=" + token.replace("-", "%2D")).encode(),
                   dict(FORM, Origin=f"http://127.0.0.1:{port}"))
    cookie = h.get("set-cookie", "")
    m = re.match(r"healer_session=([^;]+)", cookie)
    check("the right token (percent-encoded): 303 to / with the session cookie",
          st == 303 and h.get("location") == "/" and m, h)
    value = m.group(1) if m else ""
    attrs = [a.strip() for a in cookie.split(";")]
    check("the cookie is HttpOnly, SameSite=Strict, Path=/, with a lifetime",
          "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs
          and any(a.startswith("Max-Age=") for a in attrs), cookie)
    check("over plain HTTP the cookie is not Secure (it would never be sent back)",
          "Secure" not in attrs, cookie)
    st, h, _ = req(port, "POST", "/login", ("token=" + token).encode(),
                   dict(FORM, **{"X-Forwarded-Proto": "https"}))
    check("behind a TLS-terminating proxy (X-Forwarded-Proto: https) the cookie is Secure",
          st == 303 and "Secure" in [a.strip() for a in h.get("set-cookie", "").split(";")], h)
    check("the cookie holds no token", token not in value and value
          and hashlib.sha256(token.encode()).hexdigest() not in value, value)
    jar = {"Cookie": "healer_session=" + value}
    st, _, body = req(port, "GET", "/", headers=jar)
    check("with the session GET / is the app", st == 200 and b"/assets/app.js" in body, body[:200])
    st, _, _ = req(port, "GET", "/api/remediations", headers=jar)
    check("with the session the API answers 200", st == 200, st)
    tampered = value[:-1] + ("0" if value[-1] != "0" else "1")
    st, _, _ = req(port, "GET", "/api/remediations", headers={"Cookie": "healer_session=" + tampered})
    check("a tampered session answers 401", st == 401, st)
    st, _, _ = req(port, "GET", "/api/remediations",
                   headers={"Cookie": "healer_session=" + session_for(token, int(time.time()) - 5)})
    check("an expired session answers 401", st == 401, st)
    st, _, _ = req(port, "GET", "/api/remediations",
                   headers={"Cookie": "healer_session=" + session_for("other", int(time.time()) + 60)})
    check("a session signed for another token answers 401", st == 401, st)
    st, _, _ = req(port, "GET", "/api/remediations",
                   headers={"Cookie": "healer_session=" + session_for(token, int(time.time()) + 60)})
    check("a session signed with the token's key answers 200", st == 200, st)
    st, _, _ = req(port, "GET", "/api/remediations", headers=dict(jar, Authorization="Bearer no"))
    check("a wrong bearer header is not rescued by a cookie", st == 401, st)
    basic = dict(jar, Authorization="Basic dXNlcjpwYXNz")
    st, _, _ = req(port, "GET", "/api/remediations", headers=basic)
    st2, _, body = req(port, "GET", "/", headers=basic)
    check("behind an ingress's basic auth (Authorization: Basic) the session still reads",
          st == 200 and st2 == 200 and b"/assets/app.js" in body, (st, st2, body[:120]))
    st, _, _ = req(port, "GET", "/api/remediations",
                   headers={"Authorization": "Basic dXNlcjpwYXNz"})
    check("another scheme without a session answers 401", st == 401, st)
    other = {"Cookie": "healer_session=" + session_for(token, int(time.time()) + 60)}
    st, h, _ = req(port, "POST", "/logout", b"", dict(FORM, **jar))
    check("logout clears the cookie", st == 303 and "Max-Age=0" in h.get("set-cookie", ""), h)
    # a copy of the cookie (another tab, a stolen one) ends with it (before: it
    # read for the rest of its 12 hours); another session does not
    st, _, _ = req(port, "GET", "/api/status", headers=jar)
    st2, _, body = req(port, "GET", "/", headers=jar)
    check("after logout the old session cookie answers 401 and gets the login page",
          st == 401 and st2 == 200 and b"/assets/app.js" not in body, (st, st2, body[:120]))
    st, _, _ = req(port, "GET", "/api/status", headers=other)
    check("after logout another session still reads", st == 200, st)

    # ---- ETags of the documents the dashboard polls ----------------------------------
    auth = {"Authorization": "Bearer " + token}
    tid = s.tasks[1][0]
    # a seeded task may still be written once more (its attempt settling):
    # then the conditional GET is a 200 with a new ETag, and it is asked again
    for _ in range(25):
        st, h, _ = req(port, "GET", "/api/remediations?limit=10", headers=auth)
        et = h.get("etag")
        st2, h2, b2 = req(port, "GET", "/api/remediations?limit=10",
                          headers=dict(auth, **{"If-None-Match": et}))
        if st2 == 304 or h2.get("etag") == et:
            break
        time.sleep(0.2)
    check("/api/remediations answers 304 while nothing changed, without a Content-Type",
          et and st2 == 304 and b2 == b"" and "content-type" not in h2, (et, st2, h2))
    # /api/status and /api/insights carry their uptime and the time they were
    # made: their tag is weak and leaves those out, so a later poll is a 304
    clocked = {}
    for path in ("/api/status", "/api/insights"):
        for _ in range(25):
            st, h, b = req(port, "GET", path, headers=auth)
            time.sleep(1.1)  # the next second: another uptime and generated_at
            st2, h2, b2 = req(port, "GET", path, headers=dict(auth, **{"If-None-Match": h.get("etag")}))
            if st2 == 304:
                break
        clocked[path] = (h.get("etag"), st2, b2)
    check("/api/status and /api/insights answer 304 a second later (a weak tag without the clock)",
          all(e and e.startswith('W/"') and st2 == 304 and b2 == b"" for e, st2, b2 in clocked.values()),
          clocked)
    st, h, _ = req(port, "GET", f"/api/remediations/{tid}", headers=auth)
    et1 = h.get("etag")
    st_et = req(port, "GET", "/api/status", headers=auth)[1].get("etag")
    s.set_phase(tid, "Succeeded")
    changed = dashseed.wait_for(lambda: s.task(tid).get("state") == "verifying", 20)
    st2, _, b2 = req(port, "GET", "/api/remediations?limit=10", headers=dict(auth, **{"If-None-Match": et}))
    st3, _, _ = req(port, "GET", f"/api/remediations/{tid}", headers=dict(auth, **{"If-None-Match": et1}))
    st4, _, b4 = req(port, "GET", "/api/status", headers=dict(auth, **{"If-None-Match": st_et}))
    check("a state change changes the documents' ETags (200 again), /api/status's too",
          changed and st2 == 200 and b'"verifying"' in b2 and st3 == 200 and st4 == 200
          and b'"verifying"' in b4, (st2, st3, st4))

    # ---- the prompt of an attempt ----------------------------------------------------
    st, h, body = req(port, "GET", f"/api/remediations/{tid}/attempts/1/prompt", headers=auth)
    check("an attempt's prompt is served as text",
          st == 200 and h.get("content-type") == "text/plain; charset=utf-8"
          and b"```" in body and h.get("x-content-type-options") == "nosniff", (st, h))
    etag = h.get("etag", "")
    st2, h2, b2 = req(port, "GET", f"/api/remediations/{tid}/attempts/1/prompt",
                      headers=dict(auth, **{"If-None-Match": etag}))
    check("the prompt carries a strong ETag and answers 304 to a matching If-None-Match",
          re.fullmatch(r'"[0-9a-f]{32}"', etag) and st2 == 304 and b2 == b""
          and h2.get("etag") == etag and "content-type" not in h2, (etag, st2, h2))
    st2, _, b2 = req(port, "GET", f"/api/remediations/{tid}/attempts/1/prompt",
                     headers=dict(auth, **{"If-None-Match": '"0123"'}))
    check("another tag gets the prompt again", st2 == 200 and b2 == body, st2)
    st, _, _ = req(port, "GET", f"/api/remediations/{tid}/attempts/1/prompt")
    check("the prompt needs read access too", st == 401, st)
    for bad in (f"/api/remediations/{tid}/attempts/9/prompt",
                f"/api/remediations/{tid}/attempts/x/prompt",
                f"/api/remediations/{tid}/attempts/1/other"):
        st, _, _ = req(port, "GET", bad, headers=auth)
        check(f"{bad.split(tid)[1]} answers 404", st == 404, st)
    st, _, b = req(port, "GET", f"/api/remediations/{tid}", headers=auth)
    check("the task document has the decision's candidates and the stored event",
          b'"candidates"' in b and b'"event":{' in b and b'"workflow_name":"Gadget CI"' in b, b[:400])
    st, _, text = req(port, "GET", "/metrics")
    check("/metrics counts the 304s, 303s and 403s under their own codes, not 'other'",
          b'healer_http_requests_total{route="remediations",code="304"}' in text
          and b'healer_http_requests_total{route="login",code="303"}' in text
          and b'healer_http_requests_total{route="login",code="403"}' in text
          and b'healer_http_requests_total{route="dashboard_asset",code="304"}' in text,
          [ln for ln in text.decode().splitlines() if ln.startswith("healer_http_requests_total")])
    st, _, b = req(port, "GET", "/api/insights", headers=auth)
    check("the insights' numbers are written as `healer insights --json` writes them (0.9)",
          st == 200 and b'"targets":{"tasks":null,"routing_correct":0.9,' in b
          and b'"escalation_rate":0.1}' in b, b[:600])
    hostile_urls(s, port, auth, tid)
    source_detail_utf8(s, auth)
    error_headers(port, auth)
    login_limit(port, token)
    bearer_limit(port, token)
    s.srv.stop()

    # ---- without a token everything is open ----------------------------------------------
    o = dashseed.Seeded("open", token=False)
    st, _, body = req(o.srv.port, "GET", "/")
    check("without HEALER_API_TOKEN GET / is the app", st == 200 and b"/assets/app.js" in body, body[:200])
    st, _, _ = req(o.srv.port, "GET", "/api/remediations")
    check("without HEALER_API_TOKEN the API is open", st == 200, st)
    st, h, _ = req(o.srv.port, "POST", "/login", b"token=x", FORM)
    check("without HEALER_API_TOKEN a login just goes to /", st == 303 and "set-cookie" not in h, h)
    o.srv.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
