#!/bin/bash
# The grid (builders x changes) matches builds to changes the Buildbot way
# (change -> buildsets -> buildrequests -> builds: /api/v2/changes/builds),
# in a real browser against a real master and kiln-worker: the scenario of
# t1060 (two changes with one revision on two branches, a build forced with
# no change, a change built on 33 builders at once and a rebuild seen live) through tests/e2e/ui/console-buildsets.mjs
# with VIEW=grid.  Each change's column shows its own results, the cells
# come in one request, each column links to /changes/ID.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"
. "$(dirname "$0")/lib-console.sh"

VIEW=grid

console_buildsets_run "$VIEW"
done_testing
