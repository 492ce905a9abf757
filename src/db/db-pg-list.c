/*
 * db_list on PostgreSQL (db-pg-list.h).  Values come back as text: each is
 * read back into the JSON type its field's table line gives.
 */
#include "db/db-pg-list.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/db-list.h"
#include "db/pg-batch.h"
#include "db/pg-conn.h"
#include "db/pg-col.h"

struct pg_list_call {
	const struct resource *rs;
	uint64_t skipped;
	bool ids_only;            /* items are the first column's integers */
	pg_read_render_fn render; /* or this renders them (pg_read_send) */
	pg_list_done_fn done;
	void *arg;
	int pending; /* answers still to come */
	int r;
	char *err; /* owned: the first error's text */
	json_t *items;
	int64_t total;
};

static json_t *pg_list_value(const PGresult *res, int row, int col, enum field_type type)
{
	if (PQgetisnull(res, row, col))
		return json_null();
	const char *v = PQgetvalue(res, row, col);
	size_t n = (size_t)PQgetlength(res, row, col);
	switch (type) {
	case F_INT:
		return json_integer(strtoll(v, NULL, 10));
	case F_TIME:
		return json_integer((json_int_t)floor(strtod(v, NULL)));
	case F_BOOL: /* an integer column ("0", "1") or a boolean ("t", "f") */
		return json_boolean(v[0] == 't' || (v[0] != 'f' && strtoll(v, NULL, 10) != 0));
	case F_TEXT: {
		json_t *j = json_stringn(v, n);
		return j ? j : json_null();
	}
	case F_JSON: {
		json_t *j = json_loadb(v, n, JSON_DECODE_ANY, NULL);
		return j ? j : json_null();
	}
	}
	return json_null();
}

/* The rows of res as db-sqlite-list.c renders them (keys in name order). */
static json_t *pg_list_render(const PGresult *res, const struct resource *rs, uint64_t skipped)
{
	json_t *items = json_array();
	int rows = PQntuples(res);
	for (int row = 0; row < rows; row++) {
		json_t *o = json_object();
		int col = 0;
		for (size_t i = 0; i < rs->nfields; i++) {
			const struct field *f = &rs->fields[i];
			if (f->flags & F_FILTER_ONLY)
				continue;
			json_t *v = i < 64 && (skipped >> i & 1)
					    ? json_null()
					    : pg_list_value(res, row, col++, f->type);
			json_object_set_new_nocheck(o, f->name, v);
		}
		json_array_append_new(items, o);
	}
	return items;
}

static json_t *pg_list_render_ids(const PGresult *res)
{
	json_t *ids = json_array();
	for (int row = 0, rows = PQntuples(res); row < rows; row++)
		json_array_append_new(ids, json_integer(pg_col_i64(res, row, 0)));
	return ids;
}

static void pg_list_finish(struct pg_list_call *call)
{
	if (call->r < 0) {
		json_decref(call->items);
		call->items = NULL;
	}
	call->done(call->arg, call->r, call->items, call->total,
		   call->r < 0 ? (call->err ? call->err : "failed") : NULL);
	free(call->err);
	free(call);
}

static void pg_list_fail(struct pg_list_call *call, int r, const char *err)
{
	if (call->r < 0)
		return;
	call->r = r < 0 ? r : KILN_EDB;
	call->err = xstrdup(err ? err : "failed");
}

static void pg_list_on_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_list_call *call = arg;
	if (r < 0)
		pg_list_fail(call, r, err);
	else if (call->r == 0 && call->render)
		call->items = call->render(res);
	else if (call->r == 0 && call->ids_only)
		call->items = pg_list_render_ids(res);
	else if (call->r == 0)
		call->items = pg_list_render(res, call->rs, call->skipped);
	if (--call->pending == 0)
		pg_list_finish(call);
}

static void pg_list_on_count(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_list_call *call = arg;
	if (r < 0)
		pg_list_fail(call, r, err);
	else if (PQntuples(res) == 1)
		call->total = pg_col_i64(res, 0, 0);
	if (--call->pending == 0)
		pg_list_finish(call);
}

/* The filters' values as text parameters, then extra (may be NULL). */
struct pg_list_params {
	const char **values;
	char (*nums)[24];
	size_t n;
};

static void pg_list_params_init(struct pg_list_params *p, const struct qbuild *qb, size_t extra)
{
	size_t n = qb->nbinds + extra;
	p->values = xcalloc(n ? n : 1, sizeof(*p->values));
	p->nums = xcalloc(n ? n : 1, sizeof(*p->nums));
	p->n = qb->nbinds;
	for (size_t i = 0; i < qb->nbinds; i++) {
		if (qb->binds[i].is_text) {
			p->values[i] = qb->binds[i].s;
		} else {
			snprintf(p->nums[i], sizeof(p->nums[i]), "%" PRId64, qb->binds[i].i);
			p->values[i] = p->nums[i];
		}
	}
}

