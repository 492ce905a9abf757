/*
 * Writes of db.h on PostgreSQL (issue 14, docs/SCALING.md "Batched
 * asynchronous writes"): each joins the loop turn's transaction
 * (pg-batch.c) and returns at once; a failed transaction reaches the
 * commit-error callback (db_set_commit_error_cb), as a failed commit does
 * on SQLite.  Reads made after a write see it (pg_batch_read).
 *
 * What SQLite answers from the rows at once, PostgreSQL cannot before the
 * commit: a write to a row that does not exist, or a finish of a build or
 * step already finished, is a no-op here (0), where SQLite answers
 * KILN_ENOTFOUND or KILN_ESTATE.  The engine writes only rows it made.
 */
#include "db/db-pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "db/pg-batch.h"
#include "db/pg-conn.h"
#include "db/pg-col.h"
#include "db/pg-params.h"

void db_pg_on_commit_failed(void *arg, int r, const char *err)
{
	struct db *db = arg;
	if (r == -ECANCELED || !db->commit_error_fn)
		return;
	db_failf(db, r, "%s", err ? err : err_str(r));
	db->commit_error_fn(db, r, db->errmsg, db->commit_error_ud);
}

/* sql with w's parameters, in this turn's transaction; releases w. */
int db_pg_write(struct db *db, const char *sql, struct pgw *w)
{
	struct pg_query q = {
		.sql = sql, .nparams = w->n, .values = w->v, .lengths = w->len, .formats = w->fmt};
	int r = pg_batch_add(db_pg_batch(db), &q); /* copies q */
	for (int i = 0; i < w->n; i++)
		buf_release(&w->fixed[i]);
	if (r < 0)
		return db_failf(db, r, "cannot queue a write: %s",
				r == -ENOBUFS ? "too many writes are waiting" : err_str(r));
	return 0;
}

/* A write whose rows are wanted: cb(c, ...) gets them; c (malloc'd) is
 * freed here when the write cannot be queued. */
int db_pg_write_returning(struct db *db, const struct pg_query *q, pg_conn_result_cb cb, void *c)
{
	int r = pg_batch_add_returning(db_pg_batch(db), q, cb, c);
	if (r < 0) {
		free(c);
		return db_failf(db, r, "cannot queue a write: %s", err_str(r));
	}
	return 0;
}

int db_pg_read(struct db *db, const struct pg_query *q, pg_conn_result_cb cb, void *c)
{
	int r = pg_batch_read(db_pg_batch(db), q, cb, c);
	if (r < 0) {
		free(c);
		return db_failf(db, r, "cannot send the query: %s", err_str(r));
	}
	return 0;
}

/* A master's id, or SQL NULL for none (0). */
static void pgw_id(struct pgw *w, int64_t id)
{
	if (id)
		pgw_i64(w, id);
	else
		pgw_text(w, NULL);
}

/* --- builds ------------------------------------------------------------------------------ */

int db_pg_build_set_state(struct db *db, int64_t buildid, const char *state_string)
{
	struct pgw w = {0};
	pgw_i64(&w, buildid);
	pgw_text(&w, state_string ? state_string : "");
	return db_pg_write(db, "UPDATE builds SET state_string = $2 WHERE id = $1::bigint", &w);
}

int db_pg_build_finish(struct db *db, int64_t buildid, int results, const char *state_string,
		       double when)
{
	struct pgw w = {0};
	pgw_i64(&w, buildid);
	pgw_f64(&w, when);
	pgw_i64(&w, results);
	pgw_text(&w, state_string);
	return db_pg_write(db,
			   "UPDATE builds SET complete = 1, complete_at = $2::float8, "
			   "results = $3::bigint, state_string = COALESCE($4, state_string) "
			   "WHERE id = $1::bigint AND complete = 0",
			   &w);
}

int db_pg_build_set_property(struct db *db, int64_t buildid, const char *name,
			     const char *value_json, const char *source)
{
	struct pgw w = {0};
	pgw_i64(&w, buildid);
	pgw_text(&w, name);
	pgw_text(&w, value_json);
	pgw_text(&w, source ? source : "");
	return db_pg_write(db,
			   "UPDATE builds SET properties = (properties::jsonb || "
			   "jsonb_build_object($2::text, jsonb_build_array($3::jsonb, $4::text)))"
			   "::text WHERE id = $1::bigint",
			   &w);
}

/* --- steps ------------------------------------------------------------------------------- */

int db_pg_step_start(struct db *db, int64_t stepid, double when)
{
	struct pgw w = {0};
	pgw_i64(&w, stepid);
	pgw_f64(&w, when);
	return db_pg_write(db, "UPDATE steps SET started_at = $2::float8 WHERE id = $1::bigint",
			   &w);
}

int db_pg_step_set_state(struct db *db, int64_t stepid, const char *state_string)
{
	struct pgw w = {0};
	pgw_i64(&w, stepid);
	pgw_text(&w, state_string ? state_string : "");
	return db_pg_write(db, "UPDATE steps SET state_string = $2 WHERE id = $1::bigint", &w);
}

int db_pg_step_finish(struct db *db, int64_t stepid, int results, const char *state_string,
		      bool hidden, double when)
{
	struct pgw w = {0};
	pgw_i64(&w, stepid);
	pgw_f64(&w, when);
	pgw_i64(&w, results);
	pgw_text(&w, state_string);
	pgw_i64(&w, hidden);
	return db_pg_write(db,
			   "UPDATE steps SET complete = 1, complete_at = $2::float8, "
			   "results = $3::bigint, state_string = COALESCE($4, state_string), "
			   "hidden = $5::bigint WHERE id = $1::bigint AND complete = 0",
			   &w);
}

int db_pg_step_add_url(struct db *db, int64_t stepid, const char *name, const char *url)
{
	struct pgw w = {0};
	pgw_i64(&w, stepid);
	pgw_text(&w, name ? name : "");
	pgw_text(&w, url ? url : "");
	return db_pg_write(db,
			   "UPDATE steps SET urls = (urls::jsonb || jsonb_build_array("
			   "jsonb_build_object('name', $2::text, 'url', $3::text)))::text "
			   "WHERE id = $1::bigint",
			   &w);
}

/* --- workers ----------------------------------------------------------------------------- */

int db_pg_worker_set_info(struct db *db, int64_t workerid, const char *info_json)
{
	struct pgw w = {0};
	pgw_text(&w, info_json);
	pgw_i64(&w, workerid);
	return db_pg_write(db, "UPDATE workers SET info = $1 WHERE id = $2::bigint", &w);
}

/* masterid, paused, graceful or last_seen (col) of a worker; v 0 is NULL
 * for masterid. */
int db_pg_worker_set(struct db *db, int64_t workerid, enum db_pg_worker_col col, double v)
{
	static const char *const sql[] = {
		[DB_PG_WORKER_MASTER] =
			"UPDATE workers SET masterid = $1::bigint WHERE id = $2::bigint",
		[DB_PG_WORKER_PAUSED] =
			"UPDATE workers SET paused = $1::bigint WHERE id = $2::bigint",
		[DB_PG_WORKER_GRACEFUL] =
			"UPDATE workers SET graceful = $1::bigint WHERE id = $2::bigint",
		[DB_PG_WORKER_LAST_SEEN] =
			"UPDATE workers SET last_seen = $1::float8 WHERE id = $2::bigint",
	};
	struct pgw w = {0};
	if (col == DB_PG_WORKER_LAST_SEEN)
		pgw_f64(&w, v);
	else if (col == DB_PG_WORKER_MASTER && v == 0)
		pgw_text(&w, NULL);
	else
		pgw_i64(&w, (int64_t)v);
	pgw_i64(&w, workerid);
	return db_pg_write(db, sql[col], &w);
}

/* Rows already there stay, the others go; a worker, master or builder that
 * is not there adds nothing (a foreign key refused would fail the whole
 * transaction). */
/* ids as a PostgreSQL array literal "{1,2,3}" in b (released by the
 * caller); -ENOBUFS past its cap (which ids of this size cannot reach). */
