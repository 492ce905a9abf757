/*
 * /api/v2/buildrequests/..., /api/v2/buildsets/... (with their
 * properties) and /api/v2/sourcestamps/...: the queue side of the data
 * model, as rows from db_list.
 */
#include "master/api-int.h"

#include "common/err.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <stdlib.h>

void api_requests_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_BUILDREQUESTS, "buildrequests", false, api_numbers_request_fix, NULL);
}

void api_request_get(struct api_ctx *ctx)
{
	const char *f[] = {"buildrequestid", ctx->cap[0], NULL};
	api_list(ctx, DB_BUILDREQUESTS, "buildrequests", true, api_numbers_request_fix, f);
}

void api_request_builds_get(struct api_ctx *ctx)
{
	const char *f[] = {"buildrequestid", ctx->cap[0], NULL};
	api_list(ctx, DB_BUILDS, "builds", false, api_builds_fix, f);
}

void api_buildsets_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_BUILDSETS, "buildsets", false, NULL, NULL);
}

void api_buildset_get(struct api_ctx *ctx)
{
	const char *f[] = {"bsid", ctx->cap[0], NULL};
	api_list(ctx, DB_BUILDSETS, "buildsets", true, NULL, f);
}

struct api_bs_props_wait {
	struct http_deferred *d;
	struct api_ctx ctx; /* without path segments: none are read after the wait */
};

static void api_buildset_properties_read(void *arg, int r, struct db_build_inputs *in,
					 const char *err)
{
	struct api_bs_props_wait *w = arg;
	struct api_ctx *ctx = api_deferred_ctx(w->d, &w->ctx, r == KILN_ENOTFOUND ? 0 : r, err);
	if (ctx && r == KILN_ENOTFOUND) {
		api_not_found(ctx);
	} else if (ctx) {
		json_t *props = in->props;
		json_t *list = json_array();
		json_array_append(list, json_is_object(props) ? props : json_object());
		api_reply_json(ctx, 200, json_pack("{s:o,s:{}}", "properties", list, "meta"));
	}
	http_deferred_end(w->d);
	free(w);
}

/* the buildset's own layer, read on the loop (with what a build reads of
 * it: db_build_inputs_async, on either backend) */
void api_buildset_properties_get(struct api_ctx *ctx)
{
	long long bsid;
	if (str_to_i64(ctx->cap[0], &bsid) < 0) {
		api_invalid_path(ctx);
		return;
	}
	struct api_bs_props_wait *w = xcalloc(1, sizeof(*w));
	w->ctx = *ctx;
	w->ctx.ncap = 0;
	int r = db_build_inputs_async(ctx->db, bsid, api_buildset_properties_read, w);
	if (r < 0) {
		api_reply_db_error(ctx, r);
		free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}

void api_sourcestamps_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_SOURCESTAMPS, "sourcestamps", false, NULL, NULL);
}

void api_sourcestamp_get(struct api_ctx *ctx)
{
	const char *f[] = {"ssid", ctx->cap[0], NULL};
	api_list(ctx, DB_SOURCESTAMPS, "sourcestamps", true, NULL, f);
}
