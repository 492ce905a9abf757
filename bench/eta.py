#!/usr/bin/python3
"""bench/eta.py: how good Kiln's ETA is on repeated demo-like builds (issue 10).

usage: bench/eta.py [--kiln-build DIR] [--builds N] [--report-only]

A throwaway master and one kiln-worker on loopback run N (default 30) builds, one at a
time, of a builder shaped like scripts/demo's: clone a local git repository, `make`,
`make test` (a small C project).  For each build the driver polls
`/api/v2/builds?buildrequestid=R` on one keep-alive connection until the build appears;
that answer's `eta_at` minus the build's start (taken as the middle of the last poll
interval, a few ms wide) is the duration the master predicted at the build's start.  The
real duration is the build's `build_duration` number (`/api/v2/builders/N/numbers/
build_duration`, measured by the master).  Error = |predicted - real| / real; builds the
master had no history for (the first) have no ETA and are not counted.  Kiln only:
Buildbot 3.7 serves no ETA.  Results: bench/results/eta.json and the `eta` section of
docs/PERFORMANCE.md (rewritten between its markers).  Standard library only; never a test
gate.
"""
import argparse
import datetime
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK_BEGIN = '<!-- eta: written by bench/eta.py -->'
MARK_END = '<!-- /eta -->'
RESULTS = os.path.join(SRC, 'bench', 'results', 'eta.json')

PROJECT = {
    'hello.c': '#include <stdio.h>\n#include "greet.h"\n'
               'int main(void) { puts(greet()); return 0; }\n',
    'greet.h': 'const char *greet(void);\n',
    'greet.c': '#include "greet.h"\nconst char *greet(void) { return "hello, kiln"; }\n',
    'test_greet.c': '#include <string.h>\n#include "greet.h"\n'
                    'int main(void) { return strcmp(greet(), "hello, kiln") != 0; }\n',
    'Makefile': 'CFLAGS = -Wall -Werror -O2\nall: hello\nhello: hello.o greet.o\n'
                '\t$(CC) -o $@ $^\ntest_greet: test_greet.o greet.o\n\t$(CC) -o $@ $^\n'
                'test: test_greet\n\t./test_greet\n.PHONY: all test\n',
}


class Api:
    def __init__(self, addr):
        host, port = addr.rsplit(':', 1)
        self.c = http.client.HTTPConnection(host, int(port), timeout=30)

    def get(self, path):
        self.c.request('GET', '/api/v2/' + path, headers={'Accept': 'application/json'})
        r = self.c.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError('GET %s: %d %s' % (path, r.status, body[:200]))
        return json.loads(body)

    def force(self, builderid):
        body = json.dumps({'jsonrpc': '2.0', 'id': 1, 'method': 'force',
                           'params': {'builderid': str(builderid), 'reason': 'eta bench'}})
        self.c.request('POST', '/api/v2/forceschedulers/force', body=body,
                       headers={'Content-Type': 'application/json'})
        r = self.c.getresponse()
        d = json.loads(r.read())
        return list(d['result'][1].values())[0]


def wait(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.005)
    raise RuntimeError('timed out waiting for ' + what)


