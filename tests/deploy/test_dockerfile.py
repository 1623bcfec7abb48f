#!/usr/bin/env python3
"""test_dockerfile.py - deploy/Dockerfile checked without Docker: its stages,
the build stage's packages against scripts/install-deps.sh, the final
stage's user (numeric, not root), port, entry point and health check
against the binary's routes and a running server, every shared library the
binary links (ldd) or opens on first use (its dlopen sonames) against the
Debian packages the final stage installs
(each .so's package found with dpkg -S at test time, dependencies followed
with dpkg-query), and the binary run as the image runs it: the image's
uid, no capabilities, no_new_privs, a read-only root, writable only the
data directory and /tmp (unshare + setpriv, when the machine allows a mount
namespace). Prints TAP."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib as dl  # noqa: E402
from deploylib import check  # noqa: E402

DOCKERFILE = os.path.join(dl.DEPLOY, "Dockerfile")


def parse_dockerfile(path):
    """[(instruction, argument text, stage index)] with continuations joined."""
    out, stage, buf = [], -1, ""
    for line in open(path):
        s = line.rstrip("\n")
        if not buf and (not s.strip() or s.lstrip().startswith("#")):
            continue
        if s.lstrip().startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        ins, _, arg = buf.strip().partition(" ")
        ins = ins.upper()
        if ins == "FROM":
            stage += 1
        out.append((ins, arg.strip(), stage))
        buf = ""
    return out


def apt_packages(run_args):
    """Packages named by `apt-get install` in RUN arguments."""
    pkgs = []
    for cmd in re.split(r"&&|;", " ".join(run_args)):
        words = shlex.split(cmd)
        if len(words) >= 2 and words[0] == "apt-get" and "install" in words:
            pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


def install_deps_list(name):
    text = open(os.path.join(dl.ROOT, "scripts", "install-deps.sh")).read()
    m = re.search(name + r"=\(([^)]*)\)", text)
    return m.group(1).split() if m else []


def dpkg_owners(paths):
    """{path: package} for the files' owners, trying each path as given,
    resolved, and with /usr merged or not (Debian 12 registers libraries
    under /lib); one dpkg -S call."""
    cands = {}
    for path in paths:
        real = os.path.realpath(path)
        for c in (path, real, os.path.join(os.path.dirname(real), os.path.basename(path))):
            for v in (c, c[4:] if c.startswith("/usr/lib/") else "/usr" + c
                      if c.startswith("/lib/") else c):
                cands.setdefault(v, path)
    r = subprocess.run(["dpkg", "-S", *cands], capture_output=True, text=True)
    out = {}
    for line in r.stdout.splitlines():
        pkgs, _, f = line.partition(": ")
        if f in cands:
            out.setdefault(cands[f], pkgs.split(",")[0].split(":")[0].strip())
    return out


def dpkg_db():
    """{package: (Depends + Pre-Depends text)} and {virtual: [providers]} of
    the installed packages, in one dpkg-query call."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Status}\t${Depends}, "
                        "${Pre-Depends}\t${Provides}\n"], capture_output=True, text=True)
    deps, provides = {}, {}
    for line in r.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 4 or "install ok installed" not in parts[1]:
            continue
        deps[parts[0]] = parts[2]
        for v in parts[3].split(","):
            v = re.sub(r"\(.*?\)", "", v).strip()
            if v:
                provides.setdefault(v, []).append(parts[0])
    return deps, provides


DEPS, PROVIDES = dpkg_db()


def installed(pkg):
    return pkg in DEPS


def depends(pkg):
    out = []
    for alt in DEPS.get(pkg, "").split(","):
        for choice in alt.split("|"):
            name = re.sub(r"\(.*?\)", "", choice).strip().split(":")[0]
            if name in DEPS:
                out.append(name)
                break
            if name in PROVIDES:
                out += PROVIDES[name][:1]
                break
    return out


def closure(pkgs):
    seen, work = set(), list(pkgs)
    while work:
        p = work.pop()
        if p in seen:
            continue
        seen.add(p)
        work += depends(p)
    return seen


