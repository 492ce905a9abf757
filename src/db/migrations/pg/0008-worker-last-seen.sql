-- PostgreSQL's dialect of ../0008-worker-last-seen.sql (issue 14): the same tables, columns,
-- indexes and triggers, checked by tests/unit/test-pg-schema.c.
-- Kiln schema, version 8 (slice "uimisc"): when the master last heard from
-- each worker (Unix seconds), written when it connects and disconnects and
-- at most once a minute while it stays connected; NULL: never connected.
-- Served as "last_seen" in /api/v2/workers.
ALTER TABLE workers ADD COLUMN last_seen DOUBLE PRECISION;
