/*
 * Regression thresholds for numbers over time: the global setting
 * `regression = { NAME = { increase = N, increase_pct = P }, ... }` and the
 * builder key of the same shape, checked and copied into struct
 * config_numbers.  The master compares each new value with the previous
 * build's (src/master/numbers.c); docs/CONFIG.md "regression".
 */
#include "config/config-internal.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A threshold: a number >= 0 (absent: NAN). */
static double config_numbers_threshold(lua_State *L, int t, const char *what, const char *key)
{
	int type = dsl_get(L, t, key);
	double v = NAN;
	if (type != LUA_TNIL) {
		if (type != LUA_TNUMBER)
			config_raise(L, "%s: '%s' must be a number (got %s)", what, key,
				     dsl_typename(L, -1));
		v = lua_tonumber(L, -1);
		if (!isfinite(v) || v < 0)
			config_raise(L, "%s: '%s' must be a number >= 0", what, key);
	}
	lua_pop(L, 1);
	return v;
}

/* Reads the table at idx into rules for builder (NULL: global). */
static void config_numbers_read(lua_State *L, int idx, const char *what, const char *builder)
{
	static const char *const keys[] = {"increase", "increase_pct", NULL};
	struct config *cfg = config_ctx_of(L)->cfg;
	int line = config_line(L);
	if (lua_type(L, idx) != LUA_TTABLE)
		config_raise(L,
			     "%s'regression' must be a table: regression = { warnings = { "
			     "increase = 0 } }",
			     what);
	if (!cfg->numbers) {
		config_charge(L, sizeof(*cfg->numbers));
		cfg->numbers = xcalloc(1, sizeof(*cfg->numbers));
	}
	struct config_numbers *cn = cfg->numbers;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int v = lua_gettop(L);
		if (lua_type(L, v - 1) != LUA_TSTRING)
			config_raise(L, "%s'regression' keys must be number names (got %s)", what,
				     dsl_typename(L, v - 1));
		size_t len;
		const char *name = lua_tolstring(L, v - 1, &len);
		if (len == 0 || len > KILN_MAX_NUMBER_NAME || strlen(name) != len)
			config_raise(L, "%s'regression': number names must be 1 to %d bytes", what,
				     KILN_MAX_NUMBER_NAME);
		char w[400];
		snprintf(w, sizeof(w), "%sregression['%.200s']", what, name);
		if (lua_type(L, v) != LUA_TTABLE)
			config_raise(L,
				     "%s must be a table: { increase = N } or { increase_pct = P }",
				     w);
		dsl_check_keys(L, v, w, keys);
		double inc = config_numbers_threshold(L, v, w, "increase");
		double pct = config_numbers_threshold(L, v, w, "increase_pct");
		if (isnan(inc) && isnan(pct))
			config_raise(L, "%s needs 'increase' or 'increase_pct'", w);
		config_charge(L, sizeof(struct config_regression) + len + 1 +
					 (builder ? strlen(builder) + 1 : 0));
		ARRAY_GROW(cn->rules, cn->nrules + 1, cn->rules_alloc);
		struct config_regression *r = &cn->rules[cn->nrules++];
		*r = (struct config_regression){.increase = inc, .increase_pct = pct, .line = line};
		r->name = xstrdup(name);
		r->builder = builder ? xstrdup(builder) : NULL;
		lua_pop(L, 1);
	}
}

bool config_numbers_setting(lua_State *L, const char *key)
{
	if (strcmp(key, "regression"))
		return false;
	/* set again: the new table replaces the global rules */
	struct config_numbers *cn = config_ctx_of(L)->cfg->numbers;
	for (size_t i = 0; cn && i < cn->nrules;) {
		if (cn->rules[i].builder) {
			i++;
			continue;
		}
		free(cn->rules[i].name);
		memmove(&cn->rules[i], &cn->rules[i + 1],
			(cn->nrules - i - 1) * sizeof(*cn->rules));
		cn->nrules--;
	}
	config_numbers_read(L, 3, "", NULL);
	return true;
}

void config_numbers_builder(lua_State *L, const char *what, const char *builder)
{
	if (dsl_get(L, 1, "regression") != LUA_TNIL) {
		char w[300];
		snprintf(w, sizeof(w), "%s: ", what);
		config_numbers_read(L, lua_gettop(L), w, builder);
	}
	lua_pop(L, 1);
}

const struct config_regression *config_regression_find(const struct config *cfg,
						       const char *builder, const char *name)
{
	const struct config_numbers *cn = cfg ? cfg->numbers : NULL;
	const struct config_regression *global = NULL;
	for (size_t i = 0; cn && i < cn->nrules; i++) {
		const struct config_regression *r = &cn->rules[i];
		if (strcmp(r->name, name))
			continue;
		if (!r->builder)
			global = r;
		else if (builder && !strcmp(r->builder, builder))
			return r;
	}
	return global;
}

bool config_regression_exceeded(const struct config_regression *r, double old, double now)
{
	if (!r)
		return false;
	if (!isnan(r->increase) && now - old > r->increase)
		return true;
	/* a percentage of nothing is undefined: an increase from 0 only
	 * counts through 'increase' */
	if (!isnan(r->increase_pct) && old > 0 && (now - old) * 100.0 / old > r->increase_pct)
		return true;
	return false;
}

void config_numbers_free(struct config_numbers *cn)
{
	if (!cn)
		return;
	for (size_t i = 0; i < cn->nrules; i++) {
		free(cn->rules[i].name);
		free(cn->rules[i].builder);
	}
	free(cn->rules);
	free(cn);
}
