/*
 * reporter { kind = "email", name = ..., mode = ..., builders = ..., ... }:
 * the keys every reporter shares (its name, the filter model, its outbound
 * queue) and the table of kinds, each reading its own keys in its own file
 * (config-reporter-KIND.c).  Copied into cfg->reporter (config.h
 * "reporters"); the senders are in src/master/reporters/.
 */
#include "config/config-internal.h"
#include "config/config-reporter.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <fnmatch.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REG_REPORTERS "kiln.reporters"
/* At most this many reporters, and entries in one filter list. */
#define CONFIG_REPORTER_MAX 64
#define CONFIG_REPORTER_MAX_LIST 256

static const struct config_reporter_kind_desc {
	const char *name;
	enum config_reporter_kind kind;
	const char *const *keys;
	void (*read)(lua_State *L, const char *what, struct config_reporter *r);
	void (*release)(struct config_reporter *r);
} config_reporter_kinds[] = {
	{"email", CONFIG_REPORTER_EMAIL, config_reporter_email_keys, config_reporter_email,
	 config_reporter_email_release},
	{"irc", CONFIG_REPORTER_IRC, config_reporter_irc_keys, config_reporter_irc,
	 config_reporter_irc_release},
	{"http", CONFIG_REPORTER_HTTP, config_reporter_http_keys, config_reporter_http,
	 config_reporter_http_release},
	{"slack", CONFIG_REPORTER_SLACK, config_reporter_webhook_keys, config_reporter_http,
	 config_reporter_http_release},
	{"mattermost", CONFIG_REPORTER_MATTERMOST, config_reporter_webhook_keys,
	 config_reporter_http, config_reporter_http_release},
	{"matrix", CONFIG_REPORTER_MATRIX, config_reporter_matrix_keys, config_reporter_http,
	 config_reporter_http_release},
	{"telegram", CONFIG_REPORTER_TELEGRAM, config_reporter_telegram_keys, config_reporter_chat,
	 config_reporter_chat_release},
	{"zulip", CONFIG_REPORTER_ZULIP, config_reporter_zulip_keys, config_reporter_chat,
	 config_reporter_chat_release},
	/* commit statuses (slice "statuses") */
	{"github", CONFIG_REPORTER_GITHUB, config_reporter_github_keys, config_reporter_status,
	 config_reporter_status_release},
	{"gitlab", CONFIG_REPORTER_GITLAB, config_reporter_gitlab_keys, config_reporter_status,
	 config_reporter_status_release},
	{"gitea", CONFIG_REPORTER_GITEA, config_reporter_gitea_keys, config_reporter_status,
	 config_reporter_status_release},
	{"bitbucket", CONFIG_REPORTER_BITBUCKET, config_reporter_bitbucket_keys,
	 config_reporter_status, config_reporter_status_release},
	{"gerrit", CONFIG_REPORTER_GERRIT, config_reporter_gerrit_keys, config_reporter_status,
	 config_reporter_status_release},
};

static const char *const config_reporter_common_keys[] = {
	"kind", "name", "mode", "builders", "tags", "branches", "queue", "events", NULL,
};

static const struct {
	const char *name;
	enum config_report_mode mode;
} config_report_modes[] = {
	{"all", CONFIG_REPORT_ALL},           {"failing", CONFIG_REPORT_FAILING},
	{"problem", CONFIG_REPORT_PROBLEM},   {"change", CONFIG_REPORT_CHANGE},
	{"warnings", CONFIG_REPORT_WARNINGS}, {"exception", CONFIG_REPORT_EXCEPTION},
	{"passing", CONFIG_REPORT_PASSING},
};

const char *config_report_mode_name(enum config_report_mode mode)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_report_modes); i++)
		if (config_report_modes[i].mode == mode)
			return config_report_modes[i].name;
	return "?";
}

static unsigned config_reporter_mode_one(lua_State *L, const char *what, const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_report_modes); i++)
		if (!strcmp(s, config_report_modes[i].name))
			return config_report_modes[i].mode;
	config_raise(L,
		     "%s: unknown mode '%.60s' (one of \"all\", \"failing\", \"problem\", "
		     "\"change\", \"warnings\", \"exception\", \"passing\")",
		     what, s);
	return 0;
}

