#!/bin/bash
# asan-too
# User objects end to end (slice "users", docs/USERS.md) on a real master:
# `kiln sendchange --who` and a real git poller create users with their
# identities (a known address reuses its user); `kiln user
# add/show/list/update/remove` round trip through the API, the password
# stored only as an argon2id hash that never appears in an answer; and
# malformed calls (CLI and raw JSON-RPC) give clear errors and change
# nothing.
. "$(dirname "$0")/lib.sh"
require_cmd git sqlite3

export GIT_AUTHOR_NAME="Ann Dev" GIT_AUTHOR_EMAIL=ann@example.org
export GIT_COMMITTER_NAME="Ann Dev" GIT_COMMITTER_EMAIL=ann@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME=$TRASH
git config --global init.defaultBranch main
SRC=$TRASH/src
git init -q "$SRC"
echo one > "$SRC/a.txt"
git -C "$SRC" add a.txt && git -C "$SRC" commit -qm "initial"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { }
auth = { anonymous_control = true } -- control stays open once carol can log in (docs/AUTH.md)
git_poller { name = "proj", repository = "$SRC", branches = { "main" }, interval = 3600, project = "proj" }
LUA
check "master starts" start_master "$M"
unset KILN_TOKEN
export KILN_URL=$URL KILN_CLIENT_CONF=$TRASH/none.conf

users_total() { api users | jpy 'd["meta"]["total"]'; }
# user_json REF: the user (by uid or identifier) as one JSON object
user_json() { api "users?identifier=$1" | jpy 'd["users"][0] if d["users"] else None'; }

# ---- users from changes ---------------------------------------------------------------
check "no users at first" [ "$(users_total)" = 0 ]
check "sendchange --who 'A <a@x>'" sh -c "'$KILN' sendchange --who 'A <a@x>' --branch main a.c >/dev/null"
check "one user" [ "$(users_total)" = 1 ]
api "users/1" > "$TRASH/u1.json"
check "its identifier, email and identities" /usr/bin/python3 - "$TRASH/u1.json" <<'PY'
import json, sys
u = json.load(open(sys.argv[1]))["users"][0]
assert u["uid"] == 1 and u["identifier"] == "A <a@x>" and u["email"] == "a@x", u
assert u["full_name"] == "A" and u["bb_username"] is None and u["has_password"] is False, u
ids = [(i["attr_type"], i["attr_data"]) for i in u["identities"]]
assert ids == [("email", "a@x"), ("who", "A <a@x>")], ids
PY
check "same address, another spelling, --vc git: the same user" \
    sh -c "'$KILN' sendchange --who 'Alice <a@x>' --vc git --branch main b.c >/dev/null"
check "still one user" [ "$(users_total)" = 1 ]
check "with the git identity added" [ "$(api users/1 | jpy '[i["attr_data"] for i in d["users"][0]["identities"] if i["attr_type"] == "git"]')" = '["Alice <a@x>"]' ]
check "change 2's author is user 1" [ "$(api changes/2/users | jpy '[u["uid"] for u in d["users"]]')" = '[1]' ]
check "sendchange --who bob --vc svn" sh -c "'$KILN' sendchange --who bob --vc svn --branch main >/dev/null"
check "bob: the bare svn username" [ "$(user_json bob | jpy '[(i["attr_type"], i["attr_data"]) for i in d["identities"]]')" = '[["svn", "bob"]]' ]

# a real git poller: the commit's "Name <email>" as the git identity
polled() { [ "$(api changesources/proj | jpy 'd["changesources"][0]["last_poll"] is not None')" = true ]; }
check "first poll done" wait_for 60 polled
echo two >> "$SRC/a.txt"
git -C "$SRC" commit -qam "second"
rpc changesources/proj '{"jsonrpc":"2.0","id":1,"method":"poll","params":{}}' >/dev/null
check "the poller's change stored" wait_for 60 sh -c "[ \"\$(curl -s '$URL/api/v2/changes?project=proj' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 1 ]"
check "its author is a user with the git identity" [ "$(api 'users?attr_type=git&attr_data=Ann%20Dev%20%3Cann@example.org%3E' | jpy 'd["users"][0]["email"]')" = ann@example.org ]
check "three users" [ "$(users_total)" = 3 ]

# ---- kiln user ------------------------------------------------------------------------
printf 'c0rrect-h0rse\n' > "$TRASH/pw"
out=$("$KILN" user add --identifier carol --username carol --password-file "$TRASH/pw" \
    --info email=carol@example.org --info irc=caz 2>&1); rc=$?
check "user add: exit 0 ($out)" [ "$rc" = 0 ]
check "user add: prints the uid" [ "$out" = "added user 4 'carol'" ]
"$KILN" user show carol > "$TRASH/show.txt" 2>&1; rc=$?
check "user show: exit 0" [ "$rc" = 0 ]
check "user show: identifier, username, password set, identities" sh -c "
    grep -q '^identifier: carol$' '$TRASH/show.txt' && grep -q '^username:   carol$' '$TRASH/show.txt' &&
    grep -q '^password:   set$' '$TRASH/show.txt' && grep -q '^irc  *caz$' '$TRASH/show.txt' &&
    grep -q '^email  *carol@example.org$' '$TRASH/show.txt'"
