#!/bin/bash
# asan-too
# The email reporter (issue 12) against a real SMTP server (aiosmtpd on
# loopback): a real master and kiln-worker build failing and passing; the
# exact mails received are checked (mode failing: one for each failure and
# none for a success; mode change; extra recipients and the blamelist; the
# subject RFC 2047-encoded; multipart text and HTML bodies; the build page
# URL; the log tail present and its secret masked).  Then an SMTP server
# that accepts and never answers, and a closed port: the master answers its
# API promptly while the mail times out, is retried, and is dropped with
# the reason logged.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-reporters.sh"
require_cmd curl
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
    skip_all "python3-aiosmtpd is not installed (scripts/install-deps)"

SINK=$KILN_SRC/tests/e2e/smtp-sink.py

B=$TRASH/bad
new_master "$B" <<'LUA'
reporter { kind = "email", from = "kiln@example.org", to = { "not an address" },
  smtp = { host = "127.0.0.1" } }
LUA
check "checkconfig refuses a bad recipient with its line" checkconfig_says "$B" \
    "master.lua:1: reporter 'email': 'to[1]' must be an address"
new_master "$B" <<'LUA'
reporter { kind = "email", from = "kiln@example.org", to = "a@example.org",
  smtp = { host = "127.0.0.1", user = "kiln", password = "plain" } }
LUA
check "checkconfig refuses a password that is not a secret" checkconfig_says "$B" \
    "master.lua:1: reporter 'email': smtp: 'password' must come from secret(...)"

# ---- the sink ---------------------------------------------------------------
smtp_sink

M=$TRASH/master
echo 1 > "$TRASH/rc"
new_master "$M" <<LUA
title = "e2e"
url = "http://ci.example.org:8010/"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "app", workers = { "w1" }, steps = {
  shell { name = "make test", env = { TOK = secret("tok") },
    command = { "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9; do echo tail-line-\$i; done; echo \"token=\$TOK\"; exit \$(cat '$TRASH/rc')" } },
} }
builder { name = "sleepy", workers = { "w1" }, steps = {
  shell { name = "sleep", command = { "sleep", "60" } },
} }
single_branch { name = "main", builders = { "app" }, change_filter = { branch = "main" } }
force_scheduler { name = "force", builders = { "app", "sleepy" } }
reporter { kind = "email", name = "everything", mode = "all", builders = { "sleepy" },
  from = "kiln@example.org", to = "all@example.org", smtp = { host = "127.0.0.1", port = $SPORT } }
reporter { kind = "email", name = "failing", mode = "failing", builders = { "app" },
  from = "kiln@example.org", to = { "team@example.org" }, blamelist = true, log_lines = 5,
  subject = "[kïln ✓ café ünïcödé prüfung]", smtp = { host = "127.0.0.1", port = $SPORT } }
reporter { kind = "email", name = "change", mode = "change", branches = { "main" },
  from = "kiln@example.org", to = { "watch@example.org", "lead@example.org" },
  blamelist = false, smtp = { host = "127.0.0.1", port = $SPORT } }
LUA
printf 'w1-pass-%s' "$$" > "$M/secrets/w1"
printf 'hook-%s' "$$" > "$M/secrets/hook"
printf 's3cr3t-value-%s' "$$" > "$M/secrets/tok"
reporters_up "$M" change email

# build_done N: build number N of app is complete
build_done() { [ "$(api "builders/app/builds?number=$1" | jpy 'd["builds"][0]["complete"]')" = true ]; }
mails() { ls "$TRASH/mail" 2>/dev/null | grep -c '^mail-.*\.json$'; }
sent_count() { grep -c "mail sent to" "$M/master.log"; }

# change WHO REVISION: a change on main (the single_branch scheduler builds it)
change() {
    "$KILN" sendchange --master "$URL" --token "hook-$$" --who "$1" --branch main \
        --revision "$2" src/a.c >/dev/null 2>&1
}
# 1: failure, from a change by Ann (blamelist) on main
change "Ann Dev <ann@example.org>" abc123
check "build 1 (failure) completes" wait_for 60 build_done 1
check "one mail for build 1" wait_for 60 sh -c "[ \$(ls '$TRASH/mail' | grep -c json\$) = 1 ]"
# 2, 3: successes, 4: failure again
echo 0 > "$TRASH/rc"
change "Ann Dev <ann@example.org>" abc124
check "build 2 (success) completes" wait_for 60 build_done 2
check "the change mail for build 2 is sent" wait_for 60 sh -c "[ \$(grep -c 'mail sent to' '$M/master.log') = 2 ]"
change "Ann Dev <ann@example.org>" abc125
check "build 3 (success) completes" wait_for 60 build_done 3
echo 1 > "$TRASH/rc"
# (a secret in the summary: masked; an author the server refuses: the others still get it)
change "Nobody <nobody@example.org>" "rev-s3cr3t-value-$$"
check "build 4 (failure) completes" wait_for 60 build_done 4
check "four mails in all were sent" wait_for 60 sh -c "[ \$(grep -c 'mail sent to' '$M/master.log') = 4 ]"
check "and the sink has exactly four" [ "$(mails)" = 4 ]
BID=$(api builders/app | jpy 'd["builders"][0]["builderid"]')

