#!/bin/bash
# 1,000 silent, slow-header and slow-body connections on the API and worker
# ports (issue 9): every API probe and every worker-port probe is answered
# within 2 s while they are open, a worker logs in and runs a build, and the
# master closes the slow ones at their deadlines.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
title = "e2e"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "hello", workers = { "w1" }, steps = {
  shell { name = "hello", command = { "sh", "-c", "echo flood-ok" } },
} }
force_scheduler { name = "force", builders = { "hello" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
HP=${URL##*:}
WP=${WADDR##*:}

/usr/bin/python3 "$(dirname "$0")/flood.py" "$HP" "$WP" 45 "$TRASH/ready" "$TRASH/result.json" \
    2>"$TRASH/flood.err" &
FLOOD=$!
e2e_track $FLOOD
check "1,000 connections open" wait_for 60 test -s "$TRASH/ready"
diag "opened: $(cat "$TRASH/ready" 2>/dev/null)"

start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker logs in during the flood" wait_for 30 worker_connected w1
br=$(force hello)
check "force returns a build request" [ -n "$br" ]
check "the build completes during the flood" wait_for 30 request_done "$br"
b=$(build_of_request "$br")
check "build succeeded" [ "$(build_field "$b" results 2>/dev/null)" = 0 ]

check "flood ran its course" wait_for 90 sh -c "! kill -0 $FLOOD 2>/dev/null"
R=$TRASH/result.json
if [ -s "$R" ]; then
    diag "$(jpy '{k: v for k, v in d.items() if "probes" not in k}' < "$R")"
    diag "API probes: $(jpy '"%d, median %.3f s, max %.3f s" % (len(d["probes"]), sorted(p[1] for p in d["probes"] if p)[len(d["probes"]) // 2], max(p[1] for p in d["probes"] if p))' < "$R" 2>/dev/null)"
    diag "API probe latencies (s): $(jpy '" ".join("%.3f" % p[1] if p else "none" for p in d["probes"])' < "$R")"
    diag "worker-port probe latencies (s): $(jpy '" ".join("%.3f" % p[1] if p else "none" for p in d["worker_probes"])' < "$R")"
fi
check "at least 900 connections held open throughout" \
    [ "$(jpy 'd["open_min"] >= 900' < "$R")" = true ]
check "every API probe answered 200 within 2 s" \
    [ "$(jpy 'all(p and p[0] == 200 and p[1] < 2 for p in d["probes"])' < "$R")" = true ]
check "every worker-port probe answered within 2 s" \
    [ "$(jpy 'all(p and p[0] == 404 and p[1] < 2 for p in d["worker_probes"])' < "$R")" = true ]
check "the master closed slow connections at their deadlines" \
    [ "$(jpy 'd["closed_by_master"] >= 300' < "$R")" = true ]
check "refusals logged in summary, not per connection" \
    [ "$(grep -c 'listener' "$M/master.log")" -lt 20 ]
check "master still running" kill -0 "$MASTER_PID"
if [ "$E2E_FAILED" -ne 0 ]; then
    tail -20 "$TRASH/w1.log" | sed 's/^/# /'; tail -20 "$M/master.log" | sed 's/^/# /'
    sed 's/^/# /' "$TRASH/flood.err" | tail -5
fi
done_testing
