#!/usr/bin/env python3
"""test_condclock.py - no timed wait in src/ runs on the wall clock: no
deadline is taken on CLOCK_REALTIME, and every condition variable given to
pthread_cond_timedwait is made in its file by hl_cond_init_mono (or with a
CLOCK_MONOTONIC attribute), so a backwards clock step stalls none of them.
Prints TAP."""
import os
import re
import sys

root = os.path.join(os.environ.get("HEALER_SOURCE_ROOT", "."), "src")
problems = []
files = 0
for d, _, names in os.walk(root):
    for n in sorted(names):
        if not n.endswith(".c"):
            continue
        path = os.path.join(d, n)
        rel = os.path.relpath(path, root)
        text = open(path, encoding="utf-8", errors="replace").read()
        files += 1
        for m in re.finditer(r"hl_time_deadline\([^;]*CLOCK_REALTIME", text):
            problems.append(f"{rel}: deadline on CLOCK_REALTIME: {m.group(0)}")
        for m in re.finditer(r"pthread_cond_timedwait\(\s*&([^,]+),", text):
            name = re.split(r"->|\.", m.group(1).strip())[-1].strip()
            mono = re.search(r"hl_cond_init_mono\(\s*&[^)]*\b" + re.escape(name) + r"\s*\)", text)
            attr = (re.search(r"pthread_cond_init\(\s*&[^,]*\b" + re.escape(name) + r"\s*,\s*&", text)
                    and "pthread_condattr_setclock" in text and "CLOCK_MONOTONIC" in text)
            if not mono and not attr:
                problems.append(f"{rel}: timed wait on {name}, not made monotonic in this file")

print("1..2")
print(("ok" if files > 50 else "not ok") + f" 1 - scanned {files} source files")
print(("ok" if not problems else "not ok") + " 2 - every timed condvar wait runs on CLOCK_MONOTONIC")
for p in problems:
    print("# " + p)
sys.exit(0)