check_py "the mails are exactly the expected ones (recipients, subjects, bodies, masking)" "$TRASH/mail" "$BID" "s3cr3t-value-$$" <<'PY'
import email, email.header, email.policy, glob, json, sys
from email import message_from_string
d, bid, secret = sys.argv[1], sys.argv[2], sys.argv[3]
recs = [json.load(open(p)) for p in sorted(glob.glob(d + "/mail-*.json"))]
got = []
for r in recs:
    msg = message_from_string(r["data"], policy=email.policy.default)
    subj = str(msg["Subject"])
    got.append((tuple(r["rcpt_tos"]), subj))
    assert r["mail_from"] == "kiln@example.org", r["mail_from"]
    assert msg.get_content_type() == "multipart/alternative", msg.get_content_type()
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"], parts
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert secret not in r["data"] and secret not in text and secret not in html, "secret leaked"
    num = subj.split("#")[1].split()[0]
    url = "http://ci.example.org:8010/builders/%s/builds/%s" % (bid, num)
    assert "Build page: " + url in text, text
    assert 'href="%s"' % url in html, html
    assert "\r\n" in r["data"], "no CRLF"
    head = r["data"].split("\r\n\r\n")[0].split("\r\n")
    assert all(len(l) <= 78 for l in head), "header line over 78: %r" % head
    assert all(ord(c) < 128 for c in "".join(head)), "8-bit header"
    if "failure" in subj:
        assert "tail-line-9" in text and "token=<secret>" in text, text
        assert "token=&lt;secret&gt;" in html, html
    if "kïln" in subj:  # the "failing" reporter: log_lines = 5
        assert "tail-line-2" not in text, "more than log_lines lines: " + text
        assert "The last 5 lines of step 'make test'" in text, text
        assert "=?UTF-8?B?" in r["data"].split("\n\n")[0] or "=?UTF-8?B?" in r["data"].split("\r\n\r\n")[0], "subject not RFC 2047"
    if num == "4":
        assert "Revision: rev-<secret>" in text, text
    if num == "1":
        assert "Blamelist: Ann Dev <ann@example.org>" in text, text
        assert "Revision: abc123" in text, text
want = [
    (("team@example.org", "ann@example.org"), "[kïln ✓ café ünïcödé prüfung] failure: app #1 (main)"),
    (("watch@example.org", "lead@example.org"), "[kiln] success: app #2 (main)"),
    (("team@example.org",), "[kïln ✓ café ünïcödé prüfung] failure: app #4 (main)"),
    (("watch@example.org", "lead@example.org"), "[kiln] failure: app #4 (main)"),
]
assert sorted(got) == sorted(want), "got %r" % got
print("mails ok")
PY
check "the master never logged the secret" sh -c "! grep -q 's3cr3t-value-$$' '$M/master.log'"

# a build interrupted by the master's own shutdown is not reported
force sleepy >/dev/null
sleepy_running() { [ "$(api builders/sleepy/builds | jpy 'len(d["builds"])')" = 1 ]; }
check "the sleepy build runs" wait_for 30 sleepy_running
stop_pid "$MASTER_PID"
check "the master stops cleanly" [ $? = 0 ]
check "nothing was queued for the interrupted build" sh -c "! grep -q 'mail not sent' '$M/master.log'"
check "and the sink still has four mails" [ "$(mails)" = 4 ]

# ---- a server that accepts and never answers, and a closed port ---------------
/usr/bin/python3 "$SINK" "$TRASH/silent.port" "$TRASH/silent" --silent &
e2e_track $!
check "the silent server listens" wait_for 60 test -s "$TRASH/silent.port"
DPORT=$(cat "$TRASH/silent.port")
CLOSED=$(free_port)
/usr/bin/python3 "$SINK" "$TRASH/flaky.port" "$TRASH/flaky" --fail-first 1 &
e2e_track $!
check "a sink that refuses the first mail with 451 listens" wait_for 60 test -s "$TRASH/flaky.port"
FPORT=$(cat "$TRASH/flaky.port")
/usr/bin/python3 "$SINK" "$TRASH/auth.port" "$TRASH/auth" --auth "kiln:smtp-pass-$$" &
e2e_track $!
check "a sink that requires a login listens" wait_for 60 test -s "$TRASH/auth.port"
APORT=$(cat "$TRASH/auth.port")
N=$TRASH/dead
new_master "$N" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w2", password = secret("w2") }
builder { name = "fast", workers = { "w2" }, steps = { shell { command = "exit 1" } } }
force_scheduler { name = "force", builders = { "fast" } }
reporter { kind = "email", name = "silent", mode = "all", from = "k@example.org",
  to = "a@example.org", smtp = { host = "127.0.0.1", port = $DPORT },
  queue = { timeout = 2, attempts = 2, backoff = 0.5 } }
