#!/bin/bash
# A build whose worker dies on it three times ends EXCEPTION instead of
# killing workers forever: a real kiln-worker is killed with SIGKILL while
# the step runs, restarted, and killed again; each lost build is RETRY and
# the request is queued again, until the third loss ends the build and the
# request EXCEPTION ("worker lost 3 times: giving up" in the build's state,
# and in the master's log).  A fourth worker start builds nothing.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
STEPS=$TRASH/steps # one line per step started: the step's shell pid
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
-- a lost worker's builds end RETRY at once: this test is about workers
-- that die, not ones that come back (the default 60 s hold is t1330's)
workers_reattach_grace = 0
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = {
  shell { name = "long", command = "echo \$\$ >> '$STEPS'; exec sleep 300" },
} }
builder { name = "q", workers = { "w1" }, steps = { shell { command = "true" } } }
LUA
printf 'w1-secret' > "$M/secrets/w1"
: > "$STEPS"

check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
br=$(force b)
check "build request created ($br)" [ -n "$br" ]

request_queued() { [ "$(api "buildrequests/$1" | jpy 'd["buildrequests"][0]["complete"]')" = false ]; }
nsteps() { wc -l < "$STEPS" | tr -d ' '; }
# kill the step's orphaned sleep too (the worker's child outlives a SIGKILL)
kill_steps() { while read -r p; do kill -KILL "$p" 2>/dev/null; done < "$STEPS"; }
trap 'kill_steps; e2e_cleanup' EXIT

for n in 1 2 3; do
    check "attempt $n: the step runs" wait_for 60 sh -c "[ \$(wc -l < '$STEPS') -ge $n ]"
    check "attempt $n: the request has $n build(s)" request_has_builds "$br" "$n"
    b=$(build_of_request "$br")
    kill -KILL "$WORKER_PID"
    wait "$WORKER_PID" 2>/dev/null
    kill_steps
    if [ $n -lt 3 ]; then
        check "attempt $n: build $b ends RETRY" wait_for 60 build_results_is "$b" 5
        check "attempt $n: the request is queued again" wait_for 60 request_queued "$br"
        start_worker "$TRASH/w1" w1 "$M/secrets/w1"
        check "attempt $n: the worker is back" wait_for 60 worker_connected w1
    else
        check "attempt $n: build $b ends EXCEPTION" wait_for 60 build_results_is "$b" 4
    fi
done

check "the request is complete" wait_for 60 request_done "$br"
check "the request ends EXCEPTION" [ "$(api "buildrequests/$br" | jpy 'd["buildrequests"][0]["results"]')" = 4 ]
st=$(build_field "$(build_of_request "$br")" state_string)
diag "last build's state: $st"
check "the last build's state says why" sh -c "printf '%s' \"\$1\" | grep -q 'worker lost 3 times: giving up'" _ "$st"
check "the master logs that it gave up" grep -q "lost its worker 3 times: giving up" "$M/master.log"

# a fourth worker start: nothing more is built for this request
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "the worker attaches a fourth time" wait_for 60 worker_connected w1
# a quick build, run to completion, orders the check: the engine has
# looked at the queue with the worker attached, and this is all it ran
qr=$(force q)
check "a new request builds on the fourth worker" wait_for 60 request_done "$qr"
check "no fourth build of the given-up request" request_has_builds "$br" 3
check "no step started after the third loss" [ "$(nsteps)" = 3 ]
check "no request is left queued" [ "$(api 'buildrequests?complete=false' | jpy 'd["meta"]["total"]')" = 0 ]
done_testing
