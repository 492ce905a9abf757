#!/bin/bash
# asan-too
# A worker's own reattach_grace (issue 13): with a long global
# workers_reattach_grace (600 s), worker w1 declares reattach_grace = 2 and
# w2 none.  Both connections are cut (a TCP proxy per worker, controlled by
# the test) while each runs a command: the master gives w1's command up
# after 2 s (the build ends RETRY, the worker kills the command: it too
# learnt 2 s in kiln_reattach), while it holds w2's for 600 s, and w2
# coming back takes its command back (SUCCESS, no RETRY).
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
release() { timeout 20 sh -c "echo go > '$1'"; }

S=$TRASH/step
mkdir -p "$S"
mkfifo "$S/f1" "$S/f2"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
workers_reattach_grace = 600
worker { name = "w1", password = secret("w"), reattach_grace = 2 }
worker { name = "w2", password = secret("w") }
builder { name = "short", workers = { "w1" }, steps = {
  shell { name = "block", command = { "sh", "-c",
    "echo started; if [ ! -e $S/again ]; then echo \$\$ > $S/pid1; read x < $S/f1; fi; echo done" } },
} }
builder { name = "long", workers = { "w2" }, steps = {
  shell { name = "block", command = { "sh", "-c",
    "echo started; echo \$\$ > $S/pid2; read x < $S/f2; echo done" } },
} }
force_scheduler { name = "force", builders = { "short", "long" } }
LUA
printf 'grace-secret-%s' "$$" > "$M/secrets/w"
check "master starts" start_master "$M"
check "proxy 1 starts" start_proxy p1 "$WADDR"
P1=$CPORT; PP1=$PPORT
check "proxy 2 starts" start_proxy p2 "$WADDR"
P2=$CPORT; PP2=$PPORT
for n in 1 2; do
    port=$PP1; [ $n = 2 ] && port=$PP2
    "$KILN_WORKER" create "$TRASH/w$n" --master "127.0.0.1:$port" --name "w$n" \
        --password-file "$M/secrets/w" >/dev/null
    "$KILN_WORKER" start "$TRASH/w$n" 2>>"$TRASH/w$n.log" &
    e2e_track $!
done
check "w1 attaches through its proxy" wait_for 30 worker_connected w1
check "w2 attaches through its proxy" wait_for 30 worker_connected w2

br1=$(force short)
br2=$(force long)
b1=""; b2=""
has_b1() { b1=$(build_of_request "$br1"); [ -n "$b1" ]; }
has_b2() { b2=$(build_of_request "$br2"); [ -n "$b2" ]; }
check "w1's build starts" wait_for 30 has_b1
check "w2's build starts" wait_for 30 has_b2
check "w1's command runs" wait_for 30 test -s "$S/pid1"
check "w2's command runs" wait_for 30 test -s "$S/pid2"
pid1=$(cat "$S/pid1")

check "proxy 1 cuts w1's connection" proxy "$P1" cut
check "proxy 2 cuts w2's connection" proxy "$P2" cut
check "master holds w1's command for w1's own 2 s" \
    wait_for 20 grep -q "worker=w1 lost with 1 command(s) running: holding them 2 s" "$M/master.log"
check "master holds w2's command for the global 600 s" \
    wait_for 20 grep -q "worker=w2 lost with 1 command(s) running: holding them 600 s" "$M/master.log"
check "master gives w1's command up after 2 s" \
    wait_for 20 grep -q "worker=w1 did not come back within 2 s: 1 held command(s) fail" "$M/master.log"
check "w1's build ends RETRY" wait_for 20 build_results_is "$b1" 5
check "w1 kills its command past its 2 s" \
    wait_for 20 grep -q "the master did not take it back in time, killing it" "$TRASH/w1.log"
check "no orphan process left" wait_for 20 sh -c "! kill -0 $pid1 2>/dev/null"
check "w2's build still runs (held)" [ "$(build_field "$b2" complete)" = false ]
check "the master did not give w2's command up" sh -c "! grep -q 'worker=w2 did not come back' '$M/master.log'"

check "proxy 2 lets w2 through again" proxy "$P2" open
check "master re-attaches w2 with its command" \
    wait_for 30 grep -q "worker=w2 re-attached from .*: 1 command(s) continue" "$M/master.log"
check "w2's step finishes" release "$S/f2"
check "w2's request completes" wait_for 30 request_done "$br2"
check "w2's build is SUCCESS" [ "$(build_field "$b2" results)" = 0 ]
check "one build only for it (no RETRY)" request_has_builds "$br2" 1

touch "$S/again"
check "proxy 1 lets w1 through again" proxy "$P1" open
check "w1's retried build succeeds" wait_for 60 request_done "$br1"
check "two builds for w1's request" request_has_builds "$br1" 2
check "no error in master.log" sh -c "! grep -E ' (error|crit) ' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"

if [ "$E2E_FAILED" -ne 0 ]; then
    tail -30 "$M/master.log" | sed 's/^/# master: /'
    tail -20 "$TRASH/w1.log" | sed 's/^/# w1: /'
    tail -20 "$TRASH/w2.log" | sed 's/^/# w2: /'
fi
done_testing
