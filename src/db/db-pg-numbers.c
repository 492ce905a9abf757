/*
 * Numbers over time on PostgreSQL (issue 14): the series of one name and
 * the names of a builder, the SQL of db-sqlite-numbers.c in PostgreSQL's
 * dialect (GREATEST for max, octet_length, json_agg, bytewise order),
 * answered through db_numbers_series_async / db_numbers_names_async.
 */
#include "db/db-pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/db-pg-list.h"
#include "db/pg-batch.h"
#include "db/pg-conn.h"
#include "db/pg-col.h"

_Static_assert(KILN_MAX_NUMBER_NAME == 256, "PG_NUMBERS_POINTS, PG_NUMBERS_NAMES say 256");
_Static_assert(KILN_ETA_MAX_STEPS == 1000, "PG_NUMBERS_POINTS, PG_NUMBERS_NAMES say 1000");

/* The points of one series: $1 builderid, $2 name, $3 the step's name of
 * step_duration:NAME or NULL (as SQL_NUMBERS_POINTS). */
#define PG_NUMBERS_POINTS                                                                          \
	"WITH pts(buildid, id, stepid, value, recorded_at) AS ("                                   \
	"SELECT n.buildid, n.id, n.stepid, n.value, n.recorded_at FROM numbers n "                 \
	"WHERE n.builderid = $1::bigint AND n.name = $2::text "                                    \
	"UNION ALL "                                                                               \
	"SELECT bd.buildid, bd.id, s.id, GREATEST(0, s.complete_at - s.started_at), "              \
	"bd.recorded_at FROM numbers bd JOIN steps s ON s.buildid = bd.buildid "                   \
	"AND s.name = $3::text WHERE $3::text IS NOT NULL AND octet_length($2::text) <= 256 "      \
	"AND bd.builderid = $1::bigint AND bd.name = 'build_duration' "                            \
	"AND " SQL_NUMBERS_STEP_FINISHED "AND NOT EXISTS (SELECT 1 FROM numbers o WHERE "          \
	"o.builderid = $1::bigint AND o.name = $2::text AND o.buildid = bd.buildid "               \
	"AND o.stepid = s.id)) "

#define PG_NUMBERS_SERIES(dir)                                                                     \
	PG_NUMBERS_POINTS                                                                          \
	"SELECT n.buildid, b.number, n.stepid, n.value, n.recorded_at, "                           \
	"(SELECT ss.revision FROM buildrequests br "                                               \
	" JOIN buildset_sourcestamps bss ON bss.buildsetid = br.buildsetid "                       \
	" JOIN sourcestamps ss ON ss.id = bss.sourcestampid "                                      \
	" WHERE br.id = b.buildrequestid ORDER BY ss.id LIMIT 1), "                                \
	"(SELECT COALESCE(json_agg(bc.changeid ORDER BY bc.changeid), '[]')::text "                \
	"FROM buildrequests br JOIN buildset_changes bc "                                          \
	"ON bc.buildsetid = br.buildsetid WHERE br.id = b.buildrequestid) "                        \
	"FROM pts n JOIN builds b ON b.id = n.buildid "                                            \
	"ORDER BY n.buildid " dir ", n.id " dir " LIMIT $4 OFFSET $5"

#define PG_NUMBERS_NAMES                                                                           \
	"WITH nm(name) AS (SELECT name FROM numbers WHERE builderid = $1::bigint UNION "           \
	"SELECT '" DB_NUMBERS_STEP_DURATION "' || s.name FROM numbers bd "                         \
	"JOIN steps s ON s.buildid = bd.buildid "                                                  \
	"WHERE bd.builderid = $1::bigint AND bd.name = 'build_duration' "                          \
	"AND octet_length('" DB_NUMBERS_STEP_DURATION "' || s.name) <= 256 "                       \
	"AND " SQL_NUMBERS_STEP_FINISHED ") "

