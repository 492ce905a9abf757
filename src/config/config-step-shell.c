/*
 * shell { command, env, workdir, timeout, max_time, logfiles, lazylogfiles }:
 * one command on the worker (steps/step-shell.c runs it); every command
 * kind starts from config_step_command_new() and shares these keys.
 */
#include "config/config-internal.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- logfiles (slice "logfiles") ---------------------------------------------------- */

/* A log's slug as the database makes it (db.c db_slugify): logs of one step
 * must differ in it. */
static void config_step_shell_slug(const char *name, char *out, size_t size)
{
	size_t i = 0;
	for (; name[i] && i + 1 < size; i++) {
		char c = name[i];
		bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '_' || c == '-';
		out[i] = keep ? c : '_';
	}
	out[i] = '\0';
}

/* A logfile's name: 1..KILN_MAX_LOGFILE_NAME bytes of letters, digits,
 * '.', '_', '-' and inner spaces. */
static void config_step_shell_logname(lua_State *L, const char *what, const char *s, size_t len)
{
	if (len == 0)
		config_raise(L, "%s: 'logfiles' names must not be empty", what);
	if (len > KILN_MAX_LOGFILE_NAME)
		config_raise(L, "%s: logfiles: the name '%.60s...' is longer than %d bytes", what,
			     s, KILN_MAX_LOGFILE_NAME);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
			  (c == ' ' && i > 0 && i + 1 < len);
		if (!ok)
			config_raise(L,
				     "%s: logfiles: the name '%.*s' may only hold letters, "
				     "digits, '.', '_', '-' and inner spaces",
				     what, (int)len, s);
	}
}

/* A logfile's path: relative to the workdir, never out of it. */
static void config_step_shell_logpath(lua_State *L, const char *what, const char *name,
				      const char *s, size_t len)
{
	char key[KILN_MAX_LOGFILE_NAME + 16];
	snprintf(key, sizeof(key), "logfiles.%s", name);
	enum str_relpath why = str_relpath_check(s, len, KILN_MAX_LOGFILE_PATH, true);
	if (why == STR_RELPATH_TOO_LONG)
		config_raise(L, "%s: '%s' is longer than %d bytes", what, key,
			     KILN_MAX_LOGFILE_PATH);
	if (why == STR_RELPATH_CONTROL)
		config_raise(L, "%s: '%s' must not contain control characters", what, key);
	dsl_check_relpath(L, what, key, s, len);
}

/* The path at idx into lf->filename: a plain path (checked now),
 * interpolate(...) or a function (checked once rendered). */
static void config_step_shell_logfile_path(lua_State *L, const char *what, const char *sub,
					   struct config_logfile *lf, int idx)
{
	char key[KILN_MAX_LOGFILE_NAME + 16];
	snprintf(key, sizeof(key), "logfiles.%s", lf->name);
	if (lua_type(L, idx) == LUA_TFUNCTION || luaL_testudata(L, idx, MT_INTERP)) {
		config_read_rstr(L, idx, what, key, &lf->filename);
		return;
	}
	if (lua_type(L, idx) != LUA_TSTRING)
		config_raise(
			L, "%s: 'filename' must be a path, interpolate(...) or a function (got %s)",
			sub, dsl_typename(L, idx));
	size_t flen;
	const char *file = lua_tolstring(L, idx, &flen);
	config_step_shell_logpath(L, what, lf->name, file, flen);
	lf->filename.text = config_strdup(L, file, flen);
}

/* One entry NAME = value (key at -2, value at -1) into lf. */
static void config_step_shell_logfile(lua_State *L, const char *what, struct config_logfile *lf)
{
	if (lua_type(L, -2) != LUA_TSTRING)
		config_raise(L, "%s: 'logfiles' keys must be log names (got %s)", what,
			     luaL_typename(L, -2));
	size_t nlen;
	const char *name = lua_tolstring(L, -2, &nlen);
	config_step_shell_logname(L, what, name, nlen);
	lf->name = config_strdup(L, name, nlen);
	int v = lua_gettop(L);
	char sub[320 + KILN_MAX_LOGFILE_NAME];
	snprintf(sub, sizeof(sub), "%s: logfiles.%s", what, lf->name);
	if (lua_type(L, v) == LUA_TSTRING || lua_type(L, v) == LUA_TFUNCTION ||
	    luaL_testudata(L, v, MT_INTERP)) {
		config_step_shell_logfile_path(L, what, sub, lf, v);
	} else if (lua_type(L, v) == LUA_TTABLE) {
		static const char *const keys[] = {"filename", "follow", NULL};
		dsl_check_keys(L, v, sub, keys);
		lf->follow = dsl_opt_bool(L, v, sub, "follow", false);
		dsl_get(L, v, "filename");
		config_step_shell_logfile_path(L, what, sub, lf, lua_gettop(L));
		lua_pop(L, 1);
	} else {
		config_raise(L,
			     "%s: 'logfiles.%s' must be a path, interpolate(...), a function or "
			     "{ filename = path, follow = bool } (got %s)",
			     what, lf->name, dsl_typename(L, v));
	}
}

