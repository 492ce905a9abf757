#!/bin/bash
# asan-too
# Commit statuses (issue 12, slice "statuses"): kinds github, gitlab, gitea,
# bitbucket (Cloud and Server) and gerrit against tests/e2e/statuses-peer.py
# (one loopback server playing each API under its own path prefix), a real
# master and kiln-worker building a revision of a real git repository.
# Checked: the exact requests (method, path, auth headers, JSON bodies) of
# the build's start (pending/running/INPROGRESS; gerrit: nothing) and its
# end, a rebuild of the same revision with the same result sends nothing
# new (same state twice is never sent), the tokens never in master.log,
# and checkconfig's errors.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-reporters.sh"
require_cmd git

B=$TRASH/bad
new_master "$B" <<'LUA'
reporter { kind = "github", token = "ghp_plain" }
LUA
check "checkconfig refuses a plain-text token" checkconfig_says "$B" \
    "master.lua:1: reporter 'github': 'token' must come from secret(...)"
new_master "$B" <<'LUA'
reporter { kind = "gerrit", url = "https://review.example.org" }
LUA
check "checkconfig wants gerrit's login" checkconfig_says "$B" \
    "master.lua:1: reporter 'gerrit': 'user' and 'password' are required"

# ---- a real git repository: the revision built --------------------------------
G=$TRASH/repo
git init -q "$G" && git -C "$G" -c user.name=Ann -c user.email=ann@example.org \
    commit -q --allow-empty -m first
SHA=$(git -C "$G" rev-parse HEAD)
check "the git repository has a commit" test ${#SHA} = 40

http_peer statuses-peer.py peer '{}'

M=$TRASH/master
new_master "$M" <<LUA
url = "http://ci.example.org:8010/"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "app", workers = { "w1" },
  properties = { ["event.change.number"] = 4242, ["event.patchSet.revision"] = "$SHA" },
  steps = { shell { name = "make test", command = { "sh", "-c", "git -C '$G' cat-file -e $SHA && exit \$(cat '$TRASH/rc')" } } } }
force_scheduler { name = "force", builders = { "app" }, revisions = { "*" },
  repositories = { "git@github.com:acme/*", "https://github.com/acme/*" } }
reporter { kind = "github", url = "http://127.0.0.1:$P/gh/api/v3", token = secret("gh") }
reporter { kind = "gitlab", url = "http://127.0.0.1:$P/gl", token = secret("gl"),
  context = "kiln/{builder}/check" }
reporter { kind = "gitea", url = "http://127.0.0.1:$P/gt", token = secret("gt"),
  owner = "team", repo = "widget-mirror", branches = { "main" } }
reporter { kind = "bitbucket", name = "bbc", url = "http://127.0.0.1:$P/bbc",
  user = "kiln-bot", password = secret("bb_app") }
reporter { kind = "bitbucket", name = "bbs", server = true, url = "http://127.0.0.1:$P/bbs",
  token = secret("bbs") }
reporter { kind = "gerrit", url = "http://127.0.0.1:$P/gr", user = "kiln",
  password = secret("gerrit"), label = "Verified" }
LUA
printf 'w1-pass-%s' "$$" > "$M/secrets/w1"
printf 'ghp_tok%s' "$$" > "$M/secrets/gh"
printf 'glpat-tok%s' "$$" > "$M/secrets/gl"
printf 'gitea-tok%s' "$$" > "$M/secrets/gt"
printf 'bb-app-pw%s' "$$" > "$M/secrets/bb_app"
printf 'bbs-tok%s' "$$" > "$M/secrets/bbs"
printf 'gerrit-pw%s' "$$" > "$M/secrets/gerrit"
echo 1 > "$TRASH/rc"
# debug level: the listener's time per build start and end is logged
reporters_up "$M" gerrit gerrit debug

build_done() { [ "$(api "builders/app/builds?number=$1" | jpy 'd["builds"][0]["complete"]')" = true ]; }
nreq() { ls "$TRASH/req" 2>/dev/null | grep -c '^req-'; }
force_rev() {
    rpc forceschedulers/force "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderNames\":[\"app\"],\"branch\":\"main\",\"revision\":\"$SHA\",\"repository\":\"$1\"}}" >/dev/null
}
force_rev "git@github.com:acme/widget.git"
check "build 1 (failure) completes" wait_for 60 build_done 1
# start: 5 (gerrit votes at the end only); end: 6
check "its eleven requests arrive" wait_for 30 sh -c "[ \$(ls '$TRASH/req' | grep -c '^req-') -ge 11 ]"
BID=$(api builders/app | jpy 'd["builders"][0]["builderid"]')

STATE=$(api "builders/app/builds?number=1" | jpy 'd["builds"][0]["state_string"]')
diag "build 1: $STATE"
check_py "the requests are exact (paths, auth headers, bodies)" "$TRASH/req" "$SHA" "$$" "$BID" "$STATE" <<'PY'
import base64, glob, json, sys
d, sha, pid, bid, state = sys.argv[1:6]
reqs = [json.load(open(p)) for p in sorted(glob.glob(d + "/req-*.json"))]
assert len(reqs) == 11, [r["path"] for r in reqs]
url = "http://ci.example.org:8010/builders/%s/builds/1" % bid
fail = ("Build done: failure (%s)" % state)[:140]
def of(prefix):
    rs = [r for r in reqs if r["path"].startswith(prefix)]
    for r in rs:
        assert r["method"] == "POST", r
        assert r["headers"]["Content-Type"] == "application/json", r
        names = r["header_names"]
        assert len(names) == len(set(names)), names  # no header twice
        assert "expect" not in names, names
    return rs, [json.loads(r["body"]) for r in rs]
