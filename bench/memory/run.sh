#!/usr/bin/env bash
# bench/memory: 100,000 stored outcomes; p50/p99 of a similar-failures query
# in the embedded memory (SQLite FTS5, BM25) and the latency it adds to a
# remediation, against the same question as a plain LIKE scan (the
# baseline). Prints the ratio (goal: p99 < 5 ms and >= 20x the scan).
# usage: bench/memory/run.sh [path/to/healer] [outcomes] [queries]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
healer=$(realpath "${1:-$root/build/healer}")
bin=$(dirname "$healer")/bench/bench_memory
[ -x "$bin" ] || { echo "bench: $bin is missing (ninja -C $(dirname "$healer"))" >&2; exit 1; }
exec "$bin" "${2:-100000}" "${3:-1000}"
