#!/bin/bash
# asan-too
# `kiln push` (slice "push", docs/CLIENT.md) against a real master: it runs
# the commands here, pushes each step as it ends (seen in the API while the
# next one still runs), finishes the push, and exits with the commands'
# status; --check asks whether a build is needed.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
LUA
printf sekrit > "$M/secrets/hook"
check "master starts" start_master "$M"
export KILN_CLIENT_CONF=$TRASH/none.conf KILN_URL=$URL
unset KILN_TOKEN
PT=$("$KILN" token create --token sekrit --name pusher --scope push 2>/dev/null)
check "push token made" [ -n "$PT" ]
export KILN_TOKEN=$PT

latest_build() { api "push/latest?package=$1&host=$2" | jpy 'd["pushes"][0]["buildid"] if d["pushes"] else ""'; }

# ---- success ------------------------------------------------------------------------------------
out=$("$KILN" push --package demo --host h1 --tag ci --revision r1 -- sh -c 'echo hello; echo warn >&2' 2>"$TRASH/err"); rc=$?
check "success: exit 0 ($rc, $(tail -1 "$TRASH/err"))" [ "$rc" = 0 ]
check "the command's output is copied ($out)" [ "$out" = hello ]
B=$(latest_build demo h1)
check "stored as a build of push:demo" [ "$(api "builds/$B" | jpy '[d["builds"][0]["complete"], d["builds"][0]["results"]]')" = '[true, 0]' ]
check "one step named after the command" [ "$(api "builds/$B/steps" | jpy '[s["name"] for s in d["steps"]]')" = '["sh"]' ]
log=$(log_text "$B" sh)
check "its log: the command, stdout, stderr ($log)" [ "$log" = "$(printf 'hsh -c echo hello; echo warn >&2\nohello\newarn\n')" ]

# ---- failure ------------------------------------------------------------------------------------
"$KILN" push --package demo --host h2 --quiet --step build -- sh -c 'echo building; exit 3' --step never -- true 2>"$TRASH/err"; rc=$?
check "failure: exit 3, the command's ($rc)" [ "$rc" = 3 ]
B=$(latest_build demo h2)
check "failed build, results 2" [ "$(build_field "$B" results)" = 2 ]
check "the step after the failure was not run" [ "$(api "builds/$B/steps" | jpy '[[s["name"], s["results"]] for s in d["steps"]]')" = '[["build", 2]]' ]
"$KILN" push --package demo --host h2 -q -- /nonexistent/cmd 2>"$TRASH/err"; rc=$?
check "a command that cannot start: exit 127 ($rc)" [ "$rc" = 127 ]

# ---- steps appear live ----------------------------------------------------------------------------
GO=$TRASH/go
"$KILN" push --package demo --host live -q --step first -- sh -c 'echo one' \
    --step second -- sh -c "i=0; while [ ! -f '$GO' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done; echo two" 2>"$TRASH/live.err" &
PP=$!; e2e_track $PP
first_stored() { b=$(latest_build demo live); [ -n "$b" ] && [ "$(api "builds/$b/steps" | jpy 'len(d["steps"])')" = 1 ] && [ "$(build_field "$b" complete)" = false ]; }
check "the first step is in the API while the second runs" wait_for 30 first_stored
touch "$GO"
wait $PP; rc=$?
check "live push: exit 0 ($rc)" [ "$rc" = 0 ]
B=$(latest_build demo live)
check "then both steps, finished" [ "$(api "builds/$B/steps" | jpy '[s["name"] for s in d["steps"]]')$(build_field "$B" complete)" = '["first", "second"]true' ]

# ---- --check ------------------------------------------------------------------------------------
out=$("$KILN" push --check --package demo --host h1 --revision r1); rc=$?
check "check, same revision: exit 3 up to date ($out)" sh -c "[ $rc = 3 ] && echo '$out' | grep -q '^up to date'"
out=$("$KILN" push --check --package demo --host h1 --revision r2); rc=$?
check "check, new revision: exit 0 build ($out)" sh -c "[ $rc = 0 ] && echo '$out' | grep -q '^build'"
out=$("$KILN" push --check --package demo --host nowhere --max-age 60); rc=$?
check "check, never pushed: exit 0" [ "$rc" = 0 ]

# ---- refusals ---------------------------------------------------------------------------------------
"$KILN" push --host h -- true 2>"$TRASH/err"; rc=$?
check "no package: usage error 2" [ "$rc" = 2 ]
KILN_TOKEN=kiln_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA "$KILN" push --package demo -- true 2>"$TRASH/err"; rc=$?
check "unknown token: exit 1, says why ($(cat "$TRASH/err"))" sh -c "[ $rc = 1 ] && grep -qi token '$TRASH/err'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
