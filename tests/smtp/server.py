"""A real SMTP server for lookout's email tests: aiosmtpd over TLS with AUTH required.

    server.py --mode smtps|starttls --cert C --key K --user U --password P --out DIR

Listens on 127.0.0.1 on a free port and prints `PORT <n>` once ready. `smtps` speaks TLS
from the first byte; `starttls` requires STARTTLS before AUTH and mail. Every accepted
mail is decoded with Python's own `email` package and written to DIR/<n>.json (subject
decoded from RFC 2047, the raw Subject header, ids, recipients, the text and HTML parts).

Misbehaviour is chosen by recipient, so a test needs no control channel:
`fail451…@` is refused with 451 on its first DATA and accepted after; `reject550…@` is
always refused with 550.
"""

import argparse
import asyncio
import json
import os
import socket
import ssl
import sys
from email import policy
from email.parser import BytesParser

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, out):
        self.out = out
        self.count = 0
        self.refused_once = set()

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            local = rcpt.split("@")[0]
            if local.startswith("reject550"):
                return "550 5.1.1 <%s>: Recipient address rejected: mailbox unavailable" % rcpt
            if local.startswith("fail451") and rcpt not in self.refused_once:
                self.refused_once.add(rcpt)
                return "451 4.3.0 Temporary local problem, try again later"
        raw = envelope.original_content or envelope.content
        message = BytesParser(policy=policy.default).parsebytes(raw)
        plain = message.get_body(("plain",))
        html = message.get_body(("html",))
        raw_subject = ""
        for line in raw.decode("utf-8", "replace").splitlines():
            if line.lower().startswith("subject:"):
                raw_subject = line
                break
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated": bool(session.authenticated),
            "login": login(session.auth_data),
            "subject": str(message["subject"]),
            "raw_subject": raw_subject,
            "message_id": str(message["message-id"]),
            "in_reply_to": str(message["in-reply-to"]),
            "to": str(message["to"]),
            "from": str(message["from"]),
            "content_type": message.get_content_type(),
            "text": plain.get_content() if plain is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        self.count += 1
        path = os.path.join(self.out, "%04d.json" % self.count)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Ok: queued"


def login(auth_data):
    if isinstance(auth_data, LoginPassword):
        return auth_data.login.decode()
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["smtps", "starttls"], required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    handler = Handler(args.out)
    implicit = args.mode == "smtps"

    def factory():
        return SMTP(
            handler,
            hostname="mail.lookout.test",
            authenticator=authenticator,
            auth_required=True,
            # With implicit TLS the whole session is encrypted already.
            auth_require_tls=not implicit,
            require_starttls=not implicit,
            tls_context=None if implicit else context,
        )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(factory, sock=sock, ssl=context if implicit else None)
    )
    print("PORT %d" % sock.getsockname()[1], flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
