/*
 * db_list on PostgreSQL (issue 14): the REST collections' queries of
 * db-list.c in PostgreSQL's dialect, sent on a pg_conn and answered on the
 * loop, rendered as db-sqlite-list.c renders them, so an API answer is the
 * same on either backend (test-pg-list compares them on the same rows).
 *
 * Runs on the loop's thread; done is never called from inside a send.
 * Internal to src/db.
 */
#ifndef KILN_DB_PG_LIST_H
#define KILN_DB_PG_LIST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include <libpq-fe.h>

struct pg_batch;

/*
 * The answer: r == 0 with items (a JSON array, owned by the callback) and
 * total (the matching rows before limit and offset, when asked; else -1);
 * or r < 0 (KILN_EDB, -ECONNRESET, ... as pg-conn.h says) with items NULL
 * and err saying why (borrowed for the call).
 */
typedef void (*pg_list_done_fn)(void *arg, int r, json_t *items, int64_t total, const char *err);

/*
 * db_list_skip's query on c.  Returns 0 (done is called later) or an error
 * at once, done never called: what db_list_skip returns for the same query
 * (KILN_EPARSE for an unknown field, -EINVAL, -E2BIG), or pg_conn_send's;
 * err (errlen bytes) says why, as db_errmsg() would.
 */
int pg_list_send(struct pg_batch *b, enum db_resource res, const struct db_query *q,
		 const char *const *skip, bool want_total, pg_list_done_fn done, void *arg,
		 char *err, size_t errlen);

/* db_list_rows' query on c: the rows with ids[0..n), in that order. */
int pg_list_rows_send(struct pg_batch *b, enum db_resource res, const int64_t *ids, size_t n,
		      const char *const *skip, pg_list_done_fn done, void *arg, char *err,
		      size_t errlen);

/* Any read of db.h on PostgreSQL answered as a listing is (db-pg-*.c):
 * rows' result rendered into items by render (a JSON array, new
 * reference), and the first value of count's (may be NULL) as total. */
struct pg_query;
typedef json_t *(*pg_read_render_fn)(const PGresult *res);
int pg_read_send(struct pg_batch *b, const struct pg_query *rows, const struct pg_query *count,
		 pg_read_render_fn render, pg_list_done_fn done, void *arg, char *err,
		 size_t errlen);

/* db_list_ids' query: the ids in items as a JSON array of integers. */
int pg_list_ids_send(struct pg_batch *b, enum db_resource res, const struct db_query *q,
		     pg_list_done_fn done, void *arg, char *err, size_t errlen);

/* db_list_last_builds' query: each builder's last build matching q's
 * filters, a page of builders (q's limit and offset). */
int pg_list_last_builds_send(struct pg_batch *b, const struct db_query *q, const char *const *skip,
			     pg_list_done_fn done, void *arg, char *err, size_t errlen);

#endif
