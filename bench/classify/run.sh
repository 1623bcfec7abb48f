#!/bin/sh
# run.sh HEALER - classification throughput: `healer classify --log` against
# GNU grep -E and ripgrep searching the same pattern set (exported by
# `healer classify --dump-patterns`) over a generated 100 MB job log.
# Prints MB/s (medians, wall and CPU time) and the ratios, then the accuracy
# on the labelled cases next to the original first-match router. SIZE_MB,
# RUNS (healer runs) and PEER_RUNS (grep/rg runs, slow) override the
# defaults (100, 5, 1). Needs python3, grep, rg.
set -eu
HEALER=${1:?usage: run.sh path/to/healer}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIZE_MB=${SIZE_MB:-100}
RUNS=${RUNS:-5}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

"$HEALER" classify --dump-patterns > "$TMP/patterns.txt"
# Real CI output for the noise: the labelled logs of the test corpus, minus
# every line a rule matches (so the verdict is the failure at the end).
python3 -c 'import json,re,sys
for p in sys.argv[1:]:
    for l in open(p, encoding="utf-8"):
        if l.strip():
            for x in json.loads(l).get("log", "").splitlines():
                x = re.sub(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z ", "", x)
                print(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", x))' \
	"$ROOT/tests/classify/corpus-dev.jsonl" "$ROOT/tests/classify/cases.jsonl" \
	| rg -v -f "$TMP/patterns.txt" > "$TMP/excerpts.txt" || true
python3 "$HERE/genlog.py" "$TMP/job.log" "$SIZE_MB" "$TMP/excerpts.txt"
BYTES=$(wc -c < "$TMP/job.log")
MB=$(python3 -c "print($BYTES / 1e6)")
echo "log: $MB MB, $(wc -l < "$TMP/patterns.txt") patterns"
cat "$TMP/job.log" > /dev/null  # warm the page cache for every tool

# RUNS runs of healer (each one's wall MB/s, the slowest and the median:
# the goal is >= 1 GB/s on every run) and PEER_RUNS of GNU grep -E and
# ripgrep with the same pattern file, interleaved; wall time and CPU time
# (user + sys of the child, which does not depend on other load).
python3 - "$HEALER" "$TMP/job.log" "$TMP/patterns.txt" "$MB" "$RUNS" "${PEER_RUNS:-1}" <<'PY'
import resource, statistics, subprocess, sys, time
healer, log, pats, mb = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
runs, peer_runs = int(sys.argv[5]), int(sys.argv[6])

def once(cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    t1 = time.monotonic()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return t1 - t0, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), \
        p.stdout.decode(errors="replace").strip()

tools = {
    "healer classify": [healer, "classify", "--log", log, "--step", "cargo build"],
    "grep -E -f": ["grep", "-E", "-c", "-f", pats, log],
    "ripgrep -f": ["rg", "-c", "-f", pats, log],
}
res = {k: [] for k in tools}
out = {}
for i in range(runs):
    for k, cmd in tools.items():
        if k == "healer classify" or i < peer_runs:
            w, c, o = once(cmd)
            res[k].append((w, c))
            out[k] = o
print("healer verdict: " + out["healer classify"])
print("grep -E / rg matching lines: %s / %s" % (out["grep -E -f"], out["ripgrep -f"]))
print("healer runs (wall MB/s): " + " ".join("%.0f" % (mb / w) for w, _ in res["healer classify"]))
med = {}
for k, r in res.items():
    w = statistics.median(x[0] for x in r)
    c = statistics.median(x[1] for x in r)
    med[k] = (w, c)
    worst = max(x[0] for x in r)
    print("%-16s: median %.3f s wall %8.1f MB/s (slowest %8.1f) | %.3f s CPU %8.1f MB/s"
          % (k, w, mb / w, mb / worst, c, mb / c))
h = med["healer classify"]
for k in ("grep -E -f", "ripgrep -f"):
    print("ratio healer/%-10s: %.1fx (wall), %.1fx (CPU)" % (k.split()[0], med[k][0] / h[0], med[k][1] / h[1]))
print("load average: " + " ".join(open("/proc/loadavg").read().split()[:3]))
PY

# Accuracy next to the original first-match router on the labelled cases.
python3 "$HERE/compare_original.py" "$HEALER" "$ROOT/tests/classify/corpus-dev.jsonl" \
	"$ROOT/tests/classify/cases.jsonl"
