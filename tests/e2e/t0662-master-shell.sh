#!/bin/bash
# asan-too
# master_shell: commands run on the master, off its loop: output (masked)
# in the stdio log, env over the master's, workdir under the base
# directory, exit codes through decode_rc, max_time kills it (FAILURE), a
# stop interrupts it (CANCELLED) while the API keeps answering.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
mkdir -p "$M/sub"
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "m", workers = { "w1" }, steps = {
  master_shell { name = "hello", command = "echo hello $GREETING from $(pwd); echo oops >&2; echo $SECRET_V",
                 env = { GREETING = interpolate("hi-%(prop:buildnumber)s"), SECRET_V = secret("tok") } },
  master_shell { name = "argv", command = { "sh", "-c", "pwd" }, workdir = "sub" },
  master_shell { name = "rc", command = "exit 3", decode_rc = { [3] = "warnings" } },
  master_shell { name = "slow", command = "sleep 30", max_time = 1, flunk_on_failure = false },
  master_shell { name = "fails", command = "exit 2", flunk_on_failure = false },
} }
builder { name = "stop", workers = { "w1" }, steps = {
  master_shell { command = "echo $$ > started.tmp; mv started.tmp started; exec sleep 60" },
} }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
printf 'tok-%s-value' "$$" > "$M/secrets/tok"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

br=$(force m)
check "the build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
steps=$(api "builds/$b/steps")
f() { echo "$steps" | jpy "[s['$2'] for s in d['steps'] if s['name'] == '$1'][0]"; }
check "it ends WARNINGS" build_results_is "$b" 1
out=$(log_text "$b" 1)
check "stdout in the log, env rendered, run in the base directory" grep -qx "ohello hi-1 from $M" <<<"$out"
check "stderr in the log" grep -qx "eoops" <<<"$out"
check "a secret in the output is masked" grep -qx "o<secret>" <<<"$out"
check "nor stored anywhere in the log" eval '! grep -q "tok-$$-value" <<<"$out"'
check "the exit status as a header" grep -qx "hexit status 0" <<<"$out"
check "it succeeded" [ "$(f hello results)" = 0 ]
check "its state string is Buildbot's ($(f hello state_string))" [ "$(f hello state_string)" = Ran ]
check "an argv command in workdir" grep -qx "o$M/sub" <<<"$(log_text "$b" 2)"
check "decode_rc: 3 is WARNINGS" [ "$(f rc results)" = 1 ]
check "max_time kills it: FAILURE" [ "$(f slow results)" = 2 ]
check "saying so ($(f slow state_string))" [ "$(f slow state_string)" = "killed (9) (failure)" ]
check "a failing command: FAILURE" [ "$(f fails results)" = 2 ]
check "its state string ($(f fails state_string))" [ "$(f fails state_string)" = "failed (2) (failure)" ]

br=$(force stop)
check "the long command starts" wait_for 30 test -s "$M/started"
check "the API answers while it runs" eval 'api builders >/dev/null'
b=$(build_of_request "$br")
rpc "builds/$b" '{"jsonrpc":"2.0","id":1,"method":"stop","params":{"reason":"e2e"}}' >/dev/null
check "a stop ends it" wait_for 30 request_done "$br"
check "CANCELLED" build_results_is "$b" 6
check "the command was killed" eval '! kill -0 "$(cat "$M/started")" 2>/dev/null'
done_testing
