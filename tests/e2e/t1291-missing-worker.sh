#!/bin/bash
# asan-too
# Missing-worker alerts (issue 12, slice "alerts"): worker { notify_on_missing,
# missing_timeout } (Buildbot's names) and reporters with events =
# { "worker_missing" }, against a real SMTP server (aiosmtpd, smtp-sink.py),
# a recording HTTP server (http-sink.py) playing Slack, a real master and
# real kiln-workers.  Checked: w1 (missing_timeout 2) stopped: after 2 s one
# mail to its notify_on_missing address (through the email reporter, which
# does not list the event: not to its 'to') and one Slack message; none
# repeated while it stays away; back and gone again: one more of each; w2
# (missing_timeout 20) back in time: nothing; checkconfig's errors.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-reporters.sh"
require_cmd curl
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || skip_all "no python3-aiosmtpd"

B=$TRASH/bad
new_master "$B" <<'LUA'
worker { name = "w1", password = secret("w1"), notify_on_missing = { "not an address" } }
LUA
echo x > "$B/secrets/w1"
check "checkconfig refuses a bad notify_on_missing address" checkconfig_says "$B" \
    "master.lua:1: worker 'w1': 'notify_on_missing' must be an address"
new_master "$B" <<'LUA'
worker { name = "w1", password = secret("w1"), missing_timeout = 0 }
LUA
check "checkconfig refuses missing_timeout = 0" checkconfig_says "$B" \
    "master.lua:1: worker 'w1': 'missing_timeout' must be more than 0"
new_master "$B" <<'LUA'
reporter { kind = "email", from = "k@example.org", smtp = { host = "127.0.0.1" },
  events = { "worker_gone" } }
LUA
check "checkconfig refuses an unknown event" checkconfig_says "$B" \
    "master.lua:1: reporter 'email': events[1] must be \"builds\", \"worker_missing\", \"regression\" or \"reporter_quiet\""

smtp_sink
http_peer http-sink.py sink '{}'

M=$TRASH/master
new_master "$M" <<LUA
url = "http://ci.example.org:8010/"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1"), notify_on_missing = { "ops@example.org" },
  missing_timeout = 2 }
worker { name = "w2", password = secret("w2"), notify_on_missing = "ops@example.org",
  missing_timeout = 20 }
builder { name = "app", workers = { "w1", "w2" }, steps = { shell { command = "true" } } }
reporter { kind = "email", name = "mail", from = "kiln@example.org", to = "team@example.org",
  smtp = { host = "127.0.0.1", port = $SPORT } }
reporter { kind = "slack", name = "chat", url = secret("slack"),
  events = { "builds", "worker_missing" } }
LUA
printf 'w1-pass-%s' "$$" > "$M/secrets/w1"
printf 'w2-pass-%s' "$$" > "$M/secrets/w2"
printf 'http://127.0.0.1:%s/services/T0/B0/tok' "$P" > "$M/secrets/slack"
check "checkconfig accepts it" "$KILN" checkconfig "$M"
export KILN_LOG=debug
check "master starts" start_master "$M"
unset KILN_LOG
start_worker "$TRASH/w1" w1 "$M/secrets/w1"; W1=$WORKER_PID
start_worker "$TRASH/w2" w2 "$M/secrets/w2"; W2=$WORKER_PID
check "w1 attaches" wait_for 60 worker_connected w1
check "w2 attaches" wait_for 60 worker_connected w2

nmails() { [ "$(ls "$TRASH/mail" 2>/dev/null | grep -c '^mail-.*\.json$')" = "$1" ]; }
nreqs() { [ "$(ls "$TRASH/req" 2>/dev/null | grep -c '^req-.*\.json$')" = "$1" ]; }
alerts() { grep -c "worker=$1 missing: disconnected" "$M/master.log"; }

