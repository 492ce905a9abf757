#!/bin/bash
# asan-too
# Artifacts end to end (slice "artcli"): uploads listed by `kiln artifacts`
# (table and --json) and downloaded byte for byte by `kiln artifact` (to a
# file, to stdout, resumed with --continue from a partial file, and refused
# when the partial file is not the artifact's start); a directory_upload is
# listed as its tar.  Retention by count (keep_builds) deletes the oldest
# build's artifacts after an upload, and by bytes (max_bytes) at the next
# start and after uploads: deleted artifacts answer 404 (API and CLI) and
# their files go, newer ones remain, a download being served when its
# artifact is deleted still completes, and the master keeps serving.
. "$(dirname "$0")/lib.sh"
require_cmd curl tar

M=$TRASH/master
W=$TRASH/w1
# a fixed worker port: the worker finds the restarted master where it was
WPORT=$(free_port)
conf() {
    new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:$WPORT"
worker { name = "w1", password = secret("w1") }
artifacts = { $1 }
builder { name = "up", workers = { "w1" }, steps = {
  shell { command = "rm -rf tree && mkdir -p tree/sub && head -c 300000 /dev/urandom > a.bin && head -c 1000 /dev/urandom > b.txt && echo hi > tree/x.txt && head -c 20000 /dev/urandom > tree/sub/y.bin" },
  file_upload { workersrc = "a.bin", masterdest = "a.bin" },
  file_upload { workersrc = "b.txt", masterdest = "docs/b.txt" },
  directory_upload { workersrc = "tree", masterdest = "tree", compress = "gz" },
} }
LUA
}
conf 'keep_builds = 2'
printf 'art-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$W" w1 "$M/secrets/w1"
check "kiln-worker attaches" wait_for 60 worker_connected w1
export KILN_URL=$URL

run() { local br; br=$(force up) || return 1; wait_for 90 request_done "$br" || return 1; build_of_request "$br"; }
# keep the worker's files of build B (the next build overwrites them)
keep() { mkdir -p "$TRASH/orig/$1" && cp -r "$W/up/build/a.bin" "$W/up/build/b.txt" "$W/up/build/tree" "$TRASH/orig/$1/"; }
ids_of() { api "builds/$1/artifacts" | jpy '" ".join(str(a["artifactid"]) for a in d["artifacts"])'; }
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/api/v2/$1"; }
# exits_with RC WANT PATTERN TEXT: the exit status was WANT and TEXT matches
exits_with() { [ "$1" = "$2" ] && grep -q -- "$3" <<<"$4"; }

b1=$(run); keep "$b1"
check "build 1 succeeds" build_results_is "$b1" 0

# ---- the list
out=$("$KILN" artifacts "$b1" 2>&1)
diag "$out"
check "kiln artifacts has a header" grep -q '^ID  *STEP  *NAME  *SIZE  *SHA256  *URL$' <<<"$out"
sha=$(sha256sum < "$TRASH/orig/$b1/a.bin" | cut -d' ' -f1)
check "a.bin's row: its step, size, sha256 and URL" grep -Eq "^[0-9]+ +file_upload +a.bin +300000 +$sha +$URL/api/v2/artifacts/[0-9]+/download\$" <<<"$out"
check "the directory is listed as its tar" grep -Eq " tree.tar.gz +[0-9]+ " <<<"$out"
json=$("$KILN" artifacts "$b1" --json)
names=$(jpy '[a["name"] for a in d]' <<<"$json")
check "--json lists the three ($names)" [ "$names" = '["a.bin", "docs/b.txt", "tree.tar.gz"]' ]
check "--json has step and url" [ "$(jpy 'all(a["step"] and a["url"].endswith("/api/v2/artifacts/%d/download" % a["artifactid"]) for a in d)' <<<"$json")" = true ]
out=$("$KILN" artifacts 9999 2>&1); rc=$?
check "an unknown build exits 1 ($out)" [ "$rc" = 1 ]
out=$("$KILN" artifacts nope 2>&1); rc=$?
check "a bad build ref is a usage error ($rc)" [ "$rc" = 2 ]
check "--help describes the verb" sh -c "'$KILN' artifacts --help | grep -q -- '--json'"
check "kiln --help lists both verbs" sh -c "'$KILN' --help | grep -q '^  artifacts ' && '$KILN' --help | grep -q '^  artifact '"

# ---- downloads
set -- $(ids_of "$b1"); A1=$1 B1=$2 T1=$3
"$KILN" artifact "$A1" -o "$TRASH/a.bin"
check "download to a file is byte for byte" cmp -s "$TRASH/a.bin" "$TRASH/orig/$b1/a.bin"
"$KILN" artifact "$B1" > "$TRASH/b.txt"
check "download to stdout is byte for byte" cmp -s "$TRASH/b.txt" "$TRASH/orig/$b1/b.txt"
mkdir -p "$TRASH/tree-got"
"$KILN" artifact "$T1" -o "$TRASH/tree.tar.gz" && tar -xzf "$TRASH/tree.tar.gz" -C "$TRASH/tree-got"
check "the directory's tar holds the directory" diff -r "$TRASH/tree-got" "$TRASH/orig/$b1/tree"
check "the directory is extracted on the master too" diff -r "$M/artifacts/$b1/tree" "$TRASH/orig/$b1/tree"
head -c 123457 "$TRASH/orig/$b1/a.bin" > "$TRASH/part.bin"
"$KILN" artifact "$A1" -o "$TRASH/part.bin" --continue
check "--continue completes a partial file" cmp -s "$TRASH/part.bin" "$TRASH/orig/$b1/a.bin"
"$KILN" artifact "$A1" -o "$TRASH/part.bin" --continue
check "--continue on a whole file leaves it whole" cmp -s "$TRASH/part.bin" "$TRASH/orig/$b1/a.bin"
head -c 1000 /dev/zero > "$TRASH/bad.bin"
out=$("$KILN" artifact "$A1" -o "$TRASH/bad.bin" --continue 2>&1); rc=$?
check "--continue from a wrong start fails on the sha256 ($out)" exits_with "$rc" 1 "expected 300000 bytes with sha256 $sha" "$out"
out=$("$KILN" artifact "$A1" --continue 2>&1); rc=$?
check "--continue without --output is a usage error" [ "$rc" = 2 ]

