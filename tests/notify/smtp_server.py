#!/usr/bin/env python3
"""smtp_server.py - a real SMTP server for the email tests, on aiosmtpd
(Debian python3-aiosmtpd). Listens on 127.0.0.1, prints "PORT <n>" once it
accepts connections, and stores each accepted message in --dir as
<n>.eml (the bytes received, dot-unstuffed) and <n>.json (the envelope:
mail_from, rcpt_tos, whether the session was authenticated and encrypted);
each AUTH attempt adds a line (the mechanism) to auth-attempts.

  --starttls CERT KEY   offer STARTTLS and require it before MAIL
  --smtps CERT KEY      TLS from the first byte (implicit TLS)
  --auth USER:PASS      require AUTH (PLAIN or LOGIN) with these credentials
  --reject ADDR         answer RCPT TO:<ADDR> with --rcpt-reply
  --rcpt-reply TEXT     default "550 5.1.1 <ADDR>: recipient rejected"
  --defer ADDR          answer RCPT TO:<ADDR> "452 4.2.2 mailbox full" (refused
                        for now) its first --defer-times times (default 1)
  --data-reply TEXT     answer the end of DATA with TEXT (e.g. "451 4.3.0
                        try again later") instead of storing the message
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, a):
        self.a = a
        self.n = 0
        self.deferred = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in (self.a.defer or []) and self.deferred.get(address, 0) < self.a.defer_times:
            self.deferred[address] = self.deferred.get(address, 0) + 1
            return "452 4.2.2 mailbox full, try again later"
        if address in (self.a.reject or []):
            return self.a.rcpt_reply or f"550 5.1.1 <{address}>: recipient rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.a.data_reply:
            return self.a.data_reply
        self.n += 1
        base = os.path.join(self.a.dir, str(self.n))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "authenticated": bool(session.authenticated),
                       "tls": session.ssl is not None or bool(self.a.smtps)}, f)
        os.rename(base + ".eml.tmp", base + ".eml")  # the .eml appears last
        return "250 2.0.0 Message accepted for delivery"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--starttls", nargs=2)
    ap.add_argument("--smtps", nargs=2)
    ap.add_argument("--auth")
    ap.add_argument("--reject", action="append")
    ap.add_argument("--rcpt-reply")
    ap.add_argument("--defer", action="append")
    ap.add_argument("--defer-times", type=int, default=1)
    ap.add_argument("--data-reply")
    a = ap.parse_args()
    handler = Handler(a)

    def ctx_for(pair):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pair[0], pair[1])
        return ctx

    tls_ctx = ctx_for(a.starttls) if a.starttls else None
    smtps_ctx = ctx_for(a.smtps) if a.smtps else None

    def authenticator(server, session, envelope, mechanism, auth_data):
        with open(os.path.join(a.dir, "auth-attempts"), "a") as f:
            f.write(f"{mechanism}\n")
        user, _, pw = (a.auth or ":").partition(":")
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
              and auth_data.password == pw.encode())
        return AuthResult(success=ok, handled=False)

    def factory():
        kw = {"hostname": "smtp.test", "decode_data": False}
        if tls_ctx:
            kw.update(tls_context=tls_ctx, require_starttls=True)
        if a.auth:
            # with implicit TLS the transport is encrypted already
            kw.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=bool(tls_ctx))
        return SMTP(handler, **kw)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(factory, "127.0.0.1", 0, ssl=smtps_ctx))
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
