#!/bin/bash
# asan-too
# The Darcs poller against a real repository made here (darcs init): the
# first poll copies it and records the newest patch without making a
# change; later patches (a move, a long comment holding XML specials and a
# raw control character, which darcs writes as is) become changes with the
# author, the files, the patch hash as revision and name + long comment as
# comments, oldest first; an any_branch scheduler builds them on a
# kiln-worker.  The state survives a restart, and a removed copy is made
# again without reporting old patches twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-poller.sh"
require_cmd darcs
export KILN_TEST_CLOCK=1 HOME=$TRASH

SRC=$TRASH/src
mkdir "$SRC" && darcs init -q --repodir "$SRC"
echo one > "$SRC/a.txt" && darcs add -q --repodir "$SRC" a.txt
darcs record -q -a --repodir "$SRC" -A "Ann Dev <ann@example.org>" -m initial

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "echo built" } } }
darcs_poller { name = "src", repository = "$SRC", branch = "main", interval = 3600,
               project = "p" }
any_branch { name = "all", builders = { "b" }, tree_stable_timer = 1 }
LUA
printf 'w1-secret' > "$M/secrets/w1"
check "checkconfig accepts darcs_poller" checkconfig
start_master_w1 "$M" 30
check "first poll done" wait_for 30 polled
check "no change from the first poll" [ "$(nchanges)" = 0 ]

echo two >> "$SRC/a.txt" && mkdir "$SRC/lib" && echo x > "$SRC/lib/x.c"
darcs add -q --repodir "$SRC" lib lib/x.c
printf 'second <patch> & more\nlong comment\n\001line\n' > "$TRASH/msg"
darcs record -q -a --repodir "$SRC" -A "Bob <bob@example.org>" --logfile="$TRASH/msg"
darcs move -q --repodir "$SRC" a.txt b.txt
darcs record -q -a --repodir "$SRC" -A "Carol <carol@example.org>" -m "third: move"
hash2=$(darcs log --repodir "$SRC" --xml-output --last 2 | grep -o "hash='[0-9a-f]*'" | tail -1 | cut -d"'" -f2)
poll
check "two changes" wait_for 30 eval '[ "$(nchanges)" = 2 ]'
api "changes?project=p&order=changeid" > "$TRASH/c.json"
check "fields" /usr/bin/python3 - "$TRASH/c.json" "$hash2" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1]))["changes"]
assert a["author"] == "Bob <bob@example.org>" and a["branch"] == "main", a
assert a["revision"] == sys.argv[2], (a, sys.argv[2])
assert a["comments"] == "second <patch> & more\nlong comment\n?line", repr(a["comments"])
assert sorted(a["files"]) == ["a.txt", "lib", "lib/x.c"], a["files"]
assert b["author"] == "Carol <carol@example.org>" and b["comments"] == "third: move", b
assert sorted(b["files"]) == ["a.txt", "b.txt"], b["files"]
assert len(b["revision"]) == 40 and b["revision"] != a["revision"], b
PY
advance 2
check "a build ran" wait_for 60 build_done
bid=$(api 'builds?order=-buildid&limit=1' | jpy 'd["builds"][0]["buildid"]')
check "build succeeded" [ "$(build_field "$bid" results)" = 0 ]
check "the build has the changes" [ "$(api "builds/$bid/changes" | jpy 'len(d["changes"])')" = 2 ]

check "master stops" stop_pid "$MASTER_PID"
echo four >> "$SRC/b.txt"
darcs record -q -a --repodir "$SRC" -A "Ann Dev <ann@example.org>" -m "fourth"
rm -rf "$M/pollers/src"   # the copy is made again; the stored state says where we were
check "master restarts" start_master "$M"
check "one more change after the restart" wait_for 30 eval '[ "$(nchanges)" = 3 ]'
check "it is the new patch" [ "$(api "changes?project=p&order=-changeid&limit=1" | jpy 'd["changes"][0]["comments"]')" = fourth ]
check "no crash in the log" sh -c "! grep -q 'AddressSanitizer\|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
