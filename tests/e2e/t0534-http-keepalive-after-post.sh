#!/bin/bash
# asan-too
# Keep-alive after a POST: a request sent on the same connection after a
# JSON-RPC POST (with a body, and with an empty one) is answered, as browsers
# and node's fetch reuse connections (found by the UI's tests: the second
# request of `curl -d ... --next ...` waited forever).
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }
force_scheduler { name = "force", builders = { "b" } }
LUA
printf x > "$M/secrets/w1"
check "master starts" start_master "$M"

# two: a POST then a GET on one connection; prints both status codes
two() {
    curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{num_connects}\n' \
        -H 'Content-Type: application/json' -d "$1" "$URL/api/v2/$2" \
        --next --max-time 10 -o /dev/null -w '%{http_code} %{num_connects}\n' "$URL/api/v2/builders"
}
out=$(two '{"jsonrpc":"2.0","id":1,"method":"force","params":{"builderNames":["b"]}}' forceschedulers/force 2>&1)
check "a GET after a force POST on the same connection is answered ($out)" \
    [ "$(tr '\n' ' ' <<<"$out")" = "200 1 200 0 " ]
out=$(two '{"jsonrpc":"2.0","id":1,"method":"nosuch","params":{}}' forceschedulers/force 2>&1)
check "also after a refused call ($out)" [ "$(sed -n 2p <<<"$out")" = "200 0" ]
out=$(two '{' forceschedulers/force 2>&1)
check "also after a malformed body ($out)" [ "$(sed -n 2p <<<"$out")" = "200 0" ]
out=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{num_connects}\n' "$URL/api/v2/builders" \
    --next --max-time 10 -o /dev/null -w '%{http_code} %{num_connects}\n' "$URL/api/v2/builders" 2>&1)
check "two GETs share a connection ($out)" [ "$(tr '\n' ' ' <<<"$out")" = "200 1 200 0 " ]
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
