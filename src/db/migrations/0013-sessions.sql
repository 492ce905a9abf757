-- Kiln schema, version 13 (slice "weblogin"): web login sessions and the
-- roles a user object grants (docs/AUTH.md).  A session is 32 random bytes
-- kept by the browser in the kiln_session cookie; only their SHA-256 is
-- stored (hash, 32 bytes, unique).  uid: the database user, or NULL for a
-- user of the htpasswd file (username says who).  Times are epoch seconds:
-- expires_at is the absolute end, last_seen_at drives the idle timeout.
-- users.roles: a comma list of admin, force, stop, cancel, view (NULL: none
-- beyond what master.lua's auth.roles grants).
CREATE TABLE sessions (
	id INTEGER PRIMARY KEY,
	hash BLOB NOT NULL UNIQUE CHECK (typeof(hash) = 'blob' AND length(hash) = 32),
	uid INTEGER REFERENCES users(id) ON DELETE CASCADE,
	username TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
ALTER TABLE users ADD COLUMN roles TEXT;
