#!/bin/bash
# asan-too
# The IRC reporter (issue 12) against a real IRC server (ngircd, Debian's
# package) on loopback, with a real master and kiln-worker: a Python client
# in #ci sees the announcements of a failing build (with its blamelist) and
# a passing one, gets answers to "kiln: help", "kiln: status", "kiln: last
# hello" and "kiln: force hello" (which starts a build); then ngircd is
# killed and started again: the bot reconnects and rejoins, and the API
# answers promptly all along, as it does while another reporter's server
# accepts and never answers (registration times out, retried).  Also: checkconfig's errors for bad keys, and
# a nick already taken (the bot takes the alternative).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-reporters.sh"
require_cmd curl ngircd

B=$TRASH/bad
new_master "$B" <<'LUA'
reporter { kind = "irc", host = "127.0.0.1", channels = { "ci" } }
LUA
check "checkconfig refuses a channel without '#'" checkconfig_says "$B" \
    "master.lua:1: reporter 'irc': channels[1] must be a channel name such as \"#ci\""
new_master "$B" <<'LUA'
reporter { kind = "irc", host = "127.0.0.1", channels = "#ci", password = "plain" }
LUA
check "checkconfig refuses a password that is not a secret" checkconfig_says "$B" \
    "master.lua:1: reporter 'irc': 'password' must come from secret(...)"
new_master "$B" <<'LUA'
reporter { kind = "irc", host = "127.0.0.1", channels = "#ci", notify = { "failing", "sometimes" } }
LUA
check "checkconfig refuses an unknown notify mode" checkconfig_says "$B" \
    "master.lua:1: reporter 'irc': 'notify': unknown mode 'sometimes'"
new_master "$B" <<'LUA'
reporter { kind = "irc", host = "127.0.0.1", nick = "1kiln", channels = "#ci" }
LUA
check "checkconfig refuses a bad nick" checkconfig_says "$B" \
    "master.lua:1: reporter 'irc': 'nick' must be an IRC nick"
new_master "$B" <<'LUA'
reporter { kind = "irc", host = "127.0.0.1" }
LUA
check "checkconfig wants channels" checkconfig_says "$B" \
    "master.lua:1: reporter 'irc': 'channels' is required"

# ---- ngircd on a free loopback port -------------------------------------------
# start_ngircd: runs ngircd -n on the port in $TRASH/irc.port (a new one
# when that file is empty), retrying on a clash; sets IRCD_PID
start_ngircd() {
    for try in 1 2 3 4 5; do
        [ -s "$TRASH/irc.port" ] || free_port > "$TRASH/irc.port"
        IPORT=$(cat "$TRASH/irc.port")
        cat > "$TRASH/ngircd.conf" <<CONF
[Global]
Name = irc.t1220.test
Info = t1220
Listen = 127.0.0.1
Ports = $IPORT
MotdPhrase = "t1220"
PidFile = $TRASH/ngircd.pid
[Limits]
MaxNickLength = 16
[Options]
DNS = no
Ident = no
PAM = no
CONF
        ngircd -n -f "$TRASH/ngircd.conf" >> "$TRASH/ngircd.log" 2>&1 &
        IRCD_PID=$!
        e2e_track $IRCD_PID
        if wait_for 30 sh -c "grep -q 'Now listening on \\[127.0.0.1\\]:$IPORT' '$TRASH/ngircd.log' || ! kill -0 $IRCD_PID"; then
            kill -0 $IRCD_PID 2>/dev/null && return 0
        fi
        kill $IRCD_PID 2>/dev/null; wait $IRCD_PID 2>/dev/null
        [ -n "${KEEP_PORT:-}" ] || : > "$TRASH/irc.port" # a clash: another port
    done
    return 1
}
check "ngircd starts" start_ngircd
diag "ngircd on port $IPORT"

# someone holds the nick "kiln": the bot becomes kiln_
CLIENT=$KILN_SRC/tests/e2e/irc-client.py
: > "$TRASH/say"; : > "$TRASH/hold-say"
/usr/bin/python3 "$CLIENT" "$TRASH/irc.port" "$TRASH/hold.log" "$TRASH/hold-say" kiln "#other" &
e2e_track $!
check "a client holds the nick kiln" wait_for 60 grep -q JOINED "$TRASH/hold.log"
/usr/bin/python3 "$CLIENT" "$TRASH/irc.port" "$TRASH/client.log" "$TRASH/say" watcher "#ci" &
e2e_track $!
check "the watcher joins #ci" wait_for 60 grep -q JOINED "$TRASH/client.log"

