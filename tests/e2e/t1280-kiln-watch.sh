#!/bin/bash
# asan-too
# `kiln watch` in a real terminal: tmux on a private socket (120x40) runs
# it against a real master and kiln-worker.  The screen shows the builders;
# a build forced from another shell turns its row running, then success; `f`
# + `y` forces the selected builder (checked over the API), `f` + `n` does
# not; `s` + `y` stops a running build; `/` filters; Enter opens the
# builder's details; a resized window is redrawn (a tiny one too) and a
# long list scrolls; --no-color has no colour codes, TERM=dumb is a clear
# error; the master going away shows "disconnected" and its return
# "connected"; `q` exits 0.  `--once` prints a plain snapshot.  Every wait
# polls capture-pane with a deadline.
. "$(dirname "$0")/lib.sh"
require_cmd tmux

M=$TRASH/master
FIFO=$TRASH/gate
mkfifo "$FIFO"
HTTP_PORT=$(free_port)
new_master "$M" <<LUA
http = { listen = "127.0.0.1:$HTTP_PORT" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "gated", workers = { "w1" }, steps = {
  shell { name = "wait-gate", command = "cat '$FIFO' >/dev/null" },
} }
builder { name = "quick", workers = { "w1" }, steps = { shell { name = "hi", command = "true" } } }
builder { name = "bad", workers = { "w1" }, steps = { shell { name = "boom", command = "false" } } }
$(for i in $(seq -w 1 40); do echo "builder { name = \"zz$i\", workers = { \"w1\" }, steps = { shell { name = \"s\", command = \"true\" } } }"; done)
LUA
printf 'e2e-secret-%s' "$$" > "$M/secrets/w1"

check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

# release: lets a waiting 'wait-gate' step finish (blocks until a step opens the fifo)
release() { timeout 30 sh -c "echo go > '$FIFO'"; }
builder_total() {
    bid=$(api "builders/$1" | jpy 'd["builders"][0]["builderid"]') &&
        api "builds?builderid=$bid" | jpy 'd["meta"]["total"]'
}

# ---- --once and argument errors (no terminal needed) ----
ONCE=$("$KILN" watch --once --url "$URL" 2>&1)
diag "once: $(echo "$ONCE" | sed -n 2,5p | tr '\n' '|')"
check "--once: a header naming the master" [ "$(echo "$ONCE" | head -n1 | cut -c1-$((13 + ${#URL})))" = "kiln watch  $URL " ]
check "--once: a table of the three builders, idle" \
    [ "$(echo "$ONCE" | awk 'NR>2 && $1 !~ /^zz/ {print $1 "=" $2}' | tr '\n' ' ')" = "bad=idle gated=idle quick=idle " ]
check "--once: and the 40 others" [ "$(echo "$ONCE" | grep -c '^zz[0-9][0-9] ')" = 40 ]
check "--once --filter" [ "$("$KILN" watch --once --filter UIC --url "$URL" | awk 'NR>2 {print $1}')" = quick ]
check "without a terminal (and without --once): a clear error, exit 1" \
    sh -c "'$KILN' watch --url '$URL' </dev/null >'$TRASH/notty.out' 2>&1; [ \$? = 1 ] && grep -q 'needs a terminal' '$TRASH/notty.out'"
check "an unknown option is a usage error (exit 2)" \
    sh -c "'$KILN' watch --bogus >/dev/null 2>&1; [ \$? = 2 ]"
check "--help describes the keys" sh -c "'$KILN' watch --help | grep -q 'f force'"
check "an unreachable master is an error, exit 1" \
    sh -c "'$KILN' watch --once --url http://127.0.0.1:1 2>&1 | grep -q 'cannot reach master'"

# ---- the live view in tmux, on a private server killed at the end ----
SOCK=kiln-test-$$
T() { tmux -L "$SOCK" "$@"; }
screen() { T capture-pane -p -t watch; }
# on_screen REGEX: the pane matches (extended regex, per line)
on_screen() { screen | grep -qE -- "$1"; }
# a failed check shows the screen as it was
not_ok() {
    E2E_N=$((E2E_N + 1)); E2E_FAILED=$((E2E_FAILED + 1)); echo "not ok $E2E_N - $*"
    screen 2>/dev/null | sed 's/^/# | /'
}
cleanup_tmux() { T kill-server 2>/dev/null; }
trap 'cleanup_tmux; e2e_cleanup' EXIT
# the pane keeps showing what watch left, and its exit status, after it exits
T -f /dev/null new-session -d -s watch -x 120 -y 40 \
    "env TERM=screen-256color LANG=C.UTF-8 '$KILN' watch --url '$URL'; echo watch-exited-\$?; exec cat"
TMUX_PID=$(T display-message -p -t watch '#{pid}')
[ -n "$TMUX_PID" ] && e2e_track "$TMUX_PID"

