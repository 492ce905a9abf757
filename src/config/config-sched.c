/*
 * The scheduler vocabulary of master.lua: force_scheduler, single_branch,
 * any_branch, periodic, nightly, triggerable, dependent, try_scheduler, the
 * builders' queue keys (collapse_requests,
 * cancel_superseded) and the global collapse_requests.  Lua functions and
 * patterns given here stay in the kept Lua state; the master runs them
 * through config-runtime.c.  Lua never leaves src/config/.
 */
#include "config/config-internal.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "common/cron.h"

#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- values -------------------------------------------------------------- */

/* Keeps the function at idx in the registry: the state outlives the load. */
static int config_sched_ref_fn(lua_State *L, int idx)
{
	config_ctx_of(L)->keep_lua = true;
	lua_pushvalue(L, idx);
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Checks a Lua pattern by running it once (a malformed one raises). */
static void config_sched_check_pattern(lua_State *L, const char *what, const char *key,
				       const char *pat)
{
	lua_getfield(L, LUA_REGISTRYINDEX, REG_FIND);
	lua_pushliteral(L, "");
	lua_pushstring(L, pat);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		const char *colon = msg ? strstr(msg, "malformed") : NULL;
		config_raise(L, "%s: '%s' is not a valid Lua pattern: %s", what, key,
			     colon ? colon : (msg ? msg : "error"));
	}
	config_ctx_of(L)->keep_lua = true;
}

/* A JSON text for the scalar at idx (string, number, boolean). */
static char *config_sched_json_scalar(lua_State *L, int idx, const char *what, const char *key)
{
	char buf[64];
	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN:
		return config_strdup(L, lua_toboolean(L, idx) ? "true" : "false",
				     lua_toboolean(L, idx) ? 4 : 5);
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			snprintf(buf, sizeof(buf), "%lld", (long long)lua_tointeger(L, idx));
		else {
			double d = lua_tonumber(L, idx);
			if (!isfinite(d))
				config_raise(L, "%s: '%s' must be a finite number", what, key);
			snprintf(buf, sizeof(buf), "%.17g", d);
		}
		return config_strdup(L, buf, strlen(buf));
	case LUA_TSTRING: {
		size_t len;
		const char *s = dsl_check_string(L, idx, what, key, &len);
		/* a JSON string: escape quotes, backslashes and control characters */
		config_charge(L, len * 6 + 3);
		char *out = xmalloc(len * 6 + 3), *o = out;
		*o++ = '"';
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '"' || c == '\\') {
				*o++ = '\\';
				*o++ = (char)c;
			} else if (c < 0x20) {
				o += snprintf(o, 7, "\\u%04x", c);
			} else
				*o++ = (char)c;
		}
		*o++ = '"';
		*o = '\0';
		return out;
	}
	default:
		config_raise(L, "%s: '%s' must be a string, number or boolean (got %s)", what, key,
			     dsl_typename(L, idx));
	}
	return NULL;
}

