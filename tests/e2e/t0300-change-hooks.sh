#!/bin/bash
# asan-too
# Change hooks end to end: Buildbot's base dialect (form and JSON, bearer
# token), GitHub/Gitea pushes signed with HMAC-SHA256 and GitLab's token,
# pull/merge requests, ping and ignored events; bad signatures, malformed
# JSON, unknown events and oversize bodies are refused with nothing stored.
# Changes are read back through /api/v2/changes in Buildbot's shape.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = {
  token = secret("hook"),
  github = { secret = secret("gh") },
  gitlab = { token = secret("gl") },
  gitea = { secret = secret("gitea") },
}
LUA
printf 'hook-token' > "$M/secrets/hook"
printf 'gh-secret' > "$M/secrets/gh"
printf 'gl-token' > "$M/secrets/gl"
printf 'gitea-secret' > "$M/secrets/gitea"
check "master starts" start_master "$M"

code() { curl -s -o "$TRASH/body" -w '%{http_code}' --max-time 10 "$@"; }
total() { api changes | jpy 'd["meta"]["total"]'; }
# hmac SECRET FILE: hex HMAC-SHA256 of the file's bytes
hmac() { /usr/bin/python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$1" "$2"; }

# --- base dialect: the exact form Buildbot 3.7 was sent -----------------------------
FORM='author=Alice+Example+%3Calice%40example.org%3E&comments=Fix+the+frobnicator%0A%0ALonger+description+here.&files=%5B%22src%2Ffrob.c%22%2C+%22include%2Ffrob.h%22%5D&branch=dev&revision=0123456789abcdef0123456789abcdef01234567&repository=https%3A%2F%2Fexample.org%2Frepo.git&project=kiln-demo&category=push&properties=%7B%22ticket%22%3A+%22KILN-42%22%2C+%22count%22%3A+3%7D&revlink=https%3A%2F%2Fexample.org%2Frepo%2Fcommit%2F0123456&when_timestamp=1700000000&codebase='
check "base without token: 401" [ "$(code -d "$FORM" "$URL/change_hook/base")" = 401 ]
check "base with a wrong token: 403" [ "$(code -H 'Authorization: Bearer nope' -d "$FORM" "$URL/change_hook/base")" = 403 ]
check "refused: nothing stored" [ "$(total)" = 0 ]
check "base with the token: 200" [ "$(code -H 'Authorization: Bearer hook-token' -d "$FORM" "$URL/change_hook/base")" = 200 ]
check "answered like Buildbot" [ "$(cat "$TRASH/body")" = "1 change found" ]
# shape: compare with Buildbot's GET /changes/1 (created_at differs)
api changes/1 > "$TRASH/c1.json"
check "change 1 has Buildbot's shape" /usr/bin/python3 - "$TRASH/c1.json" "$KILN_SRC/../shared/buildbot-anchor/api-samples/GET_changes_1.json" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))
try:
    want = json.load(open(sys.argv[2]))
except OSError:  # the reference samples are not in every checkout
    want = {"changes": [{"author": "Alice Example <alice@example.org>", "branch": "dev", "category": "push", "changeid": 1, "codebase": "", "comments": "Fix the frobnicator\n\nLonger description here.", "committer": None, "files": ["src/frob.c", "include/frob.h"], "parent_changeids": [], "project": "kiln-demo", "properties": {"count": [3, "Change"], "ticket": ["KILN-42", "Change"]}, "repository": "https://example.org/repo.git", "revision": "0123456789abcdef0123456789abcdef01234567", "revlink": "https://example.org/repo/commit/0123456", "sourcestamp": {"branch": "dev", "codebase": "", "created_at": 0, "patch": None, "project": "kiln-demo", "repository": "https://example.org/repo.git", "revision": "0123456789abcdef0123456789abcdef01234567", "ssid": 2}, "when_timestamp": 1700000000}], "meta": {}}
g, w = got["changes"][0], want["changes"][0]
for d in (g["sourcestamp"], w["sourcestamp"]):
    d.pop("created_at"); d.pop("ssid")
assert sorted(g) == sorted(w), (sorted(g), sorted(w))
assert g == w, (g, w)
assert got["meta"] == {}
PY
check "JSON body accepted" [ "$(code -H 'Authorization: Bearer hook-token' -H 'Content-Type: application/json' -d '{"who": "bob", "files": ["a.c"], "branch": "main", "properties": {"n": 1}}' "$URL/change_hook/base")" = 200 ]
check "second change has a parent only on the same branch" [ "$(api changes/2 | jpy 'd["changes"][0]["parent_changeids"]')" = "[]" ]
check "filters and order work on changes" [ "$(api 'changes?branch=main&field=author' | jpy 'd["changes"][0]["author"]')" = bob ]
check "order=-changeid&limit=1" [ "$(api 'changes?order=-changeid&limit=1' | jpy 'd["changes"][0]["changeid"]')" = 2 ]
check "unknown change: 404" [ "$(code "$URL/api/v2/changes/99")" = 404 ]
check "base without author: 400" [ "$(code -H 'Authorization: Bearer hook-token' -d 'comments=x' "$URL/change_hook/base")" = 400 ]
check "files not JSON: 400 with a message" sh -c "[ \"\$(curl -s -o '$TRASH/body' -w '%{http_code}' -H 'Authorization: Bearer hook-token' -d 'author=a&files=%5Bx' '$URL/change_hook/base')\" = 400 ] && grep -q \"'files' is not valid JSON\" '$TRASH/body'"
check "GET on a hook: 405" [ "$(code -H 'Authorization: Bearer hook-token' "$URL/change_hook/base")" = 405 ]
check "unknown dialect: 404" [ "$(code -d x "$URL/change_hook/bitbucket")" = 404 ]
n=$(total)

