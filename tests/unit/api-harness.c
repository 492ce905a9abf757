/*
 * The shared harness of the REST API unit tests: see api-harness.h.
 */
#include "api-harness.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/http.h"
#include "master/master.h"
#include "master/wsconn.h"

struct master api_master;
char api_basedir[256];
struct http_server *api_srv;
int api_http_port, api_workers_port;

static const struct api_harness *harness;
static void (*mark_failed)(void);
static uv_async_t done_async, run_async, stop_async;
static pthread_mutex_t run_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t run_cv = PTHREAD_COND_INITIALIZER;
static void (*run_fn)(void);
static bool run_done;

static void fail(const char *fmt, ...)
{
	va_list ap;
	printf("# api-harness: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (mark_failed)
		mark_failed();
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	return buf_add(ud, p, size * n) < 0 ? 0 : size * n;
}

json_t *api_call(const char *path, const char *body, int flags, long *status, char **text)
{
	char *url = xasprintf("http://127.0.0.1:%d/api/v2/%s", api_http_port, path);
	struct buf b;
	buf_init(&b, 16u << 20);
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (flags & API_ACCEPT_JSON)
		h = curl_slist_append(h, "Accept: application/json");
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		h = curl_slist_append(h, "Expect:");
		if (flags & API_CROSS_SITE) {
			h = curl_slist_append(h, "Origin: http://evil.example");
			h = curl_slist_append(h, "Sec-Fetch-Site: cross-site");
		}
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	if (h)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	*status = 0;
	if (curl_easy_perform(c) != CURLE_OK)
		fail("%s: no answer", path);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(url);
	json_t *j = json_loadb(b.ptr ? b.ptr : "", b.len, 0, NULL);
	if (!j && !(flags & API_MAY_FAIL))
		fail("%s: not JSON: %.200s", path, b.ptr ? b.ptr : "");
	if (text)
		*text = xstrndup(b.ptr ? b.ptr : "", b.len);
	buf_release(&b);
	return j;
}

json_t *api_req(const char *path, const char *body, long *status)
{
	return api_call(path, body, 0, status, NULL);
}

json_t *api_get_ok(const char *path)
{
	return api_get_ok_as(path, 0);
}

json_t *api_get_ok_as(const char *path, int flags)
{
	long st = 0;
	json_t *j = api_call(path, NULL, flags, &st, NULL);
	if (st != 200)
		fail("%s: status %ld", path, st);
	return j;
}

int64_t api_rpc_code(json_t *d)
{
	return json_integer_value(json_object_get(json_object_get(d, "error"), "code"));
}

const char *api_rpc_msg(json_t *d)
{
	const char *m = json_string_value(json_object_get(json_object_get(d, "error"), "message"));
	return m ? m : "";
}

int64_t api_add_build(struct db *db, int64_t masterid, int64_t builder, const int64_t *changes,
		      size_t nchanges, const char *branch, const char *scheduler, double t,
		      int results)
{
	struct db_sourcestamp ss[] = {{branch, "abc", "https://x/app", "", ""}};
	struct db_buildset_new bs = {.reason = "test",
				     .scheduler = scheduler,
				     .sourcestamps = ss,
				     .nsourcestamps = 1,
				     .submitted_at = t};
	int64_t bsid, brid, buildid, number;
	if (db_buildset_add(db, &bs, &builder, 1, &bsid, &brid) < 0)
		fail("buildset: %s", db_errmsg(db));
	if (nchanges && db_buildset_add_changes(db, bsid, changes, nchanges) < 0)
		fail("changes: %s", db_errmsg(db));
	db_request_claim(db, brid, masterid, t);
	db_build_add(db, builder, brid, 0, masterid, t, &buildid, &number);
	if (results >= 0) {
		db_build_finish(db, buildid, results, "done", t + 1);
		db_request_complete(db, brid, results, t + 1, NULL);
	}
	return buildid;
}

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

void api_on_loop(void (*fn)(void))
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

static void on_stop(uv_async_t *a)
{
	(void)a;
	http_server_stop(api_srv);
}

void api_stop_server(void)
{
	uv_async_send(&stop_async);
}

static void on_done(uv_async_t *a)
{
	if (harness->teardown)
		harness->teardown(&api_master);
	uv_close((uv_handle_t *)a, NULL);
	uv_close((uv_handle_t *)&run_async, NULL);
	uv_close((uv_handle_t *)&stop_async, NULL);
	http_server_stop(api_srv); /* no-op if already stopping */
	db_close(api_master.db);
	api_master.db = NULL;
}

static void *client_main(void *arg)
{
	(void)arg;
	harness->client();
	uv_async_send(&done_async);
	return NULL;
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

int api_harness_main(const struct api_harness *h, void (*failed)(void), int (*done)(void))
{
	uv_loop_t loop;
	struct config own_cfg = {0};
	struct config *cfg = h->cfg ? h->cfg : &own_cfg;
	pthread_t th;
	char name[128];

	harness = h;
	mark_failed = failed;
	alarm(h->timeout_s ? h->timeout_s : 60);
	snprintf(api_basedir, sizeof(api_basedir), "/tmp/kiln-test-api-%s-XXXXXX", h->name);
	if (!mkdtemp(api_basedir))
		return 1;
	snprintf(name, sizeof(name), "test:/%s", h->name);
	uv_loop_init(&loop);
	cfg->http.host = "127.0.0.1";
	cfg->workers.host = "127.0.0.1";
	api_master.loop = &loop;
	api_master.basedir = api_basedir;
	api_master.name = name;
	api_master.cfg = cfg;
	if (db_open(&loop, "sqlite:state.sqlite", api_basedir, &api_master.db) < 0) {
		printf("Bail out! db_open: %s\n", db_open_errmsg());
		return 1;
	}
	db_master_register(api_master.db, api_master.name, &api_master.masterid);
	if (h->fill_db)
		h->fill_db(api_master.db, api_master.masterid);
	if (h->setup && h->setup(&api_master) < 0)
		return 1;
	if (http_server_start(&api_master, h->ops ? h->ops : &test_ops, &api_srv) < 0) {
		printf("Bail out! http_server_start failed\n");
		return 1;
	}
	api_http_port = http_server_http_port(api_srv);
	api_workers_port = http_server_workers_port(api_srv);
	uv_async_init(&loop, &done_async, on_done);
	uv_async_init(&loop, &run_async, on_run);
	uv_async_init(&loop, &stop_async, on_stop);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_create(&th, NULL, client_main, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	pthread_join(th, NULL);
	curl_global_cleanup();
	int lr = uv_loop_close(&loop);
	if (lr != 0)
		printf("# uv_loop_close: %s\n", uv_strerror(lr));
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", api_basedir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", api_basedir);
	return done() || lr != 0;
}
