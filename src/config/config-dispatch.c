/*
 * Slice "dispatch": Buildbot's nextWorker, nextBuild and prioritizeBuilders
 * as master.lua functions.  The global setting prioritize_builders is read
 * here (builders' next_worker and next_build keys in config-builder.c); the
 * engine's calls (config_call_next_worker, config_call_next_build,
 * config_call_prioritize in config.h) push C arrays straight into Lua tables
 * and read the function's answer off the Lua stack as an index of those
 * arrays (no JSON in between: a call over 1,000 entries stays cheap).
 */
#include "config/config-internal.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
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

/* ---- one call: what the function is handed, what it returned ---------------- */

enum config_dispatch_kind { DISPATCH_NEXT_WORKER, DISPATCH_NEXT_BUILD, DISPATCH_PRIORITIZE };

struct config_dispatch_call {
	enum config_dispatch_kind kind;
	int fn;
	const char *builder; /* NULL for prioritize_builders */
	const struct config_dispatch_worker *workers;
	const struct config_dispatch_request *reqs; /* next_worker: the one request */
	const struct config_dispatch_builder *bs;
	size_t n;      /* workers, requests or builders offered */
	size_t *order; /* prioritize_builders: the order (n entries) */
	bool ordered;  /* ... filled from the list it returned */
	int result;    /* 1 chosen (idx), 0 nil, KILN_ENOTFOUND, KILN_ECONFIG (msg) */
	size_t idx;
	char got[32];    /* the type returned, for the message */
	char named[128]; /* what it named, when not offered */
	long long named_id;
};

/* s (NULL: nil) cut at KILN_LUA_MAX_TEXT, as every text a function gets. */
static void config_dispatch_push_text(lua_State *L, const char *s)
{
	if (s)
		lua_pushlstring(L, s, strnlen(s, KILN_LUA_MAX_TEXT));
	else
		lua_pushnil(L);
}

/* {"name": [value, "source"]} (or NULL) as a table name -> value. */
static void config_dispatch_push_props(lua_State *L, const json_t *props)
{
	lua_createtable(L, 0, json_is_object(props) ? (int)json_object_size(props) : 0);
	if (!json_is_object(props))
		return;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)props, k, v)
	{
		config_render_push(L, json_is_array(v) ? json_array_get(v, 0) : v, 1);
		lua_setfield(L, -2, k);
	}
}

static void config_dispatch_push_request(lua_State *L, const struct config_dispatch_request *r)
{
	lua_createtable(L, 0, 7);
	lua_pushinteger(L, r->buildrequestid);
	lua_setfield(L, -2, "id");
	lua_pushinteger(L, r->buildrequestid);
	lua_setfield(L, -2, "buildrequestid");
	lua_pushinteger(L, r->buildsetid);
	lua_setfield(L, -2, "buildsetid");
	lua_pushinteger(L, r->priority);
	lua_setfield(L, -2, "priority");
	lua_pushnumber(L, r->submitted_at);
	lua_setfield(L, -2, "submitted_at");
	config_dispatch_push_text(L, r->reason);
	lua_setfield(L, -2, "reason");
	config_dispatch_push_props(L, r->properties);
	lua_setfield(L, -2, "properties");
}

static void config_dispatch_push_worker(lua_State *L, const struct config_dispatch_worker *w)
{
	lua_createtable(L, 0, 4);
	lua_pushstring(L, w->cfg->name);
	lua_setfield(L, -2, "name");
	lua_pushinteger(L, w->cfg->max_builds);
	lua_setfield(L, -2, "max_builds");
	lua_pushinteger(L, w->running);
	lua_setfield(L, -2, "running");
	/* properties are kept as JSON text: each is decoded for the call */
	lua_createtable(L, 0, (int)w->cfg->nprops);
	for (size_t i = 0; i < w->cfg->nprops; i++) {
		json_t *v = json_loads(w->cfg->props[i].value, JSON_DECODE_ANY, NULL);
		if (!v)
			continue;
		config_render_push(L, v, 1);
		json_decref(v);
		lua_setfield(L, -2, w->cfg->props[i].name);
	}
	lua_setfield(L, -2, "properties");
}

static void config_dispatch_push_builder(lua_State *L, const struct config_dispatch_builder *b)
{
	lua_createtable(L, 0, 3);
	lua_pushstring(L, b->name);
	lua_setfield(L, -2, "name");
	lua_pushnumber(L, b->oldest);
	lua_setfield(L, -2, "oldest_request_time");
	lua_pushinteger(L, b->priority);
	lua_setfield(L, -2, "priority");
}

/* What the value at idx names: a string, or the "name" string of a table
 * (read raw: no metamethod runs outside the budget).  NULL if neither. */
