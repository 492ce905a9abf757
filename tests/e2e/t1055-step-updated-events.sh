#!/bin/bash
# asan-too
# Step "updated" events on /ws (slice "board", src/master/events-steps.c):
# a running step whose output grows (200 lines over ~3 s, one every 15 ms)
# sends "builds/B/steps/S/updated" events with the step entity as REST
# renders it (Buildbot 3.7's setStepStateString / addStepURL shape), soon
# after it starts and then at least once a second while it prints, yet rate
# limited: at most one per KILN_STEP_UPDATED_MIN_MS (250 ms) per step, so
# 200 output chunks make a dozen events, not 200.  A step that prints
# nothing but its header lines sends only a few.  Real master, real kiln-worker,
# a real /ws client (python3-websockets).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-build.sh"
require_cmd python3
/usr/bin/python3 -c 'import websockets' 2>/dev/null || skip_all "python3-websockets is missing"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "chatty", workers = { "w1" }, steps = {
  shell { name = "talk", command = "i=0; while [ \$i -lt 200 ]; do echo line \$i; i=\$((i+1)); sleep 0.015; done" },
  shell { name = "quiet", command = "sleep 1" },
  shell { name = "rendered", command = interpolate("sleep 0.%(prop:buildnumber)s") },
} }
force_scheduler { name = "force", builders = { "chatty" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"
start_master_w1 "$M"

cat > "$TRASH/updated.py" <<'PY'
# Subscribes to builds/*/steps/*/* (what the web UI subscribes to) and
# builds/*/*, forces "chatty", and prints one line per step event of its
# build: "T KEY NAME COMPLETE" (T: seconds since the force), until the
# build finishes; then "KEYS ..." (the updated event's fields) and
# "REST ..." (the REST entity's) for the talk step.
import asyncio, json, sys, time, urllib.request
import websockets

URL = sys.argv[1]
WS = "ws://" + URL.split("://", 1)[1] + "/ws"


def http(path, data=None):
    req = urllib.request.Request(URL + "/api/v2/" + path, data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


async def main():
    async with websockets.connect(WS, open_timeout=10) as ws:
        for i, p in enumerate(["builds/*/steps/*/*", "builds/*/*"]):
            await ws.send(json.dumps({"cmd": "startConsuming", "path": p, "_id": i + 1}))
            r = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert r["code"] == 200, r
        bid = http("builders/chatty")["builders"][0]["builderid"]
        t0 = time.monotonic()
        http("forceschedulers/force", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "force",
             "params": {"builderid": str(bid)}}).encode())
        upd = None
        while True:
            e = json.loads(await asyncio.wait_for(ws.recv(), 30))
            k, m = e["k"], e["m"]
            if k.count("/") == 2:
                if k.endswith("/finished"):
                    break
                continue
            print("%.3f %s %s %s" % (time.monotonic() - t0, k, m["name"], m["complete"]))
            if m["name"] == "rendered" and not m["complete"]:
                print("RSTATE %s %s" % (k.rsplit("/", 1)[1], m["state_string"]))
            if k.endswith("/started"):
                print("LAG %s %.3f" % (m["name"], time.time() - m["started_at"]))
            if k.endswith("/updated") and m["name"] == "talk":
                upd = m
        print("KEYS", " ".join(sorted(upd)))
        rest = http("steps/%d" % upd["stepid"])["steps"][0]
        print("REST", " ".join(sorted(rest)))
        print("STATE", upd["state_string"])


asyncio.run(main())
PY
timeout 90 /usr/bin/python3 "$TRASH/updated.py" "$URL" >"$TRASH/ev.out" 2>"$TRASH/ev.err"
check "the /ws client ran to the build's end" grep -q '^KEYS ' "$TRASH/ev.out"
sed 's/^/# /' "$TRASH/ev.err" | head -n 5

# the talk step's events: started, updated..., finished (times in seconds)
talk=$(awk '$3 == "talk"' "$TRASH/ev.out")
t_start=$(awk '$2 ~ /\/started$/ {print $1; exit}' <<<"$talk")
t_end=$(awk '$2 ~ /\/finished$/ {print $1; exit}' <<<"$talk")
upd=$(awk '$2 ~ /^builds\/[0-9]+\/steps\/[0-9]+\/updated$/ {print $1}' <<<"$talk")
n=$(grep -c . <<<"$upd")
check "the talk step has started and finished events" [ -n "$t_start" -a -n "$t_end" ]
dur=$(python3 -c "print(round($t_end - $t_start, 3))")
diag "talk ran ${dur} s and sent $n updated events"
check "a step whose output grows sends updated events ($n)" [ "$n" -ge 4 ]
gaps=$(python3 -c "
import sys
t = [$t_start] + [float(x) for x in sys.argv[1:]]
g = [b - a for a, b in zip(t, t[1:])]
print('%.3f %.3f' % (g[0], max(g)))" $upd)
first=${gaps% *}
maxgap=${gaps#* }
diag "first updated event ${first} s after started, the longest gap between them ${maxgap} s"
check "the first one within 1 s of the step's start ($first s)" \
    python3 -c "import sys; sys.exit(not $first < 1.0)"
check "... and one at least every second while it prints ($maxgap s)" \
    python3 -c "import sys; sys.exit(not $maxgap < 1.0)"
# the rate limit: one per 250 ms at most, plus the first one
limit=$(python3 -c "print(int(($t_end - $t_start) / 0.25) + 2)")
check "rate limited: $n events for 200 lines in $dur s (at most $limit)" [ "$n" -le "$limit" ]
# (times are when this client read them: a loaded machine can deliver two
# at once, so the spacing is reported, the count above is the check)
mingap=$(python3 -c "
import sys
t = [float(x) for x in sys.argv[1:]]
print('%.3f' % min(b - a for a, b in zip(t, t[1:])))" $upd)
diag "the shortest gap between two of them, as received: $mingap s"
check "no steps/S/updated events: that path was not subscribed to" \
    sh -c "! grep -q ' steps/[0-9]*/updated' '$TRASH/ev.out'"

k=$(sed -n 's/^KEYS //p' "$TRASH/ev.out")
r=$(sed -n 's/^REST //p' "$TRASH/ev.out")
check "the updated event is the step entity as REST renders it ($k)" [ -n "$k" -a "$k" = "$r" ]
check "... of a running step" grep -q ' talk False$' <<<"$(grep '/updated talk' "$TRASH/ev.out" | tail -n 1)"
diag "started events read $(awk '$1 == "LAG" {printf "%s %s s, ", $2, $3}' "$TRASH/ev.out")after their step's started_at"
diag "talk's state string: $(sed -n 's/^STATE //p' "$TRASH/ev.out")"

# a description rendered when the command is (interpolate): the state string
# changes once the step runs, and an updated event carries it
check "an updated event carries a step's new state string ('sleep 0.1')" \
    grep -q "^RSTATE updated 'sleep 0.1'\$" "$TRASH/ev.out"
diag "rendered: $(grep '^RSTATE' "$TRASH/ev.out" | cut -d' ' -f2- | tr '\n' '|')"
q=$(awk '$3 == "quiet" && $2 ~ /\/updated$/' "$TRASH/ev.out" | grep -c .)
# its header lines (command, exit code) are output too: a few events, no stream
check "a step that prints nothing sends only a few updated events ($q)" [ "$q" -le 4 ]
done_testing
