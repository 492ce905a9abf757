/*
 * The master.lua vocabulary: the settings (title, http, database, ...) and
 * the declarations worker{}, builder{}, shell{}, force_scheduler{} and
 * secret().  Each checks its table when called (so errors carry the
 * declaration's line) and copies it straight into struct config.
 */
#include "config/config-internal.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REG_SETTINGS "kiln.settings"

#define DSL_MAX_PATH 1024
#define DSL_STEP_NAME_LEN 50

/* ---- checking values ---------------------------------------------------- */

const char *dsl_typename(lua_State *L, int idx)
{
	if (luaL_testudata(L, idx, MT_SECRET))
		return "secret";
	if (luaL_testudata(L, idx, MT_STEP))
		return "step";
	return luaL_typename(L, idx);
}

/* Pushes t[key] (raw: no metamethods run) and returns its type. */
int dsl_get(lua_State *L, int t, const char *key)
{
	lua_pushstring(L, key);
	return lua_rawget(L, t);
}

void dsl_check_keys(lua_State *L, int t, const char *what, const char *const *keys)
{
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			config_raise(L, "%s: unexpected value without a key (write key = value)",
				     what);
		const char *k = lua_tostring(L, -1);
		size_t i;
		for (i = 0; keys[i]; i++)
			if (!strcmp(k, keys[i]))
				break;
		if (keys[i])
			continue;
		char known[256] = "";
		size_t off = 0;
		for (i = 0; keys[i] && off < sizeof(known); i++)
			off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%s",
						i ? ", " : "", keys[i]);
		config_raise(L, "%s: unknown key '%.60s' (known: %s)", what, k, known);
	}
}

/* The string at idx, checked: no NUL bytes (they end C strings). */
const char *dsl_check_string(lua_State *L, int idx, const char *what, const char *key,
				    size_t *ret_len)
{
	if (lua_type(L, idx) != LUA_TSTRING)
		config_raise(L, "%s: '%s' must be a string (got %s)", what, key,
			     dsl_typename(L, idx));
	size_t len;
	const char *s = lua_tolstring(L, idx, &len);
	if (strlen(s) != len)
		config_raise(L, "%s: '%s' must not contain NUL bytes", what, key);
	if (ret_len)
		*ret_len = len;
	return s;
}

/* t[key] as a string, or NULL when absent.  The string stays alive: the
 * table still references it and Lua's collector never moves objects. */
const char *dsl_opt_string(lua_State *L, int t, const char *what, const char *key,
				  size_t *ret_len)
{
	if (dsl_get(L, t, key) == LUA_TNIL) {
		lua_pop(L, 1);
		return NULL;
	}
	const char *s = dsl_check_string(L, -1, what, key, ret_len);
	lua_pop(L, 1);
	return s;
}

void dsl_check_name(lua_State *L, const char *what, const char *key, const char *s,
			   size_t len)
{
	if (len == 0)
		config_raise(L, "%s: '%s' must not be empty", what, key);
	if (len > KILN_MAX_NAME)
		config_raise(L, "%s: '%s' is longer than %d bytes", what, key, KILN_MAX_NAME);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/')
			config_raise(L, "%s: '%s' must not contain '/' (got '%.60s')", what, key, s);
		if (c < 0x20 || c == 0x7f)
			config_raise(L, "%s: '%s' must not contain control characters", what, key);
	}
}

const char *dsl_opt_name(lua_State *L, int t, const char *what, const char *key)
{
	size_t len;
	const char *s = dsl_opt_string(L, t, what, key, &len);
	if (s)
		dsl_check_name(L, what, key, s, len);
	return s;
}

const char *dsl_req_name(lua_State *L, int t, const char *what, const char *key)
{
	const char *s = dsl_opt_name(L, t, what, key);
	if (!s)
		config_raise(L, "%s: '%s' is required", what, key);
	return s;
}

/* A relative path that stays inside the worker's directory. */
static void dsl_check_relpath(lua_State *L, const char *what, const char *key, const char *s,
			      size_t len)
{
	if (len == 0)
		config_raise(L, "%s: '%s' must not be empty", what, key);
	if (len > DSL_MAX_PATH)
		config_raise(L, "%s: '%s' is longer than %d bytes", what, key, DSL_MAX_PATH);
	if (s[0] == '/')
		config_raise(L, "%s: '%s' must be a relative path (got '%.60s')", what, key, s);
	for (const char *p = s; *p;) {
		size_t seg = strcspn(p, "/");
		if (seg == 2 && p[0] == '.' && p[1] == '.')
			config_raise(L, "%s: '%s' must not contain '..' (got '%.60s')", what, key,
				     s);
		p += seg;
		if (*p)
			p++;
	}
}

