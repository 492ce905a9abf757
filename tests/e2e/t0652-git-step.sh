#!/bin/bash
# asan-too
# The git source step on a real repository, with kiln-worker and Debian's
# buildbot-worker: a clone, an incremental update picking up a new commit,
# got_revision (the Git source) matching the repository, a forced older
# revision, mode full with methods clobber, fresh (untracked and ignored
# files removed) and copy, a shallow clone, retries of a clone that cannot
# work (FAILURE with git's error in the log), and a try patch applied by the
# step.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-vcsstep.sh"
require_cmd git

R=$TRASH/repo
git init -q -b main "$R"
git -C "$R" config user.email t@example.org; git -C "$R" config user.name T
echo one > "$R/hello.txt"; echo '*.o' > "$R/.gitignore"
git -C "$R" add -A; git -C "$R" commit -qm one
REV1=$(git -C "$R" rev-parse HEAD)

vcsstep_master <<LUA
worker { name = "bbw", password = secret("bbw") }
builder { name = "inc", workers = { "w1" }, steps = { git { repourl = "$R", branch = "main" }, show } }
builder { name = "clobber", workers = { "w1" }, steps = {
  git { repourl = "$R", mode = "full", method = "clobber" }, show } }
builder { name = "fresh", workers = { "w1" }, steps = {
  git { repourl = function(p) return "$R" end, mode = "full", method = "fresh", branch = "main" }, show } }
builder { name = "copy", workers = { "w1" }, steps = {
  git { repourl = "$R", mode = "full", method = "copy", branch = "main" }, show } }
builder { name = "shallow", workers = { "w1" }, steps = {
  git { repourl = "file://$R", shallow = true, branch = "main" },
  shell { name = "depth", command = "git rev-list --count HEAD" } } }
builder { name = "broken", workers = { "w1" }, steps = {
  git { repourl = "$TRASH/no-such-repo", retry = { 0, 2 }, codebase = "cb" } } }
builder { name = "bb", workers = { "bbw" }, steps = { git { repourl = "$R", branch = "main" }, show } }
force_scheduler { name = "force", builders = { "inc", "clobber", "fresh", "copy", "shallow", "broken", "bb" } }
try_scheduler { name = "try", builders = { "inc" }, token = secret("try") }
LUA
vcsstep_start

b=$(force_build inc)
check "a first incremental build clones and succeeds" build_results_is "$b" 0
check "got_revision is the repository's HEAD, source Git ($(got_rev "$b"))" [ "$(got_rev "$b")" = "[\"$REV1\", \"Git\"]" ]
check "the tree is there" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "the step says update" [ "$(api "builds/$b/steps/1" | jpy 'd["steps"][0]["state_string"]')" = update ]

echo two > "$R/hello.txt"; git -C "$R" commit -qam two
REV2=$(git -C "$R" rev-parse HEAD)
touch "$TRASH/w1/inc/build/untracked.txt"
b=$(force_build inc)
check "an incremental update succeeds" build_results_is "$b" 0
check "it has the new commit" grep -q "^otwo" <<<"$(log_text "$b" 2)"
check "got_revision moved ($(got_rev "$b"))" [ "$(got_rev "$b")" = "[\"$REV2\", \"Git\"]" ]
check "incremental keeps untracked files" grep -q "^ountracked.txt" <<<"$(log_text "$b" 2)"
check "it fetched, not cloned" grep -q "fetch -f -t" <<<"$(log_text "$b" 1)"

br=$(force_revision inc "\"revision\":\"$REV1\",\"branch\":\"main\"")
check "a forced older revision completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "and checks that revision out" grep -q "^oone" <<<"$(log_text "$b" 2)"
check "got_revision is that revision" [ "$(got_rev "$b")" = "[\"$REV1\", \"Git\"]" ]

# a try build: the git step checks out the base revision and applies the patch
git clone -q "$R" "$TRASH/dev"
git -C "$TRASH/dev" config user.email t@example.org; git -C "$TRASH/dev" config user.name T
echo "patched by try" > "$TRASH/dev/hello.txt"
out=$(cd "$TRASH/dev" && "$KILN" try --master "$URL" --builders inc --try-token "try-token-$$" 2>&1)
check "kiln try is accepted ($out)" grep -q '^buildset [0-9]*:' <<<"$out"
bsid=$(sed -n 's/^buildset \([0-9]*\):.*/\1/p' <<<"$out")
brid=$(api "buildrequests?buildsetid=$bsid" | jpy 'd["buildrequests"][0]["buildrequestid"]')
check "the try build completes" wait_for 60 request_done "$brid"
b=$(build_of_request "$brid")
check "and succeeds" build_results_is "$b" 0
check "the git step applied the patch" grep -q "^opatched by try" <<<"$(log_text "$b" 2)"
check "with git apply, logged" grep -q "applying a [0-9]*-byte patch" <<<"$(log_text "$b" 1)"

fresh_twice fresh untracked
check "fresh ran git clean -x" grep -q "clean -f -f -d -x" <<<"$(log_text "$b" 1)"

clobber_twice clobber

b=$(force_build copy)
check "copy: the build succeeds" build_results_is "$b" 0
check "copy: the source tree beside the workdir" [ -d "$TRASH/w1/copy/source/.git" ]
check "copy: the workdir is a copy" grep -q "^otwo" <<<"$(log_text "$b" 2)"

b=$(force_build shallow)
check "shallow: the build succeeds" build_results_is "$b" 0
check "shallow: one commit of history" grep -q "^o1$" <<<"$(log_text "$b" 2)"

b=$(force_build broken)
check "an unreachable repository ends FAILURE" build_results_is "$b" 2
out=$(log_text "$b" 1)
check "the clone was tried three times" [ "$(grep -c 'clone failed: retrying' <<<"$out")" = 2 ]
check "git's own error is in the log" grep -q "does not exist\|not a git repository\|Could not read" <<<"$out"

if have_buildbot_worker; then
    W=$TRASH/bbworker
    start_buildbot_worker "$W" bbw "$M/secrets/bbw"
    check "buildbot-worker attaches" wait_for 40 worker_connected bbw
    b=$(force_build bb)
    check "the git step on buildbot-worker succeeds" build_results_is "$b" 0
    check "with the tree and got_revision" [ "$(got_rev "$b")" = "[\"$REV2\", \"Git\"]" ]
    b=$(force_build bb)
    check "and updates incrementally there" grep -q "fetch -f -t" <<<"$(log_text "$b" 1)"
fi
done_testing
