#!/usr/bin/env python3
"""test_render.py - `healer render` (contract section 6): built-in prompts by
name from any directory, template files, data from a file or stdin,
--partials, --strict, HEALER_PROMPTS_DIR, errors exit 1 naming the template
line and column, usage errors exit 2, and output byte-identical to
handlebars.js for the same template and data (when node is available)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HEALER = os.environ["HEALER_BIN"]
HERE = os.path.dirname(os.path.abspath(__file__))
results = []


def run(*args, stdin=None, env=None, cwd=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HEALER_")}
    if env:
        e.update(env)
    p = subprocess.run([HEALER, "render", *args], input=stdin, capture_output=True, env=e,
                       cwd=cwd, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


tmp = tempfile.mkdtemp(prefix="healer-render-")
try:
    def write(name, text):
        path = os.path.join(tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    data = {"agent": {"id": "rex", "name": "Rex", "role": "Rust specialist"},
            "repository": {"full_name": "5dlabs/cto"},
            "failure": {"type": "rust_clippy", "category": "rust"},
            "log": {"text": "error: boom\n", "lines": 1, "bytes": 12, "focus_line": 1},
            "target_branch": "fix/x", "changed_files": [], "missing_sources": [],
            "attempt": {"number": 1, "max": 3}}
    dpath = write("data.json", json.dumps(data))

    rc, out, err = run("ci/rust-fix.hbs", dpath, cwd="/")
    check("built-in prompt renders by name from any directory",
          rc == 0 and out.startswith("# CI Rust Fix - Rex") and "error: boom" in out
          and "cargo clippy --all-targets -- -D warnings -W clippy::pedantic" in out, err)

    tpath = write("t.hbs", "Hi {{name}}{{#each l}} {{this}}{{/each}}\n")
    rc, out, err = run(tpath, "-", stdin=b'{"name": "N", "l": [1, 2]}')
    check("template file with data on stdin, output exact", rc == 0 and out == "Hi N 1 2\n",
          repr(out) + err)

    rc, out, err = run(tpath)
    check("no data renders with {}", rc == 0 and out == "Hi \n", repr(out) + err)

    pdir = os.path.join(tmp, "parts")
    write("parts/box.hbs", "[{{name}}]")
    ppath = write("p.hbs", "{{> box}}\n")
    rc, out, err = run("--partials", pdir, ppath, "-", stdin=b'{"name": "x"}')
    check("--partials DIR registers *.hbs by base name (a standalone partial line)", rc == 0 and out == "[x]", repr(out) + err)

    spath = write("s.hbs", "ok\n  {{x.y}}\n")
    rc, out, err = run("--strict", spath, "-", stdin=b'{"x": {}}')
    check("--strict reports a missing variable with its position, exit 1",
          rc == 1 and err.startswith("healer: error:") and "s.hbs:2:5" in err and "x.y" in err,
          err)
    rc, out, err = run(spath, "-", stdin=b'{"x": {}}')
    check("without --strict a missing variable renders empty", rc == 0 and out == "ok\n  \n", out)

    epath = write("e.hbs", "line 1\nline 2\n  {{#if a}}unclosed\n")
    rc, out, err = run(epath)
    check("a parse error exits 1 naming file, line and column",
          rc == 1 and "healer: error:" in err and "e.hbs:3:3:" in err, err)

    rc, out, err = run("ci/nope.hbs")
    check("an unknown template exits 1", rc == 1 and "ci/nope.hbs" in err, err)

    bpath = write("bad.json", "{nope")
    rc, out, err = run(tpath, bpath)
    check("malformed data exits 1 naming the file", rc == 1 and "bad.json" in err, err)

    rc, out, err = run(tpath, "-", stdin=b" \n")
    check("empty data on standard input says so, exit 1",
          rc == 1 and "standard input: no data" in err and "unexpected token" not in err, err)
    epath2 = write("empty.json", "")
    rc, out, err = run(tpath, epath2)
    check("an empty data file says so, naming it", rc == 1 and "empty.json: no data" in err, err)

    rc, out, err = run("--bogus", tpath)
    check("an unknown option exits 2 naming it", rc == 2 and "'--bogus'" in err, err)
    rc, out, err = run()
    check("a missing TEMPLATE exits 2", rc == 2 and "usage" in err, err)

    odir = os.path.join(tmp, "override")
    write("override/partials/ground-rules.hbs", "OVERRIDDEN RULES\n")
    rc, out, err = run("ci/rust-fix.hbs", dpath, env={"HEALER_PROMPTS_DIR": odir})
    check("HEALER_PROMPTS_DIR overrides a built-in partial",
          rc == 0 and "OVERRIDDEN RULES" in out and "## Ground Rules" not in out, err)

    rc, out, err = run("alerts/a7-pod-failure.hbs", "-", stdin=json.dumps(
        {"alert": {"id": "A7", "pod_name": "web-1", "namespace": "prod", "task_id": "t-9"},
         "missing_sources": [{"name": "loki", "reason": "timeout after 5s"}]}).encode())
    check("the A7 prompt names the pod, the commands and the missing source",
          rc == 0 and "healer fetch-logs" in out and '--pod-name "$POD"' in out
          and "pod name `web-1`" in out and "namespace `prod`" in out and "task `t-9`" in out
          and '--task-id "$TASK_ID"' in out and "A7-$FILE.md" in out and "$FILE-current.log" in out
          and "**loki**: `timeout after 5s`" in out,
          err + out[:300])
    # spawn-remediation refuses a second CodeRun with exit 1 (tests/diag):
    # the prompt must not tell the agent otherwise
    check("the A7 prompt says a refused second remediation exits 1, and that it is expected",
          "exits 1 naming that CodeRun: that is expected" in out, out[-1500:])

    node = shutil.which("node")
    if node and os.path.isdir(os.path.join(HERE, "..", "node", "node_modules", "handlebars")):
        cases = [
            ("{{#each items}}\n  - {{name}}: {{json this}}\n{{/each}}\n{{fence s lang=\"sh\" budget=64}}",
             {"items": [{"name": "a", "v": [1, 2.5]}, {"name": "b"}],
              "s": "```\n" + "x" * 200 + "\n~~~"}),
            ("{{> box}}\n  {{> box}}\n{{#if a}}\n{{a}}{{b}}\n{{/if}}", {"a": 1, "b": 2, "name": "n"}),
            # lone surrogate escapes (JSON.parse takes them; written as U+FFFD),
            # a pair, an escaped backslash before "u", a high before a high
            ("{{x}}|{{y}}|{{z}}|{{w}}|{{v}}|{{len x}}", {
                "x": "\ud800B", "y": "\udc00", "z": "\ud83d\ude00", "w": "\\ud800",
                "v": "\ud800\ud800x", "\udbff": 1}),
        ]
        for i, (tpl, d) in enumerate(cases):
            path = write("diff%d.hbs" % i, tpl)
            rc, out, err = run("--partials", pdir, path, "-", stdin=json.dumps(d).encode())
            cpath = write("case%d.json" % i, json.dumps(
                [{"template": tpl, "data": d, "partials": {"box": "[{{name}}]"}}]))
            ref = json.loads(subprocess.run([node, os.path.join(HERE, "hbs_render.js"), cpath],
                                            capture_output=True, timeout=60).stdout)[0]
            # what node writes to stdout: a lone surrogate as U+FFFD
            want = ref.get("out", "").encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            check("healer render output equals handlebars.js (case %d)" % i,
                  rc == 0 and ref["ok"] and out == want, repr(out) + " vs " + repr(ref) + err)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

failed = 0
print("TAP version 13")
print("1..%d" % len(results))
for i, (name, ok, detail) in enumerate(results, 1):
    print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
    if not ok:
        failed += 1
        print("# " + str(detail).replace("\n", "\n# "))
sys.exit(1 if failed else 0)
