#!/usr/bin/python3
"""`bench/run siege`: the API's latency while the master is besieged (issue 9).

For each system (Kiln, then Buildbot 3.7, alternating per repetition) one master with one
worker is started by bench/driver.py's classes, and the driver measures fresh-connection
latencies of `GET /api/v2/builders` and of a JSON-RPC `force` (of `b0`), first on a quiet
master, then while these stay open:

- 100 `/ws` clients that subscribed to every build, buildset and request event and never
  read (receive buffer 4 KiB);
- 1,000 slow HTTP connections to the API port: a third silent after connecting, a third
  sending a request's headers one byte every 5 s, a third sending a POST's declared
  1,000-byte body one byte every 5 s; one the master closes is opened again.

Every wait has a timeout (connect, upgrade, each request: --timeout, default 10 s), so the
scenario ends even when a master never answers; a request that timed out counts as the
timeout and is counted in `timeouts`.  Results: bench/results/siege.json and the `siege`
section of docs/PERFORMANCE.md (rewritten between its markers).  Standard library only.
"""
import argparse
import http.client
import json
import os
import selectors
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402  (the Kiln/Buildbot classes and helpers)

MARK_BEGIN = '<!-- siege: written by bench/siege.py -->'
MARK_END = '<!-- /siege -->'
TRICKLE_S = 5.0


def host_port(url):
    h, p = url.split('//', 1)[1].rsplit(':', 1)
    return h, int(p)


def timed_request(url, method, path, body, timeout):
    """One request on a new connection: (ms, ok).  A timeout or error counts as timeout."""
    h, p = host_port(url)
    t0 = time.perf_counter()
    c = http.client.HTTPConnection(h, p, timeout=timeout)
    try:
        hdrs = {'Accept': 'application/json'}
        if body is not None:
            hdrs['Content-Type'] = 'application/json'
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        r.read()
        ok = r.status == 200
    except (OSError, http.client.HTTPException):
        ok = False
    finally:
        c.close()
    ms = (time.perf_counter() - t0) * 1000
    return (ms if ok else max(ms, timeout * 1000)), ok


FORCE = json.dumps({'jsonrpc': '2.0', 'id': 1, 'method': 'force',
                    'params': {'builderNames': ['b0'], 'reason': 'siege'}})


def measure(url, n_get, n_force, timeout, deadline):
    r = {'get_ms': [], 'force_ms': [], 'timeouts': 0}
    for _ in range(n_get):
        if time.monotonic() > deadline:
            break
        ms, ok = timed_request(url, 'GET', '/api/v2/builders', None, timeout)
        r['get_ms'].append(ms)
        r['timeouts'] += not ok
    for _ in range(n_force):
        if time.monotonic() > deadline:
            break
        ms, ok = timed_request(url, 'POST', '/api/v2/forceschedulers/force', FORCE, timeout)
        r['force_ms'].append(ms)
        r['timeouts'] += not ok
    return r


