#!/usr/bin/python3
"""Soak (slice "retention"): a real master and two real kiln-workers running
builds at a steady rate with retention on, for --builds builds or --minutes.

Each build prints --log-kib KiB of log; every --artifact-every-th build
uploads a 64 KiB artifact; master.lua keeps only the last --keep builds per
builder and the content of success logs for --log-keep-days.  Every
--kill-every builds one worker is killed (SIGKILL) and started again.  The
driver keeps --queue requests queued (forcing through the JSON-RPC API) and
samples the master's RSS (/proc/PID/status) and the database size
(state.sqlite + -wal) every --sample builds; at the end it prints the
samples, RSS at start/middle/end, the largest database size, the loop's
worst stall (KILN_LOOP_STATS, written at the master's exit) and the error
lines of master.log (there should be none).

  bench/soak.py --build build --builds 200000      # the issue's figure
  bench/soak.py --build build --builds 20000 --minutes 20

Python stdlib only; loopback only; kills only the processes it starts.
"""
import argparse
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

CONF = """
http = {{ listen = "127.0.0.1:0" }}
workers_listen = "127.0.0.1:0"
worker {{ name = "w1", password = secret("w") }}
worker {{ name = "w2", password = secret("w") }}
{retention}
builder {{ name = "plain", workers = {{ "w1", "w2" }}, steps = {{
  shell {{ command = "head -c {log_bytes} /dev/zero | tr '\\\\0' x | fold -w 100" }},
}} }}
builder {{ name = "art", workers = {{ "w1", "w2" }}, steps = {{
  shell {{ command = "head -c {log_bytes} /dev/zero | tr '\\\\0' y | fold -w 100; head -c 65536 /dev/urandom > a.bin" }},
  file_upload {{ workersrc = "a.bin", masterdest = "a.bin" }},
}} }}
"""
RETENTION = """
retention = {{
  builds = {{ keep_per_builder = {keep} }},
  logs = {{ keep_days = 30, success_keep_days = {log_keep_days} }},
  interval = {interval},
}}
"""


class Api:
    def __init__(self, hostport):
        self.hostport = hostport
        self.c = None

    def req(self, method, path, body=None):
        for attempt in range(3):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection(self.hostport, timeout=30)
                hdr = {'Content-Type': 'application/json'} if body else {}
                self.c.request(method, path, body=body, headers=hdr)
                r = self.c.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                self.c = None
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def json(self, path):
        return json.loads(self.req('GET', '/api/v2/' + path)[1])

    def metrics(self):
        text = self.req('GET', '/metrics')[1].decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith('#'):
                k, v = line.rsplit(' ', 1)
                out[k] = float(v)
        return out

    def force(self, builderid):
        body = json.dumps({'jsonrpc': '2.0', 'id': 1, 'method': 'force',
                           'params': {'builderid': str(builderid), 'reason': 'soak'}})
        return self.req('POST', '/api/v2/forceschedulers/force', body)[0]


