/*
 * Internals shared by the SQLite backend's files (db-sqlite.c: connection,
 * batching, statement cache, checkpoints; db-sqlite-<noun>.c: one entity
 * each; db-sqlite-log.c: log chunks; db-sqlite-list.c: the REST listing,
 * its queries built by db-list.c).
 * Not part of the db.h API.
 */
#ifndef KILN_DB_INTERNAL_H
#define KILN_DB_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>
#include <stdatomic.h>
#include <uv.h>
#include <zstd.h>

#include "common/buf.h"
#include "common/err.h"
#include "db/db.h"

/* The embedded migrations (migrations.c, generated from migrations/NNNN-*.sql). */
struct db_migration {
	int version;
	const char *name; /* "0001-initial" */
	const char *sql;
};
const struct db_migration *db_migrations(size_t *ret_n);

/* Backend-neutral helpers (db.c). */
/* slug of a log name: [A-Za-z0-9_-] kept, others '_' (owned result). */
char *db_slugify(const char *name);

/* One log being appended: its open tail chunk lives here (at most about one
 * chunk of memory per open log) and is written to the tail row at commit. */
struct db_log_tail {
	int64_t logid;
	char type;
	int64_t num_lines;  /* lines in the whole log */
	int64_t first_line; /* first line of the tail chunk */
	uint64_t bytes;     /* uncompressed bytes in the whole log */
	bool truncated;
	bool dirty;      /* tail or counters changed since written */
	int64_t rowid;   /* rowid of the tail's logchunks row, 0 if not written */
	struct buf text; /* the tail chunk's lines */
	struct db_log_tail *next;
};

struct db_cached_stmt {
	char *sql; /* owned */
	sqlite3_stmt *stmt;
	uint64_t used;
};

#define DB_LIST_CACHE 32

/* Builds whose next step number a connection remembers (running builds
 * interleave their steps; a miss costs one index seek). */
#define DB_STEP_NEXT_SLOTS 32
/* The loop handles of a struct db (check, idle, prepare). */
#define DB_LOOP_HANDLES 3

struct db_async;
struct db_pg;

struct db {
	sqlite3 *h;
	/* issue 14: PostgreSQL (db-pg.c) instead of SQLite when not NULL; the
	 * asynchronous reads' answers waiting for their turn (db-async.c) */
	struct db_pg *pg;
	struct db_async *async;
	uv_loop_t *loop;  /* borrowed; NULL: autocommit per call */
	uv_check_t check; /* commits the batch after the loop turn */
	uv_idle_t idle;   /* keeps the poll phase from blocking while a batch is open */
	/* group commit (slice "steps20"): where a turn's I/O callbacks begin */
	uv_prepare_t prepare;
	int handles_open;           /* of check, idle, prepare: DB_LOOP_HANDLES, or 0 */
	uint64_t writes;            /* write calls since open */
	uint64_t writes_at_prepare; /* writes when the turn's poll phase began */
	unsigned batch_turns;       /* turns the open batch was kept open past */
	uint64_t batch_start_ms;    /* uv_now() when it began */
	bool in_txn;
	int savepoint_depth;
	char errmsg[512];
	sqlite3_stmt **stmts; /* fixed statements, by enum db_stmt_id */
	struct db_cached_stmt list_cache[DB_LIST_CACHE];
	uint64_t list_tick;
	db_commit_error_fn commit_error_fn;
	void *commit_error_ud;
	uint64_t log_cap;
	struct db_log_tail *tails; /* open logs with state in memory */
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
	struct buf zbuf; /* scratch for (de)compression */
	/* Checkpoints off the loop (db-sqlite.c): the loop's connection has no
	 * auto-checkpoint; past DB_CKPT_FRAMES WAL frames a uv_queue_work job
	 * checkpoints on its own connection.  One job at a time. */
	char *path;        /* owned: the database file */
	int wal_frames;    /* WAL frames after the last commit (wal hook) */
	bool ckpt_enabled; /* a file database on a loop, SQLite thread-safe */
	bool ckpt_busy;    /* a job is queued or running (loop thread) */
	bool closing;      /* db_close ran; freed once handles and job are done */
	uv_work_t ckpt_req;
	uv_mutex_t ckpt_lock; /* guards ckpt_working with ckpt_cond */
	uv_cond_t ckpt_cond;
	bool ckpt_working;            /* the job's work part has not finished */
	sqlite3 *ckpt_h;              /* the job's connection (used by one job at a time) */
	int ckpt_rc;                  /* last job's SQLite result */
	uint64_t ckpt_runs;           /* jobs finished, truncating ones too */
	uint64_t ckpt_truncate_bytes; /* a job truncates a WAL file past this */
	bool ckpt_truncated;          /* the last job truncated the WAL (job thread) */
	atomic_bool ckpt_truncating;  /* the job's truncation is under way (db_ckpt_hold) */
	double ckpt_truncate_ms;      /* ...and how long that took (job thread) */
	uint64_t wal_truncations;     /* jobs that truncated (loop thread) */
	double wal_truncate_worst_ms; /* the longest of those truncations */
	int zjobs;                    /* log chunks being compressed off the loop */
	ZSTD_CCtx *zpool[4];          /* contexts for those jobs, free ones (loop thread); its size
				       * caps the chunks compressed off the loop at once */
	int zpool_n;
	uint64_t commits; /* batch commits attempted since open */
	/* slice "steps20": the number of the next step of recent builds, slot
	 * buildid % DB_STEP_NEXT_SLOTS (db-sqlite-step.c); buildid 0: empty */
	struct {
		int64_t buildid, number;
	} step_next[DB_STEP_NEXT_SLOTS];
	uint64_t fail_commit_at; /* KILN_TEST_FAIL_COMMIT: fail that commit (0: never) */
	bool disk_full;          /* the last failure was a full disk (slice "faults") */
	bool refuse_writes;      /* db_refuse_writes(): every write fails at once */
};

