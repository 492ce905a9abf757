/*
 * Several codebases per build, the master.lua side: a scheduler's
 * codebases = { NAME = { repository = ..., branch = ..., revision = ... } }
 * (Buildbot's codebases dict: one sourcestamp per codebase in each of its
 * buildsets) and the global codebase_generator (a function of a change, or
 * a table repository -> codebase).  The generator's function is called at
 * run time through config-runtime.c (config_codebase_generate).
 */
#include "config/config-internal.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* A codebase name: at most KILN_MAX_CODEBASE_NAME bytes, no control characters. */
bool config_codebase_name_ok(const char *s, size_t len)
{
	if (len > KILN_MAX_CODEBASE_NAME || strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void config_codebase_check_name(lua_State *L, const char *what, const char *key,
				       const char *s, size_t len)
{
	if (!config_codebase_name_ok(s, len))
		config_raise(L,
			     "%s: '%s': codebase '%.60s' must be at most %u bytes without control "
			     "characters",
			     what, key, s, (unsigned)KILN_MAX_CODEBASE_NAME);
}

bool config_codebase_is_map(lua_State *L, int idx)
{
	return lua_type(L, idx) == LUA_TTABLE && lua_rawlen(L, idx) == 0;
}

static int config_codebase_cmp(const void *a, const void *b)
{
	const struct config_codebase *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static char *config_codebase_opt(lua_State *L, int t, const char *what, const char *key)
{
	size_t len;
	const char *s = dsl_opt_string(L, t, what, key, &len);
	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			config_raise(L, "%s: '%s' must not contain control characters", what, key);
	return config_strdup(L, s, len);
}

void config_codebase_sched(lua_State *L, int t, const char *what, struct config_scheduler *s)
{
	static const char *const keys[] = {"repository", "branch", "revision", NULL};
	if (dsl_get(L, t, "codebases") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int m = lua_gettop(L);
	if (s->kind == CONFIG_SCHED_FORCE && lua_type(L, m) == LUA_TTABLE &&
	    !config_codebase_is_map(L, m)) {
		lua_pop(L,
			1); /* a list: the force call's allowed codebase values (config-sched.c) */
		return;
	}
	if (!config_codebase_is_map(L, m))
		config_raise(L,
			     "%s: 'codebases' must be a table { NAME = { repository = ..., branch "
			     "= ..., revision = ... }, ... } (got %s)",
			     what, lua_type(L, m) == LUA_TTABLE ? "a list" : dsl_typename(L, m));
	static const char *const replaced[] = {"codebase", "branch", "repository"};
	for (size_t i = 0; i < sizeof(replaced) / sizeof(*replaced); i++) {
		if (dsl_get(L, t, replaced[i]) != LUA_TNIL)
			config_raise(L,
				     "%s: '%s' cannot be used with 'codebases' (give it in the "
				     "codebase's entry)",
				     what, replaced[i]);
		lua_pop(L, 1);
	}
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, m)) {
		lua_pop(L, 1);
		if (++n > KILN_MAX_CODEBASES)
			config_raise(L, "%s: 'codebases' has more than %u entries", what,
				     (unsigned)KILN_MAX_CODEBASES);
	}
	if (n == 0)
		config_raise(L, "%s: 'codebases' must name at least one codebase", what);
	config_charge(L, n * sizeof(struct config_codebase));
	s->codebases = xcalloc(n, sizeof(struct config_codebase));
	lua_pushnil(L);
	while (lua_next(L, m)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			config_raise(L, "%s: 'codebases' keys must be codebase names (got %s)",
				     what, dsl_typename(L, -2));
		size_t len;
		const char *name = lua_tolstring(L, -2, &len);
		config_codebase_check_name(L, what, "codebases", name, len);
		char cwhat[400];
		snprintf(cwhat, sizeof(cwhat), "%s: codebases['%.60s']", what, name);
		int e = lua_gettop(L);
		if (lua_type(L, e) != LUA_TTABLE)
			config_raise(
				L,
				"%s must be a table { repository = ..., branch = ..., revision "
				"= ... } (got %s)",
				cwhat, dsl_typename(L, e));
		dsl_check_keys(L, e, cwhat, keys);
		struct config_codebase *cb = &s->codebases[s->ncodebases++];
		cb->name = config_strdup(L, name, len);
		cb->repository = config_codebase_opt(L, e, cwhat, "repository");
		cb->branch = config_codebase_opt(L, e, cwhat, "branch");
		cb->revision = config_codebase_opt(L, e, cwhat, "revision");
		lua_pop(L, 1);
	}
	qsort(s->codebases, s->ncodebases, sizeof(*s->codebases), config_codebase_cmp);
	lua_pop(L, 1);
}

void config_codebase_sched_release(struct config_scheduler *s)
{
	for (size_t i = 0; i < s->ncodebases; i++) {
		free(s->codebases[i].name);
		free(s->codebases[i].repository);
		free(s->codebases[i].branch);
		free(s->codebases[i].revision);
	}
	free(s->codebases);
	s->codebases = NULL;
	s->ncodebases = 0;
}

const struct config_codebase *config_scheduler_codebase(const struct config_scheduler *s,
							const char *name)
{
	struct config_codebase key = {.name = (char *)(name ? name : "")};
	return s->ncodebases ? bsearch(&key, s->codebases, s->ncodebases, sizeof(key),
				       config_codebase_cmp)
			     : NULL;
}

/* ---- codebase_generator -------------------------------------------------------- */

static int config_codebase_repo_cmp(const void *a, const void *b)
{
	const struct config_codebase_repo *x = a, *y = b;
	return strcmp(x->repository, y->repository);
}

static void config_codebase_gen_free(struct config_codebase_gen *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nrepos; i++) {
		free(g->repos[i].repository);
		free(g->repos[i].codebase);
	}
	free(g->repos);
	free(g);
}

bool config_codebase_setting(lua_State *L, const char *key)
{
	static const char what[] = "codebase_generator";
	struct config *cfg = config_ctx_of(L)->cfg;
	if (strcmp(key, what))
		return false;
	config_codebase_gen_free(cfg->codebase_gen);
	cfg->codebase_gen = NULL;
	config_charge(L, sizeof(struct config_codebase_gen));
	struct config_codebase_gen *g = xcalloc(1, sizeof(*g));
	cfg->codebase_gen = g; /* owned by cfg from here: a raise frees what exists */
	int t = lua_type(L, 3);
	if (t == LUA_TFUNCTION) {
		config_ctx_of(L)->keep_lua = true;
		lua_pushvalue(L, 3);
		g->fn = luaL_ref(L, LUA_REGISTRYINDEX);
		return true;
	}
	if (t != LUA_TTABLE || lua_rawlen(L, 3) != 0)
		config_raise(L,
			     "'codebase_generator' must be a function(change) or a table { "
			     "[repository] = codebase } (got %s)",
			     t == LUA_TTABLE ? "a list" : dsl_typename(L, 3));
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, 3)) {
		lua_pop(L, 1);
		if (++n > KILN_MAX_CODEBASE_REPOS)
			config_raise(L, "'codebase_generator' has more than %u entries",
				     (unsigned)KILN_MAX_CODEBASE_REPOS);
	}
	config_charge(L, (n + 1) * sizeof(struct config_codebase_repo));
	g->repos = xcalloc(n + 1, sizeof(struct config_codebase_repo));
	lua_pushnil(L);
	while (lua_next(L, 3)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			config_raise(L, "'codebase_generator' keys must be repositories (got %s)",
				     dsl_typename(L, -2));
		size_t rlen, clen;
		const char *repo = lua_tolstring(L, -2, &rlen);
		if (strlen(repo) != rlen)
			config_raise(L, "'codebase_generator': a repository contains a NUL byte");
		const char *cb = dsl_check_string(L, -1, what, repo, &clen);
		config_codebase_check_name(L, what, repo, cb, clen);
		struct config_codebase_repo *e = &g->repos[g->nrepos++];
		e->repository = config_strdup(L, repo, rlen);
		e->codebase = config_strdup(L, cb, clen);
		lua_pop(L, 1);
	}
	qsort(g->repos, g->nrepos, sizeof(*g->repos), config_codebase_repo_cmp);
	return true;
}

int config_codebase_lookup(const struct config_codebase_gen *g, const char *repository, char **ret)
{
	struct config_codebase_repo key = {.repository = (char *)(repository ? repository : "")};
	const struct config_codebase_repo *e =
		g->nrepos
			? bsearch(&key, g->repos, g->nrepos, sizeof(key), config_codebase_repo_cmp)
			: NULL;
	if (!e)
		return 0;
	*ret = xstrdup(e->codebase);
	return 1;
}

void config_codebase_release(struct config *cfg)
{
	config_codebase_gen_free(cfg->codebase_gen);
	cfg->codebase_gen = NULL;
}
