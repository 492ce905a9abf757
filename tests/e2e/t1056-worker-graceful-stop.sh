#!/bin/bash
# asan-too
# Worker control (slice "workerctl"): JSON-RPC "stop" on /api/v2/workers/ID
# is Buildbot's graceful shutdown.  A kiln-worker running a long build
# (held by a gate file) is asked to stop: it shows "graceful" at once, a
# request queued meanwhile does not start on it, the running build finishes
# SUCCESS once the gate opens, then the master sends `shutdown` and the
# worker process exits.  Started again, it is a normal worker that runs the
# waiting request.  The same with a real buildbot-worker when installed,
# and "kill" on it (disconnected at once, its build RETRY, its process exits).
# A (python3) worker that answers shutdown but stays is closed by the master
# 10 s later.
. "$(dirname "$0")/lib.sh"

require_cmd curl python3
M=$TRASH/master
GATE=$TRASH/gate
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
worker { name = "bbw", password = secret("w1") }
worker { name = "deaf", password = secret("w1") }
builder { name = "long", workers = { "w1" }, steps = {
  shell { command = "echo started; while [ ! -e '$GATE' ]; do sleep 0.1; done; echo finished" } } }
builder { name = "quick", workers = { "w1" }, steps = { shell { command = "echo quick" } } }
builder { name = "bblong", workers = { "bbw" }, steps = {
  shell { command = "while [ ! -e '$GATE.bb' ]; do sleep 0.1; done; echo bb-finished" } } }
builder { name = "bbquick", workers = { "bbw" }, steps = { shell { command = "echo bbquick" } } }
builder { name = "bbkill", workers = { "bbw" }, steps = {
  shell { command = "i=0; while [ ! -e '$GATE.bk' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done" } } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"

start_worker "$TRASH/w1" w1 "$M/secrets/w1"
W1_PID=$WORKER_PID
check "w1 attaches" wait_for 60 worker_connected w1

field() { api "workers/$1" | jpy "d['workers'][0]['$2']"; }
worker_gone() { [ "$(field "$1" connected_to)" = "[]" ]; }
build_running() { [ -n "$(build_of_request "$1")" ]; }
pid_gone() { ! kill -0 "$1" 2>/dev/null; }
check "w1 is not graceful to start with" [ "$(field w1 graceful)" = false ]

br=$(force long)
check "the long build starts on w1" wait_for 30 build_running "$br"
b=$(build_of_request "$br")

r=$(rpc workers/w1 '{"jsonrpc":"2.0","id":1,"method":"stop","params":{"reason":"e2e"}}')
check "stop answers a result ($r)" grep -q '"result": *null' <<<"$r"
check "w1 shows graceful" [ "$(field w1 graceful)" = true ]
check "... and is still connected while its build runs" worker_connected w1
brq=$(force quick)
check "a request queued now stays unclaimed" \
    [ "$(api "buildrequests/$brq" | jpy 'd["buildrequests"][0]["claimed"]')" = false ]
r=$(rpc workers/w1 '{"jsonrpc":"2.0","id":2,"method":"unpause","params":{}}')
check "unpause during the stop answers a result" grep -q '"result": *null' <<<"$r"
r=$(rpc workers/w1 '{"jsonrpc":"2.0","id":3,"method":"stop","params":{}}')
check "a second stop is harmless" grep -q '"result": *null' <<<"$r"
check "the long build is still running" [ "$(build_field "$b" complete)" = false ]

touch "$GATE"
check "the running build finishes" wait_for 60 request_done "$br"
check "... SUCCESS" build_results_is "$b" 0
check "then w1 is disconnected" wait_for 60 worker_gone w1
check "... and its process exited (shutdown honoured)" wait_for 60 pid_gone "$W1_PID"
check "the queued request never started on w1" request_has_builds "$brq" 0
check "the master sent shutdown when w1 was idle" \
    grep -q "worker=w1 stopping gracefully: idle, sending shutdown" "$M/master.log"

start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "w1 started again attaches" wait_for 60 worker_connected w1
check "... as a normal worker (not graceful)" [ "$(field w1 graceful)" = false ]
check "... and runs the waiting request" wait_for 60 request_done "$brq"
check "... SUCCESS" build_results_is "$(build_of_request "$brq")" 0

# stop on an idle worker: shutdown at once
r=$(rpc workers/w1 '{"jsonrpc":"2.0","id":4,"method":"stop","params":{}}')
check "stop on idle w1 answers a result" grep -q '"result": *null' <<<"$r"
check "idle w1 disconnects" wait_for 60 worker_gone w1
check "... and exits" wait_for 60 pid_gone "$WORKER_PID"

# ---- a worker that answers shutdown but stays: the master closes it ----
if /usr/bin/python3 -c 'import msgpack, websockets' 2>/dev/null; then
    cat > "$TRASH/deaf.py" <<'PY'
# deaf.py HOST:PORT NAME PASSWORD: attaches (no builder: no mkdir), answers
# every request, shutdown included, and never closes; prints each op, and
# "closed" when the master closes the connection.
import asyncio, base64, sys
import msgpack, websockets

async def main():
    addr, name, password = sys.argv[1:4]
    auth = base64.b64encode(("%s:%s" % (name, password)).encode()).decode()
    async with websockets.connect("ws://%s/" % addr,
                                  extra_headers={"Authorization": "Basic " + auth},
                                  compression=None, open_timeout=10) as ws:
        try:
            while True:
                msg = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 60), raw=False)
                print(msg.get("op"), flush=True)
                result = None
                if msg.get("op") == "get_worker_info":
                    result = {"basedir": "/nonexistent/deaf", "system": "posix"}
                await ws.send(msgpack.packb({"op": "response", "seq_number": msg["seq_number"],
                                             "result": result}))
        except websockets.ConnectionClosed:
            print("closed", flush=True)