static int config_step_shell_logfile_cmp(const void *a, const void *b)
{
	return strcmp(((const struct config_logfile *)a)->name,
		      ((const struct config_logfile *)b)->name);
}

/* logfiles = { NAME = path | { filename, follow } } and lazylogfiles of
 * the declaration at index 1; a path may be a renderable.  Names are plain
 * strings (not renderables);
 * no two may share a log slug, nor take the step's own logs' ("stdio";
 * "property changes" for set_property_from_command). */
static void config_step_shell_logfiles(lua_State *L, const char *what, struct config_step *step)
{
	step->lazylogfiles = dsl_opt_bool(L, 1, what, "lazylogfiles", false);
	if (dsl_get(L, 1, "logfiles") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int t = lua_gettop(L);
	if (lua_type(L, t) != LUA_TTABLE)
		config_raise(L, "%s: 'logfiles' must be a table of NAME = path (got %s)", what,
			     dsl_typename(L, t));
	_Static_assert(KILN_MAX_LOGFILES <= 65535, "config_step.nlogfiles is an unsigned short");
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (++n > KILN_MAX_LOGFILES)
			config_raise(L, "%s: 'logfiles' has more than %d entries", what,
				     KILN_MAX_LOGFILES);
	}
	config_charge(L, n * sizeof(*step->logfiles));
	step->logfiles = xcalloc(n ? n : 1, sizeof(*step->logfiles));
	lua_pushnil(L);
	while (lua_next(L, t)) {
		/* counted before it is filled: a raise frees what it holds */
		config_step_shell_logfile(L, what, &step->logfiles[step->nlogfiles++]);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	qsort(step->logfiles, step->nlogfiles, sizeof(*step->logfiles),
	      config_step_shell_logfile_cmp);
	const char *own[] = {"stdio",
			     step->kind == CONFIG_STEP_PROPCMD ? "property changes" : NULL};
	for (size_t i = 0; i < step->nlogfiles; i++) {
		char si[KILN_MAX_LOGFILE_NAME + 1], sj[KILN_MAX_LOGFILE_NAME + 1];
		config_step_shell_slug(step->logfiles[i].name, si, sizeof(si));
		for (size_t j = 0; j < ARRAY_SIZE(own); j++) {
			if (!own[j])
				continue;
			config_step_shell_slug(own[j], sj, sizeof(sj));
			if (!strcmp(si, sj))
				config_raise(L,
					     "%s: logfiles: '%s' is the name of the step's own log",
					     what, step->logfiles[i].name);
		}
		for (size_t j = 0; j < i; j++) {
			config_step_shell_slug(step->logfiles[j].name, sj, sizeof(sj));
			if (!strcmp(si, sj))
				config_raise(L,
					     "%s: logfiles: '%s' and '%s' would be the same log "
					     "('%s')",
					     what, step->logfiles[j].name, step->logfiles[i].name,
					     si);
		}
	}
}

void config_step_logfiles_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	dst->logfiles = NULL;
	dst->nlogfiles = 0;
	if (!src->nlogfiles)
		return;
	config_charge(L, src->nlogfiles * sizeof(*dst->logfiles));
	dst->logfiles = xcalloc(src->nlogfiles, sizeof(*dst->logfiles));
	for (size_t i = 0; i < src->nlogfiles; i++) {
		const struct config_logfile *s = &src->logfiles[i];
		struct config_logfile *d = &dst->logfiles[dst->nlogfiles++];
		d->follow = s->follow;
		d->name = config_strdup(L, s->name, strlen(s->name));
		config_rstr_copy(L, &d->filename, &s->filename);
	}
}

void config_step_logfiles_release(struct config_step *s)
{
	for (size_t i = 0; s->logfiles && i < s->nlogfiles; i++) {
		free(s->logfiles[i].name);
		free(s->logfiles[i].filename.text);
	}
	free(s->logfiles);
	s->logfiles = NULL;
	s->nlogfiles = 0;
}

/* ---- the declaration ------------------------------------------------------------------ */

struct config_step *config_step_command_new(lua_State *L, const char *decl,
					    enum config_step_kind kind,
					    const char *const *extra_keys)
{
	static const char *const keys[] = {
		"name",     "command",          "env",   "workdir",   "timeout",
		"max_time", DSL_STEP_FLAG_KEYS, "locks", "decode_rc", "retry"};
	/* files the worker tails: not for master_shell, which runs on the master */
	static const char *const worker_keys[] = {"logfiles", "lazylogfiles"};
	const char *all[ARRAY_SIZE(keys) + ARRAY_SIZE(worker_keys) + 16];
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		all[n++] = keys[i];
	for (size_t i = 0; kind != CONFIG_STEP_MASTERSHELL && i < ARRAY_SIZE(worker_keys); i++)
		all[n++] = worker_keys[i];
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
	struct config_step *step = lua_newuserdatauv(L, sizeof(*step), 1 /* fp (config-fp.c) */);
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
	config_step_shell_logfiles(L, what, step);
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
