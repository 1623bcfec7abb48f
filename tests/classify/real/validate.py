#!/usr/bin/env python3
"""Validate the real CI-failure corpus (tune.jsonl + holdout.jsonl).

Checks: every line is a JSON object with exactly the corpus fields; failure types are the
25 names of contract section 5 and the agent matches the category->agent map; ids are unique
across both files and follow r001...; no (source, log) pair repeats; no source is shared with
the development corpus (tests/classify/corpus-dev.jsonl); no case appears in both files;
expected_evidence is null (the log has no line that shows the cause) or a non-empty string or
list of non-empty strings, each a substring of one line of the log.

Usage: python3 tests/classify/real/validate.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEV = os.path.join(HERE, "..", "corpus-dev.jsonl")
FILES = ["tune.jsonl", "holdout.jsonl"]
KEYS = ["id", "source", "workflow_name", "job_name", "failed_step", "event", "changed_files",
        "log", "expected_agent", "expected_failure_type", "expected_evidence", "corpus_label",
        "difficulty", "note"]
AGENT = {}
for t in ("rust_clippy", "rust_test", "rust_build", "rust_deps"):
    AGENT[t] = "rex"
for t in ("frontend_deps", "frontend_typecheck", "frontend_lint", "frontend_test", "frontend_build"):
    AGENT[t] = "blaze"
for t in ("docker_build", "helm", "kubernetes_manifest", "argocd_sync", "terraform", "yaml_syntax",
          "infra_runner"):
    AGENT[t] = "bolt"
for t in ("security_dependabot", "security_code_scan", "security_secret", "security_vulnerability"):
    AGENT[t] = "cipher"
for t in ("merge_conflict", "github_workflow", "github_permission", "release_publish", "general"):
    AGENT[t] = "atlas"


def main():
    errors = []
    ids, pairs, srcs = {}, set(), {}
    dev_sources = set()
    if os.path.exists(DEV):
        with open(DEV, encoding="utf-8") as f:
            dev_sources = {json.loads(l)["source"].rstrip("/") for l in f if l.strip()}
    counts = {}
    for name in FILES:
        with open(os.path.join(HERE, name), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                where = "%s:%d" % (name, n)
                try:
                    c = json.loads(line)
                except ValueError as e:
                    errors.append("%s: not JSON (%s)" % (where, e))
                    continue
                if list(c) != KEYS:
                    errors.append("%s: fields %s" % (where, list(c)))
                    continue
                t = c["expected_failure_type"]
                if t not in AGENT:
                    errors.append("%s: unknown failure type %r" % (where, t))
                elif AGENT[t] != c["expected_agent"]:
                    errors.append("%s: agent %r does not match %s" % (where, c["expected_agent"], t))
                if not (len(c["id"]) == 4 and c["id"][0] == "r" and c["id"][1:].isdigit()):
                    errors.append("%s: bad id %r" % (where, c["id"]))
                if c["id"] in ids:
                    errors.append("%s: duplicate id %s (also %s)" % (where, c["id"], ids[c["id"]]))
                ids[c["id"]] = where
                key = (c["source"], c["log"])
                if key in pairs:
                    errors.append("%s: duplicate source+log" % where)
                pairs.add(key)
                if c["source"].rstrip("/") in dev_sources:
                    errors.append("%s: source also in the dev corpus" % where)
                if c["source"] in srcs and srcs[c["source"]] != name:
                    errors.append("%s: source also in %s" % (where, srcs[c["source"]]))
                srcs.setdefault(c["source"], name)
                if not c["source"].startswith("https://"):
                    errors.append("%s: source is not a URL" % where)
                if not c["log"].strip():
                    errors.append("%s: empty log" % where)
                ev = c["expected_evidence"]
                if ev is not None:
                    evs = [ev] if isinstance(ev, str) else ev
                    lines = c["log"].split("\n")
                    if not isinstance(evs, list) or not evs:
                        errors.append("%s: expected_evidence %r" % (where, ev))
                    for w in evs if isinstance(evs, list) else []:
                        if not isinstance(w, str) or not w or not any(w in x for x in lines):
                            errors.append("%s: expected_evidence %r is not in one log line" %
                                          (where, w))
                if c["difficulty"] not in ("easy", "hard"):
                    errors.append("%s: difficulty %r" % (where, c["difficulty"]))
                if not isinstance(c["changed_files"], list):
                    errors.append("%s: changed_files is not a list" % where)
                counts.setdefault(t, [0, 0])[FILES.index(name)] += 1
    for t in AGENT:
        n = sum(counts.get(t, [0, 0]))
        if n < 4:
            errors.append("%s: only %d cases" % (t, n))
    for e in errors:
        print(e)
    total = sum(sum(v) for v in counts.values())
    print("%d cases (%d tune, %d holdout), %d errors" % (
        total, sum(v[0] for v in counts.values()), sum(v[1] for v in counts.values()), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
