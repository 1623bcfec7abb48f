#!/usr/bin/env python3
"""test_helm.py - the chart deploy/helm/healer without helm: every .Values
path its templates read exists in values.yaml and every value there is read;
the templates render (helmlite.py, the Go-template subset the chart uses,
refusing anything else) and with the default values (sensors and ArgoCD's
Role switched on) they give exactly the objects of deploy/kubernetes and
deploy/argo-events, the pod template's checksum/config aside, which follows
the rendered ConfigMap; nothing lands outside the release's namespace by
default; other values land where they should; the chart's CRD is deploy/crds/coderun.yaml; versions agree
with the binary. Prints TAP."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib as dl  # noqa: E402
import helmlite  # noqa: E402
from deploylib import check  # noqa: E402

if not dl.node_ready("yaml"):
    dl.skip_all("node or tests/node/node_modules/yaml not found (scripts/install-deps.sh)")

meta = dl.chart_meta()
values = dl.chart_values()
version = subprocess.run([dl.HEALER, "version"], capture_output=True,
                         text=True).stdout.split()[1]
check("Chart.yaml: apiVersion v2, name healer, appVersion = `healer version`",
      meta.get("apiVersion") == "v2" and meta.get("name") == "healer" and
      meta.get("appVersion") == version, f"{meta} vs {version}")

tdir = os.path.join(dl.CHART_DIR, "templates")
texts = {f: open(os.path.join(tdir, f)).read() for f in sorted(os.listdir(tdir))}
check("templates/ holds only .yaml templates (no helpers: the subset has no define)",
      all(f.endswith(".yaml") for f in texts), sorted(texts))
read = set()
for t in texts.values():
    read |= set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", t))
paths = helmlite.value_paths(values)
check("every .Values path a template reads is defined in values.yaml",
      read and read <= paths, f"undefined: {sorted(read - paths)}")


def leaves(v, prefix=""):
    if isinstance(v, dict) and v:
        out = set()
        for k, x in v.items():
            out |= leaves(x, f"{prefix}.{k}" if prefix else k)
        return out
    return {prefix}


unused = sorted(p for p in leaves(values)
                if not any(p == r or p.startswith(r + ".") for r in read))
check("every value in values.yaml is read by a template", not unused, repr(unused))

plain = dl.plain_manifests()
P = {(d["kind"], d["metadata"]["name"]): (f, d) for f, d in plain}
docs, used = dl.render_chart({"sensors": {"enabled": True},
                              "argocd": {"readApplications": True}})
H = {(d["kind"], d["metadata"]["name"]): (f, d) for f, d in docs}
check("the rendered defaults (sensors and ArgoCD's Role on) are one object per plain manifest, "
      "no more, no less",
      set(H) == {k for k in P if k[0] != "CustomResourceDefinition"},
      f"chart {sorted(H)}\nplain {sorted(P)}")


def config_checksum(overrides=None, release="healer", namespace="cto"):
    """sha256 of templates/configmap.yaml rendered alone."""
    import hashlib
    rr = helmlite.Renderer(dl.deep_merge(values, overrides or {}), release, namespace, meta)
    return hashlib.sha256(rr.render(texts["configmap.yaml"]).encode()).hexdigest()


def pod_annotations(ds):
    return dl.find(ds, "Deployment")["spec"]["template"]["metadata"].get("annotations", {})


# the chart's one addition to the plain Deployment (kustomize has the
# ConfigMap's name hash instead): a hash of the rendered ConfigMap
hdep = H[("Deployment", "healer")][1]
hsum = hdep["spec"]["template"]["metadata"]["annotations"].pop("checksum/config", None)
check("the chart's pod template carries checksum/config, the SHA-256 of the rendered ConfigMap",
      hsum == config_checksum({"sensors": {"enabled": True},
                               "argocd": {"readApplications": True}}), repr(hsum))
for k in sorted(H):
    if k in P:
        same = H[k][1] == P[k][1]
        detail = ""
        if not same:
            import difflib
            import json
            a = json.dumps(P[k][1], indent=1, sort_keys=True).splitlines()
            b = json.dumps(H[k][1], indent=1, sort_keys=True).splitlines()
            detail = "\n".join(list(difflib.unified_diff(a, b, P[k][0], H[k][0],
                                                         lineterm=""))[:60])
        check(f"{H[k][0]} renders {k[0]} {k[1]} equal to {P[k][0]}", same, detail)
check("rendering read every value path the templates name (the renderer saw them all)",
      read == used, f"{sorted(read ^ used)}")

docs_off, _ = dl.render_chart()
# envFrom is read when a container starts: only a changed pod template
# brings a changed setting to the pods
base_sum = pod_annotations(docs_off).get("checksum/config")
ldocs, _ = dl.render_chart({"operations": {"logLevel": "debug"}})
rdocs, _ = dl.render_chart({"replicas": 3})
check("a changed setting changes the pod template's checksum/config (an upgrade rolls the pods); "
      "a value outside the ConfigMap does not",
      base_sum and pod_annotations(ldocs).get("checksum/config") not in (None, base_sum) and
      pod_annotations(ldocs)["checksum/config"] == config_checksum(
          {"operations": {"logLevel": "debug"}}) and
      pod_annotations(rdocs).get("checksum/config") == base_sum,
      f"{base_sum} {pod_annotations(ldocs)} {pod_annotations(rdocs)}")
check("sensors are off by default (Argo Events' CRDs may not be installed)",
      not [d for _, d in docs_off if d["kind"] == "Sensor"] and
      len(docs_off) == len(docs) - 4)
# ArgoCD's namespace may not exist: an object there fails the whole install
elsewhere = [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"))
             for _, d in docs_off if d["metadata"].get("namespace") != "cto"]
check("the defaults render every object in the release's namespace, none in argocd "
      "(argocd.readApplications is opt-in, as deploy/kubernetes/argocd is)",
      not elsewhere and dl.chart_values()["argocd"]["readApplications"] is False,
      repr(elsewhere))
adocs, _ = dl.render_chart({"argocd": {"readApplications": True, "namespace": "gitops"}})
check("argocd.readApplications: true renders the Role and RoleBinding in argocd.namespace",
      sorted((d["kind"], d["metadata"]["namespace"]) for _, d in adocs
             if d["metadata"]["name"] == "healer-argocd") ==
      [("Role", "gitops"), ("RoleBinding", "gitops")])

crd = open(os.path.join(dl.DEPLOY, "crds", "coderun.yaml"), "rb").read()
ccrd = open(os.path.join(dl.CHART_DIR, "crds", "coderun.yaml"), "rb").read()
check("the chart's crds/coderun.yaml is deploy/crds/coderun.yaml, byte for byte", crd == ccrd)

# other values end up where they should
custom = {
    "image": {"tag": "9.9.9", "repository": "registry.example/healer"},
    "replicas": 3,
    "database": {"secretName": "pg-app", "secretKey": "uri"},
    "secrets": {"name": "ops-secrets"},
    "github": {"appId": "123", "appInstallationId": "456"},
    "remediation": {"repositories": "5dlabs/cto,5dlabs/other", "processBotCommits": True},
    "budgets": {"maxAttempts": 5, "maxActiveCodeRuns": 0},
    "sources": {"argocd": {"server": "https://argocd-server.argocd.svc"},
                "loki": {"url": "http://loki-gateway.observability.svc"}},
    "channels": {"email": {"to": "oncall@example.com"}},
    "operations": {"workers": 4},
    "resources": {"limits": {"memory": "1Gi"}},
    "podDisruptionBudget": {"minAvailable": 2},
    "startupProbe": {"failureThreshold": 900},
    "sensors": {"enabled": True, "namespace": "argo-events", "authSecretName": "auth"},
}
cdocs, _ = dl.render_chart(custom, release="ops", namespace="platform")
dep = dl.find(cdocs, "Deployment")
cm = dl.find(cdocs, "ConfigMap")
c = dep["spec"]["template"]["spec"]["containers"][0]
env = {e["name"]: e for e in c["env"]}
check("custom values: image, replicas, names, namespace, resources, PDB",
      c["image"] == "registry.example/healer:9.9.9" and dep["spec"]["replicas"] == 3 and
      dep["metadata"]["name"] == "ops" and dep["metadata"]["namespace"] == "platform" and
      cm["metadata"]["name"] == "ops-config" and
      c["envFrom"] == [{"configMapRef": {"name": "ops-config"}}] and
      c["resources"] == {"limits": {"memory": "1Gi", "cpu": "1"},
                         "requests": {"cpu": "100m", "memory": "128Mi"}} and
      dl.find(cdocs, "PodDisruptionBudget")["spec"]["minAvailable"] == 2 and
      c["startupProbe"]["failureThreshold"] == 900, repr(c)[:800])
vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
check("custom values: the database URL and the secrets come from the Secrets named",
      env["HEALER_DATABASE_URL_FILE"]["value"] == "/etc/healer/database/database-url" and
      vols["database"]["secret"]["secretName"] == "pg-app" and
      vols["database"]["secret"]["items"] == [{"key": "uri", "path": "database-url"}] and
      vols["secrets"]["secret"]["secretName"] == "ops-secrets" and
      "HEALER_DATABASE_URL" not in env, repr(vols))
check("custom values: optional secrets stay unread unless switched on",
      not [n for n in env if n.endswith("_FILE") and n not in (
          "HEALER_DATABASE_URL_FILE", "GITHUB_WEBHOOK_SECRET_FILE", "HEALER_API_TOKEN_FILE")],
      sorted(env))
odocs, _ = dl.render_chart({"secrets": {"githubToken": True, "smtpUrl": True}})
oenv = {e["name"]: e for e in
        dl.find(odocs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
check("secrets.githubToken / smtpUrl: true add GITHUB_TOKEN_FILE and SMTP_URL_FILE",
      oenv.get("GITHUB_TOKEN_FILE", {}).get("value") == "/etc/healer/secrets/github-token" and
      oenv.get("SMTP_URL_FILE", {}).get("value") == "/etc/healer/secrets/smtp-url" and
      "SLACK_WEBHOOK_URL_FILE" not in oenv, sorted(oenv))
check("custom values: the ConfigMap carries them as strings",
      cm["data"]["HEALER_MAX_ATTEMPTS"] == "5" and cm["data"]["HEALER_MAX_ACTIVE_CODERUNS"] == "0"
      and cm["data"]["HEALER_PROCESS_BOT_COMMITS"] == "true" and
      cm["data"]["HEALER_REPOSITORIES"] == "5dlabs/cto,5dlabs/other" and
      cm["data"]["ARGOCD_SERVER"] == "https://argocd-server.argocd.svc" and
      cm["data"]["HEALER_WORKERS"] == "4" and cm["data"]["GITHUB_APP_ID"] == "123",
      repr(cm["data"]))
rc, vals, err = dl.check_config(dict(cm["data"], GITHUB_APP_PRIVATE_KEY=dl.app_key()))
check("check-config accepts the custom ConfigMap",
      rc == 0 and vals["HEALER_MAX_ATTEMPTS"] == "5" and
      vals["LOKI_URL"] == "http://loki-gateway.observability.svc", err)
sensors = [d for _, d in cdocs if d["kind"] == "Sensor"]
urls = {t["template"]["http"]["url"] for s in sensors for t in s["spec"]["triggers"]}
refs = {h["valueFrom"]["secretKeyRef"]["name"] for s in sensors for t in s["spec"]["triggers"]
        for h in t["template"]["http"]["secureHeaders"]}
check("custom values: sensors in their namespace post to this release's Service",
      len(sensors) == 2 and all(s["metadata"]["namespace"] == "argo-events" for s in sensors)
      and urls == {"http://ops.platform.svc:8080/api/remediate/ci-failure",
                   "http://ops.platform.svc:8080/api/remediate/security-alert"} and
      refs == {"auth"}, repr(urls))

# GitHub's ids written as numbers in a values file (helm reads them as
# float64, printed 1.234567e+06 from a million on) reach the ConfigMap with
# all their digits, and ids written as strings as they are
ndocs, _ = dl.render_chart({"github": {"appId": 1234567, "appInstallationId": 45678901,
                                       "hook": {"id": 412345678, "repository": "acme/widgets"}}})
ncm = dl.find(ndocs, "ConfigMap")["data"]
check("numeric GitHub ids in values: the ConfigMap has their digits, not 1.234567e+06",
      (ncm["GITHUB_APP_ID"], ncm["GITHUB_APP_INSTALLATION_ID"], ncm["GITHUB_HOOK_ID"]) ==
      ("1234567", "45678901", "412345678"), repr(ncm))
rc, vals, err = dl.check_config(dict(ncm, GITHUB_APP_PRIVATE_KEY=dl.app_key()))
check("check-config accepts them", rc == 0 and vals.get("GITHUB_HOOK_ID") == "412345678", err)
# every number of the ConfigMap likewise: each numeric value of values.yaml
# set to a million or more renders with its digits (HEALER_CONTEXT_TIMEOUT_MS
# and HEALER_SOURCE_TIMEOUT_MS take up to 1000000)
cm_tmpl = texts["configmap.yaml"]


def numeric_leaves(v, prefix=""):
    if isinstance(v, dict):
        out = []
        for k, x in v.items():
            out += numeric_leaves(x, f"{prefix}.{k}" if prefix else k)
        return out
    return [prefix] if isinstance(v, (int, float)) and not isinstance(v, bool) else []


def nested(path, v):
    for k in reversed(path.split(".")):
        v = {k: v}
    return v


big = {}
cm_numbers = [p for p in numeric_leaves(values) if f".Values.{p} " in cm_tmpl]
for i, p in enumerate(cm_numbers):
    big = dl.deep_merge(big, nested(p, 1000000 + i))
bdocs, _ = dl.render_chart(big)
bcm = dl.find(bdocs, "ConfigMap")["data"]
floaty = {k: v for k, v in bcm.items() if re.search(r"\d[eE][+-]?\d", v)}
check("every numeric value of the ConfigMap set to a million or more has its digits "
      "(int64), not 1e+06",
      len(cm_numbers) >= 20 and not floaty and
      {str(1000000 + i) for i in range(len(cm_numbers))} <= set(bcm.values()),
      f"{floaty} {len(cm_numbers)}")
tdocs, _ = dl.render_chart({"operations": {"contextTimeoutMs": 1000000,
                                           "sourceTimeoutMs": 1000000}})
tcm = dl.find(tdocs, "ConfigMap")["data"]
rc, tv, err = dl.check_config(dict(tcm))
check("HEALER_CONTEXT_TIMEOUT_MS / HEALER_SOURCE_TIMEOUT_MS of 1000000 from the chart: "
      "check-config takes them",
      rc == 0 and tv.get("HEALER_CONTEXT_TIMEOUT_MS") == "1000000" and
      tv.get("HEALER_SOURCE_TIMEOUT_MS") == "1000000", err or repr(tcm))
sdocs, _ = dl.render_chart({"github": {"appId": "Iv1.0a1b2c", "hook": {"id": "412345678"}}})
scm = dl.find(sdocs, "ConfigMap")["data"]
check("GitHub ids given as strings are kept as written",
      scm["GITHUB_APP_ID"] == "Iv1.0a1b2c" and scm["GITHUB_HOOK_ID"] == "412345678" and
      dl.find(docs_off, "ConfigMap")["data"]["GITHUB_HOOK_ID"] == "", repr(scm))

# the heal workspace: where healer writes a pod alert's diagnostics and
# analysis must be where the heal CodeRun reads them, the PVC heal-workspace
# (src/dispatch/coderun.c names it in the CodeRun's annotation and rewrites
# HEALER_HEAL_WORKSPACE's mount point, /workspace/watch, to the agent's
# /workspace)
coderun_c = open(os.path.join(dl.ROOT, "src", "dispatch", "coderun.c")).read()
pvc = re.search(r'"healer/workspace-pvc", "([^"]+)"', coderun_c)
watch = re.search(r'hl_str_starts_with\(p, "(/[^"]+)/"\)', coderun_c)


def heal_parts(ds):
    d = dl.find(ds, "Deployment")
    ps = d["spec"]["template"]["spec"]
    cc = ps["containers"][0]
    return ({e["name"]: e.get("value") for e in cc["env"]}.get("HEALER_HEAL_WORKSPACE"),
            [m for m in cc["volumeMounts"] if m["name"] == "heal-workspace"],
            [v for v in ps["volumes"] if v["name"] == "heal-workspace"])


wdocs, _ = dl.render_chart({"heal": {"workspace": {"enabled": True}}})
wenv, wmounts, wvols = heal_parts(wdocs)
check("heal.workspace.enabled mounts the PVC the heal CodeRuns mount where the CodeRun expects "
      "healer's files, and points HEALER_HEAL_WORKSPACE there",
      pvc and watch and wenv == watch.group(1) and
      wmounts == [{"name": "heal-workspace", "mountPath": watch.group(1)}] and
      wvols == [{"name": "heal-workspace",
                 "persistentVolumeClaim": {"claimName": pvc.group(1)}}],
      f"{wenv} {wmounts} {wvols} (coderun.c: {pvc and pvc.group(1)} "
      f"{watch and watch.group(1)})")
check("off by default (the PVC may not exist): no variable, mount or volume",
      heal_parts(docs_off) == (None, [], []), repr(heal_parts(docs_off)))
rc, wv, err = dl.check_config({"HEALER_HEAL_WORKSPACE": wenv or ""})
check("check-config takes that HEALER_HEAL_WORKSPACE", rc == 0 and
      wv.get("HEALER_HEAL_WORKSPACE") == wenv, err)
# the plain Deployment's commented example, uncommented, is the chart's
dep_text = open(os.path.join(dl.KUBE_DIR, "deployment.yaml")).read()
opened, block = [], None
for line in dep_text.split("\n"):
    m = re.fullmatch(r"( +)# (- name: (?:heal-workspace|HEALER_HEAL_WORKSPACE))", line)
    if m:
        block = m.group(1)
        opened.append(block + m.group(2))
    elif block is not None and line.startswith(block + "#   "):
        opened.append(block + "  " + line[len(block) + 4:])
    else:
        block = None
        opened.append(line)
pdep = dl.yaml_text("\n".join(opened))[0]
hwdep = dl.find(wdocs, "Deployment")
hwdep["spec"]["template"]["metadata"]["annotations"].pop("checksum/config")
check("deploy/kubernetes/deployment.yaml's commented heal workspace (variable, mount, volume), "
      "uncommented, gives the chart's Deployment with heal.workspace.enabled",
      wenv and heal_parts([("", pdep)]) == (wenv, wmounts, wvols) and pdep == hwdep,
      repr(heal_parts([("", pdep)])))

# Every setting naming a file healer reads (the ones deploy/kubernetes leaves
# out: test_config.py's LEFT_OUT) can be set through the chart (files.*): a
# ConfigMap, its items mounted read-only, the variable naming the mounted
# path. The rendered files, laid out as the kubelet mounts them, are what
# `healer check-config` then reads: it takes them, and a broken one of each
# stops it, naming the variable (so the path really is read).
FILE_SETTINGS = sorted(k for k, t in dl.config_keys() if t != "X" and
                       k.endswith(("_FILE", "_DIR")) and k != "HEALER_DATA_DIR")
check("the file settings are the service map, the rules and the prompts directory",
      FILE_SETTINGS == ["HEALER_PROMPTS_DIR", "HEALER_RULES_FILE", "HEALER_SERVICES_FILE"],
      repr(FILE_SETTINGS))
SERVICES = (
    "services:\n"
    "- repository: acme/shop\n"
    "  argocd_app: shop-prod\n"
    "  argocd_namespace: argocd\n"
    "  namespace: prod\n"
    "  workload: shop\n")
RULES = open(os.path.join(dl.ROOT, "rules", "default.yaml")).read()
PROMPT = open(os.path.join(dl.ROOT, "prompts", "ci", "retry.hbs")).read() + "\nFrom the chart.\n"
files_on = {"files": {"services": SERVICES, "rules": RULES,
                      "prompts": {"ci/retry.hbs": PROMPT}}}


def mounted(ds, root):
    """Lays the Deployment's ConfigMap volumes out under root as the kubelet
    mounts them; returns the container's file settings, rooted there."""
    d = dl.find(ds, "Deployment")
    ps = d["spec"]["template"]["spec"]
    cc = ps["containers"][0]
    cms = {x["metadata"]["name"]: x for _, x in ds if x["kind"] == "ConfigMap"}
    vols = {v["name"]: v for v in ps["volumes"]}
    for m in cc["volumeMounts"]:
        cmv = vols[m["name"]].get("configMap")
        if not cmv:
            continue
        data = cms[cmv["name"]]["data"]
        for it in cmv.get("items") or [{"key": k, "path": k} for k in data]:
            dest = os.path.join(root, m["mountPath"].lstrip("/"), it["path"])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w") as fh:
                fh.write(data[it["key"]])
    env = {e["name"]: e.get("value") for e in cc["env"]}
    return {k: os.path.join(root, env[k].lstrip("/")) for k in FILE_SETTINGS if k in env}, \
        {k: env.get(k) for k in FILE_SETTINGS}, cc, vols


