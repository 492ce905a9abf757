/*
 * The JSON-RPC control calls (POST to an entity URL, envelope checked in
 * api-parse.c): force on /forceschedulers/{name}, stop on /builds/{id},
 * cancel on /buildrequests/{id}.  They translate Buildbot's parameters and
 * call the engine; errors keep Buildbot's codes and messages.
 */
#define LOG_SUBSYS "api"

#include "master/api-int.h"
#include "master/engine.h"
#include "master/master.h"
#include "master/sched/sched.h"
#include "db/db.h"

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *api_param_str(json_t *params, const char *name, const char *def)
{
	const char *v = json_string_value(json_object_get(params, name));
	return v ? v : def;
}

static void api_engine_error(struct api_ctx *ctx, json_t *id, int r)
{
	if (r == KILN_EDB && db_disk_full(ctx->db)) { /* slice "faults": say which error */
		api_rpc_reply_error(ctx, 500, id, -32603,
				    "database write failed: database or disk is full");
		return;
	}
	api_rpc_reply_error(ctx, 500, id, -32603, err_str(r));
}

/* A configured builder's id: from the engine's index (a binary search; a
 * database query per builder took 13 s over 100,000 builders), else from
 * the database.  1 found, 0 not, negative on error. */
/* The scheduler's builder indexes sorted by name, so that a call naming
 * thousands of builders of a scheduler with thousands more stays
 * O(n log n); NULL (a plain scan) for a small scheduler. */
static const struct config_scheduler *api_rpc_sort_sc;

static int api_rpc_order_cmp(const void *a, const void *b)
{
	return strcmp(api_rpc_sort_sc->builders[*(const size_t *)a],
		      api_rpc_sort_sc->builders[*(const size_t *)b]);
}

static size_t *api_rpc_sched_order(const struct config_scheduler *sc)
{
	if (sc->nbuilders <= 16)
		return NULL;
	size_t *order = xreallocarray(NULL, sc->nbuilders, sizeof(*order));
	for (size_t i = 0; i < sc->nbuilders; i++)
		order[i] = i;
	api_rpc_sort_sc = sc;
	qsort(order, sc->nbuilders, sizeof(*order), api_rpc_order_cmp);
	api_rpc_sort_sc = NULL;
	return order;
}

/* The index of builder name in sc (sc->nbuilders when it is not there). */
static size_t api_rpc_sched_builder(const struct config_scheduler *sc, const size_t *order,
				    const char *name)
{
	if (!order) {
		size_t k = 0;
		while (k < sc->nbuilders && strcmp(sc->builders[k], name))
			k++;
		return k;
	}
	size_t lo = 0, hi = sc->nbuilders;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(sc->builders[order[mid]], name);
		if (c == 0)
			return order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return sc->nbuilders;
}

static int api_force_builder_id(struct api_ctx *ctx, const char *name, int64_t *ret_id)
{
	if (!ctx->m->engine)
		return api_builder_id(ctx, name, ret_id);
	int64_t id = engine_builder_id(ctx->m->engine, name);
	if (id > 0)
		*ret_id = id;
	return id > 0;
}

