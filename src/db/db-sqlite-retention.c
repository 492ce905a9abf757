/*
 * The retention purge on SQLite (db.h "retention"; slice "retention"):
 * one bounded batch at a time, each a single write, so the loop that runs
 * it (master/retention.c) never stalls for long and `kiln cleanupdb` can
 * run the same batches back to back.  Schema help: 0014-retention.sql.
 *
 * A pass goes through phases, each with a cursor in struct
 * db_retention_pass: builds by age, builds past keep_per_builder (builder
 * by builder), logs' content, test result sets, numbers, changes.  The
 * phases that walk a table by id stop at the first row too new to expire
 * (ids grow with time), so a pass reads little more than what it deletes.
 */
#include "db/db-internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/xalloc.h"

enum {
	RET_BUILDS_AGE,
	RET_BUILDS_COUNT,
	RET_LOGS,
	RET_TESTS,
	RET_NUMBERS,
	RET_CHANGES,
	RET_DONE,
};

/* rows one window query reads */
#define RET_WINDOW 128
/* the loop connection's busy timeout (DB_BUSY_TIMEOUT_MS, db-sqlite.c) */
#define RET_BUSY_TIMEOUT_MS 5000
/* test results deleted by one statement */
#define RET_TRES_CHUNK 1000

struct ret_ctx {
	struct db *db;
	const struct db_retention_policy *p;
	struct db_retention_pass *st;
	struct db_retention_counts *c;
	struct db_artifact_file *files;
	size_t nfiles, alloc;
	size_t rows_left;
	double deadline_ms;
};

static double ret_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool ret_over(const struct ret_ctx *x)
{
	return x->rows_left == 0 || ret_now_ms() >= x->deadline_ms;
}

static void ret_used(struct ret_ctx *x)
{
	if (x->rows_left)
		x->rows_left--;
}

static int ret_exec1(struct db *db, int id, const char *sql, int64_t v, const char *what,
		     int64_t *ret_changes)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, id, sql);
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, v);
	int r = db_step_done(db, s, what);
	if (r >= 0 && ret_changes)
		*ret_changes = db_changes(db);
	return r;
}

static int ret_sourcestamp_gc(struct ret_ctx *x, int64_t ssid)
{
	int64_t n = 0;
	int r = ret_exec1(x->db, ST_RET_SS_DEL,
			  "DELETE FROM sourcestamps WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM "
			  "buildset_sourcestamps WHERE sourcestampid = ?1) AND NOT EXISTS "
			  "(SELECT 1 FROM changes WHERE sourcestampid = ?1)",
			  ssid, "purge sourcestamp", &n);
	x->c->sourcestamps += n;
	return r;
}

/* A buildset left without requests, when complete, and its sourcestamps
 * nothing else uses. */
static int ret_buildset_gc(struct ret_ctx *x, int64_t bsid)
{
	struct db *db = x->db;
	int64_t ss[16];
	size_t nss = 0;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_RET_BS_SS,
			"SELECT sourcestampid FROM buildset_sourcestamps WHERE buildsetid = ?1 "
			"LIMIT 16");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, bsid);
		int r;
		while ((r = db_step_row(db, s, "buildset sourcestamps")) == 1)
			ss[nss++] = sqlite3_column_int64(s, 0);
		if (r < 0)
			return r;
	}
	int64_t n = 0;
	int r = ret_exec1(db, ST_RET_BS_DEL,
			  "DELETE FROM buildsets WHERE id = ?1 AND complete = 1 AND NOT EXISTS "
			  "(SELECT 1 FROM buildrequests WHERE buildsetid = ?1)",
			  bsid, "purge buildset", &n);
	if (r < 0 || n == 0)
		return r;
	x->c->buildsets++;
	for (size_t i = 0; i < nss && r >= 0; i++)
		r = ret_sourcestamp_gc(x, ss[i]);
	return r;
}

