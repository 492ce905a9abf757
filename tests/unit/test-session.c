/*
 * Unit tests for web sessions (slice "weblogin"): the pure helpers of
 * src/master/auth.c (CSRF value, Cookie parsing, Set-Cookie flags,
 * htpasswd lines, argon2id and bcrypt verification) and the sessions
 * table of src/db/db-sqlite-sessions.c on a real SQLite database (add,
 * look-up, absolute expiry, idle timeout, delete, the cap, roles).
 */
#include "tap.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/db-internal.h"
#include "db/db.h"
#include "master/auth.h"

TEST(csrf_is_derived_and_distinct)
{
	char a[AUTH_SESSION_TEXT_LEN + 1], b[AUTH_SESSION_TEXT_LEN + 1],
		c[AUTH_SESSION_TEXT_LEN + 1];
	auth_csrf_of("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", a);
	auth_csrf_of("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", b);
	auth_csrf_of("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", c);
	CHECK_INT(strlen(a), AUTH_SESSION_TEXT_LEN);
	CHECK_STR(a, b);
	CHECK(strcmp(a, c) != 0);
	CHECK(strcmp(a, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") != 0);
}

TEST(cookie_header_parsing)
{
	char v[64];
	CHECK_INT(auth_cookie_value("kiln_session=abc", v, sizeof(v)), 0);
	CHECK_STR(v, "abc");
	CHECK_INT(auth_cookie_value("theme=dark; kiln_session=xyz; other=1", v, sizeof(v)), 0);
	CHECK_STR(v, "xyz");
	CHECK_INT(auth_cookie_value("xkiln_session=no; kiln_sessionx=no", v, sizeof(v)), -1);
	CHECK_INT(auth_cookie_value("kiln_session=", v, sizeof(v)), -1);
	CHECK_INT(auth_cookie_value("", v, sizeof(v)), -1);
	char small[4];
	CHECK_INT(auth_cookie_value("kiln_session=toolong", small, sizeof(small)), -1);
}

TEST(set_cookie_flags)
{
	char sc[256];
	auth_set_cookie("abc", 604800, false, sc, sizeof(sc));
	CHECK_STR(sc, "kiln_session=abc; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax");
	auth_set_cookie("abc", 60, true, sc, sizeof(sc));
	CHECK_STR(sc, "kiln_session=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
	auth_set_cookie(NULL, 60, false, sc, sizeof(sc));
	CHECK_STR(sc, "kiln_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
}

TEST(htpasswd_lines)
{
	char h[128];
	const char *l = "ann:$2y$05$xyz\r";
	CHECK_INT(auth_htpasswd_line(l, strlen(l), "ann", h, sizeof(h)), 1);
	CHECK_STR(h, "$2y$05$xyz");
	CHECK_INT(auth_htpasswd_line(l, strlen(l), "an", h, sizeof(h)), 0);
	CHECK_INT(auth_htpasswd_line(l, strlen(l), "anne", h, sizeof(h)), 0);
	CHECK_INT(auth_htpasswd_line("ann:", 4, "ann", h, sizeof(h)), 0);
	char tiny[4];
	CHECK_INT(auth_htpasswd_line(l, strlen(l), "ann", tiny, sizeof(tiny)), 0);
}

TEST(password_formats)
{
	/* bcrypt ($2y$, cost 5) of "hp-pass", as htpasswd -B writes it */
	const char *bc = "$2y$05$abcdefghijklmnopqrstuuCtiJr2FHsnOqjmtKGYqTW1lV7HIxHYq";
	CHECK_INT(auth_password_ok(bc, "hp-pass"), 1);
	CHECK_INT(auth_password_ok(bc, "hp-pasS"), 0);
	CHECK_INT(auth_password_ok(bc, ""), 0);
	char a2[crypto_pwhash_STRBYTES];
	CHECK_INT(crypto_pwhash_str(a2, "s3cret", 6, crypto_pwhash_OPSLIMIT_MIN,
				    crypto_pwhash_MEMLIMIT_MIN),
		  0);
	CHECK_INT(auth_password_ok(a2, "s3cret"), 1);
	CHECK_INT(auth_password_ok(a2, "s3cre"), 0);
	CHECK_INT(auth_password_ok("s3cret", "s3cret"), 0);        /* plain text: never */
	CHECK_INT(auth_password_ok("$1$abc$def", "x"), 0);         /* md5-crypt: not taken */
	CHECK_INT(auth_password_ok("$2y$05$short", "hp-pass"), 0); /* broken bcrypt */
}

static struct db *open_db(void)
{
	struct db *db = NULL;
	if (db_open(NULL, "sqlite::memory:", NULL, &db) < 0) {
		TAP_FAIL("db_open: %s", db_open_errmsg());
		return NULL;
	}
	return db;
}

static void hash_of(unsigned char h[32], int seed)
{
	memset(h, 0, 32);
	h[0] = (unsigned char)seed;
	h[31] = (unsigned char)(seed >> 8);
}

TEST(sessions_table)
{
	struct db *db = open_db();
	if (!db)
		return;
	unsigned char h1[32], h2[32], h3[32];
	hash_of(h1, 1);
	hash_of(h2, 2);
	hash_of(h3, 3);
	struct db_user_set u = {.identifier = "ann",
				.bb_username = "ann",
				.bb_password =
					"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"};
	int64_t uid = 0, n = -1;
	CHECK_INT(db_login_users_count(db, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(db_user_add(db, &u, &uid), 0);
	CHECK_INT(db_login_users_count(db, &n), 0);
	CHECK_INT(n, 1);

	int64_t id = 0;
	CHECK_INT(db_session_add(db, h1, uid, "ann", 1000, 1000 + 3600, &id), 0);
	CHECK(id > 0);
	CHECK_INT(db_session_add(db, h2, 0, "hp", 1000, 1000 + 3600, NULL), 0);
	CHECK(db_session_add(db, h1, uid, "ann", 1000, 2000, NULL) < 0); /* same hash */
	CHECK_INT(db_session_add(db, h3, 0, "", 1000, 2000, NULL), -EINVAL);

	struct db_session s;
	CHECK_INT(db_session_get(db, h1, 1010, 600, &s), 1);
	CHECK_INT(s.uid, uid);
	CHECK_STR(s.username, "ann");
	CHECK_INT(s.expires_at, 4600);
	CHECK_INT(db_session_get(db, h3, 1010, 600, &s), 0); /* unknown */
	CHECK_INT(db_session_get(db, h2, 1010, 600, &s), 1);
	CHECK_INT(s.uid, 0);

	/* idle: ann's is used at 1500 (noted: over a minute), hp's is not */
	CHECK_INT(db_session_get(db, h1, 1500, 600, &s), 1);
	CHECK_INT(s.last_seen_at, 1500);
	CHECK_INT(db_session_get(db, h2, 1700, 600, &s), 0); /* idle 690 s > 600 */
	CHECK_INT(db_session_get(db, h2, 1000, 600, &s), 0); /* and deleted */
	CHECK_INT(db_session_get(db, h1, 2000, 600, &s), 1);
	/* absolute expiry, whatever the idle limit */
	CHECK_INT(db_session_get(db, h1, 4600, 0, &s), 0);
	CHECK_INT(db_session_get(db, h1, 2000, 0, &s), 0); /* deleted */

	CHECK_INT(db_session_add(db, h3, uid, "ann", 5000, 9000, NULL), 0);
	CHECK_INT(db_session_delete(db, h3), 1);
	CHECK_INT(db_session_delete(db, h3), 0);
	CHECK_INT(db_session_get(db, h3, 5001, 0, &s), 0);

	/* removing the user removes its sessions */
	CHECK_INT(db_session_add(db, h3, uid, "ann", 5000, 9000, NULL), 0);
	CHECK_INT(db_user_remove(db, uid), 0);
	CHECK_INT(db_session_get(db, h3, 5001, 0, &s), 0);
	db_close(db);
}

static int64_t count_sessions(struct db *db, const char *where)
{
	char *sql = xasprintf("SELECT count(*) FROM sessions WHERE %s", where);
	sqlite3_stmt *st = NULL;
	int64_t n = -1;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	free(sql);
	return n;
}

TEST(sessions_cap)
{
	struct db *db = open_db();
	if (!db)
		return;
	/* DB_SESSIONS_MAX rows in one statement, then one more through the API */
	char *sql = xasprintf(
		"INSERT INTO sessions (hash, username, created_at, last_seen_at, expires_at) "
		"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d) "
		"SELECT randomblob(32), 'u', 1000 + i, 1000 + i, 1000000 FROM c",
		DB_SESSIONS_MAX);
	CHECK_INT(sqlite3_exec(db->h, sql, NULL, NULL, NULL), SQLITE_OK);
	free(sql);
	CHECK_INT(count_sessions(db, "1"), DB_SESSIONS_MAX);
	unsigned char h[32];
	hash_of(h, 7);
	CHECK_INT(db_session_add(db, h, 0, "new", 20000, 1000000, NULL), 0);
	CHECK_INT(count_sessions(db, "1"), DB_SESSIONS_MAX);
	CHECK_INT(count_sessions(db, "last_seen_at = 1001"), 0); /* the least recent went */
	CHECK_INT(count_sessions(db, "last_seen_at = 1002"), 1);
	/* expired rows go first */
	CHECK_INT(db_session_add(db, (hash_of(h, 8), h), 0, "new", 2000000, 3000000, NULL), 0);
	CHECK_INT(count_sessions(db, "1"), 1);
	db_close(db);
}

TEST(user_roles)
{
	struct db *db = open_db();
	if (!db)
		return;
	struct db_user_set u = {.identifier = "bob", .bb_username = "bobby"};
	int64_t uid = 0;
	CHECK_INT(db_user_add(db, &u, &uid), 0);
	char name[64], roles[DB_ROLES_TEXT_MAX + 1];
	CHECK_INT(db_user_login(db, uid, name, sizeof(name), roles, sizeof(roles)), 1);
	CHECK_STR(name, "bobby");
	CHECK_STR(roles, "");
	CHECK_INT(db_user_set_roles(db, uid, "force,stop"), 0);
	CHECK_INT(db_user_login(db, uid, name, sizeof(name), roles, sizeof(roles)), 1);
	CHECK_STR(roles, "force,stop");
	CHECK_INT(db_user_set_roles(db, uid, ""), 0);
	CHECK_INT(db_user_login(db, uid, NULL, 0, roles, sizeof(roles)), 1);
	CHECK_STR(roles, "");
	CHECK_INT(db_user_set_roles(db, 999, "admin"), KILN_ENOTFOUND);
	CHECK_INT(db_user_login(db, 999, name, sizeof(name), roles, sizeof(roles)), 0);
	db_close(db);
}

int main(void)
{
	if (sodium_init() < 0) {
		printf("Bail out! sodium_init\n");
		return 1;
	}
	RUN(csrf_is_derived_and_distinct);
	RUN(cookie_header_parsing);
	RUN(set_cookie_flags);
	RUN(htpasswd_lines);
	RUN(password_formats);
	RUN(sessions_table);
	RUN(sessions_cap);
	RUN(user_roles);
	return tap_done();
}
