#!/usr/bin/env python3
"""test_logout.py - a logout the store cannot record (its write lock held
by another process past the busy timeout) fails loudly: 503 with a page
saying the logout failed, the cookie kept (not cleared), and the session
still live; once the store takes writes again the logout ends the session.
Runs the real binary on loopback; standard library only; prints TAP."""
import os
import re
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import check, finish, reap, run  # noqa: E402
import bareserver  # noqa: E402

TMP = tempfile.mkdtemp(prefix="healer-logout-")
TOKEN = "logout-api-token-31c7"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
procs = []


def serve(name):
    d = os.path.join(TMP, name)
    return d, bareserver.start(procs, d, TMP, {"HEALER_API_TOKEN": TOKEN})


def req(port, method, path, body=None, headers=None):
    return bareserver.req(port, method, path, body, headers, timeout=60)


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
