"""dtest.py - shared helpers for the integration drivers that run against
the stub servers (tests/net, tests/diag, tests/dispatch, tests/remediate):
TAP reporting, starting/stopping the stub servers (tests/stubs), throw-away
TLS material made with the openssl CLI, kubeconfig files, and running
netprobe / dispatchprobe / healer with a clean environment. A driver that
runs a probe declares it in meson (`depends :`) and passes its path in
NETPROBE / DISPATCHPROBE. Python standard library only.

Either store backend: run under tests/pg/pgrun.py, a healer started with
clean_env(..., data_dir=D) (or with HEALER_DATA_DIR=D in its env) gets a
fresh PostgreSQL database of its own for D (the same one when restarted);
store_db(D) opens D's store for SQL on either backend (sqlite3's
execute/fetchone/fetchall), store_integrity(con) checks it.
"""
import atexit
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

HEALER = os.environ["HEALER_BIN"]
NETPROBE = os.environ.get("NETPROBE", "")
DISPATCHPROBE = os.environ.get("DISPATCHPROBE", "")
STUBS = os.environ["HEALER_STUBS"]
ROOT = os.environ["HEALER_SOURCE_ROOT"]
CRD = os.path.join(ROOT, "deploy", "crds", "coderun.yaml")
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "pg"))
import tap  # noqa: E402
from tap import check  # noqa: E402,F401  (re-exported for the drivers)
import pgtest  # noqa: E402

store_db = pgtest.store_db
store_exec = pgtest.store_exec
store_integrity = pgtest.integrity
on_postgres = pgtest.enabled

_procs = []
_sanitizer = []  # sanitizer reports seen on any child's stderr
TMP = tempfile.mkdtemp(prefix="healer-dispatch-")


def _scan(stderr):
    if "runtime error:" in stderr or "Sanitizer" in stderr:
        _sanitizer.append(stderr[:2000])


def _log_lines_with_duplicate_keys():
    """The JSON log lines of every server started through healerproc that
    name a key twice (a line cut by SIGKILL is not JSON and is skipped)."""
    bad = []

    def pairs(line):
        def hook(kv):
            keys = [k for k, _ in kv]
            if len(keys) != len(set(keys)):
                bad.append(line[:400])
            return dict(kv)
        return hook
    for d, _ in servers:
        try:
            with open(os.path.join(d, "server.log"), errors="replace") as f:
                for line in f:
                    if line.startswith("{"):
                        try:
                            json.loads(line, object_pairs_hook=pairs(line))
                        except ValueError:
                            pass
        except OSError:
            continue
    return bad


def finish():
    check("no sanitizer reports from healer or netprobe", not _sanitizer,
          "\n".join(_sanitizer))
    if servers:
        dup = _log_lines_with_duplicate_keys()
        check("no log line of healer names a key twice", not dup, "\n".join(dup[:5]))
    tap.finish()


def run(main):
    """tap.run with the dtest finish: an exception in main() is a failed
    check showing its traceback and the end of each server log started
    through healerproc (registered in `servers`)."""
    def logs():
        return "\n".join(f"--- {d}:\n" + tail()[-1200:] for d, tail in servers[-2:])
    tap.run(main, logs, finish)


servers = []  # (data_dir, log_tail) of every healer server started


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)
    if not os.environ.get("DTEST_KEEP"):  # DTEST_KEEP=1 keeps TMP for debugging
        subprocess.run(["rm", "-rf", TMP])


atexit.register(_cleanup)


