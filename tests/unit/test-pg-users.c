/*
 * Users, API tokens and web sessions answered on the loop (db.h, issue
 * 14; src/db/db-users-async.c on SQLite, src/db/db-pg-users.c on a real
 * PostgreSQL server): the same calls on two fresh databases, one of each
 * backend, must give the same answers (result, id, and the refusal's
 * words), and those answers are the ones the synchronous calls documented:
 * taken names, a password without a username, no such user, too few
 * scopes, revoked tokens, expired and idle sessions, sessions ended by an
 * update.  Then the users listing of both is compared as JSON.
 */
#include "tap.h"
#include "pg-test.h"
#include "wait.h"
#include "pg-alike.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"
#include "db/db.h"

#define diag(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

static char dir[] = "/tmp/kiln-test-pgusers.XXXXXX";
static uv_loop_t loop;

#define HASH_A "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"

/* ---- waiting for one answer ---------------------------------------------------------- */

static void on_id(void *arg, int r, int64_t id, const char *err)
{
	struct pg_alike_answer *a = arg;
	a->done = true;
	a->r = r;
	a->id = id;
	snprintf(a->text, sizeof(a->text), "r=%d id=%lld err=%s", r, (long long)id,
		 r < 0 && err ? err : "");
}

static void on_login(void *arg, int r, const struct db_user_login *u, const char *err)
{
	struct pg_alike_answer *a = arg;
	a->done = true;
	a->r = r;
	if (u)
		snprintf(a->text, sizeof(a->text), "r=%d uid=%lld username=%s roles=%s hash=%s", r,
			 (long long)u->uid, u->username, u->roles, u->hash ? u->hash : "(none)");
	else
		snprintf(a->text, sizeof(a->text), "r=%d err=%s", r, r < 0 && err ? err : "");
}

static void on_token(void *arg, int r, const struct db_token *t, const char *err)
{
	struct pg_alike_answer *a = arg;
	a->done = true;
	a->r = r;
	if (t)
		snprintf(a->text, sizeof(a->text),
			 "r=%d id=%lld uid=%lld name=%s scopes=%u used=%d", r, (long long)t->id,
			 (long long)t->uid, t->name, t->scopes, t->last_used_at > 0);
	else
		snprintf(a->text, sizeof(a->text), "r=%d err=%s", r, err ? err : "");
}

static void on_session(void *arg, int r, const struct db_session *s, const char *err)
{
	struct pg_alike_answer *a = arg;
	a->done = true;
	a->r = r;
	if (s)
		snprintf(a->text, sizeof(a->text), "r=%d uid=%lld username=%s", r,
			 (long long)s->uid, s->username);
	else
		snprintf(a->text, sizeof(a->text), "r=%d err=%s", r, r < 0 && err ? err : "");
}

static void on_commit(void *arg, int r, const char *err)
{
	struct pg_alike_answer *a = arg;
	a->done = true;
	a->r = r;
	snprintf(a->text, sizeof(a->text), "commit r=%d %s", r, err ? err : "");
}

/* ---- the script ------------------------------------------------------------------------ */

/* what: the answer of call, which answers into a (a fresh one). */
#define ID(what, call)                                                                             \
	do {                                                                                       \
		struct pg_alike_answer a = {0};                                                    \
		pg_alike_line(out, what, pg_alike_wait(&loop, db, (call), &a));                    \
		last = a;                                                                          \
	} while (0)

