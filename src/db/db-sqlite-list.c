/*
 * db_list for SQLite: the REST API's collections, their queries built by
 * db-list.c from its table of fields per resource, run and rendered as JSON
 * here.
 */
#include "db/db-internal.h"
#include "db/db-list.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/str.h"
#include "common/xalloc.h"

/* A failed build of a query: its error as db_errmsg() says it. */
static int sqlite_list_err(struct db *db, const struct qbuild *qb, int r)
{
	return qb->err ? db_failf(db, qb->err, "%s", qb->errmsg) : r;
}

static int sqlite_list_too_long(struct db *db)
{
	return db_failf(db, -E2BIG, "query too long");
}

/* Binds the filters' values to parameters first, first + 1, ... */
static int sqlite_list_bind_from(struct db *db, sqlite3_stmt *s, const struct qbuild *qb, int first)
{
	for (size_t i = 0; i < qb->nbinds; i++) {
		int rc = qb->binds[i].is_text
				 ? sqlite3_bind_text(s, (int)i + first, qb->binds[i].s, -1,
						     SQLITE_STATIC)
				 : sqlite3_bind_int64(s, (int)i + first, qb->binds[i].i);
		if (rc != SQLITE_OK)
			return db_fail(db, "bind");
	}
	return 0;
}

static int sqlite_list_bind_all(struct db *db, sqlite3_stmt *s, const struct qbuild *qb)
{
	return sqlite_list_bind_from(db, s, qb, 1);
}

/* --- SQL functions ---------------------------------------------------------------- */

/* kiln_text(x): x (a BLOB, e.g. a try patch as uploaded) as UTF-8 text,
 * each byte that is not part of a valid sequence replaced by U+FFFD, so it
 * can be a JSON string; NULL stays NULL. */
static void sqlite_list_sql_text(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	size_t n = (size_t)sqlite3_value_bytes(argv[0]);
	struct buf out;
	buf_init(&out, xmul(n, 3)); /* any repair fits */
	if (str_utf8_sanitize(&out, sqlite3_value_blob(argv[0]), n) < 0) {
		buf_release(&out);
		sqlite3_result_error_toobig(ctx);
		return;
	}
	size_t len;
	char *text = buf_detach(&out, &len);
	sqlite3_result_text64(ctx, text, len, free, SQLITE_UTF8);
}

