#!/usr/bin/env python3
"""test_gen_catalog.py - the catalogue generator (src/catalog/gen_catalog.py):
the shipped rules/catalog.yaml generates; a broken data file stops the build
with FILE:LINE and a message naming the problem (unknown key, dangling
reference, duplicate, no default, YAML outside the supported subset)."""
import os
import shutil
import subprocess
import sys
import tempfile
sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests"))
from tap import check, finish  # noqa: E402

ROOT = os.environ["HEALER_SOURCE_ROOT"]
GEN = os.path.join(ROOT, "src", "catalog", "gen_catalog.py")
DATA = open(os.path.join(ROOT, "rules", "catalog.yaml"), encoding="utf-8").read()
tmp = tempfile.mkdtemp(prefix="healer-catalog-")


def gen(text):
    src = os.path.join(tmp, "catalog.yaml")
    with open(src, "w", encoding="utf-8") as f:
        f.write(text)
    p = subprocess.run([sys.executable, GEN, src, os.path.join(tmp, "out.c")],
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr.strip(), src


def line_of(text, needle):
    return text[:text.index(needle)].count("\n") + 1


try:
    rc, err, _ = gen(DATA)
    out = open(os.path.join(tmp, "out.c"), encoding="utf-8").read() if rc == 0 else ""
    check("the shipped catalogue generates", rc == 0 and "hl_catalog_type_table[]" in out, err)

    cases = [
        ("a failure type with an unknown category",
         DATA.replace("  category: rust\n  short: clippy", "  category: rusty\n  short: clippy"),
         "  category: rusty", "unknown category 'rusty'"),
        ("a category routed to an unknown agent",
         DATA.replace("- name: rust\n  agent: rex", "- name: rust\n  agent: rexx"),
         "  agent: rexx", "unknown agent 'rexx'"),
        ("an unknown key", DATA.replace("  short: clippy\n", "  short: clippy\n  shrot: x\n"),
         "  shrot: x", "unknown failure type key 'shrot'"),
        ("a missing required field", DATA.replace("  github_app: 5DLabs-Bolt\n", ""),
         "- id: bolt", "agent needs 'github_app'"),
        ("a duplicate failure type", DATA.replace("- name: rust_test\n", "- name: rust_clippy\n"),
         "- name: rust_clippy\n  category: rust\n  short: rust-test",
         "duplicate failure type 'rust_clippy'"),
        ("two default agents", DATA.replace("  template: ci/rust-fix.hbs\n",
                                            "  template: ci/rust-fix.hbs\n  default: true\n"),
         "- id: rex", "exactly one agent"),
        ("a bad domain", DATA.replace("  domain: runtime\n", "  domain: cloud\n"),
         "  domain: cloud", "domain must be one of ci, alert, runtime"),
        ("an unquoted value with ': '",
         DATA.replace("  role: Rust specialist\n", "  role: Rust: specialist\n"),
         "  role: Rust: specialist", "quote the value"),
        ("a nested list", DATA.replace("files: ['*.rs',", "files: [['*.rs'],"),
         "files: [['*.rs']", "nested collections"),
    ]
    for name, text, where, want in cases:
        rc, err, src = gen(text)
        ln = line_of(text, where)  # the line the message must name
        check("rejects %s with FILE:LINE" % name,
              rc == 1 and err.startswith("gen_catalog: %s:%d: " % (src, ln)) and want in err,
              "rc=%d want line %d '%s': %s" % (rc, ln, want, err))
finally:
    shutil.rmtree(tmp, ignore_errors=True)

finish()
