/*
 * Workers the master starts itself (issue 14): worker { latent = { ... } }
 * (started when a request needs one, stopped when idle; the runtime is
 * master/latent.c), local_worker { } (the master's own child kiln-worker,
 * Buildbot's LocalWorker) and the global latent_max_count.  Checked when
 * declared, with the line.  docs/CONFIG.md, "Latent and local workers".
 */
#include "config/config-internal.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LATENT_MAX_ARGS 256
#define LATENT_MAX_TIMEOUT (30.0 * 86400)

/* A command at t[key]: a list of strings (argv) or one string run by
 * /bin/sh -c.  NULL when absent. */
static char **config_latent_argv(lua_State *L, int t, const char *what, const char *key,
				 size_t *ret_n)
{
	int type = dsl_get(L, t, key);
	char **v = NULL;
	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		return NULL;
	}
	if (type == LUA_TSTRING) {
		size_t len;
		const char *s = lua_tolstring(L, -1, &len);
		if (len == 0)
			config_raise(L, "%s: '%s' must not be empty", what, key);
		v = dsl_new_strv(L, 3);
		v[0] = config_strdup(L, "/bin/sh", 7);
		v[1] = config_strdup(L, "-c", 2);
		v[2] = config_strdup(L, s, len);
		*ret_n = 3;
		lua_pop(L, 1);
		return v;
	}
	if (type != LUA_TTABLE)
		config_raise(L,
			     "%s: '%s' must be a command: a list of strings or a string run by "
			     "/bin/sh -c (got %s)",
			     what, key, dsl_typename(L, -1));
	size_t n = dsl_check_list(L, -1, what, key, "strings");
	if (n == 0)
		config_raise(L, "%s: '%s' must not be empty", what, key);
	if (n > LATENT_MAX_ARGS)
		config_raise(L, "%s: '%s' has more than %d arguments", what, key, LATENT_MAX_ARGS);
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i);
		if (lua_type(L, -1) != LUA_TSTRING)
			config_raise(L, "%s: %s[%zu] must be a string (got %s)", what, key, i,
				     dsl_typename(L, -1));
		lua_pop(L, 1);
	}
	v = dsl_new_strv(L, n);
	*ret_n = 0;
	/* v is owned by the caller's struct before anything can raise again */
	return v;
}

/* Fills argv v (from config_latent_argv's list at the top of the stack). */
static void config_latent_fill(lua_State *L, char **v, size_t *ret_n, size_t n)
{
	dsl_fill_list(L, -1, v, ret_n, n);
	lua_pop(L, 1);
}

static double config_latent_timeout(lua_State *L, int t, const char *what, const char *key,
				    double def, double min)
{
	int type = dsl_get(L, t, key);
	double v = def;
	if (type != LUA_TNIL) {
		if (type != LUA_TNUMBER)
			config_raise(L, "%s: latent '%s' must be a number of seconds (got %s)",
				     what, key, dsl_typename(L, -1));
		v = lua_tonumber(L, -1);
		if (!isfinite(v) || v < min || v > LATENT_MAX_TIMEOUT)
			config_raise(L, "%s: latent '%s' must be from %g to %g seconds (got %g)",
				     what, key, min, LATENT_MAX_TIMEOUT, v);
	}
	lua_pop(L, 1);
	return v;
}

/* The argv key of table t into *ret (list or string). */
static void config_latent_cmd(lua_State *L, int t, const char *what, const char *key, char ***ret,
			      size_t *ret_n)
{
	size_t n = 0;
	char **v = config_latent_argv(L, t, what, key, &n);
	if (!v)
		return;
	*ret = v;
	if (n) { /* a string: filled and popped already */
		*ret_n = n;
		return;
	}
	config_latent_fill(L, v, ret_n, lua_rawlen(L, -1));
}

