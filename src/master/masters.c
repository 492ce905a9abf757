/*
 * Several masters on one PostgreSQL: the heartbeat and the reaping of
 * masters that stopped (masters.h).
 */
#define LOG_SUBSYS "masters"

#include "master/masters.h"

#include "master/engine.h"
#include "master/events.h"
#include "master/master.h"

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

struct masters {
	struct master *m; /* NULL once stopped */
	uv_timer_t beat;
	int refs;     /* the timer handle, and a reap in flight */
	bool reaping; /* one reap at a time */
};

static void masters_unref(struct masters *ms)
{
	if (--ms->refs == 0)
		free(ms);
}

static void masters_reaped(void *arg, int r, const struct db_master_dead *v, size_t n,
			   const char *err)
{
	struct masters *ms = arg;
	struct master *m = ms->m;
	ms->reaping = false;
	if (!m || r == -ECANCELED) {
		masters_unref(ms);
		return;
	}
	if (r < 0)
		log_error("cannot look for masters that stopped: %s", err ? err : "failed");
	for (size_t i = 0; i < n; i++) {
		log_warn("master %s stopped heartbeating (none for %.0f s): declared dead; %lld "
			 "of its builds end RETRY, %lld requests go back to the queue",
			 v[i].name, m->cfg->master_dead_after, (long long)v[i].builds,
			 (long long)v[i].requests);
		events_publish_row(m, DB_MASTERS, "masters", "masterid", v[i].masterid, "stopped");
	}
	if (n && m->engine)
		engine_kick(m->engine); /* their requests, for this master's workers */
	masters_unref(ms);
}

static void masters_beat(uv_timer_t *t)
{
	struct masters *ms = t->data;
	struct master *m = ms->m;
	double now = clock_wall();
	if (db_master_set_active(m->db, m->masterid, true, now) < 0)
		log_error("cannot record this master's heartbeat: %s", db_errmsg(m->db));
	if (!ms->reaping) {
		ms->refs++;
		if (db_masters_reap_async(m->db, m->masterid, now - m->cfg->master_dead_after, now,
					  masters_reaped, ms) < 0) {
			log_error("cannot look for masters that stopped: %s", db_errmsg(m->db));
			ms->refs--;
		} else {
			ms->reaping = true;
		}
	}
	if (m->engine)
		engine_kick(m->engine); /* requests the other masters added */
}

int masters_start(struct master *m, struct masters **ret)
{
	*ret = NULL;
	if (!db_is_postgresql(m->db))
		return 0;
	struct masters *ms = xcalloc(1, sizeof(*ms));
	ms->m = m;
	ms->refs = 1;
	uv_timer_init(m->loop, &ms->beat);
	ms->beat.data = ms;
	uint64_t every = (uint64_t)(m->cfg->master_heartbeat * 1000);
	uv_timer_start(&ms->beat, masters_beat, every, every);
	*ret = ms;
	return 0;
}

static void masters_closed(uv_handle_t *h)
{
	masters_unref(h->data);
}

void masters_stop(struct masters *ms)
{
	if (!ms)
		return;
	ms->m = NULL;
	uv_close((uv_handle_t *)&ms->beat, masters_closed);
}
