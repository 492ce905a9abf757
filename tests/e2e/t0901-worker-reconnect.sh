#!/bin/bash
# kiln-worker reconnects after the master drops the connection, sends Basic auth,
# answers a request on each new session with seq numbers starting again at 0, and
# answers an unknown op with is_exception.  The "master" is a small Python
# WebSocket server (python3-websockets) so the test needs no Buildbot.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! $PY -c 'import websockets, msgpack' 2>/dev/null; then
    echo "1..0 # SKIP python3-websockets or python3-msgpack missing"
    exit 0
fi
PORT=$(free_port)
cat > "$TRASH/master.py" <<'PY'
import asyncio, base64, sys, msgpack, websockets
port, out = int(sys.argv[1]), sys.argv[2]
n = 0
def log(s):
    with open(out, "a") as f:
        f.write(s + "\n")
async def handler(ws, path=None):
    global n
    n += 1
    auth = ws.request_headers.get("Authorization", "")
    log(f"conn {n} auth={base64.b64decode(auth[6:]).decode() if auth.startswith('Basic ') else '-'}")
    await ws.send(msgpack.packb({"op": "print", "message": "attached", "seq_number": 0}))
    r = msgpack.unpackb(await ws.recv(), raw=False)
    log(f"reply op={r['op']} seq={r['seq_number']} result={r.get('result')}")
    await ws.send(msgpack.packb({"op": "bogus", "seq_number": 1}))
    r = msgpack.unpackb(await ws.recv(), raw=False)
    log(f"bogus exc={r.get('is_exception')} result={r.get('result')}")
    if n < 3:
        await ws.close()
    else:
        await asyncio.sleep(30)
async def main():
    async with websockets.serve(handler, "127.0.0.1", port):
        await asyncio.sleep(60)
asyncio.run(main())
PY
$PY "$TRASH/master.py" "$PORT" "$TRASH/events" 2>"$TRASH/master.err" &
e2e_track $!
check "fake master listening" wait_for 30 bash -c "echo > /dev/tcp/127.0.0.1/$PORT"

"$KILN_WORKER" create "$TRASH/w" --master "127.0.0.1:$PORT" --name w1 --password 'p:w' >/dev/null
"$KILN_WORKER" start "$TRASH/w" 2>"$TRASH/worker.log" &
WPID=$!
e2e_track $WPID
third() { grep -q '^conn 3 ' "$TRASH/events"; }
check "worker reconnected twice after being dropped" wait_for 60 third
check "Basic auth carries name:password" grep -q '^conn 1 auth=w1:p:w$' "$TRASH/events"
check "each session answers seq 0" test "$(grep -c '^reply op=response seq=0 result=None$' "$TRASH/events")" -ge 2
check "unknown op gets is_exception" grep -q "^bogus exc=True result=Command bogus does not exist.$" "$TRASH/events"
check "reconnect scheduled with backoff" grep -q 'reconnecting in' "$TRASH/worker.log"
kill -TERM $WPID
check "worker stops on SIGTERM" wait_for 30 sh -c "! kill -0 $WPID"
if [ "$E2E_FAILED" -ne 0 ]; then
    sed 's/^/# /' "$TRASH/events" "$TRASH/master.err"; tail -20 "$TRASH/worker.log" | sed 's/^/# /'
fi
done_testing
