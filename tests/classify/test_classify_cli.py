#!/usr/bin/env python3
"""test_classify_cli.py - the `healer classify` and `healer check-rules`
command line (contract section 5): JSON Lines in/out with bad lines turned into
{"id": null, "error": ...}, --log mode, --explain, --rules and
HEALER_RULES_FILE, --dump-patterns in a dialect ripgrep accepts, and
check-rules exit codes and messages."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests"))
from tap import check, finish  # noqa: E402

HEALER = os.environ["HEALER_BIN"]
# waits for work that takes CPU stretch in the sanitizer builds (3 there)
TIME_SCALE = float(os.environ.get("HEALER_TEST_TIME_SCALE", "1"))
ROOT = os.environ.get("HEALER_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
tmp = tempfile.mkdtemp(prefix="healer-classify-cli-")


def run(*args, stdin="", env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HEALER_")}
    if env:
        e.update(env)
    p = subprocess.run([HEALER, *args], input=stdin, capture_output=True, text=True, env=e,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


def write(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def jlines(out):
    return [json.loads(l) for l in out.split("\n") if l.strip()]


try:
    # JSON Lines: bad lines become error objects and the rest go on, in order.
    good1 = json.dumps({"id": "a", "workflow_name": "CI", "failed_step": "cargo test",
                        "log": "test result: FAILED. 1 passed; 1 failed\n"})
    good2 = json.dumps({"id": 7, "event": "dependabot_alert"})
    inp = "\n".join([good1, "{not json", "[1, 2]", json.dumps({"id": "w", "log": 5}), "",
                     good2]) + "\n"
    rc, out, err = run("classify", stdin=inp)
    res = jlines(out)
    check("classify exits 0 with one object per non-blank line", rc == 0 and len(res) == 5,
          out + err)
    if len(res) == 5:
        check("first case classified", res[0]["id"] == "a" and res[0]["agent"] == "rex"
              and res[0]["failure_type"] == "rust_test" and res[0]["category"] == "rust"
              and res[0]["evidence"]["line_number"] == 1, json.dumps(res[0]))
        check("malformed JSON gives id null and an error", res[1].get("id", "x") is None
              and "invalid JSON" in res[1].get("error", ""), json.dumps(res[1]))
        check("non-object line gives an error", res[2].get("id", "x") is None
              and "error" in res[2], json.dumps(res[2]))
        check("wrongly typed field gives id null and an error naming it",
              res[3].get("id", "x") is None and "'log'" in res[3].get("error", ""),
              json.dumps(res[3]))
        rc, out2, err = run("classify", stdin=json.dumps({"id": "p", "payload": "a string"})
                            + "\n" + json.dumps({"id": "q", "payload": None}) + "\n")
        r2 = jlines(out2)
        check("a payload that is not an object gives an error naming it (null is no payload)",
              rc == 0 and len(r2) == 2 and r2[0].get("id", "x") is None
              and "'payload'" in r2[0].get("error", "") and r2[1].get("id") == "q", out2 + err)
        check("the rest go on after bad lines", res[4]["id"] == 7
              and res[4]["agent"] == "cipher"
              and res[4]["failure_type"] == "security_dependabot", json.dumps(res[4]))
        check("output has the contract keys, then confidence",
              list(res[0].keys()) == ["id", "agent", "failure_type", "category", "rule",
                                      "evidence", "confidence"]
              and list(res[0]["evidence"].keys()) == ["line_number", "line", "reason"],
              json.dumps(res[0]))
        check("a verdict from a log line has no reason and a high confidence",
              res[0]["evidence"]["reason"] is None and 0.6 <= res[0]["confidence"] < 1,
              json.dumps(res[0]))
        check("an alert's verdict says the event is the failure",
              res[4]["evidence"]["reason"] == "alert_event: routed by event 'dependabot_alert'"
              and res[4]["confidence"] >= 0.9, json.dumps(res[4]))

    # FILE argument and '-' both work.
    path = write("cases.jsonl", good1 + "\n")
    rc, out, err = run("classify", path)
    check("classify reads a FILE", rc == 0 and jlines(out)[0]["id"] == "a", out + err)
    rc, out, err = run("classify", "-", stdin=good1 + "\n")
    check("classify reads '-' as stdin", rc == 0 and jlines(out)[0]["id"] == "a", out + err)
    rc, out, err = run("classify", os.path.join(tmp, "missing.jsonl"))
    check("missing input file fails with exit 1", rc == 1 and err.startswith("healer: error:"),
          err)

    # ArgoCD status from the raw payload.
    argo = json.dumps({"id": "g", "workflow_name": "deploy", "payload": {
        "application": {"status": {"sync": {"status": "OutOfSync"},
                                   "health": {"status": "Healthy"}}}}})
    rc, out, err = run("classify", stdin=argo + "\n")
    r = jlines(out)
    check("ArgoCD OutOfSync in the payload routes to bolt", rc == 0 and r
          and r[0]["agent"] == "bolt" and r[0]["failure_type"] == "argocd_sync", out + err)

    # Context never outvotes the log: a clippy failure while ArgoCD is
    # OutOfSync stays with Rex; without a matching log line the reason says
    # how the case was routed and the confidence is low.
    cases = [
        {"id": "clippy-argo", "job_name": "clippy", "argocd_sync": "OutOfSync",
         "log": "error: used `unwrap()` on a `Result` value\n"
                "   = note: requested on the command line with `-D clippy::unwrap-used`\n"},
        {"id": "job-only", "job_name": "eslint",
         "log": "Running lint\nsrc/a.js: 3 problems\nlint exited with code 1\n"},
        {"id": "nothing"},
    ]
    rc, out, err = run("classify", stdin="".join(json.dumps(c) + "\n" for c in cases))
    r = jlines(out)
    check("ArgoCD OutOfSync does not outvote a clippy error", rc == 0 and len(r) == 3
          and r[0]["agent"] == "rex" and r[0]["failure_type"] == "rust_clippy"
          and r[0]["evidence"]["reason"] is None, out + err)
    check("routed by a job name: reason, quoted error line, low confidence", len(r) == 3
          and r[1]["agent"] == "blaze"
          and r[1]["evidence"]["reason"] == "no_matching_line: routed by job name 'eslint'"
          and r[1]["evidence"]["line_number"] == 3
          and r[1]["evidence"]["line"] == "lint exited with code 1"
          and r[1]["confidence"] <= 0.4, out)
    check("no evidence: atlas/general with the lowest confidence", len(r) == 3
          and r[2]["agent"] == "atlas" and r[2]["failure_type"] == "general"
          and r[2]["evidence"]["reason"] == "no_log: no rule fired"
          and r[2]["confidence"] <= 0.1, out)
    rc, out, err = run("classify", "--explain", stdin=json.dumps(cases[0]) + "\n")
    r = jlines(out)
    ex = r[0].get("explain", "") if r else ""
    check("--explain shows the competing agents and why the winner won",
          rc == 0 and "agents (" in ex and "\n  rex " in ex and "\n  bolt " in ex
          and "bolt: 'argocd-status' (argocd status) scored 200.00 on context evidence, "
              "which never outvotes log evidence" in ex, out + err)

    # --explain in JSON Lines mode adds an "explain" field.
    rc, out, err = run("classify", "--explain", stdin=good1 + "\n")
    r = jlines(out)
    check("--explain adds an explain field in JSON Lines mode", rc == 0 and r
          and "candidates" in r[0].get("explain", "") and r[0]["agent"] == "rex", out + err)

    # --log mode on a raw GitHub Actions log.
    log = write("job.log", "2024-01-15T10:30:00.1234567Z ##[group]Run docker/login-action@v3\n"
                "2024-01-15T10:30:00.2234567Z ##[endgroup]\n"
                "2024-01-15T10:30:01.1234567Z Error: Error response from daemon: Get "
                "\"https://ghcr.io/v2/\": denied: denied\n"
                "2024-01-15T10:30:01.2234567Z ##[error]Process completed with exit code 1.\n")
    rc, out, err = run("classify", "--log", log, "--workflow", "Rust", "--job", "image",
                       "--step", "docker/login-action@v3", "--changed-file", "src/main.rs",
                       "--changed-file", "Cargo.toml")
    r = jlines(out)
    check("--log classifies a raw log (root cause beats the workflow name)", rc == 0 and r
          and r[0]["agent"] == "atlas" and r[0]["failure_type"] == "github_permission"
          and r[0]["evidence"]["line_number"] == 3
          and r[0]["evidence"]["line"].startswith("Error: Error response from daemon"),
          out + err)
    rc, out, err = run("classify", "--log", log, "--explain")
    check("--log --explain prints a readable account", rc == 0 and "verdict: agent=atlas" in out
          and "candidates" in out and "why:" in out and not out.lstrip().startswith("{"),
          out + err)
    rc, out, err = run("classify", "--log", "-", "--step", "cargo build",
                       stdin="   Compiling app v0.1.0\nerror[E0308]: mismatched types\n")
    r = jlines(out)
    check("--log - reads the log from a pipe", rc == 0 and r and r[0]["agent"] == "rex"
          and r[0]["evidence"]["line_number"] == 2, out + err)
    empty = write("empty.log", "")
    rc, out, err = run("classify", "--log", empty)
    r = jlines(out)
    check("--log on an empty file defaults to atlas/general", rc == 0 and r
          and r[0]["agent"] == "atlas" and r[0]["failure_type"] == "general", out + err)
    rc, out, err = run("classify", "--log", os.path.join(tmp, "nope.log"))
    check("--log on a missing file fails with exit 1", rc == 1 and "nope.log" in err, err)
    rc, out, err = run("classify", "--workflow", "x")
    check("--workflow without --log is a usage error (exit 2)", rc == 2, err)
    rc, out, err = run("classify", "--bogus")
    check("unknown option exits 2 naming it", rc == 2 and "'--bogus'" in err, err)

    # Rules override: --rules and HEALER_RULES_FILE.
    rules = write("rules.yaml", "rules:\n- name: custom-widget\n  type: helm\n  priority: 50\n"
                  "  patterns: ['widget exploded']\n")
    case = json.dumps({"id": "r", "log": "the widget exploded\n"}) + "\n"
    rc, out, err = run("classify", "--rules", rules, stdin=case)
    r = jlines(out)
    check("--rules FILE replaces the built-in rules", rc == 0 and r
          and r[0]["rule"] == "custom-widget" and r[0]["agent"] == "bolt", out + err)
    rc, out, err = run("classify", stdin=case, env={"HEALER_RULES_FILE": rules})
    r = jlines(out)
    check("HEALER_RULES_FILE replaces the built-in rules", rc == 0 and r
          and r[0]["rule"] == "custom-widget", out + err)
    bad = write("bad.yaml", "rules:\n- name: broken-one\n  type: helm\n  priority: 5\n"
                "  patterns:\n    - 'foo(bar'\n")
    rc, out, err = run("classify", "--rules", bad, stdin=case)
    check("a bad --rules file fails with exit 1 and its position", rc == 1
          and "bad.yaml:6:" in err and "rule 'broken-one'" in err, err)

    # check-rules
    rc, out, err = run("check-rules", os.path.join(ROOT, "rules", "default.yaml"))
    check("check-rules accepts the default rules", rc == 0 and out.strip().endswith("rules ok")
          and int(out.split()[0]) >= 50, out + err)
    rc, out, err = run("check-rules", bad)
    first = err.splitlines()[0] if err else ""
    check("check-rules names file, line, column and rule",
          rc == 1 and first.startswith("healer: error: " + bad + ":6:15: rule 'broken-one': "),
          err)
    typo = write("typo.yaml", "rules:\n- name: t\n  type: helm\n  priority: 5\n  patterns: ['x']\n"
                 "  sep: ['y']\n")
    rc, out, err = run("check-rules", typo)
    check("check-rules rejects unknown keys", rc == 1 and ":6:3: rule 't': unknown key 'sep'"
          in err, err)
    # a key set twice, or a string cut at a NUL, is refused (before: "1 rules ok", the
    # first 'rules:' list or the first 'patterns' dropped, the pattern "a\0b" read as "a")
    one = "- name: a\n  type: helm\n  priority: 5\n  patterns: ['x']\n"
    bad = []
    for name, text, want in (
            ("dup-rules.yaml", "rules:\n" + one + "rules:\n" + one.replace("a\n", "b\n", 1),
             ":6:1: duplicate key 'rules'"),
            ("dup-pats.yaml", "rules:\n" + one + "  patterns: ['y']\n",
             ":6:3: rule 'a': duplicate key 'patterns'"),
            ("dup-scoring.yaml", "scoring:\n  recency: 1\n  recency: 2\nrules:\n" + one,
             ":3:3: duplicate key 'recency'"),
            ("nul.yaml", "rules:\n" + one.replace("['x']", '["x\\0y"]'),
             ":5:14: a string holds a NUL")):
        rc, out, err = run("check-rules", write(name, text))
        if rc != 1 or want not in err:
            bad.append((name, rc, out, err))
    check("check-rules refuses a key set twice and a NUL in a string, naming the line", not bad,
          bad)
    rc, out, err = run("check-rules")
    check("check-rules without FILE is a usage error", rc == 2, err)
    rc, out, err = run("check-rules", os.path.join(tmp, "absent.yaml"))
    check("check-rules on a missing file exits 1", rc == 1, err)

    # --dump-patterns: one pattern per line, accepted by ripgrep.
    rc, out, err = run("classify", "--dump-patterns")
    pats = [l for l in out.splitlines() if l]
    check("--dump-patterns prints the pattern set", rc == 0 and len(pats) > 100, err)
    rg = shutil.which("rg")
    if rg:
        pf = write("patterns.txt", out)
        sample = write("sample.log", "error[E0308]: mismatched types\nnothing\n")
        p = subprocess.run([rg, "-c", "-f", pf, sample], capture_output=True, text=True,
                           timeout=60)
        check("ripgrep accepts every exported pattern", p.returncode == 0
              and p.stdout.strip() == "1", p.stdout + p.stderr)
    # Hostile input never crashes: random JSON Lines and mutated rules files.
    import random
    rnd = random.Random(7)
    lines = []
    for i in range(150):
        k = rnd.randrange(4)
        if k == 0:
            lines.append("".join(chr(rnd.randrange(1, 0x3000)) for _ in range(rnd.randrange(1, 80))))
        elif k == 1:
            lines.append(json.dumps({"id": i, "log": "".join(rnd.choice(
                "error[E0308]: \x1b[31m##[group]\r\t npm ERR! ✖ │ Error: \u0000")
                for _ in range(rnd.randrange(0, 300))),
                "changed_files": [rnd.choice(["a.rs", "b.ts", "Dockerfile", ""])],
                "workflow_name": rnd.choice(["Rust", "", "docker-*"]),
                "argocd_sync": rnd.choice(["OutOfSync", "", "Synced"])}))
        elif k == 2:
            lines.append(json.dumps({"id": [i], "changed_files": "x", "event": 5}))
        else:
            lines.append(json.dumps({"id": str(i), "log": "x" * rnd.randrange(0, 5000)})[:rnd.randrange(1, 60)])
    lines = [l.replace("\n", " ") for l in lines]
    nonblank = sum(1 for l in lines if l.strip(" \t\r"))
    rc, out, err = run("classify", stdin="\n".join(lines) + "\n")
    check("random JSON Lines: exit 0 and one object per non-blank line",
          rc == 0 and len(jlines(out)) == nonblank, "rc=%d %d/%d %s" % (
              rc, len(out.splitlines()), nonblank, err[-300:]))
    base = open(os.path.join(ROOT, "rules", "default.yaml"), encoding="utf-8").read()
    bad_rc = []
    for i in range(8):
        t = list(base)
        for _ in range(rnd.randrange(1, 6)):
            pos = rnd.randrange(len(t))
            t[pos] = rnd.choice(["'", "[", "]", ":", "\n", " ", "-", "\\", "(", "{", "x"])
        path = write("mut%d.yaml" % i, "".join(t))
        rc, out, err = run("check-rules", path)
        if rc not in (0, 1) or (rc == 1 and not err.startswith("healer: error: " + path + ":")):
            bad_rc.append((rc, err[:200]))
    check("mutated rules files: exit 0 or a positioned error, never a crash", not bad_rc,
          repr(bad_rc))

    # Rules files are bounded: a hostile one is refused at once, with a position.
    def rules_file(name, pats_per_rule):
        out = ["version: 1", "rules:"]
        for i, pats in enumerate(pats_per_rule):
            out.append(f"  - name: r{i}\n    type: general\n    priority: 10\n    patterns:")
            out += [f"      - '{p}'" for p in pats]
        return write(name, "\n".join(out) + "\n")

    def check_rules(path, timeout=30):
        try:
            p = subprocess.run([HEALER, "check-rules", path], capture_output=True, text=True,
                               timeout=timeout)
            return p.returncode, p.stderr
        except subprocess.TimeoutExpired:
            return -1, "still compiling after %.0f s" % timeout

    heavy = rules_file("heavy.yaml", [[f"e{i}[a-z]{{1,200}}x(ab|cd|ef)[0-9]{{10,300}}y"]
                                      for i in range(10000)])
    t0 = time.time()
    rc, err = check_rules(heavy)
    check("10,000 heavy rules are refused at once, naming the limit",
          rc == 1 and "10000 rules, more than 1000" in err and time.time() - t0 < 10,
          (rc, err, time.time() - t0))
    cases = [
        ("one pattern too heavy", [["x((a|b){100}){100}"]], "pattern is too heavy to compile"),
        ("too heavy together", [[f"x{i}(.*a.*b.*c){{400}}"] for i in range(40)],
         "too heavy to compile together"),
        ("a pattern too long", [["a" * 3000]], "pattern is 3000 bytes long, more than 2048"),
        ("too many patterns in a rule", [[f"p{i}x" for i in range(101)]],
         "a rule has 101 patterns, more than 100"),
        ("groups nested too deep", [["(" * 40 + "a" + ")" * 40]], "nests groups more than 32"),
    ]
    for name, rules, want in cases:
        path = rules_file(name.replace(" ", "_") + ".yaml", rules)
        t0 = time.time()
        rc, err = check_rules(path)
        check("check-rules refuses %s with a positioned error" % name,
              rc == 1 and err.startswith("healer: error: " + path + ":") and want in err
              and time.time() - t0 < 10, (rc, err[:300], time.time() - t0))
    ok = rules_file("fine.yaml", [[f"x{i}(.*a.*b){{100}}", f"y{i}[0-9]{{4}}"] for i in range(50)])
    # the heaviest rules the bounds let through: about 3 s alone in the
    # plain build, 10 s under ASan, longer on a busy machine
    rc, err = check_rules(ok, 30 * TIME_SCALE)
    check("rules within the bounds still load", rc == 0, err)

    # A line longer than the cap is that line's error; it is never held whole.
    long_case = json.dumps({"id": "long", "log": "error: x " * 1000})
    rc, out, err = run("classify", "--max-line-bytes", "1000", stdin="\n".join([
        json.dumps({"id": "a", "log": "error[E0308]: mismatched types"}), long_case,
        json.dumps({"id": "b", "log": "npm ERR! code ERESOLVE"})]) + "\n")
    res = jlines(out)
    check("a line over --max-line-bytes is that line's error and the rest go on",
          rc == 0 and len(res) == 3 and res[0].get("id") == "a" and res[2].get("id") == "b"
          and res[1].get("id") is None and "longer than 1000 bytes" in res[1].get("error", ""),
          out + err)

    # A JSON error names the input line; a first line's UTF-8 BOM is skipped;
    # the '\r' of CRLF is not counted against --max-line-bytes.
    crlf = json.dumps({"id": "crlf", "log": "npm ERR! code ERESOLVE"})
    rc, out, err = run("classify", "--max-line-bytes", str(len(crlf)), stdin="\ufeff"
                       + json.dumps({"id": "bom"}) + "\r\n" + crlf + "\r\n\n{oops\r\n")
    res = jlines(out)
    check("a BOM is skipped, CRLF fits --max-line-bytes and a JSON error names its line",
          rc == 0 and len(res) == 3 and res[0].get("id") == "bom" and res[1].get("id") == "crlf"
          and res[2].get("id", "x") is None
          and "invalid JSON: line 4 column" in res[2].get("error", ""), out + err)

    def rss_kib(pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    # /dev/zero is one endless line: reported once, then skipped in constant
    # memory: from the moment the report is written, the resident size stops
    # growing (a sanitizer build is slower to get there and holds more)
    for args in (["--max-line-bytes", "1048576"], []):
        e = {k: v for k, v in os.environ.items() if not k.startswith("HEALER_")}
        p = subprocess.Popen([HEALER, "classify", *args, "/dev/zero"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=e)
        os.set_blocking(p.stdout.fileno(), False)
        first, t0, reported = b"", time.time(), None
        while time.time() - t0 < 30 and p.poll() is None and reported is None:
            try:
                first += p.stdout.read() or b""
            except (BlockingIOError, TypeError):
                pass
            if b"longer than" in first:
                reported = rss_kib(p.pid)
            else:
                time.sleep(0.05)
        samples, t1 = [], time.time()
        while reported is not None and time.time() - t1 < 2.0 and p.poll() is None:
            samples.append(rss_kib(p.pid))
            time.sleep(0.05)
        p.kill()
        p.communicate(timeout=10)
        late = max(samples or [0])
        check("classify on /dev/zero %s reports the line and then stays in constant memory"
              % (" ".join(args) or "(default cap)"),
              reported is not None and late < 600 * 1024 and late - reported < 32 * 1024,
              (reported, late, first[:200]))
finally:
    shutil.rmtree(tmp, ignore_errors=True)

finish()
