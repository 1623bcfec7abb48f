#!/bin/sh
# bench/startup/run.sh - start-up time of the commands that do not use the
# network (version, classify, check-rules, render), against /bin/true (the
# cost of any process start on this machine) measured in the same run.
# Prints the median wall and CPU (user + sys) time over RUNS interleaved
# runs, and, when
# valgrind is installed, the instructions `version` and `render` execute
# (exact, so it holds on a busy machine where wall time does not; not for
# classify and check-rules: valgrind hides the CPU features the prebuilt
# Vectorscan database was built for, so under it the rules are compiled).
#
# usage: bench/startup/run.sh [path-to-healer] [baseline-healer]
#        a baseline healer (an older build) is measured the same way.
# env:   RUNS (default 50)
set -eu
HEALER=${1:-build/healer}
BASE=${2:-}
RUNS=${RUNS:-50}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TMP=$(mktemp -d /tmp/healer-startup.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM

printf 'error[E0308]: mismatched types\n' >"$TMP/job.log"
printf 'hello {{name}}\n' >"$TMP/t.hbs"
printf '{"name": "x"}' >"$TMP/d.json"

python3 - "$HEALER" "$BASE" "$RUNS" "$TMP" "$ROOT" <<'PY'
import os, shutil, statistics, subprocess, sys, time
healer, base, runs, tmp, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
cmds = {
    "version": ["--version"],
    "classify": ["classify", "--log", f"{tmp}/job.log", "--step", "cargo build"],
    "check-rules": ["check-rules", f"{root}/rules/default.yaml"],
    "render": ["render", f"{tmp}/t.hbs", f"{tmp}/d.json"],
}
bins = [("healer", healer)] + ([("baseline", base)] if base else [])
progs = [("/bin/true", ["/bin/true"])]
for label, b in bins:
    for name, args in cmds.items():
        progs.append((f"{label} {name}", [b] + args))

def once(argv):
    """wall and CPU (user + sys) seconds of one run"""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{argv} exited {p.returncode}")
    return wall, ru.ru_utime + ru.ru_stime

walls = {name: [] for name, _ in progs}
cpus = {name: [] for name, _ in progs}
for _ in range(runs):  # interleaved: load changes hit every program alike
    for name, argv in progs:
        w, c = once(argv)
        walls[name].append(w)
        cpus[name].append(c)

def instructions(argv):
    if not shutil.which("valgrind"):
        return None
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in p.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1])
    return None

true_ms = statistics.median(walls["/bin/true"]) * 1e3
true_ir = instructions(["/bin/true"])
print(f"median of {runs} interleaved runs; load average {open('/proc/loadavg').read().split()[0]}")
print(f"{'command':<22} {'wall ms':>8} {'x /bin/true':>11} {'CPU ms':>7} {'instructions':>14}")
for name, argv in progs:
    ms = statistics.median(walls[name]) * 1e3
    ir = instructions(argv) if name.split()[-1] in ("version", "render", "/bin/true") else None
    irs = f"{ir / 1e6:12.2f} M" if ir else "           -"
    cpu = statistics.median(cpus[name]) * 1e3
    print(f"{name:<22} {ms:8.2f} {ms / true_ms:10.1f}x {cpu:7.2f} {irs}")
PY
