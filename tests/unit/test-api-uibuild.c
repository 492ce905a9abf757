/*
 * Unit tests for what the build pages ask of the REST API (slice
 * "uibuild"): GET /api/v2/lastbuilds (every builder's last build matching
 * the query, one request) and JSON-RPC "rebuild" on a build (a copy of its
 * buildset: sourcestamps of two codebases, properties, changes).  A real
 * http_server on a real loop and SQLite database filled through db.h; the
 * checks run in a client thread with libcurl, one connection per request.
 */
#include "tap.h"
#include "api-harness.h"

#include <stdlib.h>

#include <jansson.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/master.h"

static int64_t b0, b1, b2, build_b0_1, bs_b0_1, change1;

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
	json_t *d = api_get_ok("lastbuilds");
	pairs(d, got, sizeof(got));
	/* b0's last is the running #3, b1's its only one; b2 has none */
	snprintf(want, sizeof(want), "%lld:3 %lld:1", (long long)b0, (long long)b1);
	CHECK_STR(got, want);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(d, "meta"), "total")), 2);
	json_decref(d);

	d = api_get_ok("lastbuilds?complete=true");
	pairs(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld:2 %lld:1", (long long)b0, (long long)b1);
	CHECK_STR(got, want); /* the last finished: #2, not the running #3 */
	json_t *first = json_array_get(json_object_get(d, "builds"), 0);
	CHECK(json_is_object(json_object_get(first, "properties")));
	CHECK_INT(json_object_size(json_object_get(first, "properties")), 0);
	json_decref(d);

	d = api_get_ok("lastbuilds?results=0&field=number&field=builderid");
	pairs(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld:1", (long long)b0);
	CHECK_STR(got, want); /* b0's last success is #1; b1 never succeeded */
	CHECK_INT(json_object_size(json_array_get(json_object_get(d, "builds"), 0)), 2);
	json_decref(d);

	d = api_get_ok("lastbuilds?limit=1&offset=1");
	pairs(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld:1", (long long)b1);
	CHECK_STR(got, want); /* paged over builders */
	json_decref(d);

	long st = 0;
	d = api_req("lastbuilds?nosuch=1", NULL, &st);
	CHECK_INT(st, 400);
	json_decref(d);
	d = api_req("lastbuilds?field=nosuch", NULL, &st);
	CHECK_INT(st, 400);
	json_decref(d);
	d = api_req("lastbuilds?number=x", NULL, &st);
	CHECK_INT(st, 400);
	json_decref(d);
}

/* rebuild's checks of the database, on the loop thread */
static int64_t rb_bsid, rb_brid, rb_buildid;

static void rebuild_check_db(void)
{
	/* the new buildset: reason and scheduler, same sourcestamps and properties */
	struct db_buildset_info bi = {0};
	CHECK_INT(db_buildset_get(api_master.db, rb_bsid, &bi), 0);
	CHECK_STR(bi.reason, "rebuild");
	CHECK_STR(bi.scheduler, "rebuild");
	CHECK_INT(bi.nsourcestamps, 2);
	db_buildset_info_release(&bi);
	struct db_sourcestamp *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	CHECK_INT(db_buildset_sourcestamps(api_master.db, bs_b0_1, &a, &na), 0);
	CHECK_INT(db_buildset_sourcestamps(api_master.db, rb_bsid, &b, &nb), 0);
	CHECK_INT(na, nb);
	for (size_t i = 0; i < na && i < nb; i++) {
		CHECK_STR(a[i].codebase, b[i].codebase);
		CHECK_STR(a[i].revision ? a[i].revision : "-", b[i].revision ? b[i].revision : "-");
		CHECK_STR(a[i].repository, b[i].repository);
	}
	free(a);
	free(b);
	json_t *pa = NULL, *pb = NULL;
	CHECK_INT(db_buildset_properties(api_master.db, bs_b0_1, &pa), 0);
	CHECK_INT(db_buildset_properties(api_master.db, rb_bsid, &pb), 0);
	CHECK(json_equal(pa, pb) && json_object_size(pa) == 2);
	json_decref(pa);
	json_decref(pb);
	/* one queued request on the same builder */
	struct db_request rq = {0};
	CHECK_INT(db_request_get(api_master.db, rb_brid, &rq), 0);
	CHECK_INT(rq.builderid, b0);
	CHECK_INT(rq.buildsetid, rb_bsid);
	CHECK(!rq.claimed && !rq.complete);

	/* a build of the copy lists the same changes */
	int64_t number;
	CHECK_INT(db_build_add(api_master.db, b0, rb_brid, 0, api_master.masterid, 1795377100,
			       &rb_buildid, &number),
		  0);
	CHECK_INT(db_flush(api_master.db), 0);
}

TEST(rebuild)
{
	char path[64];
	long st = 0;
	snprintf(path, sizeof(path), "builds/%lld", (long long)build_b0_1);
	json_t *d = api_req(
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
	api_on_loop(rebuild_check_db);
	int64_t buildid = rb_buildid;
	snprintf(path, sizeof(path), "builds/%lld/changes", (long long)buildid);
	d = api_get_ok(path);
	json_t *ch = json_object_get(d, "changes");
	CHECK_INT(json_array_size(ch), 1);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(ch, 0), "changeid")), change1);
	json_decref(d);

	/* an unknown build */
	d = api_req("builds/999999",
		    "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"rebuild\",\"params\":{}}", &st);
	CHECK_INT(st, 404);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(d, "error"), "code")), -32603);
	json_decref(d);
}

static void client(void)
{
	RUN(lastbuilds);
	RUN(rebuild);
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

int main(void)
{
	struct api_harness h = {.name = "uibuild", .fill_db = fill_db, .client = client};
	return API_HARNESS_MAIN(&h);
}