/* One finished build and all that hangs on it. */
static int ret_purge_build(struct ret_ctx *x, int64_t buildid)
{
	struct db *db = x->db;
	int64_t brid = 0, bsid = 0;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_RET_B_INFO,
				"SELECT b.buildrequestid, br.buildsetid FROM builds b LEFT JOIN "
				"buildrequests br ON br.id = b.buildrequestid "
				"WHERE b.id = ?1 AND b.complete = 1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, buildid);
		int r = db_step_row(db, s, "build to purge");
		if (r <= 0)
			return r; /* gone, or running: never purged */
		brid = sqlite3_column_int64(s, 0);
		bsid = sqlite3_column_int64(s, 1);
	}
	int64_t arts = 0;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_RET_B_FILES, "SELECT path, dir FROM artifacts WHERE buildid = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, buildid);
		size_t first = x->nfiles;
		int r;
		while ((r = db_step_row(db, s, "artifacts to purge")) == 1) {
			arts++;
			for (int col = 0; col < 2; col++) {
				const char *v = (const char *)sqlite3_column_text(s, col);
				if (!v)
					continue;
				bool dup = false;
				for (size_t i = first; i < x->nfiles && !dup; i++)
					dup = x->files[i].dir == (col == 1) &&
					      !strcmp(x->files[i].path, v);
				if (dup)
					continue;
				ARRAY_GROW(x->files, x->nfiles + 1, x->alloc);
				x->files[x->nfiles++] = (struct db_artifact_file){
					.path = xstrdup(v), .dir = col == 1};
			}
		}
		if (r < 0)
			return r;
	}
	int64_t n = 0;
	int r = ret_exec1(
		db, ST_RET_B_CHUNKS_DEL,
		"DELETE FROM logchunks WHERE logid IN (SELECT l.id FROM steps s JOIN logs "
		"l ON l.stepid = s.id WHERE s.buildid = ?1)",
		buildid, "purge log chunks", NULL);
	if (r >= 0)
		r = ret_exec1(
			db, ST_RET_B_COLLAPSED,
			"UPDATE buildrequests SET collapsed_into = NULL WHERE collapsed_into = ?1",
			buildid, "purge collapsed_into", NULL);
	if (r < 0)
		return r;
	r = ret_exec1(db, ST_RET_B_DEL, "DELETE FROM builds WHERE id = ?1 AND complete = 1",
		      buildid, "purge build", &n);
	if (r < 0 || n == 0)
		return r;
	x->c->builds++;
	x->c->artifacts += arts;
	if (brid > 0) {
		r = ret_exec1(db, ST_RET_BR_DEL,
			      "DELETE FROM buildrequests WHERE id = ?1 AND complete = 1 AND NOT "
			      "EXISTS (SELECT 1 FROM builds WHERE buildrequestid = ?1)",
			      brid, "purge build request", &n);
		if (r >= 0 && n > 0) {
			x->c->buildrequests++;
			if (bsid > 0)
				r = ret_buildset_gc(x, bsid);
		}
	}
	return r;
}

/* Phase 1: finished builds that completed before builds_before, oldest
 * first by id; stops at a build started after the cut-off. */
static int ret_builds_age(struct ret_ctx *x, bool *ret_done)
{
	struct db *db = x->db;
	int64_t ids[RET_WINDOW];
	size_t n = 0, rows = 0;
	bool stop = false;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_RET_BUILDS_WIN,
				"SELECT id, complete, complete_at, started_at FROM builds "
				"WHERE id > ?1 ORDER BY id LIMIT ?2");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, x->st->after_id);
		sqlite3_bind_int64(s, 2, RET_WINDOW);
		int r;
		while ((r = db_step_row(db, s, "builds by age")) == 1) {
			rows++;
			if (sqlite3_column_double(s, 3) >= x->p->builds_before) {
				stop = true;
				break;
			}
			if (sqlite3_column_int(s, 1) &&
			    sqlite3_column_double(s, 2) < x->p->builds_before)
				ids[n++] = sqlite3_column_int64(s, 0);
			else
				x->st->after_id = sqlite3_column_int64(s, 0);
		}
		if (r < 0)
			return r;
	}
	*ret_done = stop || rows < RET_WINDOW;
	for (size_t i = 0; i < n; i++) {
		if (ret_over(x)) {
			*ret_done = false;
			return 0;
		}
		int r = ret_purge_build(x, ids[i]);
		if (r < 0)
			return r;
		ret_used(x);
		if (ids[i] > x->st->after_id)
			x->st->after_id = ids[i];
	}
	if (n && x->st->after_id < ids[n - 1])
		x->st->after_id = ids[n - 1];
	return 0;
}

/* Phase 2: each builder's finished builds older than its newest
 * keep_per_builder builds. */