def start_stub(script, *args):
    """Starts tests/stubs/<script>; returns (process, port, extra lines)."""
    p = subprocess.Popen([sys.executable, os.path.join(STUBS, script), *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _procs.append(p)
    line = p.stdout.readline()
    if not line.startswith("PORT "):
        raise RuntimeError(f"{script} did not start: {line!r} {p.stderr.read()}")
    return p, int(line.split()[1])


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def make_ca(name, san="IP:127.0.0.1,DNS:localhost"):
    """A CA plus a server certificate for san (127.0.0.1 and localhost
    unless told); returns paths."""
    d = os.path.join(TMP, name)
    os.makedirs(d)
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = os.path.join(d, "srv.key"), os.path.join(d, "srv.csr"), os.path.join(d, "srv.crt")
    ext = os.path.join(d, "ext.cnf")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", ca_key, "-out", ca_crt, "-days", "1", "-subj", f"/CN={name}-ca")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    with open(ext, "w") as f:
        f.write(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "1", "-extfile", ext)
    return {"ca": ca_crt, "cert": crt, "key": key, "dir": d}


def write_kubeconfig(path, server, ca_path=None, ca_inline=True, token=None, token_file=None,
                     namespace=None, insecure=False, cluster_extra=()):
    """cluster_extra: more "key: value" lines of the cluster (tls-server-name,
    proxy-url)."""
    lines = ["apiVersion: v1", "kind: Config", "current-context: test",
             "clusters:", "- name: other", "  cluster:", "    server: https://10.0.0.1:6443",
             "- name: stub", "  cluster:", f"    server: {server}"]
    if ca_path and ca_inline:
        data = base64.b64encode(open(ca_path, "rb").read()).decode()
        lines.append(f"    certificate-authority-data: {data}")
    elif ca_path:
        lines.append(f"    certificate-authority: {ca_path}")
    if insecure:
        lines.append("    insecure-skip-tls-verify: true")
    lines += ["    " + ln for ln in cluster_extra]
    lines += ["contexts:", "- name: test", "  context:", "    cluster: stub", "    user: u"]
    if namespace:
        lines.append(f"    namespace: {namespace}")
    lines += ["users:", "- name: u", "  user:"]
    if token:
        lines.append(f"    token: {token}")
    if token_file:
        lines.append(f"    tokenFile: {token_file}")
    if not token and not token_file:
        lines.append("    {}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def clean_env(extra=None, data_dir=None):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("HEALER_", "GITHUB_", "KUBERNETES_", "PG"))}
    e.pop("KUBECONFIG", None)
    e["HOME"] = TMP
    e["HEALER_LOG_LEVEL"] = "error"
    data_dir = data_dir or (extra or {}).get("HEALER_DATA_DIR")
    if data_dir:
        e.update(pgtest.store_env(data_dir))
    if extra:
        e.update(extra)
    return e


def _probe(exe, args, stdin, env, timeout):
    if not exe:
        raise RuntimeError("the probe program is not set (NETPROBE / DISPATCHPROBE)")
    p = subprocess.run([exe, *args], input=stdin, capture_output=True, text=True,
                       env=clean_env(env), timeout=timeout)
    _scan(p.stderr)
    out = p.stdout.strip()
    try:
        val = json.loads(out) if out else None
    except ValueError:
        val = out
    return p.returncode, val, p.stderr


def netprobe(*args, stdin=None, env=None, timeout=30):
    """Runs tests/net/netprobe; returns (exit code, parsed JSON, stderr)."""
    return _probe(NETPROBE, args, stdin, env, timeout)


def dispatchprobe(*args, stdin=None, env=None, timeout=30):
    """Runs tests/dispatch/dispatchprobe; returns (exit code, parsed JSON, stderr)."""
    return _probe(DISPATCHPROBE, args, stdin, env, timeout)


def healer(*args, env=None, timeout=30):
    p = subprocess.run([HEALER, *args], capture_output=True, text=True, env=clean_env(env),
                       timeout=timeout)
    _scan(p.stderr)
    return p.returncode, p.stdout, p.stderr


def http(method, url, body=None, ctx=None, token=None):
    """A control call to a stub (plain or TLS)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def elapsed(fn):
    t = time.monotonic()
    v = fn()
    return v, (time.monotonic() - t) * 1000
