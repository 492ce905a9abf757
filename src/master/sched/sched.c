/*
 * The scheduler registry: one struct sched_one per configured scheduler,
 * its state stored in object_state as "sched:NAME" (pending changes and
 * their tree-stable deadlines, next/last timed runs), one libuv timer for
 * the earliest deadline of all, the test clock, and the buildset factory
 * every scheduler kind uses.  Kinds live in sched-<kind>.c.
 */
#define LOG_SUBSYS "sched"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/changes/change.h"
#include "master/engine.h"
#include "master/events.h"
#include "master/master.h"
#include "master/sched/sched-int.h"

double sched_now(const struct sched *s)
{
	return clock_wall() + s->clock_offset;
}

bool sched_test_clock_enabled(const struct sched *s)
{
	return s && s->test_clock;
}

struct sched_one *sched_find(struct sched *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->all[i].cfg->name, name))
			return &s->all[i];
	return NULL;
}

void sched_pending_release(struct sched_pending *p)
{
	for (size_t i = 0; i < p->nsources; i++) {
		free(p->sources[i].codebase);
		free(p->sources[i].branch);
		free(p->sources[i].revision);
		free(p->sources[i].repository);
		free(p->sources[i].project);
	}
	free(p->sources);
	free(p->key);
	free(p->changeids);
	free(p->branch);
	free(p->revision);
	free(p->repository);
	free(p->project);
	free(p->codebase);
	*p = (struct sched_pending){0};
}

void sched_save(struct sched_one *o)
{
	struct master *m = o->s->m;
	if (o->s->batch > 0) {
		o->save_due = true;
		return;
	}
	o->save_due = false;
	json_t *st = json_object();
	json_object_set_new(st, "pending", sched_pending_to_json(o));
	if (o->next_run > 0)
		json_object_set_new(st, "next_run", json_real(o->next_run));
	if (o->last_run > 0)
		json_object_set_new(st, "last_run", json_real(o->last_run));
	if (o->disabled)
		json_object_set_new(st, "enabled", json_false());
	if (db_state_set(m->db, o->state_name, st) < 0)
		log_error("scheduler '%s': cannot store its state: %s", o->cfg->name,
			  db_errmsg(m->db));
	json_decref(st);
}

static void sched_load(struct sched_one *o)
{
	struct master *m = o->s->m;
	json_t *st = NULL;
	int r = db_state_get(m->db, o->state_name, &st);
	if (r < 0) {
		log_error("scheduler '%s': cannot read its state: %s", o->cfg->name,
			  db_errmsg(m->db));
		return;
	}
	if (r == 0 || !json_is_object(st)) {
		json_decref(st);
		return;
	}
	sched_pending_from_json(o, json_object_get(st, "pending"));
	o->next_run = json_number_value(json_object_get(st, "next_run"));
	o->last_run = json_number_value(json_object_get(st, "last_run"));
	o->disabled = json_is_false(json_object_get(st, "enabled"));
	json_decref(st);
}

/* Runs whatever is due now, then re-arms. */
static void sched_tick(struct sched *s)
{
	double now = sched_now(s);
	for (size_t i = 0; i < s->n; i++) {
		struct sched_one *o = &s->all[i];
		switch (o->cfg->kind) {
		case CONFIG_SCHED_SINGLE_BRANCH:
		case CONFIG_SCHED_ANY_BRANCH:
			sched_branch_tick(o, now);
			break;
		case CONFIG_SCHED_PERIODIC:
		case CONFIG_SCHED_NIGHTLY:
			if (!s->paused)
				sched_timed_tick(o, now);
			break;
		default:
			break;
		}
	}
	sched_arm(s);
}

static bool sched_timed(const struct sched_one *o)
{
	return o->cfg->kind == CONFIG_SCHED_PERIODIC || o->cfg->kind == CONFIG_SCHED_NIGHTLY;
}

static void sched_timer_cb(uv_timer_t *t)
{
	sched_tick(t->data);
}

void sched_arm(struct sched *s)
{
	double next = 0;
	for (size_t i = 0; i < s->n; i++) {
		struct sched_one *o = &s->all[i];
		if (s->paused && sched_timed(o))
			continue; /* the lease's holder runs it */
		if (o->next_run > 0 && (next == 0 || o->next_run < next))
			next = o->next_run;
		for (size_t k = 0; k < o->npending; k++) {
			double d = o->pending[k].deadline;
			if (d > 0 && (next == 0 || d < next))
				next = d;
		}
	}
	uv_timer_stop(&s->timer);
	if (next == 0)
		return;
	double delay = next - sched_now(s);
	uint64_t ms = delay <= 0 ? 0 : (uint64_t)ceil(delay * 1000.0);
	if (ms > 86400000ull)
		ms = 86400000ull; /* wake at least daily: the wall clock may jump */
	uv_timer_start(&s->timer, sched_timer_cb, ms, 0);
}

