/*
 * The SQLite side of numbers over time (db.h "numbers over time"): recording
 * a named number of a build, the series of one name for a builder (newest
 * build first, with the build's revision and changes), the names a builder
 * has, and the recent durations the master's ETA is computed from.
 * Schema: migrations/0005-numbers.sql.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

/* --- recording ----------------------------------------------------------------------- */

/* 0 if buildid is a build of builderid, else KILN_ENOTFOUND (or an error). */
static int sqlite_numbers_build_check(struct db *db, int64_t builderid, int64_t buildid)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_NUM_BUILD_OF, "SELECT builderid FROM builds WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	int r = db_step_row(db, s, "number's build");
	if (r < 0)
		return r;
	if (r == 0 || sqlite3_column_int64(s, 0) != builderid)
		return db_failf(db, KILN_ENOTFOUND, "no build %lld of builder %lld",
				(long long)buildid, (long long)builderid);
	return 0;
}

/* The INSERT of one number (the build checked by the caller). */
static int sqlite_numbers_insert(struct db *db, int64_t builderid, int64_t buildid, int64_t stepid,
				 const char *name, double value, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_NUM_RECORD,
		"INSERT INTO numbers (builderid, buildid, stepid, name, value, recorded_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	sqlite3_bind_int64(s, 2, buildid);
	db_bind_id(s, 3, stepid);
	db_bind_text(s, 4, name);
	sqlite3_bind_double(s, 5, value);
	sqlite3_bind_double(s, 6, when);
	return db_step_done(db, s, "record number");
}

static int sqlite_numbers_record(struct db *db, int64_t builderid, int64_t buildid, int64_t stepid,
				 const char *name, double value, double when)
{
	int r = sqlite_numbers_build_check(db, builderid, buildid);
	if (r < 0)
		return r;
	return sqlite_numbers_insert(db, builderid, buildid, stepid, name, value, when);
}

/* The build looked up once for all of them, one prepared INSERT each. */
static int sqlite_numbers_record_many(struct db *db, int64_t builderid, int64_t buildid,
				      const struct db_number_rec *v, size_t n, double when)
{
	int r = sqlite_numbers_build_check(db, builderid, buildid);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = sqlite_numbers_insert(db, builderid, buildid, v[i].stepid, v[i].name,
					  v[i].value, when);
	return r;
}

int db_number_record(struct db *db, int64_t builderid, int64_t buildid, int64_t stepid,
		     const char *name, double value, double when)
{
	if (!name || !*name)
		return db_failf(db, -EINVAL, "number name is empty");
	if (!isfinite(value))
		return db_failf(db, -EINVAL, "number '%s' is not finite", name);
	if (db->pg)
		return db_pg_number_record(db, builderid, buildid, stepid, name, value, when);
	return WRITE1(sqlite_numbers_record(db, builderid, buildid, stepid, name, value, when));
}

int db_numbers_record_many(struct db *db, int64_t builderid, int64_t buildid,
			   const struct db_number_rec *v, size_t n, double when)
{
	for (size_t i = 0; i < n; i++) {
		if (!v[i].name || !*v[i].name)
			return db_failf(db, -EINVAL, "number name is empty");
		if (!isfinite(v[i].value))
			return db_failf(db, -EINVAL, "number '%s' is not finite", v[i].name);
	}
	if (n == 0)
		return 0;
	for (size_t i = 0; db->pg && i < n; i++) {
		int r = db_pg_number_record(db, builderid, buildid, v[i].stepid, v[i].name,
					    v[i].value, when);
		if (r < 0 || i + 1 == n)
			return r;
	}
	if (n == 1)
		return WRITE1(sqlite_numbers_record(db, builderid, buildid, v[0].stepid, v[0].name,
						    v[0].value, when));
	return WRITE(sqlite_numbers_record_many(db, builderid, buildid, v, n, when));
}

/* --- reading -------------------------------------------------------------------------- */

