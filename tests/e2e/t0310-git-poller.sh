#!/bin/bash
# asan-too
# The git poller end to end, against real repositories made here: the first
# poll records the heads without a flood; commits on several branches become
# changes with the author and the files; a poll costs three git processes
# even with 1,000 branches; the state survives a restart; an unreachable
# repository logs one error per failure streak and one "recovered" line
# while the API keeps answering; the poll trigger (JSON-RPC and
# /change_hook/poller); and the contrib post-receive hook via kiln sendchange.
. "$(dirname "$0")/lib.sh"

export GIT_AUTHOR_NAME="Ann Dev" GIT_AUTHOR_EMAIL=ann@example.org
export GIT_COMMITTER_NAME="Ann Dev" GIT_COMMITTER_EMAIL=ann@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME=$TRASH
git config --global init.defaultBranch main
git config --global advice.detachedHead false

SRC=$TRASH/src
git init -q "$SRC"
echo one > "$SRC/a.txt"
git -C "$SRC" add a.txt && git -C "$SRC" commit -qm "initial"

# a git that records each run, to count processes per poll
mkdir -p "$TRASH/bin"
REAL_GIT=$(command -v git)
cat > "$TRASH/bin/git" <<SH
#!/bin/sh
echo "\$PWD \$*" >> "$TRASH/git-calls"
exec "$REAL_GIT" "\$@"
SH
chmod +x "$TRASH/bin/git"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { }
git_poller { name = "proj", repository = "$SRC", branches = "all", interval = 3600, project = "proj" }
git_poller { name = "mainonly", repository = "$SRC", branches = { "main" }, interval = 3600 }
git_poller { name = "broken", repository = "$TRASH/missing.git", interval = 0.2 }
LUA
PATH=$TRASH/bin:$PATH
check "master starts" start_master "$M"
total() { api changes | jpy 'd["meta"]["total"]'; }
polled() { [ "$(api "changesources/$1" | jpy 'd["changesources"][0]["last_poll"] is not None')" = true ]; }
poll() { rpc "changesources/$1" '{"jsonrpc":"2.0","id":1,"method":"poll","params":{}}' >/dev/null; }
last_poll() { api "changesources/$1" | jpy 'd["changesources"][0]["last_poll"] or 0'; }

check "first poll of proj done" wait_for 60 polled proj
check "first poll of mainonly done" wait_for 60 polled mainonly
check "first poll made no changes (no flood)" [ "$(total)" = 0 ]
check "changesources lists the pollers" [ "$(api changesources | jpy 'd["meta"]["total"]')" = 3 ]

# the broken poller: one error line per streak, the API answers meanwhile
check "broken poller reported failing" wait_for 60 sh -c "[ \"\$(curl -s '$URL/api/v2/changesources/broken' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"changesources\"][0][\"failing\"])')\" = True ]"
t0=$(date +%s%N)
for i in 1 2 3 4 5; do api masters >/dev/null; done
t1=$(date +%s%N)
check "API answers while a poller fails ($(( (t1 - t0) / 5000000 )) ms per call)" [ $(( (t1 - t0) / 5000000 )) -lt 500 ]
check "it keeps retrying" wait_for 60 sh -c "[ \$(grep -c 'missing.git' '$TRASH/git-calls') -ge 3 ]"
check "one error line for the whole streak" [ "$(grep -c "poller 'broken':.*retrying" "$M/master.log")" = 1 ]
git init -q --bare "$TRASH/missing.git"
git -C "$SRC" push -q "$TRASH/missing.git" main
check "recovers once the repository exists" wait_for 30 grep -q "poller 'broken': recovered" "$M/master.log"

