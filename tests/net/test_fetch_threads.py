#!/usr/bin/env python3
"""test_fetch_threads.py - the fetch engine's process-wide share (DNS
answers) under contention: several threads each run batches of TLS
requests to one server at the same time, as the workers, the loop driver
and the watch do in the server. Every request must succeed; in the
ThreadSanitizer build any data race in the fetch layer, libcurl or OpenSSL
is a failure (scripts/test-summary.py)."""
import json
import ssl

from dtest import check, finish, http, make_ca, netprobe, start_stub

ca = make_ca("threads")
_, port = start_stub("generic_stub.py", "--cert", ca["cert"], "--key", ca["key"])
url = f"https://127.0.0.1:{port}"
http("POST", f"{url}/_stub/config", {"routes": [{"path": "/t", "body": {"ok": True}}]},
     ctx=ssl.create_default_context(cafile=ca["ca"]))

THREADS, ROUNDS, BATCH = 4, 20, 3
rc, out, err = netprobe("fetch", stdin=json.dumps({
    "threads": THREADS, "rounds": ROUNDS,
    "requests": [{"url": f"{url}/t", "ca_file": ca["ca"], "timeout_ms": 20000}] * BATCH}))
check("threads: the probe ran", rc == 0 and isinstance(out, dict), (rc, out, err))
out = out if isinstance(out, dict) else {}
check(f"threads: {THREADS} threads started", out.get("threads") == THREADS, out)
check(f"threads: all {THREADS * ROUNDS * BATCH} TLS requests answered 200",
      out.get("ok") == THREADS * ROUNDS * BATCH and out.get("failed") == 0, out)
finish()
