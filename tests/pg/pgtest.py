"""pgtest.py - the throw-away PostgreSQL of the test suite, and the
backend-neutral store access of the integration drivers. Standard library
only.

A test run on PostgreSQL is started by pgrun.py, which copies a private
cluster (from a template initdb'd once per build by Debian's PostgreSQL 15;
as the `postgres` user when run as root, since initdb refuses root) into a
temporary directory, starts it with its own socket directory and a free
port on 127.0.0.1, runs the test with
HEALER_TEST_PG_* describing it, and stops and removes it afterwards. This
module reads that description:

  enabled()            True when the test runs on PostgreSQL
  create_database()    a fresh database; returns healer's URL for it
  admin()              a superuser session (pgwire.Connection) on 'postgres'
  stop() / start()     stop the server (fast shutdown) / start it again
  store_env(data_dir)  what a `healer server` for data_dir adds to its
                       environment: {} on SQLite, else HEALER_DATABASE_URL of
                       the data directory's own fresh database (the same one
                       across restarts)
  store_db(data_dir)   a connection to that store with sqlite3's execute()
                       / fetchone() / fetchall(): sqlite3 on data_dir's
                       healer.db, or pgwire on its database
  integrity(con)       "ok" when the store is consistent: SQLite's
                       integrity_check; on PostgreSQL the delivery counters
                       equal the counts of the rows they count
"""
import os
import random
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgwire  # noqa: E402

PG_BIN = os.environ.get("HEALER_PG_BIN", "/usr/lib/postgresql/15/bin")
_databases = {}  # data_dir -> database name


def enabled():
    return bool(os.environ.get("HEALER_TEST_PG_SOCKET"))


def _env(name):
    v = os.environ.get(name)
    if not v:
        raise RuntimeError(f"{name} is not set: run the test through tests/pg/pgrun.py")
    return v


def socket_dir():
    return _env("HEALER_TEST_PG_SOCKET")


def port():
    return int(_env("HEALER_TEST_PG_PORT"))


def connect(dbname="postgres", user="postgres", host=None, password=None, timeout=30):
    return pgwire.Connection(host or socket_dir(), port(), user, dbname, password=password,
                             timeout=timeout)


def admin():
    return connect("postgres")


def url_for(dbname):
    """healer's URL of a database of the test cluster (over its socket)."""
    return f"postgresql:///{dbname}?host={socket_dir()}&port={port()}&user=postgres"


def create_database(prefix="hl"):
    name = f"{prefix}_{os.getpid()}_{len(_databases)}_{os.urandom(3).hex()}"
    with admin() as con:
        con.query(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
    _databases[f"#{name}"] = name
    return url_for(name)


def _as_cluster_user(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def _ctl(*args, timeout=60):
    cmd = _as_cluster_user([os.path.join(PG_BIN, "pg_ctl"), "-D", _env("HEALER_TEST_PG_DATA"),
                            *args])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def server_options(sock, prt):
    return (f"-k {sock} -p {prt} -h 127.0.0.1 -c fsync=off -c full_page_writes=off"
            " -c synchronous_commit=on -c max_connections=200 -c shared_buffers=32MB"
            " -c listen_addresses=127.0.0.1")


def stop(mode="fast"):
    """Stops the test server (fast: sessions are terminated)."""
    p = _ctl("stop", "-m", mode, "-w", "-t", "30")
    if p.returncode != 0:
        raise RuntimeError("pg_ctl stop failed: " + p.stdout + p.stderr)


def start():
    """Starts the test server again, with the same socket and port."""
    p = _ctl("start", "-w", "-t", "30", "-l", _env("HEALER_TEST_PG_LOG"),
             "-o", server_options(socket_dir(), port()))
    if p.returncode != 0:
        raise RuntimeError("pg_ctl start failed: " + p.stdout + p.stderr)


def wait_ready(timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with admin() as con:
                con.query("SELECT 1")
            return True
        except (OSError, pgwire.Error):
            time.sleep(0.05)
    return False


# ---- the store of a healer data directory, on either backend ----

def store_env(data_dir):
    if not enabled():
        return {}
    key = os.path.abspath(data_dir)
    if key not in _databases:
        _databases[key] = create_database("store")
    return {"HEALER_DATABASE_URL": _databases[key]}


def store_db(data_dir):
    if not enabled():
        return sqlite3.connect(os.path.join(data_dir, "healer.db"), timeout=10)
    url = store_env(data_dir)["HEALER_DATABASE_URL"]
    return connect(url.split("///", 1)[1].split("?", 1)[0])


def store_exec(data_dir, sql, params=()):
    """Runs one statement on data_dir's store, whichever the backend, and
    commits it."""
    con = store_db(data_dir)
    try:
        con.execute(sql, params)
        if hasattr(con, "commit"):
            con.commit()
    finally:
        con.close()


def integrity(con):
    if isinstance(con, sqlite3.Connection):
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    counters = ("SELECT event_name, state, reason, sum(n) FROM delivery_counts"
                " GROUP BY 1, 2, 3 HAVING sum(n) <> 0")
    rows = ("SELECT event_name, state, reason, sum(n) FROM (SELECT event_name, state,"
            " COALESCE(reason, '') AS reason, count(*) AS n FROM deliveries GROUP BY 1, 2, 3"
            " UNION ALL SELECT event_name, state, reason, n FROM delivery_counts_pruned) r"
            " GROUP BY 1, 2, 3")
    wrong = con.query(f"SELECT count(*) FROM (({counters} EXCEPT {rows}) UNION ALL"
                      f" ({rows} EXCEPT {counters})) x").fetchone()[0]
    return "ok" if wrong == 0 else f"{wrong} delivery counters differ from the rows"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    prt = s.getsockname()[1]
    s.close()
    return prt


def steady_port():
    """A free port below the kernel's ephemeral range, for a server stopped
    and started again on it: a port of free_port() is the kernel's to hand to
    the next bind(0) or connect of any process (a concurrent test's stub) as
    soon as it is closed."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rnd = random.Random(os.getpid() ^ time.time_ns())
    for _ in range(200):
        prt = rnd.randrange(20000, max(20001, min(low, 32768)))
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", prt))
            return prt
        except OSError:
            continue
        finally:
            s.close()
    return free_port()
