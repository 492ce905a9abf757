#!/bin/bash
# asan-too
# The step library's last gaps (slice "stepgaps"), on kiln-worker and on
# Debian's buildbot-worker: numbers = { } on transfer steps (a file on the
# worker read after the transfer, the file string_download just wrote, a
# Lua function) and on apply_patch (a regex over patch's stdout and a file
# the patch added); the built-in artifact_size:STEP of an upload, equal to
# the artifact's size; logfiles whose paths are interpolate(...) and a Lua
# function, rendered at step start; a rendered path with '..' or an
# absolute one ends its step EXCEPTION with a clear line, before its
# command runs. checkconfig refuses a regex on a transfer, naming the kind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-build.sh"
require_cmd python3 git patch

export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=t@example.org
export GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=t@example.org

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
worker { name = "bbw", password = secret("bbw") }
local steps = {
  shell { name = "make",
    command = "printf hello > a.txt && echo 7 > count.txt && mkdir -p logs && "
      .. "echo 'rendered by interpolate' > logs/debug.log && echo 'rendered by a function' > fn-debug.log",
    logfiles = { interp = interpolate("logs/%(prop:flavour)s.log"),
                 fn = { filename = function(p) return "fn-" .. p.flavour .. ".log" end } } },
  file_upload { name = "up", workersrc = "a.txt", masterdest = "a.txt",
    numbers = { count = { file = "count.txt" }, answer = function(p) return 42 end } },
  string_download { name = "sd", s = "12.5", workerdest = "sd.txt", numbers = { sd = { file = "sd.txt" } } },
  apply_patch { name = "patch", workdir = "build",
    numbers = { via_regex = "^patching file n(\\d+)\\.txt", via_file = { file = "n17.txt" } } },
}
builder { name = "t", workers = { "w1" }, properties = { flavour = "debug" }, steps = steps }
builder { name = "tbb", workers = { "bbw" }, properties = { flavour = "debug" }, steps = steps }
local bad = {
  shell { name = "dotdot", command = "echo ran > ran.txt",
    logfiles = { up = interpolate("%(prop:escape)s/x.log") } },
  shell { name = "abs", always_run = true, command = "echo ran > ran2.txt",
    logfiles = { a = function(p) return "/etc/passwd" end } },
}
builder { name = "bad", workers = { "w1" }, properties = { escape = ".." }, steps = bad }
builder { name = "badbb", workers = { "bbw" }, properties = { escape = ".." }, steps = bad }
try_scheduler { name = "try", builders = { "t", "tbb" }, token = secret("try") }
force_scheduler { name = "force", builders = { "bad", "badbb" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"
printf 'bb-secret-%s' "$$" > "$M/secrets/bbw"
printf 'try-token-%s' "$$" > "$M/secrets/try"

check "master starts" start_master "$M"
check "checkconfig accepts numbers on transfers and apply_patch, rendered logfiles" "$KILN" checkconfig "$M"

# a repository and a developer's clone whose diff adds n17.txt holding 42
git init -q -b main "$TRASH/repo" && echo base > "$TRASH/repo/README" &&
    git -C "$TRASH/repo" add README && git -C "$TRASH/repo" commit -qm base &&
    git clone -q "$TRASH/repo" "$TRASH/dev" && echo 42 > "$TRASH/dev/n17.txt" &&
    git -C "$TRASH/dev" add n17.txt
check "the developer's clone is ready" [ -f "$TRASH/dev/n17.txt" ]

# try BUILDER: sends the clone's diff; prints the build request id
try() {
    local out bsid
    out=$(cd "$TRASH/dev" && "$KILN" try --master "$URL" --builders "$1" --try-token "$(cat "$M/secrets/try")" 2>&1)
    bsid=$(sed -n 's/^buildset \([0-9]*\):.*/\1/p' <<<"$out")
    [ -n "$bsid" ] || { diag "kiln try: $out"; return 1; }
    api "buildrequests?buildsetid=$bsid" | jpy 'd["buildrequests"][0]["buildrequestid"]'
}
run_req() { wait_for 90 request_done "$1" || return 1; build_of_request "$1"; }
step_results() { api "builds/$1/steps/$2" | jpy 'd["steps"][0]["results"]'; }
number() { api "builders/$1/numbers/$2" | jpy "d['numbers'][0]['value'] if d['numbers'] else None"; }
number_build() { api "builders/$1/numbers/$2" | jpy "d['numbers'][0]['buildid'] if d['numbers'] else None"; }
is_num() { python3 -c "import sys; sys.exit(0 if float('$1') == float('$2') else 1)" 2>/dev/null; }
step_logid() {
    local sid
    sid=$(api "builds/$1/steps/$2" | jpy 'd["steps"][0]["stepid"]') || return 1
    api "steps/$sid/logs/$3" | jpy 'd["logs"][0]["logid"] if d.get("logs") else ""'
}
raw() { curl -sS --max-time 10 "$URL/api/v2/logs/$1/raw"; }

# gaps BUILDER WORKERDIR WHO: the checks of one worker's build
gaps() {
    local br b log id v size
    br=$(try "$1")
    check "$3: kiln try is accepted" [ -n "$br" ]
    b=$(run_req "$br")
    check "$3: the build succeeds ($(build_field "$b" state_string))" build_results_is "$b" 0
    check "$3: the patch applied" [ "$(cat "$2/$1/build/n17.txt" 2>/dev/null)" = 42 ]
    # logfiles with rendered paths
    id=$(step_logid "$b" 1 interp)
    check "$3: interpolate(...) logfile path rendered ($(raw "$id"))" [ "$(raw "$id")" = "rendered by interpolate" ]
    id=$(step_logid "$b" 1 fn)
    check "$3: a function's logfile path rendered ($(raw "$id"))" [ "$(raw "$id")" = "rendered by a function" ]
    # numbers on a transfer: a file read after it, a function
    check "$3: file_upload's number from a file ($(number "$1" count))" is_num "$(number "$1" count)" 7
    check "$3: recorded for this build" [ "$(number_build "$1" count)" = "$b" ]
    check "$3: file_upload's number from a function ($(number "$1" answer))" is_num "$(number "$1" answer)" 42
    check "$3: string_download's number from the file it wrote ($(number "$1" sd))" is_num "$(number "$1" sd)" 12.5
    # the artifact's size as a number
    size=$(api "builds/$b/artifacts" | jpy '[a["size"] for a in d["artifacts"] if a["name"] == "a.txt"][0]')
    v=$(number "$1" "artifact_size:up")
    check "$3: artifact_size:up is the artifact's size ($v, $size)" is_num "$v" 5
    check "$3: as the API lists it" is_num "$size" 5
    # numbers on apply_patch: patch's stdout and a file the patch added
    check "$3: apply_patch's regex number ($(number "$1" via_regex))" is_num "$(number "$1" via_regex)" 17
    check "$3: apply_patch's file number ($(number "$1" via_file))" is_num "$(number "$1" via_file)" 42
    log=$(log_text "$b" 2)
    check "$3: a transfer logs no 'program finished' line" bash -c '! grep -q "program finished" <<<"$1"' _ "$log"
    check "$3: and no numbers complaint" bash -c '! grep -q "numbers:" <<<"$1"' _ "$log"
}

# bad BUILDER WORKERDIR WHO: rendered paths that leave the workdir
bad() {
    local br b log
    br=$(force "$1")
    b=$(run_req "$br")
    check "$3: the build ends EXCEPTION" build_results_is "$b" 4
    check "$3: the '..' step is EXCEPTION" [ "$(step_results "$b" 1)" = 4 ]
    log=$(log_text "$b" 1)
    check "$3: its log says why ($log)" \
        grep -qF "logfiles.up: the rendered path '../x.log' must not contain '..'" <<<"$log"
    check "$3: its command did not run" [ ! -e "$2/$1/build/ran.txt" ]
    check "$3: the absolute one is EXCEPTION" [ "$(step_results "$b" 2)" = 4 ]
    log=$(log_text "$b" 2)
    check "$3: its log says why ($log)" \
        grep -qF "logfiles.a: the rendered path '/etc/passwd' must be relative to the step's workdir" <<<"$log"
    check "$3: its command did not run" [ ! -e "$2/$1/build/ran2.txt" ]
}

start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
gaps t "$TRASH/w1" kiln-worker
bad bad "$TRASH/w1" kiln-worker

if command -v buildbot-worker >/dev/null; then
    W=$TRASH/bbworker
    start_buildbot_worker "$W" bbw "$M/secrets/bbw"
    check "buildbot-worker attaches" wait_for 40 worker_connected bbw
    gaps tbb "$W" buildbot-worker
    bad badbb "$W" buildbot-worker
else
    not_ok "buildbot-worker is not installed (scripts/install-deps installs it)"
fi

check "the master is still serving" worker_connected w1
mkdir -p "$TRASH/badcfg"
echo 'local s = file_upload { workersrc = "a", masterdest = "a", numbers = { n = "(\\d+)" } }' > "$TRASH/badcfg/master.lua"
out=$("$KILN" checkconfig "$TRASH/badcfg" 2>&1)
check "checkconfig refuses a regex on a transfer, naming the kind ($out)" \
    grep -qF "master.lua:1: file_upload 'file_upload': numbers: 'n': file_upload has no stdout to search" <<<"$out"
done_testing
