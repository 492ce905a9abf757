/*
 * Build steps on the config side: every kind's declaration (shell { },
 * trigger { }, ...) makes an opaque userdata master.lua can keep in a local
 * and list in several builders; builder { } deep-copies it into the
 * builder's struct config_step (config_step_copy).  Each kind's declaration
 * lives in its own config-step-NAME.c and has one line in
 * config_step_decls[] here; the keys every kind shares (the result flags,
 * env) are read here too.
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

/* One line per kind of step: its declaration in master.lua, and how its
 * own fields are deep-copied into a builder and freed (NULL: it has none
 * beyond the common ones).  The master's side is steps/step.c's table. */
static const struct config_step_decl {
	const char *name;
	enum config_step_kind kind;
	lua_CFunction declare;
	void (*copy)(lua_State *L, struct config_step *dst, const struct config_step *src);
	void (*release)(struct config_step *s);
} config_step_decls[] = {
	{"shell", CONFIG_STEP_SHELL, config_step_shell, NULL, NULL},
	{"trigger", CONFIG_STEP_TRIGGER, config_step_trigger, config_step_trigger_copy,
	 config_step_trigger_release},
	{"apply_patch", CONFIG_STEP_PATCH, config_step_patch, NULL, NULL},
};

static const struct config_step_decl *config_step_decl_of(enum config_step_kind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_step_decls); i++)
		if (config_step_decls[i].kind == kind)
			return &config_step_decls[i];
	return NULL;
}

/* ---- the step userdata ---------------------------------------------------- */

static int config_step_gc(lua_State *L)
{
	config_step_release(lua_touserdata(L, 1));
	return 0;
}

static int config_step_tostring(lua_State *L)
{
	struct config_step *s = lua_touserdata(L, 1);
	const struct config_step_decl *d = config_step_decl_of(s->kind);
	lua_pushfstring(L, "%s{name=\"%s\"}", d ? d->name : "step", s->name ? s->name : "?");
	return 1;
}

static int config_step_env_cmp(const void *a, const void *b)
{
	return strcmp(((const struct config_env *)a)->name, ((const struct config_env *)b)->name);
}

void config_step_env(lua_State *L, const char *what, struct config_step *step)
{
	if (dsl_get(L, 1, "env") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int t = lua_gettop(L);
	if (lua_type(L, t) != LUA_TTABLE)
		config_raise(L, "%s: 'env' must be a table of NAME = value (got %s)", what,
			     dsl_typename(L, t));
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		n++;
	}
	config_charge(L, n * sizeof(struct config_env));
	step->env = xcalloc(n ? n : 1, sizeof(struct config_env));
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			config_raise(L, "%s: 'env' keys must be variable names (got %s)", what,
				     luaL_typename(L, -2));
		size_t klen;
		const char *k = lua_tolstring(L, -2, &klen);
		if (klen == 0 || strlen(k) != klen || strchr(k, '='))
			config_raise(L, "%s: env: '%.60s' is not a valid variable name", what, k);
		const char *v = NULL;
		size_t vlen = 0;
		struct dsl_secret *sec;
		switch (lua_type(L, -1)) {
		case LUA_TSTRING:
			v = lua_tolstring(L, -1, &vlen);
			if (strlen(v) != vlen)
				config_raise(L, "%s: env: '%.60s' must not contain NUL bytes", what,
					     k);
			break;
		case LUA_TNUMBER:
			lua_pushvalue(L, -1);
			v = lua_tolstring(L, -1, &vlen); /* converts the copy only */
			lua_replace(L, -2);
			break;
		case LUA_TBOOLEAN:
			if (!lua_toboolean(L, -1))
				break; /* false: unset on the worker */
				       /* fall through */
		default:
			sec = luaL_testudata(L, -1, MT_SECRET);
			if (!sec)
				config_raise(L,
					     "%s: env: '%.60s' must be a string, a number, "
					     "secret(...) or false to unset (got %s)",
					     what, k, dsl_typename(L, -1));
			v = sec->value;
			vlen = strlen(v);
		}
		struct config_env *e = &step->env[step->nenv++];
		e->name = config_strdup(L, k, klen);
		e->value = v ? config_strdup(L, v, vlen) : NULL;
		lua_pop(L, 1);
	}
	qsort(step->env, step->nenv, sizeof(*step->env), config_step_env_cmp);
	lua_pop(L, 1);
}

struct config_step dsl_step_flags(lua_State *L, const char *what)
{
	return (struct config_step){
		.halt_on_failure = dsl_opt_bool(L, 1, what, "halt_on_failure", false),
		.flunk_on_failure = dsl_opt_bool(L, 1, what, "flunk_on_failure", true),
		.warn_on_failure = dsl_opt_bool(L, 1, what, "warn_on_failure", false),
		.always_run = dsl_opt_bool(L, 1, what, "always_run", false),
	};
}

/* Deep-copies a step declared with shell { } (or a scheduler step) into a builder. */
void config_step_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	*dst = *src;
	dst->name = dst->command = dst->workdir = NULL;
	dst->argv = NULL;
	dst->env = NULL;
	dst->nenv = 0;
	const struct config_step_decl *d = config_step_decl_of(src->kind);
	if (d && d->copy)
		d->copy(L, dst, src);
	dst->name = config_strdup(L, src->name, strlen(src->name));
	dst->workdir = src->workdir ? config_strdup(L, src->workdir, strlen(src->workdir)) : NULL;
	if (src->command)
		dst->command = config_strdup(L, src->command, strlen(src->command));
	if (src->argv) {
		size_t n = 0;
		while (src->argv[n])
			n++;
		config_charge(L, (n + 1) * sizeof(char *));
		dst->argv = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			dst->argv[i] = config_strdup(L, src->argv[i], strlen(src->argv[i]));
	}
	if (src->nenv) {
		config_charge(L, src->nenv * sizeof(struct config_env));
		dst->env = xcalloc(src->nenv, sizeof(struct config_env));
		for (size_t i = 0; i < src->nenv; i++) {
			struct config_env *e = &dst->env[dst->nenv++];
			e->name = config_strdup(L, src->env[i].name, strlen(src->env[i].name));
			if (src->env[i].value)
				e->value = config_strdup(L, src->env[i].value,
							 strlen(src->env[i].value));
		}
	}
}

void config_step_release(struct config_step *s)
{
	free(s->name);
	if (s->argv)
		for (char **a = s->argv; *a; a++)
			free(*a);
	free(s->argv);
	free(s->command);
	for (size_t i = 0; i < s->nenv; i++) {
		free(s->env[i].name);
		free(s->env[i].value);
	}
	free(s->env);
	free(s->workdir);
	const struct config_step_decl *d = config_step_decl_of(s->kind);
	if (d && d->release)
		d->release(s);
	memset(s, 0, sizeof(*s));
}

void config_step_open(lua_State *L)
{
	luaL_newmetatable(L, MT_STEP);
	lua_pushliteral(L, "step");
	lua_setfield(L, -2, "__name");
	lua_pushcfunction(L, config_step_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, config_step_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
	for (size_t i = 0; i < ARRAY_SIZE(config_step_decls); i++)
		lua_register(L, config_step_decls[i].name, config_step_decls[i].declare);
}