/* Errors: sets db->errmsg from sqlite's message and returns KILN_EDB. */
int db_fail(struct db *db, const char *what);
/* Sets db->errmsg from a format and returns r. */
int db_failf(struct db *db, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Statement cache: a prepared, reset statement for a fixed SQL text.
 * Statements are identified by an enum db_stmt_id (below), one per fixed
 * SQL text: the first call with an id prepares sql and keeps it in
 * db->stmts[id], later calls return it and ignore sql, so each file keeps
 * its SQL next to its use but two texts must never share an id.  NULL on a
 * prepare error (db_errmsg says). */
sqlite3_stmt *db_stmt(struct db *db, int id, const char *sql);
/* Same for generated SQL (db_list), in a small LRU keyed by the text. */
sqlite3_stmt *db_stmt_dynamic(struct db *db, const char *sql);
static inline void db_stmt_resetp(sqlite3_stmt **s)
{
	if (*s) {
		sqlite3_reset(*s);
		sqlite3_clear_bindings(*s);
	}
}
#define _cleanup_stmt_ __attribute__((cleanup(db_stmt_resetp)))

/* Statement ids: one per fixed SQL text in the backend. */
enum db_stmt_id {
	ST_MASTER_REGISTER,
	ST_MASTER_SET_ACTIVE,
	ST_REC_LOGS,
	ST_MASTERS_DEAD,
	ST_REC_STEPS,
	ST_REC_BUILDS,
	ST_REC_REQUESTS,
	ST_REC_WORKERS,
	ST_BUILDER_ENSURE,
	ST_BUILDER_FIND,
	ST_BUILDER_EXISTS,
	ST_BUILDER_MASTERS_DEL,
	ST_BUILDER_MASTERS_ADD,
	ST_WORKER_ENSURE,
	ST_WORKER_SET_INFO,
	ST_WORKER_SET_CONNECTED,
	ST_WORKER_SET_PAUSED,
	ST_WORKER_SET_GRACEFUL,
	ST_WORKER_EXISTS,
	ST_WORKER_SET_LAST_SEEN, /* slice "uimisc" */
	ST_WORKER_PAUSED,        /* slice "uimisc" */
	ST_CONFIGURED_DEL,
	ST_CONFIGURED_ADD,
	ST_SS_ADD,
	ST_BS_ADD,
	ST_BS_SS_ADD,
	ST_BR_ADD,
	ST_BS_COMPLETE,
	ST_BS_EXISTS,
	ST_BS_PROPS,
	ST_BR_NEXT,
	ST_BR_GET,
	ST_BR_CLAIM,
	ST_BR_UNCLAIM,
	ST_BR_COMPLETE,
	ST_BR_BS_RESULTS,
	ST_BR_PENDING_BUILDERS,
	ST_BR_QUEUED,          /* slice "dispatch" */
	ST_BR_PENDING_SUMMARY, /* slice "dispatch" */
	ST_BUILD_NEXT_NUMBER,
	ST_BUILD_ADD,
	ST_BUILD_SET_STATE,
	ST_BUILD_FINISH,
	ST_BUILD_SET_PROPERTY,
	ST_BUILD_EXISTS,
	ST_STEP_NEXT_NUMBER,
	ST_STEP_NAME_EXISTS,
	ST_STEP_ADD,
	ST_STEP_START,
	ST_STEP_SET_STATE,
	ST_STEP_FINISH,
	ST_STEP_ADD_URL,
	ST_STEP_EXISTS,
	ST_LOG_ADD,
	ST_LOG_GET,
	ST_LOG_TAIL_ROW,
	ST_LOG_CHUNK_INSERT,
	ST_LOG_CHUNK_UPDATE,
	ST_LOG_CHUNK_COMPRESS,
	ST_LOG_UPDATE_COUNTS,
	ST_LOG_FINISH,
	ST_LOG_CHUNKS_READ,
	ST_LOG_SEARCH_FWD, /* slice "uilog" */
	ST_LOG_SEARCH_BACK,
	ST_LOG_EXISTS_NAME,
	ST_TX_BEGIN,
	ST_TX_COMMIT,
	ST_TX_ROLLBACK,
	ST_TX_SAVEPOINT,
	ST_TX_RELEASE,
	ST_TX_ROLLBACK_TO,
	/* changes, users, object state (db-sqlite-changes.c) */
	ST_CHG_PARENT,
	ST_CHG_ADD,
	ST_CHG_SS_ADD,
	ST_CHG_USER_BY_IDENT,
	ST_CHG_USER_ADD,
	ST_CHG_USER_BY_IDENTIFIER,
	ST_CHG_USER_INFO_ADD,
	ST_CHG_USER_LINK,
	ST_CHG_USER_OF,
	ST_CHG_BS_LINK,
	ST_CHG_BLAMELIST,
	ST_CHG_BS_BLAMELIST,
	ST_CHG_STATE_GET,
	ST_CHG_STATE_SET,
	/* end of changes */
	/* schedulers and queue (db-sqlite-sched.c) */
	ST_SCHED_PATCH_ADD,
	ST_SCHED_SS_SET_PATCH,
	ST_SCHED_PATCH_GET,
	ST_SCHED_PATCHES_GET,
	ST_SCHED_BS_GET,
	ST_SCHED_BS_SO_FAR,
	ST_SCHED_COMPATIBLE,
	ST_SCHED_COMPATIBLE_LINES,
	ST_SCHED_REQUEST_LINE,
	ST_SCHED_BUILDSET_LINE,
	ST_SCHED_SUPERSEDED_LINES,
	ST_SCHED_SET_COLLAPSED,
	ST_SCHED_SUPERSEDED,
	/* end of schedulers and queue */
	ST_BS_SOURCESTAMPS, /* several codebases per buildset (db-sqlite-buildset.c) */
	/* test results (db-sqlite-tests.c) */
	ST_TESTS_SET_ADD,
	ST_TESTS_SET_STEP,
	ST_TESTS_SET_STATE,
	ST_TESTS_SET_COMPLETE,
	ST_TESTS_NAME_FIND,
	ST_TESTS_NAME_ADD,
	ST_TESTS_PATH_FIND,
	ST_TESTS_PATH_ADD,
	ST_TESTS_RESULT_ADD,
	ST_TESTS_HISTORY,
	/* end of test results */
	/* numbers over time (db-sqlite-numbers.c) */
	ST_NUM_BUILD_OF,
	ST_NUM_RECORD,
	ST_NUM_PREVIOUS,
	ST_NUM_SERIES,
	ST_NUM_SERIES_ASC,
	ST_NUM_SERIES_COUNT,
	ST_NUM_NAMES,
	ST_NUM_NAMES_COUNT,
	ST_NUM_RECENT_SUCCESS,
	ST_NUM_STEP_DURATIONS,
	ST_NUM_BUILD_TIMES,
	ST_NUM_RUNNING_STARTS,
	ST_NUM_REQUEST_OF,
	ST_NUM_QUEUE_POS,
	/* end of numbers over time */
	/* slice "xfer2": artifacts (db-sqlite-artifacts.c) */
	ST_ART_ADD,
	ST_ART_GET,
	ST_ART_OF_BUILD,
	ST_ART_OLDEST, /* slice "artcli": retention */
	ST_ART_TOTAL,
	ST_ART_KEEP_FROM,
	ST_ART_DEL,
	ST_ART_PATH_USED,
	ST_ART_DIR_USED,
	/* end of artifacts */
	/* slice "retention": the purge (db-sqlite-retention.c) */
	ST_RET_BUILDS_WIN,
	ST_RET_BUILDERS,
	ST_RET_BUILDS_EXCESS,
	ST_RET_LOGS_WIN,
	ST_RET_LOG_CHUNKS_DEL,
	ST_RET_LOG_MARK,
	ST_RET_TSETS_WIN,
	ST_RET_TRES_DEL,
	ST_RET_TSET_DEL,
	ST_RET_NUM_WIN,
	ST_RET_NUM_DEL,
	ST_RET_CHG_WIN,
	ST_RET_CHG_DEL,
	ST_RET_SS_DEL,
	ST_RET_B_INFO,
	ST_RET_B_FILES,
	ST_RET_B_CHUNKS_DEL,
	ST_RET_B_COLLAPSED,
	ST_RET_B_DEL,
	ST_RET_BR_DEL,
	ST_RET_BS_SS,
	ST_RET_BS_DEL,
	ST_RET_BUILDER_ID,
	/* end of retention */
	ST__MAX,
};

/* Write bracketing.  db_write_begin opens the batch (loop) or a transaction
 * (no loop), plus a savepoint so a failing call undoes only itself;
 * db_write_end(db, r) releases or rolls back to the savepoint and, without a
 * loop, commits.  Returns r, or the commit error. */
int db_write_begin(struct db *db);
int db_write_end(struct db *db, int r);
/* WRITE(expr): evaluates expr (an int result) inside db_write_begin/end,
 * with a local 'db' in scope. */
#define WRITE(body)                                                                                \
	({                                                                                         \
		int w_r_ = db_write_begin(db);                                                     \
		if (w_r_ >= 0)                                                                     \
			w_r_ = db_write_end(db, (body));                                           \
		w_r_;                                                                              \
	})
/* The same without the savepoint, for a body that runs at most one
 * modifying statement (and any reads): SQLite undoes a failed statement
 * by itself, and the two savepoint statements cost more than a small
 * UPDATE.  If SQLite rolled back the whole transaction (I/O error, disk
 * full), the batch is dropped as db_write_end does. */
int db_write1_begin(struct db *db);
int db_write1_end(struct db *db, int r);
#define WRITE1(body)                                                                               \
	({                                                                                         \
		int w_r_ = db_write1_begin(db);                                                    \
		if (w_r_ >= 0)                                                                     \
			w_r_ = db_write1_end(db, (body));                                          \
		w_r_;                                                                              \
	})

/* Helpers the entity files share (db-sqlite.c). */
/* Runs an UPDATE that must touch one row: KILN_ENOTFOUND if it touched none. */
int db_update_one(struct db *db, sqlite3_stmt *s, const char *what);
/* 1 if the fixed query sql (statement id) finds a row for key, 0 if not. */
int db_exists(struct db *db, int id, const char *sql, int64_t key);
/* After an UPDATE guarded by a state condition touched nothing: KILN_ENOTFOUND
 * if there is no such row, else state_err; db_errmsg says which. */
int db_guard_fail(struct db *db, int id, const char *sql, int64_t key, int state_err,
		  const char *what);
/* 1 if the build exists, 0 if not (db-sqlite-build.c). */
int db_build_exists(struct db *db, int64_t buildid);
/* db_buildset_complete inside an open write (db-sqlite-buildset.c; used when
 * a build request completes the last of its buildset).  KILN_ESTATE if the
 * buildset is already complete. */
int db_buildset_complete_locked(struct db *db, int64_t bsid, int results, double when);

/* After db_close: frees the struct once its handles are closed and no
 * thread-pool job (checkpoint, log compression) is pending (db-sqlite.c). */
void db_free_if_done(struct db *db);

/* Logs (db-sqlite-log.c) */
/* Writes every dirty tail chunk and counter (before a commit, or before a
 * listing of logs reads the table). */
int db_log_sync_all(struct db *db);
/* Forgets all in-memory tails (after a rollback: the table is the truth). */
void db_log_drop_all(struct db *db);
/* The empty in-memory tail of a log just added (db-sqlite-log.c). */
void db_log_tail_new(struct db *db, int64_t logid, char type);
/* Finishes a log inside an open write (used by db_master_recover). */
int db_log_finish_locked(struct db *db, int64_t logid);

/* Reading and searching a log's chunks, whichever backend reads the rows
 * (db-log-read.c): the backend inits, feeds each chunk row that the SQL of
 * db-sqlite-log.c's db_log_read / db_log_search selects, in its order, then
 * asks for the in-memory tail's part.  -EAGAIN from a tail step: a chunk of
 * the log closed since the init (only across turns, an asynchronous read):
 * init and read again. */
struct db_log_tail *db_log_tail_find(struct db *db, int64_t logid);
size_t db_log_count_lines(const char *p, size_t n);
struct db_log_chunk {
	int64_t first_line, last_line;
	bool compressed;
	const void *blob;
	size_t n;
};
struct db_log_read {
	int64_t logid, first, to; /* lines [first, to) */
	int64_t table_to;         /* rows hold the lines before it, the tail the rest */
	bool had_tail;
	int64_t tail_first;
	int64_t count; /* lines written to out */
	struct buf *out;
};
int db_log_read_init(struct db *db, struct db_log_read *rd, int64_t logid, int64_t first_line,
		     int64_t max_lines, struct buf *out);
/* 0, or < 0 with db's error set (-E2BIG: out is full, whole lines kept). */
int db_log_read_row(struct db *db, struct db_log_read *rd, const struct db_log_chunk *c);
int db_log_read_tail(struct db *db, struct db_log_read *rd);
struct db_log_search {
	int64_t logid;
	const char *needle; /* borrowed */
	size_t nlen;
	bool icase, backward, strip;
	int64_t from;
	uint64_t scanned, max_scan;
	int64_t table_to; /* the tail's first line, or INT64_MAX */
	bool had_tail;
	int64_t line, next; /* the answer: db_log_search's *ret_line, *ret_next */
};
int db_log_search_init(struct db *db, struct db_log_search *q, int64_t logid, char type,
		       const char *needle, size_t nlen, unsigned flags, int64_t from,
		       uint64_t max_scan);
/* Backward from inside the tail: the tail first.  1: settled (found). */
int db_log_search_head(struct db *db, struct db_log_search *q);
/* Are the rows wanted (else straight to db_log_search_tail)? */
static inline bool db_log_search_wants_rows(const struct db_log_search *q)
{
	return q->backward || q->from < q->table_to;
}
/* One row: 1 settled (found, or the scan cap: q->next), 0 go on, < 0. */
int db_log_search_row(struct db *db, struct db_log_search *q, const struct db_log_chunk *c);
/* Forward: the tail's lines last. */
int db_log_search_tail(struct db *db, struct db_log_search *q);

/* Rows read as text (SQLite's or PostgreSQL's), NULL for SQL NULL: an API
 * token's columns (db-sqlite-tokens.c's TOKEN_COLS), a push submission's
 * as the push API shows it (db-sqlite-push.c's PUSH_COLS). */
#define DB_TOKEN_COLS 8
void db_token_from_text(struct db_token *t, const char *const col[DB_TOKEN_COLS]);
#define DB_PUSH_COLS 17
json_t *db_push_row_from_text(const char *const col[DB_PUSH_COLS]);

/* A buildset's sourcestamps in the order they are stored (by codebase, so
 * their ids ascend in that order); malloc'd, the sourcestamps borrowed. */
const struct db_sourcestamp **db_buildset_ss_order(const struct db_buildset_new *bs);

/* Registers the SQL functions db_list's SQL uses (kiln_text) on db->h. */
int db_list_init_sql(struct db *db);

/* For tests: EXPLAIN QUERY PLAN of a listing or of any SQL, one line per
 * step (owned result). */
int db_list_explain(struct db *db, enum db_resource res, const struct db_query *q, char **ret_plan);
int db_sql_explain(struct db *db, const char *sql, char **ret_plan);

/* Result of sqlite3_changes for the last statement. */
static inline int db_changes(struct db *db)
{
	return sqlite3_changes(db->h);
}

/* Binding helpers: NULL text binds SQL NULL; 0 id binds NULL. */
int db_bind_text(sqlite3_stmt *s, int i, const char *v);
int db_bind_id(sqlite3_stmt *s, int i, int64_t id);
/* Steps a statement expected to finish (DONE); KILN_EDB on anything else. */
int db_step_done(struct db *db, sqlite3_stmt *s, const char *what);
/* Steps a query: 1 with a row, 0 when done, or db_fail(what). */
int db_step_row(struct db *db, sqlite3_stmt *s, const char *what);
/* Runs sql (a statement that returns no rows) with v bound to ?1: 0, or
 * KILN_EDB / db_fail(what). */
static inline int db_exec_int64(struct db *db, const char *sql, int64_t v, const char *what)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt_dynamic(db, sql);
	if (!s)
		return KILN_EDB;
	sqlite3_bind_int64(s, 1, v);
	return db_step_done(db, s, what);
}
/* Steps a one-number query ("SELECT count(*) ..."): *ret = its first
 * column, 0 when no row or NULL.  0, or db_fail(what). */
