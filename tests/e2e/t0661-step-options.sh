#!/bin/bash
# asan-too
# Options of every step kind with a real kiln-worker, checked through the
# API: do_step_if (a boolean or a function: SKIPPED without running),
# hide_step_if (hidden), description / description_done (state strings),
# retry (each attempt a step row, NAME_1 ...), decode_rc.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "o", workers = { "w1" }, properties = { flavour = "debug" }, steps = {
  shell { name = "never", command = "echo ran > never.txt", do_step_if = false },
  shell { name = "fn-no", command = "echo ran", do_step_if = function(p) return p.flavour == "release" end },
  shell { name = "fn-yes", command = "echo ran-yes", do_step_if = function(p) return p.flavour == "debug" end },
  shell { name = "hidden", command = "true", hide_step_if = true },
  shell { name = "hide-ok", command = "true", hide_step_if = function(results, p) return results == "success" end },
  shell { name = "desc", command = "true", description = "compiling", description_done = interpolate("compiled %(prop:flavour)s") },
  shell { name = "desc-fail", command = "false", description_done = "tested", flunk_on_failure = false },
  shell { name = "flaky", command = "test -f marker || { touch marker; exit 1; }", retry = 2 },
  shell { name = "rc", command = "exit 7", decode_rc = { [0] = "failure", [7] = "success" } },
  set_property { property = "x", value = 1, do_step_if = function(p) return false end },
} }
builder { name = "r", workers = { "w1" }, steps = {
  shell { name = "always", command = "exit 1", retry = 2 },
  shell { name = "after", command = "echo after", always_run = true },
  shell { name = "skip-err", command = "true", do_step_if = function(p) error("boom") end, always_run = true },
} }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

br=$(force o)
check "the build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
steps=$(api "builds/$b/steps")
f() { echo "$steps" | jpy "[s['$2'] for s in d['steps'] if s['name'] == '$1'][0]"; }
check "the build succeeds (state: $(build_field "$b" state_string))" build_results_is "$b" 0
check "do_step_if = false: SKIPPED" [ "$(f never results)" = 3 ]
check "and its command did not run" [ ! -e "$TRASH/w1/o/build/never.txt" ]
check "its state string says so ($(f never state_string))" [ "$(f never state_string)" = "'echo ran ...' (skipped)" ]
check "a function returning false: SKIPPED" [ "$(f fn-no results)" = 3 ]
check "a function returning true: it runs" [ "$(f fn-yes results)" = 0 ]
check "hide_step_if = true: hidden" [ "$(f hidden hidden)" = true ]
check "hide_step_if function of the results: hidden" [ "$(f hide-ok hidden)" = true ]
check "other steps are not hidden" [ "$(f fn-yes hidden)" = false ]
check "description_done rendered ($(f desc state_string))" [ "$(f desc state_string)" = "compiled debug" ]
check "description_done with the results ($(f desc-fail state_string))" [ "$(f desc-fail state_string)" = "tested (failure)" ]
check "retry: the first attempt failed" [ "$(f flaky results)" = 2 ]
check "the second attempt is flaky_1 and succeeded" [ "$(f flaky_1 results)" = 0 ]
check "no third attempt" [ "$(echo "$steps" | jpy "len([s for s in d['steps'] if s['name'].startswith('flaky')])")" = 2 ]
check "decode_rc: 7 is success" [ "$(f rc results)" = 0 ]
check "do_step_if on a set_property step: not set" \
    [ "$(api "builds/$b/properties" | jpy "'x' in d['properties'][0]")" = false ]

br=$(force r)
check "the retried build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
steps=$(api "builds/$b/steps")
check "it fails" build_results_is "$b" 4
check "three attempts of a step that always fails" \
    [ "$(echo "$steps" | jpy "[s['name'] for s in d['steps'] if s['name'].startswith('always')]")" = '["always", "always_1", "always_2"]' ]
check "each FAILURE" [ "$(f always_2 results)" = 2 ]
check "the next step runs after the last attempt" [ "$(f after results)" = 0 ]
check "a do_step_if function that fails: EXCEPTION" [ "$(f skip-err results)" = 4 ]
check "saying why" grep -q "^hdo_step_if: .*boom" <<<"$(log_text "$b" 5)"
desc=$(build_field "$b" state_string)
check "the build's state string names the last attempt only ($desc)" \
    [ "$desc" = "exception 'exit 1' (failure) 'true' (exception)" ]
done_testing