/* mode = "failing" or mode = { "failing", "warnings" } */
static unsigned config_reporter_modes(lua_State *L, const char *what)
{
	int t = dsl_get(L, 1, "mode");
	unsigned modes = 0;
	if (t == LUA_TNIL)
		modes = CONFIG_REPORT_FAILING;
	else if (t == LUA_TSTRING)
		modes = config_reporter_mode_one(L, what, lua_tostring(L, -1));
	else if (t == LUA_TTABLE) {
		size_t n = dsl_check_list(L, -1, what, "mode", "modes");
		if (n == 0)
			config_raise(L, "%s: 'mode' must not be an empty list", what);
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i);
			if (lua_type(L, -1) != LUA_TSTRING)
				config_raise(L, "%s: mode[%zu] must be a string (got %s)", what, i,
					     dsl_typename(L, -1));
			modes |= config_reporter_mode_one(L, what, lua_tostring(L, -1));
			lua_pop(L, 1);
		}
	} else
		config_raise(L, "%s: 'mode' must be a string or a list of strings (got %s)", what,
			     dsl_typename(L, -1));
	lua_pop(L, 1);
	return modes;
}

/* t[key] = { "a", "b*" }: a list of non-empty strings (globs allowed). */
static void config_reporter_list(lua_State *L, const char *what, const char *key, char ***ret_v,
				 size_t *ret_n)
{
	if (dsl_get(L, 1, key) == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	size_t n = dsl_check_list(L, -1, what, key, "strings");
	if (n > CONFIG_REPORTER_MAX_LIST)
		config_raise(L, "%s: '%s' lists more than %d entries", what, key,
			     CONFIG_REPORTER_MAX_LIST);
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i);
		size_t len;
		if (lua_type(L, -1) != LUA_TSTRING)
			config_raise(L, "%s: %s[%zu] must be a string (got %s)", what, key, i,
				     dsl_typename(L, -1));
		const char *s = lua_tolstring(L, -1, &len);
		if (len == 0 || len > KILN_MAX_NAME || strlen(s) != len)
			config_raise(L, "%s: %s[%zu] must be 1 to %d bytes without NUL", what, key,
				     i, KILN_MAX_NAME);
		lua_pop(L, 1);
	}
	*ret_v = dsl_new_strv(L, n);
	dsl_fill_list(L, -1, *ret_v, ret_n, n);
	lua_pop(L, 1);
}

/* queue = { max_messages = 100, max_bytes = "8 MiB", timeout = 30, attempts = 3, backoff = 10 } */
static void config_reporter_queue(lua_State *L, const char *what, struct config_reporter *r)
{
	static const char *const keys[] = {"max_messages", "max_bytes", "timeout",
					   "attempts",     "backoff",   NULL};
	r->max_messages = 100;
	r->max_bytes = 8 << 20;
	r->timeout = 30;
	r->attempts = 3;
	r->backoff = 10;
	int t = dsl_get(L, 1, "queue");
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (t != LUA_TTABLE)
		config_raise(L,
			     "%s: 'queue' must be a table: queue = { max_messages = 100 } (got %s)",
			     what, dsl_typename(L, -1));
	int q = lua_gettop(L);
	char qwhat[300];
	snprintf(qwhat, sizeof(qwhat), "%s: queue", what);
	dsl_check_keys(L, q, qwhat, keys);
	r->max_messages = (size_t)dsl_opt_int(L, q, qwhat, "max_messages", 100, 1, 100000);
	r->attempts = (unsigned)dsl_opt_int(L, q, qwhat, "attempts", 3, 1, 100);
	r->timeout = dsl_opt_seconds(L, q, qwhat, "timeout", 30);
	if (r->timeout <= 0 || r->timeout > 3600)
		config_raise(L, "%s: 'timeout' must be more than 0 and at most 3600 seconds",
			     qwhat);
	r->backoff = dsl_opt_seconds(L, q, qwhat, "backoff", 10);
	if (r->backoff < 0 || r->backoff > 86400)
		config_raise(L, "%s: 'backoff' must be 0 to 86400 seconds", qwhat);
	int bt = dsl_get(L, q, "max_bytes");
	if (bt == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0)
		r->max_bytes = (uint64_t)lua_tointeger(L, -1);
	else if (bt == LUA_TSTRING) {
		uint64_t v;
		if (config_parse_bytes(lua_tostring(L, -1), &v) < 0 || v == 0)
			config_raise(
				L, "%s: 'max_bytes' must be a size such as \"8 MiB\" (got '%.60s')",
				qwhat, lua_tostring(L, -1));
		r->max_bytes = v;
	} else if (bt != LUA_TNIL)
		config_raise(L,
			     "%s: 'max_bytes' must be a positive integer or a size such as "
			     "\"8 MiB\"",
			     qwhat);
	if (r->max_bytes > (uint64_t)1 << 30)
		config_raise(L, "%s: 'max_bytes' must be at most 1 GiB", qwhat);
	lua_pop(L, 2);
}

