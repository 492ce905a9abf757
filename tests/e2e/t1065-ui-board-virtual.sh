#!/bin/bash
# The status board with 1,000 builders (issue 11, slice "board"): a real
# master whose master.lua declares b0001..b1000 in a Lua loop (tags t0..t9
# by the last digit) and a real kiln-worker; b0001 succeeds, b0500 fails,
# then tests/e2e/ui/board-virtual.mjs in Chromium checks: fewer than 100
# rows in the DOM, b0500 first (broken first), a scroll sweep that always
# shows rows, the last builder at the bottom, j/k/arrows and Enter, the
# name and tag filters, and a build forced on b0999 updated live in its row
# (its current step within 1 s, its state string; no other row touched,
# b0998 and b1000 next to it showing "Ns ago" of builds of theirs;
# one timer while it runs, none after).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

ui_master <<LUA
worker { name = "w1", password = secret("w1") }
local names = {}
for i = 1, 1000 do
  local name = string.format("b%04d", i)
  names[i] = name
  local steps
  if i == 500 then
    steps = { shell { name = "fail", command = "echo no; exit 1" } }
  elseif i == 999 then
    -- prints a line every 0.2 s until the browser test opens the gate (bounded: 60 s)
    steps = {
      shell { name = "first", command = "echo first; sleep 0.5" },
      shell { name = "wait", command = "i=0; while [ ! -e '$TRASH/gate' ] && [ \$i -lt 300 ]; do echo tick \$i; sleep 0.2; i=\$((i+1)); done; test -e '$TRASH/gate'" },
    }
  else
    steps = { shell { name = "ok", command = "echo ok" } }
  end
  builder { name = name, workers = { "w1" }, tags = { "t" .. (i % 10) }, steps = steps }
end
force_scheduler { name = "force", builders = names }
LUA
start_master_w1 "$M" 60

br=$(force b0001)
check "b0001 #1 completes" wait_for 60 request_done "$br"
br=$(force b0500)
check "b0500 #1 completes (failure)" wait_for 60 request_done "$br"
# finished builds next to b0999, whose "Ns ago" would change if their rows were redrawn
for b in b0998 b1000; do
    br=$(force $b)
    check "$b #1 completes" wait_for 60 request_done "$br"
done
n=$(api 'builders?field=builderid' | jpy 'd["meta"]["total"]')
check "the master has 1,000 builders ($n)" [ "$n" = 1000 ]

ui_run board-virtual.mjs 240
ui_screenshots 'board-virtual*.png' board-virtual.png board-virtual-running.png
done_testing
