"""deploylib.py - shared helpers of the tests/deploy drivers: where things are,
reading YAML as Kubernetes and Helm do (through tests/deploy/yaml2json.mjs
and the npm `yaml` package), the binary's settings, a throw-away
`healer server` on loopback, the plain manifests and the rendered chart.
Python standard library only (plus node for YAML).
"""
import atexit
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("HEALER_SOURCE_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))
HEALER = os.environ.get("HEALER_BIN") or os.path.join(ROOT, "build", "healer")
DEPLOY = os.path.join(ROOT, "deploy")
KUBE_DIR = os.path.join(DEPLOY, "kubernetes")
CHART_DIR = os.path.join(DEPLOY, "helm", "healer")
SENSOR_DIR = os.path.join(DEPLOY, "argo-events")
NODE_DIR = os.path.join(ROOT, "tests", "node")
sys.path.insert(0, os.path.join(ROOT, "tests"))
import tap  # noqa: E402
from tap import check  # noqa: E402,F401

TMP = tempfile.mkdtemp(prefix="healer-deploy-")
_procs = []
_logs = []       # server logs, scanned for sanitizer reports at the end
_sanitizer = []  # sanitizer reports seen on the binary's stderr


_APP_KEY = []


def app_key():
    """A GitHub App private key (RSA PEM) made for the test once: with the
    App settings check-config reads the key."""
    if not _APP_KEY:
        _APP_KEY.append(subprocess.run(["openssl", "genrsa", "2048"], capture_output=True,
                                       text=True, check=True, timeout=60).stdout)
    return _APP_KEY[0]


def scan(text):
    if "runtime error:" in text or "Sanitizer" in text:
        _sanitizer.append(text[-2000:])


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)
    shutil.rmtree(TMP, ignore_errors=True)


atexit.register(_cleanup)


def node():
    return shutil.which("node") or shutil.which("nodejs")


def node_ready(*modules):
    """True when node and the npm packages are installed (scripts/install-deps.sh)."""
    return bool(node()) and all(
        os.path.isdir(os.path.join(NODE_DIR, "node_modules", m)) for m in modules)


def skip_all(reason):
    print("TAP version 13")
    print(f"1..0 # SKIP {reason}")
    sys.exit(0)


def yaml_files(*paths):
    """{path: [documents]} for YAML files, read as Kubernetes reads them."""
    p = subprocess.run([node(), os.path.join(HERE, "yaml2json.mjs"), *paths],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"yaml2json failed: {p.stderr.strip()}")
    return json.loads(p.stdout)


def yaml_text(text):
    """The documents of a YAML text."""
    path = os.path.join(TMP, f"text-{time.monotonic_ns()}.yaml")
    with open(path, "w") as f:
        f.write(text)
    return yaml_files(path)[path]


def rel(path):
    return os.path.relpath(path, ROOT)


def env_file(path):
    """{key: value} of an env file as kustomize reads one (api/kv/kv.go):
    leading white space dropped, empty and # lines skipped, the key up to
    the first '=', the value the rest of the line verbatim (no '=': empty);
    a key twice is an error, as kustomize refuses it."""
    out = {}
    with open(path, encoding="utf-8") as f:
        text = f.read().removeprefix("\ufeff")
    for n, line in enumerate(text.splitlines(), 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        if not re.fullmatch(r"[-._a-zA-Z][-._a-zA-Z0-9]*", key) or key in out:
            raise ValueError(f"{rel(path)}:{n}: bad or repeated key {key!r}")
        out[key] = value
    return out


def kustomize_generated(kdir):
    """[(file, ConfigMap)] the configMapGenerator of kdir's kustomization
    makes (envs and literals; its namespace, the options' labels and
    annotations), named as the kustomization names it: kustomize adds the
    content hash (kustomize_hash) and rewrites the references to it."""
    kpath = os.path.join(kdir, "kustomization.yaml")
    kz = yaml_files(kpath)[kpath][0]
    out = []
    for g in kz.get("configMapGenerator", []):
        if set(g) - {"name", "envs", "literals", "options", "namespace"}:
            raise NotImplementedError(f"configMapGenerator fields {sorted(g)}")
        data, src = {}, []
        for e in g.get("envs", []):
            more = env_file(os.path.join(kdir, e))
            if set(more) & set(data):
                raise ValueError(f"{e}: a key twice")
            data.update(more)
            src.append(rel(os.path.join(kdir, e)))
        for lit in g.get("literals", []):
            k, _, v = lit.partition("=")
            data[k] = v
        meta = {"name": g["name"], "namespace": g.get("namespace", kz.get("namespace"))}
        opts = g.get("options", {})
        if opts.get("labels"):
            meta["labels"] = dict(opts["labels"])
        if opts.get("annotations"):
            meta["annotations"] = dict(opts["annotations"])
        out.append((" ".join(src) or rel(kpath),
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}))
    return out


def kustomize_hash(cm):
    """The suffix kustomize gives a generated ConfigMap (api/hasher): the
    first 10 hex digits of SHA-256 of Go's JSON of {data, kind, name},
    with 0 1 3 a e turned into g h k m t."""
    import hashlib
    enc = json.dumps({"data": cm.get("data", {}), "kind": "ConfigMap",
                      "name": cm["metadata"]["name"]}, sort_keys=True, separators=(",", ":"),
                     ensure_ascii=False)
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                 ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        enc = enc.replace(a, b)
    h = hashlib.sha256(enc.encode()).hexdigest()[:10]
    return h.translate(str.maketrans("013ae", "ghkmt"))


