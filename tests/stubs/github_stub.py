#!/usr/bin/env python3
"""github_stub.py - a GitHub REST API stand-in for healer's tests.

Two listeners: the API, and a second one on another port acting as the blob
storage that job-log downloads are redirected to (it answers 403 and records
a violation if it ever receives an Authorization header, like a pre-signed
URL host would reject one).

API behaviour (apis.md section 2): token check (Bearer/token, 401 "Bad
credentials"); GitHub App installation tokens (POST /app/installations/{id}
/access_tokens with an RS256 JWT: structure, alg, iss, iat/exp window checked
here, signature verified with `openssl dgst -sha256 -verify` against
--app-public-key); the App's own endpoints (/app/hook/deliveries...) accept
only that JWT; every API answer carries x-ratelimit-limit/-remaining/-used/
-reset/-resource headers. Endpoints:
  runs: one run (GET /actions/runs/{id}, 404 for an unknown one),
    /actions/runs and /actions/workflows/{id or file}/runs (branch,
    head_sha, status (or a conclusion), event, check_suite_id, created
    >=/<=/a..b, per_page, page, newest first, Link), POST
    .../runs/{id}/rerun-failed-jobs (201; 403 when the run is not
    re-runnable, is still going ("This workflow is already running") or the
    token lacks permission); a run seeded again replaces its old self;
  jobs: .../runs/{id}/jobs (filter=latest|all by run_attempt, pages, Link),
    job logs (302 to the blob host);
  pulls (head= and state= filters), one PR, PR files and commits (Link
    pages), commits,
    commits/{ref}/check-runs (pages, Link), check-runs/{id}, compare
    {base}...{head} over a seeded linear history (status, ahead_by,
    behind_by, total_commits, commits oldest first, at most 250; 404 for an
    unknown ref);
  issue comments (stored; GET .../issues/{n}/comments lists an issue's
    comments oldest first with since= on updated_at, per_page <= 100 (30
    by default) and page=, Link rel="next"/"last"/"prev"/"first" as GitHub),
    reactions on issue comments (.../issues/comments/{id}/reactions) and on
    review comments (.../pulls/comments/{id}/reactions): 201 new, 200 when
    this user already reacted so, 422 for an unknown content, 404 for an
    unknown comment of that kind;
  hook deliveries: /repos/{o}/{r}/hooks/{id}/deliveries,
    /orgs/{org}/hooks/{id}/deliveries, /app/hook/deliveries (newest first,
    per_page, an opaque cursor in Link rel="next" naming the delivery the
    next page starts at; 404 for an unknown hook;
    400 for a bad cursor), POST .../deliveries/{id}/attempts (202; 404 for
    an unknown delivery; 422 for one too old; the redelivery shows up as a
    new delivery with redelivery true; 403 for a hook seeded with "forbid":
    true, the token lacking the permission). A hook seeded with a URL ("hooks":
    {key: {"url", "secret"}}) really delivers: a redelivery of a delivery
    that carries its "payload" is POSTed to the URL after the 202, as
    GitHub does (X-GitHub-Event, X-GitHub-Delivery = the guid,
    X-GitHub-Hook-ID, X-Hub-Signature-256), and listed with the status code
    the receiver answered (0 and "failed to connect" when nothing listens);
    POST /_stub/send {"hook", "guid", "event", "payload"} makes such a first
    delivery (GitHub sending an event while the receiver may be down);
  /orgs/{org}/actions/secrets (so a test can prove it is never reached);
  renamed repositories: seeded "renames": {"old/name": {"id": 42, "to":
    "new/name"}} make every /repos/old/name/... call answer as GitHub does
    for a renamed or transferred repository, 301 (GET, HEAD) or 307 (other
    methods) with Location /repositories/42/... (the query kept), which is
    then served as /repos/new/name/...; with "host": "http://H:P" the
    Location names that origin instead (a redirect to another host).
The token's budget (primary rate limit) as GitHub keeps it: every call
under /repos/ and /orgs/ takes one request from a window of LIMIT requests
that resets WINDOW seconds after its first request (X-RateLimit-Reset: that
epoch second); every answer says x-ratelimit-remaining, and a call made
while it is 0 is not executed but answered 403 "API rate limit exceeded
..." with x-ratelimit-remaining 0 (recorded in GET /_stub/refused). The
budget is --budget LIMIT:WINDOW (default 5000:3600) or POST /_stub/budget
{"limit": 2, "window": 3} (a new window starts with the next call).
Other rate limits (secondary: 403 + retry-after; a rule's reset_in), 5xx
and slow answers come from stubcommon's rules (POST /_stub/config);
/_stub/requests records every call with its body.

Extra controls: POST /_stub/seed {"jobs": {run_id: [...]}, "logs": {job_id:
text}, "pulls": [...], "files": {pr_number: [...]}, "pull_commits": {pr_number:
[{"sha": ...}, ...]}, "commits": {sha: {...}},
"check_runs": {id: {...}}, "runs": [...], "check_runs_by_ref": {ref: [...]},
"history": {"o/r": [commit, ...] oldest first}, "issue_comments": {id: {...}},
"review_comments": {id: {...}},
"deliveries": {"repo:o/r:ID" | "org:O:ID" | "app": [...]},
"hooks": {"repo:o/r:ID" | ...: {"url": ..., "secret": ...}}, "renames": {...},
"add_deliveries": {key: [...]} (appended to the hook's deliveries)};
GET /_stub/comments, /_stub/reactions, /_stub/reruns, /_stub/redeliveries,
/_stub/blob-violations, /_stub/tokens (installation tokens minted).
POST /_stub/config {"comment_then_fail": N, "comment_fail_status": 502}: the
next N comments are created and then answered 502 (a gateway that lost
GitHub's answer: the comment exists, the client sees a failure).
POST /_stub/config {"token_life_s": S}: minted installation tokens expire in
S seconds; {"clock_offset_s": S}: GitHub's clock (Date, expires_at, the
App JWT's iat/exp check, comments' created_at/updated_at) is ours moved by
S seconds; {"token_uses": N}:
each installation token is revoked after N calls (401 "Bad credentials").

usage: github_stub.py --token T [--app-id N --app-public-key PEM] [--budget LIMIT:SECONDS]
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from urllib.parse import unquote, urlencode, urlsplit

import stubcommon

STATE = {"jobs": {}, "logs": {}, "pulls": [], "files": {}, "pull_commits": {}, "commits": {},
         "check_runs": {},
         "comments": [], "violations": [], "inst_tokens": [], "token_uses": {}, "blob_port": 0,
         "runs": [], "check_runs_by_ref": {}, "history": {}, "issue_comments": {},
         "review_comments": {},
         "reactions": [], "reruns": [], "deliveries": {}, "redeliveries": [],
         "hooks": {}, "renames": {}, "budget": {"limit": 5000, "window": 3600}, "window": None,
         "refused": []}
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
LOCK = threading.RLock()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_jwt(jwt, app_id, pubkey, now):
    """Returns None when the App JWT is acceptable at GitHub's time now (epoch
    seconds), else the reason (GitHub's messages for iat and exp)."""
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
    exp, iat = claims.get("exp", 0), claims.get("iat", now + 999)
    if not exp > now:
        return ("'Expiration time' claim ('exp') must be a numeric value representing the "
                "future time at which the assertion expires")
    if exp > now + 660 or exp - iat > 600:
        return "'Expiration time' claim ('exp') is too far in the future"
    if iat > now + 60:
        return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
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

    def clock(self):
        """GitHub's clock: ours moved by the config's clock_offset_s."""
        return time.time() + float(self.server.config.get("clock_offset_s", 0))

    def date_time_string(self, timestamp=None):
        return super().date_time_string(self.clock() if timestamp is None else timestamp)

    def stub_control(self, path):
        if path == "/_stub/seed" and self.command == "POST":
            body = self.body_json() or {}
            with LOCK:
                for k in ("jobs", "logs", "files", "pull_commits", "commits", "check_runs",
                          "check_runs_by_ref", "history", "issue_comments", "review_comments",
                          "deliveries", "hooks", "renames"):
                    STATE[k].update({str(a): b for a, b in body.get(k, {}).items()})
                for k, v in body.get("add_deliveries", {}).items():
                    STATE["deliveries"].setdefault(k, []).extend(v)
                STATE["pulls"].extend(body.get("pulls", []))
                # a run seeded again (its status moved on) replaces its old self
                new = {x["id"] for x in body.get("runs", [])}
                STATE["runs"] = [x for x in STATE["runs"] if x["id"] not in new] \
                    + body.get("runs", [])
            self.send(200, {"ok": True})
            return True
        if path == "/_stub/send" and self.command == "POST":
            b = self.body_json() or {}
            with LOCK:
                STATE["deliveries"].setdefault(b["hook"], [])
            d = hook_deliver(b["hook"], b["guid"], b.get("event", "workflow_job"),
                             b.get("payload", {}), False)
            self.send(200, d)
            return True
        for name in ("comments", "reactions", "reruns", "redeliveries"):
            if path == f"/_stub/{name}":
                with LOCK:
                    self.send(200, STATE[name])
                return True
        if path == "/_stub/budget" and self.command == "POST":
            b = self.body_json() or {}
            with LOCK:
                STATE["budget"] = {"limit": int(b.get("limit", 5000)),
                                   "window": float(b.get("window", 3600))}
                STATE["window"] = None
            self.send(200, {"ok": True})
            return True
        if path == "/_stub/refused":
            with LOCK:
                self.send(200, STATE["refused"])
            return True
        if path == "/_stub/blob-violations":
            self.send(200, STATE["violations"])
            return True
        if path == "/_stub/tokens":
            self.send(200, STATE["inst_tokens"])
            return True
        return False

    def rule_body(self, status):
        return {"message": {401: "Bad credentials", 403: "Forbidden", 404: "Not Found",
                            422: "Validation Failed"}.get(status, "Server Error"),
                "documentation_url": "https://docs.github.com/rest"}

    def budget_window(self, take):
        """The token's current window (under LOCK), a new one when the last
        has reset; take counts this call against it."""
        now = time.time()
        w = STATE["window"]
        if w is None or now >= w["reset"]:
            w = STATE["window"] = {"limit": STATE["budget"]["limit"], "used": 0,
                                   "reset": int(now + STATE["budget"]["window"]) + 1}
        if take:
            w["used"] += 1
        return w

    def budget_refused(self, path):
        """Takes one request from the token's budget; when it is spent,
        answers 403 as GitHub's primary rate limit does and returns True."""
        if not path.startswith(("/repos/", "/orgs/", "/repositories/")):
            return False
        with LOCK:
            w = self.budget_window(False)
            if w["used"] < w["limit"]:
                w["used"] += 1
                self._budget = dict(w)
                return False
            STATE["refused"].append({"method": self.command, "path": path,
                                     "at": time.time()})
            self._budget = dict(w)
        self.read_body()
        self.send(403, {"message": "API rate limit exceeded for installation ID 1. If you "
                        "reach out to GitHub Support for help, please include the request "
                        "ID 0000:0000:0000.",
                        "documentation_url": "https://docs.github.com/rest/overview/"
                        "rate-limits-for-the-rest-api"})
        return True

    def send(self, status, body=None, headers=None, ctype="application/json"):
        """Every API answer carries GitHub's rate-limit headers from the
        token's budget (a rule's own win)."""
        h = dict(headers or {})
        have = {k.lower() for k in h}
        w = self.__dict__.pop("_budget", None)
        if self.path.startswith(("/repos/", "/orgs/", "/app/", "/repositories/")):
            if w is None:
                with LOCK:
                    w = dict(self.budget_window(False))
            for k, v in (("X-RateLimit-Limit", w["limit"]),
                         ("X-RateLimit-Remaining", max(0, w["limit"] - w["used"])),
                         ("X-RateLimit-Used", w["used"]),
                         ("X-RateLimit-Reset", w["reset"]),
                         ("X-RateLimit-Resource", "core")):
                if k.lower() not in have:
                    h[k] = v
        super().send(status, body, h, ctype)

    def page(self, items, q, path, key=None, extra=None):
        """Answers one page of items (per_page, page) with GitHub's Link header."""
        per = max(1, min(100, int(q.get("per_page", 30))))
        pg = max(1, int(q.get("page", 1)))
        chunk = items[(pg - 1) * per: pg * per]
        last = max(1, (len(items) + per - 1) // per)
        hdr = {}
        base = dict(q)
        base.pop("page", None)
        url = f"http://127.0.0.1:{self.server.server_address[1]}{path}?"
        if pg < last:
            hdr["Link"] = (f'<{url}{urlencode(dict(base, page=pg + 1))}>; rel="next", '
                           f'<{url}{urlencode(dict(base, page=last))}>; rel="last"')
        if key is None:
            return self.send(200, chunk, hdr)
        body = dict(extra or {})
        body[key] = chunk
        return self.send(200, body, hdr)

    def bearer(self):
        a = self.headers.get("Authorization") or ""
        for p in ("Bearer ", "token "):
            if a.startswith(p):
                return a[len(p):]
        return None

    def route(self, path, q):
        if self.budget_refused(path):
            return
        m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if m and self.command == "POST":
            self.read_body()
            jwt = self.bearer()
            why = verify_jwt(jwt or "", self.app_id, self.app_pub, self.clock()) \
                if self.app_pub else "no app"
            if why:
                return self.send(401, {"message": why,
                                   "documentation_url": "https://docs.github.com/rest"})
            tok = "ghs_stub%06d" % (len(STATE["inst_tokens"]) + 1)
            life = int(self.server.config.get("token_life_s", 3600))
            with LOCK:
                STATE["inst_tokens"].append(tok)
            exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock() + life))
            return self.send(201, {"token": tok, "expires_at": exp})
        if path.startswith("/app/hook/"):
            self.read_body()
            why = verify_jwt(self.bearer() or "", self.app_id, self.app_pub, self.clock()) \
                if self.app_pub else "no app"
            if why:
                return self.send(401, {"message": "A JSON web token could not be decoded",
                                       "documentation_url": "https://docs.github.com/rest"})
            return self.deliveries("app", path[len("/app/hook"):], q)
        tok = self.bearer()
        revoked = False
        if tok in STATE["inst_tokens"] and self.server.config.get("token_uses") is not None:
            # the installation token is revoked after that many calls
            with LOCK:
                uses = STATE["token_uses"][tok] = STATE["token_uses"].get(tok, 0) + 1
            revoked = uses > int(self.server.config["token_uses"])
        if revoked or (tok != self.token and tok not in STATE["inst_tokens"]):
            self.read_body()
            return self.send(401, {"message": "Bad credentials",
                                   "documentation_url": "https://docs.github.com/rest"})
        if (m := re.fullmatch(r"/orgs/([^/]+)/hooks/(\d+)(/deliveries.*)", path)):
            return self.deliveries(f"org:{m.group(1)}:{m.group(2)}", m.group(3), q)
        if (m := re.fullmatch(r"/orgs/([^/]+)/actions/secrets", path)):
            # an endpoint no healer call has any business with: the path
            # safety tests assert it is never reached
            return self.send(200, {"total_count": 1, "secrets": [{"name": "NPM_TOKEN"}]})
        if (m := re.fullmatch(r"/repositories/(\d+)(/.*)", path)):
            # a renamed repository's calls after the redirect, by its id
            with LOCK:
                to = next((r["to"] for r in STATE["renames"].values()
                           if str(r["id"]) == m.group(1)), None)
            if to is None:
                self.read_body()
                return self.send(404, {"message": "Not Found"})
            path = f"/repos/{to}{m.group(2)}"
        elif (m := re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)", path)) \
                and m.group(1) in STATE["renames"]:
            ren = STATE["renames"][m.group(1)]
            self.read_body()
            base = ren.get("host") or f"http://127.0.0.1:{self.server.server_address[1]}"
            qs = urlsplit(self.path).query
            loc = f"{base}/repositories/{ren['id']}{m.group(2)}" + (f"?{qs}" if qs else "")
            return self.send(301 if self.command in ("GET", "HEAD") else 307,
                             {"message": "Moved Permanently", "url": loc,
                              "documentation_url": "https://docs.github.com/rest/guides/"
                              "best-practices-for-using-the-rest-api#follow-redirects"},
                             {"Location": loc})
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)", path)
        if not m:
            return self.send(404, {"message": "Not Found"})
        owner, repo, rest = m.groups()
        full = f"{owner}/{repo}"
        if (r := re.fullmatch(r"/actions/runs/(\d+)/jobs", rest)):
            jobs = STATE["jobs"].get(r.group(1))
            if jobs is None:
                return self.send(404, {"message": "Not Found"})
            if q.get("filter", "latest") == "latest" and jobs:
                latest = max(j.get("run_attempt", 1) for j in jobs)
                jobs = [j for j in jobs if j.get("run_attempt", 1) == latest]
            return self.page(jobs, q, path, "jobs", {"total_count": len(jobs)})
        if (r := re.fullmatch(r"/actions/runs/(\d+)", rest)) and self.command == "GET":
            run = next((x for x in STATE["runs"] if str(x["id"]) == r.group(1)), None)
            return self.send(200, run) if run else self.send(404, {"message": "Not Found"})
        if rest == "/actions/runs" or re.fullmatch(r"/actions/workflows/[^/]+/runs", rest):
            wf = unquote(rest.split("/")[3]) if rest.startswith("/actions/workflows/") else None
            return self.runs(wf, q, path)
        if (r := re.fullmatch(r"/actions/runs/(\d+)/rerun-failed-jobs", rest)) \
                and self.command == "POST":
            self.read_body()
            run = next((x for x in STATE["runs"] if str(x["id"]) == r.group(1)), None)
            if run is None:
                return self.send(404, {"message": "Not Found"})
            if run.get("forbid"):
                return self.send(403, {"message": "Resource not accessible by integration"})
            if run.get("status", "completed") != "completed":
                # GitHub re-runs only a finished run: its other jobs still run
                return self.send(403, {"message": "This workflow is already running"})
            if not run.get("rerunnable", True):
                return self.send(403, {"message": run.get(
                    "rerun_message", "Unable to retry this workflow run because it was created "
                    "over a month ago")})
            with LOCK:
                run["run_attempt"] = run.get("run_attempt", 1) + 1
                run["status"], run["conclusion"] = "queued", None
                STATE["reruns"].append({"repo": full, "run_id": run["id"]})
            return self.send(201, {})
        if (r := re.fullmatch(r"/compare/(.+)", rest)):
            return self.compare(full, unquote(r.group(1)))
        if (r := re.fullmatch(r"/commits/([^/]+)/check-runs", rest)):
            runs = STATE["check_runs_by_ref"].get(unquote(r.group(1)))
            if runs is None:
                return self.send(404, {"message": "Not Found"})
            return self.page(runs, q, path, "check_runs", {"total_count": len(runs)})
        if (r := re.fullmatch(r"/(issues|pulls)/comments/(\d+)/reactions", rest)) \
                and self.command == "POST":
            return self.react(full, int(r.group(2)), r.group(1) == "pulls")
        if (r := re.fullmatch(r"/hooks/(\d+)(/deliveries.*)", rest)):
            return self.deliveries(f"repo:{full}:{r.group(1)}", r.group(2), q)
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
                # head= names the head repository's owner (a fork's PR: the fork's)
                head_owner = ((p["head"].get("repo") or {}).get("full_name") or owner).split("/")[0]
                if head and f"{head_owner}:{p['head']['ref']}" != head:
                    continue
                # GitHub's list leaves out what only the full PR object counts
                out.append({k: v for k, v in p.items() if k not in (
                    "changed_files", "additions", "deletions", "commits", "mergeable")})
            per = int(q.get("per_page", 30))
            return self.send(200, out[:per])
        if (r := re.fullmatch(r"/pulls/(\d+)", rest)) and self.command == "GET":
            for p in STATE["pulls"]:
                if str(p.get("number")) == r.group(1):
                    return self.send(200, p)
            return self.send(404, {"message": "Not Found"})
        if (r := re.fullmatch(r"/pulls/(\d+)/(files|commits)", rest)):
            # a PR's files, or its commits oldest first ({"sha": ...} each)
            items = STATE["files" if r.group(2) == "files" else "pull_commits"].get(r.group(1))
            if items is None:
                return self.send(404, {"message": "Not Found"})
            per, page = int(q.get("per_page", 30)), int(q.get("page", 1))
            chunk = items[(page - 1) * per: page * per]
            hdr = {}
            last = (len(items) + per - 1) // per
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
        if (r := re.fullmatch(r"/issues/(\d+)/comments", rest)) and self.command == "GET":
            since = q.get("since")
            per = max(1, min(int(q.get("per_page", "30")), 100))
            page = max(1, int(q.get("page", "1")))
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
            with LOCK:
                found = [c for c in STATE["comments"]
                         if c["issue"] == int(r.group(1)) and c["repo"] == f"{owner}/{repo}"
                         and (not since or c.get("updated_at", now) >= since)]
            # GitHub's pages: Link rel="next"/"last" (and "prev"/"first" past
            # the first), the other query parameters kept
            last = max(1, (len(found) + per - 1) // per)
            keep = urlencode({k: v for k, v in q.items() if k not in ("page", "per_page")})
            base = (f"http://127.0.0.1:{self.server.server_address[1]}{path}?per_page={per}"
                    + (f"&{keep}" if keep else ""))
            links = []
            if page < last:
                links += [f'<{base}&page={page + 1}>; rel="next"', f'<{base}&page={last}>; rel="last"']
            if page > 1:
                links += [f'<{base}&page={page - 1}>; rel="prev"', f'<{base}&page=1>; rel="first"']
            return self.send(200, found[(page - 1) * per: page * per],
                             {"Link": ", ".join(links)} if links else None)
        if (r := re.fullmatch(r"/issues/(\d+)/comments", rest)) and self.command == "POST":
            body = self.body_json()
            if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                return self.send(422, {"message": "Invalid request."})
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
            c = {"id": len(STATE["comments"]) + 1, "body": body["body"],
                 "issue": int(r.group(1)), "repo": f"{owner}/{repo}",
                 "user": {"login": "healer-bot[bot]", "type": "Bot"},
                 "created_at": stamp, "updated_at": stamp}
            with LOCK:
                STATE["comments"].append(c)
                fail = self.server.config.get("comment_then_fail", 0)
                if fail > 0:
                    self.server.config["comment_then_fail"] = fail - 1
            if fail > 0:
                return self.send(self.server.config.get("comment_fail_status", 502),
                                 {"message": "Server Error"})
            return self.send(201, c)
        self.read_body()
        self.send(404, {"message": "Not Found"})


    def runs(self, wf, q, path):
        runs = []
        for x in STATE["runs"]:
            if wf is not None and str(x.get("workflow_id")) != wf and \
                    os.path.basename(x.get("path", "")) != wf:
                continue
            if q.get("branch") and x.get("head_branch") != q["branch"]:
                continue
            if q.get("head_sha") and x.get("head_sha") != q["head_sha"]:
                continue
            if q.get("event") and x.get("event") != q["event"]:
                continue
            if q.get("check_suite_id") and str(x.get("check_suite_id")) != q["check_suite_id"]:
                continue
            st = q.get("status")
            if st and x.get("status") != st and x.get("conclusion") != st:
                continue
            c, created = q.get("created"), x.get("created_at", "")
            if c:
                if c.startswith(">=") and created < c[2:]:
                    continue
                if c.startswith("<=") and created > c[2:]:
                    continue
                if ".." in c and not (c.split("..")[0] <= created <= c.split("..")[1]):
                    continue
            runs.append(x)
        runs.sort(key=lambda x: (x.get("created_at", ""), x["id"]), reverse=True)
        return self.page(runs, q, path, "workflow_runs", {"total_count": len(runs)})

    def compare(self, full, basehead):
        hist = STATE["history"].get(full, [])
        if "..." not in basehead:
            return self.send(404, {"message": "Not Found"})
        base, head = basehead.split("...", 1)

        def find(ref):
            for i, c in enumerate(hist):
                if c["sha"] == ref or c["sha"].startswith(ref) or ref in c.get("branches", []):
                    return i
            return None
        bi, hi = find(base), find(head)
        if bi is None or hi is None:
            return self.send(404, {"message": "Not Found",
                                   "documentation_url": "https://docs.github.com/rest"})
        if hi > bi:
            status, commits = "ahead", hist[bi + 1:hi + 1]
        elif hi < bi:
            status, commits = "behind", []
        else:
            status, commits = "identical", []
        out = [{k: v for k, v in c.items() if k != "branches"} for c in commits]
        return self.send(200, {"status": status, "ahead_by": max(0, hi - bi),
                               "behind_by": max(0, bi - hi), "total_commits": len(out),
                               "commits": out[:250], "files": [],
                               "base_commit": {"sha": hist[bi]["sha"]},
                               "merge_base_commit": {"sha": hist[min(bi, hi)]["sha"]}})

    def react(self, full, cid, review=False):
        body = self.body_json()
        if review:
            known = {int(k) for k in STATE["review_comments"]}
        else:
            known = ({c["id"] for c in STATE["comments"]}
                     | {int(k) for k in STATE["issue_comments"]})
        if cid not in known:
            return self.send(404, {"message": "Not Found"})
        content = body.get("content") if isinstance(body, dict) else None
        if content not in REACTIONS:
            return self.send(422, {"message": "Validation Failed", "errors": [
                {"resource": "Reaction", "code": "custom", "field": "content",
                 "message": "content is not included in the list"}]})
        user = self.bearer()
        with LOCK:
            kind = "review_comment" if review else "issue_comment"
            for r in STATE["reactions"]:
                if r["comment_id"] == cid and r["on"] == kind and r["content"] == content \
                        and r["user"] == user:
                    return self.send(200, r)
            r = {"id": len(STATE["reactions"]) + 1, "comment_id": cid, "on": kind,
                 "content": content, "user": user, "repo": full}
            STATE["reactions"].append(r)
        return self.send(201, r)

    def deliveries(self, key, rest, q):
        """.../deliveries (GET, cursor pages) and .../deliveries/{id}/attempts."""
        items = STATE["deliveries"].get(key)
        if items is None:
            self.read_body()
            return self.send(404, {"message": "Not Found"})
        if STATE["hooks"].get(key, {}).get("forbid"):
            self.read_body()
            return self.send(403, {"message": "Resource not accessible by integration",
                                   "documentation_url": "https://docs.github.com/rest"})
        if rest == "/deliveries" and self.command == "GET":
            items = sorted(items, key=lambda d: d["id"], reverse=True)
            per = max(1, min(100, int(q.get("per_page", 30))))
            # the cursor names the delivery a page starts at, so it stays
            # valid while newer deliveries arrive
            try:
                first = (int(base64.urlsafe_b64decode(q["cursor"]).decode().removeprefix("v1_"))
                         if q.get("cursor") else None)
            except ValueError:
                return self.send(400, {"message": "invalid cursor"})
            if first is not None:
                items = [d for d in items if d["id"] <= first]
            # the listing leaves the payload out, as GitHub's does
            chunk = [{k: v for k, v in d.items() if k not in ("payload", "too_old")}
                     for d in items[:per]]
            hdr = {}
            if per < len(items):
                cur = base64.urlsafe_b64encode(f"v1_{items[per]['id']}".encode()).decode()
                hdr["Link"] = (f'<http://127.0.0.1:{self.server.server_address[1]}'
                               f'{urlsplit_path(self.path)}?per_page={per}&cursor={cur}>; '
                               'rel="next"')
            return self.send(200, chunk, hdr)
        if (r := re.fullmatch(r"/deliveries/(\d+)/attempts", rest)) and self.command == "POST":
            self.read_body()
            d = next((d for d in items if str(d["id"]) == r.group(1)), None)
            if d is None:
                return self.send(404, {"message": "Not Found"})
            if d.get("too_old"):
                return self.send(422, {"message": "Validation Failed", "errors": [
                    {"resource": "Delivery", "code": "custom",
                     "message": "delivery is too old to redeliver"}]})
            with LOCK:
                STATE["redeliveries"].append({"hook": key, "delivery_id": d["id"],
                                              "guid": d.get("guid")})
                real = STATE["hooks"].get(key, {}).get("url") and "payload" in d
                if not real:
                    items.append(dict(d, id=max(x["id"] for x in items) + 1, redelivery=True,
                                      status="OK", status_code=200,
                                      delivered_at=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime())))
            if real:  # GitHub answers first and delivers afterwards
                threading.Thread(target=hook_deliver, daemon=True,
                                 args=(key, d["guid"], d.get("event", "workflow_job"),
                                       d["payload"], True)).start()
            return self.send(202, {})
        self.read_body()
        return self.send(404, {"message": "Not Found"})


