#!/usr/bin/env python3
"""test_accuracy.py CASES.jsonl MIN_AGENT MIN_TYPE - runs `healer classify`
over labelled cases (expected_agent, expected_failure_type) and prints one TAP
line per case (a mismatch is reported, not failed) plus two threshold tests
that fail when agent or failure-type accuracy is below the given share."""
import json
import os
import subprocess
import sys

HEALER = os.environ["HEALER_BIN"]
path, min_agent, min_type = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
cases = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
inp = "".join(json.dumps({k: v for k, v in c.items() if not k.startswith("expected_")}) + "\n"
              for c in cases)
env = {k: v for k, v in os.environ.items() if not k.startswith("HEALER_")}
p = subprocess.run([HEALER, "classify"], input=inp, capture_output=True, text=True,
                   env=env, timeout=50)
outs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]

print("TAP version 13")
print("1..%d" % (len(cases) + 3))
print("%s 1 - classify exits 0 with one result per case" %
      ("ok" if p.returncode == 0 and len(outs) == len(cases) else "not ok"))
if p.returncode != 0 or len(outs) != len(cases):
    print("# rc=%d stderr=%s" % (p.returncode, p.stderr.strip()))
    sys.exit(1)
agent_ok = type_ok = 0
for i, (c, o) in enumerate(zip(cases, outs), 2):
    a = o.get("agent") == c["expected_agent"]
    t = o.get("failure_type") == c["expected_failure_type"]
    agent_ok += a
    type_ok += t
    tag = "" if a and t else " [MISMATCH]"
    print("ok %d - %s: %s/%s -> %s/%s (rule %s, line %s)%s" % (
        i, c.get("id"), c["expected_agent"], c["expected_failure_type"], o.get("agent"),
        o.get("failure_type"), o.get("rule"), (o.get("evidence") or {}).get("line_number"),
        tag))
n = len(cases)
ra, rt = agent_ok / n, type_ok / n
print("%s %d - agent accuracy %.1f%% (%d/%d) >= %.0f%%" % (
    "ok" if ra >= min_agent else "not ok", n + 2, 100 * ra, agent_ok, n, 100 * min_agent))
print("%s %d - failure-type accuracy %.1f%% (%d/%d) >= %.0f%%" % (
    "ok" if rt >= min_type else "not ok", n + 3, 100 * rt, type_ok, n, 100 * min_type))
sys.exit(0 if ra >= min_agent and rt >= min_type else 1)
