/*
 * apply_patch { }: the step that applies a try build's patch
 * (steps/step-patch.c runs it).
 */
#include "config/config-internal.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <string.h>

/* apply_patch { workdir = "build", tool = "patch" | "git" }: applies the
 * build's try patch there (a no-op, SKIPPED, in builds without one). */
int config_step_patch(lua_State *L)
{
	static const char *const keys[] = {"name",       "workdir",         "tool",
					   "always_run", DSL_STEP_OPT_KEYS, NULL};
	int line = config_line(L);
	char what[256];
	if (lua_gettop(L) == 0)
		lua_newtable(L);
	dsl_check_table_arg(L, "apply_patch");
	dsl_what(L, what, sizeof(what), "apply_patch", NULL);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_opt_name(L, 1, what, "name");
	size_t wlen = 0;
	const char *workdir = dsl_opt_string(L, 1, what, "workdir", &wlen);
	if (workdir)
		dsl_check_relpath(L, what, "workdir", workdir, wlen);
	const char *tool = dsl_opt_string(L, 1, what, "tool", NULL);
	if (tool && strcmp(tool, "patch") && strcmp(tool, "git"))
		config_raise(L, "%s: 'tool' must be \"patch\" or \"git\" (got '%.40s')", what,
			     tool);
	bool always = dsl_opt_bool(L, 1, what, "always_run", false);
	struct config_step *step = lua_newuserdatauv(L, sizeof(*step), 1 /* fp (config-fp.c) */);
	*step = (struct config_step){
		.kind = CONFIG_STEP_PATCH,
		.halt_on_failure = true,
		.flunk_on_failure = true,
		.always_run = always,
		.patch_with_git = tool && !strcmp(tool, "git"),
		.timeout = 1200,
		.line = line,
	};
	luaL_setmetatable(L, MT_STEP);
	int ud = lua_gettop(L);
	step->name = config_strdup(L, name ? name : "patch", strlen(name ? name : "patch"));
	step->workdir = config_strdup(L, workdir ? workdir : "build", workdir ? wlen : 5);
	lua_settop(L, ud);
	return 1;
}
