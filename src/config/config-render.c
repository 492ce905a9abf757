/*
 * Renderable functions: a step's string or list given as a Lua function of
 * the build's properties, called when the step starts (config_call_render
 * in config.h).  The function gets a table name -> value and returns a
 * string, a number, a boolean, or a list of those; it runs in the kept Lua
 * state under the same budget as every runtime call (config_lua_run).
 */
#include "config/config-internal.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <jansson.h>
#include <lauxlib.h>
#include <string.h>

/* Nesting of property values handed to a function, and of a result. */
#define RENDER_MAX_DEPTH 16

struct config_render_call {
	int fn;
	const json_t *props;
	json_t *result;
	char err[256];
};

/* Pushes a JSON value as Lua: objects and arrays become tables, null nil;
 * strings cut at KILN_LUA_MAX_TEXT like every text a function gets. */
void config_render_push(lua_State *L, const json_t *v, int depth)
{
	if (depth > RENDER_MAX_DEPTH) {
		lua_pushnil(L);
		return;
	}
	luaL_checkstack(L, 4, "property value");
	switch (json_typeof(v)) {
	case JSON_STRING: {
		size_t len = json_string_length(v);
		lua_pushlstring(L, json_string_value(v),
				len > KILN_LUA_MAX_TEXT ? KILN_LUA_MAX_TEXT : len);
		break;
	}
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(v));
		break;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		lua_pushboolean(L, json_is_true(v));
		break;
	case JSON_ARRAY: {
		size_t i;
		const json_t *e;
		lua_createtable(L, (int)json_array_size(v), 0);
		json_array_foreach(v, i, e)
		{
			config_charge(L, 16);
			config_render_push(L, e, depth + 1);
			lua_rawseti(L, -2, (lua_Integer)(i + 1));
		}
		break;
	}
	case JSON_OBJECT: {
		const char *k;
		const json_t *e;
		lua_createtable(L, 0, (int)json_object_size(v));
		json_object_foreach((json_t *)v, k, e)
		{
			config_charge(L, 16);
			config_render_push(L, e, depth + 1);
			lua_setfield(L, -2, k);
		}
		break;
	}
	default:
		lua_pushnil(L);
	}
}

/* A scalar result at idx as JSON, or NULL with c->err set. */
static json_t *config_render_scalar(lua_State *L, int idx, struct config_render_call *c)
{
	size_t len;
	const char *s;
	switch (lua_type(L, idx)) {
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &len);
		json_t *j = json_stringn(s, len);
		if (!j)
			snprintf(c->err, sizeof(c->err),
				 "the renderable function returned a string that is not UTF-8");
		return j;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return json_integer((json_int_t)lua_tointeger(L, idx));
		return json_real(lua_tonumber(L, idx));
	case LUA_TBOOLEAN:
		return json_boolean(lua_toboolean(L, idx));
	default:
		snprintf(c->err, sizeof(c->err),
			 "the renderable function returned a %s (want a string, a number, a "
			 "boolean or a list of them)",
			 luaL_typename(L, idx));
		return NULL;
	}
}

static int config_render_main(lua_State *L)
{
	struct config_render_call *c = lua_touserdata(L, 1);
	lua_settop(L, 0);
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->fn);
	lua_createtable(L, 0, (int)json_object_size(c->props));
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)c->props, k, v)
	{
		config_charge(L, 32);
		/* stored as [value, source] */
		config_render_push(L, json_is_array(v) ? json_array_get(v, 0) : v, 1);
		lua_setfield(L, -2, k);
	}
	lua_call(L, 1, 1);
	int t = lua_gettop(L);
	if (lua_type(L, t) != LUA_TTABLE) {
		c->result = config_render_scalar(L, t, c);
		return 0;
	}
	lua_Integer n = luaL_len(L, t);
	if (n < 0 || n > KILN_LUA_MAX_FILES) {
		snprintf(c->err, sizeof(c->err),
			 "the renderable function returned a list of %lld elements (at most %u)",
			 (long long)n, (unsigned)KILN_LUA_MAX_FILES);
		return 0;
	}
	json_t *list = json_array();
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, t, i);
		json_t *e = lua_type(L, -1) == LUA_TTABLE ? NULL : config_render_scalar(L, -1, c);
		if (!e) {
			if (!c->err[0])
				snprintf(c->err, sizeof(c->err),
					 "the renderable function returned a list with a table "
					 "at [%lld]",
					 (long long)i);
			json_decref(list);
			return 0;
		}
		json_array_append_new(list, e);
		lua_pop(L, 1);
	}
	c->result = list;
	return 0;
}

