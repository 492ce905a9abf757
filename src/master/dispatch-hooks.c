/*
 * The distributor's Lua hooks (slice "dispatch"): gathers what
 * prioritize_builders, next_build and next_worker are handed (builders'
 * queue summaries, the head of a builder's queue with each request's reason
 * and properties, the idle workers), calls them through src/config, and
 * turns their answers into the engine's choices.  See dispatch-hooks.h.
 */
#define LOG_SUBSYS "engine"

#include <stdbool.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/dispatch-hooks.h"
#include "master/engine-int.h"
#include "master/locks.h"
#include "master/master.h"

/* The functions whose failures are logged apart: per builder, then one
 * slot for the global prioritize_builders. */
enum { HOOK_NEXT_WORKER, HOOK_NEXT_BUILD, HOOK_PER_BUILDER };

struct dispatch_hooks {
	size_t nslots;
	uint64_t *last_ms;  /* clock_mono_ms of the slot's last logged failure; 0 = never */
	unsigned *unlogged; /* failures since then that were not logged */
};

struct dispatch_hooks *dispatch_hooks_new(size_t nbuilders)
{
	struct dispatch_hooks *h = xcalloc(1, sizeof(*h));
	h->nslots = nbuilders * HOOK_PER_BUILDER + 1;
	h->last_ms = xcalloc(h->nslots, sizeof(*h->last_ms));
	h->unlogged = xcalloc(h->nslots, sizeof(*h->unlogged));
	return h;
}

void dispatch_hooks_free(struct dispatch_hooks *h)
{
	if (!h)
		return;
	free(h->last_ms);
	free(h->unlogged);
	free(h);
}

/* Logs a function's failure (err, owned) unless this slot logged one less
 * than KILN_DISPATCH_LOG_SECONDS ago: the distributor may call a broken
 * function on every pass, and the log must not drown. */
static void dispatch_hooks_log(struct engine *e, size_t slot, const char *builder, const char *fn,
			       const char *outcome, char *err)
{
	struct dispatch_hooks *h = e->hooks;
	uint64_t now = clock_mono_ms();
	if (h->last_ms[slot] && now - h->last_ms[slot] < KILN_DISPATCH_LOG_SECONDS * 1000ull) {
		h->unlogged[slot]++;
		free(err);
		return;
	}
	unsigned skipped = h->unlogged[slot];
	h->last_ms[slot] = now ? now : 1;
	h->unlogged[slot] = 0;
	if (skipped)
		log_warn("builder=%s %s %s: %s (and %u more not logged in the last %d s)",
			 builder ? builder : "*", fn, outcome, err ? err : "", skipped,
			 KILN_DISPATCH_LOG_SECONDS);
	else
		log_warn("builder=%s %s %s: %s (logged once per %d s at most)",
			 builder ? builder : "*", fn, outcome, err ? err : "",
			 KILN_DISPATCH_LOG_SECONDS);
	free(err);
}

/* ---- prioritize_builders ------------------------------------------------------ */

/* Whether any attached worker has a free slot: when none has, the order
 * cannot matter and the function is not called (a busy master queues
 * buildsets and kicks the distributor far more often than builds end). */
static bool dispatch_hooks_any_free(const struct engine *e)
{
	for (const struct wconn *w = e->workers; w; w = w->next)
		if (w->attached && !w->closed && w->running < w->cfg->max_builds)
			return true;
	return false;
}

bool dispatch_hooks_want_order(struct engine *e, size_t n)
{
	return e->m->cfg->prioritize_builders_fn && n >= 2 && dispatch_hooks_any_free(e);
}

void dispatch_hooks_order_builders(struct engine *e, int64_t *ids, size_t n, const int64_t *sids,
				   const int *prio, const double *oldest, size_t ns)
{
	struct master *m = e->m;
	if (!dispatch_hooks_want_order(e, n))
		return;
	size_t max = n < KILN_DISPATCH_MAX_BUILDERS ? n : KILN_DISPATCH_MAX_BUILDERS;
	struct config_dispatch_builder *bs = xcalloc(max + 1, sizeof(*bs));
	int64_t *bids = xcalloc(n + 1, sizeof(*bids)); /* those offered, in bs's order */
	int64_t *rest = xcalloc(n + 1, sizeof(*rest)); /* the others, in their order */
	size_t *order = xcalloc(max + 1, sizeof(*order));
	size_t nb = 0, nrest = 0, s = 0;
	for (size_t k = 0; k < n; k++) {
		int i = engine_builder_index(e, ids[k]);
		/* the summaries come in ids' order, those without queued requests left out */
		bool have = s < ns && sids[s] == ids[k];
		if (i >= 0 && nb < max && have) {
			bs[nb] = (struct config_dispatch_builder){m->cfg->builder[i].name,
								  oldest[s], prio[s]};
			bids[nb++] = ids[k];
		} else {
			rest[nrest++] = ids[k];
		}
		if (have)
			s++;
	}
	char *err = NULL;
	for (size_t k = 0; k < nb; k++)
		order[k] = k;
	if (nb >= 2 && config_call_prioritize(m->cfg, bs, nb, order, &err) < 0)
		dispatch_hooks_log(e, e->hooks->nslots - 1, NULL, "prioritize_builders",
				   "failed (default order)", err);
	for (size_t k = 0; k < nb; k++)
		ids[k] = bids[order[k]];
	memcpy(ids + nb, rest, nrest * sizeof(*rest));
	free(order);
	free(rest);
	free(bids);
	free(bs);
}

