#!/usr/bin/env python3
"""test_email.py - the escalation email (src/notify/email.c, smtp.c)
through a real SMTP server (aiosmtpd, tests/notify/smtp_server.py): the
message as Python's email package parses it (Date, Message-ID, From, To,
Subject with RFC 2047, a quoted-printable UTF-8 body), dot lines, header
injection, STARTTLS with AUTH (credentials in the URL or separate),
implicit TLS, and every result class (250 delivered; 4xx, refused or timed
out connections retry; 5xx, refused credentials, missing STARTTLS, an
unknown CA, bad URLs and addresses fail). Credentials never appear in a
result."""
import email
import email.policy
import email.utils
import json
import os
import socket
import threading

from ntest import (REPORT, T0, check, finish, hostile_report, make_ca, probe, refused_port,
                   start_smtp, stop, wait_mail)

FROM = "Healer <healer@example.com>"
TO = "ops@example.com, \"Dev, Team\" <dev@example.com>"


def send(url, report=None, frm=FROM, to=TO, env=None):
    rc, out, err = probe("send", "email", url, frm, to, report=report, env=env)
    return out if rc == 0 and isinstance(out, dict) else {"rc": rc, "out": out, "err": err}


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


# ---- a plain server: the message as received ----
p, port, d = start_smtp()
url = f"smtp://127.0.0.1:{port}"
res = send(url)
mail = wait_mail(d)
check("plain: delivered (250)", res.get("result") == "delivered" and res.get("code") == 250,
      res)
raw, env = mail[0] if mail else (b"", {})
m = parse(raw)
check("plain: envelope MAIL FROM and one RCPT TO per address",
      env.get("mail_from") == "healer@example.com"
      and env.get("rcpt_tos") == ["ops@example.com", "dev@example.com"], env)
check("plain: CRLF line endings only, lines within 78 characters",
      raw and b"\n" not in raw.replace(b"\r\n", b"")
      and max(len(x) for x in raw.split(b"\r\n")) <= 78, raw[:300])
check("plain: Date in RFC 5322 form, the report's time",
      email.utils.parsedate_to_datetime(m["Date"]).timestamp() == T0 / 1000
      and m["Date"] == "Mon, 24 Nov 2025 16:00:00 +0000", m["Date"])
check("plain: Message-ID from the task id at the sender's domain",
      m["Message-ID"] == "<healer.ci-9876543210-clippy@example.com>", m["Message-ID"])
check("plain: From and To (both recipients, the quoted display name)",
      [a.addr_spec for a in m["From"].addresses] == ["healer@example.com"]
      and m["From"].addresses[0].display_name == "Healer"
      and [a.addr_spec for a in m["To"].addresses] == ["ops@example.com", "dev@example.com"]
      and m["To"].addresses[1].display_name == "Dev, Team", (m["From"], m["To"]))
check("plain: Subject names repository, workflow and branch",
      m["Subject"] == "[healer] CI remediation failed: 5dlabs/cto Controller CI on "
                      "feat/new-feature", m["Subject"])
check("plain: MIME text/plain utf-8, quoted-printable, auto-generated",
      m["MIME-Version"] == "1.0" and m.get_content_type() == "text/plain"
      and m.get_content_charset() == "utf-8"
      and m["Content-Transfer-Encoding"] == "quoted-printable"
      and m["Auto-Submitted"] == "auto-generated", dict(m.items()))
body = m.get_content().replace("\r\n", "\n")
check("plain: the body has the attempts, agents and the current failure",
      "Agents tried: Rex (2x), Atlas (1x)" in body
      and "1. Rex: CI still failing - Fixed clippy lint, but new test failure appeared" in body
      and "   CodeRun: healer-ci-rex-9876543210-1, duration: 4m 12s, PR: "
          "https://github.com/5dlabs/cto/pull/1234" in body
      and "    error[E0382]: borrow of moved value: `config`" in body
      and "Please investigate: https://github.com/5dlabs/cto/pull/1234" in body, body)

# ---- non-ASCII, dot lines, long lines ----
r = dict(REPORT, workflow="Contrôleur CI \U0001F680 " + "ü" * 40,
         evidence=".\n..hidden\n.\nend " + "x" * 300 + "\ncafé ☕")
res = send(url, report=r)
mail = wait_mail(d, 2)
raw, _ = mail[1] if len(mail) > 1 else (b"", {})
m = parse(raw)
subj_lines = [x for x in raw.split(b"\r\n\r\n")[0].split(b"\r\n")
              if x.startswith(b"Subject:") or x.startswith(b" =?")]
