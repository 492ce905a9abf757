/*
 * The SQLite backend of db.h: opening (WAL, busy timeout, foreign keys,
 * migrations), per-loop-turn write batching, the prepared-statement cache,
 * and the small entities (masters, builders, workers, buildsets, build
 * requests, builds, steps).  Logs are in db-sqlite-log.c, listings in
 * db-sqlite-list.c.
 */
#include "db/db-internal.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

#define LOG_SUBSYS "db"
#include "common/log.h"

#define DB_BUSY_TIMEOUT_MS 5000

static _Thread_local char open_errmsg[1024];

const char *db_open_errmsg(void)
{
	return open_errmsg;
}

/* --- errors --------------------------------------------------------------------- */

int db_fail(struct db *db, const char *what)
{
	snprintf(db->errmsg, sizeof(db->errmsg), "%s: %s (%d)", what, sqlite3_errmsg(db->h),
		 sqlite3_extended_errcode(db->h));
	log_debug("%s", db->errmsg);
	return KILN_EDB;
}

int db_failf(struct db *db, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
	va_end(ap);
	return r;
}

const char *db_errmsg(struct db *db)
{
	return db ? db->errmsg : open_errmsg;
}

/* --- statements ----------------------------------------------------------------- */

sqlite3_stmt *db_stmt(struct db *db, int id, const char *sql)
{
	assert(id >= 0 && id < ST__MAX);
	sqlite3_stmt *s = db->stmts[id];
	if (s)
		return s;
	if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
		/* Fixed SQL failing to prepare is a bug or a schema mismatch:
		 * callers see NULL and report db_errmsg. */
		db_fail(db, "prepare");
		return NULL;
	}
	db->stmts[id] = s;
	return s;
}

sqlite3_stmt *db_stmt_dynamic(struct db *db, const char *sql)
{
	struct db_cached_stmt *victim = &db->list_cache[0];
	for (size_t i = 0; i < DB_LIST_CACHE; i++) {
		struct db_cached_stmt *c = &db->list_cache[i];
		if (c->sql && strcmp(c->sql, sql) == 0) {
			c->used = ++db->list_tick;
			return c->stmt;
		}
		if (!c->sql || c->used < victim->used)
			victim = c;
		if (!victim->sql)
			break;
	}
	sqlite3_stmt *s;
	if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
		db_fail(db, "prepare");
		return NULL;
	}
	if (victim->sql) {
		sqlite3_finalize(victim->stmt);
		free(victim->sql);
	}
	victim->sql = xstrdup(sql);
	victim->stmt = s;
	victim->used = ++db->list_tick;
	return s;
}

int db_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (!v)
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

int db_bind_id(sqlite3_stmt *s, int i, int64_t id)
{
	if (id <= 0)
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_int64(s, i, id);
}

int db_step_done(struct db *db, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_fail(db, what);
	return 0;
}

int db_step_row(struct db *db, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_fail(db, what);
}

/* Runs fixed SQL without results (transaction control, pragmas). */
static int db_exec(struct db *db, int id, const char *sql)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, id, sql);
	if (!s)
		return KILN_EDB;
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_fail(db, sql);
	return 0;
}

static int tx_exec(struct db *db, int id, const char *sql)
{
	return db_exec(db, id, sql);
}

/* --- batching ------------------------------------------------------------------- */

static void db_batch_stop_handles(struct db *db)
{
	if (db->loop && db->handles_open == 2) {
		uv_check_stop(&db->check);
		uv_idle_stop(&db->idle);
	}
}

static void db_on_check(uv_check_t *h)
{
	struct db *db = h->data;
	int r = db_flush(db);
	if (r < 0 && db->commit_error_fn)
		db->commit_error_fn(db, r, db->errmsg, db->commit_error_ud);
}

static void db_on_idle(uv_idle_t *h)
{
	(void)h; /* only there so the poll phase does not block with a batch open */
}

