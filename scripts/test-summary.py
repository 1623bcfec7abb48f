#!/usr/bin/env python3
"""Prints one line per failed test and a final 'N passed, N failed' line,
counting the subtests of TAP tests, over the Meson build directories given.
A ThreadSanitizer report file under BUILD/tsan-reports/ (the TSan build's
log_path) counts as one failure each, and is printed."""
import json
import os
import sys

passed = failed = skipped = 0
for build in sys.argv[1:]:
    path = os.path.join(build, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        print(f"{build}: no test log", file=sys.stderr)
        failed += 1
        continue
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            result = t.get("result")
            out = t.get("stdout") or ""
            sub_ok = sum(1 for l in out.splitlines() if l.startswith("ok "))
            sub_bad = sum(1 for l in out.splitlines() if l.startswith("not ok "))
            if result in ("OK", "EXPECTEDFAIL"):
                passed += max(sub_ok, 1)
            elif result == "SKIP":
                skipped += 1
            else:
                failed += max(sub_bad, 1)
                passed += sub_ok
                print(f"FAILED: {build}: {t.get('name')} ({result})")
    reports = os.path.join(build, "tsan-reports")
    for name in sorted(os.listdir(reports)) if os.path.isdir(reports) else []:
        with open(os.path.join(reports, name), errors="replace") as f:
            text = f.read()
        failed += 1
        print(f"FAILED: {build}: ThreadSanitizer report {name}:\n{text[:6000]}")
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