static void config_latent_container(lua_State *L, const char *what, struct config_latent *l)
{
	static const char *const keys[] = {"engine",     "image",    "network",
					   "worker_bin", "run_args", NULL};
	int t = lua_gettop(L);
	if (lua_type(L, t) != LUA_TTABLE)
		config_raise(L,
			     "%s: latent 'container' must be a table: container = { engine = "
			     "\"podman\", image = \"...\" } (got %s)",
			     what, dsl_typename(L, t));
	char sub[300];
	snprintf(sub, sizeof(sub), "%s: latent container", what);
	dsl_check_keys(L, t, sub, keys);
	size_t len;
	const char *s = dsl_opt_string(L, t, sub, "engine", &len);
	if (!s)
		s = "podman", len = 6;
	if (strcmp(s, "podman") && strcmp(s, "docker"))
		config_raise(L, "%s: 'engine' must be \"podman\" or \"docker\" (got '%.40s')", sub,
			     s);
	l->engine = config_strdup(L, s, len);
	s = dsl_opt_string(L, t, sub, "image", &len);
	if (!s || !len)
		config_raise(L, "%s: 'image' is required: image = \"debian-kiln-worker\"", sub);
	if (s[0] == '-')
		config_raise(L, "%s: 'image' may not start with '-'", sub);
	l->image = config_strdup(L, s, len);
	s = dsl_opt_string(L, t, sub, "network", &len);
	if (s && (!len || s[0] == '-'))
		config_raise(L, "%s: 'network' must be a network name", sub);
	l->network = s ? config_strdup(L, s, len) : config_strdup(L, "host", 4);
	s = dsl_opt_string(L, t, sub, "worker_bin", &len);
	if (s && !len)
		config_raise(L, "%s: 'worker_bin' must not be empty", sub);
	l->worker_bin = s ? config_strdup(L, s, len) : config_strdup(L, "kiln-worker", 11);
	if (dsl_get(L, t, "run_args") != LUA_TNIL) {
		size_t n = dsl_check_list(L, -1, sub, "run_args", "strings");
		if (n > LATENT_MAX_ARGS)
			config_raise(L, "%s: 'run_args' has more than %d arguments", sub,
				     LATENT_MAX_ARGS);
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i);
			if (lua_type(L, -1) != LUA_TSTRING)
				config_raise(L, "%s: run_args[%zu] must be a string (got %s)", sub,
					     i, dsl_typename(L, -1));
			lua_pop(L, 1);
		}
		l->run_args = dsl_new_strv(L, n);
		dsl_fill_list(L, -1, l->run_args, &l->nrun_args, n);
	}
	lua_pop(L, 1);
}

