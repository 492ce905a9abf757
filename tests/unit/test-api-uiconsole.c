/*
 * Unit tests for what the console and grid views ask of the REST API (slice
 * "console"): GET /api/v2/changes/builds?changeid=1,2 — for a page of
 * changes, the latest build of each (change, builder) made from the change
 * (change -> buildset_changes -> buildrequests -> builds), in one answer:
 * its shape, which build wins a cell, that a revision string shared by two
 * changes or a build of no change never lands in the wrong cell, the caps
 * (changeids per request, rows per answer) and bad input.  A real
 * http_server on a real loop and a SQLite database filled through db.h; the
 * checks run in a client thread with libcurl.
 */
#include "tap.h"

#include <errno.h>
#include <pthread.h>
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
static int64_t b0, b1, b2, change1, change2, change3;
static int64_t old_a, new_a, forced, other_branch, both, running;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	return buf_add(ud, p, size * n) < 0 ? 0 : size * n;
}

/* GET path; the answer parsed, *status set. */
static json_t *call(const char *path, long *status)
{
	size_t ulen = strlen(path) + 64;
	char *url = xmalloc(ulen);
	struct buf b;
	buf_init(&b, 16u << 20);
	snprintf(url, ulen, "http://127.0.0.1:%d/api/v2/%s", http_port, path);
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(c) != CURLE_OK)
		TAP_FAIL("%s: no answer", path);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(url);
	json_t *j = json_loadb(b.ptr ? b.ptr : "", b.len, 0, NULL);
	if (!j)
		TAP_FAIL("%s: not JSON: %.200s", path, b.ptr ? b.ptr : "");
	buf_release(&b);
	return j;
}

static json_t *get_ok(const char *path)
{
	long st = 0;
	json_t *j = call(path, &st);
	if (st != 200)
		TAP_FAIL("%s: status %ld", path, st);
	return j;
}

/* "changeid:builderid=buildid ..." of an answer, in order */
static void cells(json_t *doc, char *out, size_t n)
{
	size_t i, off = 0;
	json_t *b;
	out[0] = '\0';
	json_array_foreach(json_object_get(doc, "builds"), i, b)
	{
		off += (size_t)snprintf(out + off, n - off, "%s%lld:%lld=%lld", i ? " " : "",
					json_integer_value(json_object_get(b, "changeid")),
					json_integer_value(json_object_get(b, "builderid")),
					json_integer_value(json_object_get(b, "buildid")));
		if (off >= n)
			break;
	}
}

/* the 400 answer of path names what is wrong */
static void check_400(const char *path, const char *words)
{
	long st = 0;
	json_t *d = call(path, &st);
	CHECK_INT(st, 400);
	const char *msg = json_string_value(json_object_get(d, "error"));
	CHECK(msg && strstr(msg, words));
	if (!msg || !strstr(msg, words))
		printf("# %s: %s\n", path, msg ? msg : "(no error)");
	json_decref(d);
}