fdocs, _ = dl.render_chart(files_on, release="ops", namespace="platform")
froot = os.path.join(dl.TMP, "files-mounted")
fset, fenv, fc, fvols = mounted(fdocs, froot)
fmount = [m for m in fc["volumeMounts"] if m["name"] == "files"]
check("files.services / rules / prompts: the ConfigMap ops-files mounted read-only at "
      "/etc/healer/files and HEALER_SERVICES_FILE, HEALER_RULES_FILE, HEALER_PROMPTS_DIR "
      "naming its paths",
      sorted(fset) == FILE_SETTINGS and
      fenv == {"HEALER_SERVICES_FILE": "/etc/healer/files/services.yaml",
               "HEALER_RULES_FILE": "/etc/healer/files/rules.yaml",
               "HEALER_PROMPTS_DIR": "/etc/healer/files/prompts"} and
      fmount == [{"name": "files", "mountPath": "/etc/healer/files", "readOnly": True}] and
      fvols["files"]["configMap"]["name"] == "ops-files" and
      open(fset["HEALER_SERVICES_FILE"]).read() == SERVICES and
      open(fset["HEALER_RULES_FILE"]).read() == RULES and
      open(os.path.join(fset["HEALER_PROMPTS_DIR"], "ci", "retry.hbs")).read() == PROMPT,
      f"{fenv} {fmount} {fvols.get('files')}")
