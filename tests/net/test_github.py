#!/usr/bin/env python3
"""test_github.py - the GitHub client (src/net/github.c) against the GitHub
stub: token and GitHub App auth (JWT verified by the stub with openssl,
installation token cached and refreshed), failed jobs, job logs through a
302 to a storage host that must never see the token, PRs by head branch, PR
files across Link pages, commits, check runs, comments, retries and rate
limits, path safety; what the remediation loop needs: reactions, re-runs,
workflow runs and jobs, the job verdict, compare, check runs of a commit,
a PR by number, webhook deliveries and redelivery (repository, organization
and App hooks, the last with the App's JWT), primary and secondary rate
limits; plus the ArgoCD/Loki/Prometheus clients (src/net/sources.c)."""
import json
import os
import subprocess
import time

from dtest import TMP, check, finish, http, netprobe, openssl, start_stub

TOKEN = "ghp_stubtoken123456"
key, pub = os.path.join(TMP, "app.pem"), os.path.join(TMP, "app.pub")
other = os.path.join(TMP, "other.pem")
openssl("genrsa", "-out", key, "2048")
openssl("rsa", "-in", key, "-pubout", "-out", pub)
openssl("genrsa", "-out", other, "2048")
_, port = start_stub("github_stub.py", "--token", TOKEN, "--app-id", "4242",
                     "--app-public-key", pub)
api = f"http://127.0.0.1:{port}"
R = "5dlabs/cto"

log_text = "".join(f"2026-11-24T00:00:{i % 60:02d}Z step {i}\n" for i in range(3000))
http("POST", f"{api}/_stub/seed", {
    "jobs": {"100": [
        {"id": 1, "name": "clippy", "conclusion": "failure", "status": "completed"},
        {"id": 2, "name": "test", "conclusion": "success", "status": "completed"},
        {"id": 3, "name": "build", "conclusion": "timed_out", "status": "completed"}]},
    "logs": {"1": log_text},
    "pulls": [{"number": 7, "state": "open", "head": {"ref": "feat/x", "sha": "aa"}},
              {"number": 8, "state": "closed", "head": {"ref": "feat/y", "sha": "bb"}}],
    "files": {"7": [{"filename": f"src/f{i}.rs", "status": "modified", "additions": i,
                     "deletions": 0} for i in range(250)]},
    "commits": {"abc123": {"sha": "abc123", "files": [{"filename": "Cargo.toml"}]}},
    "check_runs": {"55": {"id": 55, "name": "lint", "conclusion": "failure",
                          "output": {"title": "2 errors", "summary": "clippy failed",
                                     "text": "error: unused"}}},
})
TENV = {"GITHUB_API_URL": api, "GITHUB_TOKEN": TOKEN}


def gh(*args, env=TENV):
    return netprobe("github", *args, env=env)


def reqs():
    return http("GET", f"{api}/_stub/requests")


rc, out, err = gh("failed-jobs", R, "100")
check("failed jobs: failure and timed_out jobs of the latest attempt",
      rc == 0 and [j["id"] for j in out] == [1, 3], (out, err))
check("failed jobs: asks filter=latest with the token and API headers",
      any(r["path"] == "/repos/5dlabs/cto/actions/runs/100/jobs"
          and r["query"].get("filter") == "latest"
          and r["headers"].get("authorization") == f"Bearer {TOKEN}"
          and r["headers"].get("x-github-api-version") for r in reqs()))
rc, out, err = gh("failed-jobs", R, "100", env={"GITHUB_API_URL": api, "GITHUB_TOKEN": "nope"})
check("a bad token is 'unauthorized'", rc == 1 and out["error"] == "unauthorized", out)

rc, out, err = gh("job-log", R, "1", "0")
viol = http("GET", f"{api}/_stub/blob-violations")
check("job log: fetched through the 302 from the storage host", rc == 0 and out["log"] == log_text
      and not out["truncated"], (rc, str(out)[:200], err))
check("job log: the storage host never received the token", viol == [], viol)
rc, out, err = gh("job-log", R, "1", "1000")
check("job log over the cap keeps the tail",
      rc == 0 and out["truncated"] and len(out["log"]) == 1000
      and out["log"].endswith("step 2999\n"), str(out)[:200])
rc, out, err = gh("job-log", R, "999", "0")
check("job log of an unknown job is not_found", rc == 1 and out["error"] == "not_found", out)

rc, out, err = gh("pr", R, "feat/x")
check("open PR by head branch", rc == 0 and out["number"] == 7, out)
check("PR lookup sends head=owner:branch and state=open",
      any(r["path"] == "/repos/5dlabs/cto/pulls" and r["query"].get("head") == "5dlabs:feat/x"
          and r["query"].get("state") == "open" for r in reqs()))
rc, out, err = gh("pr", R, "feat/y")
check("a closed PR's branch has no open PR", rc == 1 and out["error"] == "not_found", out)

http("POST", f"{api}/_stub/reset", {})
rc, out, err = gh("pr-files", R, "7", "0")
pages = [r for r in reqs() if r["path"] == "/repos/5dlabs/cto/pulls/7/files"]
check("PR files: all 250 across 3 Link pages", rc == 0 and len(out) == 250 and len(pages) == 3
      and out[-1]["filename"] == "src/f249.rs", (len(out) if isinstance(out, list) else out))
check("PR files: the token is sent to every page (same origin)",
      all(p["headers"].get("authorization") == f"Bearer {TOKEN}" for p in pages))
rc, out, err = gh("pr-files", R, "7", "120")
check("PR files: capped at max_files", rc == 0 and len(out) == 120, len(out))
rc, out, err = gh("commit-files", R, "abc123")
check("commit files", rc == 0 and out == [{"filename": "Cargo.toml"}], out)
rc, out, err = gh("check-run", R, "55")
check("check run output", rc == 0 and out["output"]["summary"] == "clippy failed", out)

