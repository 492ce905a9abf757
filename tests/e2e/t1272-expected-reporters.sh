#!/bin/bash
# asan-too
# Expected reporters (slice "push", docs/PUSH.md): master.lua lists a
# package and host that should push every 2 s; when it does not, the master
# logs it and publishes expected_reporters/1/quiet on /ws (where the
# reporters' event stream listens too); when it pushes again,
# expected_reporters/1/back.  A reporter that keeps pushing stays quiet-free.
. "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import websockets' 2>/dev/null || skip_all "python3-websockets is not installed"

/usr/bin/python3 "$KILN_SRC/tests/e2e/http-sink.py" "$TRASH/http.port" "$TRASH/req" '{}' &
e2e_track $!
check "the HTTP sink listens" wait_for 60 test -s "$TRASH/http.port"
P=$(cat "$TRASH/http.port")

M=$TRASH/master
new_master "$M" <<LUA
reporter { kind = "http", name = "alerts", url = "http://127.0.0.1:$P/alerts",
  events = { "reporter_quiet" } }
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
expected_reporters = {
  { package = "nightly", host = "box1", interval = 2 },
  { package = "other", host = "box2", interval = 3600 },
}
LUA
printf sekrit > "$M/secrets/hook"
checkconfig() { "$KILN" checkconfig "$1" >/dev/null; }
check "checkconfig accepts expected_reporters" checkconfig "$M"
check "master starts" start_master "$M"
export KILN_CLIENT_CONF=$TRASH/none.conf
unset KILN_TOKEN
PT=$("$KILN" token create --url "$URL" --token sekrit --name pusher --scope push 2>/dev/null)
check "push token made" [ -n "$PT" ]

cat > "$TRASH/watch.py" <<'PY'
import asyncio, json, sys, urllib.request
import websockets

URL, TOKEN = sys.argv[1], sys.argv[2]
WS = "ws://" + URL.split("://", 1)[1] + "/ws"


def push(package, host):
    body = json.dumps({"client": {"package": package, "host": host},
                       "steps": [{"name": "s", "status": 0}]}).encode()
    req = urllib.request.Request(URL + "/api/v2/push", data=body,
                                 headers={"Authorization": "Bearer " + TOKEN,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 202, r.status


async def next_event(ws, deadline, prefix):
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), deadline))
        if m.get("k", "").startswith(prefix):
            return m


async def main():
    async with websockets.connect(WS, open_timeout=10) as ws:
        for i, path in enumerate(["expected_reporters/*/*", "builds/*/*"]):
            await ws.send(json.dumps({"cmd": "startConsuming", "path": path, "_id": i}))
            r = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert r["code"] == 200, r
        m = await next_event(ws, 60, "expected_reporters/")
        print("event", m["k"], m["m"]["package"], m["m"]["host"], m["m"]["quiet"], flush=True)
        push("nightly", "box1")
        # the pushed build's events come before the reporter's "back"
        m = await next_event(ws, 60, "builds/")
        print("build", m["k"].split("/")[2], m["m"]["complete"], flush=True)
        m = await next_event(ws, 60, "builds/")
        print("build", m["k"].split("/")[2], m["m"]["complete"], m["m"]["results"], flush=True)
        m = await next_event(ws, 60, "expected_reporters/")
        print("event", m["k"], m["m"]["package"], m["m"]["host"], m["m"]["quiet"], flush=True)

asyncio.run(main())
PY
timeout 120 /usr/bin/python3 "$TRASH/watch.py" "$URL" "$PT" > "$TRASH/events" 2>&1
cat "$TRASH/events" | sed 's/^/# /'
check "quiet: an event on /ws" [ "$(sed -n 1p "$TRASH/events")" = "event expected_reporters/1/quiet nightly box1 True" ]
check "the pushed build's new and finished events on /ws (a whole bag is stored in one write: new already complete)" [ "$(sed -n 2,3p "$TRASH/events" | tr '\n' ' ')" = "build new True build finished True 0 " ]
check "back: an event after a push" [ "$(sed -n 4p "$TRASH/events")" = "event expected_reporters/1/back nightly box1 False" ]
check "quiet: a log line" grep -q "expected reporter package=nightly host=box1 has not pushed for" "$M/master.log"
check "back: a log line" grep -q "expected reporter package=nightly host=box1 is back" "$M/master.log"
check "the one with a long interval was not reported" sh -c "! grep -q 'package=other' '$M/master.log'"
sink_event() { # EVENT: a request to the sink whose JSON body has that event for nightly on box1
    /usr/bin/python3 - "$TRASH/req" "$1" <<'PY'
import glob, json, sys
for f in sorted(glob.glob(sys.argv[1] + "/req-*.json")):
    r = json.load(open(f))
    try:
        b = json.loads(r["body"])
    except ValueError:
        continue
    d = b.get("data", b) if isinstance(b, dict) else {}
    if r["path"] == "/alerts" and sys.argv[2] in (b.get("event"), d.get("event")) \
            and "nightly" in r["body"] and "box1" in r["body"]:
        sys.exit(0)
sys.exit(1)
PY
}
check "quiet: the reporter with events = { \"reporter_quiet\" } got it" wait_for 60 sink_event reporter_quiet
check "back: and the return" wait_for 60 sink_event reporter_back
check "master stops cleanly" stop_pid "$MASTER_PID"
# the state survives a restart: quiet again after the interval, logged once
check "master restarts" start_master "$M"
check "quiet again after a restart" wait_for 30 sh -c "[ \$(grep -c 'package=nightly host=box1 has not pushed' '$M/master.log') = 2 ]"
check "master stops" stop_pid "$MASTER_PID"
done_testing
