#!/usr/bin/env python3
"""run_fuzz.py - runs one libFuzzer target for a bounded time over a scratch
copy of its corpus (new inputs land in a temporary directory, the checked-in
corpus is only read). A crash's input is printed as hex and kept under
$HEALER_BUILD_ROOT/fuzz-artifacts/ so it can be added to the corpus as a
regression input. Prints TAP.

usage: run_fuzz.py FUZZER CORPUS_DIR SECONDS [MAX_LEN]"""
import os
import subprocess
import sys
import tempfile

fuzzer, corpus, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
max_len = int(sys.argv[4]) if len(sys.argv) > 4 else 4096
name = os.path.basename(fuzzer)
art = os.path.join(os.environ.get("HEALER_BUILD_ROOT", "."), "fuzz-artifacts", name)
os.makedirs(art, exist_ok=True)
with tempfile.TemporaryDirectory() as work:
    p = subprocess.run([fuzzer, "-max_total_time=%d" % seconds, "-max_len=%d" % max_len,
                        "-rss_limit_mb=2048", "-timeout=10", "-seed=%d" % (os.getpid() + 1),
                        "-artifact_prefix=" + art + "/", work, corpus],
                       capture_output=True, text=True, errors="replace",
                       timeout=seconds + 120)
ok = p.returncode == 0
print("TAP version 13\n1..1")
print("%s 1 - %s: libFuzzer ran %ds without a crash" % ("ok" if ok else "not ok", name, seconds))
stats = [l for l in p.stderr.splitlines() if l.startswith("Done ") or "#" in l[:12]]
if stats:
    print("# " + stats[-1])
if not ok:
    print("# " + p.stderr[-4000:].replace("\n", "\n# "))
    for f in sorted(os.listdir(art)):
        with open(os.path.join(art, f), "rb") as fh:
            print("# artifact %s: %s" % (f, fh.read(2048).hex()))
sys.exit(0 if ok else 1)
