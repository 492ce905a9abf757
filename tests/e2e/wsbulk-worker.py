#!/usr/bin/python3
"""A worker written on a raw socket, for t0866: it attaches, answers the master's
requests and runs an upload_file by sending SRC in 256 KiB writes, each one masked
binary frame, waiting for each answer. After 20 writes (5 MiB, so the master reads
this connection itself by then) it does what MODE says:

  interleave  one write in two fragments with a ping between them, then a ping
              and an unrelated message (a log line for the command) before the
              next write; checks the pongs' payloads and the answer; finishes.
  malformed   sends a frame with a reserved bit set; reports how the master
              closed the connection.
  disconnect  drops the TCP connection in the middle of a write's frame.

usage: wsbulk-worker.py HOST:PORT NAME PASSWORD MODE SRC
Prints one line per event ('pong ok', 'update answered', 'upload closed',
'closed 1002', ...); exits 0 when MODE's script ran to its end.
"""
import base64
import os
import socket
import struct
import sys

import msgpack

BLOCK = 256 * 1024


class Conn:
    def __init__(self, addr, name, password):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=60)
        auth = base64.b64encode(("%s:%s" % (name, password)).encode()).decode()
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Authorization: Basic %s\r\n\r\n" % (addr, key, auth))
        self.s.sendall(req.encode())
        self.rbuf = b""
        while b"\r\n\r\n" not in self.rbuf:
            d = self.s.recv(4096)
            if not d:
                raise SystemExit("no upgrade answer")
            self.rbuf += d
        head, self.rbuf = self.rbuf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise SystemExit("upgrade refused: %r" % head[:100])
        self.seq = 1000
        self.pongs = []

    @staticmethod
    def frame(b0, payload):
        n = len(payload)
        if n < 126:
            h = bytes([b0, 0x80 | n])
        elif n < 65536:
            h = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
        else:
            h = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
        key = os.urandom(4)
        k = int.from_bytes(key * ((n + 3) // 4), "little") if n else 0
        body = (int.from_bytes(payload, "little") ^ k).to_bytes(n + 3, "little")[:n] if n else b""
        return h + key + body

    def send(self, b0, payload):
        self.s.sendall(self.frame(b0, payload))

    def need(self, n):
        while len(self.rbuf) < n:
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError()
            self.rbuf += d
        out, self.rbuf = self.rbuf[:n], self.rbuf[n:]
        return out

    def read_frame(self):
        b0, b1 = self.need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self.need(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.need(8))[0]
        return b0 & 0x0F, self.need(n)

    def request(self, op, **kw):
        self.seq += 1
        m = {"op": op, "seq_number": self.seq}
        m.update(kw)
        self.send(0x82, msgpack.packb(m, use_bin_type=True))
        return self.seq

    def wait(self, seq, worker):
        """Serves the master until the answer to seq; returns it."""
        while True:
            op, data = self.read_frame()
            if op == 10:
                self.pongs.append(data)
                continue
            if op == 8:
                code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005
                raise ConnectionAbortedError(code)
            if op != 2:
                continue
            m = msgpack.unpackb(data, raw=False)
            if m.get("op") == "response":
                if m.get("seq_number") == seq:
                    return m
                continue
            worker.serve(self, m)


class Worker:
    def __init__(self, mode, src):
        self.mode = mode
        self.src = src
        self.commands = []

    def serve(self, c, m):
        op = m.get("op")
        print("master: %s" % op, file=sys.stderr, flush=True)
        result = None
        if op == "get_worker_info":
            cmds = {k: "3.1" for k in ("shell", "upload_file", "upload_directory", "download_file",
                                      "mkdir", "rmdir", "stat", "glob", "listdir", "rmfile",
                                      "cpdir", "move")}
            result = {"basedir": "/nonexistent/wsbulk", "system": "posix", "version": "probe",
                      "worker_commands": cmds, "environ": {"HOME": "/nonexistent"}}
        elif op == "start_command":
            self.commands.append((m["command_id"], m["command_name"], m.get("args") or {}))
        c.s.sendall(c.frame(0x82, msgpack.packb({"op": "response", "seq_number": m["seq_number"],
                                                 "result": result}, use_bin_type=True)))


def main():
    addr, name, password, mode, src = sys.argv[1:6]
    c = Conn(addr, name, password)
    w = Worker(mode, src)
    try:
        while True:
            while not w.commands:
                op, data = c.read_frame()
                if op == 2:
                    m = msgpack.unpackb(data, raw=False)
                    if m.get("op") != "response":
                        w.serve(c, m)
            cid, cname, args = w.commands.pop(0)
            if cname != "upload_file":
                c.wait(c.request("update", command_id=cid, args=[["rc", 0]]), w)
                c.wait(c.request("complete", command_id=cid, args=None), w)
                continue
            print("upload started", flush=True)
            with open(src, "rb") as f:
                n = 0
                while True:
                    block = f.read(BLOCK)
                    if not block:
                        break
                    n += 1
                    m = msgpack.packb({"op": "update_upload_file_write", "seq_number": c.seq + 1,
                                       "command_id": cid, "args": block}, use_bin_type=True)
                    c.seq += 1
                    seq = c.seq
                    if n == 21 and mode == "interleave":
                        half = len(m) // 2
                        c.send(0x02, m[:half])
                        c.send(0x89, b"between-fragments")
                        c.send(0x80, m[half:])
                    elif n == 21 and mode == "malformed":
                        c.send(0xC2, m)  # RSV1: no extension was negotiated
                        try:
                            c.wait(seq, w)
                            print("answered a malformed frame")
                        except ConnectionAbortedError as e:
                            print("closed %d" % e.args[0])
                        except (EOFError, ConnectionResetError):
                            print("closed without a close frame")
                        return 0
                    elif n == 21 and mode == "disconnect":
                        fr = c.frame(0x82, m)
                        c.s.sendall(fr[:len(fr) // 2])
                        c.s.close()
                        print("disconnected", flush=True)
                        return 0
                    else:
                        c.send(0x82, m)
                    c.wait(seq, w)
                    if n == 21 and mode == "interleave":
                        c.send(0x89, b"probe-ping")
                        u = c.wait(c.request("update", command_id=cid,
                                             args=[["header", "interleaved line\n"]]), w)
                        print("update answered" if not u.get("is_exception") else
                              "update refused: %s" % u.get("result"), flush=True)
                        if c.pongs == [b"between-fragments", b"probe-ping"]:
                            print("pong ok", flush=True)
                        else:
                            print("pongs: %r" % c.pongs, flush=True)
            r = c.wait(c.request("update_upload_file_close", command_id=cid, args=None), w)
            print("upload closed" if not r.get("is_exception") else
                  "close refused: %s" % r.get("result"), flush=True)
            c.wait(c.request("update", command_id=cid, args=[["rc", 0]]), w)
            c.wait(c.request("complete", command_id=cid, args=None), w)
            print("upload complete", flush=True)
            return 0
    except ConnectionAbortedError as e:
        print("closed %d" % e.args[0])
        return 1


if __name__ == "__main__":
    sys.exit(main())
