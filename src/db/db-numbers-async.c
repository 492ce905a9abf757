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

/* Queue positions and running builds read on SQLite, waiting for their turn. */
struct dqa {
	db_queue_info_fn done;
	void *arg;
	int64_t *brids, *bids, *pos, *rbids;
	double *starts;
	size_t nreq, nrun;
};

static void dqa_free(void *x)
{
	struct dqa *a = x;
	free(a->brids);
	free(a->bids);
	free(a->pos);
	free(a->rbids);
	free(a->starts);
	free(a);
}

static void dqa_run(void *x, int r)
{
	struct dqa *a = x;
	struct db_queue_info qi = {.brids = a->brids,
				   .builderids = a->bids,
				   .pos = a->pos,
				   .nreq = a->nreq,
				   .run_builderids = a->rbids,
				   .run_starts = a->starts,
				   .nrun = a->nrun};
	a->done(a->arg, r, r < 0 ? NULL : &qi, r < 0 ? "the database was closed" : NULL);
	dqa_free(a);
}

int db_requests_queue_info_async(struct db *db, const int64_t *brids, size_t n, size_t max,
				 db_queue_info_fn done, void *arg)
{
	if (db->pg)
		return db_pg_requests_queue_info(db, brids, n, max, done, arg);
	struct dqa *a = xcalloc(1, sizeof(*a));
	a->done = done;
	a->arg = arg;
	a->brids = xcalloc(n + 1, sizeof(*a->brids));
	a->bids = xcalloc(n + 1, sizeof(*a->bids));
	a->pos = xcalloc(n + 1, sizeof(*a->pos));
	int r = 0;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		int64_t bid = 0, pos = 0;
		r = db_request_queue_position(db, brids[i], &bid, &pos);
		if (r == 1) {
			a->brids[a->nreq] = brids[i];
			a->bids[a->nreq] = bid;
			a->pos[a->nreq++] = pos;
		}
	}
	/* each builder once, in ascending order, with its running builds */
	double *starts = xcalloc(max + 1, sizeof(*starts));
	int64_t last = 0;
	for (;;) {
		int64_t next = 0;
		for (size_t i = 0; i < a->nreq; i++)
			if (a->bids[i] > last && (!next || a->bids[i] < next))
				next = a->bids[i];
		if (!next || r < 0)
			break;
		last = next;
		size_t k = 0;
		r = db_builds_running_starts(db, next, max, starts, &k);
		if (r < 0 || !k)
			continue;
		a->rbids = xreallocarray(a->rbids, a->nrun + k, sizeof(*a->rbids));
		a->starts = xreallocarray(a->starts, a->nrun + k, sizeof(*a->starts));
		for (size_t j = 0; j < k; j++) {
			a->rbids[a->nrun] = next;
			a->starts[a->nrun++] = starts[j];
		}
	}
	free(starts);
	if (r < 0) {
		dqa_free(a);
		return r;
	}
	return db_async_later(db, dqa_run, a, dqa_free);
}
