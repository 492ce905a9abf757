/*
 * Unit tests for what the build pages ask of the REST API (slice
 * "uibuild"): GET /api/v2/lastbuilds (every builder's last build matching
 * the query, one request) and JSON-RPC "rebuild" on a build (a copy of its
 * buildset: sourcestamps of two codebases, properties, changes).  A real
 * http_server on a real loop and SQLite database filled through db.h; the
 * checks run in a client thread with libcurl, one connection per request.
 */
#include "tap.h"

#include <pthread.h>
#include <stdlib.h>

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
static int64_t b0, b1, b2, build_b0_1, bs_b0_1, change1;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	return buf_add(ud, p, size * n) < 0 ? 0 : size * n;
}

/* GET (body NULL) or JSON-RPC POST; the answer parsed, *status set. */
static json_t *call(const char *path, const char *body, long *status)
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
	if (!j)
		TAP_FAIL("%s: not JSON: %.200s", path, b.ptr ? b.ptr : "");
	buf_release(&b);
	return j;
}

static json_t *get_ok(const char *path)
{
	long st = 0;
	json_t *j = call(path, NULL, &st);
	if (st != 200)
		TAP_FAIL("%s: status %ld", path, st);
	return j;
}

/* "builderid:number" of each build of a lastbuilds answer, space-separated */
static void pairs(json_t *doc, char *out, size_t n)
{
	size_t i, off = 0;
	json_t *b;
	out[0] = '\0';
	json_array_foreach(json_object_get(doc, "builds"), i, b)
	{
		off += (size_t)snprintf(out + off, n - off, "%s%lld:%lld", i ? " " : "",
					json_integer_value(json_object_get(b, "builderid")),
					json_integer_value(json_object_get(b, "number")));
		if (off >= n)
			break;
	}
}

TEST(lastbuilds)
{
	char got[256], want[256];
	json_t *d = get_ok("lastbuilds");
	pairs(d, got, sizeof(got));
	/* b0's last is the running #3, b1's its only one; b2 has none */
	snprintf(want, sizeof(want), "%lld:3 %lld:1", (long long)b0, (long long)b1);
	CHECK_STR(got, want);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(d, "meta"), "total")), 2);
	json_decref(d);

	d = get_ok("lastbuilds?complete=true");
	pairs(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld:2 %lld:1", (long long)b0, (long long)b1);
	CHECK_STR(got, want); /* the last finished: #2, not the running #3 */
	json_t *first = json_array_get(json_object_get(d, "builds"), 0);
	CHECK(json_is_object(json_object_get(first, "properties")));
	CHECK_INT(json_object_size(json_object_get(first, "properties")), 0);
	json_decref(d);

	d = get_ok("lastbuilds?results=0&field=number&field=builderid");
	pairs(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld:1", (long long)b0);
	CHECK_STR(got, want); /* b0's last success is #1; b1 never succeeded */
	CHECK_INT(json_object_size(json_array_get(json_object_get(d, "builds"), 0)), 2);
	json_decref(d);

	d = get_ok("lastbuilds?limit=1&offset=1");
	pairs(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld:1", (long long)b1);
	CHECK_STR(got, want); /* paged over builders */
	json_decref(d);

	long st = 0;
	d = call("lastbuilds?nosuch=1", NULL, &st);
	CHECK_INT(st, 400);
	json_decref(d);
	d = call("lastbuilds?field=nosuch", NULL, &st);
	CHECK_INT(st, 400);
	json_decref(d);
	d = call("lastbuilds?number=x", NULL, &st);
	CHECK_INT(st, 400);
	json_decref(d);
}

/* The master's database belongs to its loop thread (a batch its writes
 * opened is committed there in a later turn): the client thread runs its
 * own reads and writes of it there, with on_loop(), and waits for them. */
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

/* rebuild's checks of the database, on the loop thread */
static int64_t rb_bsid, rb_brid, rb_buildid;

static void rebuild_check_db(void)
{
	/* the new buildset: reason and scheduler, same sourcestamps and properties */
	struct db_buildset_info bi = {0};
	CHECK_INT(db_buildset_get(master.db, rb_bsid, &bi), 0);
	CHECK_STR(bi.reason, "rebuild");
	CHECK_STR(bi.scheduler, "rebuild");
	CHECK_INT(bi.nsourcestamps, 2);
	db_buildset_info_release(&bi);
	struct db_sourcestamp *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	CHECK_INT(db_buildset_sourcestamps(master.db, bs_b0_1, &a, &na), 0);
	CHECK_INT(db_buildset_sourcestamps(master.db, rb_bsid, &b, &nb), 0);
	CHECK_INT(na, nb);
	for (size_t i = 0; i < na && i < nb; i++) {
		CHECK_STR(a[i].codebase, b[i].codebase);
		CHECK_STR(a[i].revision ? a[i].revision : "-", b[i].revision ? b[i].revision : "-");
		CHECK_STR(a[i].repository, b[i].repository);
	}
	free(a);
	free(b);
	json_t *pa = NULL, *pb = NULL;
	CHECK_INT(db_buildset_properties(master.db, bs_b0_1, &pa), 0);
	CHECK_INT(db_buildset_properties(master.db, rb_bsid, &pb), 0);
	CHECK(json_equal(pa, pb) && json_object_size(pa) == 2);
	json_decref(pa);
	json_decref(pb);
	/* one queued request on the same builder */
	struct db_request rq = {0};
	CHECK_INT(db_request_get(master.db, rb_brid, &rq), 0);
	CHECK_INT(rq.builderid, b0);
	CHECK_INT(rq.buildsetid, rb_bsid);
	CHECK(!rq.claimed && !rq.complete);

	/* a build of the copy lists the same changes */
	int64_t number;
	CHECK_INT(db_build_add(master.db, b0, rb_brid, 0, master.masterid, 1795377100, &rb_buildid,
			       &number),
		  0);
	CHECK_INT(db_flush(master.db), 0);
}

TEST(rebuild)
{
	char path[64];
	long st = 0;
	snprintf(path, sizeof(path), "builds/%lld", (long long)build_b0_1);
	json_t *d = call(
		path, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"rebuild\",\"params\":{}}", &st);
	CHECK_INT(st, 200);
	json_t *res = json_object_get(d, "result");
	int64_t bsid = json_integer_value(json_array_get(res, 0));
	char key[24];
	snprintf(key, sizeof(key), "%lld", (long long)b0);
	int64_t brid = json_integer_value(json_object_get(json_array_get(res, 1), key));
	CHECK(bsid > bs_b0_1 && brid > 0);
	CHECK_INT(json_integer_value(json_object_get(d, "id")), 5);
	json_decref(d);

	rb_bsid = bsid;
	rb_brid = brid;
	on_loop(rebuild_check_db);
	int64_t buildid = rb_buildid;
	snprintf(path, sizeof(path), "builds/%lld/changes", (long long)buildid);
	d = get_ok(path);
	json_t *ch = json_object_get(d, "changes");
	CHECK_INT(json_array_size(ch), 1);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(ch, 0), "changeid")), change1);
	json_decref(d);

	/* an unknown build */
	d = call("builds/999999",
		 "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"rebuild\",\"params\":{}}", &st);
	CHECK_INT(st, 404);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(d, "error"), "code")), -32603);
	json_decref(d);
}

