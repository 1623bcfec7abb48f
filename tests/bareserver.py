"""bareserver.py - a `healer server` on loopback with a data directory of
its own and no stand-ins (dispatch none, GitHub unreachable, no cluster),
and one HTTP request to it: for the drivers that test healer's own HTTP
surface (login limit, logout, dashboard pages)."""
import http.client
import os
import subprocess
import time

HEALER = os.environ.get("HEALER_BIN", "")


def start(procs, data_dir, home, extra=None):
    """Starts the server on data_dir (made if missing) with extra settings,
    adds its process to procs, and returns its port once it listens."""
    os.makedirs(data_dir, exist_ok=True)
    pf, log = os.path.join(data_dir, "port"), os.path.join(data_dir, "server.log")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "GITHUB_"))}
    e.pop("KUBECONFIG", None)
    e.update({"HOME": home, "HEALER_DISPATCH": "none", "GITHUB_API_URL": "http://127.0.0.1:9"})
    e.update(extra or {})
    with open(log, "wb") as lf:
        p = subprocess.Popen([HEALER, "server", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                              "--port-file", pf], env=e, stdout=lf, stderr=lf)
    procs.append(p)
    deadline = time.time() + 20
    while time.time() < deadline:
        if os.path.exists(pf) and open(pf).read().strip():
            return int(open(pf).read())
        if p.poll() is not None:
            break
        time.sleep(0.02)
    raise RuntimeError("the server did not start: " + open(log).read()[-2000:])


def req(port, method, path, body=None, headers=None, source=None, timeout=30):
    """One request, from the loopback address source when given: (status,
    headers with lower-case names, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                   source_address=(source, 0) if source else None)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()
