#!/bin/bash
# asan-too
# An authenticated worker that answers requests the master never made
# (issue 9): the master logs the first violation and then a count, never a
# line per message, and past KILN_MAX_WORKER_VIOLATIONS (1000) in a window
# it disconnects the worker with the reason.  The fake worker is python3
# (msgpack over WebSocket, as tests/e2e/wsprobe.py).
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
title = "e2e"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
worker { name = "flood", password = secret("flood") }
builder { name = "ok", workers = { "w1" }, steps = {
  shell { name = "hello", command = { "sh", "-c", "echo hello" } },
} }
force_scheduler { name = "force", builders = { "ok" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"
printf 'flood-secret-%s' "$$" > "$M/secrets/flood"

cat > "$TRASH/flood.py" <<'PY'
# flood.py HOST:PORT NAME PASSWORD N KIND: attaches, sends N messages of KIND
# (response: answers to unknown seq numbers; update: updates for unknown
# command ids), then waits (bounded) for the master to close the connection
# or, with KIND ending in '-then-quit', closes it itself.
import asyncio, base64, sys
import msgpack, websockets

async def main():
    addr, name, password, n, kind = sys.argv[1:6]
    n = int(n)
    auth = base64.b64encode(("%s:%s" % (name, password)).encode()).decode()
    async with websockets.connect("ws://%s/" % addr,
                                  extra_headers={"Authorization": "Basic " + auth},
                                  max_size=None, compression=None, open_timeout=10) as ws:
        # the attach sequence (this worker serves no builder: no mkdir)
        while True:
            msg = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 20), raw=False)
            result = None
            if msg.get("op") == "get_worker_info":
                result = {"basedir": "/nonexistent/flood", "system": "posix"}
            await ws.send(msgpack.packb({"op": "response", "seq_number": msg["seq_number"],
                                         "result": result}))
            if msg.get("op") == "set_worker_settings":
                break
        try:
            for i in range(n):
                if kind.startswith("response"):
                    m = {"op": "response", "seq_number": 1000000 + i, "result": None}
                else:
                    m = {"op": "update", "seq_number": 1000000 + i,
                         "command_id": "nope%d" % i, "args": [["stdout", "x"]]}
                await ws.send(msgpack.packb(m))
            if kind.endswith("-then-quit"):
                print("sent")
                return
            while True:
                await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed as e:
            print("closed %s %s" % (e.code, e.reason))
        except asyncio.TimeoutError:
            print("timeout")

asyncio.run(main())
PY
flood() { /usr/bin/python3 "$TRASH/flood.py" "$WADDR" flood "$(cat "$M/secrets/flood")" "$@"; }

check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "a real worker attaches" wait_for 60 worker_connected w1

lines() { wc -l < "$M/master.log"; }

# 50 updates for commands that do not exist, then the worker leaves: one
# line for the first, one count when it disconnects
before=$(lines)
r=$(flood 50 update-then-quit)
check "50 violations sent ($r)" [ "$r" = sent ]
check "the disconnect summarises them" \
    wait_for 60 grep -q "worker=flood 49 more protocol violation(s)" "$M/master.log"
check "first violation logged with what it was" \
    grep -q "worker=flood protocol violation: update for an unknown command_id" "$M/master.log"
grown=$(( $(lines) - before ))
# attach, first violation, summary, disconnect
check "master log grew by at most 5 lines ($grown)" [ "$grown" -le 5 ]

# 10,000 answers to requests never made: disconnected past the cap, with
# the reason; a handful of lines in the log
before=$(lines)
t0=$(date +%s)
r=$(flood 10000 response)
check "the flooding worker is disconnected ($r)" [ "${r#closed }" != "$r" ]
check "with the reason" grep -q "worker=flood too many protocol violations (over 1000 in 60 s); closing the connection" "$M/master.log"
grown=$(( $(lines) - before ))
check "master log grew by at most 6 lines for 10,000 bogus answers ($grown)" [ "$grown" -le 6 ]
check "the count of violations before the cap is in the log" \
    grep -q "worker=flood 999 more protocol violation(s)" "$M/master.log"
diag "flood answered in $(( $(date +%s) - t0 )) s"

# the master stays responsive: API answers, the real worker still builds
check "API answers" wait_for 30 worker_connected w1
br=$(force ok)
check "a build still runs" wait_for 30 request_done "$br"
check "to SUCCESS" [ "$(build_field "$(build_of_request "$br")" results)" = 0 ]
check "the real worker was never disconnected" [ "$(grep -c 'worker=w1 disconnected' "$M/master.log")" = 0 ]

if [ "$E2E_FAILED" -ne 0 ]; then
    diag "master log:"; tail -n 30 "$M/master.log" | sed 's/^/# /'
fi
done_testing
