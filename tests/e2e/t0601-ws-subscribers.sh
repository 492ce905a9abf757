#!/bin/bash
# asan-too
# /ws subscribers that never read (issue 9): 300 of them while 100 large
# change events (6 MB for each subscriber) are published.  Past KILN_MAX_WS_EVENT_SUBSCRIBERS (256)
# the upgrade is refused with 503; each accepted one holds at most its
# event queue (256 KiB), gets a resync, and is closed with 1008 when it
# overflows again without reading; the master's peak RSS stays bounded,
# and once they are gone the memory is handed back and /ws accepts again.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = {}
LUA
check "master starts" start_master "$M"
ADDR=${URL#http://}
rss() { awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$MASTER_PID/status"; }
hwm() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$MASTER_PID/status"; }
BASE=$(rss)
diag "master RSS at start: $BASE MiB"
# under AddressSanitizer freed memory sits in its quarantine: no RSS bounds
ASAN=; ldd "$KILN" 2>/dev/null | grep -q libasan && ASAN=1
rss_check() { if [ -n "$ASAN" ]; then diag "not checked under AddressSanitizer (its allocator keeps memory): $1"; else check "$@"; fi; }

cat > "$TRASH/crowd.py" <<'PY'
import json, os, socket, struct, sys, time, urllib.request

addr, n, nev, url = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
host, port = addr.rsplit(":", 1)
UPGRADE = ("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
           % addr).encode()


def frame(text):
    """One masked text frame, as a client must send it."""
    data, mask = text.encode(), os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return bytes([0x81, 0x80 | len(data)]) + mask + body


def status(s):
    data = b""
    while b"\r\n\r\n" not in data:
        c = s.recv(4096)
        if not c:
            return 0
        data += c
    return int(data.split(b" ")[1])


socks, refused = [], 0
for i in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a peer that does not read
    s.settimeout(10)
    s.connect((host, int(port)))
    s.sendall(UPGRADE)
    st = status(s)
    if st == 101:
        s.sendall(frame(json.dumps({"cmd": "startConsuming", "path": "changes/*/*", "_id": 1})))
        socks.append(s)
    else:
        refused += (st == 503)
        s.close()
print("accepted %d refused %d" % (len(socks), refused), flush=True)

big = "x" * 60000
for i in range(nev):
    body = json.dumps({"author": "crowd <c@example.org>", "comments": "%d %s" % (i, big),
                       "branch": "main"}).encode()
    req = urllib.request.Request(url + "/change_hook/base", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
print("posted %d" % nev, flush=True)
sys.stdin.readline()  # the shell measures the master here

# Now read: every subscriber must have been closed by the master (bounded).
closed, deadline = 0, time.monotonic() + 60
for s in socks:
    s.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        while s.recv(65536):
            pass
        closed += 1
    except ConnectionResetError:
        closed += 1
    except OSError:
        pass
    s.close()
print("closed %d" % closed, flush=True)
PY

coproc CROWD { timeout 300 /usr/bin/python3 "$TRASH/crowd.py" "$ADDR" 300 100 "$URL" 2>&1; }
e2e_track $CROWD_PID
read -r -t 120 line <&"${CROWD[0]}"; diag "$line"
check "256 subscribers accepted, the other 44 refused with 503" [ "$line" = "accepted 256 refused 44" ]
read -r -t 200 line <&"${CROWD[0]}"; diag "$line"
check "100 change events of 60 kB published" [ "$line" = "posted 100" ]
PEAK=$(hwm)
diag "master peak RSS: $PEAK MiB (at start $BASE MiB)"
rss_check "peak RSS grew by less than 128 MiB" [ $((PEAK - BASE)) -lt 128 ]
echo >&"${CROWD[1]}"
read -r -t 120 line <&"${CROWD[0]}"; diag "$line"
check "every non-reading subscriber was closed by the master" [ "$line" = "closed 256" ]
check "the master logged why" [ "$(grep -c 'read nothing while' "$M/master.log")" = 256 ]
rss_back() { [ "$(rss)" -lt $((BASE + 48)) ]; }
rss_check "memory given back: RSS within 48 MiB of the start" wait_for 30 rss_back
diag "master RSS after: $(rss) MiB"
cat > "$TRASH/one.py" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
           % sys.argv[1]).encode())
print(s.recv(4096).split(b" ")[1].decode())
PY
check "/ws accepts a subscriber again" [ "$(timeout 30 /usr/bin/python3 "$TRASH/one.py" "$ADDR")" = 101 ]
check "the cap was logged once" [ "$(grep -c 'subscribers at the cap' "$M/master.log")" = 1 ]
check "no errors or sanitizer reports in the log" sh -c "! grep -E 'Z (error|warn ) |AddressSanitizer|runtime error' '$M/master.log' | grep -v 'subscribers at the cap' | grep -q ."
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
