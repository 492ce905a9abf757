/*
 * reporter { kind = "telegram" | "zulip", ... }: the chat reporters' own keys
 * (the common ones: config-reporter.c; the senders:
 * src/master/reporters/telegram.c and zulip.c).  The bot token (telegram)
 * and the API key (zulip) come from secret(...) only; the API's base URL
 * is configurable so that a server on loopback can play the service.
 */
#include "config/config-internal.h"
#include "config/config-reporter.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_CHAT_MAX_URL 2048
#define CONFIG_CHAT_MAX_FIELD 256

const char *const config_reporter_telegram_keys[] = {"api_url", "token", "chat_id", NULL};
const char *const config_reporter_zulip_keys[] = {"site",   "email", "api_key",
						  "stream", "topic", NULL};

/* t[key]: an http:// or https:// URL without spaces (trailing '/' dropped). */
static char *config_chat_url(lua_State *L, const char *what, const char *key, const char *def)
{
	size_t len;
	const char *s = dsl_opt_string(L, 1, what, key, &len);
	if (!s) {
		if (!def)
			config_raise(L, "%s: '%s' is required: %s = \"https://chat.example.org\"",
				     what, key, key);
		s = def;
		len = strlen(def);
	}
	size_t skip = !strncasecmp(s, "http://", 7) ? 7 : !strncasecmp(s, "https://", 8) ? 8 : 0;
	if (!config_reporter_url_ok(s, len, CONFIG_CHAT_MAX_URL, true))
		config_raise(L,
			     "%s: '%s' must be an http:// or https:// URL of at most %d bytes "
			     "without spaces",
			     what, key, CONFIG_CHAT_MAX_URL);
	while (len > skip && s[len - 1] == '/')
		len--;
	return config_strdup(L, s, len);
}

/* t[key] = secret("NAME"): one word; a plain string is refused. */
static char *config_chat_secret(lua_State *L, const char *what, const char *key)
{
	int t = dsl_get(L, 1, key);
	if (t == LUA_TNIL)
		config_raise(L, "%s: '%s' is required: %s = secret(\"NAME\")", what, key, key);
	struct dsl_secret *sec = luaL_testudata(L, -1, MT_SECRET);
	if (!sec)
		config_raise(L,
			     "%s: '%s' must come from secret(...), never plain text in "
			     "master.lua: %s = secret(\"NAME\")",
			     what, key, key);
	size_t len = strlen(sec->value);
	bool ok = len > 0 && len <= CONFIG_CHAT_MAX_FIELD;
	for (size_t i = 0; ok && i < len; i++)
		ok = (unsigned char)sec->value[i] > 0x20 && (unsigned char)sec->value[i] < 0x7f;
	if (!ok)
		config_raise(L, "%s: '%s' (a secret) must be one word of printable ASCII", what,
			     key);
	char *v = config_strdup(L, sec->value, len);
	lua_pop(L, 1);
	return v;
}

/* One line of 1..256 bytes (chat_id may be an integer); required or NULL. */
static char *config_chat_field(lua_State *L, const char *what, const char *key, bool required,
			       const char *example)
{
	if (!strcmp(key, "chat_id") && dsl_get(L, 1, key) == LUA_TNUMBER) {
		if (!lua_isinteger(L, -1))
			config_raise(L, "%s: '%s' must be an integer or a string", what, key);
		char id[32];
		snprintf(id, sizeof(id), "%lld", (long long)lua_tointeger(L, -1));
		lua_pop(L, 1);
		return config_strdup(L, id, strlen(id));
	} else if (!strcmp(key, "chat_id"))
		lua_pop(L, 1);
	size_t len;
	const char *v = dsl_opt_string(L, 1, what, key, &len);
	if (!v) {
		if (required)
			config_raise(L, "%s: '%s' is required: %s = %s", what, key, key, example);
		return NULL;
	}
	if (len == 0 || len > CONFIG_CHAT_MAX_FIELD || strlen(v) != len || strpbrk(v, "\r\n"))
		config_raise(L, "%s: '%s' must be one line of 1 to %d bytes", what, key,
			     CONFIG_CHAT_MAX_FIELD);
	return config_strdup(L, v, len);
}

void config_reporter_chat(lua_State *L, const char *what, struct config_reporter *r)
{
	struct config_reporter_chat *c = &r->chat;
	if (r->kind == CONFIG_REPORTER_TELEGRAM) {
		c->url = config_chat_url(L, what, "api_url", "https://api.telegram.org");
		c->token = config_chat_secret(L, what, "token");
		c->chat_id = config_chat_field(L, what, "chat_id", true, "\"-1001234567890\"");
		return;
	}
	c->url = config_chat_url(L, what, "site", NULL);
	size_t len;
	const char *email = dsl_opt_string(L, 1, what, "email", &len);
	if (!email)
		config_raise(L, "%s: 'email' is required: email = \"kiln-bot@chat.example.org\"",
			     what);
	config_reporter_check_address(L, what, "email", email, len);
	c->email = config_strdup(L, email, len);
	c->token = config_chat_secret(L, what, "api_key");
	c->stream = config_chat_field(L, what, "stream", true, "\"ci\"");
	c->topic = config_chat_field(L, what, "topic", false, NULL);
}

void config_reporter_chat_release(struct config_reporter *r)
{
	struct config_reporter_chat *c = &r->chat;
	config_reporter_free_secret(c->token);
	free(c->url);
	free(c->chat_id);
	free(c->email);
	free(c->stream);
	free(c->topic);
}
