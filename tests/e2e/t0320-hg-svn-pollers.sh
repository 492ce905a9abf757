#!/bin/bash
# asan-too
# The Mercurial and Subversion pollers against real repositories made here
# (hg init, svnadmin create + file:// URLs): the first poll records where
# each repository is, later commits become changes with author, files,
# branch and comments, only the configured hg branches count, and svn paths
# are relative to the polled URL.  A failing svn tool is one error line.
. "$(dirname "$0")/lib.sh"

if ! command -v hg >/dev/null || ! command -v svn >/dev/null || ! command -v svnadmin >/dev/null; then
    echo "ok 1 # SKIP mercurial or subversion not installed (scripts/install-deps)"
    echo "1..1"
    exit 0
fi
export HOME=$TRASH HGPLAIN=1

HG=$TRASH/hgsrc
hg init "$HG"
echo one > "$HG/a.txt"
hg -R "$HG" add -q "$HG/a.txt"
hg -R "$HG" commit -q -u "Ann Dev <ann@example.org>" -m "initial" 

svnadmin create "$TRASH/svnrepo"
SVNURL="file://$TRASH/svnrepo"
svn mkdir -q -m "layout" "$SVNURL/trunk" "$SVNURL/branches"
svn checkout -q "$SVNURL/trunk" "$TRASH/wc"
echo one > "$TRASH/wc/a.txt"
svn add -q "$TRASH/wc/a.txt"
svn commit -q --username ann -m "initial" "$TRASH/wc"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
hg_poller { name = "hgp", repository = "$HG", branches = { "default", "stable" }, interval = 3600 }
svn_poller { name = "svnp", repository = "$SVNURL/trunk", interval = 3600, branch = "trunk",
             project = "svnproj", revlink = "https://svn.example/r%s" }
svn_poller { name = "svnbad", repository = "file://$TRASH/nosuchrepo", interval = 0.2 }
LUA
check "master starts" start_master "$M"
polled() { [ "$(api "changesources/$1" | jpy 'd["changesources"][0]["last_poll"] is not None')" = true ]; }
poll() { rpc "changesources/$1" '{"jsonrpc":"2.0","id":1,"method":"poll","params":{}}' >/dev/null; }

check "hg first poll done" wait_for 30 polled hgp
check "svn first poll done" wait_for 30 polled svnp
check "no changes from the first polls" [ "$(api changes | jpy 'd["meta"]["total"]')" = 0 ]

# hg: one commit on default, one on 'stable', one on an unfollowed branch
echo two >> "$HG/a.txt"; mkdir -p "$HG/src"; echo x > "$HG/src/n.c"
hg -R "$HG" add -q "$HG/src/n.c"
hg -R "$HG" commit -q -u "Ann Dev <ann@example.org>" -m "second"
hg -R "$HG" branch -q stable
echo s > "$HG/s.txt"; hg -R "$HG" add -q "$HG/s.txt"
hg -R "$HG" commit -q -u "Bob <bob@example.org>" -m "on stable"
hg -R "$HG" branch -q -f experiment
echo e > "$HG/e.txt"; hg -R "$HG" add -q "$HG/e.txt"
hg -R "$HG" commit -q -u "Eve <eve@example.org>" -m "experiment"
poll hgp
check "hg: two changes (default and stable)" wait_for 30 sh -c "[ \"\$(curl -s '$URL/api/v2/changes?repository=$HG' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 2 ]"
api "changes?repository=$HG&order=changeid" > "$TRASH/hg.json"
check "hg: fields" /usr/bin/python3 - "$TRASH/hg.json" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1]))["changes"]
assert a["author"] == "Ann Dev <ann@example.org>" and a["branch"] == "default", a
assert sorted(a["files"]) == ["a.txt", "src/n.c"] and a["comments"] == "second", a
assert len(a["revision"]) == 40, a
assert b["author"] == "Bob <bob@example.org>" and b["branch"] == "stable" and b["files"] == ["s.txt"], b
PY

# svn: a commit in trunk and one outside it
echo two >> "$TRASH/wc/a.txt"; mkdir "$TRASH/wc/src"; echo y > "$TRASH/wc/src/m.c"
svn add -q "$TRASH/wc/src"
svn commit -q --username carol -m "trunk work <&>" "$TRASH/wc"
svn mkdir -q -m "a branch" --username dave "$SVNURL/branches/b1"
poll svnp
check "svn: one change (trunk only)" wait_for 30 sh -c "[ \"\$(curl -s '$URL/api/v2/changes?project=svnproj' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 1 ]"
api "changes?project=svnproj" > "$TRASH/svn.json"
check "svn: fields" /usr/bin/python3 - "$TRASH/svn.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["changes"][0]
assert c["author"] == "carol" and c["branch"] == "trunk", c
assert sorted(c["files"]) == ["a.txt", "src", "src/m.c"], c
assert c["comments"] == "trunk work <&>" and c["revision"] == "3", c
assert c["revlink"] == "https://svn.example/r3", c
PY

check "svnbad: one error line" wait_for 60 sh -c "[ \$(grep -c \"poller 'svnbad':.*retrying\" '$M/master.log') = 1 ]"
check "API answers meanwhile" [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/api/v2/changes")" = 200 ]
check "it keeps retrying" wait_for 60 sh -c "[ \$(curl -s '$URL/api/v2/changesources/svnbad' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"changesources\"][0][\"failures\"])') -ge 3 ]"
check "still one error line after the retries" [ "$(grep -c "poller 'svnbad':.*retrying" "$M/master.log")" = 1 ]
check "no crash in the log" sh -c "! grep -q 'AddressSanitizer\|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
