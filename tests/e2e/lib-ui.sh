# shellcheck shell=bash
# The shell half shared by the browser tests (t1000, t1010, t1020, t1030,
# t1031, t1042, t1043): each runs a script of tests/e2e/ui/ (built on
# ui/harness.mjs) in Debian's Chromium through playwright-core against the
# test's master.  Sourced after lib.sh (it sources lib-build.sh: its
# start_master_w1 starts the master and kiln-worker w1); skips the test
# (skip_all) when node, curl, the browser or www/node_modules are missing:
#
#   CHROMIUM                the browser (KILN_CHROMIUM, or /usr/bin/chromium)
#   ui_master               writes $M/master.lua (M=$TRASH/master): both
#                           listeners on port 0, then the test's Lua from
#                           stdin; and the secret w1 (secret-$$)
#   ui_start SCRIPT [VAR=VALUE...]
#                           starts `node tests/e2e/ui/SCRIPT` in the
#                           background (URL, TRASH, WWW, CHROMIUM and the
#                           VARs in its environment, its output in
#                           $TRASH/ui.out and ui.err), tracked by e2e_track;
#                           UI_PID is its process
#   ui_finish [TIMEOUT]     waits (at most TIMEOUT s, default 240) for it to
#                           end, relays its "ok - " / "not ok - " lines as
#                           test points ("ui: ..."), its "# " lines as they
#                           are, then one test point: it printed its points;
#                           prints its stderr as "# node: " lines
#   ui_run SCRIPT [TIMEOUT [VAR=VALUE...]]
#                           ui_start then ui_finish, for a test with nothing
#                           to do while the browser runs
#   ui_screenshots GLOB NAME...
#                           copies $TRASH/GLOB (a pattern such as
#                           "workers*.png") to $KILN_BUILD/test-artifacts/
#                           $E2E_NAME (they outlive the trash directory),
#                           then a test point per NAME: it was saved
#                           ("screenshots saved" for one NAME)
. "$(dirname "${BASH_SOURCE[0]}")/lib-build.sh"

CHROMIUM=${KILN_CHROMIUM:-/usr/bin/chromium}
require_cmd node curl
[ -x "$CHROMIUM" ] || skip_all "'$CHROMIUM' is not installed (scripts/install-deps)"
[ -d "$KILN_SRC/www/node_modules/playwright-core" ] ||
    skip_all "www/node_modules is missing (scripts/install-deps runs npm ci)"

M=$TRASH/master

ui_master() {
    {
        cat <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
LUA
        cat
    } | new_master "$M"
    printf 'secret-%s' "$$" > "$M/secrets/w1"
}

ui_start() {
    local script=$1
    shift
    env URL="$URL" TRASH="$TRASH" WWW="$KILN_SRC/www" CHROMIUM="$CHROMIUM" "$@" \
        node "$KILN_SRC/tests/e2e/ui/$script" >"$TRASH/ui.out" 2>"$TRASH/ui.err" &
    UI_PID=$!
    e2e_track "$UI_PID"
}

ui_finish() {
    local line
    wait_for "${1:-240}" sh -c "! kill -0 $UI_PID 2>/dev/null"
    wait "$UI_PID" 2>/dev/null
    while IFS= read -r line; do
        case $line in
            'ok - '*) ok "ui: ${line#ok - }" ;;
            'not ok - '*) not_ok "ui: ${line#not ok - }" ;;
            '#'*) echo "$line" ;;
        esac
    done <"$TRASH/ui.out"
    check "the browser test printed its points" grep -q '^ok - ' "$TRASH/ui.out"
    if [ -s "$TRASH/ui.err" ]; then sed 's/^/# node: /' "$TRASH/ui.err" | head -n 20; fi
}

ui_run() {
    local script=$1 timeout=${2:-240}
    shift 2 2>/dev/null || shift
    ui_start "$script" "$@"
    ui_finish "$timeout"
}

ui_screenshots() {
    local glob=$1 name what=screenshot art=$KILN_BUILD/test-artifacts/$E2E_NAME
    shift
    [ $# = 1 ] && what=screenshots
    # shellcheck disable=SC2086 # GLOB is a pattern
    rm -f "$art"/$glob
    # shellcheck disable=SC2086
    mkdir -p "$art" && cp "$TRASH"/$glob "$art/" 2>/dev/null
    for name in "$@"; do
        check "$what saved ($art/$name)" test -s "$art/$name"
    done
}
