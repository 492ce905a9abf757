#!/usr/bin/python3
"""Retention purge benchmark (slice "retention"): how long the master's loop
stalls while it purges N old builds.

Creates a master (one builder, one worker that never connects), starts it once
so it creates its schema, stops it, seeds N finished builds 100 days old with
their request, buildset, sourcestamp, a step, a stdio log of LOG_LINES lines in
one chunk, a test result set with 3 results and 2 numbers (plain SQL into the
state.sqlite the master made), then starts the master with
retention = { builds = { keep_days = 30 } } and KILN_LOOP_STATS set, waits
until every build is gone (polling /metrics), stops it and prints the loop's
worst stall (KILN_LOOP_STATS, written at exit), the longest purge batch
(/metrics kiln_retention_batch_seconds_max), the time the purge took and the
database size.  A second start without retention gives the stall that is not
the purge's (start-up).

  bench/retention.py --build build --builds 100000

Python stdlib only; loopback only; kills only the master it starts.
"""
import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

CONF = """
http = {{ listen = "127.0.0.1:0" }}
workers_listen = "127.0.0.1:0"
worker {{ name = "w1", password = secret("w1") }}
{retention}
builder {{ name = "b", workers = {{ "w1" }}, steps = {{ shell {{ command = "true" }} }} }}
"""


def start(kiln, base, retention, stats):
    with open(os.path.join(base, 'master.lua'), 'w') as f:
        f.write(CONF.format(retention=retention))
    ports = os.path.join(base, 'ports')
    if os.path.exists(ports):
        os.unlink(ports)
    env = dict(os.environ, KILN_LOOP_STATS=stats)
    log = open(os.path.join(base, 'master.log'), 'a')
    p = subprocess.Popen([kiln, 'master', '-d', base], stderr=log, env=env)
    end = time.time() + 60
    while time.time() < end:
        if os.path.exists(ports) and os.path.getsize(ports) > 0:
            for line in open(ports):
                k, v = line.split()
                if k == 'http':
                    return p, 'http://' + v
        if p.poll() is not None:
            sys.exit('master exited: see ' + base + '/master.log')
        time.sleep(0.05)
    p.kill()
    sys.exit('master did not start')


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def metric(url, name):
    text = urllib.request.urlopen(url + '/metrics', timeout=10).read().decode()
    m = re.search('^' + re.escape(name) + r' ([0-9.e+-]+)$', text, re.M)
    return float(m.group(1)) if m else None