bool dsl_opt_bool(lua_State *L, int t, const char *what, const char *key, bool def)
{
	int type = dsl_get(L, t, key);
	bool v = def;
	if (type == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	else if (type != LUA_TNIL)
		config_raise(L, "%s: '%s' must be true or false (got %s)", what, key,
			     dsl_typename(L, -1));
	lua_pop(L, 1);
	return v;
}

long long dsl_opt_int(lua_State *L, int t, const char *what, const char *key,
			     long long def, long long min, long long max)
{
	int type = dsl_get(L, t, key);
	long long v = def;
	if (type != LUA_TNIL) {
		int isint = 0;
		if (type == LUA_TNUMBER)
			v = lua_tointegerx(L, -1, &isint);
		if (!isint)
			config_raise(L, "%s: '%s' must be an integer (got %s)", what, key,
				     dsl_typename(L, -1));
		if (v < min || v > max)
			config_raise(L, "%s: '%s' must be between %lld and %lld (got %lld)", what,
				     key, min, max, v);
	}
	lua_pop(L, 1);
	return v;
}

/* Seconds: a number >= 0, at most a year. */
double dsl_opt_seconds(lua_State *L, int t, const char *what, const char *key, double def)
{
	int type = dsl_get(L, t, key);
	double v = def;
	if (type != LUA_TNIL) {
		if (type != LUA_TNUMBER)
			config_raise(L, "%s: '%s' must be a number of seconds (got %s)", what, key,
				     dsl_typename(L, -1));
		v = (double)lua_tonumber(L, -1);
		if (!(v >= 0 && v <= 366.0 * 86400))
			config_raise(L, "%s: '%s' must be between 0 and 31622400 seconds", what,
				     key);
	}
	lua_pop(L, 1);
	return v;
}

/* The value at idx must be a sequence 1..n with nothing else; returns n. */
size_t dsl_check_list(lua_State *L, int idx, const char *what, const char *key,
			     const char *of)
{
	idx = lua_absindex(L, idx);
	if (lua_type(L, idx) != LUA_TTABLE)
		config_raise(L, "%s: '%s' must be a list of %s (got %s)", what, key, of,
			     dsl_typename(L, idx));
	lua_Unsigned n = lua_rawlen(L, idx);
	lua_Unsigned count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		int isint = 0;
		lua_Integer k = lua_tointegerx(L, -1, &isint);
		if (lua_type(L, -1) != LUA_TNUMBER || !isint || k < 1 || (lua_Unsigned)k > n)
			config_raise(L, "%s: '%s' must be a list of %s (it has other keys)", what,
				     key, of);
		count++;
	}
	if (count != n)
		config_raise(L, "%s: '%s' must be a list of %s (it has holes)", what, key, of);
	return (size_t)n;
}

/* A list of names, no repeats; pushes nothing.  Returns n (may be 0). */
size_t dsl_check_name_list(lua_State *L, int idx, const char *what, const char *key)
{
	idx = lua_absindex(L, idx);
	size_t n = dsl_check_list(L, idx, what, key, "names");
	lua_newtable(L); /* seen */
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, (lua_Integer)i);
		size_t len;
		const char *s = dsl_check_string(L, -1, what, key, &len);
		dsl_check_name(L, what, key, s, len);
		lua_pushvalue(L, -1);
		if (lua_rawget(L, -3) != LUA_TNIL)
			config_raise(L, "%s: '%s' lists '%.60s' twice", what, key, s);
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
		lua_rawset(L, -3);
	}
	lua_pop(L, 1);
	return n;
}

/* A charged, NULL-terminated, empty vector for n strings. */
char **dsl_new_strv(lua_State *L, size_t n)
{
	config_charge(L, (n + 1) * sizeof(char *));
	return xcalloc(n + 1, sizeof(char *));
}

/* Copies the (checked) list at idx into v, counting each copy in *ret_n. */
void dsl_fill_list(lua_State *L, int idx, char **v, size_t *ret_n, size_t n)
{
	idx = lua_absindex(L, idx);
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(L, idx, (lua_Integer)(i + 1));
		size_t len;
		const char *s = lua_tolstring(L, -1, &len);
		v[i] = config_strdup(L, s, len);
		*ret_n = i + 1; /* counted as soon as owned: a raise frees what exists */
		lua_pop(L, 1);
	}
}

/* Raises if name is already in the registry table reg (name -> line). */
void dsl_check_unique(lua_State *L, const char *reg, const char *kind, const char *name)
{
	lua_getfield(L, LUA_REGISTRYINDEX, reg);
	if (lua_getfield(L, -1, name) != LUA_TNIL) {
		int prev = (int)lua_tointeger(L, -1);
		config_raise(L, "%s '%s' is already declared at line %d", kind, name, prev);
	}
	lua_pop(L, 2);
}

/* Records name once it is in cfg: a declaration that failed inside pcall()
 * must not satisfy later references. */
