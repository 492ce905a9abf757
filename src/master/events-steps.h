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

/* The routing key of one step event: under_build selects
 * "builds/B/steps/S/EVENT" over "steps/S/EVENT".  Returns what snprintf
 * returns (the key is cut at n - 1 bytes). */
int events_step_key(char *out, size_t n, bool under_build, int64_t buildid, int64_t stepid,
		    const char *event);

#endif
