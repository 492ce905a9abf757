#!/bin/bash
# asan-too
# Renderables: Lua functions of the build's properties wherever a step takes
# a string or list (the whole command, one element of a command list, an env
# value), rendered when the step starts; a function that fails or returns
# the wrong thing ends its step EXCEPTION with the reason in the step's log,
# and the master goes on serving.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
properties = { jobs = 3 }
worker { name = "w1", password = secret("w1") }
builder { name = "r", workers = { "w1" }, properties = { flavour = "debug" }, steps = {
  shell { name = "whole", command = function(p) return "echo whole " .. p.buildername .. " -j" .. p.jobs end },
  shell { name = "list", command = function(p) return { "echo", "list", p.flavour, p.buildnumber } end },
  shell { name = "element", command = { "echo", "element", function(p) return p.workername end } },
  shell { name = "env", command = "echo env=$FLAV", env = { FLAV = function(p) return p.flavour .. "!" end } },
} }
builder { name = "bad", workers = { "w1" }, steps = {
  shell { name = "boom", command = function(p) error("no such thing: " .. p.buildername) end },
  shell { name = "after", command = "echo after", always_run = true },
} }
builder { name = "wrong", workers = { "w1" }, steps = {
  shell { name = "table", command = function(p) return { {} } end },
} }
local many = {}
for i = 1, 5000 do many[i] = apply_patch { name = "p" .. i } end
builder { name = "many", workers = { "w1" }, steps = many }
builder { name = "loop", workers = { "w1" }, steps = {
  shell { name = "spin", command = function(p) while true do end end },
} }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

br=$(force r)
check "the build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "it succeeds" build_results_is "$b" 0
check "a function as the whole command" grep -q "^owhole r -j3" <<<"$(log_text "$b" 1)"
check "a function returning a list runs it as argv" grep -q "^olist debug 1" <<<"$(log_text "$b" 2)"
check "a function as one element of the command" grep -q "^oelement w1" <<<"$(log_text "$b" 3)"
check "a function as an env value" grep -q "^oenv=debug!" <<<"$(log_text "$b" 4)"
desc=$(api "builds/$b/steps/2" | jpy 'd["steps"][0]["state_string"]')
check "the step's description shows the rendered words ($desc)" [ "$desc" = "'echo list ...'" ]

br=$(force bad)
check "a failing function's build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "and ends EXCEPTION" build_results_is "$b" 4
out=$(log_text "$b" 1)
check "the step's log names the key and the error ($out)" grep -q "cannot render 'command': master.lua:.*no such thing: bad" <<<"$out"
check "the step is EXCEPTION" [ "$(api "builds/$b/steps/1" | jpy 'd["steps"][0]["results"]')" = 4 ]

br=$(force wrong)
check "a function returning a table in a list" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "ends EXCEPTION" build_results_is "$b" 4
check "saying what it returned" grep -q "cannot render 'command': the renderable function returned a list with a table" <<<"$(log_text "$b" 1)"

br=$(force loop)
check "a function that never returns is stopped by its budget" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "ends EXCEPTION" build_results_is "$b" 4
answers() { api builders | grep -q '"builders"'; }
check "the master still answers" answers

# 5,000 steps that end as they start (no patch: SKIPPED) run one after the
# other without nesting on the master's stack
br=$(force many)
check "a build of 5,000 steps that end at once completes" wait_for 120 request_done "$br"
b=$(build_of_request "$br")
check "it succeeds" build_results_is "$b" 0
check "with all its steps" [ "$(api "builds/$b/steps?limit=1&offset=5000" | jpy 'd["steps"][0]["name"]')" = p5000 ]
done_testing
