/*
 * Unit tests for the master's network front (src/master/http.c, api*.c):
 * a real http_server on a real libuv loop at 127.0.0.1 port 0, a real
 * SQLite database filled through db.h, and a client thread speaking HTTP
 * with libcurl and WebSocket over raw sockets.  The loop runs in the main
 * thread; every check runs in the client thread.
 */
#include "tap.h"
#include "wait.h" /* slice "faults": TEST_GUARD_MS */
#include "api-harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/http.h"
#include "master/master.h"
#include "master/wsconn.h"

#define BIG_LINES 50000
#define BIG_WIDTH 100

static int64_t big_logid, small_logid, text_logid;

/* ---- worker ops used by the worker listener ---------------------------------------- */

static atomic_int ops_opened, ops_closed, ops_messages;
static int ops_token;

static int t_authenticate(void *ctx, const char *name, const char *password, void **ret_ud)
{
	if (!name || strcmp(name, "w0") || strcmp(password, "secret"))
		return KILN_EAUTH;
	*ret_ud = &ops_token;
	return 0;
}

static void t_opened(void *ud, struct ws_conn *c)
{
	ops_opened++;
}

static void t_message(void *ud, struct ws_conn *c, const void *data, size_t len)
{
	ops_messages++;
	if (len == 8 && !memcmp(data, "close-me", 8)) {
		ws_conn_send(c, "bye", 3);
		ws_conn_close(c, 4000, "asked");
		return;
	}
	ws_conn_send(c, data, len); /* echo */
}

static void t_closed(void *ud, struct ws_conn *c)
{
	ops_closed++;
}

static const struct ws_conn_ops test_ops = {NULL, t_authenticate, t_opened, t_message, t_closed};

/* ---- HTTP client ---------------------------------------------------------------------- */

struct resp {
	long status;
	struct buf body;
	char ctype[128];
	char disposition[128];
	bool chunked;
	long connects;
	char retry_after[32];
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	return buf_add(&r->body, p, size * n) < 0 ? 0 : size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t len = size * n;
	if (len > 20 && !strncasecmp(p, "content-disposition: ", 21))
		snprintf(r->disposition, sizeof(r->disposition), "%.*s", (int)(len - 23), p + 21);
	if (len > 19 && !strncasecmp(p, "transfer-encoding: chunked", 26))
		r->chunked = true;
	if (len > 15 && !strncasecmp(p, "retry-after: ", 13))
		snprintf(r->retry_after, sizeof(r->retry_after), "%.*s", (int)(len - 15), p + 13);
	return len;
}

static CURL *shared_easy;

/* One request; method "GET" or "POST" (body + content type). */
static void req(struct resp *r, const char *method, const char *path, const char *ctype,
		const char *body, size_t body_len, const char *accept, int port)
{
	char url[KILN_MAX_HTTP_URI * 2];
	CURL *c = shared_easy;
	struct curl_slist *h = NULL;

	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 64u << 20);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port ? port : api_http_port, path);
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
		h = curl_slist_append(h, "Expect:");
		char ct[200];
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "");
		h = curl_slist_append(h, ct);
	}
	if (accept) {
		char a[200];
		snprintf(a, sizeof(a), "Accept: %s", accept);
		h = curl_slist_append(h, a);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	CURLcode cr = curl_easy_perform(c);
	if (cr != CURLE_OK)
		TAP_FAIL("%s %s: %s", method, path, curl_easy_strerror(cr));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	char *ct = NULL;
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->connects);
	curl_slist_free_all(h);
}

static void get(struct resp *r, const char *path)
{
	req(r, "GET", path, NULL, NULL, 0, NULL, 0);
}

static void post(struct resp *r, const char *path, const char *ctype, const char *body)
{
	req(r, "POST", path, ctype, body, strlen(body), NULL, 0);
}

static json_t *body_json(struct resp *r)
{
	json_error_t e;
	json_t *j = json_loadb(r->body.ptr, r->body.len, 0, &e);
	if (!j)
		TAP_FAIL("not JSON (%s): %.200s", e.text, r->body.ptr);
	return j;
}

#define PLAIN "text/plain; charset=utf-8"

/* status, content type and the exact body */
#define CHECK_RESP(path, st, ct, exact)                                                            \
	do {                                                                                       \
		struct resp r_;                                                                    \
		get(&r_, path);                                                                    \
		CHECK_INT(r_.status, st);                                                          \
		CHECK_STR(r_.ctype, ct);                                                           \
		CHECK_STR(r_.body.ptr, exact);                                                     \
		buf_release(&r_.body);                                                             \
	} while (0)

/* ---- tests ------------------------------------------------------------------------------ */

TEST(ports_file)
{
	char path[300], text[200], want[200];
	snprintf(path, sizeof(path), "%s/ports", api_basedir);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
	text[n] = '\0';
	if (f)
		fclose(f);
	snprintf(want, sizeof(want), "http 127.0.0.1:%d\nworkers 127.0.0.1:%d\n", api_http_port,
		 api_workers_port);
	CHECK_STR(text, want);
}

TEST(root_and_invalid_paths)
{
	CHECK_RESP("/api/v2", 200, PLAIN,
		   "{\n  \"meta\": {\n    \"total\": 12\n  },\n  \"rootlinks\": [\n"
		   "    {\n      \"name\": \"builders\"\n    },\n"
		   "    {\n      \"name\": \"builds\"\n    },\n"
		   "    {\n      \"name\": \"buildrequests\"\n    },\n"
		   "    {\n      \"name\": \"workers\"\n    },\n"
		   "    {\n      \"name\": \"logchunks\"\n    },\n"
		   "    {\n      \"name\": \"buildsets\"\n    },\n"
		   "    {\n      \"name\": \"changes\"\n    },\n"
		   "    {\n      \"name\": \"changesources\"\n    },\n"
		   "    {\n      \"name\": \"masters\"\n    },\n"
		   "    {\n      \"name\": \"sourcestamps\"\n    },\n"
		   "    {\n      \"name\": \"schedulers\"\n    },\n"
		   "    {\n      \"name\": \"forceschedulers\"\n    }\n  ]\n}");
	CHECK_RESP("/api/v2/", 404, PLAIN, "{\"error\": \"Invalid path: \"}");
	CHECK_RESP("/api/v2/nosuch", 404, PLAIN, "{\"error\": \"Invalid path: nosuch\"}");
	/* /users is Kiln's since slice "users" (Buildbot 3.7 answers this 404 there) */
	CHECK_RESP("/api/v2/users/1/x", 404, PLAIN, "{\"error\": \"Invalid path: users/1/x\"}");
	CHECK_RESP("/api/v2/builds/abc", 404, PLAIN, "{\"error\": \"Invalid path: builds/abc\"}");
	CHECK_RESP("/api/v2/logs/1/raw_inline", 404, PLAIN,
		   "{\"error\": \"Invalid path: logs/1/raw_inline\"}");
	CHECK_RESP("/nowhere", 404, PLAIN, "{\"error\": \"not found\"}");
}