/* events = { "builds", "worker_missing", "regression", ... }: what the
 * reporter hears about (default { "builds" }; slice "alerts").  The error
 * texts list the names of this table. */
static const struct {
	const char *name;
	unsigned flag;
} reporter_event_names[] = {
	{"builds", CONFIG_REPORT_EVENT_BUILDS},
	{"worker_missing", CONFIG_REPORT_EVENT_WORKER_MISSING},
	{"regression", CONFIG_REPORT_EVENT_REGRESSION},
	{"reporter_quiet", CONFIG_REPORT_EVENT_REPORTER_QUIET},
};

/* The event names quoted and joined: sep between them, last before the
 * final one ("\"a\", \"b\" or \"c\""). */
static void reporter_event_list(char *out, size_t size, const char *sep, const char *last)
{
	size_t n = ARRAY_SIZE(reporter_event_names), len = 0;
	out[0] = '\0';
	for (size_t k = 0; k < n && len < size; k++) {
		int w = snprintf(out + len, size - len, "%s\"%s\"",
				 k == 0 ? "" : (k + 1 == n ? last : sep),
				 reporter_event_names[k].name);
		if (w < 0)
			break;
		len += (size_t)w;
	}
}

static unsigned config_reporter_events(lua_State *L, const char *what)
{
	char list[160];
	int t = dsl_get(L, 1, "events");
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return CONFIG_REPORT_EVENT_BUILDS;
	}
	if (t == LUA_TSTRING) {
		lua_newtable(L);
		lua_insert(L, -2);
		lua_rawseti(L, -2, 1);
	} else if (t != LUA_TTABLE) {
		reporter_event_list(list, sizeof(list), ", ", ", ");
		config_raise(L, "%s: 'events' must be a list: events = { %s } (got %s)", what, list,
			     dsl_typename(L, -1));
	}
	size_t n = dsl_check_list(L, -1, what, "events", "strings");
	if (n == 0)
		config_raise(L, "%s: 'events' must not be an empty list", what);
	unsigned ev = 0;
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i);
		const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
		unsigned f = 0;
		for (size_t k = 0; s && k < ARRAY_SIZE(reporter_event_names); k++)
			if (!strcmp(s, reporter_event_names[k].name))
				f = reporter_event_names[k].flag;
		if (!f) {
			reporter_event_list(list, sizeof(list), ", ", " or ");
			config_raise(L, "%s: events[%zu] must be %s (got '%.60s')", what, i, list,
				     s ? s : dsl_typename(L, -1));
		}
		ev |= f;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return ev;
}