check "the screen shows the header, connected" wait_for 60 on_screen "kiln watch  $URL  \[connected\]"
check "... and the three builders, idle" wait_for 30 sh -c \
    "tmux -L $SOCK capture-pane -p -t watch | grep -cE '^ (bad|gated|quick) +idle' | grep -qx 3"
check "... and the keys on the status line" on_screen "j/k select .* q quit"

BR=$(force gated)
check "forced from another shell: the row turns running, with its step" \
    wait_for 30 on_screen '^ gated +running +#1 +wait-gate +running '
check "... and the header counts it" on_screen '\[connected\]  43 builders, 1 running'
check "the build ends when released" release
T0=$(date +%s%N)
check "... and the row turns success with a mark" wait_for 30 on_screen '^ gated +success +#1 .* s$'
diag "from the step's release to the row saying success: $((($(date +%s%N) - T0) / 1000000)) ms"
check "the request is complete" wait_for 30 request_done "$BR"

# 'bad' is selected (the first row): f + n does nothing, f + y forces it
T send-keys -t watch f
check "f asks for confirmation" wait_for 30 on_screen "force a build of 'bad'\? \(y/n\)"
T send-keys -t watch n
check "n: not forced" wait_for 30 on_screen "not forced"
check "... and the master has no build of 'bad'" [ "$(builder_total bad)" = 0 ]
T send-keys -t watch f
check "f asks again" wait_for 30 on_screen "force a build of 'bad'\?"
T send-keys -t watch y
check "y: the status line says it forced" wait_for 30 on_screen "forced a build of 'bad'"
total_is() { [ "$(builder_total "$1")" = "$2" ]; }
check "... the master has a build of 'bad'" wait_for 30 total_is bad 1
check "... and its row turns failure" wait_for 30 on_screen '^ bad +failure +#1 .* F$'
# colours: capture-pane -e keeps the SGR codes
check "success is green, failure red" sh -c \
    "tmux -L $SOCK capture-pane -e -p -t watch | grep -E '^.*gated.*\[32msuccess' >/dev/null &&
     tmux -L $SOCK capture-pane -e -p -t watch | grep -E '^.*bad.*\[31mfailure' >/dev/null"

# select 'gated' (j), force it from the shell, stop it with s + y
T send-keys -t watch j
check "j moves the selection: the pane shows gated's builds" wait_for 30 on_screen '^-- gated: recent builds'
BR2=$(force gated)
check "a second gated build runs" wait_for 30 on_screen '^ gated +running +#2'
check "the pane shows the running build's steps" wait_for 30 on_screen '^-- gated #2: steps'
# gated has a finished build now: the running one has an eta_at, shown as a bar
check "the row shows progress from eta_at" \
    wait_for 30 on_screen '^ gated +running +#2 +wait-gate +\[[#.]{10}\] +([0-9]+% [0-9a-z]+ left|overdue [0-9a-z.]+) '
# no busy loop: the view's CPU time while the screen only ticks its clock
# (this sleep is the measurement's window; it synchronises nothing)
WATCH_PID=$(pgrep -P "$(T display-message -p -t watch '#{pane_pid}')" kiln | head -n1)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$WATCH_PID/stat"; }
C0=$(cpu_ticks); sleep 3; C1=$(cpu_ticks)
diag "watch used $((C1 - C0)) clock ticks of CPU in 3 s with one build running"
check "... and stays idle meanwhile (under 0.3 s of CPU in 3 s)" [ $((C1 - C0)) -lt 30 ]
T send-keys -t watch s
check "s asks to stop the running build" wait_for 30 on_screen 'stop build #2 \(id [0-9]+\)\? \(y/n\)'
T send-keys -t watch y
check "y: the build is stopped (CANCELLED)" wait_for 30 request_done "$BR2"
B2=$(build_of_request "$BR2")
check "... its result is CANCELLED" build_results_is "$B2" 6
check "... and the row says cancelled" wait_for 30 on_screen '^ gated +cancelled +#2 .* Cs$'

# '/' filter
T send-keys -t watch / q u
check "/ filters by name as typed" wait_for 30 sh -c \
    "s=\$(tmux -L $SOCK capture-pane -p -t watch); echo \"\$s\" | grep -qE '^ quick ' && ! echo \"\$s\" | grep -qE '^ (bad|gated) '"
T send-keys -t watch Enter
check "Enter keeps the filter, shown on the status line" wait_for 30 on_screen 'filter: qu$'
T send-keys -t watch / Escape
check "/ then Esc clears it" wait_for 30 on_screen '^ bad '
check "the filter moved the selection to the first row it showed" on_screen '^-- quick: recent builds'
T send-keys -t watch k
check "k moves it up" wait_for 30 on_screen '^-- gated: recent builds'

# Enter: details of the selected builder; Esc: back
T send-keys -t watch Enter
check "Enter opens the builder's details" wait_for 30 sh -c \
    "s=\$(tmux -L $SOCK capture-pane -p -t watch); echo \"\$s\" | grep -qE '^-- gated: recent builds' && ! echo \"\$s\" | grep -qE '^ BUILDER'"
