#!/bin/bash
# kiln-worker given the master as a name ('localhost:PORT') resolves it off
# its loop and connects: lws gets the numeric address, the master sees a
# normal worker and a build runs on it; a fake master sees the Host header
# carry the name.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
title = "e2e"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "hello", workers = { "w1" }, steps = {
  shell { name = "hello", command = { "sh", "-c", "echo via-localhost" } },
} }
force_scheduler { name = "force", builders = { "hello" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"

check "master starts" start_master "$M"
PORT=${WADDR##*:}
WADDR="localhost:$PORT"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker given 'localhost:$PORT' attaches" wait_for 60 worker_connected w1
check "worker logged the connection under the name" \
    grep -q "connected to master localhost:$PORT" "$TRASH/w1.log"
br=$(force hello)
check "force returns a build request" [ -n "$br" ]
check "request completes" wait_for 30 request_done "$br"
b=$(build_of_request "$br")
check "build succeeded" [ "$(build_field "$b" results)" = 0 ]
stop_pid "$WORKER_PID"

# the Host header keeps the name the worker was given (lws only saw 127.0.0.1)
PY=/usr/bin/python3
if $PY -c 'import websockets, msgpack' 2>/dev/null; then
    FPORT=$(free_port)
    cat > "$TRASH/host.py" <<'PY'
import asyncio, sys, websockets
port, out = int(sys.argv[1]), sys.argv[2]
async def handler(ws, path=None):
    with open(out, "a") as f:
        f.write(f"host={ws.request_headers.get('Host', '-')}\n")
    await asyncio.sleep(30)
async def main():
    async with websockets.serve(handler, "127.0.0.1", port):
        await asyncio.sleep(60)
asyncio.run(main())
PY
    $PY "$TRASH/host.py" "$FPORT" "$TRASH/hosts" 2>"$TRASH/host.err" &
    e2e_track $!
    check "fake master listening" wait_for 30 bash -c "echo > /dev/tcp/127.0.0.1/$FPORT"
    "$KILN_WORKER" create "$TRASH/w2" --master "localhost:$FPORT" --name w2 --password p >/dev/null
    "$KILN_WORKER" start "$TRASH/w2" 2>"$TRASH/w2.log" &
    W2=$!
    e2e_track $W2
    check "Host header is 'localhost:$FPORT'" wait_for 60 grep -q "^host=localhost:$FPORT\$" "$TRASH/hosts"
    stop_pid "$W2"
else
    diag "python3-websockets missing: Host header check skipped"
fi
if [ "$E2E_FAILED" -ne 0 ]; then
    tail -20 "$TRASH/w1.log" | sed 's/^/# /'; tail -20 "$M/master.log" | sed 's/^/# /'
fi
done_testing