static json_t *pg_numbers_render_series(const PGresult *res)
{
	json_t *items = json_array();
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		json_t *ids = json_loads(PQgetvalue(res, i, 6), 0, NULL);
		json_t *p = json_pack(
			"{s:I,s:I,s:o,s:f,s:f,s:o,s:o}", "buildid",
			(json_int_t)pg_col_i64(res, i, 0), "number",
			(json_int_t)pg_col_i64(res, i, 1), "stepid",
			PQgetisnull(res, i, 2) ? json_null() : json_integer(pg_col_i64(res, i, 2)),
			"value", strtod(PQgetvalue(res, i, 3), NULL), "recorded_at",
			strtod(PQgetvalue(res, i, 4), NULL), "revision",
			PQgetisnull(res, i, 5) ? json_null() : json_string(PQgetvalue(res, i, 5)),
			"changeids", json_is_array(ids) ? ids : json_array());
		if (ids && !json_is_array(ids))
			json_decref(ids);
		if (p)
			json_array_append_new(items, p);
	}
	return items;
}

static json_t *pg_numbers_render_names(const PGresult *res)
{
	json_t *items = json_array();
	for (int i = 0, n = PQntuples(res); i < n; i++)
		json_array_append_new(items, json_string(PQgetvalue(res, i, 0)));
	return items;
}

/* NAME of step_duration:NAME, else NULL. */
static const char *pg_numbers_step_name(const char *name)
{
	size_t len = strlen(DB_NUMBERS_STEP_DURATION);
	return name && !strncmp(name, DB_NUMBERS_STEP_DURATION, len) && name[len] ? name + len
										  : NULL;
}

int db_pg_numbers_series(struct db *db, int64_t builderid, const char *name, bool oldest_first,
			 int64_t limit, int64_t offset, db_list_fn done, void *arg)
{
	char bid[24], lim[24], off[24];
	snprintf(bid, sizeof(bid), "%" PRId64, builderid);
	snprintf(lim, sizeof(lim), "%" PRId64, limit);
	snprintf(off, sizeof(off), "%" PRId64, offset < 0 ? 0 : offset);
	const char *v[] = {bid, name, pg_numbers_step_name(name), limit < 0 ? NULL : lim, off};
	struct pg_query rows = {.sql = oldest_first ? PG_NUMBERS_SERIES("ASC")
						    : PG_NUMBERS_SERIES("DESC"),
				.nparams = 5,
				.values = v};
	struct pg_query count = {
		.sql = PG_NUMBERS_POINTS "SELECT COUNT(*) FROM pts", .nparams = 3, .values = v};
	char err[256];
	int r = pg_read_send(db_pg_batch(db), &rows, &count, pg_numbers_render_series, done, arg,
			     err, sizeof(err));
	return r < 0 ? db_failf(db, r, "%s", err) : 0;
}

int db_pg_numbers_names(struct db *db, int64_t builderid, int64_t limit, int64_t offset,
			db_list_fn done, void *arg)
{
	char bid[24], lim[24], off[24];
	snprintf(bid, sizeof(bid), "%" PRId64, builderid);
	snprintf(lim, sizeof(lim), "%" PRId64, limit);
	snprintf(off, sizeof(off), "%" PRId64, offset < 0 ? 0 : offset);
	const char *v[] = {bid, limit < 0 ? NULL : lim, off};
	struct pg_query rows = {.sql = PG_NUMBERS_NAMES "SELECT name FROM nm ORDER BY name COLLATE "
							"\"C\" LIMIT $2 OFFSET $3",
				.nparams = 3,
				.values = v};
	struct pg_query count = {
		.sql = PG_NUMBERS_NAMES "SELECT COUNT(*) FROM nm", .nparams = 1, .values = v};
	char err[256];
	int r = pg_read_send(db_pg_batch(db), &rows, &count, pg_numbers_render_names, done, arg,
			     err, sizeof(err));
	return r < 0 ? db_failf(db, r, "%s", err) : 0;
}

/* --- the ETA samples ---------------------------------------------------------------- */

struct pg_eta_call {
	db_eta_fn done;
	void *arg;
};

