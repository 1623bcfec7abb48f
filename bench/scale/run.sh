#!/usr/bin/env bash
# bench/scale: signed intake and processing throughput of healer with 1
# replica on SQLite, 1 on PostgreSQL, 3 on one PostgreSQL database, and (the
# control) 3 that share nothing, each on its own SQLite store, in one run
# against a throw-away PostgreSQL (tests/pg/pgrun.py; fsync on for the
# bench), ROUNDS times in turn. Prints req/s, p99, CPU per request,
# processed deliveries per second and the ratios per round and as medians
# (goals: PostgreSQL intake >= 50% of SQLite's, 3 replicas >= 1.0x of one).
# usage: bench/scale/run.sh [path/to/healer]
# env:   DURATION (s, default 10), CONNECTIONS (32), THREADS (2), VARIANTS (2048),
#        WORKERS (2), ROUNDS (3)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
healer=$(realpath "${1:-$root/build/healer}")
exec python3 "$root/tests/pg/pgrun.py" python3 "$root/bench/scale/scale.py" "$healer"
