#!/usr/bin/env python3
"""kube_stub.py - a Kubernetes API server stand-in for healer's tests.

Behaves like kube-apiserver for what healer uses (apis.md section 1):
- TLS (cert/key from the test's throw-away CA), bearer-token auth (401
  Status otherwise); every error is a Status object (kind, status Failure,
  message, reason, code, details);
- a resourceVersion on every object and every list (one global counter);
- pods (label selectors a=b, a!=b, a, !a, in, notin), pod logs (container
  choice, tailLines, previous, the apiserver's and kubelet's 400 messages),
  events with fieldSelector involvedObject.name, ArgoCD Applications;
- CodeRuns (agents.platform/v1): create with name or generateName (201, 409
  AlreadyExists, 422 Invalid: label values and the CRD's required spec
  fields, read from deploy/crds/coderun.yaml), get, list (limit/continue
  pages; a continue token older than a compaction is 410 Expired), PATCH /
  PUT of the object (status ignored) and of the status subresource
  (/status: merge patch, or PUT of the whole object; a stale
  metadata.resourceVersion is 409 Conflict; strategic merge is 415),
  DELETE (200 with the last state; unless propagationPolicy=Orphan the
  pods of the CodeRun's Job, label job-name=<status.jobName>, go too);
- watch (?watch=1): chunked JSON lines {"type","object"}; without a
  resourceVersion (or "0") a synthetic ADDED per existing object first;
  with a labelSelector, an object whose labels stop matching is DELETED
  (its last matching state; it still exists) and one that starts matching
  is ADDED, as the watch cache does;
  a resourceVersion older than the last compaction is 410 Gone, as an
  HTTP 410 or as an ERROR event in a 200 stream (config "gone_mode");
  BOOKMARK events (when allowWatchBookmarks=true) every "bookmark_ms" and
  on /_stub/bookmark; timeoutSeconds (capped at "watch_max_s", default 30)
  ends the stream normally.

Extra controls (besides stubcommon's, which also inject 401/403/409/422/
429/503 with Status bodies through "rules"; "query": {"watch": "1"} picks
watch requests only):
  POST /_stub/seed            {"pods": [...], "logs": [{"namespace","pod",
                              "container","previous","text"}], "events": [...],
                              "applications": [...], "coderuns": [...] (stored
                              as given, creationTimestamp kept: made earlier)}
  POST /_stub/coderun-phase   {"namespace","name","phase","message","status"}:
                              set the phase (and merge "status"), as the
                              controller would
  POST /_stub/coderun-script  {"namespace","name","steps": [{"after_ms",
                              "phase","message","status"}]}: the same, step by
                              step in the background (Running -> Succeeded)
  POST /_stub/compact         every resourceVersion so far becomes too old, and
                              open watch streams end (as after an etcd compaction)
  POST /_stub/bookmark        every open watch that asked for bookmarks gets one
  POST /_stub/cut             every open watch stream is cut (no final chunk)
  GET  /_stub/watchers        {"open": streams open now, "started": watch requests}
  GET  /_stub/coderuns        every stored CodeRun, in any namespace; only
                              those whose labels match S with ?labelSelector=S,
                              in phase P with ?phase=P (?phase= : no phase yet)
  GET  /_stub/deleted         every DELETE: {"kind","namespace","name",
                              "propagationPolicy","pods": [pods collected]}
Config keys: "gone_mode": "http"|"event"; "watch_close_after": N events
(then a normal end); "watch_cut_after": N events (then a cut connection);
"watch_error": {"code": C, "times": T, "retry_after": S} (an ERROR event with
that code, then the end); "bookmark_ms": N; "watch_max_s": N;
"continue_gone": N (the next N continue tokens are 410 Expired);
"create_reply_delay_ms": N (a CodeRun create is stored and watched at once,
answered N ms later); "create_reply_lost": N (the next N creates are stored,
then answered 503); "list_page_delay_ms": N (each CodeRun list page is
answered N ms late, a slow apiserver: a list of many pages takes long);
"watch_hide": [names] (changes of these CodeRuns are sent on no watch
stream, as if the watch missed them; lists and GETs still show them).

usage: kube_stub.py --cert C --key K --token T --crd deploy/crds/coderun.yaml
"""
import argparse
import base64
import json
import random
import re
import socket
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import stubcommon

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
CR_PREFIX = "/apis/agents.platform/v1/namespaces/"