# the token's budget: an answer with x-ratelimit-remaining 0 (a success) holds
# the client's next calls until x-ratelimit-reset, so GitHub refuses none
http("POST", f"{api}/_stub/budget", {"limit": 2, "window": 1})
rc, out, err = gh("pr-files", R, "7", "0")
refused = http("GET", f"{api}/_stub/refused")
check("token budget: the page after Remaining 0 waits for the reset (within the call's "
      "timeout); all 250 files, no request refused",
      rc == 0 and len(out) == 250 and refused == [],
      [len(out) if isinstance(out, list) else out, refused])
http("POST", f"{api}/_stub/budget", {"limit": 1, "window": 60})
http("POST", f"{api}/_stub/reset", {})
rc, out, err = gh("pr-files", R, "7", "0")
refused = http("GET", f"{api}/_stub/refused")
pages = [r for r in reqs() if r["path"] == "/repos/5dlabs/cto/pulls/7/files"]
check("token budget: a reset past the call's timeout fails the call 'rate limited' "
      "without sending the request GitHub would refuse",
      rc == 1 and out["error"] == "upstream_error" and "rate limited" in out["message"]
      and refused == [] and len(pages) == 1, [out, refused, len(pages)])
http("POST", f"{api}/_stub/budget", {"limit": 5000, "window": 3600})
rc, out, err = gh("comment", R, "7", "healer: giving up after 3 attempts")
comments = http("GET", f"{api}/_stub/comments")
check("issue comment created once",
      rc == 0 and len(comments) == 1 and comments[0]["body"].startswith("healer: giving up")
      and comments[0]["issue"] == 7, (out, comments))

# retries and rate limits through the client
http("POST", f"{api}/_stub/config", {"rules": [
    {"path": "/repos/5dlabs/cto/check-runs/55", "status": 502, "times": 1}]})
rc, out, err = gh("check-run", R, "55")
check("a 502 is retried transparently", rc == 0 and out["id"] == 55, out)
http("POST", f"{api}/_stub/config", {"rules": [
    {"path": "/repos/5dlabs/cto/check-runs/55", "status": 403, "times": 1, "reset_in": 7200,
     "body": {"message": "API rate limit exceeded"}}]})
rc, out, err = gh("check-run", R, "55")
check("a rate limit lifting after the deadline gives up: upstream_error 'rate limited'",
      rc == 1 and out["error"] == "upstream_error" and "rate limited" in out["message"], out)
http("POST", f"{api}/_stub/config", {"rules": [
    {"path": "/repos/5dlabs/cto/issues/7/comments", "status": 500, "times": 1}]})
rc, out, err = gh("comment", R, "7", "second")
check("a failed POST is not retried (no duplicate comment)",
      rc == 1 and len(http("GET", f"{api}/_stub/comments")) == 1, out)
http("POST", f"{api}/_stub/config", {"rules": []})

# GitHub App authentication
AENV = {"GITHUB_API_URL": api, "GITHUB_APP_ID": "4242", "GITHUB_APP_INSTALLATION_ID": "99",
        "GITHUB_APP_PRIVATE_KEY": open(key).read()}
rc, out, err = gh("repeat", R, "100", "3", env=AENV)
toks = http("GET", f"{api}/_stub/tokens")
check("app auth: JWT accepted (RS256 verified by openssl), installation token minted once "
      "for 3 calls", rc == 0 and len(toks) == 1, (out, toks))
check("app auth: calls use the installation token",
      any(r["headers"].get("authorization") == f"Bearer {toks[0]}" for r in reqs())
      if toks else False)
http("POST", f"{api}/_stub/config", {"token_life_s": 120})
rc, out, err = gh("repeat", R, "100", "2", env=AENV)
toks2 = http("GET", f"{api}/_stub/tokens")
check("app auth: a token expiring within 5 minutes is refreshed",
      rc == 0 and len(toks2) == 3, toks2)
# a token an hour for days: each takes the expired one's place among the
# secrets the log redacts (64 at most), so the 80th is redacted too
http("POST", f"{api}/_stub/config", {"token_life_s": 60})
last = "ghs_stub%06d" % (len(toks2) + 80)
rc, out, err = gh("repeat-redact", R, "100", "80", f"token {last} leaked", env=AENV)
toks3 = http("GET", f"{api}/_stub/tokens")
check("app auth: the 80th installation token minted is still redacted from the log",
      rc == 0 and len(toks3) == len(toks2) + 80 and toks3[-1] == last
      and out.get("redacted") == "token [REDACTED] leaked", (out, toks3[-2:]))
# GitHub's clock an hour behind ours: the hour-long token's expires_at is
# our now, its life is read against the answer's Date
http("POST", f"{api}/_stub/config", {"token_life_s": 3600, "clock_offset_s": -3600})
n0 = len(http("GET", f"{api}/_stub/tokens"))
rc, out, err = gh("repeat", R, "100", "3", env=AENV)
n1 = len(http("GET", f"{api}/_stub/tokens"))
check("app auth: with GitHub's clock an hour behind, one token for 3 calls (its life read "
      "against the answer's Date), not one a call", rc == 0 and n1 - n0 == 1, (out, n1 - n0))
