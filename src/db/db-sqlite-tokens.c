/*
 * API tokens on SQLite (db.h "API tokens", slice "tokens"; docs/AUTH.md):
 * the administrator's add, revoke and list, and the verification every
 * authenticated endpoint uses.  A token is 32 random bytes from libsodium,
 * shown once as "kiln_" + base64url; the table keeps only its SHA-256, so
 * a copy of the database gives no usable token.  Schema:
 * migrations/0010-api-tokens.sql.  These calls are rare (verification is
 * one indexed look-up), so their statements come from the dynamic cache.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "common/xalloc.h"

static const char *const token_scope_names[] = {
	"force", "stop", "cancel", "sendchange", "try", "push", "admin", "view",
};

int db_token_scopes_parse(const char *text, unsigned *ret, const char **ret_bad)
{
	unsigned bits = 0;
	const char *p = text;
	*ret_bad = NULL;
	while (*p) {
		size_t n = strcspn(p, ",");
		size_t i;
		for (i = 0; i < ARRAY_SIZE(token_scope_names); i++)
			if (strlen(token_scope_names[i]) == n &&
			    !strncmp(token_scope_names[i], p, n))
				break;
		if (i == ARRAY_SIZE(token_scope_names)) {
			*ret_bad = p;
			return -EINVAL;
		}
		bits |= 1u << i;
		p += n;
		if (*p == ',')
			p++;
	}
	if (!bits)
		return -EINVAL;
	*ret = bits;
	return 0;
}

void db_token_scopes_format(unsigned scopes, char *out, size_t n)
{
	size_t len = 0;
	if (n == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(token_scope_names); i++) {
		if (!(scopes & (1u << i)))
			continue;
		int w = snprintf(out + len, n - len, "%s%s", len ? "," : "", token_scope_names[i]);
		if (w < 0 || (size_t)w >= n - len)
			return;
		len += (size_t)w;
	}
}

static void token_hash(const char *text, unsigned char hash[DB_TOKEN_HASH_BYTES])
{
	crypto_hash_sha256(hash, (const unsigned char *)text, strlen(text));
}

void db_token_generate(char out[DB_TOKEN_TEXT_LEN + 1], unsigned char hash[DB_TOKEN_HASH_BYTES])
{
	unsigned char raw[32];
	randombytes_buf(raw, sizeof(raw));
	memcpy(out, DB_TOKEN_PREFIX, strlen(DB_TOKEN_PREFIX));
	sodium_bin2base64(out + strlen(DB_TOKEN_PREFIX),
			  DB_TOKEN_TEXT_LEN + 1 - strlen(DB_TOKEN_PREFIX), raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	token_hash(out, hash);
}

int db_token_check_name(struct db *db, const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return db_failf(db, -EINVAL, "token name is empty");
	if (n > DB_TOKEN_NAME_MAX)
		return db_failf(db, -EINVAL, "token name is longer than %d bytes",
				DB_TOKEN_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return db_failf(db, -EINVAL, "token name contains a control character");
	return 0;
}

/* The row of a statement selecting TOKEN_COLS. */
#define TOKEN_COLS "id, uid, name, scopes, created_at, last_used_at, revoked_at, expires_at"

void db_token_from_text(struct db_token *t, const char *const col[DB_TOKEN_COLS])
{
	int64_t v[DB_TOKEN_COLS] = {0};
	for (int i = 0; i < DB_TOKEN_COLS; i++)
		if (i != 2 && i != 3 && col[i])
			v[i] = strtoll(col[i], NULL, 10);
	*t = (struct db_token){.id = v[0],
			       .uid = v[1],
			       .created_at = v[4],
			       .last_used_at = v[5],
			       .revoked_at = v[6],
			       .expires_at = v[7]};
	snprintf(t->name, sizeof(t->name), "%s", col[2] ? col[2] : "");
	const char *bad;
	if (!col[3] || db_token_scopes_parse(col[3], &t->scopes, &bad) < 0)
		t->scopes = 0; /* an unreadable list grants nothing */
}

static void token_row(sqlite3_stmt *s, struct db_token *t)
{
	const char *col[DB_TOKEN_COLS];
	for (int i = 0; i < DB_TOKEN_COLS; i++)
		col[i] = (const char *)sqlite3_column_text(s, i);
	db_token_from_text(t, col);
}