check("utf-8: a non-ASCII subject is RFC 2047 encoded and decodes back",
      res.get("result") == "delivered" and m["Subject"] ==
      "[healer] CI remediation failed: 5dlabs/cto Contrôleur CI \U0001F680 " + "ü" * 40
      + " on feat/new-feature" and all(x.isascii() for x in subj_lines)
      and b"=?UTF-8?B?" in raw, (m["Subject"], subj_lines))
body = m.get_content().replace("\r\n", "\n")
check("dots: lines '.', '..hidden' arrive intact (no end of data forged)",
      "\n    .\n    ..hidden\n    .\n" in body and "end " + "x" * 300 in body
      and "café ☕" in body, body[-600:])
check("dots: no line of the message starts with '.'",
      not any(x.startswith(b".") for x in raw.split(b"\r\n")), "")

# ---- header injection ----
r = dict(REPORT, workflow="CI\r\nBcc: evil@example.com\r\nX-Evil: 1",
         branch="main\nSubject: forged", evidence=hostile_report(1)["evidence"])
res = send(url, report=r)
mail = wait_mail(d, 3)
raw, env = mail[2] if len(mail) > 2 else (b"", {})
m = parse(raw)
check("injection: CRLF in report text cannot add a header or a recipient",
      res.get("result") == "delivered" and m["Bcc"] is None and m["X-Evil"] is None
      and len(m.get_all("Subject")) == 1 and "Bcc: evil@example.com" in m["Subject"]
      and "Subject: forged" in m["Subject"]
      and env.get("rcpt_tos") == ["ops@example.com", "dev@example.com"], (dict(m.items()), env))
for bad_to in ("ops@example.com\r\nBcc: evil@example.com", "ops@example.com\nX: y",
               "not an address", "a@b, <evil", "\"Unclosed <x@example.com>", ""):
    rc, out, _ = probe("build", "email", FROM, bad_to)
    check(f"injection: To {bad_to!r} is refused by the builder",
          rc == 1 and isinstance(out, dict) and out.get("error") == "invalid", out)
rc, out, _ = probe("build", "email", "Healer <healer@example.com>\r\nBcc: x@y", "a@b")
check("injection: a From with CRLF is refused", rc == 1 and out.get("error") == "invalid", out)
rc, out, _ = probe("build", "email", "a@example.com, b@example.com", "c@example.com")
check("address: two senders are refused", rc == 1 and out.get("error") == "invalid", out)
stop(p)

# ---- 4xx / 5xx replies ----
p, port, d = start_smtp("--data-reply", "451 4.3.0 try again later")
res = send(f"smtp://127.0.0.1:{port}")
check("451 at the end of data -> retry smtp_451",
      res.get("result") == "retry" and res.get("code") == 451 and res.get("error") == "smtp_451",
      res)
stop(p)
p, port, d = start_smtp("--data-reply", "554 5.7.1 message rejected as spam")
res = send(f"smtp://127.0.0.1:{port}")
check("554 at the end of data -> failed smtp_554",
      res.get("result") == "failed" and res.get("code") == 554, res)
stop(p)
p, port, d = start_smtp("--reject", "dev@example.com")
res = send(f"smtp://127.0.0.1:{port}")
mail = wait_mail(d, 1)
check("550 for one recipient -> the others still get it, the result names the refused one",
      res.get("result") == "delivered" and len(mail) == 1 and res.get("error") == "rcpt_refused"
      and "deferred" not in res
      and mail[0][1]["rcpt_tos"] == ["ops@example.com"]
      and "refused recipient: dev@example.com (550)" in res.get("message", ""), (res, mail))
stop(p)
p, port, d = start_smtp("--reject", "dev@example.com", "--reject", "ops@example.com")
res = send(f"smtp://127.0.0.1:{port}")
check("550 for every recipient -> failed smtp_550, nothing stored",
      res.get("result") == "failed" and res.get("code") == 550
      and res.get("error") == "smtp_550" and wait_mail(d, 1, 0.3) == [], res)
stop(p)
p, port, d = start_smtp("--reject", "dev@example.com", "--rcpt-reply", "452 4.2.2 mailbox full")
res = send(f"smtp://127.0.0.1:{port}")
mail = wait_mail(d, 1)
check("452 for one recipient -> the others get it now (not held back for the one), "
      "delivered smtp_452, the one refused for now named for a later send",
      res.get("result") == "delivered" and res.get("code") == 250
      and res.get("error") == "smtp_452" and "dev@example.com (452)" in res.get("message", "")
      and res.get("deferred") == "dev@example.com" and len(mail) == 1
      and mail[0][1]["rcpt_tos"] == ["ops@example.com"], (res, mail))
