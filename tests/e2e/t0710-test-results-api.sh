#!/bin/bash
# asan-too
# The test-result resources on a live master (migration 0004 applied at
# start): Buildbot's test_result_sets and results routes and Kiln's
# test_history answer after a real build, with their errors.  The `test`
# step that fills them is not wired yet: the rows themselves, their shapes,
# paging and the history are checked by tests/unit/test-testingest.c on a
# real http_server.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "unit", workers = { "w1" }, steps = {
  shell { name = "tests", command = "echo 1..1; echo ok 1 - fine" },
} }
force_scheduler { name = "force", builders = { "unit" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"

check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
br=$(force unit)
check "request completes" wait_for 30 request_done "$br"
b=$(build_of_request "$br")
step=$(api "builds/$b/steps/tests" | jpy 'd["steps"][0]["stepid"]')
check "the build has its step ($step)" [ -n "$step" ]

n_of() { api "$1" | jpy "len(d['$2'])"; }
check "test_result_sets: empty list" [ "$(n_of test_result_sets test_result_sets)" = 0 ]
check "builds/N/test_result_sets: empty list" [ "$(n_of "builds/$b/test_result_sets" test_result_sets)" = 0 ]
check "steps/N/test_result_sets: empty list" [ "$(n_of "steps/$step/test_result_sets" test_result_sets)" = 0 ]
check "builders/NAME/test_result_sets: empty list" [ "$(n_of builders/unit/test_result_sets test_result_sets)" = 0 ]
check "test_result_sets/N/results of no set: []" [ "$(n_of test_result_sets/1/results test_results)" = 0 ]
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/api/v2/$1"; }
check "test_result_sets/N of no set: 404" [ "$(code test_result_sets/1)" = 404 ]
check "an unknown filter field: 400" [ "$(code 'test_result_sets?nosuch=1')" = 400 ]
check "builders/NAME/test_result_sets of no builder: 404" [ "$(code builders/nosuch/test_result_sets)" = 404 ]
h=$(api "builders/unit/test_history?test_name=fine")
check "test_history of an unseen test: results_seen 0" \
    [ "$(jpy 'd["test_history"][0]["results_seen"]' <<<"$h")" = 0 ]
check "test_history of an unseen test: not flaky" \
    [ "$(jpy 'd["test_history"][0]["flaky"]' <<<"$h")" = false ]
check "test_history without test_name: 400" [ "$(code builders/unit/test_history)" = 400 ]
check "test_history of no builder: 404" [ "$(code 'builders/nosuch/test_history?test_name=x')" = 404 ]
check "master still serves" [ "$(n_of builders builders)" = 1 ]
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