static inline int db_step_int64(struct db *db, sqlite3_stmt *s, const char *what, int64_t *ret)
{
	int r = db_step_row(db, s, what);
	if (r < 0)
		return r;
	*ret = r == 1 && sqlite3_column_type(s, 0) != SQLITE_NULL ? sqlite3_column_int64(s, 0) : 0;
	return 0;
}

/* Step s among its build's first KILN_ETA_MAX_STEPS (1000) started and
 * finished steps, the count only for a step numbered past that: the
 * numbers' SQL of both backends (db-sqlite-numbers.c, db-pg-numbers.c). */
#define SQL_NUMBERS_STEP_FINISHED                                                                  \
	"s.complete = 1 AND s.started_at IS NOT NULL AND s.complete_at IS NOT NULL "               \
	"AND (s.number < 1000 OR (SELECT COUNT(*) FROM steps s2 WHERE s2.buildid = s.buildid "     \
	"AND s2.number < s.number AND s2.complete = 1 AND s2.started_at IS NOT NULL "              \
	"AND s2.complete_at IS NOT NULL) < 1000) "

/* An artifact as db_artifact_get_async's object (NULL: text not UTF-8). */
json_t *db_artifact_json(const struct db_artifact *a);

/* A per-test history being walked, newest result first (db_test_history
 * on either backend: db-sqlite-tests.c). */
