/*
 * The engine: registers builders and workers, turns force requests into
 * buildsets, and runs the distributor, which hands the best queued request
 * of each builder (priority, then age: one index seek per dispatch) to a
 * connected worker with free capacity.  The distributor runs at most once
 * per loop turn, after whatever event kicked it.
 */
#define LOG_SUBSYS "engine"

#include <errno.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/master.h"

void engine_init_worker_ops(struct engine *e);

int engine_builder_index(struct engine *e, int64_t builderid)
{
	for (size_t i = 0; i < e->m->cfg->nbuilders; i++)
		if (e->builderids[i] == builderid)
			return (int)i;
	return -1;
}

/* The attached worker for builder i with the most free capacity, or NULL. */
static struct wconn *pick_worker(struct engine *e, size_t i)
{
	const struct config_builder *bc = &e->m->cfg->builder[i];
	struct wconn *best = NULL;
	int best_free = 0;
	for (struct wconn *w = e->workers; w; w = w->next) {
		if (!w->attached || w->closed)
			continue;
		int free_slots = w->cfg->max_builds - w->running;
		if (free_slots <= best_free)
			continue;
		bool serves = false;
		for (size_t k = 0; k < bc->nworkers && !serves; k++)
			serves = !strcmp(bc->workers[k], w->cfg->name);
		if (serves) {
			best = w;
			best_free = free_slots;
		}
	}
	return best;
}

static void engine_distribute(struct engine *e)
{
	struct master *m = e->m;
	int64_t *ids = NULL;
	size_t n = 0;
	if (e->stopping || !e->workers)
		return;
	int r = db_request_pending_builders(m->db, &ids, &n);
	if (r < 0) {
		log_error("cannot list queued requests: %s", db_errmsg(m->db));
		return;
	}
	for (size_t k = 0; k < n; k++) {
		int i = engine_builder_index(e, ids[k]);
		if (i < 0)
			continue; /* a builder no longer configured */
		for (;;) {
			struct wconn *w = pick_worker(e, (size_t)i);
			if (!w)
				break;
			struct db_request req;
			r = db_request_next(m->db, ids[k], &req);
			if (r <= 0) {
				if (r < 0)
					log_error("cannot read the queue: %s", db_errmsg(m->db));
				break;
			}
			r = db_request_claim(m->db, req.buildrequestid, m->masterid, clock_wall());
			if (r == -EBUSY)
				continue;
			if (r < 0) {
				log_error("cannot claim request %lld: %s",
					  (long long)req.buildrequestid, db_errmsg(m->db));
				break;
			}
			if (!build_start(e, i, w, req.buildrequestid, req.buildsetid)) {
				db_request_unclaim(m->db, req.buildrequestid);
				break;
			}
		}
	}
	free(ids);
}

static void kick_cb(uv_idle_t *h)
{
	struct engine *e = h->data;
	uv_idle_stop(h);
	e->kick_pending = false;
	engine_distribute(e);
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
	if (w)
		w->running--;
	build_free(b);
	engine_kick(e);
}

int engine_new(struct master *m, struct engine **ret)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	e->m = m;
	e->builderids = xcalloc(m->cfg->nbuilders + 1, sizeof(*e->builderids));
	uv_idle_init(m->loop, &e->kick);
	e->kick.data = e;
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
	for (size_t i = 0; i < m->cfg->nworkers; i++) {
		const struct config_worker *w = &m->cfg->worker[i];
		int64_t wid;
		r = db_worker_ensure(m->db, w->name, &wid);
		if (r < 0)
			goto fail;
		r = db_worker_set_connected(m->db, wid, 0);
		if (r < 0)
			goto fail;
		int64_t *bids = xcalloc(m->cfg->nbuilders + 1, sizeof(*bids));
		size_t nb = 0;
		for (size_t k = 0; k < m->cfg->nbuilders; k++)
			for (size_t j = 0; j < m->cfg->builder[k].nworkers; j++)
				if (!strcmp(m->cfg->builder[k].workers[j], w->name))
					bids[nb++] = e->builderids[k];
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

int engine_force(struct engine *e, const char *scheduler, const int64_t *builderids, size_t n,
		 const char *reason, json_t *properties, const struct db_sourcestamp *ss,
		 int64_t *ret_bsid, int64_t *ret_brids)
{
	struct master *m = e->m;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (engine_builder_index(e, builderids[i]) < 0)
			return KILN_ENOTFOUND;
	struct db_sourcestamp empty = {0};
	struct db_buildset_new bs = {
		.reason = reason ? reason : "forced",
		.scheduler = scheduler,
		.properties = properties,
		.sourcestamps = ss ? ss : &empty,
		.nsourcestamps = 1,
		.submitted_at = clock_wall(),
	};
	json_t *props = properties ? json_deep_copy(properties) : json_object();
	if (scheduler && !json_object_get(props, "scheduler"))
		json_object_set_new(props, "scheduler", json_pack("[ss]", scheduler, "Scheduler"));
	bs.properties = props;
	int r = db_buildset_add(m->db, &bs, builderids, n, ret_bsid, ret_brids);
	json_decref(props);
	if (r < 0) {
		log_error("cannot add buildset: %s", db_errmsg(m->db));
		return r;
	}
	log_info("buildset=%lld forced on %zu builder(s): %s", (long long)*ret_bsid, n, bs.reason);
	engine_kick(e);
	return 0;
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

int engine_cancel_request(struct engine *e, int64_t brid, const char *reason)
{
	struct master *m = e->m;
	struct db_request req;
	int r = db_request_get(m->db, brid, &req);
	if (r < 0)
		return r == KILN_ENOTFOUND ? 0 : r;
	if (req.complete || req.claimed)
		return 0;
	double now = clock_wall();
	r = db_request_claim(m->db, brid, m->masterid, now);
	if (r < 0)
		return r == -EBUSY ? 0 : r;
	r = db_request_complete(m->db, brid, RESULTS_CANCELLED, now, NULL);
	if (r < 0)
		return r;
	log_info("request=%lld cancelled: %s", (long long)brid, reason ? reason : "");
	return 0;
}

void engine_stop(struct engine *e)
{
	struct master *m = e->m;
	e->stopping = true;
	uv_idle_stop(&e->kick);
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
	free(h->data);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	free(e->builderids);
	free(e->retries);
	/* the idle handle is embedded: free after it is closed */
	e->kick.data = e;
	uv_close((uv_handle_t *)&e->kick, engine_free_cb);
}