/* Runs the calls on db, each answer a line of out. */
static void script(struct db *db, struct buf *out)
{
	struct pg_alike_answer last = {0};
	const struct db_user_info ann_info[] = {{"git", "Ann <ann@x>"}, {"email", "ann@x"}};
	struct db_user_set ann = {.identifier = "ann",
				  .bb_username = "ann",
				  .bb_password = HASH_A,
				  .info = ann_info,
				  .ninfo = 2};
	ID("add ann", db_user_add_async(db, &ann, on_id, &a));
	CHECK_INT(last.r, 0);
	int64_t ann_id = last.id;
	ID("add ann again", db_user_add_async(db, &ann, on_id, &a));
	CHECK_INT(last.r, -EEXIST);
	struct db_user_set bob = {.identifier = "bob", .bb_username = "ann"};
	ID("add bob as username ann", db_user_add_async(db, &bob, on_id, &a));
	CHECK_INT(last.r, -EEXIST);
	const struct db_user_info taken[] = {{"email", "ann@x"}};
	bob = (struct db_user_set){.identifier = "bob", .info = taken, .ninfo = 1};
	ID("add bob with ann's email", db_user_add_async(db, &bob, on_id, &a));
	CHECK_INT(last.r, -EEXIST);
	bob = (struct db_user_set){.identifier = ""};
	ID("add an empty identifier", db_user_add_async(db, &bob, on_id, &a));
	CHECK_INT(last.r, -EINVAL);
	const struct db_user_info bob_info[] = {{"irc", "bob"}, {"irc", "bobby"}};
	bob = (struct db_user_set){
		.identifier = "bob", .bb_username = "bob", .info = bob_info, .ninfo = 2};
	ID("add bob", db_user_add_async(db, &bob, on_id, &a));
	CHECK_INT(last.r, 0);
	int64_t bob_id = last.id;

	struct db_user_set u = {.bb_username = "", .bb_password = HASH_A};
	ID("bob: no username, a password", db_user_update_async(db, bob_id, &u, false, on_id, &a));
	CHECK_INT(last.r, -EINVAL);
	u = (struct db_user_set){.identifier = "ann"};
	ID("bob renamed ann", db_user_update_async(db, bob_id, &u, false, on_id, &a));
	CHECK_INT(last.r, -EEXIST);
	u = (struct db_user_set){.bb_username = "ann"};
	ID("bob's username ann", db_user_update_async(db, bob_id, &u, false, on_id, &a));
	CHECK_INT(last.r, -EEXIST);
	u = (struct db_user_set){.info = taken, .ninfo = 1};
	ID("bob takes ann's email", db_user_update_async(db, bob_id, &u, false, on_id, &a));
	CHECK_INT(last.r, -EEXIST);
	ID("update user 999", db_user_update_async(db, 999, &u, false, on_id, &a));
	CHECK_INT(last.r, KILN_ENOTFOUND);
	/* ann keeps her git identity, her email changes, her irc one is
	 * added; the same identity twice in one call is one row */
	const struct db_user_info ann_new[] = {
		{"git", "Ann <ann@x>"}, {"email", "ann@new"}, {"irc", "ann"}, {"irc", "ann"}};
	u = (struct db_user_set){.identifier = "Ann A", .info = ann_new, .ninfo = 4};
	ID("ann's identities", db_user_update_async(db, ann_id, &u, false, on_id, &a));
	CHECK_INT(last.r, 0);
	/* two of a type in one update: the last stays (a later empty one
	 * removes the type; the address given stays users.email) */
	const struct db_user_info twice[] = {
		{"email", "bob@one"}, {"email", "bob@two"}, {"jabber", "bob@j"}, {"jabber", ""}};
	u = (struct db_user_set){.info = twice, .ninfo = 4};
	ID("bob's emails twice", db_user_update_async(db, bob_id, &u, false, on_id, &a));
	CHECK_INT(last.r, 0);
	const struct db_user_info drop[] = {{"irc", ""}};
	u = (struct db_user_set){.info = drop, .ninfo = 1};
	ID("bob's irc identities removed", db_user_update_async(db, bob_id, &u, false, on_id, &a));
	CHECK_INT(last.r, 0);
	u = (struct db_user_set){.bb_username = ""};
	ID("bob's username removed", db_user_update_async(db, bob_id, &u, false, on_id, &a));
	CHECK_INT(last.r, 0);

	ID("find Ann A", db_user_find_async(db, 0, "Ann A", false, on_id, &a));
	CHECK_INT(last.r, 1);
	CHECK_INT(last.id, ann_id);
	ID("find ann (the old identifier)", db_user_find_async(db, 0, "ann", false, on_id, &a));
	CHECK_INT(last.r, 0);
	ID("find username ann", db_user_find_async(db, 0, "ann", true, on_id, &a));
	CHECK_INT(last.r, 1);
	ID("find uid bob", db_user_find_async(db, bob_id, NULL, false, on_id, &a));
	CHECK_INT(last.r, 1);
	ID("find uid 999", db_user_find_async(db, 999, NULL, false, on_id, &a));
	CHECK_INT(last.r, 0);

	ID("ann's roles", db_user_set_roles_async(db, ann_id, "force,stop", on_id, &a));
	CHECK_INT(last.r, 0);
	ID("user 999's roles", db_user_set_roles_async(db, 999, "force", on_id, &a));
	CHECK_INT(last.r, KILN_ENOTFOUND);
	ID("login ann", db_user_login_async(db, 0, "ann", on_login, &a));
	CHECK_INT(last.r, 1);
	CHECK(strstr(last.text, "roles=force,stop hash=" HASH_A) != NULL);
	ID("login bob by uid", db_user_login_async(db, bob_id, NULL, on_login, &a));
	CHECK(strstr(last.text, "hash=(none)") != NULL);
	ID("login nobody", db_user_login_async(db, 0, "nobody", on_login, &a));
	CHECK_INT(last.r, 0);

	/* tokens */
	char text[DB_TOKEN_TEXT_LEN + 1], other[DB_TOKEN_TEXT_LEN + 1];
	unsigned char hash[DB_TOKEN_HASH_BYTES], ohash[DB_TOKEN_HASH_BYTES];
	db_token_generate(text, hash);
	db_token_generate(other, ohash);
	ID("token ci", db_token_add_async(db, ann_id, "ci", hash, DB_SCOPE_FORCE | DB_SCOPE_VIEW,
					  1000, 0, on_id, &a));
	CHECK_INT(last.r, 0);
	int64_t tid = last.id;
	ID("token of user 999",
	   db_token_add_async(db, 999, "x", ohash, DB_SCOPE_FORCE, 1000, 0, on_id, &a));
	CHECK_INT(last.r, KILN_ENOTFOUND);
	ID("token without a name",
	   db_token_add_async(db, 0, "", ohash, DB_SCOPE_FORCE, 1000, 0, on_id, &a));
	CHECK_INT(last.r, -EINVAL);
	ID("token expiring",
	   db_token_add_async(db, 0, "short", ohash, DB_SCOPE_PUSH, 1000, 2000, on_id, &a));
	CHECK_INT(last.r, 0);
	ID("verify ci", db_token_verify_async(db, text, DB_SCOPE_FORCE, 1000, on_token, &a));
	CHECK_INT(last.r, 0);
	ID("verify ci for admin",
	   db_token_verify_async(db, text, DB_SCOPE_ADMIN, 1000, on_token, &a));
	CHECK_INT(last.r, -EPERM);
	ID("verify the expiring one late", db_token_verify_async(db, other, 0, 2000, on_token, &a));
	CHECK_INT(last.r, KILN_EAUTH);
	text[10] ^= 1;
	ID("verify an unknown token", db_token_verify_async(db, text, 0, 1000, on_token, &a));
	CHECK_INT(last.r, KILN_EAUTH);
	text[10] ^= 1;
	ID("verify a malformed token",
	   db_token_verify_async(db, "kiln_short", 0, 1000, on_token, &a));
	CHECK_INT(last.r, KILN_EAUTH);
	ID("revoke ci", db_token_revoke_async(db, tid, 1100, on_id, &a));
	CHECK_INT(last.r, 1);
	ID("revoke ci again", db_token_revoke_async(db, tid, 1200, on_id, &a));
	CHECK_INT(last.r, 0);
	ID("revoke token 999", db_token_revoke_async(db, 999, 1200, on_id, &a));
	CHECK_INT(last.r, KILN_ENOTFOUND);
	ID("verify the revoked", db_token_verify_async(db, text, 0, 1300, on_token, &a));
	CHECK_INT(last.r, KILN_EAUTH);

	/* sessions */
	unsigned char s1[DB_SESSION_HASH_BYTES], s2[DB_SESSION_HASH_BYTES];
	randombytes_buf(s1, sizeof(s1));
	randombytes_buf(s2, sizeof(s2));
	CHECK_INT(db_session_add(db, s1, ann_id, "ann", 1000, 5000, NULL), 0);
	CHECK_INT(db_session_add(db, s2, 0, "hp", 1000, 5000, NULL), 0);
	struct pg_alike_answer ca = {0};
	db_commit_then(db, on_commit, &ca);
	pg_alike_line(out, "sessions added", ca.done ? ca.text : pg_alike_wait(&loop, db, 0, &ca));
	ID("ann's session", db_session_get_async(db, s1, 1010, 600, on_session, &a));
	CHECK_INT(last.r, 1);
	ID("hp's session", db_session_get_async(db, s2, 1010, 600, on_session, &a));
	CHECK_INT(last.r, 1);
	ID("hp's session idle", db_session_get_async(db, s2, 1700, 600, on_session, &a));
	CHECK_INT(last.r, 0);
	ID("hp's session deleted", db_session_get_async(db, s2, 1010, 600, on_session, &a));
	CHECK_INT(last.r, 0);
	u = (struct db_user_set){.bb_password = HASH_A};
	ID("ann's new password ends her sessions",
	   db_user_update_async(db, ann_id, &u, true, on_id, &a));
	CHECK_INT(last.r, 0);
	CHECK_INT(last.id, 1);
	ID("ann's session gone", db_session_get_async(db, s1, 1020, 600, on_session, &a));
	CHECK_INT(last.r, 0);

	ID("remove bob", db_user_remove_async(db, bob_id, on_id, &a));
	CHECK_INT(last.r, 0);
	ID("remove bob again", db_user_remove_async(db, bob_id, on_id, &a));
	CHECK_INT(last.r, KILN_ENOTFOUND);
}

