/*
 * The master.lua vocabulary: the settings (title, http, database, ...) and
 * worker { }, and the setup and final checks of a load.  The other
 * declarations have their own files: secret() config-secret.c, shell { }
 * config-step.c, builder { } config-builder.c, the schedulers and
 * trigger { } config-sched.c, the pollers config-changes.c.  Each checks its
 * table when called (so errors carry the declaration's line) and copies it
 * straight into struct config.
 */
#include "config/config-internal.h"
#include "config/config-reporter.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REG_SETTINGS "kiln.settings"

/* ---- settings ----------------------------------------------------------- */

static void config_dsl_check_url(lua_State *L, const char *key, const char *s, size_t len)
{
	bool ok = (!strncmp(s, "http://", 7) && len > 7) || (!strncmp(s, "https://", 8) && len > 8);
	for (size_t i = 0; ok && i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			ok = false;
	if (!ok)
		config_raise(L, "'%s' must be an http:// or https:// URL (got '%.60s')", key, s);
}

static void config_dsl_set_listen(lua_State *L, const char *key, const char *s,
				  struct config_listen *l)
{
	struct config_listen nl;
	if (config_parse_listen(s, &nl) < 0)
		config_raise(L,
			     "'%s' must be HOST:PORT with a numeric address or localhost and a "
			     "port 0-65535 (got '%.60s')",
			     key, s);
	free(l->host);
	*l = nl;
}

/* The database URL rule, for master.lua's 'database' and KILN_DATABASE:
 * NULL when s is one, else the message: "sqlite:PATH", or a libpq URL
 * "postgresql://..." / "postgres://..." (issue 14; libpq checks the rest
 * when the master opens it, and the URL is never echoed: it may carry a
 * password). */
char *config_database_check(const char *s, size_t len)
{
	bool pg = !strncmp(s, "postgresql://", 13) || !strncmp(s, "postgres://", 11);
	if (pg && strlen(s) != len) /* KILN_DATABASE's; master.lua's are refused before */
		return xasprintf("database '%s//...': the URL holds a NUL byte",
				 s[8] == ':' ? "postgres:" : "postgresql:");
	if (!pg && (strncmp(s, "sqlite:", 7) || len <= 7 || strlen(s) != len))
		return xasprintf("'database' must be \"sqlite:PATH\" or \"postgresql://...\" "
				 "(got '%.60s')",
				 s);
	return NULL;
}

static void config_dsl_replace(char **field, char *v)
{
	free(*field);
	*field = v;
}

/* __newindex of the global table: every global assignment lands here, so
 * a misspelt setting is an error instead of being silently ignored. */
static int config_dsl_setting(lua_State *L)
{
	struct config_ctx *ctx = config_ctx_of(L);
	struct config *cfg = ctx->cfg;
	if (ctx->loaded)
		return config_raise(L, "cannot set globals from a function run by the master");
	if (lua_type(L, 2) != LUA_TSTRING)
		return config_raise(L, "cannot set a global with a %s key", luaL_typename(L, 2));
	const char *key = lua_tostring(L, 2);
	size_t len;
	const char *s;

	if (!strcmp(key, "title")) {
		s = dsl_check_string(L, 3, "setting", key, &len);
		config_dsl_replace(&cfg->title, config_strdup(L, s, len));
	} else if (!strcmp(key, "title_url") || !strcmp(key, "url")) {
		s = dsl_check_string(L, 3, "setting", key, &len);
		config_dsl_check_url(L, key, s, len);
		config_dsl_replace(key[0] == 'u' ? &cfg->url : &cfg->title_url,
				   config_strdup(L, s, len));
	} else if (!strcmp(key, "http")) {
		if (lua_type(L, 3) != LUA_TTABLE)
			return config_raise(L, "'http' must be a table: http = { listen = \"%s\" }",
					    "127.0.0.1:8010");
		static const char *const keys[] = {"listen", NULL};
		dsl_check_keys(L, 3, "http", keys);
		s = dsl_opt_string(L, 3, "http", "listen", &len);
		if (s)
			config_dsl_set_listen(L, "http.listen", s, &cfg->http);
		ctx->http_line = config_line(L);
	} else if (!strcmp(key, "workers_listen")) {
		s = dsl_check_string(L, 3, "setting", key, &len);
		config_dsl_set_listen(L, key, s, &cfg->workers);
		ctx->workers_line = config_line(L);
	} else if (!strcmp(key, "database")) {
		s = dsl_check_string(L, 3, "setting", key, &len);
		char *bad = config_database_check(s, len);
		if (bad) { /* the raise does not return: the message moves to Lua first */
			lua_pushstring(L, bad);
			free(bad);
			return config_raise(L, "%s", lua_tostring(L, -1));
		}
		config_dsl_replace(&cfg->db_url, config_strdup(L, s, len));
	} else if (!strcmp(key, "masters")) {
		/* several masters on one PostgreSQL: heartbeats (docs/SCALING.md) */
		if (lua_type(L, 3) != LUA_TTABLE)
			return config_raise(L, "'masters' must be a table: masters = { heartbeat "
					       "= 5, dead_after = 30 }");
		static const char *const keys[] = {"heartbeat", "dead_after", NULL};
		dsl_check_keys(L, 3, "masters", keys);
		double hb = dsl_opt_seconds(L, 3, "masters", "heartbeat", 5);
		double dead = dsl_opt_seconds(L, 3, "masters", "dead_after", 30);
		if (hb < 0.1)
			return config_raise(L, "masters: 'heartbeat' must be at least 0.1 seconds");
		if (dead < 2 * hb)
			return config_raise(L,
					    "masters: 'dead_after' (%g s) must be at least twice "
					    "'heartbeat' (%g s): a master is not declared dead for "
					    "one late heartbeat",
					    dead, hb);
		cfg->master_heartbeat = hb;
		cfg->master_dead_after = dead;
	} else if (config_sched_setting(L, key)) {
		/* schedulers and queue settings (config-sched.c) */
	} else if (!strcmp(key, "properties")) {
		/* global properties: the first layer of every build's */
		lua_settop(L, 3);
		lua_newtable(L);
		lua_pushvalue(L, 3);
		lua_setfield(L, -2, "properties");
		config_prop_free(cfg->props, cfg->nprops);
		cfg->props = NULL;
		cfg->nprops = 0;
		config_sched_props(L, 4, "setting", "properties", &cfg->props, &cfg->nprops);
		lua_settop(L, 3);
	} else if (config_changes_setting(L, key)) {
		/* change_hook (config-changes.c) */
	} else if (config_tsdb_setting(L, key)) {
		/* metrics_push (config-tsdb.c) */
	} else if (config_numbers_setting(L, key)) {
		/* regression thresholds (config-numbers.c) */
	} else if (config_dispatch_setting(L, key)) {
		/* prioritize_builders (config-dispatch.c) */
	} else if (config_artifacts_setting(L, key)) {
		/* artifact retention (config-artifacts.c) */
	} else if (config_push_setting(L, key)) {
		/* push caps, expected_reporters (config-push.c, slice "push") */
	} else if (config_auth_setting(L, key)) {
		/* web login and roles (config-auth.c, slice "weblogin") */
	} else if (config_log_setting(L, key)) {
		/* log_format (config-log.c, slice "operator") */
	} else if (config_latent_setting(L, key)) {
		/* latent_max_count (config-latent.c) */
	} else if (config_workers_setting(L, key)) {
		/* workers_reattach_grace, workers_keepalive (config-workers.c, slice "reattach") */
	} else
		return config_raise(L,
				    "unknown setting '%.60s' (declare your own variables with "
				    "'local')",
				    key);

	lua_getfield(L, LUA_REGISTRYINDEX, REG_SETTINGS);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, -3);
	return 0;
}

