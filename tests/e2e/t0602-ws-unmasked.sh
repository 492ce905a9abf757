#!/bin/bash
# asan-too
# Unmasked client frames on the browser event socket /ws (issue 9, RFC 6455
# §5.1): lws 4.1.6 takes them, so the master's relay (http-wsguard.c)
# closes such a connection with a close frame of status 1002.  Masked
# frames still work, split byte by byte too, and events still arrive; the
# master survives frame headers claiming 2^63 bytes, masked or not.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = {}
LUA
check "master starts" start_master "$M"
ADDR=${URL#http://}

cat > "$TRASH/raw.py" <<'PY'
import json, os, socket, struct, sys, time, urllib.request

addr, case = sys.argv[1], sys.argv[2]
host, port = addr.rsplit(":", 1)
UPGRADE = ("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
           % addr).encode()


def frame(text, masked=True):
    data = text.encode()
    n = len(data)
    head = bytes([0x81]) + (bytes([n]) if n < 126 else bytes([126]) + struct.pack(">H", n))
    if not masked:
        return head + data
    mask = os.urandom(4)
    head = bytes([head[0], head[1] | 0x80]) + head[2:]
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class Conn:
    def __init__(self, pipelined=b""):
        self.s = socket.create_connection((host, int(port)), timeout=20)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.s.sendall(UPGRADE + pipelined)
        self.status = None
        if not pipelined:
            self.read_status()

    def read_status(self):
        while b"\r\n\r\n" not in self.buf:
            c = self.s.recv(4096)
            if not c:
                return None
            self.buf += c
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ")[1])
        return self.status

    def need(self, n):
        while len(self.buf) < n:
            c = self.s.recv(65536)
            if not c:
                raise EOFError
            self.buf += c

    def frame(self):
        """(opcode, payload) of the next server frame; EOFError at the end."""
        self.need(2)
        op, l7 = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        if self.buf[1] & 0x80:
            raise ValueError("masked server frame")
        hl = 2 + (2 if l7 == 126 else 8 if l7 == 127 else 0)
        self.need(hl)
        n = l7 if l7 < 126 else struct.unpack(">H" if l7 == 126 else ">Q", self.buf[2:hl])[0]
        self.need(hl + n)
        p = self.buf[hl:hl + n]
        self.buf = self.buf[hl + n:]
        return op, p

    def json(self):
        op, p = self.frame()
        assert op == 1, (op, p)
        return json.loads(p)

    def outcome(self):
        """What the connection does next: 'close CODE REASON', then whether it ends."""
        try:
            op, p = self.frame()
        except EOFError:
            return "eof"
        except (ConnectionResetError, socket.timeout) as e:
            return "error " + type(e).__name__
        if op != 8:
            return "frame %d %r" % (op, p[:60])
        code = struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 0
        try:
            rest = self.s.recv(65536)
            end = "ended" if not rest else "more data"
        except ConnectionResetError:
            end = "ended"
        except socket.timeout:
            end = "still open"
        return "close %d %s, %s" % (code, p[2:].decode(errors="replace"), end)


def post_change():
    body = json.dumps({"author": "A <a@example.org>", "comments": "mask e2e",
                       "branch": "main"}).encode()
    req = urllib.request.Request("http://%s/change_hook/base" % addr, data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as r:
        r.read()


PING = json.dumps({"cmd": "ping", "_id": 1})
if case == "unmasked":
    c = Conn()
    c.s.sendall(frame(PING, masked=False))
    print(c.outcome())
elif case == "masked-events":
    c = Conn()
    c.s.sendall(frame(PING))
    r1 = c.json()
    c.s.sendall(frame(json.dumps({"cmd": "startConsuming", "path": "changes/*/*", "_id": 2})))
    r2 = c.json()
    post_change()
    ev = c.json()
    print(r1.get("msg"), r2.get("code"), ev.get("k", "?").split("/")[0])
elif case == "split":
    c = Conn()
    data = frame(PING) + frame(json.dumps({"cmd": "ping", "_id": 2}))
    for b in data:
        c.s.send(bytes([b]))
        time.sleep(0.002)  # pacing so each byte goes in its own segment
    print(c.json().get("_id"), c.json().get("_id"))
elif case == "pipelined":
    c = Conn(frame(PING))
    c.read_status()
    print(c.status, c.json().get("msg"))
elif case == "pipelined-unmasked":
    c = Conn(frame(PING, masked=False))
    st = c.read_status()
    print("ended" if st is None else "status %s then %s" % (st, c.outcome()))
elif case == "huge-unmasked":
    c = Conn()
    c.s.sendall(bytes([0x82, 0x7F]) + struct.pack(">Q", 1 << 63) + b"x" * 1000)
    print(c.outcome())
elif case == "huge-masked":
    c = Conn()
    c.s.sendall(bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 63) + os.urandom(4) + b"x" * 1000)
    r = c.outcome()
    print("ended" if r.startswith(("close", "eof", "error")) else r)
PY
raw() { timeout 60 /usr/bin/python3 "$TRASH/raw.py" "$ADDR" "$1" 2>&1; }

r=$(raw unmasked); diag "$r"
check "an unmasked frame gets a close frame with 1002, then the connection ends" \
    [ "$r" = "close 1002 client frame not masked, ended" ]
r=$(raw masked-events); diag "$r"
check "masked frames work and events arrive" [ "$r" = "pong 200 changes" ]
r=$(raw split); diag "$r"
check "masked frames sent byte by byte work" [ "$r" = "1 2" ]
r=$(raw pipelined); diag "$r"
check "a masked frame sent with the upgrade request works" [ "$r" = "101 pong" ]
r=$(raw pipelined-unmasked); diag "$r"
check "an unmasked frame sent with the upgrade request ends the connection" \
    [ "$r" = "ended" ]
r=$(raw huge-unmasked); diag "$r"
check "an unmasked 2^63-byte frame header is refused with 1002" \
    [ "$r" = "close 1002 client frame not masked, ended" ]
r=$(raw huge-masked); diag "$r"
check "a masked 2^63-byte frame header ends that connection" [ "$r" = "ended" ]
check "the master still answers HTTP" curl -sSf --max-time 10 -o /dev/null "$URL/api/v2/builders"
r=$(raw masked-events); diag "$r"
check "and /ws" [ "$r" = "pong 200 changes" ]
check "the refusals were logged in summary, not once per connection" \
    [ "$(grep -c 'unmasked client frames' "$M/master.log")" = 1 ]
check "no errors or sanitizer reports in the log" sh -c "! grep -E 'Z (error|warn ) |AddressSanitizer|runtime error' '$M/master.log' | grep -v 'unmasked client frames' | grep -q ."
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
