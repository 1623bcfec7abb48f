#!/usr/bin/env python3
"""test_rbac.py - the Role grants exactly the Kubernetes requests the binary
can make. The requests are read from src/ by kubecalls.py (a table of
(method, path pattern) per function, kept honest by the sources: an unknown
Kubernetes path in any source file fails); the ones reachable from main()
give the required (group, resource, verb) set, which must equal the Role's
rules in deploy/kubernetes/role.yaml and in the rendered chart, both ways.
The detector itself is tried on a copy of src/ with an extra request, which
it must report. Prints TAP."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib as dl  # noqa: E402
import kubecalls  # noqa: E402
from deploylib import check  # noqa: E402

if not dl.node_ready("yaml"):
    dl.skip_all("node or tests/node/node_modules/yaml not found (scripts/install-deps.sh)")

calls, problems = kubecalls.analyse()
check("every Kubernetes path in src/ is in the table, and the table matches the sources",
      not problems, "\n".join(problems))

# the derived table, for the log (stderr: TAP goes to stdout)
print("requests healer's sources can make (NEEDED: reachable from main):", file=sys.stderr)
for c, key, rkey, reached, chain in calls:
    print(f"  {'NEEDED' if reached else 'unused'} {c.verb:6} "
          f"{(c.group or 'core') + '/' + c.resource:26} {c.method:6} {c.path}", file=sys.stderr)
    print(f"         {key[0]}: {rkey[1]}()" + (f"  [{chain}]" if reached else ""),
          file=sys.stderr)

need = kubecalls.required(calls)
check("some requests are reachable (the call graph found main and the server)",
      len(need) >= 5, repr(need))
check("every reachable request is in healer's namespace or in ArgoCD's",
      {ns for ns, _, _, _ in need} == {"HEALER_NAMESPACE", "argocd"}, repr(need))
want = {(g, r, v) for ns, g, r, v in need if ns == "HEALER_NAMESPACE"}
want_argocd = {(g, r, v) for ns, g, r, v in need if ns == "argocd"}


def granted(role):
    out, bad = set(), []
    for rule in role.get("rules", []):
        if set(rule) - {"apiGroups", "resources", "verbs"}:
            bad.append(f"rule with {sorted(set(rule) - {'apiGroups', 'resources', 'verbs'})}")
        for g in rule.get("apiGroups", []):
            for r in rule.get("resources", []):
                for v in rule.get("verbs", []):
                    if "*" in (g, r, v):
                        bad.append(f"wildcard in {g}/{r}/{v}")
                    out.add((g, r, v))
    return out, bad


plain = dl.plain_manifests()
role = dl.find(plain, "Role", "healer")
got, bad = granted(role)
check("the Role has no wildcards, resourceNames or nonResourceURLs", not bad, "\n".join(bad))
check("every request healer makes is granted (deploy/kubernetes/role.yaml)",
      want <= got, f"missing: {sorted(want - got)}")
check("nothing is granted that no request needs (deploy/kubernetes/role.yaml)",
      got <= want, f"unneeded: {sorted(got - want)}")

arole = dl.find(plain, "Role", "healer-argocd")
agot, abad = granted(arole)
check("the Role in ArgoCD's namespace grants exactly what healer reads there "
      "(deploy/kubernetes/argocd/role.yaml)", agot == want_argocd and not abad and
      arole["metadata"]["namespace"] == "argocd", f"{sorted(agot)} vs {sorted(want_argocd)}")
arb = dl.find(plain, "RoleBinding", "healer-argocd")
rb = dl.find(plain, "RoleBinding", "healer")
sa = dl.find(plain, "ServiceAccount", "healer")
dep = dl.find(plain, "Deployment", "healer")
check("the RoleBinding binds the Role to the Deployment's ServiceAccount in its namespace",
      rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": role["metadata"]["name"]} and
      rb["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                          "namespace": role["metadata"]["namespace"]}] and
      dep["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"] and
      dep["metadata"]["namespace"] == role["metadata"]["namespace"], repr(rb))
check("the RoleBinding in ArgoCD's namespace binds that Role to healer's ServiceAccount",
      arb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                         "name": arole["metadata"]["name"]} and
      arb["metadata"]["namespace"] == arole["metadata"]["namespace"] and
      arb["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                           "namespace": dep["metadata"]["namespace"]}], repr(arb))
env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
check("HEALER_NAMESPACE is the pod's own namespace, the Role's namespace",
      env.get("HEALER_NAMESPACE", {}).get("valueFrom") ==
      {"fieldRef": {"fieldPath": "metadata.namespace"}}, repr(env.get("HEALER_NAMESPACE")))

crd = dl.find(plain, "CustomResourceDefinition")
check("the CodeRun group and plural the code uses are the CRD's",
      crd["spec"]["group"] == "agents.platform" and crd["spec"]["names"]["plural"] == "coderuns"
      and any(v["name"] == "v1" and v["served"] for v in crd["spec"]["versions"]),
      repr(crd["spec"]["names"]))

docs, _ = dl.render_chart()
hrole = dl.find(docs, "Role", "healer")
hgot, hbad = granted(hrole)
check("the chart's Role grants exactly the same", hgot == want and not hbad,
      f"chart: {sorted(hgot)}")
adocs, _ = dl.render_chart({"argocd": {"readApplications": True}})
harole = dl.find(adocs, "Role", "healer-argocd")
hagot, habad = granted(harole)
check("the chart's Role in ArgoCD's namespace grants exactly the same",
      hagot == want_argocd and not habad, f"chart: {sorted(hagot)}")
odocs, _ = dl.render_chart({"argocd": {"readApplications": True, "namespace": "gitops"}},
                           release="ops", namespace="platform")
orb = dl.find(odocs, "RoleBinding", "ops-argocd")
noargo = docs
check("the chart: argocd.namespace places that Role and its binding (to this release's "
      "ServiceAccount); without argocd.readApplications=true (the default) they are left out",
      dl.find(odocs, "Role", "ops-argocd")["metadata"]["namespace"] == "gitops" and
      orb["metadata"]["namespace"] == "gitops" and
      orb["subjects"] == [{"kind": "ServiceAccount", "name": "ops", "namespace": "platform"}]
      and not [d for _, d in noargo if d["metadata"]["name"].endswith("-argocd")],
      repr(orb))

# Pod alerts read pods, their logs and events in the alert's namespace:
# only namespaces where a Role grants that may be in HEALER_ALERT_NAMESPACES
# (empty means every namespace but kube-*, which no Role here covers).
POD_READS = {(g, r, v) for g, r, v in want if g == "" and r in ("pods", "pods/log", "events")}
check("pod reading is pods get/list, pods/log get, events list (from the sources)",
      POD_READS == {("", "pods", "get"), ("", "pods", "list"), ("", "pods/log", "get"),
                    ("", "events", "list")}, repr(sorted(POD_READS)))


def alert_namespaces(cm_data):
    rc, vals, err = dl.check_config({"HEALER_ALERT_NAMESPACES":
                                     cm_data["HEALER_ALERT_NAMESPACES"]})
    if rc != 0:
        return None, err
    v = vals.get("HEALER_ALERT_NAMESPACES", "")
    return {x.strip() for x in v.split(",") if x.strip()}, v


def pod_reading(ds, sa, sa_ns):
    """The namespaces where the docs let ServiceAccount sa_ns/sa read pods
    (a Role granting POD_READS, bound to it there)."""
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for _, d in ds
             if d["kind"] == "Role"}
    out = set()
    for _, b in ds:
        if b["kind"] != "RoleBinding" or \
                {"kind": "ServiceAccount", "name": sa, "namespace": sa_ns} not in b["subjects"]:
            continue
        role = roles.get((b["metadata"]["namespace"], b["roleRef"]["name"]))
        if role and b["roleRef"]["kind"] == "Role" and POD_READS <= granted(role)[0]:
            out.add(b["metadata"]["namespace"])
    return out


pns, praw = alert_namespaces(dl.find(plain, "ConfigMap", "healer-config")["data"])
check("deploy/kubernetes: HEALER_ALERT_NAMESPACES names only namespaces where the Role lets "
      "healer read pods, logs and events (not empty: every namespace)",
      pns and pns <= pod_reading(plain, "healer", "cto"),
      f"{praw!r} vs {sorted(pod_reading(plain, 'healer', 'cto'))}")
hns, hraw = alert_namespaces(dl.find(docs, "ConfigMap", "healer-config")["data"])
check("the chart's default: HEALER_ALERT_NAMESPACES is the release's namespace, where its "
      "Role grants the pod reading", hns == {"cto"} and pod_reading(docs, "healer", "cto") ==
      {"cto"}, f"{hraw!r}")
for given in ("team-a", "platform, team-a,team-b ,team-a", "team-b,team-a"):
    ndocs, _ = dl.render_chart({"heal": {"alertNamespaces": given}}, release="ops",
                               namespace="platform")
    nns, nraw = alert_namespaces(dl.find(ndocs, "ConfigMap", "ops-config")["data"])
    extra = [d for _, d in ndocs if d["metadata"]["name"] == "ops-pods"]
    roles = [d for d in extra if d["kind"] == "Role"]
    check(f"heal.alertNamespaces {given!r}: a Role granting exactly the pod reading, bound "
          "to this release's ServiceAccount, in each namespace listed but the release's own "
          "(which its Role covers), once each; check-config takes the list",
          nns is not None and pod_reading(ndocs, "ops", "platform") == nns | {"platform"} and
          sorted(d["metadata"]["namespace"] for d in roles) == sorted(nns - {"platform"}) and
          len(extra) == 2 * len(roles) and
          all(granted(d)[0] == POD_READS and not granted(d)[1] for d in roles),
          f"{nraw!r} {[(d['kind'], d['metadata']['namespace']) for d in extra]}")

# The detector must notice a new request: a copy of src/ with one more.
tmp = os.path.join(dl.TMP, "src-copy")
shutil.copytree(os.path.join(dl.ROOT, "src"), os.path.join(tmp, "src"))
with open(os.path.join(tmp, "src", "loop", "extra.c"), "w") as f:
    f.write('#include "net/kube.h"\n\nstatic int\nextra_secrets(struct hl_kube *k)\n{\n'
            '\treturn hl_kube_call(k, NULL, NULL, "GET", '
            '"/api/v1/namespaces/cto/secrets", NULL, NULL);\n}\n')
saved = kubecalls.ROOT
kubecalls.ROOT = tmp
try:
    _, p2 = kubecalls.analyse(kubecalls.Source(os.path.join(tmp, "src")))
finally:
    kubecalls.ROOT = saved
check("a request the table does not know is reported (a GET of secrets added to a copy)",
      any("extra_secrets" in p and "/api/v1/namespaces/cto/secrets" in p for p in p2),
      "\n".join(p2))
with open(os.path.join(tmp, "src", "loop", "extra.c"), "w") as f:
    f.write("")
with open(os.path.join(tmp, "src", "net", "kube.c")) as f:
    text = f.read()
with open(os.path.join(tmp, "src", "net", "kube.c"), "w") as f:
    f.write(text.replace('"pods", pod, "log"', '"pods", pod, "exec"'))
kubecalls.ROOT = tmp
try:
    _, p3 = kubecalls.analyse(kubecalls.Source(os.path.join(tmp, "src")))
finally:
    kubecalls.ROOT = saved
check("a changed request is reported (pods/log turned into pods/exec in a copy)",
      any("hl_kube_pod_log_req" in p for p in p3), "\n".join(p3))

dl.finish()
