/*
 * Web login sessions on SQLite (db.h "web sessions", slice "weblogin";
 * docs/AUTH.md): a session is 32 random bytes the browser keeps in the
 * kiln_session cookie; the table keeps only their SHA-256, so a copy of
 * the database gives no usable session.  Schema:
 * migrations/0013-sessions.sql.  Logins are rare and a look-up is one
 * indexed read, so the statements come from the dynamic cache.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"

static int session_add(struct db *db, const unsigned char *hash, int64_t uid, const char *username,
		       int64_t now, int64_t expires_at, int64_t *ret_id)
{
	int r = db_exec_int64(db, "DELETE FROM sessions WHERE expires_at <= ?1", now,
			      "delete expired sessions");
	if (r < 0)
		return r;
	r = db_exec_int64(db,
			  "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions ORDER BY "
			  "last_seen_at DESC, id DESC LIMIT -1 OFFSET ?1)",
			  DB_SESSIONS_MAX - 1, "delete old sessions");
	if (r < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "INSERT INTO sessions (hash, uid, username, created_at, last_seen_at, "
		    "expires_at) VALUES (?1, ?2, ?3, ?4, ?4, ?5)");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_blob(s, 1, hash, DB_SESSION_HASH_BYTES, SQLITE_TRANSIENT);
	if (uid)
		sqlite3_bind_int64(s, 2, uid);
	db_bind_text(s, 3, username);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_int64(s, 5, expires_at);
	if ((r = db_step_done(db, s, "add session")) < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(db->h);
	return 0;
}

int db_session_add(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES], int64_t uid,
		   const char *username, int64_t now, int64_t expires_at, int64_t *ret_id)
{
	if (!username || !*username || strlen(username) > DB_USER_TEXT_MAX)
		return db_failf(db, -EINVAL, "bad session username");
	if (db->pg) { /* its id comes with the commit: none here */
		if (ret_id)
			*ret_id = 0;
		return db_pg_session_add(db, hash, uid, username, now, expires_at);
	}
	int64_t id = 0;
	int r = WRITE(session_add(db, hash, uid, username, now, expires_at, &id));
	if (r >= 0 && ret_id)
		*ret_id = id;
	return r;
}

static int session_delete_id(struct db *db, int64_t id)
{
	return db_exec_int64(db, "DELETE FROM sessions WHERE id = ?1", id, "delete session");
}

bool db_session_dead(const struct db_session *s, int64_t now, int64_t idle_s)
{
	return s->expires_at <= now || (idle_s > 0 && now - s->last_seen_at > idle_s);
}

bool db_session_note_use(const struct db_session *s, int64_t now, int64_t idle_s)
{
	int64_t every = idle_s > 0 && idle_s / 2 < 60 ? idle_s / 2 : 60;
	return now - s->last_seen_at >= every || now < s->last_seen_at;
}

int db_session_get(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES], int64_t now,
		   int64_t idle_s, struct db_session *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "SELECT id, uid, username, created_at, last_seen_at, expires_at, hash "
		    "FROM sessions WHERE hash = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_blob(s, 1, hash, DB_SESSION_HASH_BYTES, SQLITE_TRANSIENT);
	int r = db_step_row(db, s, "find session");
	if (r <= 0)
		return r;
	/* the index finds the row; the hash itself is compared in constant time */
	const void *got = sqlite3_column_blob(s, 6);
	if (!got || sqlite3_column_bytes(s, 6) != DB_SESSION_HASH_BYTES ||
	    sodium_memcmp(got, hash, DB_SESSION_HASH_BYTES) != 0)
		return 0;
	struct db_session t = {
		.id = sqlite3_column_int64(s, 0),
		.uid = sqlite3_column_type(s, 1) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, 1),
		.created_at = sqlite3_column_int64(s, 3),
		.last_seen_at = sqlite3_column_int64(s, 4),
		.expires_at = sqlite3_column_int64(s, 5),
	};
	const char *u = (const char *)sqlite3_column_text(s, 2);
	snprintf(t.username, sizeof(t.username), "%s", u ? u : "");
	sqlite3_reset(s);
	if (db_session_dead(&t, now, idle_s)) {
		if ((r = WRITE1(session_delete_id(db, t.id))) < 0)
			return r;
		return 0;
	}
	if (db_session_note_use(&t, now, idle_s)) {
		_cleanup_stmt_ sqlite3_stmt *u2 =
			db_stmt_dynamic(db, "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1");
		if (!u2)
			return KILN_EDB;
		sqlite3_bind_int64(u2, 1, t.id);
		sqlite3_bind_int64(u2, 2, now);
		if ((r = WRITE1(db_step_done(db, u2, "note session use"))) < 0)
			return r;
		t.last_seen_at = now;
	}
	if (ret)
		*ret = t;
	return 1;
}

