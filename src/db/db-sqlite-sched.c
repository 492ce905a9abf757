/*
 * The SQLite side of schedulers and the queue (db.h "schedulers and
 * queue"): try patches attached to sourcestamps, reading a buildset with
 * its sourcestamp, and the queries behind collapse_requests and
 * cancel_superseded.  Schema: migrations/0003-schedulers.sql.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"

static char *sqlite_sched_col_strdup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? xstrdup((const char *)t) : NULL;
}

/* --- patches ------------------------------------------------------------------------ */

static int sqlite_sched_buildset_set_patch(struct db *db, int64_t bsid, const struct db_patch *p)
{
	int r;
	int64_t patchid;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, ST_SCHED_PATCH_ADD,
							 "INSERT INTO patches (patchlevel, body, "
							 "subdir, patch_author, patch_comment) "
							 "VALUES (?1, ?2, ?3, ?4, ?5)");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int(s, 1, p->level);
		sqlite3_bind_blob64(s, 2, p->body ? p->body : "", p->len, SQLITE_STATIC);
		db_bind_text(s, 3, p->subdir);
		db_bind_text(s, 4, p->author);
		db_bind_text(s, 5, p->comment);
		if ((r = db_step_done(db, s, "add patch")) < 0)
			return r;
		patchid = sqlite3_last_insert_rowid(db->h);
	}
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_SCHED_SS_SET_PATCH,
			"UPDATE sourcestamps SET patchid = ?2 WHERE codebase = ?3 AND id IN "
			"(SELECT sourcestampid FROM buildset_sourcestamps WHERE buildsetid = ?1)");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, bsid);
	sqlite3_bind_int64(s, 2, patchid);
	db_bind_text(s, 3, p->codebase ? p->codebase : "");
	if ((r = db_step_done(db, s, "attach patch")) < 0)
		return r;
	if (db_changes(db) == 0)
		return db_failf(db, KILN_ENOTFOUND,
				"no sourcestamp of codebase '%s' in buildset %lld",
				p->codebase ? p->codebase : "", (long long)bsid);
	return 0;
}

int db_buildset_set_patch(struct db *db, int64_t bsid, const struct db_patch *p)
{
	if (db->pg)
		return db_pg_buildset_set_patch(db, bsid, p);
	return WRITE(sqlite_sched_buildset_set_patch(db, bsid, p));
}

/* A patch from s's columns col (level), col + 1 (body) and col + 2
 * (subdir): the body copied, NUL-terminated. */
static struct db_patch_data sqlite_sched_patch_at(sqlite3_stmt *s, int col)
{
	size_t len = (size_t)sqlite3_column_bytes(s, col + 1);
	const void *body = sqlite3_column_blob(s, col + 1);
	char *copy = xmalloc(len + 1);
	if (len)
		memcpy(copy, body, len);
	copy[len] = '\0';
	return (struct db_patch_data){
		.level = sqlite3_column_int(s, col),
		.body = copy,
		.len = len,
		.subdir = sqlite_sched_col_strdup(s, col + 2),
	};
}

int db_buildset_patch(struct db *db, int64_t bsid, const char *codebase, struct db_patch_data *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_SCHED_PATCH_GET,
			"SELECT p.patchlevel, p.body, p.subdir FROM buildset_sourcestamps x "
			"JOIN sourcestamps ss ON ss.id = x.sourcestampid "
			"JOIN patches p ON p.id = ss.patchid WHERE x.buildsetid = ?1 "
			"AND (?2 IS NULL OR ss.codebase = ?2) LIMIT 1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, bsid);
	db_bind_text(s, 2, codebase);
	int r = db_step_row(db, s, "buildset patch");
	if (r <= 0)
		return r;
	*ret = sqlite_sched_patch_at(s, 0);
	return 1;
}