/* The master makes BASEDIR/workers/NAME and a container name of it. */
static void config_latent_check_name(lua_State *L, const char *what, const char *name)
{
	bool ok = name[0] != '.' && name[0] != '-';
	for (const char *p = name; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		     (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
	if (!ok)
		config_raise(L,
			     "%s: the name of a worker the master starts must be letters, digits, "
			     "'.', '_' or '-', not starting with '.' or '-'",
			     what);
}

void config_latent_read(lua_State *L, const char *what, struct config_worker *w)
{
	static const char *const keys[] = {
		"start",         "stop",         "container", "idle_timeout",
		"start_timeout", "stop_timeout", NULL};
	int type = dsl_get(L, 1, "latent");
	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (type != LUA_TTABLE)
		config_raise(L,
			     "%s: 'latent' must be a table: latent = { start = { ... }, "
			     "idle_timeout = 600 } (got %s)",
			     what, dsl_typename(L, -1));
	int t = lua_gettop(L);
	char sub[300];
	snprintf(sub, sizeof(sub), "%s: latent", what);
	dsl_check_keys(L, t, sub, keys);
	config_latent_check_name(L, what, w->name);
	config_charge(L, sizeof(*w->latent));
	struct config_latent *l = xcalloc(1, sizeof(*l));
	w->latent = l; /* owned by w from here: a raise frees it with the config */
	l->idle_timeout = config_latent_timeout(L, t, what, "idle_timeout", 600, 1);
	l->start_timeout = config_latent_timeout(L, t, what, "start_timeout", 120, 1);
	l->stop_timeout = config_latent_timeout(L, t, what, "stop_timeout", 60, 1);
	bool has_container = dsl_get(L, t, "container") != LUA_TNIL;
	lua_pop(L, 1);
	bool has_start = dsl_get(L, t, "start") != LUA_TNIL;
	lua_pop(L, 1);
	if (has_container && has_start)
		config_raise(L, "%s: give 'start' (a command) or 'container', not both", sub);
	if (!has_container && !has_start)
		config_raise(L,
			     "%s: 'start' is required: start = { \"ssh\", \"host\", "
			     "\"kiln-worker start DIR\" } (or container = { ... })",
			     sub);
	if (has_container) {
		l->kind = CONFIG_LATENT_CONTAINER;
		lua_getfield(L, t, "container");
		config_latent_container(L, what, l);
		if (dsl_get(L, t, "stop") != LUA_TNIL)
			config_raise(L, "%s: a container is stopped by its engine: no 'stop'", sub);
		lua_pop(L, 1);
	} else {
		l->kind = CONFIG_LATENT_COMMAND;
		config_latent_cmd(L, t, sub, "start", &l->start, &l->nstart);
		config_latent_cmd(L, t, sub, "stop", &l->stop, &l->nstop);
	}
	lua_pop(L, 1);
}

void config_latent_free(struct config_latent *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nstart; i++)
		free(l->start[i]);
	free(l->start);
	for (size_t i = 0; i < l->nstop; i++)
		free(l->stop[i]);
	free(l->stop);
	for (size_t i = 0; i < l->nrun_args; i++)
		free(l->run_args[i]);
	free(l->run_args);
	free(l->engine);
	free(l->image);
	free(l->network);
	free(l->worker_bin);
	free(l);
}

/* local_worker { name = "w1", max_builds = 2, properties = { } } */
static int config_latent_local_worker(lua_State *L)
{
	static const char *const keys[] = {"name", "max_builds", "properties", NULL};
	struct config *cfg = config_ctx_of(L)->cfg;
	int line = config_line(L);
	char what[256];

	dsl_check_table_arg(L, "local_worker");
	dsl_what(L, what, sizeof(what), "local_worker", NULL);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_req_name(L, 1, what, "name");
	dsl_check_unique(L, REG_WORKERS, "worker", name);
	config_latent_check_name(L, what, name);
	long long max_builds = dsl_opt_int(L, 1, what, "max_builds", 1, 1, 1000);

	config_charge(L, sizeof(struct config_worker));
	ARRAY_GROW(cfg->worker, cfg->nworkers + 1, cfg->worker_alloc);
	struct config_worker *w = &cfg->worker[cfg->nworkers++];
	*w = (struct config_worker){.max_builds = (int)max_builds,
				    .line = line,
				    .local = true,
				    .missing_timeout = 3600};
	w->name = config_strdup(L, name, strlen(name));
	w->password = config_strdup(L, "", 0);
	config_sched_props(L, 1, what, "properties", &w->props, &w->nprops);
	dsl_register(L, REG_WORKERS, name, line);
	lua_pushstring(L, name);
	return 1;
}

void config_latent_open(lua_State *L)
{
	lua_register(L, "local_worker", config_latent_local_worker);
}

bool config_latent_setting(lua_State *L, const char *key)
{
	if (strcmp(key, "latent_max_count"))
		return false;
	int isint = 0;
	lua_Integer v = lua_tointegerx(L, 3, &isint);
	if (lua_type(L, 3) != LUA_TNUMBER || !isint || v < 0 || v > 1000000)
		config_raise(L,
			     "'latent_max_count' must be a whole number from 0 (no limit) to "
			     "1000000 (got %s)",
			     lua_type(L, 3) == LUA_TNUMBER ? lua_tostring(L, 3)
							   : dsl_typename(L, 3));
	config_ctx_of(L)->cfg->latent_max_count = (int)v;
	return true;
}
