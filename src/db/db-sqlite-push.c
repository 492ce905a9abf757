/*
 * Results pushed from outside on SQLite (db.h "results pushed from
 * outside", slice "push"; docs/PUSH.md): the submissions table and the
 * expected reporters' state of migrations/0012-push.sql.  A submission's
 * build, steps and logs are the ordinary tables (db_build_add ...), written
 * by the master inside db_push_atomic together with the submission row.
 * These calls are few per push, so their statements come from the dynamic
 * cache.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"

int db_push_atomic(struct db *db, size_t nsteps, int (*fn)(struct db *db, void *ud), void *ud)
{
	if (db->pg) { /* the turn's transaction: nothing may fail once written */
		int r = db_pg_ids_ready(db, 1, nsteps, nsteps);
		return r < 0 ? r : fn(db, ud);
	}
	return WRITE(fn(db, ud));
}

static int push_insert(struct db *db, const struct db_push_row *row)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "INSERT INTO push_submissions (id, tokenid, package, host, arch, tags, "
		    "revision, builderid, buildid, state, reason, finished, results, nsteps, "
		    "update_hash, created_at, updated_at, finished_at) VALUES (?1, ?2, ?3, ?4, "
		    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16, ?17)");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, row->id);
	sqlite3_bind_int64(s, 2, row->tokenid);
	db_bind_text(s, 3, row->package);
	db_bind_text(s, 4, row->host);
	db_bind_text(s, 5, row->arch);
	db_bind_text(s, 6, row->tags ? row->tags : ",");
	db_bind_text(s, 7, row->revision);
	db_bind_id(s, 8, row->builderid);
	db_bind_id(s, 9, row->buildid);
	db_bind_text(s, 10, row->state);
	db_bind_text(s, 11, row->reason);
	sqlite3_bind_int(s, 12, row->finished);
	if (row->results >= 0)
		sqlite3_bind_int(s, 13, row->results);
	sqlite3_bind_int64(s, 14, row->nsteps);
	if (row->update_hash)
		sqlite3_bind_blob(s, 15, row->update_hash, 32, SQLITE_TRANSIENT);
	sqlite3_bind_double(s, 16, row->created_at);
	if (row->finished_at > 0)
		sqlite3_bind_double(s, 17, row->finished_at);
	return db_step_done(db, s, "add push submission");
}

int db_push_insert(struct db *db, const struct db_push_row *row)
{
	if (db->pg)
		return db_pg_push_insert(db, row);
	return WRITE1(push_insert(db, row));
}

static int push_update(struct db *db, int64_t id, int64_t nsteps, int results, bool finished,
		       double now)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "UPDATE push_submissions SET nsteps = ?2, results = ?3, finished = ?4, "
		    "updated_at = ?5, finished_at = CASE WHEN ?4 THEN ?5 ELSE NULL END, "
		    "update_hash = CASE WHEN ?4 THEN NULL ELSE update_hash END WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, nsteps);
	if (results >= 0)
		sqlite3_bind_int(s, 3, results);
	sqlite3_bind_int(s, 4, finished);
	sqlite3_bind_double(s, 5, now);
	return db_update_one(db, s, "push submission");
}

int db_push_update(struct db *db, int64_t id, int64_t nsteps, int results, bool finished,
		   double now)
{
	if (db->pg)
		return db_pg_push_update(db, id, nsteps, results, finished, now);
	return WRITE1(push_update(db, id, nsteps, results, finished, now));
}

int db_push_max_id(struct db *db, int64_t *ret)
{
	if (db->pg) /* at start-up (push.c) */
		return db_pg_int_wait(db, "db_push_max_id", "SELECT max(id) FROM push_submissions",
				      0, NULL, ret);
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt_dynamic(db, "SELECT max(id) FROM push_submissions");
	if (!s)
		return KILN_EDB;
	return db_step_int64(db, s, "find the last push", ret);
}

