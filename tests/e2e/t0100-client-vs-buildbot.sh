#!/bin/sh
# asan-too
# The kiln client commands against the REAL Buildbot 3.7 master (Kiln's API
# is Buildbot-shaped): force --wait, builds, logs (paged and --follow),
# workers, stop-build and the unreachable-master error.  Skipped when
# Buildbot is not installed.
#
# CLIENT_URL=http://HOST:PORT runs the same checks against a master that is
# already running (e.g. Kiln's own) instead of starting Buildbot.  It must
# have one connected worker 'w0' and builders (force scheduler 'force'):
#   ok     step 'hello': sh -c 'echo hello-from-ok; echo to-stderr 1>&2'
#          step 'second': echo second-step-output
#   bad    step 'fails': sh -c 'echo about-to-fail; exit 3'
#   many   step 'seq': seq 1 25000
#   slow   step 'tick': sh -c 'for i in 1 2 3 4 5 6; do echo tick-$i; sleep 1; done'
#          step 'after': echo after-ticks
#   sleepy step 'sleep': sleep 60
# and no builds yet (build numbers are checked).
. "$(dirname "$0")/lib.sh"

if [ ! -x "$KILN" ]; then
    echo "1..0 # SKIP $KILN not built"
    exit 0
fi
if [ -z "${CLIENT_URL:-}" ] && { ! command -v buildbot >/dev/null || ! command -v buildbot-worker >/dev/null; }; then
    echo "1..0 # SKIP buildbot/buildbot-worker not installed"
    exit 0
fi

# keep the user's own client.conf and environment out of the test
export HOME=$TRASH/home KILN_URL= KILN_TOKEN=
unset KILN_CLIENT_CONF XDG_CONFIG_HOME
mkdir -p "$HOME"

if [ -n "${CLIENT_URL:-}" ]; then
    URL=$CLIENT_URL
