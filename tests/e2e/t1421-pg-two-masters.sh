#!/bin/bash
# asan-too
# Two masters on one PostgreSQL (issue 14), masters = { heartbeat, dead_after }:
# both record heartbeats (last_active moves on); a kiln-worker that lists
# both attaches to the first; a request forced on the second master is
# claimed and built by the first (the queue is shared); a master killed
# with SIGKILL during a build stops heartbeating, and the other declares it
# dead within dead_after: the build ends RETRY ("interrupted: master ...
# stopped heartbeating"), its request goes back to the queue, the worker
# moves to the live master, which builds it once; every request of a burst
# forced on both masters is built exactly once.
. "$(dirname "$0")/lib.sh"
require_cmd curl
pg_server

head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TRASH/pw"
for name in A B; do
    new_master "$TRASH/$name" <<LUA
database = "$PGURL"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
masters = { heartbeat = 0.5, dead_after = 3 }
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = {
  shell { name = "work", command = { "sh", "-c", "test -f '$TRASH/hold' && sleep 60; echo built" } },
} }
force_scheduler { name = "force", builders = { "b" } }
LUA
    cp "$TRASH/pw" "$TRASH/$name/secrets/w1"
done

check "master A starts" start_master "$TRASH/A"
PA=$MASTER_PID; UA=$URL; WA=$WADDR
check "master B starts" start_master "$TRASH/B"
PB=$MASTER_PID; UB=$URL; WB=$WADDR

URL=$UB
active() { api masters | jpy 'sorted(m["active"] for m in d["masters"])'; }
check "B lists both masters, active ($(active))" [ "$(active)" = '[true, true]' ]
la() { pg "select last_active from masters where name like '%/A'"; }
t0=$(la)
check "A's heartbeat moves on" wait_for 10 sh -c "[ \"\$(psql '$PGURL' -X -Atqc \"select last_active > $t0 from masters where name like '%/A'\")\" = t ]"

"$KILN_WORKER" create "$TRASH/w1" --master "$WA" --master "$WB" --name w1 \
    --password-file "$TRASH/pw" >/dev/null
start_worker "$TRASH/w1" w1 "$TRASH/pw"
URL=$UA
check "the worker attaches to A, the first it lists" wait_for 60 worker_connected w1

# a request forced on B is built by A, whose worker is idle
URL=$UB
r1=$(force b)
URL=$UA
check "a request forced on B ($r1) is built by A" wait_for 60 request_done "$r1"
check "... successfully" [ "$(api "buildrequests/$r1" | jpy 'd["buildrequests"][0]["results"]')" = 0 ]
ma=$(api masters | jpy '[m["masterid"] for m in d["masters"] if m["name"].endswith("/A")][0]')
check "... on A" [ "$(api "builds?buildrequestid=$r1" | jpy 'd["builds"][0]["masterid"]')" = "$ma" ]

# A is killed during a build: B declares it dead, the request is built on B
touch "$TRASH/hold"
r2=$(force b)
check "A runs the long build" wait_for 60 sh -c "curl -sS '$UA/api/v2/builds?buildrequestid=$r2&complete=false' | grep -q '\"buildid\"'"
b2=$(build_of_request "$r2")
kill -KILL "$PA"
wait "$PA" 2>/dev/null
rm -f "$TRASH/hold"
URL=$UB
dead_build() { [ "$(api "builds/$b2" | jpy '[d["builds"][0]["results"], "stopped heartbeating" in d["builds"][0]["state_string"]]')" = '[5, true]' ]; }
check "B declares A dead: its build ends RETRY" wait_for 30 dead_build
check "A is inactive" [ "$(api masters | jpy '[m["active"] for m in d["masters"] if m["name"].endswith("/A")][0]')" = false ]
check "B says so in its log" grep -q 'stopped heartbeating (none for 3 s): declared dead; 1 of its builds end RETRY' "$TRASH/B/master.log"
check "the worker moves to B" wait_for 60 worker_connected w1
check "B builds the request again" wait_for 60 request_done "$r2"
check "... successfully" [ "$(api "buildrequests/$r2" | jpy 'd["buildrequests"][0]["results"]')" = 0 ]
check "... once more: two builds of it" [ "$(api "builds?buildrequestid=$r2" | jpy 'd["meta"]["total"]')" = 2 ]

# A comes back; a burst forced on both masters is built once per request
check "master A starts again" start_master "$TRASH/A"
PA=$MASTER_PID; UA=$URL
reqs=()
for i in $(seq 1 10); do
    URL=$UA; reqs+=("$(force b)")
    URL=$UB; reqs+=("$(force b)")
done
URL=$UB
check "20 requests forced (${#reqs[@]})" [ "${#reqs[@]}" = 20 ]
for br in "${reqs[@]}"; do
    request_done "$br" || wait_for 120 request_done "$br" || not_ok "request $br completes"
done
once=$(pg "select count(*) from buildrequests r where r.id in ($(IFS=,; echo "${reqs[*]}")) and (select count(*) from builds b where b.buildrequestid = r.id) = 1 and r.complete = 1 and r.results = 0")
check "each of the 20 built exactly once, successfully ($once)" [ "$once" = 20 ]
check "A stops cleanly" stop_pid "$PA"
check "B stops cleanly" stop_pid "$PB"
check "A's clean stop marks it inactive" [ "$(pg "select active from masters where name like '%/A'")" = 0 ]
check "no error in B's log" sh -c "! grep -E ' error ' '$TRASH/B/master.log'"
grep -E ' (error|warn) ' "$TRASH/A/master.log" "$TRASH/B/master.log" | head -n 10 | sed 's/^/# /'
done_testing
