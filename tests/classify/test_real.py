#!/usr/bin/env python3
"""test_real.py - healer's classifier on the real CI-failure corpus
(tests/classify/real/: logs from public issues that nobody here wrote).

Usage: test_real.py [--rules FILE] [--min-agent A] [--min-type T] [--min-evidence E]
                    [--cases] CASES.jsonl...

Runs `healer classify` (HEALER_BIN, built-in rules) over every case of every file
and prints, as TAP comments, for each file and for all files together: agent,
failure-type and evidence accuracy, per agent and per type, the confusion pairs
(expected type -> classified type), and the same numbers for the first-match
router (below). --cases also lists every case. The TAP checks fail when

  - classify does not exit 0 with one verdict per case;
  - a case's expected_evidence is not a substring of one of its log lines;
  - the rules file (--rules, for the first-match router) does not hold exactly
    the patterns the binary was built with (`healer classify --dump-patterns`);
  - agent, failure-type or evidence accuracy over all files is below its
    threshold (0 when not given).

Evidence. Each case has `expected_evidence`: a string or a list of strings, the
text of the line a human would quote as the cause (for a test run, a failing
test's line, its panic/assertion or the run's failure summary; for a cascade,
the first error). A verdict's evidence is ok when its evidence.line_number is a
line of the log (1-based, split at '\\n') that contains one of those strings.
`expected_evidence: null` says the log has no line that shows the cause (for
example only a wrapper's exit status, the real output went elsewhere): the
verdict's evidence is then ok only when it carries a non-empty evidence.reason.

The first-match router is the seed's routing, replayed over the same rules
file: rules in file order, the first whose conditions hold wins (the event is
in `events`, the ArgoCD status in `argocd`, a name glob matches when
`require_context` is set, one of its `patterns` matches a cleaned log line;
rules without patterns fire on name globs or changed files; `quote` patterns
are not used); no scoring; its evidence is the first line its first matching
pattern matched.
"""
import fnmatch
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
AGENTS = ["rex", "blaze", "bolt", "cipher", "atlas"]
TYPE_AGENT = {}
for _t in ("rust_clippy", "rust_test", "rust_build", "rust_deps"):
    TYPE_AGENT[_t] = "rex"
for _t in ("frontend_deps", "frontend_typecheck", "frontend_lint", "frontend_test",
           "frontend_build"):
    TYPE_AGENT[_t] = "blaze"
for _t in ("docker_build", "helm", "kubernetes_manifest", "argocd_sync", "terraform",
           "yaml_syntax", "infra_runner"):
    TYPE_AGENT[_t] = "bolt"
for _t in ("security_dependabot", "security_code_scan", "security_secret",
           "security_vulnerability"):
    TYPE_AGENT[_t] = "cipher"
for _t in ("merge_conflict", "github_workflow", "github_permission", "release_publish",
           "general"):
    TYPE_AGENT[_t] = "atlas"
TYPES = list(TYPE_AGENT)


# --------------------------------------------------------------------------
# The rules file, read with the standard library: the subset of YAML that
# rules files use (block list of rule mappings; scalars, quoted scalars and
# flow lists of scalars; `patterns:` and `quote:` also as block lists).

def _scalar(s):
    s = s.strip()
    if s.startswith("'"):
        assert s.endswith("'"), s
        return s[1:-1].replace("''", "'")
    if s.startswith('"'):
        return json.loads(s)
    if s in ("true", "false"):
        return s == "true"
    try:
        return float(s)
    except ValueError:
        return s


def _flow_list(s):
    s = s.strip()
    assert s.startswith("[") and s.endswith("]"), s
    items, cur, q = [], "", None
    for ch in s[1:-1]:
        if q:
            cur += ch
            if ch == q:
                q = None
        elif ch in "'\"":
            q = ch
            cur += ch
        elif ch == ",":
            items.append(_scalar(cur))
            cur = ""
        else:
            cur += ch
    if cur.strip():
        items.append(_scalar(cur))
    return items