reporter { kind = "email", name = "closed", mode = "all", from = "k@example.org",
  to = "a@example.org", smtp = { host = "127.0.0.1", port = $CLOSED },
  queue = { attempts = 2, backoff = 0.2 } }
reporter { kind = "email", name = "flaky", mode = "all", from = "k@example.org",
  to = "a@example.org", smtp = { host = "127.0.0.1", port = $FPORT },
  queue = { attempts = 3, backoff = 0.2 } }
reporter { kind = "email", name = "login", mode = "all", from = "k@example.org",
  to = "a@example.org", smtp = { host = "127.0.0.1", port = $APORT, user = "kiln",
  password = secret("smtp") } }
reporter { kind = "email", name = "badlogin", mode = "all", from = "k@example.org",
  to = "a@example.org", smtp = { host = "127.0.0.1", port = $APORT, user = "kiln",
  password = secret("wrong") }, queue = { attempts = 3, backoff = 0.2 } }
LUA
printf 'smtp-pass-%s' "$$" > "$N/secrets/smtp"
printf 'not-the-pass-%s' "$$" > "$N/secrets/wrong"
printf 'w2-pass-%s' "$$" > "$N/secrets/w2"
check "a master with dead SMTP servers starts" start_master "$N"
start_worker "$TRASH/w2" w2 "$N/secrets/w2"
check "worker attaches" wait_for 60 worker_connected w2
force fast >/dev/null
build_done_fast() { [ "$(api "builders/fast/builds?number=1" | jpy 'd["builds"][0]["complete"]')" = true ]; }
check "the build completes while the mail hangs" wait_for 30 build_done_fast
check "the silent server got the connection" wait_for 30 test -s "$TRASH/silent/accepted"
worst=0
for i in 1 2 3 4 5 6 7 8 9 10; do
    t=$(curl -sS -o /dev/null -w '%{time_total}' --max-time 5 "$URL/api/v2/builders")
    worst=$(/usr/bin/python3 -c "print(max($worst, $t))")
done
diag "worst API answer while the SMTP server hangs: ${worst}s"
check "the API answers promptly meanwhile (worst ${worst}s < 0.5s)" \
    /usr/bin/python3 -c "import sys; sys.exit(0 if $worst < 0.5 else 1)"
check "the closed port: retried then dropped with its reason" wait_for 60 grep -q \
    "reporter 'closed': message dropped after 2 attempts: Couldn't connect to server" "$N/master.log"
check "the silent server: the attempt times out and is retried" wait_for 60 grep -q \
    "reporter 'silent': attempt 1 failed (Timeout was reached): retrying in 500 ms" "$N/master.log"
check "then dropped with its reason" wait_for 60 grep -q \
    "reporter 'silent': message dropped after 2 attempts: Timeout was reached" "$N/master.log"
check "a 451 reply is retried" wait_for 60 grep -q \
    "reporter 'flaky': attempt 1 failed (.*451.*): retrying in 200 ms" "$N/master.log"
check "and the second attempt delivers it" wait_for 60 grep -q \
    "reporter 'flaky': message sent (attempt 2)" "$N/master.log"
check "the sink refused one and got one" sh -c "[ \$(cat '$TRASH/flaky/refused') = 1 ] && [ \$(ls '$TRASH/flaky' | grep -c json\$) = 1 ]"
check "the login from secret(\"smtp\") is accepted and the mail delivered" wait_for 60 sh -c \
    "ls '$TRASH/auth' | grep -q 'json\$' && grep -q \"reporter 'login': message sent (attempt 1)\" '$N/master.log'"
check "a refused login is dropped at once (not retried)" wait_for 60 grep -q \
    "reporter 'badlogin': message dropped after 1 attempt: Login denied" "$N/master.log"
check "the sink saw one failed login" [ "$(wc -l < "$TRASH/auth/auth-failed")" = 1 ]
check "the SMTP password never reached the log" sh -c "! grep -q 'pass-$$' '$N/master.log'"
check "two attempts reached the silent server" [ "$(cat "$TRASH/silent/accepted")" = 2 ]
check "the master still answers" sh -c "curl -sS --max-time 5 $URL/api/v2/builders | grep -q builderid"
stop_pid "$MASTER_PID"
check "and stops cleanly" [ $? = 0 ]
done_testing
