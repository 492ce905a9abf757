/*
 * Test results in SQLite: Buildbot 3.7's test_result_sets and test_results
 * (names and code paths stored once per builder in test_names and
 * test_code_paths), added in batches by the `test` step through
 * testingest.c, and a test's history on its builder (last passing build,
 * the start of the current failure streak, flakiness on one revision).
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

#define TESTS_MAX_FLAKY_REVISIONS 10

static int sqlite_tests_set_add(struct db *db, const struct db_test_result_set_new *n,
				int64_t *ret_setid)
{
	int r;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_TESTS_SET_STEP,
				"SELECT 1 FROM steps s JOIN builds b ON b.id = s.buildid "
				"WHERE s.id = ?1 AND b.id = ?2 AND b.builderid = ?3");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, n->stepid);
		sqlite3_bind_int64(s, 2, n->buildid);
		sqlite3_bind_int64(s, 3, n->builderid);
		if ((r = db_step_row(db, s, "test result set step")) <= 0)
			return r < 0 ? r
				     : db_failf(db, KILN_ENOTFOUND,
						"no step %lld in build %lld of builder %lld",
						(long long)n->stepid, (long long)n->buildid,
						(long long)n->builderid);
	}
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_TESTS_SET_ADD,
			"INSERT INTO test_result_sets (builderid, buildid, stepid, description, "
			"category, value_unit, complete) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, n->builderid);
	sqlite3_bind_int64(s, 2, n->buildid);
	sqlite3_bind_int64(s, 3, n->stepid);
	db_bind_text(s, 4, n->description);
	db_bind_text(s, 5, n->category ? n->category : "pass_fail");
	db_bind_text(s, 6, n->value_unit ? n->value_unit : "boolean");
	if ((r = db_step_done(db, s, "add test result set")) < 0)
		return r;
	*ret_setid = sqlite3_last_insert_rowid(db->h);
	return 0;
}

int db_test_result_set_add(struct db *db, const struct db_test_result_set_new *n,
			   int64_t *ret_setid)
{
	if (db->pg)
		return db_pg_test_result_set_add(db, n, ret_setid);
	int64_t id = 0;
	int r = WRITE(sqlite_tests_set_add(db, n, &id));
	if (r >= 0 && ret_setid)
		*ret_setid = id;
	return r;
}

/* The set's builder, if it exists and is not complete. */
static int sqlite_tests_set_open(struct db *db, int64_t setid, int64_t *ret_builderid)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_TESTS_SET_STATE,
			"SELECT builderid, complete FROM test_result_sets WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, setid);
	int r = db_step_row(db, s, "test result set");
	if (r <= 0)
		return r < 0 ? r
			     : db_failf(db, KILN_ENOTFOUND, "no test result set %lld",
					(long long)setid);
	if (sqlite3_column_int(s, 1))
		return db_failf(db, KILN_ESTATE, "test result set %lld is complete",
				(long long)setid);
	*ret_builderid = sqlite3_column_int64(s, 0);
	return 0;
}

/* The id of a name (or path) of builderid, added if new.  A SELECT then a
 * plain INSERT: an upsert (ON CONFLICT ... RETURNING) makes SQLite keep a
 * statement journal per row, spilled to a temporary file inside the batch's
 * savepoint (five writes per test, 10 s for 100,000 tests). */
struct tests_intern_sql {
	int find_id, add_id;
	const char *find, *add;
};

static const struct tests_intern_sql tests_names_sql = {
	ST_TESTS_NAME_FIND, ST_TESTS_NAME_ADD,
	"SELECT id FROM test_names WHERE builderid = ?1 AND name = ?2",
	"INSERT INTO test_names (builderid, name) VALUES (?1, ?2)"};
static const struct tests_intern_sql tests_paths_sql = {
	ST_TESTS_PATH_FIND, ST_TESTS_PATH_ADD,
	"SELECT id FROM test_code_paths WHERE builderid = ?1 AND path = ?2",
	"INSERT INTO test_code_paths (builderid, path) VALUES (?1, ?2)"};

