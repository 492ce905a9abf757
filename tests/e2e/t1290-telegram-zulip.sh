#!/bin/bash
# asan-too
# The Telegram and Zulip reporters (issue 12, slice "alerts"): a real master
# and kiln-worker, a recording HTTP server on loopback (tests/e2e/http-sink.py)
# playing the Telegram Bot API and Zulip's REST API.  Checked: checkconfig's
# errors (a token in plain text, no chat_id), the exact requests of a failing
# and a passing build (POST /botTOKEN/sendMessage with chat_id, text,
# parse_mode HTML; POST /api/v1/messages form-encoded type, to, topic,
# content with basic auth email:api_key), a 500 retried after the backoff,
# a secret masked in the text, and no token or key in master.log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-reporters.sh"
require_cmd curl

B=$TRASH/bad
new_master "$B" <<'LUA'
reporter { kind = "telegram", token = "123:abc", chat_id = -100 }
LUA
check "checkconfig refuses a telegram token in plain text" checkconfig_says "$B" \
    "master.lua:1: reporter 'telegram': 'token' must come from secret(...)"
new_master "$B" <<'LUA'
reporter { kind = "telegram", token = secret("tg") }
LUA
echo 1:x > "$B/secrets/tg"
check "checkconfig wants a chat_id" checkconfig_says "$B" \
    "master.lua:1: reporter 'telegram': 'chat_id' is required"
new_master "$B" <<'LUA'
reporter { kind = "zulip", site = "ftp://chat", email = "bot@chat", api_key = secret("z"), stream = "ci" }
LUA
echo k > "$B/secrets/z"
check "checkconfig wants an http(s) zulip site" checkconfig_says "$B" \
    "master.lua:1: reporter 'zulip': 'site' must be an http:// or https:// URL"

http_peer http-sink.py sink '{"/bot": [[500, {}]]}'

M=$TRASH/master
echo 1 > "$TRASH/rc"
new_master "$M" <<LUA
url = "http://ci.example.org:8010/"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "app", workers = { "w1" }, steps = {
  shell { name = "make test", env = { TOK = secret("tok") },
    command = { "sh", "-c", "exit \$(cat '$TRASH/rc')" } },
} }
force_scheduler { name = "force", builders = { "app" } }
reporter { kind = "telegram", name = "tg", mode = "all", api_url = "http://127.0.0.1:$P/",
  token = secret("tg"), chat_id = -1001234, queue = { attempts = 3, backoff = 0.2 } }
reporter { kind = "zulip", name = "zu", mode = { "failing", "passing" },
  site = "http://127.0.0.1:$P", email = "kiln-bot@chat.example.org", api_key = secret("zulip"),
  stream = "ci builds" }
LUA
printf 'w1-pass-%s' "$$" > "$M/secrets/w1"
printf '123456:tg-tok-%s' "$$" > "$M/secrets/tg"
printf 'zulip-key-%s' "$$" > "$M/secrets/zulip"
printf 's3cr3t-value-%s' "$$" > "$M/secrets/tok"
reporters_up "$M" zu zulip debug

build_done() { [ "$(api "builders/app/builds?number=$1" | jpy 'd["builds"][0]["complete"]')" = true ]; }
nreq() { [ "$(ls "$TRASH/req" 2>/dev/null | grep -c '^req-')" = "$1" ]; }

force app >/dev/null
check "build 1 (failure) completes" wait_for 60 build_done 1
check "its two messages arrive, telegram's after a 500" wait_for 30 nreq 3
echo 0 > "$TRASH/rc"
rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderNames\":[\"app\"],\"branch\":\"s3cr3t-value-$$\"}}" >/dev/null
check "build 2 (success) completes" wait_for 60 build_done 2
check "its two messages arrive" wait_for 30 nreq 5
check "the 500 was retried after the 0.2 s backoff" grep -q \
    "reporter 'tg': attempt 1 failed (reply 500): retrying in 200 ms" "$M/master.log"
BID=$(api builders/app | jpy 'd["builders"][0]["builderid"]')
st() { api "builders/app/builds?number=$1" | jpy 'd["builds"][0]["state_string"]'; }
ST1=$(st 1) ST2=$(st 2)
diag "state strings: $ST1 / $ST2"

check_py "the requests are exactly the expected ones (paths, headers, bodies, retry)" "$TRASH/req" "$BID" "$$" "$ST1" "$ST2" <<'PY'
import base64, glob, html, json, sys, urllib.parse
d, bid, pid, st1, st2 = sys.argv[1:6]
reqs = [json.load(open(p)) for p in sorted(glob.glob(d + "/req-*.json"))]
url = lambda n: "http://ci.example.org:8010/builders/%s/builds/%d" % (bid, n)
print("requests:", [(r["method"], r["path"], r["status"]) for r in reqs])
for r in reqs:
    assert r["method"] == "POST" and r["headers"].get("User-Agent") == "Kiln", r
    assert int(r["headers"]["Content-Length"]) == len(r["body"].encode()), r
    assert "Expect" not in r["headers"], r
tg = sorted([r for r in reqs if r["path"].startswith("/bot")], key=lambda r: r["time"])
assert [r["status"] for r in tg] == [500, 200, 200], tg
assert tg[0]["body"] == tg[1]["body"]
for r in tg:
    assert r["path"] == "/bot123456:tg-tok-%s/sendMessage" % pid, r
    assert r["headers"]["Content-Type"] == "application/json", r
b1, b2 = json.loads(tg[1]["body"]), json.loads(tg[2]["body"])
assert list(b1) == ["chat_id", "text", "parse_mode"], b1
assert b1["chat_id"] == "-1001234" and b1["parse_mode"] == "HTML", b1
esc = lambda s: html.escape(s, quote=True).replace("&#x27;", "'")
assert b1["text"] == '<a href="%s">app #1</a> <b>failure</b>: %s' % (url(1), esc(st1)), b1
assert b2["text"] == '<a href="%s">app #2</a> <b>success</b> (&lt;secret&gt;): %s' % (url(2), esc(st2)), b2
zu = sorted([r for r in reqs if r["path"].startswith("/api/")], key=lambda r: r["time"])
assert [r["status"] for r in zu] == [200, 200], zu
want_auth = "Basic " + base64.b64encode(("kiln-bot@chat.example.org:zulip-key-" + pid).encode()).decode()
for r in zu:
    assert r["path"] == "/api/v1/messages", r
    assert r["headers"]["Content-Type"] == "application/x-www-form-urlencoded", r
    assert r["headers"]["Authorization"] == want_auth, r
f1 = urllib.parse.parse_qs(zu[0]["body"], strict_parsing=True)
f2 = urllib.parse.parse_qs(zu[1]["body"], strict_parsing=True)
assert list(f1) == ["type", "to", "topic", "content"], f1
assert f1["type"] == ["stream"] and f1["to"] == ["ci builds"] and f1["topic"] == ["app"], f1
assert f1["content"] == ["[app #1](%s) **failure**: %s" % (url(1), st1)], f1
assert f2["content"] == ["[app #2](%s) **success** (<secret>): %s" % (url(2), st2)], f2
assert not any("s3cr3t-value-" in r["body"] for r in reqs), "a secret in a body"
print("requests ok")
PY
for s in "s3cr3t-value-$$" "tg-tok-$$" "zulip-key-$$"; do
    check "master.log never shows the secret ${s%-$$}" sh -c "! grep -q '$s' '$M/master.log'"
done
stop_pid "$MASTER_PID"
check "the master stops cleanly" [ $? = 0 ]
done_testing
