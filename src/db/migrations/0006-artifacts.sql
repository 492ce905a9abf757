-- Kiln schema, version 6: artifacts, the files a build's upload steps
-- stored under BASEDIR/artifacts (path is relative to that directory).
-- Independent of 0004 and 0005: it only adds a table.

-- One uploaded file.  Rows go with their build (and step); the purge
-- removes the file first, then the row.
CREATE TABLE artifacts (
	id INTEGER PRIMARY KEY,
	buildid INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
	stepid INTEGER REFERENCES steps(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	path TEXT NOT NULL,
	size INTEGER NOT NULL,
	sha256 TEXT NOT NULL,
	created_at REAL NOT NULL
);
CREATE INDEX artifacts_buildid ON artifacts(buildid);
CREATE INDEX artifacts_created ON artifacts(created_at);
