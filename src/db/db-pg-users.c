/*
 * Users, API tokens and web sessions on PostgreSQL (issue 14): the
 * administrator's writes, the login's look-ups and the authentication
 * gate's reads, answered on the loop (db.h "users, tokens and sessions
 * answered on the loop").
 *
 * A write whose answer depends on the rows (a name taken, no such user,
 * too many tokens) is one statement: its checks and its change in one
 * WITH, so that a refusal changes nothing and fails nothing else of the
 * turn's transaction, and the answer (after the commit) says which check
 * refused it, in the words SQLite's calls use.  Only a race with another
 * master writing the same unique name at the same moment can still fail
 * the statement (and its turn's transaction) on the unique index.
 */
#include "db/db-pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/pg-batch.h"
#include "db/pg-col.h"
#include "db/pg-conn.h"
#include "db/pg-params.h"

/* One call's answer: done or its kin, arg, and what the rows decide. */
struct pgu_call {
	struct db *db;
	db_id_fn done;
	db_user_login_fn login;
	db_token_fn token;
	db_session_fn session;
	void *arg;
	int64_t id;
	unsigned need;
	int64_t now, idle_s;
	char hex[2 * DB_TOKEN_HASH_BYTES + 1]; /* the hash looked up, as encode(.., 'hex') */
};

static struct pgu_call *pgu_call(struct db *db, void *arg)
{
	struct pgu_call *c = xcalloc(1, sizeof(*c));
	c->db = db;
	c->arg = arg;
	return c;
}

static void pgu_hex(char out[2 * DB_TOKEN_HASH_BYTES + 1], const unsigned char *h)
{
	sodium_bin2hex(out, 2 * DB_TOKEN_HASH_BYTES + 1, h, DB_TOKEN_HASH_BYTES);
}

/* Sends q as a write whose rows cb gets; its send error into done. */
static int pgu_write(struct db *db, struct pgw *w, const char *sql, pg_conn_result_cb cb,
		     struct pgu_call *c)
{
	struct pg_query q = {
		.sql = sql, .nparams = w->n, .values = w->v, .lengths = w->len, .formats = w->fmt};
	int r = db_pg_write_returning(db, &q, cb, c); /* copies q; frees c on failure */
	pgw_release(w);
	return r;
}

static int pgu_read(struct db *db, struct pgw *w, const char *sql, pg_conn_result_cb cb,
		    struct pgu_call *c)
{
	struct pg_query q = {
		.sql = sql, .nparams = w->n, .values = w->v, .lengths = w->len, .formats = w->fmt};
	int r = db_pg_read(db, &q, cb, c);
	pgw_release(w);
	return r;
}

/* The identities of u as JSON [{"t": type, "d": data}] for
 * json_to_recordset (last_per_type: an update's, where each replaces its
 * type's, so that the last of a type is what stays, as on SQLite);
 * *ret_email the last non-empty email identity's data (borrowed from u),
 * NULL if none.  NULL when a value is not UTF-8. */