static int db_txn_begin(struct db *db)
{
	if (db->in_txn)
		return 0;
	int r = tx_exec(db, ST_TX_BEGIN, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	db->in_txn = true;
	if (db->loop && db->handles_open == 2) {
		uv_check_start(&db->check, db_on_check);
		uv_idle_start(&db->idle, db_on_idle);
	}
	return 0;
}

static void db_txn_rollback(struct db *db)
{
	if (!db->in_txn)
		return;
	/* Keep the first error's text: the rollback's own is less useful. */
	char saved[sizeof(db->errmsg)];
	memcpy(saved, db->errmsg, sizeof(saved));
	if (sqlite3_get_autocommit(db->h) == 0)
		tx_exec(db, ST_TX_ROLLBACK, "ROLLBACK");
	memcpy(db->errmsg, saved, sizeof(saved));
	db->in_txn = false;
	db->savepoint_depth = 0;
	db_log_drop_all(db);
	db_batch_stop_handles(db);
}

int db_flush(struct db *db)
{
	if (!db->in_txn)
		return 0;
	int r = db_log_sync_all(db);
	if (r >= 0 && db->fail_commit_at && ++db->commits == db->fail_commit_at)
		r = db_failf(db, KILN_EDB,
			     "COMMIT: disk I/O error (injected by KILN_TEST_FAIL_COMMIT=%llu)",
			     (unsigned long long)db->fail_commit_at);
	else if (r >= 0)
		r = tx_exec(db, ST_TX_COMMIT, "COMMIT");
	if (r < 0) {
		db_txn_rollback(db);
		return r;
	}
	db->in_txn = false;
	db_batch_stop_handles(db);
	return 0;
}

int db_write_begin(struct db *db)
{
	int r = db_txn_begin(db);
	if (r < 0)
		return r;
	if (db->savepoint_depth++ == 0) {
		r = tx_exec(db, ST_TX_SAVEPOINT, "SAVEPOINT w");
		if (r < 0) {
			db->savepoint_depth = 0;
			if (!db->loop)
				db_txn_rollback(db);
			return r;
		}
	}
	return 0;
}

int db_write_end(struct db *db, int r)
{
	assert(db->savepoint_depth > 0);
	if (--db->savepoint_depth > 0)
		return r;
	if (r < 0) {
		/* Undo this call only; the rest of the batch stays. */
		int k = tx_exec(db, ST_TX_ROLLBACK_TO, "ROLLBACK TO w");
		if (k >= 0)
			k = tx_exec(db, ST_TX_RELEASE, "RELEASE w");
		if (k < 0 || !db->loop)
			db_txn_rollback(db);
		return r;
	}
	int k = tx_exec(db, ST_TX_RELEASE, "RELEASE w");
	if (k < 0) {
		db_txn_rollback(db);
		return k;
	}
	if (!db->loop)
		return db_flush(db);
	return r;
}

/* --- open / close --------------------------------------------------------------- */

static int db_pragma(struct db *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db->h, sql, NULL, NULL, &err) != SQLITE_OK) {
		db_failf(db, KILN_EDB, "%s: %s", sql, err ? err : "error");
		sqlite3_free(err);
		return KILN_EDB;
	}
	return 0;
}

/* PRAGMA user_version: the version (>= 0) or an error.  Returned rather
 * than stored through a pointer so no caller can read an unset value (gcc
 * -O3 cannot see that db_fail() is always negative). */
static int db_read_user_version(struct db *db)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return db_fail(db, "user_version");
	int rc = sqlite3_step(s);
	int v = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	if (v < 0)
		return db_fail(db, "user_version");
	return v;
}

/* Applies every pending migration in one transaction, recording the version
 * in PRAGMA user_version.  The version is re-read under the write lock so two
 * processes opening a new file together do not both migrate. */
static int db_migrate(struct db *db)
{
	size_t n;
	const struct db_migration *m = db_migrations(&n);
	int latest = n ? m[n - 1].version : 0;
	int v = db_read_user_version(db);
	if (v < 0)
		return v;
	if (v > latest)
		return db_failf(db, KILN_EDB, "database schema version %d is newer than this kiln (%d)",
				v, latest);
	if (v == latest)
		return 0;
	int r = db_pragma(db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	v = db_read_user_version(db);
	r = v < 0 ? v : 0;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		if (m[i].version <= v)
			continue;
		char *err = NULL;
		if (sqlite3_exec(db->h, m[i].sql, NULL, NULL, &err) != SQLITE_OK) {
			r = db_failf(db, KILN_EDB, "migration %s: %s", m[i].name, err ? err : "error");
			sqlite3_free(err);
		}
	}
	if (r >= 0) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", latest);
		r = db_pragma(db, sql);
	}
	if (r >= 0)
		r = db_pragma(db, "COMMIT");
	if (r < 0)
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* "sqlite:PATH", "sqlite::memory:", and Buildbot's "sqlite:///rel" /
 * "sqlite:////abs" forms; relative paths are taken from basedir. */
static int db_url_path(const char *url, const char *basedir, char **ret)
{
	if (strncmp(url, "sqlite:", 7) != 0)
		return -EPROTONOSUPPORT;
	const char *p = url + 7;
	if (strncmp(p, "///", 3) == 0)
		p += 3; /* sqlite:///rel, sqlite:////abs */
	if (!*p)
		return -EINVAL;
	if (strcmp(p, ":memory:") == 0 || p[0] == '/' || !basedir || !*basedir)
		*ret = xstrdup(p);
	else
		*ret = xasprintf("%s/%s", basedir, p);
	return 0;
}

static void db_free(struct db *db)
{
	buf_release(&db->zbuf);
	free(db->stmts);
	free(db);
}

static void db_on_handle_closed(uv_handle_t *h)
{
	struct db *db = h->data;
	if (--db->handles_open == 0)
		db_free(db);
}

