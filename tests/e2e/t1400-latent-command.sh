#!/bin/bash
# asan-too
# A latent worker of the command kind (issue 14): nothing runs until a
# request needs it; then the master runs its start command (a real
# kiln-worker here), the build runs on it, and after idle_timeout without a
# build the master runs its stop command and the worker is gone.  A second
# request starts it again.  latent_max_count = 1: a second latent worker
# waits until the first is stopped.
. "$(dirname "$0")/lib.sh"

M=$TRASH/m
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
latent_max_count = 1
local start = 'echo start >> "$TRASH/\$KILN_WORKER_NAME.starts"; '
  .. '"\$KILN_WORKER_BIN" create "\$KILN_WORKER_DIR" --master "\$KILN_MASTER" '
  .. '--name "\$KILN_WORKER_NAME" --password-file "\$KILN_WORKER_PASSWORD_FILE" >/dev/null '
  .. '&& exec "\$KILN_WORKER_BIN" start "\$KILN_WORKER_DIR"'
local stop = { "sh", "-c", 'echo stop >> "$TRASH/\$KILN_WORKER_NAME.stops"' }
-- lw1 idles long enough for lw2's request to be seen waiting behind it
worker { name = "lw1", password = secret("lw1"),
         latent = { start = start, stop = stop, idle_timeout = 8, start_timeout = 60 } }
worker { name = "lw2", password = secret("lw2"),
         latent = { start = start, stop = stop, idle_timeout = 3, start_timeout = 60 } }
builder { name = "b1", workers = { "lw1" }, steps = { shell { command = "echo on-latent; env" } } }
builder { name = "b2", workers = { "lw2" }, steps = { shell { command = "echo on-latent-2" } } }
force_scheduler { name = "force", builders = { "b1", "b2" } }
LUA
echo pw-one > "$M/secrets/lw1"
echo pw-two > "$M/secrets/lw2"
check "master starts" start_master "$M"
state() { api "workers/$1" | jpy "d['workers'][0]['latent_state']"; }
state_is() { [ "$(state "$1")" = "$2" ]; }
check "the latent worker is stopped, nothing started" \
    sh -c "[ '$(state lw1)' = stopped ] && [ ! -e '$TRASH/lw1.starts' ]"
out=$("$KILN" workers --url "$URL" 2>&1)
check "kiln workers shows the LATENT column" grep -q '^lw1  *no  *no  *-  *-  *stopped' <<<"$out"

br=$(force b1)
check "a request starts it; the build runs and succeeds" wait_for 90 request_done "$br"
bid=$(build_of_request "$br")
check "build SUCCESS" build_results_is "$bid" 0
check "its start command ran once" [ "$(wc -l < "$TRASH/lw1.starts")" = 1 ]
log=$(log_text "$bid" 1)
check "the build ran on it" grep -q 'on-latent$' <<<"$log"
check "its environment has no worker password" \
    sh -c "! grep -q 'KILN_WORKER_PASSWORD=' <<'EOF'
$log
EOF"
check "it attached as lw1" worker_connected lw1
# the worker process: the start command exec'd kiln-worker
wpid=$(pgrep -P "$MASTER_PID" -f "kiln-worker start $M/workers/lw1" | head -n 1)
check "the worker is the master's child (pid $wpid)" test -n "$wpid"

check "idle for idle_timeout, it is stopped" wait_for 60 state_is lw1 stopped
check "its stop command ran" [ "$(wc -l < "$TRASH/lw1.stops" 2>/dev/null)" = 1 ]
not_connected() { ! worker_connected lw1; }
check "and it disconnected" wait_for 30 not_connected
gone() { ! kill -0 "$wpid" 2>/dev/null; }
check "and its process is gone" wait_for 30 gone

br=$(force b1)
check "another request starts it again" wait_for 90 request_done "$br"
check "build SUCCESS" build_results_is "$(build_of_request "$br")" 0
check "a second start" [ "$(wc -l < "$TRASH/lw1.starts")" = 2 ]

# latent_max_count = 1: lw1 is running (idle), so lw2 waits for it to stop
check "lw1 is running" state_is lw1 running
br2=$(force b2)
claimed() { [ "$(api "buildrequests/$br2" | jpy 'd["buildrequests"][0]["claimed"]')" = true ]; }
check "lw2 does not start while lw1 runs (latent_max_count)" \
    sh -c "[ '$(state lw2)' = stopped ] && [ ! -e '$TRASH/lw2.starts' ]"
check "once lw1 is stopped, lw2 starts and builds" wait_for 90 request_done "$br2"
check "build SUCCESS" build_results_is "$(build_of_request "$br2")" 0
t_stop=$(grep -n 'worker=lw1 stopped' "$M/master.log" | tail -n 1 | cut -d: -f1)
t_start=$(grep -n 'worker=lw2 starting (pid' "$M/master.log" | head -n 1 | cut -d: -f1)
check "lw2 started after lw1 stopped (log lines $t_stop < $t_start)" \
    [ -n "$t_stop" -a -n "$t_start" ] && [ "$t_stop" -lt "$t_start" ]

stop_pid "$MASTER_PID"
check "the master stops cleanly" [ $? -eq 0 ]
lw2gone() { ! pgrep -f "kiln-worker start $M/workers/lw[2]" >/dev/null; }
check "no worker it started is left" wait_for 30 lw2gone
done_testing
