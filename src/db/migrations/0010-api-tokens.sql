-- Kiln schema, version 10 (slice "tokens"): API tokens for the CLI,
-- sendchange, try and push (docs/AUTH.md).  A token is 32 random bytes
-- shown once as "kiln_" + base64url; only its SHA-256 is stored (hash, 32
-- bytes, unique).  uid: the user it acts for, or NULL.  scopes: a comma
-- list of force, stop, cancel, sendchange, try, push, admin, view.  Times
-- are epoch seconds; revoked_at / expires_at NULL: not revoked / never.
CREATE TABLE api_tokens (
	id INTEGER PRIMARY KEY,
	uid INTEGER REFERENCES users(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	hash BLOB NOT NULL UNIQUE CHECK (typeof(hash) = 'blob' AND length(hash) = 32),
	scopes TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	last_used_at INTEGER,
	revoked_at INTEGER,
	expires_at INTEGER
);
