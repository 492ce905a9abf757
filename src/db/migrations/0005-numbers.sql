-- Kiln schema, version 5: numbers recorded by builds, kept as series per
-- builder and name (build_duration, step_duration:NAME, warnings, ...).
-- Independent of 0004: it only adds a table.

-- One recorded value.  stepid is NULL for numbers of the whole build.
-- Rows of a series are read newest first by build (buildid grows with the
-- build number within a builder), and the value before a build is one seek.
CREATE TABLE numbers (
	id INTEGER PRIMARY KEY,
	builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
	buildid INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
	stepid INTEGER REFERENCES steps(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	value REAL NOT NULL,
	recorded_at REAL NOT NULL
);
CREATE INDEX numbers_series ON numbers(builderid, name, buildid);
CREATE INDEX numbers_buildid ON numbers(buildid);
