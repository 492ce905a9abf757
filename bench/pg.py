#!/usr/bin/env python3
"""Kiln on PostgreSQL beside Kiln on SQLite (issue 14): the `latency` and
`throughput` scenarios of bench/driver.py, run alternately on a master whose
database is SQLite and on one whose database is a throwaway PostgreSQL
(scripts/pg-start, Unix socket, durability off as in the tests; the master
runs with KILN_EXPERIMENTAL_POSTGRESQL=1).  Writes bench/results/pg.json and
prints a Markdown table.  Never a test gate.

Usage: bench/pg.py --kiln-build DIR [--reps N] [--latency-n N] [--sustain-s S]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pg_bytes(url):
    out = subprocess.run(['psql', url, '-X', '-Atqc', 'select pg_database_size(current_database())'],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip())


class KilnPg(driver.Kiln):
    name = 'kiln-pg'

    def __init__(self, tag, **kw):
        super().__init__(tag, **kw)
        os.chmod(self.dir, 0o711)   # pg-start runs the server as 'postgres'
        self.pgdir = os.path.join(self.dir, 'pg')
        self.pgurl = subprocess.run([os.path.join(SRC, 'scripts', 'pg-start'), self.pgdir],
                                    check=True, capture_output=True, text=True).stdout.strip()
        lua = os.path.join(self.mdir, 'master.lua')
        with open(lua) as f:
            text = f.read()
        with open(lua, 'w') as f:
            f.write('database = %s\n' % json.dumps(self.pgurl) + text)
        self.env = {'KILN_EXPERIMENTAL_POSTGRESQL': '1'}
        self.db = 'pg:' + self.pgurl

    def stop(self):
        try:
            super().stop()
        finally:
            subprocess.run([os.path.join(SRC, 'scripts', 'pg-stop'), self.pgdir],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def db_bytes(path):
    if isinstance(path, str) and path.startswith('pg:'):
        return pg_bytes(path[3:])
    return SQLITE_BYTES(path)


SQLITE_BYTES = driver.db_logical_bytes


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--kiln-build', required=True)
    ap.add_argument('--reps', type=int, default=2)
    ap.add_argument('--latency-n', type=int, default=50)
    ap.add_argument('--sustain-s', type=float, default=10)
    ap.add_argument('--warmup-s', type=float, default=2)
    ap.add_argument('--queue-low', type=int, default=100)
    args = ap.parse_args()
    driver.ARGS = types.SimpleNamespace(latency_n=args.latency_n, bb_latency_n=args.latency_n,
                                        sustain_s=args.sustain_s, warmup_s=args.warmup_s,
                                        queue_low=args.queue_low, keep=False)
    driver.KILN = args.kiln_build
    driver.db_logical_bytes = db_bytes
    driver.raise_nofile()
    driver.TMP = tempfile.mkdtemp(prefix='kiln-bench-pg-')
    os.chmod(driver.TMP, 0o711)  # the 'postgres' user reaches its servers' directories
    systems = {'sqlite': driver.Kiln, 'postgresql': KilnPg}
    res = {'command': 'bench/pg.py ' + ' '.join(sys.argv[1:]), 'samples': {}}
    try:
        for scn, fn in (('latency', driver.sc_latency), ('throughput', driver.sc_throughput)):
            for rep in range(args.reps):
                for name, cls in systems.items():
                    driver.log('%s: kiln on %s, repetition %d' % (scn, name, rep + 1))
                    # sc_latency sizes its run by `cls is Kiln`: the same n for both here
                    r = fn(cls, rep)
                    d = res['samples'].setdefault(scn, {}).setdefault(name, {})
                    for k, v in r.items():
                        d.setdefault(k, []).extend(v)
    finally:
        shutil.rmtree(driver.TMP, ignore_errors=True)
    os.makedirs(driver.RESULTS, exist_ok=True)
    with open(os.path.join(driver.RESULTS, 'pg.json'), 'w') as f:
        json.dump(res, f, indent=1)
    rows = [('latency', 'force_started_ms', 'force → started (ms)', False),
            ('latency', 'force_finished_ms', 'force → finished (ms)', False),
            ('throughput', 'builds_per_s', 'builds per second, sustained', True),
            ('throughput', 'cpu_ms_per_build', 'master CPU per build (ms)', False),
            ('throughput', 'db_bytes_per_build', 'database growth per build (bytes)', False)]
    print('| measure | SQLite | PostgreSQL | PostgreSQL / SQLite |')
    print('|---|---|---|---|')
    for scn, key, label, _ in rows:
        a = res['samples'].get(scn, {}).get('sqlite', {}).get(key)
        b = res['samples'].get(scn, {}).get('postgresql', {}).get(key)
        if not a or not b:
            continue
        ma, mb = driver.summ(a)['median'], driver.summ(b)['median']
        print('| %s | %s | %s | %s |' % (label, driver.fmt(ma), driver.fmt(mb),
                                         '%.2f' % (mb / ma) if ma else '-'))


if __name__ == '__main__':
    main()
