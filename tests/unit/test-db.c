/*
 * Unit tests for src/db: every db.h function against real SQLite files in a
 * temporary directory and :memory:, batching on a real libuv loop, log
 * chunking and reading, request ordering and claims, db_list against
 * Buildbot's shapes, and the query plans behind them.
 */
#include "tap.h"
#include "wait.h" /* slice "faults": TEST_GUARD_MS */

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/db-internal.h"
#include "db/db.h"

static char tmpdir[256];
static int dbseq;

/* A fresh database file under tmpdir; its url in *ret_url (owned). */
static struct db *open_file(uv_loop_t *loop, char **ret_url)
{
	char *url = xasprintf("sqlite:t%d.sqlite", ++dbseq);
	struct db *db = NULL;
	int r = db_open(loop, url, tmpdir, &db);
	if (r < 0)
		TAP_FAIL("db_open %s: %s", url, db_open_errmsg());
	if (ret_url)
		*ret_url = url;
	else
		free(url);
	return db;
}

static struct db *open_mem(void)
{
	struct db *db = NULL;
	int r = db_open(NULL, "sqlite::memory:", NULL, &db);
	if (r < 0)
		TAP_FAIL("db_open memory: %s", db_open_errmsg());
	return db;
}

/* Runs a loop until nothing is left on it (after db_close: its handles'
 * close callbacks and a checkpoint job's completion). */
static void loop_drain(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_DEFAULT);
}

static json_t *list(struct db *db, enum db_resource res, const struct db_query *q)
{
	json_t *items = NULL;
	int r = db_list(db, res, q, &items, NULL);
	if (r < 0)
		TAP_FAIL("db_list %d: %s (%s)", (int)res, err_str(r), db_errmsg(db));
	return items ? items : json_array();
}

static long long jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v)) {
		TAP_FAIL("'%s' is not an integer", key);
		return -999;
	}
	return json_integer_value(v);
}

/* Checks that obj has exactly the keys of the api-samples object. */
static void check_keys(json_t *obj, const char *const *keys, size_t n)
{
	if (json_object_size(obj) != n)
		TAP_FAIL("object has %zu keys, want %zu", json_object_size(obj), n);
	for (size_t i = 0; i < n; i++)
		if (!json_object_get(obj, keys[i]))
			TAP_FAIL("missing key '%s'", keys[i]);
}

/* A master, a builder, a worker, a buildset with one request, a build. */
struct fixture {
	int64_t masterid, builderid, workerid, bsid, brid, buildid, number;
};

static void fixture_make(struct db *db, struct fixture *f)
{
	CHECK_INT(db_master_register(db, "host:/basedir", &f->masterid), 0);
	CHECK_INT(db_builder_ensure(db, "b0", NULL, NULL, &f->builderid), 0);
	CHECK_INT(db_worker_ensure(db, "w0", &f->workerid), 0);
	struct db_sourcestamp ss = {.branch = "main",
				    .revision = "abc",
				    .repository = "r",
				    .project = "p",
				    .codebase = ""};
	struct db_buildset_new bs = {.reason = "forced",
				     .sourcestamps = &ss,
				     .nsourcestamps = 1,
				     .submitted_at = 1000.5};
	CHECK_INT(db_buildset_add(db, &bs, &f->builderid, 1, &f->bsid, &f->brid), 0);
	CHECK_INT(db_request_claim(db, f->brid, f->masterid, 1001.0), 0);
	CHECK_INT(db_build_add(db, f->builderid, f->brid, f->workerid, f->masterid, 1001.7,
			       &f->buildid, &f->number),
		  0);
}

/* The number of the newest migration in src/db/migrations/. */
#define DB_LAST_MIGRATION 14 /* 0014-retention.sql, slice "retention" */

/* --- open, migrations ------------------------------------------------------------- */

TEST(open_memory_and_file)
{
	struct db *db = open_mem();
	CHECK_INT(db_schema_version(db), DB_LAST_MIGRATION);
	db_close(db);

	char *url;
	db = open_file(NULL, &url);
	CHECK_INT(db_schema_version(db), DB_LAST_MIGRATION);
	int64_t id;
	CHECK_INT(db_master_register(db, "m", &id), 0);
	db_close(db);
	/* Reopening applies nothing twice and keeps the data. */
	CHECK_INT(db_open(NULL, url, tmpdir, &db), 0);
	CHECK_INT(db_schema_version(db), DB_LAST_MIGRATION);
	int64_t id2;
	CHECK_INT(db_master_register(db, "m", &id2), 0);
	CHECK_INT(id2, id);
	db_close(db);

	/* WAL and the other pragmas are on for file databases. */
	char *path = xasprintf("%s/%s", tmpdir, url + 7);
	sqlite3 *h;
	CHECK_INT(sqlite3_open(path, &h), SQLITE_OK);
	sqlite3_stmt *s;
	CHECK_INT(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_step(s), SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(h);
	free(path);
	free(url);
}

TEST(open_rejects_bad_urls_and_newer_schema)
{
	struct db *db = NULL;
	CHECK(db_open(NULL, "postgresql://x", NULL, &db) < 0);
	CHECK(db == NULL);
	CHECK(strstr(db_open_errmsg(), "postgresql") != NULL);
	CHECK(db_open(NULL, "sqlite:/nonexistent-dir/x/y.sqlite", NULL, &db) < 0);
	CHECK(strstr(db_open_errmsg(), "nonexistent") != NULL);

	/* A schema from a newer kiln is refused, not downgraded. */
	char *url;
	db = open_file(NULL, &url);
	db_close(db);
	char *path = xasprintf("%s/%s", tmpdir, url + 7);
	sqlite3 *h;
	CHECK_INT(sqlite3_open(path, &h), SQLITE_OK);
	CHECK_INT(sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	db = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &db), KILN_EDB);
	CHECK(strstr(db_open_errmsg(), "newer") != NULL);
	free(path);
	free(url);
}

TEST(migrations_are_numbered)
{
	size_t n;
	const struct db_migration *m = db_migrations(&n);
	CHECK(n >= 1);
	/* increasing; a gap only while parallel branches each add theirs */
	for (size_t i = 0; i < n; i++)
		CHECK(m[i].version > (i ? m[i - 1].version : 0));
	CHECK_STR(m[0].name, "0001-initial");
	CHECK(strstr(m[0].sql, "CREATE TABLE logchunks") != NULL);
}

TEST(results_names_and_worst)
{
	CHECK_STR(db_results_name(RESULTS_SUCCESS), "success");
	CHECK_STR(db_results_name(RESULTS_NONE), "not finished");
	CHECK_STR(db_results_name(RESULTS_CANCELLED), "cancelled");
	CHECK_INT(db_results_worst(RESULTS_SUCCESS, RESULTS_SKIPPED), RESULTS_SUCCESS);
	CHECK_INT(db_results_worst(RESULTS_WARNINGS, RESULTS_FAILURE), RESULTS_FAILURE);
	CHECK_INT(db_results_worst(RESULTS_EXCEPTION, RESULTS_FAILURE), RESULTS_EXCEPTION);
	CHECK_INT(db_results_worst(RESULTS_NONE, RESULTS_SKIPPED), RESULTS_SKIPPED);
	CHECK_INT(db_results_worst(RESULTS_RETRY, RESULTS_CANCELLED), RESULTS_CANCELLED);
}

/* --- masters, builders, workers --------------------------------------------------- */

TEST(masters_builders_workers)
{
	struct db *db = open_mem();
	int64_t m1, m2, b1, b2, w1;
	CHECK_INT(db_master_register(db, "host:/a", &m1), 0);
	CHECK_INT(db_master_register(db, "host:/b", &m2), 0);
	CHECK(m1 != m2);
	CHECK_INT(db_builder_ensure(db, "b0", "first", "[\"x\", \"y\"]", &b1), 0);
	CHECK_INT(db_builder_ensure(db, "b1", NULL, NULL, &b2), 0);
	int64_t again;
	CHECK_INT(db_builder_ensure(db, "b0", "changed", NULL, &again), 0);
	CHECK_INT(again, b1);
	CHECK_INT(db_builder_ensure(db, "bad", NULL, "{}", &again), -EINVAL);
	CHECK_INT(db_builder_ensure(db, "", NULL, NULL, &again), -EINVAL);
	int64_t ms[] = {m2, m1};
	CHECK_INT(db_builder_set_masters(db, b1, ms, 2), 0);
	CHECK_INT(db_builder_set_masters(db, 999, ms, 2), KILN_ENOTFOUND);

	CHECK_INT(db_worker_ensure(db, "w0", &w1), 0);
	CHECK_INT(db_worker_ensure(db, "w0", &again), 0);
	CHECK_INT(again, w1);
	json_t *info = json_pack("{s:s, s:n}", "host", "h\n", "access_uri");
	CHECK_INT(db_worker_set_info(db, w1, info), 0);
	json_decref(info);
	CHECK_INT(db_worker_set_connected(db, w1, m1), 0);
	CHECK_INT(db_worker_set_paused(db, w1, true), 0);
	CHECK_INT(db_worker_set_graceful(db, w1, false), 0);
	CHECK_INT(db_worker_set_paused(db, 999, true), KILN_ENOTFOUND);
	/* slice "uimisc": the stored pause flag and last seen */
	bool paused = false;
	CHECK_INT(db_worker_paused(db, w1, &paused), 1);
	CHECK(paused);
	CHECK_INT(db_worker_paused(db, 999, &paused), 0);
	CHECK_INT(db_worker_set_last_seen(db, w1, 1234.7), 0);
	CHECK_INT(db_worker_set_last_seen(db, 999, 1.0), KILN_ENOTFOUND);
	int64_t bs[] = {b2, b1};
	CHECK_INT(db_worker_set_configured(db, w1, m1, bs, 2), 0);
	CHECK_INT(db_worker_set_configured(db, w1, m1, bs, 2), 0); /* replaces, no duplicates */
	CHECK_INT(db_master_set_active(db, m2, false, 2000.9), 0);

	json_t *masters = list(db, DB_MASTERS, NULL);
	CHECK_INT(json_array_size(masters), 2);
	static const char *const mkeys[] = {"active", "last_active", "masterid", "name"};
	check_keys(json_array_get(masters, 1), mkeys, 4);
	CHECK(json_is_false(json_object_get(json_array_get(masters, 1), "active")));
	CHECK_INT(jint(json_array_get(masters, 1), "last_active"), 2000);
	json_decref(masters);

	json_t *builders = list(db, DB_BUILDERS, NULL);
	CHECK_INT(json_array_size(builders), 2);
	json_t *b = json_array_get(builders, 0);
	static const char *const bkeys[] = {"builderid", "description", "masterids", "name",
					    "tags"};
	check_keys(b, bkeys, 5);
	CHECK_STR(json_string_value(json_object_get(b, "name")), "b0");
	CHECK_STR(json_string_value(json_object_get(b, "description")), "changed");
	CHECK_INT(json_array_size(json_object_get(b, "masterids")), 2);
	CHECK_INT(json_integer_value(json_array_get(json_object_get(b, "masterids"), 0)), m1);
	CHECK_INT(json_array_size(json_object_get(b, "tags")), 0);
	CHECK(json_is_null(json_object_get(json_array_get(builders, 1), "description")));
	json_decref(builders);

	json_t *workers = list(db, DB_WORKERS, NULL);
	CHECK_INT(json_array_size(workers), 1);
	json_t *w = json_array_get(workers, 0);
	static const char *const wkeys[] = {"configured_on", "connected_to", "graceful",
					    "last_seen",     "name",         "paused",
					    "workerid",      "workerinfo"};
	check_keys(w, wkeys, 8);
	CHECK_INT(jint(w, "last_seen"), 1234);
	json_t *conf = json_object_get(w, "configured_on");
	CHECK_INT(json_array_size(conf), 2);
	CHECK_INT(jint(json_array_get(conf, 0), "builderid"), b1);
	CHECK_INT(jint(json_array_get(conf, 0), "masterid"), m1);
	CHECK_INT(jint(json_array_get(json_object_get(w, "connected_to"), 0), "masterid"), m1);
	CHECK(json_is_true(json_object_get(w, "paused")));
	CHECK(json_is_false(json_object_get(w, "graceful")));
	CHECK_STR(json_string_value(json_object_get(json_object_get(w, "workerinfo"), "host")),
		  "h\n");
	json_decref(workers);

	/* Filter-only fields: workers configured on a builder, builders on a master. */
	char bid[32];
	snprintf(bid, sizeof(bid), "%lld", (long long)b2);
	const char *vals[] = {bid};
	struct db_filter f = {"builderid", DB_OP_EQ, vals, 1};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = -1};
	workers = list(db, DB_WORKERS, &q);
	CHECK_INT(json_array_size(workers), 1);
	json_decref(workers);
	CHECK_INT(db_worker_set_connected(db, w1, 0), 0);
	workers = list(db, DB_WORKERS, NULL);
	CHECK_INT(json_array_size(json_object_get(json_array_get(workers, 0), "connected_to")), 0);
	json_decref(workers);
	db_close(db);
}

/* --- buildsets and requests ------------------------------------------------------- */

