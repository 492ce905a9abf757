/*
 * reporter { kind = "http" | "slack" | "mattermost" | "matrix", ... }: the
 * HTTP reporters' own keys (the common ones: config-reporter.c; the senders:
 * src/master/reporters/http.c).  Credentials come from secret(...) only:
 * http's signing key and secret headers, the webhook URL of slack and
 * mattermost (it carries the hook's token), matrix's access token.
 */
#include "config/config-internal.h"
#include "config/config-reporter.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_HTTP_MAX_URL 2048
#define CONFIG_HTTP_MAX_HEADERS 32
#define CONFIG_HTTP_MAX_HEADER 1024
#define CONFIG_HTTP_MAX_FIELD 256

const char *const config_reporter_http_keys[] = {"url", "secret", "headers", NULL};
const char *const config_reporter_webhook_keys[] = {"url", "username", "channel", "icon_url", NULL};
const char *const config_reporter_matrix_keys[] = {"homeserver", "room", "token", NULL};

/* A secret's value that may stand in for a URL: one word. */
static bool config_http_token_ok(const char *s, size_t len)
{
	if (len == 0 || len > CONFIG_HTTP_MAX_URL || strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7f)
			return false;
	return true;
}

/* t[key]: a string or a secret(...); *ret_secret says which.  NULL if absent. */
static const char *config_http_string_or_secret(lua_State *L, int t, const char *what,
						const char *key, bool *ret_secret, size_t *ret_len)
{
	int ty = dsl_get(L, t, key);
	const char *v = NULL;
	*ret_secret = false;
	if (ty == LUA_TSTRING)
		v = lua_tolstring(L, -1, ret_len);
	else if (ty != LUA_TNIL) {
		struct dsl_secret *sec = luaL_testudata(L, -1, MT_SECRET);
		if (!sec)
			config_raise(L, "%s: '%s' must be a string or a secret(...) (got %s)", what,
				     key, dsl_typename(L, -1));
		v = sec->value;
		*ret_len = strlen(v);
		*ret_secret = true;
	}
	lua_pop(L, 1);
	return v; /* a string of the config's table or a secret's value: both outlive us */
}

/* t[key] = secret("NAME"): required or not; a plain string is refused. */
static char *config_http_secret(lua_State *L, const char *what, const char *key, bool required,
				const char *example)
{
	bool secret;
	size_t len = 0;
	const char *v = config_http_string_or_secret(L, 1, what, key, &secret, &len);
	if (!v) {
		if (required)
			config_raise(L, "%s: '%s' is required: %s = %s", what, key, key, example);
		return NULL;
	}
	if (!secret)
		config_raise(L,
			     "%s: '%s' must come from secret(...), never plain text in "
			     "master.lua: %s = %s",
			     what, key, key, example);
	return config_strdup(L, v, len);
}

static char *config_http_field(lua_State *L, const char *what, const char *key)
{
	size_t len;
	const char *v = dsl_opt_string(L, 1, what, key, &len);
	if (!v)
		return NULL;
	if (len == 0 || len > CONFIG_HTTP_MAX_FIELD || strlen(v) != len || strpbrk(v, "\r\n"))
		config_raise(L, "%s: '%s' must be one line of 1 to %d bytes", what, key,
			     CONFIG_HTTP_MAX_FIELD);
	return config_strdup(L, v, len);
}

/* A header name that usually carries a credential: its value must be a secret. */
static bool config_http_header_sensitive(const char *name)
{
	static const char *const words[] = {"auth", "token", "key", "secret", "cookie", "pass"};
	char low[CONFIG_HTTP_MAX_FIELD + 1];
	size_t n = strlen(name);
	for (size_t i = 0; i <= n && i < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[sizeof(low) - 1] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strstr(low, words[i]))
			return true;
	return false;
}