def hook_deliver(key, guid, event, payload, redelivery):
    """POSTs one delivery to the hook's URL as GitHub does and lists it with
    the receiver's answer; returns the listed delivery."""
    hook = STATE["hooks"].get(key) or {}
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
               "X-GitHub-Delivery": guid, "X-GitHub-Hook-ID": key.rsplit(":", 1)[-1],
               "User-Agent": "GitHub-Hookshot/stub"}
    if hook.get("secret"):
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(
            hook["secret"].encode(), body, hashlib.sha256).hexdigest()
    code, status = 0, "failed to connect"
    u = urlsplit(hook.get("url", "http://127.0.0.1:9/"))
    t0 = time.time()
    try:
        c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
        c.request("POST", u.path or "/", body=body, headers=headers)
        r = c.getresponse()
        r.read()
        c.close()
        code = r.status
        status = "OK" if 200 <= code < 300 else f"Invalid HTTP Response: {code}"
    except OSError:
        pass
    with LOCK:
        items = STATE["deliveries"].setdefault(key, [])
        d = {"id": max([x["id"] for x in items] + [0]) + 1, "guid": guid,
             "delivered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "redelivery": redelivery, "duration": round(time.time() - t0, 3),
             "status": status, "status_code": code, "event": event,
             "action": payload.get("action") if isinstance(payload, dict) else None,
             "installation_id": None, "repository_id": 1, "payload": payload}
        items.append(d)
    return d


def urlsplit_path(p):
    return p.split("?", 1)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--token", required=True)
    ap.add_argument("--app-id")
    ap.add_argument("--app-public-key")
    ap.add_argument("--budget", help="LIMIT:WINDOW_SECONDS, the token's rate-limit budget")
    a = ap.parse_args()
    if a.budget:
        lim, win = a.budget.split(":")
        STATE["budget"] = {"limit": int(lim), "window": float(win)}
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
