#!/bin/bash
# asan-too
# The try call's parameters have strict types and ranges: patch_level is an
# integer 0..100 (2^40 used to become 0), strings are strings of bounded size
# without control characters, branch and revision look like refs,
# builderNames is a list of names.  Each refusal is a 400 naming the
# parameter and stores no buildset.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "tryb", workers = { "w1" }, steps = { apply_patch { } } }
try_scheduler { name = "try", builders = { "tryb" }, token = secret("try") }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
printf 'try-token-%s' "$$" > "$M/secrets/try"
check "master starts" start_master "$M"

PATCH=$(printf -- '--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n' | base64 -w0)
# tcall PY-EXTRA: prints "STATUS BODY" for a try call with valid params updated by PY-EXTRA
tcall() {
    /usr/bin/python3 -c "
import json, sys
p = {'token': 'try-token-$$', 'revision': 'abc123', 'branch': 'main', 'patch_base64': '$PATCH',
     'patch_level': 1, 'builderNames': ['tryb']}
p.update($1)
print(json.dumps({'jsonrpc': '2.0', 'id': 1, 'method': 'try', 'params': p}))" > "$TRASH/req"
    curl -sS --max-time 10 -o "$TRASH/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$TRASH/req" "$URL/api/v2/tryschedulers/try"
    printf ' %s' "$(head -c 2000 "$TRASH/body")"
}
nbuildsets() { api buildsets | jpy 'd["meta"]["total"]'; }
refused() {
    nb=$(nbuildsets)
    out=$(tcall "$1")
    [ "${out%% *}" = 400 ] || { diag "answer: ${out:0:300}"; return 1; }
    grep -q -- "'$2'" <<<"$(jpy 'd["error"]["message"]' <<<"${out#* }")" || { diag "${out:0:300}"; return 1; }
    [ "$(nbuildsets)" = "$nb" ]
}

check "patch_level 2^40 is refused" refused "{'patch_level': 2**40}" patch_level
check "a negative patch_level is refused" refused "{'patch_level': -1}" patch_level
check "a patch_level string is refused" refused "{'patch_level': '1'}" patch_level
check "a patch_level float is refused" refused "{'patch_level': 1.5}" patch_level
check "a who of the wrong type is refused" refused "{'who': 5}" who
check "a comment of the wrong type is refused" refused "{'comment': ['x']}" comment
check "a 5,000-byte comment is refused" refused "{'comment': 'c' * 5000}" comment
check "a branch starting with '-' is refused" refused "{'branch': '--exec=x'}" branch
check "a revision with whitespace is refused" refused "{'revision': 'a b'}" revision
check "a repository with a control character is refused" refused "{'repository': 'r\\x1b'}" repository
check "a token of the wrong type is refused" refused "{'token': 1}" token
check "a builder name that is not a string is refused" refused "{'builderNames': ['tryb', 3]}" builderNames
check "builderNames that is not a list is refused" refused "{'builderNames': 'tryb'}" builderNames

out=$(tcall "{'patch_level': 0, 'who': 'Ann <ann@example.org>', 'comment': 'ok', 'builderNames': ['tryb'] * 5000}")
check "a valid try is accepted (${out:0:80})" [ "${out%% *}" = 200 ]
bs=$(jpy 'd["result"]["bsid"]' <<<"${out#* }")
check "one request for a builder named 5,000 times" [ "$(api "buildrequests?buildsetid=$bs" | jpy 'd["meta"]["total"]')" = 1 ]

done_testing
