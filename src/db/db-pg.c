/*
 * db.h on PostgreSQL (db-pg.h): open = connect, apply the migrations of
 * migrations/pg/ (pg-migrate.c), then hand the struct db over.
 */
#include "db/db-pg.h"

#define LOG_SUBSYS "db"
#include "common/log.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/pg-batch.h"
#include "db/pg-conn.h"
#include "db/pg-ids.h"
#include "db/pg-migrate.h"

/* The tables whose new rows take an id from a reserve (pg-ids.h). */
static const char *const db_pg_id_tables[DB_PG_NTABLES] = {
	[DB_PG_BUILDS] = "builds",
	[DB_PG_STEPS] = "steps",
	[DB_PG_LOGS] = "logs",
	[DB_PG_TEST_SETS] = "test_result_sets",
	[DB_PG_ARTIFACTS] = "artifacts",
	[DB_PG_BUILDSETS] = "buildsets",
	[DB_PG_SOURCESTAMPS] = "sourcestamps",
	[DB_PG_REQUESTS] = "buildrequests",
	[DB_PG_CHANGES] = "changes",
	[DB_PG_PUSH] = "push_submissions",
};
/* Ids reserved per refill: a burst of half of it within one round trip
 * to the server empties a reserve (-EAGAIN). */
#define DB_PG_ID_BLOCK 1000
/* Changes and their sourcestamps come KILN_MAX_HOOK_COMMITS at a time from
 * one push: their reserves hold at least two pushes' worth (half a block). */
#define DB_PG_ID_BLOCK_CHANGES (4 * KILN_MAX_HOOK_COMMITS + 1808)

struct db_pg {
	struct pg_conn *conn;
	struct pg_batch *batch;
	struct pg_ids *ids[DB_PG_NTABLES];
	int ids_waiting;     /* reserves without their first ids yet (the open waits) */
	struct pg_run *runs; /* the builds this master runs (db-pg-write.c) */
	db_ready_fn ready;   /* until the open is done */
	void *ready_arg;
	bool serving; /* db_set_serving: no loop run inside a call */
	/* db_login_users_count while serving: the last count, refreshed in
	 * the background at most once per DB_PG_USERS_TTL_MS */
	int64_t login_users;
	bool login_users_known, login_users_reading;
	uint64_t login_users_at;
	struct db_pg_notify notify;        /* event lines for the other masters */
	struct db_ids_waiter *ids_waiters; /* db_ids_wait: told at the next refill */
};

#define DB_PG_USERS_TTL_MS 1000
static const char db_pg_users_sql[] = "SELECT count(*) FROM users WHERE bb_username IS NOT NULL "
				      "AND bb_password IS NOT NULL";

bool db_url_is_postgresql(const char *url)
{
	return url &&
	       (!strncasecmp(url, "postgresql://", 13) || !strncasecmp(url, "postgres://", 11));
}

bool db_is_postgresql(const struct db *db)
{
	return db && db->pg;
}

struct pg_conn *db_pg_conn(struct db *db)
{
	return db->pg->conn;
}

struct pg_batch *db_pg_batch(struct db *db)
{
	return db->pg->batch;
}

struct db_pg_notify *db_pg_notify_state(struct db *db)
{
	return &db->pg->notify;
}

struct pg_run **db_pg_runs_head(struct db *db)
{
	return &db->pg->runs;
}

static void db_pg_release(struct db *db)
{
	db_async_close(db);
	db_pg_runs_free(db);
	for (int i = 0; i < DB_PG_NTABLES; i++)
		pg_ids_free(db->pg->ids[i]);
	pg_batch_free(db->pg->batch);
	pg_conn_free(db->pg->conn);
	buf_release(&db->pg->notify.out);
	free(db->pg);
	db_log_drop_all(db);
	if (db->zd)
		ZSTD_freeDCtx(db->zd);
	if (db->zc)
		ZSTD_freeCCtx(db->zc);
	buf_release(&db->zbuf);
	free(db);
}