/* db_buildset_patches_async's read on SQLite: *ret (owned) and *ret_n. */
int db_buildset_patches(struct db *db, int64_t bsid, struct db_patch_data **ret, size_t *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_SCHED_PATCHES_GET,
			"SELECT ss.codebase, p.patchlevel, p.body, p.subdir FROM "
			"buildset_sourcestamps x JOIN sourcestamps ss ON ss.id = x.sourcestampid "
			"JOIN patches p ON p.id = ss.patchid WHERE x.buildsetid = ?1 "
			"ORDER BY ss.codebase, ss.id");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, bsid);
	struct db_patch_data *v = NULL;
	size_t n = 0, alloc = 0;
	int r;
	while ((r = db_step_row(db, s, "buildset patches")) > 0) {
		ARRAY_GROW(v, n + 1, alloc);
		v[n] = sqlite_sched_patch_at(s, 1);
		v[n++].codebase = sqlite_sched_col_strdup(s, 0);
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			db_patch_data_release(&v[i]);
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void db_patch_data_release(struct db_patch_data *p)
{
	free(p->body);
	free(p->subdir);
	free(p->codebase);
	*p = (struct db_patch_data){0};
}

/* --- buildsets ------------------------------------------------------------------------ */

int db_buildset_get(struct db *db, int64_t bsid, struct db_buildset_info *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_SCHED_BS_GET,
		"SELECT bs.scheduler, bs.reason, bs.complete, bs.results, bs.parent_buildid, "
		"(SELECT COUNT(*) FROM buildset_sourcestamps WHERE buildsetid = bs.id), "
		"ss.branch, ss.revision, ss.repository, ss.project, ss.codebase, ss.patchid, "
		"(SELECT COUNT(*) FROM buildset_sourcestamps x JOIN sourcestamps p "
		"ON p.id = x.sourcestampid WHERE x.buildsetid = bs.id AND p.patchid IS NOT NULL) "
		"FROM buildsets bs LEFT JOIN sourcestamps ss ON ss.id = "
		"(SELECT MIN(sourcestampid) FROM buildset_sourcestamps WHERE buildsetid = bs.id) "
		"WHERE bs.id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, bsid);
	int r = db_step_row(db, s, "get buildset");
	if (r < 0)
		return r;
	if (r == 0)
		return db_failf(db, KILN_ENOTFOUND, "no buildset %lld", (long long)bsid);
	*ret = (struct db_buildset_info){
		.bsid = bsid,
		.scheduler = sqlite_sched_col_strdup(s, 0),
		.reason = sqlite_sched_col_strdup(s, 1),
		.complete = sqlite3_column_int(s, 2) != 0,
		.results = sqlite3_column_type(s, 3) == SQLITE_NULL ? RESULTS_NONE
								    : sqlite3_column_int(s, 3),
		.parent_buildid = sqlite3_column_int64(s, 4),
		.nsourcestamps = (size_t)sqlite3_column_int64(s, 5),
		.branch = sqlite_sched_col_strdup(s, 6),
		.revision = sqlite_sched_col_strdup(s, 7),
		.repository = sqlite_sched_col_strdup(s, 8),
		.project = sqlite_sched_col_strdup(s, 9),
		.codebase = sqlite_sched_col_strdup(s, 10),
		.patchid = sqlite3_column_int64(s, 11),
		.npatches = (size_t)sqlite3_column_int64(s, 12),
	};
	return 0;
}

void db_buildset_info_release(struct db_buildset_info *bi)
{
	free(bi->scheduler);
	free(bi->reason);
	free(bi->branch);
	free(bi->revision);
	free(bi->repository);
	free(bi->project);
	free(bi->codebase);
	*bi = (struct db_buildset_info){0};
}

int db_buildset_results_so_far(struct db *db, int64_t bsid, int *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_SCHED_BS_SO_FAR,
			"SELECT results FROM buildrequests WHERE buildsetid = ?1 AND complete = 1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, bsid);
	int worst = RESULTS_NONE, r;
	while ((r = db_step_row(db, s, "buildset results")) == 1)
		worst = db_results_worst(worst, sqlite3_column_int(s, 0));
	if (r < 0)
		return r;
	*ret = worst;
	return 0;
}

/* --- the queue ---------------------------------------------------------------------- */

static int sqlite_sched_collect_ids(struct db *db, sqlite3_stmt *s, const char *what,
				    int64_t **ret_ids, size_t *ret_n)
{
	_cleanup_free_ int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int r;
	while ((r = db_step_row(db, s, what)) == 1) {
		ARRAY_GROW(ids, n + 1, cap);
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	if (r < 0)
		return r;
	*ret_ids = TAKE_PTR(ids);
	*ret_n = n;
	return 0;
}

/* The source line of a sourcestamp: what must be equal for two requests to
 * build the same thing. */
#define SAME_LINE(a, b)                                                                            \
	a ".codebase = " b ".codebase AND " a ".repository = " b ".repository AND " a              \
	  ".project = " b ".project AND " a ".branch IS " b ".branch"

int db_request_compatible(struct db *db, int64_t brid, size_t max, int64_t **ret_ids, size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_SCHED_COMPATIBLE,
		"SELECT o.id FROM buildrequests r "
		"JOIN buildset_sourcestamps rx ON rx.buildsetid = r.buildsetid "
		"JOIN sourcestamps rs ON rs.id = rx.sourcestampid "
		"JOIN buildrequests o INDEXED BY buildrequests_pending ON o.builderid = "
		"r.builderid "
		"AND o.complete = 0 AND o.claimed_at IS NULL "
		"JOIN buildset_sourcestamps ox ON ox.buildsetid = o.buildsetid "
		"JOIN sourcestamps os ON os.id = ox.sourcestampid "
		"WHERE r.id = ?1 AND o.id != r.id AND rs.patchid IS NULL AND os.patchid IS NULL "
		"AND " SAME_LINE("os", "rs") " "
					     "AND (SELECT COUNT(*) FROM buildset_sourcestamps "
					     "WHERE buildsetid = r.buildsetid) = 1 "
					     "AND (SELECT COUNT(*) FROM buildset_sourcestamps "
					     "WHERE buildsetid = o.buildsetid) = 1 "
					     "ORDER BY o.id LIMIT ?2");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, brid);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	return sqlite_sched_collect_ids(db, s, "compatible requests", ret_ids, ret_n);
}

