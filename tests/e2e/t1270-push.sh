#!/bin/bash
# asan-too
# Results pushed from outside (slice "push", docs/PUSH.md) on a real master:
# a bag POSTed with curl and a push token is answered 202 with a status URL,
# stored as a build of the external builder push:PACKAGE with its steps,
# logs and client properties; partial results (update token, steps, finish);
# the caps (413 body/steps/log, 429 a minute and stored results), malformed
# bags (400, nothing stored), a revoked token (401), a wrong scope (403), and
# the check and latest queries.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
push = { max_body_bytes = 65536, max_steps = 5, max_log_bytes = 4096, per_minute = 40,
         max_results = 12, open_timeout = 8 }
LUA
printf sekrit > "$M/secrets/hook"
check "master starts" start_master "$M"
export KILN_CLIENT_CONF=$TRASH/none.conf
unset KILN_TOKEN
PT=$("$KILN" token create --url "$URL" --token sekrit --name pusher --scope push 2>/dev/null)
FT=$("$KILN" token create --url "$URL" --token sekrit --name forcer --scope force 2>/dev/null)
RT=$("$KILN" token create --url "$URL" --token sekrit --name gone --scope push 2>/dev/null)
check "tokens made" [ -n "$PT" -a -n "$FT" -a -n "$RT" ]

# post PATH TOKEN BODY [EXTRA CURL ARGS]: status code; the body in $TRASH/body
post() { p=$1 t=$2 b=$3; shift 3
    curl -s -o "$TRASH/body" -D "$TRASH/hdr" -w '%{http_code}' --max-time 10 \
        -H "Authorization: Bearer $t" -H 'Content-Type: application/json' "$@" --data-binary "$b" "$URL/api/v2/$p"; }
body() { jpy "$1" < "$TRASH/body"; }
builds_total() { api builds | jpy 'd["meta"]["total"]'; }
push_state_is() { [ "$(api "push/$1" | jpy 'd["state"]')" = "$2" ]; }

bag='{"client": {"package": "kiln", "host": "ci-arm", "arch": "aarch64", "tags": ["nightly", "arm"], "python": "3.11"},
 "revision": "abc123",
 "steps": [{"name": "configure", "status": 0, "stdout": "checking...\nok\n", "stderr": "", "cmd": ["./configure", "--prefix=/usr"], "started_at": 1700000000, "finished_at": 1700000010},
           {"name": "test", "status": 1, "stdout": "1 passed\n", "stderr": "1 failed\n", "cmd": "make check", "started_at": 1700000010, "finished_at": 1700000070}]}'
code=$(post push "$PT" "$bag")
check "push: 202 ($code $(cat "$TRASH/body"))" [ "$code" = 202 ]
ID=$(body 'd["pushid"]')
check "push: a status URL" [ "$(body 'd["status_url"]')" = "/api/v2/push/$ID" ]
check "push: stored (status URL)" wait_for 60 push_state_is "$ID" stored
api "push/$ID" > "$TRASH/st"
BID=$(jpy 'd["buildid"]' < "$TRASH/st")
check "status: build, 2 steps, failure (results 2)" [ "$(jpy '[d["nsteps"], d["results"], d["finished"], d["package"], d["host"], d["tags"]]' < "$TRASH/st")" = '[2, 2, true, "kiln", "ci-arm", ["nightly", "arm"]]' ]
api "builders?name=push:kiln" > "$TRASH/b"
check "external builder push:kiln, tagged external" [ "$(jpy '[d["builders"][0]["name"], "external" in d["builders"][0]["tags"]]' < "$TRASH/b")" = '["push:kiln", true]' ]
check "in /api/v2/builds: complete, results 2" [ "$(api "builds/$BID" | jpy '[d["builds"][0]["complete"], d["builds"][0]["results"]]')" = '[true, 2]' ]
check "steps: configure success, test failure" [ "$(api "builds/$BID/steps" | jpy '[[s["name"], s["results"]] for s in d["steps"]]')" = '[["configure", 0], ["test", 2]]' ]
log=$(log_text "$BID" test)
check "test's log: cmd (h), stdout (o), stderr (e) ($log)" [ "$log" = "$(printf 'hmake check\no1 passed\ne1 failed\n')" ]
check "configure's log: argv joined" sh -c "echo \"\$0\" | head -1 | grep -qx 'h./configure --prefix=/usr'" "$(log_text "$BID" configure)"
props=$(api "builds/$BID?property=*" | jpy 'd["builds"][0]["properties"]')
check "client info as properties (source push)" sh -c "echo '$props' | grep -q '\"host\": \[\"ci-arm\", \"push\"\]' && echo '$props' | grep -q '\"python\": \[\"3.11\", \"push\"\]' && echo '$props' | grep -q '\"revision\": \[\"abc123\", \"push\"\]'"

