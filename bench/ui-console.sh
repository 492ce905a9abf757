#!/bin/sh
# bench/ui-console.sh [BUILD_DIR] [PER_CHANGE]: the console and the grid
# (www/src/console.js, grid.js) on a big database: 1,000 builders and
# 100,000 finished builds of 2,000 changes (100,000 / PER_CHANGE changes,
# each built on PER_CHANGE builders, default 50), seeded by
# bench/ui-seed-console.py into a stopped master's SQLite file.  Then
# bench/ui-console.mjs in headless Chromium (Debian's, via playwright-core)
# opens /console and /grid three times each and measures: API requests, JSON
# bytes received, and the time from navigation start to the cells drawn.
# Also, with curl: the /changes/builds answer for the newest 50 changes
# (bytes, seconds) and, for comparison, the request the console used
# before (the newest 2,000 builds with their revision property).
# Prints a summary and one JSON line ("ui-console {...}").  Never a test gate.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
[ -x "$BUILD/kiln" ] || BUILD=$SRC/build
PER=${2:-50}
KILN=$BUILD/kiln
CHROMIUM=${KILN_CHROMIUM:-/usr/bin/chromium}
[ -x "$KILN" ] || { echo "ui-console.sh: no kiln binary in $BUILD" >&2; exit 1; }
[ -x "$CHROMIUM" ] || { echo "ui-console.sh: no $CHROMIUM" >&2; exit 1; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-uiconsole.XXXXXX")
MPID=
cleanup() { [ -z "$MPID" ] || kill "$MPID" 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

mkdir -p "$DIR/m/secrets"
printf 'pw' > "$DIR/m/secrets/w1"
cat > "$DIR/m/master.lua" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
for i = 1, 1000 do
  builder { name = string.format("builder-%04d", i), workers = { "w1" },
    tags = { i % 2 == 0 and "even" or "odd" }, steps = { shell { name = "s", command = "true" } } }
end
LUA
start() {
    rm -f "$DIR/m/ports"
    "$KILN" master -d "$DIR/m" 2>>"$DIR/master.log" &
    MPID=$!
    i=0; while [ ! -s "$DIR/m/ports" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    [ -s "$DIR/m/ports" ] || { cat "$DIR/master.log" >&2; exit 1; }
    URL="http://$(awk '$1=="http" {print $2}' "$DIR/m/ports")"
}
stop() { kill "$MPID"; wait "$MPID" || true; MPID=; }
start # creates the schema and the 1,000 builders
stop
t0=$(date +%s.%N)
python3 "$SRC/bench/ui-seed-console.py" "$DIR/m/state.sqlite" --changes $((100000 / PER)) --per-change "$PER"
t1=$(date +%s.%N)
echo "ui-console: seeded in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
start

api() { curl -sS --max-time 60 -H 'Accept: application/json' "$URL/api/v2/$1"; }
IDS=$(api 'changes?order=-changeid&limit=50&field=changeid' |
    python3 -c 'import json,sys; print(",".join(str(c["changeid"]) for c in json.load(sys.stdin)["changes"]))')
# warm once, then measure
api "changes/builds?changeid=$IDS" >/dev/null
F='&field=changeid&field=buildid&field=builderid&field=number&field=results&field=complete'
CELLS=$(curl -sS -o /dev/null -H 'Accept: application/json' -w '%{size_download} %{time_total}' \
    "$URL/api/v2/changes/builds?changeid=$IDS$F")
ALL=$(curl -sS -o /dev/null -H 'Accept: application/json' -w '%{size_download} %{time_total}' \
    "$URL/api/v2/changes/builds?changeid=$IDS")
OLDQ='builds?order=-buildid&limit=2000&field=buildid&field=builderid&field=number&field=results&field=complete&field=started_at&field=complete_at&field=state_string&field=properties&property=revision&property=branch'
api "$OLDQ" >/dev/null
OLD=$(curl -sS -o /dev/null -H 'Accept: application/json' -w '%{size_download} %{time_total}' "$URL/api/v2/$OLDQ")
echo "ui-console: /changes/builds for the newest 50 changes, the console's fields: $CELLS (bytes, s)"
echo "ui-console: ... every field: $ALL (bytes, s)"
echo "ui-console: before, the newest 2,000 builds with properties: $OLD (bytes, s)"

URL=$URL WWW=$SRC/www CHROMIUM=$CHROMIUM node "$SRC/bench/ui-console.mjs" >"$DIR/out" 2>"$DIR/err" ||
    { cat "$DIR/err" >&2; exit 1; }
cat "$DIR/out"
JSON=$(grep '^ui-console-json ' "$DIR/out" | cut -d' ' -f2-)
set -- $CELLS
CB=$1 CS=$2
set -- $OLD
echo "ui-console {\"builders\": 1000, \"builds\": 100000, \"per_change\": $PER, \"cells_bytes\": $CB, \"cells_s\": $CS, \"old_builds_bytes\": $1, \"old_builds_s\": $2, \"browser\": $JSON}"
