/*
 * Several masters on one PostgreSQL: the heartbeat and the reaping of
 * masters that stopped (masters.h).
 */
#define LOG_SUBSYS "masters"

#include "master/masters.h"

#include "master/changes/poller.h"
#include "master/engine.h"
#include "master/events.h"
#include "master/master.h"
#include "master/sched/sched.h"

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The lease of the services that run once across masters. */
#define MASTERS_LEASE "services"

struct masters {
	struct master *m; /* NULL once stopped */
	uv_timer_t beat;
	uv_timer_t expire;   /* the lease's time, by this master's clock */
	int refs;            /* the timer handles, and a reap or lease call in flight */
	bool reaping;        /* one reap at a time */
	bool leasing;        /* one lease call at a time */
	bool leading;        /* this master holds the lease: its pollers and timed schedulers run */
	bool lease_failing;  /* the last lease call failed (logged once a streak) */
	uint64_t lease_sent; /* uv_now() when the call in flight was sent */
	/* the other masters heard from (their "h" lines), for the events'
	 * forwarding: on while one was heard within dead_after */
	uint64_t heard_at;
	int64_t heard_from[16];
	size_t nheard;
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

/* The lease came or went: the services start or stop here. */
static void masters_lead(struct masters *ms, bool lead)
{
	struct master *m = ms->m;
	if (ms->leading == lead)
		return;
	ms->leading = lead;
	if (!lead)
		uv_timer_stop(&ms->expire);
	log_info("%s the services' lease (pollers and timed schedulers run on one master)",
		 lead ? "this master holds" : "this master gave up");
	pollers_lead(m->pollers, lead);
	sched_lead(m->sched, lead);
}

static void masters_expired(uv_timer_t *t)
{
	struct masters *ms = t->data;
	if (!ms->m || !ms->leading)
		return;
	log_warn("the services' lease was not renewed in time: its services stop here (another "
		 "master may take it)");
	masters_lead(ms, false);
}

static void masters_leased(void *arg, int r, bool held, const char *err)
{
	struct masters *ms = arg;
	struct master *m = ms->m;
	ms->leasing = false;
	if (!m || r == -ECANCELED) {
		masters_unref(ms);
		return;
	}
	if (r < 0) {
		if (!ms->lease_failing)
			log_error("cannot take or renew the services' lease: %s (logged once until "
				  "it works)",
				  err ? err : "failed");
		ms->lease_failing = true;
		masters_unref(ms); /* a holder keeps it until its time is up (expire) */
		return;
	}
	ms->lease_failing = false;
	if (held) {
		/* held until lease_sent + dead_after by our clock at the latest (the
		 * server counts from later): step down half a beat before */
		uint64_t until = ms->lease_sent + (uint64_t)(m->cfg->master_dead_after * 1000) -
				 (uint64_t)(m->cfg->master_heartbeat * 500);
		uint64_t now = uv_now(m->loop);
		uv_timer_start(&ms->expire, masters_expired, until > now ? until - now : 0, 0);
	}
	masters_lead(ms, held);
	masters_unref(ms);
}

static void masters_lease(struct masters *ms)
{
	struct master *m = ms->m;
	if (ms->leasing)
		return;
	ms->refs++;
	ms->lease_sent = uv_now(m->loop);
	if (db_lease_async(m->db, MASTERS_LEASE, m->masterid, m->cfg->master_dead_after,
			   masters_leased, ms) < 0) {
		log_error("cannot take or renew the services' lease: %s", db_errmsg(m->db));
		ms->refs--;
		return;
	}
	ms->leasing = true;
}

/* "h MASTERID": this master is here (each beat, and in answer to a master
 * heard for the first time, so it forwards its events at once too). */
static void masters_hello(struct masters *ms)
{
	char line[40];
	snprintf(line, sizeof(line), "h %" PRId64, ms->m->masterid);
	if (db_notify(ms->m->db, line) < 0)
		log_warn("cannot tell the other masters: %s", db_errmsg(ms->m->db));
}

static void masters_on_line(void *arg, const char *line)
{
	struct masters *ms = arg;
	struct master *m = ms->m;
	if (!m)
		return;
	if (line[0] == 'h' && line[1] == ' ') {
		char *end = NULL;
		long long id = strtoll(line + 2, &end, 10);
		if (*end || id <= 0 || id == m->masterid)
			return;
		ms->heard_at = uv_now(m->loop);
		if (!events_forwarding(m->events))
			log_info("another master (id %lld) shares the database: events cross to it",
				 id);
		events_forward(m->events, true);
		bool known = false;
		for (size_t i = 0; i < ms->nheard; i++)
			known |= ms->heard_from[i] == id;
		if (!known) {
			if (ms->nheard < sizeof(ms->heard_from) / sizeof(ms->heard_from[0]))
				ms->heard_from[ms->nheard++] = id;
			masters_hello(ms);
		}
		return;
	}
	if (line[0] == 'p' && line[1] == ' ') { /* "poll now", asked on another master */
		if (ms->leading)
			pollers_poll(m->pollers, line[2] ? line + 2 : NULL);
		return;
	}
	if (!strcmp(line, "lost")) {
		log_warn("events of the other masters were lost (a reconnection to the "
			 "database, or a master past its cap of lines): /ws subscribers resync");
		events_remote_lost(m);
		return;
	}
	if (events_remote_line(m, line) < 0)
		log_warn("a line from another master that is not an event: '%.80s'", line);
}

static void masters_beat(uv_timer_t *t)
{
	struct masters *ms = t->data;
	struct master *m = ms->m;
	double now = clock_wall();
	masters_hello(ms);
	if (events_forwarding(m->events) &&
	    uv_now(m->loop) - ms->heard_at > (uint64_t)(m->cfg->master_dead_after * 1000)) {
		log_info("no other master heard for %.0f s: events stay here",
			 m->cfg->master_dead_after);
		events_forward(m->events, false);
		ms->nheard = 0;
	}
	masters_lease(ms);
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
	ms->refs = 2;
	uv_timer_init(m->loop, &ms->beat);
	uv_timer_init(m->loop, &ms->expire);
	ms->beat.data = ms->expire.data = ms;
	uint64_t every = (uint64_t)(m->cfg->master_heartbeat * 1000);
	uv_timer_start(&ms->beat, masters_beat, every, every);
	*ret = ms;
	int r = db_listen(m->db, masters_on_line, ms);
	if (r < 0)
		log_error("%s: the other masters' builds are not seen on this master's /ws",
			  db_errmsg(m->db));
	masters_hello(ms);
	masters_lease(ms); /* at once: the pollers wait for it */
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
	struct master *m = ms->m;
	/* also when not leading: a take of it may be in flight (the release
	 * is sent after it, and deletes only this master's) */
	if (db_lease_release(m->db, MASTERS_LEASE, m->masterid) < 0)
		log_warn("the services' lease is not given up (another master takes it once its "
			 "time is up): %s",
			 db_errmsg(m->db));
	db_listen(m->db, NULL, NULL);
	ms->m = NULL;
	uv_close((uv_handle_t *)&ms->beat, masters_closed);
	uv_close((uv_handle_t *)&ms->expire, masters_closed);
}
