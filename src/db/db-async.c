/*
 * The asynchronous listings of db.h (issue 14) on either backend.  On
 * PostgreSQL they are sent on the connection (db-pg-list.c); on SQLite the
 * synchronous call runs at once and its answer waits in a queue until a
 * zero timer's callback hands it over on a later loop turn, so a caller
 * meets the same order of events on both backends and the whole suite on
 * SQLite exercises the asynchronous paths.
 */
#include "db/db-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/db-pg-list.h"
#include "db/db-pg.h"

struct db_async_done {
	struct db_async_done *next;
	db_list_fn fn;                 /* a listing's answer, or: */
	void (*run)(void *ctx, int r); /* any other read's (r: 0 or -ECANCELED) */
	void *arg;                     /* fn's, or run's ctx */
	int r;
	json_t *items;
	int64_t total;
};

struct db_async {
	uv_timer_t timer;
	struct db_async_done *head, **tail;
	bool held; /* db_async_hold: answers wait for db_async_step */
};

static void db_async_on_closed(uv_handle_t *h)
{
	free(h->data);
}

static void db_async_on_timer(uv_timer_t *t)
{
	struct db_async *a = t->data;
	struct db_async_done *d = a->head;
	a->head = NULL;
	a->tail = &a->head;
	while (d) {
		struct db_async_done *next = d->next;
		if (d->run)
			d->run(d->arg, 0);
		else
			d->fn(d->arg, d->r, d->items, d->total, d->r < 0 ? err_str(d->r) : NULL);
		free(d);
		d = next;
	}
}

/* The queue of db's answers, made on first use (db->loop set). */
static struct db_async *db_async_of(struct db *db)
{
	struct db_async *a = db->async;
	if (!a) {
		a = db->async = xcalloc(1, sizeof(*a));
		a->tail = &a->head;
		uv_timer_init(db->loop, &a->timer);
		a->timer.data = a;
	}
	return a;
}

/* Queues an answer of SQLite's for the next loop turn: fn's (items, total)
 * or run(arg, r). */
static int db_async_push(struct db *db, db_list_fn fn, void (*run)(void *, int), void *arg,
			 json_t *items, int64_t total)
{
	if (!db->loop) {
		json_decref(items);
		return db_failf(db, -EINVAL, "asynchronous reads need a loop");
	}
	struct db_async *a = db_async_of(db);
	struct db_async_done *d = xmalloc(sizeof(*d));
	*d = (struct db_async_done){
		.fn = fn, .run = run, .arg = arg, .items = items, .total = total};
	*a->tail = d;
	a->tail = &d->next;
	if (!a->held && !uv_is_active((uv_handle_t *)&a->timer))
		uv_timer_start(&a->timer, db_async_on_timer, 0, 0);
	return 0;
}

void db_async_hold(struct db *db, bool hold)
{
	if (!db->loop)
		return;
	struct db_async *a = db_async_of(db); /* made now: the first answer is held too */
	a->held = hold;
	if (hold)
		uv_timer_stop(&a->timer);
	else if (a->head)
		uv_timer_start(&a->timer, db_async_on_timer, 0, 0);
}

bool db_async_step(struct db *db)
{
	struct db_async *a = db->async;
	if (!a || !a->head)
		return false;
	db_async_on_timer(&a->timer);
	return true;
}

static int db_async_queue(struct db *db, db_list_fn fn, void *arg, json_t *items, int64_t total)
{
	return db_async_push(db, fn, NULL, arg, items, total);
}

/* x's answer for a later turn: run(x, 0) then (or -ECANCELED at
 * db_close); if it cannot wait, release(x) and the error. */
int db_async_later(struct db *db, void (*run)(void *, int), void *x, void (*release)(void *))
{
	int r = db_async_push(db, NULL, run, x, NULL, -1);
	if (r < 0)
		release(x);
	return r;
}

void db_async_close(struct db *db)
{
	struct db_async *a = db->async;
	if (!a)
		return;
	db->async = NULL;
	for (struct db_async_done *d = a->head, *next; d; d = next) {
		next = d->next;
		json_decref(d->items);
		if (d->run)
			d->run(d->arg, -ECANCELED);
		else
			d->fn(d->arg, -ECANCELED, NULL, -1, "the database was closed");
		free(d);
	}
	a->head = NULL;
	uv_close((uv_handle_t *)&a->timer, db_async_on_closed);
}

static int db_async_pg_err(struct db *db, int r, const char *err)
{
	return db_failf(db, r, "%s", err);
}

/* PostgreSQL: a log's row as SQLite's listing gives it, whose tails are
 * written first: num_lines as the tails in memory had it when the read was
 * sent (their rows are written at the turn's end, and a log may have
 * finished, its tail gone, by the time the answer comes; writing the rows
 * at every read would rewrite a followed log's tail chunk at every append). */
struct db_logs_fix {
	db_list_fn done;
	void *arg;
	size_t n;
	struct {
		int64_t logid, num_lines;
	} v[];
};

static struct db_logs_fix *db_logs_fix_new(struct db *db, db_list_fn done, void *arg)
{
	size_t n = 0;
	for (struct db_log_tail *t = db->tails; t; t = t->next)
		n++;
	struct db_logs_fix *fix = xmalloc(sizeof(*fix) + n * sizeof(fix->v[0]));
	fix->done = done;
	fix->arg = arg;
	fix->n = 0;
	for (struct db_log_tail *t = db->tails; t; t = t->next) {
		fix->v[fix->n].logid = t->logid;
		fix->v[fix->n++].num_lines = t->num_lines;
	}
	return fix;
}

