/*
 * The commit-status reporters' persistent outbound queue on SQLite (db.h
 * "outbound statuses", slice "statuses"; docs/REPORTERS.md).  Schema:
 * migrations/0011-outbound.sql.  A status is queued in the loop turn's
 * write batch, so it commits with the build event that made it; one row
 * per status, deleted once the peer answered.  These calls are a few per
 * build, so their statements come from the dynamic cache.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"

void db_outbound_release(struct db_outbound *o)
{
	free(o->skey);
	free(o->state);
	free(o->path);
	free(o->body);
	memset(o, 0, sizeof(*o));
}

static int outbound_add(struct db *db, const char *reporter, const char *skey, const char *state,
			const char *path, const char *body, int64_t now, size_t max_rows,
			int64_t *ret_dropped, bool *ret_queued)
{
	int r;
	{
		_cleanup_stmt_ sqlite3_stmt *c = db_stmt_dynamic(
			db, "SELECT state FROM outbound_last WHERE reporter = ?1 AND skey = ?2");
		if (!c)
			return KILN_EDB;
		db_bind_text(c, 1, reporter);
		db_bind_text(c, 2, skey);
		if ((r = db_step_row(db, c, "last status")) < 0)
			return r;
		const char *last = r ? (const char *)sqlite3_column_text(c, 0) : NULL;
		if (last && !strcmp(last, state))
			return 0; /* the same state again: not sent twice */
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
			db,
			"INSERT INTO outbound_last (reporter, skey, state, at) VALUES (?1, ?2, "
			"?3, ?4) ON CONFLICT (reporter, skey) DO UPDATE SET state = ?3, at = ?4");
		if (!s)
			return KILN_EDB;
		db_bind_text(s, 1, reporter);
		db_bind_text(s, 2, skey);
		db_bind_text(s, 3, state);
		sqlite3_bind_int64(s, 4, now);
		if ((r = db_step_done(db, s, "remember status")) < 0)
			return r;
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
			db, "INSERT INTO outbound (reporter, skey, state, path, body, created_at) "
			    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
		if (!s)
			return KILN_EDB;
		db_bind_text(s, 1, reporter);
		db_bind_text(s, 2, skey);
		db_bind_text(s, 3, state);
		db_bind_text(s, 4, path);
		db_bind_text(s, 5, body);
		sqlite3_bind_int64(s, 6, now);
		if ((r = db_step_done(db, s, "queue status")) < 0)
			return r;
	}
	*ret_queued = true;
	/* the cap: the oldest rows past max_rows go */
	_cleanup_stmt_ sqlite3_stmt *d = db_stmt_dynamic(
		db, "DELETE FROM outbound WHERE reporter = ?1 AND id IN (SELECT id FROM outbound "
		    "WHERE reporter = ?1 ORDER BY id DESC LIMIT -1 OFFSET ?2)");
	if (!d)
		return KILN_EDB;
	db_bind_text(d, 1, reporter);
	sqlite3_bind_int64(d, 2, (sqlite3_int64)max_rows);
	if ((r = db_step_done(db, d, "cap the outbound queue")) < 0)
		return r;
	*ret_dropped = sqlite3_changes(db->h);
	return 0;
}

int db_outbound_add(struct db *db, const char *reporter, const char *skey, const char *state,
		    const char *path, const char *body, int64_t now, size_t max_rows,
		    int64_t *ret_dropped)
{
	int64_t dropped = 0;
	bool queued = false;
	if (max_rows < 1)
		max_rows = 1;
	int r = WRITE(outbound_add(db, reporter, skey, state, path, body, now, max_rows, &dropped,
				   &queued));
	if (ret_dropped)
		*ret_dropped = r < 0 ? 0 : dropped;
	return r < 0 ? r : queued;
}

static char *outbound_col(sqlite3_stmt *s, int i)
{
	const char *v = (const char *)sqlite3_column_text(s, i);
	return xstrdup(v ? v : "");
}

int db_outbound_next(struct db *db, const char *reporter, struct db_outbound *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "SELECT id, skey, state, path, body, created_at, attempts, next_at FROM "
		    "outbound WHERE reporter = ?1 ORDER BY id LIMIT 1");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, reporter);
	int r = db_step_row(db, s, "next status");
	if (r <= 0)
		return r;
	*ret = (struct db_outbound){
		.id = sqlite3_column_int64(s, 0),
		.skey = outbound_col(s, 1),
		.state = outbound_col(s, 2),
		.path = outbound_col(s, 3),
		.body = outbound_col(s, 4),
		.created_at = sqlite3_column_int64(s, 5),
		.attempts = sqlite3_column_int(s, 6),
		.next_at = sqlite3_column_int64(s, 7),
	};
	return 1;
}

