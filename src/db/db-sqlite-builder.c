/*
 * The SQLite side of builders: upsert by name, and the masters each builder
 * is configured on.
 */
#include "db/db-internal.h"

#include "common/err.h"

/* --- builders ------------------------------------------------------------------- */

static int sqlite_builder_ensure(struct db *db, const char *name, const char *description,
				 const char *tags_json, int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_BUILDER_ENSURE,
			"INSERT INTO builders (name, description, tags) VALUES (?1, ?2, ?3) "
			"ON CONFLICT (name) DO UPDATE SET description = excluded.description, "
			"tags = excluded.tags RETURNING id");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, name);
	db_bind_text(s, 2, description);
	db_bind_text(s, 3, tags_json ? tags_json : "[]");
	int r = db_step_row(db, s, "ensure builder");
	if (r <= 0)
		return r < 0 ? r : db_failf(db, KILN_EDB, "ensure builder: no id returned");
	*ret = sqlite3_column_int64(s, 0);
	return 0;
}

int db_builder_ensure(struct db *db, const char *name, const char *description,
		      const char *tags_json, int64_t *ret_builderid)
{
	if (!name || !*name)
		return db_failf(db, -EINVAL, "builder name is empty");
	if (tags_json) {
		json_error_t e;
		json_t *t = json_loads(tags_json, 0, &e);
		bool ok = t && json_is_array(t);
		json_decref(t);
		if (!ok)
			return db_failf(db, -EINVAL, "builder '%s': tags are not a JSON array",
					name);
	}
	int64_t id = 0;
	int r = WRITE(sqlite_builder_ensure(db, name, description, tags_json, &id));
	if (r >= 0)
		*ret_builderid = id;
	return r;
}

static int sqlite_builder_set_masters(struct db *db, int64_t builderid, const int64_t *masterids,
				      size_t n)
{
	int r = db_exists(db, ST_BUILDER_EXISTS, "SELECT 1 FROM builders WHERE id = ?1", builderid);
	if (r <= 0)
		return r < 0 ? r
			     : db_failf(db, KILN_ENOTFOUND, "no builder %lld",
					(long long)builderid);
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_BUILDER_MASTERS_DEL,
				"DELETE FROM builder_masters WHERE builderid = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, builderid);
		if ((r = db_step_done(db, s, "builder masters")) < 0)
			return r;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, ST_BUILDER_MASTERS_ADD,
							 "INSERT OR IGNORE INTO builder_masters "
							 "(builderid, masterid) VALUES (?1, ?2)");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, builderid);
		sqlite3_bind_int64(s, 2, masterids[i]);
		if ((r = db_step_done(db, s, "builder masters")) < 0)
			return r;
	}
	return 0;
}

int db_builder_set_masters(struct db *db, int64_t builderid, const int64_t *masterids, size_t n)
{
	return WRITE(sqlite_builder_set_masters(db, builderid, masterids, n));
}
