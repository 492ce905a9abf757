#!/bin/bash
# asan-too
# Host and Origin checks (issue 9): a DNS name the master does not know is
# refused on every request (DNS rebinding), and a /ws upgrade or a POST from
# another site (Origin, Sec-Fetch-Site: cross-site) is refused with 403
# before it reaches the event stream, the JSON-RPC or an open change hook.
# Requests without Origin (curl, the kiln client, webhooks) still work, and
# the configured url's name and origin are accepted.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
url = "https://ci.example.org/"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = {}
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { name = "x", command = "true" } } }
force_scheduler { name = "force", builders = { "b" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
ADDR=${URL#http://}

cat > "$TRASH/probe.py" <<'PY'
import json, re, socket, sys

addr = sys.argv[1]
host, port = addr.rsplit(":", 1)


def raw(method, path, headers, body=b""):
    """One request on its own connection; returns (status, body) or (0, why)."""
    s = socket.create_connection((host, int(port)), timeout=10)
    try:
        lines = ["%s %s HTTP/1.1" % (method, path)]
        lines += ["%s: %s" % kv for kv in headers]
        if method == "POST":
            lines.append("Content-Length: %d" % len(body))
        lines.append("Connection: close")
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = b""
        while True:  # the head, then Content-Length bytes of body (or EOF); a 101 has none
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                if head.startswith(b"HTTP/1.1 101"):
                    break
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m and len(rest) >= int(m.group(1)):
                    break
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), rest.decode(errors="replace")
    except (OSError, ValueError, IndexError) as e:
        return 0, repr(e)
    finally:
        s.close()


WSH = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
       ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
FORM = b"author=mallory&comments=cross-site&branch=main"
FORCE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "force",
                    "params": {"builderNames": ["b"], "reason": "x"}}).encode()
case = sys.argv[2]
if case == "get-evil-host":
    st, body = raw("GET", "/api/v2/builders", [("Host", "evil.example:" + port)])
    print(st, json.loads(body)["error"] if st == 403 else body[:80])
elif case == "get-ip-host":
    print(raw("GET", "/api/v2/builders", [("Host", addr)])[0])
elif case == "get-url-host":
    print(raw("GET", "/api/v2/builders", [("Host", "ci.example.org")])[0])
elif case == "get-evil-origin":
    # a cross-origin GET is answered (the browser keeps it from the page)
    print(raw("GET", "/api/v2/builders", [("Host", addr), ("Origin", "http://evil.example")])[0])
elif case == "ws-evil-origin":
    st, body = raw("GET", "/ws", [("Host", addr), ("Origin", "http://evil.example")] + WSH)
    print(st, json.loads(body)["error"] if st == 403 else body[:80])
elif case == "ws-null-origin":
    print(raw("GET", "/ws", [("Host", addr), ("Origin", "null")] + WSH)[0])
elif case == "ws-evil-host":
    print(raw("GET", "/ws", [("Host", "evil.example:" + port)] + WSH)[0])
elif case == "ws-same-origin":
    print(raw("GET", "/ws", [("Host", addr), ("Origin", "http://" + addr)] + WSH)[0])
elif case == "ws-url-origin":
    print(raw("GET", "/ws", [("Host", addr), ("Origin", "https://ci.example.org")] + WSH)[0])
elif case == "ws-no-origin":
    print(raw("GET", "/ws", [("Host", addr)] + WSH)[0])
elif case == "hook-evil-origin":
    st, body = raw("POST", "/change_hook/base",
                   [("Host", addr), ("Origin", "http://evil.example"),
                    ("Content-Type", "application/x-www-form-urlencoded")], FORM)
    print(st, json.loads(body)["error"] if st == 403 else body[:80])
elif case == "hook-cross-site":
    print(raw("POST", "/change_hook/base",
              [("Host", addr), ("Sec-Fetch-Site", "cross-site"),
               ("Content-Type", "application/x-www-form-urlencoded")], FORM)[0])
elif case == "force-evil-origin":
    print(raw("POST", "/api/v2/forceschedulers/force",
              [("Host", addr), ("Origin", "http://evil.example"),
               ("Content-Type", "text/plain")], FORCE)[0])
elif case == "force-cross-site":
    print(raw("POST", "/api/v2/forceschedulers/force",
              [("Host", addr), ("Sec-Fetch-Site", "cross-site"),
               ("Content-Type", "application/json")], FORCE)[0])
elif case == "force-evil-host":
    print(raw("POST", "/api/v2/forceschedulers/force",
              [("Host", "rebound.evil.example"), ("Content-Type", "application/json")], FORCE)[0])
elif case == "hook-same-origin":
    print(raw("POST", "/change_hook/base",
              [("Host", addr), ("Origin", "http://" + addr), ("Sec-Fetch-Site", "same-origin"),
               ("Content-Type", "application/x-www-form-urlencoded")], FORM)[0])
PY
probe() { timeout 30 /usr/bin/python3 "$TRASH/probe.py" "$ADDR" "$1"; }
is() { r=$(probe "$1"); [ "$r" = "$2" ] || { diag "$1: got '$r', want '$2'"; return 1; }; }
has() { r=$(probe "$1"); case $r in "$2"*"$3"*) ;; *) diag "$1: got '$r'"; return 1 ;; esac; }

check "GET with Host evil.example: 403 naming the Host" has get-evil-host 403 "Host header"
check "GET with the IP literal Host: 200" is get-ip-host 200
check "GET with the configured url's host: 200" is get-url-host 200
check "cross-origin GET still answered" is get-evil-origin 200
check "/ws with Origin http://evil.example: 403 naming the Origin" has ws-evil-origin 403 "Origin"
check "/ws with Origin null: 403" is ws-null-origin 403
check "/ws with Host evil.example: 403" is ws-evil-host 403
check "/ws from the same origin: 101" is ws-same-origin 101
check "/ws from the configured url's origin: 101" is ws-url-origin 101
check "/ws without Origin: 101" is ws-no-origin 101
check "cross-site form post to the open base hook: 403" has hook-evil-origin 403 "cross-origin"
check "post to the base hook with Sec-Fetch-Site: cross-site: 403" is hook-cross-site 403
check "cross-origin text/plain force: 403" is force-evil-origin 403
check "force with Sec-Fetch-Site: cross-site: 403" is force-cross-site 403
check "force with a rebound Host: 403" is force-evil-host 403
check "no change and no buildset came of them" \
    [ "$(api changes | jpy 'd["meta"]["total"]')-$(api buildsets | jpy 'd["meta"]["total"]')" = 0-0 ]
check "same-origin post to the base hook: 200" is hook-same-origin 200
check "curl without Origin still changes things" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -d 'author=ann&branch=main' "$URL/change_hook/base")" = 200 ]
check "two changes now" [ "$(api changes | jpy 'd["meta"]["total"]')" = 2 ]
check "no errors or sanitizer reports in the log" sh -c "! grep -qE 'Z (error|warn ) |AddressSanitizer|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
