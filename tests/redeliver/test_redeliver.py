#!/usr/bin/env python3
"""test_redeliver.py - redelivery of failed GitHub webhook deliveries
(contract section 11) against the GitHub stand-in, whose repository hook
really delivers to healer's /webhook.

While no healer listens, "GitHub" sends a delivery (it fails to connect).
The hook's listing also holds a delivery healer stored although GitHub
logged it failed, one delivered fine, one whose later attempt succeeded and
one too old to redeliver (422). healer started with GITHUB_HOOK_ID and
GITHUB_HOOK_REPOSITORY asks GitHub once for the failed and unseen one (it
arrives and is stored) and once for the too old one (refused, counted
failed), never for the others; a later pass asks for nothing more; an
unknown hook (404) and a forbidden one (403) are errors that leave the
server serving. Run through tests/pg/pgrun.py it does the same with two
replicas on one PostgreSQL database, started together: GitHub is still asked
once per delivery. Standard library only; prints TAP.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests", "pg"))
import hltest  # noqa: E402
import pgtest  # noqa: E402
from hltest import dtest, job_event, wait_for  # noqa: E402

check = dtest.check
GTOKEN = "ghp_redeliver_token"
REPO = hltest.REPO
HOOK_ID = 77
KEY = f"repo:{REPO}:{HOOK_ID}"


def metrics(h):
    """healer's /metrics as {name{labels}: value}."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def total(hs, name):
    return sum(metrics(h).get(name, 0) for h in hs if h.alive())


def item(i, guid, code, at=None, too_old=False, payload=None):
    d = {"id": i, "guid": guid, "delivered_at": at or time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600 + i)),
        "redelivery": False, "duration": 0.5,
        "status": "OK" if 200 <= code < 300 else "Invalid HTTP Response: %d" % code,
        "status_code": code, "event": "workflow_job", "action": "completed",
        "installation_id": None, "repository_id": 1}
    if too_old:
        d["too_old"] = True
    if payload is not None:
        d["payload"] = payload
    return d


