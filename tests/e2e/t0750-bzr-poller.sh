#!/bin/bash
# asan-too
# The Breezy/Bazaar poller against a real branch made here (brz init): the
# first poll records the tip and makes no change; a later commit (with an
# --author, a rename and a multi-line message) becomes a change with the
# apparent author, the committer, the files (both names of a rename), the
# revno as revision and the configured branch, a single_branch scheduler
# builds it on a kiln-worker, and a history rewrite (uncommit + new commit)
# yields one change for the new tip.  The state survives a restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-poller.sh"
require_cmd brz
export KILN_TEST_CLOCK=1 HOME=$TRASH BRZ_LOG=/dev/null

SRC=$TRASH/src
brz whoami "Ann Dev <ann@example.org>"
brz init -q "$SRC"
echo one > "$SRC/a.txt" && brz add -q "$SRC/a.txt" && brz commit -q -m initial "$SRC"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "echo built" } } }
bzr_poller { name = "src", repository = "$SRC", branch = "trunk", interval = 3600,
             project = "p", revlink = "https://bzr.example/r%s" }
single_branch { name = "trunk", builders = { "b" }, change_filter = { branch = "trunk" },
                tree_stable_timer = 1 }
LUA
printf 'w1-secret' > "$M/secrets/w1"
check "checkconfig accepts bzr_poller" checkconfig
start_master_w1 "$M" 30
check "first poll done" wait_for 30 polled
check "no change from the first poll" [ "$(nchanges)" = 0 ]

echo two >> "$SRC/a.txt" && mkdir "$SRC/lib" && echo x > "$SRC/lib/x c.txt"
brz add -q "$SRC/lib" && brz mv -q "$SRC/a.txt" "$SRC/b.txt"
printf 'second commit\n\n------------------------------------------------------------\nrevno: 99\n' > "$TRASH/msg"
brz commit -q --author "Bob Writer <bob@example.org>" -F "$TRASH/msg" "$SRC"
echo three >> "$SRC/b.txt" && brz commit -q -m "third" "$SRC"
poll
check "two changes" wait_for 30 eval '[ "$(nchanges)" = 2 ]'
api "changes?project=p&order=changeid" > "$TRASH/c.json"
check "fields" /usr/bin/python3 - "$TRASH/c.json" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1]))["changes"]
assert a["author"] == "Bob Writer <bob@example.org>", a
assert a["committer"] == "Ann Dev <ann@example.org>", a
assert a["revision"] == "2" and a["branch"] == "trunk", a
assert a["comments"] == "second commit\n\n" + "-" * 60 + "\nrevno: 99", repr(a["comments"])
assert sorted(a["files"]) == ["a.txt", "b.txt", "lib", "lib/x c.txt"], a["files"]
assert a["revlink"] == "https://bzr.example/r2", a
assert b["revision"] == "3" and b["author"] == "Ann Dev <ann@example.org>", b
assert b["comments"] == "third" and b["files"] == ["b.txt"], b
PY
advance 2
check "a build ran" wait_for 60 build_done
bid=$(api 'builds?order=-buildid&limit=1' | jpy 'd["builds"][0]["buildid"]')
check "build succeeded" [ "$(build_field "$bid" results)" = 0 ]
check "the build has the changes" [ "$(api "builds/$bid/changes" | jpy 'sorted(c["revision"] for c in d["changes"])')" = '["2", "3"]' ]

check "master stops" stop_pid "$MASTER_PID"
# history rewritten while the master is down: revno 3 replaced
brz uncommit -q --force "$SRC" >/dev/null && brz revert -q "$SRC"
echo four >> "$SRC/b.txt" && brz commit -q -m "rewritten third" "$SRC"
check "master restarts" start_master "$M"
check "poll after the restart" wait_for 30 polled
check "the rewrite: one change for the new tip" wait_for 30 eval '[ "$(nchanges)" = 3 ]'
check "its fields" [ "$(api "changes?project=p&order=-changeid&limit=1" | jpy 'd["changes"][0]["revision"] + "|" + d["changes"][0]["comments"]')" = "3|rewritten third" ]
echo five >> "$SRC/b.txt" && brz commit -q -m "fourth" "$SRC"
poll
check "and the next commit after it" wait_for 30 eval '[ "$(nchanges)" = 4 ]'
check "no crash in the log" sh -c "! grep -q 'AddressSanitizer\|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
