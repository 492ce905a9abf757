#!/bin/bash
# asan-too
# Reconfiguration of the workers the master starts (issue 14): a
# local_worker added by `kiln reconfig` (to a master that had none) is
# started and builds; a changed declaration keeps the running process; a
# latent worker added by a reconfig starts on demand; removing the
# local_worker stops its process and the API no longer shows it as latent.
. "$(dirname "$0")/lib.sh"

M=$TRASH/m
head='http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"'
new_master "$M" <<LUA
$head
worker { name = "plain", password = secret("pw") }
builder { name = "p", workers = { "plain" }, steps = { shell { command = "true" } } }
LUA
echo pw > "$M/secrets/pw"
check "master starts (no latent or local worker)" start_master "$M"
reconfig() { out=$("$KILN" reconfig --timeout 60 "$M" 2>&1) || { diag "$out"; return 1; }; }

cat > "$M/master.lua" <<LUA
$head
worker { name = "plain", password = secret("pw") }
local_worker { name = "loc" }
builder { name = "p", workers = { "plain" }, steps = { shell { command = "true" } } }
builder { name = "b1", workers = { "loc" }, steps = { shell { command = "echo one" } } }
force_scheduler { name = "force", builders = { "b1" } }
LUA
check "reconfig adding a local_worker" reconfig
check "the master starts it and it attaches" wait_for 60 worker_connected loc
br=$(force b1)
check "it builds" wait_for 60 request_done "$br"
check "SUCCESS" build_results_is "$(build_of_request "$br")" 0
wpid() { pgrep -P "$MASTER_PID" -f "kiln-worker start $M/workers/loc" | head -n 1; }
pid=$(wpid)
check "its process is the master's child ($pid)" test -n "$pid"

cat > "$M/master.lua" <<LUA
$head
worker { name = "plain", password = secret("pw") }
local_worker { name = "loc", max_builds = 3 }
worker { name = "lat", password = secret("pw"), latent = { idle_timeout = 60, start =
  '"\$KILN_WORKER_BIN" create "\$KILN_WORKER_DIR" --master "\$KILN_MASTER" --name "\$KILN_WORKER_NAME" '
  .. '--password-file "\$KILN_WORKER_PASSWORD_FILE" >/dev/null && exec "\$KILN_WORKER_BIN" start "\$KILN_WORKER_DIR"' } }
builder { name = "p", workers = { "plain" }, steps = { shell { command = "true" } } }
builder { name = "b1", workers = { "loc" }, steps = { shell { command = "echo one" } } }
builder { name = "b2", workers = { "lat" }, steps = { shell { command = "echo two" } } }
builder { name = "slow", workers = { "loc" }, steps = {
  shell { command = "while [ ! -e '$TRASH/go' ]; do sleep 0.05; done; echo done" } } }
force_scheduler { name = "force", builders = { "b1", "b2", "slow" } }
LUA
check "reconfig changing it and adding a latent worker" reconfig
check "the local worker keeps its process" [ "$(wpid)" = "$pid" ]
check "and stays connected" worker_connected loc
br=$(force b2)
check "the added latent worker starts on demand and builds" wait_for 60 request_done "$br"
check "SUCCESS" build_results_is "$(build_of_request "$br")" 0

cat > "$M/master.lua" <<LUA
$head
worker { name = "plain", password = secret("pw") }
builder { name = "p", workers = { "plain" }, steps = { shell { command = "true" } } }
LUA
brs=$(force slow)
running() { [ "$(api "builds?buildrequestid=$brs" | jpy 'd["meta"]["total"]')" = 1 ]; }
check "a slow build runs on the local worker" wait_for 60 running
check "reconfig removing both" reconfig
gone() { ! kill -0 "$pid" 2>/dev/null; }
check "the local worker keeps running while its build does" kill -0 "$pid"
touch "$TRASH/go"
check "the build finishes" wait_for 60 request_done "$brs"
check "SUCCESS" build_results_is "$(build_of_request "$brs")" 0
check "then the local worker's process is stopped" wait_for 30 gone
lat_gone() { ! pgrep -f "kiln-worker start $M/workers/la[t]" >/dev/null; }
check "and the latent worker's" wait_for 30 lat_gone
check "the API shows no latent state for them" \
    [ "$(api workers/loc | jpy 'd["workers"][0]["latent_state"]')" = null ]
check "the master still runs" kill -0 "$MASTER_PID"
stop_pid "$MASTER_PID"
check "and stops cleanly" [ $? -eq 0 ]
done_testing
