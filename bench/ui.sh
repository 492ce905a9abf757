#!/bin/sh
# bench/ui.sh [--quick] [--runs N] [--builders N] [--builds N] [--idle S] [--out FILE] [--keep] [BUILD_DIR]
# The web UI's views at scale (issue 11): one master with N builders (default
# 1,000, each with 1-2 tags) is started once to write its schema and its
# builders, stopped, and bench/ui-seed.py writes the builds straight into its
# SQLite file (default 100,000 builds with 4 steps each, 2,000 changes, mixed
# results, 20 running on another master row, 10 queued); then the master is
# started again and bench/ui.mjs opens each view in headless Chromium (Debian's,
# via playwright-core): status board /, /builders, a builder page, /waterfall,
# /console, /grid, a build page.  Per view, medians of --runs (3) cold-cache
# runs: first contentful paint, the view's data shown (its
# performance.mark('kiln:data')), API requests and bytes, JS/CSS bytes, the
# tab's CPU over --idle (10) s.  Also the master's CPU for the whole browser
# run and the load average.  Writes --out (bench/results/ui.json) and the
# markdown table beside it (.md), and prints both.  --quick: 20 builders,
# 200 builds, 1 run, 1 s idle, --out in the throwaway directory unless given
# (tests/e2e/t1068-bench-ui-quick.sh).  --keep: the throwaway directory (the
# seeded master's, under $TMPDIR) is kept for a look afterwards.  Never a test gate (t1068 only checks
# that it works).
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=
RUNS=3 NBUILDERS=1000 NBUILDS=100000 IDLE=10 OUT='' QUICK=0 KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 RUNS=1 NBUILDERS=20 NBUILDS=200 IDLE=1 ;;
        --runs) RUNS=$2; shift ;;
        --builders) NBUILDERS=$2; shift ;;
        --builds) NBUILDS=$2; shift ;;
        --idle) IDLE=$2; shift ;;
        --out) OUT=$2; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "ui.sh: unknown option $1" >&2; exit 2 ;;
        *) BUILD=$1 ;;
    esac
    shift
done
for n in "$RUNS" "$NBUILDERS" "$NBUILDS" "$IDLE"; do
    case $n in ''|*[!0-9]*) echo "ui.sh: '$n' is not a number" >&2; exit 2 ;; esac
