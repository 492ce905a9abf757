#!/bin/bash
# asan-too
# The svn source step on a real Subversion repository (svnadmin create, a
# file:// URL), with kiln-worker and Debian's buildbot-worker: a checkout,
# an incremental update picking up a new commit, got_revision (source SVN),
# a forced older revision, mode full with methods clobber, fresh
# (unversioned and ignored files removed) and copy, %%BRANCH%% in repourl,
# a password given as secret(...) passed with --password and stored as
# <secret>, a try patch applied with patch(1), and an unreachable
# repository (FAILURE with svn's error in the log).
. "$(dirname "$0")/lib.sh"
require_cmd svn
require_cmd svnadmin

SR=$TRASH/svnrepo
svnadmin create "$SR"
U=file://$SR
svn mkdir -q -m layout "$U/trunk" "$U/branches"
svn checkout -q "$U/trunk" "$TRASH/wc"
echo one > "$TRASH/wc/hello.txt"
svn add -q "$TRASH/wc/hello.txt"
svn propset -q svn:ignore '*.o' "$TRASH/wc"
svn commit -q -m one "$TRASH/wc"
REV1=$(svn info --show-item revision "$U/trunk")

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1"), max_builds = 4 }
worker { name = "bbw", password = secret("bbw") }
local show = shell { name = "show", command = "cat hello.txt; ls -a" }
builder { name = "inc", workers = { "w1" }, steps = { svn { repourl = "$U/trunk" }, show } }
builder { name = "clobber", workers = { "w1" }, steps = {
  svn { repourl = "$U/trunk", mode = "full", method = "clobber" }, show } }
builder { name = "fresh", workers = { "w1" }, steps = { svn { repourl = "$U/trunk", mode = "full" }, show } }
builder { name = "copy", workers = { "w1" }, steps = {
  svn { repourl = "$U/trunk", mode = "full", method = "copy" }, show } }
builder { name = "auth", workers = { "w1" }, steps = {
  svn { repourl = "$U/%%BRANCH%%", branch = "trunk", username = "ann", password = secret("svnpw"),
        extra_args = { "--ignore-externals" } }, show } }
builder { name = "broken", workers = { "w1" }, steps = { svn { repourl = "file://$TRASH/no-such-repo" } } }
builder { name = "tryb", workers = { "w1" }, steps = { svn { repourl = "$U/trunk" }, show } }
builder { name = "bb", workers = { "bbw" }, steps = { svn { repourl = "$U/trunk" }, show } }
force_scheduler { name = "force", builders = { "inc", "clobber", "fresh", "copy", "auth", "broken", "bb" } }
try_scheduler { name = "try", builders = { "tryb" }, token = secret("try") }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
printf 'bb-secret-%s' "$$" > "$M/secrets/bbw"
printf 'try-token-%s' "$$" > "$M/secrets/try"
printf 'svn-pass-%s' "$$" > "$M/secrets/svnpw"
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
check "got_revision is the repository's revision, source SVN ($(got_rev "$b"))" [ "$(got_rev "$b")" = "[\"$REV1\", \"SVN\"]" ]
check "the tree is there" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "it checked out" grep -q "svn checkout $U/trunk \. --non-interactive --no-auth-cache" <<<"$(log_text "$b" 1)"

echo two > "$TRASH/wc/hello.txt"; svn commit -q -m two "$TRASH/wc"
REV2=$(svn info --show-item revision "$U/trunk")
touch "$TRASH/w1/inc/build/untracked.txt"
b=$(run inc)
check "an incremental update succeeds" build_results_is "$b" 0
check "it has the new commit" grep -q "^otwo" <<<"$(log_text "$b" 2)"
check "got_revision moved ($(got_rev "$b"))" [ "$(got_rev "$b")" = "[\"$REV2\", \"SVN\"]" ]
check "incremental keeps unversioned files" grep -q "^ountracked.txt" <<<"$(log_text "$b" 2)"
out=$(log_text "$b" 1)
check "it updated, not checked out" grep -q "svn update" <<<"$out" && lacks "svn checkout" "$out"

