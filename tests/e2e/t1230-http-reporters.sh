#!/bin/bash
# asan-too
# The HTTP reporters (issue 12): kinds http, slack, mattermost and matrix
# against a real HTTP server on loopback (tests/e2e/http-sink.py plays each
# service and records every request), a real master and kiln-worker
# building a failure and a success.  Checked: the exact requests (method,
# path, headers, JSON bodies), the X-Kiln-Signature HMAC verified in
# Python, a 500 retried then delivered, a 429 with Retry-After: 2 waited
# for (not the 0.1 s backoff), a matrix retry reusing its transaction id,
# and no webhook URL, token or key in master.log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-reporters.sh"
require_cmd curl

B=$TRASH/bad
new_master "$B" <<'LUA'
reporter { kind = "slack", url = "https://hooks.slack.com/services/T0/B0/XXXX" }
LUA
check "checkconfig refuses a slack URL in plain text" checkconfig_says "$B" \
    "master.lua:1: reporter 'slack': 'url' must come from secret(...)"
new_master "$B" <<'LUA'
reporter { kind = "http", url = "http://127.0.0.1/h", headers = { Authorization = "Bearer x" } }
LUA
check "checkconfig refuses a credential header in plain text" checkconfig_says "$B" \
    "master.lua:1: reporter 'http': headers: 'Authorization' looks like a credential"

# ---- the services ------------------------------------------------------------
http_peer http-sink.py sink \
    '{"/push/": [[500, {}]], "/services/": [[429, {"Retry-After": "2"}]], "/_matrix/": [[500, {}]],
      "/hang/": [[0, {}], [0, {}]]}'

M=$TRASH/master
echo 1 > "$TRASH/rc"
new_master "$M" <<LUA
url = "http://ci.example.org:8010/"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "app", workers = { "w1" }, tags = { "release" }, steps = {
  shell { name = "make test", env = { TOK = secret("tok") },
    command = { "sh", "-c", "exit \$(cat '$TRASH/rc')" } },
} }
force_scheduler { name = "force", builders = { "app" } }
reporter { kind = "http", name = "push", mode = "all", url = "http://127.0.0.1:$P/push/kiln",
  secret = secret("hook_key"),
  headers = { ["X-Team"] = "ci", Authorization = secret("push_auth") },
  queue = { attempts = 3, backoff = 0.2, timeout = 10 } }
reporter { kind = "slack", name = "slack", mode = "failing", url = secret("slack"),
  username = "kiln", channel = "#ci", queue = { attempts = 3, backoff = 0.1 } }
reporter { kind = "mattermost", name = "mm", mode = "all", url = secret("mm") }
reporter { kind = "http", name = "hang", mode = "failing", url = "http://127.0.0.1:$P/hang/kiln",
  queue = { timeout = 1, attempts = 2, backoff = 0.2 } }
reporter { kind = "matrix", name = "room", mode = "all", homeserver = "http://127.0.0.1:$P/",
  room = "!room:example.org", token = secret("matrix"), queue = { attempts = 3, backoff = 0.2 } }
LUA
printf 'w1-pass-%s' "$$" > "$M/secrets/w1"
printf 'hmac-key-%s' "$$" > "$M/secrets/hook_key"
printf 'Bearer push-auth-%s' "$$" > "$M/secrets/push_auth"
printf 'http://127.0.0.1:%s/services/T0/B0/slack-tok-%s' "$P" "$$" > "$M/secrets/slack"
printf 'http://127.0.0.1:%s/hooks/mm-tok-%s' "$P" "$$" > "$M/secrets/mm"
printf 'syt-matrix-tok-%s' "$$" > "$M/secrets/matrix"
printf 's3cr3t-value-%s' "$$" > "$M/secrets/tok"
# debug level: the listener's time per build is logged, and more lines may leak
reporters_up "$M" room matrix debug

build_done() { [ "$(api "builders/app/builds?number=$1" | jpy 'd["builds"][0]["complete"]')" = true ]; }
delivered() { [ "$(grep -c "build=$1: reporter '.*': delivered" "$M/master.log")" = "$2" ]; }

