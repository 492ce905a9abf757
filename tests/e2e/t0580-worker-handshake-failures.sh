#!/bin/bash
# asan-too
# kiln-worker keeps retrying whatever goes wrong before the WebSocket upgrade
# is answered (issue 9): a "master" that accepts TCP and never answers, one
# that answers the upgrade with garbage, one with an HTTP error, one that
# hangs up mid-handshake.  Each attempt ends with a log line naming the failure
# and the worker goes back to its backoff loop; when a real Kiln master then
# listens on that port, the worker logs in and runs a build, never restarted.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PORT=$(free_port)
cat > "$TRASH/fake.py" <<'PY'
# One listener; each accepted connection gets the next behaviour of MODES,
# logged to EVENTS as "accept N MODE".  After the last one the listener closes.
import socket, sys, time
port, events = int(sys.argv[1]), sys.argv[2]
MODES = ["blackhole", "blackhole", "garbage", "http503", "hangup"]
def log(s):
    with open(events, "a") as f:
        f.write(s + "\n")
def read_request(c):
    c.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(4096)
        if not d:
            break
        data += d
    return data
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
log("listening")
held = []
s.settimeout(120)  # bounded: the test gives up long before
for n, mode in enumerate(MODES, 1):
    c, _ = s.accept()
    log(f"accept {n} {mode}")
    if mode == "blackhole":
        held.append(c)  # reads nothing, answers nothing, keeps it open
    elif mode == "garbage":
        read_request(c)
        c.sendall(b"\x00\xff\xfe garbage that is no HTTP at all\r\n\r\n")
        held.append(c)
    elif mode == "http503":
        read_request(c)
        c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
        held.append(c)
    elif mode == "hangup":
        c.recv(16)  # part of the request, then gone
        c.close()
s.close()
log("closed")
# keep the held connections open until the test ends us
time.sleep(120)
PY
$PY "$TRASH/fake.py" "$PORT" "$TRASH/events" 2>"$TRASH/fake.err" &
FAKE=$!
e2e_track $FAKE
check "fake master listening" wait_for 30 grep -q '^listening$' "$TRASH/events"

printf 'e2e-secret-%s' "$$" > "$TRASH/pw"
"$KILN_WORKER" create "$TRASH/w1" --master "127.0.0.1:$PORT" --name w1 --password-file "$TRASH/pw" >/dev/null
KILN_WORKER_HANDSHAKE_TIMEOUT=2 "$KILN_WORKER" start "$TRASH/w1" 2>"$TRASH/w1.log" &
WORKER_PID=$!
e2e_track $WORKER_PID

accepts() { [ "$(grep -c '^accept ' "$TRASH/events")" -ge "$1" ]; }
check "worker retries after an unanswered handshake" wait_for 30 accepts 2
check "and again after a second one" wait_for 30 accepts 3
check "worker retries after a garbage answer" wait_for 30 accepts 4
check "worker retries after an HTTP error answer" wait_for 30 accepts 5
check "fake master closed its listener" wait_for 30 grep -q '^closed$' "$TRASH/events"
check "handshake deadline logged" grep -q 'did not answer within 2 s' "$TRASH/w1.log"
check "HTTP error logged" grep -q 'HTTP 503' "$TRASH/w1.log"
hangup_logged() { [ "$(grep -c 'reconnecting in' "$TRASH/w1.log")" -ge 5 ]; }
check "the hang-up mid-handshake is logged and retried too" wait_for 30 hangup_logged
check "worker still running" kill -0 $WORKER_PID

M=$TRASH/master
new_master "$M" <<LUA
title = "e2e"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:$PORT"
worker { name = "w1", password = secret("w1") }
builder { name = "ok", workers = { "w1" }, steps = {
  shell { name = "hello", command = "echo hello-after-retries" },
} }
force_scheduler { name = "force", builders = { "ok" } }
LUA
cp "$TRASH/pw" "$M/secrets/w1"
check "real master starts on the worker's port" start_master "$M"
check "worker logs in to it without a restart" wait_for 60 worker_connected w1
br=$(force ok)
check "request completes" wait_for 30 request_done "$br"
b=$(build_of_request "$br")
check "build succeeded" [ "$(build_field "$b" results)" = 0 ]
check "build output stored" grep -qx 'ohello-after-retries' <<<"$(log_text "$b" 1)"
check "same worker process" kill -0 $WORKER_PID
if [ "$E2E_FAILED" -ne 0 ]; then
    sed 's/^/# /' "$TRASH/events" "$TRASH/fake.err"; tail -30 "$TRASH/w1.log" | sed 's/^/# /'
fi
done_testing
