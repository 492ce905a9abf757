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

e2e_cleanup() {
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
