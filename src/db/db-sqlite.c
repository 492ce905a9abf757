/*
 * The SQLite backend of db.h, its core: opening (WAL, busy timeout, foreign
 * keys, migrations), per-loop-turn write batching, the prepared-statement
 * cache, errors, and the helpers the entity files share.  Each entity has
 * its file, db-sqlite-<noun>.c (master, builder, worker, buildset, request,
 * build, step, log, changes, sched), listings are in db-sqlite-list.c
 * (their queries in db-list.c).
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <assert.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "common/err.h"
#include "common/str.h"
#include "common/limits.h"
#include "common/xalloc.h"

#define LOG_SUBSYS "db"
#include "common/log.h"
#include "common/stats.h" /* slice "operator" */

#define DB_BUSY_TIMEOUT_MS 5000
/* A checkpoint job starts after a commit leaves at least this many WAL
 * frames (SQLite's own auto-checkpoint default: ~4 MB with 4 KiB pages). */
#define DB_CKPT_FRAMES 1000
/* ...and also truncates the WAL file when it has grown past this
 * (db->ckpt_truncate_bytes; the unit tests lower it). */
#define DB_CKPT_TRUNCATE_BYTES (64ull << 20)
/* Before truncating, up to this many more passive passes, until at most
 * this many frames are left to copy under the write lock. */
#define DB_CKPT_CATCH_UP_PASSES 8
#define DB_CKPT_CATCH_UP_FRAMES 64
/* The longest the loop holds its next write for a truncation (db_ckpt_hold):
 * the job's wait for the lock and the truncation itself. */
#define DB_CKPT_HOLD_MS 2000
/* The job's wait for the write lock before truncating (the loop's writes
 * wait for the truncation, which follows a passive checkpoint: short). */
#define DB_CKPT_BUSY_MS 1000

static _Thread_local char open_errmsg[1024];

static uv_once_t db_global_once = UV_ONCE_INIT;

/* Process-wide SQLite settings, before its first use.  Memory statistics
 * off: with them on, every sqlite3_malloc/free takes a global mutex to
 * count (nothing in Kiln reads sqlite3_status()), a sixth of SQLite's time
 * on a step's writes.  SQLITE_MISUSE if something initialized SQLite
 * earlier: then its defaults stay. */
static void db_global_init(void)
{
	int rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (rc != SQLITE_OK)
		log_debug("sqlite3_config(MEMSTATUS): %s", sqlite3_errstr(rc));
}

const char *db_open_errmsg(void)
{
	return open_errmsg;
}

/* --- errors --------------------------------------------------------------------- */

int db_fail(struct db *db, const char *what)
{
	int ext = sqlite3_extended_errcode(db->h);
	/* SQLite reports ENOSPC as SQLITE_FULL; an I/O error under it too */
	db->disk_full = (ext & 0xff) == SQLITE_FULL || sqlite3_system_errno(db->h) == ENOSPC;
	snprintf(db->errmsg, sizeof(db->errmsg), "%s: %s (%d)", what, sqlite3_errmsg(db->h), ext);
	log_debug("%s", db->errmsg);
	return KILN_EDB;
}

