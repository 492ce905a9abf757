#!/usr/bin/python3
"""Kiln benchmark driver: runs each scenario on Kiln and on Buildbot 3.7, alternating,
drives both the same way from outside (HTTP force + polling the REST API), stores the
samples in bench/results/<scenario>.json and regenerates docs/PERFORMANCE.md from all
stored results.  Started by bench/run (which installs dependencies and builds first);
see bench/README.md.  Python stdlib only."""

import argparse
import base64
import datetime
import http.client
import json
import os
import re
import platform
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(SRC, 'bench')
RESULTS = os.path.join(BENCH, 'results')
HZ = os.sysconf('SC_CLK_TCK')
PY = '/usr/bin/python3'
TWISTD = shutil.which('twistd3') or '/usr/bin/twistd3'
LOG50M_CMD = "head -c 50000000 /dev/zero | tr '\\0' 'x' | fold -w 100"

ARGS = None          # parsed command line
TMP = None           # throwaway root for this run
TOOLS = None         # dir with the bench's C tools (spawn, loadgen)
KILN = None          # build dir with kiln and kiln-worker


def now():
    return time.perf_counter()


def log(*a):
    print('[bench %s]' % time.strftime('%H:%M:%S'), *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

def proc_cpu(pid):
    """utime+stime of a process in seconds (from /proc/PID/stat)."""
    with open('/proc/%d/stat' % pid) as f:
        rest = f.read().rsplit(')', 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / HZ


def proc_rss_kb(pid, field='VmRSS:'):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def stop_proc(p, timeout=20):
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_until(what, fn, timeout, interval=0.002, load_share=None):
    """Calls fn until it returns true.  With load_share (e.g. 0.2) the pause after each call
    is at least (1/load_share - 1) times that call's duration, so that polling a slow
    server keeps it busy for at most that share of the time."""
    end = now() + timeout
    while True:
        t = now()
        r = fn()
        if r:
            return r
        d = now() - t
        if now() > end:
            raise TimeoutError('timed out after %gs waiting for %s' % (timeout, what))
        time.sleep(max(interval, d * (1 / load_share - 1)) if load_share else interval)


def db_logical_bytes(path):
    """Bytes in use in an SQLite file (pages minus free pages), WAL content included."""
    c = sqlite3.connect('file:%s?mode=ro' % path, uri=True, timeout=30)
    try:
        pc = c.execute('PRAGMA page_count').fetchone()[0]
        fl = c.execute('PRAGMA freelist_count').fetchone()[0]
        ps = c.execute('PRAGMA page_size').fetchone()[0]
        return (pc - fl) * ps
    finally:
        c.close()


# ---------------------------------------------------------------- HTTP client

class Api:
    """One keep-alive HTTP/1.1 connection to a master's REST API."""

    def __init__(self, url):
        host, port = url.split('//', 1)[1].split(':')
        self.host, self.port = host, int(port)
        self.c = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(3):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection(self.host, self.port, timeout=120)
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                if self.c is not None:
                    self.c.close()
                self.c = None
                if attempt == 2:
                    raise
                time.sleep(0.05)

    def get(self, path):
        st, data = self.request('GET', '/api/v2/' + path, headers={'Accept': 'application/json'})
        if st != 200:
            raise RuntimeError('GET %s: %d %s' % (path, st, data[:200]))
        return json.loads(data)

    def get_raw(self, path):
        st, data = self.request('GET', '/api/v2/' + path)
        if st != 200:
            raise RuntimeError('GET %s: %d' % (path, st))
        return data

    def force(self, names):
        body = json.dumps({'jsonrpc': '2.0', 'id': 1, 'method': 'force',
                           'params': {'builderNames': names, 'reason': 'bench'}})
        st, data = self.request('POST', '/api/v2/forceschedulers/force', body,
                                {'Content-Type': 'application/json'})
        d = json.loads(data)
        if st != 200 or 'result' not in d:
            raise RuntimeError('force: %d %s' % (st, data[:300]))
        return list(d['result'][1].values())

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None


def api_answers(url):
    try:
        c = http.client.HTTPConnection(url.split('//')[1].split(':')[0],
                                       int(url.rsplit(':', 1)[1]), timeout=5)
        c.request('GET', '/api/v2')
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


class WsEvents:
    """A minimal RFC 6455 client (standard library only) for a master's /ws event stream,
    the same on Kiln and Buildbot: subscribes to PATHS with Buildbot's `startConsuming`
    and timestamps every event in a reader thread as it arrives, so an event's time is
    when the master sent it (plus loopback), not when the driver got round to reading."""

    def __init__(self, url, paths, timeout=30):
        host, port = url.split('//', 1)[1].split(':')
        self.s = socket.create_connection((host, int(port)), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(('GET /ws HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n'
                        'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
                        'Sec-WebSocket-Version: 13\r\n\r\n' % (host, port, key)).encode())
        buf = b''
        while b'\r\n\r\n' not in buf:
            d = self.s.recv(4096)
            if not d:
                raise RuntimeError('/ws: connection closed during the handshake')
            buf += d
        head, self.rest = buf.split(b'\r\n\r\n', 1)
        if b' 101' not in head.split(b'\r\n', 1)[0]:
            raise RuntimeError('/ws: no upgrade: %r' % head[:200])
        self.events = []       # (perf_counter time, key, message)
        self.replies = {}
        self.cv = threading.Condition()
        self.wlock = threading.Lock()
        self.closed = False
        self.s.settimeout(None)
        self.th = threading.Thread(target=self._reader, daemon=True)
        self.th.start()
        for i, p in enumerate(paths, 1):
            self._send(json.dumps({'cmd': 'startConsuming', 'path': p, '_id': i}).encode())
        with self.cv:
            if not self.cv.wait_for(lambda: len(self.replies) >= len(paths) or self.closed,
                                    timeout):
                raise RuntimeError('/ws: no answer to startConsuming')
        bad = [r for r in self.replies.values() if r.get('code') != 200]
        if bad or self.closed:
            raise RuntimeError('/ws: startConsuming refused: %r' % bad)

    def _send(self, payload, op=1):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            hdr = bytes([0x80 | op, 0x80 | n])
        elif n < 65536:
            hdr = bytes([0x80 | op, 0x80 | 126]) + n.to_bytes(2, 'big')
        else:
            hdr = bytes([0x80 | op, 0x80 | 127]) + n.to_bytes(8, 'big')
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        with self.wlock:
            self.s.sendall(hdr + mask + body)

    def _exact(self, n):
        while len(self.rest) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.rest += d
        out, self.rest = self.rest[:n], self.rest[n:]
        return out

    def _reader(self):
        msg = b''
        try:
            while True:
                b0, b1 = self._exact(2)
                n = b1 & 0x7f
                if n == 126:
                    n = int.from_bytes(self._exact(2), 'big')
                elif n == 127:
                    n = int.from_bytes(self._exact(8), 'big')
                mask = self._exact(4) if b1 & 0x80 else None
                data = self._exact(n)
                if mask:
                    data = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
                op = b0 & 0x0f
                if op == 9:
                    self._send(data, 0x0a)
                    continue
                if op == 8:
                    break
                if op not in (0, 1, 2):
                    continue
                msg += data
                if not b0 & 0x80:
                    continue
                t = now()
                d = json.loads(msg)
                msg = b''
                with self.cv:
                    if 'k' in d:
                        self.events.append((t, d['k'], d.get('m') or {}))
                    elif '_id' in d:
                        self.replies[d['_id']] = d
                    self.cv.notify_all()
        except (EOFError, OSError, ValueError):
            pass
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def wait(self, pred, timeout):
        """The first event (t, key, message) with pred(key, message), waiting up to
        TIMEOUT seconds."""
        def find():
            for e in self.events:
                if pred(e[1], e[2]):
                    return e
            return None
        with self.cv:
            e = self.cv.wait_for(lambda: find() or self.closed, timeout)
            e = find()
        if e is None:
            raise RuntimeError('/ws: no matching event in %gs' % timeout)
        return e

    def forget(self):
        with self.cv:
            self.events = []

    def close(self):
        try:
            self._send(b'\x03\xe8', 8)
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.th.join(5)
        self.s.close()


def ev_build(kind, brid):
    """A predicate for WsEvents.wait: the builds/N/KIND event of request BRID."""
    return lambda k, m: k.endswith('/' + kind) and k.startswith('builds/') and \
        m.get('buildrequestid') == brid


# ---------------------------------------------------------------- the two systems

class Kiln:
    name = 'kiln'

    def __init__(self, tag, nworkers=1, maxbuilds=10, builders_for_workers=True, changes=None,
                 extra=None):
        self.dir = tempfile.mkdtemp(prefix='kiln-%s-' % tag, dir=TMP)
        self.mdir = os.path.join(self.dir, 'master')
        os.makedirs(os.path.join(self.mdir, 'secrets'))
        with open(os.path.join(self.mdir, 'secrets', 'pw'), 'w') as f:
            f.write('pass')
        lua = ['http = { listen = "127.0.0.1:0" }', 'workers_listen = "127.0.0.1:0"',
               'local ws = {}',
               'for i = 0, %d do ws[#ws + 1] = worker { name = "w" .. i, password = secret("pw"), '
               'max_builds = %d } end' % (nworkers - 1, maxbuilds),
               'for i = 0, 9 do builder { name = "b" .. i, workers = ws, steps = {',
               '  shell { name = "true", command = { "true" } } } } end',
               'builder { name = "log50m", workers = ws, steps = {',
               '  shell { name = "log50m", command = %s } } }' % json.dumps(LOG50M_CMD)]
        if changes:            # 'hook': change hook only; 'sb': also the single-branch scheduler
            lua.append('change_hook = {}')
        if changes == 'sb':
            lua.append('single_branch { name = "sb", builders = { "b0" }, '
                       'change_filter = { branch = "main" } }')
        extra = extra or {}
        if 'steps20' in extra:
            lua += STEPS20_LUA
        if 'upload' in extra:
            lua.append('builder { name = "upload1g", workers = ws, steps = {')
            lua.append('  file_upload { workersrc = %s, masterdest = "big.bin" } } }'
                       % json.dumps(extra['upload']))
        if 'junit' in extra:       # the same copy, as a plain shell step and as a test step
            cp = '{ "cp", %s, "junit.xml" }' % json.dumps(extra['junit'])
            lua.append('builder { name = "junitcp", workers = ws, steps = {')
            lua.append('  shell { name = "junit", command = %s } } }' % cp)
            lua.append('builder { name = "junit100k", workers = ws, steps = {')
            lua.append('  test { name = "junit", command = %s, reports = { "junit.xml" }, '
                       'report_format = "junit" } } }' % cp)
        with open(os.path.join(self.mdir, 'master.lua'), 'w') as f:
            f.write('\n'.join(lua) + '\n')
        self.db = os.path.join(self.mdir, 'state.sqlite')
        self.proc = None
        self.workers = []
        self.url = None
        self.env = None        # extra environment for the master (e.g. KILN_LOOP_STATS)

    def start(self, wrapper=None):
        """Starts the master; returns (start→ports file, start→API answers) in seconds."""
        ports = os.path.join(self.mdir, 'ports')
        if os.path.exists(ports):
            os.unlink(ports)
        cmd = (wrapper or []) + [os.path.join(KILN, 'kiln'), 'master', '-d', self.mdir]
        errf = open(os.path.join(self.mdir, 'master.log'), 'ab')
        t0 = now()
        self.proc = subprocess.Popen(cmd, stdout=errf, stderr=errf, preexec_fn=raise_nofile,
                                     env=dict(os.environ, **self.env) if self.env else None)
        while not (os.path.exists(ports) and os.path.getsize(ports) > 0):
            if self.proc.poll() is not None:
                raise RuntimeError('kiln master exited; see %s/master.log' % self.mdir)
            if now() - t0 > (300 if wrapper else 30):
                raise RuntimeError('kiln master: no ports file')
            time.sleep(0.0005)
        t_ports = now() - t0
        addrs = dict(line.split() for line in open(ports) if line.strip())
        self.url = 'http://' + addrs['http']
        self.waddr = addrs['workers']
        while not api_answers(self.url):
            time.sleep(0.0005)
        t_api = now() - t0
        self.api = Api(self.url)
        return t_ports, t_api

    @property
    def pid(self):
        return self.proc.pid

    def start_worker(self, i):
        wd = os.path.join(self.dir, 'w%d' % i)
        if not os.path.exists(os.path.join(wd, 'worker.conf')):
            subprocess.run([os.path.join(KILN, 'src/worker/kiln-worker'), 'create', wd,
                            '--master', self.waddr, '--name', 'w%d' % i, '--password', 'pass'],
                           check=True, stdout=subprocess.DEVNULL)
        errf = open(wd + '.log', 'ab')
        p = subprocess.Popen([os.path.join(KILN, 'src/worker/kiln-worker'), 'start', wd],
                             stdout=errf, stderr=errf)
        self.workers.append(p)
        return p

    def worker_pids(self):
        return [p.pid for p in self.workers]

    def connected(self):
        d = self.api.get('workers?field=name&field=connected_to')
        return sum(1 for w in d['workers'] if w['connected_to'])

    def stop_workers(self):
        for p in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.workers:
            stop_proc(p)
        self.workers = []

    def stop(self):
        self.stop_workers()
        if self.url:
            self.api.close()
        stop_proc(self.proc, 60)
        self.proc = None


# `steps20`: p1 is one shell step, p20 twenty steps using properties and interpolate();
# bench/buildbot-master.cfg (BB_STEPS20) declares the same two builders with Interpolate.
STEPS20_ECHO = 'interpolate("echo %(prop:buildnumber)s %(prop:branch:-none)s")'
STEPS20_LUA = [
    'builder { name = "p1", workers = ws, steps = {',
    '  shell { name = "echo", command = %s } } }' % STEPS20_ECHO,
    'local p20 = { set_property { property = "stage", '
    'value = interpolate("s-%(prop:buildnumber)s") } }',
    'for i = 0, 17 do p20[#p20 + 1] = shell { name = "echo" .. i, command = interpolate('
    '"echo %(prop:buildnumber)s %(prop:branch:-none)s %(prop:stage)s") } end',
    'p20[#p20 + 1] = shell { name = "env", command = "echo $BN $STAGE", env = {',
    '  BN = interpolate("%(prop:buildnumber)s"), STAGE = interpolate("%(prop:stage:-none)s") } }',
    'builder { name = "p20", workers = ws, steps = p20 }']

BB_TEMPLATE = None


def bb_template():
    """A relocatable Buildbot master (created once per run) and the stub www plugin."""
    global BB_TEMPLATE
    if BB_TEMPLATE:
        return BB_TEMPLATE
    root = os.path.join(TMP, 'bb-template')
    stub = os.path.join(root, 'stubwww')
    os.makedirs(os.path.join(stub, 'bbstub_www', 'static'))
    os.makedirs(os.path.join(stub, 'bbstub_www-0.0.dist-info'))
    with open(os.path.join(stub, 'bbstub_www', '__init__.py'), 'w') as f:
        f.write('# stand-in for the unpackaged buildbot-www plugin: lets /api/v2 start\n'
                'from buildbot.www.plugin import Application\n'
                'ep = Application(__name__, "stub base plugin (no UI)")\n')
    with open(os.path.join(stub, 'bbstub_www', 'VERSION'), 'w') as f:
        f.write('0.0\n')
    with open(os.path.join(stub, 'bbstub_www', 'static', 'index.html'), 'w') as f:
        f.write('<html><body>no UI (stub)</body></html>\n')
    with open(os.path.join(stub, 'bbstub_www-0.0.dist-info', 'METADATA'), 'w') as f:
        f.write('Metadata-Version: 2.1\nName: bbstub-www\nVersion: 0.0\n')
    with open(os.path.join(stub, 'bbstub_www-0.0.dist-info', 'entry_points.txt'), 'w') as f:
        f.write('[buildbot.www]\nbase = bbstub_www:ep\n')
    subprocess.run(['buildbot', 'create-master', '-q', '-r', os.path.join(root, 'master')],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(['buildbot-worker', 'create-worker', '-q', '-r', '--protocol',
                    'msgpack_experimental_v7', os.path.join(root, 'worker'),
                    '127.0.0.1:1', 'WORKERNAME', 'pass'], check=True, stdout=subprocess.DEVNULL)
    BB_TEMPLATE = root
    return root


class Buildbot:
    name = 'buildbot'

    def __init__(self, tag, nworkers=1, maxbuilds=10, changes=None, extra=None):
        root = bb_template()
        self.stub = os.path.join(root, 'stubwww')
        self.dir = tempfile.mkdtemp(prefix='bb-%s-' % tag, dir=TMP)
        self.mdir = os.path.join(self.dir, 'master')
        shutil.copytree(os.path.join(root, 'master'), self.mdir)
        shutil.copy(os.path.join(BENCH, 'buildbot-master.cfg'),
                    os.path.join(self.mdir, 'master.cfg'))
        self.www_port, self.mp_port, self.pb_port = free_port(), free_port(), free_port()
        self.env = dict(os.environ, PYTHONPATH=self.stub, BB_PROTO='msgpack',
                        BB_NWORKERS=str(nworkers), BB_MAXBUILDS=str(maxbuilds),
                        BB_WWW_PORT=str(self.www_port), BB_MP_PORT=str(self.mp_port),
                        BB_PB_PORT=str(self.pb_port), BB_NBUILDERS='10',
                        BB_CHANGE_HOOK='1' if changes else '0',
                        BB_SB='1' if changes == 'sb' else '0',
                        BB_STEPS20='1' if 'steps20' in (extra or {}) else '0',
                        BB_UPLOAD_SRC=(extra or {}).get('upload', ''))
        self.db = os.path.join(self.mdir, 'state.sqlite')
        self.url = 'http://127.0.0.1:%d' % self.www_port
        self.proc = None
        self.workers = []

    def start(self, wrapper=None):
        out = open(os.path.join(self.mdir, 'stdout.log'), 'ab')
        t0 = now()
        self.proc = subprocess.Popen((wrapper or []) + [TWISTD, '--nodaemon', '--no_save',
                                                        '--pidfile=', '-y', 'buildbot.tac'],
                                     cwd=self.mdir, env=self.env, stdout=out, stderr=out,
                                     preexec_fn=raise_nofile)
        while not api_answers(self.url):
            if self.proc.poll() is not None:
                raise RuntimeError('buildbot master exited; see %s/twistd.log' % self.mdir)
            if now() - t0 > 120:
                raise RuntimeError('buildbot master did not answer')
            time.sleep(0.002)
        t_api = now() - t0
        self.api = Api(self.url)
        return None, t_api

    @property
    def pid(self):
        return self.proc.pid

    def start_worker(self, i):
        wd = os.path.join(self.dir, 'w%d' % i)
        if not os.path.exists(wd):
            shutil.copytree(os.path.join(BB_TEMPLATE, 'worker'), wd)
            tac = os.path.join(wd, 'buildbot.tac')
            with open(tac) as f:
                t = f.read()
            t = t.replace("'WORKERNAME'", "'w%d'" % i).replace(
                "buildmaster_host = '127.0.0.1'", "buildmaster_host = '127.0.0.1'").replace(
                'port = 1\n', 'port = %d\n' % self.mp_port)
            with open(tac, 'w') as f:
                f.write(t)
        out = open(wd + '.log', 'ab')
        p = subprocess.Popen([TWISTD, '--nodaemon', '--no_save', '--pidfile=', '-y',
                              'buildbot.tac'], cwd=wd, stdout=out, stderr=out)
        self.workers.append(p)
        return p

    def worker_pids(self):
        return [p.pid for p in self.workers]

    def connected(self):
        d = self.api.get('workers?field=name&field=connected_to')
        return sum(1 for w in d['workers'] if w['connected_to'])

    def stop_workers(self):
        for p in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.workers:
            stop_proc(p)
        self.workers = []

    def stop(self):
        self.stop_workers()
        if self.proc:
            self.api.close()
        stop_proc(self.proc, 60)
        self.proc = None


SYSTEMS = {'kiln': Kiln, 'buildbot': Buildbot}


def up(cls, tag, nworkers=1, maxbuilds=10, start_workers=1, changes=None, extra=None):
    s = cls(tag, nworkers=nworkers, maxbuilds=maxbuilds, changes=changes, extra=extra)
    s.start()
    for i in range(start_workers):
        s.start_worker(i)
    if start_workers:
        wait_until('%d workers attached' % start_workers,
                   lambda: s.connected() >= start_workers, 300, 0.02, load_share=0.2)
    return s


def wait_request(api, brid, interval, timeout=600, load_share=0.5):
    """Polls builds?buildrequestid=BRID until its build is complete.  Returns
    (t_started, t_finished, results, t_last_miss): perf_counter times of the first poll that
    saw the build and of the first that saw it complete, and of the last poll before the
    build appeared (so the start lies in (t_last_miss, t_started])."""
    t_start, t_miss = None, now()
    end = now() + timeout
    q = ('builds?buildrequestid=%d&field=buildrequestid&field=buildid&field=complete'
         '&field=results' % brid)
    while True:
        tq = now()
        d = api.get(q)
        t = now()
        if d['builds']:
            if t_start is None:
                t_start = t
            if d['builds'][0]['complete']:
                return t_start, t, d['builds'][0]['results'], t_miss
        else:
            t_miss = t
        if t > end:
            raise RuntimeError('request %d not finished in %ds' % (brid, timeout))
        if interval:
            time.sleep(max(interval, (t - tq) * (1 / load_share - 1)))


# ---------------------------------------------------------------- scenarios
# Each returns {metric: [samples]} for one repetition on one system.

def sc_idle(cls, rep):
    s = cls('idle')
    try:
        t_ports, t_api = s.start()
        rss_bare = proc_rss_kb(s.pid)
        s.start_worker(0)
        wait_until('worker attached', lambda: s.connected() >= 1, 120, 0.01)
        s.api.close()
        time.sleep(3)          # let both settle: idle means nothing is happening
        c0 = proc_cpu(s.pid)
        time.sleep(5)
        c1 = proc_cpu(s.pid)
        r = {'ready_api_ms': [t_api * 1000],
             'rss_master_noworker_mb': [rss_bare / 1024],
             'rss_master_mb': [proc_rss_kb(s.pid) / 1024],
             'rss_worker_mb': [proc_rss_kb(s.worker_pids()[0]) / 1024],
             'anon_master_mb': [proc_rss_kb(s.pid, 'RssAnon:') / 1024],
             'anon_worker_mb': [proc_rss_kb(s.worker_pids()[0], 'RssAnon:') / 1024],
             'idle_cpu_pct': [(c1 - c0) / 5 * 100]}
        if t_ports is not None:
            r['ready_ports_ms'] = [t_ports * 1000]
        return r
    finally:
        s.stop()


def sc_latency(cls, rep):
    """force → started / finished, timed by the master's own /ws events (builds/N/new,
    builds/N/finished) rather than by polling."""
    n = ARGS.latency_n if cls is Kiln else ARGS.bb_latency_n
    s = up(cls, 'latency')
    ev = None
    try:
        api = s.api
        ev = WsEvents(s.url, ['builds/*/new', 'builds/*/finished'])
        brid = api.force(['b0'])[0]                        # warm-up
        ev.wait(ev_build('finished', brid), 120)
        started, finished, answered = [], [], []
        for _ in range(n):
            ev.forget()
            t0 = now()
            brid = api.force(['b0'])[0]
            t_ans = now()
            ts = ev.wait(ev_build('new', brid), 120)[0]
            tf, _, m = ev.wait(ev_build('finished', brid), 120)
            if m.get('results') != 0:
                raise RuntimeError('latency build failed: results %s' % m.get('results'))
            started.append((ts - t0) * 1000)
            finished.append((tf - t0) * 1000)
            answered.append((t_ans - t0) * 1000)
        return {'force_started_ms': started, 'force_finished_ms': finished,
                'force_answer_ms': answered}
    finally:
        if ev:
            ev.close()
        s.stop()


def sc_client(cls, rep):
    """`kiln force b0 --wait` as a user runs it: the client process's own wall time on a
    trivial build (process start, force, following the build, exit)."""
    n = ARGS.client_n
    s = up(cls, 'client')
    try:
        kiln = os.path.join(KILN, 'kiln')
        env = dict(os.environ, KILN_URL=s.url)
        env.pop('KILN_TOKEN', None)
        wait_request(s.api, s.api.force(['b0'])[0], 0.005)   # warm-up
        subprocess.run([kiln, 'force', 'b0', '--wait'], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        waits, starts = [], []
        for _ in range(n):
            t0 = now()
            subprocess.run([kiln, 'force', 'b0', '--wait'], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
            waits.append((now() - t0) * 1000)
            t0 = now()
            subprocess.run([kiln, 'version'], check=True, stdout=subprocess.DEVNULL)
            starts.append((now() - t0) * 1000)
        return {'client_wait_ms': waits, 'client_exec_ms': starts}
    finally:
        s.stop()


def run_burst(s, nbuilds, poll_interval):
    """Forces NBUILDS (10 builders per call) at once; returns wall seconds, master CPU s."""
    api = s.api
    names = ['b%d' % i for i in range(10)]
    cpu0 = proc_cpu(s.pid)
    t0 = now()
    brids = []
    for _ in range(nbuilds // 10):
        brids += api.force(names)
    t_forced = now() - t0
    while True:
        d = api.get('buildrequests?complete=false&field=buildrequestid&field=complete')
        if not d['buildrequests']:
            break
        if now() - t0 > 1200:
            raise RuntimeError('burst did not finish')
        time.sleep(poll_interval)
    wall = now() - t0
    cpu = proc_cpu(s.pid) - cpu0
    return wall, cpu, t_forced, brids


def sc_throughput(cls, rep):
    """Sustained trivial builds: the queue is kept at QUEUE_LOW..QUEUE_LOW+9 requests by
    force calls of 10 builders; completions are counted from the master's own
    `builds/*/finished` events on /ws (no polling load); after WARMUP_S the rate is taken
    in each whole 1 s window of SUSTAIN_S and over all of it."""
    warm, dur, low = ARGS.warmup_s, ARGS.sustain_s, ARGS.queue_low
    s = up(cls, 'throughput', maxbuilds=10)
    ev = None
    try:
        api = s.api
        ev = WsEvents(s.url, ['builds/*/finished'])
        brid = api.force(['b0'])[0]                        # warm-up build
        ev.wait(ev_build('finished', brid), 120)
        ev.forget()
        names = ['b%d' % i for i in range(10)]
        forced, force_s = 0, []
        t_begin = now()
        t_meas = t_end = None
        while True:
            with ev.cv:
                done = len(ev.events)
            t = now()
            if t_meas is None and t - t_begin >= warm:
                t_meas, cpu0, db0 = t, proc_cpu(s.pid), db_logical_bytes(s.db)
            if t_meas is not None and t - t_meas >= dur:
                t_end = t
                cpu1, db1 = proc_cpu(s.pid), db_logical_bytes(s.db)
                break
            if t - t_begin > warm + dur + 600:
                raise RuntimeError('throughput: measurement did not end')
            if ev.closed:
                raise RuntimeError('throughput: /ws closed')
            while forced - done < low:
                tf = now()
                forced += len(api.force(names))
                force_s.append(now() - tf)
            time.sleep(0.01)
        with ev.cv:
            evs = list(ev.events)
        times = [e[0] for e in evs if t_meas <= e[0] < t_end]
        n = len(times)
        wins = [sum(1 for x in times if t_meas + k <= x < t_meas + k + 1)
                for k in range(int(t_end - t_meas))]
        bad = [e[1] for e in evs if e[2].get('results') != 0]
        if bad or n <= 0:
            raise RuntimeError('throughput: %d builds done, failed: %r' % (n, bad[:3]))
        return {'builds_per_s_window': wins, 'builds_per_s': [n / (t_end - t_meas)],
                'builds_measured': [n], 'cpu_ms_per_build': [(cpu1 - cpu0) / n * 1000],
                'db_bytes_per_build': [(db1 - db0) / n],
                'force_call_ms': [x * 1000 for x in force_s]}
    finally:
        if ev:
            ev.close()
        s.stop()


def sc_ceiling(cls, rep):
    out = subprocess.run([os.path.join(TOOLS, 'spawn'), '3'], check=True,
                         capture_output=True, text=True).stdout
    spawns = json.loads(out)['per_second']
    t0 = now()
    subprocess.run(['sh', '-c', LOG50M_CMD + ' > /dev/null'], check=True)
    pipe = now() - t0
    return {'spawn_per_s': [spawns], 'pipeline_50m_s': [pipe]}


def log50m_once(api, s):
    """One 50 MB log build: (force → finished s, master CPU s, db growth bytes, brid)."""
    db0, cpu0 = db_logical_bytes(s.db), proc_cpu(s.pid)
    t0 = now()
    brid = api.force(['log50m'])[0]
    ts, tf, res, _ = wait_request(api, brid, 0.01, 1200)
    if res != 0:
        raise RuntimeError('log50m: results %s' % res)
    return tf - t0, proc_cpu(s.pid) - cpu0, db_logical_bytes(s.db) - db0, brid


def pipeline_s():
    t0 = now()
    subprocess.run(['sh', '-c', LOG50M_CMD + ' > /dev/null'], check=True)
    return now() - t0


def sc_log50m(cls, rep):
    """50 MB log builds back to back, one at a time: one warm-up log build, then builds
    until SUSTAIN_S have passed (at least LOG_MIN builds); the bare pipeline is timed
    before and after the series."""
    s = up(cls, 'log50m')
    try:
        api = s.api
        wait_request(api, api.force(['b0'])[0], 0.005)   # warm-up
        log50m_once(api, s)                              # warm-up log build
        pipes = [pipeline_s()]
        steps, cpus, dbs = [], [], []
        t_series = now()
        while now() - t_series < ARGS.sustain_s or len(steps) < ARGS.log_min:
            st, cpu, dbg, brid = log50m_once(api, s)
            steps.append(st)
            cpus.append(cpu)
            dbs.append(dbg / 1e6)
        series = now() - t_series
        pipes.append(pipeline_s())
        bid = api.get('builds?buildrequestid=%d&field=buildrequestid&field=buildid' %
                      brid)['builds'][0]['buildid']
        st = [x for x in api.get('builds/%d/steps' % bid)['steps'] if x['name'] == 'log50m'][0]
        lg = [x for x in api.get('steps/%d/logs' % st['stepid'])['logs']
              if x['slug'] == 'stdio'][0]
        nl = lg['num_lines']
        t0 = now()
        raw = api.get_raw('logs/%d/raw' % lg['logid'])
        raw_s = now() - t0
        tails = []
        for _ in range(5):
            t0 = now()
            d = api.get('logs/%d/contents?offset=%d&limit=1000' % (lg['logid'], nl - 1000))
            tails.append((now() - t0) * 1000)
        got = d['logchunks'][0]['content'].count('\n') if d['logchunks'] else 0
        if got < 999:
            raise RuntimeError('log50m: tail had %d lines' % got)
        pipe = statistics.median(pipes)
        return {'step_s': steps, 'pipeline_s': pipes,
                'step_vs_pipeline': [x / pipe for x in steps],
                'log_mb_per_s': [50 * len(steps) / series], 'log_builds': [len(steps)],
                'cpu_s': cpus, 'stored_mb': dbs, 'num_lines': [nl],
                'raw_fetch_s': [raw_s], 'raw_mb': [len(raw) / 1e6], 'tail1000_ms': tails}
    finally:
        s.stop()


def sc_stall(cls, rep):
    """Kiln only: the master's worst loop stall (KILN_LOOP_STATS, written at exit) while
    it stores a 50 MB log, answers API readers and takes a burst of forced builds."""
    stats = os.path.join(TMP, 'loop-stats-%d.json' % rep)
    s = Kiln('stall', maxbuilds=10)
    s.env = {'KILN_LOOP_STATS': stats}
    s.start()
    stop = threading.Event()
    lat = []
    try:
        s.start_worker(0)
        wait_until('worker attached', lambda: s.connected() >= 1, 120, 0.02, load_share=0.2)
        api = s.api
        wait_request(api, api.force(['b0'])[0], 0.005)   # warm-up

        def reader(paths):
            a = Api(s.url)
            try:
                while not stop.is_set():
                    for p in paths:
                        t0 = now()
                        a.get(p)
                        lat.append((now() - t0) * 1000)
                    time.sleep(0.005)
            finally:
                a.close()
        readers = [threading.Thread(target=reader, args=(p,), daemon=True) for p in (
            ['builds?order=-buildid&limit=100', 'builders'],
            ['buildrequests?complete=false&field=buildrequestid', 'workers'])]
        for th in readers:
            th.start()
        cpu0 = proc_cpu(s.pid)
        t0 = now()
        brid = api.force(['log50m'])[0]
        time.sleep(0.1)        # the log step is under way when the burst arrives
        names = ['b%d' % i for i in range(10)]
        for _ in range(ARGS.stall_burst // 10):
            api.force(names)
        wait_request(api, brid, 0.02, 1200)
        wait_until('burst done', lambda: not api.get(
            'buildrequests?complete=false&field=buildrequestid')['buildrequests'],
            600, 0.02)
        wall = now() - t0
        cpu = proc_cpu(s.pid) - cpu0
        stop.set()
        for th in readers:
            th.join(30)
    finally:
        stop.set()
        s.stop()
    with open(stats) as f:
        st = json.load(f)
    return {'stall_worst_ms': [st['worst_ms']], 'stall_p99_ms': [st['p99_ms']],
            'stall_p50_ms': [st['p50_ms']], 'stall_turns': [st['turns']],
            'stall_busy_ms': [st['busy_ms']], 'stall_worst_cpu_ms': [st['worst_cpu_ms']], 'stall_wall_s': [wall], 'stall_cpu_s': [cpu],
            'stall_reader_ms': lat, 'stall_reader_n': [len(lat)]}


def attach_run(cls, tag, n, real, metrics_tag):
    """Starts a master declaring N workers, attaches N of them (real worker processes or
    the load generator), returns attach time, master RSS and idle CPU over 10 s."""
    s = cls(tag, nworkers=n, maxbuilds=1)
    t_ports, t_api = s.start()
    lg = None
    try:
        t0 = now()
        if real:
            for i in range(n):
                s.start_worker(i)
        else:
            lg = subprocess.Popen([os.path.join(TOOLS, 'loadgen'), s.waddr, str(n), 'pass'],
                                  stdout=subprocess.PIPE, text=True, preexec_fn=raise_nofile)
        interval = 0.02 if n <= 50 else 0.1
        got = []

        def attached():
            got.append(s.connected())
            return got[-1] >= n
        try:
            wait_until('%d attached' % n, attached,
                       ARGS.attach_timeout if cls is Kiln else ARGS.bb_attach_timeout,
                       interval, load_share=0.2)
        except TimeoutError:
            log('  only %d of %d attached in time' % (got[-1], n))
            return {'attached_%s_n' % metrics_tag: [got[-1]]}
        attach = now() - t0
        s.api.close()
        time.sleep(2)
        c0 = proc_cpu(s.pid)
        time.sleep(10)
        c1 = proc_cpu(s.pid)
        r = {'attach_%s_s' % metrics_tag: [attach],
             'ready_%s_ms' % metrics_tag: [(t_ports if t_ports is not None else t_api) * 1000],
             'rss_%s_mb' % metrics_tag: [proc_rss_kb(s.pid) / 1024],
             'idle_cpu_%s_pct' % metrics_tag: [(c1 - c0) / 10 * 100]}
        if real:
            r['rss_workers_%s_mb' % metrics_tag] = [
                sum(proc_rss_kb(p) for p in s.worker_pids()) / 1024]
        return r
    finally:
        if lg:
            lg.send_signal(signal.SIGTERM)
            try:
                out = lg.communicate(timeout=10)[0]
                log('  loadgen: ' + out.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                lg.kill()
        s.stop()


def sc_workers(cls, rep):
    r = attach_run(cls, 'workers50', 50, True, '50')
    if cls is Kiln:
        for n in ARGS.loadgen_n:
            r.update(attach_run(cls, 'workers%d' % n, n, False, str(n)))
    return r


def clone_rows(dbpath, n):
    """Adds N finished builds (with their buildsets and build requests) to a stopped
    master's SQLite database, copied from the first real build's rows."""
    c = sqlite3.connect(dbpath)
    c.row_factory = sqlite3.Row
    b = dict(c.execute('SELECT * FROM builds ORDER BY id LIMIT 1').fetchone())
    br = dict(c.execute('SELECT * FROM buildrequests WHERE id = ?',
                        (b['buildrequestid'],)).fetchone())
    bs = dict(c.execute('SELECT * FROM buildsets WHERE id = ?', (br['buildsetid'],)).fetchone())
    mx = {t: c.execute('SELECT max(id) FROM %s' % t).fetchone()[0]
          for t in ('builds', 'buildrequests', 'buildsets')}
    num = c.execute('SELECT max(number) FROM builds WHERE builderid = ?',
                    (b['builderid'],)).fetchone()[0]

    def ins(table, row, rows):
        cols = list(row)
        c.executemany('INSERT INTO %s (%s) VALUES (%s)' % (table, ','.join(cols),
                                                          ','.join('?' * len(cols))), rows)
    with c:
        ins('buildsets', bs, ([mx['buildsets'] + k if col == 'id' else bs[col] for col in bs]
                              for k in range(1, n + 1)))
        ins('buildrequests', br, ([{'id': mx['buildrequests'] + k,
                                    'buildsetid': mx['buildsets'] + k}.get(col, br[col])
                                   for col in br] for k in range(1, n + 1)))
        ins('builds', b, ([{'id': mx['builds'] + k, 'number': num + k,
                            'buildrequestid': mx['buildrequests'] + k}.get(col, b[col])
                           for col in b] for k in range(1, n + 1)))
    total = c.execute('SELECT count(*) FROM builds').fetchone()[0]
    c.close()
    return total


def time_get(api, path, n):
    api.get(path)
    out = []
    for _ in range(n):
        t0 = now()
        api.get(path)
        out.append((now() - t0) * 1000)
    return statistics.median(out)


def sc_api(cls, rep):
    s = up(cls, 'api')
    r = {}
    try:
        wait_request(s.api, s.api.force(['b0'])[0], 0.005)
        s.stop()
        have = 1
        for label, target in (('1k', 1000), ('100k', ARGS.api_builds)):
            have = clone_rows(s.db, target - have)
            s.start()
            n = 50 if cls is Kiln else 10
            r['builds_%s_ms' % label] = [time_get(s.api, 'builds?limit=100', n)]
            r['builds_desc_%s_ms' % label] = [time_get(s.api, 'builds?order=-buildid&limit=100',
                                                       n)]
            r['builders_%s_ms' % label] = [time_get(s.api, 'builders', n)]
            s.api.close()
            s.stop()
        r['api_builds_total'] = [have]
        return r
    finally:
        s.stop()


def count_builds(api):
    d = api.get('builds?order=-buildid&limit=1&field=buildid')
    return d['builds'][0]['buildid'] if d['builds'] else 0


def sc_queue(cls, rep):
    nq = ARGS.queue_n if cls is Kiln else ARGS.bb_queue_n
    s = cls('queue', maxbuilds=10)
    s.start()
    try:
        names = ['b%d' % i for i in range(10)]
        t0 = now()
        for _ in range(nq // 10):
            s.api.force(names)
        submit = now() - t0
        s.api.close()
        s.stop()
        t_ports, t_api = s.start()
        t_ready = t_ports if t_ports is not None else t_api
        rss = proc_rss_kb(s.pid) / 1024
        # one worker attaches: when was the k-th build started?
        s.start_worker(0)
        marks = sorted(set([100, 600] + ([nq // 10, nq // 10 + 500] if cls is Kiln
                                           else [50, 100])))
        seen, t_of, t0 = 0, {}, now()
        while len(t_of) < len(marks):
            seen = count_builds(s.api)
            t = now()
            for m in marks:
                if seen >= m and m not in t_of:
                    t_of[m] = t
            if t - t0 > ARGS.queue_timeout:
                break
            time.sleep(0.02)
        r = {'submit_s': [submit], 'restart_ready_ms': [t_ready * 1000],
             'restart_api_ms': [t_api * 1000], 'rss_queued_mb': [rss],
             'queued': [nq]}
        if cls is Kiln:
            early = (t_of[600] - t_of[100]) / 500
            late = (t_of[nq // 10 + 500] - t_of[nq // 10]) / 500
            r.update({'dispatch_early_ms': [early * 1000], 'dispatch_late_ms': [late * 1000],
                      'dispatch_ratio': [late / early]})
        else:
            if 50 in t_of and 100 in t_of:
                r['dispatch_early_ms'] = [(t_of[100] - t_of[50]) / 50 * 1000]
        return r
    finally:
        s.stop()


def callgrind_top(outfile, n=25):
    """(total Ir, [(self Ir, 'function (object)')]) from callgrind_annotate.  Frames that were
    on the stack when the counters were zeroed (main, uv_run, ...) show the whole total as
    their own cost; they are left out."""
    out = subprocess.run(['callgrind_annotate', '--inclusive=no', '--threshold=100', outfile],
                         capture_output=True, text=True).stdout
    total, rows = None, []
    for line in out.splitlines():
        m = re.match(r'\s*([\d,]+)\s+(\([\s\d.]+%\)\s+)?(.*)$', line)
        if not m:
            continue
        ir, what = int(m.group(1).replace(',', '')), m.group(3)
        if what.startswith('PROGRAM TOTALS'):
            total = ir
            continue
        if total is None or ir >= total * 0.99 or len(rows) >= n:
            continue
        obj = ''
        mo = re.match(r'(.*) \[(.*)\]$', what)
        if mo:
            what, obj = mo.group(1), os.path.basename(mo.group(2))
        fn = what.split(':', 1)[1] if ':' in what else what
        src = os.path.basename(what.split(':', 1)[0]) if ':' in what else ''
        if src in ('???', '') or fn.startswith('0x'):
            src = ''
        rows.append((ir, '%s (%s)' % (fn, src or obj)))
    return total, rows


def sc_callgrind(cls, rep):
    """Kiln's master under callgrind on the throughput burst: instructions per build."""
    n = ARGS.throughput_n
    s = cls('callgrind', maxbuilds=10)
    out = os.path.join(s.dir, 'callgrind.out')
    s.start(wrapper=['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out + '.%p',
                     '--dump-instr=no'])
    try:
        s.start_worker(0)
        wait_until('worker attached', lambda: s.connected() >= 1, 300, 0.05)
        wait_request(s.api, s.api.force(['b0'])[0], 0.005, 300)
        # completions are counted from /ws events, not by polling: polls during the burst
        # would add instructions in proportion to how long it takes (i.e. to machine load)
        ev = WsEvents(s.url, ['builds/*/finished'], timeout=120)
        subprocess.run(['callgrind_control', '-z', str(s.pid)], check=True,
                       capture_output=True)
        names = ['b%d' % i for i in range(10)]
        for _ in range(n // 10):
            s.api.force(names)
        with ev.cv:
            if not ev.cv.wait_for(lambda: len(ev.events) >= n // 10 * 10 or ev.closed, 1200):
                raise RuntimeError('callgrind: burst did not finish')
        subprocess.run(['callgrind_control', '-d', 'burst', str(s.pid)], check=True,
                       capture_output=True)
        ev.close()
    finally:
        s.stop()
    # callgrind_control -d writes OUT.PID.1 (the burst); the final dump at exit is OUT.PID
    burst = [os.path.join(s.dir, f) for f in os.listdir(s.dir)
             if f.startswith('callgrind.out.') and f.endswith('.1')]
    if not burst:
        raise RuntimeError('callgrind: no burst dump in %s' % s.dir)
    total, rows = callgrind_top(burst[0])
    keep = os.path.join(RESULTS, 'callgrind-throughput.txt')
    def annotate(*opts):
        out = subprocess.run(['callgrind_annotate', '--threshold=100', '--auto=no', *opts,
                              burst[0]], capture_output=True, text=True).stdout
        return '\n'.join(out.splitlines()[:140]) + '\n'
    with open(os.path.join(RESULTS, 'callgrind-throughput.txt'), 'w') as f:
        f.write('# callgrind_annotate of kiln master during the %d-build throughput burst '
                '(first 140 lines)\n# self cost:\n' % n)
        f.write(annotate('--inclusive=no'))
        f.write('\n# inclusive cost:\n')
        f.write(annotate('--inclusive=yes'))
    return {'ir_per_build': [total / n], 'top_self': [[ir / n, fn] for ir, fn in rows]}


def change_body(i, branch='main'):
    """A base-dialect change hook form (Buildbot's field names and encodings)."""
    return urllib.parse.urlencode({
        'author': 'Dev %d <dev%d@example.org>' % (i % 50, i % 50),
        'comments': 'change %d\n\nsome description' % i,
        'files': json.dumps(['src/file%d.c' % (i % 97), 'include/h%d.h' % (i % 13)]),
        'branch': branch, 'revision': '%040x' % i,
        'repository': 'https://example.org/repo.git'})


def post_change(api, i):
    st, data = api.request('POST', '/change_hook/base', change_body(i),
                           {'Content-Type': 'application/x-www-form-urlencoded'})
    if st != 200:
        raise RuntimeError('change hook: %d %s' % (st, data[:200]))


def last_build(api):
    d = api.get('builds?order=-buildid&limit=1&field=buildid&field=complete&field=results')
    return d['builds'][0] if d['builds'] else None


def changes_load_tool():
    """bench/changes-load.c, built once per run into the throwaway directory."""
    exe = os.path.join(TMP, 'changes-load')
    if not os.path.exists(exe):
        subprocess.run(['cc', '-O2', '-Wall', '-Wextra', '-Werror', '-o', exe,
                        os.path.join(BENCH, 'changes-load.c'), '-lpthread'], check=True)
    return exe


def py_post_changes(url, n, conns, first):
    """N changes over CONNS keep-alive connections from Python threads (for Buildbot: its
    answers are chunked, which changes-load.c does not parse; at its rate a Python client
    is not what is measured).  Returns wall seconds."""
    per = n // conns
    errors = []

    def run(k):
        api = Api(url)
        try:
            for i in range(per):
                post_change(api, first + k * per + i)
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            api.close()
    ts = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
    t0 = now()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return now() - t0


def sc_changes(cls, rep):
    """1. change hook POST → build started (single-branch scheduler, no tree-stable timer,
    branch main → b0), polled like `latency`; 2. N changes ingested through the hook on a
    master with the hook only: changes/s, master RSS after."""
    n = ARGS.changes_lat_n if cls is Kiln else ARGS.bb_changes_lat_n
    r = {}
    s = up(cls, 'changes', changes='sb')
    try:
        api = s.api
        seq = 1000000 * (rep + 1)

        def one(i):
            """hook POST → (answered, started, finished, last miss) in ms; waits for the
            build to complete so every sample starts from an idle master."""
            prev = last_build(api)
            prev_id = prev['buildid'] if prev else 0
            t0 = now()
            post_change(api, i)
            t_ans, t_miss, t_start = now(), now(), None
            end = t0 + 120
            while True:
                tq = now()
                b = last_build(api)
                t = now()
                if b and b['buildid'] > prev_id:
                    if t_start is None:
                        t_start = t
                    if b['complete']:
                        if b['results'] != 0:
                            raise RuntimeError('changes build failed: results %s' %
                                               b['results'])
                        return [(x - t0) * 1000 for x in (t_ans, t_start, t, t_miss)]
                else:
                    t_miss = t
                if t > end:
                    raise RuntimeError('no build for change %d in 120 s' % i)
                time.sleep(max(0.001, (t - tq)))    # same pacing as `latency`
        one(seq)                                    # warm-up
        for k in ('hook_answer_ms', 'hook_started_ms', 'hook_finished_ms',
                  'hook_started_lo_ms'):
            r[k] = []
        for i in range(n):
            a, st, fi, lo = one(seq + 1 + i)
            r['hook_answer_ms'].append(a)
            r['hook_started_ms'].append(st)
            r['hook_finished_ms'].append(fi)
            r['hook_started_lo_ms'].append(lo)
        t0 = now()                                  # what one poll costs (as in `latency`)
        for _ in range(50):
            last_build(api)
        r['hook_poll_ms'] = [(now() - t0) / 50 * 1000]
    finally:
        s.stop()
    # 2. ingestion: a fresh master with the change hook and no scheduler or worker
    nn = ARGS.changes_n if cls is Kiln else ARGS.bb_changes_n
    s = cls('changes-load', changes='hook')
    s.start()
    try:
        post_change(s.api, 1)                       # warm-up (and the first change id)
        rss0 = proc_rss_kb(s.pid)
        cpu0 = proc_cpu(s.pid)
        host, port = s.url.split('//', 1)[1].split(':')
        if cls is Kiln:
            out = subprocess.run([changes_load_tool(), host, port, str(nn), '4', '1000'],
                                 check=True, capture_output=True, text=True).stdout
            wall = float(out.strip())
        else:
            wall = py_post_changes(s.url, nn, 4, 1000)
        cpu = proc_cpu(s.pid) - cpu0
        d = s.api.get('changes?order=-changeid&limit=1&field=changeid')
        stored = d['changes'][0]['changeid'] if d['changes'] else 0
        if stored != nn + 1:
            raise RuntimeError('changes: %d stored, expected %d' % (stored, nn + 1))
        r.update({'changes_n': [nn], 'changes_per_s': [nn / wall],
                  'changes_cpu_ms': [cpu / nn * 1000],
                  'rss_changes_before_mb': [rss0 / 1024],
                  'rss_changes_mb': [proc_rss_kb(s.pid) / 1024]})
        return r
    finally:
        s.stop()


# ---------------------------------------------------------------- issue 10

def wait_builds(ev, brids, timeout, ok=(0,)):
    """Waits for the builds/N/finished event of every request in BRIDS (one shared
    deadline); returns {brid: message}.  A build whose results are not in OK fails."""
    end = now() + timeout
    out = {}
    for b in brids:
        m = ev.wait(ev_build('finished', b), max(0.1, end - now()))[2]
        if m.get('results') not in ok:
            raise RuntimeError('build of request %d: results %s' % (b, m.get('results')))
        out[b] = m
    return out


def step_log_text(api, buildid, stepname):
    """The stdio log of step STEPNAME of build BUILDID (every chunk, as served)."""
    st = [x for x in api.get('builds/%d/steps' % buildid)['steps'] if x['name'] == stepname][0]
    lg = [x for x in api.get('steps/%d/logs' % st['stepid'])['logs'] if x['slug'] == 'stdio'][0]
    d = api.get('logs/%d/contents' % lg['logid'])
    return ''.join(c['content'] for c in d['logchunks'])


def steps20_series(s, ev, name, n):
    """Forces N builds of builder NAME at once and waits for all of them: (master CPU s,
    wall s, the last build's finished message)."""
    ev.forget()
    cpu0, t0 = proc_cpu(s.pid), now()
    brids = [s.api.force([name])[0] for _ in range(n)]
    done = wait_builds(ev, brids, ARGS.steps_timeout)
    return proc_cpu(s.pid) - cpu0, now() - t0, done[brids[-1]]


def sc_steps20(cls, rep):
    """Master CPU per build of a one-step build (p1) and of a 20-step build with
    properties and interpolate() (p20), builds forced at once, one worker (max_builds
    10), completions from /ws events; after 2 warm-up builds of each."""
    n = ARGS.steps_n if cls is Kiln else ARGS.bb_steps_n
    s = up(cls, 'steps20', maxbuilds=10, extra={'steps20': True})
    ev = None
    try:
        ev = WsEvents(s.url, ['builds/*/finished'])
        for name in ('p1', 'p20'):
            steps20_series(s, ev, name, 2)                          # warm-up
        c1, w1, _ = steps20_series(s, ev, 'p1', n)
        c20, w20, m = steps20_series(s, ev, 'p20', n)
        # the properties were rendered (not passed through as text)
        num = m['number']
        for step, want in (('echo17', ' s-%d' % num),
                           ('env', '%d s-%d' % (num, num))):
            text = step_log_text(s.api, m['buildid'], step)
            if want not in text:
                raise RuntimeError('steps20: %s log lacks %r: %r' % (step, want, text[:300]))
        return {'p1_cpu_ms': [c1 / n * 1000], 'p20_cpu_ms': [c20 / n * 1000],
                'p20_vs_p1': [c20 / c1 if c1 > 0 else None],
                'p1_wall_ms': [w1 / n * 1000], 'p20_wall_ms': [w20 / n * 1000],
                'steps20_builds': [n]}
    finally:
        if ev:
            ev.close()
        s.stop()


def upload_source():
    """ARGS.upload_mb MiB of random-looking bytes (a 1 MiB random block repeated with a
    counter, so no two MiB are alike), made once per run."""
    path = os.path.join(TMP, 'upload-src.bin')
    if not os.path.exists(path):
        block = bytearray(os.urandom(1 << 20))
        with open(path, 'wb') as f:
            for i in range(ARGS.upload_mb):
                block[:8] = i.to_bytes(8, 'little')
                f.write(block)
    return path


def same_tail(a, b, n=1 << 20):
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, 'rb') as fa, open(b, 'rb') as fb:
        fa.seek(-n, 2)
        fb.seek(-n, 2)
        return fa.read() == fb.read()


def loopcopy_s(src):
    dest = os.path.join(TMP, 'loopcopy.bin')
    out = subprocess.run([os.path.join(TOOLS, 'loopcopy'), src, dest], check=True,
                         capture_output=True, text=True).stdout
    ok = same_tail(src, dest)
    os.unlink(dest)
    if not ok:
        raise RuntimeError('loopcopy: copy differs')
    return json.loads(out)


def sc_upload(cls, rep):
    """A build whose one step is a file upload of ARGS.upload_mb MiB from the worker to the
    master (Kiln: file_upload; Buildbot: FileUpload, both 256 KiB blocks), force →
    finished from /ws events, against the raw loopback copy of the same file
    (bench/loopcopy.c) timed right before each upload; the master's RSS is sampled every
    20 ms during the upload."""
    src = upload_source()
    n = ARGS.upload_n if cls is Kiln else 1
    s = up(cls, 'upload', extra={'upload': src})
    ev = None
    try:
        ev = WsEvents(s.url, ['builds/*/finished'])
        wait_builds(ev, [s.api.force(['b0'])[0]], 120)              # warm-up
        raws, rawcpus, ups, cpus, wcpus, rss0, rssmax, rss1 = [], [], [], [], [], [], [], []
        for _ in range(n):
            lc = loopcopy_s(src)
            raws.append(lc['seconds'])
            rawcpus.append(lc['cpu_s'])
            ev.forget()
            before = proc_rss_kb(s.pid) / 1024
            peak = [before]
            stop = threading.Event()

            def sample():
                while not stop.wait(0.02):
                    peak.append(proc_rss_kb(s.pid) / 1024)
            th = threading.Thread(target=sample, daemon=True)
            th.start()
            wpid = s.worker_pids()[0]
            cpu0, wcpu0, t0 = proc_cpu(s.pid), proc_cpu(wpid), now()
            brid = s.api.force(['upload1g'])[0]
            m = wait_builds(ev, [brid], ARGS.upload_timeout)[brid]
            ups.append(now() - t0)
            cpus.append(proc_cpu(s.pid) - cpu0)
            wcpus.append(proc_cpu(wpid) - wcpu0)
            stop.set()
            th.join()
            rss0.append(before)
            rssmax.append(max(peak))
            rss1.append(proc_rss_kb(s.pid) / 1024)
            if cls is Kiln:
                dest = os.path.join(s.mdir, 'artifacts', str(m['buildid']), 'big.bin')
            else:
                dest = os.path.join(s.mdir, 'upload', '%d.bin' % m['number'])
            ok = same_tail(src, dest)
            os.unlink(dest)                  # 1 GiB each: keep the disk free
            if not ok:
                raise RuntimeError('upload: %s differs from the source' % dest)
        size = ARGS.upload_mb * (1 << 20) / 1e6
        return {'upload_s': ups, 'loopcopy_s': raws,
                'upload_vs_raw': [r / u for r, u in zip(raws, ups)],
                'upload_mb_per_s': [size / u for u in ups],
                'loopcopy_mb_per_s': [size / r for r in raws],
                'upload_cpu_s': cpus, 'upload_worker_cpu_s': wcpus,
                'upload_total_cpu_s': [a + b for a, b in zip(cpus, wcpus)],
                'loopcopy_cpu_s': rawcpus,
                'upload_rss_before_mb': rss0,
                'upload_rss_peak_mb': rssmax, 'upload_rss_after_mb': rss1,
                'upload_rss_growth_mb': [b - a for a, b in zip(rss0, rssmax)]}
    finally:
        if ev:
            ev.close()
        s.stop()


def junit_file(n):
    """A pytest-shaped JUnit file of N test cases (the shape of bench/testreport-bench.c:
    5 % failing with a traceback, 3 % skipped), made once per run."""
    path = os.path.join(TMP, 'junit-%d.xml' % n)
    if os.path.exists(path):
        return path
    out = ['<?xml version="1.0" encoding="utf-8"?><testsuites>'
           '<testsuite name="pytest" errors="0">']
    for i in range(n):
        t = ('<testcase classname="tests.test_mod%d" name="test_case_%d" time="0.%03d">'
             % (i // 100, i, i % 1000))
        if i % 20 == 7:
            t += ('<failure message="AssertionError: assert %d == %d">def test_case_%d():\n'
                  '&gt;       assert f(%d) == %d\nE       AssertionError\n\n'
                  'tests/test_mod%d.py:%d: AssertionError</failure>'
                  % (i, i + 1, i, i, i + 1, i // 100, 10 + i % 90))
        elif i % 33 == 5:
            t += ('<skipped type="pytest.skip" message="needs a GPU">tests/test_gpu.py:3: '
                  'needs a GPU</skipped>')
        out.append(t + '</testcase>')
    out.append('</testsuite></testsuites>')
    with open(path, 'w') as f:
        f.write('\n'.join(out) + '\n')
    return path


def sc_junit(cls, rep):
    """Kiln only (Buildbot 3.7 has no JUnit parser): (1) bench/testreport-bench.c, the
    parser alone and the parser + testingest.c into a fresh SQLite file, in one process;
    (2) end to end: a `test` step whose command copies a 100,000-case JUnit file into its
    workdir and whose `reports` names it, against the same build with a plain `shell` step
    doing the copy: force → finished and master CPU per build."""
    out = subprocess.run([os.path.join(TOOLS, 'testreport-bench'), str(ARGS.junit_n)],
                         capture_output=True, text=True)
    if out.returncode not in (0, 2):          # 2: over the 2 s wall budget (still a sample)
        raise RuntimeError('testreport-bench: %s' % out.stderr[-500:])
    j = json.loads([x for x in out.stdout.splitlines()
                    if x.startswith('testreport-bench ')][0].split(' ', 1)[1])
    r = {'junit_mb': [j['mb']], 'junit_parse_cpu_s': [j['parse_cpu_s']],
         'junit_parse_wall_s': [j['parse_wall_s']], 'junit_ingest_cpu_s': [j['ingest_cpu_s']],
         'junit_ingest_wall_s': [j['ingest_wall_s']]}
    path = junit_file(ARGS.junit_n)
    s = Kiln('junit', extra={'junit': path})
    s.start()
    ev = None
    try:
        s.start_worker(0)
        wait_until('worker attached', lambda: s.connected() >= 1, 120, 0.02, load_share=0.2)
        ev = WsEvents(s.url, ['builds/*/finished'])
        wait_builds(ev, [s.api.force(['junitcp'])[0]], 120)        # warm-up
        walls = {'junit100k': [], 'junitcp': []}
        cpus = {'junit100k': [], 'junitcp': []}
        for _ in range(ARGS.junit_reps):
            for name in ('junitcp', 'junit100k'):
                ev.forget()
                cpu0, t0 = proc_cpu(s.pid), now()
                brid = s.api.force([name])[0]
                # 5 % of the cases fail: the test step ends FAILURE (2)
                m = wait_builds(ev, [brid], 600, ok=(0, 2))[brid]
                walls[name].append(now() - t0)
                cpus[name].append(proc_cpu(s.pid) - cpu0)
        sets = s.api.get('builds/%d/test_result_sets' % m['buildid'])['test_result_sets']
        total = sum((x.get('tests_passed') or 0) + (x.get('tests_failed') or 0) +
                    (x.get('tests_skipped') or 0) for x in sets)
        if total != ARGS.junit_n:
            raise RuntimeError('junit: %d test results stored, not %d' % (total, ARGS.junit_n))
        base = statistics.median(walls['junitcp'])
        cbase = statistics.median(cpus['junitcp'])
        r.update({'junit_step_s': walls['junit100k'], 'junit_cp_s': walls['junitcp'],
                  'junit_step_extra_s': [w - base for w in walls['junit100k']],
                  'junit_step_cpu_s': cpus['junit100k'],
                  'junit_step_extra_cpu_s': [c - cbase for c in cpus['junit100k']]})
        return r
    finally:
        if ev:
            ev.close()
        s.stop()


def sc_logmask(cls, rep):
    """Kiln only: bench/logmask.sh (the masker alone, then two masters side by side, one
    with five secrets, on the 50 MB log step)."""
    out = subprocess.run(['sh', os.path.join(BENCH, 'logmask.sh'), KILN,
                          str(ARGS.logmask_reps)], capture_output=True, text=True,
                         timeout=3600)
    if out.returncode != 0:
        raise RuntimeError('logmask.sh: %s' % (out.stderr[-500:] or out.stdout[-500:]))
    lines = {x.split(' ', 1)[0]: json.loads(x.split(' ', 1)[1])
             for x in out.stdout.splitlines() if x.startswith('logmask-bench')}
    mb, e2e = lines['logmask-bench'], lines['logmask-bench-e2e']
    none, sec = e2e['none'], e2e['secrets']
    return {'mask_alone_none_s': [mb['s_nosecret']], 'mask_alone_5_s': [mb['s_5secrets']],
            'mask_step_none_s': none['wall'], 'mask_step_5_s': sec['wall'],
            'mask_cpu_none_s': none['cpu'], 'mask_cpu_5_s': sec['cpu'],
            'mask_wall_overhead_pct': [100 * e2e['overhead']],
            'mask_cpu_added_pct': [100 * (statistics.median(sec['cpu']) -
                                          statistics.median(none['cpu'])) /
                                   statistics.median(none['wall'])]}


SCENARIOS = {
    'ceiling': (sc_ceiling, ['machine']),
    'idle': (sc_idle, ['kiln', 'buildbot']),
    'latency': (sc_latency, ['kiln', 'buildbot']),
    'client': (sc_client, ['kiln']),
    'throughput': (sc_throughput, ['kiln', 'buildbot']),
    'log50m': (sc_log50m, ['kiln', 'buildbot']),
    'stall': (sc_stall, ['kiln']),
    'workers': (sc_workers, ['kiln', 'buildbot']),
    'api': (sc_api, ['kiln', 'buildbot']),
    'queue': (sc_queue, ['kiln', 'buildbot']),
    'changes': (sc_changes, ['kiln', 'buildbot']),
    'callgrind': (sc_callgrind, ['kiln']),
    'steps20': (sc_steps20, ['kiln', 'buildbot']),
    'upload': (sc_upload, ['kiln', 'buildbot']),
    'junit': (sc_junit, ['kiln']),
    'logmask': (sc_logmask, ['kiln']),
}
BB_REPS = {'throughput': 1, 'log50m': 1, 'workers': 1, 'api': 1, 'queue': 1, 'steps20': 1,
           'upload': 1}
ORDER = ['ceiling', 'idle', 'latency', 'client', 'throughput', 'log50m', 'stall', 'workers',
         'api', 'queue', 'changes', 'callgrind', 'steps20', 'upload', 'junit', 'logmask']


def reps_for(scn, system):
    if system == 'buildbot':
        return min(ARGS.reps, ARGS.bb_reps, BB_REPS.get(scn, 99))
    if scn == 'callgrind':
        return 1
    return ARGS.reps


def carry_over(res, skipped):
    """Keeps the samples of systems left out by --systems from the stored results of the
    scenario (e.g. a Kiln-only rerun keeps Buildbot's rows), naming where they came from."""
    p = os.path.join(RESULTS, res['scenario'] + '.json')
    if not skipped or not os.path.exists(p):
        return
    with open(p) as f:
        old = json.load(f)
    kept = [sy for sy in skipped if old.get('samples', {}).get(sy)]
    for sy in kept:
        res['samples'][sy] = old['samples'][sy]
        res['reps'][sy] = old.get('reps', {}).get(sy, 0)
    if kept:
        res['command'] += ' (%s rows from: %s, %s)' % (
            ', '.join(sy.capitalize() for sy in kept),
            old['command'].split(' (')[0], old['date'][:16])


def run_scenario(scn):
    fn, systems = SCENARIOS[scn]
    samples = {sy: {} for sy in systems}
    t0 = now()
    load0 = os.getloadavg()[0]
    for rep in range(ARGS.reps):
        for sy in systems:            # alternate the systems within each repetition
            if sy != 'machine' and sy not in ARGS.systems:
                continue
            if rep >= reps_for(scn, sy):
                continue
            log('%s: %s, repetition %d' % (scn, sy, rep + 1))
            cls = SYSTEMS.get(sy)
            r = fn(cls, rep)
            for k, v in r.items():
                samples[sy].setdefault(k, []).extend(v)
            log('  ' + ', '.join('%s=%s' % (k, fmt(summ(v)['median']))
                                 for k, v in r.items() if isinstance(v[0], (int, float))))
    res = {'scenario': scn, 'date': datetime.datetime.now().isoformat(timespec='seconds'),
           'command': os.environ.get('KILN_BENCH_CMD', 'bench/run'), 'seconds': now() - t0,
           'reps': {sy: reps_for(scn, sy) for sy in systems}, 'samples': samples,
           'loadavg': [load0, os.getloadavg()[0]]}
    carry_over(res, [sy for sy in systems if sy != 'machine' and sy not in ARGS.systems])
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, scn + '.json'), 'w') as f:
        json.dump(res, f, indent=1)
    return res


# ---------------------------------------------------------------- report

def summ(v):
    v = [x for x in v if isinstance(x, (int, float))]
    if not v:
        return {'min': None, 'median': None, 'max': None, 'n': 0}
    return {'min': min(v), 'median': statistics.median(v), 'max': max(v), 'n': len(v)}


def fmt(x):
    if x is None:
        return '–'
    if isinstance(x, str):
        return x
    a = abs(x)
    if a >= 1000:
        return '{:,.0f}'.format(x)
    if a >= 100:
        return '%.0f' % x
    if a >= 10:
        return '%.1f' % x
    if a >= 1:
        return '%.2f' % x
    return '%.3g' % x


# metric: (label, unit, higher_is_better)
METRICS = {
    'builds_per_s': ('sustained trivial builds, whole measurement', 'builds/s', True),
    'builds_per_s_window': ('sustained trivial builds, each 1 s window', 'builds/s', True),
    'builds_measured': ('builds completed during the measurement', '', True),
    'force_call_ms': ('one force call (10 builders) while busy', 'ms', False),
    'cpu_ms_per_build': ('master CPU per build', 'ms', False),
    'db_bytes_per_build': ('database growth per build', 'bytes', False),
    'force_all_s': ('time to submit the 20 force calls', 's', False),
    'force_started_ms': ('force → `builds/N/new` event on /ws (started)', 'ms', False),
    'force_answer_ms': ('force → JSON-RPC answer', 'ms', False),
    'client_wait_ms': ('`kiln force b0 --wait`: whole client process', 'ms', False),
    'client_exec_ms': ('`kiln version`: process start and exit only', 'ms', False),
    'force_started_lo_ms': ('last poll before the build was seen (lower bound)', 'ms', False),
    'force_finished_ms': ('force → `builds/N/finished` event on /ws', 'ms', False),
    'poll_ms': ('one status poll (the method\'s resolution)', 'ms', False),
    'ready_ports_ms': ('master start → ports file', 'ms', False),
    'ready_api_ms': ('master start → API answers', 'ms', False),
    'rss_master_noworker_mb': ('master RSS, idle, no worker', 'MB', False),
    'rss_master_mb': ('master RSS, idle, 1 worker attached', 'MB', False),
    'rss_worker_mb': ('worker RSS, idle, attached', 'MB', False),
    'idle_cpu_pct': ('master CPU while idle (5 s)', '% of a core', False),
    'spawn_per_s': ('posix_spawn+wait of `true`, all cores', '/s', True),
    'pipeline_50m_s': ('50 MB pipeline into /dev/null', 's', False),
    'ir_per_build': ('callgrind: master instructions per build (burst)', 'Ir', False),
    # log50m
    'step_s': ('50 MB log build, force → finished (each build of the series)', 's', False),
    'log_mb_per_s': ('log output stored, whole series', 'MB/s', True),
    'log_builds': ('log builds in the series', '', True),
    # stall (Kiln's KILN_LOOP_STATS)
    'stall_worst_ms': ('worst loop stall (one turn\'s busy time)', 'ms', False),
    'stall_worst_cpu_ms': ('most CPU time of the loop thread in one turn', 'ms', False),
    'stall_p99_ms': ('p99 of loop turns (power-of-two bucket edge)', 'ms', False),
    'stall_p50_ms': ('p50 of loop turns (power-of-two bucket edge)', 'ms', False),
    'stall_turns': ('loop turns over the master\'s life', '', True),
    'stall_busy_ms': ('loop busy time over the master\'s life', 'ms', False),
    'stall_wall_s': ('log step + burst: force → all done', 's', False),
    'stall_cpu_s': ('master CPU over that time', 's', False),
    'stall_reader_ms': ('one API reader request meanwhile (client-side)', 'ms', False),
    'stall_reader_n': ('API reader requests answered', '', True),
    'pipeline_s': ('the same pipeline into /dev/null (same rep)', 's', False),
    'step_vs_pipeline': ('log build ÷ bare pipeline', '×', False),
    'cpu_s': ('master CPU during the log build', 's', False),
    'stored_mb': ('database growth for the log', 'MB', False),
    'num_lines': ('lines stored', 'lines', True),
    'raw_fetch_s': ('GET logs/N/raw (whole log)', 's', False),
    'raw_mb': ('raw log size', 'MB', True),
    'tail1000_ms': ('GET logs/N/contents, last 1,000 lines', 'ms', False),
    # workers
    'attach_50_s': ('50 real workers: start → all attached', 's', False),
    'rss_50_mb': ('master RSS, 50 workers attached', 'MB', False),
    'idle_cpu_50_pct': ('master CPU, 50 workers, idle 10 s', '% of a core', False),
    'rss_workers_50_mb': ('RSS of the 50 worker processes together', 'MB', False),
    'attached_50_n': ('workers attached before the time-out', '', True),
    'attach_1000_s': ('1,000 loadgen connections → all attached', 's', False),
    'rss_1000_mb': ('master RSS, 1,000 attached', 'MB', False),
    'idle_cpu_1000_pct': ('master CPU, 1,000 attached, idle 10 s', '% of a core', False),
    'attach_10000_s': ('10,000 loadgen connections → all attached', 's', False),
    'rss_10000_mb': ('master RSS, 10,000 attached', 'MB', False),
    'idle_cpu_10000_pct': ('master CPU, 10,000 attached, idle 10 s', '% of a core', False),
    'ready_50_ms': ('master start → ready, 50 workers declared (fresh database)', 'ms', False),
    'ready_1000_ms': ('master start → ready, 1,000 workers declared', 'ms', False),
    'ready_10000_ms': ('master start → ready, 10,000 workers declared', 'ms', False),
    'anon_master_mb': ('master private memory (RssAnon), idle, 1 worker', 'MB', False),
    'anon_worker_mb': ('worker private memory (RssAnon), idle', 'MB', False),
    # api
    'builds_1k_ms': ('GET builds?limit=100, 1,000 builds', 'ms', False),
    'builds_desc_1k_ms': ('GET builds?order=-buildid&limit=100, 1,000 builds', 'ms', False),
    'builders_1k_ms': ('GET builders, 1,000 builds', 'ms', False),
    'builds_100k_ms': ('GET builds?limit=100, 100,000 builds', 'ms', False),
    'builds_desc_100k_ms': ('GET builds?order=-buildid&limit=100, 100,000 builds', 'ms',
                            False),
    'builders_100k_ms': ('GET builders, 100,000 builds', 'ms', False),
    'api_builds_total': ('builds in the database', '', True),
    # queue
    'queued': ('requests queued', '', True),
    'submit_s': ('time to queue them (force calls of 10 builders)', 's', False),
    'restart_ready_ms': ('restart → ready (ports file; Buildbot: API)', 'ms', False),
    'restart_api_ms': ('restart → API answers', 'ms', False),
    'rss_queued_mb': ('master RSS after restart with the queue', 'MB', False),
    'dispatch_early_ms': ('time per build, builds 100–600 (Buildbot 50–100)', 'ms', False),
    'dispatch_late_ms': ('time per build, builds 10,000–10,500', 'ms', False),
    'dispatch_ratio': ('late ÷ early time per build', '×', False),
    # changes
    'hook_answer_ms': ('change hook POST → answered', 'ms', False),
    'hook_started_ms': ('change hook POST → build started (poll 1 ms)', 'ms', False),
    'hook_started_lo_ms': ('last poll before the build was seen (lower bound)', 'ms', False),
    'hook_finished_ms': ('change hook POST → build finished', 'ms', False),
    'hook_poll_ms': ('one `builds?order=-buildid&limit=1` poll', 'ms', False),
    'changes_n': ('changes posted (Kiln 10,000, Buildbot 500)', '', True),
    'changes_per_s': ('changes ingested through the hook, 4 connections', 'changes/s', True),
    'changes_cpu_ms': ('master CPU per change', 'ms', False),
    'rss_changes_before_mb': ('master RSS before the changes (hook only, no worker)', 'MB',
                              False),
    'rss_changes_mb': ('master RSS after the changes', 'MB', False),
    # steps20 (issue 10)
    'p1_cpu_ms': ('master CPU per build, 1 step (`p1`)', 'ms', False),
    'p20_cpu_ms': ('master CPU per build, 20 steps with properties (`p20`)', 'ms', False),
    'p20_vs_p1': ('20-step ÷ 1-step master CPU per build', '×', False),
    'p1_wall_ms': ('wall time per build, 1 step (builds forced at once)', 'ms', False),
    'p20_wall_ms': ('wall time per build, 20 steps (builds forced at once)', 'ms', False),
    'steps20_builds': ('builds of each builder per repetition', '', True),
    # upload (issue 10)
    'upload_s': ('1 GiB upload build, force → finished', 's', False),
    'loopcopy_s': ('raw loopback copy of the same file (bench/loopcopy.c)', 's', False),
    'upload_vs_raw': ('upload speed ÷ raw loopback copy speed', '×', True),
    'upload_mb_per_s': ('upload', 'MB/s', True),
    'loopcopy_mb_per_s': ('raw loopback copy', 'MB/s', True),
    'upload_cpu_s': ('master CPU per upload', 's', False),
    'upload_worker_cpu_s': ('worker CPU per upload', 's', False),
    'upload_total_cpu_s': ('master + worker CPU per upload', 's', False),
    'loopcopy_cpu_s': ('CPU of the raw copy (both processes)', 's', False),
    'upload_rss_before_mb': ('master RSS before the upload', 'MB', False),
    'upload_rss_peak_mb': ('master RSS, highest sample during the upload (every 20 ms)', 'MB',
                           False),
    'upload_rss_after_mb': ('master RSS after the upload', 'MB', False),
    'upload_rss_growth_mb': ('master RSS growth during the upload (peak − before)', 'MB',
                             False),
    # junit (issue 10)
    'junit_mb': ('JUnit file (100,000 test cases)', 'MB', True),
    'junit_parse_cpu_s': ('parse alone (`testreport.c`), CPU', 's', False),
    'junit_parse_wall_s': ('parse alone, wall', 's', False),
    'junit_ingest_cpu_s': ('parse + store (`testingest.c` → SQLite), CPU', 's', False),
    'junit_ingest_wall_s': ('parse + store, wall', 's', False),
    'junit_step_s': ('build: `test` step copying and ingesting the file, force → finished',
                     's', False),
    'junit_cp_s': ('build: `shell` step doing the same copy only, force → finished', 's',
                   False),
    'junit_step_extra_s': ('ingest through the step: test build − copy-only build (wall)', 's',
                           False),
    'junit_step_cpu_s': ('master CPU for the `test` build', 's', False),
    'junit_step_extra_cpu_s': ('master CPU for the ingest (test build − copy-only build)', 's',
                               False),
    # logmask (issue 10)
    'mask_alone_none_s': ('50 MB through the masker alone, no secret (CPU)', 's', False),
    'mask_alone_5_s': ('50 MB through the masker alone, 5 secrets (CPU)', 's', False),
    'mask_step_none_s': ('50 MB log step, no secret: force → finished', 's', False),
    'mask_step_5_s': ('50 MB log step, 5 secrets: force → finished', 's', False),
    'mask_cpu_none_s': ('master CPU per 50 MB log build, no secret', 's', False),
    'mask_cpu_5_s': ('master CPU per 50 MB log build, 5 secrets', 's', False),
    'mask_wall_overhead_pct': ('masking: added wall time (medians)', '%', False),
    'mask_cpu_added_pct': ('masking: added master CPU ÷ the step\'s wall time (medians)', '%',
                           False),
}


def load_results():
    res = {}
    for scn in ORDER:
        p = os.path.join(RESULTS, scn + '.json')
        if os.path.exists(p):
            with open(p) as f:
                res[scn] = json.load(f)
    return res


def med(res, scn, sy, metric):
    try:
        v = summ(res[scn]['samples'][sy][metric])['median']
    except KeyError:
        return None
    return None if v is None else round(v, 6)   # 0.1 + 0.2 style float noise


def targets(res):
    """[(target, kiln value, met?)] from the issue's list."""
    rows = []

    def add(text, value, ok, unit=''):
        if value is None:
            rows.append((text, 'not measured', None))
        else:
            rows.append((text, '%s %s' % (fmt(value), unit), ok))

    kt = med(res, 'throughput', 'kiln', 'builds_per_s')
    bt = med(res, 'throughput', 'buildbot', 'builds_per_s')
    sp = med(res, 'ceiling', 'machine', 'spawn_per_s')
    add('throughput ≥ 200× Buildbot', kt / bt if kt and bt else None,
        kt and bt and kt / bt >= 200, '×')
    add('throughput ≥ 1/3 of the spawn ceiling', kt / sp if kt and sp else None,
        kt and sp and kt / sp >= 1 / 3, 'of ceiling')
    v = med(res, 'throughput', 'kiln', 'cpu_ms_per_build')
    add('master CPU per trivial build ≤ 0.3 ms', v, v is not None and v <= 0.3, 'ms')
    v = med(res, 'latency', 'kiln', 'force_started_ms')
    add('force → started ≤ 1 ms (median)', v, v is not None and v <= 1, 'ms')
    v = med(res, 'latency', 'kiln', 'force_finished_ms')
    add('force → finished ≤ 5 ms (median)', v, v is not None and v <= 5, 'ms')
    v = med(res, 'log50m', 'kiln', 'step_vs_pipeline')
    add('50 MB log step ≤ 1.5× the raw pipeline', v, v is not None and v <= 1.5, '×')
    v = med(res, 'log50m', 'kiln', 'tail1000_ms')
    add('last 1,000 lines ≤ 20 ms', v, v is not None and v <= 20, 'ms')
    v = med(res, 'idle', 'kiln', 'rss_master_mb')
    add('idle RSS master ≤ 8 MB', v, v is not None and v <= 8, 'MB')
    v = med(res, 'idle', 'kiln', 'rss_worker_mb')
    add('idle RSS worker ≤ 3 MB', v, v is not None and v <= 3, 'MB')
    v = med(res, 'idle', 'kiln', 'ready_ports_ms')
    add('master ready ≤ 50 ms (ports file)', v, v is not None and v <= 50, 'ms')
    v = med(res, 'workers', 'kiln', 'attach_10000_s')
    add('10,000 workers attached ≤ 30 s', v, v is not None and v <= 30, 's')
    v = med(res, 'workers', 'kiln', 'rss_10000_mb')
    add('master RSS with 10,000 workers ≤ 300 MB', v, v is not None and v <= 300, 'MB')
    v = med(res, 'workers', 'kiln', 'idle_cpu_10000_pct')
    add('idle CPU with 10,000 workers ≈ 0 (≤ 1 %)', v, v is not None and v <= 1, '%')
    v = med(res, 'api', 'kiln', 'builds_100k_ms')
    add('GET builds?limit=100 ≤ 1 ms at 100,000 builds', v, v is not None and v <= 1, 'ms')
    v = med(res, 'api', 'kiln', 'builders_100k_ms')
    add('GET builders ≤ 1 ms at 100,000 builds', v, v is not None and v <= 1, 'ms')
    v = med(res, 'queue', 'kiln', 'restart_ready_ms')
    add('100,000 queued: ready ≤ 2 s after restart', v, v is not None and v <= 2000, 'ms')
    v = med(res, 'queue', 'kiln', 'dispatch_ratio')
    add('dispatch flat (late/early time per build ≤ 1.5)', v, v is not None and v <= 1.5, '×')
    v = med(res, 'changes', 'kiln', 'hook_started_ms')
    add('change hook → build started ≤ 2 ms (median)', v, v is not None and v <= 2, 'ms')
    v = med(res, 'changes', 'kiln', 'changes_per_s')
    add('≥ 5,000 changes/s through the change hook', v, v is not None and v >= 5000,
        'changes/s')
    # issue 10
    v = med(res, 'steps20', 'kiln', 'p20_vs_p1')
    add('20-step build with properties: master CPU ≤ 2× a 1-step build\'s', v,
        v is not None and v <= 2, '×')
    v = med(res, 'upload', 'kiln', 'upload_vs_raw')
    add('1 GiB upload ≥ 80 % of a raw loopback copy\'s speed', v,
        v is not None and v >= 0.8, '× the copy')
    v = med(res, 'upload', 'kiln', 'upload_rss_growth_mb')
    add('master RSS flat during the 1 GiB upload (peak − before ≤ 10 MB)', v,
        v is not None and v <= 10, 'MB')
    v = med(res, 'junit', 'kiln', 'junit_ingest_cpu_s')
    add('100,000 JUnit test cases ingested ≤ 2 s (CPU of parse + store)', v,
        v is not None and v <= 2, 's')
    v = med(res, 'junit', 'kiln', 'junit_ingest_wall_s')
    add('100,000 JUnit test cases ingested ≤ 2 s (wall)', v, v is not None and v <= 2, 's')
    # masking: medians over all builds of all repetitions (single builds swing with the load)
    w0, w5 = med(res, 'logmask', 'kiln', 'mask_step_none_s'), med(res, 'logmask', 'kiln',
                                                                   'mask_step_5_s')
    c0, c5 = med(res, 'logmask', 'kiln', 'mask_cpu_none_s'), med(res, 'logmask', 'kiln',
                                                                  'mask_cpu_5_s')
    alone = med(res, 'logmask', 'kiln', 'mask_alone_5_s')
    v = 100 * (w5 / w0 - 1) if w0 and w5 else None
    add('secret masking adds ≤ 10 % to the 50 MB log step (wall, medians of all builds)', v,
        v is not None and v <= 10, '%')
    v = 100 * (c5 - c0) / w0 if w0 and c0 is not None and c5 is not None else None
    add('secret masking: added master CPU ≤ 10 % of the log step\'s time (medians)', v,
        v is not None and v <= 10, '%')
    v = 100 * alone / w0 if w0 and alone is not None else None
    add('secret masking: the masker\'s own CPU on 50 MB ≤ 10 % of the log step\'s time', v,
        v is not None and v <= 10, '%')
    return rows


def write_report():
    res = load_results()
    L = []
    mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    cpu = ''
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    kv = subprocess.run([os.path.join(KILN, 'kiln'), 'version'], capture_output=True,
                        text=True).stdout.strip() if KILN else ''
    L += ['# Kiln performance', '',
          'Generated by `bench/run` (see `bench/README.md`); every number below comes from the '
          'stored samples in `bench/results/*.json`. Kiln and Buildbot 3.7 (Debian) run on the '
          'same machine on loopback, driven the same way from outside: JSON-RPC `force` over '
          'HTTP, the master\'s own `/ws` events (`latency`, `throughput`) and polling of the '
          'REST API (the rest). The systems alternate within each repetition. Each section '
          'names the command that produced it and the machine\'s load while it ran.', '',
          '## Machine', '',
          '- %d CPUs (`nproc`), %.1f GiB memory, %s' % (os.cpu_count(), mem, cpu or 'cpu unknown'),
          '- %s %s, Python %s' % (platform.system(), platform.release(), platform.python_version()),
          '- Kiln: %s, meson build type `%s` (build dir `build-bench`)' % (
              kv or 'kiln', ARGS.buildtype),
          '- Buildbot: Debian `buildbot` / `buildbot-worker` 3.7.0, msgpack_experimental_v7 '
          'protocol, SQLite, stub www plugin (REST only)', '']
    L += ['## Results', '',
          'min / median / max over all samples (n = samples; Buildbot runs fewer repetitions, '
          'it is slow). "Kiln ×" is how many times better Kiln is (>1 = Kiln better).', '']
    for scn in ORDER:
        if scn not in res or scn == 'callgrind':
            continue
        r = res[scn]
        L += ['### %s' % scn, '',
              '`%s` — %s, %.0f s; repetitions: %s' % (
                  r['command'], r['date'], r['seconds'],
                  ', '.join('%s %d' % kv2 for kv2 in r['reps'].items())), '']
        if 'loadavg' in r:
            L += ['Machine load while it ran: 1-minute load average %.1f at the start, %.1f at '
                  'the end, on %d CPUs (the machine was shared with other work; wall-clock '
                  'rows move with it).' % (r['loadavg'][0], r['loadavg'][1], os.cpu_count()),
                  '']
        S = r['samples']
        sys_names = [sy for sy in ('machine', 'kiln', 'buildbot') if sy in S]
        if sys_names == ['machine']:
            L += ['| metric | unit | min | median | max | n |', '|---|---|---|---|---|---|']
            for m, v in S['machine'].items():
                lab, unit, _ = METRICS.get(m, (m, '', False))
                s = summ(v)
                L.append('| %s | %s | %s | %s | %s | %d |' % (lab, unit, fmt(s['min']),
                         fmt(s['median']), fmt(s['max']), s['n']))
        else:
            L += ['| metric | unit | Kiln min / median / max (n) | Buildbot min / median / max (n) '
                  '| Kiln × |', '|---|---|---|---|---|']
            metrics = []
            for sy in sys_names:
                for m in S[sy]:
                    if m not in metrics and m in METRICS or (m not in metrics and
                                                             m in EXTRA_METRICS):
                        metrics.append(m)
            for m in metrics:
                lab, unit, hib = METRICS.get(m) or EXTRA_METRICS[m]
                cells = []
                meds = {}
                for sy in ('kiln', 'buildbot'):
                    s = summ(S.get(sy, {}).get(m, []))
                    meds[sy] = s['median']
                    cells.append('–' if not s['n'] else '%s / **%s** / %s (%d)' % (
                        fmt(s['min']), fmt(s['median']), fmt(s['max']), s['n']))
                k, b = meds['kiln'], meds['buildbot']
                ratio = '–'
                if k and b and k > 0 and b > 0 and m not in NO_RATIO:
                    ratio = fmt(k / b if hib else b / k)
                L.append('| %s | %s | %s | %s | %s |' % (lab, unit, cells[0], cells[1], ratio))
        notes = NOTES.get(scn)
        if notes:
            L += [''] + notes
        L.append('')
    L += ['## Targets (issues 4, 5 and 10)', '', '| target | Kiln (median) | |', '|---|---|---|']
    for text, val, ok in targets(res):
        L.append('| %s | %s | %s |' % (text, val, '–' if ok is None else
                                         ('met' if ok else '**missed**')))
    loaded = ['`%s` (%s, load average %.0f–%.0f)' % (scn, res[scn]['date'][:10],
                                                     min(res[scn]['loadavg']),
                                                     max(res[scn]['loadavg']))
              for scn in ORDER if scn in res and 'loadavg' in res[scn] and
              max(res[scn]['loadavg']) > os.cpu_count()]
    if loaded:
        L += ['', 'Measured while the machine had more runnable work than its %d CPUs: %s. '
              'Their wall-clock rows (rates, latencies, times) say more about the load than '
              'about Kiln, so a **missed** on them is not a verdict until they are rerun on a '
              'quiet machine; CPU time per build is inflated by the contention too (the '
              'callgrind instruction count below is the load-independent figure).'
              % (os.cpu_count(), ', '.join(loaded))]
    L.append('')
    if 'callgrind' in res:
        r = res['callgrind']
        k = r['samples']['kiln']
        L += ['## Profile: Kiln master on `throughput` (callgrind)', '',
              '`%s` — %s. Instructions counted only during the %d-build burst '
              '(counters zeroed with `callgrind_control -z` after the worker attached and one '
              'warm-up build, dumped with `callgrind_control -d` when the burst ended; '
              'completions counted from `/ws` events, so no API polling is included and the '
              'count does not depend on how long the burst took). Full annotation: '
              '`bench/results/callgrind-throughput.txt`.' % (
                  r['command'], r['date'], ARGS.throughput_n), '',
              '- instructions per build: **%s**' % fmt(summ(k['ir_per_build'])['median']), '',
              '| Ir per build (self) | function |', '|---|---|']
        for ir, fn in k['top_self'][:20]:
            L.append('| %s | `%s` |' % (fmt(ir), fn))
        L.append('')
    L += PROFILE_NOTES
    path = os.path.join(SRC, 'docs', 'PERFORMANCE.md')
    text = keep_marked('\n'.join(L).rstrip() + '\n', path)
    with open(path, 'w') as f:
        f.write(text)
    log('wrote docs/PERFORMANCE.md')


MARKED = re.compile(r'(<!-- (\w+): written by [^>]*-->\n).*?(<!-- /\2 -->)', re.S)


def keep_marked(text, path):
    """TEXT with each section between `<!-- NAME: written by ... -->` and `<!-- /NAME -->`
    (siege.py's, eta.py's) replaced by that section as it stands in PATH, so regenerating
    the report keeps what the other scripts wrote."""
    try:
        with open(path) as f:
            old = {m.group(2): m.group(0) for m in MARKED.finditer(f.read())}
    except OSError:
        return text
    return MARKED.sub(lambda m: old.get(m.group(2), m.group(0)), text)


EXTRA_METRICS = {}
NO_RATIO = {'steps20_builds', 'p20_vs_p1', 'loopcopy_s', 'loopcopy_cpu_s', 'loopcopy_mb_per_s', 'junit_mb',
            'builds_measured', 'log_builds', 'force_call_ms', 'queued', 'changes_n', 'api_builds_total', 'num_lines', 'raw_mb', 'pipeline_s'}
NOTES = {
    'ceiling': ['The ceiling is what this machine can do at all: Kiln\'s throughput is '
                'compared with the spawn rate, its 50 MB log step with the bare pipeline.'],
    'latency': ['Timed by the master\'s own events: the driver keeps a WebSocket on `/ws` '
                'subscribed (Buildbot\'s `startConsuming`) to `builds/*/new` and '
                '`builds/*/finished`; a reader thread timestamps each event as it arrives, and '
                'the sample is force (JSON-RPC call sent) → the event of that build request. '
                'No polling, so the figure is the master\'s, plus loopback and one Python '
                'thread wake-up. One build at a time on one idle worker.'],
    'client': ['The wall time of the `kiln` client process as a user runs it, '
               '`KILN_URL=... kiln force b0 --wait` on a trivial build (process start, the '
               'force call, following the request until the build finishes, exit), and '
               '`kiln version` for the cost of starting the process at all. This measures '
               'whatever the binary does: in this tree `--wait` keeps a WebSocket on the '
               'master\'s `/ws` (`src/client/ws.c`) and re-reads the request over REST when '
               'an event arrives (polling only if `/ws` cannot be used), so the figure is '
               'process start + force + the build + a few REST reads. Before this change '
               '`--wait` polled every 150 ms: 170 ms median on a quiet machine (issue 8); '
               'Laminar 1.4\'s `laminarc run` took 21 ms for the same trivial job.'],
    'throughput': ['Sustained: one worker with `max_builds = 10`, builders b0..b9 each one '
                   '`true` step. After one warm-up build the driver keeps 100–109 requests '
                   'queued (JSON-RPC force of all 10 builders whenever fewer are queued, '
                   'checked every 10 ms) and counts finished builds from the master\'s '
                   '`builds/*/finished` events on `/ws` (no polling of the API), runs 2 s of '
                   'builds as a warm-up, then measures 10 s: the row '
                   '"each 1 s window" is min / median / max over the whole 1 s windows (n = '
                   'windows), "whole measurement" is completed requests ÷ time. CPU is the '
                   'master process\'s utime+stime over the measurement (10 ms clock ticks); '
                   'database growth is the SQLite file\'s pages in use (WAL included) after '
                   'minus before, per build.'],
    'log50m': ['Sustained: one warm-up log build, then 50 MB log builds one after the other '
               'until 10 s have passed (at least 2 builds); each build is a sample of '
               'force → finished (polling every 10 ms), so min / median / max are over the '
               'builds. The bare pipeline is timed before and after the series; "log build ÷ '
               'bare pipeline" divides each build by their median. Master CPU and database '
               'growth are per build (Kiln stores zstd-compressed chunks; the text is one '
               'repeated character, so it compresses extremely well on both). Buildbot takes '
               'far longer per build, so its series is the minimum of 2 builds.'],
    'stall': ['Kiln only (`KILN_LOOP_STATS`, written by the master at exit; '
              '`src/master/loop-stall.c`): a loop turn\'s busy time is its wall time minus '
              'the time libuv spent blocked waiting for events (`uv_metrics_idle_time`). '
              'Load: one worker (`max_builds = 10`); a 50 MB log build, and 0.1 s into it '
              '200 trivial builds forced at once (20 force calls), while two API readers '
              'loop over `builds?order=-buildid&limit=100` + `builders` and '
              '`buildrequests?complete=false` + `workers` (5 ms pause). Figures cover the '
              'master\'s whole life (start-up and shutdown included); p50/p99 are the upper '
              'edges of power-of-two histogram buckets. On a loaded machine a turn\'s wall '
              'time also holds time the master was runnable but not scheduled; the row "most '
              'CPU time of the loop thread in one turn" (`CLOCK_THREAD_CPUTIME_ID`) is the '
              'part Kiln itself spent.'],
    'workers': ['Kiln: 50 `kiln-worker` processes, then (fresh masters) 1,000 and 10,000 '
                'connections from `bench/loadgen.c`; Buildbot: 50 `buildbot-worker` processes '
                '(twistd). "Attached" = the API lists the worker with a non-empty '
                '`connected_to`; the poll of `workers?field=name&field=connected_to` pauses '
                '4× its own duration (the server is busy with polls ≤ 20 % of the time). '
                'Every builder lists every worker (11 builders). Ready: start → ports file on '
                'a fresh database with that many workers declared (Buildbot: → API).'],
    'api': ['Rows are copied from a real build while the master is stopped; medians of 50 '
            '(Kiln) / 10 (Buildbot) requests on a keep-alive connection with '
            '`Accept: application/json`.'],
    'queue': ['Kiln queues 100,000 requests, Buildbot 1,000 (its force call takes ~0.2 s and '
              'its builds run at ~3/s, so 100,000 would take hours; "late" is not measured for '
              'it). Time per build = time between the polls that saw the build counts (by '
              '`builds?order=-buildid&limit=1`, every 20 ms) reach both ends of the range.'],
    'changes': ['1. Both masters get a single-branch scheduler on branch `main` with no '
                'tree-stable timer triggering `b0` (Kiln: `change_hook = {}` and `single_branch '
                '{ name = "sb", builders = { "b0" }, change_filter = { branch = "main" } }`; '
                'Buildbot: `change_hook_dialects = {\'base\': True}` and '
                '`SingleBranchScheduler(treeStableTimer=None)`) and one worker. Each sample '
                'posts one change (`POST /change_hook/base`, form fields author, branch=main, '
                'revision, files, comments, repository) and polls '
                '`builds?order=-buildid&limit=1` until a new build appears (started) and '
                'completes (finished); pacing as in `latency` (1 ms, and at least the poll\'s '
                'own duration). Kiln 20, Buildbot 5 samples per repetition, after one warm-up. '
                'The lower bound of "started" is the hook\'s answer when the first poll after '
                'it already sees the build.',
                '2. Ingestion: a fresh master with the change hook only (no scheduler, no '
                'worker). Kiln: 10,000 changes from `bench/changes-load.c` (C, 4 keep-alive '
                'connections, one thread each); Buildbot: 500 changes from 4 Python '
                'keep-alive connections (its answers are chunked, which `changes-load.c` does '
                'not parse; at Buildbot\'s rate the client is not what is measured). '
                'Changes/s = posted ÷ wall time from the first request to the last answer; '
                'every change is counted back through `GET changes`. RSS is VmRSS after the '
                'last answer; CPU is the master\'s utime+stime over the run. The load generator\'s '
                '4 threads and the master share the machine\'s cores, so changes/s moves with '
                'whatever else runs; CPU per change is the steadier figure.'],
    'steps20': ['Issue 10: one worker (`max_builds = 10`); builder `p1` is one shell step '
                '`interpolate("echo %(prop:buildnumber)s %(prop:branch:-none)s")`, builder '
                '`p20` is a `set_property` (`stage` = `interpolate("s-%(prop:buildnumber)s")`), '
                '18 shell steps `interpolate("echo %(prop:buildnumber)s %(prop:branch:-none)s '
                '%(prop:stage)s")` and one shell step `echo $BN $STAGE` with `env` rendered '
                'from properties; Buildbot runs the same steps with `util.Interpolate`, '
                '`SetProperty` and `ShellCommand(logEnviron=False)` '
                '(`bench/buildbot-master.cfg`, `BB_STEPS20`). Per repetition: 2 warm-up builds '
                'of each, then N builds of `p1` forced at once (Kiln 100, Buildbot 10; '
                '`--steps-n`, `--bb-steps-n`), waited for by their `builds/N/finished` events '
                'on `/ws`, then N of `p20`; master CPU = utime+stime of the master process '
                '(`/proc/PID/stat`) over each series ÷ N, force calls included. The last `p20` '
                'build\'s logs are checked for the rendered values.'],
    'upload': ['Issue 10: a builder whose one step uploads a 1 GiB file (random bytes, '
               'absolute `workersrc` in the throwaway directory) from the worker to the master '
               '(Kiln `file_upload`, Buildbot `FileUpload`; both 256 KiB blocks, msgpack over '
               'WebSocket on loopback; `kiln-worker` keeps 4 writes in flight and Kiln\'s master '
               'answers each once queued while ≤ 2 MiB wait for the disk, Buildbot\'s worker '
               'waits for each answer). Each sample: the raw loopback copy first '
               '(`bench/loopcopy.c`: one process reads the file in 256 KiB blocks into a TCP '
               'socket on 127.0.0.1, the other writes what arrives to a file, no fsync, as the '
               'master does none), then force → the build\'s `finished` event on `/ws`. The '
               'uploaded file is checked (size and last MiB) and removed. RSS is the master\'s '
               'VmRSS sampled every 20 ms from `/proc/PID/status` during the upload. Kiln 2 '
               'uploads per repetition (`--upload-n`), Buildbot 1.'],
    'junit': ['Issue 10, Kiln only (Buildbot 3.7 has no JUnit parser). (1) '
              '`bench/testreport-bench.c` (built by `bench/run` against `build-bench`\'s '
              'static libraries): a pytest-shaped JUnit file of 100,000 test cases (5 % '
              'failing with a traceback, 3 % skipped) fed in 64 KiB pieces to the parser '
              'alone, then through `testingest.c` into a fresh SQLite file (one `test_names` '
              'and one `test_results` row per case, batches of 2,000). (2) End to end, one '
              'master and one `kiln-worker`: a `test` step whose command copies the same file '
              'into its workdir and whose `reports = { "junit.xml" }` streams it to the master '
              '(FAILURE: 5 % of the cases fail), against a build whose `shell` step does the '
              'same copy only; the difference is the ingest through the step. The stored '
              'results are counted back from `test_result_sets`.'],
    'logmask': ['Issue 10, Kiln only: `bench/logmask.sh BUILD 3`. (1) '
                '`bench/logmask-bench.c`: 50 MB of compiler-like output through `logmask.c` '
                'alone in 64 KiB pieces, best of 3, CPU time. (2) Two masters side by side, '
                'one with no secret and one with five (a token, a password with URL-encodable '
                'bytes, an access key, a URL with credentials, a 3-line private key), each '
                'masked with its lines, percent-encoded and base64 forms; a shell step prints '
                '50 MB of the same kind of output (the secrets in it); builds alternate between '
                'the masters (3 each after a warm-up), `kiln force --wait`. Added wall time = '
                'median with ÷ median without − 1; added CPU = the master\'s extra CPU per '
                'build ÷ the no-secret build\'s wall time.'],
    'idle': ['Ready: from `exec` of the master to the ports file (Kiln only) and to the first '
             '200 answer of `GET /api/v2`. RSS is VmRSS after 3 s idle with one worker '
             'attached; CPU over the next 5 s.'],
}
PROFILE_NOTES = []
if os.path.exists(os.path.join(BENCH, 'profile-notes.md')):
    with open(os.path.join(BENCH, 'profile-notes.md')) as _f:
        PROFILE_NOTES = ['', _f.read().rstrip()]


def main():
    global ARGS, TMP, TOOLS, KILN
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('scenarios', nargs='*')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--bb-reps', type=int, default=2, help='repetitions for Buildbot (slow)')
    ap.add_argument('--systems', default='kiln,buildbot')
    ap.add_argument('--latency-n', type=int, default=50)
    ap.add_argument('--bb-latency-n', type=int, default=20)
    ap.add_argument('--throughput-n', type=int, default=200,
                    help='builds in the callgrind burst')
    ap.add_argument('--warmup-s', type=float, default=2,
                    help='throughput: seconds of sustained builds before measuring')
    ap.add_argument('--sustain-s', type=float, default=10,
                    help='throughput and log50m: seconds measured')
    ap.add_argument('--queue-low', type=int, default=100,
                    help='throughput: requests kept queued')
    ap.add_argument('--log-min', type=int, default=2, help='log50m: at least this many builds')
    ap.add_argument('--client-n', type=int, default=20)
    ap.add_argument('--stall-burst', type=int, default=200,
                    help='stall: builds forced during the log step')
    ap.add_argument('--loadgen-n', default='1000,10000',
                    help='load-generator connection counts for Kiln in `workers`')
    ap.add_argument('--attach-timeout', type=float, default=120)
    ap.add_argument('--bb-attach-timeout', type=float, default=300)
    ap.add_argument('--api-builds', type=int, default=100000)
    ap.add_argument('--queue-n', type=int, default=100000)
    ap.add_argument('--bb-queue-n', type=int, default=1000)
    ap.add_argument('--queue-timeout', type=float, default=300)
    ap.add_argument('--changes-lat-n', type=int, default=20,
                    help='hook → build samples per repetition (Kiln) in `changes`')
    ap.add_argument('--bb-changes-lat-n', type=int, default=5)
    ap.add_argument('--changes-n', type=int, default=10000,
                    help='changes posted per repetition (Kiln) in `changes`')
    ap.add_argument('--bb-changes-n', type=int, default=500)
    ap.add_argument('--steps-n', type=int, default=100,
                    help='steps20: builds of each builder per repetition (Kiln)')
    ap.add_argument('--bb-steps-n', type=int, default=10)
    ap.add_argument('--steps-timeout', type=float, default=900)
    ap.add_argument('--upload-mb', type=int, default=1024, help='upload: MiB uploaded')
    ap.add_argument('--upload-n', type=int, default=2,
                    help='upload: uploads per repetition (Kiln; Buildbot 1)')
    ap.add_argument('--upload-timeout', type=float, default=900)
    ap.add_argument('--junit-n', type=int, default=100000, help='junit: test cases')
    ap.add_argument('--junit-reps', type=int, default=2,
                    help='junit: end-to-end builds of each kind per repetition')
    ap.add_argument('--logmask-reps', type=int, default=3,
                    help='logmask: builds per master (bench/logmask.sh REPS)')
    ap.add_argument('--kiln-build', required=True)
    ap.add_argument('--tools', required=True)
    ap.add_argument('--buildtype', default='?')
    ap.add_argument('--report-only', action='store_true')
    ap.add_argument('--keep', action='store_true', help='keep the throwaway directories')
    ARGS = ap.parse_args()
    ARGS.systems = ARGS.systems.split(',')
    ARGS.loadgen_n = [int(x) for x in ARGS.loadgen_n.split(',') if x]
    KILN, TOOLS = ARGS.kiln_build, ARGS.tools
    if ARGS.report_only:
        write_report()
        return
    scns = ARGS.scenarios or [s for s in ORDER if s in SCENARIOS]
    for s in scns:
        if s not in SCENARIOS:
            sys.exit('unknown scenario %r (known: %s)' % (s, ', '.join(SCENARIOS)))
    raise_nofile()
    TMP = tempfile.mkdtemp(prefix='kiln-bench-')
    try:
        for s in scns:
            run_scenario(s)
            write_report()
    finally:
        if ARGS.keep:
            log('kept', TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)


if __name__ == '__main__':
    main()