/* The open ends: ready told, or the struct freed on failure. */
static void db_pg_opened(struct db *db, int r, const char *err)
{
	db_ready_fn ready = db->pg->ready;
	void *ready_arg = db->pg->ready_arg;
	db->pg->ready = NULL;
	if (!ready)
		return;
	if (r < 0) {
		char why[600];
		snprintf(why, sizeof(why), "PostgreSQL: %s",
			 err            ? err
			 : r == -EPROTO ? "the database is newer than this kiln"
					: err_str(r));
		db_pg_release(db);
		ready(ready_arg, r, NULL, why);
		return;
	}
	ready(ready_arg, 0, db, NULL);
}

static void db_pg_on_ids(void *arg, int r, const char *err)
{
	struct db *db = arg;
	if (!db->pg->ready) { /* a later refill: pg_ids_next answers; the waiters ask again */
		struct db_ids_waiter *w = db->pg->ids_waiters;
		db->pg->ids_waiters = NULL;
		while (w) {
			struct db_ids_waiter *next = w->next;
			w->queued = false;
			w->next = NULL;
			w->fn(w); /* may queue itself again */
			w = next;
		}
		return;
	}
	if (r < 0) {
		db_pg_opened(db, r, err);
		return;
	}
	if (--db->pg->ids_waiting == 0)
		db_pg_opened(db, 0, NULL);
}

static void db_pg_turn_close(void *arg);

static void db_pg_on_push_seq(void *arg, int r, const PGresult *res, const char *err)
{
	(void)arg;
	(void)res;
	if (r < 0 && r != -ECANCELED)
		log_warn("cannot move the push ids' sequence past the stored ones: %s",
			 err ? err : "failed");
}

static void db_pg_on_migrated(void *arg, int r, int version, const char *err)
{
	struct db *db = arg;
	(void)version;
	if (r == 0)
		r = pg_batch_new(db->loop, db->pg->conn, &db->pg->batch);
	if (r == 0) { /* a failed transaction of writes: as a failed commit on SQLite */
		pg_batch_on_fail(db->pg->batch, db_pg_on_commit_failed, db);
		pg_batch_on_close(db->pg->batch, db_pg_turn_close, db);
		uint64_t fail_at = 0; /* checked by db_pg_open */
		(void)db_test_fail_commit(&fail_at);
		pg_batch_fail_at(db->pg->batch, fail_at);
	}
	/* push ids were the stored maximum + 1 before they came from the
	 * reserve: the sequence is moved past them first (the same connection
	 * runs this before the reserves' first refill) */
	if (r == 0) {
		struct pg_query q = {
			.sql = "SELECT setval(s, GREATEST(m, "
			       "COALESCE(pg_sequence_last_value(s::regclass), "
			       "0))) FROM (SELECT pg_get_serial_sequence('push_submissions', 'id') "
			       "AS s, "
			       "(SELECT max(id) FROM push_submissions) AS m) x WHERE m IS NOT "
			       "NULL"};
		r = pg_conn_send(db->pg->conn, &q, db_pg_on_push_seq, db);
	}
	for (int i = 0; r == 0 && i < DB_PG_NTABLES; i++) {
		unsigned block = i == DB_PG_CHANGES || i == DB_PG_SOURCESTAMPS
					 ? DB_PG_ID_BLOCK_CHANGES
					 : DB_PG_ID_BLOCK;
		r = pg_ids_new(db->pg->conn, db_pg_id_tables[i], "id", block, db_pg_on_ids, db,
			       &db->pg->ids[i]);
		if (r == 0)
			db->pg->ids_waiting++;
	}
	if (r < 0 || db->pg->ids_waiting == 0)
		db_pg_opened(db, r, err);
}

/* The logs' tails appended to this turn: written before its transaction
 * closes, as SQLite writes them before its commit. */
void db_pg_log_sync(void *arg)
{
	struct db *db = arg;
	if (db_log_sync_all(db) < 0)
		log_warn("log tails not written: %s", db->errmsg);
}

/* A turn's close: the logs' tails, then the event lines for the other
 * masters (delivered once the turn's transaction commits). */
static void db_pg_turn_close(void *arg)
{
	struct db *db = arg;
	db_pg_log_sync(db);
	if (db->pg->notify.out.len || db->pg->notify.lost_unsaid)
		db_pg_notify_flush(db);
}

static void db_pg_on_notify(void *arg, const char *channel, const char *payload, int pid)
{
	db_pg_notified(arg, channel, payload, pid);
}

