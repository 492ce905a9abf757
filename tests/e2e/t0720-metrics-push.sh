#!/bin/bash
# asan-too
# metrics_push (issue 10): checkconfig accepts the documented setting and
# refuses bad values with their line; a master with it connects to the
# store (a python3 stand-in on loopback), connects again after the store
# hangs up, keeps serving while the store is down or was never there, and
# stops cleanly.  The exact lines are checked by tests/unit/test-tsdb.c.
. "$(dirname "$0")/lib.sh"
require_cmd python3

# checkconfig_says DIR TEXT: checkconfig fails with TEXT on its output
checkconfig_says() {
    out=$("$KILN" checkconfig "$1" 2>&1); rc=$?
    diag "checkconfig: exit $rc: $out"
    [ "$rc" != 0 ] && printf '%s' "$out" | grep -qF "$2"
}

api_answers() { api builders | grep -q '"builders"'; }

B=$TRASH/bad
new_master "$B" <<'LUA'
title = "bad"
metrics_push = { protocol = "influx", host = "127.0.0.1", port = 0 }
LUA
check "checkconfig: port 0 is refused with its line" checkconfig_says "$B" \
    "master.lua:2: metrics_push: 'port' must be between 1 and 65535 (got 0)"
new_master "$B" <<'LUA'
metrics_push = { protocol = "statsd", host = "127.0.0.1", port = 8125 }
LUA
check "checkconfig: an unknown protocol is refused" checkconfig_says "$B" \
    "master.lua:1: metrics_push: 'protocol' must be \"influx\" or \"graphite\" (got 'statsd')"

python3 "$KILN_SRC/tests/e2e/tsdb-store.py" "$TRASH/store.port" "$TRASH/events" --hang-up-first &
STORE_PID=$!
e2e_track $STORE_PID
check "the store listens" wait_for 60 test -s "$TRASH/store.port"
SPORT=$(cat "$TRASH/store.port")

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
metrics_push = { protocol = "graphite", host = "localhost", port = $SPORT, prefix = "ci.kiln" }
LUA
check "checkconfig accepts metrics_push" "$KILN" checkconfig "$M"
check "master starts" start_master "$M"
check "the master connects to the store" wait_for 60 grep -qx "conn 1" "$TRASH/events"
check "after the store hangs up it connects again" wait_for 60 grep -qx "conn 2" "$TRASH/events"
check "the master logs the lost connection" wait_for 60 grep -q "tsdb: localhost:$SPORT: connection lost" "$M/master.log"

kill -TERM "$STORE_PID"; wait "$STORE_PID" 2>/dev/null
check "the store is gone: the master notices" wait_for 60 sh -c "[ \$(grep -c 'tsdb: localhost:$SPORT: connection lost' '$M/master.log') = 2 ]"
check "the master serves the API while the store is down" api_answers
check "the master is still running" kill -0 "$MASTER_PID"
stop_pid "$MASTER_PID"
check "it stops cleanly" [ $? = 0 ]
check "and says it stopped" grep -q "master stopped" "$M/master.log"

# a store that was never there: nothing waits for it
N=$TRASH/nostore
DEAD=$(free_port)
new_master "$N" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
metrics_push = { protocol = "influx", host = "127.0.0.1", port = $DEAD }
LUA
check "a master whose store is down starts" start_master "$N"
check "it logs the refusal once" wait_for 60 grep -q "tsdb: 127.0.0.1:$DEAD: cannot connect: connection refused; retrying with backoff" "$N/master.log"
check "it answers the API meanwhile" api_answers
stop_pid "$MASTER_PID"
check "and stops cleanly" [ $? = 0 ]
check "the refusal was logged as a warning only once" [ "$(grep -c 'connection refused; retrying' "$N/master.log")" = 1 ]
done_testing
