/*
 * The SQLite side of builders: upsert by name, and the masters each builder
 * is configured on.  A master syncs every configured builder at start, so a
 * builder that did not change costs reads only (100,000 builders at start).
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <stdbool.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"

/* --- builders ------------------------------------------------------------------- */

/* 1 with *ret set when the builder exists with these values already, 0 if
 * it must be written. */
static int sqlite_builder_unchanged(struct db *db, const char *name, const char *description,
				    const char *tags_json, int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BUILDER_FIND, "SELECT id, description, tags FROM builders WHERE name = ?1");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, name);
	int r = db_step_row(db, s, "find builder");
	if (r <= 0)
		return r;
	const char *d = (const char *)sqlite3_column_text(s, 1);
	const char *t = (const char *)sqlite3_column_text(s, 2);
	bool same_d = (!d && !description) || (d && description && !strcmp(d, description));
	if (!same_d || !t || strcmp(t, tags_json))
		return 0;
	*ret = sqlite3_column_int64(s, 0);
	return 1;
}

static int sqlite_builder_ensure(struct db *db, const char *name, const char *description,
				 const char *tags_json, int64_t *ret)
{
	if (!tags_json)
		tags_json = "[]";
	int r = sqlite_builder_unchanged(db, name, description, tags_json, ret);
	if (r != 0)
		return r < 0 ? r : 0;
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_BUILDER_ENSURE,
			"INSERT INTO builders (name, description, tags) VALUES (?1, ?2, ?3) "
			"ON CONFLICT (name) DO UPDATE SET description = excluded.description, "
			"tags = excluded.tags RETURNING id");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, name);
	db_bind_text(s, 2, description);
	db_bind_text(s, 3, tags_json);
	r = db_step_row(db, s, "ensure builder");
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
	if (db->pg)
		return db_pg_ensure_wait(db, DB_NAMED_BUILDER, name, description, tags_json,
					 ret_builderid);
	int64_t id = 0;
	int r = WRITE(sqlite_builder_ensure(db, name, description, tags_json, &id));
	if (r >= 0)
		*ret_builderid = id;
	return r;
}

/* Rows already there stay, so a restart with the same masters only reads
 * (one query per builder: it tells a missing builder, and the masters it
 * has); stale rows are deleted one by one.  n is the number of masters, a
 * handful: the scans over masterids are not a cost. */
static int sqlite_builder_set_masters(struct db *db, int64_t builderid, const int64_t *masterids,
				      size_t n)
{
	_cleanup_free_ int64_t *have = NULL;
	_cleanup_free_ bool *seen = xcalloc(n + 1, sizeof(*seen));
	size_t nhave = 0, cap = 0;
	int r;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_BUILDER_EXISTS,
				"SELECT m.masterid FROM builders b LEFT JOIN builder_masters m "
				"ON m.builderid = b.id WHERE b.id = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, builderid);
		bool found = false;
		while ((r = db_step_row(db, s, "builder masters")) == 1) {
			found = true;
			if (sqlite3_column_type(s, 0) == SQLITE_NULL)
				continue;
			ARRAY_GROW(have, nhave + 1, cap);
			have[nhave++] = sqlite3_column_int64(s, 0);
		}
		if (r < 0)
			return r;
		if (!found)
			return db_failf(db, KILN_ENOTFOUND, "no builder %lld",
					(long long)builderid);
	}
	for (size_t k = 0; k < nhave; k++) {
		bool keep = false;
		for (size_t i = 0; i < n; i++)
			if (masterids[i] == have[k]) {
				keep = true;
				seen[i] = true;
			}
		if (keep)
			continue;
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_BUILDER_MASTERS_DEL,
			"DELETE FROM builder_masters WHERE builderid = ?1 AND masterid = ?2");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, builderid);
		sqlite3_bind_int64(s, 2, have[k]);
		if ((r = db_step_done(db, s, "builder masters")) < 0)
			return r;
	}
	for (size_t i = 0; i < n; i++) {
		if (seen[i])
			continue;
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
	if (db->pg)
		return db_pg_builder_set_masters(db, builderid, masterids, n);
	return WRITE(sqlite_builder_set_masters(db, builderid, masterids, n));
}
