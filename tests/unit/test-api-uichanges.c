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
#include "api-harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/master.h"
#include "master/sched/sched.h"

static int64_t b0, b1, change1, change2, build_a, build_b, build_c;

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
	json_t *d = api_get_ok(path);
	ids(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld %lld", (long long)build_a, (long long)build_b);
	CHECK_STR(got, want); /* both buildsets of change1, not change2's build */
	json_t *first = json_array_get(json_object_get(d, "builds"), 0);
	CHECK(json_is_object(json_object_get(first, "properties"))); /* as /builds answers */
	CHECK_INT(json_integer_value(json_object_get(json_object_get(d, "meta"), "total")), 2);
	json_decref(d);

	snprintf(path, sizeof(path), "changes/%lld/builds?order=-buildid", (long long)change1);
	d = api_get_ok(path);
	ids(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld %lld", (long long)build_b, (long long)build_a);
	CHECK_STR(got, want); /* the query options apply */
	json_decref(d);

	snprintf(path, sizeof(path), "changes/%lld/builds", (long long)change2);
	d = api_get_ok(path);
	ids(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld", (long long)build_c);
	CHECK_STR(got, want);
	json_decref(d);

	d = api_get_ok("changes/999/builds");
	CHECK_INT(json_array_size(json_object_get(d, "builds")), 0);
	json_decref(d);

	long st = 0;
	d = api_req("changes/x/builds", NULL, &st);
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
	json_t *d = api_get_ok("schedulers");
	CHECK_INT(json_array_size(json_object_get(d, "schedulers")), 2);
	json_t *r = sched_row(d, 0);
	CHECK_INT(json_integer_value(json_object_get(r, "schedulerid")), 1);
	CHECK_STR(sfield(r, "name"), "force");
	CHECK_STR(sfield(r, "kind"), "force_scheduler");
	CHECK(json_is_true(json_object_get(r, "enabled")));
	CHECK_INT(json_integer_value(json_object_get(json_object_get(r, "master"), "masterid")),
		  api_master.masterid);
	CHECK_STR(json_string_value(json_array_get(json_object_get(r, "builder_names"), 0)), "b0");
	r = sched_row(d, 1);
	CHECK_INT(json_integer_value(json_object_get(r, "schedulerid")), 2);
	CHECK_STR(sfield(r, "name"), "every");
	CHECK_STR(sfield(r, "kind"), "periodic");
	json_decref(d);

	d = api_get_ok("schedulers/every"); /* by name too */
	CHECK_INT(json_integer_value(json_object_get(sched_row(d, 0), "schedulerid")), 2);
	json_decref(d);

	long st = 0;
	d = api_req("schedulers/3", NULL, &st);
	CHECK_INT(st, 404);
	json_decref(d);
	d = api_req("schedulers/0", NULL, &st);
	CHECK_INT(st, 404);
	json_decref(d);
}

TEST(enable)
{
	long st = 0;
	json_t *d = api_req("schedulers/1",
			    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"enable\","
			    "\"params\":{\"enabled\":false}}",
			    &st);
	CHECK_INT(st, 200);
	CHECK(json_is_null(json_object_get(d, "result")));
	json_decref(d);
	d = api_get_ok("schedulers/force");
	CHECK(json_is_false(json_object_get(sched_row(d, 0), "enabled")));
	json_decref(d);
	d = api_get_ok("schedulers/every");
	CHECK(json_is_true(json_object_get(sched_row(d, 0), "enabled"))); /* only that one */
	json_decref(d);

	/* a disabled force scheduler refuses to force */
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"force\",\"params\":{\"builderid\":%"
		 "lld}}",
		 (long long)b0);
	d = api_req("forceschedulers/force", body, &st);
	CHECK_INT(st, 400);
	const char *msg =
		json_string_value(json_object_get(json_object_get(d, "error"), "message"));
	CHECK(msg && strstr(msg, "disabled"));
	json_decref(d);

	/* bad calls */
	d = api_req(
		"schedulers/1",
		"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"enable\",\"params\":{\"enabled\":1}}",
		&st);
	CHECK_INT(st, 400);
	CHECK_INT(api_rpc_code(d), -32602);
	json_decref(d);
	d = api_req("schedulers/1",
		    "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"enable\",\"params\":{}}", &st);
	CHECK_INT(st, 400);
	json_decref(d);
	d = api_req("schedulers/9",
		    "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"enable\","
		    "\"params\":{\"enabled\":true}}",
		    &st);
	CHECK_INT(st, 404);
	json_decref(d);
	d = api_req("schedulers/1",
		    "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"frob\",\"params\":{}}", &st);
	CHECK_INT(st, 501);
	CHECK_INT(api_rpc_code(d), -32601);
	json_decref(d);

	/* "every" disabled then enabled again by name: the registry reread in on_done
	 * must see force disabled and every enabled */
	d = api_req("schedulers/every",
		    "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"enable\","
		    "\"params\":{\"enabled\":false}}",
		    &st);
	CHECK_INT(st, 200);
	json_decref(d);
	d = api_req("schedulers/every",
		    "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"enable\","
		    "\"params\":{\"enabled\":true}}",
		    &st);
	CHECK_INT(st, 200);
	json_decref(d);
	d = api_get_ok("schedulers/every");
	CHECK(json_is_true(json_object_get(sched_row(d, 0), "enabled")));
	json_decref(d);
}

static void client(void)
{
	RUN(change_builds);
	RUN(schedulers);
	RUN(enable);
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
	build_a = api_add_build(db, masterid, b0, &change1, 1, "main", "force", now, 0);
	api_add_build(db, masterid, b0, NULL, 0, "main", "force", now + 1, 0);
	build_b = api_add_build(db, masterid, b1, &change1, 1, "main", "force", now + 2, 0);
	build_c = api_add_build(db, masterid, b0, &change2, 1, "main", "force", now + 3, 0);
	if (db_flush(db) < 0)
		TAP_FAIL("flush: %s", db_errmsg(db));
}

static void teardown(struct master *m)
{
	/* the enabled flags survive a restart: a new registry reads them back */
	sched_free(m->sched);
	m->sched = NULL;
	struct sched *s2 = NULL;
	if (sched_new(m, &s2) < 0)
		TAP_FAIL("sched_new again");
	CHECK(!sched_enabled(s2, 0));
	CHECK(sched_enabled(s2, 1));
	CHECK_INT(sched_set_enabled(s2, 2, false), KILN_ENOTFOUND);
	sched_free(s2);
}

static int setup(struct master *m)
{
	if (sched_new(m, &m->sched) < 0) {
		printf("Bail out! sched_new failed\n");
		return -1;
	}
	return 0;
}

int main(void)
{
	struct config cfg = {0};
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

	cfg.scheduler = scheds;
	cfg.nschedulers = ARRAY_SIZE(scheds);
	struct api_harness h = {.name = "uichanges",
				.cfg = &cfg,
				.fill_db = fill_db,
				.setup = setup,
				.client = client,
				.teardown = teardown};
	return API_HARNESS_MAIN(&h);
}
