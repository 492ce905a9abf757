/*
 * Private structures shared by the build engine's files: engine.c (queue,
 * distributor, lifecycle), workers.c (worker connections and the protocol)
 * and build.c (running a build step by step).
 */
#ifndef KILN_ENGINE_INT_H
#define KILN_ENGINE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>
#include <uv.h>

#include "common/buf.h"
#include "db/db.h" /* struct db_ids_waiter */
#include "master/engine.h"
#include "master/wsconn.h"

struct config_builder;
struct config_step;
struct config_worker;
struct proto_enc;
struct proto_session;
struct build;
struct step;
struct rcmd_answer;
struct lock_mgr;    /* slice "locks" */
struct lock_handle; /* slice "locks" */

struct dispatch_hooks; /* slice "dispatch" */

/* A remote command in flight on a worker (start_command .. complete). */
struct rcmd_ops {
	/* one [key, value] pair of an update, in order */
	void (*update)(void *ud, const char *key, const msgpack_object *value);
	/* status 0: complete with nil; KILN_EPROTO: failure text in 'failure'
	 * (or the start_command was refused); other negative: connection lost
	 * or the worker did not answer in time.  Last call. */
	void (*complete)(void *ud, int status, const char *failure);
	/* File transfers (slice "artifacts"), all optional: NULL refuses the
	 * message with an is_exception answer.  Each handler gets the answer
	 * token of the worker's message and must call rcmd_answer_send()
	 * on it exactly once, at once or on a later loop turn (after the
	 * chunk is on disk: the worker waits for it, which is the upload's
	 * only backpressure).  'data' is borrowed for the call only. */
	void (*write)(void *ud, const char *data, size_t len, struct rcmd_answer *a);
	void (*close_writer)(void *ud, struct rcmd_answer *a);
	void (*utime)(void *ud, double atime, double mtime, struct rcmd_answer *a);
	void (*unpack)(void *ud, struct rcmd_answer *a);
	/* download: answer with the next <= length bytes (empty: end of file) */
	void (*read)(void *ud, size_t length, struct rcmd_answer *a);
	void (*close_reader)(void *ud, struct rcmd_answer *a);
};

/* The answer owed to one worker transfer message (see rcmd_ops.write).
 * send(a, status, message, data, len): status 0 answers with the bytes
 * (bin; len 0 is an empty bin) when data is non-NULL, else nil; a negative
 * status answers is_exception with message (or err_str(status)).  It frees
 * a; after the connection closed it only frees it. */
struct rcmd_answer {
	void (*send)(struct rcmd_answer *a, int status, const char *message, const void *data,
		     size_t len);
};
static inline void rcmd_answer_send(struct rcmd_answer *a, int status, const char *message,
				    const void *data, size_t len)
{
	a->send(a, status, message, data, len);
}

struct rcmd {
	char id[24];
	const struct rcmd_ops *ops;
	void *ud;
	bool dead;         /* finished or forgotten: unlinked, freed on a later turn */
	struct rcmd *next; /* in w->cmds, or in engine->dead_cmds once dead */
	/* slice "reattach": messages (update/complete) received for it, and an
	 * interrupt asked while its worker was away (sent on its return) */
	uint64_t nrecv;
	bool interrupt_held;
	bool transfer; /* a file transfer: its requests die with the connection */
};

/* One worker connection. */
struct wconn {
	struct engine *e;
	struct ws_conn *ws;              /* NULL once closed */
	const struct config_worker *cfg; /* borrowed: lives in m->cfg */
	int64_t workerid;
	struct proto_session *sess;
	char *basedir; /* owned: worker's basedir from get_worker_info */
	bool nt;       /* worker reports system "nt" */
	bool attached; /* attach sequence complete: may run builds */
	bool closed;
	bool linked;       /* in engine->workers */
	bool probed;       /* a newcomer with its name is being decided on */
	int running;       /* builds running here */
	struct rcmd *cmds; /* owned list */
	/* protocol violations (answers to requests never made, updates for
	 * unknown commands, unknown ops) in the current window: the first is
	 * logged, the rest counted and summarised; past the cap, disconnected */
	uint64_t viol_window_ms; /* start of the window (clock_mono_ms) */
	unsigned viol_in_window; /* counted in it */
	unsigned viol_unlogged;  /* counted and not logged yet */
	bool viol_closing;       /* disconnected for them: further messages are dropped */
	bool paused;             /* slice "uimisc": paused (JSON-RPC pause): no new builds */
	bool pause_set;   /* a pause or unpause came while its stored pause was read: it wins */
	uint64_t seen_ms; /* slice "uimisc": clock_mono_ms of its last last_seen write */
	struct wconn *next, *prev; /* in engine->workers */
	int refs;
	/* slice "workerctl": JSON-RPC stop (graceful: paused is held true too, so
	 * nothing new starts; `shutdown` is sent once running is 0) and kill */
	bool graceful;
	bool shutdown_sent;
	/* owned: closes the connection if the worker does not drop it itself */
	void *stop_guard;
	/* slice "reattach" (workers.c): the worker advertised kiln_reattach;
	 * away: closed, its commands held for the grace (in engine->away) */
	bool can_reattach;
	bool away;
	void *away_timer; /* owned while away */
	struct wconn *away_next;
	/* slice "reconfig": its worker left the configuration: no new build; the
	 * connection is closed once its running builds end (cfg still points
	 * into the retired generation that declared it) */
	bool removed;
};