void dsl_register(lua_State *L, const char *reg, const char *name, int line)
{
	lua_getfield(L, LUA_REGISTRYINDEX, reg);
	lua_pushinteger(L, line);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
}

bool dsl_registered(lua_State *L, const char *reg, const char *name)
{
	lua_getfield(L, LUA_REGISTRYINDEX, reg);
	bool found = lua_getfield(L, -1, name) != LUA_TNIL;
	lua_pop(L, 2);
	return found;
}

void dsl_check_table_arg(lua_State *L, const char *decl)
{
	if (config_ctx_of(L)->loaded)
		config_raise(L, "%s: declarations are only allowed while master.lua loads", decl);
	if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TTABLE)
		config_raise(L, "%s: expected one table: %s { name = ..., ... }", decl, decl);
}

/* "worker 'w1'" when the name is usable, else just "worker". */
void dsl_what(lua_State *L, char *what, size_t size, const char *decl, const char *name)
{
	if (dsl_get(L, 1, "name") == LUA_TSTRING && !name)
		name = lua_tostring(L, -1);
	lua_pop(L, 1);
	if (name && strlen(name) <= KILN_MAX_NAME)
		snprintf(what, size, "%s '%s'", decl, name);
	else
		snprintf(what, size, "%s", decl);
}

/* ---- secret(name) ------------------------------------------------------- */

static int dsl_secret_gc(lua_State *L)
{
	struct dsl_secret *s = lua_touserdata(L, 1);
	if (s->value)
		explicit_bzero(s->value, strlen(s->value));
	free(s->name);
	free(s->value);
	s->name = s->value = NULL;
	return 0;
}

static int dsl_secret_tostring(lua_State *L)
{
	struct dsl_secret *s = lua_touserdata(L, 1);
	lua_pushfstring(L, "secret(\"%s\")", s->name ? s->name : "?");
	return 1;
}

/* Reads BASEDIR/secrets/NAME into buf; 1 found, 0 absent; raises otherwise. */
static int dsl_secret_file(lua_State *L, const char *basedir, const char *name, char *buf,
			   size_t size, size_t *ret_len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/secrets/%s", basedir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		config_raise(L, "secret '%s': cannot open '%s': %s", name, path, strerror(errno));
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			config_raise(L, "secret '%s': cannot read '%s': %s", name, path, strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == size)
			break;
	}
	close(fd);
	*ret_len = len;
	return 1;
}

static int dsl_secret(lua_State *L)
{
	struct config_ctx *ctx = config_ctx_of(L);
	if (ctx->loaded)
		return config_raise(L, "secret: only allowed while master.lua loads");
	if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING)
		return config_raise(L, "secret: expected a name: secret(\"NAME\")");
	size_t nlen;
	const char *name = lua_tolstring(L, 1, &nlen);
	if (nlen == 0 || nlen > KILN_MAX_NAME || name[0] == '.' ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != nlen)
		return config_raise(L, "secret: name must be letters, digits, '.', '_' or '-', "
				       "not starting with '.' (got '%.60s')",
				    name);

	char env[16 + KILN_MAX_NAME];
	int off = snprintf(env, sizeof(env), "KILN_SECRET_");
	for (size_t i = 0; i < nlen; i++)
		env[off + i] = isalnum((unsigned char)name[i]) ? (char)toupper((unsigned char)name[i]) : '_';
	env[off + nlen] = '\0';

	char buf[KILN_MAX_SECRET_BYTES + 2];
	size_t len = 0;
	bool found = false;
	char where[4200];
	if (ctx->basedir) {
		found = dsl_secret_file(L, ctx->basedir, name, buf, sizeof(buf) - 1, &len);
		snprintf(where, sizeof(where), "no file '%s/secrets/%s' and ", ctx->basedir, name);
	} else
		where[0] = '\0';
	if (!found) {
		const char *v = getenv(env);
		if (v) {
			len = strnlen(v, sizeof(buf) - 1);
			memcpy(buf, v, len);
			found = true;
		}
	}
	if (!found)
		return config_raise(L, "secret '%s' not found: %sno environment variable %s", name,
				    where, env);
	if (len > KILN_MAX_SECRET_BYTES)
		return config_raise(L, "secret '%s' is larger than %d bytes", name,
				    KILN_MAX_SECRET_BYTES);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	if (len == 0)
		return config_raise(L, "secret '%s' is empty", name);
	if (strlen(buf) != len)
		return config_raise(L, "secret '%s' contains a NUL byte", name);

	struct dsl_secret *s = lua_newuserdatauv(L, sizeof(*s), 0);
	*s = (struct dsl_secret){0};
	luaL_setmetatable(L, MT_SECRET);
	s->name = config_strdup(L, name, nlen);
	s->value = config_strdup(L, buf, len);
	explicit_bzero(buf, sizeof(buf));

	struct config *cfg = ctx->cfg;
	size_t i;
	for (i = 0; i < cfg->nsecrets; i++)
		if (!strcmp(cfg->secrets[i], s->value))
			break;
	if (i == cfg->nsecrets) {
		config_charge(L, sizeof(char *) + len + 1);
		ARRAY_GROW(cfg->secrets, cfg->nsecrets + 1, cfg->secrets_alloc);
		cfg->secrets[cfg->nsecrets++] = xstrdup(s->value);
	}
	return 1;
}

