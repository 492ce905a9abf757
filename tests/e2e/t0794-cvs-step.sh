#!/bin/bash
# asan-too
# The cvs source step on a real CVS repository (cvs init + import, a local
# CVSROOT), with kiln-worker: a checkout, an incremental update picking up
# a new commit, got_revision (source CVS: the master's UTC time), a forced
# older revision (a tag as the build's branch: -r), mode full with methods
# clobber and copy, and an unreachable repository (FAILURE with cvs's error
# in the log).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-vcsstep.sh"
require_cmd cvs

CR=$TRASH/cvsroot
cvs -Q -d "$CR" init
mkdir -p "$TRASH/import"; echo one > "$TRASH/import/hello.txt"
(cd "$TRASH/import" && cvs -Q -d "$CR" import -m init proj vendor start) || exit 1
(cd "$TRASH" && cvs -Q -d "$CR" checkout -d wc proj && cd wc && cvs -Q tag v1) || exit 1

vcsstep_master <<LUA
builder { name = "inc", workers = { "w1" }, steps = { cvs { cvsroot = "$CR", cvsmodule = "proj" }, show } }
builder { name = "tag", workers = { "w1" }, steps = { cvs { cvsroot = "$CR", cvsmodule = "proj" }, show } }
builder { name = "clobber", workers = { "w1" }, steps = {
  cvs { cvsroot = "$CR", cvsmodule = "proj", mode = "full" }, show } }
builder { name = "copy", workers = { "w1" }, steps = {
  cvs { cvsroot = "$CR", cvsmodule = "proj", mode = "full", method = "copy" }, show } }
builder { name = "broken", workers = { "w1" }, steps = { cvs { cvsroot = "$TRASH/no-such-root", cvsmodule = "proj" } } }
force_scheduler { name = "force", builders = { "inc", "tag", "clobber", "copy", "broken" } }
LUA
vcsstep_start

b=$(force_build inc)
check "a first incremental build checks out and succeeds" build_results_is "$b" 0
check "got_revision is a UTC time, source CVS ($(got_rev "$b"))" python3 -c "
import json, sys, datetime
v, src = json.loads(sys.argv[1])
t = datetime.datetime.strptime(v, '%Y-%m-%d %H:%M:%S +0000')
sys.exit(not (src == 'CVS' and abs((datetime.datetime.utcnow() - t).total_seconds()) < 600))" "$(got_rev "$b")"
check "the tree is there" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "it checked out" grep -q "cvs -d $CR -z3 checkout -d build proj" <<<"$(log_text "$b" 1)"

(cd "$TRASH/wc" && echo two > hello.txt && cvs -Q commit -m two) || exit 1
touch "$TRASH/w1/inc/build/untracked.txt"
b=$(force_build inc)
check "an incremental update succeeds" build_results_is "$b" 0
check "it has the new commit" grep -q "^otwo" <<<"$(log_text "$b" 2)"
check "incremental keeps untracked files" grep -q "^ountracked.txt" <<<"$(log_text "$b" 2)"
check "it updated" grep -q "cvs -z3 update -dP" <<<"$(log_text "$b" 1)"

br=$(force_revision tag "\"branch\":\"v1\"")
check "a forced older revision (tag v1) completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "and checks that revision out" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "with -r v1" grep -q "checkout -d build -r v1 proj" <<<"$(log_text "$b" 1)"

clobber_twice clobber "clobber (mode full's default)"
check "and has the new commit" grep -q "^otwo" <<<"$(log_text "$b" 2)"

b=$(force_build copy)
check "copy: the build succeeds" build_results_is "$b" 0
check "copy: the source tree beside the workdir" [ -d "$TRASH/w1/copy/source/CVS" ]
check "copy: the workdir is a copy" grep -q "^otwo" <<<"$(log_text "$b" 2)"

b=$(force_build broken)
check "an unreachable repository ends FAILURE" build_results_is "$b" 2
check "cvs's own error is in the log" grep -q "no-such-root.*No such file\|Cannot access" <<<"$(log_text "$b" 1)"
done_testing
