/*
 * Unit tests for the retention purge (db-sqlite-retention.c, slice
 * "retention") on a real SQLite database: builds by age and by count per
 * builder take everything hanging on them and leave no dangling id; a
 * running build and an incomplete request are never touched; success logs
 * go sooner (the row stays, content_removed); test results, numbers and
 * changes by age, a change a kept buildset builds staying; batches are
 * bounded; a dry run changes nothing; the expired rows are found through
 * indexes; a builder's own cut-offs (issue 13).
 */
#include "tap.h"

#include "common/err.h"
#include "db/db-internal.h"

#include <errno.h>
#include <string.h>

struct fx {
	struct db *db;
	int64_t masterid, builderid, workerid;
};

static void fx_open(struct fx *f)
{
	*f = (struct fx){0};
	if (db_open(NULL, "sqlite::memory:", NULL, &f->db) < 0)
		TAP_FAIL("db_open: %s", db_open_errmsg());
	CHECK_INT(db_master_register(f->db, "host:/b", &f->masterid), 0);
	CHECK_INT(db_builder_ensure(f->db, "b", NULL, NULL, &f->builderid), 0);
	CHECK_INT(db_worker_ensure(f->db, "w", &f->workerid), 0);
}

static int64_t count(struct fx *f, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t n = -1;
	if (sqlite3_prepare_v2(f->db->h, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	else
		TAP_FAIL("%s: %s", sql, sqlite3_errmsg(f->db->h));
	sqlite3_finalize(s);
	return n;
}

static void exec(struct fx *f, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(f->db->h, sql, NULL, NULL, &err) != SQLITE_OK)
		TAP_FAIL("%s: %s", sql, err);
	sqlite3_free(err);
}

/* A build started at t0 (finished at t1 with results when t1 > 0), with a
 * step, a 3-line log, a test result set of 2, a number and an artifact
 * row. */
static int64_t mkbuild(struct fx *f, double t0, double t1, int results, int64_t *ret_brid,
		       int64_t *ret_bsid)
{
	int64_t bsid, brid, buildid, number, stepid, sn, logid, setid;
	struct db_sourcestamp ss = {.branch = "main", .codebase = ""};
	struct db_buildset_new bs = {
		.reason = "t", .sourcestamps = &ss, .nsourcestamps = 1, .submitted_at = t0};
	CHECK_INT(db_buildset_add(f->db, &bs, &f->builderid, 1, &bsid, &brid), 0);
	CHECK_INT(db_request_claim(f->db, brid, f->masterid, t0), 0);
	CHECK_INT(db_build_add(f->db, f->builderid, brid, f->workerid, f->masterid, t0, &buildid,
			       &number),
		  0);
	CHECK_INT(db_step_add(f->db, buildid, "shell", &stepid, &sn), 0);
	CHECK_INT(db_step_start(f->db, stepid, t0), 0);
	CHECK_INT(db_log_add(f->db, stepid, "stdio", 's', &logid), 0);
	CHECK_INT(db_log_append(f->db, logid, "oa\nob\noc\n", 9), 0);
	struct db_test_result_set_new ts = {
		.builderid = f->builderid, .buildid = buildid, .stepid = stepid};
	CHECK_INT(db_test_result_set_add(f->db, &ts, &setid), 0);
	struct db_test_result tr[2] = {{.test_name = "t1", .duration_ns = -1},
				       {.test_name = "t2", .duration_ns = -1}};
	CHECK_INT(db_test_results_add(f->db, setid, tr, 2), 0);
	CHECK_INT(db_number_record(f->db, f->builderid, buildid, 0, "warnings", 1, t0), 0);
	struct db_artifact a = {
		.buildid = buildid, .stepid = stepid, .name = "a.bin", .size = 3, .created_at = t0};
	char path[64];
	snprintf(path, sizeof(path), "%lld/a.bin", (long long)buildid);
	a.path = path;
	memcpy(a.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 65);
	CHECK_INT(db_artifact_add(f->db, &a, NULL), 0);
	if (t1 > 0) {
		CHECK_INT(db_log_finish(f->db, logid), 0);
		CHECK_INT(db_test_result_set_complete(f->db, setid, 2, 0, 0), 0);
		CHECK_INT(db_step_finish(f->db, stepid, results, NULL, false, t1), 0);
		CHECK_INT(db_build_finish(f->db, buildid, results, NULL, t1), 0);
		int64_t done = 0;
		CHECK_INT(db_request_complete(f->db, brid, results, t1, &done), 0);
	}
	if (ret_brid)
		*ret_brid = brid;
	if (ret_bsid)
		*ret_bsid = bsid;
	return buildid;
}

/* A whole pass, batch after batch; returns the number of batches. */
static int purge(struct fx *f, const struct db_retention_policy *p, size_t rows,
		 struct db_retention_counts *c, struct db_artifact_file **files, size_t *nfiles)
{
	struct db_retention_pass st = {0};
	int n = 0, r;
	do {
		r = db_retention_batch(f->db, p, &st, rows, 1000.0, c, files, nfiles);
		n++;
	} while (r > 0 && n < 100000);
	CHECK_INT(r, 0);
	return n;
}

static bool exists(struct fx *f, const char *table, int64_t id)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE id = %lld", table, (long long)id);
	return count(f, sql) == 1;
}

