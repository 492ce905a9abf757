#!/bin/bash
# asan-too
# API tokens end to end (slice "tokens", docs/AUTH.md) on a real master:
# `kiln token create` (with the shared change_hook token, then with an
# admin token) prints a token once; `kiln sendchange` accepts it from
# --token, $KILN_TOKEN and client.conf; a token without the scope, a
# revoked one and a made-up one are refused (401/403) and store nothing;
# force takes a token with the force scope; the shared change_hook token
# keeps working; no token text appears in master.log, in any API answer
# but its creation's, or in the database file.
. "$(dirname "$0")/lib.sh"
require_cmd sqlite3

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { name = "s", command = "true" } } }
force_scheduler { name = "force", builders = { "b" } }
LUA
printf sekrit > "$M/secrets/hook"; printf pw > "$M/secrets/w1"
check "master starts" start_master "$M"
unset KILN_TOKEN
export KILN_URL=$URL KILN_CLIENT_CONF=$TRASH/none.conf

changes_total() { api changes | jpy 'd["meta"]["total"]'; }
# status URLPATH TOKEN BODY: the HTTP status of a POST with that bearer token
status() { curl -s -o "$TRASH/body" -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $2" \
    -H 'Content-Type: application/json' -d "$3" "$URL$1"; }
forcebody='{"jsonrpc":"2.0","id":1,"method":"force","params":{"builderid":"1","reason":"tok"}}'
requests_total() { api buildrequests | jpy 'd["meta"]["total"]'; }

# ---- managing tokens needs the change_hook token (or an admin token) -----------------------
out=$("$KILN" token create --name ci --scope sendchange 2>&1); rc=$?
check "create without a token: exit 1 ($rc)" [ "$rc" = 1 ]
check "create without a token: says why ($out)" sh -c "echo '$out' | grep -q 'admin token or the change_hook token'"
check "GET /tokens without a token: 401" [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v2/tokens")" = 401 ]
check "GET /tokens with a wrong shared token: 401" [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "$URL/api/v2/tokens")" = 401 ]

SC=$("$KILN" token create --token sekrit --name ci --scope sendchange 2>"$TRASH/err"); rc=$?
check "create: exit 0 ($(cat "$TRASH/err"))" [ "$rc" = 0 ]
check "create: prints one kiln_ token ($SC)" sh -c "echo '$SC' | grep -Eqx 'kiln_[A-Za-z0-9_-]{43}'"
check "create: says it is shown once" grep -q "created token 1 'ci' (scopes sendchange): it is shown only this once" "$TRASH/err"
FO=$("$KILN" token create --token sekrit --name forcer --scope force,stop --expires 30 2>/dev/null)
AD=$("$KILN" token create --token sekrit --name adm --scope admin,view 2>/dev/null)
check "three distinct tokens" [ -n "$FO" -a -n "$AD" -a "$SC" != "$FO" -a "$FO" != "$AD" ]
out=$("$KILN" token create --token "$SC" --name x --scope view 2>&1); rc=$?
check "a sendchange token cannot make tokens: exit 1 ($out)" sh -c "[ $rc = 1 ] && echo '$out' | grep -q 'lacks the scope admin'"
out=$("$KILN" token create --token "$AD" --name made-by-admin --scope view 2>/dev/null); rc=$?
check "an admin token can" sh -c "[ $rc = 0 ] && echo '$out' | grep -q '^kiln_'"
VI=$out

# ---- bad input ----------------------------------------------------------------------------
out=$("$KILN" token create --token sekrit --name x --scope force,bogus 2>&1); rc=$?
check "unknown scope: exit 1, named ($out)" sh -c "[ $rc = 1 ] && echo \"\$0\" | grep -q \"unknown scope 'bogus'\"" "$out"
out=$("$KILN" token create --token sekrit --scope force 2>&1); rc=$?
check "no --name: usage error (exit 2)" [ "$rc" = 2 ]
out=$("$KILN" token create --token sekrit --name x --scope force --expires 0 2>&1); rc=$?
check "--expires 0: usage error (exit 2)" [ "$rc" = 2 ]
out=$("$KILN" token create --token sekrit --name x --scope force --user 99 2>&1); rc=$?
check "no such user: exit 1 ($out)" sh -c "[ $rc = 1 ] && echo \"\$0\" | grep -q 'no user 99'" "$out"
check "revoke without an id: usage error" sh -c "'$KILN' token revoke --token sekrit 2>/dev/null; [ \$? = 2 ]"
check "raw add with a non-string name: 400" [ "$(status /api/v2/tokens sekrit '{"jsonrpc":"2.0","id":1,"method":"add","params":{"name":5,"scopes":"view"}}')" = 400 ]
check "four tokens stored" [ "$(curl -s -H "Authorization: Bearer $AD" "$URL/api/v2/tokens" | jpy 'd["meta"]["total"]')" = 4 ]

# ---- sendchange: flag, environment, client.conf ---------------------------------------------
check "sendchange --token TOKEN" sh -c "'$KILN' sendchange --token '$SC' --who ann a.c >/dev/null"
check "one change" [ "$(changes_total)" = 1 ]
check "KILN_TOKEN=TOKEN" sh -c "KILN_TOKEN='$SC' '$KILN' sendchange --who ann b.c >/dev/null"
printf '# e2e\ntoken = %s\n' "$SC" > "$TRASH/client.conf"
check "client.conf token" sh -c "KILN_CLIENT_CONF='$TRASH/client.conf' '$KILN' sendchange --who ann c.c >/dev/null"
check "three changes" [ "$(changes_total)" = 3 ]
check "the shared change_hook token still works" sh -c "'$KILN' sendchange --token sekrit --who bob d.c >/dev/null"
check "four changes" [ "$(changes_total)" = 4 ]
out=$("$KILN" sendchange --token "$FO" --who eve e.c 2>&1); rc=$?
check "a force-only token: refused, exit 1 ($out)" [ "$rc" = 1 ]
check "change hook answers 403 for the missing scope" [ "$(status /change_hook/base "$FO" '{"author":"eve"}')" = 403 ]
check "and names it" grep -q "lacks the scope sendchange" "$TRASH/body"
check "a made-up kiln_ token: 401" [ "$(status /change_hook/base kiln_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA '{"author":"eve"}')" = 401 ]
check "still four changes" [ "$(changes_total)" = 4 ]

# ---- force -----------------------------------------------------------------------------------
n0=$(requests_total)
check "force with the force token: 200" [ "$(status /api/v2/forceschedulers/force "$FO" "$forcebody")" = 200 ]
check "one more build request" [ "$(requests_total)" = $((n0 + 1)) ]
check "force with the sendchange token: 403" [ "$(status /api/v2/forceschedulers/force "$SC" "$forcebody")" = 403 ]
check "force with a made-up token: 401" [ "$(status /api/v2/forceschedulers/force kiln_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB "$forcebody")" = 401 ]
check "no request from the refused ones" [ "$(requests_total)" = $((n0 + 1)) ]
check "force without a token still works (no logins yet)" [ "$(status /api/v2/forceschedulers/force "" "$forcebody")" = 200 ]

# ---- list and revoke -------------------------------------------------------------------------
"$KILN" token list --token "$AD" > "$TRASH/list.txt" 2>&1; rc=$?
check "list: exit 0" [ "$rc" = 0 ]
check "list: the tokens, their scopes and states" sh -c "grep -Eq '^1 +ci +- +sendchange .* active\$' '$TRASH/list.txt' && grep -Eq '^2 +forcer +- +force,stop ' '$TRASH/list.txt'"
check "last_used_at: set for the used tokens, null for the unused one" [ "$(curl -s -H "Authorization: Bearer $AD" "$URL/api/v2/tokens" | jpy '[t["last_used_at"] is not None for t in d["tokens"]]')" = '[true, true, true, false]' ]
out=$("$KILN" token revoke 1 --token "$AD" 2>&1); rc=$?
check "revoke: exit 0 ($out)" sh -c "[ $rc = 0 ] && [ '$out' = 'revoked token 1' ]"
check "revoke again: already" [ "$("$KILN" token revoke 1 --token "$AD" 2>&1)" = "already revoked token 1" ]
check "revoke 99: exit 1" sh -c "'$KILN' token revoke 99 --token '$AD' 2>/dev/null; [ \$? = 1 ]"
out=$("$KILN" sendchange --token "$SC" --who ann f.c 2>&1); rc=$?
check "the revoked token: sendchange refused, exit 1 ($out)" [ "$rc" = 1 ]
check "the revoked token: 401 from the hook" [ "$(status /change_hook/base "$SC" '{"author":"ann"}')" = 401 ]
check "and says revoked" grep -q "was revoked" "$TRASH/body"
check "nothing changed: four changes" [ "$(changes_total)" = 4 ]
check "list shows it revoked" sh -c "'$KILN' token list --token '$AD' | grep -Eq '^1 +ci .* revoked\$'"

# ---- the token texts appear nowhere ----------------------------------------------------------
curl -s -H "Authorization: Bearer $AD" "$URL/api/v2/tokens" > "$TRASH/answers"
for p in changes users builds buildrequests forceschedulers masters; do api "$p" >> "$TRASH/answers"; done
check "GET /tokens: no hash member" sh -c "! grep -q '\"hash\"' '$TRASH/answers'"
DB=$M/state.sqlite
[ -f "$DB" ] && sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null 2>&1
if db_is_pg "$M"; then hex="encode(hash, 'hex')"; else hex="lower(hex(hash))"; fi
check "the hashes stored are the tokens' SHA-256" [ "$(db_sql "$M" "SELECT $hex FROM api_tokens WHERE id = 1")" = "$(printf %s "$SC" | sha256sum | cut -d' ' -f1)" ]
for t in "$SC" "$FO" "$AD" "$VI"; do
    body=${t#kiln_}
    check "token ${t:0:9}... not in master.log" sh -c "! grep -qF '$body' '$M/master.log'"
    check "token ${t:0:9}... not in any API answer" sh -c "! grep -qF '$body' '$TRASH/answers'"
    check "token ${t:0:9}... not in the database" sh -c "! grep -qaF '$body' \"\$@\"" _ "$M"/*.sqlite*
done
check "master.log names the refusals" grep -q "API token refused for .*was revoked" "$M/master.log"

check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
