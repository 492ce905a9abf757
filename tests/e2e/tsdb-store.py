#!/usr/bin/env python3
"""A stand-in time-series store for t0720: listens on 127.0.0.1 port 0,
writes its port to PORTFILE, and appends one line per event to EVENTS:
"conn N" when connection N is accepted, "data N <bytes>" for what it
receives, "eof N" when the client closes it.  With --hang-up-first it closes connection 1 at once (the client
must reconnect).  Runs until killed."""
import os
import socket
import sys
import threading

portfile, events = sys.argv[1], sys.argv[2]
hang_up_first = "--hang-up-first" in sys.argv[3:]
lock = threading.Lock()


def log(line):
    with lock, open(events, "a") as f:
        f.write(line + "\n")


def serve(conn, n):
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                log("eof %d" % n)
                return
            log("data %d %r" % (n, data))


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % srv.getsockname()[1])
os.rename(portfile + ".tmp", portfile)
n = 0
while True:
    conn, _ = srv.accept()
    n += 1
    log("conn %d" % n)
    if n == 1 and hang_up_first:
        conn.close()
        continue
    threading.Thread(target=serve, args=(conn, n), daemon=True).start()
