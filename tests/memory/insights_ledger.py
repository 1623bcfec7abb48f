"""insights_ledger.py - a large ledger for `healer insights`, seeded
directly through SQL (tests/memory/test_insights_scale.py and
bench/insights): one task (and one agent attempt) per repository, so every
task is its own repository + failure type route, the worst case of the
learned routing table; plus three repositories where Rex failed five times
each and Blaze fixed them (the learned switches)."""
import os
import sqlite3
import subprocess
import time

HEALER = os.environ.get("HEALER_BIN", "build/healer")


def seed(data_dir, n, healer=None):
    """Migrates a store in data_dir and fills it with n tasks (plus the 15
    of the switches); the environment that runs healer on it."""
    env = dict(os.environ, HEALER_DATA_DIR=data_dir, HEALER_DISPATCH="none")
    subprocess.run([healer or HEALER, "migrate"], env=env, check=True, capture_output=True)
    con = sqlite3.connect(os.path.join(data_dir, "healer.db"))
    now = int(time.time() * 1000)
    tasks, atts = [], []
    for i in range(n):
        tid = "hl-s%018d" % i
        created = now - 86400000 - i * 1000
        state = "succeeded" if i % 4 else "escalated"
        tasks.append((tid, "scale|%d" % i, "org/repo-%06d" % i, 1000 + i, "lint",
                      "rust_clippy", state, created, created + 1000, 1, created + 600000))
        atts.append((tid, 1, "rex", "success" if i % 4 else "agent_failed", created + 1,
                     created + 2000, "agent", "done"))
    # rex failed five times in each of three repositories, blaze fixed them
    for r in ("sw/c", "sw/a", "sw/b"):
        for k in range(5):
            tid = "hl-%s-%d" % (r.replace("/", "-"), k)
            created = now - 3600000 - k * 1000
            tasks.append((tid, tid, r, 9000 + k, "lint", "rust_clippy", "succeeded", created,
                          created + 1000, 2, created + 600000))
            atts.append((tid, 1, "rex", "agent_failed", created + 1, created + 2, "agent",
                         "done"))
            atts.append((tid, 2, "blaze", "success", created + 3, created + 4, "agent",
                         "done"))
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO remediation_tasks (task_id, dedup_key, repository, run_id, job,"
        " failure_type, state, created_ms, updated_ms, attempts, finished_ms)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?)", tasks)
    con.executemany(
        "INSERT INTO attempts (task_id, n, agent, outcome, started_ms, finished_ms, kind,"
        " phase) VALUES (?,?,?,?,?,?,?,?)", atts)
    con.commit()
    con.close()
    return env