static void pg_eta_on_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_eta_call *call = arg;
	if (r < 0) {
		call->done(call->arg, r, NULL, err ? err : "failed");
		free(call);
		return;
	}
	int n = PQntuples(res);
	double durations[KILN_ETA_SAMPLES];
	struct db_step_duration *steps = xcalloc((size_t)n + 1, sizeof(*steps));
	struct db_eta_samples s = {.durations = durations, .steps = steps};
	for (int i = 0; i < n; i++) {
		double d = strtod(PQgetvalue(res, i, 3), NULL);
		if (pg_col_i64(res, i, 0) == 0) {
			if (s.nbuilds < KILN_ETA_SAMPLES)
				durations[s.nbuilds++] = d;
		} else {
			steps[s.nsteps++] = (struct db_step_duration){
				.stepid = pg_col_i64(res, i, 4),
				.name = PQgetvalue(res, i, 2), /* borrowed from res */
				.duration = d,
			};
		}
	}
	call->done(call->arg, 0, &s, NULL);
	free(steps);
	free(call);
}

/* SQLite's reads in one: the builds first (k 0), newest first, then each
 * one's steps in step order (k 1). */
int db_pg_eta_samples(struct db *db, int64_t builderid, db_eta_fn done, void *arg)
{
	static const char sql[] =
		"WITH r AS (SELECT id, d FROM (SELECT id, results, complete_at - started_at AS d "
		"FROM builds WHERE builderid = $1::bigint AND complete = 1 ORDER BY id DESC "
		"LIMIT $2::bigint) x WHERE results IN (0, 1) AND d IS NOT NULL ORDER BY id DESC "
		"LIMIT $3::bigint), "
		"s AS (SELECT st.id, st.buildid, st.name, st.complete_at - st.started_at AS d, "
		"row_number() OVER (PARTITION BY st.buildid ORDER BY st.number) AS n "
		"FROM steps st JOIN r ON st.buildid = r.id WHERE st.complete = 1 AND "
		"st.started_at IS NOT NULL AND st.complete_at IS NOT NULL) "
		"SELECT 0 AS k, r.id AS b, NULL::text, r.d, 0::bigint, 0::bigint AS o FROM r "
		"UNION ALL SELECT 1, s.buildid, s.name, s.d, s.id, s.n FROM s WHERE s.n <= "
		"$4::bigint ORDER BY k, b DESC, o";
	char a[24], b[24], c[24], d[24];
	snprintf(a, sizeof(a), "%" PRId64, builderid);
	snprintf(b, sizeof(b), "%d", KILN_ETA_SCAN_BUILDS);
	snprintf(c, sizeof(c), "%d", KILN_ETA_SAMPLES);
	snprintf(d, sizeof(d), "%d", KILN_ETA_MAX_STEPS);
	const char *values[] = {a, b, c, d};
	struct pg_eta_call *call = xmalloc(sizeof(*call));
	*call = (struct pg_eta_call){.done = done, .arg = arg};
	struct pg_query q = {.sql = sql, .nparams = 4, .values = values};
	int r = pg_batch_read(db_pg_batch(db), &q, pg_eta_on_rows, call);
	if (r < 0) {
		free(call);
		return db_failf(db, r, "cannot send the query: %s", err_str(r));
	}
	return 0;
}

/* --- a number's previous value, a build's times and its steps' durations ------------------ */

/* One of the reads below: its callback and what it was asked. */
struct pg_num_call {
	db_number_prev_fn prev;
	db_build_times_fn times;
	db_step_durations_fn steps;
	void *arg;
	int64_t buildid;
	size_t max;
};

static int pg_num_send(struct db *db, const char *sql, const char *const *v, int n,
		       pg_conn_result_cb cb, struct pg_num_call *call)
{
	struct pg_query q = {.sql = sql, .nparams = n, .values = v};
	return db_pg_read(db, &q, cb, call);
}

static void pg_num_on_prev(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_num_call *call = arg;
	if (r < 0)
		call->prev(call->arg, r, 0, 0, err ? err : "failed");
	else if (PQntuples(res) < 1)
		call->prev(call->arg, 0, 0, 0, NULL);
	else
		call->prev(call->arg, 1, strtod(PQgetvalue(res, 0, 0), NULL), pg_col_i64(res, 0, 1),
			   NULL);
	free(call);
}