static int sqlite_tests_intern(struct db *db, const struct tests_intern_sql *q, int64_t builderid,
			       const char *text, int64_t *ret)
{
	int r;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, q->find_id, q->find);
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, builderid);
		db_bind_text(s, 2, text);
		if ((r = db_step_row(db, s, "find test name")) < 0)
			return r;
		if (r == 1) {
			*ret = sqlite3_column_int64(s, 0);
			return 0;
		}
	}
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, q->add_id, q->add);
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	db_bind_text(s, 2, text);
	if ((r = db_step_done(db, s, "add test name")) < 0)
		return r;
	*ret = sqlite3_last_insert_rowid(db->h);
	return 0;
}

static const char *sqlite_tests_value(const struct db_test_result *t)
{
	if (t->value)
		return t->value;
	switch (t->results) {
	case RESULTS_SUCCESS:
		return "1";
	case RESULTS_SKIPPED:
		return "skipped";
	default:
		return "0";
	}
}

static int sqlite_tests_add(struct db *db, int64_t setid, const struct db_test_result *v, size_t n)
{
	int64_t builderid;
	int r = sqlite_tests_set_open(db, setid, &builderid);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		const struct db_test_result *t = &v[i];
		int64_t nameid = 0, pathid = 0;
		if (t->test_name && (r = sqlite_tests_intern(db, &tests_names_sql, builderid,
							     t->test_name, &nameid)) < 0)
			return r;
		if (t->test_code_path && (r = sqlite_tests_intern(db, &tests_paths_sql, builderid,
								  t->test_code_path, &pathid)) < 0)
			return r;
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_TESTS_RESULT_ADD,
				"INSERT INTO test_results (builderid, test_result_setid, "
				"test_nameid, test_code_pathid, line, duration_ns, value, results, "
				"message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, builderid);
		sqlite3_bind_int64(s, 2, setid);
		db_bind_id(s, 3, nameid);
		db_bind_id(s, 4, pathid);
		if (t->line > 0)
			sqlite3_bind_int64(s, 5, t->line);
		if (t->duration_ns >= 0)
			sqlite3_bind_int64(s, 6, t->duration_ns);
		db_bind_text(s, 7, sqlite_tests_value(t));
		sqlite3_bind_int(s, 8, t->results);
		db_bind_text(s, 9, t->message && *t->message ? t->message : NULL);
		if ((r = db_step_done(db, s, "add test result")) < 0)
			return r;
	}
	return 0;
}

int db_test_results_add(struct db *db, int64_t setid, const struct db_test_result *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((!r[i].test_name || !*r[i].test_name) &&
		    (!r[i].test_code_path || !*r[i].test_code_path))
			return db_failf(db, -EINVAL, "test result %zu has no name and no code path",
					i);
	if (db->pg)
		return db_pg_test_results_add(db, setid, r, n, sqlite_tests_value);
	return WRITE(sqlite_tests_add(db, setid, r, n));
}

static int sqlite_tests_complete(struct db *db, int64_t setid, int64_t passed, int64_t failed,
				 int64_t skipped)
{
	int64_t builderid;
	int r = sqlite_tests_set_open(db, setid, &builderid);
	if (r < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_TESTS_SET_COMPLETE,
			"UPDATE test_result_sets SET complete = 1, tests_passed = ?2, "
			"tests_failed = ?3, tests_skipped = ?4 WHERE id = ?1 AND complete = 0");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, setid);
	sqlite3_bind_int64(s, 2, passed);
	sqlite3_bind_int64(s, 3, failed);
	sqlite3_bind_int64(s, 4, skipped);
	return db_update_one(db, s, "complete test result set");
}

int db_test_result_set_complete(struct db *db, int64_t setid, int64_t passed, int64_t failed,
				int64_t skipped)
{
	if (db->pg)
		return db_pg_test_result_set_complete(db, setid, passed, failed, skipped);
	return WRITE(sqlite_tests_complete(db, setid, passed, failed, skipped));
}

/* --- history ----------------------------------------------------------------------- */

void db_test_history_release(struct db_test_history *h)
{
	for (size_t i = 0; i < h->nflaky_revisions; i++)
		free(h->flaky_revisions[i]);
	free(h->flaky_revisions);
	*h = (struct db_test_history){.last_results = RESULTS_NONE};
}

/* One revision's outcomes while walking the history. */
struct tests_rev {
	char *rev;
	bool passed, failed;
};