static int ret_builds_count(struct ret_ctx *x, bool *ret_done)
{
	struct db *db = x->db;
	*ret_done = false;
	while (!ret_over(x)) {
		if (x->st->builderid == 0) {
			_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
				db, ST_RET_BUILDERS,
				"SELECT id FROM builders WHERE id > ?1 ORDER BY id LIMIT 1");
			if (!s)
				return KILN_EDB;
			sqlite3_bind_int64(s, 1, x->st->after_id);
			int r = db_step_row(db, s, "builders");
			if (r < 0)
				return r;
			if (r == 0) {
				*ret_done = true;
				return 0;
			}
			x->st->builderid = x->st->after_id = sqlite3_column_int64(s, 0);
		}
		int64_t ids[RET_WINDOW];
		size_t n = 0;
		{
			_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
				db, ST_RET_BUILDS_EXCESS,
				"SELECT id FROM builds WHERE builderid = ?1 AND complete = 1 "
				"AND id < (SELECT id FROM builds WHERE builderid = ?1 ORDER "
				"BY id DESC LIMIT 1 OFFSET ?2) ORDER BY id LIMIT ?3");
			if (!s)
				return KILN_EDB;
			sqlite3_bind_int64(s, 1, x->st->builderid);
			sqlite3_bind_int64(s, 2, x->p->keep_per_builder - 1);
			sqlite3_bind_int64(s, 3, RET_WINDOW);
			int r;
			while ((r = db_step_row(db, s, "builds past the count")) == 1)
				ids[n++] = sqlite3_column_int64(s, 0);
			if (r < 0)
				return r;
		}
		size_t i = 0;
		for (; i < n && !ret_over(x); i++) {
			int r = ret_purge_build(x, ids[i]);
			if (r < 0)
				return r;
			ret_used(x);
		}
		if (i == n && n < RET_WINDOW)
			x->st->builderid = 0; /* this builder is done: the next one */
	}
	return 0;
}

/* Phase 3: the content of logs of builds finished before the cut-offs. */
static int ret_logs(struct ret_ctx *x, bool *ret_done)
{
	struct db *db = x->db;
	const struct db_retention_policy *p = x->p;
	double newest =
		p->logs_before > p->success_logs_before ? p->logs_before : p->success_logs_before;
	int64_t ids[RET_WINDOW];
	size_t n = 0, rows = 0;
	bool stop = false;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_RET_LOGS_WIN,
			"SELECT l.id, b.complete, b.complete_at, b.results, b.started_at FROM logs "
			"l "
			"JOIN steps s ON s.id = l.stepid JOIN builds b ON b.id = s.buildid "
			"WHERE l.complete = 1 AND l.content_removed_at IS NULL AND l.id > ?1 "
			"ORDER BY l.id LIMIT ?2");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, x->st->after_id);
		sqlite3_bind_int64(s, 2, RET_WINDOW);
		int r;
		while ((r = db_step_row(db, s, "logs by age")) == 1) {
			rows++;
			if (sqlite3_column_double(s, 4) >= newest) {
				stop = true;
				break;
			}
			double at = sqlite3_column_double(s, 2);
			bool done = sqlite3_column_int(s, 1) != 0;
			bool success = sqlite3_column_type(s, 3) != SQLITE_NULL &&
				       sqlite3_column_int(s, 3) == RESULTS_SUCCESS;
			if (done && ((p->logs_before > 0 && at < p->logs_before) ||
				     (success && p->success_logs_before > 0 &&
				      at < p->success_logs_before)))
				ids[n++] = sqlite3_column_int64(s, 0);
			else
				x->st->after_id = sqlite3_column_int64(s, 0);
		}
		if (r < 0)
			return r;
	}
	*ret_done = stop || rows < RET_WINDOW;
	double now = clock_wall();
	for (size_t i = 0; i < n; i++) {
		if (ret_over(x)) {
			*ret_done = false;
			return 0;
		}
		int r = ret_exec1(db, ST_RET_LOG_CHUNKS_DEL,
				  "DELETE FROM logchunks WHERE logid = ?1", ids[i],
				  "purge log content", NULL);
		if (r >= 0) {
			_cleanup_stmt_ sqlite3_stmt *s =
				db_stmt(db, ST_RET_LOG_MARK,
					"UPDATE logs SET content_removed_at = ?2 WHERE id = ?1");
			if (!s)
				return KILN_EDB;
			sqlite3_bind_int64(s, 1, ids[i]);
			sqlite3_bind_double(s, 2, now);
			r = db_step_done(db, s, "mark log");
		}
		if (r < 0)
			return r;
		x->c->logs++;
		ret_used(x);
		if (ids[i] > x->st->after_id)
			x->st->after_id = ids[i];
	}
	return 0;
}

