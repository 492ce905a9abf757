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

/* Reads secret NAME (BASEDIR/secrets/NAME, else KILN_SECRET_<NAME>) into
 * buf (NUL-terminated); raises naming both places when neither has it. */
static size_t config_secret_read(lua_State *L, const char *name, size_t nlen, char *buf,
				 size_t size)
{
	struct config_ctx *ctx = config_ctx_of(L);
	if (nlen == 0 || nlen > KILN_MAX_NAME || name[0] == '.' ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
		    nlen)
		config_raise(L,
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

	size_t len = 0;
	bool found = false;
	char where[4200];
	if (ctx->basedir) {
		found = config_secret_file(L, ctx->basedir, name, buf, size - 1, &len);
		snprintf(where, sizeof(where), "no file '%s/secrets/%s' and ", ctx->basedir, name);
	} else
		where[0] = '\0';
	if (!found) {
		const char *v = getenv(env);
		if (v) {
			len = strnlen(v, size - 1);
			memcpy(buf, v, len);
			found = true;
		}
	}
	if (!found)
		config_raise(L, "secret '%s' not found: %sno environment variable %s", name, where,
			     env);
	if (len > KILN_MAX_SECRET_BYTES)
		config_raise(L, "secret '%s' is larger than %d bytes", name, KILN_MAX_SECRET_BYTES);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	if (len == 0)
		config_raise(L, "secret '%s' is empty", name);
	if (strlen(buf) != len)
		config_raise(L, "secret '%s' contains a NUL byte", name);
	return len;
}

/* Every value is kept once in cfg->secrets, for masking. */
static void config_secret_remember(lua_State *L, const char *value, size_t len)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	for (size_t i = 0; i < cfg->nsecrets; i++)
		if (!strcmp(cfg->secrets[i], value))
			return;
	config_charge(L, sizeof(char *) + len + 1);
	ARRAY_GROW(cfg->secrets, cfg->nsecrets + 1, cfg->secrets_alloc);
	cfg->secrets[cfg->nsecrets++] = xstrdup(value);
}

void config_secret_named(lua_State *L, const char *name, size_t nlen)
{
	struct config *cfg = config_ctx_of(L)->cfg;
	for (size_t i = 0; i < cfg->nnamed_secrets; i++)
		if (strlen(cfg->named_secrets[i].name) == nlen &&
		    !memcmp(cfg->named_secrets[i].name, name, nlen))
			return;
	char nbuf[KILN_MAX_NAME + 1];
	if (nlen > KILN_MAX_NAME)
		config_raise(L, "secret: name longer than %d bytes", KILN_MAX_NAME);
	memcpy(nbuf, name, nlen);
	nbuf[nlen] = '\0';
	char buf[KILN_MAX_SECRET_BYTES + 2];
	size_t len = config_secret_read(L, nbuf, nlen, buf, sizeof(buf));
	config_secret_remember(L, buf, len);
	config_charge(L, sizeof(*cfg->named_secrets) + nlen + len + 2);
	ARRAY_GROW(cfg->named_secrets, cfg->nnamed_secrets + 1, cfg->named_secrets_alloc);
	struct config_named_secret *ns = &cfg->named_secrets[cfg->nnamed_secrets++];
	ns->name = xstrdup(nbuf);
	ns->value = xstrdup(buf);
	explicit_bzero(buf, sizeof(buf));
}

const char *config_secret_value(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nnamed_secrets; i++)
		if (!strcmp(cfg->named_secrets[i].name, name))
			return cfg->named_secrets[i].value;
	return NULL;
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
	char buf[KILN_MAX_SECRET_BYTES + 2];
	size_t len = config_secret_read(L, name, nlen, buf, sizeof(buf));

	struct dsl_secret *s = lua_newuserdatauv(L, sizeof(*s), 1 /* fp (config-fp.c) */);
	*s = (struct dsl_secret){0};
	luaL_setmetatable(L, MT_SECRET);
	s->name = config_strdup(L, name, nlen);
	s->value = config_strdup(L, buf, len);
	explicit_bzero(buf, sizeof(buf));
	config_secret_remember(L, s->value, len);
	return 1;
}

void config_secret_open(lua_State *L)
{
	dsl_new_type(L, MT_SECRET, "secret", config_secret_gc, config_secret_tostring);
	lua_pop(L, 1);
	lua_register(L, "secret", config_secret_new);
}