# GitHub's clock minutes apart from ours (its Date, and its check of the App
# JWT's iat/exp against its own time): the JWT is drawn on GitHub's clock,
# learnt from the 401 naming iat/exp (asked once more), then from every answer
TOKPATH = "/app/installations/99/access_tokens"
for off, name in ((-300, "5 minutes behind"), (900, "15 minutes ahead")):
    http("POST", f"{api}/_stub/config", {"token_life_s": 120, "clock_offset_s": off})
    http("POST", f"{api}/_stub/reset", {})
    n0 = len(http("GET", f"{api}/_stub/tokens"))
    rc, out, err = gh("repeat", R, "100", "2", env=AENV)
    n1 = len(http("GET", f"{api}/_stub/tokens"))
    asks = [r for r in reqs() if r["path"] == TOKPATH]
    check(f"app auth: GitHub's clock {name}: the installation token is obtained (the JWT "
          "refused for its iat/exp is made again on GitHub's clock)",
          rc == 0 and n1 - n0 == 2, (out, n1 - n0, err[-400:]))
    check(f"app auth: GitHub's clock {name}: one refused JWT, then the next token's JWT is "
          "drawn on the clock the answers named (no second refusal)",
          len(asks) == 3, len(asks))
http("POST", f"{api}/_stub/config", {"token_life_s": 3600, "clock_offset_s": 0})
n1 = len(http("GET", f"{api}/_stub/tokens"))
# a token revoked before its expiry (401): a new one is minted and the call
# made once more, so the third call still succeeds
http("POST", f"{api}/_stub/config", {"token_life_s": 3600, "token_uses": 2})
rc, out, err = gh("repeat", R, "100", "3", env=AENV)
n2 = len(http("GET", f"{api}/_stub/tokens"))
check("app auth: a revoked installation token (401) is replaced and the call made again",
      rc == 0 and n2 - n1 == 2 and "minted" in err, (out, n2 - n1, err[-300:]))
# every token refused: one new token and one more try, then the 401
http("POST", f"{api}/_stub/reset", {})
http("POST", f"{api}/_stub/config", {"token_life_s": 3600, "token_uses": 0})
n2 = len(http("GET", f"{api}/_stub/tokens"))
c0 = len(http("GET", f"{api}/_stub/comments"))
rc, out, err = gh("comment", R, "7", "refused", env=AENV)
n3 = len(http("GET", f"{api}/_stub/tokens"))
posted = [r for r in reqs() if r["method"] == "POST" and r["path"].endswith("/comments")]
check("app auth: a 401 with a new token too is the error after one more try (two POSTs, "
      "neither acted on)",
      rc == 1 and out["error"] == "unauthorized" and n3 - n2 == 2 and len(posted) == 2
      and len(http("GET", f"{api}/_stub/comments")) == c0, (out, n3 - n2, len(posted)))
http("POST", f"{api}/_stub/config", {"token_life_s": 3600, "token_uses": None})
bad = dict(AENV, GITHUB_APP_PRIVATE_KEY=open(other).read())
rc, out, err = gh("failed-jobs", R, "100", env=bad)
check("app auth: a JWT signed with the wrong key is refused",
      rc == 1 and out["error"] == "unauthorized" and "signature" in out["message"], out)
check("app auth: the private key never appears in errors",
      "PRIVATE KEY" not in json.dumps(out) and "PRIVATE KEY" not in err)

# path safety: a hostile repository full_name cannot reach another endpoint
EVIL = "acme/x/../../../orgs/acme/actions/secrets#"
http("POST", f"{api}/_stub/reset", {})
rc, out, err = netprobe("fetch", stdin=json.dumps({"requests": [
    {"url": f"{api}/repos/{EVIL}/actions/runs/100/jobs", "auth": f"Bearer {TOKEN}"}]}))
check("path safety control: an unchecked URL with that name reaches /orgs/acme/actions/secrets "
      "with the token (what the checks below prevent)",
      any(r["path"] == "/orgs/acme/actions/secrets" for r in reqs()), reqs())
http("POST", f"{api}/_stub/reset", {})
rc, out, err = gh("failed-jobs", EVIL, "100")
check("path safety: a traversal full_name is refused before any request",
      rc == 1 and out["error"] == "invalid" and "not owner/name" in out["message"]
      and reqs() == [], (out, reqs()))
rc, out, err = gh("call", "GET", f"/repos/{EVIL}/actions/runs/100/jobs")
check("path safety: an unencoded path built by a caller is refused too (no request)",
      rc == 1 and out["error"] == "invalid" and "refused" in out["message"] and reqs() == [],
      (out, reqs()))
for bad in ("acme", "/x", "acme/", "acme/x/y", "../x", "acme/..", "", "./."):
    rc, out, err = gh("commit-files", bad, "abc123")
    check(f"path safety: full_name {bad!r} is not exactly two non-empty segments -> invalid",
          rc == 1 and out["error"] == "invalid", out)
for name in ("acme/wid gets#x?y", "acme/%2e%2e", "acme/\u00fc", "acme/a..b"):
    gh("commit-files", name, "abc123")
rc, out, err = gh("commit-files", R, "../../../orgs/acme")
paths = [r["path"] for r in reqs()]
check("path safety: odd names are encoded and stay one segment under /repos/acme/",
      paths == ["/repos/acme/wid%20gets%23x%3Fy/commits/abc123",
                "/repos/acme/%252e%252e/commits/abc123",
                "/repos/acme/%C3%BC/commits/abc123",
                "/repos/acme/a..b/commits/abc123"], paths)
check("path safety: a ref that would climb once decoded is refused (no request)",
      rc == 1 and out["error"] == "invalid", out)
check("path safety: /orgs/... was never reached through the client",
      not any(p.startswith("/orgs/") for p in paths), paths)

# ---- the remediation loop ----
def posts(suffix):
    return [r for r in reqs() if r["method"] == "POST" and r["path"].endswith(suffix)]


def rules(*rs):
    http("POST", f"{api}/_stub/config", {"rules": list(rs)})


