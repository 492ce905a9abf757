/*
 * /api/v2/changes, /changes/N and /builds/N/changes: stored changes in
 * Buildbot's shape (properties as {"k": [v, "Change"]}, an embedded
 * sourcestamp, parent_changeids), through db_list like every resource.
 * /changesources (and the JSON-RPC "poll" on /changesources/NAME) are in
 * changes/poller.c's registry and answered here.
 */
#include "master/api-int.h"
#include "common/log.h"

#include "common/err.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "master/changes/poller.h"
#include "master/master.h"

#include <stdio.h>
#include <string.h>

void api_changes_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_CHANGES, "changes", false, NULL, NULL);
}

void api_change_get(struct api_ctx *ctx)
{
	const char *f[] = {"changeid", ctx->cap[0], NULL};
	api_list(ctx, DB_CHANGES, "changes", true, NULL, f);
}

void api_build_changes_get(struct api_ctx *ctx)
{
	const char *f[] = {"buildid", ctx->cap[0], NULL};
	api_list(ctx, DB_CHANGES, "changes", false, NULL, f);
}

/* Buildbot's changesource rows plus what a poller knows about itself. */
static json_t *api_changesources(struct api_ctx *ctx, const char *name)
{
	json_t *all = pollers_describe(ctx->m->pollers), *out = json_array();
	json_t *m = api_this_master(ctx);
	size_t i;
	json_t *cs;
	json_array_foreach(all, i, cs)
	{
		if (name && strcmp(json_string_value(json_object_get(cs, "name")), name))
			continue;
		json_object_set(cs, "master", m ? m : json_null());
		json_array_append(out, cs);
	}
	json_decref(m);
	json_decref(all);
	return out;
}

void api_changesources_get(struct api_ctx *ctx)
{
	json_t *list = api_changesources(ctx, NULL);
	json_t *doc = json_pack("{s:o,s:{s:I}}", "changesources", list, "meta", "total",
				(json_int_t)json_array_size(list));
	api_reply_json(ctx, 200, doc);
}

void api_changesource_get(struct api_ctx *ctx)
{
	json_t *list = api_changesources(ctx, ctx->cap[0]);
	if (json_array_size(list) == 0) {
		json_decref(list);
		api_not_found(ctx);
		return;
	}
	api_reply_json(ctx, 200, json_pack("{s:o,s:{}}", "changesources", list, "meta"));
}

/* POST /changesources/NAME {"method": "poll"}: poll now. */
void api_changesource_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	if (strcmp(rpc->method, "poll")) {
		api_rpc_reply_error(ctx, 501, rpc->id, -32601, "method not found");
		return;
	}
	int r = pollers_poll(ctx->m->pollers, ctx->cap[0]);
	if (r < 0) {
		api_rpc_reply_error(ctx, 404, rpc->id, -32602, "no such change source");
		return;
	}
	api_rpc_reply_result(ctx, rpc->id, json_null());
}

/* GET /changes/N/builds (a Kiln extension, slice "uichanges"): the builds of
 * the buildsets the change is linked to, as /builds answers them. */
void api_change_builds_get(struct api_ctx *ctx)
{
	const char *f[] = {"changeid", ctx->cap[0], NULL};
	api_list(ctx, DB_BUILDS, "builds", false, api_builds_fix, f);
}

/* ---- GET /changes/builds (slice "console") ----------------------------------------------- */

#define API_CELLS_MAX_CHANGES 500 /* changeids in one request */
#define API_CELLS_ID_TEXT 20      /* digits of one id */

/* Adds the comma-separated ids of text to ids (*n of at most max);
 * 400 answered and false on a bad or one too many id. */
