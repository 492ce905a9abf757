#!/usr/bin/env python3
"""Several Kiln masters on one PostgreSQL (issue 14): sustained throughput with one,
two and three masters sharing a throwaway PostgreSQL (scripts/pg-start, Unix socket,
durability off as in the tests), three `kiln-worker`s spread over them (worker i
attaches to master i mod N first), and the delay of an event crossing masters.

- throughput: bench/driver.py's scenario spread over the masters: the queue is kept
  at QUEUE_LOW..QUEUE_LOW+9 requests by force calls sent round-robin to the masters;
  completions are counted from master 1's own /ws `builds/*/finished` events (those
  of builds run elsewhere cross by LISTEN/NOTIFY, so this also checks every build's
  event arrives); master CPU is the sum over the masters.
- crossing: with two or more masters, /ws subscribers on masters 1 and 2; for each
  build run on master 2, the time its `finished` event reached master 1's subscriber
  minus the time it reached master 2's (loaded: during the throughput run; idle: 20
  builds forced one at a time).

Writes bench/results/masters.json and prints a Markdown table.  Never a test gate.
Usage: bench/masters.py --kiln-build DIR [--reps N] [--sustain-s S]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NWORKERS = 3


class Cluster:
    """N masters with one master.lua on one PostgreSQL, and NWORKERS workers."""

    def __init__(self, n):
        self.dir = tempfile.mkdtemp(prefix='kiln-masters%d-' % n, dir=driver.TMP)
        os.chmod(self.dir, 0o711)   # pg-start runs the server as 'postgres'
        self.pgdir = os.path.join(self.dir, 'pg')
        self.pgurl = subprocess.run([os.path.join(SRC, 'scripts', 'pg-start'), self.pgdir],
                                    check=True, capture_output=True, text=True).stdout.strip()
        self.masters, self.workers, self.procs = [], [], []
        lua = ['database = %s' % json.dumps(self.pgurl),
               'http = { listen = "127.0.0.1:0" }', 'workers_listen = "127.0.0.1:0"',
               'masters = { heartbeat = 1, dead_after = 10 }',
               'local ws = {}',
               'for i = 0, %d do ws[#ws + 1] = worker { name = "w" .. i, password = secret("pw"), '
               'max_builds = 10 } end' % (NWORKERS - 1),
               'for i = 0, 9 do builder { name = "b" .. i, workers = ws, steps = {',
               '  shell { name = "true", command = { "true" } } } } end']
        for i in range(n):
            d = os.path.join(self.dir, 'm%d' % i)
            os.makedirs(os.path.join(d, 'secrets'))
            with open(os.path.join(d, 'secrets', 'pw'), 'w') as f:
                f.write('pass')
            with open(os.path.join(d, 'master.lua'), 'w') as f:
                f.write('\n'.join(lua) + '\n')
            self.masters.append({'dir': d})

    def start(self):
        env = dict(os.environ, KILN_EXPERIMENTAL_POSTGRESQL='1')
        for m in self.masters:
            ports = os.path.join(m['dir'], 'ports')
            errf = open(os.path.join(m['dir'], 'master.log'), 'ab')
            m['proc'] = subprocess.Popen([os.path.join(driver.KILN, 'kiln'), 'master', '-d',
                                          m['dir']], stdout=errf, stderr=errf, env=env,
                                         preexec_fn=driver.raise_nofile)
            driver.wait_until('master %s ports' % m['dir'],
                              lambda: os.path.exists(ports) and os.path.getsize(ports) > 0, 60)
            addrs = dict(line.split() for line in open(ports) if line.strip())
            m['url'] = 'http://' + addrs['http']
            m['waddr'] = addrs['workers']
            driver.wait_until('API', lambda: driver.api_answers(m['url']), 60)
            m['api'] = driver.Api(m['url'])
        n = len(self.masters)
        for i in range(NWORKERS):
            wd = os.path.join(self.dir, 'w%d' % i)
            order = [self.masters[(i + k) % n]['waddr'] for k in range(n)]
            args = [os.path.join(driver.KILN, 'src/worker/kiln-worker'), 'create', wd,
                    '--name', 'w%d' % i, '--password', 'pass']
            for a in order:
                args += ['--master', a]
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
            errf = open(wd + '.log', 'ab')
            self.workers.append(subprocess.Popen(
                [os.path.join(driver.KILN, 'src/worker/kiln-worker'), 'start', wd],
                stdout=errf, stderr=errf))
        api = self.masters[0]['api']

        def attached():
            d = api.get('workers?field=name&field=connected_to')
            return sum(1 for w in d['workers'] if w['connected_to']) >= NWORKERS
        driver.wait_until('workers attached', attached, 120, 0.05)

    def master_ids(self):
        d = self.masters[0]['api'].get('masters')
        by_name = {m['name']: m['masterid'] for m in d['masters']}
        return [next(v for k, v in by_name.items() if k.endswith(m['dir'])) for m in self.masters]

    def cpu(self):
        return sum(driver.proc_cpu(m['proc'].pid) for m in self.masters)

    def pg_cpu(self):
        """CPU seconds of the PostgreSQL server: the postmaster, its live children and
        those that exited."""
        with open(os.path.join(self.pgdir, 'postmaster.pid')) as f:
            pm = int(f.readline())
        total = 0.0
        for d in os.listdir('/proc'):
            if not d.isdigit():
                continue
            try:
                with open('/proc/%s/stat' % d) as f:
                    rest = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(d) == pm:
                total += sum(int(x) for x in rest[11:15]) / driver.HZ
            elif int(rest[1]) == pm:
                total += (int(rest[11]) + int(rest[12])) / driver.HZ
        return total

    def stop(self):
        for p in self.workers:
            p.terminate()
        for p in self.workers:
            driver.stop_proc(p)
        for m in self.masters:
            if 'api' in m:
                m['api'].close()
            if 'proc' in m:
                driver.stop_proc(m['proc'], 60)
        subprocess.run([os.path.join(SRC, 'scripts', 'pg-stop'), self.pgdir],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def p95(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))] if v else None


def crossing(ev1, ev2, mid2, t_from=None, t_to=None):
    """ms between a build's `finished` event on master 2 (where it ran) and on master 1."""
    with ev1.cv:
        seen1 = {e[2].get('buildid'): e[0] for e in ev1.events}
    with ev2.cv:
        local = [(e[2].get('buildid'), e[0]) for e in ev2.events
                 if e[2].get('masterid') == mid2 and (t_from is None or t_from <= e[0] < t_to)]
    return [(seen1[b] - t) * 1000 for b, t in local if b in seen1]