int pgw_id_array(struct db *db, struct buf *b, const int64_t *ids, size_t n)
{
	buf_init(b, 32 + n * 24);
	int r = buf_addch(b, '{');
	for (size_t i = 0; i < n && r >= 0; i++)
		r = buf_addf(b, "%s%" PRId64, i ? "," : "", ids[i]);
	if (r >= 0)
		r = buf_addch(b, '}');
	if (r >= 0)
		r = buf_addch(b, '\0');
	return r < 0 ? db_failf(db, -ENOBUFS, "id list too long") : 0;
}

int db_pg_worker_set_configured(struct db *db, int64_t workerid, int64_t masterid,
				const int64_t *builderids, size_t n)
{
	struct buf list;
	int r = pgw_id_array(db, &list, builderids, n);
	if (r < 0) {
		buf_release(&list);
		return r;
	}
	struct pgw w = {0};
	pgw_i64(&w, workerid);
	pgw_i64(&w, masterid);
	pgw_text(&w, list.ptr);
	r = db_pg_write(db,
			"INSERT INTO configured_workers (workerid, masterid, builderid) "
			"SELECT $1::bigint, $2::bigint, b.id FROM builders b "
			"WHERE b.id = ANY($3::bigint[]) "
			"AND EXISTS (SELECT 1 FROM workers WHERE id = $1::bigint) "
			"AND EXISTS (SELECT 1 FROM masters WHERE id = $2::bigint) "
			"ON CONFLICT DO NOTHING",
			&w);
	if (r == 0) {
		struct pgw d = {0};
		pgw_i64(&d, workerid);
		pgw_i64(&d, masterid);
		pgw_text(&d, list.ptr);
		r = db_pg_write(db,
				"DELETE FROM configured_workers WHERE workerid = $1::bigint AND "
				"masterid = $2::bigint AND NOT (builderid = ANY($3::bigint[]))",
				&d);
	}
	buf_release(&list);
	return r;
}

/* --- masters, builders, requests, state ----------------------------------------------- */

int db_pg_master_set_active(struct db *db, int64_t masterid, bool active, double when)
{
	struct pgw w = {0};
	pgw_i64(&w, active);
	pgw_f64(&w, when);
	pgw_i64(&w, masterid);
	return db_pg_write(db,
			   "UPDATE masters SET active = $1::bigint, last_active = $2::float8 "
			   "WHERE id = $3::bigint",
			   &w);
}

/* As SQLite's: the master's unfinished builds end with results (their
 * steps too, their logs complete as they are), its claims are released and
 * its workers disconnected, in the turn's transaction. */
int db_pg_master_recover(struct db *db, int64_t masterid, int results, const char *state_string,
			 double when)
{
	static const char *const sql[] = {
		[0] = "UPDATE logs SET complete = 1 WHERE complete = 0 AND stepid IN (SELECT st.id "
		      "FROM "
		      "steps st JOIN builds b ON b.id = st.buildid WHERE b.masterid = $1::bigint "
		      "AND "
		      "b.complete = 0)",
		[1] = "UPDATE steps SET complete = 1, complete_at = $2::float8, results = "
		      "$3::bigint "
		      "WHERE complete = 0 AND buildid IN (SELECT id FROM builds WHERE masterid = "
		      "$1::bigint AND complete = 0)",
		[2] = "UPDATE builds SET complete = 1, complete_at = $2::float8, results = "
		      "$3::bigint, "
		      "state_string = COALESCE($4, state_string) WHERE masterid = $1::bigint AND "
		      "complete = 0",
		[3] = "UPDATE buildrequests SET claimed_at = NULL, claimed_by_masterid = NULL "
		      "WHERE "
		      "claimed_by_masterid = $1::bigint AND complete = 0",
		[4] = "UPDATE workers SET masterid = NULL WHERE masterid = $1::bigint",
	};
	int r = 0;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && r == 0; i++) {
		struct pgw w = {0};
		pgw_i64(&w, masterid);
		if (i == 1 || i == 2) {
			pgw_f64(&w, when);
			pgw_i64(&w, results);
		}
		if (i == 2)
			pgw_text(&w, state_string);
		r = db_pg_write(db, sql[i], &w);
	}
	return r;
}

struct pg_reap {
	db_masters_dead_fn done;
	void *arg;
};

static void pg_reaped(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_reap *c = arg;
	if (r < 0) {
		c->done(c->arg, r, NULL, 0, err ? err : "failed");
		free(c);
		return;
	}
	size_t n = (size_t)PQntuples(res);
	struct db_master_dead *v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = (struct db_master_dead){.masterid = pg_col_i64(res, (int)i, 0),
					       .name = PQgetvalue(res, (int)i, 1),
					       .builds = pg_col_i64(res, (int)i, 2),
					       .requests = pg_col_i64(res, (int)i, 3)};
	c->done(c->arg, 0, v, n, NULL);
	free(v);
	free(c);
}

/* One statement: the masters found dead are marked inactive and recovered
 * (their logs, steps and builds ended, their claims released, their
 * workers disconnected) in the turn's transaction.  A row another master
 * is reaping is passed over (SKIP LOCKED); the sibling updates all see the
 * rows as they were, and each row is changed by one of them only. */
int db_pg_masters_reap(struct db *db, int64_t self, double older_than, double now,
		       db_masters_dead_fn done, void *arg)
{
	struct pgw w = {0};
	pgw_i64(&w, self);
	pgw_f64(&w, older_than);
	pgw_f64(&w, now);
	pgw_i64(&w, RESULTS_RETRY);
	struct pg_query q = {
		.sql = "WITH dead AS (UPDATE masters SET active = 0 WHERE id IN (SELECT id FROM "
		       "masters WHERE active = 1 AND id <> $1::bigint AND last_active < $2::float8 "
		       "FOR UPDATE SKIP LOCKED) AND active = 1 RETURNING id, name), "
		       "l AS (UPDATE logs SET complete = 1 WHERE complete = 0 AND stepid IN "
		       "(SELECT "
		       "st.id FROM steps st JOIN builds b ON b.id = st.buildid WHERE b.masterid IN "
		       "(SELECT id FROM dead) AND b.complete = 0)), "
		       "s AS (UPDATE steps SET complete = 1, complete_at = $3::float8, results = "
		       "$4::bigint WHERE complete = 0 AND buildid IN (SELECT id FROM builds WHERE "
		       "masterid IN (SELECT id FROM dead) AND complete = 0)), "
		       "b AS (UPDATE builds x SET complete = 1, complete_at = $3::float8, results "
		       "= "
		       "$4::bigint, state_string = 'interrupted: master ' || d.name || ' stopped "
		       "heartbeating' FROM dead d WHERE x.masterid = d.id AND x.complete = 0 "
		       "RETURNING x.masterid), "
		       "r AS (UPDATE buildrequests SET claimed_at = NULL, claimed_by_masterid = "
		       "NULL "
		       "WHERE claimed_by_masterid IN (SELECT id FROM dead) AND complete = 0), "
		       "w AS (UPDATE workers SET masterid = NULL WHERE masterid IN (SELECT id FROM "
		       "dead)) "
		       "SELECT d.id, d.name, (SELECT count(*) FROM b WHERE b.masterid = d.id), "
		       "(SELECT count(*) FROM buildrequests q WHERE q.claimed_by_masterid = d.id "
		       "AND "
		       "q.complete = 0) FROM dead d ORDER BY d.id",
		.nparams = w.n,
		.values = w.v};
	struct pg_reap *c = xmalloc(sizeof(*c));
	*c = (struct pg_reap){.done = done, .arg = arg};
	return db_pg_write_returning(db, &q, pg_reaped, c);
}