/* ---- worker { } ---------------------------------------------------------- */

/* notify_on_missing = { "ops@example.org" } (or one string), missing_timeout
 * = 3600: Buildbot's names; the alert: master/reporters/alerts.c. */
static void config_dsl_worker_missing(lua_State *L, const char *what, struct config_worker *w)
{
	w->missing_timeout = dsl_opt_seconds(L, 1, what, "missing_timeout", 3600);
	if (!(w->missing_timeout > 0 && w->missing_timeout <= 30 * 86400))
		config_raise(L, "%s: 'missing_timeout' must be more than 0 and at most 30 days",
			     what);
	int t = dsl_get(L, 1, "notify_on_missing");
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	size_t n = 1;
	if (t == LUA_TTABLE)
		n = dsl_check_list(L, -1, what, "notify_on_missing", "addresses");
	else if (t != LUA_TSTRING)
		config_raise(L,
			     "%s: 'notify_on_missing' must be an address or a list of addresses: "
			     "notify_on_missing = { \"ops@example.org\" } (got %s)",
			     what, dsl_typename(L, -1));
	if (n > 64)
		config_raise(L, "%s: 'notify_on_missing' lists more than 64 addresses", what);
	config_charge(L, (n + 1) * sizeof(char *));
	w->notify_on_missing = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 1; i <= n; i++) {
		if (t == LUA_TTABLE)
			lua_rawgeti(L, -1, (lua_Integer)i);
		else
			lua_pushvalue(L, -1);
		if (lua_type(L, -1) != LUA_TSTRING)
			config_raise(L, "%s: notify_on_missing[%zu] must be a string (got %s)",
				     what, i, dsl_typename(L, -1));
		size_t len;
		const char *a = lua_tolstring(L, -1, &len);
		config_reporter_check_address(L, what, "notify_on_missing", a, len);
		w->notify_on_missing[w->nnotify_on_missing++] = config_strdup(L, a, len);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

static int config_dsl_worker(lua_State *L)
{
	// clang-format off
	static const char *const keys[] = {
		"name", "password", "max_builds", "properties", "notify_on_missing",
		"missing_timeout", "reattach_grace", "latent", NULL,
	};
	// clang-format on
	struct config *cfg = config_ctx_of(L)->cfg;
	int line = config_line(L);
	char what[256];

	dsl_check_table_arg(L, "worker");
	dsl_what(L, what, sizeof(what), "worker", NULL);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_req_name(L, 1, what, "name");
	dsl_check_unique(L, REG_WORKERS, "worker", name);

	int t = dsl_get(L, 1, "password");
	if (t == LUA_TNIL)
		return config_raise(L, "%s: 'password' is required: password = secret(\"%s\")",
				    what, name);
	if (t == LUA_TSTRING)
		return config_raise(L, "%s: password must come from secret(...)", what);
	struct dsl_secret *sec = luaL_testudata(L, -1, MT_SECRET);
	if (!sec)
		return config_raise(L, "%s: 'password' must be a secret(...) (got %s)", what,
				    dsl_typename(L, -1));
	long long max_builds = dsl_opt_int(L, 1, what, "max_builds", 1, 1, 1000000);
	/* issue 13: this worker's own workers_reattach_grace (-1: unset) */
	long long grace =
		dsl_opt_int(L, 1, what, "reattach_grace", -1, 0, CONFIG_REATTACH_GRACE_MAX);

	config_charge(L, sizeof(struct config_worker));
	ARRAY_GROW(cfg->worker, cfg->nworkers + 1, cfg->worker_alloc);
	struct config_worker *w = &cfg->worker[cfg->nworkers++];
	*w = (struct config_worker){.max_builds = (int)max_builds,
				    .line = line,
				    .reattach_grace = grace < 0 ? 0 : (int)grace,
				    .reattach_grace_set = grace >= 0};
	w->name = config_strdup(L, name, strlen(name));
	w->password = config_strdup(L, sec->value, strlen(sec->value));
	config_sched_props(L, 1, what, "properties", &w->props, &w->nprops);
	config_dsl_worker_missing(L, what, w);
	config_latent_read(L, what, w); /* latent = { } (config-latent.c) */
	dsl_register(L, REG_WORKERS, name, line);
	lua_pushstring(L, name);
	return 1;
}

/* ---- setup and final checks ---------------------------------------------- */

void config_dsl_open(lua_State *L)
{
	static const char *const regs[] = {REG_WORKERS, REG_BUILDERS, REG_SCHEDULERS, REG_SETTINGS};
	for (size_t i = 0; i < ARRAY_SIZE(regs); i++) {
		lua_newtable(L);
		lua_setfield(L, LUA_REGISTRYINDEX, regs[i]);
	}

	lua_register(L, "worker", config_dsl_worker);
	config_secret_open(L);  /* secret() (config-secret.c) */
	config_step_open(L);    /* shell {} (config-step.c) */
	config_builder_open(L); /* builder {} (config-builder.c) */
	config_sched_open(L);   /* schedulers, trigger {} (config-sched.c) */
	config_changes_open(L); /* git_poller, hg_poller, svn_poller (config-changes.c) */
	config_lock_open(L);    /* master_lock, worker_lock (config-lock.c) */
	config_latent_open(L);  /* local_worker (config-latent.c) */
	/* reporter { } (config-reporter.c) */
	config_reporter_open(L);

	/* settings live in a side table: reads fall through to it, writes are checked */
	lua_pushglobaltable(L);
	lua_createtable(L, 0, 2);
	lua_getfield(L, LUA_REGISTRYINDEX, REG_SETTINGS);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, config_dsl_setting);
	lua_setfield(L, -2, "__newindex");
	lua_setmetatable(L, -2);
	lua_pop(L, 1);
}

