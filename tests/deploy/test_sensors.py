#!/usr/bin/env python3
"""test_sensors.py - the Argo Events sensors of deploy/argo-events, played
against GitHub's example payloads (npm @octokit/webhooks-examples) as Argo
Events would: the GitHub EventSource's event data (headers, and the body
with X-GitHub-Event / X-GitHub-Delivery added), data filters as Argo
Events applies them (gjson path; string values are regular expressions
matched anywhere, hence anchored), one trigger per matched dependency, and
the HTTP request the trigger sends (headers, the secure Authorization
header read from the Secret's key, dynamic headers, the body under "body"
as raw JSON) sent to a running healer with HEALER_API_TOKEN set. healer
must accept each one (202), take a retry as a duplicate, and refuse the
design's sensor, which sent no token (401). Every trigger, plain and in the
chart, is at-least-once with retries that outlast a long outage of healer:
GitHub's delivery to the EventSource succeeded, so nothing else would send
the event again. Prints TAP."""
import copy
import json
import os
import re
import sys
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib as dl  # noqa: E402
from deploylib import check  # noqa: E402

if not dl.node_ready("yaml", "@octokit/webhooks-examples"):
    dl.skip_all("node or tests/node/node_modules not found (scripts/install-deps.sh)")

TOKEN = "sensor-token-0123456789"
SECRET = {("healer-sensor-auth", "authorization"): f"Bearer {TOKEN}\n"}  # as kubectl stores it

index = json.load(open(os.path.join(dl.NODE_DIR, "node_modules", "@octokit",
                                    "webhooks-examples", "api.github.com", "index.json")))
examples = {e["name"]: e["examples"] for e in index}


def example(name, action, conclusion=None):
    for x in examples.get(name, []):
        obj = x.get(name) if isinstance(x.get(name), dict) else {}
        if x.get("action") == action and (conclusion is None or
                                          obj.get("conclusion") == conclusion):
            return copy.deepcopy(x)
    raise LookupError(f"no {name} {action} {conclusion} example")


def with_conclusion(p, name, conclusion):
    p = copy.deepcopy(p)
    p[name]["conclusion"] = conclusion
    return p


def with_action(p, action):
    p = copy.deepcopy(p)
    p["action"] = action
    return p


secret_alert = {"action": "created",
                "alert": {"number": 7, "secret_type": "github_personal_access_token",
                          "secret_type_display_name": "GitHub Personal Access Token",
                          "state": "open", "html_url": "https://github.com/o/r/security/7"},
                "repository": example("workflow_job", "completed", "failure")["repository"],
                "sender": {"login": "octocat", "type": "User"}}
run_success = example("workflow_run", "completed", "success")
# (event, payload, the dependency that must take it or None)
CASES = [
    ("workflow_job", example("workflow_job", "completed", "failure"), "workflow-job-failure"),
    ("workflow_job", example("workflow_job", "completed", "success"), None),
    ("workflow_job", example("workflow_job", "in_progress"), None),
    ("check_run", example("check_run", "completed", "failure"), "check-run-failure"),
    ("check_run", example("check_run", "completed", "success"), None),
    ("check_run", example("check_run", "requested_action"), None),
    ("workflow_run", with_conclusion(run_success, "workflow_run", "failure"),
     "workflow-run-failure"),
    ("workflow_run", with_conclusion(run_success, "workflow_run", "startup_failure"), None),
    ("workflow_run", run_success, None),
    ("dependabot_alert", example("dependabot_alert", "created"), "security-alert"),
    ("dependabot_alert", with_action(example("dependabot_alert", "created"), "reopened"),
     "security-alert"),
    ("dependabot_alert", with_action(example("dependabot_alert", "created"), "auto_reopened"),
     "security-alert"),
    ("dependabot_alert", with_action(example("dependabot_alert", "created"), "reintroduced"),
     "security-alert"),
    ("dependabot_alert", with_action(example("dependabot_alert", "created"), "auto_dismissed"),
     None),
    ("dependabot_alert", example("dependabot_alert", "fixed"), None),
    ("code_scanning_alert", example("code_scanning_alert", "created"), "security-alert"),
    ("code_scanning_alert", with_action(example("code_scanning_alert", "reopened"),
                                        "reopened_by_user"), "security-alert"),
    ("code_scanning_alert", example("code_scanning_alert", "closed_by_user"), None),
    ("repository_vulnerability_alert", example("repository_vulnerability_alert", "create"),
     "security-alert"),
    ("repository_vulnerability_alert",
     with_action(example("repository_vulnerability_alert", "create"), "reopen"),
     "security-alert"),
    ("repository_vulnerability_alert", example("repository_vulnerability_alert", "dismiss"),
     None),
    ("secret_scanning_alert", secret_alert, "security-alert"),
    ("pull_request", examples["pull_request"][0], None),
]


