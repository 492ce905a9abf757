#!/bin/bash
# asan-too
# A master on PostgreSQL (issue 14)
# against a throwaway server (scripts/pg-start): without the variable the
# URL is refused when the config loads, naming the variable; with it the
# master starts (migrations, upserts, recovery, all before it serves),
# a real kiln-worker attaches, forced builds run step by step and their
# rows, logs and results are served by the API and stored on the server
# (psql counts them); a change through the change hook is stored (its
# author a user) and built by a single_branch scheduler, its blamelist the
# author; so is a commit a git poller finds; a TAP test step's results are
# stored and served; a failing build fails; builds
# are numbered per
# builder; a master killed (SIGKILL) during a build is started again: the
# build it ran ends RETRY, "interrupted", and its request is built again.
. "$(dirname "$0")/lib.sh"
require_cmd curl
pg_server

export GIT_AUTHOR_NAME="Ann Dev" GIT_AUTHOR_EMAIL=ann@example.org
export GIT_COMMITTER_NAME="Ann Dev" GIT_COMMITTER_EMAIL=ann@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME=$TRASH
SRC=$TRASH/src
git init -q -b main "$SRC"
echo one > "$SRC/a.txt"
git -C "$SRC" add a.txt && git -C "$SRC" commit -qm "initial"

M=$TRASH/master
new_master "$M" <<LUA
database = "$PGURL"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = {
  shell { name = "hello", command = { "echo", "hello from postgresql" } },
  shell { name = "wait", command = { "sh", "-c", "test -f '$TRASH/hold' && sleep 30; exit 0" } },
} }
builder { name = "tests", workers = { "w1" }, steps = {
  test { name = "tap", command = "printf '1..3\\nok 1 - parses\\nnot ok 2 - adds\\nok 3 - skipped # SKIP no network\\n'", format = "tap" },
} }
builder { name = "broken", workers = { "w1" }, steps = {
  shell { name = "fails", command = { "sh", "-c", "echo boom; exit 3" } },
} }
local start = '"\$KILN_WORKER_BIN" create "\$KILN_WORKER_DIR" --master "\$KILN_MASTER" '
  .. '--name "\$KILN_WORKER_NAME" --password-file "\$KILN_WORKER_PASSWORD_FILE" >/dev/null '
  .. '&& exec "\$KILN_WORKER_BIN" start "\$KILN_WORKER_DIR"'
worker { name = "lw", password = secret("w1"),
         latent = { start = start, stop = { "true" }, idle_timeout = 2, start_timeout = 60 } }
worker { name = "nostart", password = secret("w1"),
         latent = { start = { "sh", "-c", "echo no such cloud >&2; exit 4" }, stop = { "true" },
                    start_timeout = 30 } }
builder { name = "onlatent", workers = { "lw" }, steps = { shell { command = "echo on-latent" } } }
builder { name = "neverstarts", workers = { "nostart" }, steps = { shell { command = "true" } } }
force_scheduler { name = "force", builders = { "b", "broken", "tests", "onlatent", "neverstarts" } }
builder { name = "tryb", workers = { "w1" }, steps = {
  shell { name = "checkout", command =
    "rm -rf src && git clone -q \"\$KILN_REPOSITORY\" src && cd src && git checkout -q \"\$KILN_REVISION\"" },
  apply_patch { workdir = "build/src" },
  shell { name = "show", command = "cat a.txt", workdir = "build/src" },
} }
try_scheduler { name = "try", builders = { "tryb" }, token = secret("try") }
single_branch { name = "main", builders = { "b" }, change_filter = { branch = "main" } }
git_poller { name = "src", repository = "$SRC", branches = { "main" }, interval = 3600 }
LUA
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$M/secrets/w1"
printf 'hook-token' > "$M/secrets/hook"
printf 'try-token' > "$M/secrets/try"

# ---- checkconfig takes the URL, and never echoes it -------------------------
out=$("$KILN" checkconfig "$M" 2>&1); rc=$?
check "checkconfig accepts the PostgreSQL URL ($out)" [ "$rc" = 0 ]
check "... without echoing the URL" sh -c "! grep -q '$TRASH/pg' <<'EOF'
$out
EOF"

# ---- a master on PostgreSQL ------------------------------------------------
check "master starts on PostgreSQL" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

forced=()
for i in 1 2 3; do forced+=("$(force b)"); done
check "three forced requests (${forced[*]})" [ "${#forced[@]}" = 3 ] && [ -n "${forced[2]}" ]
for br in "${forced[@]}"; do
    check "request $br completes" wait_for 60 request_done "$br"
