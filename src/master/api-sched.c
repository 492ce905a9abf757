/*
 * API endpoints of the schedulers: the typed parameters in the
 * /forceschedulers description, the field a refused force call is about
 * (error.data), POST /api/v2/tryschedulers/{name} (method
 * "try": a patch from `kiln try`, authenticated by the scheduler's token)
 * and the test clock POST /api/v2/_test/clock (only with KILN_TEST_CLOCK=1).
 */
#define LOG_SUBSYS "api"

#include "master/api-int.h"
#include "master/master.h"
#include "master/sched/sched.h"

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <string.h>

/* One typed force parameter described as Buildbot describes its fields. */
static json_t *api_param_json(const struct config_param *p)
{
	static const char *const types[] = {
		[CONFIG_PARAM_STRING] = "text",
		[CONFIG_PARAM_INT] = "int",
		[CONFIG_PARAM_BOOL] = "bool",
		[CONFIG_PARAM_CHOICE] = "list",
	};
	const char *label = p->label ? p->label : p->name;
	json_t *def;
	if (p->type == CONFIG_PARAM_INT)
		def = json_integer(strtoll(p->def, NULL, 10));
	else if (p->type == CONFIG_PARAM_BOOL)
		def = json_boolean(!strcmp(p->def, "true"));
	else
		def = json_string(p->def);
	json_t *f =
		json_pack("{s:n,s:o,s:s,s:b,s:s,s:n,s:b,s:s,s:n,s:b,s:i,s:s,s:s}", "autopopulate",
			  "default", def, "fullName", p->name, "hide", 0, "label", label, "maxsize",
			  "multiple", 0, "name", p->name, "regex", "required", p->required, "size",
			  10, "tablabel", label, "type", types[p->type]);
	if (p->type == CONFIG_PARAM_CHOICE) {
		json_t *ch = json_array();
		for (size_t i = 0; i < p->nchoices; i++)
			json_array_append_new(ch, json_string(p->choices[i]));
		json_object_set_new(f, "choices", ch);
		json_object_set_new(f, "strict", json_true());
	}
	if (p->type == CONFIG_PARAM_INT) {
		if (p->min != LLONG_MIN)
			json_object_set_new(f, "minimum", json_integer(p->min));
		if (p->max != LLONG_MAX)
			json_object_set_new(f, "maximum", json_integer(p->max));
	}
	return f;
}

json_t *api_force_params_json(const struct config_scheduler *sc)
{
	json_t *fields = json_array();
	for (size_t i = 0; i < sc->nparams; i++)
		json_array_append_new(fields, api_param_json(&sc->params[i]));
	return fields;
}

/*
 * The form field a force validation message is about, for a form that
 * shows it next to that field: {"<field>": "<message>"} (the object
 * Buildbot's force answers carry as the error's message), or NULL when the
 * message names no field.  sched-force.c's messages start with the field's
 * quoted name, or with a typed parameter's label, which is mapped back to
 * the parameter's name (the key the form and the force call use).
 */
json_t *api_force_error_fields(const struct config_scheduler *sc, const char *err)
{
	if (!err || err[0] != '\'')
		return NULL;
	const char *end = strchr(err + 1, '\'');
	if (!end || end == err + 1)
		return NULL;
	_cleanup_free_ char *name = xstrndup(err + 1, (size_t)(end - err - 1));
	const char *field = name;
	bool is_name = false;
	for (size_t i = 0; sc && i < sc->nparams && !is_name; i++)
		is_name = !strcmp(sc->params[i].name, name);
	for (size_t i = 0; sc && i < sc->nparams && !is_name; i++) {
		const char *label = sc->params[i].label;
		if (label && !strcmp(label, name)) {
			field = sc->params[i].name;
			break;
		}
	}
	json_t *msg = json_string(err);
	json_t *fields = json_object();
	if (!msg || json_object_set_new(fields, field, msg) < 0) {
		json_decref(fields);
		return NULL; /* not UTF-8: no field to name */
	}
	return fields;
}

