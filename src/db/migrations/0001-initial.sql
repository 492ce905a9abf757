-- Kiln schema, version 1: Buildbot's data model (field names as in its REST API).
-- Times are REAL seconds since the epoch; booleans are INTEGER 0/1; JSON is TEXT.
-- Never edit this file once released: add 0002-*.sql instead (docs/internals/db.md).

CREATE TABLE masters (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	active INTEGER NOT NULL DEFAULT 1,
	last_active REAL NOT NULL
);

CREATE TABLE builders (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	description TEXT,
	tags TEXT NOT NULL DEFAULT '[]'            -- JSON array of strings
);

CREATE TABLE builder_masters (
	builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
	masterid INTEGER NOT NULL REFERENCES masters(id) ON DELETE CASCADE,
	PRIMARY KEY (builderid, masterid)
) WITHOUT ROWID;
CREATE INDEX builder_masters_masterid ON builder_masters(masterid, builderid);

CREATE TABLE workers (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	info TEXT NOT NULL DEFAULT '{}',           -- workerinfo, JSON object
	paused INTEGER NOT NULL DEFAULT 0,
	graceful INTEGER NOT NULL DEFAULT 0,
	masterid INTEGER REFERENCES masters(id)    -- master it is connected to, or NULL
);
CREATE INDEX workers_masterid ON workers(masterid) WHERE masterid IS NOT NULL;

CREATE TABLE configured_workers (
	workerid INTEGER NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
	masterid INTEGER NOT NULL REFERENCES masters(id) ON DELETE CASCADE,
	builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
	PRIMARY KEY (workerid, masterid, builderid)
) WITHOUT ROWID;
CREATE INDEX configured_workers_builderid ON configured_workers(builderid, workerid);

CREATE TABLE sourcestamps (
	id INTEGER PRIMARY KEY,
	branch TEXT,
	revision TEXT,
	repository TEXT NOT NULL DEFAULT '',
	project TEXT NOT NULL DEFAULT '',
	codebase TEXT NOT NULL DEFAULT '',
	created_at REAL NOT NULL
);

CREATE TABLE buildsets (
	id INTEGER PRIMARY KEY,
	external_idstring TEXT,
	reason TEXT NOT NULL DEFAULT '',
	scheduler TEXT,
	submitted_at REAL NOT NULL,
	complete INTEGER NOT NULL DEFAULT 0,
	complete_at REAL,
	results INTEGER,                           -- NULL until complete
	parent_buildid INTEGER REFERENCES builds(id) ON DELETE SET NULL,
	parent_relationship TEXT,
	properties TEXT NOT NULL DEFAULT '{}'      -- {"name": [value, "source"]}
);
CREATE INDEX buildsets_complete ON buildsets(complete);
CREATE INDEX buildsets_parent_buildid ON buildsets(parent_buildid) WHERE parent_buildid IS NOT NULL;

CREATE TABLE buildset_sourcestamps (
	buildsetid INTEGER NOT NULL REFERENCES buildsets(id) ON DELETE CASCADE,
	sourcestampid INTEGER NOT NULL REFERENCES sourcestamps(id) ON DELETE CASCADE,
	PRIMARY KEY (buildsetid, sourcestampid)
) WITHOUT ROWID;
CREATE INDEX buildset_sourcestamps_ssid ON buildset_sourcestamps(sourcestampid);

CREATE TABLE buildrequests (
	id INTEGER PRIMARY KEY,
	buildsetid INTEGER NOT NULL REFERENCES buildsets(id) ON DELETE CASCADE,
	builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
	priority INTEGER NOT NULL DEFAULT 0,
	submitted_at REAL NOT NULL,
	claimed_at REAL,                           -- NULL = unclaimed
	claimed_by_masterid INTEGER REFERENCES masters(id) ON DELETE SET NULL,
	complete INTEGER NOT NULL DEFAULT 0,
	complete_at REAL,
	results INTEGER NOT NULL DEFAULT -1,       -- -1 until complete
	waited_for INTEGER NOT NULL DEFAULT 0
);
-- The dispatch queue: db_request_next is one seek into this partial index.
CREATE INDEX buildrequests_pending ON buildrequests(builderid, priority DESC, submitted_at, id)
	WHERE complete = 0 AND claimed_at IS NULL;