struct engine {
	struct master *m;
	struct wconn *workers; /* connected (and attaching) */
	struct build *builds;  /* running */
	int64_t *builderids;   /* per cfg->builder[i] */
	int64_t *workerids;    /* per cfg->worker[i] (their rows, upserted at start and reload) */
	/* Indexes over the configuration, built once, so that no event scans
	 * names (10,000 workers made those scans quadratic). */
	size_t **worker_builders; /* per cfg worker: indexes of its builders */
	size_t *nworker_builders;
	size_t **builder_workers; /* per cfg builder: indexes of its workers */
	struct wconn **conn;      /* per cfg worker: its live connection or NULL */
	/* cfg builder indexes sorted by name and by builder id (filled once
	 * the ids are known): lookups by name or id are a binary search, not a
	 * scan (100,000 builders made the scans quadratic at start) */
	size_t *builder_by_name;
	size_t *builder_by_id;
	/* per cfg builder: its claims in flight (engine_claim_send), of the list */
	unsigned *claiming;
	struct engine_claim *claims;
	/* builds of builders with locks whose start is being answered (they
	 * take their locks once it is): no other such build starts meanwhile */
	unsigned opening_locked;
	/* the distributor's listing of the queued builders in flight, and a
	 * kick that came meanwhile (engine.c) */
	struct engine_listing *listing;
	bool relist;
	uint64_t next_command_id;
	uv_idle_t kick; /* runs the distributor on the next loop turn */
	bool kick_pending;
	bool stopping;
	/* slice "reconfig": a reload's ids asked on the loop (PostgreSQL,
	 * engine_reconfig_prepare), and the ids it got for ready_cfg */
	struct engine_prep *prep;
	struct config *ready_cfg;
	int64_t *ready_bids, *ready_wids;
	/* how long a worker gets to confirm an interrupt before the master
	 * gives the command up (Buildbot waits forever; a lost answer hangs
	 * its build); ENGINE_INTERRUPT_TIMEOUT_MS, lowered by tests */
	uint64_t interrupt_timeout_ms;
	/* how long a connected worker gets to answer the print that checks it
	 * when another connection claims its name; ENGINE_DUP_PROBE_MS */
	uint64_t dup_probe_ms;
	struct ws_conn_ops worker_ops;
	/* in-memory retry counts of the requests being retried (a worker dying
	 * on their build); at most KILN_MAX_RETRY_ENTRIES, the oldest dropped */
	struct retry_count {
		int64_t brid;
		int n;
	} * retries;
	size_t nretries, retries_alloc;
	/* commands finished or forgotten this turn, freed on a later one */
	struct rcmd *dead_cmds;
	uv_idle_t reap;
	int handles_open; /* kick and reap; e is freed at 0 */
	/* slice "locks": the lock manager (locks.h) */
	struct lock_mgr *locks; /* owned */
	/* slice "dispatch": the distributor's Lua hooks (dispatch-hooks.h) */
	struct dispatch_hooks *hooks; /* owned */
	/* slice "reattach": closed connections whose commands wait for their
	 * worker to come back (workers.c), each referenced */
	struct wconn *away;
	/* slice "reconfig": the generation whose lock declarations e->locks
	 * borrows (referenced; a reconfig may not change them), and the
	 * generations a reconfig replaced that removed workers' connections may
	 * still point into (referenced; engine_reconfig_gc drops them) */
	struct config *cfg_locks;
	/* the generation the running reporters were started with (referenced:
	 * their kinds keep pointers into its declarations; engine_pin_reporters) */
	struct config *cfg_reporters;
	struct engine_retired {
		struct config *cfg;
		uint64_t at_ms; /* clock_mono_ms when replaced */
	} * retired;
	size_t nretired, retired_alloc;
	int64_t *removed_ids; /* builders reconfigs removed (engine_builder_removed) */
	size_t nremoved_ids, removed_ids_alloc;
};

