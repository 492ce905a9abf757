/*
 * reporter { kind = "github" | "gitlab" | "gitea" | "bitbucket" | "gerrit",
 * ... }: the commit-status reporters' own keys (slice "statuses"; the common
 * keys: config-reporter.c; the senders: src/master/reporters/statuses.c and
 * one file per kind).  Credentials come from secret(...) only.  Unlike the
 * other kinds, mode defaults to "all": a status is wanted for every build.
 */
#include "config/config-internal.h"
#include "config/config-reporter.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_STATUS_MAX_URL 2048
#define CONFIG_STATUS_MAX_FIELD 256

const char *const config_reporter_github_keys[] = {"url",  "token",   "owner",
						   "repo", "context", NULL};
const char *const config_reporter_gitea_keys[] = {"url", "token", "owner", "repo", "context", NULL};
const char *const config_reporter_gitlab_keys[] = {"url", "token", "project", "context", NULL};
const char *const config_reporter_bitbucket_keys[] = {
	"url", "token", "user", "password", "owner", "repo", "context", "server", NULL};
const char *const config_reporter_gerrit_keys[] = {"url", "user", "password", "label", NULL};

/* t[key] = secret("NAME"): one word; a plain string is refused. */
static char *config_status_secret(lua_State *L, const char *what, const char *key)
{
	int ty = dsl_get(L, 1, key);
	if (ty == LUA_TNIL) {
		lua_pop(L, 1);
		return NULL;
	}
	struct dsl_secret *sec = luaL_testudata(L, -1, MT_SECRET);
	if (!sec)
		config_raise(L,
			     "%s: '%s' must come from secret(...), never plain text in master.lua: "
			     "%s = secret(\"%s\")",
			     what, key, key, key);
	size_t len = strlen(sec->value);
	if (len == 0 || len > CONFIG_STATUS_MAX_URL || strpbrk(sec->value, "\r\n"))
		config_raise(L, "%s: '%s' (a secret) must be one line of 1 to %d bytes", what, key,
			     CONFIG_STATUS_MAX_URL);
	char *v = config_strdup(L, sec->value, len);
	lua_pop(L, 1);
	return v;
}

/* A one-line printable field, or NULL when absent. */
static char *config_status_field(lua_State *L, const char *what, const char *key)
{
	size_t len;
	const char *v = dsl_opt_string(L, 1, what, key, &len);
	if (!v)
		return NULL;
	bool ok = len > 0 && len <= CONFIG_STATUS_MAX_FIELD && strlen(v) == len;
	for (size_t i = 0; ok && i < len; i++)
		ok = (unsigned char)v[i] >= 0x20 && v[i] != 0x7f;
	if (!ok)
		config_raise(L, "%s: '%s' must be one line of 1 to %d printable bytes", what, key,
			     CONFIG_STATUS_MAX_FIELD);
	return config_strdup(L, v, len);
}

/* owner / repo / project: a path segment (or, for a GitLab project, a
 * numeric id or a group/subgroup/name path). */
static void config_status_path_check(lua_State *L, const char *what, const char *key, const char *v,
				     bool slashes)
{
	for (const char *p = v; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("-._~", *p) || (slashes && *p == '/')))
			config_raise(L,
				     "%s: '%s' may hold letters, digits and -._~%s only (got "
				     "'%.60s')",
				     what, key, slashes ? "/" : "", v);
}

