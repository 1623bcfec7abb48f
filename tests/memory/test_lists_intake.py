#!/usr/bin/env python3
"""test_lists_intake.py - dashboards that poll a filtered task list do not
hold up intake. GET /api/remediations filtered on a column no index leads
with (failure_type, kind, a repository) walks every task: tens of
milliseconds at 100,000 tasks. On SQLite the lists (and /api/status, a
task, its prompts) read through the server's own read-only handle of the
store, so a webhook's commit does not wait for them (when they held the
store's mutex, each delivery waited for the scan in progress: about a whole
scan at the median with one poller). And they run on reader threads of
their own, not on libmicrohttpd's request threads (two on a two-core
machine): when they ran there, two pollers kept both busy and a webhook
waited for a free thread (a median of about two scans). A real `healer
server` on a large ledger (tests/memory/insights_ledger.py), one client,
then two, polling such a list without pause, and webhooks sent one after
the other; their median answer time must stay far below what one scan
takes. A delivery is counted by /api/status (read on that handle) as soon
as it was answered. And a /metrics scrape is answered while more pollers
than the readers' queue holds keep it full; and a flood of /metrics
scrapes (an open route) does not keep /api/status out."""
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("HEALER_SOURCE_ROOT", "."), "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from insights_ledger import HEALER, seed  # noqa: E402
from tap import check, finish, run  # noqa: E402

TASKS = 100000
HOOKS = 21
# a failure type no seeded task has: the filter scans every task, answers none
LIST = "/api/remediations?failure_type=terraform&limit=50"
# more pollers than the readers take (2 read, 16 wait: src/http/http_impl.h)
POLLERS_FULL = 24


def request(port, method, path, body=None, headers=None):
    """(status, seconds, body) of one request on a new connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.monotonic()
    try:
        c.request(method, path, body, headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, time.monotonic() - t0, data
    finally:
        c.close()


def ping(port, i):
    body = b'{"zen":"Keep it logically awesome.","hook_id":%d}' % i
    return request(port, "POST", "/webhook", body,
                   {"Content-Type": "application/json", "X-GitHub-Event": "ping",
                    "X-GitHub-Delivery": "lists-intake-%d-%d" % (os.getpid(), i)})[:2]


def delivered(port):
    """The deliveries /api/status counts."""
    st, _, data = request(port, "GET", "/api/status")
    return json.loads(data)["deliveries"]["total"] if st == 200 else None


def polled(port, pollers, took, alone):
    """Webhooks sent while pollers clients poll the filtered list."""
    stop = threading.Event()
    polls = []

    def poller():
        while not stop.is_set():
            polls.append(request(port, "GET", LIST)[:2])

    threads = [threading.Thread(target=poller) for _ in range(pollers)]
    for th in threads:
        th.start()
    try:
        time.sleep(0.2)
        answers = []
        for i in range(HOOKS):
            answers.append(ping(port, 1000 * pollers + i))
            time.sleep(0.02)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=120)
    lat = [dt for _, dt in answers]
    p50 = statistics.median(lat)
    # one scan as long as it takes under this same load (the pollers' own
    # scans), when longer than alone: a busy machine slows the scans and
    # the webhooks alike, and the waits this guards against are whole scans
    poll_p50 = statistics.median(dt for _, dt in polls) if polls else 0.0
    scan = max(took, poll_p50)
    check("%d poller(s): every webhook sent while the list is polled is stored" % pollers,
          all(s == 202 for s, _ in answers), [s for s, _ in answers])
    check("%d poller(s): the pollers scanned the tasks while the webhooks were sent" % pollers,
          len(polls) >= 2 * pollers and all(st == 200 for st, _ in polls), polls)
    check("%d poller(s): a webhook does not wait for a list's scan: median answer under a "
          "third of one scan" % pollers,
          p50 < scan / 3,
          "scan alone %.1f ms; webhooks alone %s ms; while polled p50 %.1f ms, max "
          "%.1f ms; polls p50 %.1f ms" %
          (took * 1e3, [round(x * 1e3, 1) for x in alone], p50 * 1e3,
           max(lat) * 1e3, poll_p50 * 1e3))


def scraped(port):
    """/metrics scraped while more list pollers than the readers' queue
    holds keep it full: every scrape is answered, ahead of the queued scans."""
    stop = threading.Event()
    polls = []

    def poller():
        while not stop.is_set():
            st, dt = request(port, "GET", LIST)[:2]
            polls.append(st)
            if st != 200:
                time.sleep(0.01)

    threads = [threading.Thread(target=poller) for _ in range(POLLERS_FULL)]
    for th in threads:
        th.start()
    try:
        time.sleep(0.5)
        scrapes = []
        for _ in range(10):
            st, dt, body = request(port, "GET", "/metrics")
            scrapes.append((st, dt, b"healer_queue_depth" in body))
            time.sleep(0.05)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=120)
    check("with the readers' queue full (some list polls refused 503), every /metrics "
          "scrape is answered 200",
          503 in polls and all(st == 200 and ok for st, _, ok in scrapes),
          "polls: %d, refused %d; scrapes %s" %
          (len(polls), polls.count(503), [(st, round(dt * 1e3, 1)) for st, dt, _ in scrapes]))


def metrics_flooded(port):
    """/metrics (open, no authentication needed) flooded by more clients
    than the readers' queue holds: an /api/status read is still answered,
    never refused for the scrapes' sake."""
    stop = threading.Event()
    scrapes = []

    def scraper():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while not stop.is_set():
                c.request("GET", "/metrics")
                r = c.getresponse()
                r.read()
                scrapes.append(r.status)
        except (OSError, http.client.HTTPException):
            pass
        finally:
            c.close()

    threads = [threading.Thread(target=scraper) for _ in range(POLLERS_FULL)]
    for th in threads:
        th.start()
    try:
        time.sleep(0.5)
        reads = []
        for _ in range(30):
            reads.append(request(port, "GET", "/api/status")[:2])
            time.sleep(0.02)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=120)
    check("with /metrics flooded by %d clients, every /api/status read is answered 200"
          % POLLERS_FULL, all(st == 200 for st, _ in reads) and len(scrapes) > 100,
          "scrapes: %d, refused %d; reads %s" %
          (len(scrapes), scrapes.count(503), [(st, round(dt * 1e3, 1)) for st, dt in reads]))


