#!/usr/bin/env python3
"""test_comment.py - the GitHub PR comments (src/notify/comment.c): the
escalation comment, the `/healer status` reply and the refusal, rendered
with GitHub's own Markdown engine (cmark-gfm, raw HTML allowed so any
injected tag would show) to check that the attempts table keeps its rows
and columns and that no untrusted text opens HTML, a link, an image or a
mention; and the sender against the GitHub stub: created, rate limits
(retry with the wait; X-RateLimit-Remaining 0 on a success holds the
channel until the reset; a POST the spent budget would get refused is not
sent), 5xx (retry, never posted twice), 401/404/422 (failed)."""
import html.parser
import re
import subprocess

from ntest import REPORT, check, finish, hostile_report, http, probe, start_stub

TOKEN = "ghp_notifytoken123456"


class Table(html.parser.HTMLParser):
    """Collects the rendered tables (rows of cell texts), every tag, and
    link targets."""

    def __init__(self):
        super().__init__()
        self.tables, self.tags, self.hrefs, self.cell = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = ""
        elif tag == "a":
            self.hrefs.append(dict(attrs).get("href", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def render(md):
    p = subprocess.run(["cmark-gfm", "--unsafe", "-e", "table", "-e", "autolink", "-e",
                        "strikethrough"], input=md.encode(),
                       capture_output=True, timeout=30)
    t = Table()
    t.feed(p.stdout.decode())
    return t, p.stdout.decode()


ALLOWED_TAGS = {"h2", "h3", "p", "ul", "ol", "li", "strong", "em", "table", "thead", "tbody",
                "tr", "th", "td", "a", "pre", "code", "hr", "br"}

# ---- the design's escalation ----
md = probe("build", "github")[1]
t, out = render(md)
rows = t.tables[0] if t.tables else []
check("escalation: one table, a header and a row per attempt, 6 columns",
      len(t.tables) == 1 and len(rows) == 4 and all(len(r) == 6 for r in rows), rows)
check("escalation: the header names # agent outcome duration CodeRun PR",
      rows and rows[0] == ["#", "Agent", "Outcome", "Duration", "CodeRun", "PR"], rows[:1])
check("escalation: the rows hold agent, outcome, duration, CodeRun, PR",
      len(rows) == 4 and rows[1] == ["1", "Rex", "CI still failing", "4m 12s",
                                      "healer-ci-rex-9876543210-1", "#1234"]
      and rows[3] == ["3", "Atlas", "agent failed", "1h 06m", "healer-ci-atlas-9876543210-3",
                      "-"], rows)
check("escalation: the heading, the attempts and the current failure",
      md.startswith("## \u26a0\ufe0f Healer: automatic remediation failed")
      and "I tried 3 times" in md and "\nerror[E0382]: borrow of moved value: `config`\n```\n"
      in md and ">error[E0382]: borrow of moved value: `config`\n</code></pre>" in out
      and "*Escalated by Healer*" in md, md)
check("escalation: links to the PR, the run and the task only",
      set(t.hrefs) == {"https://github.com/5dlabs/cto/pull/1234",
                       "https://github.com/5dlabs/cto/actions/runs/9876543210",
                       "http://healer.example.com/api/remediations/ci-9876543210-clippy"},
      t.hrefs)

# ---- hostile and huge ----
for scale in (1, 40):
    r = hostile_report(scale)
    md = probe("build", "github", report=r)[1]
    t, out = render(md)
    rows = t.tables[0] if t.tables else []
    n = min(len(r["attempts"]), 50)
    check(f"hostile x{scale}: the table keeps {n} rows of 6 cells",
          len(t.tables) == 1 and len(rows) == n + 1 and all(len(x) == 6 for x in rows),
          [len(x) for x in rows])
    if len(r["attempts"]) > 50:
        check(f"hostile x{scale}: attempts past 50 are counted, not listed",
              f"\u2026 and {len(r['attempts']) - 50} more attempts" in md, md[-300:])
    check(f"hostile x{scale}: '|' and line breaks stay inside their cell",
          all(x[1].startswith("Rex|@") for x in rows[1:]) and "\n" not in "".join(
              c for x in rows for c in x), rows[1][:2] if len(rows) > 1 else rows)
    check(f"hostile x{scale}: no HTML from the input is rendered",
          set(t.tags) <= ALLOWED_TAGS and "<script" not in out and "<img" not in out,
          sorted(set(t.tags) - ALLOWED_TAGS))
    check(f"hostile x{scale}: no link from the input (javascript:, masked links)",
          all(h.startswith(("https://github.com/5dlabs/cto/", "http://healer.example.com/"))
              for h in t.hrefs), t.hrefs)
    outside = out.split("<pre>")[0] + out.split("</pre>")[-1]  # mentions are not parsed in code
    check(f"hostile x{scale}: no @mention survives outside the code block",
          "@everyone" not in outside and "@here" not in outside
          and "@\u200beveryone" in outside, "")
    # GitHub links "#N", "owner/repo#N" in text even after a backslash
    # (\\#1 is still a reference: github/cmark-gfm#181), and a reference to
    # another repository's issue puts a cross-reference on its timeline
    text = re.sub(r"<a [^>]*>.*?</a>", "", outside, flags=re.S)
    check(f"hostile x{scale}: no issue reference survives outside the code block",
          not re.search(r"(?<![\w&])#\d", text) and "#\u200b1" in text,
          re.findall(r".{0,20}#\d.{0,10}", text)[:5])
    check(f"hostile x{scale}: the fenced failure cannot be closed by the input",
          out.count("<pre>") == 1 and "Bcc: evil" in out.split("<pre>")[1].split("</pre>")[0],
          out[-400:])
    check(f"hostile x{scale}: under GitHub's 65536 characters", len(md) <= 65536, len(md))

# issue references in every form GitHub links: #N, owner/repo#N, GH-N
r = dict(REPORT, workflow="fixes #7, evil/target#8 and GH-9", job="gh-10", branch="x/GH-11",
         attempts=[dict(REPORT["attempts"][0], reason="see evil/target#12 and GH-13")])
md = probe("build", "github", report=r)[1]
t, out = render(md)
text = re.sub(r"<a [^>]*>.*?</a>", "", out, flags=re.S)
check("references: no #N, owner/repo#N or GH-N from the input survives",
      not re.search(r"(?<![\w&])#\d|(?i:gh)-\d", text) and "evil/target#\u200b8" in text
      and "GH-\u200b9" in text, re.findall(r".{0,20}(?:#|(?i:gh)-)\d.{0,10}", text)[:8])

# autolinks: GitHub links "http(s)://" and "www." in text (GFM autolink), and a
# link to another repository's issue cross-references it
r = dict(REPORT, workflow="CI https://github.com/victim/repo/issues/1",
         job="build victim/repo#2 www.evil.example WWW.x.example ftp://f.example",
         attempts=[dict(REPORT["attempts"][0], reason="see https://github.com/victim/repo/pull/3",
                        status_message="http://evil.example/x")])
for kind in ("github", "status"):
    md = probe("build", kind, report=r)[1]
    t, out = render(md)
    text = re.sub(r"<a [^>]*>.*?</a>", "", out, flags=re.S)
    check(f"autolinks ({kind}): no link from untrusted text, healer's own links kept",
          not any("victim" in h or "evil" in h for h in t.hrefs)
          and "https://github.com/5dlabs/cto/pull/1234" in t.hrefs, t.hrefs)
    check(f"autolinks ({kind}): no autolinkable URL or www. from the input survives",
          not re.search(r"(?i)(?:https?|ftp)://|www\.", text)
          and "victim/repo/issues/1" in text and "evil.example" in text,
          re.findall(r"(?i).{0,12}(?:://|www\.).{0,20}", text)[:6])

# ---- status reply and refusal ----
md = probe("build", "status", report=dict(REPORT, state="escalated"))[1]
t, out = render(md)
rows = t.tables[0] if t.tables else []
check("status: a table of number, agent, CodeRun, outcome, PR",
      len(rows) == 4 and rows[0] == ["#", "Agent", "CodeRun", "Outcome", "PR"]
      and rows[2] == ["2", "Rex", "healer-ci-rex-9876543210-2", "CI still failing", "#1234"]
      and "escalated" in out, rows)
md = probe("build", "status", report=dict(hostile_report(1), state="running"))[1]
t, out = render(md)
rows = t.tables[0] if t.tables else []
check("status: hostile cells stay cells, no HTML",
      len(rows) == 4 and all(len(x) == 5 for x in rows) and set(t.tags) <= ALLOWED_TAGS, rows)
md = probe("build", "status", report=dict(REPORT, attempts=[], state="queued"))[1]
check("status: no attempts yet", "No attempts yet." in md and "|" not in md, md)
rc, md, _ = probe("refusal", "octocat", "NONE", "OWNER,MEMBER,COLLABORATOR")
check("refusal: mentions the author, names the allowed associations and theirs",
      md.startswith("@octocat, sorry") and "**OWNER**, **MEMBER** or **COLLABORATOR**" in md
      and "(yours: NONE)" in md, md)
rc, md, _ = probe("refusal", "evil\n@everyone", "<b>x</b>", "OWNER")
t, out = render(md)
check("refusal: a bad login is not mentioned, hostile association escaped",
      md.startswith("Sorry") and "@everyone" not in md and set(t.tags) <= ALLOWED_TAGS, md)

# ---- the sender against the GitHub stub ----
_, port = start_stub("github_stub.py", "--token", TOKEN)
api = f"http://127.0.0.1:{port}"
GENV = {"GITHUB_API_URL": api, "GITHUB_TOKEN": TOKEN, "NOTIFY_TIMEOUT_MS": "2000"}


def comments():
    return http("GET", f"{api}/_stub/comments")


def rules(r):
    http("POST", f"{api}/_stub/config", {"rules": r})


def send(repo="5dlabs/cto", n="1234", env=None):
    rc, out, err = probe("send", "github", repo, n, env=env or GENV)
    return out if rc == 0 and isinstance(out, dict) else {"rc": rc, "out": out, "err": err}


res = send()
c = comments()
check("send: created (201), one comment on the PR with the escalation",
      res.get("result") == "delivered" and res.get("code") == 201 and len(c) == 1
      and c[0]["issue"] == 1234 and c[0]["repo"] == "5dlabs/cto"
      and c[0]["body"].startswith("## \u26a0\ufe0f Healer"), (res, c))
rules([{"method": "POST", "path": "/repos/5dlabs/cto/issues/", "status": 403, "times": 1,
        "body": {"message": "API rate limit exceeded"}, "reset_in": 120}])
res = send()
wait = res.get("retry_after_ms", -1)
check("send: 403 with X-RateLimit-Remaining 0 -> retry until the reset",
      res.get("result") == "retry" and res.get("error") == "rate_limited"
      and 115000 <= wait <= 125000 and len(comments()) == 1, res)
rules([{"method": "POST", "path": "/repos/5dlabs/cto/issues/", "status": 429, "times": 1,
        "headers": {"Retry-After": "60"}, "body": {"message": "secondary rate limit"}}])
res = send()
check("send: 429 with Retry-After 60 -> retry after 60000 ms",
      res.get("result") == "retry" and res.get("retry_after_ms") == 60000, res)
rules([{"method": "POST", "path": "/repos/5dlabs/cto/issues/", "status": 403, "times": 1,
        "body": {"message": "You have exceeded a secondary rate limit. Please wait a few "
                            "minutes before you try again."}}])
res = send()
check("send: 403 secondary rate limit without Retry-After -> retry after at least a minute",
      res.get("result") == "retry" and res.get("error") == "rate_limited"
      and res.get("retry_after_ms", -1) >= 60000 and len(comments()) == 1, res)
rules([{"method": "POST", "path": "/repos/5dlabs/cto/issues/", "status": 502, "times": 1}])
res = send()
check("send: 502 -> retry server_error, the comment not posted twice",
      res.get("result") == "retry" and res.get("error") == "server_error"
      and len(comments()) == 1, res)
rules([{"method": "POST", "path": "/repos/5dlabs/cto/issues/", "status": 422, "times": 1,
        "body": {"message": "Validation Failed"}}])
res = send()
check("send: 422 -> failed http_422", res.get("result") == "failed"
      and res.get("error") == "http_422" and "Validation Failed" in res.get("message", ""), res)
rules([{"method": "POST", "path": "/repos/5dlabs/cto/issues/", "status": 404, "times": 1,
        "body": {"message": "Not Found"}}])
res = send()
check("send: 404 -> failed http_404", res.get("result") == "failed"
      and res.get("error") == "http_404", res)
res = send(env=dict(GENV, GITHUB_TOKEN="bad-token-xyz"))
check("send: a refused token -> failed http_401, the token never named",
      res.get("result") == "failed" and res.get("code") == 401
      and "bad-token-xyz" not in str(res) and TOKEN not in str(res), res)
res = send(repo="not a repo")
check("send: a bad repository -> failed bad_target without a request",
      res.get("result") == "failed" and res.get("error") == "bad_target", res)
check("send: only the first comment was ever created", len(comments()) == 1, comments())

# a comment GitHub created although its answer was lost (a 502 from the gateway, a
# timeout): the retry finds it by its marker and does not post it again
import time  # noqa: E402
since = str(int(time.time() * 1000) - 60000)
MENV = dict(GENV, NOTIFY_GITHUB_MARKER="<!-- healer:3f9a0c1de2b47a65 -->",
            NOTIFY_GITHUB_SINCE_MS=since)
http("POST", f"{api}/_stub/config", {"comment_then_fail": 1})
res = send(env=MENV)
check("send: a comment created but answered 502 -> retry (the client cannot tell)",
      res.get("result") == "retry" and len(comments()) == 2, (res, len(comments())))
res = send(env=MENV)
check("send: its retry finds the comment by its marker -> delivered, not posted twice",
      res.get("result") == "delivered" and "already posted" in res.get("message", "")
      and len(comments()) == 2, (res, len(comments())))
res = send(env=dict(MENV, NOTIFY_GITHUB_MARKER="<!-- healer:77e1b0c9a4d35f28 -->"))
check("send: a marker no comment holds -> posted", res.get("result") == "delivered"
      and res.get("code") == 201 and len(comments()) == 3, (res, len(comments())))

# a busy PR: more than a page (100) of comments since the message was enqueued;
# GitHub lists them oldest first, so the lost comment is on the last page
import json  # noqa: E402
import urllib.request  # noqa: E402
for i in range(230):
    urllib.request.urlopen(urllib.request.Request(
        f"{api}/repos/5dlabs/cto/issues/4321/comments", method="POST",
        data=json.dumps({"body": f"chatter {i}"}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}),
        timeout=10).read()
http("POST", f"{api}/_stub/config", {"comment_then_fail": 1})
BENV = dict(MENV, NOTIFY_GITHUB_MARKER="<!-- healer:5c1e7a9b3d2f4068 -->")
res = send(n="4321", env=BENV)
mine = [c for c in comments() if c["issue"] == 4321 and "5c1e7a9b3d2f4068" in c["body"]]
check("send: a busy PR (230 comments), the comment created but answered 502 -> retry",
      res.get("result") == "retry" and len(mine) == 1, (res, len(mine)))
before = len(http("GET", f"{api}/_stub/requests") or [])
res = send(n="4321", env=BENV)
mine = [c for c in comments() if c["issue"] == 4321 and "5c1e7a9b3d2f4068" in c["body"]]
pages = [r for r in (http("GET", f"{api}/_stub/requests") or [])[before:]
         if r.get("method") == "GET" and "/issues/4321/comments" in r.get("path", "")]
check("send: its retry walks the pages (Link rel=next) and finds it on the third -> "
      "delivered, not posted twice", res.get("result") == "delivered"
      and "already posted" in res.get("message", "") and len(mine) == 1 and len(pages) == 3,
      (res, len(mine), [p.get("path") for p in pages]))
# GitHub's clock apart from healer's: since (healer's clock, a minute before
# the message was enqueued) is read against GitHub's updated_at, so the
# look-up still finds the lost comment (GitHub 5 and 15 minutes behind: the
# margin, then the clock its first answer names; 5 minutes ahead)
for num, off in ((5101, -300), (5102, -900), (5103, 300)):
    http("POST", f"{api}/_stub/config", {"clock_offset_s": off, "comment_then_fail": 1})
    CENV = dict(GENV, NOTIFY_GITHUB_MARKER=f"<!-- healer:c10c{num}ab5e7f9 -->",
                NOTIFY_GITHUB_SINCE_MS=str(int(time.time() * 1000) - 60000))
    first = send(n=str(num), env=CENV)
    res = send(n=str(num), env=CENV)
    mine = [c for c in comments() if c["issue"] == num]
    check(f"send: GitHub's clock {off:+d} s from ours: the retry finds the comment answered "
          "502 -> delivered, not posted twice",
          first.get("result") == "retry" and res.get("result") == "delivered"
          and "already posted" in res.get("message", "") and len(mine) == 1,
          (first, res, len(mine)))
http("POST", f"{api}/_stub/config", {"clock_offset_s": 0, "comment_then_fail": 0})
rules([{"method": "GET", "path": "/repos/5dlabs/cto/issues/", "status": 502}])
res = send(env=dict(MENV, NOTIFY_GITHUB_MARKER="<!-- healer:0b5d2e8f61a9c374 -->"))
rules([])
on_1234 = [c for c in comments() if c["issue"] == 1234]
check("send: the lookup failing -> retry, nothing posted",
      res.get("result") == "retry" and len(on_1234) == 3, (res, len(on_1234)))
# GitHub's rate limits answer the look-up too: the send waits as long as the
# POST's own rate limit would make it (the outbox then holds every comment)
rules([{"method": "GET", "path": "/repos/5dlabs/cto/issues/", "status": 403, "times": 1,
        "body": {"message": "API rate limit exceeded for installation ID 1."},
        "reset_in": 120}])
res = send(env=dict(MENV, NOTIFY_GITHUB_MARKER="<!-- healer:1d3b5f7a9c0e2468 -->"))
check("send: the look-up rate limited (403, X-RateLimit-Remaining 0) -> retry "
      "rate_limited until the reset, nothing posted",
      res.get("result") == "retry" and res.get("error") == "rate_limited"
      and 115000 <= res.get("retry_after_ms", -1) <= 125000
      and len([c for c in comments() if c["issue"] == 1234]) == 3, res)
rules([{"method": "GET", "path": "/repos/5dlabs/cto/issues/", "status": 429, "times": 1,
        "headers": {"Retry-After": "90"},
        "body": {"message": "You have exceeded a secondary rate limit."}}])
res = send(env=dict(MENV, NOTIFY_GITHUB_MARKER="<!-- healer:1d3b5f7a9c0e2468 -->"))
check("send: the look-up answered 429 Retry-After 90 -> retry rate_limited after 90 s",
      res.get("result") == "retry" and res.get("error") == "rate_limited"
      and res.get("retry_after_ms") == 90000, res)
rules([{"method": "GET", "path": "/repos/5dlabs/cto/issues/", "delay_ms": 3000}])
t0 = time.time()
res = send(n="4321", env=dict(BENV, NOTIFY_GITHUB_MARKER="<!-- healer:2e4c6a8b0d1f3579 -->",
                               NOTIFY_TIMEOUT_MS="4000"))
took = time.time() - t0
rules([])
check("send: a slow look-up over several pages stays within the send's timeout",
      res.get("result") == "retry" and res.get("error") == "timeout" and took < 7, (res, took))

# the token's budget: GitHub says X-RateLimit-Remaining on every answer, and
# refuses every request before the reset once it is 0
http("POST", f"{api}/_stub/budget", {"limit": 2, "window": 60})
before = len([c for c in comments() if c["issue"] == 1234])
res = send(env=dict(MENV, NOTIFY_GITHUB_MARKER="<!-- healer:6a4c2e0f8b1d3957 -->"))
check("send: created with X-RateLimit-Remaining 0 -> delivered, and the channel is held "
      "until X-RateLimit-Reset (hold_ms)",
      res.get("result") == "delivered" and 55000 <= res.get("hold_ms", 0) <= 63000
      and len([c for c in comments() if c["issue"] == 1234]) == before + 1, res)
http("POST", f"{api}/_stub/budget", {"limit": 1, "window": 60})
res = send(env=dict(MENV, NOTIFY_GITHUB_MARKER="<!-- healer:7b5d3f1a9c2e4068 -->"))
refused = http("GET", f"{api}/_stub/refused")
check("send: the look-up spent the last of the budget -> retry rate_limited until the "
      "reset, the POST GitHub would refuse not sent",
      res.get("result") == "retry" and res.get("error") == "rate_limited"
      and 55000 <= res.get("retry_after_ms", -1) <= 63000
      and 55000 <= res.get("hold_ms", 0) <= 63000 and refused == []
      and len([c for c in comments() if c["issue"] == 1234]) == before + 1, (res, refused))
http("POST", f"{api}/_stub/budget", {"limit": 5000, "window": 3600})

# a renamed repository: the look-up's 301 and the POST's 307 (Location
# /repositories/{id}/...) are followed, the comment created once (before:
# failed http_307)
http("POST", f"{api}/_stub/seed", {"renames": {"5dlabs/old-name": {"id": 77, "to": "5dlabs/cto"}}})
http("POST", f"{api}/_stub/reset", {})
res = send(repo="5dlabs/old-name", n="5678",
           env=dict(MENV, NOTIFY_GITHUB_MARKER="<!-- healer:1c3e5a7b9d0f2468 -->"))
made = [c for c in comments() if c["issue"] == 5678]
moved = [r["method"] for r in http("GET", f"{api}/_stub/requests")
         if r["path"].startswith("/repositories/77/issues/5678/comments")]
check("send: under a renamed repository's old name the 307 is followed -> delivered, one "
      "comment",
      res.get("result") == "delivered" and res.get("code") == 201 and len(made) == 1
      and made[0]["repo"] == "5dlabs/cto" and moved == ["GET", "POST"], (res, made, moved))
rules([{"method": "POST", "path": "/repos/5dlabs/cto/issues/", "status": 307, "times": 1,
        "body": {"message": "Temporary Redirect"}}])
res = send(n="5679")
rules([])
check("send: a 307 that cannot be followed (no Location) -> failed 'redirect', said so",
      res.get("result") == "failed" and res.get("error") == "redirect"
      and "cannot be followed" in res.get("message", ""), res)

finish()
