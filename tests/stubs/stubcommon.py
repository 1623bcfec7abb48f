"""stubcommon.py - shared plumbing for healer's test stub servers.

Each stub is one process: a ThreadingHTTPServer on 127.0.0.1 (port 0 unless
given) that prints "PORT <n>" on stdout once it listens, keeps its state in
memory, and records every request. Control endpoints, common to all stubs:

  GET  /_stub/requests   every recorded request: method, path (as sent, still
                         percent-encoded), query (decoded), headers
                         (lower-case names), body (JSON when it parses, else
                         text, absent when empty), time; only those of
                         method M with ?method=M, whose path starts with P
                         with ?path=P
  POST /_stub/reset      forget the recorded requests
  POST /_stub/config     merge a JSON object into the stub's config; the key
                         "rules" is a list of behaviours applied before the
                         normal routes, first match wins:
                           {"method": "GET", "path": "/prefix", "times": 2,
                            "query": {"watch": "1"}, "delay_ms": 300,
                            "status": 503, "headers": {...},
                            "body": <json or string>, "reset_in": 2}
                         "path" is a prefix; "query" values must all match;
                         "times" counts down (absent/-1: forever); a rule
                         without "status" only delays; without "body" the
                         stub's own error shape is sent (rule_body);
                         "reset_in" sets X-RateLimit-Remaining: 0 and
                         X-RateLimit-Reset to now + reset_in seconds.

Python standard library only.
"""
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class StubServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler):
        super().__init__(addr, handler)
        self.lock = threading.Lock()
        self.requests = []
        self.config = {"rules": []}
        self.ssl_ctx = None

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_ctx is not None:
            # handshake lazily in the handler thread, so a client that
            # aborts the handshake never stalls the accept loop
            sock = self.ssl_ctx.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False)
        return sock, addr


class StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "healer-stub/1"
    # headers and body go out in separate writes: without TCP_NODELAY the
    # body waits for the client's delayed ACK (40 ms), which real API
    # servers do not add
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    # ---- helpers ----
    def body_json(self):
        raw = self.read_body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return ValueError("bad json")

    def read_body(self):
        if hasattr(self, "_raw_body"):
            return self._raw_body
        n = int(self.headers.get("Content-Length") or 0)
        self._raw_body = self.rfile.read(n) if n else b""
        return self._raw_body

    def send(self, status, body=None, headers=None, ctype="application/json"):
        if body is None:
            data = b""
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        self.send_response(status)
        if data or ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def record(self):
        u = urlsplit(self.path)
        entry = {
            "method": self.command,
            "path": u.path,
            "query": {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()},
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "time": time.time(),
        }
        raw = self.read_body()
        if raw:
            try:
                entry["body"] = json.loads(raw)
            except ValueError:
                entry["body"] = raw.decode("utf-8", "replace")
        with self.server.lock:
            self.server.requests.append(entry)
        return u.path, entry["query"]

    def rule_body(self, status):  # overridden by stubs with their own error shape
        return {"message": "stub rule"}

    def apply_rules(self, path, query=None):
        """Applies the first matching configured rule; True if it answered."""
        rule = None
        query = query or {}
        with self.server.lock:
            for r in self.server.config.get("rules", []):
                if r.get("method") and r["method"] != self.command:
                    continue
                if not path.startswith(r.get("path", "")):
                    continue
                if any(query.get(k) != v for k, v in (r.get("query") or {}).items()):
                    continue
                times = r.get("times", -1)
                if times == 0:
                    continue
                if times > 0:
                    r["times"] = times - 1
                rule = dict(r)
                break
        if rule is None:
            return False
        if rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        if "status" not in rule:
            return False
        headers = dict(rule.get("headers", {}))
        if "reset_in" in rule:
            headers["X-RateLimit-Remaining"] = "0"
            headers["X-RateLimit-Reset"] = str(int(time.time()) + int(rule["reset_in"]))
        self.read_body()
        self.send(rule["status"], rule["body"] if "body" in rule else self.rule_body(rule["status"]),
                  headers)
        return True

    def control(self, path):
        if path == "/_stub/requests":
            q = parse_qs(urlsplit(self.path).query)
            method, prefix = q.get("method", [None])[0], q.get("path", [""])[0]
            with self.server.lock:
                self.send(200, [r for r in self.server.requests
                                if (method is None or r["method"] == method)
                                and r["path"].startswith(prefix)])
            return True
        if path == "/_stub/reset" and self.command == "POST":
            self.read_body()
            with self.server.lock:
                self.server.requests = []
            self.send(200, {"ok": True})
            return True
        if path == "/_stub/config" and self.command == "POST":
            cfg = self.body_json() or {}
            with self.server.lock:
                self.server.config.update(cfg)
            self.send(200, {"ok": True})
            return True
        return False

    def dispatch(self):
        # one handler serves every request of a keep-alive connection: forget
        # the previous request's body, or this one's would be left unread
        self.__dict__.pop("_raw_body", None)
        u = urlsplit(self.path)
        if u.path.startswith("/_stub/"):
            if self.control(u.path) or self.stub_control(u.path):
                return
            self.send(404, {"message": "no such control endpoint"})
            return
        path, query = self.record()
        if self.apply_rules(path, query):
            return
        self.route(path, query)

    def stub_control(self, path):  # overridden by stubs with extra controls
        return False

    def route(self, path, query):  # overridden
        self.send(404, {"message": "Not Found"})

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()


def serve(handler, port=0, certfile=None, keyfile=None, server_cls=StubServer, announce=True):
    """Starts the server; returns it (serving in a thread)."""
    srv = server_cls(("127.0.0.1", port), handler)
    if certfile:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        srv.ssl_ctx = ctx
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    if announce:
        print(f"PORT {srv.server_address[1]}", flush=True)
    return srv


def wait_forever():
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sys.exit(0)
