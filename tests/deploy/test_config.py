#!/usr/bin/env python3
"""test_config.py - the manifests agree with the binary: every variable the
ConfigMap, the Deployment and the chart set is a setting `healer
check-config --print` knows (secrets only as NAME_FILE from the Secret
volume), every setting is placed somewhere or deliberately left out,
ConfigMap values are the binary's defaults, ports and probe paths are the
server's, the sensors post to the Service's address and the binary's
routes, and the binary accepts the Deployment's exact environment (values
and empty secret files) and serves the probe paths with it. Prints TAP."""
import os
import re
import sys
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib as dl  # noqa: E402
from deploylib import check  # noqa: E402

if not dl.node_ready("yaml"):
    dl.skip_all("node or tests/node/node_modules/yaml not found (scripts/install-deps.sh)")

# Settings deliberately in neither the ConfigMap nor the Deployment, and why.
LEFT_OUT = {
    "KUBECONFIG": "in-cluster configuration (the service account) is the default",
    "HEALER_RULES_FILE": "unset means the built-in rules; an empty value is not unset",
    "HEALER_PROMPTS_DIR": "unset means the built-in prompts; an empty value is not unset",
    "HEALER_SERVICES_FILE": "unset means no service map; an empty value is not unset",
    # (the chart sets these three from files.*: test_helm.py)
    "HEALER_HEAL_WORKSPACE": "defaults under HEALER_DATA_DIR; /workspace/watch only where the "
                             "pod mounts the heal-workspace PVC (commented out in the "
                             "Deployment, heal.workspace.enabled in the chart: test_helm.py)",
}
# The secrets the Deployment always reads; the others are optional: their
# variables are commented out in deploy/kubernetes/deployment.yaml (and off
# in the chart) until the Secret holds the key.
REQUIRED_SECRETS = {"HEALER_DATABASE_URL", "GITHUB_WEBHOOK_SECRET", "HEALER_API_TOKEN"}
# ConfigMap values that differ from the binary's defaults on purpose.
OVERRIDES = {"HEALER_DISPATCH": "kubernetes",  # the default guesses; in a cluster, say it
             # a Service's endpoints drop a terminating pod a moment after
             # its SIGTERM: keep accepting meanwhile
             "HEALER_SHUTDOWN_DELAY_S": "5",
             # under the container's 512Mi limit (checked below)
             "HEALER_HTTP_MAX_BUFFERED_MB": "128",
             # pod alerts only where the Role lets healer read pods: its own
             # namespace (the default, every namespace but kube-*, would
             # need grants in each; test_rbac.py)
             "HEALER_ALERT_NAMESPACES": "cto"}