def event_data(name, payload, delivery):
    """What the GitHub EventSource hands the sensor."""
    body = dict(payload)
    body["X-GitHub-Event"] = name
    body["X-GitHub-Delivery"] = delivery
    return {"headers": {"X-Github-Event": [name], "X-Github-Delivery": [delivery],
                        "Content-Type": ["application/json"]}, "body": body}


def gjson(data, path):
    v = data
    for part in path.split("."):
        if isinstance(v, dict) and part in v:
            v = v[part]
        elif isinstance(v, list) and part.isdigit() and int(part) < len(v):
            v = v[int(part)]
        else:
            return False, None
    return True, v


def as_string(v):
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":")) if isinstance(v, (dict, list)) else \
        ("true" if v is True else "false" if v is False else str(v))


def dep_matches(dep, data):
    f = dep.get("filters", {})
    if set(f) - {"data"} or dep.get("filtersLogicalOperator") or f.get("dataLogicalOperator"):
        raise NotImplementedError("this test plays data filters joined by and only")
    for flt in f.get("data", []):
        ok, v = gjson(data, flt["path"])
        if not ok or flt["type"] != "string" or flt.get("comparator", "=") != "=":
            if ok:
                raise NotImplementedError(f"filter {flt}")
            return False
        if not any(re.search(pat, as_string(v)) for pat in flt["value"]):
            return False
    return True


def resolve(src, events):
    ok, v = gjson(events[src["dependencyName"]], src["dataKey"])
    if not ok:
        raise LookupError(f"{src['dataKey']} missing")
    return v


def trigger_request(trig, events):
    http = trig["template"]["http"]
    headers = dict(http.get("headers", {}))
    for h in http.get("secureHeaders", []):
        ref = h["valueFrom"]["secretKeyRef"]
        headers[h["name"]] = SECRET[(ref["name"], ref["key"])].removesuffix("\n")
    for d in http.get("dynamicHeaders", []):
        headers[d["dest"]] = as_string(resolve(d["src"], events))
    body = {}
    for p in http["payload"]:
        v = resolve(p["src"], events)
        if p["dest"] == "" or "." in p["dest"]:
            raise NotImplementedError(f"payload dest {p['dest']!r}")
        body[p["dest"]] = v if p["src"].get("useRawData") and isinstance(v, (dict, list)) \
            else as_string(v)
    return http["method"], http["url"], headers, json.dumps(body).encode()


plain = dl.plain_manifests()
sensors = [d for _, d in plain if d.get("kind") == "Sensor"]


