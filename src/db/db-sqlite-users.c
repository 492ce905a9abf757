/*
 * User objects on SQLite (db.h "users", slice "users"): an administrator's
 * add, update and remove, the look-ups authentication and reporters need,
 * and a build's interested users.  Changes create and link users as they
 * are stored (db-sqlite-changes.c).  Schema: migrations/0002-changes.sql
 * and 0009-users.sql.  These calls are rare, so their statements come from
 * the small dynamic cache rather than fixed statement ids.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"

/* --- validation --------------------------------------------------------------------- */

/* 0 if v is a text value the users tables accept: non-empty (unless
 * empty_ok), at most max bytes, no control characters. */
static int sqlite_users_check_text(struct db *db, const char *what, const char *v, size_t max,
				   bool empty_ok)
{
	size_t n = strlen(v);
	if (n == 0 && !empty_ok)
		return db_failf(db, -EINVAL, "%s is empty", what);
	if (n > max)
		return db_failf(db, -EINVAL, "%s is longer than %zu bytes", what, max);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return db_failf(db, -EINVAL, "%s contains a control character", what);
	return 0;
}

static int sqlite_users_check_type(struct db *db, const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > DB_USER_TYPE_MAX)
		return db_failf(db, -EINVAL, "identity type '%.64s' must have 1 to %d characters",
				t, DB_USER_TYPE_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return db_failf(db, -EINVAL,
					"identity type '%.64s' may only have letters, digits, "
					"'_', '-' and '.'",
					t);
	}
	return 0;
}

/* A crypto_pwhash_str argon2id string: "$argon2id$v=19$m=...,t=...,p=...$salt$hash".
 * Only its form is checked here (libsodium verifies it at login). */
static bool sqlite_users_is_hash(const char *h)
{
	size_t n = strlen(h);
	if (n < 40 || n > 128 || strncmp(h, "$argon2id$v=", 12))
		return false;
	int dollars = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		if (c <= 0x20 || c >= 0x7f)
			return false;
		dollars += c == '$';
	}
	return dollars == 5;
}

int db_users_check(struct db *db, const struct db_user_set *u, bool adding)
{
	int r;
	if (adding && !u->identifier)
		return db_failf(db, -EINVAL, "identifier is missing");
	if (u->identifier && (r = sqlite_users_check_text(db, "identifier", u->identifier,
							  DB_USER_TEXT_MAX, false)) < 0)
		return r;
	if (u->bb_username && (r = sqlite_users_check_text(db, "username", u->bb_username,
							   DB_USER_TEXT_MAX, !adding)) < 0)
		return r;
	if (u->bb_password && *u->bb_password && !sqlite_users_is_hash(u->bb_password))
		return db_failf(db, -EINVAL,
				"password is not an argon2id hash (crypto_pwhash_str): "
				"plain passwords are never stored");
	if (u->bb_password && *u->bb_password && adding && !u->bb_username)
		return db_failf(db, -EINVAL, "a password needs a username");
	if (u->bb_password && *u->bb_password && u->bb_username && !*u->bb_username)
		return db_failf(db, -EINVAL, "a password needs a username");
	if (u->ninfo > DB_USER_INFO_MAX)
		return db_failf(db, -EINVAL, "more than %d identities in one call",
				DB_USER_INFO_MAX);
	for (size_t i = 0; i < u->ninfo; i++) {
		const struct db_user_info *in = &u->info[i];
		if (!in->attr_type || !in->attr_data)
			return db_failf(db, -EINVAL, "identity %zu has no type or value", i + 1);
		if ((r = sqlite_users_check_type(db, in->attr_type)) < 0)
			return r;
		if ((r = sqlite_users_check_text(db, "identity value", in->attr_data,
						 DB_USER_TEXT_MAX, !adding)) < 0)
			return r;
	}
	return 0;
}

/* --- look-ups ----------------------------------------------------------------------- */

static int sqlite_users_one(struct db *db, const char *sql, const char *a, const char *b,
			    int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(db, sql);
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, a);
	if (b)
		db_bind_text(s, 2, b);
	int r = db_step_row(db, s, "find user");
	if (r == 1)
		*ret = sqlite3_column_int64(s, 0);
	return r;
}

int db_user_by_identifier(struct db *db, const char *identifier, int64_t *ret_uid)
{
	return sqlite_users_one(db, "SELECT id FROM users WHERE identifier = ?1", identifier, NULL,
				ret_uid);
}

int db_user_by_username(struct db *db, const char *bb_username, int64_t *ret_uid)
{
	return sqlite_users_one(db, "SELECT id FROM users WHERE bb_username = ?1", bb_username,
				NULL, ret_uid);
}

int db_user_by_ident(struct db *db, const char *attr_type, const char *attr_data, int64_t *ret_uid)
{
	return sqlite_users_one(
		db, "SELECT userid FROM users_info WHERE attr_type = ?1 AND attr_data = ?2",
		attr_type, attr_data, ret_uid);
}

