#!/usr/bin/env python3
"""test_gated.py - the built-in rules give the same verdicts, candidates,
match counts and lines whether their patterns are scanned in two steps
(src/classify/gate.c: a literal of their own first, the whole pattern on the
lines where it matched) or whole: rules/default.yaml is rewritten with every
pattern in a group (which is never gated) and both classify every labelled
log, one by one (JSON Lines with --explain) and all together as one big log
(--log)."""
import json
import os
import re
import subprocess
import sys
import tempfile
sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests"))
from tap import check, finish  # noqa: E402

HEALER = os.environ["HEALER_BIN"]
ROOT = os.environ["HEALER_SOURCE_ROOT"]
tmp = tempfile.mkdtemp(prefix="healer-classify-gated-")
CASES = [os.path.join(ROOT, "tests", "classify", p) for p in
         ("real/tune.jsonl", "real/holdout.jsonl", "cases.jsonl", "corpus-dev.jsonl")]


def run(*args, stdin=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALER_")}
    p = subprocess.run([HEALER, *args], input=stdin, capture_output=True, text=True,
                       env=env, timeout=120)
    return p.returncode, p.stdout, p.stderr


def wrapped_rules():
    """rules/default.yaml with each item of a patterns or quote list in a group."""
    out, in_list = [], False
    item = re.compile(r"^(\s*- )(['\"])(.*)\2\s*$")
    with open(os.path.join(ROOT, "rules", "default.yaml"), encoding="utf-8") as f:
        for line in f:
            if re.match(r"^\s*(patterns|quote):\s*$", line):
                in_list = True
            elif re.match(r"^\s*-?\s*[a-z_]+:", line):
                in_list = False
            m = item.match(line) if in_list else None
            if m:
                line = "%s%s(%s)%s\n" % (m.group(1), m.group(2), m.group(3), m.group(2))
            out.append(line)
    path = os.path.join(tmp, "whole.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(out)
    return path


whole = wrapped_rules()
rc, out, err = run("check-rules", whole)
check("the rules with every pattern in a group load", rc == 0, err)
_, pats, _ = run("classify", "--dump-patterns")
_, wpats, _ = run("classify", "--rules", whole, "--dump-patterns")
pats, wpats = pats.splitlines(), wpats.splitlines()
# the error-line patterns built into the binary are the same in both
check("every rule pattern is wrapped, and only that",
      len(pats) == len(wpats) and
      all(w == p or w == "(" + p + ")" or (p.startswith("(?i)") and w == "(?i)(" + p[4:] + ")")
          for p, w in zip(pats, wpats)) and
      sum(w != p for p, w in zip(pats, wpats)) > 600, "%d against %d" % (len(pats), len(wpats)))

cases = []
for path in CASES:
    with open(path, encoding="utf-8") as f:
        cases += [l for l in f if l.strip()]
stdin = "".join(cases)
rc1, gated_out, e1 = run("classify", "--explain", stdin=stdin)
rc2, whole_out, e2 = run("classify", "--rules", whole, "--explain", stdin=stdin)
g, w = gated_out.splitlines(), whole_out.splitlines()
check("both classify the %d labelled logs" % len(cases),
      rc1 == 0 and rc2 == 0 and len(g) == len(w) == len(cases), e1 + e2)
diff = [i for i in range(min(len(g), len(w))) if g[i] != w[i]]
check("every verdict and every candidate's matches and lines are the same", not diff,
      "first difference at case %d:\n%s\n%s" % (diff[0], g[diff[0]], w[diff[0]]) if diff else "")
# gated patterns decide verdicts here: cargo test failures and clippy lints
# are found by a literal of theirs first ("... FAILED", "(clippy::")
fired = {json.loads(l).get("rule") for l in g}
check("verdicts of gated patterns are among them",
      {"rust-test-failed", "rust-clippy-lint"} <= fired, sorted(fired))

# one big log of every labelled log, many times over: several chunks and
# scanning threads, gated lines in every chunk
log = os.path.join(tmp, "all.log")
with open(log, "w", encoding="utf-8") as f:
    body = "\n".join(json.loads(l).get("log", "") for l in cases) + "\n"
    for _ in range(max(1, (20 << 20) // max(1, len(body)) + 1)):
        f.write(body)
rc1, a, e1 = run("classify", "--log", log, "--explain")
rc2, b, e2 = run("classify", "--rules", whole, "--log", log, "--explain")
check("a %d MB log of them all explains the same" % (os.path.getsize(log) >> 20),
      rc1 == 0 and rc2 == 0 and a == b and "matches" in a, (e1 + e2 + a[:2000] + b[:2000]))
finish()
