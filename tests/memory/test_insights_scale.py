#!/usr/bin/env python3
"""test_insights_scale.py - `healer insights` on a large ledger is exact
(contract section 10): every task counted, the routing table folded into
agent x type, and the learned switches those of the three repositories
where Rex keeps failing and Blaze keeps fixing, in repository order. The
ledger (tests/memory/insights_ledger.py) makes every task its own
repository + failure type route, the worst case of the learned table; how
the time grows with it is measured in bench/insights, not here."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ.get("HEALER_SOURCE_ROOT", "."), "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from insights_ledger import HEALER, seed  # noqa: E402
from tap import check, finish, run  # noqa: E402


def main():
    large = 20000
    with tempfile.TemporaryDirectory(prefix="healer-insights-") as tmp:
        p = subprocess.run([HEALER, "insights", "--json"], env=seed(os.path.join(tmp, "l"), large),
                           capture_output=True, text=True, timeout=600)
    d_large = json.loads(p.stdout) if p.returncode == 0 else {}
    check("insights count every task of a large ledger", d_large.get("tasks") == large + 15,
          (p.returncode, p.stderr[-500:], d_large.get("tasks")))
    sw = d_large.get("learned", {}).get("switches")
    check("the learned switches are the three repositories, in repository order",
          [(s["repository"], s["from"], s["to"]) for s in sw or []]
          == [("sw/a", "rex", "blaze"), ("sw/b", "rex", "blaze"), ("sw/c", "rex", "blaze")],
          sw)
    rex = [r for r in d_large.get("routing", []) if r["agent"] == "rex"]
    check("the routing table folds every repository's attempts into agent x type",
          len(rex) == 1 and rex[0]["attempts"] == large + 15
          and rex[0]["successes"] == large - large // 4, rex)
    finish()


run(main)