/* t[key] = { name = value, ... } into props. */
void config_sched_props(lua_State *L, int t, const char *what, const char *key,
			struct config_prop **ret, size_t *ret_n)
{
	if (dsl_get(L, t, key) == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int p = lua_gettop(L);
	if (lua_type(L, p) != LUA_TTABLE)
		config_raise(L, "%s: '%s' must be a table of name = value (got %s)", what, key,
			     dsl_typename(L, p));
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, p)) {
		lua_pop(L, 1);
		n++;
	}
	config_charge(L, (n + 1) * sizeof(struct config_prop));
	*ret = xcalloc(n + 1, sizeof(struct config_prop));
	lua_pushnil(L);
	while (lua_next(L, p)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			config_raise(L, "%s: '%s' keys must be property names", what, key);
		size_t klen;
		const char *k = lua_tolstring(L, -2, &klen);
		dsl_check_name(L, what, key, k, klen);
		struct config_prop *pr = &(*ret)[*ret_n];
		pr->name = config_strdup(L, k, klen);
		(*ret_n)++;
		pr->value = config_sched_json_scalar(L, lua_gettop(L), what, key);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

static char *config_sched_opt_strdup(lua_State *L, int t, const char *what, const char *key)
{
	size_t len;
	const char *s = dsl_opt_string(L, t, what, key, &len);
	return s ? config_strdup(L, s, len) : NULL;
}

/* One filter field: key (value or list), key_re (pattern), key_fn (function). */
static void config_sched_match(lua_State *L, int t, const char *what, const char *key,
			       struct config_match *m, bool *set)
{
	char k[64];
	int type = dsl_get(L, t, key);
	int v = lua_gettop(L);
	if (type == LUA_TSTRING) {
		size_t len;
		const char *s = dsl_check_string(L, v, what, key, &len);
		m->values = dsl_new_strv(L, 1);
		m->values[0] = config_strdup(L, s, len);
		m->nvalues = 1;
		*set = true;
	} else if (type == LUA_TTABLE) {
		size_t n = dsl_check_list(L, v, what, key, "strings");
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, v, (lua_Integer)i);
			dsl_check_string(L, -1, what, key, NULL);
			lua_pop(L, 1);
		}
		m->values = dsl_new_strv(L, n);
		dsl_fill_list(L, v, m->values, &m->nvalues, n);
		*set = true;
	} else if (type != LUA_TNIL)
		config_raise(L, "%s: '%s' must be a string or a list of strings (got %s)", what,
			     key, dsl_typename(L, v));
	lua_pop(L, 1);

	snprintf(k, sizeof(k), "%s_re", key);
	size_t plen;
	const char *pat = dsl_opt_string(L, t, what, k, &plen);
	if (pat) {
		config_sched_check_pattern(L, what, k, pat);
		m->pattern = config_strdup(L, pat, plen);
		*set = true;
	}
	snprintf(k, sizeof(k), "%s_fn", key);
	type = dsl_get(L, t, k);
	if (type == LUA_TFUNCTION) {
		m->fn = config_sched_ref_fn(L, -1);
		*set = true;
	} else if (type != LUA_TNIL)
		config_raise(L, "%s: '%s' must be a function (got %s)", what, k,
			     dsl_typename(L, -1));
	lua_pop(L, 1);
}