/* Connected again: the lines sent meanwhile are lost, the listener is told. */
static void db_pg_on_state(void *arg, enum pg_conn_state state, const char *why)
{
	struct db *db = arg;
	struct db_pg_notify *n = &db->pg->notify;
	(void)why;
	if (state != PG_CONN_READY)
		return;
	if (n->connected_once && n->fn)
		n->fn(n->arg, "lost");
	n->connected_once = true;
}

void db_pg_log_touched(struct db *db)
{
	pg_batch_touch(db->pg->batch);
}

int db_pg_ids_ready(struct db *db, size_t builds, size_t steps, size_t logs)
{
	const struct {
		enum db_pg_table t;
		size_t n;
	} need[] = {{DB_PG_BUILDS, builds}, {DB_PG_STEPS, steps}, {DB_PG_LOGS, logs}};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		struct pg_ids *ids = db->pg->ids[need[i].t];
		if (!need[i].n || (ids && pg_ids_left(ids) >= need[i].n))
			continue;
		if (ids)
			(void)pg_ids_refilling(ids); /* sends one if none is on its way */
		return db_failf(db, -EAGAIN,
				"no %s ids ready (%zu wanted): the reserve is being "
				"refilled",
				db_pg_id_tables[need[i].t], need[i].n);
	}
	return 0;
}

/* A step takes a step id and a log id (and its logfiles' ids) */
#define DB_PG_IDS_PER_STEP 16

int db_ids_wait(struct db *db, struct db_ids_waiter *w)
{
	if (!db->pg || w->queued)
		return w->queued ? 1 : 0;
	static const enum db_pg_table need[] = {DB_PG_STEPS, DB_PG_LOGS};
	bool wait = false;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		struct pg_ids *ids = db->pg->ids[need[i]];
		if (ids && pg_ids_left(ids) < DB_PG_IDS_PER_STEP && pg_ids_refilling(ids))
			wait = true;
	}
	if (!wait)
		return 0;
	w->next = db->pg->ids_waiters;
	db->pg->ids_waiters = w;
	w->queued = true;
	return 1;
}

