#!/bin/bash
# asan-too
# A kiln-worker that lists several masters (issue 14: masters sharing one
# database) connects to whichever answers: past an address where nothing
# listens and a master that refuses its password (HTTP 401) to the first
# that takes it; when that master stops, to the next one, where builds go
# on.  A bad list is refused at `create` naming the bad entry.
. "$(dirname "$0")/lib.sh"

mk() { # mk DIR PASSWORD: a master with worker w1 and builder b1
    new_master "$1" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b1", workers = { "w1" }, steps = { shell { command = "echo built" } } }
force_scheduler { name = "force", builders = { "b1" } }
LUA
    echo "$2" > "$1/secrets/w1"
}
mk "$TRASH/mx" other-password
mk "$TRASH/ma" pw
mk "$TRASH/mb" pw
check "master X (another password) starts" start_master "$TRASH/mx"
PX=$MASTER_PID; WX=$WADDR
check "master A starts" start_master "$TRASH/ma"
PA=$MASTER_PID; UA=$URL; WA=$WADDR
check "master B starts" start_master "$TRASH/mb"
PB=$MASTER_PID; UB=$URL; WB=$WADDR
DEAD=127.0.0.1:$(free_port) # nothing listens there
echo pw > "$TRASH/pw"

out=$("$KILN_WORKER" create "$TRASH/bad" --master "$WA, nowhere" --name w1 \
    --password-file "$TRASH/pw" 2>&1)
check "create refuses a bad list, naming the entry ($out)" \
    grep -q "bad --master '$WA, nowhere' (master 2 of the list)" <<<"$out"

W=$TRASH/w1
"$KILN_WORKER" create "$W" --master "$DEAD" --master "$WX, $WA" --master "$WB" --name w1 \
    --password-file "$TRASH/pw" >/dev/null
check "worker.conf holds the list" grep -qx "master = $DEAD, $WX, $WA, $WB" "$W/worker.conf"
KILN_WORKER_HANDSHAKE_TIMEOUT=5 start_worker "$W" w1 "$TRASH/pw"
URL=$UA
check "past the dead address and the refusal, it attaches to A" wait_for 60 worker_connected w1
check "the log shows it moving on" grep -q "trying the next master" "$W.log"
check "and X's refusal" grep -q "refused the worker's name or password (HTTP 401)" "$W.log"
br=$(force b1)
check "a build on A" wait_for 60 request_done "$br"
check "succeeds" build_results_is "$(build_of_request "$br")" 0

stop_pid "$PA"
check "A stops cleanly" [ $? -eq 0 ]
URL=$UB
check "the worker goes on to B" wait_for 60 worker_connected w1
br=$(force b1)
check "a build on B" wait_for 60 request_done "$br"
check "succeeds" build_results_is "$(build_of_request "$br")" 0
check "the worker is still the one process" kill -0 "$WORKER_PID"
stop_pid "$WORKER_PID"
check "the worker stops cleanly" [ $? -eq 0 ]
stop_pid "$PB"
stop_pid "$PX"
done_testing