int db_outbound_count(struct db *db, const char *reporter, int64_t *ret)
{
	if (db->pg) /* before the master serves (the stop's count), else -EWOULDBLOCK */
		return db_pg_int_wait(db, "db_outbound_count",
				      "SELECT count(*) FROM outbound WHERE reporter = $1", 1,
				      (const char *const[]){reporter}, ret);
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt_dynamic(db, "SELECT count(*) FROM outbound WHERE reporter = ?1");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, reporter);
	return db_step_int64(db, s, "count statuses", ret);
}

static int outbound_delete(struct db *db, int64_t id)
{
	return db_exec_int64(db, "DELETE FROM outbound WHERE id = ?1", id, "delete status");
}

int db_outbound_delete(struct db *db, int64_t id)
{
	if (db->pg)
		return db_pg_outbound_delete(db, id);
	return WRITE1(outbound_delete(db, id));
}

static int outbound_retry(struct db *db, int64_t id, int64_t next_at)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "UPDATE outbound SET attempts = attempts + 1, next_at = ?2 WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, next_at);
	return db_step_done(db, s, "retry status");
}

int db_outbound_retry(struct db *db, int64_t id, int64_t next_at)
{
	if (db->pg)
		return db_pg_outbound_retry(db, id, next_at);
	return WRITE1(outbound_retry(db, id, next_at));
}

static int outbound_forget(struct db *db, const char *reporter, const char *skey, const char *state)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "DELETE FROM outbound_last WHERE reporter = ?1 AND skey = ?2 AND state = ?3");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, reporter);
	db_bind_text(s, 2, skey);
	db_bind_text(s, 3, state);
	return db_step_done(db, s, "forget status");
}

int db_outbound_forget(struct db *db, const char *reporter, const char *skey, const char *state)
{
	if (db->pg)
		return db_pg_outbound_forget(db, reporter, skey, state);
	return WRITE1(outbound_forget(db, reporter, skey, state));
}

/* ---- answered on the loop (issue 14) ---------------------------------------------- */

/* One SQLite answer waiting for its turn: the callback that is set gets it. */
struct outbound_later {
	db_outbound_added_fn added;
	db_outbound_fn next;
	db_count_fn count;
	void *arg;
	int r;
	int64_t n; /* dropped, or the count */
	struct db_outbound row;
	char err[512];
};

static void outbound_later_free(void *x)
{
	struct outbound_later *a = x;
	db_outbound_release(&a->row);
	free(a);
}

static void outbound_later_run(void *x, int r)
{
	struct outbound_later *a = x;
	const char *err = r < 0 ? "the database was closed" : a->r < 0 ? a->err : NULL;
	if (r >= 0)
		r = a->r;
	if (a->added)
		a->added(a->arg, r, r < 0 ? 0 : a->n, err);
	else if (a->next)
		a->next(a->arg, r, r == 1 ? &a->row : NULL, err);
	else
		a->count(a->arg, r, r < 0 ? 0 : a->n, err);
	outbound_later_free(a);
}

/* Queues a's answer: r (and db_errmsg when r < 0). */
static int outbound_later(struct db *db, struct outbound_later *a, int r)
{
	a->r = r;
	if (r < 0)
		snprintf(a->err, sizeof(a->err), "%s", db_errmsg(db));
	return db_async_later(db, outbound_later_run, a, outbound_later_free);
}

int db_outbound_add_async(struct db *db, const char *reporter, const char *skey, const char *state,
			  const char *path, const char *body, int64_t now, size_t max_rows,
			  db_outbound_added_fn done, void *arg)
{
	if (db->pg)
		return db_pg_outbound_add(db, reporter, skey, state, path, body, now,
					  max_rows < 1 ? 1 : max_rows, done, arg);
	struct outbound_later *a = xcalloc(1, sizeof(*a));
	a->added = done;
	a->arg = arg;
	return outbound_later(
		db, a,
		db_outbound_add(db, reporter, skey, state, path, body, now, max_rows, &a->n));
}

int db_outbound_next_async(struct db *db, const char *reporter, db_outbound_fn done, void *arg)
{
	if (db->pg)
		return db_pg_outbound_next(db, reporter, done, arg);
	struct outbound_later *a = xcalloc(1, sizeof(*a));
	a->next = done;
	a->arg = arg;
	return outbound_later(db, a, db_outbound_next(db, reporter, &a->row));
}

int db_outbound_count_async(struct db *db, const char *reporter, db_count_fn done, void *arg)
{
	if (db->pg)
		return db_pg_outbound_count(db, reporter, done, arg);
	struct outbound_later *a = xcalloc(1, sizeof(*a));
	a->count = done;
	a->arg = arg;
	return outbound_later(db, a, db_outbound_count(db, reporter, &a->n));
}
