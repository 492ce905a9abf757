/*
 * Source steps: git { repourl, branch, mode, method, shallow, submodules,
 * retry_fetch, retry, codebase, ... } (steps/step-git.c runs it), hg { }
 * svn { }, bzr { }, darcs { } and cvs { } (step-NAME.c).  The keys follow
 * Buildbot's Git, Mercurial, SVN, Bzr, Darcs and CVS steps; repourl and
 * branch may be renderables.
 */
#include "config/config-internal.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>

static const char *const config_source_modes[] = {"incremental", "full"};
static const char *const config_source_methods[] = {"fresh", "clean", "clobber", "copy"};

/* t[key] among the names in choices (its index), or def when unset. */
static int config_source_choice(lua_State *L, const char *what, const char *key,
				const char *const *choices, size_t n, int def)
{
	size_t len;
	const char *s = dsl_opt_string(L, 1, what, key, &len);
	if (!s)
		return def;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, choices[i]))
			return (int)i;
	char list[128] = "";
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s\"%s\"", i ? ", " : "", choices[i]);
	}
	return config_raise(L, "%s: '%s' must be one of %s (got '%.40s')", what, key, list, s);
}

/* retry = { delay, repeats } */
static void config_source_retry(lua_State *L, const char *what, struct config_source *src)
{
	if (dsl_get(L, 1, "retry") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int t = lua_gettop(L);
	if (lua_type(L, t) != LUA_TTABLE || luaL_len(L, t) != 2)
		config_raise(L, "%s: 'retry' must be { delay_seconds, repeats }", what);
	lua_rawgeti(L, t, 1);
	lua_rawgeti(L, t, 2);
	int isnum = 0;
	double delay = lua_tonumberx(L, -2, &isnum);
	if (!isnum || !isfinite(delay) || delay < 0 || delay > 3600)
		config_raise(L, "%s: retry's delay must be 0 to 3600 seconds", what);
	lua_Integer repeats = lua_tointegerx(L, -1, &isnum);
	if (!isnum || repeats < 0 || repeats > 100)
		config_raise(L, "%s: retry's repeats must be an integer from 0 to 100", what);
	src->retry_delay = delay;
	src->retry_repeats = (int)repeats;
	lua_settop(L, t - 1);
}

/* The keys every source step takes. */
#define CONFIG_SOURCE_KEYS                                                                         \
	"name", "repourl", "branch", "mode", "method", "codebase", "workdir", "timeout", "env",    \
		DSL_STEP_FLAG_KEYS

/* Declares a source step of kind: checks keys (NULL-terminated), reads the
 * keys every source step shares into a new step userdata left on the stack
 * (its index in *ret_ud).  methods: the methods this VCS has, def_method
 * mode full's default; url_key: the required key read into repourl. */
static struct config_source *config_source_new(lua_State *L, enum config_step_kind kind,
					       const char *decl, const char *const *keys,
					       const char *what, unsigned methods, int def_method,
					       const char *url_key, int *ret_ud)
{
	int line = config_line(L);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_opt_name(L, 1, what, "name");
	size_t wlen = 0;
	const char *workdir = dsl_opt_string(L, 1, what, "workdir", &wlen);
	if (workdir)
		dsl_check_relpath(L, what, "workdir", workdir, wlen);
	int mode = config_source_choice(L, what, "mode", config_source_modes,
					ARRAY_SIZE(config_source_modes), CONFIG_SOURCE_INCREMENTAL);
	int method = config_source_choice(L, what, "method", config_source_methods,
					  ARRAY_SIZE(config_source_methods), -1);
	if (method >= 0 && mode != CONFIG_SOURCE_FULL)
		config_raise(L, "%s: 'method' applies to mode = \"full\" only", what);
	if (method >= 0 && !(methods & (1u << method)))
		config_raise(L, "%s: %s has no method '%s'", what, decl,
			     config_source_methods[method]);
	double timeout = dsl_opt_seconds(L, 1, what, "timeout", 1200);
	size_t clen = 0;
	const char *codebase = dsl_opt_string(L, 1, what, "codebase", &clen);
	struct config_step flags = dsl_step_flags(L, what);

	/* the userdata owns the step from here: a raise frees it with __gc */
	struct config_step *step = lua_newuserdatauv(L, sizeof(*step), 1 /* fp (config-fp.c) */);
	*step = flags;
	step->kind = kind;
	step->timeout = timeout;
	step->line = line;
	luaL_setmetatable(L, MT_STEP);
	int ud = lua_gettop(L);
	config_charge(L, sizeof(struct config_source));
	struct config_source *src = step->source = xcalloc(1, sizeof(*src));
	src->mode = (enum config_source_mode)mode;
	src->method = method >= 0 ? (enum config_source_method)method
				  : (enum config_source_method)def_method;
	src->codebase = config_strdup(L, codebase ? codebase : "", clen);
	if (dsl_get(L, 1, url_key) == LUA_TNIL)
		config_raise(L, "%s: '%s' is required: %s = \"%s\"", what, url_key, url_key,
			     strcmp(url_key, "repourl") ? "..." : "https://...");
	config_read_rstr(L, lua_gettop(L), what, url_key, &src->repourl);
	if (src->repourl.text && !src->repourl.text[0])
		config_raise(L, "%s: '%s' must not be empty", what, url_key);
	lua_settop(L, ud);
	if (dsl_get(L, 1, "branch") != LUA_TNIL)
		config_read_rstr(L, lua_gettop(L), what, "branch", &src->branch);
	lua_settop(L, ud);
	config_step_env(L, what, step);
	config_lock_step(L, what, step); /* locks = { ... } (config-lock.c) */
	step->workdir = config_strdup(L, workdir ? workdir : "build", workdir ? wlen : 5);
	step->name = config_strdup(L, name ? name : decl, strlen(name ? name : decl));
	lua_settop(L, ud);
	*ret_ud = ud;
	return src;
}

#define CONFIG_METHODS_ALL                                                                         \
	((1u << CONFIG_SOURCE_FRESH) | (1u << CONFIG_SOURCE_CLEAN) |                               \
	 (1u << CONFIG_SOURCE_CLOBBER) | (1u << CONFIG_SOURCE_COPY))

int config_step_git(lua_State *L)
{
	static const char *const keys[] = {CONFIG_SOURCE_KEYS, "shallow", "submodules", "retry",
					   "retry_fetch",      NULL};
	char what[256];
	dsl_check_table_arg(L, "git");
	dsl_what(L, what, sizeof(what), "git", NULL);
	long long shallow = 0;
	int st = dsl_get(L, 1, "shallow");
	if (st == LUA_TBOOLEAN)
		shallow = lua_toboolean(L, -1) ? 1 : 0;
	lua_pop(L, 1);
	if (st != LUA_TBOOLEAN)
		shallow = dsl_opt_int(L, 1, what, "shallow", 0, 0, 1000000);
	bool submodules = dsl_opt_bool(L, 1, what, "submodules", false);
	bool retry_fetch = dsl_opt_bool(L, 1, what, "retry_fetch", false);
	int ud;
	struct config_source *src =
		config_source_new(L, CONFIG_STEP_GIT, "git", keys, what, CONFIG_METHODS_ALL,
				  CONFIG_SOURCE_FRESH, "repourl", &ud);
	src->shallow = (int)shallow;
	src->submodules = submodules;
	src->retry_fetch = retry_fetch;
	config_source_retry(L, what, src);
	lua_settop(L, ud);
	return 1;
}

int config_step_hg(lua_State *L)
{
	static const char *const keys[] = {CONFIG_SOURCE_KEYS, "branch_type",
					   "clobber_on_branch_change", NULL};
	static const char *const types[] = {"dirname", "inrepo"};
	char what[256];
	dsl_check_table_arg(L, "hg");
	dsl_what(L, what, sizeof(what), "hg", NULL);
	dsl_check_keys(L, 1, what, keys);
	int type = config_source_choice(L, what, "branch_type", types, ARRAY_SIZE(types), 0);
	bool clobber = dsl_opt_bool(L, 1, what, "clobber_on_branch_change", true);
	int ud;
	struct config_source *src =
		config_source_new(L, CONFIG_STEP_HG, "hg", keys, what,
				  CONFIG_METHODS_ALL & ~(1u << CONFIG_SOURCE_COPY),
				  CONFIG_SOURCE_FRESH, "repourl", &ud);
	src->hg_inrepo = type == 1;
	src->clobber_on_branch_change = clobber;
	return 1;
}

/* password: secret(...) (its value, masked in logs) or a renderable */
static void config_source_password(lua_State *L, const char *what, struct config_source *src)
{
	int top = lua_gettop(L);
	if (dsl_get(L, 1, "password") == LUA_TNIL) {
		lua_settop(L, top);
		return;
	}
	struct dsl_secret *sec = luaL_testudata(L, -1, MT_SECRET);
	if (sec)
		src->password.text = config_strdup(L, sec->value, strlen(sec->value));
	else
		config_read_rstr(L, lua_gettop(L), what, "password", &src->password);
	lua_settop(L, top);
}

int config_step_svn(lua_State *L)
{
	static const char *const keys[] = {CONFIG_SOURCE_KEYS, "username", "password", "extra_args",
					   NULL};
	char what[256];
	dsl_check_table_arg(L, "svn");
	dsl_what(L, what, sizeof(what), "svn", NULL);
	dsl_check_keys(L, 1, what, keys);
	int ud;
	struct config_source *src =
		config_source_new(L, CONFIG_STEP_SVN, "svn", keys, what, CONFIG_METHODS_ALL,
				  CONFIG_SOURCE_FRESH, "repourl", &ud);
	if (dsl_get(L, 1, "username") != LUA_TNIL)
		config_read_rstr(L, lua_gettop(L), what, "username", &src->username);
	lua_settop(L, ud);
	config_source_password(L, what, src);
	if (dsl_get(L, 1, "extra_args") != LUA_TNIL) {
		int t = lua_gettop(L);
		size_t n = dsl_check_list(L, t, what, "extra_args", "strings");
		if (n > KILN_MAX_SOURCE_EXTRA_ARGS)
			config_raise(L, "%s: at most %d 'extra_args'", what,
				     KILN_MAX_SOURCE_EXTRA_ARGS);
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, t, (lua_Integer)i);
			dsl_check_string(L, -1, what, "extra_args", NULL);
			lua_pop(L, 1);
		}
		src->extra_args = dsl_new_strv(L, n);
		dsl_fill_list(L, t, src->extra_args, &src->nextra_args, n);
	}
	lua_settop(L, ud);
	return 1;
}

