# shellcheck shell=bash
# Helpers for end-to-end tests that force builds on real workers and read
# what their steps did.  Sourced after lib.sh:
#
#   start_master_w1 DIR [SECS]   starts the master on DIR and a kiln-worker w1
#                                (password DIR/secrets/w1) attaching within
#                                SECS (20); two test points
#   force_build BUILDER [SECS]   forces BUILDER, waits (at most SECS, 60) for
#                                the request to complete; prints the build id
#   lacks PATTERN TEXT           true when no line of TEXT matches PATTERN
#   have_buildbot_worker         true when Debian's buildbot-worker is here;
#                                else one failing test point saying so
#   start_buildbot_worker DIR NAME PASSWORD_FILE
#                                creates and starts a buildbot-worker 3.7
#                                speaking Kiln's protocol to this master

# start_master_w1 DIR [SECONDS]: the usual start of a test with one kiln-worker
start_master_w1() {
    check "master starts" start_master "$1"
    start_worker "$TRASH/w1" w1 "$1/secrets/w1"
    check "worker attaches" wait_for "${2:-60}" worker_connected w1
}

# force_build BUILDER [SECONDS]: forces BUILDER and prints its build's id once
# the request is complete; fails (printing nothing) when it is not in time
force_build() {
    local br
    br=$(force "$1") || return 1
    wait_for "${2:-60}" request_done "$br" || return 1
    build_of_request "$br"
}

# lacks PATTERN TEXT: grep's basic PATTERN is on no line of TEXT
lacks() { ! grep -q "$1" <<<"$2"; }

# have_buildbot_worker: scripts/install-deps installs it, so its absence
# is a failure, not a skip
have_buildbot_worker() {
    command -v buildbot-worker >/dev/null && return 0
    not_ok "buildbot-worker is not installed (scripts/install-deps installs it)"
    return 1
}

# start_buildbot_worker DIR NAME PASSWORD_FILE: a buildbot-worker (Buildbot
# 3.7 defaults to PB: it is created with Kiln's msgpack protocol) in DIR, its
# log in DIR.log, connecting to $WADDR; killed at exit like every pid
start_buildbot_worker() {
    buildbot-worker create-worker -q --protocol msgpack_experimental_v7 "$1" "$WADDR" \
        "$2" "$(cat "$3")" >/dev/null || return 1
    buildbot-worker start --nodaemon "$1" >"$1.log" 2>&1 &
    e2e_track $!
}
