#!/bin/bash
# The pending build requests view (www/src/requests.js) in a real browser
# (tests/e2e/ui/misc-requests.mjs: Debian's Chromium through playwright-core)
# against a real master and kiln-worker: requests queued behind a running
# build appear live, Cancel cancels one (results 6 in the API), the other
# runs once the worker is free, the queue empties without a reload.
# Screenshots under BUILD/test-artifacts/.
. "$(dirname "$0")/lib.sh"

CHROMIUM=${KILN_CHROMIUM:-/usr/bin/chromium}
require_cmd node curl
[ -x "$CHROMIUM" ] || skip_all "'$CHROMIUM' is not installed (scripts/install-deps)"
[ -d "$KILN_SRC/www/node_modules/playwright-core" ] ||
    skip_all "www/node_modules is missing (scripts/install-deps runs npm ci)"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "hello", workers = { "w1" }, steps = { shell { command = "echo hello" } } }
-- waits (bounded) for the file gate, which the browser test writes
builder { name = "slow", workers = { "w1" },
  steps = { shell { command = "i=0; while [ ! -e '$TRASH/gate' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done; test -e '$TRASH/gate'" } } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "w1 attaches" wait_for 20 worker_connected w1

URL=$URL TRASH=$TRASH WWW=$KILN_SRC/www CHROMIUM=$CHROMIUM \
    node "$KILN_SRC/tests/e2e/ui/misc-requests.mjs" >"$TRASH/ui.out" 2>"$TRASH/ui.err" &
NODE_PID=$!
e2e_track $NODE_PID
wait_for 240 sh -c "! kill -0 $NODE_PID 2>/dev/null"
wait "$NODE_PID" 2>/dev/null
while IFS= read -r line; do
    case $line in
        'ok - '*) ok "ui: ${line#ok - }" ;;
        'not ok - '*) not_ok "ui: ${line#not ok - }" ;;
        '#'*) echo "$line" ;;
    esac
done <"$TRASH/ui.out"
check "the browser test printed its points" grep -q '^ok - ' "$TRASH/ui.out"
if [ -s "$TRASH/ui.err" ]; then sed 's/^/# node: /' "$TRASH/ui.err" | head -n 20; fi
ART=$KILN_BUILD/test-artifacts/$E2E_NAME
rm -f "$ART"/requests*.png
mkdir -p "$ART" && cp "$TRASH"/requests*.png "$ART/" 2>/dev/null
check "screenshots saved ($ART/requests.png)" test -s "$ART/requests.png"
done_testing
