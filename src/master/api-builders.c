/*
 * /api/v2/builders/... and /api/v2/forceschedulers/...: builders by id or
 * name and what hangs off them (builds, build requests, workers), and the
 * force schedulers described from the configuration.
 */
#include "master/api-int.h"
#include "master/master.h"

#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_builders_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_BUILDERS, "builders", false, NULL, NULL);
}

void api_builder_get(struct api_ctx *ctx)
{
	const char *f[] = {api_is_num(ctx->cap[0]) ? "builderid" : "name", ctx->cap[0], NULL};
	api_list(ctx, DB_BUILDERS, "builders", true, NULL, f);
}

/* The handlers under /builders/{id or name}/: the builder first (a name is
 * looked up), then their listing. */
static void api_builder_list(struct api_ctx *ctx, int64_t builderid, enum db_resource res,
			     const char *key, bool single, api_fix_fn fix, const char *field2,
			     const char *value2)
{
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, builderid);
	const char *f[] = {"builderid", id, field2, value2, NULL};
	api_list(ctx, res, key, single, fix, f);
}

static void api_builder_builds_then(struct api_ctx *ctx, int64_t id, void *arg)
{
	api_builder_list(ctx, id, DB_BUILDS, "builds", false, NULL, NULL, NULL);
}

void api_builder_builds_get(struct api_ctx *ctx)
{
	api_builder_then(ctx, ctx->cap[0], api_builder_builds_then, NULL);
}

static void api_builder_build_then(struct api_ctx *ctx, int64_t id, void *arg)
{
	api_builder_list(ctx, id, DB_BUILDS, "builds", true, api_builds_fix, "number", ctx->cap[1]);
}

void api_builder_build_get(struct api_ctx *ctx)
{
	api_builder_then(ctx, ctx->cap[0], api_builder_build_then, NULL);
}

static void api_builder_build_steps_list(struct api_ctx *ctx, int64_t buildid, void *arg)
{
	char bid[32];
	snprintf(bid, sizeof(bid), "%" PRId64, buildid);
	const char *sf[] = {"buildid", bid, NULL};
	api_list(ctx, DB_STEPS, "steps", false, api_numbers_step_fix, sf);
}

static void api_builder_build_steps_then(struct api_ctx *ctx, int64_t builderid, void *arg)
{
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, builderid);
	const char *f[] = {"builderid", id, "number", ctx->cap[1], NULL};
	api_lookup_then(ctx, DB_BUILDS, "buildid", f, api_builder_build_steps_list, NULL);
}

void api_builder_build_steps_get(struct api_ctx *ctx)
{
	api_builder_then(ctx, ctx->cap[0], api_builder_build_steps_then, NULL);
}

static void api_builder_requests_then(struct api_ctx *ctx, int64_t id, void *arg)
{
	api_builder_list(ctx, id, DB_BUILDREQUESTS, "buildrequests", false, api_numbers_request_fix,
			 NULL, NULL);
}

void api_builder_requests_get(struct api_ctx *ctx)
{
	api_builder_then(ctx, ctx->cap[0], api_builder_requests_then, NULL);
}

static void api_builder_workers_then(struct api_ctx *ctx, int64_t id, void *arg)
{
	/* builderid: a filter-only field of workers */
	api_builder_list(ctx, id, DB_WORKERS, "workers", false, NULL, NULL, NULL);
}

void api_builder_workers_get(struct api_ctx *ctx)
{
	api_builder_then(ctx, ctx->cap[0], api_builder_workers_then, NULL);
}

/* ---- force schedulers ------------------------------------------------------------------- */

/* One text field of the force form, shaped like Buildbot's description. */
static json_t *api_force_field(const char *name, const char *label, const char *type,
			       const char *def, int size)
{
	json_t *f = json_pack("{s:n,s:s,s:s,s:b,s:s,s:n,s:b,s:s,s:n,s:b,s:i,s:s,s:s}",
			      "autopopulate", "default", def, "fullName", name, "hide", 0, "label",
			      label, "maxsize", "multiple", 0, "name", name, "regex", "required", 0,
			      "size", size, "tablabel", label, "type", type);
	if (!strcmp(type, "username"))
		json_object_set_new(f, "need_email", json_true());
	return f;
}

static json_t *api_force_nested(int columns, json_t *fields)
{
	return json_pack("{s:n,s:i,s:s,s:o,s:n,s:b,s:s,s:s,s:n,s:b,s:s,s:n,s:b,s:s,s:s}",
			 "autopopulate", "columns", columns, "default", "", "fields", fields,
			 "fullName", "hide", 0, "label", "", "layout", "vertical", "maxsize",
			 "multiple", 0, "name", "", "regex", "required", 0, "tablabel", "", "type",
			 "nested");
}

