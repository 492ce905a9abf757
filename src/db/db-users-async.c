/*
 * Users, API tokens and web sessions answered on the loop (db.h, issue
 * 14): on PostgreSQL db-pg-users.c sends them; on SQLite the synchronous
 * call runs at once and its answer waits for a later loop turn
 * (db_async_later), so callers meet the same order of events on both.
 */
#include "db/db-pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "common/xalloc.h"

/* One SQLite answer waiting for its turn: the callback that is set gets
 * it. */
struct dua {
	db_id_fn done;
	db_user_login_fn login;
	db_token_fn token;
	db_session_fn session;
	void *arg;
	int r;
	int64_t id;
	char err[512];
	struct db_token t;
	struct db_session s;
	char username[DB_USER_TEXT_MAX + 1], roles[DB_ROLES_TEXT_MAX + 1];
	char *hash; /* owned: the login's password hash */
};

static void dua_free(void *x)
{
	struct dua *a = x;
	if (a->hash) {
		sodium_memzero(a->hash, strlen(a->hash));
		free(a->hash);
	}
	sodium_memzero(a, sizeof(*a));
	free(a);
}

static void dua_run(void *x, int r)
{
	struct dua *a = x;
	const char *err = r < 0 ? "the database was closed" : a->r < 0 ? a->err : NULL;
	if (r >= 0)
		r = a->r;
	if (a->done) {
		a->done(a->arg, r, r < 0 ? 0 : a->id, err);
	} else if (a->login) {
		struct db_user_login u = {
			.uid = a->id, .username = a->username, .roles = a->roles, .hash = a->hash};
		a->login(a->arg, r, r == 1 ? &u : NULL, err);
	} else if (a->token) {
		a->token(a->arg, r, r == 0 ? &a->t : NULL, err);
	} else {
		a->session(a->arg, r, r == 1 ? &a->s : NULL, err);
	}
	dua_free(a);
}

/* Queues a's answer: r (and db_errmsg when r < 0). */
static int dua_later(struct db *db, struct dua *a, int r)
{
	a->r = r;
	if (r < 0)
		snprintf(a->err, sizeof(a->err), "%s", db_errmsg(db));
	return db_async_later(db, dua_run, a, dua_free);
}

static struct dua *dua_id(db_id_fn done, void *arg)
{
	struct dua *a = xcalloc(1, sizeof(*a));
	a->done = done;
	a->arg = arg;
	return a;
}

int db_user_add_async(struct db *db, const struct db_user_set *u, db_id_fn done, void *arg)
{
	if (db->pg) {
		int r = db_users_check(db, u, true);
		return r < 0 ? dua_later(db, dua_id(done, arg), r)
			     : db_pg_user_add(db, u, done, arg);
	}
	struct dua *a = dua_id(done, arg);
	return dua_later(db, a, db_user_add(db, u, &a->id));
}

int db_user_update_async(struct db *db, int64_t uid, const struct db_user_set *u, bool end_sessions,
			 db_id_fn done, void *arg)
{
	if (db->pg) {
		int r = db_users_check(db, u, false);
		return r < 0 ? dua_later(db, dua_id(done, arg), r)
			     : db_pg_user_update(db, uid, u, end_sessions, done, arg);
	}
	struct dua *a = dua_id(done, arg);
	int r = db_user_update(db, uid, u);
	if (r >= 0 && end_sessions) {
		r = db_sessions_delete_user(db, uid);
		a->id = r > 0 ? r : 0;
	}
	return dua_later(db, a, r < 0 ? r : 0);
}

int db_user_remove_async(struct db *db, int64_t uid, db_id_fn done, void *arg)
{
	if (db->pg)
		return db_pg_user_remove(db, uid, done, arg);
	struct dua *a = dua_id(done, arg);
	a->id = uid;
	return dua_later(db, a, db_user_remove(db, uid));
}

int db_user_find_async(struct db *db, int64_t uid, const char *name, bool by_username,
		       db_id_fn done, void *arg)
{
	if (db->pg)
		return db_pg_user_find(db, uid, name, by_username, done, arg);
	struct dua *a = dua_id(done, arg);
	int r;
	if (uid > 0) {
		char un[1];
		r = db_user_login(db, uid, un, sizeof(un), NULL, 0);
		a->id = r == 1 ? uid : 0;
	} else if (by_username) {
		r = db_user_by_username(db, name ? name : "", &a->id);
	} else {
		r = db_user_by_identifier(db, name ? name : "", &a->id);
	}
	return dua_later(db, a, r);
}

