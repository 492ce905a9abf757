#!/bin/bash
# kiln-worker against the real Buildbot 3.7 master (msgpack_experimental_v7):
# one build that succeeds and prints known text, one that fails; checks the
# results and the step logs through Buildbot's REST API.  Needs the Debian
# buildbot package (scripts/install-deps); skips cleanly without it.
. "$(dirname "$0")/lib.sh"

if ! command -v buildbot >/dev/null 2>&1; then
    echo "1..0 # SKIP buildbot is not installed"
    exit 0
fi
PY=/usr/bin/python3

MP_PORT=$(free_port)
WWW_PORT=$(free_port)
API=http://127.0.0.1:$WWW_PORT/api/v2

# the stand-in www plugin (Debian has no buildbot-www; see buildbot-anchor/README.md)
STUB=$TRASH/stubwww
mkdir -p "$STUB/bbstub_www/static" "$STUB/bbstub_www-0.0.dist-info"
cat > "$STUB/bbstub_www/__init__.py" <<'PY'
from buildbot.www.plugin import Application
ep = Application(__name__, "stub base plugin (no UI)")
PY
echo "0.0" > "$STUB/bbstub_www/VERSION"
echo "<html><body>stub</body></html>" > "$STUB/bbstub_www/static/index.html"
printf 'Metadata-Version: 2.1\nName: bbstub-www\nVersion: 0.0\n' > "$STUB/bbstub_www-0.0.dist-info/METADATA"
printf '[buildbot.www]\nbase = bbstub_www:ep\n' > "$STUB/bbstub_www-0.0.dist-info/entry_points.txt"
export PYTHONPATH=$STUB

BB=$TRASH/master
buildbot create-master -q "$BB" >"$TRASH/create-master.log" 2>&1
check "buildbot create-master" test -f "$BB/buildbot.tac"
cat > "$BB/master.cfg" <<PY
# -*- python -*-
from buildbot.plugins import schedulers, steps, util, worker
from buildbot.worker.protocols.manager import msgpack as _mpmgr

# the msgpack port must be a bare int (binds 0.0.0.0); rebind it to loopback
_orig_init = _mpmgr.Dispatcher.__init__
def _init(self, config_portstr, portstr):
    _orig_init(self, config_portstr, portstr)
    self.portstr = f"tcp:{int(config_portstr)}:interface=127.0.0.1"
_mpmgr.Dispatcher.__init__ = _init

c = BuildmasterConfig = {}
c['title'] = 't0900'
c['buildbotURL'] = 'http://127.0.0.1:$WWW_PORT/'
c['buildbotNetUsageData'] = None
c['collapseRequests'] = False
c['db'] = {'db_url': 'sqlite:///state.sqlite'}
c['workers'] = [worker.Worker('kw', 'sekrit:pw')]
c['protocols'] = {'msgpack_experimental_v7': {'port': $MP_PORT}}

ok = util.BuildFactory()
ok.addStep(steps.ShellCommand(name='hello', logEnviron=False,
    command=['sh', '-c', 'echo kiln-says-hello; echo "to stderr" 1>&2; printf "no newline"'],
    env={'KILN_T': 'v-\${HOME}', 'LISTY': ['a', 'b']}))
ok.addStep(steps.ShellCommand(name='env', logEnviron=False,
    command='echo "KILN_T=\$KILN_T LISTY=\$LISTY"', env={'KILN_T': 'set', 'LISTY': ['a', 'b']}))
ok.addStep(steps.StringDownload('downloaded-text\n', workerdest='dl/s.txt'))
ok.addStep(steps.ShellCommand(name='cat', logEnviron=False, command=['cat', 'dl/s.txt']))
ok.addStep(steps.FileUpload(workersrc='dl/s.txt', masterdest='$TRASH/uploaded.txt'))
ok.addStep(steps.MakeDirectory(dir='build/made'))
ok.addStep(steps.RemoveDirectory(dir='build/made'))

