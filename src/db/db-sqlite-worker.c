/*
 * The SQLite side of workers: upsert by name, info, connection, pause and
 * graceful flags, and the builders each worker is configured for per master.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"

/* --- workers -------------------------------------------------------------------- */

static int sqlite_worker_ensure(struct db *db, const char *name, int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_WORKER_ENSURE,
			"INSERT INTO workers (name) VALUES (?1) "
			"ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, name);
	int r = db_step_row(db, s, "ensure worker");
	if (r <= 0)
		return r < 0 ? r : db_failf(db, KILN_EDB, "ensure worker: no id returned");
	*ret = sqlite3_column_int64(s, 0);
	return 0;
}

int db_worker_ensure(struct db *db, const char *name, int64_t *ret_workerid)
{
	if (!name || !*name)
		return db_failf(db, -EINVAL, "worker name is empty");
	if (db->pg)
		return db_pg_ensure_wait(db, DB_NAMED_WORKER, name, NULL, NULL, ret_workerid);
	int64_t id = 0;
	int r = WRITE(sqlite_worker_ensure(db, name, &id));
	if (r >= 0)
		*ret_workerid = id;
	return r;
}

static int sqlite_worker_set_info(struct db *db, int64_t workerid, const char *text)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_WORKER_SET_INFO, "UPDATE workers SET info = ?1 WHERE id = ?2");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, text);
	sqlite3_bind_int64(s, 2, workerid);
	return db_update_one(db, s, "worker info");
}

int db_worker_set_info(struct db *db, int64_t workerid, json_t *info)
{
	if (info && !json_is_object(info))
		return db_failf(db, -EINVAL, "worker info is not a JSON object");
	_cleanup_free_ char *text = info ? json_dumps(info, JSON_COMPACT) : xstrdup("{}");
	if (!text)
		return db_failf(db, -EINVAL, "worker info cannot be encoded");
	if (db->pg)
		return db_pg_worker_set_info(db, workerid, text);
	return WRITE(sqlite_worker_set_info(db, workerid, text));
}

static int sqlite_worker_set_col(struct db *db, int id, const char *sql, int64_t workerid,
				 int64_t v, bool as_id)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, id, sql);
	if (!s)
		return KILN_EDB;
	if (as_id)
		db_bind_id(s, 1, v);
	else
		sqlite3_bind_int64(s, 1, v);
	sqlite3_bind_int64(s, 2, workerid);
	return db_update_one(db, s, "worker");
}

int db_worker_set_connected(struct db *db, int64_t workerid, int64_t masterid)
{
	if (db->pg)
		return db_pg_worker_set(db, workerid, DB_PG_WORKER_MASTER, (double)masterid);
	return WRITE(sqlite_worker_set_col(db, ST_WORKER_SET_CONNECTED,
					   "UPDATE workers SET masterid = ?1 WHERE id = ?2",
					   workerid, masterid, true));
}

int db_worker_set_paused(struct db *db, int64_t workerid, bool paused)
{
	if (db->pg)
		return db_pg_worker_set(db, workerid, DB_PG_WORKER_PAUSED, paused);
	return WRITE(sqlite_worker_set_col(db, ST_WORKER_SET_PAUSED,
					   "UPDATE workers SET paused = ?1 WHERE id = ?2", workerid,
					   paused, false));
}

int db_worker_set_graceful(struct db *db, int64_t workerid, bool graceful)
{
	if (db->pg)
		return db_pg_worker_set(db, workerid, DB_PG_WORKER_GRACEFUL, graceful);
	return WRITE(sqlite_worker_set_col(db, ST_WORKER_SET_GRACEFUL,
					   "UPDATE workers SET graceful = ?1 WHERE id = ?2",
					   workerid, graceful, false));
}

/* ids as a JSON array text for json_each() (owned by the caller), or NULL
 * past the cap, which cannot happen for ids of this size. */
static char *sqlite_worker_id_list(const int64_t *ids, size_t n)
{
	struct buf b;
	buf_init(&b, 32 + n * 24);
	int r = buf_addch(&b, '[');
	for (size_t i = 0; i < n && r >= 0; i++)
		r = buf_addf(&b, "%s%lld", i ? "," : "", (long long)ids[i]);
	if (r >= 0)
		r = buf_addch(&b, ']');
	if (r < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

static int sqlite_worker_set_configured(struct db *db, int64_t workerid, int64_t masterid,
					const int64_t *builderids, size_t n)
{
	int r = db_exists(db, ST_WORKER_EXISTS, "SELECT 1 FROM workers WHERE id = ?1", workerid);
	if (r <= 0)
		return r < 0 ? r
			     : db_failf(db, KILN_ENOTFOUND, "no worker %lld", (long long)workerid);
	/* rows already there stay (a restart writes nothing); stale ones go last */
	_cleanup_free_ char *list = sqlite_worker_id_list(builderids, n);
	if (!list)
		return db_failf(db, -ENOBUFS, "configured workers: id list too long");
	for (size_t i = 0; i < n; i++) {
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_CONFIGURED_ADD,
			"INSERT OR IGNORE INTO configured_workers (workerid, masterid, builderid) "
			"VALUES (?1, ?2, ?3)");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, workerid);
		sqlite3_bind_int64(s, 2, masterid);
		sqlite3_bind_int64(s, 3, builderids[i]);
		if ((r = db_step_done(db, s, "configured workers")) < 0)
			return r;
	}
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_CONFIGURED_DEL,
			"DELETE FROM configured_workers WHERE workerid = ?1 AND masterid = ?2 "
			"AND builderid NOT IN (SELECT value FROM json_each(?3))");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, workerid);
	sqlite3_bind_int64(s, 2, masterid);
	db_bind_text(s, 3, list);
	r = db_step_done(db, s, "configured workers");
	return r < 0 ? r : 0;
}

int db_worker_set_configured(struct db *db, int64_t workerid, int64_t masterid,
			     const int64_t *builderids, size_t n)
{
	if (db->pg)
		return db_pg_worker_set_configured(db, workerid, masterid, builderids, n);
	return WRITE(sqlite_worker_set_configured(db, workerid, masterid, builderids, n));
}

/* --- last seen and the pause flag (slice "uimisc") -------------------------------- */

static int sqlite_worker_set_last_seen(struct db *db, int64_t workerid, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, ST_WORKER_SET_LAST_SEEN,
						 "UPDATE workers SET last_seen = ?1 WHERE id = ?2");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_double(s, 1, when);
	sqlite3_bind_int64(s, 2, workerid);
	return db_update_one(db, s, "worker last seen");
}

int db_worker_set_last_seen(struct db *db, int64_t workerid, double when)
{
	if (db->pg)
		return db_pg_worker_set(db, workerid, DB_PG_WORKER_LAST_SEEN, when);
	return WRITE1(sqlite_worker_set_last_seen(db, workerid, when));
}

int db_worker_paused(struct db *db, int64_t workerid, bool *ret_paused)
{
	int r = db_exists(db, ST_WORKER_EXISTS, "SELECT 1 FROM workers WHERE id = ?1", workerid);
	if (r <= 0)
		return r;
	r = db_exists(db, ST_WORKER_PAUSED, "SELECT 1 FROM workers WHERE id = ?1 AND paused != 0",
		      workerid);
	if (r < 0)
		return r;
	*ret_paused = r > 0;
	return 1;
}
