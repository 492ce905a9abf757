#!/bin/bash
# The pending build requests view (www/src/requests.js) in a real browser
# (tests/e2e/ui/misc-requests.mjs: Debian's Chromium through playwright-core)
# against a real master and kiln-worker: requests queued behind a running
# build appear live, Cancel cancels one (results 6 in the API), the other
# runs once the worker is free, the queue empties without a reload.
# Screenshots under BUILD/test-artifacts/.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

ui_master <<LUA
worker { name = "w1", password = secret("w1") }
builder { name = "hello", workers = { "w1" }, steps = { shell { command = "echo hello" } } }
-- waits (bounded) for the file gate, which the browser test writes
builder { name = "slow", workers = { "w1" },
  steps = { shell { command = "i=0; while [ ! -e '$TRASH/gate' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done; test -e '$TRASH/gate'" } } }
LUA
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "w1 attaches" wait_for 60 worker_connected w1

ui_run misc-requests.mjs 240
ui_screenshots 'requests*.png' requests.png
done_testing