int db_pg_builder_set_masters(struct db *db, int64_t builderid, const int64_t *masterids, size_t n)
{
	struct buf list;
	int r = pgw_id_array(db, &list, masterids, n);
	if (r == 0) {
		struct pgw d = {0};
		pgw_i64(&d, builderid);
		pgw_text(&d, list.ptr);
		r = db_pg_write(db,
				"DELETE FROM builder_masters WHERE builderid = $1::bigint AND "
				"NOT (masterid = ANY($2::bigint[]))",
				&d);
	}
	if (r == 0) {
		struct pgw w = {0};
		pgw_i64(&w, builderid);
		pgw_text(&w, list.ptr);
		r = db_pg_write(
			db,
			"INSERT INTO builder_masters (builderid, masterid) "
			"SELECT $1::bigint, m.id FROM masters m WHERE m.id = ANY($2::bigint[]) "
			"AND EXISTS (SELECT 1 FROM builders WHERE id = $1::bigint) "
			"ON CONFLICT DO NOTHING",
			&w);
	}
	buf_release(&list);
	return r;
}

int db_pg_request_unclaim(struct db *db, int64_t brid)
{
	struct pgw w = {0};
	pgw_i64(&w, brid);
	return db_pg_write(db,
			   "UPDATE buildrequests SET claimed_at = NULL, claimed_by_masterid = NULL "
			   "WHERE id = $1::bigint AND complete = 0",
			   &w);
}

int db_pg_request_set_collapsed(struct db *db, int64_t brid, int64_t buildid)
{
	struct pgw w = {0};
	pgw_i64(&w, brid);
	if (buildid)
		pgw_i64(&w, buildid);
	else
		pgw_text(&w, NULL);
	return db_pg_write(db,
			   "UPDATE buildrequests SET collapsed_into = (SELECT id FROM builds "
			   "WHERE id = $2::bigint) WHERE id = $1::bigint",
			   &w);
}

int db_pg_state_set(struct db *db, const char *name, const char *value_json)
{
	struct pgw w = {0};
	pgw_text(&w, name);
	pgw_text(&w, value_json);
	return db_pg_write(db,
			   "INSERT INTO object_state (name, value) VALUES ($1, $2) "
			   "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
			   &w);
}

/* --- users, reporters' queue, pushes -------------------------------------------------- */

int db_pg_user_set_roles(struct db *db, int64_t uid, const char *roles)
{
	struct pgw w = {0};
	pgw_i64(&w, uid);
	pgw_text(&w, roles && *roles ? roles : NULL);
	return db_pg_write(db, "UPDATE users SET roles = $2 WHERE id = $1::bigint", &w);
}

int db_pg_outbound_delete(struct db *db, int64_t id)
{
	struct pgw w = {0};
	pgw_i64(&w, id);
	return db_pg_write(db, "DELETE FROM outbound WHERE id = $1::bigint", &w);
}

int db_pg_outbound_retry(struct db *db, int64_t id, int64_t next_at)
{
	struct pgw w = {0};
	pgw_i64(&w, id);
	pgw_i64(&w, next_at);
	return db_pg_write(db,
			   "UPDATE outbound SET attempts = attempts + 1, next_at = $2::bigint "
			   "WHERE id = $1::bigint",
			   &w);
}

int db_pg_outbound_forget(struct db *db, const char *reporter, const char *skey, const char *state)
{
	struct pgw w = {0};
	pgw_text(&w, reporter);
	pgw_text(&w, skey);
	pgw_text(&w, state);
	return db_pg_write(db,
			   "DELETE FROM outbound_last WHERE reporter = $1 AND skey = $2 AND "
			   "state = $3",
			   &w);
}

int db_pg_push_update(struct db *db, int64_t id, int64_t nsteps, int results, bool finished,
		      double now)
{
	struct pgw w = {0};
	pgw_i64(&w, id);
	pgw_i64(&w, nsteps);
	if (results >= 0)
		pgw_i64(&w, results);
	else
		pgw_text(&w, NULL);
	pgw_i64(&w, finished);
	pgw_f64(&w, now);
	return db_pg_write(
		db,
		"UPDATE push_submissions SET nsteps = $2::bigint, results = $3::bigint, "
		"finished = $4::bigint, updated_at = $5::float8, finished_at = CASE WHEN "
		"$4::bigint <> 0 THEN $5::float8 END, update_hash = CASE WHEN "
		"$4::bigint <> 0 THEN NULL ELSE update_hash END WHERE id = $1::bigint",
		&w);
}

int db_pg_push_expected_set(struct db *db, const char *package, const char *host, double last,
			    int quiet)
{
	struct pgw w = {0};
	pgw_text(&w, package);
	pgw_text(&w, host);
	if (last > 0)
		pgw_f64(&w, last);
	else
		pgw_text(&w, NULL);
	pgw_i64(&w, quiet);
	return db_pg_write(db,
			   "INSERT INTO push_expected (package, host, last_push, quiet) VALUES "
			   "($1, $2, $3::float8, $4::bigint) ON CONFLICT (package, host) DO UPDATE "
			   "SET last_push = excluded.last_push, quiet = excluded.quiet",
			   &w);
}

/* --- numbers, test result sets, buildsets' changes and patches ------------------------ */

/* One number, if buildid is a build of builderid (else nothing; SQLite
 * answers KILN_ENOTFOUND); a step that is not there is recorded as none. */
int db_pg_number_record(struct db *db, int64_t builderid, int64_t buildid, int64_t stepid,
			const char *name, double value, double when)
{
	struct pgw w = {0};
	pgw_i64(&w, builderid);
	pgw_i64(&w, buildid);
	pgw_i64(&w, stepid);
	pgw_text(&w, name);
	pgw_f64(&w, value);
	pgw_f64(&w, when);
	return db_pg_write(
		db,
		"INSERT INTO numbers (builderid, buildid, stepid, name, value, "
		"recorded_at) SELECT $1::bigint, $2::bigint, (SELECT id FROM steps WHERE "
		"id = $3::bigint), $4, $5::float8, $6::float8 WHERE EXISTS (SELECT 1 FROM "
		"builds WHERE id = $2::bigint AND builderid = $1::bigint)",
		&w);
}

int db_pg_test_result_set_complete(struct db *db, int64_t setid, int64_t passed, int64_t failed,
				   int64_t skipped)
{
	struct pgw w = {0};
	pgw_i64(&w, setid);
	pgw_i64(&w, passed);
	pgw_i64(&w, failed);
	pgw_i64(&w, skipped);
	return db_pg_write(db,
			   "UPDATE test_result_sets SET complete = 1, tests_passed = $2::bigint, "
			   "tests_failed = $3::bigint, tests_skipped = $4::bigint "
			   "WHERE id = $1::bigint AND complete = 0",
			   &w);
}

int db_pg_buildset_add_changes(struct db *db, int64_t bsid, const int64_t *changeids, size_t n)
{
	struct buf list;
	int r = pgw_id_array(db, &list, changeids, n);
	if (r == 0) {
		struct pgw w = {0};
		pgw_i64(&w, bsid);
		pgw_text(&w, list.ptr);
		r = db_pg_write(
			db,
			"INSERT INTO buildset_changes (buildsetid, changeid) "
			"SELECT $1::bigint, c.id FROM changes c WHERE c.id = ANY($2::bigint[]) "
			"AND EXISTS (SELECT 1 FROM buildsets WHERE id = $1::bigint) "
			"ORDER BY c.id ON CONFLICT DO NOTHING",
			&w);
	}
	buf_release(&list);
	return r;
}

/* The patch and its sourcestamp in one statement (no id needed back). */
int db_pg_buildset_set_patch(struct db *db, int64_t bsid, const struct db_patch *p)
{
	struct pgw w = {0};
	pgw_i64(&w, bsid);
	pgw_i64(&w, p->level);
	pgw_blob(&w, p->body ? p->body : "", p->len);
	pgw_text(&w, p->subdir);
	pgw_text(&w, p->author);
	pgw_text(&w, p->comment);
	pgw_text(&w, p->codebase ? p->codebase : "");
	return db_pg_write(
		db,
		"WITH p AS (INSERT INTO patches (patchlevel, body, subdir, "
		"patch_author, patch_comment) SELECT $2::bigint, $3::bytea, $4, $5, $6 "
		"WHERE EXISTS (SELECT 1 FROM buildset_sourcestamps x JOIN sourcestamps ss "
		"ON ss.id = x.sourcestampid WHERE x.buildsetid = $1::bigint AND "
		"ss.codebase = $7) RETURNING id) "
		"UPDATE sourcestamps SET patchid = (SELECT id FROM p) WHERE codebase = $7 "
		"AND id IN (SELECT sourcestampid FROM buildset_sourcestamps WHERE "
		"buildsetid = $1::bigint) AND EXISTS (SELECT 1 FROM p)",
		&w);
}

