/*
 * Kiln's storage, behind one backend-neutral interface.  The schema follows
 * Buildbot's data model and its field names (builderid, buildrequestid,
 * state_string, ...), so the API can serve rows with Buildbot's shapes.
 * Backend today: SQLite (db-sqlite*.c, WAL, busy timeout); PostgreSQL later
 * behind the same functions.
 *
 * Threading: one struct db per process, used only from the libuv loop
 * thread it was opened on.  Writes are batched: the first write of a loop
 * turn opens a transaction, and a uv_check handle commits it after the turn
 * (or db_flush() commits at once), so writes that arrive together cost one
 * commit.  Reads always see every earlier write, committed or not.
 *
 * What runs on the loop thread: every SQLite statement (reads, writes, the
 * per-turn COMMIT writing its WAL frames), log reads and the zstd
 * decompression of the chunks they need.  What does not, with a loop:
 * - WAL checkpoints.  With a database file, the loop's connection does no
 *   auto-checkpoint; after a commit that leaves the WAL past ~1000 frames, a
 *   libuv thread-pool job checkpoints (PASSIVE, then TRUNCATE if the WAL
 *   file passed 64 MiB) on a connection of its own, one job at a time;
 *   db_close() waits for a running one.  The truncation is what bounds the
 *   WAL file under a steady stream of writes (db_wal_truncations()); while
 *   it runs, the loop's next write waits for it (at most 2 s).
 * - zstd compression of full log chunks: the chunk is written uncompressed
 *   at once (readable, counted), a thread-pool job compresses it (at most 4
 *   at a time, else the loop does), and a later batch swaps the frame in.
 *   A chunk whose swap never happened (db_close first, a crash) stays
 *   uncompressed, and reads the same.
 * Without a loop (tools, tests) both happen inline, as SQLite and the log
 * code do by default.
 *
 * Times are double seconds since the epoch (sub-second) in storage; db_list
 * renders them as integer seconds, as Buildbot's REST API does.
 *
 * Errors: negative errno or KILN_EDB; db_errmsg() holds the last detail.
 *
 * Adding a new migration: add src/db/migrations/NNNN-what.sql (next number)
 * and list it in src/db/meson.build (db_migrations); it is embedded in the
 * binary at build time.  Never edit an applied one.  Write it in PostgreSQL's
 * dialect too, as src/db/migrations/pg/NNNN-what.sql (db_migrations_pg;
 * test-pg-schema compares the two schemas).  docs/internals/db.md.
 */
#ifndef KILN_DB_H
#define KILN_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

struct buf;
struct db;

/* Buildbot's result codes */
enum db_results {
	RESULTS_NONE = -1,
	RESULTS_SUCCESS = 0,
	RESULTS_WARNINGS = 1,
	RESULTS_FAILURE = 2,
	RESULTS_SKIPPED = 3,
	RESULTS_EXCEPTION = 4,
	RESULTS_RETRY = 5,
	RESULTS_CANCELLED = 6,
};
const char *db_results_name(int results); /* "success", ... ; "not finished" for -1 */
/* The worse of two results by Buildbot's order (SKIPPED < SUCCESS < WARNINGS <
 * FAILURE < EXCEPTION < RETRY < CANCELLED); RESULTS_NONE counts as nothing. */
int db_results_worst(int a, int b);

/* Opens (creating if needed) the database at url, "sqlite:PATH" (relative
 * paths are taken from basedir) or "sqlite::memory:"; applies pending
 * migrations in one transaction.  loop may be NULL (tools, tests): then
 * each write call is its own transaction.  With a loop, a batch still open
 * keeps the loop running until its commit (one more turn at most). */
int db_open(uv_loop_t *loop, const char *url, const char *basedir, struct db **ret);
/* Detail of the last failed db_open() in this thread ("" if none): there is
 * no struct db to carry it. */
const char *db_open_errmsg(void);
/*
 * Asynchronous open (issue 14): url as db_open takes it, or a PostgreSQL
 * URL ("postgresql://..." or "postgres://...", libpq's form, migrations
 * applied on the server without blocking the loop).  ready(arg, r, db,
 * err) is called once on the loop, never from inside this call: r == 0
 * and db (the caller's, closed with db_close), or r < 0 with db NULL and
 * err saying why (borrowed).  Returns 0, or -EINVAL without a loop.
 *
 * On PostgreSQL only the asynchronous reads below work so far; the other
 * calls of this header are SQLite's (docs/internals/db-calls.md).
 */
typedef void (*db_ready_fn)(void *arg, int r, struct db *db, const char *err);
int db_open_async(uv_loop_t *loop, const char *url, const char *basedir, db_ready_fn ready,
		  void *arg);
/* Is url a PostgreSQL URL? */
bool db_url_is_postgresql(const char *url);
/* Does db run on PostgreSQL? */
bool db_is_postgresql(const struct db *db);
/*
 * Synchronous calls on PostgreSQL (issue 14).  Before a program serves
 * anything (a master's start-up and shut-down, the tools), a synchronous
 * call of this header that PostgreSQL implements runs the loop until the
 * server answers: db_open on a PostgreSQL URL, the upserts by name,
 * db_master_register, db_flush (waits for the writes' commit).  While
 * serving (on), such a call fails at once with -EWOULDBLOCK, naming
 * itself, instead of running the loop inside a callback; db_flush
 * returns 0 (the writes commit at the end of the turn).  Off by default;
 * no effect on SQLite.
 */
void db_set_serving(struct db *db, bool on);

/* PostgreSQL hands new rows' ids from reserves refilled ahead
 * (docs/SCALING.md): a burst that empties one makes the next add fail
 * with -EAGAIN.  A caller that adds steps in a loop asks first:
 * db_ids_wait returns 0 when the steps' and logs' reserves hold enough
 * for a step (always on SQLite, and when no refill can be sent: the add
 * then fails as it would), or 1 after queuing w, whose fn runs (on the
 * loop) once a reserve was refilled; it asks again then.  w is the
 * caller's (fn set); db_ids_unwait takes it out of the queue (NULL-safe,
 * also when not queued). */
struct db_ids_waiter {
	void (*fn)(struct db_ids_waiter *w);
	struct db_ids_waiter *next;
	bool queued;
};
int db_ids_wait(struct db *db, struct db_ids_waiter *w);
void db_ids_unwait(struct db *db, struct db_ids_waiter *w);

/* Commits pending writes and closes; NULL-safe.  Waits for a running
 * checkpoint job to finish with the file.  Closes its two uv handles (the
 * struct is freed in their close callbacks and the completions of its
 * thread-pool jobs): run
 * the loop until it has nothing left of the db, e.g. uv_run(loop,
 * UV_RUN_DEFAULT), before uv_loop_close. */
void db_close(struct db *db);
/* Commits the open batch now.  Returns 0 or an error (the batch is rolled back).
 * On PostgreSQL: see db_set_serving. */
int db_flush(struct db *db);
/* fn(arg, r, err) once the writes made so far are committed (r == 0) or
 * rolled back (r < 0, err why): an answer that acknowledges stored data
 * waits for it.  Called exactly once: on SQLite (and on PostgreSQL before
 * the master serves) before db_commit_then returns, after db_flush; on
 * PostgreSQL while serving, on the loop when the transaction holding them
 * is answered. */
typedef void (*db_commit_fn)(void *arg, int r, const char *err);
void db_commit_then(struct db *db, db_commit_fn fn, void *arg);
const char *db_errmsg(struct db *db);
int db_schema_version(struct db *db);
/* Called (on the loop) when a batch commit fails and is rolled back: by the
 * loop's check handle (no caller to return the error to), by db_close(),
 * and by a db_flush() call too (its caller also gets the error, but the
 * batch held other callers' writes of the turn: the master must know they
 * are gone).  errmsg is borrowed for the call. */
typedef void (*db_commit_error_fn)(struct db *db, int r, const char *errmsg, void *userdata);
void db_set_commit_error_cb(struct db *db, db_commit_error_fn fn, void *userdata);
/* Test hook, fault injection: with KILN_TEST_FAIL_COMMIT=N in the
 * environment when db_open() runs, the Nth batch commit after that open
 * (counting every commit of a batch or, without a loop, of a write call;
 * not the migrations) fails as a disk error would: the batch is rolled back
 * (in-memory log tails dropped and reloaded), and the error (KILN_EDB,
 * db_errmsg() "COMMIT: disk I/O error (injected ...)") goes where a real
 * one goes: to the commit error callback (whoever commits), and as
 * db_flush()'s return value when it is called.  Later commits succeed.
 * Unset, empty: no effect; anything but a positive integer: db_open()
 * fails with -EINVAL.  On PostgreSQL the Nth transaction of writes sent
 * fails before its COMMIT (the server raises "COMMIT: injected by
 * KILN_TEST_FAIL_COMMIT"), and goes the same way. */
/* A full disk (slice "faults"): true when the last failure was SQLite's
 * SQLITE_FULL or an ENOSPC under it (db_errmsg says "database or disk is
 * full").  db_refuse_writes(db, true) makes every later write fail at once,
 * before it touches the file ("database write failed: database or disk is
 * full", KILN_EDB); reads go on.  db_free_bytes() gives the space left to
 * an unprivileged user on the file system of the database file. */
bool db_disk_full(struct db *db);
void db_refuse_writes(struct db *db, bool on);
int db_free_bytes(struct db *db, uint64_t *ret_bytes);
/* Lowers the per-log byte cap (default KILN_MAX_LOG_BYTES), e.g. from config. */
void db_set_log_cap(struct db *db, uint64_t max_bytes);

/* --- masters, builders, workers ------------------------------------------------ */
/* Upserts by name; marks the master active with last_active = now. */
int db_master_register(struct db *db, const char *name, int64_t *ret_masterid);
/* active false at a clean stop; also refreshes last_active to when. */
int db_master_set_active(struct db *db, int64_t masterid, bool active, double when);
/* After a crash or a stop: finishes this master's unfinished builds with
 * results (RETRY after a crash, the caller decides) and state_string (NULL:
 * keep), their unfinished steps (same results) and logs (complete, tail
 * chunk compressed), unclaims its claimed, incomplete build requests so they
 * run again, and marks the workers connected to it as disconnected. */
int db_master_recover(struct db *db, int64_t masterid, int results, const char *state_string,
		      double when);
/* Several masters (issue 14): every other active master whose last_active
 * is before older_than is declared dead (active 0) and recovered as
 * db_master_recover does with RETRY and "interrupted: master NAME stopped
 * heartbeating", all in one statement, so that of two masters noticing at
 * once exactly one does it.  Answers with the masters this call declared
 * dead (name borrowed for the callback) and how many of their builds ended
 * and requests went back to the queue. */
struct db_master_dead {
	int64_t masterid;
	const char *name;
	int64_t builds, requests;
};
typedef void (*db_masters_dead_fn)(void *arg, int r, const struct db_master_dead *v, size_t n,
				   const char *err);
int db_masters_reap_async(struct db *db, int64_t self, double older_than, double now,
			  db_masters_dead_fn done, void *arg);