TEST(builders)
{
	struct resp r;
	get(&r, "/api/v2/builders");
	CHECK_INT(r.status, 200);
	json_t *j = body_json(&r);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "meta"), "total")), 2);
	json_t *b = json_array_get(json_object_get(j, "builders"), 0);
	CHECK_STR(json_string_value(json_object_get(b, "name")), "b0");
	CHECK(json_is_array(json_object_get(b, "masterids")));
	CHECK(json_is_array(json_object_get(b, "tags")));
	CHECK(json_object_get(b, "description") != NULL);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builders/b0");
	CHECK_INT(r.status, 200);
	j = body_json(&r);
	CHECK_INT(json_object_size(json_object_get(j, "meta")), 0);
	CHECK_INT(json_array_size(json_object_get(j, "builders")), 1);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builders?name=b1");
	j = body_json(&r);
	CHECK_STR(json_string_value(json_object_get(
			  json_array_get(json_object_get(j, "builders"), 0), "name")),
		  "b1");
	json_decref(j);
	buf_release(&r.body);

	CHECK_RESP(
		"/api/v2/builders/nosuch", 404, PLAIN,
		"{\"error\": \"not found while getting from endpoint for /builders/n:builderid,"
		"/builders/i:buildername,/masters/n:masterid/builders/n:builderid with arguments "
		"ResultSpec(**{'filters': [], 'fields': None, 'properties': [], 'order': None, "
		"'limit': None, 'offset': None}) and {'buildername': 'nosuch'}\"}");

	get(&r, "/api/v2/builders/b0/builds");
	j = body_json(&r);
	CHECK_INT(json_array_size(json_object_get(j, "builds")), 2);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builders/1/builds/2");
	CHECK_INT(r.status, 200);
	j = body_json(&r);
	CHECK_INT(json_integer_value(json_object_get(
			  json_array_get(json_object_get(j, "builds"), 0), "number")),
		  2);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builders/1/workers");
	j = body_json(&r);
	CHECK_INT(json_array_size(json_object_get(j, "workers")), 1);
	json_decref(j);
	buf_release(&r.body);
	get(&r, "/api/v2/builders/2/workers");
	j = body_json(&r);
	CHECK_INT(json_array_size(json_object_get(j, "workers")), 0);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builders/1/buildrequests");
	j = body_json(&r);
	CHECK_INT(json_array_size(json_object_get(j, "buildrequests")), 2);
	json_decref(j);
	buf_release(&r.body);
}

TEST(builds_and_queries)
{
	struct resp r;
	json_t *j;

	get(&r, "/api/v2/builds/1");
	CHECK_INT(r.status, 200);
	CHECK_STR(r.ctype, PLAIN);
	j = body_json(&r);
	json_t *b = json_array_get(json_object_get(j, "builds"), 0);
	static const char *const keys[] = {"builderid",  "buildid",      "buildrequestid",
					   "complete",   "complete_at",  "masterid",
					   "number",     "properties",   "results",
					   "started_at", "state_string", "workerid"};
	CHECK_INT(json_object_size(b), ARRAY_SIZE(keys));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!json_object_get(b, keys[i]))
			TAP_FAIL("build lacks '%s'", keys[i]);
	CHECK_INT(json_object_size(json_object_get(b, "properties")), 0);
	json_decref(j);
	buf_release(&r.body);

	/* Accept: application/json gives compact JSON */
	req(&r, "GET", "/api/v2/builds/1?field=buildid&field=results", NULL, NULL, 0,
	    "application/json", 0);
	CHECK_STR(r.ctype, "application/json; charset=utf-8");
	CHECK_STR(r.body.ptr, "{\"builds\":[{\"buildid\":1,\"results\":0}],\"meta\":{}}");
	buf_release(&r.body);

	get(&r, "/api/v2/builds?limit=1&order=-buildid");
	j = body_json(&r);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "meta"), "total")), 1);
	CHECK_INT(json_integer_value(json_object_get(
			  json_array_get(json_object_get(j, "builds"), 0), "buildid")),
		  2);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builds?results__in=2&results__in=6");
	j = body_json(&r);
	CHECK_INT(json_array_size(json_object_get(j, "builds")), 1);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builds?results=0&results=2");
	j = body_json(&r);
	CHECK_INT(json_array_size(json_object_get(j, "builds")), 2);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builds?complete=true&state_string__contains=fail");
	j = body_json(&r);
	CHECK_INT(json_array_size(json_object_get(j, "builds")), 1);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builds?results__bogus=1");
	CHECK_INT(r.status, 200);
	j = body_json(&r);
	CHECK_INT(json_array_size(json_object_get(j, "builds")), 2);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builds?property=owners&offset=1");
	j = body_json(&r);
	b = json_array_get(json_object_get(j, "builds"), 0);
	CHECK_INT(json_integer_value(json_object_get(b, "buildid")), 2);
	CHECK_INT(json_object_size(json_object_get(b, "properties")), 1);
	CHECK(json_object_get(json_object_get(b, "properties"), "owners") != NULL);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builds/1/properties");
	j = body_json(&r);
	json_t *props = json_array_get(json_object_get(j, "properties"), 0);
	CHECK_STR(json_string_value(json_array_get(json_object_get(props, "owners"), 1)), "Build");
	CHECK_INT(json_object_size(json_object_get(j, "meta")), 0);
	json_decref(j);
	buf_release(&r.body);

	CHECK_RESP("/api/v2/builds?limit=abc", 400, PLAIN, "{\"error\": \"invalid limit\"}");
	CHECK_RESP("/api/v2/builds?offset=abc", 400, PLAIN, "{\"error\": \"invalid offset\"}");
	CHECK_RESP("/api/v2/builds?order=nosuch", 400, PLAIN,
		   "{\"error\": \"no such field 'nosuch'\"}");
	CHECK_RESP("/api/v2/builds?field=nosuch", 400, PLAIN,
		   "{\"error\": \"no such field 'nosuch'\"}");
	CHECK_RESP("/api/v2/builds?nosuchfield=1", 400, PLAIN,
		   "{\"error\": \"unrecognized query parameter 'nosuchfield'\"}");
	CHECK_RESP("/api/v2/builds?results=abc", 400, PLAIN,
		   "{\"error\": \"invalid filter value for results\"}");
	CHECK_RESP("/api/v2/builds?results__in=4,6", 400, PLAIN,
		   "{\"error\": \"invalid filter value for results__in\"}");
	CHECK_RESP("/api/v2/builds/99999", 404, PLAIN,
		   "{\"error\": \"not found while getting from endpoint for /builds/n:buildid,"
		   "/builders/n:builderid/builds/n:number,/builders/i:buildername/builds/n:number "
		   "with arguments ResultSpec(**{'filters': [], 'fields': None, 'properties': [], "
		   "'order': None, 'limit': None, 'offset': None}) and {'buildid': 99999}\"}");
}

