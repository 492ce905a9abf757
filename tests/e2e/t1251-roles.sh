#!/bin/bash
# asan-too
# Roles end to end (slice "weblogin", docs/AUTH.md) on a real master and
# worker: every control call (force, rebuild, stop, cancel, worker
# pause/kill/stop, scheduler enable, token add/revoke, user add/remove,
# sendchange, try) made anonymously once auth is configured, by a user
# without the role, by a user whose role does not cover the builder, and
# with a revoked token is refused (401/403) and changes nothing (checked
# through the API); the user with the role succeeds.  Users come from an
# htpasswd file (bcrypt) and from the database (users.roles); a token owned
# by a user is limited to that user's roles; a try token is accepted by the
# try scheduler.
. "$(dirname "$0")/lib.sh"
require_cmd curl

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { }
worker { name = "w1", password = secret("w1") }
builder { name = "app-linux", workers = { "w1" }, steps = { shell { name = "s", command = "sleep 120" } } }
builder { name = "other", workers = { "w1" }, steps = { shell { name = "s", command = "true" } } }
force_scheduler { name = "force", builders = { "app-linux", "other" } }
try_scheduler { name = "try", builders = { "other" }, token = secret("try") }
auth = {
  htpasswd = "users.htpasswd",
  roles = {
    { role = "admin", users = { "ad" } },
    { role = "force", users = { "fo" }, builders = { "app-*" } },
    { role = "stop", users = { "st" }, builders = { "app-*" } },
    { role = "cancel", users = { "ca" }, builders = { "app-*" } },
  },
}
LUA
printf pw > "$M/secrets/w1"; printf try-secret > "$M/secrets/try"
H='$2y$05$abcdefghijklmnopqrstuuCtiJr2FHsnOqjmtKGYqTW1lV7HIxHYq' # bcrypt of hp-pass
for u in ad fo st ca vi; do echo "$u:$H"; done > "$M/users.htpasswd"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 30 worker_connected w1
unset KILN_TOKEN
export KILN_URL=$URL KILN_CLIENT_CONF=$TRASH/none.conf

declare -A CK CS
# login USER [PASSWORD]: keeps the user's cookie and csrf value
login() {
    curl -s -D "$TRASH/h" -o "$TRASH/login.json" --max-time 20 -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"${2:-hp-pass}\"}" "$URL/auth/login"
    CK[$1]=$(tr -d '\r' < "$TRASH/h" | sed -n 's/^[Ss]et-[Cc]ookie: kiln_session=\([^;]*\).*/\1/p')
    CS[$1]=$(jpy 'd["csrf"]' < "$TRASH/login.json")
    [ -n "${CK[$1]}" ]
}
# call WHO PATH JSON: the status of a POST by WHO (anon, s:USER with its
# cookie and csrf, t:TOKEN as a bearer); the body in $TRASH/body
call() {
    who=$1; shift
    case $who in
        anon) set -- "$@" ;;
        s:*) u=${who#s:}; set -- "$@" -H "Cookie: kiln_session=${CK[$u]}" -H "X-Kiln-CSRF: ${CS[$u]}" ;;
        t:*) set -- "$@" -H "Authorization: Bearer ${who#t:}" ;;
    esac
    p=$1 b=$2; shift 2
    curl -s -o "$TRASH/body" -w '%{http_code}' --max-time 20 -H 'Content-Type: application/json' "$@" -d "$b" "$URL$p"
}
j() { printf '{"jsonrpc":"2.0","id":1,"method":"%s","params":%s}' "$1" "${2:-{\}}"; }
# refused WHAT WANT WHO PATH JSON: checks the status
refused() { what=$1 want=$2; shift 2; st=$(call "$@"); check "$what: $want ($st)" [ "$st" = "$want" ]; }
requests_total() { api buildrequests | jpy 'd["meta"]["total"]'; }
changes_total() { api changes | jpy 'd["meta"]["total"]'; }

for u in ad fo st ca vi; do check "$u logs in (htpasswd)" login $u; done
check "anonymous control is off once auth is configured" [ "$(curl -s "$URL/auth/me" | jpy 'd["anonymous_control"]')" = false ]

