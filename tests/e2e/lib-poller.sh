# shellcheck shell=bash
# Helpers of the VCS poller tests (t0750 bzr, t0751 darcs, t0752 cvs): a
# master with one change source polling a repository made in the test, a
# scheduler and kiln-worker w1.  Sourced after lib.sh (it sources
# lib-build.sh); M names the master's base directory:
#
#   checkconfig            `kiln checkconfig` accepts $M
#   polled [SOURCE]        the change source (default src) has polled
#   poll [SOURCE]          asks it to poll now
#   nchanges [PROJECT]     how many changes PROJECT (default p) has
#   advance SECONDS        moves the master's test clock (KILN_TEST_CLOCK=1)
#   build_done             at least one build is complete
. "$(dirname "${BASH_SOURCE[0]}")/lib-build.sh"

checkconfig() { "$KILN" checkconfig "$M" >/dev/null; }

polled() {
    [ "$(api "changesources/${1:-src}" | jpy 'd["changesources"][0]["last_poll"]')" != None ]
}

poll() {
    rpc "changesources/${1:-src}" '{"jsonrpc":"2.0","id":1,"method":"poll","params":{}}' >/dev/null
}

nchanges() { api "changes?project=${1:-p}" | jpy 'd["meta"]["total"]'; }

advance() {
    rpc _test/clock "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"advance\",\"params\":{\"seconds\":$1}}" >/dev/null
}

build_done() { [ "$(api 'builds?complete=true' | jpy 'd["meta"]["total"]')" -ge 1 ]; }
