"""pgwire.py - a minimal PostgreSQL client for the test drivers (Python
standard library only): the frontend/backend protocol v3 over a Unix socket
or TCP, trust or cleartext/MD5/SCRAM-SHA-256 password authentication, and
the simple query protocol. Values come back as Python types by their type
OID (bool, integers, floats, bytea as bytes, NULL as None, the rest as
str), so assertions written against Python's sqlite3 module hold as they
are. Not a general driver: no TLS, no COPY, no extended protocol.
"""
import base64
import hashlib
import hmac
import os
import socket
import struct

_INT_OIDS = {20, 21, 23, 26, 28}
_FLOAT_OIDS = {700, 701, 1700}


class Error(Exception):
    def __init__(self, fields):
        self.fields = fields
        self.sqlstate = fields.get("C", "")
        super().__init__(f"{fields.get('S', 'ERROR')} {self.sqlstate}: {fields.get('M', '?')}")


def _convert(oid, raw):
    if raw is None:
        return None
    if oid == 17:  # bytea, hex output
        text = raw.decode()
        return bytes.fromhex(text[2:]) if text.startswith("\\x") else raw
    text = raw.decode("utf-8")
    if oid == 16:
        return text == "t"
    if oid in _INT_OIDS:
        return int(text)
    if oid in _FLOAT_OIDS:
        return float(text)
    return text


def quote(v):
    """A SQL literal for v (None, bool, int, float, bytes, str)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (bytes, bytearray)):
        return "'\\x" + bytes(v).hex() + "'::bytea"
    return "'" + str(v).replace("'", "''") + "'"


class Cursor:
    def __init__(self, rows, columns, status):
        self.rows = rows
        self.description = [(c,) for c in columns]
        self.status = status
        self.rowcount = int(status.split()[-1]) if status and status.split()[-1].isdigit() else -1

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return list(self.rows)

    def __iter__(self):
        return iter(self.rows)


class Connection:
    """One session. host: a socket directory (starts with '/') or an address."""

    def __init__(self, host, port, user, dbname, password=None, timeout=30):
        if host.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(os.path.join(host, f".s.PGSQL.{port}"))
        else:
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.user, self.password = user, password
        self.params = {}
        body = struct.pack("!i", 196608)
        for k, v in (("user", user), ("database", dbname), ("client_encoding", "UTF8")):
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        self._startup()

    # ---- protocol ----
    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buf += chunk
        return buf

    def _message(self):
        head = self._read(5)
        kind, length = head[:1], struct.unpack("!i", head[1:])[0]
        return kind, self._read(length - 4)

    def _send(self, kind, payload):
        self.sock.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)

    @staticmethod
    def _fields(payload):
        out = {}
        for part in payload.split(b"\0"):
            if part:
                out[chr(part[0])] = part[1:].decode("utf-8", "replace")
        return out

    def _startup(self):
        scram = None
        while True:
            kind, p = self._message()
            if kind == b"R":
                code = struct.unpack("!i", p[:4])[0]
                if code == 0:
                    continue
                if code == 3:  # cleartext
                    self._send(b"p", (self.password or "").encode() + b"\0")
                elif code == 5:  # md5
                    salt = p[4:8]
                    inner = hashlib.md5((self.password or "").encode() + self.user.encode())
                    outer = hashlib.md5(inner.hexdigest().encode() + salt).hexdigest()
                    self._send(b"p", b"md5" + outer.encode() + b"\0")
                elif code == 10:  # SASL: SCRAM-SHA-256
                    scram = _Scram(self.password or "")
                    first = scram.client_first().encode()
                    self._send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first)
                elif code == 11:
                    self._send(b"p", scram.client_final(p[4:].decode()).encode())
                elif code == 12:
                    scram.verify(p[4:].decode())
                else:
                    raise Error({"M": f"unsupported authentication {code}"})
            elif kind == b"S":
                k, v = p.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif kind == b"E":
                raise Error(self._fields(p))
            elif kind == b"Z":
                return

    def query(self, sql):
        """Runs sql (one or more statements); the last result's Cursor."""
        self._send(b"Q", sql.encode("utf-8") + b"\0")
        rows, cols, oids, status, err = [], [], [], "", None
        while True:
            kind, p = self._message()
            if kind == b"T":
                n = struct.unpack("!h", p[:2])[0]
                pos, cols, oids, rows = 2, [], [], []
                for _ in range(n):
                    end = p.index(b"\0", pos)
                    cols.append(p[pos:end].decode())
                    oids.append(struct.unpack("!i", p[end + 7:end + 11])[0])
                    pos = end + 19
            elif kind == b"D":
                n = struct.unpack("!h", p[:2])[0]
                pos, row = 2, []
                for i in range(n):
                    ln = struct.unpack("!i", p[pos:pos + 4])[0]
                    pos += 4
                    raw = None if ln < 0 else p[pos:pos + ln]
                    pos += max(ln, 0)
                    row.append(_convert(oids[i], raw))
                rows.append(tuple(row))
            elif kind == b"C":
                status = p.rstrip(b"\0").decode()
            elif kind == b"E":
                err = Error(self._fields(p))
            elif kind == b"Z":
                if err:
                    raise err
                return Cursor(rows, cols, status)
            # 'N' notices, 'S' parameter changes, 'I' empty query: ignored

    def execute(self, sql, params=()):
        """Like sqlite3: '?' placeholders filled with literals."""
        if params:
            parts = sql.split("?")
            if len(parts) != len(params) + 1:
                raise ValueError("placeholder count mismatch")
            sql = parts[0] + "".join(quote(v) + rest for v, rest in zip(params, parts[1:]))
        return self.query(sql)

    def close(self):
        try:
            self._send(b"X", b"")
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Scram:
    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()

    def client_first(self):
        self.first_bare = f"n=,r={self.nonce}"
        return "n,," + self.first_bare

    def client_final(self, server_first):
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth = f"{self.first_bare},{server_first},{without_proof}".encode()
        sig = hmac.new(stored, auth, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_sig = base64.b64encode(hmac.new(server_key, auth, hashlib.sha256).digest())
        return f"{without_proof},p={base64.b64encode(proof).decode()}"

    def verify(self, server_final):
        if server_final != "v=" + self.server_sig.decode():
            raise Error({"M": "the server's SCRAM signature does not match"})