static void config_sched_filter(lua_State *L, int t, const char *what,
				struct config_change_filter *f)
{
	static const char *const keys[] = {
		"branch",      "branch_re",   "branch_fn",     "project",       "project_re",
		"project_fn",  "repository",  "repository_re", "repository_fn", "category",
		"category_re", "category_fn", "codebase",      "codebase_re",   "codebase_fn",
		"filter_fn",   NULL};
	if (dsl_get(L, t, "change_filter") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int c = lua_gettop(L);
	char cwhat[300];
	snprintf(cwhat, sizeof(cwhat), "%s: change_filter", what);
	if (lua_type(L, c) != LUA_TTABLE)
		config_raise(L, "%s must be a table such as { branch = \"main\" } (got %s)", cwhat,
			     dsl_typename(L, c));
	dsl_check_keys(L, c, cwhat, keys);
	config_sched_match(L, c, cwhat, "branch", &f->branch, &f->set);
	config_sched_match(L, c, cwhat, "project", &f->project, &f->set);
	config_sched_match(L, c, cwhat, "repository", &f->repository, &f->set);
	config_sched_match(L, c, cwhat, "category", &f->category, &f->set);
	config_sched_match(L, c, cwhat, "codebase", &f->codebase, &f->set);
	int type = dsl_get(L, c, "filter_fn");
	if (type == LUA_TFUNCTION) {
		f->fn = config_sched_ref_fn(L, -1);
		f->set = true;
	} else if (type != LUA_TNIL)
		config_raise(L, "%s: 'filter_fn' must be a function (got %s)", cwhat,
			     dsl_typename(L, -1));
	lua_pop(L, 2);
}

/* params = { { name = "n", type = "int", default = 1, ... }, ... } */
static void config_sched_params(lua_State *L, int t, const char *what, struct config_scheduler *s)
{
	static const char *const keys[] = {"name", "type", "label",   "default", "required",
					   "min",  "max",  "choices", NULL};
	if (dsl_get(L, t, "params") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int ps = lua_gettop(L);
	size_t n = dsl_check_list(L, ps, what, "params", "parameter tables");
	config_charge(L, (n + 1) * sizeof(struct config_param));
	s->params = xcalloc(n + 1, sizeof(struct config_param));
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, ps, (lua_Integer)i);
		int p = lua_gettop(L);
		char pwhat[320];
		snprintf(pwhat, sizeof(pwhat), "%s: params[%zu]", what, i);
		if (lua_type(L, p) != LUA_TTABLE)
			config_raise(L, "%s must be a table { name = ..., type = ... }", pwhat);
		dsl_check_keys(L, p, pwhat, keys);
		const char *name = dsl_req_name(L, p, pwhat, "name");
		static const char *const reserved[] = {
			"reason",     "username",  "owner",    "branch",    "revision",
			"repository", "project",   "codebase", "builderid", "builderNames",
			"priority",   "scheduler", NULL};
		for (size_t k = 0; reserved[k]; k++)
			if (!strcmp(name, reserved[k]))
				config_raise(L, "%s: '%s' is a reserved force field", pwhat, name);
		for (size_t k = 0; k < s->nparams; k++)
			if (!strcmp(s->params[k].name, name))
				config_raise(L, "%s: parameter '%s' is declared twice", pwhat,
					     name);
		const char *type = dsl_opt_string(L, p, pwhat, "type", NULL);
		struct config_param *cp = &s->params[s->nparams];
		*cp = (struct config_param){.min = LLONG_MIN, .max = LLONG_MAX};
		if (!type || !strcmp(type, "string"))
			cp->type = CONFIG_PARAM_STRING;
		else if (!strcmp(type, "int"))
			cp->type = CONFIG_PARAM_INT;
		else if (!strcmp(type, "bool"))
			cp->type = CONFIG_PARAM_BOOL;
		else if (!strcmp(type, "choice"))
			cp->type = CONFIG_PARAM_CHOICE;
		else
			config_raise(L,
				     "%s: 'type' must be string, int, bool or choice (got '%.40s')",
				     pwhat, type);
		s->nparams++;
		cp->name = config_strdup(L, name, strlen(name));
		cp->label = config_sched_opt_strdup(L, p, pwhat, "label");
		cp->required = dsl_opt_bool(L, p, pwhat, "required", false);
		char buf[64];
		int dt = dsl_get(L, p, "default");
		switch (cp->type) {
		case CONFIG_PARAM_STRING:
			if (dt != LUA_TNIL)
				dsl_check_string(L, -1, pwhat, "default", NULL);
			cp->def = config_strdup(L, dt == LUA_TNIL ? "" : lua_tostring(L, -1),
						dt == LUA_TNIL ? 0 : strlen(lua_tostring(L, -1)));
			break;
		case CONFIG_PARAM_INT: {
			cp->min = dsl_opt_int(L, p, pwhat, "min", LLONG_MIN, LLONG_MIN, LLONG_MAX);
			cp->max = dsl_opt_int(L, p, pwhat, "max", LLONG_MAX, LLONG_MIN, LLONG_MAX);
			long long d = dsl_opt_int(L, p, pwhat, "default", 0, cp->min, cp->max);
			if (cp->min > cp->max)
				config_raise(L, "%s: 'min' is greater than 'max'", pwhat);
			if (dt == LUA_TNIL && (d < cp->min || d > cp->max))
				d = cp->min;
			snprintf(buf, sizeof(buf), "%lld", d);
			cp->def = config_strdup(L, buf, strlen(buf));
			break;
		}
		case CONFIG_PARAM_BOOL: {
			bool d = dsl_opt_bool(L, p, pwhat, "default", false);
			cp->def = config_strdup(L, d ? "true" : "false", d ? 4 : 5);
			break;
		}
		case CONFIG_PARAM_CHOICE: {
			if (dsl_get(L, p, "choices") == LUA_TNIL)
				config_raise(L, "%s: a choice needs 'choices = { ... }'", pwhat);
			int ch = lua_gettop(L);
			size_t nc = dsl_check_list(L, ch, pwhat, "choices", "strings");
			if (nc == 0)
				config_raise(L, "%s: 'choices' must not be empty", pwhat);
			for (size_t k = 1; k <= nc; k++) {
				lua_rawgeti(L, ch, (lua_Integer)k);
				dsl_check_string(L, -1, pwhat, "choices", NULL);
				lua_pop(L, 1);
			}
			cp->choices = dsl_new_strv(L, nc);
			dsl_fill_list(L, ch, cp->choices, &cp->nchoices, nc);
			lua_pop(L, 1);
			const char *d = dt == LUA_TNIL
						? cp->choices[0]
						: dsl_check_string(L, -1, pwhat, "default", NULL);
			bool ok = false;
			for (size_t k = 0; k < cp->nchoices && !ok; k++)
				ok = !strcmp(cp->choices[k], d);
			if (!ok)
				config_raise(L, "%s: default '%.60s' is not one of the choices",
					     pwhat, d);
			cp->def = config_strdup(L, d, strlen(d));
			break;
		}
		}
		lua_pop(L, 1); /* default */
		if (cp->type != CONFIG_PARAM_INT) {
			if (dsl_get(L, p, "min") != LUA_TNIL ||
			    (lua_pop(L, 1), dsl_get(L, p, "max")) != LUA_TNIL)
				config_raise(L, "%s: 'min'/'max' apply to int parameters only",
					     pwhat);
			lua_pop(L, 1);
		}
		if (cp->type != CONFIG_PARAM_CHOICE) {
			if (dsl_get(L, p, "choices") != LUA_TNIL)
				config_raise(L, "%s: 'choices' applies to choice parameters only",
					     pwhat);
			lua_pop(L, 1);
		}
		lua_pop(L, 1); /* the parameter table */
	}
	lua_pop(L, 1);
}