/* Collects the builder ids to force; answers errors itself (returns false). */
static bool api_force_builders(struct api_ctx *ctx, struct api_rpc *rpc,
			       const struct config_scheduler *sc, int64_t **ret_ids, size_t *ret_n)
{
	json_t *params = rpc->params;
	json_t *bid = json_object_get(params, "builderid");
	json_t *names = json_object_get(params, "builderNames");
	int64_t *ids = NULL;
	size_t n = 0;

	if (json_is_null(bid))
		bid = NULL;
	if (json_is_null(names))
		names = NULL;
	if (bid) {
		long long v = -1;
		if (json_is_integer(bid))
			v = json_integer_value(bid);
		else if (json_is_string(bid) && str_to_i64(json_string_value(bid), &v) < 0)
			v = -1;
		else if (!json_is_string(bid)) {
			api_rpc_reply_error(ctx, 400, rpc->id, -32602,
					    "'builderid' must be an integer");
			return false;
		}
		bool ok = false;
		for (size_t i = 0; v > 0 && i < sc->nbuilders && !ok; i++) {
			int64_t id;
			int r = api_force_builder_id(ctx, sc->builders[i], &id);
			if (r < 0)
				return false;
			ok = r > 0 && id == v;
		}
		if (!ok && v > 0 && engine_builder_removed(ctx->m->engine, v)) {
			/* slice "reconfig" (others: Buildbot's answer below) */
			char *msg = xasprintf("builder %lld was removed from the configuration: it "
					      "takes no new builds",
					      (long long)v);
			api_rpc_reply_error(ctx, 400, rpc->id, -32602, msg);
			free(msg);
			return false;
		}
		if (!ok) {
			api_rpc_reply_error(
				ctx, 500, rpc->id, -32603,
				"TypeError(\"'NoneType' object is not subscriptable\")");
			return false;
		}
		ids = xmalloc(sizeof(*ids));
		ids[n++] = v;
	} else if (names) {
		if (!json_is_array(names)) {
			api_rpc_reply_error(ctx, 400, rpc->id, -32602,
					    "'builderNames' must be a list of builder names");
			return false;
		}
		if (json_array_size(names) > KILN_FORCE_MAX_BUILDER_NAMES) {
			char *msg = xasprintf("'builderNames' lists more than %u names",
					      (unsigned)KILN_FORCE_MAX_BUILDER_NAMES);
			api_rpc_reply_error(ctx, 400, rpc->id, -32602, msg);
			free(msg);
			return false;
		}
		/* each builder once, however often it is named: one request each */
		_cleanup_free_ bool *seen = xcalloc(sc->nbuilders + 1, sizeof(*seen));
		_cleanup_free_ size_t *order = api_rpc_sched_order(sc);
		size_t i;
		json_t *name;
		bool ok = json_array_size(names) > 0;
		ids = xcalloc(sc->nbuilders + 1, sizeof(*ids));
		json_array_foreach(names, i, name)
		{
			const char *s = json_string_value(name);
			if (!s) {
				free(ids);
				api_rpc_reply_error(ctx, 400, rpc->id, -32602,
						    "'builderNames' must be a list of strings");
				return false;
			}
			size_t k = api_rpc_sched_builder(sc, order, s);
			if (k == sc->nbuilders) {
				ok = false; /* not this scheduler's */
				break;
			}
			if (seen[k])
				continue;
			seen[k] = true;
			int r = api_force_builder_id(ctx, s, &ids[n]);
			if (r < 0) {
				free(ids);
				return false;
			}
			if (r == 0) {
				ok = false;
				break;
			}
			n++;
		}
		if (!ok) {
			free(ids);
			api_rpc_reply_error(
				ctx, 500, rpc->id, -32603,
				"KeyError('builderNames not specified or not supported')");
			return false;
		}
	} else {
		/* params {}: every builder of the scheduler, as Buildbot does */
		ids = xcalloc(sc->nbuilders + 1, sizeof(*ids));
		for (size_t i = 0; i < sc->nbuilders; i++) {
			int r = api_force_builder_id(ctx, sc->builders[i], &ids[n]);
			if (r < 0) {
				free(ids);
				return false;
			}
			if (r > 0)
				n++;
		}
		if (n == 0) {
			free(ids);
			api_rpc_reply_error(
				ctx, 500, rpc->id, -32603,
				"KeyError('builderNames not specified or not supported')");
			return false;
		}
	}
	*ret_ids = ids;
	*ret_n = n;
	return true;
}

