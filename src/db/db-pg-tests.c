/*
 * Reads of the UI's views on PostgreSQL (issue 14): the per-test history
 * (db_test_history's query in PostgreSQL's dialect, its rows walked by the
 * same code as SQLite's: db_test_walk_*, db-sqlite-tests.c) and the
 * console's cells (db_changes_cells: SQLite's MAX() with bare columns is
 * DISTINCT ON here), and the artifacts of a build or one artifact.
 */
#include "db/db-pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/xalloc.h"
#include "common/buf.h"
#include "db/db-pg-list.h"
#include "db/pg-batch.h"
#include "db/pg-conn.h"
#include "db/pg-col.h"

struct pg_tests_call {
	db_test_history_fn done;
	void *arg;
};

static void pg_tests_on_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_tests_call *call = arg;
	if (r < 0) {
		call->done(call->arg, r, NULL, err ? err : "failed");
		free(call);
		return;
	}
	struct db_test_walk w;
	db_test_walk_init(&w);
	for (int i = 0, n = PQntuples(res); i < n; i++)
		db_test_walk_row(&w, pg_col_i64(res, i, 0), pg_col_i64(res, i, 1),
				 pg_col_i64(res, i, 2) == RESULTS_SUCCESS, pg_col_str(res, i, 3));
	struct db_test_history h;
	db_test_walk_finish(&w, &h);
	call->done(call->arg, 0, &h, NULL);
	db_test_history_release(&h);
	free(call);
}

int db_pg_test_history(struct db *db, int64_t builderid, const char *test_name,
		       db_test_history_fn done, void *arg)
{
	/* the revision a build built: its got_revision (one codebase: a
	 * string), else its revision property, else its first sourcestamp's */
	static const char sql[] =
		"SELECT b.id, b.number, r.results, "
		"COALESCE(b.properties::json -> 'got_revision' ->> 0, "
		"b.properties::json -> 'revision' ->> 0, "
		"(SELECT ss.revision FROM buildrequests br "
		"JOIN buildset_sourcestamps x ON x.buildsetid = br.buildsetid "
		"JOIN sourcestamps ss ON ss.id = x.sourcestampid "
		"WHERE br.id = b.buildrequestid ORDER BY ss.id LIMIT 1)) "
		"FROM test_results r "
		"JOIN test_result_sets t ON t.id = r.test_result_setid "
		"JOIN builds b ON b.id = t.buildid "
		"WHERE r.builderid = $1::bigint AND r.test_nameid = "
		"(SELECT id FROM test_names WHERE builderid = $1::bigint AND name = $2::text) "
		"AND r.results IN (0, 2) "
		"ORDER BY b.number DESC, r.id DESC LIMIT $3";
	char bid[24], max[24];
	snprintf(bid, sizeof(bid), "%" PRId64, builderid);
	snprintf(max, sizeof(max), "%d", KILN_TEST_HISTORY_MAX);
	const char *v[] = {bid, test_name, max};
	struct pg_tests_call *call = xmalloc(sizeof(*call));
	*call = (struct pg_tests_call){.done = done, .arg = arg};
	struct pg_query q = {.sql = sql, .nparams = 3, .values = v};
	int r = pg_batch_read(db_pg_batch(db), &q, pg_tests_on_rows, call);
	if (r < 0) {
		free(call);
		return db_failf(db, r, "cannot send the query: %s", strerror(-r));
	}
	return 0;
}

static json_t *pg_changes_render_cells(const PGresult *res)
{
	json_t *list = json_array();
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		json_t *o = json_object();
		static const char *const ints[] = {"changeid", "buildid", "builderid", "number",
						   "results"};
		for (int c = 0; c < 5; c++)
			json_object_set_new(o, ints[c],
					    PQgetisnull(res, i, c)
						    ? json_null()
						    : json_integer(pg_col_i64(res, i, c)));
		json_object_set_new(o, "complete", json_boolean(pg_col_i64(res, i, 5) != 0));
		for (int c = 6; c <= 7; c++)
			json_object_set_new(o, c == 6 ? "started_at" : "complete_at",
					    PQgetisnull(res, i, c)
						    ? json_null()
						    : json_integer((json_int_t)strtod(
							      PQgetvalue(res, i, c), NULL)));
		json_object_set_new(o, "state_string", json_string(PQgetvalue(res, i, 8)));
		json_array_append_new(list, o);
	}
	return list;
}

/* The rows past max_rows only say the answer was cut: total counts them. */
struct pg_cells_call {
	db_list_fn done;
	void *arg;
	int64_t max_rows;
};

static void pg_changes_cells_cut(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct pg_cells_call *c = arg;
	(void)total;
	int64_t found = (int64_t)json_array_size(items);
	while ((int64_t)json_array_size(items) > c->max_rows)
		json_array_remove(items, json_array_size(items) - 1);
	c->done(c->arg, r, items, r < 0 ? -1 : found, err);
	free(c);
}