/* Phase 4: test result sets of builds finished before tests_before. */
static int ret_tests(struct ret_ctx *x, bool *ret_done)
{
	struct db *db = x->db;
	int64_t ids[RET_WINDOW];
	size_t n = 0, rows = 0;
	bool stop = false;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_RET_TSETS_WIN,
			"SELECT t.id, b.complete, b.complete_at, b.started_at FROM "
			"test_result_sets t JOIN builds b ON b.id = t.buildid WHERE t.id > ?1 "
			"ORDER BY t.id LIMIT ?2");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, x->st->after_id);
		sqlite3_bind_int64(s, 2, RET_WINDOW);
		int r;
		while ((r = db_step_row(db, s, "test result sets by age")) == 1) {
			rows++;
			if (sqlite3_column_double(s, 3) >= x->p->tests_before) {
				stop = true;
				break;
			}
			if (sqlite3_column_int(s, 1) &&
			    sqlite3_column_double(s, 2) < x->p->tests_before)
				ids[n++] = sqlite3_column_int64(s, 0);
			else
				x->st->after_id = sqlite3_column_int64(s, 0);
		}
		if (r < 0)
			return r;
	}
	*ret_done = stop || rows < RET_WINDOW;
	for (size_t i = 0; i < n; i++) {
		int64_t k = RET_TRES_CHUNK;
		while (k == RET_TRES_CHUNK) {
			if (ret_over(x)) {
				*ret_done = false;
				return 0;
			}
			_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
				db, ST_RET_TRES_DEL,
				"DELETE FROM test_results WHERE id IN (SELECT id FROM test_results "
				"WHERE test_result_setid = ?1 LIMIT ?2)");
			if (!s)
				return KILN_EDB;
			sqlite3_bind_int64(s, 1, ids[i]);
			sqlite3_bind_int64(s, 2, RET_TRES_CHUNK);
			int r = db_step_done(db, s, "purge test results");
			if (r < 0)
				return r;
			k = db_changes(db);
			x->c->test_results += k;
			ret_used(x);
		}
		int r = ret_exec1(db, ST_RET_TSET_DEL, "DELETE FROM test_result_sets WHERE id = ?1",
				  ids[i], "purge test result set", NULL);
		if (r < 0)
			return r;
		if (ids[i] > x->st->after_id)
			x->st->after_id = ids[i];
	}
	return 0;
}

/* Phase 5: numbers recorded before numbers_before. */
static int ret_numbers(struct ret_ctx *x, bool *ret_done)
{
	struct db *db = x->db;
	int64_t ids[RET_WINDOW];
	size_t n = 0, rows = 0;
	bool stop = false;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_RET_NUM_WIN,
				"SELECT id, recorded_at FROM numbers WHERE id > ?1 ORDER BY id "
				"LIMIT ?2");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, x->st->after_id);
		sqlite3_bind_int64(s, 2, RET_WINDOW);
		int r;
		while ((r = db_step_row(db, s, "numbers by age")) == 1) {
			rows++;
			if (sqlite3_column_double(s, 1) >= x->p->numbers_before) {
				stop = true;
				break;
			}
			ids[n++] = sqlite3_column_int64(s, 0);
		}
		if (r < 0)
			return r;
	}
	*ret_done = stop || rows < RET_WINDOW;
	for (size_t i = 0; i < n; i++) {
		if (ret_over(x)) {
			*ret_done = false;
			return 0;
		}
		int64_t k = 0;
		int r = ret_exec1(db, ST_RET_NUM_DEL, "DELETE FROM numbers WHERE id = ?1", ids[i],
				  "purge number", &k);
		if (r < 0)
			return r;
		x->c->numbers += k;
		ret_used(x);
		x->st->after_id = ids[i];
	}
	return 0;
}

/* Phase 6: changes older than changes_before that no buildset builds
 * (the buildsets of purged builds are gone with them), by time. */