static char *pgu_info_json(const struct db_user_set *u, bool last_per_type, const char **ret_email)
{
	json_t *a = json_array();
	*ret_email = NULL;
	for (size_t i = 0; i < u->ninfo; i++) {
		/* users.email: the last non-empty email given, even one a later
		 * entry of its type replaces (SQLite sets it as it goes) */
		if (!strcmp(u->info[i].attr_type, "email") && *u->info[i].attr_data)
			*ret_email = u->info[i].attr_data;
		bool later = false;
		for (size_t k = i + 1; last_per_type && k < u->ninfo && !later; k++)
			later = !strcmp(u->info[k].attr_type, u->info[i].attr_type);
		if (later)
			continue;
		json_t *t = json_string(u->info[i].attr_type);
		json_t *d = json_string(u->info[i].attr_data);
		if (!t || !d) {
			json_decref(t);
			json_decref(d);
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, json_pack("{s:o,s:o}", "t", t, "d", d));
	}
	char *s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

/* --- users -------------------------------------------------------------------------------- */

/* The answer of a user's add or update: one row (id or count, the first
 * refusal's kind and text, sessions ended). */
static void pgu_user_written(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgu_call *c = arg;
	if (r < 0) {
		c->done(c->arg, r, 0, err ? err : "failed");
	} else if (PQntuples(res) < 1 || PQnfields(res) < 3) {
		c->done(c->arg, KILN_EDB, 0, "no answer to a user's write");
	} else if (c->id && pg_col_i64(res, 0, 0) == 0) {
		char why[64];
		snprintf(why, sizeof(why), "no user %" PRId64, c->id);
		c->done(c->arg, KILN_ENOTFOUND, 0, why);
	} else if (!PQgetisnull(res, 0, 1)) {
		int k = (int)pg_col_i64(res, 0, 1);
		c->done(c->arg, k == 3 ? -EINVAL : -EEXIST, 0, pg_col_str(res, 0, 2));
	} else if (c->id) {
		c->done(c->arg, 0, pg_col_i64(res, 0, 3), NULL);
	} else if (PQgetisnull(res, 0, 0)) {
		/* the add's ON CONFLICT met another master's row of the moment */
		c->done(c->arg, -EEXIST, 0, "identifier or username taken");
	} else {
		c->done(c->arg, 0, pg_col_i64(res, 0, 0), NULL);
	}
	free(c);
}

int db_pg_user_add(struct db *db, const struct db_user_set *u, db_id_fn done, void *arg)
{
	/* SQLite's checks in its order: identifier, username, identities */
	static const char sql[] =
		"WITH i AS (SELECT DISTINCT t, d FROM json_to_recordset($4::json) AS x(t text, d "
		"text) WHERE d <> ''), "
		"c AS (SELECT 1 AS k, format('identifier ''%s'' is user %s''s', $1::text, id) AS "
		"why FROM users WHERE identifier = $1 "
		"UNION ALL SELECT 2, format('username ''%s'' is user %s''s', $2::text, id) FROM "
		"users WHERE $2::text IS NOT NULL AND bb_username = $2 "
		"UNION ALL SELECT 4, format('identity %s ''%s'' is user %s''s', f.attr_type, "
		"f.attr_data, f.userid) FROM users_info f JOIN i ON f.attr_type = i.t AND "
		"f.attr_data = i.d), "
		"n AS (INSERT INTO users (identifier, bb_username, bb_password, email) SELECT $1, "
		"$2, $3, $5 WHERE NOT EXISTS (SELECT 1 FROM c) ON CONFLICT DO NOTHING RETURNING "
		"id), "
		"f AS (INSERT INTO users_info (userid, attr_type, attr_data) SELECT n.id, i.t, i.d "
		"FROM n, i ON CONFLICT DO NOTHING) "
		"SELECT (SELECT id FROM n), (SELECT k FROM c ORDER BY k LIMIT 1), "
		"(SELECT why FROM c ORDER BY k LIMIT 1)";
	const char *email = NULL;
	char *info = pgu_info_json(u, false, &email);
	if (!info)
		return db_failf(db, -EINVAL, "an identity is not UTF-8");
	struct pgw w = {0};
	pgw_text(&w, u->identifier);
	pgw_text(&w, u->bb_username && *u->bb_username ? u->bb_username : NULL);
	pgw_text(&w, u->bb_password && *u->bb_password ? u->bb_password : NULL);
	pgw_text(&w, info);
	pgw_text(&w, email);
	struct pgu_call *c = pgu_call(db, arg);
	c->done = done;
	int r = pgu_write(db, &w, sql, pgu_user_written, c);
	free(info);
	return r;
}

int db_pg_user_update(struct db *db, int64_t uid, const struct db_user_set *u, bool end_sessions,
		      db_id_fn done, void *arg)
{
	/* An identity kept as it was is neither deleted nor inserted again
	 * (one statement cannot do both to one row). */
	static const char sql[] =
		"WITH i AS (SELECT t, d FROM json_to_recordset($5::json) AS x(t text, d text)), "
		"u AS (SELECT id, bb_username FROM users WHERE id = $1::bigint), "
		"c AS (SELECT 1 AS k, format('identifier ''%s'' is user %s''s', $2::text, id) AS "
		"why FROM users WHERE $2::text IS NOT NULL AND identifier = $2 AND id <> "
		"$1::bigint "
		"UNION ALL SELECT 2, format('username ''%s'' is user %s''s', $3::text, id) FROM "
		"users WHERE $3::text <> '' AND bb_username = $3 AND id <> $1::bigint "
		"UNION ALL SELECT 3, 'a password needs a username' FROM u WHERE $4::text <> '' AND "
		"(CASE WHEN $3::text IS NULL THEN u.bb_username ELSE NULLIF($3, '') END) IS NULL "
		"UNION ALL SELECT 4, format('identity %s ''%s'' is user %s''s', f.attr_type, "
		"f.attr_data, f.userid) FROM users_info f JOIN i ON f.attr_type = i.t AND "
		"f.attr_data = i.d WHERE i.d <> '' AND f.userid <> $1::bigint), "
		"ok AS (SELECT id FROM u WHERE NOT EXISTS (SELECT 1 FROM c)), "
		"w AS (UPDATE users SET identifier = COALESCE($2, identifier), "
		"bb_username = CASE WHEN $3::text IS NULL THEN bb_username ELSE NULLIF($3, '') "
		"END, "
		"bb_password = CASE WHEN $3::text = '' THEN NULL WHEN $4::text IS NULL THEN "
		"bb_password ELSE NULLIF($4, '') END, email = COALESCE($6, email) "
		"WHERE id IN (SELECT id FROM ok) RETURNING id), "
		"dl AS (DELETE FROM users_info WHERE userid IN (SELECT id FROM ok) AND attr_type "
		"IN "
		"(SELECT t FROM i) AND (attr_type, attr_data) NOT IN (SELECT t, d FROM i WHERE d "
		"<> '')), "
		"ins AS (INSERT INTO users_info (userid, attr_type, attr_data) SELECT ok.id, i.t, "
		"i.d FROM ok, i WHERE i.d <> '' ON CONFLICT DO NOTHING), "
		"s AS (DELETE FROM sessions WHERE $7::boolean AND uid IN (SELECT id FROM ok) "
		"RETURNING 1) "
		"SELECT (SELECT count(*) FROM u), (SELECT k FROM c ORDER BY k LIMIT 1), "
		"(SELECT why FROM c ORDER BY k LIMIT 1), (SELECT count(*) FROM s)";
	const char *email = NULL;
	char *info = pgu_info_json(u, true, &email);
	if (!info)
		return db_failf(db, -EINVAL, "an identity is not UTF-8");
	struct pgw w = {0};
	pgw_i64(&w, uid);
	pgw_text(&w, u->identifier);
	pgw_text(&w, u->bb_username);
	pgw_text(&w, u->bb_password);
	pgw_text(&w, info);
	pgw_text(&w, email);
	pgw_text(&w, end_sessions ? "true" : "false");
	struct pgu_call *c = pgu_call(db, arg);
	c->done = done;
	c->id = uid;
	int r = pgu_write(db, &w, sql, pgu_user_written, c);
	free(info);
	return r;
}

/* The answer of a write that must touch a row: its count, else "no X N". */
static void pgu_counted(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgu_call *c = arg;
	if (r < 0) {
		c->done(c->arg, r, 0, err ? err : "failed");
	} else if (PQntuples(res) < 1 || pg_col_i64(res, 0, 0) == 0) {
		char why[64];
		snprintf(why, sizeof(why), "no user %" PRId64, c->id);
		c->done(c->arg, KILN_ENOTFOUND, 0, why);
	} else {
		c->done(c->arg, 0, c->id, NULL);
	}
	free(c);
}

int db_pg_user_remove(struct db *db, int64_t uid, db_id_fn done, void *arg)
{
	/* identities, links to changes, tokens and roles go by ON DELETE CASCADE */
	static const char sql[] = "WITH d AS (DELETE FROM users WHERE id = $1::bigint RETURNING "
				  "id) SELECT count(*) FROM d";
	struct pgw w = {0};
	pgw_i64(&w, uid);
	struct pgu_call *c = pgu_call(db, arg);
	c->done = done;
	c->id = uid;
	return pgu_write(db, &w, sql, pgu_counted, c);
}

int db_pg_user_set_roles_async(struct db *db, int64_t uid, const char *roles, db_id_fn done,
			       void *arg)
{
	static const char sql[] = "WITH w AS (UPDATE users SET roles = $2 WHERE id = $1::bigint "
				  "RETURNING id) SELECT count(*) FROM w";
	struct pgw w = {0};
	pgw_i64(&w, uid);
	pgw_text(&w, roles && *roles ? roles : NULL);
	struct pgu_call *c = pgu_call(db, arg);
	c->done = done;
	c->id = uid;
	return pgu_write(db, &w, sql, pgu_counted, c);
}

static void pgu_found(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgu_call *c = arg;
	if (r < 0)
		c->done(c->arg, r, 0, err ? err : "failed");
	else if (PQntuples(res) < 1)
		c->done(c->arg, 0, 0, NULL);
	else
		c->done(c->arg, 1, pg_col_i64(res, 0, 0), NULL);
	free(c);
}

int db_pg_user_find(struct db *db, int64_t uid, const char *name, bool by_username, db_id_fn done,
		    void *arg)
{
	static const char *const sql[] = {
		"SELECT id FROM users WHERE id = $1::bigint",
		"SELECT id FROM users WHERE identifier = $1",
		"SELECT id FROM users WHERE bb_username = $1",
	};
	struct pgw w = {0};
	int which = uid > 0 ? 0 : by_username ? 2 : 1;
	if (uid > 0)
		pgw_i64(&w, uid);
	else
		pgw_text(&w, name ? name : "");
	struct pgu_call *c = pgu_call(db, arg);
	c->done = done;
	return pgu_read(db, &w, sql[which], pgu_found, c);
}

static void pgu_login_read(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgu_call *c = arg;
	if (r < 0) {
		c->login(c->arg, r, NULL, err ? err : "failed");
	} else if (PQntuples(res) < 1) {
		c->login(c->arg, 0, NULL, NULL);
	} else {
		const char *un = pg_col_str(res, 0, 1), *roles = pg_col_str(res, 0, 2);
		struct db_user_login u = {.uid = pg_col_i64(res, 0, 0),
					  .username = un ? un : "",
					  .roles = roles ? roles : "",
					  .hash = pg_col_str(res, 0, 3)};
		c->login(c->arg, 1, &u, NULL);
	}
	free(c);
}

int db_pg_user_login(struct db *db, int64_t uid, const char *username, db_user_login_fn done,
		     void *arg)
{
	static const char *const sql[] = {
		"SELECT id, bb_username, roles, bb_password FROM users WHERE id = $1::bigint",
		"SELECT id, bb_username, roles, bb_password FROM users WHERE bb_username = $1",
	};
	struct pgw w = {0};
	if (uid > 0)
		pgw_i64(&w, uid);
	else
		pgw_text(&w, username ? username : "");
	struct pgu_call *c = pgu_call(db, arg);
	c->login = done;
	return pgu_read(db, &w, sql[uid > 0 ? 0 : 1], pgu_login_read, c);
}

/* --- API tokens --------------------------------------------------------------------------- */

static void pgu_token_added(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgu_call *c = arg;
	char why[128];
	if (r < 0) {
		c->done(c->arg, r, 0, err ? err : "failed");
	} else if (PQntuples(res) < 1) {
		c->done(c->arg, KILN_EDB, 0, "no answer to a token's add");
	} else if (!PQgetisnull(res, 0, 0)) {
		c->done(c->arg, 0, pg_col_i64(res, 0, 0), NULL);
	} else if (pg_col_i64(res, 0, 1) >= DB_TOKENS_MAX) {
		snprintf(why, sizeof(why), "too many tokens (at most %d are kept)", DB_TOKENS_MAX);
		c->done(c->arg, -ENOSPC, 0, why);
	} else {
		snprintf(why, sizeof(why), "no user %" PRId64, c->id);
		c->done(c->arg, KILN_ENOTFOUND, 0, why);
	}
	free(c);
}

int db_pg_token_add(struct db *db, int64_t uid, const char *name,
		    const unsigned char hash[DB_TOKEN_HASH_BYTES], const char *scopes, int64_t now,
		    int64_t expires_at, db_id_fn done, void *arg)
{
	static const char sql[] =
		"WITH c AS (SELECT (SELECT count(*) FROM api_tokens) AS n, ($1::bigint IS NULL OR "
		"EXISTS (SELECT 1 FROM users WHERE id = $1::bigint)) AS u), "
		"i AS (INSERT INTO api_tokens (uid, name, hash, scopes, created_at, expires_at) "
		"SELECT $1::bigint, $2, $3::bytea, $4, $5::bigint, $6::bigint FROM c WHERE c.n < "
		"$7::bigint AND c.u RETURNING id) "
		"SELECT (SELECT id FROM i), c.n FROM c";
	struct pgw w = {0};
	if (uid)
		pgw_i64(&w, uid);
	else
		pgw_text(&w, NULL);
	pgw_text(&w, name);
	pgw_blob(&w, hash, DB_TOKEN_HASH_BYTES);
	pgw_text(&w, scopes);
	pgw_i64(&w, now);
	if (expires_at)
		pgw_i64(&w, expires_at);
	else
		pgw_text(&w, NULL);
	pgw_i64(&w, DB_TOKENS_MAX);
	struct pgu_call *c = pgu_call(db, arg);
	c->done = done;
	c->id = uid;
	return pgu_write(db, &w, sql, pgu_token_added, c);
}

static void pgu_token_revoked(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgu_call *c = arg;
	if (r < 0) {
		c->done(c->arg, r, 0, err ? err : "failed");
	} else if (PQntuples(res) < 1 || pg_col_i64(res, 0, 0) == 0) {
		char why[64];
		snprintf(why, sizeof(why), "no token %" PRId64, c->id);
		c->done(c->arg, KILN_ENOTFOUND, 0, why);
	} else {
		/* already revoked: the first time stays (0) */
		c->done(c->arg, pg_col_i64(res, 0, 1) > 0, c->id, NULL);
	}
	free(c);
}

int db_pg_token_revoke(struct db *db, int64_t id, int64_t now, db_id_fn done, void *arg)
{
	static const char sql[] =
		"WITH t AS (SELECT id FROM api_tokens WHERE id = $1::bigint), "
		"w AS (UPDATE api_tokens SET revoked_at = $2::bigint WHERE id = $1::bigint AND "
		"revoked_at IS NULL RETURNING id) "
		"SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM w)";
	struct pgw w = {0};
	pgw_i64(&w, id);
	pgw_i64(&w, now);
	struct pgu_call *c = pgu_call(db, arg);
	c->done = done;
	c->id = id;
	return pgu_write(db, &w, sql, pgu_token_revoked, c);
}

static void pgu_token_read(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgu_call *c = arg;
	struct db *db = c->db;
	const char *got = r == 0 && PQntuples(res) == 1 ? pg_col_str(res, 0, 8) : NULL;
	if (r < 0) {
		c->token(c->arg, r, NULL, err ? err : "failed");
	} else if (!got || strlen(got) != sizeof(c->hex) - 1 ||
		   sodium_memcmp(got, c->hex, sizeof(c->hex) - 1) != 0) {
		/* the index finds the row; the hash itself is compared in constant time */
		c->token(c->arg, KILN_EAUTH, NULL, "unknown token");
	} else {
		const char *col[DB_TOKEN_COLS];
		for (int i = 0; i < DB_TOKEN_COLS; i++)
			col[i] = pg_col_str(res, 0, i);
		struct db_token t;
		db_token_from_text(&t, col);
		int j = db_token_judge(db, &t, c->need, c->now);
		if (j == 0 && db_token_note_use(&t, c->now)) {
			struct pgw w = {0};
			pgw_i64(&w, t.id);
			pgw_i64(&w, c->now);
			/* a failure to note it is the turn's (commit-error callback) */
			if (db_pg_write(db,
					"UPDATE api_tokens SET last_used_at = $2::bigint WHERE "
					"id = $1::bigint",
					&w) == 0)
				t.last_used_at = c->now;
		}
		c->token(c->arg, j, j < 0 ? NULL : &t, j < 0 ? db_errmsg(db) : NULL);
	}
	sodium_memzero(c->hex, sizeof(c->hex));
	free(c);
}

int db_pg_token_verify(struct db *db, const unsigned char hash[DB_TOKEN_HASH_BYTES], unsigned need,
		       int64_t now, db_token_fn done, void *arg)
{
	static const char sql[] = "SELECT id, uid, name, scopes, created_at, last_used_at, "
				  "revoked_at, expires_at, encode(hash, 'hex') FROM api_tokens "
				  "WHERE hash = $1::bytea";
	struct pgw w = {0};
	pgw_blob(&w, hash, DB_TOKEN_HASH_BYTES);
	struct pgu_call *c = pgu_call(db, arg);
	c->token = done;
	c->need = need;
	c->now = now;
	pgu_hex(c->hex, hash);
	return pgu_read(db, &w, sql, pgu_token_read, c);
}

/* --- web sessions ------------------------------------------------------------------------- */

static void pgu_session_read(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgu_call *c = arg;
	struct db *db = c->db;
	const char *got = r == 0 && PQntuples(res) == 1 ? pg_col_str(res, 0, 6) : NULL;
	if (r < 0) {
		c->session(c->arg, r, NULL, err ? err : "failed");
	} else if (!got || strlen(got) != sizeof(c->hex) - 1 ||
		   sodium_memcmp(got, c->hex, sizeof(c->hex) - 1) != 0) {
		c->session(c->arg, 0, NULL, NULL);
	} else {
		struct db_session s = {.id = pg_col_i64(res, 0, 0),
				       .uid = pg_col_i64(res, 0, 1),
				       .created_at = pg_col_i64(res, 0, 3),
				       .last_seen_at = pg_col_i64(res, 0, 4),
				       .expires_at = pg_col_i64(res, 0, 5)};
		const char *u = pg_col_str(res, 0, 2);
		snprintf(s.username, sizeof(s.username), "%s", u ? u : "");
		struct pgw w = {0};
		pgw_i64(&w, s.id);
		if (db_session_dead(&s, c->now, c->idle_s)) {
			db_pg_write(db, "DELETE FROM sessions WHERE id = $1::bigint", &w);
			c->session(c->arg, 0, NULL, NULL);
		} else {
			if (db_session_note_use(&s, c->now, c->idle_s)) {
				pgw_i64(&w, c->now);
				if (db_pg_write(db,
						"UPDATE sessions SET last_seen_at = $2::bigint "
						"WHERE id = $1::bigint",
						&w) == 0)
					s.last_seen_at = c->now;
			}
			c->session(c->arg, 1, &s, NULL);
		}
	}
	sodium_memzero(c->hex, sizeof(c->hex));
	free(c);
}

int db_pg_session_get(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES], int64_t now,
		      int64_t idle_s, db_session_fn done, void *arg)
{
	static const char sql[] = "SELECT id, uid, username, created_at, last_seen_at, "
				  "expires_at, encode(hash, 'hex') FROM sessions WHERE hash = "
				  "$1::bytea";
	struct pgw w = {0};
	pgw_blob(&w, hash, DB_SESSION_HASH_BYTES);
	struct pgu_call *c = pgu_call(db, arg);
	c->session = done;
	c->now = now;
	c->idle_s = idle_s;
	pgu_hex(c->hex, hash);
	return pgu_read(db, &w, sql, pgu_session_read, c);
}