static int token_add(struct db *db, int64_t uid, const char *name,
		     const unsigned char hash[DB_TOKEN_HASH_BYTES], const char *scopes, int64_t now,
		     int64_t expires_at, int64_t *ret_id)
{
	int r;
	{
		_cleanup_stmt_ sqlite3_stmt *c =
			db_stmt_dynamic(db, "SELECT count(*) FROM api_tokens");
		if (!c)
			return KILN_EDB;
		if ((r = db_step_row(db, c, "count tokens")) < 0)
			return r;
		if (sqlite3_column_int64(c, 0) >= DB_TOKENS_MAX)
			return db_failf(db, -ENOSPC, "too many tokens (at most %d are kept)",
					DB_TOKENS_MAX);
	}
	if (uid) {
		_cleanup_stmt_ sqlite3_stmt *u =
			db_stmt_dynamic(db, "SELECT 1 FROM users WHERE id = ?1");
		if (!u)
			return KILN_EDB;
		sqlite3_bind_int64(u, 1, uid);
		if ((r = db_step_row(db, u, "find user")) < 0)
			return r;
		if (r == 0)
			return db_failf(db, KILN_ENOTFOUND, "no user %lld", (long long)uid);
	}
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "INSERT INTO api_tokens (uid, name, hash, scopes, created_at, expires_at) "
		    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	if (!s)
		return KILN_EDB;
	if (uid)
		sqlite3_bind_int64(s, 1, uid);
	db_bind_text(s, 2, name);
	sqlite3_bind_blob(s, 3, hash, DB_TOKEN_HASH_BYTES, SQLITE_TRANSIENT);
	db_bind_text(s, 4, scopes);
	sqlite3_bind_int64(s, 5, now);
	if (expires_at)
		sqlite3_bind_int64(s, 6, expires_at);
	if ((r = db_step_done(db, s, "add token")) < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(db->h);
	return 0;
}

int db_token_add(struct db *db, int64_t uid, const char *name,
		 const unsigned char hash[DB_TOKEN_HASH_BYTES], unsigned scopes, int64_t now,
		 int64_t expires_at, int64_t *ret_id)
{
	int r = db_token_check_name(db, name);
	if (r < 0)
		return r;
	char sc[128];
	db_token_scopes_format(scopes, sc, sizeof(sc));
	if (!*sc)
		return db_failf(db, -EINVAL, "a token needs at least one scope");
	if (uid < 0)
		return db_failf(db, -EINVAL, "bad uid %lld", (long long)uid);
	int64_t id = 0;
	r = WRITE(token_add(db, uid, name, hash, sc, now, expires_at, &id));
	if (r >= 0 && ret_id)
		*ret_id = id;
	return r;
}

static int token_revoke(struct db *db, int64_t id, int64_t now, bool *ret_done)
{
	_cleanup_stmt_ sqlite3_stmt *c =
		db_stmt_dynamic(db, "SELECT revoked_at IS NOT NULL FROM api_tokens WHERE id = ?1");
	if (!c)
		return KILN_EDB;
	sqlite3_bind_int64(c, 1, id);
	int r = db_step_row(db, c, "find token");
	if (r < 0)
		return r;
	if (r == 0)
		return db_failf(db, KILN_ENOTFOUND, "no token %lld", (long long)id);
	if (sqlite3_column_int(c, 0))
		return 0; /* already revoked: the first time stays */
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt_dynamic(db, "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	r = db_step_done(db, s, "revoke token");
	*ret_done = r >= 0;
	return r;
}

int db_token_revoke(struct db *db, int64_t id, int64_t now)
{
	bool done = false;
	int r = WRITE(token_revoke(db, id, now, &done));
	return r < 0 ? r : done;
}

int db_token_list(struct db *db, struct db_token **ret, size_t *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt_dynamic(db, "SELECT " TOKEN_COLS " FROM api_tokens ORDER BY id");
	if (!s)
		return KILN_EDB;
	struct db_token *v = NULL;
	size_t n = 0;
	int r;
	while ((r = db_step_row(db, s, "list tokens")) == 1) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		token_row(s, &v[n++]);
	}
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int db_token_judge(struct db *db, const struct db_token *t, unsigned need, int64_t now)
{
	if (t->revoked_at)
		return db_failf(db, KILN_EAUTH, "token %lld '%s' was revoked", (long long)t->id,
				t->name);
	if (t->expires_at && t->expires_at <= now)
		return db_failf(db, KILN_EAUTH, "token %lld '%s' has expired", (long long)t->id,
				t->name);
	if ((t->scopes & need) != need) {
		char sc[128];
		db_token_scopes_format(need & ~t->scopes, sc, sizeof(sc));
		return db_failf(db, -EPERM, "token %lld '%s' lacks the scope %s", (long long)t->id,
				t->name, sc);
	}
	return 0;
}

bool db_token_note_use(const struct db_token *t, int64_t now)
{
	return !t->last_used_at || now - t->last_used_at >= 60 || now < t->last_used_at;
}

int db_token_verify(struct db *db, const char *token, unsigned need, int64_t now,
		    struct db_token *ret)
{
	size_t plen = strlen(DB_TOKEN_PREFIX);
	if (strlen(token) != DB_TOKEN_TEXT_LEN || strncmp(token, DB_TOKEN_PREFIX, plen))
		return db_failf(db, KILN_EAUTH, "not a Kiln API token (kiln_ and 43 characters)");
	unsigned char want[DB_TOKEN_HASH_BYTES];
	token_hash(token, want);
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt_dynamic(db, "SELECT " TOKEN_COLS ", hash FROM api_tokens WHERE hash = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_blob(s, 1, want, sizeof(want), SQLITE_TRANSIENT);
	int r = db_step_row(db, s, "find token");
	if (r < 0)
		return r;
	/* the index finds the row; the hash itself is compared in constant time */
	const void *got = r == 1 ? sqlite3_column_blob(s, 8) : NULL;
	if (!got || sqlite3_column_bytes(s, 8) != DB_TOKEN_HASH_BYTES ||
	    sodium_memcmp(got, want, sizeof(want)) != 0)
		return db_failf(db, KILN_EAUTH, "unknown token");
	struct db_token t;
	token_row(s, &t);
	sqlite3_reset(s);
	if ((r = db_token_judge(db, &t, need, now)) < 0)
		return r;
	if (db_token_note_use(&t, now)) {
		_cleanup_stmt_ sqlite3_stmt *u = db_stmt_dynamic(
			db, "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1");
		if (!u)
			return KILN_EDB;
		sqlite3_bind_int64(u, 1, t.id);
		sqlite3_bind_int64(u, 2, now);
		if ((r = WRITE1(db_step_done(db, u, "note token use"))) < 0)
			return r;
		t.last_used_at = now;
	}
	if (ret)
		*ret = t;
	return 0;
}
