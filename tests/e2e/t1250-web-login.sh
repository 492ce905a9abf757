#!/bin/bash
# asan-too
# Web login end to end (slice "weblogin", docs/AUTH.md) on a real master:
# POST /auth/login (JSON for a database user, a form for a bcrypt user of
# the htpasswd file), the kiln_session cookie's flags, GET /auth/me and its
# csrf value, a control call by cookie refused without X-Kiln-CSRF (or with
# a wrong one) and accepted with it, logout deleting the session, a session
# past its expiry or idle too long refused, failed logins answered 429 with
# Retry-After per address and per username, and no password or session
# text in master.log or the database.
. "$(dirname "$0")/lib.sh"
require_cmd sqlite3 curl

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "b1", workers = { "w1" }, steps = { shell { name = "s", command = "true" } } }
force_scheduler { name = "force", builders = { "b1" } }
auth = {
  htpasswd = "users.htpasswd",
  roles = {
    { role = "admin", users = { "ann" } },
    { role = "force", users = { "hp" }, builders = { "b*" } },
  },
}
LUA
printf sekrit > "$M/secrets/hook"; printf pw > "$M/secrets/w1"
# hp's password is hp-pass (bcrypt, cost 5, as htpasswd -B writes it with $2y$)
printf '%s\n' 'other:$2y$05$abcdefghijklmnopqrstuuCtiJr2FHsnOqjmtKGYqTW1lV7HIxHYq' \
    'hp:$2y$05$abcdefghijklmnopqrstuuCtiJr2FHsnOqjmtKGYqTW1lV7HIxHYq' > "$M/users.htpasswd"
check "master starts" start_master "$M"
unset KILN_TOKEN
export KILN_URL=$URL KILN_CLIENT_CONF=$TRASH/none.conf
DB=$M/state.sqlite

printf 'ann-s3cret-pw\n' > "$TRASH/pw"
out=$("$KILN" user add --token sekrit --identifier ann --username ann --password-file "$TRASH/pw" 2>&1)
check "the administrator adds user ann with the change_hook token ($out)" [ $? = 0 ]

requests_total() { api buildrequests | jpy 'd["meta"]["total"]'; }
forcebody='{"jsonrpc":"2.0","id":1,"method":"force","params":{"builderNames":["b1"],"reason":"web"}}'
# login USER PASS [curl args]: status; headers in $TRASH/h, body in $TRASH/body
login() { u=$1 p=$2; shift 2; curl -s -D "$TRASH/h" -o "$TRASH/body" -w '%{http_code}' --max-time 20 "$@" \
    -H 'Content-Type: application/json' -d "{\"username\":\"$u\",\"password\":\"$p\"}" "$URL/auth/login"; }
cookie_of() { tr -d '\r' < "$TRASH/h" | sed -n 's/^[Ss]et-[Cc]ookie: kiln_session=\([^;]*\).*/\1/p'; }
# post PATH BODY COOKIE [CSRF]: the status of a POST with that cookie (and header)
post() { curl -s -o "$TRASH/body" -w '%{http_code}' --max-time 20 -H 'Content-Type: application/json' \
    -H "Cookie: kiln_session=$3" ${4:+-H "X-Kiln-CSRF: $4"} -d "$2" "$URL$1"; }
me() { curl -s --max-time 10 -H "Cookie: kiln_session=$1" "$URL/auth/me"; }
me_user() { me "$1" | jpy 'd["user"]["username"] if d["user"] else "None"'; }

# ---- anonymous ------------------------------------------------------------------------
check "/auth/me anonymously: no user, anonymous control off (auth is configured)" \
    sh -c "curl -s '$URL/auth/me' | grep -q '\"user\":null' && curl -s '$URL/auth/me' | grep -q '\"anonymous_control\":false'"
st=$(curl -s -o "$TRASH/body" -w '%{http_code}' -H 'Content-Type: application/json' -d "$forcebody" "$URL/api/v2/forceschedulers/force")
check "anonymous force: 401 ($st)" [ "$st" = 401 ]
check "and nothing was requested" [ "$(requests_total)" = 0 ]