void config_reporter_status(lua_State *L, const char *what, struct config_reporter *r)
{
	struct config_reporter_status *st = &r->status;
	/* a status for every build unless mode says otherwise */
	if (dsl_get(L, 1, "mode") == LUA_TNIL)
		r->filter.modes = CONFIG_REPORT_ALL;
	lua_pop(L, 1);

	const char *def = NULL;
	switch (r->kind) {
	case CONFIG_REPORTER_GITHUB:
		def = "https://api.github.com";
		break;
	case CONFIG_REPORTER_GITLAB:
		def = "https://gitlab.com";
		break;
	case CONFIG_REPORTER_BITBUCKET:
		def = dsl_opt_bool(L, 1, what, "server", false) ? NULL
								: "https://api.bitbucket.org";
		st->server = !def;
		break;
	default:
		break;
	}
	size_t len;
	const char *url = dsl_opt_string(L, 1, what, "url", &len);
	if (!url && !def)
		config_raise(L, "%s: 'url' is required: url = \"https://git.example.org\"", what);
	if (url && !config_reporter_url_ok(url, len, CONFIG_STATUS_MAX_URL, false))
		config_raise(L,
			     "%s: 'url' must be an http:// or https:// URL of at most %d bytes, "
			     "without spaces or a login",
			     what, CONFIG_STATUS_MAX_URL);
	if (!url) {
		url = def;
		len = strlen(def);
	}
	while (len && url[len - 1] == '/')
		len--;
	st->base_url = config_strdup(L, url, len);

	if (r->kind != CONFIG_REPORTER_GERRIT)
		st->token = config_status_secret(L, what, "token");
	if (r->kind == CONFIG_REPORTER_BITBUCKET || r->kind == CONFIG_REPORTER_GERRIT) {
		st->user = config_status_field(L, what, "user");
		st->password = config_status_secret(L, what, "password");
		if (!st->user != !st->password)
			config_raise(L, "%s: 'user' and 'password' go together", what);
		if (st->user && strchr(st->user, ':'))
			config_raise(L, "%s: 'user' must not contain ':'", what);
	}
	if (r->kind == CONFIG_REPORTER_GERRIT) {
		if (!st->user)
			config_raise(L,
				     "%s: 'user' and 'password' are required (Gerrit's HTTP "
				     "password): user = \"kiln\", password = secret(\"gerrit\")",
				     what);
		st->label = config_status_field(L, what, "label");
		if (!st->label)
			st->label = config_strdup(L, "Verified", 8);
		config_status_path_check(L, what, "label", st->label, false);
	} else if (!st->token && !st->user)
		config_raise(L, "%s: 'token' is required: token = secret(\"%s-token\")", what,
			     r->kind == CONFIG_REPORTER_GITHUB   ? "github"
			     : r->kind == CONFIG_REPORTER_GITLAB ? "gitlab"
			     : r->kind == CONFIG_REPORTER_GITEA  ? "gitea"
								 : "bitbucket");
	if (st->token && st->user)
		config_raise(L, "%s: give 'token' or 'user' and 'password', not both", what);

	if (r->kind == CONFIG_REPORTER_GITLAB) {
		st->repo = config_status_field(L, what, "project");
		if (st->repo)
			config_status_path_check(L, what, "project", st->repo, true);
	} else if (r->kind != CONFIG_REPORTER_GERRIT) {
		st->owner = config_status_field(L, what, "owner");
		st->repo = config_status_field(L, what, "repo");
		if (!st->owner != !st->repo)
			config_raise(L,
				     "%s: 'owner' and 'repo' go together (without them, both come "
				     "from the build's repository URL)",
				     what);
		if (st->owner)
			config_status_path_check(L, what, "owner", st->owner, false);
		if (st->repo)
			config_status_path_check(L, what, "repo", st->repo, false);
	}
	if (r->kind != CONFIG_REPORTER_GERRIT) {
		st->context = config_status_field(L, what, "context");
		if (!st->context)
			st->context = config_strdup(L, "kiln/{builder}", 14);
		if (r->kind == CONFIG_REPORTER_BITBUCKET && strlen(st->context) > 40 &&
		    !strstr(st->context, "{builder}"))
			config_raise(L, "%s: 'context' is Bitbucket's key: at most 40 bytes", what);
	}
}

void config_reporter_status_release(struct config_reporter *r)
{
	struct config_reporter_status *st = &r->status;
	free(st->base_url);
	config_reporter_free_secret(st->token);
	free(st->user);
	config_reporter_free_secret(st->password);
	free(st->owner);
	free(st->repo);
	free(st->context);
	free(st->label);
}