force app >/dev/null
check "build 1 (failure) completes" wait_for 60 build_done 1
# while the "hang" reporter's peer accepted and never answers (1 s per attempt)
check "the hanging peer got the first attempt" wait_for 30 grep -q '"/hang/kiln"' -r "$TRASH/req"
worst=0
for i in 1 2 3 4 5 6 7 8 9 10; do
    t=$(curl -sS -o /dev/null -w '%{time_total}' --max-time 5 "$URL/api/v2/builders")
    worst=$(/usr/bin/python3 -c "print(max($worst, $t))")
done
diag "worst API answer while a webhook hangs: ${worst}s"
check "the API answers promptly meanwhile (worst ${worst}s < 0.5s)" \
    /usr/bin/python3 -c "import sys; sys.exit(0 if $worst < 0.5 else 1)"
check "its four messages are delivered (after the retries)" wait_for 30 delivered 1 4
check "the hanging peer: each attempt times out, then the message is dropped" wait_for 60 grep -q \
    "reporter 'hang': message dropped after 2 attempts: Timeout was reached" "$M/master.log"
check "and the failure is logged for its build" grep -q \
    "build=1: reporter 'hang': not delivered: Timeout was reached" "$M/master.log"
echo 0 > "$TRASH/rc"
# build 2 on a branch named like a secret: masked in every body, before signing
rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderNames\":[\"app\"],\"branch\":\"s3cr3t-value-$$\"}}" >/dev/null
check "build 2 (success) completes" wait_for 60 build_done 2
check "its three messages are delivered (slack: failing only)" wait_for 30 delivered 2 3
BID=$(api builders/app | jpy 'd["builders"][0]["builderid"]')

check "the 500 was retried after the 0.2 s backoff" grep -q \
    "reporter 'push': attempt 1 failed (reply 500): retrying in 200 ms" "$M/master.log"
check "the 429's Retry-After: 2 was honoured" grep -q \
    "reporter 'slack': attempt 1 failed (reply 429): retrying in 2000 ms" "$M/master.log"

check_py "the requests are exactly the expected ones (methods, paths, headers, bodies, signature, retries)" "$TRASH/req" "$BID" "$$" "$P" <<'PY'
import glob, hashlib, hmac, json, sys
d, bid, pid, port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
reqs = [json.load(open(p)) for p in sorted(glob.glob(d + "/req-*.json"))]
hang = [r for r in reqs if r["path"] == "/hang/kiln"]
assert len(hang) == 2 and hang[0]["body"] == hang[1]["body"], hang  # two attempts, build 1 only
reqs = [r for r in reqs if r["path"] != "/hang/kiln"]
def of(prefix):
    return sorted([r for r in reqs if r["path"].startswith(prefix)], key=lambda r: r["time"])
url = lambda n: "http://ci.example.org:8010/builders/%s/builds/%d" % (bid, n)
for r in reqs:
    assert r["headers"].get("Content-Type") == "application/json", r
    assert r["headers"].get("User-Agent") == "Kiln" and "Expect" not in r["headers"], r
    assert int(r["headers"]["Content-Length"]) == len(r["body"].encode()), r
    json.loads(r["body"])
print("requests:", [(r["method"], r["path"].split("/")[1], r["status"]) for r in reqs])
assert len(reqs) == 10, len(reqs)

# http: 500 then 200 for build 1 (the same body), 200 for build 2; signed
push = of("/push/")
assert [r["status"] for r in push] == [500, 200, 200], push
key = ("hmac-key-" + pid).encode()
for r in push:
    assert r["method"] == "POST" and r["path"] == "/push/kiln", r
    h = r["headers"]
    want = "sha256=" + hmac.new(key, r["body"].encode(), hashlib.sha256).hexdigest()
    assert h["X-Kiln-Signature"] == want, (h, want)
    assert h["X-Team"] == "ci" and h["Authorization"] == "Bearer push-auth-" + pid, h
assert push[0]["body"] == push[1]["body"]
for r, n, res in ((push[1], 1, 2), (push[2], 2, 0)):
    b = json.loads(r["body"])
    assert b["number"] == n and b["results"] == res, b
    assert b["results_text"] == ("failure" if res else "success"), b
    assert b["builder"] == {"builderid": int(bid), "name": "app", "tags": ["release"]}, b
    assert b["url"] == url(n) and b["complete"] is True and b["blamelist"] == [], b
    assert b["builderid"] == int(bid) and isinstance(b["buildid"], int), b
    assert b["prev_results"] == (None if n == 1 else 2), b
    if n == 2:
        assert b["branch"] == "<secret>" and b["properties"]["branch"][0] == "<secret>", b
    for k in ("started_at", "complete_at", "state_string", "properties", "workerid"):
        assert k in b, (k, b)

