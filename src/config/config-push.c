/*
 * Results pushed from outside (slice "push", docs/PUSH.md, docs/CONFIG.md
 * "push" and "expected_reporters"): the caps one API token may use,
 *   push = { max_body_bytes = 1048576, max_steps = 200, max_log_bytes = 262144,
 *            per_minute = 600, max_results = 10000 }
 * and the reporters the master expects to hear from,
 *   expected_reporters = { { package = "kiln", host = "ci-arm", interval = 3600 } }
 * Checked when set (errors carry the line), kept in struct config's push.
 */
#include "config/config-internal.h"
#include "common/limits.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

static struct config_push *config_push_of(lua_State *L)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	if (!cfg->push) {
		cfg->push = calloc(1, sizeof(*cfg->push));
		if (!cfg->push)
			luaL_error(L, "not enough memory");
		config_push_defaults(cfg->push);
	}
	return cfg->push;
}

void config_push_defaults(struct config_push *p)
{
	p->max_body_bytes = KILN_MAX_HTTP_BODY;
	p->max_steps = 200;
	p->max_log_bytes = 256u << 10;
	p->per_minute = 600;
	p->max_results = 10000;
	p->open_timeout = 3600;
}

static void config_push_expected_free(struct config_push *p)
{
	for (size_t i = 0; i < p->nexpected; i++) {
		free(p->expected[i].package);
		free(p->expected[i].host);
	}
	free(p->expected);
	p->expected = NULL;
	p->nexpected = 0;
}

static void config_push_caps(lua_State *L)
{
	static const char *const keys[] = {
		"max_body_bytes", "max_steps", "max_log_bytes", "per_minute", "max_results",
		"open_timeout",   NULL};
	static const char *const what = "push";
	if (lua_type(L, 3) != LUA_TTABLE)
		config_raise(L, "'push' must be a table: push = { max_body_bytes = 1048576, "
				"max_steps = 200, max_log_bytes = 262144, per_minute = 600, "
				"max_results = 10000 }");
	dsl_check_keys(L, 3, what, keys);
	struct config_push *p = config_push_of(L);
	struct config_push d;
	config_push_defaults(&d);
	p->max_body_bytes =
		(uint64_t)dsl_opt_int(L, 3, what, "max_body_bytes", (long long)d.max_body_bytes,
				      1024, KILN_MAX_HTTP_BODY);
	p->max_steps = dsl_opt_int(L, 3, what, "max_steps", d.max_steps, 1, 10000);
	p->max_log_bytes = (uint64_t)dsl_opt_int(L, 3, what, "max_log_bytes",
						 (long long)d.max_log_bytes, 1, KILN_MAX_HTTP_BODY);
	p->per_minute = dsl_opt_int(L, 3, what, "per_minute", d.per_minute, 1, 1000000);
	p->max_results = dsl_opt_int(L, 3, what, "max_results", d.max_results, 1, 100000000);
	p->open_timeout = dsl_opt_seconds(L, 3, what, "open_timeout", d.open_timeout);
	if (p->open_timeout < 1)
		config_raise(L, "push: 'open_timeout' must be at least 1 second");
}

static void config_push_expected(lua_State *L)
{
	static const char *const keys[] = {"package", "host", "interval", NULL};
	size_t n = dsl_check_list(L, 3, "setting", "expected_reporters",
				  "{ package = ..., host = ..., interval = SECONDS } tables");
	if (n > 1000)
		config_raise(L, "expected_reporters: at most 1000 entries");
	struct config_push *p = config_push_of(L);
	config_push_expected_free(p);
	p->expected = calloc(n + 1, sizeof(*p->expected));
	if (!p->expected)
		luaL_error(L, "not enough memory");
	for (size_t i = 0; i < n; i++) {
		char what[64];
		snprintf(what, sizeof(what), "expected_reporters[%zu]", i + 1);
		lua_rawgeti(L, 3, (lua_Integer)(i + 1));
		int t = lua_gettop(L);
		if (lua_type(L, t) != LUA_TTABLE)
			config_raise(L,
				     "%s must be a table { package = ..., host = ..., interval = "
				     "SECONDS }",
				     what);
		dsl_check_keys(L, t, what, keys);
		size_t plen = 0, hlen = 0;
		const char *pkg = dsl_opt_string(L, t, what, "package", &plen);
		const char *host = dsl_opt_string(L, t, what, "host", &hlen);
		if (!pkg || !plen || plen > 64 || !host || !hlen || hlen > 128)
			config_raise(L,
				     "%s: 'package' (1 to 64 bytes) and 'host' (1 to 128 bytes) "
				     "are required",
				     what);
		double iv = dsl_opt_seconds(L, t, what, "interval", 0);
		if (iv < 1)
			config_raise(L, "%s: 'interval' is required: at least 1 second", what);
		for (size_t k = 0; k < p->nexpected; k++)
			if (!strcmp(p->expected[k].package, pkg) &&
			    !strcmp(p->expected[k].host, host))
				config_raise(L, "%s: package '%s' on host '%s' is listed twice",
					     what, pkg, host);
		struct config_expected_reporter *e = &p->expected[p->nexpected++];
		e->package = config_strdup(L, pkg, plen);
		e->host = config_strdup(L, host, hlen);
		e->interval = iv;
		lua_settop(L, 3);
	}
}

bool config_push_setting(lua_State *L, const char *key)
{
	if (!strcmp(key, "push"))
		config_push_caps(L);
	else if (!strcmp(key, "expected_reporters"))
		config_push_expected(L);
	else
		return false;
	return true;
}

void config_push_release(struct config *cfg)
{
	if (!cfg->push)
		return;
	config_push_expected_free(cfg->push);
	free(cfg->push);
	cfg->push = NULL;
}
