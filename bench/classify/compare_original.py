#!/usr/bin/env python3
"""compare_original.py HEALER CASES.jsonl... - accuracy of healer's classifier
next to a re-implementation of the original router (5dlabs/cto
crates/healer ci/router.rs, as described in research/seed-system-facts.md
section 2.6: a first-match regex list over the log, then job-name keywords,
security events to Cipher) on labelled cases."""
import json
import re
import subprocess
import sys

LOG_RULES = [
    (r"(?i)clippy", "rust_clippy"),
    (r"(?i)cargo\s+test|test result: FAILED", "rust_test"),
    (r"error\[E\d+\]", "rust_build"),
    (r"(?i)eslint", "frontend_lint"),
    (r"TS\d{4}:", "frontend_typecheck"),
    (r"(?i)npm\s+ERR!|pnpm ERR!", "frontend_deps"),
    (r"(?i)docker\s+build.*failed", "docker_build"),
    (r"(?i)helm.*template.*error", "helm"),
    (r"(?i)OutOfSync|sync\s+failed", "argocd_sync"),
    (r"(?i)yaml.*error|error.*yaml", "yaml_syntax"),
    (r"(?i)dependabot", "security_dependabot"),
    (r"(?i)CVE-\d{4}", "security_code_scan"),
    (r"(?i)merge conflict|CONFLICT \(|cannot merge|automatic merge failed", "merge_conflict"),
]
AGENT = {"rust": "rex", "frontend": "blaze", "infrastructure": "bolt", "security": "cipher",
         "github": "atlas", "general": "atlas"}
CATEGORY = {
    "rust_clippy": "rust", "rust_test": "rust", "rust_build": "rust",
    "frontend_lint": "frontend", "frontend_typecheck": "frontend", "frontend_deps": "frontend",
    "docker_build": "infrastructure", "helm": "infrastructure", "argocd_sync": "infrastructure",
    "yaml_syntax": "infrastructure", "security_dependabot": "security",
    "security_code_scan": "security", "merge_conflict": "github", "general": "general",
}
SECURITY_EVENTS = {"dependabot_alert", "code_scanning_alert", "secret_scanning_alert"}


def original(case):
    log = case.get("log") or ""
    ftype = None
    for pat, t in LOG_RULES:
        if re.search(pat, log):
            ftype = t
            break
    if ftype is None:
        name = (case.get("job_name") or case.get("workflow_name") or "").lower()
        if "clippy" in name:
            ftype = "rust_clippy"
        elif "test" in name and ("rust" in name or "cargo" in name):
            ftype = "rust_test"
        elif "build" in name and "rust" in name:
            ftype = "rust_build"
        elif "eslint" in name or ("lint" in name and "frontend" in name):
            ftype = "frontend_lint"
        elif "typescript" in name or "tsc" in name:
            ftype = "frontend_typecheck"
        elif "npm" in name or "pnpm" in name:
            ftype = "frontend_deps"
        elif "docker" in name:
            ftype = "docker_build"
        elif "helm" in name:
            ftype = "helm"
        elif "argocd" in name or "gitops" in name:
            ftype = "argocd_sync"
        elif "security" in name or "audit" in name:
            ftype = "security_code_scan"
        else:
            ftype = "general"
    agent = "cipher" if case.get("event") in SECURITY_EVENTS else AGENT[CATEGORY[ftype]]
    return agent, ftype


def main():
    healer = sys.argv[1]
    for path in sys.argv[2:]:
        cases = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
        inp = "".join(json.dumps(c) + "\n" for c in cases)
        out = subprocess.run([healer, "classify"], input=inp, capture_output=True, text=True,
                             check=True).stdout.splitlines()
        res = [json.loads(l) for l in out]
        n = len(cases)
        ha = sum(r["agent"] == c["expected_agent"] for r, c in zip(res, cases))
        ht = sum(r["failure_type"] == c["expected_failure_type"] for r, c in zip(res, cases))
        orig = [original(c) for c in cases]
        oa = sum(o[0] == c["expected_agent"] for o, c in zip(orig, cases))
        ot = sum(o[1] == c["expected_failure_type"] for o, c in zip(orig, cases))
        print("%s (%d cases)" % (path, n))
        print("  original router: agent %5.1f%%  type %5.1f%%" % (100 * oa / n, 100 * ot / n))
        print("  healer         : agent %5.1f%%  type %5.1f%%" % (100 * ha / n, 100 * ht / n))


if __name__ == "__main__":
    main()
