#!/usr/bin/env python3
"""run_fuzz.py - runs the libFuzzer template target for a bounded time over a
scratch copy of the corpus (new inputs land in a temporary directory, the
checked-in corpus is only read). Prints TAP.

usage: run_fuzz.py FUZZER CORPUS_DIR SECONDS"""
import subprocess
import sys
import tempfile

fuzzer, corpus, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
with tempfile.TemporaryDirectory() as work:
    p = subprocess.run([fuzzer, "-max_total_time=%d" % seconds, "-max_len=4096",
                        "-rss_limit_mb=2048", "-timeout=10", work, corpus],
                       capture_output=True, text=True, timeout=seconds + 60)
ok = p.returncode == 0
print("TAP version 13\n1..1")
print("%s 1 - libFuzzer ran %ds without a crash" % ("ok" if ok else "not ok", seconds))
if not ok:
    print("# " + p.stderr[-3000:].replace("\n", "\n# "))
sys.exit(0 if ok else 1)
