#!/bin/bash
# asan-too
# The commit statuses' persistent outbound queue (issue 12, slice
# "statuses"): with the peer (tests/e2e/statuses-peer.py) down, a build's
# statuses are retried with backoff and kept in the database; the master
# is restarted, the peer comes up on the same port (answering a 500
# first), and the statuses arrive once each, in order.  Then rate limits: a 429 with Retry-After: 2
# is not retried before 2 s, and after a 201 with X-RateLimit-Remaining: 0
# nothing is sent before X-RateLimit-Reset.  A 422 drops the status with a
# logged error and the queue goes on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-reporters.sh"
require_cmd git

G=$TRASH/repo
git init -q "$G" && git -C "$G" -c user.name=Ann -c user.email=ann@example.org \
    commit -q --allow-empty -m first
SHA=$(git -C "$G" rev-parse HEAD)
P=$(free_port)

M=$TRASH/master
new_master "$M" <<LUA
url = "http://ci.example.org/"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "app", workers = { "w1" }, steps = { shell { command = "true" } } }
builder { name = "lim", workers = { "w1" }, steps = { shell { command = "true" } } }
builder { name = "slow", workers = { "w1" }, steps = { shell { command = { "sh", "-c",
  "test -e '$TRASH/second' || { touch '$TRASH/second'; sleep 120; }" } } } }
force_scheduler { name = "force", builders = { "app", "lim", "slow" }, revisions = { "*" },
  repositories = { "https://github.com/acme/*" } }
reporter { kind = "github", name = "gh", builders = { "app", "slow" }, url = "http://127.0.0.1:$P/gh",
  token = secret("gh"), queue = { backoff = 0.1, timeout = 5 } }
reporter { kind = "gitea", name = "gt", builders = { "lim" }, url = "http://127.0.0.1:$P/gt",
  token = secret("gt"), queue = { backoff = 0.1, timeout = 5 } }
LUA
printf 'w1-pass-%s' "$$" > "$M/secrets/w1"
printf 'ghp_%s' "$$" > "$M/secrets/gh"
printf 'gt_%s' "$$" > "$M/secrets/gt"
check "checkconfig accepts the reporters" "$KILN" checkconfig "$M"
check "master starts (the peer is down)" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

build_done() { [ "$(api "builders/$1/builds?number=$2" | jpy 'd["builds"][0]["complete"]')" = true ]; }
force_rev() {
    rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderNames\":[\"$1\"],\"revision\":\"$SHA\",\"repository\":\"https://github.com/acme/widget\"}}" >/dev/null
}
force_rev app
check "build app #1 completes" wait_for 60 build_done app 1
check "the unreachable peer: attempts retried with backoff" wait_for 60 grep -q \
    "reporter 'gh': status pending for acme/widget|$SHA|kiln/app: attempt 2 failed" "$M/master.log"
stop_pid "$WORKER_PID"
check "the master is stopped with the statuses queued" stop_pid "$MASTER_PID"
check "two statuses are kept for the next start" grep -q \
    "reporter 'gh': 2 statuses kept for the next start" "$M/master.log"

# the peer comes up on the master's port; its script: the rate limits below
http_peer statuses-peer.py peer \
    '{"/gh/": [[500, {}]], "/gt/": [[429, {"Retry-After": "2"}], [201, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "@+3"}], [422, {}]]}' "$P"
check "master restarts" start_master "$M"
check "it finds the statuses waiting" wait_for 30 grep -q "reporter 'gh': 2 statuses waiting from before" "$M/master.log"
nreq() { ls "$TRASH/req" 2>/dev/null | grep -c '^req-'; }
check "the two statuses arrive (the first after a 500)" wait_for 30 sh -c "[ \$(ls '$TRASH/req' | grep -c '^req-') -ge 3 ]"
check "the queue is empty again" wait_for 30 grep -q "reporter 'gh': status success sent for" "$M/master.log"
check_py "they arrived once each, in order" "$TRASH/req" "$SHA" <<'PY'
import glob, json, sys
d, sha = sys.argv[1:3]
reqs = [json.load(open(p)) for p in sorted(glob.glob(d + "/req-*.json"))]
assert [r["path"] for r in reqs] == ["/gh/repos/acme/widget/statuses/" + sha] * 3, reqs
assert [(json.loads(r["body"])["state"], r["status"]) for r in reqs] == [("pending", 500), ("pending", 201), ("success", 201)], reqs
print("pending (500, retried), then success: each delivered once, in order")
PY
check "the 500 was retried with backoff" grep -q \
    "reporter 'gh': status pending for acme/widget|$SHA|kiln/app: attempt [0-9]* failed (reply 500): retrying in" "$M/master.log"

