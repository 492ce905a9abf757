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
#include "api-harness.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/master.h"

static int64_t w1;

/* GET (body NULL) or JSON-RPC POST, cross-site when cross; the answer
 * parsed, *status set. */
static json_t *call(const char *path, const char *body, bool cross, long *status)
{
	return api_call(path, body, cross ? API_CROSS_SITE : 0, status, NULL);
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
		CHECK_INT(api_rpc_code(d), -32602);
		CHECK_STR(api_rpc_msg(d), "'reason' must be a string");
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
		CHECK_INT(api_rpc_code(d), -32602);
		CHECK_STR(api_rpc_msg(d), "no such worker");
		json_decref(d);
		d = call("workers/99", body, false, &st);
		CHECK_INT(st, 404);
		CHECK_STR(api_rpc_msg(d), "no such worker");
		json_decref(d);
	}
	/* an action Buildbot does not have */
	long st = 0;
	json_t *d = call("workers/w1",
			 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"shutdown\",\"params\":{}}",
			 false, &st);
	CHECK_INT(st, 501);
	CHECK_INT(api_rpc_code(d), -32601);
	CHECK_STR(api_rpc_msg(d), "action: shutdown is not supported");
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

static void client(void)
{
	RUN(bad_params);
	RUN(unknown_worker);
	RUN(refused_cross_site);
	RUN(not_connected);
}

static int setup(struct master *m)
{
	if (db_worker_ensure(m->db, "w1", &w1) < 0 || db_flush(m->db) < 0) {
		printf("Bail out! worker: %s\n", db_errmsg(m->db));
		return -1;
	}
	return 0;
}

int main(void)
{
	struct api_harness h = {.name = "workers-stop", .setup = setup, .client = client};
	return API_HARNESS_MAIN(&h);
}