TEST(steps_and_logs)
{
	struct resp r;
	json_t *j;

	get(&r, "/api/v2/builds/1/steps");
	j = body_json(&r);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "meta"), "total")), 3);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builds/1/steps/shell");
	j = body_json(&r);
	json_t *s = json_array_get(json_object_get(j, "steps"), 0);
	CHECK_INT(json_integer_value(json_object_get(s, "number")), 1);
	int64_t stepid = json_integer_value(json_object_get(s, "stepid"));
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/api/v2/builds/1/steps/1/logs/stdio");
	j = body_json(&r);
	CHECK_INT(json_integer_value(
			  json_object_get(json_array_get(json_object_get(j, "logs"), 0), "logid")),
		  small_logid);
	json_decref(j);
	buf_release(&r.body);

	char path[200];
	snprintf(path, sizeof(path), "/api/v2/steps/%lld/logs", (long long)stepid);
	get(&r, path);
	j = body_json(&r);
	CHECK_INT(json_array_size(json_object_get(j, "logs")), 2);
	json_decref(j);
	buf_release(&r.body);

	CHECK_RESP(
		"/api/v2/builds/1/steps/99", 404, PLAIN,
		"{\"error\": \"not found while getting from endpoint for /steps/n:stepid,"
		"/builds/n:buildid/steps/i:step_name,/builds/n:buildid/steps/n:step_number,"
		"/builders/n:builderid/builds/n:build_number/steps/i:step_name,"
		"/builders/n:builderid/builds/n:build_number/steps/n:step_number,"
		"/builders/i:buildername/builds/n:build_number/steps/i:step_name,"
		"/builders/i:buildername/builds/n:build_number/steps/n:step_number with arguments "
		"ResultSpec(**{'filters': [], 'fields': None, 'properties': [], 'order': None, "
		"'limit': None, 'offset': None}) and {'buildid': 1, 'step_number': 99}\"}");

	snprintf(path, sizeof(path), "/api/v2/logs/%lld/contents?offset=1&limit=2",
		 (long long)small_logid);
	get(&r, path);
	char want[300];
	snprintf(want, sizeof(want),
		 "{\n  \"logchunks\": [\n    {\n      \"content\": \"oout\\neerr\\n\",\n"
		 "      \"firstline\": 1,\n      \"logid\": %lld\n    }\n  ],\n  \"meta\": {}\n}",
		 (long long)small_logid);
	CHECK_STR(r.body.ptr, want);
	buf_release(&r.body);

	snprintf(path, sizeof(path), "/api/v2/logs/%lld/contents?offset=100",
		 (long long)small_logid);
	get(&r, path);
	j = body_json(&r);
	json_t *c = json_array_get(json_object_get(j, "logchunks"), 0);
	CHECK_STR(json_string_value(json_object_get(c, "content")), "");
	CHECK_INT(json_integer_value(json_object_get(c, "firstline")), 100);
	json_decref(j);
	buf_release(&r.body);

	snprintf(path, sizeof(path), "/api/v2/logs/%lld/raw", (long long)small_logid);
	get(&r, path);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.ctype, PLAIN);
	CHECK_STR(r.disposition, "attachment; filename=stdio");
	CHECK_STR(r.body.ptr, " echo hi\nout\nerr\nprogram finished with exit code 0");
	buf_release(&r.body);

	snprintf(path, sizeof(path), "/api/v2/logs/%lld/raw", (long long)text_logid);
	get(&r, path);
	CHECK_STR(r.disposition, "attachment; filename=err_text");
	CHECK_STR(r.body.ptr, "first\nsecond \xc3\xa9");
	buf_release(&r.body);

	CHECK_RESP(
		"/api/v2/logs/99999/contents", 404, PLAIN,
		"{\"error\": \"not found while getting from endpoint for /logchunks,"
		"/logs/n:logid/contents,/steps/n:stepid/logs/i:log_slug/contents,"
		"/builds/n:buildid/steps/i:step_name/logs/i:log_slug/contents,"
		"/builds/n:buildid/steps/n:step_number/logs/i:log_slug/contents,"
		"/builders/n:builderid/builds/n:build_number/steps/i:step_name/logs/i:log_slug/"
		"contents,/builders/n:builderid/builds/n:build_number/steps/n:step_number/logs/"
		"i:log_slug/contents with arguments ResultSpec(**{'filters': [], 'fields': None, "
		"'properties': [], 'order': None, 'limit': None, 'offset': None}) and "
		"{'logid': 99999}\"}");
}

TEST(raw_log_streams_megabytes)
{
	struct resp r;
	char path[100];
	snprintf(path, sizeof(path), "/api/v2/logs/%lld/raw", (long long)big_logid);
	get(&r, path);
	CHECK_INT(r.status, 200);
	CHECK(r.chunked);
	size_t want = (size_t)BIG_LINES * BIG_WIDTH + BIG_LINES - 1;
	CHECK_INT(r.body.len, want);
	bool ok = r.body.len == want;
	for (size_t i = 0; ok && i < want; i++)
		ok = r.body.ptr[i] == ((i % (BIG_WIDTH + 1)) == BIG_WIDTH ? '\n' : 'x');
	CHECK(ok);
	buf_release(&r.body);
	/* the connection survives a streamed reply */
	get(&r, "/api/v2/masters/1");
	CHECK_INT(r.status, 200);
	CHECK_INT(r.connects, 0);
	buf_release(&r.body);
}