int sched_test_clock_advance(struct sched *s, double seconds)
{
	if (!s->test_clock)
		return -EPERM;
	if (!(seconds >= 0 && seconds < 10.0 * 366 * 86400))
		return -EINVAL;
	s->clock_offset += seconds;
	log_info("test clock advanced by %.3f s (offset %.3f s)", seconds, s->clock_offset);
	/* kept across restarts, so stored deadlines keep their meaning in tests */
	json_t *st = json_pack("{s:f}", "offset", s->clock_offset);
	if (db_state_set(s->m->db, "sched:_test_clock", st) < 0)
		log_error("cannot store the test clock: %s", db_errmsg(s->m->db));
	json_decref(st);
	sched_tick(s);
	return 0;
}

/* Buildset properties: the scheduler's, then extra, then "scheduler". */
static json_t *sched_props(struct sched_one *o, json_t *extra)
{
	json_t *props = json_object();
	for (size_t i = 0; i < o->cfg->nprops; i++) {
		json_t *v = json_loads(o->cfg->props[i].value, JSON_DECODE_ANY, NULL);
		if (v)
			json_object_set_new(props, o->cfg->props[i].name,
					    json_pack("[o,s]", v, "Scheduler"));
	}
	if (extra)
		json_object_update(props, extra);
	json_object_set_new(props, "scheduler", json_pack("[s,s]", o->cfg->name, "Scheduler"));
	return props;
}

int sched_add_buildset(struct sched_one *o, const char *reason, const struct db_sourcestamp *ss,
		       size_t nss, const int64_t *changeids, size_t nchanges, json_t *extra_props,
		       int64_t parent_buildid, int priority, int64_t *ret_bsid)
{
	return sched_add_buildset_on(o, o->builderids, o->nbuilders, reason, ss, nss, changeids,
				     nchanges, extra_props, parent_buildid, priority, ret_bsid,
				     NULL);
}

static const char *sched_cb(const char *codebase)
{
	return codebase ? codebase : "";
}

int sched_sourcestamps(const struct sched_one *o, const struct db_sourcestamp *given, size_t ngiven,
		       struct db_sourcestamp **ret)
{
	const struct config_scheduler *c = o->cfg;
	for (size_t i = 0; i < ngiven; i++)
		for (size_t k = i + 1; k < ngiven; k++)
			if (!strcmp(sched_cb(given[i].codebase), sched_cb(given[k].codebase)))
				return -EINVAL;
	struct db_sourcestamp *v = xcalloc(c->ncodebases + ngiven + 1, sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < c->ncodebases; i++) {
		const struct config_codebase *cb = &c->codebases[i];
		const struct db_sourcestamp *g = db_sourcestamp_find(given, ngiven, cb->name);
		v[n++] = g ? *g
			   : (struct db_sourcestamp){
				     .codebase = cb->name,
				     .repository = cb->repository,
				     .branch = cb->branch,
				     .revision = cb->revision,
				     .project = c->project,
			     };
	}
	for (size_t i = 0; i < ngiven; i++)
		if (!c->ncodebases || !config_scheduler_codebase(c, given[i].codebase))
			v[n++] = given[i];
	if (n == 0)
		n = 1; /* one empty sourcestamp: Kiln's buildsets always have one */
	*ret = v;
	return (int)n;
}

