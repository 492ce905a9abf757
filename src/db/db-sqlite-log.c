/*
 * Build logs in SQLite: line-aligned chunks of about KILN_LOG_CHUNK_BYTES,
 * zstd-compressed once closed, indexed by (logid, first_line) so any line
 * range is read from the few chunks that hold it.  Each open log keeps its
 * tail chunk in memory (struct db_log_tail) and writes it, uncompressed, to
 * its row when the batch commits; memory is one chunk per open log.
 */
#include "db/db-internal.h"
#include "db/db-pg.h"

#include <errno.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

#define LOG_SUBSYS "db"
#include "common/log.h"
#include "common/stats.h" /* slice "operator" */

#define DB_LOG_ZSTD_LEVEL 3

/* --- in-memory tails ------------------------------------------------------------ */

static void sqlite_log_tail_free(struct db_log_tail *t)
{
	buf_release(&t->text);
	free(t);
}

struct db_log_tail *db_log_tail_find(struct db *db, int64_t logid)
{
	for (struct db_log_tail **pp = &db->tails; *pp; pp = &(*pp)->next) {
		struct db_log_tail *t = *pp;
		if (t->logid == logid) {
			/* Move to front: the logs being written are few and hot. */
			*pp = t->next;
			t->next = db->tails;
			db->tails = t;
			return t;
		}
	}
	return NULL;
}

static void sqlite_log_tail_forget(struct db *db, struct db_log_tail *t)
{
	for (struct db_log_tail **pp = &db->tails; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			sqlite_log_tail_free(t);
			return;
		}
	}
}

void db_log_drop_all(struct db *db)
{
	while (db->tails) {
		struct db_log_tail *t = db->tails;
		db->tails = t->next;
		sqlite_log_tail_free(t);
	}
}

struct log_row {
	int64_t stepid, num_lines;
	uint64_t bytes;
	char type;
	bool complete, truncated;
};

static int sqlite_log_row_get(struct db *db, int64_t logid, struct log_row *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(db, ST_LOG_GET,
						 "SELECT stepid, type, complete, num_lines, bytes, "
						 "truncated FROM logs WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, logid);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return db_failf(db, KILN_ENOTFOUND, "no log %lld", (long long)logid);
	if (rc != SQLITE_ROW)
		return db_fail(db, "get log");
	const char *type = (const char *)sqlite3_column_text(s, 1);
	*ret = (struct log_row){
		.stepid = sqlite3_column_int64(s, 0),
		.type = type && *type ? type[0] : 's',
		.complete = sqlite3_column_int(s, 2) != 0,
		.num_lines = sqlite3_column_int64(s, 3),
		.bytes = (uint64_t)sqlite3_column_int64(s, 4),
		.truncated = sqlite3_column_int(s, 5) != 0,
	};
	return 0;
}

/* The tail of an open log, loaded from the table if not in memory (after a
 * restart the open tail is the last, uncompressed, chunk row).  Sets *ret to
 * NULL for a complete log. */
static int sqlite_log_tail_get(struct db *db, int64_t logid, struct db_log_tail **ret)
{
	struct db_log_tail *t = db_log_tail_find(db, logid);
	if (t || db->pg) { /* PostgreSQL: only the logs this master writes are open */
		*ret = t;
		return 0;
	}
	struct log_row row;
	int r = sqlite_log_row_get(db, logid, &row);
	if (r < 0)
		return r;
	if (row.complete) {
		*ret = NULL;
		return 0;
	}
	t = xcalloc(1, sizeof(*t));
	t->logid = logid;
	t->type = row.type;
	t->num_lines = row.num_lines;
	t->first_line = row.num_lines;
	t->bytes = row.bytes;
	t->truncated = row.truncated;
	buf_init(&t->text, SIZE_MAX / 2);
	{
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_LOG_TAIL_ROW,
				"SELECT rowid, first_line, compressed, content FROM logchunks "
				"WHERE logid = ?1 ORDER BY first_line DESC LIMIT 1");
		if (!s) {
			sqlite_log_tail_free(t);
			return KILN_EDB;
		}
		sqlite3_bind_int64(s, 1, logid);
		int rc = sqlite3_step(s);
		/* An uncompressed row of a full chunk is a closed chunk whose
		 * compression (off the loop) had not committed: not the tail. */
		if (rc == SQLITE_ROW && sqlite3_column_int(s, 2) == 0 &&
		    (size_t)sqlite3_column_bytes(s, 3) < KILN_LOG_CHUNK_BYTES) {
			t->rowid = sqlite3_column_int64(s, 0);
			t->first_line = sqlite3_column_int64(s, 1);
			if (buf_add(&t->text, sqlite3_column_blob(s, 3),
				    (size_t)sqlite3_column_bytes(s, 3)) < 0) {
				sqlite_log_tail_free(t);
				return db_failf(db, -E2BIG, "log %lld: tail chunk over its cap",
						(long long)logid);
			}
		} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			sqlite_log_tail_free(t);
			return db_fail(db, "log tail");
		}
	}
	t->next = db->tails;
	db->tails = t;
	*ret = t;
	return 0;
}