int config_step_bzr(lua_State *L)
{
	static const char *const keys[] = {CONFIG_SOURCE_KEYS, "base_url", NULL};
	char what[256];
	dsl_check_table_arg(L, "bzr");
	dsl_what(L, what, sizeof(what), "bzr", NULL);
	dsl_check_keys(L, 1, what, keys);
	bool has_url = dsl_get(L, 1, "repourl") != LUA_TNIL;
	bool has_base = dsl_get(L, 1, "base_url") != LUA_TNIL;
	lua_pop(L, 2);
	if (has_url && has_base)
		config_raise(L, "%s: 'repourl' and 'base_url' exclude each other", what);
	int ud;
	struct config_source *src =
		config_source_new(L, CONFIG_STEP_BZR, "bzr", keys, what, CONFIG_METHODS_ALL,
				  CONFIG_SOURCE_FRESH, has_base ? "base_url" : "repourl", &ud);
	src->base_url = has_base;
	return 1;
}

int config_step_darcs(lua_State *L)
{
	static const char *const keys[] = {CONFIG_SOURCE_KEYS, NULL};
	char what[256];
	dsl_check_table_arg(L, "darcs");
	dsl_what(L, what, sizeof(what), "darcs", NULL);
	int ud;
	config_source_new(L, CONFIG_STEP_DARCS, "darcs", keys, what,
			  (1u << CONFIG_SOURCE_CLOBBER) | (1u << CONFIG_SOURCE_COPY),
			  CONFIG_SOURCE_COPY, "repourl", &ud);
	return 1;
}

