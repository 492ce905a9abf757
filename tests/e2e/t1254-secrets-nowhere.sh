#!/bin/bash
# Secrets appear nowhere (slice "authhard", docs/SECURITY.md): a real master
# and kiln-worker run a build whose step gets a secret(...) value, with an
# http reporter and an email reporter (aiosmtpd sink as in t1210) delivering
# it; an API token and a web login are used.  Then master.log, every API
# answer fetched (builds, steps, logs, properties, /auth/me, tokens, users),
# the /ws messages seen during the build, the reporters' messages received
# and the database file are searched for the secret value, the password,
# the token, the session and the other master.lua secrets: none is found
# (the masked form <secret> is expected in the log).  A forged GitHub hook
# signature and a forged push token change nothing (counts before/after).
. "$(dirname "$0")/lib.sh"
require_cmd curl sqlite3 strings
/usr/bin/python3 -c 'import aiosmtpd, websockets' 2>/dev/null ||
    skip_all "python3-aiosmtpd or python3-websockets is not installed (scripts/install-deps)"

/usr/bin/python3 "$KILN_SRC/tests/e2e/smtp-sink.py" "$TRASH/smtp.port" "$TRASH/mail" &
e2e_track $!
/usr/bin/python3 "$KILN_SRC/tests/e2e/http-sink.py" "$TRASH/http.port" "$TRASH/req" '{}' &
e2e_track $!
check "the sinks listen" wait_for 60 sh -c "test -s '$TRASH/smtp.port' && test -s '$TRASH/http.port'"
SPORT=$(cat "$TRASH/smtp.port"); HPORT=$(cat "$TRASH/http.port")

M=$TRASH/master
SECRET="stepsecret-$$-Qz7"
PW="login-pw-$$-Xy3"
new_master "$M" <<LUA
url = "http://ci.example.org:8010/"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook"), github = { secret = secret("gh") } }
push = { max_body_bytes = 65536 }
worker { name = "w1", password = secret("w1") }
builder { name = "app", workers = { "w1" }, steps = {
  shell { name = "use it", env = { TOK = secret("tok") },
    command = { "sh", "-c", "echo \"token=\$TOK\"; echo done; exit 1" } },
} }
force_scheduler { name = "force", builders = { "app" } }
reporter { kind = "http", name = "hook", mode = "all", url = "http://127.0.0.1:$HPORT/push/kiln",
  secret = secret("hook_key") }
reporter { kind = "email", name = "mail", mode = "all", from = "kiln@example.org",
  to = "team@example.org", log_lines = 5, smtp = { host = "127.0.0.1", port = $SPORT } }
auth = { roles = { { role = "admin", users = { "ann" } } } }
LUA
printf 'w1-pass-%s' "$$" > "$M/secrets/w1"
printf 'hookshared-%s' "$$" > "$M/secrets/hook"
printf 'ghsecret-%s' "$$" > "$M/secrets/gh"
printf 'hmackey-%s' "$$" > "$M/secrets/hook_key"
printf '%s' "$SECRET" > "$M/secrets/tok"
check "master starts" start_master "$M"
unset KILN_TOKEN
export KILN_URL=$URL KILN_CLIENT_CONF=$TRASH/none.conf
HOOK="hookshared-$$"
printf '%s\n' "$PW" > "$TRASH/pw"
"$KILN" user add --token "$HOOK" --identifier ann --username ann --password-file "$TRASH/pw" >/dev/null
check "user ann is added" [ $? = 0 ]
TOKEN=$("$KILN" token create --token "$HOOK" --name ci --scope admin,force 2>/dev/null)
check "an API token is made" [ -n "$TOKEN" ]
curl -s -D "$TRASH/h" -o "$TRASH/login.json" --max-time 20 -H 'Content-Type: application/json' \
    -d "{\"username\":\"ann\",\"password\":\"$PW\"}" "$URL/auth/login" >/dev/null
