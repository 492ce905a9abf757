/*
 * The retention's calls answered on the loop (db.h, issue 14;
 * src/db/db-retention-async.c on SQLite, src/db/db-pg-retention.c on a real
 * PostgreSQL server): the same rows in two fresh databases, one of each
 * backend, then a whole purge pass in small batches and the artifacts'
 * usage, oldest rows and deletion.  What each removed (counts, files) and
 * the rows left in every table must be the same on both, and the
 * documented rules must hold: a running build stays, a builder's own
 * cut-offs replace the global ones, a change a kept buildset builds stays.
 */
#include "tap.h"
#include "pg-test.h"
#include "wait.h"
#include "pg-alike.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <libpq-fe.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "db/db-internal.h"

#define diag(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

static char dir[] = "/tmp/kiln-test-pgret.XXXXXX";
static uv_loop_t loop;

#define NBUILDS 12

/* ---- raw SQL on either backend (the fixture, and the rows left) ------------------------- */

struct side {
	struct db *db;
	PGconn *pq; /* PostgreSQL: a plain blocking connection of the test's own */
};

static void side_exec(struct side *s, const char *sql)
{
	if (s->pq) {
		PGresult *res = PQexec(s->pq, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQresultStatus(res) != PGRES_TUPLES_OK)
			TAP_FAIL("%s: %s", sql, PQerrorMessage(s->pq));
		PQclear(res);
		return;
	}
	char *err = NULL;
	if (sqlite3_exec(s->db->h, sql, NULL, NULL, &err) != SQLITE_OK)
		TAP_FAIL("%s: %s", sql, err);
	sqlite3_free(err);
}

/* The rows of sql (integer columns), one line "what: a,b;c,d;" into out. */
static void side_rows(struct side *s, const char *what, const char *sql, struct buf *out)
{
	CHECK_INT(buf_addf(out, "%s:", what), 0);
	if (s->pq) {
		PGresult *res = PQexec(s->pq, sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			TAP_FAIL("%s: %s", sql, PQerrorMessage(s->pq));
		for (int i = 0; i < PQntuples(res); i++)
			for (int j = 0; j < PQnfields(res); j++)
				CHECK_INT(buf_addf(out, " %s%s", PQgetvalue(res, i, j),
						   j + 1 == PQnfields(res) ? ";" : ","),
					  0);
		PQclear(res);
	} else {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(s->db->h, sql, -1, &st, NULL) != SQLITE_OK)
			TAP_FAIL("%s: %s", sql, sqlite3_errmsg(s->db->h));
		while (st && sqlite3_step(st) == SQLITE_ROW) {
			int n = sqlite3_column_count(st);
			for (int j = 0; j < n; j++)
				CHECK_INT(buf_addf(out, " %lld%s",
						   (long long)sqlite3_column_int64(st, j),
						   j + 1 == n ? ";" : ","),
					  0);
		}
		sqlite3_finalize(st);
	}
	CHECK_INT(buf_addch(out, '\n'), 0);
}

/* Builders a, b, c; build i of builder 1 + i % 3 started at 100 i and
 * finished 50 s later (the last one still runs), each with its request,
 * buildset, sourcestamp, step, log and chunk, a test result set of 3, a
 * number and two artifact rows (a file, and a file in an extracted
 * directory); changes 1-4 at 100 j, the first built by the last buildset;
 * a request collapsed into build 3. */