# ---- partial results ----------------------------------------------------------------------------
code=$(post push "$PT" '{"client": {"package": "kiln", "host": "ci-x86"}, "finished": false, "steps": [{"name": "build", "status": "success", "stdout": "built\n"}]}')
check "open push: 202 with an update token" sh -c "[ $code = 202 ] && echo \"\$0\" | grep -q '^kpu_'" "$(body 'd["update_token"]')"
P2=$(body 'd["pushid"]'); UT=$(body 'd["update_token"]')
check "open push stored, not finished" wait_for 60 sh -c "[ \"\$(curl -s $URL/api/v2/push/$P2 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"state\"], d[\"finished\"])')\" = 'stored False' ]"
B2=$(api "push/$P2" | jpy 'd["buildid"]')
check "its build is running" [ "$(build_field "$B2" complete)" = false ]
code=$(post "push/$P2/steps" "$PT" '{"steps": [{"name": "test", "status": 0}]}' -H "X-Kiln-Update-Token: kpu_wrong")
check "append with a wrong update token: 401 ($code)" [ "$code" = 401 ]
code=$(post "push/$P2/steps" "$PT" "{\"update_token\": \"$UT\", \"steps\": [{\"name\": \"test\", \"status\": 0, \"stdout\": \"ok\\n\"}]}")
check "append: 202 ($code $(cat "$TRASH/body"))" [ "$code" = 202 ]
check "the appended step appears" wait_for 60 sh -c "[ \"\$(curl -s $URL/api/v2/builds/$B2/steps | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"steps\"]))')\" = 2 ]"
code=$(post "push/$P2/finish" "$PT" '' -H "X-Kiln-Update-Token: $UT")
check "finish: 202 ($code $(cat "$TRASH/body"))" [ "$code" = 202 ]
check "finished: build complete, success" wait_for 60 build_results_is "$B2" 0
code=$(post "push/$P2/steps" "$PT" '{"steps": []}' -H "X-Kiln-Update-Token: $UT")
check "append after finish: 409 ($code)" [ "$code" = 409 ]

# ---- an open push left idle past push.open_timeout (8 s) is finished as abandoned --------------
code=$(post push "$PT" '{"client": {"package": "kiln", "host": "idle"}, "finished": false, "steps": [{"name": "a", "status": 0}]}')
P3=$(body 'd["pushid"]'); UT3=$(body 'd["update_token"]')
check "idle push opened ($code)" [ "$code" = 202 ]
check "idle push stored" wait_for 60 push_state_is "$P3" stored
B3=$(api "push/$P3" | jpy 'd["buildid"]')
check "abandoned after 8 s: build finished with exception (4)" wait_for 60 build_results_is "$B3" 4
check "its state says so" [ "$(build_field "$B3" state_string)" = "abandoned: no update for 8 s" ]
code=$(post "push/$P3/steps" "$PT" "{\"update_token\": \"$UT3\", \"steps\": []}")
check "then it takes no more steps: 409 ($code)" [ "$code" = 409 ]