int sched_add_buildset_on(struct sched_one *o, const int64_t *builderids, size_t nbuilders,
			  const char *reason, const struct db_sourcestamp *ss, size_t nss,
			  const int64_t *changeids, size_t nchanges, json_t *extra_props,
			  int64_t parent_buildid, int priority, int64_t *ret_bsid,
			  int64_t *ret_brids)
{
	struct master *m = o->s->m;
	if (o->disabled) {
		log_info("scheduler '%s' is disabled: no buildset (%s)", o->cfg->name, reason);
		return KILN_ESTATE;
	}
	if (nbuilders == 0)
		return KILN_ENOTFOUND;
	_cleanup_free_ struct db_sourcestamp *all = NULL;
	int nall = sched_sourcestamps(o, ss, nss, &all);
	if (nall < 0) {
		log_error("scheduler '%s': a buildset names a codebase twice: not added",
			  o->cfg->name);
		return nall;
	}
	json_t *props = sched_props(o, extra_props);
	struct db_buildset_new bs = {
		.reason = reason,
		.scheduler = o->cfg->name,
		.properties = props,
		.sourcestamps = all,
		.nsourcestamps = (size_t)nall,
		.parent_buildid = parent_buildid,
		.priority = priority,
		.submitted_at = clock_wall(),
	};
	int64_t bsid;
	int64_t *brids = xcalloc(nbuilders, sizeof(*brids));
	int r = db_buildset_add(m->db, &bs, builderids, nbuilders, &bsid, brids);
	json_decref(props);
	if (r >= 0 && ret_brids)
		memcpy(ret_brids, brids, nbuilders * sizeof(*brids));
	if (r < 0) {
		free(brids);
		log_error("scheduler '%s': cannot add a buildset: %s", o->cfg->name,
			  db_errmsg(m->db));
		return r;
	}
	if (nchanges > 0) {
		r = db_buildset_add_changes(m->db, bsid, changeids, nchanges);
		if (r < 0)
			log_error("scheduler '%s': cannot link %zu change(s) to buildset %lld: %s",
				  o->cfg->name, nchanges, (long long)bsid, db_errmsg(m->db));
	}
	events_buildset_new(m, bsid, brids, nbuilders);
	free(brids);
	log_info("scheduler '%s': buildset=%lld on %zu builder(s): %s", o->cfg->name,
		 (long long)bsid, nbuilders, reason);
	if (m->engine)
		engine_buildset_added(m->engine, bsid, builderids, nbuilders, nchanges > 0);
	if (ret_bsid)
		*ret_bsid = bsid;
	return 0;
}

/* o's builder ids and cron from o->cfg (again after a reconfig). */
static void sched_one_configure(struct sched_one *o)
{
	struct master *m = o->s->m;
	free(o->builderids);
	o->nbuilders = 0;
	o->builderids = xcalloc(o->cfg->nbuilders + 1, sizeof(*o->builderids));
	for (size_t k = 0; k < o->cfg->nbuilders; k++) {
		int64_t id = m->engine ? engine_builder_id(m->engine, o->cfg->builders[k]) : 0;
		if (id > 0)
			o->builderids[o->nbuilders++] = id;
	}
	o->cron = (struct cron){0};
	if (o->cfg->cron) {
		char err[160];
		if (cron_parse(o->cfg->cron, &o->cron, err, sizeof(err)) < 0)
			log_error("scheduler '%s': cron: %s", o->cfg->name, err);
	}
}

int sched_new(struct master *m, struct sched **ret)
{
	struct sched *s = xcalloc(1, sizeof(*s));
	s->m = m;
	const char *tc = getenv("KILN_TEST_CLOCK");
	s->test_clock = tc && !strcmp(tc, "1");
	if (s->test_clock) {
		log_warn("KILN_TEST_CLOCK=1: the scheduler clock can be moved through the API");
		json_t *st = NULL;
		if (db_state_get(m->db, "sched:_test_clock", &st) > 0)
			s->clock_offset = json_number_value(json_object_get(st, "offset"));
		json_decref(st);
	}
	uv_timer_init(m->loop, &s->timer);
	s->timer.data = s;
	s->paused = db_is_postgresql(m->db); /* until sched_lead */
	s->n = m->cfg->nschedulers;
	s->all = xcalloc(s->n + 1, sizeof(*s->all));
	double now = sched_now(s);
	for (size_t i = 0; i < s->n; i++) {
		struct sched_one *o = &s->all[i];
		o->s = s;
		o->cfg = &m->cfg->scheduler[i];
		o->state_name = xasprintf("sched:%s", o->cfg->name);
		sched_one_configure(o);
		sched_load(o);
		if (sched_timed(o) && !s->paused)
			sched_timed_start(o, now);
	}
	int r = db_flush(m->db);
	if (r < 0) {
		log_error("cannot store the schedulers' state: %s", db_errmsg(m->db));
		*ret = s;
		return r;
	}
	*ret = s;
	/* deadlines that passed while the master was down fire now */
	sched_arm(s);
	return 0;
}

static void sched_one_release(struct sched_one *o);

static void sched_free_cb(uv_handle_t *h)
{
	struct sched *s = h->data;
	s->handle_closed = true;
	if (s->reads == 0)
		free(s);
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		sched_one_release(&s->all[i]);
	free(s->all);
	s->closed = true; /* a state read answered from now on finds nothing */
	free(s->waiters);
	free(s->failing);
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, sched_free_cb);
}