# a server that accepts connections and never says a word
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' "$TRASH/silent.port" &
e2e_track $!
check "a silent server listens" wait_for 60 test -s "$TRASH/silent.port"
SPORT=$(cat "$TRASH/silent.port")

M=$TRASH/master
echo 1 > "$TRASH/rc"
new_master "$M" <<LUA
url = "http://ci.example.org:8010/"
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
worker { name = "w1", password = secret("w1") }
builder { name = "hello", workers = { "w1" }, steps = {
  shell { name = "make", command = { "sh", "-c", "exit \$(cat '$TRASH/rc')" } } } }
builder { name = "noforce", workers = { "w1" }, steps = { shell { command = "true" } } }
single_branch { name = "main", builders = { "hello" }, change_filter = { branch = "main" } }
force_scheduler { name = "force", builders = { "hello" } }
reporter { kind = "irc", name = "chat", host = "127.0.0.1", port = $IPORT, nick = "kiln",
  channels = { "#ci" }, notify = { "failing", "passing" }, allow_force = true,
  rate = 1, burst = 2, queue = { backoff = 0.5, timeout = 5 } }
reporter { kind = "irc", name = "silent", host = "127.0.0.1", port = $SPORT,
  channels = { "#ci" }, queue = { backoff = 0.5, timeout = 1 } }
LUA
printf 'w1-pass-%s' "$$" > "$M/secrets/w1"
printf 'hook-%s' "$$" > "$M/secrets/hook"
check "checkconfig accepts the reporter" "$KILN" checkconfig "$M"
check "master starts" start_master "$M"
check "the bot takes the alternative nick and joins #ci" wait_for 60 sh -c \
    "grep -q \"registered as kiln_\" '$M/master.log' && grep -q 'joined #ci' '$M/master.log'"
check "the watcher sees it join" wait_for 30 grep -q "^RECV :kiln_!.* JOIN :\?#ci" "$TRASH/client.log"
check "the silent server: registration times out, and the bot tries again" wait_for 60 sh -c \
    "grep -q \"reporter 'silent': disconnected from 127.0.0.1:$SPORT: registration timed out\" '$M/master.log' &&
     grep -q \"reporter 'silent': reconnecting in\" '$M/master.log'"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1
BID=$(api builders/hello | jpy 'd["builders"][0]["builderid"]')

build_done() { [ "$(api "builders/hello/builds?number=$1" | jpy 'd["builds"][0]["complete"]')" = true ]; }
said() { grep -qF "$1" "$TRASH/client.log"; }

# a failing build from Ann's change, then a passing one
"$KILN" sendchange --master "$URL" --token "hook-$$" --who "Ann Dev <ann@example.org>" \
    --branch main --revision abc123 src/a.c >/dev/null 2>&1
check "build 1 (failure) completes" wait_for 60 build_done 1
check "announced: hello: build #1 failure (Ann Dev) URL" wait_for 60 said \
    "PRIVMSG #ci :hello: build #1 failure (Ann Dev) http://ci.example.org:8010/builders/$BID/builds/1"
echo 0 > "$TRASH/rc"
force hello >/dev/null
check "build 2 (success) completes" wait_for 60 build_done 2
check "announced: hello: build #2 success URL" wait_for 60 said \
    "PRIVMSG #ci :hello: build #2 success http://ci.example.org:8010/builders/$BID/builds/2"

# commands
cat >> "$TRASH/say" <<'SAY'
kiln: help
kiln_: status
kiln: last hello
kiln: force noforce
SAY
check "help answers" wait_for 60 said "PRIVMSG #ci :commands: status | last BUILDER"
check "status answers" wait_for 60 said "PRIVMSG #ci :2 builders, 0 running builds"
check "last hello answers" wait_for 60 said \
    "PRIVMSG #ci :hello: last build #2 success"
check "force of a builder without a force scheduler is refused" wait_for 60 said \
    "PRIVMSG #ci :force: noforce has no force scheduler"
