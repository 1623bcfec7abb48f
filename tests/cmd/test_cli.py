#!/usr/bin/env python3
"""test_cli.py - the command-line contract (section 2): help, version, usage
errors exit 2 naming the bad word, run-time failures exit 1 with
'healer: error: ...', and check-config validation."""
import os
import subprocess
import sys
import tempfile
import time
sys.path.insert(0, os.path.join(os.environ["HEALER_SOURCE_ROOT"], "tests"))
from tap import check, finish  # noqa: E402

HEALER = os.environ["HEALER_BIN"]


def run(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "GITHUB_"))}
    e.pop("KUBECONFIG", None)
    e["HOME"] = tempfile.gettempdir()
    if env:
        e.update(env)
    p = subprocess.run([HEALER, *args], capture_output=True, text=True, env=e, timeout=30)
    return p.returncode, p.stdout, p.stderr


rc, out, err = run("help")
check("help exits 0 and lists commands", rc == 0 and "server" in out and "classify" in out, err)
rc, out, err = run("version")
check("version exits 0", rc == 0 and out.startswith("healer "), out)
# help and version are commands too: their usage, and their bad words
rc, out, err = run("help", "version")
rc2, out2, err2 = run("help", "help")
rc3, out3, err3 = run("version", "--help")
check("help version, help help, version --help print usage and exit 0",
      rc == rc2 == rc3 == 0 and "usage: healer version" in out and "usage: healer help" in out2
      and "usage: healer version" in out3, (err, err2, err3))
bad = []
for args, word in ((("version", "--bogus"), "'--bogus'"), (("version", "extra"), "'extra'"),
                   (("--version", "--short"), "'--short'"),
                   (("help", "classify", "extra"), "'extra'")):
    rc, out, err = run(*args)
    if rc != 2 or word not in err or "usage" not in err or out:
        bad.append((args, rc, out[:80], err[:200]))
check("help and version: an unknown option or extra argument exits 2 naming it", not bad, bad)
# counts and durations are digits only, as written (strtol took " 5" and "+5"); a
# repository filter GitHub cannot have is named, not an empty report
bad = []
for args, word in ((("status", "--limit", "+5"), "--limit"),
                   (("status", "--limit", " 5"), "--limit"),
                   (("insights", "--since", " 5d"), "--since"),
                   (("insights", "--since", "+5d"), "--since"),
                   (("insights", "--repository", "bad repo"), "--repository"),
                   (("classify", "--max-line-bytes", "+5", os.devnull), "--max-line-bytes"),
                   (("fetch-logs", "--pod-name", "p", "--namespace", "n", "--output-dir", "x",
                     "--tail", " 5"), "--tail")):
    rc, out, err = run(*args)
    if rc != 2 or word not in err or "usage" not in err:
        bad.append((args, rc, err[:200]))
check("a count, duration or repository that is not as written is a usage error naming it",
      not bad, bad)
