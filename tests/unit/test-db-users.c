/*
 * Unit tests for user objects (db-sqlite-users.c, slice "users") on a real
 * SQLite database: users made from changes' authors and matched by
 * identity, the administrator's add/update/remove with their uniqueness
 * rules, password hashes (never a plain password, verified with
 * libsodium), removal cascading to identities and change links, the
 * DB_USERS listing (no password in it) and a build's interested users.
 */
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "db/db-internal.h"
#include "wait.h"

static struct db *db;
static uv_loop_t loop; /* the asynchronous reads' answers */

static void open_db(void)
{
	uv_loop_init(&loop);
	if (db_open(&loop, "sqlite::memory:", NULL, &db) < 0)
		TAP_FAIL("db_open: %s", db_open_errmsg());
}

/* a change by who, from a source of identity type src */
static int64_t change(const char *who, const char *src, const char *email, const char *rev)
{
	struct db_user_ident id = {.attr_type = src, .who = who, .email = email};
	struct db_change_new c = {.author = who,
				  .branch = "main",
				  .revision = rev,
				  .when_timestamp = 1795377000,
				  .user = &id};
	int64_t cid = 0, ssid = 0;
	if (db_change_add(db, &c, &cid, &ssid) < 0)
		TAP_FAIL("change: %s", db_errmsg(db));
	return cid;
}

static int64_t user_of(int64_t changeid)
{
	int64_t uid = 0;
	if (db_change_user(db, changeid, &uid) != 1)
		TAP_FAIL("change %lld has no user", (long long)changeid);
	return uid;
}

static json_t *list_users(const char *field, const char *value)
{
	struct db_filter f = {.field = field, .op = DB_OP_EQ, .values = &value, .nvalues = 1};
	struct db_query q = {.filters = field ? &f : NULL, .nfilters = field ? 1 : 0, .limit = -1};
	json_t *items = NULL;
	if (db_list(db, DB_USERS, &q, &items, NULL) < 0)
		TAP_FAIL("list users: %s", db_errmsg(db));
	return items;
}

TEST(from_changes)
{
	int64_t c1 = change("Ann Dev <ann@x.org>", "git", "ann@x.org", "r1");
	int64_t c2 = change("Ann Dev <ann@x.org>", "git", "ann@x.org", "r2");
	CHECK_INT(user_of(c1), user_of(c2)); /* same git identity: same user */
	/* another spelling, same address: matched by the email identity */
	int64_t c3 = change("A. Dev <ann@x.org>", "git", "ann@x.org", "r3");
	CHECK_INT(user_of(c3), user_of(c1));
	/* svn: the bare username; a new user */
	int64_t c4 = change("bob", "svn", NULL, "5");
	CHECK(user_of(c4) != user_of(c1));
	int64_t uid = 0;
	CHECK_INT(db_user_by_ident(db, "svn", "bob", &uid), 1);
	CHECK_INT(uid, user_of(c4));
	CHECK_INT(db_user_by_ident(db, "email", "ann@x.org", &uid), 1);
	CHECK_INT(uid, user_of(c1));
	CHECK_INT(db_user_by_ident(db, "git", "Ann Dev <ann@x.org>", &uid), 1);
	CHECK_INT(db_user_by_identifier(db, "Ann Dev <ann@x.org>", &uid), 1);
	CHECK_INT(db_user_by_ident(db, "git", "nobody", &uid), 0);

	json_t *items = list_users("uid", "1");
	CHECK_INT(json_array_size(items), 1);
	json_t *u = json_array_get(items, 0);
	CHECK_STR(json_string_value(json_object_get(u, "identifier")), "Ann Dev <ann@x.org>");
	CHECK_STR(json_string_value(json_object_get(u, "email")), "ann@x.org");
	CHECK(json_is_false(json_object_get(u, "has_password")));
	CHECK(json_is_null(json_object_get(u, "bb_username")));
	CHECK(!json_object_get(u, "bb_password"));
	/* identities: email, and both git spellings */
	CHECK_INT(json_array_size(json_object_get(u, "identities")), 3);
	json_decref(items);
}

