#!/bin/bash
# sqlite-only: a full disk under SQLite's file (ENOSPC on a tmpfs); PostgreSQL's server reports its own
# A full disk under the artifact folder or under the database (each a small
# tmpfs the test mounts, filled by a file it writes until ENOSPC):
# - artifacts: an upload that hits ENOSPC ends its step FAILURE with "No
#   space left on device" in its log, its partial file is removed, and the
#   next upload after space returns succeeds;
# - database: a build writing a large log fills it; the master stays up
#   (same pid), logs "database write failed: database or disk is full"
#   naming the database, serves reads, refuses writes with an error (500,
#   JSON-RPC error), does not spin; once the filler is removed it restarts
#   itself from the database: the interrupted build is retried, new builds
#   run, every acknowledged change is there and PRAGMA integrity_check is ok.
# Needs root for mount(8): skipped with the reason otherwise.
. "$(dirname "$0")/lib.sh"
require_cmd sqlite3

M=$TRASH/master
DBFS=$TRASH/dbfs
ARTFS=$M/artifacts
mkdir -p "$DBFS" "$ARTFS"
MOUNTED=""
t1350_cleanup() {
    # the processes first (a mounted folder in use cannot be unmounted)
    for p in $E2E_PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $E2E_PIDS; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done # bounded
        kill -KILL "$p" 2>/dev/null
    done
    for d in $MOUNTED; do umount "$d" 2>/dev/null || umount -l "$d"; done
    e2e_cleanup
}
trap t1350_cleanup EXIT
mount -t tmpfs -o size=16m kiln-t1350 "$DBFS" 2>/dev/null ||
    skip_all "cannot mount a tmpfs (mount -t tmpfs needs root)"
MOUNTED="$DBFS"
mount -t tmpfs -o size=8m kiln-t1350 "$ARTFS" 2>/dev/null || skip_all "cannot mount a second tmpfs"
MOUNTED="$ARTFS $DBFS"

BIG=$TRASH/big # while it exists, builder "log" writes ~6 MB of log once GO exists
GO=$TRASH/go
HP=$(free_port); WP=$(free_port) # fixed: the worker reconnects after the master's restart
new_master "$M" <<LUA
http = { listen = "127.0.0.1:$HP" }
workers_listen = "127.0.0.1:$WP"
database = "sqlite:$DBFS/state.sqlite"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1"), max_builds = 2 }
builder { name = "up", workers = { "w1" }, steps = {
  shell { name = "make", command = "head -c 3000000 /dev/urandom > out.bin" },
  file_upload { workersrc = "out.bin", masterdest = "out.bin" },
} }
builder { name = "log", workers = { "w1" }, steps = {
  shell { name = "talk", command = "if [ -e '$BIG' ]; then i=0; while [ ! -e '$GO' ] && [ \$i -lt 2400 ]; do sleep 0.05; i=\$((i+1)); done; head -c 4500000 /dev/urandom | base64; fi; echo done" },
} }
builder { name = "quick", workers = { "w1" }, steps = { shell { command = "echo quick" } } }
LUA
printf 'hook-token' > "$M/secrets/hook"
printf 'secret-%s' "$$" > "$M/secrets/w1"
ACKED=$TRASH/acked
: > "$ACKED"

