#!/bin/bash
# asan-too
# Branch schedulers driven by changes from /change_hook/base, timed with the
# master's test clock (KILN_TEST_CLOCK=1): the tree-stable timer restarts on
# each change and builds the newest revision with every change in the
# blamelist; any_branch keeps one timer per branch; file_is_important with
# only_important; nightly (cron, UTC) with only_if_changed; a restart in the
# middle of a tree-stable wait resumes the stored deadline.
. "$(dirname "$0")/lib.sh"

export KILN_TEST_CLOCK=1
M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1"), max_builds = 4 }
builder { name = "main", workers = { "w1" }, steps = {
  shell { name = "rev", command = "echo rev=$KILN_REVISION branch=$KILN_BRANCH" } } }
builder { name = "feat", workers = { "w1" }, steps = { shell { command = "true" } } }
builder { name = "night", workers = { "w1" }, steps = { shell { command = "true" } } }
single_branch { name = "sb", builders = { "main" }, tree_stable_timer = 300,
  change_filter = { branch = "main" } }
any_branch { name = "ab", builders = { "feat" }, tree_stable_timer = 60,
  change_filter = { branch_re = "^feature/" },
  file_is_important = { "*.c" }, only_important = true }
nightly { name = "nightly", builders = { "night" }, cron = "0 3 * * *", only_if_changed = true,
  change_filter = { branch = "main" } }
LUA
printf 'hook-token' > "$M/secrets/hook"
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

change() { # BRANCH REVISION FILE
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Authorization: Bearer hook-token' \
        -H 'Content-Type: application/json' \
        -d "{\"author\": \"Ann <ann@example.org>\", \"branch\": \"$1\", \"revision\": \"$2\", \"files\": [\"$3\"], \"repository\": \"repo\"}" \
        "$URL/change_hook/base"
}
advance() { rpc _test/clock "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"advance\",\"params\":{\"seconds\":$1}}" | jpy 'd["result"]["now"]' >/dev/null; }
# buildsets of scheduler $1 (their reason names it), oldest first
of_sched() { api buildsets | jpy "[b for b in d['buildsets'] if \"named '$1'\" in b['reason']]"; }
nbs() { of_sched "$1" | jpy 'len(d)'; }
bs_rev() { of_sched "$1" | jpy 'd[-1]["sourcestamps"][0]["revision"]'; }

check "change r1 accepted" [ "$(change main r1 a.c)" = 200 ]
advance 100
check "no buildset while the tree is not stable" [ "$(nbs sb)" = 0 ]
check "change r2 accepted (restarts the timer)" [ "$(change main r2 b.c)" = 200 ]
advance 250
check "still none 350 s after r1, 250 s after r2" [ "$(nbs sb)" = 0 ]
advance 60
check "one buildset once stable" [ "$(nbs sb)" = 1 ]
check "it builds the newest revision" [ "$(bs_rev sb)" = r2 ]
br=$(api "buildrequests?buildsetid=$(of_sched sb | jpy 'd[0]["bsid"]')" | jpy 'd["buildrequests"][0]["buildrequestid"]')
check "its request completes" wait_for 30 request_done "$br"
b=$(build_of_request "$br")
check "the build saw the revision and branch" grep -qx 'orev=r2 branch=main' <<<"$(log_text "$b" 1)"
check "both changes are the build's changes" [ "$(api "builds/$b/changes" | jpy 'sorted(c["revision"] for c in d["changes"])')" = '["r1", "r2"]' ]
check "the blamelist property names the author" [ "$(api "builds/$b/properties" | jpy 'd["properties"][0]["blamelist"][0]')" = '["Ann <ann@example.org>"]' ]

# any_branch: per-branch timers; unimportant files neither start a timer nor ride along
check "feature/a change" [ "$(change feature/a fa1 x.c)" = 200 ]
advance 30
check "feature/b change" [ "$(change feature/b fb1 y.c)" = 200 ]
check "an unimportant change on feature/a" [ "$(change feature/a fa2 README)" = 200 ]
advance 31
check "feature/a built alone after its own 60 s" [ "$(nbs ab)" = 1 ]
check "with its last important revision" [ "$(bs_rev ab)" = fa1 ]
advance 30
check "feature/b built after its own 60 s" [ "$(nbs ab)" = 2 ]
check "only-unimportant branch builds nothing" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer hook-token' -H 'Content-Type: application/json' -d '{\"author\": \"x\", \"branch\": \"feature/c\", \"files\": [\"doc.md\"]}' $URL/change_hook/base)\" = 200 ]"
advance 100
check "still two any_branch buildsets" [ "$(nbs ab)" = 2 ]

# nightly: 03:00 UTC; it ran zero times so far unless the clock crossed 03:00
n0=$(nbs nightly)
advance 86400
check "nightly ran once in a day (changes on main happened)" [ "$(nbs nightly)" = $((n0 + 1)) ]
advance 86400
check "nightly skipped a day without changes" [ "$(nbs nightly)" = $((n0 + 1)) ]

# a restart in the middle of a tree-stable wait resumes the stored deadline
check "change r3" [ "$(change main r3 c.c)" = 200 ]
advance 200
stop_pid "$MASTER_PID"
check "master restarts" start_master "$M"
advance 90
check "not yet: 290 s of 300" [ "$(nbs sb)" = 1 ]
advance 20
check "built after the restart at the stored deadline" [ "$(nbs sb)" = 2 ]
check "with r3" [ "$(bs_rev sb)" = r3 ]

done_testing