COOKIE=$(tr -d '\r' < "$TRASH/h" | sed -n 's/^[Ss]et-[Cc]ookie: kiln_session=\([^;]*\).*/\1/p')
check "ann logs in" [ ${#COOKIE} = 43 ]
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

# /ws: every message while the build runs
cat > "$TRASH/ws.py" <<'PY'
import asyncio, json, sys, websockets
url, out, ready = sys.argv[1], sys.argv[2], sys.argv[3]
async def main():
    async with websockets.connect(url.replace("http://", "ws://") + "/ws", open_timeout=10, max_size=None) as ws:
        for i, p in enumerate(["builds/*/*", "steps/*/*", "logs/*/*", "buildrequests/*/*", "changes/*/*"]):
            await ws.send(json.dumps({"cmd": "startConsuming", "path": p, "_id": i}))
            await asyncio.wait_for(ws.recv(), 20)
        open(ready, "w").write("1")
        with open(out, "w") as f:
            try:
                while True:
                    f.write(await asyncio.wait_for(ws.recv(), 30) + "\n"); f.flush()
            except (asyncio.TimeoutError, websockets.ConnectionClosed):
                pass
asyncio.run(main())
PY
/usr/bin/python3 "$TRASH/ws.py" "$URL" "$TRASH/ws.out" "$TRASH/ws.ready" &
WSPID=$!; e2e_track $WSPID
check "the /ws listener subscribed" wait_for 60 test -s "$TRASH/ws.ready"

BID=$(curl -s --max-time 10 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"force","params":{"builderNames":["app"],"reason":"secrets"}}' \
    "$URL/api/v2/forceschedulers/force" | jpy 'list(d["result"][1].values())[0]')
build_done() { [ "$(api builds/1 | jpy 'd["builds"][0]["complete"]' 2>/dev/null)" = true ]; }
check "the build forced by token completes" wait_for 60 build_done
check "its step saw the secret (masked in the log)" wait_for 60 sh -c \
    "curl -s '$URL/api/v2/builds/1/steps/1/logs/stdio/raw' | grep -q 'token=<secret>'"
check "the http reporter delivered" wait_for 30 sh -c "ls '$TRASH/req' 2>/dev/null | grep -q ."
check "the mail was sent" wait_for 30 sh -c "ls '$TRASH/mail' 2>/dev/null | grep -q json"
check "/ws saw the build" wait_for 30 grep -q '"builds/1/' "$TRASH/ws.out"

# ---- every answer the test fetches ------------------------------------------------------
A=$TRASH/answers; mkdir -p "$A"
n=0
for p in builds builds/1 builds/1/steps builds/1/steps/1/logs builds/1/steps/1/logs/stdio/contents \
    builds/1/steps/1/logs/stdio/raw builds/1/properties buildrequests buildsets changes users users/1 \
    workers builders; do
    n=$((n + 1)); curl -s --max-time 10 -H "Authorization: Bearer $TOKEN" "$URL/api/v2/$p" > "$A/$n.json"
done
curl -s --max-time 10 -H "Authorization: Bearer $TOKEN" "$URL/api/v2/tokens" > "$A/tokens.json"
curl -s --max-time 10 -H "Cookie: kiln_session=$COOKIE" "$URL/auth/me" > "$A/me-session.json"
curl -s --max-time 10 -H "Authorization: Bearer $TOKEN" "$URL/auth/me" > "$A/me-token.json"
check "the answers were fetched (the tokens list names 'ci')" grep -q '"ci"' "$A/tokens.json"
check "the properties answer is there" grep -q '{' "$A/7.json"

# ---- search ---------------------------------------------------------------------------------
# the mails' parts decoded (bodies are base64: a raw grep would miss an encoded secret)
/usr/bin/python3 - "$TRASH/mail" > "$TRASH/mail.txt" <<'PY'
import email, json, os, sys
for f in sorted(os.listdir(sys.argv[1])):
    if not f.endswith(".json"):
        continue
    m = email.message_from_string(json.load(open(os.path.join(sys.argv[1], f)))["data"])
    print(str(m["Subject"]))
    for part in m.walk():
        b = part.get_payload(decode=True)
        if b:
            print(b.decode("utf-8", "replace"))
PY
check "the mail was decoded (it names the step)" grep -q "step 'use it'" "$TRASH/mail.txt"
sleep_until_flushed() { sqlite3 "$M/state.sqlite" 'PRAGMA wal_checkpoint(PASSIVE)' >/dev/null 2>&1; true; }
sleep_until_flushed
if db_is_pg "$M"; then
    # the e2e-pg pass: every row as text (bytea as hex, as the server keeps it)
    pg_dump -d "$(e2e_pg_url "$M")" --data-only > "$TRASH/db.strings" 2>/dev/null
else
    strings -a "$M/state.sqlite" > "$TRASH/db.strings" 2>/dev/null
    [ -f "$M/state.sqlite-wal" ] && strings -a "$M/state.sqlite-wal" >> "$TRASH/db.strings"
fi
check "the database strings were read" [ -s "$TRASH/db.strings" ]
# nowhere NAME VALUE: VALUE is in none of the places
nowhere() {
    found=$(grep -rlF -- "$2" "$M/master.log" "$A" "$TRASH/ws.out" "$TRASH/req" "$TRASH/mail" \
        "$TRASH/mail.txt" "$TRASH/db.strings" "$TRASH/login.json" 2>/dev/null)
    [ -z "$found" ] || { diag "$1 found in: $found"; return 1; }
}
check "the search finds what is there (a control: the username and the masked form)" \
    sh -c "! nowhere() { :; }; grep -rlqF -- 'token=<secret>' '$A' && grep -qF ann '$TRASH/db.strings'"
for pair in "step secret:$SECRET" "password:$PW" "API token:$TOKEN" "session:$COOKIE" \
    "worker password:w1-pass-$$" "change_hook token:$HOOK" "github secret:ghsecret-$$" \
    "http reporter key:hmackey-$$"; do
    check "the ${pair%%:*} is nowhere (log, API answers, /ws, reporters, database)" nowhere "${pair%%:*}" "${pair#*:}"
done
check "the masked form <secret> is in the step log" grep -q '<secret>' "$A/6.json"
check "the mail's log tail carries the masked form, not the value" \
    grep -qF 'token=<secret>' "$TRASH/mail.txt"

# ---- forged requests change nothing -----------------------------------------------------------
changes_total() { api changes | jpy 'd["meta"]["total"]'; }
builds_total() { api builds | jpy 'd["meta"]["total"]'; }
c0=$(changes_total); b0=$(builds_total)
cat > "$TRASH/push.json" <<'JSON'
{"ref": "refs/heads/main", "before": "1111111111111111111111111111111111111111",
 "after": "2222222222222222222222222222222222222222",
 "repository": {"full_name": "octo/hello", "html_url": "https://github.com/octo/hello"},
 "pusher": {"name": "mallory"}, "head_commit": null,
 "commits": [{"id": "2222222222222222222222222222222222222222", "message": "forged",
   "timestamp": "2023-11-14T23:13:20+01:00", "url": "https://github.com/octo/hello/commit/2222",
   "author": {"name": "M", "email": "m@example.org"}, "added": [], "removed": [], "modified": ["a"]}]}
JSON
sig=$(/usr/bin/python3 -c 'import hmac,hashlib,sys; print(hmac.new(b"not-the-secret", open(sys.argv[1],"rb").read(), hashlib.sha256).hexdigest())' "$TRASH/push.json")
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary @"$TRASH/push.json" "$URL/change_hook/github")
check "a forged GitHub signature: 403 ($st)" [ "$st" = 403 ]
bag='{"client": {"package": "kiln", "host": "h"}, "steps": [{"name": "a", "status": 0}]}'
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    -H "Authorization: Bearer kiln_ForgedForgedForgedForgedForgedForgedForgedFo" -d "$bag" "$URL/api/v2/push")
check "a forged push token: 401 ($st)" [ "$st" = 401 ]
check "no change and no build were added (changes $c0, builds $b0)" \
    [ "$(changes_total)" = "$c0" ] && [ "$(builds_total)" = "$b0" ]
kill "$WSPID" 2>/dev/null
done_testing