/* The config keys of the force scheduler's allow lists, in enum config_force_field order. */
static const char *const config_sched_allow_keys[CONFIG_FORCE_NFIELDS] = {
	"branches", "revisions", "repositories", "projects", "codebases"};

/* branches = { "main", "release-*" }, ...: what a force call may put in the
 * sourcestamp (exact values or fnmatch globs; checked by sched-force.c). */
static void config_sched_allow(lua_State *L, int t, const char *what, struct config_scheduler *s)
{
	for (size_t f = 0; f < CONFIG_FORCE_NFIELDS; f++) {
		const char *key = config_sched_allow_keys[f];
		if (dsl_get(L, t, key) == LUA_TNIL ||
		    (f == CONFIG_FORCE_CODEBASE && config_codebase_is_map(L, -1))) {
			lua_pop(L, 1); /* codebases = { NAME = {...} }: config-codebase.c */
			continue;
		}
		int v = lua_gettop(L);
		size_t n = dsl_check_list(L, v, what, key, "strings");
		if (n == 0)
			config_raise(L, "%s: '%s' must not be empty", what, key);
		for (size_t i = 1; i <= n; i++) {
			size_t len;
			lua_rawgeti(L, v, (lua_Integer)i);
			const char *e = dsl_check_string(L, -1, what, key, &len);
			bool ctl = strlen(e) != len;
			for (size_t k = 0; k < len && !ctl; k++)
				ctl = (unsigned char)e[k] < 0x20 || e[k] == 0x7f;
			if (len == 0 || len > KILN_FORCE_MAX_SOURCE || ctl)
				config_raise(
					L,
					"%s: '%s' entries must be 1 to %u bytes without control "
					"characters",
					what, key, (unsigned)KILN_FORCE_MAX_SOURCE);
			lua_pop(L, 1);
		}
		s->allowed[f] = dsl_new_strv(L, n);
		dsl_fill_list(L, v, s->allowed[f], &s->nallowed[f], n);
		lua_pop(L, 1);
	}
}

/* ---- the scheduler declarations ------------------------------------------ */

enum {
	K_FILTER = 1 << 0, /* change_filter */
	K_STABLE = 1 << 1, /* tree_stable_timer, file_is_important, only_important */
	K_SOURCE = 1 << 2, /* branch, repository, project, codebase */
	K_PERIOD = 1 << 3,
	K_CRON = 1 << 4, /* cron, only_if_changed */
	K_PARAMS = 1 << 5,
	K_UPSTREAM = 1 << 6,
	K_TOKEN = 1 << 7,
	K_ALLOW = 1 << 8,     /* branches, revisions, repositories, projects, codebases */
	K_CODEBASES = 1 << 9, /* codebases = { NAME = { ... } } (config-codebase.c) */
};

