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
#include "common/str.h"
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

/* A rebuild reads on the loop, one answer after another (issue 14: on
 * either backend): the build (its request and builder), the request (its
 * buildset and priority), the buildset's inputs (db_build_inputs_async),
 * its patch if it has one, and the changes the build built; then the copy
 * is written, and the answer waits for its commit. */
struct api_rebuild {
	struct http_deferred *d;
	struct api_ctx ctx; /* the handler's, its path segments copied into cap */
	char *cap[API_MAX_SEGS];
	json_t *rpcid;
	struct api_rspec rs; /* the filters of the listing in flight */
	int64_t buildid, brid, builderid, bsid, new_bsid, new_brid;
	int priority;
	struct db_build_inputs in;
	bool have_in;
	struct db_patch_data patch;
	bool have_patch;
	int64_t *changeids;
	size_t nch;
};

static void api_rebuild_free(struct api_rebuild *rb)
{
	if (rb->d)
		http_deferred_end(rb->d);
	api_ctx_unhold(&rb->ctx, rb->cap);
	json_decref(rb->rpcid);
	api_rspec_release(&rb->rs);
	if (rb->have_in)
		db_build_inputs_release(&rb->in);
	if (rb->have_patch)
		db_patch_data_release(&rb->patch);
	free(rb->changeids);
	free(rb);
}

/* The request back for the next step, or NULL (rb freed: the client went,
 * or a database error was answered). */
static struct api_ctx *api_rebuild_ctx(struct api_rebuild *rb, int r, const char *err)
{
	struct api_ctx *ctx = api_deferred_ctx(rb->d, &rb->ctx, r, err);
	if (!ctx)
		api_rebuild_free(rb);
	return ctx;
}

static void api_rebuild_fail(struct api_rebuild *rb, struct api_ctx *ctx, int status,
			     const char *msg)
{
	api_rpc_reply_error(ctx, status, rb->rpcid, -32603, msg);
	api_rebuild_free(rb);
}

/* Lists res rows whose field is id; done as the next step. */
static void api_rebuild_list(struct api_rebuild *rb, struct api_ctx *ctx, enum db_resource res,
			     const char *field, int64_t id, db_list_fn done)
{
	api_rspec_release(&rb->rs);
	rb->rs = (struct api_rspec){.limit = -1};
	api_rspec_add_eq_i64(&rb->rs, field, id);
	struct db_query q = {.filters = rb->rs.filters, .nfilters = rb->rs.nfilters, .limit = -1};
	int r = db_list_async(ctx->db, res, &q, NULL, false, done, rb);
	if (r < 0)
		api_rebuild_fail(rb, ctx, 500, err_str(r));
}

static void api_rebuild_committed(void *arg, int r, const char *err)
{
	struct api_rebuild *rb = arg;
	struct api_ctx *ctx = api_rebuild_ctx(rb, r, err);
	if (!ctx)
		return;
	events_buildset_new(ctx->m, rb->new_bsid, &rb->new_brid, 1);
	if (ctx->m->engine)
		engine_buildset_added(ctx->m->engine, rb->new_bsid, &rb->builderid, 1, false);
	log_info("rebuild of build %s: buildset=%" PRId64, ctx->cap[0], rb->new_bsid);
	char k[24];
	snprintf(k, sizeof(k), "%" PRId64, rb->builderid);
	api_rpc_reply_result(
		ctx, rb->rpcid,
		json_pack("[I,{s:I}]", (json_int_t)rb->new_bsid, k, (json_int_t)rb->new_brid));
	api_rebuild_free(rb);
}

/* The copy of the buildset for the builder alone: its sourcestamps, patch,
 * properties, parent and changes; scheduler and reason "rebuild". */
static void api_rebuild_write(struct api_rebuild *rb, struct api_ctx *ctx)
{
	struct db *db = ctx->db;
	struct db_buildset_new bs = {
		.reason = "rebuild",
		.scheduler = "rebuild",
		.properties = rb->in.props,
		.sourcestamps = rb->in.ss,
		.nsourcestamps = rb->in.nss,
		.parent_buildid = rb->in.bs.parent_buildid,
		.priority = rb->priority,
		.submitted_at = clock_wall(),
	};
	int r = db_buildset_add(db, &bs, &rb->builderid, 1, &rb->new_bsid, &rb->new_brid);
	if (r >= 0 && rb->have_patch) {
		struct db_patch p = {.level = rb->patch.level,
				     .body = rb->patch.body,
				     .len = rb->patch.len,
				     .subdir = rb->patch.subdir};
		r = db_buildset_set_patch(db, rb->new_bsid, &p);
	}
	if (r >= 0 && rb->nch)
		r = db_buildset_add_changes(db, rb->new_bsid, rb->changeids, rb->nch);
	if (r < 0) {
		log_warn("rebuild of build %s failed: %s", ctx->cap[0], err_str(r));
		api_rebuild_fail(rb, ctx, 500, err_str(r));
		return;
	}
	db_commit_then(db, api_rebuild_committed, rb); /* the answer acknowledges it */
}