static void db_release_sqlite(struct db *db)
{
	db_log_drop_all(db);
	for (int i = 0; i < ST__MAX; i++)
		if (db->stmts[i])
			sqlite3_finalize(db->stmts[i]);
	memset(db->stmts, 0, sizeof(*db->stmts) * ST__MAX);
	for (size_t i = 0; i < DB_LIST_CACHE; i++) {
		if (db->list_cache[i].sql) {
			sqlite3_finalize(db->list_cache[i].stmt);
			free(db->list_cache[i].sql);
			db->list_cache[i].sql = NULL;
		}
	}
	if (db->zc)
		ZSTD_freeCCtx(db->zc);
	if (db->zd)
		ZSTD_freeDCtx(db->zd);
	db->zc = NULL;
	db->zd = NULL;
	sqlite3_close(db->h);
	db->h = NULL;
}

/* KILN_TEST_FAIL_COMMIT=N (db.h): 0 when unset or empty. */
static int db_test_fail_commit(uint64_t *ret)
{
	const char *v = getenv("KILN_TEST_FAIL_COMMIT");
	*ret = 0;
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *end || v[0] == '-' || n == 0) {
		snprintf(open_errmsg, sizeof(open_errmsg),
			 "KILN_TEST_FAIL_COMMIT must be a positive integer, not '%.100s'", v);
		return -EINVAL;
	}
	*ret = n;
	return 0;
}

int db_open(uv_loop_t *loop, const char *url, const char *basedir, struct db **ret)
{
	open_errmsg[0] = '\0';
	_cleanup_free_ char *path = NULL;
	int r = db_url_path(url, basedir, &path);
	if (r < 0) {
		snprintf(open_errmsg, sizeof(open_errmsg), "unsupported database url '%s'", url);
		return r;
	}
	uint64_t fail_commit_at;
	r = db_test_fail_commit(&fail_commit_at);
	if (r < 0)
		return r;
	struct db *db = xcalloc(1, sizeof(*db));
	db->fail_commit_at = fail_commit_at;
	db->stmts = xcalloc(ST__MAX, sizeof(*db->stmts));
	db->log_cap = KILN_MAX_LOG_BYTES;
	buf_init(&db->zbuf, SIZE_MAX / 2);
	int rc = sqlite3_open_v2(path, &db->h,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(open_errmsg, sizeof(open_errmsg), "cannot open '%s': %s", path,
			 db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
		sqlite3_close(db->h);
		db_free(db);
		return KILN_EDB;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);
	r = db_pragma(db, "PRAGMA journal_mode = WAL");
	if (r >= 0)
		r = db_pragma(db, "PRAGMA synchronous = NORMAL");
	if (r >= 0)
		r = db_pragma(db, "PRAGMA foreign_keys = ON");
	if (r >= 0)
		r = db_list_init_sql(db);
	if (r >= 0)
		r = db_migrate(db);
	if (r >= 0) {
		db->zc = ZSTD_createCCtx();
		db->zd = ZSTD_createDCtx();
		if (!db->zc || !db->zd)
			r = db_failf(db, -ENOMEM, "cannot create zstd context");
	}
	if (r < 0) {
		snprintf(open_errmsg, sizeof(open_errmsg), "'%.400s': %s", path, db->errmsg);
		db_release_sqlite(db);
		db_free(db);
		return r;
	}
	if (loop) {
		db->loop = loop;
		uv_check_init(loop, &db->check);
		uv_idle_init(loop, &db->idle);
		db->check.data = db;
		db->idle.data = db;
		/* The check handle is active only while a batch is open, and
		 * then keeps the loop alive until it has committed; the idle
		 * handle only stops the poll phase from blocking meanwhile. */
		uv_unref((uv_handle_t *)&db->idle);
		db->handles_open = 2;
	}
	*ret = db;
	return 0;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	int r = db_flush(db);
	if (r < 0 && db->commit_error_fn)
		db->commit_error_fn(db, r, db->errmsg, db->commit_error_ud);
	db_release_sqlite(db);
	if (db->handles_open == 2) {
		uv_check_stop(&db->check);
		uv_idle_stop(&db->idle);
		uv_close((uv_handle_t *)&db->check, db_on_handle_closed);
		uv_close((uv_handle_t *)&db->idle, db_on_handle_closed);
	} else {
		db_free(db);
	}
}

int db_schema_version(struct db *db)
{
	return db_read_user_version(db);
}

void db_set_commit_error_cb(struct db *db, db_commit_error_fn fn, void *userdata)
{
	db->commit_error_fn = fn;
	db->commit_error_ud = userdata;
}

void db_set_log_cap(struct db *db, uint64_t max_bytes)
{
	db->log_cap = max_bytes < KILN_MAX_LOG_BYTES ? max_bytes : KILN_MAX_LOG_BYTES;
}

/* --- helpers for the entities --------------------------------------------------- */

/* Runs an UPDATE that must touch one row: KILN_ENOTFOUND if it touched none. */
static int db_update_one(struct db *db, sqlite3_stmt *s, const char *what)
{
	int r = db_step_done(db, s, what);
	if (r < 0)
		return r;
	if (db_changes(db) == 0)
		return db_failf(db, KILN_ENOTFOUND, "%s: no such row", what);
	return 0;
}

static int db_exists(struct db *db, int id, const char *sql, int64_t key)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, id, sql);
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, key);
	return db_step_row(db, s, "exists");
}

