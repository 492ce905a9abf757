/*
 * secret(name): a worker password or step environment value read from
 * BASEDIR/secrets/NAME or KILN_SECRET_NAME, held in an opaque userdata so
 * master.lua can pass it on but never read or print it.  Every value is
 * recorded in cfg->secrets for masking in stored logs.
 */
#include "config/config-internal.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- secret(name) ------------------------------------------------------- */

static int config_secret_gc(lua_State *L)
{
	struct dsl_secret *s = lua_touserdata(L, 1);
	if (s->value)
		explicit_bzero(s->value, strlen(s->value));
	free(s->name);
	free(s->value);
	s->name = s->value = NULL;
	return 0;
}

static int config_secret_tostring(lua_State *L)
{
	struct dsl_secret *s = lua_touserdata(L, 1);
	lua_pushfstring(L, "secret(\"%s\")", s->name ? s->name : "?");
	return 1;
}

/* Reads BASEDIR/secrets/NAME into buf; 1 found, 0 absent; raises otherwise. */
static int config_secret_file(lua_State *L, const char *basedir, const char *name, char *buf,
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
			config_raise(L, "secret '%s': cannot read '%s': %s", name, path,
				     strerror(e));
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

static int config_secret_new(lua_State *L)
{
	struct config_ctx *ctx = config_ctx_of(L);
	if (ctx->loaded)
		return config_raise(L, "secret: only allowed while master.lua loads");
	if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING)
		return config_raise(L, "secret: expected a name: secret(\"NAME\")");
	size_t nlen;
	const char *name = lua_tolstring(L, 1, &nlen);
	if (nlen == 0 || nlen > KILN_MAX_NAME || name[0] == '.' ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
		    nlen)
		return config_raise(L,
				    "secret: name must be letters, digits, '.', '_' or '-', "
				    "not starting with '.' (got '%.60s')",
				    name);

	char env[16 + KILN_MAX_NAME];
	int off = snprintf(env, sizeof(env), "KILN_SECRET_");
	for (size_t i = 0; i < nlen; i++)
		env[off + i] = isalnum((unsigned char)name[i])
				       ? (char)toupper((unsigned char)name[i])
				       : '_';
	env[off + nlen] = '\0';

	char buf[KILN_MAX_SECRET_BYTES + 2];
	size_t len = 0;
	bool found = false;
	char where[4200];
	if (ctx->basedir) {
		found = config_secret_file(L, ctx->basedir, name, buf, sizeof(buf) - 1, &len);
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

void config_secret_open(lua_State *L)
{
	luaL_newmetatable(L, MT_SECRET);
	lua_pushliteral(L, "secret"); /* the type name in Lua's own messages */
	lua_setfield(L, -2, "__name");
	lua_pushcfunction(L, config_secret_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, config_secret_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable"); /* getmetatable() cannot reach the value */
	lua_pop(L, 1);
	lua_register(L, "secret", config_secret_new);
}
