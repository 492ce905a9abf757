/*
 * Artifact retention (slice "artcli"): the master deletes the oldest
 * artifacts, rows first and then their files, when the global
 * `artifacts = { max_bytes, keep_days, keep_builds }` says so; after each
 * pass of the general retention (retention.h, slice "retention": this
 * object owns that runner, whose one timer drives both) and after each
 * upload.
 *
 * artifact_retention_pick() is the pure part: given a batch of rows oldest
 * first and what is known of the rest, which to delete.  The runner reads
 * the rows on the loop thread, deletes them in one committed write (so the
 * API answers 404 at once), then removes the files on libuv's thread pool:
 * a download already being served keeps its open file (POSIX), and the
 * artifacts of a build still running are never picked, so nothing deletes
 * what an upload is writing.
 */
#ifndef KILN_MASTER_ARTIFACT_RETENTION_H
#define KILN_MASTER_ARTIFACT_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct master;
struct db_artifact_age;

struct artifact_retention_policy {
	uint64_t max_bytes;  /* 0: no cap on the total */
	double keep_days;    /* 0: no age limit */
	int64_t keep_builds; /* 0: no limit on builds with artifacts */
};

/* What the picker knows besides the batch; total_bytes goes down by what
 * it picks, so the next batch is judged against the rest. */
struct artifact_retention_state {
	int64_t total_bytes;       /* bytes of every artifact not yet picked */
	int64_t keep_from_buildid; /* db_artifacts_usage(): lower build ids are past keep_builds */
	double now;                /* wall clock, seconds */
};

/*
 * Chooses which of rows[0..n) (oldest first) to delete: an artifact older
 * than keep_days, of a build older than keep_from_buildid, or while the
 * total is over max_bytes (oldest first), provided its build is done.
 * Writes their ids in order to ret_ids (room for n) and returns how many.
 * *ret_more: the last row qualified, so a later batch may hold more.
 */
size_t artifact_retention_pick(const struct artifact_retention_policy *p,
			       struct artifact_retention_state *st,
			       const struct db_artifact_age *rows, size_t n, int64_t *ret_ids,
			       bool *ret_more);

/* The runner, with the general retention's (retention.h) inside. */
struct artifact_retention;
/* Starts it on m's loop with m's config (the first pass on the next loop
 * turn).  Returns 0 and *ret or a libuv error. */
int artifact_retention_start(struct master *m, struct artifact_retention **ret);
/* Asks for a pass soon (after an upload); coalesced with one running.
 * NULL-safe. */
void artifact_retention_kick(struct artifact_retention *r);
/* Stops the timers; the object frees itself once its thread-pool job (if
 * any) has ended, so the loop must run after this.  NULL-safe. */
void artifact_retention_stop(struct artifact_retention *r);

#endif