static void fixture(struct side *s)
{
	const char *blob = s->pq ? "'\\x6f610a'::bytea" : "X'6f610a'";
	char sql[4096];
	side_exec(s, "INSERT INTO masters (id, name, last_active) VALUES (1, 'm', 0)");
	side_exec(s, "INSERT INTO builders (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')");
	for (int i = 1; i <= NBUILDS; i++) {
		int bl = 1 + i % 3, done = i < NBUILDS, results = i % 4 == 0 ? 2 : 0;
		double t0 = 100.0 * i, t1 = t0 + 50;
		char t1s[32];
		snprintf(t1s, sizeof(t1s), done ? "%g" : "NULL", t1);
		snprintf(
			sql, sizeof(sql),
			"INSERT INTO sourcestamps (id, created_at) VALUES (%d, %g);"
			"INSERT INTO buildsets (id, submitted_at, complete) VALUES (%d, %g, %d);"
			"INSERT INTO buildset_sourcestamps (buildsetid, sourcestampid) VALUES (%d, "
			"%d);"
			"INSERT INTO buildrequests (id, buildsetid, builderid, submitted_at, "
			"complete) "
			"VALUES (%d, %d, %d, %g, %d);"
			"INSERT INTO builds (id, number, builderid, buildrequestid, masterid, "
			"started_at, complete, complete_at, results) VALUES (%d, %d, %d, %d, 1, "
			"%g, %d, "
			"%s, %s);"
			"INSERT INTO steps (id, number, name, buildid) VALUES (%d, 0, 's', %d);"
			"INSERT INTO logs (id, name, slug, stepid, type, complete, num_lines) "
			"VALUES "
			"(%d, 'stdio', 'stdio', %d, 's', %d, 1);"
			"INSERT INTO logchunks (logid, first_line, last_line, content) VALUES (%d, "
			"0, "
			"0, %s);"
			"INSERT INTO test_result_sets (id, builderid, buildid, stepid, category, "
			"value_unit) VALUES (%d, %d, %d, %d, 'c', 'u');"
			"INSERT INTO test_results (builderid, test_result_setid, value) VALUES "
			"(%d, %d, "
			"'1'), (%d, %d, '2'), (%d, %d, '3');"
			"INSERT INTO numbers (id, builderid, buildid, name, value, recorded_at) "
			"VALUES "
			"(%d, %d, %d, 'n', 1, %g);"
			"INSERT INTO artifacts (id, buildid, name, path, size, sha256, created_at) "
			"VALUES (%d, %d, 'x', '%d/x', 10, '', %g);"
			"INSERT INTO artifacts (id, buildid, name, path, size, sha256, created_at, "
			"dir) "
			"VALUES (%d, %d, 'y', '%d/d/y', 20, '', %g, '%d/d');",
			i, t0, i, t0, done, i, i, i, i, bl, t0, done, i, i, bl, i, t0, done, t1s,
			done ? (results ? "2" : "0") : "NULL", i, i, i, i, done, i, blob, i, bl, i,
			i, bl, i, bl, i, bl, i, i, bl, i, t0, 2 * i - 1, i, i, t0, 2 * i, i, i, t0,
			i);
		side_exec(s, sql);
	}
	for (int j = 1; j <= 4; j++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO sourcestamps (id, created_at) VALUES (%d, %d);"
			 "INSERT INTO changes (id, when_timestamp, sourcestampid) VALUES (%d, %d, "
			 "%d)",
			 100 + j, 100 * j, j, 100 * j, 100 + j);
		side_exec(s, sql);
	}
	snprintf(sql, sizeof(sql),
		 "INSERT INTO buildset_changes (buildsetid, changeid) VALUES (%d, 1)", NBUILDS);
	side_exec(s, sql);
	/* a request of buildset 3 collapsed into build 3: the build goes, the
	 * request stays (collapsed_into cleared), and so does its buildset */
	side_exec(s,
		  "INSERT INTO buildrequests (id, buildsetid, builderid, submitted_at, complete, "
		  "collapsed_into) VALUES (99, 3, 1, 300, 1, 3)");
}

/* ---- answers ---------------------------------------------------------------------------- */

struct answer {
	bool done;
	int r;
	char err[256];
	struct db_retention_step s;
	int64_t bytes, max_id, keep_from;
	struct db_artifact_age rows[64];
	size_t nrows;
	struct db_artifact_file *files; /* owned */
	size_t nfiles;
};

static bool answered(void *arg)
{
	return ((struct answer *)arg)->done;
}

static void on_batch(void *arg, int r, struct db_retention_step *s, const char *err)
{
	struct answer *a = arg;
	a->done = true;
	a->r = r;
	snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
	if (s) {
		a->s = *s;
		s->files = NULL; /* taken */
		s->nfiles = 0;
	}
}