static void db_logs_fixed(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct db_logs_fix *fix = arg;
	size_t i;
	json_t *it;
	if (r == 0)
		json_array_foreach(items, i, it)
		{
			json_t *id = json_object_get(it, "logid");
			for (size_t k = 0; json_is_integer(id) && k < fix->n; k++)
				if (fix->v[k].logid == json_integer_value(id) &&
				    json_object_get(it, "num_lines"))
					json_object_set_new(it, "num_lines",
							    json_integer(fix->v[k].num_lines));
		}
	fix->done(fix->arg, r, items, total, err);
	free(fix);
}

int db_list_async(struct db *db, enum db_resource res, const struct db_query *q,
		  const char *const *skip, bool want_total, db_list_fn done, void *arg)
{
	char err[256];
	if (db->pg) {
		struct db_logs_fix *fix = NULL;
		if (res == DB_LOGS) { /* the counts of the logs appended to, from memory */
			fix = db_logs_fix_new(db, done, arg);
			done = db_logs_fixed;
			arg = fix;
		}
		int r = pg_list_send(db_pg_batch(db), res, q, skip, want_total, done, arg, err,
				     sizeof(err));
		if (r < 0)
			free(fix);
		return r < 0 ? db_async_pg_err(db, r, err) : 0;
	}
	json_t *items = NULL;
	int64_t total = -1;
	int r = db_list_skip(db, res, q, skip, &items, want_total ? &total : NULL);
	return r < 0 ? r : db_async_queue(db, done, arg, items, total);
}

int db_list_ids_async(struct db *db, enum db_resource res, const struct db_query *q,
		      db_list_fn done, void *arg)
{
	char err[256];
	if (db->pg) {
		int r = pg_list_ids_send(db_pg_batch(db), res, q, done, arg, err, sizeof(err));
		return r < 0 ? db_async_pg_err(db, r, err) : 0;
	}
	int64_t *ids = NULL;
	size_t n = 0;
	int r = db_list_ids(db, res, q, &ids, &n);
	if (r < 0)
		return r;
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, json_integer(ids[i]));
	free(ids);
	return db_async_queue(db, done, arg, items, -1);
}

int db_list_rows_async(struct db *db, enum db_resource res, const int64_t *ids, size_t n,
		       const char *const *skip, db_list_fn done, void *arg)
{
	char err[256];
	if (db->pg) {
		int r = pg_list_rows_send(db_pg_batch(db), res, ids, n, skip, done, arg, err,
					  sizeof(err));
		return r < 0 ? db_async_pg_err(db, r, err) : 0;
	}
	json_t *items = NULL;
	int r = db_list_rows(db, res, ids, n, skip, &items);
	return r < 0 ? r : db_async_queue(db, done, arg, items, -1);
}

int db_list_last_builds_async(struct db *db, const struct db_query *q, const char *const *skip,
			      db_list_fn done, void *arg)
{
	char err[256];
	if (db->pg) {
		int r = pg_list_last_builds_send(db_pg_batch(db), q, skip, done, arg, err,
						 sizeof(err));
		return r < 0 ? db_async_pg_err(db, r, err) : 0;
	}
	json_t *items = NULL;
	int r = db_list_last_builds(db, q, skip, &items);
	return r < 0 ? r : db_async_queue(db, done, arg, items, -1);
}

int db_numbers_series_async(struct db *db, int64_t builderid, const char *name, bool oldest_first,
			    int64_t limit, int64_t offset, db_list_fn done, void *arg)
{
	if (db->pg)
		return db_pg_numbers_series(db, builderid, name, oldest_first, limit, offset, done,
					    arg);
	json_t *items = NULL;
	int64_t total = 0;
	int r = db_numbers_series(db, builderid, name, oldest_first, limit, offset, &items, &total);
	return r < 0 ? r : db_async_queue(db, done, arg, items, total);
}

int db_numbers_names_async(struct db *db, int64_t builderid, int64_t limit, int64_t offset,
			   db_list_fn done, void *arg)
{
	if (db->pg)
		return db_pg_numbers_names(db, builderid, limit, offset, done, arg);
	json_t *items = NULL;
	int64_t total = 0;
	int r = db_numbers_names(db, builderid, limit, offset, &items, &total);
	return r < 0 ? r : db_async_queue(db, done, arg, items, total);
}

int db_changes_cells_async(struct db *db, const int64_t *changeids, size_t n, int64_t max_rows,
			   db_list_fn done, void *arg)
{
	if (db->pg)
		return db_pg_changes_cells(db, changeids, n, max_rows, done, arg);
	json_t *items = NULL;
	bool truncated = false;
	int r = db_changes_cells(db, changeids, n, max_rows, &items, &truncated);
	if (r < 0)
		return r;
	int64_t total = (int64_t)json_array_size(items) + (truncated ? 1 : 0);
	return db_async_queue(db, done, arg, items, total);
}

int db_artifact_get_async(struct db *db, int64_t artifactid, db_list_fn done, void *arg)
{
	if (db->pg)
		return db_pg_artifacts(db, artifactid, 0, 1, done, arg);
	struct db_artifact a = {0};
	int r = db_artifact_get(db, artifactid, &a);
	if (r < 0 && r != KILN_ENOTFOUND)
		return r;
	json_t *items = json_array();
	if (r == 0) {
		json_t *o = db_artifact_json(&a);
		db_artifact_release(&a);
		if (!o) {
			json_decref(items);
			return db_failf(db, -EINVAL, "artifact text is not UTF-8");
		}
		json_array_append_new(items, o);
	}
	return db_async_queue(db, done, arg, items, -1);
}

