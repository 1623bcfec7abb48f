#!/usr/bin/env bash
# Starts healer on embedded defaults for `make run`: SQLite under ./var and
# CodeRuns written as files under ./var/coderuns/. Prints where it listens and
# the dashboard's address and a curl line that sends a sample event.
set -euo pipefail
bin=$1
listen=$2
export HEALER_LISTEN=${HEALER_LISTEN:-$listen}
export HEALER_DATA_DIR=${HEALER_DATA_DIR:-./var}
mkdir -p "$HEALER_DATA_DIR"
echo "healer listening on http://$HEALER_LISTEN (data in $HEALER_DATA_DIR)"
echo "dashboard: http://$HEALER_LISTEN/"
echo "send a sample failed job:"
echo "  curl -s -H 'Content-Type: application/json' -H 'X-GitHub-Event: workflow_job' -H \"X-GitHub-Delivery: \$(date +%s%N)\" --data-binary @examples/workflow_job_failure.json http://$HEALER_LISTEN/webhook"
exec "$bin" server
