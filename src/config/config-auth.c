/*
 * The auth setting of master.lua (slice "weblogin"; docs/CONFIG.md "auth",
 * docs/AUTH.md): who may read and control the master over HTTP.
 *
 *   auth = {
 *     anonymous_read = true,      -- GETs, /ws and the UI's data without a login
 *     anonymous_control = false,  -- control calls without a login (default: off)
 *     htpasswd = "users.htpasswd",-- optional file of name:hash lines
 *     session_max_age = 7 * 86400, session_idle = 86400,
 *     roles = {
 *       { role = "admin", users = { "ann" } },
 *       { role = "force", users = { "bob", "*" }, builders = { "linux-*" } },
 *     },
 *   }
 *
 * Checked when set (errors carry the line) and copied into struct
 * config_auth; the master's auth.c applies it.
 */
#include "config/config-internal.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

static const char *const config_role_names[] = {"admin", "force", "stop", "cancel", "view"};

unsigned config_role_parse(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(config_role_names) / sizeof(config_role_names[0]); i++)
		if (strlen(config_role_names[i]) == len &&
		    !strncmp(config_role_names[i], name, len))
			return 1u << i;
	return 0;
}

int config_roles_parse_list(const char *text, unsigned *ret)
{
	unsigned bits = 0;
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, ",");
		if (n) {
			unsigned r = config_role_parse(p, n);
			if (!r)
				return -1;
			bits |= r;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	*ret = bits;
	return 0;
}

const char *config_role_name(unsigned role)
{
	for (size_t i = 0; i < sizeof(config_role_names) / sizeof(config_role_names[0]); i++)
		if (role == 1u << i)
			return config_role_names[i];
	return "?";
}

static void config_auth_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void config_auth_release(struct config *cfg)
{
	struct config_auth *a = cfg->auth;
	if (!a)
		return;
	free(a->htpasswd);
	for (size_t i = 0; i < a->nrules; i++) {
		config_auth_strv_free(a->rule[i].users, a->rule[i].nusers);
		config_auth_strv_free(a->rule[i].builders, a->rule[i].nbuilders);
	}
	free(a->rule);
	free(a);
	cfg->auth = NULL;
}

/* t[key], a list of non-empty strings without control characters, into
 * *ret (counted in *ret_n as copied); absent: nothing. */
static void config_auth_list(lua_State *L, int t, const char *what, const char *key, bool required,
			     char ***ret, size_t *ret_n)
{
	int type = dsl_get(L, t, key);
	if (type == LUA_TNIL) {
		if (required)
			config_raise(L, "%s: '%s' is required (a list of names)", what, key);
		lua_pop(L, 1);
		return;
	}
	size_t n = dsl_check_list(L, -1, what, key, "strings");
	if (n == 0)
		config_raise(L, "%s: '%s' must not be empty", what, key);
	if (n > 10000)
		config_raise(L, "%s: '%s' lists more than 10000 entries", what, key);
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i);
		size_t len;
		const char *s = dsl_check_string(L, -1, what, key, &len);
		if (len == 0 || len > 255)
			config_raise(L, "%s: '%s' entries must be 1 to 255 bytes", what, key);
		for (size_t k = 0; k < len; k++)
			if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
				config_raise(L,
					     "%s: '%s' entries must not contain control characters",
					     what, key);
		lua_pop(L, 1);
	}
	*ret = dsl_new_strv(L, n);
	dsl_fill_list(L, -1, *ret, ret_n, n);
	lua_pop(L, 1);
}

static void config_auth_roles(lua_State *L, int t, struct config_auth *a)
{
	static const char *const keys[] = {"role", "users", "builders", NULL};
	int type = dsl_get(L, t, "roles");
	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int rt = lua_gettop(L);
	size_t n = dsl_check_list(L, rt, "auth", "roles", "tables");
	if (n > 1000)
		config_raise(L, "auth: 'roles' lists more than 1000 rules");
	config_charge(L, (n ? n : 1) * sizeof(*a->rule));
	a->rule = xcalloc(n ? n : 1, sizeof(*a->rule));
	for (size_t i = 1; i <= n; i++) {
		char what[64];
		snprintf(what, sizeof(what), "auth: roles[%zu]", i);
		if (lua_rawgeti(L, rt, (lua_Integer)i) != LUA_TTABLE)
			config_raise(L,
				     "%s must be a table { role = \"force\", users = { ... }, "
				     "builders = { ... } } (got %s)",
				     what, dsl_typename(L, -1));
		int e = lua_gettop(L);
		dsl_check_keys(L, e, what, keys);
		struct config_auth_rule *r = &a->rule[a->nrules++];
		r->line = config_line(L);
		size_t len;
		const char *role = dsl_opt_string(L, e, what, "role", &len);
		if (!role)
			config_raise(L,
				     "%s: 'role' is required (admin, force, stop, cancel or view)",
				     what);
		r->role = config_role_parse(role, len);
		if (!r->role)
			config_raise(
				L, "%s: unknown role '%.60s' (admin, force, stop, cancel or view)",
				what, role);
		config_auth_list(L, e, what, "users", true, &r->users, &r->nusers);
		config_auth_list(L, e, what, "builders", false, &r->builders, &r->nbuilders);
		if (r->nbuilders && (r->role == CONFIG_ROLE_ADMIN || r->role == CONFIG_ROLE_VIEW))
			config_raise(L, "%s: 'builders' applies to force, stop and cancel only",
				     what);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

bool config_auth_setting(lua_State *L, const char *key)
{
	static const char *const keys[] = {"anonymous_read",
					   "anonymous_control",
					   "htpasswd",
					   "session_max_age",
					   "session_idle",
					   "roles",
					   NULL};
	if (strcmp(key, "auth"))
		return false;
	struct config *cfg = config_ctx_of(L)->cfg;
	if (lua_type(L, 3) != LUA_TTABLE)
		config_raise(L,
			     "'auth' must be a table: auth = { anonymous_read = true, htpasswd = "
			     "\"users.htpasswd\", roles = { { role = \"force\", users = { \"ann\" "
			     "} } } }");
	dsl_check_keys(L, 3, "auth", keys);
	config_auth_release(cfg);
	config_charge(L, sizeof(*cfg->auth));
	struct config_auth *a = cfg->auth = xcalloc(1, sizeof(*cfg->auth));
	a->anonymous_read = dsl_opt_bool(L, 3, "auth", "anonymous_read", true);
	a->anonymous_control = -1;
	int type = dsl_get(L, 3, "anonymous_control");
	if (type == LUA_TBOOLEAN)
		a->anonymous_control = lua_toboolean(L, -1);
	else if (type != LUA_TNIL)
		config_raise(L, "auth: 'anonymous_control' must be true or false (got %s)",
			     dsl_typename(L, -1));
	lua_pop(L, 1);
	size_t len;
	const char *h = dsl_opt_string(L, 3, "auth", "htpasswd", &len);
	if (h) {
		if (len == 0 || len > 4096 || memchr(h, '\0', len))
			config_raise(L, "auth: 'htpasswd' must be a file path");
		a->htpasswd = config_strdup(L, h, len);
	}
	a->session_max_age =
		dsl_opt_int(L, 3, "auth", "session_max_age", 7 * 86400, 1, 366LL * 86400);
	a->session_idle = dsl_opt_int(L, 3, "auth", "session_idle", 86400, 0, 366LL * 86400);
	config_auth_roles(L, 3, a);
	return true;
}