/* One running build (build.c). */
struct build {
	struct engine *e;
	const struct config_builder *bcfg; /* borrowed: lives in cfg */
	struct config *cfg; /* slice "reconfig": referenced: the generation it started with */
	struct wconn *w;    /* referenced */
	int64_t buildid, number, brid, bsid, builderid;
	double started_at;     /* as stored (clock_wall) */
	int64_t *merged;       /* owned: requests collapsed into this build (claimed) */
	int64_t *merged_bsids; /* owned: their buildsets, in the same order */
	size_t nmerged;
	/* the buildset's first sourcestamp (owned; NULL when unset) */
	char *ss_branch, *ss_revision, *ss_repository, *ss_project, *ss_codebase;
	/* every sourcestamp of the buildset, one per codebase (one allocation,
	 * db_buildset_sourcestamps): %(src:CODEBASE:attr)s */
	struct db_sourcestamp *ss_all;
	size_t nss_all;
	bool has_patch;                /* a sourcestamp of its buildset has a patch (read then) */
	struct db_patch_data *patches; /* owned: those patches, read as it starts */
	size_t npatches;
	size_t next_step;
	int results;
	bool terminate;
	bool lost; /* worker connection lost */
	bool stop_requested;
	bool finished;
	bool db_failed;        /* a database write failed: the build ends EXCEPTION */
	char *db_error;        /* owned: that failure, when no log could take it */
	char *stop_reason;     /* owned */
	struct buf text;       /* failed steps' summaries, for state_string */
	bool text_full;        /* text reached its cap (ends " ...") */
	json_t *props;         /* owned: {"name": [value, "source"]}, as stored */
	struct step *step;     /* the running step (steps/step.h), NULL between steps */
	bool starting;         /* inside step_begin() (build_run_next) */
	bool ended_at_start;   /* and the step ended there */
	unsigned ended_in_row; /* steps that ended at their start this loop turn */
	/* PostgreSQL: the next step waits for ids (db_ids_wait) */
	struct db_ids_waiter ids_wait;
	/* the running step's interrupt deadline, or a database failure's
	 * command abort on the next turn (steps/step.c) */
	uv_timer_t interrupt_timer;
	struct build *next;
	/* slice "locks": the builder's and the current step's locks (build-locks.c) */
	struct lock_handle *locks;             /* owned; NULL: none */
	struct lock_handle *step_locks;        /* owned; NULL: none */
	size_t step_locks_idx;                 /* the step (in bcfg->steps) they are for */
	void (*locks_resume)(struct build *b); /* build_run_next, once a set is held */
	int step_attempts; /* slice "misc": failed attempts of the step (its retry = N) */
	/* slice "steps20": the secrets' patterns every log masker of the build
	 * shares (master/logmask.h), made at its first log (steps/step.c) */
	struct logmask_set *maskset; /* owned; NULL: not made yet */
	/* issue 14: its row and its buildset's inputs are being read (buildid
	 * and number are 0 until then; build.c's struct build_open) */
	struct build_open *open;
};

/* engine.c */
#define ENGINE_INTERRUPT_TIMEOUT_MS 30000
#define ENGINE_DUP_PROBE_MS 10000
/* Index of a configured worker in cfg->worker[]. */
size_t engine_worker_index(const struct engine *e, const struct config_worker *cw);
/* The row id of a worker of the current configuration, 0 for one a reload
 * removed (no database read: the ids are kept from the upserts). */
int64_t engine_worker_id(const struct engine *e, const struct config_worker *cw);
int engine_builder_index(struct engine *e, int64_t builderid);
/* Called by build.c when a build has ended and its row is written. */
void engine_build_done(struct engine *e, struct build *b);
/* Takes a dead command; it is freed on a later loop turn. */
void engine_defer_free_command(struct engine *e, struct rcmd *c);
/* slice "reconfig": drops the retired generations nothing points into any
 * more (engine_reconfig_release: all of them, at engine_free); a removed
 * worker's last build ended: its connection is closed. */
void engine_reconfig_gc(struct engine *e);
void engine_reconfig_release(struct engine *e);
void engine_reconfig_worker_idle(struct wconn *w);
/* w has one build (or a held slot) less: a stopping or removed worker may
 * go, a latent one starts its idle time. */
void engine_worker_slot_freed(struct engine *e, struct wconn *w);

/* workers.c */
void wconn_ref(struct wconn *w);
void wconn_unref(struct wconn *w);
/* Sends start_command; the rcmd is registered before sending so early
 * updates find it.  Returns 0 (ops->complete will be called exactly once
 * later) or a negative error (ops never called). */
int wconn_start_command(struct wconn *w, const char *name, const char *builder_name,
			struct proto_enc *args, uint32_t nargs, const struct rcmd_ops *ops,
			void *ud, struct rcmd **ret);
int wconn_interrupt(struct wconn *w, struct rcmd *c, const char *builder_name, const char *why);
/* Forgets a command without calling its ops (the master gave up on it).
 * Like a finished one, c stays readable (c->dead set) until a later loop
 * turn, so a handler up the stack may still look at it. */
