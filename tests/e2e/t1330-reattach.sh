#!/bin/bash
# asan-too
# Re-attach (docs/PROTOCOL.md "Re-attach"): a kiln-worker whose connection
# drops (a TCP proxy the test controls cuts it) and comes back within the
# master's workers_reattach_grace takes its running command back: the build
# ends SUCCESS without a RETRY and its log has every line exactly once, in
# order, the ones printed while it was away included.  Past a short grace
# (2 s), the build ends RETRY as before and the worker kills the command.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

# start_proxy NAME TARGET: sets PPORT (to connect to) and CPORT (control)
start_proxy() {
    $PY "$KILN_SRC/tests/e2e/tcp-proxy.py" "$2" "$TRASH/$1.ports" 2>"$TRASH/$1.err" &
    e2e_track $!
    wait_for 10 test -s "$TRASH/$1.ports" || return 1
    read -r PPORT CPORT < "$TRASH/$1.ports"
}
# proxy CPORT MODE: sets the proxy's mode; true once it answered
proxy() {
    exec 7<>"/dev/tcp/127.0.0.1/$1" || return 1
    echo "$2" >&7
    read -r -t 10 ans <&7
    exec 7>&-
    [ "$ans" = "ok $2" ]
}
# release FIFO: lets the step's `read` go on (bounded)
release() { timeout 20 sh -c "echo go > '$1'"; }

S=$TRASH/step
mkdir -p "$S"
mkfifo "$S/f1" "$S/f2" "$S/g1" "$S/h1"

