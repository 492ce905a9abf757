/*
 * Step events (events-steps.h): the keys Buildbot 3.7's steps resource
 * produces, each with the step's row read back once from the current batch.
 * The cheap path matters: steps start and finish on every build, and most
 * masters have no browser watching, so with no matching subscriber only
 * the sequence numbers move.
 */
#define LOG_SUBSYS "events"

#include "master/events-steps.h"
#include "master/events.h"
#include "master/master.h"

#include "common/log.h"
#include "db/db.h"

#include <stdio.h>

int events_step_key(char *out, size_t n, bool under_build, int64_t buildid, int64_t stepid,
		    const char *event)
{
	if (under_build)
		return snprintf(out, n, "builds/%lld/steps/%lld/%s", (long long)buildid,
				(long long)stepid, event);
	return snprintf(out, n, "steps/%lld/%s", (long long)stepid, event);
}

/* The step as db_list renders it (new reference), NULL if it cannot be read. */
static json_t *events_steps_row(struct master *m, int64_t stepid)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)stepid);
	const char *vals[] = {ids};
	struct db_filter f = {.field = "stepid", .op = DB_OP_EQ, .values = vals, .nvalues = 1};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = -1};
	json_t *items = NULL;
	if (db_list(m->db, DB_STEPS, &q, &items, NULL) < 0 || json_array_size(items) != 1) {
		log_warn("step %lld: cannot read the row back for its event: %s", (long long)stepid,
			 db_errmsg(m->db));
		json_decref(items);
		return NULL;
	}
	json_t *row = json_incref(json_array_get(items, 0));
	json_decref(items);
	return row;
}

/* Publishes each of events[0..n) under both keys, in Buildbot's order
 * (the build's key first). */
static void events_steps_publish(struct master *m, int64_t buildid, int64_t stepid,
				 const char *const *events, size_t n)
{
	if (!m || !m->events)
		return;
	if (events_nsubs(m->events) == 0) { /* the common case: no browser at all */
		for (size_t i = 0; i < 2 * n; i++)
			events_count(m);
		return;
	}
	char keys[4][96];
	bool wanted[4], any = false;
	for (size_t i = 0; i < 2 * n && i < 4; i++) {
		events_step_key(keys[i], sizeof(keys[i]), i % 2 == 0, buildid, stepid,
				events[i / 2]);
		wanted[i] = events_wanted(m, keys[i]);
		any |= wanted[i];
	}
	json_t *row = any ? events_steps_row(m, stepid) : NULL;
	for (size_t i = 0; i < 2 * n && i < 4; i++) {
		if (wanted[i] && row)
			events_publish(m, keys[i], json_incref(row));
		else
			events_count(m);
	}
	json_decref(row);
}

void events_step_started(struct master *m, int64_t buildid, int64_t stepid)
{
	static const char *const ev[] = {"new", "started"};
	events_steps_publish(m, buildid, stepid, ev, 2);
}

void events_step_finished(struct master *m, int64_t buildid, int64_t stepid)
{
	static const char *const ev[] = {"finished"};
	events_steps_publish(m, buildid, stepid, ev, 1);
}