asyncio.run(main())
PY
    /usr/bin/python3 "$TRASH/deaf.py" "$WADDR" deaf "$(cat "$M/secrets/w1")" >"$TRASH/deaf.out" 2>"$TRASH/deaf.err" &
    e2e_track $!
    check "a worker that ignores shutdown attaches" wait_for 60 worker_connected deaf
    rpc workers/deaf '{"jsonrpc":"2.0","id":8,"method":"stop","params":{}}' >/dev/null
    check "it is sent shutdown at once (idle)" wait_for 60 grep -qx shutdown "$TRASH/deaf.out"
    check "... and still connected just after" worker_connected deaf
    check "the master closes it 10 s later" wait_for 40 grep -qx closed "$TRASH/deaf.out"
    check "... shown disconnected" wait_for 60 worker_gone deaf
    check "... and says why in its log" grep -q "worker=deaf still connected 10 s after shutdown" "$M/master.log"
else
    ok "python3 msgpack or websockets not installed # SKIP"
fi

# ---- a real buildbot-worker ----
if command -v buildbot-worker >/dev/null; then
    W=$TRASH/bbworker
    buildbot-worker create-worker -q --protocol msgpack_experimental_v7 "$W" \
        "${WADDR%:*}:${WADDR##*:}" bbw "$(cat "$M/secrets/w1")" >/dev/null
    buildbot-worker start --nodaemon "$W" >"$W.log" 2>&1 &
    BB_PID=$!
    e2e_track $BB_PID
    check "buildbot-worker attaches" wait_for 40 worker_connected bbw
    br=$(force bblong)
    check "its long build starts" wait_for 30 build_running "$br"
    b=$(build_of_request "$br")
    r=$(rpc workers/bbw '{"jsonrpc":"2.0","id":5,"method":"stop","params":{}}')
    check "stop on buildbot-worker answers a result" grep -q '"result": *null' <<<"$r"
    brq=$(force bbquick)
    touch "$GATE.bb"
    check "buildbot-worker's build finishes SUCCESS" wait_for 60 request_done "$br"
    check "... SUCCESS" build_results_is "$b" 0
    check "buildbot-worker disconnects" wait_for 30 worker_gone bbw
    check "... and its process exits" wait_for 30 pid_gone "$BB_PID"
    check "the request queued meanwhile did not start on it" request_has_builds "$brq" 0

    # kill: the connection closes now and the running build ends RETRY
    rpc "buildrequests/$brq" '{"jsonrpc":"2.0","id":6,"method":"cancel","params":{}}' >/dev/null
    buildbot-worker start --nodaemon "$W" >>"$W.log" 2>&1 &
    BB_PID=$!
    e2e_track $BB_PID
    check "buildbot-worker started again attaches" wait_for 40 worker_connected bbw
    br=$(force bbkill)
    check "a build runs on it" wait_for 30 build_running "$br"
    b=$(build_of_request "$br")
    r=$(rpc workers/bbw '{"jsonrpc":"2.0","id":7,"method":"kill","params":{"reason":"e2e"}}')
    check "kill answers a result" grep -q '"result": *null' <<<"$r"
    check "buildbot-worker is disconnected at once" wait_for 60 worker_gone bbw
    check "... its process exits (it honoured shutdown)" wait_for 30 pid_gone "$BB_PID"
    check "... and its build ended RETRY" wait_for 60 build_results_is "$b" 5
    touch "$GATE.bk"
else
    ok "buildbot-worker not installed # SKIP"
fi
done_testing