/* The lease of the services that run once across masters (issue 14: the
 * pollers and the timed schedulers), an object_state row "lease:NAME":
 * taken by masterid when nobody holds it, its holder's time is up, or
 * masterid holds it already (then renewed), for ttl seconds of the
 * database server's clock (the masters' clocks may differ).  done(arg, r,
 * held, err): held says whether masterid holds it now.  On SQLite one
 * master owns the file: always held.  release gives it up with this turn's
 * writes if masterid holds it then, a take in flight before it included (a
 * clean stop: another master takes it at its next beat). */
typedef void (*db_lease_fn)(void *arg, int r, bool held, const char *err);
int db_lease_async(struct db *db, const char *name, int64_t masterid, double ttl, db_lease_fn done,
		   void *arg);
int db_lease_release(struct db *db, const char *name, int64_t masterid);
/* Events across masters (issue 14, PostgreSQL's LISTEN/NOTIFY): db_notify
 * adds one line (no '\n', at most DB_NOTIFY_MAX_LINE bytes) for every
 * other master listening on the database, sent with this turn's writes and
 * delivered once they commit (so what a line names can be read then); past
 * KILN_PG_MAX_NOTIFY_BYTES in one turn, lines are dropped (counted in
 * db_notify_dropped, logged once a turn, and the other masters are sent
 * the line "lost").  db_listen: fn(arg, line) for each line another master
 * sent, from now on (again after a reconnection, which fn is told by the
 * line "lost": what was sent while this master was disconnected did not
 * come; the same line from another master: it dropped some).  On SQLite
 * both do nothing. */
#define DB_NOTIFY_MAX_LINE 1024
int db_notify(struct db *db, const char *line);
typedef void (*db_notify_fn)(void *arg, const char *line);
int db_listen(struct db *db, db_notify_fn fn, void *arg);
uint64_t db_notify_dropped(const struct db *db);

/* Upserts by name; tags_json is a JSON array text or NULL. */
int db_builder_ensure(struct db *db, const char *name, const char *description,
		      const char *tags_json, int64_t *ret_builderid);
int db_builder_set_masters(struct db *db, int64_t builderid, const int64_t *masterids, size_t n);

int db_worker_ensure(struct db *db, const char *name, int64_t *ret_workerid);
/* The three upserts by name above answered on the loop (issue 14: the
 * start-up and a reload on PostgreSQL): done(arg, 0, id, NULL) with the
 * row's id, new or existing; db_list_async's rules otherwise (a bad name
 * or tags refused at once).  description and tags_json: builders only. */
enum db_named { DB_NAMED_MASTER, DB_NAMED_BUILDER, DB_NAMED_WORKER };
typedef void (*db_id_fn)(void *arg, int r, int64_t id, const char *err);
int db_ensure_async(struct db *db, enum db_named kind, const char *name, const char *description,
		    const char *tags_json, db_id_fn done, void *arg);
/* info: JSON object (borrowed); stored as given. */
int db_worker_set_info(struct db *db, int64_t workerid, json_t *info);
int db_worker_set_connected(struct db *db, int64_t workerid, int64_t masterid /* 0 = none */);
int db_worker_set_paused(struct db *db, int64_t workerid, bool paused);
int db_worker_set_graceful(struct db *db, int64_t workerid, bool graceful);
/* Replaces the builders this worker is configured for on masterid. */
int db_worker_set_configured(struct db *db, int64_t workerid, int64_t masterid,
			     const int64_t *builderids, size_t n);
/* slice "uimisc": when the master last heard from the worker (Unix seconds;
 * "last_seen" in the workers' rows). */
int db_worker_set_last_seen(struct db *db, int64_t workerid, double when);
/* slice "uimisc": 1 and *ret_paused (its stored pause flag), 0 if no such worker. */
int db_worker_paused(struct db *db, int64_t workerid, bool *ret_paused);

/* --- buildsets and build requests --------------------------------------------- */
struct db_sourcestamp {
	const char *branch, *revision, *repository, *project, *codebase; /* borrowed; NULL ok */
};

struct db_buildset_new {
	const char *reason;            /* borrowed */
	const char *external_idstring; /* borrowed, may be NULL */
	const char *scheduler;         /* borrowed, may be NULL */
	json_t *properties;            /* borrowed: {"name": [value, "source"], ...} or NULL */
	const struct db_sourcestamp *sourcestamps;
	size_t nsourcestamps;
	int64_t parent_buildid; /* 0 = none */
	int priority;
	double submitted_at;
};

/* Adds a buildset with one build request per builder, atomically.
 * ret_brids (caller's array of n) receives the request ids in order.
 * The sourcestamps are stored in codebase order (see
 * db_buildset_sourcestamps); two with the same codebase are -EINVAL.
 * -EINVAL if n == 0 (the buildset could never complete). */
int db_buildset_add(struct db *db, const struct db_buildset_new *bs, const int64_t *builderids,
		    size_t n, int64_t *ret_bsid, int64_t *ret_brids);
int db_buildset_complete(struct db *db, int64_t bsid, int results, double when);
/* Properties of a buildset, as stored (new reference). */
int db_buildset_properties(struct db *db, int64_t bsid, json_t **ret);

struct db_request {
	int64_t buildrequestid, buildsetid, builderid;
	int priority;
	double submitted_at;
	bool claimed, complete;
	int results;
};

/* The next unclaimed, incomplete request of builderid: highest priority,
 * then oldest (from an index: cost does not grow with the queue).
 * Returns 1 and fills ret if there is one, 0 if none. */
int db_request_next(struct db *db, int64_t builderid, struct db_request *ret);
int db_request_get(struct db *db, int64_t brid, struct db_request *ret); /* KILN_ENOTFOUND */
/* Claims for masterid; -EBUSY if already claimed or complete. */
int db_request_claim(struct db *db, int64_t brid, int64_t masterid, double when);
int db_request_unclaim(struct db *db, int64_t brid);
/* db_request_next and db_request_claim in one (issue 14: the distributor
 * on PostgreSQL, where several masters claim from one queue): claims
 * builderid's best queued request for masterid and gives it (claimed set),
 * or req NULL when none is queued.  On PostgreSQL one statement, the row
 * locked with SKIP LOCKED: two masters never get the same request and
 * neither waits for the other.  db_list_async's rules otherwise. */
typedef void (*db_request_fn)(void *arg, int r, const struct db_request *req, const char *err);
int db_request_claim_next_async(struct db *db, int64_t builderid, int64_t masterid, double when,
				db_request_fn done, void *arg);
/* db_request_next answered on the loop (a latent worker's look at the
 * queue): req NULL when none is queued; not claimed. */
int db_request_next_async(struct db *db, int64_t builderid, db_request_fn done, void *arg);
/* Claims request brid for masterid if it is still queued (unclaimed,
 * incomplete): req is it, claimed; NULL when another master (or this one)
 * claimed or completed it first (slice "dispatch": the request next_build
 * chose).  On PostgreSQL a row being claimed elsewhere is passed over.
 * db_list_async's rules otherwise. */
int db_request_claim_id_async(struct db *db, int64_t brid, int64_t masterid, double when,
			      db_request_fn done, void *arg);
/* The head of builderid's queue for the Lua dispatch hooks (slice
 * "dispatch"): its first max unclaimed, incomplete requests in the queue's
 * order, each with its buildset's reason and properties (borrowed for the
 * callback; NULL when unreadable). */
struct db_request_head {
	struct db_request req;
	const char *reason;
	json_t *properties;
};
typedef void (*db_request_head_fn)(void *arg, int r, const struct db_request_head *v, size_t n,
				   const char *err);
int db_request_queue_head_async(struct db *db, int64_t builderid, size_t max,
				db_request_head_fn done, void *arg);
/* db_request_pending_summary of each of ids[0..n) that has queued requests
 * (prioritize_builders): done(arg, 0, ids, priorities, oldest, m, NULL)
 * in ids' order, the builders without any left out. */
typedef void (*db_summaries_fn)(void *arg, int r, const int64_t *ids, const int *priorities,
				const double *oldest, size_t n, const char *err);
int db_request_summaries_async(struct db *db, const int64_t *ids, size_t n, db_summaries_fn done,
			       void *arg);
/* A request and the line of its buildset's sourcestamp (the first, by
 * codebase), as collapse_requests compares them.  Strings are borrowed for
 * the callback; NULL where SQL NULL, and all NULL in a claim's answer. */
struct db_request_line {
	int64_t buildrequestid, buildsetid;
	const char *branch, *revision, *repository, *project, *codebase;
};
typedef void (*db_request_lines_fn)(void *arg, int r, const struct db_request_line *v, size_t n,
				    const char *err);
/* db_request_compatible answered on the loop, with the lines: v[0] is
 * brid's own (n is 0 when brid does not exist), v[1..n) the compatible
 * queued requests, ids ascending, at most max. */
int db_request_compatible_async(struct db *db, int64_t brid, size_t max, db_request_lines_fn done,
				void *arg);
/* db_request_superseded answered on the loop: v[0] is bsid's line (its
 * first sourcestamp's, buildrequestid 0; n is 0 when it has none), v[1..n)
 * the superseded requests (ids and buildsetids only), ids ascending. */
int db_request_superseded_async(struct db *db, int64_t builderid, int64_t bsid,
				db_request_lines_fn done, void *arg);
/* Claims for masterid, in one transaction, those of ids[0..n) that are
 * still queued (unclaimed, incomplete) and answers with them (ids and
 * buildsetids, in ids' order).  On PostgreSQL a row another master is
 * claiming is passed over (SKIP LOCKED), not waited for. */
int db_request_claim_many_async(struct db *db, const int64_t *ids, size_t n, int64_t masterid,
				double when, db_request_lines_fn done, void *arg);
/* Completes the request; when every request of its buildset is complete,
 * completes the buildset too (results: the worst) and sets *ret_bsid_done
 * to its id (else 0).  ret_bsid_done may be NULL. */
int db_request_complete(struct db *db, int64_t brid, int results, double when,
			int64_t *ret_bsid_done);
/* The same answered on the loop (issue 14): done(arg, 0, bsid_done, NULL)
 * (0: the buildset is not done yet), KILN_ESTATE if the request was
 * complete already, KILN_ENOTFOUND if there is none; db_list_async's rules otherwise.  On
 * PostgreSQL the buildset's row is locked first, so that of two masters completing its last two
 * requests at once, the later sees the other's and exactly one completes the buildset (and gets
 * bsid_done).  bs_results: the buildset's results (the worst of its requests') with bsid_done,
 * else RESULTS_NONE. */
typedef void (*db_bsid_fn)(void *arg, int r, int64_t bsid_done, int bs_results, const char *err);
int db_request_complete_async(struct db *db, int64_t brid, int results, double when,
			      db_bsid_fn done, void *arg);
/* Builder ids that have at least one unclaimed incomplete request. */
int db_request_pending_builders(struct db *db, int64_t **ret_ids, size_t *ret_n);
/* The same answered on the loop (issue 14: the distributor's first read):
 * done(arg, 0, ids, n, NULL), ids ascending and borrowed for the call;
 * db_list_async's rules otherwise. */
