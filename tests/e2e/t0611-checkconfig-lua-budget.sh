#!/bin/bash
# asan-too
# Issue 9: `kiln checkconfig` on a master.lua that runs a backtracking
# pattern on a long string at load time hung (the CPU limit was only looked
# at between Lua instructions, never inside string.find), as did Lua's own
# table loops over huge ranges.  Each now fails within its budget with a
# master.lua:LINE error.
. "$(dirname "$0")/lib.sh"

# checkconfig_fails NAME WANT: runs checkconfig on $TRASH/NAME (bounded);
# true when it exits 1 printing WANT
checkconfig_fails() {
    out=$(timeout 60 "$KILN" checkconfig "$TRASH/$1" 2>&1); rc=$?
    diag "$1: exit $rc: $out"
    [ "$rc" = 1 ] && printf '%s' "$out" | grep -qF "$2"
}

new_master "$TRASH/pattern" <<'LUA'
local s = string.rep("a", 512 * 1024)
local hit = string.find(s, "(.-)(.-)(.-)x")
LUA
check "a backtracking pattern: checkconfig fails with the line" \
    checkconfig_fails pattern "master.lua:2: instruction limit exceeded in string.find"

new_master "$TRASH/pcall" <<'LUA'
local s = string.rep("a", 512 * 1024)
for i = 1, 10 do pcall(string.gsub, s, "(.-)(.-)(.-)x", "") end
LUA
check "pcall does not catch it" \
    checkconfig_fails pcall "master.lua:2: instruction limit exceeded in string.gsub"

new_master "$TRASH/move" <<'LUA'
table.move({}, 1, 1 << 50, 2)
LUA
check "table.move over 2^50 nils fails" \
    checkconfig_fails move "master.lua:1: instruction limit exceeded in table.move"

new_master "$TRASH/rep" <<'LUA'
assert(string.rep("", 1 << 62) == "")
LUA
check "string.rep of nothing returns at once" sh -c "timeout 60 '$KILN' checkconfig '$TRASH/rep' >/dev/null"
done_testing
