#!/bin/bash
# kiln-worker frames an upload's blocks itself (src/worker/wsframe.c: masked
# binary frames, the key applied 8 bytes at a time; lws writes them raw).
# The real Buildbot 3.7 master (Twisted/Autobahn, a strict RFC 6455 peer)
# must take every header form: a frame under 126 bytes (a tiny file), under
# 64 KiB (FileUpload's default 16 KiB blocks) and over (256 KiB blocks, a
# short last block); each file arrives byte for byte.  Needs the Debian
# buildbot package; skips cleanly without it.
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

W=$TRASH/worker
SRC=$TRASH/src
mkdir -p "$SRC"
head -c 10 /dev/urandom > "$SRC/tiny.bin"
head -c 100000 /dev/urandom > "$SRC/small-blocks.bin"
head -c $((3 * 262144 + 4321)) /dev/urandom > "$SRC/big-blocks.bin"

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
c['title'] = 't0865'
c['buildbotURL'] = 'http://127.0.0.1:$WWW_PORT/'
c['buildbotNetUsageData'] = None
c['collapseRequests'] = False
c['db'] = {'db_url': 'sqlite:///state.sqlite'}
c['workers'] = [worker.Worker('kw', 'pw')]
c['protocols'] = {'msgpack_experimental_v7': {'port': $MP_PORT}}

up = util.BuildFactory()
up.addStep(steps.FileUpload(workersrc='$SRC/tiny.bin', masterdest='$TRASH/up/tiny.bin'))
up.addStep(steps.FileUpload(workersrc='$SRC/small-blocks.bin',
                            masterdest='$TRASH/up/small-blocks.bin'))
up.addStep(steps.FileUpload(workersrc='$SRC/big-blocks.bin', masterdest='$TRASH/up/big-blocks.bin',
                            blocksize=262144))

c['builders'] = [util.BuilderConfig(name='up', workernames=['kw'], factory=up)]
c['schedulers'] = [schedulers.ForceScheduler(name='force', builderNames=['up'])]
c['www'] = {'port': 'tcp:$WWW_PORT:interface=127.0.0.1', 'plugins': {}}
PY

buildbot start "$BB" >"$TRASH/start-master.log" 2>&1
if [ -f "$BB/twistd.pid" ]; then e2e_track "$(cat "$BB/twistd.pid")"; fi
check "buildbot master started" test -f "$BB/twistd.pid"
check "buildbot REST answers" wait_for 30 curl -sf "$API/builders"

echo 'pw' > "$TRASH/pw"
"$KILN_WORKER" create "$W" --master "ws://127.0.0.1:$MP_PORT" --name kw \
    --password-file "$TRASH/pw" >/dev/null
"$KILN_WORKER" start "$W" 2>"$TRASH/worker.log" &
WPID=$!
e2e_track $WPID

connected() {
    curl -sf "$API/workers" | $PY -c 'import json,sys
w=json.load(sys.stdin)["workers"]
sys.exit(0 if w and w[0]["connected_to"] else 1)'
}
check "worker attached to buildbot" wait_for 30 connected

BID=$(curl -sf "$API/builders" | $PY -c 'import json,sys
print([b["builderid"] for b in json.load(sys.stdin)["builders"] if b["name"]=="up"][0])')
check "force the upload build" curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"force\",\"params\":{\"builderid\":\"$BID\"}}" \
    "$API/forceschedulers/force"
build_field() {
    curl -sf "$API/builders/$BID/builds" | $PY -c 'import json,sys
b=json.load(sys.stdin)["builds"]
print(b[0][sys.argv[1]] if b else "")' "$1"
}
build_done() { test "$(build_field complete)" = True; }
check "upload build completes" wait_for 120 build_done
R=$(build_field results)
check "upload build is SUCCESS (0), got $R" test "$R" = 0
for f in tiny small-blocks big-blocks; do
    check "$f.bin arrived byte for byte" cmp -s "$SRC/$f.bin" "$TRASH/up/$f.bin"
done
check "worker still connected" kill -0 $WPID
check "no frame error in the master's log" \
    sh -c "! grep -qiE 'protocol violation|ProtocolError|invalid frame|dropping connection' '$BB/twistd.log'"

if [ "$E2E_FAILED" -ne 0 ]; then
    diag "--- worker log tail"; tail -30 "$TRASH/worker.log" | sed 's/^/# /'
    diag "--- twistd.log tail"; tail -30 "$BB/twistd.log" | sed 's/^/# /'
fi
done_testing
