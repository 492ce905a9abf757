/*
 * /api/v2/builders/N/numbers and /api/v2/builders/N/numbers/NAME: Kiln's
 * extension serving numbers over time in Buildbot's envelope
 * ({"numbers": [...], "meta": {"total": N}}), and the ETA fields added to
 * running builds and steps and to queued build requests (numbers.h).
 * docs/API.md "Numbers and ETA".
 */
#include "master/api-int.h"
#include "master/master.h"
#include "master/numbers.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/str.h"

#include <math.h>
#include <string.h>

/* ?limit=, ?offset= and ?order=number|-number; 0, or answered (400). */
static int api_numbers_paging(struct api_ctx *ctx, bool *ret_oldest, int64_t *ret_limit,
			      int64_t *ret_offset)
{
	int64_t limit = -1, offset = 0;
	bool oldest = false;
	for (size_t i = 0; i < ctx->req->nargs; i++) {
		const struct http_arg *a = &ctx->req->args[i];
		long long v;
		if (!strcmp(a->name, "limit") || !strcmp(a->name, "offset")) {
			if (str_to_i64(a->value, &v) < 0 || v < 0) {
				api_reply_errorf(ctx, 400, "invalid %s", a->name);
				return KILN_EPARSE;
			}
			*(a->name[0] == 'l' ? &limit : &offset) = v;
		} else if (!strcmp(a->name, "order") && ret_oldest) {
			if (strcmp(a->value, "number") && strcmp(a->value, "-number")) {
				api_reply_errorf(ctx, 400, "no such field '%s'",
						 a->value[0] == '-' ? a->value + 1 : a->value);
				return KILN_EPARSE;
			}
			oldest = a->value[0] != '-';
		}
	}
	if (ret_oldest)
		*ret_oldest = oldest;
	*ret_limit = api_page_limit(limit);
	*ret_offset = offset;
	return 0;
}

static void api_numbers_reply(struct api_ctx *ctx, int r, json_t *items, int64_t total)
{
	if (r < 0) {
		api_reply_db_error(ctx, r);
		return;
	}
	api_reply_json(
		ctx, 200,
		json_pack("{s:o,s:{s:I}}", "numbers", items, "meta", "total", (json_int_t)total));
}

static void api_builder_numbers_then(struct api_ctx *ctx, int64_t builderid, void *arg)
{
	int64_t limit, offset, total = 0;
	if (api_numbers_paging(ctx, NULL, &limit, &offset) < 0)
		return;
	json_t *names = NULL;
	int r = db_numbers_names(ctx->db, builderid, limit, offset, &names, &total);
	json_t *items = json_array();
	size_t i;
	json_t *name;
	json_array_foreach(names, i, name)
	{
		json_array_append_new(items, json_pack("{s:I,s:O}", "builderid",
						       (json_int_t)builderid, "name", name));
	}
	json_decref(names);
	if (r < 0)
		json_decref(items);
	api_numbers_reply(ctx, r, items, total);
}

void api_builder_numbers_get(struct api_ctx *ctx)
{
	api_builder_then(ctx, ctx->cap[0], api_builder_numbers_then, NULL);
}

static void api_builder_number_then(struct api_ctx *ctx, int64_t builderid, void *arg)
{
	int64_t limit, offset, total = 0;
	bool oldest;
	if (api_numbers_paging(ctx, &oldest, &limit, &offset) < 0)
		return;
	json_t *items = NULL;
	int r = db_numbers_series(ctx->db, builderid, ctx->cap[1], oldest, limit, offset, &items,
				  &total);
	if (r >= 0) {
		size_t i;
		json_t *p;
		json_array_foreach(items, i, p)
		{
			json_object_set_new(p, "builderid", json_integer(builderid));
			json_object_set_new(p, "name", json_string(ctx->cap[1]));
		}
	}
	api_numbers_reply(ctx, r, items, total);
}

void api_builder_number_get(struct api_ctx *ctx)
{
	api_builder_then(ctx, ctx->cap[0], api_builder_number_then, NULL);
}

/* ---- ETA fields ------------------------------------------------------------------------ */

/* "eta" (seconds left, 0 when overdue) and "eta_at" (epoch seconds), null
 * when there is no history. */
static void api_numbers_eta_set(json_t *item, int known, double eta_at, double now)
{
	json_object_set_new(item, "eta", known ? json_real(fmax(0, eta_at - now)) : json_null());
	json_object_set_new(item, "eta_at", known ? json_real(eta_at) : json_null());
}

void api_numbers_build_fix(struct api_ctx *ctx, json_t *item)
{
	numbers_build_eta_fields(ctx->m, item);
}

void api_numbers_step_fix(struct api_ctx *ctx, const struct api_rspec *rs, json_t *item)
{
	(void)rs;
	if (!ctx->m->numbers)
		return;
	json_t *started = json_object_get(item, "started_at");
	json_t *buildid = json_object_get(item, "buildid");
	json_t *name = json_object_get(item, "name");
	if (json_is_true(json_object_get(item, "complete")) || !json_is_number(started) ||
	    !json_is_integer(buildid) || !json_is_string(name))
		return;
	double eta_at = 0;
	int known = numbers_step_eta(ctx->m, json_integer_value(buildid), json_string_value(name),
				     json_number_value(started), &eta_at);
	api_numbers_eta_set(item, known, eta_at, clock_wall());
}

void api_numbers_request_fix(struct api_ctx *ctx, const struct api_rspec *rs, json_t *item)
{
	(void)rs;
	if (!ctx->m->numbers)
		return;
	json_t *brid = json_object_get(item, "buildrequestid");
	if (json_is_true(json_object_get(item, "complete")) ||
	    json_is_true(json_object_get(item, "claimed")) || !json_is_integer(brid))
		return;
	double start = 0;
	int known = numbers_request_start(ctx->m, json_integer_value(brid), clock_wall(), &start);
	json_object_set_new(item, "estimated_start", known ? json_real(start) : json_null());
}
