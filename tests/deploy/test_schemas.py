#!/usr/bin/env python3
"""test_schemas.py - every object healer ships, checked against the real
schemas: the Kubernetes API's (npm kubernetes-models, plus unknown fields,
which kubectl apply refuses) for the core objects and the CRD, and Argo
Events' Sensor API (tests/deploy/sensor.schema.json, ajv) for the sensors;
over deploy/kubernetes, deploy/crds, deploy/argo-events and the rendered
chart (defaults and custom values). Broken copies must fail, so the
validators are known to look. Also: the kustomization names every
manifest, and generates the ConfigMap with a content hash in its name, so
a changed setting rolls the pods. Prints TAP."""
import copy
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib as dl  # noqa: E402
from deploylib import check  # noqa: E402

if not dl.node_ready("yaml", "kubernetes-models", "ajv"):
    dl.skip_all("node or tests/node/node_modules (yaml, kubernetes-models, ajv) not found "
                "(scripts/install-deps.sh)")


def validate(items):
    path = os.path.join(dl.TMP, f"items-{len(items)}-{id(items)}.json")
    with open(path, "w") as f:
        json.dump([{"source": s, "doc": d} for s, d in items], f)
    p = subprocess.run([dl.node(), os.path.join(dl.HERE, "validate.mjs"), path],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    return json.loads(p.stdout)


plain = dl.plain_manifests()
rendered, _ = dl.render_chart({"sensors": {"enabled": True}})
custom, _ = dl.render_chart({"sensors": {"enabled": True}, "replicas": 3,
                             "argocd": {"readApplications": True},
                             "heal": {"workspace": {"enabled": True},
                                      "alertNamespaces": "platform,team-a"},
                             "files": {"services": "services: []\n", "rules": "rules: []\n",
                                       "prompts": {"ci/retry.hbs": "x\n"}},
                             "resources": {"limits": {"memory": "1Gi"}}},
                            release="ops", namespace="platform")
items = plain + [("chart " + f, d) for f, d in rendered] + \
    [("chart (custom) " + f, d) for f, d in custom]
kinds = {d.get("kind") for _, d in plain}
check("the plain manifests hold every kind healer ships",
      kinds >= {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "ConfigMap",
                "PodDisruptionBudget", "CustomResourceDefinition", "Sensor"}, sorted(kinds))
for r in validate(items):
    check(f"{r['source']}: {r['kind']} {r['name']} is valid", not r["errors"],
          "\n".join(r["errors"]))

# broken copies must be refused
dep = dl.find(plain, "Deployment", "healer")
sensor = dl.find(plain, "Sensor", "healer-ci-failure")
crd = dl.find(plain, "CustomResourceDefinition")
broken = []
d = copy.deepcopy(dep)
d["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
broken.append(("a misspelt container field", d, "readinesProbe"))
d = copy.deepcopy(dep)
d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
broken.append(("a port as a string", d, "containerPort"))
d = copy.deepcopy(dep)
d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["dropp"] = []
broken.append(("a misspelt securityContext field", d, "dropp"))
d = copy.deepcopy(crd)
d["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
    "env"]["additionalProperties"]["typ"] = "string"
broken.append(("a misspelt CRD schema keyword", d, "typ"))
d = copy.deepcopy(sensor)
d["spec"]["triggers"][0]["template"]["http"]["secureHeader"] = []
broken.append(("a misspelt sensor field (secureHeader)", d, "secureHeader"))
d = copy.deepcopy(sensor)
del d["spec"]["triggers"][0]["template"]["http"]["payload"]
broken.append(("an http trigger without payload", d, "payload"))
d = copy.deepcopy(sensor)
d["spec"]["dependencies"][0]["filters"]["data"][0]["type"] = "text"
broken.append(("a data filter of an unknown type", d, "type"))
d = copy.deepcopy(sensor)
d["spec"]["triggers"][0]["retryStrategy"]["cap"] = "1h"
broken.append(("a retryStrategy cap (Argo Events' Backoff has none)", d, "cap"))
d = copy.deepcopy(sensor)
d["spec"]["triggers"][0]["atLeastOnce"] = "true"
broken.append(("atLeastOnce as a string", d, "atLeastOnce"))
res = validate([(n, d) for n, d, _ in broken])
for (name, _, word), r in zip(broken, res):
    check(f"refused: {name}", r["errors"] and any(word in e for e in r["errors"]),
          repr(r["errors"]))

# the kustomization: every manifest, the CRD base, one namespace
kz_path = os.path.join(dl.KUBE_DIR, "kustomization.yaml")
kz = dl.yaml_files(kz_path)[kz_path][0]
files = sorted(f for f in os.listdir(dl.KUBE_DIR)
               if f.endswith(".yaml") and f != "kustomization.yaml")
check("kustomization.yaml lists every manifest of deploy/kubernetes and ../crds",
      sorted(r for r in kz["resources"] if not r.startswith("..")) == files and
      "../crds" in kz["resources"], f"{kz['resources']} vs {files}")
# the ConfigMap: generated, so that its name changes with its content and
# kustomize's rewritten reference changes the pod template (envFrom is
# read when a container starts: an edited ConfigMap of a fixed name
# reaches no running pod)
gens = kz.get("configMapGenerator", [])
envs = sorted(f for f in os.listdir(dl.KUBE_DIR) if f.endswith(".env"))
dref = [e["configMapRef"]["name"] for e in
        dep["spec"]["template"]["spec"]["containers"][0].get("envFrom", [])
        if "configMapRef" in e]
resource_cms = [f for f, d in plain if f.startswith("deploy/kubernetes/") and
                f.endswith(".yaml") and d.get("kind") == "ConfigMap"]
check("the ConfigMap is generated (configMapGenerator from the env files of deploy/kubernetes, "
      "name hash on) and is the one the Deployment names: none is a plain resource",
      [g["name"] for g in gens] == dref == ["healer-config"] and
      sorted(e for g in gens for e in g.get("envs", [])) == envs and envs and
      not kz.get("generatorOptions", {}).get("disableNameSuffixHash") and
      not any(g.get("options", {}).get("disableNameSuffixHash") for g in gens) and
      not resource_cms, f"{gens} {dref} {envs} {resource_cms}")
check("the kustomize name hash as kustomize computes it (its own test vectors)",
      dl.kustomize_hash({"metadata": {"name": ""}, "data": {"one": ""}}) == "9g67k2htb6" and
      dl.kustomize_hash({"metadata": {"name": ""}, "data": {"two": 2, "one": "",
                                                            "three": 3}}) == "7757f9kkct")
gcm = dl.find(plain, "ConfigMap", "healer-config")
changed = copy.deepcopy(gcm)
changed["data"]["HEALER_LOG_LEVEL"] = "debug"
check("a changed setting changes the generated ConfigMap's name, hence the pod template",
      dl.kustomize_hash(gcm) != dl.kustomize_hash(changed) and
      dl.kustomize_hash(gcm) == dl.kustomize_hash(copy.deepcopy(gcm)),
      dl.kustomize_hash(gcm))
crd_kz = os.path.join(dl.DEPLOY, "crds", "kustomization.yaml")
check("deploy/crds/kustomization.yaml holds the CRD",
      dl.yaml_files(crd_kz)[crd_kz][0]["resources"] == ["coderun.yaml"])
ns = {d["metadata"].get("namespace") for f, d in plain
      if f.startswith("deploy/kubernetes/") and not f.startswith("deploy/kubernetes/argocd/")}
check("every object of deploy/kubernetes is in the kustomization's namespace",
      ns == {kz["namespace"]}, repr(ns))
# ArgoCD's namespace: a base of its own (the one above moves everything to cto)
akz_dir = os.path.join(dl.KUBE_DIR, "argocd")
akz = dl.yaml_files(os.path.join(akz_dir, "kustomization.yaml"))[
    os.path.join(akz_dir, "kustomization.yaml")][0]
afiles = sorted(f for f in os.listdir(akz_dir) if f.endswith(".yaml") and
                f != "kustomization.yaml")
ans = {d["metadata"].get("namespace") for f, d in plain
       if f.startswith("deploy/kubernetes/argocd/")}
check("deploy/kubernetes/argocd: its kustomization lists its manifests, all in its namespace",
      sorted(akz["resources"]) == afiles and ans == {akz["namespace"]} and
      akz["namespace"] != kz["namespace"], f"{akz} {afiles} {ans}")

dl.finish()
