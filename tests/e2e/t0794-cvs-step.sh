#!/bin/bash
# asan-too
# The cvs source step on a real CVS repository (cvs init + import, a local
# CVSROOT), with kiln-worker: a checkout, an incremental update picking up
# a new commit, got_revision (source CVS: the master's UTC time), a forced
# older revision (a tag as the build's branch: -r), mode full with methods
# clobber and copy, and an unreachable repository (FAILURE with cvs's error
# in the log).
. "$(dirname "$0")/lib.sh"
require_cmd cvs

CR=$TRASH/cvsroot
cvs -Q -d "$CR" init
mkdir -p "$TRASH/import"; echo one > "$TRASH/import/hello.txt"
(cd "$TRASH/import" && cvs -Q -d "$CR" import -m init proj vendor start) || exit 1
(cd "$TRASH" && cvs -Q -d "$CR" checkout -d wc proj && cd wc && cvs -Q tag v1) || exit 1

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1"), max_builds = 4 }
local show = shell { name = "show", command = "cat hello.txt; ls -a" }
builder { name = "inc", workers = { "w1" }, steps = { cvs { cvsroot = "$CR", cvsmodule = "proj" }, show } }
builder { name = "tag", workers = { "w1" }, steps = { cvs { cvsroot = "$CR", cvsmodule = "proj" }, show } }
builder { name = "clobber", workers = { "w1" }, steps = {
  cvs { cvsroot = "$CR", cvsmodule = "proj", mode = "full" }, show } }
builder { name = "copy", workers = { "w1" }, steps = {
  cvs { cvsroot = "$CR", cvsmodule = "proj", mode = "full", method = "copy" }, show } }
builder { name = "broken", workers = { "w1" }, steps = { cvs { cvsroot = "$TRASH/no-such-root", cvsmodule = "proj" } } }
force_scheduler { name = "force", builders = { "inc", "tag", "clobber", "copy", "broken" } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 20 worker_connected w1

lacks() { ! grep -q "$1" <<<"$2"; }
got_rev() { api "builds/$1/properties" | jpy "d['properties'][0]['got_revision']"; }
run() { # run BUILDER: forces it and prints the build id once done
    local br; br=$(force "$1") || return 1
    wait_for 60 request_done "$br" || return 1
    build_of_request "$br"
}

b=$(run inc)
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
b=$(run inc)
check "an incremental update succeeds" build_results_is "$b" 0
check "it has the new commit" grep -q "^otwo" <<<"$(log_text "$b" 2)"
check "incremental keeps untracked files" grep -q "^ountracked.txt" <<<"$(log_text "$b" 2)"
check "it updated" grep -q "cvs -z3 update -dP" <<<"$(log_text "$b" 1)"

bid=$(api builders/tag | jpy 'd["builders"][0]["builderid"]')
br=$(rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$bid\",\"branch\":\"v1\"}}" | jpy 'list(d["result"][1].values())[0]')
check "a forced older revision (tag v1) completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "and checks that revision out" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "with -r v1" grep -q "checkout -d build -r v1 proj" <<<"$(log_text "$b" 1)"

b=$(run clobber)
touch "$TRASH/w1/clobber/build/marker"
b=$(run clobber)
check "clobber (mode full's default): second build succeeds" build_results_is "$b" 0
check "clobber removed the tree" lacks marker "$(log_text "$b" 2)"
check "and has the new commit" grep -q "^otwo" <<<"$(log_text "$b" 2)"

b=$(run copy)
check "copy: the build succeeds" build_results_is "$b" 0
check "copy: the source tree beside the workdir" [ -d "$TRASH/w1/copy/source/CVS" ]
check "copy: the workdir is a copy" grep -q "^otwo" <<<"$(log_text "$b" 2)"

b=$(run broken)
check "an unreachable repository ends FAILURE" build_results_is "$b" 2
check "cvs's own error is in the log" grep -q "no-such-root.*No such file\|Cannot access" <<<"$(log_text "$b" 1)"
done_testing
