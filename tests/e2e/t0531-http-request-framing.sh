#!/bin/bash
# Request framing the master refuses or answers at once: a chunked body
# (411, not a 30 s wait), Content-Length together with Transfer-Encoding
# (400: request smuggling), 100 query arguments (400 as docs/API.md says,
# not a dropped connection), a header block past its cap (431); a body
# that trickles in is answered even though it arrives in pieces.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
title = "e2e"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
LUA
check "master starts" start_master "$M"
HP=${URL##*:}

# raw REQUEST_FILE: sends the file's bytes and prints the status code of
# the answer (or 'none' when the connection closes without one within 10 s)
cat > "$TRASH/raw.py" <<'PY'
import socket, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
data = open(path, "rb").read().replace(b"\n", b"\r\n")
s = socket.create_connection(("127.0.0.1", port), timeout=10)
t0 = time.monotonic()
try:
    s.sendall(data)
    got = b""
    while b"\r\n" not in got:
        b = s.recv(4096)
        if not b:
            break
        got += b
except OSError:
    got = b""
line = got.split(b"\r\n", 1)[0].decode("latin-1")
print(line.split(" ")[1] if line.startswith("HTTP/1.") else "none",
      "%.2f" % (time.monotonic() - t0))
PY
raw() { /usr/bin/python3 "$TRASH/raw.py" "$HP" "$1"; }

printf 'POST /api/v2/forceschedulers/force HTTP/1.1\nHost: x\nContent-Type: application/json\nTransfer-Encoding: chunked\n\n2\n{}\n0\n\n' > "$TRASH/chunked"
out=$(raw "$TRASH/chunked")
diag "chunked: $out"
check "chunked body answered 411 at once" [ "${out%% *}" = 411 ]

# (lws let the length win and answered the request: 200 here)
printf 'GET /api/v2/builders HTTP/1.1\nHost: x\nContent-Length: 0\nTransfer-Encoding: chunked\n\n0\n\n' > "$TRASH/clte"
out=$(raw "$TRASH/clte")
diag "content-length + chunked: $out"
check "content-length with transfer-encoding refused 400" [ "${out%% *}" = 400 ]

q=$(/usr/bin/python3 -c 'print("&".join("field=a%d" % i for i in range(100)))')
printf 'GET /api/v2/builders?%s HTTP/1.1\nHost: x\n\n' "$q" > "$TRASH/args"
out=$(raw "$TRASH/args")
diag "100 query args: $out"
check "100 query arguments answered 400" [ "${out%% *}" = 400 ]

h=$(/usr/bin/python3 -c 'print("a" * 30000)')
printf 'GET /api/v2/builders HTTP/1.1\nHost: x\nX-Big: %s\n\n' "$h" > "$TRASH/big"
out=$(raw "$TRASH/big")
diag "30 kB header: $out"
check "header block past its cap answered 431" [ "${out%% *}" = 431 ]

# an ordinary request still works, with and without Expect: 100-continue
check "GET answered" [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/api/v2/builders")" = 200 ]
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Expect: 100-continue' \
    -H 'Content-Type: application/json' --data-binary '{"jsonrpc":"2.0","id":1,"method":"nosuch"}' \
    "$URL/api/v2/forceschedulers/force")
check "POST with Expect: 100-continue answered ($code)" [ "$code" != 000 ] && [ "$code" != 411 ]
# bodies up to 1 MiB are read whole; past it 413
/usr/bin/python3 -c 'print("{\"pad\": \"" + "a" * 900000 + "\"}")' > "$TRASH/900k.json"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -H 'Content-Type: application/json' \
    --data-binary @"$TRASH/900k.json" "$URL/api/v2/forceschedulers/force")
check "a 900 kB body is read and answered ($code)" [ "$code" = 400 ]
/usr/bin/python3 -c 'print("a" * 1100000)' > "$TRASH/1m.txt"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -H 'Content-Type: application/json' \
    --data-binary @"$TRASH/1m.txt" "$URL/api/v2/forceschedulers/force")
check "a body over 1 MiB answered 413 ($code)" [ "$code" = 413 ]
check "master still running" kill -0 "$MASTER_PID"
if [ "$E2E_FAILED" -ne 0 ]; then tail -20 "$M/master.log" | sed 's/^/# /'; fi
done_testing
