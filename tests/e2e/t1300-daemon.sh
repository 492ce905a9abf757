#!/bin/bash
# asan-too
# `kiln start|stop|restart` and `kiln-worker start --daemon|stop|restart`:
# start returns once the daemon is ready (the master's listeners bound: the
# API answers at once, no wait), a second start is refused, a bad
# master.lua is reported by start with its line, a stale pid file is
# reported and removed (and the unrelated process it names is not
# signalled), stop --clean waits for a running build and starts no new one.
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
cp "$M/master.lua" "$TRASH/good.lua"

# track a daemon's pid (from its pid file) for the cleanup trap
track_pidfile() { [ -s "$1" ] && e2e_track "$(cat "$1")"; }
# exited: no such process, or a zombie its new parent (init) has not reaped yet
exited() { st=$(ps -o stat= -p "$1" 2>/dev/null); [ -z "$st" ] || [ "${st#Z}" != "$st" ]; }

"$KILN" start --timeout 60 "$M" > "$TRASH/start.out" 2> "$TRASH/start.err"
rc=$?
track_pidfile "$M/pid"
check "kiln start exits 0 (got $rc)" [ "$rc" = 0 ]
check "it says started with the pid" grep -qF "started (pid $(cat "$M/pid"))" "$TRASH/start.out"
# ready means listening: no wait here
check "the ports file is there at once" test -s "$M/ports"
URL="http://$(master_addr "$M" http)"
WADDR=$(master_addr "$M" workers)
check "the API answers at once" [ "$(api masters | jpy 'len(d["masters"])')" = 1 ]
MPID=$(cat "$M/pid")
check "the daemon left our session" [ "$(ps -o sid= -p "$MPID" | tr -d ' ')" != "$(ps -o sid= -p $$ | tr -d ' ')" ]
check "... and has no controlling terminal" [ "$(ps -o tty= -p "$MPID" | tr -d ' ')" = "?" ]
check "its log goes to BASEDIR/master.log" grep -q "running (1 builders" "$M/master.log"
check "its stdin is /dev/null" [ "$(readlink /proc/$MPID/fd/0)" = /dev/null ]
# started with a pipe on fd 7: the daemon does not keep it, so a reader of it sees its end
{ "$KILN" restart "$M" 7>&1 >/dev/null 2>&1; } | timeout 30 cat > /dev/null
rc=${PIPESTATUS[1]}
check "the daemon keeps none of its launcher's descriptors (reader status $rc)" [ "$rc" = 0 ]
track_pidfile "$M/pid"
MPID=$(cat "$M/pid")
URL="http://$(master_addr "$M" http)"
WADDR=$(master_addr "$M" workers)

"$KILN" start "$M" 2> "$TRASH/start2.err"
rc=$?
check "a second start is refused (status $rc)" [ "$rc" = 1 ]
check "... naming the running pid" grep -qF "pid $MPID" "$TRASH/start2.err"
check "... and the first master still runs" kill -0 "$MPID"

W=$TRASH/w1
"$KILN_WORKER" create "$W" --master "$WADDR" --name w1 --password-file "$M/secrets/w1" >/dev/null
"$KILN_WORKER" start --daemon "$W" > "$TRASH/wstart.out" 2>&1
rc=$?
track_pidfile "$W/worker.pid"
check "kiln-worker start --daemon exits 0 (got $rc)" [ "$rc" = 0 ]
WPID=$(cat "$W/worker.pid")
check "the worker runs" kill -0 "$WPID"
check "the worker attaches" wait_for 30 worker_connected w1
"$KILN_WORKER" start --daemon "$W" 2> "$TRASH/wstart2.err"
check "a second worker start is refused" [ $? = 1 ]
check "... naming the running pid" grep -qF "pid $WPID" "$TRASH/wstart2.err"
"$KILN_WORKER" start "$W" 2> "$TRASH/wstart3.err"
check "a foreground start on the same directory is refused too" [ $? = 1 ]

# --clean: the running build finishes, no new one starts
br=$(force b)
check "build starts" wait_for 30 request_has_builds "$br" 1
b=$(build_of_request "$br")
step_running() { [ "$(api "builds/$b/steps/1" | jpy 'd["steps"][0]["started_at"] is not None and not d["steps"][0]["complete"]')" = true ]; }
check "its step runs" wait_for 30 step_running
"$KILN" stop --clean --timeout 120 "$M" > "$TRASH/stop.out" 2> "$TRASH/stop.err" &
STOP=$!
e2e_track $STOP
check "the master logs the clean stop" wait_for 30 grep -q "SIGUSR1: clean stop" "$M/master.log"
br2=$(force b)
check "a request forced during the clean stop is accepted" [ -n "$br2" ]
check "kiln stop --clean is still waiting" kill -0 "$STOP"
check "... and the master still runs" kill -0 "$MPID"
check "the new request is not started" \
    [ "$(api "buildrequests/$br2" | jpy 'd["buildrequests"][0]["claimed"]')" = false ]