void config_dsl_finish(lua_State *L)
{
	struct config_ctx *ctx = config_ctx_of(L);
	struct config *cfg = ctx->cfg;

	for (size_t i = 0; i < cfg->nbuilders; i++) {
		const struct config_builder *b = &cfg->builder[i];
		for (size_t k = 0; k < b->nworkers; k++)
			if (!dsl_registered(L, REG_WORKERS, b->workers[k]))
				config_raise_at(
					L, b->line,
					"builder '%s': unknown worker '%s' (declare it with "
					"worker { name = \"%s\", ... })",
					b->name, b->workers[k], b->workers[k]);
	}

	config_sched_finish(L); /* scheduler references, the implicit force scheduler */
	config_lock_finish(L);  /* max_count_for_worker's workers (config-lock.c) */
	/* reporters' builders (config-reporter.c) */
	config_reporter_finish(L);

	if (cfg->http.port != 0 && cfg->http.port == cfg->workers.port &&
	    !strcmp(cfg->http.host, cfg->workers.host))
		config_raise_at(L, ctx->workers_line ? ctx->workers_line : ctx->http_line,
				"workers_listen '%s:%d' is the same address as http.listen",
				cfg->workers.host, cfg->workers.port);
}

int config_parse_listen(const char *text, struct config_listen *ret)
{
	char host[64];
	const char *port;
	size_t hlen;

	if (!text)
		return -EINVAL;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - text - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return -EINVAL;
		port = close + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - text);
		if (hlen == 0 || hlen >= sizeof(host) || memchr(text, ':', hlen))
			return -EINVAL;
		memcpy(host, text, hlen);
		host[hlen] = '\0';
		struct in_addr a4;
		if (strcmp(host, "localhost") && inet_pton(AF_INET, host, &a4) != 1)
			return -EINVAL;
		port = colon + 1;
	}
	unsigned long long p;
	if (str_to_u64(str_from(port), &p) < 0 || p > 65535)
		return -EINVAL;
	ret->host = xstrdup(host);
	ret->port = (int)p;
	return 0;
}
