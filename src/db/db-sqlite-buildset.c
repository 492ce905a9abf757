/*
 * The SQLite side of buildsets: adding one with its sourcestamps (one per
 * codebase, stored in codebase order) and one build request per builder,
 * completing it, its properties, reading its sourcestamps back.  Build
 * requests are in db-sqlite-request.c, try patches in db-sqlite-sched.c.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"

static const char *sqlite_buildset_cb(const struct db_sourcestamp *ss)
{
	return ss->codebase ? ss->codebase : "";
}

static int sqlite_buildset_cmp_cb(const void *a, const void *b)
{
	const struct db_sourcestamp *const *x = a, *const *y = b;
	return strcmp(sqlite_buildset_cb(*x), sqlite_buildset_cb(*y));
}

/* --- buildsets and build requests ----------------------------------------------- */

const struct db_sourcestamp **db_buildset_ss_order(const struct db_buildset_new *bs)
{
	const struct db_sourcestamp **order = xcalloc(bs->nsourcestamps + 1, sizeof(*order));
	for (size_t i = 0; i < bs->nsourcestamps; i++)
		order[i] = &bs->sourcestamps[i];
	qsort(order, bs->nsourcestamps, sizeof(*order), sqlite_buildset_cmp_cb);
	return order;
}

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
	_cleanup_free_ const struct db_sourcestamp **order = db_buildset_ss_order(bs);
	for (size_t i = 0; i < bs->nsourcestamps; i++) {
		const struct db_sourcestamp *ss = order[i];
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
	for (size_t i = 0; i < bs->nsourcestamps; i++)
		for (size_t k = i + 1; k < bs->nsourcestamps; k++)
			if (!strcmp(sqlite_buildset_cb(&bs->sourcestamps[i]),
				    sqlite_buildset_cb(&bs->sourcestamps[k])))
				return db_failf(db, -EINVAL,
						"buildset has two sourcestamps for codebase '%s'",
						sqlite_buildset_cb(&bs->sourcestamps[i]));
	_cleanup_free_ char *props =
		bs->properties ? json_dumps(bs->properties, JSON_COMPACT) : xstrdup("{}");
	if (!props)
		return db_failf(db, -EINVAL, "buildset properties cannot be encoded");
	if (db->pg)
		return db_pg_buildset_add(db, bs, props, builderids, n, ret_bsid, ret_brids);
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

/* --- several codebases ------------------------------------------------------------ */

static size_t sqlite_buildset_text_size(sqlite3_stmt *s, int col)
{
	return sqlite3_column_type(s, col) == SQLITE_NULL
		       ? 0
		       : (size_t)sqlite3_column_bytes(s, col) + 1;
}

/* Copies column col into the string area at *pos (NULL stays NULL). */
static const char *sqlite_buildset_text_copy(sqlite3_stmt *s, int col, char **pos)
{
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return NULL;
	const unsigned char *t = sqlite3_column_text(s, col);
	size_t len = (size_t)sqlite3_column_bytes(s, col);
	char *out = *pos;
	if (len)
		memcpy(out, t, len);
	out[len] = '\0';
	*pos += len + 1;
	return out;
}

enum { SS_BRANCH, SS_REVISION, SS_REPOSITORY, SS_PROJECT, SS_CODEBASE, SS_NCOLS };

int db_buildset_sourcestamps(struct db *db, int64_t bsid, struct db_sourcestamp **ret,
			     size_t *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BS_SOURCESTAMPS,
		"SELECT ss.branch, ss.revision, ss.repository, ss.project, ss.codebase "
		"FROM buildset_sourcestamps x JOIN sourcestamps ss ON ss.id = x.sourcestampid "
		"WHERE x.buildsetid = ?1 ORDER BY ss.codebase, ss.id");
	if (!s)
		return KILN_EDB;
	/* two passes over the rows: sizes, then one block with array and strings */
	size_t n = 0, bytes = 0;
	int r;
	sqlite3_bind_int64(s, 1, bsid);
	while ((r = db_step_row(db, s, "buildset sourcestamps")) == 1) {
		n++;
		for (int c = 0; c < SS_NCOLS; c++)
			bytes += sqlite_buildset_text_size(s, c);
	}
	if (r < 0)
		return r;
	if (n == 0) {
		/* a buildset always has one: none means no buildset */
		_cleanup_stmt_ sqlite3_stmt *e = db_stmt(db, ST_BS_EXISTS, sql_bs_exists);
		if (!e)
			return KILN_EDB;
		sqlite3_bind_int64(e, 1, bsid);
		r = db_step_row(db, e, "buildset exists");
		if (r < 0)
			return r;
		return r == 0 ? db_failf(db, KILN_ENOTFOUND, "no buildset %lld", (long long)bsid)
			      : 0;
	}
	sqlite3_reset(s);
	struct db_sourcestamp *v = xmalloc(n * sizeof(*v) + bytes);
	char *pos = (char *)(v + n);
	size_t i = 0;
	while (i < n && (r = db_step_row(db, s, "buildset sourcestamps")) == 1) {
		v[i].branch = sqlite_buildset_text_copy(s, SS_BRANCH, &pos);
		v[i].revision = sqlite_buildset_text_copy(s, SS_REVISION, &pos);
		v[i].repository = sqlite_buildset_text_copy(s, SS_REPOSITORY, &pos);
		v[i].project = sqlite_buildset_text_copy(s, SS_PROJECT, &pos);
		v[i].codebase = sqlite_buildset_text_copy(s, SS_CODEBASE, &pos);
		i++;
	}
	if (r < 0 || i < n) {
		/* the rows changed between the passes: cannot happen on one connection */
		free(v);
		return r < 0 ? r
			     : db_failf(db, KILN_EDB, "buildset %lld: sourcestamps changed",
					(long long)bsid);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

const struct db_sourcestamp *db_sourcestamp_find(const struct db_sourcestamp *ss, size_t n,
						 const char *codebase)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(sqlite_buildset_cb(&ss[i]), codebase ? codebase : ""))
			return &ss[i];
	return NULL;
}