void api_force_reply_invalid(struct api_ctx *ctx, json_t *id, const struct config_scheduler *sc,
			     const char *err)
{
	const char *msg = err ? err : "invalid parameters";
	json_t *doc = api_rpc_error_doc(id, -32602, msg);
	json_t *fields = api_force_error_fields(sc, err);
	if (fields)
		json_object_set_new(json_object_get(doc, "error"), "data", fields);
	char *s = json_dumps(doc, 0);
	json_decref(doc);
	if (!s) {
		api_rpc_reply_error(ctx, 400, id, -32602, msg);
		return;
	}
	http_reply_take(ctx->req, 400, "application/json", s, strlen(s));
}

/* ---- try ------------------------------------------------------------------------------- */

void api_tryschedulers_get(struct api_ctx *ctx)
{
	const struct config *cfg = ctx->m->cfg;
	json_t *list = json_array();
	for (size_t i = 0; cfg && i < cfg->nschedulers; i++) {
		const struct config_scheduler *sc = &cfg->scheduler[i];
		if (sc->kind != CONFIG_SCHED_TRY)
			continue;
		json_t *names = json_array();
		for (size_t k = 0; k < sc->nbuilders; k++)
			json_array_append_new(names, json_string(sc->builders[k]));
		json_array_append_new(
			list, json_pack("{s:s,s:o}", "name", sc->name, "builder_names", names));
	}
	json_t *meta = json_pack("{s:I}", "total", (json_int_t)json_array_size(list));
	api_reply_json(ctx, 200, json_pack("{s:o,s:o}", "tryschedulers", list, "meta", meta));
}

static const char *api_str(json_t *params, const char *name)
{
	return json_string_value(json_object_get(params, name));
}

void api_try_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	json_t *p = rpc->params;
	if (strcmp(rpc->method, "try")) {
		char *msg = xasprintf("action: %s is not supported", rpc->method);
		api_rpc_reply_error(ctx, 501, rpc->id, -32601, msg);
		free(msg);
		return;
	}
	if (!ctx->m->sched) {
		api_rpc_reply_error(ctx, 503, rpc->id, -32603, "schedulers are not running");
		return;
	}
	char *cerr = NULL;
	if (sched_try_check(p, &cerr) < 0) {
		/* types and sizes first: nothing below sees a wrong-typed field */
		api_rpc_reply_error(ctx, 400, rpc->id, -32602, cerr);
		free(cerr);
		return;
	}
	const char *b64 = api_str(p, "patch_base64");
	if (!b64) {
		api_rpc_reply_error(ctx, 400, rpc->id, -32602, "'patch_base64' is required");
		return;
	}
	size_t b64len = strlen(b64);
	size_t cap = b64len / 4 * 3 + 3;
	if (cap > KILN_MAX_PATCH_BYTES + 3) {
		api_rpc_reply_error(ctx, 413, rpc->id, -32602, "the patch is too large");
		return;
	}
	_cleanup_free_ char *patch = xmalloc(cap + 1);
	size_t plen = 0;
	if (sodium_base642bin((unsigned char *)patch, cap, b64, b64len, "\n\r ", &plen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		api_rpc_reply_error(ctx, 400, rpc->id, -32602, "'patch_base64' is not base64");
		return;
	}
	patch[plen] = '\0';
	json_t *level = json_object_get(p, "patch_level");
	json_t *names = json_object_get(p, "builderNames");
	const char **builders = NULL;
	size_t nb = 0;
	if (json_is_array(names)) {
		builders = xcalloc(json_array_size(names) + 1, sizeof(*builders));
		size_t i;
		json_t *v;
		json_array_foreach(names, i, v)
		{
			if (json_is_string(v))
				builders[nb++] = json_string_value(v);
		}
	}
	struct sched_try_job job = {
		.scheduler = ctx->cap[0],
		.token = api_str(p, "token"),
		.branch = api_str(p, "branch"),
		.revision = api_str(p, "revision"),
		.repository = api_str(p, "repository"),
		.project = api_str(p, "project"),
		.codebase = api_str(p, "codebase"),
		.patch = patch,
		.patch_len = plen,
		.patch_level = json_is_integer(level) ? (int)json_integer_value(level) : 1,
		.patch_subdir = api_str(p, "patch_subdir"),
		.who = api_str(p, "who"),
		.comment = api_str(p, "comment"),
		.builders = builders,
		.nbuilders = nb,
	};
	if (builders && nb == 0) {
		free(builders);
		api_rpc_reply_error(ctx, 400, rpc->id, -32602, "'builderNames' lists no builder");
		return;
	}
	int64_t bsid = 0;
	char *err = NULL;
	int r = sched_try(ctx->m->sched, &job, &bsid, &err);
	free(builders);
	if (r >= 0)
		r = db_flush(ctx->db); /* acknowledged only once stored */
	if (r == KILN_EAUTH) {
		log_warn("try '%s': bad token", ctx->cap[0]);
		api_rpc_reply_error(ctx, 401, rpc->id, -32001, "bad token");
	} else if (r == KILN_ENOTFOUND) {
		api_rpc_reply_error(ctx, 404, rpc->id, -32602, "no such try scheduler");
	} else if (r == -EINVAL) {
		api_rpc_reply_error(ctx, 400, rpc->id, -32602, err ? err : "invalid parameters");
	} else if (r < 0) {
		api_rpc_reply_error(ctx, 500, rpc->id, -32603, err_str(r));
	} else {
		log_info("try '%s': buildset %lld (%zu-byte patch)", ctx->cap[0], (long long)bsid,
			 plen);
		api_rpc_reply_result(ctx, rpc->id, json_pack("{s:I}", "bsid", (json_int_t)bsid));
	}
	free(err);
}

