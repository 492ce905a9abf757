#!/usr/bin/python3
# A TCP proxy a test controls (slice "reattach"): listens on 127.0.0.1:0 and
# forwards each connection to TARGET (HOST:PORT).  Writes "PORT CONTROL_PORT"
# to PORTFILE once listening.  A line on the control port changes its mode
# and is answered "ok MODE" once applied:
#   open       forward (the start)
#   cut        close every forwarded connection; close new ones at once
#   blackhole  keep every connection open but forward nothing (what is read
#              is dropped): a half-open path
# Loopback only, one thread, selectors.  Usage: tcp-proxy.py TARGET PORTFILE
import selectors, socket, sys

host, port = sys.argv[1].rsplit(":", 1)
target = (host, int(port))
sel = selectors.DefaultSelector()
mode = "open"
pairs = {}  # socket -> peer socket


def listen():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    s.setblocking(False)
    return s


lst, ctl = listen(), listen()
sel.register(lst, selectors.EVENT_READ, "accept")
sel.register(ctl, selectors.EVENT_READ, "ctl-accept")
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(f"{lst.getsockname()[1]} {ctl.getsockname()[1]}\n")
import os
os.rename(sys.argv[2] + ".tmp", sys.argv[2])


def drop(s):
    p = pairs.pop(s, None)
    for x in (s, p):
        if x is None:
            continue
        pairs.pop(x, None)
        try:
            sel.unregister(x)
        except (KeyError, ValueError):
            pass
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        x.close()


ctl_buf = {}
while True:
    for key, _ in sel.select():
        s, what = key.fileobj, key.data
        if what == "accept":
            c, _ = s.accept()
            if mode == "cut":
                c.close()
                continue
            u = socket.create_connection(target)
            c.setblocking(False)
            u.setblocking(False)
            pairs[c], pairs[u] = u, c
            sel.register(c, selectors.EVENT_READ, "data")
            sel.register(u, selectors.EVENT_READ, "data")
        elif what == "ctl-accept":
            c, _ = s.accept()
            ctl_buf[c] = b""
            sel.register(c, selectors.EVENT_READ, "ctl")
        elif what == "ctl":
            d = s.recv(1024)
            if not d:
                sel.unregister(s)
                s.close()
                ctl_buf.pop(s, None)
                continue
            ctl_buf[s] += d
            while b"\n" in ctl_buf[s]:
                line, ctl_buf[s] = ctl_buf[s].split(b"\n", 1)
                mode = line.decode().strip()
                if mode == "cut":
                    for x in list(pairs):
                        if x in pairs:
                            drop(x)
                s.sendall(f"ok {mode}\n".encode())
        elif what == "data":
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if not d:
                drop(s)
                continue
            if mode == "blackhole":
                continue
            try:
                pairs[s].setblocking(True)
                pairs[s].sendall(d)
                pairs[s].setblocking(False)
            except (OSError, KeyError):
                drop(s)
