#!/bin/bash
# asan-too
# Source steps of two codebases in one build: a git repository (codebase
# "app") and a Mercurial one (codebase "lib").  Each step checks out its own
# codebase's sourcestamp (a forced lib revision reaches the hg step though
# lib is not the buildset's first sourcestamp); got_revision grows into
# {app = ..., lib = ...} as each step finishes, and %(prop:got_revision)s
# renders it as Buildbot does; a try patch of one codebase is applied by
# that codebase's step only (git apply for app, hg import for lib).  Steps
# with and without a codebase in one build (Buildbot asserts) keep both
# revisions, the codebase-less one under the key "".
. "$(dirname "$0")/lib.sh"
require_cmd hg

export GIT_AUTHOR_NAME="Ann Dev" GIT_AUTHOR_EMAIL=ann@example.org
export GIT_COMMITTER_NAME="Ann Dev" GIT_COMMITTER_EMAIL=ann@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME=$TRASH HGUSER="T <t@example.org>" HGPLAIN=1
git config --global init.defaultBranch main
APP=$TRASH/app
LIB=$TRASH/lib
git init -q "$APP"
echo app-one > "$APP/a.txt" && git -C "$APP" add a.txt && git -C "$APP" commit -qm one
AREV=$(git -C "$APP" rev-parse HEAD)
hg init "$LIB"
echo lib-one > "$LIB/l.txt" && hg -R "$LIB" commit -qAm one
LREV1=$(hg -R "$LIB" log -r . --template '{node}')
echo lib-two > "$LIB/l.txt" && hg -R "$LIB" commit -qm two
LREV2=$(hg -R "$LIB" log -r . --template '{node}')

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1"), max_builds = 2 }
local app = git { repourl = "$APP", codebase = "app", workdir = "build/app" }
local got = { GOT = interpolate("%(prop:got_revision)s") }
local lib = hg { repourl = "$LIB", codebase = "lib", workdir = "build/lib" }
builder { name = "both", workers = { "w1" }, steps = {
  app,
  shell { name = "mid", command = 'echo "mid=\$GOT"', env = got },
  lib,
  shell { name = "show", command = 'echo "got=\$GOT"; cat app/a.txt lib/l.txt', env = got },
} }
builder { name = "mixed", workers = { "w1" }, steps = {
  git { repourl = "$APP", workdir = "build/app" }, lib } }
builder { name = "mixed2", workers = { "w1" }, steps = {
  lib, git { repourl = "$APP", workdir = "build/app" },
  shell { name = "show", command = 'echo "got=\$GOT"', env = got } } }
