/*
 * Buildbot's log events on the event bus (events.h): "logs/ID/new",
 * "logs/ID/append" and "logs/ID/finished", each with the log as
 * /api/v2/logs/ID renders it (num_lines tells a viewer what to fetch; the
 * lines themselves are never pushed, as in Buildbot).
 */
#ifndef KILN_EVENTS_LOGS_H
#define KILN_EVENTS_LOGS_H

#include <stdint.h>

struct master;

enum events_log_kind {
	EVENTS_LOG_NEW,
	EVENTS_LOG_APPEND,
	EVENTS_LOG_FINISHED,
};

/* Publishes log logid's event, after the write (it reads the row from the
 * open batch).  Called on every append of every step: it costs a pointer
 * test when no /ws client is attached, and a walk of the subscribers' paths
 * when none matches; only then is the row read.  Events nobody wants are
 * not numbered (numbers only show in resync frames, so no client can see
 * the difference).  On the master's loop thread; never fails (a row that
 * cannot be read is logged by events_publish_row). */
void events_log(struct master *m, int64_t logid, enum events_log_kind kind);

#endif
