/*
 * A full disk under the database (slice "faults"): SQLITE_FULL is told
 * apart (db_disk_full), db_refuse_writes() fails writes at once while reads
 * go on, db_free_bytes() reads the space left, and a batch that SQLite
 * rolls back as a whole reaches the commit error callback.  The disk is
 * made "full" with PRAGMA max_page_count (SQLite's own SQLITE_FULL); the
 * real ENOSPC on a tmpfs is tests/e2e/t1350-disk-full.sh.
 */
#include "tap.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/db-internal.h"
#include "db/db.h"

static char tmpdir[256];
static int dbseq;

static struct db *open_file(uv_loop_t *loop)
{
	char *url = xasprintf("sqlite:full%d.sqlite", ++dbseq);
	struct db *db = NULL;
	if (db_open(loop, url, tmpdir, &db) < 0)
		TAP_FAIL("db_open %s: %s", url, db_open_errmsg());
	free(url);
	return db;
}

/* Caps the file at its current size (plus a page or two): the next writes
 * that need a new page fail with SQLITE_FULL. */
static void cap_pages(struct db *db)
{
	sqlite3_stmt *s;
	CHECK_INT(sqlite3_prepare_v2(db->h, "PRAGMA page_count", -1, &s, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_step(s), SQLITE_ROW);
	long long n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", n + 1);
	CHECK_INT(sqlite3_exec(db->h, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* Writes masters with long names until a write fails; returns its error. */
static int write_until_full(struct db *db)
{
	char name[2048];
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "m%d-%01900d", i, 0);
		int64_t id;
		int r = db_master_register(db, name, &id);
		if (r < 0)
			return r;
	}
	return 0;
}

TEST(full_is_told_apart)
{
	struct db *db = open_file(NULL);
	CHECK(!db_disk_full(db));
	int64_t id;
	CHECK_INT(db_master_register(db, "m", &id), 0);
	/* another error is not a full disk */
	CHECK(db_master_set_active(db, 99999, true, 1.0) < 0 || !db_disk_full(db));
	cap_pages(db);
	CHECK_INT(write_until_full(db), KILN_EDB);
	CHECK(db_disk_full(db));
	CHECK(strstr(db_errmsg(db), "full") != NULL);
	db_close(db);
}

TEST(refused_writes_and_served_reads)
{
	struct db *db = open_file(NULL);
	int64_t id, id2 = 0;
	CHECK_INT(db_master_register(db, "before", &id), 0);
	db_refuse_writes(db, true);
	CHECK_INT(db_master_register(db, "during", &id2), KILN_EDB);
	CHECK_STR(db_errmsg(db), "database write failed: database or disk is full");
	CHECK(db_disk_full(db));
	CHECK(db_schema_version(db) > 0);                            /* reads go on */
	CHECK_INT(db_master_register(db, "before", &id2), KILN_EDB); /* even an upsert */
	db_refuse_writes(db, false);
	CHECK_INT(db_master_register(db, "after", &id2), 0);
	CHECK(id2 > id);
	db_close(db);
}

TEST(free_bytes)
{
	struct db *db = open_file(NULL);
	uint64_t n = 0;
	CHECK_INT(db_free_bytes(db, &n), 0);
	CHECK(n > 0);
	db_close(db);
	CHECK_INT(db_open(NULL, "sqlite::memory:", NULL, &db), 0);
	CHECK_INT(db_free_bytes(db, &n), -ENOENT);
	db_close(db);
}

struct lost {
	int calls;
	bool full;
};

static void on_commit_error(struct db *db, int r, const char *msg, void *ud)
{
	(void)r;
	(void)msg;
	struct lost *l = ud;
	l->calls++;
	l->full = db_disk_full(db);
}

/* On a loop: whether SQLite fails the statement (the batch goes on: the
 * caller has the error) or the transaction (the batch is gone: the
 * callback hears of it), nothing is lost silently; a failed COMMIT of a
 * full batch reaches the callback. */
TEST(full_batch_on_a_loop)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct db *db = open_file(&loop);
	struct lost l = {0};
	db_set_commit_error_cb(db, on_commit_error, &l);
	int64_t id;
	CHECK_INT(db_master_register(db, "first", &id), 0);
	CHECK_INT(db_flush(db), 0);
	cap_pages(db);
	CHECK_INT(write_until_full(db), KILN_EDB);
	CHECK(db_disk_full(db));
	printf("# SQLITE_FULL on a loop: %s\n",
	       db->in_txn ? "the statement failed, the batch stays open"
			  : "the batch was rolled back (callback called)");
	if (db->in_txn) {
		/* the statement failed, the batch is still open: its commit
		 * either fits or fails loudly */
		int r = db_flush(db);
		CHECK(r == 0 || l.calls == 1);
	} else {
		CHECK_INT(l.calls, 1);
	}
	if (l.calls)
		CHECK(l.full);
	CHECK(db_schema_version(db) > 0); /* reads still work */
	db_close(db);
	while (uv_run(&loop, UV_RUN_NOWAIT))
		;
	CHECK_INT(uv_loop_close(&loop), 0);
}

/* A write inside db_write_begin() hits a full disk and SQLite rolls back
 * the whole transaction (as ENOSPC on a real file system may): the batch
 * is lost, and the callback hears of the full disk, not of the savepoint
 * that went with it (t1350 saw "ROLLBACK TO w: no such savepoint" stop the
 * master instead of holding it). */
TEST(full_write_whose_transaction_sqlite_ended)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct db *db = open_file(&loop);
	struct lost l = {0};
	db_set_commit_error_cb(db, on_commit_error, &l);
	int64_t id;
	CHECK_INT(db_master_register(db, "first", &id), 0);
	CHECK_INT(db_flush(db), 0);
	CHECK_INT(db_write_begin(db), 0);
	cap_pages(db);
	int rc = SQLITE_OK;
	for (int i = 0; i < 1000 && rc == SQLITE_OK; i++)
		rc = sqlite3_exec(db->h,
				  "INSERT INTO masters (name, active, last_active) "
				  "VALUES (hex(randomblob(1000)), 0, 0)",
				  NULL, NULL, NULL);
	CHECK_INT(rc & 0xff, SQLITE_FULL);
	int r = db_fail(db, "insert");
	/* what SQLite may do on its own after SQLITE_FULL (if it has not
	 * already: then this ROLLBACK fails, "no transaction is active") */
	(void)sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	CHECK(sqlite3_get_autocommit(db->h));
	CHECK_INT(db_write_end(db, r), KILN_EDB);
	CHECK_INT(l.calls, 1);
	CHECK(l.full);
	CHECK(db_disk_full(db));
	CHECK(strstr(db_errmsg(db), "full") != NULL);
	CHECK(!db->in_txn);
	CHECK(db_schema_version(db) > 0); /* reads still work */
	db_close(db);
	while (uv_run(&loop, UV_RUN_NOWAIT))
		;
	CHECK_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/kiln-test-db-full-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(full_is_told_apart);
	RUN(refused_writes_and_served_reads);
	RUN(free_bytes);
	RUN(full_batch_on_a_loop);
	RUN(full_write_whose_transaction_sqlite_ended);
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "# cannot remove %s\n", tmpdir);
	free(cmd);
	return tap_done();
}
