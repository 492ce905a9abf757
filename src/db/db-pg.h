/*
 * db.h on PostgreSQL (issue 14): the connection, its migrations at open and
 * its batch of writes, held by a struct db whose pg is set.  Internal to
 * src/db.
 */
#ifndef KILN_DB_PG_H
#define KILN_DB_PG_H

#include "db/db-internal.h"

struct pg_conn;
struct pg_result; /* libpq's PGresult */

/* Runs db's loop until *done (db_set_serving): 0, or -EWOULDBLOCK while
 * serving, or KILN_EDB if the loop ran dry first; what names the call. */
int db_pg_spin(struct db *db, const bool *done, const char *what);
/* Reads sql (n text values) and runs the loop until it is answered (as
 * db_pg_spin): rows(arg, res) gets its rows, in the answer's callback;
 * what names the call in errors. */
int db_pg_read_wait(struct db *db, const char *what, const char *sql, int n,
		    const char *const *values, void (*rows)(void *arg, const struct pg_result *res),
		    void *arg);
/* db_pg_read_wait of one integer: the first column of the first row (0
 * when there is none or it is NULL). */
int db_pg_int_wait(struct db *db, const char *what, const char *sql, int n,
		   const char *const *values, int64_t *ret);
/* db_login_users_count on PostgreSQL: counted at once before serving;
 * while serving, the last count (refreshed in the background, at most a
 * second old), or -EWOULDBLOCK until there is one. */
int db_pg_login_users_count(struct db *db, int64_t *ret);
/* db_eta_samples_async on PostgreSQL (db-pg-numbers.c). */
int db_pg_eta_samples(struct db *db, int64_t builderid, db_eta_fn done, void *arg);
/* db_number_previous_async, db_build_times_async, db_steps_durations_async
 * on PostgreSQL (db-pg-numbers.c). */
int db_pg_number_previous(struct db *db, int64_t builderid, const char *name, int64_t buildid,
			  db_number_prev_fn done, void *arg);
int db_pg_build_times(struct db *db, int64_t buildid, bool blamelist, db_build_times_fn done,
		      void *arg);
int db_pg_steps_durations(struct db *db, int64_t buildid, size_t max, db_step_durations_fn done,
			  void *arg);
int db_pg_requests_queue_info(struct db *db, const int64_t *brids, size_t n, size_t max,
			      db_queue_info_fn done, void *arg);
/* The dispatch hooks' reads and claim (db-pg-write.c, db-pg-buildset.c). */
int db_pg_request_claim_id(struct db *db, int64_t brid, int64_t masterid, double when,
			   db_request_fn done, void *arg);
int db_pg_request_queue_head(struct db *db, int64_t builderid, size_t max, db_request_head_fn done,
			     void *arg);
int db_pg_request_summaries(struct db *db, const int64_t *ids, size_t n, db_summaries_fn done,
			    void *arg);
/* What several masters share (db-pg-cluster.c): the lease, object state
 * read on the loop, and the event lines of db_notify, gathered per turn in
 * db_pg_notify_state(db) and sent by db_pg_notify_flush at the turn's
 * close; db_pg_notified hands the connection's notifications to the
 * listener. */
struct db_pg_notify {
	struct buf out;      /* this turn's lines, each ending with '\n' */
	bool lost_this_turn; /* past KILN_PG_MAX_NOTIFY_BYTES (logged once) */
	bool lost_unsaid;    /* lines were dropped: the others are told ("lost") */
	uint64_t dropped;
	db_notify_fn fn; /* db_listen's */
	void *arg;
	bool connected_once; /* a later connection may have missed lines */
};
struct db_pg_notify *db_pg_notify_state(struct db *db);
int db_pg_lease(struct db *db, const char *name, int64_t masterid, double ttl, db_lease_fn done,
		void *arg);
int db_pg_lease_release(struct db *db, const char *name, int64_t masterid);
int db_pg_state_get_async(struct db *db, const char *name, db_state_fn done, void *arg);
int db_pg_notify(struct db *db, const char *line);
void db_pg_notify_flush(struct db *db);
void db_pg_notified(struct db *db, const char *channel, const char *payload, int pid);
int db_pg_listen(struct db *db, db_notify_fn fn, void *arg);
/* db_state_get on PostgreSQL (db-pg.c). */
int db_pg_state_get(struct db *db, const char *name, json_t **ret);
/* db_open's on a PostgreSQL URL: the open, the loop run until it is done. */
int db_pg_open_wait(uv_loop_t *loop, const char *url, struct db **ret);
/* db_flush on PostgreSQL. */
int db_pg_flush(struct db *db);
/* The synchronous upserts by name (db_master_register, db_builder_ensure,
 * db_worker_ensure) on PostgreSQL. */