TEST(request_order_priority_then_age)
{
	struct db *db = open_mem();
	int64_t m, b, other;
	CHECK_INT(db_master_register(db, "m", &m), 0);
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &b), 0);
	CHECK_INT(db_builder_ensure(db, "other", NULL, NULL, &other), 0);
	struct db_request r;
	CHECK_INT(db_request_next(db, b, &r), 0);

	/* (priority, submitted_at): the next is highest priority, then oldest. */
	struct {
		int prio;
		double at;
		int64_t brid;
	} reqs[] = {{0, 100, 0}, {5, 300, 0}, {5, 200, 0}, {0, 50, 0}, {-1, 10, 0}};
	for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
		struct db_buildset_new bs = {
			.reason = "r", .priority = reqs[i].prio, .submitted_at = reqs[i].at};
		int64_t bsid;
		CHECK_INT(db_buildset_add(db, &bs, &b, 1, &bsid, &reqs[i].brid), 0);
	}
	struct db_buildset_new bs = {.reason = "r", .priority = 100, .submitted_at = 1};
	int64_t bsid, obrid;
	CHECK_INT(db_buildset_add(db, &bs, &other, 1, &bsid, &obrid), 0);

	int64_t order[] = {reqs[2].brid, reqs[1].brid, reqs[3].brid, reqs[0].brid, reqs[4].brid};
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		CHECK_INT(db_request_next(db, b, &r), 1);
		CHECK_INT(r.buildrequestid, order[i]);
		CHECK_INT(r.builderid, b);
		CHECK(!r.claimed && !r.complete);
		CHECK_INT(r.results, -1);
		CHECK_INT(db_request_claim(db, r.buildrequestid, m, 500), 0);
	}
	CHECK_INT(db_request_next(db, b, &r), 0);
	CHECK_INT(db_request_next(db, other, &r), 1);
	CHECK_INT(r.buildrequestid, obrid);

	int64_t *ids;
	size_t n;
	CHECK_INT(db_request_pending_builders(db, &ids, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(ids[0], other);
	free(ids);

	/* Unclaimed requests come back in the queue. */
	CHECK_INT(db_request_unclaim(db, reqs[1].brid), 0);
	CHECK_INT(db_request_next(db, b, &r), 1);
	CHECK_INT(r.buildrequestid, reqs[1].brid);

	/* The dispatch query is one index seek: no scan, no sort. */
	char *plan;
	CHECK_INT(db_sql_explain(db,
				 "SELECT id FROM buildrequests INDEXED BY buildrequests_pending "
				 "WHERE builderid = 1 AND complete = 0 AND claimed_at IS NULL "
				 "ORDER BY priority DESC, submitted_at, id LIMIT 1",
				 &plan),
		  0);
	CHECK(strstr(plan, "SEARCH buildrequests USING") != NULL);
	if (strstr(plan, "TEMP B-TREE"))
		printf("# plan: %s", plan);
	CHECK(strstr(plan, "TEMP B-TREE") == NULL);
	free(plan);
	db_close(db);
}

/* Dispatch cost does not grow with the queue: 20,000 queued requests. */
/* slice "dispatch": the head of a builder's queue (next_build) and its
 * summary (prioritize_builders) */
TEST(request_queued_and_summary)
{
	struct db *db = open_mem();
	int64_t m, b, other;
	CHECK_INT(db_master_register(db, "m", &m), 0);
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &b), 0);
	CHECK_INT(db_builder_ensure(db, "other", NULL, NULL, &other), 0);
	struct db_request q[8];
	size_t n = 99;
	int prio = 0;
	double oldest = 0;
	CHECK_INT(db_request_queued(db, b, 8, q, &n), 0);
	CHECK_INT(n, 0);
	CHECK_INT(db_request_pending_summary(db, b, &prio, &oldest), 0);
	struct {
		int prio;
		double at;
		int64_t brid;
	} reqs[] = {{0, 100, 0}, {5, 300, 0}, {5, 200, 0}, {0, 50, 0}, {-1, 10, 0}};
	for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
		struct db_buildset_new bs = {
			.reason = "r", .priority = reqs[i].prio, .submitted_at = reqs[i].at};
		int64_t bsid;
		CHECK_INT(db_buildset_add(db, &bs, &b, 1, &bsid, &reqs[i].brid), 0);
	}
	struct db_buildset_new bs = {.reason = "r", .priority = 100, .submitted_at = 1};
	int64_t bsid, obrid;
	CHECK_INT(db_buildset_add(db, &bs, &other, 1, &bsid, &obrid), 0);
	/* db_request_next's order, capped at max */
	CHECK_INT(db_request_queued(db, b, 3, q, &n), 0);
	CHECK_INT(n, 3);
	CHECK_INT(q[0].buildrequestid, reqs[2].brid);
	CHECK_INT(q[1].buildrequestid, reqs[1].brid);
	CHECK_INT(q[2].buildrequestid, reqs[3].brid);
	CHECK_INT(q[0].priority, 5);
	CHECK(q[2].submitted_at == 50);
	CHECK_INT(db_request_pending_summary(db, b, &prio, &oldest), 1);
	CHECK_INT(prio, 5);
	CHECK(oldest == 10);
	/* claimed requests are not queued */
	CHECK_INT(db_request_claim(db, reqs[2].brid, m, 500), 0);
	CHECK_INT(db_request_claim(db, reqs[4].brid, m, 500), 0);
	CHECK_INT(db_request_queued(db, b, 8, q, &n), 0);
	CHECK_INT(n, 3);
	CHECK_INT(q[0].buildrequestid, reqs[1].brid);
	CHECK_INT(q[2].buildrequestid, reqs[0].brid);
	CHECK_INT(db_request_pending_summary(db, b, &prio, &oldest), 1);
	CHECK_INT(prio, 5);
	CHECK(oldest == 50);
	CHECK_INT(db_request_pending_summary(db, other, &prio, &oldest), 1);
	CHECK_INT(prio, 100);
	db_close(db);
}

TEST(request_next_with_deep_queue)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct db *db = open_file(&loop, NULL);
	int64_t m, b;
	CHECK_INT(db_master_register(db, "m", &m), 0);
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &b), 0);
	for (int i = 0; i < 20000; i++) {
		struct db_buildset_new bs = {
			.reason = "r", .priority = i % 3, .submitted_at = 1000 + i};
		int64_t bsid, brid;
		CHECK_INT(db_buildset_add(db, &bs, &b, 1, &bsid, &brid), 0);
	}
	uv_run(&loop, UV_RUN_ONCE);
	struct timespec a, z;
	clock_gettime(CLOCK_MONOTONIC, &a);
	double last_at = 0;
	int last_prio = 99;
	for (int i = 0; i < 1000; i++) {
		struct db_request r;
		CHECK_INT(db_request_next(db, b, &r), 1);
		CHECK(r.priority < last_prio ||
		      (r.priority == last_prio && r.submitted_at > last_at));
		last_prio = r.priority;
		last_at = r.submitted_at;
		CHECK_INT(db_request_claim(db, r.buildrequestid, m, 5000), 0);
	}
	uv_run(&loop, UV_RUN_ONCE);
	clock_gettime(CLOCK_MONOTONIC, &z);
	double ms = (double)(z.tv_sec - a.tv_sec) * 1e3 + (double)(z.tv_nsec - a.tv_nsec) / 1e6;
	printf("# 1000 x (next + claim) over a 20000-request queue: %.1f ms\n", ms);
	/* speed is the bench's business (bench/run); here only correctness */
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(claims_race_between_connections)
{
	char *url;
	struct db *a = open_file(NULL, &url);
	struct db *b = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &b), 0);
	int64_t ma, mb, builder;
	CHECK_INT(db_master_register(a, "a", &ma), 0);
	CHECK_INT(db_master_register(b, "b", &mb), 0);
	CHECK_INT(db_builder_ensure(a, "x", NULL, NULL, &builder), 0);
	struct db_buildset_new bs = {.reason = "r", .submitted_at = 1};
	int64_t bsid, brid;
	CHECK_INT(db_buildset_add(a, &bs, &builder, 1, &bsid, &brid), 0);

	struct db_request ra, rb;
	CHECK_INT(db_request_next(a, builder, &ra), 1);
	CHECK_INT(db_request_next(b, builder, &rb), 1);
	CHECK_INT(ra.buildrequestid, rb.buildrequestid);
	CHECK_INT(db_request_claim(a, brid, ma, 2), 0);
	CHECK_INT(db_request_claim(b, brid, mb, 2), -EBUSY);
	CHECK(strstr(db_errmsg(b), "claimed") != NULL);
	CHECK_INT(db_request_claim(a, brid, ma, 2), -EBUSY);
	CHECK_INT(db_request_claim(a, 9999, ma, 2), KILN_ENOTFOUND);
	struct db_request got;
	CHECK_INT(db_request_get(b, brid, &got), 0);
	CHECK(got.claimed);
	CHECK_INT(db_request_get(b, 9999, &got), KILN_ENOTFOUND);

	int64_t done = -1;
	CHECK_INT(db_request_complete(a, brid, RESULTS_SUCCESS, 3, &done), 0);
	CHECK_INT(done, bsid);
	CHECK_INT(db_request_claim(b, brid, mb, 4), -EBUSY);
	CHECK_INT(db_request_unclaim(b, brid), KILN_ESTATE);
	CHECK_INT(db_request_complete(b, brid, RESULTS_SUCCESS, 3, &done), KILN_ESTATE);
	db_close(a);
	db_close(b);
	free(url);
}

TEST(buildset_completes_with_worst_results)
{
	struct db *db = open_mem();
	int64_t m, b[3];
	CHECK_INT(db_master_register(db, "m", &m), 0);
	CHECK_INT(db_builder_ensure(db, "b0", NULL, NULL, &b[0]), 0);
	CHECK_INT(db_builder_ensure(db, "b1", NULL, NULL, &b[1]), 0);
	CHECK_INT(db_builder_ensure(db, "b2", NULL, NULL, &b[2]), 0);
	json_t *props = json_pack("{s:[i,s], s:[[s],s]}", "n", 1, "Force", "owners", "me", "Force");
	struct db_sourcestamp ss[2] = {{.branch = "main", .revision = "abc", .repository = "r"},
				       {.codebase = "lib"}};
	struct db_buildset_new bs = {.reason = "because",
				     .external_idstring = "ext",
				     .scheduler = "force",
				     .properties = props,
				     .sourcestamps = ss,
				     .nsourcestamps = 2,
				     .priority = 1,
				     .submitted_at = 1795377000.25};
	int64_t bsid, brids[3];
	CHECK_INT(db_buildset_add(db, &bs, b, 3, &bsid, brids), 0);
	CHECK(brids[0] < brids[1] && brids[1] < brids[2]);
	json_t *got;
	CHECK_INT(db_buildset_properties(db, bsid, &got), 0);
	CHECK(json_equal(got, props));
	json_decref(got);
	json_decref(props);
	CHECK_INT(db_buildset_properties(db, 999, &got), KILN_ENOTFOUND);
	int64_t none;
	CHECK_INT(db_buildset_add(db, &bs, b, 0, &none, NULL), -EINVAL);

	json_t *l = list(db, DB_BUILDSETS, NULL);
	json_t *o = json_array_get(l, 0);
	static const char *const keys[] = {"bsid",           "complete",
					   "complete_at",    "external_idstring",
					   "parent_buildid", "parent_relationship",
					   "reason",         "results",
					   "sourcestamps",   "submitted_at"};
	check_keys(o, keys, ARRAY_SIZE(keys));
	CHECK(json_is_null(json_object_get(o, "results")));
	CHECK(json_is_null(json_object_get(o, "complete_at")));
	CHECK_INT(jint(o, "submitted_at"), 1795377000);
	json_t *sss = json_object_get(o, "sourcestamps");
	CHECK_INT(json_array_size(sss), 2);
	static const char *const sskeys[] = {"branch",  "codebase",   "created_at", "patch",
					     "project", "repository", "revision",   "ssid"};
	check_keys(json_array_get(sss, 0), sskeys, ARRAY_SIZE(sskeys));
	CHECK_STR(json_string_value(json_object_get(json_array_get(sss, 0), "branch")), "main");
	CHECK_INT(jint(json_array_get(sss, 0), "created_at"), 1795377000);
	CHECK_STR(json_string_value(json_object_get(json_array_get(sss, 1), "codebase")), "lib");
	json_decref(l);

	int64_t done = -1;
	CHECK_INT(db_request_claim(db, brids[0], m, 10), 0);
	CHECK_INT(db_request_complete(db, brids[0], RESULTS_SUCCESS, 11, &done), 0);
	CHECK_INT(done, 0);
	/* Cancelled while queued: complete, and reads as claimed. */
	CHECK_INT(db_request_complete(db, brids[1], RESULTS_CANCELLED, 12, &done), 0);
	CHECK_INT(done, 0);
	CHECK_INT(db_request_claim(db, brids[2], m, 10), 0);
	CHECK_INT(db_request_complete(db, brids[2], RESULTS_WARNINGS, 13.9, &done), 0);
	CHECK_INT(done, bsid);
	CHECK_INT(db_buildset_complete(db, bsid, 0, 14), KILN_ESTATE);
	CHECK_INT(db_buildset_complete(db, 999, 0, 14), KILN_ENOTFOUND);

	l = list(db, DB_BUILDSETS, NULL);
	o = json_array_get(l, 0);
	CHECK(json_is_true(json_object_get(o, "complete")));
	CHECK_INT(jint(o, "results"), RESULTS_CANCELLED);
	CHECK_INT(jint(o, "complete_at"), 13);
	json_decref(l);

	l = list(db, DB_BUILDREQUESTS, NULL);
	CHECK_INT(json_array_size(l), 3);
	o = json_array_get(l, 1);
	static const char *const rkeys[] = {"builderid",  "buildrequestid", "buildsetid",
					    "claimed",    "claimed_at",     "claimed_by_masterid",
					    "complete",   "complete_at",    "priority",
					    "properties", "results",        "submitted_at",
					    "waited_for"};
	check_keys(o, rkeys, ARRAY_SIZE(rkeys));
	CHECK(json_is_true(json_object_get(o, "claimed")));
	CHECK(json_is_null(json_object_get(o, "claimed_by_masterid")));
	CHECK(json_is_null(json_object_get(o, "properties")));
	CHECK_INT(jint(o, "results"), RESULTS_CANCELLED);
	CHECK_INT(jint(o, "priority"), 1);
	CHECK(json_is_false(json_object_get(o, "waited_for")));
	json_decref(l);
	db_close(db);
}

/* --- builds and steps ------------------------------------------------------------- */

TEST(builds_and_steps)
{
	struct db *db = open_mem();
	struct fixture f;
	fixture_make(db, &f);
	CHECK_INT(f.number, 1);
	int64_t id2, n2;
	CHECK_INT(db_build_add(db, f.builderid, f.brid, f.workerid, f.masterid, 1002, &id2, &n2),
		  0);
	CHECK_INT(n2, 2);
	int64_t b2;
	CHECK_INT(db_builder_ensure(db, "b2", NULL, NULL, &b2), 0);
	int64_t id3, n3;
	CHECK_INT(db_build_add(db, b2, 0, 0, f.masterid, 1003, &id3, &n3), 0);
	CHECK_INT(n3, 1);

	CHECK_INT(db_build_set_state(db, f.buildid, "building"), 0);
	json_t *v = json_integer(7);
	CHECK_INT(db_build_set_property(db, f.buildid, "buildnumber", v, "Build"), 0);
	json_decref(v);
	v = json_pack("[s]", "me");
	CHECK_INT(db_build_set_property(db, f.buildid, "owners", v, "Force"), 0);
	json_decref(v);
	v = json_string("x\"y");
	CHECK_INT(db_build_set_property(db, f.buildid, "odd.name \"q\"", v, "s"), 0);
	json_decref(v);
	CHECK_INT(db_build_set_property(db, f.buildid, "nothing", NULL, "s"), 0);
	v = json_integer(8);
	CHECK_INT(db_build_set_property(db, f.buildid, "buildnumber", v, "Build"), 0);
	CHECK_INT(db_build_set_property(db, 999, "x", v, "s"), KILN_ENOTFOUND);
	json_decref(v);

	int64_t s0, s1, s2, num;
	CHECK_INT(db_step_add(db, f.buildid, "worker_preparation", &s0, &num), 0);
	CHECK_INT(num, 0);
	CHECK_INT(db_step_add(db, f.buildid, "shell", &s1, &num), 0);
	CHECK_INT(num, 1);
	CHECK_INT(db_step_add(db, f.buildid, "shell", &s2, &num), 0);
	CHECK_INT(num, 2);
	CHECK_INT(db_step_add(db, 999, "shell", &s2, &num), KILN_ENOTFOUND);
	CHECK_INT(db_step_start(db, s0, 1001.9), 0);
	CHECK_INT(db_step_set_state(db, s0, "preparing"), 0);
	CHECK_INT(db_step_finish(db, s0, RESULTS_SUCCESS, "worker w0 ready", false, 1002.2), 0);
	CHECK_INT(db_step_finish(db, s0, RESULTS_SUCCESS, NULL, false, 1002.2), KILN_ESTATE);
	CHECK_INT(db_step_finish(db, 999, RESULTS_SUCCESS, NULL, false, 1002.2), KILN_ENOTFOUND);
	CHECK_INT(db_step_start(db, s1, 1003), 0);
	CHECK_INT(db_step_add_url(db, s1, "report", "http://x/\"r\""), 0);
	CHECK_INT(db_step_add_url(db, s1, "two", "http://y"), 0);

	json_t *l = list(db, DB_STEPS, NULL);
	CHECK_INT(json_array_size(l), 3);
	json_t *o = json_array_get(l, 0);
	static const char *const skeys[] = {"buildid",      "complete", "complete_at", "hidden",
					    "name",         "number",   "results",     "started_at",
					    "state_string", "stepid",   "urls"};
	check_keys(o, skeys, ARRAY_SIZE(skeys));
	CHECK_STR(json_string_value(json_object_get(o, "state_string")), "worker w0 ready");
	CHECK_INT(jint(o, "started_at"), 1001);
	CHECK_INT(jint(o, "complete_at"), 1002);
	CHECK_INT(jint(o, "results"), 0);
	o = json_array_get(l, 1);
	CHECK(json_is_null(json_object_get(o, "results")));
	CHECK(json_is_null(json_object_get(o, "complete_at")));
	json_t *urls = json_object_get(o, "urls");
	CHECK_INT(json_array_size(urls), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(urls, 0), "url")),
		  "http://x/\"r\"");
	CHECK_STR(json_string_value(json_object_get(json_array_get(l, 2), "name")), "shell_1");
	CHECK(json_is_null(json_object_get(json_array_get(l, 2), "started_at")));
	json_decref(l);

	l = list(db, DB_BUILDS, NULL);
	CHECK_INT(json_array_size(l), 3);
	o = json_array_get(l, 0);
	static const char *const bkeys[] = {"builderid",  "buildid",      "buildrequestid",
					    "complete",   "complete_at",  "masterid",
					    "number",     "properties",   "results",
					    "started_at", "state_string", "workerid"};
	check_keys(o, bkeys, ARRAY_SIZE(bkeys));
	CHECK(json_is_null(json_object_get(o, "results")));
	CHECK(json_is_false(json_object_get(o, "complete")));
	CHECK_INT(jint(o, "started_at"), 1001);
	CHECK_STR(json_string_value(json_object_get(o, "state_string")), "building");
	json_t *props = json_object_get(o, "properties");
	CHECK_INT(json_integer_value(json_array_get(json_object_get(props, "buildnumber"), 0)), 8);
	CHECK_STR(json_string_value(json_array_get(json_object_get(props, "owners"), 1)), "Force");
	CHECK_STR(json_string_value(json_array_get(json_object_get(props, "odd.name \"q\""), 0)),
		  "x\"y");
	CHECK(json_is_null(json_array_get(json_object_get(props, "nothing"), 0)));
	CHECK(json_is_null(json_object_get(json_array_get(l, 2), "workerid")));
	CHECK(json_is_null(json_object_get(json_array_get(l, 2), "buildrequestid")));
	json_decref(l);

	CHECK_INT(db_build_finish(db, f.buildid, RESULTS_FAILURE, "failed shell", 1010), 0);
	CHECK_INT(db_build_finish(db, f.buildid, RESULTS_FAILURE, NULL, 1010), KILN_ESTATE);
	CHECK_INT(db_build_finish(db, 999, RESULTS_FAILURE, NULL, 1010), KILN_ENOTFOUND);
	CHECK_INT(db_build_set_state(db, 999, "x"), KILN_ENOTFOUND);
	db_close(db);
}