void db_request_lines_free(struct db_request_line *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)v[i].branch);
		free((char *)v[i].revision);
		free((char *)v[i].repository);
		free((char *)v[i].project);
		free((char *)v[i].codebase);
	}
	free(v);
}

/* Appends the rows of s (id, buildsetid, branch, revision, repository,
 * project, codebase) to *v. */
static int sqlite_sched_collect_lines(struct db *db, sqlite3_stmt *s, const char *what,
				      struct db_request_line **v, size_t *n, size_t *cap)
{
	int r;
	while ((r = db_step_row(db, s, what)) == 1) {
		ARRAY_GROW(*v, *n + 1, *cap);
		(*v)[(*n)++] = (struct db_request_line){
			.buildrequestid = sqlite3_column_int64(s, 0),
			.buildsetid = sqlite3_column_int64(s, 1),
			.branch = sqlite_sched_col_strdup(s, 2),
			.revision = sqlite_sched_col_strdup(s, 3),
			.repository = sqlite_sched_col_strdup(s, 4),
			.project = sqlite_sched_col_strdup(s, 5),
			.codebase = sqlite_sched_col_strdup(s, 6),
		};
	}
	return r < 0 ? r : 0;
}

/* The line read by own (one row: the reference), then, if there is one,
 * the rows of rest: db_request_compatible_lines' and
 * db_request_superseded_lines' shape. */