int db_failf(struct db *db, int r, const char *fmt, ...)
{
	va_list ap;
	db->disk_full = false; /* not SQLite's error: see db_txn_begin for the refusal */
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

/* A call PostgreSQL does not implement yet reaches SQLite's code: it fails,
 * naming its statement, instead of touching a connection that is not there. */
static sqlite3_stmt *db_stmt_not_pg(struct db *db, const char *sql)
{
	db_failf(db, -ENOTSUP, "not available on PostgreSQL yet (%.60s%s)", sql,
		 strlen(sql) > 60 ? "..." : "");
	return NULL;
}

sqlite3_stmt *db_stmt(struct db *db, int id, const char *sql)
{
	assert(id >= 0 && id < ST__MAX);
	if (db->pg)
		return db_stmt_not_pg(db, sql);
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
	if (db->pg)
		return db_stmt_not_pg(db, sql);
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

/* Text that is not UTF-8 is bound mended (each byte that starts no valid
 * sequence as U+FFFD), as the PostgreSQL backend stores it (which refuses
 * such text) and as the API shows it: a filter on the shown value finds it
 * on both. */
int db_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (!v)
		return sqlite3_bind_null(s, i);
	size_t n = strlen(v);
	bool partial;
	if (str_utf8_prefix(v, n, &partial) == n)
		return sqlite3_bind_text(s, i, v, (int)n, SQLITE_TRANSIENT);
	struct buf b;
	buf_init(&b, 3 * n + 1);
	int r = str_utf8_sanitize(&b, v, n) == 0
			? sqlite3_bind_text(s, i, b.ptr, (int)b.len, SQLITE_TRANSIENT)
			: sqlite3_bind_text(s, i, "", 0, SQLITE_STATIC);
	buf_release(&b);
	return r;
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
	if (db->loop && db->handles_open == DB_LOOP_HANDLES) {
		uv_check_stop(&db->check);
		uv_idle_stop(&db->idle);
		uv_prepare_stop(&db->prepare);
	}
}

/* Group commit: a batch whose turn wrote in its I/O callbacks stays open
 * for the next turn (which does not block: the idle handle), as long as
 * the loop keeps writing, up to KILN_DB_GROUP_TURNS turns and
 * KILN_DB_GROUP_MS; the first turn whose I/O wrote nothing commits it.  A
 * burst of messages then costs a commit per few turns instead of one each
 * (every commit writes the pages it dirtied to the WAL again). */
static bool db_batch_grows(struct db *db)
{
	return db->writes != db->writes_at_prepare && db->batch_turns + 1 < KILN_DB_GROUP_TURNS &&
	       uv_now(db->loop) - db->batch_start_ms < KILN_DB_GROUP_MS;
}

static void db_on_prepare(uv_prepare_t *h)
{
	struct db *db = h->data;
	db->writes_at_prepare = db->writes;
}

static void db_on_check(uv_check_t *h)
{
	struct db *db = h->data;
	if (db->in_txn && db_batch_grows(db)) {
		db->batch_turns++;
		return;
	}
	(void)db_flush(db); /* a failure goes to the commit error callback */
}

static void db_on_idle(uv_idle_t *h)
{
	(void)h; /* only there so the poll phase does not block with a batch open */
}

static void db_ckpt_hold(struct db *db);

static int db_txn_begin(struct db *db)
{
	if (db->in_txn) {
		db->writes++;
		return 0;
	}
	if (db->refuse_writes) { /* a full disk: see db_refuse_writes() */
		int r = db_failf(db, KILN_EDB, "database write failed: database or disk is full");
		db->disk_full = true;
		return r;
	}
	db_ckpt_hold(db);
	int r = tx_exec(db, ST_TX_BEGIN, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	db->in_txn = true;
	if (db->loop && db->handles_open == DB_LOOP_HANDLES) {
		uv_check_start(&db->check, db_on_check);
		uv_idle_start(&db->idle, db_on_idle);
		uv_prepare_start(&db->prepare, db_on_prepare);
		db->batch_turns = 0;
		db->batch_start_ms = uv_now(db->loop);
		/* begun before this turn's poll phase (a timer, or outside the
		 * loop): the prepare handle makes these equal again, and the
		 * check commits unless the I/O callbacks write too */
		db->writes_at_prepare = db->writes;
	}
	db->writes++;
	return 0;
}

static void db_txn_rollback(struct db *db)
{
	if (!db->in_txn)
		return;
	/* Keep the first error's text: the rollback's own is less useful. */
	char saved[sizeof(db->errmsg)];
	memcpy(saved, db->errmsg, sizeof(saved));
	bool full = db->disk_full;
	if (sqlite3_get_autocommit(db->h) == 0)
		tx_exec(db, ST_TX_ROLLBACK, "ROLLBACK");
	memcpy(db->errmsg, saved, sizeof(saved));
	db->disk_full = full;
	db->in_txn = false;
	db->savepoint_depth = 0;
	memset(db->step_next, 0, sizeof(db->step_next)); /* its steps may be gone */
	db_log_drop_all(db);
	db_batch_stop_handles(db);
}

/* A batch on the loop was rolled back as a whole (a failed COMMIT, or SQLite
 * ending the transaction itself, as SQLITE_FULL may): it held every write of
 * the turn, not only the caller's, so the master must hear of it. */
static void db_batch_lost(struct db *db, int r)
{
	if (db->loop && db->commit_error_fn)
		db->commit_error_fn(db, r, db->errmsg, db->commit_error_ud);
}

/* --- checkpoints ---------------------------------------------------------------- */

/* Called by SQLite after each commit on the loop's connection.  Setting it
 * replaces the auto-checkpoint (which is a WAL hook too). */
static int db_wal_hook(void *ud, sqlite3 *h, const char *name, int frames)
{
	(void)h;
	(void)name;
	struct db *db = ud;
	db->wal_frames = frames;
	return SQLITE_OK;
}

static double db_ckpt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The job connection's busy handler: retries every millisecond for about
 * DB_CKPT_BUSY_MS (SQLite's own sleeps grow to 100 ms, which the loop,
 * holding its next write for the truncation, would wait too). */
static int db_ckpt_busy(void *ud, int n)
{
	(void)ud;
	if (n >= DB_CKPT_BUSY_MS)
		return 0;
	sqlite3_sleep(1);
	return 1;
}

/* Loop thread, before a batch's BEGIN: while the job is about to truncate
 * the WAL, the loop holds its next write until the truncation is over
 * (bounded by DB_CKPT_HOLD_MS).  Without that, a loop that writes turn
 * after turn leaves the job no moment to take the write lock, and the WAL
 * grows without bound; the loop would wait for the truncation anyway, in
 * its busy handler, once the job has the lock. */
static void db_ckpt_hold(struct db *db)
{
	if (!db->ckpt_enabled || !atomic_load(&db->ckpt_truncating))
		return;
	uint64_t deadline = uv_hrtime() + (uint64_t)DB_CKPT_HOLD_MS * 1000000u;
	uv_mutex_lock(&db->ckpt_lock);
	while (atomic_load(&db->ckpt_truncating)) {
		uint64_t now = uv_hrtime();
		if (now >= deadline ||
		    uv_cond_timedwait(&db->ckpt_cond, &db->ckpt_lock, deadline - now) != 0)
			break;
	}
	uv_mutex_unlock(&db->ckpt_lock);
}

/* Thread pool: the job's connection, opened the first time.  It reads the
 * database once at once: with SQLite 3.40 a checkpoint on a connection that
 * has never read the file does nothing and returns SQLITE_OK (its pager has
 * not opened the WAL yet; later SQLite versions read the schema first
 * themselves), so every checkpoint of the job would be a silent no-op. */
static int db_ckpt_open(struct db *db)
{
	int rc = sqlite3_open_v2(db->path, &db->ckpt_h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_handler(db->ckpt_h, db_ckpt_busy, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db->ckpt_h, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL,
				  NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close(db->ckpt_h);
		db->ckpt_h = NULL;
	}
	return rc;
}

/* Thread pool: a passive checkpoint (copies what no reader still needs, never
 * waits for a lock), then, if the WAL file has grown past
 * db->ckpt_truncate_bytes, a truncating one: under a steady stream of writes
 * the WAL is otherwise never restarted (a new write always comes before the
 * checkpoint has caught up) and grows by everything written.  The
 * truncation holds the write lock while it copies the few frames the
 * passive pass left and syncs the database: a loop that writes meanwhile
 * waits for it in its busy handler, not for the whole copy. */
static void db_ckpt_work(uv_work_t *req)
{
	struct db *db = req->data;
	int rc = SQLITE_OK;
	db->ckpt_truncated = false;
	if (!db->ckpt_h)
		rc = db_ckpt_open(db);
	if (db->ckpt_h)
		rc = sqlite3_wal_checkpoint_v2(db->ckpt_h, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
					       NULL);
	if (rc == SQLITE_OK) {
		char wal[4096];
		struct stat st;
		if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", db->path) < sizeof(wal) &&
		    stat(wal, &st) == 0 && (uint64_t)st.st_size > db->ckpt_truncate_bytes) {
			/* passive passes again while the loop's writes keep ahead
			 * of them: the truncation then copies only the last few
			 * frames while it holds the write lock */
			int log = 0, done = 0;
			for (int i = 0; i < DB_CKPT_CATCH_UP_PASSES && rc == SQLITE_OK; i++) {
				rc = sqlite3_wal_checkpoint_v2(
					db->ckpt_h, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
				if (log - done <= DB_CKPT_CATCH_UP_FRAMES)
					break;
			}
			double t0 = db_ckpt_now_ms();
			if (rc == SQLITE_OK) {
				atomic_store(&db->ckpt_truncating, true); /* db_ckpt_hold */
				rc = sqlite3_wal_checkpoint_v2(
					db->ckpt_h, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
				uv_mutex_lock(&db->ckpt_lock);
				atomic_store(&db->ckpt_truncating, false);
				uv_cond_broadcast(&db->ckpt_cond);
				uv_mutex_unlock(&db->ckpt_lock);
			}
			db->ckpt_truncate_ms = db_ckpt_now_ms() - t0;
			/* counted when the file did shrink (a no-op returns OK too) */
			off_t was = st.st_size;
			db->ckpt_truncated =
				rc == SQLITE_OK && stat(wal, &st) == 0 && st.st_size < was;
		}
	}
	db->ckpt_rc = rc;
	uv_mutex_lock(&db->ckpt_lock);
	db->ckpt_working = false;
	uv_cond_broadcast(&db->ckpt_cond);
	uv_mutex_unlock(&db->ckpt_lock);
}

static void db_ckpt_after(uv_work_t *req, int status)
{
	struct db *db = req->data;
	db->ckpt_busy = false;
	if (status == UV_ECANCELED) /* db_close dropped it before it started */
		goto out;
	db->ckpt_runs++;
	if (db->ckpt_truncated) {
		db->wal_truncations++;
		if (db->ckpt_truncate_ms > db->wal_truncate_worst_ms)
			db->wal_truncate_worst_ms = db->ckpt_truncate_ms;
	}
	if (db->ckpt_rc != SQLITE_OK && db->ckpt_rc != SQLITE_BUSY)
		log_debug("checkpoint: %s (%d)", sqlite3_errstr(db->ckpt_rc), db->ckpt_rc);
out:
	if (db->closing)
		db_free_if_done(db);
}

/* After a commit on the loop: start a checkpoint job if the WAL is past the
 * threshold and none is running. */
static void db_ckpt_maybe_start(struct db *db)
{
	if (!db->ckpt_enabled || db->ckpt_busy || db->closing || db->wal_frames < DB_CKPT_FRAMES)
		return;
	db->ckpt_req.data = db;
	db->ckpt_working = true;
	if (uv_queue_work(db->loop, &db->ckpt_req, db_ckpt_work, db_ckpt_after) < 0) {
		db->ckpt_working = false;
		return; /* the next commit tries again */
	}
	db->ckpt_busy = true;
}

/* db_close: a job still queued is cancelled, not waited for (the pool may be
 * busy with other work); a running one is waited for (it uses the file; its
 * checkpoints are bounded by DB_CKPT_BUSY_MS), then the job's connection is
 * closed.  The after-work callback still runs on the loop later, and frees
 * the struct if it is the last one out. */
static void db_ckpt_stop(struct db *db)
{
	if (!db->ckpt_enabled)
		return;
	if (db->ckpt_busy && uv_cancel((uv_req_t *)&db->ckpt_req) == 0) {
		uv_mutex_lock(&db->ckpt_lock); /* the work never runs: clear its flag */
		db->ckpt_working = false;
		uv_mutex_unlock(&db->ckpt_lock);
	}
	uv_mutex_lock(&db->ckpt_lock);
	while (db->ckpt_working)
		uv_cond_wait(&db->ckpt_cond, &db->ckpt_lock);
	uv_mutex_unlock(&db->ckpt_lock);
	sqlite3_close(db->ckpt_h);
	db->ckpt_h = NULL;
}

void db_commit_then(struct db *db, db_commit_fn fn, void *arg)
{
	if (db->pg && db_pg_commit_then(db, fn, arg))
		return; /* on its way */
	int r = db_flush(db);
	fn(arg, r, r < 0 ? db_errmsg(db) : NULL);
}

int db_flush(struct db *db)
{
	if (db->pg)
		return db_pg_flush(db);
	if (!db->in_txn)
		return 0;
	uint64_t t0 = stats_now_ns(); /* slice "operator": /metrics */
	int r = db_log_sync_all(db);
	if (r >= 0 && db->fail_commit_at && ++db->commits == db->fail_commit_at)
		r = db_failf(db, KILN_EDB,
			     "COMMIT: disk I/O error (injected by KILN_TEST_FAIL_COMMIT=%llu)",
			     (unsigned long long)db->fail_commit_at);
	else if (r >= 0)
		r = tx_exec(db, ST_TX_COMMIT, "COMMIT");
	if (r < 0) {
		db_txn_rollback(db);
		db_batch_lost(db, r);
		return r;
	}
	db->in_txn = false;
	stats_hist_observe(&stats.db_commit, (double)(stats_now_ns() - t0) / 1e9);
	db_batch_stop_handles(db);
	db_ckpt_maybe_start(db);
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
		/* Undo this call only; the rest of the batch stays.  Unless SQLite
		 * ended the transaction itself (SQLITE_FULL may, autocommit is
		 * back on): there is no savepoint left, the batch is gone, and the
		 * failed statement's error (a full disk) is what the master must
		 * hear, not the ROLLBACK TO's "no such savepoint". */
		int k = sqlite3_get_autocommit(db->h)
				? r
				: tx_exec(db, ST_TX_ROLLBACK_TO, "ROLLBACK TO w");
		if (k >= 0)
			k = tx_exec(db, ST_TX_RELEASE, "RELEASE w");
		if (k < 0 || !db->loop)
			db_txn_rollback(db);
		if (k < 0)
			db_batch_lost(db, r); /* the transaction is gone */
		return r;
	}
	int k = tx_exec(db, ST_TX_RELEASE, "RELEASE w");
	if (k < 0) {
		db_txn_rollback(db);
		db_batch_lost(db, k);
		return k;
	}
	if (!db->loop)
		return db_flush(db);
	return r;
}

int db_write1_begin(struct db *db)
{
	return db_txn_begin(db);
}

int db_write1_end(struct db *db, int r)
{
	if (db->savepoint_depth > 0)
		return r; /* inside a db_write_begin: that write decides */
	if (r < 0) {
		/* SQLite undid the failed statement, or the whole transaction
		 * (then autocommit is back on): the batch is gone with it. */
		if (!db->loop || (db->in_txn && sqlite3_get_autocommit(db->h))) {
			bool lost = db->loop != NULL;
			db_txn_rollback(db);
			if (lost)
				db_batch_lost(db, r);
		}
		return r;
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

/* The version of the newest embedded migration. */
int db_schema_latest(void)
{
	size_t n;
	const struct db_migration *m = db_migrations(&n);
	return n ? m[n - 1].version : 0;
}

/* Refuses a schema newer than this binary knows (a later kiln migrated it):
 * running on it could lose or corrupt what the newer migrations added. */
static int db_check_not_newer(struct db *db, int v)
{
	int latest = db_schema_latest();
	if (v > latest)
		return db_failf(db, KILN_EDB,
				"database schema version %d is newer than this kiln %s knows "
				"(schema version %d): run the kiln that upgraded it (or a newer "
				"one), or restore the backup taken before the upgrade",
				v, KILN_VERSION, latest);
	return 0;
}

/* Applies every pending migration in one transaction, recording the version
 * in PRAGMA user_version.  The version is re-read under the write lock so two
 * processes opening a new file together do not both migrate.  applied (may
 * be NULL) is called after each migration ran, inside the transaction.
 * Returns how many were applied, or an error (then none was kept). */
static int db_migrate(struct db *db, db_migration_fn applied, void *ud)
{
	size_t n;
	const struct db_migration *m = db_migrations(&n);
	int latest = db_schema_latest();
	int v = db_read_user_version(db);
	if (v < 0)
		return v;
	int r = db_check_not_newer(db, v);
	if (r < 0)
		return r;
	if (v == latest)
		return 0;
	r = db_pragma(db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	v = db_read_user_version(db);
	r = v < 0 ? v : db_check_not_newer(db, v);
	int count = 0;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		if (m[i].version <= v)
			continue;
		char *err = NULL;
		if (sqlite3_exec(db->h, m[i].sql, NULL, NULL, &err) != SQLITE_OK) {
			r = db_failf(db, KILN_EDB, "migration %s: %s", m[i].name,
				     err ? err : "error");
			sqlite3_free(err);
		} else {
			count++;
			if (applied)
				applied(m[i].version, m[i].name, ud);
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
	return r < 0 ? r : count;
}

int db_upgrade(struct db *db, db_migration_fn applied, void *ud)
{
	int r = db_flush(db);
	return r < 0 ? r : db_migrate(db, applied, ud);
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
	if (db->ckpt_enabled) {
		uv_mutex_destroy(&db->ckpt_lock);
		uv_cond_destroy(&db->ckpt_cond);
	}
	free(db->path);
	buf_release(&db->zbuf);
	free(db->stmts);
	free(db);
}

void db_free_if_done(struct db *db)
{
	if (db->handles_open == 0 && !db->ckpt_busy && db->zjobs == 0)
		db_free(db);
}

static void db_on_handle_closed(uv_handle_t *h)
{
	struct db *db = h->data;
	db->handles_open--;
	db_free_if_done(db);
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
	while (db->zpool_n > 0)
		ZSTD_freeCCtx(db->zpool[--db->zpool_n]);
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
int db_test_fail_commit(uint64_t *ret)
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

void db_set_open_errmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(open_errmsg, sizeof(open_errmsg), fmt, ap);
	va_end(ap);
}

/* SQLite's answer to db_open_async, on the loop's next turn. */
struct db_open_later {
	uv_timer_t timer;
	db_ready_fn ready;
	void *arg;
	struct db *db;
	int r;
	char err[1024];
};

static void db_open_later_closed(uv_handle_t *h)
{
	free(h->data);
}

static void db_open_later_fire(uv_timer_t *t)
{
	struct db_open_later *l = t->data;
	l->ready(l->arg, l->r, l->db, l->r < 0 ? l->err : NULL);
	uv_close((uv_handle_t *)&l->timer, db_open_later_closed);
}

int db_open_async(uv_loop_t *loop, const char *url, const char *basedir, db_ready_fn ready,
		  void *arg)
{
	open_errmsg[0] = '\0';
	if (!loop || !ready) {
		db_set_open_errmsg("an asynchronous open needs a loop and a callback");
		return -EINVAL;
	}
	if (db_url_is_postgresql(url))
		return db_pg_open(loop, url, ready, arg);
	struct db_open_later *l = xcalloc(1, sizeof(*l));
	l->ready = ready;
	l->arg = arg;
	l->r = db_open(loop, url, basedir, &l->db);
	snprintf(l->err, sizeof(l->err), "%s", open_errmsg);
	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, db_open_later_fire, 0, 0);
	return 0;
}

int db_open(uv_loop_t *loop, const char *url, const char *basedir, struct db **ret)
{
	return db_open_flags(loop, url, basedir, 0, ret);
}

int db_open_flags(uv_loop_t *loop, const char *url, const char *basedir, unsigned flags,
		  struct db **ret)
{
	open_errmsg[0] = '\0';
	uv_once(&db_global_once, db_global_init);
	if (db_url_is_postgresql(url)) /* the loop runs until the server answered */
		return db_pg_open_wait(loop, url, ret);
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
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
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
	if (r >= 0 && (flags & DB_OPEN_NO_MIGRATE)) {
		int v = db_read_user_version(db);
		r = v < 0 ? v : db_check_not_newer(db, v);
	} else if (r >= 0) {
		r = db_migrate(db, NULL, NULL);
	}
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
	if (loop && strcmp(path, ":memory:") != 0 && sqlite3_threadsafe()) {
		/* Checkpoints leave the loop: the WAL hook replaces the
		 * auto-checkpoint, and a job checkpoints on its own connection. */
		if (uv_mutex_init(&db->ckpt_lock) == 0) {
			if (uv_cond_init(&db->ckpt_cond) == 0) {
				db->ckpt_enabled = true;
				db->ckpt_truncate_bytes = DB_CKPT_TRUNCATE_BYTES;
				/* SQLite's full path: the job opens the same file
				 * whatever the process's cwd is by then. */
				const char *full = sqlite3_db_filename(db->h, "main");
				db->path = xstrdup(full && *full ? full : path);
				sqlite3_wal_hook(db->h, db_wal_hook, db);
			} else {
				uv_mutex_destroy(&db->ckpt_lock);
			}
		}
	}
	if (loop) {
		db->loop = loop;
		uv_check_init(loop, &db->check);
		uv_idle_init(loop, &db->idle);
		uv_prepare_init(loop, &db->prepare);
		db->check.data = db;
		db->idle.data = db;
		db->prepare.data = db;
		/* The check handle is active only while a batch is open, and
		 * then keeps the loop alive until it has committed; the idle
		 * handle only stops the poll phase from blocking meanwhile. */
		uv_unref((uv_handle_t *)&db->idle);
		uv_unref((uv_handle_t *)&db->prepare);
		db->handles_open = DB_LOOP_HANDLES;
	}
	*ret = db;
	return 0;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	if (db->pg) {
		db_pg_close(db);
		return;
	}
	db_async_close(db);
	(void)db_flush(db); /* a failure goes to the commit error callback */
	db->closing = true;
	db_ckpt_stop(db);
	db_release_sqlite(db);
	if (db->handles_open == DB_LOOP_HANDLES) {
		db_batch_stop_handles(db);
		uv_close((uv_handle_t *)&db->check, db_on_handle_closed);
		uv_close((uv_handle_t *)&db->idle, db_on_handle_closed);
		uv_close((uv_handle_t *)&db->prepare, db_on_handle_closed);
	} else {
		db_free_if_done(db);
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

bool db_disk_full(struct db *db)
{
	return db && db->disk_full;
}

void db_refuse_writes(struct db *db, bool on)
{
	db->refuse_writes = on;
}

int db_free_bytes(struct db *db, uint64_t *ret_bytes)
{
	const char *file = db->h ? sqlite3_db_filename(db->h, "main") : NULL;
	if (!file || !*file)
		return -ENOENT; /* in memory */
	_cleanup_free_ char *dir = xstrdup(file);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	struct statvfs sv;
	if (statvfs(slash ? dir : ".", &sv) < 0)
		return -errno;
	*ret_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

void db_set_log_cap(struct db *db, uint64_t max_bytes)
{
	db->log_cap = max_bytes < KILN_MAX_LOG_BYTES ? max_bytes : KILN_MAX_LOG_BYTES;
}

/* --- helpers for the entities --------------------------------------------------- */

/* Runs an UPDATE that must touch one row: KILN_ENOTFOUND if it touched none. */
int db_update_one(struct db *db, sqlite3_stmt *s, const char *what)
{
	int r = db_step_done(db, s, what);
	if (r < 0)
		return r;
	if (db_changes(db) == 0)
		return db_failf(db, KILN_ENOTFOUND, "%s: no such row", what);
	return 0;
}

int db_exists(struct db *db, int id, const char *sql, int64_t key)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, id, sql);
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, key);
	return db_step_row(db, s, "exists");
}

/* When an UPDATE guarded by a state condition touched nothing: tell "no
 * such row" from "wrong state". */
int db_guard_fail(struct db *db, int id, const char *sql, int64_t key, int state_err,
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
