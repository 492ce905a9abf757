/*
 * trigger { }: starts buildsets on triggerable schedulers with this
 * build's sourcestamp and the step's properties; with wait_for_finish the
 * step waits for them and takes the worst of their results.
 */
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/master.h"
#include "master/sched/sched.h"
#include "master/steps/step.h"

struct step_trigger {
	int64_t *bsids; /* owned: the buildsets started */
	size_t n, left; /* started, not finished yet */
	int results;    /* the worst so far */
};

static char *step_trigger_describe(const struct step *st)
{
	const struct config_step *s = st->cfg;
	return xasprintf("'trigger %s%s'", s->trigger_schedulers[0],
			 s->ntrigger_schedulers > 1 ? " ..." : "");
}

static void step_trigger_done(void *ud, int64_t bsid, int results)
{
	struct step *st = ud;
	struct step_trigger *t = st->priv;
	if (!t->left)
		return;
	t->left--;
	t->results = db_results_worst(t->results, results);
	step_log_header(st, "triggered buildset %lld finished: %s", (long long)bsid,
			db_results_name(results));
	if (t->left == 0) {
		int r = t->results;
		/* the worst of the triggered builds is the step's, as in Buildbot */
		if (r == RESULTS_SKIPPED)
			r = RESULTS_SUCCESS;
		step_finish(st, r);
	}
}

static void step_trigger_start(struct step *st)
{
	const struct config_step *s = st->cfg;
	struct build *b = st->b;
	struct master *m = b->e->m;
	struct step_trigger *t = xcalloc(1, sizeof(*t));
	st->priv = t;
	json_t *props = json_object();
	for (size_t i = 0; i < s->nset_properties; i++) {
		json_t *v = json_loads(s->set_properties[i].value, JSON_DECODE_ANY, NULL);
		if (v)
			json_object_set_new(props, s->set_properties[i].name,
					    json_pack("[o,s]", v, "Trigger"));
	}
	/* every sourcestamp of the build's buildset passes on (one per codebase;
	 * read as the build started) */
	const struct db_sourcestamp *ss = b->ss_all;
	size_t nss = b->nss_all;
	t->bsids = xcalloc(s->ntrigger_schedulers, sizeof(*t->bsids));
	t->results = RESULTS_SUCCESS;
	int failed = 0;
	for (size_t i = 0; i < s->ntrigger_schedulers; i++) {
		int64_t bsid;
		int r = m->sched ? sched_trigger_all(m->sched, s->trigger_schedulers[i], b->buildid,
						     ss, nss, props, &bsid)
				 : -ENOTCONN;
		if (r < 0) {
			step_log_header(st, "cannot trigger '%s': %s", s->trigger_schedulers[i],
					err_str(r));
			failed++;
			continue;
		}
		step_log_header(st, "triggered '%s': buildset %lld", s->trigger_schedulers[i],
				(long long)bsid);
		t->bsids[t->n++] = bsid;
	}
	json_decref(props);
	if (failed || !s->wait_for_finish || t->n == 0) {
		step_finish(st, failed ? RESULTS_EXCEPTION : RESULTS_SUCCESS);
		return;
	}
	t->left = t->n;
	for (size_t i = 0; i < t->n; i++)
		sched_wait(m->sched, t->bsids[i], step_trigger_done, st);
	step_set_state(st, "waiting for triggered builds");
}

/* A stop stops the waiting; the triggered builds go on. */
static void step_trigger_interrupt(struct step *st, const char *why)
{
	(void)why;
	struct step_trigger *t = st->priv;
	if (!t || !t->left)
		return;
	sched_unwait(st->b->e->m->sched, st);
	t->left = 0;
	step_finish(st, RESULTS_CANCELLED);
}

static void step_trigger_free(struct step *st)
{
	struct step_trigger *t = st->priv;
	if (!t)
		return;
	if (st->b->e->m->sched)
		sched_unwait(st->b->e->m->sched, st);
	free(t->bsids);
	free(t);
	st->priv = NULL;
}

const struct step_kind step_kind_trigger = {
	.kind = CONFIG_STEP_TRIGGER,
	.name = "trigger",
	.describe = step_trigger_describe,
	.start = step_trigger_start,
	.interrupt = step_trigger_interrupt,
	.free = step_trigger_free,
};