/* The big log's /contents, as text: every line "o" + BIG_WIDTH x's. */
static bool big_contents_ok(struct resp *r)
{
	json_error_t e;
	json_t *j = json_loadb(r->body.ptr, r->body.len, 0, &e);
	json_t *c = json_array_get(json_object_get(j, "logchunks"), 0);
	const char *text = json_string_value(json_object_get(c, "content"));
	size_t len = json_string_length(json_object_get(c, "content"));
	bool ok = text && len == (size_t)BIG_LINES * (BIG_WIDTH + 2) &&
		  json_integer_value(json_object_get(c, "firstline")) == 0 &&
		  json_integer_value(json_object_get(c, "logid")) == big_logid;
	for (size_t i = 0; ok && i < len; i++) {
		size_t col = i % (BIG_WIDTH + 2);
		ok = text[i] == (col == 0 ? 'o' : col == BIG_WIDTH + 1 ? '\n' : 'x');
	}
	json_decref(j);
	return ok;
}

/* A 503 from the answer-memory cap: Retry-After and {"error": ...}. */
static bool busy_ok(struct resp *r)
{
	json_error_t e;
	json_t *j = json_loadb(r->body.ptr, r->body.len, 0, &e);
	bool ok = r->status == 503 && r->retry_after[0] &&
		  json_is_string(json_object_get(j, "error"));
	json_decref(j);
	return ok;
}

TEST(log_contents_stream_under_cap)
{
	struct resp r;
	char path[100];
	snprintf(path, sizeof(path), "/api/v2/logs/%lld/contents", (long long)big_logid);

	/* alone: a 5 MB answer is streamed, never held whole */
	http_server_set_reply_mem_max(api_srv, KILN_MAX_HTTP_REPLY_MEM);
	get(&r, path);
	CHECK_INT(r.status, 200);
	CHECK(r.chunked);
	CHECK(big_contents_ok(&r));
	buf_release(&r.body);
	size_t peak = http_server_reply_mem_peak(api_srv);
	if (peak > (1u << 20))
		TAP_FAIL("one contents reply held %zu bytes", peak);
	/* the same bytes with Accept: application/json, compact */
	req(&r, "GET", path, NULL, NULL, 0, "application/json", 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.ctype, "application/json; charset=utf-8");
	CHECK(r.body.len > 20 && !memcmp(r.body.ptr, "{\"logchunks\":[{\"content\":\"o", 26));
	CHECK(big_contents_ok(&r));
	buf_release(&r.body);

	/* many at once under a small cap: each is whole or a clear 503 */
	enum { N = 10 };
	size_t cap = 1u << 20;
	http_server_set_reply_mem_max(api_srv, cap);
	CURLM *multi = curl_multi_init();
	CURL *easy[N];
	static struct resp rs[N];
	char url[200];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", api_http_port, path);
	for (int i = 0; i < N; i++) {
		memset(&rs[i], 0, sizeof(rs[i]));
		buf_init(&rs[i].body, 64u << 20);
		easy[i] = curl_easy_init();
		curl_easy_setopt(easy[i], CURLOPT_URL, url);
		curl_easy_setopt(easy[i], CURLOPT_TIMEOUT, 60L);
		curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &rs[i]);
		curl_easy_setopt(easy[i], CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(easy[i], CURLOPT_HEADERDATA, &rs[i]);
		curl_multi_add_handle(multi, easy[i]);
	}
	int running = N;
	while (running) {
		if (curl_multi_perform(multi, &running) != CURLM_OK)
			break;
		if (running)
			curl_multi_poll(multi, NULL, 0, 1000, NULL);
	}
	int whole = 0, busy = 0;
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(multi, &left)))
		if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK)
			TAP_FAIL("concurrent contents: %s", curl_easy_strerror(msg->data.result));
	for (int i = 0; i < N; i++) {
		curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &rs[i].status);
		if (rs[i].status == 200 && big_contents_ok(&rs[i]))
			whole++;
		else if (busy_ok(&rs[i]))
			busy++;
		else
			TAP_FAIL("request %d: status %ld, %zu bytes", i, rs[i].status,
				 rs[i].body.len);
		curl_multi_remove_handle(multi, easy[i]);
		curl_easy_cleanup(easy[i]);
		buf_release(&rs[i].body);
	}
	curl_multi_cleanup(multi);
	CHECK_INT(whole + busy, N);
	CHECK(whole >= 1);
	printf("# %d whole, %d busy; peak %zu of %zu bytes\n", whole, busy,
	       http_server_reply_mem_peak(api_srv), cap);
	peak = http_server_reply_mem_peak(api_srv);
	if (peak > cap)
		TAP_FAIL("answers held %zu bytes, cap %zu", peak, cap);

	/* a cap too small for any answer: 503 for a fixed body and a stream alike */
	http_server_set_reply_mem_max(api_srv, 100);
	get(&r, path);
	CHECK(busy_ok(&r));
	buf_release(&r.body);
	get(&r, "/api/v2/masters/1");
	CHECK(busy_ok(&r));
	buf_release(&r.body);
	http_server_set_reply_mem_max(api_srv, KILN_MAX_HTTP_REPLY_MEM);
	get(&r, "/api/v2/masters/1");
	CHECK_INT(r.status, 200);
	buf_release(&r.body);
}

