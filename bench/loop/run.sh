#!/usr/bin/env bash
# bench/loop: the remediation loop's retry latency, from a CodeRun's Failed
# status to the next attempt's CodeRun, with every context source answering
# after 300 ms; alone and while 200 other tasks are active. Prints p50/p99
# and the ratio to the slowest source (goal <= 1.2).
# usage: bench/loop/run.sh [path/to/healer] [retries] [other tasks]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export HEALER_BIN=$(realpath "${1:-$root/build/healer}")
export HEALER_SOURCE_ROOT=$root
export HEALER_STUBS=$root/tests/stubs
export NETPROBE=/bin/false
exec python3 "$root/bench/loop/latency.py" "${2:-30}" "${3:-200}"
