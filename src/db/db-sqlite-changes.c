/*
 * The SQLite side of changes (db.h "changes, users, object state"): a change
 * row with its own sourcestamp and parent, the users it names and their
 * per-VCS identities, the buildset -> changes link behind /builds/N/changes
 * and the blamelist, and the object_state table pollers keep their
 * last-seen revisions in.  Schema: migrations/0002-changes.sql.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"

static const char *sqlite_changes_or_empty(const char *s)
{
	return s ? s : "";
}

/* --- users -------------------------------------------------------------------------- */

static int sqlite_changes_user_by_ident(struct db *db, const char *type, const char *data,
					int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_CHG_USER_BY_IDENT,
			"SELECT userid FROM users_info WHERE attr_type = ?1 AND attr_data = ?2");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, type);
	db_bind_text(s, 2, data);
	int r = db_step_row(db, s, "find user");
	if (r == 1)
		*ret = sqlite3_column_int64(s, 0);
	return r;
}

static int sqlite_changes_user_info_add(struct db *db, int64_t userid, const char *type,
					const char *data)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, ST_CHG_USER_INFO_ADD,
						 "INSERT OR IGNORE INTO users_info (userid, "
						 "attr_type, attr_data) VALUES (?1, ?2, ?3)");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, userid);
	db_bind_text(s, 2, type);
	db_bind_text(s, 3, data);
	return db_step_done(db, s, "add user identity");
}

/* The user for an identity: by (type, who), then by email, then by
 * identifier, else a new one.  Missing identities are recorded. */
static int sqlite_changes_user_match(struct db *db, const struct db_user_ident *u, int64_t *ret)
{
	int64_t id = 0;
	int r = sqlite_changes_user_by_ident(db, u->attr_type, u->who, &id);
	if (r < 0)
		return r;
	if (r == 1) {
		*ret = id;
		return 0;
	}
	if (u->email && *u->email) {
		r = sqlite_changes_user_by_ident(db, "email", u->email, &id);
		if (r < 0)
			return r;
	}
	if (r == 0) {
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_CHG_USER_BY_IDENTIFIER,
				"SELECT id FROM users WHERE identifier = ?1");
		if (!s)
			return KILN_EDB;
		db_bind_text(s, 1, u->who);
		r = db_step_row(db, s, "find user");
		if (r < 0)
			return r;
		if (r == 1)
			id = sqlite3_column_int64(s, 0);
	}
	if (r == 0) {
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_CHG_USER_ADD,
			"INSERT INTO users (identifier, full_name, email) VALUES (?1, ?2, ?3)");
		if (!s)
			return KILN_EDB;
		db_bind_text(s, 1, u->who);
		db_bind_text(s, 2, u->full_name);
		db_bind_text(s, 3, u->email);
		if ((r = db_step_done(db, s, "add user")) < 0)
			return r;
		id = sqlite3_last_insert_rowid(db->h);
	}
	if ((r = sqlite_changes_user_info_add(db, id, u->attr_type, u->who)) < 0)
		return r;
	if (u->email && *u->email &&
	    (r = sqlite_changes_user_info_add(db, id, "email", u->email)) < 0)
		return r;
	*ret = id;
	return 0;
}

/* --- changes ------------------------------------------------------------------------ */