int db_pg_number_previous(struct db *db, int64_t builderid, const char *name, int64_t buildid,
			  db_number_prev_fn done, void *arg)
{
	char bid[24], id[24];
	snprintf(bid, sizeof(bid), "%" PRId64, builderid);
	snprintf(id, sizeof(id), "%" PRId64, buildid);
	const char *v[] = {bid, name, pg_numbers_step_name(name), id};
	struct pg_num_call *call = xcalloc(1, sizeof(*call));
	call->prev = done;
	call->arg = arg;
	return pg_num_send(db,
			   PG_NUMBERS_POINTS "SELECT value, buildid FROM pts WHERE buildid < "
					     "$4::bigint ORDER BY buildid DESC, id DESC LIMIT 1",
			   v, 4, pg_num_on_prev, call);
}

static void pg_num_on_times(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_num_call *call = arg;
	if (r < 0) {
		call->times(call->arg, r, NULL, NULL, err ? err : "failed");
	} else if (PQntuples(res) < 1) {
		char why[64];
		snprintf(why, sizeof(why), "no build %" PRId64, call->buildid);
		call->times(call->arg, KILN_ENOTFOUND, NULL, NULL, why);
	} else {
		bool done = pg_col_i64(res, 0, 4) != 0;
		struct db_build_times bt = {
			.builderid = pg_col_i64(res, 0, 0),
			.number = pg_col_i64(res, 0, 5),
			.started_at = strtod(PQgetvalue(res, 0, 1), NULL),
			.complete_at = done ? strtod(PQgetvalue(res, 0, 2), NULL) : 0,
			.results = done && !PQgetisnull(res, 0, 3) ? (int)pg_col_i64(res, 0, 3)
								   : RESULTS_NONE,
		};
		json_t *blame = PQnfields(res) > 6 && !PQgetisnull(res, 0, 6)
					? json_loads(PQgetvalue(res, 0, 6), 0, NULL)
					: NULL;
		call->times(call->arg, 0, &bt, blame, NULL);
		json_decref(blame);
	}
	free(call);
}

int db_pg_build_times(struct db *db, int64_t buildid, bool blamelist, db_build_times_fn done,
		      void *arg)
{
	/* the blamelist as db_build_blamelist's: distinct authors, by bytes */
	static const char *const sql[] = {
		"SELECT builderid, started_at, complete_at, results, complete, number FROM builds "
		"WHERE id = $1::bigint",
		"SELECT b.builderid, b.started_at, b.complete_at, b.results, b.complete, b.number, "
		"(SELECT COALESCE(json_agg(a ORDER BY a), '[]')::text FROM (SELECT DISTINCT "
		"c.author COLLATE \"C\" AS a FROM buildrequests br JOIN buildset_changes bc ON "
		"bc.buildsetid = br.buildsetid JOIN changes c ON c.id = bc.changeid WHERE br.id = "
		"b.buildrequestid) x) FROM builds b WHERE b.id = $1::bigint",
	};
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, buildid);
	const char *v[] = {id};
	struct pg_num_call *call = xcalloc(1, sizeof(*call));
	call->times = done;
	call->arg = arg;
	call->buildid = buildid;
	return pg_num_send(db, sql[blamelist], v, 1, pg_num_on_times, call);
}