int db_pg_ensure_wait(struct db *db, enum db_named kind, const char *name, const char *description,
		      const char *tags_json, int64_t *ret_id);
/* db_masters_reap_async on PostgreSQL (db-pg-write.c). */
int db_pg_masters_reap(struct db *db, int64_t self, double older_than, double now,
		       db_masters_dead_fn done, void *arg);
/* db_master_recover on PostgreSQL (db-pg-write.c). */
int db_pg_master_recover(struct db *db, int64_t masterid, int results, const char *state_string,
			 double when);
/* Opens url on loop; ready as db_open_async says. */
int db_pg_open(uv_loop_t *loop, const char *url, db_ready_fn ready, void *arg);
/* The connection of a PostgreSQL db. */
struct pg_conn *db_pg_conn(struct db *db);
/* Its writes' batcher; every read goes through it too (pg_batch_read), so
 * that a read sees the writes this master made before it. */
struct pg_batch;
struct pg_batch *db_pg_batch(struct db *db);
/* db_close for a PostgreSQL db: answers not yet come get -ECANCELED. */
void db_pg_close(struct db *db);
/* db_numbers_series_async / db_numbers_names_async on PostgreSQL. */
int db_pg_numbers_series(struct db *db, int64_t builderid, const char *name, bool oldest_first,
			 int64_t limit, int64_t offset, db_list_fn done, void *arg);
int db_pg_numbers_names(struct db *db, int64_t builderid, int64_t limit, int64_t offset,
			db_list_fn done, void *arg);
/* db_request_compatible_async (db-pg-buildset.c) and
 * db_request_claim_many_async (db-pg-write.c) on PostgreSQL. */
int db_pg_request_compatible(struct db *db, int64_t brid, size_t max, db_request_lines_fn done,
			     void *arg);
/* Answers done with res's rows (id, buildsetid[, branch, revision,
 * repository, project, codebase]), or with r and err. */
void db_pg_answer_lines(int r, const struct pg_result *res, const char *err,
			db_request_lines_fn done, void *arg);
int db_pg_request_superseded(struct db *db, int64_t builderid, int64_t bsid,
			     db_request_lines_fn done, void *arg);
int db_pg_request_claim_many(struct db *db, const int64_t *ids, size_t n, int64_t masterid,
			     double when, db_request_lines_fn done, void *arg);
/* db_test_history_async on PostgreSQL (db-pg-tests.c). */
int db_pg_test_history(struct db *db, int64_t builderid, const char *test_name,
		       db_test_history_fn done, void *arg);
/* db_changes_cells_async on PostgreSQL (db-pg-tests.c). */
int db_pg_changes_cells(struct db *db, const int64_t *changeids, size_t n, int64_t max_rows,
			db_list_fn done, void *arg);
/* db_artifact_get_async (artifactid) or db_artifacts_of_build_async
 * (buildid, limit) on PostgreSQL (db-pg-tests.c). */
int db_pg_artifacts(struct db *db, int64_t artifactid, int64_t buildid, int64_t limit,
		    db_list_fn done, void *arg);
/* db_log_get_async, db_log_read_async, db_log_search_async on PostgreSQL
 * (db-pg-log.c). */
int db_pg_log_get(struct db *db, int64_t logid, db_log_info_fn done, void *arg);
int db_pg_log_read(struct db *db, int64_t logid, int64_t first_line, int64_t max_lines,
		   size_t max_bytes, db_log_lines_fn done, void *arg);
int db_pg_log_search(struct db *db, int64_t logid, const char *needle, size_t nlen, unsigned flags,
		     int64_t from, uint64_t max_scan, db_log_found_fn done, void *arg);
/* db_push_get_async (one: id) or db_push_latest_async (the others) on
 * PostgreSQL (db-pg-push.c); db_token_list_async. */
int db_pg_push(struct db *db, bool one, int64_t id, const char *package, const char *host,
	       const char *tag, int64_t limit, db_list_fn done, void *arg);
int db_pg_token_list(struct db *db, db_token_list_fn done, void *arg);
int db_pg_build_inputs(struct db *db, int64_t bsid, db_build_inputs_fn done, void *arg);
int db_pg_request_pending_builders(struct db *db, db_ids_fn done, void *arg);
int db_pg_request_queued_counts(struct db *db, int64_t cap, db_counts_fn done, void *arg);
/* db_build_interested_users_async on PostgreSQL (db-pg-reporters.c). */
int db_pg_interested_users(struct db *db, int64_t buildid, const char *const *extras,
			   size_t nextras, db_ids_fn done, void *arg);