static json_t *api_forcescheduler_json(const struct config_scheduler *sc)
{
	json_t *names = json_array();
	for (size_t i = 0; i < sc->nbuilders; i++)
		json_array_append_new(names, json_string(sc->builders[i]));
	json_t *who = json_array();
	json_array_append_new(who, api_force_field("username", "Your name:", "username", "", 30));
	json_array_append_new(who, api_force_field("reason", "reason", "text", "force build", 20));
	json_t *src = json_array();
	/* the configured defaults: an empty field falls back to them (sched-force.c) */
	const char *br = sc->branch ? sc->branch : "", *pr = sc->project ? sc->project : "";
	const char *repo = sc->repository ? sc->repository : "";
	json_array_append_new(src, api_force_field("branch", "Branch:", "text", br, 10));
	json_array_append_new(src, api_force_field("project", "Project:", "text", pr, 10));
	json_array_append_new(src, api_force_field("repository", "Repository:", "text", repo, 10));
	json_array_append_new(src, api_force_field("revision", "Revision:", "text", "", 10));
	json_t *all = json_array();
	json_array_append_new(all, api_force_nested(1, who));
	json_array_append_new(all, api_force_nested(2, src));
	if (sc->nparams) /* typed parameters (api-sched.c) */
		json_array_append_new(all, api_force_nested(1, api_force_params_json(sc)));
	return json_pack("{s:o,s:o,s:s,s:b,s:s,s:s}", "all_fields", all, "builder_names", names,
			 "button_name", sc->name, "enabled", 1, "label", sc->name, "name",
			 sc->name);
}

static void api_forceschedulers_reply(struct api_ctx *ctx, const char *only)
{
	const struct config *cfg = ctx->m->cfg;
	json_t *list = json_array();
	for (size_t i = 0; cfg && i < cfg->nschedulers; i++) {
		const struct config_scheduler *sc = &cfg->scheduler[i];
		if (sc->kind != CONFIG_SCHED_FORCE || (only && strcmp(only, sc->name)))
			continue;
		json_array_append_new(list, api_forcescheduler_json(sc));
	}
	if (only && json_array_size(list) == 0) {
		json_decref(list);
		api_not_found(ctx);
		return;
	}
	json_t *meta = only ? json_object()
			    : json_pack("{s:I}", "total", (json_int_t)json_array_size(list));
	api_reply_json(ctx, 200, json_pack("{s:o,s:o}", "forceschedulers", list, "meta", meta));
}

void api_forceschedulers_get(struct api_ctx *ctx)
{
	api_forceschedulers_reply(ctx, NULL);
}

void api_forcescheduler_get(struct api_ctx *ctx)
{
	api_forceschedulers_reply(ctx, ctx->cap[0]);
}

/* ---- last builds: one request for every builder's latest build (slice "uibuild") ---- */

/* Keeps only the fields rs selects (all when it selects none). */
static void api_builders_pick(json_t *item, const struct api_rspec *rs)
{
	if (!rs->nfields)
		return;
	const char *key;
	json_t *val;
	void *tmp;
	json_object_foreach_safe(item, tmp, key, val)
	{
		bool keep = false;
		for (size_t i = 0; i < rs->nfields && !keep; i++)
			keep = !strcmp(rs->fields[i], key);
		if (!keep)
			json_object_del(item, key);
	}
}

/* A /lastbuilds request waiting for its one statement. */
struct api_lastbuilds_wait {
	struct http_deferred *d;
	struct api_ctx ctx;
	struct api_rspec rs;
};

static void api_lastbuilds_answered(void *arg, int r, json_t *list, int64_t total, const char *err)
{
	struct api_lastbuilds_wait *w = arg;
	(void)total;
	if (api_deferred_ctx(w->d, &w->ctx, r, err)) {
		size_t i;
		json_t *b;
		json_array_foreach(list, i, b)
		{
			json_object_set_new(b, "properties", json_object());
			api_builders_pick(b, &w->rs);
		}
		json_t *meta = json_pack("{s:I}", "total", (json_int_t)json_array_size(list));
		api_reply_json(&w->ctx, 200, json_pack("{s:O,s:o}", "builds", list, "meta", meta));
	}
	json_decref(list);
	http_deferred_end(w->d);
	api_rspec_release(&w->rs);
	free(w);
}

void api_lastbuilds_get(struct api_ctx *ctx)
{
	struct api_lastbuilds_wait *w = xcalloc(1, sizeof(*w));
	char *err = NULL;
	int r = api_rspec_parse(DB_BUILDS, ctx->req->args, ctx->req->nargs, false, &w->rs, &err);
	if (r < 0) {
		api_reply_error(ctx, 400, err);
		free(err);
		free(w);
		return;
	}
	/* One statement for the whole page of builders (bench/ui.sh: 1,000
	 * builders and 100,000 builds took one query per builder before). */
	static const char *const no_props[] = {"properties", NULL};
	struct db_query q = {.filters = w->rs.filters,
			     .nfilters = w->rs.nfilters,
			     .limit = api_page_limit(w->rs.limit),
			     .offset = w->rs.offset};
	r = db_list_last_builds_async(ctx->db, &q, no_props, api_lastbuilds_answered, w);
	if (r < 0) {
		if (r == -EINVAL || r == KILN_EPARSE)
			api_reply_errorf(ctx, 400, "invalid filter: %s", db_errmsg(ctx->db));
		else
			api_reply_db_error(ctx, r);
		api_rspec_release(&w->rs);
		free(w);
		return;
	}
	w->ctx = *ctx;
	w->ctx.ncap = 0;
	w->d = http_req_defer(ctx->req);
}
