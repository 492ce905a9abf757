/*
 * Retention (slice "retention"): the master purges what master.lua's
 * `retention = { ... }` says has expired (builds by age and by count per
 * builder, logs' content, test results, numbers, changes), on the loop in
 * short batches (db_retention_batch: each its own write, about
 * RETENTION_BATCH_MS of work, then the loop runs other callbacks before the
 * next one), and removes the artifact files of purged builds on the thread
 * pool once their rows are committed.  A pass runs at the start (the
 * loop's first turn) and then every `retention.interval` seconds (600 by
 * default);
 * the same timer drives the artifacts' own limits (artifact-retention.h),
 * which owns this runner.  docs/OPERATING.md "Retention".
 */
#ifndef KILN_MASTER_RETENTION_H
#define KILN_MASTER_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct master;
struct config;
struct db_retention_policy;
struct db_artifact_file;

#define RETENTION_BATCH_MS 10.0  /* work of one batch (the commit comes on top) */
#define RETENTION_BATCH_ROWS 500 /* top-level rows one batch deletes at most */
#define RETENTION_INTERVAL_S 600 /* default retention.interval */

/* What /metrics shows (loop thread). */
struct retention_stats {
	uint64_t passes;
	uint64_t builds, logs, test_results, numbers, changes;
	uint64_t buildrequests, buildsets, artifacts, files_failed;
	double worst_batch_s; /* the longest batch (its work, not its commit; on
			       * PostgreSQL until its commit is answered) */
	double last_pass_s;   /* wall time of the last pass, first batch to last */
};
extern struct retention_stats retention_stats;

/* True if cfg sets any limit of retention = { } (artifacts aside), globally
 * or for a builder. */
bool retention_configured(const struct config *cfg);
/* The cut-offs of cfg at wall time now, with the builders' own ones in
 * ret->builders (allocated: retention_policy_release; resolve them with
 * db_retention_resolve before the first batch). */
void retention_policy(const struct config *cfg, double now, struct db_retention_policy *ret);
void retention_policy_release(struct db_retention_policy *p);
/* Removes the files (and extracted directories) of deleted artifact rows
 * under BASEDIR/artifacts, then the directories left empty; blocking (the
 * thread pool, or a tool).  Returns how many could not be removed. */
size_t retention_remove_files(const char *basedir, const struct db_artifact_file *f, size_t n);

struct retention;
/* after_pass(ud, artifacts_deleted): called on the loop after each pass. */
typedef void (*retention_after_fn)(void *ud, bool artifacts_deleted);
/* Starts the timer on m's loop; the policy is read from m->cfg at each pass
 * (a reconfig applies at the next one).  0 or a libuv error. */
int retention_start(struct master *m, retention_after_fn after, void *ud, struct retention **ret);
/* A pass now (coalesced with one running).  NULL-safe. */
void retention_kick(struct retention *r);
/* Stops; frees itself once its thread-pool job (if any) ended: the loop
 * must run after this.  NULL-safe. */
void retention_stop(struct retention *r);

#endif
