#!/bin/bash
# asan-too
# A master killed with SIGKILL at any moment loses nothing: it is killed
# while changes stream in through /change_hook/base, with requests queued,
# with builds running and inside a tree-stable wait; after each restart
# every change it acknowledged (HTTP 200) is stored, every build request is
# built exactly once (one successful build each; interrupted builds are
# retried) and the stored tree-stable deadline still fires.
. "$(dirname "$0")/lib.sh"

export KILN_TEST_CLOCK=1
HP=$(free_port); WP=$(free_port)
M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:$HP" }
workers_listen = "127.0.0.1:$WP"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1"), max_builds = 3 }
builder { name = "b", workers = { "w1" }, steps = {
  shell { command = "sleep 0.2; echo rev=\$KILN_REVISION" } } }
builder { name = "t", workers = { "w1" }, steps = { shell { command = "true" } } }
single_branch { name = "now", builders = { "b" }, change_filter = { branch = "main" } }
single_branch { name = "stable", builders = { "t" }, tree_stable_timer = 100,
  change_filter = { branch = "slow" } }
LUA
printf 'hook-token' > "$M/secrets/hook"
printf 'secret-%s' "$$" > "$M/secrets/w1"
ACKED=$TRASH/acked
: > "$ACKED"

restart() {
    kill -KILL "$MASTER_PID" 2>/dev/null
    wait "$MASTER_PID" 2>/dev/null
    start_master "$M"
}
# post_changes FROM TO: posts main changes rFROM..rTO, each retried until
# acknowledged (a killed master answers nothing); acknowledged ones are listed
post_changes() {
    for i in $(seq "$1" "$2"); do
        for attempt in $(seq 1 200); do
            c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
                -H 'Authorization: Bearer hook-token' -H 'Content-Type: application/json' \
                -d "{\"author\": \"a\", \"branch\": \"main\", \"revision\": \"r$i\", \"files\": [\"f\"]}" \
                "http://127.0.0.1:$HP/change_hook/base")
            if [ "$c" = 200 ]; then echo "r$i" >> "$ACKED"; break; fi
            sleep 0.05 # the master is restarting: poll again, bounded by the attempts
        done
    done
}
acked() { wc -l < "$ACKED" | tr -d ' '; }
advance() { rpc _test/clock "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"advance\",\"params\":{\"seconds\":$1}}" >/dev/null; }

check "master starts" start_master "$M"

# 1. killed while changes stream in (no worker: requests queue)
post_changes 1 40 &
POSTER=$!
check "some changes acknowledged" wait_for 30 sh -c "[ \$(wc -l < '$ACKED') -ge 10 ]"
check "kill -9 while changes stream in, restart" restart
check "the stream finishes against the restarted master" wait_for 120 sh -c "! kill -0 $POSTER 2>/dev/null"
wait "$POSTER"
check "all 40 changes acknowledged" [ "$(acked)" = 40 ]

# 2. killed with requests queued
check "kill -9 with requests queued, restart" restart
check "requests are all still queued" [ "$(api 'buildrequests?complete=false' | jpy 'd["meta"]["total"]')" -ge 40 ]

# 3. killed with builds running
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
check "builds are running" wait_for 60 sh -c "[ \"\$(curl -s 'http://127.0.0.1:$HP/api/v2/builds?complete=false' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" -ge 1 ]"
check "kill -9 with builds running, restart" restart
post_changes 41 45

# 4. killed inside a tree-stable wait
check "a change for the stable scheduler" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer hook-token' -H 'Content-Type: application/json' -d '{\"author\": \"a\", \"branch\": \"slow\", \"revision\": \"s1\"}' http://127.0.0.1:$HP/change_hook/base)\" = 200 ]"
advance 60
check "kill -9 inside the tree-stable wait, restart" restart
advance 30
nstable() { api buildsets | jpy "len([b for b in d['buildsets'] if \"named 'stable'\" in b['reason']])"; }
check "not built before its deadline" [ "$(nstable)" = 0 ]
advance 20
check "built at the stored deadline after the restart" [ "$(nstable)" = 1 ]

# the end state: everything built exactly once
check "worker attaches again" wait_for 30 worker_connected w1
check "every request completes" wait_for 120 sh -c "[ \"\$(curl -s 'http://127.0.0.1:$HP/api/v2/buildrequests?complete=false' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 0 ]"
check "every acknowledged change is stored" /usr/bin/python3 - "$URL" "$ACKED" <<'PY'
import json, sys, urllib.request
stored = {c["revision"] for c in json.load(urllib.request.urlopen(sys.argv[1] + "/api/v2/changes"))["changes"]}
acked = set(open(sys.argv[2]).read().split())
missing = acked - stored
if missing:
    print("# missing:", sorted(missing)); sys.exit(1)
PY
check "every stored main change has a request built exactly once" /usr/bin/python3 - "$URL" <<'PY'
import json, sys, urllib.request
get = lambda p: json.load(urllib.request.urlopen(sys.argv[1] + "/api/v2/" + p))
b = get("builders/b")["builders"][0]["builderid"]
changes = [c for c in get("changes")["changes"] if c["branch"] == "main"]
reqs = get("buildrequests?builderid=%d" % b)["buildrequests"]
builds = get("builds?builderid=%d" % b)["builds"]
ok = {}
for x in builds:
    if x["results"] == 0:
        ok[x["buildrequestid"]] = ok.get(x["buildrequestid"], 0) + 1
bad = [r["buildrequestid"] for r in reqs if ok.get(r["buildrequestid"], 0) != 1 or r["results"] != 0]
print("# %d main changes, %d requests, %d builds" % (len(changes), len(reqs), len(builds)))
sys.exit(1 if bad or len(reqs) != len(changes) else 0)
PY

done_testing