int db_list_init_sql(struct db *db)
{
	if (sqlite3_create_function_v2(db->h, "kiln_text", 1,
				       SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
				       sqlite_list_sql_text, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, "create function kiln_text");
	return 0;
}

/* --- rendering ------------------------------------------------------------------ */

/* Text columns should be UTF-8 already; anything else is shown mended (each
 * byte that starts no valid sequence as U+FFFD, as kiln_text() and the
 * PostgreSQL backend's writes do) rather than failing the whole listing. */
static json_t *sqlite_list_text_value(const char *p, size_t n)
{
	json_t *j = json_stringn(p, n);
	if (j)
		return j;
	struct buf out;
	buf_init(&out, 3 * n + 1);
	j = str_utf8_sanitize(&out, p, n) == 0 ? json_stringn(out.ptr, out.len) : NULL;
	buf_release(&out);
	return j ? j : json_string("");
}

static json_t *sqlite_list_column_value(sqlite3_stmt *s, int col, enum field_type type)
{
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return json_null();
	switch (type) {
	case F_INT:
		return json_integer(sqlite3_column_int64(s, col));
	case F_TIME:
		return json_integer((json_int_t)floor(sqlite3_column_double(s, col)));
	case F_BOOL:
		return json_boolean(sqlite3_column_int64(s, col) != 0);
	case F_TEXT:
		return sqlite_list_text_value((const char *)sqlite3_column_text(s, col),
					      (size_t)sqlite3_column_bytes(s, col));
	case F_JSON: {
		const char *p = (const char *)sqlite3_column_text(s, col);
		json_t *j =
			json_loadb(p, (size_t)sqlite3_column_bytes(s, col), JSON_DECODE_ANY, NULL);
		return j ? j : json_null();
	}
	}
	return json_null();
}

/* --- db_list ---------------------------------------------------------------------- */

/* One row of s as a JSON object: the tables list fields in name order, so
 * its keys are inserted sorted and the API can dump them in insertion order. */
static json_t *sqlite_list_render_row(sqlite3_stmt *s, const struct resource *rs, uint64_t skipped)
{
	json_t *o = json_object();
	int col = 0;
	for (size_t i = 0; i < rs->nfields; i++) {
		const struct field *f = &rs->fields[i];
		if (f->flags & F_FILTER_ONLY)
			continue;
		json_t *v = i < 64 && (skipped >> i & 1)
				    ? json_null()
				    : sqlite_list_column_value(s, col++, f->type);
		json_object_set_new_nocheck(o, f->name, v);
	}
	return o;
}

/* Steps s to its end, each row rendered into *ret_items (a new array);
 * what names the query in an error. */
static int sqlite_list_collect(struct db *db, sqlite3_stmt *s, const struct resource *rs,
			       uint64_t skipped, const char *what, json_t **ret_items)
{
	json_t *items = json_array();
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(items, sqlite_list_render_row(s, rs, skipped));
	if (rc != SQLITE_DONE) {
		json_decref(items);
		return db_fail(db, what);
	}
	*ret_items = items;
	return 0;
}

static int sqlite_list_count(struct db *db, const struct resource *rs, const struct qbuild *qb,
			     int64_t *ret_total)
{
	_cleanup_free_ char *sql = xasprintf("SELECT COUNT(*) FROM %s%s", rs->from,
					     qb->where.ptr ? qb->where.ptr : "");
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(db, sql);
	if (!s)
		return KILN_EDB;
	int r = sqlite_list_bind_all(db, s, qb);
	if (r < 0)
		return r;
	if (sqlite3_step(s) != SQLITE_ROW)
		return db_fail(db, "count");
	*ret_total = sqlite3_column_int64(s, 0);
	return 0;
}

int db_list(struct db *db, enum db_resource res, const struct db_query *q, json_t **ret_items,
	    int64_t *ret_total)
{
	return db_list_skip(db, res, q, NULL, ret_items, ret_total);
}

int db_list_skip(struct db *db, enum db_resource res, const struct db_query *q,
		 const char *const *skip, json_t **ret_items, int64_t *ret_total)
{
	struct qbuild qb;
	struct buf sql;
	list_qb_init(&qb, false, 0);
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	const struct resource *rs = NULL;
	uint64_t skipped = 0;
	json_t *items = NULL;
	int r = sqlite_list_err(db, &qb, list_build(&qb, res, q, skip, false, &rs, &skipped, &sql));
	if (r < 0)
		goto out;
	/* Log counters of open logs live in memory until the batch commits. */
	if (res == DB_LOGS && db->in_txn && (r = db_log_sync_all(db)) < 0)
		goto out;

	sqlite3_stmt *s = db_stmt_dynamic(db, sql.ptr);
	if (!s) {
		r = KILN_EDB;
		goto out;
	}
	if ((r = sqlite_list_bind_all(db, s, &qb)) < 0)
		goto reset;
	sqlite3_bind_int64(s, (int)qb.nbinds + 1, q && q->limit >= 0 ? q->limit : -1);
	sqlite3_bind_int64(s, (int)qb.nbinds + 2, q ? q->offset : 0);
	if ((r = sqlite_list_collect(db, s, rs, skipped, "list", &items)) < 0)
		goto reset;
	/* Done with s before the count: preparing the count may evict a
	 * cached statement. */
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (ret_total && (r = sqlite_list_count(db, rs, &qb, ret_total)) < 0)
		goto out;
	*ret_items = items;
	items = NULL;
	r = 0;
	goto out;
reset:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
out:
	json_decref(items);
	list_qb_release(&qb);
	buf_release(&sql);
	return r;
}

/* --- streamed listing: the ids first, then the rows a few at a time ------------ */

int db_list_ids(struct db *db, enum db_resource res, const struct db_query *q, int64_t **ret_ids,
		size_t *ret_n)
{
	struct qbuild qb;
	struct buf sql;
	list_qb_init(&qb, false, 0);
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	const struct resource *rs = NULL;
	uint64_t skipped = 0;
	int64_t *ids = NULL;
	size_t n = 0, alloc = 0;
	sqlite3_stmt *s = NULL;
	int r = -EINVAL;
	if (!q || q->limit < 0) {
		r = db_failf(db, -EINVAL, "listing ids needs a limit");
		goto out;
	}
	r = sqlite_list_err(db, &qb, list_build(&qb, res, q, NULL, true, &rs, &skipped, &sql));
	if (r < 0)
		goto out;
	s = db_stmt_dynamic(db, sql.ptr);
	if (!s) {
		r = KILN_EDB;
		goto out;
	}
	if ((r = sqlite_list_bind_all(db, s, &qb)) < 0)
		goto out;
	sqlite3_bind_int64(s, (int)qb.nbinds + 1, q->limit);
	sqlite3_bind_int64(s, (int)qb.nbinds + 2, q->offset);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ARRAY_GROW(ids, n + 1, alloc);
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	if (rc != SQLITE_DONE) {
		r = db_fail(db, "list ids");
		goto out;
	}
	*ret_ids = TAKE_PTR(ids);
	*ret_n = n;
	r = 0;
out:
	db_stmt_resetp(&s);
	free(ids);
	list_qb_release(&qb);
	buf_release(&sql);
	return r;
}

/* --- every builder's last build in one statement (the API's lastbuilds) --------- */

int db_list_last_builds(struct db *db, const struct db_query *q, const char *const *skip,
			json_t **ret_items)
{
	const struct resource *rs = list_resource_get(DB_BUILDS);
	struct qbuild qb;
	struct buf sql;
	list_qb_init(&qb, false, 2);
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	uint64_t skipped = list_skip_mask(rs, skip);
	int r = 0;
	if (q->offset < 0 || q->limit < 0) {
		r = db_failf(db, -EINVAL, "invalid limit or offset");
		goto out;
	}
	for (size_t i = 0; i < q->nfilters && r >= 0; i++)
		r = list_add_filter(&qb, rs, &q->filters[i]);
	if (r < 0 || (r = list_add_columns(&qb, rs, skipped, false, &sql)) < 0) {
		r = sqlite_list_err(db, &qb, r);
		goto out;
	}
	/* The page of builders (?1, ?2) first, then for each the id of its
	 * highest-numbered build matching the filters (their binds are ?3..):
	 * one seek into builds' (builderid, number) index per builder. */
	if (buf_addf(&sql,
		     " FROM (SELECT id FROM builders ORDER BY id LIMIT ?1 OFFSET ?2) x "
		     "JOIN builds b ON b.id = (SELECT b.id FROM builds b%s%s b.builderid = x.id "
		     "ORDER BY b.number DESC, b.id DESC LIMIT 1) ORDER BY x.id",
		     qb.where.ptr ? qb.where.ptr : "", qb.where.len ? " AND" : " WHERE") < 0 ||
	    buf_error(&qb.where) < 0) {
		r = sqlite_list_too_long(db);
		goto out;
	}
	sqlite3_stmt *s = db_stmt_dynamic(db, sql.ptr);
	if (!s) {
		r = KILN_EDB;
		goto out;
	}
	sqlite3_bind_int64(s, 1, q->limit);
	sqlite3_bind_int64(s, 2, q->offset);
	/* the filters' binds follow the page's ?1 and ?2 */
	r = sqlite_list_bind_from(db, s, &qb, 3);
	if (r >= 0)
		r = sqlite_list_collect(db, s, rs, skipped, "last builds", ret_items);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
out:
	list_qb_release(&qb);
	buf_release(&sql);
	return r;
}

int db_list_rows(struct db *db, enum db_resource res, const int64_t *ids, size_t n,
		 const char *const *skip, json_t **ret_items)
{
	const struct resource *rs = list_resource_get(res);
	if (!rs)
		return db_failf(db, -EINVAL, "unknown resource %d", (int)res);
	if (n == 0) {
		*ret_items = json_array();
		return 0;
	}
	if (n > DB_LIST_ROWS_MAX)
		return db_failf(db, -EINVAL, "%zu rows asked at once (at most %d)", n,
				DB_LIST_ROWS_MAX);
	uint64_t skipped = list_skip_mask(rs, skip);
	struct buf sql;
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	sqlite3_stmt *s = NULL;
	/* Each id paired with its position: rowid lookups, rows in the ids' order. */
	struct qbuild qb;
	list_qb_init(&qb, false, 0);
	int r = sqlite_list_err(db, &qb, list_add_columns(&qb, rs, skipped, false, &sql));
	list_qb_release(&qb);
	if (r >= 0 && buf_addf(&sql, " FROM %s JOIN (VALUES ", rs->from) < 0)
		r = sqlite_list_too_long(db);
	for (size_t i = 0; r >= 0 && i < n; i++)
		if (buf_addf(&sql, "%s(%zu, ?)", i ? ", " : "", i) < 0)
			r = sqlite_list_too_long(db);
	if (r >= 0 && buf_addf(&sql,
			       ") AS kiln_page ON %s = kiln_page.column2 "
			       "ORDER BY kiln_page.column1",
			       rs->id) < 0)
		r = sqlite_list_too_long(db);
	if (r < 0)
		goto out;
	/* Log counters of open logs live in memory until the batch commits. */
	if (res == DB_LOGS && db->in_txn && (r = db_log_sync_all(db)) < 0)
		goto out;
	s = db_stmt_dynamic(db, sql.ptr);
	if (!s) {
		r = KILN_EDB;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (sqlite3_bind_int64(s, (int)i + 1, ids[i]) != SQLITE_OK) {
			r = db_fail(db, "bind");
			goto out;
		}
	r = sqlite_list_collect(db, s, rs, skipped, "list rows", ret_items);
out:
	db_stmt_resetp(&s);
	buf_release(&sql);
	return r;
}

/* EXPLAIN QUERY PLAN of sql, one detail line per step (tests check index use). */
int db_sql_explain(struct db *db, const char *sql, char **ret_plan)
{
	char *eqp = xasprintf("EXPLAIN QUERY PLAN %s", sql);
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db->h, eqp, -1, &s, NULL);
	free(eqp);
	if (rc != SQLITE_OK)
		return db_fail(db, "explain");
	struct buf plan;
	buf_init(&plan, 1u << 20);
	int r = 0;
	while (r >= 0 && sqlite3_step(s) == SQLITE_ROW)
		r = buf_addf(&plan, "%s\n", (const char *)sqlite3_column_text(s, 3));
	sqlite3_finalize(s);
	if (r < 0) {
		buf_release(&plan);
		return db_failf(db, r, "query plan too long");
	}
	*ret_plan = buf_detach(&plan, NULL);
	return 0;
}

int db_list_explain(struct db *db, enum db_resource res, const struct db_query *q, char **ret_plan)
{
	struct qbuild qb;
	struct buf sql;
	list_qb_init(&qb, false, 0);
	buf_init(&sql, 2 * DB_MAX_LIST_SQL);
	const struct resource *rs = NULL;
	uint64_t skipped;
	int r = sqlite_list_err(db, &qb, list_build(&qb, res, q, NULL, false, &rs, &skipped, &sql));
	if (r >= 0)
		r = db_sql_explain(db, sql.ptr, ret_plan);
	list_qb_release(&qb);
	buf_release(&sql);
	return r;
}