def connect_many(url, n, timeout):
    """n non-blocking connects to url's port; returns the sockets connected in time."""
    h, p = host_port(url)
    sel = selectors.DefaultSelector()
    pending = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        s.connect_ex((h, p))
        sel.register(s, selectors.EVENT_WRITE)
        pending.append(s)
    done, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        for key, _ in sel.select(max(0.0, end - time.monotonic())):
            s = key.fileobj
            sel.unregister(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done.append(s)
            else:
                s.close()
        if not sel.get_map():
            break
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    return done


def ws_upgrade_all(url, socks, timeout):
    """Sends each socket a /ws upgrade and a startConsuming, waits (bounded) for the 101s;
    returns the sockets upgraded.  They are never read again."""
    h, p = host_port(url)
    req = ('GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
           'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
           % (h, p)).encode()
    sel = selectors.DefaultSelector()
    got = {}
    for s in socks:
        try:
            s.send(req)
            sel.register(s, selectors.EVENT_READ)
            got[s] = b''
        except OSError:
            s.close()
    up, end = [], time.monotonic() + timeout
    while sel.get_map() and time.monotonic() < end:
        for key, _ in sel.select(max(0.0, end - time.monotonic())):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b''
            got[s] += data
            if not data or b'\r\n\r\n' in got[s]:
                sel.unregister(s)
                if got[s].startswith(b'HTTP/1.1 101'):
                    up.append(s)
                else:
                    s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    for i, path in enumerate(['builds/*/*', 'buildsets/*/*', 'buildrequests/*/*']):
        msg = json.dumps({'cmd': 'startConsuming', 'path': path, '_id': i + 1}).encode()
        mask = os.urandom(4)
        frame = bytes([0x81, 0x80 | len(msg)]) + mask + bytes(
            b ^ mask[j % 4] for j, b in enumerate(msg))
        for s in up:
            try:
                s.send(frame)
            except OSError:
                pass
    return up


class Trickler(threading.Thread):
    """Keeps N slow connections open: a third silent, a third sending a request's headers
    one byte every TRICKLE_S seconds, a third sending a POST's headers at once and then its
    declared 1,000-byte body one byte every TRICKLE_S.  A connection the master closed (or
    answered) is opened again on the next tick, as an attacker would."""

    def __init__(self, url, socks):
        super().__init__(daemon=True)
        self.addr = host_port(url)
        h, p = self.addr
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.reopened = 0
        self.head = ('GET /api/v2/builders HTTP/1.1\r\nHost: %s:%d\r\nX-Slow: %s\r\n\r\n'
                     % (h, p, 'x' * 4000)).encode()
        self.post = ('POST /api/v2/forceschedulers/force HTTP/1.1\r\nHost: %s:%d\r\n'
                     'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n'
                     % (h, p)).encode()
        n = len(socks)
        self.slots = []   # [kind, sock, bytes still to send, bytes sent at once first]
        for i, so in enumerate(socks):
            kind = 'silent' if i < n // 3 else 'head' if i < 2 * n // 3 else 'body'
            self.slots.append(self.fill([kind, so, b'', 0]))
        self.tick()

    def fill(self, slot):
        kind = slot[0]
        slot[2] = b'' if kind == 'silent' else self.head if kind == 'head' else \
            self.post + b' ' * 1000
        slot[3] = len(self.post) if kind == 'body' else 1
        return slot

    @staticmethod
    def alive(so):
        try:
            so.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            return False   # EOF, or the master answered: done with this one
        except BlockingIOError:
            return True
        except OSError as e:
            return e.errno == 107   # ENOTCONN: still connecting

    def nalive(self):
        with self.lock:
            return sum(1 for sl in self.slots if self.alive(sl[1]))

    def tick(self):
        with self.lock:
            for sl in self.slots:
                if not self.alive(sl[1]):
                    sl[1].close()
                    so = socket.socket()
                    so.setblocking(False)
                    so.connect_ex(self.addr)
                    sl[1] = so
                    self.fill(sl)
                    self.reopened += 1
                    continue
                if not sl[2]:
                    continue
                try:
                    k = sl[1].send(sl[2][:sl[3]], socket.MSG_DONTWAIT)
                    sl[2] = sl[2][k:]
                    sl[3] = 1
                except BlockingIOError:
                    pass
                except OSError:
                    pass   # reopened on the next tick

    def run(self):
        while not self.stop_ev.wait(TRICKLE_S):
            self.tick()

    def stop(self):
        self.stop_ev.set()
        self.join(TRICKLE_S + 30)
        with self.lock:
            for sl in self.slots:
                sl[1].close()


def pct(v, q):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(q / 100 * len(v) + 0.5)) - 1))]


def summary(r):
    out = {}
    for k in ('get_ms', 'force_ms'):
        out[k] = {'p50': pct(r[k], 50), 'p99': pct(r[k], 99),
                  'max': max(r[k]) if r[k] else None, 'n': len(r[k])}
    out['timeouts'] = r['timeouts']
    return out


def one(cls, args):
    s = driver.up(cls, 'siege', start_workers=1)
    res = {}
    try:
        dl = time.monotonic() + args.phase_timeout
        res['quiet'] = summary(measure(s.url, args.get_n, args.force_n, args.timeout, dl))
        ws = ws_upgrade_all(s.url, connect_many(s.url, args.ws, args.timeout), args.timeout)
        slow = connect_many(s.url, args.slow, args.timeout)
        nslow = len(slow)
        tr = Trickler(s.url, slow)
        tr.start()
        try:
            dl = time.monotonic() + args.phase_timeout
            r = measure(s.url, args.get_n, args.force_n, args.timeout, dl)
            res['siege'] = summary(r)
            res['siege']['ws_open'] = len(ws)
            res['siege']['slow_open_at_start'] = nslow
            res['siege']['slow_open_at_end'] = tr.nalive()
            res['siege']['slow_reopened'] = tr.reopened
            res['siege']['rss_mb'] = driver.proc_rss_kb(s.pid) / 1024
        finally:
            tr.stop()
            for x in ws:
                x.close()
    finally:
        s.stop()
    return res


def fmt(x):
    if x is None:
        return '—'
    if isinstance(x, int):
        return str(x)
    return '%.1f' % x if x < 100 else '%.0f' % x


def ratio(k, b):
    return '—' if not k or not b else '%.3g×' % (k / b)


