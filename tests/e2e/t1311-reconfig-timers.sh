#!/bin/bash
# asan-too
# What a reconfig keeps (slice "reconfig"): a tree-stable timer pending
# across a reconfig fires once, at its deadline; a periodic scheduler keeps
# its schedule; an unchanged change source goes on, a changed one restarts
# from its stored state: no change comes twice, none is lost.  The master's
# test clock (KILN_TEST_CLOCK=1) moves time.
. "$(dirname "$0")/lib.sh"

export GIT_AUTHOR_NAME="Ann Dev" GIT_AUTHOR_EMAIL=ann@example.org
export GIT_COMMITTER_NAME="Ann Dev" GIT_COMMITTER_EMAIL=ann@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME=$TRASH
git config --global init.defaultBranch main
SRC=$TRASH/src
git init -q "$SRC"
echo one > "$SRC/a.txt"
git -C "$SRC" add a.txt && git -C "$SRC" commit -qm "initial"

export KILN_TEST_CLOCK=1
M=$TRASH/master
mkdir -p "$M/secrets"
printf 'w1-secret' > "$M/secrets/w1"
write_config() { # POLLER_INTERVAL EXTRA_LUA
    cat > "$M/master.lua" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1"), max_builds = 4 }
builder { name = "main", workers = { "w1" }, steps = { shell { command = "true" } } }
builder { name = "p", workers = { "w1" }, steps = { shell { command = "true" } } }
git_poller { name = "proj", repository = "$SRC", branches = { "main" }, interval = $1 }
single_branch { name = "sb", builders = { "main" }, tree_stable_timer = 300,
  change_filter = { branch = "main" } }
periodic { name = "per", builders = { "p" }, period = 600 }
$2
LUA
}
write_config 3600 ""
check "master starts" start_master "$M"

advance() { rpc _test/clock "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"advance\",\"params\":{\"seconds\":$1}}" | jpy 'd["result"]["now"]' >/dev/null; }
nbs() { api buildsets | jpy "len([b for b in d['buildsets'] if \"named '$1'\" in b['reason']])"; }
polled() { [ "$(api "changesources/$1" | jpy 'd["changesources"][0]["last_poll"] is not None')" = true ]; }
poll() { rpc "changesources/$1" '{"jsonrpc":"2.0","id":1,"method":"poll","params":{}}' >/dev/null; }
nchanges() { api changes | jpy 'd["meta"]["total"]'; }
has_changes() { [ "$(nchanges)" = "$1" ]; }
reconfig_ok() { # PATTERN
    out=$("$KILN" reconfig "$M" 2>&1) || { diag "$out"; return 1; }
    diag "$out"
    printf '%s\n' "$out" | grep -q -- "$1"
}

check "the poller's first poll is done" wait_for 20 polled proj
check "the periodic scheduler ran at start" wait_for 20 sh -c "[ \"\$(curl -sS --max-time 10 '$URL/api/v2/buildsets' | python3 -c 'import json,sys; print(len([b for b in json.load(sys.stdin)[\"buildsets\"] if \"named \\x27per\\x27\" in b[\"reason\"]]))')\" = 1 ]"

# a change from the poller starts sb's tree-stable timer
echo two > "$SRC/a.txt"
git -C "$SRC" commit -qam "c1"
c1=$(git -C "$SRC" rev-parse HEAD)
poll proj
check "the commit becomes one change" wait_for 20 has_changes 1
advance 100
check "no sb buildset 100 s into the 300 s timer" [ "$(nbs sb)" = 0 ]

# reconfig: a builder added, the schedulers and the poller unchanged
write_config 3600 'builder { name = "extra", workers = { "w1" }, steps = { shell { command = "true" } } }'
check "reconfig with an added builder" reconfig_ok '3 builders (+1 -0 ~0), 1 workers (+0 -0 ~0), [0-9]* schedulers (+0 -0 ~0), 1 change sources (+0 -0 ~0)'
advance 150
check "250 s in: still no sb buildset" [ "$(nbs sb)" = 0 ]
advance 60
check "the pending timer fired after the reconfig" [ "$(nbs sb)" = 1 ]
advance 600
check "... once" [ "$(nbs sb)" = 1 ]

# periodic: ran at 0 and at 600 (the advance above crossed it); a reconfig keeps the schedule
np=$(nbs per)
check "the periodic scheduler ran again at 600 s" [ "$np" = 2 ]
write_config 3600 ""
check "reconfig with the builder removed" reconfig_ok '2 builders (+0 -1 ~0)'
advance 300
check "no periodic run before its time" [ "$(nbs per)" = 2 ]
advance 300
check "the periodic run at 1200 s" [ "$(nbs per)" = 3 ]

# the change source: changed, it restarts from its stored state
write_config 1800 ""
check "reconfig with the poller changed" reconfig_ok '1 change sources (+0 -0 ~1)'
check "the poller polled again" wait_for 20 sh -c "[ \$(grep -c \"poller 'proj': git\" '$M/master.log') = 2 ]"
echo three > "$SRC/a.txt"
git -C "$SRC" commit -qam "c2"
c2=$(git -C "$SRC" rev-parse HEAD)
poll proj
check "the next commit is one more change" wait_for 20 has_changes 2
poll proj
check "the changes are c1 and c2, once each" [ "$(api changes | jpy 'sorted(c["revision"] for c in d["changes"])' )" = "$(python3 -c "import json,sys; print(json.dumps(sorted(sys.argv[1:])))" "$c1" "$c2")" ]
stop_pid "$MASTER_PID"
check "SIGTERM stops it cleanly" [ $? = 0 ]
done_testing