done
[ "$NBUILDERS" -ge 1 ] && [ "$RUNS" -ge 1 ] || { echo "ui.sh: --builders and --runs must be >= 1" >&2; exit 2; }
[ -n "$BUILD" ] || BUILD=$SRC/build-bench
[ -x "$BUILD/kiln" ] || BUILD=$SRC/build
KILN=$BUILD/kiln
CHROMIUM=${KILN_CHROMIUM:-/usr/bin/chromium}
[ -x "$KILN" ] || { echo "ui.sh: no kiln binary in $BUILD" >&2; exit 1; }
[ -x "$CHROMIUM" ] || { echo "ui.sh: no $CHROMIUM" >&2; exit 1; }
[ -d "$SRC/www/node_modules/playwright-core" ] || { echo "ui.sh: no www/node_modules/playwright-core" >&2; exit 1; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-ui.XXXXXX")
if [ -z "$OUT" ]; then
    if [ "$QUICK" = 1 ]; then OUT=$DIR/ui.json; else OUT=$SRC/bench/results/ui.json; fi
fi
MPID=
stop_master() {
    [ -n "$MPID" ] || return 0
    kill "$MPID" 2>/dev/null || true
    wait "$MPID" 2>/dev/null || true
    MPID=
}
cleanup() {
    stop_master
    if [ "$KEEP" = 1 ]; then echo "ui: kept $DIR (the master's directory: $DIR/m)"
    elif [ "$QUICK" = 0 ] || [ "$OUT" != "$DIR/ui.json" ]; then rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$DIR/m/secrets"
printf 'pw' > "$DIR/m/secrets/w1"
cat > "$DIR/m/master.lua" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
local platforms = { "linux", "windows", "macos", "freebsd" }
local teams = { "core", "net", "ui", "db", "docs", "tools", "release", "perf" }
for i = 1, $NBUILDERS do
  local tags = { platforms[i % #platforms + 1] }
  if i % 3 == 0 then tags[2] = teams[i % #teams + 1] end
  builder { name = string.format("proj%04d-%s", i, tags[1]), workers = { "w1" }, tags = tags,
    description = "builder " .. i,
    steps = { shell { name = "build", command = "true" } } }
end
LUA
start_master() {
    rm -f "$DIR/m/ports"
    "$KILN" master -d "$DIR/m" 2>>"$DIR/master.log" &
    MPID=$!
    i=0; while [ ! -s "$DIR/m/ports" ] && [ $i -lt 600 ]; do
        kill -0 "$MPID" 2>/dev/null || { cat "$DIR/master.log" >&2; exit 1; }
        sleep 0.1; i=$((i + 1))
    done
    [ -s "$DIR/m/ports" ] || { echo "ui.sh: the master did not start" >&2; exit 1; }
    URL="http://$(awk '$1=="http" {print $2}' "$DIR/m/ports")"
}
start_master
stop_master
t0=$(date +%s.%N)
/usr/bin/python3 "$SRC/bench/ui-seed.py" "$DIR/m/state.sqlite" --builds "$NBUILDS" \
    --changes $((NBUILDS / 50 > 0 ? NBUILDS / 50 : 1)) \
    --running $((NBUILDERS < 20 ? NBUILDERS / 2 : 20)) --queued 10
t1=$(date +%s.%N)
start_master
t2=$(date +%s.%N)
echo "ui: seeded in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s, master restarted in $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }') s ($URL)"

api() { curl -sS --max-time 60 "$URL/api/v2/$1"; }
jpy() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# the builder and build pages: the first builder by name, and its newest finished build
B=$(api "builders?field=name&field=builderid" | jpy '"%s %d" % min((b["name"], b["builderid"]) for b in d["builders"])')
BNAME=${B% *} BID=${B#* }
BNUM=$(api "builders/$BID/builds?complete=true&order=-number&limit=1" | jpy 'd["builds"][0]["number"]')
VIEWS=$(printf '[["board","/"],["builders","/builders"],["builder","/builders/%s"],["waterfall","/waterfall"],["console","/console"],["grid","/grid"],["build","/builders/%s/builds/%s"]]' "$BNAME" "$BNAME" "$BNUM")

cpu() { awk '{print $14 + $15}' "/proc/$MPID/stat"; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
c0=$(cpu)
URL=$URL WWW=$SRC/www CHROMIUM=$CHROMIUM VIEWS=$VIEWS RUNS=$RUNS IDLE_S=$IDLE \
    node "$SRC/bench/ui.mjs" >"$DIR/out" 2>"$DIR/err" || { cat "$DIR/out" "$DIR/err" >&2; exit 1; }
c1=$(cpu)
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
grep '^# ' "$DIR/out" || true
CPU_S=$(awk -v a="$c0" -v b="$c1" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / t }')
VIEWJSON=$(grep '^ui-json ' "$DIR/out" | cut -d' ' -f2-)
mkdir -p "$(dirname "$OUT")"
/usr/bin/python3 - "$OUT" <<PY
import json, sys, datetime
views = json.loads('''$VIEWJSON''')
doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
       "builders": $NBUILDERS, "builds": $NBUILDS, "runs": $RUNS, "idle_s": $IDLE,
       "load_before": "$LOAD0", "load_after": "$LOAD1", "nproc": $(nproc),
       "master_cpu_s": $CPU_S, "views": views}
out = sys.argv[1]
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
rows = ["| view | first paint (ms) | data shown (ms) | last API answer (ms) | tab CPU to data (ms) | API requests (ms one after another, outside the browser) | API bytes transferred / decoded | JS+CSS bytes transferred / decoded | page bytes | tab CPU idle (ms per %d s) |" % $IDLE,
        "|---|---|---|---|---|---|---|---|---|---|"]
for name, v in views.items():
    rows.append("| %s \`%s\` | %d | %d | %d | %d | %d (%d) | %s / %s | %s / %s | %s | %.1f |" % (
        name, v["path"], v["fcp_ms"], v["data_ms"], v["api_done_ms"], v["cpu_to_data_ms"], v["api_requests"],
        v["serial_ms"],
        format(int(v["api_transfer_bytes"]), ","), format(int(v["api_decoded_bytes"]), ","),
        format(int(v["js_css_bytes"]), ","), format(int(v["js_css_decoded_bytes"]), ","),
        format(int(v["page_bytes"]), ","), v["idle_cpu_ms"]))
md = "\n".join(rows) + "\n"
with open(out[:-5] + ".md" if out.endswith(".json") else out + ".md", "w") as f:
    f.write(md)
print(md)
PY
echo "ui: $NBUILDERS builders, $NBUILDS builds, medians of $RUNS runs; load average $LOAD0 before, $LOAD1 after ($(nproc) cores); master CPU for the browser run $CPU_S s"
echo "ui: JSON in $OUT"