static int sqlite_changes_add(struct db *db, const struct db_change_new *c, const char *files,
			      const char *props, int64_t *ret_changeid, int64_t *ret_ssid)
{
	int r;
	int64_t ssid, parent = 0, changeid;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_CHG_SS_ADD,
				"INSERT INTO sourcestamps (branch, revision, repository, project, "
				"codebase, "
				"created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
		if (!s)
			return KILN_EDB;
		db_bind_text(s, 1, c->branch);
		db_bind_text(s, 2, c->revision);
		db_bind_text(s, 3, sqlite_changes_or_empty(c->repository));
		db_bind_text(s, 4, sqlite_changes_or_empty(c->project));
		db_bind_text(s, 5, sqlite_changes_or_empty(c->codebase));
		sqlite3_bind_double(s, 6, c->when_timestamp);
		if ((r = db_step_done(db, s, "add change sourcestamp")) < 0)
			return r;
		ssid = sqlite3_last_insert_rowid(db->h);
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_CHG_PARENT,
				"SELECT id FROM changes WHERE repository = ?1 AND project = ?2 AND "
				"codebase = ?3 AND branch IS ?4 ORDER BY id DESC LIMIT 1");
		if (!s)
			return KILN_EDB;
		db_bind_text(s, 1, sqlite_changes_or_empty(c->repository));
		db_bind_text(s, 2, sqlite_changes_or_empty(c->project));
		db_bind_text(s, 3, sqlite_changes_or_empty(c->codebase));
		db_bind_text(s, 4, c->branch);
		if ((r = db_step_row(db, s, "find parent change")) < 0)
			return r;
		if (r == 1)
			parent = sqlite3_column_int64(s, 0);
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, ST_CHG_ADD,
							 "INSERT INTO changes (author, committer, "
							 "comments, branch, revision, revlink, "
							 "when_timestamp, category, repository, "
							 "codebase, project, files, properties, "
							 "parent_changeid, sourcestampid) "
							 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
							 "?9, ?10, ?11, ?12, ?13, ?14, ?15)");
		if (!s)
			return KILN_EDB;
		db_bind_text(s, 1, sqlite_changes_or_empty(c->author));
		db_bind_text(s, 2, c->committer);
		db_bind_text(s, 3, sqlite_changes_or_empty(c->comments));
		db_bind_text(s, 4, c->branch);
		db_bind_text(s, 5, c->revision);
		db_bind_text(s, 6, c->revlink);
		sqlite3_bind_double(s, 7, c->when_timestamp);
		db_bind_text(s, 8, c->category);
		db_bind_text(s, 9, sqlite_changes_or_empty(c->repository));
		db_bind_text(s, 10, sqlite_changes_or_empty(c->codebase));
		db_bind_text(s, 11, sqlite_changes_or_empty(c->project));
		db_bind_text(s, 12, files);
		db_bind_text(s, 13, props);
		db_bind_id(s, 14, parent);
		sqlite3_bind_int64(s, 15, ssid);
		if ((r = db_step_done(db, s, "add change")) < 0)
			return r;
		changeid = sqlite3_last_insert_rowid(db->h);
	}
	if (c->user && c->user->who && *c->user->who) {
		int64_t userid;
		if ((r = sqlite_changes_user_match(db, c->user, &userid)) < 0)
			return r;
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_CHG_USER_LINK,
			"INSERT OR IGNORE INTO change_users (changeid, userid) VALUES (?1, ?2)");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, changeid);
		sqlite3_bind_int64(s, 2, userid);
		if ((r = db_step_done(db, s, "link change user")) < 0)
			return r;
	}
	*ret_changeid = changeid;
	*ret_ssid = ssid;
	return 0;
}

int db_change_add(struct db *db, const struct db_change_new *c, int64_t *ret_changeid,
		  int64_t *ret_sourcestampid)
{
	if (c->properties && !json_is_object(c->properties))
		return db_failf(db, -EINVAL, "change properties are not a JSON object");
	json_t *files = json_array();
	for (size_t i = 0; i < c->nfiles; i++)
		json_array_append_new(files, json_string(c->files[i] ? c->files[i] : ""));
	_cleanup_free_ char *files_text = json_dumps(files, JSON_COMPACT);
	json_decref(files);
	_cleanup_free_ char *props =
		c->properties ? json_dumps(c->properties, JSON_COMPACT) : xstrdup("{}");
	if (!files_text || !props)
		return db_failf(db, -EINVAL, "change files or properties cannot be encoded");
	int64_t changeid = 0, ssid = 0;
	int r = db->pg ? db_pg_change_add(db, c, files_text, props, &changeid, &ssid)
		       : WRITE(sqlite_changes_add(db, c, files_text, props, &changeid, &ssid));
	if (r < 0)
		return r;
	if (ret_changeid)
		*ret_changeid = changeid;
	if (ret_sourcestampid)
		*ret_sourcestampid = ssid;
	return 0;
}