static void pg_list_params_add(struct pg_list_params *p, const int64_t *v)
{
	if (v) {
		snprintf(p->nums[p->n], sizeof(p->nums[p->n]), "%" PRId64, *v);
		p->values[p->n] = p->nums[p->n];
	} else {
		p->values[p->n] = NULL;
	}
	p->n++;
}

static void pg_list_params_release(struct pg_list_params *p)
{
	free(p->values);
	free(p->nums);
}

/* Sends sql with p's values, its rows answered to a copy of how. */
static int pg_list_send_call(struct pg_batch *b, const char *sql, const struct pg_list_params *p,
			     const struct pg_list_call *how, struct pg_list_call **ret_call,
			     char *err, size_t errlen)
{
	struct pg_list_call *call = xmalloc(sizeof(*call));
	*call = *how;
	call->total = -1;
	struct pg_query pq = {.sql = sql, .nparams = (int)p->n, .values = p->values};
	int r = pg_batch_read(b, &pq, pg_list_on_rows, call);
	if (r < 0) {
		snprintf(err, errlen, "cannot send the query: %s", strerror(-r));
		free(call);
		return r;
	}
	call->pending = 1;
	if (ret_call)
		*ret_call = call;
	return 0;
}

static int pg_list_build_err(const struct qbuild *qb, int r, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", qb->err ? qb->errmsg : "query too long");
	return qb->err ? qb->err : r;
}

static int pg_list_query(struct pg_batch *b, enum db_resource res, const struct db_query *q,
			 const char *const *skip, bool ids_only, bool want_total,
			 pg_list_done_fn done, void *arg, char *err, size_t errlen)
{
	struct qbuild qb;
	struct buf sql;
	list_qb_init(&qb, true, 0);
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	const struct resource *rs = NULL;
	uint64_t skipped = 0;
	struct pg_list_params p = {0};
	int r = list_build(&qb, res, q, skip, ids_only, &rs, &skipped, &sql);
	if (r < 0) {
		r = pg_list_build_err(&qb, r, err, errlen);
		goto out;
	}
	pg_list_params_init(&p, &qb, 2);
	int64_t limit = q ? q->limit : -1, offset = q ? q->offset : 0;
	pg_list_params_add(&p, limit >= 0 ? &limit : NULL);
	pg_list_params_add(&p, &offset);
	struct pg_list_call how = {
		.rs = rs, .skipped = skipped, .ids_only = ids_only, .done = done, .arg = arg};
	struct pg_list_call *call = NULL;
	r = pg_list_send_call(b, sql.ptr, &p, &how, &call, err, errlen);
	if (r < 0)
		goto out;
	if (want_total) {
		_cleanup_free_ char *count = xasprintf("SELECT COUNT(*) FROM %s%s", rs->from,
						       qb.where.ptr ? qb.where.ptr : "");
		struct pg_query cq = {.sql = count, .nparams = (int)qb.nbinds, .values = p.values};
		if (pg_batch_read(b, &cq, pg_list_on_count, call) == 0)
			call->pending++;
		else
			pg_list_fail(call, -ENOBUFS, "cannot send the count query");
	}
	r = 0;
out:
	pg_list_params_release(&p);
	list_qb_release(&qb);
	buf_release(&sql);
	return r;
}

int pg_read_send(struct pg_batch *b, const struct pg_query *rows, const struct pg_query *count,
		 pg_read_render_fn render, pg_list_done_fn done, void *arg, char *err,
		 size_t errlen)
{
	struct pg_list_call *call = xcalloc(1, sizeof(*call));
	*call = (struct pg_list_call){.render = render, .done = done, .arg = arg, .total = -1};
	int r = pg_batch_read(b, rows, pg_list_on_rows, call);
	if (r < 0) {
		snprintf(err, errlen, "cannot send the query: %s", strerror(-r));
		free(call);
		return r;
	}
	call->pending = 1;
	if (count) {
		if (pg_batch_read(b, count, pg_list_on_count, call) == 0)
			call->pending++;
		else
			pg_list_fail(call, -ENOBUFS, "cannot send the count query");
	}
	return 0;
}

int pg_list_send(struct pg_batch *b, enum db_resource res, const struct db_query *q,
		 const char *const *skip, bool want_total, pg_list_done_fn done, void *arg,
		 char *err, size_t errlen)
{
	return pg_list_query(b, res, q, skip, false, want_total, done, arg, err, errlen);
}

int pg_list_ids_send(struct pg_batch *b, enum db_resource res, const struct db_query *q,
		     pg_list_done_fn done, void *arg, char *err, size_t errlen)
{
	if (!q || q->limit < 0) {
		snprintf(err, errlen, "listing ids needs a limit");
		return -EINVAL;
	}
	return pg_list_query(b, res, q, NULL, true, false, done, arg, err, errlen);
}

