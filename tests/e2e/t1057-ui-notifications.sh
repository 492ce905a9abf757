#!/bin/bash
# Browser notifications for watched builders (www/src/notify.js) in a real
# browser (tests/e2e/ui/notify.mjs: Debian's Chromium through
# playwright-core) against a real master and kiln-worker: a watched
# builder's builds flip success -> failure -> success (the shell step tests
# for the file "broken", which the browser test creates and removes) and
# exactly the expected notifications are shown (window.Notification is a
# recording stub), none for an unwatched builder, none twice after a
# reload, the builds finished while no page was open caught up from the
# API, the watch kept across a reload; the permission is asked only on a
# click, and a browser that denies or lacks notifications says so.
# Screenshots under BUILD/test-artifacts/.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

ui_master <<LUA
worker { name = "w1", password = secret("w1") }
builder { name = "flip", workers = { "w1" }, steps = { shell { command = "test ! -e '$TRASH/broken'" } } }
builder { name = "other", workers = { "w1" }, steps = { shell { command = "test ! -e '$TRASH/broken'" } } }
LUA
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "w1 attaches" wait_for 60 worker_connected w1

ui_run notify.mjs 240
ui_screenshots 'notify*.png' notify-builder.png notify-panel.png notify-panel-dark.png notify-phone.png \
    notify-denied.png
done_testing
