/*
 * The commit-status reporters' outbound queue on PostgreSQL (issue 14;
 * db.h "outbound statuses", SQLite's in db-sqlite-outbound.c): a status
 * queued, the reporter's oldest row and its count, answered on the loop.
 *
 * A status queued is one statement, its check (the same state again), the
 * two rows and the cap in one WITH: a repeated state changes nothing and
 * fails nothing, so the turn's other writes never go with it.  The rows
 * its DELETE sees are those before its INSERT (one snapshot), so it keeps
 * max_rows - 1 of them, as SQLite keeps max_rows with the new one.
 */
#include "db/db-pg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/pg-batch.h"
#include "db/pg-col.h"
#include "db/pg-conn.h"
#include "db/pg-params.h"

/* One call's answer. */
struct pgo_call {
	db_outbound_added_fn added;
	db_outbound_fn next;
	db_count_fn count;
	void *arg;
};

static struct pgo_call *pgo_call(void *arg)
{
	struct pgo_call *c = xcalloc(1, sizeof(*c));
	c->arg = arg;
	return c;
}

static void pgo_added(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgo_call *c = arg;
	if (r < 0)
		c->added(c->arg, r, 0, err ? err : "failed");
	else if (PQntuples(res) < 1 || PQnfields(res) < 2)
		c->added(c->arg, KILN_EDB, 0, "no answer to a status queued");
	else
		c->added(c->arg, pg_col_i64(res, 0, 0) > 0, pg_col_i64(res, 0, 1), NULL);
	free(c);
}

int db_pg_outbound_add(struct db *db, const char *reporter, const char *skey, const char *state,
		       const char *path, const char *body, int64_t now, size_t max_rows,
		       db_outbound_added_fn done, void *arg)
{
	static const char sql[] =
		"WITH g AS (SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM outbound_last WHERE "
		"reporter = $1 AND skey = $2 AND state = $3)), "
		"m AS (INSERT INTO outbound_last (reporter, skey, state, at) SELECT $1, $2, $3, "
		"$6::bigint FROM g ON CONFLICT (reporter, skey) DO UPDATE SET state = "
		"excluded.state, at = excluded.at), "
		"i AS (INSERT INTO outbound (reporter, skey, state, path, body, created_at) SELECT "
		"$1, $2, $3, $4, $5, $6::bigint FROM g RETURNING id), "
		"d AS (DELETE FROM outbound WHERE EXISTS (SELECT 1 FROM i) AND id IN (SELECT id "
		"FROM outbound WHERE reporter = $1 ORDER BY id DESC OFFSET $7::bigint) RETURNING "
		"1) "
		"SELECT (SELECT count(*) FROM i), (SELECT count(*) FROM d)";
	struct pgw w = {0};
	pgw_text(&w, reporter);
	pgw_text(&w, skey);
	pgw_text(&w, state);
	pgw_text(&w, path);
	pgw_text(&w, body);
	pgw_i64(&w, now);
	pgw_i64(&w, max_rows > 1 ? (int64_t)max_rows - 1 : 0);
	struct pgo_call *c = pgo_call(arg);
	c->added = done;
	struct pg_query q = {
		.sql = sql, .nparams = w.n, .values = w.v, .lengths = w.len, .formats = w.fmt};
	int r = db_pg_write_returning(db, &q, pgo_added, c); /* copies q; frees c on failure */
	pgw_release(&w);
	return r;
}

/* Sends a read whose rows cb gets; c freed when it cannot be sent. */
static int pgo_read(struct db *db, struct pgw *w, const char *sql, pg_conn_result_cb cb,
		    struct pgo_call *c)
{
	struct pg_query q = {
		.sql = sql, .nparams = w->n, .values = w->v, .lengths = w->len, .formats = w->fmt};
	int r = pg_batch_read(db_pg_batch(db), &q, cb, c);
	pgw_release(w);
	if (r < 0) {
		free(c);
		return db_failf(db, r, "cannot send the query: %s", err_str(r));
	}
	return 0;
}

static char *pgo_str(const PGresult *res, int col)
{
	const char *v = pg_col_str(res, 0, col);
	return xstrdup(v ? v : "");
}

static void pgo_next_read(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgo_call *c = arg;
	if (r < 0) {
		c->next(c->arg, r, NULL, err ? err : "failed");
	} else if (PQntuples(res) < 1) {
		c->next(c->arg, 0, NULL, NULL);
	} else {
		struct db_outbound o = {
			.id = pg_col_i64(res, 0, 0),
			.skey = pgo_str(res, 1),
			.state = pgo_str(res, 2),
			.path = pgo_str(res, 3),
			.body = pgo_str(res, 4),
			.created_at = pg_col_i64(res, 0, 5),
			.attempts = (int)pg_col_i64(res, 0, 6),
			.next_at = pg_col_i64(res, 0, 7),
		};
		c->next(c->arg, 1, &o, NULL);
		db_outbound_release(&o);
	}
	free(c);
}

int db_pg_outbound_next(struct db *db, const char *reporter, db_outbound_fn done, void *arg)
{
	struct pgw w = {0};
	pgw_text(&w, reporter);
	struct pgo_call *c = pgo_call(arg);
	c->next = done;
	return pgo_read(db, &w,
			"SELECT id, skey, state, path, body, created_at, attempts, next_at FROM "
			"outbound WHERE reporter = $1 ORDER BY id LIMIT 1",
			pgo_next_read, c);
}

static void pgo_count_read(void *arg, int r, const PGresult *res, const char *err)
{
	struct pgo_call *c = arg;
	if (r < 0)
		c->count(c->arg, r, 0, err ? err : "failed");
	else
		c->count(c->arg, 0, PQntuples(res) > 0 ? pg_col_i64(res, 0, 0) : 0, NULL);
	free(c);
}

int db_pg_outbound_count(struct db *db, const char *reporter, db_count_fn done, void *arg)
{
	struct pgw w = {0};
	pgw_text(&w, reporter);
	struct pgo_call *c = pgo_call(arg);
	c->count = done;
	return pgo_read(db, &w, "SELECT count(*) FROM outbound WHERE reporter = $1", pgo_count_read,
			c);
}