else
URL=http://127.0.0.1:$(free_port)
start_buildbot() {
WWW_PORT=${URL##*:}
MP_PORT=$(free_port)

# --- stand-in www plugin (Debian ships no buildbot-www; see buildbot-anchor) ---
S=$TRASH/stubwww
mkdir -p $S/bbstub_www/static $S/bbstub_www-0.0.dist-info
cat > $S/bbstub_www/__init__.py <<'PY'
from buildbot.www.plugin import Application
ep = Application(__name__, "stub base plugin (no UI)")
PY
echo "0.0" > $S/bbstub_www/VERSION
echo "<html><body>no UI</body></html>" > $S/bbstub_www/static/index.html
printf 'Metadata-Version: 2.1\nName: bbstub-www\nVersion: 0.0\n' > $S/bbstub_www-0.0.dist-info/METADATA
printf '[buildbot.www]\nbase = bbstub_www:ep\n' > $S/bbstub_www-0.0.dist-info/entry_points.txt
export PYTHONPATH=$S

# --- master ---------------------------------------------------------------
buildbot create-master -q "$TRASH/master" >/dev/null 2>&1 || { not_ok "buildbot create-master"; done_testing; return 1; }
cat > "$TRASH/master/master.cfg" <<EOF
from buildbot.plugins import schedulers, steps, util, worker
from buildbot.worker.protocols.manager import msgpack as _mp
_orig = _mp.Dispatcher.__init__
def _init(self, config_portstr, portstr):
    _orig(self, config_portstr, portstr)
    self.portstr = "tcp:%d:interface=127.0.0.1" % int(config_portstr)
_mp.Dispatcher.__init__ = _init

c = BuildmasterConfig = {}
c['title'] = 'kiln-client-e2e'
c['buildbotURL'] = '$URL/'
c['buildbotNetUsageData'] = None
c['collapseRequests'] = False
c['db'] = {'db_url': 'sqlite:///state.sqlite'}
c['workers'] = [worker.Worker('w0', 'pass', max_builds=4)]
c['protocols'] = {'msgpack_experimental_v7': {'port': $MP_PORT}}

def f(*cmds):
    fac = util.BuildFactory()
    for name, cmd in cmds:
        fac.addStep(steps.ShellCommand(name=name, command=cmd, logEnviron=False))
    return fac

c['builders'] = [
    util.BuilderConfig(name='ok', workernames=['w0'], factory=f(
        ('hello', ['sh', '-c', 'echo hello-from-ok; echo to-stderr 1>&2']),
        ('second', ['echo', 'second-step-output']))),
    util.BuilderConfig(name='bad', workernames=['w0'], factory=f(
        ('fails', ['sh', '-c', 'echo about-to-fail; exit 3']))),
    util.BuilderConfig(name='many', workernames=['w0'], factory=f(
        ('seq', ['seq', '1', '25000']))),
    util.BuilderConfig(name='slow', workernames=['w0'], factory=f(
        ('tick', ['sh', '-c', 'for i in 1 2 3 4 5 6; do echo tick-\$i; sleep 1; done']),
        ('after', ['echo', 'after-ticks']))),
    util.BuilderConfig(name='sleepy', workernames=['w0'], factory=f(
        ('sleep', ['sleep', '60']))),
]
c['schedulers'] = [schedulers.ForceScheduler(
    name='force', builderNames=['ok', 'bad', 'many', 'slow', 'sleepy'])]
c['www'] = {'port': 'tcp:$WWW_PORT:interface=127.0.0.1', 'plugins': {}}
EOF
(cd "$TRASH/master" && exec buildbot start --nodaemon . >"$TRASH/master.out" 2>&1) &
e2e_track $!
if wait_for 60 curl -sf "$URL/api/v2/builders"; then ok "buildbot master answers on $URL"
else not_ok "buildbot master answers"; cat "$TRASH/master.out" "$TRASH/master/twistd.log" 2>/dev/null | tail -30 | sed 's/^/# /'; done_testing; return 1; fi

# --- worker ---------------------------------------------------------------
buildbot-worker create-worker -q --protocol msgpack_experimental_v7 "$TRASH/w0" \
    127.0.0.1:$MP_PORT w0 pass >/dev/null 2>&1
(cd "$TRASH/w0" && exec buildbot-worker start --nodaemon . >"$TRASH/w0.out" 2>&1) &
e2e_track $!
worker_connected() {
    curl -sf "$URL/api/v2/workers" | /usr/bin/python3 -c \
        'import json, sys; sys.exit(0 if json.load(sys.stdin)["workers"][0]["connected_to"] else 1)'
}
check "worker w0 connects" wait_for 60 worker_connected

}
start_buildbot || exit 1
fi

# --- workers ----------------------------------------------------------------
"$KILN" workers --url "$URL" >"$TRASH/workers.out" 2>&1
check "workers: exit 0" test $? -eq 0
check "workers: header" grep -q '^NAME  *CONNECTED  *PAUSED  *VERSION  *HOST' "$TRASH/workers.out"
check "workers: w0 connected, not paused" grep -Eq '^w0  +yes  +no  +[0-9]' "$TRASH/workers.out"

# --- force --wait -------------------------------------------------------------
KILN_CLIENT_DEBUG=1 timeout 120 "$KILN" force ok --wait --reason "e2e ok" --url "$URL" >"$TRASH/force-ok.out" 2>"$TRASH/force-ok.err"
check "force ok --wait: exit 0" test $? -eq 0
check "force ok --wait: follows Buildbot's /ws events (startConsuming)" grep -q "^kiln: following events on $URL/ws$" "$TRASH/force-ok.err"
check "force ok --wait: the socket stayed up" sh -c "! grep -q '/ws lost' '$TRASH/force-ok.err'"
check "force ok: buildset/request line" grep -Eq '^buildset [0-9]+, request [0-9]+$' "$TRASH/force-ok.out"
check "force ok: step lines" grep -Eq '^  hello: SUCCESS' "$TRASH/force-ok.out"
check "force ok: steps in order" sh -c "grep -n ': SUCCESS (' '$TRASH/force-ok.out' | cut -d' ' -f3 | tr -d '\n' | grep -q 'worker_preparation:hello:second:'"
check "force ok: final SUCCESS line" grep -Eq '^build [0-9]+: SUCCESS$' "$TRASH/force-ok.out"
OK_BUILD=$(sed -n 's/^build \([0-9]*\): SUCCESS$/\1/p' "$TRASH/force-ok.out")
OK_BS=$(sed -n 's/^buildset \([0-9]*\), request .*/\1/p' "$TRASH/force-ok.out")
bs_reason() { curl -sS --max-time 10 "$URL/api/v2/buildsets/$1" | jpy 'd["buildsets"][0]["reason"]'; }
diag "buildset reason: $(bs_reason "$OK_BS")"
check "force ok: the reason names an owner (USER@HOST by default)" sh -c "bs_r=\$1; case \$bs_r in *\"forced by ''\"*) exit 1 ;; *\"forced by '\"*@*\"': e2e ok\") exit 0 ;; *) exit 1 ;; esac" _ "$(bs_reason "$OK_BS")"
timeout 120 "$KILN" force ok --owner "Ann <ann@example.org>" --url "$URL" >"$TRASH/force-owner.out" 2>&1
check "force --owner: exit 0" test $? -eq 0
OWNER_BS=$(sed -n 's/^buildset \([0-9]*\), request .*/\1/p' "$TRASH/force-owner.out")
check "force --owner: the reason names that owner" sh -c "case \$1 in *\"forced by 'Ann <ann@example.org>'\"*) exit 0 ;; *) exit 1 ;; esac" _ "$(bs_reason "$OWNER_BS")"

timeout 120 "$KILN" force bad --wait --url "$URL" >"$TRASH/force-bad.out" 2>&1
check "force bad --wait: exit 1" test $? -eq 1
check "force bad: failing step" grep -Eq '^  fails: FAILURE' "$TRASH/force-bad.out"
check "force bad: final FAILURE line" grep -Eq '^build [0-9]+: FAILURE$' "$TRASH/force-bad.out"
BAD_BUILD=$(sed -n 's/^build \([0-9]*\): FAILURE$/\1/p' "$TRASH/force-bad.out")

"$KILN" force nosuch --url "$URL" >"$TRASH/force-nosuch.out" 2>&1
check "force unknown builder: exit 1" test $? -eq 1
check "force unknown builder: message" grep -q "^kiln: no builder named 'nosuch'$" "$TRASH/force-nosuch.out"

# a property the force scheduler does not declare is ignored by Buildbot: still a build
"$KILN" force ok --property foo=bar --scheduler force --url "$URL" >"$TRASH/force-nowait.out" 2>&1
check "force without --wait: exit 0, request line" \
    sh -c "test $? -eq 0 && grep -Eq '^buildset [0-9]+, request [0-9]+$' '$TRASH/force-nowait.out'"

# --- builds -----------------------------------------------------------------
"$KILN" builds --url "$URL" >"$TRASH/builds.out" 2>&1
check "builds: exit 0" test $? -eq 0
check "builds: header" grep -Eq '^ID  +BUILDER  +NUMBER  +RESULT  +STARTED  +DURATION  +STATUS$' "$TRASH/builds.out"
check "builds: ok build SUCCESS" grep -Eq "^$OK_BUILD  +ok  +1  +SUCCESS  +[0-9]{4}-[0-9]{2}-[0-9]{2} " "$TRASH/builds.out"
check "builds: bad build FAILURE" grep -Eq "^$BAD_BUILD  +bad  +1  +FAILURE " "$TRASH/builds.out"
check "builds: newest first" sh -c "awk 'NR>1 {print \$1}' '$TRASH/builds.out' | sort -rn -c"
"$KILN" builds bad --limit 5 --url "$URL" >"$TRASH/builds-bad.out" 2>&1
check "builds BUILDER: only that builder" sh -c "test \$(awk 'NR>1' '$TRASH/builds-bad.out' | wc -l) -eq 1 && ! awk 'NR>1 {print \$2}' '$TRASH/builds-bad.out' | grep -qv '^bad$'"
"$KILN" builds --limit 1 --url "$URL" >"$TRASH/builds-1.out" 2>&1
check "builds --limit 1: one row" test "$(wc -l <"$TRASH/builds-1.out")" -eq 2
"$KILN" builds --limit 0 --url "$URL" >"$TRASH/builds-0.out" 2>&1
check "builds --limit 0: usage error, exit 2" test $? -eq 2

# --- logs -----------------------------------------------------------------------
"$KILN" logs "$OK_BUILD" --url "$URL" >"$TRASH/logs-ok.out" 2>&1
check "logs: exit 0" test $? -eq 0
check "logs: stdout line, stream char stripped" grep -qx 'hello-from-ok' "$TRASH/logs-ok.out"
check "logs: stderr line" grep -qx 'to-stderr' "$TRASH/logs-ok.out"
check "logs: header lines" grep -q '^program finished with exit code 0' "$TRASH/logs-ok.out"
check "logs: second step" grep -qx 'second-step-output' "$TRASH/logs-ok.out"
check "logs: step separators" grep -q '^--- hello (step 1)$' "$TRASH/logs-ok.out"
"$KILN" logs ok/1 --step second --url "$URL" >"$TRASH/logs-step.out" 2>&1
check "logs BUILDER/N --step NAME: only that step" \
    sh -c "grep -qx second-step-output '$TRASH/logs-step.out' && ! grep -q hello-from-ok '$TRASH/logs-step.out'"
"$KILN" logs "$OK_BUILD" --step 1 --url "$URL" >"$TRASH/logs-step1.out" 2>&1
check "logs --step NUMBER" sh -c "grep -qx hello-from-ok '$TRASH/logs-step1.out' && ! grep -q second-step '$TRASH/logs-step1.out'"
"$KILN" logs "$OK_BUILD" --step nosuch --url "$URL" >"$TRASH/logs-nostep.out" 2>&1
check "logs --step unknown: exit 1" test $? -eq 1
"$KILN" logs "$BAD_BUILD" --follow --url "$URL" >"$TRASH/logs-bad.out" 2>&1
check "logs --follow on a finished FAILURE build: exit 1" test $? -eq 1
check "logs: failing build output" grep -qx 'about-to-fail' "$TRASH/logs-bad.out"
"$KILN" logs 99999 --url "$URL" >"$TRASH/logs-nosuch.out" 2>&1
check "logs unknown build: exit 1, one line" \
    sh -c "test $? -eq 1 && test \$(wc -l <'$TRASH/logs-nosuch.out') -eq 1 && grep -q \"^kiln: no build '99999'\" '$TRASH/logs-nosuch.out'"

# a 25000-line log is read in pages: every line once, in order
timeout 120 "$KILN" force many --wait --url "$URL" >"$TRASH/force-many.out" 2>&1
MANY_BUILD=$(sed -n 's/^build \([0-9]*\): SUCCESS$/\1/p' "$TRASH/force-many.out")
"$KILN" logs "$MANY_BUILD" --step seq --url "$URL" >"$TRASH/logs-many.out" 2>&1
seq 1 25000 >"$TRASH/seq.txt"
check "logs: 25000-line log complete and in order (paged)" \
    sh -c "grep -E '^[0-9]+$' '$TRASH/logs-many.out' | cmp -s - '$TRASH/seq.txt'"

# --- logs --follow joining a running build, and force --timeout ---------------------
"$KILN" force slow --url "$URL" >"$TRASH/force-slow.out" 2>&1
SLOW_REQ=$(sed -n 's/^buildset [0-9]*, request \([0-9]*\)$/\1/p' "$TRASH/force-slow.out")
slow_running() { curl -sf "$URL/api/v2/builds?buildrequestid=$SLOW_REQ" | grep -q '"buildid"'; }
wait_for 30 slow_running
SLOW_BUILD=$(curl -sf "$URL/api/v2/builds?buildrequestid=$SLOW_REQ" | sed -n 's/.*"buildid": \([0-9]*\).*/\1/p' | head -1)
timeout 60 "$KILN" logs "$SLOW_BUILD" --follow --url "$URL" >"$TRASH/logs-follow.out" 2>&1
check "logs --follow: exit 0 when the build succeeds" test $? -eq 0
check "logs --follow: every tick exactly once, in order" \
    sh -c "grep '^tick-' '$TRASH/logs-follow.out' | tr '\n' ' ' | grep -qx 'tick-1 tick-2 tick-3 tick-4 tick-5 tick-6 '"
check "logs --follow: later step too" grep -qx 'after-ticks' "$TRASH/logs-follow.out"

# --- stop-build ------------------------------------------------------------------
"$KILN" force sleepy --url "$URL" >"$TRASH/force-sleepy.out" 2>&1
SLEEPY_REQ=$(sed -n 's/^buildset [0-9]*, request \([0-9]*\)$/\1/p' "$TRASH/force-sleepy.out")
sleepy_running() { curl -sf "$URL/api/v2/builds?buildrequestid=$SLEEPY_REQ" | grep -q '"buildid"'; }
wait_for 30 sleepy_running
SLEEPY_BUILD=$(curl -sf "$URL/api/v2/builds?buildrequestid=$SLEEPY_REQ" | sed -n 's/.*"buildid": \([0-9]*\).*/\1/p' | head -1)
"$KILN" force sleepy --wait --timeout 1 --url "$URL" >"$TRASH/force-timeout.out" 2>&1
check "force --wait --timeout: exit 1 when time is up" test $? -eq 1
check "force --timeout: says so" grep -q '^kiln: timed out' "$TRASH/force-timeout.out"
"$KILN" stop-build "$SLEEPY_BUILD" --reason "e2e stop" --url "$URL" >"$TRASH/stop.out" 2>&1
check "stop-build: exit 0" test $? -eq 0
check "stop-build: message" grep -qx "stopping build $SLEEPY_BUILD" "$TRASH/stop.out"
sleepy_cancelled() { "$KILN" builds sleepy --url "$URL" | grep -Eq "^$SLEEPY_BUILD +sleepy +[0-9]+ +CANCELLED"; }
check "stop-build: build ends CANCELLED" wait_for 30 sleepy_cancelled
"$KILN" stop-build "$OK_BUILD" --url "$URL" >"$TRASH/stop-done.out" 2>&1
check "stop-build on a finished build: exit 1 with reason" \
    sh -c "test $? -eq 1 && grep -q 'already complete: SUCCESS' '$TRASH/stop-done.out'"

# --- unreachable master, errors, help -------------------------------------------------
DEAD=$(free_port)
"$KILN" builds --url "http://127.0.0.1:$DEAD" >"$TRASH/dead.out" 2>&1
check "unreachable master: exit 1" test $? -eq 1
check "unreachable master: one clear line" \
    sh -c "test \$(wc -l <'$TRASH/dead.out') -eq 1 && grep -qx 'kiln: cannot reach master at http://127.0.0.1:$DEAD: Connection refused' '$TRASH/dead.out'"
KILN_URL="http://127.0.0.1:$DEAD" "$KILN" force ok --wait >"$TRASH/dead-env.out" 2>&1
check "KILN_URL is used" sh -c "test $? -eq 1 && grep -q '127.0.0.1:$DEAD' '$TRASH/dead-env.out'"
mkdir -p "$HOME/.config/kiln"
printf '# e2e\nurl = %s\n' "$URL" >"$HOME/.config/kiln/client.conf"
check "client.conf url is used" sh -c "'$KILN' workers | grep -q '^w0 '"
"$KILN" workers --bogus >"$TRASH/usage.out" 2>&1
check "unknown option: exit 2 with usage" sh -c "test $? -eq 2 && grep -q '^usage: kiln workers' '$TRASH/usage.out'"
for verb in force builds logs workers stop-build; do
    check "$verb --help" sh -c "'$KILN' $verb --help | grep -q '^usage: kiln $verb'"
done

done_testing