def run(n, args):
    c = Cluster(n)
    evs = []
    try:
        c.start()
        mids = c.master_ids()
        ev = driver.WsEvents(c.masters[0]['url'], ['builds/*/finished'])
        evs.append(ev)
        ev2 = None
        if n > 1:
            ev2 = driver.WsEvents(c.masters[1]['url'], ['builds/*/finished'])
            evs.append(ev2)
        apis = [m['api'] for m in c.masters]
        names = ['b%d' % i for i in range(10)]
        out = {}
        if ev2:   # idle crossing: one build at a time, forced on master 2
            idle = []
            for i in range(20):
                brid = apis[1].force(['b0'])[0]
                e2 = ev2.wait(driver.ev_build('finished', brid), 120)
                e1 = ev.wait(driver.ev_build('finished', brid), 120)
                if e2[2].get('masterid') == mids[1]:
                    idle.append((e1[0] - e2[0]) * 1000)
            out['cross_idle_ms'] = idle
        ev.forget()
        if ev2:
            ev2.forget()
        forced, k = 0, 0
        t_begin = time.perf_counter()
        t_meas = t_end = None
        while True:
            with ev.cv:
                done = len(ev.events)
            t = time.perf_counter()
            if t_meas is None and t - t_begin >= args.warmup_s:
                t_meas, cpu0, pg0, done0 = t, c.cpu(), c.pg_cpu(), done
            if t_meas is not None and t - t_meas >= args.sustain_s:
                t_end, cpu1, pg1, done1 = t, c.cpu(), c.pg_cpu(), done
                break
            if t - t_begin > args.warmup_s + args.sustain_s + 600:
                raise RuntimeError('throughput: measurement did not end')
            while forced - done < args.queue_low:
                forced += len(apis[k % n].force(names))
                k += 1
            time.sleep(0.01)
        nb = done1 - done0
        out.update({'builds_per_s': [nb / (t_end - t_meas)],
                    'cpu_ms_per_build': [(cpu1 - cpu0) / nb * 1000],
                    'pg_cpu_ms_per_build': [(pg1 - pg0) / nb * 1000]})
        if ev2:
            out['cross_loaded_ms'] = crossing(ev, ev2, mids[1], t_meas, t_end)
        # every build forced completes, and master 1 saw each one's event
        driver.wait_until('all forced builds done', lambda: len(ev.events) >= forced, 300, 0.05)
        with ev.cv:
            bad = [e[1] for e in ev.events if e[2].get('results') != 0]
            per = {}
            for e in ev.events:
                per[e[2].get('masterid')] = per.get(e[2].get('masterid'), 0) + 1
        if bad:
            raise RuntimeError('builds failed: %r' % bad[:3])
        out['builds_per_master'] = [per.get(m, 0) for m in mids]
        return out
    finally:
        for e in evs:
            e.close()
        c.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--kiln-build', required=True)
    ap.add_argument('--reps', type=int, default=2)
    ap.add_argument('--sustain-s', type=float, default=10)
    ap.add_argument('--warmup-s', type=float, default=2)
    ap.add_argument('--queue-low', type=int, default=100)
    args = ap.parse_args()
    driver.ARGS = types.SimpleNamespace(keep=False)
    driver.KILN = args.kiln_build
    driver.raise_nofile()
    driver.TMP = tempfile.mkdtemp(prefix='kiln-bench-masters-')
    os.chmod(driver.TMP, 0o711)
    res = {'command': 'bench/masters.py ' + ' '.join(sys.argv[1:]), 'samples': {}}
    try:
        for rep in range(args.reps):
            for n in (1, 2, 3):
                driver.log('%d master(s), repetition %d' % (n, rep + 1))
                r = run(n, args)
                d = res['samples'].setdefault(str(n), {})
                for k, v in r.items():
                    d.setdefault(k, []).extend(v)
    finally:
        shutil.rmtree(driver.TMP, ignore_errors=True)
    os.makedirs(driver.RESULTS, exist_ok=True)
    with open(os.path.join(driver.RESULTS, 'masters.json'), 'w') as f:
        json.dump(res, f, indent=1)
    s = res['samples']
    one = driver.summ(s['1']['builds_per_s'])['median']
    print('| masters | builds per second, sustained | vs one master | master CPU per build '
          '(ms, all masters) | PostgreSQL CPU per build (ms) | event crossing, idle (ms, '
          'median / p95) | event crossing, loaded (ms, median / p95) |')
    print('|---|---|---|---|---|---|---|')
    for n in ('1', '2', '3'):
        d = s[n]
        bps = driver.summ(d['builds_per_s'])['median']
        cross = []
        for key in ('cross_idle_ms', 'cross_loaded_ms'):
            if d.get(key):
                cross.append('%s / %s' % (driver.fmt(driver.summ(d[key])['median']),
                                          driver.fmt(p95(d[key]))))
            else:
                cross.append('-')
        print('| %s | %s | %.2f | %s | %s | %s | %s |' % (
            n, driver.fmt(bps), bps / one, driver.fmt(driver.summ(d['cpu_ms_per_build'])['median']),
            driver.fmt(driver.summ(d['pg_cpu_ms_per_build'])['median']), cross[0], cross[1]))


if __name__ == '__main__':
    main()
