#!/bin/bash
# Compatibility: Debian's buildbot-worker 3.7 (msgpack_experimental_v7)
# attaches to a Kiln master and runs a shell build to SUCCESS and a failing
# one to FAILURE, with the output stored in Kiln's logs; with a wrong
# password it is refused with a 401 it understands (an HTTP/1.1 answer, not
# one it rejects as "Unsupported HTTP version").
. "$(dirname "$0")/lib.sh"

if ! command -v buildbot-worker >/dev/null; then
    echo "ok 1 - buildbot-worker not installed # SKIP"; echo "1..1"; exit 0
fi
M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "bbw", password = secret("bbw") }
builder { name = "pass", workers = { "bbw" }, steps = {
  shell { name = "echo", command = { "sh", "-c", "echo from-buildbot-worker; echo err-line >&2" } },
  shell { name = "string", command = "echo via-shell-string && pwd" },
} }
builder { name = "fail", workers = { "bbw" }, steps = {
  shell { name = "exit4", command = "echo failing; exit 4" },
} }
force_scheduler { name = "force", builders = { "pass", "fail" } }
LUA
printf 'bb-secret-%s' "$$" > "$M/secrets/bbw"
check "master starts" start_master "$M"

W=$TRASH/bbworker
buildbot-worker create-worker -q --protocol msgpack_experimental_v7 "$W" "${WADDR%:*}:${WADDR##*:}" \
    bbw "$(cat "$M/secrets/bbw")" >/dev/null
# run in the foreground (nodaemon) so this test owns its pid
buildbot-worker start --nodaemon "$W" >"$W.log" 2>&1 &
e2e_track $!
check "buildbot-worker attaches" wait_for 40 worker_connected bbw
check "worker info comes from the Buildbot worker" sh -c "curl -s $URL/api/v2/workers/bbw | grep -q '3.7'"

br=$(force pass)
check "pass request completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "build on buildbot-worker is SUCCESS" [ "$(build_field "$b" results)" = 0 ]
txt=$(log_text "$b" 1)
check "stdout stored" grep -qx 'ofrom-buildbot-worker' <<<"$txt"
check "stderr stored" grep -qx 'eerr-line' <<<"$txt"
txt=$(log_text "$b" 2)
check "string command ran through the shell" grep -qx 'ovia-shell-string' <<<"$txt"
check "workdir is the builder's build dir" grep -qx "o$W/pass/build" <<<"$txt"

br=$(force fail)
check "fail request completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "failing build on buildbot-worker is FAILURE" [ "$(build_field "$b" results)" = 2 ]
txt=$(log_text "$b" 1)
check "exit code 4 recorded" grep -qx 'hprogram finished with exit code 4' <<<"$txt"

# A wrong password: the handshake fails on the 401 itself.
W2=$TRASH/bbworker-wrong
buildbot-worker create-worker -q --protocol msgpack_experimental_v7 "$W2" \
    "${WADDR%:*}:${WADDR##*:}" bbw "not-the-password" >/dev/null
buildbot-worker start --nodaemon "$W2" >"$W2.log" 2>&1 &
wpid=$!
e2e_track $wpid
check "wrong password: buildbot-worker logs the 401" \
    wait_for 40 grep -qE 'upgrade failed [[(]401' "$W2/twistd.log"
check "wrong password: no 'Unsupported HTTP version'" \
    sh -c "! grep -q 'Unsupported HTTP version' '$W2/twistd.log' '$W2.log'"
check "wrong password: the good worker stays attached" worker_connected bbw
stop_pid $wpid
done_testing