# rate limits, on the gitea reporter (a worker attaches to the new master)
start_worker "$TRASH/w1b" w1 "$M/secrets/w1"
check "worker attaches again" wait_for 30 worker_connected w1
force_rev lim
check "build lim #1 completes" wait_for 60 build_done lim 1
check "the 429 is logged with its wait" wait_for 60 grep -q \
    "reporter 'gt': rate limited (reply 429): status pending" "$M/master.log"
check "the rate limit's reset is logged" wait_for 60 grep -q \
    "reporter 'gt': rate limit reached: nothing sent for" "$M/master.log"
check "the third answer (422) drops the status with an error" wait_for 60 grep -q \
    "reporter 'gt': status success for acme/widget|$SHA|kiln/lim refused (reply 422): dropped" "$M/master.log"
check_py "no request before Retry-After nor before the reset" "$TRASH/req" <<'PY'
import glob, json, sys
reqs = [json.load(open(p)) for p in sorted(glob.glob(sys.argv[1] + "/req-*.json"))]
gt = [r for r in reqs if r["path"].startswith("/gt/")]
assert [r["status"] for r in gt] == [429, 201, 422], [(r["status"], r["body"]) for r in gt]
assert [json.loads(r["body"])["state"] for r in gt] == ["pending", "pending", "success"], gt
wait1 = gt[1]["time"] - gt[0]["time"]
reset = int(gt[1]["answer_headers"]["X-RateLimit-Reset"])
print("429 then retried after %.2f s (Retry-After: 2)" % wait1)
print("remaining 0, reset %d: next request at %.2f (%.2f s after the reset)" % (reset, gt[2]["time"], gt[2]["time"] - reset))
assert wait1 >= 1.95, wait1
assert gt[2]["time"] >= reset - 0.01, (gt[2]["time"], reset)
PY

# a build interrupted by the master's own restart: its pending status went
# out; nothing more until its rerun ends (the rerun's pending is the same
# state: not sent again)
force_rev slow
check "the slow build runs" wait_for 60 test -e "$TRASH/second"
slow_reqs() { grep -l '"kiln/slow' "$TRASH"/req/req-*.json 2>/dev/null | wc -l; }
check "its pending status arrives" wait_for 60 sh -c "[ \$(grep -l '\"kiln/slow' '$TRASH'/req/req-*.json 2>/dev/null | wc -l) = 1 ]"
# and the master has its answer (stopped before, the status stays queued and
# goes again at the restart: at least once, as the outbound queue promises)
check "the master got the answer to it" wait_for 60 grep -q \
    "reporter 'gh': status pending sent for acme/widget|$SHA|kiln/slow (reply 201)" "$M/master.log"
check "the master stops during the build" stop_pid "$MASTER_PID"
stop_pid "$WORKER_PID"
check "the interrupted build sent nothing more" test "$(slow_reqs)" = 1
check "master restarts again" start_master "$M"
start_worker "$TRASH/w1c" w1 "$M/secrets/w1"
check "worker attaches to it" wait_for 30 worker_connected w1
check "the rerun's pending is found already sent" wait_for 60 grep -q \
    "reporter 'gh': status pending for acme/widget|$SHA|kiln/slow already sent" "$M/master.log"
check "the rerun's success arrives" wait_for 60 sh -c "[ \$(grep -l '\"kiln/slow' '$TRASH'/req/req-*.json | wc -l) = 2 ]"
check_py "the interrupted build got its final status from its rerun only" "$TRASH/req" <<'PY'
import glob, json, sys
reqs = [json.load(open(p)) for p in sorted(glob.glob(sys.argv[1] + "/req-*.json"))]
slow = [json.loads(r["body"]) for r in reqs if '"kiln/slow"' in r["body"]]
assert [b["state"] for b in slow] == ["pending", "success"], slow
assert slow[1]["target_url"].endswith("/builds/2"), slow  # the rerun's page
print("slow: pending (build 1), success (its rerun, build 2)")
PY
check "the master is still running" kill -0 "$MASTER_PID"
stop_pid "$WORKER_PID"
stop_pid "$MASTER_PID"
done_testing
