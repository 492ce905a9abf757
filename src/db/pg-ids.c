/*
 * Row ids reserved ahead from a PostgreSQL sequence (pg-ids.h).  The
 * reserve is an array of ids [head, n); a refill appends a block from one
 * `nextval ... generate_series` query.  A refill in flight carries a token
 * the reserve can let go of, so freeing the reserve never waits for the
 * server.
 */
#include "db/pg-ids.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/pg-conn.h"
#include "db/pg-col.h"

#define PG_IDS_MAX_BLOCK 100000

struct pg_ids_token {
	struct pg_ids *ids; /* NULL once the reserve is freed */
};

struct pg_ids {
	struct pg_conn *c;
	char *table, *column;
	unsigned block;
	int64_t *v;
	size_t head, n, cap;
	struct pg_ids_token *inflight; /* the refill under way, or NULL */
	pg_ids_refill_fn on_refill;
	void *arg;
};

static void ids_refilled(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_ids_token *tok = arg;
	struct pg_ids *ids = tok->ids;
	free(tok);
	if (!ids)
		return;
	ids->inflight = NULL;
	int rows = r == 0 && res ? PQntuples(res) : 0;
	if (r == 0 && rows != (int)ids->block) {
		r = KILN_EDB;
		err = "the sequence gave fewer ids than asked";
	}
	if (r == 0) {
		memmove(ids->v, ids->v + ids->head, (ids->n - ids->head) * sizeof(*ids->v));
		ids->n -= ids->head;
		ids->head = 0;
		for (int i = 0; i < rows && ids->n < ids->cap; i++)
			ids->v[ids->n++] = pg_col_i64(res, i, 0);
	}
	if (ids->on_refill)
		ids->on_refill(ids->arg, r, r == 0 ? NULL : err);
}

static void ids_refill(struct pg_ids *ids)
{
	if (ids->inflight)
		return;
	char nbuf[16];
	snprintf(nbuf, sizeof(nbuf), "%u", ids->block);
	const char *p[3] = {ids->table, ids->column, nbuf};
	struct pg_ids_token *tok = xcalloc(1, sizeof(*tok));
	tok->ids = ids;
	struct pg_query q = {.sql = "SELECT nextval(pg_get_serial_sequence($1, $2)) FROM "
				    "generate_series(1, $3::int)",
			     .nparams = 3,
			     .values = p};
	if (pg_conn_send(ids->c, &q, ids_refilled, tok) < 0) {
		free(tok); /* the next pg_ids_next() tries again */
		return;
	}
	ids->inflight = tok;
}

int pg_ids_new(struct pg_conn *c, const char *table, const char *column, unsigned block,
	       pg_ids_refill_fn on_refill, void *arg, struct pg_ids **ret)
{
	if (!c || !table || !column || block == 0 || block > PG_IDS_MAX_BLOCK)
		return -EINVAL;
	struct pg_ids *ids = xcalloc(1, sizeof(*ids));
	ids->c = c;
	ids->table = xstrdup(table);
	ids->column = xstrdup(column);
	ids->block = block;
	ids->cap = 2 * (size_t)block; /* refilled at half a block left: at most 1.5 blocks */
	ids->v = xcalloc(ids->cap, sizeof(*ids->v));
	ids->on_refill = on_refill;
	ids->arg = arg;
	ids_refill(ids);
	*ret = ids;
	return 0;
}

void pg_ids_free(struct pg_ids *ids)
{
	if (!ids)
		return;
	if (ids->inflight)
		ids->inflight->ids = NULL;
	free(ids->v);
	free(ids->table);
	free(ids->column);
	free(ids);
}

int pg_ids_next(struct pg_ids *ids, int64_t *ret)
{
	if (ids->head == ids->n) {
		ids_refill(ids);
		return -EAGAIN;
	}
	*ret = ids->v[ids->head++];
	if (ids->n - ids->head < ids->block / 2 + 1)
		ids_refill(ids);
	return 0;
}

size_t pg_ids_left(const struct pg_ids *ids)
{
	return ids->n - ids->head;
}

bool pg_ids_refilling(struct pg_ids *ids)
{
	if (ids->n - ids->head < ids->block / 2 + 1)
		ids_refill(ids);
	return ids->inflight != NULL;
}