/* ---- the test clock -------------------------------------------------------------------- */

void api_test_clock_get(struct api_ctx *ctx)
{
	if (!sched_test_clock_enabled(ctx->m->sched)) {
		api_invalid_path(ctx);
		return;
	}
	api_reply_json(ctx, 200, json_pack("{s:f}", "now", sched_now(ctx->m->sched)));
}

void api_test_clock_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	if (!sched_test_clock_enabled(ctx->m->sched)) {
		char *msg = xasprintf("Invalid path: %s", ctx->rest);
		api_rpc_reply_error(ctx, 404, rpc->id, -32600, msg);
		free(msg);
		return;
	}
	json_t *secs = json_object_get(rpc->params, "seconds");
	if (strcmp(rpc->method, "advance") || !json_is_number(secs)) {
		api_rpc_reply_error(ctx, 400, rpc->id, -32602,
				    "method 'advance' with params {\"seconds\": N}");
		return;
	}
	int r = sched_test_clock_advance(ctx->m->sched, json_number_value(secs));
	if (r >= 0)
		r = db_flush(ctx->db);
	if (r < 0)
		api_rpc_reply_error(ctx, 400, rpc->id, -32602, err_str(r));
	else
		api_rpc_reply_result(ctx, rpc->id,
				     json_pack("{s:f}", "now", sched_now(ctx->m->sched)));
}

/* ---- /schedulers and JSON-RPC "enable" (slice "uichanges") ----------------------------- */

/* The declaration master.lua names a scheduler's kind with. */
static const char *api_sched_kind(enum config_scheduler_kind k)
{
	static const char *const names[] = {
		[CONFIG_SCHED_FORCE] = "force_scheduler",
		[CONFIG_SCHED_SINGLE_BRANCH] = "single_branch",
		[CONFIG_SCHED_ANY_BRANCH] = "any_branch",
		[CONFIG_SCHED_PERIODIC] = "periodic",
		[CONFIG_SCHED_NIGHTLY] = "nightly",
		[CONFIG_SCHED_TRIGGERABLE] = "triggerable",
		[CONFIG_SCHED_DEPENDENT] = "dependent",
		[CONFIG_SCHED_TRY] = "try_scheduler",
	};
	return (size_t)k < ARRAY_SIZE(names) && names[k] ? names[k] : "unknown";
}