static int sqlite_users_exists(struct db *db, int64_t uid)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(db, "SELECT 1 FROM users WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, uid);
	return db_step_row(db, s, "find user");
}

int db_user_password_hash(struct db *db, int64_t uid, char **ret_hash)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "SELECT bb_password FROM users WHERE id = ?1 AND bb_password IS NOT NULL");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, uid);
	int r = db_step_row(db, s, "read password hash");
	if (r == 1)
		*ret_hash = xstrdup((const char *)sqlite3_column_text(s, 0));
	return r;
}

/* --- writes ------------------------------------------------------------------------- */

/* Runs s; a UNIQUE failure becomes -EEXIST with message what. */
static int sqlite_users_step_unique(struct db *db, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return db_failf(db, -EEXIST, "%s", what);
	return db_fail(db, "write user");
}

static int sqlite_users_info_set(struct db *db, int64_t uid, const struct db_user_info *in,
				 bool replace)
{
	int r;
	if (replace) {
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
			db, "DELETE FROM users_info WHERE userid = ?1 AND attr_type = ?2");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, uid);
		db_bind_text(s, 2, in->attr_type);
		if ((r = db_step_done(db, s, "remove identity")) < 0)
			return r;
	}
	if (!*in->attr_data)
		return 0;
	int64_t owner = 0;
	if ((r = db_user_by_ident(db, in->attr_type, in->attr_data, &owner)) < 0)
		return r;
	if (r == 1)
		return owner == uid ? 0
				    : db_failf(db, -EEXIST, "identity %s '%s' is user %lld's",
					       in->attr_type, in->attr_data, (long long)owner);
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "INSERT INTO users_info (userid, attr_type, attr_data) VALUES (?1, ?2, ?3)");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, uid);
	db_bind_text(s, 2, in->attr_type);
	db_bind_text(s, 3, in->attr_data);
	if ((r = db_step_done(db, s, "add identity")) < 0)
		return r;
	if (strcmp(in->attr_type, "email"))
		return 0;
	/* the users row keeps the address too (reporters' first choice) */
	_cleanup_stmt_ sqlite3_stmt *e =
		db_stmt_dynamic(db, "UPDATE users SET email = ?2 WHERE id = ?1");
	if (!e)
		return KILN_EDB;
	sqlite3_bind_int64(e, 1, uid);
	db_bind_text(e, 2, in->attr_data);
	return db_step_done(db, e, "set user email");
}

static int sqlite_users_add(struct db *db, const struct db_user_set *u, int64_t *ret_uid)
{
	int64_t other = 0;
	int r = db_user_by_identifier(db, u->identifier, &other);
	if (r == 1)
		return db_failf(db, -EEXIST, "identifier '%s' is user %lld's", u->identifier,
				(long long)other);
	if (r == 0 && u->bb_username && *u->bb_username &&
	    (r = db_user_by_username(db, u->bb_username, &other)) == 1)
		return db_failf(db, -EEXIST, "username '%s' is user %lld's", u->bb_username,
				(long long)other);
	if (r < 0)
		return r;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt_dynamic(db, "INSERT INTO users (identifier, bb_username, "
					    "bb_password) VALUES (?1, ?2, ?3)");
		if (!s)
			return KILN_EDB;
		db_bind_text(s, 1, u->identifier);
		db_bind_text(s, 2, u->bb_username && *u->bb_username ? u->bb_username : NULL);
		db_bind_text(s, 3, u->bb_password && *u->bb_password ? u->bb_password : NULL);
		if ((r = sqlite_users_step_unique(db, s, "identifier or username taken")) < 0)
			return r;
	}
	int64_t uid = sqlite3_last_insert_rowid(db->h);
	for (size_t i = 0; i < u->ninfo; i++)
		if ((r = sqlite_users_info_set(db, uid, &u->info[i], false)) < 0)
			return r;
	*ret_uid = uid;
	return 0;
}

int db_user_add(struct db *db, const struct db_user_set *u, int64_t *ret_uid)
{
	int r = db_users_check(db, u, true);
	if (r < 0)
		return r;
	int64_t uid = 0;
	r = WRITE(sqlite_users_add(db, u, &uid));
	if (r >= 0 && ret_uid)
		*ret_uid = uid;
	return r;
}