int config_step_cvs(lua_State *L)
{
	static const char *const keys[] = {CONFIG_SOURCE_KEYS, "cvsroot", "cvsmodule", NULL};
	char what[256];
	dsl_check_table_arg(L, "cvs");
	dsl_what(L, what, sizeof(what), "cvs", NULL);
	dsl_check_keys(L, 1, what, keys);
	if (dsl_get(L, 1, "repourl") != LUA_TNIL)
		config_raise(L, "%s: cvs takes 'cvsroot' and 'cvsmodule', not 'repourl'", what);
	lua_pop(L, 1);
	size_t mlen = 0;
	const char *module = dsl_opt_string(L, 1, what, "cvsmodule", &mlen);
	if (!module || !mlen || module[0] == '-' || strlen(module) != mlen)
		config_raise(L, "%s: 'cvsmodule' is required: cvsmodule = \"proj\"", what);
	int ud;
	struct config_source *src =
		config_source_new(L, CONFIG_STEP_CVS, "cvs", keys, what,
				  (1u << CONFIG_SOURCE_CLOBBER) | (1u << CONFIG_SOURCE_COPY),
				  CONFIG_SOURCE_CLOBBER, "cvsroot", &ud);
	src->cvsmodule = config_strdup(L, module, mlen);
	return 1;
}

