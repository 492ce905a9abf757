#!/bin/bash
# asan-too
# A builder's own retention (issue 13): builder { retention = { builds =
# { keep_days, keep_per_builder }, logs = { success_keep_days } } } overrides
# the global retention = { } for that builder's builds only, longer or
# shorter; what it leaves out is the global setting's.  With the test clock
# (KILN_TEST_CLOCK=1) moved forward: a builder keeping more builds by count
# and for longer keeps them while the others' go; a builder with shorter
# success logs loses their content first.  A bad builder retention is a
# config error naming the builder, the key and the line.
. "$(dirname "$0")/lib.sh"
require_cmd curl

M=$TRASH/master
W=$TRASH/w1
export KILN_TEST_CLOCK=1

# ---- config errors name the builder, the key and the line
mkdir -p "$TRASH/bad/secrets" && echo pw > "$TRASH/bad/secrets/w"
printf 'worker { name = "w", password = secret("w") }\nbuilder { name = "b", workers = { "w" }, steps = { shell { command = "true" } },\n  retention = { changes = { keep_days = 1 } } }\n' > "$TRASH/bad/master.lua"
out=$("$KILN" checkconfig "$TRASH/bad" 2>&1)
check "a key a builder cannot override is an error ($out)" grep -q "master.lua:2: builder 'b': retention: unknown key 'changes'" <<<"$out"
printf 'worker { name = "w", password = secret("w") }\nbuilder { name = "b", workers = { "w" }, steps = { shell { command = "true" } },\n  retention = { builds = { keep_days = 0 } } }\n' > "$TRASH/bad/master.lua"
out=$("$KILN" checkconfig "$TRASH/bad" 2>&1)
check "a bad value is an error naming it ($out)" grep -q "master.lua:2: builder 'b': retention.builds: 'keep_days'" <<<"$out"

new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
retention = {
  builds = { keep_days = 10, keep_per_builder = 2 },
  interval = 1,
}
local steps = { shell { command = "for i in 1 2 3; do echo line \$i; done" } }
builder { name = "plain", workers = { "w1" }, steps = steps }
builder { name = "long", workers = { "w1" }, steps = steps,
  retention = { builds = { keep_days = 30, keep_per_builder = 4 } } }
builder { name = "quick", workers = { "w1" }, steps = steps,
  retention = { logs = { success_keep_days = 1 } } }
LUA
printf 'bret-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$W" w1 "$M/secrets/w1"
check "kiln-worker attaches" wait_for 30 worker_connected w1

status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/api/v2/$1"; }
gone() { [ "$(status_of "$1")" = 404 ]; }
there() { [ "$(status_of "$1")" = 200 ]; }
run() { local br; br=$(force "$1") || return 1; wait_for 90 request_done "$br" || return 1; build_of_request "$br"; }
advance() { rpc _test/clock "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"advance\",\"params\":{\"seconds\":$1}}" >/dev/null; }
logid_of() { local sid; sid=$(api "builds/$1/steps/1" | jpy 'd["steps"][0]["stepid"]') && api "steps/$sid/logs/stdio" | jpy 'd["logs"][0]["logid"]'; }
log_removed() { [ "$(api "logs/$1" | jpy 'd["logs"][0]["content_removed"]')" = true ]; }
passes() { curl -s --max-time 10 "$URL/metrics" | sed -n 's/^kiln_retention_passes_total //p'; }
# one more full pass after now (interval = 1 s)
next_pass() { local p0; p0=$(passes); wait_for 30 sh -c "[ \"\$(curl -s --max-time 10 '$URL/metrics' | sed -n 's/^kiln_retention_passes_total //p')\" -gt $((p0 + 1)) ]"; }

# ---- by count: the global 2 for plain, long's own 4
p1=$(run plain); p2=$(run plain); p3=$(run plain)
l1=$(run long); l2=$(run long); l3=$(run long)
check "plain's oldest build goes past the global count of 2" wait_for 30 gone "builds/$p1"
check "plain keeps its newest 2" sh -c "[ $(status_of "builds/$p2") = 200 ] && [ $(status_of "builds/$p3") = 200 ]"
check "a pass runs after that" next_pass
check "long keeps all 3 (its own count of 4)" sh -c "[ $(status_of "builds/$l1") = 200 ] && [ $(status_of "builds/$l2") = 200 ] && [ $(status_of "builds/$l3") = 200 ]"
l4=$(run long); l5=$(run long)
check "long's 5th build purges its oldest" wait_for 30 gone "builds/$l1"
check "long keeps 4" sh -c "[ $(status_of "builds/$l2") = 200 ] && [ $(status_of "builds/$l5") = 200 ]"

# ---- logs: quick's success logs go after 1 day, nobody else's
q1=$(run quick)
lq=$(logid_of "$q1"); lp=$(logid_of "$p3")
advance $((2 * 86400))
check "2 days on, quick's success log content is removed" wait_for 30 log_removed "$lq"
check "a pass runs after that" next_pass
check "plain's log keeps its content (no global log limit)" [ "$(api "logs/$lp" | jpy 'd["logs"][0]["content_removed"]')" = false ]
check "quick's build stays" there "builds/$q1"

# ---- by age: the global 10 days, long's own 30
advance $((9 * 86400))
check "11 days on, plain's builds are purged" wait_for 30 gone "builds/$p3"
check "and quick's (the global keep_days)" wait_for 30 gone "builds/$q1"
check "a pass runs after that" next_pass
check "long's builds stay (its own 30 days)" sh -c "[ $(status_of "builds/$l2") = 200 ] && [ $(status_of "builds/$l5") = 200 ]"
advance $((20 * 86400))
check "31 days on, long's builds go too" wait_for 30 gone "builds/$l5"
check "all of them" gone "builds/$l2"

met=$(curl -s --max-time 10 "$URL/metrics")
check "/metrics counts the purged builds" grep -Eq '^kiln_retention_purged_total\{kind="builds"\} (9|[1-9][0-9])' <<<"$met"
check "no error in master.log" sh -c "! grep -E ' (error|crit) ' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
