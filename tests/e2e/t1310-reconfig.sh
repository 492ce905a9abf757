#!/bin/bash
# asan-too
# Live reconfiguration (`kiln reconfig`, SIGHUP): builders, workers and
# schedulers added, removed and changed while builds run; a bad master.lua
# is refused with its line and the old configuration stays.
. "$(dirname "$0")/lib.sh"

# has TEXT PATTERN: grep -q PATTERN in TEXT
has() { printf '%s\n' "$1" | grep -q -- "$2"; }

M=$TRASH/master
GO_B=$TRASH/go-b
GO_G=$TRASH/go-gone
mkdir -p "$M/secrets"
printf 'w1-secret' > "$M/secrets/w1"
printf 'w2-secret' > "$M/secrets/w2"
head='http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1"), max_builds = 4 }'
# v1: b (prints v1 once GO_B exists), gone (waits for GO_G)
cat > "$M/master.lua" <<LUA
$head
builder { name = "b", workers = { "w1" }, steps = {
  shell { name = "say", command = "while [ ! -e '$GO_B' ]; do sleep 0.05; done; echo version-one" },
} }
builder { name = "gone", workers = { "w1" }, steps = {
  shell { name = "wait", command = "while [ ! -e '$GO_G' ]; do sleep 0.05; done; echo done" },
} }
force_scheduler { name = "force", builders = { "b", "gone" } }
LUA
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker w1 attaches" wait_for 20 worker_connected w1
brb=$(force b)
brg=$(force gone)
check "b's build starts" wait_for 20 request_has_builds "$brb" 1
check "gone's build starts" wait_for 20 request_has_builds "$brg" 1
b1=$(build_of_request "$brb")
g1=$(build_of_request "$brg")
gone_id=$(api builders/gone | jpy 'd["builders"][0]["builderid"]')

# v2: b's command changes, gone is removed, added and w2 and a scheduler appear
cat > "$M/master.lua" <<LUA
$head
worker { name = "w2", password = secret("w2") }
builder { name = "b", workers = { "w1" }, steps = {
  shell { name = "say", command = "while [ ! -e '$GO_B' ]; do sleep 0.05; done; echo version-two" },
} }
builder { name = "added", workers = { "w1", "w2" }, steps = { shell { command = "echo hello" } } }
force_scheduler { name = "force", builders = { "b", "added" } }
force_scheduler { name = "extra", builders = { "added" } }
LUA
out=$("$KILN" reconfig --timeout 60 "$M" 2>&1); rc=$?
diag "$out"
check "kiln reconfig exits 0" [ $rc = 0 ]
check "it prints the difference" has "$out" '^reconfig done: 2 builders (+1 -1 ~1), 2 workers (+1 -0 ~0), 2 schedulers (+1 -0 ~'
check "the master still runs" kill -0 "$MASTER_PID"
check "the new builder is listed" [ "$(api builders/added | jpy 'len(d["builders"][0]["masterids"])')" = 1 ]
check "the removed builder shows no master" [ "$(api builders/gone | jpy 'd["builders"][0]["masterids"]')" = '[]' ]
check "the new scheduler is listed" sh -c "curl -sS --max-time 10 '$URL/api/v2/schedulers' | grep -q '\"extra\"'"
bra=$(force added)
check "the added builder builds" wait_for 30 request_done "$bra"
check "... SUCCESS" build_results_is "$(build_of_request "$bra")" 0
err=$(rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$gone_id\",\"reason\":\"e2e\"}}")
diag "$err"
check "forcing the removed builder is refused clearly" has "$err" "builder $gone_id was removed from the configuration: it takes no new builds"
check "gone's build is still running" [ "$(build_field "$g1" complete)" = false ]
touch "$GO_G"
check "the removed builder's build finishes" wait_for 30 request_done "$brg"
check "... SUCCESS" build_results_is "$g1" 0
touch "$GO_B"
check "b's first build finishes" wait_for 30 request_done "$brb"
log1=$(log_text "$b1" 1)
check "b's first build ran the old command" has "$log1" '^oversion-one$'
brb2=$(force b)
check "b's next build finishes" wait_for 30 request_done "$brb2"
log2=$(log_text "$(build_of_request "$brb2")" 1)
check "b's next build runs the new command" has "$log2" '^oversion-two$'