int db_artifacts_of_build_async(struct db *db, int64_t buildid, int64_t limit, db_list_fn done,
				void *arg)
{
	if (db->pg)
		return db_pg_artifacts(db, 0, buildid, limit, done, arg);
	json_t *items = NULL;
	int r = db_artifacts_of_build(db, buildid, limit, &items);
	return r < 0 ? r : db_async_queue(db, done, arg, items, -1);
}

/* A test history read on SQLite, waiting for its turn. */
struct db_async_history {
	struct db_test_history h;
	db_test_history_fn done;
	void *arg;
};

static void db_async_history_free(void *ctx)
{
	struct db_async_history *x = ctx;
	db_test_history_release(&x->h);
	free(x);
}

static void db_async_history_run(void *ctx, int r)
{
	struct db_async_history *x = ctx;
	x->done(x->arg, r, r < 0 ? NULL : &x->h, r < 0 ? "the database was closed" : NULL);
	db_async_history_free(x);
}

int db_test_history_async(struct db *db, int64_t builderid, const char *test_name,
			  db_test_history_fn done, void *arg)
{
	if (db->pg)
		return db_pg_test_history(db, builderid, test_name, done, arg);
	struct db_async_history *x = xcalloc(1, sizeof(*x));
	int r = db_test_history(db, builderid, test_name, &x->h);
	if (r < 0) {
		free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_history_run, x, db_async_history_free);
}

/* A log read on SQLite, waiting for its turn: one of the three answers. */
struct db_async_log {
	int r;
	char err[256];
	struct db_log_info info;
	struct buf text;
	int64_t count, line, next;
	db_log_info_fn info_done;
	db_log_lines_fn lines_done;
	db_log_found_fn found_done;
	void *arg;
};

static void db_async_log_run(void *ctx, int r)
{
	struct db_async_log *x = ctx;
	if (r < 0) {
		x->r = r;
		snprintf(x->err, sizeof(x->err), "the database was closed");
	}
	const char *err = x->r < 0 && x->r != -E2BIG ? x->err : NULL;
	if (x->info_done)
		x->info_done(x->arg, x->r, x->r == 0 ? &x->info : NULL, err);
	else if (x->lines_done)
		x->lines_done(x->arg, x->r, x->r == 0 || x->r == -E2BIG ? x->text.ptr : NULL,
			      x->text.len, x->count, err);
	else
		x->found_done(x->arg, x->r, x->line, x->next, err);
	buf_release(&x->text);
	free(x);
}

/* Queues x's answer r (KILN_ENOTFOUND and -E2BIG too); other errors are
 * returned at once, x freed. */
static int db_async_log_queue(struct db *db, struct db_async_log *x, int r)
{
	if (r < 0 && r != KILN_ENOTFOUND && r != -E2BIG) {
		buf_release(&x->text);
		free(x);
		return r;
	}
	x->r = r;
	if (r < 0)
		snprintf(x->err, sizeof(x->err), "%s", db_errmsg(db));
	r = db_async_push(db, NULL, db_async_log_run, x, NULL, -1);
	if (r < 0) {
		buf_release(&x->text);
		free(x);
	}
	return r;
}

int db_log_get_async(struct db *db, int64_t logid, db_log_info_fn done, void *arg)
{
	if (db->pg)
		return db_pg_log_get(db, logid, done, arg);
	struct db_async_log *x = xcalloc(1, sizeof(*x));
	x->info_done = done;
	x->arg = arg;
	return db_async_log_queue(db, x, db_log_get(db, logid, &x->info));
}

int db_log_read_async(struct db *db, int64_t logid, int64_t first_line, int64_t max_lines,
		      size_t max_bytes, db_log_lines_fn done, void *arg)
{
	if (db->pg)
		return db_pg_log_read(db, logid, first_line, max_lines, max_bytes, done, arg);
	struct db_async_log *x = xcalloc(1, sizeof(*x));
	x->lines_done = done;
	x->arg = arg;
	buf_init(&x->text, max_bytes);
	return db_async_log_queue(
		db, x, db_log_read(db, logid, first_line, max_lines, &x->text, &x->count));
}

int db_log_search_async(struct db *db, int64_t logid, const char *needle, size_t nlen,
			unsigned flags, int64_t from, uint64_t max_scan, db_log_found_fn done,
			void *arg)
{
	if (db->pg)
		return db_pg_log_search(db, logid, needle, nlen, flags, from, max_scan, done, arg);
	struct db_async_log *x = xcalloc(1, sizeof(*x));
	x->found_done = done;
	x->arg = arg;
	x->line = x->next = -1;
	return db_async_log_queue(
		db, x,
		db_log_search(db, logid, needle, nlen, flags, from, max_scan, &x->line, &x->next));
}

int db_push_get_async(struct db *db, int64_t id, db_list_fn done, void *arg)
{
	if (db->pg)
		return db_pg_push(db, true, id, NULL, NULL, NULL, 1, done, arg);
	json_t *row = NULL;
	int r = db_push_get(db, id, &row);
	if (r < 0 && r != KILN_ENOTFOUND)
		return r;
	json_t *items = json_array();
	if (row)
		json_array_append_new(items, row);
	return db_async_queue(db, done, arg, items, -1);
}