TEST(master_recover_finishes_and_requeues)
{
	struct db *db = open_mem();
	struct fixture f;
	fixture_make(db, &f);
	CHECK_INT(db_worker_set_connected(db, f.workerid, f.masterid), 0);
	int64_t s0, s1, num, logid;
	CHECK_INT(db_step_add(db, f.buildid, "a", &s0, &num), 0);
	CHECK_INT(db_step_finish(db, s0, RESULTS_SUCCESS, NULL, false, 1002), 0);
	CHECK_INT(db_step_add(db, f.buildid, "b", &s1, &num), 0);
	CHECK_INT(db_log_add(db, s1, "stdio", 's', &logid), 0);
	CHECK_INT(db_log_append(db, logid, "ohello\n", 7), 0);

	CHECK_INT(db_master_recover(db, f.masterid, RESULTS_RETRY, "lost master", 2000), 0);
	json_t *l = list(db, DB_BUILDS, NULL);
	json_t *o = json_array_get(l, 0);
	CHECK(json_is_true(json_object_get(o, "complete")));
	CHECK_INT(jint(o, "results"), RESULTS_RETRY);
	CHECK_STR(json_string_value(json_object_get(o, "state_string")), "lost master");
	json_decref(l);
	l = list(db, DB_STEPS, NULL);
	CHECK_INT(jint(json_array_get(l, 0), "results"), RESULTS_SUCCESS);
	CHECK_INT(jint(json_array_get(l, 1), "results"), RESULTS_RETRY);
	json_decref(l);
	struct db_log_info li;
	CHECK_INT(db_log_get(db, logid, &li), 0);
	CHECK(li.complete);
	CHECK_INT(li.num_lines, 1);
	CHECK_INT(db_log_append(db, logid, "x\n", 2), KILN_ESTATE);
	struct db_request r;
	CHECK_INT(db_request_next(db, f.builderid, &r), 1);
	CHECK_INT(r.buildrequestid, f.brid);
	l = list(db, DB_WORKERS, NULL);
	CHECK_INT(json_array_size(json_object_get(json_array_get(l, 0), "connected_to")), 0);
	json_decref(l);
	/* Nothing left to recover: a second run changes nothing. */
	CHECK_INT(db_master_recover(db, f.masterid, RESULTS_RETRY, NULL, 3000), 0);
	db_close(db);
}

/* --- batching on a loop ----------------------------------------------------------- */

static bool count_masters(struct db *db, int want)
{
	int64_t total = -1;
	json_t *items = NULL;
	int r = db_list(db, DB_MASTERS, NULL, &items, &total);
	json_decref(items);
	return r == 0 && total == want;
}

TEST(batch_commits_after_loop_turn)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *url;
	struct db *db = open_file(&loop, &url);
	struct db *other = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &other), 0);

	int64_t id;
	CHECK_INT(db_master_register(db, "m1", &id), 0);
	CHECK_INT(db_master_register(db, "m2", &id), 0);
	CHECK(count_masters(db, 2));    /* the writer sees its batch */
	CHECK(count_masters(other, 0)); /* nobody else does yet */
	uv_run(&loop, UV_RUN_ONCE);     /* one turn: the check handle commits */
	CHECK(count_masters(other, 2));

	/* db_flush commits at once. */
	CHECK_INT(db_master_register(db, "m3", &id), 0);
	CHECK(count_masters(other, 2));
	CHECK_INT(db_flush(db), 0);
	CHECK(count_masters(other, 3));

	/* A failing call inside a batch undoes only itself. */
	CHECK_INT(db_master_register(db, "m4", &id), 0);
	CHECK_INT(db_worker_set_paused(db, 999, true), KILN_ENOTFOUND);
	int64_t bid;
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &bid), 0);
	struct db_buildset_new bs = {.reason = "r", .submitted_at = 1};
	int64_t bad_builder = 4242, bsid, brid;
	CHECK(db_buildset_add(db, &bs, &bad_builder, 1, &bsid, &brid) < 0); /* foreign key */
	uv_run(&loop, UV_RUN_ONCE);
	CHECK(count_masters(other, 4));
	json_t *l = list(other, DB_BUILDSETS, NULL);
	CHECK_INT(json_array_size(l), 0);
	json_decref(l);

	/* db_close commits what is pending, and the loop then ends cleanly. */
	CHECK_INT(db_master_register(db, "m5", &id), 0);
	db_close(db);
	CHECK(count_masters(other, 5));
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
	db_close(other);
	free(url);
}

static int commit_errors;
static void on_commit_error(struct db *db, int r, const char *msg, void *ud)
{
	(void)db;
	(void)r;
	(void)msg;
	(*(int *)ud)++;
}

/* A guard for a loop that must end on its own: an unreferenced timer (it
 * does not keep the loop alive) that stops the loop and says so if the
 * loop is still running after 15 s.  No timing margin: a loop that works
 * ends long before; one that hangs fails here instead of hanging. */
struct loop_guard {
	uv_timer_t timer;
	bool fired;
};

static void on_loop_guard(uv_timer_t *t)
{
	struct loop_guard *g = t->data;
	g->fired = true;
	uv_stop(t->loop);
}

static void loop_guard_start(uv_loop_t *loop, struct loop_guard *g)
{
	g->fired = false;
	uv_timer_init(loop, &g->timer);
	g->timer.data = g;
	uv_timer_start(&g->timer, on_loop_guard, TEST_GUARD_MS, 0);
	uv_unref((uv_handle_t *)&g->timer);
}

static void on_loop_guard_closed(uv_handle_t *h)
{
	h->data = NULL;
}

/* Stops and closes the guard, and runs the loop until it is closed, so the
 * struct may go out of scope right after. */
static void loop_guard_stop(struct loop_guard *g)
{
	uv_timer_stop(&g->timer);
	uv_close((uv_handle_t *)&g->timer, on_loop_guard_closed);
	while (g->timer.data)
		uv_run(g->timer.loop, UV_RUN_NOWAIT);
}

TEST(batch_commits_before_loop_ends)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *url;
	struct db *db = open_file(&loop, &url);
	struct db *other = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &other), 0);
	db_set_commit_error_cb(db, on_commit_error, &commit_errors);
	int64_t id;
	CHECK_INT(db_master_register(db, "m", &id), 0);
	/* No other handle: the loop commits, then ends instead of hanging. */
	struct loop_guard g;
	loop_guard_start(&loop, &g);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(!g.fired);
	loop_guard_stop(&g);
	CHECK(count_masters(other, 1));
	CHECK_INT(commit_errors, 0);
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
	db_close(other);
	free(url);
}

struct timer_ctx {
	struct db *db, *other;
	uv_timer_t write, far;
	uv_prepare_t watch;
	bool written, seen, far_fired;
};

static void on_write_timer(uv_timer_t *t)
{
	struct timer_ctx *c = t->data;
	int64_t id;
	CHECK_INT(db_master_register(c->db, "from-timer", &id), 0);
	c->written = true;
}

/* Before each poll phase: once the other connection sees the write, done. */
static void on_watch_prepare(uv_prepare_t *p)
{
	struct timer_ctx *c = p->data;
	if (!c->written || !count_masters(c->other, 1))
		return;
	c->seen = true;
	uv_prepare_stop(&c->watch);
	uv_timer_stop(&c->far);
}

/* The far timer: if it fires, the commit waited for it (or never came). */
static void on_far_timer(uv_timer_t *t)
{
	struct timer_ctx *c = t->data;
	c->far_fired = true;
	uv_prepare_stop(&c->watch);
}

TEST(batch_from_timer_commits_same_turn)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *url;
	struct timer_ctx c = {0};
	c.db = open_file(&loop, &url);
	CHECK_INT(db_open(NULL, url, tmpdir, &c.other), 0);
	uv_timer_init(&loop, &c.write);
	uv_timer_init(&loop, &c.far);
	uv_prepare_init(&loop, &c.watch);
	c.write.data = c.far.data = c.watch.data = &c;
	/* A write in a timer callback with a far timer pending: the poll phase
	 * must not sleep until that timer before committing.  Events only: the
	 * loop runs until the other connection sees the row (checked before
	 * every poll) or until the far timer fires, which is the failure (a
	 * poll that blocked with the batch open wakes only for it). */
	uv_timer_start(&c.write, on_write_timer, 0, 0);
	uv_timer_start(&c.far, on_far_timer, TEST_GUARD_MS, 0);
	uv_prepare_start(&c.watch, on_watch_prepare);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(c.written);
	CHECK(c.seen);
	CHECK(!c.far_fired);
	uv_close((uv_handle_t *)&c.write, NULL);
	uv_close((uv_handle_t *)&c.far, NULL);
	uv_close((uv_handle_t *)&c.watch, NULL);
	db_close(c.db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
	db_close(c.other);
	free(url);
}

struct commit_err {
	int calls, last_r;
	char msg[256];
};

static void on_commit_error_rec(struct db *db, int r, const char *msg, void *ud)
{
	(void)db;
	struct commit_err *e = ud;
	e->calls++;
	e->last_r = r;
	snprintf(e->msg, sizeof(e->msg), "%s", msg ? msg : "");
}

TEST(fail_commit_injection)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	CHECK_INT(setenv("KILN_TEST_FAIL_COMMIT", "2", 1), 0);
	char *url;
	struct db *db = open_file(&loop, &url);
	CHECK_INT(unsetenv("KILN_TEST_FAIL_COMMIT"), 0);
	struct db *other = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &other), 0);
	struct commit_err e = {0};
	db_set_commit_error_cb(db, on_commit_error_rec, &e);
	int64_t id, b, bu, st, lg;

	/* Commit 1 (the loop's check handle): fine. */
	CHECK_INT(db_master_register(db, "m1", &id), 0);
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &bu), 0);
	CHECK_INT(db_build_add(db, bu, 0, 0, id, 1, &b, NULL), 0);
	CHECK_INT(db_step_add(db, b, "s", &st, NULL), 0);
	CHECK_INT(db_log_add(db, st, "stdio", 's', &lg), 0);
	CHECK_INT(db_log_append(db, lg, "okept\n", 6), 0);
	uv_run(&loop, UV_RUN_ONCE);
	CHECK_INT(e.calls, 0);
	CHECK(count_masters(other, 1));

	/* Commit 2 fails: rolled back, reported through the callback. */
	CHECK_INT(db_master_register(db, "m2", &id), 0);
	CHECK_INT(db_log_append(db, lg, "olost\n", 6), 0);
	uv_run(&loop, UV_RUN_ONCE);
	CHECK_INT(e.calls, 1);
	CHECK(e.last_r < 0);
	CHECK(strstr(e.msg, "KILN_TEST_FAIL_COMMIT") != NULL);
	CHECK(count_masters(other, 1));
	CHECK(count_masters(db, 1)); /* the writer's view is rolled back too */
	struct db_log_info li;
	CHECK_INT(db_log_get(db, lg, &li), 0);
	CHECK_INT(li.num_lines, 1);

	/* Commit 3: fine again, through db_flush. */
	CHECK_INT(db_master_register(db, "m3", &id), 0);
	CHECK_INT(db_flush(db), 0);
	CHECK(count_masters(other, 2));
	CHECK_INT(e.calls, 1);
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);

	/* db_flush returns the injected error, and the callback hears of it
	 * too: the batch it rolled back held every write of the turn, not
	 * only its caller's (slice "faults"). */
	uv_loop_init(&loop);
	CHECK_INT(setenv("KILN_TEST_FAIL_COMMIT", "1", 1), 0);
	CHECK_INT(db_open(&loop, url, tmpdir, &db), 0);
	CHECK_INT(unsetenv("KILN_TEST_FAIL_COMMIT"), 0);
	e = (struct commit_err){0};
	db_set_commit_error_cb(db, on_commit_error_rec, &e);
	CHECK_INT(db_master_register(db, "m4", &id), 0);
	CHECK_INT(db_flush(db), KILN_EDB);
	CHECK(strstr(db_errmsg(db), "KILN_TEST_FAIL_COMMIT") != NULL);
	CHECK_INT(e.calls, 1);
	CHECK(count_masters(other, 2));
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);

	/* Without a loop, each write call is a commit. */
	CHECK_INT(setenv("KILN_TEST_FAIL_COMMIT", "1", 1), 0);
	CHECK_INT(db_open(NULL, url, tmpdir, &db), 0);
	CHECK_INT(unsetenv("KILN_TEST_FAIL_COMMIT"), 0);
	CHECK_INT(db_master_register(db, "m5", &id), KILN_EDB);
	CHECK_INT(db_master_register(db, "m6", &id), 0);
	CHECK(count_masters(other, 3));
	db_close(db);

	/* A value that is not a positive integer is refused. */
	CHECK_INT(setenv("KILN_TEST_FAIL_COMMIT", "x", 1), 0);
	CHECK_INT(db_open(NULL, url, tmpdir, &db), -EINVAL);
	CHECK_INT(unsetenv("KILN_TEST_FAIL_COMMIT"), 0);
	db_close(other);
	free(url);
}

