-- Kiln schema, version 12 (slice "push"): results pushed from outside
-- (docs/PUSH.md, pony-build's model).  A submission is one POST
-- /api/v2/push, stored as a build of the external builder "push:PACKAGE"
-- (buildid); its row is written in the same write as that build, so a bag
-- is stored whole or not at all.  tags: ",a,b," (for a LIKE on one tag).
-- update_hash: the SHA-256 of the update token of a submission still open
-- (finished = 0), NULL once finished.  state: 'stored' or 'failed'
-- (queued submissions live only in the master's memory).  Times are epoch
-- seconds.
CREATE TABLE push_submissions (
	id INTEGER PRIMARY KEY,
	tokenid INTEGER NOT NULL,
	package TEXT NOT NULL,
	host TEXT NOT NULL,
	arch TEXT,
	tags TEXT NOT NULL DEFAULT ',',
	revision TEXT,
	builderid INTEGER REFERENCES builders(id) ON DELETE SET NULL,
	buildid INTEGER REFERENCES builds(id) ON DELETE SET NULL,
	state TEXT NOT NULL,
	reason TEXT,
	finished INTEGER NOT NULL DEFAULT 0,
	results INTEGER,
	nsteps INTEGER NOT NULL DEFAULT 0,
	update_hash BLOB CHECK (update_hash IS NULL OR length(update_hash) = 32),
	created_at REAL NOT NULL,
	updated_at REAL NOT NULL,
	finished_at REAL
);
CREATE INDEX push_submissions_package_host ON push_submissions(package, host, id);
CREATE INDEX push_submissions_token_package ON push_submissions(tokenid, package);

-- Expected reporters (master.lua expected_reporters): when each package and
-- host last pushed, and whether it is reported quiet now.
CREATE TABLE push_expected (
	package TEXT NOT NULL,
	host TEXT NOT NULL,
	last_push REAL,
	quiet INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (package, host)
);