check "... listing its builds, newest first" sh -c \
    "tmux -L $SOCK capture-pane -p -t watch | grep -E '^  #[0-9]+ ' | awk '{print \$1 \$2}' | tr '\n' ' ' | grep -qx '#2cancelled #1success '"
T send-keys -t watch Escape
check "Esc goes back to the list" wait_for 30 on_screen '^ BUILDER +LAST'

# resize: the header's clock moves to the new right edge, the status line to the new bottom
T resize-window -t watch -x 80 -y 20
check "after a resize the screen is redrawn at 80x20" wait_for 30 sh -c \
    "tmux -L $SOCK capture-pane -p -t watch | awk 'NR==1 && length(\$0)==79 && /[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\$/ {h=1} NR==20 && /q quit/ {s=1} END {exit !(h && s)}'"
T resize-window -t watch -x 16 -y 3
check "a 16x3 window still gets a (clipped) header" wait_for 30 sh -c \
    "tmux -L $SOCK capture-pane -p -t watch | head -n1 | grep -qx ' kiln watch  htt'"
T send-keys -t watch j k Enter Escape
T resize-window -t watch -x 120 -y 40
check "... and again at 120x40" wait_for 30 sh -c \
    "tmux -L $SOCK capture-pane -p -t watch | awk 'NR==1 && length(\$0)==119 {h=1} NR==40 && /q quit/ {s=1} END {exit !(h && s)}'"
check "... showing every builder again (the list scrolled in the tiny window)" wait_for 30 sh -c \
    "tmux -L $SOCK capture-pane -p -t watch | grep -cE '^ (bad|gated|quick) ' | grep -qx 3"

# 43 builders, 24 list rows: the list scrolls with the selection
T send-keys -t watch G
check "G selects the last builder, scrolled into view" wait_for 30 sh -c \
    "s=\$(tmux -L $SOCK capture-pane -p -t watch); echo \"\$s\" | grep -qE '^-- zz40: recent builds' && echo \"\$s\" | grep -qE '^ zz40 ' && ! echo \"\$s\" | grep -qE '^ bad '"
T send-keys -t watch g
check "g goes back to the first" wait_for 30 sh -c \
    "s=\$(tmux -L $SOCK capture-pane -p -t watch); echo \"\$s\" | grep -qE '^-- bad: recent builds' && echo \"\$s\" | grep -qE '^ bad ' && ! echo \"\$s\" | grep -qE '^ zz40 '"

# the master goes away and comes back on the same port
check "master stops" stop_pid "$MASTER_PID"
check "the header says disconnected" wait_for 60 on_screen '\[disconnected'
check "master restarts" start_master "$M"
check "the view reconnects" wait_for 40 on_screen "kiln watch  $URL  \[connected\]"
check "... with the builds read again" wait_for 30 on_screen '^ bad +failure +#1'

# --no-color, in a second window: the same screen without colour codes
T new-window -t watch -n plain "env TERM=screen-256color '$KILN' watch --no-color --url '$URL'; exec cat"
plain_ok() {
    T capture-pane -p -t watch:plain | grep -qE '^ bad +failure +#1' &&
        ! T capture-pane -e -p -t watch:plain | grep -qE $'\e\\[(3[0-7]|38;5;[0-9]+)m'
}
check "--no-color: the builders without a colour code" wait_for 60 plain_ok
T kill-window -t watch:plain
# a terminal curses cannot drive: an error naming it, exit 1, the terminal left alone
T new-window -t watch -n dumb "env TERM=dumb '$KILN' watch --url '$URL'; echo dumb-exited-\$?; exec cat"
check "TERM=dumb: a clear error and exit 1" wait_for 60 sh -c \
    "tmux -L $SOCK capture-pane -p -t watch:dumb | grep -q \"cannot drive terminal 'dumb'\" &&
     tmux -L $SOCK capture-pane -p -t watch:dumb | grep -qx 'dumb-exited-1'"
T kill-window -t watch:dumb

T send-keys -t watch q
check "q exits with status 0" wait_for 30 on_screen '^watch-exited-0$'

# --once with history: results and recent marks
ONCE=$("$KILN" watch --once --url "$URL")
diag "once: $(echo "$ONCE" | sed -n 3,5p | tr '\n' '|')"
check "--once shows each builder's last result and marks" \
    [ "$(echo "$ONCE" | awk 'NR>2 && $1 !~ /^zz/ {print $1 "=" $2 "=" $3 "=" $NF}' | tr '\n' ' ')" = "bad=failure=#1=F gated=cancelled=#2=Cs quick=idle=-=- " ]

T kill-server
check "master stops cleanly" stop_pid "$MASTER_PID"
check "no errors or sanitizer reports in the log" sh -c "! grep -qE 'Z error |Sanitizer|runtime error' '$M/master.log'"
done_testing
