#!/bin/bash
# asan-too
# `log` updates the step did not ask for (slice "logfiles"): a fake worker
# (python3, stdlib only: its own WebSocket and msgpack) answers a shell
# command with updates for a declared logfile, for names the step never
# declared and in a shape that is not [name, text].  The declared one is
# stored; the others make no log and are refused with a line in stdio, at
# most KILN_MAX_LOGFILE_REFUSED (10) lines however many arrive.
. "$(dirname "$0")/lib.sh"
require_cmd python3

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "fake", password = secret("fake") }
builder { name = "b", workers = { "fake" }, steps = {
  shell { name = "s", command = "true", logfiles = { side = "side.log" } },
} }
force_scheduler { name = "force", builders = { "b" } }
LUA
printf 'fake-secret-%s' "$$" > "$M/secrets/fake"

cat > "$TRASH/fakeworker.py" <<'PY'
# fakeworker.py HOST:PORT NAME PASSWORD: a worker that answers every request,
# and every shell command with the `log` updates of the test, then rc 0.
import base64, os, socket, struct, sys, time

def pk(v):
    if v is None: return b"\xc0"
    if v is True: return b"\xc3"
    if v is False: return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128: return bytes([v])
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float): return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(v, list):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(pk(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(pk(k) + pk(x) for k, x in v.items())
    raise TypeError(v)

def up(b, i=0):
    t = b[i]; i += 1
    if t < 0x80: return t, i
    if t >= 0xe0: return t - 256, i
    if 0x80 <= t <= 0x8f: return upmap(b, i, t & 15)
    if 0x90 <= t <= 0x9f: return uparr(b, i, t & 15)
    if 0xa0 <= t <= 0xbf: n = t & 31; return b[i:i + n].decode(), i + n
    if t == 0xc0: return None, i
    if t in (0xc2, 0xc3): return t == 0xc3, i
    sizes = {0xc4: 1, 0xc5: 2, 0xc6: 4, 0xd9: 1, 0xda: 2, 0xdb: 4}
    if t in sizes:
        s = sizes[t]; n = int.from_bytes(b[i:i + s], "big"); i += s
        d = b[i:i + n]
        return (d if t <= 0xc6 else d.decode()), i + n
    ints = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q", 0xd0: ">b", 0xd1: ">h",
            0xd2: ">i", 0xd3: ">q", 0xca: ">f", 0xcb: ">d"}
    if t in ints:
        f = ints[t]; s = struct.calcsize(f)
        return struct.unpack(f, b[i:i + s])[0], i + s
    if t in (0xdc, 0xdd):
        s = 2 if t == 0xdc else 4; n = int.from_bytes(b[i:i + s], "big")
        return uparr(b, i + s, n)
    if t in (0xde, 0xdf):
        s = 2 if t == 0xde else 4; n = int.from_bytes(b[i:i + s], "big")
        return upmap(b, i + s, n)
    raise ValueError("msgpack type %x" % t)

def uparr(b, i, n):
    r = []
    for _ in range(n):
        v, i = up(b, i); r.append(v)
    return r, i

def upmap(b, i, n):
    r = {}
    for _ in range(n):
        k, i = up(b, i); v, i = up(b, i); r[k] = v
    return r, i

class WS:
    def __init__(self, addr, name, password):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=30)
        auth = base64.b64encode(("%s:%s" % (name, password)).encode()).decode()
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\nAuthorization: Basic %s\r\n\r\n"
                        % (addr, key, auth)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d: sys.exit("closed during the upgrade")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]: sys.exit("upgrade refused: %r" % head)

    def need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d: sys.exit(0)  # the master closed: done
            self.buf += d
        r, self.buf = self.buf[:n], self.buf[n:]
        return r

    def recv(self):
        msg = b""
        while True:
            h = self.need(2)
            fin, op, n = h[0] & 0x80, h[0] & 15, h[1] & 127
            if n == 126: n = struct.unpack(">H", self.need(2))[0]
            elif n == 127: n = struct.unpack(">Q", self.need(8))[0]
            data = self.need(n)
            if op == 9: self.send(data, 10); continue
            if op == 8: sys.exit(0)
            msg += data
            if fin: return up(msg)[0]

    def send(self, data, op=2):
        mask = os.urandom(4)
        n = len(data)
        h = bytes([0x80 | op])
        if n < 126: h += bytes([0x80 | n])
        elif n < 65536: h += bytes([0xfe]) + struct.pack(">H", n)
        else: h += bytes([0xff]) + struct.pack(">Q", n)
        self.s.sendall(h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

ws = WS(*sys.argv[1:4])
seq = 1000
def request(op, **kw):
    global seq
    seq += 1
    kw.update(op=op, seq_number=seq)
    ws.send(pk(kw))
def triple(text):
    return [text, [len(text) - 1], [time.time()]]

while True:
    m = ws.recv()
    op = m.get("op")
    if op == "response":
        continue
    result = None
    if op == "get_worker_info":
        result = {"basedir": "/nonexistent/fake", "system": "posix", "environ": {}}
    ws.send(pk({"op": "response", "seq_number": m["seq_number"], "result": result}))
    if op != "start_command":
        continue
    cid = m["command_id"]
    args = [["log", ["side", triple("declared line\n")]],
            ["log", ["other", triple("not asked for\n")]],
            ["log", "no name"]]
    args += [["log", ["other%d" % i, triple("x\n")]] for i in range(20)]
    if m["command_name"] == "shell":
        request("update", command_id=cid, args=args)
    request("update", command_id=cid, args=[["rc", 0], ["elapsed", 0.01]])
    request("complete", command_id=cid, args=None)
PY

check "master starts" start_master "$M"
/usr/bin/python3 "$TRASH/fakeworker.py" "$WADDR" fake "$(cat "$M/secrets/fake")" \
    >"$TRASH/fake.log" 2>&1 &
e2e_track $!
check "the fake worker attaches" wait_for 60 worker_connected fake
br=$(force b)
check "the build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "and succeeds" build_results_is "$b" 0
sid=$(api "builds/$b/steps/1" | jpy 'd["steps"][0]["stepid"]')
names=$(api "steps/$sid/logs" | jpy '" ".join(sorted(l["name"] for l in d["logs"]))')
check "only the declared log is made ($names)" [ "$names" = "side stdio" ]
lid=$(api "steps/$sid/logs/side" | jpy 'd["logs"][0]["logid"]')
check "it has the declared text" [ "$(curl -sS --max-time 10 "$URL/api/v2/logs/$lid/raw")" = "declared line" ]
stdio=$(log_text "$b" 1)
check "an undeclared name is refused in stdio" \
    grep -q "^hlog update refused: the step declares no log 'other'$" <<<"$stdio"
check "so is an update that is not [name, text]" \
    grep -q "^hlog update refused: not \[name, text\]$" <<<"$stdio"
check "ten refusal lines at most ($(grep -c 'log update refused' <<<"$stdio"))" \
    [ "$(grep -c 'log update refused' <<<"$stdio")" = 10 ]
check "the last one says so" grep -q "further refusals not shown" <<<"$stdio"
check "the exit code follows them" grep -q "program finished with exit code 0" <<<"$stdio"
done_testing
