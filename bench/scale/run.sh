#!/usr/bin/env bash
# bench/scale: signed intake and processing throughput of healer with 1
# replica on SQLite, 1 on PostgreSQL and 3 on one PostgreSQL database, in
# one run against a throw-away PostgreSQL (tests/pg/pgrun.py; fsync on for
# the bench). Prints req/s, p99, CPU per request, processed deliveries per
# second and the ratios (goals: PostgreSQL intake >= 50% of SQLite's, 3
# replicas >= 1.0x of one).
# usage: bench/scale/run.sh [path/to/healer]
# env:   DURATION (s, default 10), CONNECTIONS (32), THREADS (2), VARIANTS (2048),
#        WORKERS (2)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
healer=$(realpath "${1:-$root/build/healer}")
exec python3 "$root/tests/pg/pgrun.py" python3 "$root/bench/scale/scale.py" "$healer"