check "user show by uid" sh -c "'$KILN' user show 4 | grep -q '^uid:        4$'"
"$KILN" user list > "$TRASH/list.txt" 2>&1
check "user list: a header and four users" sh -c "[ \$(wc -l < '$TRASH/list.txt') = 5 ] && head -1 '$TRASH/list.txt' | grep -q '^UID *IDENTIFIER'"
check "user list: carol's row" grep -Eq '^4 +carol +carol +carol@example.org +2$' "$TRASH/list.txt"

DB=$M/state.sqlite
hash=$(db_sql "$M" "SELECT bb_password FROM users WHERE identifier = 'carol'")
is_hash() { case $1 in '$argon2id$v=19$m=65536,t=2,p=1$'?*) return 0 ;; *) return 1 ;; esac; }
check "the stored password is an argon2id hash ($hash)" is_hash "$hash"
check "the plain password is nowhere in the database" sh -c "! grep -aq 'c0rrect-h0rse' '$DB' '$DB-wal' 2>/dev/null"
curl -sS "$URL/api/v2/users" "$URL/api/v2/users/4" "$URL/api/v2/users?field=has_password" > "$TRASH/all.json"
check "no answer holds the hash or the password" sh -c "! grep -Eq 'argon2|c0rrect|bb_password' '$TRASH/all.json'"

check "user update: rename, replace irc, drop email" \
    sh -c "'$KILN' user update carol --identifier 'Carol C' --info irc=carol --info email= >/dev/null"
check "the renamed user" [ "$(user_json 'Carol%20C' | jpy '[(i["attr_type"], i["attr_data"]) for i in d["identities"]]')" = '[["irc", "carol"]]' ]
check "user update --no-password" sh -c "'$KILN' user update 4 --no-password >/dev/null"
check "password gone" [ "$(api users/4 | jpy 'd["users"][0]["has_password"]')" = false ]

# ---- malformed calls: clear errors, nothing changed ------------------------------------
before=$(api users | jpy 'd["users"]')
err() { "$KILN" user "$@" 2>&1 >/dev/null; }
out=$(err add); rc=$?
check "add without --identifier: usage error (exit 2)" sh -c "[ $rc = 2 ] && echo '$out' | grep -q 'identifier is required'"
out=$(err add --identifier bob); rc=$?
check "add a taken identifier: exit 1, says so" sh -c "[ $rc = 1 ] && printf '%s' \"\$1\" | grep -q \"identifier 'bob' is user\"" _ "$out"
out=$(err add --identifier dan --info irc=carol); rc=$?
check "add a taken identity: exit 1, says so" sh -c "[ $rc = 1 ] && printf '%s' \"\$1\" | grep -q \"identity irc 'carol'\"" _ "$out"
out=$(err add --identifier dan --password-file "$TRASH/nope"); rc=$?
check "a missing password file: exit 1, names it" sh -c "[ $rc = 1 ] && printf '%s' \"\$1\" | grep -q 'nope'" _ "$out"
out=$(err add --identifier dan --info 'bad type=x'); rc=$?
check "a bad identity type: exit 1, says so" sh -c "[ $rc = 1 ] && printf '%s' \"\$1\" | grep -q 'identity type'" _ "$out"
out=$(err update nobody --identifier x); rc=$?
check "update an unknown user: exit 1" sh -c "[ $rc = 1 ] && printf '%s' \"\$1\" | grep -q \"no user 'nobody'\"" _ "$out"
out=$(err remove 99); rc=$?
check "remove an unknown uid: exit 1" [ "$rc" = 1 ]
out=$(err frob); rc=$?
check "an unknown subcommand: exit 2" [ "$rc" = 2 ]
r=$(rpc users '{"jsonrpc":"2.0","id":1,"method":"add","params":{"identifier":"dan","password":"plain"}}')
check "raw add with a plain password: refused" sh -c "printf '%s' \"\$1\" | grep -q 'password_hash'" _ "$r"
r=$(rpc users '{"jsonrpc":"2.0","id":1,"method":"add","params":{"identifier":"dan","username":"dan","password_hash":"plain"}}')
check "raw add with a non-hash: refused" sh -c "printf '%s' \"\$1\" | grep -q 'argon2id'" _ "$r"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"jsonrpc":' "$URL/api/v2/users")
check "broken JSON: 400" [ "$code" = 400 ]
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v2/users/99")
check "GET an unknown user: 404" [ "$code" = 404 ]
check "nothing changed" [ "$(api users | jpy 'd["users"]')" = "$before" ]
check "no 'dan' in the database" [ "$(db_sql "$M" "SELECT count(*) FROM users WHERE identifier = 'dan'")" = 0 ]

# ---- remove -----------------------------------------------------------------------------
check "user remove 'Carol C'" sh -c "'$KILN' user remove 'Carol C' >/dev/null"
check "gone: show fails" sh -c "! '$KILN' user show 4 >/dev/null 2>&1"
check "its identities gone" [ "$(db_sql "$M" "SELECT count(*) FROM users_info WHERE userid = 4")" = 0 ]
check "remove user 1: its change links go, the changes stay" sh -c "'$KILN' user remove 1 >/dev/null &&
    [ \"\$(curl -s '$URL/api/v2/changes/1/users' | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"users\"]))')\" = 0 ] &&
    [ \"\$(curl -s '$URL/api/v2/changes/1' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"changes\"][0][\"author\"])')\" = 'A <a@x>' ]"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
