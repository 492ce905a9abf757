#!/bin/bash
# asan-too
# The darcs source step on a real Darcs repository (darcs init, a local
# path), with kiln-worker: a clone, an incremental pull picking up a new
# patch, got_revision (source Darcs: the last patch's header), a forced
# older revision (a patch hash, darcs clone --to-hash), mode full with
# methods clobber and copy, and an unreachable repository (FAILURE with
# darcs's error in the log).
. "$(dirname "$0")/lib.sh"
require_cmd darcs
export DARCS_EMAIL="T <t@example.org>"

R=$TRASH/repo
mkdir -p "$R"
(cd "$R" && darcs init -q && echo one > hello.txt && darcs add -q hello.txt &&
 darcs record -q -a -m one) || exit 1
hash_of_last() { (cd "$R" && darcs log --xml-output --max-count=1) | sed -n "s/.* hash='\([0-9a-f]*\)'.*/\1/p"; }
H1=$(hash_of_last)

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1"), max_builds = 4 }
local show = shell { name = "show", command = "cat hello.txt; ls -a" }
builder { name = "inc", workers = { "w1" }, steps = { darcs { repourl = "$R" }, show } }
builder { name = "clobber", workers = { "w1" }, steps = {
  darcs { repourl = "$R", mode = "full", method = "clobber" }, show } }
builder { name = "copy", workers = { "w1" }, steps = { darcs { repourl = "$R", mode = "full" }, show } }
builder { name = "broken", workers = { "w1" }, steps = { darcs { repourl = "$TRASH/no-such-repo" } } }
force_scheduler { name = "force", builders = { "inc", "clobber", "copy", "broken" } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 20 worker_connected w1

lacks() { ! grep -q "$1" <<<"$2"; }
got_rev() { api "builds/$1/properties" | jpy "d['properties'][0]['got_revision'][0].split(chr(10))[0] + ' ' + d['properties'][0]['got_revision'][1]"; }
run() { # run BUILDER: forces it and prints the build id once done
    local br; br=$(force "$1") || return 1
    wait_for 60 request_done "$br" || return 1
    build_of_request "$br"
}

b=$(run inc)
check "a first incremental build clones and succeeds" build_results_is "$b" 0
check "got_revision is the last patch, source Darcs ($(got_rev "$b"))" [ "$(got_rev "$b")" = "patch $H1 Darcs" ]
check "the tree is there" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "it cloned" grep -q "darcs clone --lazy $R build" <<<"$(log_text "$b" 1)"

(cd "$R" && echo two > hello.txt && darcs record -q -a -m two) || exit 1
H2=$(hash_of_last)
touch "$TRASH/w1/inc/build/untracked.txt"
b=$(run inc)
check "an incremental pull succeeds" build_results_is "$b" 0
check "it has the new patch" grep -q "^otwo" <<<"$(log_text "$b" 2)"
check "got_revision moved ($(got_rev "$b"))" [ "$(got_rev "$b")" = "patch $H2 Darcs" ]
check "incremental keeps untracked files" grep -q "^ountracked.txt" <<<"$(log_text "$b" 2)"
check "it pulled" grep -q "darcs pull --all --verbose" <<<"$(log_text "$b" 1)"

bid=$(api builders/inc | jpy 'd["builders"][0]["builderid"]')
br=$(rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$bid\",\"revision\":\"$H1\"}}" | jpy 'list(d["result"][1].values())[0]')
check "a forced older revision completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "and gets the tree at that patch" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "with clone --to-hash" grep -q "clone --lazy --to-hash $H1" <<<"$(log_text "$b" 1)"
check "got_revision is that patch" [ "$(got_rev "$b")" = "patch $H1 Darcs" ]

b=$(run clobber)
touch "$TRASH/w1/clobber/build/marker"
b=$(run clobber)
check "clobber: second build succeeds" build_results_is "$b" 0
check "clobber removed the tree" lacks marker "$(log_text "$b" 2)"

b=$(run copy)
touch "$TRASH/w1/copy/build/marker"
b=$(run copy)
check "copy: the build succeeds" build_results_is "$b" 0
check "copy: the source tree beside the workdir" [ -d "$TRASH/w1/copy/source/_darcs" ]
check "copy: the workdir is a fresh copy" grep -q "^otwo" <<<"$(log_text "$b" 2)"
check "copy: nothing else is left in it" lacks marker "$(log_text "$b" 2)"

b=$(run broken)
check "an unreachable repository ends FAILURE" build_results_is "$b" 2
check "darcs's own error is in the log" grep -q "Not a repository" <<<"$(log_text "$b" 1)"
done_testing
