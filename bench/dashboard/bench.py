#!/usr/bin/env python3
"""bench.py - the dashboard's first useful paint at 100 and at 100,000 tasks.

For each size: a healer seeded through its real intake (tests/dashboard/
dashseed.py: six tasks with decisions, attempts and prompts), stopped; the
store then gets copies of those tasks directly through SQL (one INSERT ...
SELECT over a counter, spread over 50 repositories, every agent and final
state, older than the seeded ones) up to the size; healer restarts on it
and paint.cjs measures in headless Chromium, from navigation start, when
the list shows its first page of rows and when a timeline shows its
evidence and attempts (median of BENCH_RUNS fresh pages). Prints both and
the ratio 100,000 / 100 (goal <= 1.5)."""
import http.client
import json
import os
import sqlite3
import time
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ["HEALER_BIN"] = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/healer")
os.environ["HEALER_SOURCE_ROOT"] = ROOT
os.environ["HEALER_STUBS"] = os.path.join(ROOT, "tests", "stubs")
sys.path.insert(0, os.path.join(ROOT, "tests", "dashboard"))
import dashseed  # noqa: E402
from dashseed import Healer  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "7"))


def grow(db, total):
    """Copies the seeded tasks until the store holds total tasks."""
    con = sqlite3.connect(db)
    cols = [r[1] for r in con.execute("PRAGMA table_info(remediation_tasks)")]
    have = con.execute("SELECT count(*) FROM remediation_tasks").fetchone()[0]
    oldest = con.execute("SELECT min(created_ms) FROM remediation_tasks").fetchone()[0]
    n = total - have
    subst = {
        "task_id": "printf('hl-b%018d', c.i)",
        "dedup_key": "printf('bench|%d', c.i)",
        "repository": "printf('org/repo-%02d', c.i % 50)",
        "run_id": "1000000 + c.i",
        "agent": "CASE c.i % 5 WHEN 0 THEN 'rex' WHEN 1 THEN 'blaze' WHEN 2 THEN 'bolt' "
                 "WHEN 3 THEN 'cipher' ELSE 'atlas' END",
        "state": "CASE c.i % 4 WHEN 0 THEN 'escalated' ELSE 'succeeded' END",
        "created_ms": f"{oldest} - 60000 * (c.i + 1)",
        "updated_ms": f"{oldest} - 60000 * (c.i + 1) + 1000",
        "finished_ms": f"{oldest} - 60000 * (c.i + 1) + 600000",
        "next_check_ms": "NULL", "lease_owner": "NULL", "lease_until_ms": "NULL",
        "queued_ms": "NULL",
    }
    sel = ", ".join(subst.get(c, "t." + c) for c in cols)
    con.execute("BEGIN")
    con.execute(f"""INSERT INTO remediation_tasks ({", ".join(cols)})
                    WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c
                                            WHERE i + 1 < {n}),
                         s(k, id) AS (SELECT row_number() OVER (ORDER BY task_id) - 1, task_id
                                      FROM remediation_tasks)
                    SELECT {sel} FROM c JOIN s ON s.k = c.i % {have}
                                        JOIN remediation_tasks t ON t.task_id = s.id""")
    con.commit()
    got = con.execute("SELECT count(*) FROM remediation_tasks").fetchone()[0]
    con.execute("ANALYZE")
    con.close()
    return got


def api_median(port, path, n=21):
    """The median time of n GETs of path, in ms (the server's side of a paint)."""
    ts = []
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t = time.perf_counter()
        c.request("GET", path)
        c.getresponse().read()
        ts.append((time.perf_counter() - t) * 1000)
        c.close()
    return sorted(ts)[n // 2]


def measure(size):
    s = dashseed.Seeded(f"bench-{size}", token=False,
                        env={"HEALER_LOG_LEVEL": "error"})
    s.wait_running(30)
    target = s.tasks[0][0]
    s.srv.stop()
    got = grow(os.path.join(s.srv.data_dir, "healer.db"), size)
    srv = Healer(s.srv.data_dir, s.srv.env).start()
    try:
        p = subprocess.run(["node", os.path.join(ROOT, "bench", "dashboard", "paint.cjs")],
                           env=dict(os.environ, DASH_URL=f"http://127.0.0.1:{srv.port}",
                                    DASH_TASK=target, BENCH_RUNS=str(RUNS)),
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-2000:])
        r = json.loads(p.stdout.strip().splitlines()[-1])
        r["api_ms"] = {name: api_median(srv.port, path) for name, path in (
            ("list", "/api/remediations?limit=50"),
            ("list_state", "/api/remediations?limit=50&state=escalated"),
            ("task", f"/api/remediations/{target}"),
            ("status", "/api/status"),
            ("insights", "/api/insights"),
            ("metrics", "/metrics"))}
    finally:
        srv.stop()
    r["tasks"] = got
    return r


def main():
    small = measure(100)
    big = measure(100000)
    for r in (small, big):
        print(f"{r['tasks']:>7} tasks: list first paint {r['list_ms']:.0f} ms, "
              f"timeline first paint {r['timeline_ms']:.0f} ms (median of {RUNS})")
    for r in (small, big):
        print(f"{r['tasks']:>7} tasks: API medians " +
              ", ".join(f"{k} {v:.1f} ms" for k, v in r["api_ms"].items()))
    rl = big["list_ms"] / small["list_ms"]
    rt = big["timeline_ms"] / small["timeline_ms"]
    print(f"ratio 100,000 / 100: list {rl:.2f}x, timeline {rt:.2f}x (goal <= 1.5x)")
    if big["tasks"] < 100000 or small["tasks"] != 100:
        sys.exit("the store did not reach the sizes: %d / %d" % (small["tasks"], big["tasks"]))


if __name__ == "__main__":
    main()
