#!/usr/bin/env python3
"""test_silent_peer.py - the CodeRun watch is taken over within
HEALER_LEASE_SECONDS (15 s) when its leader's node dies without a word (no
FIN, no RST: a lost node or a network partition), contract section 11.

The leadership is a session advisory lock on PostgreSQL; the session of a
replica that vanished silently ends only when the database server notices
its peer is gone, which by the system's TCP keepalive takes two hours.

Everything runs in a network namespace of its own (the machine's network
is untouched): a throw-away PostgreSQL listening on the namespace's
loopback and on one end of a veth pair; replica A in a second namespace
behind the other end (10.77.0.2), replica B on loopback. A leads the watch;
then A's link goes down and A is SIGKILLed (its FIN goes nowhere). B must
lead within 15 s. Needs root, unshare, ip and runuser (skipped otherwise).
Every wait is bounded. Standard library only; prints TAP.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.environ["HEALER_SOURCE_ROOT"]
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "pg"))
import pgtest  # noqa: E402
import tap  # noqa: E402
from tap import check  # noqa: E402

HEALER = os.environ["HEALER_BIN"]
LEASE_S = 15
A_ADDR, DB_ADDR = "10.77.0.2", "10.77.0.1"


def skip(why):
    print(f"TAP version 13\n1..0 # SKIP {why}")
    sys.exit(0)


def sh(*cmd, timeout=60):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stdout}{p.stderr}")
    return p.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leads(addr, port):
    """The replica's healer_watch_leader gauge, or None."""
    try:
        with urllib.request.urlopen(f"http://{addr}:{port}/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("healer_watch_leader "):
                    return line.split()[1] == "1"
    except OSError:
        pass
    return None


def wait(fn, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(step)
    return bool(fn())


def main(tmp):
    pg_bin = pgtest.PG_BIN
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    sh("ip", "addr", "add", f"{DB_ADDR}/24", "dev", "v0")
    sh("ip", "link", "set", "v0", "up")
    data, sock = os.path.join(tmp, "data"), os.path.join(tmp, "sock")
    os.makedirs(sock)
    for d in (tmp, sock):
        shutil.chown(d, "postgres")
    os.chmod(tmp, 0o755)
    sh("runuser", "-u", "postgres", "--", os.path.join(pg_bin, "initdb"), "-D", data,
       "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions", timeout=120)
    with open(os.path.join(data, "pg_hba.conf"), "a") as f:
        f.write(f"host all postgres {DB_ADDR}/24 trust\nhost all postgres 127.0.0.1/32 trust\n")
    port = free_port()
    sh("runuser", "-u", "postgres", "--", os.path.join(pg_bin, "pg_ctl"), "-D", data, "-w",
       "-t", "30", "-l", os.path.join(tmp, "pg.log"), "-o",
       f"-k {sock} -p {port} -c listen_addresses=127.0.0.1,{DB_ADDR} -c fsync=off", "start",
       timeout=60)
    procs = []
    try:
        sh("runuser", "-u", "postgres", "--", os.path.join(pg_bin, "psql"), "-h", sock,
           "-p", str(port), "-qc", "CREATE DATABASE h")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HEALER_", "GITHUB_", "KUBERNETES_", "PG"))}
        env.update(HEALER_DISPATCH="directory", HEALER_LEASE_SECONDS=str(LEASE_S),
                   HEALER_ALLOW_UNAUTHENTICATED="true", HEALER_LOG_LEVEL="info",
                   HEALER_REDELIVER_INTERVAL_MINS="0")
        # A: in a namespace of its own, behind v1 (moved in once it runs)
        a_env = dict(env, HEALER_DATABASE_URL=f"host={DB_ADDR} port={port} user=postgres dbname=h")
        a_log = open(os.path.join(tmp, "a.log"), "w")
        script = (f"i=0; while ! ip link show v1 >/dev/null 2>&1 && [ $i -lt 100 ]; do"
                  f" sleep 0.1; i=$((i+1)); done; ip link set lo up &&"
                  f" ip addr add {A_ADDR}/24 dev v1 && ip link set v1 up &&"
                  f" exec \"$0\" server --listen {A_ADDR}:8081 --data-dir {tmp}/a")
        a = subprocess.Popen(["unshare", "-n", "sh", "-c", script, HEALER], env=a_env,
                             stdout=a_log, stderr=a_log)
        procs.append(a)
        wait(lambda: os.path.exists(f"/proc/{a.pid}/ns/net")
             and os.readlink(f"/proc/{a.pid}/ns/net") != os.readlink("/proc/self/ns/net"), 10)
        sh("ip", "link", "set", "v1", "netns", str(a.pid))
        check("replica A leads the CodeRun watch", wait(lambda: leads(A_ADDR, 8081), 30),
              open(os.path.join(tmp, "a.log")).read()[-1500:])
        b_env = dict(env, HEALER_DATABASE_URL=f"host=127.0.0.1 port={port} user=postgres dbname=h")
        b_log = open(os.path.join(tmp, "b.log"), "w")
        b = subprocess.Popen([HEALER, "server", "--listen", "127.0.0.1:8082", "--data-dir",
                              f"{tmp}/b"], env=b_env, stdout=b_log, stderr=b_log)
        procs.append(b)
        wait(lambda: leads("127.0.0.1", 8082) is not None, 30)
        time.sleep(2)
        check("replica B follows while A leads", leads("127.0.0.1", 8082) is False)
        # A's node dies silently: its link goes down, then the process
        sh("nsenter", "-t", str(a.pid), "-n", "ip", "link", "set", "v1", "down")
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=10)
        t0 = time.monotonic()
        took_over = wait(lambda: leads("127.0.0.1", 8082), LEASE_S + 15, 0.2)
        took = time.monotonic() - t0
        check(f"replica B leads within HEALER_LEASE_SECONDS ({LEASE_S} s) of A's silent death",
              took_over and took <= LEASE_S + 1,
              f"took over: {took_over} after {took:.1f} s\n"
              + open(os.path.join(tmp, "b.log")).read()[-1500:])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(pg_bin, "pg_ctl"), "-D",
                        data, "-m", "immediate", "-w", "-t", "30", "stop"],
                       capture_output=True, timeout=60)
    tap.finish()


if __name__ == "__main__":
    if os.environ.get("HEALER_TEST_NETNS") != "1":
        if os.geteuid() != 0:
            skip("needs root (network namespaces)")
        for tool in ("unshare", "ip", "nsenter", "runuser"):
            if not shutil.which(tool):
                skip(f"{tool} not found")
        if not os.access(os.path.join(pgtest.PG_BIN, "initdb"), os.X_OK):
            skip("PostgreSQL's initdb not found")
        probe = subprocess.run(["unshare", "-n", "ip", "link", "add", "v0", "type", "veth",
                                "peer", "name", "v1"], capture_output=True, timeout=30)
        if probe.returncode != 0:
            skip("no network namespace with a veth pair here")
        env = dict(os.environ, HEALER_TEST_NETNS="1")
        try:
            sys.exit(subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__)],
                                    env=env, timeout=240).returncode)
        except subprocess.TimeoutExpired:
            print("TAP version 13\n1..1\nnot ok 1 - the test finished within 240 s")
            sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="healer-silent-")
    try:
        tap.run(lambda: main(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