static int sqlite_changes_buildset_link(struct db *db, int64_t bsid, const int64_t *changeids,
					size_t n)
{
	for (size_t i = 0; i < n; i++) {
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, ST_CHG_BS_LINK,
							 "INSERT OR IGNORE INTO buildset_changes "
							 "(buildsetid, changeid) VALUES (?1, ?2)");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, bsid);
		sqlite3_bind_int64(s, 2, changeids[i]);
		int rc = sqlite3_step(s);
		if ((rc & 0xff) == SQLITE_CONSTRAINT)
			return db_failf(db, KILN_ENOTFOUND, "no buildset %lld or change %lld",
					(long long)bsid, (long long)changeids[i]);
		if (rc != SQLITE_DONE)
			return db_fail(db, "link buildset change");
	}
	return 0;
}

int db_buildset_add_changes(struct db *db, int64_t bsid, const int64_t *changeids, size_t n)
{
	if (n == 0)
		return 0;
	if (db->pg)
		return db_pg_buildset_add_changes(db, bsid, changeids, n);
	return WRITE(sqlite_changes_buildset_link(db, bsid, changeids, n));
}

/* The authors of s's rows (one text column) as a JSON array. */
static int sqlite_authors(struct db *db, sqlite3_stmt *s, json_t **ret)
{
	json_t *list = json_array();
	int r;
	while ((r = db_step_row(db, s, "blamelist")) == 1)
		json_array_append_new(list, json_string((const char *)sqlite3_column_text(s, 0)));
	if (r < 0) {
		json_decref(list);
		return r;
	}
	*ret = list;
	return 0;
}

int db_build_blamelist(struct db *db, int64_t buildid, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_CHG_BLAMELIST,
			"SELECT DISTINCT c.author FROM builds b "
			"JOIN buildrequests br ON br.id = b.buildrequestid "
			"JOIN buildset_changes bc ON bc.buildsetid = br.buildsetid "
			"JOIN changes c ON c.id = bc.changeid WHERE b.id = ?1 ORDER BY c.author");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	return sqlite_authors(db, s, ret);
}

int db_buildset_blamelist(struct db *db, int64_t bsid, json_t **ret)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_CHG_BS_BLAMELIST,
			"SELECT DISTINCT c.author FROM buildset_changes bc "
			"JOIN changes c ON c.id = bc.changeid WHERE bc.buildsetid = ?1 "
			"ORDER BY c.author");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, bsid);
	return sqlite_authors(db, s, ret);
}

int db_change_user(struct db *db, int64_t changeid, int64_t *ret_userid)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_CHG_USER_OF,
		"SELECT userid FROM change_users WHERE changeid = ?1 ORDER BY userid LIMIT 1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, changeid);
	int r = db_step_row(db, s, "user of change");
	if (r == 1)
		*ret_userid = sqlite3_column_int64(s, 0);
	return r;
}

/* --- object state ------------------------------------------------------------------- */

int db_state_get(struct db *db, const char *name, json_t **ret)
{
	if (db->pg)
		return db_pg_state_get(db, name, ret);
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_CHG_STATE_GET, "SELECT value FROM object_state WHERE name = ?1");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, name);
	int r = db_step_row(db, s, "read state");
	if (r <= 0)
		return r;
	json_error_t e;
	json_t *j = json_loadb((const char *)sqlite3_column_text(s, 0),
			       (size_t)sqlite3_column_bytes(s, 0), JSON_DECODE_ANY, &e);
	if (!j)
		return db_failf(db, KILN_EDB, "state '%s': stored value: %s", name, e.text);
	*ret = j;
	return 1;
}

static int sqlite_changes_state_set(struct db *db, const char *name, const char *text)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_CHG_STATE_SET,
			"INSERT INTO object_state (name, value) VALUES (?1, ?2) "
			"ON CONFLICT (name) DO UPDATE SET value = excluded.value");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, name);
	db_bind_text(s, 2, text);
	return db_step_done(db, s, "write state");
}

