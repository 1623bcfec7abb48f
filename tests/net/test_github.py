#!/usr/bin/env python3
"""test_github.py - the GitHub client (src/net/github.c) against the GitHub
stub: token and GitHub App auth (JWT verified by the stub with openssl,
installation token cached and refreshed), failed jobs, job logs through a
302 to a storage host that must never see the token, PRs by head branch, PR
files across Link pages, commits, check runs, comments, retries and rate
limits; plus the ArgoCD/Loki/Prometheus clients (src/net/sources.c)."""
import json
import os
import subprocess

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
