/*
 * Numbers over time and ETA: named numbers recorded by builds (stored as
 * series per builder and name), the regression check that publishes
 * "numbers/<builderid>/<name>/regression" on the event bus, the built-in
 * duration numbers recorded when a build finishes, and the ETA of running
 * builds and steps and the estimated start of queued requests, from medians
 * cached per builder.  All on the master's loop thread.  docs/API.md
 * "Numbers and ETA", docs/CONFIG.md "regression".
 */
#ifndef KILN_NUMBERS_H
#define KILN_NUMBERS_H

#include <stddef.h>
#include <jansson.h>
#include <stdint.h>

struct master;
struct numbers;

/* The built-in numbers numbers_build_finished() records. */
#define NUMBERS_BUILD_DURATION "build_duration" /* seconds, every finished build */
#define NUMBERS_STEP_DURATION "step_duration:"  /* + the step's name: seconds, each step run */

/* The ETA cache (m->numbers).  numbers_free is NULL-safe. */
struct numbers *numbers_new(void);
void numbers_free(struct numbers *n);

/* Stores value as number name of buildid (a build of builderid; stepid 0:
 * the build's own number) and, when master.lua sets a regression threshold
 * for name on the builder (config_regression_find), compares it with the
 * latest value recorded before this build: past the threshold it publishes
 * "numbers/<builderid>/<name>/regression" (name with '/' as '_') carrying
 * {"builderid", "buildid", "number" (the build's), "name", "old_value",
 * "new_value", "old_buildid", "blamelist" (authors of the build's changes),
 * "changeids"}; the previous value and the build's number and blamelist
 * are read on the loop (issue 14), so the event comes a little after the
 * return.  Returns 0, or a negative error: -EINVAL for an empty name, one
 * longer than KILN_MAX_NUMBER_NAME or with control characters, or a value
 * that is not finite; the db's errors (db_errmsg says).  Nothing is logged
 * but the reads' failures. */
int numbers_record(struct master *m, int64_t builderid, int64_t buildid, int64_t stepid,
		   const char *name, double value);

/* Called once when buildid's row is finished (build.c's build_finish):
 * records build_duration and step_duration:<step name> for each step that
 * ran (as numbers_record, so thresholds apply), and marks the builder's
 * cached medians stale: the next use reads them again with this build (the
 * old ones answer meanwhile).  Errors are logged (the build is already
 * finished; a failed commit stops the master). */
void numbers_build_finished(struct master *m, int64_t buildid);
/* The same for a build whose times the caller holds (a build this master
 * ran: nothing read back). */
struct db_build_times;
void numbers_build_ended(struct master *m, int64_t buildid, const struct db_build_times *times);

/* ETA of a running build of builderid that started at started_at: the
 * median duration of the builder's last KILN_ETA_SAMPLES successful
 * builds.  1 and *ret_eta_at (epoch seconds, started_at + median), or 0
 * when the builder has no successful build yet, when its medians were not
 * read yet (they are being read then, on the loop: issue 14), or when
 * m->numbers is NULL.  Medians are cached per builder and read again at the
 * first use after one of its builds finished. */
int numbers_build_eta(struct master *m, int64_t builderid, double started_at, double *ret_eta_at);
/* Starts reading builderid's medians if they were never read or are
 * stale: a build starting calls it when its "new" event is wanted, so that
 * the event (whose row is read after) carries its ETA. */
void numbers_prefetch(struct master *m, int64_t builderid);
/* Sets "eta" (seconds left, 0 when overdue) and "eta_at" (epoch seconds),
 * or null for both when unknown, on build, a running build as the API
 * renders it; a finished build, or no m->numbers, is left as it is.  The
 * API's builds and their /ws events both carry them this way. */
void numbers_build_eta_fields(struct master *m, json_t *build);
/* The same for a running step named step_name of buildid (median over the
 * steps of that name in the same builds). */
int numbers_step_eta(struct master *m, int64_t buildid, const char *step_name, double started_at,
		     double *ret_eta_at);
/* Estimated start of the queued request brid, at now: the builder's
 * workers are its slots, each running build frees its slot at its ETA
 * (now if overdue), a free slot is free now, and every request ahead in the
 * queue takes the earliest slot for one median build.  1 and
 * *ret_start (epoch seconds), 0 if brid is not queued or its builder has no
 * successful build yet. */
int numbers_request_start(struct master *m, int64_t brid, double now, double *ret_start);

/* The median of v[0..n) (n > 0; v is sorted in place). */
double numbers_median(double *v, size_t n);
/* The start of the request at queue position pos (0 = next) given the
 * times slots[0..nslots) at which each slot is free (sorted in place) and
 * the median build duration: slot (pos mod nslots) of the sorted times,
 * plus (pos / nslots) medians.  nslots > 0. */
double numbers_queue_start(double *slots, size_t nslots, int64_t pos, double median);
/* What a read of queue positions and running builds found
 * (db_requests_queue_info_async), kept a few seconds for
 * numbers_request_start (issue 14: the API's rows are fixed from memory). */
struct db_queue_info;
void numbers_queue_note(struct master *m, const struct db_queue_info *qi);

#endif
