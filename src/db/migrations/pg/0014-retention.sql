-- PostgreSQL's dialect of ../0014-retention.sql (issue 14): the same tables, columns,
-- indexes and triggers, checked by tests/unit/test-pg-schema.c.
-- Kiln schema, version 14 (slice "retention"): what the retention purge
-- (db-sqlite-retention.c, master/retention.c) needs to find expired rows
-- cheaply and to delete a build without scanning other tables.

-- A log whose content (its logchunks) the retention removed: the row and
-- its metadata (num_lines, bytes) stay, the API says content_removed.
ALTER TABLE logs ADD COLUMN content_removed_at DOUBLE PRECISION;
-- the logs that still have content, in id order (the purge's cursor)
CREATE INDEX logs_with_content ON logs(complete) WHERE content_removed_at IS NULL;

-- Foreign keys whose child column had no index (buildrequests.collapsed_into has one, 0003): deleting a build, step
-- or change looks these up (ON DELETE actions), which was a full scan.
CREATE INDEX numbers_stepid ON numbers(stepid);
CREATE INDEX artifacts_stepid ON artifacts(stepid);
CREATE INDEX changes_parent_changeid ON changes(parent_changeid);
CREATE INDEX push_submissions_buildid ON push_submissions(buildid);
CREATE INDEX sourcestamps_patchid ON sourcestamps(patchid);