/* Heavy writes on a loop: 1 MB of hard-to-compress log text per turn.
 * Returns the worst time of one turn's commit (log sync + COMMIT, plus any
 * checkpoint that runs on the loop), in ms.  old_way: the loop connection
 * checkpoints itself at commit, as before checkpoints left the loop. */
static double heavy_commit_worst_ms(bool old_way, uint64_t *ret_runs)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct db *db = open_file(&loop, NULL);
	if (old_way)
		sqlite3_wal_autocheckpoint(db->h, 1000); /* replaces the WAL hook */
	int64_t m, bu, b, st, lg;
	CHECK_INT(db_master_register(db, "m", &m), 0);
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &bu), 0);
	CHECK_INT(db_build_add(db, bu, 0, 0, m, 1, &b, NULL), 0);
	CHECK_INT(db_step_add(db, b, "s", &st, NULL), 0);
	CHECK_INT(db_log_add(db, st, "stdio", 's', &lg), 0);
	CHECK_INT(db_flush(db), 0);
	enum { TURNS = 60, LINE = 100, PER_TURN = 1 << 20 };
	char *text = xmalloc(PER_TURN);
	uint64_t x = 88172645463325252ull;
	double worst = 0;
	for (int turn = 0; turn < TURNS; turn++) {
		for (size_t i = 0; i < PER_TURN; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			text[i] = i % LINE == 0          ? 'o'
				  : i % LINE == LINE - 1 ? '\n'
							 : (char)(' ' + x % 94);
		}
		CHECK_INT(db_log_append(db, lg, text, PER_TURN), 0);
		struct timespec a, z;
		clock_gettime(CLOCK_MONOTONIC, &a);
		uv_run(&loop, UV_RUN_NOWAIT); /* the check handle commits */
		clock_gettime(CLOCK_MONOTONIC, &z);
		double ms =
			(double)(z.tv_sec - a.tv_sec) * 1e3 + (double)(z.tv_nsec - a.tv_nsec) / 1e6;
		if (ms > worst)
			worst = ms;
	}
	free(text);
	/* Wait (event-driven, guarded) for a job still running, then check
	 * that everything was kept. */
	struct loop_guard g;
	loop_guard_start(&loop, &g);
	while (db->ckpt_busy && !g.fired)
		uv_run(&loop, UV_RUN_ONCE);
	CHECK(!g.fired);
	loop_guard_stop(&g);
	struct db_log_info li;
	CHECK_INT(db_log_get(db, lg, &li), 0);
	CHECK_INT(li.num_lines,
		  (int64_t)TURNS * (PER_TURN / LINE) + TURNS * (PER_TURN % LINE ? 1 : 0));
	*ret_runs = db->ckpt_runs;
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
	return worst;
}

TEST(checkpoint_off_loop)
{
	uint64_t runs_old = 0, runs_new = 0;
	double old_ms = heavy_commit_worst_ms(true, &runs_old);
	double new_ms = heavy_commit_worst_ms(false, &runs_new);
	printf("# worst commit on the loop, 60 MB of log in 60 turns: %.1f ms with the "
	       "checkpoint on the loop, %.1f ms with it in the thread pool (%llu jobs)\n",
	       old_ms, new_ms, (unsigned long long)runs_new);
	CHECK_INT(runs_old, 0);
	CHECK(runs_new > 0);

	/* db_close while a job may be running waits for it; the loop then ends
	 * with nothing left on it. */
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *url;
	struct db *db = open_file(&loop, &url);
	int64_t id;
	char name[1024];
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "m%d-%0900d", i, i); /* wide rows: many pages */
		CHECK_INT(db_master_register(db, name, &id), 0);
	}
	CHECK_INT(db_flush(db), 0);
	CHECK(db->ckpt_busy); /* the WAL is past the threshold */
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
	struct db *other = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &other), 0);
	CHECK(count_masters(other, 3000));
	db_close(other);
	free(url);
}

/* The size of db's WAL file (0 when there is none). */
static uint64_t wal_bytes(struct db *db)
{
	_cleanup_free_ char *wal = xasprintf("%s-wal", db->path);
	struct stat st;
	return stat(wal, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Issue 13: the checkpoint job truncates a WAL file past its limit, off
 * the loop, while the loop keeps writing (the loop used to do it itself,
 * between writes).  With SQLite 3.40 a checkpoint on a connection that has
 * never read the file is a no-op: the job's connection reads once after
 * opening, else the WAL would never shrink here; and the loop holds its next
 * write while the job truncates (db_ckpt_hold), else a loop writing turn
 * after turn leaves the job no moment to take the write lock.  No timing
 * assertions: the loop writes ~25 KB a turn until the file has shrunk, with
 * a bound on the turns. */
TEST(checkpoint_job_truncates_wal)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *url;
	struct db *db = open_file(&loop, &url);
	CHECK(db->ckpt_enabled);
	db->ckpt_truncate_bytes = 1 << 20; /* 64 MiB in the master */
	enum { ROWS = 25, MAX_TURNS = 3000, AFTER = 20 };
	char name[1024];
	int64_t id;
	int n = 0, turn = 0, after = -1;
	uint64_t prev = 0, peak = 0;
	double worst_turn = 0; /* printed, not checked: the machine's load shows in it */
	for (; turn < MAX_TURNS && (after < 0 || turn < after + AFTER); turn++) {
		struct timespec a, z;
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (int i = 0; i < ROWS; i++, n++) {
			snprintf(name, sizeof(name), "m%d-%0900d", n, n); /* ~1 KB rows */
			CHECK_INT(db_master_register(db, name, &id), 0);
		}
		uv_run(&loop, UV_RUN_NOWAIT); /* commits; a finished job's completion */
		clock_gettime(CLOCK_MONOTONIC, &z);
		double ms =
			(double)(z.tv_sec - a.tv_sec) * 1e3 + (double)(z.tv_nsec - a.tv_nsec) / 1e6;
		if (ms > worst_turn)
			worst_turn = ms;
		uint64_t now = wal_bytes(db);
		if (now > peak)
			peak = now;
		if (after < 0 && now < prev)
			after = turn; /* shrunk: write on a little longer */
		prev = now;
	}
	uint64_t truncations = 0;
	double worst_s = 0;
	db_wal_truncations(db, &truncations, &worst_s);
	printf("# %d turns, %d rows: WAL peak %llu bytes, %llu truncations by the job, the "
	       "longest %.1f ms; the loop's longest turn (writes and commit) %.1f ms\n",
	       turn, n, (unsigned long long)peak, (unsigned long long)truncations, worst_s * 1e3,
	       worst_turn);
	CHECK(after >= 0); /* the file shrank while the loop wrote */
	CHECK(truncations > 0);
	CHECK(peak > db->ckpt_truncate_bytes);
	/* the loop's writes all went in, none lost to the truncations */
	CHECK_INT(db_flush(db), 0);
	CHECK(count_masters(db, n));
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
	struct db *other = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &other), 0);
	CHECK(count_masters(other, n));
	db_close(other);
	free(url);
}

/* --- logs ------------------------------------------------------------------------- */

static int64_t make_log(struct db *db, char type)
{
	struct fixture f;
	fixture_make(db, &f);
	int64_t stepid, num, logid = 0;
	CHECK_INT(db_step_add(db, f.buildid, "s", &stepid, &num), 0);
	CHECK_INT(db_log_add(db, stepid, "stdio", type, &logid), 0);
	return logid;
}

/* Line i of the generated test log: varied lengths, some long. */
static void gen_line(struct buf *b, int64_t i)
{
	int len = (int)(i * 7919 % 300);
	if (i % 997 == 0)
		len = 5000;
	int r = buf_addf(b, "o%08lld:", (long long)i);
	for (int k = 0; k < len && r >= 0; k++)
		r = buf_addch(b, (char)('a' + (i + k) % 26));
	if (r >= 0)
		r = buf_addch(b, '\n');
	if (r < 0)
		TAP_FAIL("gen_line %lld: buffer full", (long long)i);
}

static void check_read(struct db *db, int64_t logid, int64_t first, int64_t n, int64_t total)
{
	struct buf out, want;
	buf_init(&out, 1u << 30);
	buf_init(&want, 1u << 30);
	int64_t count = -1;
	int r = db_log_read(db, logid, first, n, &out, &count);
	if (r < 0)
		TAP_FAIL("db_log_read: %s", db_errmsg(db));
	int64_t expect = first >= total ? 0 : (first + n > total ? total - first : n);
	for (int64_t i = first; i < first + expect; i++)
		gen_line(&want, i);
	if (count != expect || out.len != want.len || memcmp(out.ptr, want.ptr, out.len))
		TAP_FAIL("read [%lld, +%lld): got %lld lines/%zu bytes, want %lld/%zu",
			 (long long)first, (long long)n, (long long)count, out.len,
			 (long long)expect, want.len);
	buf_release(&out);
	buf_release(&want);
}

TEST(log_chunks_and_ranges)
{
	char *url;
	struct db *db = open_file(NULL, &url);
	int64_t logid = make_log(db, 's');
	struct db_log_info li;
	CHECK_INT(db_log_get(db, logid, &li), 0);
	CHECK_INT(li.num_lines, 0);
	CHECK_INT(li.type, 's');
	CHECK(!li.complete);
	check_read(db, logid, 0, 10, 0);

	/* ~6 MB in appends of varied sizes, several lines each. */
	const int64_t total = 40000;
	struct buf b;
	buf_init(&b, 1u << 30);
	int64_t i = 0;
	while (i < total) {
		buf_reset(&b);
		int64_t n = 1 + (i * 31 % 200);
		for (int64_t k = 0; k < n && i < total; k++)
			gen_line(&b, i++);
		CHECK_INT(db_log_append(db, logid, b.ptr, b.len), 0);
	}
	buf_release(&b);
	CHECK_INT(db_log_get(db, logid, &li), 0);
	CHECK_INT(li.num_lines, total);

	check_read(db, logid, 0, 5, total);
	check_read(db, logid, 0, total, total);
	check_read(db, logid, 123, 2000, total);          /* spans chunks */
	check_read(db, logid, total - 1000, 1000, total); /* the tail, in memory */
	check_read(db, logid, total - 3, 10, total);      /* runs past the end */
	check_read(db, logid, total + 5, 10, total);      /* past the end */
	check_read(db, logid, 17000, 0, total);

	/* Chunks hold whole lines, are contiguous and compressed when closed. */
	char *path = xasprintf("%s/%s", tmpdir, url + 7);
	sqlite3 *h;
	CHECK_INT(sqlite3_open(path, &h), SQLITE_OK);
	sqlite3_stmt *s;
	CHECK_INT(sqlite3_prepare_v2(h,
				     "SELECT first_line, last_line, compressed, length(content) "
				     "FROM logchunks WHERE logid = ?1 ORDER BY first_line",
				     -1, &s, NULL),
		  SQLITE_OK);
	sqlite3_bind_int64(s, 1, logid);
	int64_t next = 0, chunks = 0, uncompressed = 0;
	while (sqlite3_step(s) == SQLITE_ROW) {
		CHECK_INT(sqlite3_column_int64(s, 0), next);
		next = sqlite3_column_int64(s, 1) + 1;
		chunks++;
		if (!sqlite3_column_int(s, 2))
			uncompressed++;
	}
	sqlite3_finalize(s);
	CHECK_INT(next, total); /* committed (no loop): the tail row is there too */
	CHECK(chunks > 50);
	CHECK_INT(uncompressed, 1);

	/* Another connection reads the same lines. */
	struct db *other = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &other), 0);
	check_read(other, logid, total - 1000, 1000, total);
	check_read(other, logid, 5, 30000, total);

	/* Finish: the tail is compressed, and the log is closed to appends. */
	CHECK_INT(db_log_finish(db, logid), 0);
	CHECK_INT(db_log_finish(db, logid), 0);
	CHECK_INT(db_log_append(db, logid, "ox\n", 3), KILN_ESTATE);
	CHECK_INT(db_log_get(db, logid, &li), 0);
	CHECK(li.complete);
	CHECK_INT(li.num_lines, total);
	check_read(other, logid, total - 1000, 1000, total);
	check_read(db, logid, 0, total, total);
	CHECK_INT(sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM logchunks WHERE compressed = 0", -1,
				     &s, NULL),
		  SQLITE_OK);
	CHECK_INT(sqlite3_step(s), SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(s, 0), 0);
	sqlite3_finalize(s);

	/* The range read is a seek on (logid, first_line). */
	char *plan;
	CHECK_INT(
		db_sql_explain(db,
			       "SELECT first_line, last_line, compressed, content FROM logchunks "
			       "WHERE logid = 1 AND first_line >= COALESCE((SELECT first_line FROM "
			       "logchunks WHERE logid = 1 AND first_line <= 5 ORDER BY first_line "
			       "DESC LIMIT 1), 0) AND first_line < 9 ORDER BY first_line",
			       &plan),
		0);
	CHECK(strstr(plan, "SEARCH logchunks USING INDEX logchunks_first_line") != NULL);
	if (strstr(plan, "TEMP B-TREE"))
		printf("# plan: %s", plan);
	CHECK(strstr(plan, "TEMP B-TREE") == NULL);
	free(plan);

	sqlite3_close(h);
	free(path);
	db_close(other);
	db_close(db);
	free(url);
}

TEST(log_edge_cases)
{
	struct db *db = open_mem();
	int64_t logid = make_log(db, 't');
	/* A last line without '\n' is completed; an empty append is nothing. */
	CHECK_INT(db_log_append(db, logid, "a\nb", 3), 0);
	CHECK_INT(db_log_append(db, logid, "", 0), 0);
	/* A line longer than a chunk gets a chunk of its own. */
	size_t big = KILN_LOG_CHUNK_BYTES * 2 + 10;
	char *p = xmalloc(big + 1);
	memset(p, 'x', big);
	p[big - 1] = '\n';
	CHECK_INT(db_log_append(db, logid, p, big), 0);
	CHECK_INT(db_log_append(db, logid, "c\n", 2), 0);
	struct buf out;
	buf_init(&out, 1u << 20);
	int64_t count;
	CHECK_INT(db_log_read(db, logid, 0, 2, &out, &count), 0);
	CHECK_INT(count, 2);
	CHECK_STR(out.ptr, "a\nb\n");
	buf_reset(&out);
	CHECK_INT(db_log_read(db, logid, 2, 2, &out, &count), 0);
	CHECK_INT(count, 2);
	CHECK_INT(out.len, big + 2);
	CHECK(memcmp(out.ptr, p, big) == 0);
	CHECK_STR(out.ptr + big, "c\n");
	free(p);

	/* A capped output keeps whole lines and says so. */
	struct buf small;
	buf_init(&small, 3);
	CHECK_INT(db_log_read(db, logid, 0, 4, &small, &count), -E2BIG);
	CHECK_INT(count, 1);
	CHECK_STR(small.ptr, "a\n");
	buf_release(&small);

	CHECK_INT(db_log_read(db, 999, 0, 4, &out, &count), KILN_ENOTFOUND);
	CHECK_INT(db_log_read(db, logid, -1, 4, &out, &count), -EINVAL);
	CHECK_INT(db_log_append(db, 999, "x\n", 2), KILN_ENOTFOUND);
	struct db_log_info li;
	CHECK_INT(db_log_get(db, 999, &li), KILN_ENOTFOUND);

	/* Names: unique per step, slugged, typed. */
	CHECK_INT(db_log_get(db, logid, &li), 0);
	int64_t l2;
	CHECK_INT(db_log_add(db, li.stepid, "stdio", 's', &l2), -EEXIST);
	CHECK_INT(db_log_add(db, li.stepid, "err.text", 'x', &l2), -EINVAL);
	CHECK_INT(db_log_add(db, li.stepid, "err.text", 'h', &l2), 0);
	CHECK_INT(db_log_add(db, 999, "x", 's', &l2), KILN_ENOTFOUND);
	buf_release(&out);
	db_close(db);
}

