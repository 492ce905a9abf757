#!/bin/bash
# asan-too
# Retention (slice "retention"): with retention = { builds = { keep_days,
# keep_per_builder }, logs = { keep_days, success_keep_days } } and the
# test clock (KILN_TEST_CLOCK=1) moved forward, the master purges: builds
# past the count per builder, success logs sooner than failure logs (the
# log row stays, content_removed, no lines), then whole builds by age (404
# in the API with their steps, request and buildset; artifact files gone);
# a running build is never purged; no id in the API answers dangles; the
# purge is counted in /metrics and logged.  Bad settings are config errors
# naming the key.
. "$(dirname "$0")/lib.sh"
require_cmd curl

M=$TRASH/master
W=$TRASH/w1
GO=$TRASH/go
export KILN_TEST_CLOCK=1

# ---- config errors name the key and the line
mkdir -p "$TRASH/bad/secrets" && echo pw > "$TRASH/bad/secrets/w"
printf 'worker { name = "w", password = secret("w") }\nretention = { bilds = { keep_days = 1 } }\n' > "$TRASH/bad/master.lua"
out=$("$KILN" checkconfig "$TRASH/bad" 2>&1)
check "an unknown key is an error naming it ($out)" grep -q "master.lua:2:.*bilds" <<<"$out"
printf 'worker { name = "w", password = secret("w") }\n\nretention = { logs = { keep_days = -3 } }\n' > "$TRASH/bad/master.lua"
out=$("$KILN" checkconfig "$TRASH/bad" 2>&1)
check "a bad value is an error naming it ($out)" grep -q "master.lua:3:.*retention.logs: 'keep_days'" <<<"$out"
printf 'worker { name = "w", password = secret("w") }\nretention = { logs = { keep_days = 2, success_keep_days = 3 } }\n' > "$TRASH/bad/master.lua"
out=$("$KILN" checkconfig "$TRASH/bad" 2>&1)
check "success_keep_days above keep_days is refused ($out)" grep -q "success_keep_days" <<<"$out"

new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
retention = {
  builds = { keep_days = 10, keep_per_builder = 3 },
  logs = { keep_days = 5, success_keep_days = 2 },
  interval = 1,
}
builder { name = "ok", workers = { "w1" }, steps = {
  shell { command = "for i in 1 2 3 4 5; do echo line \$i; done; head -c 2000 /dev/urandom > a.bin" },
  file_upload { workersrc = "a.bin", masterdest = "a.bin" },
} }
builder { name = "bad", workers = { "w1" }, steps = {
  shell { command = "echo failing; exit 1" },
} }
builder { name = "slow", workers = { "w1" }, steps = {
  shell { command = "while [ ! -e '$GO' ]; do sleep 0.1; done; echo released" },
} }
LUA
printf 'ret-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$W" w1 "$M/secrets/w1"
check "kiln-worker attaches" wait_for 30 worker_connected w1

status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/api/v2/$1"; }
gone() { [ "$(status_of "$1")" = 404 ]; }
run() { local br; br=$(force "$1") || return 1; wait_for 90 request_done "$br" || return 1; build_of_request "$br"; }
advance() { rpc _test/clock "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"advance\",\"params\":{\"seconds\":$1}}" >/dev/null; }

logid_of() { local sid; sid=$(api "builds/$1/steps/1" | jpy 'd["steps"][0]["stepid"]') && api "steps/$sid/logs/stdio" | jpy 'd["logs"][0]["logid"]'; }
log_removed() { [ "$(api "logs/$1" | jpy 'd["logs"][0]["content_removed"]')" = true ]; }
lines_of() { api "logs/$1/contents" | jpy 'sum(c["content"].count("\n") for c in d["logchunks"])'; }

f1=$(run bad)
check "the failing build fails" build_results_is "$f1" 2
b1=$(run ok); b1_br=$(build_field "$b1" buildrequestid); b1_bs=$(api "buildrequests/$b1_br" | jpy 'd["buildrequests"][0]["buildsetid"]')
b1_step=$(api "builds/$b1/steps/1" | jpy 'd["steps"][0]["stepid"]'); b1_log=$(logid_of "$b1")
check "build 1 succeeds" build_results_is "$b1" 0
check "build 1 stored an artifact file" test -n "$(ls "$M/artifacts/$b1" 2>/dev/null)"
b2=$(run ok); b3=$(run ok)
check "nothing is purged while 3 builds of 'ok' are kept" [ "$(status_of "builds/$b1")" = 200 ]
b4=$(run ok)

