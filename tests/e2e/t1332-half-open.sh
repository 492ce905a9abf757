#!/bin/bash
# asan-too
# A half-open worker connection is detected by the master's keepalive
# (workers_keepalive = { interval = 1, timeout = 3 }) within a bounded time:
# a kiln-worker frozen with SIGSTOP (the kernel still holds its socket open),
# and a kiln-worker behind a TCP proxy that stops forwarding without closing
# anything.  Both show disconnected in /api/v2/workers and the master logs
# the loss; without the setting the master would wait 180 s.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
workers_keepalive = { interval = 1, timeout = 3 }
worker { name = "frozen", password = secret("frozen") }
worker { name = "holed", password = secret("holed") }
builder { name = "b", workers = { "frozen", "holed" }, steps = {
  shell { name = "hello", command = { "sh", "-c", "echo hello" } },
} }
LUA
printf 'e2e-a-%s' "$$" > "$M/secrets/frozen"
printf 'e2e-b-%s' "$$" > "$M/secrets/holed"
check "master starts" start_master "$M"

worker_disconnected() {
    [ "$(api "workers/$1" | jpy 'len(d["workers"][0]["connected_to"])' 2>/dev/null)" = 0 ]
}

# ---- a frozen worker ----------------------------------------------------------
start_worker "$TRASH/wf" frozen "$M/secrets/frozen"
WF=$WORKER_PID
check "worker attaches" wait_for 30 worker_connected frozen
kill -STOP "$WF"
t0=$(date +%s)
check "frozen worker shown disconnected within 10 s" wait_for 10 worker_disconnected frozen
t1=$(date +%s)
check "master logged the loss" grep -q "worker=frozen disconnected" "$M/master.log"
diag "frozen worker detected in about $((t1 - t0)) s"
kill -CONT "$WF"
check "thawed worker attaches again" wait_for 30 worker_connected frozen

# ---- a black hole between worker and master --------------------------------------
$PY "$KILN_SRC/tests/e2e/tcp-proxy.py" "$WADDR" "$TRASH/p.ports" 2>"$TRASH/p.err" &
e2e_track $!
check "proxy starts" wait_for 10 test -s "$TRASH/p.ports"
read -r PPORT CPORT < "$TRASH/p.ports"
"$KILN_WORKER" create "$TRASH/wh" --master "127.0.0.1:$PPORT" --name holed \
    --password-file "$M/secrets/holed" >/dev/null
"$KILN_WORKER" start "$TRASH/wh" 2>>"$TRASH/wh.log" &
e2e_track $!
check "worker attaches through the proxy" wait_for 30 worker_connected holed
blackhole() {
    exec 7<>"/dev/tcp/127.0.0.1/$CPORT" || return 1
    echo blackhole >&7
    read -r -t 10 ans <&7
    exec 7>&-
    [ "$ans" = "ok blackhole" ]
}
check "proxy stops forwarding" blackhole
t0=$(date +%s)
check "black-holed worker shown disconnected within 10 s" wait_for 10 worker_disconnected holed
t1=$(date +%s)
check "master logged the loss" grep -q "worker=holed disconnected" "$M/master.log"
diag "black-holed worker detected in about $((t1 - t0)) s"

if [ "$E2E_FAILED" -ne 0 ]; then
    tail -30 "$M/master.log" | sed 's/^/# master: /'
fi
done_testing