/* A log left open by a stopped master continues where it was: the tail is
 * reloaded from its uncompressed row. */
TEST(log_reopen_continues)
{
	char *url;
	struct db *db = open_file(NULL, &url);
	int64_t logid = make_log(db, 's');
	struct buf b;
	buf_init(&b, 1u << 30);
	int64_t n = 0;
	while (b.len < KILN_LOG_CHUNK_BYTES + 1000)
		gen_line(&b, n++);
	CHECK_INT(db_log_append(db, logid, b.ptr, b.len), 0);
	db_close(db);

	CHECK_INT(db_open(NULL, url, tmpdir, &db), 0);
	check_read(db, logid, 0, n, n);
	buf_reset(&b);
	int64_t first = n;
	while (n < first + 500)
		gen_line(&b, n++);
	CHECK_INT(db_log_append(db, logid, b.ptr, b.len), 0);
	check_read(db, logid, 0, n, n);
	CHECK_INT(db_log_finish(db, logid), 0);
	db_close(db);

	CHECK_INT(db_open(NULL, url, tmpdir, &db), 0);
	check_read(db, logid, 0, n, n);
	struct db_log_info li;
	CHECK_INT(db_log_get(db, logid, &li), 0);
	CHECK_INT(li.num_lines, n);
	CHECK(li.complete);
	db_close(db);
	buf_release(&b);
	free(url);
}

TEST(log_cap_marker)
{
	struct db *db = open_mem();
	db_set_log_cap(db, 100);
	int64_t logid = make_log(db, 's');
	CHECK_INT(db_log_append(db, logid, "o0123456789012345678901234567890123456789\n", 42), 0);
	CHECK_INT(db_log_append(db, logid,
				"o0123456789012345678901234567890123456789\n"
				"oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				84),
		  0);
	CHECK_INT(db_log_append(db, logid, "odropped\n", 9), 0);
	struct buf out;
	buf_init(&out, 1u << 20);
	int64_t count;
	CHECK_INT(db_log_read(db, logid, 0, 100, &out, &count), 0);
	CHECK_INT(count, 3);
	CHECK(strstr(out.ptr, "\nh[log truncated: over 100 bytes]\n") != NULL);
	CHECK(strstr(out.ptr, "dropped") == NULL);
	struct db_log_info li;
	CHECK_INT(db_log_get(db, logid, &li), 0);
	CHECK_INT(li.num_lines, 3);

	/* Text logs get the marker without a stream prefix. */
	struct db_log_info sli = li;
	int64_t tlog;
	CHECK_INT(db_log_add(db, sli.stepid, "t", 't', &tlog), 0);
	char big[300];
	memset(big, 'y', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	CHECK_INT(db_log_append(db, tlog, big, sizeof(big)), 0);
	buf_reset(&out);
	CHECK_INT(db_log_read(db, tlog, 0, 100, &out, &count), 0);
	CHECK_INT(count, 1);
	CHECK_STR(out.ptr, "[log truncated: over 100 bytes]\n");
	buf_release(&out);
	db_close(db);
}

TEST(log_batched_on_loop)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *url;
	struct db *db = open_file(&loop, &url);
	int64_t logid = make_log(db, 's');
	uv_run(&loop, UV_RUN_ONCE);
	struct db *other = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &other), 0);

	struct buf b;
	buf_init(&b, 1u << 30);
	int64_t n = 0;
	for (int turn = 0; turn < 3; turn++) {
		for (int k = 0; k < 300; k++) {
			buf_reset(&b);
			for (int j = 0; j < 3; j++)
				gen_line(&b, n++);
			CHECK_INT(db_log_append(db, logid, b.ptr, b.len), 0);
		}
		/* The writer reads every line at once, committed or not... */
		check_read(db, logid, 0, n, n);
		check_read(db, logid, n - 10, 10, n);
		json_t *l = list(db, DB_LOGS, NULL);
		CHECK_INT(jint(json_array_get(l, 0), "num_lines"), n);
		json_decref(l);
		/* ...and after the turn's commit, so does everyone else. */
		uv_run(&loop, UV_RUN_ONCE);
		check_read(other, logid, 0, n, n);
		struct db_log_info li;
		CHECK_INT(db_log_get(other, logid, &li), 0);
		CHECK_INT(li.num_lines, n);
	}
	buf_release(&b);
	CHECK_INT(db_log_finish(db, logid), 0);
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
	json_t *l = list(other, DB_LOGS, NULL);
	json_t *o = json_array_get(l, 0);
	/* Buildbot's keys, and Kiln's content_removed (slice "retention") */
	static const char *const keys[] = {
		"complete", "content_removed", "logid", "name", "num_lines",
		"slug",     "stepid",          "type"};
	check_keys(o, keys, ARRAY_SIZE(keys));
	CHECK(json_is_true(json_object_get(o, "complete")));
	CHECK_STR(json_string_value(json_object_get(o, "type")), "s");
	json_decref(l);
	db_close(other);
	free(url);
}

/* 50 MB of 100-byte lines in 64 KiB appends on a loop, one commit per ~1 MB
 * (a busy master's turn), then the last 1,000 lines: prints the numbers. */
static int chunks_where(struct db *db, int64_t logid, int compressed)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(db->h,
			       "SELECT COUNT(*) FROM logchunks WHERE logid = ?1 AND "
			       "compressed = ?2",
			       -1, &s, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(s, 1, logid);
	sqlite3_bind_int(s, 2, compressed);
	int n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	return n;
}

/* Runs the loop until no compression job is pending and the batch has
 * committed, or the guard fires. */
static void wait_zjobs(uv_loop_t *loop, struct db *db)
{
	struct loop_guard g;
	loop_guard_start(loop, &g);
	while ((db->zjobs > 0 || db->in_txn) && !g.fired)
		uv_run(loop, UV_RUN_ONCE);
	CHECK(!g.fired);
	loop_guard_stop(&g);
}

/* On a loop, full chunks are written uncompressed and compressed in the
 * thread pool; a later batch swaps the frame in.  A chunk whose swap never
 * happened (db closed first) stays readable and is not taken for the tail. */
TEST(log_compress_off_loop)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *url;
	struct db *db = open_file(&loop, &url);
	int64_t lg = make_log(db, 's');
	struct buf text;
	buf_init(&text, 1u << 24);
	const int64_t n1 = 4000; /* about 4 chunks */
	for (int64_t i = 0; i < n1; i++)
		gen_line(&text, i);
	CHECK_INT(db_log_append(db, lg, text.ptr, text.len), 0);
	CHECK(db->zjobs > 0);
	check_read(db, lg, 0, n1, n1); /* readable at once, uncompressed */
	wait_zjobs(&loop, db);
	int closed = chunks_where(db, lg, 1);
	CHECK(closed >= 2);
	CHECK_INT(chunks_where(db, lg, 0), 1); /* the tail */
	check_read(db, lg, 0, n1, n1);
	CHECK_INT(db_log_finish(db, lg), 0);
	wait_zjobs(&loop, db);
	CHECK_INT(chunks_where(db, lg, 0), 0);
	check_read(db, lg, 0, n1, n1);

	/* Closed while jobs are pending: their chunks stay uncompressed. */
	int64_t lg2 = make_log(db, 's');
	CHECK_INT(db_log_append(db, lg2, text.ptr, text.len), 0);
	CHECK(db->zjobs > 0);
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);

	uv_loop_init(&loop);
	CHECK_INT(db_open(&loop, url, tmpdir, &db), 0);
	int before = chunks_where(db, lg2, 0);
	CHECK(before >= 2); /* the closed chunks whose frames never landed, and the tail */
	buf_reset(&text);
	for (int64_t i = n1; i < 2 * n1; i++)
		gen_line(&text, i);
	CHECK_INT(db_log_append(db, lg2, text.ptr, text.len), 0);
	check_read(db, lg2, 0, 2 * n1, 2 * n1);
	CHECK_INT(db_log_finish(db, lg2), 0);
	wait_zjobs(&loop, db);
	check_read(db, lg2, 0, 2 * n1, 2 * n1);
	/* Only the chunks orphaned by the close are still uncompressed. */
	CHECK_INT(chunks_where(db, lg2, 0), before - 1);
	buf_release(&text);
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
	free(url);
}

/* --- the cost of a step (slice "perfsteps") ------------------------------------ */

/* Checks that log lg holds exactly want. */
static void check_log_text(struct db *db, int64_t lg, const char *want)
{
	struct buf out;
	buf_init(&out, 1u << 20);
	int64_t count = 0;
	CHECK_INT(db_log_read(db, lg, 0, 1000, &out, &count), 0);
	CHECK_STR(out.ptr, want);
	buf_release(&out);
}

/* A step as it starts is one write: its row with its number, a unique name,
 * started_at and state; a missing build leaves nothing. */
TEST(step_begin_one_write)
{
	struct db *db = open_mem();
	struct fixture f;
	fixture_make(db, &f);
	int64_t s0, s1, s2, num;
	CHECK_INT(db_step_begin(db, f.buildid, "compile", 1003.5, "'make all'", &s0, &num), 0);
	CHECK_INT(num, 0);
	CHECK_INT(db_step_begin(db, f.buildid, "compile", 1004.5, NULL, &s1, &num), 0);
	CHECK_INT(num, 1);
	CHECK_INT(db_step_begin(db, 999, "compile", 1005, "x", &s2, NULL), KILN_ENOTFOUND);
	CHECK_INT(db_step_begin(db, f.buildid, "", 1005, "x", &s2, NULL), -EINVAL);
	json_t *l = list(db, DB_STEPS, NULL);
	CHECK_INT(json_array_size(l), 2);
	json_t *o = json_array_get(l, 0);
	CHECK_STR(json_string_value(json_object_get(o, "name")), "compile");
	CHECK_STR(json_string_value(json_object_get(o, "state_string")), "'make all'");
	CHECK_INT(jint(o, "started_at"), 1003);
	CHECK(json_is_false(json_object_get(o, "complete")));
	o = json_array_get(l, 1);
	CHECK_STR(json_string_value(json_object_get(o, "name")), "compile_1");
	CHECK_STR(json_string_value(json_object_get(o, "state_string")), "");
	CHECK_INT(jint(o, "stepid"), s1);
	json_decref(l);
	db_close(db);
}

/* Group commit (slice "steps20"): writes made by a turn's I/O callbacks (here
 * an async handle's) keep the batch open while the next turns write too, up
 * to KILN_DB_GROUP_TURNS turns; the first turn without such writes commits
 * it.  A failed grouped commit is reported as a per-turn one was. */
struct group_writer {
	struct db *db;
	uv_async_t async;
	int n;     /* masters registered */
	int turns; /* turns left that write (and wake the next) */
};

static void group_writer_cb(uv_async_t *h)
{
	struct group_writer *g = h->data;
	char name[32];
	int64_t id;
	snprintf(name, sizeof(name), "g%d", ++g->n);
	CHECK_INT(db_master_register(g->db, name, &id), 0);
	if (--g->turns > 0)
		uv_async_send(&g->async);
}

TEST(group_commit_across_writing_turns)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	CHECK_INT(setenv("KILN_TEST_FAIL_COMMIT", "3", 1), 0);
	char *url;
	struct db *db = open_file(&loop, &url);
	CHECK_INT(unsetenv("KILN_TEST_FAIL_COMMIT"), 0);
	struct commit_err e = {0};
	db_set_commit_error_cb(db, on_commit_error_rec, &e);
	struct db *other = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &other), 0);
	struct group_writer g = {.db = db};
	uv_async_init(&loop, &g.async, group_writer_cb);
	g.async.data = &g;

	/* UV_RUN_NOWAIT: the async handle keeps the loop alive, and a turn
	 * with nothing to do must not block */
	/* one writing turn: still open after it, committed after a quiet one */
	g.turns = 1;
	uv_async_send(&g.async);
	uv_run(&loop, UV_RUN_NOWAIT);
	CHECK_INT(g.n, 1);
	CHECK(db->in_txn);
	CHECK(count_masters(other, 0));
	uv_run(&loop, UV_RUN_NOWAIT);
	CHECK(!db->in_txn);
	CHECK(count_masters(other, 1)); /* commit 1 */

	/* writing turn after turn: committed within KILN_DB_GROUP_TURNS turns
	 * (or KILN_DB_GROUP_MS, whichever first), not after every turn */
	g.turns = 3 * KILN_DB_GROUP_TURNS;
	uv_async_send(&g.async);
	int turns = 0, commits = 0, longest = 0, run = 0;
	while (g.turns > 0 && turns < 10 * KILN_DB_GROUP_TURNS) {
		uv_run(&loop, UV_RUN_NOWAIT);
		turns++;
		run++;
		if (!db->in_txn) {
			commits++;
			longest = run > longest ? run : longest;
			run = 0;
		}
	}
	CHECK_INT(g.turns, 0);
	CHECK(commits >= 1);    /* commit 2, at least */
	CHECK(commits < turns); /* grouped */
	CHECK(longest <= KILN_DB_GROUP_TURNS);
	uv_run(&loop, UV_RUN_NOWAIT); /* the quiet turn: the rest */
	CHECK(!db->in_txn);
	CHECK(count_masters(other, 1 + 3 * KILN_DB_GROUP_TURNS) || e.calls == 1);

	/* a grouped commit that fails is rolled back and reported once */
	int before = e.calls;
	int64_t id;
	if (before == 0) {
		/* commit 3 not reached yet (at most 2 grouped commits above) */
		g.turns = 2;
		uv_async_send(&g.async);
		uv_run(&loop, UV_RUN_NOWAIT);
		uv_run(&loop, UV_RUN_NOWAIT);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	CHECK_INT(e.calls, 1);
	CHECK(strstr(e.msg, "KILN_TEST_FAIL_COMMIT") != NULL);
	CHECK(!db->in_txn);
	CHECK_INT(db_master_register(db, "after", &id), 0);
	CHECK_INT(db_flush(db), 0);
	uv_close((uv_handle_t *)&g.async, NULL);
	db_close(db);
	db_close(other);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
	free(url);
}

/* Step numbers are remembered per build (slice "steps20": no MAX() per
 * step): builds whose steps interleave keep their own sequences, and a
 * rolled-back batch takes its numbers back with it. */