static const char *config_dispatch_name_at(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	if (lua_type(L, idx) == LUA_TSTRING)
		return lua_tostring(L, idx);
	if (lua_type(L, idx) != LUA_TTABLE)
		return NULL;
	lua_pushliteral(L, "name");
	lua_rawget(L, idx);
	const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
	lua_pop(L, 1); /* s stays valid: the table still holds the string */
	return s;
}

/* The request id the value at idx names: an integral number, or the "id"
 * of a table.  false if neither. */
static bool config_dispatch_id_at(lua_State *L, int idx, long long *ret)
{
	idx = lua_absindex(L, idx);
	bool pushed = false;
	if (lua_type(L, idx) == LUA_TTABLE) {
		lua_pushliteral(L, "id");
		lua_rawget(L, idx);
		idx = lua_gettop(L);
		pushed = true;
	}
	int isint = 0;
	lua_Integer v = 0;
	if (lua_type(L, idx) == LUA_TNUMBER)
		v = lua_tointegerx(L, idx, &isint); /* 12.0 is 12; 10.5 is not an id */
	if (pushed)
		lua_pop(L, 1);
	if (isint)
		*ret = (long long)v;
	return isint != 0;
}

struct config_dispatch_name {
	const char *name;
	size_t idx;
};

static int config_dispatch_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct config_dispatch_name *)a)->name,
		      ((const struct config_dispatch_name *)b)->name);
}

/* prioritize_builders' list at idx into c->order: those it names first
 * (looked up by binary search), then the others in their default order. */
static void config_dispatch_read_order(lua_State *L, int idx, struct config_dispatch_call *c)
{
	size_t n = c->n;
	struct config_dispatch_name *byname = xcalloc(n + 1, sizeof(*byname));
	bool *taken = xcalloc(n + 1, sizeof(*taken));
	for (size_t i = 0; i < n; i++)
		byname[i] = (struct config_dispatch_name){c->bs[i].name, i};
	qsort(byname, n, sizeof(*byname), config_dispatch_name_cmp);
	size_t k = 0;
	lua_Unsigned len = lua_rawlen(L, idx);
	/* each element was made by the function, under its budget; stop once
	 * every builder is placed */
	for (lua_Unsigned i = 1; i <= len && k < n; i++) {
		lua_rawgeti(L, idx, (lua_Integer)i);
		struct config_dispatch_name key = {config_dispatch_name_at(L, -1), 0};
		struct config_dispatch_name *hit =
			key.name ? bsearch(&key, byname, n, sizeof(*byname),
					   config_dispatch_name_cmp)
				 : NULL;
		lua_pop(L, 1);
		if (!hit || taken[hit->idx])
			continue; /* not offered, a repeat, or not a name */
		taken[hit->idx] = true;
		c->order[k++] = hit->idx;
	}
	for (size_t j = 0; j < n; j++)
		if (!taken[j])
			c->order[k++] = j;
	free(taken);
	free(byname);
}

static int config_dispatch_main(lua_State *L)
{
	struct config_dispatch_call *c = lua_touserdata(L, 1);
	lua_settop(L, 0);
	luaL_checkstack(L, 8, "dispatch call");
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->fn);
	int nargs = 1;
	if (c->kind != DISPATCH_PRIORITIZE) {
		lua_pushstring(L, c->builder);
		nargs++;
	}
	lua_createtable(L, (int)c->n, 0);
	for (size_t i = 0; i < c->n; i++) {
		if (c->kind == DISPATCH_NEXT_WORKER)
			config_dispatch_push_worker(L, &c->workers[i]);
		else if (c->kind == DISPATCH_NEXT_BUILD)
			config_dispatch_push_request(L, &c->reqs[i]);
		else
			config_dispatch_push_builder(L, &c->bs[i]);
		lua_rawseti(L, -2, (lua_Integer)(i + 1));
	}
	if (c->kind == DISPATCH_NEXT_WORKER) {
		config_dispatch_push_request(L, c->reqs);
		nargs++;
	}
	lua_call(L, nargs, 1);

	int top = lua_gettop(L);
	snprintf(c->got, sizeof(c->got), "%s", luaL_typename(L, top));
	if (lua_isnil(L, top)) {
		c->result = 0;
		return 0;
	}
	c->result = KILN_ECONFIG;
	if (c->kind == DISPATCH_PRIORITIZE) {
		if (lua_type(L, top) == LUA_TTABLE) {
			config_dispatch_read_order(L, top, c);
			c->ordered = true;
			c->result = 0;
		}
		return 0;
	}
	if (c->kind == DISPATCH_NEXT_WORKER) {
		const char *name = config_dispatch_name_at(L, top);
		if (!name)
			return 0;
		for (size_t i = 0; i < c->n; i++)
			if (!strcmp(c->workers[i].cfg->name, name)) {
				c->idx = i;
				c->result = 1;
				return 0;
			}
		snprintf(c->named, sizeof(c->named), "%s", name);
		c->result = KILN_ENOTFOUND;
		return 0;
	}
	long long id;
	if (!config_dispatch_id_at(L, top, &id))
		return 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->reqs[i].buildrequestid == id) {
			c->idx = i;
			c->result = 1;
			return 0;
		}
	c->named_id = id;
	c->result = KILN_ENOTFOUND;
	return 0;
}