echo "kiln: force hello" >> "$TRASH/say"
check "force hello answers" wait_for 60 said "PRIVMSG #ci :hello: forced (buildset"
check "and build 3 runs to its end" wait_for 60 build_done 3
check "announced: build #3 success" wait_for 60 said "PRIVMSG #ci :hello: build #3 success"
check "no line the bot sent was over 512 bytes" sh -c \
    "! awk '/^RECV :kiln_!/ && length(\$0) - 5 > 510' '$TRASH/client.log' | grep -q ."

echo "kiln: i am ann" >> "$TRASH/say"
check "i am: says nothing is stored" wait_for 60 said \
    "PRIVMSG #ci :i am: not supported: Kiln stores no IRC identities (nothing was saved)"
echo "kiln: stop hello" >> "$TRASH/say"
check "stop with nothing running" wait_for 60 said "PRIVMSG #ci :hello: 0 running builds stopped"

# the rate limit: 8 answers at once leave at 1 line/s after a burst of 2
# (ngircd alone would pass them at about 3 lines/s)
for i in 1 2 3 4 5 6 7 8; do echo "kiln: help $i"; done >> "$TRASH/say"
helps() { grep -c "^RECV :kiln_!.* PRIVMSG #ci :commands:" "$TRASH/client.log"; }
check "the 8 answers arrive" wait_for 30 sh -c "[ \$(grep -c '^RECV :kiln_!.* PRIVMSG #ci :commands:' '$TRASH/client.log') = 9 ]"
span=$(grep "^[0-9.]* RECV :kiln_!.* PRIVMSG #ci :commands:" "$TRASH/client.log.t" | tail -n 8 |
    awk 'NR == 1 {a = $1} {b = $1} END {printf "%.2f", b - a}')
diag "8 answers took ${span}s from the first to the last"
check "the 8 answers are spread by the rate limit (>= 5 s)" \
    /usr/bin/python3 -c "import sys; sys.exit(0 if $span >= 5 else 1)"

# notify off: no announcement for build 4
echo "kiln: notify off" >> "$TRASH/say"
check "notify off answers" wait_for 60 said "PRIVMSG #ci :notify off for #ci"
force hello >/dev/null
check "build 4 completes" wait_for 60 build_done 4
echo "kiln: notify on" >> "$TRASH/say"
check "notify on answers" wait_for 60 said "PRIVMSG #ci :notify on for #ci"
check "build 4 was not announced" sh -c "! grep -q 'build #4' '$TRASH/client.log'"

# ---- ngircd dies and comes back -------------------------------------------------
kill -KILL $IRCD_PID; wait $IRCD_PID 2>/dev/null
check "the bot sees the server go" wait_for 60 grep -q "reporter 'chat': disconnected" "$M/master.log"
worst=0
for i in 1 2 3 4 5 6 7 8 9 10; do
    t=$(curl -sS -o /dev/null -w '%{time_total}' --max-time 5 "$URL/api/v2/builders") || t=9
    worst=$(/usr/bin/python3 -c "print(max($worst, $t))")
done
diag "API while ngircd is down: worst of 10 calls ${worst}s"
check "the API answers within 0.5 s while the server is down" \
    /usr/bin/python3 -c "import sys; sys.exit(0 if $worst < 0.5 else 1)"
check "the bot retries with backoff" wait_for 60 sh -c \
    "[ \$(grep -c \"reporter 'chat': reconnecting in\" '$M/master.log') -ge 2 ]"
joins=$(grep -c 'joined #ci' "$M/master.log")
t0=$(date +%s%N)
KEEP_PORT=1 check "ngircd starts again on the same port" start_ngircd
check "the bot reconnects and rejoins #ci" wait_for 40 sh -c \
    "[ \$(grep -c 'joined #ci' '$M/master.log') -gt $joins ]"
diag "rejoined $(( ($(date +%s%N) - t0) / 1000000 )) ms after ngircd was started again"
check "the watcher is back in #ci" wait_for 60 sh -c "[ \$(grep -c JOINED '$TRASH/client.log') -ge 2 ]"
echo "kiln: last hello" >> "$TRASH/say"
check "the bot answers after the restart" wait_for 30 said "PRIVMSG #ci :hello: last build #4 success"
check "the API still answers" sh -c "curl -sS --max-time 5 $URL/api/v2/builders | grep -q builderid"

stop_pid "$MASTER_PID"
check "the master stops cleanly" [ $? = 0 ]
done_testing