TEST(step_numbers_interleaved_and_rolled_back)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	CHECK_INT(setenv("KILN_TEST_FAIL_COMMIT", "2", 1), 0);
	char *url;
	struct db *db = open_file(&loop, &url);
	CHECK_INT(unsetenv("KILN_TEST_FAIL_COMMIT"), 0);
	struct commit_err e = {0};
	db_set_commit_error_cb(db, on_commit_error_rec, &e);
	int64_t mid, bu, b[3], st, num;
	CHECK_INT(db_master_register(db, "m1", &mid), 0);
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &bu), 0);
	for (int i = 0; i < 3; i++)
		CHECK_INT(db_build_add(db, bu, 0, 0, mid, 1, &b[i], NULL), 0);
	/* 3 builds, 2 rounds: each build's numbers are 0, 1 */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 3; i++) {
			CHECK_INT(db_step_begin(db, b[i], "s", 1000, NULL, &st, &num), 0);
			CHECK_INT(num, round);
		}
	}
	/* a failed step of a build sharing b[0]'s slot leaves b[0]'s number; a
	 * step of a name the build has takes the next number and a suffix */
	CHECK_INT(db_step_begin(db, b[0] + DB_STEP_NEXT_SLOTS, "s", 1000, NULL, &st, &num),
		  KILN_ENOTFOUND);
	CHECK_INT(db_step_begin(db, b[0], "s", 1000, NULL, &st, &num), 0);
	CHECK_INT(num, 2);
	uv_run(&loop, UV_RUN_ONCE); /* commit 1 */
	CHECK_INT(e.calls, 0);
	/* commit 2 fails: the steps it held are gone, and so are their numbers */
	CHECK_INT(db_step_begin(db, b[1], "t", 1000, NULL, &st, &num), 0);
	CHECK_INT(num, 2);
	CHECK_INT(db_step_begin(db, b[1], "u", 1000, NULL, &st, &num), 0);
	CHECK_INT(num, 3);
	uv_run(&loop, UV_RUN_ONCE);
	CHECK_INT(e.calls, 1);
	CHECK_INT(db_step_begin(db, b[1], "t", 1000, NULL, &st, &num), 0);
	CHECK_INT(num, 2);
	char bid[32];
	snprintf(bid, sizeof(bid), "%lld", (long long)b[1]);
	const char *vals[] = {bid};
	struct db_filter f = {"buildid", DB_OP_EQ, vals, 1};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = -1};
	json_t *l = list(db, DB_STEPS, &q);
	CHECK_INT(json_array_size(l), 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(l, 1), "name")), "s_1");
	CHECK_STR(json_string_value(json_object_get(json_array_get(l, 2), "name")), "t");
	json_decref(l);
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
	free(url);
}

/* A write of one statement has no savepoint: when it fails on a loop, SQLite
 * undoes that statement only, and the rest of the batch still commits. */
TEST(write1_failure_keeps_batch)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *url;
	struct db *db = open_file(&loop, &url);
	struct fixture f;
	fixture_make(db, &f);
	int64_t s0, lg, lg2;
	CHECK_INT(db_step_begin(db, f.buildid, "a", 1003, "running", &s0, NULL), 0);
	CHECK_INT(db_log_add(db, s0, "stdio", 's', &lg), 0);
	CHECK(db->in_txn);
	CHECK_INT(db_log_add(db, s0, "stdio", 's', &lg2), -EEXIST);                     /* UNIQUE */
	CHECK_INT(db_step_set_state(db, 999, "x"), KILN_ENOTFOUND);                     /* no row */
	CHECK_INT(db_step_begin(db, 999, "b", 1003, NULL, &lg2, NULL), KILN_ENOTFOUND); /* FK */
	CHECK(db->in_txn); /* the batch is still open */
	CHECK_INT(db_log_append(db, lg, "ohello\n", 7), 0);
	CHECK_INT(db_step_set_state(db, s0, "still running"), 0);
	uv_run(&loop, UV_RUN_NOWAIT); /* the check handle commits the batch */
	CHECK(!db->in_txn);
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);

	/* Another open sees everything written around the failures. */
	CHECK_INT(db_open(NULL, url, tmpdir, &db), 0);
	json_t *l = list(db, DB_STEPS, NULL);
	CHECK_INT(json_array_size(l), 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(l, 0), "state_string")),
		  "still running");
	json_decref(l);
	check_log_text(db, lg, "ohello\n");
	db_close(db);
	free(url);
}

/* A log added on a loop has its tail in memory at once: its first append
 * reads no row.  A rolled-back batch drops it with the row. */
TEST(log_add_starts_tail)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct db *db = open_file(&loop, NULL);
	struct fixture f;
	fixture_make(db, &f);
	int64_t s0, lg;
	CHECK_INT(db_step_begin(db, f.buildid, "a", 1003, NULL, &s0, NULL), 0);
	CHECK_INT(db_log_add(db, s0, "stdio", 's', &lg), 0);
	CHECK(db->tails != NULL && db->tails->logid == lg && db->tails->num_lines == 0);
	CHECK_INT(db_log_append(db, lg, "oone\notwo\n", 10), 0);
	struct db_log_info li;
	CHECK_INT(db_log_get(db, lg, &li), 0);
	CHECK_INT(li.num_lines, 2);
	uv_run(&loop, UV_RUN_NOWAIT);
	CHECK(!db->in_txn);
	check_log_text(db, lg, "oone\notwo\n");
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
}

/* A finished log's short last chunk is stored as it is, in the finishing
 * write (no compression job, no second commit); a long one is compressed. */
TEST(log_short_tail_stays_raw)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct db *db = open_file(&loop, NULL);
	int64_t lg = make_log(db, 's');
	CHECK_INT(db_log_append(db, lg, "oecho 1 none\n", 13), 0);
	CHECK_INT(db_log_append(db, lg, "hprogram finished with exit code 0\n", 35), 0);
	CHECK_INT(db_log_finish(db, lg), 0);
	CHECK_INT(db->zjobs, 0);
	wait_zjobs(&loop, db);
	CHECK_INT(chunks_where(db, lg, 1), 0);
	CHECK_INT(chunks_where(db, lg, 0), 1);
	struct db_log_info li;
	CHECK_INT(db_log_get(db, lg, &li), 0);
	CHECK(li.complete);
	CHECK_INT(li.num_lines, 2);
	check_log_text(db, lg, "oecho 1 none\nhprogram finished with exit code 0\n");

	/* just under the threshold: raw; at it: compressed (off the loop) */
	struct buf text;
	buf_init(&text, 1u << 20);
	int64_t lg2 = make_log(db, 't'), lg3 = make_log(db, 't');
	while (text.len + 100 < KILN_LOG_RAW_TAIL_BYTES)
		CHECK_INT(buf_adds(&text, "0123456789012345678901234567890123456789012345678\n"),
			  0);
	CHECK_INT(db_log_append(db, lg2, text.ptr, text.len), 0);
	while (text.len < KILN_LOG_RAW_TAIL_BYTES)
		CHECK_INT(buf_adds(&text, "0123456789012345678901234567890123456789012345678\n"),
			  0);
	CHECK_INT(db_log_append(db, lg3, text.ptr, text.len), 0);
	CHECK_INT(db_log_finish(db, lg2), 0);
	CHECK_INT(db_log_finish(db, lg3), 0);
	wait_zjobs(&loop, db);
	CHECK_INT(chunks_where(db, lg2, 0), 1);
	CHECK_INT(chunks_where(db, lg3, 0), 0);
	CHECK_INT(chunks_where(db, lg3, 1), 1);
	int64_t count;
	struct buf out;
	buf_init(&out, 1u << 20);
	CHECK_INT(db_log_read(db, lg3, 0, 1000, &out, &count), 0);
	CHECK_INT(out.len, text.len);
	CHECK(memcmp(out.ptr, text.ptr, text.len) == 0);
	buf_release(&out);
	buf_release(&text);
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(log_50mb_throughput)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *url;
	struct db *db = open_file(&loop, &url);
	int64_t logid = make_log(db, 's');
	uv_run(&loop, UV_RUN_ONCE);

	const size_t line = 100, per = (64u << 10) / line, total_bytes = 50u << 20;
	char *blk = xmalloc(per * line);
	/* Compiler-like text: words from a small vocabulary in a random
	 * order, so zstd works about as hard as on real output. */
	static const char *const words[] = {
		"gcc",   "-O2",        "-c", "src/main.c", "warning:", "unused",  "variable",
		"'x'",   "[-Wunused]", "ok", "PASS:",      "test_",    "0x7ffd",  "/usr/include",
		"error", "linking",    "CC", "LD",         "done",     "make[2]:"};
	uint32_t rnd = 12345;
	for (size_t i = 0; i < per; i++) {
		char *l = blk + i * line;
		size_t k = 1;
		l[0] = 'o';
		while (k < line - 1) {
			rnd = rnd * 1103515245u + 12345u;
			const char *w = words[(rnd >> 16) % ARRAY_SIZE(words)];
			for (size_t j = 0; w[j] && k < line - 1; j++)
				l[k++] = w[j];
			if (k < line - 1)
				l[k++] = ' ';
		}
		l[line - 1] = '\n';
	}
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	uint64_t t0 = clock_mono_ms();
	size_t done = 0;
	int64_t lines = 0;
	for (int k = 0; done < total_bytes; k++) {
		CHECK_INT(db_log_append(db, logid, blk, per * line), 0);
		done += per * line;
		lines += (int64_t)per;
		if (k % 16 == 15)
			uv_run(&loop, UV_RUN_ONCE);
	}
	uv_run(&loop, UV_RUN_ONCE);
	uint64_t ms = clock_mono_ms() - t0;
	double mbs = (double)done / (1 << 20) / ((double)(ms ? ms : 1) / 1000.0);
	printf("# 50 MB log append: %llu ms (%.0f MB/s)\n", (unsigned long long)ms, mbs);
	/* Memory stays flat: the peak grows by far less than the log. */
	getrusage(RUSAGE_SELF, &ru1);
	long grew_kb = ru1.ru_maxrss - ru0.ru_maxrss;
	printf("# peak RSS %ld KiB, grew by %ld KiB while appending 50 MB\n", ru1.ru_maxrss,
	       grew_kb);
#ifndef __SANITIZE_ADDRESS__
	CHECK(grew_kb < 16 * 1024);
#endif

	struct db *other = NULL;
	CHECK_INT(db_open(NULL, url, tmpdir, &other), 0);
	struct buf out;
	buf_init(&out, 1u << 30);
	int64_t count;
	t0 = clock_mono_ms();
	struct timespec a, z;
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK_INT(db_log_read(other, logid, lines - 1000, 1000, &out, &count), 0);
	clock_gettime(CLOCK_MONOTONIC, &z);
	double read_ms =
		(double)(z.tv_sec - a.tv_sec) * 1e3 + (double)(z.tv_nsec - a.tv_nsec) / 1e6;
	printf("# last 1000 lines of the 50 MB log: %.2f ms\n", read_ms);
	CHECK_INT(count, 1000);
	CHECK_INT(out.len, 1000 * line);
	struct db_log_info li;
	CHECK_INT(db_log_get(other, logid, &li), 0);
	CHECK_INT(li.num_lines, lines);
	buf_release(&out);
	free(blk);
	db_close(other);
	db_close(db);
	loop_drain(&loop);
	CHECK_INT(uv_loop_close(&loop), 0);
	free(url);
}

/* --- db_list ---------------------------------------------------------------------- */

struct listdb {
	struct db *db;
	struct fixture f;
	int64_t b2;
};

/* Builds: b0 #1 running, then for b0 and b2 finished builds with results. */
static void listdb_make(struct listdb *L)
{
	L->db = open_mem();
	fixture_make(L->db, &L->f);
	CHECK_INT(db_builder_ensure(L->db, "b2", NULL, NULL, &L->b2), 0);
	int results[] = {0, 2, 4, 6, 0, 1};
	for (int i = 0; i < 6; i++) {
		int64_t id, n;
		int64_t builder = i % 2 ? L->b2 : L->f.builderid;
		CHECK_INT(db_build_add(L->db, builder, L->f.brid, L->f.workerid, L->f.masterid,
				       2000 + i * 10, &id, &n),
			  0);
		const char *state = results[i] == 6 ? "cancelled (stopped)" : "finished";
		CHECK_INT(db_build_finish(L->db, id, results[i], state, 2000 + i * 10 + 5.5), 0);
	}
}

static json_t *list_q(struct db *db, enum db_resource res, const struct db_filter *f, size_t nf,
		      const char *const *order, size_t no, int64_t limit, int64_t offset,
		      int64_t *total)
{
	struct db_query q = {f, nf, order, no, limit, offset};
	json_t *items = NULL;
	int r = db_list(db, res, &q, &items, total);
	if (r < 0)
		TAP_FAIL("db_list: %s (%s)", err_str(r), db_errmsg(db));
	return items ? items : json_array();
}

/* The ids (buildid etc.) of a listing, as "1,2,3". */
static char *ids_of(json_t *items, const char *key)
{
	struct buf b;
	buf_init(&b, 1u << 16);
	size_t i;
	json_t *o;
	json_array_foreach(items, i, o) if (buf_addf(&b, "%s%lld", i ? "," : "",
						     (long long)json_integer_value(
							     json_object_get(o, key))) < 0) break;
	json_decref(items);
	if (buf_error(&b) < 0) {
		TAP_FAIL("ids_of '%s': list too long", key);
		buf_release(&b);
		return xstrdup("(too long)");
	}
	return buf_detach(&b, NULL);
}

#define CHECK_IDS(items, key, want)                                                                \
	do {                                                                                       \
		char *got_ = ids_of((items), (key));                                               \
		CHECK_STR(got_, (want));                                                           \
		free(got_);                                                                        \
	} while (0)

/* Try patches are served as Buildbot serves them: sourcestamps' "patch"
 * is {author, body, comment, level, patchid, subdir} or null. */
TEST(sourcestamp_patch_listed)
{
	struct db *db = open_mem();
	int64_t bu, bsid, brid, bsid2, brid2;
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &bu), 0);
	struct db_sourcestamp ss = {.branch = "main",
				    .revision = "abc",
				    .repository = "r",
				    .project = "",
				    .codebase = ""};
	struct db_buildset_new bs = {
		.reason = "try", .sourcestamps = &ss, .nsourcestamps = 1, .submitted_at = 1};
	CHECK_INT(db_buildset_add(db, &bs, &bu, 1, &bsid, &brid), 0);
	CHECK_INT(db_buildset_add(db, &bs, &bu, 1, &bsid2, &brid2), 0);
	/* Not valid UTF-8 at the end: shown with U+FFFD, not dropped. */
	static const char body[] = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-x\n+y \xff\n";
	struct db_patch p = {.level = 2,
			     .body = body,
			     .len = sizeof(body) - 1,
			     .subdir = "sub",
			     .author = "ann",
			     .comment = "try it"};
	CHECK_INT(db_buildset_set_patch(db, bsid, &p), 0);

	json_t *l = list(db, DB_SOURCESTAMPS, NULL);
	CHECK_INT(json_array_size(l), 2);
	json_t *pj = json_object_get(json_array_get(l, 0), "patch");
	CHECK(json_is_object(pj));
	CHECK_INT(json_object_size(pj), 6);
	CHECK_STR(json_string_value(json_object_get(pj, "author")), "ann");
	CHECK_STR(json_string_value(json_object_get(pj, "comment")), "try it");
	CHECK_STR(json_string_value(json_object_get(pj, "subdir")), "sub");
	CHECK_STR(json_string_value(json_object_get(pj, "body")),
		  "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-x\n+y \xef\xbf\xbd\n");
	CHECK_INT(jint(pj, "level"), 2);
	CHECK(jint(pj, "patchid") > 0);
	CHECK(json_is_null(json_object_get(json_array_get(l, 1), "patch")));
	json_decref(l);

	/* Embedded in the buildset too. */
	l = list(db, DB_BUILDSETS, NULL);
	CHECK_INT(json_array_size(l), 2);
	json_t *sss = json_object_get(json_array_get(l, 0), "sourcestamps");
	pj = json_object_get(json_array_get(sss, 0), "patch");
	CHECK(json_is_object(pj));
	CHECK_STR(json_string_value(json_object_get(pj, "author")), "ann");
	CHECK_INT(jint(pj, "level"), 2);
	sss = json_object_get(json_array_get(l, 1), "sourcestamps");
	CHECK(json_is_null(json_object_get(json_array_get(sss, 0), "patch")));
	json_decref(l);
	db_close(db);
}