static int sqlite_sched_line_then(struct db *db, sqlite3_stmt *own, sqlite3_stmt *rest,
				  const char *what, struct db_request_line **ret, size_t *ret_n)
{
	struct db_request_line *v = NULL;
	size_t n = 0, cap = 0;
	*ret = NULL;
	*ret_n = 0;
	if (!own || !rest)
		return KILN_EDB;
	int r = sqlite_sched_collect_lines(db, own, what, &v, &n, &cap);
	if (r == 0 && n == 1)
		r = sqlite_sched_collect_lines(db, rest, what, &v, &n, &cap);
	if (r < 0) {
		db_request_lines_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int db_request_compatible_lines(struct db *db, int64_t brid, size_t max,
				struct db_request_line **ret, size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *own = db_stmt(
		db, ST_SCHED_REQUEST_LINE,
		"SELECT r.id, r.buildsetid, s.branch, s.revision, s.repository, s.project, "
		"s.codebase FROM buildrequests r LEFT JOIN buildset_sourcestamps x ON "
		"x.buildsetid = r.buildsetid LEFT JOIN sourcestamps s ON s.id = x.sourcestampid "
		"WHERE r.id = ?1 ORDER BY s.id LIMIT 1");
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_SCHED_COMPATIBLE_LINES,
		"SELECT o.id, o.buildsetid, os.branch, os.revision, os.repository, "
		"os.project, os.codebase FROM buildrequests r "
		"JOIN buildset_sourcestamps rx ON rx.buildsetid = r.buildsetid "
		"JOIN sourcestamps rs ON rs.id = rx.sourcestampid "
		"JOIN buildrequests o INDEXED BY buildrequests_pending ON o.builderid = "
		"r.builderid AND o.complete = 0 AND o.claimed_at IS NULL "
		"JOIN buildset_sourcestamps ox ON ox.buildsetid = o.buildsetid "
		"JOIN sourcestamps os ON os.id = ox.sourcestampid "
		"WHERE r.id = ?1 AND o.id != r.id AND rs.patchid IS NULL AND os.patchid IS "
		"NULL AND " SAME_LINE("os", "rs") " AND (SELECT COUNT(*) FROM "
						  "buildset_sourcestamps WHERE buildsetid = "
						  "r.buildsetid) = 1 AND (SELECT COUNT(*) FROM "
						  "buildset_sourcestamps WHERE buildsetid = "
						  "o.buildsetid) = 1 ORDER BY o.id LIMIT ?2");
	if (own && s) {
		sqlite3_bind_int64(own, 1, brid);
		sqlite3_bind_int64(s, 1, brid);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	}
	return sqlite_sched_line_then(db, own, s, "compatible requests", ret, ret_n);
}

int db_request_superseded_lines(struct db *db, int64_t builderid, int64_t bsid,
				struct db_request_line **ret, size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *own = db_stmt(
		db, ST_SCHED_BUILDSET_LINE,
		"SELECT 0, ?1, s.branch, s.revision, s.repository, s.project, s.codebase "
		"FROM buildset_sourcestamps x JOIN sourcestamps s ON s.id = x.sourcestampid "
		"WHERE x.buildsetid = ?1 ORDER BY s.id LIMIT 1");
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_SCHED_SUPERSEDED_LINES,
			"SELECT DISTINCT o.id, o.buildsetid, NULL, NULL, NULL, NULL, NULL "
			"FROM buildset_sourcestamps nx "
			"JOIN sourcestamps ns ON ns.id = nx.sourcestampid "
			"JOIN buildrequests o INDEXED BY buildrequests_pending ON o.builderid = ?1 "
			"AND o.complete = 0 AND o.claimed_at IS NULL AND o.buildsetid < ?2 "
			"JOIN buildset_sourcestamps ox ON ox.buildsetid = o.buildsetid "
			"JOIN sourcestamps os ON os.id = ox.sourcestampid "
			"WHERE nx.buildsetid = ?2 AND os.patchid IS NULL AND " SAME_LINE(
				"os", "ns") " ORDER BY o.id");
	if (own && s) {
		sqlite3_bind_int64(own, 1, bsid);
		sqlite3_bind_int64(s, 1, builderid);
		sqlite3_bind_int64(s, 2, bsid);
	}
	return sqlite_sched_line_then(db, own, s, "superseded requests", ret, ret_n);
}

static int sqlite_sched_request_set_collapsed(struct db *db, int64_t brid, int64_t buildid)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_SCHED_SET_COLLAPSED,
			"UPDATE buildrequests SET collapsed_into = ?2 WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, brid);
	db_bind_id(s, 2, buildid);
	return db_step_done(db, s, "mark request collapsed");
}

int db_request_set_collapsed(struct db *db, int64_t brid, int64_t buildid)
{
	if (db->pg)
		return db_pg_request_set_collapsed(db, brid, buildid);
	return WRITE(sqlite_sched_request_set_collapsed(db, brid, buildid));
}

int db_request_superseded(struct db *db, int64_t builderid, int64_t bsid, int64_t **ret_ids,
			  size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_SCHED_SUPERSEDED,
			"SELECT DISTINCT o.id FROM buildset_sourcestamps nx "
			"JOIN sourcestamps ns ON ns.id = nx.sourcestampid "
			"JOIN buildrequests o INDEXED BY buildrequests_pending ON o.builderid = ?1 "
			"AND o.complete = 0 AND o.claimed_at IS NULL AND o.buildsetid < ?2 "
			"JOIN buildset_sourcestamps ox ON ox.buildsetid = o.buildsetid "
			"JOIN sourcestamps os ON os.id = ox.sourcestampid "
			"WHERE nx.buildsetid = ?2 AND os.patchid IS NULL AND " SAME_LINE(
				"os", "ns") " "
					    "ORDER BY o.id");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	sqlite3_bind_int64(s, 2, bsid);
	return sqlite_sched_collect_ids(db, s, "superseded requests", ret_ids, ret_n);
}
