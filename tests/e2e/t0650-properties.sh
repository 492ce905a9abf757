#!/bin/bash
# asan-too
# Build properties in Buildbot's layers and shape: global properties, the
# buildset's (scheduler, force), the builder's, the worker's and the
# build's own, each with its source, at /api/v2/builds/N/properties; later
# layers win; builder env reaches command steps under the step's own env.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
properties = { project_name = "kiln-e2e", layered = "global", jobs = 2 }
worker { name = "w1", password = secret("w1"), properties = { arch = "x86_64", layered = "worker" } }
builder { name = "b", workers = { "w1" },
  properties = { layered = "builder", flavour = "plain", debug = true },
  env = { FROM_BUILDER = "builder-env", BOTH = "builder" },
  steps = {
    shell { name = "env", command = "echo from=$FROM_BUILDER both=$BOTH", env = { BOTH = "step" } },
  } }
force_scheduler { name = "force", builders = { "b" }, properties = { layered = "scheduler" } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

br=$(force b)
check "the build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "it succeeds" build_results_is "$b" 0
props=$(api "builds/$b/properties")
prop() { echo "$props" | jpy "d['properties'][0]['$1']"; }
check "a global property, source master.lua ($(prop project_name))" [ "$(prop project_name)" = '["kiln-e2e", "master.lua"]' ]
check "a global number stays a number" [ "$(prop jobs)" = '[2, "master.lua"]' ]
check "the worker's layer wins over the builder's, the scheduler's, the global ($(prop layered))" [ "$(prop layered)" = '["worker", "Worker"]' ]
check "a builder property ($(prop flavour))" [ "$(prop flavour)" = '["plain", "Builder"]' ]
check "a builder boolean" [ "$(prop debug)" = '[true, "Builder"]' ]
check "a worker property" [ "$(prop arch)" = '["x86_64", "Worker"]' ]
check "buildername from the Builder" [ "$(prop buildername)" = '["b", "Builder"]' ]
check "buildnumber from the Build" [ "$(prop buildnumber)" = '[1, "Build"]' ]
check "workername from the Worker" [ "$(prop workername)" = '["w1", "Worker"]' ]
check "scheduler from the Scheduler" [ "$(prop scheduler)" = '["force", "Scheduler"]' ]
check "branch from the Build (empty: none given, as Buildbot)" [ "$(prop branch)" = '["", "Build"]' ]
check "builddir from the Worker" [ "$(echo "$props" | jpy "d['properties'][0]['builddir'][1]")" = Worker ]
check "owners from the force call's owner ($(prop owners))" [ "$(prop owners)" = '[[""], "Build"]' ]
check "buildsets/N/properties has the buildset's layer only" [ "$(api "buildsets/$(api "buildrequests/$br" | jpy 'd["buildrequests"][0]["buildsetid"]')/properties" | jpy "d['properties'][0]['layered']")" = '["scheduler", "Scheduler"]' ]
out=$(log_text "$b" 1)
check "builder env reaches the step, the step's env wins ($out)" grep -q "from=builder-env both=step" <<<"$out"

mkdir -p "$TRASH/bad"
echo 'properties = "nope"' > "$TRASH/bad/master.lua"
out=$("$KILN" checkconfig "$TRASH/bad" 2>&1)
check "checkconfig refuses global properties that are not a table ($out)" grep -q "master.lua:1: setting: 'properties' must be a table" <<<"$out"
done_testing
