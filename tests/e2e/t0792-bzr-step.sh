#!/bin/bash
# asan-too
# The bzr source step on a real Breezy branch (brz init, a local path), with
# kiln-worker: a checkout, an incremental update picking up a new commit,
# got_revision (source Bzr, the revno), a forced older revision, mode full
# with methods clobber and fresh, base_url + branch, and an unreachable
# repository (FAILURE with bzr's error in the log).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-vcsstep.sh"
require_cmd bzr
export BRZ_EMAIL="T <t@example.org>" BZR_EMAIL="T <t@example.org>"

mkdir -p "$TRASH/branches"
R=$TRASH/branches/trunk
bzr init -q "$R"
echo one > "$R/hello.txt"; echo '*.o' > "$R/.bzrignore"
bzr add -q "$R/hello.txt" "$R/.bzrignore"; bzr commit -q -m one "$R"

vcsstep_master <<LUA
builder { name = "inc", workers = { "w1" }, steps = { bzr { repourl = "$R" }, show } }
builder { name = "clobber", workers = { "w1" }, steps = {
  bzr { repourl = "$R", mode = "full", method = "clobber" }, show } }
builder { name = "fresh", workers = { "w1" }, steps = { bzr { repourl = "$R", mode = "full" }, show } }
builder { name = "base", workers = { "w1" }, steps = { bzr { base_url = "$TRASH/branches", branch = "trunk" }, show } }
builder { name = "broken", workers = { "w1" }, steps = { bzr { repourl = "$TRASH/no-such-branch" } } }
force_scheduler { name = "force", builders = { "inc", "clobber", "fresh", "base", "broken" } }
LUA
vcsstep_start

b=$(force_build inc)
check "a first incremental build checks out and succeeds" build_results_is "$b" 0
check "got_revision is the revno, source Bzr ($(got_rev "$b"))" [ "$(got_rev "$b")" = '["1", "Bzr"]' ]
check "the tree is there" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "it checked out" grep -q "bzr checkout $R \." <<<"$(log_text "$b" 1)"

echo two > "$R/hello.txt"; bzr commit -q -m two "$R"
touch "$TRASH/w1/inc/build/untracked.txt"
b=$(force_build inc)
check "an incremental update succeeds" build_results_is "$b" 0
check "it has the new commit" grep -q "^otwo" <<<"$(log_text "$b" 2)"
check "got_revision moved ($(got_rev "$b"))" [ "$(got_rev "$b")" = '["2", "Bzr"]' ]
check "incremental keeps unknown files" grep -q "^ountracked.txt" <<<"$(log_text "$b" 2)"
check "it updated" grep -q "bzr update" <<<"$(log_text "$b" 1)"

br=$(force_revision inc "\"revision\":\"1\"")
check "a forced older revision completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "and checks that revision out" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "got_revision is that revision" [ "$(got_rev "$b")" = '["1", "Bzr"]' ]

fresh_twice fresh unknown
check "with clean-tree" grep -q "clean-tree --unknown --force --ignored" <<<"$(log_text "$b" 1)"

clobber_twice clobber

b=$(force_build base)
check "base_url + branch: the build succeeds" build_results_is "$b" 0
check "from the joined URL" grep -q "bzr checkout $TRASH/branches/trunk \." <<<"$(log_text "$b" 1)"

b=$(force_build broken)
check "an unreachable repository ends FAILURE" build_results_is "$b" 2
check "bzr's own error is in the log" grep -q "ERROR: Not a branch" <<<"$(log_text "$b" 1)"
done_testing
