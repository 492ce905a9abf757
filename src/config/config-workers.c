/*
 * The worker-connection settings of master.lua (slice "reattach"):
 *   workers_reattach_grace = 60            -- seconds; 0 disables
 *   workers_keepalive = { interval = 60, timeout = 180 }
 * Checked when set, with the line.  docs/CONFIG.md, "Worker disconnects".
 */
#include "config/config-internal.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>

#define KEEPALIVE_MAX 36000 /* lws keeps 16-bit seconds */

/* A whole number of seconds in [min, max] at index idx, else an error naming key. */
static int config_workers_seconds(lua_State *L, int idx, const char *key, int min, int max)
{
	if (lua_type(L, idx) != LUA_TNUMBER)
		config_raise(L, "'%s' must be a number of seconds (got %s)", key,
			     luaL_typename(L, idx));
	double v = lua_tonumber(L, idx);
	if (!isfinite(v) || v != floor(v) || v < min || v > max)
		config_raise(L, "'%s' must be a whole number of seconds from %d to %d (got %g)",
			     key, min, max, v);
	return (int)v;
}

bool config_workers_setting(lua_State *L, const char *key)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	if (!strcmp(key, "workers_reattach_grace")) {
		cfg->workers_reattach_grace =
			config_workers_seconds(L, 3, key, 0, CONFIG_REATTACH_GRACE_MAX);
		cfg->workers_reattach_set = true;
		return true;
	}
	if (strcmp(key, "workers_keepalive"))
		return false;
	if (lua_type(L, 3) != LUA_TTABLE)
		config_raise(L,
			     "'workers_keepalive' must be a table: workers_keepalive = { interval "
			     "= 60, timeout = 180 } (got %s)",
			     luaL_typename(L, 3));
	static const char *const keys[] = {"interval", "timeout", NULL};
	dsl_check_keys(L, 3, "workers_keepalive", keys);
	int interval = CONFIG_KEEPALIVE_INTERVAL_DEFAULT,
	    timeout = CONFIG_KEEPALIVE_TIMEOUT_DEFAULT;
	if (dsl_get(L, 3, "interval") != LUA_TNIL)
		interval = config_workers_seconds(L, -1, "workers_keepalive.interval", 1,
						  KEEPALIVE_MAX);
	lua_pop(L, 1);
	if (dsl_get(L, 3, "timeout") != LUA_TNIL)
		timeout = config_workers_seconds(L, -1, "workers_keepalive.timeout", 2,
						 KEEPALIVE_MAX);
	lua_pop(L, 1);
	if (timeout <= interval)
		config_raise(L,
			     "'workers_keepalive': timeout (%d s) must be longer than interval "
			     "(%d s): a PING needs time to be answered",
			     timeout, interval);
	cfg->workers_keepalive_interval = interval;
	cfg->workers_keepalive_timeout = timeout;
	return true;
}