/* The points of one series (builderid ?1, name ?2), as (buildid, id,
 * stepid, value, recorded_at): the rows recorded, and for step_duration:NAME
 * (?5 = NAME, else NULL) the step durations served from the steps table
 * (db.h "numbers: step durations"): one point per build that recorded its
 * build_duration (i.e. whose end numbers_build_finished handled), for its
 * step NAME if that step started and finished, among the build's first
 * KILN_ETA_MAX_STEPS such steps, and the number's name fits
 * KILN_MAX_NUMBER_NAME; the point's id and recorded_at are the
 * build_duration row's.  A build from before this (a step_duration row of
 * that step recorded) keeps its recorded row instead.  The SQL spells the
 * two limits out (checked below). */
_Static_assert(KILN_MAX_NUMBER_NAME == 256, "SQL_NUMBERS_POINTS, SQL_NUMBERS_NAMES say 256");
_Static_assert(KILN_ETA_MAX_STEPS == 1000, "SQL_NUMBERS_POINTS, SQL_NUMBERS_NAMES say 1000");
#define SQL_NUMBERS_POINTS                                                                         \
	"WITH pts(buildid, id, stepid, value, recorded_at) AS ("                                   \
	"SELECT n.buildid, n.id, n.stepid, n.value, n.recorded_at FROM numbers n "                 \
	"WHERE n.builderid = ?1 AND n.name = ?2 "                                                  \
	"UNION ALL "                                                                               \
	"SELECT bd.buildid, bd.id, s.id, max(0, s.complete_at - s.started_at), bd.recorded_at "    \
	"FROM numbers bd JOIN steps s ON s.buildid = bd.buildid AND s.name = ?5 "                  \
	"WHERE ?5 IS NOT NULL AND length(CAST(?2 AS BLOB)) <= 256 "                                \
	"AND bd.builderid = ?1 AND bd.name = 'build_duration' AND " SQL_NUMBERS_STEP_FINISHED      \
	"AND NOT EXISTS (SELECT 1 FROM numbers o WHERE o.builderid = ?1 AND o.name = ?2 "          \
	"AND o.buildid = bd.buildid AND o.stepid = s.id)) "

/* NAME if name is step_duration:NAME (served from the steps table), else NULL. */
static const char *sqlite_numbers_step_name(const char *name)
{
	size_t len = strlen(DB_NUMBERS_STEP_DURATION);
	return name && !strncmp(name, DB_NUMBERS_STEP_DURATION, len) && name[len] ? name + len
										  : NULL;
}

static void sqlite_numbers_bind_step(sqlite3_stmt *s, const char *name)
{
	const char *step = sqlite_numbers_step_name(name);
	if (step)
		db_bind_text(s, 5, step);
	else
		sqlite3_bind_null(s, 5);
}

int db_number_previous(struct db *db, int64_t builderid, const char *name, int64_t buildid,
		       double *ret_value, int64_t *ret_buildid)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		sqlite_numbers_step_name(name)
			? db_stmt_dynamic(db, SQL_NUMBERS_POINTS
					  "SELECT value, buildid FROM pts WHERE buildid < ?3 "
					  "ORDER BY buildid DESC, id DESC LIMIT 1")
			: db_stmt(db, ST_NUM_PREVIOUS,
				  "SELECT value, buildid FROM numbers WHERE builderid = ?1 AND "
				  "name = ?2 AND buildid < ?3 ORDER BY buildid DESC, id DESC LIMIT "
				  "1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	db_bind_text(s, 2, name);
	sqlite3_bind_int64(s, 3, buildid);
	if (sqlite_numbers_step_name(name))
		sqlite_numbers_bind_step(s, name);
	int r = db_step_row(db, s, "previous number");
	if (r == 1) {
		*ret_value = sqlite3_column_double(s, 0);
		*ret_buildid = sqlite3_column_int64(s, 1);
	}
	return r;
}