struct config_sched_decl {
	const char *decl;
	enum config_scheduler_kind kind;
	unsigned keys;
};

static const struct config_sched_decl config_sched_decls[] = {
	{"force_scheduler", CONFIG_SCHED_FORCE, K_SOURCE | K_PARAMS | K_ALLOW | K_CODEBASES},
	{"single_branch", CONFIG_SCHED_SINGLE_BRANCH, K_FILTER | K_STABLE | K_CODEBASES},
	{"any_branch", CONFIG_SCHED_ANY_BRANCH, K_FILTER | K_STABLE | K_CODEBASES},
	{"periodic", CONFIG_SCHED_PERIODIC, K_SOURCE | K_PERIOD | K_CODEBASES},
	{"nightly", CONFIG_SCHED_NIGHTLY, K_SOURCE | K_CRON | K_FILTER | K_CODEBASES},
	{"triggerable", CONFIG_SCHED_TRIGGERABLE, K_SOURCE | K_CODEBASES},
	{"dependent", CONFIG_SCHED_DEPENDENT, K_UPSTREAM},
	{"try_scheduler", CONFIG_SCHED_TRY, K_TOKEN | K_CODEBASES},
};

static int config_sched_declare(lua_State *L)
{
	const struct config_sched_decl *d =
		&config_sched_decls[lua_tointeger(L, lua_upvalueindex(1))];
	struct config *cfg = config_ctx_of(L)->cfg;
	int line = config_line(L);
	char what[256];
	const char *keys[32];
	size_t nk = 0;
	keys[nk++] = "name";
	keys[nk++] = "builders";
	keys[nk++] = "priority";
	keys[nk++] = "properties";
	if (d->keys & K_FILTER)
		keys[nk++] = "change_filter";
	if (d->keys & K_STABLE) {
		keys[nk++] = "tree_stable_timer";
		keys[nk++] = "file_is_important";
		keys[nk++] = "only_important";
	}
	if (d->keys & K_SOURCE) {
		keys[nk++] = "branch";
		keys[nk++] = "repository";
		keys[nk++] = "project";
		keys[nk++] = "codebase";
	}
	if (d->keys & K_PERIOD)
		keys[nk++] = "period";
	if (d->keys & K_CRON) {
		keys[nk++] = "cron";
		keys[nk++] = "only_if_changed";
	}
	if (d->keys & K_PARAMS)
		keys[nk++] = "params";
	if (d->keys & K_UPSTREAM)
		keys[nk++] = "upstream";
	if (d->keys & K_TOKEN)
		keys[nk++] = "token";
	if (d->keys & K_ALLOW)
		for (size_t f = 0; f < CONFIG_FORCE_NFIELDS; f++)
			keys[nk++] = config_sched_allow_keys[f];
	else if (d->keys & K_CODEBASES)
		keys[nk++] = "codebases"; /* config-codebase.c */
	keys[nk] = NULL;

	if (d->kind == CONFIG_SCHED_FORCE && lua_gettop(L) == 0)
		lua_newtable(L);
	dsl_check_table_arg(L, d->decl);
	dsl_what(L, what, sizeof(what), d->decl, NULL);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_opt_name(L, 1, what, "name");
	if (!name) {
		if (d->kind != CONFIG_SCHED_FORCE)
			return config_raise(L, "%s: 'name' is required", what);
		name = "force";
		snprintf(what, sizeof(what), "force_scheduler 'force'");
	}
	dsl_check_unique(L, REG_SCHEDULERS, "scheduler", name);

	size_t n = 0;
	int builders = 0;
	if (dsl_get(L, 1, "builders") != LUA_TNIL) {
		builders = lua_gettop(L);
		n = dsl_check_name_list(L, builders, what, "builders");
		if (n == 0)
			return config_raise(L, "%s: 'builders' must name at least one builder",
					    what);
	} else if (d->kind != CONFIG_SCHED_FORCE)
		return config_raise(L, "%s: 'builders' is required", what);
	int priority = (int)dsl_opt_int(L, 1, what, "priority", 0, -1000000, 1000000);

	/* the scheduler is owned by cfg from here: a later raise frees what exists */
	config_charge(L, sizeof(struct config_scheduler));
	ARRAY_GROW(cfg->scheduler, cfg->nschedulers + 1, cfg->scheduler_alloc);
	struct config_scheduler *s = &cfg->scheduler[cfg->nschedulers++];
	*s = (struct config_scheduler){.kind = d->kind, .line = line, .priority = priority};
	s->name = config_strdup(L, name, strlen(name));
	if (builders) { /* else (force): every builder, filled in by config_sched_finish() */
		s->builders = dsl_new_strv(L, n);
		dsl_fill_list(L, builders, s->builders, &s->nbuilders, n);
	}
	config_sched_props(L, 1, what, "properties", &s->props, &s->nprops);
	if (d->keys & K_SOURCE) {
		s->branch = config_sched_opt_strdup(L, 1, what, "branch");
		s->repository = config_sched_opt_strdup(L, 1, what, "repository");
		s->project = config_sched_opt_strdup(L, 1, what, "project");
		s->codebase = config_sched_opt_strdup(L, 1, what, "codebase");
	}
	if (d->keys & K_FILTER)
		config_sched_filter(L, 1, what, &s->filter);
	if (d->keys & K_STABLE) {
		s->tree_stable = dsl_opt_seconds(L, 1, what, "tree_stable_timer", 0);
		s->only_important = dsl_opt_bool(L, 1, what, "only_important", false);
		int t = dsl_get(L, 1, "file_is_important");
		if (t == LUA_TFUNCTION) {
			s->important_fn = config_sched_ref_fn(L, -1);
		} else if (t == LUA_TTABLE) {
			int g = lua_gettop(L);
			size_t ng =
				dsl_check_list(L, g, what, "file_is_important", "glob patterns");
			for (size_t i = 1; i <= ng; i++) {
				lua_rawgeti(L, g, (lua_Integer)i);
				dsl_check_string(L, -1, what, "file_is_important", NULL);
				lua_pop(L, 1);
			}
			s->important_globs = dsl_new_strv(L, ng);
			dsl_fill_list(L, g, s->important_globs, &s->nimportant_globs, ng);
		} else if (t != LUA_TNIL)
			config_raise(L,
				     "%s: 'file_is_important' must be a function or a list of glob "
				     "patterns (got %s)",
				     what, dsl_typename(L, -1));
		lua_pop(L, 1);
	}
	if (d->keys & K_PERIOD) {
		if (dsl_get(L, 1, "period") == LUA_TNIL)
			config_raise(L, "%s: 'period' is required (seconds between builds)", what);
		lua_pop(L, 1);
		s->period = dsl_opt_seconds(L, 1, what, "period", 0);
		if (s->period < 1)
			config_raise(L, "%s: 'period' must be at least 1 second", what);
	}
	if (d->keys & K_CRON) {
		size_t clen;
		const char *cron = dsl_opt_string(L, 1, what, "cron", &clen);
		if (!cron)
			config_raise(L,
				     "%s: 'cron' is required: cron = \"0 3 * * *\" (minute hour "
				     "day-of-month month day-of-week, UTC)",
				     what);
		struct cron c;
		char err[160];
		if (cron_parse(cron, &c, err, sizeof(err)) < 0)
			config_raise(L, "%s: cron '%.60s': %s", what, cron, err);
		int64_t next;
		if (cron_next(&c, 0, &next) < 0)
			config_raise(L, "%s: cron '%.60s' never fires", what, cron);
		s->cron = config_strdup(L, cron, clen);
		s->only_if_changed = dsl_opt_bool(L, 1, what, "only_if_changed", false);
	}
	if (d->keys & K_PARAMS)
		config_sched_params(L, 1, what, s);
	if (d->keys & K_ALLOW)
		config_sched_allow(L, 1, what, s);
	if (d->keys & K_CODEBASES)
		config_codebase_sched(L, 1, what, s);
	if (d->keys & K_UPSTREAM) {
		const char *up = dsl_opt_name(L, 1, what, "upstream");
		if (!up)
			config_raise(L, "%s: 'upstream' is required (a scheduler name)", what);
		if (!strcmp(up, name))
			config_raise(L, "%s: 'upstream' cannot be the scheduler itself", what);
		s->upstream = config_strdup(L, up, strlen(up));
	}
	if (d->keys & K_TOKEN) {
		int t = dsl_get(L, 1, "token");
		if (t == LUA_TNIL)
			config_raise(L, "%s: 'token' is required: token = secret(\"try\")", what);
		struct dsl_secret *sec = luaL_testudata(L, -1, MT_SECRET);
		if (!sec)
			config_raise(L, "%s: 'token' must come from secret(...) (got %s)", what,
				     dsl_typename(L, -1));
		s->token = config_strdup(L, sec->value, strlen(sec->value));
		lua_pop(L, 1);
	}
	dsl_register(L, REG_SCHEDULERS, name, line);
	lua_pushstring(L, name);
	return 1;
}

