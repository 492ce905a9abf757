/*
 * Checking the values master.lua passes to its declarations: types, names,
 * paths, numbers, lists and the registries of declared names.  Every
 * failure raises "master.lua:LINE: message" (config_raise).  The dsl_*
 * helpers here are shared by every declaration file (config-internal.h).
 */
#include "config/config-internal.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DSL_MAX_PATH 1024

/* ---- checking values ---------------------------------------------------- */

const char *dsl_typename(lua_State *L, int idx)
{
	if (luaL_testudata(L, idx, MT_SECRET))
		return "secret";
	if (luaL_testudata(L, idx, MT_STEP))
		return "step";
	return luaL_typename(L, idx);
}

/* Pushes t[key] (raw: no metamethods run) and returns its type. */
int dsl_get(lua_State *L, int t, const char *key)
{
	/* a net under the declarations' own checks: lua_rawget on a string
	 * or a number would read past the value */
	if (lua_type(L, t) != LUA_TTABLE)
		config_raise(L, "expected a table holding '%s', got a %s", key,
			     luaL_typename(L, t));
	lua_pushstring(L, key);
	return lua_rawget(L, t);
}

void dsl_check_keys(lua_State *L, int t, const char *what, const char *const *keys)
{
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			config_raise(L, "%s: unexpected value without a key (write key = value)",
				     what);
		const char *k = lua_tostring(L, -1);
		size_t i;
		for (i = 0; keys[i]; i++)
			if (!strcmp(k, keys[i]))
				break;
		if (keys[i])
			continue;
		char known[256] = "";
		size_t off = 0;
		for (i = 0; keys[i] && off < sizeof(known); i++)
			off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%s",
						i ? ", " : "", keys[i]);
		config_raise(L, "%s: unknown key '%.60s' (known: %s)", what, k, known);
	}
}

/* The string at idx, checked: no NUL bytes (they end C strings). */
const char *dsl_check_string(lua_State *L, int idx, const char *what, const char *key,
			     size_t *ret_len)
{
	if (lua_type(L, idx) != LUA_TSTRING)
		config_raise(L, "%s: '%s' must be a string (got %s)", what, key,
			     dsl_typename(L, idx));
	size_t len;
	const char *s = lua_tolstring(L, idx, &len);
	if (strlen(s) != len)
		config_raise(L, "%s: '%s' must not contain NUL bytes", what, key);
	if (ret_len)
		*ret_len = len;
	return s;
}

/* t[key] as a string, or NULL when absent.  The string stays alive: the
 * table still references it and Lua's collector never moves objects. */
const char *dsl_opt_string(lua_State *L, int t, const char *what, const char *key, size_t *ret_len)
{
	if (dsl_get(L, t, key) == LUA_TNIL) {
		lua_pop(L, 1);
		return NULL;
	}
	const char *s = dsl_check_string(L, -1, what, key, ret_len);
	lua_pop(L, 1);
	return s;
}

void dsl_check_name(lua_State *L, const char *what, const char *key, const char *s, size_t len)
{
	if (len == 0)
		config_raise(L, "%s: '%s' must not be empty", what, key);
	if (len > KILN_MAX_NAME)
		config_raise(L, "%s: '%s' is longer than %d bytes", what, key, KILN_MAX_NAME);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/')
			config_raise(L, "%s: '%s' must not contain '/' (got '%.60s')", what, key,
				     s);
		if (c < 0x20 || c == 0x7f)
			config_raise(L, "%s: '%s' must not contain control characters", what, key);
	}
}

const char *dsl_opt_name(lua_State *L, int t, const char *what, const char *key)
{
	size_t len;
	const char *s = dsl_opt_string(L, t, what, key, &len);
	if (s)
		dsl_check_name(L, what, key, s, len);
	return s;
}

const char *dsl_req_name(lua_State *L, int t, const char *what, const char *key)
{
	const char *s = dsl_opt_name(L, t, what, key);
	if (!s)
		config_raise(L, "%s: '%s' is required", what, key);
	return s;
}

