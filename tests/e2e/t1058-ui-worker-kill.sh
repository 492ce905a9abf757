#!/bin/bash
# The workers view's "Kill" and "Stop gracefully" (www/src/workers.js, slice
# "workerctl") in a real browser (tests/e2e/ui/worker-ctl.mjs: Debian's
# Chromium through playwright-core) against a real master and kiln-workers:
# an API error is shown, Kill asks first (Cancel does nothing), Kill on a
# worker running a build shows it offline without a reload and the build
# ends RETRY; Stop gracefully shows "stopping: finishing 1 build", then the
# worker goes offline once its build is done.  Both worker processes exit
# (they honour `shutdown`).  Screenshots under BUILD/test-artifacts/.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

ui_master <<LUA
worker { name = "w1", password = secret("w1") }
worker { name = "w2", password = secret("w1") }
-- wait (bounded) for a gate file, which the browser test writes
builder { name = "slow", workers = { "w1" },
  steps = { shell { command = "i=0; while [ ! -e '$TRASH/gate' ] && [ \$i -lt 2400 ]; do sleep 0.05; i=\$((i+1)); done; test -e '$TRASH/gate'" } } }
builder { name = "slow2", workers = { "w2" },
  steps = { shell { command = "i=0; while [ ! -e '$TRASH/gate2' ] && [ \$i -lt 2400 ]; do sleep 0.05; i=\$((i+1)); done; test -e '$TRASH/gate2'" } } }
LUA
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
W1_PID=$WORKER_PID
start_worker "$TRASH/w2" w2 "$M/secrets/w1"
W2_PID=$WORKER_PID
check "w1 attaches" wait_for 60 worker_connected w1
check "w2 attaches" wait_for 60 worker_connected w2

ui_run worker-ctl.mjs 200
pid_gone() { ! kill -0 "$1" 2>/dev/null; }
check "killed w1's process exited (it honoured shutdown)" wait_for 60 pid_gone "$W1_PID"
check "stopped w2's process exited" wait_for 60 pid_gone "$W2_PID"
check "the master log says w1 was killed" grep -q "worker=w1 killed" "$M/master.log"
ui_screenshots 'workerctl*.png' workerctl-stopping.png workerctl-killed.png
done_testing
