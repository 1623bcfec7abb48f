#!/usr/bin/env python3
"""test_alerts_config.py - the sample Alertmanager receiver and ArgoCD
notifications configuration (deploy/alerts/) agree with the binary: the
YAML parses (the ConfigMap's embedded service, template and triggers too),
their URLs are the Service's address and the binary's routes, they POST,
and the requests they make (Alertmanager's webhook v4 with its
`authorization` credentials, ArgoCD's template body with its headers, the
secret reference filled in) are accepted by a running healer with an API
token, while the same without the token is refused. Prints TAP."""
import json
import os
import re
import sys
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib as dl  # noqa: E402
from deploylib import check  # noqa: E402

if not dl.node_ready("yaml"):
    dl.skip_all("node or tests/node/node_modules/yaml not found (scripts/install-deps.sh)")

TOKEN = "alerts-config-token"
ALERTS = os.path.join(dl.DEPLOY, "alerts")
am_path = os.path.join(ALERTS, "alertmanager.yaml")
cm_path = os.path.join(ALERTS, "argocd-notifications-cm.yaml")
docs = dl.yaml_files(am_path, cm_path)
check("both files parse, one document each", len(docs[am_path]) == 1 and
      len(docs[cm_path]) == 1, repr({k: len(v) for k, v in docs.items()}))
am, cm = docs[am_path][0], docs[cm_path][0]

plain = dl.plain_manifests()
svc = dl.find(plain, "Service", "healer")
svc_host = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc"
svc_port = svc["spec"]["ports"][0]["port"]
routes = dl.routes()
post_paths = {p for _, p, m, meth in routes if m == "EXACT" and "HTTP_POST" in meth}

# ---- Alertmanager -------------------------------------------------------------
recv = [r for r in am.get("receivers", []) if r.get("name") == "healer"]
hooks = recv[0].get("webhook_configs", []) if recv else []
hook = hooks[0] if hooks else {}
u = urlparse(hook.get("url", ""))
check("Alertmanager: a route sends to the receiver healer, which has one webhook",
      any(r.get("receiver") == "healer" for r in am.get("route", {}).get("routes", []))
      and len(hooks) == 1, repr(am))
check("Alertmanager: the webhook posts to the Service (name, namespace, port) at "
      "/api/alerts/alertmanager, a POST route of the binary",
      u.scheme == "http" and u.hostname == svc_host and u.port == svc_port and
      u.path == "/api/alerts/alertmanager" and u.path in post_paths, hook.get("url"))
# Alertmanager refuses a configuration with a field it does not know, and
# webhook_configs gained fields over its versions (timeout in v0.28.0, url_file
# in v0.25.0): the sample keeps to those of v0.22.0, the first with route
# matchers
AM_V022_WEBHOOK = {"send_resolved", "http_config", "url", "max_alerts"}
check("Alertmanager: the webhook uses only fields Alertmanager v0.22.0 knows (no timeout, "
      "v0.28.0), and the file says which version it needs",
      hooks and set(hook) <= AM_V022_WEBHOOK and "v0.22.0" in open(am_path).read(),
      f"{sorted(set(hook) - AM_V022_WEBHOOK)}")
# the pod alerts contract section 14 names, each matched by the route's regex
# (before: KubeContainerOOMKilled was not routed)
am_route = next((r for r in am.get("route", {}).get("routes", [])
                 if r.get("receiver") == "healer"), {})
am_regex = next((m.split("=~", 1)[1].strip().strip('"') for m in am_route.get("matchers", [])
                 if m.replace(" ", "").startswith("alertname=~")), "")
want_alerts = ["KubePodCrashLooping", "KubePodNotReady", "KubeContainerWaiting",
               "KubernetesContainerOomKiller", "KubeContainerOOMKilled"]
check("Alertmanager: the route takes every pod alert of contract section 14 "
      "(KubeContainerOOMKilled too)",
      am_regex and all(re.fullmatch(am_regex, a) for a in want_alerts), am_route)
auth = hook.get("http_config", {}).get("authorization", {})
check("Alertmanager: the bearer token from a file, resolved alerts sent too",
      auth.get("type") == "Bearer" and auth.get("credentials_file", "").startswith("/") and
      "credentials" not in auth and hook.get("send_resolved") is True, repr(hook))

# ---- ArgoCD notifications ---------------------------------------------------------
data = cm.get("data", {})
check("ArgoCD: the ConfigMap is argocd-notifications-cm in ArgoCD's namespace",
      cm.get("kind") == "ConfigMap" and cm["metadata"]["name"] == "argocd-notifications-cm"
      and cm["metadata"]["namespace"] == "argocd", repr(cm.get("metadata")))
service = dl.yaml_text(data.get("service.webhook.healer", ""))[0] or {}
templates = {k[len("template."):]: dl.yaml_text(v)[0] for k, v in data.items()
             if k.startswith("template.")}
