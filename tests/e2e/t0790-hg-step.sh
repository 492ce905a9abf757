#!/bin/bash
# asan-too
# The hg source step on a real Mercurial repository, with kiln-worker and
# Debian's buildbot-worker: a clone, an incremental update picking up a new
# commit, got_revision (source Mercurial) matching the repository, a forced
# older revision, mode full with methods clobber and fresh (untracked and
# ignored files purged), branch_type "inrepo" on a named branch, a try patch
# applied with hg import, and an unreachable repository (FAILURE with hg's
# error in the log).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-vcsstep.sh"
require_cmd hg
export HGUSER="T <t@example.org>" HGPLAIN=1

R=$TRASH/repo
hg init "$R"
echo one > "$R/hello.txt"; printf 'syntax: glob\n*.o\n' > "$R/.hgignore"
hg -R "$R" commit -qAm one
REV1=$(hg -R "$R" log -r . --template '{node}')
hg -R "$R" branch -q stable; echo stable > "$R/hello.txt"; hg -R "$R" commit -qm stable
STABLE=$(hg -R "$R" log -r . --template '{node}')
hg -R "$R" update -q default

vcsstep_master <<LUA
worker { name = "bbw", password = secret("bbw") }
builder { name = "inc", workers = { "w1" }, steps = { hg { repourl = "$R" }, show } }
builder { name = "clobber", workers = { "w1" }, steps = {
  hg { repourl = "$R", mode = "full", method = "clobber" }, show } }
builder { name = "fresh", workers = { "w1" }, steps = { hg { repourl = "$R", mode = "full" }, show } }
builder { name = "inrepo", workers = { "w1" }, steps = {
  hg { repourl = "$R", branch_type = "inrepo", branch = "stable" }, show } }
builder { name = "broken", workers = { "w1" }, steps = {
  hg { repourl = "$TRASH/no-such-repo", codebase = "cb" } } }
builder { name = "tryb", workers = { "w1" }, steps = { hg { repourl = "$R" }, show } }
builder { name = "bb", workers = { "bbw" }, steps = { hg { repourl = "$R" }, show } }
force_scheduler { name = "force", builders = { "inc", "clobber", "fresh", "inrepo", "broken", "bb" } }
try_scheduler { name = "try", builders = { "tryb" }, token = secret("try") }
LUA
vcsstep_start

b=$(force_build inc)
check "a first incremental build clones and succeeds" build_results_is "$b" 0
check "got_revision is the repository's tip, source Mercurial ($(got_rev "$b"))" [ "$(got_rev "$b")" = "[\"$REV1\", \"Mercurial\"]" ]
check "the tree is there" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "it cloned" grep -q "clone --noupdate" <<<"$(log_text "$b" 1)"
check "the step says update" [ "$(api "builds/$b/steps/1" | jpy 'd["steps"][0]["state_string"]')" = update ]

echo two > "$R/hello.txt"; hg -R "$R" commit -qm two
REV2=$(hg -R "$R" log -r . --template '{node}')
touch "$TRASH/w1/inc/build/untracked.txt"
b=$(force_build inc)
check "an incremental update succeeds" build_results_is "$b" 0
check "it has the new commit" grep -q "^otwo" <<<"$(log_text "$b" 2)"
check "got_revision moved ($(got_rev "$b"))" [ "$(got_rev "$b")" = "[\"$REV2\", \"Mercurial\"]" ]
check "incremental keeps untracked files" grep -q "^ountracked.txt" <<<"$(log_text "$b" 2)"
out=$(log_text "$b" 1)
check "it pulled and updated, not cloned" [ "$(grep -c 'hg --verbose pull' <<<"$out")" -ge 1 ] && lacks "clone" "$out"

br=$(force_revision inc "\"revision\":\"$REV1\"")
check "a forced older revision completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "and checks that revision out" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "got_revision is that revision" [ "$(got_rev "$b")" = "[\"$REV1\", \"Mercurial\"]" ]

fresh_twice fresh untracked
check "fresh ran hg purge --all" grep -q "purge --all" <<<"$(log_text "$b" 1)"

clobber_twice clobber

b=$(force_build inrepo)
check "inrepo: the build succeeds" build_results_is "$b" 0
check "inrepo: on the named branch" grep -q "^ostable" <<<"$(log_text "$b" 2)"
check "inrepo: got_revision is the branch head" [ "$(got_rev "$b")" = "[\"$STABLE\", \"Mercurial\"]" ]

b=$(force_build broken)
check "an unreachable repository ends FAILURE" build_results_is "$b" 2
check "hg's own error is in the log" grep -q "abort: repository .*not found" <<<"$(log_text "$b" 1)"
check "no got_revision" [ "$(api "builds/$b/properties" | jpy "'got_revision' in d['properties'][0]")" = false ]

br=$(try_patch "$R" "$REV2")
check "a try build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "it succeeds" build_results_is "$b" 0
check "with the patch applied by hg import" grep -q "^otwo, patched" <<<"$(log_text "$b" 2)"
check "hg import ran" grep -q "import --no-commit -p1 -" <<<"$(log_text "$b" 1)"

if have_buildbot_worker; then
    W=$TRASH/bbworker
    start_buildbot_worker "$W" bbw "$M/secrets/bbw"
    check "buildbot-worker attaches" wait_for 40 worker_connected bbw
    b=$(force_build bb)
    check "the hg step on buildbot-worker succeeds" build_results_is "$b" 0
    check "with the tree and got_revision" [ "$(got_rev "$b")" = "[\"$REV2\", \"Mercurial\"]" ]
    b=$(force_build bb)
    check "and updates incrementally there" grep -q "hg --verbose pull" <<<"$(log_text "$b" 1)"
fi
done_testing
