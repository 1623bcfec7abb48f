#!/usr/bin/env python3
"""test_insights_intake.py - a dashboard that polls the insights does not
hold up intake. GET /api/insights reads every task of the ledger (about a
second at 100,000 tasks); it reads through the server's own read-only
handle of the store, so a webhook stored while it runs does not wait for it
(when it shared the store's mutex, each delivery waited up to a whole
computation: half a second at the median with one poller). And it runs on
reader threads of its own, not on libmicrohttpd's request threads (two on a
two-core machine): when it ran there, two pollers kept both busy and a
webhook waited for a free thread, up to a whole computation. A real
`healer server` on a large ledger (tests/memory/insights_ledger.py), one
client, then two, polling /api/insights without pause, and webhooks sent
one after the other; their median answer time must stay far below what one
insights computation takes. A burst of readers beyond what the reader
threads' queue holds is answered 503 with Retry-After at once."""
import http.client
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

TASKS = 40000
HOOKS = 21
BURST = 60


def request(port, method, path, body=None, headers=None):
    """(status, seconds) of one request on a new connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.monotonic()
    try:
        c.request(method, path, body, headers or {})
        r = c.getresponse()
        r.read()
        return r.status, time.monotonic() - t0
    finally:
        c.close()


def ping(port, i):
    body = b'{"zen":"Keep it logically awesome.","hook_id":%d}' % i
    return request(port, "POST", "/webhook", body,
                   {"Content-Type": "application/json", "X-GitHub-Event": "ping",
                    "X-GitHub-Delivery": "insights-intake-%d-%d" % (os.getpid(), i)})


def polled(port, pollers, took, alone):
    """Webhooks sent while pollers clients poll /api/insights."""
    stop = threading.Event()
    polls = []

    def poller():
        while not stop.is_set():
            polls.append(request(port, "GET", "/api/insights"))

    threads = [threading.Thread(target=poller) for _ in range(pollers)]
    for th in threads:
        th.start()
    try:
        time.sleep(min(took, 2.0) / 2)
        answers = []
        # HOOKS at least, and on until two computations per poller ended
        # (one may take longer than HOOKS webhooks on a loaded machine)
        until = time.time() + 60
        while len(answers) < HOOKS or (len(polls) < 2 * pollers and time.time() < until):
            answers.append(ping(port, 1000 * pollers + len(answers)))
            time.sleep(0.03)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=120)
    lat = [dt for _, dt in answers]
    p50 = statistics.median(lat)
    check("%d poller(s): every webhook sent while the insights are polled is stored" % pollers,
          all(s == 202 for s, _ in answers), [s for s, _ in answers])
    check("%d poller(s): the pollers computed the insights while the webhooks were sent"
          % pollers, len(polls) >= 2 * pollers and all(st == 200 for st, _ in polls), polls)
    check("%d poller(s): a webhook does not wait for the insights being computed: median "
          "answer under a fifth of one computation (and under 100 ms)" % pollers,
          p50 < min(took / 5, 0.1),
          "insights %.3f s; webhooks alone %s ms; while polled p50 %.1f ms, max "
          "%.1f ms" % (took, [round(x * 1e3, 1) for x in alone], p50 * 1e3, max(lat) * 1e3))


def burst(port):
    """BURST clients ask for the insights at once: the reads waiting for a
    reader thread are bounded, the rest are told to come back later."""
    answers = []

    def one():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            c.request("GET", "/api/insights")
            r = c.getresponse()
            r.read()
            answers.append((r.status, r.getheader("Retry-After")))
        except OSError as e:
            answers.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=one) for _ in range(BURST)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    ok = sum(1 for a in answers if a[0] == 200)
    check("a burst of %d insights reads: some are read, the waiting ones are bounded and "
          "the rest answered 503 with Retry-After" % BURST,
          len(answers) == BURST and ok >= 2 and ok < BURST and
          all(a in ((200, None), (503, "5")) for a in answers), answers)


def main():
    with tempfile.TemporaryDirectory(prefix="healer-insights-intake-") as tmp:
        data = os.path.join(tmp, "d")
        env = seed(data, TASKS)
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
            # one computation alone, after a warm-up of the page cache
            request(port, "GET", "/api/insights")
            st, took = request(port, "GET", "/api/insights")
            check("GET /api/insights answers on the large ledger", st == 200, st)
            alone = [ping(port, i)[1] for i in range(5)]
            for pollers in (1, 2):
                polled(port, pollers, took, alone)
            burst(port)
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
