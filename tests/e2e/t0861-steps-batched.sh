#!/bin/bash
# Steps and their logs as the database writes them in batches (group commit
# keeps a batch open across loop turns; slice "perfsteps2"): while a build
# runs, GET /api/v2 shows each step as it runs (started, not complete, its
# stdio log open with the output so far) and each finished step complete with
# its log; a master killed with SIGKILL while a step runs leaves a consistent
# database: after a restart the build is finished (retry), its request is
# built again to success, and no step, log or chunk row is left without its
# parent, nor a step or log of a finished build left running.
. "$(dirname "$0")/lib.sh"

HP=$(free_port); WP=$(free_port)
M=$TRASH/master
FIFO=$TRASH/fifo
mkfifo "$FIFO"
# "wait" blocks until the test writes a line into the fifo (bounded: 60 s)
new_master "$M" <<LUA
http = { listen = "127.0.0.1:$HP" }
workers_listen = "127.0.0.1:$WP"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = {
  shell { name = "one", command = interpolate("echo one-%(prop:buildnumber)s") },
  shell { name = "wait", command = "echo waiting; timeout 60 sh -c 'read x < $FIFO'; echo released" },
  shell { name = "after", command = "echo after" },
} }
force_scheduler { name = "force", builders = { "b" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"

sql() { db_sql "$M" "$1"; }
release() { timeout 30 sh -c "echo go > '$FIFO'"; }
# step_is BUILD NAME EXPR: the step's API row satisfies the Python EXPR on s
step_is() { [ "$(api "builds/$1/steps/$2" 2>/dev/null | jpy "(s := d['steps'][0]) and bool($3)" 2>/dev/null)" = true ]; }
# log_has BUILD NAME TEXT: the step's stdio log contains TEXT
log_has() {
    sid=$(api "builds/$1/steps/$2" | jpy 'd["steps"][0]["stepid"]') || return 1
    lid=$(api "steps/$sid/logs/stdio" | jpy 'd["logs"][0]["logid"]') || return 1
    api "logs/$lid/contents" | jpy '"".join(c["content"] for c in d["logchunks"])' | grep "$3" >/dev/null
}
log_complete() {
    sid=$(api "builds/$1/steps/$2" | jpy 'd["steps"][0]["stepid"]') || return 1
    [ "$(api "steps/$sid/logs/stdio" | jpy 'd["logs"][0]["complete"]')" = "$3" ]
}

check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

# 1. the API while the build runs
BR=$(force b)
check "a build starts" wait_for 60 sh -c "[ -n \"\$(curl -s '$URL/api/v2/builds?buildrequestid=$BR' | /usr/bin/python3 -c 'import json,sys; b=json.load(sys.stdin)[\"builds\"]; print(b[0][\"buildid\"] if b else \"\")')\" ]"
B=$(build_of_request "$BR")
check "the running step shows in the API: started, not complete" \
    wait_for 30 step_is "$B" wait "s['started_at'] and s['complete'] is False and s['results'] is None"
check "... its stdio log is there, open, with the output so far" \
    wait_for 30 log_has "$B" wait waiting
check "... the log is not complete" log_complete "$B" wait false
check "the step before it is complete, with its log" \
    step_is "$B" one "s['complete'] is True and s['results'] == 0"
check "... its output in its log, the log complete" \
    sh -c "$(declare -f api jpy log_has log_complete); URL='$URL'; log_has '$B' one one-1 && log_complete '$B' one true"
check "the step after it is not there yet" \
    [ "$(api "builds/$B/steps" | jpy '[s["name"] for s in d["steps"]]')" = '["worker_preparation", "one", "wait"]' ]
check "release the step" release
check "the build ends" wait_for 30 request_done "$BR"
check "... successful" build_results_is "$B" 0
check "every step complete, each with its log complete" \
    [ "$(api "builds/$B/steps" | jpy "all(s['complete'] and s['results'] == 0 for s in d['steps']) and [s['name'] for s in d['steps']] == ['worker_preparation', 'one', 'wait', 'after']")" = true ]
check "... the last step's output stored" log_has "$B" after after

# 2. SIGKILL while a step runs
BR2=$(force b)
check "a second build starts" wait_for 60 sh -c "[ \"\$(curl -s '$URL/api/v2/builds?buildrequestid=$BR2' | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"builds\"]))')\" = 1 ]"
B2=$(build_of_request "$BR2")
check "... and runs its waiting step" \
    wait_for 30 step_is "$B2" wait "s['started_at'] and s['complete'] is False"
check "... whose output is stored" wait_for 30 log_has "$B2" wait waiting
kill -KILL "$MASTER_PID" 2>/dev/null
wait "$MASTER_PID" 2>/dev/null
# the killed master's step still reads the fifo on the worker: let it end
release &
REL=$!
check "master restarts" start_master "$M"
check "the killed build is finished (retry)" wait_for 30 build_results_is "$B2" 5
check "... none of its steps or logs left running" \
    [ "$(sql "SELECT COUNT(*) FROM steps s WHERE s.buildid = $B2 AND s.started_at IS NOT NULL AND s.complete = 0")" = 0 ]
check "the worker attaches again" wait_for 30 worker_connected w1
check "the request is built again" wait_for 30 request_has_builds "$BR2" 2
B3=$(build_of_request "$BR2")
check "... its waiting step runs" wait_for 30 step_is "$B3" wait "s['started_at'] and s['complete'] is False"
wait "$REL" 2>/dev/null
check "release it" release
check "the retried request ends" wait_for 30 request_done "$BR2"
check "... with a successful build" build_results_is "$B3" 0
check "no step without its build" [ "$(sql "SELECT COUNT(*) FROM steps WHERE buildid NOT IN (SELECT id FROM builds)")" = 0 ]
check "no log without its step" [ "$(sql "SELECT COUNT(*) FROM logs WHERE stepid NOT IN (SELECT id FROM steps)")" = 0 ]
check "no chunk without its log" [ "$(sql "SELECT COUNT(*) FROM logchunks WHERE logid NOT IN (SELECT id FROM logs)")" = 0 ]
check "no step of a finished build left running" \
    [ "$(sql "SELECT COUNT(*) FROM steps s JOIN builds b ON b.id = s.buildid WHERE b.complete = 1 AND s.started_at IS NOT NULL AND s.complete = 0")" = 0 ]
check "no log of a finished build left open" \
    [ "$(sql "SELECT COUNT(*) FROM logs l JOIN steps s ON s.id = l.stepid JOIN builds b ON b.id = s.buildid WHERE b.complete = 1 AND l.complete = 0")" = 0 ]
check "the killed build's waiting step: finished as retry, its output kept" \
    [ "$(sql "SELECT complete, results FROM steps WHERE buildid = $B2 AND name = 'wait'")" = "1|5" ]
# (PostgreSQL checks its foreign keys at each write: SQLite's are asked here)
check "the database passes its integrity and foreign key checks" \
    eval 'db_is_pg "$M" || [ "$(sql "PRAGMA integrity_check")" = ok -a -z "$(sql "PRAGMA foreign_key_check")" ]' 
check "each step number and name once per build" \
    [ "$(sql "SELECT COUNT(*) FROM (SELECT buildid, number FROM steps GROUP BY buildid, number HAVING COUNT(*) > 1) AS d")" = 0 ]

check "no errors or sanitizer reports in the log" sh -c "! grep -qE 'AddressSanitizer|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
