#!/usr/bin/python3
"""A small IRC client for t1220: joins CHANNEL on the ngircd whose port is
in PORT_FILE, appends every line it receives to LOG, and says in CHANNEL
each new line appended to SAY (lines written while disconnected are said
after the next join); LOG.t has the same lines, each after the time it
was received (seconds, monotonic clock).  Reconnects when the server goes away.  Runs until
killed.

usage: irc-client.py PORT_FILE LOG SAY NICK CHANNEL
"""
import os
import select
import socket
import sys
import time

port_file, log_path, say_path, nick, channel = sys.argv[1:6]
log = open(log_path, "a", buffering=1)
tlog = open(log_path + ".t", "a", buffering=1)
said = 0  # bytes of SAY already sent


def note(s):
    log.write(s + "\n")
    tlog.write("%.3f %s\n" % (time.monotonic(), s))


while True:
    try:
        port = int(open(port_file).read().strip())
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except (OSError, ValueError):
        time.sleep(0.1)
        continue
    s.settimeout(None)
    s.sendall(("NICK %s\r\nUSER %s 0 * :t1220\r\n" % (nick, nick)).encode())
    buf, joined = b"", False
    while True:
        r, _, _ = select.select([s], [], [], 0.1)
        if r:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                note("CLOSED")
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").rstrip("\r")
                note("RECV " + text)
                parts = text.split(" ")
                if parts[0] == "PING":
                    s.sendall(("PONG %s\r\n" % " ".join(parts[1:])).encode())
                elif len(parts) > 1 and parts[1] == "001":
                    s.sendall(("JOIN %s\r\n" % channel).encode())
                elif len(parts) > 1 and parts[1] == "366":
                    joined = True
                    note("JOINED")
        if joined and os.path.exists(say_path):
            with open(say_path, "rb") as f:
                f.seek(said)
                new = f.read()
            while b"\n" in new:
                line, new = new.split(b"\n", 1)
                said += len(line) + 1
                s.sendall(b"PRIVMSG " + channel.encode() + b" :" + line + b"\r\n")
                note("SENT " + line.decode("utf-8", "replace"))
    s.close()
    time.sleep(0.1)