rc, fv, err = dl.check_config(dict(fset))
check("check-config takes the chart's files where the Deployment mounts them",
      sorted(fset) == FILE_SETTINGS and rc == 0 and
      all(fv.get(k) == v for k, v in fset.items()), err)
fann = dl.find(fdocs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
f2docs, _ = dl.render_chart(dl.deep_merge(files_on, {"files": {"services": SERVICES +
                                                               "  service: shop\n"}}),
                            release="ops", namespace="platform")
check("checksum/files follows those files (a changed file rolls the pods); none without them",
      fann.get("checksum/files") and fann["checksum/files"] != dl.find(f2docs, "Deployment")[
          "spec"]["template"]["metadata"]["annotations"].get("checksum/files") and
      "checksum/files" not in pod_annotations(docs_off), repr(fann))
broken = {"HEALER_SERVICES_FILE": {"services": "services:\n- repository: not a repo\n"},
          "HEALER_RULES_FILE": {"rules": "rules: [\n"},
          "HEALER_PROMPTS_DIR": {"prompts": {"ci/retry.hbs": "{{#if attempt.number}}\n"}}}
read_back = []
for k, b in sorted(broken.items()):
    bdocs2, _ = dl.render_chart({"files": b})
    bset, benv, _, _ = mounted(bdocs2, os.path.join(dl.TMP, "broken-" + k.lower()))
    rc, _, err = dl.check_config(dict(bset))
    if sorted(bset) == [k] and rc != 0 and k in err:
        read_back.append(k)
check("a broken file given through the chart stops check-config, naming its variable "
      "(each rendered path is the one the binary reads)", read_back == FILE_SETTINGS,
      repr(read_back))

# the disruption budget never blocks a node drain: one replica has none to
# spare (a budget keeping it refuses every eviction, so no budget), and a
# budget keeping every replica is refused at rendering
one, _ = dl.render_chart({"replicas": 1})
check("replicas: 1 renders no PodDisruptionBudget (minAvailable 1 of 1 would block every drain)",
      not [d for _, d in one if d["kind"] == "PodDisruptionBudget"] and
      dl.find(one, "Deployment")["spec"]["replicas"] == 1,
      repr([(d["kind"], d.get("spec", {}).get("minAvailable")) for _, d in one
            if d["kind"] == "PodDisruptionBudget"]))
tdocs, _ = dl.render_chart({"replicas": 3, "podDisruptionBudget": {"minAvailable": 2}})
tpdb = dl.find(tdocs, "PodDisruptionBudget")["spec"]
kube_min = re.fullmatch(r">=(\d+)\.(\d+)\.\d+(-0)?", meta.get("kubeVersion", ""))
check("the budget lets unready pods go (unhealthyPodEvictionPolicy AlwaysAllow: every replica "
      "unready, the database down, must not block a drain), and Chart.yaml's kubeVersion is one "
      "that has the field on (1.27)",
      tpdb.get("unhealthyPodEvictionPolicy") == "AlwaysAllow" and tpdb["minAvailable"] == 2 and
      kube_min is not None and (int(kube_min.group(1)), int(kube_min.group(2))) >= (1, 27),
      f"{tpdb} {meta.get('kubeVersion')}")
try:
    dl.render_chart({"replicas": 3, "podDisruptionBudget": {"minAvailable": 3}})
    refusal = None
except helmlite.TemplateFail as e:
    refusal = str(e)
check("podDisruptionBudget.minAvailable >= replicas fails the rendering with a message",
      refusal is not None and "minAvailable must be below replicas" in refusal, repr(refusal))

# the renderer refuses what it does not implement, and unknown values
def _refuses(t):
    try:
        r.render(t)
    except helmlite.TemplateError:
        return True
    return False


r = helmlite.Renderer(values, "healer", "cto", meta)
refused = []
for bad in ["{{ with .Values.image }}{{ end }}", "{{ .Values.nope.nope }}",
            "{{ include \"x\" . }}", "{{ .Values.image.tag | upper }}", "{{-.Values.replicas}}",
            "{{ include \"healer/templates/a.yaml\" .Values }}", "{{ . }}",
            "{{ include \"healer/templates/loop.yaml\" . }}", "{{ 1 | sha256sum }}"]:
    try:
        helmlite.Renderer(values, "healer", "cto", meta,
                          {"a.yaml": "a", "loop.yaml": "{{ include "
                           "(print .Template.BasePath \"/loop.yaml\") . }}"}).render(bad)
    except helmlite.TemplateError:
        refused.append(bad)
check("the renderer refuses with, include of an unknown template, of another context or of "
      "itself, unknown functions and values, bad trim markers, printing the root context",
      len(refused) == 9, repr(refused))
ri = helmlite.Renderer(values, "healer", "cto", meta, {"a.yaml": "n: {{ .Release.Name }}"})
check("the renderer's include, print and sha256sum: as helm and Sprig give them",
      ri.render("{{ include (print .Template.BasePath \"/a.yaml\") . }}") == "n: healer" and
      ri.render("{{ print \"a\" 1 2 \"b\" }}") == "a1 2b" and
      ri.render("{{ include \"healer/templates/a.yaml\" . | sha256sum }}") ==
      "f33f1cb28d0109c603ac40afc314f167"
      "b10c6823f0c475fbab6848c064350abc", "")
check("the renderer's range, $, variables, splitList, nospace, uniq, and, ne: as Go, helm "
      "and Sprig give them; a field of range's element, a string ranged over, a variable "
      "declared outside range, ne of two kinds refused",
      r.render('{{ range $x := splitList "," "a,b,a" | uniq }}[{{ $x }}{{ . }}]{{ end }}')
      == "[aa][bb]" and
      r.render('{{ range splitList "," "" }}<{{ . }}>{{ end }}') == "<>" and
      r.render('{{ range splitList "," "a,b" }}{{ $.Release.Name }}{{ end }}') ==
      "healerhealer" and
      r.render('{{ range $x := splitList "," "a" }}{{ end }}{{ .Release.Namespace }}') == "cto" and
      r.render('{{ nospace " a b\\t" }}|{{ and "" "x" }}|{{ and "a" "x" }}|{{ ne "a" "b" }}|'
               '{{ ne "a" "a" }}|{{ ne 1 2 }}') == "ab||x|true|false|true" and
      all(_refuses(t) for t in ['{{ range splitList "," "a" }}{{ .Values.replicas }}{{ end }}',
                                '{{ range "abc" }}{{ end }}', "{{ $x := 1 }}",
                                '{{ range $x := splitList "," "a" }}{{ end }}{{ $x }}',
                                '{{ ne 1 "1" }}', '{{ range splitList "," "a" }}']),
      "")
check("the renderer applies Go's trim markers and if/else",
      r.render("a  {{- if .Values.sensors.enabled }}on{{ else }}off{{ end -}}  \n b") == "aoffb"
      and r.render("x: {{ .Values.replicas | quote }}") == 'x: "2"' and
      r.render("{{ .Values.image.tag | default \"d\" }}") == "d", "")

check("the renderer's int, lt and parentheses: Go's int comparison, a float refused",
      r.render("{{ if lt 1 (int .Values.replicas) }}y{{ else }}n{{ end }}") == "y" and
      r.render("{{ if lt (.Values.replicas | int) 2 }}y{{ else }}n{{ end }}") == "n" and
      r.render("{{ \"3\" | int }}") == "3" and
      r.render("{{ 1234567 }}|{{ .Values.replicas | int64 }}") == "1234567|2" and
      r.render("{{ kindIs \"string\" .Values.image.tag }} {{ kindIs \"float64\" "
               ".Values.replicas }} {{ kindIs \"int\" (int .Values.replicas) }}") ==
      "true true true" and
      all(_refuses(t) for t in ["{{ lt 1.5 2 }}", "{{ lt ((int 1)) 2 }}", "{{ lt (int 1 2 }}",
                                "{{ lt .Values.replicas 3 }}"]),
      "")

dl.finish()
