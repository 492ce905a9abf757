#!/bin/bash
# sqlite-only: it makes an older schema in SQLite's file by hand (PostgreSQL's migrations: unit test pg-schema)
# asan-too
# `kiln upgrade-master BASEDIR`: a database an older kiln left (the
# migrations applied up to N by hand, from src/db/migrations) is brought to
# the newest schema, each migration applied printed; a second run has
# nothing to do; it refuses while a master runs on BASEDIR; a database with
# a schema newer than the binary (a future version) is refused by the master
# and by upgrade-master, naming both versions, and left as it was.
. "$(dirname "$0")/lib.sh"
require_cmd sqlite3

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }
LUA
printf 'w1-secret' > "$M/secrets/w1"

# the migrations built into this kiln, in order (src/db/meson.build lists them)
MIG=$(ls "$KILN_SRC"/src/db/migrations/[0-9]*.sql | sort)
NMIG=$(printf '%s\n' "$MIG" | wc -l)
HEAD=$((10#$(basename "$(printf '%s\n' "$MIG" | tail -n 1)" | cut -c1-4)))
OLD=$((NMIG - 3))
OLDV=$((10#$(basename "$(printf '%s\n' "$MIG" | sed -n "${OLD}p")" | cut -c1-4)))
diag "head schema $HEAD, old database at $OLDV"
for f in $(printf '%s\n' "$MIG" | head -n "$OLD"); do
    cat "$f"
done | sqlite3 "$M/state.sqlite"
sqlite3 "$M/state.sqlite" "PRAGMA user_version = $OLDV"
check "the old database is at schema $OLDV" [ "$(sqlite3 "$M/state.sqlite" 'PRAGMA user_version')" = "$OLDV" ]

"$KILN" upgrade-master "$M" > "$TRASH/up.out" 2> "$TRASH/up.err"
rc=$?
check "upgrade-master exits 0 (got $rc)" [ "$rc" = 0 ]
check "... names both versions" grep -qF "schema version $OLDV; kiln " "$TRASH/up.out"
for f in $(printf '%s\n' "$MIG" | tail -n +"$((OLD + 1))"); do
    n=$(basename "$f" .sql)
    check "... prints 'applied migration $n'" grep -qxF "applied migration $n" "$TRASH/up.out"
done
check "... exactly the pending ones" [ "$(grep -c '^applied migration' "$TRASH/up.out")" = "$((NMIG - OLD))" ]
check "... says where it got to" grep -qF "upgraded from schema version $OLDV to $HEAD" "$TRASH/up.out"
check "the database is at head" [ "$(sqlite3 "$M/state.sqlite" 'PRAGMA user_version')" = "$HEAD" ]
check "no pid file is left behind" [ ! -e "$M/pid" ]
"$KILN" upgrade-master "$M" > "$TRASH/up2.out" 2>&1
rc=$?
check "a second run exits 0 (got $rc)" [ "$rc" = 0 ]
check "... with nothing to do" grep -qF "already at schema version $HEAD: nothing to do" "$TRASH/up2.out"

# the upgraded database serves a master
start_master "$M"
check "the master starts on the upgraded database" [ "$(api masters | jpy 'len(d["masters"])')" = 1 ]
"$KILN" upgrade-master "$M" > "$TRASH/up3.out" 2> "$TRASH/up3.err"
rc=$?
check "upgrade-master refuses while a master runs (status $rc)" [ "$rc" = 1 ]
check "... naming its pid and the way out" grep -qF "a master is running on '$M' (pid $MASTER_PID): stop it first" "$TRASH/up3.err"
check "... and the master still runs" kill -0 "$MASTER_PID"
check "... and still owns its pid file" [ "$(cat "$M/pid")" = "$MASTER_PID" ]
stop_pid "$MASTER_PID"

# a database from the future
FUT=$((HEAD + 1))
sqlite3 "$M/state.sqlite" "PRAGMA user_version = $FUT"
rm -f "$M/ports"
"$KILN" master -d "$M" 2> "$TRASH/fut-master.err" &
FPID=$!
e2e_track $FPID
wait_for 30 sh -c "! kill -0 $FPID 2>/dev/null"
wait "$FPID"
rc=$?
check "the master refuses a newer database (status $rc)" [ "$rc" != 0 ]
check "... naming both versions" grep -qF "database schema version $FUT is newer than this kiln $("$KILN" --version | cut -d' ' -f2) knows (schema version $HEAD)" "$TRASH/fut-master.err"
check "... and never listened" [ ! -s "$M/ports" ]
"$KILN" upgrade-master "$M" > "$TRASH/fut-up.out" 2> "$TRASH/fut-up.err"
rc=$?
check "upgrade-master refuses it too (status $rc)" [ "$rc" = 1 ]
check "... naming both versions" grep -qF "database schema version $FUT is newer than this kiln" "$TRASH/fut-up.err"
check "... and applied nothing" sh -c '! grep -q "^applied" "$1"' _ "$TRASH/fut-up.out"
check "the database keeps its version" [ "$(sqlite3 "$M/state.sqlite" 'PRAGMA user_version')" = "$FUT" ]

"$KILN" upgrade-master "$TRASH/nowhere" 2> "$TRASH/nodir.err"
rc=$?
check "a missing base directory is an error (status $rc)" [ "$rc" = 1 ]
check "... naming it" grep -qF "$TRASH/nowhere" "$TRASH/nodir.err"
"$KILN" upgrade-master a b > /dev/null 2>&1
check "two base directories are a usage error" [ $? = 2 ]
done_testing