static void pg_num_on_steps(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_num_call *call = arg;
	if (r < 0) {
		call->steps(call->arg, r, NULL, 0, err ? err : "failed");
		free(call);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	if (n > call->max)
		n = call->max;
	struct db_step_duration *d = xcalloc(n + 1, sizeof(*d));
	for (size_t i = 0; i < n; i++)
		d[i] = (struct db_step_duration){
			.stepid = pg_col_i64(res, (int)i, 0),
			.name = pg_col_dup(res, (int)i, 1),
			.duration = strtod(PQgetvalue(res, (int)i, 2), NULL),
		};
	call->steps(call->arg, 0, d, n, NULL);
	db_step_durations_free(d, n);
	free(call);
}

int db_pg_steps_durations(struct db *db, int64_t buildid, size_t max, db_step_durations_fn done,
			  void *arg)
{
	char id[24], lim[24];
	snprintf(id, sizeof(id), "%" PRId64, buildid);
	snprintf(lim, sizeof(lim), "%zu", max);
	const char *v[] = {id, lim};
	struct pg_num_call *call = xcalloc(1, sizeof(*call));
	call->steps = done;
	call->arg = arg;
	call->max = max;
	return pg_num_send(db,
			   "SELECT id, name, complete_at - started_at FROM steps WHERE buildid = "
			   "$1::bigint AND complete = 1 AND started_at IS NOT NULL AND complete_at "
			   "IS NOT NULL ORDER BY number LIMIT $2::bigint",
			   v, 2, pg_num_on_steps, call);
}

/* --- queue positions and running builds (a queued request's estimated start) ------------- */

struct pg_qinfo_call {
	db_queue_info_fn done;
	void *arg;
};

static void pg_qinfo_on_rows(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_qinfo_call *call = arg;
	if (r < 0) {
		call->done(call->arg, r, NULL, err ? err : "failed");
		free(call);
		return;
	}
	size_t n = (size_t)PQntuples(res), nreq = 0, nrun = 0;
	int64_t *brids = xcalloc(n + 1, sizeof(*brids)), *bids = xcalloc(n + 1, sizeof(*bids));
	int64_t *pos = xcalloc(n + 1, sizeof(*pos)), *rbids = xcalloc(n + 1, sizeof(*rbids));
	double *starts = xcalloc(n + 1, sizeof(*starts));
	for (int i = 0; i < (int)n; i++) {
		if (pg_col_i64(res, i, 0) == 0) {
			brids[nreq] = pg_col_i64(res, i, 1);
			bids[nreq] = pg_col_i64(res, i, 2);
			pos[nreq++] = pg_col_i64(res, i, 3);
		} else {
			rbids[nrun] = pg_col_i64(res, i, 2);
			starts[nrun++] = strtod(PQgetvalue(res, i, 4), NULL);
		}
	}
	struct db_queue_info qi = {.brids = brids,
				   .builderids = bids,
				   .pos = pos,
				   .nreq = nreq,
				   .run_builderids = rbids,
				   .run_starts = starts,
				   .nrun = nrun};
	call->done(call->arg, 0, &qi, NULL);
	free(brids);
	free(bids);
	free(pos);
	free(rbids);
	free(starts);
	free(call);
}

int db_pg_requests_queue_info(struct db *db, const int64_t *brids, size_t n, size_t max,
			      db_queue_info_fn done, void *arg)
{
	/* kind 0: a request and its position (db_request_queue_position's
	 * order); kind 1: a running build's start, oldest (by id) first */
	static const char sql[] =
		"WITH me AS (SELECT id, builderid, priority, submitted_at FROM buildrequests WHERE "
		"id = ANY($1::bigint[]) AND complete = 0 AND claimed_at IS NULL) "
		"SELECT * FROM (SELECT 0 AS kind, me.id, me.builderid, (SELECT count(*) FROM "
		"buildrequests q WHERE q.builderid = me.builderid AND q.complete = 0 AND "
		"q.claimed_at IS NULL AND (q.priority > me.priority OR (q.priority = me.priority "
		"AND (q.submitted_at < me.submitted_at OR (q.submitted_at = me.submitted_at AND "
		"q.id < me.id))))) AS pos, NULL::float8 AS started_at, 0::bigint AS k FROM me "
		"UNION ALL SELECT 1, NULL, x.builderid, NULL, x.started_at, x.k FROM (SELECT "
		"builderid, started_at, row_number() OVER (PARTITION BY builderid ORDER BY id) AS "
		"k FROM builds WHERE complete = 0 AND builderid IN (SELECT builderid FROM me)) x "
		"WHERE x.k <= $2::bigint) y ORDER BY kind, id, builderid, k";
	struct buf ids;
	int r = pgw_id_array(db, &ids, brids, n);
	if (r < 0) {
		buf_release(&ids);
		return r;
	}
	char lim[24];
	snprintf(lim, sizeof(lim), "%zu", max);
	const char *v[] = {ids.ptr, lim};
	struct pg_qinfo_call *call = xmalloc(sizeof(*call));
	*call = (struct pg_qinfo_call){.done = done, .arg = arg};
	struct pg_query q = {.sql = sql, .nparams = 2, .values = v};
	r = db_pg_read(db, &q, pg_qinfo_on_rows, call);
	buf_release(&ids);
	return r;
}