TEST(cells_shape)
{
	char path[128], got[256], want[256];
	snprintf(path, sizeof(path), "changes/builds?changeid=%lld,%lld,%lld", (long long)change1,
		 (long long)change2, (long long)change3);
	json_t *d = get_ok(path);
	cells(d, got, sizeof(got));
	/* newest change first, then by builder; the latest build of a cell wins
	 * (new_a, not old_a); the forced build of b0 (no change) is nowhere;
	 * change2 has change1's revision on another branch: its own builds only */
	snprintf(want, sizeof(want), "%lld:%lld=%lld %lld:%lld=%lld %lld:%lld=%lld %lld:%lld=%lld",
		 (long long)change3, (long long)b2, (long long)running, (long long)change2,
		 (long long)b1, (long long)both, (long long)change1, (long long)b0,
		 (long long)new_a, (long long)change1, (long long)b1, (long long)both);
	CHECK_STR(got, want);
	(void)other_branch;
	json_t *meta = json_object_get(d, "meta");
	CHECK_INT(json_integer_value(json_object_get(meta, "total")), 4);
	CHECK(json_is_false(json_object_get(meta, "truncated")));

	/* one row's fields: only those, typed */
	json_t *row = json_array_get(json_object_get(d, "builds"), 2);
	CHECK_INT(json_object_size(row), 9);
	CHECK_INT(json_integer_value(json_object_get(row, "number")), 2);
	CHECK_INT(json_integer_value(json_object_get(row, "results")), 0);
	CHECK(json_is_true(json_object_get(row, "complete")));
	CHECK_INT(json_integer_value(json_object_get(row, "started_at")), 1795377002);
	CHECK_INT(json_integer_value(json_object_get(row, "complete_at")), 1795377003);
	CHECK_STR(json_string_value(json_object_get(row, "state_string")), "done");
	/* a running build: no results yet */
	row = json_array_get(json_object_get(d, "builds"), 0);
	CHECK(json_is_null(json_object_get(row, "results")));
	CHECK(json_is_false(json_object_get(row, "complete")));
	CHECK(json_is_null(json_object_get(row, "complete_at")));
	json_decref(d);

	/* repeated parameters add ids; an unknown change has no cells */
	snprintf(path, sizeof(path), "changes/builds?changeid=%lld&changeid=999",
		 (long long)change2);
	d = get_ok(path);
	cells(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld:%lld=%lld", (long long)change2, (long long)b1,
		 (long long)both);
	CHECK_STR(got, want);
	json_decref(d);

	/* ?field= keeps only those keys (the console's small answer) */
	snprintf(path, sizeof(path), "changes/builds?changeid=%lld&field=changeid&field=buildid",
		 (long long)change2);
	d = get_ok(path);
	json_t *only = json_array_get(json_object_get(d, "builds"), 0);
	CHECK_INT(json_object_size(only), 2);
	CHECK_INT(json_integer_value(json_object_get(only, "buildid")), both);
	json_decref(d);

	d = get_ok("changes/builds?changeid=999");
	CHECK_INT(json_array_size(json_object_get(d, "builds")), 0);
	json_decref(d);
}

TEST(cells_caps)
{
	char path[128];
	/* ?limit= caps the rows; meta says the answer was cut */
	snprintf(path, sizeof(path), "changes/builds?changeid=%lld,%lld&limit=1",
		 (long long)change1, (long long)change2);
	json_t *d = get_ok(path);
	CHECK_INT(json_array_size(json_object_get(d, "builds")), 1);
	CHECK(json_is_true(json_object_get(json_object_get(d, "meta"), "truncated")));
	json_decref(d);
	snprintf(path, sizeof(path), "changes/builds?changeid=%lld&limit=0", (long long)change1);
	d = get_ok(path);
	CHECK_INT(json_array_size(json_object_get(d, "builds")), 0);
	json_decref(d);

	/* 500 ids are accepted, 501 are not */
	size_t cap = 8192, off = 0;
	char *q = xmalloc(cap);
	off += (size_t)snprintf(q + off, cap - off, "changes/builds?changeid=");
	for (int i = 1; i <= 500; i++)
		off += (size_t)snprintf(q + off, cap - off, "%s%d", i > 1 ? "," : "", i);
	d = get_ok(q);
	CHECK_INT(json_array_size(json_object_get(d, "builds")), 4); /* the cells of 1..3 */
	json_decref(d);
	snprintf(q + off, cap - off, ",501");
	check_400(q, "too many changeids: at most 500");
	free(q);
}