/* ---- the requests next_build and next_worker see ----------------------------- */

static void dispatch_hooks_view(const struct db_request_head *h, struct config_dispatch_request *v)
{
	*v = (struct config_dispatch_request){.buildrequestid = h->req.buildrequestid,
					      .buildsetid = h->req.buildsetid,
					      .priority = h->req.priority,
					      .submitted_at = h->req.submitted_at,
					      .reason = h->reason,
					      .properties = h->properties};
}

/* ---- next_build -------------------------------------------------------------- */

int dispatch_hooks_next_build(struct engine *e, size_t i, const struct db_request_head *v, size_t n,
			      size_t *ret_idx)
{
	struct master *m = e->m;
	const struct config_builder *bc = &m->cfg->builder[i];
	if (n == 0)
		return 0;
	struct config_dispatch_request *views = xcalloc(n, sizeof(*views));
	for (size_t k = 0; k < n; k++)
		dispatch_hooks_view(&v[k], &views[k]);
	size_t idx = 0;
	char *err = NULL;
	int r = config_call_next_build(m->cfg, bc, views, n, &idx, &err);
	if (r == KILN_ENOTFOUND) {
		dispatch_hooks_log(e, i * HOOK_PER_BUILDER + HOOK_NEXT_BUILD, bc->name,
				   "next_build", "named no queued request (starting none)", err);
		r = 0;
	} else if (r < 0) {
		dispatch_hooks_log(e, i * HOOK_PER_BUILDER + HOOK_NEXT_BUILD, bc->name,
				   "next_build", "failed (the queue's order)", err);
		idx = 0;
		r = 1;
	}
	if (r == 1)
		*ret_idx = idx;
	free(views);
	return r;
}

/* ---- next_worker ------------------------------------------------------------- */

int dispatch_hooks_next_worker(struct engine *e, size_t i, const struct db_request_head *h,
			       struct wconn **w)
{
	struct master *m = e->m;
	const struct config_builder *bc = &m->cfg->builder[i];
	size_t max =
		bc->nworkers < KILN_DISPATCH_MAX_WORKERS ? bc->nworkers : KILN_DISPATCH_MAX_WORKERS;
	struct config_dispatch_worker *ws = xcalloc(max + 1, sizeof(*ws));
	struct wconn **conns = xcalloc(max + 1, sizeof(*conns));
	size_t n = 0;
	/* the workers the engine could choose from (pick_worker's rules) */
	for (size_t k = 0; k < bc->nworkers && n < max; k++) {
		struct wconn *c = e->conn[e->builder_workers[i][k]];
		if (!c || !c->attached || c->closed || c->paused ||
		    c->running >= c->cfg->max_builds)
			continue;
		if (bc->nlocks && !locks_available(e->locks, bc->locks, bc->nlocks, c->cfg->name))
			continue;
		ws[n] = (struct config_dispatch_worker){c->cfg, c->running};
		conns[n++] = c;
	}
	struct config_dispatch_request view;
	dispatch_hooks_view(h, &view);
	size_t idx = 0;
	char *err = NULL;
	int r = config_call_next_worker(m->cfg, bc, ws, n, &view, &idx, &err);
	if (r == 1)
		*w = conns[idx];
	else if (r == KILN_ENOTFOUND) {
		dispatch_hooks_log(e, i * HOOK_PER_BUILDER + HOOK_NEXT_WORKER, bc->name,
				   "next_worker", "named no idle worker (starting none)", err);
		r = 0;
	} else if (r < 0) {
		dispatch_hooks_log(e, i * HOOK_PER_BUILDER + HOOK_NEXT_WORKER, bc->name,
				   "next_worker", "failed (the default worker)", err);
		r = 1;
	}
	free(conns);
	free(ws);
	return r;
}
