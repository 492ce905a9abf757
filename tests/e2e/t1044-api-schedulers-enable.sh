#!/bin/bash
# asan-too
# /api/v2/schedulers (Buildbot's shape plus kind and builder_names) and the
# JSON-RPC "enable" with its effect, on a real master and kiln-worker timed
# with the test clock (KILN_TEST_CLOCK=1): a disabled periodic scheduler
# builds nothing when its period passes, even after a master restart (the
# flag is stored); enabled again it builds.  A disabled force scheduler
# refuses to force; a disabled single_branch ignores a change (the buildset
# made once it is enabled again holds only the later change).  And
# /changes/N/builds: the builds made from a change sent with `kiln
# sendchange`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-build.sh"

export KILN_TEST_CLOCK=1
M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "hello", workers = { "w1" }, steps = { shell { command = "echo hello" } } }
builder { name = "tick", workers = { "w1" }, steps = { shell { command = "true" } } }
periodic { name = "every", builders = { "tick" }, period = 600 }
force_scheduler { name = "force", builders = { "hello" } }
single_branch { name = "sb", builders = { "hello" }, change_filter = { branch = "main" } }
LUA
printf 'hooktoken' > "$M/secrets/hook"
printf 'secret-%s' "$$" > "$M/secrets/w1"
start_master_w1 "$M"

export KILN_CLIENT_CONF=$TRASH/none.conf
unset KILN_TOKEN KILN_URL
send() { "$KILN" sendchange --master "$URL" --token hooktoken --branch main "$@" >/dev/null; }
advance() { rpc _test/clock "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"advance\",\"params\":{\"seconds\":$1}}" | jpy 'd["result"]["now"]' >/dev/null; }
enable() { # ID|NAME true|false: prints the HTTP status
    curl -sS -o "$TRASH/enable.out" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"enable\",\"params\":{\"enabled\":$2}}" \
        "$URL/api/v2/schedulers/$1"
}
# buildsets whose reason names scheduler $1, oldest first
of_sched() { api 'buildsets?order=bsid' | jpy "[b for b in d['buildsets'] if \"named '$1'\" in b['reason']]"; }
nbs() { of_sched "$1" | jpy 'len(d)'; }
nbs_is() { [ "$(nbs "$1")" = "$2" ]; }
enabled_of() { api "schedulers/$1" | jpy 'd["schedulers"][0]["enabled"]'; }

out=$(api schedulers)
check "three schedulers in Buildbot's shape" /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
s = d["schedulers"]
assert d["meta"]["total"] == 3, d
assert [x["name"] for x in s] == ["every", "force", "sb"], s
assert [x["schedulerid"] for x in s] == [1, 2, 3], s
assert [x["kind"] for x in s] == ["periodic", "force_scheduler", "single_branch"], s
assert all(x["enabled"] is True for x in s), s
assert all(x["master"]["name"] and x["master"]["active"] for x in s), s
assert s[0]["builder_names"] == ["tick"], s
' "$out"
check "/schedulers/2 is force" [ "$(api schedulers/2 | jpy 'd["schedulers"][0]["name"]')" = force ]
check "/schedulers/9 is 404" [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v2/schedulers/9")" = 404 ]

# periodic: runs at start, then every 600 s of the test clock
check "the periodic scheduler runs at start" wait_for 60 nbs_is every 1

# force: refused while disabled
check "disable the force scheduler" [ "$(enable force false)" = 200 ]
bid=$(api builders/hello | jpy 'd["builders"][0]["builderid"]')
code=$(curl -sS -o "$TRASH/force.out" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":$bid}}" \
    "$URL/api/v2/forceschedulers/force")
check "a disabled force scheduler refuses ($code: $(cat "$TRASH/force.out"))" \
    sh -c "[ $code = 400 ] && grep -q disabled '$TRASH/force.out'"
check "no forced buildset was made" [ "$(api buildsets | jpy 'len([b for b in d["buildsets"] if "forced" in b["reason"]])')" = 0 ]
check "enable the force scheduler" [ "$(enable force true)" = 200 ]
br=$(force hello)
check "enabled, it forces a build" wait_for 60 request_done "$br"

# single_branch: a change while disabled is ignored
check "disable sb" [ "$(enable sb false)" = 200 ]
check "change one sent while sb is disabled" send --who "Ann <ann@example.org>" --revision aaa111 -c "ignored"
check "enable sb" [ "$(enable sb true)" = 200 ]
check "change two sent" send --who "Bo <bo@example.org>" --revision bbb222 -c "built" a.c
check "sb builds once" wait_for 60 nbs_is sb 1
bs=$(of_sched sb | jpy 'd[0]["bsid"]')
check "its buildset holds change two only" [ "$(api "changes?bsid=$bs" | jpy '[c["revision"] for c in d["changes"]]')" = '["bbb222"]' ]
check "one change per revision stored" [ "$(api changes | jpy 'len(d["changes"])')" = 2 ]

# /changes/N/builds
c1=$(api 'changes?revision=aaa111' | jpy 'd["changes"][0]["changeid"]')
c2=$(api 'changes?revision=bbb222' | jpy 'd["changes"][0]["changeid"]')
br=$(api "buildrequests?buildsetid=$bs" | jpy 'd["buildrequests"][0]["buildrequestid"]')
check "the change's request completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "/changes/$c2/builds is its build" [ "$(api "changes/$c2/builds" | jpy '[x["buildid"] for x in d["builds"]]')" = "[$b]" ]
check "/changes/$c1/builds is empty" [ "$(api "changes/$c1/builds" | jpy 'len(d["builds"])')" = 0 ]

check "bad enable params: 400" [ "$(enable sb '"no"')" = 400 ]
check "enable of an unknown scheduler: 404" [ "$(enable nosuch true)" = 404 ]

# periodic (last: the restart leaves the worker behind, its master port changes)
advance 600
check "... and after its period" nbs_is every 2
check "disable it (by id)" [ "$(enable 1 false)" = 200 ]
check "the API says disabled" [ "$(enabled_of every)" = false ]
advance 600
check "a disabled periodic scheduler builds nothing" nbs_is every 2
stop_pid "$MASTER_PID"
check "master restarts" start_master "$M"
check "still disabled after the restart" [ "$(enabled_of every)" = false ]
advance 600
check "... and still builds nothing" nbs_is every 2
check "enable it again (by name)" [ "$(enable every true)" = 200 ]
advance 600
check "enabled again, it builds" nbs_is every 3

done_testing