typedef void (*db_ids_fn)(void *arg, int r, const int64_t *ids, size_t n, const char *err);
int db_request_pending_builders_async(struct db *db, db_ids_fn done, void *arg);
/* The queued requests (unclaimed, incomplete) of each builder that has
 * any, counted up to cap: done(arg, 0, builderids, counts, n, NULL),
 * ascending by builder (slice "operator": /metrics).  db_list_async's
 * rules otherwise. */
typedef void (*db_counts_fn)(void *arg, int r, const int64_t *ids, const int64_t *counts, size_t n,
			     const char *err);
int db_request_queued_counts_async(struct db *db, int64_t cap, db_counts_fn done, void *arg);
/* The same read at once on SQLite (*ret_ids, *ret_counts malloc'd). */
int db_request_queued_counts(struct db *db, int64_t cap, int64_t **ret_ids, int64_t **ret_counts,
			     size_t *ret_n);
/* slice "dispatch": the first max unclaimed, incomplete requests of
 * builderid in db_request_next's order (one index range, no sort) into
 * ret[0..*ret_n) (the caller's array of max). */
int db_request_queued(struct db *db, int64_t builderid, size_t max, struct db_request *ret,
		      size_t *ret_n);
/* slice "dispatch": the highest priority and the oldest submitted_at among
 * builderid's unclaimed, incomplete requests: 1, or 0 when it has none. */
int db_request_pending_summary(struct db *db, int64_t builderid, int *ret_priority,
			       double *ret_oldest);

/* --- builds, steps, logs --------------------------------------------------------- */
/* number = previous highest number of the builder + 1.  On PostgreSQL only
 * without ret_number (NULL): the id is reserved (pg-ids.h), the number is
 * the server's, and the row joins the turn's write (a pushed build,
 * db_push_atomic); -EAGAIN when no build id is ready. */
int db_build_add(struct db *db, int64_t builderid, int64_t brid, int64_t workerid, int64_t masterid,
		 double started_at, int64_t *ret_buildid, int64_t *ret_number);
/* The same answered on the loop (issue 14): on PostgreSQL the number comes
 * from the server (builds of one builder may start on several masters).
 * done(arg, 0, buildid, number, NULL), or an error; db_list_async's rules
 * otherwise.  On PostgreSQL only a build added this way takes steps
 * (db_step_begin), until its finish. */
typedef void (*db_build_added_fn)(void *arg, int r, int64_t buildid, int64_t number,
				  const char *err);
int db_build_add_async(struct db *db, int64_t builderid, int64_t brid, int64_t workerid,
		       int64_t masterid, double started_at, db_build_added_fn done, void *arg);
int db_build_set_state(struct db *db, int64_t buildid, const char *state_string);
int db_build_finish(struct db *db, int64_t buildid, int results, const char *state_string,
		    double when);
/* value: any JSON (borrowed); stored as properties[name] = [value, source]. */
int db_build_set_property(struct db *db, int64_t buildid, const char *name, json_t *value,
			  const char *source);

/* Step names are unique within a build: a repeated name gets "_1", "_2"... */
int db_step_add(struct db *db, int64_t buildid, const char *name, int64_t *ret_stepid,
		int64_t *ret_number);
int db_step_start(struct db *db, int64_t stepid, double when);
/* db_step_add and db_step_start with db_step_set_state in one statement: a
 * step as it starts (each step of a build costs its writes, so one). */
int db_step_begin(struct db *db, int64_t buildid, const char *name, double when,
		  const char *state_string, int64_t *ret_stepid, int64_t *ret_number);
int db_step_set_state(struct db *db, int64_t stepid, const char *state_string);
int db_step_finish(struct db *db, int64_t stepid, int results, const char *state_string,
		   bool hidden, double when);
/* Appends {"name": name, "url": url} to the step's urls. */
int db_step_add_url(struct db *db, int64_t stepid, const char *name, const char *url);

/* type: 's' stdio (each line starts with a stream char o/e/h), 't' text, 'h' html.
 * slug = name with characters other than [A-Za-z0-9_-] replaced by '_'.
 * -EEXIST if the step already has a log of that name (or slug). */
int db_log_add(struct db *db, int64_t stepid, const char *name, char type, int64_t *ret_logid);
/* Appends text, which must be whole lines each ending in '\n' (a last line
 * without one is completed with '\n').  Stored in line-aligned chunks of
 * about KILN_LOG_CHUNK_BYTES, zstd-compressed once full; readable at once,
 * durable once the batch commits.  Memory per open log is one chunk.  Past
 * the log cap (db_set_log_cap): one marker line ("h[log truncated: ...]" for
 * 's' logs, no prefix otherwise), then further text is dropped (returns 0).
 * Returns KILN_ESTATE if finished, KILN_ENOTFOUND if no such log. */
int db_log_append(struct db *db, int64_t logid, const char *text, size_t len);
/* Writes the tail chunk and marks the log complete; 0 if already complete.
 * The tail is compressed unless shorter than KILN_LOG_RAW_TAIL_BYTES. */
int db_log_finish(struct db *db, int64_t logid);
struct db_log_info {
	int64_t logid, stepid, num_lines;
	char type;
	bool complete;
};
int db_log_get(struct db *db, int64_t logid, struct db_log_info *ret);
/* Appends lines [first_line, first_line + max_lines) to out (whole lines,
 * each with its '\n'), reading only the chunks that hold them.  *ret_count
 * = lines written (fewer at the end of the log; 0 past it).  -E2BIG if out's
 * cap is reached (out then holds whole lines up to the cap, *ret_count set). */
int db_log_read(struct db *db, int64_t logid, int64_t first_line, int64_t max_lines,
		struct buf *out, int64_t *ret_count);
/* Finds the first line at or after from (DB_LOG_SEARCH_BACKWARD: the last
 * line at or before from) whose text contains needle (nlen bytes, no '\n';
 * DB_LOG_SEARCH_ICASE folds ASCII letters; an 's' log's stream characters
 * are not part of the text).  Reads the log a chunk at a time and stops
 * before the next chunk once max_scan bytes were scanned: then *ret_line =
 * -1 and *ret_next = the line to search on from (same direction).  Found:
 * *ret_line = its line, *ret_next = -1; the whole range without a match:
 * both -1.  -EINVAL (empty needle, newline, from < 0), KILN_ENOTFOUND. */
enum db_log_search_flags {
	DB_LOG_SEARCH_ICASE = 1 << 0,
	DB_LOG_SEARCH_BACKWARD = 1 << 1,
};
int db_log_search(struct db *db, int64_t logid, const char *needle, size_t nlen, unsigned flags,
		  int64_t from, uint64_t max_scan, int64_t *ret_line, int64_t *ret_next);
/* The same three reads answered on the loop (issue 14; db_list_async's
 * rules: a bad argument is refused at once, the answer comes on a later turn
 * on either backend, -ECANCELED at db_close).  Through done: KILN_ENOTFOUND
 * (no such log), a database error, or 0 with the answer; for a read also
 * -E2BIG with the whole lines that fit in max_bytes (as db_log_read's cap).
 * info and text are borrowed for the call.  A log being written keeps its
 * newest lines in this master's memory: they are read when the answer comes. */
typedef void (*db_log_info_fn)(void *arg, int r, const struct db_log_info *info, const char *err);
int db_log_get_async(struct db *db, int64_t logid, db_log_info_fn done, void *arg);
typedef void (*db_log_lines_fn)(void *arg, int r, const char *text, size_t len, int64_t count,
				const char *err);
int db_log_read_async(struct db *db, int64_t logid, int64_t first_line, int64_t max_lines,
		      size_t max_bytes, db_log_lines_fn done, void *arg);
typedef void (*db_log_found_fn)(void *arg, int r, int64_t line, int64_t next, const char *err);
int db_log_search_async(struct db *db, int64_t logid, const char *needle, size_t nlen,
			unsigned flags, int64_t from, uint64_t max_scan, db_log_found_fn done,
			void *arg);

/* --- generic listing for the REST API ---------------------------------------------- */
enum db_resource {
	DB_MASTERS,
	DB_BUILDERS,
	DB_WORKERS,
	DB_BUILDSETS,
	DB_BUILDREQUESTS,
	DB_BUILDS,
	DB_STEPS,
	DB_LOGS,
	DB_SOURCESTAMPS,
	DB_CHANGES,          /* changes section below */
	DB_TEST_RESULT_SETS, /* test results section below */
	DB_TEST_RESULTS,
	DB_USERS, /* users section below (slice "users") */
};

enum db_op {
	DB_OP_EQ,
	DB_OP_NE,
	DB_OP_LT,
	DB_OP_LE,
	DB_OP_GT,
	DB_OP_GE,
	DB_OP_IN,
	DB_OP_NOTIN,
	DB_OP_CONTAINS
};

struct db_filter {
	const char *field; /* a Buildbot field name of the resource */
	enum db_op op;
	const char *const *values; /* textual values, converted per the field's type
				      (booleans accept true/false/1/0) */
	size_t nvalues;            /* EQ with several values = IN */
};

struct db_query {
	const struct db_filter *filters;
	size_t nfilters;
	const char *const *order; /* field or "-field" (descending); default: id ascending */
	size_t norder;
	int64_t limit; /* < 0: none */
	int64_t offset;
};

/* Lists rows of res matching q as a JSON array of objects with Buildbot's
 * field names and types, timestamps as integer seconds, NULLs as null.
 * Fields assembled from other tables (workers' configured_on/connected_to,
 * builders' masterids, buildsets' sourcestamps) are included.  builds'
 * "properties" holds every stored property (Buildbot shows {} unless
 * ?property= asks: the API trims it); buildrequests' "properties" is null.
 * *ret_total (may be NULL) = matching rows before limit/offset: pass NULL
 * unless needed, the count visits every matching row.
 * Filter-only fields (accepted in filters, not rendered): workers "builderid"
 * and "masterid" (configured on), builders "masterid" (EQ/IN only).
 * Unknown field in a filter or order: KILN_EPARSE with db_errmsg() naming
 * it; a value of the wrong type, a wrong number of values, an operator the
 * field does not support, ordering by a JSON field: -EINVAL (db_errmsg says). */
int db_list(struct db *db, enum db_resource res, const struct db_query *q, json_t **ret_items,
	    int64_t *ret_total);
/* db_list, but the fields named in skip (NULL-terminated; NULL: none) are
 * rendered as null without being selected, read or parsed: for a caller that
 * replaces their value anyway (the API's builds "properties").  The key keeps
 * its place, so every item still has its keys in sorted order. */
int db_list_skip(struct db *db, enum db_resource res, const struct db_query *q,
		 const char *const *skip, json_t **ret_items, int64_t *ret_total);
/*
 * The listings above, answered on the loop (issue 14): the way the API
 * reads on either backend.  done(arg, r, items, total, err) is called once,
 * never from inside the call: r == 0 with items (owned by the callback:
 * json_decref) and total (want_total; else -1), or r < 0 with err.  A query
 * refused before it runs (an unknown field, a bad value: the errors the
 * synchronous call gives) is returned at once with db_errmsg() saying why,
 * and done is never called.  db_list_ids_async's items are the ids (a JSON
 * array of integers).  Answers still to come when db_close() runs get
 * -ECANCELED.
 */