ins = parse_dockerfile(DOCKERFILE)
froms = [(a, s) for i, a, s in ins if i == "FROM"]
check("two stages: FROM debian:12 AS build, then debian:12-slim",
      len(froms) == 2 and re.fullmatch(r"debian:12\s+AS\s+build", froms[0][0], re.I) and
      froms[1][0].split()[0] == "debian:12-slim", repr(froms))
final = len(froms) - 1
build_run = [a for i, a, s in ins if i == "RUN" and s == 0]
final_run = [a for i, a, s in ins if i == "RUN" and s == final]
build_pkgs = apt_packages(build_run)
final_pkgs = apt_packages(final_run)

# the build stage: install-deps.sh's build packages, except the fuzzing
# toolchain (clang, its libFuzzer runtime: only for -Dfuzz=true)
FUZZ_ONLY = {"clang", "libclang-rt-14-dev"}
want_build = [p for p in install_deps_list("build_pkgs") if p not in FUZZ_ONLY]
check("the build stage installs every build package of scripts/install-deps.sh",
      want_build and not set(want_build) - set(build_pkgs),
      f"missing: {sorted(set(want_build) - set(build_pkgs))}")
check("the build stage runs meson setup and ninja for the healer target",
      any("meson setup" in r for r in build_run) and
      any(re.search(r"ninja -C \S+ healer\b", r) for r in build_run), repr(build_run))
check("the final stage installs no -dev package, compiler or build tool",
      final_pkgs and not [p for p in final_pkgs if p.endswith("-dev") or p in
                          ("gcc", "clang", "meson", "ninja-build", "pkg-config", "make")],
      repr(final_pkgs))
missing_pkgs = [p for p in final_pkgs if not installed(p)]
check("every package the final stage names is a Debian package (installed here)",
      not missing_pkgs, repr(missing_pkgs))

copies = [a for i, a, s in ins if i == "COPY" and s == final]
check("the final stage takes the binary from the build stage into /usr/local/bin",
      any(re.match(r"--from=build\s+\S+\s+/usr/local/bin/healer$", a) for a in copies),
      repr(copies))

users = [a for i, a, s in ins if i == "USER" and s == final]
user = users[-1] if users else ""
m = re.fullmatch(r"(\d+)(?::(\d+))?", user)
uid, gid = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (None, None)
check("USER is numeric (uid:gid) and not root", m and uid != 0 and gid != 0, repr(user))
check("the final stage creates that user and group",
      any(f"--uid {uid}" in r and f"--gid {gid}" in r for r in final_run) and
      any(f"groupadd" in r and f"--gid {gid}" in r for r in final_run), repr(final_run))

env = {}
for i, a, s in ins:
    if i == "ENV" and s == final:
        for k, v in re.findall(r"(\w+)=(\S+)", a):
            env[k] = v
expose = [a for i, a, s in ins if i == "EXPOSE" and s == final]
entry = [a for i, a, s in ins if i == "ENTRYPOINT" and s == final]
hc = [a for i, a, s in ins if i == "HEALTHCHECK" and s == final]
vols = [a for i, a, s in ins if i == "VOLUME" and s == final]
listen_port = env.get("HEALER_LISTEN", "").rpartition(":")[2]
check("EXPOSE 8080 and HEALER_LISTEN listens on it on every address",
      expose == ["8080"] and env.get("HEALER_LISTEN") == "0.0.0.0:8080", f"{expose} {env}")
check("ENTRYPOINT is healer server", entry and json.loads(entry[-1]) == ["healer", "server"],
      repr(entry))
data_dir = env.get("HEALER_DATA_DIR", "")
check("HEALER_DATA_DIR is an absolute path declared as a VOLUME, owned by the user",
      data_dir.startswith("/") and vols and data_dir in json.loads(vols[-1]) and
      any(f"-o {uid} -g {gid}" in r and data_dir in r for r in final_run), f"{data_dir} {vols}")

hc_text = hc[-1] if hc else ""
hc_cmd = json.loads(hc_text.split("CMD", 1)[1]) if "CMD" in hc_text else []
urls = [w for w in hc_cmd if w.startswith("http")]
hc_url = re.match(r"http://127\.0\.0\.1:(\d+)(/\S*)", urls[0]) if urls else None
get_routes = {p for _, p, match, methods in dl.routes()
              if match == "EXACT" and "HTTP_GET" in methods}