# slack: 429 (Retry-After: 2) then 200, for the failure only
sl = of("/services/")
assert [r["status"] for r in sl] == [429, 200], sl
assert sl[1]["time"] - sl[0]["time"] >= 1.9, "Retry-After not honoured: %.2f s" % (sl[1]["time"] - sl[0]["time"])
for r in sl:
    assert r["method"] == "POST" and r["path"] == "/services/T0/B0/slack-tok-" + pid, r
assert sl[0]["body"] == sl[1]["body"]
b = json.loads(sl[1]["body"])
assert b["text"].startswith("Kiln: <%s|app #1> failure" % url(1)), b
assert b["username"] == "kiln" and b["channel"] == "#ci", b
a = b["attachments"][0]
assert a["color"] == "#d00000" and a["title"] == "app #1" and a["title_link"] == url(1), a
assert a["fields"][0] == {"title": "Result", "value": "failure", "short": True}, a

# mattermost: both builds
mm = of("/hooks/")
assert [r["status"] for r in mm] == [200, 200], mm
texts = [json.loads(r["body"])["text"] for r in mm]
assert texts[0].startswith("Kiln: [app #1](%s) failure" % url(1)), texts
assert texts[1].startswith("Kiln: [app #2](%s) success (<secret>)" % url(2)), texts
assert not any("s3cr3t-value-" in r["body"] for r in reqs), "a secret in a body"
assert all(r["path"] == "/hooks/mm-tok-" + pid for r in mm)

# matrix: PUT, 500 then 200 on the same transaction, a new one for build 2
mx = of("/_matrix/")
assert [r["status"] for r in mx] == [500, 200, 200], mx
pre = "/_matrix/client/v3/rooms/%21room%3Aexample.org/send/m.room.message/kiln-"
for r in mx:
    assert r["method"] == "PUT" and r["path"].startswith(pre), r
    assert r["headers"]["Authorization"] == "Bearer syt-matrix-tok-" + pid, r
assert mx[0]["path"] == mx[1]["path"], "retry changed the txnid"
assert mx[2]["path"] != mx[1]["path"], "two messages share a txnid"
b = json.loads(mx[1]["body"])
assert b["msgtype"] == "m.text" and b["format"] == "org.matrix.custom.html", b
assert b["body"].startswith("app #1 failure") and b["body"].endswith(" " + url(1)), b
assert b["formatted_body"].startswith('<a href="%s">app #1</a> <b>failure</b>' % url(1)), b
assert json.loads(mx[2]["body"])["body"].startswith("app #2 success")
print("requests ok")
PY
grep -o 'reporters took [0-9]* us' "$M/master.log" | sed 's/^/# listener: /'
for s in "s3cr3t-value-$$" "slack-tok-$$" "mm-tok-$$" "syt-matrix-tok-$$" "hmac-key-$$" "push-auth-$$"; do
    check "master.log never shows the secret ${s%-$$}" sh -c "! grep -q '$s' '$M/master.log'"
done
stop_pid "$MASTER_PID"
check "the master stops cleanly" [ $? = 0 ]

# a webhook secret that is not an http(s) URL: checkconfig cannot know (it
# may run with stand-in secrets), the master refuses to start, never showing it
N=$TRASH/badurl
new_master "$N" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
reporter { kind = "slack", name = "team", url = secret("slack") }
LUA
printf 'ftp-not-a-webhook-%s' "$$" > "$N/secrets/slack"
timeout 20 "$KILN" master -d "$N" 2>>"$N/master.log"
rc=$?
check "the master does not start (exit $rc)" sh -c "[ $rc != 0 ] && [ $rc != 124 ]"
check "it names the reporter and the problem" grep -q \
    "reporter 'team': its URL (from secret(...)) is not an http:// or https:// URL" "$N/master.log"
check "without showing the secret" sh -c "! grep -q 'not-a-webhook' '$N/master.log'"
done_testing
