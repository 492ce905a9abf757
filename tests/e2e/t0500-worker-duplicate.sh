#!/bin/bash
# asan-too
# Two kiln-workers with the same name and password (Buildbot's duplicate
# worker check): the master probes the connected one with a print; while
# it answers, the newcomer is refused with a message its worker logs, and the
# first stays attached.  Once the first stops answering (SIGSTOP), the probe
# times out and the newcomer takes over.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
title = "e2e"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "ok", workers = { "w1" }, steps = {
  shell { name = "hello", command = { "sh", "-c", "echo hello" } },
} }
force_scheduler { name = "force", builders = { "ok" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"

check "master starts" start_master "$M"
start_worker "$TRASH/wa" w1 "$M/secrets/w1"
WA=$WORKER_PID
check "first worker attaches" wait_for 20 worker_connected w1
check "first worker logged its attach" wait_for 10 grep -q "worker=w1 attached" "$M/master.log"

start_worker "$TRASH/wb" w1 "$M/secrets/w1"
WB=$WORKER_PID
refusals() { grep -c "worker=w1 connected again from .*refused" "$M/master.log"; }
three_refusals() { [ "$(refusals)" -ge 3 ]; }
# the refused worker retries (about once a second): three refusals in a row
check "second worker is refused, again and again" wait_for 30 three_refusals
check "second worker logs why it was refused" \
    wait_for 10 grep -q "connection refused: worker 'w1' is already connected" "$TRASH/wb.log"
check "no connection was evicted" [ "$(grep -c 'dropping' "$M/master.log")" = 0 ]
check "no attached connection was lost" [ "$(grep -c 'worker=w1 disconnected' "$M/master.log")" = 0 ]
check "master saw one attach only" [ "$(grep -c 'worker=w1 attached' "$M/master.log")" = 1 ]
check "first worker never lost its connection" [ "$(grep -c 'connected to master' "$TRASH/wa.log")" = 1 ]
check "first worker was told of the duplicate" grep -q "master got a duplicate connection" "$TRASH/wa.log"
check "worker still shown connected" worker_connected w1

# the attached worker still runs builds
br=$(force ok)
check "a build runs on the first worker" wait_for 30 request_done "$br"
b=$(build_of_request "$br")
check "build succeeded" [ "$(build_field "$b" results)" = 0 ]

# the first worker stops answering: the newcomer's next attempt probes it,
# the probe times out (10 s) and the old connection is dropped
kill -STOP "$WA"
check "unanswered probe drops the old connection" \
    wait_for 40 grep -q "the old connection does not answer: dropping it" "$M/master.log"
two_attaches() { [ "$(grep -c 'worker=w1 attached' "$M/master.log")" -ge 2 ]; }
check "second worker attaches" wait_for 20 two_attaches
kill -CONT "$WA"
check "worker shown connected" wait_for 20 worker_connected w1

if [ "$E2E_FAILED" -ne 0 ]; then
    tail -30 "$M/master.log" | sed 's/^/# master: /'
    tail -10 "$TRASH/wa.log" | sed 's/^/# wa: /'
    tail -10 "$TRASH/wb.log" | sed 's/^/# wb: /'
fi
done_testing
