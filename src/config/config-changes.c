/*
 * Change sources in master.lua: git_poller{}, hg_poller{}, svn_poller{},
 * bzr_poller{}, darcs_poller{}, cvs_poller{} and the change_hook setting (tokens and signature
 * secrets of the /change_hook/DIALECT endpoints).  Checked when declared (errors carry the line)
 * and copied into struct config (config.h "change sources").
 */
#include "config/config-internal.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <string.h>

#define REG_CHANGESOURCES "kiln.changesources"

static const char *const config_changes_poller_decl[] = {
	[CONFIG_POLLER_GIT] = "git_poller",         [CONFIG_POLLER_HG] = "hg_poller",
	[CONFIG_POLLER_SVN] = "svn_poller",         [CONFIG_POLLER_BZR] = "bzr_poller",
	[CONFIG_POLLER_DARCS] = "darcs_poller",     [CONFIG_POLLER_CVS] = "cvs_poller",
	[CONFIG_POLLER_MAILDIR] = "maildir_source", /* slice "alerts" */
};

/* t[key] as a secret's value (NULL when absent); raises on a plain string. */
static const char *config_changes_opt_secret(lua_State *L, int t, const char *what, const char *key)
{
	int type = dsl_get(L, t, key);
	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		return NULL;
	}
	struct dsl_secret *sec = luaL_testudata(L, -1, MT_SECRET);
	if (!sec)
		config_raise(L, "%s: '%s' must come from secret(...) (got %s)", what, key,
			     dsl_typename(L, -1));
	lua_pop(L, 1);
	return sec->value;
}

static char *config_changes_opt_copy(lua_State *L, int t, const char *what, const char *key)
{
	size_t len;
	const char *s = dsl_opt_string(L, t, what, key, &len);
	return s ? config_strdup(L, s, len) : NULL;
}

/* A default name from the repository: every character outside
 * [A-Za-z0-9._-] becomes '_' (names may not hold '/'). */
static char *config_changes_default_name(lua_State *L, const char *repo, size_t len)
{
	if (len > KILN_MAX_NAME)
		len = KILN_MAX_NAME;
	char *n = config_strdup(L, repo, len);
	for (char *p = n; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    *p))
			*p = '_';
	return n;
}

/* cvs_poller's module: a path inside the repository, as `cvs rlog` takes it. */
static void config_changes_check_module(lua_State *L, const char *what, const char *m, size_t len)
{
	bool dotdot = !strcmp(m, "..") || !strncmp(m, "../", 3) || strstr(m, "/../") ||
		      (len >= 3 && !strcmp(m + len - 3, "/.."));
	if (len == 0 || strlen(m) != len || m[0] == '-' || m[0] == '/' || dotdot ||
	    strpbrk(m, "\n\r\t"))
		config_raise(L, "%s: 'module' must be a path inside the repository (got '%.60s')",
			     what, m);
}