/* When an UPDATE guarded by a state condition touched nothing: tell "no
 * such row" from "wrong state". */
static int db_guard_fail(struct db *db, int id, const char *sql, int64_t key, int state_err,
			 const char *what)
{
	int e = db_exists(db, id, sql, key);
	if (e < 0)
		return e;
	if (e == 0)
		return db_failf(db, KILN_ENOTFOUND, "%s: no such row %lld", what, (long long)key);
	return db_failf(db, state_err, "%s: %lld is not in a state that allows it", what,
			(long long)key);
}

/* --- masters -------------------------------------------------------------------- */

static int master_register(struct db *db, const char *name, int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_MASTER_REGISTER,
		"INSERT INTO masters (name, active, last_active) VALUES (?1, 1, ?2) "
		"ON CONFLICT (name) DO UPDATE SET active = 1, last_active = excluded.last_active "
		"RETURNING id");
	if (!s)
		return KILN_EDB;
	db_bind_text(s, 1, name);
	sqlite3_bind_double(s, 2, clock_wall());
	int r = db_step_row(db, s, "register master");
	if (r <= 0)
		return r < 0 ? r : db_failf(db, KILN_EDB, "register master: no id returned");
	*ret = sqlite3_column_int64(s, 0);
	return 0;
}

int db_master_register(struct db *db, const char *name, int64_t *ret_masterid)
{
	int64_t id = 0;
	int r = WRITE(master_register(db, name, &id));
	if (r >= 0)
		*ret_masterid = id;
	return r;
}

static int master_set_active(struct db *db, int64_t masterid, bool active, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_MASTER_SET_ACTIVE, "UPDATE masters SET active = ?1, last_active = ?2 WHERE id = ?3");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int(s, 1, active);
	sqlite3_bind_double(s, 2, when);
	sqlite3_bind_int64(s, 3, masterid);
	return db_update_one(db, s, "master set active");
}

int db_master_set_active(struct db *db, int64_t masterid, bool active, double when)
{
	return WRITE(master_set_active(db, masterid, active, when));
}

static int master_recover(struct db *db, int64_t masterid, int results, const char *state_string,
			  double when)
{
	int r;
	/* Logs first: their tails are compressed by the normal finish path. */
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_REC_LOGS,
			"SELECT l.id FROM builds b JOIN steps st ON st.buildid = b.id "
			"JOIN logs l ON l.stepid = st.id "
			"WHERE b.masterid = ?1 AND b.complete = 0 AND l.complete = 0");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, masterid);
		size_t n = 0, cap = 0;
		_cleanup_free_ int64_t *ids = NULL;
		while ((r = db_step_row(db, s, "recover logs")) == 1) {
			ARRAY_GROW(ids, n + 1, cap);
			ids[n++] = sqlite3_column_int64(s, 0);
		}
		if (r < 0)
			return r;
		sqlite3_reset(s);
		for (size_t i = 0; i < n; i++) {
			r = db_log_finish_locked(db, ids[i]);
			if (r < 0)
				return r;
		}
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_REC_STEPS,
			"UPDATE steps SET complete = 1, complete_at = ?2, results = ?3 "
			"WHERE complete = 0 AND buildid IN "
			"(SELECT id FROM builds WHERE masterid = ?1 AND complete = 0)");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, masterid);
		sqlite3_bind_double(s, 2, when);
		sqlite3_bind_int(s, 3, results);
		if ((r = db_step_done(db, s, "recover steps")) < 0)
			return r;
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_REC_BUILDS,
			"UPDATE builds SET complete = 1, complete_at = ?2, results = ?3, "
			"state_string = COALESCE(?4, state_string) WHERE masterid = ?1 AND complete = 0");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, masterid);
		sqlite3_bind_double(s, 2, when);
		sqlite3_bind_int(s, 3, results);
		db_bind_text(s, 4, state_string);
		if ((r = db_step_done(db, s, "recover builds")) < 0)
			return r;
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_REC_REQUESTS,
			"UPDATE buildrequests SET claimed_at = NULL, claimed_by_masterid = NULL "
			"WHERE claimed_by_masterid = ?1 AND complete = 0");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, masterid);
		if ((r = db_step_done(db, s, "recover requests")) < 0)
			return r;
	}
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_REC_WORKERS, "UPDATE workers SET masterid = NULL WHERE masterid = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, masterid);
		if ((r = db_step_done(db, s, "recover workers")) < 0)
			return r;
	}
	return 0;
}

int db_master_recover(struct db *db, int64_t masterid, int results, const char *state_string,
		      double when)
{
	return WRITE(master_recover(db, masterid, results, state_string, when));
}

/* --- builders ------------------------------------------------------------------- */

static int builder_ensure(struct db *db, const char *name, const char *description,
			  const char *tags_json, int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BUILDER_ENSURE,
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
			return db_failf(db, -EINVAL, "builder '%s': tags are not a JSON array", name);
	}
	int64_t id = 0;
	int r = WRITE(builder_ensure(db, name, description, tags_json, &id));
	if (r >= 0)
		*ret_builderid = id;
	return r;
}

