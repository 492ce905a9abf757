/*
 * /api/v2/workers/... (by id or name, and the builds a worker ran) and
 * /api/v2/masters/...; JSON-RPC pause, unpause, stop (graceful) and kill of a worker.
 */
#define LOG_SUBSYS "api"

#include "master/api-int.h"
#include "master/engine-int.h"
#include "master/events-workers.h"
#include "master/latent.h"
#include "master/master.h"

#include "common/err.h"
#include "common/str.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* latent_state, latent_error, latent_kind (issue 14: latent.h) */
static void api_workers_fix(struct api_ctx *ctx, const struct api_rspec *rs, json_t *item)
{
	(void)rs;
	latent_api_fix(ctx->m->latent, item);
}

void api_workers_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_WORKERS, "workers", false, api_workers_fix, NULL);
}

void api_worker_get(struct api_ctx *ctx)
{
	const char *f[] = {api_is_num(ctx->cap[0]) ? "workerid" : "name", ctx->cap[0], NULL};
	api_list(ctx, DB_WORKERS, "workers", true, api_workers_fix, f);
}

static void api_worker_builds_then(struct api_ctx *ctx, int64_t workerid, void *arg)
{
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, workerid);
	const char *f[] = {"workerid", id, NULL};
	api_list(ctx, DB_BUILDS, "builds", false, api_builds_fix, f);
}

void api_worker_builds_get(struct api_ctx *ctx)
{
	long long id;
	if (api_is_num(ctx->cap[0]) && str_to_i64(ctx->cap[0], &id) == 0) {
		api_worker_builds_then(ctx, id, NULL);
		return;
	}
	const char *f[] = {"name", ctx->cap[0], NULL};
	api_lookup_then(ctx, DB_WORKERS, "workerid", f, api_worker_builds_then, NULL);
}

void api_masters_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_MASTERS, "masters", false, NULL, NULL);
}

void api_master_get(struct api_ctx *ctx)
{
	const char *f[] = {"masterid", ctx->cap[0], NULL};
	api_list(ctx, DB_MASTERS, "masters", true, NULL, f);
}

/* ---- JSON-RPC pause / unpause (slice "uimisc"), stop / kill (slice "workerctl") ---- */

/* The live connection of the configured worker named name, or NULL. */
static struct wconn *api_workers_conn(struct engine *e, const char *name)
{
	const struct config *cfg = e->m->cfg;
	for (size_t i = 0; i < cfg->nworkers; i++)
		if (!strcmp(cfg->worker[i].name, name))
			return e->conn[i];
	return NULL;
}

enum api_worker_action { API_WORKER_PAUSE, API_WORKER_UNPAUSE, API_WORKER_STOP, API_WORKER_KILL };

/* Buildbot's worker control actions (data/workers.py control()):
 * - "pause" (no new builds start on it; running ones go on) and "unpause":
 *   the flag is stored, so it outlives the connection and a restart;
 * - "stop": graceful; nothing new starts on it, its running builds finish,
 *   then it is sent `shutdown`.  Its "graceful" flag is stored and shown
 *   until it connects again;
 * - "kill": `shutdown` and the connection closed now; its running builds
 *   end RETRY (lost connection) as in Buildbot.
 * stop and kill on a worker that is not connected do nothing (Buildbot:
 * "no remote; worker is already shut down").  params may carry "reason"
 * (a string; it is logged). */
/* The row of a worker this master's configuration declares, from memory
 * ([{workerid, name}], as api_fetch gives it), or NULL: the database is
 * asked then (a worker no longer declared). */
static json_t *api_worker_configured(struct api_ctx *ctx, const char *idname)
{
	struct engine *e = ctx->m->engine;
	const struct config *cfg = ctx->m->cfg;
	long long want = 0;
	bool num = api_is_num(idname) && str_to_i64(idname, &want) == 0;
	for (size_t i = 0; e && cfg && i < cfg->nworkers; i++) {
		int64_t id = engine_worker_id(e, &cfg->worker[i]);
		if (id > 0 && (num ? id == want : !strcmp(idname, cfg->worker[i].name)))
			return json_pack("[{s:I,s:s}]", "workerid", (json_int_t)id, "name",
					 cfg->worker[i].name);
	}
	return NULL;
}

void api_worker_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	static const char *const names[] = {"pause", "unpause", "stop", "kill"};
	size_t act = 0;
	while (act < ARRAY_SIZE(names) && strcmp(rpc->method, names[act]))
		act++;
	if (act == ARRAY_SIZE(names)) {
		char *msg = xasprintf("action: %s is not supported", rpc->method);
		api_rpc_reply_error(ctx, 501, rpc->id, -32601, msg);
		free(msg);
		return;
	}
	json_t *reason = json_object_get(rpc->params, "reason");
	if (reason && !json_is_string(reason) && !json_is_null(reason)) {
		api_rpc_reply_error(ctx, 400, rpc->id, -32602, "'reason' must be a string");
		return;
	}
	const char *f[] = {api_is_num(ctx->cap[0]) ? "workerid" : "name", ctx->cap[0], NULL};
	json_t *rows = api_worker_configured(ctx, ctx->cap[0]);
	int r = 0;
	if (!rows && db_is_postgresql(ctx->db))
		rows = json_array(); /* not declared: none to act on (no synchronous read there) */
	else if (!rows)
		r = api_fetch(ctx, DB_WORKERS, f, &rows);
	json_t *row = r >= 0 ? json_array_get(rows, 0) : NULL;
	if (r >= 0 && !row) {
		json_decref(rows);
		api_rpc_reply_error(ctx, 404, rpc->id, -32602, "no such worker");
		return;
	}
	int64_t workerid = row ? json_integer_value(json_object_get(row, "workerid")) : 0;
	const char *name = row ? json_string_value(json_object_get(row, "name")) : NULL;
	struct engine *e = ctx->m->engine;
	struct wconn *w = e && name ? api_workers_conn(e, name) : NULL;
	if (w && (w->closed || !w->ws))
		w = NULL;
	bool pause = act == API_WORKER_PAUSE;
	if (r >= 0 && act <= API_WORKER_UNPAUSE)
		r = db_worker_set_paused(ctx->db, workerid, pause);
	else if (r >= 0 && act == API_WORKER_STOP && w)
		r = db_worker_set_graceful(ctx->db, workerid, true);
	if (r >= 0)
		r = db_flush(ctx->db);
	if (r < 0) {
		json_decref(rows);
		api_rpc_reply_error(ctx, 500, rpc->id, -32603, err_str(r));
		return;
	}
	const char *why = json_string_value(reason);
	if (act >= API_WORKER_STOP)
		log_info("worker=%s %s requested%s%.200s%s", name, names[act], why ? " ('" : "",
			 why ? why : "", why ? "')" : "");
	bool changed = act <= API_WORKER_UNPAUSE;
	if (w && act <= API_WORKER_UNPAUSE) {
		w->paused = pause || w->graceful; /* a stopping worker stays closed to new builds */
		w->pause_set = true; /* a read of the stored pause in flight does not undo it */
	} else if (w && act == API_WORKER_STOP) {
		changed = !w->graceful;
		wconn_stop_gracefully(w);
	} else if (w && act == API_WORKER_KILL) {
		wconn_kill(w); /* workers/N/disconnected follows when it has closed */
	}
	json_decref(rows);
	if (changed)
		events_worker(ctx->m, workerid, "state_updated", false, NULL);
	if (e && act == API_WORKER_UNPAUSE)
		engine_kick(e);
	api_rpc_reply_result(ctx, rpc->id, json_null());
}
