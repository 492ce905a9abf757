/*
 * The push slice and the API tokens' list on PostgreSQL (issue 14): the
 * rows SQLite's db_push_get, db_push_latest and db_token_list read,
 * rendered by the same code (db_push_row_from_text, db_token_from_text);
 * a pushed bag's submission row (part of its turn's write), the count of a
 * token's stored results, and the expected reporters' state read at
 * start-up.
 */
#include "db/db-pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "db/db-pg-list.h"
#include "db/pg-batch.h"
#include "db/pg-conn.h"
#include "db/pg-col.h"
#include "db/pg-params.h"

#define PG_PUSH_COLS                                                                               \
	"id, tokenid, package, host, arch, tags, revision, builderid, buildid, state, reason, "    \
	"finished, results, nsteps, created_at, updated_at, finished_at"

/* Row i's columns as text, NULL for SQL NULL. */
static void pg_push_cols(const PGresult *res, int i, const char **col, int n)
{
	for (int c = 0; c < n; c++)
		col[c] = pg_col_str(res, i, c);
}

static json_t *pg_push_render(const PGresult *res)
{
	json_t *list = json_array();
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		const char *col[DB_PUSH_COLS];
		pg_push_cols(res, i, col, DB_PUSH_COLS);
		json_array_append_new(list, db_push_row_from_text(col));
	}
	return list;
}

int db_pg_push(struct db *db, bool one, int64_t id, const char *package, const char *host,
	       const char *tag, int64_t limit, db_list_fn done, void *arg)
{
	static const char by_id[] = "SELECT " PG_PUSH_COLS " FROM push_submissions WHERE id = $1";
	/* the newest stored submission of each package and host: grouped by
	 * equality, ordered by bytes as SQLite's are */
	static const char latest[] =
		"SELECT " PG_PUSH_COLS " FROM push_submissions WHERE id IN "
		"(SELECT max(id) FROM push_submissions WHERE state = 'stored' "
		"AND ($1::text IS NULL OR package = $1) AND ($2::text IS NULL OR host = $2) "
		"AND ($3::text IS NULL OR strpos(tags, ',' || $3 || ',') > 0) "
		"GROUP BY package, host) "
		"ORDER BY package COLLATE \"C\", host COLLATE \"C\" LIMIT $4";
	char ids[24], lim[24], err[256];
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	snprintf(lim, sizeof(lim), "%" PRId64, limit);
	const char *v1[] = {ids}, *v4[] = {package, host, tag, lim};
	struct pg_query q = one ? (struct pg_query){.sql = by_id, .nparams = 1, .values = v1}
				: (struct pg_query){.sql = latest, .nparams = 4, .values = v4};
	int r = pg_read_send(db_pg_batch(db), &q, NULL, pg_push_render, done, arg, err,
			     sizeof(err));
	return r < 0 ? db_failf(db, r, "%s", err) : 0;
}

struct pg_tokens_call {
	db_token_list_fn done;
	void *arg;
};

static void pg_tokens_on_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_tokens_call *call = arg;
	if (r < 0) {
		call->done(call->arg, r, NULL, 0, err ? err : "failed");
		free(call);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	struct db_token *v = n ? xcalloc(n, sizeof(*v)) : NULL;
	for (size_t i = 0; i < n; i++) {
		const char *col[DB_TOKEN_COLS];
		pg_push_cols(res, (int)i, col, DB_TOKEN_COLS);
		db_token_from_text(&v[i], col);
	}
	call->done(call->arg, 0, v, n, NULL);
	free(v);
	free(call);
}

int db_pg_token_list(struct db *db, db_token_list_fn done, void *arg)
{
	static const char sql[] = "SELECT id, uid, name, scopes, created_at, last_used_at, "
				  "revoked_at, expires_at FROM api_tokens ORDER BY id";
	struct pg_tokens_call *call = xmalloc(sizeof(*call));
	*call = (struct pg_tokens_call){.done = done, .arg = arg};
	struct pg_query q = {.sql = sql};
	int r = pg_batch_read(db_pg_batch(db), &q, pg_tokens_on_rows, call);
	if (r < 0) {
		free(call);
		return db_failf(db, r, "cannot send the query: %s", strerror(-r));
	}
	return 0;
}

