/*
 * Unit tests for the JSON-RPC worker control actions "stop" (graceful) and
 * "kill" on /api/v2/workers/{id or name} (api-workers.c, slice
 * "workerctl"): bad params, an unknown worker, an unknown action, a
 * cross-site call refused like every control call (pause included), and a
 * known worker that is not connected (null, nothing stored).  A real
 * http_server on a real loop and SQLite database; the calls run in a
 * client thread with libcurl.  The effect on connected workers is tested
 * end to end (t1056, t1058).
 */
#include "tap.h"

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
static int64_t w1;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	return buf_add(ud, p, size * n) < 0 ? 0 : size * n;
}

/* GET (body NULL) or JSON-RPC POST, cross-site when cross; the answer
 * parsed, *status set. */
static json_t *call(const char *path, const char *body, bool cross, long *status)
{
	char url[512];
	struct buf b;
	buf_init(&b, 1u << 20);
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
		if (cross) {
			h = curl_slist_append(h, "Origin: http://evil.example");
			h = curl_slist_append(h, "Sec-Fetch-Site: cross-site");
		}
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

static int64_t rpc_code(json_t *d)
{
	return json_integer_value(json_object_get(json_object_get(d, "error"), "code"));
}

static const char *rpc_msg(json_t *d)
{
	const char *s = json_string_value(json_object_get(json_object_get(d, "error"), "message"));
	return s ? s : "";
}

/* w1's "graceful" and "paused" as the API shows them */
static void flags(bool *graceful, bool *paused)
{
	long st = 0;
	json_t *d = call("workers/w1", NULL, false, &st);
	CHECK_INT(st, 200);
	json_t *row = json_array_get(json_object_get(d, "workers"), 0);
	*graceful = json_is_true(json_object_get(row, "graceful"));
	*paused = json_is_true(json_object_get(row, "paused"));
	json_decref(d);
}

static const char *const actions[] = {"stop", "kill"};

TEST(bad_params)
{
	char body[256];
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
		long st = 0;
		snprintf(body, sizeof(body),
			 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\","
			 "\"params\":{\"reason\":5}}",
			 actions[i]);
		json_t *d = call("workers/w1", body, false, &st);
		CHECK_INT(st, 400);
		CHECK_INT(rpc_code(d), -32602);
		CHECK_STR(rpc_msg(d), "'reason' must be a string");
		json_decref(d);

		snprintf(body, sizeof(body),
			 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\","
			 "\"params\":{\"reason\":[\"x\"]}}",
			 actions[i]);
		d = call("workers/1", body, false, &st);
		CHECK_INT(st, 400);
		json_decref(d);

		/* params that are not an object: refused by the envelope check */
		snprintf(body, sizeof(body),
			 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":7}",
			 actions[i]);
		d = call("workers/w1", body, false, &st);
		CHECK(st >= 400 && st < 500);
		json_decref(d);
	}
	bool g, p;
	flags(&g, &p);
	CHECK(!g);
	CHECK(!p);
}

TEST(unknown_worker)
{
	char body[256];
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
		long st = 0;
		snprintf(body, sizeof(body),
			 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"%s\",\"params\":{}}",
			 actions[i]);
		json_t *d = call("workers/nosuch", body, false, &st);
		CHECK_INT(st, 404);
		CHECK_INT(rpc_code(d), -32602);
		CHECK_STR(rpc_msg(d), "no such worker");
		json_decref(d);
		d = call("workers/99", body, false, &st);
		CHECK_INT(st, 404);
		CHECK_STR(rpc_msg(d), "no such worker");
		json_decref(d);
	}
	/* an action Buildbot does not have */
	long st = 0;
	json_t *d = call("workers/w1",
			 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"shutdown\",\"params\":{}}",
			 false, &st);
	CHECK_INT(st, 501);
	CHECK_INT(rpc_code(d), -32601);
	CHECK_STR(rpc_msg(d), "action: shutdown is not supported");
	json_decref(d);
}

/* The control permission is the one pause has: a same-site caller (or a
 * script without Origin) may, a cross-site page may not. */
TEST(refused_cross_site)
{
	const char *const all[] = {"pause", "stop", "kill"};
	char body[256];
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		long st = 0;
		snprintf(body, sizeof(body),
			 "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"%s\",\"params\":{}}", all[i]);
		json_t *d = call("workers/w1", body, true, &st);
		CHECK_INT(st, 403);
		const char *e = json_string_value(json_object_get(d, "error"));
		CHECK(e && strstr(e, "cross-site"));
		json_decref(d);
	}
	bool g, p;
	flags(&g, &p);
	CHECK(!g); /* nothing happened */
	CHECK(!p);
}

TEST(not_connected)
{
	char body[256];
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
		long st = 0;
		snprintf(body, sizeof(body),
			 "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"%s\","
			 "\"params\":{\"reason\":\"maintenance\"}}",
			 actions[i]);
		json_t *d = call("workers/w1", body, false, &st);
		CHECK_INT(st, 200);
		CHECK(json_is_null(json_object_get(d, "result")));
		CHECK(!json_object_get(d, "error"));
		json_decref(d);
		char path[64];
		snprintf(path, sizeof(path), "workers/%lld", (long long)w1);
		d = call(path, body, false, &st); /* by id too */
		CHECK_INT(st, 200);
		json_decref(d);
	}
	/* Buildbot: "no remote; worker is already shut down": nothing stored */
	bool g, p;
	flags(&g, &p);
	CHECK(!g);
	CHECK(!p);
}

static void *client_main(void *arg)
{
	(void)arg;
	RUN(bad_params);
	RUN(unknown_worker);
	RUN(refused_cross_site);
	RUN(not_connected);
	uv_async_send(&done_async);
	return NULL;
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
	(void)ctx;
	(void)name;
	(void)password;
	(void)ret_ud;
	return KILN_EAUTH;
}

static const struct ws_conn_ops test_ops = {.authenticate = t_auth};

int main(void)
{
	uv_loop_t loop;
	struct config cfg = {0};
	pthread_t th;

	alarm(60);
	snprintf(basedir, sizeof(basedir), "/tmp/kiln-test-api-workers-stop-XXXXXX");
	if (!mkdtemp(basedir))
		return 1;
	uv_loop_init(&loop);
	cfg.http.host = "127.0.0.1";
	cfg.workers.host = "127.0.0.1";
	master.loop = &loop;
	master.basedir = basedir;
	master.name = "test:/workers-stop";
	master.cfg = &cfg;
	if (db_open(&loop, "sqlite:state.sqlite", basedir, &master.db) < 0) {
		printf("Bail out! db_open: %s\n", db_open_errmsg());
		return 1;
	}
	db_master_register(master.db, master.name, &master.masterid);
	if (db_worker_ensure(master.db, "w1", &w1) < 0 || db_flush(master.db) < 0) {
		printf("Bail out! worker: %s\n", db_errmsg(master.db));
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