http("POST", f"{api}/_stub/seed", {
    "issue_comments": {"9001": {"id": 9001, "body": "/healer fix"}},
    "review_comments": {"9002": {"id": 9002, "body": "/healer fix"}},
    "runs": [
        {"id": 700, "workflow_id": 11, "path": ".github/workflows/ci.yml", "name": "CI",
         "head_branch": "main", "head_sha": "s700", "status": "completed",
         "conclusion": "failure", "created_at": "2026-11-24T01:00:00Z", "run_attempt": 1},
        {"id": 701, "workflow_id": 11, "path": ".github/workflows/ci.yml", "head_branch": "main",
         "status": "completed", "conclusion": "failure", "created_at": "2026-10-01T00:00:00Z",
         "rerunnable": False},
        {"id": 702, "workflow_id": 11, "path": ".github/workflows/ci.yml", "head_branch": "main",
         "status": "completed", "conclusion": "failure", "created_at": "2026-11-24T02:00:00Z",
         "forbid": True},
        {"id": 710, "workflow_id": 11, "path": ".github/workflows/ci.yml", "head_branch": "feat/x",
         "head_sha": "s710", "status": "completed", "conclusion": "failure",
         "created_at": "2026-11-24T10:00:00Z"},
        {"id": 711, "workflow_id": 11, "path": ".github/workflows/ci.yml", "head_branch": "feat/x",
         "head_sha": "s711", "status": "completed", "conclusion": "success",
         "created_at": "2026-11-24T10:30:00Z", "run_attempt": 2},
        {"id": 712, "workflow_id": 11, "path": ".github/workflows/ci.yml", "head_branch": "feat/x",
         "head_sha": "s712", "status": "in_progress", "conclusion": None,
         "created_at": "2026-11-24T11:00:00Z"},
        {"id": 713, "workflow_id": 12, "path": ".github/workflows/lint.yml",
         "head_branch": "feat/x", "status": "completed", "conclusion": "failure",
         "created_at": "2026-11-24T11:10:00Z"},
        {"id": 715, "workflow_id": 11, "path": ".github/workflows/ci.yml", "head_branch": "feat/x",
         "head_sha": "s715", "status": "completed", "conclusion": "cancelled",
         "created_at": "2026-11-24T10:45:00Z"}],
    "jobs": {
        "710": [{"id": 7101, "name": "clippy", "conclusion": "failure", "run_attempt": 1}],
        "711": [{"id": 7110, "name": "clippy", "conclusion": "failure", "run_attempt": 1},
                {"id": 7111, "name": "clippy", "conclusion": "success", "run_attempt": 2,
                 "completed_at": "2026-11-24T10:40:00Z"},
                {"id": 7112, "name": "test", "conclusion": "success", "run_attempt": 2}],
        "715": [{"id": 7151, "name": "clippy", "conclusion": "cancelled"}],
        "716": [{"id": 7161, "name": "clippy", "conclusion": "failure"}]},
    "history": {"5dlabs/cto": [
        {"sha": f"c{i}", "commit": {"message": f"commit {i}",
                                    "author": {"name": f"dev{i}", "email": f"d{i}@x.io",
                                               "date": f"2026-11-24T0{i}:00:00Z"}},
         "author": {"login": f"dev{i}"} if i != 4 else None,
         **({"branches": ["feat/x"]} if i == 6 else {})} for i in range(1, 7)]},
    "check_runs_by_ref": {"abc123": [{"id": 5000 + i, "name": f"check-{i}",
                                      "conclusion": "failure" if i == 7 else "success"}
                                     for i in range(130)]},
    "deliveries": {
        "repo:5dlabs/cto:55": [
            {"id": i, "guid": f"g-{i}", "delivered_at":
             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1795478400 + i * 60)),
             "redelivery": False, "duration": 0.25, "status": "OK" if i % 10 else "failed to connect",
             "status_code": 200 if i % 10 else 502, "event": "workflow_job",
             "action": "completed" if i % 2 else None, "installation_id": 99,
             "repository_id": 1} for i in range(1, 151)],
        "org:5dlabs:66": [{"id": i, "guid": f"o-{i}", "delivered_at": "2026-11-24T00:00:00Z",
                           "status": "OK", "status_code": 200, "event": "push"}
                          for i in range(1, 4)],
        "app": [{"id": i, "guid": f"a-{i}", "delivered_at": "2026-11-24T00:00:00Z",
                 "status": "Invalid HTTP Response: 503", "status_code": 503,
                 "event": "check_run", "action": "requested_action", "too_old": i == 1}
                for i in range(1, 6)]},
})

# reactions: exactly one, 201 then 200 both success
http("POST", f"{api}/_stub/reset", {})
rc1, out1, _ = gh("react", R, "9001", "eyes")
rc2, out2, _ = gh("react", R, "9001", "eyes")
stored = [r for r in http("GET", f"{api}/_stub/reactions") if r["comment_id"] == 9001]
sent = posts("/issues/comments/9001/reactions")
check("reaction: 201 (created) then 200 (already there) are both success",
      rc1 == 0 and out1 == {"created": True} and rc2 == 0 and out2 == {"created": False},
      (out1, out2))
check("reaction: exactly one 'eyes' reaction exists on the comment", len(stored) == 1, stored)
check("reaction: POST /repos/{o}/{r}/issues/comments/{id}/reactions {\"content\":\"eyes\"}",
      len(sent) == 2 and all(r["body"] == {"content": "eyes"}
                             and r["headers"].get("authorization") == f"Bearer {TOKEN}"
                             for r in sent), sent)
rc, out, _ = gh("react", R, "9001", "thumbs_up")
check("reaction: an unknown content is invalid before any request",
      rc == 1 and out["error"] == "invalid" and len(posts("/reactions")) == 2, out)
rc, out, _ = gh("react", R, "424242", "eyes")
check("reaction: a deleted comment is not_found", rc == 1 and out["error"] == "not_found", out)
http("POST", f"{api}/_stub/reset", {})
rc1, out1, _ = gh("react", R, "9002", "eyes", "review")
rc2, out2, _ = gh("react", R, "9001", "eyes", "review")
sent = [r["path"] for r in posts("/reactions")]
stored = [(r["comment_id"], r["on"]) for r in http("GET", f"{api}/_stub/reactions")
          if r["on"] == "review_comment"]
