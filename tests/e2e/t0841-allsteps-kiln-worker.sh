#!/bin/bash
# asan-too
# Every kind of step in one build on kiln-worker: the same master.lua and
# the same assertions as t0840 (tests/e2e/lib-allsteps.sh), each step's
# results and every transferred byte.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-allsteps.sh"

allsteps_setup || { done_testing; exit 1; }
start_worker "$TRASH/w1" w1 "$AS_M/secrets/w1"
check "kiln-worker attaches" wait_for 60 worker_connected w1
allsteps_check "$TRASH/w1"
done_testing