# --- GitHub ------------------------------------------------------------------------
cat > "$TRASH/push.json" <<'JSON'
{"ref": "refs/heads/main", "before": "1111111111111111111111111111111111111111",
 "after": "3333333333333333333333333333333333333333", "deleted": false,
 "repository": {"full_name": "octo/hello", "html_url": "https://github.com/octo/hello"},
 "pusher": {"name": "ann"},
 "commits": [
  {"id": "2222222222222222222222222222222222222222", "distinct": true, "message": "one",
   "timestamp": "2023-11-14T23:13:20+01:00", "url": "https://github.com/octo/hello/commit/2222",
   "author": {"name": "Ann Dev", "email": "ann@example.org", "username": "ann"},
   "committer": {"name": "Ann Dev", "email": "ann@example.org", "username": "ann"},
   "added": ["new.c"], "removed": [], "modified": ["README"]},
  {"id": "3333333333333333333333333333333333333333", "distinct": true, "message": "two",
   "timestamp": "2023-11-14T23:14:20+01:00", "url": "https://github.com/octo/hello/commit/3333",
   "author": {"name": "Bob", "email": "bob@example.org", "username": "bob"},
   "committer": {"name": "Bob", "email": "bob@example.org", "username": "bob"},
   "added": [], "removed": ["old.c"], "modified": []}],
 "head_commit": {"id": "3333333333333333333333333333333333333333"}}
JSON
sig=$(hmac gh-secret "$TRASH/push.json")
gh() { code -H "X-GitHub-Event: $1" -H 'Content-Type: application/json' "${@:2}" "$URL/change_hook/github"; }
check "github: no signature: 403" [ "$(gh push --data-binary @"$TRASH/push.json")" = 403 ]
check "github: bad signature: 403" [ "$(gh push -H "X-Hub-Signature-256: sha256=$(hmac wrong "$TRASH/push.json")" --data-binary @"$TRASH/push.json")" = 403 ]
check "github: signature without sha256=: 403" [ "$(gh push -H "X-Hub-Signature-256: $sig" --data-binary @"$TRASH/push.json")" = 403 ]
check "github: nothing stored" [ "$(total)" = "$n" ]
check "github: signed push: 200" [ "$(gh push -H "X-Hub-Signature-256: sha256=$sig" --data-binary @"$TRASH/push.json")" = 200 ]
check "github: two changes" [ "$(cat "$TRASH/body")" = "2 changes found" ]
api "changes?revision=2222222222222222222222222222222222222222" > "$TRASH/gh.json"
check "github: author, branch, files" /usr/bin/python3 -c '
import json,sys; c=json.load(open(sys.argv[1]))["changes"][0]
assert c["author"]=="Ann Dev <ann@example.org>", c
assert c["branch"]=="main" and c["category"]=="push", c
assert c["files"]==["new.c","README"], c
assert c["repository"]=="https://github.com/octo/hello" and c["project"]=="octo/hello", c
assert c["when_timestamp"]==1700000000, c
' "$TRASH/gh.json"
check "github: second change's parent is the first" [ "$(api "changes?revision=3333333333333333333333333333333333333333" | jpy 'd["changes"][0]["parent_changeids"][0]')" = "$((n + 1))" ]
printf '{"zen": "Keep it simple.", "hook_id": 1}' > "$TRASH/ping.json"
check "github: ping: 200" [ "$(gh ping -H "X-Hub-Signature-256: sha256=$(hmac gh-secret "$TRASH/ping.json")" --data-binary @"$TRASH/ping.json")" = 200 ]
printf '{"action": "opened", "issue": {"number": 1}}' > "$TRASH/issue.json"
check "github: issues event: 200 ignored" sh -c "[ \"\$(curl -s -o '$TRASH/body' -w '%{http_code}' -H 'X-GitHub-Event: issues' -H 'X-Hub-Signature-256: sha256=$(hmac gh-secret "$TRASH/issue.json")' --data-binary @'$TRASH/issue.json' '$URL/change_hook/github')\" = 200 ] && grep -q ignored '$TRASH/body'"
check "github: unknown event: 400" [ "$(gh frobnicate -H "X-Hub-Signature-256: sha256=$(hmac gh-secret "$TRASH/issue.json")" --data-binary @"$TRASH/issue.json")" = 400 ]
check "github: unknown event message" grep -q "unknown GitHub event type 'frobnicate'" "$TRASH/body"
printf '{"ref": "refs/heads/main", "commits": [' > "$TRASH/bad.json"
check "github: malformed JSON: 400" [ "$(gh push -H "X-Hub-Signature-256: sha256=$(hmac gh-secret "$TRASH/bad.json")" --data-binary @"$TRASH/bad.json")" = 400 ]
check "github: malformed JSON message" grep -q "malformed JSON payload" "$TRASH/body"
cat > "$TRASH/pr.json" <<'JSON'
{"action": "synchronize", "number": 7,
 "pull_request": {"number": 7, "title": "Add x", "body": "", "html_url": "https://github.com/octo/hello/pull/7",
  "user": {"login": "carol"},
  "head": {"ref": "feature", "sha": "4444444444444444444444444444444444444444"},
  "base": {"ref": "main", "repo": {"html_url": "https://github.com/octo/hello", "full_name": "octo/hello"}}},
 "repository": {"html_url": "https://github.com/octo/hello"}}