/* ---- settings ----------------------------------------------------------- */

static void dsl_check_url(lua_State *L, const char *key, const char *s, size_t len)
{
	bool ok = (!strncmp(s, "http://", 7) && len > 7) || (!strncmp(s, "https://", 8) && len > 8);
	for (size_t i = 0; ok && i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			ok = false;
	if (!ok)
		config_raise(L, "'%s' must be an http:// or https:// URL (got '%.60s')", key, s);
}

static void dsl_set_listen(lua_State *L, const char *key, const char *s, struct config_listen *l)
{
	struct config_listen nl;
	if (config_parse_listen(s, &nl) < 0)
		config_raise(L,
			     "'%s' must be HOST:PORT with a numeric address or localhost and a "
			     "port 0-65535 (got '%.60s')",
			     key, s);
	free(l->host);
	*l = nl;
}

static void dsl_replace(char **field, char *v)
{
	free(*field);
	*field = v;
}

/* __newindex of the global table: every global assignment lands here, so
 * a misspelt setting is an error instead of being silently ignored. */
static int dsl_setting(lua_State *L)
{
	struct config_ctx *ctx = config_ctx_of(L);
	struct config *cfg = ctx->cfg;
	if (ctx->loaded)
		return config_raise(L, "cannot set globals from a function run by the master");
	if (lua_type(L, 2) != LUA_TSTRING)
		return config_raise(L, "cannot set a global with a %s key", luaL_typename(L, 2));
	const char *key = lua_tostring(L, 2);
	size_t len;
	const char *s;

	if (!strcmp(key, "title")) {
		s = dsl_check_string(L, 3, "setting", key, &len);
		dsl_replace(&cfg->title, config_strdup(L, s, len));
	} else if (!strcmp(key, "title_url") || !strcmp(key, "url")) {
		s = dsl_check_string(L, 3, "setting", key, &len);
		dsl_check_url(L, key, s, len);
		dsl_replace(key[0] == 'u' ? &cfg->url : &cfg->title_url, config_strdup(L, s, len));
	} else if (!strcmp(key, "http")) {
		if (lua_type(L, 3) != LUA_TTABLE)
			return config_raise(L, "'http' must be a table: http = { listen = \"%s\" }",
					    "127.0.0.1:8010");
		static const char *const keys[] = {"listen", NULL};
		dsl_check_keys(L, 3, "http", keys);
		s = dsl_opt_string(L, 3, "http", "listen", &len);
		if (s)
			dsl_set_listen(L, "http.listen", s, &cfg->http);
		ctx->http_line = config_line(L);
	} else if (!strcmp(key, "workers_listen")) {
		s = dsl_check_string(L, 3, "setting", key, &len);
		dsl_set_listen(L, key, s, &cfg->workers);
		ctx->workers_line = config_line(L);
	} else if (!strcmp(key, "database")) {
		s = dsl_check_string(L, 3, "setting", key, &len);
		/* Only SQLite is implemented: refuse PostgreSQL here, with the line,
		 * rather than let the master fail later.  The URL is not echoed: it
		 * may carry a password. */
		if (!strncmp(s, "postgresql://", 13) || !strncmp(s, "postgres://", 11))
			return config_raise(L,
					    "database '%s//...': PostgreSQL is not supported yet; "
					    "use 'sqlite:state.sqlite'",
					    s[8] == ':' ? "postgres:" : "postgresql:");
		if (strncmp(s, "sqlite:", 7) || len <= 7)
			return config_raise(L, "'database' must be \"sqlite:PATH\" (got '%.60s')", s);
		dsl_replace(&cfg->db_url, config_strdup(L, s, len));
	} else if (config_sched_setting(L, key)) {
		/* schedulers and queue settings (config-sched.c) */
	} else if (config_changes_setting(L, key)) {
		/* change_hook (config-changes.c) */
	} else
		return config_raise(L,
				    "unknown setting '%.60s' (declare your own variables with "
				    "'local')",
				    key);

	lua_getfield(L, LUA_REGISTRYINDEX, REG_SETTINGS);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, -3);
	return 0;
}

/* ---- worker { } ---------------------------------------------------------- */