void config_prop_free(struct config_prop *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
}

void config_sched_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void config_sched_match_release(struct config_match *m)
{
	config_sched_strv_free(m->values, m->nvalues);
	free(m->pattern);
}

void config_sched_release(struct config_scheduler *s)
{
	free(s->name);
	config_sched_strv_free(s->builders, s->nbuilders);
	config_prop_free(s->props, s->nprops);
	free(s->branch);
	free(s->repository);
	free(s->project);
	free(s->codebase);
	config_sched_match_release(&s->filter.branch);
	config_sched_match_release(&s->filter.project);
	config_sched_match_release(&s->filter.repository);
	config_sched_match_release(&s->filter.category);
	config_sched_match_release(&s->filter.codebase);
	config_sched_strv_free(s->important_globs, s->nimportant_globs);
	free(s->cron);
	for (size_t i = 0; i < s->nparams; i++) {
		free(s->params[i].name);
		free(s->params[i].label);
		free(s->params[i].def);
		config_sched_strv_free(s->params[i].choices, s->params[i].nchoices);
	}
	free(s->params);
	for (size_t f = 0; f < CONFIG_FORCE_NFIELDS; f++)
		config_sched_strv_free(s->allowed[f], s->nallowed[f]);
	free(s->upstream);
	config_codebase_sched_release(s);
	if (s->token)
		explicit_bzero(s->token, strlen(s->token));
	free(s->token);
}