static void tests_rev_note(struct db_test_walk *w, const char *rev, bool passed)
{
	for (size_t i = 0; i < w->nrevs; i++)
		if (strcmp(w->revs[i].rev, rev) == 0) {
			w->revs[i].passed |= passed;
			w->revs[i].failed |= !passed;
			return;
		}
	ARRAY_GROW(w->revs, w->nrevs + 1, w->revs_alloc);
	w->revs[w->nrevs++] =
		(struct tests_rev){.rev = xstrdup(rev), .passed = passed, .failed = !passed};
}

void db_test_walk_init(struct db_test_walk *w)
{
	*w = (struct db_test_walk){.h = {.last_results = RESULTS_NONE}, .streak = true};
}

void db_test_walk_row(struct db_test_walk *w, int64_t buildid, int64_t number, bool passed,
		      const char *rev)
{
	struct db_test_history *h = &w->h;
	if (h->results_seen++ == 0) {
		h->last_results = passed ? RESULTS_SUCCESS : RESULTS_FAILURE;
		h->last_buildid = buildid;
		h->last_number = number;
		w->streak = !passed;
	}
	if (passed) {
		w->streak = false;
		if (!h->last_passing_buildid) {
			h->last_passing_buildid = buildid;
			h->last_passing_number = number;
		}
	} else if (w->streak) {
		h->first_failing_buildid = buildid;
		h->first_failing_number = number;
		if (w->streak_last_build != buildid)
			h->failing_builds++;
		w->streak_last_build = buildid;
	}
	if (rev && *rev)
		tests_rev_note(w, rev, passed);
}

void db_test_walk_finish(struct db_test_walk *w, struct db_test_history *ret)
{
	struct db_test_history *h = &w->h;
	for (size_t i = 0; i < w->nrevs; i++) {
		if (w->revs[i].passed && w->revs[i].failed) {
			h->flaky = true;
			if (h->nflaky_revisions < TESTS_MAX_FLAKY_REVISIONS) {
				if (!h->flaky_revisions)
					h->flaky_revisions =
						xcalloc(TESTS_MAX_FLAKY_REVISIONS, sizeof(char *));
				h->flaky_revisions[h->nflaky_revisions++] =
					TAKE_PTR(w->revs[i].rev);
			}
		}
		free(w->revs[i].rev);
	}
	free(w->revs);
	w->revs = NULL;
	w->nrevs = 0;
	*ret = *h;
	w->h = (struct db_test_history){.last_results = RESULTS_NONE};
}

int db_test_history(struct db *db, int64_t builderid, const char *test_name,
		    struct db_test_history *ret)
{
	/* The revision a build built: its got_revision (one codebase: a string),
	 * else its revision property, else its first sourcestamp's. */
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_TESTS_HISTORY,
			"SELECT b.id, b.number, r.results, "
			"COALESCE(json_extract(b.properties, '$.got_revision[0]'), "
			"json_extract(b.properties, '$.revision[0]'), "
			"(SELECT ss.revision FROM buildrequests br "
			"JOIN buildset_sourcestamps x ON x.buildsetid = br.buildsetid "
			"JOIN sourcestamps ss ON ss.id = x.sourcestampid "
			"WHERE br.id = b.buildrequestid ORDER BY ss.id LIMIT 1)) "
			"FROM test_results r "
			"JOIN test_result_sets t ON t.id = r.test_result_setid "
			"JOIN builds b ON b.id = t.buildid "
			"WHERE r.builderid = ?1 AND r.test_nameid = "
			"(SELECT id FROM test_names WHERE builderid = ?1 AND name = ?2) "
			"AND r.results IN (0, 2) "
			"ORDER BY b.number DESC, r.id DESC LIMIT ?3");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	db_bind_text(s, 2, test_name);
	sqlite3_bind_int64(s, 3, KILN_TEST_HISTORY_MAX);
	struct db_test_walk w;
	db_test_walk_init(&w);
	int r;
	while ((r = db_step_row(db, s, "test history")) == 1)
		db_test_walk_row(&w, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
				 sqlite3_column_int(s, 2) == RESULTS_SUCCESS,
				 (const char *)sqlite3_column_text(s, 3));
	struct db_test_history h;
	db_test_walk_finish(&w, &h);
	if (r < 0) {
		db_test_history_release(&h);
		return r;
	}
	*ret = h;
	return 0;
}
