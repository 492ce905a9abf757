/*
 * /api/v2/workers/... (by id or name, and the builds a worker ran) and
 * /api/v2/masters/....
 */
#include "master/api-int.h"

#include <inttypes.h>
#include <stdio.h>

void api_workers_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_WORKERS, "workers", false, NULL, NULL);
}

void api_worker_get(struct api_ctx *ctx)
{
	const char *f[] = {api_is_num(ctx->cap[0]) ? "workerid" : "name", ctx->cap[0], NULL};
	api_list(ctx, DB_WORKERS, "workers", true, NULL, f);
}

void api_worker_builds_get(struct api_ctx *ctx)
{
	char id[32];
	if (api_is_num(ctx->cap[0])) {
		snprintf(id, sizeof(id), "%s", ctx->cap[0]);
	} else {
		const char *f[] = {"name", ctx->cap[0], NULL};
		int64_t workerid;
		int r = api_lookup(ctx, DB_WORKERS, "workerid", f, &workerid);
		if (r == 0)
			api_not_found(ctx);
		if (r <= 0)
			return;
		snprintf(id, sizeof(id), "%" PRId64, workerid);
	}
	const char *f[] = {"workerid", id, NULL};
	api_list(ctx, DB_BUILDS, "builds", false, api_builds_fix, f);
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
