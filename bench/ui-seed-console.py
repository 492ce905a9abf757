#!/usr/bin/env python3
"""bench/ui-seed-console.py DB [--changes N] [--per-change K]: seeds a stopped
master's SQLite database (schema of src/db/migrations, builders already
registered by one start of the master) with N changes (default 2,000), each
built by one buildset on K builders (default 50, a window that moves along
the builders so every builder gets builds): N*K build requests and finished
builds (100,000 by default), linked to their change in buildset_changes as
a scheduler links them.  Results: mostly success, some failures/warnings.
Writes straight into the tables, in one transaction; the master must be
stopped.  Used by bench/ui-console.sh."""
import argparse
import sqlite3
import time

p = argparse.ArgumentParser()
p.add_argument("db")
p.add_argument("--changes", type=int, default=2000)
p.add_argument("--per-change", type=int, default=50)
a = p.parse_args()

con = sqlite3.connect(a.db)
cur = con.cursor()
(masterid,) = cur.execute("SELECT id FROM masters ORDER BY id LIMIT 1").fetchone()
builders = [r[0] for r in cur.execute("SELECT id FROM builders ORDER BY id")]
if len(builders) < a.per_change:
    raise SystemExit(f"{len(builders)} builders, fewer than --per-change {a.per_change}")
numbers = {b: 0 for b in builders}
t = time.time() - a.changes * 60.0
cur.execute("BEGIN")
prev = None
for i in range(a.changes):
    t += 60
    rev = f"{i:08x}{'c0ffee' * 5}"[:40]
    cur.execute("INSERT INTO sourcestamps (branch, revision, repository, project, codebase, "
                "created_at) VALUES ('main', ?, 'https://example.org/app', '', '', ?)", (rev, t))
    ss_change = cur.lastrowid
    cur.execute("INSERT INTO changes (author, comments, branch, revision, when_timestamp, "
                "repository, files, sourcestampid, parent_changeid) VALUES (?, ?, 'main', ?, ?, "
                "'https://example.org/app', '[\"src/a.c\"]', ?, ?)",
                (f"Dev {i % 17} <dev{i % 17}@example.org>", f"change {i}: fix the thing\n\nmore", rev,
                 t, ss_change, prev))
    changeid = prev = cur.lastrowid
    cur.execute("INSERT INTO sourcestamps (branch, revision, repository, project, codebase, "
                "created_at) VALUES ('main', ?, 'https://example.org/app', '', '', ?)", (rev, t))
    ssid = cur.lastrowid
    cur.execute("INSERT INTO buildsets (reason, scheduler, submitted_at, complete, complete_at, "
                "results) VALUES ('change', 'main', ?, 1, ?, 0)", (t, t + 30))
    bsid = cur.lastrowid
    cur.execute("INSERT INTO buildset_sourcestamps (buildsetid, sourcestampid) VALUES (?, ?)",
                (bsid, ssid))
    cur.execute("INSERT INTO buildset_changes (buildsetid, changeid) VALUES (?, ?)", (bsid, changeid))
    start = (i * a.per_change) % len(builders)
    for k in range(a.per_change):
        b = builders[(start + k) % len(builders)]
        cur.execute("INSERT INTO buildrequests (buildsetid, builderid, submitted_at, claimed_at, "
                    "claimed_by_masterid, complete, complete_at, results) "
                    "VALUES (?, ?, ?, ?, ?, 1, ?, 0)", (bsid, b, t, t + 1, masterid, t + 30))
        brid = cur.lastrowid
        numbers[b] += 1
        res = 2 if (i + k) % 23 == 0 else (1 if (i + k) % 11 == 0 else 0)
        cur.execute("INSERT INTO builds (number, builderid, buildrequestid, masterid, started_at, "
                    "complete, complete_at, state_string, results, properties) "
                    "VALUES (?, ?, ?, ?, ?, 1, ?, 'build successful', ?, ?)",
                    (numbers[b], b, brid, masterid, t + 1, t + 30, res,
                     '{"revision": ["%s", "Build"], "branch": ["main", "Build"]}' % rev))
con.commit()
n = cur.execute("SELECT count(*) FROM builds").fetchone()[0]
print(f"seeded {a.changes} changes, {n} builds on {len(builders)} builders")
