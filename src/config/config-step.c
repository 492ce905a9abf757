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
#include "common/interp.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
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
	{"git", CONFIG_STEP_GIT, config_step_git, config_step_source_copy,
	 config_step_source_release},
	{"compile", CONFIG_STEP_COMPILE, config_step_compile, config_step_compile_copy,
	 config_step_compile_release},
	{"file_upload", CONFIG_STEP_FILE_UPLOAD, config_step_file_upload, config_step_transfer_copy,
	 config_step_transfer_release},
	{"directory_upload", CONFIG_STEP_DIRECTORY_UPLOAD, config_step_directory_upload,
	 config_step_transfer_copy, config_step_transfer_release},
	{"file_download", CONFIG_STEP_FILE_DOWNLOAD, config_step_file_download,
	 config_step_transfer_copy, config_step_transfer_release},
	{"string_download", CONFIG_STEP_STRING_DOWNLOAD, config_step_string_download,
	 config_step_transfer_copy, config_step_transfer_release},
	{"json_properties_download", CONFIG_STEP_JSON_PROPERTIES_DOWNLOAD,
	 config_step_json_properties_download, config_step_transfer_copy,
	 config_step_transfer_release},
	{"test", CONFIG_STEP_TEST, config_step_test, config_step_test_copy,
	 config_step_test_release},
	{"hg", CONFIG_STEP_HG, config_step_hg, config_step_source_copy, config_step_source_release},
	{"svn", CONFIG_STEP_SVN, config_step_svn, config_step_source_copy,
	 config_step_source_release},
	{"bzr", CONFIG_STEP_BZR, config_step_bzr, config_step_source_copy,
	 config_step_source_release},
	{"darcs", CONFIG_STEP_DARCS, config_step_darcs, config_step_source_copy,
	 config_step_source_release},
	{"cvs", CONFIG_STEP_CVS, config_step_cvs, config_step_source_copy,
	 config_step_source_release},
	/* slice "misc" (config-step-props.c) */
	{"set_property", CONFIG_STEP_SETPROP, config_step_set_property, config_step_props_copy,
	 config_step_props_release},
	{"set_properties", CONFIG_STEP_SETPROP, config_step_set_properties, config_step_props_copy,
	 config_step_props_release},
	{"set_property_from_command", CONFIG_STEP_PROPCMD, config_step_propcmd,
	 config_step_props_copy, config_step_props_release},
	{"log", CONFIG_STEP_LOG, config_step_log, config_step_log_copy, config_step_log_release},
	{"master_shell", CONFIG_STEP_MASTERSHELL, config_step_master_shell, NULL, NULL},
	/* slice "measure" (config-step-measure.c) */
	{"tree_size", CONFIG_STEP_TREE_SIZE, config_step_tree_size, NULL, NULL},
	{"deb_build", CONFIG_STEP_DEB_BUILD, config_step_deb_build, NULL, NULL},
	{"deb_lintian", CONFIG_STEP_DEB_LINTIAN, config_step_deb_lintian, NULL, NULL},
};

static const struct config_step_decl *config_step_decl_of(enum config_step_kind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_step_decls); i++)
		if (config_step_decls[i].kind == kind)
			return &config_step_decls[i];
	return NULL;
}

/* A kind's declaration, then the options every kind takes (do_step_if,
 * description, ...: config-step-props.c) from the same table. */
static int config_step_declare(lua_State *L)
{
	const struct config_step_decl *d =
		&config_step_decls[lua_tointeger(L, lua_upvalueindex(1))];
	struct config_ctx *ctx = config_ctx_of(L);
	config_collect_if_tight(L);
	if (lua_gettop(L) != 0) /* apply_patch() takes no table */
		dsl_check_table_arg(L, d->name);
	size_t charged = ctx->c_charged;
	int n = d->declare(L);
	struct config_step *s = luaL_testudata(L, -1, MT_STEP);
	if (s) {
		config_step_options(L, d->name, s);
		/* all of it owned by the step: given back by config_step_gc */
		charged = ctx->c_charged - charged;
		s->decl_charged = charged > UINT_MAX ? UINT_MAX : (unsigned)charged;
	}
	return n;
}

/* ---- the step userdata ---------------------------------------------------- */

/* A declaration no longer reachable: its C copies leave the load's count
 * too, so a step declared per builder (and copied into it) is charged
 * once, not twice. */