int db_push_latest_async(struct db *db, const char *package, const char *host, const char *tag,
			 int64_t limit, db_list_fn done, void *arg)
{
	if (db->pg)
		return db_pg_push(db, false, 0, package, host, tag, limit, done, arg);
	json_t *items = NULL;
	int r = db_push_latest(db, package, host, tag, limit, &items);
	return r < 0 ? r : db_async_queue(db, done, arg, items, -1);
}

/* A token list read on SQLite, waiting for its turn. */
struct db_async_tokens {
	struct db_token *v;
	size_t n;
	db_token_list_fn done;
	void *arg;
};

static void db_async_tokens_free(void *ctx)
{
	struct db_async_tokens *x = ctx;
	free(x->v);
	free(x);
}

static void db_async_tokens_run(void *ctx, int r)
{
	struct db_async_tokens *x = ctx;
	x->done(x->arg, r, r < 0 ? NULL : x->v, r < 0 ? 0 : x->n,
		r < 0 ? "the database was closed" : NULL);
	db_async_tokens_free(x);
}

int db_token_list_async(struct db *db, db_token_list_fn done, void *arg)
{
	if (db->pg)
		return db_pg_token_list(db, done, arg);
	struct db_async_tokens *x = xcalloc(1, sizeof(*x));
	int r = db_token_list(db, &x->v, &x->n);
	if (r < 0) {
		free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_tokens_run, x, db_async_tokens_free);
}

/* A build added on SQLite, its answer waiting for its turn. */
struct db_async_build {
	int64_t buildid, number;
	db_build_added_fn done;
	void *arg;
};

static void db_async_build_run(void *ctx, int r)
{
	struct db_async_build *x = ctx;
	x->done(x->arg, r, r < 0 ? 0 : x->buildid, r < 0 ? 0 : x->number,
		r < 0 ? "the database was closed" : NULL);
	free(x);
}

int db_build_add_async(struct db *db, int64_t builderid, int64_t brid, int64_t workerid,
		       int64_t masterid, double started_at, db_build_added_fn done, void *arg)
{
	if (db->pg)
		return db_pg_build_add(db, builderid, brid, workerid, masterid, started_at, done,
				       arg, NULL);
	struct db_async_build *x = xcalloc(1, sizeof(*x));
	int r = db_build_add(db, builderid, brid, workerid, masterid, started_at, &x->buildid,
			     &x->number);
	if (r < 0) {
		free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_build_run, x, free);
}

/* An upsert by name on SQLite, its answer waiting for its turn. */
struct db_async_id {
	int64_t id;
	db_id_fn done;
	void *arg;
};

static void db_async_id_run(void *ctx, int r)
{
	struct db_async_id *x = ctx;
	x->done(x->arg, r, r < 0 ? 0 : x->id, r < 0 ? "the database was closed" : NULL);
	free(x);
}

int db_ensure_async(struct db *db, enum db_named kind, const char *name, const char *description,
		    const char *tags_json, db_id_fn done, void *arg)
{
	if (!name || !*name)
		return db_failf(db, -EINVAL, "name is empty");
	if (kind == DB_NAMED_BUILDER && tags_json) {
		json_t *t = json_loads(tags_json, 0, NULL);
		bool ok = t && json_is_array(t);
		json_decref(t);
		if (!ok)
			return db_failf(db, -EINVAL, "builder '%s': tags are not a JSON array",
					name);
	}
	if (db->pg)
		return db_pg_ensure(db, kind, name, description, tags_json, done, arg);
	struct db_async_id *x = xcalloc(1, sizeof(*x));
	int r = kind == DB_NAMED_MASTER ? db_master_register(db, name, &x->id)
		: kind == DB_NAMED_BUILDER
			? db_builder_ensure(db, name, description, tags_json, &x->id)
			: db_worker_ensure(db, name, &x->id);
	if (r < 0) {
		free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_id_run, x, free);
}

/* A push count read on SQLite, its answer waiting for its turn (as an
 * upsert's id). */
int db_push_count_async(struct db *db, int64_t tokenid, const char *package, db_id_fn done,
			void *arg)
{
	if (db->pg)
		return db_pg_push_count(db, tokenid, package, done, arg);
	struct db_async_id *x = xcalloc(1, sizeof(*x));
	int r = db_push_count(db, tokenid, package, &x->id);
	if (r < 0) {
		free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_id_run, x, free);
}

/* A claim on SQLite, its answer waiting for its turn. */
struct db_async_claim {
	struct db_request req;
	bool have;
	db_request_fn done;
	void *arg;
};

static void db_async_claim_run(void *ctx, int r)
{
	struct db_async_claim *x = ctx;
	x->done(x->arg, r, r == 0 && x->have ? &x->req : NULL,
		r < 0 ? "the database was closed" : NULL);
	free(x);
}

int db_request_next_async(struct db *db, int64_t builderid, db_request_fn done, void *arg)
{
	if (db->pg)
		return db_pg_request_next(db, builderid, done, arg);
	struct db_async_claim *x = xcalloc(1, sizeof(*x));
	int r = db_request_next(db, builderid, &x->req);
	if (r < 0) {
		free(x);
		return r;
	}
	x->have = r == 1;
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_claim_run, x, free);
}

