#!/bin/bash
# asan-too
# Locks with a real master and kiln-workers: two builders sharing an
# exclusive master lock never run at once; a counting master lock with
# max_count = 2 lets exactly two of three run; a worker lock counts per
# worker with max_count_for_worker; the distributor takes another worker
# when the preferred one's worker lock is taken; a step's lock makes its
# build wait with a state string naming the lock and its holder, and a stop
# ends that wait CANCELLED.  Each step holds until the test writes to its
# fifo: no sleeps.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
G=$TRASH/gates
mkdir -p "$G"
new_master "$M" <<LUA
local G = "$G"
LUA
cat >> "$M/master.lua" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w"), max_builds = 8 }
worker { name = "w2", password = secret("w"), max_builds = 8 }
worker { name = "w3", password = secret("w"), max_builds = 1 }
local ex = master_lock { name = "ex" }
local cnt = master_lock { name = "cnt", max_count = 2 }
local wl = worker_lock { name = "wl", max_count = 1, max_count_for_worker = { w2 = 2 } }
local wx = worker_lock { name = "wx" }
local sl = master_lock { name = "sl" }
-- the step: marks its start, waits for the test on its fifo, marks its end
local function gate(name, locks)
  return shell { name = "hold", locks = locks, command =
    "echo start " .. name .. " >> " .. G .. "/events && touch " .. G .. "/started-" .. name ..
    " && read x < " .. G .. "/fifo-" .. name ..
    " && echo end " .. name .. " >> " .. G .. "/events" }
end
local function b(name, workers, locks, steplocks)
  builder { name = name, workers = workers, locks = locks, steps = { gate(name, steplocks) } }
end
b("ex1", { "w1" }, { ex:access("exclusive") })
b("ex2", { "w1" }, { ex:access("exclusive") })
for i = 1, 3 do b("c" .. i, { "w1" }, { cnt }) end
for i = 1, 2 do b("p" .. i, { "w1" }, { wl }) end
for i = 1, 3 do b("q" .. i, { "w2" }, { wl:access("counting") }) end
b("h", { "w1" }, { wx })
b("r", { "w1", "w3" }, { wx })
b("s1", { "w1" }, nil, { sl:access("exclusive") })
b("s2", { "w1" }, nil, { sl:access("exclusive") })
b("s3", { "w3" }, nil, { sl:access("exclusive") })
LUA
printf 'secret-%s' "$$" > "$M/secrets/w"
for n in ex1 ex2 c1 c2 c3 p1 p2 q1 q2 q3 h r s1 s2 s3; do mkfifo "$G/fifo-$n"; done

check "checkconfig accepts the locks" "$KILN" checkconfig "$M"
check "master starts" start_master "$M"

started() { [ -e "$G/started-$1" ]; }
# release NAME: lets NAME's waiting step end (bounded: the step must be reading)
release() { timeout 20 sh -c "echo go > '$G/fifo-$1'"; }
nstarted() { n=0; for x in "$@"; do started "$x" && n=$((n + 1)); done; echo $n; }
# the running one of NAMES (the first started and not ended)
running_of() { for x in "$@"; do started "$x" && ! grep -qx "end $x" "$G/events" && { echo "$x"; return; }; done; }
bid() { api "builders/$1" | jpy 'd["builders"][0]["builderid"]'; }
nbuilds() { api "builds?builderid=$(bid "$1")" | jpy 'd["meta"]["total"]'; }
# line number of an event in the events file
at() { grep -nx "$1" "$G/events" | cut -d: -f1; }

# everything queued before any worker attaches: one distributor pass sees it all
declare -A REQ
for n in ex1 ex2 c1 c2 c3 p1 p2 q1 q2 q3; do REQ[$n]=$(force "$n"); done
start_worker "$TRASH/w1" w1 "$M/secrets/w"
start_worker "$TRASH/w2" w2 "$M/secrets/w"
both_attached() { worker_connected w1 && worker_connected w2; }
check "workers attach" wait_for 60 both_attached

nstarted_is() { n=$1; shift; [ "$(nstarted "$@")" = "$n" ]; }
check "one of ex1/ex2 runs" wait_for 60 nstarted_is 1 ex1 ex2
check "two of c1..c3 run" wait_for 60 nstarted_is 2 c1 c2 c3
check "one of p1/p2 runs on w1" wait_for 60 nstarted_is 1 p1 p2
check "two of q1..q3 run on w2 (max_count_for_worker)" wait_for 60 nstarted_is 2 q1 q2 q3
exa=$(running_of ex1 ex2); exb=$([ "$exa" = ex1 ] && echo ex2 || echo ex1)
check "exclusive: the other ex builder has no build yet" [ "$(nbuilds "$exb")" = 0 ]
cb=$(for c in c1 c2 c3; do started $c || echo $c; done)
check "counting max_count=2: the third has no build" [ "$(nbuilds "$cb")" = 0 ]
pb=$(for p in p1 p2; do started $p || echo $p; done)
check "worker lock max_count=1 on w1: the other has no build" [ "$(nbuilds "$pb")" = 0 ]
qb=$(for q in q1 q2 q3; do started $q || echo $q; done)
check "worker lock w2=2: the third has no build" [ "$(nbuilds "$qb")" = 0 ]
check "waiting requests stay queued (unclaimed)" [ "$(api "buildrequests/${REQ[$exb]}" | jpy 'd["buildrequests"][0]["claimed"]')" = false ]