void api_force_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	const struct config *cfg = ctx->m->cfg;
	const struct config_scheduler *sc = NULL;

	for (size_t i = 0; cfg && i < cfg->nschedulers && !sc; i++)
		if (cfg->scheduler[i].kind == CONFIG_SCHED_FORCE &&
		    !strcmp(cfg->scheduler[i].name, ctx->cap[0]))
			sc = &cfg->scheduler[i];
	if (!sc) {
		api_rpc_reply_error(
			ctx, 500, rpc->id, -32603,
			"AttributeError(\"'NoneType' object has no attribute 'force'\")");
		return;
	}
	if (strcmp(rpc->method, "force")) {
		/* Buildbot answers any other method here with null and does nothing */
		api_rpc_reply_result(ctx, rpc->id, json_null());
		return;
	}

	int64_t *ids = NULL;
	size_t n = 0;
	if (!api_force_builders(ctx, rpc, sc, &ids, &n))
		return;

	int64_t bsid = 0;
	int64_t *brids = xcalloc(n, sizeof(*brids));
	char *err = NULL;
	int r = ctx->m->sched ? sched_force(ctx->m->sched, sc->name, rpc->params, ids, n, &bsid,
					    brids, &err)
			      : -ENOTCONN;
	if (r >= 0)
		r = db_flush(ctx->db); /* the answer acknowledges a stored buildset */
	if (r == -EINVAL) {
		/* a parameter failed its declaration's checks: error.data names it */
		api_force_reply_invalid(ctx, rpc->id, sc, err);
	} else if (r < 0) {
		log_warn("force '%s' failed: %s", sc->name, err_str(r));
		api_engine_error(ctx, rpc->id, r);
	} else {
		json_t *map = json_object();
		for (size_t i = 0; i < n; i++) {
			char k[32];
			snprintf(k, sizeof(k), "%" PRId64, ids[i]);
			json_object_set_new(map, k, json_integer(brids[i]));
		}
		log_info("forced buildset %" PRId64 " on '%s' (%zu builders)", bsid, sc->name, n);
		api_rpc_reply_result(ctx, rpc->id, json_pack("[I,o]", (json_int_t)bsid, map));
	}
	free(err);
	free(brids);
	free(ids);
}

void api_build_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	long long id;
	if (!strcmp(rpc->method, "rebuild")) { /* slice "uibuild" */
		api_build_rebuild_rpc(ctx, rpc);
		return;
	}
	if (strcmp(rpc->method, "stop")) {
		char *msg = xasprintf("action: %s is not supported", rpc->method);
		api_rpc_reply_error(ctx, 501, rpc->id, -32601, msg);
		free(msg);
		return;
	}
	str_to_i64(ctx->cap[0], &id);
	const char *reason = api_param_str(rpc->params, "reason", "");
	int r = ctx->m->engine ? engine_stop_build(ctx->m->engine, id, reason) : -ENOTCONN;
	if (r < 0)
		api_engine_error(ctx, rpc->id, r);
	else
		api_rpc_reply_result(ctx, rpc->id, json_null());
}

/* A cancel waiting for the engine's answer. */
struct api_cancel_wait {
	struct api_ctx ctx;
	struct http_deferred *d;
	json_t *id; /* the call's */
};

static void api_request_cancelled(void *arg, int r)
{
	struct api_cancel_wait *w = arg;
	struct api_ctx *ctx = api_deferred_ctx(w->d, &w->ctx, 0, NULL);
	if (ctx && r >= 0)
		r = db_flush(ctx->db);
	if (ctx && r < 0)
		api_engine_error(ctx, w->id, r);
	else if (ctx)
		api_rpc_reply_result(ctx, w->id, json_null());
	json_decref(w->id);
	http_deferred_end(w->d);
	free(w);
}

void api_request_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	long long id = 0;
	if (strcmp(rpc->method, "cancel")) {
		char *msg = xasprintf("action: %s is not supported", rpc->method);
		api_rpc_reply_error(ctx, 501, rpc->id, -32601, msg);
		free(msg);
		return;
	}
	str_to_i64(ctx->cap[0], &id);
	const char *reason = api_param_str(rpc->params, "reason", "");
	if (!ctx->m->engine) {
		api_engine_error(ctx, rpc->id, -ENOTCONN);
		return;
	}
	/* answered once the request is complete (or was not queued) */
	struct api_cancel_wait *w = xcalloc(1, sizeof(*w));
	w->ctx = *ctx;
	w->ctx.ncap = 0;
	w->id = json_incref(rpc->id);
	int64_t brid = id;
	int r = engine_cancel_requests(ctx->m->engine, &brid, 1, reason, api_request_cancelled, w);
	if (r < 0) {
		json_decref(w->id);
		free(w);
		api_engine_error(ctx, rpc->id, r);
		return;
	}
	w->d = http_req_defer(ctx->req);
}