keys = dl.config_keys()
kind = dict(keys)
rc, defaults, err = dl.check_config({"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
check("check-config --print runs with no configuration", rc == 0, err)
check("the settings table of src/config/config.c is what the binary prints",
      [k for k, _ in keys] == list(defaults), f"{[k for k, _ in keys]}\n{list(defaults)}")
secrets = {k for k, t in keys if t == "X"}

# every secret setting takes NAME_FILE (the binary says "(set)" for each)
files = {}
for k in sorted(secrets):
    p = os.path.join(dl.TMP, "probe-" + k.lower())
    with open(p, "w") as f:
        f.write("postgres://u:pw@db.invalid/h\n" if k == "HEALER_DATABASE_URL" else
                "smtps://u:pw@mail.invalid:465\n" if k == "SMTP_URL" else
                dl.app_key() if k == "GITHUB_APP_PRIVATE_KEY" else
                "https://secret.invalid/value\n")
    files[k + "_FILE"] = p
rc, vals, err = dl.check_config(dict(files, GITHUB_APP_ID="1", GITHUB_APP_INSTALLATION_ID="2"))
# (the database URL is shown without its password, the others as "(set)")
check("every secret setting is read from NAME_FILE",
      rc == 0 and all(vals.get(k) == "(set)" for k in secrets - {"HEALER_DATABASE_URL"}) and
      vals.get("HEALER_DATABASE_URL") == "postgres://db.invalid/h",
      f"{err}\n" + " ".join(f"{k}={vals.get(k)}" for k in sorted(secrets)))

plain = dl.plain_manifests()
cm = dl.find(plain, "ConfigMap", "healer-config")
dep = dl.find(plain, "Deployment", "healer")
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
env = {e["name"]: e for e in c["env"]}
# the optional secrets' variables, uncommented: the text must still be the
# same Deployment with those entries added
dep_text = open(os.path.join(dl.KUBE_DIR, "deployment.yaml")).read()
commented = re.findall(r"^( +)# (- name: \w+_FILE)\n\1#   (value: \S+)$", dep_text, re.M)
opened = re.sub(r"^( +)# (- name: \w+_FILE)\n\1#   (value: \S+)$", r"\1\2\n\1  \3",
                dep_text, flags=re.M)
dep_all = dl.yaml_text(opened)[0]
env_all = {e["name"]: e for e in dep_all["spec"]["template"]["spec"]["containers"][0]["env"]}
optional_env = {k: v for k, v in env_all.items() if k not in env}
check("the Deployment's commented optional secret variables uncomment into the same "
      "Deployment plus those variables",
      commented and len(optional_env) == len(commented) and
      all(env_all[k] == env[k] for k in env) and
      dep_all["spec"]["template"]["spec"]["volumes"] == pod["volumes"], repr(commented))
check("the Deployment takes the ConfigMap whole (envFrom)",
      c.get("envFrom") == [{"configMapRef": {"name": cm["metadata"]["name"]}}], repr(c.get("envFrom")))

data = cm["data"]
check("every ConfigMap key is a setting, and none is a secret",
      all(k in kind and k not in secrets for k in data),
      [k for k in data if k not in kind or k in secrets])
check("every ConfigMap value is a string", all(isinstance(v, str) for v in data.values()),
      {k: v for k, v in data.items() if not isinstance(v, str)})
wrong = {k: (v, defaults.get(k)) for k, v in data.items() if k not in OVERRIDES and
         v != defaults.get(k)}
check("ConfigMap values are the binary's defaults (HEALER_DISPATCH says kubernetes)",
      not wrong and all(data.get(k) == v for k, v in OVERRIDES.items()), repr(wrong))

bad_env, file_vars = [], {}
for name, e in env_all.items():
    base = name[:-5] if name.endswith("_FILE") else None
    if base and base in secrets:
        file_vars[base] = e.get("value", "")
    elif name not in kind:
        bad_env.append(f"{name}: not a setting")
    elif name in secrets:
        bad_env.append(f"{name}: a secret must come as {name}_FILE")
    elif name in data:
        bad_env.append(f"{name}: set both in the ConfigMap and the Deployment")
check("every Deployment variable is a setting or a secret's NAME_FILE", not bad_env,
      "\n".join(bad_env))
placed = set(data) | {n for n in env if n in kind} | set(file_vars) | set(LEFT_OUT)
check("every setting is placed (ConfigMap, Deployment, Secret file) or deliberately left out",
      placed == set(kind), f"unplaced {sorted(set(kind) - placed)}; "
      f"unknown {sorted(placed - set(kind))}")
check("every secret setting comes as a file (the optional ones once uncommented)",
      set(file_vars) == secrets, f"missing {sorted(secrets - set(file_vars))}")
required = {n[:-5] for n in env if n.endswith("_FILE") and n[:-5] in secrets}
check("the database URL, the webhook secret and the API token are always read; the other "
      "secrets are optional", required == REQUIRED_SECRETS and
      {n[:-5] for n in optional_env} == secrets - REQUIRED_SECRETS, repr(sorted(required)))

vols = {v["name"]: v for v in pod["volumes"]}
mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
secret_mounts = {m["mountPath"]: vols[m["name"]]["secret"]["secretName"]
                 for m in c["volumeMounts"] if "secret" in vols.get(m["name"], {})}
keys_of = {}
bad_files = []
for base, path in sorted(file_vars.items()):
    d, key = os.path.split(path)
    if d not in secret_mounts or not mounts[d].get("readOnly"):
        bad_files.append(f"{base}_FILE={path}: not in a read-only Secret mount")
    keys_of[base] = (secret_mounts.get(d), key)
check("each NAME_FILE names a key of the Secret volume, mounted read-only", not bad_files,
      "\n".join(bad_files))
db_dir, db_file = os.path.split(file_vars.get("HEALER_DATABASE_URL", ""))
db_vol = vols.get(mounts.get(db_dir, {}).get("name"), {}).get("secret", {})
check("HEALER_DATABASE_URL is a secret read from a file of its own Secret volume "
      "(chart: database.secretName / secretKey)",
      "HEALER_DATABASE_URL" in secrets and "HEALER_DATABASE_URL" not in env and
      db_vol.get("items") == [{"key": "database-url", "path": db_file}], repr(db_vol))
check("HEALER_DATA_DIR and /tmp are writable volumes; the root filesystem is read-only",
      env.get("HEALER_DATA_DIR", {}).get("value") in mounts and "/tmp" in mounts and
      all("emptyDir" in vols[mounts[p]["name"]] for p in (env["HEALER_DATA_DIR"]["value"],
                                                         "/tmp")) and
      c["securityContext"].get("readOnlyRootFilesystem") is True, repr(mounts))
sc, psc = c["securityContext"], pod["securityContext"]
check("non-root, no privilege escalation, ALL capabilities dropped, RuntimeDefault seccomp",
      psc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is True and
      isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0 and
      sc.get("allowPrivilegeEscalation") is False and
      sc.get("capabilities") == {"drop": ["ALL"]} and
      sc.get("seccompProfile") == {"type": "RuntimeDefault"} and
      psc.get("seccompProfile") == {"type": "RuntimeDefault"}, repr((psc, sc)))

readme = open(os.path.join(dl.DEPLOY, "README.md")).read()
all_keys = sorted({k for _, k in keys_of.values()})
undocumented = [k for k in all_keys if f"`{k}`" not in readme]
check("deploy/README.md names every key the Secret must hold", not undocumented,
      repr(undocumented))

# ---- ports, probes, routes, the Service, the sensors ----
routes = dl.routes()
get_paths = {p for _, p, m, meth in routes if m == "EXACT" and "HTTP_GET" in meth}
post_paths = {p for _, p, m, meth in routes if m == "EXACT" and "HTTP_POST" in meth}
listen = env["HEALER_LISTEN"]["value"]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check("HEALER_LISTEN listens on every address at the container port named http",
      listen == f"0.0.0.0:{ports.get('http')}", f"{listen} {ports}")
probes = {n: c.get(n, {}).get("httpGet", {}) for n in ("livenessProbe", "readinessProbe",
                                                       "startupProbe")}
check("liveness /health, readiness /ready, on the http port, and both are GET routes",
      probes["livenessProbe"].get("path") == "/health" and
      probes["readinessProbe"].get("path") == "/ready" and
      all(p.get("port") == "http" and p.get("path") in get_paths for p in probes.values()),
      f"{probes} routes {sorted(get_paths)}")
# healer answers /health only after the store is open and migrated (the
# HTTP server starts after hl_store_open_with in cmd_server.c), and an
# upgrade's migration of a big store takes minutes (0012 rewrites every
# attempt row; the other replicas wait on the migration lock meanwhile). A
# startup probe giving up sooner has the kubelet kill the container
# mid-migration: the transaction rolls back and the next start begins it
# again, for ever.
srv_c = open(os.path.join(dl.ROOT, "src", "cmd", "cmd_server.c")).read()
sp_ = c.get("startupProbe", {})
budget = sp_.get("initialDelaySeconds", 0) + sp_.get("periodSeconds", 10) * sp_.get(
    "failureThreshold", 3)
check("the startup probe allows 10 minutes (healer listens only after migrating the store)",
      srv_c.index("hl_store_open_with(") < srv_c.index("hl_http_server_start(") and
      budget >= 600, f"startupProbe {sp_}: {budget} s")
# SIGTERM: the shutdown delay, then the drain of requests in flight (10 s),
# then the workers' and the loop's current steps, all before the SIGKILL
drain_s = int(re.search(r"#define SERVER_DRAIN_MS (\d+)", srv_c).group(1)) // 1000
delay_s = int(data.get("HEALER_SHUTDOWN_DELAY_S", "0"))
grace = pod.get("terminationGracePeriodSeconds", 30)
check("SIGTERM: a shutdown delay, then the drain, within the grace period with 10 s to spare",
      delay_s >= 5 and grace >= delay_s + drain_s + 10, (delay_s, drain_s, grace))
# bodies in memory plus what parsing and processing a burst of the largest
# ones takes (measured: the cap plus about 240 MiB) stay under the limit
lim = c["resources"]["limits"]["memory"]
lim_mib = int(lim[:-2]) * (1024 if lim.endswith("Gi") else 1) if lim[-2:] in ("Mi", "Gi") else 0
buf_mib = int(data.get("HEALER_HTTP_MAX_BUFFERED_MB", "256"))
check("the memory limit holds the buffered bodies' cap plus 320 MiB",
      lim_mib >= buf_mib + 320, (lim, buf_mib))
ann = dep["spec"]["template"]["metadata"].get("annotations", {})
check("the scrape annotations point at /metrics on the http port",
      ann.get("prometheus.io/path") in get_paths and ann.get("prometheus.io/path") == "/metrics"
      and ann.get("prometheus.io/port") == str(ports.get("http")), repr(ann))
svc = dl.find(plain, "Service", "healer")
sp = svc["spec"]["ports"]
check("Service healer: port 8080 to the http port, selecting the Deployment's pods",
      [(p["port"], p["targetPort"]) for p in sp] == [(8080, "http")] and
      svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"] and
      all(dep["spec"]["template"]["metadata"]["labels"].get(k) == v
          for k, v in svc["spec"]["selector"].items()), repr(svc["spec"]))
pdb = dl.find(plain, "PodDisruptionBudget", "healer")
check("two replicas, spread over nodes, and a disruption budget keeping one ready one, "
      "evicting unready pods always (AlwaysAllow)",
      dep["spec"]["replicas"] == 2 and pdb["spec"]["minAvailable"] == 1 and
      # both replicas unready (the database down: /ready 503) must not
      # block a drain: the default IfHealthyBudget evicts no unready pod
      pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow" and
      pdb["spec"]["selector"] == dep["spec"]["selector"] and
      any(t["topologyKey"] == "kubernetes.io/hostname" and
          t["labelSelector"] == dep["spec"]["selector"]
          for t in pod.get("topologySpreadConstraints", [])), repr(pdb["spec"]))
svc_host = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc"
bad_urls = []
for f, d in plain:
    if d.get("kind") != "Sensor":
        continue
    for t in d["spec"]["triggers"]:
        u = urlparse(t["template"]["http"]["url"])
        if u.hostname != svc_host or u.port != sp[0]["port"] or u.path not in post_paths or \
                not u.path.startswith("/api/remediate/"):
            bad_urls.append(f"{f}: {t['template']['http']['url']}")
check("the sensors post to the Service (name, namespace, port) and to /api/remediate/* routes",
      not bad_urls and any(d.get("kind") == "Sensor" for _, d in plain), "\n".join(bad_urls))

# ---- the binary takes the Deployment's environment ----
secret_dir = os.path.join(dl.TMP, "secret-volume")
os.makedirs(secret_dir)


def pod_env(secret_values, optional=True):
    """The container's environment, the optional secrets' variables
    uncommented or not, with a Secret holding secret_values."""
    e = dict(data)
    for name, spec in (env_all if optional else env).items():
        if "value" in spec:
            e[name] = spec["value"]
        elif spec.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == \
                "metadata.namespace":
            e[name] = dep["metadata"]["namespace"]
        elif "secretKeyRef" in spec.get("valueFrom", {}):
            e[name] = secret_values.get(spec["valueFrom"]["secretKeyRef"]["key"], "")
    for base, (_, key) in keys_of.items():  # the Secret volumes, here
        if not optional and base + "_FILE" in optional_env:
            continue
        path = os.path.join(secret_dir, key)
        if key in secret_values:
            with open(path, "w") as f:
                f.write(secret_values[key])
        elif os.path.exists(path):
            os.unlink(path)  # a key the Secret does not hold
        e[base + "_FILE"] = path
    return e


sample = {"database-url": "postgres://healer:pw@postgres.cto.svc:5432/healer",
          "api-token": "t0ken", "github-token": "ghp_x", "github-webhook-secret": "s1,s2",
          "discord-webhook-url": "https://discord.invalid/api/webhooks/1/x",
          # a Secret file that is empty is a configuration error, not "no secret"
          "github-app-private-key": dl.app_key(),
          "argocd-token": "argo-t0ken", "grafana-token": "graf-t0ken",
          "openmemory-api-key": "om-k3y",
          "slack-webhook-url": "https://hooks.slack.invalid/services/T/B/x",
          "smtp-url": "smtp://mail.invalid:25"}
minimal = {k: sample[k] for k in ("database-url", "github-webhook-secret", "api-token")}
# the App's private key comes with its id and installation id (ConfigMap keys)
rc, vals, err = dl.check_config(dict(pod_env(sample), GITHUB_APP_ID="1",
                                     GITHUB_APP_INSTALLATION_ID="2"))
check("check-config accepts the Deployment's environment (ConfigMap, values, every Secret "
      "file)",
      rc == 0 and vals.get("HEALER_API_TOKEN") == "(set)" and
      vals.get("DISCORD_WEBHOOK_URL") == "(set)" and vals.get("HEALER_DISPATCH") == "kubernetes"
      and vals.get("HEALER_NAMESPACE") == dep["metadata"]["namespace"] and
      vals.get("HEALER_LISTEN") == listen, err or repr(vals))
rc, vals, err = dl.check_config(pod_env(minimal, optional=False))
check("the minimal Secret (database-url, github-webhook-secret, api-token) is enough: the "
      "optional keys are absent and their settings unset",
      rc == 0 and all(vals.get(k) == ("(set)" if k in REQUIRED_SECRETS else "")
                      for k in secrets - {"HEALER_DATABASE_URL"}) and
      vals.get("HEALER_DATABASE_URL") == "postgres://postgres.cto.svc:5432/healer",
      err or repr(vals))
for key, name in (("api-token", "HEALER_API_TOKEN"),
                  ("github-webhook-secret", "GITHUB_WEBHOOK_SECRET")):
    rc, vals, err = dl.check_config(pod_env(dict(minimal, **{key: ""}), optional=False))
    check(f"an empty {key} is a configuration error naming {name} (fail-closed)",
          rc != 0 and name in err, err or repr(vals))
rc, vals, err = dl.check_config(pod_env(minimal, optional=True))
check("an optional variable uncommented while the Secret lacks its key stops it "
      "(so it stays commented until the key exists)", rc != 0 and "_FILE" in err,
      err or repr(vals))

# the server with that environment; the store stays SQLite (no PostgreSQL
# here) and nothing is dispatched (no cluster here)
srv_env = pod_env(minimal, optional=False)
srv_env.pop("HEALER_DATABASE_URL_FILE")
srv_env.update({"HEALER_DISPATCH": "none", "HEALER_LOG_LEVEL": "warn"})
srv = dl.Server(srv_env, "pod-env").start()
answers = {n: srv.request("GET", p["path"])[0] for n, p in probes.items()}
met = srv.request("GET", ann["prometheus.io/path"])[0]
unauth = srv.request("POST", "/api/remediate/ci-failure", b"{}",
                     {"Content-Type": "application/json"})[0]
srv.stop()
check("with the minimal Secret, the server answers 200 on every probe path and /metrics",
      all(v == 200 for v in answers.values()) and met == 200, f"{answers} {met}\n" +
      srv.log_tail())
check("and /api/remediate/* wants the token from the Secret (401 without it)", unauth == 401,
      repr(unauth))

# an empty HEALER_RULES_FILE is refused: that is why the ConfigMap leaves it out
bad = dl.Server({"HEALER_RULES_FILE": ""}, "empty-rules")
try:
    bad.start()
    started = True
except RuntimeError:
    started = False
bad.stop()
check("an empty HEALER_RULES_FILE stops the server (so the ConfigMap must not carry it)",
      not started, bad.log_tail())

dl.finish()