check "ex: the holder's step ends when told" release "$exa"
check "the other ex builder runs" wait_for 60 started "$exb"
check "ex: it started after the first ended" [ "$(at "end $exa")" -lt "$(at "start $exb")" ]
ca=$(running_of c1 c2 c3)
release "$ca"
check "counting: the third starts once one ends" wait_for 60 started "$cb"
check "counting: after that one ended" [ "$(at "end $ca")" -lt "$(at "start $cb")" ]
pa=$(running_of p1 p2)
release "$pa"
check "worker lock: the other p starts once the first ends" wait_for 60 started "$pb"
qa=$(running_of q1 q2 q3)
release "$qa"
check "worker lock w2=2: the third q starts once one ends" wait_for 60 started "$qb"
for n in "$exb" c1 c2 c3 "$pb" q1 q2 q3; do
    grep -qx "end $n" "$G/events" || release "$n"
done
all_done() { for n in ex1 ex2 c1 c2 c3 p1 p2 q1 q2 q3; do request_done "${REQ[$n]}" || return 1; done; }
check "every request completes" wait_for 30 all_done
check "every build succeeded" [ "$(api 'builds?complete=true' | jpy 'sorted(set(b["results"] for b in d["builds"]))')" = '[0]' ]

# the distributor skips a worker whose locks are taken: r prefers w1 (more
# free slots) but h holds wx on w1, so r runs on w3
start_worker "$TRASH/w3" w3 "$M/secrets/w"
W3_PID=$WORKER_PID
check "w3 attaches" wait_for 60 worker_connected w3
rh=$(force h)
check "h runs on w1 holding wx" wait_for 60 started h
rr=$(force r)
check "r runs while h holds wx on w1" wait_for 60 started r
rb=$(build_of_request "$rr")
check "r runs on w3" [ "$(build_field "$rb" workerid)" = "$(api workers/w3 | jpy 'd["workers"][0]["workerid"]')" ]
release h; release r
both_done() { request_done "$1" && request_done "$2"; }
check "h and r complete" wait_for 60 both_done "$rh" "$rr"

# a step's lock: s2's build starts and waits, its state string says for what
rs1=$(force s1)
check "s1's step holds sl" wait_for 60 started s1
s1b=$(build_of_request "$rs1")
s1n=$(build_field "$s1b" number)
rs2=$(force s2)
has_build() { [ -n "$(build_of_request "$1")" ]; }
check "s2's build starts" wait_for 60 has_build "$rs2"
s2b=$(build_of_request "$rs2")
want="waiting for lock 'sl' (exclusive; held by step 'hold' of build $s1n of builder 's1')"
state_is() { [ "$(build_field "$1" state_string)" = "$2" ]; }
check "the waiting build's state_string names the lock and its holder" wait_for 60 state_is "$s2b" "$want"
check "its step has not started" [ "$(nstarted s2)" = 0 ]
check "stop of the waiting build is accepted" [ "$(rpc "builds/$s2b" '{"jsonrpc":"2.0","id":2,"method":"stop","params":{"reason":"e2e stop"}}' | jpy 'd["result"]')" = null ]
check "the stopped waiting build ends CANCELLED" wait_for 60 build_results_is "$s2b" 6
check "its state string says cancelled" [ "$(build_field "$s2b" state_string)" = "cancelled (e2e stop)" ]
check "s1 still holds sl" [ "$(build_field "$s1b" complete)" = false ]
check "s2's step never ran" [ "$(nstarted s2)" = 0 ]
# a worker lost while its build waits for a lock: the build ends RETRY
rs3=$(force s3)
check "s3's build starts on w3" wait_for 60 has_build "$rs3"
s3b=$(build_of_request "$rs3")
check "and waits for sl" wait_for 60 state_is "$s3b" "$want"
check "w3's worker stops" stop_pid "$W3_PID"
check "the waiting build on the lost worker ends RETRY" wait_for 60 build_results_is "$s3b" 5
check "its request is queued again" [ "$(api "buildrequests/$rs3" | jpy 'd["buildrequests"][0]["claimed"]')" = false ]
rs2b=$(force s2)
check "a new s2 build starts" wait_for 60 has_build "$rs2b"
s2c=$(build_of_request "$rs2b")
check "with the same state string" wait_for 60 state_is "$s2c" "$want"
release s1
check "released by s1, s2's step runs" wait_for 60 started s2
check "the state string is back to building" wait_for 60 state_is "$s2c" building
release s2
check "s2 ends SUCCESS" wait_for 60 build_results_is "$s2c" 0
check "and s1 SUCCESS" build_results_is "$s1b" 0

check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