int db_pg_session_add(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES], int64_t uid,
		      const char *username, int64_t now, int64_t expires_at)
{
	/* expired sessions go, then the oldest past DB_SESSIONS_MAX - 1 */
	struct pgw w = {0};
	pgw_i64(&w, now);
	int r = db_pg_write(db, "DELETE FROM sessions WHERE expires_at <= $1::bigint", &w);
	if (r < 0)
		return r;
	w = (struct pgw){0};
	pgw_i64(&w, DB_SESSIONS_MAX - 1);
	r = db_pg_write(db,
			"DELETE FROM sessions WHERE id IN (SELECT id FROM sessions ORDER BY "
			"last_seen_at DESC, id DESC OFFSET $1::bigint)",
			&w);
	if (r < 0)
		return r;
	w = (struct pgw){0};
	pgw_blob(&w, hash, DB_SESSION_HASH_BYTES);
	if (uid)
		pgw_i64(&w, uid);
	else
		pgw_text(&w, NULL);
	pgw_text(&w, username);
	pgw_i64(&w, now);
	pgw_i64(&w, expires_at);
	return db_pg_write(db,
			   "INSERT INTO sessions (hash, uid, username, created_at, last_seen_at, "
			   "expires_at) VALUES ($1::bytea, $2::bigint, $3, $4::bigint, $4::bigint, "
			   "$5::bigint) ON CONFLICT DO NOTHING",
			   &w);
}

int db_pg_session_delete(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES])
{
	struct pgw w = {0};
	pgw_blob(&w, hash, DB_SESSION_HASH_BYTES);
	return db_pg_write(db, "DELETE FROM sessions WHERE hash = $1::bytea", &w);
}

int db_pg_sessions_delete_user(struct db *db, int64_t uid)
{
	struct pgw w = {0};
	pgw_i64(&w, uid);
	return db_pg_write(db, "DELETE FROM sessions WHERE uid = $1::bigint", &w);
}