int db_state_set(struct db *db, const char *name, json_t *value)
{
	_cleanup_free_ char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return db_failf(db, -EINVAL, "state '%s' cannot be encoded", name);
	if (db->pg)
		return db_pg_state_set(db, name, text);
	return WRITE(sqlite_changes_state_set(db, name, text));
}

/* --- the builds of a page of changes (slice "console") -------------------------------- */

/* change -> buildset_changes -> buildsets -> buildrequests -> builds; the
 * latest build (highest id) of each (change, builder): SQLite takes the
 * bare columns of a MAX() aggregate from the row holding the maximum. */
#define SQLITE_CHANGES_CELLS_SQL                                                                   \
	"SELECT bc.changeid, MAX(b.id), b.builderid, b.number, b.results, b.complete, "            \
	"b.started_at, b.complete_at, b.state_string "                                             \
	"FROM json_each(?1) j JOIN buildset_changes bc ON bc.changeid = j.value "                  \
	"JOIN buildrequests br ON br.buildsetid = bc.buildsetid "                                  \
	"JOIN builds b ON b.buildrequestid = br.id "                                               \
	"GROUP BY bc.changeid, b.builderid ORDER BY bc.changeid DESC, b.builderid LIMIT ?2"

static json_t *sqlite_changes_cell_row(sqlite3_stmt *s)
{
	json_t *o = json_object();
	json_object_set_new(o, "changeid", json_integer(sqlite3_column_int64(s, 0)));
	json_object_set_new(o, "buildid", json_integer(sqlite3_column_int64(s, 1)));
	json_object_set_new(o, "builderid", json_integer(sqlite3_column_int64(s, 2)));
	json_object_set_new(o, "number", json_integer(sqlite3_column_int64(s, 3)));
	json_object_set_new(o, "results",
			    sqlite3_column_type(s, 4) == SQLITE_NULL
				    ? json_null()
				    : json_integer(sqlite3_column_int64(s, 4)));
	json_object_set_new(o, "complete", json_boolean(sqlite3_column_int(s, 5)));
	for (int c = 6; c <= 7; c++)
		json_object_set_new(
			o, c == 6 ? "started_at" : "complete_at",
			sqlite3_column_type(s, c) == SQLITE_NULL
				? json_null()
				: json_integer((json_int_t)sqlite3_column_double(s, c)));
	const char *st = (const char *)sqlite3_column_text(s, 8);
	json_object_set_new(o, "state_string", json_string(st ? st : ""));
	return o;
}

int db_changes_cells(struct db *db, const int64_t *changeids, size_t n, int64_t max_rows,
		     json_t **ret, bool *ret_truncated)
{
	*ret = NULL;
	*ret_truncated = false;
	if (max_rows < 0)
		return -EINVAL;
	json_t *ids = json_array();
	for (size_t i = 0; i < n; i++) {
		if (changeids[i] <= 0) {
			json_decref(ids);
			return -EINVAL;
		}
		json_array_append_new(ids, json_integer(changeids[i]));
	}
	char *text = json_dumps(ids, JSON_COMPACT);
	json_decref(ids);
	if (!text)
		return -ENOMEM;
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(db, SQLITE_CHANGES_CELLS_SQL);
	if (!s) {
		free(text);
		return KILN_EDB;
	}
	sqlite3_bind_text(s, 1, text, -1, SQLITE_TRANSIENT);
	free(text);
	sqlite3_bind_int64(s, 2, max_rows + 1);
	json_t *list = json_array();
	int r;
	while ((r = db_step_row(db, s, "change builds")) == 1) {
		if ((int64_t)json_array_size(list) == max_rows) {
			*ret_truncated = true;
			continue;
		}
		json_array_append_new(list, sqlite_changes_cell_row(s));
	}
	if (r < 0) {
		json_decref(list);
		return r;
	}
	*ret = list;
	return 0;
}
