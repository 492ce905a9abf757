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
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine.h"
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

/* A numbers request waiting for its read (issue 14): the builder is known;
 * name is the series' (NULL: the names). */
struct api_numbers_wait {
	struct http_deferred *d;
	struct api_ctx ctx; /* without path segments: name holds what is needed */
	int64_t builderid;
	char *name;
};

static void api_numbers_answered(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct api_numbers_wait *w = arg;
	if (api_deferred_ctx(w->d, &w->ctx, r, err)) {
		if (!w->name) {
			json_t *out = json_array();
			size_t i;
			json_t *name;
			json_array_foreach(items, i, name)
			{
				json_array_append_new(out, json_pack("{s:I,s:O}", "builderid",
								     (json_int_t)w->builderid,
								     "name", name));
			}
			api_numbers_reply(&w->ctx, 0, out, total);
		} else {
			size_t i;
			json_t *p;
			json_array_foreach(items, i, p)
			{
				json_object_set_new(p, "builderid", json_integer(w->builderid));
				json_object_set_new(p, "name", json_string(w->name));
			}
			api_numbers_reply(&w->ctx, 0, json_incref(items), total);
		}
	}
	json_decref(items);
	http_deferred_end(w->d);
	free(w->name);
	free(w);
}

/* The builder is known: the names (name NULL) or the series name. */
static void api_numbers_read(struct api_ctx *ctx, int64_t builderid, const char *name)
{
	int64_t limit, offset;
	bool oldest = false;
	if (api_numbers_paging(ctx, name ? &oldest : NULL, &limit, &offset) < 0)
		return;
	struct api_numbers_wait *w = xcalloc(1, sizeof(*w));
	w->ctx = *ctx;
	w->ctx.ncap = 0;
	w->builderid = builderid;
	w->name = name ? xstrdup(name) : NULL;
	int r = name ? db_numbers_series_async(ctx->db, builderid, name, oldest, limit, offset,
					       api_numbers_answered, w)
		     : db_numbers_names_async(ctx->db, builderid, limit, offset,
					      api_numbers_answered, w);
	if (r < 0) {
		api_reply_db_error(ctx, r);
		free(w->name);
		free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}

static void api_builder_numbers_then(struct api_ctx *ctx, int64_t builderid, void *arg)
{
	api_numbers_read(ctx, builderid, NULL);
}

void api_builder_numbers_get(struct api_ctx *ctx)
{
	api_builder_then(ctx, ctx->cap[0], api_builder_numbers_then, NULL);
}

static void api_builder_number_then(struct api_ctx *ctx, int64_t builderid, void *arg)
{
	api_numbers_read(ctx, builderid, ctx->cap[1]);
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

/* A piece of request rows' positions being read (api.c's prefetch). */
struct api_numbers_prefetch {
	struct master *m;
	void (*done)(void *arg);
	void *arg;
};

/* The most requests of one piece whose positions are read, and the most
 * running builds read per builder (its slots past them count as free). */
#define API_NUMBERS_PREFETCH_MAX 1000
#define API_NUMBERS_RUN_MAX 1024

static void api_numbers_prefetched(void *arg, int r, const struct db_queue_info *qi,
				   const char *err)
{
	struct api_numbers_prefetch *p = arg;
	if (r == 0)
		numbers_queue_note(p->m, qi);
	else if (r != -ECANCELED)
		log_warn("estimated starts: %s", err ? err : err_str(r));
	p->done(p->arg);
	free(p);
}

void api_numbers_request_prefetch(struct api_ctx *ctx, json_t *items, void (*done)(void *arg),
				  void *arg)
{
	struct master *m = ctx->m;
	size_t cap = json_array_size(items) < API_NUMBERS_PREFETCH_MAX ? json_array_size(items)
								       : API_NUMBERS_PREFETCH_MAX;
	int64_t *brids = xcalloc(cap + 1, sizeof(*brids));
	size_t n = 0, max = 1, i;
	json_t *item;
	json_array_foreach(items, i, item)
	{
		json_t *brid = json_object_get(item, "buildrequestid");
		if (!m->numbers || n == cap || json_is_true(json_object_get(item, "complete")) ||
		    json_is_true(json_object_get(item, "claimed")) || !json_is_integer(brid))
			continue;
		brids[n++] = json_integer_value(brid);
		const struct config_builder *bc = engine_builder_cfg(
			m->engine, json_integer_value(json_object_get(item, "builderid")));
		if (bc && bc->nworkers > max)
			max = bc->nworkers < API_NUMBERS_RUN_MAX ? bc->nworkers
								 : API_NUMBERS_RUN_MAX;
	}
	struct api_numbers_prefetch *p = xmalloc(sizeof(*p));
	*p = (struct api_numbers_prefetch){.m = m, .done = done, .arg = arg};
	int r = n ? db_requests_queue_info_async(ctx->db, brids, n, max, api_numbers_prefetched, p)
		  : -ENOENT;
	free(brids);
	if (r < 0) {
		/* nothing to read (or it cannot be sent): the rows go on without */
		if (r != -ENOENT)
			log_warn("estimated starts: %s", db_errmsg(ctx->db));
		free(p);
		done(arg);
	}
}