/* Would db_list take flt on res?  0, or the error a listing with it gives
 * (KILN_EPARSE for an unknown field, -EINVAL for a value or operator the
 * field does not take).  Pure: no database. */
int db_filter_check(enum db_resource res, const struct db_filter *flt);
typedef void (*db_list_fn)(void *arg, int r, json_t *items, int64_t total, const char *err);
/* For tests, on SQLite: db_async_hold(db, true) keeps the answers waiting
 * (false lets them go on the next turn); db_async_step runs the ones
 * waiting now (not those they queue in turn): false if there were none.
 * A test looks at the states between a request and its answer this way. */
void db_async_hold(struct db *db, bool hold);
bool db_async_step(struct db *db);
int db_list_async(struct db *db, enum db_resource res, const struct db_query *q,
		  const char *const *skip, bool want_total, db_list_fn done, void *arg);
int db_list_ids_async(struct db *db, enum db_resource res, const struct db_query *q,
		      db_list_fn done, void *arg);
int db_list_rows_async(struct db *db, enum db_resource res, const int64_t *ids, size_t n,
		       const char *const *skip, db_list_fn done, void *arg);
int db_list_last_builds_async(struct db *db, const struct db_query *q, const char *const *skip,
			      db_list_fn done, void *arg);

/* A collection read in pieces (the API streams big answers this way): the
 * ids first, then the rows a few at a time by id, so no piece re-walks what
 * came before it.  db_list_ids: the ids of the rows of res matching q (its
 * filters, order, offset and limit, which must be >= 0: it bounds *ret_n),
 * in q's order, into *ret_ids (malloc'd; NULL when none).  Same errors as
 * db_list. */
int db_list_ids(struct db *db, enum db_resource res, const struct db_query *q, int64_t **ret_ids,
		size_t *ret_n);
/* The rows of res with the ids ids[0..n) (n <= DB_LIST_ROWS_MAX), in that
 * order and rendered as db_list_skip renders them; a row gone since its id
 * was read is left out.  -EINVAL past DB_LIST_ROWS_MAX. */
#define DB_LIST_ROWS_MAX 256
int db_list_rows(struct db *db, enum db_resource res, const int64_t *ids, size_t n,
		 const char *const *skip, json_t **ret_items);
/* The API's lastbuilds: for each builder of the page q->limit/q->offset of
 * builders by id, its highest-numbered build matching q's builds filters
 * (builders without one are left out), rendered as db_list_skip renders
 * builds, in builder id order, in one statement.  Same errors as db_list. */
int db_list_last_builds(struct db *db, const struct db_query *q, const char *const *skip,
			json_t **ret_items);
/* True if field is a listable field of res (for API validation). */
bool db_field_known(enum db_resource res, const char *field);

/* ==== changes, users, object state (db-sqlite-changes.c) ============================ */
/* Who a change names, for the users tables: attr_type is the source's kind
 * of identity ("git", "hg", "svn", "github", ... or "who" when unknown),
 * who the string as the source gave it; full_name and email as parsed from
 * "Full Name <email>" (NULL when absent).  All borrowed. */
struct db_user_ident {
	const char *attr_type, *who, *full_name, *email;
};

struct db_change_new {
	const char *author, *committer, *comments; /* borrowed; NULL ok */
	const char *branch, *revision, *revlink, *category;
	const char *repository, *codebase, *project; /* NULL = "" */
	const char *const *files;                    /* borrowed */
	size_t nfiles;
	json_t *properties; /* borrowed: {"name": [value, "source"]} or NULL */
	double when_timestamp;
	const struct db_user_ident *user; /* the author's identity, or NULL */
};

/* Stores a change with its own sourcestamp (branch, revision, repository,
 * project, codebase) and its parent (the latest earlier change of the same
 * repository, project, codebase and branch), matches or creates the user
 * (by identity, then by email) and links it.  One savepoint: all or nothing.
 * -EINVAL if properties is not an object. */
int db_change_add(struct db *db, const struct db_change_new *c, int64_t *ret_changeid,
		  int64_t *ret_sourcestampid);
/* Links a buildset to the changes it builds (the scheduler calls this right
 * after db_buildset_add).  Builds of the buildset then list these changes
 * (/builds/N/changes) and get a "blamelist" property ([authors], "Build"),
 * the sorted distinct authors, set when the build row is added.
 * KILN_ENOTFOUND if the buildset or a change does not exist. */
int db_buildset_add_changes(struct db *db, int64_t bsid, const int64_t *changeids, size_t n);
/* The distinct authors of the changes a build's buildset builds, sorted
 * (a JSON array of strings, new reference); [] when none. */
int db_build_blamelist(struct db *db, int64_t buildid, json_t **ret);
/* The user id a change was matched to: 1 and *ret_userid, 0 if none. */
int db_change_user(struct db *db, int64_t changeid, int64_t *ret_userid);

/* Object state: small JSON documents by name (pollers' last-seen revisions,
 * schedulers' timers), kept across restarts.  get: 1 and *ret (new
 * reference) if stored, 0 if not.  set: replaces (value borrowed). */
int db_state_get(struct db *db, const char *name, json_t **ret);
int db_state_set(struct db *db, const char *name, json_t *value);
/* db_state_get answered on the loop: done(arg, r, value, err) with r 1 and
 * value (borrowed for the call) if stored, 0 if not, or an error. */
typedef void (*db_state_fn)(void *arg, int r, json_t *value, const char *err);
int db_state_get_async(struct db *db, const char *name, db_state_fn done, void *arg);
/* ==== end of changes, users, object state =========================================== */

/* ==== schedulers and queue (db-sqlite-sched.c) ====================================== */
/* A try patch: applied with `patch -pLEVEL` in SUBDIR (relative to the
 * build's workdir; NULL = the workdir) after checking out the revision. */
struct db_patch {
	int level;
	const char *body; /* borrowed, len bytes */
	size_t len;
	const char *subdir, *author, *comment; /* borrowed; NULL ok */
	const char *codebase;                  /* borrowed; NULL is "" */
};
/* Stores a patch and attaches it to bsid's sourcestamp of p->codebase
 * (a scheduler with a codebases map adds the others, unpatched);
 * KILN_ENOTFOUND when bsid has none of that codebase. */
int db_buildset_set_patch(struct db *db, int64_t bsid, const struct db_patch *p);
/* The patch of bsid's sourcestamp of codebase (NULL: any of them): 1 and
 * *ret (ret->body: owned copy, NUL-terminated, len bytes; subdir owned or
 * NULL), 0 if it has none. */
struct db_patch_data {
	int level;
	char *body;
	size_t len;
	char *subdir;
	char *codebase; /* owned; set by db_buildset_patches_async only */
};
int db_buildset_patch(struct db *db, int64_t bsid, const char *codebase, struct db_patch_data *ret);
/* Every patch of a buildset (one per codebase that has one, by codebase),
 * answered on the loop (a try build reads them as it starts): v[0..n)
 * and what they hold are handed to the callback, which frees them
 * (db_patch_data_release each, then free(v)); v NULL when r < 0. */
typedef void (*db_patches_fn)(void *arg, int r, struct db_patch_data *v, size_t n, const char *err);
int db_buildset_patches_async(struct db *db, int64_t bsid, db_patches_fn done, void *arg);
void db_patch_data_release(struct db_patch_data *p);

/* A buildset with its first sourcestamp (owned strings, NULL when absent). */
struct db_buildset_info {
	int64_t bsid, parent_buildid, patchid;
	char *scheduler, *reason;
	bool complete;
	int results; /* RESULTS_NONE until complete */
	size_t nsourcestamps;
	size_t npatches; /* sourcestamps with a patch (a try build's) */
	char *branch, *revision, *repository, *project, *codebase;
};
int db_buildset_get(struct db *db, int64_t bsid, struct db_buildset_info *ret); /* KILN_ENOTFOUND */
void db_buildset_info_release(struct db_buildset_info *bi);
/* The worst results so far of bsid's completed requests (RESULTS_NONE if none). */
int db_buildset_results_so_far(struct db *db, int64_t bsid, int *ret);

/* Queued (unclaimed, incomplete) requests of brid's builder, other than
 * brid, that may share its build: both buildsets have one sourcestamp, no
 * patch, and the same codebase, repository, project and branch.  Ids
 * ascending, at most max.  *ret_ids owned (NULL when none). */
int db_request_compatible(struct db *db, int64_t brid, size_t max, int64_t **ret_ids,
			  size_t *ret_n);
/* brid is built by buildid (collapsed into it); NULL-able link for the API. */
int db_request_set_collapsed(struct db *db, int64_t brid, int64_t buildid);
/* Queued requests of builderid from buildsets older than bsid whose single
 * sourcestamp has bsid's codebase, repository, project and branch (no patch). */
int db_request_superseded(struct db *db, int64_t builderid, int64_t bsid, int64_t **ret_ids,
			  size_t *ret_n);
/* ==== end of schedulers and queue =================================================== */

/* ==== several codebases per buildset (db-sqlite-buildset.c) ========================= */
/* Every sourcestamp of buildset bsid, one per codebase, ordered by codebase
 * (Buildbot's buildset "sourcestamps"; db_buildset_get's first sourcestamp
 * is the first of these).  *ret is one allocation holding the array and
 * its strings: free(*ret) releases all; NULL when *ret_n is 0.  Fields are
 * never NULL except branch and revision (NULL when unset).
 * KILN_ENOTFOUND if there is no such buildset. */
int db_buildset_sourcestamps(struct db *db, int64_t bsid, struct db_sourcestamp **ret,
			     size_t *ret_n);
/* What a build reads of its buildset as it starts (issue 14: a build's
 * start answered on the loop, on either backend): the buildset with its
 * first sourcestamp (db_buildset_get's), every sourcestamp
 * (db_buildset_sourcestamps'), its properties as stored
 * (db_buildset_properties') and the sorted distinct authors of its changes
 * (db_build_blamelist's for a build of it).  done(arg, 0, in, NULL): in is
 * borrowed for the call; the callback may take a field (setting it NULL,
 * or ss with nss 0, bs's strings through TAKE_PTR).  KILN_ENOTFOUND if
 * there is no such buildset; db_list_async's rules otherwise. */
struct db_build_inputs {
	struct db_buildset_info bs;
	struct db_sourcestamp *ss; /* db_buildset_sourcestamps' one allocation */
	size_t nss;
	json_t *props;     /* object */
	json_t *blamelist; /* array of strings */
};
typedef void (*db_build_inputs_fn)(void *arg, int r, struct db_build_inputs *in, const char *err);
int db_build_inputs_async(struct db *db, int64_t bsid, db_build_inputs_fn done, void *arg);
void db_build_inputs_release(struct db_build_inputs *in);
/* The sorted distinct authors of the changes buildset bsid builds ([] when
 * none; new reference). */