TEST(add_update_remove)
{
	struct db_user_info info[] = {{"email", "carol@x.org"}, {"irc", "carol"}};
	struct db_user_set s = {.identifier = "carol", .info = info, .ninfo = 2};
	int64_t carol = 0, other = 0;
	CHECK_INT(db_user_add(db, &s, &carol), 0);
	CHECK(carol > 0);
	CHECK_INT(db_user_by_ident(db, "irc", "carol", &other), 1);
	CHECK_INT(other, carol);

	/* uniqueness: identifier, identity, username */
	struct db_user_set dup = {.identifier = "carol"};
	CHECK_INT(db_user_add(db, &dup, &other), -EEXIST);
	CHECK(strstr(db_errmsg(db), "identifier"));
	struct db_user_info taken[] = {{"irc", "carol"}};
	struct db_user_set dup2 = {.identifier = "carol2", .info = taken, .ninfo = 1};
	CHECK_INT(db_user_add(db, &dup2, &other), -EEXIST);
	CHECK(strstr(db_errmsg(db), "identity irc 'carol'"));
	CHECK_INT(db_user_by_identifier(db, "carol2", &other), 0); /* all or nothing */

	struct db_user_set un = {.bb_username = "carol"};
	CHECK_INT(db_user_update(db, carol, &un), 0);
	struct db_user_set dave = {.identifier = "dave", .bb_username = "carol"};
	CHECK_INT(db_user_add(db, &dave, &other), -EEXIST);
	CHECK(strstr(db_errmsg(db), "username"));

	/* bad input names the problem and changes nothing */
	struct db_user_set bad = {.identifier = ""};
	CHECK_INT(db_user_add(db, &bad, &other), -EINVAL);
	CHECK(strstr(db_errmsg(db), "identifier is empty"));
	bad.identifier = "x\ny";
	CHECK_INT(db_user_add(db, &bad, &other), -EINVAL);
	CHECK(strstr(db_errmsg(db), "control character"));
	char big[DB_USER_TEXT_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	bad.identifier = big;
	CHECK_INT(db_user_add(db, &bad, &other), -EINVAL);
	struct db_user_info badtype[] = {{"no spaces", "v"}};
	struct db_user_set bt = {.identifier = "eve", .info = badtype, .ninfo = 1};
	CHECK_INT(db_user_add(db, &bt, &other), -EINVAL);
	CHECK(strstr(db_errmsg(db), "identity type"));
	CHECK_INT(db_user_by_identifier(db, "eve", &other), 0);
	CHECK_INT(db_user_update(db, 9999, &un), KILN_ENOTFOUND);

	/* update: rename, replace an identity, remove one */
	struct db_user_info repl[] = {{"irc", "caz"}, {"email", ""}};
	struct db_user_set up = {.identifier = "Carol C", .info = repl, .ninfo = 2};
	CHECK_INT(db_user_update(db, carol, &up), 0);
	CHECK_INT(db_user_by_identifier(db, "Carol C", &other), 1);
	CHECK_INT(db_user_by_ident(db, "irc", "caz", &other), 1);
	CHECK_INT(db_user_by_ident(db, "irc", "carol", &other), 0);
	CHECK_INT(db_user_by_ident(db, "email", "carol@x.org", &other), 0);
	/* renaming onto another user's identifier is refused */
	struct db_user_set clash = {.identifier = "Ann Dev <ann@x.org>"};
	CHECK_INT(db_user_update(db, carol, &clash), -EEXIST);

	/* remove cascades: identities and change links go, changes stay */
	int64_t c = change("frank <frank@x.org>", "git", "frank@x.org", "r9");
	int64_t frank = user_of(c);
	CHECK_INT(db_user_remove(db, frank), 0);
	CHECK_INT(db_user_by_ident(db, "email", "frank@x.org", &other), 0);
	CHECK_INT(db_user_by_ident(db, "git", "frank <frank@x.org>", &other), 0);
	CHECK_INT(db_change_user(db, c, &other), 0);
	json_t *items = list_users("changeid", "1");
	CHECK_INT(json_array_size(items), 1); /* change 1's user is still there */
	json_decref(items);
	CHECK_INT(db_user_remove(db, frank), KILN_ENOTFOUND);
	/* the next change by frank makes a user again, with his identities */
	int64_t c2 = change("frank <frank@x.org>", "git", "frank@x.org", "r10");
	CHECK_INT(db_user_by_ident(db, "email", "frank@x.org", &other), 1);
	CHECK_INT(other, user_of(c2));
}

/* SQL run behind the db_user_* calls: its primary result code */
static int sql(const char *text)
{
	return sqlite3_exec(db->h, text, NULL, NULL, NULL) & 0xff;
}

TEST(password)
{
	char hash[crypto_pwhash_STRBYTES];
	if (crypto_pwhash_str(hash, "s3cret", 6, crypto_pwhash_OPSLIMIT_MIN,
			      crypto_pwhash_MEMLIMIT_MIN) != 0)
		TAP_FAIL("crypto_pwhash_str");
	int64_t uid = 0;
	/* a plain password is refused, by the call and by the schema */
	struct db_user_set s = {
		.identifier = "gina", .bb_username = "gina", .bb_password = "s3cret"};
	CHECK_INT(db_user_add(db, &s, &uid), -EINVAL);
	CHECK(strstr(db_errmsg(db), "not an argon2id hash"));
	s.bb_password = "$argon2id$v=19$not really a hash but long enough";
	CHECK_INT(db_user_add(db, &s, &uid), -EINVAL);
	/* a password without a username is refused */
	struct db_user_set nou = {.identifier = "gina", .bb_password = hash};
	CHECK_INT(db_user_add(db, &nou, &uid), -EINVAL);
	CHECK(strstr(db_errmsg(db), "needs a username"));

	s.bb_password = hash;
	CHECK_INT(db_user_add(db, &s, &uid), 0);
	char *stored = NULL;
	CHECK_INT(db_user_password_hash(db, uid, &stored), 1);
	CHECK(stored && strstr(stored, "s3cret") == NULL);
	CHECK(stored && crypto_pwhash_str_verify(stored, "s3cret", 6) == 0);
	CHECK(stored && crypto_pwhash_str_verify(stored, "wrong", 5) != 0);
	free(stored);
	int64_t by = 0;
	CHECK_INT(db_user_by_username(db, "gina", &by), 1);
	CHECK_INT(by, uid);

	json_t *items = list_users("identifier", "gina");
	json_t *u = json_array_get(items, 0);
	CHECK(json_is_true(json_object_get(u, "has_password")));
	char *text = json_dumps(items, 0);
	CHECK(text && !strstr(text, "argon2id") && !strstr(text, "s3cret"));
	free(text);
	json_decref(items);

	/* the calls refuse a plain password however long */
	struct db_user_set sneak = {.bb_password = "plain-text-password-but-quite-long-yes"};
	CHECK_INT(db_user_update(db, uid, &sneak), -EINVAL);

	/* and so does the schema, for a write that skips these calls */
	CHECK(sql("UPDATE users SET bb_password = 'plain' WHERE identifier = 'gina'") ==
	      SQLITE_CONSTRAINT);
	CHECK(sql("UPDATE users SET bb_password = '$argon2id$v=19$m=65536,t=2,p=1$x$y' "
		  "WHERE identifier = 'gina'") == SQLITE_OK);
	CHECK(sql("UPDATE users SET bb_username = 'x' WHERE identifier = 'bob'") == SQLITE_OK);
	CHECK(sqlite3_changes(db->h) == 1);
	/* bb_username is unique */
	CHECK(sql("UPDATE users SET bb_username = 'gina' WHERE identifier = 'bob'") ==
	      SQLITE_CONSTRAINT);

	/* removing the username removes the password */
	struct db_user_set nouser = {.bb_username = ""};
	CHECK_INT(db_user_update(db, uid, &nouser), 0);
	CHECK_INT(db_user_password_hash(db, uid, &stored), 0);
}

struct users_answer {
	bool done;
	int r;
	int64_t uids[8];
	size_t n;
};

static void on_users(void *arg, int r, const int64_t *uids, size_t n, const char *err)
{
	struct users_answer *a = arg;
	(void)err;
	a->done = true;
	a->r = r;
	for (size_t i = 0; i < n && a->n < 8; i++)
		a->uids[a->n++] = uids[i];
}

static bool users_answered(void *arg)
{
	return ((struct users_answer *)arg)->done;
}

TEST(interested)
{
	int64_t b = 0, bsid = 0, brid = 0, buildid = 0, number = 0, masterid = 0;
	db_master_register(db, "test:/users", &masterid);
	db_builder_ensure(db, "b", NULL, "[]", &b);
	int64_t ca = change("Hal <hal@x.org>", "git", "hal@x.org", "h1");
	int64_t cb = change("ivy", "hg", NULL, "h2");
	int64_t cc = change("Hal <hal@x.org>", "git", "hal@x.org", "h3");
	struct db_sourcestamp ss[] = {{"main", "h3", "", "", ""}};
	struct db_buildset_new bs = {.reason = "t",
				     .scheduler = "s",
				     .sourcestamps = ss,
				     .nsourcestamps = 1,
				     .submitted_at = 1795377000};
	if (db_buildset_add(db, &bs, &b, 1, &bsid, &brid) < 0)
		TAP_FAIL("buildset: %s", db_errmsg(db));
	int64_t chs[] = {ca, cb, cc};
	if (db_buildset_add_changes(db, bsid, chs, 3) < 0)
		TAP_FAIL("link: %s", db_errmsg(db));
	db_request_claim(db, brid, masterid, 1795377001);
	if (db_build_add(db, b, brid, 0, masterid, 1795377001, &buildid, &number) < 0)
		TAP_FAIL("build: %s", db_errmsg(db));

	int64_t *uids = NULL;
	size_t n = 0;
	CHECK_INT(db_build_interested_users(db, buildid, NULL, 0, &uids, &n), 0);
	CHECK_INT(n, 2);
	int64_t hal = user_of(ca), ivy = user_of(cb);
	CHECK(n == 2 && uids[0] == (hal < ivy ? hal : ivy) && uids[1] == (hal < ivy ? ivy : hal));
	free(uids);

	/* extras by identifier or identity; unknown ones skipped; no duplicates */
	const char *extras[] = {"gina", "hal@x.org", "nobody@x.org"};
	int64_t gina = 0;
	CHECK_INT(db_user_by_identifier(db, "gina", &gina), 1);
	CHECK_INT(db_build_interested_users(db, buildid, extras, 3, &uids, &n), 0);
	CHECK_INT(n, 3);
	bool has_gina = false;
	for (size_t i = 0; i < n; i++)
		has_gina |= uids[i] == gina;
	CHECK(has_gina);
	free(uids);

	CHECK_INT(db_build_interested_users(db, 999, NULL, 0, &uids, &n), KILN_ENOTFOUND);

	/* the same answered on a later turn, as the email reporter reads them */
	struct users_answer a = {0};
	CHECK_INT(db_build_interested_users_async(db, buildid, extras, 3, on_users, &a), 0);
	CHECK(!a.done); /* never from inside the call */
	CHECK(test_run_until(&loop, users_answered, &a, TEST_GUARD_MS));
	CHECK_INT(a.r, 0);
	CHECK_INT(a.n, 3);
	CHECK(a.n == 3 && a.uids[0] < a.uids[1] && a.uids[1] < a.uids[2]);
	a = (struct users_answer){0};
	CHECK_INT(db_build_interested_users_async(db, 999, NULL, 0, on_users, &a), 0);
	CHECK(test_run_until(&loop, users_answered, &a, TEST_GUARD_MS));
	CHECK_INT(a.r, KILN_ENOTFOUND);
	/* a read still waiting when the database closes: -ECANCELED (below) */

	json_t *items = NULL;
	char id[32];
	snprintf(id, sizeof(id), "%lld", (long long)buildid);
	items = list_users("buildid", id);
	CHECK_INT(json_array_size(items), 2);
	json_decref(items);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	open_db();
	RUN(from_changes);
	RUN(add_update_remove);
	RUN(password);
	RUN(interested);
	struct users_answer late = {0};
	CHECK_INT(db_build_interested_users_async(db, 1, NULL, 0, on_users, &late), 0);
	db_close(db);
	CHECK(late.done && late.r == -ECANCELED);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	return tap_done();
}
