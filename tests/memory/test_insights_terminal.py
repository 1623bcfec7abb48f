#!/usr/bin/env python3
"""test_insights_terminal.py - `healer insights --json` and `healer status
--json` write stored text from outside (here a repository name and a
task's reason) with DEL and the C1 controls (U+0080 to U+009F, which a
terminal takes as CSI, OSC and the like) escaped as \\u007f and
\\u0080..\\u009f: the terminal never sees them, and the output is still
the same JSON. The store is seeded through SQL as tests/memory/
insights_ledger.py does: Rex failed five tasks of the hostile repository
and Blaze fixed them, so the learned switch names it."""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.environ.get("HEALER_SOURCE_ROOT", "."), "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from insights_ledger import HEALER  # noqa: E402
from tap import check, finish, run  # noqa: E402

# DEL, then U+009B (CSI: ESC [ in one code point) clearing the screen,
# U+009D (OSC) retitling the window, and U+0080 and U+009F, the bounds
REPO = "acme/ev\x7fil\u009b2J\u009d0;owned\u009c-\u0080\u009f"
REASON = "gave up\u009b31m\x7f"
RAW = ("\x7f", "\u0080", "\u009b", "\u009c", "\u009d", "\u009f")


def seed(data_dir):
    env = dict(os.environ, HEALER_DATA_DIR=data_dir, HEALER_DISPATCH="none")
    subprocess.run([HEALER, "migrate"], env=env, check=True, capture_output=True)
    con = sqlite3.connect(os.path.join(data_dir, "healer.db"))
    now = int(time.time() * 1000)
    con.execute("BEGIN")
    for k in range(5):
        tid = "hl-evil-%d" % k
        created = now - 3600000 - k * 1000
        con.execute(
            "INSERT INTO remediation_tasks (task_id, dedup_key, repository, run_id, job,"
            " failure_type, state, reason, created_ms, updated_ms, attempts, finished_ms)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (tid, tid, REPO, 9000 + k, "lint", "rust_clippy", "succeeded", REASON, created,
             created + 1000, 2, created + 600000))
        con.execute("INSERT INTO attempts (task_id, n, agent, outcome, started_ms, finished_ms,"
                    " kind, phase) VALUES (?,?,?,?,?,?,?,?)",
                    (tid, 1, "rex", "agent_failed", created + 1, created + 2, "agent", "done"))
        con.execute("INSERT INTO attempts (task_id, n, agent, outcome, started_ms, finished_ms,"
                    " kind, phase) VALUES (?,?,?,?,?,?,?,?)",
                    (tid, 2, "blaze", "success", created + 3, created + 4, "agent", "done"))
    con.commit()
    con.close()
    return env


def healer(env, *args):
    p = subprocess.run([HEALER, *args], env=env, capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def terminal_safe(name, rc, out, err):
    """The output has none of the controls, writes them as \\u escapes, and
    is JSON; returns the document."""
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    check(f"{name} writes no DEL or C1 control",
          rc == 0 and out and not any(c in out for c in RAW),
          (rc, [ln for ln in out.splitlines() if any(c in ln for c in RAW)], err))
    check(f"{name} writes them as \\u007f and \\u0080..\\u009f",
          all(e in out for e in ("\\u007f", "\\u009b", "\\u009d", "\\u0080", "\\u009f")),
          [ln for ln in out.splitlines() if "evil" in ln or "gave up" in ln])
    check(f"{name} is still JSON", doc is not None, repr(out[:800]))
    return doc or {}


def main():
    with tempfile.TemporaryDirectory(prefix="healer-terminal-") as tmp:
        env = seed(os.path.join(tmp, "d"))
        rc, out, err = healer(env, "insights", "--json")
        doc = terminal_safe("insights --json", rc, out, err)
        sw = doc.get("learned", {}).get("switches") or []
        check("insights --json keeps the repository's name (JSON decodes the escapes)",
              [s.get("repository") for s in sw] == [REPO], sw)
        rc, out, err = healer(env, "status", "--json")
        doc = terminal_safe("status --json", rc, out, err)
        check("status --json keeps the stored text",
              {(t.get("repository"), t.get("reason")) for t in doc.get("tasks", [])}
              == {(REPO, REASON)}, doc.get("tasks"))
        rc, out, err = healer(env, "status", "hl-evil-0", "--json")
        doc = terminal_safe("status TASK_ID --json", rc, out, err)
        check("status TASK_ID --json keeps the stored text",
              doc.get("repository") == REPO and doc.get("reason") == REASON, doc)
    finish()


run(main)
