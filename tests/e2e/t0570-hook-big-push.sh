#!/bin/bash
# asan-too
# A signed GitHub push listing 50,000 commits (a 1 MiB body) with a
# tree-stable branch scheduler waiting on its branch: the master takes only
# the newest KILN_MAX_HOOK_COMMITS (2,048) commits, head commit included,
# says once in its log that the push was truncated, handles the push within
# a generous bound (20 s; it stalled the loop for minutes: every change
# rewrote the branch's whole pending list, and the parsed changes were
# copied once per commit), and answers the API meanwhile.
# The same for a GitLab push.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { github = { secret = secret("gh") }, gitlab = { token = secret("gl") } }
worker { name = "w1", password = secret("w1") }
builder { name = "main", workers = { "w1" }, steps = { shell { command = "true" } } }
single_branch { name = "sb", builders = { "main" }, tree_stable_timer = 3600,
  change_filter = { branch = "main" } }
any_branch { name = "ab", builders = { "main" }, tree_stable_timer = 3600 }
LUA
printf 'gh-secret' > "$M/secrets/gh"
printf 'gl-token' > "$M/secrets/gl"
printf 'w1-secret' > "$M/secrets/w1"
check "master starts" start_master "$M"

# push.py DIALECT N: posts a push of N commits, probing GET /api/v2/builders
# every 50 ms meanwhile; prints "code seconds worst_probe_seconds probes"
cat > "$TRASH/push.py" <<'PY'
import hashlib, hmac, json, sys, threading, time, urllib.request
url, dialect, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
commits = ",".join('{"id":"c%05d"}' % i for i in range(n))
if dialect == "github":
    body = ('{"ref":"refs/heads/main","after":"c%05d","repository":{"html_url":"r","full_name":"o/r"},'
            '"commits":[%s],"head_commit":{"id":"c%05d"}}' % (n - 1, commits, n - 1)).encode()
    sig = hmac.new(b"gh-secret", body, hashlib.sha256).hexdigest()
    hdrs = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig}
else:
    body = ('{"ref":"refs/heads/main","after":"c%05d","project":{"git_http_url":"r",'
            '"path_with_namespace":"o/r"},"commits":[%s]}' % (n - 1, commits)).encode()
    hdrs = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "gl-token"}
assert len(body) <= 1 << 20, len(body)
hdrs["Content-Type"] = "application/json"
res = {}
def post():
    t = time.monotonic()
    req = urllib.request.Request(url + "/change_hook/" + dialect, data=body, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            res["code"] = r.status
    except urllib.error.HTTPError as e:
        res["code"] = e.code
    except Exception as e:
        res["code"] = type(e).__name__
    res["secs"] = time.monotonic() - t
th = threading.Thread(target=post)
th.start()
worst, probes = 0.0, 0
while th.is_alive() or probes == 0:
    t = time.monotonic()
    try:
        urllib.request.urlopen(url + "/api/v2/builders", timeout=30).read()
    except Exception:
        pass
    worst = max(worst, time.monotonic() - t)
    probes += 1
    th.join(0.05)
th.join(90)
print(res.get("code"), "%.2f" % res.get("secs", 999), "%.2f" % worst, probes)
PY

# the number of stored changes (the API's meta.total counts one page)
total() { db_sql "$M" "SELECT count(*) FROM changes"; }
newest_rev() { api 'changes?order=-changeid&limit=1' | jpy 'd["changes"][0]["revision"]'; }

read -r code secs worst probes < <(timeout 120 /usr/bin/python3 "$TRASH/push.py" "$URL" github 50000)
diag "github push of 50000 commits: HTTP $code in $secs s; worst probe $worst s over $probes probes"
check "github push answered 200" [ "$code" = 200 ]
check "github push handled within 20 s" /usr/bin/python3 -c "import sys; sys.exit(not float('$secs') < 20)"
check "the API answered within 20 s meanwhile" /usr/bin/python3 -c "import sys; sys.exit(not float('$worst') < 20)"
check "only the newest 2048 commits became changes" [ "$(total)" = 2048 ]
check "the head commit is among them" [ "$(newest_rev)" = c49999 ]
check "truncation logged once" [ "$(grep -c "push lists 50000 commits: only the newest 2048" "$M/master.log")" = 1 ]

read -r code secs worst probes < <(timeout 120 /usr/bin/python3 "$TRASH/push.py" "$URL" gitlab 50000)
diag "gitlab push of 50000 commits: HTTP $code in $secs s; worst probe $worst s over $probes probes"
check "gitlab push answered 200" [ "$code" = 200 ]
check "gitlab push handled within 20 s" /usr/bin/python3 -c "import sys; sys.exit(not float('$secs') < 20)"
check "gitlab: 2048 more changes" [ "$(total)" = 4096 ]
check "gitlab: the newest commit is among them" [ "$(newest_rev)" = c49999 ]

# the stored pending list survives a restart (written once, complete)
stop_pid "$MASTER_PID"
check "master restarts" start_master "$M"
pending_state() { db_sql "$M" "SELECT value FROM object_state WHERE name = 'sched:sb'"; }
check "pending changes restored after the restart" /usr/bin/python3 -c '
import json, sys
pending = json.loads(sys.argv[1])["pending"]
assert len(pending) == 1 and len(pending[0]["changes"]) == 4096, [len(p["changes"]) for p in pending]
assert pending[0]["revision"] == "c49999"
' "$(pending_state)"
done_testing
