#!/bin/bash
# asan-too
# Changes from commit mails (issue 12, slice "alerts"): maildir_source { }
# reads a maildir's new/, turns git, hg and svn commit mails into changes
# (src/master/changes/mailparse.c), moves them to cur/, and a mail it cannot
# read, or one over max_size, to bad/ with the reason logged.  A real master
# and kiln-worker: the mails are delivered as an MDA does (tmp/ then a rename
# into new/), the changes appear in /api/v2/changes with their author,
# revision, branch, files, comments, repository and time, and the
# single_branch scheduler builds the git push to main.
. "$(dirname "$0")/lib.sh"
require_cmd curl

CORPUS=$KILN_SRC/tests/fuzz/corpus/mailparse
MD=$TRASH/Maildir
mkdir -p "$MD/new" "$MD/cur" "$MD/tmp"

B=$TRASH/bad
new_master "$B" <<'LUA'
maildir_source { name = "mail", maildir = "relative/dir" }
LUA
out=$("$KILN" checkconfig "$B" 2>&1)
check "checkconfig refuses a relative maildir ($out)" sh -c \
    "printf '%s' \"\$1\" | grep -qF \"master.lua:1: maildir_source 'mail': 'maildir' must be an absolute path\"" _ "$out"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "app", workers = { "w1" }, steps = { shell { command = "true" } } }
single_branch { name = "main", builders = { "app" }, change_filter = { branch = "main" } }
maildir_source { name = "mail", maildir = "$MD", interval = 0.5, project = "proj",
  max_size = "8 KiB" }
LUA
printf 'w1-pass-%s' "$$" > "$M/secrets/w1"
check "checkconfig accepts it" "$KILN" checkconfig "$M"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

# deliver NAME FILE: as an MDA does (write into tmp/, rename into new/)
deliver() { cp "$2" "$MD/tmp/$1" && mv "$MD/tmp/$1" "$MD/new/$1"; }
nchanges() { [ "$(api changes | jpy 'd["meta"]["total"]')" = "$1" ]; }

deliver 1764750001.M1P1.host "$CORPUS/git-push.eml"
check "the git push mail becomes a change" wait_for 60 nchanges 1
check "and leaves new/ for cur/ (NAME:2,S)" wait_for 30 test -f "$MD/cur/1764750001.M1P1.host:2,S"
check "the scheduler builds it" wait_for 60 sh -c \
    "[ \"\$(curl -s '$URL/api/v2/builders/app/builds' | /usr/bin/python3 -c 'import json,sys; b=json.load(sys.stdin)[\"builds\"]; print(len(b) and b[0][\"complete\"])')\" = True ]"

deliver 1764750002.M2P1.host "$CORPUS/hg-notify.eml"
deliver 1764750003.M3P1.host "$CORPUS/svn-commit-email.eml"
printf 'From: a@example.org\nSubject: lunch?\n\nPizza at noon.\n' > "$TRASH/junk"
deliver 1764750004.M4P1.host "$TRASH/junk"
{ cat "$CORPUS/git-patch.eml"; head -c 9000 /dev/zero | tr '\0' x; } > "$TRASH/big"
deliver 1764750005.M5P1.host "$TRASH/big"
check "the hg and svn mails become changes" wait_for 60 nchanges 3
check "the junk mail goes to bad/" wait_for 30 test -f "$MD/bad/1764750004.M4P1.host"
check "with its reason logged" grep -q \
    "maildir_source 'mail': 1764750004.M4P1.host moved to bad/: not a commit mail (no git, hg or svn markers)" "$M/master.log"
check "the mail over max_size goes to bad/" wait_for 30 test -f "$MD/bad/1764750005.M5P1.host"
check "with its reason logged" grep -q "1764750005.M5P1.host moved to bad/: over max_size" "$M/master.log"
check "new/ is empty" sh -c "[ -z \"\$(ls '$MD/new')\" ]"

api "changes?order=changeid" > "$TRASH/changes.json"
/usr/bin/python3 - "$TRASH/changes.json" > "$TRASH/check.out" 2>&1 <<'PY'
import json, sys
ch = json.load(open(sys.argv[1]))["changes"]
for c in ch:
    print(c["revision"], c["author"], c["branch"], c["files"], c["repository"], c["when_timestamp"])
g, h, s = ch
assert g["revision"] == "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d" and g["branch"] == "main", g
assert g["author"] == "Ann Dev <ann@example.org>" and g["repository"] == "proj", g
assert g["files"] == ["src/frob.c", "tests/test-frob.c"] and g["project"] == "proj", g
assert g["comments"] == "Fix the frobnicator\n\nIt dropped every other frob.", g
assert g["when_timestamp"] == 1796291940, g
assert h["revision"] == "3f5a1b2c3d4e" and h["branch"] == "stable" and h["repository"] == "/srv/hg/proj", h
assert h["author"] == "Carol Hg <carol@example.org>" and h["files"] == ["cache/store.py", "docs/cache.txt"], h
assert s["revision"] == "1234" and s["branch"] == "trunk" and s["author"] == "dave", s
assert s["files"] == ["src/opts.c", "doc/opts.txt", "doc/old.txt"], s
assert s["comments"] == "Rename the option \u2014 old name still read", s
print("changes ok")
PY
rc=$?
sed 's/^/# /' "$TRASH/check.out"
check "the changes carry the mails' fields" [ $rc = 0 ]
check "/api/v2/changesources lists the maildir source" sh -c \
    "curl -s '$URL/api/v2/changesources' | grep -q '\"mail\"'"
stop_pid "$MASTER_PID"
check "the master stops cleanly" [ $? = 0 ]
done_testing
