#!/usr/bin/env python3
"""github_stub.py - a GitHub REST API stand-in for healer's tests.

Two listeners: the API, and a second one on another port acting as the blob
storage that job-log downloads are redirected to (it answers 403 and records
a violation if it ever receives an Authorization header, like a pre-signed
URL host would reject one).

API behaviour: token check (Bearer/token, 401 "Bad credentials"); GitHub App
installation tokens (POST /app/installations/{id}/access_tokens with an RS256
JWT: structure, alg, iss, iat/exp window checked here, signature verified
with `openssl dgst -sha256 -verify` against --app-public-key); runs/jobs
(?filter=latest), job logs (302 to the blob host), pulls with head= and
state= filters, PR files paginated with a Link header, commits, check-runs,
issue comments (stored). Rate limits, 5xx and slow answers come from
stubcommon's rules (POST /_stub/config).

Extra controls: POST /_stub/seed {"jobs": {run_id: [...]}, "logs": {job_id:
text}, "pulls": [...], "files": {pr_number: [...]}, "commits": {sha: {...}},
"check_runs": {id: {...}}}; GET /_stub/comments; GET /_stub/blob-violations;
GET /_stub/tokens (installation tokens minted).

usage: github_stub.py --token T [--app-id N --app-public-key PEM]
"""
import argparse
import base64
import json
import os
import re
import subprocess
import tempfile
import threading
import time

import stubcommon

STATE = {"jobs": {}, "logs": {}, "pulls": [], "files": {}, "commits": {}, "check_runs": {},
         "comments": [], "violations": [], "inst_tokens": [], "blob_port": 0}
