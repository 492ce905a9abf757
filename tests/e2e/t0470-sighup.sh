#!/bin/bash
# SIGHUP does not kill the master: it reloads master.lua (slice "reconfig";
# unchanged here, so nothing changes), logs the verdict, keeps serving the
# API and running builds, and still stops cleanly on SIGTERM.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
GO=$TRASH/go
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = {
  shell { name = "wait", command = "while [ ! -e '$GO' ]; do sleep 0.05; done; echo go" },
} }
LUA
printf 'w1-secret' > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 20 worker_connected w1
br=$(force b)
check "build starts" wait_for 20 request_has_builds "$br" 1
b=$(build_of_request "$br")

kill -HUP "$MASTER_PID"
check "the master logs the reconfig, nothing changed" wait_for 20 grep -q "reconfig done: 1 builders (+0 -0 ~0), 1 workers (+0 -0 ~0)" "$M/master.log"
check "a second SIGHUP" sh -c "kill -HUP $MASTER_PID"
check "the log says so twice" wait_for 20 sh -c "[ \$(grep -c 'reconfig done: 1 builders (+0 -0 ~0)' '$M/master.log') = 2 ]"
check "the master is still running" kill -0 "$MASTER_PID"
check "the API still answers" [ "$(api builders | jpy '[x["name"] for x in d["builders"]]')" = '["b"]' ]
check "the worker is still attached" worker_connected w1
touch "$GO"
check "the build finishes" wait_for 30 request_done "$br"
check "the build is SUCCESS" build_results_is "$b" 0
stop_pid "$MASTER_PID"
check "SIGTERM still stops it cleanly" [ $? = 0 ]
done_testing
