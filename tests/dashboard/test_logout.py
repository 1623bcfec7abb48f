#!/usr/bin/env python3
"""test_logout.py - a logout the store cannot record (its write lock held
by another process past the busy timeout) fails loudly: 503 with a page
saying the logout failed, the cookie kept (not cleared), and the session
still live; once the store takes writes again the logout ends the session.
Runs the real binary on loopback; standard library only; prints TAP."""
import http.client
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import check, finish, reap, run  # noqa: E402

HEALER = os.environ["HEALER_BIN"]
TMP = tempfile.mkdtemp(prefix="healer-logout-")
TOKEN = "logout-api-token-31c7"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
procs = []


def serve(name):
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    pf, log = os.path.join(d, "port"), os.path.join(d, "server.log")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "GITHUB_"))}
    e.pop("KUBECONFIG", None)
    e.update({"HOME": TMP, "HEALER_DISPATCH": "none", "GITHUB_API_URL": "http://127.0.0.1:9",
              "HEALER_API_TOKEN": TOKEN})
    with open(log, "wb") as lf:
        p = subprocess.Popen([HEALER, "server", "--listen", "127.0.0.1:0", "--data-dir", d,
                              "--port-file", pf], env=e, stdout=lf, stderr=lf)
    procs.append(p)
    deadline = time.time() + 20
    while time.time() < deadline:
        if os.path.exists(pf) and open(pf).read().strip():
            return d, int(open(pf).read())
        if p.poll() is not None:
            break
        time.sleep(0.02)
    raise RuntimeError("the server did not start: " + open(log).read()[-2000:])


def req(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def main():
    d, port = serve("locked")
    st, h, _ = req(port, "POST", "/login", ("token=" + TOKEN).encode(), FORM)
    m = re.match(r"healer_session=([^;]+)", h.get("set-cookie", ""))
    check("a login gets a session", st == 303 and m, (st, h))
    jar = {"Cookie": "healer_session=" + (m.group(1) if m else "")}
    db = os.path.join(d, "healer.db")
    lock = sqlite3.connect(db, timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the write lock: the store's writes wait, then fail
    try:
        st, h, body = req(port, "POST", "/logout", b"", dict(FORM, **jar))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    page = body.decode("utf-8", "replace")
    check("a logout the store cannot record answers 503 with a page saying so",
          st == 503 and h.get("content-type", "").startswith("text/html")
          and "Logout failed" in page and "still logged in" in page
          and "content-security-policy" in h, (st, h, page[:300]))
    check("... and keeps the cookie (no Set-Cookie clearing it)", "set-cookie" not in h, h)
    st, _, _ = req(port, "GET", "/api/status", headers=jar)
    check("the session still reads (it was not revoked)", st == 200, st)
    st, h, _ = req(port, "POST", "/logout", b"", dict(FORM, **jar))
    check("once the store takes writes, the logout clears the cookie",
          st == 303 and "Max-Age=0" in h.get("set-cookie", ""), (st, h))
    st, _, _ = req(port, "GET", "/api/status", headers=jar)
    check("... and the session no longer reads", st == 401, st)
    finish()


if __name__ == "__main__":
    try:
        run(main)
    finally:
        reap(procs, TMP)
