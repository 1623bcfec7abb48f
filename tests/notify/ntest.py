"""ntest.py - shared helpers for the notify integration drivers: TAP
checks, the report fixtures (the design's escalation example and a hostile
one), starting the stand-ins (tests/stubs) and the aiosmtpd server, making
throw-away TLS material, and running notifyprobe. Python standard library
only (the SMTP server itself runs under an interpreter that has aiosmtpd).
"""
import atexit
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

PROBE = os.environ["NOTIFYPROBE"]
STUBS = os.environ["HEALER_STUBS"]
ROOT = os.environ["HEALER_SOURCE_ROOT"]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import tap  # noqa: E402
from tap import check  # noqa: E402,F401  (re-exported for the drivers)

_procs = []
_sanitizer = []
TMP = tempfile.mkdtemp(prefix="healer-notify-")

T0 = 1764000000000  # 2025-11-24T16:00:00Z

REPORT = {
    "task_id": "ci-9876543210-clippy",
    "repository": "5dlabs/cto",
    "workflow": "Controller CI",
    "job": "clippy",
    "branch": "feat/new-feature",
    "run_url": "https://github.com/5dlabs/cto/actions/runs/9876543210",
    "pr_number": 1234,
    "pr_url": "https://github.com/5dlabs/cto/pull/1234",
    "failure_type": "rust_clippy",
    "evidence": "error[E0382]: borrow of moved value: `config`",
    "task_url": "http://healer.example.com/api/remediations/ci-9876543210-clippy",
    "max_attempts": 3,
    "time_ms": T0,
    "attempts": [
        {"number": 1, "agent": "Rex", "coderun": "healer-ci-rex-9876543210-1",
         "outcome": "ci_still_failing",
         "reason": "Fixed clippy lint, but new test failure appeared",
         "pr_url": "https://github.com/5dlabs/cto/pull/1234",
         "started_ms": T0 - 3600000, "finished_ms": T0 - 3600000 + 252000},
        {"number": 2, "agent": "Rex", "coderun": "healer-ci-rex-9876543210-2",
         "outcome": "ci_still_failing",
         "reason": "Fixed test, but introduced new clippy error",
         "pr_url": "https://github.com/5dlabs/cto/pull/1234",
         "started_ms": T0 - 1800000, "finished_ms": T0 - 1800000 + 95000},
        {"number": 3, "agent": "Atlas", "coderun": "healer-ci-atlas-9876543210-3",
         "outcome": "agent_failed",
         "status_message": "Tried general fix approach, still failing",
         "started_ms": T0 - 900000, "finished_ms": T0 - 900000 + 4000000},
    ],
}

HOSTILE_TEXT = ("@everyone @here <!channel> <!here> <@U123> <@&456> <#789> "
                "| pipe | ``` fence ``` <script>alert(1)</script> <img src=x onerror=alert(1)> "
                "[click](javascript:alert(1)) **bold** _it_ ~~s~~ $x^2$ #1 "
                "\r\nBcc: evil@example.com\r\n\r\n. \u202eevil\u202c &amp; &lt;")


def hostile_report(scale=1):
    """Every text hostile; scale multiplies the sizes (1: short, >1: huge)."""
    h = HOSTILE_TEXT * scale
    r = dict(REPORT)
    r.update({
        "task_id": "ci-1 " + h[:200], "repository": "evil/" + h, "workflow": h,
        "job": h, "branch": h, "failure_type": h, "state": h,
        "evidence": ("```\n" + h + "\n") * scale + "\u00e9\U0001F680" * 500 * scale,
        "attempts": [{"number": i + 1, "agent": "Rex|" + h, "coderun": "cr|" + h,
                      "outcome": ["ci_still_failing", "agent_failed", "x|" + h][i % 3],
                      "reason": h * 3, "status_message": h,
                      "pr_url": "https://github.com/5dlabs/cto/pull/1234"
                      if i % 2 else "javascript:alert(1)",
                      "started_ms": T0, "finished_ms": T0 + 1000 * i}
                     for i in range(min(3 * scale, 60))],
    })
    return r


