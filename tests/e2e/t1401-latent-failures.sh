#!/bin/bash
# asan-too
# Latent workers that do not start (issue 14): a start command that fails
# ends the request's build EXCEPTION with the command's status and last
# line; one that never connects fails after start_timeout (its process
# group is killed); a builder with another latent worker retries there and
# builds; a failed worker is tried once per request, never in a loop.
. "$(dirname "$0")/lib.sh"

M=$TRASH/m
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
local good = '"\$KILN_WORKER_BIN" create "\$KILN_WORKER_DIR" --master "\$KILN_MASTER" '
  .. '--name "\$KILN_WORKER_NAME" --password-file "\$KILN_WORKER_PASSWORD_FILE" >/dev/null '
  .. '&& exec "\$KILN_WORKER_BIN" start "\$KILN_WORKER_DIR"'
local bad = 'echo start >> "$TRASH/\$KILN_WORKER_NAME.starts"; echo "cannot reach the cloud" >&2; exit 3'
local cleanup = 'echo cleaned >> "$TRASH/\$KILN_WORKER_NAME.stops"'
worker { name = "bad", password = secret("pw"), latent = { start = bad, stop = cleanup } }
worker { name = "slow", password = secret("pw"),
         latent = { start = { "sh", "-c", "exec sleep 301" }, start_timeout = 2 } }
worker { name = "bad2", password = secret("pw"), latent = { start = bad, stop = cleanup } }
worker { name = "good", password = secret("pw"), latent = { start = good, idle_timeout = 60 } }
worker { name = "nocmd", password = secret("pw"), latent = { start = { "$TRASH/no-such-program" } } }
builder { name = "bnocmd", workers = { "nocmd" }, steps = { shell { command = "true" } } }
builder { name = "bfail", workers = { "bad" }, steps = { shell { command = "true" } } }
builder { name = "bslow", workers = { "slow" }, steps = { shell { command = "true" } } }
builder { name = "bretry", workers = { "bad2", "good" }, steps = { shell { command = "echo retried" } } }
force_scheduler { name = "force", builders = { "bfail", "bslow", "bretry", "bnocmd" } }
LUA
echo secret-pw > "$M/secrets/pw"
check "master starts" start_master "$M"
wfield() { api "workers/$1" | jpy "d['workers'][0]['$2']"; }

br=$(force bfail)
check "a failed start ends the request" wait_for 60 request_done "$br"
bid=$(build_of_request "$br")
check "its build is EXCEPTION" build_results_is "$bid" 4
ss=$(build_field "$bid" state_string)
check "the state says why: status and last line ($ss)" \
    grep -q "bad: the start command exited with status 3: cannot reach the cloud" <<<"$ss"
step=$(api "builds/$bid/steps" | jpy 'd["steps"][0]["name"] + " " + str(d["steps"][0]["results"])')
check "a worker_preparation step EXCEPTION ($step)" [ "$step" = "worker_preparation 4" ]
check "the worker shows failed with the reason" \
    sh -c "[ '$(wfield bad latent_state)' = failed ] && [ -n \"\$(echo '$(wfield bad latent_error)' | grep 'status 3')\" ]"
check "its stop command cleaned up after the failed start" wait_for 30 test -s "$TRASH/bad.stops"
check "tried once" [ "$(wc -l < "$TRASH/bad.starts")" = 1 ]
out=$("$KILN" workers --url "$URL" 2>&1)
check "kiln workers shows it failed" grep -q '^bad  *no  *no  *-  *-  *failed' <<<"$out"

br=$(force bfail)
check "a new request tries it again, once, and ends EXCEPTION" wait_for 60 request_done "$br"
check "EXCEPTION again" build_results_is "$(build_of_request "$br")" 4
check "two starts in all, no loop" [ "$(wc -l < "$TRASH/bad.starts")" = 2 ]

br=$(force bslow)
check "a worker that never connects fails after start_timeout" wait_for 60 request_done "$br"
bid=$(build_of_request "$br")
check "EXCEPTION" build_results_is "$bid" 4
ss=$(build_field "$bid" state_string)
check "the state says it did not connect in time ($ss)" \
    grep -q "slow: it did not connect within 2 s (start_timeout)" <<<"$ss"
no_sleep() { ! pgrep -f "^sleep 30[1]" >/dev/null; }
check "its start command's process is killed" wait_for 30 no_sleep

br=$(force bretry)
check "a builder with another latent worker retries there" wait_for 90 request_done "$br"
bid=$(build_of_request "$br")
check "and builds: SUCCESS" build_results_is "$bid" 0
check "on 'good'" [ "$(api "builds/$bid" | jpy 'd["builds"][0]["workerid"]')" = \
    "$(api workers/good | jpy 'd["workers"][0]["workerid"]')" ]
check "after bad2 failed once" [ "$(wc -l < "$TRASH/bad2.starts")" = 1 ]
check "bad2 failed, good running" \
    sh -c "[ '$(wfield bad2 latent_state) $(wfield good latent_state)' = 'failed running' ]"
br=$(force bnocmd)
check "a start command that cannot be run ends the request" wait_for 60 request_done "$br"
bid=$(build_of_request "$br")
check "EXCEPTION" build_results_is "$bid" 4
ss=$(build_field "$bid" state_string)
check "the state says why ($ss)" grep -q "nocmd: cannot run the start command: " <<<"$ss"
check "the master is still up" kill -0 "$MASTER_PID"
done_testing