/* --- writing chunks ------------------------------------------------------------- */

/* Writes the tail's lines to its row (inserting it the first time). */
static int sqlite_log_tail_write_row(struct db *db, struct db_log_tail *t, const void *content,
				     size_t len, bool compressed)
{
	if (db->pg)
		return db_pg_log_write_row(db, t, content, len, compressed);
	int r;
	if (t->rowid) {
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_LOG_CHUNK_UPDATE,
			"UPDATE logchunks SET last_line = ?2, compressed = ?3, content = ?4 "
			"WHERE rowid = ?1");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, t->rowid);
		sqlite3_bind_int64(s, 2, t->num_lines - 1);
		sqlite3_bind_int(s, 3, compressed);
		sqlite3_bind_blob64(s, 4, content, len, SQLITE_STATIC);
		r = db_step_done(db, s, "update log chunk");
	} else {
		_cleanup_stmt_ sqlite3_stmt *s = db_stmt(
			db, ST_LOG_CHUNK_INSERT,
			"INSERT INTO logchunks (logid, first_line, last_line, compressed, content) "
			"VALUES (?1, ?2, ?3, ?4, ?5)");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, t->logid);
		sqlite3_bind_int64(s, 2, t->first_line);
		sqlite3_bind_int64(s, 3, t->num_lines - 1);
		sqlite3_bind_int(s, 4, compressed);
		sqlite3_bind_blob64(s, 5, content, len, SQLITE_STATIC);
		r = db_step_done(db, s, "insert log chunk");
		if (r >= 0)
			t->rowid = sqlite3_last_insert_rowid(db->h);
	}
	return r;
}

/* The log's counters; complete: and its end, in the same statement. */
static int sqlite_log_tail_write_counts(struct db *db, struct db_log_tail *t, bool complete)
{
	if (db->pg)
		return db_pg_log_write_counts(db, t, complete);
	_cleanup_stmt_ sqlite3_stmt *s =
		complete ? db_stmt(db, ST_LOG_FINISH,
				   "UPDATE logs SET num_lines = ?2, bytes = ?3, truncated = ?4, "
				   "complete = 1 WHERE id = ?1")
			 : db_stmt(db, ST_LOG_UPDATE_COUNTS,
				   "UPDATE logs SET num_lines = ?2, bytes = ?3, truncated = ?4 "
				   "WHERE id = ?1");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, t->logid);
	sqlite3_bind_int64(s, 2, t->num_lines);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)t->bytes);
	sqlite3_bind_int(s, 4, t->truncated);
	return db_step_done(db, s, complete ? "finish log" : "log counts");
}

/* --- compression off the loop ------------------------------------------------------ */

/* A closed chunk written uncompressed, being compressed in the thread pool;
 * a later batch swaps the row's content for the compressed frame. */
