#!/usr/bin/env python3
"""test_grafana.py - deploy/grafana/healer.json queries only what healer
exports: every metric name in every panel query is a family GET /metrics
of a running `healer server` (loopback, HEALER_DISPATCH=none, a temp data
directory, one delivery sent so request metrics have samples) announces
with HELP and TYPE; rate()/increase() only over counters and histogram
buckets, _bucket/_sum/_count only on histograms; every label a query
groups or filters by is one the metric carries (from its samples, else
from the source that writes it); every query is valid PromQL (promtool);
and the panels the deployment needs are there. A family that /metrics
would only show once it has data is accepted when src/ writes it, and the
check says so. Prints TAP."""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib as dl  # noqa: E402
from deploylib import check  # noqa: E402

DASH = os.path.join(dl.DEPLOY, "grafana", "healer.json")
dash = json.load(open(DASH))
check("the dashboard has a uid, a title, panels and a Prometheus data source variable",
      dash.get("uid") and dash.get("title") and dash.get("panels") and
      any(v.get("type") == "datasource" and v.get("query") == "prometheus"
          for v in dash.get("templating", {}).get("list", [])), "")
targets = [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]
check("every query panel uses the data source variable",
      all(p.get("datasource", {}).get("uid") == "${datasource}"
          for p in dash["panels"] if p.get("targets")), "")

# the running server's /metrics
srv = dl.Server({}, "metrics").start()
body = open(os.path.join(dl.ROOT, "examples", "workflow_job_failure.json"), "rb").read()
srv.request("POST", "/webhook", body, {"Content-Type": "application/json",
                                       "X-GitHub-Event": "workflow_job",
                                       "X-GitHub-Delivery": "grafana-1"})
st, text = srv.request("GET", "/metrics")
srv.stop()
text = text.decode()
check("GET /metrics answers", st == 200, text[:300])
types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
helps = set(re.findall(r"^# HELP (\S+) ", text, re.M))
sample_labels = {}
for m in re.finditer(r"^([a-zA-Z_:][\w:]*)\{([^}]*)\}", text, re.M):
    sample_labels.setdefault(m.group(1), set()).update(
        re.findall(r'(\w+)="', m.group(2)))

src_text = ""
for d, _, fs in os.walk(os.path.join(dl.ROOT, "src")):
    for f in fs:
        if f.endswith(".c"):
            src_text += open(os.path.join(d, f)).read()


def family(name):
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and types.get(name[:-len(suf)]) == "histogram":
            return name[:-len(suf)], suf
    return name, ""


def src_labels(fam):
    out = set()
    for m in re.finditer(re.escape(fam) + r'(_bucket|_sum|_count)?\{', src_text):
        out |= set(re.findall(r'(\w+)=\\"', src_text[m.start():m.start() + 400]))
    return out


METRIC = re.compile(r"\b((?:healer|process)_[a-z0-9_]+)\b")
used, bad_fam, from_src, bad_fn, bad_label = set(), [], [], [], []
for title, expr in targets:
    names = set(METRIC.findall(expr))
    fams = set()
    for n in names:
        fam, suf = family(n)
        fams.add(fam)
        used.add(fam)
        if fam in types and fam in helps:
            if suf and types[fam] != "histogram":
                bad_fam.append(f"{title}: {n} on a {types[fam]}")
        elif re.search(r'"(# HELP )?' + re.escape(fam) + r'\b', src_text):
            from_src.append(f"{title}: {fam}")
        else:
            bad_fam.append(f"{title}: {n} is not exported")
    for fn, arg in re.findall(r"\b(rate|increase|irate)\(\s*([a-z_:][\w:]*)", expr):
        fam, suf = family(arg)
        if not (types.get(fam) == "counter" or suf == "_bucket"):
            bad_fn.append(f"{title}: {fn}({arg}) on a {types.get(fam, 'unknown')}")
    known = {"job", "instance", "le"}
    for f in fams:
        known |= sample_labels.get(f, set()) | sample_labels.get(f + "_bucket", set()) | \
            src_labels(f)
    labels = set()
    for grp in re.findall(r"\bby\s*\(([^)]*)\)", expr):
        labels |= {x.strip() for x in grp.split(",") if x.strip()}
    for sel in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"(\w+)\s*=~?", sel))
    if labels - known:
        bad_label.append(f"{title}: {sorted(labels - known)} not in {sorted(known)}")
check("every metric the dashboard queries is a family /metrics announces (HELP and TYPE)",
      used and not bad_fam, "\n".join(bad_fam))
if from_src:  # said in the log; the check above already accepted them
    print("accepted from src/ because /metrics has no such family yet: " +
          ", ".join(sorted(set(from_src))), file=sys.stderr)
check("rate()/increase() only over counters and histogram buckets", not bad_fn,
      "\n".join(bad_fn))
check("every label a query groups or filters by is one its metric carries", not bad_label,
      "\n".join(bad_label))
legends = [(p["title"], t.get("legendFormat", ""), t["expr"]) for p in dash["panels"]
           for t in p.get("targets", [])]
bad_legend = [f"{t}: {lf}" for t, lf, e in legends
              for lbl in re.findall(r"\{\{(\w+)\}\}", lf)
              if lbl not in ("instance", "job") and
              not re.search(r"\bby\s*\([^)]*\b" + lbl + r"\b", e)]
check("legends name only labels their query keeps", not bad_legend, "\n".join(bad_legend))

need = {"intake rate": "healer_intake_total",
        "intake latency": "healer_http_request_duration_seconds",
        "queue depth": "healer_queue_depth", "tasks by state": "healer_tasks",
        "attempts by outcome": "healer_attempts_total",
        "time to fix": "healer_time_to_fix_seconds",
        "notifications": "healer_notifications_total",
        "watch restarts": "healer_watch_restarts_total"}
missing = [k for k, m in need.items() if m not in used]
check("panels for intake rate and latency, queue depth, tasks by state, attempts by outcome, "
      "time to fix, notifications and watch restarts", not missing, repr(missing))

# PromQL syntax: every query as a recording rule, through promtool
promtool = shutil.which("promtool")
rules = os.path.join(dl.TMP, "dashboard-rules.yaml")
with open(rules, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (_, expr) in enumerate(targets):
        e = expr.replace("$__rate_interval", "5m").replace("$job", ".*")
        f.write(f"      - record: dashboard:q{i}\n        expr: {json.dumps(e)}\n")
p = subprocess.run([promtool, "check", "rules", rules], capture_output=True,
                   text=True) if promtool else None
check("every query is valid PromQL (promtool check rules)",
      p is not None and p.returncode == 0,
      "promtool not found (scripts/install-deps.sh installs prometheus)" if p is None else
      p.stdout + p.stderr)

dl.finish()