void db_ids_unwait(struct db *db, struct db_ids_waiter *w)
{
	if (!db || !db->pg || !w || !w->queued)
		return;
	for (struct db_ids_waiter **pp = &db->pg->ids_waiters; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	w->queued = false;
	w->next = NULL;
}

int db_pg_next_id(struct db *db, enum db_pg_table table, int64_t *ret)
{
	int r = pg_ids_next(db->pg->ids[table], ret);
	if (r < 0)
		return db_failf(db, r, "no %s id ready: the reserve is being refilled",
				db_pg_id_tables[table]);
	return 0;
}

int db_pg_open(uv_loop_t *loop, const char *url, db_ready_fn ready, void *arg)
{
	uint64_t fail_at;
	int fr = db_test_fail_commit(&fail_at); /* the message is set */
	if (fr < 0)
		return fr;
	struct db *db = xcalloc(1, sizeof(*db));
	db->pg = xcalloc(1, sizeof(*db->pg));
	db->loop = loop;
	buf_init(&db->zbuf, SIZE_MAX / 2); /* log chunks decompressed (db-log-read.c) */
	db->zc = ZSTD_createCCtx();        /* closed chunks compressed */
	db->log_cap = KILN_MAX_LOG_BYTES;
	db->pg->ready = ready;
	db->pg->ready_arg = arg;
	buf_init(&db->pg->notify.out, KILN_PG_MAX_NOTIFY_BYTES);
	struct pg_conn_opts o = {.conninfo = url,
				 .on_notify = db_pg_on_notify,
				 .on_state = db_pg_on_state,
				 .arg = db};
	int r = pg_conn_new(loop, &o, &db->pg->conn);
	if (r == 0)
		r = pg_migrate(db->pg->conn, db_pg_on_migrated, db);
	if (r < 0) {
		db_set_open_errmsg("PostgreSQL: %s",
				   db->pg->conn ? err_str(r) : pg_conn_new_errmsg());
		db_pg_release(db);
		return r;
	}
	return 0;
}

void db_pg_close(struct db *db)
{
	/* the last writes (a master's stop: its builds interrupted, its row
	 * inactive) are committed first, unless the master still serves */
	if (!db->pg->serving && db->pg->batch && pg_batch_pending(db->pg->batch) &&
	    db_pg_flush(db) < 0)
		log_warn("the last writes were not committed: %s", db->errmsg);
	db_pg_release(db);
}

void db_set_serving(struct db *db, bool on)
{
	if (db && db->pg)
		db->pg->serving = on;
}

/* The refusal of a synchronous call while the master serves. */
static int db_pg_refuse_serving(struct db *db, const char *what)
{
	return db_failf(db, -EWOULDBLOCK,
			"%s: a synchronous call on PostgreSQL while the master serves (not "
			"converted yet: docs/internals/db-calls.md)",
			what);
}

int db_pg_spin(struct db *db, const bool *done, const char *what)
{
	if (db->pg->serving)
		return db_pg_refuse_serving(db, what);
	while (!*done)
		if (uv_run(db->loop, UV_RUN_ONCE) == 0 && !*done)
			return db_failf(db, KILN_EDB, "%s: no answer from PostgreSQL", what);
	return 0;
}

struct db_pg_open_wait {
	bool done;
	int r;
	struct db *db;
	char err[700];
};

static void db_pg_open_waited(void *arg, int r, struct db *db, const char *err)
{
	struct db_pg_open_wait *w = arg;
	w->done = true;
	w->r = r;
	w->db = db;
	snprintf(w->err, sizeof(w->err), "%s", err ? err : "");
}

int db_pg_open_wait(uv_loop_t *loop, const char *url, struct db **ret)
{
	if (!loop) {
		db_set_open_errmsg("a postgresql:// database opens only on a loop");
		return -EINVAL;
	}
	struct db_pg_open_wait w = {0};
	int r = db_pg_open(loop, url, db_pg_open_waited, &w);
	if (r < 0)
		return r;
	while (!w.done)
		if (uv_run(loop, UV_RUN_ONCE) == 0 && !w.done) {
			/* nothing left to wait on: cannot happen while the
			 * connection is open; the open's answer would be lost */
			db_set_open_errmsg("PostgreSQL: the open got no answer");
			return KILN_EDB;
		}
	if (w.r < 0) {
		db_set_open_errmsg("%s", w.err);
		return w.r;
	}
	*ret = w.db;
	return 0;
}

struct db_pg_flush_wait {
	bool done;
	int r;
	char err[512];
};

static void db_pg_flushed(void *arg, int r, const char *err)
{
	struct db_pg_flush_wait *w = arg;
	w->done = true;
	w->r = r;
	snprintf(w->err, sizeof(w->err), "%s", err ? err : "");
}

bool db_pg_commit_then(struct db *db, db_commit_fn fn, void *arg)
{
	if (!db->pg->serving)
		return false;
	pg_batch_then(db->pg->batch, fn, arg);
	return true;
}

int db_pg_flush(struct db *db)
{
	if (db->pg->serving)
		return 0; /* the turn's transaction commits at its end */
	db_pg_log_sync(db);
	struct db_pg_flush_wait w = {0};
	pg_batch_then(db->pg->batch, db_pg_flushed, &w);
	int r = db_pg_spin(db, &w.done, "db_flush");
	if (r < 0)
		return r;
	if (w.r < 0)
		return db_failf(db, w.r, "commit: %s", w.err[0] ? w.err : err_str(w.r));
	return 0;
}

struct db_pg_id_wait {
	bool done;
	int r;
	int64_t id;
	char err[512];
};

static void db_pg_id_waited(void *arg, int r, int64_t id, const char *err)
{
	struct db_pg_id_wait *w = arg;
	w->done = true;
	w->r = r;
	w->id = id;
	snprintf(w->err, sizeof(w->err), "%s", err ? err : "");
}

int db_pg_ensure_wait(struct db *db, enum db_named kind, const char *name, const char *description,
		      const char *tags_json, int64_t *ret_id)
{
	static const char *const what[] = {[DB_NAMED_MASTER] = "db_master_register",
					   [DB_NAMED_BUILDER] = "db_builder_ensure",
					   [DB_NAMED_WORKER] = "db_worker_ensure"};
	if (db->pg->serving)
		return db_pg_refuse_serving(db, what[kind]);
	struct db_pg_id_wait w = {0};
	int r = db_ensure_async(db, kind, name, description, tags_json, db_pg_id_waited, &w);
	if (r == 0)
		r = db_pg_spin(db, &w.done, what[kind]);
	if (r < 0)
		return r;
	if (w.r < 0)
		return db_failf(db, w.r, "%s '%s': %s", what[kind], name,
				w.err[0] ? w.err : err_str(w.r));
	*ret_id = w.id;
	return 0;
}

struct db_pg_read_wait {
	bool done;
	int r;
	char err[512];
	void (*rows)(void *arg, const PGresult *res);
	void *arg;
};

static void db_pg_read_waited(void *arg, int r, const PGresult *res, const char *err)
{
	struct db_pg_read_wait *w = arg;
	w->done = true;
	w->r = r;
	snprintf(w->err, sizeof(w->err), "%s", err ? err : "");
	if (r == 0)
		w->rows(w->arg, res);
}

int db_pg_read_wait(struct db *db, const char *what, const char *sql, int n,
		    const char *const *values, void (*rows)(void *arg, const PGresult *res),
		    void *arg)
{
	if (db->pg->serving)
		return db_pg_refuse_serving(db, what);
	struct db_pg_read_wait w = {.rows = rows, .arg = arg};
	struct pg_query q = {.sql = sql, .nparams = n, .values = values};
	int r = pg_batch_read(db->pg->batch, &q, db_pg_read_waited, &w);
	if (r < 0)
		return db_failf(db, r, "%s: cannot send the query: %s", what, err_str(r));
	r = db_pg_spin(db, &w.done, what);
	if (r < 0)
		return r;
	if (w.r < 0)
		return db_failf(db, w.r, "%s: %s", what, w.err[0] ? w.err : err_str(w.r));
	return 0;
}

struct db_pg_state {
	json_t *value;
	bool found;
};

static void db_pg_state_rows(void *arg, const PGresult *res)
{
	struct db_pg_state *st = arg;
	if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0))
		return;
	st->found = true;
	st->value = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, NULL);
}

