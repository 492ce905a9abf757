#!/bin/bash
# File transfers against real workers (kiln-worker, then Debian's
# buildbot-worker 3.7): kiln-xfer-probe, a test-only master built from the
# master's own modules, runs upload_file (keepstamp, mode), upload_directory
# (gz), download_file (mode 0600) and a string download directly on the
# attached worker (the steps that will run them are not wired yet).  The
# uploaded bytes, tree, times and modes, and the downloaded bytes, are
# compared with their sources; a download is never an empty file (Buildbot
# 3.7's master answers nil and its workers write 0 bytes).
. "$(dirname "$0")/lib.sh"

PROBE=$KILN_BUILD/src/master/kiln-xfer-probe
[ -x "$PROBE" ] || skip_all "kiln-xfer-probe not built"

# run_probe KIND: a master dir, a worker of KIND, the probe's RESULT lines
run_probe() {
    kind=$1
    M=$TRASH/m-$kind
    new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }
LUA
    printf 'xfer-secret-%s' "$$" > "$M/secrets/w1"
    head -c 200000 /dev/urandom > "$M/dl-src.bin"
    "$PROBE" "$M" >"$M/probe.out" 2>"$M/probe.log" &
    ppid=$!
    e2e_track $ppid
    wait_for 60 test -s "$M/ports" || { diag "probe did not start"; return 1; }
    WADDR=$(master_addr "$M" workers)
    W=$TRASH/w-$kind
    mkdir -p "$W/xfer/tree/sub/deeper"
    head -c 700000 /dev/urandom > "$W/xfer/src.bin"
    touch -d '2001-02-03 04:05:06' "$W/xfer/src.bin"
    echo hello > "$W/xfer/tree/a.txt"
    head -c 50000 /dev/urandom > "$W/xfer/tree/sub/b.bin"
    : > "$W/xfer/tree/sub/deeper/empty"
    ln -s ../a.txt "$W/xfer/tree/sub/link"
    if [ "$kind" = kiln ]; then
        "$KILN_WORKER" create "$W" --master "$WADDR" --name w1 --password-file "$M/secrets/w1" \
            >/dev/null
        "$KILN_WORKER" start "$W" 2>>"$W.log" &
    else
        buildbot-worker create-worker -q --protocol msgpack_experimental_v7 "$W" \
            "${WADDR%:*}:${WADDR##*:}" w1 "$(cat "$M/secrets/w1")" >/dev/null
        buildbot-worker start --nodaemon "$W" >"$W.log" 2>&1 &
    fi
    wpid=$!
    e2e_track $wpid
    wait_for 120 sh -c "! kill -0 $ppid 2>/dev/null"
    wait $ppid
    pst=$?
    stop_pid $wpid
    [ $pst -eq 0 ] || { diag "probe exit $pst"; sed 's/^/# /' "$M/probe.out" "$M/probe.log" | tail -n 20; }
    return 0
}

result_ok() { grep -q "^RESULT $1 status=0 failure=no res_status=0 done=1 .* rc=0 " "$M/probe.out"; }

check_kind() {
    kind=$1
    run_probe "$kind"
    A=$M/artifacts/1
    check "$kind: upload_file succeeded" result_ok upload_file
    check "$kind: uploaded bytes equal" cmp -s "$W/xfer/src.bin" "$A/up/src.bin"
    check "$kind: upload sha256 reported" grep -q "^SHA256 upload_file $(sha256sum <"$W/xfer/src.bin" | cut -d' ' -f1)\$" "$M/probe.out"
    check "$kind: mode applied (0640)" [ "$(stat -c %a "$A/up/src.bin" 2>/dev/null)" = 640 ]
    check "$kind: keepstamp kept the mtime" [ "$(stat -c %Y "$A/up/src.bin" 2>/dev/null)" = "$(stat -c %Y "$W/xfer/src.bin")" ]
    check "$kind: no temporary file left" sh -c "! ls -A '$A/up' '$A' | grep -q kiln-upload"
    check "$kind: upload_directory succeeded" result_ok upload_directory
    check "$kind: directory tree equal" diff -r --no-dereference "$W/xfer/tree" "$A/tree"
    check "$kind: symlink kept as a link" [ "$(readlink "$A/tree/sub/link")" = ../a.txt ]
    check "$kind: download_file succeeded" result_ok download_file
    check "$kind: downloaded bytes equal (not empty)" cmp -s "$M/dl-src.bin" "$W/xfer/dl.bin"
    check "$kind: download mode 0600" [ "$(stat -c %a "$W/xfer/dl.bin" 2>/dev/null)" = 600 ]
    check "$kind: string download succeeded" result_ok download_string
    check "$kind: string downloaded" [ "$(cat "$W/xfer/str.txt" 2>/dev/null)" = '{"branch": "main", "n": 42}' ]
}

check_kind kiln
if command -v buildbot-worker >/dev/null; then
    check_kind buildbot
else
    ok "buildbot-worker not installed # SKIP"
fi
done_testing
