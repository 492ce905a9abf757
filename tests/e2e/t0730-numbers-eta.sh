#!/bin/bash
# asan-too
# Numbers over time and ETA on a real master and kiln-worker: finished
# builds record build_duration and step_duration:<step> (served by
# /api/v2/builders/N/numbers[/NAME], newest first, paged); a running build
# and its running step carry eta/eta_at; a queued request carries
# estimated_start; a build_duration past the builder's regression threshold
# publishes numbers/<builderid>/build_duration/regression on /ws.  Steps wait
# on a fifo the test writes to: the builds end when the test says so.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
FIFO=$TRASH/gate
mkfifo "$FIFO"
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "timed", workers = { "w1" }, steps = {
  shell { name = "work", command = "cat '$FIFO' >/dev/null" },
  shell { name = "after", command = "true" },
}, regression = { build_duration = { increase = 1 } } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"

check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

# /ws subscriber for regression events: prints READY once subscribed, then
# the first event's key and message, and exits (bounded)
cat > "$TRASH/wsnum.py" <<'PY'
import asyncio, json, sys
import websockets

URL = sys.argv[1]
WS = "ws://" + URL.split("://", 1)[1] + "/ws"


async def main():
    async with websockets.connect(WS, open_timeout=10) as ws:
        await ws.send(json.dumps({"cmd": "startConsuming", "path": "numbers/*/*/regression",
                                  "_id": 1}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["code"] == 200, ack
        print("READY", flush=True)
        ev = json.loads(await asyncio.wait_for(ws.recv(), 120))
        print(json.dumps(ev), flush=True)

asyncio.run(main())
PY
/usr/bin/python3 "$TRASH/wsnum.py" "$URL" > "$TRASH/ws.out" 2>&1 &
WS_PID=$!
e2e_track $WS_PID
check "a /ws client subscribes to numbers/*/*/regression" wait_for 60 grep -q READY "$TRASH/ws.out"

# release: lets one waiting 'work' step finish (blocks until a step opens the fifo)
release() { timeout 30 sh -c "echo go > '$FIFO'"; }
# run_build: forces, releases its step, waits for the build's end; prints the brid
run_build() {
    brid=$(force timed) || return 1
    release || return 1
    wait_for 30 request_done "$brid" || return 1
    echo "$brid"
}

BR1=$(run_build) && BR2=$(run_build)
check "two builds run" [ -n "$BR1" -a -n "$BR2" ]
B1=$(build_of_request "$BR1"); B2=$(build_of_request "$BR2")

names=$(api builders/timed/numbers | jpy '[n["name"] for n in d["numbers"]]')
diag "names: $names"
check "builders/N/numbers names build_duration and each step's duration" \
    [ "$names" = '["build_duration", "step_duration:after", "step_duration:work", "step_duration:worker_preparation"]' ]
check "its meta.total counts them" [ "$(api builders/timed/numbers | jpy 'd["meta"]["total"]')" = 4 ]
check "paging: ?limit=1&offset=1" \
    [ "$(api 'builders/timed/numbers?limit=1&offset=1' | jpy '[n["name"] for n in d["numbers"]]')" = '["step_duration:after"]' ]
S=$(api builders/timed/numbers/build_duration)
diag "series: $(echo "$S" | jpy '[(p["buildid"], p["number"], p["value"]) for p in d["numbers"]]')"
check "the series: newest build first, with build number, value, time, changes" \
    [ "$(echo "$S" | jpy "[(p['buildid'], p['number'], p['value'] > 0, p['recorded_at'] > 0, p['changeids'], p['name']) for p in d['numbers']] == [($B2, 2, True, True, [], 'build_duration'), ($B1, 1, True, True, [], 'build_duration')] and d['meta']['total'] == 2")" = true ]
check "?order=number gives the oldest first" \
    [ "$(api 'builders/timed/numbers/build_duration?order=number&limit=1' | jpy 'd["numbers"][0]["number"]')" = 1 ]
# slice "perfsteps2": step_duration:NAME is served from the steps table (no row
# stored): the same shape as before, the step's id, the value its times give, and the
# build_duration's recording time (one write recorded them all before)
SD=$(api builders/timed/numbers/step_duration:work)
W1=$(api "builds/$B1/steps/work" | jpy 'd["steps"][0]["stepid"]')
W2=$(api "builds/$B2/steps/work" | jpy 'd["steps"][0]["stepid"]')
diag "step series: $(echo "$SD" | jpy '[(p["buildid"], p["stepid"], p["value"]) for p in d["numbers"]]')"
check "step_duration:work: one point per build, newest first, each with its step's id" \
    [ "$(echo "$SD" | jpy "[(p['buildid'], p['number'], p['stepid'], p['name'], p['changeids']) for p in d['numbers']] == [($B2, 2, $W2, 'step_duration:work', []), ($B1, 1, $W1, 'step_duration:work', [])] and d['meta']['total'] == 2")" = true ]
check "... with the same fields as build_duration's points" \
    [ "$(echo "$SD" | jpy "sorted(d['numbers'][0]) == sorted($(echo "$S" | jpy 'sorted(d["numbers"][0])'))")" = true ]
api "builds/$B2/steps/work" > "$TRASH/w2.json"; api "builds/$B1/steps/work" > "$TRASH/w1.json"
echo "$S" > "$TRASH/bd.json"; echo "$SD" > "$TRASH/sd.json"
check "... value = the step's complete_at - started_at (whole seconds in the API), recorded_at = build_duration's" \
    [ "$(/usr/bin/python3 -c "
import json
ld = lambda n: json.load(open('$TRASH/' + n + '.json'))
sd, bd = ld('sd')['numbers'], ld('bd')['numbers']
st = [ld('w2')['steps'][0], ld('w1')['steps'][0]]
print(len(sd) == 2 and all(abs(p['value'] - (s['complete_at'] - s['started_at'])) <= 1
      and p['recorded_at'] == b['recorded_at'] for p, s, b in zip(sd, st, bd)))")" = True ]
check "... ?order=number&limit=1&offset=1 pages it" \
    [ "$(api 'builders/timed/numbers/step_duration:work?order=number&limit=1&offset=1' | jpy '[p["buildid"] for p in d["numbers"]]')" = "[$B2]" ]
check "a bad ?limit= is a 400" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v2/builders/timed/numbers/build_duration?limit=x")" = 400 ]
check "an unknown builder is a 404" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v2/builders/nosuch/numbers")" = 404 ]
check "a finished build has no eta" [ "$(api "builds/$B2" | jpy '"eta" in d["builds"][0]')" = false ]