static int sqlite_users_update(struct db *db, int64_t uid, const struct db_user_set *u)
{
	int r = sqlite_users_exists(db, uid);
	if (r == 0)
		return db_failf(db, KILN_ENOTFOUND, "no user %lld", (long long)uid);
	if (r < 0)
		return r;
	int64_t other = 0;
	if (u->identifier) {
		if ((r = db_user_by_identifier(db, u->identifier, &other)) < 0)
			return r;
		if (r == 1 && other != uid)
			return db_failf(db, -EEXIST, "identifier '%s' is user %lld's",
					u->identifier, (long long)other);
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt_dynamic(db, "UPDATE users SET identifier = ?2 WHERE id = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, uid);
		db_bind_text(s, 2, u->identifier);
		if ((r = sqlite_users_step_unique(db, s, "identifier taken")) < 0)
			return r;
	}
	if (u->bb_username) {
		if (*u->bb_username) {
			if ((r = db_user_by_username(db, u->bb_username, &other)) < 0)
				return r;
			if (r == 1 && other != uid)
				return db_failf(db, -EEXIST, "username '%s' is user %lld's",
						u->bb_username, (long long)other);
		}
		/* no username: no password either (nothing could log in with it) */
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
			db, "UPDATE users SET bb_username = ?2, bb_password = CASE WHEN ?2 IS NULL "
			    "THEN NULL ELSE bb_password END WHERE id = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, uid);
		db_bind_text(s, 2, *u->bb_username ? u->bb_username : NULL);
		if ((r = sqlite_users_step_unique(db, s, "username taken")) < 0)
			return r;
	}
	if (u->bb_password) {
		if (*u->bb_password) {
			_cleanup_stmt_ sqlite3_stmt *c = db_stmt_dynamic(
				db,
				"SELECT 1 FROM users WHERE id = ?1 AND bb_username IS NOT NULL");
			if (!c)
				return KILN_EDB;
			sqlite3_bind_int64(c, 1, uid);
			if ((r = db_step_row(db, c, "read user")) < 0)
				return r;
			if (r == 0)
				return db_failf(db, -EINVAL, "a password needs a username");
		}
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt_dynamic(db, "UPDATE users SET bb_password = ?2 WHERE id = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, uid);
		db_bind_text(s, 2, *u->bb_password ? u->bb_password : NULL);
		if ((r = db_step_done(db, s, "set password")) < 0)
			return r;
	}
	for (size_t i = 0; i < u->ninfo; i++)
		if ((r = sqlite_users_info_set(db, uid, &u->info[i], true)) < 0)
			return r;
	return 0;
}

int db_user_update(struct db *db, int64_t uid, const struct db_user_set *u)
{
	int r = db_users_check(db, u, false);
	if (r < 0)
		return r;
	return WRITE(sqlite_users_update(db, uid, u));
}

static int sqlite_users_remove(struct db *db, int64_t uid)
{
	/* identities and change links go by ON DELETE CASCADE */
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(db, "DELETE FROM users WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, uid);
	int r = db_step_done(db, s, "remove user");
	if (r < 0)
		return r;
	if (sqlite3_changes(db->h) == 0)
		return db_failf(db, KILN_ENOTFOUND, "no user %lld", (long long)uid);
	return 0;
}

int db_user_remove(struct db *db, int64_t uid)
{
	return WRITE(sqlite_users_remove(db, uid));
}

/* --- interested users --------------------------------------------------------------- */

static int sqlite_users_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int db_build_interested_users(struct db *db, int64_t buildid, const char *const *extras,
			      size_t nextras, int64_t **ret_uids, size_t *ret_n)
{
	*ret_uids = NULL;
	*ret_n = 0;
	int r = db_build_exists(db, buildid);
	if (r == 0)
		return db_failf(db, KILN_ENOTFOUND, "no build %lld", (long long)buildid);
	if (r < 0)
		return r;
	int64_t *v = NULL;
	size_t n = 0, alloc = 0;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
			db, "SELECT DISTINCT cu.userid FROM builds b "
			    "JOIN buildrequests br ON br.id = b.buildrequestid "
			    "JOIN buildset_changes bc ON bc.buildsetid = br.buildsetid "
			    "JOIN change_users cu ON cu.changeid = bc.changeid WHERE b.id = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, buildid);
		while ((r = db_step_row(db, s, "blamelist users")) == 1) {
			if (n == alloc)
				v = xreallocarray(v, alloc = alloc ? 2 * alloc : 8, sizeof(*v));
			v[n++] = sqlite3_column_int64(s, 0);
		}
	}
	for (size_t i = 0; r >= 0 && i < nextras; i++) {
		if (!extras[i] || !*extras[i])
			continue;
		int64_t uid = 0;
		r = db_user_by_identifier(db, extras[i], &uid);
		if (r == 0)
			r = sqlite_users_one(db,
					     "SELECT userid FROM users_info WHERE attr_data = ?1 "
					     "ORDER BY userid LIMIT 1",
					     extras[i], NULL, &uid);
		if (r == 1) {
			if (n == alloc)
				v = xreallocarray(v, alloc = alloc ? 2 * alloc : 8, sizeof(*v));
			v[n++] = uid;
		}
	}
	if (r < 0) {
		free(v);
		return r;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), sqlite_users_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || v[k - 1] != v[i])
			v[k++] = v[i];
	*ret_uids = v;
	*ret_n = k;
	return 0;
}
