#!/bin/bash
# asan-too
# triggerable schedulers and the trigger step: a waiting trigger takes the
# worst result of the builds it started (FAILURE propagates), properties
# pass through set_properties, the triggered buildset records its parent
# build; a non-waiting trigger succeeds at once; a dependent scheduler runs
# after its upstream's buildset succeeds, and not after one that failed.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1"), max_builds = 4 }
builder { name = "child-ok", workers = { "w1" }, steps = { shell { command = "true" } } }
builder { name = "child-bad", workers = { "w1" }, steps = { shell { command = "exit 1" } } }
builder { name = "parent", workers = { "w1" }, steps = {
  trigger { name = "run-ok", schedulers = { "t-ok" }, wait_for_finish = true,
            set_properties = { flavour = "vanilla", n = 3 } },
  trigger { name = "run-bad", schedulers = { "t-bad" }, wait_for_finish = true },
  shell { name = "after", command = "echo after-ran", always_run = true },
} }
builder { name = "fire", workers = { "w1" }, steps = {
  trigger { schedulers = { "t-bad" } },
} }
builder { name = "up", workers = { "w1" }, steps = { shell { command = "test ! -e /nonexistent-$KILN_BRANCH" } } }
builder { name = "down", workers = { "w1" }, steps = { shell { command = "true" } } }
triggerable { name = "t-ok", builders = { "child-ok" } }
triggerable { name = "t-bad", builders = { "child-bad" } }
force_scheduler { name = "force", builders = { "parent", "fire", "up" } }
dependent { name = "dep", builders = { "down" }, upstream = "force" }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

br=$(force parent)
check "parent completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
steps=$(api "builds/$b/steps" | jpy '",".join("%s=%s" % (s["name"], s["results"]) for s in d["steps"])')
check "waited triggers take their builds' results ($steps)" [ "$steps" = "worker_preparation=0,run-ok=0,run-bad=2,after=0" ]
check "the parent build fails" [ "$(build_field "$b" results)" = 2 ]
kid=$(api "builds?builderid=$(api builders/child-ok | jpy 'd["builders"][0]["builderid"]')" | jpy 'd["builds"][0]["buildid"]')
check "set_properties reach the triggered build" [ "$(api "builds/$kid/properties" | jpy '[d["properties"][0]["flavour"][0], d["properties"][0]["n"][0]]')" = '["vanilla", 3]' ]
kbs=$(api "buildrequests/$(build_field "$kid" buildrequestid)" | jpy 'd["buildrequests"][0]["buildsetid"]')
check "the triggered buildset names its parent build" [ "$(api "buildsets/$kbs" | jpy 'd["buildsets"][0]["parent_buildid"]')" = "$b" ]

br=$(force fire)
check "a trigger that does not wait completes" wait_for 60 request_done "$br"
check "and succeeds whatever the triggered build does" [ "$(build_field "$(build_of_request "$br")" results)" = 0 ]

# dependent: the 'force' buildsets of parent (failed) and fire (succeeded) already ran
ndown() { api "builds?builderid=$(api builders/down | jpy 'd["builders"][0]["builderid"]')" | jpy 'd["meta"]["total"]'; }
check "dependent ran after the succeeding upstream buildset only" wait_for 60 sh -c "[ \"\$(curl -s '$URL/api/v2/buildsets' | /usr/bin/python3 -c 'import json,sys; print(len([b for b in json.load(sys.stdin)[\"buildsets\"] if \"Dependent\" in b[\"reason\"]]))')\" = 1 ]"
br=$(force up)
check "upstream completes" wait_for 60 request_done "$br"
check "its success starts the dependent again" wait_for 60 sh -c "[ \"\$(curl -s '$URL/api/v2/buildsets' | /usr/bin/python3 -c 'import json,sys; print(len([b for b in json.load(sys.stdin)[\"buildsets\"] if \"Dependent\" in b[\"reason\"]]))')\" = 2 ]"
check "dependent builds run" wait_for 30 sh -c "[ \"\$(curl -s '$URL/api/v2/builds?complete=true' | /usr/bin/python3 -c 'import json,sys; print(len([b for b in json.load(sys.stdin)[\"builds\"] if b[\"results\"] == 0]))')\" -ge 5 ]"

done_testing
