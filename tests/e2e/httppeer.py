# The HTTP peer shared by http-sink.py (webhook services, t1230/t1290...)
# and statuses-peer.py (commit-status APIs, t1260/t1261): a server on
# 127.0.0.1 that records every request as DIR/req-NNNN.json (method, path,
# headers, header_names, body, arrival time, the status and headers it
# answered) and writes its port to PORTFILE.  SCRIPT is JSON:
# {"PATH-PREFIX": [[STATUS, {"Header": "value"}], ...]}: the first requests
# to a prefix get those answers in turn, later ones the default status with
# {}.  A header value "@+N" becomes the epoch second N seconds from the
# answer (a rate limit's reset time); a status 0 never answers (60 s).
import json, os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(portfile, outdir, script, port=0, default_status=200, max_body=4 << 20,
          error_body=b'{"error":"try later"}'):
    os.makedirs(outdir, exist_ok=True)
    lock = threading.Lock()

    def next_number():
        names = [n for n in os.listdir(outdir) if n.startswith("req-")]
        return 1 + max([int(n[4:8]) for n in names] or [0])

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n > max_body:
                self.send_error(413)
                return
            body = self.rfile.read(n) if n else b""
            status, headers = default_status, {}
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
            if status == 0:  # a peer that accepted and never answers
                time.sleep(60)
                return
            out = b"{}" if status < 300 else error_body
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