int db_pg_changes_cells(struct db *db, const int64_t *changeids, size_t n, int64_t max_rows,
			db_list_fn done, void *arg)
{
	if (max_rows < 0)
		return db_failf(db, -EINVAL, "negative row count");
	struct buf ids;
	buf_init(&ids, 32 * (n + 1));
	int r = buf_addch(&ids, '{');
	for (size_t i = 0; r >= 0 && i < n; i++) {
		if (changeids[i] <= 0) {
			buf_release(&ids);
			return db_failf(db, -EINVAL, "change id %" PRId64 " is not positive",
					changeids[i]);
		}
		r = buf_addf(&ids, "%s%" PRId64, i ? "," : "", changeids[i]);
	}
	r = r < 0 ? r : buf_adds(&ids, "}");
	r = r < 0 ? r : buf_addch(&ids, '\0');
	if (r < 0) {
		buf_release(&ids);
		return db_failf(db, r, "too many change ids");
	}
	/* each (change, builder)'s latest build; $2 = max_rows + 1 tells truncation */
	static const char sql[] =
		"SELECT * FROM (SELECT DISTINCT ON (bc.changeid, b.builderid) bc.changeid, b.id, "
		"b.builderid, b.number, b.results, b.complete, b.started_at, b.complete_at, "
		"b.state_string FROM unnest($1::bigint[]) j(id) "
		"JOIN buildset_changes bc ON bc.changeid = j.id "
		"JOIN buildrequests br ON br.buildsetid = bc.buildsetid "
		"JOIN builds b ON b.buildrequestid = br.id "
		"ORDER BY bc.changeid, b.builderid, b.id DESC) x "
		"ORDER BY x.changeid DESC, x.builderid LIMIT $2";
	char lim[24];
	snprintf(lim, sizeof(lim), "%" PRId64, max_rows + 1);
	const char *v[] = {ids.ptr, lim};
	struct pg_query q = {.sql = sql, .nparams = 2, .values = v};
	char err[256];
	struct pg_cells_call *c = xmalloc(sizeof(*c));
	*c = (struct pg_cells_call){.done = done, .arg = arg, .max_rows = max_rows};
	r = pg_read_send(db_pg_batch(db), &q, NULL, pg_changes_render_cells, pg_changes_cells_cut,
			 c, err, sizeof(err));
	buf_release(&ids);
	if (r < 0)
		free(c);
	return r < 0 ? db_failf(db, r, "%s", err) : 0;
}

static json_t *pg_artifacts_render(const PGresult *res, bool one)
{
	json_t *items = json_array();
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		struct db_artifact a = {
			.artifactid = pg_col_i64(res, i, 0),
			.buildid = pg_col_i64(res, i, 1),
			.stepid = pg_col_i64(res, i, 2),
			.name = PQgetvalue(res, i, 3),
			.path = PQgetvalue(res, i, 4),
			.size = pg_col_i64(res, i, 5),
			.created_at = strtod(PQgetvalue(res, i, 7), NULL),
			.dir = pg_col_str(res, i, 8),
		};
		snprintf(a.sha256, sizeof(a.sha256), "%s", PQgetvalue(res, i, 6));
		json_t *o = db_artifact_json(&a);
		if (o && !one) { /* a build's list: as db_artifacts_of_build renders it */
			json_object_del(o, "dir");
			json_object_set_new(o, "created_at",
					    json_integer((json_int_t)a.created_at));
		}
		if (o)
			json_array_append_new(items, o);
	}
	return items;
}

static json_t *pg_artifacts_render_one(const PGresult *res)
{
	return pg_artifacts_render(res, true);
}

static json_t *pg_artifacts_render_list(const PGresult *res)
{
	return pg_artifacts_render(res, false);
}

int db_pg_artifacts(struct db *db, int64_t artifactid, int64_t buildid, int64_t limit,
		    db_list_fn done, void *arg)
{
	char id[24], lim[24];
	snprintf(id, sizeof(id), "%" PRId64, artifactid ? artifactid : buildid);
	snprintf(lim, sizeof(lim), "%" PRId64, limit);
	const char *v[] = {id, limit < 0 ? NULL : lim};
	struct pg_query q = {
		.sql = artifactid ? "SELECT id, buildid, stepid, name, path, size, sha256, "
				    "created_at, dir FROM artifacts WHERE id = $1::bigint"
				  : "SELECT id, buildid, stepid, name, path, size, sha256, "
				    "created_at, dir FROM artifacts WHERE buildid = $1::bigint "
				    "ORDER BY id LIMIT $2",
		.nparams = artifactid ? 1 : 2,
		.values = v};
	char err[256];
	int r = pg_read_send(db_pg_batch(db), &q, NULL,
			     artifactid ? pg_artifacts_render_one : pg_artifacts_render_list, done,
			     arg, err, sizeof(err));
	return r < 0 ? db_failf(db, r, "%s", err) : 0;
}
