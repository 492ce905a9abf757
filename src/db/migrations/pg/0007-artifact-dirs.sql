-- PostgreSQL's dialect of ../0007-artifact-dirs.sql (issue 14): the same tables, columns,
-- indexes and triggers, checked by tests/unit/test-pg-schema.c.
-- Kiln schema, version 7 (slice "artcli"): a directory_upload's artifact
-- row is the tar the worker sent, kept beside the directory it was
-- extracted to; dir names that directory (relative to BASEDIR/artifacts),
-- which the retention removes with the row.  NULL for a file upload.
ALTER TABLE artifacts ADD COLUMN dir TEXT;
