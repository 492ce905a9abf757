/*
 * The master's calls into master.lua at run time: change filters (values,
 * Lua patterns, functions), file_is_important and collapse_requests
 * functions.  Each runs in the Lua state kept after loading (cfg->lua)
 * under its own budget (config_lua_run); one thread at a time, see
 * config.h.  What they are handed is capped (KILN_LUA_MAX_*).
 */
#include "config/config-internal.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <fnmatch.h>
#include <lauxlib.h>
#include <stdbool.h>
#include <string.h>

/* Pushes s (NULL: nil) cut to KILN_LUA_MAX_TEXT bytes at a UTF-8
 * character boundary, so no filter works on more than that; sets *cut
 * when it was cut. */
static void config_runtime_push_text(lua_State *L, const char *s, bool *cut)
{
	if (!s) {
		lua_pushnil(L);
		return;
	}
	size_t len = strnlen(s, KILN_LUA_MAX_TEXT + 1);
	if (len > KILN_LUA_MAX_TEXT) {
		len = KILN_LUA_MAX_TEXT;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
		*cut = true;
	}
	lua_pushlstring(L, s, len);
}

static void config_runtime_push_str(lua_State *L, const char *key, const char *v, bool *cut)
{
	config_runtime_push_text(L, v, cut);
	lua_setfield(L, -2, key);
}

/* The change table a filter_fn or file_is_important function gets: each
 * string cut at KILN_LUA_MAX_TEXT, files cut at KILN_LUA_MAX_FILES names
 * or KILN_LUA_MAX_FILES_BYTES bytes, and truncated = true when anything
 * was (docs/CONFIG.md). */
static void config_runtime_push_change(lua_State *L, const struct config_change_view *c)
{
	bool cut = false;
	lua_createtable(L, 0, 12);
	config_runtime_push_str(L, "branch", c->branch, &cut);
	config_runtime_push_str(L, "project", c->project, &cut);
	config_runtime_push_str(L, "repository", c->repository, &cut);
	config_runtime_push_str(L, "category", c->category, &cut);
	config_runtime_push_str(L, "codebase", c->codebase, &cut);
	config_runtime_push_str(L, "revision", c->revision, &cut);
	config_runtime_push_str(L, "author", c->author, &cut);
	config_runtime_push_str(L, "who", c->author, &cut);
	config_runtime_push_str(L, "comments", c->comments, &cut);
	size_t n = c->nfiles < KILN_LUA_MAX_FILES ? c->nfiles : KILN_LUA_MAX_FILES;
	if (n < c->nfiles)
		cut = true;
	lua_createtable(L, (int)n, 0);
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = strnlen(c->files[i], KILN_LUA_MAX_FILES_BYTES + 1);
		if (len > KILN_LUA_MAX_FILES_BYTES - bytes) {
			cut = true; /* a name is never cut: the rest is left out */
			break;
		}
		bytes += len;
		lua_pushlstring(L, c->files[i], len);
		lua_rawseti(L, -2, (lua_Integer)(i + 1));
	}
	lua_setfield(L, -2, "files");
	lua_pushboolean(L, cut);
	lua_setfield(L, -2, "truncated");
}

enum config_runtime_call_kind {
	CALL_VALUE_FN,
	CALL_PATTERN,
	CALL_CHANGE_FN,
	CALL_COLLAPSE,
	CALL_CHANGE_TEXT /* a function of the change returning a string or nil (codebase_generator)
			  */
};

struct config_runtime_call {
	enum config_runtime_call_kind kind;
	int fn;
	const char *value; /* CALL_VALUE_FN, CALL_PATTERN */
	const char *pattern;
	const struct config_change_view *change;
	const char *builder;
	const struct config_request_view *older, *newer;
	bool result;
	char *text;           /* CALL_CHANGE_TEXT: the string returned (owned), NULL for nil */
	const char *bad_type; /* CALL_CHANGE_TEXT: the type returned when not a string or nil */
};

static void config_runtime_push_request(lua_State *L, const struct config_request_view *r)
{
	bool cut = false;
	lua_createtable(L, 0, 6);
	lua_pushinteger(L, r->buildrequestid);
	lua_setfield(L, -2, "buildrequestid");
	config_runtime_push_str(L, "branch", r->branch, &cut);
	config_runtime_push_str(L, "revision", r->revision, &cut);
	config_runtime_push_str(L, "repository", r->repository, &cut);
	config_runtime_push_str(L, "project", r->project, &cut);
	config_runtime_push_str(L, "codebase", r->codebase, &cut);
}