static bool api_cells_parse_ids(struct api_ctx *ctx, const char *text, int64_t *ids, size_t *n,
				size_t max)
{
	const char *p = text;
	for (;;) {
		size_t len = strcspn(p, ",");
		char one[API_CELLS_ID_TEXT + 1];
		long long v = 0;
		if (len == 0 || len > API_CELLS_ID_TEXT) {
			api_reply_errorf(ctx, 400,
					 "invalid changeid '%.*s': not a positive integer",
					 (int)(len > 40 ? 40 : len), p);
			return false;
		}
		memcpy(one, p, len);
		one[len] = '\0';
		if (!api_is_num(one) || str_to_i64(one, &v) < 0 || v <= 0) {
			api_reply_errorf(ctx, 400, "invalid changeid '%s': not a positive integer",
					 one);
			return false;
		}
		if (*n == max) {
			api_reply_errorf(ctx, 400, "too many changeids: at most %zu", max);
			return false;
		}
		ids[(*n)++] = v;
		if (!p[len])
			return true;
		p += len + 1;
	}
}

static const char *const api_cells_known[] = {"changeid",   "buildid",     "builderid",
					      "number",     "results",     "complete",
					      "started_at", "complete_at", "state_string"};

/* A /changes/builds request waiting for its cells (issue 14). */
struct api_cells_wait {
	struct http_deferred *d;
	struct api_ctx ctx;
	bool want[ARRAY_SIZE(api_cells_known)];
	size_t nfields;
};

static void api_cells_answered(void *arg, int r, json_t *list, int64_t found, const char *err)
{
	struct api_cells_wait *w = arg;
	if (api_deferred_ctx(w->d, &w->ctx, r, err)) {
		size_t total = json_array_size(list), i;
		json_t *row;
		if (w->nfields) /* ?field=: only those keys, as Buildbot's field selection */
			json_array_foreach(list, i, row)
			{
				for (size_t k = 0; k < ARRAY_SIZE(api_cells_known); k++)
					if (!w->want[k])
						json_object_del(row, api_cells_known[k]);
			}
		api_reply_json(&w->ctx, 200,
			       json_pack("{s:O,s:{s:I,s:b}}", "builds", list, "meta", "total",
					 (json_int_t)total, "truncated", found > (int64_t)total));
	}
	json_decref(list);
	http_deferred_end(w->d);
	free(w);
}

/* GET /changes/builds?changeid=1,2,3 (a Kiln extension for the console and
 * the grid): for each (change, builder), the latest build made from the
 * change, in one answer for a whole page of changes.  Only cells that have
 * a build are sent. */
void api_changes_builds_get(struct api_ctx *ctx)
{
	const char *const *known = api_cells_known;
	int64_t ids[API_CELLS_MAX_CHANGES];
	bool want[ARRAY_SIZE(api_cells_known)] = {false};
	size_t n = 0, nfields = 0;
	int64_t limit = KILN_API_PAGE_MAX;
	for (size_t i = 0; i < ctx->req->nargs; i++) {
		const char *name = ctx->req->args[i].name, *value = ctx->req->args[i].value;
		if (!strcmp(name, "changeid")) {
			if (!api_cells_parse_ids(ctx, value, ids, &n, API_CELLS_MAX_CHANGES))
				return;
		} else if (!strcmp(name, "field")) {
			size_t k = 0;
			while (k < ARRAY_SIZE(api_cells_known) && strcmp(known[k], value))
				k++;
			if (k == ARRAY_SIZE(api_cells_known)) {
				api_reply_errorf(ctx, 400, "no such field '%.64s'", value);
				return;
			}
			nfields += !want[k];
			want[k] = true;
		} else if (!strcmp(name, "limit")) {
			long long v;
			if (str_to_i64(value, &v) < 0 || v < 0) {
				api_reply_error(ctx, 400, "invalid limit");
				return;
			}
			limit = v < KILN_API_PAGE_MAX ? v : KILN_API_PAGE_MAX;
		} else {
			api_reply_errorf(ctx, 400, "unrecognized query parameter '%s'", name);
			return;
		}
	}
	if (n == 0) {
		api_reply_error(ctx, 400, "missing changeid: give changeid=ID[,ID...]");
		return;
	}
	struct api_cells_wait *w = xcalloc(1, sizeof(*w));
	w->ctx = *ctx;
	w->ctx.ncap = 0;
	memcpy(w->want, want, sizeof(want));
	w->nfields = nfields;
	int r = db_changes_cells_async(ctx->db, ids, n, limit, api_cells_answered, w);
	if (r < 0) {
		api_reply_db_error(ctx, r);
		free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}