static void api_rebuild_changes(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct api_rebuild *rb = arg;
	(void)total;
	struct api_ctx *ctx = api_rebuild_ctx(rb, r, err);
	if (ctx) {
		size_t i;
		json_t *c;
		rb->changeids = xcalloc(json_array_size(items) + 1, sizeof(*rb->changeids));
		json_array_foreach(items, i, c)
		{
			json_t *id = json_object_get(c, "changeid");
			if (json_is_integer(id))
				rb->changeids[rb->nch++] = json_integer_value(id);
		}
		api_rebuild_write(rb, ctx);
	}
	json_decref(items);
}

static void api_rebuild_patches(void *arg, int r, struct db_patch_data *v, size_t n,
				const char *err)
{
	struct api_rebuild *rb = arg;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 && r >= 0) { /* the first, as a buildset has one */
			rb->patch = v[0];
			rb->have_patch = true;
		} else {
			db_patch_data_release(&v[i]);
		}
	}
	free(v);
	struct api_ctx *ctx = api_rebuild_ctx(rb, r, err);
	if (ctx)
		api_rebuild_list(rb, ctx, DB_CHANGES, "buildid", rb->buildid, api_rebuild_changes);
}

static void api_rebuild_inputs(void *arg, int r, struct db_build_inputs *in, const char *err)
{
	struct api_rebuild *rb = arg;
	if (r >= 0) {
		rb->in = *in; /* taken whole */
		*in = (struct db_build_inputs){0};
		rb->have_in = true;
	}
	struct api_ctx *ctx = api_rebuild_ctx(rb, r == KILN_ENOTFOUND ? 0 : r, err);
	if (!ctx)
		return;
	if (r == KILN_ENOTFOUND) {
		api_rebuild_fail(rb, ctx, 404, "no such buildset");
		return;
	}
	if (rb->in.bs.patchid) {
		int e = db_buildset_patches_async(ctx->db, rb->bsid, api_rebuild_patches, rb);
		if (e < 0)
			api_rebuild_fail(rb, ctx, 500, err_str(e));
		return;
	}
	api_rebuild_list(rb, ctx, DB_CHANGES, "buildid", rb->buildid, api_rebuild_changes);
}

static void api_rebuild_request(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct api_rebuild *rb = arg;
	(void)total;
	struct api_ctx *ctx = api_rebuild_ctx(rb, r, err);
	json_t *row = json_array_get(items, 0);
	if (ctx && !row) {
		api_rebuild_fail(rb, ctx, 404, "no such build request");
	} else if (ctx) {
		rb->bsid = json_integer_value(json_object_get(row, "buildsetid"));
		rb->priority = (int)json_integer_value(json_object_get(row, "priority"));
		int e = db_build_inputs_async(ctx->db, rb->bsid, api_rebuild_inputs, rb);
		if (e < 0)
			api_rebuild_fail(rb, ctx, 500, err_str(e));
	}
	json_decref(items);
}

static void api_rebuild_build(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct api_rebuild *rb = arg;
	(void)total;
	struct api_ctx *ctx = api_rebuild_ctx(rb, r, err);
	json_t *row = json_array_get(items, 0);
	if (ctx && !row) {
		api_rebuild_fail(rb, ctx, 404, "no such build");
	} else if (ctx) {
		rb->brid = json_integer_value(json_object_get(row, "buildrequestid"));
		rb->builderid = json_integer_value(json_object_get(row, "builderid"));
		api_rebuild_list(rb, ctx, DB_BUILDREQUESTS, "buildrequestid", rb->brid,
				 api_rebuild_request);
	}
	json_decref(items);
}

void api_build_rebuild_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	long long buildid;
	if (str_to_i64(ctx->cap[0], &buildid) < 0) {
		api_rpc_reply_error(ctx, 404, rpc->id, -32603, "no such build");
		return;
	}
	struct api_rebuild *rb = xcalloc(1, sizeof(*rb));
	api_ctx_hold(&rb->ctx, rb->cap, ctx);
	rb->rpcid = json_incref(rpc->id);
	rb->buildid = buildid;
	rb->rs = (struct api_rspec){.limit = -1};
	api_rspec_add_eq_i64(&rb->rs, "buildid", buildid);
	struct db_query q = {.filters = rb->rs.filters, .nfilters = rb->rs.nfilters, .limit = -1};
	int r = db_list_async(ctx->db, DB_BUILDS, &q, NULL, false, api_rebuild_build, rb);
	if (r < 0) {
		api_rpc_reply_error(ctx, 500, rpc->id, -32603, err_str(r));
		api_rebuild_free(rb);
		return;
	}
	rb->d = http_req_defer(ctx->req);
}
