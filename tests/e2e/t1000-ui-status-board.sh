#!/bin/bash
# The web UI (www/, embedded in kiln by src/master/www.c): the HTTP side with
# curl (index.html for the board and deep links, hash-named assets cached
# for a year, gzip, ETag and 304, 404 elsewhere), then the status board in
# a real browser (tests/e2e/ui/status-board.mjs: Debian's Chromium through
# playwright-core) against a real master and kiln-worker running real builds:
# results, a forced build seen running and finished without a reload,
# filters and deep links, and a master restart shown "offline" then caught up.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

# fixed ports: the page and the worker must find the restarted master where they left it
PORT=$(free_port)
WPORT=$(free_port)
M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:$PORT" }
workers_listen = "127.0.0.1:$WPORT"
worker { name = "w1", password = secret("w1") }
worker { name = "spare", password = secret("w1") }
-- build N waits (bounded) for the file gate-N: the browser test opens it
builder { name = "hello", workers = { "w1" }, tags = { "c", "fast" },
  steps = {
    shell { name = "greet", command = "echo hello" },
    shell { name = "wait", command = interpolate("i=0; while [ ! -e '$TRASH/gate-%(prop:buildnumber)s' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done; test -e '$TRASH/gate-%(prop:buildnumber)s'") },
  } }
builder { name = "broken", workers = { "w1" }, tags = { "c" },
  steps = { shell { name = "fail", command = "echo no; exit 1" } } }
force_scheduler { name = "force", builders = { "hello", "broken" } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
start_master_w1 "$M"

# ---- HTTP: what the master serves ----
hdrs() { curl -sS --max-time 10 -o "$TRASH/body" -D - "$@" | tr -d '\r'; }
h=$(hdrs "$URL/")
check "GET / is index.html, revalidated (no-cache, ETag)" \
    grep -q '^cache-control: no-cache$' <<<"$h"
etag=$(sed -n 's/^etag: //p' <<<"$h")
check "index.html has a strong ETag ($etag)" grep -qE '^"[0-9a-f]{16}"$' <<<"$etag"
js=$(grep -o '/assets/app\.[0-9a-f]*\.js' "$TRASH/body")
css=$(grep -o '/assets/app\.[0-9a-f]*\.css' "$TRASH/body")
check "index.html names the hash-named bundle ($js $css)" [ -n "$js" -a -n "$css" ]
h=$(hdrs -H 'If-None-Match: '"$etag" "$URL/")
check "If-None-Match with its ETag answers 304" grep -q '^HTTP/1.1 304' <<<"$h"
h=$(hdrs "$URL/builders/hello")
check "a deep link (/builders/hello) gets index.html" \
    [ "$(head -n 1 <<<"$h") $(sed -n 's/^etag: //p' <<<"$h")" = "HTTP/1.1 200 OK $etag" ]
h=$(hdrs "$URL$js")
check "the bundle is cached for a year, immutable" \
    grep -q '^cache-control: public, max-age=31536000, immutable$' <<<"$h"
check "... as JavaScript" grep -q '^content-type: text/javascript; charset=utf-8$' <<<"$h"
curl -sS --max-time 10 -o "$TRASH/app.js" "$URL$js"
sum=$(sha256sum "$TRASH/app.js" | cut -c1-16)
check "its name is its content hash ($sum)" grep -q "app\.$sum\.js" <<<"$js"
h=$(hdrs -H 'Accept-Encoding: gzip, deflate, br' "$URL$js")
check "gzip when the request allows it" grep -q '^content-encoding: gzip$' <<<"$h"
check "... and the gzip form is the same bundle" \
    sh -c "gzip -dc '$TRASH/body' | cmp -s - '$TRASH/app.js'"
gzlen=$(sed -n 's/^content-length: //p' <<<"$h")
diag "app.js: $(wc -c < "$TRASH/app.js") bytes, $gzlen gzipped"
h=$(hdrs -H 'Accept-Encoding: gzip;q=0, br' "$URL$js")
check "no gzip when the request refuses it (gzip;q=0)" sh -c '! grep -qi "^content-encoding"' <<<"$h"
check "... and no Vary lost (vary: accept-encoding)" grep -q '^vary: accept-encoding$' <<<"$h"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL/assets/app.0000000000000000.js")
check "an unknown asset is 404 ($code)" [ "$code" = 404 ]
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL/nosuch")
check "a path that is no view is 404 ($code)" [ "$code" = 404 ]

# ---- two builds for the board to show ----
touch "$TRASH/gate-1"
br=$(force hello)
check "hello #1 completes" wait_for 60 request_done "$br"
br=$(force broken)
check "broken #1 completes" wait_for 60 request_done "$br"

# ---- the browser ----
ui_start status-board.mjs
# the browser test asks for the restart once it has checked the rest
# (or ends early: then there is nothing to restart for)
wait_for 200 sh -c "test -e '$TRASH/restart-now' || ! kill -0 $UI_PID 2>/dev/null"
if [ -e "$TRASH/restart-now" ]; then
    check "master stops (SIGTERM)" stop_pid "$MASTER_PID"
    check "master starts again on the same port" start_master "$M"
    check "... at the same URL ($URL)" [ "$URL" = "http://127.0.0.1:$PORT" ]
fi
ui_finish 120
# the screenshots outlive the trash directory: test artefacts in the build dir
ui_screenshots 'status-board*.png' status-board.png
done_testing