/* ---- queue settings -------------------------------------------------------- */

/* collapse_requests = true | false | function(builder, older, newer) */
static void config_sched_collapse_value(lua_State *L, int idx, const char *what, int *ret_mode,
					int *ret_fn)
{
	int t = lua_type(L, idx);
	if (t == LUA_TBOOLEAN)
		*ret_mode = lua_toboolean(L, idx) ? CONFIG_COLLAPSE_YES : CONFIG_COLLAPSE_NO;
	else if (t == LUA_TFUNCTION) {
		*ret_mode = CONFIG_COLLAPSE_FN;
		*ret_fn = config_sched_ref_fn(L, idx);
	} else
		config_raise(L, "%s'collapse_requests' must be true, false or a function (got %s)",
			     what, dsl_typename(L, idx));
}

bool config_sched_setting(lua_State *L, const char *key)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	if (config_codebase_setting(L, key))
		return true; /* codebase_generator (config-codebase.c) */
	if (strcmp(key, "collapse_requests"))
		return false;
	config_sched_collapse_value(L, 3, "", &cfg->collapse_requests, &cfg->collapse_fn);
	return true;
}

void config_sched_builder(lua_State *L, const char *what, struct config_builder *b)
{
	char w[300];
	snprintf(w, sizeof(w), "%s: ", what);
	b->collapse_requests = CONFIG_COLLAPSE_DEFAULT;
	if (dsl_get(L, 1, "collapse_requests") != LUA_TNIL)
		config_sched_collapse_value(L, lua_gettop(L), w, &b->collapse_requests,
					    &b->collapse_fn);
	lua_pop(L, 1);
	int t = dsl_get(L, 1, "cancel_superseded");
	if (t == LUA_TBOOLEAN)
		b->cancel_superseded =
			lua_toboolean(L, -1) ? CONFIG_SUPERSEDE_QUEUED : CONFIG_SUPERSEDE_NONE;
	else if (t == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "running"))
		b->cancel_superseded = CONFIG_SUPERSEDE_RUNNING;
	else if (t != LUA_TNIL)
		config_raise(L, "%s'cancel_superseded' must be true, false or \"running\" (got %s)",
			     w, dsl_typename(L, -1));
	lua_pop(L, 1);
}

