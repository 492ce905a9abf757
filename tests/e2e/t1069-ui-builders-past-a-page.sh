#!/bin/bash
# More builders than one API page (1,000): the views that read the builder
# list (waterfall, console and grid through console.js's loadBuilders; the
# changes, requests and workers views for names) read every page of it
# (getAll in www/src/api.js), so builder 1,003 is there.  Before, they read
# only the first page: a name filter for the last builders found nothing.
# Real master, Debian's Chromium (tests/e2e/ui/builders-past-a-page.mjs).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

ui_master <<LUA
worker { name = "w1", password = secret("w1") }
for i = 1, 1003 do
  builder { name = string.format("b%04d", i), workers = { "w1" },
    steps = { shell { name = "s", command = "true" } } }
end
LUA
check "master starts" start_master "$M"
n=$(api 'builders?limit=2000&field=builderid' | jpy 'len(d["builders"])')
check "the master has 1,003 builders ($n)" [ "$n" = 1003 ]

ui_run builders-past-a-page.mjs 180
ui_screenshots 'past-a-page*.png' past-a-page.png
done_testing
