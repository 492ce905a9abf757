#!/bin/bash
# asan-too
# A Kiln master on SQLite with a kiln-worker: a successful build with its
# output stored, Buildbot's result rules (halt, always_run, warn), stopping a
# running build, a worker lost mid-build (RETRY, then run again), and a
# clean SIGTERM with a build running.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
title = "e2e"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
-- the worker killed below must end its build RETRY at once, not after a re-attach grace
workers_reattach_grace = 0
worker { name = "w1", password = secret("w1"), max_builds = 2 }
builder { name = "ok", workers = { "w1" }, steps = {
  shell { name = "hello", command = { "sh", "-c", "echo hello-from-kiln; echo to-stderr >&2" } },
} }
builder { name = "bad", workers = { "w1" }, steps = {
  shell { name = "fail", command = "exit 3", halt_on_failure = true },
  shell { name = "skipped", command = "echo never" },
  shell { name = "cleanup", command = "echo cleanup-ran", always_run = true },
} }
builder { name = "warn", workers = { "w1" }, steps = {
  shell { name = "soft", command = "false", flunk_on_failure = false, warn_on_failure = true },
  shell { name = "after", command = "true" },
} }
builder { name = "sleepy", workers = { "w1" }, steps = {
  shell { name = "sleep", command = { "sleep", "60" } },
} }
force_scheduler { name = "force", builders = { "ok", "bad", "warn", "sleepy" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"

check "master starts and writes its ports" start_master "$M"
check "pid file holds the master's pid" [ "$(cat "$M/pid")" = "$MASTER_PID" ]
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

# a successful build, output stored with stream prefixes
br=$(force ok)
check "force returns a build request" [ -n "$br" ]
check "request completes" wait_for 30 request_done "$br"
b=$(build_of_request "$br")
check "build succeeded" [ "$(build_field "$b" results)" = 0 ]
check "build state is 'build successful'" [ "$(build_field "$b" state_string)" = "build successful" ]
txt=$(log_text "$b" 1)
check "stdout stored with 'o' prefix" grep -qx 'ohello-from-kiln' <<<"$txt"
check "stderr stored with 'e' prefix" grep -qx 'eto-stderr' <<<"$txt"
check "exit code header stored" grep -qx 'hprogram finished with exit code 0' <<<"$txt"
check "worker_preparation is step 0" [ "$(api "builds/$b/steps/0" | jpy 'd["steps"][0]["name"]')" = worker_preparation ]

# halt_on_failure skips later steps, always_run still runs
br=$(force bad)
check "failing request completes" wait_for 30 request_done "$br"
b=$(build_of_request "$br")
check "failing build is FAILURE" [ "$(build_field "$b" results)" = 2 ]
steps=$(api "builds/$b/steps" | jpy '",".join("%s=%s" % (s["name"], s["results"]) for s in d["steps"])')
check "halt skips, always_run runs ($steps)" [ "$steps" = "worker_preparation=0,fail=2,cleanup=0" ]

br=$(force warn)
check "warn request completes" wait_for 30 request_done "$br"
b=$(build_of_request "$br")
check "warn_on_failure gives WARNINGS" [ "$(build_field "$b" results)" = 1 ]

# stop a running build
br=$(force sleepy)
check "sleepy build starts" wait_for 60 request_has_builds "$br" 1
b=$(build_of_request "$br")
check "stop is accepted" [ "$(rpc "builds/$b" '{"jsonrpc":"2.0","id":2,"method":"stop","params":{"reason":"e2e stop"}}' | jpy 'd["result"]')" = null ]
check "stopped build ends CANCELLED" wait_for 60 build_results_is "$b" 6

# the worker dies mid-build: RETRY, and the request runs again when it is back
br=$(force sleepy)
check "build starts before the worker dies" wait_for 60 request_has_builds "$br" 1
b=$(build_of_request "$br")
kill -KILL "$WORKER_PID"
check "lost worker makes the build RETRY" wait_for 60 build_results_is "$b" 5
check "request is queued again" [ "$(api "buildrequests/$br" | jpy 'd["buildrequests"][0]["claimed"]')" = false ]
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "request runs again on the returning worker" wait_for 30 request_has_builds "$br" 2
b2=$(build_of_request "$br")

# SIGTERM with a build running: clean exit, the build recorded as interrupted
stop_pid "$MASTER_PID"
check "master exits 0 on SIGTERM" [ $? = 0 ]
check "pid file removed" [ ! -e "$M/pid" ]
check "master restarts on the same database" start_master "$M"
check "interrupted build recorded as RETRY" [ "$(build_field "$b2" results)" = 5 ]
check "interrupted build's state says why" sh -c "curl -s $URL/api/v2/builds/$b2 | grep -q interrupted"
# the restarted master bound new free ports: point the worker at them
stop_pid "$WORKER_PID"
sed -i "s/^master = .*/master = $WADDR/" "$TRASH/w1/worker.conf"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches to the restarted master" wait_for 60 worker_connected w1
check "the interrupted request runs again" wait_for 60 request_has_builds "$br" 3

done_testing