static int sqlite_numbers_count(struct db *db, int id, const char *sql, int64_t builderid,
				const char *name, int64_t *ret_total)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, id, sql);
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	if (name) {
		db_bind_text(s, 2, name);
		sqlite_numbers_bind_step(s, name);
	}
	int r = db_step_row(db, s, "count numbers");
	if (r == 1)
		*ret_total = sqlite3_column_int64(s, 0);
	return r < 0 ? r : 0;
}

/* The revision is the build's first sourcestamp's; the changes are those
 * its buildset builds (as /builds/N/changes lists them). */
#define SQL_NUMBERS_SERIES(dir)                                                                    \
	SQL_NUMBERS_POINTS "SELECT n.buildid, b.number, n.stepid, n.value, n.recorded_at, "        \
			   "(SELECT ss.revision FROM buildrequests br "                            \
			   " JOIN buildset_sourcestamps bss ON bss.buildsetid = br.buildsetid "    \
			   " JOIN sourcestamps ss ON ss.id = bss.sourcestampid "                   \
			   " WHERE br.id = b.buildrequestid ORDER BY ss.id LIMIT 1), "             \
			   "(SELECT json_group_array(changeid) FROM (SELECT bc.changeid FROM "     \
			   "buildrequests br "                                                     \
			   " JOIN buildset_changes bc ON bc.buildsetid = br.buildsetid "           \
			   " WHERE br.id = b.buildrequestid ORDER BY bc.changeid)) "               \
			   "FROM pts n JOIN builds b ON b.id = n.buildid "                         \
			   "ORDER BY n.buildid " dir ", n.id " dir " LIMIT ?3 OFFSET ?4"