JSON
check "github: pull request: 200" [ "$(gh pull_request -H "X-Hub-Signature-256: sha256=$(hmac gh-secret "$TRASH/pr.json")" --data-binary @"$TRASH/pr.json")" = 200 ]
check "github: pull request change" [ "$(api 'changes?category=pull' | jpy 'd["changes"][0]["revision"] + " " + d["changes"][0]["branch"]')" = "4444444444444444444444444444444444444444 feature" ]
head -c 2000000 /dev/zero | tr '\0' ' ' > "$TRASH/big.json"
check "github: oversize body: 413" [ "$(gh push -H "X-Hub-Signature-256: sha256=x" --data-binary @"$TRASH/big.json")" = 413 ]
n=$(total)
check "github: 3 changes in all" [ "$n" = 5 ]

# --- Gitea: the same payload shape, signature header without a prefix ----------------
check "gitea: bad signature: 403" [ "$(code -H 'X-Gitea-Event: push' -H "X-Gitea-Signature: $(hmac nope "$TRASH/push.json")" --data-binary @"$TRASH/push.json" "$URL/change_hook/gitea")" = 403 ]
check "gitea: signed push: 200" [ "$(code -H 'X-Gitea-Event: push' -H "X-Gitea-Signature: $(hmac gitea-secret "$TRASH/push.json")" --data-binary @"$TRASH/push.json" "$URL/change_hook/gitea")" = 200 ]
check "gitea: 2 more changes" [ "$(total)" = $((n + 2)) ]
n=$(total)

# --- GitLab --------------------------------------------------------------------------
cat > "$TRASH/gl.json" <<'JSON'
{"object_kind": "push", "ref": "refs/heads/dev", "after": "5555555555555555555555555555555555555555",
 "user_name": "Ann", "project": {"path_with_namespace": "grp/proj", "git_http_url": "https://gitlab.example/grp/proj.git"},
 "commits": [{"id": "5555555555555555555555555555555555555555", "message": "fix\n", "timestamp": "2023-11-14T22:13:20+00:00",
  "url": "https://gitlab.example/grp/proj/-/commit/5555", "author": {"name": "Ann Dev", "email": "ann@example.org"},
  "added": ["a"], "modified": [], "removed": ["b"]}]}
JSON
check "gitlab: wrong token: 403" [ "$(code -H 'X-Gitlab-Event: Push Hook' -H 'X-Gitlab-Token: nope' --data-binary @"$TRASH/gl.json" "$URL/change_hook/gitlab")" = 403 ]
check "gitlab: no token: 403" [ "$(code -H 'X-Gitlab-Event: Push Hook' --data-binary @"$TRASH/gl.json" "$URL/change_hook/gitlab")" = 403 ]
check "gitlab: push: 200" [ "$(code -H 'X-Gitlab-Event: Push Hook' -H 'X-Gitlab-Token: gl-token' --data-binary @"$TRASH/gl.json" "$URL/change_hook/gitlab")" = 200 ]
check "gitlab: change on dev by Ann" [ "$(api 'changes?branch=dev&repository=https://gitlab.example/grp/proj.git' | jpy 'd["changes"][0]["author"]')" = "Ann Dev <ann@example.org>" ]
check "gitlab: unknown event: 400" [ "$(code -H 'X-Gitlab-Event: Bogus Hook' -H 'X-Gitlab-Token: gl-token' -d '{}' "$URL/change_hook/gitlab")" = 400 ]
check "gitlab: note event: ignored" [ "$(code -H 'X-Gitlab-Event: Note Hook' -H 'X-Gitlab-Token: gl-token' -d '{}' "$URL/change_hook/gitlab")" = 200 ]
check "gitlab: 1 more change" [ "$(total)" = $((n + 1)) ]

# the master is still healthy
check "API still answers" [ "$(code "$URL/api/v2/masters")" = 200 ]
check "no crash in the log" sh -c "! grep -q 'AddressSanitizer\|runtime error' '$M/master.log'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