# commits on main and on a new branch
echo two >> "$SRC/a.txt"; mkdir -p "$SRC/src"; echo x > "$SRC/src/new.c"
git -C "$SRC" add -A && git -C "$SRC" commit -qm "second: touch a and add src/new.c"
git -C "$SRC" checkout -qb feature
GIT_AUTHOR_NAME="Bob" GIT_AUTHOR_EMAIL=bob@example.org git -C "$SRC" commit -q --allow-empty -m "feature work"
git -C "$SRC" rm -q a.txt && git -C "$SRC" commit -qm "remove a"
git -C "$SRC" checkout -q main
: > "$TRASH/git-calls"
before=$(last_poll proj)
poll proj
check "poll proj" wait_for 60 sh -c "[ \"\$(curl -s '$URL/api/v2/changesources/proj' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"changesources\"][0][\"last_poll\"] or 0)')\" != '$before' ] || [ \"\$(curl -s '$URL/api/v2/changes' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 3 ]"
check "three changes from proj" wait_for 60 sh -c "[ \"\$(curl -s '$URL/api/v2/changes?project=proj' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 3 ]"
api "changes?project=proj&order=changeid" > "$TRASH/changes.json"
check "changes carry author, branch, files and comments" /usr/bin/python3 - "$TRASH/changes.json" "$SRC" <<'PY'
import json, sys
cs = json.load(open(sys.argv[1]))["changes"]
by = {c["comments"]: c for c in cs}
m = by["second: touch a and add src/new.c"]
assert m["author"] == "Ann Dev <ann@example.org>", m
assert m["committer"] == "Ann Dev <ann@example.org>", m
assert m["branch"] == "main" and sorted(m["files"]) == ["a.txt", "src/new.c"], m
assert m["repository"] == sys.argv[2] and m["project"] == "proj", m
assert len(m["revision"]) == 40
f = by["feature work"]
assert f["branch"] == "feature" and f["author"] == "Bob <bob@example.org>" and f["files"] == [], f
r = by["remove a"]
assert r["branch"] == "feature" and r["files"] == ["a.txt"], r
assert r["parent_changeids"] == [f["changeid"]], (r, f)
PY
check "one fetch, one for-each-ref, one log for that poll" [ "$(grep -c "pollers/proj " "$TRASH/git-calls")" = 3 ]
poll mainonly
check "mainonly sees only main" wait_for 60 sh -c "[ \"\$(curl -s '$URL/api/v2/changes?repository=$SRC' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 4 ]"

# 1,000 branches: still one git process per poll step
git -C "$SRC" for-each-ref --format='%(objectname)' refs/heads/main > /dev/null
sha=$(git -C "$SRC" rev-parse main)
for i in $(seq 1 1000); do echo "create refs/heads/b$i $sha"; done | git -C "$SRC" update-ref --stdin
git -C "$SRC" checkout -q b7 && echo seven > "$SRC/seven" && git -C "$SRC" add seven && git -C "$SRC" commit -qm "on b7"
git -C "$SRC" checkout -q b500 && echo fivehundred > "$SRC/fh" && git -C "$SRC" add fh && git -C "$SRC" commit -qm "on b500"
git -C "$SRC" checkout -q main
n=$(total)
: > "$TRASH/git-calls"
poll proj
check "1,000 branches: the two new commits arrive" wait_for 30 sh -c "[ \"\$(curl -s '$URL/api/v2/changes?project=proj' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 5 ]"
calls=$(grep -c "pollers/proj " "$TRASH/git-calls")
check "1,000 branches: 3 git processes for the poll (got $calls)" [ "$calls" = 3 ]
check "b500's change on b500" [ "$(api 'changes?comments=on+b500' | jpy 'd["changes"][0]["branch"]')" = b500 ]

# restart: the state survives, nothing is re-announced
check "master stops" stop_pid "$MASTER_PID"
echo three >> "$SRC/a.txt" && git -C "$SRC" commit -qam "after restart"
check "master restarts" start_master "$M"
check "only the new commit arrives after the restart" wait_for 30 sh -c "[ \"\$(curl -s '$URL/api/v2/changes?project=proj' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 6 ]"
check "no duplicate revisions" [ "$(api 'changes?project=proj' | jpy 'len(set(c["revision"] for c in d["changes"]))')" = 6 ]

# the poller dialect of the change hook
before=$(total)
echo four >> "$SRC/a.txt" && git -C "$SRC" commit -qam "via the poller hook"
check "/change_hook/poller?poller=proj: 200" [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/change_hook/poller?poller=proj")" = 200 ]
check "the poll it triggered found the commit" wait_for 60 sh -c "curl -s '$URL/api/v2/changes?project=proj' | grep -q 'via the poller hook'"
check "/change_hook/poller?poller=nosuch: 404" [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/change_hook/poller?poller=nosuch")" = 404 ]

check "no crash in the log" sh -c "! grep -q 'AddressSanitizer\|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