int db_request_claim_next_async(struct db *db, int64_t builderid, int64_t masterid, double when,
				db_request_fn done, void *arg)
{
	if (db->pg)
		return db_pg_request_claim_next(db, builderid, masterid, when, done, arg);
	struct db_async_claim *x = xcalloc(1, sizeof(*x));
	int r = db_request_next(db, builderid, &x->req);
	if (r == 1 && (r = db_request_claim(db, x->req.buildrequestid, masterid, when)) == 0) {
		x->have = true;
		x->req.claimed = true;
	}
	if (r < 0) {
		free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_claim_run, x, free);
}

int db_request_claim_id_async(struct db *db, int64_t brid, int64_t masterid, double when,
			      db_request_fn done, void *arg)
{
	if (db->pg)
		return db_pg_request_claim_id(db, brid, masterid, when, done, arg);
	struct db_async_claim *x = xcalloc(1, sizeof(*x));
	int r = db_request_claim(db, brid, masterid, when);
	if (r == 0 && (r = db_request_get(db, brid, &x->req)) == 0)
		x->have = true;
	if (r == -EBUSY || r == KILN_ENOTFOUND)
		r = 0; /* taken or gone first: none */
	if (r < 0) {
		free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_claim_run, x, free);
}

/* The head of a builder's queue read on SQLite, waiting for its turn. */
struct db_async_head {
	struct db_request_head *v;
	struct db_buildset_info *bi; /* per request; reason borrowed from it */
	bool *have_bi;
	size_t n;
	db_request_head_fn done;
	void *arg;
};

static void db_async_head_free(void *ctx)
{
	struct db_async_head *x = ctx;
	for (size_t i = 0; i < x->n; i++) {
		json_decref(x->v[i].properties);
		if (x->have_bi[i])
			db_buildset_info_release(&x->bi[i]);
	}
	free(x->v);
	free(x->bi);
	free(x->have_bi);
	free(x);
}

static void db_async_head_run(void *ctx, int r)
{
	struct db_async_head *x = ctx;
	x->done(x->arg, r, r < 0 ? NULL : x->v, r < 0 ? 0 : x->n,
		r < 0 ? "the database was closed" : NULL);
	db_async_head_free(x);
}

int db_request_queue_head_async(struct db *db, int64_t builderid, size_t max,
				db_request_head_fn done, void *arg)
{
	if (db->pg)
		return db_pg_request_queue_head(db, builderid, max, done, arg);
	struct db_request *q = xcalloc(max + 1, sizeof(*q));
	size_t n = 0;
	int r = db_request_queued(db, builderid, max, q, &n);
	if (r < 0) {
		free(q);
		return r;
	}
	struct db_async_head *x = xcalloc(1, sizeof(*x));
	x->v = xcalloc(n + 1, sizeof(*x->v));
	x->bi = xcalloc(n + 1, sizeof(*x->bi));
	x->have_bi = xcalloc(n + 1, sizeof(*x->have_bi));
	x->n = n;
	for (size_t i = 0; i < n; i++) {
		x->v[i].req = q[i];
		/* a buildset that cannot be read is handed without reason and properties */
		if (db_buildset_get(db, q[i].buildsetid, &x->bi[i]) >= 0) {
			x->have_bi[i] = true;
			x->v[i].reason = x->bi[i].reason;
		}
		if (db_buildset_properties(db, q[i].buildsetid, &x->v[i].properties) < 0)
			x->v[i].properties = NULL;
	}
	free(q);
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_head_run, x, db_async_head_free);
}

/* Queue summaries read on SQLite, waiting for their turn. */
struct db_async_sums {
	int64_t *ids;
	int *prio;
	double *oldest;
	size_t n;
	db_summaries_fn done;
	void *arg;
};

static void db_async_sums_free(void *ctx)
{
	struct db_async_sums *x = ctx;
	free(x->ids);
	free(x->prio);
	free(x->oldest);
	free(x);
}

static void db_async_sums_run(void *ctx, int r)
{
	struct db_async_sums *x = ctx;
	x->done(x->arg, r, r < 0 ? NULL : x->ids, r < 0 ? NULL : x->prio, r < 0 ? NULL : x->oldest,
		r < 0 ? 0 : x->n, r < 0 ? "the database was closed" : NULL);
	db_async_sums_free(x);
}

int db_request_summaries_async(struct db *db, const int64_t *ids, size_t n, db_summaries_fn done,
			       void *arg)
{
	if (db->pg)
		return db_pg_request_summaries(db, ids, n, done, arg);
	struct db_async_sums *x = xcalloc(1, sizeof(*x));
	x->ids = xcalloc(n + 1, sizeof(*x->ids));
	x->prio = xcalloc(n + 1, sizeof(*x->prio));
	x->oldest = xcalloc(n + 1, sizeof(*x->oldest));
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		int prio = 0;
		double oldest = 0;
		r = db_request_pending_summary(db, ids[i], &prio, &oldest);
		if (r == 1) {
			x->ids[x->n] = ids[i];
			x->prio[x->n] = prio;
			x->oldest[x->n++] = oldest;
		}
	}
	if (r < 0) {
		db_async_sums_free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_sums_run, x, db_async_sums_free);
}

/* Request lines read or claimed on SQLite, their answer waiting for its turn. */
struct db_async_lines {
	struct db_request_line *v; /* strings owned */
	size_t n;
	db_request_lines_fn done;
	void *arg;
};

static void db_async_lines_free(void *ctx)
{
	struct db_async_lines *x = ctx;
	db_request_lines_free(x->v, x->n);
	free(x);
}

