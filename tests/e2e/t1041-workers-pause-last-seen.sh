#!/bin/bash
# Workers in the API and on /ws (slice "uimisc"): "last_seen" in
# /api/v2/workers (null for a worker never connected, set when one connects
# and when it disconnects), Buildbot's /ws events workers/ID/connected,
# /disconnected and /state_updated, and the JSON-RPC pause / unpause on
# /workers/ID: a paused worker's queued build waits (while another
# builder's build, forced after it, runs on another worker and finishes),
# and runs once the worker is unpaused.
. "$(dirname "$0")/lib.sh"

require_cmd curl python3
/usr/bin/python3 -c 'import websockets' 2>/dev/null || skip_all "python3-websockets is not installed"
M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
worker { name = "w2", password = secret("w1") }
worker { name = "never", password = secret("w1") }
builder { name = "hello", workers = { "w1" }, steps = { shell { command = "echo hello" } } }
builder { name = "other", workers = { "w2" }, steps = { shell { command = "echo other" } } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"

# ---- /ws: the worker events, subscribed before w1 connects ----
cat > "$TRASH/wsw.py" <<'PY'
import asyncio, json, sys
import websockets
URL, ready = sys.argv[1], sys.argv[2]
async def main():
    async with websockets.connect("ws://" + URL.split("://", 1)[1] + "/ws", open_timeout=10) as ws:
        await ws.send(json.dumps({"cmd": "startConsuming", "path": "workers/*/*", "_id": 1}))
        while True:
            ev = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if ev.get("_id") == 1:
                assert ev["code"] == 200, ev
                open(ready, "w").close()
                continue
            k, m = ev["k"], ev["m"]
            print(k.split("/")[2], m["name"], len(m["connected_to"]), m["paused"],
                  m["last_seen"] is not None, k.split("/")[1] == str(m["workerid"]), flush=True)
            if k.endswith("/disconnected") and m["name"] == "w1":
                return
asyncio.run(main())
PY
/usr/bin/python3 "$TRASH/wsw.py" "$URL" "$TRASH/ws-ready" >"$TRASH/ws.out" 2>"$TRASH/ws.err" &
WS_PID=$!
e2e_track $WS_PID
check "a /ws client subscribes to workers/*/*" wait_for 60 test -e "$TRASH/ws-ready"

t0=$(date +%s)
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
W1_PID=$WORKER_PID
start_worker "$TRASH/w2" w2 "$M/secrets/w1"
check "w1 attaches" wait_for 60 worker_connected w1
check "w2 attaches" wait_for 60 worker_connected w2
check "/ws: workers/ID/connected for w1, with its row (connected, last seen)" \
    wait_for 60 grep -qx 'connected w1 1 False True True' "$TRASH/ws.out"

field() { api "workers/$1" | jpy "d['workers'][0]['$2']"; }
check "a worker never connected: last_seen null" [ "$(field never last_seen)" = null ]
seen=$(field w1 last_seen)
check "w1's last_seen is when it connected ($seen >= $t0)" [ "$seen" -ge "$t0" ] 2>/dev/null
check "last_seen is in the collection too" \
    sh -c "curl -sS '$URL/api/v2/workers?name=w1' | grep -q '\"last_seen\": $seen'"

# ---- pause: a queued build waits ----
r=$(rpc workers/w1 '{"jsonrpc":"2.0","id":1,"method":"pause","params":{}}')
check "pause answers a result ($r)" grep -q '"result": *null' <<<"$r"
check "w1 is paused in the API" [ "$(field w1 paused)" = true ]
check "/ws: workers/ID/state_updated with paused" \
    wait_for 60 grep -qx 'state_updated w1 1 True True True' "$TRASH/ws.out"
br=$(force hello)
br2=$(force other)
check "other's build (w2, forced after) completes" wait_for 60 request_done "$br2"
claimed=$(api "buildrequests/$br" | jpy 'd["buildrequests"][0]["claimed"]')
check "hello's request, queued before it, still waits for paused w1 (claimed=$claimed)" \
    [ "$claimed" = false ]
check "... and has no build" request_has_builds "$br" 0
r=$(rpc workers/nosuch '{"jsonrpc":"2.0","id":1,"method":"pause","params":{}}')
check "pausing an unknown worker: an error ($r)" grep -q 'no such worker' <<<"$r"
r=$(rpc workers/w1 '{"jsonrpc":"2.0","id":1,"method":"explode","params":{}}')
check "an unknown action: not supported" grep -q 'action: explode is not supported' <<<"$r"
r=$(rpc workers/w1 '{"jsonrpc":"2.0","id":1,"method":"unpause","params":{}}')
check "unpause answers a result" grep -q '"result": *null' <<<"$r"
check "... the queued build runs and completes" wait_for 60 request_done "$br"
check "w1 is not paused" [ "$(field w1 paused)" = false ]

# ---- last seen after a disconnect ----
t1=$(date +%s)
check "w1 stops" stop_pid "$W1_PID"
worker_gone() { [ "$(field "$1" connected_to)" = "[]" ]; }
check "w1 shows disconnected" wait_for 60 worker_gone w1
seen2=$(field w1 last_seen)
check "w1's last_seen is when it disconnected ($seen2 >= $t1)" [ "$seen2" -ge "$t1" ] 2>/dev/null
check "/ws: workers/ID/disconnected for w1" wait_for 60 sh -c "! kill -0 $WS_PID 2>/dev/null"
check "... with its row (no connection, last seen)" grep -qx 'disconnected w1 0 False True True' "$TRASH/ws.out"
if [ -s "$TRASH/ws.err" ]; then sed 's/^/# ws: /' "$TRASH/ws.err" | head -n 20; fi

# ---- the pause outlives the connection ----
rpc workers/w1 '{"jsonrpc":"2.0","id":1,"method":"pause","params":{}}' >/dev/null
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "w1 attaches again" wait_for 60 worker_connected w1
br=$(force hello)
br2=$(force other)
check "other's build completes" wait_for 60 request_done "$br2"
check "hello's build waits: w1 came back paused" request_has_builds "$br" 0
rpc workers/w1 '{"jsonrpc":"2.0","id":1,"method":"unpause","params":{}}' >/dev/null
check "... and runs once unpaused" wait_for 60 request_done "$br"
done_testing
