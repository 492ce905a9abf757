#!/bin/bash
# asan-too
# Three masters on one PostgreSQL (issue 14) with the same master.lua, three workers
# spread over them (each lists the masters in another order):
# - the services' lease: one master holds it (an object_state row); a git
#   poller declared on all three turns a commit into one change and one
#   buildset, not three; a periodic scheduler runs once per period, not
#   three times;
# - events cross masters (LISTEN/NOTIFY): a /ws subscriber on C sees the
#   "finished" event of every build, whichever master ran it;
# - a burst of 1,000 requests (200 under ASan) forced round-robin on the
#   three masters is built exactly once each;
# - the lease's holder killed with SIGKILL: another master takes the lease
#   once its time is up, and the next commit is one change again.
. "$(dirname "$0")/lib.sh"
require_cmd curl git
/usr/bin/python3 -c 'import websockets' 2>/dev/null || skip_all "python3-websockets is not installed"
pg_server

export GIT_AUTHOR_NAME="Ann Dev" GIT_AUTHOR_EMAIL=ann@example.org
export GIT_COMMITTER_NAME="Ann Dev" GIT_COMMITTER_EMAIL=ann@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME=$TRASH
git config --global init.defaultBranch main
SRC=$TRASH/src
git init -q "$SRC"
echo one > "$SRC/a.txt" && git -C "$SRC" add a.txt && git -C "$SRC" commit -qm initial
SLOW=$TRASH/slow
git init -q "$SLOW"
echo one > "$SLOW/s.txt" && git -C "$SLOW" add s.txt && git -C "$SLOW" commit -qm initial

# the burst: 1,000 requests (200 under the sanitizers, which are slower)
case $KILN_BUILD in
*asan*) N=${KILN_T1422_BURST:-200} ;;
*) N=${KILN_T1422_BURST:-1000} ;;
esac
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TRASH/pw"
for name in A B C; do
    new_master "$TRASH/$name" <<LUA
database = "$PGURL"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
masters = { heartbeat = 0.5, dead_after = 3 }
local all = {}
for i = 1, 3 do
  worker { name = "w" .. i, password = secret("w"), max_builds = 4 }
  all[i] = "w" .. i
end
builder { name = "burst", workers = all, steps = { shell { name = "t", command = "true" } } }
builder { name = "ci", workers = all, steps = { shell { name = "t", command = "true" } } }
builder { name = "tick", workers = all, steps = { shell { name = "t", command = "true" } } }
force_scheduler { name = "force", builders = { "burst" } }
git_poller { name = "src", repository = "$SRC", branches = { "main" }, interval = 0.3 }
git_poller { name = "slow", repository = "$SLOW", branches = { "main" }, interval = 3600 }
single_branch { name = "ci", builders = { "ci" }, change_filter = { branch = "main", repository = "$SRC" },
                tree_stable_timer = 0 }
periodic { name = "tick", builders = { "tick" }, period = 2 }
LUA
    cp "$TRASH/pw" "$TRASH/$name/secrets/w"
done

declare -A P U W
for name in A B C; do
    check "master $name starts" start_master "$TRASH/$name"
    P[$name]=$MASTER_PID; U[$name]=$URL; W[$name]=$WADDR
done
URL=${U[C]}
active() { api masters | jpy 'sorted(m["active"] for m in d["masters"])'; }
check "C lists three active masters ($(active))" [ "$(active)" = '[true, true, true]' ]
holder() { pg "select m.name from object_state s join masters m on m.id = (s.value::json->>'masterid')::bigint where s.name = 'lease:services'"; }
has_holder() { [ -n "$(holder)" ]; }
check "one master holds the services' lease" wait_for 30 has_holder
H=$(basename "$(holder)")
diag "the lease's holder: $H"
check "... and says so in its log" wait_for 10 grep -q 'this master holds the services' "$TRASH/$H/master.log"
nholders() { grep -l 'this master holds the services' "$TRASH"/[ABC]/master.log | wc -l; }
check "... the only one to say so ($(nholders))" [ "$(nholders)" = 1 ]

# a /ws subscriber on C, for builds' "finished" events and changes' "new"
cat > "$TRASH/wsl.py" <<'PY'
import asyncio, json, sys
import websockets

url, out, paths = sys.argv[1], sys.argv[2], sys.argv[3:]