# ---- login, cookie, me ----------------------------------------------------------------
check "a wrong password: 401" [ "$(login ann nope)" = 401 ]
check "no cookie is set then" [ -z "$(cookie_of)" ]
check "ann logs in (JSON): 200" [ "$(login ann ann-s3cret-pw)" = 200 ]
C=$(cookie_of)
check "the cookie is 43 base64url characters" sh -c "echo '$C' | grep -Eq '^[A-Za-z0-9_-]{43}\$'"
check "its flags: HttpOnly, SameSite=Lax, Path=/, Max-Age 7 days, not Secure over plain http" \
    sh -c "grep -i '^set-cookie' '$TRASH/h' | grep -q 'Path=/; Max-Age=604800; HttpOnly; SameSite=Lax' && ! grep -i '^set-cookie' '$TRASH/h' | grep -q Secure"
CSRF=$(jpy 'd["csrf"]' < "$TRASH/body")
check "the login answer names the user and gives a csrf value" \
    [ "$(jpy 'd["user"]["username"]' < "$TRASH/body")" = ann ] && [ ${#CSRF} = 43 ]
check "/auth/me with the cookie: ann, the same csrf, admin" \
    [ "$(me "$C" | jpy "[d['user']['username'], d['csrf'] == '$CSRF', d['can']['admin']]")" = '["ann", true, true]' ]

# ---- CSRF -----------------------------------------------------------------------------
check "force by cookie without X-Kiln-CSRF: 403" [ "$(post /api/v2/forceschedulers/force "$forcebody" "$C")" = 403 ]
check "the refusal names the header" grep -q X-Kiln-CSRF "$TRASH/body"
check "force by cookie with a wrong X-Kiln-CSRF: 403" [ "$(post /api/v2/forceschedulers/force "$forcebody" "$C" "x$CSRF")" = 403 ]
check "nothing was requested" [ "$(requests_total)" = 0 ]
check "force by cookie with the csrf value: 200" [ "$(post /api/v2/forceschedulers/force "$forcebody" "$C" "$CSRF")" = 200 ]
check "one request" [ "$(requests_total)" = 1 ]
st=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -H "Cookie: kiln_session=$C" \
    -H "X-Kiln-CSRF: $CSRF" -H 'Origin: http://evil.example' -d "$forcebody" "$URL/api/v2/forceschedulers/force")
check "a cross-origin post with a valid cookie and csrf is still refused by the origin check: 403" [ "$st" = 403 ]

# ---- the session is stored hashed; logout deletes it ----------------------------------
if db_is_pg "$M"; then blen=octet_length; now="floor(extract(epoch FROM now()))::bigint"
else blen=length; now="strftime('%s','now')"; fi
check "one session row, its hash 32 bytes" [ "$(db_sql "$M" "SELECT count(*), $blen(hash) FROM sessions GROUP BY 2")" = "1|32" ]
check "the cookie text is not in the database" sh -c "! grep -q -- '$C' '$DB' '$DB-wal' 2>/dev/null"
check "logout without X-Kiln-CSRF: 403" [ "$(post /auth/logout '{}' "$C")" = 403 ]
check "logout with it: 200" [ "$(post /auth/logout '{}' "$C" "$CSRF")" = 200 ]
check "no session row left" [ "$(db_sql "$M" 'SELECT count(*) FROM sessions')" = 0 ]
check "/auth/me with the old cookie: anonymous" [ "$(me_user "$C")" = None ]
check "force with the old cookie and csrf: 401" [ "$(post /api/v2/forceschedulers/force "$forcebody" "$C" "$CSRF")" = 401 ]

# ---- htpasswd user by form ------------------------------------------------------------
st=$(curl -s -D "$TRASH/h" -o "$TRASH/body" -w '%{http_code}' --data-urlencode username=hp \
    --data-urlencode password=hp-pass "$URL/auth/login")
check "hp (htpasswd, bcrypt \$2y\$) logs in with a form: 200 ($st)" [ "$st" = 200 ]
H=$(cookie_of); HC=$(jpy 'd["csrf"]' < "$TRASH/body")
check "hp may force b* builders, is no admin" [ "$(me "$H" | jpy "[d['can']['force'], d['can']['admin']]")" = '[["b*"], false]' ]
check "hp forces b1: 200" [ "$(post /api/v2/forceschedulers/force "$forcebody" "$H" "$HC")" = 200 ]
check "hp cannot stop (no role): 403" [ "$(post /api/v2/buildrequests/1 '{"jsonrpc":"2.0","id":1,"method":"cancel","params":{}}' "$H" "$HC")" = 403 ]
check "a wrong htpasswd password: 401" [ "$(login hp hp-wrong)" = 401 ]

# ---- expiry and idle timeout ----------------------------------------------------------
login ann ann-s3cret-pw >/dev/null; E=$(cookie_of)
check "a fresh session works" [ "$(me_user "$E")" = ann ]
db_sql "$M" "UPDATE sessions SET expires_at = $now - 1 WHERE username = 'ann'"
check "past its expiry it is refused (anonymous)" [ "$(me_user "$E")" = None ]
check "and deleted" [ "$(db_sql "$M" "SELECT count(*) FROM sessions WHERE username = 'ann'")" = 0 ]
login ann ann-s3cret-pw >/dev/null; I=$(cookie_of)
db_sql "$M" "UPDATE sessions SET last_seen_at = $now - 86401 WHERE username = 'ann'"
check "idle for more than a day (session_idle) it is refused" [ "$(me_user "$I")" = None ]

# ---- brute force ----------------------------------------------------------------------
got=""
for i in $(seq 1 14); do
    st=$(login ann "wrong$i")
    [ "$st" = 429 ] && { got=429; break; }
done
check "repeated failed logins end in 429 (after $i)" [ "$got" = 429 ]
check "with Retry-After" grep -qi '^retry-after: [1-9]' "$TRASH/h"
check "the right password is refused too while the window is open: 429" [ "$(login ann ann-s3cret-pw)" = 429 ]
st=$(login ann ann-s3cret-pw --interface 127.0.0.2)
check "from another address the same username is still held back: 429 ($st)" [ "$st" = 429 ]
st=$(login hp hp-pass --interface 127.0.0.2)
check "another user from that address logs in: 200 ($st)" [ "$st" = 200 ]

# ---- anonymous_read = false: a second master ------------------------------------------
M2=$TRASH/master2
new_master "$M2" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
auth = { anonymous_read = false, htpasswd = "users.htpasswd" }
LUA
printf sekrit > "$M2/secrets/hook"
echo 'hp:$2y$05$abcdefghijklmnopqrstuuCtiJr2FHsnOqjmtKGYqTW1lV7HIxHYq' > "$M2/users.htpasswd"
URL1=$URL
check "a master with anonymous_read = false starts" start_master "$M2"
code() { curl -s -o "$TRASH/body" -w '%{http_code}' --max-time 10 "$@"; }
check "an anonymous GET under /api/v2: 401" [ "$(code "$URL/api/v2/builders")" = 401 ]
check "saying a login is needed" grep -q "login required" "$TRASH/body"
check "the UI's page and /auth/me stay readable" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$URL/')\" = 200 ] && [ \"\$(curl -s -o /dev/null -w '%{http_code}' '$URL/auth/me')\" = 200 ]"
# an upgraded (101) connection stays open: --max-time ends curl then, so it
# is generous (a late 101 under load would print 000)
ws() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$@" "$URL/ws"; }
check "an anonymous /ws upgrade: 401" [ "$(ws)" = 401 ]
login hp hp-pass >/dev/null; R=$(cookie_of)
check "with a session: the GET answers" [ "$(code -H "Cookie: kiln_session=$R" "$URL/api/v2/builders")" = 200 ]
for p in /metrics /feeds/builds.atom /badges/nosuch.svg; do
    check "an anonymous GET $p: 401" [ "$(code "$URL$p")" = 401 ]
done
check "with a session /metrics answers" [ "$(code -H "Cookie: kiln_session=$R" "$URL/metrics")" = 200 ]
check "and /ws upgrades (101)" [ "$(ws -H "Cookie: kiln_session=$R")" = 101 ]
tok() { curl -s -H 'Authorization: Bearer sekrit' -H 'Content-Type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"add\",\"params\":{\"name\":\"$1\",\"scopes\":\"$1\"}}" \
    "$URL/api/v2/tokens" | jpy 'd["result"]["token"]'; }
VT=$(tok view); FT=$(tok force)
check "a token without view: 403" [ "$(code -H "Authorization: Bearer $FT" "$URL/api/v2/builders")" = 403 ]
check "a token with view: 200" [ "$(code -H "Authorization: Bearer $VT" "$URL/api/v2/builders")" = 200 ]
URL=$URL1

# ---- nothing secret in the log --------------------------------------------------------
check "the log names failed logins" grep -q "failed login for 'ann'" "$M/master.log"
check "no password in master.log" sh -c "! grep -q -e ann-s3cret-pw -e hp-pass -e wrong1 '$M/master.log'"
check "no session text in master.log" sh -c "! grep -q -e '$C' -e '$H' '$M/master.log'"

done_testing
