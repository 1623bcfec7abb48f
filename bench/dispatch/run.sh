#!/usr/bin/env bash
# bench/dispatch: webhook-to-CodeRun latency when every context source
# answers after 300 ms. Prints p50/p99 next to the sum and the maximum of
# the source delays; the goal is p50 within 1.2x the slowest source (the
# original asked its sources one after another: the sum).
# usage: bench/dispatch/run.sh [path/to/healer] [requests]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export HEALER_BIN=$(realpath "${1:-$root/build/healer}")
export HEALER_SOURCE_ROOT=$root
export HEALER_STUBS=$root/tests/stubs
export NETPROBE=/bin/false
exec python3 "$root/bench/dispatch/latency.py" "${2:-40}"