static void on_usage(void *arg, int r, int64_t bytes, int64_t max_id, int64_t keep_from,
		     const char *err)
{
	struct answer *a = arg;
	a->done = true;
	a->r = r;
	snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
	a->bytes = bytes;
	a->max_id = max_id;
	a->keep_from = keep_from;
}

static void on_oldest(void *arg, int r, const struct db_artifact_age *rows, size_t n,
		      const char *err)
{
	struct answer *a = arg;
	a->done = true;
	a->r = r;
	snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
	a->nrows = n < 64 ? n : 64;
	if (rows)
		memcpy(a->rows, rows, a->nrows * sizeof(*rows));
}

static void on_deleted(void *arg, int r, struct db_artifact_file *files, size_t n, const char *err)
{
	struct answer *a = arg;
	a->done = true;
	a->r = r;
	snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
	a->files = files;
	a->nfiles = n;
}

static bool wait_answer(int send_r, struct answer *a)
{
	if (send_r < 0) {
		TAP_FAIL("the call was refused: %d", send_r);
		return false;
	}
	CHECK(!a->done); /* never from inside the call */
	if (!test_run_until(&loop, answered, a, TEST_GUARD_MS)) {
		TAP_FAIL("no answer");
		return false;
	}
	return true;
}

static int file_cmp(const void *x, const void *y)
{
	const struct db_artifact_file *a = x, *b = y;
	int c = strcmp(a->path, b->path);
	return c ? c : (int)a->dir - (int)b->dir;
}

static void add_files(struct buf *out, struct db_artifact_file *f, size_t n)
{
	qsort(f, n, sizeof(*f), file_cmp);
	for (size_t i = 0; i < n; i++)
		CHECK_INT(buf_addf(out, " %s%s", f[i].path, f[i].dir ? "/" : ""), 0);
	CHECK_INT(buf_addch(out, '\n'), 0);
}

/* ---- the script ------------------------------------------------------------------------- */

static void add_counts(struct buf *out, const char *what, const struct db_retention_counts *c)
{
	CHECK_INT(buf_addf(out,
			   "%s: builds %lld logs %lld test_results %lld numbers %lld changes "
			   "%lld buildrequests %lld buildsets %lld sourcestamps %lld artifacts "
			   "%lld rows %lld\n",
			   what, (long long)c->builds, (long long)c->logs,
			   (long long)c->test_results, (long long)c->numbers, (long long)c->changes,
			   (long long)c->buildrequests, (long long)c->buildsets,
			   (long long)c->sourcestamps, (long long)c->artifacts, (long long)c->rows),
		  0);
}

static void left(struct side *s, struct buf *out)
{
	side_rows(s, "builds", "SELECT id FROM builds ORDER BY id", out);
	side_rows(s, "buildrequests",
		  "SELECT id, COALESCE(collapsed_into, 0) FROM buildrequests ORDER BY id", out);
	side_rows(s, "buildsets", "SELECT id FROM buildsets ORDER BY id", out);
	side_rows(s, "sourcestamps", "SELECT id FROM sourcestamps ORDER BY id", out);
	side_rows(s, "steps", "SELECT id FROM steps ORDER BY id", out);
	side_rows(s, "logs (content kept)",
		  "SELECT id, CASE WHEN content_removed_at IS NULL THEN 1 ELSE 0 END FROM logs "
		  "ORDER BY id",
		  out);
	side_rows(s, "logchunks", "SELECT logid FROM logchunks ORDER BY logid", out);
	side_rows(s, "test_result_sets", "SELECT id FROM test_result_sets ORDER BY id", out);
	side_rows(s, "test_results",
		  "SELECT test_result_setid, count(*) FROM test_results GROUP BY "
		  "test_result_setid ORDER BY test_result_setid",
		  out);
	side_rows(s, "numbers", "SELECT id FROM numbers ORDER BY id", out);
	side_rows(s, "artifacts", "SELECT id FROM artifacts ORDER BY id", out);
	side_rows(s, "changes", "SELECT id FROM changes ORDER BY id", out);
}

