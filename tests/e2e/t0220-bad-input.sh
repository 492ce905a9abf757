#!/bin/bash
# asan-too
# Bad input never crashes the master or changes state: wrong worker
# credentials (401, logged once), a non-Basic header (400), malformed,
# incomplete, oversize, decoding-to-huge and unknown protocol messages
# (error or close),
# malformed API calls (400/404 with JSON bodies), and a bad config.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
worker { name = "probe", password = secret("probe") }
builder { name = "ok", workers = { "w1" }, steps = { shell { command = "echo still-fine" } } }
LUA
printf 'w1-secret' > "$M/secrets/w1"
printf 'probe-secret' > "$M/secrets/probe"
check "master starts" start_master "$M"

upgrade() { # upgrade AUTH-ARGS...: prints the HTTP status of a worker upgrade
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Connection: Upgrade' \
        -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
        -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$@" "http://$WADDR/"
}
check "no credentials: 401" [ "$(upgrade)" = 401 ]
check "wrong password: 401" [ "$(upgrade -u w1:wrong)" = 401 ]
check "unknown worker: 401" [ "$(upgrade -u nobody:w1-secret)" = 401 ]
check "non-Basic Authorization: 400" [ "$(upgrade -H 'Authorization: Bearer x')" = 400 ]
check "wrong password logged once" [ "$(grep -c "refused for 'w1'" "$M/master.log")" = 1 ]
check "refused worker not recorded as connected" [ "$(api workers/w1 | jpy 'd["workers"][0]["connected_to"]')" = "[]" ]

probe() { /usr/bin/python3 "$(dirname "$0")/wsprobe.py" "$WADDR" probe probe-secret "$1"; }
check "garbage frame closes that connection" [ "$(probe garbage)" = "closed 1002" ]
check "map without op closes that connection" [ "$(probe missing-fields)" = "closed 1002" ]
check "non-map message closes that connection" [ "$(probe not-a-map)" = "closed 1002" ]
check "unknown op answered with an exception" [ "$(probe unknown-op)" = "exception Command frobnicate does not exist." ]
r=$(probe oversize)
check "oversize frame closed with 1009 ($r)" [ "$r" = "closed 1009" ]

# A frame-sized message of 1-byte nils: msgpack-c would build 24 bytes per
# byte (192 MiB); the decoder refuses it by its decoded size first.
cat > "$TRASH/nils.py" <<'PY'
import asyncio, base64, struct, sys
import websockets
async def main():
    addr, name, password = sys.argv[1:4]
    auth = base64.b64encode(("%s:%s" % (name, password)).encode()).decode()
    n = (8 << 20) - 25
    msg = b"\x83\xa2op\xa1x\xaaseq_number\x00\xa1a\xdd" + struct.pack(">I", n) + b"\xc0" * n
    async with websockets.connect("ws://%s/" % addr, extra_headers={"Authorization": "Basic " + auth},
                                  max_size=None, compression=None, open_timeout=10) as ws:
        await ws.send(msg)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 20)
        except websockets.ConnectionClosed as e:
            print("closed %s" % (e.code,))
        except asyncio.TimeoutError:
            print("timeout")
asyncio.run(main())
PY
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$MASTER_PID/status"; }
before=$(hwm)
r=$(/usr/bin/python3 "$TRASH/nils.py" "$WADDR" probe probe-secret)
after=$(hwm)
check "8 MiB of nils closed with 1002 ($r)" [ "$r" = "closed 1002" ]
check "and the master's peak RSS grew by less than 96 MiB ($before -> $after kB)" \
    [ $((after - before)) -lt $((96 * 1024)) ]

# the master still serves everyone else: a real worker builds
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "a real worker still attaches" wait_for 60 worker_connected w1
br=$(force ok)
check "and builds" wait_for 30 request_done "$br"
check "to SUCCESS" [ "$(build_field "$(build_of_request "$br")" results)" = 0 ]

# API bad input: JSON errors, nothing changed
code() { curl -s -o "$TRASH/body" -w '%{http_code}' --max-time 10 "$@"; }
check "unknown path: 404" [ "$(code "$URL/api/v2/nosuch")" = 404 ]
check "404 body is JSON with the path" grep -q '"error": "Invalid path: nosuch"' "$TRASH/body"
check "bad id: 404" [ "$(code "$URL/api/v2/builds/abc")" = 404 ]
check "bad limit: 400" [ "$(code "$URL/api/v2/builds?limit=abc")" = 400 ]
check "malformed JSON-RPC: 400" [ "$(code -H 'Content-Type: application/json' -d '{"jsonrpc": "2.0", "id": 1, ' "$URL/api/v2/forceschedulers/force")" = 400 ]
check "malformed JSON-RPC: code -32700" grep -q -- '-32700' "$TRASH/body"
check "wrong content type: 400" [ "$(code -H 'Content-Type: text/plain' -d '{}' "$URL/api/v2/forceschedulers/force")" = 400 ]
check "unknown method: 501" [ "$(code -H 'Content-Type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"explode","params":{}}' "$URL/api/v2/builds")" = 501 ]
head -c 3000000 /dev/zero | tr '\0' 'x' > "$TRASH/big"
check "oversize body: 413" [ "$(code -H 'Content-Type: application/json' --data-binary @"$TRASH/big" "$URL/api/v2/forceschedulers/force")" = 413 ]
n=$(api buildsets | jpy 'd["meta"]["total"]')
check "nothing was created by the bad calls" [ "$n" = 1 ]
check "master still alive" kill -0 "$MASTER_PID"

# a bad config: one line with file:line, the master refuses to start
B=$TRASH/bad
new_master "$B" <<'LUA'
http = { listen = "127.0.0.1:0" }
builder { name = "x", workers = { "nobody" },
  steps = { shell { command = 42 } } }
LUA
out=$("$KILN" checkconfig "$B" 2>&1)
check "checkconfig fails on a bad config" [ $? -ne 0 ]
check "error names master.lua:LINE ($out)" grep -qE '^master\.lua:[0-9]+: ' <<<"$out"
"$KILN" master -d "$B" 2>"$TRASH/bad.log"
check "master refuses a bad config" [ $? -ne 0 ]
check "with the same message" grep -qE '^master\.lua:[0-9]+: ' "$TRASH/bad.log"
check "and starts nothing" [ ! -e "$B/ports" ]
done_testing