-- Single-column indexes end in the rowid, so "WHERE x = ? ORDER BY id"
-- (the API's default order) needs no sort; likewise (x, complete).
CREATE INDEX buildrequests_builderid ON buildrequests(builderid);
CREATE INDEX buildrequests_builderid_complete ON buildrequests(builderid, complete);
CREATE INDEX buildrequests_buildsetid ON buildrequests(buildsetid);
CREATE INDEX buildrequests_complete ON buildrequests(complete);
CREATE INDEX buildrequests_claimed_by ON buildrequests(claimed_by_masterid)
	WHERE complete = 0 AND claimed_by_masterid IS NOT NULL;

CREATE TABLE builds (
	id INTEGER PRIMARY KEY,
	number INTEGER NOT NULL,
	builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
	buildrequestid INTEGER REFERENCES buildrequests(id) ON DELETE SET NULL,
	workerid INTEGER REFERENCES workers(id) ON DELETE SET NULL,
	masterid INTEGER NOT NULL REFERENCES masters(id),
	started_at REAL NOT NULL,
	complete INTEGER NOT NULL DEFAULT 0,
	complete_at REAL,
	state_string TEXT NOT NULL DEFAULT '',
	results INTEGER,                           -- NULL until finished
	properties TEXT NOT NULL DEFAULT '{}',     -- {"name": [value, "source"]}
	UNIQUE (builderid, number)
);
CREATE INDEX builds_builderid ON builds(builderid);
CREATE INDEX builds_builderid_complete ON builds(builderid, complete);
CREATE INDEX builds_buildrequestid ON builds(buildrequestid);
CREATE INDEX builds_workerid ON builds(workerid);
CREATE INDEX builds_complete ON builds(complete);
CREATE INDEX builds_started_at ON builds(started_at);
CREATE INDEX builds_running ON builds(masterid) WHERE complete = 0;

CREATE TABLE steps (
	id INTEGER PRIMARY KEY,
	number INTEGER NOT NULL,
	name TEXT NOT NULL,
	buildid INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
	started_at REAL,
	complete INTEGER NOT NULL DEFAULT 0,
	complete_at REAL,
	state_string TEXT NOT NULL DEFAULT '',
	results INTEGER,                           -- NULL until finished
	urls TEXT NOT NULL DEFAULT '[]',           -- [{"name": .., "url": ..}]
	hidden INTEGER NOT NULL DEFAULT 0,
	UNIQUE (buildid, number),
	UNIQUE (buildid, name)
);
CREATE INDEX steps_buildid ON steps(buildid);

CREATE TABLE logs (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	slug TEXT NOT NULL,
	stepid INTEGER NOT NULL REFERENCES steps(id) ON DELETE CASCADE,
	complete INTEGER NOT NULL DEFAULT 0,
	num_lines INTEGER NOT NULL DEFAULT 0,
	type TEXT NOT NULL,                        -- 's' stdio, 't' text, 'h' html
	bytes INTEGER NOT NULL DEFAULT 0,          -- uncompressed bytes stored (for the cap)
	truncated INTEGER NOT NULL DEFAULT 0,
	UNIQUE (stepid, name),
	UNIQUE (stepid, slug)
);
CREATE INDEX logs_stepid ON logs(stepid);

-- Line-aligned pieces of a log: lines [first_line, last_line], zstd-compressed
-- once closed (compressed = 1); the open tail chunk is stored uncompressed.
-- content comes last so that scanning the other columns never reads the blob.
CREATE TABLE logchunks (
	logid INTEGER NOT NULL REFERENCES logs(id) ON DELETE CASCADE,
	first_line INTEGER NOT NULL,
	last_line INTEGER NOT NULL,
	compressed INTEGER NOT NULL DEFAULT 0,
	content BLOB NOT NULL
);
CREATE UNIQUE INDEX logchunks_first_line ON logchunks(logid, first_line);