static void script(struct side *s, struct buf *out)
{
	struct db *db = s->db;
	fixture(s);
	struct db_retention_builder own[2] = {
		/* b keeps its builds longer and more of them, drops its logs sooner */
		{.name = "b",
		 .builds_before = 250,
		 .keep_per_builder = 10,
		 .logs_before = 1150,
		 .success_logs_before = 1150,
		 .tests_before = 0,
		 .numbers_before = 0},
		{.name = "nosuch", .builds_before = 5000, .keep_per_builder = 1},
	};
	struct db_retention_policy p = {
		.builds_before = 450,
		.keep_per_builder = 2,
		.logs_before = 0,
		.success_logs_before = 1050,
		.tests_before = 900,
		.numbers_before = 1000,
		.changes_before = 350,
		.builders = own,
		.nbuilders = 2,
	};
	CHECK_INT(db_retention_resolve(db, &p), 0);
	/* `kiln cleanupdb --dry-run`: the whole purge counted, then undone */
	struct buf before, after;
	buf_init(&before, 1u << 16);
	buf_init(&after, 1u << 16);
	left(s, &before);
	struct db_retention_counts dry = {0};
	struct db_artifact_file *dry_files = NULL;
	size_t ndry_files = 0;
	CHECK_INT(db_retention_run(db, &p, true, &dry, &dry_files, &ndry_files), 0);
	CHECK(!dry_files && ndry_files == 0);
	left(s, &after);
	CHECK_STR(after.ptr, before.ptr); /* nothing changed */
	buf_release(&before);
	buf_release(&after);
	add_counts(out, "dry run", &dry);
	struct db_retention_pass st = {0};
	struct db_retention_counts all = {0};
	struct db_artifact_file *files = NULL;
	size_t nfiles = 0, batches = 0;
	int r = 1;
	while (r == 1 && batches < 200) {
		struct answer a = {0};
		if (!wait_answer(db_retention_batch_async(db, &p, &st, 2, 1e9, on_batch, &a), &a))
			break;
		r = a.r;
		batches++;
		if (r < 0) {
			TAP_FAIL("batch: %d %s", r, a.err);
			break;
		}
		st = a.s.st;
		all.builds += a.s.counts.builds;
		all.logs += a.s.counts.logs;
		all.test_results += a.s.counts.test_results;
		all.numbers += a.s.counts.numbers;
		all.changes += a.s.counts.changes;
		all.buildrequests += a.s.counts.buildrequests;
		all.buildsets += a.s.counts.buildsets;
		all.sourcestamps += a.s.counts.sourcestamps;
		all.artifacts += a.s.counts.artifacts;
		all.rows += a.s.counts.rows;
		if (a.s.nfiles) {
			files = xreallocarray(files, nfiles + a.s.nfiles, sizeof(*files));
			memcpy(files + nfiles, a.s.files, a.s.nfiles * sizeof(*files));
			nfiles += a.s.nfiles;
			free(a.s.files);
		}
	}
	CHECK_INT(r, 0);
	CHECK(batches > 3); /* max_rows 2: the cursors carried the pass */
	CHECK_INT(buf_addf(out,
			   "purged: builds %lld logs %lld test_results %lld numbers %lld changes "
			   "%lld buildrequests %lld buildsets %lld sourcestamps %lld artifacts "
			   "%lld rows %lld\nfiles:",
			   (long long)all.builds, (long long)all.logs, (long long)all.test_results,
			   (long long)all.numbers, (long long)all.changes,
			   (long long)all.buildrequests, (long long)all.buildsets,
			   (long long)all.sourcestamps, (long long)all.artifacts,
			   (long long)all.rows),
		  0);
	add_files(out, files, nfiles);
	db_artifact_files_free(files, nfiles);
	CHECK(all.builds > 0 && all.logs > 0 && all.test_results > 0 && all.numbers > 0 &&
	      all.changes > 0);
	/* the dry run counted what the batches then purged */
	CHECK(!memcmp(&dry, &all, sizeof(dry)));
	left(s, out);

	/* the artifacts' retention */
	struct answer u = {0};
	if (wait_answer(db_artifacts_usage_async(db, 0, 2, on_usage, &u), &u))
		CHECK_INT(buf_addf(out, "usage: r=%d bytes=%lld max=%lld keep_from=%lld\n", u.r,
				   (long long)u.bytes, (long long)u.max_id, (long long)u.keep_from),
			  0);
	struct answer o = {0};
	if (wait_answer(db_artifacts_oldest_async(db, 0, 5, on_oldest, &o), &o)) {
		CHECK_INT(buf_addf(out, "oldest: r=%d", o.r), 0);
		for (size_t i = 0; i < o.nrows; i++)
			CHECK_INT(buf_addf(out, " %lld/%lld/%lld/%g/%d",
					   (long long)o.rows[i].artifactid,
					   (long long)o.rows[i].buildid, (long long)o.rows[i].size,
					   o.rows[i].created_at, o.rows[i].build_done),
				  0);
		CHECK_INT(buf_addch(out, '\n'), 0);
	}
	/* one file of a build goes, its directory stays (the other row's);
	 * then the other, and a missing id */
	int64_t first[] = {o.nrows > 0 ? o.rows[0].artifactid : 0};
	int64_t second[] = {o.nrows > 1 ? o.rows[1].artifactid : 0, 999999};
	int64_t *sets[] = {first, second};
	size_t lens[] = {1, 2};
	for (int k = 0; k < 2; k++) {
		struct answer d = {0};
		if (!wait_answer(db_artifacts_delete_async(db, sets[k], lens[k], on_deleted, &d),
				 &d))
			continue;
		CHECK_INT(buf_addf(out, "deleted: r=%d files:", d.r), 0);
		add_files(out, d.files, d.nfiles);
		db_artifact_files_free(d.files, d.nfiles);
	}
	side_rows(s, "artifacts", "SELECT id FROM artifacts ORDER BY id", out);
	struct answer u2 = {0};
	if (wait_answer(db_artifacts_usage_async(db, 0, 0, on_usage, &u2), &u2))
		CHECK_INT(buf_addf(out, "usage: r=%d bytes=%lld max=%lld keep_from=%lld\n", u2.r,
				   (long long)u2.bytes, (long long)u2.max_id,
				   (long long)u2.keep_from),
			  0);
}

