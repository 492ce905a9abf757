/*
 * The retention setting of master.lua (slice "retention"): how long the
 * master keeps builds, logs, changes, test results and numbers,
 *
 *   retention = {
 *     builds = { keep_days = 90, keep_per_builder = 1000 },
 *     logs = { keep_days = 30, success_keep_days = 7 },
 *     changes = { keep_days = 180 }, test_results = { keep_days = 30 },
 *     numbers = { keep_days = 365 },
 *     artifacts = { max_bytes = "10 GiB" },   -- the same as artifacts = { }
 *     interval = 600,                        -- seconds between passes
 *   }
 *
 * Checked when set (errors carry the line) and copied into struct config's
 * retention_* fields; master/retention.c applies them.  Unset: keep all.
 * docs/CONFIG.md "retention", docs/OPERATING.md "Retention".
 */
#include "config/config-internal.h"
#include "common/limits.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>

/* 100 years, as for artifacts */
#define RETENTION_MAX_DAYS 36500

/* t[key]: absent (0) or a number of days above 0. */
static double config_retention_days(lua_State *L, int t, const char *what, const char *key)
{
	int type = dsl_get(L, t, key);
	double days = 0;
	if (type != LUA_TNIL) {
		if (type != LUA_TNUMBER)
			config_raise(L, "retention.%s: '%s' must be a number of days (got %s)",
				     what, key, dsl_typename(L, -1));
		days = lua_tonumber(L, -1);
		if (!isfinite(days) || days <= 0 || days > RETENTION_MAX_DAYS)
			config_raise(L,
				     "retention.%s: '%s' must be a number of days above 0 and at "
				     "most %d",
				     what, key, RETENTION_MAX_DAYS);
	}
	lua_pop(L, 1);
	return days;
}

/* t[key] must be a table (or absent: false); pushes it when present. */
static bool config_retention_sub(lua_State *L, int t, const char *key, const char *example)
{
	int type = dsl_get(L, t, key);
	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		return false;
	}
	if (type != LUA_TTABLE)
		config_raise(L, "retention: '%s' must be a table, e.g. %s = { %s } (got %s)", key,
			     key, example, dsl_typename(L, -1));
	return true;
}

bool config_retention_setting(lua_State *L)
{
	static const char *const keys[] = {"builds",  "logs",      "changes",  "test_results",
					   "numbers", "artifacts", "interval", NULL};
	static const char *const days_only[] = {"keep_days", NULL};
	struct config *cfg = config_ctx_of(L)->cfg;
	if (lua_type(L, 3) != LUA_TTABLE)
		config_raise(L, "'retention' must be a table: retention = { builds = { keep_days "
				"= 90 }, logs = { keep_days = 30 } }");
	dsl_check_keys(L, 3, "retention", keys);
	/* set again: the new table replaces the old one whole */
	double b_days = 0, l_days = 0, l_succ = 0, c_days = 0, t_days = 0, n_days = 0;
	long long per_builder = 0;
	if (config_retention_sub(L, 3, "builds", "keep_days = 90, keep_per_builder = 1000")) {
		static const char *const bk[] = {"keep_days", "keep_per_builder", NULL};
		int t = lua_gettop(L);
		dsl_check_keys(L, t, "retention.builds", bk);
		b_days = config_retention_days(L, t, "builds", "keep_days");
		per_builder = dsl_opt_int(L, t, "retention.builds", "keep_per_builder", 0, 1,
					  KILN_ARTIFACTS_MAX_KEEP_BUILDS);
		lua_pop(L, 1);
	}
	if (config_retention_sub(L, 3, "logs", "keep_days = 30, success_keep_days = 7")) {
		static const char *const lk[] = {"keep_days", "success_keep_days", NULL};
		int t = lua_gettop(L);
		dsl_check_keys(L, t, "retention.logs", lk);
		l_days = config_retention_days(L, t, "logs", "keep_days");
		l_succ = config_retention_days(L, t, "logs", "success_keep_days");
		if (l_days > 0 && l_succ > l_days)
			config_raise(L,
				     "retention.logs: 'success_keep_days' (%g) must not be above "
				     "'keep_days' (%g)",
				     l_succ, l_days);
		lua_pop(L, 1);
	}
	if (config_retention_sub(L, 3, "changes", "keep_days = 180")) {
		dsl_check_keys(L, lua_gettop(L), "retention.changes", days_only);
		c_days = config_retention_days(L, lua_gettop(L), "changes", "keep_days");
		lua_pop(L, 1);
	}
	if (config_retention_sub(L, 3, "test_results", "keep_days = 30")) {
		dsl_check_keys(L, lua_gettop(L), "retention.test_results", days_only);
		t_days = config_retention_days(L, lua_gettop(L), "test_results", "keep_days");
		lua_pop(L, 1);
	}
	if (config_retention_sub(L, 3, "numbers", "keep_days = 365")) {
		dsl_check_keys(L, lua_gettop(L), "retention.numbers", days_only);
		n_days = config_retention_days(L, lua_gettop(L), "numbers", "keep_days");
		lua_pop(L, 1);
	}
	if (config_retention_sub(L, 3, "artifacts", "max_bytes = \"10 GiB\", keep_days = 30")) {
		config_artifacts_table(L, lua_gettop(L), "retention.artifacts");
		lua_pop(L, 1);
	}
	double interval = 0;
	int type = dsl_get(L, 3, "interval");
	if (type != LUA_TNIL) {
		interval = lua_tonumber(L, -1);
		if (type != LUA_TNUMBER || !isfinite(interval) || interval < 1 || interval > 86400)
			config_raise(L, "retention: 'interval' must be a number of seconds from 1 "
					"to 86400");
	}
	lua_pop(L, 1);
	cfg->retention_builds_keep_days = b_days;
	cfg->retention_builds_keep_per_builder = per_builder;
	cfg->retention_logs_keep_days = l_days;
	cfg->retention_logs_success_keep_days = l_succ;
	cfg->retention_changes_keep_days = c_days;
	cfg->retention_test_results_keep_days = t_days;
	cfg->retention_numbers_keep_days = n_days;
	cfg->retention_interval_s = interval;
	return true;
}
