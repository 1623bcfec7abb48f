#!/usr/bin/env python3
"""proxy_stub.py - a forward proxy stand-in for healer's tests: what a
kubeconfig's proxy-url points at (an HTTP proxy, or a SOCKS5 one).

On one loopback port it speaks, by the first byte a client sends (with
--cert/--key a TLS ClientHello first makes it an https proxy: the same,
inside TLS):
- SOCKS5 (RFC 1928, CONNECT only; with --user the username/password method
  of RFC 1929, else "no authentication"): IPv4, IPv6 or domain targets;
  reply 0x04 (host unreachable) for a name it cannot resolve or a target
  that refuses, 0x02 (not allowed) for one off loopback;
- HTTP CONNECT host:port (RFC 9110 9.3.6): with --user a missing or wrong
  Proxy-Authorization: Basic is 407 with Proxy-Authenticate; 200
  "Connection established" and then the tunnel; 502 when the target cannot
  be reached, 403 when it is not on loopback; other proxy requests
  (absolute-form) are 501, as a CONNECT-only proxy answers.
Every proxied connection is recorded: {"kind": "socks5"|"connect",
"target": "host:port", "atyp": "ipv4"|"ipv6"|"domain" (SOCKS5), "user":
the user given or null, "auth_ok": bool, "status": the answer, "tls":
whether the client spoke TLS to the proxy}.

Control (origin-form requests to the proxy itself):
  GET  /_stub/used    the records
  POST /_stub/reset   forget them

usage: proxy_stub.py [--user USER:PASS] [--cert C --key K]
Python standard library only. Tests talk to loopback only: so does it.
"""
import argparse
import base64
import ipaddress
import json
import select
import socket
import socketserver
import ssl
import sys
import threading
import time

IDLE_S = 30  # a tunnel idle this long is closed
LOCK = threading.Lock()
USED = []
CRED = None  # (user, password) required, or None
TLS = None  # the server's SSLContext with --cert, or None


def loopback(host):
    """The address to connect to for host, or None when it is off loopback
    ("" when it cannot be resolved)."""
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        try:
            addr = ipaddress.ip_address(socket.gethostbyname(host))
        except OSError:
            return ""
    return str(addr) if addr.is_loopback else None


