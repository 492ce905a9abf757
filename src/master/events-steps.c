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

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

int events_step_key(char *out, size_t n, bool under_build, int64_t buildid, int64_t stepid,
		    const char *event)
{
	if (under_build)
		return snprintf(out, n, "builds/%lld/steps/%lld/%s", (long long)buildid,
				(long long)stepid, event);
	return snprintf(out, n, "steps/%lld/%s", (long long)stepid, event);
}

/* Publishes each of events[0..n) under both keys, in Buildbot's order
 * (the build's key first), with the step's row read once. */
static void events_steps_publish(struct master *m, int64_t buildid, int64_t stepid,
				 const char *const *events, size_t n)
{
	if (!m || !m->events)
		return;
	if (events_nsubs(m->events) == 0 && !events_forwarding(m->events)) {
		/* the common case: no browser at all, no other master */
		for (size_t i = 0; i < 2 * n; i++)
			events_count(m);
		return;
	}
	char keys[4][96];
	const char *kp[4];
	for (size_t i = 0; i < 2 * n && i < 4; i++) {
		events_step_key(keys[i], sizeof(keys[i]), i % 2 == 0, buildid, stepid,
				events[i / 2]);
		kp[i] = keys[i];
	}
	events_publish_keys_row(m, DB_STEPS, "stepid", stepid, kp, 2 * n < 4 ? 2 * n : 4);
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

/* ------------------------------------------------ "updated", rate limited */

/* One step that sent an "updated" event: when, and whether another waits.
 * Kept in a small hash by stepid; only steps that changed while someone
 * listened have one, and step_release forgets them. */
struct step_upd {
	struct step_upd *next;
	struct master *m;
	int64_t buildid, stepid;
	uint64_t last_ms; /* when the last one was sent */
	bool pending;     /* a change since then, not sent yet */
	bool timer_on;    /* timer initialised (closed when forgotten) */
	uv_timer_t timer;
};

#define STEP_UPD_BUCKETS 256
static struct step_upd *step_upd_tab[STEP_UPD_BUCKETS];

static struct step_upd **step_upd_slot(const struct master *m, int64_t stepid)
{
	struct step_upd **p = &step_upd_tab[(uint64_t)stepid % STEP_UPD_BUCKETS];
	while (*p && ((*p)->m != m || (*p)->stepid != stepid))
		p = &(*p)->next;
	return p;
}

static uint64_t step_upd_now(const struct master *m)
{
	return m->loop ? uv_now(m->loop) : clock_mono_ms();
}

static void (*step_upd_sink)(struct master *m, int64_t buildid, int64_t stepid);

void events_step_updated_sink(void (*fn)(struct master *m, int64_t buildid, int64_t stepid))
{
	step_upd_sink = fn;
}

static void step_upd_send(struct step_upd *u)
{
	static const char *const ev[] = {"updated"};
	u->pending = false;
	u->last_ms = step_upd_now(u->m);
	if (step_upd_sink)
		step_upd_sink(u->m, u->buildid, u->stepid);
	else
		events_steps_publish(u->m, u->buildid, u->stepid, ev, 1);
}

static void step_upd_due(uv_timer_t *t)
{
	struct step_upd *u = t->data;
	if (u->pending)
		step_upd_send(u);
}

static void step_upd_closed(uv_handle_t *h)
{
	free(h->data);
}

void events_step_updated(struct master *m, int64_t buildid, int64_t stepid)
{
	if (!m || !m->events || (events_nsubs(m->events) == 0 && !events_forwarding(m->events)))
		return;
	/* Every append of output comes here: when no subscriber's or
	 * listener's path could match an "updated" key of any step, no key is
	 * formatted (the event is not numbered when unwanted either). */
	if (!events_wanted_like(m, "builds/*/steps/*/updated") &&
	    !events_wanted_like(m, "steps/*/updated"))
		return;
	char k1[96], k2[96];
	events_step_key(k1, sizeof(k1), true, buildid, stepid, "updated");
	events_step_key(k2, sizeof(k2), false, buildid, stepid, "updated");
	if (!events_wanted(m, k1) && !events_wanted(m, k2))
		return;
	struct step_upd **p = step_upd_slot(m, stepid);
	struct step_upd *u = *p;
	if (!u) {
		u = xcalloc(1, sizeof(*u));
		u->m = m;
		u->buildid = buildid;
		u->stepid = stepid;
		*p = u;
		step_upd_send(u);
		return;
	}
	uint64_t now = step_upd_now(m);
	if (now - u->last_ms >= KILN_STEP_UPDATED_MIN_MS) {
		step_upd_send(u);
		return;
	}
	if (u->pending)
		return; /* coalesced into the one already waiting */
	u->pending = true;
	if (!m->loop)
		return;
	if (!u->timer_on) {
		uv_timer_init(m->loop, &u->timer);
		u->timer.data = u;
		u->timer_on = true;
	}
	uv_timer_start(&u->timer, step_upd_due, u->last_ms + KILN_STEP_UPDATED_MIN_MS - now, 0);
}

void events_step_forget(struct master *m, int64_t stepid)
{
	struct step_upd **p = step_upd_slot(m, stepid);
	struct step_upd *u = *p;
	if (!u)
		return;
	*p = u->next;
	if (u->timer_on) {
		uv_timer_stop(&u->timer);
		uv_close((uv_handle_t *)&u->timer, step_upd_closed);
	} else {
		free(u);
	}
}
