#!/usr/bin/env python3
"""test_schemas.py - two healer deployments in one PostgreSQL database,
each in a schema of its own (search_path in the URL's options; run through
pgrun.py): advisory locks belong to the database, so each deployment must
still elect its own CodeRun watch leader (one per deployment, whatever the
other holds), and each keeps its deliveries in its own schema and takes
its own transaction locks (another deployment's do not hold it up). Standard
library only; prints TAP.
"""
import os
import re
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, job_event, wait_for  # noqa: E402

check = dtest.check


def watch_leader(h):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{h.port}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = re.search(r"^healer_watch_leader (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


def main():
    url = pgtest.create_database("schemas")
    name = url.split("///", 1)[1].split("?", 1)[0]
    con = pgtest.connect(name)
    for schema in ("prod", "staging"):
        con.query(f"CREATE SCHEMA {schema}")
    env = hltest.base_env(HEALER_DISPATCH="directory", HEALER_LEASE_SECONDS="3")
    root = os.path.join(dtest.TMP, "schemas")
    prod = [hltest.Healer(os.path.join(root, "prod"), env,
                          store_url=url + "&options=-csearch_path%3Dprod", name=f"p{i}").start()
            for i in range(2)]
    staging = hltest.Healer(os.path.join(root, "staging"), env,
                            store_url=url + "&options=-csearch_path%3Dstaging",
                            name="s").start()
    tables = {r[0] for r in con.query("SELECT schemaname FROM pg_tables"
                                      " WHERE tablename = 'deliveries'").fetchall()}
    check("each deployment migrated its own schema", tables == {"prod", "staging"}, tables)

    def leaders():
        return [watch_leader(h) for h in prod], watch_leader(staging)

    ok = wait_for(lambda: sorted(leaders()[0]) == [0, 1] and leaders()[1] == 1, 15, 0.2)
    check("each deployment has its CodeRun watch leader: one of the two prod replicas, and "
          "the staging server", ok, leaders())

    st, a = staging.deliver(job_event(501, 51, branch="stage/x"), "sch-staging")
    st2, b = prod[0].deliver(job_event(502, 52, branch="prod/x"), "sch-prod")
    check("both take deliveries", st == 202 and st2 == 202, (a, b))
    rows = {s: [r[0] for r in con.query(f"SELECT delivery_id FROM {s}.deliveries").fetchall()]
            for s in ("prod", "staging")}
    check("each delivery is stored in its deployment's schema",
          rows == {"prod": ["sch-prod"], "staging": ["sch-staging"]}, rows)

    # a deployment in public holding its budget lock (each attempt's check
    # takes it) holds up no attempt of staging's: the locks that serialize
    # a deployment's work are its schema's
    def runs():
        d = os.path.join(root, "staging", "coderuns")
        return len(os.listdir(d)) if os.path.isdir(d) else 0
    wait_for(lambda: runs() >= 1, 10)
    before = runs()
    con.query("SELECT pg_advisory_lock(hashtextextended('healer:budget', 0))")
    st, _ = staging.deliver(job_event(503, 53, branch="stage/y"), "sch-staging-2")
    ok = wait_for(lambda: runs() > before, 8)
    con.query("SELECT pg_advisory_unlock(hashtextextended('healer:budget', 0))")
    check("staging dispatches while a deployment in public holds its budget lock",
          st == 202 and ok, (st, before, runs()))

    # the prod leader stops: the other prod replica takes the watch over,
    # staging keeps its own
    lead = next((h for h in prod if watch_leader(h) == 1), prod[0])
    other = prod[1] if lead is prod[0] else prod[0]
    lead.stop()
    ok = wait_for(lambda: watch_leader(other) == 1 and watch_leader(staging) == 1, 15, 0.2)
    check("the other prod replica takes the watch over; staging keeps its own", ok,
          (watch_leader(other), watch_leader(staging)))
    for h in (other, staging):
        check(f"{h.name} stops cleanly", h.stop() == 0)
    con.close()
    dtest.finish()


if __name__ == "__main__":
    dtest.run(main)
