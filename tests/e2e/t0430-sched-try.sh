#!/bin/bash
# asan-too
# try: `kiln try` sends the working tree's diff against its upstream base
# (git merge-base, git diff --binary) to the try scheduler; the build checks
# out the base revision and apply_patch applies the patch.  A patch that does
# not apply makes the build FAILURE with patch's message in the log (not an
# EXCEPTION); a bad token is refused with 401.
. "$(dirname "$0")/lib.sh"

export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=t@example.org
export GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=t@example.org
UP=$TRASH/upstream.git
git init -q --bare "$UP"
git clone -q "$UP" "$TRASH/seed" 2>/dev/null
( cd "$TRASH/seed" && printf 'line one\nline two\n' > hello.txt && git add hello.txt &&
  git commit -q -m base && git push -q origin HEAD:main ) || exit 1
git --git-dir="$UP" symbolic-ref HEAD refs/heads/main

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "tryb", workers = { "w1" }, steps = {
  shell { name = "checkout", command =
    "rm -rf src && git clone -q \"$KILN_REPOSITORY\" src && cd src && git checkout -q \"$KILN_REVISION\"" },
  apply_patch { workdir = "build/src", description_done = "patched" },
  shell { name = "show", command = "cat hello.txt", workdir = "build/src" },
} }
try_scheduler { name = "try", builders = { "tryb" }, token = secret("try") }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
printf 'try-token-%s' "$$" > "$M/secrets/try"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

# a developer's clone with local changes on top of origin/main
git clone -q "$UP" "$TRASH/dev"
cd "$TRASH/dev" || exit 1
git checkout -q -b topic origin/main
printf 'line one\nline two, patched\nline three\n' > hello.txt
out=$("$KILN" try --master "$URL" --builders tryb --try-token "try-token-$$" --comment "e2e" 2>&1)
check "kiln try is accepted ($out)" grep -q '^buildset [0-9]*: .*-byte patch on' <<<"$out"
bsid=$(sed -n 's/^buildset \([0-9]*\):.*/\1/p' <<<"$out")
base=$(git merge-base HEAD origin/main)
cd "$KILN_SRC" || exit 1
check "the sourcestamp holds the base revision and branch" [ "$(api "buildsets/$bsid" | jpy '[d["buildsets"][0]["sourcestamps"][0]["revision"], d["buildsets"][0]["sourcestamps"][0]["branch"]]')" = "[\"$base\", \"main\"]" ]
ssid=$(api "buildsets/$bsid" | jpy 'd["buildsets"][0]["sourcestamps"][0]["ssid"]')
patch=$(api sourcestamps | jpy "[s['patch'] for s in d['sourcestamps'] if s['ssid'] == $ssid][0]")
check "/sourcestamps shows the patch as Buildbot does ($patch)" [ "$(jpy 'sorted(d) == ["author", "body", "comment", "level", "patchid", "subdir"] and d["level"] == 1 and d["comment"] == "e2e" and "+line two, patched" in d["body"] and d["patchid"] > 0' <<<"$patch")" = true ]
check "so does the buildset" [ "$(api "buildsets/$bsid" | jpy 'd["buildsets"][0]["sourcestamps"][0]["patch"]["patchid"]')" = "$(jpy 'd["patchid"]' <<<"$patch")" ]
br=$(api "buildrequests?buildsetid=$bsid" | jpy 'd["buildrequests"][0]["buildrequestid"]')
check "the try build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "it succeeds" [ "$(build_field "$b" results)" = 0 ]
check "the patched file was built" grep -qx 'oline two, patched' <<<"$(log_text "$b" 3)"
check "apply_patch takes description_done" [ "$(api "builds/$b/steps/2" | jpy 'd["steps"][0]["state_string"]')" = patched ]
lid=$(api "builds/$b/steps/2/logs/patch" | jpy 'd["logs"][0]["logid"]')
check "and adds Buildbot's patch log with the diff" grep -q '^+line two, patched' <<<"$(curl -s "$URL/api/v2/logs/$lid/raw")"

# a patch that does not apply: FAILURE with patch's own words
bad=$(printf -- '--- a/hello.txt\n+++ b/hello.txt\n@@ -1,2 +1,2 @@\n-no such line\n+replacement\n line two\n' | base64 -w0)
res=$(rpc tryschedulers/try "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"try\",\"params\":{\"token\":\"try-token-$$\",\"revision\":\"$base\",\"branch\":\"main\",\"repository\":\"$UP\",\"patch_base64\":\"$bad\",\"patch_level\":1}}")
bsid=$(jpy 'd["result"]["bsid"]' <<<"$res")
check "a bad patch is accepted for building" [ -n "$bsid" ]
br=$(api "buildrequests?buildsetid=$bsid" | jpy 'd["buildrequests"][0]["buildrequestid"]')
check "the bad try build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
check "it is FAILURE, not EXCEPTION" [ "$(build_field "$b" results)" = 2 ]
steps=$(api "builds/$b/steps" | jpy '",".join("%s=%s" % (s["name"], s["results"]) for s in d["steps"])')
check "the patch step failed and halted the build ($steps)" [ "$steps" = "worker_preparation=0,checkout=0,patch=2" ]
check "patch's message is in the log" grep -q 'FAILED' <<<"$(log_text "$b" 2)"

res=$(rpc tryschedulers/try "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"try\",\"params\":{\"token\":\"wrong\",\"revision\":\"$base\",\"patch_base64\":\"$bad\"}}")
check "a wrong token is refused" [ "$(jpy 'd["error"]["message"]' <<<"$res")" = "bad token" ]
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"try\",\"params\":{\"token\":\"wrong\",\"patch_base64\":\"$bad\"}}" "$URL/api/v2/tryschedulers/try")
check "with 401" [ "$code" = 401 ]
n=$(api buildsets | jpy 'd["meta"]["total"]')
check "and no buildset" [ "$n" = 2 ]
out=$(cd "$TRASH/dev" && git checkout -q hello.txt && "$KILN" try --master "$URL" --try-token "try-token-$$" 2>&1)
check "kiln try without changes says so" grep -q 'nothing to try' <<<"$out"

done_testing
