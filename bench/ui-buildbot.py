#!/usr/bin/python3
"""bench/ui-buildbot.py [--builders N] [--builds N] [--reps N] [--out FILE]

The Buildbot 3.7 side of bench/ui.sh: Debian's Buildbot 3.7 has no web UI
(buildbot-www is not packaged), so its pages cannot be loaded side by side.
Instead this script runs the real Buildbot 3.7 master (twistd3, with the
stand-in "base" www plugin of /work/shared/buildbot-anchor/setup.sh written
into a throwaway directory), with N builders (1-2 tags each), seeds its
SQLite database with the same shape as bench/ui-seed.py (builds in rounds of
one change each, 4 steps per build, revision and branch as build properties,
mixed results, 20 running on a second master row, 10 queued requests), and
times the REST calls the 3.7 UI's controllers make for each view (from
Buildbot's www/ source at v3.7.0, listed in VIEWS below), with their default
settings: answer bytes and wall time, median of --reps.  /ws subscriptions
are not counted (Kiln's are not either).  Loopback only; the directory is
removed at the end.  Prints a summary and writes --out (JSON).
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

STEPS = ['git', 'compile', 'test', 'upload']

# (view, [REST paths]) as Buildbot 3.7's UI asks them (v3.7.0 www/ sources):
# {B} = a builder's id, {N} = a build number, {ID} = that build's id, ...
VIEWS = [
    ('home', 'www/base/src/app/home/home.controller.js', [
        'builds?order=-started_at&complete=false',
        'builds?order=-buildid&complete=true&limit=20',
        'builders']),
    ('builders', 'www/base/src/app/builders/builders.controller.js (buildFetchLimit 200)', [
        'builders', 'masters', 'workers',
        'builds?limit=200&order=-started_at']),
    ('builder', 'www/base/src/app/builders/builder/builder.controller.js (numbuilds 200)', [
        'builders/{B}', 'builders/{B}/forceschedulers?order=name',
        'builders/{B}/builds?property=owners&property=workername&limit=200&order=-number',
        'builders/{B}/buildrequests?claimed=false']),
    ('waterfall', 'www/waterfall_view/src/module/main.module.js (lazy_limit_waterfall 40)', [
        'builders?order=name', 'builds?limit=40&order=-started_at', 'masters']),
    ('console', 'www/console_view/src/module/main.module.js (buildLimit 200, changeLimit 30)', [
        'builders', 'builds?property=got_revision&limit=200&order=-started_at',
        'changes?limit=30&order=-changeid', 'buildrequests?limit=200&order=-submitted_at',
        'buildsets?limit=200&order=-submitted_at']),
    ('grid', 'www/grid_view/src/module/grid.controller.js (buildFetchLimit 1000, changeFetchLimit 100)', [
        'buildsets?limit=1000&order=-bsid', 'changes?limit=100&order=-changeid', 'builders',
        'buildrequests?limit=1000&order=-buildrequestid',
        'builds?limit=1000&order=-buildrequestid']),
    ('build', 'www/base/src/app/builders/builds/build.controller.js + buildsummary directive', [
        'builders/{B}', 'builders/{B}/builds?number__lt={N2}&limit=3&order=-number',
        'builds/{ID}/properties', 'builds/{ID}/changes', 'workers/{W}',
        'buildrequests/{BR}', 'buildsets/{BS}', 'builds/{ID}/steps',
        'steps/{S1}/logs', 'steps/{S2}/logs', 'steps/{S3}/logs', 'steps/{S4}/logs']),
]

STUB_INIT = '''# Stand-in for the unpackaged "buildbot-www" base plugin (as in
# /work/shared/buildbot-anchor/setup.sh): no pages, it only lets the www
# service start so that /api/v2 exists.
from buildbot.www.plugin import Application
ep = Application(__name__, "stub base plugin (no UI)")
'''


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def stub_plugin(root):
    d = os.path.join(root, 'stubwww')
    os.makedirs(os.path.join(d, 'bbstub_www', 'static'))
    os.makedirs(os.path.join(d, 'bbstub_www-0.0.dist-info'))
    with open(os.path.join(d, 'bbstub_www', '__init__.py'), 'w') as f:
        f.write(STUB_INIT)
    with open(os.path.join(d, 'bbstub_www', 'VERSION'), 'w') as f:
        f.write('0.0\n')
    with open(os.path.join(d, 'bbstub_www', 'static', 'index.html'), 'w') as f:
        f.write('<html><body>no UI (stub)</body></html>\n')
    with open(os.path.join(d, 'bbstub_www-0.0.dist-info', 'METADATA'), 'w') as f:
        f.write('Metadata-Version: 2.1\nName: bbstub-www\nVersion: 0.0\n')
    with open(os.path.join(d, 'bbstub_www-0.0.dist-info', 'entry_points.txt'), 'w') as f:
        f.write('[buildbot.www]\nbase = bbstub_www:ep\n')
    return d


def master_cfg(n, www_port, pb_port):
    return '''from buildbot.plugins import util, worker, steps
c = BuildmasterConfig = {}
c['workers'] = [worker.Worker('w1', 'pw')]
c['protocols'] = {'pb': {'port': 'tcp:%d:interface=127.0.0.1'}}
platforms = ['linux', 'windows', 'macos', 'freebsd']
teams = ['core', 'net', 'ui', 'db', 'docs', 'tools', 'release', 'perf']
f = util.BuildFactory([steps.ShellCommand(name='build', command='true')])
c['builders'] = []
for i in range(1, %d + 1):
    tags = [platforms[i %% 4]] + ([teams[i %% 8]] if i %% 3 == 0 else [])
    c['builders'].append(util.BuilderConfig(name='proj%%04d-%%s' %% (i, tags[0]),
        workernames=['w1'], factory=f, tags=tags, description='builder %%d' %% i))
from buildbot.plugins import schedulers
c['schedulers'] = [schedulers.ForceScheduler(name='force',
                                             builderNames=[b.name for b in c['builders']])]
c['collapseRequests'] = False
c['buildbotNetUsageData'] = None
c['title'] = 'ui bench'
c['buildbotURL'] = 'http://127.0.0.1:%d/'
c['www'] = {'port': 'tcp:%d:interface=127.0.0.1', 'plugins': {}}
c['db'] = {'db_url': 'sqlite:///state.sqlite'}
''' % (pb_port, n, www_port, www_port)


def get(url):
    # Accept as the 3.7 UI's $http sends it: Buildbot answers compact JSON
    # only when the request accepts application/json (else indented text)
    req = urllib.request.Request(url, headers={'Accept': 'application/json, text/plain, */*'})
    t = time.time()
    with urllib.request.urlopen(req, timeout=120) as r:
        body = r.read()
    return time.time() - t, body


def wait_api(url, n, proc, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit('ui-buildbot.py: the Buildbot master exited (see twistd.log)')
        try:
            _, body = get(url + 'builders')
            if len(json.loads(body)['builders']) >= n:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)  # polling the master's startup, bounded by timeout
    sys.exit('ui-buildbot.py: the Buildbot master did not answer in %d s' % timeout)


def start(mdir, env):
    log = open(os.path.join(mdir, 'stdout.log'), 'a')
    return subprocess.Popen(['twistd3', '--nodaemon', '--no_save', '--pidfile=', '-y', 'buildbot.tac'],
                            cwd=mdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def seed(db, nbuilds, running=20, queued=10, rnd=random.Random(1)):
    c = sqlite3.connect(db)
    builders = [r[0] for r in c.execute('SELECT id FROM builders ORDER BY id')]
    masterid = c.execute('SELECT id FROM masters ORDER BY id LIMIT 1').fetchone()[0]
    workerid = c.execute('SELECT id FROM workers ORDER BY id LIMIT 1').fetchone()[0]
    now = int(time.time())
    c.execute("INSERT INTO masters (name, name_hash, active, last_active) VALUES (?,?,1,?)",
              ('ui-bench-other', hashlib.sha1(b'ui-bench-other').hexdigest(), now))
    other = c.execute('SELECT last_insert_rowid()').fetchone()[0]
    nb = len(builders)
    nchanges = max(1, nbuilds // 50)
    per = -(-nbuilds // nchanges)
    span = 30 * 86400
    ss, chg, bsets, bss, reqs, claims, builds, steps, props = [], [], [], [], [], [], [], [], []
    number = {}
    bid = brid = stepid = 0
    for k in range(nchanges):
        t = int(now - span + span * k / nchanges)
        rev = '%040x' % rnd.getrandbits(160)
        cid = k + 1
        ss.append((cid, hashlib.sha1(rev.encode()).hexdigest(), 'main', rev,
                   'https://example.org/proj.git', '', 'proj', t))
        chg.append((cid, 'dev%d <dev%d@example.org>' % (k % 37, k % 37),
                    'change %d: fix the thing\n\nlonger description of change %d' % (k, k),
                    'main', rev, 'https://example.org/proj/commit/' + rev, t,
                    'https://example.org/proj.git', '', 'proj', cid))
        bsets.append((cid, 'scheduler', t, 1, t + 1800, 0))
        bss.append((cid, cid))
        for j in range(per):
            if bid >= nbuilds:
                break
            builder = builders[(k * per + j) % nb]
            number[builder] = number.get(builder, 0) + 1
            bid += 1
            brid += 1
            start_t = t + rnd.randint(0, 600)
            run = k == nchanges - 1 and j < running
            r = rnd.random()
            res = None if run else 0 if r < 0.80 else 1 if r < 0.88 else 2 if r < 0.97 else 4
            dur = rnd.randint(60, 1200)
            end = None if run else start_t + dur
            reqs.append((brid, cid, builder, 0, 0 if run else 1, None if run else res, t, end))
            claims.append((brid, other if run else masterid, start_t))
            state = 'building' if run else \
                ['build successful', 'build warnings', 'failed test', '', 'exception'][res]
            builds.append((bid, number[builder], builder, brid, workerid,
                           other if run else masterid, start_t, end, state, res))
            props.append((bid, 'revision', json.dumps(rev), 'Build'))
            props.append((bid, 'branch', json.dumps('main'), 'Build'))
            props.append((bid, 'buildername', json.dumps('b%d' % builder), 'Builder'))
            st = start_t
            for n, name in enumerate(STEPS):
                if run and n >= 2:
                    break
                stepid += 1
                cur = run and n == 1
                sres = None if cur else (res if name == 'test' else 0) if res != 4 else \
                    (4 if name == 'test' else 0)
                sd = dur // len(STEPS)
                steps.append((stepid, n, name, bid, st, None if cur else st + sd,
                              name if cur else '%s done' % name, sres, '[]', 0))
                st += sd
    qbs = nchanges + 1
    bsets.append((qbs, 'scheduler', now, 0, None, None))
    bss.append((qbs, nchanges))
    for j in range(queued):
        brid += 1
        reqs.append((brid, qbs, builders[j % nb], 0, 0, None, now, None))
    c.executemany('INSERT INTO sourcestamps (id, ss_hash, branch, revision, repository, codebase,'
                  ' project, created_at) VALUES (?,?,?,?,?,?,?,?)', ss)
    c.executemany('INSERT INTO changes (changeid, author, comments, branch, revision, revlink,'
                  ' when_timestamp, repository, codebase, project, sourcestampid)'
                  ' VALUES (?,?,?,?,?,?,?,?,?,?,?)', chg)
    c.executemany('INSERT INTO buildsets (id, reason, submitted_at, complete, complete_at,'
                  ' results) VALUES (?,?,?,?,?,?)', bsets)
    c.executemany('INSERT INTO buildset_sourcestamps (buildsetid, sourcestampid) VALUES (?,?)', bss)
    c.executemany('INSERT INTO buildrequests (id, buildsetid, builderid, priority, complete,'
                  ' results, submitted_at, complete_at) VALUES (?,?,?,?,?,?,?,?)', reqs)
    c.executemany('INSERT INTO buildrequest_claims (brid, masterid, claimed_at) VALUES (?,?,?)',
                  claims)
    c.executemany('INSERT INTO builds (id, number, builderid, buildrequestid, workerid, masterid,'
                  ' started_at, complete_at, state_string, results) VALUES (?,?,?,?,?,?,?,?,?,?)',
                  builds)
    c.executemany('INSERT INTO steps (id, number, name, buildid, started_at, complete_at,'
                  ' state_string, results, urls_json, hidden) VALUES (?,?,?,?,?,?,?,?,?,?)', steps)
    c.executemany('INSERT INTO build_properties (buildid, name, value, source) VALUES (?,?,?,?)',
                  props)
    c.commit()
    c.close()
    return len(builds), len(steps)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--builders', type=int, default=1000)
    ap.add_argument('--builds', type=int, default=100000)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  'results', 'ui-buildbot.json'))
    ap.add_argument('--keep', action='store_true')
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix='kiln-bench-uibb.')
    proc = None
    try:
        env = dict(os.environ, PYTHONPATH=stub_plugin(root))
        mdir = os.path.join(root, 'master')
        subprocess.run(['buildbot', 'create-master', '-r', mdir], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        www, pb = free_port(), free_port()
        with open(os.path.join(mdir, 'master.cfg'), 'w') as f:
            f.write(master_cfg(a.builders, www, pb))
        url = 'http://127.0.0.1:%d/api/v2/' % www
        t0 = time.time()
        proc = start(mdir, env)
        wait_api(url, a.builders, proc)
        stop(proc)
        t1 = time.time()
        nbuilds, nsteps = seed(os.path.join(mdir, 'state.sqlite'), a.builds)
        t2 = time.time()
        proc = start(mdir, env)
        wait_api(url, a.builders, proc)
        print('ui-buildbot: %d builders configured in %.1f s; %d builds, %d steps seeded in %.1f s'
              % (a.builders, t1 - t0, nbuilds, nsteps, t2 - t1))
        # the builder and build pages: the first builder by name and its newest finished build
        _, body = get(url + 'builders')
        bname, bidr = min((b['name'], b['builderid']) for b in json.loads(body)['builders'])
        _, body = get(url + 'builders/%d/builds?complete=true&order=-number&limit=1' % bidr)
        b = json.loads(body)['builds'][0]
        _, body = get(url + 'buildrequests/%d' % b['buildrequestid'])
        bsid = json.loads(body)['buildrequests'][0]['buildsetid']
        _, body = get(url + 'builds/%d/steps' % b['buildid'])
        sids = [s['stepid'] for s in json.loads(body)['steps']]
        subst = {'{B}': str(bidr), '{N2}': str(b['number'] + 2), '{ID}': str(b['buildid']),
                 '{W}': str(b['workerid']), '{BR}': str(b['buildrequestid']), '{BS}': str(bsid)}
        for i, s in enumerate(sids[:4]):
            subst['{S%d}' % (i + 1)] = str(s)
        out = {'buildbot': '3.7 (Debian, %s)' % subprocess.run(
                   ['buildbot', '--version'], capture_output=True, text=True).stdout.split('\n')[0],
               'builders': a.builders, 'builds': nbuilds, 'reps': a.reps,
               'load': open('/proc/loadavg').read().split()[:3], 'views': {}}
        for view, src, paths in VIEWS:
            reqs = []
            for p in paths:
                for k, v in subst.items():
                    p = p.replace(k, v)
                times, size = [], 0
                for _ in range(a.reps):
                    dt, body = get(url + p)
                    times.append(dt)
                    size = len(body)
                times.sort()
                reqs.append({'path': p, 'bytes': size, 'ms': round(times[len(times) // 2] * 1000, 1)})
            tot = sum(r['bytes'] for r in reqs)
            ms = sum(r['ms'] for r in reqs)
            out['views'][view] = {'source': src, 'requests': len(reqs), 'bytes': tot,
                                  'serial_ms': round(ms, 1),
                                  'max_ms': max(r['ms'] for r in reqs), 'calls': reqs}
            print('ui-buildbot: %-9s %2d requests, %9d bytes, %7.1f ms one after another'
                  ' (slowest %s: %.1f ms)' % (view, len(reqs), tot, ms,
                                              max(reqs, key=lambda r: r['ms'])['path'],
                                              max(r['ms'] for r in reqs)))
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, 'w') as f:
            json.dump(out, f, indent=1)
            f.write('\n')
        print('ui-buildbot: JSON in %s' % a.out)
    finally:
        if proc and proc.poll() is None:
            stop(proc)
        if a.keep:
            print('ui-buildbot: kept %s' % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
