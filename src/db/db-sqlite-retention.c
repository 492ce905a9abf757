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
#include "db/db-pg.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/xalloc.h"

/* rows one window query reads */
#define RET_WINDOW 128
/* test results deleted by one statement */
#define RET_TRES_CHUNK 1000

struct ret_ctx {
	struct db *db;
	const struct db_retention_policy *p;
	/* the policy's own cut-offs as a builder's, and the newest of each
	 * cut-off over it and every builder's (where a walk by age stops) */
	struct db_retention_builder global, newest;
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

/* The cut-offs that apply to builderid's rows: its own, else the global ones. */
static const struct db_retention_builder *ret_for(const struct ret_ctx *x, int64_t builderid)
{
	const struct db_retention_policy *p = x->p;
	size_t lo = 0, hi = p->nbuilders;
	while (lo < hi) { /* sorted by builderid (db_retention_resolve) */
		size_t mid = lo + (hi - lo) / 2;
		int64_t id = p->builders[mid].builderid;
		if (id == builderid && id != 0)
			return &p->builders[mid];
		if (id < builderid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return &x->global;
}

static double ret_max(double a, double b)
{
	return a > b ? a : b;
}

static void ret_ctx_init(struct ret_ctx *x)
{
	const struct db_retention_policy *p = x->p;
	x->global = (struct db_retention_builder){
		.builds_before = p->builds_before,
		.keep_per_builder = p->keep_per_builder,
		.logs_before = p->logs_before,
		.success_logs_before = p->success_logs_before,
		.tests_before = p->tests_before,
		.numbers_before = p->numbers_before,
	};
	x->newest = x->global;
	for (size_t i = 0; i < p->nbuilders; i++) {
		const struct db_retention_builder *b = &p->builders[i];
		if (b->builderid == 0)
			continue;
		struct db_retention_builder *n = &x->newest;
		n->builds_before = ret_max(n->builds_before, b->builds_before);
		if (b->keep_per_builder > n->keep_per_builder)
			n->keep_per_builder = b->keep_per_builder;
		n->logs_before = ret_max(n->logs_before, b->logs_before);
		n->success_logs_before = ret_max(n->success_logs_before, b->success_logs_before);
		n->tests_before = ret_max(n->tests_before, b->tests_before);
		n->numbers_before = ret_max(n->numbers_before, b->numbers_before);
	}
}

static int ret_builder_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct db_retention_builder *)a)->builderid;
	int64_t y = ((const struct db_retention_builder *)b)->builderid;
	return (x > y) - (x < y);
}

int db_retention_resolve(struct db *db, struct db_retention_policy *p)
{
	if (db->pg)
		return 0; /* each batch matches the names itself (db-pg-retention.c) */
	for (size_t i = 0; i < p->nbuilders; i++) {
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_RET_BUILDER_ID, "SELECT id FROM builders WHERE name = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_text(s, 1, p->builders[i].name, -1, SQLITE_STATIC);
		int r = db_step_row(db, s, "builder by name");
		if (r < 0)
			return r;
		p->builders[i].builderid = r ? sqlite3_column_int64(s, 0) : 0;
	}
	if (p->nbuilders > 1)
		qsort(p->builders, p->nbuilders, sizeof(*p->builders), ret_builder_cmp);
	return 0;
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

/* Phase 1: finished builds that completed before their builder's
 * builds_before, oldest first by id; stops at a build started after the
 * newest cut-off. */
static int ret_builds_age(struct ret_ctx *x, bool *ret_done)
{
	struct db *db = x->db;
	int64_t ids[RET_WINDOW], last = 0;
	size_t n = 0, rows = 0;
	bool stop = false;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_RET_BUILDS_WIN,
			"SELECT id, complete, complete_at, started_at, builderid FROM builds "
			"WHERE id > ?1 ORDER BY id LIMIT ?2");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, x->st->after_id);
		sqlite3_bind_int64(s, 2, RET_WINDOW);
		int r;
		while ((r = db_step_row(db, s, "builds by age")) == 1) {
			rows++;
			if (sqlite3_column_double(s, 3) >= x->newest.builds_before) {
				stop = true;
				break;
			}
			last = sqlite3_column_int64(s, 0);
			double before = ret_for(x, sqlite3_column_int64(s, 4))->builds_before;
			if (sqlite3_column_int(s, 1) && before > 0 &&
			    sqlite3_column_double(s, 2) < before)
				ids[n++] = last;
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
		x->st->after_id = ids[i];
	}
	if (last > x->st->after_id)
		x->st->after_id = last;
	return 0;
}

