#!/bin/bash
# asan-too
# Several codebases per build: two real git repositories polled by two git
# pollers, a codebase_generator mapping each repository to its codebase, and a
# single_branch scheduler with a codebases map.  A commit in one repository
# gives a buildset with two sourcestamps (that codebase at the commit, the
# other at the map's defaults), shown by /api/v2/buildsets/N and
# /api/v2/sourcestamps in Buildbot's shape; a force call sets a codebase's
# revision with Buildbot's CODEBASE_revision field; the builds run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-poller.sh"

export GIT_AUTHOR_NAME="Ann Dev" GIT_AUTHOR_EMAIL=ann@example.org
export GIT_COMMITTER_NAME="Ann Dev" GIT_COMMITTER_EMAIL=ann@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME=$TRASH
git config --global init.defaultBranch main
APP=$TRASH/app
LIB=$TRASH/lib
for r in "$APP" "$LIB"; do
    git init -q "$r"
    echo one > "$r/a.txt" && git -C "$r" add a.txt && git -C "$r" commit -qm initial
done

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "echo built" } } }
git_poller { name = "app", repository = "$APP", branches = { "main" }, interval = 3600 }
git_poller { name = "lib", repository = "$LIB", branches = { "main" }, interval = 3600 }
codebase_generator = { ["$APP"] = "app", ["$LIB"] = "lib" }
single_branch { name = "both", builders = { "b" }, codebases = {
  app = { repository = "$APP", branch = "main" },
  lib = { repository = "$LIB", branch = "main" },
} }
force_scheduler { name = "force", builders = { "b" }, codebases = {
  app = { repository = "$APP", branch = "main" },
  lib = { repository = "$LIB", branch = "main" },
} }
LUA
printf 'w1-secret' > "$M/secrets/w1"
check "checkconfig accepts codebases and codebase_generator" checkconfig
start_master_w1 "$M" 30
check "first polls done" wait_for 30 eval 'polled app && polled lib'

nbuildsets() { api buildsets | jpy 'd["meta"]["total"]'; }
# ss BSID CODEBASE FIELD: a field of the buildset's sourcestamp for CODEBASE
ss() { api "buildsets/$1" | jpy "[s['$3'] for s in d['buildsets'][0]['sourcestamps'] if s['codebase'] == '$2'][0]"; }

echo two >> "$APP/a.txt" && git -C "$APP" commit -qam "app change"
arev=$(git -C "$APP" rev-parse HEAD)
poll app
check "the app commit gives a buildset" wait_for 30 eval '[ "$(nbuildsets)" = 1 ]'
check "its change has codebase 'app' (codebase_generator)" \
    [ "$(api "changes?revision=$arev" | jpy 'd["changes"][0]["codebase"]')" = app ]
check "the buildset has one sourcestamp per codebase, in codebase order" \
    [ "$(api buildsets/1 | jpy '",".join(s["codebase"] for s in d["buildsets"][0]["sourcestamps"])')" = app,lib ]
check "app at the commit" [ "$(ss 1 app revision)" = "$arev" ]
check "app's branch and repository" [ "$(ss 1 app branch)|$(ss 1 app repository)" = "main|$APP" ]
check "lib at the map's defaults (no revision: the newest)" \
    [ "$(ss 1 lib revision)|$(ss 1 lib branch)|$(ss 1 lib repository)" = "null|main|$LIB" ]
check "sourcestamps in Buildbot's shape" \
    [ "$(api buildsets/1 | jpy '",".join(sorted(d["buildsets"][0]["sourcestamps"][1]))')" = branch,codebase,created_at,patch,project,repository,revision,ssid ]
check "a build of the buildset ran" wait_for 60 build_done 1
check "and succeeded" [ "$(api 'builds?order=buildid&limit=1' | jpy 'd["builds"][0]["results"]')" = 0 ]

echo three >> "$LIB/a.txt" && git -C "$LIB" commit -qam "lib change"
lrev=$(git -C "$LIB" rev-parse HEAD)
poll lib
check "the lib commit gives a second buildset" wait_for 30 eval '[ "$(nbuildsets)" = 2 ]'
check "lib at its commit, app at the default" \
    [ "$(ss 2 lib revision)|$(ss 2 app revision)" = "$lrev|null" ]
sscount() { api "sourcestamps" | jpy 'len([s for s in d["sourcestamps"] if s["codebase"] in ("app", "lib")])'; }
check "/api/v2/sourcestamps lists them (changes' own and the buildsets')" [ "$(sscount)" -ge 6 ]

bid=$(api builders/b | jpy 'd["builders"][0]["builderid"]')
out=$(rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$bid\",\"reason\":\"mc\",\"lib_revision\":\"$lrev\",\"app_revision\":\"\"}}")
check "force with a per-codebase revision" [ "$(echo "$out" | jpy '"result" in d')" = true ]
check "the forced buildset has lib at the given revision" [ "$(ss 3 lib revision)|$(ss 3 app branch)" = "$lrev|main" ]
out=$(rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$bid\",\"lib_repository\":\"https://evil.example/x.git\"}}")
check "a per-codebase repository other than the map's is refused" \
    [ "$(echo "$out" | jpy 'd["error"]["message"]')" = "'lib_repository' must be empty or the configured value (force scheduler 'force' sets no 'repositories')" ]
check "every build ran" wait_for 60 build_done 3
check "no crash in the log" sh -c "! grep -q 'AddressSanitizer\|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