static void sched_one_release(struct sched_one *o)
{
	for (size_t k = 0; k < o->npending; k++)
		sched_pending_release(&o->pending[k]);
	free(o->pending);
	free(o->builderids);
	free(o->state_name);
}

static const char *sched_one_name_at(const void *v, size_t i)
{
	return ((const struct sched_one *)v)[i].cfg->name;
}

void sched_reconfig(struct sched *s, const struct config *ncfg)
{
	struct master *m = s->m;
	size_t n = ncfg->nschedulers;
	struct sched_one *all = xcalloc(n + 1, sizeof(*all));
	size_t *map = xcalloc(n + 1, sizeof(*map));
	bool *moved = xcalloc(s->n + 1, sizeof(*moved));
	config_match_names(s->all, s->n, sched_one_name_at, ncfg->scheduler, n,
			   config_scheduler_name_at, map);
	double now = sched_now(s);
	for (size_t j = 0; j < n; j++) {
		const struct config_scheduler *c = &ncfg->scheduler[j];
		struct sched_one *o = &all[j];
		size_t i = map[j];
		bool timed = c->kind == CONFIG_SCHED_PERIODIC || c->kind == CONFIG_SCHED_NIGHTLY;
		if (i != SIZE_MAX && s->all[i].cfg->kind == c->kind) {
			/* the same scheduler: its runtime state goes on */
			if (s->all[i].save_due)
				sched_save(&s->all[i]);
			*o = s->all[i];
			moved[i] = true;
			bool same = o->cfg->fp == c->fp;
			o->cfg = c;
			sched_one_configure(o);
			if (!same && timed && !s->paused) {
				/* changed: the next run from its stored last run and the
				 * new period or cron, as a restart would compute it */
				o->next_run = 0;
				sched_timed_start(o, now);
			}
			if (!same)
				log_info("scheduler '%s': changed by the reconfig", c->name);
			continue;
		}
		/* new (or another kind under the name): from its stored state */
		o->s = s;
		o->cfg = c;
		o->state_name = xasprintf("sched:%s", c->name);
		sched_one_configure(o);
		sched_load(o);
		if (timed && !s->paused)
			sched_timed_start(o, now);
		log_info("scheduler '%s': added by the reconfig", c->name);
	}
	for (size_t i = 0; i < s->n; i++)
		if (!moved[i]) {
			log_info("scheduler '%s': removed by the reconfig (its state stays stored)",
				 s->all[i].cfg->name);
			if (s->all[i].save_due)
				sched_save(&s->all[i]);
			sched_one_release(&s->all[i]);
		}
	free(s->all);
	s->all = all;
	s->n = n;
	free(map);
	free(moved);
	(void)m;
	sched_arm(s);
}

/* A timed scheduler's state read back when the lease came: the last
 * holder's next and last runs. */
struct sched_read {
	struct sched *s;
	char *name; /* owned: the scheduler's (a reconfig may move it) */
	unsigned gen;
};

static void sched_state_read(void *arg, int r, json_t *st, const char *err)
{
	struct sched_read *rd = arg;
	struct sched *s = rd->s;
	struct sched_one *o = s->closed ? NULL : sched_find(s, rd->name);
	if (o && rd->gen == s->gen && !s->paused && r != -ECANCELED) {
		if (r < 0)
			log_error("scheduler '%s': cannot read its state: %s (its next run is "
				  "computed afresh)",
				  rd->name, err ? err : "failed");
		if (r > 0 && json_is_object(st)) {
			o->next_run = json_number_value(json_object_get(st, "next_run"));
			o->last_run = json_number_value(json_object_get(st, "last_run"));
			o->disabled = json_is_false(json_object_get(st, "enabled"));
		}
		sched_timed_start(o, sched_now(s));
		sched_arm(s);
	}
	free(rd->name);
	free(rd);
	if (--s->reads == 0 && s->handle_closed)
		free(s);
}

void sched_lead(struct sched *s, bool lead)
{
	if (!s || s->closed || s->paused == !lead)
		return;
	s->paused = !lead;
	s->gen++;
	size_t n = 0;
	for (size_t i = 0; lead && i < s->n; i++) {
		struct sched_one *o = &s->all[i];
		if (!sched_timed(o))
			continue;
		n++;
		struct sched_read *rd = xmalloc(sizeof(*rd));
		*rd = (struct sched_read){.s = s, .name = xstrdup(o->cfg->name), .gen = s->gen};
		if (db_state_get_async(s->m->db, o->state_name, sched_state_read, rd) < 0) {
			log_error("scheduler '%s': cannot read its state: %s (it waits)",
				  o->cfg->name, db_errmsg(s->m->db));
			free(rd->name);
			free(rd);
			continue;
		}
		s->reads++;
	}
	if (n)
		log_info("holding the services' lease: %zu timed scheduler%s run here", n,
			 n == 1 ? "" : "s");
	sched_arm(s);
}