# tokens, made by the administrator's session
mk() { call s:ad /api/v2/tokens "$(j add "{\"name\":\"$1\",\"scopes\":\"$2\"${3:+,\"uid\":$3}}")" >/dev/null; jpy 'd["result"]["token"]' < "$TRASH/body"; }
ADTOK=$(mk admin admin); FTOK=$(mk forcer force); TTOK=$(mk trier try); SCTOK=$(mk sc sendchange)
RTOK=$(mk gone admin,force,stop,cancel,try,sendchange)
check "the admin's session makes tokens" sh -c "[ \${#1} = 48 ] && [ \${#2} = 48 ] && [ \${#3} = 48 ]" _ "$ADTOK" "$FTOK" "$RTOK"
tokid() { curl -s -H "Authorization: Bearer $ADTOK" "$URL/api/v2/tokens" | jpy "[t['tokenid'] for t in d['tokens'] if t['name'] == '$1'][0]"; }
rid=$(tokid gone)
check "and revokes one" [ "$(call s:ad /api/v2/tokens/$rid "$(j revoke)")" = 200 ]

fb() { printf '{"jsonrpc":"2.0","id":1,"method":"force","params":{"builderNames":["%s"],"reason":"r"}}' "$1"; }
# ---- force ----------------------------------------------------------------------------
st=$(call s:ad /api/v2/forceschedulers/force "$(fb other)")
check "admin forces other: 200 ($st)" [ "$st" = 200 ]
bdone() { [ "$(api "builds/$1" | jpy 'd["builds"][0]["complete"]' 2>/dev/null)" = true ]; }
check "that build finishes" wait_for 60 bdone 1
B0=1
n=$(requests_total)
refused "force anonymously" 401 anon /api/v2/forceschedulers/force "$(fb app-linux)"
refused "force without a role" 403 s:vi /api/v2/forceschedulers/force "$(fb app-linux)"
refused "force with the stop role" 403 s:st /api/v2/forceschedulers/force "$(fb app-linux)"
refused "force on a builder the role does not cover" 403 s:fo /api/v2/forceschedulers/force "$(fb other)"
check "the refusal names the builder" grep -q "lacks the role force on builder 'other'" "$TRASH/body"
refused "force with a revoked token" 401 t:$RTOK /api/v2/forceschedulers/force "$(fb app-linux)"
check "nothing was requested" [ "$(requests_total)" = "$n" ]
refused "fo forces app-linux" 200 s:fo /api/v2/forceschedulers/force "$(fb app-linux)"
started() { [ "$(api 'builds?builderid=1' | jpy 'd["meta"]["total"]' 2>/dev/null)" = 1 ]; }
check "its build starts" wait_for 60 started
B1=$(api 'builds?builderid=1' | jpy 'd["builds"][0]["buildid"]')
# ---- cancel ---------------------------------------------------------------------------
call s:ad /api/v2/forceschedulers/force "$(fb app-linux)" >/dev/null; R2=$(jpy 'list(d["result"][1].values())[0]' < "$TRASH/body")
call s:ad /api/v2/forceschedulers/force "$(fb other)" >/dev/null; R3=$(jpy 'list(d["result"][1].values())[0]' < "$TRASH/body")
complete() { api "buildrequests/$1" | jpy 'd["buildrequests"][0]["complete"]'; }
refused "cancel anonymously" 401 anon /api/v2/buildrequests/$R2 "$(j cancel)"
refused "cancel with the force role" 403 s:fo /api/v2/buildrequests/$R2 "$(j cancel)"
refused "cancel on a builder the role does not cover" 403 s:ca /api/v2/buildrequests/$R3 "$(j cancel)"
refused "cancel with a revoked token" 401 t:$RTOK /api/v2/buildrequests/$R2 "$(j cancel)"
check "both requests still pending" [ "$(complete $R2)/$(complete $R3)" = false/false ]
refused "ca cancels app-linux's request" 200 s:ca /api/v2/buildrequests/$R2 "$(j cancel)"
check "it is complete" [ "$(complete $R2)" = true ]
# ---- stop -----------------------------------------------------------------------------
refused "stop anonymously" 401 anon /api/v2/builds/$B1 "$(j stop)"
refused "stop with the force role" 403 s:fo /api/v2/builds/$B1 "$(j stop)"
refused "stop on a builder the role does not cover" 403 s:st /api/v2/builds/$B0 "$(j stop)"
refused "stop with a revoked token" 401 t:$RTOK /api/v2/builds/$B1 "$(j stop)"
check "the build still runs" sh -c "! [ \"\$1\" = true ]" _ "$(api "builds/$B1" | jpy 'd["builds"][0]["complete"]')"
refused "st stops app-linux's build" 200 s:st /api/v2/builds/$B1 "$(j stop)"
check "it ends" wait_for 60 bdone $B1
# ---- rebuild --------------------------------------------------------------------------
n=$(requests_total)
refused "rebuild anonymously" 401 anon /api/v2/builds/$B1 "$(j rebuild)"
refused "rebuild with the stop role" 403 s:st /api/v2/builds/$B1 "$(j rebuild)"
refused "rebuild on a builder the role does not cover" 403 s:fo /api/v2/builds/$B0 "$(j rebuild)"
refused "rebuild with a revoked token" 401 t:$RTOK /api/v2/builds/$B1 "$(j rebuild)"
check "nothing was requested" [ "$(requests_total)" = "$n" ]
refused "fo rebuilds app-linux's build" 200 s:fo /api/v2/builds/$B1 "$(j rebuild)"
check "one more request" [ "$(requests_total)" = $((n + 1)) ]
# ---- workers --------------------------------------------------------------------------
paused() { api workers/w1 | jpy 'd["workers"][0]["paused"]'; }
for m in pause stop kill; do
    refused "worker $m anonymously" 401 anon /api/v2/workers/w1 "$(j $m)"
    refused "worker $m with the force role" 403 s:fo /api/v2/workers/w1 "$(j $m)"
    refused "worker $m with a revoked token" 401 t:$RTOK /api/v2/workers/w1 "$(j $m)"
done
check "the worker is still connected and not paused" [ "$(api workers/w1 | jpy '[len(d["workers"][0]["connected_to"]), d["workers"][0]["paused"]]')" = '[1, false]' ]
refused "ad pauses the worker" 200 s:ad /api/v2/workers/w1 "$(j pause)"
check "it is paused" [ "$(paused)" = true ]
refused "an admin token unpauses it" 200 t:$ADTOK /api/v2/workers/w1 "$(j unpause)"
# ---- schedulers -----------------------------------------------------------------------
en() { api schedulers/force | jpy 'd["schedulers"][0]["enabled"]'; }
refused "scheduler enable anonymously" 401 anon /api/v2/schedulers/force "$(j enable '{"enabled":false}')"
refused "scheduler enable with the force role" 403 s:fo /api/v2/schedulers/force "$(j enable '{"enabled":false}')"
refused "scheduler enable with a revoked token" 401 t:$RTOK /api/v2/schedulers/force "$(j enable '{"enabled":false}')"
check "still enabled" [ "$(en)" = true ]
refused "ad disables it" 200 s:ad /api/v2/schedulers/force "$(j enable '{"enabled":false}')"
check "disabled" [ "$(en)" = false ]
call s:ad /api/v2/schedulers/force "$(j enable '{"enabled":true}')" >/dev/null
# ---- tokens ---------------------------------------------------------------------------
ntok=$(curl -s -H "Authorization: Bearer $ADTOK" "$URL/api/v2/tokens" | jpy 'len(d["tokens"])')
refused "token add anonymously" 401 anon /api/v2/tokens "$(j add '{"name":"x","scopes":"view"}')"
refused "token add with the force role" 403 s:fo /api/v2/tokens "$(j add '{"name":"x","scopes":"view"}')"
refused "token add with a force token" 403 t:$FTOK /api/v2/tokens "$(j add '{"name":"x","scopes":"view"}')"
refused "token add with a revoked token" 401 t:$RTOK /api/v2/tokens "$(j add '{"name":"x","scopes":"view"}')"
fid=$(tokid forcer)
refused "token revoke with the force role" 403 s:fo /api/v2/tokens/$fid "$(j revoke)"
refused "token revoke anonymously" 401 anon /api/v2/tokens/$fid "$(j revoke)"
check "no token added or revoked" [ "$(curl -s -H "Authorization: Bearer $ADTOK" "$URL/api/v2/tokens" | jpy "[len(d['tokens']), [t['revoked_at'] for t in d['tokens'] if t['tokenid'] == $fid][0]]")" = "[$ntok, null]" ]
# ---- users ----------------------------------------------------------------------------
nu=$(api users | jpy 'd["meta"]["total"]')
refused "user add anonymously" 401 anon /api/v2/users "$(j add '{"identifier":"zed"}')"
refused "user add with the force role" 403 s:fo /api/v2/users "$(j add '{"identifier":"zed"}')"
refused "user add with a revoked token" 401 t:$RTOK /api/v2/users "$(j add '{"identifier":"zed"}')"
check "no user added" [ "$(api users | jpy 'd["meta"]["total"]')" = "$nu" ]
printf 'db-user-pw\n' > "$TRASH/pw"
out=$("$KILN" user add --token "$ADTOK" --identifier dbu --username dbu --password-file "$TRASH/pw" 2>&1)
check "an admin token adds user dbu ($out)" [ $? = 0 ]
refused "user remove anonymously" 401 anon /api/v2/users/dbu "$(j remove)"
refused "user remove with the cancel role" 403 s:ca /api/v2/users/dbu "$(j remove)"
refused "users.roles set by the force role" 403 s:fo /api/v2/users/dbu "$(j roles '{"roles":"admin"}')"
refused "ad gives dbu the stop role (users.roles)" 200 s:ad /api/v2/users/dbu "$(j roles '{"roles":"stop"}')"
check "dbu logs in (argon2id)" login dbu db-user-pw
check "dbu may stop on every builder, force nowhere" [ "$(curl -s -H "Cookie: kiln_session=${CK[dbu]}" "$URL/auth/me" | jpy "[d['can']['stop'], d['can']['force']]")" = '[["*"], []]' ]
uid=$(api users/dbu | jpy 'd["users"][0]["uid"]')
UTOK=$(mk dbus-admin admin "$uid")
refused "an admin token owned by dbu is limited to dbu's roles" 403 t:$UTOK /api/v2/users "$(j add '{"identifier":"zed"}')"
refused "ad adds a user" 200 s:ad /api/v2/users "$(j add '{"identifier":"zed"}')"
refused "ad removes it" 200 s:ad /api/v2/users/zed "$(j remove)"
check "gone" [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v2/users/zed")" = 404 ]
# ---- sendchange -----------------------------------------------------------------------
nc=$(changes_total)
out=$("$KILN" sendchange --who ann a.c 2>&1)
check "sendchange anonymously: refused ($out)" sh -c "[ $? != 0 ] && echo \"\$1\" | grep -q 401" _ "$out"
st=$(call t:$FTOK /change_hook/base '{"author":"ann","files":["a.c"]}')
check "sendchange with a force token: 403 ($st)" [ "$st" = 403 ]
st=$(call t:$RTOK /change_hook/base '{"author":"ann","files":["a.c"]}')
check "sendchange with a revoked token: 401 ($st)" [ "$st" = 401 ]
check "no change stored" [ "$(changes_total)" = "$nc" ]
st=$(call t:$SCTOK /change_hook/base '{"author":"ann","files":["a.c"]}')
check "sendchange with a sendchange token: 200 ($st)" [ "$st" = 200 ]
check "one change stored" [ "$(changes_total)" = $((nc + 1)) ]
# ---- try ------------------------------------------------------------------------------
P=$(printf -- '--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+x\n' | base64 -w0)
nbs=$(api buildsets | jpy 'd["meta"]["total"]')
refused "try anonymously with a wrong scheduler token" 401 anon /api/v2/tryschedulers/try "$(j try "{\"token\":\"nope\",\"patch_base64\":\"$P\"}")"
refused "try with a force token" 403 t:$FTOK /api/v2/tryschedulers/try "$(j try "{\"patch_base64\":\"$P\"}")"
refused "try with a revoked token" 401 t:$RTOK /api/v2/tryschedulers/try "$(j try "{\"patch_base64\":\"$P\"}")"
check "no buildset added" [ "$(api buildsets | jpy 'd["meta"]["total"]')" = "$nbs" ]
refused "try with a try API token (no scheduler token): accepted" 200 t:$TTOK /api/v2/tryschedulers/try "$(j try "{\"patch_base64\":\"$P\"}")"
refused "try anonymously with the scheduler's own token: accepted as before" 200 anon /api/v2/tryschedulers/try "$(j try "{\"token\":\"try-secret\",\"patch_base64\":\"$P\"}")"
check "two buildsets added" [ "$(api buildsets | jpy 'd["meta"]["total"]')" = $((nbs + 2)) ]

check "no token or password in master.log" sh -c "! grep -q -e '$ADTOK' -e '$TTOK' -e hp-pass -e db-user-pw -e '${CK[ad]}' '$M/master.log'"
done_testing
