#!/bin/bash
# asan-too
# tree_size and numbers = { } with kiln-worker and Debian's buildbot-worker:
# tree_size sets tree-size-KiB (the property, the state string, the number)
# to what du says of the worker's directory; a missing directory is
# FAILURE. A shell step's numbers come from its stdout (the last matching
# line), from files on the worker and from a Lua function of the
# properties, read back through /api/v2/builders/B/numbers/NAME; bad values
# (no match, not a number, a missing or oversized file, a function
# returning text) are lines in the step's log and leave the step SUCCESS.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-build.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
worker { name = "bbw", password = secret("bbw") }
local make = shell { name = "make", command = "mkdir -p out && head -c 100000 /dev/urandom > out/blob && "
    .. "echo 'size: 12 KiB' && echo 'size: 40 KiB' && echo 'size: x KiB' && printf ' 3.25\\n' > cov.txt && "
    .. "printf abc > bad.txt && head -c 70000 /dev/zero | tr '\\0' 1 > big.txt",
  numbers = {
    last = "^size: (\\d+) KiB",
    nomatch = "^never (\\d+)",
    cov = { file = "cov.txt" },
    badfile = { file = "bad.txt" },
    missing = { file = "none.txt" },
    bigfile = { file = "big.txt" },
    doubled = function(p) return p.answer * 2 end,
    fnbad = function(p) return "oops" end,
  } }
local function steps()
  return { set_property { property = "answer", value = 21 }, make, tree_size { },
           tree_size { name = "outsize", dir = "out", numbers = { ts_fn = function(p) return p["tree-size-KiB"] end } } }
end
builder { name = "measure", workers = { "w1" }, steps = steps() }
builder { name = "bb-measure", workers = { "bbw" }, steps = steps() }
builder { name = "ts-fail", workers = { "w1" }, steps = { tree_size { dir = "nonexistent" } } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
printf 'bb-secret-%s' "$$" > "$M/secrets/bbw"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

run() { local br; br=$(force "$1") || return 1; wait_for 60 request_done "$br" || return 1; build_of_request "$br"; }
state() { api "builds/$1/steps/$2" | jpy 'd["steps"][0]["state_string"]'; }
step_results() { api "builds/$1/steps/$2" | jpy 'd["steps"][0]["results"]'; }
prop() { api "builds/$1/properties" | jpy "d['properties'][0].get('$2')"; }
number() { api "builders/$1/numbers/$2" | jpy "d['numbers'][0]['value'] if d['numbers'] else None"; }
names() { api "builders/$1/numbers" | jpy "sorted(n['name'] if isinstance(n, dict) else n for n in d['numbers'])"; }
is_num() { python3 -c "import sys; sys.exit(0 if float('$1') == float('$2') else 1)" 2>/dev/null; }

# measure BUILDER WORKERDIR: the checks on one worker
measure() {
    local br=$1 wdir=$2 who=$3 b
    b=$(run "$br")
    check "$who: the build succeeds despite the bad numbers" build_results_is "$b" 0
    check "$who: the make step is SUCCESS" [ "$(step_results "$b" 2)" = 0 ]
    local kib outkib
    kib=$(du -s -k "$wdir/$br/build" | cut -f1)
    outkib=$(du -s -k "$wdir/$br/build/out" | cut -f1)
    diag "du says $kib KiB and $outkib KiB"
    check "$who: tree-size-KiB property is du's ($(prop "$b" tree-size-KiB))" \
        [ "$(prop "$b" tree-size-KiB)" = "[$outkib, \"treesize\"]" ]
    check "$who: state string of the first tree_size ($(state "$b" 3))" [ "$(state "$b" 3)" = "treesize $kib KiB" ]
    check "$who: state string of the second ($(state "$b" 4))" [ "$(state "$b" 4)" = "treesize $outkib KiB" ]
    check "$who: it is over 97 KiB (the 100000-byte blob)" [ "$outkib" -ge 97 ]
    local v
    v=$(api "builders/$br/numbers/tree-size-KiB" | jpy "sorted(n['value'] for n in d['numbers'][:2])")
    check "$who: number tree-size-KiB, both steps ($v)" python3 -c "import sys; sys.exit(0 if $v == sorted([$kib, $outkib]) else 1)"
    check "$who: the last matching line wins ($(number "$br" last))" is_num "$(number "$br" last)" 40
    check "$who: a file's number ($(number "$br" cov))" is_num "$(number "$br" cov)" 3.25
    check "$who: a function of the properties ($(number "$br" doubled))" is_num "$(number "$br" doubled)" 42
    check "$who: a function sees the step's own property ($(number "$br" ts_fn))" is_num "$(number "$br" ts_fn)" "$outkib"
    check "$who: the bad ones are not recorded ($(names "$br"))" \
        [ "$(names "$br" | python3 -c 'import json,sys; n=json.load(sys.stdin); print(sorted(set(n) & {"nomatch","badfile","missing","bigfile","fnbad"}))')" = "[]" ]
    local log; log=$(log_text "$b" 2)
    check "$who: no match: a line in the log" grep -q "numbers: 'nomatch': no line of stdout matched" <<<"$log"
    check "$who: not a number: a line" grep -q "numbers: 'badfile': 'bad.txt' does not hold a number" <<<"$log"
    check "$who: a missing file: a line" grep -q "numbers: 'missing': the worker could not send 'none.txt'" <<<"$log"
    check "$who: a file over 64 KiB: a line" grep -q "numbers: 'bigfile': 'big.txt' is larger than 65536 bytes" <<<"$log"
    check "$who: a function returning text: a line" grep -q "numbers: 'fnbad': the function returned 'oops' is not a number" <<<"$log"
}

measure measure "$TRASH/w1" kiln-worker

b=$(run ts-fail)
check "du of a missing directory: FAILURE" build_results_is "$b" 2
check "state 'treesize unknown (failure)' ($(state "$b" 1))" [ "$(state "$b" 1)" = "treesize unknown (failure)" ]
check "no property then" [ "$(prop "$b" tree-size-KiB)" = null ]

if command -v buildbot-worker >/dev/null; then
    W=$TRASH/bbworker
    start_buildbot_worker "$W" bbw "$M/secrets/bbw"
    check "buildbot-worker attaches" wait_for 40 worker_connected bbw
    measure bb-measure "$W" buildbot-worker
else
    not_ok "buildbot-worker is not installed (scripts/install-deps installs it)"
fi

mkdir -p "$TRASH/badcfg"
echo 'local s = shell { command = "make", numbers = { size = "(\\d+" } }' > "$TRASH/badcfg/master.lua"
out=$("$KILN" checkconfig "$TRASH/badcfg" 2>&1)
check "checkconfig names a regex that does not compile ($out)" \
    grep -q "master.lua:1: shell 'make': numbers: 'size': '(\\\\d+' is not a valid regular expression: missing closing parenthesis at offset 4" <<<"$out"
done_testing