/* headers = { ["X-Team"] = "ci", Authorization = secret("hook-auth") } */
static void config_http_headers(lua_State *L, const char *what, struct config_reporter_http *h)
{
	int t = dsl_get(L, 1, "headers");
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (t != LUA_TTABLE)
		config_raise(L,
			     "%s: 'headers' must be a table: headers = { [\"X-Team\"] = \"ci\" } "
			     "(got %s)",
			     what, dsl_typename(L, -1));
	int ht = lua_gettop(L);
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, ht)) {
		n++;
		lua_pop(L, 1);
	}
	if (n > CONFIG_HTTP_MAX_HEADERS)
		config_raise(L, "%s: 'headers' has more than %d entries", what,
			     CONFIG_HTTP_MAX_HEADERS);
	config_charge(L, 2 * (n + 1) * sizeof(char *));
	h->header_names = xcalloc(n + 1, sizeof(char *));
	h->header_values = xcalloc(n + 1, sizeof(char *));
	lua_pushnil(L);
	while (lua_next(L, ht)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			config_raise(L, "%s: headers: every key must be a header name (a string)",
				     what);
		size_t nlen;
		const char *name = lua_tolstring(L, -2, &nlen);
		bool ok = nlen > 0 && nlen <= CONFIG_HTTP_MAX_FIELD;
		for (size_t i = 0; ok && i < nlen; i++)
			ok = isalnum((unsigned char)name[i]) || strchr("!#$%&'*+-.^_`|~", name[i]);
		if (!ok)
			config_raise(L,
				     "%s: headers: '%.60s' is not a header name (letters, digits "
				     "and !#$%%&'*+-.^_`|~, at most %d bytes)",
				     what, name, CONFIG_HTTP_MAX_FIELD);
		if (!strcasecmp(name, "Content-Type") || !strcasecmp(name, "Content-Length") ||
		    !strcasecmp(name, "Host") || !strcasecmp(name, "X-Kiln-Signature") ||
		    !strcasecmp(name, "Transfer-Encoding"))
			config_raise(L, "%s: headers: '%s' is set by Kiln itself", what, name);
		const char *val;
		size_t vlen;
		bool secret = false;
		if (lua_type(L, -1) == LUA_TSTRING)
			val = lua_tolstring(L, -1, &vlen);
		else {
			struct dsl_secret *sec = luaL_testudata(L, -1, MT_SECRET);
			if (!sec)
				config_raise(L,
					     "%s: headers: '%s' must be a string or a secret(...) "
					     "(got %s)",
					     what, name, dsl_typename(L, -1));
			val = sec->value;
			vlen = strlen(val);
			secret = true;
		}
		if (!secret && config_http_header_sensitive(name))
			config_raise(L,
				     "%s: headers: '%s' looks like a credential: give it as "
				     "secret(\"NAME\"), never plain text in master.lua",
				     what, name);
		if (vlen > CONFIG_HTTP_MAX_HEADER || strlen(val) != vlen || strpbrk(val, "\r\n"))
			config_raise(L, "%s: headers: '%s' must be one line of at most %d bytes",
				     what, name, CONFIG_HTTP_MAX_HEADER);
		h->header_names[h->nheaders] = config_strdup(L, name, nlen);
		h->header_values[h->nheaders] = config_strdup(L, val, vlen);
		h->nheaders++;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

void config_reporter_http(lua_State *L, const char *what, struct config_reporter *r)
{
	struct config_reporter_http *h = &r->http;
	bool secret = false;
	size_t len = 0;
	const char *url;
	switch (r->kind) {
	case CONFIG_REPORTER_HTTP:
		url = config_http_string_or_secret(L, 1, what, "url", &secret, &len);
		if (!url)
			config_raise(L,
				     "%s: 'url' is required: url = \"https://ci.example.org/hook\" "
				     "(or secret(\"NAME\") when it holds a token)",
				     what);
		if (!config_reporter_url_ok(url, len, CONFIG_HTTP_MAX_URL, true))
			config_raise(L,
				     "%s: 'url' must be an http:// or https:// URL of at most %d "
				     "bytes without spaces",
				     what, CONFIG_HTTP_MAX_URL);
		if (!secret) {
			/* user:password@ in plain text: a credential in master.lua */
			const char *auth = strstr(url, "://") + 3;
			size_t alen = strcspn(auth, "/?#");
			if (memchr(auth, '@', alen))
				config_raise(L,
					     "%s: 'url' holds a login (user:password@): give it "
					     "as url = secret(\"NAME\"), never plain text in "
					     "master.lua",
					     what);
		}
		h->url = config_strdup(L, url, len);
		h->url_secret = secret;
		h->hmac_key = config_http_secret(L, what, "secret", false, "secret(\"hook-key\")");
		config_http_headers(L, what, h);
		break;
	case CONFIG_REPORTER_SLACK:
	case CONFIG_REPORTER_MATTERMOST:
		url = config_http_string_or_secret(L, 1, what, "url", &secret, &len);
		if (!url)
			config_raise(L, "%s: 'url' is required: url = secret(\"webhook\")", what);
		if (!secret)
			config_raise(L,
				     "%s: 'url' must come from secret(...): an incoming webhook's "
				     "URL is its credential (url = secret(\"webhook\"))",
				     what);
		/* http(s) is checked when the reporter starts (http.c): checkconfig
		 * may run with stand-in secrets */
		if (!config_reporter_url_ok(url, len, CONFIG_HTTP_MAX_URL, true) &&
		    !config_http_token_ok(url, len))
			config_raise(
				L,
				"%s: 'url' (a secret) must be an http:// or https:// URL of at "
				"most %d bytes without spaces",
				what, CONFIG_HTTP_MAX_URL);
		h->url = config_strdup(L, url, len);
		h->url_secret = true;
		h->username = config_http_field(L, what, "username");
		h->channel = config_http_field(L, what, "channel");
		h->icon_url = config_http_field(L, what, "icon_url");
		break;
	case CONFIG_REPORTER_MATRIX: {
		const char *hs = dsl_opt_string(L, 1, what, "homeserver", &len);
		if (!hs)
			config_raise(L,
				     "%s: 'homeserver' is required: homeserver = "
				     "\"https://matrix.example.org\"",
				     what);
		if (!config_reporter_url_ok(hs, len, CONFIG_HTTP_MAX_URL, true))
			config_raise(L,
				     "%s: 'homeserver' must be an http:// or https:// URL of at "
				     "most %d bytes without spaces",
				     what, CONFIG_HTTP_MAX_URL);
		while (len && hs[len - 1] == '/')
			len--;
		h->url = config_strdup(L, hs, len);
		const char *room = dsl_opt_string(L, 1, what, "room", &len);
		bool ok = room && len > 1 && len <= CONFIG_HTTP_MAX_FIELD && room[0] == '!' &&
			  strchr(room, ':');
		for (size_t i = 0; ok && i < len; i++)
			ok = (unsigned char)room[i] > 0x20 && (unsigned char)room[i] < 0x7f;
		if (!ok)
			config_raise(L,
				     "%s: 'room' must be a room id such as \"!abc:example.org\" "
				     "(printable ASCII, at most %d bytes)",
				     what, CONFIG_HTTP_MAX_FIELD);
		h->room = config_strdup(L, room, len);
		h->token = config_http_secret(L, what, "token", true, "secret(\"matrix\")");
		if (strpbrk(h->token, "\r\n "))
			config_raise(L, "%s: 'token' must be one word", what);
		break;
	}
	default:
		config_raise(L, "%s: not an HTTP reporter", what);
	}
}

void config_reporter_http_release(struct config_reporter *r)
{
	struct config_reporter_http *h = &r->http;
	config_reporter_free_secret(h->url);
	for (size_t i = 0; i < h->nheaders; i++) {
		free(h->header_names[i]);
		config_reporter_free_secret(h->header_values[i]);
	}
	free(h->header_names);
	free(h->header_values);
	config_reporter_free_secret(h->hmac_key);
	config_reporter_free_secret(h->token);
	free(h->room);
	free(h->username);
	free(h->channel);
	free(h->icon_url);
}