check("HEALTHCHECK probes a GET route of the binary on the listening port",
      hc_url and hc_url.group(1) == listen_port and hc_url.group(2) in get_routes and
      hc_cmd[0] in final_pkgs, f"{hc_text!r} routes {sorted(get_routes)}")

dep = dl.find(dl.plain_manifests(), "Deployment", "healer")
c = dep["spec"]["template"]["spec"]["containers"][0]
mounts = {v["mountPath"] for v in c.get("volumeMounts", [])}
denv = {e["name"]: e.get("value") for e in c["env"]}
check("the Deployment runs the image's command as the image's user, data dir and port",
      c.get("command") == ["healer", "server"] and
      dep["spec"]["template"]["spec"]["securityContext"].get("runAsUser") == uid and
      dep["spec"]["template"]["spec"]["securityContext"].get("runAsGroup") == gid and
      denv.get("HEALER_DATA_DIR") == data_dir and data_dir in mounts and "/tmp" in mounts and
      [p["containerPort"] for p in c["ports"]] == [int(listen_port)],
      json.dumps(c)[:800])

# ---- the libraries the binary links, and their packages ----
ldd = subprocess.run(["ldd", dl.HEALER], capture_output=True, text=True)
libs = re.findall(r"=>\s+(/\S+)", ldd.stdout)
needed = set(re.findall(r"\(NEEDED\).*\[(.+?)\]",
                        subprocess.run(["readelf", "-d", dl.HEALER], capture_output=True,
                                       text=True).stdout))
# and the ones it opens on first use (src/lazy/: dlopen by soname, named in
# its data), which the image needs as much
ldconfig = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
with open(dl.HEALER, "rb") as f:
    sonames = {m.decode() for m in re.findall(rb"\0(lib[\w.+-]+\.so\.\d+)\0", f.read())}
for soname in sorted(sonames):
    m = re.search(r"^\s*" + re.escape(soname) + r" \(.*x86-64.*\) => (\S+)$", ldconfig, re.M) \
        or re.search(r"^\s*" + re.escape(soname) + r" .* => (\S+)$", ldconfig, re.M)
    if m and m.group(1) not in libs:
        libs.append(m.group(1))
needed |= sonames
SANITIZER = re.compile(r"lib(asan|ubsan|lsan|tsan)\.so")
# the runtime of a -Db_sanitize test build is never in an image
libs = [lib for lib in libs if not SANITIZER.search(os.path.basename(lib))]
owners = dpkg_owners(libs)
unowned = [lib for lib in libs if lib not in owners]
check("ldd lists the binary's libraries and dpkg -S finds the package of each",
      ldd.returncode == 0 and len(libs) >= 8 and not unowned, f"unowned {unowned}")
essential = [line.split()[0] for line in subprocess.run(
    ["dpkg-query", "-W", "-f=${Package} ${Essential}\n"], capture_output=True,
    text=True).stdout.splitlines() if line.endswith(" yes") and line.split()[0] in DEPS]
base = closure(essential + ["apt"])  # what debian:12-slim already holds
have = base | closure(final_pkgs)
missing = sorted({f"{os.path.basename(l)} ({p})" for l, p in owners.items() if p not in have})
check("every library the binary links is in a package the final stage installs "
      "(or its dependencies, or debian:12-slim's base)", not missing, "\n".join(missing))
direct = sorted({p for l, p in owners.items() if os.path.basename(l) in needed})
unlisted = [p for p in direct if p not in final_pkgs and p not in base]
check("the package of every library the binary names directly (NEEDED) is listed by name",
      direct and not unlisted, f"direct {direct}, not listed {unlisted}")
print("linked packages: " + " ".join(sorted(set(owners.values()))), file=sys.stderr)