struct db_log_zjob {
	uv_work_t req;
	struct db *db;
	int64_t rowid;
	char *text; /* owned: the chunk's lines, as written to the row */
	size_t len;
	void *frame; /* owned: the zstd frame, NULL on failure */
	size_t frame_len;
	ZSTD_CCtx *zc; /* owned while the job runs, from db->zpool */
};

/* Returns the job's context to the pool (or frees it: pool full, db closing). */
static void sqlite_log_zjob_free(struct db_log_zjob *j)
{
	struct db *db = j->db;
	if (j->zc && !db->closing && db->zpool_n < (int)ARRAY_SIZE(db->zpool))
		db->zpool[db->zpool_n++] = j->zc;
	else
		ZSTD_freeCCtx(j->zc);
	free(j->text);
	free(j->frame);
	free(j);
}

static void sqlite_log_zjob_work(uv_work_t *req)
{
	struct db_log_zjob *j = req->data;
	size_t bound = ZSTD_compressBound(j->len);
	j->frame = xmalloc(bound);
	size_t n = ZSTD_compressCCtx(j->zc, j->frame, bound, j->text, j->len, DB_LOG_ZSTD_LEVEL);
	if (ZSTD_isError(n)) {
		free(j->frame);
		j->frame = NULL;
		return;
	}
	j->frame_len = n;
}

/* The row still holds exactly the text compressed (not rolled back, not
 * reused): then it takes the frame; otherwise nothing changes. */
static int sqlite_log_zjob_apply(struct db *db, struct db_log_zjob *j)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_LOG_CHUNK_COMPRESS,
			"UPDATE logchunks SET compressed = 1, content = ?3 "
			"WHERE rowid = ?1 AND compressed = 0 AND content = ?2");
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, j->rowid);
	sqlite3_bind_blob64(s, 2, j->text, j->len, SQLITE_STATIC);
	sqlite3_bind_blob64(s, 3, j->frame, j->frame_len, SQLITE_STATIC);
	return db_step_done(db, s, "compress log chunk");
}

static void sqlite_log_zjob_after(uv_work_t *req, int status)
{
	struct db_log_zjob *j = req->data;
	struct db *db = j->db;
	db->zjobs--;
	/* A chunk left uncompressed (failure, db closing) still reads right. */
	if (status == 0 && j->frame && !db->closing) {
		/* the database's own housekeeping: not a sign that the loop keeps
		 * writing, so it does not keep the batch open (group commit) */
		uint64_t w = db->writes;
		int r = WRITE1(sqlite_log_zjob_apply(db, j));
		db->writes_at_prepare += db->writes - w;
		if (r < 0)
			log_debug("log chunk %lld stays uncompressed: %s", (long long)j->rowid,
				  db->errmsg);
	}
	sqlite_log_zjob_free(j);
	if (db->closing)
		db_free_if_done(db);
}

/* Closes the tail chunk with its compression off the loop: the row is
 * written uncompressed now, a job compresses a copy.  0 if done that way,
 * 1 if the caller should compress inline (no loop, too many jobs). */
static int sqlite_log_tail_close_async(struct db *db, struct db_log_tail *t)
{
	if (!db->loop || db->closing || db->pg || (size_t)db->zjobs >= ARRAY_SIZE(db->zpool))
		return 1; /* PostgreSQL: inline, so no job outlives its db */
	ZSTD_CCtx *zc = db->zpool_n ? db->zpool[--db->zpool_n] : ZSTD_createCCtx();
	if (!zc)
		return 1;
	int r = sqlite_log_tail_write_row(db, t, t->text.ptr, t->text.len, false);
	if (r >= 0)
		r = sqlite_log_tail_write_counts(db, t, false);
	if (r < 0) {
		ZSTD_freeCCtx(zc);
		return r;
	}
	struct db_log_zjob *j = xcalloc(1, sizeof(*j));
	j->db = db;
	j->zc = zc;
	j->rowid = t->rowid;
	j->text = buf_detach(&t->text, &j->len);
	j->req.data = j;
	if (uv_queue_work(db->loop, &j->req, sqlite_log_zjob_work, sqlite_log_zjob_after) < 0)
		sqlite_log_zjob_free(j); /* stays uncompressed, still correct */
	else
		db->zjobs++;
	t->first_line = t->num_lines;
	t->rowid = 0;
	t->dirty = false;
	return 0;
}