# ---- a YAML subset reader (block mappings, block lists, scalars), enough
# for the CRD file; stdlib has no YAML ----
def _lines(text):
    out = []
    for raw in text.splitlines():
        s = raw.split(" #")[0] if not raw.lstrip().startswith("#") else ""
        if not s.strip():
            continue
        out.append((len(s) - len(s.lstrip(" ")), s.strip()))
    return out


def _scalar(s):
    if s in ("{}",):
        return {}
    if s in ("[]",):
        return []
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    if s == "true":
        return True
    if s == "false":
        return False
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    return s


KEY_RE = re.compile(r"^([^:'\"]+):(?:\s+(.*))?$")


def _block(lines, i, indent):
    if i >= len(lines):
        return None, i
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        items = []
        while i < len(lines) and lines[i][0] == indent and (
                lines[i][1].startswith("- ") or lines[i][1] == "-"):
            rest = lines[i][1][1:].strip()
            if not rest:
                v, i = _block(lines, i + 1, lines[i + 1][0])
            elif KEY_RE.match(rest):
                lines[i] = (indent + 2, rest)
                v, i = _block(lines, i, indent + 2)
            else:
                v, i = _scalar(rest), i + 1
            items.append(v)
        return items, i
    obj = {}
    while i < len(lines) and lines[i][0] == indent:
        m = KEY_RE.match(lines[i][1])
        if not m:
            raise ValueError(f"cannot parse {lines[i][1]!r}")
        key, rest = m.group(1).strip(), (m.group(2) or "").strip()
        i += 1
        if rest:
            obj[key] = _scalar(rest)
        elif i < len(lines) and (lines[i][0] > indent or (
                lines[i][0] == indent and lines[i][1].startswith("-"))):
            obj[key], i = _block(lines, i, lines[i][0])
        else:
            obj[key] = None
    return obj, i


def mini_yaml(text):
    lines = _lines(text)
    v, _ = _block(lines, 0, lines[0][0] if lines else 0)
    return v


def crd_required(path):
    crd = mini_yaml(open(path).read())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    return spec.get("required", []), spec["properties"]["cliConfig"].get("required", []), spec


# ---- selectors ----
def split_terms(sel):
    terms, depth, cur = [], 0, ""
    for ch in sel:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def label_match(labels, sel):
    labels = labels or {}
    for t in split_terms(sel or ""):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s*\((.*)\)", t)
        if m:
            vals = [v.strip() for v in m.group(3).split(",")]
            have = labels.get(m.group(1))
            if m.group(2) == "in" and have not in vals:
                return False
            if m.group(2) == "notin" and have in vals:
                return False
        elif t.startswith("!"):
            if t[1:].strip() in labels:
                return False
        elif "!=" in t:
            k, v = t.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in t:
            k, v = t.split("=", 1)
            v = v[1:] if v.startswith("=") else v
            if labels.get(k.strip()) != v.strip():
                return False
        elif t not in labels:
            return False
    return True


