#!/bin/bash
# The log viewer (www/src/log.js, slice "uilog"): the search API's answers
# and bad input with curl, then tests/e2e/ui/log-viewer.mjs in headless
# Chromium against a real master and kiln-worker: a long log with ANSI
# colours opens at its tail, coloured, virtualised; #L deep links survive a
# reload; search finds next and previous; a log opened mid-run (its lines
# written as the browser test opens gate files) shows every line once, in
# order, and stops following when scrolled up; the log events on /ws.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

LINES=30000
ui_master <<LUA
worker { name = "w1", password = secret("w1") }
-- $LINES coloured lines; "needle-N" on lines 5000, 15000 and 25000 of the output
-- (spelt "nee" "dle" in the command, which the log's header shows)
builder { name = "colors", workers = { "w1" },
  steps = { shell { name = "long", command = "awk 'BEGIN { for (i = 1; i <= $LINES; i++) if (i % 10000 == 5000) printf \"%s-%d is here\\\\n\", \"nee\" \"dle\", i; else printf \"\\\\033[3%dmline %d\\\\033[0m of the long log, \\\\033[1mbold\\\\033[0m\\\\n\", i % 7 + 1, i }'" } } }
-- line i is written once the file slow-i exists (bounded wait: the browser test opens them)
builder { name = "slow", workers = { "w1" },
  steps = { shell { name = "drip", command = "for i in \$(seq 1 12); do j=0; while [ ! -e '$TRASH/slow-'\$i ] && [ \$j -lt 2400 ]; do sleep 0.05; j=\$((j+1)); done; echo \"slow line \$i\"; done" } } }
builder { name = "short", workers = { "w1" },
  steps = { shell { name = "two", command = "echo a; echo b" } } }
force_scheduler { name = "force", builders = { "colors", "slow", "short" } }
LUA
start_master_w1 "$M"

br=$(force colors)
check "colors #1 completes" wait_for 120 request_done "$br"
bid=$(build_of_request "$br")
sid=$(api "builds/$bid/steps/long" | jpy 'd["steps"][0]["stepid"]')
LOGID=$(api "steps/$sid/logs/stdio" | jpy 'd["logs"][0]["logid"]')
nlines=$(api "logs/$LOGID" | jpy 'd["logs"][0]["num_lines"]')
check "the long log is stored ($nlines lines)" [ "$nlines" -gt "$LINES" ]

# ---- the search API ----
code() { curl -sS --max-time 10 -o "$TRASH/body" -w '%{http_code}' "$URL/api/v2/$1"; }
line_text() { api "logs/$LOGID/contents?offset=$1&limit=1" | jpy 'd["logchunks"][0]["content"]'; }
c=$(code "logs/$LOGID/search?q=needle")
first=$(jpy 'd["matches"][0]["line"]' <"$TRASH/body")
t=$(line_text "$first")
check "search finds the first needle ($c, line $first)" test "$c" = 200 -a "$t" = 'oneedle-5000 is here'
code "logs/$LOGID/search?q=needle&from=$((first + 1))" >/dev/null
second=$(jpy 'd["matches"][0]["line"]' <"$TRASH/body")
check "next from after it finds the second ($second)" [ "$(line_text "$second")" = 'oneedle-15000 is here' ]
code "logs/$LOGID/search?q=needle&from=$((second - 1))&dir=prev" >/dev/null
check "prev from before the second finds the first" [ "$(jpy 'd["matches"][0]["line"]' <"$TRASH/body")" = "$first" ]
code "logs/$LOGID/search?q=needle&dir=prev" >/dev/null
last=$(jpy 'd["matches"][0]["line"]' <"$TRASH/body")
check "prev without from starts at the last line ($last)" [ "$(line_text "$last")" = 'oneedle-25000 is here' ]
code "logs/$LOGID/search?q=NEEDLE-15000" >/dev/null
check "case matters by default" [ "$(jpy 'd' <"$TRASH/body")" = '{"matches": [], "meta": {"continue_from": null}}' ]
code "logs/$LOGID/search?q=NEEDLE-15000&icase=1" >/dev/null
check "... and not with icase=1" [ "$(jpy 'd["matches"][0]["line"]' <"$TRASH/body")" = "$second" ]
code "logs/$LOGID/search?q=needle&from=$((last + 1))" >/dev/null
check "nothing after the last one" [ "$(jpy 'len(d["matches"])' <"$TRASH/body")" = 0 ]
c=$(code "logs/$LOGID/search?q=")
check "empty q is 400 ($c: $(cat "$TRASH/body"))" [ "$c" = 400 ]
c=$(code "logs/$LOGID/search")
check "missing q is 400 ($c)" [ "$c" = 400 ]
big=$(head -c 1025 /dev/zero | tr '\0' a)
c=$(code "logs/$LOGID/search?q=$big")
check "a q of 1025 bytes is 400 ($c: $(cat "$TRASH/body"))" [ "$c" = 400 ]
c=$(code "logs/$LOGID/search?q=${big:1}")
check "... 1024 bytes is fine ($c)" [ "$c" = 200 ]
c=$(code "logs/$LOGID/search?q=x&from=-3")
check "a negative from is 400 ($c)" [ "$c" = 400 ]
c=$(code "logs/$LOGID/search?q=x&from=12abc")
check "a from that is no number is 400 ($c)" [ "$c" = 400 ]
c=$(code "logs/$LOGID/search?q=x&dir=up")
check "dir other than next or prev is 400 ($c)" [ "$c" = 400 ]
c=$(code "logs/$LOGID/search?q=x&icase=maybe")
check "a bad icase is 400 ($c)" [ "$c" = 400 ]
c=$(code "logs/99999/search?q=x")
check "an unknown log is 404 ($c)" [ "$c" = 404 ]
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$URL/logs/$LOGID")
check "a log's page (/logs/$LOGID) gets index.html ($code)" [ "$code" = 200 ]

# ---- the browser ----
ui_run log-viewer.mjs 280 LOGID="$LOGID" NLINES="$nlines"
# let the slow build end whatever the browser test did
for i in $(seq 1 12); do touch "$TRASH/slow-$i"; done
ui_screenshots 'log-viewer*.png' log-viewer.png
done_testing
