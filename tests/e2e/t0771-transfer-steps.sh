#!/bin/bash
# asan-too
# The transfer steps on real workers (kiln-worker, then Debian's
# buildbot-worker 3.7): file_upload and directory_upload land under
# BASEDIR/artifacts/BUILDID with the worker's bytes; file_download,
# string_download (rendered) and json_properties_download write the
# master's bytes on the worker; an upload over maxsize is FAILURE and leaves
# no file; a masterdest rendered outside the artifact directory is
# EXCEPTION with a message saying so; checkconfig refuses a plain one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-build.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
worker { name = "bbw", password = secret("w1") }
local make = shell { command = "rm -rf tree; mkdir -p tree/sub/deeper && head -c 300000 /dev/urandom > src.bin && echo hi > tree/a.txt && head -c 50000 /dev/urandom > tree/sub/b.bin && : > tree/sub/deeper/empty" }
local up = {
  make,
  file_upload { workersrc = "src.bin", masterdest = "out/src.bin", mode = "0640" },
  directory_upload { workersrc = "tree", masterdest = "tree", compress = "gz" },
  file_download { mastersrc = "dl-src.bin", workerdest = "got/dl.bin", mode = "0600" },
  string_download { s = interpolate("builder=%(prop:buildername)s n=%(prop:buildnumber)s"),
                    workerdest = "str.txt" },
  json_properties_download { workerdest = "props.json" },
}
local big = { make, file_upload { workersrc = "src.bin", masterdest = "big.bin", maxsize = 1000 } }
local esc = { make, file_upload { workersrc = "src.bin",
                                  masterdest = interpolate("../%(prop:buildername)s.bin") } }
for _, w in ipairs({ "w1", "bbw" }) do
  builder { name = "up-" .. w, workers = { w }, steps = up }
  builder { name = "big-" .. w, workers = { w }, steps = big }
  builder { name = "esc-" .. w, workers = { w }, steps = esc }
end
LUA
printf 'xfer-secret-%s' "$$" > "$M/secrets/w1"
head -c 200000 /dev/urandom > "$M/dl-src.bin"
check "master starts" start_master "$M"

check_worker() {
    w=$1 W=$2
    b=$(force_build "up-$w" 90)
    A=$M/artifacts/$b
    B=$W/up-$w/build
    check "$w: transfers succeed" build_results_is "$b" 0
    check "$w: uploaded file equal" cmp -s "$B/src.bin" "$A/out/src.bin"
    arts=$(api "builds/$b/artifacts" | jpy '[(a["name"], a["path"], a["size"], a["sha256"]) for a in d["artifacts"] if a["name"] != "tree.tar.gz"]')
    want=$(python3 -c 'import json,sys; print(json.dumps([["out/src.bin", sys.argv[1] + "/out/src.bin", 300000, sys.argv[2]]]))' "$b" "$(sha256sum < "$B/src.bin" | cut -d' ' -f1)")
    check "$w: the upload is an artifact row with its size and sha256" [ "$arts" = "$want" ]
    check "$w: the directory's tar is an artifact row too" [ "$(api "builds/$b/artifacts" | jpy '[a["name"] for a in d["artifacts"]]')" = '["out/src.bin", "tree.tar.gz"]' ]
    aid=$(api "builds/$b/artifacts" | jpy 'd["artifacts"][0]["artifactid"]')
    sid=$(api "builds/$b/steps/2" | jpy 'd["steps"][0]["stepid"]')
    urls=$(api "steps/$sid" | jpy 'd["steps"][0]["urls"]')
    check "$w: the step links its download ($urls)" grep -q "/api/v2/artifacts/$aid/download" <<<"$urls"
    check "$w: upload mode 0640" [ "$(stat -c %a "$A/out/src.bin" 2>/dev/null)" = 640 ]
    check "$w: uploaded tree equal" diff -r "$B/tree" "$A/tree"
    check "$w: downloaded file equal" cmp -s "$M/dl-src.bin" "$B/got/dl.bin"
    check "$w: download mode 0600" [ "$(stat -c %a "$B/got/dl.bin" 2>/dev/null)" = 600 ]
    n=$(build_field "$b" number)
    check "$w: rendered string downloaded" [ "$(cat "$B/str.txt" 2>/dev/null)" = "builder=up-$w n=$n" ]
    pj=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["properties"]["buildername"], d["properties"]["buildnumber"], type(d["sourcestamps"]).__name__)' "$B/props.json" 2>&1)
    check "$w: properties JSON downloaded ($pj)" [ "$pj" = "up-$w $n list" ]

    b=$(force_build "big-$w" 90)
    check "$w: upload over maxsize is FAILURE" build_results_is "$b" 2
    check "$w: and leaves no file" [ ! -e "$M/artifacts/$b/big.bin" ]
    check "$w: nor an artifact row" [ "$(api "builds/$b/artifacts" | jpy 'd["meta"]["total"]')" = 0 ]
    check "$w: no temporary file either" sh -c "! ls -A '$M/artifacts/$b' 2>/dev/null | grep -q ."

    b=$(force_build "esc-$w" 90)
    check "$w: masterdest leaving the artifacts is EXCEPTION" build_results_is "$b" 4
    check "$w: the log says why" grep -q "masterdest '../esc-$w.bin' leaves the build's artifact directory" <<<"$(log_text "$b" 2)"
    check "$w: nothing written outside" [ ! -e "$M/artifacts/esc-$w.bin" ]
}

start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "kiln-worker attaches" wait_for 60 worker_connected w1
check_worker w1 "$TRASH/w1"

if have_buildbot_worker; then
    W=$TRASH/bbw
    start_buildbot_worker "$W" bbw "$M/secrets/w1"
    check "buildbot-worker attaches" wait_for 40 worker_connected bbw
    check_worker bbw "$W"
fi

mkdir -p "$TRASH/bad"
cat > "$TRASH/bad/master.lua" <<'LUA'
local u = file_upload { workersrc = "a", masterdest = "../a" }
LUA
out=$("$KILN" checkconfig "$TRASH/bad" 2>&1)
check "checkconfig refuses a masterdest with '..' ($out)" grep -q "master.lua:1: file_upload: 'masterdest' must not contain '..'" <<<"$out"
done_testing