def selector_event(typ, obj, prev, sel):
    """The event a watch with label selector sel gets for a change, as the
    apiserver's watch cache makes it (apiserver pkg/storage/cacher/
    cache_watcher.go convertToWatchEvent): a MODIFIED object that starts
    matching is ADDED; one that stops matching (its labels edited) is
    DELETED, carrying its last state that matched with the event's
    resourceVersion, though the object still exists; None when the watch
    sees nothing of it."""
    now = label_match(obj["metadata"].get("labels"), sel)
    if typ != "MODIFIED" or prev is None:
        return {"type": typ, "object": obj} if now else None
    before = label_match(prev["metadata"].get("labels"), sel)
    if now:
        return {"type": "MODIFIED" if before else "ADDED", "object": obj}
    if not before:
        return None
    last = copy(prev)
    last["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
    return {"type": "DELETED", "object": last}


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType",
           422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def copy(obj):
    return json.loads(json.dumps(obj))


class KubeState:
    def __init__(self, crd_path):
        self.cond = threading.Condition()
        self.rv = 100
        self.min_rv = 0
        self.epoch = 0  # bumped by compaction: open watches end
        self.cut_epoch = 0  # bumped by /_stub/cut: open watches are cut
        self.bookmark_epoch = 0  # bumped by /_stub/bookmark
        self.watch_open = 0
        self.watch_started = 0
        self.pods = {}
        self.logs = {}
        self.events = []
        self.apps = {}
        self.coderuns = {}
        self.deleted = []
        self.history = []  # (rv, type, ns, obj, the object before a MODIFIED or None)
        self.required, self.cli_required, self.spec_schema = crd_required(crd_path)

    def bump(self):
        self.rv += 1
        return str(self.rv)

    def changed(self, typ, ns, obj, prev=None):
        """Records a change of obj (its resourceVersion already bumped); prev
        is its state before a MODIFIED, which a selector watch needs."""
        self.history.append((self.rv, typ, ns, copy(obj), copy(prev) if prev else None))
        self.cond.notify_all()

    def set_status(self, ns, name, phase=None, message=None, status=None):
        """What the controller does; returns the object or None."""
        cr = self.coderuns.get((ns, name))
        if not cr:
            return None
        prev = copy(cr)
        st = cr.setdefault("status", {})
        if status:
            cr["status"] = st = merge_patch(st, status)
        if phase:
            st["phase"] = phase
        if message:
            st["message"] = message
        cr["metadata"]["resourceVersion"] = self.bump()
        self.changed("MODIFIED", ns, cr, prev)
        return cr


class KubeHandler(stubcommon.StubHandler):
    state = None
    token = None

    def authed(self):
        return self.headers.get("Authorization") == f"Bearer {self.token}"

    def rule_body(self, status):
        return status_obj(status, REASONS.get(status, "InternalError"),
                          f"injected by the test ({status})")

    def fail(self, code, message, details=None):
        self.read_body()
        return self.send(code, status_obj(code, REASONS.get(code, "InternalError"), message,
                                          details))

    def stub_control(self, path):
        st = self.state
        if path == "/_stub/seed" and self.command == "POST":
            body = self.body_json() or {}
            with st.cond:
                for p in body.get("pods", []):
                    m = p.setdefault("metadata", {})
                    m.setdefault("namespace", "default")
                    m.setdefault("creationTimestamp",
                                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                    m["resourceVersion"] = st.bump()
                    st.pods[(m["namespace"], m["name"])] = p
                for lg in body.get("logs", []):
                    st.logs[(lg.get("namespace", "default"), lg["pod"], lg["container"],
                             bool(lg.get("previous")))] = lg["text"]
                for e in body.get("events", []):
                    e.setdefault("metadata", {}).setdefault("namespace", "default")
                    e["metadata"]["resourceVersion"] = st.bump()
                    st.events.append(e)
                for a in body.get("applications", []):
                    m = a["metadata"]
                    m["resourceVersion"] = st.bump()
                    st.apps[(m.get("namespace", "argocd"), m["name"])] = a
                for c in body.get("coderuns", []):
                    # objects made earlier (their creationTimestamp kept),
                    # as a list or a watch of a long-lived cluster shows them
                    m = c.setdefault("metadata", {})
                    m.setdefault("namespace", "default")
                    m.setdefault("uid", str(uuid.uuid4()))
                    m.setdefault("creationTimestamp",
                                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                    m["resourceVersion"] = st.bump()
                    st.coderuns[(m["namespace"], m["name"])] = c
                    st.changed("ADDED", m["namespace"], c)
            self.send(200, {"ok": True})
            return True
        if path == "/_stub/coderun-phase" and self.command == "POST":
            body = self.body_json() or {}
            with st.cond:
                cr = st.set_status(body.get("namespace", "default"), body["name"],
                                   body.get("phase"), body.get("message"), body.get("status"))
                cr = copy(cr) if cr else None
            if not cr:
                self.send(404, {"message": "no such coderun"})
            else:
                self.send(200, cr)
            return True
        if path == "/_stub/coderun-script" and self.command == "POST":
            body = self.body_json() or {}

            def run():
                for step in body.get("steps", []):
                    time.sleep(step.get("after_ms", 0) / 1000.0)
                    with st.cond:
                        st.set_status(body.get("namespace", "default"), body["name"],
                                      step.get("phase"), step.get("message"), step.get("status"))
            threading.Thread(target=run, daemon=True).start()
            self.send(200, {"ok": True})
            return True
        if path == "/_stub/compact" and self.command == "POST":
            self.read_body()
            with st.cond:
                st.bump()
                st.min_rv = st.rv  # older versions are gone; a fresh list is fine
                st.history = []
                st.epoch += 1
                st.cond.notify_all()
            self.send(200, {"min_rv": st.min_rv})
            return True
        if path in ("/_stub/bookmark", "/_stub/cut") and self.command == "POST":
            self.read_body()
            with st.cond:
                if path == "/_stub/bookmark":
                    st.bookmark_epoch += 1
                else:
                    st.cut_epoch += 1
                st.cond.notify_all()
            self.send(200, {"ok": True})
            return True
        if path == "/_stub/watchers":
            with st.cond:
                self.send(200, {"open": st.watch_open, "started": st.watch_started})
            return True
        if path == "/_stub/coderuns":
            q = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
            sel, phase = q.get("labelSelector", [None])[0], q.get("phase", [None])[0]
            with st.cond:
                self.send(200, [c for c in st.coderuns.values()
                                if (sel is None or label_match(c["metadata"].get("labels"), sel))
                                and (phase is None
                                     or ((c.get("status") or {}).get("phase") or "") == phase)])
            return True
        if path == "/_stub/deleted":
            with st.cond:
                self.send(200, st.deleted)
            return True
        return False

    def route(self, path, q):
        if not self.authed():
            return self.fail(401, "Unauthorized")
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods(?:/([^/]+))?(/log)?", path)
        if m and self.command == "GET":
            return self.pods(m.group(1), m.group(2), bool(m.group(3)), q)
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/events", path)
        if m and self.command == "GET":
            return self.list_events(m.group(1), q)
        m = re.fullmatch(r"/apis/argoproj\.io/v1alpha1/namespaces/([^/]+)/applications/([^/]+)",
                         path)
        if m and self.command == "GET":
            app = self.state.apps.get((m.group(1), m.group(2)))
            if not app:
                return self.fail(404, f'applications.argoproj.io "{m.group(2)}" not found')
            return self.send(200, app)
        m = re.fullmatch(r"/apis/agents\.platform/v1/namespaces/([^/]+)/coderuns(?:/([^/]+))?(/status)?",
                         path)
        if m:
            return self.coderuns(m.group(1), m.group(2), bool(m.group(3)), q)
        self.fail(404, "the server could not find the requested resource")

    # ---- pods ----
    def pods(self, ns, name, log, q):
        st = self.state
        with st.cond:
            if name is None:
                items = [p for (n, _), p in st.pods.items() if n == ns
                         and label_match(p["metadata"].get("labels"), q.get("labelSelector"))]
                return self.send(200, {"apiVersion": "v1", "kind": "PodList",
                                       "metadata": {"resourceVersion": str(st.rv)}, "items": items})
            pod = st.pods.get((ns, name))
            if not pod:
                return self.send(404, status_obj(404, "NotFound", f'pods "{name}" not found',
                                                 {"name": name, "kind": "pods"}))
            if not log:
                return self.send(200, pod)
            names = [c["name"] for c in pod.get("spec", {}).get("containers", [])]
            inits = [c["name"] for c in pod.get("spec", {}).get("initContainers", [])]
            c = q.get("container")
            if not c:
                if len(names) != 1:
                    return self.send(400, status_obj(
                        400, "BadRequest",
                        f"a container name must be specified for pod {name}, choose one of: "
                        f"[{' '.join(names)}]"))
                c = names[0]
            if c not in names and c not in inits:
                return self.send(400, status_obj(
                    400, "BadRequest", f"container {c} is not valid for pod {name}"))
            prev = q.get("previous") == "true"
            text = st.logs.get((ns, name, c, prev))
            if text is None:
                if prev:
                    return self.send(400, status_obj(
                        400, "BadRequest",
                        f'previous terminated container "{c}" in pod "{name}" not found'))
                text = ""
        tail = int(q.get("tailLines") or 0)
        if tail > 0:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-tail:])
        self.send(200, text, ctype="text/plain")

    def list_events(self, ns, q):
        st = self.state
        want = {}
        for term in split_terms(q.get("fieldSelector", "")):
            k, v = term.split("=", 1)
            want[k.strip()] = v.lstrip("=").strip()
        with st.cond:
            items = []
            for e in st.events:
                if e["metadata"].get("namespace") != ns:
                    continue
                if "involvedObject.name" in want and \
                        e.get("involvedObject", {}).get("name") != want["involvedObject.name"]:
                    continue
                items.append(e)
            self.send(200, {"apiVersion": "v1", "kind": "EventList",
                            "metadata": {"resourceVersion": str(st.rv)}, "items": items})

    # ---- coderuns ----
    def validate(self, obj, ns):
        causes = []
        md = obj.get("metadata") or {}
        if obj.get("apiVersion") != "agents.platform/v1" or obj.get("kind") != "CodeRun":
            return 400, status_obj(400, "BadRequest", "the API version in the data "
                                   f"({obj.get('apiVersion')}) does not match the expected "
                                   "API version (agents.platform/v1)")
        if md.get("namespace") and md["namespace"] != ns:
            return 400, status_obj(400, "BadRequest", "the namespace of the provided object "
                                   "does not match the namespace sent on the request")
        name = md.get("name")
        if name is not None and (len(name) > 253 or not DNS_SUBDOMAIN.match(name)):
            causes.append({"reason": "FieldValueInvalid", "field": "metadata.name",
                           "message": f'Invalid value: "{name}": a lowercase RFC 1123 subdomain'})
        for k, v in (md.get("labels") or {}).items():
            key_name = k.split("/")[-1]
            if len(key_name) > 63 or not key_name or not LABEL_VALUE.match(key_name):
                causes.append({"reason": "FieldValueInvalid", "field": "metadata.labels",
                               "message": f'Invalid value: "{k}": name part must consist of '
                                          "alphanumeric characters, '-', '_' or '.'"})
            if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
                causes.append({"reason": "FieldValueInvalid", "field": "metadata.labels",
                               "message": f'Invalid value: "{v}": a valid label must be an empty '
                                          "string or consist of alphanumeric characters, '-', "
                                          "'_' or '.', and must start and end with an "
                                          "alphanumeric character (must be no more than 63 "
                                          "characters)"})
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            causes.append({"reason": "FieldValueRequired", "field": "spec",
                           "message": "Required value"})
            spec = {}
        for f in self.state.required:
            if f not in spec:
                causes.append({"reason": "FieldValueRequired", "field": f"spec.{f}",
                               "message": "Required value"})
            elif not isinstance(spec[f], str):
                causes.append({"reason": "FieldValueTypeInvalid", "field": f"spec.{f}",
                               "message": "Invalid value: must be of type string"})
        env = spec.get("env")
        if env is not None and (not isinstance(env, dict) or
                                any(not isinstance(v, str) for v in env.values())):
            causes.append({"reason": "FieldValueTypeInvalid", "field": "spec.env",
                           "message": "Invalid value: must be a map of strings"})
        cli = spec.get("cliConfig")
        if cli is not None:
            for f in self.state.cli_required:
                if not isinstance(cli, dict) or f not in cli:
                    causes.append({"reason": "FieldValueRequired",
                                   "field": f"spec.cliConfig.{f}", "message": "Required value"})
        if "taskId" in spec and not isinstance(spec["taskId"], int):
            causes.append({"reason": "FieldValueTypeInvalid", "field": "spec.taskId",
                           "message": "Invalid value: must be of type integer"})
        if causes:
            msg = "CodeRun.agents.platform \"%s\" is invalid: %s" % (
                name or md.get("generateName", ""),
                ", ".join(f"{c['field']}: {c['message']}" for c in causes))
            return 422, status_obj(422, "Invalid", msg, {"name": name, "group": "agents.platform",
                                                          "kind": "CodeRun", "causes": causes})
        return 0, None

    def list_coderuns(self, ns, q):
        st = self.state
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            return self.fail(400, "invalid limit")
        with st.cond:
            snapshot, after = st.rv, ""
            if q.get("continue"):
                try:
                    tok = json.loads(base64.urlsafe_b64decode(q["continue"].encode()))
                    snapshot, after = int(tok["rv"]), tok["after"]
                except (ValueError, KeyError, TypeError):
                    return self.fail(400, "continue key is not valid")
                if snapshot < st.min_rv or self.server.config.get("continue_gone", 0) > 0:
                    if self.server.config.get("continue_gone", 0) > 0:
                        self.server.config["continue_gone"] -= 1
                    return self.fail(410, "The provided continue parameter is too old to display "
                                     "a consistent list result. You can start a new list without "
                                     "the continue parameter.")
            items = sorted((c for (n, _), c in st.coderuns.items() if n == ns
                            and label_match(c["metadata"].get("labels"), q.get("labelSelector"))
                            and c["metadata"]["name"] > after),
                           key=lambda c: c["metadata"]["name"])
            md = {"resourceVersion": str(snapshot)}
            if limit and len(items) > limit:
                items = items[:limit]
                md["continue"] = base64.urlsafe_b64encode(json.dumps(
                    {"rv": snapshot, "after": items[-1]["metadata"]["name"]}).encode()).decode()
                md["remainingItemCount"] = len(st.coderuns) - limit
            page = {"apiVersion": "agents.platform/v1", "kind": "CodeRunList",
                    "metadata": md, "items": copy(items)}
        delay = self.server.config.get("list_page_delay_ms", 0)
        if delay:
            time.sleep(delay / 1000.0)
        return self.send(200, page)

    def create_coderun(self, ns):
        st = self.state
        obj = self.body_json()
        if not isinstance(obj, dict):
            return self.fail(400, "invalid JSON body")
        code, err = self.validate(obj, ns)
        if code:
            return self.send(code, err)
        md = obj["metadata"]
        with st.cond:
            if not md.get("name"):
                if not md.get("generateName"):
                    return self.fail(422, "metadata.name: Required value: name or "
                                     "generateName is required")
                md["name"] = md["generateName"] + "".join(
                    random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
            if (ns, md["name"]) in st.coderuns:
                return self.send(409, status_obj(
                    409, "AlreadyExists",
                    f'coderuns.agents.platform "{md["name"]}" already exists',
                    {"name": md["name"], "group": "agents.platform", "kind": "coderuns"}))
            md["namespace"] = ns
            md["uid"] = str(uuid.uuid4())
            md["generation"] = 1
            md["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            md["resourceVersion"] = st.bump()
            obj.pop("status", None)  # the status subresource ignores it on create
            st.coderuns[(ns, md["name"])] = obj
            st.changed("ADDED", ns, obj)
        # the answer may come late (a slow apiserver): the object is already
        # stored and watched, and the controller may move it meanwhile
        delay = self.server.config.get("create_reply_delay_ms", 0)
        if delay:
            time.sleep(delay / 1000.0)
        # or lost on its way (a gateway's 503): stored all the same
        with st.cond:
            lost = int(self.server.config.get("create_reply_lost", 0))
            if lost > 0:
                self.server.config["create_reply_lost"] = lost - 1
        if lost > 0:
            return self.fail(503, "the server is currently unable to handle the request")
        return self.send(201, obj)

    def conflict(self, name):
        return self.fail(409, f'Operation cannot be fulfilled on coderuns.agents.platform "{name}": '
                         "the object has been modified; please apply your changes to the latest "
                         "version and try again", {"name": name, "group": "agents.platform",
                                                   "kind": "coderuns"})

    def update_coderun(self, ns, name, cr, status_sub):
        """PATCH (merge) or PUT of the object or of its status subresource."""
        st = self.state
        body = self.body_json()
        if not isinstance(body, dict):
            return self.fail(400, "invalid JSON body")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if self.command == "PATCH" and ctype not in ("application/merge-patch+json",
                                                     "application/json"):
            return self.fail(415, f"the body of the request was in an unknown format - accepted "
                             "media types include: application/merge-patch+json")
        want_rv = (body.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != cr["metadata"]["resourceVersion"]:
            return self.conflict(name)
        prev = copy(cr)
        if self.command == "PUT":
            new = body
        else:
            new = merge_patch(cr, body)
        if status_sub:
            cr["status"] = new.get("status") or {}
        else:
            # the main resource ignores status; spec changes bump generation
            if new.get("spec") != cr.get("spec"):
                cr["metadata"]["generation"] = cr["metadata"].get("generation", 1) + 1
            cr["spec"] = new.get("spec", cr.get("spec"))
            for k in ("labels", "annotations"):
                if k in (new.get("metadata") or {}):
                    cr["metadata"][k] = new["metadata"][k]
        cr["metadata"]["resourceVersion"] = st.bump()
        st.changed("MODIFIED", ns, cr, prev)
        return self.send(200, cr)

    def delete_coderun(self, ns, name, cr, q):
        st = self.state
        self.read_body()
        policy = q.get("propagationPolicy", "")
        del st.coderuns[(ns, name)]
        cr["metadata"]["resourceVersion"] = st.bump()
        cr["metadata"]["deletionTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        st.changed("DELETED", ns, cr)
        gone = []
        job = (cr.get("status") or {}).get("jobName")
        if job and policy != "Orphan":  # the garbage collector takes the Job's pods
            for key in [k for k, p in st.pods.items() if k[0] == ns
                        and (p["metadata"].get("labels") or {}).get("job-name") == job]:
                del st.pods[key]
                gone.append(key[1])
        st.deleted.append({"kind": "CodeRun", "namespace": ns, "name": name,
                           "propagationPolicy": policy, "pods": gone})
        return self.send(200, cr)

    def coderuns(self, ns, name, status_sub, q):
        st = self.state
        if name is None and self.command == "GET" and q.get("watch") in ("1", "true"):
            return self.watch(ns, q)
        if name is None and self.command == "GET":
            return self.list_coderuns(ns, q)
        if name is None and self.command == "POST":
            return self.create_coderun(ns)
        with st.cond:
            cr = st.coderuns.get((ns, name))
            if not cr:
                return self.fail(404, f'coderuns.agents.platform "{name}" not found',
                                 {"name": name, "group": "agents.platform", "kind": "coderuns"})
            if self.command == "GET":
                return self.send(200, cr)
            if self.command == "DELETE" and not status_sub:
                return self.delete_coderun(ns, name, cr, q)
            if self.command in ("PATCH", "PUT"):
                return self.update_coderun(ns, name, cr, status_sub)
        self.fail(405, "method not allowed")

    # ---- watch ----
    def watch(self, ns, q):
        st = self.state
        cfg = self.server.config
        rvq = q.get("resourceVersion") or ""
        try:
            rv = int(rvq) if rvq not in ("", "0") else None
        except ValueError:
            return self.fail(400, f'resourceVersion: Invalid value: "{rvq}"')
        sel = q.get("labelSelector")
        bookmarks = q.get("allowWatchBookmarks") == "true"
        timeout = min(float(q.get("timeoutSeconds") or 30), float(cfg.get("watch_max_s", 30)))
        with st.cond:
            st.watch_started += 1
            gone = rv is not None and rv < st.min_rv
            # what later controls are measured against, taken as the request
            # arrives (a test waits for "started" before it compacts or cuts)
            min_rv, epochs = st.min_rv, (st.epoch, st.cut_epoch, st.bookmark_epoch)
        if gone:
            status = status_obj(410, "Expired", f"too old resource version: {rv} ({min_rv})")
            if cfg.get("gone_mode", "http") == "http":
                return self.send(410, status)
            self.start_stream()
            self.chunk({"type": "ERROR", "object": status})
            return self.end_stream()
        self.start_stream()
        with st.cond:
            st.watch_open += 1
        try:
            self.stream(ns, rv, sel, bookmarks, timeout, cfg, epochs)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            with st.cond:
                st.watch_open -= 1

    def stream(self, ns, rv, sel, bookmarks, timeout, cfg, epochs):
        """Streams events after rv until the timeout, a compaction or a cut
        after the request arrived (epochs), or a configured end."""
        st = self.state
        end = time.time() + timeout
        sent = 0
        close_after = cfg.get("watch_close_after", 0)
        cut_after = cfg.get("watch_cut_after", 0)
        werr = cfg.get("watch_error")
        bookmark_s = cfg.get("bookmark_ms", 0) / 1000.0
        next_bm = time.time() + bookmark_s if bookmark_s else None
        epoch, cut_epoch, bm_epoch = epochs
        with st.cond:
            out = []
            if rv is None:  # "get state and start at most recent": synthetic ADDED
                out = [{"type": "ADDED", "object": copy(c)}
                       for (n, _), c in sorted(st.coderuns.items()) if n == ns
                       and label_match(c["metadata"].get("labels"), sel)]
                rv = st.rv
        while True:
            for ev in out:
                self.chunk(ev)
                sent += 1
                if cut_after and sent >= cut_after:
                    return self.cut()
                if close_after and sent >= close_after:
                    return self.end_stream()
            out = []
            with st.cond:
                if werr and werr.get("times", 1) > werr.get("sent", 0):
                    werr["sent"] = werr.get("sent", 0) + 1
                    obj = status_obj(werr["code"], REASONS.get(werr["code"], "InternalError"),
                                     "injected watch error")
                    if werr.get("retry_after"):
                        obj["details"] = {"retryAfterSeconds": werr["retry_after"]}
                    out = [{"type": "ERROR", "object": obj}]
                    bm = None
                else:
                    if st.epoch != epoch:
                        break  # compaction: the stream ends
                    if st.cut_epoch != cut_epoch:
                        return self.cut()
                    hide = cfg.get("watch_hide") or []
                    for (erv, typ, ens, obj, prev) in st.history:
                        if erv <= rv or ens != ns or obj["metadata"]["name"] in hide:
                            continue
                        ev = selector_event(typ, obj, prev, sel)
                        if ev:
                            out.append(ev)
                    rv = max(rv, st.rv)
                    bm = None
                    if bookmarks and (st.bookmark_epoch != bm_epoch or
                                      (next_bm and time.time() >= next_bm)):
                        bm_epoch = st.bookmark_epoch
                        next_bm = time.time() + bookmark_s if bookmark_s else None
                        bm = {"type": "BOOKMARK", "object": {
                            "kind": "CodeRun", "apiVersion": "agents.platform/v1",
                            "metadata": {"resourceVersion": str(rv)}}}
                    if not out and bm is None:
                        if time.time() >= end:
                            break
                        st.cond.wait(max(0.0, min(0.1, end - time.time())))
                        continue
            if out and out[0]["type"] == "ERROR":
                self.chunk(out[0])
                return self.end_stream()
            if bm is not None:
                out.append(bm)
        self.end_stream()

    def cut(self):
        """Drops the connection mid-stream, as a dying apiserver or proxy does."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--token", required=True)
    ap.add_argument("--crd", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    KubeHandler.state = KubeState(a.crd)
    KubeHandler.token = a.token
    stubcommon.serve(KubeHandler, a.port, a.cert, a.key)
    stubcommon.wait_forever()


if __name__ == "__main__":
    main()