stop(p)
p, port, d = start_smtp("--reject", "dev@example.com", "--reject", "ops@example.com",
                        "--rcpt-reply", "452 4.2.2 mailbox full")
res = send(f"smtp://127.0.0.1:{port}")
check("452 for every recipient -> retry smtp_452, nothing deferred (all get the retry)",
      res.get("result") == "retry" and res.get("code") == 452 and "deferred" not in res, res)
stop(p)

# ---- STARTTLS + AUTH ----
ca = make_ca("smtp-tls")
p, port, d = start_smtp("--starttls", ca["cert"], ca["key"], "--auth", "mailer:p@ss w:rd")
secret_url = f"smtp://mailer:p%40ss%20w%3Ard@127.0.0.1:{port}"
res = send(secret_url, env={"NOTIFY_CA_FILE": ca["ca"]})
mail = wait_mail(d)
check("starttls+auth: user and password from the URL (percent-decoded) -> delivered",
      res.get("result") == "delivered" and mail and mail[0][1]["authenticated"]
      and mail[0][1]["tls"] and os.path.exists(os.path.join(d, "auth-attempts")),
      (res, mail[0][1] if mail else None))
check("starttls+auth: the result names no credential",
      "mailer" not in json.dumps(res) and "p%40ss" not in json.dumps(res)
      and f"smtp://127.0.0.1:{port}" in res.get("message", ""), res)
res = send(f"smtp://127.0.0.1:{port}",
           env={"NOTIFY_CA_FILE": ca["ca"], "SMTP_USER": "mailer", "SMTP_PASSWORD": "p@ss w:rd"})
check("starttls+auth: user and password as a separate secret -> delivered",
      res.get("result") == "delivered" and len(wait_mail(d, 2)) == 2, res)
res = send(f"smtp://mailer:wrong-secret@127.0.0.1:{port}", env={"NOTIFY_CA_FILE": ca["ca"]})
check("starttls+auth: a wrong password -> failed login_denied, not named",
      res.get("result") == "failed" and res.get("error") == "login_denied"
      and "wrong-secret" not in json.dumps(res), res)
res = send(secret_url)
check("starttls: an unknown CA -> failed tls",
      res.get("result") == "failed" and res.get("error") == "tls"
      and "p%40ss" not in json.dumps(res), res)
stop(p)
p, port, d = start_smtp("--auth", "mailer:secret123")
res = send(f"smtp://mailer:secret123@127.0.0.1:{port}")
check("a server without STARTTLS never gets the password -> failed starttls_unavailable",
      res.get("result") == "failed" and res.get("error") == "starttls_unavailable"
      and not os.path.exists(os.path.join(d, "auth-attempts"))
      and wait_mail(d, 1, 0.3) == [], res)
stop(p)

# ---- implicit TLS ----
p, port, d = start_smtp("--smtps", ca["cert"], ca["key"], "--auth", "mailer:tls-secret")
res = send(f"smtps://mailer:tls-secret@127.0.0.1:{port}", env={"NOTIFY_CA_FILE": ca["ca"]})
mail = wait_mail(d)
check("smtps: TLS from the start with AUTH -> delivered",
      res.get("result") == "delivered" and mail and mail[0][1]["authenticated"]
      and mail[0][1]["tls"], (res, mail))
res = send(f"smtps://mailer:tls-secret@127.0.0.1:{port}")
check("smtps: an unknown CA -> failed tls", res.get("result") == "failed"
      and res.get("error") == "tls" and "tls-secret" not in json.dumps(res), res)
stop(p)

# ---- transport failures and bad input ----
dead = refused_port()
res = send(f"smtp://127.0.0.1:{dead}")
check("connection refused -> retry connect",
      res.get("result") == "retry" and res.get("error") == "connect", res)
silent = socket.socket()
silent.bind(("127.0.0.1", 0))
silent.listen(1)
held = []
threading.Thread(target=lambda: held.append(silent.accept()), daemon=True).start()
res = send(f"smtp://127.0.0.1:{silent.getsockname()[1]}", env={"NOTIFY_TIMEOUT_MS": "700"})
check("a server that never greets -> retry timeout",
      res.get("result") == "retry" and res.get("error") == "timeout"
      and res.get("elapsed_ms", 0) < 5000, res)
silent.close()
for bad in ("http://127.0.0.1:25", "smtp://", "mail.example.com", "smtp://[::1"):
    res = send(bad)
    check(f"a bad SMTP url {bad!r} -> failed bad_url",
          res.get("result") == "failed" and res.get("error") == "bad_url", res)

finish()
