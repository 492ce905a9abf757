#!/bin/bash
# asan-too
# The CVS poller against a real repository made here (cvs init, import,
# checkout): the first poll records where the module is without making a
# change; a commit of two files in two directories becomes ONE change (the
# files' revisions share a commitid) with the author, the log message, both
# paths relative to the module and the commit's date as revision (what cvs
# -D takes); a removal is a change naming the removed file; a single_branch
# scheduler builds on a kiln-worker; after a restart nothing is reported
# twice (the re-read overlap is remembered) and the next commit is; a
# poller with a branch tag follows that branch only.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-poller.sh"
require_cmd cvs
export KILN_TEST_CLOCK=1 HOME=$TRASH

ROOT=$TRASH/cvsroot
cvs -d "$ROOT" init
mkdir -p "$TRASH/imp/sub" && echo a > "$TRASH/imp/a.txt" && echo s > "$TRASH/imp/sub/s.txt"
(cd "$TRASH/imp" && cvs -Q -d "$ROOT" import -m "initial import" mod vendor start)
(cd "$TRASH" && cvs -Q -d "$ROOT" checkout -d wc mod)

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "echo built" } } }
cvs_poller { name = "src", cvsroot = "$ROOT", module = "mod", interval = 3600, project = "p" }
cvs_poller { name = "rel", cvsroot = "$ROOT", module = "mod", branch = "REL_1", interval = 3600,
             project = "rel" }
single_branch { name = "trunk", builders = { "b" }, tree_stable_timer = 1 }
LUA
printf 'w1-secret' > "$M/secrets/w1"
check "checkconfig accepts cvs_poller" checkconfig
start_master_w1 "$M" 30
check "first poll done" wait_for 30 polled
check "no change from the first poll" [ "$(nchanges)" = 0 ]

echo two >> "$TRASH/wc/a.txt" && echo t >> "$TRASH/wc/sub/s.txt"
printf 'two files\n----------------------------\nrevision 9.9\nnot a revision\n' > "$TRASH/msg"
(cd "$TRASH/wc" && cvs -Q commit -F "$TRASH/msg")
(cd "$TRASH/wc" && cvs -Q rm -f a.txt && cvs -Q commit -m "remove a")
poll
check "two changes" wait_for 30 eval '[ "$(nchanges)" = 2 ]'
api "changes?project=p&order=changeid" > "$TRASH/c.json"
check "fields" /usr/bin/python3 - "$TRASH/c.json" <<'PY'
import json, sys, re
a, b = json.load(open(sys.argv[1]))["changes"]
assert a["author"] == "root" or a["author"], a
assert a["comments"] == "two files\n----------------------------\nrevision 9.9\nnot a revision", repr(a["comments"])
assert sorted(a["files"]) == ["a.txt", "sub/s.txt"], a["files"]
assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000", a["revision"]), a
assert a["repository"].endswith("/cvsroot") and a["branch"] is None, a
assert b["comments"] == "remove a" and b["files"] == ["a.txt"], b
assert b["revision"] >= a["revision"], (a, b)
PY
check "the author is the committing user" [ "$(api "changes?project=p&limit=1" | jpy 'd["changes"][0]["author"]')" = "$(id -un)" ]
advance 2
check "a build ran" wait_for 60 build_done
bid=$(api 'builds?order=-buildid&limit=1' | jpy 'd["builds"][0]["buildid"]')
check "build succeeded" [ "$(build_field "$bid" results)" = 0 ]
check "the build has the changes" [ "$(api "builds/$bid/changes" | jpy 'len(d["changes"])')" = 2 ]

check "master stops" stop_pid "$MASTER_PID"
check "master restarts" start_master "$M"
check "poll after the restart" wait_for 30 polled
check "nothing reported twice" [ "$(nchanges)" = 2 ]
echo three >> "$TRASH/wc/sub/s.txt" && (cd "$TRASH/wc" && cvs -Q commit -m "third")
poll
check "the next commit is" wait_for 30 eval '[ "$(nchanges)" = 3 ]'
check "its file" [ "$(api "changes?project=p&order=-changeid&limit=1" | jpy 'd["changes"][0]["files"]')" = '["sub/s.txt"]' ]

(cd "$TRASH/wc" && cvs -Q tag -b REL_1 && cvs -Q update -r REL_1)
echo b >> "$TRASH/wc/sub/s.txt" && (cd "$TRASH/wc" && cvs -Q commit -m "on the branch")
check "rel: first poll done" wait_for 30 polled rel
poll rel
poll
check "rel: the branch commit" wait_for 30 eval '[ "$(nchanges rel)" = 1 ]'
check "rel: its branch and file" [ "$(api "changes?project=rel" | jpy 'd["changes"][0]["branch"] + "|" + ",".join(d["changes"][0]["files"])')" = "REL_1|sub/s.txt" ]
(cd "$TRASH/wc" && cvs -Q update -A) && echo t4 >> "$TRASH/wc/a2.txt"
(cd "$TRASH/wc" && cvs -Q add a2.txt && cvs -Q commit -m "trunk again")
poll
check "the trunk poller: the trunk commit" wait_for 30 eval '[ "$(nchanges)" = 4 ]'
check "... and not the branch's" [ "$(api "changes?project=p" | jpy '[c["comments"] for c in d["changes"] if c["comments"] == "on the branch"]')" = "[]" ]
check "no crash in the log" sh -c "! grep -q 'AddressSanitizer\|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
