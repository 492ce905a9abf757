/*
 * The engine: registers builders and workers, turns force requests into
 * buildsets, and runs the distributor, which hands the best queued request
 * of each builder (priority, then age: one index seek per dispatch) to a
 * connected worker with free capacity.  The distributor runs at most once
 * per loop turn, after whatever event kicked it.
 */
#define LOG_SUBSYS "engine"

#include <errno.h>
#include <stdio.h>
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
#include "master/events.h"
#include "master/latent.h"
#include "master/locks.h"
#include "master/master.h"
#include "master/sched/sched.h"

void engine_init_worker_ops(struct engine *e);

/* A builder's queue gives its best request to one of its idle workers:
 * the claim is answered on the loop (on PostgreSQL by the server several
 * masters share, issue 14), and the worker's slot is held meanwhile.  One
 * claim per builder is in flight at a time; a build started kicks the
 * distributor again for the next. */
struct engine_claim {
	struct engine *e; /* NULL once the engine stopped */
	int64_t builderid;
	struct wconn *w; /* referenced, one of its slots held; NULL once the engine stopped */
	struct engine_claim *next;
	/* collapse_requests in flight for the claimed request brid: its
	 * builder's claims wait for it, and (locked: it has locks) every
	 * build with locks, as while a build opens */
	int64_t brid, bsid;
	bool locked;
	bool no_slot; /* a dispatch hooks' read: w is referenced, none of its slots held */
};

int engine_builder_index(struct engine *e, int64_t builderid)
{
	const size_t *by_id = e->builder_by_id;
	size_t lo = 0, hi = by_id ? e->m->cfg->nbuilders : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t id = e->builderids[by_id[mid]];
		if (id == builderid)
			return (int)by_id[mid];
		if (id < builderid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

const struct config_builder *engine_builder_cfg(struct engine *e, int64_t builderid)
{
	int i = e ? engine_builder_index(e, builderid) : -1;
	return i < 0 ? NULL : &e->m->cfg->builder[i];
}

int64_t engine_worker_id(const struct engine *e, const struct config_worker *cw)
{
	size_t i = engine_worker_index(e, cw);
	return i < e->m->cfg->nworkers ? e->workerids[i] : 0;
}

size_t engine_worker_index(const struct engine *e, const struct config_worker *cw)
{
	const struct config *cfg = e->m->cfg;
	/* slice "reconfig": a worker removed by a reconfig keeps its old
	 * generation's entry until it disconnects: it maps to the spare slot
	 * past the end (no builders, never picked) */
	if (cw < cfg->worker || cw >= cfg->worker + cfg->nworkers)
		return cfg->nworkers;
	return (size_t)(cw - cfg->worker);
}

/* The attached worker for builder i with the most free capacity, or NULL:
 * only the builder's own workers are looked at. */
static struct wconn *pick_worker(struct engine *e, size_t i)
{
	const struct config_builder *bc = &e->m->cfg->builder[i];
	struct wconn *best = NULL;
	int best_free = 0;
	for (size_t k = 0; k < bc->nworkers; k++) {
		struct wconn *w = e->conn[e->builder_workers[i][k]];
		if (!w || !w->attached || w->closed || w->paused) /* paused: slice "uimisc" */
			continue;
		int free_slots = w->cfg->max_builds - w->running;
		/* slice "locks": Buildbot's canStartBuild: skip a worker whose locks are taken */
		if (free_slots > best_free && bc->nlocks &&
		    !locks_available(e->locks, bc->locks, bc->nlocks, w->cfg->name))
			continue;
		if (free_slots > best_free) {
			best = w;
			best_free = free_slots;
		}
	}
	return best;
}

struct name_idx {
	const char *name;
	size_t idx;
};

static int name_idx_cmp(const void *a, const void *b)
{
	return strcmp(((const struct name_idx *)a)->name, ((const struct name_idx *)b)->name);
}

struct id_idx {
	int64_t id;
	size_t idx;
};

static int id_idx_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct id_idx *)a)->id, y = ((const struct id_idx *)b)->id;
	return (x > y) - (x < y);
}

/* Fills e->builder_by_name: cfg builder indexes in name order. */
static void engine_index_builder_names(struct engine *e, const struct config *cfg)
{
	struct name_idx *v = xcalloc(cfg->nbuilders + 1, sizeof(*v));
	for (size_t i = 0; i < cfg->nbuilders; i++)
		v[i] = (struct name_idx){cfg->builder[i].name, i};
	qsort(v, cfg->nbuilders, sizeof(*v), name_idx_cmp);
	e->builder_by_name = xcalloc(cfg->nbuilders + 1, sizeof(*e->builder_by_name));
	for (size_t i = 0; i < cfg->nbuilders; i++)
		e->builder_by_name[i] = v[i].idx;
	free(v);
}

/* Fills e->builder_by_id once e->builderids is complete. */
static void engine_index_builder_ids(struct engine *e, size_t n)
{
	struct id_idx *v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = (struct id_idx){e->builderids[i], i};
	qsort(v, n, sizeof(*v), id_idx_cmp);
	e->builder_by_id = xcalloc(n + 1, sizeof(*e->builder_by_id));
	for (size_t i = 0; i < n; i++)
		e->builder_by_id[i] = v[i].idx;
	free(v);
	/* the claims in flight, counted again against this generation's builders */
	free(e->claiming);
	e->claiming = xcalloc(n + 1, sizeof(*e->claiming));
	for (const struct engine_claim *c = e->claims; c; c = c->next) {
		int i = engine_builder_index(e, c->builderid);
		if (i >= 0)
			e->claiming[i]++;
	}
}

/* Resolves builder → workers and worker → builders once, by sorting the
 * worker names: O((W + B·w) log W) instead of a name scan per event. */
static void engine_index_config(struct engine *e, const struct config *cfg)
{
	struct name_idx *byname = xcalloc(cfg->nworkers + 1, sizeof(*byname));
	for (size_t i = 0; i < cfg->nworkers; i++)
		byname[i] = (struct name_idx){cfg->worker[i].name, i};
	qsort(byname, cfg->nworkers, sizeof(*byname), name_idx_cmp);

	e->conn = xcalloc(cfg->nworkers + 1, sizeof(*e->conn));
	e->nworker_builders = xcalloc(cfg->nworkers + 1, sizeof(*e->nworker_builders));
	e->worker_builders = xcalloc(cfg->nworkers + 1, sizeof(*e->worker_builders));
	e->builder_workers = xcalloc(cfg->nbuilders + 1, sizeof(*e->builder_workers));
	size_t *alloc = xcalloc(cfg->nworkers + 1, sizeof(*alloc)); /* of worker_builders[w] */
	for (size_t b = 0; b < cfg->nbuilders; b++) {
		const struct config_builder *bc = &cfg->builder[b];
		e->builder_workers[b] = xcalloc(bc->nworkers + 1, sizeof(size_t));
		for (size_t k = 0; k < bc->nworkers; k++) {
			struct name_idx key = {bc->workers[k], 0};
			struct name_idx *hit =
				bsearch(&key, byname, cfg->nworkers, sizeof(*byname), name_idx_cmp);
			/* config validation guarantees every name is declared */
			size_t w = hit ? hit->idx : 0;
			e->builder_workers[b][k] = w;
			ARRAY_GROW(e->worker_builders[w], e->nworker_builders[w] + 1, alloc[w]);
			e->worker_builders[w][e->nworker_builders[w]++] = b;
		}
	}
	free(alloc);
	free(byname);
	engine_index_builder_names(e, cfg);
}