touch "$GO"
check "kiln stop --clean returns once the build is done" wait_for 60 sh -c "! kill -0 $STOP 2>/dev/null"
wait "$STOP"
rc=$?
check "... with status 0 (got $rc)" [ "$rc" = 0 ]
check "the master is gone" exited "$MPID"
check "its pid file is removed" [ ! -e "$M/pid" ]
check "the master logged the clean stop's end" grep -q "clean stop: no build running" "$M/master.log"

"$KILN" stop "$M" 2> "$TRASH/stop2.err"
rc=$?
check "stop when not running: status 3 (got $rc)" [ "$rc" = 3 ]

# restart (from stopped) then the build's result from the API
"$KILN" restart "$M" > /dev/null 2>&1
rc=$?
track_pidfile "$M/pid"
check "restart from stopped starts it (status $rc)" [ "$rc" = 0 ]
URL="http://$(master_addr "$M" http)"
check "the clean-stopped build is SUCCESS" build_results_is "$b" 0
OLD=$(cat "$M/pid")
"$KILN" restart --timeout 60 "$M" > "$TRASH/restart.out" 2>&1
rc=$?
track_pidfile "$M/pid"
check "restart of a running master: status 0 (got $rc)" [ "$rc" = 0 ]
check "... a new pid" [ "$(cat "$M/pid")" != "$OLD" ]
check "... the old one is gone" exited "$OLD"
check "... the stop was reported" grep -qF "stopped (pid $OLD)" "$TRASH/restart.out"

# the worker: restart and stop
"$KILN_WORKER" restart "$W" > "$TRASH/wrestart.out" 2>&1
rc=$?
track_pidfile "$W/worker.pid"
check "kiln-worker restart: status 0 (got $rc)" [ "$rc" = 0 ]
check "... a new worker pid" [ "$(cat "$W/worker.pid")" != "$WPID" ]
"$KILN_WORKER" stop "$W" > /dev/null 2>&1
check "kiln-worker stop: status 0" [ $? = 0 ]
check "... its pid file is removed" [ ! -e "$W/worker.pid" ]
"$KILN_WORKER" stop "$W" 2>/dev/null
check "kiln-worker stop when not running: status 3" [ $? = 3 ]

"$KILN" stop "$M" > /dev/null
check "kiln stop: status 0" [ $? = 0 ]

# a bad master.lua: start fails and prints the error with its line
printf 'http = { listen = "127.0.0.1:0" }\nworkers_listen = "127.0.0.1:0"\nbuilder { name = 3 }\n' > "$M/master.lua"
"$KILN" start "$M" > /dev/null 2> "$TRASH/bad.err"
rc=$?
check "start with a bad master.lua fails (status $rc)" [ "$rc" = 1 ]
diag "start said: $(cat "$TRASH/bad.err")"
check "... printing the error with its line" grep -q "master.lua:3: " "$TRASH/bad.err"
check "... and leaves no pid file" [ ! -e "$M/pid" ]
cp "$TRASH/good.lua" "$M/master.lua"

# a stale pid file naming a live unrelated process: reported, removed, not signalled
sleep 300 &
UNRELATED=$!
e2e_track $UNRELATED
echo "$UNRELATED" > "$M/pid"
"$KILN" stop "$M" 2> "$TRASH/stale.err"
rc=$?
check "stop with a stale pid file: status 3 (got $rc)" [ "$rc" = 3 ]
check "... reported as stale" grep -q "stale pid file" "$TRASH/stale.err"
check "... and removed" [ ! -e "$M/pid" ]
check "... the unrelated process was not signalled" kill -0 "$UNRELATED"
echo "$UNRELATED" > "$M/pid"
"$KILN" start "$M" > /dev/null 2>&1
rc=$?
track_pidfile "$M/pid"
check "start over a stale pid file works (status $rc)" [ "$rc" = 0 ]
check "... and the pid file names the new master" [ "$(cat "$M/pid")" != "$UNRELATED" ]
"$KILN" stop "$M" > /dev/null
check "and it stops" [ $? = 0 ]

"$KILN" start --timeout nope "$M" 2>/dev/null
check "a bad --timeout is a usage error (status 2)" [ $? = 2 ]
"$KILN_WORKER" stop --daemon "$W" 2>/dev/null
check "kiln-worker stop --daemon is a usage error (status 2)" [ $? = 2 ]
for v in start stop restart; do
    check "kiln $v --help documents the exit statuses" sh -c "'$KILN' $v --help | grep -q '^Exit status: 0 done'"
    check "kiln-worker $v --help" sh -c "'$KILN_WORKER' $v --help | grep -q '^usage: kiln-worker $v'"
done
done_testing