# ---- refusals: nothing stored -------------------------------------------------------------------
n0=$(builds_total)
code=$(post push "$PT" '{"client": {"package": "kiln"}, "steps": []}')
check "no host: 400 naming it ($(cat "$TRASH/body"))" sh -c "[ $code = 400 ] && grep -q 'client.host' $TRASH/body"
code=$(post push "$PT" '{"client": {"package": "kiln", "host": "h"}, "steps": [{"name": "a", "status": 0}, {"name": "b", "status": "maybe"}]}')
check "bad status in the 2nd step: 400 naming steps[1].status" sh -c "[ $code = 400 ] && grep -q 'steps\[1\].status' $TRASH/body"
code=$(post push "$PT" '{"client": ')
check "not JSON: 400" [ "$code" = 400 ]
code=$(post push "$PT" '{"client": {"package": "kiln", "host": "h"}, "stesp": []}')
check "unknown key: 400 naming it" sh -c "[ $code = 400 ] && grep -q stesp $TRASH/body"
big=$(python3 -c 'print("x" * 70000)')
code=$(post push "$PT" "{\"client\": {\"package\": \"kiln\", \"host\": \"h\"}, \"steps\": [{\"name\": \"a\", \"status\": 0, \"stdout\": \"$big\"}]}")
check "body over push.max_body_bytes: 413 ($code)" [ "$code" = 413 ]
big=$(python3 -c 'print("x" * 5000)')
code=$(post push "$PT" "{\"client\": {\"package\": \"kiln\", \"host\": \"h\"}, \"steps\": [{\"name\": \"a\", \"status\": 0, \"stdout\": \"$big\"}]}")
check "a log over push.max_log_bytes: 413 naming it" sh -c "[ $code = 413 ] && grep -q 'steps\[0\].stdout' $TRASH/body"
six=$(python3 -c 'import json; print(json.dumps({"client": {"package": "kiln", "host": "h"}, "steps": [{"name": "s%d" % i, "status": 0} for i in range(6)]}))')
code=$(post push "$PT" "$six")
check "6 steps over push.max_steps: 413" [ "$code" = 413 ]
code=$(post push "$FT" "$bag")
check "a token without push: 403 ($(cat "$TRASH/body"))" sh -c "[ $code = 403 ] && grep -q 'lacks the scope push' $TRASH/body"
"$KILN" token revoke --url "$URL" --token sekrit 3 >/dev/null 2>&1
code=$(post push "$RT" "$bag")
check "a revoked token: 401 ($(cat "$TRASH/body"))" sh -c "[ $code = 401 ] && grep -q revoked $TRASH/body"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$bag" "$URL/api/v2/push")
check "no token: 401" [ "$code" = 401 ]
check "nothing of those was stored" [ "$(builds_total)" = "$n0" ]

# ---- queries ------------------------------------------------------------------------------------
api "push/latest?package=kiln" > "$TRASH/l"
check "latest per package and host: ci-arm, ci-x86, idle" [ "$(jpy '[[p["host"], p["pushid"]] for p in d["pushes"]]' < "$TRASH/l")" = "[[\"ci-arm\", $ID], [\"ci-x86\", $P2], [\"idle\", $P3]]" ]
check "latest by tag: only ci-arm" [ "$(api 'push/latest?tag=nightly' | jpy '[p["host"] for p in d["pushes"]]')" = '["ci-arm"]' ]
check "check, same revision: no build" [ "$(api 'push/check?package=kiln&host=ci-arm&revision=abc123' | jpy 'd["should_build"]')" = false ]
check "check, another revision: build" [ "$(api 'push/check?package=kiln&host=ci-arm&revision=def456' | jpy 'd["should_build"]')" = true ]
check "check, max_age 3600: no build" [ "$(api 'push/check?package=kiln&host=ci-x86&max_age=3600' | jpy 'd["should_build"]')" = false ]
check "check, unknown host: build" [ "$(api 'push/check?package=kiln&host=nope&max_age=3600' | jpy 'd["should_build"]')" = true ]
check "check without host: 400" [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v2/push/check?package=kiln")" = 400 ]
check "unknown push: 404" [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v2/push/99999")" = 404 ]

# ---- caps: stored results per token and package, pushes a minute ------------------------------
small='{"client": {"package": "small", "host": "h"}, "steps": [{"name": "a", "status": 0}]}'
codes=""
for i in $(seq 1 13); do codes="$codes $(post push "$PT" "$small")"; done
check "the 13th result of package small: 429 (max_results 12: refused, not pruned) ($codes)" sh -c "[ '$codes' = '$(printf ' 202%.0s' $(seq 1 12)) 429' ] && grep -q 'nothing is pruned' $TRASH/body"
codes=""
for i in $(seq 1 30); do codes="$codes $(post push "$PT" "{\"client\": {\"package\": \"r$i\", \"host\": \"h\"}}")"; done
check "past push.per_minute (40): 429 with Retry-After" sh -c "echo '$codes' | grep -q 429 && grep -qi '^retry-after: [0-9]' $TRASH/hdr && grep -q 'push.per_minute' $TRASH/body"

check "master log: stored lines" grep -q "push $ID stored: package=kiln host=ci-arm" "$M/master.log"
check "no token text in master.log" sh -c "! grep -q '$PT' '$M/master.log' && ! grep -q '$UT' '$M/master.log'"
check "master still up" kill -0 "$MASTER_PID"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