def plain_manifests():
    """[(file, doc)] for deploy/kubernetes and deploy/kubernetes/argocd
    (without the kustomizations, with the ConfigMaps they generate), the
    CRD and the sensors."""
    files = []
    for d in (KUBE_DIR, os.path.join(KUBE_DIR, "argocd")):
        files += sorted(os.path.join(d, f) for f in os.listdir(d)
                        if f.endswith(".yaml") and f != "kustomization.yaml")
    files.append(os.path.join(DEPLOY, "crds", "coderun.yaml"))
    files += sorted(os.path.join(SENSOR_DIR, f) for f in os.listdir(SENSOR_DIR)
                    if f.endswith(".yaml"))
    docs = yaml_files(*files)
    return [(rel(f), d) for f in files for d in docs[f]] + kustomize_generated(KUBE_DIR)


def find(docs, kind, name=None):
    out = [d for _, d in docs if d.get("kind") == kind and
           (name is None or d.get("metadata", {}).get("name") == name)]
    if len(out) != 1:
        raise LookupError(f"expected one {kind} {name or ''}, found {len(out)}")
    return out[0]


# ---- the chart ----

_chart = {}


def _chart_files():
    if not _chart:
        v, c = os.path.join(CHART_DIR, "values.yaml"), os.path.join(CHART_DIR, "Chart.yaml")
        docs = yaml_files(v, c)
        _chart["values"], _chart["meta"] = json.dumps(docs[v][0]), json.dumps(docs[c][0])
    return _chart


def chart_values():
    return json.loads(_chart_files()["values"])


def chart_meta():
    return json.loads(_chart_files()["meta"])


def deep_merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(
            out.get(k), dict) else v
    return out


def render_chart(overrides=None, release="healer", namespace="cto"):
    """Renders every template; returns ([(template, doc)], values paths used)."""
    import helmlite
    values = deep_merge(chart_values(), overrides or {})
    tdir = os.path.join(CHART_DIR, "templates")
    r = helmlite.Renderer(values, release, namespace, chart_meta(),
                          {f: open(os.path.join(tdir, f)).read() for f in os.listdir(tdir)})
    out = os.path.join(TMP, f"render-{time.monotonic_ns()}")
    os.makedirs(out)
    paths = []
    for f in sorted(os.listdir(tdir)):
        if f.endswith(".yaml"):
            paths.append(os.path.join(out, f))
            with open(paths[-1], "w") as fh:
                fh.write(r.render(open(os.path.join(tdir, f)).read()))
    docs = yaml_files(*paths)
    return [(f"templates/{os.path.basename(p)}", d) for p in paths for d in docs[p]], \
        r.values_used


# ---- the binary ----

def config_keys():
    """[(name, kind)] from the settings table of src/config/config.c: kind is
    S (string), X (secret: NAME_FILE allowed), I (integer) or B (boolean)."""
    text = open(os.path.join(ROOT, "src", "config", "config.c")).read()
    return [(n, k) for k, n in re.findall(r'^\s*([SXIB])\("([A-Z0-9_]+)"', text, re.M)]


def clean_env(extra=None):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("HEALER_", "GITHUB_", "KUBERNETES_", "ARGOCD_", "GRAFANA_",
                              "PROMETHEUS_", "LOKI_", "OPENMEMORY_", "DISCORD_", "SLACK_",
                              "SMTP_"))}
    e.pop("KUBECONFIG", None)
    e["HOME"] = TMP
    if extra:
        e.update(extra)
    return e


def check_config(env=None):
    """Runs `healer check-config --print`; returns (exit code, {name: value}, stderr)."""
    p = subprocess.run([HEALER, "check-config", "--print"], capture_output=True, text=True,
                       env=clean_env(env), timeout=30)
    scan(p.stderr)
    vals = {}
    for line in p.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            vals[k] = v
    return p.returncode, vals, p.stderr


def routes():
    """[(name, path, match, methods)] from the route table of src/http/routes.c."""
    text = open(os.path.join(ROOT, "src", "http", "routes.c")).read()
    return re.findall(r'\{\s*"(\w+)",\s*"([^"]+)",\s*HTTP_MATCH_(\w+),\s*([A-Z_| ]+),',
                      text)


class Server:
    """`healer server` on 127.0.0.1, an ephemeral port, a temp data dir."""

    def __init__(self, env=None, name="server"):
        self.dir = os.path.join(TMP, name)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data, exist_ok=True)
        self.env = {"HEALER_DISPATCH": "none", "HEALER_LOG_LEVEL": "warn"}
        self.env.update(env or {})
        self.proc = None

    def start(self, cwd=None):
        pf = os.path.join(self.dir, "port")
        self.log = os.path.join(self.dir, "server.log")
        _logs.append(self.log)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [HEALER, "server", "--listen", "127.0.0.1:0", "--data-dir", self.data,
                 "--port-file", pf], env=clean_env(self.env), stdout=log, stderr=log,
                cwd=cwd or self.dir)
        _procs.append(self.proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if os.path.exists(pf) and open(pf).read().strip():
                self.port = int(open(pf).read())
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("healer did not start: " + self.log_tail())

    def log_tail(self):
        try:
            return open(self.log, errors="replace").read()[-3000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode if self.proc else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def finish():
    for log in _logs:
        try:
            scan(open(log, errors="replace").read())
        except OSError:
            pass
    check("no sanitizer reports from healer", not _sanitizer, "\n".join(_sanitizer))
    tap.finish()
