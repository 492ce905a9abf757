/*
 * Slice "measure" of the step library, config side: tree_size { } (Buildbot's
 * TreeSize), deb_build { } (dpkg-buildpackage) and deb_lintian { } (Buildbot's
 * DebLintian).  Each is a command step whose command this file writes from
 * its own keys, so the rest (env, timeouts, locks, numbers...) is shell's;
 * steps/step-treesize.c and steps/step-deb.c run them.
 */
#include "config/config-internal.h"
#include "common/buf.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <string.h>

/* Replaces the declaration's table (index 1) by a copy whose 'command' is
 * the value at the top of the stack (popped), so that
 * config_step_command_new() reads it; master.lua's table is left alone. */
static void config_measure_set_command(lua_State *L)
{
	int cmd = lua_gettop(L);
	lua_newtable(L);
	int t = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, t);
	}
	lua_pushvalue(L, cmd);
	lua_setfield(L, t, "command");
	lua_replace(L, 1);
	lua_settop(L, cmd - 1);
}

/* A key this kind writes itself must not come from master.lua. */
static void config_measure_refuse(lua_State *L, const char *decl, const char *key)
{
	if (dsl_get(L, 1, key) != LUA_TNIL)
		config_raise(L, "%s: '%s' is not a key of %s", decl, key, decl);
	lua_pop(L, 1);
}

/* A list of at most KILN_DEB_MAX_ARGS strings at t[key] pushed as a new
 * list after prefix[0..nprefix), or NULL when t[key] is nil: pushes nothing
 * and returns false. */
static bool config_measure_argv(lua_State *L, const char *what, const char *key,
				const char *const *prefix, size_t nprefix)
{
	if (dsl_get(L, 1, key) == LUA_TNIL) {
		lua_pop(L, 1);
		return false;
	}
	int l = lua_gettop(L);
	size_t n = dsl_check_list(L, l, what, key, "strings");
	if (n > KILN_DEB_MAX_ARGS)
		config_raise(L, "%s: '%s' has over %u entries", what, key,
			     (unsigned)KILN_DEB_MAX_ARGS);
	lua_createtable(L, (int)(n + nprefix), 0);
	for (size_t i = 0; i < nprefix; i++) {
		lua_pushstring(L, prefix[i]);
		lua_rawseti(L, -2, (lua_Integer)(i + 1));
	}
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, l, (lua_Integer)i);
		size_t len;
		const char *s = dsl_check_string(L, -1, what, key, &len);
		if (strlen(s) != len)
			config_raise(L, "%s: '%s' must not contain NUL bytes", what, key);
		lua_rawseti(L, -2, (lua_Integer)(nprefix + i));
	}
	lua_remove(L, l);
	return true;
}

/* The step's name when master.lua gives none. */
static void config_measure_name(lua_State *L, bool named, struct config_step *step, const char *def)
{
	if (named)
		return;
	free(step->name);
	step->name = NULL;
	step->name = config_strdup(L, def, strlen(def));
}

static bool config_measure_named(lua_State *L)
{
	bool named = dsl_get(L, 1, "name") != LUA_TNIL;
	lua_pop(L, 1);
	return named;
}

/* tree_size { dir = "." }: du -s -k DIR in the workdir. */
int config_step_tree_size(lua_State *L)
{
	static const char *const extra[] = {"dir", NULL};
	dsl_check_table_arg(L, "tree_size");
	config_measure_refuse(L, "tree_size", "command");
	bool named = config_measure_named(L);
	size_t len;
	const char *dir = dsl_opt_string(L, 1, "tree_size", "dir", &len);
	if (!dir)
		dir = ".";
	else
		dsl_check_relpath(L, "tree_size", "dir", dir, len);
	lua_createtable(L, 4, 0);
	const char *argv[] = {"du", "-s", "-k", dir};
	for (size_t i = 0; i < ARRAY_SIZE(argv); i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, (lua_Integer)(i + 1));
	}
	config_measure_set_command(L);
	struct config_step *step =
		config_step_command_new(L, "tree_size", CONFIG_STEP_TREE_SIZE, extra);
	config_measure_name(L, named, step, "treesize"); /* Buildbot's name */
	return 1;
}