# ---- by count per builder
check "the 4th build of 'ok' purges the oldest (404)" wait_for 30 gone "builds/$b1"
check "its steps go" gone "steps/$b1_step"
check "its logs go" gone "logs/$b1_log"
check "its build request goes" gone "buildrequests/$b1_br"
check "its buildset goes" gone "buildsets/$b1_bs"
check "its artifact files go" wait_for 20 test ! -e "$M/artifacts/$b1"
check "builds 2-4 stay" sh -c "[ $(status_of "builds/$b2") = 200 ] && [ $(status_of "builds/$b3") = 200 ] && [ $(status_of "builds/$b4") = 200 ]"
check "the failing build of another builder stays" [ "$(status_of "builds/$f1")" = 200 ]

# ---- a running build
br_s=$(force slow)
started() { [ -n "$(build_of_request "$br_s")" ]; }
check "the slow build starts" wait_for 60 started
s1=$(build_of_request "$br_s")

# ---- logs: success ones sooner
lb2=$(logid_of "$b2"); lf1=$(logid_of "$f1")
n2=$(api "logs/$lb2" | jpy 'd["logs"][0]["num_lines"]')
check "build 2's log has its lines ($n2)" [ "$n2" -ge 5 ]
check "all of them readable" [ "$(lines_of "$lb2")" = "$n2" ]
advance $((3 * 86400))
check "3 days on, a success log's content is removed" wait_for 30 log_removed "$lb2"
check "the log row stays with num_lines" [ "$(api "logs/$lb2" | jpy 'd["logs"][0]["num_lines"]')" = "$n2" ]
check "its contents answer no lines" [ "$(lines_of "$lb2")" = 0 ]
check "its raw download is empty" [ "$(curl -s --max-time 10 "$URL/api/v2/logs/$lb2/raw" | wc -c)" = 0 ]
check "the build stays" [ "$(status_of "builds/$b2")" = 200 ]
check "a failure log is kept longer" [ "$(api "logs/$lf1" | jpy 'd["logs"][0]["content_removed"]')" = false ]
check "with its lines" [ "$(lines_of "$lf1")" -ge 1 ]
advance $((3 * 86400))
check "6 days on, the failure log's content goes too" wait_for 30 log_removed "$lf1"

# ---- builds by age
advance $((5 * 86400))
check "11 days on, the old builds are purged" wait_for 30 gone "builds/$b4"
check "build 2, 3 and the failing one too" sh -c "[ $(status_of "builds/$b2") = 404 ] && [ $(status_of "builds/$b3") = 404 ] && [ $(status_of "builds/$f1") = 404 ]"
check "the running build is not purged" [ "$(status_of "builds/$s1")" = 200 ]
check "and still runs" [ "$(build_field "$s1" complete)" = false ]
check "no artifact files are left" sh -c "[ -z \"\$(find '$M/artifacts' -type f 2>/dev/null)\" ]"

# ---- no dangling ids in the API
dangling=$(
  for br in $(api "builds" | jpy '" ".join(str(b["buildrequestid"]) for b in d["builds"] if b["buildrequestid"])'); do
    [ "$(status_of "buildrequests/$br")" = 200 ] || echo "buildrequest $br"
  done
  for bs in $(api "buildrequests" | jpy '" ".join(str(b["buildsetid"]) for b in d["buildrequests"])'); do
    [ "$(status_of "buildsets/$bs")" = 200 ] || echo "buildset $bs"
  done
  for b in $(api "steps" 2>/dev/null | jpy '" ".join(str(s["buildid"]) for s in d.get("steps", []))' 2>/dev/null); do
    [ "$(status_of "builds/$b")" = 200 ] || echo "build $b of a step"
  done
)
check "no id in the API points at a purged row ($dangling)" [ -z "$dangling" ]

# ---- counted and logged
met=$(curl -s --max-time 10 "$URL/metrics")
check "/metrics counts the purged builds" grep -Eq '^kiln_retention_purged_total\{kind="builds"\} ([5-9]|[1-9][0-9])' <<<"$met"
check "/metrics counts the logs" grep -Eq '^kiln_retention_purged_total\{kind="logs"\} [1-9]' <<<"$met"
check "/metrics has the longest batch" grep -q '^kiln_retention_batch_seconds_max ' <<<"$met"
check "each pass logs one line" grep -q 'retention: purged [0-9]* builds' "$M/master.log"

touch "$GO"
# finished, it is 11 days old by the test clock: the next pass may purge it at once
slow_over() { request_done "$br_s" || gone "buildrequests/$br_s"; }
check "the slow build finishes when released" wait_for 60 slow_over
check "it ended successful" grep -q "build=$s1 .*build successful" "$M/master.log"
check "no error in master.log" sh -c "! grep -E ' (error|crit) ' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