def report(results, args):
    L = [MARK_BEGIN, '', '### siege', '',
         'Command: `%s`; %s. Fresh-connection latency in ms (p50 / p99 / max) of `GET '
         '/api/v2/builders` (%d) and of a `force` of `b0` (%d), per-request timeout %g s '
         '(a timed-out request counts as %g s), quiet and then with %d non-reading `/ws` '
         'clients and %d slow connections (⅓ silent, ⅓ slow headers, ⅓ slow bodies, one '
         'byte every %g s; re-opened when the master closes them) open. Ratio = Kiln ÷ Buildbot of the p99.'
         % (os.environ.get('KILN_BENCH_CMD', 'bench/run siege'),
            time.strftime('%Y-%m-%d'), args.get_n, args.force_n, args.timeout, args.timeout,
            args.ws, args.slow, TRICKLE_S), '',
         '| phase | metric | Kiln | Buildbot 3.7 | ratio (p99) |', '|---|---|---|---|---|']
    k, b = results.get('kiln', {}), results.get('buildbot', {})
    for ph in ('quiet', 'siege'):
        for m in ('get_ms', 'force_ms'):
            kv, bv = k.get(ph, {}).get(m, {}), b.get(ph, {}).get(m, {})
            cell = (lambda v: '%s / %s / %s' % (fmt(v.get('p50')), fmt(v.get('p99')),
                                               fmt(v.get('max'))) if v else '—')
            L.append('| %s | %s | %s | %s | %s |' % (ph, m.replace('_ms', ''), cell(kv),
                                                     cell(bv), ratio(kv.get('p99'),
                                                                     bv.get('p99'))))
        L.append('| %s | timeouts | %s | %s | |' % (ph, k.get(ph, {}).get('timeouts', '—'),
                                                   b.get(ph, {}).get('timeouts', '—')))
    for key, what in (('ws_open', '/ws clients open'),
                      ('slow_open_at_start', 'slow connections open at the start'),
                      ('slow_open_at_end', 'slow connections open at the end'),
                      ('slow_reopened', 'slow connections the master closed (re-opened)'),
                      ('rss_mb', 'master RSS under siege (MB)')):
        L.append('| siege | %s | %s | %s | |' % (what, fmt(k.get('siege', {}).get(key)),
                                                 fmt(b.get('siege', {}).get(key))))
    L += ['', MARK_END]
    path = os.path.join(driver.SRC, 'docs', 'PERFORMANCE.md')
    with open(path) as f:
        text = f.read()
    if MARK_BEGIN in text and MARK_END in text:
        a, rest = text.split(MARK_BEGIN, 1)
        text = a + '\n'.join(L) + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip('\n') + '\n\n' + '\n'.join(L) + '\n'
    with open(path, 'w') as f:
        f.write(text)
    print('\n'.join(L[2:-2]))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--kiln-build', required=True)
    ap.add_argument('--tools', required=True)
    ap.add_argument('--systems', default='kiln,buildbot')
    ap.add_argument('--reps', type=int, default=1)
    ap.add_argument('--slow', type=int, default=1000, help='slow connections')
    ap.add_argument('--ws', type=int, default=100, help='non-reading /ws clients')
    ap.add_argument('--get-n', type=int, default=50)
    ap.add_argument('--force-n', type=int, default=20)
    ap.add_argument('--timeout', type=float, default=10, help='per connect/upgrade/request')
    ap.add_argument('--phase-timeout', type=float, default=300,
                    help='no new request is started after this many seconds of a phase')
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('--report-only', action='store_true',
                    help='rewrite the docs/PERFORMANCE.md section from bench/results/siege.json')
    args, _ = ap.parse_known_args()
    if args.report_only:
        with open(os.path.join(driver.RESULTS, 'siege.json')) as f:
            stored = json.load(f)
        for k in ('slow', 'ws', 'get_n', 'force_n', 'timeout'):
            setattr(args, k, stored['args'][k])
        os.environ.setdefault('KILN_BENCH_CMD', stored['command'])
        report({sy: v[-1] for sy, v in stored['samples'].items()}, args)
        return
    driver.KILN, driver.TOOLS = args.kiln_build, args.tools
    driver.raise_nofile()
    driver.TMP = tempfile.mkdtemp(prefix='kiln-siege-')
    samples = {}
    try:
        for rep in range(args.reps):
            for sy in args.systems.split(','):
                driver.log('siege: %s, repetition %d' % (sy, rep + 1))
                samples.setdefault(sy, []).append(one(driver.SYSTEMS[sy], args))
    finally:
        if not args.keep:
            shutil.rmtree(driver.TMP, ignore_errors=True)
    last = {sy: v[-1] for sy, v in samples.items()}
    os.makedirs(driver.RESULTS, exist_ok=True)
    with open(os.path.join(driver.RESULTS, 'siege.json'), 'w') as f:
        json.dump({'scenario': 'siege', 'date': time.strftime('%Y-%m-%dT%H:%M:%S'),
                   'command': os.environ.get('KILN_BENCH_CMD', 'bench/run siege'),
                   'args': vars(args), 'samples': samples}, f, indent=1)
    report(last, args)


if __name__ == '__main__':
    main()