int pg_list_last_builds_send(struct pg_batch *b, const struct db_query *q, const char *const *skip,
			     pg_list_done_fn done, void *arg, char *err, size_t errlen)
{
	const struct resource *rs = list_resource_get(DB_BUILDS);
	uint64_t skipped = list_skip_mask(rs, skip);
	if (q->offset < 0 || q->limit < 0) {
		snprintf(err, errlen, "invalid limit or offset");
		return -EINVAL;
	}
	struct qbuild qb;
	struct buf sql;
	list_qb_init(&qb, true, 2);
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	struct pg_list_params p = {0};
	int r = 0;
	for (size_t i = 0; i < q->nfilters && r >= 0; i++)
		r = list_add_filter(&qb, rs, &q->filters[i]);
	if (r >= 0)
		r = list_add_columns(&qb, rs, skipped, false, &sql);
	/* the page of builders ($1, $2), then for each its highest-numbered
	 * build matching the filters (their values are $3...) */
	if (r >= 0 &&
	    buf_addf(&sql,
		     " FROM (SELECT id FROM builders ORDER BY id LIMIT $1 OFFSET $2) x "
		     "JOIN builds b ON b.id = (SELECT b.id FROM builds b%s%s b.builderid = x.id "
		     "ORDER BY b.number DESC, b.id DESC LIMIT 1) ORDER BY x.id",
		     qb.where.ptr ? qb.where.ptr : "", qb.where.len ? " AND" : " WHERE") < 0)
		r = -E2BIG;
	if (r >= 0 && buf_error(&qb.where) < 0)
		r = -E2BIG;
	if (r < 0) {
		r = pg_list_build_err(&qb, r, err, errlen);
		goto out;
	}
	/* $1 and $2 first: a copy of the filters' values after them */
	struct pg_list_params f = {0};
	pg_list_params_init(&f, &qb, 0);
	p.values = xcalloc(qb.nbinds + 2, sizeof(*p.values));
	p.nums = xcalloc(2, sizeof(*p.nums));
	snprintf(p.nums[0], sizeof(p.nums[0]), "%" PRId64, q->limit);
	snprintf(p.nums[1], sizeof(p.nums[1]), "%" PRId64, q->offset);
	p.values[0] = p.nums[0];
	p.values[1] = p.nums[1];
	for (size_t i = 0; i < qb.nbinds; i++)
		p.values[i + 2] = f.values[i];
	p.n = qb.nbinds + 2;
	struct pg_list_call how = {.rs = rs, .skipped = skipped, .done = done, .arg = arg};
	r = pg_list_send_call(b, sql.ptr, &p, &how, NULL, err, errlen);
	pg_list_params_release(&f);
out:
	pg_list_params_release(&p);
	list_qb_release(&qb);
	buf_release(&sql);
	return r;
}

int pg_list_rows_send(struct pg_batch *b, enum db_resource res, const int64_t *ids, size_t n,
		      const char *const *skip, pg_list_done_fn done, void *arg, char *err,
		      size_t errlen)
{
	const struct resource *rs = list_resource_get(res);
	if (!rs) {
		snprintf(err, errlen, "unknown resource %d", (int)res);
		return -EINVAL;
	}
	if (n > DB_LIST_ROWS_MAX) {
		snprintf(err, errlen, "%zu rows asked at once (at most %d)", n, DB_LIST_ROWS_MAX);
		return -EINVAL;
	}
	uint64_t skipped = list_skip_mask(rs, skip);
	struct qbuild qb;
	struct buf sql;
	list_qb_init(&qb, true, 0);
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	struct pg_list_params p = {0};
	/* Each id paired with its position, rows in the ids' order; no ids
	 * still asks the server, so the answer comes the same way. */
	int r = list_add_columns(&qb, rs, skipped, false, &sql);
	if (r >= 0 && buf_addf(&sql, " FROM %s JOIN (VALUES ", rs->from) < 0)
		r = -E2BIG;
	for (size_t i = 0; r >= 0 && i < n; i++)
		if (buf_addf(&sql, "%s(%zu, $%zu::bigint)", i ? ", " : "", i, i + 1) < 0)
			r = -E2BIG;
	if (r >= 0 && !n && buf_adds(&sql, "(0, NULL::bigint)") < 0)
		r = -E2BIG;
	if (r >= 0 &&
	    buf_addf(&sql, ") AS kiln_page(pos, id) ON %s = kiln_page.id ORDER BY kiln_page.pos",
		     rs->id) < 0)
		r = -E2BIG;
	if (r < 0) {
		r = pg_list_build_err(&qb, r, err, errlen);
		goto out;
	}
	pg_list_params_init(&p, &qb, n);
	for (size_t i = 0; i < n; i++)
		pg_list_params_add(&p, &ids[i]);
	struct pg_list_call how = {.rs = rs, .skipped = skipped, .done = done, .arg = arg};
	r = pg_list_send_call(b, sql.ptr, &p, &how, NULL, err, errlen);
out:
	pg_list_params_release(&p);
	list_qb_release(&qb);
	buf_release(&sql);
	return r;
}