static int ret_changes(struct ret_ctx *x, bool *ret_done)
{
	struct db *db = x->db;
	int64_t ids[RET_WINDOW], ssids[RET_WINDOW];
	double ts[RET_WINDOW];
	size_t n = 0;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_RET_CHG_WIN,
				"SELECT id, when_timestamp, sourcestampid FROM changes WHERE "
				"when_timestamp < ?1 AND (when_timestamp, id) > (?2, ?3) "
				"ORDER BY when_timestamp, id LIMIT ?4");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_double(s, 1, x->p->changes_before);
		sqlite3_bind_double(s, 2, x->st->after_ts);
		sqlite3_bind_int64(s, 3, x->st->after_id);
		sqlite3_bind_int64(s, 4, RET_WINDOW);
		int r;
		while ((r = db_step_row(db, s, "changes by age")) == 1) {
			ids[n] = sqlite3_column_int64(s, 0);
			ts[n] = sqlite3_column_double(s, 1);
			ssids[n++] = sqlite3_column_int64(s, 2);
		}
		if (r < 0)
			return r;
	}
	*ret_done = n < RET_WINDOW;
	for (size_t i = 0; i < n; i++) {
		if (ret_over(x)) {
			*ret_done = false;
			return 0;
		}
		int64_t k = 0;
		int r = ret_exec1(db, ST_RET_CHG_DEL,
				  "DELETE FROM changes WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM "
				  "buildset_changes WHERE changeid = ?1)",
				  ids[i], "purge change", &k);
		if (r >= 0 && k > 0) {
			x->c->changes++;
			r = ret_sourcestamp_gc(x, ssids[i]);
		}
		if (r < 0)
			return r;
		ret_used(x);
		x->st->after_ts = ts[i];
		x->st->after_id = ids[i];
	}
	return 0;
}

static bool ret_phase_on(const struct db_retention_policy *p, int phase)
{
	switch (phase) {
	case RET_BUILDS_AGE:
		return p->builds_before > 0;
	case RET_BUILDS_COUNT:
		return p->keep_per_builder > 0;
	case RET_LOGS:
		return p->logs_before > 0 || p->success_logs_before > 0;
	case RET_TESTS:
		return p->tests_before > 0;
	case RET_NUMBERS:
		return p->numbers_before > 0;
	case RET_CHANGES:
		return p->changes_before > 0;
	}
	return false;
}

static int ret_batch(struct ret_ctx *x)
{
	while (x->st->phase < RET_DONE && !ret_over(x)) {
		bool done = true;
		int r = 0;
		if (ret_phase_on(x->p, x->st->phase)) {
			switch (x->st->phase) {
			case RET_BUILDS_AGE:
				r = ret_builds_age(x, &done);
				break;
			case RET_BUILDS_COUNT:
				r = ret_builds_count(x, &done);
				break;
			case RET_LOGS:
				r = ret_logs(x, &done);
				break;
			case RET_TESTS:
				r = ret_tests(x, &done);
				break;
			case RET_NUMBERS:
				r = ret_numbers(x, &done);
				break;
			case RET_CHANGES:
				r = ret_changes(x, &done);
				break;
			}
		}
		if (r < 0)
			return r;
		if (done) {
			x->st->phase++;
			x->st->after_id = x->st->builderid = 0;
			x->st->after_ts = 0;
		}
	}
	return x->st->phase < RET_DONE ? 1 : 0;
}

int db_retention_batch(struct db *db, const struct db_retention_policy *p,
		       struct db_retention_pass *st, size_t max_rows, double budget_ms,
		       struct db_retention_counts *counts, struct db_artifact_file **files,
		       size_t *nfiles)
{
	struct ret_ctx x = {
		.db = db,
		.p = p,
		.st = st,
		.c = counts,
		.rows_left = max_rows ? max_rows : 1,
		.deadline_ms = ret_now_ms() + budget_ms,
	};
	struct db_retention_pass saved = *st;
	struct db_retention_counts before = *counts;
	int more = 0;
	/* without a loop db_write_end returns the commit's result, not the body's */
	int r = WRITE(more = ret_batch(&x));
	if (r >= 0 && more < 0)
		r = more;
	if (r < 0) {
		/* undone: the same batch again next time, nothing counted */
		*st = saved;
		*counts = before;
		db_artifact_files_free(x.files, x.nfiles);
		return r;
	}
	if (x.nfiles) {
		size_t old = *nfiles;
		*files = xreallocarray(*files, old + x.nfiles, sizeof(**files));
		memcpy(*files + old, x.files, x.nfiles * sizeof(*x.files));
		*nfiles = old + x.nfiles;
	}
	free(x.files);
	counts->rows = counts->builds + counts->logs + counts->test_results + counts->numbers +
		       counts->changes;
	return more;
}

