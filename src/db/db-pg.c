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
};
/* Ids reserved per refill: a burst of half of it within one round trip
 * to the server empties a reserve (-EAGAIN). */
#define DB_PG_ID_BLOCK 1000

struct db_pg {
	struct pg_conn *conn;
	struct pg_batch *batch;
	struct pg_ids *ids[DB_PG_NTABLES];
	int ids_waiting;     /* reserves without their first ids yet (the open waits) */
	struct pg_run *runs; /* the builds this master runs (db-pg-write.c) */
	db_ready_fn ready;   /* until the open is done */
	void *ready_arg;
};

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
	if (!db->pg->ready)
		return; /* a later refill: pg_ids_next answers */
	if (r < 0) {
		db_pg_opened(db, r, err);
		return;
	}
	if (--db->pg->ids_waiting == 0)
		db_pg_opened(db, 0, NULL);
}

static void db_pg_on_migrated(void *arg, int r, int version, const char *err)
{
	struct db *db = arg;
	(void)version;
	if (r == 0)
		r = pg_batch_new(db->loop, db->pg->conn, &db->pg->batch);
	if (r == 0) { /* a failed transaction of writes: as a failed commit on SQLite */
		pg_batch_on_fail(db->pg->batch, db_pg_on_commit_failed, db);
		pg_batch_on_close(db->pg->batch, db_pg_log_sync, db);
	}
	for (int i = 0; r == 0 && i < DB_PG_NTABLES; i++) {
		r = pg_ids_new(db->pg->conn, db_pg_id_tables[i], "id", DB_PG_ID_BLOCK, db_pg_on_ids,
			       db, &db->pg->ids[i]);
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

void db_pg_log_touched(struct db *db)
{
	pg_batch_touch(db->pg->batch);
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
	struct db *db = xcalloc(1, sizeof(*db));
	db->pg = xcalloc(1, sizeof(*db->pg));
	db->loop = loop;
	buf_init(&db->zbuf, SIZE_MAX / 2); /* log chunks decompressed (db-log-read.c) */
	db->zc = ZSTD_createCCtx();        /* closed chunks compressed */
	db->log_cap = KILN_MAX_LOG_BYTES;
	db->pg->ready = ready;
	db->pg->ready_arg = arg;
	struct pg_conn_opts o = {.conninfo = url};
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
	db_pg_release(db);
}
