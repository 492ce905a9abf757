#!/bin/bash
# asan-too
# Artifact downloads over HTTP: the whole file (200, ETag = sha256,
# Accept-Ranges), one range in each form (bytes=a-b, a-, -n: 206 with
# Content-Range and exactly those bytes), an unsatisfiable one (416 with
# Content-Range: bytes */SIZE), several ranges (the whole file), a missing
# artifact (404) and a file removed from disk (404).
. "$(dirname "$0")/lib.sh"
require_cmd curl

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "up", workers = { "w1" }, steps = {
  shell { command = "head -c 1000000 /dev/urandom > a.bin" },
  file_upload { workersrc = "a.bin", masterdest = "dir/a.bin" },
} }
LUA
printf 'xfer-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
br=$(force up)
check "build ends" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "upload succeeds" build_results_is "$b" 0
F=$M/artifacts/$b/dir/a.bin
aid=$(api "builds/$b/artifacts" | jpy 'd["artifacts"][0]["artifactid"]')
check "GET /artifacts/N" [ "$(api "artifacts/$aid" | jpy 'd["artifacts"][0]["size"]')" = 1000000 ]
D=$URL/api/v2/artifacts/$aid/download
H=$TRASH/h

# get RANGE OUT: the body into OUT, headers into $H, prints the status
get() { curl -sS --max-time 30 -D "$H" -o "$2" ${1:+-H "Range: $1"} -w '%{http_code}' "$D"; }
hdr() { tr -d '\r' < "$H" | awk -v k="$1" 'tolower($1) == k":" { $1 = ""; sub(/^ /, ""); print }'; }

check "whole file: 200" [ "$(get '' "$TRASH/all")" = 200 ]
check "whole file: bytes equal" cmp -s "$F" "$TRASH/all"
check "ETag is the sha256" [ "$(hdr etag)" = "\"$(sha256sum < "$F" | cut -d' ' -f1)\"" ]
check "Accept-Ranges: bytes" [ "$(hdr accept-ranges)" = bytes ]
check "attachment named a.bin" grep -q 'filename="a.bin"' <<<"$(hdr content-disposition)"

check "bytes=100-199: 206" [ "$(get bytes=100-199 "$TRASH/r1")" = 206 ]
check "bytes=100-199: Content-Range" [ "$(hdr content-range)" = "bytes 100-199/1000000" ]
check "bytes=100-199: those bytes" cmp -s "$TRASH/r1" <(tail -c +101 "$F" | head -c 100)
check "bytes=999990-: 206" [ "$(get bytes=999990- "$TRASH/r2")" = 206 ]
check "bytes=999990-: the last 10 bytes" cmp -s "$TRASH/r2" <(tail -c 10 "$F")
check "bytes=-5: 206" [ "$(get bytes=-5 "$TRASH/r3")" = 206 ]
check "bytes=-5: Content-Range" [ "$(hdr content-range)" = "bytes 999995-999999/1000000" ]
check "bytes=-5: the last 5 bytes" cmp -s "$TRASH/r3" <(tail -c 5 "$F")
check "bytes=500000-99999999: clamped to the end" [ "$(get bytes=500000-99999999 "$TRASH/r4")" = 206 ] 
check "clamped range: those bytes" cmp -s "$TRASH/r4" <(tail -c 500000 "$F")
check "bytes=1000000-: 416" [ "$(get bytes=1000000- "$TRASH/r5")" = 416 ]
check "416 names the size" [ "$(hdr content-range)" = "bytes */1000000" ]
check "bytes=-0: 416" [ "$(get bytes=-0 "$TRASH/r6")" = 416 ]
check "several ranges: the whole file (200)" [ "$(get bytes=0-1,5-6 "$TRASH/r7")" = 200 ]
check "several ranges: all bytes" cmp -s "$F" "$TRASH/r7"
check "a malformed range is ignored (200)" [ "$(get bytes=x-y "$TRASH/r8")" = 200 ]

check "no such artifact: 404" [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v2/artifacts/999/download")" = 404 ]
rm -f "$F"
check "file gone from disk: 404" [ "$(get '' "$TRASH/r9")" = 404 ]
done_testing