static void db_async_lines_run(void *ctx, int r)
{
	struct db_async_lines *x = ctx;
	x->done(x->arg, r, r < 0 ? NULL : x->v, r < 0 ? 0 : x->n,
		r < 0 ? "the database was closed" : NULL);
	db_async_lines_free(x);
}

/* x (read with r) answered on a later turn; freed now if r < 0. */
static int db_async_lines_answer(struct db *db, struct db_async_lines *x, int r,
				 db_request_lines_fn done, void *arg)
{
	if (r < 0) {
		db_async_lines_free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_lines_run, x, db_async_lines_free);
}

int db_request_compatible_async(struct db *db, int64_t brid, size_t max, db_request_lines_fn done,
				void *arg)
{
	if (db->pg)
		return db_pg_request_compatible(db, brid, max, done, arg);
	struct db_async_lines *x = xcalloc(1, sizeof(*x));
	int r = db_request_compatible_lines(db, brid, max, &x->v, &x->n);
	return db_async_lines_answer(db, x, r, done, arg);
}

int db_request_superseded_async(struct db *db, int64_t builderid, int64_t bsid,
				db_request_lines_fn done, void *arg)
{
	if (db->pg)
		return db_pg_request_superseded(db, builderid, bsid, done, arg);
	struct db_async_lines *x = xcalloc(1, sizeof(*x));
	int r = db_request_superseded_lines(db, builderid, bsid, &x->v, &x->n);
	return db_async_lines_answer(db, x, r, done, arg);
}

int db_request_claim_many_async(struct db *db, const int64_t *ids, size_t n, int64_t masterid,
				double when, db_request_lines_fn done, void *arg)
{
	if (db->pg)
		return db_pg_request_claim_many(db, ids, n, masterid, when, done, arg);
	struct db_async_lines *x = xcalloc(1, sizeof(*x));
	x->v = xcalloc(n + 1, sizeof(*x->v));
	for (size_t i = 0; i < n; i++) {
		struct db_request q;
		int r = db_request_get(db, ids[i], &q);
		if (r == 0 && !q.complete && !q.claimed)
			r = db_request_claim(db, ids[i], masterid, when);
		else if (r == 0 || r == KILN_ENOTFOUND)
			continue;
		if (r < 0)
			return db_async_lines_answer(db, x, r, done, arg);
		x->v[x->n++] = (struct db_request_line){.buildrequestid = ids[i],
							.buildsetid = q.buildsetid};
	}
	return db_async_lines_answer(db, x, 0, done, arg);
}

/* The ETA samples read on SQLite, their answer waiting for its turn. */
struct db_async_eta {
	double durations[KILN_ETA_SAMPLES];
	struct db_eta_samples s;
	struct db_step_duration *steps; /* owned */
	db_eta_fn done;
	void *arg;
};

static void db_async_eta_free(void *ctx)
{
	struct db_async_eta *x = ctx;
	db_step_durations_free(x->steps, x->s.nsteps);
	free(x);
}

static void db_async_eta_run(void *ctx, int r)
{
	struct db_async_eta *x = ctx;
	x->done(x->arg, r, r < 0 ? NULL : &x->s, r < 0 ? "the database was closed" : NULL);
	db_async_eta_free(x);
}

int db_eta_samples_async(struct db *db, int64_t builderid, db_eta_fn done, void *arg)
{
	if (db->pg)
		return db_pg_eta_samples(db, builderid, done, arg);
	struct db_async_eta *x = xcalloc(1, sizeof(*x));
	int64_t ids[KILN_ETA_SAMPLES];
	size_t n = 0, alloc = 0;
	int r = db_builds_recent_success(db, builderid, KILN_ETA_SAMPLES, ids, x->durations,
					 &x->s.nbuilds);
	for (size_t i = 0; r >= 0 && i < x->s.nbuilds; i++) {
		struct db_step_duration *d = NULL;
		size_t nd = 0;
		r = db_steps_durations(db, ids[i], KILN_ETA_MAX_STEPS, &d, &nd);
		if (r < 0)
			break;
		ARRAY_GROW(x->steps, n + nd + 1, alloc);
		if (nd)
			memcpy(x->steps + n, d, nd * sizeof(*d));
		n += nd;
		x->s.nsteps = n;
		free(d); /* the names moved to x->steps */
	}
	if (r < 0) {
		db_async_eta_free(x);
		return r;
	}
	x->s.durations = x->durations;
	x->s.steps = x->steps;
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_eta_run, x, db_async_eta_free);
}

/* Dead masters reaped on SQLite, the answer waiting for its turn. */
struct db_async_reap {
	struct db_master_dead *v; /* names owned */
	size_t n;
	db_masters_dead_fn done;
	void *arg;
};

static void db_async_reap_free(void *ctx)
{
	struct db_async_reap *x = ctx;
	for (size_t i = 0; i < x->n; i++)
		free((char *)x->v[i].name);
	free(x->v);
	free(x);
}

static void db_async_reap_run(void *ctx, int r)
{
	struct db_async_reap *x = ctx;
	x->done(x->arg, r, r < 0 ? NULL : x->v, r < 0 ? 0 : x->n,
		r < 0 ? "the database was closed" : NULL);
	db_async_reap_free(x);
}

int db_masters_reap_async(struct db *db, int64_t self, double older_than, double now,
			  db_masters_dead_fn done, void *arg)
{
	if (db->pg)
		return db_pg_masters_reap(db, self, older_than, now, done, arg);
	struct db_async_reap *x = xcalloc(1, sizeof(*x));
	int r = db_masters_reap(db, self, older_than, now, &x->v, &x->n);
	if (r < 0) {
		free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_reap_run, x, db_async_reap_free);
}