/* A CVS tag: a letter, then letters, digits, '-' and '_'. */
static void config_changes_check_cvs_tag(lua_State *L, const char *what, const char *t)
{
	bool ok = (t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z');
	for (const char *c = t; ok && *c; c++)
		ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", *c);
	if (!ok)
		config_raise(L, "%s: 'branch' must be a CVS branch tag (got '%.60s')", what, t);
}

static int config_changes_poller(lua_State *L, enum config_poller_kind kind)
{
	static const char *const git_keys[] = {"name",     "repository", "branches", "tags",
					       "interval", "project",    "category", "codebase",
					       "revlink",  NULL};
	static const char *const hg_keys[] = {"name",     "repository", "branches",
					      "interval", "project",    "category",
					      "codebase", "revlink",    NULL};
	/* svn, bzr and darcs */
	static const char *const svn_keys[] = {"name",     "repository", "branch",
					       "interval", "project",    "category",
					       "codebase", "revlink",    NULL};
	static const char *const cvs_keys[] = {"name",     "cvsroot", "module",   "branch",
					       "interval", "project", "category", "codebase",
					       "revlink",  NULL};
	/* maildir_source { maildir = DIR, ... } (slice "alerts") */
	static const char *const maildir_keys[] = {"name",     "maildir",  "branch",
						   "interval", "project",  "category",
						   "codebase", "max_size", NULL};
	const char *decl = config_changes_poller_decl[kind];
	struct config *cfg = config_ctx_of(L)->cfg;
	int line = config_line(L);
	char what[256];

	dsl_check_table_arg(L, decl);
	dsl_what(L, what, sizeof(what), decl, NULL);
	dsl_check_keys(L, 1, what,
		       kind == CONFIG_POLLER_GIT       ? git_keys
		       : kind == CONFIG_POLLER_HG      ? hg_keys
		       : kind == CONFIG_POLLER_CVS     ? cvs_keys
		       : kind == CONFIG_POLLER_MAILDIR ? maildir_keys
						       : svn_keys);
	bool cvs = kind == CONFIG_POLLER_CVS;
	size_t rlen, mlen = 0;
	bool maildir = kind == CONFIG_POLLER_MAILDIR;
	const char *repo = dsl_opt_string(L, 1, what,
					  cvs       ? "cvsroot"
					  : maildir ? "maildir"
						    : "repository",
					  &rlen);
	if (!repo || rlen == 0)
		return config_raise(
			L, "%s: %s", what,
			cvs       ? "'cvsroot' is required (as for cvs -d)"
			: maildir ? "'maildir' is required (a directory with new/ and cur/)"
				  : "'repository' is required (a URL or a path)");
	if (maildir && (repo[0] != '/' || strlen(repo) != rlen))
		return config_raise(L, "%s: 'maildir' must be an absolute path (got '%.60s')", what,
				    repo);
	const char *module = cvs ? dsl_opt_string(L, 1, what, "module", &mlen) : NULL;
	if (cvs && !module)
		return config_raise(L, "%s: 'module' is required (the module to poll)", what);
	if (cvs)
		config_changes_check_module(L, what, module, mlen);
	const char *name = dsl_opt_name(L, 1, what, "name");
	double interval = dsl_opt_seconds(L, 1, what, "interval", 60);
	if (interval < 0.1)
		return config_raise(L, "%s: 'interval' must be at least 0.1 seconds", what);
	bool tags = kind == CONFIG_POLLER_GIT && dsl_opt_bool(L, 1, what, "tags", false);

	/* branches: git "all" or a list; hg a list (default {"default"}) */
	bool all = false;
	int branches = 0;
	size_t nb = 0;
	if (kind == CONFIG_POLLER_GIT || kind == CONFIG_POLLER_HG) {
		int t = dsl_get(L, 1, "branches");
		if (t == LUA_TSTRING && kind == CONFIG_POLLER_GIT &&
		    !strcmp(lua_tostring(L, -1), "all")) {
			all = true;
		} else if (t != LUA_TNIL) {
			branches = lua_gettop(L);
			nb = dsl_check_list(L, branches, what, "branches", "branch names");
			if (nb == 0)
				return config_raise(L, "%s: 'branches' must not be empty%s", what,
						    kind == CONFIG_POLLER_GIT ? " (or \"all\")"
									      : "");
			for (size_t i = 1; i <= nb; i++) {
				lua_rawgeti(L, branches, (lua_Integer)i);
				size_t len;
				const char *b = dsl_check_string(L, -1, what, "branches", &len);
				if (len == 0 || b[0] == '-' || strpbrk(b, " \t\n~^:?*[\\"))
					return config_raise(
						L, "%s: 'branches': not a branch name '%.60s'",
						what, b);
				lua_pop(L, 1);
			}
		}
	}

	char *default_name = NULL;
	if (!name) {
		default_name = cvs ? config_changes_default_name(L, module, mlen)
				   : config_changes_default_name(L, repo, rlen);
		name = default_name;
		snprintf(what, sizeof(what), "%s '%s'", decl, name);
	}
	lua_getfield(L, LUA_REGISTRYINDEX, REG_CHANGESOURCES);
	if (lua_getfield(L, -1, name) != LUA_TNIL) {
		int prev = (int)lua_tointeger(L, -1);
		free(default_name);
		return config_raise(L, "change source '%s' is already declared at line %d", name,
				    prev);
	}
	lua_pop(L, 2);

	config_charge(L, sizeof(struct config_poller));
	ARRAY_GROW(cfg->poller, cfg->npollers + 1, cfg->poller_alloc);
	struct config_poller *p = &cfg->poller[cfg->npollers++];
	*p = (struct config_poller){.kind = kind,
				    .interval = interval,
				    .tags = tags,
				    .all_branches = all,
				    .line = line};
	p->name = default_name ? default_name : config_strdup(L, name, strlen(name));
	p->repository = config_strdup(L, repo, rlen);
	p->project = config_changes_opt_copy(L, 1, what, "project");
	p->category = config_changes_opt_copy(L, 1, what, "category");
	p->codebase = config_changes_opt_copy(L, 1, what, "codebase");
	p->revlink = config_changes_opt_copy(L, 1, what, "revlink");
	if (kind != CONFIG_POLLER_GIT && kind != CONFIG_POLLER_HG)
		p->branch = config_changes_opt_copy(L, 1, what, "branch");
	if (cvs) {
		p->module = config_strdup(L, module, mlen);
		if (p->branch)
			config_changes_check_cvs_tag(L, what, p->branch);
	}
	if (p->revlink) {
		const char *pct = strchr(p->revlink, '%');
		if (!pct || pct[1] != 's' || strchr(pct + 2, '%'))
			return config_raise(L,
					    "%s: 'revlink' must contain exactly one %%s "
					    "(the revision)",
					    what);
	}
	if (branches) {
		p->branches = dsl_new_strv(L, nb);
		dsl_fill_list(L, branches, p->branches, &p->nbranches, nb);
	} else if (kind == CONFIG_POLLER_GIT && !all) {
		p->branches = dsl_new_strv(L, 1);
		p->branches[0] = config_strdup(L, "main", 4);
		p->nbranches = 1;
	} else if (kind == CONFIG_POLLER_HG) {
		p->branches = dsl_new_strv(L, 1);
		p->branches[0] = config_strdup(L, "default", 7);
		p->nbranches = 1;
	}
	if (maildir) {
		p->max_size = 1 << 20;
		int t = dsl_get(L, 1, "max_size");
		uint64_t v = 0;
		if (t == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0)
			v = (uint64_t)lua_tointeger(L, -1);
		else if (t == LUA_TSTRING && config_parse_bytes(lua_tostring(L, -1), &v) < 0)
			v = 0;
		if (t != LUA_TNIL && (v == 0 || v > (4u << 20)))
			return config_raise(L,
					    "%s: 'max_size' must be a size such as \"256 KiB\" of "
					    "at most 4 MiB",
					    what);
		if (v)
			p->max_size = v;
		lua_pop(L, 1);
	}
	lua_getfield(L, LUA_REGISTRYINDEX, REG_CHANGESOURCES);
	lua_pushinteger(L, line);
	lua_setfield(L, -2, p->name);
	lua_pop(L, 1);
	lua_pushstring(L, p->name);
	return 1;
}

static int config_changes_maildir_source(lua_State *L)
{
	return config_changes_poller(L, CONFIG_POLLER_MAILDIR);
}

static int config_changes_git_poller(lua_State *L)
{
	return config_changes_poller(L, CONFIG_POLLER_GIT);
}

static int config_changes_hg_poller(lua_State *L)
{
	return config_changes_poller(L, CONFIG_POLLER_HG);
}

static int config_changes_svn_poller(lua_State *L)
{
	return config_changes_poller(L, CONFIG_POLLER_SVN);
}

static int config_changes_bzr_poller(lua_State *L)
{
	return config_changes_poller(L, CONFIG_POLLER_BZR);
}

static int config_changes_darcs_poller(lua_State *L)
{
	return config_changes_poller(L, CONFIG_POLLER_DARCS);
}

static int config_changes_cvs_poller(lua_State *L)
{
	return config_changes_poller(L, CONFIG_POLLER_CVS);
}

void config_changes_open(lua_State *L)
{
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, REG_CHANGESOURCES);
	static const luaL_Reg fns[] = {
		{"git_poller", config_changes_git_poller},
		{"hg_poller", config_changes_hg_poller},
		{"svn_poller", config_changes_svn_poller},
		{"bzr_poller", config_changes_bzr_poller},
		{"darcs_poller", config_changes_darcs_poller},
		{"cvs_poller", config_changes_cvs_poller},
		{"maildir_source", config_changes_maildir_source}, /* slice "alerts" */
		{NULL, NULL},
	};
	lua_pushglobaltable(L);
	luaL_setfuncs(L, fns, 0);
	lua_pop(L, 1);
}

