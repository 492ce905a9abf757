#!/bin/bash
# A client that asks for a large answer and never reads it does not hold
# the connection (its header slot and answer memory) forever: the master
# closes it once writing has made no progress for 30 s (issue 9).  (lws
# 4.1.6 alone also ends this one, so this guards against a regression.)
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
title = "e2e"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "big", workers = { "w1" }, steps = {
  shell { name = "big", command = { "sh", "-c",
    "yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -c 12000000" } },
} }
force_scheduler { name = "force", builders = { "big" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
HP=${URL##*:}
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 30 worker_connected w1
br=$(force big)
check "the 12 MB build completes" wait_for 120 request_done "$br"
b=$(build_of_request "$br")
lid=$(api "builds/$b/steps/1/logs/stdio" | jpy 'd["logs"][0]["logid"]')
check "its log has an id" [ -n "$lid" ]

cat > "$TRASH/stall.py" <<'PY'
import socket, sys, time
port, path, hold = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
k = socket.socket()
k.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
k.connect(("127.0.0.1", port))
k.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(hold)  # not reading: the stall the test is about
k.settimeout(30)
got, tail = 0, b""
try:
    while True:
        d = k.recv(65536)
        if not d:
            break
        got += len(d)
        tail = (tail + d)[-16:]
except OSError:
    pass
print(got, "complete" if tail.endswith(b"\r\n0\r\n\r\n") else "cut")
PY
t0=$(date +%s)
out=$(/usr/bin/python3 "$TRASH/stall.py" "$HP" "/api/v2/logs/$lid/raw" ${STALL:-40})
diag "bytes read after a ${STALL:-40} s stall: $out ($(( $(date +%s) - t0 )) s)"
check "the master dropped the unread answer" [ "${out##* }" = cut ]
check "a reading client gets the whole log" \
    [ "$(curl -s --max-time 60 "$URL/api/v2/logs/$lid/raw" | wc -c)" -ge 12000000 ]
check "master still running" kill -0 "$MASTER_PID"
if [ "$E2E_FAILED" -ne 0 ]; then tail -20 "$M/master.log" | sed 's/^/# /'; fi
done_testing
