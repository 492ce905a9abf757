/*
 * A log's metadata, line ranges and search on PostgreSQL (issue 14): the
 * logchunks rows SQLite's db_log_read and db_log_search select, read in
 * binary and walked by the same code (db-log-read.c), so the answers are
 * the same on both backends.  A read sends the log's row and its chunks
 * together (pipelined); a search reads its chunks KILN_PG_LOG_SEARCH_ROWS
 * at a time, so no answer holds more than that many chunks in memory.
 */
#include "db/db-pg.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/pg-batch.h"
#include "db/pg-conn.h"
#include "db/pg-col.h"

/* Chunk rows per query of a search (each at most about a chunk). */
#define KILN_PG_LOG_SEARCH_ROWS 16
/* Reads started again because a chunk of the log closed meanwhile. */
#define KILN_PG_LOG_RETRIES 3

enum pg_log_kind { PG_LOG_GET, PG_LOG_READ, PG_LOG_SEARCH };

struct pg_log_call {
	struct db *db;
	enum pg_log_kind kind;
	int64_t logid;
	int pending; /* answers still to come in this round */
	int r;
	char *err; /* owned: the first error's text */
	bool have_row;
	struct db_log_info info;
	int retries;
	/* PG_LOG_READ */
	int64_t first, max;
	struct buf text;
	struct db_log_read rd;
	/* PG_LOG_SEARCH */
	char *needle; /* owned */
	size_t nlen;
	unsigned flags;
	int64_t from;
	uint64_t max_scan;
	struct db_log_search q;
	db_log_info_fn info_done;
	db_log_lines_fn lines_done;
	db_log_found_fn found_done;
	void *arg;
};

static void pg_log_call_free(struct pg_log_call *c)
{
	buf_release(&c->text);
	free(c->needle);
	free(c->err);
	free(c);
}

static void pg_log_fail(struct pg_log_call *c, int r, const char *err)
{
	if (c->r < 0 && c->r != -E2BIG)
		return;
	c->r = r;
	free(c->err);
	c->err = xstrdup(err ? err : err_str(r));
}

/* The db's last error as c's. */
static void pg_log_fail_db(struct pg_log_call *c, int r)
{
	pg_log_fail(c, r, db_errmsg(c->db));
}

static void pg_log_finish(struct pg_log_call *c)
{
	const char *err = c->r < 0 && c->r != -E2BIG ? c->err : NULL;
	switch (c->kind) {
	case PG_LOG_GET:
		c->info_done(c->arg, c->r, c->r == 0 ? &c->info : NULL, err);
		break;
	case PG_LOG_READ: {
		bool text = c->r == 0 || c->r == -E2BIG;
		c->lines_done(c->arg, c->r, text ? c->text.ptr : NULL, text ? c->text.len : 0,
			      text ? c->rd.count : 0, err);
		break;
	}
	case PG_LOG_SEARCH:
		c->found_done(c->arg, c->r, c->r == 0 ? c->q.line : -1,
			      c->r == 0 && c->q.line < 0 ? c->q.next : -1, err);
		break;
	}
	pg_log_call_free(c);
}

static int pg_log_send(struct pg_log_call *c, const char *sql, int nparams,
		       const char *const *values, bool binary, pg_conn_result_cb cb)
{
	struct pg_query q = {
		.sql = sql, .nparams = nparams, .values = values, .binary_result = binary};
	int r = pg_batch_read(db_pg_batch(c->db), &q, cb, c);
	if (r < 0)
		return db_failf(c->db, r, "cannot send the query: %s", strerror(-r));
	c->pending++;
	return 0;
}

static int64_t pg_log_int8(const PGresult *res, int row, int col)
{
	uint64_t v = 0;
	if (PQgetlength(res, row, col) == 8)
		memcpy(&v, PQgetvalue(res, row, col), 8);
	return (int64_t)be64toh(v);
}

static void pg_log_chunk_of(const PGresult *res, int row, struct db_log_chunk *ch)
{
	*ch = (struct db_log_chunk){
		.first_line = pg_log_int8(res, row, 0),
		.last_line = pg_log_int8(res, row, 1),
		.compressed = pg_log_int8(res, row, 2) != 0,
		.blob = PQgetvalue(res, row, 3),
		.n = (size_t)PQgetlength(res, row, 3),
	};
}

/* --- the log's row ---------------------------------------------------------------------- */

static void pg_log_on_row(void *arg, int r, const PGresult *res, const char *err);

static int pg_log_send_row(struct pg_log_call *c)
{
	static const char sql[] =
		"SELECT stepid, type, complete, num_lines FROM logs WHERE id = $1::bigint";
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, c->logid);
	const char *v[] = {id};
	return pg_log_send(c, sql, 1, v, false, pg_log_on_row);
}

static void pg_log_search_rows(struct pg_log_call *c, int64_t after);
static int pg_log_start(struct pg_log_call *c);