triggers = {k[len("trigger."):]: dl.yaml_text(v)[0] for k, v in data.items()
            if k.startswith("trigger.")}
su = urlparse(service.get("url", ""))
headers = {h["name"]: h["value"] for h in service.get("headers", [])}
check("ArgoCD: the webhook service healer points at the Service (name, namespace, port)",
      su.scheme == "http" and su.hostname == svc_host and su.port == svc_port and
      su.path in ("", "/"), repr(service))
m = re.fullmatch(r"Bearer \$([A-Za-z0-9_.-]+)", headers.get("Authorization", ""))
check("ArgoCD: it sends Content-Type application/json and Authorization: Bearer "
      "$<a key of argocd-notifications-secret>",
      headers.get("Content-Type") == "application/json" and m, repr(headers))
used = [t for t in templates.values() if "healer" in (t or {}).get("webhook", {})]
wt = used[0]["webhook"]["healer"] if len(used) == 1 else {}
check("ArgoCD: one template POSTs to /api/alerts/argocd, a POST route of the binary",
      wt.get("method") == "POST" and wt.get("path") == "/api/alerts/argocd" and
      wt["path"] in post_paths, repr(templates))
tname = [k for k, t in templates.items() if t in used]
check("ArgoCD: the triggers (Degraded health, failed sync) send that template",
      len(triggers) == 2 and all(t and all(c.get("send") == tname for c in t)
                                 for t in triggers.values()) and
      any("Degraded" in c["when"] for t in triggers.values() for c in t) and
      any("operationState" in c["when"] for t in triggers.values() for c in t),
      repr(triggers))

# ---- played against the binary ------------------------------------------------
app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
       "metadata": {"name": "shop", "namespace": "argocd"},
       "spec": {"project": "default", "destination": {"namespace": "prod"},
                "source": {"repoURL": "https://github.com/acme/shop", "path": "k8s"}},
       "status": {"health": {"status": "Degraded"}, "sync": {"status": "Synced"},
                  "operationState": {"phase": "Succeeded", "message": "ok"}}}
body_tmpl = wt.get("body", "")
# {{toJson .app}} is the one action: Go's toJson of the Application object
body = re.sub(r"\{\{\s*toJson\s+\.app\s*\}\}", json.dumps(app), body_tmpl)
check("ArgoCD: the template's body is {\"application\": {{toJson .app}}} (JSON once filled)",
      "{{" not in body and json.loads(body).get("application") == app, body_tmpl)

token_file = os.path.join(dl.TMP, "am-api-token")
with open(token_file, "w") as f:
    f.write(TOKEN)
srv = dl.Server({"HEALER_API_TOKEN": TOKEN, "GITHUB_WEBHOOK_SECRET": "s"}, "alerts-config")
srv.start()
am_body = {"version": "4", "groupKey": "{}:{alertname=\"KubePodCrashLooping\"}",
           "truncatedAlerts": 0, "status": "firing", "receiver": recv[0]["name"] if recv else "",
           "groupLabels": {"alertname": "KubePodCrashLooping"}, "commonLabels": {},
           "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
           "alerts": [{"status": "firing", "labels": {"alertname": "KubePodCrashLooping",
                                                      "namespace": "prod", "pod": "shop-1"},
                       "annotations": {}, "startsAt": "2026-01-01T10:00:00Z",
                       "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                       "fingerprint": "a1b2c3d4e5f60718"}]}
# Alertmanager: "Authorization: <type> <credentials_file's content>"
am_auth = f"{auth.get('type', '')} {open(token_file).read().strip()}"
st, ans = srv.request("POST", u.path, json.dumps(am_body).encode(),
                      {"Content-Type": "application/json", "Authorization": am_auth,
                       "User-Agent": "Alertmanager/0.27.0"})
st0, _ = srv.request("POST", u.path, json.dumps(am_body).encode(),
                     {"Content-Type": "application/json"})
check("Alertmanager's request as configured is accepted (202); without the token 401",
      st == 202 and json.loads(ans).get("status") in ("accepted", "skipped") and st0 == 401,
      f"{st} {ans[:300]} {st0}")
argo_headers = {k: v.replace(f"${m.group(1)}", TOKEN) if m else v for k, v in headers.items()}
st, ans = srv.request(wt.get("method", "GET"), su.path.rstrip("/") + wt.get("path", ""),
                      body.encode(), argo_headers)
st0, _ = srv.request("POST", wt.get("path", ""), body.encode(),
                     {"Content-Type": "application/json"})
check("ArgoCD's request as configured is accepted (202); without the token 401",
      st == 202 and json.loads(ans).get("status") in ("accepted", "skipped") and st0 == 401,
      f"{st} {ans[:300]} {st0}")
srv.stop()

readme = open(os.path.join(dl.DEPLOY, "README.md")).read()
check("deploy/README.md describes both files",
      "alerts/alertmanager.yaml" in readme and "alerts/argocd-notifications-cm.yaml" in readme)
dl.finish()
