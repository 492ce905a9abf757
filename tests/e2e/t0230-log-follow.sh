#!/bin/bash
# A reader who joins a 50 MB log while its step runs gets every line from the
# first, none lost or repeated (kiln logs --follow), and the stored log has
# every line too.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
# 50 rounds of 16,000 lines of 64 bytes = 800,000 lines, 51.2 MB, paced so
# that the reader joins while it runs
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "big", workers = { "w1" }, steps = {
  shell { name = "flood", command = "for r in $(seq 1 50); do seq -f \"%063.0f\" $((r*16000-15999)) $((r*16000)); sleep 0.05; done" },
} }
LUA
printf 'w1-secret' > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

br=$(force big)
check "build starts" wait_for 60 request_has_builds "$br" 1
b=$(build_of_request "$br")
log_lines_so_far() {
    sid=$(api "builds/$b/steps/1" | jpy 'd["steps"][0]["stepid"]') &&
    api "steps/$sid/logs/stdio" | jpy 'd["logs"][0]["num_lines"]'
}
wait_for 60 eval '[ "$(log_lines_so_far 2>/dev/null || echo 0)" -gt 20000 ]'
joined=$(log_lines_so_far)
done_before=$(request_done "$br" && echo yes || echo no)
diag "reader joins at line $joined (finished already: $done_before)"
check "reader joins mid-run" [ "$done_before" = no ]
KILN_CLIENT_DEBUG=1 timeout 600 "$KILN" logs "$b" --step flood --follow --url "$URL" > "$TRASH/followed.txt" 2> "$TRASH/followed.err"
check "follow exits with the build's success" [ $? = 0 ]
check "follow waits on the master's /ws events, not a poll loop" grep -q "^kiln: following events on $URL/ws$" "$TRASH/followed.err"
n=$(grep -cE '^[0-9]{63}$' "$TRASH/followed.txt")
check "follower saw all 800000 lines ($n)" [ "$n" = 800000 ]
check "in order, none repeated" sh -c "grep -E '^[0-9]{63}$' '$TRASH/followed.txt' | awk '{ if (\$1+0 != NR) { exit 1 } }'"
check "request completes" wait_for 60 request_done "$br"
stored=$(log_lines_so_far)
# the polling fallback still follows to the end
KILN_CLIENT_POLL=1 KILN_CLIENT_DEBUG=1 timeout 600 "$KILN" logs "$b" --step flood --follow --url "$URL" > "$TRASH/polled.txt" 2> "$TRASH/polled.err"
check "follow without /ws exits with the build's success" [ $? = 0 ]
check "... said it polls" grep -q "^kiln: /ws not used" "$TRASH/polled.err"
check "... and printed every line" [ "$(grep -cE '^[0-9]{63}$' "$TRASH/polled.txt")" = 800000 ]
check "stored log has every line plus headers ($stored)" [ "$stored" -ge 800000 ]
done_testing
