/*
 * Unit tests for /api/v2/users (api-users.c, slice "users"): the list and
 * entity shapes (no password in any answer), paging, filters and order
 * through the list machinery, lookup by uid and identifier, 404s,
 * /changes/N/users and /builds/N/users (the blamelist's users), and the
 * JSON-RPC add/update/remove with their refusals (bad input, taken names,
 * plain or weak passwords), each refusal changing nothing.  A real
 * http_server on a real loop and SQLite database; the checks run in a
 * client thread with libcurl.
 */
#include "tap.h"
#include "api-harness.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/master.h"

static int64_t change1, change2, build1;
static char hash[crypto_pwhash_STRBYTES], weak[crypto_pwhash_STRBYTES];

/* GET (body NULL) or JSON-RPC POST; NULL if the answer is not JSON. */
static json_t *call(const char *path, const char *body, long *status)
{
	return api_call(path, body, API_MAY_FAIL, status, NULL);
}

static json_t *get_ok(const char *path)
{
	long st = 0;
	char *text = NULL;
	json_t *j = api_call(path, NULL, API_MAY_FAIL, &st, &text);
	if (st != 200 || !j)
		TAP_FAIL("%s: status %ld", path, st);
	/* no answer ever carries a password or its hash */
	CHECK(!strstr(text, "argon2") && !strstr(text, "bb_password") && !strstr(text, "s3cret"));
	free(text);
	return j;
}

/* on the loop thread (api_on_loop): the stored hash of user hash_uid verifies "s3cret" and is the
 * one sent */
static int64_t hash_uid;

static void check_hash(void)
{
	char *stored = NULL;
	CHECK_INT(db_user_password_hash(api_master.db, hash_uid, &stored), 1);
	CHECK(stored && crypto_pwhash_str_verify(stored, "s3cret", 6) == 0);
	CHECK(stored && !strcmp(stored, hash));
	free(stored);
}

static json_t *users(json_t *doc)
{
	return json_object_get(doc, "users");
}

static const char *ustr(json_t *doc, size_t i, const char *k)
{
	return json_string_value(json_object_get(json_array_get(users(doc), i), k));
}

static json_t *rpc(const char *path, const char *method, const char *params, long *st)
{
	char *body = xasprintf("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":%s}",
			       method, params);
	json_t *d = call(path, body, st);
	free(body);
	if (!d)
		TAP_FAIL("%s %s: not JSON", path, method);
	return d;
}

static int64_t total(json_t *d)
{
	return json_integer_value(json_object_get(json_object_get(d, "meta"), "total"));
}

TEST(shapes)
{
	json_t *d = get_ok("users");
	CHECK_INT(json_array_size(users(d)), 2); /* the authors of the two changes */
	CHECK_INT(total(d), 2);
	CHECK_STR(ustr(d, 0, "identifier"), "Ann <ann@x.org>");
	json_t *u = json_array_get(users(d), 0);
	CHECK_INT(json_integer_value(json_object_get(u, "uid")), 1);
	CHECK_STR(ustr(d, 0, "email"), "ann@x.org");
	CHECK_STR(ustr(d, 0, "full_name"), "Ann");
	CHECK(json_is_false(json_object_get(u, "has_password")));
	CHECK(json_is_null(json_object_get(u, "bb_username")));
	json_t *ids = json_object_get(u, "identities");
	CHECK_INT(json_array_size(ids), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(ids, 0), "attr_type")), "email");
	CHECK_STR(json_string_value(json_object_get(json_array_get(ids, 1), "attr_type")), "git");
	CHECK_STR(json_string_value(json_object_get(json_array_get(ids, 1), "attr_data")),
		  "Ann <ann@x.org>");
	CHECK_STR(ustr(d, 1, "identifier"), "bob");
	json_decref(d);

	d = get_ok("users/1");
	CHECK_INT(json_array_size(users(d)), 1);
	CHECK_INT(json_object_size(json_object_get(d, "meta")), 0);
	json_decref(d);
	d = get_ok("users/bob"); /* by identifier */
	CHECK_STR(ustr(d, 0, "identifier"), "bob");
	json_decref(d);
	d = get_ok("users?identifier=bob");
	CHECK_INT(json_array_size(users(d)), 1);
	json_decref(d);
	d = get_ok("users?attr_data=ann@x.org"); /* by any identity */
	CHECK_STR(ustr(d, 0, "identifier"), "Ann <ann@x.org>");
	json_decref(d);

	/* paging, order and fields as for every collection */
	d = get_ok("users?order=-uid&limit=1");
	CHECK_INT(json_array_size(users(d)), 1);
	CHECK_STR(ustr(d, 0, "identifier"), "bob");
	json_decref(d);
	d = get_ok("users?limit=1&offset=1");
	CHECK_STR(ustr(d, 0, "identifier"), "bob");
	json_decref(d);
	d = get_ok("users?field=uid&field=identifier");
	CHECK_INT(json_object_size(json_array_get(users(d), 0)), 2);
	json_decref(d);

	char path[64];
	snprintf(path, sizeof(path), "changes/%lld/users", (long long)change2);
	d = get_ok(path);
	CHECK_INT(json_array_size(users(d)), 1);
	CHECK_STR(ustr(d, 0, "identifier"), "bob");
	json_decref(d);
	snprintf(path, sizeof(path), "builds/%lld/users", (long long)build1);
	d = get_ok(path);
	CHECK_INT(json_array_size(users(d)), 2); /* the blamelist: both authors */
	json_decref(d);

	long st = 0;
	d = call("users/99", NULL, &st);
	CHECK_INT(st, 404);
	json_decref(d);
	d = call("users/nobody", NULL, &st);
	CHECK_INT(st, 404);
	json_decref(d);
	d = call("users?order=password", NULL, &st);
	CHECK_INT(st, 400);
	json_decref(d);
	d = call("users?bb_password=x", NULL, &st); /* not a field: not a filter either */
	CHECK(st == 400 || (st == 200 && json_array_size(users(d)) == 2));
	json_decref(d);
	d = call("users/1/x", NULL, &st);
	CHECK_INT(st, 404);
	json_decref(d);
}