int db_buildset_blamelist(struct db *db, int64_t bsid, json_t **ret);
/* The sourcestamp of codebase in ss[0..n) (NULL codebase = ""), or NULL. */
const struct db_sourcestamp *db_sourcestamp_find(const struct db_sourcestamp *ss, size_t n,
						 const char *codebase);
/* ==== end of several codebases per buildset ========================================= */
/* ==== test results (db-sqlite-tests.c) ============================================== */
/* Buildbot's test result sets and results (3.7's data model).  A `test`
 * step adds a set, adds its results in batches as the report is parsed,
 * then completes it with the counts.  Listed through db_list
 * (DB_TEST_RESULT_SETS filtered by builderid, buildid, stepid, complete;
 * DB_TEST_RESULTS by test_result_setid, test_name, results...). */
struct db_test_result_set_new {
	int64_t builderid, buildid, stepid;
	const char *description;           /* borrowed; NULL ok */
	const char *category, *value_unit; /* borrowed; NULL = "pass_fail", "boolean" */
};
/* KILN_ENOTFOUND if the step is not stepid of buildid of builderid. */
int db_test_result_set_add(struct db *db, const struct db_test_result_set_new *s,
			   int64_t *ret_setid);

struct db_test_result {
	const char *test_name;      /* borrowed; NULL ok when test_code_path is set */
	const char *test_code_path; /* borrowed; NULL ok */
	int64_t line;               /* <= 0: none */
	int64_t duration_ns;        /* < 0: none */
	const char *value;          /* borrowed; NULL: from results ("1", "0", "skipped") */
	int results;                /* RESULTS_SUCCESS, RESULTS_FAILURE or RESULTS_SKIPPED */
	const char *message;        /* borrowed; NULL or "": none */
};
/* Adds n results to an incomplete set in one write (inside the loop
 * turn's batch), names and code paths stored once per builder.
 * KILN_ENOTFOUND: no such set; KILN_ESTATE: the set is complete; -EINVAL:
 * a result with neither name nor code path. */
int db_test_results_add(struct db *db, int64_t setid, const struct db_test_result *r, size_t n);
/* Marks the set complete with its counts.  KILN_ESTATE if already complete. */
int db_test_result_set_complete(struct db *db, int64_t setid, int64_t passed, int64_t failed,
				int64_t skipped);

/* A test's history on a builder (a Kiln extension), from its newest
 * KILN_TEST_HISTORY_MAX results by build number.  Skipped results do not
 * count.  0 in an id/number field: none. */
struct db_test_history {
	int64_t results_seen; /* results read (passed or failed) */
	int last_results;     /* of the newest one; RESULTS_NONE if none */
	int64_t last_buildid, last_number;
	int64_t last_passing_buildid, last_passing_number;
	/* the oldest build of the current failure streak (when the newest failed) */
	int64_t first_failing_buildid, first_failing_number;
	int64_t failing_builds; /* builds in that streak */
	bool flaky;             /* passed and failed on the same revision */
	char **flaky_revisions; /* owned, at most 10 */
	size_t nflaky_revisions;
};
/* 0 and *ret (release it) even when the test was never seen (results_seen 0). */
int db_test_history(struct db *db, int64_t builderid, const char *test_name,
		    struct db_test_history *ret);
void db_test_history_release(struct db_test_history *h);
/* The same, answered on the loop (issue 14; db_list_async's rules): h is
 * borrowed for the call (r == 0), NULL otherwise. */
typedef void (*db_test_history_fn)(void *arg, int r, const struct db_test_history *h,
				   const char *err);
int db_test_history_async(struct db *db, int64_t builderid, const char *test_name,
			  db_test_history_fn done, void *arg);
/* ==== end of test results =========================================================== */
/* ==== numbers over time (db-sqlite-numbers.c) ======================================= */
/* Named numbers a build records (build_duration, step_duration:NAME,
 * warnings, ...), kept as one series per builder and name.  Schema:
 * migrations/0005-numbers.sql. */

/* Records value for (builderid, name) in buildid (stepid 0: the whole
 * build), recorded at when.  Batched like every write.  -EINVAL if name is
 * empty or value is not finite; KILN_ENOTFOUND if the build does not exist
 * or is not builderid's. */
int db_number_record(struct db *db, int64_t builderid, int64_t buildid, int64_t stepid,
		     const char *name, double value, double when);
/* The latest value of the series recorded in a build before buildid (by
 * build id, i.e. by build number): 1 and *ret_value, *ret_buildid; 0 if none. */
int db_number_previous(struct db *db, int64_t builderid, const char *name, int64_t buildid,
		       double *ret_value, int64_t *ret_buildid);
/* A page of the series, newest build first (within a build: newest row
 * first), or oldest first (by build number) with oldest_first: a JSON array (new reference) of
 * {"buildid", "number" (the build's), "stepid" (or null), "value", "recorded_at" (seconds, float),
 * "revision" (the build's first sourcestamp's, or null), "changeids" ([...] the changes its
 * buildset builds)}.  limit < 0: none.  *ret_total (may be NULL): rows in the whole series. */
int db_numbers_series(struct db *db, int64_t builderid, const char *name, bool oldest_first,
		      int64_t limit, int64_t offset, json_t **ret_items, int64_t *ret_total);
/* The same two reads answered on the loop (issue 14; db_list_async's
 * rules): items the array above, total the count. */
int db_numbers_series_async(struct db *db, int64_t builderid, const char *name, bool oldest_first,
			    int64_t limit, int64_t offset, db_list_fn done, void *arg);
int db_numbers_names_async(struct db *db, int64_t builderid, int64_t limit, int64_t offset,
			   db_list_fn done, void *arg);
/* The names recorded for builderid, sorted: a JSON array of strings (new
 * reference), at most limit (< 0: all) after offset; *ret_total (may be
 * NULL): how many names in all. */
int db_numbers_names(struct db *db, int64_t builderid, int64_t limit, int64_t offset,
		     json_t **ret_items, int64_t *ret_total);

/* Durations for the ETA: the last max successful (SUCCESS or WARNINGS)
 * finished builds of builderid among its last KILN_ETA_SCAN_BUILDS
 * finished ones, newest first.  ret_ids and ret_durations
 * are the caller's arrays of max; *ret_n = how many were filled. */
int db_builds_recent_success(struct db *db, int64_t builderid, size_t max, int64_t *ret_ids,
			     double *ret_durations, size_t *ret_n);
/* One finished step's duration (db_steps_durations). */
struct db_step_duration {
	int64_t stepid;
	char *name; /* owned */
	double duration;
};
/* The finished steps of buildid that started, in step order: *ret (owned
 * array, free with db_step_durations_free) of *ret_n (at most max; more
 * are left out). */
int db_steps_durations(struct db *db, int64_t buildid, size_t max, struct db_step_duration **ret,
		       size_t *ret_n);
void db_step_durations_free(struct db_step_duration *d, size_t n);
/* Both of the above for the ETA medians, answered on the loop (issue 14):
 * the durations of db_builds_recent_success(builderid, KILN_ETA_SAMPLES),
 * newest first, and the db_steps_durations (KILN_ETA_MAX_STEPS each) of
 * those builds, one build after the other.  Borrowed for the callback. */
struct db_eta_samples {
	const double *durations;
	size_t nbuilds;
	const struct db_step_duration *steps;
	size_t nsteps;
};
typedef void (*db_eta_fn)(void *arg, int r, const struct db_eta_samples *s, const char *err);
int db_eta_samples_async(struct db *db, int64_t builderid, db_eta_fn done, void *arg);
/* A build's builder, number, start, end (0 while running; float seconds) and
 * results (RESULTS_NONE while running).  KILN_ENOTFOUND if none. */
struct db_build_times {
	int64_t builderid, number;
	double started_at, complete_at;
	int results;
};
int db_build_times(struct db *db, int64_t buildid, struct db_build_times *ret);
/* Start times of builderid's running builds, at most max (the caller's
 * array), oldest first; *ret_n = how many. */
int db_builds_running_starts(struct db *db, int64_t builderid, size_t max, double *ret_starts,
			     size_t *ret_n);
/* How many unclaimed, incomplete requests of builderid come before brid in
 * the queue's order (priority, then age, then id): 1 and *ret_pos, or 0 if
 * brid is not such a request. */
int db_request_queue_position(struct db *db, int64_t brid, int64_t *ret_builderid,
			      int64_t *ret_pos);
/* The same reads answered on the loop (issue 14; db_list_async's rules,
 * db-numbers-async.c).  db_number_previous_async: done(arg, 1, value,
 * old_buildid, NULL), or 0 when there is none.  db_build_times_async:
 * done(arg, 0, bt, blamelist, NULL) with blamelist (the build's
 * db_build_blamelist, borrowed) only when asked for, or KILN_ENOTFOUND.
 * db_steps_durations_async: d (borrowed) of n. */
typedef void (*db_number_prev_fn)(void *arg, int r, double value, int64_t old_buildid,
				  const char *err);
int db_number_previous_async(struct db *db, int64_t builderid, const char *name, int64_t buildid,
			     db_number_prev_fn done, void *arg);
typedef void (*db_build_times_fn)(void *arg, int r, const struct db_build_times *bt,
				  json_t *blamelist, const char *err);
int db_build_times_async(struct db *db, int64_t buildid, bool blamelist, db_build_times_fn done,
			 void *arg);
typedef void (*db_step_durations_fn)(void *arg, int r, const struct db_step_duration *d, size_t n,
				     const char *err);
int db_steps_durations_async(struct db *db, int64_t buildid, size_t max, db_step_durations_fn done,
			     void *arg);
/* For a queued request's estimated start (the API, issue 14): the queue
 * positions (db_request_queue_position) of those of brids[0..n) that are
 * unclaimed and incomplete, and the start times of their builders' running
 * builds (db_builds_running_starts, at most max per builder, each
 * builder's in a row).  Borrowed for the callback. */
struct db_queue_info {
	const int64_t *brids, *builderids, *pos;
	size_t nreq;
	const int64_t *run_builderids;
	const double *run_starts;
	size_t nrun;
};
typedef void (*db_queue_info_fn)(void *arg, int r, const struct db_queue_info *qi, const char *err);
int db_requests_queue_info_async(struct db *db, const int64_t *brids, size_t n, size_t max,
				 db_queue_info_fn done, void *arg);
/* ==== end of numbers over time ====================================================== */

/* ==== artifacts (db-sqlite-artifacts.c; slice "xfer2") ============================== */
/* The files a build's upload steps stored, one row each; path is relative
 * to BASEDIR/artifacts.  Schema: migrations/0006-artifacts.sql. */
struct db_artifact {
	int64_t artifactid, buildid, stepid; /* stepid 0: none */
	char *name;                          /* owned */
	char *path;                          /* owned: relative to BASEDIR/artifacts */
	int64_t size;
	char sha256[65]; /* lower-case hex */
	double created_at;
	char *dir; /* owned, NULL for a file: a directory_upload's extracted directory,
		    * relative to BASEDIR/artifacts (path is then its tar) */
};
/* Records an artifact (batched like every write): *ret_artifactid (may be
 * NULL).  -EINVAL for an empty name or path, a negative size or a sha256
 * that is not 64 hex digits; dir (may be NULL) is stored too. */