/* `kiln cleanupdb`'s other calls: the whole purge in one transaction
 * (committed: its files returned), the size and VACUUM. */
static void script_whole(struct side *s, struct buf *out)
{
	struct db *db = s->db;
	int64_t bytes = 0;
	CHECK_INT(db_file_bytes(db, &bytes), 0);
	CHECK(bytes > 0);
	struct db_retention_policy p = {.builds_before = 1e9, .changes_before = 1e9};
	CHECK_INT(db_retention_resolve(db, &p), 0);
	struct db_retention_counts c = {0};
	struct db_artifact_file *files = NULL;
	size_t nfiles = 0;
	CHECK_INT(db_retention_run(db, &p, false, &c, &files, &nfiles), 0);
	add_counts(out, "whole run", &c);
	CHECK(c.builds > 0);
	CHECK_INT(buf_addf(out, "files:"), 0);
	add_files(out, files, nfiles);
	db_artifact_files_free(files, nfiles);
	left(s, out);
	CHECK_INT(db_vacuum(db), 0);
	CHECK_INT(db_file_bytes(db, &bytes), 0);
	CHECK(bytes > 0);
	/* nothing left to purge: a second run counts nothing */
	struct db_retention_counts again = {0};
	CHECK_INT(db_retention_run(db, &p, false, &again, &files, &nfiles), 0);
	CHECK_INT(again.rows, 0);
	db_artifact_files_free(files, nfiles);
}

/* ---- both backends ---------------------------------------------------------------------- */