/* deb_build { args = { ... } } or { command = ... }: dpkg-buildpackage. */
int config_step_deb_build(lua_State *L)
{
	static const char *const extra[] = {"args", NULL};
	static const char *const prog[] = {"dpkg-buildpackage"};
	dsl_check_table_arg(L, "deb_build");
	bool named = config_measure_named(L);
	bool command = dsl_get(L, 1, "command") != LUA_TNIL;
	lua_pop(L, 1);
	if (config_measure_argv(L, "deb_build", "args", prog, 1)) {
		if (command)
			config_raise(L, "deb_build: give 'command' or 'args', not both");
		config_measure_set_command(L);
	} else if (!command) {
		static const char *const def[] = {"dpkg-buildpackage", "-us", "-uc", "-b"};
		lua_createtable(L, 4, 0);
		for (size_t i = 0; i < ARRAY_SIZE(def); i++) {
			lua_pushstring(L, def[i]);
			lua_rawseti(L, -2, (lua_Integer)(i + 1));
		}
		config_measure_set_command(L);
	}
	struct config_step *step =
		config_step_command_new(L, "deb_build", CONFIG_STEP_DEB_BUILD, extra);
	config_measure_name(L, named, step, "dpkg-buildpackage");
	return 1;
}

/* A lintian tag name: what lintian's tags are made of. */
static bool config_measure_tag_ok(const char *s, size_t len)
{
	if (len == 0 || len > 128)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '+' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

/* s for /bin/sh: quoted, but its glob characters (star, ? and brackets)
 * left to the shell, so that a glob names the files it matches. */
static int config_measure_quote_glob(struct buf *b, const char *s)
{
	int r = 0;
	bool open = false;
	for (const char *p = s; *p && r >= 0; p++) {
		bool glob = strchr("*?[]", *p) != NULL;
		if (glob == open) /* a glob character ends a quoted run, text starts one */
			r = buf_addch(b, '\'');
		open = !glob;
		if (r >= 0 && *p == '\'')
			r = buf_adds(b, "'\\''");
		else if (r >= 0)
			r = buf_addch(b, *p);
	}
	if (r >= 0 && open)
		r = buf_addch(b, '\'');
	return r;
}

/* deb_lintian { fileloc = GLOB, suppress_tags = { ... } }:
 * lintian -v FILELOC --suppress-tags TAG ..., as Buildbot's DebLintian. */
int config_step_deb_lintian(lua_State *L)
{
	static const char *const extra[] = {"fileloc", "suppress_tags", NULL};
	const char *what = "deb_lintian";
	dsl_check_table_arg(L, what);
	config_measure_refuse(L, what, "command");
	bool named = config_measure_named(L);
	size_t len;
	const char *fileloc = dsl_opt_string(L, 1, what, "fileloc", &len);
	if (!fileloc)
		fileloc = "../*.changes";
	else if (len == 0 || strlen(fileloc) != len || strpbrk(fileloc, "\n\r"))
		config_raise(L, "%s: 'fileloc' must be a path or a glob on one line", what);
	/* checked before the command's buffer exists: a raise would leak it */
	size_t ntags = 0;
	lua_settop(L, 1);
	if (dsl_get(L, 1, "suppress_tags") != LUA_TNIL) {
		ntags = dsl_check_list(L, 2, what, "suppress_tags", "strings");
		if (ntags > KILN_DEB_MAX_ARGS)
			config_raise(L, "%s: 'suppress_tags' has over %u entries", what,
				     (unsigned)KILN_DEB_MAX_ARGS);
		for (size_t i = 1; i <= ntags; i++) {
			lua_rawgeti(L, 2, (lua_Integer)i);
			const char *tag =
				lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
			if (!tag || !config_measure_tag_ok(tag, len))
				config_raise(L, "%s: suppress_tags[%zu] must be a lintian tag name",
					     what, i);
			lua_pop(L, 1);
		}
	}
	struct buf cmd;
	buf_init(&cmd, 1u << 16);
	int r = buf_adds(&cmd, "lintian -v ");
	if (r >= 0)
		r = config_measure_quote_glob(&cmd, fileloc);
	for (size_t i = 1; i <= ntags && r >= 0; i++) {
		lua_rawgeti(L, 2, (lua_Integer)i);
		r = buf_addf(&cmd, " --suppress-tags '%s'", lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_settop(L, 1);
	if (r < 0) {
		buf_release(&cmd);
		config_raise(L, "%s: the command is too long", what);
	}
	lua_pushlstring(L, cmd.ptr, cmd.len);
	buf_release(&cmd);
	/* Buildbot's DebLintian: lintian's complaints warn the build, never fail it */
	bool flunk = dsl_get(L, 1, "flunk_on_failure") != LUA_TNIL;
	bool warn = dsl_get(L, 1, "warn_on_failure") != LUA_TNIL;
	lua_pop(L, 2);
	config_measure_set_command(L);
	struct config_step *step = config_step_command_new(L, what, CONFIG_STEP_DEB_LINTIAN, extra);
	if (!flunk)
		step->flunk_on_failure = false;
	if (!warn)
		step->warn_on_failure = true;
	config_measure_name(L, named, step, "lintian");
	return 1;
}
