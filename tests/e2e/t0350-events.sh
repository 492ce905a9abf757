#!/bin/bash
# asan-too
# Live events over the browser WebSocket /ws: Buildbot's control commands
# and error frames, "changes/N/new" from the base change hook rendered like
# GET /api/v2/changes/N, the buildset, request and build events of a forced
# build in order, and a subscriber whose queue overflows (a tiny cap set
# for tests) getting one explicit resync event, then live events again.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "ok", workers = { "w1" }, steps = {
  shell { name = "hello", command = "echo hello" },
} }
builder { name = "bad", workers = { "w1" }, steps = {
  shell { name = "fail", command = "exit 1" },
} }
worker { name = "w2", password = secret("w1") } -- never connects: its builder queues
builder { name = "queued", workers = { "w2" }, steps = { shell { name = "x", command = "true" } } }
force_scheduler { name = "force", builders = { "ok", "bad", "queued" } }
LUA
printf 'hook-token' > "$M/secrets/hook"
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"

# 3000 bytes: one event of a change with a longer comment cannot be queued
export KILN_TEST_WS_EVENT_QUEUE=3000
check "master starts" start_master "$M"
unset KILN_TEST_WS_EVENT_QUEUE
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

cat > "$TRASH/wsev.py" <<'PY'
import asyncio, json, sys, urllib.request
import websockets

URL, case = sys.argv[1], sys.argv[2]
WS = "ws://" + URL.split("://", 1)[1] + "/ws"


def http(path, data=None, headers=None):
    req = urllib.request.Request(URL + path, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def post_change(comments="events e2e", branch="main"):
    body = json.dumps({"author": "Alice <alice@example.org>", "comments": comments,
                       "branch": branch, "files": ["a.c", "b/c.h"],
                       "properties": {"ticket": "K-1"}}).encode()
    http("/change_hook/base", body, {"Authorization": "Bearer hook-token",
                                     "Content-Type": "application/json"})


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), 20))


async def cmd(ws, **kw):
    await ws.send(json.dumps(kw, separators=(",", ":")))
    return await recv(ws)