TEST(both_backends_purge_alike)
{
	char url[300];
	snprintf(url, sizeof(url), "sqlite:%s/ret.sqlite", dir);
	struct side lite = {.db = pg_alike_open(&loop, url)};
	struct side pg = {.db = pg_alike_open(&loop, pg_test.url)};
	if (!lite.db || !pg.db)
		return;
	CHECK(db_is_postgresql(pg.db));
	pg.pq = PQconnectdb(pg_test.url);
	if (PQstatus(pg.pq) != CONNECTION_OK) {
		TAP_FAIL("cannot connect: %s", PQerrorMessage(pg.pq));
		PQfinish(pg.pq);
		return;
	}
	struct buf a, b;
	buf_init(&a, 1u << 20);
	buf_init(&b, 1u << 20);
	script(&lite, &a);
	script(&pg, &b);
	script_whole(&lite, &a);
	script_whole(&pg, &b);
	CHECK_INT(buf_addch(&a, '\0'), 0);
	CHECK_INT(buf_addch(&b, '\0'), 0);
	if (strcmp(a.ptr, b.ptr)) {
		diag("SQLite's answers:\n%s", a.ptr);
		diag("PostgreSQL's answers:\n%s", b.ptr);
	}
	CHECK_STR(b.ptr, a.ptr);
	/* the rules themselves: 1-3 by age but b's 1 by its own shorter age;
	 * then past the count of 2 per builder, 5 (c) and 6 (a), the running
	 * 12 counted among a's newest; b keeps its 4, 7, 10 (its own count of
	 * 10); the change a kept buildset builds stays */
	CHECK(strstr(a.ptr, "builds: 4; 7; 8; 9; 10; 11; 12;\n") != NULL);
	CHECK(strstr(a.ptr,
		     "logs (content kept): 4, 0; 7, 0; 8, 1; 9, 0; 10, 0; 11, 1; 12, 1;\n") !=
	      NULL);
	CHECK(strstr(a.ptr, "changes: 1; 4;\n") != NULL);
	CHECK(strstr(a.ptr, " 99, 0;\n") != NULL);
	CHECK(strstr(a.ptr, "buildsets: 3; 4;") != NULL);
	buf_release(&a);
	buf_release(&b);
	PQfinish(pg.pq);
	db_close(lite.db);
	db_close(pg.db);
}

static int calls;

static void on_batch_counted(void *arg, int r, struct db_retention_step *s, const char *err)
{
	calls++;
	on_batch(arg, r, s, err);
}

static void on_usage_counted(void *arg, int r, int64_t bytes, int64_t max_id, int64_t keep_from,
			     const char *err)
{
	calls++;
	on_usage(arg, r, bytes, max_id, keep_from, err);
}

/* A runner stopped with an answer in flight waits for it: db_close gives
 * every call sent its answer, once (-ECANCELED when it was not done). */
TEST(close_answers_in_flight)
{
	char url[300];
	snprintf(url, sizeof(url), "sqlite:%s/close.sqlite", dir);
	const char *urls[] = {url, pg_test.url};
	for (int i = 0; i < 2; i++) {
		struct db *db = pg_alike_open(&loop, urls[i]);
		if (!db)
			return;
		struct db_retention_policy p = {.builds_before = 1, .changes_before = 1};
		struct db_retention_pass st = {0};
		struct answer a = {0}, u = {0};
		calls = 0;
		CHECK_INT(db_retention_batch_async(db, &p, &st, 10, 10, on_batch_counted, &a), 0);
		CHECK_INT(db_artifacts_usage_async(db, 0, 0, on_usage_counted, &u), 0);
		CHECK(!a.done && !u.done);
		db_close(db);
		uv_run(&loop, UV_RUN_NOWAIT);
		CHECK(a.done && u.done);
		CHECK_INT(calls, 2);
		/* PostgreSQL's close commits the turn's writes first: the batch
		 * may have its answer, and so may the read sent right behind its
		 * COMMIT (the server's timing); SQLite's are cancelled */
		CHECK(a.r == -ECANCELED || (i == 1 && a.r >= 0));
		CHECK(u.r == -ECANCELED || (i == 1 && u.r >= 0));
		db_artifact_files_free(a.s.files, a.s.nfiles);
	}
}

int main(int argc, char **argv)
{
	if (!mkdtemp(dir) || uv_loop_init(&loop) != 0)
		return 1;
	const char *why = argc > 1 ? pg_test_start(argv[1]) : "no scripts directory given";
	if (why) {
		diag("PostgreSQL: %s", why);
		CHECK(!"a PostgreSQL server for the test");
	} else {
		RUN(both_backends_purge_alike);
		RUN(close_answers_in_flight);
	}
	pg_test_cleanup();
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("cannot remove %s", dir);
	return tap_done();
}
