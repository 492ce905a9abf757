/*
 * The retention's calls answered on the loop (db.h, issue 14): a batch of
 * the purge and the artifacts' usage, oldest rows and deletion.  On
 * PostgreSQL db-pg-retention.c sends them; on SQLite the synchronous call
 * runs at once and its answer waits for a later loop turn
 * (db_async_later), so the runners meet the same order of events on both.
 */
#include "db/db-pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

/* One SQLite answer waiting for its turn: the callback that is set gets
 * it. */
struct dra {
	db_retention_fn batch;
	db_artifacts_usage_fn usage;
	db_artifacts_oldest_fn oldest;
	db_artifacts_deleted_fn deleted;
	void *arg;
	int r;
	char err[512];
	struct db_retention_step s; /* the batch's; its files the deletion's too */
	int64_t bytes, max_id, keep_from;
	struct db_artifact_age *rows; /* owned */
	size_t nrows;
};

static void dra_free(void *x)
{
	struct dra *a = x;
	db_artifact_files_free(a->s.files, a->s.nfiles);
	free(a->rows);
	free(a);
}

static void dra_run(void *x, int r)
{
	struct dra *a = x;
	const char *err = r < 0 ? "the database was closed" : a->r < 0 ? a->err : NULL;
	if (r >= 0)
		r = a->r;
	if (a->batch) {
		a->batch(a->arg, r, r < 0 ? NULL : &a->s, err);
	} else if (a->usage) {
		a->usage(a->arg, r, a->bytes, a->max_id, a->keep_from, err);
	} else if (a->oldest) {
		a->oldest(a->arg, r, a->rows, r < 0 ? 0 : a->nrows, err);
	} else {
		a->deleted(a->arg, r, r < 0 ? NULL : a->s.files, r < 0 ? 0 : a->s.nfiles, err);
		if (r >= 0) { /* the callee's */
			a->s.files = NULL;
			a->s.nfiles = 0;
		}
	}
	dra_free(a);
}

/* Queues a's answer: r (and db_errmsg when r < 0). */
static int dra_later(struct db *db, struct dra *a, int r)
{
	a->r = r;
	if (r < 0)
		snprintf(a->err, sizeof(a->err), "%s", db_errmsg(db));
	return db_async_later(db, dra_run, a, dra_free);
}

static struct dra *dra_new(void *arg)
{
	struct dra *a = xcalloc(1, sizeof(*a));
	a->arg = arg;
	return a;
}

int db_retention_batch_async(struct db *db, const struct db_retention_policy *p,
			     const struct db_retention_pass *st, size_t max_rows, double budget_ms,
			     db_retention_fn done, void *arg)
{
	if (db->pg)
		return db_pg_retention_batch(db, p, st, max_rows, done, arg);
	struct dra *a = dra_new(arg);
	a->batch = done;
	a->s.st = *st;
	int r = db_retention_batch(db, p, &a->s.st, max_rows, budget_ms, &a->s.counts, &a->s.files,
				   &a->s.nfiles);
	return dra_later(db, a, r);
}

int db_artifacts_usage_async(struct db *db, int64_t after_id, int64_t keep_builds,
			     db_artifacts_usage_fn done, void *arg)
{
	if (db->pg)
		return db_pg_artifacts_usage(db, after_id, keep_builds, done, arg);
	struct dra *a = dra_new(arg);
	a->usage = done;
	return dra_later(db, a,
			 db_artifacts_usage(db, after_id, keep_builds, &a->bytes, &a->max_id,
					    &a->keep_from));
}

int db_artifacts_oldest_async(struct db *db, int64_t after_id, size_t max,
			      db_artifacts_oldest_fn done, void *arg)
{
	if (max > KILN_RETENTION_BATCH)
		max = KILN_RETENTION_BATCH;
	if (db->pg)
		return db_pg_artifacts_oldest(db, after_id, max, done, arg);
	struct dra *a = dra_new(arg);
	a->oldest = done;
	a->rows = xcalloc(max ? max : 1, sizeof(*a->rows));
	return dra_later(db, a, db_artifacts_oldest(db, after_id, max, a->rows, &a->nrows));
}

int db_artifacts_delete_async(struct db *db, const int64_t *ids, size_t n,
			      db_artifacts_deleted_fn done, void *arg)
{
	if (db->pg)
		return db_pg_artifacts_delete(db, ids, n, done, arg);
	struct dra *a = dra_new(arg);
	a->deleted = done;
	return dra_later(db, a, db_artifacts_delete(db, ids, n, &a->s.files, &a->s.nfiles));
}