TEST(cells_bad_input)
{
	check_400("changes/builds", "missing changeid");
	check_400("changes/builds?changeid=", "invalid changeid ''");
	check_400("changes/builds?changeid=x", "invalid changeid 'x'");
	check_400("changes/builds?changeid=0", "invalid changeid '0'");
	check_400("changes/builds?changeid=-1", "invalid changeid '-1'");
	check_400("changes/builds?changeid=1,,2", "invalid changeid ''");
	check_400("changes/builds?changeid=1,", "invalid changeid ''");
	check_400("changes/builds?changeid=99999999999999999999999", "invalid changeid");
	check_400("changes/builds?changeid=1&limit=x", "invalid limit");
	check_400("changes/builds?changeid=1&limit=-2", "invalid limit");
	check_400("changes/builds?changeid=1&branch=main", "unrecognized query parameter 'branch'");
	check_400("changes/builds?changeid=1&field=properties", "no such field 'properties'");
	/* still answering */
	json_t *d = get_ok("changes/builds?changeid=1");
	CHECK(json_is_array(json_object_get(d, "builds")));
	json_decref(d);
}

static void *client_main(void *arg)
{
	(void)arg;
	RUN(cells_shape);
	RUN(cells_caps);
	RUN(cells_bad_input);
	uv_async_send(&done_async);
	return NULL;
}

/* one buildset on builder with changes[0..nchanges) (revision rev), claimed,
 * built, finished with results (< 0: still running) */
static int64_t add_build(struct db *db, int64_t masterid, int64_t builder, const int64_t *changes,
			 size_t nchanges, const char *branch, double t, int results)
{
	struct db_sourcestamp ss[] = {{branch, "abc", "https://x/app", "", ""}};
	struct db_buildset_new bs = {.reason = "test",
				     .scheduler = "s",
				     .sourcestamps = ss,
				     .nsourcestamps = 1,
				     .submitted_at = t};
	int64_t bsid, brid, buildid, number;
	if (db_buildset_add(db, &bs, &builder, 1, &bsid, &brid) < 0)
		TAP_FAIL("buildset: %s", db_errmsg(db));
	if (nchanges && db_buildset_add_changes(db, bsid, changes, nchanges) < 0)
		TAP_FAIL("changes: %s", db_errmsg(db));
	db_request_claim(db, brid, masterid, t);
	db_build_add(db, builder, brid, 0, masterid, t, &buildid, &number);
	if (results >= 0) {
		db_build_finish(db, buildid, results, "done", t + 1);
		db_request_complete(db, brid, results, t + 1, NULL);
	}
	return buildid;
}

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
				   .when_timestamp = now};
	int64_t ssid;
	if (db_change_add(db, &cn, &change1, &ssid) < 0)
		TAP_FAIL("change: %s", db_errmsg(db));
	cn.branch = "release"; /* the same revision string on another branch */
	if (db_change_add(db, &cn, &change2, &ssid) < 0)
		TAP_FAIL("change: %s", db_errmsg(db));
	cn.branch = "main";
	cn.revision = "def";
	if (db_change_add(db, &cn, &change3, &ssid) < 0)
		TAP_FAIL("change: %s", db_errmsg(db));
	old_a = add_build(db, masterid, b0, &change1, 1, "main", now, 2);
	new_a = add_build(db, masterid, b0, &change1, 1, "main", now + 2, 0);
	forced = add_build(db, masterid, b0, NULL, 0, "main", now + 4, 2); /* no change */
	other_branch = add_build(db, masterid, b1, &change2, 1, "release", now + 5, 2);
	int64_t two[] = {change1, change2};
	both = add_build(db, masterid, b1, two, 2, "main", now + 6, 0);
	running = add_build(db, masterid, b2, &change3, 1, "main", now + 8, -1);
	if (db_flush(db) < 0)
		TAP_FAIL("flush: %s", db_errmsg(db));
}

static void on_done(uv_async_t *a)
{
	uv_close((uv_handle_t *)a, NULL);
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
	snprintf(basedir, sizeof(basedir), "/tmp/kiln-test-api-uiconsole-XXXXXX");
	if (!mkdtemp(basedir))
		return 1;
	uv_loop_init(&loop);
	cfg.http.host = "127.0.0.1";
	cfg.workers.host = "127.0.0.1";
	master.loop = &loop;
	master.basedir = basedir;
	master.name = "test:/uiconsole";
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