int db_artifact_add(struct db *db, const struct db_artifact *a, int64_t *ret_artifactid);
/* One artifact into *ret (release with db_artifact_release); KILN_ENOTFOUND. */
int db_artifact_get(struct db *db, int64_t artifactid, struct db_artifact *ret);
void db_artifact_release(struct db_artifact *a);
/* A build's artifacts in id order: a JSON array (new reference) of
 * {"artifactid", "buildid", "stepid" (or null), "name", "path", "size",
 * "sha256", "created_at" (integer seconds)}, at most limit (< 0: all). */
int db_artifacts_of_build(struct db *db, int64_t buildid, int64_t limit, json_t **ret_items);
/* The two reads answered on the loop (issue 14; db_list_async's rules).
 * db_artifact_get_async's items: [] when there is no such artifact, else
 * one object with the fields above plus "created_at" as a float and "dir"
 * (or null); db_artifact_from_json reads it back. */
int db_artifact_get_async(struct db *db, int64_t artifactid, db_list_fn done, void *arg);
int db_artifacts_of_build_async(struct db *db, int64_t buildid, int64_t limit, db_list_fn done,
				void *arg);
/* *ret from such an object (release it); -EINVAL when o is not one. */
int db_artifact_from_json(json_t *o, struct db_artifact *ret);

/* Retention (slice "artcli"; master/artifact-retention.c).  What the
 * picker judges of one artifact. */
struct db_artifact_age {
	int64_t artifactid, buildid, size;
	double created_at;
	bool build_done; /* its build finished: nothing writes in its directory any more */
};
/* Up to max artifacts with an id above after_id, oldest (lowest id) first,
 * into the caller's array; *ret_n = how many. */
int db_artifacts_oldest(struct db *db, int64_t after_id, size_t max, struct db_artifact_age *ret,
			size_t *ret_n);
/* The bytes the artifacts with an id above after_id hold (0: all; a range
 * of the primary key, so a caller keeping the total reads only what is
 * new), the highest id (after_id when none), and the lowest build id among
 * the newest keep_builds builds having artifacts (0 when there are fewer,
 * or keep_builds <= 0): artifacts of lower build ids are past keep_builds. */
int db_artifacts_usage(struct db *db, int64_t after_id, int64_t keep_builds, int64_t *ret_bytes,
		       int64_t *ret_max_id, int64_t *ret_keep_from_buildid);
/* A file or directory a deletion left unused (no remaining row names it). */
struct db_artifact_file {
	char *path; /* owned: relative to BASEDIR/artifacts */
	bool dir;   /* an extracted directory: removed with its contents */
};
/* Deletes the rows of ids (missing ones are skipped) in one write and
 * returns, in *ret (free with db_artifact_files_free), the files and
 * directories no remaining row of their build names, which the caller
 * removes from disk once the deletion is committed. */
int db_artifacts_delete(struct db *db, const int64_t *ids, size_t n, struct db_artifact_file **ret,
			size_t *ret_n);
void db_artifact_files_free(struct db_artifact_file *f, size_t n);
/* The same three answered on the loop (issue 14; db_list_async's rules:
 * done(arg, ...) on a later turn, or an error returned and done never
 * called; -ECANCELED at db_close).  The usage's answer: bytes, max_id and
 * keep_from_buildid as db_artifacts_usage's. */
typedef void (*db_artifacts_usage_fn)(void *arg, int r, int64_t bytes, int64_t max_id,
				      int64_t keep_from_buildid, const char *err);
int db_artifacts_usage_async(struct db *db, int64_t after_id, int64_t keep_builds,
			     db_artifacts_usage_fn done, void *arg);
/* Up to max (at most KILN_RETENTION_BATCH) rows, borrowed for the call. */
typedef void (*db_artifacts_oldest_fn)(void *arg, int r, const struct db_artifact_age *rows,
				       size_t n, const char *err);
int db_artifacts_oldest_async(struct db *db, int64_t after_id, size_t max,
			      db_artifacts_oldest_fn done, void *arg);
/* The deletion's answer comes once it is committed; files (owned by the
 * callee: db_artifact_files_free) are the ones no remaining row names. */
typedef void (*db_artifacts_deleted_fn)(void *arg, int r, struct db_artifact_file *files, size_t n,
					const char *err);
int db_artifacts_delete_async(struct db *db, const int64_t *ids, size_t n,
			      db_artifacts_deleted_fn done, void *arg);
/* ==== end of artifacts ============================================================== */

/* ==== console and grid (slice "console") ============================================ */
/* The latest build (highest id) of each (change, builder) among the builds
 * of the n changes changeids (change -> buildset_changes -> buildrequests ->
 * builds), newest change first, then by builderid: a JSON array (new
 * reference) of {"changeid", "buildid", "builderid", "number", "results"
 * (or null), "complete", "started_at", "complete_at" (seconds or null),
 * "state_string"}, at most max_rows; *ret_truncated when there were more.
 * -EINVAL if a changeid is not positive or max_rows < 0. */
int db_changes_cells(struct db *db, const int64_t *changeids, size_t n, int64_t max_rows,
		     json_t **ret, bool *ret_truncated);
/* The same answered on the loop (issue 14; db_list_async's rules): items
 * the array, total the rows found up to max_rows + 1 (more than the items:
 * truncated). */
int db_changes_cells_async(struct db *db, const int64_t *changeids, size_t n, int64_t max_rows,
			   db_list_fn done, void *arg);
/* ==== end of console and grid ======================================================= */
/* slice "steps20": several numbers of one build at once (the built-in
 * durations at a build's end), checked as db_number_record checks one;
 * the build is looked up once, and either all are recorded or none
 * (-EINVAL naming the first bad one, KILN_ENOTFOUND, or an error). */
struct db_number_rec {
	int64_t stepid; /* 0: the whole build */
	const char *name;
	double value;
};
int db_numbers_record_many(struct db *db, int64_t builderid, int64_t buildid,
			   const struct db_number_rec *v, size_t n, double when);
/* ==== users (db-sqlite-users.c, slice "users") ======================================= */
/* User objects as Buildbot models them (docs/USERS.md): a uid, a unique
 * identifier (the first "who" seen, or the name an administrator gave),
 * optional credentials (bb_username, unique; bb_password, only ever an
 * argon2id hash string from crypto_pwhash_str) and identities
 * (attr_type, attr_data), each identity naming one user at most.  Changes
 * create users as they are stored (db_change_add); these calls are the
 * administrator's.  Listed as DB_USERS through db_list. */
#define DB_USER_TEXT_MAX 255 /* bytes of identifier, bb_username, attr_data */
#define DB_USER_TYPE_MAX 64  /* bytes of attr_type: letters, digits, '_', '-', '.' */
#define DB_USER_INFO_MAX 32  /* identities in one add or update */

struct db_user_info {
	const char *attr_type, *attr_data; /* borrowed */
};

/* What db_user_add sets, or db_user_update changes.  All borrowed.
 * identifier: required to add; NULL leaves it.  bb_username: NULL leaves
 * it (none when adding), "" removes it (and the password).  bb_password:
 * an argon2id hash string ("$argon2id$..."), anything else is -EINVAL;
 * NULL leaves it, "" removes it; it needs a bb_username.  info: adding,
 * the identities; updating, each replaces the user's identities of its
 * attr_type, and an empty attr_data removes them. */
struct db_user_set {
	const char *identifier, *bb_username, *bb_password;
	const struct db_user_info *info;
	size_t ninfo;
};

/* Errors (db_errmsg names the field): -EINVAL for a missing, empty, too
 * long or control-character value or a password that is not a hash;
 * -EEXIST when the identifier, bb_username or an identity is another
 * user's; KILN_ENOTFOUND for no such uid. */
int db_user_add(struct db *db, const struct db_user_set *u, int64_t *ret_uid);
int db_user_update(struct db *db, int64_t uid, const struct db_user_set *u);
/* Removes the user, its identities and its links to changes (the changes
 * stay; their authors are text). */
int db_user_remove(struct db *db, int64_t uid);
/* 1 and *ret_uid for the user with that identifier / bb_username /
 * identity, 0 if none. */
int db_user_by_identifier(struct db *db, const char *identifier, int64_t *ret_uid);
int db_user_by_username(struct db *db, const char *bb_username, int64_t *ret_uid);
int db_user_by_ident(struct db *db, const char *attr_type, const char *attr_data, int64_t *ret_uid);
/* 1 and *ret_hash (malloc'd) if the user has a password hash, 0 if not
 * (for authentication: the hash never leaves the master). */
int db_user_password_hash(struct db *db, int64_t uid, char **ret_hash);
/* The interested users of a build, for reporters: the users linked to the
 * changes its buildset builds (the blamelist) plus extras[0..nextras),
 * each an identifier or the attr_data of an identity (unknown ones are
 * skipped); distinct, ascending, in *ret_uids (malloc'd, NULL when none).
 * KILN_ENOTFOUND if there is no such build. */
int db_build_interested_users(struct db *db, int64_t buildid, const char *const *extras,
			      size_t nextras, int64_t **ret_uids, size_t *ret_n);
/* The same answered on the loop (issue 14, the reporters; db_list_async's
 * rules): done(arg, 0, uids, n, NULL), uids borrowed for the call, or
 * KILN_ENOTFOUND, a database error.  extras are copied. */
int db_build_interested_users_async(struct db *db, int64_t buildid, const char *const *extras,
				    size_t nextras, db_ids_fn done, void *arg);
/* ==== end of users ================================================================== */

/* ==== API tokens (db-sqlite-tokens.c, slice "tokens") ============================== */
/* Scoped, revocable API tokens (docs/AUTH.md): 32 random bytes shown once
 * as "kiln_" + base64url (48 characters); only their SHA-256 is stored. */
#define DB_TOKEN_PREFIX "kiln_"
#define DB_TOKEN_TEXT_LEN 48 /* "kiln_" + 43 base64url characters */
#define DB_TOKEN_HASH_BYTES 32
#define DB_TOKEN_NAME_MAX 128 /* bytes of a token's name */
#define DB_TOKENS_MAX 10000   /* tokens kept (revoked ones count) */

enum db_token_scope {
	DB_SCOPE_FORCE = 1u << 0,
	DB_SCOPE_STOP = 1u << 1,
	DB_SCOPE_CANCEL = 1u << 2,
	DB_SCOPE_SENDCHANGE = 1u << 3,
	DB_SCOPE_TRY = 1u << 4,
	DB_SCOPE_PUSH = 1u << 5,
	DB_SCOPE_ADMIN = 1u << 6,
	DB_SCOPE_VIEW = 1u << 7,
};

struct db_token {
	int64_t id, uid; /* uid 0: no user */
	char name[DB_TOKEN_NAME_MAX + 1];
	unsigned scopes;                                          /* DB_SCOPE_* */
	int64_t created_at, last_used_at, revoked_at, expires_at; /* 0: never / none */
};

/* "force,sendchange" -> bits; -EINVAL (*ret_bad: the unknown name's
 * start, or NULL for an empty list) on an unknown or empty list. */