LOCK = threading.Lock()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_jwt(jwt, app_id, pubkey):
    """Returns None when the App JWT is acceptable, else the reason."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return "not a JWT"
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except ValueError:
        return "undecodable JWT"
    if header.get("alg") != "RS256":
        return "alg must be RS256"
    if str(claims.get("iss")) != str(app_id):
        return "iss mismatch"
    now = time.time()
    if not (claims.get("exp", 0) > now and claims.get("iat", now + 999) <= now + 60 and
            claims["exp"] - claims["iat"] <= 600):
        return "'Expiration time' claim ('exp') is too far in the future or expired"
    with tempfile.TemporaryDirectory() as d:
        data, sigf = os.path.join(d, "data"), os.path.join(d, "sig")
        open(data, "wb").write((parts[0] + "." + parts[1]).encode())
        open(sigf, "wb").write(sig)
        p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pubkey, "-signature", sigf,
                            data], capture_output=True, timeout=10)
        if p.returncode != 0:
            return "A JSON web token could not be decoded (bad signature)"
    return None


class BlobHandler(stubcommon.StubHandler):
    def route(self, path, q):
        if self.headers.get("Authorization"):
            with LOCK:
                STATE["violations"].append(path)
            return self.send(403, "<Error><Code>AuthenticationFailed</Code></Error>",
                             ctype="application/xml")
        m = re.fullmatch(r"/logs/(\d+)", path)
        if not m or q.get("sig") != "ok":
            return self.send(404, "<Error><Code>BlobNotFound</Code></Error>",
                             ctype="application/xml")
        text = STATE["logs"].get(m.group(1))
        if text is None:
            return self.send(404, "<Error><Code>BlobNotFound</Code></Error>",
                             ctype="application/xml")
        self.send(200, text, ctype="text/plain")


class GitHubHandler(stubcommon.StubHandler):
    token = None
    app_id = None
    app_pub = None

    def stub_control(self, path):
        if path == "/_stub/seed" and self.command == "POST":
            body = self.body_json() or {}
            with LOCK:
                for k in ("jobs", "logs", "files", "commits", "check_runs"):
                    STATE[k].update({str(a): b for a, b in body.get(k, {}).items()})
                STATE["pulls"].extend(body.get("pulls", []))
            self.send(200, {"ok": True})
            return True
        if path == "/_stub/comments":
            self.send(200, STATE["comments"])
            return True
        if path == "/_stub/blob-violations":
            self.send(200, STATE["violations"])
            return True
        if path == "/_stub/tokens":
            self.send(200, STATE["inst_tokens"])
            return True
        return False

    def bearer(self):
        a = self.headers.get("Authorization") or ""
        for p in ("Bearer ", "token "):
            if a.startswith(p):
                return a[len(p):]
        return None

    def route(self, path, q):
        m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if m and self.command == "POST":
            self.read_body()
            jwt = self.bearer()
            why = verify_jwt(jwt or "", self.app_id, self.app_pub) if self.app_pub else "no app"
            if why:
                return self.send(401, {"message": why})
            tok = "ghs_stub%06d" % (len(STATE["inst_tokens"]) + 1)
            life = int(self.server.config.get("token_life_s", 3600))
            with LOCK:
                STATE["inst_tokens"].append(tok)
            exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + life))
            return self.send(201, {"token": tok, "expires_at": exp})
        tok = self.bearer()
        if tok != self.token and tok not in STATE["inst_tokens"]:
            self.read_body()
            return self.send(401, {"message": "Bad credentials",
                                   "documentation_url": "https://docs.github.com/rest"})
        if (m := re.fullmatch(r"/orgs/([^/]+)/actions/secrets", path)):
            # an endpoint no healer call has any business with: the path
            # safety tests assert it is never reached
            return self.send(200, {"total_count": 1, "secrets": [{"name": "NPM_TOKEN"}]})
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)", path)
        if not m:
            return self.send(404, {"message": "Not Found"})
        owner, repo, rest = m.groups()
        if (r := re.fullmatch(r"/actions/runs/(\d+)/jobs", rest)):
            jobs = STATE["jobs"].get(r.group(1))
            if jobs is None:
                return self.send(404, {"message": "Not Found"})
            return self.send(200, {"total_count": len(jobs), "jobs": jobs})
        if (r := re.fullmatch(r"/actions/jobs/(\d+)/logs", rest)):
            if r.group(1) not in STATE["logs"]:
                return self.send(404, {"message": "Not Found"})
            loc = f"http://127.0.0.1:{STATE['blob_port']}/logs/{r.group(1)}?sig=ok"
            return self.send(302, None, {"Location": loc}, ctype=None)
        if rest == "/pulls" and self.command == "GET":
            head, state = q.get("head"), q.get("state", "open")
            out = []
            for p in STATE["pulls"]:
                if state != "all" and p.get("state") != state:
                    continue
                if head and f"{owner}:{p['head']['ref']}" != head:
                    continue
                out.append(p)
            per = int(q.get("per_page", 30))
            return self.send(200, out[:per])
        if (r := re.fullmatch(r"/pulls/(\d+)", rest)) and self.command == "GET":
            for p in STATE["pulls"]:
                if str(p.get("number")) == r.group(1):
                    return self.send(200, p)
            return self.send(404, {"message": "Not Found"})
        if (r := re.fullmatch(r"/pulls/(\d+)/files", rest)):
            files = STATE["files"].get(r.group(1))
            if files is None:
                return self.send(404, {"message": "Not Found"})
            per, page = int(q.get("per_page", 30)), int(q.get("page", 1))
            chunk = files[(page - 1) * per: page * per]
            hdr = {}
            last = (len(files) + per - 1) // per
            base = f"http://127.0.0.1:{self.server.server_address[1]}{path}?per_page={per}"
            if page < last:
                hdr["Link"] = f'<{base}&page={page + 1}>; rel="next", <{base}&page={last}>; rel="last"'
            return self.send(200, chunk, hdr)
        if (r := re.fullmatch(r"/commits/([0-9a-f]+)", rest)):
            c = STATE["commits"].get(r.group(1))
            return self.send(200, c) if c else self.send(422, {"message": "No commit found"})
        if (r := re.fullmatch(r"/check-runs/(\d+)", rest)):
            c = STATE["check_runs"].get(r.group(1))
            return self.send(200, c) if c else self.send(404, {"message": "Not Found"})
        if (r := re.fullmatch(r"/issues/(\d+)/comments", rest)) and self.command == "POST":
            body = self.body_json()
            if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                return self.send(422, {"message": "Invalid request."})
            c = {"id": len(STATE["comments"]) + 1, "body": body["body"],
                 "issue": int(r.group(1)), "repo": f"{owner}/{repo}"}
            with LOCK:
                STATE["comments"].append(c)
            return self.send(201, c)
        self.read_body()
        self.send(404, {"message": "Not Found"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--token", required=True)
    ap.add_argument("--app-id")
    ap.add_argument("--app-public-key")
    a = ap.parse_args()
    GitHubHandler.token = a.token
    GitHubHandler.app_id = a.app_id
    GitHubHandler.app_pub = a.app_public_key
    blob = stubcommon.serve(BlobHandler, announce=False)
    STATE["blob_port"] = blob.server_address[1]
    stubcommon.serve(GitHubHandler)
    print(f"BLOB {STATE['blob_port']}", flush=True)
    stubcommon.wait_forever()


if __name__ == "__main__":
    main()
