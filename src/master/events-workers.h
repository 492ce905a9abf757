/*
 * A worker's comings and goings (events-workers.c): its "last seen" time in
 * the database and its /ws events in Buildbot's shape ("workers/ID/EVENT"
 * with the worker's row: "connected", "disconnected", "state_updated").
 * Called from the attach and detach code in workers.c (one line each), the
 * message path (last seen, rate-limited) and the pause calls (api-workers.c).
 */
#ifndef KILN_MASTER_EVENTS_WORKERS_H
#define KILN_MASTER_EVENTS_WORKERS_H

#include <stdbool.h>
#include <stdint.h>

struct master;

/* Records now as the worker's last seen time (when force, or when the last
 * record in *last_ms, a clock_mono_ms() value, is KILN_WORKER_SEEN_INTERVAL_S
 * old; *last_ms is then updated; last_ms NULL: not recorded), then, if event is not NULL, publishes
 * "workers/WORKERID/EVENT" with its row.  A failed write is logged. */
void events_worker(struct master *m, int64_t workerid, const char *event, bool force,
		   uint64_t *last_ms);

#endif
