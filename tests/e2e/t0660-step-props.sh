#!/bin/bash
# asan-too
# set_property, set_properties, set_property_from_command (property,
# extract, extract_fn) and log steps with a real kiln-worker, checked
# through the API: each property's value and source, the steps' results and
# state strings, the logs they add.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "p", workers = { "w1" }, properties = { flavour = "debug" }, steps = {
  set_property { property = "answer", value = 42 },
  set_property { name = "interp", property = "label", value = interpolate("%(prop:flavour)s-%(prop:buildnumber)s") },
  set_properties { properties = { on = true, pi = 3.5, fn = function(p) return p.flavour .. "!" end } },
  set_property_from_command { command = "printf '  v1.2.3 \\n\\n'", property = "version" },
  set_property_from_command { name = "re", command = "echo 'size: 1234 bytes'; echo 'arch=x86'",
    extract = "size: (?<size>\\d+).*\\n.*arch=(?<arch>\\w+)" },
  set_property_from_command { name = "fn", command = "echo out; echo err >&2; exit 3",
    decode_rc = { [3] = "warnings" },
    extract_fn = function(rc, out, err) return { rc = rc, out = out, err = err } end },
  log { name = "notes", text = function(p) return "built " .. p.label .. "\nsecond line" end },
} }
builder { name = "f", workers = { "w1" }, steps = {
  set_property_from_command { name = "fails", command = "echo nope; exit 1", property = "never" },
  set_property_from_command { name = "big", command = "head -c 2000000 /dev/zero | tr '\\0' x",
    property = "huge", always_run = true },
} }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

br=$(force p)
check "the build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "it ends WARNINGS (decode_rc of the last command)" build_results_is "$b" 1
props=$(api "builds/$b/properties")
prop() { echo "$props" | jpy "d['properties'][0]['$1']"; }
check "set_property: a number, source the step's name" [ "$(prop answer)" = '[42, "SetProperty"]' ]
check "an interpolated value" [ "$(prop label)" = '["debug-1", "interp"]' ]
check "set_properties: a boolean" [ "$(prop on)" = '[true, "SetProperties"]' ]
check "a real" [ "$(prop pi)" = '[3.5, "SetProperties"]' ]
check "a function" [ "$(prop fn)" = '["debug!", "SetProperties"]' ]
check "from a command: stdout stripped" [ "$(prop version)" = '["v1.2.3", "SetPropertyFromCommand Step"]' ]
check "extract: a named group" [ "$(prop size)" = '["1234", "SetPropertyFromCommand Step"]' ]
check "extract: another one" [ "$(prop arch)" = '["x86", "SetPropertyFromCommand Step"]' ]
check "extract_fn: the exit code" [ "$(prop rc)" = '[3, "SetPropertyFromCommand Step"]' ]
check "extract_fn: stdout" [ "$(prop out)" = '["out\n", "SetPropertyFromCommand Step"]' ]
check "extract_fn: stderr" [ "$(prop err)" = '["err\n", "SetPropertyFromCommand Step"]' ]
step() { api "builds/$b/steps/$1" | jpy "d['steps'][0]['$2']"; }
check "set_property's state string is Buildbot's ($(step 1 state_string))" [ "$(step 1 state_string)" = "Set" ]
check "set_properties' state string" [ "$(step 3 state_string)" = "Properties Set" ]
check "the step with decode_rc is WARNINGS" [ "$(step 6 results)" = 1 ]
sid=$(step 4 stepid)
lid=$(api "steps/$sid/logs" | jpy '[l["logid"] for l in d["logs"] if l["name"] == "property changes"][0]')
ch=$(api "logs/$lid/contents" | jpy '"".join(c["content"] for c in d["logchunks"])')
check "the 'property changes' log ($ch)" [ "$ch" = "version: v1.2.3" ]
sid=$(step 7 stepid)
check "log: the step is named" [ "$(step 7 name)" = notes ]
lid=$(api "steps/$sid/logs/notes" | jpy 'd["logs"][0]["logid"]')
check "log: a text log" [ "$(api "logs/$lid" | jpy 'd["logs"][0]["type"]')" = t ]
txt=$(api "logs/$lid/contents" | jpy '"".join(c["content"] for c in d["logchunks"])')
check "log: the rendered text ($txt)" [ "$txt" = "built debug-1"$'\n'"second line" ]

br=$(force f)
check "the failing build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "it ends EXCEPTION (the step over the cap)" build_results_is "$b" 4
check "the failed command's step is FAILURE" [ "$(step 1 results)" = 2 ]
props=$(api "builds/$b/properties")
check "a failed command sets nothing" [ "$(echo "$props" | jpy "'never' in d['properties'][0]")" = false ]
check "output over the cap sets nothing" [ "$(echo "$props" | jpy "'huge' in d['properties'][0]")" = false ]
check "the step over the cap is EXCEPTION" [ "$(step 2 results)" = 4 ]
check "saying why" grep -q "^hthe output is over 1048576 bytes" <<<"$(log_text "$b" 2)"
done_testing