def relay(a, b):
    """Copies both ways until one side closes or IDLE_S pass quietly."""
    socks = [a, b]
    while True:
        # TLS data already decrypted is not seen by select
        r = [s for s in socks if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not r:
            r, _, _ = select.select(socks, [], [], IDLE_S)
        if not r:
            return
        for s in r:
            try:
                data = s.recv(65536)
            except OSError:
                return
            if not data:
                return
            (b if s is a else a).sendall(data)


def open_target(host, port):
    addr = loopback(host)
    if addr is None:
        return None, "not allowed"
    if not addr:
        return None, "unresolvable"
    try:
        return socket.create_connection((addr, port), timeout=10), None
    except OSError:
        return None, "unreachable"


class Handler(socketserver.BaseRequestHandler):
    tls = False  # the client spoke TLS to the proxy

    def record(self, entry):
        entry["tls"] = self.tls
        with LOCK:
            USED.append(entry)

    def handle(self):
        s = self.request
        s.settimeout(IDLE_S)
        try:
            first = s.recv(1, socket.MSG_PEEK)
            if not first:
                return
            if first[0] == 0x16 and TLS:  # a TLS handshake: an https proxy (HTTP inside)
                self.tls = True
                self.http(TLS.wrap_socket(s, server_side=True))
            elif first[0] == 5:
                self.socks5(s)
            else:
                self.http(s)
        except (OSError, ValueError):
            pass

    # ---- SOCKS5 ----
    def recvn(self, s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ValueError("short read")
            buf += chunk
        return buf

    def socks5(self, s):
        ver, nmethods = self.recvn(s, 2)
        methods = self.recvn(s, nmethods)
        want = 2 if CRED else 0
        # each use is recorded before its answer: a client that has the
        # answer may ask /_stub/used at once
        if want not in methods:
            self.record({"kind": "socks5", "target": None, "user": None, "auth_ok": False,
                         "status": "no acceptable method"})
            s.sendall(b"\x05\xff")
            return
        s.sendall(bytes([5, want]))
        user, ok = None, CRED is None
        if want == 2:
            _, ulen = self.recvn(s, 2)
            user = self.recvn(s, ulen).decode(errors="replace")
            plen = self.recvn(s, 1)[0]
            pw = self.recvn(s, plen).decode(errors="replace")
            ok = (user, pw) == CRED
            if not ok:
                self.record({"kind": "socks5", "target": None, "user": user, "auth_ok": False,
                             "status": "bad credentials"})
            s.sendall(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                return
        _, cmd, _, atyp = self.recvn(s, 4)
        if atyp == 1:
            host, kind = socket.inet_ntop(socket.AF_INET, self.recvn(s, 4)), "ipv4"
        elif atyp == 4:
            host, kind = socket.inet_ntop(socket.AF_INET6, self.recvn(s, 16)), "ipv6"
        else:
            host, kind = self.recvn(s, self.recvn(s, 1)[0]).decode(errors="replace"), "domain"
        port = int.from_bytes(self.recvn(s, 2), "big")
        entry = {"kind": "socks5", "target": f"{host}:{port}", "atyp": kind, "user": user,
                 "auth_ok": ok}
        if cmd != 1:
            self.record(dict(entry, status="command not supported"))
            s.sendall(b"\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00")
            return
        t, why = open_target(host, port)
        if not t:
            code = 2 if why == "not allowed" else 4
            self.record(dict(entry, status=why))
            s.sendall(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))
            return
        self.record(dict(entry, status="tunnel"))
        s.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
        with t:
            relay(s, t)

    # ---- HTTP ----
    def http(self, s):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                return
            head += chunk
            if len(head) > 65536:
                return self.answer(s, 431, "request header too large")
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return self.answer(s, 400, "bad request line")
        method, target, _ = parts
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        if target.startswith("/_stub/"):
            return self.control(s, method, target)
        if method != "CONNECT":
            return self.answer(s, 501, "only CONNECT is proxied here")
        host, _, port = target.rpartition(":")
        user, ok = None, CRED is None
        auth = headers.get("proxy-authorization", "")
        if auth.lower().startswith("basic "):
            try:
                u, _, pw = base64.b64decode(auth[6:].strip()).decode().partition(":")
                user, ok = u, CRED is None or (u, pw) == CRED
            except (ValueError, UnicodeDecodeError):
                ok = False
        entry = {"kind": "connect", "target": target, "user": user, "auth_ok": ok}
        if not ok:
            self.record(dict(entry, status=407))
            return self.answer(s, 407, "proxy authentication required",
                               'Proxy-Authenticate: Basic realm="proxy-stub"\r\n')
        try:
            t, why = open_target(host, int(port))
        except ValueError:
            t, why = None, "bad port"
        if not t:
            code = 403 if why == "not allowed" else 502
            self.record(dict(entry, status=code))
            return self.answer(s, code, why)
        self.record(dict(entry, status=200))
        s.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with t:
            if rest:
                t.sendall(rest)
            relay(s, t)

    def control(self, s, method, target):
        if method == "GET" and target == "/_stub/used":
            with LOCK:
                body = json.dumps(USED)
            return self.answer(s, 200, body, ctype="application/json")
        if method == "POST" and target == "/_stub/reset":
            with LOCK:
                USED.clear()
            return self.answer(s, 200, "{}", ctype="application/json")
        return self.answer(s, 404, "no such control")

    def answer(self, s, code, text, extra="", ctype="text/plain"):
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                  407: "Proxy Authentication Required", 431: "Request Header Fields Too Large",
                  501: "Not Implemented", 502: "Bad Gateway"}.get(code, "Error")
        body = text.encode()
        s.sendall((f"HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\n"
                   f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n").encode()
                  + body)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global CRED
    ap = argparse.ArgumentParser()
    ap.add_argument("--user", help="USER:PASS the proxy requires")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    if a.cert:
        global TLS
        TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        TLS.load_cert_chain(a.cert, a.key)
    if a.user:
        u, _, p = a.user.partition(":")
        CRED = (u, p)
    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
