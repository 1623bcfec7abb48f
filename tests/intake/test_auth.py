#!/usr/bin/env python3
"""test_auth.py - authentication never fails open: an empty webhook secret or
API token (empty, whitespace, an empty element of the comma list, a secret
file holding only a newline) is a configuration error naming the key; without
a secret or a token `healer server` refuses every address but loopback unless
HEALER_ALLOW_UNAUTHENTICATED=true, warns at start, and /api/status says which
authentication is on; a web page of another origin cannot call the sensor and
alert routes, and without a token a loopback server's routes answer only to
a loopback Host (DNS rebinding); a 401 names the Bearer scheme. Runs the real binary; talks to 127.0.0.1 only.
Standard library only; prints TAP."""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import check, finish  # noqa: E402

HEALER = os.environ["HEALER_BIN"]
TMP = tempfile.mkdtemp(prefix="healer-auth-")


def env_with(extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "GITHUB_"))}
    e.pop("KUBECONFIG", None)
    e.update({"HOME": TMP, "HEALER_DISPATCH": "none", "GITHUB_API_URL": "http://127.0.0.1:9"})
    e.update(extra)
    return e


def serve(name, extra, listen="127.0.0.1:0", wait=True):
    """Starts a server; returns (proc, port or None, log path). A server that
    exits at once (refused configuration) returns port None."""
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    pf, log = os.path.join(d, "port"), os.path.join(d, "server.log")
    with open(log, "wb") as lf:
        p = subprocess.Popen([HEALER, "server", "--listen", listen, "--data-dir", d,
                              "--port-file", pf], env=env_with(extra), stdout=lf, stderr=lf)
    deadline = time.time() + 20
    while time.time() < deadline:
        if os.path.exists(pf) and open(pf).read().strip():
            return p, int(open(pf).read()), log
        if p.poll() is not None:
            return p, None, log
        time.sleep(0.02)
    p.kill()
    p.wait()
    return p, None, log


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def get_json(port, path, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": "Bearer " + token} if token else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.loads(r.read())


def post(port, path, body, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def post_raw(port, path, body, headers, with_headers=False):
    """POST with exactly these headers (no Content-Type unless given)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        h = {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()
    try:
        d = json.loads(data or b"{}")
    except ValueError:
        d = {"raw": data[:300]}
    return (r.status, d, h) if with_headers else (r.status, d)


def get_raw(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def refused(name, extra, key, listen="127.0.0.1:0"):
    p, port, log = serve(name, extra, listen)
    text = open(log, errors="replace").read()
    if port:
        stop(p)
    check(f"server refuses {name}, naming {key}",
          port is None and p.returncode == 1 and key in text, text[-600:])
    return text


def main():
    # ---- empty secrets are configuration errors naming the key -------------
    refused("an empty GITHUB_WEBHOOK_SECRET", {"GITHUB_WEBHOOK_SECRET": ""},
            "GITHUB_WEBHOOK_SECRET")
    refused("a whitespace GITHUB_WEBHOOK_SECRET", {"GITHUB_WEBHOOK_SECRET": "  \t "},
            "GITHUB_WEBHOOK_SECRET")
    refused("a ',' GITHUB_WEBHOOK_SECRET", {"GITHUB_WEBHOOK_SECRET": ","},
            "GITHUB_WEBHOOK_SECRET")
    refused("an empty element of the secret list", {"GITHUB_WEBHOOK_SECRET": "first-secret, ,x"},
            "GITHUB_WEBHOOK_SECRET")
    sf = os.path.join(TMP, "secret-file")
    with open(sf, "w") as f:
        f.write("\n")
    refused("a GITHUB_WEBHOOK_SECRET_FILE holding only a newline",
            {"GITHUB_WEBHOOK_SECRET_FILE": sf}, "GITHUB_WEBHOOK_SECRET")
    refused("an empty HEALER_API_TOKEN", {"HEALER_API_TOKEN": ""}, "HEALER_API_TOKEN")
    refused("a whitespace HEALER_API_TOKEN", {"HEALER_API_TOKEN": " "}, "HEALER_API_TOKEN")
    cc = subprocess.run([HEALER, "check-config"], env=env_with({"HEALER_API_TOKEN": " "}),
                        capture_output=True, text=True, timeout=30)
    check("check-config reports an empty HEALER_API_TOKEN",
          cc.returncode == 1 and "HEALER_API_TOKEN" in cc.stderr, cc.stderr)

    # ---- without authentication: loopback only, unless explicitly allowed ----
    refused("0.0.0.0 without a secret and a token", {}, "HEALER_ALLOW_UNAUTHENTICATED",
            listen="0.0.0.0:0")
    refused("0.0.0.0 with a secret but no token", {"GITHUB_WEBHOOK_SECRET": "s3cret-value"},
            "HEALER_API_TOKEN", listen="0.0.0.0:0")
    text = refused("[::] with a token but no secret", {"HEALER_API_TOKEN": "tok-value"},
                   "GITHUB_WEBHOOK_SECRET", listen="[::]:0")
    check("the refusal does not name the token's value", "tok-value" not in text, text[-400:])
    # allowed: the check passes and the server goes on to bind (192.0.2.1 is
    # TEST-NET, never local, so it cannot bind and nothing is exposed)
    p, port, log = serve("allowed", {"HEALER_ALLOW_UNAUTHENTICATED": "true"},
                         listen="192.0.2.1:0")
    text = open(log, errors="replace").read()
    check("HEALER_ALLOW_UNAUTHENTICATED=true lets it listen beyond loopback",
          port is None and "HEALER_ALLOW_UNAUTHENTICATED" not in text and "cannot listen" in text
          and "not authenticated" in text, text[-600:])
    cc = subprocess.run([HEALER, "check-config"], env=env_with({}), capture_output=True,
                        text=True, timeout=30)
    check("check-config warns that the server would refuse 0.0.0.0 without authentication",
          cc.returncode == 0 and "HEALER_ALLOW_UNAUTHENTICATED" in cc.stderr, cc.stderr)

    # ---- loopback without authentication (make run): starts, warns, says so ----
    p, port, log = serve("loopback", {})
    try:
        st, d = get_json(port, "/api/status") if port else (0, {})
        text = open(log, errors="replace").read()
        check("on loopback it starts without a secret and warns for both",
              port and "GITHUB_WEBHOOK_SECRET is not set" in text
              and "HEALER_API_TOKEN is not set" in text, text[-800:])
        check("/api/status says authentication is off",
              st == 200 and d.get("auth") == {"webhook": "none", "api": "none"}, d)
        # a web page cannot post an event to it: a body without a content type
        # (fetch with a typeless Blob, sendBeacon) needs no CORS preflight
        run = json.dumps({"action": "completed", "workflow_run": {
            "id": 5150, "name": "CI", "conclusion": "failure", "head_branch": "main",
            "head_sha": "a" * 40, "run_attempt": 1},
            "repository": {"full_name": "victim/repo"},
            "sender": {"login": "dev", "type": "User"}}).encode()
        for name, hdrs in (
                ("Origin", {"Origin": "http://evil.example"}),
                ("Sec-Fetch-Site", {"Sec-Fetch-Site": "cross-site"}),
                ("an opaque Origin", {"Origin": "null"})):
            for path in ("/api/remediate/ci-failure", "/api/alerts/alertmanager"):
                st, d = post_raw(port, path, run, hdrs)
                check(f"a cross-origin browser call to {path} ({name}) is refused 403",
                      st == 403 and d.get("error") == "forbidden", (st, d))
        st, d = post_raw(port, "/api/remediate/ci-failure", run,
                         {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"})
        check("a same-origin call is not refused as cross-origin", st == 202, (st, d))
        # DNS rebinding: the page's own name, now pointing at 127.0.0.1, is
        # same-origin to the browser; its Host header still names it
        rebound = f"rebind.evil.example:{port}"
        for path in ("/api/status", "/api/remediations", "/api/insights"):
            st, _, _ = get_raw(port, path, {"Host": rebound})
            check(f"GET {path} under a foreign Host answers 403", st == 403, st)
        st, d = post_raw(port, "/api/remediate/ci-failure", run,
                         {"Host": rebound, "Origin": "http://" + rebound,
                          "Content-Type": "application/json"})
        check("a sensor call under a foreign Host answers 403", st == 403, (st, d))
        st, d = post_raw(port, "/webhook", run,
                         {"Host": rebound, "Content-Type": "application/json",
                          "X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "rebind-1"})
        check("an unsigned delivery under a foreign Host answers 403", st == 403, (st, d))
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}",
                     f"app.localhost:{port}", "localhost"):
            st, _, _ = get_raw(port, "/api/status", {"Host": host})
            check(f"GET /api/status under Host {host} answers 200", st == 200, st)
        st, _, _ = get_raw(port, "/health", {"Host": rebound})
        check("the probes answer under any Host", st == 200, st)
    finally:
        stop(p)

    # ---- with both: /api/status says so, unsigned and token-less calls fail ----
    p, port, log = serve("both", {"GITHUB_WEBHOOK_SECRET": "one-secret,two-secret",
                                  "HEALER_API_TOKEN": "the-token"}, listen="127.0.0.1:0")
    try:
        st, d = get_json(port, "/api/status", "the-token") if port else (0, {})
        check("/api/status says hmac and bearer",
              st == 200 and d.get("auth") == {"webhook": "hmac", "api": "bearer"}, d)
        st, d = post(port, "/webhook", b"{}", {"Content-Type": "application/json",
                                               "X-GitHub-Event": "ping"})
        check("an unsigned delivery answers 401", st == 401, d)
        st, d, h = post_raw(port, "/api/remediate/ci-failure", b"{}",
                            {"Content-Type": "application/json"}, with_headers=True)
        check("a sensor call without the token answers 401 with a Bearer challenge",
              st == 401 and h.get("www-authenticate", "").startswith("Bearer "), (st, d, h))
        st, d, h = get_raw(port, "/api/remediations")
        check("a read without the token answers 401 with a Bearer challenge",
              st == 401 and h.get("www-authenticate", "").startswith("Bearer "), (st, d, h))
        st, _, _ = get_raw(port, "/api/status", {"Host": "healer.example.com",
                                                 "Authorization": "Bearer the-token"})
        check("with a token any Host may read (an ingress names the service)", st == 200, st)
        for value in ("Bearer  the-token", "Bearer the-token ", "bearer the-token"):
            st, _, _ = get_raw(port, "/api/status", {"Authorization": value})
            check(f"the token is read from {value!r} (RFC 9110 whitespace, any case)",
                  st == 200, st)
        for value in ("Bearer the-tokenX", "Bearer the-toke", "Bearer", "Bearer ",
                      "Basic dGhlLXRva2Vu", "the-token"):
            st, _, _ = get_raw(port, "/api/status", {"Authorization": value})
            check(f"{value!r} answers 401", st == 401, st)
        text = open(log, errors="replace").read()
        check("no warning about authentication when both are set",
              "not authenticated" not in text, text[-500:])
    finally:
        stop(p)
    finish()


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
