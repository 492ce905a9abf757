#!/bin/bash
# The scenario shared by t1060 (console) and t1061 (grid), sourced after
# lib.sh and lib-ui.sh: a master and kiln-worker with alpha (passes on main,
# fails on release), beta, gamma (build N waits for $TRASH/gate-N) and 30
# more builders behind an any_branch scheduler; two changes with one
# revision on two branches, alpha forced on release with no change, then
# tests/e2e/ui/console-buildsets.mjs in the browser with VIEW=$1.
#
# Usage: console_buildsets_run VIEW

console_buildsets_run() {
local VIEW=$1
ui_master <<LUA
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1"), max_builds = 40 }
builder { name = "alpha", workers = { "w1" },
  steps = { shell { name = "branch", command = interpolate("test '%(src::branch)s' = main") } } }
builder { name = "beta", workers = { "w1" },
  steps = { shell { name = "ok", command = "true" } } }
-- build N waits (bounded) for the file gate-N: the browser test opens it
builder { name = "gamma", workers = { "w1" },
  steps = { shell { name = "wait", command = interpolate("i=0; while [ ! -e '$TRASH/gate-%(prop:buildnumber)s' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done; test -e '$TRASH/gate-%(prop:buildnumber)s'") } } }
-- 30 more: a change starts 33 builds at once (a burst of build events)
local all = { "alpha", "beta", "gamma" }
for i = 1, 30 do
  builder { name = string.format("many-%02d", i), workers = { "w1" },
    steps = { shell { name = "s", command = "true" } } }
  all[#all + 1] = string.format("many-%02d", i)
end
any_branch { name = "all", builders = all }
force_scheduler { name = "force", builders = { "alpha", "beta", "gamma" } }
LUA
printf 'hooktoken' > "$M/secrets/hook"
: > "$TRASH/gate-1"
: > "$TRASH/gate-2"
start_master_w1 "$M"

export KILN_CLIENT_CONF=$TRASH/none.conf
unset KILN_TOKEN KILN_URL
send() { "$KILN" sendchange --master "$URL" --token hooktoken "$@" >/dev/null; }
done_builds() { [ "$(api 'builds?complete=true&field=buildid' | jpy 'len(d["builds"])')" = "$1" ]; }
check "change on main sent" send --branch main --who "Ann Dev <ann@example.org>" --revision same0000 -c "On main"
check "... alpha, beta, gamma and 30 more build it" wait_for 90 done_builds 33
check "change on release with the same revision sent" \
    send --branch release --who "Bo Coder <bo@example.org>" --revision same0000 -c "On release"
check "... alpha, beta, gamma and 30 more build it" wait_for 90 done_builds 66
res=$(curl -sS -H 'Content-Type: application/json' "$URL/api/v2/forceschedulers/force" -d \
    '{"jsonrpc":"2.0","id":1,"method":"force","params":{"builderNames":["alpha"],"branch":"release","revision":"same0000"}}')
check "alpha forced on release at same0000, no change ($res)" grep -q '"result"' <<<"$res"
check "... it finishes" wait_for 60 done_builds 67
forced=$(api 'builders/alpha/builds?order=-number&limit=1&field=buildid&field=results' | jpy 'd["builds"][0]')
check "... failed, the newest build of revision same0000 ($forced)" \
    [ "$(jpy 'd["results"]' <<<"$forced")" = 2 ]
fid=$(jpy 'd["buildid"]' <<<"$forced")
check "... and belongs to no change" \
    [ "$(api "builds/$fid/changes" | jpy 'len(d["changes"])')" = 0 ]

ui_run console-buildsets.mjs 200 VIEW="$VIEW" FORCED="$fid" KILN="$KILN"
ui_screenshots "$VIEW-buildsets.png" "$VIEW-buildsets.png"
}