static int session_delete(struct db *db, const unsigned char *hash)
{
	_cleanup_stmt_ sqlite3_stmt *d =
		db_stmt_dynamic(db, "DELETE FROM sessions WHERE hash = ?1");
	if (!d)
		return KILN_EDB;
	sqlite3_bind_blob(d, 1, hash, DB_SESSION_HASH_BYTES, SQLITE_TRANSIENT);
	return db_step_done(db, d, "delete session");
}

int db_session_delete(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES])
{
	if (db->pg) /* 0: whether there was one is known at the commit */
		return db_pg_session_delete(db, hash);
	int r = WRITE1(session_delete(db, hash));
	return r < 0 ? r : sqlite3_changes(db->h) > 0;
}

int db_login_users_count(struct db *db, int64_t *ret_n)
{
	if (db->pg)
		return db_pg_login_users_count(db, ret_n);
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "SELECT count(*) FROM users WHERE bb_username IS NOT NULL AND bb_password IS "
		    "NOT NULL");
	if (!s)
		return KILN_EDB;
	return db_step_int64(db, s, "count login users", ret_n);
}

int db_user_login(struct db *db, int64_t uid, char *username, size_t un, char *roles, size_t rn)
{
	if (un)
		username[0] = '\0';
	if (rn)
		roles[0] = '\0';
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt_dynamic(db, "SELECT bb_username, roles FROM users WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, uid);
	int r = db_step_row(db, s, "read user login");
	if (r == 1) {
		const char *u = (const char *)sqlite3_column_text(s, 0);
		const char *t = (const char *)sqlite3_column_text(s, 1);
		if (un)
			snprintf(username, un, "%s", u ? u : "");
		if (rn)
			snprintf(roles, rn, "%s", t ? t : "");
	}
	return r;
}

static int user_set_roles(struct db *db, int64_t uid, const char *roles)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt_dynamic(db, "UPDATE users SET roles = ?2 WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, uid);
	if (roles && *roles)
		db_bind_text(s, 2, roles);
	return db_update_one(db, s, "set user roles");
}

int db_user_set_roles(struct db *db, int64_t uid, const char *roles)
{
	if (roles && strlen(roles) > DB_ROLES_TEXT_MAX)
		return db_failf(db, -EINVAL, "roles longer than %d bytes", DB_ROLES_TEXT_MAX);
	if (db->pg)
		return db_pg_user_set_roles(db, uid, roles);
	return WRITE1(user_set_roles(db, uid, roles));
}

static int sessions_delete_user(struct db *db, int64_t uid)
{
	_cleanup_stmt_ sqlite3_stmt *d = db_stmt_dynamic(db, "DELETE FROM sessions WHERE uid = ?1");
	if (!d)
		return KILN_EDB;
	sqlite3_bind_int64(d, 1, uid);
	return db_step_done(db, d, "delete a user's sessions");
}

int db_sessions_delete_user(struct db *db, int64_t uid)
{
	if (db->pg)
		return db_pg_sessions_delete_user(db, uid);
	int r = WRITE1(sessions_delete_user(db, uid));
	return r < 0 ? r : sqlite3_changes(db->h);
}