/* --- the builds this master runs: their steps' numbers and names, their logs' ---------- */

/* What SQLite reads from the rows at once and PostgreSQL cannot: the next
 * step number of a build and the names its steps took, the names and
 * slugs of a step's logs.  Only this master writes the steps of a build it
 * runs, so it keeps them from the build's creation (db_build_add_async) to
 * its finish. */
struct pg_run_step {
	int64_t stepid;
	char **logs; /* names and slugs taken, owned */
	size_t nlogs;
};

struct pg_run {
	struct pg_run *next;
	int64_t buildid, next_number;
	char **names; /* the steps' names, owned */
	size_t nnames;
	struct pg_run_step *steps;
	size_t nsteps;
};

static struct pg_run **db_pg_runs(struct db *db)
{
	return db_pg_runs_head(db);
}

static struct pg_run *pg_run_find(struct db *db, int64_t buildid)
{
	for (struct pg_run *r = *db_pg_runs(db); r; r = r->next)
		if (r->buildid == buildid)
			return r;
	return NULL;
}

static struct pg_run_step *pg_run_step_find(struct db *db, int64_t stepid)
{
	for (struct pg_run *r = *db_pg_runs(db); r; r = r->next)
		for (size_t i = 0; i < r->nsteps; i++)
			if (r->steps[i].stepid == stepid)
				return &r->steps[i];
	return NULL;
}

static bool pg_names_have(char *const *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], name))
			return true;
	return false;
}

static void pg_run_free(struct pg_run *r)
{
	for (size_t i = 0; i < r->nnames; i++)
		free(r->names[i]);
	free(r->names);
	for (size_t i = 0; i < r->nsteps; i++) {
		for (size_t k = 0; k < r->steps[i].nlogs; k++)
			free(r->steps[i].logs[k]);
		free(r->steps[i].logs);
	}
	free(r->steps);
	free(r);
}

void db_pg_runs_free(struct db *db)
{
	struct pg_run **head = db_pg_runs(db);
	while (*head) {
		struct pg_run *r = *head;
		*head = r->next;
		pg_run_free(r);
	}
}

/* The build finished: forget it. */
static void pg_run_forget(struct db *db, int64_t buildid)
{
	for (struct pg_run **pp = db_pg_runs(db); *pp; pp = &(*pp)->next)
		if ((*pp)->buildid == buildid) {
			struct pg_run *r = *pp;
			*pp = r->next;
			pg_run_free(r);
			return;
		}
}

struct pg_build_add {
	db_build_added_fn done;
	void *arg;
	int64_t buildid;
};

static void pg_build_added(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_build_add *a = arg;
	int64_t number = 0;
	if (r == 0 && PQntuples(res) == 1)
		number = pg_col_i64(res, 0, 0);
	else if (r == 0)
		r = KILN_ENOTFOUND, err = "no such builder";
	a->done(a->arg, r, r == 0 ? a->buildid : 0, number, r < 0 ? err : NULL);
	free(a);
}

/* The builder's row locked first (a statement of its own, so that the
 * number's MAX, read by the next one, sees the builds other masters
 * committed meanwhile), then the build numbered after the highest.
 * Without done the id goes to *ret_buildid at once and the number is not
 * read back (a pushed build: db_build_add). */
int db_pg_build_add(struct db *db, int64_t builderid, int64_t brid, int64_t workerid,
		    int64_t masterid, double started_at, db_build_added_fn done, void *arg,
		    int64_t *ret_buildid)
{
	static const char sql[] =
		"INSERT INTO builds (id, number, builderid, buildrequestid, workerid, "
		"masterid, started_at, state_string) SELECT $1::bigint, "
		"COALESCE(MAX(number), 0) + 1, $2::bigint, $3::bigint, $4::bigint, "
		"$5::bigint, $6::float8, 'created' FROM builds WHERE builderid = $2::bigint "
		"RETURNING number";
	int64_t id;
	int r = db_pg_next_id(db, DB_PG_BUILDS, &id);
	if (r < 0)
		return r;
	struct pgw l = {0};
	pgw_i64(&l, builderid);
	r = db_pg_write(db, "SELECT 1 FROM builders WHERE id = $1::bigint FOR NO KEY UPDATE", &l);
	if (r < 0)
		return r;
	struct pgw w = {0};
	pgw_i64(&w, id);
	pgw_i64(&w, builderid);
	if (brid)
		pgw_i64(&w, brid);
	else
		pgw_text(&w, NULL);
	if (workerid)
		pgw_i64(&w, workerid);
	else
		pgw_text(&w, NULL);
	pgw_i64(&w, masterid);
	pgw_f64(&w, started_at);
	if (done) {
		struct pg_query q = {.sql = sql, .nparams = w.n, .values = w.v};
		struct pg_build_add *a = xmalloc(sizeof(*a));
		*a = (struct pg_build_add){.done = done, .arg = arg, .buildid = id};
		r = db_pg_write_returning(db, &q, pg_build_added, a);
	} else {
		r = db_pg_write(db, sql, &w); /* its row is not wanted */
	}
	if (r < 0)
		return r;
	struct pg_run *run = xcalloc(1, sizeof(*run));
	run->buildid = id;
	run->next = *db_pg_runs(db);
	*db_pg_runs(db) = run;
	if (ret_buildid)
		*ret_buildid = id;
	return 0;
}

int db_pg_build_forget(struct db *db, int64_t buildid)
{
	pg_run_forget(db, buildid);
	return 0;
}

/* As SQLite's: a name the build has already gets the first free "_N". */
int db_pg_step_begin(struct db *db, int64_t buildid, const char *name, double when,
		     const char *state_string, int64_t *ret_stepid, int64_t *ret_number)
{
	struct pg_run *run = pg_run_find(db, buildid);
	if (!run)
		return db_failf(db, KILN_ESTATE, "build %lld is not one this master runs",
				(long long)buildid);
	int64_t id;
	int r = db_pg_next_id(db, DB_PG_STEPS, &id);
	if (r < 0)
		return r;
	char *unique = xstrdup(name);
	for (int i = 1; pg_names_have(run->names, run->nnames, unique); i++) {
		free(unique);
		unique = xasprintf("%s_%d", name, i);
	}
	struct pgw w = {0};
	pgw_i64(&w, id);
	pgw_i64(&w, run->next_number);
	pgw_text(&w, unique);
	pgw_i64(&w, buildid);
	if (when > 0)
		pgw_f64(&w, when);
	else
		pgw_text(&w, NULL);
	pgw_text(&w, state_string ? state_string : "");
	r = db_pg_write(db,
			"INSERT INTO steps (id, number, name, buildid, started_at, state_string) "
			"VALUES ($1::bigint, $2::bigint, $3, $4::bigint, $5::float8, $6)",
			&w);
	if (r < 0) {
		free(unique);
		return r;
	}
	run->names = xreallocarray(run->names, run->nnames + 1, sizeof(*run->names));
	run->names[run->nnames++] = unique;
	run->steps = xreallocarray(run->steps, run->nsteps + 1, sizeof(*run->steps));
	run->steps[run->nsteps++] = (struct pg_run_step){.stepid = id};
	*ret_stepid = id;
	if (ret_number) /* optional, as on SQLite */
		*ret_number = run->next_number;
	run->next_number++;
	return 0;
}

