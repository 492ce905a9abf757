/*
 * The SQLite side of masters (db.h "masters, builders, workers"): registering,
 * the active flag, and recovery after a crash or a stop (finishing the
 * master's builds, steps and logs, unclaiming its requests).
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <stdbool.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/xalloc.h"

/* --- masters -------------------------------------------------------------------- */

static int sqlite_master_register(struct db *db, const char *name, int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_MASTER_REGISTER,
		"INSERT INTO masters (name, active, last_active) VALUES (?1, 1, ?2) "
		"ON CONFLICT (name) DO UPDATE SET active = 1, last_active = excluded.last_active "
		"RETURNING id");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, name);
	sqlite3_bind_double(s, 2, clock_wall());
	int r = db_step_row(db, s, "register master");
	if (r <= 0)
		return r < 0 ? r : db_failf(db, KILN_EDB, "register master: no id returned");
	*ret = sqlite3_column_int64(s, 0);
	return 0;
}

int db_master_register(struct db *db, const char *name, int64_t *ret_masterid)
{
	if (db->pg)
		return db_pg_ensure_wait(db, DB_NAMED_MASTER, name, NULL, NULL, ret_masterid);
	int64_t id = 0;
	int r = WRITE(sqlite_master_register(db, name, &id));
	if (r >= 0)
		*ret_masterid = id;
	return r;
}

static int sqlite_master_set_active(struct db *db, int64_t masterid, bool active, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_MASTER_SET_ACTIVE,
			"UPDATE masters SET active = ?1, last_active = ?2 WHERE id = ?3");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int(s, 1, active);
	sqlite3_bind_double(s, 2, when);
	sqlite3_bind_int64(s, 3, masterid);
	return db_update_one(db, s, "master set active");
}

int db_master_set_active(struct db *db, int64_t masterid, bool active, double when)
{
	if (db->pg)
		return db_pg_master_set_active(db, masterid, active, when);
	return WRITE(sqlite_master_set_active(db, masterid, active, when));
}

static int sqlite_master_recover(struct db *db, int64_t masterid, int results,
				 const char *state_string, double when)
{
	int r;
	/* Logs first: their tails are compressed by the normal finish path. */
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_REC_LOGS,
				"SELECT l.id FROM builds b JOIN steps st ON st.buildid = b.id "
				"JOIN logs l ON l.stepid = st.id "
				"WHERE b.masterid = ?1 AND b.complete = 0 AND l.complete = 0");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, masterid);
		size_t n = 0, cap = 0;
		_cleanup_free_ int64_t *ids = NULL;
		while ((r = db_step_row(db, s, "recover logs")) == 1) {
			ARRAY_GROW(ids, n + 1, cap);
			ids[n++] = sqlite3_column_int64(s, 0);
		}
		if (r < 0)
			return r;
		sqlite3_reset(s);
		for (size_t i = 0; i < n; i++) {
			r = db_log_finish_locked(db, ids[i]);
			if (r < 0)
				return r;
		}
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_REC_STEPS,
				"UPDATE steps SET complete = 1, complete_at = ?2, results = ?3 "
				"WHERE complete = 0 AND buildid IN "
				"(SELECT id FROM builds WHERE masterid = ?1 AND complete = 0)");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, masterid);
		sqlite3_bind_double(s, 2, when);
		sqlite3_bind_int(s, 3, results);
		if ((r = db_step_done(db, s, "recover steps")) < 0)
			return r;
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_REC_BUILDS,
				"UPDATE builds SET complete = 1, complete_at = ?2, results = ?3, "
				"state_string = COALESCE(?4, state_string) WHERE masterid = ?1 AND "
				"complete = 0");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, masterid);
		sqlite3_bind_double(s, 2, when);
		sqlite3_bind_int(s, 3, results);
		db_bind_text(s, 4, state_string);
		if ((r = db_step_done(db, s, "recover builds")) < 0)
			return r;
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_REC_REQUESTS,
			"UPDATE buildrequests SET claimed_at = NULL, claimed_by_masterid = NULL "
			"WHERE claimed_by_masterid = ?1 AND complete = 0");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, masterid);
		if ((r = db_step_done(db, s, "recover requests")) < 0)
			return r;
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_REC_WORKERS,
				"UPDATE workers SET masterid = NULL WHERE masterid = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, masterid);
		if ((r = db_step_done(db, s, "recover workers")) < 0)
			return r;
	}
	return 0;
}

int db_master_recover(struct db *db, int64_t masterid, int results, const char *state_string,
		      double when)
{
	if (db->pg)
		return db_pg_master_recover(db, masterid, results, state_string, when);
	return WRITE(sqlite_master_recover(db, masterid, results, state_string, when));
}

/* db_masters_reap_async's work on SQLite, in one transaction: *ret (names
 * owned) of *ret_n. */
static int sqlite_masters_reap(struct db *db, int64_t self, double older_than, double now,
			       struct db_master_dead **ret, size_t *ret_n)
{
	struct db_master_dead *v = NULL;
	size_t n = 0, alloc = 0;
	int r;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_MASTERS_DEAD,
				"SELECT m.id, m.name, (SELECT count(*) FROM builds WHERE masterid "
				"= m.id AND "
				"complete = 0), (SELECT count(*) FROM buildrequests WHERE "
				"claimed_by_masterid = m.id AND complete = 0) FROM masters m WHERE "
				"m.active "
				"= 1 AND m.id != ?1 AND m.last_active < ?2 ORDER BY m.id");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, self);
		sqlite3_bind_double(s, 2, older_than);
		while ((r = db_step_row(db, s, "find dead masters")) == 1) {
			ARRAY_GROW(v, n + 1, alloc);
			v[n++] = (struct db_master_dead){
				.masterid = sqlite3_column_int64(s, 0),
				.name = xstrdup((const char *)sqlite3_column_text(s, 1)),
				.builds = sqlite3_column_int64(s, 2),
				.requests = sqlite3_column_int64(s, 3)};
		}
	}
	for (size_t i = 0; r >= 0 && i < n; i++) {
		char *why = xasprintf("interrupted: master %s stopped heartbeating", v[i].name);
		r = sqlite_master_set_active(db, v[i].masterid, false, now);
		if (r >= 0)
			r = sqlite_master_recover(db, v[i].masterid, RESULTS_RETRY, why, now);
		free(why);
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free((char *)v[i].name);
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int db_masters_reap(struct db *db, int64_t self, double older_than, double now,
		    struct db_master_dead **ret, size_t *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	return WRITE(sqlite_masters_reap(db, self, older_than, now, ret, ret_n));
}
