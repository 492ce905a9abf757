#!/usr/bin/python3
"""kiln copy-db benchmark (issue 14): how long a master's database takes to
move to PostgreSQL and back, checked row for row.

Creates a master as bench/retention.py does (its schema from one start),
seeds N finished builds with their rows (request, buildset, sourcestamp, a
step, a stdio log of LOG_LINES lines, 3 test results, 2 numbers), starts a
throwaway PostgreSQL (scripts/pg-start, a Unix socket), then times
`kiln copy-db BASEDIR PGURL` and `kiln copy-db PGURL sqlite:back.sqlite`
and prints the rows, the database's size and the seconds of each (the
copy and its check).  The server is stopped by its PID (scripts/pg-stop).

  bench/copydb.py --build build --builds 100000

Python stdlib only; loopback only (a Unix socket); kills only what it starts.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from retention import seed, start, stop  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(cmd):
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    took = time.time() - t
    if r.returncode != 0:
        raise SystemExit("bench/copydb.py: %s failed: %s" % (cmd[1], r.stderr.strip()))
    last = r.stdout.strip().splitlines()[-1]
    m = re.match(r"copied (\d+) rows in (\d+) tables", last)
    return took, int(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default='build', help='meson build dir (default: build)')
    ap.add_argument('--builds', type=int, default=100000)
    ap.add_argument('--log-lines', type=int, default=40)
    a = ap.parse_args()
    kiln = os.path.abspath(os.path.join(a.build, 'kiln'))
    tmp = tempfile.mkdtemp(prefix='kiln-bench-copydb.')
    os.chmod(tmp, 0o755)  # pg-start runs the server as 'postgres' when we are root
    base = os.path.join(tmp, 'master')
    os.makedirs(os.path.join(base, 'secrets'))
    with open(os.path.join(base, 'secrets', 'w1'), 'w') as f:
        f.write('bench-pw')
    db = os.path.join(base, 'state.sqlite')
    p, _ = start(kiln, base, '', os.path.join(tmp, 'loop.json'))
    stop(p)
    seed(db, a.builds, a.log_lines)
    mb = os.path.getsize(db) / 1e6
    pgdir = os.path.join(tmp, 'pg')
    url = subprocess.run([os.path.join(HERE, '..', 'scripts', 'pg-start'), pgdir],
                         capture_output=True, text=True, check=True).stdout.strip()
    try:
        to_pg, rows, tables = timed([kiln, 'copy-db', base, url])
        back, rows2, _ = timed([kiln, 'copy-db', url, 'sqlite:' + os.path.join(tmp, 'back.sqlite')])
        print(json.dumps({
            'builds': a.builds, 'rows': rows, 'tables': tables, 'sqlite_mb': round(mb, 1),
            'to_postgresql_s': round(to_pg, 1), 'rows_per_s_to_pg': round(rows / to_pg),
            'back_to_sqlite_s': round(back, 1), 'rows_per_s_back': round(rows2 / back),
        }, indent=1))
    finally:
        subprocess.run([os.path.join(HERE, '..', 'scripts', 'pg-stop'), pgdir],
                       capture_output=True)
        subprocess.run(['rm', '-rf', tmp])


if __name__ == '__main__':
    main()
