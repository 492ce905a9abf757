/*
 * builder { }: a builder's workers, steps (copied from shell { } and the
 * scheduler steps), build directory and queue settings, checked and copied
 * into struct config_builder.  Worker names are resolved in
 * config_dsl_finish, once every worker is declared.
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

/* slice "dispatch": next_worker / next_build = function ... end (the table at 1) */
static int config_builder_fn(lua_State *L, const char *what, const char *key)
{
	int fn = 0;
	int t = dsl_get(L, 1, key);
	if (t == LUA_TFUNCTION)
		fn = config_ref_fn(L, lua_gettop(L));
	else if (t != LUA_TNIL)
		config_raise(L, "%s: '%s' must be a function (got %s)", what, key,
			     dsl_typename(L, -1));
	lua_pop(L, 1);
	return fn;
}

/* Whether the (checked) name list at idx is prev's worker list: builders
 * declared in a loop mostly name the same workers, and 100,000 copies of
 * a list of four names are 5 MB of the memory cap (docs/PERFORMANCE.md). */
static bool config_builder_same_list(lua_State *L, int idx, size_t n,
				     const struct config_builder *prev)
{
	if (prev->nworkers != n)
		return false;
	bool same = true;
	for (size_t i = 0; same && i < n; i++) {
		lua_rawgeti(L, idx, (lua_Integer)(i + 1));
		size_t len;
		const char *s = lua_tolstring(L, -1, &len);
		same = strlen(prev->workers[i]) == len && !memcmp(prev->workers[i], s, len);
		lua_pop(L, 1);
	}
	return same;
}

static int config_builder_declare(lua_State *L)
{
	// clang-format off
	static const char *const keys[] = {
		"name", "workers", "description", "tags", "builddir", "steps",
		"collapse_requests", "cancel_superseded", "properties", "env",
		"regression", "locks", "next_worker", "next_build", "retention", NULL,
	};
	// clang-format on
	struct config *cfg = config_ctx_of(L)->cfg;
	int line = config_line(L);
	char what[256];

	dsl_check_table_arg(L, "builder");
	dsl_what(L, what, sizeof(what), "builder", NULL);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_req_name(L, 1, what, "name");
	dsl_check_unique(L, REG_BUILDERS, "builder", name);

	if (dsl_get(L, 1, "workers") == LUA_TNIL)
		return config_raise(L, "%s: 'workers' is required: workers = { \"worker1\" }",
				    what);
	int workers = lua_gettop(L);
	size_t nworkers = dsl_check_name_list(L, workers, what, "workers");
	if (nworkers == 0)
		return config_raise(L, "%s: 'workers' must name at least one worker", what);

	size_t dlen = 0, blen = 0, ntags = 0, nsteps;
	const char *description = dsl_opt_string(L, 1, what, "description", &dlen);
	const char *builddir = dsl_opt_string(L, 1, what, "builddir", &blen);
	if (builddir)
		dsl_check_relpath(L, what, "builddir", builddir, blen);

	dsl_get(L, 1, "tags");
	int tags = lua_gettop(L);
	if (!lua_isnil(L, tags)) {
		ntags = dsl_check_list(L, tags, what, "tags", "strings");
		for (size_t i = 1; i <= ntags; i++) {
			lua_rawgeti(L, tags, (lua_Integer)i);
			size_t len;
			dsl_check_string(L, -1, what, "tags", &len);
			if (len == 0 || len > KILN_MAX_NAME)
				config_raise(L, "%s: tags must be 1 to %d bytes long", what,
					     KILN_MAX_NAME);
			lua_pop(L, 1);
		}
	}

	if (dsl_get(L, 1, "steps") == LUA_TNIL)
		return config_raise(L, "%s: 'steps' is required: steps = { shell { ... } }", what);
	int steps = lua_gettop(L);
	nsteps = dsl_check_list(L, steps, what, "steps", "steps");
	if (nsteps == 0)
		return config_raise(L, "%s: 'steps' must list at least one step", what);
	for (size_t i = 1; i <= nsteps; i++) {
		lua_rawgeti(L, steps, (lua_Integer)i);
		if (!luaL_testudata(L, -1, MT_STEP))
			config_raise(L,
				     "%s: steps[%zu] must be a step such as shell { ... } (got %s)",
				     what, i, dsl_typename(L, -1));
		lua_pop(L, 1);
	}

	/* checked: now copy; each piece is owned by cfg the moment it exists */
	config_charge(L, sizeof(struct config_builder));
	ARRAY_GROW(cfg->builder, cfg->nbuilders + 1, cfg->builder_alloc);
	struct config_builder *b = &cfg->builder[cfg->nbuilders++];
	*b = (struct config_builder){.line = line};
	b->name = config_strdup(L, name, strlen(name));
	if (description)
		b->description = config_strdup(L, description, dlen);
	b->builddir =
		builddir ? config_strdup(L, builddir, blen) : config_strdup(L, name, strlen(name));
	if (cfg->nbuilders > 1 && config_builder_same_list(L, workers, nworkers, b - 1)) {
		b->workers = b[-1].workers; /* config_free frees a run of them once */
		b->nworkers = nworkers;
	} else {
		b->workers = dsl_new_strv(L, nworkers);
		dsl_fill_list(L, workers, b->workers, &b->nworkers, nworkers);
	}
	b->tags = dsl_new_strv(L, ntags);
	dsl_fill_list(L, tags, b->tags, &b->ntags, ntags);
	config_charge(L, nsteps * sizeof(struct config_step));
	b->steps = xcalloc(nsteps, sizeof(struct config_step));
	for (size_t i = 0; i < nsteps; i++) {
		lua_rawgeti(L, steps, (lua_Integer)(i + 1));
		const struct config_step *src = lua_touserdata(L, -1);
		b->nsteps = i + 1;
		config_step_copy(L, &b->steps[i], src);
		lua_pop(L, 1);
	}
	config_sched_builder(L, what, b); /* queue keys (config-sched.c) */
	config_sched_props(L, 1, what, "properties", &b->props, &b->nprops);
	config_read_env(L, 1, what, &b->env, &b->nenv);
	config_numbers_builder(L, what, b->name); /* regression (config-numbers.c) */
	config_lock_builder(L, what, b);          /* locks = { ... } (config-lock.c) */
	b->next_worker_fn = config_builder_fn(L, what, "next_worker"); /* slice "dispatch" */
	b->next_build_fn = config_builder_fn(L, what, "next_build");
	config_retention_builder(L, what, b); /* retention = { ... } (issue 13) */
	dsl_register(L, REG_BUILDERS, name, line);
	lua_pushstring(L, name);
	return 1;
}

void config_builder_open(lua_State *L)
{
	lua_register(L, "builder", config_builder_declare);
}