int db_retention_run(struct db *db, const struct db_retention_policy *p, bool dry_run,
		     struct db_retention_counts *counts, struct db_artifact_file **files,
		     size_t *nfiles)
{
	struct db_retention_pass st = {0};
	struct ret_ctx x = {
		.db = db,
		.p = p,
		.st = &st,
		.c = counts,
		.rows_left = SIZE_MAX,
		.deadline_ms = 1e300, /* no time limit: nothing else waits */
	};
	int r = db_write_begin(db);
	if (r < 0)
		return r;
	int rr;
	while ((rr = ret_batch(&x)) > 0)
		x.rows_left = SIZE_MAX;
	counts->rows = counts->builds + counts->logs + counts->test_results + counts->numbers +
		       counts->changes;
	/* a dry run counts inside the transaction, then undoes it all */
	r = db_write_end(db, rr < 0 ? rr : dry_run ? -ECANCELED : 0);
	if (rr < 0 || dry_run) {
		db_artifact_files_free(x.files, x.nfiles);
		return rr < 0 ? rr : 0;
	}
	if (r < 0) {
		db_artifact_files_free(x.files, x.nfiles);
		return r;
	}
	*files = x.files;
	*nfiles = x.nfiles;
	return 0;
}

bool db_checkpoint_running(struct db *db)
{
	return db->ckpt_busy;
}

int db_wal_restart(struct db *db, uint64_t min_bytes, double *ret_ms)
{
	*ret_ms = 0;
	if (!db->ckpt_enabled || !db->path || db->in_txn || db->ckpt_busy || db->closing)
		return 0;
	char wal[4096];
	struct stat st;
	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", db->path) >= sizeof(wal) ||
	    stat(wal, &st) < 0 || (uint64_t)st.st_size < min_bytes)
		return 0;
	/* far past the mark (a big purge, a burst): too much left to copy for
	 * one loop turn; the passive jobs and a later quiet moment do it */
	if ((uint64_t)st.st_size > 4 * min_bytes)
		return 0;
	double t0 = ret_now_ms();
	/* never wait on the loop: a reader elsewhere (a backup) makes it BUSY */
	sqlite3_busy_timeout(db->h, 0);
	int rc = sqlite3_wal_checkpoint_v2(db->h, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_busy_timeout(db->h, RET_BUSY_TIMEOUT_MS);
	*ret_ms = ret_now_ms() - t0;
	if (rc == SQLITE_BUSY)
		return 0; /* a reader: the next time */
	if (rc != SQLITE_OK)
		return db_fail(db, "wal checkpoint");
	return 1;
}

int db_file_bytes(struct db *db, int64_t *ret)
{
	int64_t pages = 0, size = 0;
	sqlite3_stmt *s = db_stmt_dynamic(db, "PRAGMA page_count");
	int r = s ? db_step_int64(db, s, "page_count", &pages) : KILN_EDB;
	if (s)
		sqlite3_reset(s);
	if (r < 0)
		return r;
	s = db_stmt_dynamic(db, "PRAGMA page_size");
	r = s ? db_step_int64(db, s, "page_size", &size) : KILN_EDB;
	if (s)
		sqlite3_reset(s);
	if (r < 0)
		return r;
	*ret = pages * size;
	return 0;
}

int db_vacuum(struct db *db)
{
	int r = db_flush(db);
	if (r < 0)
		return r;
	char *err = NULL;
	if (sqlite3_exec(db->h, "VACUUM", NULL, NULL, &err) != SQLITE_OK) {
		r = db_failf(db, KILN_EDB, "VACUUM: %s", err ? err : "failed");
		sqlite3_free(err);
		return r;
	}
	if (sqlite3_exec(db->h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, &err) != SQLITE_OK) {
		r = db_failf(db, KILN_EDB, "checkpoint: %s", err ? err : "failed");
		sqlite3_free(err);
		return r;
	}
	return 0;
}
