#!/bin/bash
# Status badges (/badges/BUILDER.svg, src/master/badges.c) and Atom feeds
# (/feeds/builds.atom, /feeds/failures.atom, src/master/feeds.c) against a
# real master and kiln-worker running real builds: each badge says the
# latest build's result (or running, or unknown), per branch with ?branch=,
# is valid SVG with its texts escaped, cacheable (max-age, ETag, 304); each
# feed is valid Atom (python3's xml.etree) with one entry per finished build
# (failed ones only in failures.atom), filtered by ?builder=.
. "$(dirname "$0")/lib.sh"

require_cmd curl python3
M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "hello", workers = { "w1" }, steps = { shell { command = "echo hello" } } }
builder { name = "broken", workers = { "w1" }, steps = { shell { command = "exit 1" } } }
-- fails on the branch "dev" only
builder { name = "flaky", workers = { "w1" },
  steps = { shell { command = interpolate("test '%(prop:branch)s' != dev") } } }
-- waits (bounded) for the file gate
builder { name = "slow", workers = { "w1" },
  steps = { shell { command = "i=0; while [ ! -e '$TRASH/gate' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i+1)); done; test -e '$TRASH/gate'" } } }
force_scheduler { name = "force", builders = { "hello", "broken", "flaky", "slow" } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

# force_branch BUILDER BRANCH: prints the build request id
force_branch() {
    bid=$(api "builders/$1" | jpy 'd["builders"][0]["builderid"]') || return 1
    rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$bid\",\"reason\":\"e2e\",\"branch\":\"$2\"}}" |
        jpy 'list(d["result"][1].values())[0]'
}
# badge PATH: fetches a badge into $TRASH/badge.svg, headers into $TRASH/badge.h
badge() { curl -sS --max-time 10 -o "$TRASH/badge.svg" -D "$TRASH/badge.h" "$URL/badges/$1"; tr -d '\r' <"$TRASH/badge.h" >"$TRASH/badge.hdr"; }
# svg_says WORD: the badge parses as SVG and its right-hand text is WORD
svg_says() {
    python3 - "$TRASH/badge.svg" "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg", root.tag
texts = [t.text for t in root.iter(ns + "text")]
assert texts and texts[-1] == sys.argv[2], texts
PY
}
status_is() { head -n 1 "$TRASH/badge.hdr" | grep -q "^HTTP/1.1 $1"; }

badge hello.svg
check "a builder without builds: 'unknown'" svg_says unknown
check "... 200" status_is 200

br=$(force_branch hello main)
check "hello #1 completes" wait_for 60 request_done "$br"
br=$(force_branch broken main)
check "broken #1 completes" wait_for 60 request_done "$br"
br=$(force_branch flaky main)
check "flaky #1 (main) completes" wait_for 60 request_done "$br"
br=$(force_branch flaky dev)
check "flaky #2 (dev) completes" wait_for 60 request_done "$br"

badge hello.svg
check "hello's badge: success" svg_says success
check "... as image/svg+xml" grep -q '^content-type: image/svg+xml$' "$TRASH/badge.hdr"
check "... cached briefly (max-age=30)" grep -q '^cache-control: max-age=30$' "$TRASH/badge.hdr"
check "... in green" grep -q 'fill="#4c1"' "$TRASH/badge.svg"
etag=$(sed -n 's/^etag: //p' "$TRASH/badge.hdr")
check "... with an ETag ($etag)" grep -qE '^"[0-9a-f]{16}"$' <<<"$etag"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$URL/badges/hello.svg")
check "If-None-Match with it: 304 ($code)" [ "$code" = 304 ]
badge broken.svg
check "broken's badge: failure" svg_says failure
check "... in red" grep -q 'fill="#e05d44"' "$TRASH/badge.svg"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$URL/badges/broken.svg")
check "hello's ETag does not match broken's badge ($code)" [ "$code" = 200 ]
badge flaky.svg
check "flaky's badge: its latest build (dev): failure" svg_says failure
badge 'flaky.svg?branch=main'
check "flaky's badge for ?branch=main: success" svg_says success
badge 'flaky.svg?branch=nosuch'
check "... for a branch never built: unknown" svg_says unknown

badge 'hello.svg?left_text=%3Cb%3E%26%22ci%22&style=flat-square&left_color=222'
check "left_text with markup is escaped and the SVG still parses" svg_says success
check "... the text is there, escaped" grep -q '&lt;b&gt;&amp;&quot;ci&quot;' "$TRASH/badge.svg"
check "... flat-square (no rounded corners)" sh -c "! grep -q 'rx=' '$TRASH/badge.svg'"
check "... left_color=222" grep -q 'fill="#222"' "$TRASH/badge.svg"
badge 'hello.svg?left_color=%22%3E%3Cscript%3E'
check "a left_color that is no colour: 400" status_is 400
badge "hello.svg?left_text=$(printf 'x%.0s' $(seq 1 200))"
check "a left_text past 128 bytes: 400" status_is 400
badge nosuch.svg
check "an unknown builder: 404 ..." status_is 404
check "... with an 'unknown' badge as its body" svg_says unknown

br=$(force_branch slow main)
build_started() { [ -n "$(build_of_request "$1")" ]; }
check "slow #1 starts" wait_for 60 build_started "$br"
badge slow.svg
check "a running build's badge: running" svg_says running
touch "$TRASH/gate"
check "slow #1 completes" wait_for 60 request_done "$br"
badge slow.svg
check "... then its result: success" svg_says success

# ---- Atom feeds ----
# feed PATH [WANT_TITLES...]: the feed parses as Atom and its entries' titles
# are exactly WANT_TITLES, in order
feed() {
    curl -sS --max-time 10 -o "$TRASH/feed.xml" -D "$TRASH/feed.h" "$URL/feeds/$1" || return 1
    shift
    python3 - "$TRASH/feed.xml" "$@" <<'PY'
import sys, xml.etree.ElementTree as ET
a = "{http://www.w3.org/2005/Atom}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == a + "feed", root.tag
for need in ("id", "title", "updated", "author"):
    assert root.find(a + need) is not None, need
titles = []
for e in root.findall(a + "entry"):
    for need in ("id", "title", "updated", "link", "summary"):
        assert e.find(a + need) is not None, need
    assert e.find(a + "link").get("href").startswith("http://127.0.0.1:"), e.find(a + "link").get("href")
    titles.append(e.find(a + "title").text)
assert titles == sys.argv[2:], (titles, sys.argv[2:])
PY
}
check "builds.atom: every finished build, newest first" \
    feed builds.atom "slow #1: success" "flaky #2: failure" "flaky #1: success" \
    "broken #1: failure" "hello #1: success"
check "... as application/atom+xml" grep -qi '^content-type: application/atom+xml' "$TRASH/feed.h"
check "... cached briefly" grep -qi '^cache-control: max-age=30' "$TRASH/feed.h"
check "failures.atom: the failed ones" feed failures.atom "flaky #2: failure" "broken #1: failure"
check "builds.atom?builder=flaky: flaky's" feed 'builds.atom?builder=flaky' "flaky #2: failure" "flaky #1: success"
check "failures.atom?builder=hello: none, still a valid feed" feed 'failures.atom?builder=hello'
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL/feeds/builds.atom?builder=nosuch")
check "an unknown builder: 404 ($code)" [ "$code" = 404 ]
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL/feeds/other.atom")
check "an unknown feed: 404 ($code)" [ "$code" = 404 ]
done_testing