int db_token_scopes_parse(const char *text, unsigned *ret, const char **ret_bad);
/* bits -> "force,sendchange" into out (at most n bytes, always terminated). */
void db_token_scopes_format(unsigned scopes, char *out, size_t n);
/* A new token: out gets its text (DB_TOKEN_TEXT_LEN + 1 bytes), hash its
 * SHA-256.  libsodium must be initialised. */
void db_token_generate(char out[DB_TOKEN_TEXT_LEN + 1], unsigned char hash[DB_TOKEN_HASH_BYTES]);
/* Stores a token by its hash.  uid 0: no user (else KILN_ENOTFOUND if no
 * such user); expires_at 0: never.  -EINVAL (db_errmsg says why) for a bad
 * name or no scopes, -ENOSPC past DB_TOKENS_MAX. */
int db_token_add(struct db *db, int64_t uid, const char *name,
		 const unsigned char hash[DB_TOKEN_HASH_BYTES], unsigned scopes, int64_t now,
		 int64_t expires_at, int64_t *ret_id);
/* Revokes token id: 1, or 0 if it was already revoked; KILN_ENOTFOUND. */
int db_token_revoke(struct db *db, int64_t id, int64_t now);
/* Every token, by id (*ret malloc'd, NULL when none); never their hashes. */
int db_token_list(struct db *db, struct db_token **ret, size_t *ret_n);
/* The same answered on the loop (issue 14; db_list_async's rules): v (n
 * tokens) borrowed for the call. */
typedef void (*db_token_list_fn)(void *arg, int r, const struct db_token *v, size_t n,
				 const char *err);
int db_token_list_async(struct db *db, db_token_list_fn done, void *arg);
/*
 * Verifies a presented token (the text after "Bearer "): finds it by its
 * SHA-256 (compared in constant time), checks it is not revoked nor
 * expired and holds every scope of need.  0 and *ret (may be NULL) when
 * valid; KILN_EAUTH (unknown, malformed, revoked, expired: HTTP 401) or
 * -EPERM (a scope missing: 403), db_errmsg saying which without the
 * token.  Updates last_used_at at most once a minute per token.
 */
int db_token_verify(struct db *db, const char *token, unsigned need, int64_t now,
		    struct db_token *ret);
/* ==== end of API tokens ============================================================= */

/* ==== outbound statuses (db-sqlite-outbound.c, slice "statuses") ================== */
/* The commit-status reporters' persistent queue (migrations/0011-outbound.sql,
 * docs/REPORTERS.md): rows per reporter name, sent oldest first. */
struct db_outbound {
	int64_t id;
	char *skey, *state, *path, *body; /* owned */
	int64_t created_at;
	int attempts;
	int64_t next_at; /* epoch ms: not tried before */
};
void db_outbound_release(struct db_outbound *o);
/* Queues a status unless state is the last one queued for (reporter, skey):
 * 1 queued, 0 the same state again (nothing written).  Past max_rows rows
 * of the reporter, the oldest are deleted: *ret_dropped counts them. */
int db_outbound_add(struct db *db, const char *reporter, const char *skey, const char *state,
		    const char *path, const char *body, int64_t now, size_t max_rows,
		    int64_t *ret_dropped);
/* The reporter's oldest row: 1 and *ret (release it), 0 none. */
int db_outbound_next(struct db *db, const char *reporter, struct db_outbound *ret);
/* Rows waiting for the reporter (tests, logs). */
int db_outbound_count(struct db *db, const char *reporter, int64_t *ret);
/* The peer took it (or refused it for good): deleted. */
int db_outbound_delete(struct db *db, int64_t id);
/* Another attempt failed: attempts + 1, not tried before next_at (epoch ms). */
int db_outbound_retry(struct db *db, int64_t id, int64_t next_at);
/* Forgets the last state of (reporter, skey) if it is state (a status the
 * peer refused: the same state may be sent again later). */
int db_outbound_forget(struct db *db, const char *reporter, const char *skey, const char *state);
/*
 * The queue's calls answered on the loop (issue 14: the reporters on
 * PostgreSQL; db-sqlite-outbound.c, db-pg-outbound.c), under
 * db_list_async's rules: on SQLite the synchronous call runs at once and
 * its answer waits for a later loop turn; on PostgreSQL a read sees this
 * master's earlier writes, and a write's answer comes once its transaction
 * committed.  The arguments are copied.  db_outbound_count answers at once
 * on PostgreSQL only before the master serves (db_set_serving).
 *
 * db_outbound_add_async: done(arg, 1, dropped, NULL) queued, 0 the same
 * state again (nothing written), dropped as *ret_dropped.  On PostgreSQL
 * one statement (the check, the two rows, the cap), which a repeated state
 * does not fail: the turn's other writes are never lost to it.
 * db_outbound_next_async: done(arg, 1, row, NULL), or 0 (row NULL) when the
 * reporter has none; the callback may take row's strings (then zero *row),
 * which are released after it otherwise.
 * db_outbound_count_async: done(arg, 0, n, NULL).
 */
typedef void (*db_outbound_added_fn)(void *arg, int r, int64_t dropped, const char *err);
int db_outbound_add_async(struct db *db, const char *reporter, const char *skey, const char *state,
			  const char *path, const char *body, int64_t now, size_t max_rows,
			  db_outbound_added_fn done, void *arg);
typedef void (*db_outbound_fn)(void *arg, int r, struct db_outbound *row, const char *err);
int db_outbound_next_async(struct db *db, const char *reporter, db_outbound_fn done, void *arg);
typedef void (*db_count_fn)(void *arg, int r, int64_t n, const char *err);
int db_outbound_count_async(struct db *db, const char *reporter, db_count_fn done, void *arg);
/* ==== end of outbound statuses ====================================================== */
/* ==== results pushed from outside (slice "push", db-sqlite-push.c; docs/PUSH.md) ===== */
/* Runs fn(db, ud) as one write: every write call it makes is undone when it
 * returns a negative code (a pushed bag is stored whole or not at all).  On
 * PostgreSQL its writes join the turn's transaction, which nothing undoes
 * in part: fn must not fail once it wrote (the push bag is checked before),
 * so the id reserves are checked first for one build and nsteps steps and
 * logs: -EAGAIN without running fn when they do not hold them (a refill is
 * on its way: try again on a later turn). */
int db_push_atomic(struct db *db, size_t nsteps, int (*fn)(struct db *db, void *ud), void *ud);
struct db_push_row {
	int64_t id, tokenid, builderid, buildid;
	const char *package, *host, *arch, *revision; /* borrowed; arch, revision may be NULL */
	const char *tags;                             /* ",a,b," (borrowed) */
	const char *state;                            /* "stored" or "failed" */
	const char *reason;                           /* may be NULL */
	bool finished;
	int results; /* RESULTS_NONE while open */
	int64_t nsteps;
	const unsigned char *update_hash; /* 32 bytes or NULL */
	double created_at, finished_at;   /* finished_at 0: none */
};
int db_push_insert(struct db *db, const struct db_push_row *row);
/* After an append or a finish: steps count, results, finished (clears the
 * update hash) and times. */
int db_push_update(struct db *db, int64_t id, int64_t nsteps, int results, bool finished,
		   double now);
/* The highest submission id (0 when none). */
int db_push_max_id(struct db *db, int64_t *ret);
/* A new submission's id: on SQLite *next (the stored maximum + 1 at start,
 * counted up here); on PostgreSQL from the table's reserve (a sequence that
 * several masters share), *next untouched: 0, or -EAGAIN while a burst
 * emptied it (its refill is on its way). */
int db_push_id_next(struct db *db, int64_t *next, int64_t *ret_id);
/* Stored submissions of tokenid for package. */
int db_push_count(struct db *db, int64_t tokenid, const char *package, int64_t *ret);
/* The same answered on the loop (issue 14; db_list_async's rules):
 * done(arg, 0, count, NULL), or an error. */
int db_push_count_async(struct db *db, int64_t tokenid, const char *package, db_id_fn done,
			void *arg);
/* At start: submissions left open by a previous run are marked finished
 * (their builds were finished by db_master_recover); returns how many. */
int db_push_close_open(struct db *db, double now);
/* One submission as the API renders it (new reference): KILN_ENOTFOUND. */
int db_push_get(struct db *db, int64_t id, json_t **ret);
/* The update hash of an open submission: 1 and hash, 0 if finished or absent. */
int db_push_open_hash(struct db *db, int64_t id, unsigned char hash[32], int64_t *ret_tokenid);
/* The latest stored submission per package and host matching the filters
 * (each may be NULL), as a JSON array ordered by package, host (at most
 * limit rows). */
int db_push_latest(struct db *db, const char *package, const char *host, const char *tag,
		   int64_t limit, json_t **ret);
/* The same two reads answered on the loop (issue 14; db_list_async's rules):
 * items is [] or [the submission] for db_push_get_async, the list for
 * db_push_latest_async. */
int db_push_get_async(struct db *db, int64_t id, db_list_fn done, void *arg);
int db_push_latest_async(struct db *db, const char *package, const char *host, const char *tag,
			 int64_t limit, db_list_fn done, void *arg);
/* Expected reporters' state: 1 and the values, 0 when none is stored.  On
 * PostgreSQL before the master serves only (push_start; db_set_serving). */
int db_push_expected_get(struct db *db, const char *package, const char *host, double *ret_last,
			 int *ret_quiet);
int db_push_expected_set(struct db *db, const char *package, const char *host, double last,
			 int quiet);
/* ==== end of results pushed from outside ============================================ */
/* ==== web sessions (db-sqlite-sessions.c, slice "weblogin") ========================= */
/* Web login sessions (docs/AUTH.md): the browser holds 32 random bytes in
 * the kiln_session cookie; only their SHA-256 is stored.  uid 0: a user of
 * master.lua's htpasswd file (username names it). */
#define DB_SESSION_HASH_BYTES 32
#define DB_SESSIONS_MAX 10000 /* sessions kept; past it the oldest goes */
#define DB_ROLES_TEXT_MAX 128 /* bytes of users.roles */

struct db_session {
	int64_t id, uid; /* uid 0: not a database user */
	char username[DB_USER_TEXT_MAX + 1];
	int64_t created_at, last_seen_at, expires_at;
};

/* Stores a new session (expired ones are deleted first, and the oldest
 * when DB_SESSIONS_MAX are kept). */
int db_session_add(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES], int64_t uid,
		   const char *username, int64_t now, int64_t expires_at, int64_t *ret_id);
/* The live session with that hash (constant-time compare): 1 and *ret, or
 * 0 when unknown, past expires_at or idle longer than idle_s (0: no idle
 * limit; such a session is deleted).  Notes the use (last_seen_at) when
 * it is older than a minute or half of idle_s. */
int db_session_get(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES], int64_t now,
		   int64_t idle_s, struct db_session *ret);
/* Deletes the session with that hash: 1, or 0 when there was none. */
int db_session_delete(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES]);
/* Deletes every session of database user uid (a password change ends them):
 * the number deleted, or <0. */