int db_pg_log_add(struct db *db, int64_t stepid, const char *name, const char *slug, char type,
		  int64_t *ret_logid)
{
	struct pg_run_step *st = pg_run_step_find(db, stepid);
	if (!st)
		return db_failf(db, KILN_ESTATE, "step %lld is not one this master runs",
				(long long)stepid);
	/* UNIQUE (stepid, name) and UNIQUE (stepid, slug), checked here: a
	 * refused INSERT would fail the whole transaction */
	char nkey[2048], skey[2048];
	snprintf(nkey, sizeof(nkey), "n:%s", name);
	snprintf(skey, sizeof(skey), "s:%s", slug);
	if (pg_names_have(st->logs, st->nlogs, nkey) || pg_names_have(st->logs, st->nlogs, skey))
		return db_failf(db, -EEXIST, "step %lld already has a log '%s'", (long long)stepid,
				name);
	int64_t id;
	int r = db_pg_next_id(db, DB_PG_LOGS, &id);
	if (r < 0)
		return r;
	char ty[2] = {type, 0};
	struct pgw w = {0};
	pgw_i64(&w, id);
	pgw_text(&w, name);
	pgw_text(&w, slug);
	pgw_i64(&w, stepid);
	pgw_text(&w, ty);
	r = db_pg_write(db,
			"INSERT INTO logs (id, name, slug, stepid, type) "
			"VALUES ($1::bigint, $2, $3, $4::bigint, $5)",
			&w);
	if (r < 0)
		return r;
	st->logs = xreallocarray(st->logs, st->nlogs + 2, sizeof(*st->logs));
	st->logs[st->nlogs++] = xstrdup(nkey);
	st->logs[st->nlogs++] = xstrdup(skey);
	*ret_logid = id;
	return 0;
}

/* --- test result sets, artifacts ----------------------------------------------------- */

/* Added only for a step of that build of that builder (SQLite answers
 * KILN_ENOTFOUND otherwise; here the id names no row, and the results
 * added to it are not stored either). */
/* s as a JSON string, each byte that starts no valid UTF-8 sequence as
 * U+FFFD (as pgw_text stores text). */
static json_t *pg_json_text(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	struct buf b;
	size_t n = strlen(s);
	buf_init(&b, 3 * n + 1);
	if (str_utf8_sanitize(&b, s, n) == 0 && buf_addch(&b, '\0') == 0)
		j = json_string(b.ptr);
	buf_release(&b);
	return j ? j : json_string("");
}

/* Test results per statement: a suite of any size stays far below the
 * batch's caps. */
#define PG_TESTS_PER_STMT 2000

/* As SQLite's: names and code paths stored once per builder (new ones in
 * the order they first come; a known one takes no identity value), then
 * the results in order; nothing when the
 * set is complete or missing (a no-op, as the other writes here).  The
 * results go as one JSON parameter per PG_TESTS_PER_STMT. */
int db_pg_test_results_add(struct db *db, int64_t setid, const struct db_test_result *v, size_t n,
			   const char *(*value_of)(const struct db_test_result *))
{
	for (size_t at = 0; at < n; at += PG_TESTS_PER_STMT) {
		size_t m = n - at < PG_TESTS_PER_STMT ? n - at : PG_TESTS_PER_STMT;
		json_t *a = json_array();
		for (size_t i = 0; i < m; i++) {
			const struct db_test_result *t = &v[at + i];
			json_t *o = json_pack("{s:I}", "o", (json_int_t)i);
			if (t->test_name)
				json_object_set_new(o, "name", pg_json_text(t->test_name));
			if (t->test_code_path)
				json_object_set_new(o, "path", pg_json_text(t->test_code_path));
			if (t->line > 0)
				json_object_set_new(o, "line", json_integer(t->line));
			if (t->duration_ns >= 0)
				json_object_set_new(o, "dur", json_integer(t->duration_ns));
			json_object_set_new(o, "value", pg_json_text(value_of(t)));
			json_object_set_new(o, "results", json_integer(t->results));
			if (t->message && *t->message)
				json_object_set_new(o, "message", pg_json_text(t->message));
			json_array_append_new(a, o);
		}
		char *text = json_dumps(a, JSON_COMPACT | JSON_ENSURE_ASCII);
		json_decref(a);
		if (!text)
			return db_failf(db, -EINVAL, "test results cannot be encoded");
		struct pgw w = {0};
		pgw_i64(&w, setid);
		pgw_text(&w, text);
		int r = db_pg_write(
			db,
			"WITH s AS (SELECT builderid FROM test_result_sets WHERE id = $1::bigint "
			"AND "
			"complete = 0), "
			"j AS (SELECT * FROM json_to_recordset($2::json) AS x(o bigint, name text, "
			"path text, line bigint, dur bigint, value text, results bigint, message "
			"text)), "
			"nn AS (INSERT INTO test_names (builderid, name) SELECT s.builderid, "
			"x.name "
			"FROM s, (SELECT name, min(o) AS o FROM j WHERE name IS NOT NULL GROUP BY "
			"name) x WHERE NOT EXISTS (SELECT 1 FROM test_names t WHERE t.builderid = "
			"s.builderid AND t.name = x.name) ORDER BY x.o ON CONFLICT (builderid, "
			"name) "
			"DO NOTHING RETURNING id, name), "
			"np AS (INSERT INTO test_code_paths (builderid, path) SELECT s.builderid, "
			"x.path FROM s, (SELECT path, min(o) AS o FROM j WHERE path IS NOT NULL "
			"GROUP "
			"BY path) x WHERE NOT EXISTS (SELECT 1 FROM test_code_paths t WHERE "
			"t.builderid = s.builderid AND t.path = x.path) ORDER BY x.o ON CONFLICT "
			"(builderid, path) DO NOTHING RETURNING id, path) "
			"INSERT INTO test_results (builderid, test_result_setid, test_nameid, "
			"test_code_pathid, line, duration_ns, value, results, message) "
			"SELECT s.builderid, $1::bigint, COALESCE(nn.id, tn.id), COALESCE(np.id, "
			"tp.id), j.line, j.dur, j.value, j.results, j.message FROM s CROSS JOIN j "
			"LEFT JOIN nn ON nn.name = j.name LEFT JOIN test_names tn ON tn.builderid "
			"= "
			"s.builderid AND tn.name = j.name LEFT JOIN np ON np.path = j.path LEFT "
			"JOIN "
			"test_code_paths tp ON tp.builderid = s.builderid AND tp.path = j.path "
			"ORDER "
			"BY j.o",
			&w);
		free(text);
		if (r < 0)
			return r;
	}
	return 0;
}

int db_pg_test_result_set_add(struct db *db, const struct db_test_result_set_new *n,
			      int64_t *ret_setid)
{
	int64_t id;
	int r = db_pg_next_id(db, DB_PG_TEST_SETS, &id);
	if (r < 0)
		return r;
	struct pgw w = {0};
	pgw_i64(&w, id);
	pgw_i64(&w, n->builderid);
	pgw_i64(&w, n->buildid);
	pgw_i64(&w, n->stepid);
	pgw_text(&w, n->description);
	pgw_text(&w, n->category ? n->category : "pass_fail");
	pgw_text(&w, n->value_unit ? n->value_unit : "boolean");
	r = db_pg_write(
		db,
		"INSERT INTO test_result_sets (id, builderid, buildid, stepid, description, "
		"category, value_unit, complete) SELECT $1::bigint, $2::bigint, $3::bigint, "
		"$4::bigint, $5, $6, $7, 0 WHERE EXISTS (SELECT 1 FROM steps s JOIN builds b "
		"ON b.id = s.buildid WHERE s.id = $4::bigint AND b.id = $3::bigint AND "
		"b.builderid = $2::bigint)",
		&w);
	if (r == 0)
		*ret_setid = id;
	return r;
}

/* Added only for a build that is there; a step that is not is none. */
int db_pg_artifact_add(struct db *db, const struct db_artifact *a, int64_t *ret_artifactid)
{
	int64_t id;
	int r = db_pg_next_id(db, DB_PG_ARTIFACTS, &id);
	if (r < 0)
		return r;
	struct pgw w = {0};
	pgw_i64(&w, id);
	pgw_i64(&w, a->buildid);
	pgw_i64(&w, a->stepid);
	pgw_text(&w, a->name);
	pgw_text(&w, a->path);
	pgw_i64(&w, a->size);
	pgw_text(&w, a->sha256);
	pgw_f64(&w, a->created_at);
	pgw_text(&w, a->dir);
	r = db_pg_write(
		db,
		"INSERT INTO artifacts (id, buildid, stepid, name, path, size, sha256, "
		"created_at, dir) SELECT $1::bigint, $2::bigint, (SELECT id FROM steps WHERE "
		"id = $3::bigint), $4, $5, $6::bigint, $7, $8::float8, $9 "
		"WHERE EXISTS (SELECT 1 FROM builds WHERE id = $2::bigint)",
		&w);
	if (r == 0 && ret_artifactid)
		*ret_artifactid = id;
	return r;
}