static int config_step_gc(lua_State *L)
{
	struct config_step *s = lua_touserdata(L, 1);
	struct config_ctx *ctx = config_ctx_of(L);
	size_t n = s->decl_charged;
	if (n <= ctx->c_charged && n <= ctx->mem_used) {
		ctx->c_charged -= n;
		ctx->mem_used -= n;
	}
	config_step_release(s);
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
	config_read_env(L, 1, what, &step->env, &step->nenv);
}

void config_read_env(lua_State *L, int arg, const char *what, struct config_env **ret_env,
		     size_t *ret_n)
{
	if (dsl_get(L, arg, "env") == LUA_TNIL) {
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
	*ret_env = xcalloc(n ? n : 1, sizeof(struct config_env));
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
			if (lua_type(L, -1) == LUA_TFUNCTION || luaL_testudata(L, -1, MT_INTERP))
				break; /* a renderable */
			sec = luaL_testudata(L, -1, MT_SECRET);
			if (!sec)
				config_raise(L,
					     "%s: env: '%.60s' must be a string, a number, "
					     "secret(...), interpolate(...), a function or false "
					     "to unset (got %s)",
					     what, k, dsl_typename(L, -1));
			v = sec->value;
			vlen = strlen(v);
		}
		struct config_env *e = &(*ret_env)[(*ret_n)++];
		e->name = config_strdup(L, k, klen);
		if (lua_type(L, -1) == LUA_TFUNCTION || luaL_testudata(L, -1, MT_INTERP))
			config_read_rstr(L, lua_gettop(L), what, "env", &e->value);
		else
			e->value.text = v ? config_strdup(L, v, vlen) : NULL;
		lua_pop(L, 1);
	}
	qsort(*ret_env, *ret_n, sizeof(**ret_env), config_step_env_cmp);
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

/* ---- renderables --------------------------------------------------------- */