static int dsl_worker(lua_State *L)
{
	static const char *const keys[] = {"name", "password", "max_builds", NULL};
	struct config *cfg = config_ctx_of(L)->cfg;
	int line = config_line(L);
	char what[256];

	dsl_check_table_arg(L, "worker");
	dsl_what(L, what, sizeof(what), "worker", NULL);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_req_name(L, 1, what, "name");
	dsl_check_unique(L, REG_WORKERS, "worker", name);

	int t = dsl_get(L, 1, "password");
	if (t == LUA_TNIL)
		return config_raise(L, "%s: 'password' is required: password = secret(\"%s\")",
				    what, name);
	if (t == LUA_TSTRING)
		return config_raise(L, "%s: password must come from secret(...)", what);
	struct dsl_secret *sec = luaL_testudata(L, -1, MT_SECRET);
	if (!sec)
		return config_raise(L, "%s: 'password' must be a secret(...) (got %s)", what,
				    dsl_typename(L, -1));
	long long max_builds = dsl_opt_int(L, 1, what, "max_builds", 1, 1, 1000000);

	config_charge(L, sizeof(struct config_worker));
	ARRAY_GROW(cfg->worker, cfg->nworkers + 1, cfg->worker_alloc);
	struct config_worker *w = &cfg->worker[cfg->nworkers++];
	*w = (struct config_worker){.max_builds = (int)max_builds, .line = line};
	w->name = config_strdup(L, name, strlen(name));
	w->password = config_strdup(L, sec->value, strlen(sec->value));
	dsl_register(L, REG_WORKERS, name, line);
	lua_pushstring(L, name);
	return 1;
}

/* ---- shell { } ----------------------------------------------------------- */

static int dsl_step_gc(lua_State *L)
{
	config_step_release(lua_touserdata(L, 1));
	return 0;
}

static int dsl_step_tostring(lua_State *L)
{
	struct config_step *s = lua_touserdata(L, 1);
	lua_pushfstring(L, "shell{name=\"%s\"}", s->name ? s->name : "?");
	return 1;
}

/* Buildbot-like: the command's first words, shortened, '/' made '_'. */
static char *dsl_step_default_name(lua_State *L, const struct config_step *s)
{
	char name[DSL_STEP_NAME_LEN + 8] = "";
	size_t len = 0;
	int words = 0;
	const char *text = s->command;
	char *const *argv = s->argv;
	while (words < 3 && len < DSL_STEP_NAME_LEN) {
		const char *w;
		size_t wlen;
		if (argv) {
			if (!*argv)
				break;
			w = *argv++;
			wlen = strlen(w);
		} else {
			text += strspn(text, " \t\r\n\v\f");
			if (!*text)
				break;
			w = text;
			wlen = strcspn(text, " \t\r\n\v\f");
			text += wlen;
		}
		if (wlen == 0)
			continue;
		if (words == 0) { /* "/usr/bin/make" and "./configure" read better as their basename */
			const char *slash = memrchr(w, '/', wlen);
			if (slash && (size_t)(slash - w) + 1 < wlen) {
				wlen -= (size_t)(slash - w) + 1;
				w = slash + 1;
			}
		}
		if (words++)
			name[len++] = ' ';
		for (size_t i = 0; i < wlen && len < DSL_STEP_NAME_LEN; i++) {
			unsigned char c = (unsigned char)w[i];
			name[len++] = c == '/' || c < 0x20 || c == 0x7f ? '_' : (char)c;
		}
	}
	/* do not end inside a UTF-8 sequence */
	if (len > 0) {
		size_t lead = len - 1;
		while (lead > 0 && ((unsigned char)name[lead] & 0xc0) == 0x80)
			lead--;
		unsigned char c = (unsigned char)name[lead];
		size_t need = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (lead + need > len)
			len = lead;
	}
	while (len > 0 && name[len - 1] == ' ')
		len--;
	if (len == 0)
		return config_strdup(L, "shell", 5);
	return config_strdup(L, name, len);
}

static int dsl_env_cmp(const void *a, const void *b)
{
	return strcmp(((const struct config_env *)a)->name, ((const struct config_env *)b)->name);
}