static int builder_set_masters(struct db *db, int64_t builderid, const int64_t *masterids,
			       size_t n)
{
	int r = db_exists(db, ST_BUILDER_EXISTS, "SELECT 1 FROM builders WHERE id = ?1", builderid);
	if (r <= 0)
		return r < 0 ? r : db_failf(db, KILN_ENOTFOUND, "no builder %lld", (long long)builderid);
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_BUILDER_MASTERS_DEL, "DELETE FROM builder_masters WHERE builderid = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, builderid);
		if ((r = db_step_done(db, s, "builder masters")) < 0)
			return r;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_BUILDER_MASTERS_ADD,
				"INSERT OR IGNORE INTO builder_masters (builderid, masterid) VALUES (?1, ?2)");
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
	return WRITE(builder_set_masters(db, builderid, masterids, n));
}

/* --- workers -------------------------------------------------------------------- */

static int worker_ensure(struct db *db, const char *name, int64_t *ret)
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
	int64_t id = 0;
	int r = WRITE(worker_ensure(db, name, &id));
	if (r >= 0)
		*ret_workerid = id;
	return r;
}

static int worker_set_info(struct db *db, int64_t workerid, const char *text)
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
	return WRITE(worker_set_info(db, workerid, text));
}

static int worker_set_col(struct db *db, int id, const char *sql, int64_t workerid, int64_t v,
			  bool as_id)
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
	return WRITE(worker_set_col(db, ST_WORKER_SET_CONNECTED,
				    "UPDATE workers SET masterid = ?1 WHERE id = ?2", workerid,
				    masterid, true));
}

int db_worker_set_paused(struct db *db, int64_t workerid, bool paused)
{
	return WRITE(worker_set_col(db, ST_WORKER_SET_PAUSED,
				    "UPDATE workers SET paused = ?1 WHERE id = ?2", workerid, paused,
				    false));
}

int db_worker_set_graceful(struct db *db, int64_t workerid, bool graceful)
{
	return WRITE(worker_set_col(db, ST_WORKER_SET_GRACEFUL,
				    "UPDATE workers SET graceful = ?1 WHERE id = ?2", workerid,
				    graceful, false));
}

static int worker_set_configured(struct db *db, int64_t workerid, int64_t masterid,
				 const int64_t *builderids, size_t n)
{
	int r = db_exists(db, ST_WORKER_EXISTS, "SELECT 1 FROM workers WHERE id = ?1", workerid);
	if (r <= 0)
		return r < 0 ? r : db_failf(db, KILN_ENOTFOUND, "no worker %lld", (long long)workerid);
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_CONFIGURED_DEL,
				"DELETE FROM configured_workers WHERE workerid = ?1 AND masterid = ?2");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, workerid);
		sqlite3_bind_int64(s, 2, masterid);
		if ((r = db_step_done(db, s, "configured workers")) < 0)
			return r;
	}
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
	return 0;
}

int db_worker_set_configured(struct db *db, int64_t workerid, int64_t masterid,
			     const int64_t *builderids, size_t n)
{
	return WRITE(worker_set_configured(db, workerid, masterid, builderids, n));
}

/* --- buildsets and build requests ----------------------------------------------- */

static int buildset_add(struct db *db, const struct db_buildset_new *bs, const char *props,
			const int64_t *builderids, size_t n, int64_t *ret_bsid, int64_t *ret_brids)
{
	int r;
	int64_t bsid;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_BS_ADD,
			"INSERT INTO buildsets (external_idstring, reason, scheduler, submitted_at, "
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
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_BS_SS_ADD,
			"INSERT INTO buildset_sourcestamps (buildsetid, sourcestampid) VALUES (?1, ?2)");
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
	int r = WRITE(buildset_add(db, bs, props, builderids, n, &bsid, ret_brids));
	if (r >= 0 && ret_bsid)
		*ret_bsid = bsid;
	return r;
}

static const char sql_bs_exists[] = "SELECT 1 FROM buildsets WHERE id = ?1";

static int buildset_complete(struct db *db, int64_t bsid, int results, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BS_COMPLETE,
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
	return WRITE(buildset_complete(db, bsid, results, when));
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
		return r < 0 ? r : db_failf(db, KILN_ENOTFOUND, "no buildset %lld", (long long)bsid);
	json_error_t e;
	json_t *j = json_loadb((const char *)sqlite3_column_text(s, 0),
			       (size_t)sqlite3_column_bytes(s, 0), 0, &e);
	if (!j)
		return db_failf(db, KILN_EDB, "buildset %lld: stored properties: %s", (long long)bsid,
				e.text);
	*ret = j;
	return 0;
}

#define REQUEST_COLS                                                                               \
	"id, buildsetid, builderid, priority, submitted_at, claimed_at IS NOT NULL, complete, "    \
	"results"

