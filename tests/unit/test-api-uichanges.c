/*
 * Unit tests for what the changes and schedulers views ask of the REST API
 * (slice "uichanges"): GET /api/v2/changes/N/builds (the builds made from a
 * change: Kiln's reverse of /builds/N/changes), GET /api/v2/schedulers and
 * /schedulers/N in Buildbot's shape, and JSON-RPC "enable" with its effect
 * (a disabled force scheduler is refused) and its persistence (a new
 * scheduler registry reads it back).  A real http_server on a real loop and
 * SQLite database filled through db.h; the checks run in a client thread
 * with libcurl.
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
#include "master/sched/sched.h"
#include "master/wsconn.h"

static int http_port;
static char basedir[256];
static uv_async_t done_async;
static struct http_server *srv;
static struct master master;
static int64_t b0, b1, change1, change2, build_a, build_b, build_c;

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

/* the buildids of a builds answer, space-separated, in order */
static void ids(json_t *doc, char *out, size_t n)
{
	size_t i, off = 0;
	json_t *b;
	out[0] = '\0';
	json_array_foreach(json_object_get(doc, "builds"), i, b)
	{
		off += (size_t)snprintf(out + off, n - off, "%s%lld", i ? " " : "",
					json_integer_value(json_object_get(b, "buildid")));
		if (off >= n)
			break;
	}
}

