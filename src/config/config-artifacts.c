/*
 * The artifacts setting of master.lua (slice "artcli"): how long the files
 * upload steps store are kept, `artifacts = { max_bytes = "10 GiB",
 * keep_days = 30, keep_builds = 50 }`.  Checked when set (errors carry the
 * line) and copied into struct config's artifacts_* fields; the master's
 * artifact-retention.c applies them.  docs/CONFIG.md "artifacts".
 */
#include "config/config-internal.h"
#include "common/limits.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <string.h>

static const struct {
	const char *name;
	uint64_t mult;
} config_artifacts_units[] = {
	{"B", 1},
	{"kB", 1000ull},
	{"KB", 1000ull},
	{"MB", 1000ull * 1000},
	{"GB", 1000ull * 1000 * 1000},
	{"TB", 1000ull * 1000 * 1000 * 1000},
	{"KiB", 1ull << 10},
	{"MiB", 1ull << 20},
	{"GiB", 1ull << 30},
	{"TiB", 1ull << 40},
};

int config_parse_bytes(const char *s, uint64_t *ret)
{
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	uint64_t v = 0;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	while (*s == ' ')
		s++;
	uint64_t mult = 1;
	if (*s) {
		size_t i;
		for (i = 0; i < sizeof(config_artifacts_units) / sizeof(config_artifacts_units[0]);
		     i++)
			if (!strcmp(s, config_artifacts_units[i].name))
				break;
		if (i == sizeof(config_artifacts_units) / sizeof(config_artifacts_units[0]))
			return -EINVAL;
		mult = config_artifacts_units[i].mult;
	}
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*ret = v * mult;
	return 0;
}

/* max_bytes: an integer number of bytes or a string with a unit. */
static uint64_t config_artifacts_max_bytes(lua_State *L, int t, const char *what)
{
	int type = dsl_get(L, t, "max_bytes");
	uint64_t v = 0;
	if (type == LUA_TNUMBER) {
		int isint = 0;
		lua_Integer n = lua_tointegerx(L, -1, &isint);
		if (!isint || n < 1)
			config_raise(L,
				     "%s: 'max_bytes' must be a positive integer or a size such "
				     "as \"10 GiB\"",
				     what);
		v = (uint64_t)n;
	} else if (type == LUA_TSTRING) {
		const char *s = lua_tostring(L, -1);
		int r = config_parse_bytes(s, &v);
		if (r < 0 || v == 0)
			config_raise(L,
				     "%s: 'max_bytes' must be a size such as \"500 MB\" or \"10 "
				     "GiB\" (units B, kB, MB, GB, TB, KiB, MiB, GiB, TiB; got "
				     "'%.60s')",
				     what, s);
	} else if (type != LUA_TNIL) {
		config_raise(L, "%s: 'max_bytes' must be a number or a string (got %s)", what,
			     dsl_typename(L, -1));
	}
	lua_pop(L, 1);
	return v;
}

/* The table at index t (artifacts = { }, or retention = { artifacts = { } }). */
void config_artifacts_table(lua_State *L, int t, const char *what)
{
	static const char *const keys[] = {"max_bytes", "keep_days", "keep_builds", NULL};
	struct config *cfg = config_ctx_of(L)->cfg;
	dsl_check_keys(L, t, what, keys);
	uint64_t max_bytes = config_artifacts_max_bytes(L, t, what);
	double days = 0;
	int type = dsl_get(L, t, "keep_days");
	if (type != LUA_TNIL) {
		if (type != LUA_TNUMBER)
			config_raise(L, "%s: 'keep_days' must be a number (got %s)", what,
				     dsl_typename(L, -1));
		days = lua_tonumber(L, -1);
		if (!isfinite(days) || days <= 0 || days > KILN_ARTIFACTS_MAX_KEEP_DAYS)
			config_raise(L,
				     "%s: 'keep_days' must be a number of days above 0 and at "
				     "most %d",
				     what, KILN_ARTIFACTS_MAX_KEEP_DAYS);
	}
	lua_pop(L, 1);
	long long builds =
		dsl_opt_int(L, t, what, "keep_builds", 0, 1, KILN_ARTIFACTS_MAX_KEEP_BUILDS);
	/* set again: the new table replaces the old one whole */
	cfg->artifacts_max_bytes = max_bytes;
	cfg->artifacts_keep_days = days;
	cfg->artifacts_keep_builds = builds;
}

bool config_artifacts_setting(lua_State *L, const char *key)
{
	if (!strcmp(key, "retention"))
		return config_retention_setting(L); /* slice "retention" (config-retention.c) */
	if (strcmp(key, "artifacts"))
		return false;
	if (lua_type(L, 3) != LUA_TTABLE)
		config_raise(L,
			     "'artifacts' must be a table: artifacts = { max_bytes = \"10 GiB\", "
			     "keep_days = 30, keep_builds = 50 }");
	config_artifacts_table(L, 3, "artifacts");
	return true;
}