void sched_change_added(struct sched *s, const struct change *c)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct sched_one *o = &s->all[i];
		if (o->disabled)
			continue; /* a disabled scheduler does not watch changes */
		switch (o->cfg->kind) {
		case CONFIG_SCHED_SINGLE_BRANCH:
		case CONFIG_SCHED_ANY_BRANCH:
		case CONFIG_SCHED_NIGHTLY:
			sched_branch_change(o, c);
			break;
		default:
			break;
		}
	}
	if (s->batch == 0)
		sched_arm(s);
}

void sched_changes_begin(struct sched *s)
{
	if (s)
		s->batch++;
}

void sched_changes_end(struct sched *s)
{
	if (!s || s->batch == 0 || --s->batch > 0)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->all[i].save_due)
			sched_save(&s->all[i]);
	sched_arm(s);
}

void sched_buildset_completed(struct sched *s, int64_t bsid, int results)
{
	if (!s)
		return;
	if (results == RESULTS_NONE) {
		struct db_buildset_info bi;
		if (db_buildset_get(s->m->db, bsid, &bi) == 0) {
			results = bi.results;
			db_buildset_info_release(&bi);
		}
	}
	log_debug("buildset=%lld complete: %s", (long long)bsid, db_results_name(results));
	for (size_t i = 0; i < s->nfailing; i++)
		if (s->failing[i] == bsid) {
			s->failing[i] = s->failing[--s->nfailing];
			break;
		}
	/* waiters may register or drop others: take them out first */
	for (size_t i = 0; i < s->nwaiters;) {
		if (s->waiters[i].bsid != bsid) {
			i++;
			continue;
		}
		struct sched_waiter w = s->waiters[i];
		s->waiters[i] = s->waiters[--s->nwaiters];
		w.fn(w.ud, bsid, results);
	}
	sched_dependent_completed(s, bsid, results);
}

#define SCHED_MAX_FAILING 4096

void sched_buildset_failing(struct sched *s, int64_t bsid, int results)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nfailing; i++)
		if (s->failing[i] == bsid)
			return;
	if (s->nfailing < SCHED_MAX_FAILING) {
		ARRAY_GROW(s->failing, s->nfailing + 1, s->failing_alloc);
		s->failing[s->nfailing++] = bsid;
	}
	log_info("buildset=%lld will fail: a request ended %s", (long long)bsid,
		 db_results_name(results));
	/* the first failure of a buildset is an event of its own, before it
	 * completes, so waiters and reporters need not wait for the rest */
	char key[64];
	snprintf(key, sizeof(key), "buildsets/%lld/failing", (long long)bsid);
	events_publish(s->m, key,
		       json_pack("{sIsi}", "bsid", (json_int_t)bsid, "results", results));
}

void sched_wait(struct sched *s, int64_t bsid, sched_wait_fn fn, void *ud)
{
	ARRAY_GROW(s->waiters, s->nwaiters + 1, s->waiters_alloc);
	s->waiters[s->nwaiters++] = (struct sched_waiter){bsid, fn, ud};
}

void sched_unwait(struct sched *s, void *ud)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nwaiters;)
		if (s->waiters[i].ud == ud)
			s->waiters[i] = s->waiters[--s->nwaiters];
		else
			i++;
}

/* ---- enabled (slice "uichanges") ------------------------------------------------------- */

size_t sched_count(const struct sched *s)
{
	return s ? s->n : 0;
}

const struct config_scheduler *sched_config(const struct sched *s, size_t i)
{
	return s && i < s->n ? s->all[i].cfg : NULL;
}

bool sched_enabled(const struct sched *s, size_t i)
{
	return s && i < s->n && !s->all[i].disabled;
}

int sched_set_enabled(struct sched *s, size_t i, bool enabled)
{
	if (!s || i >= s->n)
		return KILN_ENOTFOUND;
	struct sched_one *o = &s->all[i];
	if (o->disabled == !enabled)
		return 0;
	o->disabled = !enabled;
	log_info("scheduler '%s' %s", o->cfg->name, enabled ? "enabled" : "disabled");
	sched_save(o);
	return 0;
}