# the added worker connects; then it is removed
start_worker "$TRASH/w2" w2 "$M/secrets/w2"
check "the added worker w2 attaches" wait_for 20 worker_connected w2
sed -i '/name = "w2"/d; s/"w1", "w2"/"w1"/' "$M/master.lua"
out=$("$KILN" reconfig "$M" 2>&1); rc=$?
diag "$out"
check "removing w2: exit 0" [ $rc = 0 ]
check "... 1 worker (+0 -1 ~0)" has "$out" '1 workers (+0 -1 ~0)'
check "the removed worker is disconnected" wait_for 20 sh -c "! { [ \"\$(curl -sS --max-time 10 '$URL/api/v2/workers/w2' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"workers\"][0][\"connected_to\"]))')\" = 1 ]; }"
check "w1 stays attached" worker_connected w1

# a syntax error: refused with its line, nothing applied
cp "$M/master.lua" "$TRASH/good.lua"
printf 'builder { name = "broken",\n' >> "$M/master.lua"
out=$("$KILN" reconfig "$M" 2>&1); rc=$?
diag "$out"
check "a syntax error: kiln reconfig exits non-zero" [ $rc != 0 ]
check "... and prints master.lua:LINE:" has "$out" '^master.lua:[0-9][0-9]*:'
check "the builders are unchanged" [ "$(api builders | jpy 'sorted(x["name"] for x in d["builders"] if x["masterids"])')" = '["added", "b"]' ]
bra2=$(force added)
check "the old config still builds" wait_for 30 request_done "$bra2"

# SIGHUP directly
cp "$TRASH/good.lua" "$M/master.lua"
cat >> "$M/master.lua" <<'LUA'
builder { name = "hup", workers = { "w1" }, steps = { shell { command = "echo hup" } } }
LUA
hup_listed() { [ "$(api builders/hup | jpy 'len(d["builders"][0]["masterids"])' 2>/dev/null)" = 1 ]; }
# a /ws subscriber sees the new builder start (Buildbot's builders/ID/started)
cat > "$TRASH/wsb.py" <<'PY'
import asyncio, json, sys
import websockets

async def main():
    url, ready = sys.argv[1], sys.argv[2]
    async with websockets.connect("ws://" + url.split("://", 1)[1] + "/ws", open_timeout=10) as ws:
        await ws.send(json.dumps({"cmd": "startConsuming", "path": "builders/*/started", "_id": 1}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 20))["code"] == 200
        open(ready, "w").close()
        print(await asyncio.wait_for(ws.recv(), 60))

asyncio.run(main())
PY
/usr/bin/python3 "$TRASH/wsb.py" "$URL" "$TRASH/ws-ready" > "$TRASH/ws-out" 2>&1 &
WSPID=$!
e2e_track $WSPID
check "the /ws subscriber is ready" wait_for 20 test -e "$TRASH/ws-ready"
kill -HUP "$MASTER_PID"
check "SIGHUP applies the config" wait_for 30 hup_listed
check "the subscriber got the started event" wait_for 30 sh -c "! kill -0 $WSPID 2>/dev/null"
diag "$(cat "$TRASH/ws-out")"
check "... of builder hup" grep -q '"builders/[0-9]*/started".*"name": *"hup"' "$TRASH/ws-out"
check "the verdict file says so" wait_for 20 grep -q '3 builders (+1 -0 ~0)' "$M/reconfig.result"
check "the master still runs" kill -0 "$MASTER_PID"
stop_pid "$MASTER_PID"
check "SIGTERM stops it cleanly" [ $? = 0 ]
done_testing