def rss_kib(pid):
    for line in open('/proc/%d/status' % pid):
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default='build')
    ap.add_argument('--builds', type=int, default=20000)
    ap.add_argument('--minutes', type=float, default=0, help='stop after this long (0: no limit)')
    ap.add_argument('--log-kib', type=int, default=8)
    ap.add_argument('--artifact-every', type=int, default=50)
    ap.add_argument('--keep', type=int, default=500)
    ap.add_argument('--log-keep-days', type=float, default=0.0001)
    ap.add_argument('--interval', type=int, default=10)
    ap.add_argument('--kill-every', type=int, default=1000)
    ap.add_argument('--queue', type=int, default=4)
    ap.add_argument('--sample', type=int, default=500)
    ap.add_argument('--out', help='write the samples here as JSON')
    ap.add_argument('--keep-dir', action='store_true', help='keep the throwaway directory')
    ap.add_argument('--no-retention', action='store_true', help='the baseline: keep everything')
    a = ap.parse_args()
    kiln = os.path.abspath(os.path.join(a.build, 'kiln'))
    kworker = os.path.abspath(os.path.join(a.build, 'src/worker/kiln-worker'))
    tmp = tempfile.mkdtemp(prefix='kiln-soak.')
    base = os.path.join(tmp, 'master')
    os.makedirs(os.path.join(base, 'secrets'))
    with open(os.path.join(base, 'secrets', 'w'), 'w') as f:
        f.write('soak-pw')
    with open(os.path.join(base, 'master.lua'), 'w') as f:
        retention = '' if a.no_retention else RETENTION.format(
            keep=a.keep, log_keep_days=a.log_keep_days, interval=a.interval)
        f.write(CONF.format(retention=retention, log_bytes=a.log_kib * 1024))
    procs = {}
    log = open(os.path.join(base, 'master.log'), 'a')
    stats = os.path.join(tmp, 'loop-stats.json')
    procs['master'] = subprocess.Popen([kiln, 'master', '-d', base], stderr=log,
                                       env=dict(os.environ, KILN_LOOP_STATS=stats))
    ports = os.path.join(base, 'ports')
    end = time.time() + 60
    while not (os.path.exists(ports) and os.path.getsize(ports)) and time.time() < end:
        time.sleep(0.05)
    addr = dict(line.split() for line in open(ports))
    api = Api(addr['http'])

    def start_worker(name):
        d = os.path.join(tmp, name)
        if not os.path.exists(os.path.join(d, 'worker.conf')):
            subprocess.run([kworker, 'create', d, '--master', addr['workers'], '--name', name,
                            '--password-file', os.path.join(base, 'secrets', 'w')],
                           check=True, stdout=subprocess.DEVNULL)
        procs[name] = subprocess.Popen([kworker, 'start', d],
                                       stderr=open(d + '.log', 'a'))

    for w in ('w1', 'w2'):
        start_worker(w)
    bids = {b['name']: b['builderid'] for b in api.json('builders')['builders']}
    db = os.path.join(base, 'state.sqlite')
    t0 = time.time()
    samples = []
    forced = 0
    kills = 0
    last_sample = -a.sample
    last_kill = 0

    def finished(m):
        return int(sum(v for k, v in m.items() if k.startswith('kiln_builds_finished_total')))

    try:
        while True:
            m = api.metrics()
            done = finished(m)
            if done >= a.builds or (a.minutes and time.time() - t0 > a.minutes * 60):
                break
            if done - last_sample >= a.sample:
                last_sample = done
                size = sum(os.path.getsize(p) for p in (db, db + '-wal') if os.path.exists(p))
                wal = os.path.getsize(db + '-wal') if os.path.exists(db + '-wal') else 0
                ro = sqlite3.connect('file:%s?mode=ro' % db, uri=True, timeout=10)
                logical = (ro.execute('PRAGMA page_count').fetchone()[0] *
                           ro.execute('PRAGMA page_size').fetchone()[0])
                ro.close()
                s = {'t': round(time.time() - t0, 1), 'builds': done,
                     'rss_kib': rss_kib(procs['master'].pid), 'db_bytes': size,
                     'wal_bytes': wal, 'db_logical_bytes': logical,
                     'builds_kept': len(api.json('builds?field=buildid')['builds']),
                     'purged': int(m.get('kiln_retention_purged_total{kind="builds"}', 0))}
                samples.append(s)
                print(json.dumps(s), flush=True)
            if done - last_kill >= a.kill_every and done > 0:
                last_kill = done
                victim = 'w1' if kills % 2 == 0 else 'w2'
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                start_worker(victim)
                kills += 1
            queued = m.get('kiln_buildrequests_queued', 0)
            if queued < a.queue and forced - done < a.queue + 4:
                name = 'art' if forced % a.artifact_every == 0 else 'plain'
                if api.force(bids[name]) == 200:
                    forced += 1
            else:
                time.sleep(0.02)
    finally:
        fm = api.metrics()
        done = finished(fm)
        by_result = {re.sub(r'.*result="([a-z]+)".*', r'\1', k): int(v) for k, v in fm.items()
                     if k.startswith('kiln_builds_finished_total') and v}
        took = time.time() - t0
        for name in ('w1', 'w2', 'master'):
            p = procs[name]
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    errors = [line.rstrip() for line in open(os.path.join(base, 'master.log'))
              if re.search(r' (error|crit) ', line)]
    rss = [s['rss_kib'] for s in samples]
    loop = json.load(open(stats)) if os.path.exists(stats) else {}
    sizes = [s['db_bytes'] for s in samples]
    summary = {
        'builds': done, 'by_result': by_result, 'seconds': round(took), 'builds_per_s': round(done / took, 1),
        'worker_kills': kills,
        'rss_kib_start_mid_end': [rss[0], rss[len(rss) // 2], rss[-1]] if rss else None,
        'rss_after_warmup_spread_pct': round(100.0 * (max(rss[len(rss) // 4:]) -
                                                      min(rss[len(rss) // 4:])) /
                                             min(rss[len(rss) // 4:]), 1) if len(rss) > 4 else None,
        'db_bytes_max': max(sizes) if sizes else None,
        'db_logical_bytes_start_mid_end': [samples[0]['db_logical_bytes'],
                                           samples[len(samples) // 2]['db_logical_bytes'],
                                           samples[-1]['db_logical_bytes']] if samples else None,
        'wal_bytes_max': max(s['wal_bytes'] for s in samples) if samples else None,
        'db_bytes_last_half_max': max(sizes[len(sizes) // 2:]) if sizes else None,
        'db_bytes_first_half_max': max(sizes[:len(sizes) // 2]) if len(sizes) > 1 else None,
        'wal_truncations': int(fm.get('kiln_wal_truncations_total', 0)),
        'wal_truncate_ms_max': round(fm.get('kiln_wal_truncate_seconds_max', 0) * 1e3, 1),
        'loop_worst_stall_ms': loop.get('worst_ms'),
        'loop_worst_cpu_ms': loop.get('worst_cpu_ms'),
        'retention_batch_ms_max': round(fm.get('kiln_retention_batch_seconds_max', 0) * 1e3, 1),
        'error_lines': len(errors), 'first_errors': errors[:5],
    }
    print(json.dumps(summary, indent=1))
    if a.out:
        json.dump({'summary': summary, 'samples': samples}, open(a.out, 'w'), indent=1)
    if a.keep_dir:
        print('kept', tmp)
    else:
        subprocess.run(['rm', '-rf', tmp])


if __name__ == '__main__':
    main()