def finish():
    check("no sanitizer reports from notifyprobe", not _sanitizer, "\n".join(_sanitizer))
    tap.finish()


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)
    subprocess.run(["rm", "-rf", TMP])


atexit.register(_cleanup)


def _start(argv):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _procs.append(p)
    line = p.stdout.readline()
    if not line.startswith("PORT "):
        raise RuntimeError(f"{argv[1]} did not start: {line!r} {p.stderr.read()}")
    return p, int(line.split()[1])


def start_stub(script, *args):
    """Starts tests/stubs/<script>; returns (process, port)."""
    return _start([sys.executable, os.path.join(STUBS, script), *args])


def stop(p):
    if p.poll() is None:
        p.kill()
        p.wait(timeout=5)


def aiosmtpd_python():
    """An interpreter that can import aiosmtpd (Debian's python3-aiosmtpd
    lives in /usr/lib/python3/dist-packages)."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(exe) and subprocess.run(
                [exe, "-c", "import aiosmtpd"], capture_output=True).returncode == 0:
            return exe
    raise RuntimeError("no python3 with aiosmtpd: run scripts/install-deps.sh as root")


def start_smtp(*args):
    """Starts smtp_server.py storing into a fresh directory; returns
    (process, port, directory)."""
    d = tempfile.mkdtemp(dir=TMP, prefix="mail-")
    p, port = _start([aiosmtpd_python(), os.path.join(HERE, "smtp_server.py"), "--dir", d,
                      *args])
    return p, port, d


def wait_mail(d, n=1, timeout=10):
    """Polls d until n messages are stored; returns [(raw bytes, envelope)]."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = sorted(f for f in os.listdir(d) if f.endswith(".eml"))
        if len(names) >= n:
            out = []
            for f in names:
                base = os.path.join(d, f[:-4])
                with open(base + ".eml", "rb") as fh, open(base + ".json") as fj:
                    out.append((fh.read(), json.load(fj)))
            return out
        time.sleep(0.02)
    return []


_HELD = []


def refused_port():
    """A loopback port a connection to is refused for the rest of this test:
    bound here and never listened on, so no other process's bind(0) or
    connect is handed it meanwhile (as a port closed after bind(0) can be)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


def make_ca(name):
    """A CA and a certificate for 127.0.0.1 signed by it; returns paths."""
    d = os.path.join(TMP, name)
    os.makedirs(d)
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr = os.path.join(d, "srv.key"), os.path.join(d, "srv.csr")
    crt = os.path.join(d, "srv.crt")
    ext = os.path.join(d, "ext.cnf")

    def openssl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, timeout=30)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", ca_key, "-out", ca_crt, "-days", "1", "-subj", f"/CN={name}-ca")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "1", "-extfile", ext)
    return {"ca": ca_crt, "cert": crt, "key": key}


def probe(*args, report=None, stdin=None, env=None, timeout=60):
    """Runs notifyprobe; returns (exit code, parsed JSON or text, stderr)."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("NOTIFY_", "SMTP_", "GITHUB_"))}
    e.update(env or {})
    data = stdin if stdin is not None else json.dumps(report if report is not None else REPORT)
    p = subprocess.run([PROBE, *args], input=data.encode() if isinstance(data, str) else data,
                       capture_output=True, env=e, timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    if "runtime error:" in err or "Sanitizer" in err:
        _sanitizer.append(err[:2000])
    out = p.stdout.decode("utf-8")
    try:
        val = json.loads(out) if out.strip() else None
    except ValueError:
        val = out
    return p.returncode, val, err


def build(channel, *args, report=None):
    rc, out, err = probe("build", channel, *args, report=report)
    return out if rc == 0 else None


def http(method, url, body=None, ctx=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        raw = r.read()
        return json.loads(raw) if raw else None
