/*
 * Slice "dispatch": Buildbot's nextWorker, nextBuild and prioritizeBuilders
 * as master.lua functions.  The global setting prioritize_builders is read
 * here (builders' next_worker and next_build keys in config-builder.c); the
 * engine's calls (config_call_next_worker, config_call_next_build,
 * config_call_prioritize in config.h) hand C arrays to config_call_fn and
 * turn what the function returned into an index of those arrays.
 */
#include "config/config-internal.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <jansson.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool config_dispatch_setting(lua_State *L, const char *key)
{
	if (strcmp(key, "prioritize_builders"))
		return false;
	struct config *cfg = config_ctx_of(L)->cfg;
	if (lua_type(L, 3) != LUA_TFUNCTION)
		config_raise(L, "'prioritize_builders' must be a function (got %s)",
			     dsl_typename(L, 3));
	if (cfg->prioritize_builders_fn)
		luaL_unref(L, LUA_REGISTRYINDEX, cfg->prioritize_builders_fn);
	cfg->prioritize_builders_fn = config_ref_fn(L, 3);
	return true;
}

/* ---- what the functions are handed ---------------------------------------- */

/* {"name": [value, "source"]} as {"name": value} (values shared, not copied). */
static json_t *config_dispatch_props(const json_t *props)
{
	json_t *o = json_object();
	const char *k;
	json_t *v;
	if (!json_is_object(props))
		return o;
	json_object_foreach((json_t *)props, k, v)
	{
		json_t *val = json_is_array(v) ? json_array_get(v, 0) : v;
		if (val)
			json_object_set(o, k, val);
	}
	return o;
}

static json_t *config_dispatch_request_json(const struct config_dispatch_request *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(r->buildrequestid));
	json_object_set_new(o, "buildrequestid", json_integer(r->buildrequestid));
	json_object_set_new(o, "buildsetid", json_integer(r->buildsetid));
	json_object_set_new(o, "priority", json_integer(r->priority));
	json_object_set_new(o, "submitted_at", json_real(r->submitted_at));
	if (r->reason) {
		json_t *s = json_string(r->reason);
		if (s) /* not UTF-8: left out */
			json_object_set_new(o, "reason", s);
	}
	json_object_set_new(o, "properties", config_dispatch_props(r->properties));
	return o;
}

/* A worker's properties (JSON text in its config) as one object. */
static json_t *config_dispatch_worker_props(const struct config_worker *w)
{
	json_t *o = json_object();
	for (size_t i = 0; i < w->nprops; i++) {
		json_t *v = json_loads(w->props[i].value, JSON_DECODE_ANY, NULL);
		if (v)
			json_object_set_new(o, w->props[i].name, v);
	}
	return o;
}

static json_t *config_dispatch_worker_json(const struct config_dispatch_worker *w)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(w->cfg->name));
	json_object_set_new(o, "max_builds", json_integer(w->cfg->max_builds));
	json_object_set_new(o, "running", json_integer(w->running));
	json_object_set_new(o, "properties", config_dispatch_worker_props(w->cfg));
	return o;
}

/* What a returned value names: a string, or the "name" of an element. */
static const char *config_dispatch_name_of(const json_t *v)
{
	if (json_is_object(v))
		v = json_object_get(v, "name");
	return json_string_value(v);
}

static const char *config_dispatch_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "table";
	case JSON_ARRAY:
		return "list";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "nil";
	}
}

static const char *config_dispatch_chunk(const struct config *cfg)
{
	return cfg->lua ? cfg->lua->chunkname : "master.lua";
}

/* ---- next_worker ------------------------------------------------------------- */

int config_call_next_worker(struct config *cfg, const struct config_builder *b,
			    const struct config_dispatch_worker *workers, size_t n,
			    const struct config_dispatch_request *req, size_t *ret_idx,
			    char **ret_err)
{
	if (n > KILN_DISPATCH_MAX_WORKERS)
		n = KILN_DISPATCH_MAX_WORKERS;
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, config_dispatch_worker_json(&workers[i]));
	json_t *args = json_array();
	json_array_append_new(args, json_string(b->name));
	json_array_append_new(args, list);
	json_array_append_new(args, config_dispatch_request_json(req));
	json_t *res = NULL;
	int r = config_call_fn(cfg, b->next_worker_fn, args, NULL, &res, ret_err);
	json_decref(args);
	if (r < 0)
		return r;
	if (json_is_null(res)) {
		json_decref(res);
		return 0;
	}
	const char *name = config_dispatch_name_of(res);
	if (!name) {
		*ret_err =
			xasprintf("%s: next_worker of builder '%s' returned a %s (want a "
				  "worker's name, an element of workers or nil)",
				  config_dispatch_chunk(cfg), b->name, config_dispatch_type(res));
		json_decref(res);
		return KILN_ECONFIG;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(workers[i].cfg->name, name)) {
			json_decref(res);
			*ret_idx = i;
			return 1;
		}
	*ret_err = xasprintf("%s: next_worker of builder '%s' returned '%.100s', which is not "
			     "one of the idle workers it was offered",
			     config_dispatch_chunk(cfg), b->name, name);
	json_decref(res);
	return KILN_ENOTFOUND;
}