/* A relative path that stays inside the worker's directory. */
void dsl_check_relpath(lua_State *L, const char *what, const char *key, const char *s, size_t len)
{
	switch (str_relpath_check(s, len, DSL_MAX_PATH, false)) {
	case STR_RELPATH_OK:
	case STR_RELPATH_CONTROL: /* not checked here */
		return;
	case STR_RELPATH_EMPTY:
		config_raise(L, "%s: '%s' must not be empty", what, key);
		return;
	case STR_RELPATH_TOO_LONG:
		config_raise(L, "%s: '%s' is longer than %d bytes", what, key, DSL_MAX_PATH);
		return;
	case STR_RELPATH_ABSOLUTE:
		config_raise(L, "%s: '%s' must be a relative path (got '%.60s')", what, key, s);
		return;
	case STR_RELPATH_DOTDOT:
		config_raise(L, "%s: '%s' must not contain '..' (got '%.60s')", what, key, s);
		return;
	}
}

bool dsl_opt_bool(lua_State *L, int t, const char *what, const char *key, bool def)
{
	int type = dsl_get(L, t, key);
	bool v = def;
	if (type == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	else if (type != LUA_TNIL)
		config_raise(L, "%s: '%s' must be true or false (got %s)", what, key,
			     dsl_typename(L, -1));
	lua_pop(L, 1);
	return v;
}

long long dsl_opt_int(lua_State *L, int t, const char *what, const char *key, long long def,
		      long long min, long long max)
{
	int type = dsl_get(L, t, key);
	long long v = def;
	if (type != LUA_TNIL) {
		int isint = 0;
		if (type == LUA_TNUMBER)
			v = lua_tointegerx(L, -1, &isint);
		if (!isint)
			config_raise(L, "%s: '%s' must be an integer (got %s)", what, key,
				     dsl_typename(L, -1));
		if (v < min || v > max)
			config_raise(L, "%s: '%s' must be between %lld and %lld (got %lld)", what,
				     key, min, max, v);
	}
	lua_pop(L, 1);
	return v;
}

/* Seconds: a number >= 0, at most a year. */
double dsl_opt_seconds(lua_State *L, int t, const char *what, const char *key, double def)
{
	int type = dsl_get(L, t, key);
	double v = def;
	if (type != LUA_TNIL) {
		if (type != LUA_TNUMBER)
			config_raise(L, "%s: '%s' must be a number of seconds (got %s)", what, key,
				     dsl_typename(L, -1));
		v = (double)lua_tonumber(L, -1);
		if (!(v >= 0 && v <= 366.0 * 86400))
			config_raise(L, "%s: '%s' must be between 0 and 31622400 seconds", what,
				     key);
	}
	lua_pop(L, 1);
	return v;
}

/* The value at idx must be a sequence 1..n with nothing else; returns n. */
size_t dsl_check_list(lua_State *L, int idx, const char *what, const char *key, const char *of)
{
	idx = lua_absindex(L, idx);
	if (lua_type(L, idx) != LUA_TTABLE)
		config_raise(L, "%s: '%s' must be a list of %s (got %s)", what, key, of,
			     dsl_typename(L, idx));
	lua_Unsigned n = lua_rawlen(L, idx);
	lua_Unsigned count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		int isint = 0;
		lua_Integer k = lua_tointegerx(L, -1, &isint);
		if (lua_type(L, -1) != LUA_TNUMBER || !isint || k < 1 || (lua_Unsigned)k > n)
			config_raise(L, "%s: '%s' must be a list of %s (it has other keys)", what,
				     key, of);
		count++;
	}
	if (count != n)
		config_raise(L, "%s: '%s' must be a list of %s (it has holes)", what, key, of);
	return (size_t)n;
}

static int dsl_name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A list of names, no repeats; pushes nothing.  Returns n (may be 0).
 * Repeats are found by sorting pointers to the names (held by the list)
 * in a userdata: 8 bytes a name, where a table of them took 30 to 45 and
 * 100,000 builders in a force scheduler's list were 4 MB of the cap. */