struct tests_rev;
struct db_test_walk {
	struct db_test_history h;
	struct tests_rev *revs;
	size_t nrevs, revs_alloc;
	bool streak; /* still inside the newest failure streak */
	int64_t streak_last_build;
};
void db_test_walk_init(struct db_test_walk *w);
void db_test_walk_row(struct db_test_walk *w, int64_t buildid, int64_t number, bool passed,
		      const char *rev);
/* The history into *ret (release it); w is empty again. */
void db_test_walk_finish(struct db_test_walk *w, struct db_test_history *ret);

/* db_request_complete with the buildset's results when it completes it
 * (RESULTS_NONE otherwise): db_request_complete_async's on SQLite. */
int db_request_complete_results(struct db *db, int64_t brid, int results, double when,
				int64_t *ret_bsid_done, int *ret_bs_results);

/* db_request_compatible_async's answer on SQLite: *ret (n lines, strings
 * owned) freed with db_request_lines_free. */
int db_request_compatible_lines(struct db *db, int64_t brid, size_t max,
				struct db_request_line **ret, size_t *ret_n);
int db_request_superseded_lines(struct db *db, int64_t builderid, int64_t bsid,
				struct db_request_line **ret, size_t *ret_n);
void db_request_lines_free(struct db_request_line *v, size_t n);
/* db_masters_reap_async's work on SQLite: *ret (names owned: free each
 * name, then *ret) of *ret_n. */
int db_buildset_patches(struct db *db, int64_t bsid, struct db_patch_data **ret, size_t *ret_n);
int db_masters_reap(struct db *db, int64_t self, double older_than, double now,
		    struct db_master_dead **ret, size_t *ret_n);

/* The phases of a retention pass (struct db_retention_pass's phase), in
 * their order on both backends (db-sqlite-retention.c, db-pg-retention.c). */
enum {
	RET_BUILDS_AGE,
	RET_BUILDS_COUNT,
	RET_LOGS,
	RET_TESTS,
	RET_NUMBERS,
	RET_CHANGES,
	RET_DONE,
};

#endif
