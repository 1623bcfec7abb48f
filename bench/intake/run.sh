#!/bin/sh
# bench/intake/run.sh - intake throughput: healer (durable store, signature
# check, group commit) vs adnanh/webhook (signature check, runs /bin/true)
# vs nginx answering a static 202, with the same wrk load on 127.0.0.1.
#
# The three (and a baseline healer, when given) run in turn ROUNDS times, so
# a change of load on a shared machine hits each alike; the ratios are of
# the medians. healer's CPU per request (user + sys of the whole process,
# workers included, over the wrk run) is the figure that load moves least.
#
# usage: bench/intake/run.sh [path-to-healer] [baseline-healer]
# env:   DURATION (s, default 10), CONNECTIONS (32), THREADS (2), VARIANTS (2048),
#        ROUNDS (3)
set -eu

HEALER=${1:-build/healer}
BASELINE=${2:-}
ROUNDS=${ROUNDS:-3}
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
	BENCH_BODIES="$TMP/bodies.lua" BENCH_PATH=$3 BENCH_RUN=$1-$ROUND \
		wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
		-s "$HERE/post.lua" "http://127.0.0.1:$2" >"$TMP/$1.out" 2>&1
	RPS=$(awk '/^Requests\/sec/ {print $2}' "$TMP/$1.out")
	P99=$(awk '/^p99_ms/ {print $2}' "$TMP/$1.out")
	NON2XX=$(awk '/^non2xx/ {print $2}' "$TMP/$1.out")
	printf '%-8s %12s req/s   p99 %8s ms   non-2xx %s\n' "$1" "$RPS" "$P99" "$NON2XX"
	echo "$RPS" >>"$TMP/rps.$1"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, workflow_job body $BYTES bytes," \
	"$VARIANTS distinct events, unique delivery ids, $ROUNDS rounds"

# 1. healer (or the baseline), durable SQLite store under $TMP.
run_healer() { # name binary
	rm -rf "$TMP/healer"
	HPORT=$(free_port)
	GITHUB_WEBHOOK_SECRET=$SECRET "$2" server --listen "127.0.0.1:$HPORT" \
		--data-dir "$TMP/healer" 2>"$TMP/healer.log" &
	HPID=$!
	PIDS="$PIDS $HPID"
	wait_port "$HPORT"
	CPU0=$(awk '{print $14 + $15}' "/proc/$HPID/stat")
	run_wrk "$1" "$HPORT" /webhook
	CPU1=$(awk '{print $14 + $15}' "/proc/$HPID/stat")
	HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$HPID/status")
	STATUS=$(python3 -c "import json,urllib.request; d=json.load(urllib.request.urlopen('http://127.0.0.1:$HPORT/api/status')); print(d['deliveries']['total'], d['deliveries']['by_state'], d['queue_depth'])")
	kill "$HPID"
	wait "$HPID" || true
	echo "$1   stored deliveries, states, queue depth: $STATUS; peak RSS $((HWM / 1024)) MB"
	python3 -c "import sys; t, hz, rps, d = map(float, sys.argv[1:]); print('%.0f' % (1e6 * t / hz / (rps * d)))" \
		"$((CPU1 - CPU0))" "$(getconf CLK_TCK)" "$RPS" "$DURATION" >>"$TMP/cpu.$1"
	echo "$1   CPU: $(tail -n1 "$TMP/cpu.$1") us per request"
	echo "$HWM" >>"$TMP/hwm.$1"
}

# 2. adnanh/webhook with an HMAC trigger rule executing /bin/true.
run_webhook() {
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
}

# 3. nginx answering 202 to everything.
run_nginx() {
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
}

ROUND=1
while [ "$ROUND" -le "$ROUNDS" ]; do
	echo "-- round $ROUND"
	run_healer healer "$HEALER"
	[ -z "$BASELINE" ] || run_healer baseline "$BASELINE"
	run_webhook
	run_nginx
	ROUND=$((ROUND + 1))
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$TMP" "$BASELINE" <<'EOP'
import os, statistics, sys
tmp, baseline = sys.argv[1], sys.argv[2]
def med(name):
    with open(os.path.join(tmp, name)) as f:
        return statistics.median(float(x) for x in f if x.strip())
h, w, n = med("rps.healer"), med("rps.webhook"), med("rps.nginx")
print("medians: healer %.0f req/s (%.0f us CPU per request), webhook %.0f, nginx %.0f"
      % (h, med("cpu.healer"), w, n))
print("healer/webhook %.1fx (goal >= 5x)   healer/nginx %.0f%% (goal >= 50%%)   "
      "healer RSS %.1f MB (goal < 30 MB)" % (h / w, 100 * h / n, med("hwm.healer") / 1024))
if baseline:
    b = med("rps.baseline")
    print("baseline %.0f req/s (%.0f us CPU per request): healer/baseline %.2fx throughput,"
          " %.2fx CPU per request" % (b, med("cpu.baseline"), h / b,
                                      med("cpu.healer") / med("cpu.baseline")))
EOP
