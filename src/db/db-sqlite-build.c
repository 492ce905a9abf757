/*
 * The SQLite side of builds: adding one (numbered per builder), its state
 * string, finishing it, its properties.  Steps are in db-sqlite-step.c.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>

#include "common/err.h"
#include "common/xalloc.h"

/* --- builds --------------------------------------------------------------------- */

static const char sql_build_exists[] = "SELECT 1 FROM builds WHERE id = ?1";

int db_build_exists(struct db *db, int64_t buildid)
{
	return db_exists(db, ST_BUILD_EXISTS, sql_build_exists, buildid);
}

static int sqlite_build_add(struct db *db, int64_t builderid, int64_t brid, int64_t workerid,
			    int64_t masterid, double started_at, int64_t *ret_buildid,
			    int64_t *ret_number)
{
	int r;
	int64_t number;
	{
		/* MAX over the (builderid, number) unique index: one seek. */
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_BUILD_NEXT_NUMBER,
			"SELECT COALESCE(MAX(number), 0) + 1 FROM builds WHERE builderid = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, builderid);
		if ((r = db_step_row(db, s, "build number")) <= 0)
			return r < 0 ? r : KILN_EDB;
		number = sqlite3_column_int64(s, 0);
	}
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BUILD_ADD,
		"INSERT INTO builds (number, builderid, buildrequestid, workerid, masterid, "
		"started_at, state_string) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'created')");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, number);
	sqlite3_bind_int64(s, 2, builderid);
	db_bind_id(s, 3, brid);
	db_bind_id(s, 4, workerid);
	sqlite3_bind_int64(s, 5, masterid);
	sqlite3_bind_double(s, 6, started_at);
	if ((r = db_step_done(db, s, "add build")) < 0)
		return r;
	*ret_buildid = sqlite3_last_insert_rowid(db->h);
	*ret_number = number;
	return 0;
}

int db_build_add(struct db *db, int64_t builderid, int64_t brid, int64_t workerid, int64_t masterid,
		 double started_at, int64_t *ret_buildid, int64_t *ret_number)
{
	if (db->pg) {
		if (ret_number)
			return db_failf(db, -ENOTSUP,
					"db_build_add: a build's number is not available on "
					"PostgreSQL at once (db_build_add_async)");
		return db_pg_build_add(db, builderid, brid, workerid, masterid, started_at, NULL,
				       NULL, ret_buildid);
	}
	int64_t id = 0, number = 0;
	int r = WRITE(sqlite_build_add(db, builderid, brid, workerid, masterid, started_at, &id,
				       &number));
	if (r >= 0) {
		if (ret_buildid)
			*ret_buildid = id;
		if (ret_number)
			*ret_number = number;
	}
	return r;
}

static int sqlite_build_set_state(struct db *db, int64_t buildid, const char *state_string)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BUILD_SET_STATE, "UPDATE builds SET state_string = ?2 WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	db_bind_text(s, 2, state_string ? state_string : "");
	return db_update_one(db, s, "build state");
}

int db_build_set_state(struct db *db, int64_t buildid, const char *state_string)
{
	if (db->pg)
		return db_pg_build_set_state(db, buildid, state_string);
	return WRITE1(sqlite_build_set_state(db, buildid, state_string));
}

static int sqlite_build_finish(struct db *db, int64_t buildid, int results,
			       const char *state_string, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_BUILD_FINISH,
			"UPDATE builds SET complete = 1, complete_at = ?2, results = ?3, "
			"state_string = COALESCE(?4, state_string) WHERE id = ?1 AND complete = 0");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	sqlite3_bind_double(s, 2, when);
	sqlite3_bind_int(s, 3, results);
	db_bind_text(s, 4, state_string);
	int r = db_step_done(db, s, "finish build");
	if (r < 0)
		return r;
	if (db_changes(db) == 0)
		return db_guard_fail(db, ST_BUILD_EXISTS, sql_build_exists, buildid, KILN_ESTATE,
				     "finish build");
	return 0;
}

int db_build_finish(struct db *db, int64_t buildid, int results, const char *state_string,
		    double when)
{
	if (db->pg) {
		db_pg_build_forget(db, buildid); /* its steps take no more logs */
		return db_pg_build_finish(db, buildid, results, state_string, when);
	}
	return WRITE1(sqlite_build_finish(db, buildid, results, state_string, when));
}

static int sqlite_build_set_property(struct db *db, int64_t buildid, const char *name,
				     const char *value, const char *source)
{
	/* A merge patch with one member replaces just that property; the
	 * name is bound, so any characters are safe. */
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_BUILD_SET_PROPERTY,
			"UPDATE builds SET properties = json_patch(properties, "
			"json_object(?2, json_array(json(?3), ?4))) WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	db_bind_text(s, 2, name);
	db_bind_text(s, 3, value);
	db_bind_text(s, 4, source ? source : "");
	return db_update_one(db, s, "build property");
}

int db_build_set_property(struct db *db, int64_t buildid, const char *name, json_t *value,
			  const char *source)
{
	if (!name || !*name)
		return db_failf(db, -EINVAL, "property name is empty");
	_cleanup_free_ char *text =
		value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : xstrdup("null");
	if (!text)
		return db_failf(db, -EINVAL, "property '%s' cannot be encoded", name);
	if (db->pg)
		return db_pg_build_set_property(db, buildid, name, text, source);
	return WRITE1(sqlite_build_set_property(db, buildid, name, text, source));
}
