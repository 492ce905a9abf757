#!/usr/bin/python3
"""A raw-socket worker for t0869 (built on t0866's wsbulk-worker.py): it runs an
upload_file by sending SRC in writes of varied sizes (256 KiB + 7, 70,000,
1,000, 100 KiB, over and over) whose frames carry the masking keys MODE says:

  zero       every frame an all-zero key (what kiln-worker sends for big ones)
  random     every frame a random key (what buildbot-worker sends)
  mixed      zero and random keys alternating frame by frame; every fifth
             write split in two fragments, one of each, with a zero-key ping
             between them
  malformed  zero keys; after 20 writes a frame with a reserved bit set;
             reports how the master closed the connection

usage: wsbulk-keys.py HOST:PORT NAME PASSWORD MODE SRC
Prints 'upload complete' (or 'closed CODE'); exits 0 when MODE's script ran
to its end.
"""
import importlib.util
import os
import struct
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("wsbulk_worker", os.path.join(HERE, "wsbulk-worker.py"))
ww = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ww)

SIZES = [256 * 1024 + 7, 70000, 1000, 100 * 1024]
MODE = "zero"
count = [0]


def key_for_next():
    count[0] += 1
    if MODE == "random" or (MODE == "mixed" and count[0] % 2 == 0):
        return os.urandom(4)
    return b"\0\0\0\0"


def frame(b0, payload):
    n = len(payload)
    if n < 126:
        h = bytes([b0, 0x80 | n])
    elif n < 65536:
        h = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    key = key_for_next()
    if key == b"\0\0\0\0" or not n:
        return h + key + payload
    k = int.from_bytes(key * ((n + 3) // 4), "little")
    return h + key + (int.from_bytes(payload, "little") ^ k).to_bytes(n + 3, "little")[:n]


def main():
    global MODE
    addr, name, password, MODE, src = sys.argv[1:6]
    ww.Conn.frame = staticmethod(frame)
    c = ww.Conn(addr, name, password)
    w = ww.Worker(MODE, src)
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
            with open(src, "rb") as f:
                n = 0
                while True:
                    block = f.read(SIZES[n % len(SIZES)])
                    if not block:
                        break
                    n += 1
                    c.seq += 1
                    seq = c.seq
                    m = msgpack.packb({"op": "update_upload_file_write", "seq_number": seq,
                                       "command_id": cid, "args": block}, use_bin_type=True)
                    if MODE == "malformed" and n == 21:
                        c.send(0xC2, m)  # RSV1: no extension was negotiated
                        try:
                            c.wait(seq, w)
                            print("answered a malformed frame", flush=True)
                        except ConnectionAbortedError as e:
                            print("closed %d" % e.args[0], flush=True)
                        except (EOFError, ConnectionResetError):
                            print("closed without a close frame", flush=True)
                        return 0
                    if MODE == "mixed" and n % 5 == 0:
                        half = len(m) // 3
                        c.send(0x02, m[:half])
                        c.send(0x89, b"between")
                        c.send(0x80, m[half:])
                    else:
                        c.send(0x82, m)
                    c.wait(seq, w)
            r = c.wait(c.request("update_upload_file_close", command_id=cid, args=None), w)
            if r.get("is_exception"):
                print("close refused: %s" % r.get("result"), flush=True)
                return 1
            c.wait(c.request("update", command_id=cid, args=[["rc", 0]]), w)
            c.wait(c.request("complete", command_id=cid, args=None), w)
            print("upload complete", flush=True)
            if MODE == "mixed":
                print("pongs %d" % len(c.pongs), flush=True)
            return 0
    except ConnectionAbortedError as e:
        print("closed %d" % e.args[0], flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
