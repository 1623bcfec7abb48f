#!/usr/bin/env python3
"""golden.py - runs `healer normalize` over every @octokit/webhooks-examples
payload of the events healer handles and compares the output with
tests/event/golden/<event>/<example>.json. Prints TAP, one line per example.

Examples come from every index of the package (api.github.com and ghes-*):
secret_scanning_alert exists only in the GHES indexes. An example is named
<index>-<action>-<n> (n counts examples of that event and index).
Byte-identical payloads are normalized once and share the golden file of
their first occurrence (their line says so). Fails when the package is
missing, when an event has no example at all, when an example has no golden
file, and when a golden file matches no example (stale). HL_UPDATE_GOLDEN=1
rewrites the golden files (and removes stale ones) instead.
"""
import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
import tempfile

EVENTS = [
    "workflow_job", "workflow_run", "check_run", "check_suite", "status", "pull_request",
    "push", "issue_comment", "pull_request_review", "pull_request_review_comment",
    "merge_group", "dependabot_alert", "code_scanning_alert", "secret_scanning_alert", "repository_vulnerability_alert", "ping",
]

HEALER = os.environ["HEALER_BIN"]
SRC = os.environ.get("HEALER_SOURCE_ROOT",
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PKG = os.path.join(SRC, "tests", "node", "node_modules", "@octokit", "webhooks-examples")
GOLDEN = os.path.join(SRC, "tests", "event", "golden")
UPDATE = os.environ.get("HL_UPDATE_GOLDEN") == "1"

results = []  # (ok, name, detail)


def tap_exit():
    print("TAP version 13")
    print(f"1..{len(results)}")
    failed = 0
    for i, (ok, name, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok:
            failed += 1
            for line in detail.splitlines()[:40]:
                print("# " + line)
    sys.exit(1 if failed else 0)


def clean_env():
    # the default configuration: no allowlist, no bots, no config file
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "GITHUB_"))}
    env["HOME"] = tempfile.gettempdir()
    return env


def load_examples():
    """[(event, index, action, n, payload)] in a stable order."""
    indexes = []
    if os.path.isdir(PKG):
        indexes = sorted(d for d in os.listdir(PKG)
                         if os.path.isfile(os.path.join(PKG, d, "index.json")))
    if "api.github.com" not in indexes:
        results.append((False, "@octokit/webhooks-examples is installed",
                        f"no index.json under {PKG}; run npm ci in tests/node"))
        tap_exit()
    out = []
    for index in indexes:
        with open(os.path.join(PKG, index, "index.json"), encoding="utf-8") as f:
            spec = json.load(f)
        for entry in spec:
            if entry.get("name") not in EVENTS:
                continue
            for n, payload in enumerate(entry.get("examples") or []):
                action = payload.get("action") if isinstance(payload, dict) else None
                out.append((entry["name"], index, action or "none", n, payload))
    return out


def check_output(golden, p):
    """(ok, note, detail) for one healer run against its golden file."""
    if p is None:
        return False, "", "healer normalize timed out"
    if p.returncode != 0 or p.stderr:
        # success is silent: anything on stderr (a sanitizer report, a stray
        # log line) fails the example
        return False, "", f"exit {p.returncode}: {p.stderr}"
    if UPDATE:
        os.makedirs(os.path.dirname(golden), exist_ok=True)
        with open(golden, "w", encoding="utf-8") as f:
            f.write(p.stdout)
        return True, " (golden written)", ""
    if not os.path.exists(golden):
        return False, "", (f"missing golden file {golden}; "
                           "run with HL_UPDATE_GOLDEN=1 and review the diff")
    with open(golden, encoding="utf-8") as f:
        expected = f.read()
    if expected != p.stdout:
        diff = subprocess.run(["diff", "-u", golden, "-"], input=p.stdout,
                              capture_output=True, text=True).stdout
        return False, "", diff
    return True, "", ""


def main():
    examples = load_examples()
    env = clean_env()
    seen = {}  # payload digest -> golden path
    wanted = set()
    jobs = []  # (event, label, golden, text) of distinct payloads, in order
    lines = []  # per example: index into jobs, and the duplicate note
    for event, index, action, n, payload in examples:
        name = f"{index}-{action}-{n}"
        text = json.dumps(payload, sort_keys=True)
        digest = hashlib.sha256((event + "\0" + text).encode()).hexdigest()
        if digest in seen:
            # a byte-identical payload: same input, same output, same golden
            j = seen[digest]
            lines.append((j, f"{event}/{name} (identical payload, checked as "
                             f"{os.path.relpath(jobs[j][2], GOLDEN)})"))
            continue
        golden = os.path.join(GOLDEN, event, name + ".json")
        seen[digest] = len(jobs)
        wanted.add(golden)
        lines.append((len(jobs), f"{event}/{name}"))
        jobs.append((event, f"{event}/{name}", golden, text))

    with tempfile.TemporaryDirectory() as tmp:
        def normalize(i):
            event, _, _, text = jobs[i]
            path = os.path.join(tmp, f"payload-{i}.json")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            try:
                return subprocess.run([HEALER, "normalize", "--event", event, path],
                                      capture_output=True, text=True, env=env, timeout=60)
            except subprocess.TimeoutExpired:
                return None

        workers = min(8, os.cpu_count() or 1)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            outputs = list(pool.map(normalize, range(len(jobs))))

    verdicts = [check_output(golden, p) for (_, _, golden, _), p in zip(jobs, outputs)]
    for j, label in lines:
        ok, note, detail = verdicts[j]
        results.append((ok, label + note, detail))

    counts = {e: 0 for e in EVENTS}
    for event, *_ in examples:
        counts[event] += 1
    for event in EVENTS:
        results.append((counts[event] > 0, f"{event} has examples ({counts[event]})",
                        "no example of this event in the package: it would go untested"))

    stale = []
    if os.path.isdir(GOLDEN):
        for root, _, files in os.walk(GOLDEN):
            for fn in files:
                path = os.path.join(root, fn)
                if path not in wanted:
                    stale.append(os.path.relpath(path, GOLDEN))
    if UPDATE:
        for rel in stale:
            os.unlink(os.path.join(GOLDEN, rel))
        stale = []
    results.append((not stale, "no stale golden files", "\n".join(sorted(stale))))
    tap_exit()


main()