/* --- buildsets ------------------------------------------------------------------------ */

/* As SQLite's: the buildset, its sourcestamps in codebase order, a request
 * per builder.  A parent build that is not there is none; a builder that
 * is not there gets no request (its id names no row). */
int db_pg_buildset_add(struct db *db, const struct db_buildset_new *bs, const char *props,
		       const int64_t *builderids, size_t n, int64_t *ret_bsid, int64_t *ret_brids)
{
	/* every id first: a reserve found empty then leaves no part written */
	int64_t bsid, *ids = xcalloc(bs->nsourcestamps + n + 1, sizeof(*ids));
	int64_t *ssids = ids, *brids = ids + bs->nsourcestamps;
	int r = db_pg_next_id(db, DB_PG_BUILDSETS, &bsid);
	for (size_t i = 0; r == 0 && i < bs->nsourcestamps; i++)
		r = db_pg_next_id(db, DB_PG_SOURCESTAMPS, &ssids[i]);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = db_pg_next_id(db, DB_PG_REQUESTS, &brids[i]);
	if (r < 0) {
		free(ids);
		return r;
	}
	struct pgw w = {0};
	pgw_i64(&w, bsid);
	pgw_text(&w, bs->external_idstring);
	pgw_text(&w, bs->reason ? bs->reason : "");
	pgw_text(&w, bs->scheduler);
	pgw_f64(&w, bs->submitted_at);
	pgw_i64(&w, bs->parent_buildid);
	pgw_text(&w, props);
	r = db_pg_write(db,
			"INSERT INTO buildsets (id, external_idstring, reason, scheduler, "
			"submitted_at, parent_buildid, properties) VALUES ($1::bigint, $2, $3, $4, "
			"$5::float8, (SELECT id FROM builds WHERE id = $6::bigint), $7)",
			&w);
	const struct db_sourcestamp **order = db_buildset_ss_order(bs);
	for (size_t i = 0; r == 0 && i < bs->nsourcestamps; i++) {
		const struct db_sourcestamp *ss = order[i];
		struct pgw s = {0};
		pgw_i64(&s, ssids[i]);
		pgw_text(&s, ss->branch);
		pgw_text(&s, ss->revision);
		pgw_text(&s, ss->repository ? ss->repository : "");
		pgw_text(&s, ss->project ? ss->project : "");
		pgw_text(&s, ss->codebase ? ss->codebase : "");
		pgw_f64(&s, bs->submitted_at);
		pgw_i64(&s, bsid);
		r = db_pg_write(
			db,
			"WITH ss AS (INSERT INTO sourcestamps (id, branch, revision, "
			"repository, project, codebase, created_at) VALUES ($1::bigint, $2, "
			"$3, $4, $5, $6, $7::float8) RETURNING id) INSERT INTO "
			"buildset_sourcestamps (buildsetid, sourcestampid) SELECT $8::bigint, "
			"id FROM ss",
			&s);
	}
	free(order);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct pgw q = {0};
		pgw_i64(&q, brids[i]);
		pgw_i64(&q, bsid);
		pgw_i64(&q, builderids[i]);
		pgw_i64(&q, bs->priority);
		pgw_f64(&q, bs->submitted_at);
		r = db_pg_write(
			db,
			"INSERT INTO buildrequests (id, buildsetid, builderid, priority, "
			"submitted_at) SELECT $1::bigint, $2::bigint, $3::bigint, $4::bigint, "
			"$5::float8 WHERE EXISTS (SELECT 1 FROM builders WHERE id = $3::bigint)",
			&q);
		if (r == 0 && ret_brids)
			ret_brids[i] = brids[i];
	}
	free(ids);
	if (r == 0 && ret_bsid)
		*ret_bsid = bsid;
	return r;
}

/* --- logs: the tail code of db-sqlite-log.c writes its rows here ----------------------- */

/* The tail chunk's row, by (logid, first_line): inserted or replaced. */
int db_pg_log_write_row(struct db *db, struct db_log_tail *t, const void *content, size_t len,
			bool compressed)
{
	struct pgw w = {0};
	pgw_i64(&w, t->logid);
	pgw_i64(&w, t->first_line);
	pgw_i64(&w, t->num_lines - 1);
	pgw_i64(&w, compressed);
	pgw_blob(&w, content, len);
	int r = db_pg_write(db,
			    "INSERT INTO logchunks (logid, first_line, last_line, compressed, "
			    "content) VALUES ($1::bigint, $2::bigint, $3::bigint, $4::bigint, "
			    "$5::bytea) ON CONFLICT (logid, first_line) DO UPDATE SET last_line = "
			    "excluded.last_line, compressed = excluded.compressed, content = "
			    "excluded.content",
			    &w);
	if (r == 0)
		t->rowid = 1; /* written: the next write of this chunk replaces it */
	return r;
}

int db_pg_log_write_counts(struct db *db, struct db_log_tail *t, bool complete)
{
	struct pgw w = {0};
	pgw_i64(&w, t->logid);
	pgw_i64(&w, t->num_lines);
	pgw_i64(&w, (int64_t)t->bytes);
	pgw_i64(&w, t->truncated);
	return db_pg_write(db,
			   complete ? "UPDATE logs SET num_lines = $2::bigint, bytes = $3::bigint, "
				      "truncated = $4::bigint, complete = 1 WHERE id = $1::bigint"
				    : "UPDATE logs SET num_lines = $2::bigint, bytes = $3::bigint, "
				      "truncated = $4::bigint WHERE id = $1::bigint",
			   &w);
}

/* --- upserts by name --------------------------------------------------------------------- */

struct pg_ensure {
	db_id_fn done;
	void *arg;
};

static void pg_ensured(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_ensure *e = arg;
	int64_t id = 0;
	if (r == 0 && PQntuples(res) >= 1)
		id = pg_col_i64(res, 0, 0);
	else if (r == 0) /* another master added the name in between: ask again */
		r = -EAGAIN, err = "the row was added meanwhile by another master";
	e->done(e->arg, r, id, r < 0 ? err : NULL);
	free(e);
}

/* As SQLite's: a master registered active now; a builder's description and
 * tags replaced only when they changed (its id either way); a worker's row
 * made if new. */
int db_pg_ensure(struct db *db, enum db_named kind, const char *name, const char *description,
		 const char *tags_json, db_id_fn done, void *arg)
{
	/* the row found first, inserted only when missing: an INSERT ... ON
	 * CONFLICT would take a sequence value at every call (workers are
	 * ensured at each connection) */
	static const char *const sql[] = {
		[DB_NAMED_MASTER] =
			"WITH u AS (UPDATE masters SET active = 1, last_active = $2::float8 WHERE "
			"name = $1 RETURNING id), i AS (INSERT INTO masters (name, active, "
			"last_active) SELECT $1, 1, $2::float8 WHERE NOT EXISTS (SELECT 1 FROM u) "
			"ON CONFLICT (name) DO NOTHING RETURNING id) "
			"SELECT id FROM u UNION ALL SELECT id FROM i",
		[DB_NAMED_BUILDER] =
			"WITH e AS (SELECT id, description, tags FROM builders WHERE name = $1), "
			"u AS (UPDATE builders b SET description = $2, tags = $3 FROM e WHERE "
			"b.id = e.id AND (e.description IS DISTINCT FROM $2 OR e.tags IS DISTINCT "
			"FROM $3) RETURNING b.id), i AS (INSERT INTO builders (name, description, "
			"tags) SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM e) ON CONFLICT "
			"(name) DO NOTHING RETURNING id) SELECT id FROM e UNION ALL SELECT id FROM "
			"i",
		[DB_NAMED_WORKER] =
			"WITH e AS (SELECT id FROM workers WHERE name = $1), i AS (INSERT INTO "
			"workers (name) SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM e) ON CONFLICT "
			"(name) DO NOTHING RETURNING id) SELECT id FROM e UNION ALL SELECT id FROM "
			"i",
	};
	struct pgw w = {0};
	pgw_text(&w, name);
	if (kind == DB_NAMED_MASTER) {
		pgw_f64(&w, clock_wall());
	} else if (kind == DB_NAMED_BUILDER) {
		pgw_text(&w, description);
		pgw_text(&w, tags_json ? tags_json : "[]");
	}
	struct pg_query q = {.sql = sql[kind], .nparams = w.n, .values = w.v};
	struct pg_ensure *e = xmalloc(sizeof(*e));
	*e = (struct pg_ensure){.done = done, .arg = arg};
	int r = db_pg_write_returning(db, &q, pg_ensured, e);
	for (int i = 0; i < w.n; i++)
		buf_release(&w.fixed[i]);
	return r;
}

