"""kubecalls.py - every Kubernetes API request healer's sources can make, read
from src/ and checked against a hand-kept table, and which of them the
binary can reach from main(). tests/deploy/test_rbac.py compares the result
with the Role; `python3 tests/deploy/kubecalls.py` prints the table.

How the sources are read (C in the project's style, docs/CODING_STYLE.md):
  - functions: a name at column 0 followed by '(' and, after the parameter
    lines, a line that is exactly '{'; the body ends at the next line that
    is exactly '}'. Everything else is file scope (tables of handlers,
    vtables).
  - a Kubernetes path site: a function whose text (comments removed) calls
    hl_kube_path(), contains a string literal "/api/v1" or one starting
    with "/api/v1/namespaces" or "/apis/", or names HL_CODERUN_PREFIX /
    HL_CODERUN_API_VERSION. (ArgoCD's REST "/api/v1/applications", Loki's
    and Prometheus' "/api/v1/query..." are not Kubernetes paths.)
  - reachability: any mention of a function's name in a reachable
    function's body (a call or a function pointer) makes it reachable; a
    reachable function's file makes the names mentioned at that file's
    scope reachable (handler tables). Names are matched without regard to
    which file defines them, so static functions sharing a name make the
    answer larger, never smaller.

SITES maps every site (file, function) to what it requests. A site found
in the sources that SITES does not list, or a SITES entry whose function
is gone or whose text no longer holds the pieces the entry names, is an
error: the table is the reading of the code, and the code keeps it honest.
"""
import os
import re
import sys

