#!/bin/bash
# asan-too
# The darcs source step on a real Darcs repository (darcs init, a local
# path), with kiln-worker: a clone, an incremental pull picking up a new
# patch, got_revision (source Darcs: the last patch's header), a forced
# older revision (a patch hash, darcs clone --to-hash), mode full with
# methods clobber and copy, and an unreachable repository (FAILURE with
# darcs's error in the log).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-vcsstep.sh"
require_cmd darcs
export DARCS_EMAIL="T <t@example.org>"

R=$TRASH/repo
mkdir -p "$R"
(cd "$R" && darcs init -q && echo one > hello.txt && darcs add -q hello.txt &&
 darcs record -q -a -m one) || exit 1
hash_of_last() { (cd "$R" && darcs log --xml-output --max-count=1) | sed -n "s/.* hash='\([0-9a-f]*\)'.*/\1/p"; }
H1=$(hash_of_last)

vcsstep_master <<LUA
builder { name = "inc", workers = { "w1" }, steps = { darcs { repourl = "$R" }, show } }
builder { name = "clobber", workers = { "w1" }, steps = {
  darcs { repourl = "$R", mode = "full", method = "clobber" }, show } }
builder { name = "copy", workers = { "w1" }, steps = { darcs { repourl = "$R", mode = "full" }, show } }
builder { name = "broken", workers = { "w1" }, steps = { darcs { repourl = "$TRASH/no-such-repo" } } }
force_scheduler { name = "force", builders = { "inc", "clobber", "copy", "broken" } }
LUA
vcsstep_start

got_rev() { api "builds/$1/properties" | jpy "d['properties'][0]['got_revision'][0].split(chr(10))[0] + ' ' + d['properties'][0]['got_revision'][1]"; }

b=$(force_build inc)
check "a first incremental build clones and succeeds" build_results_is "$b" 0
check "got_revision is the last patch, source Darcs ($(got_rev "$b"))" [ "$(got_rev "$b")" = "patch $H1 Darcs" ]
check "the tree is there" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "it cloned" grep -q "darcs clone --lazy $R build" <<<"$(log_text "$b" 1)"

# a size other than "one"'s: darcs's index takes a file of the same size and
# mtime second as unchanged, and records "No changes!"
(cd "$R" && echo two-two > hello.txt && darcs record -q -a -m two) || exit 1
H2=$(hash_of_last)
touch "$TRASH/w1/inc/build/untracked.txt"
b=$(force_build inc)
check "an incremental pull succeeds" build_results_is "$b" 0
check "it has the new patch" grep -q "^otwo" <<<"$(log_text "$b" 2)"
check "got_revision moved ($(got_rev "$b"))" [ "$(got_rev "$b")" = "patch $H2 Darcs" ]
check "incremental keeps untracked files" grep -q "^ountracked.txt" <<<"$(log_text "$b" 2)"
check "it pulled" grep -q "darcs pull --all --verbose" <<<"$(log_text "$b" 1)"

br=$(force_revision inc "\"revision\":\"$H1\"")
check "a forced older revision completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "and gets the tree at that patch" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "with clone --to-hash" grep -q "clone --lazy --to-hash $H1" <<<"$(log_text "$b" 1)"
check "got_revision is that patch" [ "$(got_rev "$b")" = "patch $H1 Darcs" ]

clobber_twice clobber

b=$(force_build copy)
touch "$TRASH/w1/copy/build/marker"
b=$(force_build copy)
check "copy: the build succeeds" build_results_is "$b" 0
check "copy: the source tree beside the workdir" [ -d "$TRASH/w1/copy/source/_darcs" ]
check "copy: the workdir is a fresh copy" grep -q "^otwo" <<<"$(log_text "$b" 2)"
check "copy: nothing else is left in it" lacks marker "$(log_text "$b" 2)"

b=$(force_build broken)
check "an unreachable repository ends FAILURE" build_results_is "$b" 2
check "darcs's own error is in the log" grep -q "Not a repository" <<<"$(log_text "$b" 1)"
done_testing
