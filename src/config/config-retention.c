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
 *
 * A builder may override builds, logs, test_results and numbers for its
 * own builds (issue 13): builder { ..., retention = { builds = { keep_days
 * = 365 } } } -> config_builder.retention; what it leaves out is the
 * global setting's.
 * docs/CONFIG.md "retention", docs/OPERATING.md "Retention".
 */
#include "config/config-internal.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>

/* 100 years, as for artifacts */
#define RETENTION_MAX_DAYS 36500

/* t[key]: absent (0) or a number of days above 0.  where: "retention" or
 * "builder 'NAME': retention", for the errors. */
static double config_retention_days(lua_State *L, int t, const char *where, const char *what,
				    const char *key)
{
	int type = dsl_get(L, t, key);
	double days = 0;
	if (type != LUA_TNIL) {
		if (type != LUA_TNUMBER)
			config_raise(L, "%s.%s: '%s' must be a number of days (got %s)", where,
				     what, key, dsl_typename(L, -1));
		days = lua_tonumber(L, -1);
		if (!isfinite(days) || days <= 0 || days > RETENTION_MAX_DAYS)
			config_raise(L,
				     "%s.%s: '%s' must be a number of days above 0 and at "
				     "most %d",
				     where, what, key, RETENTION_MAX_DAYS);
	}
	lua_pop(L, 1);
	return days;
}

/* t[key] must be a table (or absent: false); pushes it when present. */
static bool config_retention_sub(lua_State *L, int t, const char *where, const char *key,
				 const char *example)
{
	int type = dsl_get(L, t, key);
	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		return false;
	}
	if (type != LUA_TTABLE)
		config_raise(L, "%s: '%s' must be a table, e.g. %s = { %s } (got %s)", where, key,
			     key, example, dsl_typename(L, -1));
	return true;
}

/* The parts of a retention table a builder may override too: builds, logs,
 * test_results, numbers (0: not given). */
static void config_retention_builds_logs(lua_State *L, int t, const char *where,
					 struct config_retention_override *o)
{
	static const char *const days_only[] = {"keep_days", NULL};
	char what[320];
	if (config_retention_sub(L, t, where, "builds",
				 "keep_days = 90, keep_per_builder = 1000")) {
		static const char *const bk[] = {"keep_days", "keep_per_builder", NULL};
		int s = lua_gettop(L);
		snprintf(what, sizeof(what), "%s.builds", where);
		dsl_check_keys(L, s, what, bk);
		o->builds_keep_days = config_retention_days(L, s, where, "builds", "keep_days");
		o->builds_keep_per_builder = dsl_opt_int(L, s, what, "keep_per_builder", 0, 1,
							 KILN_ARTIFACTS_MAX_KEEP_BUILDS);
		lua_pop(L, 1);
	}
	if (config_retention_sub(L, t, where, "logs", "keep_days = 30, success_keep_days = 7")) {
		static const char *const lk[] = {"keep_days", "success_keep_days", NULL};
		int s = lua_gettop(L);
		snprintf(what, sizeof(what), "%s.logs", where);
		dsl_check_keys(L, s, what, lk);
		o->logs_keep_days = config_retention_days(L, s, where, "logs", "keep_days");
		o->logs_success_keep_days =
			config_retention_days(L, s, where, "logs", "success_keep_days");
		if (o->logs_keep_days > 0 && o->logs_success_keep_days > o->logs_keep_days)
			config_raise(L,
				     "%s.logs: 'success_keep_days' (%g) must not be above "
				     "'keep_days' (%g)",
				     where, o->logs_success_keep_days, o->logs_keep_days);
		lua_pop(L, 1);
	}
	if (config_retention_sub(L, t, where, "test_results", "keep_days = 30")) {
		snprintf(what, sizeof(what), "%s.test_results", where);
		dsl_check_keys(L, lua_gettop(L), what, days_only);
		o->test_results_keep_days =
			config_retention_days(L, lua_gettop(L), where, "test_results", "keep_days");
		lua_pop(L, 1);
	}
	if (config_retention_sub(L, t, where, "numbers", "keep_days = 365")) {
		snprintf(what, sizeof(what), "%s.numbers", where);
		dsl_check_keys(L, lua_gettop(L), what, days_only);
		o->numbers_keep_days =
			config_retention_days(L, lua_gettop(L), where, "numbers", "keep_days");
		lua_pop(L, 1);
	}
}

void config_retention_builder(lua_State *L, const char *what, struct config_builder *b)
{
	// clang-format off
	static const char *const keys[] = {
		"builds", "logs", "test_results", "numbers", NULL,
	};
	// clang-format on
	int type = dsl_get(L, 1, "retention");
	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	char where[320];
	snprintf(where, sizeof(where), "%s: retention", what);
	if (type != LUA_TTABLE)
		config_raise(L,
			     "%s must be a table: retention = { builds = { keep_days = 365 } } "
			     "(got %s)",
			     where, dsl_typename(L, -1));
	int t = lua_gettop(L);
	dsl_check_keys(L, t, where, keys);
	struct config_retention_override o = {0};
	config_retention_builds_logs(L, t, where, &o);
	lua_pop(L, 1);
	config_charge(L, sizeof(o));
	b->retention = xmalloc(sizeof(o));
	*b->retention = o;
}

bool config_retention_setting(lua_State *L)
{
	// clang-format off
	static const char *const keys[] = {
		"builds", "logs", "changes", "test_results", "numbers", "artifacts",
		"interval", NULL,
	};
	// clang-format on
	static const char *const days_only[] = {"keep_days", NULL};
	struct config *cfg = config_ctx_of(L)->cfg;
	if (lua_type(L, 3) != LUA_TTABLE)
		config_raise(L, "'retention' must be a table: retention = { builds = { keep_days "
				"= 90 }, logs = { keep_days = 30 } }");
	dsl_check_keys(L, 3, "retention", keys);
	/* set again: the new table replaces the old one whole */
	double c_days = 0;
	struct config_retention_override o = {0};
	config_retention_builds_logs(L, 3, "retention", &o);
	if (config_retention_sub(L, 3, "retention", "changes", "keep_days = 180")) {
		dsl_check_keys(L, lua_gettop(L), "retention.changes", days_only);
		c_days = config_retention_days(L, lua_gettop(L), "retention", "changes",
					       "keep_days");
		lua_pop(L, 1);
	}
	if (config_retention_sub(L, 3, "retention", "artifacts",
				 "max_bytes = \"10 GiB\", keep_days = 30")) {
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
	cfg->retention_builds_keep_days = o.builds_keep_days;
	cfg->retention_builds_keep_per_builder = o.builds_keep_per_builder;
	cfg->retention_logs_keep_days = o.logs_keep_days;
	cfg->retention_logs_success_keep_days = o.logs_success_keep_days;
	cfg->retention_changes_keep_days = c_days;
	cfg->retention_test_results_keep_days = o.test_results_keep_days;
	cfg->retention_numbers_keep_days = o.numbers_keep_days;
	cfg->retention_interval_s = interval;
	return true;
}
