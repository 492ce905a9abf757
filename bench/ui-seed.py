#!/usr/bin/python3
"""bench/ui-seed.py DB [--builds N] [--changes N] [--running N] [--queued N]

Fills a stopped Kiln master's SQLite database (its schema and its builders
already written by one start of the master with the bench's master.lua) with
the UI scenario of bench/ui.sh: N builds (default 100,000) spread evenly
over every builder, in rounds: one change (its sourcestamp, a buildset with
the change, one build request per builder of the round) builds on
builders/changes... builders, each build carrying its revision and branch
as properties (the console and grid match builds to changes by revision).
Each build has 4 steps (git, compile, test, upload); results are mixed
(mostly success, some warnings, failures, exceptions).  The builds of the
newest round, up to --running, are running: their master is a second,
active master row, so the bench master's start-up recovery (which only
finishes its own master's builds) leaves them running.  --queued unclaimed
requests wait at the end.  Rows are written straight into the tables of
src/db/migrations/*.sql, in one transaction (7-50 s for 100,000 builds on a
shared 2-core machine).
"""
import argparse
import random
import sqlite3
import sys
import time

STEPS = ['git', 'compile', 'test', 'upload']


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('db')
    ap.add_argument('--builds', type=int, default=100000)
    ap.add_argument('--changes', type=int, default=0, help='default: builds / 50')
    ap.add_argument('--running', type=int, default=20)
    ap.add_argument('--queued', type=int, default=10)
    ap.add_argument('--seed', type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    t0 = time.time()
    c = sqlite3.connect(a.db)
    c.execute('PRAGMA foreign_keys = OFF')
    builders = [r[0] for r in c.execute('SELECT id FROM builders ORDER BY id')]
    if not builders:
        sys.exit('ui-seed.py: no builders in %s: start the master once with its master.lua' % a.db)
    masterid = c.execute('SELECT id FROM masters ORDER BY id LIMIT 1').fetchone()[0]
    if c.execute('SELECT count(*) FROM builds').fetchone()[0]:
        sys.exit('ui-seed.py: %s already has builds' % a.db)
    workers = [r[0] for r in c.execute('SELECT id FROM workers ORDER BY id')] or [None]
    now = time.time()
    nb = len(builders)
    nchanges = a.changes or max(1, a.builds // 50)
    per = -(-a.builds // nchanges)  # builds per round
    # the other master: owner of the running builds
    c.execute("INSERT INTO masters (name, active, last_active) VALUES ('ui-bench-other', 1, ?)",
              (now,))
    other = c.execute('SELECT last_insert_rowid()').fetchone()[0]

    ss, bsets, bss, chg, bsc, reqs, builds, steps = [], [], [], [], [], [], [], []
    number = {}
    bid = brid = stepid = 0
    span = 30 * 86400  # the rounds cover the last 30 days
    for k in range(nchanges):
        t = now - span + span * k / nchanges
        rev = '%040x' % rnd.getrandbits(160)
        cid = k + 1
        ss.append((cid, 'main', rev, 'https://example.org/proj.git', 'proj', '', t))
        chg.append((cid, 'dev%d <dev%d@example.org>' % (k % 37, k % 37),
                    'change %d: fix the thing\n\nlonger description of change %d' % (k, k),
                    'main', rev, 'https://example.org/proj/commit/' + rev, t,
                    'https://example.org/proj.git', 'proj', '["src/f%d.c"]' % (k % 100), cid))
        bsets.append((cid, 'scheduler', 'main', t, 1, t + 1800, 0))
        bss.append((cid, cid))
        bsc.append((cid, cid))
        last_round = k == nchanges - 1
        for j in range(per):
            if bid >= a.builds:
                break
            builder = builders[(k * per + j) % nb]
            number[builder] = number.get(builder, 0) + 1
            bid += 1
            brid += 1
            start = t + rnd.uniform(0, 600)
            running = last_round and j < a.running
            r = rnd.random()
            res = None if running else 0 if r < 0.80 else 1 if r < 0.88 else 2 if r < 0.97 else 4
            dur = rnd.uniform(60, 1200)
            end = None if running else start + dur
            props = '{"revision": ["%s", "Build"], "branch": ["main", "Build"], ' \
                    '"buildername": ["b%d", "Builder"]}' % (rev, builder)
            reqs.append((brid, cid, builder, t, start, other if running else masterid,
                         0 if running else 1, end, -1 if running else res))
            state = 'building' if running else \
                ['build successful', 'build warnings', 'failed test', '', 'exception'][res]
            builds.append((bid, number[builder], builder, brid, workers[bid % len(workers)],
                           other if running else masterid, start, 0 if running else 1, end,
                           state, res, props))
            st = start
            for n, name in enumerate(STEPS):
                stepid += 1
                sdur = dur / len(STEPS)
                if running and n >= 2:
                    break  # the running build is in its compile step
                cur = running and n == 1
                sres = None if cur else (res if name == 'test' else 0) if res != 4 else \
                    (4 if name == 'test' else 0)
                steps.append((stepid, n, name, bid, st, 0 if cur else 1, None if cur else st + sdur,
                              name if cur else '%s done' % name, sres))
                st += sdur
    # the queue: unclaimed requests of one more buildset
    qbs = nchanges + 1
    bsets.append((qbs, 'scheduler', 'main', now, 0, None, None))
    bss.append((qbs, nchanges))
    for j in range(a.queued):
        brid += 1
        reqs.append((brid, qbs, builders[j % nb], now, None, None, 0, None, -1))

    c.executemany('INSERT INTO sourcestamps (id, branch, revision, repository, project, codebase,'
                  ' created_at) VALUES (?,?,?,?,?,?,?)', ss)
    c.executemany('INSERT INTO changes (id, author, comments, branch, revision, revlink,'
                  ' when_timestamp, repository, project, files, sourcestampid)'
                  ' VALUES (?,?,?,?,?,?,?,?,?,?,?)', chg)
    c.executemany('INSERT INTO buildsets (id, reason, scheduler, submitted_at, complete,'
                  ' complete_at, results) VALUES (?,?,?,?,?,?,?)', bsets)
    c.executemany('INSERT INTO buildset_sourcestamps (buildsetid, sourcestampid) VALUES (?,?)', bss)
    c.executemany('INSERT INTO buildset_changes (buildsetid, changeid) VALUES (?,?)', bsc)
    c.executemany('INSERT INTO buildrequests (id, buildsetid, builderid, submitted_at, claimed_at,'
                  ' claimed_by_masterid, complete, complete_at, results) VALUES (?,?,?,?,?,?,?,?,?)',
                  [r[:5] + ((r[5] if r[4] is not None else None),) + r[6:] for r in reqs])
    c.executemany('INSERT INTO builds (id, number, builderid, buildrequestid, workerid, masterid,'
                  ' started_at, complete, complete_at, state_string, results, properties)'
                  ' VALUES (?,?,?,?,?,?,?,?,?,?,?,?)', builds)
    c.executemany('INSERT INTO steps (id, number, name, buildid, started_at, complete, complete_at,'
                  ' state_string, results) VALUES (?,?,?,?,?,?,?,?,?)', steps)
    c.commit()  # no ANALYZE: the master never runs one either
    c.close()
    print('ui-seed: %d builders, %d builds (%d running), %d steps, %d changes, %d queued, %.1f s'
          % (nb, len(builds), min(a.running, per), len(steps), nchanges, a.queued, time.time() - t0))


if __name__ == '__main__':
    main()