TEST(other_resources)
{
	struct resp r;
	json_t *j;
	static const char *const paths[][2] = {
		{"/api/v2/workers", "workers"},
		{"/api/v2/workers/w0", "workers"},
		{"/api/v2/workers/1/builds", "builds"},
		{"/api/v2/buildrequests", "buildrequests"},
		{"/api/v2/buildrequests/1", "buildrequests"},
		{"/api/v2/buildsets", "buildsets"},
		{"/api/v2/buildsets/1", "buildsets"},
		{"/api/v2/buildsets/1/properties", "properties"},
		{"/api/v2/masters", "masters"},
		{"/api/v2/sourcestamps", "sourcestamps"},
		{"/api/v2/forceschedulers", "forceschedulers"},
		{"/api/v2/forceschedulers/force", "forceschedulers"},
		{"/api/v2/steps/1", "steps"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		get(&r, paths[i][0]);
		if (r.status != 200)
			TAP_FAIL("%s: %ld %s", paths[i][0], r.status, r.body.ptr);
		j = body_json(&r);
		if (json_array_size(json_object_get(j, paths[i][1])) == 0)
			TAP_FAIL("%s: no %s", paths[i][0], paths[i][1]);
		json_decref(j);
		buf_release(&r.body);
	}
	get(&r, "/api/v2/forceschedulers/force");
	j = body_json(&r);
	json_t *fs = json_array_get(json_object_get(j, "forceschedulers"), 0);
	CHECK_INT(json_array_size(json_object_get(fs, "builder_names")), 2);
	json_decref(j);
	buf_release(&r.body);

	get(&r, "/");
	CHECK_INT(r.status, 200);
	CHECK_STR(r.ctype, "text/html; charset=utf-8");
	CHECK(strstr(r.body.ptr, "<title>Test &amp; Co</title>") != NULL);
	buf_release(&r.body);
}

TEST(jsonrpc_envelope)
{
	static const struct {
		const char *path, *ctype, *body;
		long status;
		const char *want;
	} cases[] = {
		{"/api/v2/forceschedulers/force", "text/plain",
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"force\", \"params\": {}}", 400,
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		 "content-type (use application/json)\"}}"},
		{"/api/v2/forceschedulers/force", "application/json",
		 "{\"id\": 1, \"method\": \"force\", \"params\": {\"builderid\": \"7\"}}", 400,
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"missing key "
		 "'jsonrpc'\"}}"},
		{"/api/v2/forceschedulers/force", "application/json",
		 "{\"jsonrpc\": \"2.0\", \"method\": \"force\", \"params\": {}}", 400,
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"missing key "
		 "'id'\"}}"},
		{"/api/v2/forceschedulers/force", "application/json",
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"params\": {}}", 400,
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"missing key "
		 "'method'\"}}"},
		{"/api/v2/forceschedulers/force", "application/json",
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"force\"}", 400,
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"missing key "
		 "'params'\"}}"},
		{"/api/v2/forceschedulers/force", "application/json",
		 "{\"jsonrpc\": \"1.0\", \"id\": 1, \"method\": \"force\", \"params\": {}}", 400,
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"only JSONRPC "
		 "2.0 is supported\"}}"},
		{"/api/v2/forceschedulers/force", "application/json",
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"force\", \"params\": [\"7\"]}",
		 400,
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"'params' "
		 "must "
		 "be an object\"}}"},
		{"/api/v2/nosuch", "application/json",
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"force\", \"params\": {}}", 404,
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": -32600, \"message\": "
		 "\"Invalid path: nosuch\"}}"},
		{"/api/v2/builds", "application/json",
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"stop\", \"params\": {}}", 501,
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": -32601, \"message\": "
		 "\"action: stop is not supported\"}}"},
		{"/api/v2/workers/1", "application/json",
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"nosuch\", \"params\": {}}", 501,
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": -32601, \"message\": "
		 "\"action: nosuch is not supported\"}}"},
		{"/api/v2/forceschedulers/nosuch", "application/json",
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"force\", \"params\": {}}", 500,
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": -32603, \"message\": "
		 "\"AttributeError(\\\"'NoneType' object has no attribute 'force'\\\")\"}}"},
		{"/api/v2/forceschedulers/force", "application/json",
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"force\", \"params\": "
		 "{\"builderNames\": [\"nosuch\"]}}",
		 500,
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": -32603, \"message\": "
		 "\"KeyError('builderNames not specified or not supported')\"}}"},
		{"/api/v2/forceschedulers/force", "application/json",
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"force\", \"params\": "
		 "{\"builderid\": \"999\"}}",
		 500,
		 "{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": -32603, \"message\": "
		 "\"TypeError(\\\"'NoneType' object is not subscriptable\\\")\"}}"},
		{"/api/v2/forceschedulers/force", "application/json",
		 "{\"jsonrpc\": \"2.0\", \"id\": \"x\", \"method\": \"nosuch\", \"params\": {}}",
		 200, "{\"id\":\"x\",\"jsonrpc\":\"2.0\",\"result\":null}"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct resp r;
		post(&r, cases[i].path, cases[i].ctype, cases[i].body);
		if (r.status != cases[i].status)
			TAP_FAIL("case %zu: status %ld, want %ld", i, r.status, cases[i].status);
		CHECK_STR(r.ctype, "application/json");
		CHECK_STR(r.body.ptr, cases[i].want);
		buf_release(&r.body);
	}

	struct resp r;
	post(&r, "/api/v2/forceschedulers/force", "application/json",
	     "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"force\",");
	CHECK_INT(r.status, 400);
	json_t *j = body_json(&r);
	json_t *e = json_object_get(j, "error");
	CHECK_INT(json_integer_value(json_object_get(e, "code")), -32700);
	CHECK(!strncmp(json_string_value(json_object_get(e, "message")), "JSON parse error: ", 18));
	json_decref(j);
	buf_release(&r.body);
}

TEST(caps_and_keepalive)
{
	struct resp r;
	size_t big = KILN_MAX_HTTP_BODY + 10;
	char *body = xmalloc(big + 1);
	memset(body, ' ', big);
	body[big] = '\0';
	req(&r, "POST", "/api/v2/builds/1", "application/json", body, big, NULL, 0);
	CHECK_INT(r.status, 413);
	buf_release(&r.body);
	free(body);

	char *path = xmalloc(KILN_MAX_HTTP_URI + 100);
	int n = snprintf(path, KILN_MAX_HTTP_URI + 100, "/api/v2/builds?");
	while (n < KILN_MAX_HTTP_URI + 50)
		path[n++] = 'a';
	path[n] = '\0';
	get(&r, path);
	CHECK_INT(r.status, 414);
	buf_release(&r.body);
	free(path);

	/* many query arguments */
	struct buf q;
	buf_init(&q, 1u << 16);
	CHECK_INT(buf_adds(&q, "/api/v2/builds?"), 0);
	for (int i = 0; i < KILN_MAX_HTTP_QUERY_ARGS + 1; i++)
		CHECK_INT(buf_addf(&q, "field=buildid&"), 0);
	get(&r, q.ptr);
	CHECK_INT(r.status, 400);
	buf_release(&r.body);
	buf_release(&q);

	/* keep-alive: a fresh connection, then reused for the next requests */
	curl_easy_cleanup(shared_easy);
	shared_easy = curl_easy_init();
	get(&r, "/api/v2/masters");
	CHECK_INT(r.connects, 1);
	buf_release(&r.body);
	get(&r, "/api/v2/builders");
	CHECK_INT(r.connects, 0);
	buf_release(&r.body);
	post(&r, "/api/v2/nosuch", "application/json", "{");
	CHECK_INT(r.status, 400);
	buf_release(&r.body);
	get(&r, "/api/v2/builders");
	CHECK_INT(r.connects, 0);
	buf_release(&r.body);

	/* the worker port answers plain HTTP with 404 */
	req(&r, "GET", "/", NULL, NULL, 0, NULL, api_workers_port);
	CHECK_INT(r.status, 404);
	buf_release(&r.body);
}

/* Clients that leave before their answer (issue 14: a listing is answered
 * from a database callback on a later loop turn; a lookup and a streamed
 * page go through two and more): the request's deferral finds no client
 * and drops the answer, nothing else is touched, and the server goes on
 * answering others.  Closed plainly and with a reset, at every moment the
 * scheduler gives us. */
TEST(clients_gone_mid_answer)
{
	/* the big log's streams read many pages: some are in flight when the
	 * client goes */
	char contents[64], raw[64], search[80];
	snprintf(contents, sizeof(contents), "/api/v2/logs/%lld/contents", (long long)big_logid);
	snprintf(raw, sizeof(raw), "/api/v2/logs/%lld/raw", (long long)big_logid);
	snprintf(search, sizeof(search), "/api/v2/logs/%lld/search?q=zz&dir=prev",
		 (long long)big_logid);
	const char *const paths[] = {"/api/v2/builds",
				     "/api/v2/builders/b0/builds",
				     "/api/v2/builds/1/steps/0/logs",
				     "/api/v2/changes?limit=1",
				     "/api/v2/lastbuilds",
				     "/api/v2/builds/1",
				     contents,
				     raw,
				     search};
	for (int i = 0; i < 450; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons((uint16_t)api_http_port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			TAP_FAIL("connect");
			close(fd);
			break;
		}
		char rq[256];
		int n = snprintf(rq, sizeof(rq), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
				 paths[i % 9]);
		send(fd, rq, (size_t)n, MSG_NOSIGNAL);
		if (i % 2) { /* a reset rather than a close */
			struct linger lg = {1, 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		if (i % 3 == 0) { /* some wait for the answer to begin (bounded) */
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			(void)poll(&pfd, 1, 5);
		}
		close(fd);
	}
	struct resp r;
	get(&r, "/api/v2/builds/1");
	CHECK_INT(r.status, 200);
	json_t *j = body_json(&r);
	CHECK_INT(json_array_size(json_object_get(j, "builds")), 1);
	json_decref(j);
	buf_release(&r.body);
}

/* ---- raw WebSocket client ---------------------------------------------------------------- */

static char ws_last_head[2048]; /* the last ws_connect()'s response head */

static int ws_connect(int port, const char *path, const char *auth, char *status_line, size_t n)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	char reqbuf[1024];
	int len =
		snprintf(reqbuf, sizeof(reqbuf),
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
			 path, auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "");
	send(fd, reqbuf, (size_t)len, MSG_NOSIGNAL);
	/* read the response head byte by byte up to the blank line */
	char head[2048];
	size_t h = 0;
	while (h < sizeof(head) - 1) {
		ssize_t k = recv(fd, head + h, 1, 0);
		if (k <= 0)
			break;
		h++;
		if (h >= 4 && !memcmp(head + h - 4, "\r\n\r\n", 4))
			break;
	}
	head[h] = '\0';
	memcpy(ws_last_head, head, h + 1);
	char *eol = strstr(head, "\r\n");
	snprintf(status_line, n, "%.*s", eol ? (int)(eol - head) : (int)h, head);
	return fd;
}

/* Sends one masked frame. */
static void ws_send_frame(int fd, int opcode, bool fin, const void *data, size_t len)
{
	unsigned char hdr[14];
	size_t h = 0;
	hdr[h++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
	if (len < 126) {
		hdr[h++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (unsigned char)(len >> 8);
		hdr[h++] = (unsigned char)len;
	} else {
		hdr[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	static const unsigned char mask[4] = {1, 2, 3, 4};
	memcpy(hdr + h, mask, 4);
	h += 4;
	send(fd, hdr, h, MSG_NOSIGNAL);
	unsigned char *m = xmalloc(len ? len : 1);
	for (size_t i = 0; i < len; i++)
		m[i] = ((const unsigned char *)data)[i] ^ mask[i & 3];
	size_t off = 0;
	while (off < len) {
		ssize_t k = send(fd, m + off, len - off, MSG_NOSIGNAL);
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	free(m);
}

static bool recv_all(int fd, void *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t k = recv(fd, (char *)p + off, n - off, 0);
		if (k <= 0)
			return false;
		off += (size_t)k;
	}
	return true;
}

/* Reads one (unmasked, server) frame: opcode or -1; payload in out. */
static int ws_recv_frame(int fd, struct buf *out)
{
	unsigned char h[2];
	if (!recv_all(fd, h, 2))
		return -1;
	uint64_t len = h[1] & 0x7f;
	if (len == 126) {
		unsigned char e[2];
		if (!recv_all(fd, e, 2))
			return -1;
		len = (uint64_t)e[0] << 8 | e[1];
	} else if (len == 127) {
		unsigned char e[8];
		if (!recv_all(fd, e, 8))
			return -1;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | e[i];
	}
	buf_reset(out);
	if (buf_grow(out, len) < 0)
		return -1;
	if (!recv_all(fd, out->ptr, len))
		return -1;
	buf_setlen(out, len);
	out->ptr[len] = '\0';
	return h[0] & 0x0f;
}

static int close_code(const struct buf *b)
{
	return b->len >= 2 ? ((unsigned char)b->ptr[0] << 8 | (unsigned char)b->ptr[1]) : -1;
}

/* After ws_connect() got a refusal: the body is exactly 'text' (as
 * Content-Length says) and the master closes the connection after it. */
static bool ws_refusal_body_is(int fd, const char *text)
{
	char want[64];
	snprintf(want, sizeof(want), "content-length: %zu\r\n", strlen(text));
	if (!strcasestr(ws_last_head, want) || !strcasestr(ws_last_head, "connection: close\r\n"))
		return false;
	char body[256];
	size_t n = strlen(text);
	if (n > sizeof(body) || !recv_all(fd, body, n) || memcmp(body, text, n))
		return false;
	return recv(fd, body, 1, 0) == 0; /* EOF, bounded by SO_RCVTIMEO */
}

TEST(basic_auth_parse)
{
	char out[64];
	const char *name = NULL, *pass = NULL;
	CHECK_INT(http_basic_parse("Basic dzA6c2VjcmV0", out, sizeof(out), &name, &pass), 0);
	CHECK_STR(name, "w0");
	CHECK_STR(pass, "secret");
	/* scheme in any case, spaces around it; a ':' in the password stays */
	CHECK_INT(http_basic_parse("  basic   dzA6YTpi", out, sizeof(out), &name, &pass), 0);
	CHECK_STR(name, "w0");
	CHECK_STR(pass, "a:b");
	CHECK_INT(http_basic_parse("Bearer abc", out, sizeof(out), &name, &pass), KILN_EPARSE);
	CHECK_INT(http_basic_parse("BasicX dzA6c2VjcmV0", out, sizeof(out), &name, &pass),
		  KILN_EPARSE);
	CHECK_INT(http_basic_parse("Basic dzA=", out, sizeof(out), &name, &pass), 1); /* no ':' */
	CHECK_INT(http_basic_parse("Basic dwBhOmI=", out, sizeof(out), &name, &pass), 1); /* NUL */
	CHECK_INT(http_basic_parse("Basic", out, sizeof(out), &name, &pass), 1);
	/* does not fit the output: treated as no credentials */
	CHECK_INT(http_basic_parse("Basic dzA6c2VjcmV0", out, 5, &name, &pass), 1);
}

TEST(worker_listener_auth)
{
	/* Refusals answer an HTTP/1.1 upgrade in HTTP/1.1 (buildbot-worker reports a
	 * 1.0 answer as "Unsupported HTTP version", hiding the password error). */
	char st[200];
	int fd = ws_connect(api_workers_port, "/", NULL, st, sizeof(st));
	CHECK_STR(st, "HTTP/1.1 401 Unauthorized");
	CHECK(strcasestr(ws_last_head, "www-authenticate: Basic") != NULL);
	CHECK(ws_refusal_body_is(fd, "authentication required\n"));
	close(fd);
	fd = ws_connect(api_workers_port, "/", "Basic dzA6d3Jvbmc=" /* w0:wrong */, st, sizeof(st));
	CHECK_STR(st, "HTTP/1.1 401 Unauthorized");
	CHECK(ws_refusal_body_is(fd, "authentication required\n"));
	close(fd);
	fd = ws_connect(api_workers_port, "/", "Bearer abc", st, sizeof(st));
	CHECK_STR(st, "HTTP/1.1 400 Bad Request");
	CHECK(ws_refusal_body_is(fd, "only Basic authorization is supported\n"));
	close(fd);
	int before = ops_opened;
	fd = ws_connect(api_workers_port, "/any/path", "Basic dzA6c2VjcmV0" /* w0:secret */, st,
			sizeof(st));
	CHECK_STR(st, "HTTP/1.1 101 Switching Protocols");

	/* a message in two fragments comes back whole */
	struct buf in;
	buf_init(&in, KILN_MAX_WS_FRAME + 1024);
	ws_send_frame(fd, 2, false, "hello ", 6);
	ws_send_frame(fd, 0, true, "worker", 6);
	CHECK_INT(ws_recv_frame(fd, &in), 2);
	CHECK_STR(in.ptr, "hello worker");
	CHECK_INT(ops_opened, before + 1);

	/* a 300 KiB message */
	size_t n = 300u << 10;
	char *big = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	ws_send_frame(fd, 2, true, big, n);
	CHECK_INT(ws_recv_frame(fd, &in), 2);
	CHECK_INT(in.len, n);
	CHECK(in.len == n && !memcmp(in.ptr, big, n));
	free(big);

	/* a close asked by the ops: queued messages first, then the close frame */
	int closed0 = ops_closed;
	int fd2 = ws_connect(api_workers_port, "/", "Basic dzA6c2VjcmV0", st, sizeof(st));
	ws_send_frame(fd2, 2, true, "close-me", 8);
	CHECK_INT(ws_recv_frame(fd2, &in), 2);
	CHECK_STR(in.ptr, "bye");
	CHECK_INT(ws_recv_frame(fd2, &in), 8);
	CHECK_INT(close_code(&in), 4000);
	close(fd2);
	for (int i = 0; i < TEST_GUARD_MS / 10 && ops_closed == closed0; i++)
		usleep(10000); /* bounded: the loop thread counts fd2's close */
	CHECK_INT(ops_closed, closed0 + 1);

	/* past KILN_MAX_WS_FRAME: close 1009 */
	int closed_before = ops_closed;
	size_t over = KILN_MAX_WS_FRAME + 100;
	char *huge = xcalloc(1, over);
	ws_send_frame(fd, 2, true, huge, over);
	free(huge);
	CHECK_INT(ws_recv_frame(fd, &in), 8);
	CHECK_INT(close_code(&in), 1009);
	close(fd);
	for (int i = 0; i < TEST_GUARD_MS / 10 && ops_closed == closed_before; i++)
		usleep(10000); /* bounded wait for the loop thread to notice */
	CHECK_INT(ops_closed, closed_before + 1);
	buf_release(&in);
}

TEST(event_socket_ping)
{
	char st[200];
	struct buf in;
	buf_init(&in, 1u << 20);
	int fd = ws_connect(api_http_port, "/ws", NULL, st, sizeof(st));
	CHECK_STR(st, "HTTP/1.1 101 Switching Protocols");
	const char *ping = "{\"cmd\":\"ping\",\"_id\":1}";
	ws_send_frame(fd, 1, true, ping, strlen(ping));
	CHECK_INT(ws_recv_frame(fd, &in), 1);
	CHECK_STR(in.ptr, "{\"msg\":\"pong\",\"code\":200,\"_id\":1}");
	const char *bad = "{\"cmd\":\"nosuch\",\"_id\":2}";
	ws_send_frame(fd, 1, true, bad, strlen(bad));
	CHECK_INT(ws_recv_frame(fd, &in), 1);
	CHECK(strstr(in.ptr, "\"code\":404") != NULL);
	close(fd);
	fd = ws_connect(api_http_port, "/elsewhere", NULL, st, sizeof(st));
	CHECK(strstr(st, " 404 ") != NULL);
	close(fd);
	buf_release(&in);
}

TEST(stop_closes_websockets)
{
	char st[200];
	struct buf in;
	buf_init(&in, 1u << 20);
	int closed_before = ops_closed;
	int fd = ws_connect(api_workers_port, "/", "Basic dzA6c2VjcmV0", st, sizeof(st));
	CHECK_STR(st, "HTTP/1.1 101 Switching Protocols");
	api_stop_server();
	CHECK_INT(ws_recv_frame(fd, &in), 8);
	CHECK_INT(close_code(&in), 1001);
	CHECK_INT(ops_closed, closed_before + 1); /* called inside http_server_stop */
	close(fd);
	buf_release(&in);
}

static void client(void)
{
	shared_easy = curl_easy_init();
	RUN(ports_file);
	RUN(root_and_invalid_paths);
	RUN(builders);
	RUN(builds_and_queries);
	RUN(steps_and_logs);
	RUN(raw_log_streams_megabytes);
	RUN(log_contents_stream_under_cap);
	RUN(other_resources);
	RUN(jsonrpc_envelope);
	RUN(caps_and_keepalive);
	RUN(clients_gone_mid_answer);
	RUN(basic_auth_parse);
	RUN(worker_listener_auth);
	RUN(event_socket_ping);
	curl_easy_cleanup(shared_easy);
	RUN(stop_closes_websockets);
}

/* ---- fixture ------------------------------------------------------------------------------ */

static void fill_db(struct db *db, int64_t masterid)
{
	int64_t b0, b1, w0, bsid, brid, buildid, number, stepid, n;
	double now = 1795377000;

	db_builder_ensure(db, "b0", NULL, "[]", &b0);
	db_builder_ensure(db, "b1", "second", "[\"t\"]", &b1);
	db_builder_set_masters(db, b0, &masterid, 1);
	db_builder_set_masters(db, b1, &masterid, 1);
	db_worker_ensure(db, "w0", &w0);
	db_worker_set_configured(db, w0, masterid, &b0, 1);
	db_worker_set_connected(db, w0, masterid);

	for (int k = 0; k < 2; k++) {
		struct db_sourcestamp ss = {"", "", "", "", ""};
		json_t *props = json_pack("{s:[s,s],s:[s,s]}", "owner", "", "Force Build Form",
					  "reason", "r", "Force Build Form");
		struct db_buildset_new bs = {.reason = "A build was forced by '': r",
					     .scheduler = "force",
					     .properties = props,
					     .sourcestamps = &ss,
					     .nsourcestamps = 1,
					     .submitted_at = now + k};
		if (db_buildset_add(db, &bs, &b0, 1, &bsid, &brid) < 0)
			TAP_FAIL("buildset: %s", db_errmsg(db));
		json_decref(props);
		db_request_claim(db, brid, masterid, now + k);
		db_build_add(db, b0, brid, w0, masterid, now + k, &buildid, &number);
		json_t *owners = json_pack("[s]", "");
		db_build_set_property(db, buildid, "owners", owners, "Build");
		json_t *num = json_integer(number);
		db_build_set_property(db, buildid, "buildnumber", num, "Build");
		json_decref(num);
		json_decref(owners);

		db_step_add(db, buildid, "worker_preparation", &stepid, &n);
		db_step_start(db, stepid, now);
		db_step_finish(db, stepid, 0, "worker w0 ready", false, now);
		db_step_add(db, buildid, "shell", &stepid, &n);
		db_step_start(db, stepid, now);
		int64_t logid;
		db_log_add(db, stepid, "stdio", 's', &logid);
		const char *text = "h echo hi\noout\neerr\nhprogram finished with exit code 0\n";
		db_log_append(db, logid, text, strlen(text));
		db_log_finish(db, logid);
		int64_t tlog;
		db_log_add(db, stepid, "err.text", 't', &tlog);
		const char *text2 = "first\nsecond \xc3\xa9\n";
		db_log_append(db, tlog, text2, strlen(text2));
		db_log_finish(db, tlog);
		db_step_finish(db, stepid, k ? 2 : 0, "'echo hi'", false, now);
		if (k == 0) {
			small_logid = logid;
			text_logid = tlog;
			db_step_add(db, buildid, "big", &stepid, &n);
			db_log_add(db, stepid, "stdio", 's', &big_logid);
			struct buf page;
			buf_init(&page, 1u << 20);
			for (int i = 0; i < BIG_LINES; i++) {
				int e = buf_addch(&page, 'o');
				for (int c = 0; c < BIG_WIDTH; c++)
					e = e < 0 ? e : buf_addch(&page, 'x');
				e = e < 0 ? e : buf_addch(&page, '\n');
				if (e < 0)
					TAP_FAIL("big log page: %d", e);
				if (page.len > (200u << 10) || i == BIG_LINES - 1) {
					if (db_log_append(db, big_logid, page.ptr, page.len) < 0)
						TAP_FAIL("append: %s", db_errmsg(db));
					buf_reset(&page);
				}
			}
			buf_release(&page);
			db_log_finish(db, big_logid);
			db_step_finish(db, stepid, 0, "big", false, now);
		}
		db_build_finish(db, buildid, k ? 2 : 0, k ? "failed 'echo hi'" : "build successful",
				now + k);
		db_request_complete(db, brid, k ? 2 : 0, now + k, NULL);
	}
	if (db_flush(db) < 0)
		TAP_FAIL("flush: %s", db_errmsg(db));
}

int main(void)
{
	struct config cfg = {0};
	char *builders[] = {"b0", "b1"};
	struct config_scheduler sched = {
		.kind = CONFIG_SCHED_FORCE, .name = "force", .builders = builders, .nbuilders = 2};

	cfg.title = "Test & Co";
	cfg.scheduler = &sched;
	cfg.nschedulers = 1;
	struct api_harness h = {.name = "base",
				.cfg = &cfg,
				.ops = &test_ops,
				.timeout_s = 120,
				.fill_db = fill_db,
				.client = client};
	return API_HARNESS_MAIN(&h);
}
