#!/bin/sh
# bench/changes.sh [BUILD_DIR] [N] [C]: change ingestion through the change hook.
#   1. latency: 300 sequential POST /change_hook/base -> "1 change found"
#      (the answer comes after the change's batch is committed), p50/p99;
#   2. throughput: N (default 10,000) changes posted over C (default 4) keep-alive
#      connections by bench/changes-load.c, changes/s until the last answer, then every change
#      counted back through GET /api/v2/changes;
#   3. the master's RSS after the run (VmRSS, VmHWM).
# Prints a human summary and one JSON line ("changes-bench {...}") that
# bench/run can pick up.  Loopback only; a throwaway master in a temp dir.
# Never a test gate.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
[ -x "$BUILD/kiln" ] || BUILD=$SRC/build
N=${2:-10000}
C=${3:-4}
KILN=$BUILD/kiln
[ -x "$KILN" ] || { echo "changes.sh: no kiln binary in $BUILD (run ninja first)" >&2; exit 1; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-changes.XXXXXX")
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
mkdir -p "$DIR/secrets"
cc -O2 -Wall -Wextra -Werror -o "$DIR/changes-load" "$SRC/bench/changes-load.c" -lpthread
cat > "$DIR/master.lua" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { }
LUA
"$KILN" master -d "$DIR" 2>"$DIR/master.log" &
PID=$!
i=0
while [ ! -s "$DIR/ports" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$DIR/ports" ] || { echo "changes.sh: master did not start" >&2; cat "$DIR/master.log" >&2; exit 1; }
ADDR=$(awk '$1=="http" {print $2}' "$DIR/ports")

/usr/bin/python3 - "$ADDR" "$N" "$PID" "$BUILD" "$C" "$DIR/changes-load" <<'PY'
import http.client, json, subprocess, sys, time, urllib.parse

addr, n, pid, build = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
host, port = addr.rsplit(":", 1)

def body(i):
    return urllib.parse.urlencode({
        "author": "Dev %d <dev%d@example.org>" % (i % 50, i % 50),
        "comments": "change %d\n\nsome description" % i,
        "files": json.dumps(["src/file%d.c" % (i % 97), "include/h%d.h" % (i % 13)]),
        "branch": "main" if i % 3 else "dev", "revision": "%040x" % i,
        "repository": "https://example.org/repo.git", "project": "bench",
        "properties": json.dumps({"seq": i}), "category": "push"})

def post(conn, i):
    conn.request("POST", "/change_hook/base", body(i),
                 {"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200 or not data.startswith(b"1 change"):
        raise SystemExit("unexpected answer %d %r" % (r.status, data))

# 1. latency, one connection, sequential
conn = http.client.HTTPConnection(host, int(port), timeout=30)
lat = []
for i in range(300):
    t = time.perf_counter()
    post(conn, i)
    lat.append((time.perf_counter() - t) * 1000)
conn.close()
lat.sort()
p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]

# 2. throughput over C connections from the C load generator (a Python
# client would be what is measured on a small machine)
threads = int(sys.argv[5]); per = n // threads
out = subprocess.run([sys.argv[6], host, port, str(per * threads), str(threads), "1000"],
                     check=True, capture_output=True, text=True)
dt = float(out.stdout.strip())
sent = per * threads
c = http.client.HTTPConnection(host, int(port), timeout=60)
c.request("GET", "/api/v2/changes?limit=1&order=-changeid")
total = json.loads(c.getresponse().read())["changes"][0]["changeid"]
st = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
cpu = (int(st[11]) + int(st[12])) / 100.0
rss = hwm = 0
for line in open("/proc/%s/status" % pid):
    if line.startswith("VmRSS:"): rss = int(line.split()[1])
    if line.startswith("VmHWM:"): hwm = int(line.split()[1])
res = {"latency_ms_p50": round(p50, 3), "latency_ms_p99": round(p99, 3),
       "changes": sent, "seconds": round(dt, 3), "changes_per_s": round(sent / dt),
       "stored_total": total, "rss_kib": rss, "hwm_kib": hwm, "master_cpu_s": cpu, "build": build}
print("change hook latency (hook POST -> change committed -> answer): p50 %.2f ms, p99 %.2f ms"
      % (p50, p99))
print("%d changes over %d connections in %.2f s: %d changes/s; %d stored in all"
      % (sent, threads, dt, sent / dt, total))
print("master CPU for the whole run: %.2f s" % cpu)
print("master RSS after the run: %.1f MiB (peak %.1f MiB)" % (rss / 1024, hwm / 1024))
print("changes-bench " + json.dumps(res))
if total != 300 + sent:
    raise SystemExit("stored %d changes, expected %d" % (total, 300 + sent))
PY