static void dsl_shell_env(lua_State *L, const char *what, struct config_step *step)
{
	if (dsl_get(L, 1, "env") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int t = lua_gettop(L);
	if (lua_type(L, t) != LUA_TTABLE)
		config_raise(L, "%s: 'env' must be a table of NAME = value (got %s)", what,
			     dsl_typename(L, t));
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		n++;
	}
	config_charge(L, n * sizeof(struct config_env));
	step->env = xcalloc(n ? n : 1, sizeof(struct config_env));
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			config_raise(L, "%s: 'env' keys must be variable names (got %s)", what,
				     luaL_typename(L, -2));
		size_t klen;
		const char *k = lua_tolstring(L, -2, &klen);
		if (klen == 0 || strlen(k) != klen || strchr(k, '='))
			config_raise(L, "%s: env: '%.60s' is not a valid variable name", what, k);
		const char *v = NULL;
		size_t vlen = 0;
		struct dsl_secret *sec;
		switch (lua_type(L, -1)) {
		case LUA_TSTRING:
			v = lua_tolstring(L, -1, &vlen);
			if (strlen(v) != vlen)
				config_raise(L, "%s: env: '%.60s' must not contain NUL bytes", what,
					     k);
			break;
		case LUA_TNUMBER:
			lua_pushvalue(L, -1);
			v = lua_tolstring(L, -1, &vlen); /* converts the copy only */
			lua_replace(L, -2);
			break;
		case LUA_TBOOLEAN:
			if (!lua_toboolean(L, -1))
				break; /* false: unset on the worker */
			/* fall through */
		default:
			sec = luaL_testudata(L, -1, MT_SECRET);
			if (!sec)
				config_raise(L,
					     "%s: env: '%.60s' must be a string, a number, "
					     "secret(...) or false to unset (got %s)",
					     what, k, dsl_typename(L, -1));
			v = sec->value;
			vlen = strlen(v);
		}
		struct config_env *e = &step->env[step->nenv++];
		e->name = config_strdup(L, k, klen);
		e->value = v ? config_strdup(L, v, vlen) : NULL;
		lua_pop(L, 1);
	}
	qsort(step->env, step->nenv, sizeof(*step->env), dsl_env_cmp);
	lua_pop(L, 1);
}

static void dsl_shell_command(lua_State *L, const char *what, struct config_step *step)
{
	int type = dsl_get(L, 1, "command");
	int t = lua_gettop(L);
	if (type == LUA_TNIL)
		config_raise(L, "%s: 'command' is required", what);
	if (type == LUA_TSTRING) {
		size_t len;
		const char *s = dsl_check_string(L, t, what, "command", &len);
		if (strspn(s, " \t\r\n\v\f") == len)
			config_raise(L, "%s: 'command' must not be empty", what);
		step->command = config_strdup(L, s, len);
	} else if (type == LUA_TTABLE) {
		size_t n = dsl_check_list(L, t, what, "command", "strings");
		if (n == 0)
			config_raise(L, "%s: 'command' must not be empty", what);
		for (size_t i = 1; i <= n; i++) {
			int et = lua_rawgeti(L, t, (lua_Integer)i);
			size_t len = 1;
			if (et != LUA_TNUMBER)
				dsl_check_string(L, -1, what, "command", &len);
			if (i == 1 && len == 0)
				config_raise(L, "%s: 'command' must not start with an empty word",
					     what);
			lua_pop(L, 1);
		}
		config_charge(L, (n + 1) * sizeof(char *));
		step->argv = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++) {
			lua_rawgeti(L, t, (lua_Integer)(i + 1));
			lua_pushvalue(L, -1); /* numbers: convert a copy, not the user's table */
			size_t len;
			const char *s = lua_tolstring(L, -1, &len);
			step->argv[i] = config_strdup(L, s, len);
			lua_pop(L, 2);
		}
	} else
		config_raise(L, "%s: 'command' must be a string or a list of strings (got %s)",
			     what, dsl_typename(L, t));
	lua_pop(L, 1);
}

struct config_step dsl_step_flags(lua_State *L, const char *what)
{
	return (struct config_step){
		.halt_on_failure = dsl_opt_bool(L, 1, what, "halt_on_failure", false),
		.flunk_on_failure = dsl_opt_bool(L, 1, what, "flunk_on_failure", true),
		.warn_on_failure = dsl_opt_bool(L, 1, what, "warn_on_failure", false),
		.always_run = dsl_opt_bool(L, 1, what, "always_run", false),
	};
}

static int dsl_shell(lua_State *L)
{
	static const char *const keys[] = {
		"name",	    "command",	       "env",		  "workdir",	      "timeout",
		"max_time", "halt_on_failure", "flunk_on_failure", "warn_on_failure", "always_run",
		NULL};
	int line = config_line(L);
	char what[256];

	dsl_check_table_arg(L, "shell");
	dsl_what(L, what, sizeof(what), "shell", NULL);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_opt_name(L, 1, what, "name");
	size_t wlen;
	const char *workdir = dsl_opt_string(L, 1, what, "workdir", &wlen);
	if (workdir)
		dsl_check_relpath(L, what, "workdir", workdir, wlen);
	double timeout = dsl_opt_seconds(L, 1, what, "timeout", 1200);
	double max_time = dsl_opt_seconds(L, 1, what, "max_time", 0);
	struct config_step flags = dsl_step_flags(L, what);

	/* the userdata owns the step from here: a raise frees it with __gc */
	struct config_step *step = lua_newuserdatauv(L, sizeof(*step), 0);
	*step = flags;
	step->kind = CONFIG_STEP_SHELL;
	step->timeout = timeout;
	step->max_time = max_time;
	step->line = line;
	luaL_setmetatable(L, MT_STEP);
	int ud = lua_gettop(L);

	lua_settop(L, ud);
	dsl_shell_command(L, what, step);
	dsl_shell_env(L, what, step);
	step->workdir = config_strdup(L, workdir ? workdir : "build", workdir ? wlen : 5);
	step->name = name ? config_strdup(L, name, strlen(name)) : dsl_step_default_name(L, step);
	lua_settop(L, ud);
	return 1;
}

