#!/usr/bin/python3
# An HTTP server on 127.0.0.1 playing the commit-status APIs (GitHub,
# GitLab, Gitea, Bitbucket, Gerrit) for t1260/t1261: it records every
# request as DIR/req-NNNN.json (method, path, headers, body, arrival time,
# the status it answered) and answers 201 {} unless SCRIPT says otherwise.
# SCRIPT is JSON: {"PATH-PREFIX": [[STATUS, {"Header": "value"}], ...]}:
# the first requests to a prefix get those answers in turn (500, 429 with
# Retry-After, 403 or 201 with X-RateLimit-Remaining: 0 ...); a header
# value "@+N" becomes the epoch second N seconds from the answer (a
# rate limit's reset time).  PORT 0: any free port; else that one (the
# peer comes back on the port a master already uses: "the peer was down").
#   statuses-peer.py PORTFILE DIR SCRIPT [PORT]
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

portfile, outdir, script = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
os.makedirs(outdir, exist_ok=True)
lock = threading.Lock()
MAX_BODY = 1 << 20


def next_number():
    names = [n for n in os.listdir(outdir) if n.startswith("req-")]
    return 1 + max([int(n[4:8]) for n in names] or [0])


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(n) if n else b""
        status, headers = 201, {}
        with lock:
            for prefix, answers in script.items():
                if self.path.startswith(prefix) and answers:
                    status, headers = answers.pop(0)
                    break
            now = time.time()
            headers = {k: (str(int(now) + int(v[2:])) if v.startswith("@+") else v)
                       for k, v in headers.items()}
            rec = {"method": self.command, "path": self.path,
                   "headers": {k: v for k, v in self.headers.items()},
                   "header_names": [k.lower() for k in self.headers.keys()],
                   "body": body.decode("utf-8", "replace"), "time": now,
                   "status": status, "answer_headers": headers}
            tmp = os.path.join(outdir, ".tmp")
            with open(tmp, "w") as f:
                json.dump(rec, f)
            os.rename(tmp, os.path.join(outdir, "req-%04d.json" % next_number()))
        out = b"{}" if status < 300 else b'{"message":"no"}'
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_POST = do_PUT = do_GET = handle_any


ThreadingHTTPServer.allow_reuse_address = True
srv = ThreadingHTTPServer(("127.0.0.1", port), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
