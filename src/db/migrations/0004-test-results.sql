-- Kiln schema, version 4: test results, in Buildbot 3.7's data model
-- (test_result_sets, test_results, with test names and code paths stored
-- once per builder).  Kiln's additions: a set's tests_skipped, and each
-- result's results code (0 success, 2 failure, 3 skipped) and message.

CREATE TABLE test_result_sets (
	id INTEGER PRIMARY KEY,
	builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
	buildid INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
	stepid INTEGER NOT NULL REFERENCES steps(id) ON DELETE CASCADE,
	description TEXT,
	category TEXT NOT NULL,
	value_unit TEXT NOT NULL,
	tests_passed INTEGER,
	tests_failed INTEGER,
	tests_skipped INTEGER,
	complete INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX test_result_sets_builderid ON test_result_sets(builderid);
CREATE INDEX test_result_sets_buildid ON test_result_sets(buildid);
CREATE INDEX test_result_sets_stepid ON test_result_sets(stepid);

CREATE TABLE test_names (
	id INTEGER PRIMARY KEY,
	builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	UNIQUE (builderid, name)
);

CREATE TABLE test_code_paths (
	id INTEGER PRIMARY KEY,
	builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
	path TEXT NOT NULL,
	UNIQUE (builderid, path)
);

CREATE TABLE test_results (
	id INTEGER PRIMARY KEY,
	builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
	test_result_setid INTEGER NOT NULL REFERENCES test_result_sets(id) ON DELETE CASCADE,
	test_nameid INTEGER REFERENCES test_names(id) ON DELETE CASCADE,
	test_code_pathid INTEGER REFERENCES test_code_paths(id) ON DELETE CASCADE,
	line INTEGER,
	duration_ns INTEGER,
	value TEXT NOT NULL,
	results INTEGER NOT NULL DEFAULT 0,
	message TEXT
);
CREATE INDEX test_results_setid ON test_results(test_result_setid);
-- a test's history on its builder (newest first by id)
CREATE INDEX test_results_history ON test_results(builderid, test_nameid, id);