done
res=$(api "builds?builderid=$(api builders/b | jpy 'd["builders"][0]["builderid"]')&order=number" |
    jpy '[[b["number"], b["results"], b["state_string"]] for b in d["builds"]]')
check "three builds, numbered 1 to 3, successful ($res)" \
    [ "$res" = '[[1, 0, "build successful"], [2, 0, "build successful"], [3, 0, "build successful"]]' ]
bid=$(build_of_request "${forced[0]}")
steps=$(api "builds/$bid/steps" | jpy '[[s["name"], s["results"]] for s in d["steps"]]')
check "its steps, in order ($steps)" [ "$steps" = '[["worker_preparation", 0], ["hello", 0], ["wait", 0]]' ]
hello=$(api "builds/$bid/steps" | jpy '[s["stepid"] for s in d["steps"] if s["name"] == "hello"][0]')
logid=$(api "steps/$hello/logs" | jpy 'd["logs"][0]["logid"]')
check "the step's log is served from PostgreSQL" sh -c "curl -sS '$URL/api/v2/logs/$logid/raw' | grep -q 'hello from postgresql'"
check "psql finds the builds on the server" [ "$(pg "select count(*) from builds where complete = 1 and results = 0")" = 3 ]
check "... and the log's lines" [ "$(pg "select num_lines > 0 from logs where id = $logid")" = t ]

# ---- a change through the hook --------------------------------------------
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Authorization: Bearer hook-token' \
    -H 'Content-Type: application/json' \
    -d '{"author": "Zoë <zoe@example.org>", "branch": "main", "revision": "abc123", "files": ["f.c"], "repository": "https://x/r.git", "comments": "fix"}' \
    "$URL/change_hook/base")
check "the change hook takes a change ($code)" [ "$code" = 200 ]
chg=$(api changes | jpy '[[c["author"], c["revision"], c["files"]] for c in d["changes"]]')
check "the change is stored ($chg)" [ "$chg" = '[["Zo\u00eb <zoe@example.org>", "abc123", ["f.c"]]]' ]
check "the scheduler builds it (build 4 of b)" wait_for 60 sh -c "[ -n \"\$(curl -sS '$URL/api/v2/builds?order=-buildid&limit=1&complete=true' | /usr/bin/python3 -c 'import json,sys; b=json.load(sys.stdin)[\"builds\"]; print(b[0][\"number\"] if b and b[0][\"number\"] == 4 else \"\")')\" ]"
cb=$(api "builds?order=-buildid&limit=1" | jpy 'd["builds"][0]["buildid"]')
check "its changes: the hook's" [ "$(api "builds/$cb/changes" | jpy '[c["revision"] for c in d["changes"]]')" = '["abc123"]' ]
check "its blamelist: the author" [ "$(api "builds/$cb?property=blamelist" | jpy 'd["builds"][0]["properties"]["blamelist"][0]')" = '["Zo\u00eb <zoe@example.org>"]' ]
check "psql finds the author's user" [ "$(pg "select count(*) from users_info where attr_data = 'zoe@example.org'")" -ge 1 ]

# ---- a change seen by a git poller ------------------------------------------
polled() { [ "$(api "changesources/src" | jpy 'd["changesources"][0]["last_poll"] is not None')" = true ]; }
check "the poller's first poll is done" wait_for 60 polled
echo two >> "$SRC/a.txt"
git -C "$SRC" commit -qam "second"
rev=$(git -C "$SRC" rev-parse HEAD)
rpc changesources/src '{"jsonrpc":"2.0","id":1,"method":"poll","params":{}}' >/dev/null
seen() { [ "$(api "changes?revision=$rev" | jpy 'd["meta"]["total"]')" = 1 ]; }
check "the poller stores the new commit as a change" wait_for 60 seen
check "the scheduler builds it" wait_for 60 sh -c "curl -sS '$URL/api/v2/builds?order=-buildid&limit=1&complete=true' | grep -q '\"number\": 5'"
pb=$(api "builds?order=-buildid&limit=1" | jpy 'd["builds"][0]["buildid"]')
check "... at its revision" [ "$(api "builds/$pb/changes" | jpy '[c["revision"] for c in d["changes"]]')" = "[\"$rev\"]" ]
check "psql finds the poller's state" [ "$(pg "select count(*) from object_state where name = 'poller:src'")" = 1 ]

