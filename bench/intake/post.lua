-- post.lua - wrk script: POST a signed workflow_job delivery with a unique
-- X-GitHub-Delivery per request (thread id + counter), cycling through the
-- pre-signed bodies in $BENCH_BODIES. $BENCH_PATH is the URL path.
local bodies = dofile(os.getenv("BENCH_BODIES"))
local path = os.getenv("BENCH_PATH") or "/webhook"
local run = os.getenv("BENCH_RUN") or "0"
-- where in the bodies this wrk starts: wrks standing for one stream spread
-- over replicas start apart, not in step on the same events
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
-- "I/N": only the bodies whose index is I modulo N, so N wrks against N
-- replicas that share nothing send disjoint events (default "0/1": all)
local shard, shards = (os.getenv("BENCH_SHARD") or "0/1"):match("^(%d+)/(%d+)$")
shard, shards = tonumber(shard), tonumber(shards)
local threads = {}
local next_id = 0

function setup(thread)
	thread:set("tid", next_id)
	next_id = next_id + 1
	table.insert(threads, thread)
end

local counter = 0

function request()
	counter = counter + 1
	local k = (counter + tid * 7919 + offset) % math.floor(#bodies / shards)
	local b = bodies[k * shards + shard + 1]
	local headers = {
		["Content-Type"] = "application/json",
		["X-GitHub-Event"] = "workflow_job",
		["X-GitHub-Delivery"] = string.format("bench-%s-%d-%d", run, tid, counter),
		["X-Hub-Signature-256"] = b.sig,
	}
	return wrk.format("POST", path, headers, b.body)
end

local codes = {}

function response(status, headers, body)
	codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
	io.write(string.format("p99_ms %.3f\n", latency:percentile(99) / 1000))
	io.write(string.format("non2xx %d\n", summary.errors.status))
end
