#!/usr/bin/env bash
# bench/dashboard: time to the first useful paint of the remediations list and
# of one timeline in headless Chromium with 100,000 tasks in the store, against
# the same pages with 100 tasks (the ratio; goal <= 1.5x).
# Usage: bench/dashboard/run.sh [build/healer]   (BENCH_RUNS=N repeats, default 7)
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python3 bench/dashboard/bench.py "${1:-build/healer}"