def run(build_dir, nbuilds):
    kiln = os.path.join(build_dir, 'kiln')
    kworker = os.path.join(build_dir, 'src', 'worker', 'kiln-worker')
    d = tempfile.mkdtemp(prefix='kiln-bench-eta.')
    procs = []
    try:
        src = os.path.join(d, 'hello-src')
        os.makedirs(src)
        for name, text in PROJECT.items():
            with open(os.path.join(src, name), 'w') as f:
                f.write(text)
        git = ['git', '-C', src, '-c', 'user.name=Bench', '-c', 'user.email=b@example.org']
        subprocess.run(['git', 'init', '-q', '-b', 'main', src], check=True)
        subprocess.run(git + ['add', '-A'], check=True)
        subprocess.run(git + ['commit', '-q', '-m', 'hello'], check=True)
        repo = os.path.join(d, 'hello.git')
        subprocess.run(['git', 'clone', '-q', '--bare', src, repo], check=True)
        m = os.path.join(d, 'master')
        os.makedirs(os.path.join(m, 'secrets'))
        with open(os.path.join(m, 'secrets', 'w1'), 'w') as f:
            f.write('bench-eta')
        with open(os.path.join(m, 'master.lua'), 'w') as f:
            f.write('http = { listen = "127.0.0.1:0" }\nworkers_listen = "127.0.0.1:0"\n'
                    'worker { name = "w1", password = secret("w1") }\n'
                    'builder { name = "hello", workers = { "w1" }, steps = {\n'
                    '  shell { name = "clone", command = "rm -rf src && git clone -q %s src",'
                    ' halt_on_failure = true },\n'
                    '  shell { name = "compile", command = { "make", "-C", "src" } },\n'
                    '  shell { name = "test", command = { "make", "-C", "src", "test" } },\n'
                    '} }\nforce_scheduler { name = "force", builders = { "hello" } }\n'
                    % repo)
        log = open(os.path.join(d, 'master.log'), 'w')
        procs.append(subprocess.Popen([kiln, 'master', '-d', m], stderr=log))
        ports = os.path.join(m, 'ports')
        wait(lambda: os.path.exists(ports) and os.path.getsize(ports) > 0, 20, 'ports')
        addr = {}
        with open(ports) as f:
            for line in f:
                k, v = line.split()
                addr[k] = v
        w = os.path.join(d, 'w1')
        subprocess.run([kworker, 'create', w, '--master', addr['workers'], '--name', 'w1',
                        '--password-file', os.path.join(m, 'secrets', 'w1')], check=True,
                       stdout=subprocess.DEVNULL)
        procs.append(subprocess.Popen([kworker, 'start', w], stderr=subprocess.DEVNULL))
        api = Api(addr['http'])
        wait(lambda: api.get('workers/w1')['workers'][0]['connected_to'], 20, 'the worker')
        bid = api.get('builders/hello')['builders'][0]['builderid']
        predicted = {}
        for _ in range(nbuilds):
            brid = api.force(bid)
            t0 = prev = time.time()
            while True:
                sent = time.time()
                b = api.get('builds?buildrequestid=%d' % brid)['builds']
                got = time.time()
                if b:
                    break
                prev = sent
                if sent - t0 > 30:
                    raise RuntimeError('build did not start')
                time.sleep(0.002)
            b = b[0]
            if b.get('eta_at') is not None:  # it started between prev and got
                predicted[b['buildid']] = b['eta_at'] - (prev + got) / 2
            wait(lambda: api.get('buildrequests/%d' % brid)['buildrequests'][0]['complete'],
                 120, 'build %d' % b['buildid'])
        series = api.get('builders/%d/numbers/build_duration?limit=%d' % (bid, nbuilds + 1))
        real = {p['buildid']: p['value'] for p in series['numbers']}
        errors = [abs(predicted[k] - real[k]) / real[k] for k in sorted(predicted)
                  if real.get(k)]
        return {
            'date': datetime.date.today().isoformat(),
            'builds': nbuilds,
            'with_eta': len(errors),
            'real_median_s': statistics.median(real.values()),
            'error_median_pct': 100 * statistics.median(errors),
            'error_p90_pct': 100 * sorted(errors)[int(0.9 * (len(errors) - 1))],
            'error_max_pct': 100 * max(errors),
        }
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)


def report(r):
    L = [MARK_BEGIN, '', '### eta', '',
         'Command: `bench/eta.py --builds %d`; %s. Kiln only (Buildbot 3.7 serves no ETA). '
         'Demo-like builds (clone a local git repository, `make`, `make test`) one at a time; '
         'the ETA a build has when it first appears in `/api/v2/builds` against its real '
         '`build_duration`. Goal: median error ≤ 20 %%.' % (r['builds'], r['date']), '',
         '| metric | unit | Kiln |', '|---|---|---|',
         '| builds (with an ETA) | | %d (%d) |' % (r['builds'], r['with_eta']),
         '| real build duration, median | s | %.3f |' % r['real_median_s'],
         '| ETA error at build start, median | %% | **%.1f** |' % r['error_median_pct'],
         '| ETA error at build start, p90 / max | %% | %.1f / %.1f |' % (r['error_p90_pct'],
                                                                      r['error_max_pct']),
         '', MARK_END]
    path = os.path.join(SRC, 'docs', 'PERFORMANCE.md')
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
    ap.add_argument('--kiln-build', default=os.path.join(SRC, 'build-bench'))
    ap.add_argument('--builds', type=int, default=30)
    ap.add_argument('--report-only', action='store_true')
    a = ap.parse_args()
    if a.report_only:
        with open(RESULTS) as f:
            report(json.load(f))
        return
    if a.builds < 3:
        sys.exit('eta.py: --builds must be at least 3')
    r = run(a.kiln_build, a.builds)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, 'w') as f:
        json.dump(r, f, indent=1)
        f.write('\n')
    report(r)


if __name__ == '__main__':
    main()
