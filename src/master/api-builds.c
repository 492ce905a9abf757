/*
 * /api/v2/builds/... and /api/v2/steps/...: builds, their properties,
 * steps by number or name, and the logs of a step addressed by slug
 * (their answers are produced by api-logs.c once the logid is known).
 */
#define LOG_SUBSYS "api"

#include "master/api-int.h"
#include "master/engine.h"
#include "master/events.h"
#include "master/master.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_builds_fix(struct api_ctx *ctx, const struct api_rspec *rs, json_t *item)
{
	json_t *props = json_object_get(item, "properties");
	json_t *out = json_object();
	bool all = false;

	for (size_t i = 0; i < rs->nprops; i++)
		all |= !strcmp(rs->props[i], "*");
	if (json_is_object(props) && rs->nprops) {
		const char *key;
		json_t *val;
		json_object_foreach(props, key, val)
		{
			bool keep = all;
			for (size_t i = 0; i < rs->nprops && !keep; i++)
				keep = !strcmp(rs->props[i], key);
			if (keep)
				json_object_set(out, key, val);
		}
	}
	json_object_set_new(item, "properties", out);
	api_numbers_build_fix(ctx, item); /* ETA of a running build (api-numbers.c) */
}

void api_builds_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_BUILDS, "builds", false, api_builds_fix, NULL);
}

void api_build_get(struct api_ctx *ctx)
{
	const char *f[] = {"buildid", ctx->cap[0], NULL};
	api_list(ctx, DB_BUILDS, "builds", true, api_builds_fix, f);
}

static void api_build_properties_then(struct api_ctx *ctx, json_t *items, void *arg)
{
	json_t *build = json_array_get(items, 0);
	if (!build) {
		api_not_found(ctx);
		return;
	}
	json_t *props = json_object_get(build, "properties");
	json_t *list = json_array();
	json_array_append_new(list, json_is_object(props) ? json_incref(props) : json_object());
	api_reply_json(ctx, 200, json_pack("{s:o,s:{}}", "properties", list, "meta"));
}

void api_build_properties_get(struct api_ctx *ctx)
{
	const char *f[] = {"buildid", ctx->cap[0], NULL};
	api_fetch_then(ctx, DB_BUILDS, f, api_build_properties_then, NULL);
}

void api_build_steps_get(struct api_ctx *ctx)
{
	const char *f[] = {"buildid", ctx->cap[0], NULL};
	api_list(ctx, DB_STEPS, "steps", false, api_numbers_step_fix, f);
}

static const char *api_step_key(const char *numname)
{
	return api_is_num(numname) ? "number" : "name";
}

void api_build_step_get(struct api_ctx *ctx)
{
	const char *f[] = {"buildid", ctx->cap[0], api_step_key(ctx->cap[1]), ctx->cap[1], NULL};
	api_list(ctx, DB_STEPS, "steps", true, api_numbers_step_fix, f);
}

/* What a log's handler does once the log is found: api-logs.c's replies. */
struct api_log_then {
	void (*reply)(struct api_ctx *ctx, int64_t logid);
};
static const struct api_log_then api_log_info = {api_log_reply},
				 api_log_contents = {api_log_contents_reply},
				 api_log_raw = {api_log_raw_reply};

static void api_log_found(struct api_ctx *ctx, int64_t logid, void *arg)
{
	((const struct api_log_then *)arg)->reply(ctx, logid);
}

/* stepid + the log's slug -> logid, then what arg says; 404 answered. */
static void api_step_log_then(struct api_ctx *ctx, const char *stepid, const char *slug,
			      const struct api_log_then *then)
{
	const char *f[] = {"stepid", stepid, "slug", slug, NULL};
	api_lookup_then(ctx, DB_LOGS, "logid", f, api_log_found, (void *)then);
}

/* cap[0] = buildid, cap[1] = step number or name -> stepid, then cont. */
static void api_build_step_then(struct api_ctx *ctx, api_id_fn cont, const void *arg)
{
	const char *f[] = {"buildid", ctx->cap[0], api_step_key(ctx->cap[1]), ctx->cap[1], NULL};
	api_lookup_then(ctx, DB_STEPS, "stepid", f, cont, (void *)arg);
}

static void api_build_step_logs_list(struct api_ctx *ctx, int64_t stepid, void *arg)
{
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, stepid);
	const char *f[] = {"stepid", id, NULL};
	api_list(ctx, DB_LOGS, "logs", false, NULL, f);
}

void api_build_step_logs_get(struct api_ctx *ctx)
{
	api_build_step_then(ctx, api_build_step_logs_list, NULL);
}

/* the step found: its log cap[2], then arg's reply */
static void api_build_step_log_found(struct api_ctx *ctx, int64_t stepid, void *arg)
{
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, stepid);
	api_step_log_then(ctx, id, ctx->cap[2], arg);
}

void api_build_step_log_get(struct api_ctx *ctx)
{
	api_build_step_then(ctx, api_build_step_log_found, &api_log_info);
}

void api_build_step_log_contents_get(struct api_ctx *ctx)
{
	api_build_step_then(ctx, api_build_step_log_found, &api_log_contents);
}

void api_build_step_log_raw_get(struct api_ctx *ctx)
{
	api_build_step_then(ctx, api_build_step_log_found, &api_log_raw);
}

/* Kiln extension: every build's steps, filtered and paged like any list (the status board
 * reads the running builds' current steps in one request: ?complete=false). */
void api_steps_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_STEPS, "steps", false, api_numbers_step_fix, NULL);
}