/* --- a pushed bag's row, the per-token count, the expected reporters ------------------------ */

/* An id, or SQL NULL for none (0). */
static void pg_push_id(struct pgw *w, int64_t id)
{
	if (id)
		pgw_i64(w, id);
	else
		pgw_text(w, NULL);
}

/* As SQLite's push_insert: part of the turn's write that stores the bag
 * (db_push_atomic). */
int db_pg_push_insert(struct db *db, const struct db_push_row *row)
{
	struct pgw w = {0};
	pgw_i64(&w, row->id);
	pgw_i64(&w, row->tokenid);
	pgw_text(&w, row->package);
	pgw_text(&w, row->host);
	pgw_text(&w, row->arch);
	pgw_text(&w, row->tags ? row->tags : ",");
	pgw_text(&w, row->revision);
	pg_push_id(&w, row->builderid);
	pg_push_id(&w, row->buildid);
	pgw_text(&w, row->state);
	pgw_text(&w, row->reason);
	pgw_i64(&w, row->finished);
	if (row->results >= 0)
		pgw_i64(&w, row->results);
	else
		pgw_text(&w, NULL);
	pgw_i64(&w, row->nsteps);
	if (row->update_hash)
		pgw_blob(&w, row->update_hash, 32);
	else
		pgw_text(&w, NULL);
	pgw_f64(&w, row->created_at);
	if (row->finished_at > 0)
		pgw_f64(&w, row->finished_at);
	else
		pgw_text(&w, NULL);
	return db_pg_write(
		db,
		"INSERT INTO push_submissions (id, tokenid, package, host, arch, tags, "
		"revision, builderid, buildid, state, reason, finished, results, nsteps, "
		"update_hash, created_at, updated_at, finished_at) VALUES ($1::bigint, "
		"$2::bigint, $3, $4, $5, $6, $7, $8::bigint, $9::bigint, $10, $11, "
		"$12::bigint, $13::bigint, $14::bigint, $15::bytea, $16::float8, "
		"$16::float8, $17::float8)",
		&w);
}

struct pg_push_count {
	db_id_fn done;
	void *arg;
};

static void pg_push_counted(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_push_count *c = arg;
	if (r < 0)
		c->done(c->arg, r, 0, err ? err : "failed");
	else
		c->done(c->arg, 0, PQntuples(res) ? pg_col_i64(res, 0, 0) : 0, NULL);
	free(c);
}

int db_pg_push_count(struct db *db, int64_t tokenid, const char *package, db_id_fn done, void *arg)
{
	char tok[24];
	snprintf(tok, sizeof(tok), "%" PRId64, tokenid);
	const char *values[] = {tok, package};
	struct pg_query q = {
		.sql = "SELECT count(*) FROM push_submissions WHERE tokenid = $1::bigint AND "
		       "package = $2",
		.nparams = 2,
		.values = values};
	struct pg_push_count *c = xmalloc(sizeof(*c));
	*c = (struct pg_push_count){.done = done, .arg = arg};
	int r = pg_batch_read(db_pg_batch(db), &q, pg_push_counted, c);
	if (r < 0) {
		free(c);
		return db_failf(db, r, "count pushes: cannot send the query: %s", strerror(-r));
	}
	return 0;
}

struct pg_push_expected {
	int found;
	double last;
	int quiet;
};

static void pg_push_expected_rows(void *arg, const PGresult *res)
{
	struct pg_push_expected *e = arg;
	if (PQntuples(res) < 1)
		return;
	e->found = 1;
	e->last = PQgetisnull(res, 0, 0) ? 0 : strtod(PQgetvalue(res, 0, 0), NULL);
	e->quiet = (int)pg_col_i64(res, 0, 1);
}

int db_pg_push_expected_get(struct db *db, const char *package, const char *host, double *ret_last,
			    int *ret_quiet)
{
	struct pg_push_expected e = {0};
	const char *values[] = {package, host};
	int r = db_pg_read_wait(db, "db_push_expected_get",
				"SELECT last_push, quiet FROM push_expected WHERE package = $1 AND "
				"host = $2",
				2, values, pg_push_expected_rows, &e);
	if (r < 0 || !e.found)
		return r < 0 ? r : 0;
	*ret_last = e.last;
	*ret_quiet = e.quiet;
	return 1;
}
