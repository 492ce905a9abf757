/*
 * The SQLite side of steps: adding one (numbered, its name unique within
 * the build), start, state string, finish, URLs.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>

#include "common/err.h"
#include "common/xalloc.h"

/* --- steps ---------------------------------------------------------------------- */

static const char sql_step_exists[] = "SELECT 1 FROM steps WHERE id = ?1";

static int sqlite_step_name_taken(struct db *db, int64_t buildid, const char *name)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_STEP_NAME_EXISTS, "SELECT 1 FROM steps WHERE buildid = ?1 AND name = ?2");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	db_bind_text(s, 2, name);
	return db_step_row(db, s, "step name");
}

/* The number the next step of buildid takes: MAX + 1, read once per build;
 * then db->step_next (forgotten at a rollback, db_txn_rollback, and at a
 * failed insert) follows the steps this connection adds, the only writer
 * of a running build's steps. */
static int sqlite_step_next_number(struct db *db, int64_t buildid, int64_t *ret)
{
	size_t slot = (uint64_t)buildid % DB_STEP_NEXT_SLOTS;
	if (db->step_next[slot].buildid == buildid) {
		*ret = db->step_next[slot].number;
		return 0;
	}
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_STEP_NEXT_NUMBER,
			"SELECT COALESCE(MAX(number) + 1, 0) FROM steps WHERE buildid = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	int r = db_step_row(db, s, "step number");
	if (r <= 0)
		return r < 0 ? r : KILN_EDB;
	*ret = sqlite3_column_int64(s, 0);
	return 0;
}

/* One INSERT: the build's existence is the foreign key's check, a name the
 * build has already is UNIQUE (buildid, name)'s.  1 if the name is taken. */
static int sqlite_step_insert(struct db *db, int64_t buildid, int64_t number, const char *name,
			      double started_at, const char *state_string, int64_t *ret_stepid)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_STEP_ADD,
			"INSERT INTO steps (number, name, buildid, started_at, state_string) "
			"VALUES (?1, ?2, ?3, ?4, ?5)");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, number);
	db_bind_text(s, 2, name);
	sqlite3_bind_int64(s, 3, buildid);
	if (started_at > 0)
		sqlite3_bind_double(s, 4, started_at);
	else
		sqlite3_bind_null(s, 4);
	db_bind_text(s, 5, state_string ? state_string : "");
	if (sqlite3_step(s) != SQLITE_DONE) {
		int e = sqlite3_extended_errcode(db->h);
		if (e == SQLITE_CONSTRAINT_FOREIGNKEY)
			return db_failf(db, KILN_ENOTFOUND, "no build %lld", (long long)buildid);
		if (e == SQLITE_CONSTRAINT_UNIQUE && sqlite_step_name_taken(db, buildid, name) == 1)
			return 1;
		return db_fail(db, "add step");
	}
	*ret_stepid = sqlite3_last_insert_rowid(db->h);
	return 0;
}

/* started_at: 0 for a step not started yet (NULL); state_string NULL: ''.
 * A name the build has already gets the first free "_N" suffix. */
static int sqlite_step_add(struct db *db, int64_t buildid, const char *name, double started_at,
			   const char *state_string, int64_t *ret_stepid, int64_t *ret_number)
{
	int64_t number;
	int r = sqlite_step_next_number(db, buildid, &number);
	if (r < 0)
		return r;
	r = sqlite_step_insert(db, buildid, number, name, started_at, state_string, ret_stepid);
	if (r == 1) {
		_cleanup_free_ char *unique = NULL;
		for (int i = 1;
		     (r = sqlite_step_name_taken(db, buildid, unique ? unique : name)) == 1; i++) {
			free(unique);
			unique = xasprintf("%s_%d", name, i);
		}
		if (r >= 0)
			r = sqlite_step_insert(db, buildid, number, unique, started_at,
					       state_string, ret_stepid);
		if (r == 1)
			r = db_failf(db, KILN_EDB, "add step: name '%s' taken", unique);
	}
	size_t slot = (uint64_t)buildid % DB_STEP_NEXT_SLOTS;
	if (r < 0) {
		if (db->step_next[slot].buildid == buildid)
			db->step_next[slot].buildid = 0;
		return r;
	}
	db->step_next[slot].buildid = buildid;
	db->step_next[slot].number = number + 1;
	*ret_number = number;
	return 0;
}