def load_rules(path):
    rules, rule, in_rules, key = [], None, False, None
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" ") and not line.startswith("-"):
            in_rules = line.startswith("rules:")
            continue
        if not in_rules:
            continue
        m = re.match(r"^- name: (.*)$", line)
        if m:
            rule = {"name": _scalar(m.group(1)), "patterns": [], "quote": []}
            rules.append(rule)
            key = None
            continue
        m = re.match(r"^    - (.*)$", line)
        if m and key in ("patterns", "quote"):
            rule[key].append(_scalar(m.group(1)))
            continue
        m = re.match(r"^  ([a-z_]+):(.*)$", line)
        assert m and rule is not None, "unexpected line in rules: %r" % line
        key, val = m.group(1), m.group(2).strip()
        if key in ("patterns", "quote") and not val:
            continue
        rule[key] = _flow_list(val) if val.startswith("[") else _scalar(val)
    return rules


# --------------------------------------------------------------------------
# The first-match router.

_TS = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                 r"(Z|[+-][0-9]{2}:[0-9]{2}) ?")
_ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\n]*(\x07|\x1b\\)|.)")
_BUILDKIT = re.compile(r"^#[0-9]+ [0-9]+\.[0-9]+( |$)")


def clean_line(x):
    """Roughly healer's preprocessing of one line (classify_int.h)."""
    x = _ANSI.sub("", _TS.sub("", x, count=1)).rstrip("\r")
    if x.startswith("##[group]"):
        x = x[9:]
    elif x.startswith("##[endgroup]"):
        x = ""
    x = _BUILDKIT.sub("", x, count=1)
    y = x[9:] if x.startswith("##[error]") else x
    y = y[7:] if y.startswith("Error: ") else y
    if y.startswith("Process completed with exit code") and "code 137" not in y:
        x = ""
    return x


def first_match(rules, case):
    lines = [clean_line(x) for x in (case.get("log") or "").split("\n")]
    for r in rules:
        if r.get("events") and case.get("event") not in r["events"]:
            continue
        if r.get("argocd") and case.get("argocd_sync") not in r["argocd"] and \
                case.get("argocd_health") not in r["argocd"]:
            continue
        ctx = any(fnmatch.fnmatch((case.get(field) or "").lower(), g.lower())
                  for field, key in (("workflow_name", "workflow"), ("job_name", "job"),
                                     ("failed_step", "step"))
                  for g in r.get(key, []) if case.get(field))
        if r.get("require_context") and not ctx:
            continue
        if r["patterns"]:
            flags = re.I if r.get("caseless") else 0
            hit = 0
            for p in r["patterns"]:
                rx = re.compile(p, flags)
                hit = next((i for i, x in enumerate(lines, 1) if rx.search(x)), 0)
                if hit:
                    break
            if hit:
                return r, hit
            continue
        files = any(fnmatch.fnmatch(os.path.basename(f), g) or fnmatch.fnmatch(f, g)
                    for f in case.get("changed_files") or [] for g in r.get("files", []))
        if r.get("events") or r.get("argocd") or ctx or files:
            return r, 0
    return None, 0


# --------------------------------------------------------------------------

def evidence_ok(case, line_number, reason):
    want = case.get("expected_evidence")
    if want is None:
        return bool(reason)
    want = [want] if isinstance(want, str) else want
    lines = (case.get("log") or "").split("\n")
    if not line_number or line_number < 1 or line_number > len(lines):
        return False
    return any(w in lines[line_number - 1] for w in want)


def pct(a, n):
    return "%5.1f%%" % (100.0 * a / n) if n else "   - "