sleepy = util.BuildFactory()
sleepy.addStep(steps.ShellCommand(name='sleep', logEnviron=False,
    command=['sh', '-c', 'echo sleeping; sleep 60']))

big = util.BuildFactory()
big.addStep(steps.ShellCommand(name='big', logEnviron=False,
    command="head -c 8000000 /dev/zero | tr '\\\\0' x | fold -w 100"))

fail = util.BuildFactory()
fail.addStep(steps.ShellCommand(name='fails', logEnviron=False,
    command=['sh', '-c', 'echo about-to-fail; exit 3']))

c['builders'] = [
    util.BuilderConfig(name='ok', workernames=['kw'], factory=ok),
    util.BuilderConfig(name='fail', workernames=['kw'], factory=fail),
    util.BuilderConfig(name='sleepy', workernames=['kw'], factory=sleepy),
    util.BuilderConfig(name='big', workernames=['kw'], factory=big),
]
c['schedulers'] = [schedulers.ForceScheduler(name='force',
                                             builderNames=['ok', 'fail', 'sleepy', 'big'])]
c['www'] = {'port': 'tcp:$WWW_PORT:interface=127.0.0.1', 'plugins': {}}
PY

buildbot start "$BB" >"$TRASH/start-master.log" 2>&1
if [ -f "$BB/twistd.pid" ]; then e2e_track "$(cat "$BB/twistd.pid")"; fi
check "buildbot master started" test -f "$BB/twistd.pid"
check "buildbot REST answers" wait_for 30 curl -sf "$API/builders"

W=$TRASH/worker
quiet() { "$@" >/dev/null; }
echo 'sekrit:pw' > "$TRASH/pw"
check "kiln-worker create" quiet "$KILN_WORKER" create "$W" --master "ws://127.0.0.1:$MP_PORT" \
    --name kw --password-file "$TRASH/pw"
check "worker.conf is private" test "$(stat -c %a "$W/worker.conf")" = 600
KILN_LOG=debug "$KILN_WORKER" start "$W" 2>"$TRASH/worker.log" &
WPID=$!
e2e_track $WPID

connected() {
    curl -sf "$API/workers" | $PY -c 'import json,sys
w=json.load(sys.stdin)["workers"]
sys.exit(0 if w and w[0]["connected_to"] else 1)'
}
check "worker attached to buildbot" wait_for 30 connected

builder_id() {
    curl -sf "$API/builders" | $PY -c 'import json,sys
print([b["builderid"] for b in json.load(sys.stdin)["builders"] if b["name"]==sys.argv[1]][0])' "$1"
}
force() {
    curl -sf -X POST -H 'Content-Type: application/json' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$1\"}}" \
        "$API/forceschedulers/force" >/dev/null
}
OK_ID=$(builder_id ok)
FAIL_ID=$(builder_id fail)
check "force build on 'ok'" force "$OK_ID"
check "force build on 'fail'" force "$FAIL_ID"

build_done() {
    curl -sf "$API/builders/$1/builds" | $PY -c 'import json,sys
b=json.load(sys.stdin)["builds"]
sys.exit(0 if b and b[0]["complete"] else 1)'
}
build_field() {
    curl -sf "$API/builders/$1/builds" | $PY -c 'import json,sys
print(json.load(sys.stdin)["builds"][0][sys.argv[1]])' "$2"
}
step_log() { # BUILDERID STEPNAME
    bid=$(build_field "$1" buildid)
    curl -sf "$API/builds/$bid/steps/$2/logs/stdio/contents" | $PY -c 'import json,sys
print("".join(c["content"] for c in json.load(sys.stdin)["logchunks"]))'
}

check "build 'ok' completes" wait_for 60 build_done "$OK_ID"
check "build 'fail' completes" wait_for 60 build_done "$FAIL_ID"
R=$(build_field "$OK_ID" results)
check "build 'ok' result is SUCCESS (0), got $R" test "$R" = 0
R=$(build_field "$FAIL_ID" results)
check "build 'fail' result is FAILURE (2), got $R" test "$R" = 2