/* A round ended (every answer in): the answer, or the next step. */
static void pg_log_round_done(struct pg_log_call *c)
{
	if (c->r < 0 && c->r != -E2BIG) {
		pg_log_finish(c);
		return;
	}
	int r = 0;
	switch (c->kind) {
	case PG_LOG_GET:
		break;
	case PG_LOG_READ:
		if (c->r == 0)
			r = db_log_read_tail(c->db, &c->rd);
		/* the tail moved on while the chunks were read: the lines read
		 * are the log's, up to where the tail was; a shorter page (the
		 * reader asks again from there) instead of another round */
		if (r == -EAGAIN && c->rd.count > 0)
			r = 0;
		break;
	case PG_LOG_SEARCH:
		r = db_log_search_head(c->db, &c->q);
		if (r == 0 && db_log_search_wants_rows(&c->q)) {
			pg_log_search_rows(c, -1);
			return;
		}
		if (r == 0)
			r = db_log_search_tail(c->db, &c->q);
		break;
	}
	if (r == -EAGAIN && c->retries++ < KILN_PG_LOG_RETRIES) {
		c->have_row = false;
		r = pg_log_start(c);
		if (r == 0)
			return;
	}
	if (r == -EAGAIN)
		pg_log_fail(c, KILN_EDB, "the log's tail kept moving while it was read");
	else if (r < 0)
		pg_log_fail_db(c, r);
	pg_log_finish(c);
}

static void pg_log_on_row(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_log_call *c = arg;
	c->pending--;
	if (r < 0) {
		pg_log_fail(c, r, err);
	} else if (PQntuples(res) == 0) {
		char why[64];
		snprintf(why, sizeof(why), "no log %" PRId64, c->logid);
		pg_log_fail(c, KILN_ENOTFOUND, why);
	} else {
		const char *type = PQgetvalue(res, 0, 1);
		struct db_log_tail *t = db_log_tail_find(c->db, c->logid);
		c->have_row = true;
		c->info = (struct db_log_info){
			.logid = c->logid,
			.stepid = pg_col_i64(res, 0, 0),
			.num_lines = t ? t->num_lines : pg_col_i64(res, 0, 3),
			.type = type[0] ? type[0] : 's',
			.complete = pg_col_i64(res, 0, 2) != 0,
		};
		if (c->kind == PG_LOG_SEARCH)
			c->q.strip = c->info.type == 's';
	}
	if (c->pending == 0)
		pg_log_round_done(c);
}

/* --- line ranges ------------------------------------------------------------------------ */

static void pg_log_on_read_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_log_call *c = arg;
	c->pending--;
	if (r < 0) {
		pg_log_fail(c, r, err);
	} else if (c->have_row) {
		for (int i = 0, n = PQntuples(res); i < n && c->r == 0; i++) {
			struct db_log_chunk ch;
			pg_log_chunk_of(res, i, &ch);
			int e = db_log_read_row(c->db, &c->rd, &ch);
			if (e < 0)
				pg_log_fail_db(c, e);
		}
	}
	if (c->pending == 0)
		pg_log_round_done(c);
}

static int pg_log_send_read(struct pg_log_call *c)
{
	buf_reset(&c->text);
	int r = db_log_read_init(c->db, &c->rd, c->logid, c->first, c->max, &c->text);
	if (r < 0)
		return r;
	r = pg_log_send_row(c);
	if (r < 0 || c->rd.first >= c->rd.table_to)
		return r;
	static const char sql[] =
		"SELECT first_line, last_line, compressed, content FROM logchunks "
		"WHERE logid = $1::bigint AND first_line >= COALESCE((SELECT first_line "
		"FROM logchunks WHERE logid = $1::bigint AND first_line <= $2::bigint "
		"ORDER BY first_line DESC LIMIT 1), 0) "
		"AND first_line < $3::bigint ORDER BY first_line";
	char id[24], from[24], to[24];
	snprintf(id, sizeof(id), "%" PRId64, c->logid);
	snprintf(from, sizeof(from), "%" PRId64, c->rd.first);
	snprintf(to, sizeof(to), "%" PRId64, c->rd.table_to);
	const char *v[] = {id, from, to};
	return pg_log_send(c, sql, 3, v, true, pg_log_on_read_rows);
}

/* --- searching -------------------------------------------------------------------------- */

static void pg_log_on_search_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_log_call *c = arg;
	c->pending--;
	if (r < 0) {
		pg_log_fail(c, r, err);
		pg_log_finish(c);
		return;
	}
	int n = PQntuples(res), settled = 0;
	int64_t last = -1;
	for (int i = 0; i < n && settled == 0; i++) {
		struct db_log_chunk ch;
		pg_log_chunk_of(res, i, &ch);
		last = ch.first_line;
		settled = db_log_search_row(c->db, &c->q, &ch);
	}
	if (settled < 0) {
		pg_log_fail_db(c, settled);
	} else if (settled == 0 && n == KILN_PG_LOG_SEARCH_ROWS) {
		pg_log_search_rows(c, last);
		return;
	} else if (settled == 0) {
		int e = db_log_search_tail(c->db, &c->q);
		if (e == -EAGAIN && c->retries++ < KILN_PG_LOG_RETRIES && pg_log_start(c) == 0)
			return;
		if (e == -EAGAIN)
			pg_log_fail(c, KILN_EDB,
				    "the log's tail kept moving while it was searched");
		else if (e < 0)
			pg_log_fail_db(c, e);
	}
	pg_log_finish(c);
}

