#!/bin/bash
# asan-too
# GET /metrics: the Prometheus text format (0.0.4), every line checked by a
# strict parser (tests/e2e/prom-check.py; promtool too when installed);
# scraped before and after builds: the builds-by-result counters, log
# bytes, API and database histograms move, workers connected and queued
# requests (per builder) are right, process numbers are there.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
worker { name = "ghost", password = secret("w1") }
builder { name = "ok", workers = { "w1" }, steps = {
  shell { name = "say", command = "echo hello metrics" },
} }
builder { name = "bad", workers = { "w1" }, steps = {
  shell { name = "fail", command = "echo failing; exit 1" },
} }
builder { name = "we\\"ird", workers = { "ghost" }, steps = {
  shell { name = "never", command = "true" },
} }
LUA
printf 'w1-secret' > "$M/secrets/w1"
check "master starts" start_master "$M"

scrape() { curl -sS --max-time 10 "$URL/metrics" > "$TRASH/$1.txt" &&
    /usr/bin/python3 "$KILN_SRC/tests/e2e/prom-check.py" < "$TRASH/$1.txt" > "$TRASH/$1.samples" 2> "$TRASH/$1.err"; }
# val SCRAPE SAMPLE: the value of one sample (name with its labels)
val() { awk -v k="$2" '$1==k {print $2}' "$TRASH/$1.samples"; }

check "scrape 1 parses" scrape s1
[ -s "$TRASH/s1.err" ] && diag "$(cat "$TRASH/s1.err")"
check "content type is the 0.0.4 text format" \
    sh -c "curl -sS -o /dev/null -w '%{content_type}' '$URL/metrics' | grep -q 'text/plain; version=0.0.4'"
check "no finished builds yet" [ "$(val s1 'kiln_builds_finished_total{result="success"}')" = 0 ]
check "no workers yet" [ "$(val s1 kiln_workers_connected)" = 0 ]
check "uptime is there" [ -n "$(val s1 kiln_uptime_seconds)" ]
check "rss is there and positive" [ "$(val s1 process_resident_memory_bytes | cut -d. -f1)" -gt 0 ]
check "open fds are there" [ "$(val s1 process_open_fds)" -gt 2 ]
check "a builder label with a quote is escaped" \
    grep -qF 'kiln_builder_buildrequests_queued{builder="we\"ird"} 0' "$TRASH/s1.samples"
if command -v promtool >/dev/null 2>&1; then
    check "promtool accepts it" sh -c "promtool check metrics < '$TRASH/s1.txt'"
fi
check "POST is refused" [ "$(curl -sS -o /dev/null -w '%{http_code}' -d x "$URL/metrics")" = 405 ]

start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 30 worker_connected w1
api0=$(val s1 kiln_api_request_duration_seconds_count)
db0=$(val s1 kiln_db_commit_duration_seconds_count)

b1=$(force ok); b2=$(force bad); b3=$(force 'we"ird')
check "ok's request completes" wait_for 60 request_done "$b1"
check "bad's request completes" wait_for 60 request_done "$b2"
check "scrape 2 parses" scrape s2
[ -s "$TRASH/s2.err" ] && diag "$(cat "$TRASH/s2.err")"
check "one success counted" [ "$(val s2 'kiln_builds_finished_total{result="success"}')" = 1 ]
check "one failure counted" [ "$(val s2 'kiln_builds_finished_total{result="failure"}')" = 1 ]
check "one worker connected" [ "$(val s2 kiln_workers_connected)" = 1 ]
check "nothing running" [ "$(val s2 kiln_builds_running)" = 0 ]
check "the ghost's request is queued (per builder)" \
    grep -qF 'kiln_builder_buildrequests_queued{builder="we\"ird"} 1' "$TRASH/s2.samples"
check "... and in the total" [ "$(val s2 kiln_buildrequests_queued)" = 1 ]
check "log bytes grew" [ "$(val s2 kiln_log_bytes_written_total)" -gt 0 ]
check "API requests were timed" [ "$(val s2 kiln_api_request_duration_seconds_count)" -gt "$api0" ]
check "database commits were timed" [ "$(val s2 kiln_db_commit_duration_seconds_count)" -gt "$db0" ]

b4=$(force ok)
check "a second ok build completes" wait_for 60 request_done "$b4"
check "scrape 3 parses" scrape s3
check "two successes counted" [ "$(val s3 'kiln_builds_finished_total{result="success"}')" = 2 ]

# kiln status: the summary from /metrics and the API, by base directory and by URL
"$KILN" status "$M" > "$TRASH/status.out" 2>&1
rc=$?
diag "$(sed 's/^/  /' "$TRASH/status.out")"
check "kiln status BASEDIR exits 0 (got $rc)" [ "$rc" = 0 ]
check "... shows the worker" grep -q '^workers: *1 connected' "$TRASH/status.out"
check "... the queue with its builder" grep -qF '1 requests queued (we"ird 1)' "$TRASH/status.out"
check "... the results" grep -q '^finished: *2 success, 1 failure' "$TRASH/status.out"
check "... the last builds" grep -qE '^  bad +#1 +FAILURE' "$TRASH/status.out"
check "... and the up-since line" grep -q '^up since: *20[0-9-]* ' "$TRASH/status.out"
check "kiln status --url works too" sh -c "'$KILN' status --url '$URL' | grep -q '^workers: *1 connected'"
"$KILN" status --url http://127.0.0.1:1 > /dev/null 2>&1
check "kiln status on no master: status 1" [ $? = 1 ]

# the checker itself rejects what it should
bad_text() { printf '%b' "$1" | /usr/bin/python3 "$KILN_SRC/tests/e2e/prom-check.py" >/dev/null 2>&1; }
rejects() { ! bad_text "$1"; }
check "checker: a sample before its TYPE fails" rejects 'x 1\n'
check "checker: a bad label fails" rejects '# TYPE x gauge\nx{a=b} 1\n'
check "checker: a non-cumulative histogram fails" \
    rejects '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
check "checker: a good text passes" bad_text '# TYPE x gauge\nx{a="b\\\\\\""} 1\n'
done_testing
