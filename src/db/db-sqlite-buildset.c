/*
 * The SQLite side of buildsets: adding one with its sourcestamps and one
 * build request per builder, completing it, its properties.  Build requests
 * are in db-sqlite-request.c, try patches in db-sqlite-sched.c.
 */
#include "db/db-internal.h"

#include <errno.h>

#include "common/err.h"
#include "common/xalloc.h"

/* --- buildsets and build requests ----------------------------------------------- */

static int sqlite_buildset_add(struct db *db, const struct db_buildset_new *bs, const char *props,
			       const int64_t *builderids, size_t n, int64_t *ret_bsid,
			       int64_t *ret_brids)
{
	int r;
	int64_t bsid;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_BS_ADD,
				"INSERT INTO buildsets (external_idstring, reason, scheduler, "
				"submitted_at, "
				"parent_buildid, properties) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
		if (!s)
			return KILN_EDB;
		db_bind_text(s, 1, bs->external_idstring);
		db_bind_text(s, 2, bs->reason ? bs->reason : "");
		db_bind_text(s, 3, bs->scheduler);
		sqlite3_bind_double(s, 4, bs->submitted_at);
		db_bind_id(s, 5, bs->parent_buildid);
		db_bind_text(s, 6, props);
		if ((r = db_step_done(db, s, "add buildset")) < 0)
			return r;
		bsid = sqlite3_last_insert_rowid(db->h);
	}
	for (size_t i = 0; i < bs->nsourcestamps; i++) {
		const struct db_sourcestamp *ss = &bs->sourcestamps[i];
		int64_t ssid;
		{
			_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
				db, ST_SS_ADD,
				"INSERT INTO sourcestamps (branch, revision, repository, project, "
				"codebase, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
			if (!s)
				return KILN_EDB;
			db_bind_text(s, 1, ss->branch);
			db_bind_text(s, 2, ss->revision);
			db_bind_text(s, 3, ss->repository ? ss->repository : "");
			db_bind_text(s, 4, ss->project ? ss->project : "");
			db_bind_text(s, 5, ss->codebase ? ss->codebase : "");
			sqlite3_bind_double(s, 6, bs->submitted_at);
			if ((r = db_step_done(db, s, "add sourcestamp")) < 0)
				return r;
			ssid = sqlite3_last_insert_rowid(db->h);
		}
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_BS_SS_ADD,
				"INSERT INTO buildset_sourcestamps (buildsetid, sourcestampid) "
				"VALUES (?1, ?2)");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, bsid);
		sqlite3_bind_int64(s, 2, ssid);
		if ((r = db_step_done(db, s, "add buildset sourcestamp")) < 0)
			return r;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_BR_ADD,
			"INSERT INTO buildrequests (buildsetid, builderid, priority, submitted_at) "
			"VALUES (?1, ?2, ?3, ?4)");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, bsid);
		sqlite3_bind_int64(s, 2, builderids[i]);
		sqlite3_bind_int(s, 3, bs->priority);
		sqlite3_bind_double(s, 4, bs->submitted_at);
		if ((r = db_step_done(db, s, "add build request")) < 0)
			return r;
		if (ret_brids)
			ret_brids[i] = sqlite3_last_insert_rowid(db->h);
	}
	*ret_bsid = bsid;
	return 0;
}

int db_buildset_add(struct db *db, const struct db_buildset_new *bs, const int64_t *builderids,
		    size_t n, int64_t *ret_bsid, int64_t *ret_brids)
{
	if (n == 0 || !builderids)
		return db_failf(db, -EINVAL, "buildset without builders");
	if (bs->properties && !json_is_object(bs->properties))
		return db_failf(db, -EINVAL, "buildset properties are not a JSON object");
	_cleanup_free_ char *props =
		bs->properties ? json_dumps(bs->properties, JSON_COMPACT) : xstrdup("{}");
	if (!props)
		return db_failf(db, -EINVAL, "buildset properties cannot be encoded");
	int64_t bsid = 0;
	int r = WRITE(sqlite_buildset_add(db, bs, props, builderids, n, &bsid, ret_brids));
	if (r >= 0 && ret_bsid)
		*ret_bsid = bsid;
	return r;
}

static const char sql_bs_exists[] = "SELECT 1 FROM buildsets WHERE id = ?1";

int db_buildset_complete_locked(struct db *db, int64_t bsid, int results, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_BS_COMPLETE,
			"UPDATE buildsets SET complete = 1, complete_at = ?2, results = ?3 "
			"WHERE id = ?1 AND complete = 0");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, bsid);
	sqlite3_bind_double(s, 2, when);
	sqlite3_bind_int(s, 3, results);
	int r = db_step_done(db, s, "complete buildset");
	if (r < 0)
		return r;
	if (db_changes(db) == 0)
		return db_guard_fail(db, ST_BS_EXISTS, sql_bs_exists, bsid, KILN_ESTATE,
				     "complete buildset");
	return 0;
}

int db_buildset_complete(struct db *db, int64_t bsid, int results, double when)
{
	return WRITE(db_buildset_complete_locked(db, bsid, results, when));
}

int db_buildset_properties(struct db *db, int64_t bsid, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_BS_PROPS, "SELECT properties FROM buildsets WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, bsid);
	int r = db_step_row(db, s, "buildset properties");
	if (r <= 0)
		return r < 0 ? r
			     : db_failf(db, KILN_ENOTFOUND, "no buildset %lld", (long long)bsid);
	json_error_t e;
	json_t *j = json_loadb((const char *)sqlite3_column_text(s, 0),
			       (size_t)sqlite3_column_bytes(s, 0), 0, &e);
	if (!j)
		return db_failf(db, KILN_EDB, "buildset %lld: stored properties: %s",
				(long long)bsid, e.text);
	*ret = j;
	return 0;
}
