#!/bin/bash
# asan-too
# A kiln-worker listing two masters whose first takes its connection and then
# drops it (here: master A already has a live worker of that name, so the
# newcomer is refused after its WebSocket is up, Buildbot's duplicate check)
# goes on to the second master instead of coming back to the first forever.
. "$(dirname "$0")/lib.sh"

mk() {
    new_master "$1" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b1", workers = { "w1" }, steps = { shell { command = "echo built" } } }
force_scheduler { name = "force", builders = { "b1" } }
LUA
    echo pw > "$1/secrets/w1"
}
mk "$TRASH/ma"
mk "$TRASH/mb"
check "master A starts" start_master "$TRASH/ma"
UA=$URL; WA=$WADDR
check "master B starts" start_master "$TRASH/mb"
UB=$URL; WB=$WADDR
echo pw > "$TRASH/pw"

# the first w1, on A only
"$KILN_WORKER" create "$TRASH/w1a" --master "$WA" --name w1 --password-file "$TRASH/pw" >/dev/null
start_worker "$TRASH/w1a" w1 "$TRASH/pw"
W1=$WORKER_PID
URL=$UA
check "the first w1 attaches to A" wait_for 60 worker_connected w1

# the second w1 lists A then B: A refuses it (the first still answers)
"$KILN_WORKER" create "$TRASH/w1b" --master "$WA, $WB" --name w1 --password-file "$TRASH/pw" \
    >/dev/null
start_worker "$TRASH/w1b" w1 "$TRASH/pw"
W2=$WORKER_PID
check "A refuses the second w1" wait_for 60 grep -q "connected again from .*refused" "$TRASH/ma/master.log"
URL=$UB
check "which goes on to B" wait_for 60 worker_connected w1
check "saying why it left A" grep -q "the session was short; trying the next master, $WB" "$TRASH/w1b.log"
br=$(force b1)
check "a build on B runs on it" wait_for 60 request_done "$br"
check "and succeeds" build_results_is "$(build_of_request "$br")" 0
URL=$UA
check "the first w1 stays on A" worker_connected w1
stop_pid "$W2"
check "the second worker stops cleanly" [ $? -eq 0 ]
stop_pid "$W1"
done_testing