def main():
    with tempfile.TemporaryDirectory(prefix="healer-lists-intake-") as tmp:
        data = os.path.join(tmp, "d")
        seed(data, TASKS)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp,
               "HEALER_DATA_DIR": data, "HEALER_DISPATCH": "none",
               "HEALER_LISTEN": "127.0.0.1:0", "HEALER_LOG_LEVEL": "warn"}
        pf = os.path.join(tmp, "port")
        log = open(os.path.join(tmp, "server.log"), "w")
        srv = subprocess.Popen([HEALER, "server", "--port-file", pf], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
        try:
            port = None
            for _ in range(300):
                if os.path.exists(pf) and open(pf).read().strip():
                    port = int(open(pf).read())
                    break
                time.sleep(0.05)
            if not port:
                raise RuntimeError("the server did not start: " + open(log.name).read()[-2000:])
            # one scan alone, after a warm-up of the page cache
            request(port, "GET", LIST)
            scans = [request(port, "GET", LIST) for _ in range(3)]
            took = min(dt for _, dt, _ in scans)
            check("the filtered list answers on the large ledger, empty",
                  all(st == 200 and json.loads(b)["remediations"] == [] for st, _, b in scans),
                  [(st, b[:200]) for st, _, b in scans])
            # read after write: each delivery is counted at once after its 202
            before = delivered(port)
            seen = []
            for i in range(3):
                st, _ = ping(port, i)
                seen.append((st, delivered(port)))
            check("a delivery is counted by /api/status right after its answer",
                  before is not None and seen == [(202, before + k + 1) for k in range(3)],
                  "before %s, then %s" % (before, seen))
            alone = [ping(port, 10 + i)[1] for i in range(5)]
            for pollers in (1, 2):
                polled(port, pollers, took, alone)
            scraped(port)
            metrics_flooded(port)
        finally:
            srv.terminate()
            try:
                srv.wait(timeout=30)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()
            log.close()
    finish()


run(main)