int config_call_render(struct config *cfg, int fn, const json_t *props, json_t **ret,
		       char **ret_err)
{
	*ret = NULL;
	if (!cfg->lua || !fn) {
		*ret_err = xstrdup("master.lua: no Lua state kept for functions");
		return KILN_ECONFIG;
	}
	struct config_render_call c = {.fn = fn, .props = props};
	int r = config_lua_run(cfg->lua, config_render_main, &c, ret_err);
	if (r < 0) {
		json_decref(c.result);
		return r;
	}
	if (!c.result) {
		*ret_err = xstrdup(c.err[0] ? c.err : "the renderable function failed");
		return KILN_ECONFIG;
	}
	*ret = c.result;
	return 0;
}

/* ---- any function: config_call_fn (slice "misc") ------------------------ */

struct config_fn_call {
	int fn;
	const json_t *args;
	const json_t *props;
	json_t *result;
	char err[256];
};

/* The Lua value at idx as JSON, or NULL with err set. */
static json_t *config_fn_value(lua_State *L, int idx, int depth, struct config_fn_call *c)
{
	int t = lua_type(L, idx);
	if (t == LUA_TNIL)
		return json_null();
	if (t != LUA_TTABLE) {
		struct config_render_call rc = {0};
		json_t *v = config_render_scalar(L, idx, &rc);
		if (!v)
			snprintf(c->err, sizeof(c->err), "%s", rc.err);
		return v;
	}
	if (depth > RENDER_MAX_DEPTH) {
		snprintf(c->err, sizeof(c->err), "the function returned tables nested over %d deep",
			 RENDER_MAX_DEPTH);
		return NULL;
	}
	luaL_checkstack(L, 4, "function result");
	idx = lua_absindex(L, idx);
	lua_Integer n = luaL_len(L, idx);
	if (n > 0) {
		/* a sequence: a list */
		if (n > KILN_LUA_MAX_FILES) {
			snprintf(c->err, sizeof(c->err),
				 "the function returned a list of over %u elements",
				 (unsigned)KILN_LUA_MAX_FILES);
			return NULL;
		}
		json_t *list = json_array();
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, idx, i);
			json_t *v = config_fn_value(L, lua_gettop(L), depth + 1, c);
			lua_pop(L, 1);
			if (!v) {
				json_decref(list);
				return NULL;
			}
			json_array_append_new(list, v);
		}
		return list;
	}
	json_t *obj = json_object();
	size_t count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		json_t *v = NULL;
		if (++count > KILN_LUA_MAX_FILES)
			snprintf(c->err, sizeof(c->err),
				 "the function returned a table of over %u entries",
				 (unsigned)KILN_LUA_MAX_FILES);
		else if (lua_type(L, -2) != LUA_TSTRING)
			snprintf(c->err, sizeof(c->err),
				 "the function returned a table with a %s key",
				 luaL_typename(L, -2));
		else
			v = config_fn_value(L, lua_gettop(L), depth + 1, c);
		if (!v) {
			json_decref(obj);
			return NULL;
		}
		json_object_set_new(obj, lua_tostring(L, -2), v);
		lua_pop(L, 1);
	}
	return obj;
}

static int config_fn_main(lua_State *L)
{
	struct config_fn_call *c = lua_touserdata(L, 1);
	lua_settop(L, 0);
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->fn);
	int nargs = 0;
	size_t i;
	const json_t *a;
	json_array_foreach(c->args, i, a)
	{
		config_charge(L, 32);
		config_render_push(L, a, 1);
		nargs++;
	}
	if (c->props) {
		const char *k;
		const json_t *v;
		lua_createtable(L, 0, (int)json_object_size(c->props));
		json_object_foreach((json_t *)c->props, k, v)
		{
			config_charge(L, 32);
			config_render_push(L, json_is_array(v) ? json_array_get(v, 0) : v, 1);
			lua_setfield(L, -2, k);
		}
		nargs++;
	}
	lua_call(L, nargs, 1);
	c->result = config_fn_value(L, lua_gettop(L), 1, c);
	return 0;
}

int config_call_fn(struct config *cfg, int fn, const json_t *args, const json_t *props,
		   json_t **ret, char **ret_err)
{
	*ret = NULL;
	if (!cfg->lua || !fn) {
		*ret_err = xstrdup("master.lua: no Lua state kept for functions");
		return KILN_ECONFIG;
	}
	struct config_fn_call c = {.fn = fn, .args = args, .props = props};
	int r = config_lua_run(cfg->lua, config_fn_main, &c, ret_err);
	if (r < 0) {
		json_decref(c.result);
		return r;
	}
	if (!c.result) {
		*ret_err = xstrdup(c.err[0] ? c.err : "the function failed");
		return KILN_ECONFIG;
	}
	*ret = c.result;
	return 0;
}
