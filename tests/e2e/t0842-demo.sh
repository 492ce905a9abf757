#!/bin/bash
# The README's first command: scripts/demo --once builds examples/hello-c
# from a local git repository with the git step, counts its one deliberate
# warning (compile), parses its TAP tests (test), uploads the program
# (file_upload), prints the results, the warning, the test summary and the
# artifact's URL, and exits 0 after the build (WARNINGS is a success).
# The master it ran is gone then (and the worker it ran itself, local_worker);
# the files it leaves are checked instead.
. "$(dirname "$0")/lib.sh"
require_cmd git make cc

out=$(cd "$KILN_SRC" && TMPDIR=$TRASH KILN_BUILD=$KILN_BUILD timeout 300 scripts/demo --once 2>&1)
rc=$?
check "scripts/demo --once exits 0 after the build (rc $rc)" [ $rc -eq 0 ]
has() { grep -q -- "$1" <<<"$out" || { diag "missing: $1"; sed 's/^/#   /' <<<"$out" | tail -n 30; return 1; }; }
check "the git step checked the project out" has '^  git: SUCCESS'
check "compile ends WARNINGS" has '^  compile: WARNINGS'
check "the test step succeeds" has '^  test: SUCCESS'
check "file_upload succeeds" has '^  file_upload: SUCCESS'
check "the build's results are printed" has '^results:  WARNINGS'
check "the warning count is printed" has '^warnings: 1$'
check "with the warning itself" has "src/greet.c:[0-9]*:[0-9]*: warning: unused variable .spare."
check "the TAP summary is printed" has '^tests:    4 tests, 0 failed, 1 skipped$'
check "the artifact's URL is printed" has '^artifact: http://127\.0\.0\.1:[0-9]*/api/v2/artifacts/1/download   (hello, [0-9]* bytes)$'
check "the web UI URL is printed" has '^web UI:   http://127\.0\.0\.1:[0-9]*/   (the status board)$'

D=$(sed -n 's/^demo: stopped; files left in //p' <<<"$out")
check "the demo says where its files are ($D)" test -n "$D" -a -d "$D"
A=$D/master/artifacts/1/hello
size=$(sed -n 's/^artifact: .*(hello, \([0-9]*\) bytes)$/\1/p' <<<"$out")
check "the artifact is the program, its size as printed ($size)" test -n "$size" -a "$(stat -c %s "$A" 2>/dev/null)" = "$size"
check "and it runs" [ "$("$A" 2>&1)" = "hello, kiln" ]
check "the master's local worker built that same program" \
    cmp -s "$A" "$D/master/workers/worker1/hello/build/hello"
# (the bracket keeps the pattern from matching the shell that runs pgrep)
check "the demo's master and its worker are stopped" sh -c "! pgrep -f '$D/maste[r]' >/dev/null"
done_testing