# ---- run as the image runs: uid, no capabilities, read-only root ----
def ro_run():
    if not (shutil.which("unshare") and shutil.which("setpriv")):
        return None, "unshare/setpriv not found"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -o remount,bind,ro / && "
                            "! touch /.healer-ro-probe 2>/dev/null"], capture_output=True)
    if probe.returncode != 0:
        return None, "no mount namespace here (needs root with CAP_SYS_ADMIN)"
    emptydir = os.path.join(dl.TMP, "emptydir-tmp")
    datadir = os.path.join(emptydir, "healer-data")
    os.makedirs(datadir)
    os.chown(datadir, uid, gid)
    os.chmod(emptydir, 0o1777)
    port = dl.free_port()
    # the binary's directory is seen at /mnt: a build under /tmp (a clone
    # there) would be hidden by the empty /tmp below
    bindir = os.path.dirname(os.path.realpath(dl.HEALER))
    exe = "/mnt/" + os.path.basename(dl.HEALER)
    script = (
        "set -e\n"
        f"mount --bind {shlex.quote(bindir)} /mnt\n"
        f"mount --bind {shlex.quote(emptydir)} /tmp\n"
        "mount -o remount,bind,ro /\n"
        "cd /\n"
        f"exec setpriv --reuid {uid} --regid {gid} --clear-groups --no-new-privs "
        "--inh-caps=-all --bounding-set=-all \"$@\"\n")
    envs = {k: v for k, v in os.environ.items()
            if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}
    envs.update({"PATH": "/usr/bin:/bin", "HEALER_DISPATCH": "none", "TMPDIR": "/tmp",
                 "HEALER_DATA_DIR": "/tmp/healer-data",
                 "HEALER_LISTEN": f"127.0.0.1:{port}", "HEALER_LOG_LEVEL": "info"})
    log = os.path.join(dl.TMP, "ro-server.log")
    dl._logs.append(log)
    with open(log, "wb") as lf:
        p = subprocess.Popen(["unshare", "-m", "sh", "-c", script, "sh", "env", "-i"] +
                             [f"{k}={v}" for k, v in envs.items()] + [exe, "server"],
                             stdout=lf, stderr=lf)
    dl._procs.append(p)
    srv = dl.Server.__new__(dl.Server)
    srv.port, srv.proc, srv.log = port, p, log
    deadline, ok = time.monotonic() + 30, False
    while time.monotonic() < deadline and p.poll() is None:
        try:
            ok = srv.request("GET", "/ready")[0] == 200
            break
        except OSError:
            time.sleep(0.05)
    health = srv.request("GET", hc_url.group(2))[0] if ok and hc_url else 0
    body = open(os.path.join(dl.ROOT, "examples", "workflow_job_failure.json"), "rb").read()
    st = srv.request("POST", "/webhook", body, {
        "Content-Type": "application/json", "X-GitHub-Event": "workflow_job",
        "X-GitHub-Delivery": "ro-1"}) if ok else (0, b"")
    # the delivery is processed on a worker: wait for its decision
    decided = False
    while ok and time.monotonic() < deadline:
        if "remediation decided" in open(log, errors="replace").read():
            decided = True
            break
        time.sleep(0.05)
    rc = srv.stop()
    written = sorted(os.path.relpath(os.path.join(d, f), emptydir)
                     for d, _, fs in os.walk(emptydir) for f in fs)
    text = open(log, errors="replace").read()
    return dict(ready=ok, health=health, status=st[0], decided=decided, rc=rc, written=written,
                log=text), None


res, why = ro_run() if uid else (None, "")
if uid is None:
    check("the binary runs with a read-only root as the image's user (no numeric USER)", False)
elif res is None:
    check(f"the binary runs with a read-only root # SKIP {why}", True)
else:
    check("as uid %d with no capabilities and a read-only root, healer answers the "
          "HEALTHCHECK path and /ready, and takes a delivery through to its decision" % uid,
          res["ready"] and res["health"] == 200 and res["status"] == 202 and res["decided"],
          res["log"][-2000:])
    check("it stops cleanly on SIGTERM", res["rc"] == 0, f"rc {res['rc']}")
    check("it wrote only under HEALER_DATA_DIR (nothing else in /tmp, nothing on the root)",
          res["written"] and all(w.startswith("healer-data/") for w in res["written"]) and
          "Read-only file system" not in res["log"] and '"level":"error"' not in res["log"],
          f"{res['written']}\n{res['log'][-1500:]}")

dl.finish()
