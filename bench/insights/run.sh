#!/bin/sh
# bench/insights/run.sh - how `healer insights --json` grows with the ledger:
# N and 4N tasks, each its own repository + failure type route (the worst
# case of the learned routing table; tests/memory/insights_ledger.py), timed
# in the same run. Prints the median wall and CPU time of each size and the
# ratio 4N/N: about 4 when the computation is linear in the ledger, 16 when
# it compares every route with every other.
# usage: bench/insights/run.sh [path-to-healer]
# env:   N (default 20000), RUNS (default 3)
set -eu
HEALER=$(realpath "${1:-build/healer}")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
exec python3 - "$HEALER" "$ROOT" "${N:-20000}" "${RUNS:-3}" <<'PY'
import os, resource, statistics, subprocess, sys, tempfile, time
healer, root, n, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, os.path.join(root, "tests", "memory"))
from insights_ledger import seed

def once(env):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run([healer, "insights", "--json"], env=env, check=True, stdout=subprocess.DEVNULL)
    t1 = time.monotonic()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return t1 - t0, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

with tempfile.TemporaryDirectory(prefix="healer-insights-bench-") as tmp:
    envs = {k: seed(os.path.join(tmp, str(k)), k, healer) for k in (n, 4 * n)}
    res = {k: [] for k in envs}
    for _ in range(runs):  # interleaved: the machine's load hits both sizes alike
        for k, env in envs.items():
            res[k].append(once(env))
med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
       for k, v in res.items()}
for k, (w, c) in med.items():
    print("%7d tasks: %.3f s wall, %.3f s CPU" % (k, w, c))
print("ratio 4N/N: %.1fx wall, %.1fx CPU (linear: about 4, quadratic: about 16)"
      % (med[4 * n][0] / med[n][0], med[4 * n][1] / med[n][1]))
PY
