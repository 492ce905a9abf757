/*
 * shell { }: a build step as an opaque userdata master.lua can keep in a
 * local and list in several builders; builder { } copies it into the
 * builder's struct config_step (config_step_copy).  The result flags every
 * step kind shares are read here too (dsl_step_flags).
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

#define DSL_STEP_NAME_LEN 50

/* ---- shell { } ----------------------------------------------------------- */

static int config_step_gc(lua_State *L)
{
	config_step_release(lua_touserdata(L, 1));
	return 0;
}

static int config_step_tostring(lua_State *L)
{
	struct config_step *s = lua_touserdata(L, 1);
	lua_pushfstring(L, "shell{name=\"%s\"}", s->name ? s->name : "?");
	return 1;
}

/* Buildbot-like: the command's first words, shortened, '/' made '_'. */
static char *config_step_default_name(lua_State *L, const struct config_step *s)
{
	char name[DSL_STEP_NAME_LEN + 8] = "";
	size_t len = 0;
	int words = 0;
	const char *text = s->command;
	char *const *argv = s->argv;
	while (words < 3 && len < DSL_STEP_NAME_LEN) {
		const char *w;
		size_t wlen;
		if (argv) {
			if (!*argv)
				break;
			w = *argv++;
			wlen = strlen(w);
		} else {
			text += strspn(text, " \t\r\n\v\f");
			if (!*text)
				break;
			w = text;
			wlen = strcspn(text, " \t\r\n\v\f");
			text += wlen;
		}
		if (wlen == 0)
			continue;
		if (words ==
		    0) { /* "/usr/bin/make" and "./configure" read better as their basename */
			const char *slash = memrchr(w, '/', wlen);
			if (slash && (size_t)(slash - w) + 1 < wlen) {
				wlen -= (size_t)(slash - w) + 1;
				w = slash + 1;
			}
		}
		if (words++)
			name[len++] = ' ';
		for (size_t i = 0; i < wlen && len < DSL_STEP_NAME_LEN; i++) {
			unsigned char c = (unsigned char)w[i];
			name[len++] = c == '/' || c < 0x20 || c == 0x7f ? '_' : (char)c;
		}
	}
	/* do not end inside a UTF-8 sequence */
	if (len > 0) {
		size_t lead = len - 1;
		while (lead > 0 && ((unsigned char)name[lead] & 0xc0) == 0x80)
			lead--;
		unsigned char c = (unsigned char)name[lead];
		size_t need = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (lead + need > len)
			len = lead;
	}
	while (len > 0 && name[len - 1] == ' ')
		len--;
	if (len == 0)
		return config_strdup(L, "shell", 5);
	return config_strdup(L, name, len);
}

static int config_step_env_cmp(const void *a, const void *b)
{
	return strcmp(((const struct config_env *)a)->name, ((const struct config_env *)b)->name);
}

static void config_step_shell_env(lua_State *L, const char *what, struct config_step *step)
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

static void config_step_shell_command(lua_State *L, const char *what, struct config_step *step)
{
	int type = dsl_get(L, 1, "command");
	int t = lua_gettop(L);
	if (type == LUA_TNIL)
		config_raise(L, "%s: 'command' is required", what);
	if (type == LUA_TSTRING) {
		size_t len;
		const char *s = dsl_check_string(L, t, what, "command", &len);
		if (strspn(s, " \t\r\n\v\f") == len)
			config_raise(L, "%s: 'command' must not be empty", what);
		step->command = config_strdup(L, s, len);
	} else if (type == LUA_TTABLE) {
		size_t n = dsl_check_list(L, t, what, "command", "strings");
		if (n == 0)
			config_raise(L, "%s: 'command' must not be empty", what);
		for (size_t i = 1; i <= n; i++) {
			int et = lua_rawgeti(L, t, (lua_Integer)i);
			size_t len = 1;
			if (et != LUA_TNUMBER)
				dsl_check_string(L, -1, what, "command", &len);
			if (i == 1 && len == 0)
				config_raise(L, "%s: 'command' must not start with an empty word",
					     what);
			lua_pop(L, 1);
		}
		config_charge(L, (n + 1) * sizeof(char *));
		step->argv = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++) {
			lua_rawgeti(L, t, (lua_Integer)(i + 1));
			lua_pushvalue(L, -1); /* numbers: convert a copy, not the user's table */
			size_t len;
			const char *s = lua_tolstring(L, -1, &len);
			step->argv[i] = config_strdup(L, s, len);
			lua_pop(L, 2);
		}
	} else
		config_raise(L, "%s: 'command' must be a string or a list of strings (got %s)",
			     what, dsl_typename(L, t));
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

static int config_step_shell(lua_State *L)
{
	static const char *const keys[] = {
		"name",     "command",          "env",   "workdir", "timeout",
		"max_time", DSL_STEP_FLAG_KEYS, "locks", NULL};
	int line = config_line(L);
	char what[256];

	dsl_check_table_arg(L, "shell");
	dsl_what(L, what, sizeof(what), "shell", NULL);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_opt_name(L, 1, what, "name");
	size_t wlen;
	const char *workdir = dsl_opt_string(L, 1, what, "workdir", &wlen);
	if (workdir)
		dsl_check_relpath(L, what, "workdir", workdir, wlen);
	double timeout = dsl_opt_seconds(L, 1, what, "timeout", 1200);
	double max_time = dsl_opt_seconds(L, 1, what, "max_time", 0);
	struct config_step flags = dsl_step_flags(L, what);

	/* the userdata owns the step from here: a raise frees it with __gc */
	struct config_step *step = lua_newuserdatauv(L, sizeof(*step), 0);
	*step = flags;
	step->kind = CONFIG_STEP_SHELL;
	step->timeout = timeout;
	step->max_time = max_time;
	step->line = line;
	luaL_setmetatable(L, MT_STEP);
	int ud = lua_gettop(L);

	lua_settop(L, ud);
	config_step_shell_command(L, what, step);
	config_step_shell_env(L, what, step);
	config_lock_step(L, what, step); /* locks = { ... } (config-lock.c) */
	step->workdir = config_strdup(L, workdir ? workdir : "build", workdir ? wlen : 5);
	step->name =
		name ? config_strdup(L, name, strlen(name)) : config_step_default_name(L, step);
	lua_settop(L, ud);
	return 1;
}

/* Deep-copies a step declared with shell { } (or a scheduler step) into a builder. */
void config_step_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	*dst = *src;
	dst->name = dst->command = dst->workdir = NULL;
	dst->argv = NULL;
	dst->env = NULL;
	dst->nenv = 0;
	config_lock_step_copy(L, dst, src);  /* locks (config-lock.c) */
	config_sched_step_copy(L, dst, src); /* trigger fields (config-sched.c) */
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
	free(s->locks); /* config-lock.c */
	config_sched_step_release(s);
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
	lua_register(L, "shell", config_step_shell);
}