/* Phase 2: each builder's finished builds older than its newest
 * keep_per_builder builds (its own, else the global one; 0: all kept). */
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
		int64_t keep = ret_for(x, x->st->builderid)->keep_per_builder;
		if (keep <= 0) {
			x->st->builderid = 0; /* keeps them all: the next one */
			continue;
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
			sqlite3_bind_int64(s, 2, keep - 1);
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

/* Phase 3: the content of logs of builds finished before their
 * builder's cut-offs; stops at a build started after the newest one. */
static int ret_logs(struct ret_ctx *x, bool *ret_done)
{
	struct db *db = x->db;
	double newest = ret_max(x->newest.logs_before, x->newest.success_logs_before);
	int64_t ids[RET_WINDOW], last = 0;
	size_t n = 0, rows = 0;
	bool stop = false;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_RET_LOGS_WIN,
			"SELECT l.id, b.complete, b.complete_at, b.results, b.started_at, "
			"b.builderid FROM logs l "
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
			last = sqlite3_column_int64(s, 0);
			const struct db_retention_builder *p =
				ret_for(x, sqlite3_column_int64(s, 5));
			double at = sqlite3_column_double(s, 2);
			bool done = sqlite3_column_int(s, 1) != 0;
			bool success = sqlite3_column_type(s, 3) != SQLITE_NULL &&
				       sqlite3_column_int(s, 3) == RESULTS_SUCCESS;
			if (done && ((p->logs_before > 0 && at < p->logs_before) ||
				     (success && p->success_logs_before > 0 &&
				      at < p->success_logs_before)))
				ids[n++] = last;
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
		x->st->after_id = ids[i];
	}
	if (last > x->st->after_id)
		x->st->after_id = last;
	return 0;
}

/* Phase 4: test result sets of builds finished before their builder's
 * tests_before. */
static int ret_tests(struct ret_ctx *x, bool *ret_done)
{
	struct db *db = x->db;
	int64_t ids[RET_WINDOW], last = 0;
	size_t n = 0, rows = 0;
	bool stop = false;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_RET_TSETS_WIN,
			"SELECT t.id, b.complete, b.complete_at, b.started_at, b.builderid FROM "
			"test_result_sets t JOIN builds b ON b.id = t.buildid WHERE t.id > ?1 "
			"ORDER BY t.id LIMIT ?2");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, x->st->after_id);
		sqlite3_bind_int64(s, 2, RET_WINDOW);
		int r;
		while ((r = db_step_row(db, s, "test result sets by age")) == 1) {
			rows++;
			if (sqlite3_column_double(s, 3) >= x->newest.tests_before) {
				stop = true;
				break;
			}
			last = sqlite3_column_int64(s, 0);
			double before = ret_for(x, sqlite3_column_int64(s, 4))->tests_before;
			if (sqlite3_column_int(s, 1) && before > 0 &&
			    sqlite3_column_double(s, 2) < before)
				ids[n++] = last;
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
		x->st->after_id = ids[i];
	}
	if (last > x->st->after_id)
		x->st->after_id = last;
	return 0;
}

/* Phase 5: numbers recorded before their builder's numbers_before. */
static int ret_numbers(struct ret_ctx *x, bool *ret_done)
{
	struct db *db = x->db;
	int64_t ids[RET_WINDOW], last = 0;
	size_t n = 0, rows = 0;
	bool stop = false;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_RET_NUM_WIN,
				"SELECT id, recorded_at, builderid FROM numbers WHERE id > ?1 "
				"ORDER BY id LIMIT ?2");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, x->st->after_id);
		sqlite3_bind_int64(s, 2, RET_WINDOW);
		int r;
		while ((r = db_step_row(db, s, "numbers by age")) == 1) {
			rows++;
			double at = sqlite3_column_double(s, 1);
			if (at >= x->newest.numbers_before) {
				stop = true;
				break;
			}
			last = sqlite3_column_int64(s, 0);
			double before = ret_for(x, sqlite3_column_int64(s, 2))->numbers_before;
			if (before > 0 && at < before)
				ids[n++] = last;
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
	if (last > x->st->after_id)
		x->st->after_id = last;
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

static bool ret_phase_on(const struct ret_ctx *x, int phase)
{
	const struct db_retention_builder *n = &x->newest;
	switch (phase) {
	case RET_BUILDS_AGE:
		return n->builds_before > 0;
	case RET_BUILDS_COUNT:
		return n->keep_per_builder > 0;
	case RET_LOGS:
		return n->logs_before > 0 || n->success_logs_before > 0;
	case RET_TESTS:
		return n->tests_before > 0;
	case RET_NUMBERS:
		return n->numbers_before > 0;
	case RET_CHANGES:
		return x->p->changes_before > 0;
	}
	return false;
}

static int ret_batch(struct ret_ctx *x)
{
	while (x->st->phase < RET_DONE && !ret_over(x)) {
		bool done = true;
		int r = 0;
		if (ret_phase_on(x, x->st->phase)) {
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
	ret_ctx_init(&x);
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
	if (db->pg)
		return db_pg_retention_run(db, p, dry_run, counts, files, nfiles);
	struct db_retention_pass st = {0};
	struct ret_ctx x = {
		.db = db,
		.p = p,
		.st = &st,
		.c = counts,
		.rows_left = SIZE_MAX,
		.deadline_ms = 1e300, /* no time limit: nothing else waits */
	};
	ret_ctx_init(&x);
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

void db_wal_truncations(struct db *db, uint64_t *ret_count, double *ret_worst_s)
{
	*ret_count = db->wal_truncations;
	*ret_worst_s = db->wal_truncate_worst_ms / 1e3;
}

int db_file_bytes(struct db *db, int64_t *ret)
{
	if (db->pg)
		return db_pg_file_bytes(db, ret);
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
	if (db->pg)
		return db_pg_vacuum(db);
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