static int config_reporter_decl(lua_State *L)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	int line = config_line(L);
	char what[256];
	dsl_check_table_arg(L, "reporter");

	if (dsl_get(L, 1, "kind") != LUA_TSTRING)
		return config_raise(L, "reporter: 'kind' is required: kind = \"email\"");
	const char *kname = lua_tostring(L, -1);
	const struct config_reporter_kind_desc *kd = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(config_reporter_kinds); i++)
		if (!strcmp(kname, config_reporter_kinds[i].name))
			kd = &config_reporter_kinds[i];
	if (!kd)
		return config_raise(
			L,
			"reporter: unknown kind '%.60s' (known: \"email\", \"irc\", \"http\", "
			"\"slack\", \"mattermost\", \"matrix\", \"telegram\", \"zulip\")",
			kname);
	lua_pop(L, 1);

	const char *name = dsl_opt_name(L, 1, "reporter", "name");
	if (!name)
		name = kd->name;
	snprintf(what, sizeof(what), "reporter '%s'", name);

	/* the common keys and the kind's */
	const char *keys[64];
	size_t nk = 0;
	for (size_t i = 0; config_reporter_common_keys[i]; i++)
		keys[nk++] = config_reporter_common_keys[i];
	for (size_t i = 0; kd->keys[i] && nk < ARRAY_SIZE(keys) - 1; i++)
		keys[nk++] = kd->keys[i];
	keys[nk] = NULL;
	dsl_check_keys(L, 1, what, keys);

	lua_getfield(L, LUA_REGISTRYINDEX, REG_REPORTERS);
	if (lua_getfield(L, -1, name) != LUA_TNIL)
		return config_raise(L,
				    "%s is already declared at line %d (give it another "
				    "name = ...)",
				    what, (int)lua_tointeger(L, -1));
	lua_pop(L, 2);
	if (cfg->nreporters >= CONFIG_REPORTER_MAX)
		return config_raise(L, "%s: more than %d reporters", what, CONFIG_REPORTER_MAX);

	unsigned modes = config_reporter_modes(L, what);
	config_charge(L, sizeof(struct config_reporter));
	ARRAY_GROW(cfg->reporter, cfg->nreporters + 1, cfg->reporter_alloc);
	struct config_reporter *r = &cfg->reporter[cfg->nreporters++];
	*r = (struct config_reporter){.kind = kd->kind, .line = line};
	/* owned by cfg from here: a raise below frees it with cfg */
	r->filter.modes = modes;
	r->name = config_strdup(L, name, strlen(name));
	config_reporter_list(L, what, "builders", &r->filter.builders, &r->filter.nbuilders);
	config_reporter_list(L, what, "tags", &r->filter.tags, &r->filter.ntags);
	config_reporter_list(L, what, "branches", &r->filter.branches, &r->filter.nbranches);
	config_reporter_queue(L, what, r);
	r->events = config_reporter_events(L, what);
	kd->read(L, what, r);

	lua_getfield(L, LUA_REGISTRYINDEX, REG_REPORTERS);
	lua_pushinteger(L, line);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
	return 0;
}

void config_reporter_open(lua_State *L)
{
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, REG_REPORTERS);
	lua_register(L, "reporter", config_reporter_decl);
}

void config_reporter_finish(lua_State *L)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	for (size_t i = 0; i < cfg->nreporters; i++) {
		const struct config_reporter *r = &cfg->reporter[i];
		for (size_t k = 0; k < r->filter.nbuilders; k++) {
			const char *b = r->filter.builders[k];
			if (strpbrk(b, "*?[")) {
				bool any = false;
				for (size_t j = 0; j < cfg->nbuilders && !any; j++)
					any = fnmatch(b, cfg->builder[j].name, 0) == 0;
				if (!any)
					config_raise_at(L, r->line,
							"reporter '%s': builders[%zu]: the pattern "
							"'%s' matches no builder",
							r->name, k + 1, b);
			} else if (!config_find_builder(cfg, b))
				config_raise_at(
					L, r->line,
					"reporter '%s': builders[%zu]: unknown builder '%s'",
					r->name, k + 1, b);
		}
	}
}

static void config_reporter_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void config_reporter_release(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nreporters; i++) {
		struct config_reporter *r = &cfg->reporter[i];
		for (size_t k = 0; k < ARRAY_SIZE(config_reporter_kinds); k++)
			if (config_reporter_kinds[k].kind == r->kind)
				config_reporter_kinds[k].release(r);
		free(r->name);
		config_reporter_strv_free(r->filter.builders, r->filter.nbuilders);
		config_reporter_strv_free(r->filter.tags, r->filter.ntags);
		config_reporter_strv_free(r->filter.branches, r->filter.nbranches);
	}
	free(cfg->reporter);
	cfg->reporter = NULL;
	cfg->nreporters = 0;
}

bool config_reporter_url_ok(const char *s, size_t len, size_t max, bool userinfo)
{
	if (len > max || strlen(s) != len)
		return false;
	size_t skip;
	if (!strncasecmp(s, "http://", 7))
		skip = 7;
	else if (!strncasecmp(s, "https://", 8))
		skip = 8;
	else
		return false;
	if (len == skip || s[skip] == '/' || (!userinfo && memchr(s + skip, '@', len - skip)))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7f)
			return false;
	return true;
}

void config_reporter_free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

bool config_reporter_host_ok(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr(".-_:", c)))
			return false;
	}
	return true;
}