check("reaction on a review comment: POST .../pulls/comments/{id}/reactions, and an issue "
      "comment's id there is not_found",
      rc1 == 0 and out1 == {"created": True} and rc2 == 1 and out2["error"] == "not_found"
      and sent == ["/repos/5dlabs/cto/pulls/comments/9002/reactions",
                   "/repos/5dlabs/cto/pulls/comments/9001/reactions"]
      and stored == [(9002, "review_comment")], (out1, out2, sent, stored))
rules({"method": "POST", "path": "/repos/5dlabs/cto/issues/comments/9001/reactions",
       "status": 502, "times": 1})
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("react", R, "9001", "heart")
check("reaction: a 502 is reported (upstream_error) and not repeated (a POST)",
      rc == 1 and out["error"] == "upstream_error" and len(posts("/reactions")) == 1, out)
rules({"method": "POST", "path": "/repos/5dlabs/cto/issues/comments/9001/reactions",
       "status": 403, "times": 1, "headers": {"Retry-After": "1"},
       "body": {"message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                           "before you try again."}})
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("react", R, "9001", "rocket")
rocket = [r for r in http("GET", f"{api}/_stub/reactions") if r["content"] == "rocket"]
check("reaction: a secondary rate limit (403 + retry-after) is waited out, then one reaction",
      rc == 0 and out["created"] and len(posts("/reactions")) == 2 and len(rocket) == 1,
      (out, rocket))
rules()

# re-runs
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("rerun", R, "700")
check("rerun: POST .../actions/runs/700/rerun-failed-jobs -> 201 -> ok, once",
      rc == 0 and [r["run_id"] for r in http("GET", f"{api}/_stub/reruns")] == [700]
      and [r["path"] for r in posts("/rerun-failed-jobs")]
      == ["/repos/5dlabs/cto/actions/runs/700/rerun-failed-jobs"], out)
rc, out, _ = gh("rerun", R, "701")
check("rerun: a run that cannot be re-run (403) is 'unsupported' with GitHub's reason",
      rc == 1 and out["error"] == "unsupported" and "cannot be re-run" in out["message"]
      and "over a month ago" in out["message"], out)
rc, out, _ = gh("rerun", R, "702")
check("rerun: a 403 for missing permission stays 'unauthorized'",
      rc == 1 and out["error"] == "unauthorized" and "not accessible" in out["message"], out)
rc, out, _ = gh("rerun", R, "799")
check("rerun: an unknown run is not_found", rc == 1 and out["error"] == "not_found", out)

# workflow runs, jobs, the verdict
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("runs", R, "ci.yml", "feat/x", "-", "completed", "-", "0")
q = [r for r in reqs() if r["path"] == "/repos/5dlabs/cto/actions/workflows/ci.yml/runs"]
check("workflow runs: of one workflow (by file name) on a branch, completed, newest first",
      rc == 0 and [r["id"] for r in out] == [715, 711, 710], out)
check("workflow runs: branch and status sent as query values",
      q and q[0]["query"].get("branch") == "feat/x" and q[0]["query"].get("status") == "completed",
      q)
rc, out, _ = gh("runs", R, "-", "-", "s711", "-", "-", "0")
check("workflow runs: by head_sha across workflows (/actions/runs)",
      rc == 0 and [r["id"] for r in out] == [711], out)
rc, out, _ = gh("runs", R, "11", "feat/x", "-", "-", ">=2026-11-24T10:40:00Z", "0")
check("workflow runs: by workflow id and creation time",
      rc == 0 and [r["id"] for r in out] == [712, 715], out)
rc, out, _ = gh("runs", R, "ci.yml", "-", "-", "-", "-", "2")
check("workflow runs: capped at max_runs", rc == 0 and len(out) == 2, out)
rc, out, _ = gh("jobs", R, "711")
check("run jobs: every job of the latest attempt",
      rc == 0 and [j["id"] for j in out] == [7111, 7112], out)
rc, out, _ = gh("verdict", R, "ci.yml", "feat/x", "clippy", "2026-11-24T10:15:00Z")
check("verdict: the newest run where the job concluded decides (a cancelled one is skipped): "
      "passed", rc == 0 and out["verdict"] == "passed" and out["run_id"] == 711
      and out["job_id"] == 7111 and out["head_sha"] == "s711", out)
# GitHub's search syntax takes whole seconds (YYYY-MM-DDTHH:MM:SSZ): a
# since with milliseconds is sent rounded down, so no run is missed
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("verdict", R, "ci.yml", "feat/x", "clippy", "2026-11-24T10:15:00.750Z")
q = [r["query"].get("created") for r in reqs()
     if r["path"] == "/repos/5dlabs/cto/actions/workflows/ci.yml/runs"]
check("verdict: created>= is sent in whole seconds, rounded down",
      rc == 0 and out["run_id"] == 711 and q == [">=2026-11-24T10:15:00Z"], (out, q))
rc, out, _ = gh("verdict", R, "ci.yml", "feat/x", "clippy", "2026-11-24T10:50:00Z")
check("verdict: no completed run since then -> none", rc == 0 and out["verdict"] == "none", out)
rc, out, _ = gh("verdict", R, "ci.yml", "feat/x", "lint", "0")
check("verdict: runs exist but none ran that job -> missing",
      rc == 0 and out["verdict"] == "missing", out)
rc, out, _ = gh("verdict", R, "ci.yml", "feat/x", "-", "2026-11-24T10:15:00Z")
check("verdict of the runs as a whole: a cancelled run is skipped, the older one passed",
      rc == 0 and out["verdict"] == "passed" and out["run_id"] == 711 and out["job_id"] == 0, out)
http("POST", f"{api}/_stub/seed", {"runs": [
    {"id": 716, "workflow_id": 11, "path": ".github/workflows/ci.yml", "head_branch": "feat/x",
     "head_sha": "s716", "status": "completed", "conclusion": "failure",
     "created_at": "2026-11-24T12:00:00Z"}]})
rc, out, _ = gh("verdict", R, "ci.yml", "feat/x", "clippy", "2026-11-24T10:15:00Z")
check("verdict: a newer failing run -> failed", rc == 0 and out["verdict"] == "failed"
      and out["run_id"] == 716 and out["conclusion"] == "failure", out)
# a whole run's task (a workflow_run failure names no job): the runs' own
# conclusions decide, a cancelled one proves nothing
rc, out, _ = gh("verdict", R, "ci.yml", "feat/x", "-", "2026-11-24T10:15:00Z")
check("verdict of the runs as a whole (no job): the newest concluded run decides",
      rc == 0 and out["verdict"] == "failed" and out["run_id"] == 716 and out["job_id"] == 0
      and out["head_sha"] == "s716", out)
# a fork's pull request run on a branch of the same name says nothing of it
http("POST", f"{api}/_stub/seed", {"runs": [
    {"id": 717, "workflow_id": 11, "path": ".github/workflows/ci.yml", "head_branch": "feat/x",
     "head_sha": "s717", "status": "completed", "conclusion": "success",
     "event": "pull_request", "head_repository": {"full_name": "mallory/cto"},
     "created_at": "2026-11-24T13:00:00Z"}]})
rc, out, _ = gh("verdict", R, "ci.yml", "feat/x", "-", "2026-11-24T10:15:00Z")
check("verdict: a newer passing run of a fork's pull request (its branch named alike) is "
      "passed over", rc == 0 and out["verdict"] == "failed" and out["run_id"] == 716, out)
rules({"path": "/repos/5dlabs/cto/actions/workflows", "status": 502, "times": 1})
rc, out, _ = gh("verdict", R, "ci.yml", "feat/x", "clippy", "0")
check("verdict: a 502 on a GET is retried transparently", rc == 0 and out["run_id"] == 716, out)
rules()

# compare
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("compare", R, "c2", "feat/x", "0")
cmp_req = [r["path"] for r in reqs() if "/compare/" in r["path"]]
check("compare: base...head gives the commits after base, oldest first, with message and author",
      rc == 0 and out["status"] == "ahead" and out["ahead_by"] == 4
      and [c["sha"] for c in out["commits"]] == ["c3", "c4", "c5", "c6"]
      and out["commits"][0] == {"sha": "c3", "message": "commit 3", "author": "dev3",
                                "email": "d3@x.io", "login": "dev3",
                                "date": "2026-11-24T03:00:00Z"}
      and out["commits"][1]["login"] is None and out["truncated"] is False, out)
check("compare: a ref's '/' is encoded inside the one segment",
      cmp_req == ["/repos/5dlabs/cto/compare/c2...feat%2Fx"], cmp_req)
rc, out, _ = gh("compare", R, "c2", "c6", "2")
check("compare: capped to the newest commits, marked truncated",
      rc == 0 and [c["sha"] for c in out["commits"]] == ["c5", "c6"] and out["truncated"], out)
rc, out, _ = gh("compare", R, "c6", "c2", "0")
check("compare: behind -> no commits", rc == 0 and out["status"] == "behind"
      and out["commits"] == [], out)
rc, out, _ = gh("compare", R, "nope", "c6", "0")
check("compare: an unknown ref is not_found", rc == 1 and out["error"] == "not_found", out)
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("compare", R, "a..b", "c6", "0")
check("compare: a ref holding '..' is invalid before any request",
      rc == 1 and out["error"] == "invalid" and reqs() == [], out)

# check runs of a commit, a PR by number
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("check-runs", R, "abc123", "0")
pages = [r for r in reqs() if r["path"] == "/repos/5dlabs/cto/commits/abc123/check-runs"]
check("check runs of a commit: all 130 across 2 Link pages, the token on each",
      rc == 0 and len(out) == 130 and len(pages) == 2 and out[7]["conclusion"] == "failure"
      and all(p["headers"].get("authorization") == f"Bearer {TOKEN}" for p in pages),
      (len(out) if isinstance(out, list) else out, len(pages)))
rc, out, _ = gh("check-runs", R, "abc123", "50")
check("check runs: capped at max", rc == 0 and len(out) == 50, len(out))
rc, out, _ = gh("check-runs", R, "deadbeef", "0")
check("check runs: an unknown commit is not_found", rc == 1 and out["error"] == "not_found", out)
rc, out, _ = gh("pull", R, "7")
check("PR by number", rc == 0 and out["number"] == 7 and out["head"]["ref"] == "feat/x", out)
rc, out, _ = gh("pull", R, "99")
check("PR by number: unknown is not_found", rc == 1 and out["error"] == "not_found", out)

# webhook deliveries and redelivery
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("deliveries", "repo", R, "55", "0", "0")
pages = [r for r in reqs() if r["path"] == "/repos/5dlabs/cto/hooks/55/deliveries"]
check("deliveries (repository hook): all 150, newest first, through the Link cursor",
      rc == 0 and [d["id"] for d in out] == list(range(150, 0, -1)) and len(pages) == 2
      and pages[0]["query"].get("per_page") == "100" and pages[1]["query"].get("cursor"),
      ([d["id"] for d in out][:3] if isinstance(out, list) else out, len(pages)))
d = out[0] if rc == 0 else {}
check("deliveries: id, guid, status, status_code, delivered_at, redelivery, event, action",
      d.get("guid") == "g-150" and d.get("status") == "failed to connect"
      and d.get("status_code") == 502 and d.get("redelivery") is False
      and d.get("event") == "workflow_job" and d.get("action") is None
      and d.get("delivered_at", "").endswith("Z") and out[1]["action"] == "completed", d)
http("POST", f"{api}/_stub/reset", {})
since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1795478400 + 120 * 60))
rc, out, _ = gh("deliveries", "repo", R, "55", since, "0")
check("deliveries: listing stops at the first delivery older than 'since' (one page)",
      rc == 0 and [d["id"] for d in out] == list(range(150, 119, -1))
      and len([r for r in reqs() if r["path"].endswith("/deliveries")]) == 1,
      [d["id"] for d in out][-3:] if isinstance(out, list) else out)
rc, out, _ = gh("deliveries", "org", "5dlabs", "66", "0", "0")
check("deliveries (organization hook): /orgs/{org}/hooks/{id}/deliveries",
      rc == 0 and [d["guid"] for d in out] == ["o-3", "o-2", "o-1"], out)
rc, out, _ = gh("deliveries", "org", "..", "66", "0", "0")
check("deliveries: an organization named '..' is invalid", rc == 1 and out["error"] == "invalid",
      out)
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("redeliver", "repo", R, "55", "140")
listed = gh("deliveries", "repo", R, "55", "0", "1")[1]
check("redeliver: POST .../deliveries/140/attempts -> 202; the new attempt lists as a redelivery",
      rc == 0 and http("GET", f"{api}/_stub/redeliveries")[-1]["delivery_id"] == 140
      and listed[0]["guid"] == "g-140" and listed[0]["redelivery"] is True, (out, listed))
rules({"method": "POST", "path": "/repos/5dlabs/cto/hooks/55/deliveries", "status": 500})
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("redeliver", "repo", R, "55", "130")
check("redeliver: a 500 is reported and not repeated (a POST)",
      rc == 1 and out["error"] == "upstream_error" and len(posts("/attempts")) == 1, out)
rules()
# nothing reached GitHub (a refused connection): an upstream error to ask
# again, never an I/O error a lost answer gives (before: the redelivery was
# recorded failed for good, as if GitHub might have taken it)
rc, out, _ = gh("redeliver", "repo", R, "55", "130",
                env=dict(TENV, GITHUB_API_URL="http://127.0.0.1:9"))
check("redeliver: a refused connection is upstream_error (nothing was sent)",
      rc == 1 and out["error"] == "upstream_error" and "onnect" in out["message"], out)
rc, out, _ = gh("deliveries", "app", "-", "0", "0", "0")
check("deliveries (App hook) with only a token: unauthorized, the App's JWT is needed",
      rc == 1 and out["error"] == "unauthorized" and "GITHUB_APP_ID" in out["message"], out)
TOKS_BEFORE = len(http("GET", f"{api}/_stub/tokens"))
http("POST", f"{api}/_stub/reset", {})
AENV0 = {"GITHUB_API_URL": api, "GITHUB_APP_ID": "4242", "GITHUB_APP_INSTALLATION_ID": "99",
         "GITHUB_APP_PRIVATE_KEY": open(key).read()}
rc, out, _ = gh("deliveries", "app", "-", "0", "0", "0", env=AENV0)
app_reqs = [r for r in reqs() if r["path"] == "/app/hook/deliveries"]
check("deliveries (App hook): /app/hook/deliveries with the App's JWT, no installation token",
      rc == 0 and [d["id"] for d in out] == [5, 4, 3, 2, 1] and app_reqs
      and app_reqs[0]["headers"]["authorization"].count(".") == 2
      and len(http("GET", f"{api}/_stub/tokens")) == TOKS_BEFORE, out)
rc, out, _ = gh("redeliver", "app", "-", "0", "3", env=AENV0)
rc1, out1, _ = gh("redeliver", "app", "-", "0", "1", env=AENV0)
check("redeliver (App hook): 202 with the JWT; one too old to redeliver is invalid (422)",
      rc == 0 and rc1 == 1 and out1["error"] == "invalid" and "too old" in out1["message"],
      (out, out1))

# a renamed (or transferred) repository: GitHub answers 301 to a GET and 307
# to a POST with Location /repositories/{id}/...; every call follows it, the
# token kept on the API origin only (before: "status 301", a reaction failed)
http("POST", f"{api}/_stub/seed", {"renames": {"5dlabs/old-cto": {"id": 42, "to": "5dlabs/cto"}}})
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("pull", "5dlabs/old-cto", "7")
seen = [(r["method"], r["path"], r["headers"].get("authorization")) for r in reqs()]
check("rename: a GET under the old name follows the 301 to /repositories/42/... with the token",
      rc == 0 and out["number"] == 7
      and seen == [("GET", "/repos/5dlabs/old-cto/pulls/7", f"Bearer {TOKEN}"),
                   ("GET", "/repositories/42/pulls/7", f"Bearer {TOKEN}")], (out, seen))
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("react", "5dlabs/old-cto", "9001", "laugh")
sent = [r for r in reqs() if r["path"] == "/repositories/42/issues/comments/9001/reactions"]
laugh = [r for r in http("GET", f"{api}/_stub/reactions") if r["content"] == "laugh"]
check("rename: a reaction follows the 307, sent again as a POST with its body and the token",
      rc == 0 and out == {"created": True} and len(laugh) == 1 and len(sent) == 1
      and sent[0]["method"] == "POST" and sent[0]["body"] == {"content": "laugh"}
      and sent[0]["headers"].get("authorization") == f"Bearer {TOKEN}", (out, sent))
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("deliveries", "repo", "5dlabs/old-cto", "55", "0", "0")
check("rename: a hook's deliveries listed under the old name, all pages",
      rc == 0 and len(out) >= 150 and out[-1]["id"] == 1, out if rc else len(out))
rc, out, _ = gh("redeliver", "repo", "5dlabs/old-cto", "55", "141")
check("rename: a redelivery under the old name reaches the hook (307 followed)",
      rc == 0 and http("GET", f"{api}/_stub/redeliveries")[-1]["delivery_id"] == 141, out)
# a redirect to another host: never with the token; a POST's 301 there not followed
_, oport = start_stub("generic_stub.py")
ohost = f"http://127.0.0.1:{oport}"
http("POST", f"{api}/_stub/seed", {"renames": {
    "5dlabs/moved-away": {"id": 43, "to": "5dlabs/cto", "host": ohost}}})
rc, out, _ = gh("pull", "5dlabs/moved-away", "7")
rc1, out1, _ = gh("react", "5dlabs/moved-away", "9001", "eyes")
there = http("GET", f"{ohost}/_stub/requests")
check("rename to another host: the GET and the POST (307) get there without the token",
      sorted(r["method"] for r in there) == ["GET", "POST"]
      and all("authorization" not in r["headers"] for r in there), there)
rules({"method": "POST", "path": "/repos/5dlabs/cto/issues/comments/9001/reactions",
       "status": 301, "headers": {"Location": f"{ohost}/elsewhere"}, "times": 1})
http("POST", f"{ohost}/_stub/reset", {})
rc, out, _ = gh("react", R, "9001", "hooray")
check("a POST's 301 to another origin is not followed: upstream_error naming it",
      rc == 1 and out["error"] == "upstream_error" and "not followed" in out["message"]
      and http("GET", f"{ohost}/_stub/requests") == [], out)
rules()

# rate limits on the loop's calls
rules({"path": "/repos/5dlabs/cto/pulls/7", "status": 429, "times": 1, "reset_in": 1,
       "body": {"message": "API rate limit exceeded for installation ID 99."}})
http("POST", f"{api}/_stub/reset", {})
rc, out, _ = gh("pull", R, "7")
check("primary rate limit (429, x-ratelimit-remaining 0, reset soon): waited out, then 200",
      rc == 0 and out["number"] == 7
      and len([r for r in reqs() if r["path"] == "/repos/5dlabs/cto/pulls/7"]) == 2, out)
rules({"path": "/repos/5dlabs/cto/pulls/7", "status": 403, "times": 1,
       "body": {"message": "You have exceeded a secondary rate limit and have been temporarily "
                           "blocked from content creation."}})
rc, out, _ = gh("pull", R, "7")
check("secondary rate limit without retry-after: upstream_error naming it, not unauthorized",
      rc == 1 and out["error"] == "upstream_error" and "secondary rate limit" in out["message"],
      out)
rules()
rc, out, _ = netprobe("fetch", stdin=json.dumps({"requests": [
    {"url": f"{api}/repos/5dlabs/cto/pulls/7", "auth": f"Bearer {TOKEN}"}]}))
r0 = out["results"][0] if rc == 0 else {}
check("stand-in: answers carry x-ratelimit-remaining and x-ratelimit-reset",
      r0.get("rl_remaining", -1) >= 0 and r0.get("rl_reset", 0) > time.time(), r0)

# ArgoCD REST, Loki and Prometheus
_, sport = start_stub("generic_stub.py")
src = f"http://127.0.0.1:{sport}"
http("POST", f"{src}/_stub/config", {"routes": [
    {"path": "/api/v1/applications/cto-controller", "token": "argo-tok",
     "body": {"metadata": {"name": "cto-controller"},
              "status": {"health": {"status": "Healthy"}, "sync": {"status": "Synced"}}}},
    {"path": "/loki/api/v1/query_range",
     "body": {"status": "success", "data": {"resultType": "streams", "result": [
         {"stream": {"app": "api"}, "values": [["1700000000000000000", "panic: boom"]]}]}}},
    {"path": "/api/v1/query",
     "body": {"status": "success", "data": {"resultType": "vector", "result": [
         {"metric": {"job": "api"}, "value": [1700000000, "0.25"]}]}}},
]})
rc, out, err = netprobe("sources", "argocd", src, "argo-tok", "cto-controller")
check("argocd REST: health and sync summarised",
      rc == 0 and out["health"] == "Healthy" and out["sync"] == "Synced", out)
rc, out, err = netprobe("sources", "argocd", src, "wrong", "cto-controller")
check("argocd REST: a bad token is unauthorized", rc == 1 and out["error"] == "unauthorized", out)
http("POST", f"{src}/_stub/reset", {})
rc, out, err = netprobe("sources", "argocd", src, "argo-tok", "../../settings")
check("argocd REST: an application name that is not a Kubernetes name -> invalid, no request",
      rc == 1 and out["error"] == "invalid" and http("GET", f"{src}/_stub/requests") == [], out)
rc, out, err = netprobe("sources", "loki", src, '{app="api"} |= "panic"')
lq = [r for r in http("GET", f"{src}/_stub/requests") if r["path"] == "/loki/api/v1/query_range"]
check("loki query_range: result streams returned",
      rc == 0 and out[0]["values"][0][1] == "panic: boom", out)
check("loki query_range: query, start, end and limit sent",
      lq and lq[-1]["query"].get("query") == '{app="api"} |= "panic"'
      and int(lq[-1]["query"]["end"]) > int(lq[-1]["query"]["start"])
      and lq[-1]["query"].get("limit") == "50", lq)
rc, out, err = netprobe("sources", "prom", src, 'rate(http_requests_total{code="500"}[5m])')
check("prometheus query: vector result", rc == 0 and out[0]["value"][1] == "0.25", out)
http("POST", f"{src}/_stub/config", {"routes": [
    {"path": "/api/v1/query", "status": 400,
     "body": {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}}]})
rc, out, err = netprobe("sources", "prom", src, "rate(")
check("prometheus error answer: its errorType and error are reported",
      rc == 1 and "bad_data" in out["message"] and "parse error" in out["message"], out)

finish()
