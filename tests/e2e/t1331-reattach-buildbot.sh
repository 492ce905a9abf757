#!/bin/bash
# asan-too
# Re-attach is a Kiln extension: Debian's buildbot-worker 3.7 does not
# advertise it, so a cut connection (a TCP proxy the test controls) keeps
# Buildbot's semantics: the running build ends RETRY at once, the retried
# build runs once the worker is back.  The master never sends it the Kiln-only
# kiln_reattach request.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! command -v buildbot-worker >/dev/null; then
    echo "ok 1 - buildbot-worker not installed # SKIP"; echo "1..1"; exit 0
fi

start_proxy() {
    $PY "$KILN_SRC/tests/e2e/tcp-proxy.py" "$2" "$TRASH/$1.ports" 2>"$TRASH/$1.err" &
    e2e_track $!
    wait_for 10 test -s "$TRASH/$1.ports" || return 1
    read -r PPORT CPORT < "$TRASH/$1.ports"
}
proxy() {
    exec 7<>"/dev/tcp/127.0.0.1/$1" || return 1
    echo "$2" >&7
    read -r -t 10 ans <&7
    exec 7>&-
    [ "$ans" = "ok $2" ]
}

S=$TRASH/step
mkdir -p "$S"
mkfifo "$S/g1"
M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "bbw", password = secret("bbw") }
builder { name = "block", workers = { "bbw" }, steps = {
  shell { name = "block", command = { "sh", "-c",
    "echo started; if [ ! -e $S/again ]; then echo \$\$ > $S/pid; read x < $S/g1; fi; echo done" } },
} }
force_scheduler { name = "force", builders = { "block" } }
LUA
printf 'bb-secret-%s' "$$" > "$M/secrets/bbw"
check "master starts" start_master "$M"
check "proxy starts" start_proxy p "$WADDR"
W=$TRASH/bbworker
buildbot-worker create-worker -q --protocol msgpack_experimental_v7 "$W" "127.0.0.1:$PPORT" \
    bbw "$(cat "$M/secrets/bbw")" >/dev/null
buildbot-worker start --nodaemon "$W" >"$W.log" 2>&1 &
e2e_track $!
check "buildbot-worker attaches through the proxy" wait_for 40 worker_connected bbw
br=$(force block)
b=""
has_build() { b=$(build_of_request "$br"); [ -n "$b" ]; }
check "build starts" wait_for 30 has_build
check "its command runs" wait_for 30 test -s "$S/pid"
check "proxy cuts the connection" proxy "$CPORT" cut
check "build ends RETRY at once" wait_for 20 build_results_is "$b" 5
# buildbot-worker 3.7 leaves the command of a lost connection running (its
# output goes nowhere): the test ends it by pid, not to leave it behind
kill "$(cat "$S/pid")" 2>/dev/null
check "master held nothing" sh -c "! grep -q 'holding them' '$M/master.log'"
check "master sent no kiln_reattach" sh -c "! grep -q 'kiln_reattach' '$W.log' '$M/master.log'"
touch "$S/again"
check "proxy lets connections through again" proxy "$CPORT" open
check "the retried build succeeds" wait_for 90 request_done "$br"
check "two builds for the request" request_has_builds "$br" 2
b2=$(build_of_request "$br")
check "the second build is SUCCESS" [ "$(build_field "$b2" results)" = 0 ]

if [ "$E2E_FAILED" -ne 0 ]; then
    tail -30 "$M/master.log" | sed 's/^/# master: /'
    tail -30 "$W.log" | sed 's/^/# bbw: /'
fi
done_testing
