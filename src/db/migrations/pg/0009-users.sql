-- PostgreSQL's dialect of ../0009-users.sql (issue 14): the same tables, columns,
-- indexes and triggers, checked by tests/unit/test-pg-schema.c.
-- Kiln schema, version 9 (slice "users"): user objects as Buildbot models
-- them.  The users, users_info and change_users tables exist since
-- version 2 (users.id is Buildbot's uid, users_info.userid its uid); this
-- adds the credentials part of Buildbot's users table: bb_username (unique
-- when set) and bb_password, which only ever holds an argon2id hash string
-- as libsodium's crypto_pwhash_str writes it ("$argon2id$v=19$..."), never
-- a password: the CHECK refuses anything else.
ALTER TABLE users ADD COLUMN bb_username TEXT;
ALTER TABLE users ADD COLUMN bb_password TEXT
	CHECK (bb_password IS NULL OR substr(bb_password, 1, 10) = '$argon2id$');
CREATE UNIQUE INDEX users_bb_username ON users(bb_username);
