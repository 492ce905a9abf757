/*
 * periodic (every N seconds) and nightly (a cron expression in UTC, with
 * only_if_changed): the next run time is stored, so a restart neither
 * repeats a run nor loses the schedule; a run missed while the master was
 * down happens once at start-up (periodic) or is skipped to the next cron
 * time (nightly, as cron does).
 */
#define LOG_SUBSYS "sched"

#include <math.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/sched/sched-int.h"

static double sched_cron_after(struct sched_one *o, double t)
{
	int64_t next;
	if (cron_next(&o->cron, (int64_t)floor(t), &next) < 0)
		return 0;
	return (double)next;
}

void sched_timed_start(struct sched_one *o, double now)
{
	if (o->cfg->kind == CONFIG_SCHED_PERIODIC) {
		if (o->next_run <= 0)
			o->next_run = o->last_run > 0 ? o->last_run + o->cfg->period : now;
	} else {
		/* cron skips what it missed: from now on */
		if (o->next_run <= 0 || o->next_run < now - 1)
			o->next_run = sched_cron_after(o, now);
	}
	sched_save(o);
}

void sched_timed_tick(struct sched_one *o, double now)
{
	if (o->next_run <= 0 || o->next_run > now)
		return;
	const struct config_scheduler *c = o->cfg;
	struct db_sourcestamp ss = {
		.branch = c->branch,
		.repository = c->repository,
		.project = c->project,
		.codebase = c->codebase,
	};
	struct sched_pending *p = o->npending ? &o->pending[0] : NULL;
	bool run = true;
	if (c->kind == CONFIG_SCHED_NIGHTLY && c->only_if_changed && (!p || !p->nchanges)) {
		run = false;
		log_info("scheduler '%s': nothing changed since the last run: skipped", c->name);
	}
	if (run) {
		_cleanup_free_ char *reason =
			c->kind == CONFIG_SCHED_PERIODIC
				? xasprintf(
					  "The Periodic scheduler named '%s' triggered this build",
					  c->name)
				: xasprintf("The Nightly scheduler named '%s' triggered this build",
					    c->name);
		/* with codebases, the map gives every sourcestamp: none of ours */
		size_t nss = c->ncodebases ? 0 : 1;
		_cleanup_free_ struct db_sourcestamp *changed = NULL;
		if (p && c->kind == CONFIG_SCHED_NIGHTLY && c->only_if_changed) {
			if (c->ncodebases) {
				/* the newest change of each codebase that changed */
				changed = xcalloc(p->nsources + 1, sizeof(*changed));
				nss = sched_pending_sources(p, changed);
			} else if (p->revision)
				ss.revision = p->revision;
		}
		sched_add_buildset(o, reason, changed ? changed : &ss, nss, p ? p->changeids : NULL,
				   p ? p->nchanges : 0, NULL, 0, c->priority, NULL);
	}
	for (size_t i = 0; i < o->npending; i++)
		sched_pending_release(&o->pending[i]);
	o->npending = 0;
	o->last_run = now;
	if (c->kind == CONFIG_SCHED_PERIODIC)
		o->next_run = now + c->period;
	else
		o->next_run = sched_cron_after(o, now);
	sched_save(o);
}
