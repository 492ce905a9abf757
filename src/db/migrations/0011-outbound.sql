-- Kiln schema, version 11 (slice "statuses"): the commit-status reporters'
-- persistent outbound queue (docs/REPORTERS.md "The outbound queue").
-- outbound: one row per status still to send, written in the same batch as
-- the build event that made it, deleted when the peer answers 2xx (or on a
-- permanent 4xx).  reporter: the reporter's name; skey: "repo|sha|context";
-- path: relative to the reporter's base URL (its credentials are never
-- stored: they come from master.lua at send time); body: the JSON to POST.
-- next_at: epoch milliseconds before which it is not tried (backoff).
-- outbound_last: the last state queued per (reporter, skey), so the same
-- state is not sent twice, restarts included.
CREATE TABLE outbound (
	id INTEGER PRIMARY KEY,
	reporter TEXT NOT NULL,
	skey TEXT NOT NULL,
	state TEXT NOT NULL,
	path TEXT NOT NULL,
	body TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbound_reporter ON outbound (reporter, id);
CREATE TABLE outbound_last (
	reporter TEXT NOT NULL,
	skey TEXT NOT NULL,
	state TEXT NOT NULL,
	at INTEGER NOT NULL,
	PRIMARY KEY (reporter, skey)
);
