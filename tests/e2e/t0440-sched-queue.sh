#!/bin/bash
# asan-too
# The queue: priority (highest first, then oldest), collapse_requests
# (compatible queued requests share one build and complete with its
# results, linked to it), cancel_superseded (a newer change on the same
# branch cancels older queued requests; "running" also stops the running
# build), and cancelling a queued request through JSON-RPC.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "col", workers = { "w1" }, collapse_requests = true, steps = {
  shell { command = "echo built=$KILN_REVISION" } } }
builder { name = "sup", workers = { "w1" }, cancel_superseded = true, steps = {
  shell { command = "true" } } }
builder { name = "run", workers = { "w1" }, cancel_superseded = "running", steps = {
  shell { command = { "sleep", "30" } } } }
builder { name = "prio", workers = { "w1" }, steps = { shell { command = "true" } } }
single_branch { name = "c", builders = { "col" }, change_filter = { branch = "main" } }
single_branch { name = "s", builders = { "sup" }, change_filter = { branch = "dev" } }
single_branch { name = "r", builders = { "run" }, change_filter = { branch = "long" } }
force_scheduler { name = "force", builders = { "prio", "col" } }
LUA
printf 'hook-token' > "$M/secrets/hook"
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"

change() { # BRANCH REVISION
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Authorization: Bearer hook-token' \
        -H 'Content-Type: application/json' \
        -d "{\"author\": \"a\", \"branch\": \"$1\", \"revision\": \"$2\", \"files\": [\"f\"], \"repository\": \"repo\"}" \
        "$URL/change_hook/base"
}
reqs() { api "buildrequests?builderid=$(api "builders/$1" | jpy 'd["builders"][0]["builderid"]')"; }
sql() { db_sql "$M" "$1"; }

# no worker yet: everything queues
for r in m1 m2 m3; do change main $r >/dev/null; done
for r in d1 d2 d3; do change dev $r >/dev/null; done
check "three requests queued for col" [ "$(reqs col | jpy 'len([r for r in d["buildrequests"] if not r["complete"]])')" = 3 ]
check "superseded dev requests are cancelled at once" [ "$(reqs sup | jpy '[r["results"] for r in d["buildrequests"]]')" = '[6, 6, -1]' ]

# priority: queue three forced requests on 'prio', the last with a higher priority
bid=$(api builders/prio | jpy 'd["builders"][0]["builderid"]')
fp() { rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$bid\",\"priority\":$1}}" | jpy 'list(d["result"][1].values())[0]'; }
p1=$(fp 0); p2=$(fp 0); p3=$(fp 10)
# and one queued request cancelled through JSON-RPC
p4=$(fp 0)
check "cancel of a queued request answers null" [ "$(rpc "buildrequests/$p4" '{"jsonrpc":"2.0","id":1,"method":"cancel","params":{"reason":"e2e"}}' | jpy 'd["result"]')" = null ]
check "the cancelled request is complete and CANCELLED" [ "$(api "buildrequests/$p4" | jpy '[d["buildrequests"][0]["complete"], d["buildrequests"][0]["results"]]')" = '[true, 6]' ]

start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
check "col requests all complete" wait_for 30 sh -c "[ \"\$(curl -s '$URL/api/v2/buildrequests?complete=false' | /usr/bin/python3 -c 'import json,sys; print(len([r for r in json.load(sys.stdin)[\"buildrequests\"] if r[\"builderid\"] != $(api builders/run | jpy 'd["builders"][0]["builderid"]')]))')\" = 0 ]"
colid=$(api builders/col | jpy 'd["builders"][0]["builderid"]')
check "one build for the three collapsed requests" [ "$(api "builds?builderid=$colid" | jpy 'd["meta"]["total"]')" = 1 ]
cb=$(api "builds?builderid=$colid" | jpy 'd["builds"][0]["buildid"]')
check "it built the newest revision" grep -qx 'obuilt=m3' <<<"$(log_text "$cb" 1)"
check "every collapsed request has the build's results" [ "$(reqs col | jpy '[r["results"] for r in d["buildrequests"]]')" = '[0, 0, 0]' ]
check "the merged requests are linked to the build" [ "$(sql "SELECT COUNT(*) FROM buildrequests WHERE collapsed_into = $cb")" = 2 ]
check "prio: the higher priority ran first" [ "$(api "builds?builderid=$bid&order=buildid" | jpy '[b["buildrequestid"] for b in d["builds"]]')" = "[$p3, $p1, $p2]" ]

# cancel_superseded = "running": a newer change stops the running build
change long l1 >/dev/null
runid=$(api builders/run | jpy 'd["builders"][0]["builderid"]')
check "the long build starts" wait_for 60 sh -c "[ \"\$(curl -s '$URL/api/v2/builds?builderid=$runid' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 1 ]"
lb=$(api "builds?builderid=$runid" | jpy 'd["builds"][0]["buildid"]')
change long l2 >/dev/null
check "a newer change cancels the running build" wait_for 60 build_results_is "$lb" 6
check "and the newer one builds" wait_for 60 sh -c "[ \"\$(curl -s '$URL/api/v2/builds?builderid=$runid' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 2 ]"

done_testing
