/*
 * Step events on /ws in Buildbot 3.7's shape (master/buildbot/data/steps.py):
 * "builds/BUILDID/steps/STEPID/EVENT" and "steps/STEPID/EVENT" with the step
 * entity as the REST API renders it.  Kiln adds and starts a step at once,
 * so "new" and "started" follow each other.  When no /ws subscriber
 * matches, nothing is read or encoded: the events are only numbered.
 */
#ifndef KILN_EVENTS_STEPS_H
#define KILN_EVENTS_STEPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct master;

/* A step was stored as started: its "new" then "started" events. */
void events_step_started(struct master *m, int64_t buildid, int64_t stepid);
/* A step was stored as finished: its "finished" events. */
void events_step_finished(struct master *m, int64_t buildid, int64_t stepid);

/* Minimum spacing of one step's "updated" events (ms): a chatty step sends
 * at most 1000 / KILN_STEP_UPDATED_MIN_MS of them a second. */
#define KILN_STEP_UPDATED_MIN_MS 250

/* A running step changed (its state string, a URL, its output grew): its
 * "updated" events (Buildbot's setStepStateString / addStepURL), rate
 * limited per step: the first change is sent at once, later ones within
 * KILN_STEP_UPDATED_MIN_MS of the last send are coalesced into one sent
 * when the interval ends (a timer on m->loop; without a loop they wait for
 * the next change after it).  With no /ws subscriber for either key
 * nothing is kept, read or numbered. */
void events_step_updated(struct master *m, int64_t buildid, int64_t stepid);
/* The step ended or was freed: its pending "updated" event is dropped
 * (its "finished" event carries the final row) and its state freed. */
void events_step_forget(struct master *m, int64_t stepid);

/* Tests only: fn (when not NULL) is called instead of publishing each
 * "updated" event the limiter lets through (no database, no connection). */
void events_step_updated_sink(void (*fn)(struct master *m, int64_t buildid, int64_t stepid));

/* The routing key of one step event: under_build selects
 * "builds/B/steps/S/EVENT" over "steps/S/EVENT".  Returns what snprintf
 * returns (the key is cut at n - 1 bytes). */
int events_step_key(char *out, size_t n, bool under_build, int64_t buildid, int64_t stepid,
		    const char *event);

#endif
