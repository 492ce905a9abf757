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

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/http.h"
#include "master/master.h"
#include "master/wsconn.h"

static int http_port;
static char basedir[256];
static uv_async_t done_async;
static struct http_server *srv;
static struct master master;
static int64_t change1, change2, build1;
static char hash[crypto_pwhash_STRBYTES], weak[crypto_pwhash_STRBYTES];

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	return buf_add(ud, p, size * n) < 0 ? 0 : size * n;
}

/* GET (body NULL) or JSON-RPC POST; the raw answer in *text (may be NULL). */
static json_t *call_text(const char *path, const char *body, long *status, char **text)
{
	char url[512];
	struct buf b;
	buf_init(&b, 16u << 20);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v2/%s", http_port, path);
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		h = curl_slist_append(h, "Expect:");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	if (curl_easy_perform(c) != CURLE_OK)
		TAP_FAIL("%s: no answer", path);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	json_t *j = json_loadb(b.ptr ? b.ptr : "", b.len, 0, NULL);
	if (text)
		*text = xstrndup(b.ptr ? b.ptr : "", b.len);
	buf_release(&b);
	return j;
}

static json_t *call(const char *path, const char *body, long *status)
{
	return call_text(path, body, status, NULL);
}

static json_t *get_ok(const char *path)
{
	long st = 0;
	char *text = NULL;
	json_t *j = call_text(path, NULL, &st, &text);
	if (st != 200 || !j)
		TAP_FAIL("%s: status %ld", path, st);
	/* no answer ever carries a password or its hash */
	CHECK(!strstr(text, "argon2") && !strstr(text, "bb_password") && !strstr(text, "s3cret"));
	free(text);
	return j;
}

/* The master's database belongs to its loop thread: the client thread
 * reads it there, with on_loop(), and waits. */
static uv_async_t run_async;
static pthread_mutex_t run_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t run_cv = PTHREAD_COND_INITIALIZER;
static void (*run_fn)(void);
static bool run_done;

static void on_run(uv_async_t *a)
{
	(void)a;
	pthread_mutex_lock(&run_mu);
	void (*fn)(void) = run_fn;
	pthread_mutex_unlock(&run_mu);
	if (fn)
		fn();
	pthread_mutex_lock(&run_mu);
	run_fn = NULL;
	run_done = true;
	pthread_cond_signal(&run_cv);
	pthread_mutex_unlock(&run_mu);
}

static void on_loop(void (*fn)(void))
{
	pthread_mutex_lock(&run_mu);
	run_fn = fn;
	run_done = false;
	pthread_mutex_unlock(&run_mu);
	uv_async_send(&run_async);
	pthread_mutex_lock(&run_mu);
	while (!run_done)
		pthread_cond_wait(&run_cv, &run_mu);
	pthread_mutex_unlock(&run_mu);
}

/* the stored hash of user hash_uid verifies "s3cret" and is the one sent */
static int64_t hash_uid;

static void check_hash(void)
{
	char *stored = NULL;
	CHECK_INT(db_user_password_hash(master.db, hash_uid, &stored), 1);
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

static int64_t rpc_code(json_t *d)
{
	return json_integer_value(json_object_get(json_object_get(d, "error"), "code"));
}

static const char *rpc_msg(json_t *d)
{
	const char *m = json_string_value(json_object_get(json_object_get(d, "error"), "message"));
	return m ? m : "";
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
	on_loop(check_hash);

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
		if (st != bad[i].status || !strstr(rpc_msg(d), bad[i].msg))
			TAP_FAIL("%s %s %s: %ld %s", bad[i].path, bad[i].method, bad[i].params, st,
				 rpc_msg(d));
		CHECK_INT(rpc_code(d), bad[i].status == 501 ? -32601 : -32602);
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
	on_loop(check_hash); /* nor the password changed */

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

static void *client_main(void *arg)
{
	(void)arg;
	RUN(shapes);
	RUN(add_update_remove);
	uv_async_send(&done_async);
	return NULL;
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

static void on_done(uv_async_t *a)
{
	uv_close((uv_handle_t *)a, NULL);
	uv_close((uv_handle_t *)&run_async, NULL);
	http_server_stop(srv);
	db_close(master.db);
	master.db = NULL;
}

static int t_auth(void *ctx, const char *name, const char *password, void **ret_ud)
{
	return KILN_EAUTH;
}

static const struct ws_conn_ops test_ops = {.authenticate = t_auth};

int main(void)
{
	uv_loop_t loop;
	struct config cfg = {0};
	pthread_t th;

	alarm(120);
	if (sodium_init() < 0 ||
	    crypto_pwhash_str(hash, "s3cret", 6, crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0 ||
	    crypto_pwhash_str(weak, "s3cret", 6, crypto_pwhash_OPSLIMIT_MIN,
			      crypto_pwhash_MEMLIMIT_MIN) != 0) {
		printf("Bail out! crypto_pwhash_str\n");
		return 1;
	}
	snprintf(basedir, sizeof(basedir), "/tmp/kiln-test-api-users-XXXXXX");
	if (!mkdtemp(basedir))
		return 1;
	uv_loop_init(&loop);
	cfg.http.host = "127.0.0.1";
	cfg.workers.host = "127.0.0.1";
	master.loop = &loop;
	master.basedir = basedir;
	master.name = "test:/users";
	master.cfg = &cfg;
	if (db_open(&loop, "sqlite:state.sqlite", basedir, &master.db) < 0) {
		printf("Bail out! db_open: %s\n", db_open_errmsg());
		return 1;
	}
	db_master_register(master.db, master.name, &master.masterid);
	fill_db(master.db, master.masterid);
	if (http_server_start(&master, &test_ops, &srv) < 0) {
		printf("Bail out! http_server_start failed\n");
		return 1;
	}
	http_port = http_server_http_port(srv);
	uv_async_init(&loop, &done_async, on_done);
	uv_async_init(&loop, &run_async, on_run);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_create(&th, NULL, client_main, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	pthread_join(th, NULL);
	curl_global_cleanup();
	int lr = uv_loop_close(&loop);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", basedir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", basedir);
	return tap_done() || lr != 0;
}
