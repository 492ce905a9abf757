#!/bin/bash
# asan-too
# Interested users (issue 12, slice "alerts"; docs/USERS.md): the email
# reporter mails a blamelist author at the address of its user object (an
# author known only by a username gets mail once its user has an email
# identity), and the users of extra_recipients (an identifier) on every
# build, through a real SMTP server (aiosmtpd), a real master and
# kiln-worker, changes from sendchange, users edited with `kiln user`.
# With blamelist = false, the authors' users are not mailed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-reporters.sh"
require_cmd curl
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || skip_all "no python3-aiosmtpd"

B=$TRASH/bad
new_master "$B" <<'LUA'
reporter { kind = "email", from = "k@example.org", smtp = { host = "127.0.0.1" },
  extra_recipients = { "" } }
LUA
out=$("$KILN" checkconfig "$B" 2>&1)
check "checkconfig refuses an empty extra_recipients entry ($out)" \
    sh -c "printf '%s' \"\$1\" | grep -qF \"master.lua:1: reporter 'email': extra_recipients[1] must be a user's identifier\"" _ "$out"

smtp_sink

M=$TRASH/master
new_master "$M" <<LUA
url = "http://ci.example.org:8010/"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "app", workers = { "w1" }, steps = { shell { command = "true" } } }
single_branch { name = "main", builders = { "app" }, change_filter = { branch = "main" } }
reporter { kind = "email", name = "authors", mode = "all", from = "kiln@example.org",
  extra_recipients = { "carol" }, smtp = { host = "127.0.0.1", port = $SPORT } }
reporter { kind = "email", name = "quiet", mode = "all", from = "kiln@example.org",
  blamelist = false, extra_recipients = { "carol" }, subject = "[quiet]",
  smtp = { host = "127.0.0.1", port = $SPORT } }
LUA
printf 'w1-pass-%s' "$$" > "$M/secrets/w1"
printf 'hook-%s' "$$" > "$M/secrets/hook"
check "checkconfig accepts it" "$KILN" checkconfig "$M"
check "master starts" start_master "$M"
export KILN_URL=$URL
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
check "kiln user add carol (an email identity)" sh -c \
    "'$KILN' user add --identifier carol --info email=carol@example.org >/dev/null"

build_done() { [ "$(api "builders/app/builds?number=$1" | jpy 'd["builds"][0]["complete"]')" = true ]; }
change() {
    "$KILN" sendchange --master "$URL" --token "hook-$$" --who "$1" --branch main \
        --revision "$2" src/a.c >/dev/null 2>&1
}
nmails() { [ "$(ls "$TRASH/mail" 2>/dev/null | grep -c '^mail-.*\.json$')" = "$1" ]; }

change bob r1
check "build 1 (by 'bob', no address) completes" wait_for 60 build_done 1
check "two mails for it" wait_for 60 nmails 2
check "bob's user gets an email identity" sh -c \
    "'$KILN' user update bob --info email=bob@corp.example.org >/dev/null"
change bob r2
check "build 2 (by 'bob' again) completes" wait_for 60 build_done 2
check "two more mails" wait_for 60 nmails 4

check_py "the recipients are exactly the interested users' addresses" "$TRASH/mail" <<'PY'
import email, email.policy, glob, json, sys
got = []
for p in sorted(glob.glob(sys.argv[1] + "/mail-*.json")):
    r = json.load(open(p))
    msg = email.message_from_string(r["data"], policy=email.policy.default)
    got.append((str(msg["Subject"]).split(" (")[0], tuple(sorted(r["rcpt_tos"]))))
got.sort()
print(got)
want = sorted([
    ("[kiln] success: app #1", ("carol@example.org",)),
    ("[quiet] success: app #1", ("carol@example.org",)),
    ("[kiln] success: app #2", ("bob@corp.example.org", "carol@example.org")),
    ("[quiet] success: app #2", ("carol@example.org",)),
])
assert got == want, (got, want)
print("recipients ok")
PY
stop_pid "$MASTER_PID"
check "the master stops cleanly" [ $? = 0 ]
done_testing