/* The next rows of the search: from the start (after < 0), or past the
 * row whose first line was after. */
static void pg_log_search_rows(struct pg_log_call *c, int64_t after)
{
	static const char fwd0[] =
		"SELECT first_line, last_line, compressed, content FROM logchunks "
		"WHERE logid = $1::bigint AND first_line >= COALESCE((SELECT first_line "
		"FROM logchunks WHERE logid = $1::bigint AND first_line <= $2::bigint "
		"ORDER BY first_line DESC LIMIT 1), 0) "
		"AND first_line < $3::bigint ORDER BY first_line LIMIT $4::bigint";
	static const char fwd[] =
		"SELECT first_line, last_line, compressed, content FROM logchunks "
		"WHERE logid = $1::bigint AND first_line > $2::bigint "
		"AND first_line < $3::bigint ORDER BY first_line LIMIT $4::bigint";
	static const char back0[] =
		"SELECT first_line, last_line, compressed, content FROM logchunks "
		"WHERE logid = $1::bigint AND first_line <= $2::bigint "
		"AND first_line < $3::bigint ORDER BY first_line DESC LIMIT $4::bigint";
	static const char back[] =
		"SELECT first_line, last_line, compressed, content FROM logchunks "
		"WHERE logid = $1::bigint AND first_line < $2::bigint "
		"AND first_line < $3::bigint ORDER BY first_line DESC LIMIT $4::bigint";
	const char *sql = c->q.backward ? (after < 0 ? back0 : back) : (after < 0 ? fwd0 : fwd);
	char id[24], at[24], to[24], lim[24];
	snprintf(id, sizeof(id), "%" PRId64, c->logid);
	snprintf(at, sizeof(at), "%" PRId64, after < 0 ? c->q.from : after);
	snprintf(to, sizeof(to), "%" PRId64, c->q.table_to);
	snprintf(lim, sizeof(lim), "%d", KILN_PG_LOG_SEARCH_ROWS);
	const char *v[] = {id, at, to, lim};
	int r = pg_log_send(c, sql, 4, v, true, pg_log_on_search_rows);
	if (r < 0) {
		pg_log_fail_db(c, r);
		pg_log_finish(c);
	}
}

/* --- calls ------------------------------------------------------------------------------- */

/* Sends the round's queries: the row, and the chunks of a read. */
static int pg_log_start(struct pg_log_call *c)
{
	c->pending = 0;
	switch (c->kind) {
	case PG_LOG_GET:
		return pg_log_send_row(c);
	case PG_LOG_READ:
		return pg_log_send_read(c);
	case PG_LOG_SEARCH: {
		int r = db_log_search_init(c->db, &c->q, c->logid, 's', c->needle, c->nlen,
					   c->flags, c->from, c->max_scan);
		return r < 0 ? r : pg_log_send_row(c);
	}
	}
	return -EINVAL;
}

static struct pg_log_call *pg_log_call_new(struct db *db, enum pg_log_kind kind, int64_t logid,
					   void *arg)
{
	struct pg_log_call *c = xcalloc(1, sizeof(*c));
	c->db = db;
	c->kind = kind;
	c->logid = logid;
	c->arg = arg;
	return c;
}

/* Starts c, or frees it and returns the error (nothing sent then: a
 * failed second send of a round leaves the first one's answer to come,
 * which finishes c). */
static int pg_log_go(struct pg_log_call *c)
{
	int r = pg_log_start(c);
	if (r < 0 && c->pending == 0) {
		pg_log_call_free(c);
		return r;
	}
	if (r < 0)
		pg_log_fail_db(c, r);
	return 0;
}

int db_pg_log_get(struct db *db, int64_t logid, db_log_info_fn done, void *arg)
{
	struct pg_log_call *c = pg_log_call_new(db, PG_LOG_GET, logid, arg);
	c->info_done = done;
	return pg_log_go(c);
}

int db_pg_log_read(struct db *db, int64_t logid, int64_t first_line, int64_t max_lines,
		   size_t max_bytes, db_log_lines_fn done, void *arg)
{
	struct pg_log_call *c = pg_log_call_new(db, PG_LOG_READ, logid, arg);
	c->lines_done = done;
	c->first = first_line;
	c->max = max_lines;
	buf_init(&c->text, max_bytes);
	return pg_log_go(c);
}

int db_pg_log_search(struct db *db, int64_t logid, const char *needle, size_t nlen, unsigned flags,
		     int64_t from, uint64_t max_scan, db_log_found_fn done, void *arg)
{
	if (!needle || nlen == 0 || memchr(needle, '\n', nlen))
		return db_failf(db, -EINVAL, "search text is empty or has a newline");
	struct pg_log_call *c = pg_log_call_new(db, PG_LOG_SEARCH, logid, arg);
	c->found_done = done;
	c->needle = xmemdup(needle, nlen);
	c->nlen = nlen;
	c->flags = flags;
	c->from = from;
	c->max_scan = max_scan;
	return pg_log_go(c);
}
