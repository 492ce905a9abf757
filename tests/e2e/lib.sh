# Shared helpers for end-to-end tests (sourced by tests/e2e/tNNNN-*.sh).
# Each test gets its own trash directory, starts real processes on loopback
# port 0, waits with bounded timeouts (never sleeps to synchronise), prints
# TAP, and kills only the PIDs it started.
#
# Environment: KILN_BUILD = meson build dir (default: build), set by scripts/check.

set -u
E2E_NAME=$(basename "$0" .sh)
KILN_SRC=$(cd "$(dirname "$0")/../.." && pwd)
KILN_BUILD=${KILN_BUILD:-$KILN_SRC/build}
case $KILN_BUILD in /*) ;; *) KILN_BUILD=$KILN_SRC/$KILN_BUILD ;; esac
KILN=$KILN_BUILD/kiln
KILN_WORKER=$KILN_BUILD/src/worker/kiln-worker
TRASH=$(mktemp -d "${TMPDIR:-/tmp}/kiln-$E2E_NAME.XXXXXX")
E2E_PIDS=""
E2E_N=0
E2E_FAILED=0

E2E_PGDIRS=""

# The suite on PostgreSQL (scripts/check's e2e-pg pass, docs/TESTING.md):
# KILN_E2E_PG_URL names a running server (scripts/pg-start's URL).  Each
# master base directory gets a database of its own there at its first
# start, kept across restarts and dropped at the end; the master gets it as
# KILN_DATABASE, also exported for the test's own kiln commands.  A master
# whose master.lua names a PostgreSQL database itself is left alone.
e2e_pg_url() {
    local dir db
    dir=$(cd "$1" && pwd -P) || return 1
    db=$(awk -v d="$dir" '$1 == d {print $2}' "$TRASH/.e2e-pgdbs" 2>/dev/null)
    if [ -z "$db" ]; then
        db="e2e_$$_$(cat "$TRASH/.e2e-pgdbs" 2>/dev/null | wc -l)"
        psql "$KILN_E2E_PG_URL" -X -qc "create database $db" >/dev/null || return 1
        echo "$dir $db" >> "$TRASH/.e2e-pgdbs"
    fi
    echo "$KILN_E2E_PG_URL" | sed "s|:///kiln?|:///$db?|"
}

# db_is_pg DIR: whether the master in DIR runs on PostgreSQL (the e2e-pg pass)
db_is_pg() { [ -n "${KILN_E2E_PG_URL:-}" ] && ! grep -q 'postgres' "$1/master.lua" 2>/dev/null; }

# db_sql DIR SQL: the rows of SQL on the database of the master in DIR, one
# per line, columns joined by '|' and NULL as empty (sqlite3's and psql -A's
# default): its state.sqlite, or its PostgreSQL database in the e2e-pg pass.
# A write (UPDATE) is committed.
db_sql() {
    if db_is_pg "$1"; then
        psql "$(e2e_pg_url "$1")" -X -Atq -c "$2"
    else
        /usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=30); rows=c.execute(sys.argv[2]).fetchall(); c.commit(); print("\n".join("|".join("" if v is None else str(v) for v in r) for r in rows))' "$1/state.sqlite" "$2"
    fi
}

e2e_cleanup() {
    # PostgreSQL servers this test started (pg_server), by their pid files,
    # before the trash they live in goes
    for d in $E2E_PGDIRS; do
        "$KILN_SRC/scripts/pg-stop" "$d" >/dev/null 2>&1
    done
    for p in $E2E_PIDS; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $E2E_PIDS; do
        # bounded wait for each process we started, then force
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1; i=$((i + 1))   # polling a pid's exit, bounded
        done
        kill -KILL "$p" 2>/dev/null
    done
    # the e2e-pg pass's databases, once their masters are gone
    for db in $(awk '{print $2}' "$TRASH/.e2e-pgdbs" 2>/dev/null); do
        psql "$KILN_E2E_PG_URL" -X -qc "drop database if exists $db with (force)" >/dev/null 2>&1
    done
    if [ "$E2E_FAILED" -eq 0 ] && [ -z "${KEEP_TRASH:-}" ]; then
        rm -rf "$TRASH"
    else
        echo "# trash kept: $TRASH"
    fi
}
trap e2e_cleanup EXIT

# remember a pid to kill at exit
e2e_track() { E2E_PIDS="$E2E_PIDS $1"; }

ok() { E2E_N=$((E2E_N + 1)); echo "ok $E2E_N - $*"; }
not_ok() { E2E_N=$((E2E_N + 1)); E2E_FAILED=$((E2E_FAILED + 1)); echo "not ok $E2E_N - $*"; }
# check DESCRIPTION COMMAND...: one TAP line from a command's status
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
done_testing() { echo "1..$E2E_N"; [ "$E2E_FAILED" -eq 0 ]; }
diag() { echo "# $*"; }

# skip_all REASON: this script cannot run here (a dependency is missing):
# prints the TAP skip-all line "1..0 # SKIP REASON" before any test point and
# exits 0.  scripts/check counts it as one skipped test, and as a failure
# when CI=true (CI installs every dependency, so a skip there is a bug).
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
# require_cmd CMD...: skip_all unless every CMD is on PATH
require_cmd() {
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip_all "'$c' is not installed (scripts/install-deps)"
    done
}

# wait_for SECONDS COMMAND...: run COMMAND until it succeeds or the time is up.
# Polls with a short interval; the bound is what makes the test finite.
wait_for() {
    t=$1; shift
    end=$(( $(date +%s%N) / 1000000 + t * 1000 ))
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        [ $(( $(date +%s%N) / 1000000 )) -ge $end ] && return 1
        sleep 0.05
    done
}

# free_port: asks the kernel for a free loopback port (for programs that
# cannot bind port 0 themselves, such as Buildbot's msgpack listener).
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# master_port BASEDIR KIND: reads 'KIND HOST:PORT' from BASEDIR/ports
master_addr() { awk -v k="$2" '$1==k {print $2}' "$1/ports" 2>/dev/null; }

# ---- Kiln helpers ---------------------------------------------------------

# jpy EXPR: evaluates a Python expression over the JSON on stdin (as d)
jpy() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); r=($1); print(json.dumps(r) if isinstance(r,(dict,list)) or r is None or isinstance(r,bool) else r)"; }

# api PATH: GET from the current master's REST API
api() { curl -sS --max-time 10 "$URL/api/v2/$1"; }
# rpc PATH JSON: JSON-RPC POST
rpc() { curl -sS --max-time 10 -H 'Content-Type: application/json' -d "$2" "$URL/api/v2/$1"; }

# pg_server: skips the test without Debian's PostgreSQL server; else starts
# a throwaway one (scripts/pg-start) in $TRASH/pg, stopped at exit, and
# sets PGURL; pg SQL prints psql's unaligned answer.  A test point says
# whether it started.
pg_server() {
    require_cmd psql
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
        skip_all "no PostgreSQL server in /usr/lib/postgresql/*/bin (scripts/install-deps)"
    # run as root, pg-start runs the server as 'postgres' and hands it the
    # directory: the trash (mktemp's 0700, root's) must let it through
    [ "$(id -u)" = 0 ] && chmod o+x "$TRASH"
    local rc
    PGURL=$("$KILN_SRC/scripts/pg-start" "$TRASH/pg" 2>"$TRASH/pg-start.err"); rc=$?
    [ -f "$TRASH/pg/postmaster.pid" ] && E2E_PGDIRS="$E2E_PGDIRS $TRASH/pg"
    check "pg-start starts a server ($(tr '\n' ' ' < "$TRASH/pg-start.err"))" [ "$rc" = 0 ]
}
pg() { psql "$PGURL" -X -Atqc "$1" 2>&1; }

