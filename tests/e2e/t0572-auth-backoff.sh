#!/bin/bash
# asan-too
# Guessing secrets is slowed per client address: 200 wrong worker passwords
# and 200 wrong change hook tokens sent as fast as possible from one
# address are mostly refused by the backoff (worker upgrade 401 "too many
# failed logins", hook 429 with Retry-After) without the secret being
# checked, the log gets a few summary lines instead of one per attempt, and
# once the window has passed a correct login works again (the windows are
# shortened with KILN_AUTH_BACKOFF_MAX_MS so the bounded waits cover them).
. "$(dirname "$0")/lib.sh"

export KILN_AUTH_BACKOFF_MAX_MS=2000
M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }
LUA
printf 'hook-token' > "$M/secrets/hook"
printf 'w1-secret' > "$M/secrets/w1"
check "master starts" start_master "$M"

# attack.py KIND ADDR N PASSWORD: N attempts as fast as possible; prints
# "checked refused other" (checked = the secret was looked at and found wrong)
cat > "$TRASH/attack.py" <<'PY'
import base64, socket, sys, time
kind, addr, n, password = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
host, port = addr.rsplit(":", 1)
def request(pw):
    if kind == "worker":
        auth = base64.b64encode(("w1:" + pw).encode()).decode()
        req = ("GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Authorization: Basic %s\r\n\r\n" % (addr, auth))
    else:
        body = "author=ann&revision=1"
        req = ("POST /change_hook/base HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
               "Connection: close\r\n\r\n%s" % (addr, pw, len(body), body))
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(req.encode())
    data = b""
    while True:  # the head, then Content-Length bytes of body (none after a 101)
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            continue
        if head.startswith(b"HTTP/1.1 101"):
            break
        cl = [l for l in head.lower().split(b"\r\n") if l.startswith(b"content-length:")]
        if cl and len(rest) >= int(cl[0].split(b":")[1]):
            break
    s.close()
    return data.decode("latin-1")
if n > 0:
    checked = refused = other = 0
    for i in range(n):
        d = request(password)
        if kind == "worker" and " 401 " in d.split("\r\n")[0]:
            if "too many failed logins" in d:
                refused += 1
            else:
                checked += 1
        elif kind == "hook" and " 429 " in d.split("\r\n")[0]:
            refused += 1
            if "retry-after:" not in d.lower():
                other += 1
        elif kind == "hook" and " 403 " in d.split("\r\n")[0]:
            checked += 1
        else:
            other += 1
    print(checked, refused, other)
else:
    # a correct login, retried every 100 ms while refused by the backoff (bounded)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        line = request(password).split("\r\n")[0]
        if " 101 " in line or " 200 " in line:
            print("# logged in")
            sys.exit(0)
        time.sleep(0.1)  # pacing between retries, not synchronisation
    print("still refused:", line)
    sys.exit(1)
PY

WLINES0=$(grep -c "worker login" "$M/master.log")
read -r checked refused other < <(timeout 120 /usr/bin/python3 "$TRASH/attack.py" worker "$WADDR" 200 wrong)
diag "worker: $checked checked, $refused refused by the backoff, $other other"
check "200 wrong worker passwords: at least 150 refused by the backoff" [ "${refused:-0}" -ge 150 ]
check "every attempt refused one way or the other" [ "${other:-1}" = 0 ]
WLINES=$(( $(grep -c "worker login" "$M/master.log") - WLINES0 ))
diag "worker log lines: $WLINES"
check "at most 15 log lines for them" [ "$WLINES" -le 15 ]
check "a correct worker login works after the backoff" timeout 60 /usr/bin/python3 "$TRASH/attack.py" worker "$WADDR" 0 w1-secret

HLINES0=$(grep -c "change hook" "$M/master.log")
read -r checked refused other < <(timeout 120 /usr/bin/python3 "$TRASH/attack.py" hook "${URL#http://}" 200 wrong)
diag "hook: $checked checked, $refused refused by the backoff (429), $other other"
check "200 wrong hook tokens: at least 150 answered 429" [ "${refused:-0}" -ge 150 ]
check "each 429 with Retry-After, nothing else" [ "${other:-1}" = 0 ]
HLINES=$(( $(grep -c "change hook" "$M/master.log") - HLINES0 ))
diag "hook log lines: $HLINES"
check "at most 5 log lines for them" [ "$HLINES" -le 5 ]
check "nothing stored" [ "$(api changes | jpy 'len(d["changes"])')" = 0 ]
check "the right token works after the backoff" timeout 60 /usr/bin/python3 "$TRASH/attack.py" hook "${URL#http://}" 0 hook-token
check "and stores its change" [ "$(api changes | jpy 'len(d["changes"])')" = 1 ]

# a real worker logs in from the same address (its earlier failures forgotten)
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "a real worker attaches" wait_for 30 worker_connected w1
done_testing