static int config_runtime_call_main(lua_State *L)
{
	struct config_runtime_call *c = lua_touserdata(L, 1);
	lua_settop(L, 0);
	bool cut = false;
	if (c->kind == CALL_PATTERN) {
		/* the sandbox's string.find: its steps are charged (config-pattern.c) */
		lua_getfield(L, LUA_REGISTRYINDEX, REG_FIND);
		config_runtime_push_text(L, c->value ? c->value : "", &cut);
		lua_pushstring(L, c->pattern);
		lua_call(L, 2, 1);
	} else {
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->fn);
		int nargs = 1;
		if (c->kind == CALL_VALUE_FN) {
			config_runtime_push_text(L, c->value, &cut);
		} else if (c->kind == CALL_CHANGE_FN || c->kind == CALL_CHANGE_TEXT) {
			config_runtime_push_change(L, c->change);
		} else {
			lua_pushstring(L, c->builder);
			config_runtime_push_request(L, c->older);
			config_runtime_push_request(L, c->newer);
			nargs = 3;
		}
		lua_call(L, nargs, 1);
	}
	if (c->kind == CALL_CHANGE_TEXT) {
		if (lua_type(L, -1) == LUA_TSTRING) {
			size_t len;
			const char *t = lua_tolstring(L, -1, &len);
			if (config_codebase_name_ok(t, len))
				c->text = xstrdup(t);
			else
				c->bad_type = "string too long or with control characters";
		} else if (!lua_isnil(L, -1))
			c->bad_type = luaL_typename(L, -1);
	}
	c->result = lua_toboolean(L, -1);
	return 0;
}

static int config_runtime_call(struct config *cfg, struct config_runtime_call *c, char **ret_err)
{
	if (!cfg->lua) {
		*ret_err = xstrdup("master.lua: no Lua state kept for functions");
		return KILN_ECONFIG;
	}
	int r = config_lua_run(cfg->lua, config_runtime_call_main, c, ret_err);
	if (r < 0)
		return r;
	return c->result ? 1 : 0;
}

static int config_runtime_match_field(struct config *cfg, const struct config_match *m,
				      const char *v, char **ret_err)
{
	if (m->values) {
		bool ok = false;
		for (size_t i = 0; i < m->nvalues && !ok; i++)
			ok = v && !strcmp(m->values[i], v);
		if (!ok)
			return 0;
	}
	if (m->pattern) {
		if (!v)
			return 0;
		struct config_runtime_call c = {
			.kind = CALL_PATTERN, .value = v, .pattern = m->pattern};
		int r = config_runtime_call(cfg, &c, ret_err);
		if (r <= 0)
			return r;
	}
	if (m->fn) {
		struct config_runtime_call c = {.kind = CALL_VALUE_FN, .fn = m->fn, .value = v};
		int r = config_runtime_call(cfg, &c, ret_err);
		if (r <= 0)
			return r;
	}
	return 1;
}

int config_filter_match(struct config *cfg, const struct config_change_filter *f,
			const struct config_change_view *c, char **ret_err)
{
	if (!f->set)
		return 1;
	int r;
	if ((r = config_runtime_match_field(cfg, &f->branch, c->branch, ret_err)) <= 0 ||
	    (r = config_runtime_match_field(cfg, &f->project, c->project, ret_err)) <= 0 ||
	    (r = config_runtime_match_field(cfg, &f->repository, c->repository, ret_err)) <= 0 ||
	    (r = config_runtime_match_field(cfg, &f->category, c->category, ret_err)) <= 0 ||
	    (r = config_runtime_match_field(cfg, &f->codebase, c->codebase, ret_err)) <= 0)
		return r;
	if (f->fn) {
		struct config_runtime_call call = {
			.kind = CALL_CHANGE_FN, .fn = f->fn, .change = c};
		return config_runtime_call(cfg, &call, ret_err);
	}
	return 1;
}

int config_change_important(struct config *cfg, const struct config_scheduler *s,
			    const struct config_change_view *c, char **ret_err)
{
	if (s->important_fn) {
		struct config_runtime_call call = {
			.kind = CALL_CHANGE_FN, .fn = s->important_fn, .change = c};
		return config_runtime_call(cfg, &call, ret_err);
	}
	if (!s->important_globs)
		return 1;
	for (size_t i = 0; i < c->nfiles; i++)
		for (size_t k = 0; k < s->nimportant_globs; k++)
			if (fnmatch(s->important_globs[k], c->files[i], 0) == 0)
				return 1;
	return 0;
}

int config_call_collapse(struct config *cfg, int fn, const char *builder,
			 const struct config_request_view *older,
			 const struct config_request_view *newer, char **ret_err)
{
	struct config_runtime_call call = {.kind = CALL_COLLAPSE,
					   .fn = fn,
					   .builder = builder,
					   .older = older,
					   .newer = newer};
	return config_runtime_call(cfg, &call, ret_err);
}

int config_codebase_generate(struct config *cfg, const struct config_change_view *c, char **ret,
			     char **ret_err)
{
	const struct config_codebase_gen *g = cfg->codebase_gen;
	*ret = NULL;
	if (!g)
		return 0;
	if (!g->fn)
		return config_codebase_lookup(g, c->repository, ret);
	struct config_runtime_call call = {.kind = CALL_CHANGE_TEXT, .fn = g->fn, .change = c};
	int r = config_runtime_call(cfg, &call, ret_err);
	if (r < 0)
		return r;
	if (call.bad_type) {
		*ret_err = xasprintf("%s: codebase_generator must return a codebase name (a "
				     "string of at most %u bytes without control characters) or "
				     "nil (got %s)",
				     cfg->lua->chunkname, (unsigned)KILN_MAX_CODEBASE_NAME,
				     call.bad_type);
		return KILN_ECONFIG;
	}
	*ret = call.text;
	return call.text ? 1 : 0;
}