/* A buildset with one sourcestamp per codebase: stored and read back in
 * codebase order (db_buildset_sourcestamps, the API's list, the first one
 * for db_buildset_get), a codebase named twice refused. */
TEST(buildset_several_codebases)
{
	struct db *db = open_mem();
	int64_t bu, bsid, brid, one, onebr;
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &bu), 0);
	struct db_sourcestamp ss[] = {
		{.branch = "main",
		 .revision = "r-lib",
		 .repository = "git://lib",
		 .codebase = "lib"},
		{.branch = "dev", .repository = "git://app", .project = "p", .codebase = "app"},
		{.revision = "r-zz", .codebase = "zz"},
	};
	struct db_buildset_new bs = {
		.reason = "multi", .sourcestamps = ss, .nsourcestamps = 3, .submitted_at = 1};
	CHECK_INT(db_buildset_add(db, &bs, &bu, 1, &bsid, &brid), 0);
	bs.nsourcestamps = 1;
	CHECK_INT(db_buildset_add(db, &bs, &bu, 1, &one, &onebr), 0);

	struct db_sourcestamp *got = NULL;
	size_t n = 0;
	CHECK_INT(db_buildset_sourcestamps(db, bsid, &got, &n), 0);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_STR(got[0].codebase, "app");
		CHECK_STR(got[0].branch, "dev");
		CHECK(got[0].revision == NULL);
		CHECK_STR(got[0].repository, "git://app");
		CHECK_STR(got[0].project, "p");
		CHECK_STR(got[1].codebase, "lib");
		CHECK_STR(got[1].revision, "r-lib");
		CHECK_STR(got[1].project, "");
		CHECK_STR(got[2].codebase, "zz");
		CHECK(got[2].branch == NULL);
		CHECK_STR(got[2].repository, "");
		CHECK(db_sourcestamp_find(got, n, "lib") == &got[1]);
		CHECK(db_sourcestamp_find(got, n, "nope") == NULL);
	}
	free(got);
	CHECK_INT(db_buildset_sourcestamps(db, one, &got, &n), 0);
	CHECK_INT(n, 1);
	CHECK_STR(n ? got[0].codebase : "", "lib");
	free(got);
	got = (void *)1;
	CHECK_INT(db_buildset_sourcestamps(db, 999, &got, &n), KILN_ENOTFOUND);
	CHECK(got == NULL && n == 0);

	/* existing callers see the first codebase */
	struct db_buildset_info bi;
	CHECK_INT(db_buildset_get(db, bsid, &bi), 0);
	CHECK_INT(bi.nsourcestamps, 3);
	CHECK_STR(bi.codebase, "app");
	CHECK_STR(bi.branch, "dev");
	db_buildset_info_release(&bi);

	/* the API lists them all, in the same order, with Buildbot's keys */
	json_t *l = list(db, DB_BUILDSETS, NULL);
	json_t *sss = json_object_get(json_array_get(l, 0), "sourcestamps");
	CHECK_INT(json_array_size(sss), 3);
	static const char *const cbs[] = {"app", "lib", "zz"};
	static const char *const keys[] = {"branch",  "codebase",   "created_at", "patch",
					   "project", "repository", "revision",   "ssid"};
	for (size_t i = 0; i < 3; i++) {
		json_t *o = json_array_get(sss, i);
		CHECK_STR(json_string_value(json_object_get(o, "codebase")), cbs[i]);
		check_keys(o, keys, ARRAY_SIZE(keys));
	}
	json_decref(l);
	l = list(db, DB_SOURCESTAMPS, NULL);
	CHECK_INT(json_array_size(l), 4);
	json_decref(l);

	/* a newer buildset of the same lines supersedes each older request once */
	int64_t newer, newerbr;
	bs.nsourcestamps = 3;
	CHECK_INT(db_buildset_add(db, &bs, &bu, 1, &newer, &newerbr), 0);
	int64_t *ids = NULL;
	size_t nids = 0;
	CHECK_INT(db_request_superseded(db, bu, newer, &ids, &nids), 0);
	CHECK_INT(nids, 2);
	if (nids == 2) {
		CHECK_INT(ids[0], brid);
		CHECK_INT(ids[1], onebr);
	}
	free(ids);

	/* one sourcestamp per codebase: a second "lib" is refused, nothing stored */
	struct db_sourcestamp dup[] = {{.codebase = "lib"}, {.codebase = "x"}, {.codebase = "lib"}};
	bs.sourcestamps = dup;
	bs.nsourcestamps = 3;
	int64_t bad = 0;
	CHECK_INT(db_buildset_add(db, &bs, &bu, 1, &bad, NULL), -EINVAL);
	CHECK(strstr(db_errmsg(db), "codebase 'lib'") != NULL);
	/* NULL and "" are the same codebase */
	struct db_sourcestamp dup2[] = {{.codebase = NULL}, {.codebase = ""}};
	bs.sourcestamps = dup2;
	bs.nsourcestamps = 2;
	CHECK_INT(db_buildset_add(db, &bs, &bu, 1, &bad, NULL), -EINVAL);
	l = list(db, DB_BUILDSETS, NULL);
	CHECK_INT(json_array_size(l), 3);
	json_decref(l);
	db_close(db);
}

/* A filter whose SQL passes the cap is refused as too long, never run
 * with the WHERE clause the overflow emptied. */
TEST(list_filter_too_long)
{
	struct db *db = open_mem();
	int64_t b;
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &b), 0);
	enum { N = 30000 };
	const char **vals = xcalloc(N, sizeof(*vals));
	for (size_t i = 0; i < N; i++)
		vals[i] = "nosuch";
	struct db_filter f = {.field = "name", .op = DB_OP_EQ, .values = vals, .nvalues = N};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = -1};
	json_t *items = NULL;
	CHECK_INT(db_list(db, DB_BUILDERS, &q, &items, NULL), -E2BIG);
	CHECK(items == NULL);
	CHECK(strstr(db_errmsg(db), "too long") != NULL);
	free(vals);
	db_close(db);
}

TEST(list_filters_and_order)
{
	struct listdb L;
	listdb_make(&L);
	struct db *db = L.db;
	/* builds 1 (b0, running), 2..7 finished: results 0 2 4 6 0 1, builders alternate */
	int64_t total = -1;
	json_t *all = list_q(db, DB_BUILDS, NULL, 0, NULL, 0, -1, 0, &total);
	CHECK_INT(total, 7);
	CHECK_IDS(all, "buildid", "1,2,3,4,5,6,7");

	const char *v0[] = {"0"}, *v46[] = {"4", "6"}, *v2[] = {"2"}, *vt[] = {"true"},
		   *vf[] = {"false"}, *v1[] = {"1"}, *vc[] = {"cancel"}, *vbad[] = {"abc"};
	struct db_filter f;
	f = (struct db_filter){"results", DB_OP_EQ, v0, 1};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "2,6");
	f = (struct db_filter){"results", DB_OP_NE, v0, 1}; /* NULL (running) is "not 0" */
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "1,3,4,5,7");
	f = (struct db_filter){"results", DB_OP_LT, v2, 1};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "2,6,7");
	f = (struct db_filter){"results", DB_OP_LE, v2, 1};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "2,3,6,7");
	f = (struct db_filter){"results", DB_OP_GT, v2, 1};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "4,5");
	f = (struct db_filter){"results", DB_OP_GE, v2, 1};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "3,4,5");
	f = (struct db_filter){"results", DB_OP_IN, v46, 2};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "4,5");
	f = (struct db_filter){"results", DB_OP_EQ, v46, 2}; /* several EQ values = IN */
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "4,5");
	f = (struct db_filter){"results", DB_OP_NOTIN, v46, 2};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "1,2,3,6,7");
	f = (struct db_filter){"state_string", DB_OP_CONTAINS, vc, 1};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "5");
	f = (struct db_filter){"complete", DB_OP_EQ, vf, 1};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "1");
	f = (struct db_filter){"complete", DB_OP_EQ, v1, 1};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, &total), "buildid", "2,3,4,5,6,7");
	CHECK_INT(total, 6);

	/* builderid + complete, as /builders/N/builds?complete=true */
	char bid[32];
	snprintf(bid, sizeof(bid), "%lld", (long long)L.b2);
	const char *vb[] = {bid};
	struct db_filter two[] = {{"builderid", DB_OP_EQ, vb, 1}, {"complete", DB_OP_EQ, vt, 1}};
	CHECK_IDS(list_q(db, DB_BUILDS, two, 2, NULL, 0, -1, 0, &total), "buildid", "3,5,7");
	CHECK_INT(total, 3);

	/* Times: integer seconds, compared as rendered. */
	const char *t2010[] = {"2010"}, *t2015[] = {"2015"};
	f = (struct db_filter){"started_at", DB_OP_EQ, t2010, 1};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "3");
	f = (struct db_filter){"complete_at", DB_OP_EQ, t2015, 1}; /* stored 2015.5 */
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "3");
	f = (struct db_filter){"complete_at", DB_OP_LE, t2015, 1};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "2,3");
	f = (struct db_filter){"complete_at", DB_OP_GT, t2015, 1};
	CHECK_IDS(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, NULL), "buildid", "4,5,6,7");

	/* Order, several keys, descending; limit and offset; total before paging. */
	const char *o1[] = {"-buildid"};
	CHECK_IDS(list_q(db, DB_BUILDS, NULL, 0, o1, 1, 2, 0, &total), "buildid", "7,6");
	CHECK_INT(total, 7);
	CHECK_IDS(list_q(db, DB_BUILDS, NULL, 0, NULL, 0, 2, 1, NULL), "buildid", "2,3");
	const char *o2[] = {"builderid", "-results"};
	/* NULL sorts first ascending, last descending; ties by id run the
	 * same way as the last key */
	CHECK_IDS(list_q(db, DB_BUILDS, NULL, 0, o2, 2, -1, 0, NULL), "buildid", "4,6,2,1,5,3,7");
	const char *o3[] = {"-started_at"};
	CHECK_IDS(list_q(db, DB_BUILDS, NULL, 0, o3, 1, 3, 0, NULL), "buildid", "7,6,5");
	CHECK_IDS(list_q(db, DB_BUILDS, NULL, 0, NULL, 0, 5, 10, NULL), "buildid", "");

	/* Errors name the field. */
	json_t *items = NULL;
	struct db_query q = {.limit = -1};
	f = (struct db_filter){"nosuchfield", DB_OP_EQ, v0, 1};
	q.filters = &f;
	q.nfilters = 1;
	CHECK_INT(db_list(db, DB_BUILDS, &q, &items, NULL), KILN_EPARSE);
	CHECK_STR(db_errmsg(db), "unrecognized query parameter 'nosuchfield'");
	f = (struct db_filter){"results", DB_OP_EQ, vbad, 1};
	CHECK_INT(db_list(db, DB_BUILDS, &q, &items, NULL), -EINVAL);
	CHECK(strstr(db_errmsg(db), "results") != NULL);
	f = (struct db_filter){"complete", DB_OP_EQ, vbad, 1};
	CHECK_INT(db_list(db, DB_BUILDS, &q, &items, NULL), -EINVAL);
	f = (struct db_filter){"results", DB_OP_LT, v46, 2};
	CHECK_INT(db_list(db, DB_BUILDS, &q, &items, NULL), -EINVAL);
	f = (struct db_filter){"results", DB_OP_CONTAINS, v0, 1};
	CHECK_INT(db_list(db, DB_BUILDS, &q, &items, NULL), -EINVAL);
	f = (struct db_filter){"results", DB_OP_EQ, v0, 0};
	CHECK_INT(db_list(db, DB_BUILDS, &q, &items, NULL), -EINVAL);
	q.nfilters = 0;
	const char *bad_order[] = {"-nosuch"};
	q.order = bad_order;
	q.norder = 1;
	CHECK_INT(db_list(db, DB_BUILDS, &q, &items, NULL), KILN_EPARSE);
	CHECK_STR(db_errmsg(db), "no such field 'nosuch'");
	const char *json_order[] = {"properties"};
	q.order = json_order;
	CHECK_INT(db_list(db, DB_BUILDS, &q, &items, NULL), -EINVAL);
	q.norder = 0;
	q.offset = -1;
	CHECK_INT(db_list(db, DB_BUILDS, &q, &items, NULL), -EINVAL);
	CHECK(items == NULL);

	/* More distinct queries than the statement cache holds: evictions. */
	const char *many[40];
	char nums[40][8];
	for (int i = 0; i < 40; i++) {
		snprintf(nums[i], sizeof(nums[i]), "%d", i);
		many[i] = nums[i];
		f = (struct db_filter){"buildid", DB_OP_IN, many, (size_t)i + 1};
		json_decref(list_q(db, DB_BUILDS, &f, 1, NULL, 0, -1, 0, &total));
		CHECK_INT(total, i < 7 ? i : 7);
	}

	CHECK(db_field_known(DB_BUILDS, "state_string"));
	CHECK(db_field_known(DB_WORKERS, "builderid"));
	CHECK(!db_field_known(DB_BUILDS, "nosuch"));
	CHECK(db_field_known(DB_LOGS, "num_lines"));
	db_close(db);
}

TEST(list_other_resources)
{
	struct listdb L;
	listdb_make(&L);
	struct db *db = L.db;
	int64_t tagged;
	CHECK_INT(db_builder_ensure(db, "tagged", NULL, "[\"linux\",\"fast\"]", &tagged), 0);
	const char *vtag[] = {"fast"};
	struct db_filter f = {"tags", DB_OP_CONTAINS, vtag, 1};
	CHECK_IDS(list_q(db, DB_BUILDERS, &f, 1, NULL, 0, -1, 0, NULL), "builderid", "3");
	const char *vname[] = {"b2"};
	f = (struct db_filter){"name", DB_OP_EQ, vname, 1};
	CHECK_IDS(list_q(db, DB_BUILDERS, &f, 1, NULL, 0, -1, 0, NULL), "builderid", "2");
	int64_t ms[] = {L.f.masterid};
	CHECK_INT(db_builder_set_masters(db, tagged, ms, 1), 0);
	char mid[32];
	snprintf(mid, sizeof(mid), "%lld", (long long)L.f.masterid);
	const char *vm[] = {mid};
	f = (struct db_filter){"masterid", DB_OP_EQ, vm, 1};
	CHECK_IDS(list_q(db, DB_BUILDERS, &f, 1, NULL, 0, -1, 0, NULL), "builderid", "3");
	f = (struct db_filter){"masterid", DB_OP_LT, vm, 1};
	json_t *items = NULL;
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = -1};
	CHECK_INT(db_list(db, DB_BUILDERS, &q, &items, NULL), -EINVAL);

	/* buildrequests: by builder, claimed, complete */
	const char *vf[] = {"false"}, *vt[] = {"true"};
	f = (struct db_filter){"claimed", DB_OP_EQ, vt, 1};
	CHECK_IDS(list_q(db, DB_BUILDREQUESTS, &f, 1, NULL, 0, -1, 0, NULL), "buildrequestid", "1");
	f = (struct db_filter){"complete", DB_OP_EQ, vf, 1};
	CHECK_IDS(list_q(db, DB_BUILDREQUESTS, &f, 1, NULL, 0, -1, 0, NULL), "buildrequestid", "1");
	CHECK_IDS(list_q(db, DB_SOURCESTAMPS, NULL, 0, NULL, 0, -1, 0, NULL), "ssid", "1");
	json_t *ss = list_q(db, DB_SOURCESTAMPS, NULL, 0, NULL, 0, -1, 0, NULL);
	static const char *const sskeys[] = {"branch",  "codebase",   "created_at", "patch",
					     "project", "repository", "revision",   "ssid"};
	check_keys(json_array_get(ss, 0), sskeys, ARRAY_SIZE(sskeys));
	CHECK_INT(jint(json_array_get(ss, 0), "created_at"), 1000);
	json_decref(ss);
	db_close(db);
}

