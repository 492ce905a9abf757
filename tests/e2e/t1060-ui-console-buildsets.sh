#!/bin/bash
# The console matches builds to changes the Buildbot way (change ->
# buildsets -> buildrequests -> builds: /api/v2/changes/builds), in a real
# browser (tests/e2e/ui/console-buildsets.mjs, Debian's Chromium through
# playwright-core) against a real master and kiln-worker.  Two changes with
# the same revision string on two branches are built by an any_branch
# scheduler (alpha passes on main and fails on release); then alpha is
# forced on release at that revision with no change.  Each change's row
# shows its own results (not the forced build's, not the other branch's),
# the cells come in one request, each row links to /changes/ID, a third
# change built on 33 builders at once (a burst of build events) shows all
# its cells live, and a new build of a shown change (a rebuild) appears
# running within 1 s, then finished, without a reload.  t1061 is the same
# for the grid.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"
. "$(dirname "$0")/lib-console.sh"

VIEW=${CONSOLE_VIEW:-console}

console_buildsets_run "$VIEW"
done_testing