/* ---- builder { } --------------------------------------------------------- */

static void dsl_step_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	*dst = *src;
	dst->name = dst->command = dst->workdir = NULL;
	dst->argv = NULL;
	dst->env = NULL;
	dst->nenv = 0;
	config_sched_step_copy(L, dst, src); /* trigger fields (config-sched.c) */
	dst->name = config_strdup(L, src->name, strlen(src->name));
	dst->workdir = src->workdir ? config_strdup(L, src->workdir, strlen(src->workdir)) : NULL;
	if (src->command)
		dst->command = config_strdup(L, src->command, strlen(src->command));
	if (src->argv) {
		size_t n = 0;
		while (src->argv[n])
			n++;
		config_charge(L, (n + 1) * sizeof(char *));
		dst->argv = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			dst->argv[i] = config_strdup(L, src->argv[i], strlen(src->argv[i]));
	}
	if (src->nenv) {
		config_charge(L, src->nenv * sizeof(struct config_env));
		dst->env = xcalloc(src->nenv, sizeof(struct config_env));
		for (size_t i = 0; i < src->nenv; i++) {
			struct config_env *e = &dst->env[dst->nenv++];
			e->name = config_strdup(L, src->env[i].name, strlen(src->env[i].name));
			if (src->env[i].value)
				e->value = config_strdup(L, src->env[i].value,
							 strlen(src->env[i].value));
		}
	}
}

static int dsl_builder(lua_State *L)
{
	static const char *const keys[] = {"name",     "workers", "description", "tags",
					   "builddir", "steps",	  "collapse_requests",
					   "cancel_superseded", NULL};
	struct config *cfg = config_ctx_of(L)->cfg;
	int line = config_line(L);
	char what[256];

	dsl_check_table_arg(L, "builder");
	dsl_what(L, what, sizeof(what), "builder", NULL);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_req_name(L, 1, what, "name");
	dsl_check_unique(L, REG_BUILDERS, "builder", name);

	if (dsl_get(L, 1, "workers") == LUA_TNIL)
		return config_raise(L, "%s: 'workers' is required: workers = { \"worker1\" }",
				    what);
	int workers = lua_gettop(L);
	size_t nworkers = dsl_check_name_list(L, workers, what, "workers");
	if (nworkers == 0)
		return config_raise(L, "%s: 'workers' must name at least one worker", what);

	size_t dlen = 0, blen = 0, ntags = 0, nsteps;
	const char *description = dsl_opt_string(L, 1, what, "description", &dlen);
	const char *builddir = dsl_opt_string(L, 1, what, "builddir", &blen);
	if (builddir)
		dsl_check_relpath(L, what, "builddir", builddir, blen);

	dsl_get(L, 1, "tags");
	int tags = lua_gettop(L);
	if (!lua_isnil(L, tags)) {
		ntags = dsl_check_list(L, tags, what, "tags", "strings");
		for (size_t i = 1; i <= ntags; i++) {
			lua_rawgeti(L, tags, (lua_Integer)i);
			size_t len;
			dsl_check_string(L, -1, what, "tags", &len);
			if (len == 0 || len > KILN_MAX_NAME)
				config_raise(L, "%s: tags must be 1 to %d bytes long", what,
					     KILN_MAX_NAME);
			lua_pop(L, 1);
		}
	}

	if (dsl_get(L, 1, "steps") == LUA_TNIL)
		return config_raise(L, "%s: 'steps' is required: steps = { shell { ... } }", what);
	int steps = lua_gettop(L);
	nsteps = dsl_check_list(L, steps, what, "steps", "steps");
	if (nsteps == 0)
		return config_raise(L, "%s: 'steps' must list at least one step", what);
	for (size_t i = 1; i <= nsteps; i++) {
		lua_rawgeti(L, steps, (lua_Integer)i);
		if (!luaL_testudata(L, -1, MT_STEP))
			config_raise(L, "%s: steps[%zu] must be a step such as shell { ... } (got %s)",
				     what, i, dsl_typename(L, -1));
		lua_pop(L, 1);
	}

	/* checked: now copy; each piece is owned by cfg the moment it exists */
	config_charge(L, sizeof(struct config_builder));
	ARRAY_GROW(cfg->builder, cfg->nbuilders + 1, cfg->builder_alloc);
	struct config_builder *b = &cfg->builder[cfg->nbuilders++];
	*b = (struct config_builder){.line = line};
	b->name = config_strdup(L, name, strlen(name));
	if (description)
		b->description = config_strdup(L, description, dlen);
	b->builddir = builddir ? config_strdup(L, builddir, blen) : config_strdup(L, name, strlen(name));
	b->workers = dsl_new_strv(L, nworkers);
	dsl_fill_list(L, workers, b->workers, &b->nworkers, nworkers);
	b->tags = dsl_new_strv(L, ntags);
	dsl_fill_list(L, tags, b->tags, &b->ntags, ntags);
	config_charge(L, nsteps * sizeof(struct config_step));
	b->steps = xcalloc(nsteps, sizeof(struct config_step));
	for (size_t i = 0; i < nsteps; i++) {
		lua_rawgeti(L, steps, (lua_Integer)(i + 1));
		const struct config_step *src = lua_touserdata(L, -1);
		b->nsteps = i + 1;
		dsl_step_copy(L, &b->steps[i], src);
		lua_pop(L, 1);
	}
	config_sched_builder(L, what, b); /* queue keys (config-sched.c) */
	dsl_register(L, REG_BUILDERS, name, line);
	lua_pushstring(L, name);
	return 1;
}

