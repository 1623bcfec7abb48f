#!/usr/bin/env python3
"""kube_stub.py - a Kubernetes API server stand-in for healer's tests.

Behaves like the real API for what healer uses: TLS (cert/key from the test's
throw-away CA), bearer-token auth (401 Status otherwise), namespaced pods,
pod logs (container choice, tailLines, previous), events with fieldSelector,
CodeRuns (agents.platform/v1) with generateName, 201 on create, 409
AlreadyExists and 422 Invalid as real Status objects (label values and the
CRD's required spec fields are validated, the required lists being read from
deploy/crds/coderun.yaml), label selectors (a=b, a!=b, a, !a, in, notin),
resourceVersion, watch streams (chunked JSON lines) with 410 Gone for a
compacted resourceVersion (as an HTTP 410 or an ERROR event), the status
subresource (PATCH .../status), and ArgoCD Application objects.

Extra controls (besides stubcommon's):
  POST /_stub/seed           {"pods": [...], "logs": [{"namespace","pod",
                             "container","previous","text"}], "events": [...],
                             "applications": [...]}
  POST /_stub/coderun-phase  {"namespace","name","phase","message"}
  POST /_stub/compact        every resourceVersion so far becomes too old, and
                             open watch streams end (as after an etcd compaction)
  GET  /_stub/coderuns       every stored CodeRun
Config keys: "gone_mode": "http"|"event"; "watch_close_after": N events.

usage: kube_stub.py --cert C --key K --token T --crd deploy/crds/coderun.yaml
"""
import argparse
import json
import random
import re
import threading
import time
import uuid

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


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


class KubeState:
    def __init__(self, crd_path):
        self.cond = threading.Condition()
        self.rv = 100
        self.min_rv = 0
        self.epoch = 0  # bumped by compaction: open watches end
        self.pods = {}
        self.logs = {}
        self.events = []
        self.apps = {}
        self.coderuns = {}
        self.history = []  # (rv, type, ns, obj)
        self.required, self.cli_required, self.spec_schema = crd_required(crd_path)

    def bump(self):
        self.rv += 1
        return str(self.rv)