int db_step_add(struct db *db, int64_t buildid, const char *name, int64_t *ret_stepid,
		int64_t *ret_number)
{
	return db_step_begin(db, buildid, name, 0, NULL, ret_stepid, ret_number);
}

int db_step_begin(struct db *db, int64_t buildid, const char *name, double when,
		  const char *state_string, int64_t *ret_stepid, int64_t *ret_number)
{
	if (!name || !*name)
		return db_failf(db, -EINVAL, "step name is empty");
	if (db->pg)
		return db_pg_step_begin(db, buildid, name, when, state_string, ret_stepid,
					ret_number);
	int64_t id = 0, number = 0;
	int r = WRITE1(sqlite_step_add(db, buildid, name, when, state_string, &id, &number));
	if (r >= 0) {
		if (ret_stepid)
			*ret_stepid = id;
		if (ret_number)
			*ret_number = number;
	}
	return r;
}

static int sqlite_step_start(struct db *db, int64_t stepid, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_STEP_START, "UPDATE steps SET started_at = ?2 WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, stepid);
	sqlite3_bind_double(s, 2, when);
	return db_update_one(db, s, "start step");
}

int db_step_start(struct db *db, int64_t stepid, double when)
{
	if (db->pg)
		return db_pg_step_start(db, stepid, when);
	return WRITE1(sqlite_step_start(db, stepid, when));
}

static int sqlite_step_set_state(struct db *db, int64_t stepid, const char *state_string)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_STEP_SET_STATE, "UPDATE steps SET state_string = ?2 WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, stepid);
	db_bind_text(s, 2, state_string ? state_string : "");
	return db_update_one(db, s, "step state");
}

int db_step_set_state(struct db *db, int64_t stepid, const char *state_string)
{
	if (db->pg)
		return db_pg_step_set_state(db, stepid, state_string);
	return WRITE1(sqlite_step_set_state(db, stepid, state_string));
}

static int sqlite_step_finish(struct db *db, int64_t stepid, int results, const char *state_string,
			      bool hidden, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_STEP_FINISH,
			"UPDATE steps SET complete = 1, complete_at = ?2, results = ?3, "
			"state_string = COALESCE(?4, state_string), hidden = ?5 "
			"WHERE id = ?1 AND complete = 0");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, stepid);
	sqlite3_bind_double(s, 2, when);
	sqlite3_bind_int(s, 3, results);
	db_bind_text(s, 4, state_string);
	sqlite3_bind_int(s, 5, hidden);
	int r = db_step_done(db, s, "finish step");
	if (r < 0)
		return r;
	if (db_changes(db) == 0)
		return db_guard_fail(db, ST_STEP_EXISTS, sql_step_exists, stepid, KILN_ESTATE,
				     "finish step");
	return 0;
}

int db_step_finish(struct db *db, int64_t stepid, int results, const char *state_string,
		   bool hidden, double when)
{
	if (db->pg)
		return db_pg_step_finish(db, stepid, results, state_string, hidden, when);
	return WRITE1(sqlite_step_finish(db, stepid, results, state_string, hidden, when));
}

static int sqlite_step_add_url(struct db *db, int64_t stepid, const char *name, const char *url)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, ST_STEP_ADD_URL,
						 "UPDATE steps SET urls = json_insert(urls, "
						 "'$[#]', json_object('name', ?2, 'url', ?3)) "
						 "WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, stepid);
	db_bind_text(s, 2, name ? name : "");
	db_bind_text(s, 3, url ? url : "");
	return db_update_one(db, s, "step url");
}

int db_step_add_url(struct db *db, int64_t stepid, const char *name, const char *url)
{
	if (db->pg)
		return db_pg_step_add_url(db, stepid, name, url);
	return WRITE1(sqlite_step_add_url(db, stepid, name, url));
}
