#!/bin/bash
# A master started under a hard limit of 128 descriptors raises its soft
# limit to it, and when more connections arrive than it has descriptors it
# stops accepting (no busy loop: little CPU over the hold, the limit logged
# once) and answers again once they are gone (issue 9).
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
title = "e2e"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
LUA
( ulimit -Sn 64 && ulimit -Hn 128 && exec "$KILN" master -d "$M" ) 2>>"$M/master.log" &
MASTER_PID=$!
e2e_track $MASTER_PID
check "master starts under a hard limit of 128" wait_for 60 test -s "$M/ports"
URL="http://$(master_addr "$M" http)"
HP=${URL##*:}
check "soft limit raised to the hard limit" \
    grep -q "file-descriptor limit raised from 64 to 128" "$M/master.log"
check "API answers" [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/api/v2/builders")" = 200 ]

# 300 silent connections from 10 addresses (under the per-address cap),
# held 12 s, then closed
cat > "$TRASH/hold.py" <<'PY'
import resource, socket, sys, time
port, ready, hold, done = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks, failed = [], 0
for i in range(300):
    k = socket.socket()
    try:
        k.bind(("127.0.0.%d" % (2 + i % 10), 0))
        k.settimeout(5)
        k.connect(("127.0.0.1", port))
        socks.append(k)
    except OSError:
        failed += 1
        k.close()
open(ready, "w").write("%d %d\n" % (len(socks), failed))
time.sleep(hold)  # the period whose CPU time the test measures
for k in socks:
    k.close()
open(done, "w").write("closed\n")
PY
/usr/bin/python3 "$TRASH/hold.py" "$HP" "$TRASH/ready" 12 "$TRASH/done" 2>"$TRASH/hold.err" &
HOLD=$!
e2e_track $HOLD
check "300 connections opened" wait_for 60 test -s "$TRASH/ready"
diag "opened, failed: $(cat "$TRASH/ready" 2>/dev/null)"
cpu() { awk '{print $14 + $15}' "/proc/$MASTER_PID/stat"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
c0=$(cpu); t0=$(now_ms)
check "hold period ends" wait_for 60 test -s "$TRASH/done"
c1=$(cpu); t1=$(now_ms)
tck=$(getconf CLK_TCK)
pct=$(( (c1 - c0) * 1000 * 100 / tck / (t1 - t0 + 1) ))
diag "master CPU over the hold: $(( (c1 - c0) * 1000 / tck )) ms of $(( t1 - t0 )) ms ($pct %)"
check "no busy loop at the fd limit (CPU < 10 % of the hold)" [ "$pct" -lt 10 ]
n=$(grep -c "at the file-descriptor limit" "$M/master.log")
diag "fd-limit lines: $n; log lines: $(wc -l < "$M/master.log")"
check "the fd limit logged at most twice" [ "$n" -ge 1 ] && [ "$n" -le 2 ]
check "log did not flood" [ "$(wc -l < "$M/master.log")" -lt 50 ]
api_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/api/v2/builders")" = 200 ]; }
check "API answers again once the connections are gone" wait_for 30 api_ok
check "master still running" kill -0 "$MASTER_PID"
if [ "$E2E_FAILED" -ne 0 ]; then tail -20 "$M/master.log" | sed 's/^/# /'; fi
done_testing
