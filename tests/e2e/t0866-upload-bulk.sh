#!/bin/bash
# 64 MiB uploads through the master's own frame reader (src/master/wsbulk.c,
# http-ws.c: once a worker sends a big binary frame the master reads its
# socket itself, not lws): kiln-worker and Debian's buildbot-worker 3.7
# deliver the file byte for byte (sha256); a raw-socket worker
# (wsbulk-worker.py) puts a ping between two fragments of a write, then a
# ping and a log line between writes, and gets its pongs, its answer and
# its file; a malformed frame mid-transfer closes that connection with 1002
# and a worker vanishing mid-frame ends its build, both leaving no
# temporary file nor descriptor, while the master keeps serving others.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-build.sh"

SRC=$TRASH/src.bin
head -c $((64 << 20)) /dev/urandom > "$SRC"
SUM=$(sha256sum < "$SRC" | cut -d' ' -f1)

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
for _, w in ipairs({ "w1", "bbw", "pw1", "pw2", "pw3" }) do
  worker { name = w, password = secret("w1") }
  builder { name = "up-" .. w, workers = { w },
            steps = { file_upload { workersrc = "$SRC", masterdest = "big.bin" } } }
end
builder { name = "small", workers = { "w1" }, steps = { shell { command = "true" } } }
LUA
printf 'bulk-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"

bulk_lines() { grep -c "reading its frames directly" "$M/master.log"; }
same_file() { [ "$(sha256sum < "$1" 2>/dev/null | cut -d' ' -f1)" = "$SUM" ]; }
no_tmp() { ! find "$M/artifacts" -name '.kiln-upload-*' 2>/dev/null | grep -q .; }
fds() { find /proc/"$MASTER_PID"/fd -mindepth 1 2>/dev/null | wc -l; }
# build_done BR: the id of request BR's first build once that build is complete
build_done() {
    b=$(build_of_request "$1")
    [ -n "$b" ] && [ "$(build_field "$b" complete)" = true ]
}
worker_gone() { ! worker_connected "$1"; }
fds_at_most() { [ "$(fds)" -le "$1" ]; }
not_success() { [ "$(build_field "$1" results)" != 0 ]; }

start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "kiln-worker attaches" wait_for 60 worker_connected w1
b=$(force_build up-w1 180)
check "kiln-worker: the upload succeeds" build_results_is "$b" 0
check "kiln-worker: the file arrived byte for byte" same_file "$M/artifacts/$b/big.bin"
check "kiln-worker: the master read its frames itself" [ "$(bulk_lines)" -ge 1 ]

if have_buildbot_worker; then
    start_buildbot_worker "$TRASH/bbw" bbw "$M/secrets/w1"
    check "buildbot-worker attaches" wait_for 40 worker_connected bbw
    n0=$(bulk_lines)
    b=$(force_build up-bbw 300)
    check "buildbot-worker: the upload succeeds" build_results_is "$b" 0
    check "buildbot-worker: the file arrived byte for byte" same_file "$M/artifacts/$b/big.bin"
    check "buildbot-worker: the master read its frames itself" [ "$(bulk_lines)" -gt "$n0" ]
fi

PROBE="/usr/bin/python3 $(dirname "$0")/wsbulk-worker.py $WADDR"
PASS=$(cat "$M/secrets/w1")

# interleave: pings between fragments and between writes, a log line
$PROBE pw1 "$PASS" interleave "$SRC" > "$TRASH/pw1.out" 2>&1 &
e2e_track $!
check "probe attaches" wait_for 60 worker_connected pw1
n0=$(bulk_lines)
b=$(force_build up-pw1 180)
check "probe: the upload succeeds" build_results_is "$b" 0
check "probe: the file arrived byte for byte" same_file "$M/artifacts/$b/big.bin"
check "probe: both pings answered with their payloads" grep -qx "pong ok" "$TRASH/pw1.out"
check "probe: the log line between writes answered" grep -qx "update answered" "$TRASH/pw1.out"
check "probe: the line is in the step's log" grep -q "interleaved line" <<<"$(log_text "$b" 1)"
check "probe: the master read its frames itself" [ "$(bulk_lines)" -gt "$n0" ]

# malformed: a reserved bit set mid-transfer
$PROBE pw2 "$PASS" malformed "$SRC" > "$TRASH/pw2.out" 2>&1 &
e2e_track $!
check "probe 2 attaches" wait_for 60 worker_connected pw2
br=$(force up-pw2)
check "malformed frame: the build ends" wait_for 120 build_done "$br"
b=$(build_of_request "$br")
check "malformed frame: not a success ($(build_field "$b" results))" not_success "$b"
check "malformed frame: closed with 1002" wait_for 60 grep -qx "closed 1002" "$TRASH/pw2.out"
check "malformed frame: the master says why" grep -q "bad WebSocket frame: reserved bits set" "$M/master.log"
check "malformed frame: no temporary file left" wait_for 60 no_tmp
check "malformed frame: the worker is gone" wait_for 60 worker_gone pw2

# disconnect: the connection dropped in the middle of a write's frame
fd0=$(fds)
$PROBE pw3 "$PASS" disconnect "$SRC" > "$TRASH/pw3.out" 2>&1 &
e2e_track $!
check "probe 3 attaches" wait_for 60 worker_connected pw3
br=$(force up-pw3)
check "disconnect: the build ends" wait_for 120 build_done "$br"
b=$(build_of_request "$br")
check "disconnect: not a success ($(build_field "$b" results))" not_success "$b"
check "disconnect: the probe did drop mid-frame" grep -qx "disconnected" "$TRASH/pw3.out"
check "disconnect: no temporary file left" wait_for 60 no_tmp
check "disconnect: no descriptor left (had $fd0)" wait_for 60 fds_at_most "$fd0"

# the master still serves: the API, and a build on kiln-worker
check "the master still answers the API" sh -c "curl -sS --max-time 10 '$URL/api/v2/workers' | grep -q '\"w1\"'"
b=$(force_build small 60)
check "and still runs builds" build_results_is "$b" 0
check "master still running" kill -0 "$MASTER_PID"
# kiln-worker and buildbot-worker are still attached, read by the master itself
check "the master stops cleanly with them attached" stop_pid "$MASTER_PID"
check "no sanitizer or lws complaint in its log" lacks "Sanitizer\|runtime error\|lws read a socket" "$(cat "$M/master.log")"
done_testing
