#!/bin/bash
# asan-too
# local_worker { }: the master runs its own kiln-worker (Buildbot's
# LocalWorker) in BASEDIR/workers/NAME with a password it makes; a build
# runs on it; a killed worker process is restarted; stopping the master
# stops it too (no orphan).
. "$(dirname "$0")/lib.sh"

M=$TRASH/m
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
local_worker { name = "w1", max_builds = 2 }
builder { name = "b1", workers = { "w1" }, steps = { shell { command = "echo built-locally > out.txt" } } }
force_scheduler { name = "force", builders = { "b1" } }
LUA
check "master starts" start_master "$M"
check "the local worker attaches" wait_for 60 worker_connected w1
state() { api "workers/w1" | jpy "d['workers'][0]['$1']"; }
check "the API shows it running, kind local" \
    sh -c "[ \"\$(echo '$(state latent_state) $(state latent_kind)')\" = 'running local' ]"

br=$(force b1)
check "a build runs on it" wait_for 60 request_done "$br"
bid=$(build_of_request "$br")
check "and succeeds" build_results_is "$bid" 0
check "in BASEDIR/workers/w1" grep -q built-locally "$M/workers/w1/b1/build/out.txt"
check "its password file is private" [ "$(stat -c %a "$M/workers/.w1.password")" = 600 ]

# the worker process: the master's child whose command line names its dir
wpid() { pgrep -P "$MASTER_PID" -f "kiln-worker start $M/workers/w1" | head -n 1; }
pid1=$(wpid)
check "the worker is the master's child (pid $pid1)" test -n "$pid1"
kill -KILL "$pid1" 2>/dev/null
gone() { ! kill -0 "$pid1" 2>/dev/null; }
check "killed, it goes away" wait_for 30 gone
restarted() { p=$(wpid); [ -n "$p" ] && [ "$p" != "$pid1" ] && worker_connected w1; }
check "the master restarts it and it attaches again" wait_for 60 restarted
pid2=$(wpid)
br=$(force b1)
check "a second build runs on the restarted worker" wait_for 60 request_done "$br"
check "and succeeds" build_results_is "$(build_of_request "$br")" 0

stop_pid "$MASTER_PID"
rc=$?
check "the master stops cleanly (rc $rc)" [ "$rc" -eq 0 ]
gone2() { ! kill -0 "$pid2" 2>/dev/null; }
check "its worker is stopped with it (no orphan)" wait_for 30 gone2
check "the master's log says so" grep -q "worker=w1 stopped" "$M/master.log"
done_testing
