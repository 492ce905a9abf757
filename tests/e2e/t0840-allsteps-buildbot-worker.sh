#!/bin/bash
# asan-too
# Debian's buildbot-worker (3.7, msgpack protocol) on a Kiln master runs one
# build using every kind of step Kiln has (tests/e2e/lib-allsteps.sh: source
# steps of six VCSs with a try patch, shell, compile, test, transfers both
# ways with empty, NUL-byte and 1.5 MiB files, properties, log, master_shell,
# trigger, locks, interpolate()); t0841 runs the same on kiln-worker.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-build.sh"
. "$(dirname "$0")/lib-allsteps.sh"
require_cmd buildbot-worker

allsteps_setup || { done_testing; exit 1; }
W=$TRASH/bbw
start_buildbot_worker "$W" w1 "$AS_M/secrets/w1"
check "buildbot-worker attaches" wait_for 40 worker_connected w1
allsteps_check "$W"
check "buildbot-worker logged no traceback" sh -c "! cat '$W.log' '$W/twistd.log' 2>/dev/null | grep -q Traceback"
done_testing