TEST(list_uses_indexes)
{
	struct db *db = open_mem();
	char *plan;
	/* builds?limit=100: rowid order, no sort (the LIMIT stops the scan). */
	struct db_query q = {.limit = 100};
	CHECK_INT(db_list_explain(db, DB_BUILDS, &q, &plan), 0);
	if (strstr(plan, "TEMP B-TREE"))
		printf("# %s", plan);
	if (strstr(plan, "TEMP B-TREE"))
		printf("# plan: %s", plan);
	CHECK(strstr(plan, "TEMP B-TREE") == NULL);
	free(plan);
	const char *v[] = {"7"}, *vt[] = {"true"};
	struct db_filter f[] = {{"builderid", DB_OP_EQ, v, 1}, {"complete", DB_OP_EQ, vt, 1}};
	q = (struct db_query){.filters = f, .nfilters = 2, .limit = -1};
	CHECK_INT(db_list_explain(db, DB_BUILDS, &q, &plan), 0);
	CHECK(strstr(plan, "SEARCH b USING INDEX") != NULL);
	if (strstr(plan, "TEMP B-TREE"))
		printf("# plan: %s", plan);
	CHECK(strstr(plan, "TEMP B-TREE") == NULL);
	free(plan);
	q.nfilters = 1; /* builderid alone, as /builders/N/builds */
	CHECK_INT(db_list_explain(db, DB_BUILDS, &q, &plan), 0);
	CHECK(strstr(plan, "SEARCH b USING INDEX builds_builderid") != NULL);
	if (strstr(plan, "TEMP B-TREE"))
		printf("# plan: %s", plan);
	CHECK(strstr(plan, "TEMP B-TREE") == NULL);
	free(plan);
	struct db_filter fr = {"buildrequestid", DB_OP_EQ, v, 1};
	q = (struct db_query){.filters = &fr, .nfilters = 1, .limit = -1};
	CHECK_INT(db_list_explain(db, DB_BUILDS, &q, &plan), 0);
	CHECK(strstr(plan, "SEARCH b USING INDEX builds_buildrequestid") != NULL);
	free(plan);
	const char *o[] = {"-started_at"};
	q = (struct db_query){.order = o, .norder = 1, .limit = 10};
	CHECK_INT(db_list_explain(db, DB_BUILDS, &q, &plan), 0);
	if (strstr(plan, "TEMP B-TREE"))
		printf("# plan: %s", plan);
	CHECK(strstr(plan, "TEMP B-TREE") == NULL);
	free(plan);
	struct db_filter fb = {"builderid", DB_OP_EQ, v, 1};
	q = (struct db_query){.filters = &fb, .nfilters = 1, .limit = -1};
	CHECK_INT(db_list_explain(db, DB_BUILDREQUESTS, &q, &plan), 0);
	CHECK(strstr(plan, "SEARCH br USING") != NULL);
	if (strstr(plan, "TEMP B-TREE"))
		printf("# plan: %s", plan);
	CHECK(strstr(plan, "TEMP B-TREE") == NULL);
	free(plan);
	struct db_filter fs = {"buildid", DB_OP_EQ, v, 1};
	q = (struct db_query){.filters = &fs, .nfilters = 1, .limit = -1};
	CHECK_INT(db_list_explain(db, DB_STEPS, &q, &plan), 0);
	CHECK(strstr(plan, "SEARCH s USING INDEX") != NULL);
	if (strstr(plan, "TEMP B-TREE"))
		printf("# plan: %s", plan);
	CHECK(strstr(plan, "TEMP B-TREE") == NULL);
	free(plan);
	struct db_filter fl = {"stepid", DB_OP_EQ, v, 1};
	q = (struct db_query){.filters = &fl, .nfilters = 1, .limit = -1};
	CHECK_INT(db_list_explain(db, DB_LOGS, &q, &plan), 0);
	CHECK(strstr(plan, "SEARCH l USING INDEX") != NULL);
	if (strstr(plan, "TEMP B-TREE"))
		printf("# plan: %s", plan);
	CHECK(strstr(plan, "TEMP B-TREE") == NULL);
	free(plan);
	db_close(db);
}

/* slice "steps20": the numbers of a build's end in one write, the build
 * looked up once; all or none. */
TEST(numbers_record_many_all_or_none)
{
	struct db *db = open_mem();
	struct fixture f;
	fixture_make(db, &f);
	int64_t s0;
	CHECK_INT(db_step_begin(db, f.buildid, "compile", 1003.5, "x", &s0, NULL), 0);
	struct db_number_rec v[] = {
		{0, "build_duration", 12.5},
		{s0, "step_duration:compile", 3.25},
		{s0, "warnings", 7},
	};
	CHECK_INT(db_numbers_record_many(db, f.builderid, f.buildid, v, 3, 2000), 0);
	json_t *items = NULL;
	int64_t total = 0;
	CHECK_INT(db_numbers_series(db, f.builderid, "step_duration:compile", false, -1, 0, &items,
				    &total),
		  0);
	CHECK_INT(total, 1);
	json_t *p = json_array_get(items, 0);
	CHECK(json_real_value(json_object_get(p, "value")) == 3.25);
	CHECK_INT(jint(p, "stepid"), s0);
	CHECK(json_real_value(json_object_get(p, "recorded_at")) == 2000);
	json_decref(items);
	CHECK_INT(
		db_numbers_series(db, f.builderid, "build_duration", false, -1, 0, &items, &total),
		0);
	CHECK_INT(total, 1);
	CHECK(json_is_null(json_object_get(json_array_get(items, 0), "stepid")));
	json_decref(items);

	/* a bad one anywhere: nothing is recorded */
	struct db_number_rec bad[] = {{0, "a", 1}, {0, "", 2}};
	CHECK_INT(db_numbers_record_many(db, f.builderid, f.buildid, bad, 2, 2001), -EINVAL);
	bad[1] = (struct db_number_rec){0, "b", NAN};
	CHECK_INT(db_numbers_record_many(db, f.builderid, f.buildid, bad, 2, 2001), -EINVAL);
	/* not this builder's build: nothing either */
	bad[1] = (struct db_number_rec){0, "b", 2};
	CHECK_INT(db_numbers_record_many(db, f.builderid + 99, f.buildid, bad, 2, 2001),
		  KILN_ENOTFOUND);
	CHECK_INT(db_numbers_record_many(db, f.builderid, f.buildid + 99, bad, 1, 2001),
		  KILN_ENOTFOUND);
	CHECK_INT(db_numbers_series(db, f.builderid, "a", false, -1, 0, &items, &total), 0);
	CHECK_INT(total, 0);
	json_decref(items);
	/* one alone, and none at all */
	CHECK_INT(db_numbers_record_many(db, f.builderid, f.buildid, bad, 1, 2002), 0);
	CHECK_INT(db_numbers_record_many(db, f.builderid, f.buildid, NULL, 0, 2002), 0);
	CHECK_INT(db_numbers_series(db, f.builderid, "a", false, -1, 0, &items, &total), 0);
	CHECK_INT(total, 1);
	json_decref(items);
	db_close(db);
}

/* slice "perfsteps2": step_duration:NAME is not stored but served from the
 * steps table, for the builds whose build_duration was recorded; a row
 * recorded under that name before (an older master) is served instead. */
TEST(numbers_step_duration_from_steps)
{
	struct db *db = open_mem();
	struct fixture f;
	fixture_make(db, &f);
	int64_t s0, s1, s2, s3;
	CHECK_INT(db_step_begin(db, f.buildid, "compile", 1002, "x", &s0, NULL), 0);
	CHECK_INT(db_step_finish(db, s0, RESULTS_SUCCESS, "ok", false, 1005.5), 0);
	CHECK_INT(db_step_begin(db, f.buildid, "test", 1006, "x", &s1, NULL), 0);
	CHECK_INT(db_step_finish(db, s1, RESULTS_FAILURE, "ok", false, 1005), 0); /* clock */
	CHECK_INT(db_step_add(db, f.buildid, "never", &s2, NULL), 0);
	CHECK_INT(db_step_finish(db, s2, RESULTS_SKIPPED, "skipped", false, 1007), 0);
	CHECK_INT(db_step_begin(db, f.buildid, "running", 1007, "x", &s3, NULL), 0);
	json_t *items = NULL;
	int64_t total = -1;
	/* no build_duration yet (the build's end not handled): nothing */
	CHECK_INT(db_numbers_series(db, f.builderid, "step_duration:compile", false, -1, 0, &items,
				    &total),
		  0);
	CHECK_INT(total, 0);
	CHECK_INT((int64_t)json_array_size(items), 0);
	json_decref(items);
	CHECK_INT(db_numbers_names(db, f.builderid, -1, 0, &items, &total), 0);
	CHECK_INT(total, 0);
	json_decref(items);

	struct db_number_rec v[] = {{0, "build_duration", 12.5}};
	CHECK_INT(db_numbers_record_many(db, f.builderid, f.buildid, v, 1, 2000), 0);
	CHECK_INT(db_numbers_series(db, f.builderid, "step_duration:compile", false, -1, 0, &items,
				    &total),
		  0);
	CHECK_INT(total, 1);
	CHECK_INT((int64_t)json_array_size(items), 1);
	json_t *p = json_array_get(items, 0);
	CHECK(json_real_value(json_object_get(p, "value")) == 3.5);
	CHECK_INT(jint(p, "stepid"), s0);
	CHECK_INT(jint(p, "buildid"), f.buildid);
	CHECK_INT(jint(p, "number"), f.number);
	CHECK(json_real_value(json_object_get(p, "recorded_at")) == 2000);
	CHECK(json_is_string(json_object_get(p, "revision")));
	CHECK(json_is_array(json_object_get(p, "changeids")));
	json_decref(items);
	/* a clock that went back: 0, as recorded before */
	CHECK_INT(db_numbers_series(db, f.builderid, "step_duration:test", true, -1, 0, &items,
				    &total),
		  0);
	CHECK_INT(total, 1);
	CHECK(json_real_value(json_object_get(json_array_get(items, 0), "value")) == 0);
	json_decref(items);
	/* not started, not finished, unknown, the bare prefix: no point */
	const char *none[] = {"step_duration:never", "step_duration:running", "step_duration:x",
			      "step_duration:", "compile"};
	for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
		CHECK_INT(db_numbers_series(db, f.builderid, none[i], false, -1, 0, &items, &total),
			  0);
		CHECK_INT(total, 0);
		CHECK_INT((int64_t)json_array_size(items), 0);
		json_decref(items);
	}
	CHECK_INT(db_numbers_names(db, f.builderid, -1, 0, &items, &total), 0);
	CHECK_INT(total, 3);
	char *names = json_dumps(items, JSON_COMPACT);
	CHECK_STR(names, "[\"build_duration\",\"step_duration:compile\",\"step_duration:test\"]");
	free(names);
	json_decref(items);
	CHECK_INT(db_numbers_names(db, f.builderid, 1, 1, &items, &total), 0);
	CHECK_INT(total, 3);
	CHECK_STR(json_string_value(json_array_get(items, 0)), "step_duration:compile");
	json_decref(items);

	/* a second build: previous values and pages over both */
	int64_t b2, n2, t0;
	CHECK_INT(db_build_add(db, f.builderid, f.brid, f.workerid, f.masterid, 2001, &b2, &n2), 0);
	CHECK_INT(db_step_begin(db, b2, "compile", 2002, "x", &t0, NULL), 0);
	CHECK_INT(db_step_finish(db, t0, RESULTS_SUCCESS, "ok", false, 2003), 0);
	double old = 0;
	int64_t old_build = 0;
	CHECK_INT(
		db_number_previous(db, f.builderid, "step_duration:compile", b2, &old, &old_build),
		1);
	CHECK(old == 3.5);
	CHECK_INT(old_build, f.buildid);
	CHECK_INT(db_number_previous(db, f.builderid, "step_duration:compile", f.buildid, &old,
				     &old_build),
		  0);
	CHECK_INT(db_numbers_record_many(db, f.builderid, b2, v, 1, 3000), 0);
	CHECK_INT(db_numbers_series(db, f.builderid, "step_duration:compile", false, 1, 0, &items,
				    &total),
		  0);
	CHECK_INT(total, 2);
	CHECK_INT((int64_t)json_array_size(items), 1);
	CHECK_INT(jint(json_array_get(items, 0), "buildid"), b2);
	CHECK(json_real_value(json_object_get(json_array_get(items, 0), "value")) == 1);
	json_decref(items);
	CHECK_INT(db_numbers_series(db, f.builderid, "step_duration:compile", true, 1, 1, &items,
				    &total),
		  0);
	CHECK_INT(jint(json_array_get(items, 0), "buildid"), b2);
	json_decref(items);

	/* a row an older master recorded for that step is served instead */
	struct db_number_rec old_row[] = {{s1, "step_duration:test", 9.25}};
	CHECK_INT(db_numbers_record_many(db, f.builderid, f.buildid, old_row, 1, 2000), 0);
	CHECK_INT(db_numbers_series(db, f.builderid, "step_duration:test", false, -1, 0, &items,
				    &total),
		  0);
	CHECK_INT(total, 1);
	CHECK(json_real_value(json_object_get(json_array_get(items, 0), "value")) == 9.25);
	json_decref(items);
	CHECK_INT(db_numbers_names(db, f.builderid, -1, 0, &items, &total), 0);
	CHECK_INT(total, 3);
	json_decref(items);
	db_close(db);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/kiln-test-db-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(open_memory_and_file);
	RUN(open_rejects_bad_urls_and_newer_schema);
	RUN(migrations_are_numbered);
	RUN(results_names_and_worst);
	RUN(masters_builders_workers);
	RUN(request_order_priority_then_age);
	RUN(request_queued_and_summary); /* slice "dispatch" */
	RUN(request_next_with_deep_queue);
	RUN(claims_race_between_connections);
	RUN(buildset_completes_with_worst_results);
	RUN(builds_and_steps);
	RUN(master_recover_finishes_and_requeues);
	RUN(batch_commits_after_loop_turn);
	RUN(batch_commits_before_loop_ends);
	RUN(batch_from_timer_commits_same_turn);
	RUN(fail_commit_injection);
	RUN(checkpoint_off_loop);
	RUN(checkpoint_job_truncates_wal); /* issue 13 */
	RUN(log_chunks_and_ranges);
	RUN(log_edge_cases);
	RUN(log_reopen_continues);
	RUN(log_cap_marker);
	RUN(log_batched_on_loop);
	RUN(log_compress_off_loop);
	RUN(step_begin_one_write);
	RUN(step_numbers_interleaved_and_rolled_back);
	RUN(group_commit_across_writing_turns);
	RUN(write1_failure_keeps_batch);
	RUN(log_add_starts_tail);
	RUN(log_short_tail_stays_raw);
	RUN(log_50mb_throughput);
	RUN(sourcestamp_patch_listed);
	RUN(buildset_several_codebases);
	RUN(list_filter_too_long);
	RUN(list_filters_and_order);
	RUN(list_other_resources);
	RUN(list_uses_indexes);
	RUN(numbers_record_many_all_or_none);  /* slice "steps20" */
	RUN(numbers_step_duration_from_steps); /* slice "perfsteps2" */
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	free(cmd);
	return tap_done();
}