ROOT = os.environ.get("HEALER_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.path.join(ROOT, "src")

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Call:
    """One request: method and path pattern; the function that builds the
    path (site) and the one that sends it (requester, reached or not);
    needles: texts the site's and the requester's bodies must contain."""

    def __init__(self, method, path, group, resource, verb, needles, requester=None,
                 requester_needles=(), namespace="HEALER_NAMESPACE"):
        self.method, self.path, self.group, self.resource = method, path, group, resource
        self.verb, self.needles, self.requester = verb, tuple(needles), requester
        self.requester_needles = tuple(requester_needles)
        self.namespace = namespace


CR = "/apis/agents.platform/v1/namespaces/{ns}/coderuns"
CORE = "/api/v1/namespaces/{ns}"

# (file, function) -> list of Call, or (why the site sends no request of its
# own, texts its body must contain).
SITES = {
    ("src/net/kube.c", "hl_kube_path"):
        ("the path builder: every caller below is a site of its own",
         ['"/namespaces/"', "kube_append_name("]),
    ("src/dispatch/coderun.c", "hl_coderun_build"):
        ("the manifest's apiVersion field, not a path", ['"apiVersion", HL_CODERUN_API_VERSION']),
    ("src/dispatch/coderun.c", "hl_coderun_build_heal"):
        ("the manifest's apiVersion field, not a path", ['"apiVersion", HL_CODERUN_API_VERSION']),
    ("src/dispatch/coderun.c", "hl_coderun_validate"):
        ("checks the manifest's apiVersion, not a path", ['"apiVersion", ""), HL_CODERUN_API_VERSION']),
    ("src/net/kube.c", "hl_kube_get_pod"): [
        Call("GET", CORE + "/pods/{name}", "", "pods", "get",
             ['"/api/v1"', '"pods", name, NULL', "kube_get("])],
    ("src/net/kube.c", "hl_kube_list_pods"): [
        Call("GET", CORE + "/pods?labelSelector=", "", "pods", "list",
             ['"/api/v1"', '"pods", NULL, NULL', '"labelSelector"', "kube_get("])],
    ("src/net/kube.c", "hl_kube_pod_log_req"): [
        Call("GET", CORE + "/pods/{name}/log", "", "pods/log", "get",
             ['"/api/v1"', '"pods", pod, "log"', '"GET"'])],
    ("src/net/kube.c", "hl_kube_list_events"): [
        Call("GET", CORE + "/events?fieldSelector=involvedObject.name=", "", "events", "list",
             ['"/api/v1"', '"events", NULL, NULL', '"fieldSelector"', "kube_get("])],
    ("src/net/kube.c", "hl_kube_get_argocd_app"): [
        Call("GET", "/apis/argoproj.io/v1alpha1/namespaces/{ns}/applications/{name}",
             "argoproj.io", "applications", "get",
             ['"/apis/argoproj.io/v1alpha1"', '"argocd"', '"applications", name', "kube_get("],
             namespace="argocd")],
    ("src/net/kube_coderun.c", "hl_kube_create_coderun"): [
        Call("POST", CR, "agents.platform", "coderuns", "create",
             ["HL_CODERUN_PREFIX", '"coderuns", NULL, NULL', '"POST"'])],
    ("src/net/kube_coderun.c", "hl_kube_get_coderun"): [
        Call("GET", CR + "/{name}", "agents.platform", "coderuns", "get",
             ["HL_CODERUN_PREFIX", '"coderuns", name, NULL', "coderun_get("])],
    ("src/net/kube_coderun.c", "hl_kube_list_coderuns"): [
        Call("GET", CR + "?labelSelector=", "agents.platform", "coderuns", "list",
             ["HL_CODERUN_PREFIX", '"coderuns", NULL, NULL', '"labelSelector"',
              "coderun_get("])],
    ("src/net/kube_coderun.c", "hl_kube_delete_coderun"): [
        Call("DELETE", CR + "/{name}?propagationPolicy=Background", "agents.platform",
             "coderuns", "delete",
             ["HL_CODERUN_PREFIX", '"coderuns", name, NULL', '"DELETE"'])],
    ("src/net/kube_watch.c", "hl_kube_watch"):
        ("picks the watched collection: HL_CODERUN_PREFIX + coderuns unless the caller "
         "sets api_prefix / resource (checked: no caller does)",
         ["o->api_prefix ? o->api_prefix : HL_CODERUN_PREFIX", '"coderuns"']),
    ("src/net/kube_watch.c", "watch_path"): [
        Call("GET", CR + "?limit=&continue=&labelSelector=", "agents.platform", "coderuns",
             "list", ["w->prefix", "w->resource, NULL, NULL", '"labelSelector"'],
             requester="watch_list", requester_needles=['"limit"', "watch_path(", "watch_get("]),
        Call("GET", CR + "?watch=1&allowWatchBookmarks=true&resourceVersion=&labelSelector=",
             "agents.platform", "coderuns", "watch",
             ["w->prefix", "w->resource, NULL, NULL", '"labelSelector"'],
             requester="watch_stream",
             requester_needles=['"watch"', '"1"', "watch_path(", "watch_get("]),
    ],
    # context gathering: ctx_add_kube prepares a GET of the path its caller
    # built (hl_kube_req_init), sent in the context batch
    ("src/remediate/context.c", "ctx_plan_kubernetes"): [
        Call("GET", CORE + "/pods?labelSelector=&limit=", "", "pods", "list",
             ['"/api/v1/namespaces/"', '"/pods?labelSelector="', '"kubernetes", ctx_parse_pods'],
             requester="ctx_add_kube", requester_needles=["hl_kube_req_init(", '"GET"']),
        Call("GET", CORE + "/events?fieldSelector=type=Warning&limit=200", "", "events", "list",
             ['"/api/v1/namespaces/"', '"/events?fieldSelector=type%3DWarning&limit=200"',
              '"kubernetes_events", ctx_parse_events'],
             requester="ctx_add_kube", requester_needles=["hl_kube_req_init(", '"GET"'])],
    # a retry's context: the previous attempt's pod, for its containers
    # (their logs are then asked for by name, hl_kube_pod_log_req)
    ("src/remediate/context.c", "ctx_plan_agent_output"): [
        Call("GET", CORE + "/pods/{name}", "", "pods", "get",
             ['"/api/v1/namespaces/"', '"/pods/"', "retry->agent_pod",
              '"agent_output", ctx_parse_agent_pod'],
             requester="ctx_add_kube", requester_needles=["hl_kube_req_init(", '"GET"'])],
    # the Application object when no ARGOCD_SERVER is set (the ArgoCD alert
    # flow), in the service map's argocd_namespace (default "argocd")
    ("src/remediate/context.c", "ctx_plan_argocd"): [
        Call("GET", "/apis/argoproj.io/v1alpha1/namespaces/{ns}/applications/{name}",
             "argoproj.io", "applications", "get",
             ['"/apis/argoproj.io/v1alpha1/namespaces/"', "service.argocd_namespace",
              '"/applications/"', '"argocd", ctx_parse_argocd'],
             requester="ctx_add_kube", requester_needles=["hl_kube_req_init(", '"GET"'],
             namespace="argocd")],
    ("src/dispatch/dispatch.c", "hl_dispatch_delete"): [
        Call("DELETE", CR + "/{name}?propagationPolicy=Background", "agents.platform",
             "coderuns", "delete",
             ['"/apis/%s/namespaces/"', "HL_CODERUN_API_VERSION", '"/coderuns/"', '"DELETE"'])],
}

# Local wrappers that send a GET for the path their caller built: the
# needle "kube_get(" / "coderun_get(" stands for a GET only because these
# bodies say so (checked).
WRAPPERS = {
    ("src/net/kube.c", "kube_get"): "GET",
    ("src/net/kube_coderun.c", "coderun_get"): "GET",
    ("src/net/kube_watch.c", "watch_get"): "GET",
}


_LEX = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|/\*.*?\*/|//[^\n]*', re.S)


def strip_comments(text):
    """Removes /* */ and // comments, keeping string and char literals and
    the line structure."""
    def keep(m):
        t = m.group(0)
        if t.startswith("/*"):
            return "\n" * t.count("\n")
        return "" if t.startswith("//") else t
    return _LEX.sub(keep, text)


def strip_strings(text):
    return re.sub(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'', '""', text)


class Source:
    """The functions of every .c file under src/."""

    def __init__(self, src=SRC):
        self.funcs = {}      # (file, name) -> body text (comments removed)
        self.by_name = {}    # name -> [(file, name)]
        self.file_scope = {}  # file -> text outside function bodies
        for dirpath, _, files in os.walk(src):
            for f in sorted(files):
                if f.endswith(".c"):
                    self._parse(os.path.join(dirpath, f))

    def _parse(self, path):
        rel = os.path.relpath(path, ROOT)
        lines = strip_comments(open(path, encoding="utf-8").read()).split("\n")
        scope, i = [], 0
        while i < len(lines):
            m = re.match(r"([A-Za-z_]\w*)\(", lines[i])
            if m and not m.group(1).startswith("__"):
                j = i
                while j < len(lines) and lines[j] != "{" and not lines[j].rstrip().endswith(";"):
                    j += 1
                if j < len(lines) and lines[j] == "{":
                    k = j
                    while k < len(lines) and lines[k] != "}":
                        k += 1
                    key = (rel, m.group(1))
                    self.funcs[key] = "\n".join(lines[i:k + 1])
                    self.by_name.setdefault(m.group(1), []).append(key)
                    i = k + 1
                    continue
            scope.append(lines[i])
            i += 1
        self.file_scope[rel] = "\n".join(scope)

    def names_in(self, text):
        return {w for w in re.findall(r"\b[A-Za-z_]\w*\b", strip_strings(text))
                if w in self.by_name}

    def reachable(self, root=("src/main.c", "main")):
        """{(file, name): parent key} for every function reachable from root."""
        parent = {root: None}
        work, files_done = [root], set()
        while work:
            key = work.pop()
            texts = [(key, self.funcs[key])]
            if key[0] not in files_done:
                files_done.add(key[0])
                texts.append((key, self.file_scope.get(key[0], "")))
            for who, text in texts:
                for name in self.names_in(text):
                    for callee in self.by_name[name]:
                        if callee not in parent:
                            parent[callee] = who
                            work.append(callee)
        return parent

    def sites(self):
        """Every (file, function) whose text builds a Kubernetes path."""
        found = {}
        lit = re.compile(r'"(/api/v1"|/api/v1/namespaces[^"]*"|/apis/[^"]*")')
        for key, body in self.funcs.items():
            why = []
            if re.search(r"\bhl_kube_path\s*\(", body) and key[1] != "hl_kube_path":
                why.append("calls hl_kube_path")
            why += ["literal " + m.group(0) for m in lit.finditer(body)]
            if re.search(r"\bHL_CODERUN_(PREFIX|API_VERSION)\b", body):
                why.append("names HL_CODERUN_PREFIX/API_VERSION")
            if key == ("src/net/kube.c", "hl_kube_path") or why:
                found[key] = why or ["the builder"]
        return found


def chain(parent, key):
    out = []
    while key is not None:
        out.append(key[1])
        key = parent[key]
    return " <- ".join(out)


def derive_verb(method, path):
    """The RBAC verb of a request (Kubernetes' request-info rules)."""
    base, _, query = path.partition("?")
    segs = base.strip("/").split("/")
    i = segs.index("namespaces")
    rest = segs[i + 2:]            # resource [, name [, subresource]]
    named = len(rest) >= 2
    if method == "GET":
        if not named:
            return "watch" if re.search(r"(^|&)watch=(1|true)", query) else "list"
        return "get"
    return {"POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if named else "deletecollection"}[method]


def resource_of(path):
    segs = path.partition("?")[0].strip("/").split("/")
    rest = segs[segs.index("namespaces") + 2:]
    return rest[0] + ("/" + rest[2] if len(rest) >= 3 else "")


def group_of(path):
    segs = path.strip("/").split("/")
    return "" if segs[0] == "api" else segs[1]


def analyse(src=None):
    """Returns (calls, problems): calls is a list of (Call, site key,
    requester key, reached, chain); problems lists every disagreement
    between SITES and the sources."""
    src = src or Source()
    problems, calls = [], []
    found = src.sites()
    for key, why in sorted(found.items()):
        if key not in SITES:
            problems.append(f"{key[0]}: {key[1]}() builds a Kubernetes path the table does "
                            f"not know ({'; '.join(why)}): add it to SITES in "
                            f"tests/deploy/kubecalls.py and the Role")
    for key in SITES:
        if key not in src.funcs:
            problems.append(f"{key[0]}: {key[1]}() is in SITES but not in the sources")
        elif key not in found:
            problems.append(f"{key[0]}: {key[1]}() is in SITES but builds no Kubernetes path")
    for key, method in WRAPPERS.items():
        body = src.funcs.get(key, "")
        if not re.search(r'hl_kube_(call|call_ex|req_init)\([^;]*"%s"' % method, body, re.S):
            problems.append(f"{key[0]}: {key[1]}() no longer sends a {method}")
    parent = src.reachable()
    for key, entries in SITES.items():
        if key not in src.funcs:
            continue
        body = src.funcs[key]
        if isinstance(entries, tuple):
            why, needles = entries
            for n in needles:
                if n not in body:
                    problems.append(f"{key[0]}: {key[1]}() no longer contains {n!r} ({why})")
            if re.search(r"\bhl_kube_(call|call_ex|req_init)\s*\(", body):
                problems.append(f"{key[0]}: {key[1]}() now sends a request: list it as Calls")
            continue
        for c in entries:
            for n in c.needles:
                if n not in body:
                    problems.append(f"{key[0]}: {key[1]}() no longer contains {n!r} "
                                    f"({c.method} {c.path}): re-read it and update SITES")
            rkey = (key[0], c.requester) if c.requester else key
            rbody = src.funcs.get(rkey)
            if rbody is None:
                problems.append(f"{rkey[0]}: requester {rkey[1]}() is gone")
                continue
            for n in c.requester_needles:
                if n not in rbody:
                    problems.append(f"{rkey[0]}: {rkey[1]}() no longer contains {n!r}")
            if derive_verb(c.method, c.path) != c.verb:
                problems.append(f"{c.method} {c.path}: the table says verb {c.verb}, the "
                                f"request is {derive_verb(c.method, c.path)}")
            if resource_of(c.path) != c.resource or group_of(c.path) != c.group:
                problems.append(f"{c.path}: group/resource {c.group}/{c.resource} disagree")
            calls.append((c, key, rkey, rkey in parent,
                          chain(parent, rkey) if rkey in parent else ""))
    # the watch watches CodeRuns only: nobody sets another collection
    for key, body in src.funcs.items():
        if key[0] != "src/net/kube_watch.c" and re.search(r"\.(api_prefix|resource)\s*=",
                                                          body):
            problems.append(f"{key[0]}: {key[1]}() sets the watched collection "
                            f"(api_prefix/resource): add that watch to SITES")
    return calls, problems


def required(calls):
    """{(namespace, group, resource, verb)} of the reached calls."""
    return {(c.namespace, c.group, c.resource, c.verb) for c, _, _, reached, _ in calls
            if reached}


if __name__ == "__main__":
    calls, problems = analyse()
    for c, key, rkey, reached, ch in calls:
        print(f"{'NEEDED ' if reached else 'unused '} {c.verb:6} {c.group or 'core'}/"
              f"{c.resource:9} {c.method:6} {c.path}  [{key[0]}:{rkey[1]}]")
        if reached:
            print(f"         {ch}")
    for p in problems:
        print("PROBLEM:", p)
    sys.exit(1 if problems else 0)
