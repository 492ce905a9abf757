#!/bin/bash
# kill -9 of the master, then a restart, with scheduler timers pending
# (t0450 covers the change stream, queued requests and a tree-stable wait):
# a periodic scheduler killed between two runs and a nightly (cron) one
# killed a minute before its time both fire once at their stored time after
# the restart, never twice (a kill right after a run repeats nothing); a
# periodic build interrupted by the kill is retried and built exactly once.
# The scheduler clock is the master's test clock (KILN_TEST_CLOCK=1).
. "$(dirname "$0")/lib.sh"

export KILN_TEST_CLOCK=1
HP=$(free_port); WP=$(free_port) # fixed: the worker reconnects to the restarted master
M=$TRASH/master
GO=$TRASH/go
new_master "$M" <<LUA
http = { listen = "127.0.0.1:$HP" }
workers_listen = "127.0.0.1:$WP"
worker { name = "w1", password = secret("w1"), max_builds = 4 }
builder { name = "p", workers = { "w1" }, steps = {
  shell { name = "wait", command = "i=0; while [ ! -e '$GO' ] && [ \$i -lt 6000 ]; do i=\$((i+1)); sleep 0.05; done; echo go" } } }
builder { name = "n", workers = { "w1" }, steps = { shell { command = "true" } } }
periodic { name = "per", builders = { "p" }, period = 200000 }
nightly { name = "nig", builders = { "n" }, cron = "0 3 * * *" }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"

advance() { rpc _test/clock "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"advance\",\"params\":{\"seconds\":$1}}" | jpy 'd["result"]["now"]'; }
clock_now() { api _test/clock | jpy 'int(d["now"])'; }
nbs() { api buildsets | jpy "len([b for b in d['buildsets'] if \"named '$1'\" in b['reason']])"; }
nbs_is() { [ "$(nbs "$1")" = "$2" ]; }
restart() {
    kill -KILL "$MASTER_PID" 2>/dev/null
    wait "$MASTER_PID" 2>/dev/null
    start_master "$M"
}
running_builds() { api 'builds?complete=false' | jpy 'd["meta"]["total"]'; }

check "master starts" start_master "$M"
check "the periodic scheduler's first run at start-up" wait_for 30 nbs_is per 1
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
check "the periodic build runs" wait_for 60 sh -c "[ \"\$(curl -s '$URL/api/v2/builds?complete=false' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 1 ]"

# 1. periodic: killed mid-build, 150000 s into its 200000 s period
advance 150000 >/dev/null
check "kill -9 mid-build and mid-period, restart" restart
check "no run repeated at start-up (the period is not over)" nbs_is per 1
advance 49000 >/dev/null
check "not before the stored time" nbs_is per 1
advance 2000 >/dev/null
check "the periodic run fires at its stored time after the restart" nbs_is per 2
check "kill -9 right after the run, restart" restart
check "the run is not repeated after the restart" nbs_is per 2

# 2. nightly: killed a minute before 03:00 UTC (the long advances above
# crossed 03:00 already: counted from here)
n0=$(nbs nig)
now=$(clock_now)
to3=$(( (3 * 3600 - now % 86400 + 86400) % 86400 ))
[ "$to3" -lt 120 ] && to3=$((to3 + 86400))
advance $((to3 - 60)) >/dev/null
check "nightly not run before 03:00" nbs_is nig "$n0"
check "kill -9 a minute before 03:00, restart" restart
check "nothing ran at start-up" nbs_is nig "$n0"
advance 120 >/dev/null
check "the nightly run fires at 03:00 after the restart" nbs_is nig $((n0 + 1))
check "kill -9 right after the nightly run, restart" restart
advance 60 >/dev/null
check "the nightly run is not repeated" nbs_is nig $((n0 + 1))
check "the periodic scheduler did not run meanwhile" nbs_is per 2

# the end state: the interrupted build retried, everything built once
touch "$GO"
check "worker attaches again" wait_for 120 worker_connected w1
check "every request completes" wait_for 120 sh -c "[ \"\$(curl -s '$URL/api/v2/buildrequests?complete=false' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 0 ]"
check "each buildset has one request, built once with success; the interrupted one retried" /usr/bin/python3 - "$URL" <<'PY'
import json, sys, urllib.request
get = lambda p: json.load(urllib.request.urlopen(sys.argv[1] + "/api/v2/" + p))
bsets = get("buildsets")["buildsets"]
reqs = get("buildrequests")["buildrequests"]
builds = get("builds")["builds"]
print("# %d buildsets, %d requests, %d builds" % (len(bsets), len(reqs), len(builds)))
print("# builds:", [(b["buildid"], b["buildrequestid"], b["results"]) for b in builds])
per_bs = {}
for r in reqs:
    per_bs[r["buildsetid"]] = per_bs.get(r["buildsetid"], 0) + 1
if sorted(per_bs) != sorted(b["bsid"] for b in bsets) or set(per_bs.values()) != {1}:
    print("# requests per buildset:", per_bs); sys.exit(1)
ok = {}
for b in builds:
    if b["results"] == 0:
        ok[b["buildrequestid"]] = ok.get(b["buildrequestid"], 0) + 1
if any(ok.get(r["buildrequestid"], 0) != 1 or r["results"] != 0 for r in reqs):
    print("# successes per request:", ok); sys.exit(1)
retried = [b for b in builds if b["results"] == 5]
sys.exit(0 if len(retried) >= 1 else 1)
PY
done_testing