/* The writes of db.h on PostgreSQL (db-pg-write.c): joined to the turn's
 * transaction, 0 at once (see there for what is not checked). */
void db_pg_on_commit_failed(void *arg, int r, const char *err);
int db_pg_build_set_state(struct db *db, int64_t buildid, const char *state_string);
int db_pg_build_finish(struct db *db, int64_t buildid, int results, const char *state_string,
		       double when);
int db_pg_build_set_property(struct db *db, int64_t buildid, const char *name,
			     const char *value_json, const char *source);
int db_pg_step_start(struct db *db, int64_t stepid, double when);
int db_pg_step_set_state(struct db *db, int64_t stepid, const char *state_string);
int db_pg_step_finish(struct db *db, int64_t stepid, int results, const char *state_string,
		      bool hidden, double when);
int db_pg_step_add_url(struct db *db, int64_t stepid, const char *name, const char *url);
int db_pg_worker_set_info(struct db *db, int64_t workerid, const char *info_json);
enum db_pg_worker_col {
	DB_PG_WORKER_MASTER,
	DB_PG_WORKER_PAUSED,
	DB_PG_WORKER_GRACEFUL,
	DB_PG_WORKER_LAST_SEEN
};
int db_pg_worker_set(struct db *db, int64_t workerid, enum db_pg_worker_col col, double v);
int db_pg_worker_set_configured(struct db *db, int64_t workerid, int64_t masterid,
				const int64_t *builderids, size_t n);
int db_pg_master_set_active(struct db *db, int64_t masterid, bool active, double when);
int db_pg_builder_set_masters(struct db *db, int64_t builderid, const int64_t *masterids, size_t n);
int db_pg_request_unclaim(struct db *db, int64_t brid);
int db_pg_request_set_collapsed(struct db *db, int64_t brid, int64_t buildid);
int db_pg_state_set(struct db *db, const char *name, const char *value_json);
int db_pg_user_set_roles(struct db *db, int64_t uid, const char *roles);
int db_pg_outbound_delete(struct db *db, int64_t id);
int db_pg_outbound_retry(struct db *db, int64_t id, int64_t next_at);
int db_pg_outbound_forget(struct db *db, const char *reporter, const char *skey, const char *state);
/* The outbound queue's calls answered on the loop (db-pg-outbound.c). */
int db_pg_outbound_add(struct db *db, const char *reporter, const char *skey, const char *state,
		       const char *path, const char *body, int64_t now, size_t max_rows,
		       db_outbound_added_fn done, void *arg);
int db_pg_outbound_next(struct db *db, const char *reporter, db_outbound_fn done, void *arg);
int db_pg_outbound_count(struct db *db, const char *reporter, db_count_fn done, void *arg);
int db_pg_push_update(struct db *db, int64_t id, int64_t nsteps, int results, bool finished,
		      double now);
int db_pg_push_expected_set(struct db *db, const char *package, const char *host, double last,
			    int quiet);
/* The push slice's other calls (db-pg-push.c): the submission's row, the
 * count of a token's stored results (answered on the loop), the expected
 * reporters' state (before the master serves). */
int db_pg_push_insert(struct db *db, const struct db_push_row *row);
int db_pg_push_count(struct db *db, int64_t tokenid, const char *package, db_id_fn done, void *arg);
int db_pg_push_expected_get(struct db *db, const char *package, const char *host, double *ret_last,
			    int *ret_quiet);
/* Whether the id reserves hold builds, steps and logs new ids: 0, or
 * -EAGAIN (db_errmsg says which; a refill is sent if none is on its way). */
int db_pg_ids_ready(struct db *db, size_t builds, size_t steps, size_t logs);
int db_pg_number_record(struct db *db, int64_t builderid, int64_t buildid, int64_t stepid,
			const char *name, double value, double when);
int db_pg_test_result_set_complete(struct db *db, int64_t setid, int64_t passed, int64_t failed,
				   int64_t skipped);
int db_pg_buildset_add_changes(struct db *db, int64_t bsid, const int64_t *changeids, size_t n);
int db_pg_buildset_set_patch(struct db *db, int64_t bsid, const struct db_patch *p);
/* A new row's id from the table's reserve (filled before the open ends):
 * 0, or -EAGAIN when a burst emptied it (the refill is on its way). */
enum db_pg_table {
	DB_PG_BUILDS,
	DB_PG_STEPS,
	DB_PG_LOGS,
	DB_PG_TEST_SETS,
	DB_PG_ARTIFACTS,
	DB_PG_BUILDSETS,
	DB_PG_SOURCESTAMPS,
	DB_PG_REQUESTS,
	DB_PG_CHANGES,
	DB_PG_PUSH,
	DB_PG_NTABLES
};
int db_pg_next_id(struct db *db, enum db_pg_table table, int64_t *ret);
/* db_commit_then while serving: true when fn will be called by the batcher
 * (false: the caller flushes, before the master serves). */