static void request_fill(sqlite3_stmt *s, struct db_request *ret)
{
	*ret = (struct db_request){
		.buildrequestid = sqlite3_column_int64(s, 0),
		.buildsetid = sqlite3_column_int64(s, 1),
		.builderid = sqlite3_column_int64(s, 2),
		.priority = sqlite3_column_int(s, 3),
		.submitted_at = sqlite3_column_double(s, 4),
		.claimed = sqlite3_column_int(s, 5) != 0,
		.complete = sqlite3_column_int(s, 6) != 0,
		.results = sqlite3_column_int(s, 7),
	};
}

int db_request_next(struct db *db, int64_t builderid, struct db_request *ret)
{
	/* The WHERE terms match the partial index buildrequests_pending exactly,
	 * and its column order is the ORDER BY: one seek, no sort. */
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BR_NEXT,
		"SELECT " REQUEST_COLS " FROM buildrequests INDEXED BY buildrequests_pending "
		"WHERE builderid = ?1 AND complete = 0 AND claimed_at IS NULL "
		"ORDER BY priority DESC, submitted_at, id LIMIT 1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, builderid);
	int r = db_step_row(db, s, "next request");
	if (r == 1)
		request_fill(s, ret);
	return r;
}

int db_request_get(struct db *db, int64_t brid, struct db_request *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BR_GET, "SELECT " REQUEST_COLS " FROM buildrequests WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, brid);
	int r = db_step_row(db, s, "get request");
	if (r == 0)
		return db_failf(db, KILN_ENOTFOUND, "no build request %lld", (long long)brid);
	if (r == 1)
		request_fill(s, ret);
	return r < 0 ? r : 0;
}

static int request_claim(struct db *db, int64_t brid, int64_t masterid, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BR_CLAIM,
		"UPDATE buildrequests SET claimed_at = ?3, claimed_by_masterid = ?2 "
		"WHERE id = ?1 AND complete = 0 AND claimed_at IS NULL");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, brid);
	db_bind_id(s, 2, masterid);
	sqlite3_bind_double(s, 3, when);
	int r = db_step_done(db, s, "claim request");
	if (r < 0)
		return r;
	if (db_changes(db) == 0) {
		sqlite3_reset(s);
		struct db_request q;
		r = db_request_get(db, brid, &q);
		if (r < 0)
			return r;
		return db_failf(db, -EBUSY, "build request %lld is already %s", (long long)brid,
				q.complete ? "complete" : "claimed");
	}
	return 0;
}

int db_request_claim(struct db *db, int64_t brid, int64_t masterid, double when)
{
	return WRITE(request_claim(db, brid, masterid, when));
}

static int request_unclaim(struct db *db, int64_t brid)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BR_UNCLAIM,
		"UPDATE buildrequests SET claimed_at = NULL, claimed_by_masterid = NULL "
		"WHERE id = ?1 AND complete = 0");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, brid);
	int r = db_step_done(db, s, "unclaim request");
	if (r < 0)
		return r;
	if (db_changes(db) == 0) {
		sqlite3_reset(s);
		struct db_request q;
		r = db_request_get(db, brid, &q);
		if (r < 0)
			return r;
		return db_failf(db, KILN_ESTATE, "build request %lld is complete", (long long)brid);
	}
	return 0;
}

int db_request_unclaim(struct db *db, int64_t brid)
{
	return WRITE(request_unclaim(db, brid));
}

static int request_complete(struct db *db, int64_t brid, int results, double when,
			    int64_t *ret_bsid_done)
{
	int r;
	struct db_request q;
	if ((r = db_request_get(db, brid, &q)) < 0)
		return r;
	if (q.complete)
		return db_failf(db, KILN_ESTATE, "build request %lld is already complete",
				(long long)brid);
	{
		/* An unclaimed request that completes (cancelled while queued)
		 * reads as claimed, as in Buildbot. */
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_BR_COMPLETE,
			"UPDATE buildrequests SET complete = 1, complete_at = ?2, results = ?3, "
			"claimed_at = COALESCE(claimed_at, ?2) WHERE id = ?1 AND complete = 0");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, brid);
		sqlite3_bind_double(s, 2, when);
		sqlite3_bind_int(s, 3, results);
		if ((r = db_update_one(db, s, "complete request")) < 0)
			return r;
	}
	/* Is the buildset done?  Results of all its requests, incomplete first. */
	bool done = true;
	int worst = RESULTS_NONE;
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_BR_BS_RESULTS,
				"SELECT complete, results FROM buildrequests WHERE buildsetid = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, q.buildsetid);
		while ((r = db_step_row(db, s, "buildset requests")) == 1) {
			if (!sqlite3_column_int(s, 0)) {
				done = false;
				break;
			}
			worst = db_results_worst(worst, sqlite3_column_int(s, 1));
		}
		if (r < 0)
			return r;
	}
	if (done) {
		/* Already completed by someone else (db_buildset_complete): fine. */
		r = buildset_complete(db, q.buildsetid, worst, when);
		if (r == KILN_ESTATE)
			return 0;
		if (r < 0)
			return r;
		*ret_bsid_done = q.buildsetid;
	}
	return 0;
}

