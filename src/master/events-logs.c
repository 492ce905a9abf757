/*
 * Log events for /ws subscribers (the log viewer follows a running log by
 * them): the step code calls events_log() after each append and finish,
 * and this file keeps that call close to free when nobody listens.
 */
#define LOG_SUBSYS "events"

#include "master/events-logs.h"
#include "master/events.h"
#include "master/master.h"

#include "db/db.h"

#include <inttypes.h>
#include <stdio.h>

static const char *const events_log_names[] = {
	[EVENTS_LOG_NEW] = "new",
	[EVENTS_LOG_APPEND] = "append",
	[EVENTS_LOG_FINISHED] = "finished",
};

void events_log(struct master *m, int64_t logid, enum events_log_kind kind)
{
	if (!m || (events_nsubs(m->events) == 0 && !events_forwarding(m->events)))
		return;
	char key[64];
	snprintf(key, sizeof(key), "logs/%" PRId64 "/%s", logid, events_log_names[kind]);
	if (!events_wanted(m, key))
		return;
	events_publish_row(m, DB_LOGS, "logs", "logid", logid, events_log_names[kind]);
}