void config_step_source_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	dst->source = NULL;
	if (!src->source)
		return;
	config_charge(L, sizeof(struct config_source));
	struct config_source *d = dst->source = xcalloc(1, sizeof(*d));
	const struct config_source *s = src->source;
	*d = (struct config_source){.mode = s->mode,
				    .method = s->method,
				    .shallow = s->shallow,
				    .submodules = s->submodules,
				    .retry_fetch = s->retry_fetch,
				    .retry_delay = s->retry_delay,
				    .retry_repeats = s->retry_repeats};
	d->hg_inrepo = s->hg_inrepo;
	d->base_url = s->base_url;
	if (s->cvsmodule)
		d->cvsmodule = config_strdup(L, s->cvsmodule, strlen(s->cvsmodule));
	d->clobber_on_branch_change = s->clobber_on_branch_change;
	config_rstr_copy(L, &d->repourl, &s->repourl);
	config_rstr_copy(L, &d->branch, &s->branch);
	config_rstr_copy(L, &d->username, &s->username);
	config_rstr_copy(L, &d->password, &s->password);
	if (s->nextra_args) {
		d->extra_args = dsl_new_strv(L, s->nextra_args);
		for (size_t i = 0; i < s->nextra_args; i++) {
			d->extra_args[i] =
				config_strdup(L, s->extra_args[i], strlen(s->extra_args[i]));
			d->nextra_args = i + 1; /* counted as soon as owned */
		}
	}
	d->codebase = config_strdup(L, s->codebase, strlen(s->codebase));
}

void config_step_source_release(struct config_step *s)
{
	struct config_source *src = s->source;
	if (!src)
		return;
	free(src->repourl.text);
	free(src->branch.text);
	free(src->username.text);
	free(src->cvsmodule);
	if (src->password.text)
		explicit_bzero(src->password.text, strlen(src->password.text));
	free(src->password.text);
	config_sched_strv_free(src->extra_args, src->nextra_args);
	free(src->codebase);
	free(src);
	s->source = NULL;
}