static const char *config_dispatch_chunk(const struct config *cfg)
{
	return cfg->lua ? cfg->lua->chunkname : "master.lua";
}

/* Runs c: its result, *ret_err set for the error codes. */
static int config_dispatch_run(struct config *cfg, struct config_dispatch_call *c, char **ret_err)
{
	if (!cfg->lua || !c->fn) {
		*ret_err = xstrdup("master.lua: no Lua state kept for functions");
		return KILN_ECONFIG;
	}
	int r = config_lua_run(cfg->lua, config_dispatch_main, c, ret_err);
	return r < 0 ? r : c->result;
}

int config_call_next_worker(struct config *cfg, const struct config_builder *b,
			    const struct config_dispatch_worker *workers, size_t n,
			    const struct config_dispatch_request *req, size_t *ret_idx,
			    char **ret_err)
{
	struct config_dispatch_call c = {
		.kind = DISPATCH_NEXT_WORKER,
		.fn = b->next_worker_fn,
		.builder = b->name,
		.workers = workers,
		.reqs = req,
		.n = n < KILN_DISPATCH_MAX_WORKERS ? n : KILN_DISPATCH_MAX_WORKERS};
	int r = config_dispatch_run(cfg, &c, ret_err);
	if (r == 1)
		*ret_idx = c.idx;
	else if (r == KILN_ENOTFOUND)
		*ret_err = xasprintf("%s: next_worker of builder '%s' returned '%s', which is not "
				     "one of the idle workers it was offered",
				     config_dispatch_chunk(cfg), b->name, c.named);
	else if (r == KILN_ECONFIG && c.result == KILN_ECONFIG)
		*ret_err = xasprintf("%s: next_worker of builder '%s' returned a %s (want a "
				     "worker's name, an element of workers or nil)",
				     config_dispatch_chunk(cfg), b->name, c.got);
	return r;
}

int config_call_next_build(struct config *cfg, const struct config_builder *b,
			   const struct config_dispatch_request *reqs, size_t n, size_t *ret_idx,
			   char **ret_err)
{
	struct config_dispatch_call c = {
		.kind = DISPATCH_NEXT_BUILD,
		.fn = b->next_build_fn,
		.builder = b->name,
		.reqs = reqs,
		.n = n < KILN_DISPATCH_MAX_REQUESTS ? n : KILN_DISPATCH_MAX_REQUESTS};
	int r = config_dispatch_run(cfg, &c, ret_err);
	if (r == 1)
		*ret_idx = c.idx;
	else if (r == KILN_ENOTFOUND)
		*ret_err = xasprintf("%s: next_build of builder '%s' returned request %lld, which "
				     "is not one of the queued requests it was offered",
				     config_dispatch_chunk(cfg), b->name, c.named_id);
	else if (r == KILN_ECONFIG && c.result == KILN_ECONFIG)
		*ret_err = xasprintf("%s: next_build of builder '%s' returned a %s (want a "
				     "request's id, an element of requests or nil)",
				     config_dispatch_chunk(cfg), b->name, c.got);
	return r;
}

int config_call_prioritize(struct config *cfg, const struct config_dispatch_builder *bs, size_t n,
			   size_t *ret_order, char **ret_err)
{
	/* the default order, kept when the function fails; past the cap the
	 * builders follow the offered ones as they were */
	for (size_t i = 0; i < n; i++)
		ret_order[i] = i;
	struct config_dispatch_call c = {
		.kind = DISPATCH_PRIORITIZE,
		.fn = cfg->prioritize_builders_fn,
		.bs = bs,
		.n = n < KILN_DISPATCH_MAX_BUILDERS ? n : KILN_DISPATCH_MAX_BUILDERS,
	};
	c.order = xcalloc(c.n + 1, sizeof(*c.order));
	int r = config_dispatch_run(cfg, &c, ret_err);
	if (r == 0 && c.ordered)
		memcpy(ret_order, c.order, c.n * sizeof(*c.order));
	else if (r == KILN_ECONFIG && c.result == KILN_ECONFIG)
		*ret_err = xasprintf("%s: prioritize_builders returned a %s (want a list of "
				     "builder names or elements of builders)",
				     config_dispatch_chunk(cfg), c.got);
	free(c.order);
	return r < 0 ? r : 0;
}
