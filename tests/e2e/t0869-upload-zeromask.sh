#!/bin/bash
# asan-too
# Uploads read by the master straight into the message buffer (http-ws.c,
# wsbulk_direct_room) with the masking keys RFC 6455 lets a client pick:
# kiln-worker's all-zero keys for big frames (neither side then passes over
# the payload), a raw-socket worker's (wsbulk-keys.py) all-zero, random, and
# mixed keys frame by frame with fragments and a ping between them, writes of
# varied sizes: every file arrives byte for byte (sha256); a malformed frame
# after zero-key writes closes with 1002, leaves no temporary file, and the
# master serves on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-build.sh"

SRC=$TRASH/src.bin
head -c $((24 << 20)) /dev/urandom > "$SRC"
head -c 12345 /dev/urandom >> "$SRC" # not a whole number of blocks
SUM=$(sha256sum < "$SRC" | cut -d' ' -f1)

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
for _, w in ipairs({ "w1", "pz", "pr", "pm", "pbad" }) do
  worker { name = w, password = secret("w1") }
  builder { name = "up-" .. w, workers = { w },
            steps = { file_upload { workersrc = "$SRC", masterdest = "big.bin" } } }
end
LUA
printf 'zeromask-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"

bulk_lines() { grep -c "reading its frames directly" "$M/master.log"; }
same_file() { [ "$(sha256sum < "$1" 2>/dev/null | cut -d' ' -f1)" = "$SUM" ]; }
no_tmp() { ! find "$M/artifacts" -name '.kiln-upload-*' 2>/dev/null | grep -q .; }
build_done() {
    b=$(build_of_request "$1")
    [ -n "$b" ] && [ "$(build_field "$b" complete)" = true ]
}
worker_gone() { ! worker_connected "$1"; }
not_success() { [ "$(build_field "$1" results)" != 0 ]; }

start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "kiln-worker attaches" wait_for 20 worker_connected w1
for i in 1 2; do
    b=$(force_build up-w1 180)
    check "kiln-worker (zero keys), upload $i succeeds" build_results_is "$b" 0
    check "kiln-worker, upload $i: byte for byte" same_file "$M/artifacts/$b/big.bin"
done
check "kiln-worker: the master read its frames itself" [ "$(bulk_lines)" -ge 1 ]

PROBE="/usr/bin/python3 $(dirname "$0")/wsbulk-keys.py $WADDR"
PASS=$(cat "$M/secrets/w1")
for mode in zero random mixed; do
    name=p${mode:0:1}
    n0=$(bulk_lines)
    $PROBE "$name" "$PASS" "$mode" "$SRC" > "$TRASH/$name.out" 2>&1 &
    e2e_track $!
    check "probe '$mode' attaches" wait_for 20 worker_connected "$name"
    b=$(force_build "up-$name" 180)
    check "probe '$mode': the upload succeeds" build_results_is "$b" 0
    check "probe '$mode': byte for byte" same_file "$M/artifacts/$b/big.bin"
    check "probe '$mode': the probe finished" wait_for 20 grep -qx "upload complete" "$TRASH/$name.out"
    check "probe '$mode': the master read its frames itself" [ "$(bulk_lines)" -gt "$n0" ]
done
check "probe 'mixed': every ping between fragments answered" \
    grep -qx "pongs $(((24 * 4 * 1024 * 1024 / (256 * 1024 + 7 + 70000 + 1000 + 100 * 1024) + 1) / 5))" "$TRASH/pm.out"

$PROBE pbad "$PASS" malformed "$SRC" > "$TRASH/pbad.out" 2>&1 &
e2e_track $!
check "probe 'malformed' attaches" wait_for 20 worker_connected pbad
br=$(force up-pbad)
check "malformed frame: the build ends" wait_for 120 build_done "$br"
b=$(build_of_request "$br")
check "malformed frame: not a success ($(build_field "$b" results))" not_success "$b"
check "malformed frame: closed with 1002" wait_for 20 grep -qx "closed 1002" "$TRASH/pbad.out"
check "malformed frame: the master says why" grep -q "bad WebSocket frame: reserved bits set" "$M/master.log"
check "malformed frame: no temporary file left" wait_for 20 no_tmp
check "malformed frame: the worker is gone" wait_for 20 worker_gone pbad

b=$(force_build up-w1 180)
check "after all that, kiln-worker uploads byte for byte" same_file "$M/artifacts/$b/big.bin"
check "master still running" kill -0 "$MASTER_PID"
check "the master stops cleanly" stop_pid "$MASTER_PID"
check "no sanitizer or lws complaint in its log" lacks "Sanitizer\|runtime error\|lws read a socket" "$(cat "$M/master.log")"
done_testing
