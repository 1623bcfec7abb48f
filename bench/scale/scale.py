#!/usr/bin/env python3
"""scale.py - intake and processing throughput of healer on 1 replica on
SQLite, 1 replica on PostgreSQL and 3 replicas on one PostgreSQL database,
in one run, with the same signed wrk load (bench/intake's post.lua: unique
delivery ids, GitHub's workflow_job failure example with distinct job ids).
Run by run.sh through tests/pg/pgrun.py (a throw-away PostgreSQL 15,
restarted here with fsync on, so both backends make every commit durable).

For each setup: wrk's req/s and p99 (three replicas: one wrk per replica
with a third of the connections each, as a round-robin balancer spreads
them; req/s summed, p99 the worst), healer's CPU per request (user +
system of every replica over the run), the time until every stored
delivery was processed (nothing received or processing left), and a check
that every 2xx answer is a stored delivery. Then the ratios: PostgreSQL
intake against SQLite's (goal >= 50%), three replicas against one (goal >=
1.0: on 2 cores they share the CPU, so this shows what coordination costs,
not that it scales). A control separates the two: three replicas that
share nothing (each its own SQLite store, each sent a disjoint third of the
events, so the same 2048 events are processed once) against one on SQLite
show what three processes sharing these cores cost with no coordination.

The setups run in turn, ROUNDS times (these machines are noisy: one
round's ratios vary by half); the ratios are printed per round and as
medians.

usage: scale.py HEALER_BIN   (env: DURATION s (10), CONNECTIONS (32),
       THREADS (2), VARIANTS (2048), WORKERS (2), ROUNDS (3))
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "pg"))
import pgtest  # noqa: E402

HEALER = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build",
                                                                             "healer"))
DURATION = int(os.environ.get("DURATION", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "32"))
THREADS = int(os.environ.get("THREADS", "2"))
VARIANTS = int(os.environ.get("VARIANTS", "2048"))
WORKERS = os.environ.get("WORKERS", "2")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECRET = "bench-secret-value"
TMP = tempfile.mkdtemp(prefix="healer-scale-")
TICKS = os.sysconf("SC_CLK_TCK")
procs = []


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def bodies():
    """The wrk Lua table of signed bodies (bench/intake/gen_bodies.py)."""
    example = os.path.join(TMP, "example.json")
    idx = os.path.join(ROOT, "tests", "node", "node_modules", "@octokit", "webhooks-examples",
                       "api.github.com", "index.json")
    with open(example, "w") as f:
        f.write(sh("node", "-e", """
