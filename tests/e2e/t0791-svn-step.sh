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
. "$(dirname "$0")/lib-vcsstep.sh"
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

vcsstep_master <<LUA
worker { name = "bbw", password = secret("bbw") }
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
printf 'svn-pass-%s' "$$" > "$M/secrets/svnpw"
vcsstep_start

b=$(force_build inc)
check "a first incremental build checks out and succeeds" build_results_is "$b" 0
check "got_revision is the repository's revision, source SVN ($(got_rev "$b"))" [ "$(got_rev "$b")" = "[\"$REV1\", \"SVN\"]" ]
check "the tree is there" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "it checked out" grep -q "svn checkout $U/trunk \. --non-interactive --no-auth-cache" <<<"$(log_text "$b" 1)"

echo two > "$TRASH/wc/hello.txt"; svn commit -q -m two "$TRASH/wc"
REV2=$(svn info --show-item revision "$U/trunk")
touch "$TRASH/w1/inc/build/untracked.txt"
b=$(force_build inc)
check "an incremental update succeeds" build_results_is "$b" 0
check "it has the new commit" grep -q "^otwo" <<<"$(log_text "$b" 2)"
check "got_revision moved ($(got_rev "$b"))" [ "$(got_rev "$b")" = "[\"$REV2\", \"SVN\"]" ]
check "incremental keeps unversioned files" grep -q "^ountracked.txt" <<<"$(log_text "$b" 2)"
out=$(log_text "$b" 1)
check "it updated, not checked out" grep -q "svn update" <<<"$out" && lacks "svn checkout" "$out"

br=$(force_revision inc "\"revision\":\"$REV1\"")
check "a forced older revision completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "and checks that revision out" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "got_revision is that revision" [ "$(got_rev "$b")" = "[\"$REV1\", \"SVN\"]" ]

edit_hello() { echo local > "$TRASH/w1/fresh/build/hello.txt"; }
fresh_twice fresh unversioned edit_hello
check "fresh reverts local changes" grep -q "^otwo" <<<"$(log_text "$b" 2)"

clobber_twice clobber

b=$(force_build copy)
check "copy: the build succeeds" build_results_is "$b" 0
check "copy: the source tree beside the workdir" [ -d "$TRASH/w1/copy/source/.svn" ]
check "copy: the workdir is a copy" grep -q "^otwo" <<<"$(log_text "$b" 2)"

b=$(force_build auth)
check "%%BRANCH%%, username and password: the build succeeds" build_results_is "$b" 0
out=$(log_text "$b" 1)
check "the branch went into the URL" grep -q "svn checkout $U/trunk " <<<"$out"
check "with --username and extra_args" grep -q -- "--username ann --password <secret> --ignore-externals" <<<"$out"
check "the password is never stored" lacks "svn-pass-$$" "$out"

b=$(force_build broken)
check "an unreachable repository ends FAILURE" build_results_is "$b" 2
check "svn's own error is in the log" grep -q "E180001" <<<"$(log_text "$b" 1)"

br=$(try_patch "$U/trunk" "$REV2")
check "a try build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "it succeeds" build_results_is "$b" 0
check "with the patch applied" grep -q "^otwo, patched" <<<"$(log_text "$b" 2)"
check "by patch -p1" grep -q "patch -p1 --remove-empty-files --force --forward" <<<"$(log_text "$b" 1)"

if have_buildbot_worker; then
    W=$TRASH/bbworker
    start_buildbot_worker "$W" bbw "$M/secrets/bbw"
    check "buildbot-worker attaches" wait_for 40 worker_connected bbw
    b=$(force_build bb)
    check "the svn step on buildbot-worker succeeds" build_results_is "$b" 0
    check "with the tree and got_revision" [ "$(got_rev "$b")" = "[\"$REV2\", \"SVN\"]" ]
    b=$(force_build bb)
    check "and updates incrementally there" grep -q "svn update" <<<"$(log_text "$b" 1)"
fi
done_testing