/* change_hook.DIALECT: true, or a table with the one secret key. */
static bool config_changes_hook_dialect(lua_State *L, int t, const char *dialect, const char *key,
					char **ret_secret)
{
	int type = dsl_get(L, t, dialect);
	int idx = lua_gettop(L);
	char what[64];
	snprintf(what, sizeof(what), "change_hook.%s", dialect);
	bool on = false;
	if (type == LUA_TBOOLEAN) {
		on = lua_toboolean(L, idx);
	} else if (type == LUA_TTABLE) {
		const char *const keys[] = {key, NULL};
		dsl_check_keys(L, idx, what, keys);
		const char *v = config_changes_opt_secret(L, idx, what, key);
		free(*ret_secret);
		*ret_secret = v ? config_strdup(L, v, strlen(v)) : NULL;
		on = true;
	} else if (type != LUA_TNIL) {
		config_raise(L, "'%s' must be true or a table { %s = secret(\"...\") } (got %s)",
			     what, key, dsl_typename(L, idx));
	}
	lua_pop(L, 1);
	return on;
}

bool config_changes_setting(lua_State *L, const char *key)
{
	if (strcmp(key, "change_hook"))
		return false;
	struct config *cfg = config_ctx_of(L)->cfg;
	struct config_change_hook *h = &cfg->change_hook;
	if (lua_type(L, 3) != LUA_TTABLE)
		config_raise(L, "'change_hook' must be a table: change_hook = { token = "
				"secret(\"hook\"), github = { secret = secret(\"gh\") } }");
	static const char *const keys[] = {"token", "github", "gitlab", "gitea", NULL};
	dsl_check_keys(L, 3, "change_hook", keys);
	const char *tok = config_changes_opt_secret(L, 3, "change_hook", "token");
	free(h->token);
	h->token = tok ? config_strdup(L, tok, strlen(tok)) : NULL;
	h->github = config_changes_hook_dialect(L, 3, "github", "secret", &h->github_secret);
	h->gitlab = config_changes_hook_dialect(L, 3, "gitlab", "token", &h->gitlab_token);
	h->gitea = config_changes_hook_dialect(L, 3, "gitea", "secret", &h->gitea_secret);
	h->enabled = true;
	h->line = config_line(L);
	return true;
}

void config_changes_release(struct config *cfg)
{
	for (size_t i = 0; i < cfg->npollers; i++) {
		struct config_poller *p = &cfg->poller[i];
		free(p->name);
		free(p->repository);
		for (size_t k = 0; k < p->nbranches; k++)
			free(p->branches[k]);
		free(p->branches);
		free(p->project);
		free(p->category);
		free(p->codebase);
		free(p->revlink);
		free(p->branch);
		free(p->module);
	}
	free(cfg->poller);
	struct config_change_hook *h = &cfg->change_hook;
	free(h->token);
	free(h->github_secret);
	free(h->gitlab_token);
	free(h->gitea_secret);
	*h = (struct config_change_hook){0};
}
