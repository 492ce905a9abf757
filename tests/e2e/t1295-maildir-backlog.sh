#!/bin/bash
# asan-too
# A maildir backlog is read in short polls, one right after another: more
# than the 200 mails one poll takes (or more than 4 MiB of mail) do not wait
# for the next 'interval' (an hour here), and the oldest mails (by name, the
# delivery time) come first whatever order the directory lists them in.
. "$(dirname "$0")/lib.sh"
require_cmd curl

CORPUS=$KILN_SRC/tests/fuzz/corpus/mailparse
MD=$TRASH/Maildir
mkdir -p "$MD/new" "$MD/cur" "$MD/tmp"
M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
maildir_source { name = "mail", maildir = "$MD", interval = 3600, max_size = "2 MiB" }
LUA
check "master starts" start_master "$M"
nchanges() { [ "$(api 'changes?field=changeid' | jpy 'len(d["changes"])')" = "$1" ]; }
polled() { api changesources/mail | jpy 'd["changesources"][0]["last_poll"] is not None' | grep -qx true; }
check "the first poll (at start) is done before any mail arrives" wait_for 30 polled

# 240 small mails delivered newest first, then 3 mails of 1.5 MiB each
for i in $(seq 240 -1 1); do
    n=$(printf '17647%05d.M%dP1.host' "$i" "$i")
    sed "s/^X-Git-Newrev: .*/X-Git-Newrev: $(printf '%040x' "$i")/" "$CORPUS/git-push.eml" > "$MD/tmp/$n"
    mv "$MD/tmp/$n" "$MD/new/$n"
done
for i in 241 242 243; do
    n=$(printf '17647%05d.M%dP1.host' "$i" "$i")
    { sed "s/^X-Git-Newrev: .*/X-Git-Newrev: $(printf '%040x' "$i")/" "$CORPUS/git-push.eml"
      head -c 1500000 /dev/zero | tr '\0' '\n'; } > "$MD/tmp/$n"
    mv "$MD/tmp/$n" "$MD/new/$n"
done
out=$(rpc changesources/mail '{"jsonrpc":"2.0","method":"poll","params":{},"id":1}')
check "one poll asked for ($out)" sh -c "printf '%s' '$out' | grep -q '\"result\":null'"
check "reads the whole backlog without waiting for the interval" wait_for 60 nchanges 243
check "new/ is empty" sh -c "[ -z \"\$(ls '$MD/new')\" ]"
api 'changes?order=changeid&field=revision' > "$TRASH/revs.json"
check "the changes come in delivery order" /usr/bin/python3 -c '
import json, sys
revs = [int(c["revision"], 16) for c in json.load(open(sys.argv[1]))["changes"]]
assert revs == list(range(1, 244)), revs[:10]' "$TRASH/revs.json"
stop_pid "$MASTER_PID"
check "the master stops cleanly" [ $? = 0 ]
done_testing