# fill DIR: a file written until the file system is full (dd stops at ENOSPC)
fill() { dd if=/dev/zero of="$1/filler" bs=64k 2>/dev/null; [ "$(df --output=avail "$1" | tail -n 1 | tr -d ' ')" -lt 64 ]; }
change() { # REVISION: posts a change; prints the HTTP status
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Authorization: Bearer hook-token' \
        -H 'Content-Type: application/json' \
        -d "{\"author\": \"a\", \"branch\": \"main\", \"revision\": \"$1\", \"files\": [\"f\"]}" \
        "$URL/change_hook/base"
}
post() { c=$(change "$1"); [ "$c" = 200 ] && echo "$1" >> "$ACKED"; echo "$c"; }
results_of() { api "buildrequests/$1" | jpy 'd["buildrequests"][0]["results"]'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

check "master starts (database on a 16 MiB tmpfs, artifacts on an 8 MiB one)" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
for i in 1 2 3; do post "r$i" >/dev/null; done
check "three changes acknowledged" [ "$(wc -l < "$ACKED")" = 3 ]

# ---- 1. the artifact folder is full
check "the artifact tmpfs is filled to ENOSPC" fill "$ARTFS"
br=$(force up)
check "an upload onto the full disk completes" wait_for 120 request_done "$br"
check "... FAILURE or EXCEPTION" sh -c "r=\$1; [ \"\$r\" = 2 ] || [ \"\$r\" = 4 ]" _ "$(results_of "$br")"
b=$(build_of_request "$br")
up_log=$(log_text "$b" 2)
diag "upload log: $(printf '%s' "$up_log" | tr '\n' ' ' | cut -c1-300)"
st=$(api "builds/$b/steps/2" | jpy 'd["steps"][0]["state_string"]')
diag "upload step state: $st"
check "'No space left on device' is in the step's log or state" \
    sh -c "printf '%s %s' \"\$1\" \"\$2\" | grep -qi 'no space left on device'" _ "$up_log" "$st"
check "the partial file is removed (only the filler is left)" \
    sh -c "[ -z \"\$(find '$ARTFS' -type f ! -name filler)\" ]"
check "the master is still up" kill -0 "$MASTER_PID"
rm -f "$ARTFS/filler"
br=$(force up)
check "the next upload, with space back, completes" wait_for 120 request_done "$br"
check "... SUCCESS" [ "$(results_of "$br")" = 0 ]
b=$(build_of_request "$br")
check "... its file is whole (3000000 bytes)" [ "$(stat -c %s "$ARTFS/$b/out.bin" 2>/dev/null)" = 3000000 ]

# ---- 2. the database's disk is full
PID0=$MASTER_PID
touch "$BIG"
brlog=$(force log) # acknowledged before the disk fills; its step waits for GO
check "a build that will write a large log runs" wait_for 60 request_has_builds "$brlog" 1
check "the database tmpfs is filled to ENOSPC" fill "$DBFS"
touch "$GO"
# its log fills the disk; the WAL may still have had room: more large logs
# until a commit fails
full_logged() { grep -q 'database write failed: database or disk is full' "$M/master.log"; }
wait_for 60 full_logged
for i in 1 2 3; do
    full_logged && break
    force log >/dev/null 2>&1 # refused once the disk is full
    wait_for 60 full_logged
done
check "the master logs 'database write failed: database or disk is full'" full_logged
diag "$(grep -m1 'database write failed' "$M/master.log")"
check "... naming the database file" sh -c "grep 'database write failed' '$M/master.log' | grep -q '$DBFS/state.sqlite'"
check "the master is still up (same pid)" kill -0 "$PID0"
check "reads are served" [ "$(api builders/quick | jpy 'd["builders"][0]["name"]')" = quick ]
check "a change is refused with 500" [ "$(post r-full)" = 500 ]
force_err=$(rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$(api builders/quick | jpy 'd["builders"][0]["builderid"]')\",\"reason\":\"e2e\"}}")
diag "force on a full disk: $force_err"
check "a force is refused with a JSON-RPC error saying the disk is full" \
    [ "$(printf '%s' "$force_err" | jpy '"result" not in d and "disk is full" in d["error"]["message"]')" = true ]
# not spinning: a master that retried in a loop would burn ~2 s of CPU in
# this 2 s; one that waits on its back-off timer burns almost none (the
# sleep is the measured interval, not a synchronisation)
c0=$(cpu_ticks "$PID0"); sleep 2; c1=$(cpu_ticks "$PID0")
check "the holding master does not spin ($((c1 - c0)) ticks of CPU in 2 s)" [ $((c1 - c0)) -lt 50 ]

rm -f "$BIG" "$DBFS/filler"
check "space returns: the master restarts itself from the database" \
    wait_for 60 grep -q 'disk space is back' "$M/master.log"
check "... in the same process (pid $PID0)" kill -0 "$PID0"
check "the API answers again" wait_for 60 sh -c "curl -sf --max-time 5 '$URL/api/v2/builders' >/dev/null"
check "the worker attaches again" wait_for 120 worker_connected w1
check "a change is acknowledged again" [ "$(post r4)" = 200 ]
br=$(force quick)
check "a new build runs and finishes" wait_for 120 request_done "$br"
check "... SUCCESS" [ "$(results_of "$br")" = 0 ]
check "the build whose log filled the disk is retried and completes (no hang)" \
    wait_for 120 request_done "$brlog"
check "every request completes (the interrupted ones retried)" \
    wait_for 180 sh -c "[ \"\$(curl -s '$URL/api/v2/buildrequests?complete=false' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"meta\"][\"total\"])')\" = 0 ]"
check "every acknowledged change is stored" /usr/bin/python3 - "$URL" "$ACKED" <<'PY'
import json, sys, urllib.request
stored = {c["revision"] for c in json.load(urllib.request.urlopen(sys.argv[1] + "/api/v2/changes"))["changes"]}
acked = set(open(sys.argv[2]).read().split())
print("# acknowledged:", sorted(acked), "stored:", sorted(stored))
sys.exit(1 if acked - stored else 0)
PY
# SQLite 3.40's integrity_check wrongly reports the NOT NULL column of a
# WITHOUT ROWID table (users_info.userid) as NULL on any Kiln database with
# a change: that line is dropped only when no such row exists
ic=$(sqlite3 "$DBFS/state.sqlite" 'PRAGMA integrity_check' 2>&1)
if [ "$(sqlite3 "$DBFS/state.sqlite" 'SELECT count(*) FROM users_info WHERE userid IS NULL')" = 0 ]; then
    ic=$(printf '%s\n' "$ic" | grep -vx 'NULL value in users_info.userid')
    [ -z "$ic" ] && ic=ok
fi
check "PRAGMA integrity_check is ok ($ic)" [ "$ic" = ok ]
check "no crash in the log" sh -c "! grep -Eqi 'assert|segmentation|sanitizer' '$M/master.log'"
done_testing