stop_pid "$W1"; stop_pid "$W2"
T0=$(date +%s.%N)
worker_gone() { ! worker_connected "$1"; }
check "w1 is seen disconnected" wait_for 60 worker_gone w1
start_worker "$TRASH/w2" w2 "$M/secrets/w2"; W2=$WORKER_PID
check "w2 is back" wait_for 60 worker_connected w2
check "w2 came back within its missing_timeout: no alert" wait_for 30 grep -q \
    "worker=w2 back within its missing_timeout: no alert" "$M/master.log"
check "w1's alert: one mail" wait_for 30 nmails 1
T1=$(date +%s.%N)
check "and one Slack message" wait_for 30 nreqs 1
diag "from w1's stop to its mail in the sink: $(/usr/bin/python3 -c "print('%.1f' % ($T1 - $T0))") s (missing_timeout 2 s)"
# master.log's own times: from the disconnection to the alert
gap=$(/usr/bin/python3 - "$M/master.log" <<'PY'
import datetime, sys
t = {}
for line in open(sys.argv[1]):
    for key in ("worker=w1 disconnected", "worker=w1 missing: disconnected"):
        if key in line and key not in t:
            t[key] = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
print("%.3f" % (t["worker=w1 missing: disconnected"] - t["worker=w1 disconnected"]).total_seconds())
PY
)
diag "master.log: from w1's disconnection to its alert: ${gap} s"
check "the alert came after missing_timeout (${gap} s >= 1.9 s; the loop's cached time)" \
    /usr/bin/python3 -c "import sys; sys.exit(0 if $gap >= 1.9 else 1)"
check "one alert for w1 so far" [ "$(alerts w1)" = 1 ]

# back, then gone again: one more alert
start_worker "$TRASH/w1" w1 "$M/secrets/w1"; W1=$WORKER_PID
check "w1 is back" wait_for 60 worker_connected w1
check "still one alert for w1 while it was away (not repeated)" [ "$(alerts w1)" = 1 ]
stop_pid "$W1"
check "w1 gone again: a second mail" wait_for 30 nmails 2
check "and a second Slack message" wait_for 30 nreqs 2
check "two alerts for w1 in all" [ "$(alerts w1)" = 2 ]
check "none for w2" [ "$(alerts w2)" = 0 ]
WID=$(api workers/w1 | jpy 'd["workers"][0]["workerid"]')

check_py "the mails and messages are exactly the expected ones" "$TRASH/mail" "$TRASH/req" "$WID" <<'PY'
import email, email.policy, glob, json, sys
md, rd, wid = sys.argv[1], sys.argv[2], sys.argv[3]
page = "http://ci.example.org:8010/workers/%s" % wid
for p in sorted(glob.glob(md + "/mail-*.json")):
    r = json.load(open(p))
    msg = email.message_from_string(r["data"], policy=email.policy.default)
    print(r["rcpt_tos"], msg["Subject"])
    assert r["mail_from"] == "kiln@example.org", r
    assert r["rcpt_tos"] == ["ops@example.org"], r  # not the reporter's 'to'
    assert str(msg["To"]) == "ops@example.org", msg["To"]
    assert str(msg["Subject"]) == "[kiln] worker 'w1' is missing", msg["Subject"]
    assert msg["X-Kiln-Event"] == "worker_missing", msg["X-Kiln-Event"]
    assert msg.get_content_type() == "text/plain", msg.get_content_type()
    text = msg.get_content().replace("\r\n", "\n")
    assert text.startswith("Worker: w1\n"), text
    assert "missing_timeout 2 s" in text and ("Worker page: " + page) in text, text
for p in sorted(glob.glob(rd + "/req-*.json")):
    r = json.load(open(p))
    b = json.loads(r["body"])
    assert r["path"] == "/services/T0/B0/tok" and r["method"] == "POST", r
    assert b == {"text": "Kiln: worker 'w1' is missing " + page}, b
print("alerts ok")
PY
stop_pid "$MASTER_PID"
check "the master stops cleanly" [ $? = 0 ]
done_testing