/* ---- the two backends -------------------------------------------------------------------- */

struct listed {
	bool done;
	json_t *items;
};

static void on_list(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct listed *l = arg;
	(void)r;
	(void)total;
	(void)err;
	l->done = true;
	l->items = items;
}

static bool listed(void *arg)
{
	return ((struct listed *)arg)->done;
}

static json_t *users_of(struct db *db)
{
	struct listed l = {0};
	if (db_list_async(db, DB_USERS, NULL, NULL, false, on_list, &l) < 0 ||
	    !test_run_until(&loop, listed, &l, TEST_GUARD_MS))
		return NULL;
	return l.items;
}

TEST(both_backends_answer_alike)
{
	char url[300];
	snprintf(url, sizeof(url), "sqlite:%s/users.sqlite", dir);
	struct db *lite = pg_alike_open(&loop, url);
	struct db *pg = pg_alike_open(&loop, pg_test.url);
	if (!lite || !pg)
		return;
	CHECK(db_is_postgresql(pg));
	pg_alike_run(lite, pg, script, NULL);
	json_t *lu = users_of(lite), *pu = users_of(pg);
	CHECK(lu && pu && json_array_size(lu) == 1 && json_equal(lu, pu));
	if (lu && pu && !json_equal(lu, pu)) {
		char *x = json_dumps(lu, JSON_COMPACT), *y = json_dumps(pu, JSON_COMPACT);
		diag("SQLite: %s", x);
		diag("PostgreSQL: %s", y);
		free(x);
		free(y);
	}
	json_decref(lu);
	json_decref(pu);
	db_close(lite);
	db_close(pg);
}

int main(int argc, char **argv)
{
	if (!mkdtemp(dir) || uv_loop_init(&loop) != 0 || sodium_init() < 0)
		return 1;
	const char *why = argc > 1 ? pg_test_start(argv[1]) : "no scripts directory given";
	if (why) {
		diag("PostgreSQL: %s", why);
		CHECK(!"a PostgreSQL server for the test");
	} else {
		RUN(both_backends_answer_alike);
	}
	pg_test_cleanup();
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("cannot remove %s", dir);
	return tap_done();
}
