#!/bin/bash
# asan-too
# logfiles and lazylogfiles (slice "logfiles"), on kiln-worker and on Debian's
# buildbot-worker: a step's command writes a file over time; the worker tails
# it into `log` updates and the master stores them in a log of that name, live
# (seen while the command still runs) and with the exact bytes once done;
# follow = true shows only what was appended after the command started; a
# declared file never written still has its (empty) log; with lazylogfiles a
# log is made only for a file that was written; a secret written to a logfile
# is masked as in stdio.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-build.sh"
require_cmd python3

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
worker { name = "bbw", password = secret("bbw") }
local steps = {
  shell { name = "write", env = { TOKEN = secret("token") },
    -- waits (bounded) for the test to create 'go' after it saw the first lines
    command = "printf 'alpha\\nbeta gamma \\303\\251\\n' > side.log; echo new1 >> out/trace.log; "
      .. "echo \"tok=$TOKEN\" >> side.log; "
      .. "i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; "
      .. "printf 'delta\\n' >> side.log; echo new2 >> out/trace.log",
    logfiles = { side = "side.log", trace = { filename = "out/trace.log", follow = true },
                 empty = "never-written.log" } },
  shell { name = "lazy", command = "echo lazy text > lazy.log", lazylogfiles = true,
    logfiles = { lazy = "lazy.log", never = "never.log" } },
  -- 3.4 MB written just before the command exits: all of it is read at the end
  shell { name = "big", command = "yes 0123456789abcdef | head -n 200000 > big.log",
    logfiles = { big = "big.log" } },
}
builder { name = "lf", workers = { "w1" }, steps = steps }
builder { name = "lfbb", workers = { "bbw" }, steps = steps }
force_scheduler { name = "force", builders = { "lf", "lfbb" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"
printf 'bb-secret-%s' "$$" > "$M/secrets/bbw"
TOKEN="Lf-Secret-Value-$$-QRS"
printf '%s\n' "$TOKEN" > "$M/secrets/token"

check "master starts" start_master "$M"
check "checkconfig accepts the logfiles" "$KILN" checkconfig "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"

# step_logid BUILD STEPNUMBER SLUG: the log's id, or nothing
step_logid() {
    local sid
    sid=$(api "builds/$1/steps/$2" | jpy 'd["steps"][0]["stepid"]' 2>/dev/null) || return 1
    api "steps/$sid/logs/$3" | jpy 'd["logs"][0]["logid"] if d.get("logs") else ""' 2>/dev/null
}
# step_lognames BUILD STEPNUMBER: the step's log names, sorted, space-separated
step_lognames() {
    local sid
    sid=$(api "builds/$1/steps/$2" | jpy 'd["steps"][0]["stepid"]')
    api "steps/$sid/logs" | jpy '" ".join(sorted(l["name"] for l in d["logs"]))'
}
raw() { curl -sS --max-time 10 "$URL/api/v2/logs/$1/raw"; }
contents() { api "logs/$1/contents" | jpy '"".join(c["content"] for c in d["logchunks"])'; }
log_has() { local id; id=$(step_logid "$1" "$2" "$3") && [ -n "$id" ] && grep -q "$4" <<<"$(raw "$id")"; }
lacks() { ! grep -qF "$1" <<<"$2"; }
build_started() { [ -n "$(build_of_request "$1")" ]; }

# run_builder BUILDER WORKDIR
run_builder() {
    local br b id
    rm -rf "$2"
    mkdir -p "$2/out"
    echo "old line" > "$2/out/trace.log" # before the command: follow leaves it out
    br=$(force "$1")
    check "$1: the build starts" wait_for 60 build_started "$br"
    b=$(build_of_request "$br")
    check "$1: the side log is there, live, while the command runs" \
        wait_for 60 log_has "$b" 1 side '^beta gamma'
    check "$1: the command is still running" [ ! -e "$2/go" ]
    id=$(step_logid "$b" 1 empty)
    check "$1: a declared file never written has its log" [ -n "$id" ]
    touch "$2/go"
    check "$1: the build completes" wait_for 60 request_done "$br"
    check "$1: and succeeds" build_results_is "$b" 0
    id=$(step_logid "$b" 1 side)
    out=$(raw "$id")
    want=$(printf 'alpha\nbeta gamma \303\251\ntok=<secret>\ndelta')
    check "$1: the side log has the exact bytes ($(printf %q "$out"))" [ "$out" = "$want" ]
    check "$1: stored as stdout lines of a stream log" \
        [ "$(contents "$id")" = "$(printf 'oalpha\nobeta gamma \303\251\notok=<secret>\nodelta\n')" ]
    check "$1: the secret is masked" lacks "$TOKEN" "$out"
    check "$1: the side log is complete" \
        [ "$(api "logs/$id" | jpy 'd["logs"][0]["complete"]')" = true ]
    id=$(step_logid "$b" 1 trace)
    out=$(raw "$id")
    check "$1: follow: new lines are in the trace log ($(printf %q "$out"))" grep -q '^new2$' <<<"$out"
    check "$1: follow: the old content is not" lacks "old line" "$out"
    id=$(step_logid "$b" 1 empty)
    check "$1: the empty log is empty" [ -z "$(raw "$id")" ]
    check "$1: stdio names the watched files" grep -q "watching logfiles" <<<"$(log_text "$b" 2)"
    check "$1: lazylogfiles: only the written file has a log" \
        [ "$(step_lognames "$b" 2)" = "lazy stdio" ]
    check "$1: with its text" [ "$(raw "$(step_logid "$b" 2 lazy)")" = "lazy text" ]
    out=$(raw "$(step_logid "$b" 3 big)" | python3 -c 'import sys
t = sys.stdin.read().split("\n")
print(len(t), len(set(t)), t[0])')
    check "$1: a file written just before the end is read whole ($out)" \
        [ "$out" = "200000 1 0123456789abcdef" ]
}

check "worker attaches" wait_for 60 worker_connected w1
run_builder lf "$TRASH/w1/lf/build"

if command -v buildbot-worker >/dev/null; then
    W=$TRASH/bbworker
    start_buildbot_worker "$W" bbw "$M/secrets/bbw"
    check "buildbot-worker attaches" wait_for 40 worker_connected bbw
    run_builder lfbb "$W/lfbb/build"
else
    not_ok "buildbot-worker is not installed (scripts/install-deps installs it)"
fi
done_testing
