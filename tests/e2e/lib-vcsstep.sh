# shellcheck shell=bash
# The set-up shared by the source-step tests (t0652 git, t0790 hg, t0791 svn,
# t0792 bzr, t0793 darcs, t0794 cvs): one master, kiln-worker w1, builders
# running one source step and "show".  Sourced after lib.sh (it sources
# lib-build.sh):
#
#   vcsstep_master          writes $M/master.lua (M=$TRASH/master): both
#                           listeners on port 0, worker w1 (max_builds 4),
#                           `local show` (a shell step printing hello.txt
#                           and the tree), then the test's Lua from stdin;
#                           and the secrets w1, bbw and try (try-token-$$)
#   vcsstep_start           starts that master and w1 (two test points)
#   got_rev BUILD           the build's got_revision property, as JSON
#   force_revision BUILDER PARAMS
#                           forces BUILDER with more force parameters (JSON
#                           members: "revision":"abc"); prints the request id
#   try_patch REPOSITORY REVISION
#                           sends a try build whose patch (-p1) turns
#                           hello.txt's "two" into "two, patched"; prints
#                           the request id
#   fresh_twice BUILDER WORD [COMMAND...]
#                           builds BUILDER, adds untracked.txt and ignored.o
#                           to its workdir (and runs COMMAND), builds again
#                           (b = that build): three test points, both
#                           succeed and the files (WORD: "untracked",
#                           "unknown"...) are gone
#   clobber_twice BUILDER [LABEL]
#                           builds BUILDER, leaves a marker in its workdir,
#                           builds again (b = that build): two test points,
#                           it succeeds and the marker is gone
. "$(dirname "${BASH_SOURCE[0]}")/lib-build.sh"

M=$TRASH/master

vcsstep_master() {
    {
        cat <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1"), max_builds = 4 }
local show = shell { name = "show", command = "cat hello.txt; ls -a" }
LUA
        cat
    } | new_master "$M"
    printf 'secret-%s' "$$" > "$M/secrets/w1"
    printf 'bb-secret-%s' "$$" > "$M/secrets/bbw"
    printf 'try-token-%s' "$$" > "$M/secrets/try"
}

vcsstep_start() { start_master_w1 "$M"; }

got_rev() { api "builds/$1/properties" | jpy "d['properties'][0]['got_revision']"; }

force_revision() {
    local bid
    bid=$(api "builders/$1" | jpy 'd["builders"][0]["builderid"]') || return 1
    rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$bid\",$2}}" |
        jpy 'list(d["result"][1].values())[0]'
}

try_patch() {
    local diff res bsid
    diff=$(printf -- '--- a/hello.txt\n+++ b/hello.txt\n@@ -1,1 +1,1 @@\n-two\n+two, patched\n' | base64 -w0)
    res=$(rpc tryschedulers/try "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"try\",\"params\":{\"token\":\"try-token-$$\",\"revision\":\"$2\",\"repository\":\"$1\",\"patch_base64\":\"$diff\",\"patch_level\":1}}") || return 1
    bsid=$(jpy 'd["result"]["bsid"]' <<<"$res") || return 1
    api "buildrequests?buildsetid=$bsid" | jpy 'd["buildrequests"][0]["buildrequestid"]'
}

fresh_twice() {
    local builder=$1 word=$2
    shift 2
    b=$(force_build "$builder")
    check "$builder: first build" build_results_is "$b" 0
    touch "$TRASH/w1/$builder/build/untracked.txt" "$TRASH/w1/$builder/build/ignored.o"
    [ $# -eq 0 ] || "$@"
    b=$(force_build "$builder")
    check "$builder: second build succeeds" build_results_is "$b" 0
    check "$builder removes $word and ignored files" lacks 'untracked.txt\|ignored.o' "$(log_text "$b" 2)"
}

clobber_twice() {
    local label=${2:-$1}
    b=$(force_build "$1")
    touch "$TRASH/w1/$1/build/marker"
    b=$(force_build "$1")
    check "$label: second build succeeds" build_results_is "$b" 0
    check "$label removed the tree" lacks marker "$(log_text "$b" 2)"
}