async def main():
    async with websockets.connect("ws://" + url.split("://", 1)[1] + "/ws", max_size=None) as ws:
        for i, p in enumerate(paths):
            await ws.send(json.dumps({"cmd": "startConsuming", "path": p, "_id": i + 1}))
        acked = 0
        with open(out, "a") as f:
            async for m in ws:
                d = json.loads(m)
                if "k" in d:
                    f.write("%s %s\n" % (d["k"], d["m"].get("masterid", "")))
                elif d.get("code") == 200:
                    acked += 1
                    if acked == len(paths):
                        f.write("ready\n")
                f.flush()

asyncio.run(main())
PY
EV=$TRASH/events-C
/usr/bin/python3 "$TRASH/wsl.py" "${U[C]}" "$EV" 'builds/*/finished' 'changes/*/new' 2>"$TRASH/wsl.err" &
e2e_track $!
check "a /ws subscriber on C" wait_for 20 grep -q '^ready' "$EV"

# three workers, each attached to another master first
i=1
for order in "A B C" "B C A" "C A B"; do
    set -- $order
    "$KILN_WORKER" create "$TRASH/w$i" --master "${W[$1]}" --master "${W[$2]}" \
        --master "${W[$3]}" --name "w$i" --password-file "$TRASH/pw" >/dev/null
    start_worker "$TRASH/w$i" "w$i" "$TRASH/pw"
    i=$((i + 1))
done
for i in 1 2 3; do
    check "w$i attaches" wait_for 60 worker_connected "w$i"
done
spread=$(pg "select count(distinct masterid) from workers where masterid is not null")
check "the workers are spread over the three masters ($spread)" [ "$spread" = 3 ]

# one commit, three pollers: one change, one buildset
changes_of() { pg "select count(*) from changes where revision = '$1'"; }
echo two >> "$SRC/a.txt" && git -C "$SRC" commit -qam two
rev=$(git -C "$SRC" rev-parse HEAD)
has_change() { [ "$(changes_of "$rev")" -ge 1 ]; }
check "the commit becomes a change" wait_for 30 has_change
ci_builds() { pg "select count(*) from builds b join builders r on r.id = b.builderid where r.name = 'ci' and b.complete = 1"; }
check "... built" wait_for 60 eval '[ "$(ci_builds)" -ge 1 ]'
# the other masters never polled: their pollers wait for the lease
never_polled() { [ "$(curl -sS --max-time 10 "${U[$1]}/api/v2/changesources/src" | jpy 'd["changesources"][0]["last_poll"]')" = null ]; }
for name in A B C; do
    [ "$name" = "$H" ] && continue
    check "$name never polled" never_polled "$name"
done
check "one change, not three ($(changes_of "$rev"))" [ "$(changes_of "$rev")" = 1 ]
check "one build of it ($(ci_builds))" [ "$(ci_builds)" = 1 ]
check "C's /ws saw the change" wait_for 10 grep -q '^changes/[0-9]*/new' "$EV"

# "poll now" asked on a master without the lease: the holder polls
slow_polled() { [ "$(curl -sS --max-time 10 "${U[$H]}/api/v2/changesources/slow" | jpy 'd["changesources"][0]["last_poll"] is not None')" = true ]; }
check "the holder polled the slow poller once" wait_for 30 slow_polled
cs_master() { curl -sS --max-time 10 "${U[$H]}/api/v2/changesources/slow" | jpy 'd["changesources"][0]["master"]["name"].rsplit("/", 1)[1]'; }
check "its changesource names it as its master ($(cs_master))" [ "$(cs_master)" = "$H" ]
echo two >> "$SLOW/s.txt" && git -C "$SLOW" commit -qam two
srev=$(git -C "$SLOW" rev-parse HEAD)
other=A; [ "$H" = A ] && other=B
URL=${U[$other]}
rpc changesources/slow '{"jsonrpc":"2.0","id":1,"method":"poll","params":{}}' >/dev/null
URL=${U[C]}
has_slow() { [ "$(changes_of "$srev")" = 1 ]; }
check "a poll asked on $other is run by $H: the commit becomes a change" wait_for 30 has_slow

