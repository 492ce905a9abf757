/*
 * shell { command, env, workdir, timeout, max_time }: one command on the
 * worker (steps/step-shell.c runs it).
 */
#include "config/config-internal.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <string.h>

#define DSL_STEP_NAME_LEN 50

/* Buildbot-like: the command's first words, shortened, '/' made '_'. */
static char *config_step_shell_default_name(lua_State *L, const struct config_step *s)
{
	char name[DSL_STEP_NAME_LEN + 8] = "";
	size_t len = 0;
	int words = 0;
	const char *text = s->command.text ? s->command.text : "";
	size_t arg = 0;
	while (words < 3 && len < DSL_STEP_NAME_LEN) {
		const char *w;
		size_t wlen;
		if (s->argv) {
			/* a function element has no words yet: the name stops there */
			if (arg >= s->nargv || !s->argv[arg].text)
				break;
			w = s->argv[arg++].text;
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

/* command: a string, a list of strings, numbers and functions, or a
 * function returning either when the step starts. */
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
		config_read_rstr(L, t, what, "command", &step->command);
	} else if (type == LUA_TFUNCTION || luaL_testudata(L, t, MT_INTERP)) {
		config_read_rstr(L, t, what, "command", &step->command);
	} else if (type == LUA_TTABLE) {
		size_t n = dsl_check_list(L, t, what, "command", "strings");
		if (n == 0)
			config_raise(L, "%s: 'command' must not be empty", what);
		for (size_t i = 1; i <= n; i++) {
			int et = lua_rawgeti(L, t, (lua_Integer)i);
			size_t len = 1;
			if (et != LUA_TNUMBER && et != LUA_TFUNCTION &&
			    !luaL_testudata(L, -1, MT_INTERP))
				dsl_check_string(L, -1, what, "command", &len);
			if (i == 1 && len == 0)
				config_raise(L, "%s: 'command' must not start with an empty word",
					     what);
			lua_pop(L, 1);
		}
		config_charge(L, n * sizeof(*step->argv));
		step->argv = xcalloc(n, sizeof(*step->argv));
		for (size_t i = 0; i < n; i++) {
			lua_rawgeti(L, t, (lua_Integer)(i + 1));
			config_read_rstr(L, lua_gettop(L), what, "command", &step->argv[i]);
			step->nargv = i + 1;
			lua_pop(L, 1);
		}
	} else
		config_raise(
			L,
			"%s: 'command' must be a string, a list of strings, interpolate(...) or a "
			"function (got %s)",
			what, dsl_typename(L, t));
	lua_pop(L, 1);
}

struct config_step *config_step_command_new(lua_State *L, const char *decl,
					    enum config_step_kind kind,
					    const char *const *extra_keys)
{
	static const char *const keys[] = {
		"name",     "command",          "env",   "workdir",   "timeout",
		"max_time", DSL_STEP_FLAG_KEYS, "locks", "decode_rc", "retry"};
	const char *all[ARRAY_SIZE(keys) + 16];
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		all[n++] = keys[i];
	for (size_t i = 0; extra_keys && extra_keys[i] && n + 1 < ARRAY_SIZE(all); i++)
		all[n++] = extra_keys[i];
	all[n] = NULL;
	int line = config_line(L);
	char what[256];

	dsl_check_table_arg(L, decl);
	dsl_what(L, what, sizeof(what), decl, NULL);
	dsl_check_keys(L, 1, what, all);
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
	step->kind = kind;
	step->timeout = timeout;
	step->max_time = max_time;
	step->line = line;
	luaL_setmetatable(L, MT_STEP);
	int ud = lua_gettop(L);

	lua_settop(L, ud);
	config_step_shell_command(L, what, step);
	config_step_env(L, what, step);
	config_lock_step(L, what, step); /* locks = { ... } (config-lock.c) */
	step->workdir = config_strdup(L, workdir ? workdir : "build", workdir ? wlen : 5);
	step->name = name ? config_strdup(L, name, strlen(name))
			  : config_step_shell_default_name(L, step);
	lua_settop(L, ud);
	return step;
}

int config_step_shell(lua_State *L)
{
	config_step_command_new(L, "shell", CONFIG_STEP_SHELL, NULL);
	return 1;
}