/* ---- setup and final checks ---------------------------------------------- */

void config_dsl_open(lua_State *L)
{
	luaL_newmetatable(L, MT_SECRET);
	lua_pushliteral(L, "secret"); /* the type name in Lua's own messages */
	lua_setfield(L, -2, "__name");
	lua_pushcfunction(L, dsl_secret_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, dsl_secret_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable"); /* getmetatable() cannot reach the value */
	lua_pop(L, 1);

	luaL_newmetatable(L, MT_STEP);
	lua_pushliteral(L, "step");
	lua_setfield(L, -2, "__name");
	lua_pushcfunction(L, dsl_step_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, dsl_step_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);

	static const char *const regs[] = {REG_WORKERS, REG_BUILDERS, REG_SCHEDULERS,
					   REG_SETTINGS};
	for (size_t i = 0; i < ARRAY_SIZE(regs); i++) {
		lua_newtable(L);
		lua_setfield(L, LUA_REGISTRYINDEX, regs[i]);
	}

	static const luaL_Reg fns[] = {
		{"worker", dsl_worker},
		{"builder", dsl_builder},
		{"shell", dsl_shell},
		{"secret", dsl_secret},
		{NULL, NULL},
	};
	lua_pushglobaltable(L);
	luaL_setfuncs(L, fns, 0);
	config_sched_open(L); /* schedulers, trigger {} (config-sched.c) */
	config_changes_open(L); /* git_poller, hg_poller, svn_poller (config-changes.c) */

	/* settings live in a side table: reads fall through to it, writes are checked */
	lua_createtable(L, 0, 2);
	lua_getfield(L, LUA_REGISTRYINDEX, REG_SETTINGS);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, dsl_setting);
	lua_setfield(L, -2, "__newindex");
	lua_setmetatable(L, -2);
	lua_pop(L, 1);
}

void config_dsl_finish(lua_State *L)
{
	struct config_ctx *ctx = config_ctx_of(L);
	struct config *cfg = ctx->cfg;

	for (size_t i = 0; i < cfg->nbuilders; i++) {
		const struct config_builder *b = &cfg->builder[i];
		for (size_t k = 0; k < b->nworkers; k++)
			if (!dsl_registered(L, REG_WORKERS, b->workers[k]))
				config_raise_at(L, b->line,
						"builder '%s': unknown worker '%s' (declare it with "
						"worker { name = \"%s\", ... })",
						b->name, b->workers[k], b->workers[k]);
	}

	config_sched_finish(L); /* scheduler references, the implicit force scheduler */

	if (cfg->http.port != 0 && cfg->http.port == cfg->workers.port &&
	    !strcmp(cfg->http.host, cfg->workers.host))
		config_raise_at(L, ctx->workers_line ? ctx->workers_line : ctx->http_line,
				"workers_listen '%s:%d' is the same address as http.listen",
				cfg->workers.host, cfg->workers.port);
}

int config_parse_listen(const char *text, struct config_listen *ret)
{
	char host[64];
	const char *port;
	size_t hlen;

	if (!text)
		return -EINVAL;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - text - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return -EINVAL;
		port = close + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - text);
		if (hlen == 0 || hlen >= sizeof(host) || memchr(text, ':', hlen))
			return -EINVAL;
		memcpy(host, text, hlen);
		host[hlen] = '\0';
		struct in_addr a4;
		if (strcmp(host, "localhost") && inet_pton(AF_INET, host, &a4) != 1)
			return -EINVAL;
		port = colon + 1;
	}
	unsigned long long p;
	if (str_to_u64(str_from(port), &p) < 0 || p > 65535)
		return -EINVAL;
	ret->host = xstrdup(host);
	ret->port = (int)p;
	return 0;
}
