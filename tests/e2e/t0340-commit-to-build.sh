#!/bin/bash
# asan-too
# From commit to build: a commit in a real git repository is found by the
# git poller, stored as a change (committer as author, the files), picked up
# by a single_branch scheduler whose tree-stable timer runs on the master's
# test clock, and built by a real kiln-worker; the build lists the change at
# /builds/N/changes and carries the blamelist property naming the committer.
. "$(dirname "$0")/lib.sh"
export KILN_TEST_CLOCK=1

export GIT_AUTHOR_NAME="Ann Dev" GIT_AUTHOR_EMAIL=ann@example.org
export GIT_COMMITTER_NAME="Ann Dev" GIT_COMMITTER_EMAIL=ann@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME=$TRASH
git config --global init.defaultBranch main
SRC=$TRASH/src
git init -q "$SRC"
echo one > "$SRC/a.txt" && git -C "$SRC" add a.txt && git -C "$SRC" commit -qm initial

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "echo built" } } }
git_poller { name = "src", repository = "$SRC", branches = { "main" }, interval = 3600 }
single_branch { name = "main", builders = { "b" }, change_filter = { branch = "main" },
                tree_stable_timer = 120 }
LUA
printf 'w1-secret' > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 30 worker_connected w1
polled() { [ "$(api changesources/src | jpy 'd["changesources"][0]["last_poll"] is not None')" = true ]; }
check "first poll done" wait_for 30 polled

echo two >> "$SRC/a.txt" && mkdir "$SRC/lib" && echo x > "$SRC/lib/x.c"
git -C "$SRC" add -A && git -C "$SRC" commit -qm "change a and add lib/x.c"
rev=$(git -C "$SRC" rev-parse HEAD)
rpc changesources/src '{"jsonrpc":"2.0","id":1,"method":"poll","params":{}}' >/dev/null
has_change() { [ "$(api "changes?revision=$rev" | jpy 'd["meta"]["total"]')" = 1 ]; }
check "the commit became a change" wait_for 30 has_change
check "author and files" [ "$(api "changes?revision=$rev" | jpy 'd["changes"][0]["author"] + "|" + ",".join(sorted(d["changes"][0]["files"]))')" = "Ann Dev <ann@example.org>|a.txt,lib/x.c" ]
advance() { rpc _test/clock "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"advance\",\"params\":{\"seconds\":$1}}" >/dev/null; }
nbuildsets() { api buildsets | jpy 'd["meta"]["total"]'; }
advance 60
check "no build while the tree is not stable (60 of 120 s)" [ "$(nbuildsets)" = 0 ]
advance 61
check "a buildset once the tree is stable" wait_for 60 eval '[ "$(nbuildsets)" = 1 ]'
build_done() { [ "$(api 'builds?complete=true' | jpy 'd["meta"]["total"]')" -ge 1 ]; }
check "a build ran" wait_for 60 build_done
bid=$(api 'builds?order=-buildid&limit=1' | jpy 'd["builds"][0]["buildid"]')
check "build succeeded" [ "$(build_field "$bid" results)" = 0 ]
check "/builds/N/changes lists the change" [ "$(api "builds/$bid/changes" | jpy 'd["changes"][0]["revision"]')" = "$rev" ]
check "blamelist property" [ "$(api "builds/$bid/properties" | jpy 'd["properties"][0]["blamelist"]')" = '[["Ann Dev <ann@example.org>"], "Build"]' ]
check "no crash in the log" sh -c "! grep -q 'AddressSanitizer\|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
