#!/bin/bash
# asan-too
# What the build and builder pages need from the API (slice "uibuild"):
# step events on /ws in Buildbot 3.7's shape ("builds/B/steps/S/new|started|
# finished" and "steps/S/..." with the step entity), every builder's last
# build in one request (GET /api/v2/lastbuilds: filters, fields, a builder
# whose last build is older than everyone else's), and JSON-RPC "rebuild"
# on a build: a new buildset with the same sourcestamps and properties that
# runs on the same builder.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "two", workers = { "w1" }, steps = {
  shell { name = "first", command = "echo one" },
  shell { name = "second", command = "echo two" },
} }
builder { name = "bad", workers = { "w1" }, steps = {
  shell { name = "fail", command = "exit 1" },
} }
builder { name = "never", workers = { "w1" }, steps = { shell { name = "x", command = "true" } } }
force_scheduler { name = "force", builders = { "two", "bad", "never" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

cat > "$TRASH/steps.py" <<'PY'
# Subscribes to step events, forces builder "two" once subscribed, prints
# every step event of its build as "KEY NAME COMPLETE RESULTS" until the
# build finishes; then checks the entity against GET /api/v2/steps/ID.
import asyncio, json, sys, urllib.request
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
        for i, p in enumerate(["builds/*/steps/*/*", "steps/*/*", "builds/*/*"]):
            await ws.send(json.dumps({"cmd": "startConsuming", "path": p, "_id": i + 1}))
            r = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert r["code"] == 200, r
        bid = http("builders/two")["builders"][0]["builderid"]
        http("forceschedulers/force", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "force",
             "params": {"builderid": str(bid)}}).encode())
        last = None
        while True:
            e = json.loads(await asyncio.wait_for(ws.recv(), 30))
            k, m = e["k"], e["m"]
            if k.startswith("builds/") and k.count("/") == 2:
                if k.endswith("/finished"):
                    break
                continue
            if k.endswith("/updated"):  # slice "board": progress, t1055
                continue
            print(k, m["name"], m["complete"], m["results"], m["buildid"], m["stepid"])
            last = m
        rest = http("steps/%d" % last["stepid"])["steps"][0]
        for f in ("stepid", "number", "name", "buildid", "complete", "results", "state_string",
                  "started_at", "complete_at", "hidden", "urls"):
            assert rest.get(f) == last.get(f), (f, rest.get(f), last.get(f))
        print("entity matches REST")


asyncio.run(main())
PY
timeout 60 /usr/bin/python3 "$TRASH/steps.py" "$URL" >"$TRASH/steps.out" 2>"$TRASH/steps.err"
check "the step event client ran" grep -q '^entity matches REST$' "$TRASH/steps.out"
sed 's/^/# /' "$TRASH/steps.err" | head -n 5
B=$(awk 'NR==1 {print $5}' "$TRASH/steps.out")
S1=$(awk '/ first / {print $6; exit}' "$TRASH/steps.out")
S2=$(awk '/ second / {print $6; exit}' "$TRASH/steps.out")
keys=$(awk '$2 != "worker_preparation" {print $1, $2, $3, $4}' "$TRASH/steps.out" | grep -v '^entity')
S0=$(awk '/ worker_preparation / {print $6; exit}' "$TRASH/steps.out")
check "the worker_preparation step has its events too" \
    [ "$(grep -c " worker_preparation " "$TRASH/steps.out")" = 6 -a -n "$S0" ]
expect="builds/$B/steps/$S1/new first False None
steps/$S1/new first False None
builds/$B/steps/$S1/started first False None
steps/$S1/started first False None
builds/$B/steps/$S1/finished first True 0
steps/$S1/finished first True 0
builds/$B/steps/$S2/new second False None
steps/$S2/new second False None
builds/$B/steps/$S2/started second False None
steps/$S2/started second False None
builds/$B/steps/$S2/finished second True 0
steps/$S2/finished second True 0"
check "step events: new, started, finished under both keys, in order, with the step" \
    [ "$keys" = "$expect" ]
[ "$keys" = "$expect" ] || diag "got: $(tr '\n' '|' <<<"$keys")"

# ---- lastbuilds ----
br=$(force bad)
check "bad #1 completes" wait_for 60 request_done "$br"
br=$(force two)
check "two #2 completes" wait_for 60 request_done "$br"
lb=$(api 'lastbuilds?field=builderid&field=number&field=results')
names=$(api builders | jpy '{b["builderid"]: b["name"] for b in d["builders"]}')
got=$(jpy "sorted(('%s %s %s' % ($names[str(b['builderid'])], b['number'], b['results'])) for b in d['builds'])" <<<"$lb")
check "lastbuilds: one build per builder with builds, the highest number ($got)" \
    [ "$got" = '["bad 1 2", "two 2 0"]' ]
check "... only the fields asked for" \
    [ "$(jpy 'sorted(d["builds"][0].keys())' <<<"$lb")" = '["builderid", "number", "results"]' ]
check "... meta.total counts them" [ "$(jpy 'd["meta"]["total"]' <<<"$lb")" = 2 ]
got=$(api 'lastbuilds?results=2&field=number' | jpy 'd["meta"]["total"]')
check "... filters pick each builder's last matching build (results=2: $got)" [ "$got" = 1 ]
code=$(curl -sS --max-time 10 -o "$TRASH/body" -w '%{http_code}' "$URL/api/v2/lastbuilds?field=nosuch")
check "... an unknown field is 400 ($code)" [ "$code" = 400 ]
got=$(api 'lastbuilds?limit=1&field=builderid' | jpy 'len(d["builds"])')
check "... limit pages over builders ($got)" [ "$got" = 1 ]

# ---- rebuild ----
old=$(build_of_request "$br")
res=$(rpc "builds/$old" '{"jsonrpc":"2.0","id":7,"method":"rebuild","params":{}}')
nbs=$(jpy 'd["result"][0]' <<<"$res")
nbr=$(jpy 'list(d["result"][1].values())[0]' <<<"$res")
check "rebuild answers [bsid, {builderid: brid}] ($res)" [ "${nbs:-0}" -gt 0 -a "${nbr:-0}" -gt 0 ]
check "the rebuilt request completes" wait_for 60 request_done "$nbr"
new=$(build_of_request "$nbr")
check "... as a new build of the same builder" \
    [ "$(build_field "$new" builderid)" = "$(build_field "$old" builderid)" -a "$new" != "$old" ]
check "... that succeeded" build_results_is "$new" 0
obs=$(api "buildrequests/$br" | jpy 'd["buildrequests"][0]["buildsetid"]')
bs=$(api "buildsets/$nbs")
check "its buildset says rebuild" \
    [ "$(jpy 'd["buildsets"][0]["reason"]' <<<"$bs")" = rebuild ]
strip='[{k: s for k, s in ss.items() if k not in ("ssid", "created_at")} for ss in d["buildsets"][0]["sourcestamps"]]'
check "... with the same sourcestamps" \
    [ "$(api "buildsets/$obs" | jpy "$strip")" = "$(jpy "$strip" <<<"$bs")" ]
check "... and the same properties" \
    [ "$(api "buildsets/$obs/properties" | jpy 'd["properties"]')" = \
      "$(api "buildsets/$nbs/properties" | jpy 'd["properties"]')" ]
res=$(rpc "builds/999999" '{"jsonrpc":"2.0","id":8,"method":"rebuild","params":{}}')
check "rebuild of a build that does not exist is an error" \
    [ "$(jpy 'd["error"]["code"]' <<<"$res")" = -32603 ]
done_testing