/* Closes the tail chunk: compressed, written, and a new empty tail begun. */
static int sqlite_log_tail_close_chunk(struct db *db, struct db_log_tail *t)
{
	if (t->text.len == 0)
		return 0;
	int a = sqlite_log_tail_close_async(db, t);
	if (a <= 0)
		return a;
	size_t bound = ZSTD_compressBound(t->text.len);
	buf_reset(&db->zbuf);
	int r = buf_grow(&db->zbuf, bound);
	if (r < 0)
		return db_failf(db, r, "log chunk too large to compress");
	size_t n = ZSTD_compressCCtx(db->zc, db->zbuf.ptr, bound, t->text.ptr, t->text.len,
				     DB_LOG_ZSTD_LEVEL);
	if (ZSTD_isError(n))
		return db_failf(db, KILN_EDB, "compress log chunk: %s", ZSTD_getErrorName(n));
	r = sqlite_log_tail_write_row(db, t, db->zbuf.ptr, n, true);
	/* The counters go with every closed chunk, so the table is consistent
	 * at each chunk boundary even if this batch later loses its tail. */
	if (r >= 0)
		r = sqlite_log_tail_write_counts(db, t, false);
	if (r < 0)
		return r;
	t->first_line = t->num_lines;
	t->rowid = 0;
	buf_reset(&t->text);
	t->dirty = false;
	return 0;
}

static int sqlite_log_tail_sync(struct db *db, struct db_log_tail *t)
{
	if (!t->dirty)
		return 0;
	int r = 0;
	if (t->text.len)
		r = sqlite_log_tail_write_row(db, t, t->text.ptr, t->text.len, false);
	if (r >= 0)
		r = sqlite_log_tail_write_counts(db, t, false);
	if (r >= 0)
		t->dirty = false;
	return r;
}

