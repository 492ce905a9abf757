/*
 * The SQLite side of artifacts (db.h "artifacts"): the files a build's
 * upload steps stored under BASEDIR/artifacts, one row each, read by the
 * REST API (api-artifacts.c) and trimmed by the retention
 * (master/artifact-retention.c).  Schema: migrations/0006-artifacts.sql,
 * 0007-artifact-dirs.sql.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

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
			"created_at, dir) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, a->buildid);
	db_bind_id(s, 2, a->stepid);
	db_bind_text(s, 3, a->name);
	db_bind_text(s, 4, a->path);
	sqlite3_bind_int64(s, 5, a->size);
	db_bind_text(s, 6, a->sha256);
	sqlite3_bind_double(s, 7, a->created_at);
	if (a->dir)
		db_bind_text(s, 8, a->dir);
	else
		sqlite3_bind_null(s, 8);
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
	if (db->pg)
		return db_pg_artifact_add(db, a, ret_artifactid);
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
	const char *d = (const char *)sqlite3_column_text(s, 8);
	a->dir = d ? xstrdup(d) : NULL;
}

#define SQL_ARTIFACT_COLS "id, buildid, stepid, name, path, size, sha256, created_at, dir"

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
	free(a->dir);
	a->name = a->path = a->dir = NULL;
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

int db_artifact_from_json(json_t *o, struct db_artifact *ret)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *path = json_string_value(json_object_get(o, "path"));
	const char *sha = json_string_value(json_object_get(o, "sha256"));
	const char *dir = json_string_value(json_object_get(o, "dir"));
	if (!name || !path || !sha)
		return -EINVAL;
	*ret = (struct db_artifact){
		.artifactid = json_integer_value(json_object_get(o, "artifactid")),
		.buildid = json_integer_value(json_object_get(o, "buildid")),
		.stepid = json_integer_value(json_object_get(o, "stepid")), /* null: 0 */
		.name = xstrdup(name),
		.path = xstrdup(path),
		.size = json_integer_value(json_object_get(o, "size")),
		.created_at = json_number_value(json_object_get(o, "created_at")),
		.dir = dir ? xstrdup(dir) : NULL,
	};
	snprintf(ret->sha256, sizeof(ret->sha256), "%s", sha);
	return 0;
}

/* The object db_artifact_get_async gives, from a (NULL: not UTF-8). */
json_t *db_artifact_json(const struct db_artifact *a)
{
	return json_pack("{s:I, s:I, s:o, s:s, s:s, s:I, s:s, s:f, s:o}", "artifactid",
			 (json_int_t)a->artifactid, "buildid", (json_int_t)a->buildid, "stepid",
			 a->stepid ? json_integer(a->stepid) : json_null(), "name", a->name, "path",
			 a->path, "size", (json_int_t)a->size, "sha256", a->sha256, "created_at",
			 a->created_at, "dir", a->dir ? json_string(a->dir) : json_null());
}

/* ---- retention (slice "artcli") ---------------------------------------- */

int db_artifacts_oldest(struct db *db, int64_t after_id, size_t max, struct db_artifact_age *ret,
			size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_ART_OLDEST,
			"SELECT a.id, a.buildid, a.size, a.created_at, "
			"COALESCE(b.complete, 1) FROM artifacts a LEFT JOIN builds b ON "
			"b.id = a.buildid WHERE a.id > ?1 ORDER BY a.id LIMIT ?2");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, after_id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	size_t n = 0;
	int r = 0;
	while (n < max && (r = db_step_row(db, s, "artifacts")) == 1) {
		ret[n++] = (struct db_artifact_age){
			.artifactid = sqlite3_column_int64(s, 0),
			.buildid = sqlite3_column_int64(s, 1),
			.size = sqlite3_column_int64(s, 2),
			.created_at = sqlite3_column_double(s, 3),
			.build_done = sqlite3_column_int(s, 4) != 0,
		};
	}
	if (n < max && r < 0)
		return r;
	*ret_n = n;
	return 0;
}

