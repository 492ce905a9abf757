#!/bin/bash
# The builders list, builder page and build page of the web UI (slice
# "uibuild") in a real browser (tests/e2e/ui/build-pages.mjs: Debian's
# Chromium through playwright-core) against a real master and kiln-worker:
# 1,205 builders listed with only the rows in view rendered, filtered by
# name and tag in the URL; a builder whose steps record
# a number over several builds, charted (uPlot loaded only there, from its
# own chunk), a hovered point naming its build; a build with a failing test
# report (and that test's history), properties with their sources, an
# artifact, a triggered build and step logs; a queued request cancelled
# from its builder's page; a rebuild seen running and
# finishing without a reload; a build blocked on a gate file stopped from
# its page; the status board showing the running step from /ws step events.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

ui_master <<LUA
worker { name = "w1", password = secret("w1"), max_builds = 4 }
builder { name = "measured", workers = { "w1" }, tags = { "perf" }, steps = {
  shell { name = "bench", command = interpolate("echo score: %(prop:buildnumber)s7"),
          numbers = { score = "^score: ([0-9]+)" } },
} }
builder { name = "tested", workers = { "w1" }, tags = { "qa" }, steps = {
  shell { name = "make", command = "printf 'hello' > out.txt" },
  file_upload { workersrc = "out.txt", masterdest = "dist/out.txt" },
  trigger { schedulers = { "child" } },
  test { name = "unit", format = "tap",
         command = "printf 'TAP version 13\\\\n1..2\\\\nok 1 - adds\\\\nnot ok 2 - divides\\\\n'" },
} }
builder { name = "child", workers = { "w1" }, tags = { "qa" }, steps = {
  shell { name = "c", command = "echo child" } } }
-- build N waits (bounded) for the file gate-N: only a stop ends it early
builder { name = "gated", workers = { "w1" }, steps = {
  shell { name = "wait", command = interpolate("i=0; while [ ! -e '$TRASH/gate-%(prop:buildnumber)s' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done") },
} }
-- its worker never connects: its requests stay queued (the queue's cancel button)
worker { name = "w2", password = secret("w1") }
builder { name = "orphan", workers = { "w2" }, steps = { shell { name = "x", command = "true" } } }
-- a crowd for the virtual list (sorted after the others)
for i = 1, 1200 do
  builder { name = string.format("zz-bulk%04d", i), workers = { "w1" }, tags = { "bulk" },
    steps = { shell { name = "x", command = "true" } } }
end
triggerable { name = "child", builders = { "child" } }
force_scheduler { name = "force", builders = { "measured", "tested", "gated", "orphan" } }
LUA
start_master_w1 "$M"

for n in 1 2 3; do
    br=$(force measured)
    check "measured #$n completes" wait_for 60 request_done "$br"
done
bid=$(api builders/tested | jpy 'd["builders"][0]["builderid"]')
br=$(rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$bid\",\"reason\":\"ui\",\"color\":\"blue\"}}" |
    jpy 'list(d["result"][1].values())[0]')
check "tested #1 completes" wait_for 60 request_done "$br"
check "... and the build it triggered" wait_for 60 sh -c \
    "[ \"\$(curl -sS '$URL/api/v2/builders/child/builds?complete=true' | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"builds\"]))')\" = 1 ]"

ui_run build-pages.mjs 300
ui_screenshots '*.png' build.png
done_testing
