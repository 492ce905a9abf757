#!/bin/bash
# asan-too
# next_worker, next_build and prioritize_builders with a real master and
# kiln-workers: next_worker picks a given worker among two idle ones (seen in
# the build's worker); returning nil keeps a request queued until the
# function (its state driven by a later request's properties) lets it go; a
# name it was not offered is logged and starts nothing; next_build starts the
# newest request first; prioritize_builders runs the preferred builder's
# requests first on one scarce worker; functions that fail or run too long
# are logged once and the default choice is made, and the master keeps
# serving.  Every wait is for an event (a build, a request's state, a log
# line), bounded.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
for _, n in ipairs({ "w1", "w2", "w3", "w4" }) do
  worker { name = n, password = secret("w") }
end
local function step() return { shell { command = "true" } } end
-- the worker the request's property 'want' names (default w2), if idle
builder { name = "pick", workers = { "w1", "w2" }, steps = step(),
  next_worker = function(builder, workers, request)
    local want = request.properties.want or "w2"
    for _, w in ipairs(workers) do if w.name == want then return w end end
    return nil
  end }
-- held: nil for a request with property hold until a request with property
-- release was seen (by either builder: the function's upvalue is shared)
local released = false
local function gatekeeper(builder, workers, request)
  if request.properties.release then released = true end
  if request.properties.hold and not released then return nil end
  return workers[1].name
end
builder { name = "held", workers = { "w1" }, steps = step(), next_worker = gatekeeper }
builder { name = "releaser", workers = { "w1" }, steps = step(), next_worker = gatekeeper }
builder { name = "ghost", workers = { "w1" }, steps = step(),
  next_worker = function() return "nobody" end }
-- the newest request first
builder { name = "newest", workers = { "w3" }, steps = step(),
  next_build = function(builder, requests)
    local best = requests[1]
    for _, r in ipairs(requests) do if r.submitted_at > best.submitted_at then best = r end end
    return best.id
  end }
-- pa is declared first (the default order); prioritize_builders prefers pb
builder { name = "pa", workers = { "w4" }, steps = step() }
builder { name = "pb", workers = { "w4" }, steps = step() }
-- failing functions: the default worker, the queue's order
builder { name = "broken", workers = { "w1", "w2" }, steps = step(),
  next_worker = function() error("boom") end }
builder { name = "spin", workers = { "w1" }, steps = step(),
  next_build = function() while true do end end }
prioritize_builders = function(builders)
  for _, b in ipairs(builders) do
    if b.name == "broken" then error("no order for broken") end
  end
  for _, b in ipairs(builders) do
    if b.name == "pb" then return { b.name } end
  end
  return builders
end
LUA
printf 'secret-%s' "$$" > "$M/secrets/w"

check "checkconfig accepts the functions" "$KILN" checkconfig "$M"
check "master starts" start_master "$M"

bid() { api "builders/$1" | jpy 'd["builders"][0]["builderid"]'; }
wid() { api "workers/$1" | jpy 'd["workers"][0]["workerid"]'; }
# force_with BUILDER JSON-FIELDS: a force with extra fields (properties)
force_with() {
    rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$(bid "$1")\",\"reason\":\"e2e\"$2}}" |
        jpy 'list(d["result"][1].values())[0]'
}
has_build() { [ -n "$(build_of_request "$1")" ]; }
claimed() { api "buildrequests/$1" | jpy 'd["buildrequests"][0]["claimed"]'; }
worker_of() { build_field "$(build_of_request "$1")" workerid; }
# the buildrequestids of a builder's builds, in build order
brids_of() { api "builds?builderid=$(bid "$1")&order=buildid" | jpy '" ".join(str(b["buildrequestid"]) for b in d["builds"])'; }
# the build ids of a builder's builds
builds_of() { api "builds?builderid=$(bid "$1")&order=buildid" | jpy '" ".join(str(b["buildid"]) for b in d["builds"])'; }
logged() { grep -qF -- "$1" "$M/master.log"; }
nlogged() { grep -cF -- "$1" "$M/master.log"; }

# queued before their workers attach: one distributor pass sees them all
N1=$(force newest); N2=$(force newest); N3=$(force newest)
A1=$(force pa); B1=$(force pb); A2=$(force pa); B2=$(force pb)

start_worker "$TRASH/w1" w1 "$M/secrets/w"
start_worker "$TRASH/w2" w2 "$M/secrets/w"
both() { worker_connected w1 && worker_connected w2; }
check "w1 and w2 attach" wait_for 60 both

# next_worker picks w2 although the default (most free slots, then the
# builder's order) would take w1
P1=$(force pick)
check "pick: the build runs" wait_for 60 request_done "$P1"
check "pick: on w2, the worker next_worker named" [ "$(worker_of "$P1")" = "$(wid w2)" ]
P2=$(force_with pick ',"want":"w1"')
check "pick: want=w1 runs" wait_for 60 request_done "$P2"
check "pick: on w1 (the function reads the request's properties)" [ "$(worker_of "$P2")" = "$(wid w1)" ]

# nil holds a request: it stays queued (unclaimed, no build) while later
# requests run, until a request with 'release' changes the function's answer
H=$(force_with held ',"hold":"yes"')
P3=$(force pick)
check "a later request runs meanwhile" wait_for 60 request_done "$P3"
check "held: still unclaimed" [ "$(claimed "$H")" = false ]
check "held: no build" [ -z "$(build_of_request "$H")" ]
G=$(force ghost)
check "a name not offered is logged" wait_for 60 logged "builder=ghost next_worker named no idle worker (starting none): master.lua: next_worker of builder 'ghost' returned 'nobody', which is not one of the idle workers it was offered"
check "ghost: its request stays queued" [ "$(claimed "$G")" = false ]
R=$(force_with releaser ',"release":"yes"')
check "releaser runs" wait_for 60 request_done "$R"
check "held: runs once released" wait_for 60 request_done "$H"
check "held: its build came after the releaser's" [ "$(build_of_request "$H")" -gt "$(build_of_request "$R")" ]
check "held: built once" request_has_builds "$H" 1

# next_build: three requests queued before w3 attached run newest first
start_worker "$TRASH/w3" w3 "$M/secrets/w"
all_newest() { request_done "$N1" && request_done "$N2" && request_done "$N3"; }
check "newest: all three run" wait_for 30 all_newest
check "newest: in the order newest first" [ "$(brids_of newest)" = "$N3 $N2 $N1" ]

# prioritize_builders: one worker, pa declared first, pb preferred
start_worker "$TRASH/w4" w4 "$M/secrets/w"
all_p() { for r in "$A1" "$A2" "$B1" "$B2"; do request_done "$r" || return 1; done; }
check "pa and pb: all four run" wait_for 30 all_p
last_pb=$(builds_of pb | awk '{print $NF}')
first_pa=$(builds_of pa | awk '{print $1}')
check "pb's builds all ran before pa's" [ "$last_pb" -lt "$first_pa" ]
check "pb's requests in their own order" [ "$(brids_of pb)" = "$B1 $B2" ]

# failures: the default choice, logged once per builder and function
X1=$(force broken)
check "broken next_worker: the build runs anyway" wait_for 60 request_done "$X1"
check "on the default worker (w1)" [ "$(worker_of "$X1")" = "$(wid w1)" ]
X2=$(force broken)
check "broken: a second build runs" wait_for 60 request_done "$X2"
check "its failure is logged" logged "builder=broken next_worker failed (the default worker): master.lua:"
check "once (per minute at most)" [ "$(nlogged "builder=broken next_worker failed")" = 1 ]
check "prioritize_builders' failure is logged" logged "builder=* prioritize_builders failed (default order): master.lua:"
check "once" [ "$(nlogged "prioritize_builders failed")" = 1 ]
S1=$(force spin); S2=$(force spin)
both_spin() { request_done "$S1" && request_done "$S2"; }
check "spinning next_build: both requests run (the queue's order)" wait_for 30 both_spin
check "in the queue's order" [ "$(brids_of spin)" = "$S1 $S2" ]
check "the instruction limit is logged" logged "builder=spin next_build failed (the queue's order): master.lua:"
check "the master keeps serving" [ "$(api builders | jpy 'd["meta"]["total"]')" = 9 ]

check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