size_t dsl_check_name_list(lua_State *L, int idx, const char *what, const char *key)
{
	idx = lua_absindex(L, idx);
	size_t n = dsl_check_list(L, idx, what, key, "names");
	const char **v = lua_newuserdatauv(L, (n ? n : 1) * sizeof(*v), 0);
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, (lua_Integer)i);
		size_t len;
		const char *s = dsl_check_string(L, -1, what, key, &len);
		dsl_check_name(L, what, key, s, len);
		v[i - 1] = s; /* the list keeps the string alive */
		lua_pop(L, 1);
	}
	qsort(v, n, sizeof(*v), dsl_name_cmp);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(v[i - 1], v[i]))
			config_raise(L, "%s: '%s' lists '%.60s' twice", what, key, v[i]);
	lua_pop(L, 1);
	return n;
}

/* A charged, NULL-terminated, empty vector for n strings. */
char **dsl_new_strv(lua_State *L, size_t n)
{
	config_charge(L, (n + 1) * sizeof(char *));
	return xcalloc(n + 1, sizeof(char *));
}

/* Copies the (checked) list at idx into v, counting each copy in *ret_n. */
void dsl_fill_list(lua_State *L, int idx, char **v, size_t *ret_n, size_t n)
{
	idx = lua_absindex(L, idx);
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(L, idx, (lua_Integer)(i + 1));
		size_t len;
		const char *s = lua_tolstring(L, -1, &len);
		v[i] = config_strdup(L, s, len);
		*ret_n = i + 1; /* counted as soon as owned: a raise frees what exists */
		lua_pop(L, 1);
	}
}

/* Raises if name is already in the registry table reg (name -> line). */
void dsl_check_unique(lua_State *L, const char *reg, const char *kind, const char *name)
{
	lua_getfield(L, LUA_REGISTRYINDEX, reg);
	if (lua_getfield(L, -1, name) != LUA_TNIL) {
		int prev = (int)lua_tointeger(L, -1);
		config_raise(L, "%s '%s' is already declared at line %d", kind, name, prev);
	}
	lua_pop(L, 2);
}

/* Records name once it is in cfg: a declaration that failed inside pcall()
 * must not satisfy later references. */
void dsl_register(lua_State *L, const char *reg, const char *name, int line)
{
	lua_getfield(L, LUA_REGISTRYINDEX, reg);
	lua_pushinteger(L, line);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
}

bool dsl_registered(lua_State *L, const char *reg, const char *name)
{
	lua_getfield(L, LUA_REGISTRYINDEX, reg);
	bool found = lua_getfield(L, -1, name) != LUA_TNIL;
	lua_pop(L, 2);
	return found;
}

void dsl_check_table_arg(lua_State *L, const char *decl)
{
	if (config_ctx_of(L)->loaded)
		config_raise(L, "%s: declarations are only allowed while master.lua loads", decl);
	if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TTABLE)
		config_raise(L, "%s: expected one table: %s { name = ..., ... }", decl, decl);
}

/* "worker 'w1'" when the name is usable, else just "worker". */
void dsl_what(lua_State *L, char *what, size_t size, const char *decl, const char *name)
{
	if (dsl_get(L, 1, "name") == LUA_TSTRING && !name)
		name = lua_tostring(L, -1);
	lua_pop(L, 1);
	if (name && strlen(name) <= KILN_MAX_NAME)
		snprintf(what, size, "%s '%s'", decl, name);
	else
		snprintf(what, size, "%s", decl);
}

void dsl_new_type(lua_State *L, const char *mt, const char *name, lua_CFunction gc,
		  lua_CFunction tostring)
{
	luaL_newmetatable(L, mt);
	lua_pushstring(L, name); /* the type name in Lua's own messages */
	lua_setfield(L, -2, "__name");
	if (gc) {
		lua_pushcfunction(L, gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pushcfunction(L, tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable"); /* getmetatable() cannot reach the value */
}
