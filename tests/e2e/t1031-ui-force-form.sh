#!/bin/bash
# The force forms (/force, /force/NAME?builder=B: www/src/force.js) against a
# real master and kiln-worker.  The API side with curl: a refused typed
# parameter's error names its field in error.data ({"jobs": "..."}, the
# object Buildbot's force errors carry) and keeps its sentence as the
# message.  Then in Chromium (tests/e2e/ui/classic-force.mjs): the list, a
# form generated from the typed parameters, the server's messages shown next
# to the offending fields, and a good submission that starts a build the
# next page shows running and then finished without a reload.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

ui_master <<LUA
worker { name = "w1", password = secret("w1") }
-- build N waits (bounded) for the file gate-N: the browser test opens it
builder { name = "hello", workers = { "w1" },
  steps = { shell { name = "wait", command = interpolate("echo jobs=%(prop:jobs)s; i=0; while [ ! -e '$TRASH/gate-%(prop:buildnumber)s' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done; test -e '$TRASH/gate-%(prop:buildnumber)s'") } } }
builder { name = "other", workers = { "w1" }, steps = { shell { name = "s", command = "true" } } }
force_scheduler { name = "release", builders = { "hello", "other" }, params = {
  { name = "jobs", type = "int", default = 4, min = 1, max = 64, label = "Jobs" },
  { name = "note", type = "string", required = true },
  { name = "flavour", type = "choice", choices = { "full", "minimal" } },
  { name = "sign", type = "bool", default = true },
} }
force_scheduler { name = "quick", builders = { "other" } }
LUA
start_master_w1 "$M"

# ---- the API: the refused field, machine-readable ----
out=$(rpc forceschedulers/release '{"jsonrpc":"2.0","id":1,"method":"force","params":{"builderNames":["hello"],"jobs":99,"note":"n"}}')
check "a bad int: -32602 ($out)" [ "$(jpy 'd["error"]["code"]' <<<"$out")" = -32602 ]
check "... its message is still the sentence" \
    [ "$(jpy 'd["error"]["message"]' <<<"$out")" = "'Jobs' must be between 1 and 64" ]
check "... and error.data names the field by its name, not its label" \
    [ "$(jpy 'd["error"]["data"]' <<<"$out" | tr -d ' \n')" = "{\"jobs\":\"'Jobs'mustbebetween1and64\"}" ]
out=$(rpc forceschedulers/release '{"jsonrpc":"2.0","id":1,"method":"force","params":{"builderNames":["hello"],"jobs":2}}')
check "a missing required value names its field ($out)" \
    [ "$(jpy 'list(d["error"]["data"].keys())' <<<"$out" | tr -d ' \n')" = '["note"]' ]
out=$(rpc forceschedulers/release '{"jsonrpc":"2.0","id":1,"method":"force","params":{"builderNames":["hello"],"note":"n","branch":"a\u0001b"}}')
check "a bad sourcestamp field names it too ($out)" \
    [ "$(jpy 'list(d["error"]["data"].keys())' <<<"$out" | tr -d ' \n')" = '["branch"]' ]
check "nothing was started" [ "$(api buildsets | jpy 'd["meta"]["total"]')" = 0 ]
fs=$(api forceschedulers/release)
check "the form's description: types, choices, defaults, required, bounds" /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])["forceschedulers"][0]
f = {x["fullName"]: x for g in d["all_fields"] for x in g["fields"]}
assert f["jobs"]["type"] == "int" and f["jobs"]["default"] == 4, f["jobs"]
assert f["jobs"]["minimum"] == 1 and f["jobs"]["maximum"] == 64 and f["jobs"]["label"] == "Jobs"
assert f["note"]["required"] is True and f["note"]["type"] == "text"
assert f["flavour"]["type"] == "list" and f["flavour"]["choices"] == ["full", "minimal"]
assert f["sign"]["type"] == "bool" and f["sign"]["default"] is True
' "$fs"

# ---- the browser ----
ui_run classic-force.mjs 200
check "one buildset, from the good submission" [ "$(api buildsets | jpy 'd["meta"]["total"]')" = 1 ]
bid=$(api 'builds?order=-buildid&limit=1' | jpy 'd["builds"][0]["buildid"]')
props=$(api "builds/$bid?property=*" | jpy 'd["builds"][0]["properties"]')
check "the build got the form's typed values ($props)" /usr/bin/python3 -c '
import json, sys
p = json.loads(sys.argv[1])
assert p["jobs"][0] == 8 and p["note"][0] == "ship it", p
assert p["flavour"][0] == "minimal" and p["sign"][0] is False, p
assert p["owner"][0] == "Fay", p
' "$props"
ui_screenshots 'force-*.png' force-form-errors.png
done_testing