int db_log_sync_all(struct db *db)
{
	for (struct db_log_tail *t = db->tails; t; t = t->next) {
		int r = sqlite_log_tail_sync(db, t);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Adds whole lines [p, p+n) to the tail (n > 0, p[n-1] == '\n' unless
 * add_newline), closing the chunk when it reaches the chunk size.  On
 * failure t may have been freed: callers must not touch it then. */
static int sqlite_log_tail_add(struct db *db, struct db_log_tail *t, const char *p, size_t n,
			       bool add_newline)
{
	/* The tail's cap is far above a chunk, so this cannot fail in practice;
	 * if it did, the tail's unsaved lines are gone (the buffer dropped
	 * them): forget it, so the next use reloads what the table holds. */
	int r = buf_add(&t->text, p, n);
	if (r >= 0 && add_newline)
		r = buf_addch(&t->text, '\n');
	if (r < 0) {
		int64_t logid = t->logid;
		sqlite_log_tail_forget(db, t);
		return db_failf(db, r, "log %lld: tail chunk over its cap", (long long)logid);
	}
	size_t lines = db_log_count_lines(p, n);
	if (add_newline) {
		lines++;
		n++;
	}
	t->num_lines += (int64_t)lines;
	t->bytes += n;
	t->dirty = true;
	if (t->text.len >= KILN_LOG_CHUNK_BYTES)
		return sqlite_log_tail_close_chunk(db, t);
	return 0;
}

static int sqlite_log_tail_truncate(struct db *db, struct db_log_tail *t)
{
	char marker[128];
	int n = snprintf(marker, sizeof(marker), "%s[log truncated: over %llu bytes]\n",
			 t->type == 's' ? "h" : "", (unsigned long long)db->log_cap);
	int r = sqlite_log_tail_add(db, t, marker, (size_t)n, false);
	if (r < 0)
		return r; /* t may be gone (sqlite_log_tail_add) */
	t->truncated = true;
	t->dirty = true;
	return 0;
}

/* Adds text (whole lines; a last line without '\n' gets one) in chunks. */
static int sqlite_log_append_lines(struct db *db, struct db_log_tail *t, const char *p, size_t len)
{
	const char *end = p + len;
	int r = 0;
	while (p < end && r >= 0) {
		size_t rest = (size_t)(end - p);
		size_t room =
			t->text.len < KILN_LOG_CHUNK_BYTES ? KILN_LOG_CHUNK_BYTES - t->text.len : 0;
		if (rest <= room)
			return sqlite_log_tail_add(db, t, p, rest, end[-1] != '\n');
		/* Fill the chunk with the whole lines that fit. */
		const char *q = room ? memrchr(p, '\n', room) : NULL;
		if (q) {
			r = sqlite_log_tail_add(db, t, p, (size_t)(q + 1 - p), false);
			p = q + 1;
		} else if (t->text.len == 0) {
			/* One line longer than a chunk: it gets a chunk of its own. */
			q = memchr(p, '\n', rest);
			size_t n = q ? (size_t)(q + 1 - p) : rest;
			r = sqlite_log_tail_add(db, t, p, n, !q);
			p += n;
		} else {
			r = sqlite_log_tail_close_chunk(db, t);
		}
		if (r >= 0 && t->text.len >= KILN_LOG_CHUNK_BYTES)
			r = sqlite_log_tail_close_chunk(db, t);
	}
	return r;
}

static int sqlite_log_append(struct db *db, struct db_log_tail *t, const char *text, size_t len)
{
	if (t->bytes + len <= db->log_cap)
		return sqlite_log_append_lines(db, t, text, len);
	/* Over the cap: keep the whole lines that fit, then the marker. */
	uint64_t room = db->log_cap > t->bytes ? db->log_cap - t->bytes : 0;
	const char *q = room ? memrchr(text, '\n', (size_t)room) : NULL;
	int r = 0;
	if (q)
		r = sqlite_log_append_lines(db, t, text, (size_t)(q + 1 - text));
	if (r >= 0)
		r = sqlite_log_tail_truncate(db, t);
	return r;
}

int db_log_append(struct db *db, int64_t logid, const char *text, size_t len)
{
	struct db_log_tail *t = NULL;
	int r = sqlite_log_tail_get(db, logid, &t);
	if (r < 0)
		return r;
	if (!t)
		return db_failf(db, KILN_ESTATE, "log %lld is finished", (long long)logid);
	if (len == 0 || t->truncated)
		return 0;
	if (db->pg) { /* written at the end of the turn (db_pg_log_sync), or as chunks close */
		r = sqlite_log_append(db, t, text, len);
		if (r < 0) {
			sqlite_log_tail_forget(db, t);
		} else {
			db_pg_log_touched(db);
			stats.log_bytes += len; /* slice "operator": /metrics */
		}
		return r;
	}
	/* Lines that stay in the tail chunk (the common case) only join the
	 * batch: no statement runs before its commit writes the tail. */
	bool in_memory = t->text.len < KILN_LOG_CHUNK_BYTES &&
			 len < KILN_LOG_CHUNK_BYTES - t->text.len - 1 &&
			 t->bytes + len < db->log_cap;
	r = in_memory ? db_write1_begin(db) : db_write_begin(db);
	if (r < 0)
		return r;
	r = sqlite_log_append(db, t, text, len);
	if (r < 0) {
		/* The memory tail may be ahead of the table: reload it later. */
		sqlite_log_tail_forget(db, t);
	} else {
		stats.log_bytes += len; /* slice "operator": /metrics */
	}
	return in_memory ? db_write1_end(db, r) : db_write_end(db, r);
}

int db_log_finish_locked(struct db *db, int64_t logid)
{
	struct db_log_tail *t = NULL;
	int r = sqlite_log_tail_get(db, logid, &t);
	if (r < 0 || !t)
		return r;
	if (t->text.len >= KILN_LOG_RAW_TAIL_BYTES)
		r = sqlite_log_tail_close_chunk(db, t);
	else if (t->text.len && (t->dirty || !t->rowid))
		/* A short last chunk stays as it is: compressing a few lines
		 * costs more (a job, a second commit) than the bytes it saves,
		 * and an uncompressed chunk reads the same. */
		r = sqlite_log_tail_write_row(db, t, t->text.ptr, t->text.len, false);
	if (r >= 0)
		r = sqlite_log_tail_write_counts(db, t, true);
	sqlite_log_tail_forget(db, t);
	return r;
}

int db_log_finish(struct db *db, int64_t logid)
{
	if (db->pg)
		return db_log_finish_locked(db, logid);
	int r = db_write_begin(db);
	if (r < 0)
		return r;
	return db_write_end(db, db_log_finish_locked(db, logid));
}

static int sqlite_log_insert(struct db *db, int64_t stepid, const char *name, const char *slug,
			     char type, int64_t *ret)
{
	_cleanup_stmt_ sqlite3_stmt *s =
		db_stmt(db, ST_LOG_ADD,
			"INSERT INTO logs (name, slug, stepid, type) VALUES (?1, ?2, ?3, ?4)");
	if (!s)
		return KILN_EDB;
	char ty[2] = {type, 0};
	db_bind_text(s, 1, name);
	db_bind_text(s, 2, slug);
	sqlite3_bind_int64(s, 3, stepid);
	db_bind_text(s, 4, ty);
	int rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		int ext = sqlite3_extended_errcode(db->h);
		if (ext == SQLITE_CONSTRAINT_UNIQUE)
			return db_failf(db, -EEXIST, "step %lld already has a log '%s'",
					(long long)stepid, name);
		if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
			return db_failf(db, KILN_ENOTFOUND, "no step %lld", (long long)stepid);
		return db_fail(db, "add log");
	}
	*ret = sqlite3_last_insert_rowid(db->h);
	return 0;
}

/* The empty in-memory tail of a log just added in the open batch, so that
 * its first append reads nothing (a rollback drops it with the row). */
void db_log_tail_new(struct db *db, int64_t logid, char type)
{
	if (!db->in_txn && !db->pg)
		return; /* committed already (no loop): the first append loads it */
	struct db_log_tail *t = xcalloc(1, sizeof(*t));
	t->logid = logid;
	t->type = type;
	buf_init(&t->text, SIZE_MAX / 2);
	t->next = db->tails;
	db->tails = t;
}

int db_log_add(struct db *db, int64_t stepid, const char *name, char type, int64_t *ret_logid)
{
	if (type != 's' && type != 't' && type != 'h')
		return db_failf(db, -EINVAL, "log type '%c' is not one of s, t, h", type);
	if (!name || !*name)
		return db_failf(db, -EINVAL, "log name is empty");
	_cleanup_free_ char *slug = db_slugify(name);
	if (db->pg) {
		int r = db_pg_log_add(db, stepid, name, slug, type, ret_logid);
		if (r == 0)
			db_log_tail_new(db, *ret_logid, type);
		return r;
	}
	int64_t id = 0;
	int r = WRITE1(sqlite_log_insert(db, stepid, name, slug, type, &id));
	if (r < 0)
		return r;
	db_log_tail_new(db, id, type);
	*ret_logid = id;
	return 0;
}

int db_log_get(struct db *db, int64_t logid, struct db_log_info *ret)
{
	struct log_row row;
	int r = sqlite_log_row_get(db, logid, &row);
	if (r < 0)
		return r;
	struct db_log_tail *t = db_log_tail_find(db, logid);
	*ret = (struct db_log_info){
		.logid = logid,
		.stepid = row.stepid,
		.num_lines = t ? t->num_lines : row.num_lines,
		.type = row.type,
		.complete = row.complete,
	};
	return 0;
}

/* --- reading and searching: SQLite's rows through db-log-read.c -------------------- */

static void sqlite_log_chunk_of(sqlite3_stmt *s, struct db_log_chunk *c)
{
	*c = (struct db_log_chunk){
		.first_line = sqlite3_column_int64(s, 0),
		.last_line = sqlite3_column_int64(s, 1),
		.compressed = sqlite3_column_int(s, 2) != 0,
		.blob = sqlite3_column_blob(s, 3),
		.n = (size_t)sqlite3_column_bytes(s, 3),
	};
}

int db_log_read(struct db *db, int64_t logid, int64_t first_line, int64_t max_lines,
		struct buf *out, int64_t *ret_count)
{
	struct db_log_read rd;
	int r = db_log_read_init(db, &rd, logid, first_line, max_lines, out);
	if (r < 0)
		return r;
	struct log_row row;
	r = sqlite_log_row_get(db, logid, &row);
	if (r < 0)
		return r;
	if (rd.first < rd.table_to) {
		_cleanup_stmt_ sqlite3_stmt *s =
			db_stmt(db, ST_LOG_CHUNKS_READ,
				"SELECT first_line, last_line, compressed, content FROM logchunks "
				"WHERE logid = ?1 AND first_line >= COALESCE((SELECT first_line "
				"FROM logchunks "
				"WHERE logid = ?1 AND first_line <= ?2 ORDER BY first_line DESC "
				"LIMIT 1), 0) "
				"AND first_line < ?3 ORDER BY first_line");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, logid);
		sqlite3_bind_int64(s, 2, rd.first);
		sqlite3_bind_int64(s, 3, rd.table_to);
		int rc;
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			struct db_log_chunk c;
			sqlite_log_chunk_of(s, &c);
			r = db_log_read_row(db, &rd, &c);
			if (r < 0) {
				*ret_count = rd.count;
				return r;
			}
		}
		if (rc != SQLITE_DONE)
			return db_fail(db, "read log chunks");
	}
	r = db_log_read_tail(db, &rd);
	*ret_count = rd.count;
	return r;
}

