/*
 * A worker's last seen time and its /ws events: see events-workers.h.
 */
#define LOG_SUBSYS "workers"

#include "master/events-workers.h"
#include "master/events.h"
#include "master/master.h"

#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"
#include "db/db.h"

void events_worker(struct master *m, int64_t workerid, const char *event, bool force,
		   uint64_t *last_ms)
{
	uint64_t now = clock_mono_ms();
	if (last_ms && (force || now - *last_ms >= (uint64_t)KILN_WORKER_SEEN_INTERVAL_S * 1000)) {
		*last_ms = now;
		if (db_worker_set_last_seen(m->db, workerid, clock_wall()) < 0)
			log_error("worker %lld: cannot record when it was last seen: %s",
				  (long long)workerid, db_errmsg(m->db));
	}
	if (event)
		events_publish_row(m, DB_WORKERS, "workers", "workerid", workerid, event);
}
