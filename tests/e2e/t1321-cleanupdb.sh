#!/bin/bash
# asan-too
# `kiln cleanupdb BASEDIR [--dry-run]` (slice "retention"): refused while the
# master runs (its lock on BASEDIR/pid); with the master stopped and
# master.lua's retention = { } tightened, --dry-run counts and changes
# nothing, then the real run purges (the builds are gone from the API once
# the master is back, their artifact files too) and the VACUUM shrinks the
# database file (on PostgreSQL: the sizes are printed; a plain VACUUM gives
# little back to the system).  On both backends (db_sql).
. "$(dirname "$0")/lib.sh"
require_cmd curl

M=$TRASH/master
W=$TRASH/w1
WPORT=$(free_port)
conf() {
    new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:$WPORT"
worker { name = "w1", password = secret("w1") }
$1
builder { name = "big", workers = { "w1" }, steps = {
  shell { command = "head -c 1500000 /dev/urandom | base64; head -c 3000 /dev/urandom > a.bin" },
  file_upload { workersrc = "a.bin", masterdest = "a.bin" },
} }
LUA
}
conf ''
printf 'cdb-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$W" w1 "$M/secrets/w1"
check "kiln-worker attaches" wait_for 30 worker_connected w1
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/api/v2/$1"; }
run() { local br; br=$(force "$1") || return 1; wait_for 120 request_done "$br" || return 1; build_of_request "$br"; }
b1=$(run big); b2=$(run big); b3=$(run big)
check "three builds succeed" sh -c "[ '$(build_field "$b1" results)' = 0 ] && [ '$(build_field "$b3" results)' = 0 ]"

out=$("$KILN" cleanupdb "$M" 2>&1); rc=$?
check "refused while the master runs ($out)" [ "$rc" = 1 ]
check "saying a master is running" grep -q 'a master is running' <<<"$out"
check "the master keeps serving" [ "$(status_of "builds/$b1")" = 200 ]
check "master stops" stop_pid "$MASTER_PID"

conf 'retention = { builds = { keep_per_builder = 1 } }'
db=$M/state.sqlite
count() { db_sql "$M" "SELECT count(*) FROM builds"; }
out=$("$KILN" cleanupdb "$M" --dry-run 2>&1); rc=$?
diag "$(tr "\n" " " <<<"$out")"
check "--dry-run succeeds" [ "$rc" = 0 ]
check "--dry-run says what would go" grep -q "would purge 2 builds" <<<"$out"
would=$(sed -n 's/^would purge \(.*\)$/\1/p' <<<"$out")
check "--dry-run changes nothing" [ "$(count)" = 3 ]
check "--dry-run leaves the files" test -e "$M/artifacts/$b1"
out=$("$KILN" cleanupdb "$M" 2>&1); rc=$?
diag "$(tr "\n" " " <<<"$out")"
check "cleanupdb succeeds" [ "$rc" = 0 ]
check "it purged the 2 oldest builds" grep -q "purged 2 builds (2 build requests, 2 buildsets" <<<"$out"
check "exactly what --dry-run counted ($would)" grep -qxF "purged $would" <<<"$out"
check "one build row is left" [ "$(count)" = 1 ]
check "no log chunk of the purged builds is left" [ "$(db_sql "$M" "SELECT count(*) FROM logchunks c JOIN logs l ON l.id = c.logid JOIN steps s ON s.id = l.stepid WHERE s.buildid IN ($b1, $b2)")" = 0 ]
check "nor a step of theirs" [ "$(db_sql "$M" "SELECT count(*) FROM steps WHERE buildid IN ($b1, $b2)")" = 0 ]
check "their artifact files are removed" sh -c "[ ! -e '$M/artifacts/$b1' ] && [ ! -e '$M/artifacts/$b2' ] && [ -e '$M/artifacts/$b3' ]"
before=$(sed -n 's/^database: \([0-9]*\) bytes before, \([0-9]*\) bytes after VACUUM$/\1/p' <<<"$out")
after=$(sed -n 's/^database: \([0-9]*\) bytes before, \([0-9]*\) bytes after VACUUM$/\2/p' <<<"$out")
check "it prints the size before and after ($before -> $after)" [ -n "$before" ] && [ -n "$after" ]
if db_is_pg "$M"; then
    # pg_database_size(current_database()), the database's files on the
    # server; the 1.5 MB logs of three builds were in it
    check "the sizes are the database's ($before, $after)" [ "$before" -gt 4000000 ] && [ "$after" -gt 0 ]
    check "the database says the same size now" [ "$(db_sql "$M" "SELECT pg_database_size(current_database()) BETWEEN $after / 2 AND $after * 2")" = t ]
    check "the VACUUM ran (the tables' last vacuum is set)" [ "$(db_sql "$M" "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'logchunks'")" = t ]
else
    check "the VACUUM shrank the file" [ "$after" -lt "$before" ]
    check "the file on disk is that size ($(stat -c %s "$db"))" [ "$(stat -c %s "$db")" -le "$after" ]
    check "the database is sound" [ "$(db_sql "$M" 'PRAGMA integrity_check')" = ok ]
    check "no foreign key is broken" [ -z "$(db_sql "$M" 'PRAGMA foreign_key_check')" ]
fi
check "master restarts" start_master "$M"
check "the purged builds answer 404" sh -c "[ $(status_of "builds/$b1") = 404 ] && [ $(status_of "builds/$b2") = 404 ]"
check "the kept one 200" [ "$(status_of "builds/$b3")" = 200 ]
out=$("$KILN" cleanupdb "$TRASH/nowhere" 2>&1); rc=$?
check "a missing BASEDIR is an error ($out)" [ "$rc" = 1 ]
out=$("$KILN" cleanupdb 2>&1); rc=$?
check "no BASEDIR is a usage error" [ "$rc" = 2 ]
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
