#!/usr/bin/python3
# An SMTP sink on loopback for tests/e2e/t1210-email-reporter.sh.
#   smtp-sink.py PORTFILE OUTDIR           aiosmtpd (a real SMTP server): every
#                                          message goes to OUTDIR/mail-NNNN.json
#                                          as {"mail_from", "rcpt_tos", "data"};
#                                          recipients nobody@... get 550
#   smtp-sink.py PORTFILE OUTDIR --fail-first N
#                                          the same, but the first N messages get
#                                          "451 4.3.0 try again later" after DATA
#   smtp-sink.py PORTFILE OUTDIR --auth USER:PASS
#                                          the same, and a login is required
#                                          (AUTH PLAIN/LOGIN, allowed without TLS)
#   smtp-sink.py PORTFILE OUTDIR --silent  accepts connections, never answers
#                                          (counts them in OUTDIR/accepted)
# The port is picked by binding port 0 and written to PORTFILE once the
# server listens.
import json
import os
import socket
import sys
import threading
import time
import warnings

warnings.simplefilter("ignore")  # aiosmtpd warns about AUTH without TLS: loopback only


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def publish(portfile, port):
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, portfile)


def silent(portfile, outdir):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    publish(portfile, srv.getsockname()[1])
    held = []
    n = 0
    while True:
        c, _ = srv.accept()
        held.append(c)  # kept open, never read or written
        n += 1
        with open(os.path.join(outdir, "accepted"), "w") as f:
            f.write("%d\n" % n)


class Handler:
    def __init__(self, outdir, fail_first=0):
        self.outdir = outdir
        self.fail_first = fail_first
        self.refused = 0
        self.n = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.refused < self.fail_first:
                self.refused += 1
                with open(os.path.join(self.outdir, "refused"), "w") as f:
                    f.write("%d\n" % self.refused)
                return "451 4.3.0 try again later"
            self.n += 1
            n = self.n
        data = envelope.original_content or envelope.content
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        rec = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos), "data": data}
        path = os.path.join(self.outdir, "mail-%04d.json" % n)
        with open(path + ".tmp", "w") as f:
            json.dump(rec, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


def sink(portfile, outdir, fail_first, auth):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    kw = {}
    if auth:
        user, password = auth.split(":", 1)

        def check(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and data.login.decode() == user and \
                data.password.decode() == password
            if not ok:
                with open(os.path.join(outdir, "auth-failed"), "a") as f:
                    f.write("1\n")
            return AuthResult(success=ok, handled=False)

        kw = dict(authenticator=check, auth_required=True, auth_require_tls=False)
    port = free_port()
    ctl = Controller(Handler(outdir, fail_first), hostname="127.0.0.1", port=port, **kw)
    ctl.start()
    publish(portfile, port)
    try:
        while True:
            time.sleep(3600)
    finally:
        ctl.stop()


if __name__ == "__main__":
    portfile, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    if "--silent" in sys.argv[3:]:
        silent(portfile, outdir)
    else:
        args = sys.argv[3:]
        fail_first = int(args[args.index("--fail-first") + 1]) if "--fail-first" in args else 0
        auth = args[args.index("--auth") + 1] if "--auth" in args else None
        sink(portfile, outdir, fail_first, auth)