int db_log_search(struct db *db, int64_t logid, const char *needle, size_t nlen, unsigned flags,
		  int64_t from, uint64_t max_scan, int64_t *ret_line, int64_t *ret_next)
{
	struct db_log_search q;
	int r = db_log_search_init(db, &q, logid, 's', needle, nlen, flags, from, max_scan);
	if (r < 0)
		return r;
	struct log_row row;
	r = sqlite_log_row_get(db, logid, &row);
	if (r < 0)
		return r;
	q.strip = row.type == 's';
	r = db_log_search_head(db, &q);
	if (r == 0 && db_log_search_wants_rows(&q)) {
		_cleanup_stmt_ sqlite3_stmt *s =
			q.backward ? db_stmt(db, ST_LOG_SEARCH_BACK,
					     "SELECT first_line, last_line, compressed, content "
					     "FROM logchunks WHERE logid = ?1 AND first_line <= ?2 "
					     "AND first_line < ?3 ORDER BY first_line DESC")
				   : db_stmt(db, ST_LOG_SEARCH_FWD,
					     "SELECT first_line, last_line, compressed, content "
					     "FROM logchunks WHERE logid = ?1 AND first_line >= "
					     "COALESCE((SELECT first_line FROM logchunks WHERE "
					     "logid = ?1 "
					     "AND first_line <= ?2 ORDER BY first_line DESC LIMIT "
					     "1), 0) "
					     "AND first_line < ?3 ORDER BY first_line");
		if (!s)
			return KILN_EDB;
		sqlite3_bind_int64(s, 1, logid);
		sqlite3_bind_int64(s, 2, from);
		sqlite3_bind_int64(s, 3, q.table_to);
		int rc;
		while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
			struct db_log_chunk c;
			sqlite_log_chunk_of(s, &c);
			r = db_log_search_row(db, &q, &c);
		}
		if (r < 0)
			return r;
		if (r == 0 && rc != SQLITE_DONE)
			return db_fail(db, "search log chunks");
	}
	if (r == 0)
		r = db_log_search_tail(db, &q);
	if (r < 0)
		return r;
	*ret_line = q.line;
	*ret_next = q.line >= 0 ? -1 : q.next;
	return 0;
}
