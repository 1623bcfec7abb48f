#!/usr/bin/env python3
"""test_browser.py - the dashboard (contract section 13) in Debian's
chromium driven by playwright-core (browser.cjs), against a real healer
seeded through its intake with the GitHub stand-in and directory dispatch
(dashseed.py): login with a wrong and the right token, the list and its
filters, a state change appearing live, a timeline with its evidence,
sources, attempts and prompt, a hostile job name and PR title staying
text, the insights (when the server serves /api/insights) and health
pages, a narrow screen, no request leaving 127.0.0.1 and no console
error. Screenshots of each page go to DASH_SHOTS (the build directory).
Standard library only; prints TAP."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dashseed  # noqa: E402
from dashseed import dtest  # noqa: E402
from dtest import check  # noqa: E402


def main():
    s = dashseed.Seeded("browser")
    check("every seeded delivery made a task", all(t[0] for t in s.tasks), s.tasks)
    check("every seeded task is running with a CodeRun file", s.wait_running(30),
          [s.task(t[0]).get("state") for t in s.tasks])
    check("a task whose CodeRun succeeded and whose job then passed ends succeeded",
          s.succeed(1), s.task(s.tasks[1][0]))
    st, _ = s.srv.request("GET", "/api/insights", headers=s.auth())
    env = dict(os.environ, DASH_URL=f"http://127.0.0.1:{s.srv.port}", DASH_TOKEN=s.token,
               DASH_CODERUNS=s.coderuns, DASH_TASKS=json.dumps(s.tasks),
               DASH_HOSTILE=s.hostile, DASH_SUCCEEDED=s.tasks[1][0], DASH_INSIGHTS="1" if st == 200 else "0",
               DASH_SHOTS=os.environ.get("DASH_SHOTS", os.path.join(dtest.TMP, "shots")))
    p = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             "browser.cjs")],
                       env=env, capture_output=True, text=True, timeout=240)
    n = 0
    for line in p.stdout.splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        n += 1
        check(r["name"], r["ok"], r.get("detail"))
    check("the browser run printed its checks and exited 0", n >= 20 and p.returncode == 0,
          p.stdout[-1500:] + p.stderr[-1500:])
    s.srv.stop()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