int db_pg_state_get(struct db *db, const char *name, json_t **ret)
{
	struct db_pg_state st = {0};
	const char *values[] = {name};
	int r = db_pg_read_wait(db, "db_state_get",
				"SELECT value FROM object_state WHERE name = $1", 1, values,
				db_pg_state_rows, &st);
	if (r < 0)
		return r;
	if (!st.found)
		return 0;
	if (!st.value)
		return db_failf(db, KILN_EDB, "state '%s': the stored value is not JSON", name);
	*ret = st.value;
	return 1;
}

static void db_pg_int_rows(void *arg, const PGresult *res)
{
	int64_t *ret = arg;
	*ret = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)
		       ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
		       : 0;
}

int db_pg_int_wait(struct db *db, const char *what, const char *sql, int n,
		   const char *const *values, int64_t *ret)
{
	int64_t v = 0;
	int r = db_pg_read_wait(db, what, sql, n, values, db_pg_int_rows, &v);
	if (r == 0)
		*ret = v;
	return r;
}

static void db_pg_users_counted(void *arg, int r, const PGresult *res, const char *err)
{
	struct db *db = arg;
	(void)err;
	if (r == -ECANCELED)
		return; /* the db is being closed */
	db->pg->login_users_reading = false;
	if (r == 0) {
		db_pg_int_rows(&db->pg->login_users, res);
		db->pg->login_users_known = true;
		db->pg->login_users_at = uv_now(db->loop);
	}
}

int db_pg_login_users_count(struct db *db, int64_t *ret)
{
	struct db_pg *p = db->pg;
	if (!p->serving) {
		int r = db_pg_int_wait(db, "db_login_users_count", db_pg_users_sql, 0, NULL,
				       &p->login_users);
		if (r < 0)
			return r;
		p->login_users_known = true;
		p->login_users_at = uv_now(db->loop);
		*ret = p->login_users;
		return 0;
	}
	if (!p->login_users_reading &&
	    (!p->login_users_known || uv_now(db->loop) - p->login_users_at >= DB_PG_USERS_TTL_MS)) {
		struct pg_query q = {.sql = db_pg_users_sql};
		if (pg_batch_read(p->batch, &q, db_pg_users_counted, db) == 0)
			p->login_users_reading = true;
	}
	if (!p->login_users_known)
		return db_failf(db, -EWOULDBLOCK, "the users that can log in are being counted");
	*ret = p->login_users;
	return 0;
}
