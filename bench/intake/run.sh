#!/bin/sh
# bench/intake/run.sh - intake throughput: healer (durable store, signature
# check, group commit) vs adnanh/webhook (signature check, runs /bin/true)
# vs nginx answering a static 202, with the same wrk load on 127.0.0.1.
#
# usage: bench/intake/run.sh [path-to-healer]
# env:   DURATION (s, default 10), CONNECTIONS (32), THREADS (2), VARIANTS (2048)
set -eu

HEALER=${1:-build/healer}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
VARIANTS=${VARIANTS:-2048}
SECRET=bench-secret-value
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TMP=$(mktemp -d /tmp/healer-bench.XXXXXX)
PIDS=""

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

for tool in wrk webhook nginx node python3; do
	command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
		{ echo "bench: '$tool' is required" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
	i=0
	until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "bench: nothing listens on port $1" >&2; exit 1; }
		sleep 0.1
	done
}

# The payload: GitHub's documented workflow_job "completed/failure" example.
node -e '
const e = require(process.argv[1]);
const w = e.find((x) => x.name === "workflow_job");
const ex = w.examples.find((x) => x.action === "completed" && x.workflow_job.conclusion === "failure");
process.stdout.write(JSON.stringify(ex));
' "$ROOT/tests/node/node_modules/@octokit/webhooks-examples/api.github.com/index.json" >"$TMP/example.json"
python3 "$HERE/gen_bodies.py" "$TMP/example.json" "$SECRET" "$VARIANTS" "$TMP/bodies.lua"
BYTES=$(python3 -c 'import os,sys; print(os.path.getsize(sys.argv[1]))' "$TMP/example.json")

run_wrk() { # name port path
	BENCH_BODIES="$TMP/bodies.lua" BENCH_PATH=$3 BENCH_RUN=$1 \
		wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
		-s "$HERE/post.lua" "http://127.0.0.1:$2" >"$TMP/$1.out" 2>&1
	RPS=$(awk '/^Requests\/sec/ {print $2}' "$TMP/$1.out")
	P99=$(awk '/^p99_ms/ {print $2}' "$TMP/$1.out")
	NON2XX=$(awk '/^non2xx/ {print $2}' "$TMP/$1.out")
	printf '%-8s %12s req/s   p99 %8s ms   non-2xx %s\n' "$1" "$RPS" "$P99" "$NON2XX"
	eval "RPS_$1=$RPS"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, workflow_job body $BYTES bytes," \
	"$VARIANTS distinct events, unique delivery ids"

# 1. healer, durable SQLite store under $TMP.
HPORT=$(free_port)
GITHUB_WEBHOOK_SECRET=$SECRET "$HEALER" server --listen "127.0.0.1:$HPORT" \
	--data-dir "$TMP/healer" 2>"$TMP/healer.log" &
HPID=$!
PIDS="$PIDS $HPID"
wait_port "$HPORT"
CPU0=$(awk '{print $14 + $15}' "/proc/$HPID/stat")
run_wrk healer "$HPORT" /webhook
CPU1=$(awk '{print $14 + $15}' "/proc/$HPID/stat")
HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$HPID/status")
TICKS=$(getconf CLK_TCK)
STATUS=$(python3 -c "import json,urllib.request; d=json.load(urllib.request.urlopen('http://127.0.0.1:$HPORT/api/status')); print(d['deliveries']['total'], d['deliveries']['by_state'], d['queue_depth'])")
kill "$HPID"
wait "$HPID" || true
echo "healer   stored deliveries, states, queue depth: $STATUS"
echo "healer   peak RSS (VmHWM): $((HWM / 1024)) MB"
python3 -c "import sys; t, hz, rps, d = map(float, sys.argv[1:]); print('healer   CPU: %.2f cores, %.0f us per request' % (t / hz / d, 1e6 * t / hz / (rps * d)))" \
	"$((CPU1 - CPU0))" "$TICKS" "$RPS_healer" "$DURATION"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)"

# 2. adnanh/webhook with an HMAC trigger rule executing /bin/true.
WPORT=$(free_port)
cat >"$TMP/hooks.json" <<EOH
[{"id": "ci", "execute-command": "/bin/true", "response-message": "ok",
  "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": "$SECRET",
    "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}}}]
EOH
webhook -hooks "$TMP/hooks.json" -ip 127.0.0.1 -port "$WPORT" >"$TMP/webhook.log" 2>&1 &
WPID=$!
PIDS="$PIDS $WPID"
wait_port "$WPORT"
run_wrk webhook "$WPORT" /hooks/ci
kill "$WPID"
wait "$WPID" 2>/dev/null || true

# 3. nginx answering 202 to everything.
NPORT=$(free_port)
mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<EON
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $TMP/nginx/body;
	client_max_body_size 26m;
	server {
		listen 127.0.0.1:$NPORT;
		location / { return 202; }
	}
}
EON
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' &
NPID=$!
PIDS="$PIDS $NPID"
wait_port "$NPORT"
run_wrk nginx "$NPORT" /webhook
kill "$NPID"
wait "$NPID" 2>/dev/null || true

python3 - "$RPS_healer" "$RPS_webhook" "$RPS_nginx" "$HWM" <<'EOP'
import sys
h, w, n, hwm = (float(x) for x in sys.argv[1:])
print("healer/webhook %.1fx (goal >= 5x)   healer/nginx %.0f%% (goal >= 50%%)   "
      "healer RSS %.1f MB (goal < 30 MB)" % (h / w, 100 * h / n, hwm / 1024))
EOP
