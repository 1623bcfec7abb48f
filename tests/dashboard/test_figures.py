#!/usr/bin/env python3
"""test_figures.py - the dashboard's insight cards show figures that agree
with their verdicts (src/dashboard/web/app.js fmtPctNear, run in node): a
rate just under a target it must be under, or just short of one it must
reach, gets the decimals that say so, never a rounded "10.0%" next to a met
"< 10%" nor "100%" short of 100%. Standard library only; prints TAP."""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "dispatch"))
import dtest  # noqa: E402
from dtest import check  # noqa: E402

APP = os.path.join(os.environ["HEALER_SOURCE_ROOT"], "src", "dashboard", "web", "app.js")
CASES = [  # metric, value, target -> the figure shown
    ({"better": "higher", "target": "100%"}, 0.996, 1.0, "99.6%"),
    ({"better": "higher", "target": "100%"}, 0.9996, 1.0, "99.96%"),
    ({"better": "higher", "target": "100%"}, 1.0, 1.0, "100%"),
    ({"better": "lower", "target": "< 10%"}, 0.0999, 0.1, "9.99%"),
    ({"better": "lower", "target": "< 10%"}, 0.1004, 0.1, "10.0%"),
    ({"better": "higher", "target": "> 50%"}, 0.5004, 0.5, "50.04%"),
    ({"better": "higher", "target": "> 50%"}, 0.4996, 0.5, "50.0%"),
    ({"better": "higher", "target": "> 90%"}, 0.62, 0.9, "62.0%"),
    ({"better": "higher", "target": "> 90%"}, None, 0.9, "—"),
]


def main():
    src = open(APP, encoding="utf-8").read()
    funcs = [re.search(r"function %s\([\s\S]*?\n}\n" % name, src) for name in
             ("fmtPct", "fmtPctNear")]
    check("app.js defines fmtPct and fmtPctNear", all(funcs))
    script = "".join(f.group(0) for f in funcs if f) + """
const cases = JSON.parse(process.argv[1]);
process.stdout.write(JSON.stringify(cases.map(([m, v, t]) => fmtPctNear(m, v, t))));
"""
    out = subprocess.run(["node", "-e", script, json.dumps([c[:3] for c in CASES])],
                         capture_output=True, text=True, timeout=60)
    got = json.loads(out.stdout) if out.returncode == 0 else []
    for (m, v, t, want), shown in zip(CASES, got + [None] * len(CASES)):
        check(f"{v} against {m['target']}: {want}", shown == want, [shown, out.stderr[-300:]])
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