# ---- test results ------------------------------------------------------------
tst=$(force tests)
check "a build with a TAP test step completes" wait_for 60 request_done "$tst"
tb=$(build_of_request "$tst")
sets=$(api "builds/$tb/test_result_sets" | jpy '[[s["tests_passed"], s["tests_failed"], s["tests_skipped"], s["complete"]] for s in d["test_result_sets"]]')
check "its test result set: 1 passed, 1 failed, 1 skipped ($sets)" [ "$sets" = '[[1, 1, 1, true]]' ]
setid=$(api "builds/$tb/test_result_sets" | jpy 'd["test_result_sets"][0]["test_result_setid"]')
names=$(api "test_result_sets/$setid/results" | jpy 'sorted([r["test_name"], r["results"]] for r in d["test_results"])')
check "its results, named ($names)" [ "$names" = '[["adds", 2], ["parses", 0], ["skipped", 3]]' ]
check "psql finds the names stored once" [ "$(pg "select count(*) from test_names")" = 3 ]

brk=$(force broken)
check "a failing build completes" wait_for 60 request_done "$brk"
check "... with results FAILURE" [ "$(api "buildrequests/$brk" | jpy 'd["buildrequests"][0]["results"]')" = 2 ]

# ---- latent workers (their look at the queue is answered on the loop) -------
lat=$(force onlatent)
check "a latent worker starts for a request and builds it" wait_for 90 request_done "$lat"
check "... successfully" [ "$(api "buildrequests/$lat" | jpy 'd["buildrequests"][0]["results"]')" = 0 ]
lstate() { [ "$(api workers/lw | jpy 'd["workers"][0]["latent_state"]')" = "$1" ]; }
check "idle, it is stopped" wait_for 60 lstate stopped
nev=$(force neverstarts)
check "a latent worker that cannot start: its request completes" wait_for 90 request_done "$nev"
check "... EXCEPTION" [ "$(api "buildrequests/$nev" | jpy 'd["buildrequests"][0]["results"]')" = 4 ]
nb=$(build_of_request "$nev")
check "... its build says why" sh -c "curl -sS '$URL/api/v2/builds/$nb' | grep -q 'worker did not start'"

# ---- a try build: its patch is read as the build starts --------------------
git clone -q "$SRC" "$TRASH/dev"
(cd "$TRASH/dev" && git checkout -q -b topic origin/main && printf 'one\ntried\n' > a.txt)
tryout=$(cd "$TRASH/dev" && "$KILN" try --master "$URL" --builders tryb --try-token try-token 2>&1)
check "kiln try is accepted ($tryout)" grep -q '^buildset [0-9]*: .*-byte patch on' <<<"$tryout"
trybs=$(sed -n 's/^buildset \([0-9]*\):.*/\1/p' <<<"$tryout")
trybr=$(api "buildrequests?buildsetid=$trybs" | jpy 'd["buildrequests"][0]["buildrequestid"]')
check "the try build completes" wait_for 60 request_done "$trybr"
check "... successfully" [ "$(api "buildrequests/$trybr" | jpy 'd["buildrequests"][0]["results"]')" = 0 ]
trybid=$(build_of_request "$trybr")
check "the patch was applied" grep -qx 'otried' <<<"$(log_text "$trybid" 3)"

# ---- killed during a build, started again ----------------------------------
touch "$TRASH/hold"
held=$(force b)
check "a build runs the long step" wait_for 60 sh -c "curl -sS '$URL/api/v2/builds?buildrequestid=$held&complete=false' | grep -q '\"buildid\"'"
heldbuild=$(build_of_request "$held")
kill -KILL "$MASTER_PID"
wait "$MASTER_PID" 2>/dev/null
rm -f "$TRASH/hold"
stop_pid "$WORKER_PID" # it would look for the old port: made again below
check "the master starts again" start_master "$M"
rm -rf "$TRASH/w1"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "the killed build ended RETRY, interrupted" wait_for 30 sh -c "[ \"\$(curl -sS '$URL/api/v2/builds/$heldbuild' | /usr/bin/python3 -c 'import json,sys; b=json.load(sys.stdin)[\"builds\"][0]; print(b[\"results\"], \"interrupted\" in b[\"state_string\"])')\" = '5 True' ]"
check "the worker attaches again" wait_for 60 worker_connected w1
check "its request is built again and completes" wait_for 90 request_done "$held"
check "... successfully" [ "$(api "buildrequests/$held" | jpy 'd["buildrequests"][0]["results"]')" = 0 ]
check "two builds of that request" [ "$(api "builds?buildrequestid=$held" | jpy 'd["meta"]["total"]')" = 2 ]
check "the master stops cleanly" stop_pid "$MASTER_PID"
check "no error in the master's log" sh -c "! grep -E ' error ' '$M/master.log'"
check "no call on a build's path fell short on PostgreSQL" sh -c "! grep -E 'on PostgreSQL (yet|while)' '$M/master.log'"
grep -E ' (error|warn) ' "$M/master.log" | head -n 10 | sed 's/^/# /'
done_testing
