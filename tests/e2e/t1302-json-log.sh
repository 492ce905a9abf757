#!/bin/bash
# asan-too
# log_format = "json" (master.lua) and kiln-worker --log-format json: every
# line of master.log and worker.log is one JSON object with ts, level,
# subsys and msg; lines about a build carry its id as a number ("build"),
# lines about a worker its name ("worker"); a hostile builder name stays
# inside its string.  A bad log_format is reported with its line.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
log_format = "json"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b\"q", workers = { "w1" }, steps = {
  shell { name = "say", command = "printf 'caf\\303\\251 \\377 bytes\\n'" },
} }
builder { name = "f", workers = { "w1" }, steps = {
  shell { name = "fail", command = "exit 3" },
} }
LUA
printf 'w1-secret' > "$M/secrets/w1"

"$KILN" start "$M" > /dev/null 2> "$TRASH/start.err"
rc=$?
[ -s "$M/pid" ] && e2e_track "$(cat "$M/pid")"
check "master starts with log_format json (status $rc)" [ "$rc" = 0 ]
URL="http://$(master_addr "$M" http)"
WADDR=$(master_addr "$M" workers)
W=$TRASH/w1
"$KILN_WORKER" create "$W" --master "$WADDR" --name w1 --password-file "$M/secrets/w1" >/dev/null
"$KILN_WORKER" start --daemon --log-format json "$W" > /dev/null 2>&1
check "worker starts with --log-format json" [ $? = 0 ]
[ -s "$W/worker.pid" ] && e2e_track "$(cat "$W/worker.pid")"
check "worker attaches" wait_for 30 worker_connected w1

b1=$(force 'b"q'); b2=$(force f)
check "first request completes" wait_for 60 request_done "$b1"
check "second request completes" wait_for 60 request_done "$b2"
B1=$(build_of_request "$b1")
B2=$(build_of_request "$b2")
"$KILN_WORKER" stop "$W" > /dev/null
check "worker stops" [ $? = 0 ]
"$KILN" stop "$M" > /dev/null
check "master stops" [ $? = 0 ]

# checklog FILE: every line a JSON object with the four members
checklog() {
    /usr/bin/python3 - "$1" <<'PY'
import json, sys
n = 0
for i, line in enumerate(open(sys.argv[1], 'rb'), 1):
    try:
        o = json.loads(line.decode('utf-8'))
    except Exception as e:
        sys.exit('line %d is not JSON (%s): %r' % (i, e, line[:200]))
    if not isinstance(o, dict) or not all(isinstance(o.get(k), str) for k in ('ts', 'level', 'subsys', 'msg')):
        sys.exit('line %d lacks ts/level/subsys/msg: %r' % (i, line[:200]))
    if o['level'] not in ('debug', 'info', 'warn', 'error'):
        sys.exit('line %d: level %r' % (i, o['level']))
    n += 1
if n < 3:
    sys.exit('only %d lines' % n)
PY
}
check "every master.log line is a JSON object" checklog "$M/master.log"
check "every worker.log line is a JSON object" checklog "$W/worker.log"
has() { /usr/bin/python3 -c '
import json, sys
want = json.loads(sys.argv[2])
for line in open(sys.argv[1]):
    o = json.loads(line)
    if all(o.get(k) == v for k, v in want.items()) and sys.argv[3] in o["msg"]:
        sys.exit(0)
sys.exit(1)' "$@"; }
check "the first build's start carries its id, builder and worker" \
    has "$M/master.log" "{\"build\": $B1, \"builder\": \"b\\\"q\", \"worker\": \"w1\"}" "started on"
check "the second build's lines carry its id" has "$M/master.log" "{\"build\": $B2}" ""
check "the worker's attach line carries its name" has "$M/master.log" '{"worker": "w1"}' "attached"
check "the master's start line is there" has "$M/master.log" '{"level": "info", "subsys": "master"}' "running"
check "no line is text" sh -c "! grep -v '^{' '$M/master.log'"

# a bad log_format: start fails with the line
printf 'log_format = "xml"\nhttp = { listen = "127.0.0.1:0" }\n' > "$M/master.lua"
"$KILN" start "$M" > /dev/null 2> "$TRASH/bad.err"
check "a bad log_format fails the start" [ $? = 1 ]
check "... with its line" grep -q "master.lua:1: 'log_format' must be \"text\" or \"json\"" "$TRASH/bad.err"
"$KILN_WORKER" start --log-format xml "$W" 2> "$TRASH/wbad.err"
check "kiln-worker --log-format xml is a usage error" [ $? = 2 ]
done_testing
