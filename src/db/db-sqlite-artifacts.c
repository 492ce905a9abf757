/*
 * The SQLite side of artifacts (db.h "artifacts"): the files a build's
 * upload steps stored under BASEDIR/artifacts, one row each, read by the
 * REST API (api-artifacts.c).  Schema: migrations/0006-artifacts.sql.
 */
#include "db/db-internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"

static bool sqlite_artifacts_hex64(const char *s)
{
	return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int sqlite_artifacts_add(struct db *db, const struct db_artifact *a, int64_t *ret_id)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_ART_ADD,
			"INSERT INTO artifacts (buildid, stepid, name, path, size, sha256, "
			"created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, a->buildid);
	db_bind_id(s, 2, a->stepid);
	db_bind_text(s, 3, a->name);
	db_bind_text(s, 4, a->path);
	sqlite3_bind_int64(s, 5, a->size);
	db_bind_text(s, 6, a->sha256);
	sqlite3_bind_double(s, 7, a->created_at);
	int r = db_step_done(db, s, "add artifact");
	if (r >= 0 && ret_id)
		*ret_id = sqlite3_last_insert_rowid(db->h);
	return r;
}

int db_artifact_add(struct db *db, const struct db_artifact *a, int64_t *ret_artifactid)
{
	if (!a->name || !*a->name || !a->path || !*a->path)
		return db_failf(db, -EINVAL, "artifact name or path is empty");
	if (a->size < 0 || !sqlite_artifacts_hex64(a->sha256) || !isfinite(a->created_at))
		return db_failf(db, -EINVAL, "artifact '%s': bad size, sha256 or time", a->name);
	return WRITE(sqlite_artifacts_add(db, a, ret_artifactid));
}

static void sqlite_artifacts_row(sqlite3_stmt *s, struct db_artifact *a)
{
	a->artifactid = sqlite3_column_int64(s, 0);
	a->buildid = sqlite3_column_int64(s, 1);
	a->stepid = sqlite3_column_int64(s, 2); /* NULL reads 0 */
	a->name = xstrdup((const char *)sqlite3_column_text(s, 3));
	a->path = xstrdup((const char *)sqlite3_column_text(s, 4));
	a->size = sqlite3_column_int64(s, 5);
	const char *h = (const char *)sqlite3_column_text(s, 6);
	snprintf(a->sha256, sizeof(a->sha256), "%s", h ? h : "");
	a->created_at = sqlite3_column_double(s, 7);
}

#define SQL_ARTIFACT_COLS "id, buildid, stepid, name, path, size, sha256, created_at"

int db_artifact_get(struct db *db, int64_t artifactid, struct db_artifact *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_ART_GET, "SELECT " SQL_ARTIFACT_COLS " FROM artifacts WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, artifactid);
	int r = db_step_row(db, s, "artifact");
	if (r < 0)
		return r;
	if (r == 0)
		return db_failf(db, KILN_ENOTFOUND, "no artifact %lld", (long long)artifactid);
	sqlite_artifacts_row(s, ret);
	return 0;
}

void db_artifact_release(struct db_artifact *a)
{
	free(a->name);
	free(a->path);
	a->name = a->path = NULL;
}

int db_artifacts_of_build(struct db *db, int64_t buildid, int64_t limit, json_t **ret_items)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_ART_OF_BUILD,
			"SELECT " SQL_ARTIFACT_COLS " FROM artifacts WHERE buildid = ?1 "
			"ORDER BY id LIMIT ?2");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	sqlite3_bind_int64(s, 2, limit < 0 ? -1 : limit);
	json_t *items = json_array();
	int r;
	while ((r = db_step_row(db, s, "artifacts")) == 1) {
		struct db_artifact a = {0};
		sqlite_artifacts_row(s, &a);
		json_t *o = json_pack("{s:I, s:I, s:o, s:s, s:s, s:I, s:s, s:I}", "artifactid",
				      (json_int_t)a.artifactid, "buildid", (json_int_t)a.buildid,
				      "stepid", a.stepid ? json_integer(a.stepid) : json_null(),
				      "name", a.name, "path", a.path, "size", (json_int_t)a.size,
				      "sha256", a.sha256, "created_at", (json_int_t)a.created_at);
		db_artifact_release(&a);
		if (!o) {
			r = db_failf(db, -EINVAL, "artifact text is not UTF-8");
			break;
		}
		json_array_append_new(items, o);
	}
	if (r < 0) {
		json_decref(items);
		return r;
	}
	*ret_items = items;
	return 0;
}