# new_master DIR: makes a base directory; master.lua comes from stdin
# (secrets go in DIR/secrets/NAME)
new_master() {
    mkdir -p "$1/secrets"
    cat > "$1/master.lua"
}

# start_master DIR: starts kiln master on DIR, waits for its ports file,
# sets MASTER_PID, URL (http://HOST:PORT) and WADDR (HOST:PORT of workers)
start_master() {
    rm -f "$1/ports"
    if [ -n "${KILN_E2E_PG_URL:-}" ] && ! grep -q 'postgres' "$1/master.lua" 2>/dev/null; then
        KILN_DATABASE=$(e2e_pg_url "$1") || { diag "cannot make a database on $KILN_E2E_PG_URL"; return 1; }
        export KILN_DATABASE
    fi
    "$KILN" master -d "$1" 2>>"$1/master.log" &
    MASTER_PID=$!
    e2e_track $MASTER_PID
    if ! wait_for 60 test -s "$1/ports"; then
        diag "master did not start:"; sed 's/^/# /' "$1/master.log" | tail -n 20
        return 1
    fi
    URL="http://$(master_addr "$1" http)"
    WADDR=$(master_addr "$1" workers)
}

# stop_pid PID: SIGTERM and a bounded wait; returns the exit status
stop_pid() {
    kill -TERM "$1" 2>/dev/null
    wait_for 60 sh -c "! kill -0 $1 2>/dev/null"
    wait "$1" 2>/dev/null
}

# start_worker DIR NAME PASSWORD_FILE: creates and starts a kiln-worker; sets WORKER_PID
start_worker() {
    [ -f "$1/worker.conf" ] || "$KILN_WORKER" create "$1" --master "$WADDR" --name "$2" \
        --password-file "$3" >/dev/null
    "$KILN_WORKER" start "$1" 2>>"$1.log" &
    WORKER_PID=$!
    e2e_track $WORKER_PID
}

# worker_connected NAME: true when the API shows NAME connected
worker_connected() {
    [ "$(api "workers/$1" | jpy 'len(d["workers"][0]["connected_to"])' 2>/dev/null)" = 1 ]
}

# force BUILDER: forces via JSON-RPC; prints the build request id
force() {
    bid=$(api "builders/$1" | jpy 'd["builders"][0]["builderid"]') || return 1
    rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$bid\",\"reason\":\"e2e\"}}" |
        jpy 'list(d["result"][1].values())[0]'
}

# build_of_request BRID: prints the build id of a request's latest build (or nothing)
build_of_request() { api "builds?buildrequestid=$1&order=-buildid&limit=1" | jpy 'd["builds"][0]["buildid"] if d["builds"] else ""'; }

# request_done BRID: true when the request is complete
request_done() { [ "$(api "buildrequests/$1" | jpy 'd["buildrequests"][0]["complete"]')" = true ]; }

# build_field ID FIELD
build_field() { api "builds/$1" | jpy "d['builds'][0]['$2']"; }

# log_text BUILD STEPNUMBER: the stdio log contents of a step
log_text() {
    sid=$(api "builds/$1/steps/$2" | jpy 'd["steps"][0]["stepid"]')
    lid=$(api "steps/$sid/logs/stdio" | jpy 'd["logs"][0]["logid"]')
    api "logs/$lid/contents" | jpy '"".join(c["content"] for c in d["logchunks"])'
}

# build_results_is ID N: true when build ID has results N
build_results_is() { [ "$(build_field "$1" results 2>/dev/null)" = "$2" ]; }
# request_has_builds BRID N: true when the request has N builds
request_has_builds() { [ "$(api "builds?buildrequestid=$1" | jpy 'd["meta"]["total"]' 2>/dev/null)" = "$2" ]; }