const e = require(process.argv[1]);
const w = e.find((x) => x.name === "workflow_job");
const ex = w.examples.find((x) => x.action === "completed" && x.workflow_job.conclusion === "failure");
process.stdout.write(JSON.stringify(ex));""", idx))
    out = os.path.join(TMP, "bodies.lua")
    sh(sys.executable, os.path.join(ROOT, "bench", "intake", "gen_bodies.py"), example, SECRET,
       str(VARIANTS), out)
    return out


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def start(name, url, data=None):
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    pf = os.path.join(d, "port")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HEALER_", "GITHUB_", "PG", "KUBE"))}
    env.update({"GITHUB_WEBHOOK_SECRET": SECRET, "HEALER_DISPATCH": "none",
                "HEALER_LOG_LEVEL": "warn", "HEALER_WORKERS": WORKERS, "HOME": TMP,
                "GITHUB_API_URL": "http://127.0.0.1:9", "HEALER_TIME_WINDOW_MINS": "0"})
    if url:
        env["HEALER_DATABASE_URL"] = url
    log = open(os.path.join(d, "server.log"), "ab")
    p = subprocess.Popen([HEALER, "server", "--listen", "127.0.0.1:0", "--data-dir",
                          os.path.join(TMP, data or "data-" + (url and "pg" or name)),
                          "--port-file", pf], env=env, stdout=log, stderr=log)
    procs.append(p)
    deadline = time.time() + 30
    while time.time() < deadline:
        if os.path.exists(pf) and open(pf).read().strip():
            return p, int(open(pf).read())
        if p.poll() is not None:
            break
        time.sleep(0.02)
    raise SystemExit(f"healer {name} did not start: "
                     + open(os.path.join(d, "server.log"), errors="replace").read()[-2000:])


def status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=30) as r:
        return json.load(r)


def wrk(name, port, conns, lua, offset=0, threads=THREADS, shard="0/1"):
    env = dict(os.environ, BENCH_BODIES=lua, BENCH_PATH="/webhook", BENCH_RUN=name,
               BENCH_OFFSET=str(offset), BENCH_SHARD=shard)
    return subprocess.Popen(["wrk", f"-t{threads}", f"-c{max(conns, threads)}",
                             f"-d{DURATION}s", "--latency", "-s",
                             os.path.join(ROOT, "bench", "intake", "post.lua"),
                             f"http://127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def parse(out):
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(re.search(r"^non2xx (\d+)", out, re.M).group(1))
    p99 = float(re.search(r"^p99_ms ([\d.]+)", out, re.M).group(1))
    return reqs, non2xx, p99


def stored_count(url, data_dir):
    if url:
        with pgtest.connect(url.split("///", 1)[1].split("?", 1)[0]) as con:
            return con.query("SELECT count(*) FROM deliveries").fetchone()[0]
    import sqlite3
    con = sqlite3.connect(os.path.join(data_dir, "healer.db"), timeout=30)
    try:
        return con.execute("SELECT count(*) FROM deliveries").fetchone()[0]
    finally:
        con.close()


def run(name, replicas, url, lua, apart=False):
    """apart: each replica its own SQLite store and a disjoint third of the
    events (the control); else one store shared by the replicas."""
    datas = [f"data-{name}-{i if apart else 0}" for i in range(replicas)]
    servers = [start(f"{name}-{i}", url, None if url else datas[i]) for i in range(replicas)]
    cpu0 = sum(cpu_ticks(p.pid) for p, _ in servers)
    t0 = time.monotonic()
    # one stream spread over the replicas: each wrk starts elsewhere in it;
    # CONNECTIONS in all, whatever the number of replicas (32 over three:
    # 11, 11 and 10), so every setup is offered the same load
    ws = [wrk(f"{name}{i}", port, CONNECTIONS // replicas + (i < CONNECTIONS % replicas), lua,
              i * VARIANTS // replicas,
              max(1, THREADS // replicas), f"{i}/{replicas}" if apart else "0/1")
          for i, (_, port) in enumerate(servers)]
    outs = [w.communicate(timeout=DURATION + 120)[0] for w in ws]
    t_wrk = time.monotonic() - t0
    cpu_intake = sum(cpu_ticks(p.pid) for p, _ in servers) - cpu0
    # processing: until nothing is received or processing
    polled = servers if apart else servers[:1]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if all(status(port).get("queue_depth") == 0 for _, port in polled):
            break
        time.sleep(0.1)
    t_all = time.monotonic() - t0
    cpu_all = sum(cpu_ticks(p.pid) for p, _ in servers) - cpu0
    queue = sum(status(port).get("queue_depth") for _, port in polled)
    for p, _ in servers:
        p.terminate()
    for p, _ in servers:
        p.wait(timeout=60)
    parsed = [parse(o) for o in outs]
    reqs = sum(r for r, _, _ in parsed)
    ok = reqs - sum(n for _, n, _ in parsed)
    stored = (stored_count(url, None) if url else
              sum(stored_count(None, os.path.join(TMP, d)) for d in set(datas)))
    rps = reqs / t_wrk
    res = {"name": name, "rps": rps, "p99": max(p for _, _, p in parsed), "ok": ok,
           "stored": stored, "cpu_us": 1e6 * cpu_intake / TICKS / max(reqs, 1),
           "processed_per_s": stored / t_all, "drain_s": t_all - t_wrk,
           "cpu_us_all": 1e6 * cpu_all / TICKS / max(stored, 1),
           "queue": queue}
    print(f"{name:18} {rps:9.0f} req/s  p99 {res['p99']:8.2f} ms  "
          f"{res['cpu_us']:6.0f} us CPU/request   processed {res['processed_per_s']:7.0f}/s "
          f"(drained {res['drain_s']:.1f} s after wrk, {res['cpu_us_all']:.0f} us CPU per "
          f"delivery)   2xx {ok}, stored {stored}, queue {res['queue']}", flush=True)
    if stored < ok or res["queue"] != 0:
        print(f"{name}: {ok} answered 2xx but {stored} stored / queue {res['queue']}",
              file=sys.stderr)
        res["bad"] = True
    return res


def main():
    for tool in ("wrk", "node"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            raise SystemExit(f"bench: '{tool}' is required (scripts/install-deps.sh)")
    # the test cluster runs with fsync off; the bench compares durable commits
    pgtest.stop()
    opts = pgtest.server_options(pgtest.socket_dir(), pgtest.port()).replace(
        "fsync=off", "fsync=on").replace("full_page_writes=off", "full_page_writes=on")
    p = pgtest._ctl("start", "-w", "-t", "30", "-l", os.environ["HEALER_TEST_PG_LOG"],
                    "-o", opts)
    if p.returncode != 0:
        raise SystemExit("restarting PostgreSQL with fsync on failed: " + p.stderr)
    lua = bodies()
    print(f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s, {VARIANTS} distinct events, unique "
          f"delivery ids; HEALER_WORKERS={WORKERS}, HEALER_DISPATCH=none; PostgreSQL 15 "
          f"(fsync on) on the same {os.cpu_count()} cores", flush=True)
    ratios = {"pg1_sqlite": [], "pg3_pg1": [], "apart_sqlite": []}
    bad = False
    for k in range(1, ROUNDS + 1):
        # each round: the four setups in turn, each on a fresh store
        r1 = run(f"sqlite-1.{k}", 1, None, lua)
        r2 = run(f"postgres-1.{k}", 1, pgtest.create_database("scale1"), lua)
        r3 = run(f"postgres-3.{k}", 3, pgtest.create_database("scale3"), lua)
        r4 = run(f"sqlite-3-apart.{k}", 3, None, lua, apart=True)
        bad = bad or any(r.get("bad") for r in (r1, r2, r3, r4))
        ratios["pg1_sqlite"].append(r2["rps"] / r1["rps"])
        ratios["pg3_pg1"].append(r3["rps"] / r2["rps"])
        ratios["apart_sqlite"].append(r4["rps"] / r1["rps"])
        print(f"round {k}: postgres-1/sqlite-1 intake {100 * r2['rps'] / r1['rps']:.0f}%   "
              f"processing {100 * r2['processed_per_s'] / r1['processed_per_s']:.0f}%;   "
              f"postgres-3/postgres-1 intake {r3['rps'] / r2['rps']:.2f}x   processing "
              f"{r3['processed_per_s'] / r2['processed_per_s']:.2f}x   p99 {r3['p99']:.1f} vs "
              f"{r2['p99']:.1f} ms;   sqlite-3-apart/sqlite-1 intake "
              f"{r4['rps'] / r1['rps']:.2f}x", flush=True)

    def spread(v, fmt):
        return (f"median {fmt(statistics.median(v))} (" + ", ".join(fmt(x) for x in v) + ")")

    pct = lambda x: f"{100 * x:.0f}%"  # noqa: E731
    times = lambda x: f"{x:.2f}x"  # noqa: E731
    print(f"postgres-1/sqlite-1 intake {spread(ratios['pg1_sqlite'], pct)}  (goal >= 50%)")
    print(f"postgres-3/postgres-1 intake {spread(ratios['pg3_pg1'], times)}  (goal >= 1.0)")
    print(f"control: sqlite-3-apart/sqlite-1 intake {spread(ratios['apart_sqlite'], times)}  "
          "(three replicas sharing nothing: what three processes on these cores cost "
          "without any coordination)")
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    return 1 if bad else 0

if __name__ == "__main__":
    rc = 1
    try:
        rc = main()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["rm", "-rf", TMP])
    sys.exit(rc)