# ---- retention by count: the third build's first upload drops build 1's
b2=$(run); keep "$b2"
b3=$(run); keep "$b3"
check "builds 2 and 3 succeed" sh -c "[ '$(build_field "$b2" results)' = 0 ] && [ '$(build_field "$b3" results)' = 0 ]"
check "build 1's artifacts are gone from the list" [ -z "$(ids_of "$b1")" ]
check "GET /artifacts/N answers 404" [ "$(status_of "artifacts/$A1")" = 404 ]
check "and /download too" [ "$(status_of "artifacts/$A1/download")" = 404 ]
check "with Buildbot's error shape" grep -q "^not found while getting from endpoint for /artifacts/n:artifactid" <<<"$(api "artifacts/$A1" | jpy 'd["error"]')"
out=$("$KILN" artifact "$A1" -o "$TRASH/x" 2>&1); rc=$?
check "kiln artifact says so ($out)" exits_with "$rc" 1 "no artifact $A1" "$out"
check "build 1's files and directory are removed" wait_for 60 test ! -e "$M/artifacts/$b1"
check "builds 2 and 3 keep theirs" sh -c "[ -n '$(ids_of "$b2")' ] && [ -n '$(ids_of "$b3")' ]"
set -- $(ids_of "$b2"); A2=$1
"$KILN" artifact "$A2" -o "$TRASH/a2.bin"
check "build 2's a.bin still downloads byte for byte" cmp -s "$TRASH/a2.bin" "$TRASH/orig/$b2/a.bin"

# ---- retention by bytes, at the next start
all=$( (ids_of "$b2"; ids_of "$b3") | tr '\n' ' ')
sizes=$(for i in $all; do api "artifacts/$i" | jpy 'd["artifacts"][0]["size"]'; done | tr '\n' ' ')
check "master stops" stop_pid "$MASTER_PID"
conf 'max_bytes = "450 kB"'
check "master restarts with max_bytes" start_master "$M"
check "kiln-worker attaches again" wait_for 30 worker_connected w1
export KILN_URL=$URL
gone=$(for i in $all; do [ "$(status_of "artifacts/$i")" = 404 ] && echo "$i"; done | tr '\n' ' ')
verdict=$(python3 - "$all" "$sizes" "$gone" 450000 <<'PY'
import sys
ids = [int(x) for x in sys.argv[1].split()]
sizes = dict(zip(ids, (int(x) for x in sys.argv[2].split())))
gone = set(int(x) for x in sys.argv[3].split())
cap = int(sys.argv[4])
ids.sort()
k = len(gone)
left = sum(sizes[i] for i in ids[k:])
if set(ids[:k]) != gone: print("not the oldest:", sorted(gone)); sys.exit()
if left > cap: print("still over:", left); sys.exit()
if k and left + sizes[ids[k - 1]] <= cap: print("deleted too many"); sys.exit()
print("ok", k, left)
PY
)
check "the oldest artifacts went until under 450 kB ($verdict)" grep -q '^ok [1-9]' <<<"$verdict"

# ---- a download being served when its artifact is deleted completes
set -- $(ids_of "$b3"); A3=$1
curl -s --max-time 60 --limit-rate 30k -o "$TRASH/slow.bin" "$URL/api/v2/artifacts/$A3/download" &
CURL_PID=$!
e2e_track $CURL_PID
check "the slow download has started" wait_for 60 test -s "$TRASH/slow.bin"
b4=$(run); keep "$b4"
check "build 4 succeeds" build_results_is "$b4" 0
check "build 3's a.bin was deleted meanwhile" [ "$(status_of "artifacts/$A3")" = 404 ]
wait "$CURL_PID"
check "the download in flight still got every byte" cmp -s "$TRASH/slow.bin" "$TRASH/orig/$b3/a.bin"
total=0
for b in "$b2" "$b3" "$b4"; do total=$((total + $(api "builds/$b/artifacts" | jpy 'sum(a["size"] for a in d["artifacts"])'))); done
check "the total stays under max_bytes ($total)" [ "$total" -le 450000 ]
set -- $(ids_of "$b4"); A4=$1
"$KILN" artifact "$A4" -o "$TRASH/a4.bin"
check "the newest upload downloads byte for byte" cmp -s "$TRASH/a4.bin" "$TRASH/orig/$b4/a.bin"
check "the master keeps serving" sh -c "curl -sf --max-time 10 '$URL/api/v2/builds' >/dev/null"
check "the master logged the deletions" grep -q 'deleted [0-9]* artifacts' "$M/master.log"

# ---- checkconfig's errors
mkdir -p "$TRASH/bad"
echo 'artifacts = { max_bytes = "lots" }' > "$TRASH/bad/master.lua"
out=$("$KILN" checkconfig "$TRASH/bad" 2>&1)
check "checkconfig refuses a bad max_bytes ($out)" grep -q "master.lua:1: artifacts: 'max_bytes' must be a size" <<<"$out"
done_testing