def report(out, title, rows):
    """rows: dicts with case, agent, type, ev (healer) and fm_agent, fm_type, fm_ev."""
    n = len(rows)
    if n == 0:
        return
    ha = sum(r["agent"] == r["case"]["expected_agent"] for r in rows)
    ht = sum(r["type"] == r["case"]["expected_failure_type"] for r in rows)
    he = sum(r["ev"] for r in rows)
    fa = sum(r["fm_agent"] == r["case"]["expected_agent"] for r in rows)
    ft = sum(r["fm_type"] == r["case"]["expected_failure_type"] for r in rows)
    fe = sum(r["fm_ev"] for r in rows)
    out.append("%s: %d cases" % (title, n))
    out.append("  %-22s %-16s %-16s %-16s" % ("", "agent", "type", "evidence"))
    out.append("  %-22s %s (%3d) %s (%3d) %s (%3d)" % ("healer", pct(ha, n), ha, pct(ht, n), ht,
                                                      pct(he, n), he))
    out.append("  %-22s %s (%3d) %s (%3d) %s (%3d)" % ("first-match router", pct(fa, n), fa,
                                                      pct(ft, n), ft, pct(fe, n), fe))
    if rows[0].get("seed") is not None:
        sa = sum(r["seed"][0] == r["case"]["expected_agent"] for r in rows)
        st = sum(r["seed"][1] == r["case"]["expected_failure_type"] for r in rows)
        out.append("  %-22s %s (%3d) %s (%3d)" % ("seed router (bench)", pct(sa, n), sa,
                                                  pct(st, n), st))
    out.append("  per agent (healer agent / type / evidence | first-match agent / type):")
    for a in AGENTS:
        sub = [r for r in rows if r["case"]["expected_agent"] == a]
        if sub:
            m = len(sub)
            out.append("    %-7s %3d  %s %s %s | %s %s" % (
                a, m, pct(sum(r["agent"] == a for r in sub), m),
                pct(sum(r["type"] == r["case"]["expected_failure_type"] for r in sub), m),
                pct(sum(r["ev"] for r in sub), m),
                pct(sum(r["fm_agent"] == a for r in sub), m),
                pct(sum(r["fm_type"] == r["case"]["expected_failure_type"] for r in sub), m)))
    out.append("  per type (healer type / evidence | first-match type):")
    for t in TYPES:
        sub = [r for r in rows if r["case"]["expected_failure_type"] == t]
        if sub:
            m = len(sub)
            out.append("    %-24s %3d  %s %s | %s" % (
                t, m, pct(sum(r["type"] == t for r in sub), m), pct(sum(r["ev"] for r in sub), m),
                pct(sum(r["fm_type"] == t for r in sub), m)))
    pairs = Counter((r["case"]["expected_failure_type"], r["type"]) for r in rows
                    if r["type"] != r["case"]["expected_failure_type"])
    out.append("  confusion pairs (expected -> healer): %s" % (
        "none" if not pairs else ""))
    for (e, g), k in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])):
        ids = [r["case"]["id"] for r in rows
               if (r["case"]["expected_failure_type"], r["type"]) == (e, g)]
        out.append("    %-24s -> %-24s %d  %s" % (e, g, k, " ".join(ids)))
    bad_ev = [r["case"]["id"] for r in rows if not r["ev"]]
    out.append("  evidence not ok: %s" % (" ".join(bad_ev) if bad_ev else "none"))


def load_seed_router():
    """The original router of bench/classify/compare_original.py, if present."""
    path = os.path.join(HERE, "..", "..", "bench", "classify", "compare_original.py")
    if not os.path.exists(path):
        return None
    import importlib.util
    spec = importlib.util.spec_from_file_location("compare_original", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, "original", None)