/* A request completed on SQLite, its answer waiting for its turn. */
struct db_async_complete {
	int r;
	int64_t bsid_done;
	int bs_results;
	db_bsid_fn done;
	void *arg;
};

static void db_async_complete_run(void *ctx, int r)
{
	struct db_async_complete *x = ctx;
	if (r < 0)
		x->r = r;
	x->done(x->arg, x->r, x->r < 0 ? 0 : x->bsid_done, x->r < 0 ? RESULTS_NONE : x->bs_results,
		x->r == -ECANCELED       ? "the database was closed"
		: x->r == KILN_ENOTFOUND ? "no such build request"
		: x->r < 0               ? "the request was complete already"
					 : NULL);
	free(x);
}

int db_request_complete_async(struct db *db, int64_t brid, int results, double when,
			      db_bsid_fn done, void *arg)
{
	if (db->pg)
		return db_pg_request_complete(db, brid, results, when, done, arg);
	struct db_async_complete *x = xcalloc(1, sizeof(*x));
	int r = db_request_complete_results(db, brid, results, when, &x->bsid_done, &x->bs_results);
	if (r < 0 && r != KILN_ESTATE && r != KILN_ENOTFOUND) {
		free(x);
		return r;
	}
	x->r = r;
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_complete_run, x, free);
}

void db_build_inputs_release(struct db_build_inputs *in)
{
	db_buildset_info_release(&in->bs);
	free(in->ss);
	json_decref(in->props);
	json_decref(in->blamelist);
	*in = (struct db_build_inputs){0};
}

/* A build's inputs read on SQLite, their answer waiting for its turn. */
struct db_async_inputs {
	struct db_build_inputs in;
	int r; /* 0 or KILN_ENOTFOUND */
	db_build_inputs_fn done;
	void *arg;
};

static void db_async_inputs_free(void *ctx)
{
	struct db_async_inputs *x = ctx;
	db_build_inputs_release(&x->in);
	free(x);
}

static void db_async_inputs_run(void *ctx, int r)
{
	struct db_async_inputs *x = ctx;
	if (r < 0)
		x->done(x->arg, r, NULL, "the database was closed");
	else if (x->r < 0)
		x->done(x->arg, x->r, NULL, "no such buildset");
	else
		x->done(x->arg, 0, &x->in, NULL);
	db_async_inputs_free(x);
}

int db_build_inputs_async(struct db *db, int64_t bsid, db_build_inputs_fn done, void *arg)
{
	if (db->pg)
		return db_pg_build_inputs(db, bsid, done, arg);
	struct db_async_inputs *x = xcalloc(1, sizeof(*x));
	int r = db_buildset_get(db, bsid, &x->in.bs);
	if (r == 0)
		r = db_buildset_sourcestamps(db, bsid, &x->in.ss, &x->in.nss);
	if (r == 0)
		r = db_buildset_properties(db, bsid, &x->in.props);
	if (r == 0)
		r = db_buildset_blamelist(db, bsid, &x->in.blamelist);
	if (r == KILN_ENOTFOUND) {
		db_build_inputs_release(&x->in);
		x->r = r;
	} else if (r < 0) {
		db_async_inputs_free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_inputs_run, x, db_async_inputs_free);
}

/* The builders with queued requests, read on SQLite, their answer waiting
 * for its turn. */
struct db_async_ids {
	int64_t *ids;
	size_t n;
	db_ids_fn done;
	void *arg;
};

static void db_async_ids_free(void *ctx)
{
	struct db_async_ids *x = ctx;
	free(x->ids);
	free(x);
}

static void db_async_ids_run(void *ctx, int r)
{
	struct db_async_ids *x = ctx;
	x->done(x->arg, r, r < 0 ? NULL : x->ids, r < 0 ? 0 : x->n,
		r < 0 ? "the database was closed" : NULL);
	db_async_ids_free(x);
}

int db_request_pending_builders_async(struct db *db, db_ids_fn done, void *arg)
{
	if (db->pg)
		return db_pg_request_pending_builders(db, done, arg);
	struct db_async_ids *x = xcalloc(1, sizeof(*x));
	int r = db_request_pending_builders(db, &x->ids, &x->n);
	if (r < 0) {
		free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_ids_run, x, db_async_ids_free);
}

/* The queued counts per builder, read on SQLite, waiting for their turn. */
struct db_async_counts {
	int64_t *ids, *counts;
	size_t n;
	db_counts_fn done;
	void *arg;
};

static void db_async_counts_free(void *ctx)
{
	struct db_async_counts *x = ctx;
	free(x->ids);
	free(x->counts);
	free(x);
}

static void db_async_counts_run(void *ctx, int r)
{
	struct db_async_counts *x = ctx;
	x->done(x->arg, r, r < 0 ? NULL : x->ids, r < 0 ? NULL : x->counts, r < 0 ? 0 : x->n,
		r < 0 ? "the database was closed" : NULL);
	db_async_counts_free(x);
}

int db_request_queued_counts_async(struct db *db, int64_t cap, db_counts_fn done, void *arg)
{
	if (db->pg)
		return db_pg_request_queued_counts(db, cap, done, arg);
	struct db_async_counts *x = xcalloc(1, sizeof(*x));
	int r = db_request_queued_counts(db, cap, &x->ids, &x->counts, &x->n);
	if (r < 0) {
		free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_counts_run, x, db_async_counts_free);
}