/* Buildbot's scheduler row (schedulerid, name, enabled, master) plus Kiln's
 * kind and builder_names; schedulerid is the 1-based place in master.lua. */
static json_t *api_sched_row(struct api_ctx *ctx, size_t i, json_t *master)
{
	const struct config_scheduler *sc = sched_config(ctx->m->sched, i);
	json_t *names = json_array();
	for (size_t k = 0; k < sc->nbuilders; k++)
		json_array_append_new(names, json_string(sc->builders[k]));
	return json_pack("{s:I,s:s,s:b,s:O,s:s,s:o}", "schedulerid", (json_int_t)i + 1, "name",
			 sc->name, "enabled", sched_enabled(ctx->m->sched, i), "master",
			 master ? master : json_null(), "kind", api_sched_kind(sc->kind),
			 "builder_names", names);
}

/* The index of the scheduler a path names (its schedulerid or its name). */
static int api_sched_index(struct api_ctx *ctx, const char *idname, size_t *ret)
{
	size_t n = sched_count(ctx->m->sched);
	if (api_is_num(idname)) {
		unsigned long long id = strtoull(idname, NULL, 10);
		if (id < 1 || id > n)
			return KILN_ENOTFOUND;
		*ret = (size_t)id - 1;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(sched_config(ctx->m->sched, i)->name, idname)) {
			*ret = i;
			return 0;
		}
	return KILN_ENOTFOUND;
}

void api_schedulers_get(struct api_ctx *ctx)
{
	json_t *master = api_this_master(ctx);
	json_t *list = json_array();
	for (size_t i = 0; i < sched_count(ctx->m->sched); i++)
		json_array_append_new(list, api_sched_row(ctx, i, master));
	json_decref(master);
	json_t *meta = json_pack("{s:I}", "total", (json_int_t)json_array_size(list));
	api_reply_json(ctx, 200, json_pack("{s:o,s:o}", "schedulers", list, "meta", meta));
}

void api_scheduler_get(struct api_ctx *ctx)
{
	size_t i;
	if (api_sched_index(ctx, ctx->cap[0], &i) < 0) {
		api_not_found(ctx);
		return;
	}
	json_t *master = api_this_master(ctx);
	json_t *row = api_sched_row(ctx, i, master);
	json_decref(master);
	api_reply_json(ctx, 200, json_pack("{s:[o],s:{}}", "schedulers", row, "meta"));
}

/* POST /schedulers/ID {"method": "enable", "params": {"enabled": BOOL}}. */
void api_scheduler_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	if (strcmp(rpc->method, "enable")) {
		char *msg = xasprintf("action: %s is not supported", rpc->method);
		api_rpc_reply_error(ctx, 501, rpc->id, -32601, msg);
		free(msg);
		return;
	}
	json_t *en = json_object_get(rpc->params, "enabled");
	if (!json_is_boolean(en)) {
		api_rpc_reply_error(ctx, 400, rpc->id, -32602, "'enabled' must be true or false");
		return;
	}
	size_t i;
	if (api_sched_index(ctx, ctx->cap[0], &i) < 0) {
		api_rpc_reply_error(ctx, 404, rpc->id, -32602, "no such scheduler");
		return;
	}
	int r = sched_set_enabled(ctx->m->sched, i, json_is_true(en));
	if (r >= 0)
		r = db_flush(ctx->db); /* acknowledged only once stored */
	if (r < 0)
		api_rpc_reply_error(ctx, 500, rpc->id, -32603, err_str(r));
	else
		api_rpc_reply_result(ctx, rpc->id, json_null());
}
