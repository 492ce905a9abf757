#!/bin/bash
# The acceptance review of the web UI against issue 11 (slice "uireview"):
# tests/e2e/ui/review.mjs drives every view in Debian's Chromium through
# playwright-core against a real master and kiln-worker with real builds (ANSI
# colours, warnings, a TAP report with a failure, an artifact, a trigger, a
# change from sendchange, a request queued for a worker that never connects)
# and checks what the review found broken: on a phone's width (390 px) no view
# is wider than the screen, every table's header cells line up with its data
# cells (a rule meant for the status board hid the 4th header of every table),
# and the header's links fit in a few lines; the header's theme button
# switches light / dark / auto and keeps the choice across a reload; a builder
# with more than 12 recorded numbers charts its duration, warnings and test
# counts (the per-step durations are the ones left out); every page links the
# Atom feeds for feed readers; the log view fits the window below the header
# (it did not: a second scrollbar, 37 px more on a phone); a build started
# while the status board is open shows its progress bar and ETA (the /ws
# event has no ETA: the board showed none until a reload); two builds of one
# builder running at once are side by side on the waterfall (one hid the
# other); the build page spaces its words and names its changes, triggered
# and triggering builds ("child #1", not "build 6"); the queue says
# "unknown" for a request with no expected start.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

{
cat <<LUA
-- build N waits (bounded) for the file gate-N: the browser test opens it
builder { name = "gated", workers = { "w1" }, steps = {
  shell { name = "wait", command = interpolate("i=0; while [ ! -e '$TRASH/gate-%(prop:buildnumber)s' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done") },
} }
LUA
cat <<'LUA'
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1"), max_builds = 4 }
builder { name = "colors", workers = { "w1" }, tags = { "ui" }, steps = {
  shell { name = "ansi", command = "for i in $(seq 1 300); do printf '\\033[31mred %d\\033[0m \\033[1;32mgreen\\033[0m plain\\n' $i; done; echo needle here" },
  compile { name = "build", command = "echo 'a.c:1:2: warning: unused x'; true" },
  shell { name = "mk", command = "echo hi > out.txt" },
  file_upload { workersrc = "out.txt", masterdest = "dist/out.txt" },
  trigger { schedulers = { "child" } },
  test { name = "unit", format = "tap",
         command = "printf 'TAP version 13\\n1..2\\nok 1 - adds\\nnot ok 2 - divides\\n'" },
} }
builder { name = "child", workers = { "w1" }, tags = { "ui" }, steps = {
  shell { name = "c", command = "echo child" } } }
-- its worker never connects: its request stays queued
worker { name = "w2", password = secret("w1") }
builder { name = "orphan", workers = { "w2" }, steps = { shell { name = "x", command = "true" } } }
triggerable { name = "child", builders = { "child" } }
any_branch { name = "all", builders = { "colors" } }
force_scheduler { name = "force", builders = { "colors", "orphan", "gated" },
  params = { { name = "jobs", type = "int", label = "Jobs", default = 4, min = 1, max = 64 } } }
LUA
} | ui_master
printf 'hooktoken' > "$M/secrets/hook"
start_master_w1 "$M"

export KILN_CLIENT_CONF=$TRASH/none.conf
unset KILN_TOKEN KILN_URL
check "change sent" "$KILN" sendchange --master "$URL" --token hooktoken --branch main \
    --who "Ann Dev <ann@example.org>" --revision abc1def -c "Fix the divider" a.c
done_builds() { [ "$(api 'builds?complete=true&field=buildid' | jpy 'len(d["builds"])')" = "$1" ]; }
check "... colors builds it, and the child it triggers" wait_for 60 done_builds 2
: > "$TRASH/gate-1"
check "gated #1 finishes (its duration: the ETA of the next)" test -n "$(force_build gated)"
br=$(force orphan)
check "orphan's request is queued ($br)" test -n "$br"

ui_run review.mjs 240
ui_screenshots 'review-*.png' review-phone-board.png review-dark-builder.png
done_testing