/* --- changes ----------------------------------------------------------------------------- */

static const char *pgw_or_empty(const char *s)
{
	return s ? s : "";
}

/* As SQLite's: the change's sourcestamp, the change with its parent (the
 * latest earlier change of its line), and its author matched to a user (by
 * identity, then email, then identifier; else a new one), the identities
 * recorded, the link made: three statements of the turn's transaction. */
int db_pg_change_add(struct db *db, const struct db_change_new *c, const char *files,
		     const char *props, int64_t *ret_changeid, int64_t *ret_ssid)
{
	int64_t ssid, changeid;
	int r = db_pg_next_id(db, DB_PG_SOURCESTAMPS, &ssid);
	if (r == 0)
		r = db_pg_next_id(db, DB_PG_CHANGES, &changeid);
	if (r < 0)
		return r;
	struct pgw w = {0};
	pgw_i64(&w, ssid);
	pgw_text(&w, c->branch);
	pgw_text(&w, c->revision);
	pgw_text(&w, pgw_or_empty(c->repository));
	pgw_text(&w, pgw_or_empty(c->project));
	pgw_text(&w, pgw_or_empty(c->codebase));
	pgw_f64(&w, c->when_timestamp);
	r = db_pg_write(db,
			"INSERT INTO sourcestamps (id, branch, revision, repository, project, "
			"codebase, created_at) VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::float8)",
			&w);
	if (r < 0)
		return r;
	struct pgw x = {0};
	pgw_i64(&x, changeid);
	pgw_text(&x, pgw_or_empty(c->author));
	pgw_text(&x, c->committer);
	pgw_text(&x, pgw_or_empty(c->comments));
	pgw_text(&x, c->branch);
	pgw_text(&x, c->revision);
	pgw_text(&x, c->revlink);
	pgw_f64(&x, c->when_timestamp);
	pgw_text(&x, c->category);
	pgw_text(&x, pgw_or_empty(c->repository));
	pgw_text(&x, pgw_or_empty(c->codebase));
	pgw_text(&x, pgw_or_empty(c->project));
	pgw_text(&x, files);
	pgw_text(&x, props);
	pgw_i64(&x, ssid);
	r = db_pg_write(
		db,
		"INSERT INTO changes (id, author, committer, comments, branch, revision, revlink, "
		"when_timestamp, category, repository, codebase, project, files, properties, "
		"parent_changeid, sourcestampid) SELECT $1::bigint, $2, $3, $4, $5, $6, $7, "
		"$8::float8, $9, $10, $11, $12, $13, $14, (SELECT id FROM changes WHERE repository "
		"= $10 AND project = $12 AND codebase = $11 AND branch IS NOT DISTINCT FROM $5 "
		"ORDER BY id DESC LIMIT 1), $15::bigint",
		&x);
	if (r < 0)
		return r;
	const struct db_user_ident *u = c->user;
	if (u && u->who && *u->who) {
		struct pgw y = {0};
		pgw_i64(&y, changeid);
		pgw_text(&y, u->attr_type);
		pgw_text(&y, u->who);
		pgw_text(&y, u->full_name);
		pgw_text(&y, u->email && *u->email ? u->email : NULL);
		pgw_text(&y, u->email);
		r = db_pg_write(
			db,
			"WITH f AS (SELECT id FROM (SELECT userid AS id, 1 AS o FROM users_info "
			"WHERE attr_type = $2 AND attr_data = $3 UNION ALL SELECT userid, 2 FROM "
			"users_info WHERE attr_type = 'email' AND attr_data = $5 UNION ALL SELECT "
			"id, 3 FROM users WHERE identifier = $3) x ORDER BY o LIMIT 1), "
			"ins AS (INSERT INTO users (identifier, full_name, email) SELECT $3, $4, "
			"$6 "
			"WHERE NOT EXISTS (SELECT 1 FROM f) ON CONFLICT (identifier) DO NOTHING "
			"RETURNING id), "
			"u AS (SELECT id FROM f UNION ALL SELECT id FROM ins), "
			"i1 AS (INSERT INTO users_info (userid, attr_type, attr_data) SELECT id, "
			"$2, "
			"$3 FROM u ON CONFLICT DO NOTHING), "
			"i2 AS (INSERT INTO users_info (userid, attr_type, attr_data) SELECT id, "
			"'email', $5 FROM u WHERE $5 IS NOT NULL AND NOT ($2 = 'email' AND $3 = "
			"$5) "
			"ON CONFLICT DO NOTHING) "
			"INSERT INTO change_users (changeid, userid) SELECT $1::bigint, id FROM u "
			"ON CONFLICT DO NOTHING",
			&y);
		if (r < 0)
			return r;
	}
	*ret_changeid = changeid;
	*ret_ssid = ssid;
	return 0;
}

/* --- claims ------------------------------------------------------------------------------ */

struct pg_claim {
	db_request_fn done;
	void *arg;
	bool peek; /* db_request_next_async: read, not claimed */
};

static void pg_claimed(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_claim *c = arg;
	struct db_request q;
	bool have = r == 0 && PQntuples(res) == 1;
	if (have)
		q = (struct db_request){
			.buildrequestid = pg_col_i64(res, 0, 0),
			.buildsetid = pg_col_i64(res, 0, 1),
			.builderid = pg_col_i64(res, 0, 2),
			.priority = (int)strtol(PQgetvalue(res, 0, 3), NULL, 10),
			.submitted_at = strtod(PQgetvalue(res, 0, 4), NULL),
			.claimed = !c->peek,
			.results = (int)strtol(PQgetvalue(res, 0, 5), NULL, 10),
		};
	c->done(c->arg, r, have ? &q : NULL, r < 0 ? err : NULL);
	free(c);
}

/* The best queued request of the builder, locked with SKIP LOCKED (a row
 * another master is claiming is passed over, not waited for), claimed. */
int db_pg_request_claim_next(struct db *db, int64_t builderid, int64_t masterid, double when,
			     db_request_fn done, void *arg)
{
	struct pgw w = {0};
	pgw_i64(&w, builderid);
	pgw_id(&w, masterid);
	pgw_f64(&w, when);
	struct pg_query q = {
		.sql = "UPDATE buildrequests SET claimed_at = $3::float8, claimed_by_masterid = "
		       "$2::bigint WHERE id = (SELECT id FROM buildrequests WHERE builderid = "
		       "$1::bigint AND complete = 0 AND claimed_at IS NULL ORDER BY priority DESC, "
		       "submitted_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) AND claimed_at IS NULL "
		       "RETURNING id, buildsetid, builderid, priority, submitted_at, results",
		.nparams = w.n,
		.values = w.v};
	struct pg_claim *c = xmalloc(sizeof(*c));
	*c = (struct pg_claim){.done = done, .arg = arg};
	return db_pg_write_returning(db, &q, pg_claimed, c);
}

/* Request brid if it is still queued, claimed (a row another master is
 * claiming is passed over: none). */
