-- Kiln schema, version 8 (slice "uimisc"): when the master last heard from
-- each worker (Unix seconds), written when it connects and disconnects and
-- at most once a minute while it stays connected; NULL: never connected.
-- Served as "last_seen" in /api/v2/workers.
ALTER TABLE workers ADD COLUMN last_seen REAL;