/* ---- setup and final checks -------------------------------------------------- */

void config_sched_open(lua_State *L)
{
	/* string.find before master.lua can replace it: patterns are run with it */
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	lua_getfield(L, -1, LUA_STRLIBNAME);
	lua_getfield(L, -1, "find");
	lua_setfield(L, LUA_REGISTRYINDEX, REG_FIND);
	lua_pop(L, 2);

	lua_pushglobaltable(L);
	for (size_t i = 0; i < ARRAY_SIZE(config_sched_decls); i++) {
		lua_pushinteger(L, (lua_Integer)i);
		lua_pushcclosure(L, config_sched_declare, 1);
		lua_setfield(L, -2, config_sched_decls[i].decl);
	}
	lua_pop(L, 1);
}

static const char *config_sched_decl_name(enum config_scheduler_kind k)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_sched_decls); i++)
		if (config_sched_decls[i].kind == k)
			return config_sched_decls[i].decl;
	return "scheduler";
}

static void config_sched_fill_all_builders(lua_State *L, const struct config *cfg,
					   struct config_scheduler *s)
{
	s->builders = dsl_new_strv(L, cfg->nbuilders);
	for (size_t i = 0; i < cfg->nbuilders; i++) {
		s->builders[i] =
			config_strdup(L, cfg->builder[i].name, strlen(cfg->builder[i].name));
		s->nbuilders = i + 1;
	}
}

void config_sched_finish(lua_State *L)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	bool have_force = false;
	for (size_t i = 0; i < cfg->nschedulers; i++) {
		struct config_scheduler *s = &cfg->scheduler[i];
		const char *decl = config_sched_decl_name(s->kind);
		if (s->kind == CONFIG_SCHED_FORCE)
			have_force = true;
		if (!s->builders) {
			if (cfg->nbuilders == 0)
				config_raise_at(L, s->line,
						"%s '%s': there are no builders to force", decl,
						s->name);
			config_sched_fill_all_builders(L, cfg, s);
		}
		for (size_t k = 0; k < s->nbuilders; k++)
			if (!dsl_registered(L, REG_BUILDERS, s->builders[k]))
				config_raise_at(L, s->line, "%s '%s': unknown builder '%s'", decl,
						s->name, s->builders[k]);
		if (s->upstream && !config_find_scheduler(cfg, s->upstream))
			config_raise_at(L, s->line, "%s '%s': unknown upstream scheduler '%s'",
					decl, s->name, s->upstream);
	}
	for (size_t i = 0; i < cfg->nbuilders; i++) {
		const struct config_builder *b = &cfg->builder[i];
		for (size_t k = 0; k < b->nsteps; k++) {
			const struct config_step *st = &b->steps[k];
			if (st->kind != CONFIG_STEP_TRIGGER)
				continue; /* the trigger fields share storage with others */
			for (size_t j = 0; j < st->ntrigger_schedulers; j++) {
				const struct config_scheduler *t =
					config_find_scheduler(cfg, st->trigger_schedulers[j]);
				if (!t || t->kind != CONFIG_SCHED_TRIGGERABLE)
					config_raise_at(L, st->line,
							"trigger '%s': '%s' is not a triggerable "
							"scheduler",
							st->name, st->trigger_schedulers[j]);
			}
		}
	}
	if (!have_force && cfg->nbuilders > 0 && !dsl_registered(L, REG_SCHEDULERS, "force")) {
		config_charge(L, sizeof(struct config_scheduler));
		ARRAY_GROW(cfg->scheduler, cfg->nschedulers + 1, cfg->scheduler_alloc);
		struct config_scheduler *s = &cfg->scheduler[cfg->nschedulers++];
		*s = (struct config_scheduler){.kind = CONFIG_SCHED_FORCE, .line = 0};
		s->name = config_strdup(L, "force", 5);
		config_sched_fill_all_builders(L, cfg, s);
	}
}

const struct config_scheduler *config_find_scheduler(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nschedulers; i++)
		if (!strcmp(cfg->scheduler[i].name, name))
			return &cfg->scheduler[i];
	return NULL;
}