int db_user_login_async(struct db *db, int64_t uid, const char *username, db_user_login_fn done,
			void *arg)
{
	if (db->pg)
		return db_pg_user_login(db, uid, username, done, arg);
	struct dua *a = xcalloc(1, sizeof(*a));
	a->login = done;
	a->arg = arg;
	int r = 1;
	if (uid > 0)
		a->id = uid;
	else
		r = db_user_by_username(db, username ? username : "", &a->id);
	if (r == 1)
		r = db_user_login(db, a->id, a->username, sizeof(a->username), a->roles,
				  sizeof(a->roles));
	if (r == 1 && db_user_password_hash(db, a->id, &a->hash) < 0)
		r = KILN_EDB;
	return dua_later(db, a, r);
}

int db_user_set_roles_async(struct db *db, int64_t uid, const char *roles, db_id_fn done, void *arg)
{
	if (roles && strlen(roles) > DB_ROLES_TEXT_MAX)
		return dua_later(
			db, dua_id(done, arg),
			db_failf(db, -EINVAL, "roles longer than %d bytes", DB_ROLES_TEXT_MAX));
	if (db->pg)
		return db_pg_user_set_roles_async(db, uid, roles, done, arg);
	struct dua *a = dua_id(done, arg);
	a->id = uid;
	int r = db_user_set_roles(db, uid, roles);
	if (r == KILN_ENOTFOUND) /* in PostgreSQL's words (db_user_remove's) */
		db_failf(db, r, "no user %lld", (long long)uid);
	return dua_later(db, a, r);
}

int db_token_add_async(struct db *db, int64_t uid, const char *name,
		       const unsigned char hash[DB_TOKEN_HASH_BYTES], unsigned scopes, int64_t now,
		       int64_t expires_at, db_id_fn done, void *arg)
{
	if (db->pg) {
		int r = db_token_check_name(db, name);
		char sc[128];
		db_token_scopes_format(scopes, sc, sizeof(sc));
		if (r == 0 && !*sc)
			r = db_failf(db, -EINVAL, "a token needs at least one scope");
		if (r == 0 && uid < 0)
			r = db_failf(db, -EINVAL, "bad uid %lld", (long long)uid);
		return r < 0 ? dua_later(db, dua_id(done, arg), r)
			     : db_pg_token_add(db, uid, name, hash, sc, now, expires_at, done, arg);
	}
	struct dua *a = dua_id(done, arg);
	return dua_later(db, a, db_token_add(db, uid, name, hash, scopes, now, expires_at, &a->id));
}

int db_token_revoke_async(struct db *db, int64_t id, int64_t now, db_id_fn done, void *arg)
{
	if (db->pg)
		return db_pg_token_revoke(db, id, now, done, arg);
	struct dua *a = dua_id(done, arg);
	a->id = id;
	return dua_later(db, a, db_token_revoke(db, id, now));
}

int db_token_verify_async(struct db *db, const char *token, unsigned need, int64_t now,
			  db_token_fn done, void *arg)
{
	if (db->pg) {
		size_t plen = strlen(DB_TOKEN_PREFIX);
		if (strlen(token) != DB_TOKEN_TEXT_LEN || strncmp(token, DB_TOKEN_PREFIX, plen)) {
			struct dua *a = xcalloc(1, sizeof(*a));
			a->token = done;
			a->arg = arg;
			return dua_later(
				db, a,
				db_failf(db, KILN_EAUTH,
					 "not a Kiln API token (kiln_ and 43 characters)"));
		}
		unsigned char h[DB_TOKEN_HASH_BYTES];
		crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
		int r = db_pg_token_verify(db, h, need, now, done, arg);
		sodium_memzero(h, sizeof(h));
		return r;
	}
	struct dua *a = xcalloc(1, sizeof(*a));
	a->token = done;
	a->arg = arg;
	return dua_later(db, a, db_token_verify(db, token, need, now, &a->t));
}

int db_session_get_async(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES],
			 int64_t now, int64_t idle_s, db_session_fn done, void *arg)
{
	if (db->pg)
		return db_pg_session_get(db, hash, now, idle_s, done, arg);
	struct dua *a = xcalloc(1, sizeof(*a));
	a->session = done;
	a->arg = arg;
	return dua_later(db, a, db_session_get(db, hash, now, idle_s, &a->s));
}