rc, out, err = run("server", "--help")
check("command --help prints usage", rc == 0 and "usage: healer server" in out, err)
# flags given more than once: the last of each wins (before: a fixed array of
# two took a third flag past its end)
with tempfile.TemporaryDirectory() as d:
    dirs = [os.path.join(d, f"data{i}") for i in range(3)]
    pf = os.path.join(d, "port")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "GITHUB_"))}
    e.pop("KUBECONFIG", None)
    e["HOME"] = d
    p = subprocess.Popen([HEALER, "server", "--listen", "127.0.0.1:1", "--data-dir", dirs[0],
                          "--listen", "127.0.0.1:2", "--data-dir", dirs[1], "--listen",
                          "127.0.0.1:0", "--data-dir", dirs[2], "--port-file", pf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=e)
    deadline = time.time() + 30
    while time.time() < deadline and p.poll() is None and not (
            os.path.exists(pf) and os.path.getsize(pf)):
        time.sleep(0.05)
    port = open(pf).read().strip() if os.path.exists(pf) else ""
    running = p.poll() is None
    p.terminate()
    try:
        _, perr = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        _, perr = p.communicate()
    check("server: a repeated --listen and --data-dir: the last of each is used",
          running and port.isdigit() and int(port) > 2 and p.returncode == 0
          and os.path.exists(os.path.join(dirs[2], "healer.db"))
          and not os.path.exists(dirs[0]) and not os.path.exists(dirs[1]),
          (running, port, p.returncode, perr[-800:]))
rc, out, err = run("frobnicate")
check("unknown command exits 2 naming it", rc == 2 and "'frobnicate'" in err and "usage" in err, err)
rc, out, err = run("check-config", "--bogus")
check("unknown option exits 2 naming it", rc == 2 and "'--bogus'" in err and "usage" in err, err)
rc, out, err = run("check-config")
check("check-config accepts defaults", rc == 0 and "configuration ok" in out, err)
rc, out, err = run("check-config", env={"HEALER_DISPATCH": "pigeon"})
check("check-config names the bad key", rc == 1 and err.startswith("healer: error:")
      and "HEALER_DISPATCH" in err, err)
# what the server loads at start: a rules file or prompts directory that stops it is not
# "configuration ok" (before: ok, then `healer server` refused to start)
with tempfile.TemporaryDirectory() as d:
    badrules = os.path.join(d, "rules.yaml")
    with open(badrules, "w") as f:
        f.write("rules:\n- name: a\n  priority: 5\n  patterns: ['x']\n")
    bad = []
    for key, value, want in (("HEALER_RULES_FILE", os.path.join(d, "absent.yaml"), "absent.yaml"),
                             ("HEALER_RULES_FILE", badrules, "rules.yaml:2:3: rule 'a'"),
                             ("HEALER_PROMPTS_DIR", os.path.join(d, "absent"), "absent")):
        rc, out, err = run("check-config", env={key: value})
        if rc != 1 or key not in err or want not in err or "configuration ok" in out:
            bad.append((key, rc, out, err))
    check("check-config loads the rules file and prompts directory as the server does", not bad,
          bad)
# dispatch to Kubernetes without a cluster configuration: ok as a configuration
# (manifests are checked outside their cluster), but said, as the server refuses it
with tempfile.TemporaryDirectory() as home:
    rc, out, err = run("check-config", env={"HEALER_DISPATCH": "kubernetes", "HOME": home})
check("check-config warns that kubernetes dispatch finds no cluster configuration",
      rc == 0 and "configuration ok" in out
      and "healer server would not start here: kubernetes dispatch: no kubernetes configuration"
      in err, (rc, out, err))
# an empty KUBECONFIG is unset, as kubectl reads it: ~/.kube/config still makes
# dispatch default to kubernetes (before: directory)
with tempfile.TemporaryDirectory() as home:
    os.makedirs(os.path.join(home, ".kube"))
    with open(os.path.join(home, ".kube", "config"), "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                "clusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:6443\n"
                "users:\n- name: u\n  user:\n    token: abc\n"
                "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n")
    rc, out, err = run("check-config", env={"HOME": home, "KUBECONFIG": ""})
check("check-config: KUBECONFIG='' with ~/.kube/config -> dispatch kubernetes",
      rc == 0 and "dispatch: kubernetes" in out, (rc, out, err))
# a prompts directory whose template calls a partial no template provides: found by
# check-config and at the server's start (before: ok, then every render failed)
with tempfile.TemporaryDirectory() as d:
    os.makedirs(os.path.join(d, "ci"))
    with open(os.path.join(d, "ci", "extra.hbs"), "w") as f:
        f.write("hello\n{{> nosuchpartial}}\n")
    rc, out, err = run("check-config", env={"HEALER_PROMPTS_DIR": d})
check("check-config: a prompt calling a missing partial -> exit 1 naming the file, line and partial",
      rc == 1 and "HEALER_PROMPTS_DIR" in err and "ci/extra.hbs:2:1" in err
      and "'nosuchpartial'" in err and "configuration ok" not in out, (rc, out, err))
# a cluster configuration the server cannot use is an error, not a warning (before:
# "configuration ok", exit 0, then `healer server` refused to start)
with tempfile.TemporaryDirectory() as d:
    kc_bad = os.path.join(d, "bad-kubeconfig")
    with open(kc_bad, "w") as f:
        f.write("clusters: [\n")
    kc_insecure = os.path.join(d, "insecure-kubeconfig")
    with open(kc_insecure, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                "clusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:6443\n"
                "    insecure-skip-tls-verify: true\n    certificate-authority-data: Zm9v\n"
                "users:\n- name: u\n  user:\n    token: abc\n"
                "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n")
    bad = []
    for kc in (kc_bad, kc_insecure):
        rc, out, err = run("check-config", env={"HEALER_DISPATCH": "kubernetes",
                                                "KUBECONFIG": kc})
        if rc != 1 or "KUBECONFIG" not in err or "configuration ok" in out:
            bad.append((os.path.basename(kc), rc, out, err))
    check("check-config: a kubeconfig the server cannot use -> exit 1 naming KUBECONFIG",
          not bad, bad)
# email addresses the escalation email could not be written to: found at the start, not
# at the first escalation (before: "configuration ok", the server started, and every
# escalation email was dropped with an error in the log)
bad = []
for key, value, named in (("HEALER_EMAIL_TO", "ops@example.com; dev@example.com",
                           "ops@example.com; dev@example.com"),
                          ("HEALER_EMAIL_TO", "ops@example.com, not an address", "not an address"),
                          ("HEALER_EMAIL_FROM", "Healer Bot healer@example.com",
                           "Healer Bot healer@example.com")):
    env = {"SMTP_URL": "smtp://127.0.0.1:2525", "HEALER_EMAIL_TO": "ops@example.com", key: value}
    rc, out, err = run("check-config", env=env)
    if rc != 1 or f"{key}: email address '{named}'" not in err or "configuration ok" in out:
        bad.append((key, rc, out, err))
    with tempfile.TemporaryDirectory() as d:
        rc, out, err = run("server", "--listen", "127.0.0.1:0",
                           env=dict(env, HEALER_ALLOW_UNAUTHENTICATED="true", HEALER_DATA_DIR=d))
    if rc != 1 or f"{key}: email address '{named}'" not in err:
        bad.append(("server", key, rc, err[-500:]))
check("check-config and the server refuse email addresses an escalation could not use",
      not bad, bad)
rc, out, err = run("check-config", env={"SMTP_URL": "smtp://127.0.0.1:2525", "HEALER_EMAIL_TO":
                                        "ops@example.com, \"Dev, Team\" <dev@example.com>"})
check("check-config accepts a list of email addresses", rc == 0 and "configuration ok" in out
      and "HEALER_EMAIL_TO" not in err, (rc, out, err))
rc, out, err = run("check-config", env={"SMTP_URL": "smtp://127.0.0.1:2525"})
check("check-config warns that SMTP_URL without HEALER_EMAIL_TO sends no email",
      rc == 0 and "configuration ok" in out
      and "warning: SMTP_URL is set but HEALER_EMAIL_TO is not" in err, (rc, out, err))
rc, out, err = run("check-config", "--print", env={"GITHUB_TOKEN": "ghp_secretvalue123"})
check("check-config --print hides secrets", rc == 0 and "GITHUB_TOKEN=(set)" in out
      and "ghp_secretvalue123" not in out, out)
creds = {"LOKI_URL": "http://lokiuser:lokipass1@loki:3100",
         "ARGOCD_SERVER": "https://argo:argopass2@argocd.example",
         "PROMETHEUS_URL": "http://prompass3@prom:9090",
         "GITHUB_API_URL": "https://x:ghpass4@ghe.example/api/v3",
         "HEALER_DATABASE_URL": "postgres://healer:dbpass5@db:5432/healer"}
rc, out, err = run("check-config", "--print", env=creds)
check("check-config --print shows URLs without their user:password@",
      rc == 0 and "LOKI_URL=http://loki:3100" in out and "ARGOCD_SERVER=https://argocd.example" in out
      and "HEALER_DATABASE_URL=postgres://db:5432/healer" in out
      and not any(p in out + err for p in ("lokipass1", "argopass2", "prompass3", "ghpass4",
                                           "dbpass5", "lokiuser")), out + err)
rc, out, err = run("check-config", env=creds)
check("check-config names the store without its password",
      rc == 0 and "postgres://db:5432/healer" in out and "dbpass5" not in out + err, out + err)
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    f.write("listen: 127.0.0.1:1234\nnamespace: fromfile\n")
rc, out, err = run("check-config", "--print", "--config", f.name)
check("check-config reads the YAML file", rc == 0 and "HEALER_NAMESPACE=fromfile" in out, out + err)
os.unlink(f.name)
# an empty secret mount is not "no secret" (before: exit 0 on the SQLite default, so each
# replica ran on its own store); the error names the variable and the file
with tempfile.TemporaryDirectory() as d:
    lost = []
    for content in ("", "\n", "  \n"):
        path = os.path.join(d, "secret")
        with open(path, "w") as f:
            f.write(content)
        for name in ("HEALER_DATABASE_URL_FILE", "GITHUB_TOKEN_FILE", "SMTP_URL_FILE"):
            rc, out, err = run("check-config", "--print", env={name: path})
            if rc != 1 or name not in err or path not in err:
                lost.append((name, content, rc, out[-200:], err))
    check("check-config refuses an empty or blank *_FILE secret, naming it and the path",
          not lost, lost)
# a malformed URL's password never reaches stderr (contract section 3)
bad = []
for key, value in (("PROMETHEUS_URL", "http://u:PWsecret1 x@h"),
                   ("OPENMEMORY_URL", "http//u:PWsecret4@h"),
                   ("ARGOCD_SERVER", "u:PWsecret5@argocd:443"),
                   ("HEALER_DATABASE_URL", "postgres://u:PWsecret6@h:notaport/db")):
    rc, out, err = run("check-config", env={key: value})
    if rc != 1 or key not in err or "PWsecret" in out + err:
        bad.append((key, rc, out, err))
check("check-config never shows a malformed URL's password", not bad, bad)
# ARGOCD_SERVER as the argocd CLI takes it: host:port, read as https://
rc, out, err = run("check-config", "--print", env={"ARGOCD_SERVER": "argocd.example:443"})
check("check-config reads ARGOCD_SERVER host:port as https://host:port",
      rc == 0 and "ARGOCD_SERVER=https://argocd.example:443" in out, out + err)
# a port libpq cannot read is found before connecting (before: ok here, then "invalid
# integer value" at the server's start)
rc, out, err = run("check-config", env={"HEALER_DATABASE_URL": "host=h port=notaport"})
check("check-config refuses a database port that is not a number",
      rc == 1 and "HEALER_DATABASE_URL" in err, (rc, out, err))
# a value error from the file names its line; --config '' is not "no file"
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    f.write("namespace: fromfile\nHEALER_MAX_ATTEMPTS: 'five'\n")
rc, out, err = run("check-config", "--config", f.name)
check("check-config names the file and line of a bad value",
      rc == 1 and "HEALER_MAX_ATTEMPTS" in err and f"{f.name}:2" in err, err)
os.unlink(f.name)
rc, out, err = run("check-config", "--config", "")
check("check-config --config '' is an error, not the defaults",
      rc == 1 and "config file" in err and "configuration ok" not in out, (rc, out, err))

# the store commands on a data directory that holds no store
with tempfile.TemporaryDirectory() as d:
    missing = os.path.join(d, "typo")
    rc, out, err = run("replay", "--failed", "--data-dir", missing)
    check("replay on a data directory without a store exits 1 and creates none",
          rc == 1 and err.startswith("healer: error:") and "0 deliveries" not in out
          and not os.path.exists(missing), (rc, out, err, os.path.exists(missing)))
    rc, out, err = run("replay", "d-1", "--data-dir", missing)
    check("replay DELIVERY_ID there too", rc == 1 and not os.path.exists(missing), (rc, out, err))

# healer status prints text from outside (job names from a workflow file,
# reasons with a CodeRun's message, PR URLs an agent reported): terminal
# control sequences in it are neutralised
with tempfile.TemporaryDirectory() as d:
    import sqlite3
    rc, out, err = run("migrate", "--data-dir", d)
    check("migrate creates a store", rc == 0, (rc, out, err))
    con = sqlite3.connect(os.path.join(d, "healer.db"))
    evil = "clippy\x1b[2J\x1b]0;pwned\x07\u009b31m\x7f"
    con.execute("INSERT INTO remediation_tasks (task_id, repository, job, branch, agent,"
                " failure_type, state, reason, attempts, created_ms, updated_ms)"
                " VALUES ('hl-esc', 'acme/x', ?, 'main', 'rex', 'rust_clippy', 'escalated',"
                " ?, 1, 1, 2)", (evil, "the CodeRun failed: " + evil))
    con.execute("INSERT INTO attempts (task_id, n, agent, coderun_name, outcome, started_ms,"
                " finished_ms, kind, phase, pr_url) VALUES ('hl-esc', 1, 'rex', 'cr-1',"
                " 'agent_failed', 1, 2, 'agent', 'done', ?)",
                ("https://github.com/acme/x/pull/1\x1b]8;;https://evil\x07",))
    con.commit()
    con.close()
    bad = ("\x1b", "\x07", "\x7f", "\u009b")
    rc, out, err = run("status", "--data-dir", d)
    check("status lists a task without its control characters",
          rc == 0 and "hl-esc" in out and not any(c in out for c in bad), repr(out))
    rc, out, err = run("status", "hl-esc", "--data-dir", d)
    check("status TASK_ID shows job, reason and PR URL without control characters",
          rc == 0 and "job         clippy?[2J?]0;pwned??31m?\n" in out and "pull/1?]8;;" in out
          and not any(c in out for c in bad), repr(out))


# ---- output that cannot be written fails the command (contract section 2) --------
def run_to(stdout, *args, stdin=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "GITHUB_"))}
    e.pop("KUBECONFIG", None)
    p = subprocess.run([HEALER, *args], stdout=stdout, stderr=subprocess.PIPE, input=stdin,
                       env=e, timeout=30)
    return p.returncode, p.stderr.decode()


