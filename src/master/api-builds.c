/*
 * /api/v2/builds/... and /api/v2/steps/...: builds, their properties,
 * steps by number or name, and the logs of a step addressed by slug
 * (their answers are produced by api-logs.c once the logid is known).
 */
#include "master/api-int.h"

#include <inttypes.h>
#include <stdio.h>
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

void api_build_properties_get(struct api_ctx *ctx)
{
	const char *f[] = {"buildid", ctx->cap[0], NULL};
	json_t *items = NULL;
	int r = api_fetch(ctx, DB_BUILDS, f, &items);
	if (r < 0) {
		json_decref(items);
		api_reply_db_error(ctx, r);
		return;
	}
	json_t *build = json_array_get(items, 0);
	if (!build) {
		json_decref(items);
		api_not_found(ctx);
		return;
	}
	json_t *props = json_object_get(build, "properties");
	json_t *list = json_array();
	json_array_append_new(list, json_is_object(props) ? json_incref(props) : json_object());
	json_decref(items);
	api_reply_json(ctx, 200, json_pack("{s:o,s:{}}", "properties", list, "meta"));
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

/* cap[0] = buildid, cap[1] = step number or name -> stepid text; 404 answered. */
static bool api_build_step_resolve(struct api_ctx *ctx, char *out, size_t n)
{
	const char *f[] = {"buildid", ctx->cap[0], api_step_key(ctx->cap[1]), ctx->cap[1], NULL};
	int64_t stepid;
	int r = api_lookup(ctx, DB_STEPS, "stepid", f, &stepid);
	if (r == 0)
		api_not_found(ctx);
	if (r <= 0)
		return false;
	snprintf(out, n, "%" PRId64, stepid);
	return true;
}

/* stepid text + slug -> logid; 404 answered. */
static bool api_step_log_resolve(struct api_ctx *ctx, const char *stepid, const char *slug,
				 int64_t *ret)
{
	const char *f[] = {"stepid", stepid, "slug", slug, NULL};
	int r = api_lookup(ctx, DB_LOGS, "logid", f, ret);
	if (r == 0)
		api_not_found(ctx);
	return r > 0;
}

void api_build_step_logs_get(struct api_ctx *ctx)
{
	char stepid[32];
	if (!api_build_step_resolve(ctx, stepid, sizeof(stepid)))
		return;
	const char *f[] = {"stepid", stepid, NULL};
	api_list(ctx, DB_LOGS, "logs", false, NULL, f);
}

void api_build_step_log_get(struct api_ctx *ctx)
{
	char stepid[32];
	int64_t logid;
	if (api_build_step_resolve(ctx, stepid, sizeof(stepid)) &&
	    api_step_log_resolve(ctx, stepid, ctx->cap[2], &logid))
		api_log_reply(ctx, logid);
}

void api_build_step_log_contents_get(struct api_ctx *ctx)
{
	char stepid[32];
	int64_t logid;
	if (api_build_step_resolve(ctx, stepid, sizeof(stepid)) &&
	    api_step_log_resolve(ctx, stepid, ctx->cap[2], &logid))
		api_log_contents_reply(ctx, logid);
}

void api_build_step_log_raw_get(struct api_ctx *ctx)
{
	char stepid[32];
	int64_t logid;
	if (api_build_step_resolve(ctx, stepid, sizeof(stepid)) &&
	    api_step_log_resolve(ctx, stepid, ctx->cap[2], &logid))
		api_log_raw_reply(ctx, logid);
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
	int64_t logid;
	if (api_step_log_resolve(ctx, ctx->cap[0], ctx->cap[1], &logid))
		api_log_reply(ctx, logid);
}

void api_step_log_contents_get(struct api_ctx *ctx)
{
	int64_t logid;
	if (api_step_log_resolve(ctx, ctx->cap[0], ctx->cap[1], &logid))
		api_log_contents_reply(ctx, logid);
}

void api_step_log_raw_get(struct api_ctx *ctx)
{
	int64_t logid;
	if (api_step_log_resolve(ctx, ctx->cap[0], ctx->cap[1], &logid))
		api_log_raw_reply(ctx, logid);
}
