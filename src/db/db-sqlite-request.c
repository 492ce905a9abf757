/*
 * The SQLite side of build requests: the next one of a builder (one seek
 * into the buildrequests_pending index), get, claim, unclaim, complete
 * (completing the buildset with its last request), pending builders.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>

#include "common/err.h"
#include "common/xalloc.h"

#define REQUEST_COLS                                                                               \
	"id, buildsetid, builderid, priority, submitted_at, claimed_at IS NOT NULL, complete, "    \
	"results"

static void sqlite_request_fill(sqlite3_stmt *s, struct db_request *ret)
{
	*ret = (struct db_request){
		.buildrequestid = sqlite3_column_int64(s, 0),
		.buildsetid = sqlite3_column_int64(s, 1),
		.builderid = sqlite3_column_int64(s, 2),
		.priority = sqlite3_column_int(s, 3),
		.submitted_at = sqlite3_column_double(s, 4),
		.claimed = sqlite3_column_int(s, 5) != 0,
		.complete = sqlite3_column_int(s, 6) != 0,
		.results = sqlite3_column_int(s, 7),
	};
}

int db_request_next(struct db *db, int64_t builderid, struct db_request *ret)
{
	/* The WHERE terms match the partial index buildrequests_pending exactly,
	 * and its column order is the ORDER BY: one seek, no sort. */
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BR_NEXT,
		"SELECT " REQUEST_COLS " FROM buildrequests INDEXED BY buildrequests_pending "
		"WHERE builderid = ?1 AND complete = 0 AND claimed_at IS NULL "
		"ORDER BY priority DESC, submitted_at, id LIMIT 1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	int r = db_step_row(db, s, "next request");
	if (r == 1)
		sqlite_request_fill(s, ret);
	return r;
}

int db_request_get(struct db *db, int64_t brid, struct db_request *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_BR_GET, "SELECT " REQUEST_COLS " FROM buildrequests WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, brid);
	int r = db_step_row(db, s, "get request");
	if (r == 0)
		return db_failf(db, KILN_ENOTFOUND, "no build request %lld", (long long)brid);
	if (r == 1)
		sqlite_request_fill(s, ret);
	return r < 0 ? r : 0;
}

static int sqlite_request_claim(struct db *db, int64_t brid, int64_t masterid, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_BR_CLAIM,
			"UPDATE buildrequests SET claimed_at = ?3, claimed_by_masterid = ?2 "
			"WHERE id = ?1 AND complete = 0 AND claimed_at IS NULL");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, brid);
	db_bind_id(s, 2, masterid);
	sqlite3_bind_double(s, 3, when);
	int r = db_step_done(db, s, "claim request");
	if (r < 0)
		return r;
	if (db_changes(db) == 0) {
		sqlite3_reset(s);
		struct db_request q;
		r = db_request_get(db, brid, &q);
		if (r < 0)
			return r;
		return db_failf(db, -EBUSY, "build request %lld is already %s", (long long)brid,
				q.complete ? "complete" : "claimed");
	}
	return 0;
}

int db_request_claim(struct db *db, int64_t brid, int64_t masterid, double when)
{
	return WRITE(sqlite_request_claim(db, brid, masterid, when));
}

static int sqlite_request_unclaim(struct db *db, int64_t brid)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_BR_UNCLAIM,
			"UPDATE buildrequests SET claimed_at = NULL, claimed_by_masterid = NULL "
			"WHERE id = ?1 AND complete = 0");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, brid);
	int r = db_step_done(db, s, "unclaim request");
	if (r < 0)
		return r;
	if (db_changes(db) == 0) {
		sqlite3_reset(s);
		struct db_request q;
		r = db_request_get(db, brid, &q);
		if (r < 0)
			return r;
		return db_failf(db, KILN_ESTATE, "build request %lld is complete", (long long)brid);
	}
	return 0;
}

int db_request_unclaim(struct db *db, int64_t brid)
{
	if (db->pg)
		return db_pg_request_unclaim(db, brid);
	return WRITE(sqlite_request_unclaim(db, brid));
}

