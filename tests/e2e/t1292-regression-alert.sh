#!/bin/bash
# asan-too
# Regression alerts (issue 12, slice "alerts"): a number past its builder's
# regression threshold (docs/CONFIG.md "Numbers over time") is delivered
# through the reporters whose events = { } lists "regression": a real
# master and kiln-worker, changes through sendchange, a real SMTP server
# (aiosmtpd) and a recording HTTP server on loopback.  Checked: the mail
# (to the reporter's 'to' and the build's author), the http JSON (number,
# old and new value, the build), the telegram message; a slack reporter
# without the event gets the builds only; a zulip reporter whose builders
# filter excludes the builder gets nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-reporters.sh"
require_cmd curl
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || skip_all "no python3-aiosmtpd"

smtp_sink
http_peer http-sink.py sink '{}'

M=$TRASH/master
echo 3 > "$TRASH/warnings"
new_master "$M" <<LUA
url = "http://ci.example.org:8010/"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "app", workers = { "w1" }, steps = {
  shell { name = "compile", command = "echo warnings: \$(cat '$TRASH/warnings')",
    numbers = { warnings = "^warnings: (\\\\d+)" } },
}, regression = { warnings = { increase = 0 } } }
builder { name = "other", workers = { "w1" }, steps = { shell { command = "true" } } }
single_branch { name = "main", builders = { "app" }, change_filter = { branch = "main" } }
reporter { kind = "email", name = "mail", from = "kiln@example.org", to = "team@example.org",
  events = { "regression" }, smtp = { host = "127.0.0.1", port = $SPORT } }
reporter { kind = "http", name = "push", url = "http://127.0.0.1:$P/push", events = { "regression" } }
reporter { kind = "telegram", name = "tg", api_url = "http://127.0.0.1:$P", token = secret("tg"),
  chat_id = "@ci", events = { "builds", "regression" } }
reporter { kind = "slack", name = "chat", mode = "all", url = secret("slack") }
reporter { kind = "zulip", name = "zu", builders = { "other" }, site = "http://127.0.0.1:$P",
  email = "bot@example.org", api_key = secret("zu"), stream = "ci", events = { "regression" } }
LUA
printf 'w1-pass-%s' "$$" > "$M/secrets/w1"
printf 'hook-%s' "$$" > "$M/secrets/hook"
printf '1:tg-%s' "$$" > "$M/secrets/tg"
printf 'zu-%s' "$$" > "$M/secrets/zu"
printf 'http://127.0.0.1:%s/services/x' "$P" > "$M/secrets/slack"
check "checkconfig accepts it" "$KILN" checkconfig "$M"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

build_done() { [ "$(api "builders/app/builds?number=$1" | jpy 'd["builds"][0]["complete"]')" = true ]; }
change() {
    "$KILN" sendchange --master "$URL" --token "hook-$$" --who "$1" --branch main \
        --revision "$2" src/a.c >/dev/null 2>&1
}
nmails() { [ "$(ls "$TRASH/mail" 2>/dev/null | grep -c '^mail-.*\.json$')" = "$1" ]; }
nreqs() { [ "$(ls "$TRASH/req" 2>/dev/null | grep -c '^req-.*\.json$')" = "$1" ]; }

change "Ann Dev <ann@example.org>" abc1
check "build 1 (3 warnings) completes" wait_for 60 build_done 1
check "slack got build 1" wait_for 60 nreqs 1
echo 7 > "$TRASH/warnings"
change "Bob <bob@example.org>" abc2
check "build 2 (7 warnings) completes" wait_for 60 build_done 2
check "the regression is logged" wait_for 60 grep -q "number 'warnings' regressed: 3 -> 7" "$M/master.log"
check "one mail" wait_for 60 nmails 1
check "slack (build 2), http and telegram (the regression): four requests in all" wait_for 60 nreqs 4
BID=$(api builders/app | jpy 'd["builders"][0]["builderid"]')
B2=$(api "builders/app/builds?number=2" | jpy 'd["builds"][0]["buildid"]')

check_py "the alerts are exactly the expected ones" "$TRASH/mail" "$TRASH/req" "$BID" "$B2" <<'PY'
import email, email.policy, glob, json, sys
md, rd, bid, b2 = sys.argv[1:5]
url = "http://ci.example.org:8010/builders/%s/builds/2" % bid
subject = "app #2: 'warnings' regressed: 3 -> 7"
[m] = [json.load(open(p)) for p in glob.glob(md + "/mail-*.json")]
msg = email.message_from_string(m["data"], policy=email.policy.default)
print(m["rcpt_tos"], msg["Subject"])
assert sorted(m["rcpt_tos"]) == ["bob@example.org", "team@example.org"], m["rcpt_tos"]
assert str(msg["Subject"]) == "[kiln] " + subject, msg["Subject"]
assert msg["X-Kiln-Event"] == "regression"
text = msg.get_content().replace("\r\n", "\n")
assert text == ("Builder: app\nBuild: #2\nNumber: warnings\nOld value: 3\nNew value: 7\n"
                "Build page: %s\nBlamelist: Bob <bob@example.org>\n" % url), repr(text)
reqs = sorted([json.load(open(p)) for p in glob.glob(rd + "/req-*.json")], key=lambda r: r["time"])
print([r["path"] for r in reqs])
sl = [r for r in reqs if r["path"] == "/services/x"]
assert len(sl) == 2 and all("app #" in json.loads(r["body"])["text"] for r in sl), sl
[push] = [r for r in reqs if r["path"] == "/push"]
b = json.loads(push["body"])
assert b["event"] == "regression" and b["name"] == "warnings" and b["builder"] == "app", b
assert b["old_value"] == 3 and b["new_value"] == 7 and b["number"] == 2, b
assert b["buildid"] == int(b2) and b["builderid"] == int(bid) and b["url"] == url, b
assert b["blamelist"] == ["Bob <bob@example.org>"], b
[tg] = [r for r in reqs if r["path"].startswith("/bot")]
t = json.loads(tg["body"])
assert t["chat_id"] == "@ci" and t["parse_mode"] == "HTML", t
assert t["text"].startswith("<b>%s</b>\nBuilder: app\n" % subject.replace(">", "&gt;")), t
assert t["text"].endswith("\nBlamelist: Bob &lt;bob@example.org&gt;\n"), t
assert not [r for r in reqs if r["path"].startswith("/api/")], "zulip's filter excludes app"
print("regression alerts ok")
PY
stop_pid "$MASTER_PID"
check "the master stops cleanly" [ $? = 0 ]
done_testing
