#!/bin/bash
# The workers view (www/src/workers.js) in a real browser
# (tests/e2e/ui/misc-workers.mjs: Debian's Chromium through playwright-core)
# against a real master and kiln-workers: one connected and one never
# connected worker, a latent worker's state, a running build shown on its worker, Pause and Unpause
# buttons with real effect on dispatch (a queued build waits, then runs),
# the worker's own page (deep link, reload), and "last seen" after the
# worker disconnects.  Screenshots under BUILD/test-artifacts/.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

ui_master <<LUA
worker { name = "w1", password = secret("w1") }
worker { name = "w2", password = secret("w1") }
worker { name = "never", password = secret("w1") }
-- a latent worker no request needs: shown "command stopped" (issue 14)
worker { name = "lat", password = secret("w1"), latent = { start = "exit 1" } }
builder { name = "hello", workers = { "w1" }, steps = { shell { command = "echo hello" } } }
builder { name = "other", workers = { "w2" }, steps = { shell { command = "echo other" } } }
-- waits (bounded) for the file gate, which the browser test writes
builder { name = "slow", workers = { "w1" },
  steps = { shell { command = "i=0; while [ ! -e '$TRASH/gate' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done; test -e '$TRASH/gate'" } } }
LUA
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
W1_PID=$WORKER_PID
start_worker "$TRASH/w2" w2 "$M/secrets/w1"
check "w1 attaches" wait_for 60 worker_connected w1
check "w2 attaches" wait_for 60 worker_connected w2

ui_start misc-workers.mjs
# the browser test asks for w1 to stop once it watches the list
wait_for 200 sh -c "test -e '$TRASH/stop-w1' || ! kill -0 $UI_PID 2>/dev/null"
if [ -e "$TRASH/stop-w1" ]; then
    check "w1 stops (SIGTERM)" stop_pid "$W1_PID"
fi
ui_finish 120
ui_screenshots 'worker*.png' workers.png
done_testing
