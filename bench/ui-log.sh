#!/bin/sh
# bench/ui-log.sh [BUILD_DIR] [MB]: the log viewer (www/src/log.js) on a big log.
# One master and one kiln-worker on loopback; a shell step prints MB (default 100)
# megabytes of coloured lines (needles near the start and the end) through a real
# build; then bench/ui-log.mjs in headless Chromium (Debian's, via playwright-core)
# opens /logs/ID and measures, with the page's performance.now(): the tail
# rendered after navigation start, and a search across the whole log (next from
# the top to the last needle, then prev back to the first).  Also the master's
# CPU seconds for that search.  Prints a summary and one JSON line
# ("ui-log {...}").  Never a test gate.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
[ -x "$BUILD/kiln" ] || BUILD=$SRC/build
MB=${2:-100}
KILN=$BUILD/kiln
WORKER=$BUILD/src/worker/kiln-worker
CHROMIUM=${KILN_CHROMIUM:-/usr/bin/chromium}
[ -x "$KILN" ] && [ -x "$WORKER" ] || { echo "ui-log.sh: no kiln binaries in $BUILD" >&2; exit 1; }
[ -x "$CHROMIUM" ] || { echo "ui-log.sh: no $CHROMIUM" >&2; exit 1; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-uilog.XXXXXX")
PIDS=
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

LINES=$((MB * 1000000 / 88))
mkdir -p "$DIR/m/secrets"
printf 'pw' > "$DIR/m/secrets/w1"
cat > "$DIR/m/master.lua" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "big", workers = { "w1" },
  steps = { shell { name = "log", timeout = 3600, command = "awk 'BEGIN { for (i = 1; i <= $LINES; i++) if (i == 10 || i == $LINES - 10) printf \"%s-%d is here\\\\n\", \"nee\" \"dle\", i; else printf \"\\\\033[3%dmline %d\\\\033[0m of a big log, with some text to make it longer: \\\\033[1m%08d\\\\033[0m\\\\n\", i % 7 + 1, i, i * 7 }'" } } }
force_scheduler { name = "force", builders = { "big" } }
LUA
"$KILN" master -d "$DIR/m" 2>"$DIR/master.log" &
MPID=$!
PIDS="$PIDS $MPID"
i=0; while [ ! -s "$DIR/m/ports" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
URL="http://$(awk '$1=="http" {print $2}' "$DIR/m/ports")"
WADDR=$(awk '$1=="workers" {print $2}' "$DIR/m/ports")
"$WORKER" create "$DIR/w1" --master "$WADDR" --name w1 --password-file "$DIR/m/secrets/w1" >/dev/null
"$WORKER" start "$DIR/w1" 2>"$DIR/worker.log" &
PIDS="$PIDS $!"
t0=$(date +%s.%N)
KILN_URL=$URL "$KILN" force --wait --timeout 3600 big >/dev/null
t1=$(date +%s.%N)
WRITE_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
api() { curl -sS --max-time 60 "$URL/api/v2/$1"; }
jpy() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
BID=$(api "builders/big/builds?order=-number&limit=1" | jpy 'd["builds"][0]["buildid"]')
LOGID=$(api "builds/$BID/steps/log/logs/stdio" | jpy 'd["logs"][0]["logid"]')
NLINES=$(api "logs/$LOGID" | jpy 'd["logs"][0]["num_lines"]')
echo "ui-log: $MB MB log ($NLINES lines) written by a real build in $WRITE_S s"

cpu() { awk '{print $14 + $15}' "/proc/$MPID/stat"; }
c0=$(cpu)
URL=$URL LOGID=$LOGID NLINES=$NLINES WWW=$SRC/www CHROMIUM=$CHROMIUM \
    node "$SRC/bench/ui-log.mjs" >"$DIR/out" 2>"$DIR/err" || { cat "$DIR/err" >&2; exit 1; }
c1=$(cpu)
cat "$DIR/out"
CPU_S=$(awk -v a="$c0" -v b="$c1" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / t }')
echo "ui-log: master CPU during the browser run (3 opens + 3 searches): $CPU_S s"
JSON=$(grep '^ui-log-json ' "$DIR/out" | cut -d' ' -f2-)
echo "ui-log {\"mb\": $MB, \"lines\": $NLINES, \"write_s\": $WRITE_S, \"master_cpu_s\": $CPU_S, \"browser\": $JSON}"
