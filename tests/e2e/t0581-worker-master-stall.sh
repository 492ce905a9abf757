#!/bin/bash
# asan-too
# A master that stalls during the worker's handshake (SIGSTOP: the kernel
# still accepts the TCP connection, nothing answers the upgrade) and then
# resumes: kiln-worker logs each unanswered attempt, keeps retrying, and logs
# in once the master answers again, with no restart (issue 9).
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
title = "e2e"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "ok", workers = { "w1" }, steps = {
  shell { name = "hello", command = "echo hello-after-stall" },
} }
force_scheduler { name = "force", builders = { "ok" } }
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"

kill -STOP "$MASTER_PID"
"$KILN_WORKER" create "$TRASH/w1" --master "$WADDR" --name w1 --password-file "$M/secrets/w1" >/dev/null
KILN_WORKER_HANDSHAKE_TIMEOUT=2 "$KILN_WORKER" start "$TRASH/w1" 2>"$TRASH/w1.log" &
WORKER_PID=$!
e2e_track $WORKER_PID
unanswered() { [ "$(grep -c 'did not answer within 2 s' "$TRASH/w1.log")" -ge "$1" ]; }
check "an unanswered handshake is logged" wait_for 30 unanswered 1
check "and retried (second deadline)" wait_for 30 unanswered 2
kill -CONT "$MASTER_PID"
check "worker logs in once the master resumes" wait_for 60 worker_connected w1
br=$(force ok)
check "request completes" wait_for 30 request_done "$br"
b=$(build_of_request "$br")
check "build succeeded" [ "$(build_field "$b" results)" = 0 ]
check "build output stored" grep -qx 'ohello-after-stall' <<<"$(log_text "$b" 1)"
check "same worker process" kill -0 $WORKER_PID
if [ "$E2E_FAILED" -ne 0 ]; then
    tail -30 "$TRASH/w1.log" | sed 's/^/# /'; tail -20 "$M/master.log" | sed 's/^/# /'
fi
done_testing