TEST(add_update_remove)
{
	long st = 0;
	char *params = xasprintf("{\"identifier\":\"carol\",\"username\":\"carol\","
				 "\"password_hash\":\"%s\",\"identities\":["
				 "{\"attr_type\":\"irc\",\"attr_data\":\"caz\"},"
				 "{\"attr_type\":\"email\",\"attr_data\":\"carol@x.org\"}]}",
				 hash);
	json_t *d = rpc("users", "add", params, &st);
	free(params);
	CHECK_INT(st, 200);
	int64_t uid = json_integer_value(json_object_get(json_object_get(d, "result"), "uid"));
	CHECK(uid > 2);
	json_decref(d);
	d = get_ok("users/carol");
	CHECK(json_is_true(json_object_get(json_array_get(users(d), 0), "has_password")));
	CHECK_STR(ustr(d, 0, "bb_username"), "carol");
	CHECK_STR(ustr(d, 0, "email"), "carol@x.org");
	json_decref(d);
	/* the hash is stored as given, and verifies */
	hash_uid = uid;
	api_on_loop(check_hash);

	/* refusals: each names the problem and changes nothing */
	struct {
		const char *path, *method, *params;
		long status;
		const char *msg;
	} bad[] = {
		{"users", "add", "{}", 400, "identifier is missing"},
		{"users", "add", "{\"identifier\":\"\"}", 400, "identifier is empty"},
		{"users", "add", "{\"identifier\":7}", 400, "'identifier' must be a string"},
		{"users", "add", "{\"identifier\":\"carol\"}", 409, "identifier 'carol'"},
		{"users", "add", "{\"identifier\":\"d\",\"username\":\"carol\"}", 409, "username"},
		{"users", "add", "{\"identifier\":\"d\",\"password\":\"s3cret\"}", 400,
		 "'password' is not accepted"},
		{"users", "add",
		 "{\"identifier\":\"d\",\"username\":\"d\",\"password_hash\":\"s3cret\"}", 400,
		 "argon2id"},
		{"users", "add", "{\"identifier\":\"d\",\"frob\":1}", 400,
		 "unknown parameter 'frob'"},
		{"users", "add", "{\"identifier\":\"d\",\"identities\":[{\"attr_type\":\"irc\"}]}",
		 400, "each identity"},
		{"users", "add",
		 "{\"identifier\":\"d\",\"identities\":[{\"attr_type\":\"irc\",\"attr_data\":"
		 "\"caz\"}]}",
		 409, "identity irc 'caz'"},
		{"users", "add",
		 "{\"identifier\":\"d\",\"identities\":[{\"attr_type\":\"a "
		 "b\",\"attr_data\":\"x\"}]}",
		 400, "identity type"},
		{"users", "frob", "{}", 501, "frob"},
		{"users/99", "update", "{\"identifier\":\"x\"}", 404, "no such user"},
		{"users/nobody", "remove", "{}", 404, "no such user"},
		{"users/carol", "update", "{\"identifier\":\"bob\"}", 409, "identifier 'bob'"},
		{"users/carol", "remove", "{\"x\":1}", 400, "no parameters"},
		{"users/carol", "frob", "{}", 501, "frob"},
		{"users/bob", "update", "{\"identifier\":\"a\\u0001b\"}", 400, "control character"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		d = rpc(bad[i].path, bad[i].method, bad[i].params, &st);
		if (st != bad[i].status || !strstr(api_rpc_msg(d), bad[i].msg))
			TAP_FAIL("%s %s %s: %ld %s", bad[i].path, bad[i].method, bad[i].params, st,
				 api_rpc_msg(d));
		CHECK_INT(api_rpc_code(d), bad[i].status == 501 ? -32601 : -32602);
		json_decref(d);
	}
	/* a hash with costs below libsodium's interactive limits is refused */
	params = xasprintf("{\"password_hash\":\"%s\"}", weak);
	d = rpc("users/carol", "update", params, &st);
	free(params);
	CHECK_INT(st, 400);
	json_decref(d);
	d = get_ok("users");
	CHECK_INT(total(d), 3); /* nothing was added */
	json_decref(d);
	d = get_ok("users/bob");
	CHECK_STR(ustr(d, 0, "identifier"), "bob"); /* nothing was renamed */
	json_decref(d);
	api_on_loop(check_hash); /* nor the password changed */

	/* update by identifier: rename, replace an identity, clear the username */
	d = rpc("users/carol", "update",
		"{\"identifier\":\"Carol C\",\"username\":null,"
		"\"identities\":[{\"attr_type\":\"irc\",\"attr_data\":\"carol\"}]}",
		&st);
	CHECK_INT(st, 200);
	CHECK(json_is_null(json_object_get(d, "result")));
	json_decref(d);
	d = get_ok("users?attr_data=carol");
	CHECK_STR(ustr(d, 0, "identifier"), "Carol C");
	CHECK(json_is_null(json_object_get(json_array_get(users(d), 0), "bb_username")));
	CHECK(json_is_false(json_object_get(json_array_get(users(d), 0), "has_password")));
	json_decref(d);

	char path[32];
	snprintf(path, sizeof(path), "users/%lld", (long long)uid);
	d = rpc(path, "remove", "{}", &st);
	CHECK_INT(st, 200);
	json_decref(d);
	d = call(path, NULL, &st);
	CHECK_INT(st, 404);
	json_decref(d);
	d = rpc(path, "remove", "{}", &st);
	CHECK_INT(st, 404);
	json_decref(d);
}

static void client(void)
{
	RUN(shapes);
	RUN(add_update_remove);
}

static int64_t add_change(struct db *db, const char *who, const char *src, const char *email,
			  const char *full_name, const char *rev)
{
	struct db_user_ident id = {
		.attr_type = src, .who = who, .email = email, .full_name = full_name};
	struct db_change_new cn = {.author = who,
				   .comments = "fix",
				   .branch = "main",
				   .revision = rev,
				   .when_timestamp = 1795377000,
				   .user = &id};
	int64_t cid, ssid;
	if (db_change_add(db, &cn, &cid, &ssid) < 0)
		TAP_FAIL("change: %s", db_errmsg(db));
	return cid;
}

static void fill_db(struct db *db, int64_t masterid)
{
	int64_t b0, bsid, brid, number;
	db_builder_ensure(db, "b0", NULL, "[]", &b0);
	change1 = add_change(db, "Ann <ann@x.org>", "git", "ann@x.org", "Ann", "abc");
	change2 = add_change(db, "bob", "svn", NULL, NULL, "5");
	struct db_sourcestamp ss[] = {{"main", "abc", "https://x/app", "", ""}};
	struct db_buildset_new bs = {.reason = "test",
				     .scheduler = "force",
				     .sourcestamps = ss,
				     .nsourcestamps = 1,
				     .submitted_at = 1795377000};
	if (db_buildset_add(db, &bs, &b0, 1, &bsid, &brid) < 0)
		TAP_FAIL("buildset: %s", db_errmsg(db));
	int64_t chs[] = {change1, change2};
	if (db_buildset_add_changes(db, bsid, chs, 2) < 0)
		TAP_FAIL("changes: %s", db_errmsg(db));
	db_request_claim(db, brid, masterid, 1795377000);
	db_build_add(db, b0, brid, 0, masterid, 1795377000, &build1, &number);
	if (db_flush(db) < 0)
		TAP_FAIL("flush: %s", db_errmsg(db));
}

int main(void)
{
	/* control stays open although users can log in (slice "weblogin") */
	static struct config_auth auth = {.anonymous_read = true, .anonymous_control = 1};
	static struct config cfg = {.auth = &auth};
	struct api_harness h = {.name = "users",
				.timeout_s = 120,
				.cfg = &cfg,
				.fill_db = fill_db,
				.client = client};

	alarm(120); /* the hashing included */
	if (sodium_init() < 0 ||
	    crypto_pwhash_str(hash, "s3cret", 6, crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0 ||
	    crypto_pwhash_str(weak, "s3cret", 6, crypto_pwhash_OPSLIMIT_MIN,
			      crypto_pwhash_MEMLIMIT_MIN) != 0) {
		printf("Bail out! crypto_pwhash_str\n");
		return 1;
	}
	return API_HARNESS_MAIN(&h);
}