with tempfile.TemporaryDirectory() as d:
    cases = os.path.join(d, "cases.jsonl")
    with open(cases, "w") as f:
        f.write('{"id": "a", "log": "error[E0308]: mismatched types"}\n' * 3000)
    lost = []
    with open("/dev/full", "wb") as full:
        for args in (("classify", cases), ("help",), ("version",), ("check-config", "--print"),
                     ("classify", "--help"), ("migrate", "--data-dir", os.path.join(d, "v"))):
            rc, err = run_to(full, *args)
            last = (err.strip().splitlines() or [""])[-1]
            if rc != 1 or not last.startswith("healer: error:") \
                    or "No space left on device" not in last:
                lost.append((args, rc, err[-200:]))
    check("a full disk (/dev/full) as stdout: exit 1 naming the write error, never 0", not lost,
          lost)
    # a closed stdout: what was to be written is lost too; nothing written is fine
    p = subprocess.run(["sh", "-c", '"$0" classify "$1" >&-; echo "rc=$?"', HEALER, cases],
                       capture_output=True, text=True, timeout=30)
    q = subprocess.run(["sh", "-c", '"$0" classify "$1" >&-; echo "rc=$?"', HEALER, os.devnull],
                       capture_output=True, text=True, timeout=30)
    check("a closed stdout: exit 1 when there was output to write, 0 when there was none",
          "rc=1" in p.stdout and "healer: error:" in p.stderr and "rc=0" in q.stdout
          and q.stderr == "", (p.stdout, p.stderr[-200:], q.stdout, q.stderr[-200:]))

finish()