/* A build's interested users read on SQLite, their answer waiting for its
 * turn (KILN_ENOTFOUND too). */
struct db_async_users {
	int64_t *uids;
	size_t n;
	int r;
	char err[256];
	db_ids_fn done;
	void *arg;
};

static void db_async_users_free(void *ctx)
{
	struct db_async_users *x = ctx;
	free(x->uids);
	free(x);
}

static void db_async_users_run(void *ctx, int r)
{
	struct db_async_users *x = ctx;
	if (r < 0)
		x->done(x->arg, r, NULL, 0, "the database was closed");
	else if (x->r < 0)
		x->done(x->arg, x->r, NULL, 0, x->err);
	else
		x->done(x->arg, 0, x->uids, x->n, NULL);
	db_async_users_free(x);
}

int db_build_interested_users_async(struct db *db, int64_t buildid, const char *const *extras,
				    size_t nextras, db_ids_fn done, void *arg)
{
	if (db->pg)
		return db_pg_interested_users(db, buildid, extras, nextras, done, arg);
	struct db_async_users *x = xcalloc(1, sizeof(*x));
	int r = db_build_interested_users(db, buildid, extras, nextras, &x->uids, &x->n);
	if (r < 0 && r != KILN_ENOTFOUND) {
		db_async_users_free(x);
		return r;
	}
	x->r = r;
	if (r < 0)
		snprintf(x->err, sizeof(x->err), "%s", db_errmsg(db));
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_users_run, x, db_async_users_free);
}

/* --- several masters (db-pg-cluster.c on PostgreSQL) --------------------------------------- */

/* A lease on SQLite: one master owns the file, so it is always held. */
struct db_async_lease {
	db_lease_fn done;
	void *arg;
};

static void db_async_lease_run(void *ctx, int r)
{
	struct db_async_lease *x = ctx;
	x->done(x->arg, r, r == 0, r < 0 ? "the database was closed" : NULL);
	free(x);
}

int db_lease_async(struct db *db, const char *name, int64_t masterid, double ttl, db_lease_fn done,
		   void *arg)
{
	if (db->pg)
		return db_pg_lease(db, name, masterid, ttl, done, arg);
	struct db_async_lease *x = xmalloc(sizeof(*x));
	*x = (struct db_async_lease){.done = done, .arg = arg};
	return db_async_later(db, db_async_lease_run, x, free);
}

int db_lease_release(struct db *db, const char *name, int64_t masterid)
{
	return db->pg ? db_pg_lease_release(db, name, masterid) : 0;
}

/* An object state read on SQLite, its answer waiting for its turn. */
struct db_async_state {
	int r;
	json_t *value; /* owned */
	char err[sizeof(((struct db *)0)->errmsg)];
	db_state_fn done;
	void *arg;
};

static void db_async_state_free(void *ctx)
{
	struct db_async_state *x = ctx;
	json_decref(x->value);
	free(x);
}

static void db_async_state_run(void *ctx, int r)
{
	struct db_async_state *x = ctx;
	if (r < 0)
		x->done(x->arg, r, NULL, "the database was closed");
	else
		x->done(x->arg, x->r, x->value, x->r < 0 ? x->err : NULL);
	db_async_state_free(x);
}

int db_state_get_async(struct db *db, const char *name, db_state_fn done, void *arg)
{
	if (db->pg)
		return db_pg_state_get_async(db, name, done, arg);
	struct db_async_state *x = xcalloc(1, sizeof(*x));
	x->r = db_state_get(db, name, &x->value);
	if (x->r < 0)
		snprintf(x->err, sizeof(x->err), "%s", db->errmsg);
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_state_run, x, db_async_state_free);
}

int db_notify(struct db *db, const char *line)
{
	return db->pg ? db_pg_notify(db, line) : 0;
}

int db_listen(struct db *db, db_notify_fn fn, void *arg)
{
	return db->pg ? db_pg_listen(db, fn, arg) : 0;
}

uint64_t db_notify_dropped(const struct db *db)
{
	return db->pg ? db_pg_notify_state((struct db *)db)->dropped : 0;
}

/* A buildset's patches read on SQLite, their answer waiting for its turn. */
struct db_async_patches {
	struct db_patch_data *v; /* owned until handed over */
	size_t n;
	db_patches_fn done;
	void *arg;
};

static void db_async_patches_free(void *ctx)
{
	struct db_async_patches *x = ctx;
	for (size_t i = 0; i < x->n; i++)
		db_patch_data_release(&x->v[i]);
	free(x->v);
	free(x);
}

static void db_async_patches_run(void *ctx, int r)
{
	struct db_async_patches *x = ctx;
	if (r < 0) {
		x->done(x->arg, r, NULL, 0, "the database was closed");
		db_async_patches_free(x);
		return;
	}
	x->done(x->arg, 0, x->v, x->n, NULL); /* v is the callback's now */
	free(x);
}

int db_buildset_patches_async(struct db *db, int64_t bsid, db_patches_fn done, void *arg)
{
	if (db->pg)
		return db_pg_buildset_patches(db, bsid, done, arg);
	struct db_async_patches *x = xcalloc(1, sizeof(*x));
	int r = db_buildset_patches(db, bsid, &x->v, &x->n);
	if (r < 0) {
		free(x);
		return r;
	}
	x->done = done;
	x->arg = arg;
	return db_async_later(db, db_async_patches_run, x, db_async_patches_free);
}