void wconn_forget_command(struct wconn *w, struct rcmd *c);
/* Joins worker-side path parts with the worker's separator; NULL when the
 * result would pass KILN_MAX_WORKER_PATH. */
char *wconn_path(const struct wconn *w, const char *a, const char *b, const char *c);
void wconn_disconnect_all(struct engine *e);
/* slice "workerctl": Buildbot's worker control.  wconn_stop_gracefully:
 * no new build starts on w; once its running builds have ended it is sent
 * `shutdown` (at once when idle), and closed if it has not dropped the
 * connection itself KILN_WORKER_SHUTDOWN_GUARD_MS later.  wconn_kill: sends
 * `shutdown` and closes the connection now (its builds end RETRY).
 * wconn_build_done: engine_build_done's notice that w has one build less. */
void wconn_stop_gracefully(struct wconn *w);
void wconn_kill(struct wconn *w);
void wconn_build_done(struct wconn *w);

/* build.c */
/* A copy of the build's patch for codebase (NULL: its first), read as it
 * started: 1 and *ret (db_patch_data_release it), 0 if it has none. */
int build_patch(const struct build *b, const char *codebase, struct db_patch_data *ret);

/* merged: requests collapsed into this build, already claimed (copied).
 * The build holds a slot of w from here; it runs once its row is added
 * and its buildset read (b->open until then).  NULL if that cannot be
 * asked: the caller releases the requests.  If the row cannot be added,
 * the build goes and its requests go back to the queue. */
struct build *build_start(struct engine *e, int builder_idx, struct wconn *w, int64_t brid,
			  int64_t bsid, const int64_t *merged, const int64_t *merged_bsids,
			  size_t nmerged);
/* Completes request brid of buildset bsid with results (answered on the
 * loop): then its events, and the schedulers' news (the buildset completed,
 * or failing), then done(arg, r) if done is set (also when it failed, not
 * when it could not be asked).  Errors are logged; returns
 * db_request_complete_async's. */
int build_complete_request(struct master *m, int64_t brid, int64_t bsid, int results, double now,
			   engine_done_fn done, void *arg);
/* True if b builds the same branch line (codebase, repository, project,
 * branch) as l. */
struct db_request_line;
bool build_same_line(const struct build *b, const struct db_request_line *l);
void build_stop(struct build *b, const char *reason);
/* Checks a database write on b's path: a failure ends the build EXCEPTION
 * (the running step's command is given up).  Returns r. */
int build_db_check(struct build *b, int r, const char *what);
/* Sets a build property (stored, and kept in b->props; consumes value). */
void build_set_property(struct build *b, const char *name, json_t *value, const char *source);
/* The running step s ended (steps/step.c): the results are combined and
 * the next step starts.  state: the step's state string, may be NULL. */
void build_step_ended(struct build *b, const struct config_step *s, int results, const char *state);
/* Buildbot's computeResultAndTermination: the build's results after a step
 * of s ended step_results; sets *terminate when later steps (but
 * always_run ones) must not run. */
int build_combine(const struct config_step *s, int step_results, int build_results,
		  bool *terminate);
/* The worker went away: the build ends RETRY. */
void build_worker_lost(struct build *b);
void build_free(struct build *b);
int64_t build_id(const struct build *b);
int64_t build_request_id(const struct build *b);
struct wconn *build_worker(const struct build *b);
int build_results(const struct build *b);

/* build-locks.c (slice "locks"): the builder's locks of a build */
/* Takes b's builder locks after the build started: true when the build may
 * go on now (no locks, all held, or an error that ends it), false when it
 * waits (state string "waiting for lock ..."; resume(b) runs once all are
 * held, from locks_dispatch() on a later turn). */
bool build_locks_take(struct build *b, void (*resume)(struct build *));
bool build_locks_waiting(const struct build *b);
/* A stop: a build waiting for its locks stops waiting and ends CANCELLED
 * (through resume, no step run); true if so.  At shutdown it is left. */
bool build_locks_stop(struct build *b);
/* Builds waiting for locks on a worker that went away end RETRY. */
void build_locks_check_workers(struct engine *e);
/* build_run_next, before step s (b->next_step already past it): true to
 * start it now (no locks, or held); false when it waits (b->next_step set
 * back to s, state string "waiting for lock ...": build_run_next runs again
 * once they are held). */
struct config_step;
bool build_locks_take_step(struct build *b, const struct config_step *s);
/* build_run_next, first: the step that ended lets its locks go. */
void build_locks_step_end(struct build *b);
void build_locks_release_step(struct build *b);
/* Releases (or gives up) all of b's locks; on every ending path (build_free). */
void build_locks_release(struct build *b);

#endif