int db_artifacts_usage(struct db *db, int64_t after_id, int64_t keep_builds, int64_t *ret_bytes,
		       int64_t *ret_max_id, int64_t *ret_keep_from_buildid)
{
	_cleanup_stmt_ sqlite3_stmt *t =
		db_stmt(db, ST_ART_TOTAL,
			"SELECT COALESCE(SUM(size), 0), COALESCE(MAX(id), ?1) FROM artifacts "
			"WHERE id > ?1");
	if (!t)
		return KILN_EDB;
	sqlite3_bind_int64(t, 1, after_id);
	int r = db_step_row(db, t, "artifact bytes");
	if (r < 0)
		return r;
	int64_t bytes = r ? sqlite3_column_int64(t, 0) : 0;
	int64_t max_id = r ? sqlite3_column_int64(t, 1) : after_id;
	int64_t from = 0;
	if (keep_builds > 0) {
		_cleanup_stmt_ sqlite3_stmt *k =
			db_stmt(db, ST_ART_KEEP_FROM,
				"SELECT DISTINCT buildid FROM artifacts ORDER BY buildid DESC "
				"LIMIT 1 OFFSET ?1");
		if (!k)
			return KILN_EDB;
		sqlite3_bind_int64(k, 1, keep_builds - 1);
		r = db_step_row(db, k, "artifact builds");
		if (r < 0)
			return r;
		from = r ? sqlite3_column_int64(k, 0) : 0;
	}
	*ret_bytes = bytes;
	*ret_max_id = max_id;
	*ret_keep_from_buildid = from;
	return 0;
}

void db_artifact_files_free(struct db_artifact_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].path);
	free(f);
}

/* 1 if a row of buildid still needs path: as its file, or (dir) as its
 * directory or a place inside the directory path; 0 if none, or an error. */
static int sqlite_artifacts_used(struct db *db, int64_t buildid, const char *path, bool dir)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		dir ? db_stmt(db, ST_ART_DIR_USED,
			      "SELECT 1 FROM artifacts WHERE buildid = ?1 AND (dir = ?2 OR "
			      "path = ?2 OR substr(path, 1, length(?2) + 1) = ?2 || '/' OR "
			      "substr(dir, 1, length(?2) + 1) = ?2 || '/') LIMIT 1")
		    : db_stmt(db, ST_ART_PATH_USED,
			      "SELECT 1 FROM artifacts WHERE buildid = ?1 AND path = ?2 LIMIT 1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	db_bind_text(s, 2, path);
	return db_step_row(db, s, "artifact path");
}

static void sqlite_artifacts_unused(struct db_artifact_file **v, size_t *n, size_t *alloc,
				    char *path, bool dir)
{
	ARRAY_GROW(*v, *n + 1, *alloc);
	(*v)[(*n)++] = (struct db_artifact_file){.path = path, .dir = dir};
}

static int sqlite_artifacts_delete(struct db *db, const int64_t *ids, size_t n,
				   struct db_artifact_file **ret, size_t *ret_n)
{
	struct db_artifact_file *v = NULL;
	size_t nv = 0, alloc = 0;
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct db_artifact a = {0};
		r = db_artifact_get(db, ids[i], &a);
		if (r == KILN_ENOTFOUND) {
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_ART_DEL, "DELETE FROM artifacts WHERE id = ?1");
		if (!s) {
			db_artifact_release(&a);
			r = KILN_EDB;
			break;
		}
		sqlite3_bind_int64(s, 1, ids[i]);
		r = db_step_done(db, s, "delete artifact");
		if (r >= 0)
			r = sqlite_artifacts_used(db, a.buildid, a.path, false);
		if (r == 0)
			sqlite_artifacts_unused(&v, &nv, &alloc, TAKE_PTR(a.path), false);
		if (r >= 0 && a.dir)
			r = sqlite_artifacts_used(db, a.buildid, a.dir, true);
		if (r == 0 && a.dir)
			sqlite_artifacts_unused(&v, &nv, &alloc, TAKE_PTR(a.dir), true);
		if (r > 0)
			r = 0;
		db_artifact_release(&a);
	}
	if (r < 0) {
		db_artifact_files_free(v, nv);
		return r;
	}
	*ret = v;
	*ret_n = nv;
	return 0;
}

int db_artifacts_delete(struct db *db, const int64_t *ids, size_t n, struct db_artifact_file **ret,
			size_t *ret_n)
{
	return WRITE(sqlite_artifacts_delete(db, ids, n, ret, ret_n));
}