L=$(step_log "$OK_ID" hello)
check "stdout line in the log" grep -q '^okiln-says-hello$' <<<"$L"
check "stderr line in the log" grep -q '^eto stderr$' <<<"$L"
check "partial last line flushed" grep -q '^ono newline$' <<<"$L"
check "header with argv" grep -q '^h argv: ' <<<"$L"
check "exit code 0 reported" grep -q 'program finished with exit code 0' <<<"$L"
L=$(step_log "$OK_ID" env)
check "env set, list joined with ':'" grep -q '^oKILN_T=set LISTY=a:b$' <<<"$L"
# Buildbot 3.7's master answers update_read_file with nil (PROTOCOL.md §3.9), so the
# download is an empty file; a Kiln master sends the bytes
check "StringDownload created the file (empty: the 3.7 master sends no data)" \
    test -f "$W/ok/build/dl/s.txt" -a ! -s "$W/ok/build/dl/s.txt"
check "FileUpload delivered the file" test -f "$TRASH/uploaded.txt"
L=$(step_log "$FAIL_ID" fails)
check "failing step output" grep -q '^oabout-to-fail$' <<<"$L"
check "exit code 3 reported" grep -q 'program finished with exit code 3' <<<"$L"
check "worker still running" kill -0 $WPID

# 8 MB of output: many updates, each within buffer_size
BIG_ID=$(builder_id big)
check "force build on 'big'" force "$BIG_ID"
check "build 'big' completes" wait_for 120 build_done "$BIG_ID"
R=$(build_field "$BIG_ID" results)
check "build 'big' result is SUCCESS (0), got $R" test "$R" = 0
NL=$(step_log "$BIG_ID" big | grep -c '^ox\{100\}$')
check "all 80000 lines of 'big' arrived, got $NL" test "$NL" = 80000

# interrupt: stop a running build; the worker must answer with rc and complete
SLEEPY_ID=$(builder_id sleepy)
check "force build on 'sleepy'" force "$SLEEPY_ID"
sleeping() { step_log "$SLEEPY_ID" sleep | grep -q '^osleeping$'; }
check "sleepy build is running (output within the flush time)" wait_for 30 sleeping
SBID=$(build_field "$SLEEPY_ID" buildid)
check "stop the build" curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"stop","params":{"reason":"t0900"}}' "$API/builds/$SBID"
check "stopped build completes" wait_for 30 build_done "$SLEEPY_ID"
R=$(build_field "$SLEEPY_ID" results)
check "stopped build is CANCELLED (6), got $R" test "$R" = 6
L=$(step_log "$SLEEPY_ID" sleep)
check "interrupt reported in the log" grep -q 'command interrupted' <<<"$L"

# a wrong password is reported clearly and retried, not fatal
W2=$TRASH/worker2
"$KILN_WORKER" create "$W2" --master "127.0.0.1:$MP_PORT" --name kw --password wrong >/dev/null
"$KILN_WORKER" start "$W2" 2>"$TRASH/worker2.log" &
W2PID=$!
e2e_track $W2PID
check "401 logged for a wrong password" wait_for 60 grep -q 'HTTP 401' "$TRASH/worker2.log"
check "worker with a wrong password keeps retrying" kill -0 $W2PID
kill -TERM $W2PID
check "SIGTERM stops kiln-worker" wait_for 30 sh -c "! kill -0 $W2PID"

# master-initiated shutdown (REST 'kill' on the worker)
WID=$(curl -sf "$API/workers" | $PY -c 'import json,sys; print(json.load(sys.stdin)["workers"][0]["workerid"])')
check "kill the worker through REST" curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"kill","params":{}}' "$API/workers/$WID"
check "kiln-worker exits after 'shutdown'" wait_for 60 sh -c "! kill -0 $WPID"

if [ "$E2E_FAILED" -ne 0 ]; then
    diag "--- worker log tail"; tail -30 "$TRASH/worker.log" | sed 's/^/# /'
    diag "--- twistd.log tail"; tail -30 "$BB/twistd.log" | sed 's/^/# /'
fi
done_testing
