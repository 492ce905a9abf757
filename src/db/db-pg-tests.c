/*
 * Per-test history on PostgreSQL (issue 14): db_test_history's query in
 * PostgreSQL's dialect, its rows walked by the same code as SQLite's
 * (db_test_walk_*, db-sqlite-tests.c).
 */
#include "db/db-pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/xalloc.h"
#include "db/pg-conn.h"

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
		db_test_walk_row(&w, strtoll(PQgetvalue(res, i, 0), NULL, 10),
				 strtoll(PQgetvalue(res, i, 1), NULL, 10),
				 strtoll(PQgetvalue(res, i, 2), NULL, 10) == RESULTS_SUCCESS,
				 PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3));
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
	int r = pg_conn_send(db_pg_conn(db), &q, pg_tests_on_rows, call);
	if (r < 0) {
		free(call);
		return db_failf(db, r, "cannot send the query: %s", strerror(-r));
	}
	return 0;
}