int config_ref_fn(lua_State *L, int idx)
{
	config_ctx_of(L)->keep_lua = true;
	lua_pushvalue(L, idx);
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* interpolate("template"): Buildbot's Interpolate, checked now, rendered
 * when the step starts. */
static int config_step_interpolate(lua_State *L)
{
	size_t len;
	const char *t = dsl_check_string(L, 1, "interpolate", "template", &len);
	if (strlen(t) != len)
		return config_raise(L, "interpolate: the template must not contain NUL bytes");
	if (len > KILN_INTERP_MAX_OUT)
		return config_raise(L, "interpolate: the template is over %u bytes",
				    (unsigned)KILN_INTERP_MAX_OUT);
	char *err = NULL;
	if (interp_check(t, len, &err) < 0) {
		lua_pushfstring(L, "interpolate: %s", err ? err : "invalid template");
		free(err);
		return config_raise(L, "%s", lua_tostring(L, -1));
	}
	/* the secrets it names are read now (and masked from here on) */
	for (const char *p = strstr(t, "%(secret:"); p; p = strstr(p + 1, "%(secret:")) {
		const char *n = p + 9;
		size_t nlen = strcspn(n, ":)");
		if (nlen)
			config_secret_named(L, n, nlen);
	}
	char **ud = lua_newuserdatauv(L, sizeof(char *), 1 /* fp (config-fp.c) */);
	*ud = NULL;
	luaL_setmetatable(L, MT_INTERP);
	*ud = config_strdup(L, t, len);
	return 1;
}

static int config_step_interp_gc(lua_State *L)
{
	char **ud = lua_touserdata(L, 1);
	free(*ud);
	*ud = NULL;
	return 0;
}

static int config_step_interp_tostring(lua_State *L)
{
	char **ud = lua_touserdata(L, 1);
	lua_pushfstring(L, "interpolate(\"%s\")", *ud ? *ud : "");
	return 1;
}

void config_read_rstr(lua_State *L, int idx, const char *what, const char *key,
		      struct config_rstr *out)
{
	size_t len;
	const char *s;
	char **tmpl;
	switch (lua_type(L, idx)) {
	case LUA_TFUNCTION:
		out->fn = config_ref_fn(L, idx);
		return;
	case LUA_TUSERDATA:
		tmpl = luaL_testudata(L, idx, MT_INTERP);
		if (!tmpl)
			break;
		out->text = config_strdup(L, *tmpl, strlen(*tmpl));
		out->interp = true;
		return;
	case LUA_TNUMBER:
		lua_pushvalue(L, idx); /* numbers: convert a copy, not the user's table */
		s = lua_tolstring(L, -1, &len);
		out->text = config_strdup(L, s, len);
		lua_pop(L, 1);
		return;
	default:
		s = dsl_check_string(L, idx, what, key, &len);
		if (strlen(s) != len)
			config_raise(L, "%s: '%s' must not contain NUL bytes", what, key);
		out->text = config_strdup(L, s, len);
	}
}

void config_rstr_copy(lua_State *L, struct config_rstr *dst, const struct config_rstr *src)
{
	/* never shares src's text, even when the copy raises */
	*dst = (struct config_rstr){.fn = src->fn, .interp = src->interp};
	if (src->text)
		dst->text = config_strdup(L, src->text, strlen(src->text));
}

/* ---- copies into builders ------------------------------------------------- */

/* Deep-copies a step declared with shell { } (or a scheduler step) into a builder. */
void config_step_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	*dst = *src;
	dst->decl_charged = 0; /* charged below, for the config's lifetime */
	dst->name = dst->workdir = NULL;
	dst->command.text = NULL;
	dst->argv = NULL;
	dst->nargv = 0;
	dst->env = NULL;
	dst->nenv = 0;
	dst->locks = NULL; /* never shared with src, even when a copy below raises */
	dst->nlocks = 0;
	dst->source = NULL;             /* the kind's own pointer (one union with warnings, ...) */
	dst->trigger_schedulers = NULL; /* the kind's own fields (a union, config.h) */
	dst->ntrigger_schedulers = 0;
	dst->set_properties = NULL;
	dst->nset_properties = 0;
	dst->property = dst->extract = NULL;
	dst->description.text = dst->description_done.text = NULL;
	dst->decode_rc = NULL;
	dst->ndecode_rc = 0;
	dst->logfiles = NULL; /* slice "logfiles" */
	dst->nlogfiles = 0;
	config_step_options_copy(L, dst, src); /* slice "misc" */
	const struct config_step_decl *d = config_step_decl_of(src->kind);
	if (d && d->copy)
		d->copy(L, dst, src);
	config_lock_step_copy(L, dst, src);     /* locks (config-lock.c) */
	config_step_logfiles_copy(L, dst, src); /* slice "logfiles" (config-step-shell.c) */
	dst->name = config_strdup(L, src->name, strlen(src->name));
	dst->workdir = src->workdir ? config_strdup(L, src->workdir, strlen(src->workdir)) : NULL;
	config_rstr_copy(L, &dst->command, &src->command);
	if (src->argv) {
		config_charge(L, src->nargv * sizeof(*dst->argv));
		dst->argv = xcalloc(src->nargv ? src->nargv : 1, sizeof(*dst->argv));
		for (size_t i = 0; i < src->nargv; i++) {
			config_rstr_copy(L, &dst->argv[i], &src->argv[i]);
			dst->nargv = i + 1;
		}
	}
	if (src->nenv) {
		config_charge(L, src->nenv * sizeof(struct config_env));
		dst->env = xcalloc(src->nenv, sizeof(struct config_env));
		for (size_t i = 0; i < src->nenv; i++) {
			struct config_env *e = &dst->env[dst->nenv++];
			e->name = config_strdup(L, src->env[i].name, strlen(src->env[i].name));
			config_rstr_copy(L, &e->value, &src->env[i].value);
		}
	}
}

void config_env_free(struct config_env *env, size_t n)
{
	for (size_t i = 0; env && i < n; i++) {
		free(env[i].name);
		free(env[i].value.text);
	}
	free(env);
}

void config_step_release(struct config_step *s)
{
	free(s->name);
	for (size_t i = 0; s->argv && i < s->nargv; i++)
		free(s->argv[i].text);
	free(s->argv);
	free(s->command.text);
	config_env_free(s->env, s->nenv);
	free(s->workdir);
	free(s->locks);                  /* config-lock.c */
	config_step_options_release(s);  /* slice "misc" */
	config_step_logfiles_release(s); /* slice "logfiles" */
	const struct config_step_decl *d = config_step_decl_of(s->kind);
	if (d && d->release)
		d->release(s);
	memset(s, 0, sizeof(*s));
}

void config_step_open(lua_State *L)
{
	dsl_new_type(L, MT_STEP, "step", config_step_gc, config_step_tostring);
	lua_pop(L, 1);
	for (size_t i = 0; i < ARRAY_SIZE(config_step_decls); i++) {
		lua_pushinteger(L, (lua_Integer)i);
		lua_pushcclosure(L, config_step_declare, 1);
		lua_setglobal(L, config_step_decls[i].name);
	}
	dsl_new_type(L, MT_INTERP, "interpolate", config_step_interp_gc,
		     config_step_interp_tostring);
	lua_pop(L, 1);
	lua_register(L, "interpolate", config_step_interpolate);
}
