-- Kiln schema, version 3: schedulers and the queue.
-- Scheduler state itself lives in object_state (0002) as JSON per scheduler.

-- Try patches (Buildbot's patches table): applied after checking out the
-- sourcestamp's revision.  body is the diff as uploaded.
CREATE TABLE patches (
	id INTEGER PRIMARY KEY,
	patchlevel INTEGER NOT NULL DEFAULT 1,
	body BLOB NOT NULL,
	subdir TEXT,
	patch_author TEXT,
	patch_comment TEXT
);
ALTER TABLE sourcestamps ADD COLUMN patchid INTEGER REFERENCES patches(id);

-- A request merged into another request's build (collapse_requests): the
-- build that built it; it completes with that build's results.
ALTER TABLE buildrequests ADD COLUMN collapsed_into INTEGER REFERENCES builds(id);
CREATE INDEX buildrequests_collapsed_into ON buildrequests(collapsed_into)
	WHERE collapsed_into IS NOT NULL;