int db_numbers_series(struct db *db, int64_t builderid, const char *name, bool oldest_first,
		      int64_t limit, int64_t offset, json_t **ret_items, int64_t *ret_total)
{
	int64_t total = 0;
	int r;
	if (ret_total && (r = sqlite_numbers_count(db, ST_NUM_SERIES_COUNT,
						   SQL_NUMBERS_POINTS "SELECT COUNT(*) FROM pts",
						   builderid, name, &total)) < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *s =
		oldest_first ? db_stmt(db, ST_NUM_SERIES_ASC, SQL_NUMBERS_SERIES("ASC"))
			     : db_stmt(db, ST_NUM_SERIES, SQL_NUMBERS_SERIES("DESC"));
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	db_bind_text(s, 2, name);
	sqlite3_bind_int64(s, 3, limit < 0 ? -1 : limit);
	sqlite3_bind_int64(s, 4, offset < 0 ? 0 : offset);
	sqlite_numbers_bind_step(s, name);
	json_t *items = json_array();
	while ((r = db_step_row(db, s, "number series")) == 1) {
		const char *rev = (const char *)sqlite3_column_text(s, 5);
		const char *ids = (const char *)sqlite3_column_text(s, 6);
		json_t *changeids = ids ? json_loads(ids, 0, NULL) : NULL;
		json_t *p = json_pack("{s:I,s:I,s:o,s:f,s:f,s:o,s:o}", "buildid",
				      (json_int_t)sqlite3_column_int64(s, 0), "number",
				      (json_int_t)sqlite3_column_int64(s, 1), "stepid",
				      sqlite3_column_type(s, 2) == SQLITE_NULL
					      ? json_null()
					      : json_integer(sqlite3_column_int64(s, 2)),
				      "value", sqlite3_column_double(s, 3), "recorded_at",
				      sqlite3_column_double(s, 4), "revision",
				      rev ? json_string(rev) : json_null(), "changeids",
				      json_is_array(changeids) ? changeids : json_array());
		if (changeids && !json_is_array(changeids))
			json_decref(changeids);
		if (!p) { /* a revision that is not UTF-8: the point without it */
			r = db_failf(db, KILN_EDB, "number series: cannot render build %lld",
				     (long long)sqlite3_column_int64(s, 0));
			break;
		}
		json_array_append_new(items, p);
	}
	if (r < 0) {
		json_decref(items);
		return r;
	}
	*ret_items = items;
	if (ret_total)
		*ret_total = total;
	return 0;
}

/* The names of builderid's series: those recorded, and step_duration:NAME
 * of every step that SQL_NUMBERS_POINTS serves (UNION: distinct). */
#define SQL_NUMBERS_NAMES                                                                          \
	"WITH nm(name) AS (SELECT name FROM numbers WHERE builderid = ?1 UNION "                   \
	"SELECT '" DB_NUMBERS_STEP_DURATION "' || s.name FROM numbers bd "                         \
	"JOIN steps s ON s.buildid = bd.buildid "                                                  \
	"WHERE bd.builderid = ?1 AND bd.name = 'build_duration' "                                  \
	"AND length(CAST('" DB_NUMBERS_STEP_DURATION "' || s.name AS BLOB)) <= 256 "               \
	"AND " SQL_NUMBERS_STEP_FINISHED ") "

int db_numbers_names(struct db *db, int64_t builderid, int64_t limit, int64_t offset,
		     json_t **ret_items, int64_t *ret_total)
{
	int64_t total = 0;
	int r;
	if (ret_total && (r = sqlite_numbers_count(db, ST_NUM_NAMES_COUNT,
						   SQL_NUMBERS_NAMES "SELECT COUNT(*) FROM nm",
						   builderid, NULL, &total)) < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_NUM_NAMES,
			SQL_NUMBERS_NAMES "SELECT name FROM nm ORDER BY name LIMIT ?2 OFFSET ?3");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	sqlite3_bind_int64(s, 2, limit < 0 ? -1 : limit);
	sqlite3_bind_int64(s, 3, offset < 0 ? 0 : offset);
	json_t *items = json_array();
	while ((r = db_step_row(db, s, "number names")) == 1)
		json_array_append_new(items, json_string((const char *)sqlite3_column_text(s, 0)));
	if (r < 0) {
		json_decref(items);
		return r;
	}
	*ret_items = items;
	if (ret_total)
		*ret_total = total;
	return 0;
}

/* --- durations for the ETA ----------------------------------------------------------- */

int db_builds_recent_success(struct db *db, int64_t builderid, size_t max, int64_t *ret_ids,
			     double *ret_durations, size_t *ret_n)
{
	/* builds_builderid_complete (builderid, complete, rowid) walks the
	 * builder's finished builds newest first; only the last
	 * KILN_ETA_SCAN_BUILDS are looked at, failed ones included, so a long
	 * failing streak does not make this a scan of the builder's history */
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_NUM_RECENT_SUCCESS,
			"SELECT id, d FROM (SELECT id, results, complete_at - started_at AS d "
			"FROM builds WHERE builderid = ?1 AND complete = 1 ORDER BY id DESC "
			"LIMIT ?3) WHERE results IN (0, 1) AND d IS NOT NULL ORDER BY id DESC "
			"LIMIT ?2");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	sqlite3_bind_int64(s, 2, (int64_t)max);
	sqlite3_bind_int64(s, 3, KILN_ETA_SCAN_BUILDS);
	size_t n = 0;
	int r = 0;
	while (n < max && (r = db_step_row(db, s, "recent builds")) == 1) {
		ret_ids[n] = sqlite3_column_int64(s, 0);
		ret_durations[n] = sqlite3_column_double(s, 1);
		n++;
	}
	if (n < max && r < 0)
		return r;
	*ret_n = n;
	return 0;
}