def seed(db, n, log_lines):
    c = sqlite3.connect(db)
    c.execute('PRAGMA journal_mode=WAL')
    bid = c.execute("SELECT id FROM builders WHERE name = 'b'").fetchone()[0]
    mid = c.execute('SELECT id FROM masters LIMIT 1').fetchone()[0]
    t0 = time.time() - 100 * 86400
    text = ''.join('line %d of a build log, some text to make it look real\n' % i
                   for i in range(log_lines)).encode()
    c.execute('BEGIN')
    for i in range(1, n + 1):
        t = t0 + i * 0.01
        ss = c.execute("INSERT INTO sourcestamps (created_at) VALUES (?)", (t,)).lastrowid
        bs = c.execute("INSERT INTO buildsets (submitted_at, complete, complete_at, results) "
                       "VALUES (?, 1, ?, 0)", (t, t)).lastrowid
        c.execute("INSERT INTO buildset_sourcestamps VALUES (?, ?)", (bs, ss))
        br = c.execute("INSERT INTO buildrequests (buildsetid, builderid, submitted_at, "
                       "claimed_at, complete, complete_at, results) VALUES (?, ?, ?, ?, 1, ?, 0)",
                       (bs, bid, t, t, t)).lastrowid
        b = c.execute("INSERT INTO builds (number, builderid, buildrequestid, masterid, "
                      "started_at, complete, complete_at, results) VALUES (?, ?, ?, ?, ?, 1, ?, 0)",
                      (i, bid, br, mid, t, t)).lastrowid
        st = c.execute("INSERT INTO steps (number, name, buildid, started_at, complete, "
                       "complete_at, results) VALUES (0, 'shell', ?, ?, 1, ?, 0)",
                       (b, t, t)).lastrowid
        lg = c.execute("INSERT INTO logs (name, slug, stepid, complete, num_lines, type, bytes) "
                       "VALUES ('stdio', 'stdio', ?, 1, ?, 's', ?)",
                       (st, log_lines, len(text))).lastrowid
        c.execute("INSERT INTO logchunks VALUES (?, 0, ?, 0, ?)", (lg, log_lines - 1, text))
        ts = c.execute("INSERT INTO test_result_sets (builderid, buildid, stepid, category, "
                       "value_unit, complete) VALUES (?, ?, ?, 'pass_fail', 'boolean', 1)",
                       (bid, b, st)).lastrowid
        for k in range(3):
            c.execute("INSERT INTO test_results (builderid, test_result_setid, value) "
                      "VALUES (?, ?, 'ok')", (bid, ts))
        for name in ('build_duration', 'warnings'):
            c.execute("INSERT INTO numbers (builderid, buildid, name, value, recorded_at) "
                      "VALUES (?, ?, ?, 1.0, ?)", (bid, b, name, t))
    c.execute('COMMIT')
    c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default='build', help='meson build dir (default: build)')
    ap.add_argument('--builds', type=int, default=100000)
    ap.add_argument('--log-lines', type=int, default=40)
    ap.add_argument('--keep', action='store_true', help='keep the throwaway directory')
    a = ap.parse_args()
    kiln = os.path.abspath(os.path.join(a.build, 'kiln'))
    tmp = tempfile.mkdtemp(prefix='kiln-bench-retention.')
    base = os.path.join(tmp, 'master')
    os.makedirs(os.path.join(base, 'secrets'))
    with open(os.path.join(base, 'secrets', 'w1'), 'w') as f:
        f.write('bench-pw')
    stats = os.path.join(tmp, 'loop.json')
    db = os.path.join(base, 'state.sqlite')

    p, _ = start(kiln, base, '', stats)
    stop(p)
    t = time.time()
    seed(db, a.builds, a.log_lines)
    print('seeded %d builds in %.1f s; database %.1f MB' %
          (a.builds, time.time() - t, os.path.getsize(db) / 1e6))

    # the stall that is not the purge's: a start and stop with the same rows
    p, url = start(kiln, base, '', stats)
    time.sleep(2)  # a bench, not a test: let the start-up settle
    stop(p)
    base_stall = json.load(open(stats))

    p, url = start(kiln, base, 'retention = { builds = { keep_days = 30 } }', stats)
    t = time.time()
    purged = 0
    while time.time() - t < 3600:
        purged = metric(url, 'kiln_retention_purged_total{kind="builds"}') or 0
        if purged >= a.builds:
            break
        time.sleep(0.5)
    took = time.time() - t
    batch = metric(url, 'kiln_retention_batch_seconds_max')
    stop(p)
    st = json.load(open(stats))
    left = sqlite3.connect(db).execute('SELECT count(*) FROM builds').fetchone()[0]
    print(json.dumps({
        'builds': a.builds, 'purged': int(purged), 'left': left,
        'purge_seconds': round(took, 1),
        'longest_batch_ms': round(batch * 1e3, 1) if batch is not None else None,
        'loop_worst_stall_ms': st.get('worst_ms'),
        'loop_worst_cpu_ms': st.get('worst_cpu_ms'),
        'loop_p99_ms': st.get('p99_ms'),
        'startup_only_worst_stall_ms': base_stall.get('worst_ms'),
        'db_mb_after': round(os.path.getsize(db) / 1e6, 1),
    }, indent=1))
    if not a.keep:
        subprocess.run(['rm', '-rf', tmp])
    else:
        print('kept', tmp)


if __name__ == '__main__':
    main()