static int sqlite_request_complete(struct db *db, int64_t brid, int results, double when,
				   int64_t *ret_bsid_done, int *ret_worst)
{
	int r;
	struct db_request q;
	if ((r = db_request_get(db, brid, &q)) < 0)
		return r;
	if (q.complete)
		return db_failf(db, KILN_ESTATE, "build request %lld is already complete",
				(long long)brid);
	{
		/* An unclaimed request that completes (cancelled while queued)
		 * reads as claimed, as in Buildbot. */
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_BR_COMPLETE,
			"UPDATE buildrequests SET complete = 1, complete_at = ?2, results = ?3, "
			"claimed_at = COALESCE(claimed_at, ?2) WHERE id = ?1 AND complete = 0");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, brid);
		sqlite3_bind_double(s, 2, when);
		sqlite3_bind_int(s, 3, results);
		if ((r = db_update_one(db, s, "complete request")) < 0)
			return r;
	}
	/* Is the buildset done?  Results of all its requests, incomplete first. */
	bool done = true;
	int worst = RESULTS_NONE;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_BR_BS_RESULTS,
			"SELECT complete, results FROM buildrequests WHERE buildsetid = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, q.buildsetid);
		while ((r = db_step_row(db, s, "buildset requests")) == 1) {
			if (!sqlite3_column_int(s, 0)) {
				done = false;
				break;
			}
			worst = db_results_worst(worst, sqlite3_column_int(s, 1));
		}
		if (r < 0)
			return r;
	}
	if (done) {
		/* Already completed by someone else (db_buildset_complete): fine. */
		r = db_buildset_complete_locked(db, q.buildsetid, worst, when);
		if (r == KILN_ESTATE)
			return 0;
		if (r < 0)
			return r;
		*ret_bsid_done = q.buildsetid;
		*ret_worst = worst;
	}
	return 0;
}

int db_request_complete(struct db *db, int64_t brid, int results, double when,
			int64_t *ret_bsid_done)
{
	int worst;
	return db_request_complete_results(db, brid, results, when, ret_bsid_done, &worst);
}

int db_request_complete_results(struct db *db, int64_t brid, int results, double when,
				int64_t *ret_bsid_done, int *ret_bs_results)
{
	int64_t done = 0;
	int worst = RESULTS_NONE;
	int r = WRITE(sqlite_request_complete(db, brid, results, when, &done, &worst));
	if (r >= 0 && ret_bsid_done)
		*ret_bsid_done = done;
	*ret_bs_results = r >= 0 && done ? worst : RESULTS_NONE;
	return r;
}

int db_request_pending_builders(struct db *db, int64_t **ret_ids, size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BR_PENDING_BUILDERS,
		"SELECT DISTINCT builderid FROM buildrequests INDEXED BY buildrequests_pending "
		"WHERE complete = 0 AND claimed_at IS NULL ORDER BY builderid");
	if (!s)
		return KILN_EDB;
	_cleanup_free_ int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int r;
	while ((r = db_step_row(db, s, "pending builders")) == 1) {
		ARRAY_GROW(ids, n + 1, cap);
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	if (r < 0)
		return r;
	*ret_ids = TAKE_PTR(ids);
	*ret_n = n;
	return 0;
}

int db_request_queued_counts(struct db *db, int64_t cap, int64_t **ret_ids, int64_t **ret_counts,
			     size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "SELECT builderid, min(count(*), ?1) FROM buildrequests INDEXED BY "
		    "buildrequests_pending WHERE complete = 0 AND claimed_at IS NULL "
		    "GROUP BY builderid ORDER BY builderid");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, cap);
	_cleanup_free_ int64_t *ids = NULL, *counts = NULL;
	size_t n = 0, cap_ids = 0, cap_counts = 0;
	int r;
	while ((r = db_step_row(db, s, "queued counts")) == 1) {
		ARRAY_GROW(ids, n + 1, cap_ids);
		ARRAY_GROW(counts, n + 1, cap_counts);
		ids[n] = sqlite3_column_int64(s, 0);
		counts[n++] = sqlite3_column_int64(s, 1);
	}
	if (r < 0)
		return r;
	*ret_ids = TAKE_PTR(ids);
	*ret_counts = TAKE_PTR(counts);
	*ret_n = n;
	return 0;
}

/* slice "dispatch": the queue's head for next_build, summaries for
 * prioritize_builders (master/dispatch-hooks.c) */
int db_request_queued(struct db *db, int64_t builderid, size_t max, struct db_request *ret,
		      size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BR_QUEUED,
		"SELECT " REQUEST_COLS " FROM buildrequests INDEXED BY buildrequests_pending "
		"WHERE builderid = ?1 AND complete = 0 AND claimed_at IS NULL "
		"ORDER BY priority DESC, submitted_at, id LIMIT ?2");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	sqlite3_bind_int64(s, 2, (int64_t)max);
	size_t n = 0;
	int r = 0;
	while (n < max && (r = db_step_row(db, s, "queued requests")) == 1)
		sqlite_request_fill(s, &ret[n++]);
	if (r < 0)
		return r;
	*ret_n = n;
	return 0;
}

int db_request_pending_summary(struct db *db, int64_t builderid, int *ret_priority,
			       double *ret_oldest)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_BR_PENDING_SUMMARY,
			"SELECT MAX(priority), MIN(submitted_at) FROM buildrequests "
			"INDEXED BY buildrequests_pending "
			"WHERE builderid = ?1 AND complete = 0 AND claimed_at IS NULL");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	int r = db_step_row(db, s, "pending summary");
	if (r <= 0)
		return r;
	if (sqlite3_column_type(s, 1) == SQLITE_NULL)
		return 0;
	*ret_priority = sqlite3_column_int(s, 0);
	*ret_oldest = sqlite3_column_double(s, 1);
	return 1;
}