bid=$(api builders/inc | jpy 'd["builders"][0]["builderid"]')
br=$(rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$bid\",\"revision\":\"$REV1\"}}" | jpy 'list(d["result"][1].values())[0]')
check "a forced older revision completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "and checks that revision out" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "got_revision is that revision" [ "$(got_rev "$b")" = "[\"$REV1\", \"SVN\"]" ]

b=$(run fresh)
check "fresh: first build" build_results_is "$b" 0
touch "$TRASH/w1/fresh/build/untracked.txt" "$TRASH/w1/fresh/build/ignored.o"
echo local > "$TRASH/w1/fresh/build/hello.txt"
b=$(run fresh)
check "fresh: second build succeeds" build_results_is "$b" 0
check "fresh removes unversioned and ignored files" lacks 'untracked.txt\|ignored.o' "$(log_text "$b" 2)"
check "fresh reverts local changes" grep -q "^otwo" <<<"$(log_text "$b" 2)"

b=$(run clobber)
touch "$TRASH/w1/clobber/build/marker"
b=$(run clobber)
check "clobber: second build succeeds" build_results_is "$b" 0
check "clobber removed the tree" lacks marker "$(log_text "$b" 2)"

b=$(run copy)
check "copy: the build succeeds" build_results_is "$b" 0
check "copy: the source tree beside the workdir" [ -d "$TRASH/w1/copy/source/.svn" ]
check "copy: the workdir is a copy" grep -q "^otwo" <<<"$(log_text "$b" 2)"

b=$(run auth)
check "%%BRANCH%%, username and password: the build succeeds" build_results_is "$b" 0
out=$(log_text "$b" 1)
check "the branch went into the URL" grep -q "svn checkout $U/trunk " <<<"$out"
check "with --username and extra_args" grep -q -- "--username ann --password <secret> --ignore-externals" <<<"$out"
check "the password is never stored" lacks "svn-pass-$$" "$out"

b=$(run broken)
check "an unreachable repository ends FAILURE" build_results_is "$b" 2
check "svn's own error is in the log" grep -q "E180001" <<<"$(log_text "$b" 1)"

diff=$(printf -- '--- a/hello.txt\n+++ b/hello.txt\n@@ -1,1 +1,1 @@\n-two\n+two, patched\n' | base64 -w0)
res=$(rpc tryschedulers/try "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"try\",\"params\":{\"token\":\"try-token-$$\",\"revision\":\"$REV2\",\"repository\":\"$U/trunk\",\"patch_base64\":\"$diff\",\"patch_level\":1}}")
bsid=$(jpy 'd["result"]["bsid"]' <<<"$res")
br=$(api "buildrequests?buildsetid=$bsid" | jpy 'd["buildrequests"][0]["buildrequestid"]')
check "a try build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "it succeeds" build_results_is "$b" 0
check "with the patch applied" grep -q "^otwo, patched" <<<"$(log_text "$b" 2)"
check "by patch -p1" grep -q "patch -p1 --remove-empty-files --force --forward" <<<"$(log_text "$b" 1)"

if command -v buildbot-worker >/dev/null; then
    W=$TRASH/bbworker
    buildbot-worker create-worker -q --protocol msgpack_experimental_v7 "$W" "${WADDR%:*}:${WADDR##*:}" \
        bbw "$(cat "$M/secrets/bbw")" >/dev/null
    buildbot-worker start --nodaemon "$W" >"$W.log" 2>&1 &
    e2e_track $!
    check "buildbot-worker attaches" wait_for 40 worker_connected bbw
    b=$(run bb)
    check "the svn step on buildbot-worker succeeds" build_results_is "$b" 0
    check "with the tree and got_revision" [ "$(got_rev "$b")" = "[\"$REV2\", \"SVN\"]" ]
    b=$(run bb)
    check "and updates incrementally there" grep -q "svn update" <<<"$(log_text "$b" 1)"
else
    not_ok "buildbot-worker is not installed (scripts/install-deps installs it)"
fi
done_testing
