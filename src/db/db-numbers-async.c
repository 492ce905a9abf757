/*
 * The numbers' reads answered on the loop (db.h "numbers over time", issue
 * 14): a number's previous value (regression rules), a build's times with
 * its blamelist (a regression's event) and its steps' durations.  On
 * PostgreSQL db-pg-numbers.c sends them; on SQLite the synchronous call
 * runs at once and its answer waits for a later loop turn.
 */
#include "db/db-pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/xalloc.h"

/* One SQLite answer waiting for its turn. */
struct dna {
	db_number_prev_fn prev;
	db_build_times_fn times;
	db_step_durations_fn steps;
	void *arg;
	int r;
	char err[512];
	double value;
	int64_t old_buildid;
	struct db_build_times bt;
	json_t *blamelist;
	struct db_step_duration *d;
	size_t n;
};

static void dna_free(void *x)
{
	struct dna *a = x;
	json_decref(a->blamelist);
	db_step_durations_free(a->d, a->n);
	free(a);
}

static void dna_run(void *x, int r)
{
	struct dna *a = x;
	const char *err = r < 0 ? "the database was closed" : a->r < 0 ? a->err : NULL;
	if (r >= 0)
		r = a->r;
	if (a->prev)
		a->prev(a->arg, r, r == 1 ? a->value : 0, r == 1 ? a->old_buildid : 0, err);
	else if (a->times)
		a->times(a->arg, r, r == 0 ? &a->bt : NULL, r == 0 ? a->blamelist : NULL, err);
	else
		a->steps(a->arg, r, r == 0 ? a->d : NULL, r == 0 ? a->n : 0, err);
	dna_free(a);
}

static int dna_later(struct db *db, struct dna *a, int r)
{
	a->r = r;
	if (r < 0)
		snprintf(a->err, sizeof(a->err), "%s", db_errmsg(db));
	return db_async_later(db, dna_run, a, dna_free);
}

int db_number_previous_async(struct db *db, int64_t builderid, const char *name, int64_t buildid,
			     db_number_prev_fn done, void *arg)
{
	if (db->pg)
		return db_pg_number_previous(db, builderid, name, buildid, done, arg);
	struct dna *a = xcalloc(1, sizeof(*a));
	a->prev = done;
	a->arg = arg;
	return dna_later(
		db, a,
		db_number_previous(db, builderid, name, buildid, &a->value, &a->old_buildid));
}

int db_build_times_async(struct db *db, int64_t buildid, bool blamelist, db_build_times_fn done,
			 void *arg)
{
	if (db->pg)
		return db_pg_build_times(db, buildid, blamelist, done, arg);
	struct dna *a = xcalloc(1, sizeof(*a));
	a->times = done;
	a->arg = arg;
	int r = db_build_times(db, buildid, &a->bt);
	if (r >= 0 && blamelist)
		r = db_build_blamelist(db, buildid, &a->blamelist);
	return dna_later(db, a, r);
}

int db_steps_durations_async(struct db *db, int64_t buildid, size_t max, db_step_durations_fn done,
			     void *arg)
{
	if (db->pg)
		return db_pg_steps_durations(db, buildid, max, done, arg);
	struct dna *a = xcalloc(1, sizeof(*a));
	a->steps = done;
	a->arg = arg;
	return dna_later(db, a, db_steps_durations(db, buildid, max, &a->d, &a->n));
}
