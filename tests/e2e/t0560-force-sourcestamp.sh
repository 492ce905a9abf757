#!/bin/bash
# asan-too
# Force calls cannot steer what the workers build: branch and revision must
# look like refs, repository/project/codebase must be empty or the configured
# value, unless the force scheduler widens them with allow lists (exact values
# or globs).  A refused call answers 400 with a JSON-RPC error naming the
# field, and stores no buildset.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }
force_scheduler { name = "plain", builders = { "b" },
  repository = "https://example.org/kiln.git", project = "kiln" }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"

bid=$(api builders/b | jpy 'd["builders"][0]["builderid"]')
# fcall SCHED PARAMS-JSON-WITHOUT-BRACES: prints "STATUS BODY"
fcall() {
    curl -sS --max-time 10 -o "$TRASH/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":$bid$2}}" \
        "$URL/api/v2/forceschedulers/$1"
    printf ' %s' "$(cat "$TRASH/body")"
}
nbuildsets() { api buildsets | jpy 'd["meta"]["total"]'; }
# refused SCHED PARAMS FIELD: 400, a -32602 error naming FIELD, no new buildset
refused() {
    before=$(nbuildsets)
    out=$(fcall "$1" "$2")
    [ "${out%% *}" = 400 ] || { diag "answer: $out"; return 1; }
    [ "$(jpy 'd["error"]["code"]' <<<"${out#* }")" = -32602 ] || { diag "$out"; return 1; }
    grep -q "'$3'" <<<"$(jpy 'd["error"]["message"]' <<<"${out#* }")" || { diag "$out"; return 1; }
    [ "$(nbuildsets)" = "$before" ]
}
accepted() { out=$(fcall "$1" "$2"); [ "${out%% *}" = 200 ] || { diag "answer: $out"; return 1; }; }

check "a foreign repository is refused" refused plain ',"repository":"file:///evil"' repository
check "so is a foreign project" refused plain ',"project":"other"' project
check "and a foreign codebase" refused plain ',"codebase":"x"' codebase
check "a branch starting with '-' is refused" refused plain ',"branch":"--upload-pack=touch /tmp/x"' branch
check "a branch with whitespace is refused" refused plain ',"branch":"a b"' branch
check "a branch with a control character is refused" refused plain ',"branch":"main\u001b[2J"' branch
check "a revision with shell syntax is refused" refused plain ',"revision":"$(touch /tmp/x)"' revision
check "a revision starting with '-' is refused" refused plain ',"revision":"-f"' revision
check "a 300-byte branch is refused" refused plain ",\"branch\":\"$(printf 'a%.0s' $(seq 300))\"" branch
check "a branch of the wrong type is refused" refused plain ',"branch":["main"]' branch
check "a repository of the wrong type is refused" refused plain ',"repository":{"u":1}' repository

check "the configured repository and project are accepted" accepted plain ',"repository":"https://example.org/kiln.git","project":"kiln"'
check "empty fields are accepted (the defaults)" accepted plain ',"repository":"","project":"","branch":"","revision":""'
check "a ref-shaped branch and revision are accepted" accepted plain ',"branch":"feature/x-1.2","revision":"0123abcd~1"'
bs=$(jpy 'd["result"][0]' <<<"${out#* }")
check "they reach the sourcestamp" [ "$(api "buildsets/$bs" | jpy '[d["buildsets"][0]["sourcestamps"][0][k] for k in ("branch", "revision", "repository")]')" = '["feature/x-1.2", "0123abcd~1", "https://example.org/kiln.git"]' ]

# a second master whose force scheduler widens the fields
stop_pid "$MASTER_PID"
M2=$TRASH/master2
new_master "$M2" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }
force_scheduler { name = "wide", builders = { "b" },
  repository = "https://example.org/kiln.git",
  repositories = { "https://example.org/forks/*" },
  branches = { "main", "release-*", "with space" },
  projects = { "kiln", "kiln-*" } }
LUA
cp "$M/secrets/w1" "$M2/secrets/w1"
check "a master with allow lists starts" start_master "$M2"
bid=$(api builders/b | jpy 'd["builders"][0]["builderid"]')
check "an allowed repository glob is accepted" accepted wide ',"repository":"https://example.org/forks/ann.git"'
check "the configured default stays allowed" accepted wide ',"repository":"https://example.org/kiln.git"'
check "a repository outside the list is refused" refused wide ',"repository":"file:///evil"' repository
check "an allowed branch choice is accepted" accepted wide ',"branch":"main"'
check "an allowed branch pattern is accepted" accepted wide ',"branch":"release-2.0"'
check "the list may widen the ref rule" accepted wide ',"branch":"with space"'
check "a branch outside the list is refused" refused wide ',"branch":"dev"' branch
check "an allowed project pattern is accepted" accepted wide ',"project":"kiln-docs"'
check "the revision keeps the ref rule" refused wide ',"revision":"-x"' revision

# checkconfig: the allow lists are checked
bad() { mkdir -p "$TRASH/bad"; cat > "$TRASH/bad/master.lua"; "$KILN" checkconfig "$TRASH/bad" 2>&1; }
out=$(KILN_SECRET_W1=x bad <<'LUA'
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }
force_scheduler { name = "f", repositories = {} }
LUA
)
check "an empty allow list is a checkconfig error ($out)" [ "$out" = "master.lua:3: force_scheduler 'f': 'repositories' must not be empty" ]
out=$(KILN_SECRET_W1=x bad <<'LUA'
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }
force_scheduler { name = "f", branches = "main" }
LUA
)
check "an allow list must be a list ($out)" grep -q "^master.lua:3: force_scheduler 'f': 'branches'" <<<"$out"

done_testing
