/*
 * Unit tests for API tokens (db-sqlite-tokens.c, slice "tokens") on a real
 * SQLite database: only the SHA-256 is stored (the token text is nowhere
 * in the table or the database file), scopes parse and are enforced,
 * revoked and expired tokens are refused, last_used_at moves at most once
 * a minute, and a removed user takes its tokens with it.
 */
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "db/db-internal.h"

static struct db *db;

static int64_t add(const char *name, unsigned scopes, int64_t expires,
		   char text[DB_TOKEN_TEXT_LEN + 1])
{
	unsigned char hash[DB_TOKEN_HASH_BYTES];
	db_token_generate(text, hash);
	int64_t id = 0;
	if (db_token_add(db, 0, name, hash, scopes, 1000, expires, &id) < 0)
		TAP_FAIL("add token: %s", db_errmsg(db));
	return id;
}

TEST(scopes)
{
	unsigned s = 0;
	const char *bad = NULL;
	CHECK_INT(db_token_scopes_parse("force,sendchange", &s, &bad), 0);
	CHECK_INT(s, DB_SCOPE_FORCE | DB_SCOPE_SENDCHANGE);
	CHECK_INT(db_token_scopes_parse("force,bogus", &s, &bad), -EINVAL);
	CHECK(bad && !strcmp(bad, "bogus"));
	CHECK_INT(db_token_scopes_parse("", &s, &bad), -EINVAL);
	CHECK_INT(db_token_scopes_parse("forc", &s, &bad), -EINVAL);
	char out[128];
	db_token_scopes_format(DB_SCOPE_VIEW | DB_SCOPE_ADMIN | DB_SCOPE_TRY, out, sizeof(out));
	CHECK_STR(out, "try,admin,view");
}

TEST(hash_only)
{
	char text[DB_TOKEN_TEXT_LEN + 1];
	int64_t id = add("ci", DB_SCOPE_SENDCHANGE, 0, text);
	CHECK(id > 0);
	CHECK_INT(strlen(text), DB_TOKEN_TEXT_LEN);
	CHECK(!strncmp(text, "kiln_", 5));
	/* the stored hash is the token's SHA-256, and nothing stored holds the text */
	unsigned char want[32];
	crypto_hash_sha256(want, (const unsigned char *)text, strlen(text));
	sqlite3_stmt *s = NULL;
	CHECK_INT(sqlite3_prepare_v2(db->h,
				     "SELECT hash, name, scopes FROM api_tokens WHERE id = ?1", -1,
				     &s, NULL),
		  SQLITE_OK);
	sqlite3_bind_int64(s, 1, id);
	CHECK_INT(sqlite3_step(s), SQLITE_ROW);
	CHECK_INT(sqlite3_column_bytes(s, 0), 32);
	CHECK(!memcmp(sqlite3_column_blob(s, 0), want, 32));
	CHECK_STR((const char *)sqlite3_column_text(s, 2), "sendchange");
	sqlite3_finalize(s);
	CHECK_INT(sqlite3_prepare_v2(
			  db->h,
			  "SELECT count(*) FROM api_tokens WHERE instr(CAST(hash AS TEXT), "
			  "?1) OR instr(name, ?1) OR instr(scopes, ?1)",
			  -1, &s, NULL),
		  SQLITE_OK);
	sqlite3_bind_text(s, 1, text + 5, -1, SQLITE_STATIC);
	CHECK_INT(sqlite3_step(s), SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(s, 0), 0);
	sqlite3_finalize(s);
	/* two tokens never collide; the schema refuses a non-hash */
	char text2[DB_TOKEN_TEXT_LEN + 1];
	add("ci2", DB_SCOPE_VIEW, 0, text2);
	CHECK(strcmp(text, text2));
	CHECK(sqlite3_exec(db->h,
			   "INSERT INTO api_tokens (name, hash, scopes, created_at) VALUES "
			   "('x', 'plain-token', 'view', 1)",
			   NULL, NULL, NULL) != SQLITE_OK);
	/* bad names and scopes are refused with a message */
	unsigned char h[32] = {0};
	CHECK_INT(db_token_add(db, 0, "", h, DB_SCOPE_VIEW, 1000, 0, NULL), -EINVAL);
	CHECK(strstr(db_errmsg(db), "name is empty"));
	CHECK_INT(db_token_add(db, 0, "n", h, 0, 1000, 0, NULL), -EINVAL);
	CHECK_INT(db_token_add(db, 0, "n\n", h, DB_SCOPE_VIEW, 1000, 0, NULL), -EINVAL);
	CHECK_INT(db_token_add(db, 999, "n", h, DB_SCOPE_VIEW, 1000, 0, NULL), KILN_ENOTFOUND);
	/* the list has no hashes (the struct has no field for one) and names the scopes */
	struct db_token *v = NULL;
	size_t n = 0;
	CHECK_INT(db_token_list(db, &v, &n), 0);
	CHECK(n >= 2);
	CHECK_INT(v[0].id, id);
	CHECK_STR(v[0].name, "ci");
	CHECK_INT(v[0].scopes, DB_SCOPE_SENDCHANGE);
	CHECK_INT(v[0].created_at, 1000);
	free(v);
}

