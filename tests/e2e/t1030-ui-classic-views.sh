#!/bin/bash
# Buildbot's three classic views in a real browser (tests/e2e/ui/classic-views.mjs:
# Debian's Chromium through playwright-core) against a real master and
# kiln-worker: changes sent with `kiln sendchange` build on two builders,
# 300 more builders test the virtualisation.  The waterfall shows the
# builds, a forced build running and then finished without a reload, its
# steps on hover, and a filter that survives a reload; the console and the
# grid show each change's results per builder, and a change sent while the
# console is open appears within a second.  Also the REST query the
# waterfall relies on: builds of several builders in a time window, one
# request.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

ui_master <<LUA
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "alpha", workers = { "w1" }, tags = { "c" },
  steps = { shell { name = "compile", command = "echo built" } } }
builder { name = "beta", workers = { "w1" }, tags = { "py" },
  steps = { shell { name = "test", command = "echo broken; exit 1" } } }
-- build N waits (bounded) for the file gate-N: the browser test opens it
builder { name = "gamma", workers = { "w1" }, tags = { "c" },
  steps = { shell { name = "wait", command = interpolate("i=0; while [ ! -e '$TRASH/gate-%(prop:buildnumber)s' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done; test -e '$TRASH/gate-%(prop:buildnumber)s'") } } }
for i = 1, 300 do
  builder { name = string.format("many-%03d", i), workers = { "w1" }, tags = { "many" },
    steps = { shell { name = "s", command = "true" } } }
end
single_branch { name = "main", builders = { "alpha", "beta" }, change_filter = { branch = "main" } }
force_scheduler { name = "force", builders = { "alpha", "beta", "gamma" } }
LUA
printf 'hooktoken' > "$M/secrets/hook"
start_master_w1 "$M"

export KILN_CLIENT_CONF=$TRASH/none.conf
unset KILN_TOKEN KILN_URL
send() { "$KILN" sendchange --master "$URL" --token hooktoken --branch main "$@" >/dev/null; }
done_builds() { [ "$(api 'builds?complete=true&field=buildid' | jpy 'len(d["builds"])')" = "$1" ]; }
check "change aaa111 sent" send --who "Ann Dev <ann@example.org>" --revision aaa1110000 -c "First change"
check "... alpha and beta build it" wait_for 60 done_builds 2
check "change bbb222 sent" send --who "Bo Coder <bo@example.org>" --revision bbb2220000 -c "Second change"
check "... alpha and beta build it" wait_for 60 done_builds 4

# the waterfall's query: builds of several builders in a time window, newest first, one page
t0=$(api 'builds?order=started_at&limit=1' | jpy 'd["builds"][0]["started_at"]')
a=$(api 'builders/alpha' | jpy 'd["builders"][0]["builderid"]')
b=$(api 'builders/beta' | jpy 'd["builders"][0]["builderid"]')
out=$(api "builds?builderid__in=$a&builderid__in=$b&started_at__ge=$t0&order=-started_at&limit=3&field=builderid&field=number")
check "builds of two builders in a window: one bounded page ($out)" /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])["builds"]
assert len(d) == 3, d
assert {x["builderid"] for x in d} <= {int(sys.argv[2]), int(sys.argv[3])}, d
' "$out" "$a" "$b"
out=$(api "builds?builderid__in=$a&builderid__in=$b&started_at__lt=$t0&field=number")
check "... nothing of theirs started before the window ($out)" \
    [ "$(jpy 'len(d["builds"])' <<<"$out")" = 0 ]

ui_run classic-views.mjs 300 KILN="$KILN"
ui_screenshots 'classic-*.png' classic-waterfall.png classic-console.png classic-grid.png
done_testing
