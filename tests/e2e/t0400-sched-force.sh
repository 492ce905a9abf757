#!/bin/bash
# asan-too
# Force schedulers with typed parameters: the form description on
# /api/v2/forceschedulers, defaults and conversions into build properties
# (JSON-RPC and `kiln force -p`), validation errors, priority, the
# configured sourcestamp defaults (shown in the form, and used when the
# form sends the fields empty), and the checkconfig errors of scheduler
# declarations (with their line).
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = {
  shell { name = "echo", command = "echo jobs=$JOBS" },
} }
force_scheduler { name = "typed", builders = { "b" }, params = {
  { name = "jobs", type = "int", default = 4, min = 1, max = 64, label = "Jobs" },
  { name = "debug", type = "bool" },
  { name = "mode", type = "choice", choices = { "fast", "full" }, default = "full" },
  { name = "note", type = "string", required = true },
} }
builder { name = "src", workers = { "w1" }, steps = {
  shell { name = "show", command = "echo \"ss=$KILN_BRANCH|$KILN_REPOSITORY|$KILN_PROJECT\"" },
} }
force_scheduler { name = "defaults", builders = { "src" }, branch = "release-1",
  repository = "https://example.org/kiln.git", project = "kiln" }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"

fs=$(api forceschedulers/typed)
check "the form lists the typed fields" [ "$(jpy '[f["name"] + ":" + f["type"] for f in d["forceschedulers"][0]["all_fields"][2]["fields"]]' <<<"$fs")" = '["jobs:int", "debug:bool", "mode:list", "note:text"]' ]
check "choices and defaults are described" [ "$(jpy '[d["forceschedulers"][0]["all_fields"][2]["fields"][2]["choices"], d["forceschedulers"][0]["all_fields"][2]["fields"][0]["default"]]' <<<"$fs")" = '[["fast", "full"], 4]' ]

bid=$(api builders/b | jpy 'd["builders"][0]["builderid"]')
force_typed() { rpc forceschedulers/typed "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":$1}"; }
res=$(force_typed "{\"builderid\":\"$bid\",\"note\":\"hi\",\"jobs\":\"8\",\"debug\":\"on\",\"priority\":5}")
bsid=$(jpy 'd["result"][0]' <<<"$res")
check "a valid force creates a buildset" [ -n "$bsid" ]
props=$(api "buildsets/$bsid/properties")
check "typed values become typed properties" [ "$(jpy '[d["properties"][0]["jobs"][0], d["properties"][0]["debug"][0], d["properties"][0]["mode"][0], d["properties"][0]["note"][0]]' <<<"$props")" = '[8, true, "full", "hi"]' ]
check "priority is the request's" [ "$(api "buildrequests?buildsetid=$bsid" | jpy 'd["buildrequests"][0]["priority"]')" = 5 ]

err=$(force_typed "{\"builderid\":\"$bid\",\"note\":\"x\",\"jobs\":\"100\"}")
check "an int out of range is refused" [ "$(jpy 'd["error"]["message"]' <<<"$err")" = "'Jobs' must be between 1 and 64" ]
err=$(force_typed "{\"builderid\":\"$bid\",\"note\":\"x\",\"mode\":\"slow\"}")
check "a bad choice is refused" [ "$(jpy 'd["error"]["message"]' <<<"$err")" = "'mode' must be one of the choices" ]
err=$(force_typed "{\"builderid\":\"$bid\"}")
check "a required field is required" [ "$(jpy 'd["error"]["message"]' <<<"$err")" = "'note' needs a value" ]
err=$(force_typed "{\"builderid\":\"$bid\",\"note\":\"x\",\"jobs\":\"many\"}")
check "a non-integer is refused" [ "$(jpy 'd["error"]["code"]' <<<"$err")" = -32602 ]

out=$("$KILN" force --url "$URL" --scheduler typed -p note=cli -p jobs=2 -p mode=fast b 2>&1)
check "kiln force passes typed parameters ($out)" grep -q '^buildset' <<<"$out"
bs2=$(sed -n 's/^buildset \([0-9]*\),.*/\1/p' <<<"$out")
check "kiln force's values are converted" [ "$(api "buildsets/$bs2/properties" | jpy '[d["properties"][0]["jobs"][0], d["properties"][0]["mode"][0]]')" = '[2, "fast"]' ]
out=$("$KILN" force --url "$URL" --scheduler typed -p note=cli -p jobs=0 b 2>&1)
check "kiln force reports a validation error" grep -q "must be between 1 and 64" <<<"$out"

# Configured sourcestamp defaults: the form shows them, and a force sending
# the fields empty (as Buildbot's web form does) builds with them.
fs=$(api forceschedulers/defaults)
check "the form shows the configured defaults" [ "$(jpy '[(f["name"], f["default"]) for f in d["forceschedulers"][0]["all_fields"][1]["fields"]]' <<<"$fs")" = '[["branch", "release-1"], ["project", "kiln"], ["repository", "https://example.org/kiln.git"], ["revision", ""]]' ]
sid=$(api builders/src | jpy 'd["builders"][0]["builderid"]')
res=$(rpc forceschedulers/defaults "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$sid\",\"username\":\"\",\"reason\":\"force build\",\"branch\":\"\",\"project\":\"\",\"repository\":\"\",\"revision\":\"\"}}")
dbs=$(jpy 'd["result"][0]' <<<"$res")
dbr=$(jpy 'list(d["result"][1].values())[0]' <<<"$res")
check "a force with empty fields is accepted ($res)" [ -n "$dbr" ]
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
check "the forced build completes" wait_for 60 request_done "$dbr"
ss=$(api "buildsets/$dbs" | jpy '[d["buildsets"][0]["sourcestamps"][0][k] for k in ("branch", "repository", "project", "revision")]')
check "its sourcestamp has the configured defaults ($ss)" [ "$ss" = '["release-1", "https://example.org/kiln.git", "kiln", ""]' ]
db=$(build_of_request "$dbr")
check "the build sees them" grep -qx 'oss=release-1|https://example.org/kiln.git|kiln' <<<"$(log_text "$db" 1)"

# checkconfig errors carry the line of the declaration
bad() { mkdir -p "$TRASH/bad"; cat > "$TRASH/bad/master.lua"; "$KILN" checkconfig "$TRASH/bad" 2>&1; }
out=$(KILN_SECRET_W1=x bad <<'LUA'
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }
nightly { name = "n", builders = { "b" },
  cron = "61 3 * * *" }
LUA
)
check "a bad cron is a checkconfig error with its line ($out)" [ "$out" = "master.lua:3: nightly 'n': cron '61 3 * * *': minute: 61 is out of range 0-59" ]
out=$(KILN_SECRET_W1=x bad <<'LUA'
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }

any_branch { name = "a", builders = { "b" }, change_filter = { branch_re = "(" } }
LUA
)
check "a bad filter pattern is a checkconfig error with its line ($out)" grep -q "^master.lua:4: any_branch 'a': change_filter: 'branch_re' is not a valid Lua pattern" <<<"$out"
out=$(KILN_SECRET_W1=x bad <<'LUA'
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }
single_branch { name = "s", builders = { "b" }, change_filter = { branch = 3 } }
LUA
)
check "a bad filter value is a checkconfig error ($out)" [ "$out" = "master.lua:3: single_branch 's': change_filter: 'branch' must be a string or a list of strings (got number)" ]

done_testing