def main(argv):
    rules_path = os.path.join(HERE, "..", "..", "rules", "default.yaml")
    mins = {"agent": 0.0, "type": 0.0, "evidence": 0.0}
    files, list_cases = [], False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--rules":
            rules_path = argv[i + 1]
            i += 2
        elif a.startswith("--min-"):
            mins[a[6:]] = float(argv[i + 1])
            i += 2
        elif a == "--cases":
            list_cases = True
            i += 1
        else:
            files.append(a)
            i += 1
    healer = os.environ["HEALER_BIN"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALER_")}
    checks, out = [], []

    rules = load_rules(rules_path)
    dumped = subprocess.run([healer, "classify", "--dump-patterns"], capture_output=True,
                            text=True, env=env, timeout=50).stdout.splitlines()
    mine = [("(?i)" if r.get("caseless") else "") + p for r in rules
            for p in r["patterns"] + r["quote"]]
    checks.append(("the rules file holds the patterns healer was built with (%d)" % len(mine),
                   dumped[:len(mine)] == mine,
                   "first difference: %s" % next(
                       ((a, b) for a, b in zip(dumped, mine) if a != b), "(length)")))
    seed = load_seed_router()

    all_rows = []
    for path in files:
        cases = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
        bad_labels = []
        for c in cases:
            want = c.get("expected_evidence")
            want = [] if want is None else [want] if isinstance(want, str) else want
            lines = c["log"].split("\n")
            for w in want:
                if not w or not any(w in x for x in lines):
                    bad_labels.append("%s: %r" % (c["id"], w))
        checks.append(("%s: every expected_evidence is a substring of a log line" %
                       os.path.basename(path), not bad_labels, "\n".join(bad_labels)))
        inp = "".join(json.dumps({k: v for k, v in c.items() if not k.startswith("expected_")})
                      + "\n" for c in cases)
        p = subprocess.run([healer, "classify"], input=inp, capture_output=True, text=True,
                           env=env, timeout=100)
        outs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        ok = p.returncode == 0 and len(outs) == len(cases)
        checks.append(("%s: classify exits 0 with one verdict per case (%d)" % (
            os.path.basename(path), len(cases)), ok,
            "rc=%d stderr=%s" % (p.returncode, p.stderr.strip())))
        if not ok:
            continue
        rows = []
        for c, o in zip(cases, outs):
            ev = o.get("evidence") or {}
            r, hit = first_match(rules, c)
            ftype = r["type"] if r else "general"
            row = {"case": c, "agent": o.get("agent"), "type": o.get("failure_type"),
                   "rule": o.get("rule"), "line": ev.get("line_number"),
                   "ev": evidence_ok(c, ev.get("line_number"), ev.get("reason")),
                   "fm_agent": TYPE_AGENT.get(ftype, "atlas"), "fm_type": ftype,
                   "fm_ev": evidence_ok(c, hit, None if hit else "first-match: no line"),
                   "seed": seed(c) if seed else None}
            rows.append(row)
            if list_cases:
                out.append("%s %s/%s -> %s/%s (rule %s, line %s)%s%s" % (
                    c["id"], c["expected_agent"], c["expected_failure_type"], row["agent"],
                    row["type"], row["rule"], row["line"],
                    "" if row["type"] == c["expected_failure_type"] and
                    row["agent"] == c["expected_agent"] else " [MISMATCH]",
                    "" if row["ev"] else " [EVIDENCE]"))
        report(out, os.path.basename(path), rows)
        all_rows += rows

    if len(files) > 1:
        report(out, "all (%s)" % " + ".join(os.path.basename(f) for f in files), all_rows)
    n = len(all_rows)
    for what, key in (("agent", "agent"), ("failure-type", "type")):
        want_key = "expected_" + ("agent" if key == "agent" else "failure_type")
        k = sum(r[key] == r["case"][want_key] for r in all_rows)
        share = k / n if n else 0.0
        checks.append(("%s accuracy %.1f%% (%d/%d) >= %.0f%%" % (
            what, 100 * share, k, n, 100 * mins[key]), n and share >= mins[key], ""))
    k = sum(r["ev"] for r in all_rows)
    share = k / n if n else 0.0
    checks.append(("evidence accuracy %.1f%% (%d/%d) >= %.0f%%" % (
        100 * share, k, n, 100 * mins["evidence"]), n and share >= mins["evidence"], ""))

    print("TAP version 13")
    print("1..%d" % len(checks))
    for line in out:
        print("# " + line)
    failed = 0
    for i, (name, ok, detail) in enumerate(checks, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            failed += 1
            if detail:
                print("# " + detail[:3000].replace("\n", "\n# "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