int db_push_count(struct db *db, int64_t tokenid, const char *package, int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "SELECT count(*) FROM push_submissions WHERE tokenid = ?1 AND package = ?2");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, tokenid);
	db_bind_text(s, 2, package);
	return db_step_int64(db, s, "count pushes", ret);
}

static int push_close_open(struct db *db, double now)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "UPDATE push_submissions SET finished = 1, update_hash = NULL, "
		    "results = coalesce(results, 5), finished_at = ?1, updated_at = ?1, "
		    "reason = 'the master stopped while it was open' WHERE finished = 0");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_double(s, 1, now);
	int r = db_step_done(db, s, "close open pushes");
	return r < 0 ? r : db_changes(db);
}

int db_push_close_open(struct db *db, double now)
{
	if (db->pg) { /* at start-up (push.c) */
		char t[32];
		snprintf(t, sizeof(t), "%.17g", now);
		const char *values[] = {t};
		int64_t n = 0;
		int r = db_pg_int_wait(
			db, "db_push_close_open",
			"WITH u AS (UPDATE push_submissions SET finished = 1, update_hash = NULL, "
			"results = coalesce(results, 5), finished_at = $1::float8, updated_at = "
			"$1::float8, reason = 'the master stopped while it was open' WHERE "
			"finished "
			"= 0 RETURNING 1) SELECT count(*) FROM u",
			1, values, &n);
		return r < 0 ? r : (int)n;
	}
	return WRITE1(push_close_open(db, now));
}

#define PUSH_COLS                                                                                  \
	"id, tokenid, package, host, arch, tags, revision, builderid, buildid, state, reason, "    \
	"finished, results, nsteps, created_at, updated_at, finished_at"

/* A text column as JSON: NULL, an integer, or text. */
static json_t *push_col(const char *const *col, int i, bool integer)
{
	if (!col[i])
		return json_null();
	return integer ? json_integer(strtoll(col[i], NULL, 10)) : json_string(col[i]);
}

json_t *db_push_row_from_text(const char *const col[DB_PUSH_COLS])
{
	json_t *o = json_object();
	json_object_set_new(o, "pushid", push_col(col, 0, true));
	json_object_set_new(o, "tokenid", push_col(col, 1, true));
	json_object_set_new(o, "package", push_col(col, 2, false));
	json_object_set_new(o, "host", push_col(col, 3, false));
	json_object_set_new(o, "arch", push_col(col, 4, false));
	json_t *tags = json_array();
	const char *t = col[5];
	while (t && *t) {
		const char *e = strchr(t + 1, ',');
		if (!e)
			break;
		if (e > t + 1)
			json_array_append_new(tags, json_stringn(t + 1, (size_t)(e - t - 1)));
		t = e;
	}
	json_object_set_new(o, "tags", tags);
	json_object_set_new(o, "revision", push_col(col, 6, false));
	json_object_set_new(o, "builderid", push_col(col, 7, true));
	json_object_set_new(o, "buildid", push_col(col, 8, true));
	json_object_set_new(o, "state", push_col(col, 9, false));
	json_object_set_new(o, "reason", push_col(col, 10, false));
	json_object_set_new(o, "finished", json_boolean(col[11] && strtoll(col[11], NULL, 10)));
	json_object_set_new(o, "results", push_col(col, 12, true));
	json_object_set_new(o, "nsteps", push_col(col, 13, true));
	for (int i = 14; i <= 16; i++) {
		static const char *const names[] = {"created_at", "updated_at", "finished_at"};
		json_object_set_new(o, names[i - 14],
				    col[i] ? json_integer((json_int_t)strtod(col[i], NULL))
					   : json_null());
	}
	return o;
}

static json_t *push_row_json(sqlite3_stmt *s)
{
	const char *col[DB_PUSH_COLS];
	for (int i = 0; i < DB_PUSH_COLS; i++)
		col[i] = (const char *)sqlite3_column_text(s, i);
	return db_push_row_from_text(col);
}

