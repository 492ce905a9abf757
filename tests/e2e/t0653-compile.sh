#!/bin/bash
# asan-too
# The compile step on real gcc output: warnings counted into a
# "warnings (N)" log and the warnings-count property, WARNINGS with some,
# FAILURE past max_warnings (WARNINGS with over_max = "warnings"),
# suppressions drop theirs, a clean compile is SUCCESS, a failing compiler
# FAILURE; checkconfig names a bad pattern.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-build.sh"
require_cmd gcc

SRC=$TRASH/src
mkdir -p "$SRC"
cat > "$SRC/warn.c" <<'C'
int f(void)
{
	int unused;
	unsigned u = 1;
	int i = -1;
	return u < i;
}
C
echo 'int g(void) { return 0; }' > "$SRC/clean.c"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1"), max_builds = 4 }
local cc = "gcc -Wall -Wextra -c $SRC/warn.c -o /dev/null"
builder { name = "warns", workers = { "w1" }, steps = { compile { command = cc } } }
builder { name = "over", workers = { "w1" }, steps = { compile { command = cc, max_warnings = 1 } } }
builder { name = "over-warns", workers = { "w1" }, steps = {
  compile { command = cc, max_warnings = 1, over_max = "warnings" } } }
builder { name = "suppressed", workers = { "w1" }, steps = {
  compile { command = cc, suppressions = { { file = ".*warn\\\\.c", warning = "unused" } } } } }
builder { name = "clean", workers = { "w1" }, steps = {
  compile { command = "gcc -Wall -c $SRC/clean.c -o /dev/null" } } }
builder { name = "broken", workers = { "w1" }, steps = { compile { command = "gcc -c $SRC/none.c" } } }
builder { name = "pattern", workers = { "w1" }, steps = {
  compile { command = "echo 'LINT: x'; echo 'lint: y'; echo 'warning: not counted'",
            warning_patterns = { "^LINT:", "^lint:" } },
  compile { name = "second", command = "echo 'LINT: z'", warning_patterns = { "^LINT:" } } } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
start_master_w1 "$M"

wcount() { api "builds/$1/properties" | jpy "d['properties'][0].get('warnings-count')"; }
logs() { api "builds/$1/steps/${2:-1}" >/dev/null; sid=$(api "builds/$1/steps/${2:-1}" | jpy 'd["steps"][0]["stepid"]'); api "steps/$sid/logs" | jpy '",".join(l["name"] for l in d["logs"])'; }

b=$(force_build warns)
check "gcc's warnings make the step WARNINGS" build_results_is "$b" 1
check "warnings-count is 2 ($(wcount "$b"))" [ "$(wcount "$b")" = '[2, "WarningCountingShellCommand"]' ]
check "a 'warnings (2)' log beside stdio ($(logs "$b"))" [ "$(logs "$b")" = "stdio,warnings (2)" ]
sid=$(api "builds/$b/steps/1" | jpy 'd["steps"][0]["stepid"]')
lid=$(api "steps/$sid/logs" | jpy '[l["logid"] for l in d["logs"] if l["name"].startswith("warnings")][0]')
wl=$(api "logs/$lid/contents" | jpy '"".join(c["content"] for c in d["logchunks"])')
check "it holds the warning lines" grep -q "warn.c:3:.*unused" <<<"$wl"

check "past max_warnings: FAILURE" build_results_is "$(force_build over)" 2
check "past max_warnings with over_max warnings: WARNINGS" build_results_is "$(force_build over-warns)" 1
b=$(force_build suppressed)
check "a suppression drops its warning ($(wcount "$b"))" [ "$(wcount "$b")" = '[1, "WarningCountingShellCommand"]' ]
b=$(force_build clean)
check "a clean compile is SUCCESS" build_results_is "$b" 0
check "with warnings-count 0" [ "$(wcount "$b")" = '[0, "WarningCountingShellCommand"]' ]
check "and no warnings log" [ "$(logs "$b")" = stdio ]
check "a failing compiler is FAILURE" build_results_is "$(force_build broken)" 2
b=$(force_build pattern)
check "own patterns replace the defaults, counts add up over steps ($(wcount "$b"))" [ "$(wcount "$b")" = '[3, "WarningCountingShellCommand"]' ]

mkdir -p "$TRASH/bad"
cat > "$TRASH/bad/master.lua" <<'LUA'
local c = compile { command = "make", warning_patterns = { "warn(ing" } }
LUA
out=$("$KILN" checkconfig "$TRASH/bad" 2>&1)
check "checkconfig names a bad pattern ($out)" grep -q "master.lua:1: compile: warning_patterns: 'warn(ing' is not a valid regular expression: missing closing parenthesis" <<<"$out"
done_testing