# the periodic scheduler runs once per period across the masters
ticks() { pg "select count(*) from buildsets where reason like '%Periodic%'"; }
check "the periodic scheduler runs (3 times)" wait_for 30 eval '[ "$(ticks)" -ge 3 ]'
gap=$(pg "select coalesce(min(g), 99) from (select submitted_at - lag(submitted_at) over (order by id) as g from buildsets where reason like '%Periodic%') x")
check "... 2 s apart at least, never twice at once (shortest gap $gap s)" /usr/bin/python3 -c "import sys; sys.exit(0 if float('$gap') >= 1.9 else 1)"

# the burst, forced round-robin on the three masters
cat > "$TRASH/burst.py" <<'PY'
import json, sys, urllib.request

n, urls = int(sys.argv[1]), sys.argv[2:]
bid = json.load(urllib.request.urlopen(urls[0] + "/api/v2/builders/burst", timeout=10))["builders"][0]["builderid"]
ids = []
for i in range(n):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "force",
                       "params": {"builderid": str(bid), "reason": "burst %d" % i}}).encode()
    req = urllib.request.Request(urls[i % len(urls)] + "/api/v2/forceschedulers/force", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        ids.append(list(json.load(r)["result"][1].values())[0])
print(len(set(ids)))
PY
forced=$(/usr/bin/python3 "$TRASH/burst.py" "$N" "${U[A]}" "${U[B]}" "${U[C]}")
check "$N requests forced on the three masters ($forced)" [ "$forced" = "$N" ]
burst_done() { [ "$(pg "select count(*) from buildrequests r join builders b on b.id = r.builderid where b.name = 'burst' and r.complete = 1")" = "$N" ]; }
check "all $N complete" wait_for 600 burst_done
once=$(pg "select count(*) from buildrequests r join builders b on b.id = r.builderid where b.name = 'burst' and r.results = 0 and (select count(*) from builds x where x.buildrequestid = r.id) = 1")
check "each built exactly once, successfully ($once)" [ "$once" = "$N" ]
per_master=$(pg "select string_agg(n::text, ' ' order by n) from (select count(*) as n from builds b join builders r on r.id = b.builderid where r.name = 'burst' group by b.masterid) x")
diag "burst builds per master: $per_master"
check "every master ran some of them ($per_master)" [ "$(echo "$per_master" | wc -w)" = 3 ]
seen() { grep -c '^builds/[0-9]*/finished' "$EV"; }
all_builds() { pg "select count(*) from builds where complete = 1"; }
check "C's /ws saw every build finish ($(seen) of $(all_builds))" wait_for 30 eval '[ "$(seen)" -ge "$(all_builds)" ]'
mc=$(pg "select id from masters where name like '%/C'")
check "... those run on A and B too" [ "$(grep '^builds/[0-9]*/finished' "$EV" | awk -v c="$mc" '$2 != c' | wc -l)" -gt 0 ]

# the lease's holder is killed: another master takes the lease
kill -KILL "${P[$H]}"
wait "${P[$H]}" 2>/dev/null
moved() { h=$(holder); [ -n "$h" ] && [ "$(basename "$h")" != "$H" ]; }
check "another master takes the lease once its time is up" wait_for 30 moved
H2=$(basename "$(holder)")
diag "the new holder: $H2"
echo three >> "$SRC/a.txt" && git -C "$SRC" commit -qam three
rev3=$(git -C "$SRC" rev-parse HEAD)
has_change3() { [ "$(changes_of "$rev3")" -ge 1 ]; }
check "the next commit becomes a change" wait_for 30 has_change3
for name in A B C; do
    [ "$name" = "$H" ] || [ "$name" = "$H2" ] && continue
    check "$name still never polled" never_polled "$name"
done
check "... one, not two ($(changes_of "$rev3"))" [ "$(changes_of "$rev3")" = 1 ]
check "... built" wait_for 60 eval '[ "$(ci_builds)" = 2 ]'

for name in A B C; do
    [ "$name" = "$H" ] && continue
    check "$name stops cleanly" stop_pid "${P[$name]}"
done
check "no lease left after the clean stops" [ -z "$(pg "select 1 from object_state where name = 'lease:services' and (value::json->>'until')::float8 > extract(epoch from clock_timestamp())")" ]
check "no error in the live masters' logs" sh -c "! grep -hE ' error ' $(for n in A B C; do [ "$n" != "$H" ] && printf '%s ' "$TRASH/$n/master.log"; done)"
grep -hE ' (error|warn) ' "$TRASH"/[ABC]/master.log | head -n 10 | sed 's/^/# /'
done_testing