TEST(verify_and_scope)
{
	char text[DB_TOKEN_TEXT_LEN + 1];
	int64_t id = add("force-only", DB_SCOPE_FORCE | DB_SCOPE_STOP, 0, text);
	struct db_token t;
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_FORCE, 2000, &t), 0);
	CHECK_INT(t.id, id);
	CHECK_INT(t.last_used_at, 2000);
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_FORCE | DB_SCOPE_STOP, 2000, NULL), 0);
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_SENDCHANGE, 2001, NULL), -EPERM);
	CHECK(strstr(db_errmsg(db), "lacks the scope sendchange"));
	CHECK(!strstr(db_errmsg(db), text));
	/* a wrong token of the right shape, a wrong shape, one changed character */
	char other[DB_TOKEN_TEXT_LEN + 1];
	unsigned char h[32];
	db_token_generate(other, h);
	CHECK_INT(db_token_verify(db, other, DB_SCOPE_FORCE, 2000, NULL), KILN_EAUTH);
	CHECK_INT(db_token_verify(db, "kiln_short", DB_SCOPE_FORCE, 2000, NULL), KILN_EAUTH);
	CHECK_INT(db_token_verify(db, "", 0, 2000, NULL), KILN_EAUTH);
	char flip[DB_TOKEN_TEXT_LEN + 1];
	memcpy(flip, text, sizeof(flip));
	flip[10] = flip[10] == 'A' ? 'B' : 'A';
	CHECK_INT(db_token_verify(db, flip, DB_SCOPE_FORCE, 2000, NULL), KILN_EAUTH);
	/* last_used_at moves at most once a minute */
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_FORCE, 2059, &t), 0);
	CHECK_INT(t.last_used_at, 2000);
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_FORCE, 2060, &t), 0);
	CHECK_INT(t.last_used_at, 2060);
}

TEST(revoke)
{
	char text[DB_TOKEN_TEXT_LEN + 1];
	int64_t id = add("to-revoke", DB_SCOPE_SENDCHANGE, 0, text);
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_SENDCHANGE, 3000, NULL), 0);
	CHECK_INT(db_token_revoke(db, id, 3001), 1);
	CHECK_INT(db_token_revoke(db, id, 3002), 0); /* already revoked */
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_SENDCHANGE, 3003, NULL), KILN_EAUTH);
	CHECK(strstr(db_errmsg(db), "was revoked"));
	CHECK_INT(db_token_revoke(db, 123456, 3004), KILN_ENOTFOUND);
	struct db_token *v = NULL;
	size_t n = 0;
	CHECK_INT(db_token_list(db, &v, &n), 0);
	bool seen = false;
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id) {
			seen = true;
			CHECK_INT(v[i].revoked_at, 3001);
		}
	CHECK(seen);
	free(v);
}

TEST(expiry)
{
	char text[DB_TOKEN_TEXT_LEN + 1];
	add("short-lived", DB_SCOPE_VIEW, 5000, text);
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_VIEW, 4999, NULL), 0);
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_VIEW, 5000, NULL), KILN_EAUTH);
	CHECK(strstr(db_errmsg(db), "has expired"));
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_VIEW, 9000, NULL), KILN_EAUTH);
}

TEST(user_tokens)
{
	struct db_user_set u = {.identifier = "ann"};
	int64_t uid = 0;
	CHECK_INT(db_user_add(db, &u, &uid), 0);
	char text[DB_TOKEN_TEXT_LEN + 1];
	unsigned char hash[DB_TOKEN_HASH_BYTES];
	db_token_generate(text, hash);
	int64_t id = 0;
	CHECK_INT(db_token_add(db, uid, "ann's", hash, DB_SCOPE_TRY, 1000, 0, &id), 0);
	struct db_token t;
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_TRY, 1000, &t), 0);
	CHECK_INT(t.uid, uid);
	CHECK_INT(db_user_remove(db, uid), 0);
	CHECK_INT(db_token_verify(db, text, DB_SCOPE_TRY, 1000, NULL), KILN_EAUTH);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	if (db_open(NULL, "sqlite::memory:", NULL, &db) < 0)
		TAP_FAIL("db_open: %s", db_open_errmsg());
	RUN(scopes);
	RUN(hash_only);
	RUN(verify_and_scope);
	RUN(revoke);
	RUN(expiry);
	RUN(user_tokens);
	db_close(db);
	return tap_done();
}
