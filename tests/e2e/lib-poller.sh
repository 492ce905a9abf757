# shellcheck shell=bash
# Helpers of the poller tests (t0750 bzr, t0751 darcs, t0752 cvs, t0760 two
# git pollers): a master with change sources polling repositories made in
# the test, a scheduler and kiln-worker w1.  Sourced after lib.sh (it sources
# lib-build.sh); M names the master's base directory:
#
#   checkconfig            `kiln checkconfig` accepts $M
#   polled [SOURCE]        the change source (default src) has polled
#   poll [SOURCE]          asks it to poll now
#   nchanges [PROJECT]     how many changes PROJECT (default p) has
#   advance SECONDS        moves the master's test clock (KILN_TEST_CLOCK=1)
#   build_done [N]         at least N builds (1) are complete
. "$(dirname "${BASH_SOURCE[0]}")/lib-build.sh"

checkconfig() { "$KILN" checkconfig "$M" >/dev/null; }

polled() { # (an API that does not answer is not "polled")
    [ "$(api "changesources/${1:-src}" | jpy 'd["changesources"][0]["last_poll"] is not None')" = true ]
}

poll() {
    rpc "changesources/${1:-src}" '{"jsonrpc":"2.0","id":1,"method":"poll","params":{}}' >/dev/null
}

nchanges() { api "changes?project=${1:-p}" | jpy 'd["meta"]["total"]'; }

advance() {
    rpc _test/clock "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"advance\",\"params\":{\"seconds\":$1}}" >/dev/null
}

build_done() { [ "$(api 'builds?complete=true' | jpy 'd["meta"]["total"]')" -ge "${1:-1}" ]; }
