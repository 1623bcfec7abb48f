#!/usr/bin/env python3
"""pgrun.py - runs a command against a throw-away PostgreSQL:
    pgrun.py COMMAND [ARGS...]

Creates a private cluster in a temporary directory (a copy of a template
made once by initdb of Debian's PostgreSQL 15, as the `postgres` user when
run as root: initdb refuses root), starts it on its own socket directory
and a free port on 127.0.0.1 (fsync off: a test cluster; commits still
return only once written), runs
COMMAND with HEALER_TEST_PG_SOCKET, _PORT, _DATA and _LOG describing it,
then stops it and removes the directory, also when COMMAND fails, times
out or is killed by SIGTERM/SIGINT. Every wait is bounded. Local
connections are trusted; TCP connections need a password (SCRAM), except
the superuser's. Exits with COMMAND's status. Standard library only.
"""
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgtest  # noqa: E402


class Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise Stop(signum)


def _initdb(initdb, data):
    p = subprocess.run(pgtest._as_cluster_user(
        [initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
         "--no-sync", "--no-instructions"]), capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        print("pgrun: initdb failed: " + p.stdout + p.stderr, file=sys.stderr)
    return p.returncode == 0


def _copy(src, dst):
    # cp -a keeps the owner (postgres) and the modes initdb gave
    p = subprocess.run(["cp", "-a", src, dst], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        print(f"pgrun: copying the cluster to {dst} failed: " + p.stderr, file=sys.stderr)
    return p.returncode == 0


def _make_template(initdb, root, template):
    """initdb in the temporary directory (the build directory may be out of
    the postgres user's reach), copied beside the build and renamed into
    place."""
    tmp = tempfile.mkdtemp(prefix="healer-pg-template-")
    work = tempfile.mkdtemp(prefix="pg-template.", dir=root)
    try:
        if os.geteuid() == 0:
            os.chmod(tmp, 0o755)
            shutil.chown(tmp, "postgres")
        data = os.path.join(tmp, "data")
        if not _initdb(initdb, data) or not _copy(data, os.path.join(work, "data")):
            return False
        os.rename(os.path.join(work, "data"), template)
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def cluster_from_template(initdb, data):
    """Makes the cluster at DATA: a copy of a freshly initdb'd template kept
    in the build directory (HEALER_BUILD_ROOT, or HEALER_BIN's), made once
    under a lock and put in place by a rename, so a killed run never leaves
    half a template; a copy costs a third of an initdb. Without a build
    directory, a plain initdb."""
    root = os.environ.get("HEALER_BUILD_ROOT") or os.path.dirname(
        os.environ.get("HEALER_BIN", ""))
    if not root or not os.path.isdir(root):
        return _initdb(initdb, data)
    version = os.path.basename(os.path.dirname(pgtest.PG_BIN))
    template = os.path.join(root, f"pg-template-{version}")
    with open(os.path.join(root, "pg-template.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(template) and not _make_template(initdb, root, template):
            return False
    return _copy(template, data)


def main(argv):
    if not argv:
        print("usage: pgrun.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    initdb = os.path.join(pgtest.PG_BIN, "initdb")
    if not os.access(initdb, os.X_OK):
        print(f"pgrun: {initdb} is missing (Debian package postgresql)", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="healer-pg-")
    data, sock, log = (os.path.join(tmp, "data"), os.path.join(tmp, "sock"),
                       os.path.join(tmp, "server.log"))
    os.makedirs(sock)
    if os.geteuid() == 0:
        os.chmod(tmp, 0o755)
        shutil.chown(tmp, "postgres")
        shutil.chown(sock, "postgres")
    port = pgtest.steady_port()  # restarted on it by the outage tests
    env = dict(os.environ, HEALER_TEST_PG_SOCKET=sock, HEALER_TEST_PG_PORT=str(port),
               HEALER_TEST_PG_DATA=data, HEALER_TEST_PG_LOG=log)
    os.environ.update(env)
    hba = ("local all all trust\n"
           "host all postgres 127.0.0.1/32 trust\n"
           "host all all 127.0.0.1/32 scram-sha-256\n")
    child = None
    started = False
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    t0 = time.monotonic()
    try:
        if not cluster_from_template(initdb, data):
            return 1
        with open(os.path.join(data, "pg_hba.conf"), "w") as f:
            f.write(hba)
        if os.geteuid() == 0:
            shutil.chown(os.path.join(data, "pg_hba.conf"), "postgres")
        pgtest.start()
        started = True
        if not pgtest.wait_ready(30):
            print("pgrun: the server did not answer", file=sys.stderr)
            return 1
        print(f"pgrun: throw-away PostgreSQL on port {port} ready in "
              f"{time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
        child = subprocess.Popen(argv, env=env)
        return child.wait()
    except Stop:
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if child and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if started:
            try:
                pgtest.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print(f"pgrun: {e}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