force_scheduler { name = "cb", builders = { "both" }, codebases = {
  app = { repository = "$APP", branch = "main" },
  lib = { repository = "$LIB" },
} }
force_scheduler { name = "force", builders = { "mixed", "mixed2" } }
try_scheduler { name = "try", builders = { "both" }, token = secret("try"), codebases = {
  app = { repository = "$APP" }, lib = { repository = "$LIB" } } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
printf 'try-token-%s' "$$" > "$M/secrets/try"
check "checkconfig accepts it" sh -c "'$KILN' checkconfig '$M' >/dev/null"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 30 worker_connected w1

got_rev() { api "builds/$1/properties" | jpy "d['properties'][0].get('got_revision')"; }
# done_build BRID: waits for the request, prints its build
done_build() { wait_for 90 request_done "$1" >/dev/null && build_of_request "$1"; }
step_results() { api "builds/$1/steps" | jpy '",".join("%s=%s" % (s["name"], s["results"]) for s in d["steps"])'; }
lacks() { ! grep -q "$1" <<<"$2"; }
try_patch() { # try_patch CODEBASE REVISION DIFF: prints the try build request's id
    local res bsid
    res=$(rpc tryschedulers/try "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"try\",\"params\":{\"token\":\"try-token-$$\",\"codebase\":\"$1\",\"revision\":\"$2\",\"patch_base64\":\"$(printf -- "$3" | base64 -w0)\",\"patch_level\":1}}")
    bsid=$(jpy 'd["result"]["bsid"]' <<<"$res") || return 1
    api "buildrequests?buildsetid=$bsid" | jpy 'd["buildrequests"][0]["buildrequestid"]'
}

# a forced build with an older lib revision: lib is the second sourcestamp
bid=$(api builders/both | jpy 'd["builders"][0]["builderid"]')
br=$(rpc forceschedulers/cb "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$bid\",\"reason\":\"mc\",\"lib_revision\":\"$LREV1\"}}" |
    jpy 'list(d["result"][1].values())[0]')
b=$(done_build "$br")
check "the two-codebase build succeeds ($(step_results "$b"))" build_results_is "$b" 0
check "got_revision holds both codebases ($(got_rev "$b"))" \
    [ "$(got_rev "$b" | jpy "d == [{'app': '$AREV', 'lib': '$LREV1'}, 'Mercurial']")" = true ]
check "between the steps it held app's alone, rendered as Buildbot does" \
    grep -qx "omid={'app': '$AREV'}" <<<"$(log_text "$b" 2)"
check "after both, %(prop:got_revision)s renders the dict in step order" \
    grep -qx "ogot={'app': '$AREV', 'lib': '$LREV1'}" <<<"$(log_text "$b" 4)"
check "the hg step checked out lib's forced revision" grep -qx "olib-one" <<<"$(log_text "$b" 4)"
check "and the git step app's branch" grep -qx "oapp-one" <<<"$(log_text "$b" 4)"

# a try patch of codebase lib: applied by hg only
br=$(try_patch lib "$LREV2" '--- a/l.txt\n+++ b/l.txt\n@@ -1,1 +1,1 @@\n-lib-two\n+lib-two, patched\n')
b=$(done_build "$br")
check "a lib try build succeeds ($(step_results "$b"))" build_results_is "$b" 0
out=$(log_text "$b" 4)
check "lib's tree has the patch" grep -qx "olib-two, patched" <<<"$out"
check "app's tree is as committed" grep -qx "oapp-one" <<<"$out"
check "the hg step applied it" grep -q "import --no-commit -p1 -" <<<"$(log_text "$b" 3)"
check "the git step did not" lacks "applying\|git apply" "$(log_text "$b" 1)"
check "got_revision has both codebases" \
    [ "$(got_rev "$b" | jpy "d[0] == {'app': '$AREV', 'lib': '$LREV2'}")" = true ]
bs=$(api "builds/$b" | jpy 'd["builds"][0]["buildrequestid"]')
bs=$(api "buildrequests/$bs" | jpy 'd["buildrequests"][0]["buildsetid"]')
check "the patch is on lib's sourcestamp only, app's is the map's default" \
    [ "$(api "buildsets/$bs" | jpy '" ".join(sorted("%s=%s" % (s["codebase"], s["patch"] is not None) for s in d["buildsets"][0]["sourcestamps"]))')" = "app=False lib=True" ]
logs=$(api "builds/$b/steps/3/logs" | jpy '",".join(l["name"] for l in d["logs"])')
check "the hg step has Buildbot's patch log ($logs)" [ "$logs" = "stdio,patch" ]
lid=$(api "builds/$b/steps/3/logs/patch" | jpy 'd["logs"][0]["logid"]')
check "holding the diff" grep -q '^+lib-two, patched' <<<"$(curl -s "$URL/api/v2/logs/$lid/raw")"

# a try patch of codebase app: applied by git only
br=$(try_patch app "$AREV" '--- a/a.txt\n+++ b/a.txt\n@@ -1,1 +1,1 @@\n-app-one\n+app-one, patched\n')
b=$(done_build "$br")
check "an app try build succeeds ($(step_results "$b"))" build_results_is "$b" 0
out=$(log_text "$b" 4)
check "app's tree has the patch" grep -qx "oapp-one, patched" <<<"$out"
check "lib's tree is lib's tip" grep -qx "olib-two" <<<"$out"
check "the git step applied it" grep -q "git apply --index -p1" <<<"$(log_text "$b" 1)"
check "the hg step did not" lacks "applying\|import" "$(log_text "$b" 3)"

# steps with and without a codebase in one build: Buildbot asserts, Kiln
# keeps the codebase-less step's revision under the key ""
b=$(done_build "$(force mixed)")
check "a codebase step after one without succeeds ($(step_results "$b"))" \
    [ "$(step_results "$b")" = "worker_preparation=0,git=0,hg=0" ]
check "the hg step says the build has no sourcestamp of its codebase" \
    grep -q "no sourcestamp of codebase 'lib'" <<<"$(log_text "$b" 2)"
check "got_revision keeps both, git's under ''" \
    [ "$(got_rev "$b" | jpy "d == [{'': '$AREV', 'lib': '$LREV2'}, 'Mercurial']")" = true ]
b=$(done_build "$(force mixed2)")
check "a step without a codebase after one with succeeds ($(step_results "$b"))" \
    [ "$(step_results "$b")" = "worker_preparation=0,hg=0,git=0,show=0" ]
check "got_revision keeps both ($(got_rev "$b"))" \
    [ "$(got_rev "$b" | jpy "d == [{'lib': '$LREV2', '': '$AREV'}, 'Git']")" = true ]
check "in step order, as %(prop:got_revision)s shows" \
    grep -qx "ogot={'lib': '$LREV2', '': '$AREV'}" <<<"$(log_text "$b" 3)"

check "no crash in the log" sh -c "! grep -q 'AddressSanitizer\|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