def basic(r):
    return base64.b64decode(r["headers"]["Authorization"].split(" ", 1)[1]).decode()

rs, bs = of("/gh/")
assert [r["path"] for r in rs] == ["/gh/api/v3/repos/acme/widget/statuses/" + sha] * 2, rs
for r in rs:
    assert r["headers"]["Authorization"] == "Bearer ghp_tok" + pid, r["headers"]
    assert r["headers"]["Accept"] == "application/vnd.github+json", r["headers"]
    assert r["headers"]["X-GitHub-Api-Version"] == "2022-11-28", r["headers"]
assert bs == [{"state": "pending", "target_url": url, "description": "Build started.", "context": "kiln/app"},
              {"state": "failure", "target_url": url, "description": fail, "context": "kiln/app"}], bs

rs, bs = of("/gl/")
assert [r["path"] for r in rs] == ["/gl/api/v4/projects/acme%2Fwidget/statuses/" + sha] * 2, rs
for r in rs:
    assert r["headers"]["PRIVATE-TOKEN"] == "glpat-tok" + pid, r["headers"]
    assert "Authorization" not in r["headers"], r["headers"]
assert bs == [{"state": "running", "name": "kiln/app/check", "target_url": url, "description": "Build started.", "ref": "main"},
              {"state": "failed", "name": "kiln/app/check", "target_url": url, "description": fail, "ref": "main"}], bs

rs, bs = of("/gt/")
assert [r["path"] for r in rs] == ["/gt/api/v1/repos/team/widget-mirror/statuses/" + sha] * 2, rs
for r in rs:
    assert r["headers"]["Authorization"] == "token gitea-tok" + pid, r["headers"]
assert [b["state"] for b in bs] == ["pending", "failure"], bs
assert bs[1] == {"state": "failure", "target_url": url, "description": fail, "context": "kiln/app"}, bs

rs, bs = of("/bbc/")
assert [r["path"] for r in rs] == ["/bbc/2.0/repositories/acme/widget/commit/%s/statuses/build" % sha] * 2, rs
for r in rs:
    assert basic(r) == "kiln-bot:bb-app-pw" + pid, r["headers"]
assert bs == [{"key": "kiln/app", "state": "INPROGRESS", "name": "app #1", "url": url, "description": "Build started."},
              {"key": "kiln/app", "state": "FAILED", "name": "app #1", "url": url, "description": fail}], bs

rs, bs = of("/bbs/")
assert [r["path"] for r in rs] == ["/bbs/rest/build-status/1.0/commits/" + sha] * 2, rs
for r in rs:
    assert r["headers"]["Authorization"] == "Bearer bbs-tok" + pid, r["headers"]
assert [b["state"] for b in bs] == ["INPROGRESS", "FAILED"], bs

rs, bs = of("/gr/")
assert [r["path"] for r in rs] == ["/gr/a/changes/4242/revisions/%s/review" % sha], rs
assert basic(rs[0]) == "kiln:gerrit-pw" + pid, rs[0]["headers"]
assert bs == [{"message": "Build app #1: failure (%s) %s" % (state, url), "labels": {"Verified": -1}}], bs
# the start comes before the end everywhere
assert [r["time"] for r in reqs] == sorted(r["time"] for r in reqs)
print("all requests as expected")
PY

# the same revision built again with the same result: the statuses go
# pending -> failure again (two changes each), but gerrit's vote stays -1:
# the same state is not sent twice
force_rev "git@github.com:acme/widget.git"
check "build 2 (failure again) completes" wait_for 60 build_done 2
check "gerrit's -1 is found already sent" wait_for 60 grep -q \
    "reporter 'gerrit': status -1 for 4242|$SHA|Verified already sent" "$M/master.log"
check "the ten other statuses arrive" wait_for 30 sh -c "[ \$(ls '$TRASH/req' | grep -c '^req-') -ge 21 ]"
check "and none went to gerrit" test "$(grep -l '"/gr/' "$TRASH"/req/req-*.json | wc -l)" = 1

# success on the same revision: each kind's new final state only
echo 0 > "$TRASH/rc"
force_rev "https://github.com/acme/widget.git"
check "build 3 (success) completes" wait_for 60 build_done 3
check "five pending and six final statuses arrive" wait_for 30 sh -c \
    "[ \$(ls '$TRASH/req' | grep -c '^req-') -ge 32 ]"
check_py "build 3's final states are success" "$TRASH/req" <<'PY'
import glob, json, sys
reqs = [json.load(open(p)) for p in sorted(glob.glob(sys.argv[1] + "/req-*.json"))][21:]
reqs = [r for r in reqs if "Build started." not in r["body"]]
got = sorted((r["path"].split("/")[1], json.loads(r["body"]).get("state") or json.loads(r["body"])["labels"]["Verified"]) for r in reqs)
want = sorted([("gh", "success"), ("gl", "success"), ("gt", "success"), ("bbc", "SUCCESSFUL"), ("bbs", "SUCCESSFUL"), ("gr", 1)])
assert got == want, got
print("the success statuses as expected")
PY
check "no token or password in master.log" sh -c \
    "! grep -E 'tok$$|pw$$' '$M/master.log'"
diag "the listener's work per build event with six status reporters (queueing included):" \
    $(grep -o 'reporters took [0-9]* us' "$M/master.log" | awk '{print $3}' | tr '\n' ' ') "us"
check "the master is still running" kill -0 "$MASTER_PID"
stop_pid "$WORKER_PID"
stop_pid "$MASTER_PID"
done_testing