int db_request_complete(struct db *db, int64_t brid, int results, double when,
			int64_t *ret_bsid_done)
{
	int64_t done = 0;
	int r = WRITE(request_complete(db, brid, results, when, &done));
	if (r >= 0 && ret_bsid_done)
		*ret_bsid_done = done;
	return r;
}

int db_request_pending_builders(struct db *db, int64_t **ret_ids, size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BR_PENDING_BUILDERS,
		"SELECT DISTINCT builderid FROM buildrequests INDEXED BY buildrequests_pending "
		"WHERE complete = 0 AND claimed_at IS NULL ORDER BY builderid");
	if (!s)
		return KILN_EDB;
	_cleanup_free_ int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int r;
	while ((r = db_step_row(db, s, "pending builders")) == 1) {
		ARRAY_GROW(ids, n + 1, cap);
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	if (r < 0)
		return r;
	*ret_ids = TAKE_PTR(ids);
	*ret_n = n;
	return 0;
}

/* --- builds --------------------------------------------------------------------- */

static const char sql_build_exists[] = "SELECT 1 FROM builds WHERE id = ?1";

static int build_add(struct db *db, int64_t builderid, int64_t brid, int64_t workerid,
		     int64_t masterid, double started_at, int64_t *ret_buildid, int64_t *ret_number)
{
	int r;
	int64_t number;
	{
		/* MAX over the (builderid, number) unique index: one seek. */
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_BUILD_NEXT_NUMBER,
			"SELECT COALESCE(MAX(number), 0) + 1 FROM builds WHERE builderid = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, builderid);
		if ((r = db_step_row(db, s, "build number")) <= 0)
			return r < 0 ? r : KILN_EDB;
		number = sqlite3_column_int64(s, 0);
	}
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BUILD_ADD,
		"INSERT INTO builds (number, builderid, buildrequestid, workerid, masterid, "
		"started_at, state_string) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'created')");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, number);
	sqlite3_bind_int64(s, 2, builderid);
	db_bind_id(s, 3, brid);
	db_bind_id(s, 4, workerid);
	sqlite3_bind_int64(s, 5, masterid);
	sqlite3_bind_double(s, 6, started_at);
	if ((r = db_step_done(db, s, "add build")) < 0)
		return r;
	*ret_buildid = sqlite3_last_insert_rowid(db->h);
	*ret_number = number;
	return 0;
}

int db_build_add(struct db *db, int64_t builderid, int64_t brid, int64_t workerid,
		 int64_t masterid, double started_at, int64_t *ret_buildid, int64_t *ret_number)
{
	int64_t id = 0, number = 0;
	int r = WRITE(build_add(db, builderid, brid, workerid, masterid, started_at, &id, &number));
	if (r >= 0) {
		if (ret_buildid)
			*ret_buildid = id;
		if (ret_number)
			*ret_number = number;
	}
	return r;
}

static int build_set_state(struct db *db, int64_t buildid, const char *state_string)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BUILD_SET_STATE, "UPDATE builds SET state_string = ?2 WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	db_bind_text(s, 2, state_string ? state_string : "");
	return db_update_one(db, s, "build state");
}

int db_build_set_state(struct db *db, int64_t buildid, const char *state_string)
{
	return WRITE(build_set_state(db, buildid, state_string));
}

static int build_finish(struct db *db, int64_t buildid, int results, const char *state_string,
			double when)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BUILD_FINISH,
		"UPDATE builds SET complete = 1, complete_at = ?2, results = ?3, "
		"state_string = COALESCE(?4, state_string) WHERE id = ?1 AND complete = 0");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	sqlite3_bind_double(s, 2, when);
	sqlite3_bind_int(s, 3, results);
	db_bind_text(s, 4, state_string);
	int r = db_step_done(db, s, "finish build");
	if (r < 0)
		return r;
	if (db_changes(db) == 0)
		return db_guard_fail(db, ST_BUILD_EXISTS, sql_build_exists, buildid, KILN_ESTATE,
				     "finish build");
	return 0;
}

int db_build_finish(struct db *db, int64_t buildid, int results, const char *state_string,
		    double when)
{
	return WRITE(build_finish(db, buildid, results, state_string, when));
}

static int build_set_property(struct db *db, int64_t buildid, const char *name, const char *value,
			      const char *source)
{
	/* A merge patch with one member replaces just that property; the
	 * name is bound, so any characters are safe. */
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_BUILD_SET_PROPERTY,
		"UPDATE builds SET properties = json_patch(properties, "
		"json_object(?2, json_array(json(?3), ?4))) WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	db_bind_text(s, 2, name);
	db_bind_text(s, 3, value);
	db_bind_text(s, 4, source ? source : "");
	return db_update_one(db, s, "build property");
}

