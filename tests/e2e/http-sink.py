#!/usr/bin/python3
# An HTTP server on 127.0.0.1 port 0 playing webhook services for the
# reporter tests (t1230): it writes its port to PORTFILE, and records every
# request as DIR/req-NNNN.json (method, path, headers, body, arrival time,
# the status it answered).  SCRIPT is JSON: {"PATH-PREFIX": [[STATUS,
# {"Header": "value"}], ...]}: the first requests to a prefix get those
# answers in turn, later ones 200 {}; a status 0 never answers (60 s).
#   http-sink.py PORTFILE DIR SCRIPT
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

portfile, outdir, script = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
os.makedirs(outdir, exist_ok=True)
lock = threading.Lock()
seen = {"n": 0}
MAX_BODY = 4 << 20


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
        status, headers = 200, {}
        with lock:
            for prefix, answers in script.items():
                if self.path.startswith(prefix) and answers:
                    status, headers = answers.pop(0)
                    break
            seen["n"] += 1
            rec = {"method": self.command, "path": self.path,
                   "headers": {k: v for k, v in self.headers.items()},
                   "body": body.decode("utf-8", "replace"), "time": time.time(),
                   "status": status}
            tmp = os.path.join(outdir, ".tmp")
            with open(tmp, "w") as f:
                json.dump(rec, f)
            os.rename(tmp, os.path.join(outdir, "req-%04d.json" % seen["n"]))
        if status == 0:  # a peer that accepted and never answers
            time.sleep(60)
            return
        out = b"{}" if status < 300 else b'{"error":"try later"}'
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_POST = do_PUT = do_GET = handle_any


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