TEST(change_builds)
{
	char path[64], got[128], want[128];
	snprintf(path, sizeof(path), "changes/%lld/builds", (long long)change1);
	json_t *d = get_ok(path);
	ids(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld %lld", (long long)build_a, (long long)build_b);
	CHECK_STR(got, want); /* both buildsets of change1, not change2's build */
	json_t *first = json_array_get(json_object_get(d, "builds"), 0);
	CHECK(json_is_object(json_object_get(first, "properties"))); /* as /builds answers */
	CHECK_INT(json_integer_value(json_object_get(json_object_get(d, "meta"), "total")), 2);
	json_decref(d);

	snprintf(path, sizeof(path), "changes/%lld/builds?order=-buildid", (long long)change1);
	d = get_ok(path);
	ids(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld %lld", (long long)build_b, (long long)build_a);
	CHECK_STR(got, want); /* the query options apply */
	json_decref(d);

	snprintf(path, sizeof(path), "changes/%lld/builds", (long long)change2);
	d = get_ok(path);
	ids(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld", (long long)build_c);
	CHECK_STR(got, want);
	json_decref(d);

	d = get_ok("changes/999/builds");
	CHECK_INT(json_array_size(json_object_get(d, "builds")), 0);
	json_decref(d);

	long st = 0;
	d = call("changes/x/builds", NULL, &st);
	CHECK_INT(st, 404);
	json_decref(d);
}

static json_t *sched_row(json_t *doc, size_t i)
{
	return json_array_get(json_object_get(doc, "schedulers"), i);
}

static const char *sfield(json_t *row, const char *k)
{
	return json_string_value(json_object_get(row, k));
}

TEST(schedulers)
{
	json_t *d = get_ok("schedulers");
	CHECK_INT(json_array_size(json_object_get(d, "schedulers")), 2);
	json_t *r = sched_row(d, 0);
	CHECK_INT(json_integer_value(json_object_get(r, "schedulerid")), 1);
	CHECK_STR(sfield(r, "name"), "force");
	CHECK_STR(sfield(r, "kind"), "force_scheduler");
	CHECK(json_is_true(json_object_get(r, "enabled")));
	CHECK_INT(json_integer_value(json_object_get(json_object_get(r, "master"), "masterid")),
		  master.masterid);
	CHECK_STR(json_string_value(json_array_get(json_object_get(r, "builder_names"), 0)), "b0");
	r = sched_row(d, 1);
	CHECK_INT(json_integer_value(json_object_get(r, "schedulerid")), 2);
	CHECK_STR(sfield(r, "name"), "every");
	CHECK_STR(sfield(r, "kind"), "periodic");
	json_decref(d);

	d = get_ok("schedulers/every"); /* by name too */
	CHECK_INT(json_integer_value(json_object_get(sched_row(d, 0), "schedulerid")), 2);
	json_decref(d);

	long st = 0;
	d = call("schedulers/3", NULL, &st);
	CHECK_INT(st, 404);
	json_decref(d);
	d = call("schedulers/0", NULL, &st);
	CHECK_INT(st, 404);
	json_decref(d);
}

static int64_t rpc_code(json_t *d)
{
	return json_integer_value(json_object_get(json_object_get(d, "error"), "code"));
}

TEST(enable)
{
	long st = 0;
	json_t *d = call("schedulers/1",
			 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"enable\","
			 "\"params\":{\"enabled\":false}}",
			 &st);
	CHECK_INT(st, 200);
	CHECK(json_is_null(json_object_get(d, "result")));
	json_decref(d);
	d = get_ok("schedulers/force");
	CHECK(json_is_false(json_object_get(sched_row(d, 0), "enabled")));
	json_decref(d);
	d = get_ok("schedulers/every");
	CHECK(json_is_true(json_object_get(sched_row(d, 0), "enabled"))); /* only that one */
	json_decref(d);

	/* a disabled force scheduler refuses to force */
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"force\",\"params\":{\"builderid\":%"
		 "lld}}",
		 (long long)b0);
	d = call("forceschedulers/force", body, &st);
	CHECK_INT(st, 400);
	const char *msg =
		json_string_value(json_object_get(json_object_get(d, "error"), "message"));
	CHECK(msg && strstr(msg, "disabled"));
	json_decref(d);

	/* bad calls */
	d = call("schedulers/1",
		 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"enable\",\"params\":{\"enabled\":1}}",
		 &st);
	CHECK_INT(st, 400);
	CHECK_INT(rpc_code(d), -32602);
	json_decref(d);
	d = call("schedulers/1",
		 "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"enable\",\"params\":{}}", &st);
	CHECK_INT(st, 400);
	json_decref(d);
	d = call("schedulers/9",
		 "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"enable\","
		 "\"params\":{\"enabled\":true}}",
		 &st);
	CHECK_INT(st, 404);
	json_decref(d);
	d = call("schedulers/1", "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"frob\",\"params\":{}}",
		 &st);
	CHECK_INT(st, 501);
	CHECK_INT(rpc_code(d), -32601);
	json_decref(d);

	/* "every" disabled then enabled again by name: the registry reread in on_done
	 * must see force disabled and every enabled */
	d = call("schedulers/every",
		 "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"enable\","
		 "\"params\":{\"enabled\":false}}",
		 &st);
	CHECK_INT(st, 200);
	json_decref(d);
	d = call("schedulers/every",
		 "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"enable\","
		 "\"params\":{\"enabled\":true}}",
		 &st);
	CHECK_INT(st, 200);
	json_decref(d);
	d = get_ok("schedulers/every");
	CHECK(json_is_true(json_object_get(sched_row(d, 0), "enabled")));
	json_decref(d);
}

static void *client_main(void *arg)
{
	(void)arg;
	RUN(change_builds);
	RUN(schedulers);
	RUN(enable);
	uv_async_send(&done_async);
	return NULL;
}

/* one buildset on builder with changes[0..nchanges), claimed, built, finished */
static int64_t add_build(struct db *db, int64_t masterid, int64_t builder, const int64_t *changes,
			 size_t nchanges, double t)
{
	struct db_sourcestamp ss[] = {{"main", "abc", "https://x/app", "", ""}};
	struct db_buildset_new bs = {.reason = "test",
				     .scheduler = "force",
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
	db_build_finish(db, buildid, 0, "done", t + 1);
	db_request_complete(db, brid, 0, t + 1, NULL);
	return buildid;
}

/* change1 built twice (b0, b1), change2 once with change1 (b0), a build of no change */
static void fill_db(struct db *db, int64_t masterid)
{
	double now = 1795377000;
	db_builder_ensure(db, "b0", NULL, "[]", &b0);
	db_builder_ensure(db, "b1", NULL, "[]", &b1);
	struct db_change_new cn = {.author = "A <a@x>",
				   .comments = "fix",
				   .branch = "main",
				   .revision = "abc",
				   .when_timestamp = now};
	int64_t ssid;
	if (db_change_add(db, &cn, &change1, &ssid) < 0)
		TAP_FAIL("change: %s", db_errmsg(db));
	cn.revision = "def";
	if (db_change_add(db, &cn, &change2, &ssid) < 0)
		TAP_FAIL("change: %s", db_errmsg(db));
	build_a = add_build(db, masterid, b0, &change1, 1, now);
	add_build(db, masterid, b0, NULL, 0, now + 1);
	build_b = add_build(db, masterid, b1, &change1, 1, now + 2);
	build_c = add_build(db, masterid, b0, &change2, 1, now + 3);
	if (db_flush(db) < 0)
		TAP_FAIL("flush: %s", db_errmsg(db));
}

static void on_done(uv_async_t *a)
{
	/* the enabled flags survive a restart: a new registry reads them back */
	sched_free(master.sched);
	master.sched = NULL;
	struct sched *s2 = NULL;
	if (sched_new(&master, &s2) < 0)
		TAP_FAIL("sched_new again");
	CHECK(!sched_enabled(s2, 0));
	CHECK(sched_enabled(s2, 1));
	CHECK_INT(sched_set_enabled(s2, 2, false), KILN_ENOTFOUND);
	sched_free(s2);
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
	char *force_builders[] = {"b0"}, *every_builders[] = {"b1"};
	struct config_scheduler scheds[] = {
		{.kind = CONFIG_SCHED_FORCE,
		 .name = "force",
		 .builders = force_builders,
		 .nbuilders = 1},
		{.kind = CONFIG_SCHED_PERIODIC,
		 .name = "every",
		 .builders = every_builders,
		 .nbuilders = 1,
		 .period = 3600},
	};

	alarm(60);
	snprintf(basedir, sizeof(basedir), "/tmp/kiln-test-api-uichanges-XXXXXX");
	if (!mkdtemp(basedir))
		return 1;
	uv_loop_init(&loop);
	cfg.http.host = "127.0.0.1";
	cfg.workers.host = "127.0.0.1";
	cfg.scheduler = scheds;
	cfg.nschedulers = ARRAY_SIZE(scheds);
	master.loop = &loop;
	master.basedir = basedir;
	master.name = "test:/uichanges";
	master.cfg = &cfg;
	if (db_open(&loop, "sqlite:state.sqlite", basedir, &master.db) < 0) {
		printf("Bail out! db_open: %s\n", db_open_errmsg());
		return 1;
	}
	db_master_register(master.db, master.name, &master.masterid);
	fill_db(master.db, master.masterid);
	if (sched_new(&master, &master.sched) < 0) {
		printf("Bail out! sched_new failed\n");
		return 1;
	}
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
