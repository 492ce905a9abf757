#!/bin/bash
# Memory never runs ahead of disk: when a batch commit fails during a
# forced build (fault injected with KILN_TEST_FAIL_COMMIT=N, the Nth batch
# commit after the database opens fails and is rolled back), the master
# logs the reason and exits non-zero at once.  Restarted without the fault,
# it recovers from the database: the request is retried and completes, and
# no build or request claims a result that was not stored.
#
# Needs the db's KILN_TEST_FAIL_COMMIT hook (src/db): without it the master
# never fails and the test says so.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
GO=$TRASH/go
# fixed ports: the worker reconnects to the restarted master
HP=$(free_port); WP=$(free_port)
# the step writes a line every 20 ms until GO exists: a commit every few
# loop turns while it runs, so the Nth commit falls inside the build
new_master "$M" <<LUA
http = { listen = "127.0.0.1:$HP" }
workers_listen = "127.0.0.1:$WP"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = {
  shell { name = "stream", command = "i=0; while [ ! -e '$GO' ]; do i=\$((i+1)); echo line \$i; sleep 0.02; done; echo go" },
} }
LUA
printf 'w1-secret' > "$M/secrets/w1"

# start-up, the worker's attach and the force take far fewer commits than
# this; the streaming step then reaches it within a few seconds
KILN_TEST_FAIL_COMMIT=${FAIL_AT:-60} start_master "$M"
check "master starts with KILN_TEST_FAIL_COMMIT" [ -n "$MASTER_PID" ]
FIRST=$MASTER_PID
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
br=$(force b)
check "build request created ($br)" [ -n "$br" ]

if wait_for 60 sh -c "! kill -0 $FIRST 2>/dev/null"; then
    wait "$FIRST"; rc=$?
    check "master exits non-zero after the failed commit (status $rc)" [ "$rc" -ne 0 ]
else
    not_ok "master exits after the failed commit (still running after 60 s: is the db's KILN_TEST_FAIL_COMMIT hook merged?)"
    done_testing; exit 1
fi
check "the reason is logged" grep -q "database commit failed" "$M/master.log"
diag "$(grep -m1 'database commit failed' "$M/master.log")"
check "nothing logged after the stop" sh -c "tail -n 1 '$M/master.log' | grep -q 'stopped after a failed database commit'"

# restart without the fault; let the retried build finish
touch "$GO"
start_master "$M"
check "master restarts without the fault" [ -n "$MASTER_PID" ]
check "worker attaches again" wait_for 120 worker_connected w1
check "the request completes" wait_for 60 request_done "$br"
check "request is SUCCESS" [ "$(api "buildrequests/$br" | jpy 'd["buildrequests"][0]["results"]')" = 0 ]
check "exactly one SUCCESS build; every other build of it RETRY and complete" /usr/bin/python3 - "$URL" "$br" <<'PY'
import json, sys, urllib.request
url, br = sys.argv[1], sys.argv[2]
builds = json.load(urllib.request.urlopen("%s/api/v2/builds?buildrequestid=%s" % (url, br)))["builds"]
print("# builds:", [(b["buildid"], b["results"], b["complete"]) for b in builds])
ok = [b for b in builds if b["results"] == 0]
others = [b for b in builds if b["results"] != 0]
sys.exit(0 if len(ok) == 1 and ok[0]["complete"] and all(b["results"] == 5 and b["complete"] for b in others) else 1)
PY
b=$(build_of_request "$br")
check "the successful build's step log is whole (has its last line 'go')" sh -c "printf '%s\\n' \"\$1\" | grep -qx ogo" _ "$(log_text "$b" 1)"
stop_pid "$MASTER_PID"
check "restarted master stops cleanly" [ $? = 0 ]
done_testing