int db_push_get(struct db *db, int64_t id, json_t **ret)
{
	*ret = NULL;
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt_dynamic(db, "SELECT " PUSH_COLS " FROM push_submissions WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, id);
	int r = db_step_row(db, s, "find push");
	if (r < 0)
		return r;
	if (r == 0)
		return db_failf(db, KILN_ENOTFOUND, "no push %lld", (long long)id);
	*ret = push_row_json(s);
	return 0;
}

int db_push_open_hash(struct db *db, int64_t id, unsigned char hash[32], int64_t *ret_tokenid)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "SELECT update_hash, tokenid FROM push_submissions WHERE id = ?1 AND "
		    "finished = 0 AND update_hash IS NOT NULL");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, id);
	int r = db_step_row(db, s, "find push");
	if (r <= 0)
		return r;
	if (sqlite3_column_bytes(s, 0) != 32)
		return 0;
	memcpy(hash, sqlite3_column_blob(s, 0), 32);
	*ret_tokenid = sqlite3_column_int64(s, 1);
	return 1;
}

int db_push_latest(struct db *db, const char *package, const char *host, const char *tag,
		   int64_t limit, json_t **ret)
{
	*ret = NULL;
	/* SQLite: the bare columns of a max() aggregate come from its row */
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "SELECT " PUSH_COLS ", max(id) FROM push_submissions WHERE state = 'stored' "
		    "AND (?1 IS NULL OR package = ?1) AND (?2 IS NULL OR host = ?2) AND "
		    "(?3 IS NULL OR instr(tags, ',' || ?3 || ',') > 0) GROUP BY package, host "
		    "ORDER BY package, host LIMIT ?4");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, package);
	db_bind_text(s, 2, host);
	db_bind_text(s, 3, tag);
	sqlite3_bind_int64(s, 4, limit);
	json_t *list = json_array();
	int r;
	while ((r = db_step_row(db, s, "list latest pushes")) == 1)
		json_array_append_new(list, push_row_json(s));
	if (r < 0) {
		json_decref(list);
		return r;
	}
	*ret = list;
	return 0;
}

int db_push_expected_get(struct db *db, const char *package, const char *host, double *ret_last,
			 int *ret_quiet)
{
	if (db->pg) /* at start-up (push.c) */
		return db_pg_push_expected_get(db, package, host, ret_last, ret_quiet);
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "SELECT last_push, quiet FROM push_expected WHERE package = ?1 AND host = ?2");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, package);
	db_bind_text(s, 2, host);
	int r = db_step_row(db, s, "find expected reporter");
	if (r <= 0)
		return r;
	*ret_last = sqlite3_column_type(s, 0) == SQLITE_NULL ? 0 : sqlite3_column_double(s, 0);
	*ret_quiet = sqlite3_column_int(s, 1);
	return 1;
}

static int push_expected_set(struct db *db, const char *package, const char *host, double last,
			     int quiet)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(
		db, "INSERT INTO push_expected (package, host, last_push, quiet) VALUES (?1, ?2, "
		    "?3, ?4) ON CONFLICT (package, host) DO UPDATE SET last_push = ?3, quiet = ?4");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, package);
	db_bind_text(s, 2, host);
	if (last > 0)
		sqlite3_bind_double(s, 3, last);
	sqlite3_bind_int(s, 4, quiet);
	return db_step_done(db, s, "store expected reporter");
}

int db_push_expected_set(struct db *db, const char *package, const char *host, double last,
			 int quiet)
{
	if (db->pg)
		return db_pg_push_expected_set(db, package, host, last, quiet);
	return WRITE1(push_expected_set(db, package, host, last, quiet));
}

int db_push_id_next(struct db *db, int64_t *next, int64_t *ret_id)
{
	if (db->pg)
		return db_pg_next_id(db, DB_PG_PUSH, ret_id);
	*ret_id = (*next)++;
	return 0;
}
