#!/usr/bin/env python3
"""test_normalize_cli.py - `healer normalize`: output shape, usage errors
(exit 2), unsupported events and malformed JSON (exit 1 with line/column),
and robustness: truncated copies of real example payloads and odd-typed
variants (workflow_job: null, ids as strings, missing repository, ...) must
end in a clean error or a sensible event, never a crash or sanitizer report.
"""
import json
import os
import subprocess
import sys
import tempfile
sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests"))
from tap import check, finish  # noqa: E402

HEALER = os.environ["HEALER_BIN"]
SRC = os.environ["HEALER_SOURCE_ROOT"]
PKG = os.path.join(SRC, "tests", "node", "node_modules", "@octokit", "webhooks-examples",
                   "api.github.com", "index.json")


def run(*args, stdin=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "GITHUB_"))}
    env["HOME"] = tempfile.gettempdir()
    p = subprocess.run([HEALER, "normalize", *args], input=stdin, capture_output=True,
                       text=True, env=env, timeout=30)
    return p.returncode, p.stdout, p.stderr


def clean(rc, err):
    """A clean outcome: success, or exit 1 with one 'healer: error:' line."""
    if "Sanitizer" in err or "runtime error" in err:
        return False
    return rc == 0 or (rc == 1 and err.startswith("healer: error:"))


JOB = {
    "action": "completed",
    "repository": {"full_name": "acme/app"},
    "sender": {"login": "alice"},
    "workflow_job": {"id": 5, "run_id": 6, "run_attempt": 1, "conclusion": "failure",
                     "name": "test", "steps": [{"name": "cargo test", "conclusion": "failure"}]},
}

# output shape
rc, out, err = run("--event", "workflow_job", "-", stdin=json.dumps(JOB))
ok = rc == 0
try:
    doc = json.loads(out)
    ok = ok and sorted(doc) == ["dedup_key", "event", "skip_reason"] \
        and doc["skip_reason"] is None \
        and doc["dedup_key"] == "acme/app|workflow_job|run=6|attempt=1|job=5|action=completed" \
        and doc["event"]["failed_step"] == "cargo test"
    ok = ok and out == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
except ValueError:
    ok = False
check("prints pretty sorted {event, skip_reason, dedup_key}", ok, out + err)

rc, out, err = run("--event", "ping", "-", stdin='{"zen": "z", "hook_id": 1}')
check("ping is skipped with reason ping and no key", rc == 0 and json.loads(out)["skip_reason"]
      == "ping" and json.loads(out)["dedup_key"] is None, out + err)

with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    json.dump(JOB, f)
rc, out, err = run("--event", "workflow_job", f.name)
check("reads a file argument", rc == 0 and '"job_id": 5' in out, err)
rc, out, err = run("--event", "workflow_job", f.name + ".missing")
check("missing file exits 1", rc == 1 and err.startswith("healer: error:"), err)
os.unlink(f.name)

# usage and errors
rc, out, err = run(stdin="{}")
check("missing --event exits 2", rc == 2 and "--event" in err, err)
rc, out, err = run("--event", "workflow_job", "a", "b")
check("extra argument exits 2 naming it", rc == 2 and "'b'" in err, err)
rc, out, err = run("--bogus")
check("unknown option exits 2", rc == 2 and "'--bogus'" in err, err)
rc, out, err = run("--event", "x", "-", stdin="{}")
check("unknown event exits 1", rc == 1 and err.strip() == "healer: error: unsupported event 'x'",
      err)
rc, out, err = run("--event", "workflow_job", "-", stdin='{\n  "action": "completed",\n  oops\n}')
check("malformed JSON exits 1 with line and column",
      rc == 1 and err.startswith("healer: error:") and "line 3" in err and "column" in err, err)
rc, out, err = run("--event", "workflow_job", "-", stdin="")
check("empty input exits 1", rc == 1 and err.startswith("healer: error:"), err)

# odd-typed variants
odd = {
    "workflow_job null": ("workflow_job", dict(JOB, workflow_job=None), 1),
    "workflow_job a string": ("workflow_job", dict(JOB, workflow_job="x"), 1),
    "repository missing": ("workflow_job", {k: v for k, v in JOB.items() if k != "repository"}, 1),
    "repository null": ("workflow_job", dict(JOB, repository=None), 1),
    "payload an array": ("workflow_job", [JOB], 1),
    "payload a number": ("workflow_job", 42, 1),
    "ids as strings": ("workflow_job", dict(JOB, workflow_job=dict(
        JOB["workflow_job"], id="5", run_id="6", run_attempt="1")), 0),
    "steps not an array": ("workflow_job", dict(JOB, workflow_job=dict(
        JOB["workflow_job"], steps={"a": 1})), 0),
    "sender a string": ("workflow_job", dict(JOB, sender="bob"), 0),
    "huge id": ("workflow_job", dict(JOB, workflow_job=dict(JOB["workflow_job"], id=2**63 - 1)), 0),
    "alert null": ("dependabot_alert", {"action": "created", "alert": None,
                                        "repository": {"full_name": "a/b"}}, 1),
    "comment body a number": ("issue_comment", {"action": "created", "repository": {
        "full_name": "a/b"}, "issue": {"pull_request": {}}, "comment": {"body": 7}}, 0),
    "deeply nested": ("workflow_job", dict(JOB, extra=json.loads("[" * 500 + "]" * 500)), 0),
}
for name, (event, payload, want) in odd.items():
    rc, out, err = run("--event", event, "-", stdin=json.dumps(payload))
    good = clean(rc, err) and rc == want
    if good and rc == 0:
        good = "event" in json.loads(out)
    check(f"odd payload: {name} -> exit {want}", good, f"exit {rc}\n{out}{err}")

ids = json.loads(run("--event", "workflow_job", "-", stdin=json.dumps(odd["ids as strings"][1]))[1])
check("ids given as strings are read as numbers",
      ids["event"].get("job_id") == 5 and ids["event"].get("run_id") == 6, json.dumps(ids))

# truncated real payloads: every cut must be a clean parse error
if not os.path.exists(PKG):
    check("@octokit/webhooks-examples is installed", False, PKG)
else:
    with open(PKG, encoding="utf-8") as f:
        index = {e["name"]: e["examples"] for e in json.load(f)}
    bad = []
    for event in ("workflow_job", "check_run", "dependabot_alert", "issue_comment"):
        text = json.dumps(index[event][0])
        for frac in (0.1, 0.33, 0.5, 0.9, 0.999):
            cut = text[: int(len(text) * frac)]
            rc, out, err = run("--event", event, "-", stdin=cut)
            if not (rc == 1 and clean(rc, err) and "line" in err and "column" in err):
                bad.append(f"{event} cut at {frac}: exit {rc}: {err.strip()}")
    check("truncated payloads fail cleanly with line/column", not bad, "\n".join(bad))

finish()