def go_duration(v):
    """Argo Events' Int64OrString duration in seconds: an integer is
    nanoseconds, a string Go's time.ParseDuration (the units used here)."""
    if isinstance(v, int):
        return v / 1e9
    m = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)", v)
    if not m:
        raise ValueError(f"duration {v!r}")
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3}
    return sum(float(n) * unit[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms)", v))


def retry_waits(b):
    """The waits between a trigger's attempts, jitter aside, as Argo Events
    runs them (DoWithRetry: apimachinery's wait.ExponentialBackoff over
    Convert2WaitBackoff, no cap): `steps` attempts (5 when unset), each wait
    the previous one times `factor` (1 when unset), from `duration` (1s)."""
    steps = b.get("steps") or 5
    d, f = go_duration(b.get("duration", "1s")), float(b.get("factor", 1))
    waits = []
    for _ in range(steps - 1):
        waits.append(d)
        d *= f
    return waits


rendered, _ = dl.render_chart({"sensors": {"enabled": True}})
for src, group in (("deploy/argo-events", sensors),
                   ("the chart", [d for _, d in rendered if d.get("kind") == "Sensor"])):
    trigs = [(s["metadata"]["name"], t) for s in group for t in s["spec"]["triggers"]]
    check(f"{src}: every trigger is at-least-once (a fire-and-forget trigger never retries "
          "and its event is gone once posted)",
          len(trigs) == 4 and all(t.get("atLeastOnce") is True for _, t in trigs),
          repr([(n, t["template"]["name"], t.get("atLeastOnce")) for n, t in trigs]))
    bad = []
    for n, t in trigs:
        b = t.get("retryStrategy") or {}
        w = retry_waits(b)
        if sum(w) < 3 * 3600 or max(w, default=0) > 3600 or \
                not 0 <= float(b.get("jitter", 1)) <= 0.5:
            bad.append(f"{n}/{t['template']['name']}: {b} waits {sum(w):.0f} s in all, "
                       f"at most {max(w, default=0):.0f} s")
    check(f"{src}: every trigger keeps retrying through a 3-hour outage of healer, "
          "never more than an hour between attempts", len(trigs) == 4 and not bad,
          "\n".join(bad))

# The alert actions healer handles (src/event/validate.c's
# event_action_of_interest) against the security sensor's filters: every
# action GitHub sends for an alert event passes the sensor exactly when
# healer handles it (GitHub's actions per event, from its webhook docs).
GITHUB_ALERT_ACTIONS = {
    "dependabot_alert": ["assigned", "auto_dismissed", "auto_reopened", "created",
                         "dismissed", "fixed", "reintroduced", "reopened", "unassigned"],
    "code_scanning_alert": ["appeared_in_branch", "closed_by_user", "created", "fixed",
                            "reopened", "reopened_by_user", "updated_assignment"],
    "secret_scanning_alert": ["assigned", "created", "publicly_leaked", "reopened",
                              "resolved", "unassigned", "validated"],
    "repository_vulnerability_alert": ["create", "dismiss", "reopen", "resolve"],
}
ALERT_KIND = {"dependabot_alert": "HL_EVENT_DEPENDABOT_ALERT",
              "code_scanning_alert": "HL_EVENT_CODE_SCANNING_ALERT",
              "secret_scanning_alert": "HL_EVENT_SECRET_SCANNING_ALERT",
              "repository_vulnerability_alert": "HL_EVENT_REPOSITORY_VULNERABILITY_ALERT"}


def handled_actions():
    """{event: set of actions} as validate.c's event_action_of_interest
    reads: its action lists, and which list each alert kind's case uses."""
    src = open(os.path.join(dl.ROOT, "src", "event", "validate.c")).read()
    body = src[src.index("event_action_of_interest(const"):]
    body = body[:body.index("\n}\n")]
    lists = {m.group(1): set(re.findall(r'"([^"]+)"', m.group(2))) for m in re.finditer(
        r"static const char \*const (\w+)\[\] = \{([^}]*)\}", body)}
    out = {}
    for ev, kind in ALERT_KIND.items():
        m = re.search(re.escape(kind) + r":(?:\s*case \w+:)*\s*return event_one_of\(ev->action, "
                      r"(\w+)\)", body)
        out[ev] = lists[m.group(1)] if m else set()
    return out


handled = handled_actions()
sec = [d for s in sensors for d in s["spec"]["dependencies"]
       if d["name"] == "security-alert"]
rendered_sec = [d for _, x in dl.render_chart({"sensors": {"enabled": True}})[0]
                if x.get("kind") == "Sensor" for d in x["spec"]["dependencies"]
                if d["name"] == "security-alert"]
for src_name, deps in (("deploy/argo-events", sec), ("the chart", rendered_sec)):
    wrong = []
    for ev, actions in GITHUB_ALERT_ACTIONS.items():
        for act in actions:
            data = {"body": {"X-GitHub-Event": ev, "action": act}}
            passes = any(dep_matches(d, data) for d in deps)
            if passes != (act in handled[ev]):
                wrong.append(f"{ev} {act}: sensor {'passes' if passes else 'drops'}, healer "
                             f"{'handles' if act in handled[ev] else 'does not handle'} it")
    check(f"{src_name}: the security sensor passes exactly the alert actions healer handles",
          deps and all(handled.values()) and not wrong, "\n".join(wrong) or repr(handled))

srv = dl.Server({"HEALER_API_TOKEN": TOKEN}, "sensors").start()
routes_hit, bad = set(), []
for i, (name, payload, want) in enumerate(CASES):
    delivery = f"00000000-0000-0000-0000-{i:012d}"
    data = event_data(name, payload, delivery)
    took = [(s, d["name"]) for s in sensors for d in s["spec"]["dependencies"]
            if d["eventSourceName"] == "github" and d["eventName"] == "org" and
            dep_matches(d, data)]
    got = took[0][1] if len(took) == 1 else None
    concl = (payload.get(name) or {}).get("conclusion") if isinstance(payload.get(name),
                                                                      dict) else None
    label = f"{name} {payload.get('action')}" + (f" {concl}" if concl else "")
    check(f"sensor filters: {label} -> {want or 'dropped'}",
          (got == want) and len(took) <= 1, f"taken by {[t[1] for t in took]}")
    if not took:
        continue
    sensor, dep = took[0]
    fired = [t for t in sensor["spec"]["triggers"] if t["template"].get("conditions") == dep]
    if len(fired) != 1:
        bad.append(f"{label}: {len(fired)} triggers for {dep}")
        continue
    method, url, headers, body = trigger_request(fired[0], {dep: data})
    path = urlparse(url).path
    routes_hit.add(path)
    st, raw = srv.request(method, path, body, headers)
    ans = json.loads(raw) if raw.startswith(b"{") else {}
    st2, raw2 = srv.request(method, path, body, headers)  # the trigger's retry
    ans2 = json.loads(raw2) if raw2.startswith(b"{") else {}
    check(f"healer takes the {dep} trigger's request ({label}): 202, a retry is a duplicate",
          st == 202 and ans.get("status") in ("accepted", "skipped") and
          ans.get("delivery_id") == delivery and st2 == 202 and
          ans2.get("status") == "duplicate", f"{st} {raw[:300]!r}\n{st2} {raw2[:300]!r}")
    if dep == "workflow-job-failure":
        no_auth = {k: v for k, v in headers.items() if k != "Authorization"}
        st3, _ = srv.request(method, path, body, no_auth)
        check("the design's sensor (no Authorization header) would get 401", st3 == 401,
              repr(st3))
        st4, _ = srv.request(method, path, body,
                             dict(headers, Authorization="Bearer wrong"))
        check("a wrong token gets 401", st4 == 401, repr(st4))
srv.stop()
check("every trigger fires for its own dependency only", not bad, "\n".join(bad))
check("both routes were exercised",
      routes_hit == {"/api/remediate/ci-failure", "/api/remediate/security-alert"},
      repr(routes_hit))
log = open(srv.log, errors="replace").read()
check("the token never appears in healer's log", TOKEN not in log, "")

dl.finish()