# ---- within the grace -------------------------------------------------------
M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "lines", workers = { "w1" }, steps = {
  shell { name = "lines", command = { "sh", "-c",
    "for i in 1 2 3; do echo line-\$i; done; read x < $S/f1; " ..
    "for i in 4 5 6; do echo line-\$i; done; touch $S/part2; read x < $S/f2; " ..
    "for i in 7 8 9; do echo line-\$i; done" } },
} }
builder { name = "stop", workers = { "w1" }, steps = {
  shell { name = "block", command = { "sh", "-c", "echo \$\$ > $S/spid; read x < $S/h1" } },
} }
force_scheduler { name = "force", builders = { "lines", "stop" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
check "proxy starts" start_proxy p1 "$WADDR"
P1=$CPORT
"$KILN_WORKER" create "$TRASH/w" --master "127.0.0.1:$PPORT" --name w1 \
    --password-file "$M/secrets/w1" >/dev/null
"$KILN_WORKER" start "$TRASH/w" 2>>"$TRASH/w.log" &
WPID=$!
e2e_track $WPID
check "worker attaches through the proxy" wait_for 30 worker_connected w1

br=$(force lines)
b=""
has_build() { b=$(build_of_request "$br"); [ -n "$b" ]; }
check "build starts" wait_for 30 has_build
log_has() { log_text "$b" 1 | grep -qx "o$1"; }
check "first lines reach the master" wait_for 30 log_has line-3
check "proxy cuts the connection" proxy "$P1" cut
check "master holds the command" \
    wait_for 20 grep -q "worker=w1 lost with 1 command(s) running: holding them 60 s" "$M/master.log"
check "worker holds the command" wait_for 20 grep -q "connection lost: holding 1 command(s)" "$TRASH/w.log"
# the step goes on while the worker is away: these lines are buffered
check "step prints while away" release "$S/f1"
check "step got past its second part" wait_for 20 test -e "$S/part2"
check "proxy lets connections through again" proxy "$P1" open
check "master re-attaches the worker" \
    wait_for 30 grep -q "worker=w1 re-attached from .*: 1 command(s) continue" "$M/master.log"
check "lines printed while away arrive" wait_for 20 log_has line-6
check "step finishes" release "$S/f2"
check "request completes" wait_for 30 request_done "$br"
check "build is SUCCESS" [ "$(build_field "$b" results)" = 0 ]
check "one build only (no RETRY)" request_has_builds "$br" 1
got=$(log_text "$b" 1 | grep '^oline-' | tr '\n' ' ')
check "every line once, in order" [ "$got" = "oline-1 oline-2 oline-3 oline-4 oline-5 oline-6 oline-7 oline-8 oline-9 " ]
[ "$got" = "oline-1 oline-2 oline-3 oline-4 oline-5 oline-6 oline-7 oline-8 oline-9 " ] || diag "log: $got"
check "the step's log notes the reconnection once, as a header" \
    [ "$(log_text "$b" 1 | grep -c '^hworker reconnected after .* s away; the command went on')" = 1 ]

# ---- a stop asked while the worker is away is applied on its return ----------
br=$(force stop)
check "blocking build starts" wait_for 30 has_build
check "its command runs" wait_for 30 test -s "$S/spid"
spid=$(cat "$S/spid")
check "proxy cuts the connection again" proxy "$P1" cut
check "master holds the command again" \
    wait_for 20 grep -q "worker=w1 lost with 1 command(s) running: holding them 60 s" "$M/master.log"
check "stop is accepted while the worker is away" \
    [ "$(rpc "builds/$b" '{"jsonrpc":"2.0","id":2,"method":"stop","params":{"reason":"e2e stop"}}' | jpy 'd["result"]')" = null ]
check "proxy lets connections through again" proxy "$P1" open
check "the stopped build ends CANCELLED" wait_for 30 build_results_is "$b" 6
check "its command was killed" wait_for 20 sh -c "! kill -0 $spid 2>/dev/null"
check "no RETRY for it" request_has_builds "$br" 1

# ---- a worker that died comes back without the command: RETRY at once -----------
rm -f "$S/spid"
br=$(force stop)
check "another blocking build starts" wait_for 30 has_build
check "its command runs" wait_for 30 test -s "$S/spid"
spid=$(cat "$S/spid")
rm -f "$S/spid"
kill -KILL "$WPID"
three_holds() { [ "$(grep -c 'worker=w1 lost with 1 command(s) running' "$M/master.log")" -ge 3 ]; }
check "master holds the dead worker's command" wait_for 20 three_holds
kill "$spid" 2>/dev/null # the dead worker's orphan (kill -9 left it no chance)
"$KILN_WORKER" start "$TRASH/w" 2>>"$TRASH/w.log" &
WPID=$!
e2e_track $WPID
check "the restarted worker comes back without it" \
    wait_for 30 grep -q "worker=w1 re-attached from .*: 0 command(s) continue, some were lost" "$M/master.log"
check "the build ends RETRY at once" wait_for 10 build_results_is "$b" 5

# ---- the master stops while it holds a worker's command -----------------------
check "the retried build runs" wait_for 30 test -s "$S/spid"
check "proxy cuts the connection a third time" proxy "$P1" cut
four_holds() { [ "$(grep -c 'worker=w1 lost with 1 command(s) running' "$M/master.log")" -ge 4 ]; }
check "master holds the command" wait_for 20 four_holds
stop_pid "$MASTER_PID"
check "master stops cleanly while holding it" [ $? = 0 ]
check "no sanitizer report" sh -c "! grep -qE 'Sanitizer|runtime error' '$M/master.log'"

# ---- past a short grace -----------------------------------------------------
M2=$TRASH/master2
new_master "$M2" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
workers_reattach_grace = 2
worker { name = "w2", password = secret("w2") }
builder { name = "block", workers = { "w2" }, steps = {
  shell { name = "block", command = { "sh", "-c",
    "echo started; if [ ! -e $S/again ]; then echo \$\$ > $S/pid; read x < $S/g1; fi; echo done" } },
} }
force_scheduler { name = "force", builders = { "block" } }
LUA
printf 'e2e-secret2-%s' "$$" > "$M2/secrets/w2"
check "second master starts" start_master "$M2"
check "second proxy starts" start_proxy p2 "$WADDR"
P2=$CPORT
"$KILN_WORKER" create "$TRASH/w2" --master "127.0.0.1:$PPORT" --name w2 \
    --password-file "$M2/secrets/w2" >/dev/null
"$KILN_WORKER" start "$TRASH/w2" 2>>"$TRASH/w2.log" &
e2e_track $!
check "second worker attaches" wait_for 30 worker_connected w2
br=$(force block)
check "blocking build starts" wait_for 30 has_build
check "its command runs" wait_for 30 test -s "$S/pid"
pid=$(cat "$S/pid")
check "proxy cuts the connection" proxy "$P2" cut
check "master gives the command up after 2 s" \
    wait_for 20 grep -q "worker=w2 did not come back within 2 s: 1 held command(s) fail" "$M2/master.log"
check "build ends RETRY" wait_for 20 build_results_is "$b" 5
check "worker kills the command past its grace" \
    wait_for 20 grep -q "the master did not take it back in time, killing it" "$TRASH/w2.log"
check "no orphan process left" wait_for 20 sh -c "! kill -0 $pid 2>/dev/null"
touch "$S/again"
check "proxy lets connections through again" proxy "$P2" open
check "the retried build succeeds" wait_for 60 request_done "$br"
check "two builds for the request" request_has_builds "$br" 2

if [ "$E2E_FAILED" -ne 0 ]; then
    tail -30 "$M/master.log" | sed 's/^/# master: /'
    tail -30 "$TRASH/w.log" | sed 's/^/# w: /'
    tail -20 "$M2/master.log" | sed 's/^/# master2: /'
    tail -20 "$TRASH/w2.log" | sed 's/^/# w2: /'
fi
done_testing
