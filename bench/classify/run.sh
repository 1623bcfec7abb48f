#!/bin/sh
# run.sh HEALER - classification throughput: `healer classify --log` against
# ripgrep searching the same pattern set (exported by
# `healer classify --dump-patterns`) over a generated 100 MB job log.
# Prints MB/s for both and the ratio. SIZE_MB overrides the size.
set -eu
HEALER=${1:?usage: run.sh path/to/healer}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIZE_MB=${SIZE_MB:-100}
RUNS=${RUNS:-3}
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
cat "$TMP/job.log" > /dev/null  # warm the page cache for both tools

best() { # best wall time in seconds of RUNS runs of "$@"
	b=""
	i=0
	while [ $i -lt "$RUNS" ]; do
		s=$(date +%s.%N)
		"$@" > "$TMP/out" 2>&1 || true
		e=$(date +%s.%N)
		t=$(python3 -c "print($e - $s)")
		b=$(python3 -c "print(min($t, ${b:-$t}))")
		i=$((i + 1))
	done
	echo "$b"
}

TH=$(best "$HEALER" classify --log "$TMP/job.log" --step "cargo build")
echo "healer verdict: $(cat "$TMP/out")"
TR=$(best rg -c -f "$TMP/patterns.txt" "$TMP/job.log")
echo "rg matching lines: $(cat "$TMP/out")"
python3 - "$MB" "$TH" "$TR" <<'PY'
import sys
mb, th, tr = (float(x) for x in sys.argv[1:])
print("healer classify: %.3f s  %8.1f MB/s" % (th, mb / th))
print("ripgrep -f     : %.3f s  %8.1f MB/s" % (tr, mb / tr))
print("ratio healer/rg: %.2fx" % (tr / th))
PY

# Accuracy next to the original first-match router on the labelled cases.
python3 "$HERE/compare_original.py" "$HEALER" "$ROOT/tests/classify/corpus-dev.jsonl" \
	"$ROOT/tests/classify/cases.jsonl"
