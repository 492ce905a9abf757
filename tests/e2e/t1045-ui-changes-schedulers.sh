#!/bin/bash
# The changes and schedulers views (www/src/changes.js, schedulers.js) in a
# real browser (tests/e2e/ui/misc-changes.mjs: Debian's Chromium through
# playwright-core) against a real master and kiln-worker: changes sent with
# `kiln sendchange` listed newest first, paged and filtered by branch and
# author in the URL, a new change shown without a reload, a change's page
# with its files, comments, properties, revlink and the builds made from it
# (one success, one failure); the schedulers with their kinds and builders,
# Disable making a force call fail and Enable letting it run again.
# Screenshots under BUILD/test-artifacts/.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

ui_master <<LUA
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "alpha", workers = { "w1" }, steps = { shell { name = "compile", command = "echo built" } } }
builder { name = "beta", workers = { "w1" }, steps = { shell { name = "test", command = "echo broken; exit 1" } } }
single_branch { name = "main", builders = { "alpha", "beta" }, change_filter = { branch = "main" } }
force_scheduler { name = "force", builders = { "alpha" } }
nightly { name = "nightly", builders = { "beta" }, cron = "0 3 * * *" }
LUA
printf 'hooktoken' > "$M/secrets/hook"
start_master_w1 "$M"

export KILN_CLIENT_CONF=$TRASH/none.conf
unset KILN_TOKEN KILN_URL
send() { "$KILN" sendchange --master "$URL" --token hooktoken "$@" >/dev/null; }
done_builds() { [ "$(api 'builds?complete=true&field=buildid' | jpy 'len(d["builds"])')" = "$1" ]; }
# 51 changes on a branch no scheduler watches: the list has two pages
bulk_ok=true
for i in $(seq 1 51); do
    send --branch bulk --who "Bulk Bot <bot@example.org>" --revision "$(printf 'b%09d' "$i")" -c "bulk $i" ||
        bulk_ok=false
done
check "51 bulk changes sent" $bulk_ok
check "change aaa111 sent" send --branch main --who "Ann Dev <ann@example.org>" --revision aaa1110000 \
    --revlink "https://git.example.org/r/aaa1110000" --property "ticket=KILN-7" \
    -c "First change

It has a body too." src/a.c docs/a.md
check "... alpha and beta build it" wait_for 60 done_builds 2

ui_run misc-changes.mjs 300 KILN="$KILN"
ui_screenshots 'ui-*.png' ui-changes.png ui-change.png ui-schedulers.png ui-schedulers-dark.png ui-changes-phone.png
done_testing