void api_step_get(struct api_ctx *ctx)
{
	const char *f[] = {"stepid", ctx->cap[0], NULL};
	api_list(ctx, DB_STEPS, "steps", true, api_numbers_step_fix, f);
}

void api_step_logs_get(struct api_ctx *ctx)
{
	const char *f[] = {"stepid", ctx->cap[0], NULL};
	api_list(ctx, DB_LOGS, "logs", false, NULL, f);
}

void api_step_log_get(struct api_ctx *ctx)
{
	api_step_log_then(ctx, ctx->cap[0], ctx->cap[1], &api_log_info);
}

void api_step_log_contents_get(struct api_ctx *ctx)
{
	api_step_log_then(ctx, ctx->cap[0], ctx->cap[1], &api_log_contents);
}

void api_step_log_raw_get(struct api_ctx *ctx)
{
	api_step_log_then(ctx, ctx->cap[0], ctx->cap[1], &api_log_raw);
}

/* ---- rebuild (slice "uibuild") ------------------------------------------------------------ */

/* The changes build buildid built (their ids into *ret, malloc'd). */
static int api_builds_changeids(struct api_ctx *ctx, const char *buildid, int64_t **ret,
				size_t *ret_n)
{
	const char *f[] = {"buildid", buildid, NULL};
	json_t *items = NULL;
	*ret = NULL;
	*ret_n = 0;
	int r = api_fetch(ctx, DB_CHANGES, f, &items);
	size_t i, n = 0;
	json_t *c;
	if (r >= 0 && json_array_size(items)) {
		*ret = xcalloc(json_array_size(items), sizeof(**ret));
		json_array_foreach(items, i, c)
		{
			json_t *id = json_object_get(c, "changeid");
			if (json_is_integer(id))
				(*ret)[n++] = json_integer_value(id);
		}
	}
	*ret_n = n;
	json_decref(items);
	return r < 0 ? r : 0;
}

/* A copy of buildset bsid for builderid alone: its sourcestamps, patch,
 * properties, parent and changes; scheduler and reason "rebuild". */
static int api_builds_copy_buildset(struct api_ctx *ctx, const char *buildid, int64_t bsid,
				    const struct db_request *rq, int64_t *ret_bsid,
				    int64_t *ret_brid)
{
	struct db *db = ctx->db;
	struct db_buildset_info bi = {0};
	struct db_sourcestamp *ss = NULL;
	size_t nss = 0, nch = 0;
	json_t *props = NULL;
	int64_t *changeids = NULL;
	struct db_patch_data pd = {0};
	int has_patch = 0;

	int r = db_buildset_get(db, bsid, &bi);
	if (r >= 0)
		r = db_buildset_sourcestamps(db, bsid, &ss, &nss);
	if (r >= 0)
		r = db_buildset_properties(db, bsid, &props);
	if (r >= 0 && bi.patchid)
		r = has_patch = db_buildset_patch(db, bsid, NULL, &pd);
	if (r >= 0)
		r = api_builds_changeids(ctx, buildid, &changeids, &nch);
	if (r >= 0) {
		struct db_buildset_new bs = {
			.reason = "rebuild",
			.scheduler = "rebuild",
			.properties = props,
			.sourcestamps = ss,
			.nsourcestamps = nss,
			.parent_buildid = bi.parent_buildid,
			.priority = rq->priority,
			.submitted_at = clock_wall(),
		};
		r = db_buildset_add(db, &bs, &rq->builderid, 1, ret_bsid, ret_brid);
	}
	if (r >= 0 && has_patch > 0) {
		struct db_patch p = {
			.level = pd.level, .body = pd.body, .len = pd.len, .subdir = pd.subdir};
		r = db_buildset_set_patch(db, *ret_bsid, &p);
	}
	if (r >= 0 && nch)
		r = db_buildset_add_changes(db, *ret_bsid, changeids, nch);
	if (has_patch > 0)
		db_patch_data_release(&pd);
	free(changeids);
	json_decref(props);
	free(ss);
	db_buildset_info_release(&bi);
	return r;
}

void api_build_rebuild_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	const char *f[] = {"buildid", ctx->cap[0], NULL};
	int64_t brid;
	int r = api_lookup(ctx, DB_BUILDS, "buildrequestid", f, &brid);
	if (r == 0)
		api_rpc_reply_error(ctx, 404, rpc->id, -32603, "no such build");
	if (r <= 0)
		return;
	struct db_request rq = {0};
	r = db_request_get(ctx->db, brid, &rq);
	int64_t bsid = 0, newbrid = 0;
	if (r >= 0)
		r = api_builds_copy_buildset(ctx, ctx->cap[0], rq.buildsetid, &rq, &bsid, &newbrid);
	if (r >= 0)
		r = db_flush(ctx->db); /* the answer acknowledges a stored buildset */
	if (r < 0) {
		log_warn("rebuild of build %s failed: %s", ctx->cap[0], err_str(r));
		api_rpc_reply_error(ctx, 500, rpc->id, -32603, err_str(r));
	} else {
		events_buildset_new(ctx->m, bsid, &newbrid, 1);
		if (ctx->m->engine)
			engine_buildset_added(ctx->m->engine, bsid, &rq.builderid, 1, false);
		log_info("rebuild of build %s: buildset=%" PRId64, ctx->cap[0], bsid);
		char k[24];
		snprintf(k, sizeof(k), "%" PRId64, rq.builderid);
		api_rpc_reply_result(
			ctx, rpc->id,
			json_pack("[I,{s:I}]", (json_int_t)bsid, k, (json_int_t)newbrid));
	}
}
