#!/bin/bash
# kiln-worker given the master as a name ('localhost:PORT') resolves it off
# its loop and connects: lws gets the numeric address, the master sees a
# normal worker (Host header keeps the name), and a build runs on it.
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
check "worker given 'localhost:$PORT' attaches" wait_for 20 worker_connected w1
check "worker logged the connection under the name" \
    grep -q "connected to master localhost:$PORT" "$TRASH/w1.log"
br=$(force hello)
check "force returns a build request" [ -n "$br" ]
check "request completes" wait_for 30 request_done "$br"
b=$(build_of_request "$br")
check "build succeeded" [ "$(build_field "$b" results)" = 0 ]
stop_pid "$WORKER_PID"
if [ "$E2E_FAILED" -ne 0 ]; then
    tail -20 "$TRASH/w1.log" | sed 's/^/# /'; tail -20 "$M/master.log" | sed 's/^/# /'
fi
done_testing