int db_build_set_property(struct db *db, int64_t buildid, const char *name, json_t *value,
			  const char *source)
{
	if (!name || !*name)
		return db_failf(db, -EINVAL, "property name is empty");
	_cleanup_free_ char *text =
		value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : xstrdup("null");
	if (!text)
		return db_failf(db, -EINVAL, "property '%s' cannot be encoded", name);
	return WRITE(build_set_property(db, buildid, name, text, source));
}

/* --- steps ---------------------------------------------------------------------- */

static const char sql_step_exists[] = "SELECT 1 FROM steps WHERE id = ?1";

static int step_name_taken(struct db *db, int64_t buildid, const char *name)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_STEP_NAME_EXISTS, "SELECT 1 FROM steps WHERE buildid = ?1 AND name = ?2");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, buildid);
	db_bind_text(s, 2, name);
	return db_step_row(db, s, "step name");
}

static int step_add(struct db *db, int64_t buildid, const char *name, int64_t *ret_stepid,
		    int64_t *ret_number)
{
	int r = db_exists(db, ST_BUILD_EXISTS, sql_build_exists, buildid);
	if (r <= 0)
		return r < 0 ? r : db_failf(db, KILN_ENOTFOUND, "no build %lld", (long long)buildid);
	int64_t number;
	{
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_STEP_NEXT_NUMBER,
			"SELECT COALESCE(MAX(number) + 1, 0) FROM steps WHERE buildid = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, buildid);
		if ((r = db_step_row(db, s, "step number")) <= 0)
			return r < 0 ? r : KILN_EDB;
		number = sqlite3_column_int64(s, 0);
	}
	_cleanup_free_ char *unique = xstrdup(name);
	for (int i = 1; (r = step_name_taken(db, buildid, unique)) == 1; i++) {
		free(unique);
		unique = xasprintf("%s_%d", name, i);
	}
	if (r < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_STEP_ADD, "INSERT INTO steps (number, name, buildid) VALUES (?1, ?2, ?3)");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, number);
	db_bind_text(s, 2, unique);
	sqlite3_bind_int64(s, 3, buildid);
	if ((r = db_step_done(db, s, "add step")) < 0)
		return r;
	*ret_stepid = sqlite3_last_insert_rowid(db->h);
	*ret_number = number;
	return 0;
}

int db_step_add(struct db *db, int64_t buildid, const char *name, int64_t *ret_stepid,
		int64_t *ret_number)
{
	if (!name || !*name)
		return db_failf(db, -EINVAL, "step name is empty");
	int64_t id = 0, number = 0;
	int r = WRITE(step_add(db, buildid, name, &id, &number));
	if (r >= 0) {
		if (ret_stepid)
			*ret_stepid = id;
		if (ret_number)
			*ret_number = number;
	}
	return r;
}

static int step_start(struct db *db, int64_t stepid, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_STEP_START, "UPDATE steps SET started_at = ?2 WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, stepid);
	sqlite3_bind_double(s, 2, when);
	return db_update_one(db, s, "start step");
}

int db_step_start(struct db *db, int64_t stepid, double when)
{
	return WRITE(step_start(db, stepid, when));
}

static int step_set_state(struct db *db, int64_t stepid, const char *state_string)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, ST_STEP_SET_STATE,
						 "UPDATE steps SET state_string = ?2 WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, stepid);
	db_bind_text(s, 2, state_string ? state_string : "");
	return db_update_one(db, s, "step state");
}

int db_step_set_state(struct db *db, int64_t stepid, const char *state_string)
{
	return WRITE(step_set_state(db, stepid, state_string));
}

static int step_finish(struct db *db, int64_t stepid, int results, const char *state_string,
		       bool hidden, double when)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_STEP_FINISH,
		"UPDATE steps SET complete = 1, complete_at = ?2, results = ?3, "
		"state_string = COALESCE(?4, state_string), hidden = ?5 "
		"WHERE id = ?1 AND complete = 0");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, stepid);
	sqlite3_bind_double(s, 2, when);
	sqlite3_bind_int(s, 3, results);
	db_bind_text(s, 4, state_string);
	sqlite3_bind_int(s, 5, hidden);
	int r = db_step_done(db, s, "finish step");
	if (r < 0)
		return r;
	if (db_changes(db) == 0)
		return db_guard_fail(db, ST_STEP_EXISTS, sql_step_exists, stepid, KILN_ESTATE,
				     "finish step");
	return 0;
}

int db_step_finish(struct db *db, int64_t stepid, int results, const char *state_string,
		   bool hidden, double when)
{
	return WRITE(step_finish(db, stepid, results, state_string, hidden, when));
}

static int step_add_url(struct db *db, int64_t stepid, const char *name, const char *url)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
		db, ST_STEP_ADD_URL,
		"UPDATE steps SET urls = json_insert(urls, '$[#]', json_object('name', ?2, 'url', ?3)) "
		"WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, stepid);
	db_bind_text(s, 2, name ? name : "");
	db_bind_text(s, 3, url ? url : "");
	return db_update_one(db, s, "step url");
}

int db_step_add_url(struct db *db, int64_t stepid, const char *name, const char *url)
{
	return WRITE(step_add_url(db, stepid, name, url));
}