/* ---- next_build -------------------------------------------------------------- */

/* The request id a returned value names: a number, or the "id" of an
 * element; false when it names none. */
static bool config_dispatch_id_of(const json_t *v, long long *ret)
{
	if (json_is_object(v))
		v = json_object_get(v, "id");
	if (json_is_integer(v)) {
		*ret = (long long)json_integer_value(v);
		return true;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d == floor(d) && fabs(d) < 9e15) {
			*ret = (long long)d;
			return true;
		}
	}
	return false;
}

int config_call_next_build(struct config *cfg, const struct config_builder *b,
			   const struct config_dispatch_request *reqs, size_t n, size_t *ret_idx,
			   char **ret_err)
{
	if (n > KILN_DISPATCH_MAX_REQUESTS)
		n = KILN_DISPATCH_MAX_REQUESTS;
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, config_dispatch_request_json(&reqs[i]));
	json_t *args = json_array();
	json_array_append_new(args, json_string(b->name));
	json_array_append_new(args, list);
	json_t *res = NULL;
	int r = config_call_fn(cfg, b->next_build_fn, args, NULL, &res, ret_err);
	json_decref(args);
	if (r < 0)
		return r;
	if (json_is_null(res)) {
		json_decref(res);
		return 0;
	}
	long long id;
	if (!config_dispatch_id_of(res, &id)) {
		*ret_err =
			xasprintf("%s: next_build of builder '%s' returned a %s (want a "
				  "request's id, an element of requests or nil)",
				  config_dispatch_chunk(cfg), b->name, config_dispatch_type(res));
		json_decref(res);
		return KILN_ECONFIG;
	}
	json_decref(res);
	for (size_t i = 0; i < n; i++)
		if (reqs[i].buildrequestid == id) {
			*ret_idx = i;
			return 1;
		}
	*ret_err = xasprintf("%s: next_build of builder '%s' returned request %lld, which is not "
			     "one of the queued requests it was offered",
			     config_dispatch_chunk(cfg), b->name, id);
	return KILN_ENOTFOUND;
}

/* ---- prioritize_builders ------------------------------------------------------ */

struct config_dispatch_name {
	const char *name;
	size_t idx;
};

static int config_dispatch_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct config_dispatch_name *)a)->name,
		      ((const struct config_dispatch_name *)b)->name);
}

int config_call_prioritize(struct config *cfg, const struct config_dispatch_builder *bs, size_t n,
			   size_t *ret_order, char **ret_err)
{
	for (size_t i = 0; i < n; i++)
		ret_order[i] = i;
	size_t offered = n > KILN_DISPATCH_MAX_BUILDERS ? KILN_DISPATCH_MAX_BUILDERS : n;
	json_t *list = json_array();
	for (size_t i = 0; i < offered; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(bs[i].name));
		json_object_set_new(o, "oldest_request_time", json_real(bs[i].oldest));
		json_object_set_new(o, "priority", json_integer(bs[i].priority));
		json_array_append_new(list, o);
	}
	json_t *args = json_array();
	json_array_append_new(args, list);
	json_t *res = NULL;
	int r = config_call_fn(cfg, cfg->prioritize_builders_fn, args, NULL, &res, ret_err);
	json_decref(args);
	if (r < 0)
		return r;
	if (json_is_null(res) || (json_is_object(res) && json_object_size(res) == 0)) {
		json_decref(res); /* nil, or an empty table: the default order */
		return 0;
	}
	if (!json_is_array(res)) {
		*ret_err = xasprintf("%s: prioritize_builders returned a %s (want a list of "
				     "builder names or elements of builders)",
				     config_dispatch_chunk(cfg), config_dispatch_type(res));
		json_decref(res);
		return KILN_ECONFIG;
	}
	/* names looked up by binary search: n names, each returned once at most */
	struct config_dispatch_name *byname = xcalloc(offered + 1, sizeof(*byname));
	for (size_t i = 0; i < offered; i++)
		byname[i] = (struct config_dispatch_name){bs[i].name, i};
	qsort(byname, offered, sizeof(*byname), config_dispatch_name_cmp);
	bool *taken = xcalloc(offered + 1, sizeof(*taken));
	size_t k = 0, i;
	json_t *v;
	json_array_foreach(res, i, v)
	{
		struct config_dispatch_name key = {config_dispatch_name_of(v), 0};
		if (!key.name)
			continue;
		struct config_dispatch_name *hit =
			bsearch(&key, byname, offered, sizeof(*byname), config_dispatch_name_cmp);
		if (!hit || taken[hit->idx])
			continue;
		taken[hit->idx] = true;
		ret_order[k++] = hit->idx;
	}
	for (size_t j = 0; j < offered; j++)
		if (!taken[j])
			ret_order[k++] = j;
	/* past the cap: as they were (ret_order[offered..n) still holds them) */
	free(taken);
	free(byname);
	json_decref(res);
	return 0;
}
