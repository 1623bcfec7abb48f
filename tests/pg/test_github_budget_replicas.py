#!/usr/bin/env python3
"""test_github_budget_replicas.py - GitHub's token budget shared by the
replicas (contract section 11: replicas share one token): two `healer
server` replicas on one PostgreSQL database (run through pgrun.py) and
the GitHub stand-in, which keeps the token's budget as GitHub does (a call
made while X-RateLimit-Remaining is 0 is refused 403 and recorded).

The budget allows one call. A failure sent to the first replica spends it:
the answer says Remaining 0 with a reset 20 s ahead. Checked: a failure
sent then to the other replica, and to a replica started afterwards, is
still remediated but sends GitHub nothing (each knows the budget is spent
from the store, not from a refusal); once the reset passed, calls go out
again. Standard library only; prints TAP.
"""
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
import pgwire  # noqa: E402
from hltest import dtest, stub_json, wait_for  # noqa: E402

check = dtest.check
TOKEN = "ghs_budgettoken"
WINDOW_S = 20


def main():
    _, gport = dtest.start_stub("github_stub.py", "--token", TOKEN)
    url = pgtest.create_database("budget")
    con = pgtest.connect(url.split("///", 1)[1].split("?", 1)[0])
    shared = os.path.join(dtest.TMP, "budget")
    env = hltest.base_env(HEALER_DISPATCH="directory", GITHUB_TOKEN=TOKEN,
                          GITHUB_API_URL=f"http://127.0.0.1:{gport}")
    reps = [hltest.Healer(shared, env, store_url=url, name=f"r{i}") for i in range(2)]
    for r in reps:
        r.start()

    def api_calls():
        return [q for q in stub_json(gport, "/_stub/requests") if q["path"].startswith("/repos/")]

    def decided(delivery):
        """The delivery made a task of its own, with a CodeRun."""
        row = con.query("SELECT d.state, t.coderun_name FROM deliveries d"
                        " JOIN remediation_tasks t ON t.task_id = d.task_id"
                        " WHERE d.delivery_id = " + pgwire.quote(delivery)).fetchone()
        return row is not None and row[0] == "processed" and bool(row[1])

    def remediate(rep, n):
        delivery = f"budget-{n}"
        st, _ = rep.deliver(hltest.job_event(9000 + n, 7000 + n, branch=f"feat/b{n}"), delivery)
        return st == 202 and wait_for(lambda: decided(delivery), 60, step=0.1)

    stub_json(gport, "/_stub/budget", {"limit": 1, "window": WINDOW_S})
    spent_at = time.time()
    ok = remediate(reps[0], 1)
    calls = api_calls()
    check("the first failure is remediated and spends the budget (its answer says "
          "Remaining 0)", ok and len(calls) >= 1, [ok, len(calls)])

    def rate_limited(rep):
        """healer_github_rate_limited_seconds on rep's /metrics."""
        req = urllib.request.Request(f"http://127.0.0.1:{rep.port}/metrics",
                                     headers={"Authorization": "Bearer " + hltest.TOKEN})
        with urllib.request.urlopen(req, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("healer_github_rate_limited_seconds "):
                    return float(line.split()[1])
        return None

    held = rate_limited(reps[0])
    check("/metrics of the replica told says how long GitHub waits "
          "(healer_github_rate_limited_seconds)", held is not None and 0 < held <= WINDOW_S + 2,
          held)
    # the other replicas read the shared hold at most once a second
    time.sleep(1.5)

    before = len(api_calls())
    refused_before = len(stub_json(gport, "/_stub/refused"))
    ok = remediate(reps[1], 2)
    refused = stub_json(gport, "/_stub/refused")[refused_before:]
    check("the other replica still remediates its failure (a CodeRun)", ok)
    check("the other replica sends GitHub nothing while the budget is spent (no 403 "
          "earned)", len(api_calls()) == before and refused == [],
          [len(api_calls()) - before, refused])

    late = hltest.Healer(shared, env, store_url=url, name="r2").start()
    reps.append(late)
    before = len(api_calls())
    ok = remediate(late, 3)
    refused = stub_json(gport, "/_stub/refused")[refused_before:]
    check("a replica started after the answer knows it too", ok and
          len(api_calls()) == before and refused == [],
          [ok, len(api_calls()) - before, refused])
    check("the hold is kept in the store under the token's fingerprint, never the token",
          any(k.startswith("github:budget:") and TOKEN not in k for (k,) in
              con.query("SELECT key FROM kv").fetchall()))

    # once the reset passed, GitHub is called again (the hold ended)
    time.sleep(max(0.0, spent_at + WINDOW_S + 4 - time.time()))
    # the window runs from the stand-in's first call, which a loaded
    # machine may have made seconds after spent_at
    wait_for(lambda: rate_limited(reps[1]) == 0.0, WINDOW_S + 10, step=0.5)
    stub_json(gport, "/_stub/budget", {"limit": 5000, "window": 3600})
    before = len(api_calls())
    ok = remediate(reps[1], 4)
    check("after the reset the replicas call GitHub again", ok and len(api_calls()) > before,
          [ok, len(api_calls()) - before])
    check("... and /metrics says 0 again", rate_limited(reps[1]) == 0.0, rate_limited(reps[1]))
    for r in reps:
        check(f"replica {r.name} still runs", r.alive(), r.log()[-2000:])
        r.stop()
    dtest.finish()


if __name__ == "__main__":
    main()
