#!/usr/bin/env python3
"""gen_bodies.py - writes the wrk Lua table of signed workflow_job deliveries.

usage: gen_bodies.py EXAMPLE.json SECRET COUNT OUT.lua

Each variant is the example payload with a distinct workflow_job.id (so it
is a distinct event for healer's dedup) and its X-Hub-Signature-256 value.
"""
import hashlib
import hmac
import json
import sys


def main():
    example, secret, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(example) as f:
        payload = json.load(f)
    base = int(payload["workflow_job"]["id"])
    with open(out, "w") as f:
        f.write("return {\n")
        for i in range(count):
            payload["workflow_job"]["id"] = base + i
            body = json.dumps(payload, separators=(",", ":"))
            assert "]==]" not in body
            sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
            f.write('{sig="sha256=%s", body=[==[%s]==]},\n' % (sig, body))
        f.write("}\n")


if __name__ == "__main__":
    main()