/* Every id a row holds names a row that exists. */
static void check_no_dangling(struct fx *f)
{
	CHECK_INT(count(f, "SELECT count(*) FROM builds WHERE buildrequestid IS NOT NULL AND "
			   "buildrequestid NOT IN (SELECT id FROM buildrequests)"),
		  0);
	CHECK_INT(count(f, "SELECT count(*) FROM buildrequests WHERE buildsetid NOT IN "
			   "(SELECT id FROM buildsets)"),
		  0);
	CHECK_INT(count(f, "SELECT count(*) FROM buildset_sourcestamps WHERE sourcestampid NOT "
			   "IN (SELECT id FROM sourcestamps)"),
		  0);
	CHECK_INT(count(f, "SELECT count(*) FROM steps WHERE buildid NOT IN (SELECT id FROM "
			   "builds)"),
		  0);
	CHECK_INT(count(f, "SELECT count(*) FROM logchunks WHERE logid NOT IN (SELECT id FROM "
			   "logs)"),
		  0);
	CHECK_INT(count(f, "SELECT count(*) FROM buildsets WHERE NOT EXISTS (SELECT 1 FROM "
			   "buildrequests WHERE buildsetid = buildsets.id)"),
		  0);
	CHECK_INT(count(f, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
}

TEST(builds_by_age)
{
	struct fx f;
	fx_open(&f);
	int64_t br1, bs1;
	int64_t b1 = mkbuild(&f, 100, 110, RESULTS_SUCCESS, &br1, &bs1);
	int64_t b2 = mkbuild(&f, 1000, 1010, RESULTS_SUCCESS, NULL, NULL);
	int64_t brr;
	int64_t brun = mkbuild(&f, 50, 0, 0, &brr, NULL); /* running, older than all */
	struct db_retention_policy p = {.builds_before = 500};
	struct db_retention_counts c = {0};
	struct db_artifact_file *files = NULL;
	size_t nfiles = 0;
	purge(&f, &p, 100, &c, &files, &nfiles);
	CHECK(!exists(&f, "builds", b1));
	CHECK(exists(&f, "builds", b2));
	CHECK(exists(&f, "builds", brun));
	CHECK(exists(&f, "buildrequests", brr));
	CHECK(!exists(&f, "buildrequests", br1));
	CHECK(!exists(&f, "buildsets", bs1));
	CHECK_INT(c.builds, 1);
	CHECK_INT(c.buildrequests, 1);
	CHECK_INT(c.buildsets, 1);
	CHECK_INT(c.sourcestamps, 1);
	CHECK_INT(c.artifacts, 1);
	CHECK_INT(count(&f, "SELECT count(*) FROM builds"), 2);
	CHECK_INT(count(&f, "SELECT count(*) FROM steps"), 2);
	CHECK_INT(count(&f, "SELECT count(*) FROM logs"), 2);
	CHECK_INT(count(&f, "SELECT count(*) FROM test_result_sets"), 2);
	CHECK_INT(count(&f, "SELECT count(*) FROM test_results"), 4);
	CHECK_INT(count(&f, "SELECT count(*) FROM numbers"), 2);
	CHECK_INT(count(&f, "SELECT count(*) FROM artifacts"), 2);
	CHECK_INT(count(&f, "SELECT count(*) FROM sourcestamps"), 2);
	CHECK_INT(nfiles, 1);
	if (nfiles == 1) {
		char want[64];
		snprintf(want, sizeof(want), "%lld/a.bin", (long long)b1);
		CHECK_STR(files[0].path, want);
		CHECK(!files[0].dir);
	}
	check_no_dangling(&f);
	db_artifact_files_free(files, nfiles);
	db_close(f.db);
}

TEST(builds_by_count_and_collapsed)
{
	struct fx f;
	fx_open(&f);
	int64_t brun = mkbuild(&f, 1, 0, 0, NULL, NULL); /* running, the oldest */
	int64_t b[5];
	for (int i = 0; i < 5; i++)
		b[i] = mkbuild(&f, 10 + i, 20 + i, RESULTS_SUCCESS, NULL, NULL);
	/* a request collapsed into the oldest finished build */
	char sql[128];
	snprintf(sql, sizeof(sql), "UPDATE buildrequests SET collapsed_into = %lld WHERE id = 1",
		 (long long)b[0]);
	exec(&f, sql);
	struct db_retention_policy p = {.keep_per_builder = 2};
	struct db_retention_counts c = {0};
	struct db_artifact_file *files = NULL;
	size_t nfiles = 0;
	purge(&f, &p, 100, &c, &files, &nfiles);
	CHECK_INT(c.builds, 3);
	CHECK(exists(&f, "builds", brun));
	for (int i = 0; i < 3; i++)
		CHECK(!exists(&f, "builds", b[i]));
	CHECK(exists(&f, "builds", b[3]) && exists(&f, "builds", b[4]));
	CHECK_INT(count(&f, "SELECT count(*) FROM buildrequests WHERE collapsed_into IS NOT NULL"),
		  0);
	CHECK_INT(nfiles, 3);
	check_no_dangling(&f);
	db_artifact_files_free(files, nfiles);
	db_close(f.db);
}

TEST(logs_success_sooner)
{
	struct fx f;
	fx_open(&f);
	int64_t ok = mkbuild(&f, 100, 110, RESULTS_SUCCESS, NULL, NULL);
	int64_t bad = mkbuild(&f, 120, 130, RESULTS_FAILURE, NULL, NULL);
	int64_t run = mkbuild(&f, 90, 0, 0, NULL, NULL);
	(void)ok, (void)bad, (void)run;
	/* success logs older than 200 go; others only before 115 */
	struct db_retention_policy p = {.logs_before = 115, .success_logs_before = 200};
	struct db_retention_counts c = {0};
	struct db_artifact_file *files = NULL;
	size_t nfiles = 0;
	purge(&f, &p, 100, &c, &files, &nfiles);
	CHECK_INT(c.logs, 1);
	CHECK_INT(count(&f, "SELECT count(*) FROM logs WHERE content_removed_at IS NOT NULL"), 1);
	CHECK_INT(count(&f,
			"SELECT count(*) FROM logs l JOIN steps s ON s.id = l.stepid WHERE "
			"s.buildid = 1 AND l.num_lines = 3 AND l.content_removed_at IS NOT NULL"),
		  1);
	CHECK_INT(count(&f, "SELECT count(*) FROM logchunks c JOIN logs l ON l.id = c.logid JOIN "
			    "steps s ON s.id = l.stepid WHERE s.buildid = 1"),
		  0);
	CHECK_INT(count(&f, "SELECT count(*) FROM logchunks"),
		  2); /* the failure's, the running one's */
	json_t *l = NULL;
	struct db_query q = {.limit = -1};
	CHECK_INT(db_list(f.db, DB_LOGS, &q, &l, NULL), 0);
	if (l) {
		CHECK(json_is_true(json_object_get(json_array_get(l, 0), "content_removed")));
		CHECK(json_is_false(json_object_get(json_array_get(l, 1), "content_removed")));
		json_decref(l);
	}
	/* a second pass finds nothing more to do */
	struct db_retention_counts c2 = {0};
	purge(&f, &p, 100, &c2, &files, &nfiles);
	CHECK_INT(c2.logs, 0);
	CHECK_INT(count(&f, "SELECT count(*) FROM builds"), 3);
	db_artifact_files_free(files, nfiles);
	db_close(f.db);
}

TEST(tests_numbers_changes)
{
	struct fx f;
	fx_open(&f);
	int64_t b1 = mkbuild(&f, 100, 110, RESULTS_SUCCESS, NULL, NULL);
	int64_t b2 = mkbuild(&f, 1000, 1010, RESULTS_SUCCESS, NULL, NULL);
	(void)b1, (void)b2;
	int64_t c_old, c_kept, c_new, ss;
	struct db_change_new ch = {.author = "a", .branch = "main", .when_timestamp = 50};
	CHECK_INT(db_change_add(f.db, &ch, &c_old, &ss), 0);
	CHECK_INT(db_change_add(f.db, &ch, &c_kept, &ss), 0);
	ch.when_timestamp = 5000;
	CHECK_INT(db_change_add(f.db, &ch, &c_new, &ss), 0);
	/* the second build's buildset builds c_kept */
	CHECK_INT(db_buildset_add_changes(f.db, 2, &c_kept, 1), 0);
	struct db_retention_policy p = {
		.tests_before = 500, .numbers_before = 500, .changes_before = 500};
	struct db_retention_counts c = {0};
	struct db_artifact_file *files = NULL;
	size_t nfiles = 0;
	purge(&f, &p, 100, &c, &files, &nfiles);
	CHECK_INT(c.test_results, 2);
	CHECK_INT(c.numbers, 1);
	CHECK_INT(c.changes, 1);
	CHECK(!exists(&f, "changes", c_old));
	CHECK(exists(&f, "changes", c_kept)); /* a kept buildset builds it */
	CHECK(exists(&f, "changes", c_new));
	CHECK_INT(count(&f, "SELECT count(*) FROM test_result_sets"), 1);
	CHECK_INT(count(&f, "SELECT count(*) FROM builds"), 2);
	/* once the build goes, its buildset does, and the change with it */
	p = (struct db_retention_policy){.builds_before = 2000, .changes_before = 500};
	struct db_retention_counts c2 = {0};
	purge(&f, &p, 100, &c2, &files, &nfiles);
	CHECK_INT(c2.builds, 2);
	CHECK_INT(c2.changes, 1);
	CHECK(!exists(&f, "changes", c_kept));
	CHECK(exists(&f, "changes", c_new));
	check_no_dangling(&f);
	db_artifact_files_free(files, nfiles);
	db_close(f.db);
}

TEST(batches_are_bounded_and_dry_run)
{
	struct fx f;
	fx_open(&f);
	for (int i = 0; i < 120; i++)
		mkbuild(&f, 10 + i, 11 + i, RESULTS_SUCCESS, NULL, NULL);
	struct db_retention_policy p = {.builds_before = 1000};
	struct db_retention_counts c = {0};
	struct db_artifact_file *files = NULL;
	size_t nfiles = 0;
	CHECK_INT(db_retention_run(f.db, &p, true, &c, &files, &nfiles), 0);
	CHECK_INT(c.builds, 120);
	CHECK_INT(nfiles, 0);
	CHECK_INT(count(&f, "SELECT count(*) FROM builds"), 120);
	/* at most 10 builds a batch */
	struct db_retention_pass st = {0};
	struct db_retention_counts c2 = {0};
	int batches = 0, r;
	int64_t prev = 0;
	bool bounded = true;
	do {
		r = db_retention_batch(f.db, &p, &st, 10, 1000.0, &c2, &files, &nfiles);
		bounded = bounded && c2.builds - prev <= 10;
		prev = c2.builds;
		batches++;
	} while (r > 0 && batches < 1000);
	CHECK_INT(r, 0);
	CHECK(bounded);
	CHECK(batches >= 12);
	CHECK_INT(c2.builds, 120);
	CHECK_INT(nfiles, 120);
	CHECK_INT(count(&f, "SELECT count(*) FROM builds"), 0);
	check_no_dangling(&f);
	db_artifact_files_free(files, nfiles);
	int64_t bytes = 0;
	CHECK_INT(db_file_bytes(f.db, &bytes), 0);
	CHECK(bytes > 0);
	db_close(f.db);
}

TEST(expired_rows_found_by_index)
{
	struct fx f;
	fx_open(&f);
	char *plan = NULL;
	CHECK_INT(db_sql_explain(f.db,
				 "SELECT l.id FROM logs l WHERE l.complete = 1 AND "
				 "l.content_removed_at IS NULL AND l.id > 5 ORDER BY l.id LIMIT 10",
				 &plan),
		  0);
	CHECK(plan && strstr(plan, "logs_with_content"));
	free(plan);
	plan = NULL;
	CHECK_INT(db_sql_explain(f.db, "SELECT 1 FROM numbers WHERE stepid = 3", &plan), 0);
	CHECK(plan && strstr(plan, "numbers_stepid"));
	free(plan);
	db_close(f.db);
}

/* Issue 13: a builder's own cut-offs replace the global ones for its rows,
 * shorter or longer; one naming a builder the database does not have is
 * ignored; small batches (rows = 1) give the same result. */
static void per_builder_case(size_t rows)
{
	struct fx f;
	fx_open(&f);
	int64_t bid = f.builderid, cid;
	CHECK_INT(db_builder_ensure(f.db, "c", NULL, NULL, &cid), 0);
	int64_t b1 = mkbuild(&f, 100, 110, RESULTS_SUCCESS, NULL, NULL);
	int64_t b2 = mkbuild(&f, 200, 210, RESULTS_SUCCESS, NULL, NULL);
	f.builderid = cid;
	int64_t c1 = mkbuild(&f, 120, 130, RESULTS_SUCCESS, NULL, NULL);
	int64_t c2 = mkbuild(&f, 220, 230, RESULTS_SUCCESS, NULL, NULL);
	int64_t c3 = mkbuild(&f, 300, 310, RESULTS_SUCCESS, NULL, NULL);
	f.builderid = bid;
	int64_t b3 = mkbuild(&f, 400, 410, RESULTS_SUCCESS, NULL, NULL);
	struct db_retention_builder own[2] = {
		/* c: a shorter cut-off for its builds than the global 150 */
		{.name = "c",
		 .builds_before = 250,
		 .keep_per_builder = 0,
		 .success_logs_before = 1000,
		 .tests_before = 1000,
		 .numbers_before = 1000},
		{.name = "ghost", .builds_before = 1e9, .numbers_before = 1e9},
	};
	struct db_retention_policy p = {.builds_before = 150, .builders = own, .nbuilders = 2};
	CHECK_INT(db_retention_resolve(f.db, &p), 0);
	CHECK(own[0].builderid == 0 && own[1].builderid == cid); /* sorted by builderid */
	struct db_retention_counts c = {0};
	struct db_artifact_file *files = NULL;
	size_t nfiles = 0;
	/* `kiln cleanupdb --dry-run`'s path counts the same and keeps all */
	CHECK_INT(db_retention_run(f.db, &p, true, &c, &files, &nfiles), 0);
	CHECK_INT(c.builds, 3);
	CHECK_INT(count(&f, "SELECT count(*) FROM builds"), 6);
	c = (struct db_retention_counts){0};
	purge(&f, &p, rows, &c, &files, &nfiles);
	CHECK(!exists(&f, "builds", b1)); /* the global 150 */
	CHECK(exists(&f, "builds", b2));
	CHECK(exists(&f, "builds", b3));
	CHECK(!exists(&f, "builds", c1)); /* c's own 250 */
	CHECK(!exists(&f, "builds", c2));
	CHECK(exists(&f, "builds", c3));
	CHECK_INT(c.builds, 3);
	/* c's own log, test and number cut-offs took c3's; b's stay */
	CHECK_INT(count(&f, "SELECT count(*) FROM logs WHERE content_removed_at IS NOT NULL"), 1);
	CHECK_INT(count(&f, "SELECT count(*) FROM test_result_sets"), 2);
	CHECK_INT(count(&f, "SELECT count(*) FROM numbers"), 2);
	check_no_dangling(&f);
	db_artifact_files_free(files, nfiles);

	/* longer: the global cut-off takes every b build; c keeps its own
	 * (a walk by age goes on past c's rows to the newest cut-off) */
	p.builds_before = 1000;
	own[1].builds_before = 50;
	own[1].success_logs_before = own[1].tests_before = own[1].numbers_before = 0;
	c = (struct db_retention_counts){0};
	files = NULL;
	nfiles = 0;
	purge(&f, &p, rows, &c, &files, &nfiles);
	CHECK(!exists(&f, "builds", b2));
	CHECK(!exists(&f, "builds", b3));
	CHECK(exists(&f, "builds", c3));
	CHECK_INT(c.builds, 2);
	db_artifact_files_free(files, nfiles);

	/* keep_per_builder for c alone (the global one keeps all) */
	f.builderid = cid;
	int64_t c4 = mkbuild(&f, 500, 510, RESULTS_SUCCESS, NULL, NULL);
	int64_t c5 = mkbuild(&f, 600, 610, RESULTS_SUCCESS, NULL, NULL);
	f.builderid = bid;
	int64_t b4 = mkbuild(&f, 700, 710, RESULTS_SUCCESS, NULL, NULL);
	int64_t b5 = mkbuild(&f, 800, 810, RESULTS_SUCCESS, NULL, NULL);
	p = (struct db_retention_policy){.builders = own, .nbuilders = 2};
	own[1] =
		(struct db_retention_builder){.name = "c", .builderid = cid, .keep_per_builder = 2};
	c = (struct db_retention_counts){0};
	files = NULL;
	nfiles = 0;
	purge(&f, &p, rows, &c, &files, &nfiles);
	CHECK(!exists(&f, "builds", c3));
	CHECK(exists(&f, "builds", c4));
	CHECK(exists(&f, "builds", c5));
	CHECK(exists(&f, "builds", b4));
	CHECK(exists(&f, "builds", b5));
	CHECK_INT(c.builds, 1);
	check_no_dangling(&f);
	db_artifact_files_free(files, nfiles);
	db_close(f.db);
}

TEST(per_builder_overrides)
{
	per_builder_case(100);
	per_builder_case(1);
}

int main(void)
{
	RUN(builds_by_age);
	RUN(builds_by_count_and_collapsed);
	RUN(logs_success_sooner);
	RUN(tests_numbers_changes);
	RUN(batches_are_bounded_and_dry_run);
	RUN(expired_rows_found_by_index);
	RUN(per_builder_overrides); /* issue 13 */
	return tap_done();
}
