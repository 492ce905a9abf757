/*
 * /api/v2/buildrequests/..., /api/v2/buildsets/... (with their
 * properties) and /api/v2/sourcestamps/...: the queue side of the data
 * model, as rows from db_list.
 */
#include "master/api-int.h"

#include "common/err.h"
#include "common/str.h"

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

void api_buildset_properties_get(struct api_ctx *ctx)
{
	long long bsid;
	json_t *props = NULL;

	if (str_to_i64(ctx->cap[0], &bsid) < 0) {
		api_invalid_path(ctx);
		return;
	}
	int r = db_buildset_properties(ctx->db, bsid, &props);
	if (r == KILN_ENOTFOUND) {
		api_not_found(ctx);
		return;
	}
	if (r < 0) {
		api_reply_db_error(ctx, r);
		return;
	}
	json_t *list = json_array();
	json_array_append_new(list, json_is_object(props) ? props : json_object());
	if (!json_is_object(props))
		json_decref(props);
	api_reply_json(ctx, 200, json_pack("{s:o,s:{}}", "properties", list, "meta"));
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
