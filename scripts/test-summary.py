#!/usr/bin/env python3
"""Prints one line per failed test and a final 'N passed, N failed' line,
counting the subtests of TAP tests, over the Meson build directories given.
Before those lines, each failed test's failed checks with their first
diagnostic lines (or, without any, the end of its output), short enough
that the end of a CI log still shows why. A ThreadSanitizer report file
under BUILD/tsan-reports/ (the TSan build's log_path) counts as one
failure each, and is printed."""
import json
import os
import sys

passed = failed = skipped = 0
failures, details = [], []


def why(t):
    """The failed checks of a test's output and the diagnostics after each
    (at most 6 lines, 240 characters each); the end of its output when it
    has none."""
    lines = (t.get("stdout") or "").splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("not ok "):
            out.append(line)
            for d in lines[i + 1:i + 7]:
                if not d.startswith("#"):
                    break
                out.append(d)
    if not out:
        out = [l for l in lines + (t.get("stderr") or "").splitlines() if l.strip()][-8:]
    return [l[:240] for l in out[:40]]


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
                failures.append(f"FAILED: {build}: {t.get('name')} ({result})")
                details.append(f"--- {build}: {t.get('name')} ({result}):\n" + "\n".join(why(t)))
    reports = os.path.join(build, "tsan-reports")
    for name in sorted(os.listdir(reports)) if os.path.isdir(reports) else []:
        with open(os.path.join(reports, name), errors="replace") as f:
            text = f.read()
        failed += 1
        failures.append(f"FAILED: {build}: ThreadSanitizer report {name}:\n{text[:6000]}")
for d in details:
    print(d)
for f in failures:
    print(f)
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