async def main():
    async with websockets.connect(WS, open_timeout=10, max_size=None) as ws:
        if case == "control":
            assert await cmd(ws, cmd="ping", _id=1) == {"msg": "pong", "code": 200, "_id": 1}
            r = await cmd(ws, cmd="nosuch", _id=2)
            assert r == {"error": "no such command type 'nosuch'", "code": 404, "_id": 2}, r
            r = await cmd(ws, _id=3)
            assert r["code"] == 400 and r["_id"] is None and "cmd" in r["error"], r
            r = await cmd(ws, foo=1)
            assert r["code"] == 400 and r["_id"] is None, r
            r = await cmd(ws, cmd="startConsuming", _id=4)
            assert r["code"] == 400 and r["_id"] == 4, r
            r = await cmd(ws, cmd="startConsuming", path=123, _id=5)
            assert r == {"error": "invalid path format '123'", "code": 400, "_id": 5}, r
            r = await cmd(ws, cmd="stopConsuming", path="builds/*/*", _id=6)
            assert r == {"error": "path was not consumed 'builds/*/*'", "code": 400, "_id": 6}, r
            for i in (7, 8):  # twice: acked again
                r = await cmd(ws, cmd="startConsuming", path="builds/*/*", _id=i)
                assert r == {"msg": "OK", "code": 200, "_id": i}, r
            assert (await cmd(ws, cmd="stopConsuming", path="builds/*/*", _id=9))["code"] == 200
            r = await cmd(ws, cmd="stopConsuming", path="builds/*/*", _id=10)
            assert r["code"] == 400, r
            r = await cmd(ws, cmd="startConsuming", path="x", _id="str")
            assert r["_id"] == "str", r
        elif case == "change":
            assert (await cmd(ws, cmd="startConsuming", path="changes/*/*", _id=1))["code"] == 200
            assert (await cmd(ws, cmd="startConsuming", path="builds/*/*", _id=2))["code"] == 200
            post_change()
            ev = await recv(ws)
            assert sorted(ev) == ["k", "m"], ev
            k, m = ev["k"], ev["m"]
            parts = k.split("/")
            assert parts[0] == "changes" and parts[2] == "new", k
            assert int(parts[1]) == m["changeid"], ev
            rest = json.loads(http("/api/v2/changes/%s" % parts[1]))["changes"][0]
            assert m == rest, (m, rest)
            assert m["author"] == "Alice <alice@example.org>" and m["files"] == ["a.c", "b/c.h"]
            assert m["properties"] == {"ticket": ["K-1", "Change"]}, m
            print(k)
        elif case == "build":
            for i, p in enumerate(("buildsets/*/*", "buildrequests/*/*", "builds/*/*")):
                assert (await cmd(ws, cmd="startConsuming", path=p, _id=i))["code"] == 200
            bid = json.loads(http("/api/v2/builders/ok"))["builders"][0]["builderid"]
            rpc = {"jsonrpc": "2.0", "id": 1, "method": "force",
                   "params": {"builderid": str(bid), "reason": "events"}}
            http("/api/v2/forceschedulers/force", json.dumps(rpc).encode(),
                 {"Content-Type": "application/json"})
            keys, msgs = [], {}
            while not (keys and keys[-1].startswith("buildsets/") and keys[-1].endswith("/complete")):
                ev = await recv(ws)
                keys.append(ev["k"])
                msgs[ev["k"]] = ev["m"]
            kinds = ["%s/%s" % (k.split("/")[0], k.split("/")[2]) for k in keys]
            assert kinds == ["buildsets/new", "buildrequests/new", "buildrequests/claimed",
                             "builds/new", "builds/finished", "buildrequests/complete",
                             "buildsets/complete"], keys
            bs, br, cl, new, fin, brc, bsc = (msgs[k] for k in keys)
            assert fin["results"] == 0 and fin["complete"] is True, fin
            assert new["complete"] is False and new["buildid"] == fin["buildid"], new
            assert br["buildsetid"] == bs["bsid"] and br["claimed"] is False, br
            assert cl["claimed"] is True and cl["buildrequestid"] == br["buildrequestid"], cl
            assert fin["buildrequestid"] == br["buildrequestid"], msgs
            assert brc["complete"] is True and brc["results"] == 0, brc
            assert bsc["complete"] is True and bsc["results"] == 0 and bsc["bsid"] == bs["bsid"], bsc
            rest = json.loads(http("/api/v2/builds/%d" % fin["buildid"]))["builds"][0]
            assert fin == rest, (fin, rest)
            print(" ".join(keys))
        elif case == "cancel":
            for i, p in enumerate(("buildsets/*/*", "buildrequests/*/*")):
                assert (await cmd(ws, cmd="startConsuming", path=p, _id=i))["code"] == 200
            bid = json.loads(http("/api/v2/builders/queued"))["builders"][0]["builderid"]
            rpc = {"jsonrpc": "2.0", "id": 1, "method": "force",
                   "params": {"builderid": str(bid), "reason": "events"}}
            http("/api/v2/forceschedulers/force", json.dumps(rpc).encode(),
                 {"Content-Type": "application/json"})
            bs, br = await recv(ws), await recv(ws)
            assert bs["k"].endswith("/new") and br["k"].endswith("/new"), (bs, br)
            brid = br["m"]["buildrequestid"]
            rpc = {"jsonrpc": "2.0", "id": 1, "method": "cancel", "params": {"reason": "e2e"}}
            http("/api/v2/buildrequests/%d" % brid, json.dumps(rpc).encode(),
                 {"Content-Type": "application/json"})
            brc, bsc = await recv(ws), await recv(ws)
            assert brc["k"] == "buildrequests/%d/complete" % brid, brc
            assert brc["m"]["results"] == 6 and brc["m"]["complete"] is True, brc
            assert bsc["k"] == "buildsets/%d/complete" % bs["m"]["bsid"], bsc
            print(brc["k"], bsc["k"])
        elif case == "failing":
            assert (await cmd(ws, cmd="startConsuming", path="buildsets/*/*", _id=1))["code"] == 200
            rpc = {"jsonrpc": "2.0", "id": 1, "method": "force",
                   "params": {"builderNames": ["bad", "queued"], "reason": "events"}}
            res = json.loads(http("/api/v2/forceschedulers/force", json.dumps(rpc).encode(),
                                  {"Content-Type": "application/json"}))["result"]
            bsid, brids = res[0], res[1]
            new = await recv(ws)
            assert new["k"] == "buildsets/%d/new" % bsid, new
            fail = await recv(ws)  # "bad" failed while "queued" still waits
            assert fail["k"] == "buildsets/%d/failing" % bsid, fail
            assert fail["m"] == {"bsid": bsid, "results": 2}, fail
            queued = [b for b in brids.values()]
            for brid in queued:
                rpc = {"jsonrpc": "2.0", "id": 1, "method": "cancel", "params": {"reason": "e2e"}}
                http("/api/v2/buildrequests/%d" % brid, json.dumps(rpc).encode(),
                     {"Content-Type": "application/json"})
            done = await recv(ws)
            assert done["k"] == "buildsets/%d/complete" % bsid, done
            print(fail["k"], done["k"])
        elif case == "resync":
            assert (await cmd(ws, cmd="startConsuming", path="changes/*/*", _id=1))["code"] == 200
            post_change(comments="x" * 4000)  # its event is over the 3000-byte cap
            ev = await recv(ws)
            assert ev["k"] == "resync" and isinstance(ev["m"]["seq"], int) and ev["m"]["seq"] > 0, ev
            # control replies are never dropped, and live events resume
            assert await cmd(ws, cmd="ping", _id=2) == {"msg": "pong", "code": 200, "_id": 2}
            post_change(comments="small again")
            ev2 = await recv(ws)
            assert ev2["k"].startswith("changes/") and ev2["m"]["comments"] == "small again", ev2
            print("resync", ev["m"]["seq"], ev2["k"])

asyncio.run(main())
PY
ev() { /usr/bin/python3 "$TRASH/wsev.py" "$URL" "$1" > "$TRASH/$1.out" 2>&1; r=$?; sed 's/^/# /' "$TRASH/$1.out"; return $r; }

check "control commands and errors as Buildbot answers them" ev control
check "a posted change is streamed as changes/N/new, as REST renders it" ev change
check "a forced build: buildset, request new/claimed, build new/finished, request and buildset complete, in order" ev build
check "cancelling a queued request: buildrequests/N/complete (6), buildsets/N/complete" ev cancel
check "an overflowing subscriber gets a resync event, then live events" ev resync
check "a buildset's first failure is an event before it completes" ev failing
check "master still answers" [ "$(api changes | jpy 'd["meta"]["total"]')" = 3 ]
check "no errors or sanitizer reports in the log" sh -c "! grep -qE 'Z (error|warn ) |AddressSanitizer|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