static void engine_index_free(struct engine *e, const struct config *cfg)
{
	for (size_t i = 0; e->worker_builders && i < cfg->nworkers; i++)
		free(e->worker_builders[i]);
	for (size_t i = 0; e->builder_workers && i < cfg->nbuilders; i++)
		free(e->builder_workers[i]);
	free(e->worker_builders);
	free(e->nworker_builders);
	free(e->builder_workers);
	free(e->conn);
	free(e->builder_by_name);
	free(e->builder_by_id);
	free(e->claiming);
	e->claiming = NULL;
}

/* w may have come idle: a stopping or removed worker may go, a latent one
 * starts its idle time. */
static void engine_worker_check_idle(struct engine *e, struct wconn *w)
{
	latent_activity(e->m->latent, w->cfg);
	wconn_build_done(w);
	engine_reconfig_worker_idle(w);
}

void engine_worker_slot_freed(struct engine *e, struct wconn *w)
{
	w->running--;
	engine_worker_check_idle(e, w);
}

static bool engine_worker_usable(const struct wconn *w)
{
	return w->attached && !w->closed && !w->paused;
}

/* Unlinks c, an answer come: its builder's claim and w's slot are let go.
 * Returns the builder's index, -1 if it left the configuration. */
static int engine_claim_unlink(struct engine *e, struct engine_claim *c)
{
	for (struct engine_claim **pp = &e->claims; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	int i = engine_builder_index(e, c->builderid);
	if (i >= 0 && e->claiming[i])
		e->claiming[i]--;
	if (c->locked && e->opening_locked)
		e->opening_locked--;
	if (!c->no_slot)
		c->w->running--;
	return i;
}

/* Holds a slot of w for c (unless c->no_slot), in flight, and links it. */
static void engine_claim_link(struct engine *e, struct engine_claim *c, size_t i)
{
	wconn_ref(c->w);
	if (!c->no_slot)
		c->w->running++;
	e->claiming[i]++;
	c->next = e->claims;
	e->claims = c;
}

/* builder i's request brid (and the collapsed merged[0..nmerged), with their
 * buildsets) goes to w, whose slot is free: the build starts, or every
 * request is released. */
static bool engine_build_begin(struct engine *e, int i, struct wconn *w, int64_t brid, int64_t bsid,
			       const int64_t *merged, const int64_t *merged_bsids, size_t nmerged)
{
	struct master *m = e->m;
	if (i >= 0 && engine_worker_usable(w) && !m->draining &&
	    build_start(e, i, w, brid, bsid, merged, merged_bsids, nmerged))
		return true;
	db_request_unclaim(m->db, brid);
	for (size_t j = 0; j < nmerged; j++)
		db_request_unclaim(m->db, merged[j]);
	return false;
}

/* A collapse_requests function's view of a request (strings borrowed). */
static void engine_request_view(const struct db_request_line *l, struct config_request_view *v)
{
	*v = (struct config_request_view){
		.buildrequestid = l->buildrequestid,
		.branch = l->branch,
		.revision = l->revision,
		.repository = l->repository,
		.project = l->project,
		.codebase = l->codebase,
	};
}

/* Requests collapsed into one build, at most: a bound on one dispatch's work. */
#define ENGINE_MAX_COLLAPSE 1000

/* The collapse is over: v[0..n) are the requests claimed into c's build.
 * The newest of all becomes the build's own request (it has the newest
 * source), the others its merged ones. */
static void engine_collapse_done(struct engine_claim *c, const struct db_request_line *v, size_t n)
{
	struct engine *e = c->e;
	struct master *m = e->m;
	struct wconn *w = c->w;
	int i = engine_claim_unlink(e, c);
	int64_t *merged = xcalloc(2 * (n + 1), sizeof(*merged));
	int64_t *merged_bsids = merged + n + 1;
	int64_t brid = c->brid, bsid = c->bsid;
	for (size_t k = 0; k < n; k++) {
		events_publish_row(m, DB_BUILDREQUESTS, "buildrequests", "buildrequestid",
				   v[k].buildrequestid, "claimed");
		merged[k] = v[k].buildrequestid;
		merged_bsids[k] = v[k].buildsetid;
		if (merged[k] > brid) { /* the build runs the newest; the older joins */
			merged[k] = brid;
			merged_bsids[k] = bsid;
			brid = v[k].buildrequestid;
			bsid = v[k].buildsetid;
		}
	}
	if (n && i >= 0)
		log_info("builder=%s request %lld collapses %zu queued request(s)",
			 m->cfg->builder[i].name, (long long)brid, n);
	bool started = engine_build_begin(e, i, w, brid, bsid, merged, merged_bsids, n);
	free(merged);
	if (!started)
		engine_worker_check_idle(e, w);
	wconn_unref(w);
	free(c);
	if (started)
		engine_kick(e); /* the builder's next request, for its other workers */
}

static void engine_collapse_claimed(void *arg, int r, const struct db_request_line *v, size_t n,
				    const char *err)
{
	struct engine_claim *c = arg;
	if (!c->e) {
		free(c);
		return;
	}
	if (r < 0) {
		log_error("request=%lld cannot claim the requests it collapses: %s",
			  (long long)c->brid, err ? err : "failed");
		n = 0;
	}
	engine_collapse_done(c, v, n);
}

/* The compatible queued requests are in (v[0] is c's own): those that
 * collapse_requests takes are claimed. */
static void engine_collapse_read(void *arg, int r, const struct db_request_line *v, size_t n,
				 const char *err)
{
	struct engine_claim *c = arg;
	struct engine *e = c->e;
	if (!e) {
		free(c);
		return;
	}
	struct master *m = e->m;
	int i = engine_builder_index(e, c->builderid);
	if (r < 0)
		log_error("request=%lld cannot look for requests to collapse: %s",
			  (long long)c->brid, err ? err : "failed");
	if (r < 0 || i < 0 || n < 2) {
		engine_collapse_done(c, NULL, 0);
		return;
	}
	const struct config_builder *bc = &m->cfg->builder[i];
	int mode = bc->collapse_requests, fn = bc->collapse_fn;
	if (mode == CONFIG_COLLAPSE_DEFAULT) {
		mode = m->cfg->collapse_requests;
		fn = m->cfg->collapse_fn;
	}
	int64_t *ids = xcalloc(n, sizeof(*ids));
	size_t nids = 0;
	for (size_t k = 1; k < n && mode != CONFIG_COLLAPSE_NO; k++) {
		if (mode == CONFIG_COLLAPSE_FN) {
			struct config_request_view ov, nv;
			engine_request_view(&v[0], &ov);
			engine_request_view(&v[k], &nv);
			char *fn_err = NULL;
			int cr = config_call_collapse(m->cfg, fn, bc->name, &ov, &nv, &fn_err);
			if (cr < 0) {
				log_warn("builder=%s collapse_requests failed (not collapsing): %s",
					 bc->name, fn_err);
				free(fn_err);
			}
			if (cr <= 0)
				continue;
		}
		ids[nids++] = v[k].buildrequestid;
	}
	if (nids && db_request_claim_many_async(m->db, ids, nids, m->masterid, clock_wall(),
						engine_collapse_claimed, c) == 0) {
		free(ids);
		return;
	}
	if (nids)
		log_error("builder=%s cannot claim the requests to collapse: %s", bc->name,
			  db_errmsg(m->db));
	free(ids);
	engine_collapse_done(c, NULL, 0);
}

/* The claimed request req goes to w (its slot not held by the caller):
 * the build starts, once collapse_requests, if the builder has it, has
 * claimed the requests it takes.  False if it cannot: every request
 * claimed here is released. */
static bool engine_claimed_start(struct engine *e, int i, struct wconn *w,
				 const struct db_request *req)
{
	struct master *m = e->m;
	const struct config_builder *bc = i < 0 ? NULL : &m->cfg->builder[i];
	/* slice "locks": a build starts only if its builder's locks are free
	 * (Buildbot's canStartBuild); one whose build is still opening has
	 * not taken them yet, so none starts meanwhile */
	bool locked = bc && bc->nlocks &&
		      (e->opening_locked ||
		       !locks_available(e->locks, bc->locks, bc->nlocks, w->cfg->name));
	if (!bc || !engine_worker_usable(w) || m->draining || locked) {
		/* the builder left the configuration, the worker went away or
		 * was paused meanwhile, or the locks are taken: the request goes
		 * back to the queue */
		db_request_unclaim(m->db, req->buildrequestid);
		return false;
	}
	events_publish_row(m, DB_BUILDREQUESTS, "buildrequests", "buildrequestid",
			   req->buildrequestid, "claimed");
	latent_activity(m->latent, w->cfg); /* not idle */
	int mode = bc->collapse_requests == CONFIG_COLLAPSE_DEFAULT ? m->cfg->collapse_requests
								    : bc->collapse_requests;
	if (mode != CONFIG_COLLAPSE_NO) {
		struct engine_claim *c = xmalloc(sizeof(*c));
		*c = (struct engine_claim){.e = e,
					   .builderid = e->builderids[i],
					   .w = w,
					   .brid = req->buildrequestid,
					   .bsid = req->buildsetid,
					   .locked = bc->nlocks > 0};
		if (db_request_compatible_async(m->db, req->buildrequestid, ENGINE_MAX_COLLAPSE,
						engine_collapse_read, c) == 0) {
			engine_claim_link(e, c, (size_t)i);
			if (c->locked)
				e->opening_locked++;
			return true;
		}
		log_error("builder=%s cannot look for requests to collapse: %s", bc->name,
			  db_errmsg(m->db));
		free(c);
	}
	return engine_build_begin(e, i, w, req->buildrequestid, req->buildsetid, NULL, NULL, 0);
}

static void engine_claimed(void *arg, int r, const struct db_request *req, const char *err)
{
	struct engine_claim *c = arg;
	struct engine *e = c->e;
	if (!e) {
		free(c);
		return;
	}
	struct wconn *w = c->w;
	int i = engine_claim_unlink(e, c);
	int64_t builderid = c->builderid;
	free(c);
	bool started = false;
	if (r < 0)
		log_error("cannot claim a request of builder %lld: %s", (long long)builderid,
			  err ? err : "failed");
	else if (req)
		started = engine_claimed_start(e, i, w, req);
	if (!started)
		engine_worker_check_idle(e, w);
	wconn_unref(w);
	if (started)
		engine_kick(e); /* the builder's next request, for its other workers */
}

/* Claims builder i's best request for its idle worker with the most room,
 * unless a claim of it is in flight or it has no idle worker (then a
 * latent one is started, if it has any). */
static void engine_claim_send(struct engine *e, size_t i)
{
	struct master *m = e->m;
	if (e->claiming[i] || (m->cfg->builder[i].nlocks && e->opening_locked))
		return;
	struct wconn *w = pick_worker(e, i);
	if (!w) {
		latent_demand(m->latent, i);
		return;
	}
	struct engine_claim *c = xmalloc(sizeof(*c));
	*c = (struct engine_claim){.e = e, .builderid = e->builderids[i], .w = w};
	int r = db_request_claim_next_async(m->db, c->builderid, m->masterid, clock_wall(),
					    engine_claimed, c);
	if (r < 0) {
		log_error("builder=%s cannot claim a request: %s", m->cfg->builder[i].name,
			  db_errmsg(m->db));
		free(c);
		return;
	}
	engine_claim_link(e, c, i);
}

/* A claim by the Lua dispatch hooks' choice came (engine_claimed's work);
 * a request another master took first: the queue is looked at again. */
static void engine_hooks_claimed(void *arg, int r, const struct db_request *req, const char *err)
{
	struct engine_claim *c = arg;
	struct engine *e = c->e;
	engine_claimed(c, r, req, err);
	if (e && r == 0 && !req)
		engine_kick(e);
}

/* The head of builder i's queue came: next_build picks a request,
 * next_worker its worker, and that request is claimed. */
static void engine_hooks_head(void *arg, int r, const struct db_request_head *v, size_t n,
			      const char *err)
{
	struct engine_claim *c = arg;
	struct engine *e = c->e;
	if (!e) {
		free(c);
		return;
	}
	struct master *m = e->m;
	struct wconn *w = c->w;
	int i = engine_claim_unlink(e, c);
	free(c);
	size_t idx = 0;
	if (r < 0)
		log_error("cannot read the queue: %s", err ? err : "failed");
	const struct config_builder *bc = i >= 0 ? &m->cfg->builder[i] : NULL;
	bool go = r >= 0 && bc && n > 0 && !e->stopping && !m->draining &&
		  (!bc->next_build_fn || dispatch_hooks_next_build(e, (size_t)i, v, n, &idx) == 1);
	struct wconn *pick = w;
	if (go && (!engine_worker_usable(w) || w->running >= w->cfg->max_builds)) {
		pick = pick_worker(e, (size_t)i); /* it went away or was taken meanwhile */
		if (!pick)
			latent_demand(m->latent, (size_t)i); /* start one, if it has any */
	}
	/* next_worker may pick another idle worker, or none for now */
	if (go && pick && bc->next_worker_fn &&
	    !dispatch_hooks_next_worker(e, (size_t)i, &v[idx], &pick))
		pick = NULL;
	if (go && pick) {
		struct engine_claim *k = xmalloc(sizeof(*k));
		*k = (struct engine_claim){.e = e, .builderid = e->builderids[i], .w = pick};
		if (db_request_claim_id_async(m->db, v[idx].req.buildrequestid, m->masterid,
					      clock_wall(), engine_hooks_claimed, k) == 0) {
			engine_claim_link(e, k, (size_t)i);
			pick = NULL;
		} else {
			log_error("cannot claim request %lld: %s",
				  (long long)v[idx].req.buildrequestid, db_errmsg(m->db));
			free(k);
		}
	}
	wconn_unref(w);
}

/* Builder i has Lua dispatch hooks (slice "dispatch"): the head of its
 * queue is read on the loop (issue 14), then engine_hooks_head chooses
 * among the workers idle then.  One such read per builder at a time. */
static void engine_hooks_send(struct engine *e, size_t i)
{
	struct master *m = e->m;
	const struct config_builder *bc = &m->cfg->builder[i];
	if (e->claiming[i] || (bc->nlocks && e->opening_locked))
		return;
	struct wconn *w = pick_worker(e, i);
	if (!w) {
		latent_demand(m->latent, i); /* start one, if it has any */
		return;
	}
	/* w's slot is not held meanwhile: other builders may take it (their
	 * hooks may hold their requests back), and the choice looks again */
	struct engine_claim *c = xmalloc(sizeof(*c));
	*c = (struct engine_claim){.e = e, .builderid = e->builderids[i], .w = w, .no_slot = true};
	size_t max = bc->next_build_fn ? KILN_DISPATCH_MAX_REQUESTS : 1;
	if (db_request_queue_head_async(m->db, c->builderid, max, engine_hooks_head, c) < 0) {
		log_error("builder=%s cannot read its queue: %s", bc->name, db_errmsg(m->db));
		free(c);
		return;
	}
	engine_claim_link(e, c, i);
}

/* Hands requests of the builders ids[0..n) (queued ones, in the order to
 * serve them) to idle workers. */
static void engine_distribute_builders(struct engine *e, const int64_t *ids, size_t n)
{
	struct master *m = e->m;
	for (size_t k = 0; k < n; k++) {
		int i = engine_builder_index(e, ids[k]);
		if (i < 0)
			continue; /* a builder no longer configured */
		const struct config_builder *bc = &m->cfg->builder[i];
		if (bc->next_build_fn || bc->next_worker_fn)
			engine_hooks_send(e, (size_t)i);
		else
			engine_claim_send(e, (size_t)i);
	}
}

/* The distributor's listing of the builders with queued requests (issue
 * 14: answered on the loop), then, with prioritize_builders, their
 * queues' summaries.  One is in flight at a time; a kick meanwhile lists
 * again after it. */
struct engine_listing {
	struct engine *e; /* NULL once the engine stopped */
	int64_t *ids;     /* the builders listed, while their summaries are read */
	size_t n;
};

static void engine_listing_done(struct engine *e)
{
	e->listing = NULL;
	if (e->relist) {
		e->relist = false;
		engine_kick(e);
	}
}

static void engine_summaries_read(void *arg, int r, const int64_t *sids, const int *prio,
				  const double *oldest, size_t ns, const char *err)
{
	struct engine_listing *l = arg;
	struct engine *e = l->e;
	if (e && r < 0)
		log_error("cannot read the queues' summaries: %s", err ? err : "failed");
	if (e && !e->stopping) {
		if (r >= 0) /* prioritize_builders: the order to serve them */
			dispatch_hooks_order_builders(e, l->ids, l->n, sids, prio, oldest, ns);
		engine_distribute_builders(e, l->ids, l->n);
	}
	if (e)
		engine_listing_done(e);
	free(l->ids);
	free(l);
}

static void engine_listed(void *arg, int r, const int64_t *ids, size_t n, const char *err)
{
	struct engine_listing *l = arg;
	struct engine *e = l->e;
	free(l);
	if (!e)
		return;
	e->listing = NULL;
	if (r < 0) {
		log_error("cannot list queued requests: %s", err ? err : "failed");
	} else if (!e->stopping && dispatch_hooks_want_order(e, n)) {
		struct engine_listing *o = xcalloc(1, sizeof(*o));
		o->e = e;
		o->ids = xmalloc((n + 1) * sizeof(*o->ids));
		memcpy(o->ids, ids, n * sizeof(*o->ids));
		o->n = n;
		if (db_request_summaries_async(e->m->db, o->ids, n, engine_summaries_read, o) ==
		    0) {
			e->listing = o; /* kicks meanwhile list again after it */
			return;
		}
		log_error("cannot read the queues' summaries: %s", db_errmsg(e->m->db));
		engine_distribute_builders(e, o->ids, n);
		free(o->ids);
		free(o);
	} else if (!e->stopping) {
		engine_distribute_builders(e, ids, n);
	}
	engine_listing_done(e);
}

static void engine_distribute(struct engine *e)
{
	struct master *m = e->m;
	/* draining: slice "operator"; with no worker connected only a latent
	 * worker can take a request (latent.h) */
	if (e->stopping || (!e->workers && !latent_any(m->latent)) || m->draining)
		return;
	if (e->listing) {
		e->relist = true;
		return;
	}
	struct engine_listing *l = xcalloc(1, sizeof(*l));
	l->e = e;
	if (db_request_pending_builders_async(m->db, engine_listed, l) < 0) {
		log_error("cannot list queued requests: %s", db_errmsg(m->db));
		free(l);
		return;
	}
	e->listing = l;
}

static void kick_cb(uv_idle_t *h)
{
	struct engine *e = h->data;
	uv_idle_stop(h);
	e->kick_pending = false;
	engine_reconfig_gc(e);        /* slice "reconfig": generations no longer used */
	locks_dispatch(e->locks);     /* slice "locks": builds whose locks came free go on */
	build_locks_check_workers(e); /* slice "locks": or end if their worker went away */
	engine_distribute(e);
}

/* slice "locks": locks were released: waiters and queued requests may go on */
static void engine_locks_notify(void *ud)
{
	engine_kick(ud);
}

void engine_kick(struct engine *e)
{
	if (e->kick_pending || e->stopping)
		return;
	e->kick_pending = true;
	/* an idle handle runs on the next loop turn without blocking in poll */
	uv_idle_start(&e->kick, kick_cb);
}

void engine_build_done(struct engine *e, struct build *b)
{
	for (struct build **pp = &e->builds; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	struct wconn *w = build_worker(b);
	/* its idle time starts now (latent); slice "workerctl": a stopping
	 * worker shuts down when idle; slice "reconfig": a removed worker goes */
	if (w)
		engine_worker_slot_freed(e, w);
	build_free(b);
	engine_kick(e);
}

static void engine_reap_commands(struct engine *e)
{
	while (e->dead_cmds) {
		struct rcmd *c = e->dead_cmds;
		e->dead_cmds = c->next;
		free(c);
	}
}

static void engine_reap_cb(uv_idle_t *h)
{
	struct engine *e = h->data;
	uv_idle_stop(h);
	engine_reap_commands(e);
}

void engine_defer_free_command(struct engine *e, struct rcmd *c)
{
	c->next = e->dead_cmds;
	e->dead_cmds = c;
	/* idle callbacks of the next turn: never inside the current callback
	 * (starting an active idle handle is a no-op).  Workers close before
	 * engine_free(), so nothing is deferred once the handle is closing;
	 * starting a closing handle would corrupt libuv's idle queue. */
	if (!uv_is_closing((uv_handle_t *)&e->reap))
		uv_idle_start(&e->reap, engine_reap_cb);
}

int engine_new(struct master *m, struct engine **ret)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	e->m = m;
	e->builderids = xcalloc(m->cfg->nbuilders + 1, sizeof(*e->builderids));
	engine_index_config(e, m->cfg);
	e->cfg_locks = config_ref(m->cfg);     /* slice "reconfig": e->locks borrows its locks */
	e->cfg_reporters = config_ref(m->cfg); /* slice "reconfig": and the reporters theirs */
	uv_idle_init(m->loop, &e->kick);
	e->kick.data = e;
	uv_idle_init(m->loop, &e->reap);
	e->reap.data = e;
	e->handles_open = 2;
	e->interrupt_timeout_ms = ENGINE_INTERRUPT_TIMEOUT_MS;
	e->dup_probe_ms = ENGINE_DUP_PROBE_MS;
	e->locks = locks_new(m->cfg->lock, m->cfg->nlocks, engine_locks_notify, e); /* "locks" */
	e->hooks = dispatch_hooks_new(m->cfg->nbuilders); /* slice "dispatch" */
	engine_init_worker_ops(e);

	int r;
	for (size_t i = 0; i < m->cfg->nbuilders; i++) {
		const struct config_builder *b = &m->cfg->builder[i];
		json_t *tags = json_array();
		for (size_t k = 0; k < b->ntags; k++)
			json_array_append_new(tags, json_string(b->tags[k]));
		_cleanup_free_ char *tags_text = json_dumps(tags, JSON_COMPACT);
		json_decref(tags);
		r = db_builder_ensure(m->db, b->name, b->description, tags_text, &e->builderids[i]);
		if (r < 0)
			goto fail;
		r = db_builder_set_masters(m->db, e->builderids[i], &m->masterid, 1);
		if (r < 0)
			goto fail;
	}
	engine_index_builder_ids(e, m->cfg->nbuilders);
	e->workerids = xcalloc(m->cfg->nworkers + 1, sizeof(*e->workerids));
	for (size_t i = 0; i < m->cfg->nworkers; i++) {
		const struct config_worker *w = &m->cfg->worker[i];
		int64_t wid;
		r = db_worker_ensure(m->db, w->name, &wid);
		if (r < 0)
			goto fail;
		e->workerids[i] = wid;
		r = db_worker_set_connected(m->db, wid, 0);
		if (r < 0)
			goto fail;
		size_t nb = e->nworker_builders[i];
		int64_t *bids = xcalloc(nb + 1, sizeof(*bids));
		for (size_t k = 0; k < nb; k++)
			bids[k] = e->builderids[e->worker_builders[i][k]];
		r = db_worker_set_configured(m->db, wid, m->masterid, bids, nb);
		free(bids);
		if (r < 0)
			goto fail;
	}
	/* a previous run that died left builds running: they are retried */
	r = db_master_recover(m->db, m->masterid, RESULTS_RETRY,
			      "interrupted: the master stopped during the build", clock_wall());
	if (r < 0)
		goto fail;
	r = db_flush(m->db);
	if (r < 0)
		goto fail;
	*ret = e;
	engine_kick(e);
	return 0;
fail:
	log_error("cannot prepare the database: %s", db_errmsg(m->db));
	e->stopping = true;
	engine_free(e);
	return r;
}

const struct ws_conn_ops *engine_worker_ops(struct engine *e)
{
	return &e->worker_ops;
}

int engine_stop_build(struct engine *e, int64_t buildid, const char *reason)
{
	for (struct build *b = e->builds; b; b = b->next)
		if (build_id(b) == buildid) {
			build_stop(b, reason);
			return 0;
		}
	return 0;
}

/* A cancellation: the claim of the requests, then their completions. */
struct engine_cancel {
	struct master *m;
	char *reason; /* owned */
	int pending;  /* answers still to come */
	int r;        /* the first failure */
	engine_done_fn done;
	void *arg;
};

static void engine_cancel_answered(void *arg, int r)
{
	struct engine_cancel *c = arg;
	if (r < 0 && c->r == 0)
		c->r = r;
	if (--c->pending > 0)
		return;
	if (c->done)
		c->done(c->arg, c->r);
	free(c->reason);
	free(c);
}

static void engine_cancel_claimed(void *arg, int r, const struct db_request_line *v, size_t n,
				  const char *err)
{
	struct engine_cancel *c = arg;
	if (r < 0 && r != -ECANCELED)
		log_error("cannot claim requests to cancel them: %s", err ? err : "failed");
	double now = clock_wall();
	for (size_t k = 0; k < n; k++) {
		log_info("request=%lld cancelled: %s", (long long)v[k].buildrequestid,
			 c->reason ? c->reason : "");
		c->pending++;
		if (build_complete_request(c->m, v[k].buildrequestid, v[k].buildsetid,
					   RESULTS_CANCELLED, now, engine_cancel_answered, c) < 0)
			engine_cancel_answered(c, KILN_EDB);
	}
	engine_cancel_answered(c, r); /* the claim's own */
}

int engine_cancel_requests(struct engine *e, const int64_t *ids, size_t n, const char *reason,
			   engine_done_fn done, void *arg)
{
	struct master *m = e->m;
	struct engine_cancel *c = xmalloc(sizeof(*c));
	*c = (struct engine_cancel){.m = m,
				    .reason = reason ? xstrdup(reason) : NULL,
				    .pending = 1,
				    .done = done,
				    .arg = arg};
	int r = db_request_claim_many_async(m->db, ids, n, m->masterid, clock_wall(),
					    engine_cancel_claimed, c);
	if (r < 0) {
		free(c->reason);
		free(c);
	}
	return r;
}

int64_t engine_builder_id(struct engine *e, const char *name)
{
	const struct config_builder *b = e->m->cfg->builder;
	size_t lo = 0, hi = e->m->cfg->nbuilders;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		size_t i = e->builder_by_name[mid];
		int c = strcmp(b[i].name, name);
		if (c == 0)
			return e->builderids[i];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* A builder's requests that a new buildset may supersede, being read. */
struct engine_supersede {
	struct engine *e;
	int64_t builderid, bsid;
};

static void engine_superseded_read(void *arg, int r, const struct db_request_line *v, size_t n,
				   const char *err)
{
	struct engine_supersede *s = arg;
	struct engine *e = s->e;
	int64_t builderid = s->builderid, bsid = s->bsid;
	free(s);
	if (r == -ECANCELED || e->stopping) /* the master is going */
		return;
	int i = engine_builder_index(e, builderid);
	if (r < 0)
		log_error("builder %lld: cannot find superseded requests: %s", (long long)builderid,
			  err ? err : "failed");
	if (r < 0 || i < 0 || n == 0)
		return;
	const struct config_builder *bc = &e->m->cfg->builder[i];
	_cleanup_free_ char *reason = xasprintf("superseded by buildset %lld", (long long)bsid);
	if (n > 1) {
		int64_t *ids = xcalloc(n, sizeof(*ids));
		for (size_t k = 1; k < n; k++)
			ids[k - 1] = v[k].buildrequestid;
		if (engine_cancel_requests(e, ids, n - 1, reason, NULL, NULL) < 0)
			log_error("builder=%s cannot cancel superseded requests: %s", bc->name,
				  db_errmsg(e->m->db));
		free(ids);
	}
	if (bc->cancel_superseded != CONFIG_SUPERSEDE_RUNNING)
		return;
	for (struct build *b = e->builds; b; b = b->next)
		if (b->builderid == builderid && b->bsid < bsid && !b->open &&
		    build_same_line(b, &v[0]))
			build_stop(b, reason);
}

void engine_buildset_added(struct engine *e, int64_t bsid, const int64_t *builderids, size_t n,
			   bool from_changes)
{
	struct master *m = e->m;
	engine_kick(e);
	if (!from_changes)
		return;
	for (size_t k = 0; k < n; k++) {
		int i = engine_builder_index(e, builderids[k]);
		if (i < 0 || m->cfg->builder[i].cancel_superseded == CONFIG_SUPERSEDE_NONE)
			continue;
		struct engine_supersede *s = xmalloc(sizeof(*s));
		*s = (struct engine_supersede){.e = e, .builderid = builderids[k], .bsid = bsid};
		if (db_request_superseded_async(m->db, builderids[k], bsid, engine_superseded_read,
						s) < 0) {
			log_error("builder=%s cannot find superseded requests: %s",
				  m->cfg->builder[i].name, db_errmsg(m->db));
			free(s);
		}
	}
}

static void engine_prep_cancel(struct engine *e); /* slice "reconfig" */

void engine_stop(struct engine *e)
{
	struct master *m = e->m;
	e->stopping = true;
	uv_idle_stop(&e->kick);
	engine_prep_cancel(e); /* slice "reconfig" */
	/* claims still in flight answer into nothing; what they claimed is
	 * released with the rest below (db_master_recover) */
	if (e->listing) {
		e->listing->e = NULL;
		e->listing = NULL;
	}
	while (e->claims) {
		struct engine_claim *c = e->claims;
		e->claims = c->next;
		if (!c->no_slot)
			c->w->running--;
		wconn_unref(c->w);
		c->e = NULL;
		c->w = NULL;
	}
	for (struct build *b = e->builds; b; b = b->next)
		build_stop(b, "master shutting down");
	/* what is still running is recorded as interrupted and retried later */
	if (db_master_recover(m->db, m->masterid, RESULTS_RETRY,
			      "interrupted: the master shut down", clock_wall()) < 0)
		log_error("cannot record interrupted builds: %s", db_errmsg(m->db));
	while (e->builds) {
		struct build *b = e->builds;
		e->builds = b->next;
		struct wconn *w = build_worker(b);
		if (w)
			w->running--;
		build_free(b);
	}
	wconn_disconnect_all(e);
	db_flush(m->db);
}

static void engine_free_cb(uv_handle_t *h)
{
	struct engine *e = h->data;
	if (--e->handles_open == 0)
		free(e);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	free(e->builderids);
	free(e->workerids);
	engine_index_free(e, e->m->cfg);
	engine_reconfig_release(e); /* slice "reconfig": retired generations */
	engine_prep_cancel(e);
	free(e->removed_ids);
	config_unref(e->cfg_locks);
	config_unref(e->cfg_reporters);
	free(e->retries);
	locks_free(e->locks);          /* slice "locks" */
	dispatch_hooks_free(e->hooks); /* slice "dispatch" */
	engine_reap_commands(e);
	/* the idle handles are embedded (their data is e): free after both are closed */
	uv_close((uv_handle_t *)&e->kick, engine_free_cb);
	uv_close((uv_handle_t *)&e->reap, engine_free_cb);
}

/* slice "operator": `kiln stop --clean` waits for these to finish */
size_t engine_running_builds(const struct engine *e)
{
	size_t n = 0;
	for (const struct build *b = e->builds; b; b = b->next)
		n++;
	return n;
}

/* slice "operator": /metrics' kiln_workers_connected (attached ones) */
size_t engine_connected_workers(const struct engine *e)
{
	size_t n = 0;
	for (const struct wconn *w = e->workers; w; w = w->next)
		n += w->attached && !w->closed;
	return n;
}

/* ---- slice "reconfig": a new configuration generation -------------------- */

/* A retired generation is kept at least this long: a worker connection
 * authenticated against it but not yet linked (not in e->workers, so not
 * re-pointed) may still point into it for the rest of its handshake. */
#define ENGINE_RETIRED_MIN_MS 10000
/* removed builders remembered for a clear refusal of their forces */
#define ENGINE_MAX_REMOVED_IDS 100000

static bool engine_cfg_holds_worker(const struct config *cfg, const struct config_worker *cw)
{
	return cw >= cfg->worker && cw < cfg->worker + cfg->nworkers;
}

void engine_reconfig_gc(struct engine *e)
{
	if (e->nretired == 0)
		return;
	/* a connection authenticated against a replaced generation but linked
	 * after the reconfig: it was not re-pointed; closed, it logs in again
	 * against the current one */
	for (struct wconn *w = e->workers; w; w = w->next)
		if (!w->removed && !engine_cfg_holds_worker(e->m->cfg, w->cfg)) {
			w->removed = true;
			w->paused = true;
			engine_reconfig_worker_idle(w);
		}
	uint64_t now = clock_mono_ms();
	size_t k = 0;
	for (size_t i = 0; i < e->nretired; i++) {
		struct engine_retired *r = &e->retired[i];
		bool used = now - r->at_ms < ENGINE_RETIRED_MIN_MS;
		for (const struct wconn *w = e->workers; !used && w; w = w->next)
			used = engine_cfg_holds_worker(r->cfg, w->cfg);
		for (const struct build *b = e->builds; !used && b; b = b->next)
			used = b->w && engine_cfg_holds_worker(r->cfg, b->w->cfg);
		if (used)
			e->retired[k++] = *r;
		else
			config_unref(r->cfg);
	}
	e->nretired = k;
}

void engine_reconfig_release(struct engine *e)
{
	for (size_t i = 0; i < e->nretired; i++)
		config_unref(e->retired[i].cfg);
	free(e->retired);
	e->retired = NULL;
	e->nretired = e->retired_alloc = 0;
}

void engine_reconfig_worker_idle(struct wconn *w)
{
	if (!w->removed || w->running > 0 || w->closed || !w->ws)
		return;
	log_info("worker=%s removed from the configuration: disconnecting", w->cfg->name);
	ws_conn_close(w->ws, 1000, "worker removed from the configuration");
}

static char *engine_tags_json(const struct config_builder *b)
{
	json_t *tags = json_array();
	for (size_t k = 0; k < b->ntags; k++)
		json_array_append_new(tags, json_string(b->tags[k]));
	char *text = json_dumps(tags, JSON_COMPACT);
	json_decref(tags);
	return text;
}

/* Buildbot's "builders/ID/started" and ".../stopped" of a builder list change. */
static void engine_builder_event(struct master *m, int64_t id, const char *name, const char *ev)
{
	char key[64];
	snprintf(key, sizeof(key), "builders/%lld/%s", (long long)id, ev);
	if (!events_wanted(m, key))
		return;
	events_publish(m, key,
		       json_pack("{s:I,s:I,s:s}", "builderid", (json_int_t)id, "masterid",
				 (json_int_t)m->masterid, "name", name));
}

/* ---- slice "reconfig": the registrations asked on the loop first ---------- */

struct engine_prep {
	struct engine *e; /* NULL once cancelled */
	struct config *ncfg;
	int64_t *bids, *wids;
	size_t left; /* answers still to come */
	int r;       /* the first failure, and its message */
	char *err;
	engine_prep_fn done;
	void *arg;
};

struct engine_prep_one {
	struct engine_prep *p;
	int64_t *slot;
	const char *kind, *name; /* in p->ncfg */
};

static void engine_prep_free(struct engine_prep *p)
{
	free(p->bids);
	free(p->wids);
	free(p->err);
	free(p);
}

static void engine_ready_release(struct engine *e)
{
	free(e->ready_bids);
	free(e->ready_wids);
	e->ready_bids = e->ready_wids = NULL;
	e->ready_cfg = NULL;
}

static void engine_prep_answered(struct engine_prep *p)
{
	if (--p->left > 0)
		return;
	struct engine *e = p->e;
	if (!e) { /* cancelled: its done was told then */
		engine_prep_free(p);
		return;
	}
	e->prep = NULL;
	engine_prep_fn done = p->done;
	void *arg = p->arg;
	int r = p->r;
	char *err = p->err;
	p->err = NULL;
	if (r == 0) {
		engine_ready_release(e);
		e->ready_cfg = p->ncfg;
		e->ready_bids = p->bids;
		e->ready_wids = p->wids;
		p->bids = p->wids = NULL;
	}
	engine_prep_free(p);
	done(arg, r, err);
}

static void engine_prep_got(void *arg, int r, int64_t id, const char *err)
{
	struct engine_prep_one *one = arg;
	struct engine_prep *p = one->p;
	/* cancelled: one->name was in the configuration, which may be gone */
	if (p->e && r < 0 && p->r == 0) {
		p->r = r;
		p->err = xasprintf("cannot register %s '%s': %s", one->kind, one->name,
				   err ? err : err_str(r));
	} else if (r >= 0) {
		*one->slot = id;
	}
	free(one);
	engine_prep_answered(p);
}

static void engine_prep_ask(struct engine_prep *p, enum db_named kind, const char *name,
			    const char *description, const char *tags, int64_t *slot)
{
	struct db *db = p->e->m->db;
	struct engine_prep_one *one = xmalloc(sizeof(*one));
	*one = (struct engine_prep_one){p, slot, kind == DB_NAMED_BUILDER ? "builder" : "worker",
					name};
	p->left++;
	if (db_ensure_async(db, kind, name, description, tags, engine_prep_got, one) < 0) {
		if (p->r == 0) {
			p->r = -EIO;
			p->err = xasprintf("cannot register %s '%s': %s", one->kind, name,
					   db_errmsg(db));
		}
		free(one);
		p->left--;
	}
}

int engine_reconfig_prepare(struct engine *e, struct config *ncfg, engine_prep_fn done, void *arg)
{
	if (e->prep)
		return -EBUSY;
	struct config *old = e->m->cfg;
	struct engine_prep *p = xcalloc(1, sizeof(*p));
	*p = (struct engine_prep){.e = e, .ncfg = ncfg, .done = done, .arg = arg};
	p->bids = xcalloc(ncfg->nbuilders + 1, sizeof(*p->bids));
	p->wids = xcalloc(ncfg->nworkers + 1, sizeof(*p->wids));
	size_t *bmap = xcalloc(ncfg->nbuilders + 1, sizeof(*bmap));
	config_match_names(old->builder, old->nbuilders, config_builder_name_at, ncfg->builder,
			   ncfg->nbuilders, config_builder_name_at, bmap);
	e->prep = p;
	p->left = 1; /* this call's, so that done runs once, after the asking */
	for (size_t j = 0; j < ncfg->nbuilders; j++) {
		const struct config_builder *b = &ncfg->builder[j];
		size_t i = bmap[j];
		if (i != SIZE_MAX && old->builder[i].fp == b->fp) {
			p->bids[j] = e->builderids[i]; /* unchanged: as engine_reconfig does */
			continue;
		}
		_cleanup_free_ char *tags = engine_tags_json(b);
		engine_prep_ask(p, DB_NAMED_BUILDER, b->name, b->description, tags, &p->bids[j]);
	}
	for (size_t j = 0; j < ncfg->nworkers; j++)
		engine_prep_ask(p, DB_NAMED_WORKER, ncfg->worker[j].name, NULL, NULL, &p->wids[j]);
	free(bmap);
	engine_prep_answered(p);
	return 0;
}

/* engine_stop: a reload waiting for its ids is told it will not happen */
static void engine_prep_cancel(struct engine *e)
{
	engine_ready_release(e);
	struct engine_prep *p = e->prep;
	if (!p)
		return;
	e->prep = NULL;
	p->e = NULL;
	p->done(p->arg, -ECANCELED, NULL);
}

int engine_reconfig(struct engine *e, struct config *ncfg, char **ret_err)
{
	struct master *m = e->m;
	struct config *old = m->cfg;
	int r = 0;

	/* 1. the database: every failure leaves memory as it was */
	size_t *bmap = xcalloc(ncfg->nbuilders + 1, sizeof(*bmap)); /* new -> old index */
	config_match_names(old->builder, old->nbuilders, config_builder_name_at, ncfg->builder,
			   ncfg->nbuilders, config_builder_name_at, bmap);
	/* the ids engine_reconfig_prepare got for ncfg, if it did */
	bool ready = e->ready_cfg == ncfg;
	int64_t *ids = ready ? e->ready_bids : xcalloc(ncfg->nbuilders + 1, sizeof(*ids));
	int64_t *wids = ready ? e->ready_wids : xcalloc(ncfg->nworkers + 1, sizeof(*wids));
	if (ready) {
		e->ready_bids = e->ready_wids = NULL;
		e->ready_cfg = NULL;
	}
	bool *kept = xcalloc(old->nbuilders + 1, sizeof(*kept));
	for (size_t j = 0; j < ncfg->nbuilders; j++) {
		const struct config_builder *b = &ncfg->builder[j];
		size_t i = bmap[j];
		if (i != SIZE_MAX)
			kept[i] = true;
		if (ready)
			continue;
		if (i != SIZE_MAX && old->builder[i].fp == b->fp) {
			ids[j] = e->builderids[i];
			continue;
		}
		/* new, or changed (its description and tags may be) */
		_cleanup_free_ char *tags = engine_tags_json(b);
		r = db_builder_ensure(m->db, b->name, b->description, tags, &ids[j]);
		if (r < 0) {
			*ret_err = xasprintf("cannot register builder '%s': %s", b->name,
					     db_errmsg(m->db));
			goto fail;
		}
	}
	size_t *wmap = xcalloc(ncfg->nworkers + 1, sizeof(*wmap));
	config_match_names(old->worker, old->nworkers, config_worker_name_at, ncfg->worker,
			   ncfg->nworkers, config_worker_name_at, wmap);
	for (size_t j = 0; !ready && j < ncfg->nworkers; j++) {
		r = db_worker_ensure(m->db, ncfg->worker[j].name, &wids[j]);
		if (r < 0) {
			*ret_err = xasprintf("cannot register worker '%s': %s",
					     ncfg->worker[j].name, db_errmsg(m->db));
			free(wmap);
			goto fail;
		}
	}

	/* 2. the new tables (allocation only) */
	int64_t *old_ids = e->builderids, *old_wids = e->workerids;
	size_t **old_wb = e->worker_builders, *old_nwb = e->nworker_builders;
	size_t **old_bw = e->builder_workers;
	struct wconn **old_conn = e->conn;
	size_t *old_by_name = e->builder_by_name, *old_by_id = e->builder_by_id;
	e->builderids = ids;
	e->workerids = wids;
	engine_index_config(e, ncfg);
	engine_index_builder_ids(e, ncfg->nbuilders);

	/* 3. the swap: from here on nothing fails */
	m->cfg = ncfg;
	size_t *winv = xcalloc(old->nworkers + 1, sizeof(*winv)); /* old -> new index */
	for (size_t i = 0; i <= old->nworkers; i++)
		winv[i] = SIZE_MAX;
	for (size_t j = 0; j < ncfg->nworkers; j++)
		if (wmap[j] != SIZE_MAX)
			winv[wmap[j]] = j;
	bool old_pinned = false; /* a connection still points into old */
	for (struct wconn *w = e->workers, *next; w; w = next) {
		next = w->next;
		if (!engine_cfg_holds_worker(old, w->cfg))
			continue; /* removed by an earlier reconfig */
		size_t i = (size_t)(w->cfg - old->worker);
		size_t j = winv[i];
		if (j != SIZE_MAX) {
			/* the same worker: its new declaration (max_builds, properties,
			 * password: checked at its next login) */
			w->cfg = &ncfg->worker[j];
			if (old_conn[i] == w)
				e->conn[j] = w;
			continue;
		}
		old_pinned = true;
		if (!w->removed) {
			w->removed = true;
			w->paused = true; /* the distributor never sees it again anyway */
			log_info("worker=%s removed from the configuration (%d build(s) to finish)",
				 w->cfg->name, w->running);
		}
		engine_reconfig_worker_idle(w);
	}
	/* builders: this master's, or no master's any more (Buildbot shows a
	 * removed builder with masterids empty; its queued requests stay) */
	for (size_t i = 0; i < old->nbuilders; i++) {
		if (kept[i])
			continue;
		if (db_builder_set_masters(m->db, old_ids[i], NULL, 0) < 0)
			log_error("builder=%s cannot be unregistered: %s", old->builder[i].name,
				  db_errmsg(m->db));
		engine_builder_event(m, old_ids[i], old->builder[i].name, "stopped");
		if (e->nremoved_ids < ENGINE_MAX_REMOVED_IDS) {
			ARRAY_GROW(e->removed_ids, e->nremoved_ids + 1, e->removed_ids_alloc);
			e->removed_ids[e->nremoved_ids++] = old_ids[i];
		}
	}
	for (size_t j = 0; j < ncfg->nbuilders; j++) {
		bool added = bmap[j] == SIZE_MAX;
		if (!added && old->builder[bmap[j]].fp == ncfg->builder[j].fp)
			continue;
		if (db_builder_set_masters(m->db, ids[j], &m->masterid, 1) < 0)
			log_error("builder=%s cannot be registered: %s", ncfg->builder[j].name,
				  db_errmsg(m->db));
		if (added)
			engine_builder_event(m, ids[j], ncfg->builder[j].name, "started");
		else
			events_publish_row(m, DB_BUILDERS, "builders", "builderid", ids[j],
					   "update");
	}
	for (size_t j = 0; j < ncfg->nworkers; j++) {
		size_t nb = e->nworker_builders[j];
		int64_t *bids = xcalloc(nb + 1, sizeof(*bids));
		for (size_t k = 0; k < nb; k++)
			bids[k] = e->builderids[e->worker_builders[j][k]];
		if (db_worker_set_configured(m->db, wids[j], m->masterid, bids, nb) < 0)
			log_error("worker=%s cannot be registered: %s", ncfg->worker[j].name,
				  db_errmsg(m->db));
		free(bids);
	}
	for (size_t i = 0; i < old->nworkers; i++) {
		if (winv[i] != SIZE_MAX)
			continue;
		if (db_worker_set_configured(m->db, old_wids[i], m->masterid, NULL, 0) < 0)
			log_error("worker=%s cannot be unregistered: %s", old->worker[i].name,
				  db_errmsg(m->db));
	}
	/* the distributor's hooks keep per-builder slots: new ones for the new builders */
	dispatch_hooks_free(e->hooks);
	e->hooks = dispatch_hooks_new(ncfg->nbuilders);

	/* the old tables go */
	for (size_t i = 0; old_wb && i < old->nworkers; i++)
		free(old_wb[i]);
	for (size_t i = 0; old_bw && i < old->nbuilders; i++)
		free(old_bw[i]);
	free(old_wb);
	free(old_nwb);
	free(old_bw);
	free(old_conn);
	free(old_by_name);
	free(old_by_id);
	free(old_ids);
	free(old_wids);
	free(winv);
	free(wmap);
	free(bmap);
	free(kept);
	/* the master's reference moves to the new generation; removed workers'
	 * connections keep the old one until they are gone */
	if (old_pinned || old->nworkers) {
		ARRAY_GROW(e->retired, e->nretired + 1, e->retired_alloc);
		e->retired[e->nretired++] = (struct engine_retired){old, clock_mono_ms()};
	} else
		config_unref(old);
	engine_kick(e);
	return 0;
fail:
	free(ids);
	free(wids);
	free(bmap);
	free(kept);
	return r;
}

bool engine_builder_removed(struct engine *e, int64_t builderid)
{
	if (!e || engine_builder_index(e, builderid) >= 0)
		return false;
	for (size_t i = 0; i < e->nremoved_ids; i++)
		if (e->removed_ids[i] == builderid)
			return true;
	return false;
}

void engine_pin_reporters(struct engine *e, struct config *cfg)
{
	struct config *old = e->cfg_reporters;
	e->cfg_reporters = config_ref(cfg);
	config_unref(old);
}
