#!/bin/bash
# asan-too
# A shell step whose command is interpolate()d: its row is written once with
# its rendered description (slice "steps20"), so the step's first appearance
# (the "new" and "started" events on /ws, GET /api/v2/builds/N/steps while it
# runs) already shows the rendered words, never the template; while it runs
# the API and /ws show it running (complete false, its stdio log open); at
# its end the "finished" event and the API agree, and the build's numbers
# (build_duration, step_duration:NAME, recorded at once) are in place.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
GO=$TRASH/go
# the step waits (bounded: 60 s) for the test to create $GO
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = {
  shell { name = "wait", command = interpolate("echo %(prop:buildnumber)s-rendered; " ..
    "i=0; while [ ! -e '$GO' ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i+1)); done; echo released") },
  shell { name = "argv", command = { "echo", interpolate("n%(prop:buildnumber)s"), "x" } },
  shell { name = "skipped", command = interpolate("echo %(prop:buildnumber)s"), do_step_if = false },
} }
force_scheduler { name = "force", builders = { "b" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"

check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

cat > "$TRASH/rowonce.py" <<'PY'
import asyncio, json, os, sys, urllib.request
import websockets

URL, GO = sys.argv[1], sys.argv[2]
WS = "ws://" + URL.split("://", 1)[1] + "/ws"


def http(path, data=None):
    req = urllib.request.Request(URL + path, data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), 30))


async def cmd(ws, **kw):
    await ws.send(json.dumps(kw))
    return await recv(ws)


async def until(ws, pred):
    while True:
        ev = await recv(ws)
        if pred(ev):
            return ev


async def main():
    async with websockets.connect(WS, open_timeout=10, max_size=None) as ws:
        for i, p in enumerate(("builds/*/steps/*/*", "steps/*/*", "logs/*/*", "builds/*/*")):
            assert (await cmd(ws, cmd="startConsuming", path=p, _id=i))["code"] == 200
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "force",
               "params": {"builderNames": ["b"], "reason": "row once"}}
        http("/api/v2/forceschedulers/force", json.dumps(rpc).encode())
        new = await until(ws, lambda e: e["k"].endswith("/new") and "/steps/" in e["k"]
                          and e["m"]["name"] == "wait")
        b = new["m"]["buildid"]
        num = http("/api/v2/builds/%d" % b)["builds"][0]["number"]
        want = "'echo %d-rendered; ...'" % num
        m = new["m"]
        assert m["state_string"] == want, (m["state_string"], want)
        assert m["complete"] is False and m["started_at"] and m["results"] is None, m
        sid = m["stepid"]
        # the same step under steps/S/new, then both keys' "started"
        ev = await recv(ws)
        assert ev["k"] == "steps/%d/new" % sid and ev["m"] == m, ev
        for k in ("builds/%d/steps/%d/started" % (b, sid), "steps/%d/started" % sid):
            ev = await until(ws, lambda e: e["k"].split("/")[-1] != "append"
                             and not e["k"].startswith("logs/"))
            assert ev["k"] == k and ev["m"]["state_string"] == want, (ev, k)
            assert ev["m"]["complete"] is False, ev
        # running: the API on another connection shows it live
        rows = http("/api/v2/builds/%d/steps" % b)["steps"]
        run = [s for s in rows if s["name"] == "wait"]
        assert len(run) == 1 and run[0]["stepid"] == sid, rows
        assert run[0]["complete"] is False and run[0]["state_string"] == want, run
        assert run[0]["results"] is None and run[0]["started_at"], run
        one = http("/api/v2/steps/%d" % sid)["steps"][0]
        assert one == run[0], (one, run[0])
        logs = http("/api/v2/steps/%d/logs" % sid)["logs"]
        assert [l["name"] for l in logs] == ["stdio"] and logs[0]["complete"] is False, logs
        # its first output line arrives while it runs (the log follows it)
        for _ in range(100):
            t = http("/api/v2/logs/%d/contents" % logs[0]["logid"])
            if "%d-rendered" % num in json.dumps(t):
                break
            await asyncio.sleep(0.1)  # polling a bounded number of times
        else:
            raise AssertionError("no output while running: %r" % t)
        open(GO, "w").close()
        fin = await until(ws, lambda e: e["k"] == "builds/%d/steps/%d/finished" % (b, sid))
        assert fin["m"]["complete"] is True and fin["m"]["results"] == 0, fin
        assert fin["m"]["state_string"] == want, fin
        assert http("/api/v2/steps/%d" % sid)["steps"][0] == fin["m"]
        # the argv step: its rendered words from its first event on
        a = await until(ws, lambda e: e["k"].startswith("builds/") and e["k"].endswith("/new")
                        and e["m"].get("name") == "argv")
        assert a["m"]["state_string"] == "'echo n%d ...'" % num, a
        s = await until(ws, lambda e: e["k"].startswith("builds/") and e["k"].endswith("/new")
                        and e["m"].get("name") == "skipped")
        done = await until(ws, lambda e: e["k"] == "builds/%d/finished" % b)
        assert done["m"]["results"] == 0, done
        rows = http("/api/v2/builds/%d/steps" % b)["steps"]
        names = [(r["name"], r["results"], r["state_string"]) for r in rows]
        assert names[1:] == [("wait", 0, want), ("argv", 0, "'echo n%d ...'" % num),
                             ("skipped", 3, "'echo %d' (skipped)" % num)], names
        print(b, num, sid)


asyncio.run(main())
PY

check "a running interpolated step: rendered from its first event, live in API and /ws" \
	sh -c "/usr/bin/python3 '$TRASH/rowonce.py' '$URL' '$GO' > '$TRASH/rowonce.out' 2>&1"
sed 's/^/# /' "$TRASH/rowonce.out"
B=$(awk '{print $1}' "$TRASH/rowonce.out")
N=$(awk '{print $2}' "$TRASH/rowonce.out")
numbers_of() { api "builders/b/numbers" | jpy '[n["name"] for n in d["numbers"]]'; }
check "the build's numbers: build_duration and each step's duration" \
	wait_for 60 sh -c "[ \"\$(curl -sS --max-time 10 '$URL/api/v2/builders/b/numbers' | /usr/bin/python3 -c 'import json,sys; print(sorted(n[\"name\"] for n in json.load(sys.stdin)[\"numbers\"]))')\" = \"['build_duration', 'step_duration:argv', 'step_duration:skipped', 'step_duration:wait', 'step_duration:worker_preparation']\" ]"
diag "numbers: $(numbers_of)"
check "step_duration:wait belongs to build $B (number $N)" \
	[ "$(api "builders/b/numbers/step_duration:wait" | jpy '[p["buildid"] for p in d["numbers"]]')" = "[$B]" ]
check "no errors or sanitizer reports in the log" sh -c "! grep -qE 'Z (error|warn ) |AddressSanitizer|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