def main():
    pg = pgtest.enabled()
    _, gport = dtest.start_stub("github_stub.py", "--token", GTOKEN)
    api = f"http://127.0.0.1:{gport}"
    port = pgtest.steady_port()  # restarted on it
    data = os.path.join(dtest.TMP, "redeliver")
    url = None  # each data directory has its own store (on PostgreSQL: its database)
    # the hook's log before: B logged failed (healer stored it, but its
    # answer came too late), D failed and then delivered, E failed and too
    # old to redeliver, F delivered long ago
    dtest.http("POST", f"{api}/_stub/seed", {
        "hooks": {KEY: {"url": f"http://127.0.0.1:{port}/webhook", "secret": hltest.SECRET}},
        "deliveries": {KEY: [
            item(1, "guid-b", 502, payload=job_event(201, 2001)),
            item(2, "guid-d", 500, payload=job_event(204, 2004)),
            item(3, "guid-d", 200, payload=job_event(204, 2004)),
            item(4, "guid-e", 504, too_old=True, payload=job_event(205, 2005)),
            item(0, "guid-f", 200, at="2020-01-01T00:00:00Z"),
        ]}})
    env0 = hltest.base_env(GITHUB_API_URL=api, GITHUB_TOKEN=GTOKEN, HEALER_DISPATCH="none")

    # a first run without redelivery stores B (GitHub then logged it failed:
    # its answer came too late) and C (sent by GitHub, answered)
    h = hltest.Healer(data, env0, store_url=url, name="first", listen=f"127.0.0.1:{port}")
    h.start()
    st, _ = h.deliver(job_event(201, 2001), "guid-b")
    c = dtest.http("POST", f"{api}/_stub/send", {"hook": KEY, "guid": "guid-c",
                                                  "payload": job_event(203, 2003)})
    check("setup: healer stores B, and C as GitHub delivers it (202)",
          st == 202 and c["status_code"] == 202, (st, c))
    m = metrics(h)
    check("without GITHUB_HOOK_ID (and no App) redelivery is off: no pass, counters at zero",
          m.get('healer_redeliver_passes_total{result="ok"}') == 0
          and m.get('healer_redeliveries_total{result="requested"}') == 0
          and not [r for r in dtest.http("GET", f"{api}/_stub/requests")
                   if r["path"].endswith("/deliveries")], m)
    h.stop()

    # healer is down: GitHub sends A, which fails to connect
    a = dtest.http("POST", f"{api}/_stub/send", {"hook": KEY, "guid": "guid-a",
                                                  "payload": job_event(202, 2002)})
    check("setup: A, sent while healer is down, is logged failed (failed to connect)",
          a["status_code"] == 0 and a["status"] == "failed to connect", a)
    # 150 newer deliveries that went fine: A is on the listing's second page
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    dtest.http("POST", f"{api}/_stub/seed", {"add_deliveries": {KEY: [
        item(i, f"guid-ok-{i}", 200, at=now) for i in range(100, 250)]}})
    dtest.http("POST", f"{api}/_stub/reset")

    env = dict(env0, GITHUB_HOOK_ID=str(HOOK_ID), GITHUB_HOOK_REPOSITORY=REPO)
    hs = [hltest.Healer(data, env, store_url=url, name="r0", listen=f"127.0.0.1:{port}")]
    if pg:
        hs.append(hltest.Healer(data, env, store_url=url, name="r1"))
    for x in hs:
        x.start()

    def settled():
        redone = [d for d in _listed(api) if d["guid"] == "guid-a" and d["redelivery"]]
        return (total(hs, 'healer_redeliver_passes_total{result="ok"}') >= 1
                and len(dtest.http("GET", f"{api}/_stub/redeliveries")) >= 1 and redone
                and total(hs, 'healer_redeliveries_total{result="failed"}') >= 1)
    wait_for(settled, 30, 0.1)
    ids = {str(d["id"]): d["guid"] for d in _listed(api) if not d["redelivery"]}
    posts = [r for r in dtest.http("GET", f"{api}/_stub/requests")
             if r["method"] == "POST" and r["path"].endswith("/attempts")]
    asked = sorted(ids.get(r["path"].split("/")[-2], r["path"]) for r in posts)
    check("the failed and unseen delivery (A) and the too old one (E) are asked for, once each"
          + (" across two replicas" if pg else ""), asked == ["guid-a", "guid-e"], posts)
    check("POST /repos/{o}/{r}/hooks/{id}/deliveries/{delivery id}/attempts, with the token",
          all(r["path"].startswith(f"/repos/{REPO}/hooks/{HOOK_ID}/deliveries/")
              and r["headers"].get("authorization") == f"Bearer {GTOKEN}" for r in posts),
          posts)
    reds = dtest.http("GET", f"{api}/_stub/redeliveries")
    check("GitHub redelivers A only (E: 422, too old)",
          [r["guid"] for r in reds] == ["guid-a"], reds)
    redone = [d for d in _listed(api) if d["guid"] == "guid-a" and d["redelivery"]]
    check("GitHub redelivers A and healer answers it 202",
          len(redone) == 1 and redone[0]["status_code"] == 202, redone)
    db = pgtest.store_db(data)
    row = db.execute("SELECT event_name, state FROM deliveries WHERE delivery_id = ?",
                     ("guid-a",)).fetchone()
    check("A is stored under its guid (X-GitHub-Delivery)", row is not None
          and row[0] == "workflow_job", row)
    rows = dict(db.execute("SELECT guid, outcome FROM redeliveries").fetchall())
    check("the store records A requested and E failed", rows == {"guid-a": "requested",
                                                                "guid-e": "failed"}, rows)
    check("metrics: healer_redeliveries_total requested 1, failed 1 (over the replicas)",
          total(hs, 'healer_redeliveries_total{result="requested"}') == 1
          and total(hs, 'healer_redeliveries_total{result="failed"}') == 1,
          [metrics(x) for x in hs])
    if pg:
        leaders = [metrics(x).get("healer_redeliver_leader") for x in hs]
        check("one replica leads the redelivery", sorted(leaders) == [0, 1], leaders)
    listing = [r for r in dtest.http("GET", f"{api}/_stub/requests")
               if r["method"] == "GET" and r["path"].endswith("/deliveries")]
    check("the listing asks GitHub's page size (per_page=100) and follows the Link cursor to "
          "the second page, where A is",
          len(listing) >= 2 and all(r["query"].get("per_page") == "100" for r in listing)
          and any(r["query"].get("cursor") for r in listing), listing)
    for x in hs:
        x.stop()

    # later passes (the point removed, so each is due at once): a delivery
    # that failed since (G) is asked for; GitHub rate-limits that request
    # first, so the pass stops and gives G back; the next pass asks again
    # and gets it; A and E are never asked again
    def again(name):
        db.execute("DELETE FROM kv WHERE key = ?", (f"redeliver:{KEY}",))
        if hasattr(db, "commit"):
            db.commit()
        dtest.http("POST", f"{api}/_stub/reset")
        h = hltest.Healer(data, env, store_url=url, name=name, listen=f"127.0.0.1:{port}")
        h.start()
        wait_for(lambda: total([h], 'healer_redeliver_passes_total{result="ok"}') >= 1, 20)
        posts = [r for r in dtest.http("GET", f"{api}/_stub/requests")
                 if r["method"] == "POST" and r["path"].endswith("/attempts")]
        h.failed = total([h], 'healer_redeliveries_total{result="failed"}')  # before it stops
        h.stop()
        return h, [ids.get(r["path"].split("/")[-2], r["path"]) for r in posts]

    dtest.http("POST", f"{api}/_stub/seed", {"add_deliveries": {KEY: [
        item(50, "guid-g", 502, at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))]}})
    ids = {str(d["id"]): d["guid"] for d in _listed(api) if not d["redelivery"]}
    dtest.http("POST", f"{api}/_stub/config", {"rules": [
        {"method": "POST", "path": f"/repos/{REPO}/hooks/{HOOK_ID}/deliveries/50/attempts",
         "status": 429, "times": 1, "headers": {"Retry-After": "3600"},
         "body": {"message": "API rate limit exceeded"}}]})
    h, asked = again("again")
    rows = dict(db.execute("SELECT guid, outcome FROM redeliveries").fetchall())
    check("a rate-limited redelivery stops the pass and is given back (not recorded, not "
          "counted failed); A and E are not asked again",
          asked == ["guid-g"] and rows.get("guid-g") == "retry" and
          "rate-limits redelivery" in h.log() and
          [r["guid"] for r in dtest.http("GET", f"{api}/_stub/redeliveries")] == ["guid-a"],
          (asked, rows))
    # GitHub asked for no request for an hour: every process on this store
    # waits with it (a store hold under the token's fingerprint, read by
    # every GitHub client); the test lets the hour pass by removing it
    hold = db.execute("SELECT key, value FROM kv WHERE key LIKE 'github:budget:%'").fetchall()
    check("GitHub's Retry-After (an hour) is kept in the store, for every replica and the "
          "next process", len(hold) == 1 and GTOKEN not in hold[0][0]
          and int(hold[0][1]) > time.time() * 1000 + 3500 * 1000, hold)
    db.execute("DELETE FROM kv WHERE key LIKE 'github:budget:%'")
    if hasattr(db, "commit"):
        db.commit()
    h, asked = again("third")
    rows = dict(db.execute("SELECT guid, outcome FROM redeliveries").fetchall())
    check("the next pass asks for G again and gets it; still nothing for A, E (once each)",
          asked == ["guid-g"] and rows.get("guid-g") == "requested" and
          [r["guid"] for r in dtest.http("GET", f"{api}/_stub/redeliveries")] ==
          ["guid-a", "guid-g"], (asked, rows))
    h, asked = again("fourth")
    check("a pass after that asks for nothing", asked == [], asked)

    # GitHub does not take two requests: a 502 (its servers) and a 403 (a
    # token that may not redeliver, fixed afterwards). Neither says anything
    # about the delivery: both are given back, not recorded failed, and the
    # next pass asks again and gets them
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    dtest.http("POST", f"{api}/_stub/seed", {"add_deliveries": {KEY: [
        item(60, "guid-h", 502, at=stamp), item(61, "guid-i", 500, at=stamp)]}})
    ids = {str(d["id"]): d["guid"] for d in _listed(api) if not d["redelivery"]}
    base = f"/repos/{REPO}/hooks/{HOOK_ID}/deliveries"
    dtest.http("POST", f"{api}/_stub/config", {"rules": [
        {"method": "POST", "path": f"{base}/60/attempts", "status": 502, "times": 1},
        {"method": "POST", "path": f"{base}/61/attempts", "status": 403, "times": 1,
         "body": {"message": "Resource not accessible by integration"}}]})
    h, asked = again("fifth")
    rows = dict(db.execute("SELECT guid, outcome FROM redeliveries").fetchall())
    check("a redelivery request GitHub did not take (502, 403) is given back, not recorded "
          "failed", sorted(asked) == ["guid-h", "guid-i"] and rows.get("guid-h") == "retry"
          and rows.get("guid-i") == "retry" and "did not take a redelivery request" in h.log()
          and h.failed == 0, (asked, rows, h.failed))
    h, asked = again("sixth")
    rows = dict(db.execute("SELECT guid, outcome FROM redeliveries").fetchall())
    check("the next pass asks for both again and GitHub redelivers them",
          sorted(asked) == ["guid-h", "guid-i"] and rows.get("guid-h") == "requested"
          and rows.get("guid-i") == "requested", (asked, rows))
    h, asked = again("seventh")
    check("and a pass after that asks for nothing", asked == [], asked)

    # GitHub never takes the request for J (502 every time): each pass asks
    # again and is incomplete (the resume point stays), also after three
    # such requests while the first is less than an hour old (a GitHub
    # incident of a few passes loses nothing); once it is older (made so in
    # the store), the next request GitHub does not take records J failed for
    # good with a clear log line; that pass completes and its resume point
    # moves; J is never asked again. K, which failed too and is taken, is
    # asked for once meanwhile.
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    dtest.http("POST", f"{api}/_stub/seed", {"add_deliveries": {KEY: [
        item(70, "guid-j", 502, at=stamp), item(71, "guid-k", 500, at=stamp)]}})
    ids = {str(d["id"]): d["guid"] for d in _listed(api) if not d["redelivery"]}
    dtest.http("POST", f"{api}/_stub/config", {"rules": [
        {"method": "POST", "path": f"{base}/70/attempts", "status": 502,
         "body": {"message": "Server Error"}}]})

    def point_since():
        row = db.execute("SELECT value FROM kv WHERE key = ?", (f"redeliver:{KEY}",)).fetchone()
        return int(row[0].split()[0]) if row else None

    def store(sql):
        db.execute(sql)
        if hasattr(db, "commit"):
            db.commit()
    asked_j, outcomes = [], []
    for name in ("eighth", "ninth", "tenth", "eleventh"):
        if name == "eleventh":
            store("UPDATE redeliveries SET requested_ms = requested_ms - 3700000"
                  " WHERE guid = 'guid-j'")
        h, asked = again(name)
        asked_j.append(sorted(asked))
        rows = dict(db.execute("SELECT guid, outcome FROM redeliveries").fetchall())
        outcomes.append((rows.get("guid-j"), point_since()))
    check("a delivery whose redelivery GitHub never takes (502) is asked again by the next "
          "passes, which stay incomplete (the resume point does not move), also after three "
          "requests within the hour",
          asked_j[:3] == [["guid-j", "guid-k"], ["guid-j"], ["guid-j"]]
          and outcomes[:3] == [("retry", 0)] * 3, (asked_j, outcomes))
    nt = db.execute("SELECT outcome, detail FROM redeliveries WHERE guid = 'guid-j'").fetchone()
    check("once its first request is an hour old, the next GitHub does not take gives up on "
          "it: recorded failed for good with GitHub's answer, logged and counted; the pass "
          "completes and its resume point moves",
          asked_j[3] == ["guid-j"] and outcomes[3][0] == "failed" and (outcomes[3][1] or 0) > 0
          and nt is not None and "4 times" in (nt[1] or "")
          and "giving up on a failed delivery" in h.log() and h.failed == 1,
          (asked_j, outcomes, nt, h.failed, h.log()[-1500:]))
    h, asked = again("twelfth")
    rows = dict(db.execute("SELECT guid, outcome FROM redeliveries").fetchall())
    check("J is never asked again; K was asked once and redelivered",
          asked == [] and rows.get("guid-k") == "requested", (asked, rows))
    dtest.http("POST", f"{api}/_stub/config", {"rules": []})

    # the last leader died between claiming L and GitHub's answer: L is left
    # pending. While that request may still be at work (under two minutes)
    # a pass leaves it; once it is older, the next pass asks for L itself
    now_ms = int(time.time() * 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    dtest.http("POST", f"{api}/_stub/seed", {"add_deliveries": {KEY: [
        item(75, "guid-l", 502, at=stamp)]}})
    ids = {str(d["id"]): d["guid"] for d in _listed(api) if not d["redelivery"]}
    store("INSERT INTO redeliveries (guid, hook, github_id, event_name, status_code,"
          " requested_by, requested_ms, outcome, updated_ms) VALUES ('guid-l', '%s', 75,"
          " 'workflow_job', 502, 'dead-leader', %d, 'pending', %d)" % (KEY, now_ms, now_ms))
    h, asked = again("thirteenth")
    rows = dict(db.execute("SELECT guid, outcome FROM redeliveries").fetchall())
    check("a delivery another leader's request left pending is not asked again while that "
          "request may be at work, and the pass stays incomplete (its resume point does not "
          "move past it)", asked == [] and rows.get("guid-l") == "pending"
          and point_since() == 0, (asked, rows, point_since()))
    store("UPDATE redeliveries SET updated_ms = updated_ms - 180000 WHERE guid = 'guid-l'")
    h, asked = again("fourteenth")
    rows = dict(db.execute("SELECT guid, outcome FROM redeliveries").fetchall())
    check("... once it is stale (its leader died before GitHub answered) the next pass asks "
          "for it, once", asked == ["guid-l"] and rows.get("guid-l") == "requested",
          (asked, rows))

    # healer restarted soon after its last pass (the stored point is a
    # minute old, the interval 10): the new process's first pass is made at
    # start all the same, and asks for M, which failed while it was down
    # (before: it waited out the interval since the last pass)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    dtest.http("POST", f"{api}/_stub/seed", {"add_deliveries": {KEY: [
        item(78, "guid-m", 502, at=stamp)]}})
    ids = {str(d["id"]): d["guid"] for d in _listed(api) if not d["redelivery"]}
    dtest.http("POST", f"{api}/_stub/reset")
    recent = point_since() is not None
    h = hltest.Healer(data, env, store_url=url, name="restarted", listen=f"127.0.0.1:{port}")
    h.start()
    wait_for(lambda: total([h], 'healer_redeliver_passes_total{result="ok"}') >= 1, 20)
    posts = [r for r in dtest.http("GET", f"{api}/_stub/requests")
             if r["method"] == "POST" and r["path"].endswith("/attempts")]
    h.stop()
    check("restarted right after a pass, healer makes its first pass at start and asks for "
          "the delivery that failed meanwhile",
          recent and [ids.get(r["path"].split("/")[-2], r["path"]) for r in posts]
          == ["guid-m"], (recent, posts))

    # a long outage of a busy hook: the failed delivery X lies behind 1,250
    # newer ones, more than a pass lists (1,000). The pass goes on from the
    # next page at once (not an interval later) and asks for X; the resume
    # point then moves to the newest delivery of the first listing, so a
    # later pass asks for the failure Y that came after, and not X again.
    big, bkey = 81, f"repo:{REPO}:81"
    bport = pgtest.steady_port()  # restarted on it
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    mid = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1800))
    newer = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    dtest.http("POST", f"{api}/_stub/seed", {
        "hooks": {bkey: {"url": f"http://127.0.0.1:{bport}/webhook", "secret": hltest.SECRET}},
        "deliveries": {bkey: [item(1, "guid-x", 502, at=old, payload=job_event(301, 3001))] +
                       [item(i, f"guid-busy-{i}", 200, at=mid if i < 1153 else newer)
                        for i in range(2, 1252)]}})
    dtest.http("POST", f"{api}/_stub/reset")
    d3 = os.path.join(dtest.TMP, "busy")
    benv = dict(env, GITHUB_HOOK_ID=str(big), HEALER_LEASE_SECONDS="3",
                HEALER_REDELIVER_INTERVAL_MINS="60")
    h = hltest.Healer(d3, benv, name="busy", listen=f"127.0.0.1:{bport}")
    h.start()

    def asked_for(guid_ids):
        return [guid_ids.get(r["path"].split("/")[-2], r["path"])
                for r in dtest.http("GET", f"{api}/_stub/requests")
                if r["method"] == "POST" and r["path"].endswith("/attempts")]
    bids = {"1": "guid-x"}
    wait_for(lambda: asked_for(bids) and total([h], 'healer_redeliver_passes_total{result="ok"}')
             >= 2, 30, 0.1)
    bdb = pgtest.store_db(d3)
    point = bdb.execute("SELECT value FROM kv WHERE key = ?", (f"redeliver:{bkey}",)).fetchone()
    stored = wait_for(lambda: bdb.execute("SELECT 1 FROM deliveries WHERE delivery_id = ?",
                                          ("guid-x",)).fetchone(), 20)
    check("a failed delivery behind more newer ones than a pass lists is still asked for, "
          "once, by the pass that goes on from the next page at once; it arrives and is "
          "stored", asked_for(bids) == ["guid-x"] and stored is not None
          and total([h], 'healer_redeliver_passes_total{result="ok"}') >= 2,
          (asked_for(bids), h.log()[-1500:]))
    check("after the listing reaches the resume point, the point is the newest delivery of "
          "the first listing and no page is left",
          point is not None and len(point[0].split()) == 2
          and abs(int(point[0].split()[0]) / 1000 - hltest_time(newer)) < 2, point)
    h.stop()
    dtest.http("POST", f"{api}/_stub/seed", {"add_deliveries": {bkey: [
        item(1300, "guid-y", 500, at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             payload=job_event(302, 3002))]}})
    dtest.http("POST", f"{api}/_stub/reset")
    bdb.execute("UPDATE kv SET value = ? WHERE key = ?",
                (point[0].split()[0] + " 0", f"redeliver:{bkey}"))
    if hasattr(bdb, "commit"):
        bdb.commit()
    h = hltest.Healer(d3, benv, name="busy2", listen=f"127.0.0.1:{bport}")
    h.start()
    bids = {"1": "guid-x", "1300": "guid-y"}
    wait_for(lambda: total([h], 'healer_redeliver_passes_total{result="ok"}') >= 1
             and asked_for(bids), 20, 0.1)
    listing = [r for r in dtest.http("GET", f"{api}/_stub/requests")
               if r["method"] == "GET" and r["path"].endswith("/deliveries")]
    check("the next pass asks for Y, lists only down to the resume point (two pages of 13), "
          "and does not ask for X again", asked_for(bids) == ["guid-y"] and len(listing) == 2,
          (asked_for(bids), len(listing)))
    h.stop()
    # a saved page GitHub no longer accepts (400): the pass lists from the newest
    since_ms = point[0].split()[0]
    bdb.execute("UPDATE kv SET value = ? WHERE key = ?",
                (f"{since_ms} 0 {since_ms} {api}/repos/{REPO}/hooks/{big}/deliveries"
                 "?per_page=100&cursor=!!bad", f"redeliver:{bkey}"))
    if hasattr(bdb, "commit"):
        bdb.commit()
    h = hltest.Healer(d3, benv, name="busy3", listen=f"127.0.0.1:{bport}")
    h.start()
    wait_for(lambda: total([h], 'healer_redeliver_passes_total{result="ok"}') >= 1, 20, 0.1)
    point = bdb.execute("SELECT value FROM kv WHERE key = ?", (f"redeliver:{bkey}",)).fetchone()
    check("a saved page GitHub refuses (400) is dropped: the pass lists from the newest and "
          "completes", total([h], 'healer_redeliver_passes_total{result="ok"}') >= 1
          and "refused the saved page" in h.log() and point and len(point[0].split()) == 2,
          (point, h.log()[-1500:]))
    h.stop()
    # a saved page on another host (GITHUB_API_URL changed since): not asked
    # of that host pass after pass; the pass lists from the newest
    bdb.execute("UPDATE kv SET value = ? WHERE key = ?",
                (f"{since_ms} 0 {since_ms} http://127.0.0.1:9/repos/{REPO}/hooks/{big}/deliveries"
                 "?per_page=100&cursor=djFfMQ==", f"redeliver:{bkey}"))
    if hasattr(bdb, "commit"):
        bdb.commit()
    h = hltest.Healer(d3, benv, name="busy4", listen=f"127.0.0.1:{bport}")
    h.start()
    wait_for(lambda: total([h], 'healer_redeliver_passes_total{result="ok"}') >= 1, 20, 0.1)
    point = bdb.execute("SELECT value FROM kv WHERE key = ?", (f"redeliver:{bkey}",)).fetchone()
    check("a saved page on another host than GITHUB_API_URL is dropped: the pass lists from "
          "the newest and completes",
          total([h], 'healer_redeliver_passes_total{result="ok"}') >= 1
          and total([h], 'healer_redeliver_passes_total{result="error"}') == 0
          and "not on GITHUB_API_URL's origin" in h.log() and point
          and len(point[0].split()) == 2, (point, h.log()[-1500:]))
    h.stop()

    # a rate limit on the page a pass goes on from (R lies behind 1,150
    # newer deliveries): the pass stops and is not repeated at once, every
    # tick of the redelivery thread (HEALER_LEASE_SECONDS=3: every second),
    # against GitHub's Retry-After, but a minute later
    rl, rkey = 83, f"repo:{REPO}:83"
    rport = pgtest.steady_port()  # restarted on it
    dtest.http("POST", f"{api}/_stub/seed", {
        "hooks": {rkey: {"url": f"http://127.0.0.1:{rport}/webhook", "secret": hltest.SECRET}},
        "deliveries": {rkey: [item(1, "guid-r", 502, at=old, payload=job_event(303, 3003))] +
                       [item(i, f"guid-rl-{i}", 200, at=newer) for i in range(2, 1152)]}})
    dtest.http("POST", f"{api}/_stub/reset")
    dtest.http("POST", f"{api}/_stub/config", {"rules": [
        {"method": "POST", "path": f"/repos/{REPO}/hooks/{rl}/deliveries/1/attempts",
         "status": 429, "headers": {"Retry-After": "3600"},
         "body": {"message": "API rate limit exceeded"}}]})
    h = hltest.Healer(os.path.join(dtest.TMP, "ratelimited"), dict(benv, GITHUB_HOOK_ID=str(rl)),
                      name="rl", listen=f"127.0.0.1:{rport}")
    h.start()
    rids = {"1": "guid-r"}
    first = wait_for(lambda: asked_for(rids), 30, 0.1)
    time.sleep(5)
    asked = asked_for(rids)
    check("a rate-limited request on the page a pass goes on from stops the pass, which is "
          "not repeated at once (every second)",
          first == ["guid-r"] and asked == ["guid-r"] and "rate-limits redelivery" in h.log(),
          (asked, h.log()[-1500:]))
    h.stop()
    dtest.http("POST", f"{api}/_stub/config", {"rules": []})

    # the same long outage with a long HEALER_LEASE_SECONDS (600: the
    # leadership is renewed every 200 s): the pass that goes on from the
    # next page still comes at once, not a leadership period later
    ll, lkey = 84, f"repo:{REPO}:84"
    lport = pgtest.steady_port()  # restarted on it
    dtest.http("POST", f"{api}/_stub/seed", {
        "hooks": {lkey: {"url": f"http://127.0.0.1:{lport}/webhook", "secret": hltest.SECRET}},
        "deliveries": {lkey: [item(1, "guid-long", 502, at=old, payload=job_event(304, 3004))] +
                       [item(i, f"guid-ll-{i}", 200, at=newer) for i in range(2, 1152)]}})
    dtest.http("POST", f"{api}/_stub/reset")
    h = hltest.Healer(os.path.join(dtest.TMP, "longlease"),
                      dict(benv, GITHUB_HOOK_ID=str(ll), HEALER_LEASE_SECONDS="600"),
                      name="ll", listen=f"127.0.0.1:{lport}")
    h.start()
    lids = {"1": "guid-long"}
    asked = wait_for(lambda: asked_for(lids), 20, 0.1)
    check("with HEALER_LEASE_SECONDS=600 the pass that goes on from the next page still "
          "comes at once and asks for the failed delivery behind 1,150 newer ones",
          asked == ["guid-long"], (asked, h.log()[-1500:]))
    h.stop()

    # GITHUB_HOOK_REPOSITORY naming a repository since renamed: GitHub
    # answers the listing 301 and the redelivery 307 to /repositories/{id}/...
    # (before: "status 301" pass after pass, nothing redelivered)
    rn, rnkey = 86, f"repo:{REPO}:86"
    rnport = pgtest.steady_port()
    dtest.http("POST", f"{api}/_stub/seed", {
        "renames": {"acme/widgets-old": {"id": 8686, "to": REPO}},
        "hooks": {rnkey: {"url": f"http://127.0.0.1:{rnport}/webhook", "secret": hltest.SECRET}},
        "deliveries": {rnkey: [item(1, "guid-renamed", 502, at=newer,
                                    payload=job_event(305, 3005))]}})
    dtest.http("POST", f"{api}/_stub/reset")
    h = hltest.Healer(os.path.join(dtest.TMP, "renamed"),
                      dict(benv, GITHUB_HOOK_ID=str(rn), GITHUB_HOOK_REPOSITORY="acme/widgets-old"),
                      name="renamed", listen=f"127.0.0.1:{rnport}")
    h.start()

    def moved():
        return [r["path"] for r in dtest.http("GET", f"{api}/_stub/requests")
                if r["path"].startswith("/repositories/8686/hooks/86/deliveries")]
    wait_for(lambda: any(p.endswith("/attempts") for p in moved()), 20, 0.1)
    asked, moved = asked_for({"1": "guid-renamed"}), moved()
    check("GITHUB_HOOK_REPOSITORY under a renamed repository's old name: the listing's 301 and "
          "the redelivery's 307 are followed, the failed delivery asked for",
          asked and "guid-renamed" in asked and any(p.endswith("/attempts") for p in moved)
          and any(p.endswith("/deliveries") for p in moved), (asked, moved, h.log()[-1500:]))
    h.stop()

    # an unknown hook (404) and one the token may not read (403)
    dtest.http("POST", f"{api}/_stub/seed", {"hooks": {f"repo:{REPO}:79": {"forbid": True}},
                                             "deliveries": {f"repo:{REPO}:79": []}})
    for hook, what in ((78, "an unknown hook (404)"), (79, "a forbidden hook (403)")):
        d2 = os.path.join(dtest.TMP, f"hook{hook}")
        h = hltest.Healer(d2, dict(env, GITHUB_HOOK_ID=str(hook)))
        h.start()
        wait_for(lambda: total([h], 'healer_redeliver_passes_total{result="error"}') >= 1, 20)
        st, _ = h.request("GET", "/health")
        check(f"{what}: the pass fails, is counted, and the server keeps serving",
              total([h], 'healer_redeliver_passes_total{result="error"}') >= 1 and st == 200
              and "listing the GitHub hook's deliveries failed" in h.log(), h.log()[-1500:])
        h.stop()
    dtest.finish()


def hltest_time(rfc3339):
    """Seconds since the epoch of a "%Y-%m-%dT%H:%M:%SZ" time."""
    import calendar
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))


def _listed(api):
    """Every delivery of the hook as GitHub lists them (all pages)."""
    out, cursor = [], None
    import json
    import urllib.request
    for _ in range(100):
        q = "per_page=100" + (f"&cursor={cursor}" if cursor else "")
        req = urllib.request.Request(f"{api}/repos/{REPO}/hooks/{HOOK_ID}/deliveries?{q}",
                                     headers={"Authorization": f"Bearer {GTOKEN}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            out += json.loads(r.read())
            link = r.headers.get("Link") or ""
        if "cursor=" not in link:
            break
        cursor = link.split("cursor=", 1)[1].split(">", 1)[0]
    return out


if __name__ == "__main__":
    dtest.run(main)