static void *client_main(void *arg)
{
	(void)arg;
	RUN(lastbuilds);
	RUN(rebuild);
	uv_async_send(&done_async);
	return NULL;
}

/* b0: #1 success (two codebases, a change, properties), #2 failure, #3
 * running; b1: #1 failure; b2: no build. */
static void fill_db(struct db *db, int64_t masterid)
{
	double now = 1795377000;
	db_builder_ensure(db, "b0", NULL, "[]", &b0);
	db_builder_ensure(db, "b1", NULL, "[]", &b1);
	db_builder_ensure(db, "b2", NULL, "[]", &b2);
	struct db_change_new cn = {.author = "A <a@x>",
				   .comments = "fix",
				   .branch = "main",
				   .revision = "abc",
				   .codebase = "app",
				   .when_timestamp = now};
	int64_t ssid;
	if (db_change_add(db, &cn, &change1, &ssid) < 0)
		TAP_FAIL("change: %s", db_errmsg(db));
	struct {
		int64_t builder;
		int results; /* -1: running */
	} plan[] = {{b0, 0}, {b0, 2}, {b0, -1}, {b1, 2}};
	for (size_t k = 0; k < ARRAY_SIZE(plan); k++) {
		struct db_sourcestamp ss[] = {{"main", "abc", "https://x/app", "", "app"},
					      {"main", NULL, "https://x/lib", "", "lib"}};
		json_t *props = json_pack("{s:[s,s],s:[i,s]}", "color", "blue", "Force Build Form",
					  "n", 7, "Scheduler");
		struct db_buildset_new bs = {.reason = "forced",
					     .scheduler = "force",
					     .properties = props,
					     .sourcestamps = ss,
					     .nsourcestamps = 2,
					     .submitted_at = now + (double)k};
		int64_t bsid, brid, buildid, number;
		if (db_buildset_add(db, &bs, &plan[k].builder, 1, &bsid, &brid) < 0)
			TAP_FAIL("buildset: %s", db_errmsg(db));
		json_decref(props);
		if (k == 0 && db_buildset_add_changes(db, bsid, &change1, 1) < 0)
			TAP_FAIL("changes: %s", db_errmsg(db));
		db_request_claim(db, brid, masterid, now + (double)k);
		db_build_add(db, plan[k].builder, brid, 0, masterid, now + (double)k, &buildid,
			     &number);
		if (k == 0) {
			build_b0_1 = buildid;
			bs_b0_1 = bsid;
		}
		if (plan[k].results >= 0) {
			db_build_finish(db, buildid, plan[k].results, "done", now + (double)k + 1);
			db_request_complete(db, brid, plan[k].results, now + (double)k + 1, NULL);
		}
	}
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

	alarm(60);
	snprintf(basedir, sizeof(basedir), "/tmp/kiln-test-api-uibuild-XXXXXX");
	if (!mkdtemp(basedir))
		return 1;
	uv_loop_init(&loop);
	cfg.http.host = "127.0.0.1";
	cfg.workers.host = "127.0.0.1";
	master.loop = &loop;
	master.basedir = basedir;
	master.name = "test:/uibuild";
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