int db_sessions_delete_user(struct db *db, int64_t uid);
/* Users that can log in (a bb_username and a password hash). */
int db_login_users_count(struct db *db, int64_t *ret_n);
/* bb_username and roles of uid into username and roles ("" when unset):
 * 1, or 0 when there is no such user. */
int db_user_login(struct db *db, int64_t uid, char *username, size_t un, char *roles, size_t rn);
/* Sets users.roles of uid (NULL or "": none); KILN_ENOTFOUND. */
int db_user_set_roles(struct db *db, int64_t uid, const char *roles);
/* ==== end of web sessions =========================================================== */

/* ==== users, tokens and sessions answered on the loop (db-pg-users.c, issue 14) ===== */
/* The calls above that the API, the login and the authentication gate
 * make, answered later under db_list_async's rules (on SQLite on a later
 * loop turn, on PostgreSQL when the server answers; a write's answer once
 * its transaction committed).  r and err are what the synchronous call
 * returns and db_errmsg says; the arguments are copied. */
/* done(arg, 0, uid, NULL), or -EINVAL / -EEXIST. */
int db_user_add_async(struct db *db, const struct db_user_set *u, db_id_fn done, void *arg);
/* done(arg, 0, n, NULL) with n the sessions ended (end_sessions: every
 * session of the user is deleted too, as db_sessions_delete_user), or
 * -EINVAL / -EEXIST / KILN_ENOTFOUND. */
int db_user_update_async(struct db *db, int64_t uid, const struct db_user_set *u, bool end_sessions,
			 db_id_fn done, void *arg);
/* done(arg, 0, uid, NULL), or KILN_ENOTFOUND. */
int db_user_remove_async(struct db *db, int64_t uid, db_id_fn done, void *arg);
/* The user numbered uid (> 0), else the one whose identifier (or, with
 * by_username, bb_username) is name: done(arg, 1, uid, NULL), or 0. */
int db_user_find_async(struct db *db, int64_t uid, const char *name, bool by_username,
		       db_id_fn done, void *arg);
/* What a login needs of a user (borrowed for the callback): hash is the
 * password hash, NULL when none. */
struct db_user_login {
	int64_t uid;
	const char *username, *roles, *hash; /* "" when unset (hash: NULL) */
};
typedef void (*db_user_login_fn)(void *arg, int r, const struct db_user_login *u, const char *err);
/* The user numbered uid (> 0), else the one with bb_username username:
 * done(arg, 1, u, NULL), or 0 (u NULL). */
int db_user_login_async(struct db *db, int64_t uid, const char *username, db_user_login_fn done,
			void *arg);
/* db_user_set_roles: done(arg, 0, uid, NULL), or KILN_ENOTFOUND. */
int db_user_set_roles_async(struct db *db, int64_t uid, const char *roles, db_id_fn done,
			    void *arg);
/* db_token_add: done(arg, 0, id, NULL), or its errors. */
int db_token_add_async(struct db *db, int64_t uid, const char *name,
		       const unsigned char hash[DB_TOKEN_HASH_BYTES], unsigned scopes, int64_t now,
		       int64_t expires_at, db_id_fn done, void *arg);
/* db_token_revoke: done(arg, 1 or 0, id, NULL), or KILN_ENOTFOUND. */
int db_token_revoke_async(struct db *db, int64_t id, int64_t now, db_id_fn done, void *arg);
typedef void (*db_token_fn)(void *arg, int r, const struct db_token *t, const char *err);
/* db_token_verify: done(arg, 0, t, NULL), or KILN_EAUTH / -EPERM. */
int db_token_verify_async(struct db *db, const char *token, unsigned need, int64_t now,
			  db_token_fn done, void *arg);
typedef void (*db_session_fn)(void *arg, int r, const struct db_session *s, const char *err);
/* db_session_get: done(arg, 1, s, NULL), or 0 (s NULL). */
int db_session_get_async(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES],
			 int64_t now, int64_t idle_s, db_session_fn done, void *arg);
/* ==== end of users, tokens and sessions answered on the loop ======================== */

/* ==== numbers: step durations (db-sqlite-numbers.c) ================================ */
/* step_duration:NAME is not stored: its series (db_numbers_series,
 * db_numbers_names, db_number_previous) is served from the steps table
 * (started_at, complete_at) for the builds whose build_duration was
 * recorded; rows recorded under such a name before that are still served. */
#define DB_NUMBERS_STEP_DURATION "step_duration:"
/* ==== end of numbers: step durations ================================================ */

/* ==== schema versions and explicit upgrades (slice "package") ==================== */
/* db_open() without applying pending migrations (`kiln upgrade-master`
 * applies them itself, printing each); a schema newer than this binary is
 * still refused. */
#define DB_OPEN_NO_MIGRATE (1u << 0)
int db_open_flags(uv_loop_t *loop, const char *url, const char *basedir, unsigned flags,
		  struct db **ret);
/* The schema version of the newest migration built into this binary. */
int db_schema_latest(void);
/* Called after each migration that db_upgrade() applied (inside its
 * transaction): its number and name ("0012-push"). */
typedef void (*db_migration_fn)(int version, const char *name, void *userdata);
/* Applies the pending migrations in one transaction: how many (0: the
 * schema was current), or an error (then none is kept: the file is as it
 * was).  A schema newer than this binary is refused (KILN_EDB, db_errmsg()
 * names both versions). */
int db_upgrade(struct db *db, db_migration_fn applied, void *userdata);
/* ==== end of schema versions ========================================================= */
/* ==== retention (db-sqlite-retention.c; slice "retention") ========================= */
/* What the purge removes (master/retention.c runs it in batches on the loop,
 * `kiln cleanupdb` all at once).  Cut-offs are wall times: a row older goes;
 * 0 means no such limit.  docs/OPERATING.md "Retention". */
/* One builder's own cut-offs (a builder's retention = { ... }, issue 13):
 * they replace the policy's for that builder's builds, logs, test results and
 * numbers (the caller merges: every field is the one that applies). */
struct db_retention_builder {
	const char *name;  /* borrowed: the builder's name */
	int64_t builderid; /* db_retention_resolve(); 0: not in the database */
	double builds_before;
	int64_t keep_per_builder;
	double logs_before;
	double success_logs_before;
	double tests_before;
	double numbers_before;
};
struct db_retention_policy {
	double builds_before;       /* builds that completed before this */
	int64_t keep_per_builder;   /* only the newest N builds of a builder are kept (0: all) */
	double logs_before;         /* the content of logs of builds completed before this */
	double success_logs_before; /* the same for builds that ended SUCCESS */
	double tests_before;        /* test result sets of builds completed before this */
	double numbers_before;      /* numbers recorded before this */
	double changes_before;      /* changes (when_timestamp) no kept buildset builds */
	/* builders with their own cut-offs (borrowed array); once
	 * db_retention_resolve() has run, sorted by builderid */
	struct db_retention_builder *builders;
	size_t nbuilders;
};
/* Looks up the builderid of each of p->builders by name (0 when the
 * database has no such builder yet: nothing of it to purge) and sorts
 * them by it.  Before the first batch of a pass, and before
 * db_retention_run.  0 or an error. */
int db_retention_resolve(struct db *db, struct db_retention_policy *p);
struct db_retention_counts {
	int64_t builds, logs, test_results, numbers, changes;
	int64_t buildrequests, buildsets, sourcestamps, artifacts, rows;
};
/* A pass's position; zero it to begin a pass. */
struct db_retention_pass {
	int phase;
	int64_t after_id, builderid;
	double after_ts;
};
/* One batch of a pass: deletes up to about max_rows rows (whole builds,
 * logs' content, test result sets, numbers, changes) or until budget_ms of
 * work, in one write (batched like every write).  Never touches a running
 * build, its logs or an incomplete build request.  A purged build takes its
 * steps, logs, chunks, test results, numbers, properties and artifact rows;
 * then its build request and buildset go when complete and left without
 * builds (and the buildset's sourcestamps nothing else uses).  The files of
 * the artifact rows deleted are appended to *files (free with
 * db_artifact_files_free).  Adds what went to *counts.  Returns 1 while the
 * pass has more to do, 0 when it is over, or an error. */
int db_retention_batch(struct db *db, const struct db_retention_policy *p,
		       struct db_retention_pass *st, size_t max_rows, double budget_ms,
		       struct db_retention_counts *counts, struct db_artifact_file **files,
		       size_t *nfiles);
/* One batch answered on the loop (issue 14), the runner's way on both
 * backends: on SQLite db_retention_batch runs at once and its answer waits
 * for a later turn; on PostgreSQL the batch is one statement of the turn's
 * transaction (one phase's window: its checks and deletions in one WITH,
 * ON DELETE CASCADE taking what hangs on a build), answered after its
 * commit, and budget_ms does not apply (max_rows bounds it).  st is the
 * position to start from (copied); p is copied before this returns.  The
 * answer: r 1 while the pass has more to do, 0 when it is over, or an
 * error (nothing of the batch done, s NULL); s->st the position after the
 * batch, s->counts what it removed (rows: their sum), s->files those of
 * the artifact rows it deleted (take them, setting s->files NULL and
 * s->nfiles 0, or they are freed after the call).  On PostgreSQL
 * db_retention_resolve leaves builderid 0: each batch matches the
 * builders by name. */
struct db_retention_step {
	struct db_retention_pass st;
	struct db_retention_counts counts;
	struct db_artifact_file *files;
	size_t nfiles;
};
typedef void (*db_retention_fn)(void *arg, int r, struct db_retention_step *s, const char *err);
int db_retention_batch_async(struct db *db, const struct db_retention_policy *p,
			     const struct db_retention_pass *st, size_t max_rows, double budget_ms,
			     db_retention_fn done, void *arg);
/* The whole purge in one transaction, without a time limit (`kiln
 * cleanupdb`, the master not running).  dry_run: counts, then undoes it
 * all (no files returned).  The files of deleted artifact rows go to
 * *files / *nfiles (set; free with db_artifact_files_free). */
int db_retention_run(struct db *db, const struct db_retention_policy *p, bool dry_run,
		     struct db_retention_counts *counts, struct db_artifact_file **files,
		     size_t *nfiles);
/* True while a WAL checkpoint job runs (db.h "What does not [run on the
 * loop]").  The purge waits for it between batches: a loop writing without
 * a pause never lets the checkpoint catch up, and the WAL file then grows
 * without bound (measured in bench/soak.py). */
bool db_checkpoint_running(struct db *db);
/* The WAL truncations the checkpoint jobs did since db_open (a WAL file
 * past 64 MiB: db.h "What does not [run on the loop]") and the longest one
 * in seconds, in the thread pool (a loop that writes meanwhile waits for its
 * end).  Zero without a loop or for ":memory:". */
void db_wal_truncations(struct db *db, uint64_t *ret_count, double *ret_worst_s);
/* The database file's size in bytes (page_count * page_size), and VACUUM
 * (no loop: `kiln cleanupdb`). */
int db_file_bytes(struct db *db, int64_t *ret);
int db_vacuum(struct db *db);
/* ==== end of retention ============================================================== */

#endif