int db_pg_request_claim_id(struct db *db, int64_t brid, int64_t masterid, double when,
			   db_request_fn done, void *arg)
{
	struct pgw w = {0};
	pgw_i64(&w, brid);
	pgw_id(&w, masterid);
	pgw_f64(&w, when);
	struct pg_query q = {
		.sql = "UPDATE buildrequests SET claimed_at = $3::float8, claimed_by_masterid = "
		       "$2::bigint WHERE id = (SELECT id FROM buildrequests WHERE id = $1::bigint "
		       "AND complete = 0 AND claimed_at IS NULL FOR UPDATE SKIP LOCKED) AND "
		       "claimed_at IS NULL "
		       "RETURNING id, buildsetid, builderid, priority, submitted_at, results",
		.nparams = w.n,
		.values = w.v};
	struct pg_claim *c = xmalloc(sizeof(*c));
	*c = (struct pg_claim){.done = done, .arg = arg};
	return db_pg_write_returning(db, &q, pg_claimed, c);
}

/* The best queued request of the builder, as the claim above would take
 * it (a peek: another master may claim it first). */
int db_pg_request_next(struct db *db, int64_t builderid, db_request_fn done, void *arg)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)builderid);
	const char *values[] = {id};
	struct pg_query q = {
		.sql = "SELECT id, buildsetid, builderid, priority, submitted_at, results FROM "
		       "buildrequests WHERE builderid = $1::bigint AND complete = 0 AND claimed_at "
		       "IS NULL ORDER BY priority DESC, submitted_at, id LIMIT 1",
		.nparams = 1,
		.values = values};
	struct pg_claim *c = xmalloc(sizeof(*c));
	*c = (struct pg_claim){.done = done, .arg = arg, .peek = true};
	int r = pg_batch_read(db_pg_batch(db), &q, pg_claimed, c);
	if (r < 0) {
		free(c);
		return db_failf(db, r, "cannot send the query: %s", err_str(r));
	}
	return 0;
}

struct pg_claim_many {
	db_request_lines_fn done;
	void *arg;
};

static void pg_claimed_many(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_claim_many *c = arg;
	db_pg_answer_lines(r, res, err, c->done, c->arg);
	free(c);
}

/* The listed requests still queued, locked with SKIP LOCKED, claimed; the
 * answer in the list's order. */
int db_pg_request_claim_many(struct db *db, const int64_t *ids, size_t n, int64_t masterid,
			     double when, db_request_lines_fn done, void *arg)
{
	struct buf list;
	int r = pgw_id_array(db, &list, ids, n);
	if (r < 0) {
		buf_release(&list);
		return r;
	}
	struct pgw w = {0};
	pgw_text(&w, list.ptr);
	pgw_id(&w, masterid);
	pgw_f64(&w, when);
	struct pg_query q = {
		.sql = "WITH c AS (UPDATE buildrequests SET claimed_at = $3::float8, "
		       "claimed_by_masterid = $2::bigint WHERE id IN (SELECT id FROM buildrequests "
		       "WHERE id = ANY($1::bigint[]) AND complete = 0 AND claimed_at IS NULL FOR "
		       "UPDATE SKIP LOCKED) AND claimed_at IS NULL RETURNING id, buildsetid) "
		       "SELECT id, buildsetid FROM c ORDER BY array_position($1::bigint[], id)",
		.nparams = w.n,
		.values = w.v};
	struct pg_claim_many *c = xmalloc(sizeof(*c));
	*c = (struct pg_claim_many){.done = done, .arg = arg};
	r = db_pg_write_returning(db, &q, pg_claimed_many, c);
	buf_release(&list);
	return r;
}

/* --- a request completed, and its buildset with its last one ----------------------------- */

struct pg_complete {
	struct db *db;
	int64_t brid;
	double when;
	bool changed; /* the request was incomplete until now */
	bool orphan;  /* the siblings' read was not queued: nothing else comes */
	int worst;    /* the buildset's results, once every request is complete */
	db_bsid_fn done;
	void *arg;
};

static void pg_complete_changed(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_complete *c = arg;
	(void)err;
	c->changed = r == 0 && PQntuples(res) == 1;
	if (c->orphan)
		free(c);
}

static void pg_buildset_completed(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_complete *c = arg;
	int64_t bsid = r == 0 && PQntuples(res) == 1 ? pg_col_i64(res, 0, 0) : 0;
	c->done(c->arg, r, bsid, bsid ? c->worst : RESULTS_NONE, r < 0 ? err : NULL);
	free(c);
}

/* Every request of the buildset, now: done when all are complete. */
static void pg_complete_siblings(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_complete *c = arg;
	if (r < 0 || !c->changed) { /* no siblings: no such request */
		bool none = r == 0 && PQntuples(res) == 0;
		c->done(c->arg,
			r < 0  ? r
			: none ? KILN_ENOTFOUND
			       : KILN_ESTATE,
			0, RESULTS_NONE,
			r < 0  ? err
			: none ? "no such build request"
			       : "the request was complete already");
		free(c);
		return;
	}
	int worst = RESULTS_NONE;
	int64_t bsid = 0;
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		bsid = pg_col_i64(res, i, 0);
		if (pg_col_i64(res, i, 1) == 0) {
			c->done(c->arg, 0, 0, RESULTS_NONE, NULL); /* another still runs */
			free(c);
			return;
		}
		worst = db_results_worst(worst, (int)strtol(PQgetvalue(res, i, 2), NULL, 10));
	}
	/* the one whose UPDATE changes the row reports the buildset done */
	c->worst = worst;
	struct pgw w = {0};
	pgw_i64(&w, bsid);
	pgw_f64(&w, c->when);
	pgw_i64(&w, worst);
	struct pg_query q = {.sql = "UPDATE buildsets SET complete = 1, complete_at = $2::float8, "
				    "results = $3::bigint WHERE id = $1::bigint AND complete = 0 "
				    "RETURNING id",
			     .nparams = w.n,
			     .values = w.v};
	int e = pg_batch_add_returning(db_pg_batch(c->db), &q, pg_buildset_completed, c);
	if (e < 0) {
		c->done(c->arg, e, 0, RESULTS_NONE, "cannot queue the buildset's completion");
		free(c);
	}
}

int db_pg_request_complete(struct db *db, int64_t brid, int results, double when, db_bsid_fn done,
			   void *arg)
{
	struct pgw l = {0};
	pgw_i64(&l, brid);
	int r = db_pg_write(db,
			    "SELECT 1 FROM buildsets WHERE id = (SELECT buildsetid FROM "
			    "buildrequests WHERE id = $1::bigint) FOR NO KEY UPDATE",
			    &l);
	if (r < 0)
		return r;
	struct pg_complete *c = xmalloc(sizeof(*c));
	*c = (struct pg_complete){.db = db, .brid = brid, .when = when, .done = done, .arg = arg};
	struct pgw u = {0};
	pgw_i64(&u, brid);
	pgw_f64(&u, when);
	pgw_i64(&u, results);
	struct pg_query q1 = {
		.sql = "UPDATE buildrequests SET complete = 1, complete_at = $2::float8, results = "
		       "$3::bigint, claimed_at = COALESCE(claimed_at, $2::float8) WHERE id = "
		       "$1::bigint AND complete = 0 RETURNING id",
		.nparams = u.n,
		.values = u.v};
	struct pgw s = {0};
	pgw_i64(&s, brid);
	struct pg_query q2 = {
		.sql = "SELECT buildsetid, complete, results FROM buildrequests WHERE buildsetid = "
		       "(SELECT buildsetid FROM buildrequests WHERE id = $1::bigint)",
		.nparams = s.n,
		.values = s.v};
	r = pg_batch_add_returning(db_pg_batch(db), &q1, pg_complete_changed, c);
	if (r < 0) {
		free(c);
		return db_failf(db, r, "cannot queue a write: %s", err_str(r));
	}
	r = pg_batch_add_returning(db_pg_batch(db), &q2, pg_complete_siblings, c);
	if (r < 0) {
		c->orphan = true; /* freed by the first one's answer */
		return db_failf(db, r, "cannot queue a write: %s", err_str(r));
	}
	return 0;
}
