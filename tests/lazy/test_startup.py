#!/usr/bin/env python3
"""test_startup.py - commands that do not use the network start without
opening libcurl, libpq or libmicrohttpd (src/lazy/): the dynamic loader's
own trace (LD_DEBUG=libs) lists every shared object a run opens."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tap import check, finish  # noqa: E402

HEALER = os.environ["HEALER_BIN"]
ROOT = os.environ["HEALER_SOURCE_ROOT"]
NETWORK_LIBS = ("libcurl.so", "libpq.so", "libmicrohttpd.so")


def opened(args, stdin=None):
    env = dict(os.environ, LD_DEBUG="libs")
    p = subprocess.run([HEALER] + args, input=stdin, capture_output=True, env=env,
                       timeout=30)
    libs = [ln for ln in p.stderr.decode(errors="replace").splitlines()
            if "calling init:" in ln]
    return p.returncode, libs


def main():
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "job.log")
        with open(log, "w") as f:
            f.write("error[E0308]: mismatched types\n")
        tmpl = os.path.join(tmp, "t.hbs")
        with open(tmpl, "w") as f:
            f.write("hello {{name}}\n")
        data = os.path.join(tmp, "d.json")
        with open(data, "w") as f:
            f.write('{"name": "x"}')
        cmds = [
            ["--version"],
            ["classify", "--log", log, "--step", "cargo build"],
            ["check-rules", os.path.join(ROOT, "rules", "default.yaml")],
            ["render", tmpl, data],
            ["normalize", "--event", "workflow_job",
             os.path.join(ROOT, "examples", "workflow_job_failure.json")],
        ]
        for args in cmds:
            rc, libs = opened(args)
            name = " ".join(a if not a.startswith("/") else os.path.basename(a) for a in args)
            check(f"'healer {name}' succeeds", rc == 0, f"exit {rc}")
            # the trace is real: the libraries it does need are listed
            check(f"'healer {name}' is traced", any("libc.so" in ln for ln in libs),
                  "\n".join(libs))
            net = [ln for ln in libs if any(n in ln for n in NETWORK_LIBS)]
            check(f"'healer {name}' opens no network library", not net, "\n".join(net))
    finish()


if __name__ == "__main__":
    main()