bool db_pg_commit_then(struct db *db, db_commit_fn fn, void *arg);
/* db_change_add on PostgreSQL (db-pg-write.c); files and props are JSON
 * texts. */
int db_pg_change_add(struct db *db, const struct db_change_new *c, const char *files,
		     const char *props, int64_t *ret_changeid, int64_t *ret_ssid);
/* Builds this master runs (db-pg-write.c): added (the number comes in
 * done), forgotten at their finish; their steps and logs. */
int db_pg_build_add(struct db *db, int64_t builderid, int64_t brid, int64_t workerid,
		    int64_t masterid, double started_at, db_build_added_fn done, void *arg,
		    int64_t *ret_buildid);
int db_pg_build_forget(struct db *db, int64_t buildid);
int db_pg_step_begin(struct db *db, int64_t buildid, const char *name, double when,
		     const char *state_string, int64_t *ret_stepid, int64_t *ret_number);
int db_pg_log_add(struct db *db, int64_t stepid, const char *name, const char *slug, char type,
		  int64_t *ret_logid);
/* The list head of those builds (db-pg.c keeps it), and its release. */
struct pg_run;
struct pg_run **db_pg_runs_head(struct db *db);
void db_pg_runs_free(struct db *db);
/* db_test_results_add on PostgreSQL; value_of: a result's stored value. */
int db_pg_test_results_add(struct db *db, int64_t setid, const struct db_test_result *v, size_t n,
			   const char *(*value_of)(const struct db_test_result *));
int db_pg_test_result_set_add(struct db *db, const struct db_test_result_set_new *n,
			      int64_t *ret_setid);
int db_pg_artifact_add(struct db *db, const struct db_artifact *a, int64_t *ret_artifactid);
int db_pg_buildset_add(struct db *db, const struct db_buildset_new *bs, const char *props,
		       const int64_t *builderids, size_t n, int64_t *ret_bsid, int64_t *ret_brids);
/* A log's tail chunk row and its counters (db-sqlite-log.c's tail code on
 * PostgreSQL); the dirty tails written at the end of each turn. */
int db_pg_log_write_row(struct db *db, struct db_log_tail *t, const void *content, size_t len,
			bool compressed);
int db_pg_log_write_counts(struct db *db, struct db_log_tail *t, bool complete);
void db_pg_log_sync(void *arg);
void db_pg_log_touched(struct db *db);
int db_pg_ensure(struct db *db, enum db_named kind, const char *name, const char *description,
		 const char *tags_json, db_id_fn done, void *arg);
int db_pg_request_next(struct db *db, int64_t builderid, db_request_fn done, void *arg);
/* db_buildset_patches_async on PostgreSQL (db-pg-buildset.c). */
int db_pg_buildset_patches(struct db *db, int64_t bsid, db_patches_fn done, void *arg);
int db_pg_request_claim_next(struct db *db, int64_t builderid, int64_t masterid, double when,
			     db_request_fn done, void *arg);
int db_pg_request_complete(struct db *db, int64_t brid, int results, double when, db_bsid_fn done,
			   void *arg);
/* db_open_errmsg()'s text, for an open that failed before a struct db. */
void db_set_open_errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* KILN_TEST_FAIL_COMMIT=N (db.h) in *ret, 0 when unset; -EINVAL (the open's
 * message set) when it is no positive integer.  db-sqlite.c. */
int db_test_fail_commit(uint64_t *ret);
/* The answers queued by db-async.c, cancelled (db_close). */
void db_async_close(struct db *db);
/* x's answer for a later turn on SQLite (db-async.c): run(x, 0) then (or
 * -ECANCELED at db_close); if it cannot wait, release(x) and the error. */
int db_async_later(struct db *db, void (*run)(void *, int), void *x, void (*release)(void *));

/* db-pg-write.c's: sql with w's parameters in this turn's transaction
 * (w released); a write whose rows cb(c, ...) gets after the commit (c,
 * malloc'd, freed here when the write cannot be queued). */
struct pgw;
struct pg_query;
int db_pg_write(struct db *db, const char *sql, struct pgw *w);
int db_pg_write_returning(struct db *db, const struct pg_query *q,
			  void (*cb)(void *c, int r, const struct pg_result *res, const char *err),
			  void *c);