# a running build (held at its 'work' step) and a request queued behind it
BR3=$(force timed)
build_started() { [ -n "$(build_of_request "$1")" ]; }
step_started() { [ "$(api "builds/$1/steps/work" | jpy 'd["steps"][0]["started_at"] is not None')" = true ]; }
check "a third build starts" wait_for 60 build_started "$BR3"
B3=$(build_of_request "$BR3")
check "... and holds at its 'work' step" wait_for 60 step_started "$B3"
BUILD=$(api "builds/$B3")
diag "running: $(echo "$BUILD" | jpy '{k: d["builds"][0][k] for k in ("started_at", "eta", "eta_at")}')"
check "a running build has eta (seconds left) and eta_at (started_at + median)" \
    [ "$(echo "$BUILD" | jpy "(b := d['builds'][0]) and isinstance(b['eta'], float) and b['eta'] >= 0 and b['eta_at'] >= b['started_at']")" = true ]
check "its running step has eta and eta_at" \
    [ "$(api "builds/$B3/steps/work" | jpy "(s := d['steps'][0]) and isinstance(s['eta'], float) and s['eta_at'] >= s['started_at']")" = true ]
check "... also under /builds?complete=false" \
    [ "$(api 'builds?complete=false' | jpy "all('eta_at' in b for b in d['builds']) and len(d['builds']) == 1")" = true ]
BR4=$(force timed)
REQ=$(api "buildrequests/$BR4")
diag "queued: $(echo "$REQ" | jpy 'd["buildrequests"][0]["estimated_start"]')"
check "a queued request has estimated_start (after the running build's eta_at)" \
    [ "$(echo "$REQ" | jpy "d['buildrequests'][0]['estimated_start'] >= $(echo "$BUILD" | jpy 'd["builds"][0]["eta_at"]') - 1")" = true ]

# The threshold is build_duration + 1 s over the previous build: the held
# build lasts 3 s more.  This sleep makes the value; it synchronises nothing.
sleep 3
check "the held build ends when released" release
check "... and its request completes" wait_for 30 request_done "$BR3"
check "the queued one runs after it" release
check "... and completes" wait_for 30 request_done "$BR4"

check "a regression event arrives on /ws" wait_for 30 sh -c "[ \$(wc -l < '$TRASH/ws.out') -ge 2 ]"
EV=$(sed -n 2p "$TRASH/ws.out")
diag "event: $EV"
BID=$(api builders/timed | jpy 'd["builders"][0]["builderid"]')
check "numbers/<builderid>/build_duration/regression for the held build, old < new, blamelist" \
    [ "$(echo "$EV" | jpy "d['k'] == 'numbers/$BID/build_duration/regression' and d['m']['buildid'] == $B3 and d['m']['old_buildid'] == $B2 and d['m']['number'] == 3 and d['m']['new_value'] > d['m']['old_value'] + 1 and d['m']['blamelist'] == [] and d['m']['name'] == 'build_duration'")" = true ]
check "the series shows all four builds" \
    [ "$(api builders/timed/numbers/build_duration | jpy 'd["meta"]["total"]')" = 4 ]
check "master stops cleanly" stop_pid "$MASTER_PID"
check "no errors or sanitizer reports in the log" sh -c "! grep -qE 'Z (error|warn ) |Sanitizer|runtime error' '$M/master.log'"
done_testing