class KubeHandler(stubcommon.StubHandler):
    state = None
    token = None

    def authed(self):
        return self.headers.get("Authorization") == f"Bearer {self.token}"

    def stub_control(self, path):
        st = self.state
        if path == "/_stub/seed" and self.command == "POST":
            body = self.body_json() or {}
            with st.cond:
                for p in body.get("pods", []):
                    m = p.setdefault("metadata", {})
                    m.setdefault("namespace", "default")
                    m["resourceVersion"] = st.bump()
                    st.pods[(m["namespace"], m["name"])] = p
                for lg in body.get("logs", []):
                    st.logs[(lg.get("namespace", "default"), lg["pod"], lg["container"],
                             bool(lg.get("previous")))] = lg["text"]
                for e in body.get("events", []):
                    e.setdefault("metadata", {}).setdefault("namespace", "default")
                    st.events.append(e)
                for a in body.get("applications", []):
                    m = a["metadata"]
                    st.apps[(m.get("namespace", "argocd"), m["name"])] = a
            self.send(200, {"ok": True})
            return True
        if path == "/_stub/coderun-phase" and self.command == "POST":
            body = self.body_json() or {}
            with st.cond:
                key = (body.get("namespace", "default"), body["name"])
                cr = st.coderuns.get(key)
                if not cr:
                    self.send(404, {"message": "no such coderun"})
                    return True
                cr.setdefault("status", {})["phase"] = body["phase"]
                if body.get("message"):
                    cr["status"]["message"] = body["message"]
                cr["metadata"]["resourceVersion"] = st.bump()
                st.history.append((st.rv, "MODIFIED", key[0], json.loads(json.dumps(cr))))
                st.cond.notify_all()
            self.send(200, cr)
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
        if path == "/_stub/coderuns":
            with st.cond:
                self.send(200, list(st.coderuns.values()))
            return True
        return False

    def route(self, path, q):
        if not self.authed():
            self.read_body()
            self.send(401, status_obj(401, "Unauthorized", "Unauthorized"))
            return
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
                return self.send(404, status_obj(404, "NotFound",
                                                 f'applications.argoproj.io "{m.group(2)}" not found'))
            return self.send(200, app)
        m = re.fullmatch(r"/apis/agents\.platform/v1/namespaces/([^/]+)/coderuns(?:/([^/]+))?(/status)?",
                         path)
        if m:
            return self.coderuns(m.group(1), m.group(2), bool(m.group(3)), q)
        self.read_body()
        self.send(404, status_obj(404, "NotFound", "the server could not find the requested resource"))

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

    def coderuns(self, ns, name, status_sub, q):
        st = self.state
        if name is None and self.command == "GET" and q.get("watch") in ("1", "true"):
            return self.watch(ns, q)
        if name is None and self.command == "GET":
            with st.cond:
                items = [c for (n, _), c in st.coderuns.items() if n == ns
                         and label_match(c["metadata"].get("labels"), q.get("labelSelector"))]
                return self.send(200, {"apiVersion": "agents.platform/v1", "kind": "CodeRunList",
                                       "metadata": {"resourceVersion": str(st.rv)},
                                       "items": items})
        if name is None and self.command == "POST":
            obj = self.body_json()
            if not isinstance(obj, dict):
                return self.send(400, status_obj(400, "BadRequest", "invalid JSON body"))
            code, err = self.validate(obj, ns)
            if code:
                return self.send(code, err)
            md = obj["metadata"]
            with st.cond:
                if not md.get("name"):
                    if not md.get("generateName"):
                        return self.send(422, status_obj(
                            422, "Invalid", "metadata.name: Required value: name or "
                            "generateName is required"))
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
                st.history.append((st.rv, "ADDED", ns, json.loads(json.dumps(obj))))
                st.cond.notify_all()
            return self.send(201, obj)
        with st.cond:
            cr = st.coderuns.get((ns, name))
            if not cr:
                self.read_body()
                return self.send(404, status_obj(404, "NotFound",
                                                 f'coderuns.agents.platform "{name}" not found'))
            if self.command == "GET":
                return self.send(200, cr)
            if self.command == "DELETE":
                del st.coderuns[(ns, name)]
                cr["metadata"]["resourceVersion"] = st.bump()
                st.history.append((st.rv, "DELETED", ns, cr))
                st.cond.notify_all()
                return self.send(200, cr)
            if self.command in ("PATCH", "PUT") and status_sub:
                body = self.body_json() or {}
                cr.setdefault("status", {}).update((body.get("status") or {}))
                cr["metadata"]["resourceVersion"] = st.bump()
                st.history.append((st.rv, "MODIFIED", ns, json.loads(json.dumps(cr))))
                st.cond.notify_all()
                return self.send(200, cr)
        self.read_body()
        self.send(405, status_obj(405, "MethodNotAllowed", "method not allowed"))

    def watch(self, ns, q):
        st = self.state
        try:
            rv = int(q.get("resourceVersion") or 0)
        except ValueError:
            return self.send(400, status_obj(400, "BadRequest", "bad resourceVersion"))
        sel = q.get("labelSelector")
        timeout = min(float(q.get("timeoutSeconds") or 30), 30.0)
        cfg = self.server.config
        if rv and rv < st.min_rv:
            gone = status_obj(410, "Expired", f"too old resource version: {rv} ({st.min_rv})")
            if cfg.get("gone_mode", "http") == "http":
                return self.send(410, gone)
            self.start_stream()
            self.chunk({"type": "ERROR", "object": gone})
            return self.end_stream()
        self.start_stream()
        end = time.time() + timeout
        sent = 0
        limit = cfg.get("watch_close_after", 0)
        try:
            with st.cond:
                epoch = st.epoch
                while time.time() < end and st.epoch == epoch:
                    for (erv, typ, ens, obj) in list(st.history):
                        if erv <= rv or ens != ns:
                            continue
                        rv = erv
                        if not label_match(obj["metadata"].get("labels"), sel):
                            continue
                        st.cond.release()
                        try:
                            self.chunk({"type": typ, "object": obj})
                        finally:
                            st.cond.acquire()
                        sent += 1
                        if limit and sent >= limit:
                            break
                    if limit and sent >= limit:
                        break
                    st.cond.wait(max(0.0, min(0.2, end - time.time())))
            self.end_stream()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

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