int db_steps_durations(struct db *db, int64_t buildid, size_t max, struct db_step_duration **ret,
		       size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_NUM_STEP_DURATIONS,
			"SELECT id, name, complete_at - started_at FROM steps WHERE buildid = ?1 "
			"AND complete = 1 AND started_at IS NOT NULL AND complete_at IS NOT NULL "
			"ORDER BY number");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	struct db_step_duration *d = NULL;
	size_t n = 0, alloc = 0;
	int r = 0;
	while (n < max && (r = db_step_row(db, s, "step durations")) == 1) {
		ARRAY_GROW(d, n + 1, alloc);
		d[n].stepid = sqlite3_column_int64(s, 0);
		d[n].name = xstrdup((const char *)sqlite3_column_text(s, 1));
		d[n].duration = sqlite3_column_double(s, 2);
		n++;
	}
	if (n < max && r < 0) {
		db_step_durations_free(d, n);
		return r;
	}
	*ret = d;
	*ret_n = n;
	return 0;
}

void db_step_durations_free(struct db_step_duration *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(d[i].name);
	free(d);
}

int db_build_times(struct db *db, int64_t buildid, struct db_build_times *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_NUM_BUILD_TIMES,
			"SELECT builderid, started_at, complete_at, results, complete, number "
			"FROM builds "
			"WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	int r = db_step_row(db, s, "build times");
	if (r < 0)
		return r;
	if (r == 0)
		return db_failf(db, KILN_ENOTFOUND, "no build %lld", (long long)buildid);
	bool done = sqlite3_column_int(s, 4) != 0;
	*ret = (struct db_build_times){
		.builderid = sqlite3_column_int64(s, 0),
		.number = sqlite3_column_int64(s, 5),
		.started_at = sqlite3_column_double(s, 1),
		.complete_at = done ? sqlite3_column_double(s, 2) : 0,
		.results = done && sqlite3_column_type(s, 3) != SQLITE_NULL
				   ? sqlite3_column_int(s, 3)
				   : RESULTS_NONE,
	};
	return 0;
}

int db_builds_running_starts(struct db *db, int64_t builderid, size_t max, double *ret_starts,
			     size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_NUM_RUNNING_STARTS,
			"SELECT started_at FROM builds WHERE builderid = ?1 AND complete = 0 "
			"ORDER BY id LIMIT ?2");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	sqlite3_bind_int64(s, 2, (int64_t)max);
	size_t n = 0;
	int r = 0;
	while (n < max && (r = db_step_row(db, s, "running builds")) == 1)
		ret_starts[n++] = sqlite3_column_double(s, 0);
	if (n < max && r < 0)
		return r;
	*ret_n = n;
	return 0;
}

int db_request_queue_position(struct db *db, int64_t brid, int64_t *ret_builderid, int64_t *ret_pos)
{
	int64_t builderid, prio;
	double submitted;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_NUM_REQUEST_OF,
				"SELECT builderid, priority, submitted_at FROM buildrequests "
				"WHERE id = ?1 AND complete = 0 AND claimed_at IS NULL");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, brid);
		int r = db_step_row(db, s, "queued request");
		if (r <= 0)
			return r;
		builderid = sqlite3_column_int64(s, 0);
		prio = sqlite3_column_int64(s, 1);
		submitted = sqlite3_column_double(s, 2);
	}
	/* the same order as db_request_next, over the buildrequests_pending index */
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_NUM_QUEUE_POS,
			"SELECT COUNT(*) FROM buildrequests INDEXED BY buildrequests_pending "
			"WHERE builderid = ?1 AND complete = 0 "
			"AND claimed_at IS NULL AND (priority > ?2 OR (priority = ?2 AND "
			"(submitted_at < ?3 OR (submitted_at = ?3 AND id < ?4))))");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	sqlite3_bind_int64(s, 2, prio);
	sqlite3_bind_double(s, 3, submitted);
	sqlite3_bind_int64(s, 4, brid);
	int r = db_step_row(db, s, "queue position");
	if (r <= 0)
		return r < 0 ? r : KILN_EDB;
	*ret_builderid = builderid;
	*ret_pos = sqlite3_column_int64(s, 0);
	return 1;
}