/* ids as a PostgreSQL array literal "{1,2,3}" in b (released by the
 * caller, also on failure); -ENOBUFS past its cap (db-pg-write.c). */
struct buf;
int pgw_id_array(struct db *db, struct buf *b, const int64_t *ids, size_t n);
/* A read (pg_batch_read: behind this master's writes) whose rows cb(c, ...)
 * gets; c (malloc'd) is freed here, and db's error set, when it cannot be
 * sent. */
int db_pg_read(struct db *db, const struct pg_query *q,
	       void (*cb)(void *c, int r, const struct pg_result *res, const char *err), void *c);

/* Users, tokens and sessions on PostgreSQL (db-pg-users.c): the *_async
 * calls of db.h with the same arguments, and the session writes. */
int db_pg_user_add(struct db *db, const struct db_user_set *u, db_id_fn done, void *arg);
int db_pg_user_update(struct db *db, int64_t uid, const struct db_user_set *u, bool end_sessions,
		      db_id_fn done, void *arg);
int db_pg_user_remove(struct db *db, int64_t uid, db_id_fn done, void *arg);
int db_pg_user_find(struct db *db, int64_t uid, const char *name, bool by_username, db_id_fn done,
		    void *arg);
int db_pg_user_login(struct db *db, int64_t uid, const char *username, db_user_login_fn done,
		     void *arg);
int db_pg_user_set_roles_async(struct db *db, int64_t uid, const char *roles, db_id_fn done,
			       void *arg);
int db_pg_token_add(struct db *db, int64_t uid, const char *name,
		    const unsigned char hash[DB_TOKEN_HASH_BYTES], const char *scopes, int64_t now,
		    int64_t expires_at, db_id_fn done, void *arg);
int db_pg_token_revoke(struct db *db, int64_t id, int64_t now, db_id_fn done, void *arg);
int db_pg_token_verify(struct db *db, const unsigned char hash[DB_TOKEN_HASH_BYTES], unsigned need,
		       int64_t now, db_token_fn done, void *arg);
int db_pg_session_get(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES], int64_t now,
		      int64_t idle_s, db_session_fn done, void *arg);
int db_pg_session_add(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES], int64_t uid,
		      const char *username, int64_t now, int64_t expires_at);
int db_pg_session_delete(struct db *db, const unsigned char hash[DB_SESSION_HASH_BYTES]);
int db_pg_sessions_delete_user(struct db *db, int64_t uid);

/* The retention's calls on PostgreSQL (db-pg-retention.c): the *_async
 * calls of db.h (a batch without its time budget). */
int db_pg_retention_batch(struct db *db, const struct db_retention_policy *p,
			  const struct db_retention_pass *st, size_t max_rows, db_retention_fn done,
			  void *arg);
/* db_retention_run on PostgreSQL: the batches of db_pg_retention_batch
 * in one transaction of their own on the connection (BEGIN, each batch
 * once the one before is answered, then COMMIT, or ROLLBACK for a dry
 * run), the loop run until each is answered; refused while serving.
 * db_file_bytes (pg_database_size) and db_vacuum (a plain VACUUM alone on
 * the connection, after the pending writes) likewise. */
int db_pg_retention_run(struct db *db, const struct db_retention_policy *p, bool dry_run,
			struct db_retention_counts *counts, struct db_artifact_file **files,
			size_t *nfiles);
int db_pg_file_bytes(struct db *db, int64_t *ret);
int db_pg_vacuum(struct db *db);
int db_pg_artifacts_usage(struct db *db, int64_t after_id, int64_t keep_builds,
			  db_artifacts_usage_fn done, void *arg);
int db_pg_artifacts_oldest(struct db *db, int64_t after_id, size_t max, db_artifacts_oldest_fn done,
			   void *arg);
int db_pg_artifacts_delete(struct db *db, const int64_t *ids, size_t n,
			   db_artifacts_deleted_fn done, void *arg);

/* Shared by both backends (db-sqlite-users.c, db-sqlite-tokens.c,
 * db-sqlite-sessions.c): the checks of a user's values, of a token's name
 * and of a token found (revoked, expired, lacking need: its error, else
 * 0); a session's verdict (0 live, 1 to be deleted) and whether its use is
 * to be noted. */
int db_users_check(struct db *db, const struct db_user_set *u, bool adding);
int db_token_check_name(struct db *db, const char *name);
int db_token_judge(struct db *db, const struct db_token *t, unsigned need, int64_t now);
bool db_token_note_use(const struct db_token *t, int64_t now);
bool db_session_dead(const struct db_session *s, int64_t now, int64_t idle_s);
bool db_session_note_use(const struct db_session *s, int64_t now, int64_t idle_s);

#endif
