#!/bin/bash
# One base directory, one master: a second `kiln master` on a folder whose
# master is running a build exits non-zero, names the folder and the
# running pid, and touches nothing (no start-up recovery: the running build
# is not marked RETRY, the live master stays active); the first master then
# finishes its build and the build and its request are SUCCESS.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
GO=$TRASH/go
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = {
  shell { name = "wait", command = "echo waiting; while [ ! -e '$GO' ]; do sleep 0.05; done; echo go" },
} }
LUA
printf 'w1-secret' > "$M/secrets/w1"
check "master starts" start_master "$M"
FIRST=$MASTER_PID
check "pid file names the first master" [ "$(cat "$M/pid")" = "$FIRST" ]
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

br=$(force b)
check "build starts" wait_for 60 request_has_builds "$br" 1
b=$(build_of_request "$br")
step_running() { [ "$(api "builds/$b/steps/1" | jpy 'd["steps"][0]["started_at"] is not None and not d["steps"][0]["complete"]')" = true ]; }
check "the waiting step runs" wait_for 60 step_running

state() {
    api "builds/$b" | jpy '[d["builds"][0][k] for k in ("complete", "results", "state_string")]'
    api "buildrequests/$br" | jpy '[d["buildrequests"][0][k] for k in ("claimed", "complete", "results")]'
    api masters | jpy '[(x["masterid"], x["active"]) for x in d["masters"]]'
}
before=$(state)
diag "before: $(echo $before)"

timeout 20 "$KILN" master -d "$M" > "$TRASH/second.out" 2> "$TRASH/second.err"
rc=$?
check "second master exits with status 1 (got $rc)" [ "$rc" = 1 ]
diag "second master said: $(cat "$TRASH/second.err")"
check "error names the base directory" grep -qF "'$(cd "$M" && pwd -P)'" "$TRASH/second.err"
check "error names the running pid" grep -qF "pid $FIRST" "$TRASH/second.err"
check "pid file still names the first master" [ "$(cat "$M/pid")" = "$FIRST" ]
check "first master still running" kill -0 "$FIRST"
after=$(state)
check "build, request and masters unchanged" [ "$before" = "$after" ]
check "ports file still the first master's" [ "http://$(master_addr "$M" http)" = "$URL" ]

touch "$GO"
check "request completes" wait_for 30 request_done "$br"
check "build is SUCCESS" build_results_is "$b" 0
check "request is SUCCESS" [ "$(api "buildrequests/$br" | jpy 'd["buildrequests"][0]["results"]')" = 0 ]
check "one build only" request_has_builds "$br" 1

stop_pid "$FIRST"
check "first master stops cleanly" [ $? = 0 ]
check "pid file removed at a clean stop" [ ! -e "$M/pid" ]
# the folder is free again: a new master starts on it
check "a new master starts on the freed folder" start_master "$M"
done_testing
