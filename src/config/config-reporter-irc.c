/*
 * reporter { kind = "irc", host = ..., port = 6667, nick = "kiln",
 * channels = { "#ci" }, password = secret(...), notify = { ... } }: the IRC
 * reporter's own keys (the common ones, the filter model included:
 * config-reporter.c).  notify = "failing" or { "failing", "passing" } is
 * the same as the common 'mode' (one of the two, not both).
 */
#include "config/config-internal.h"
#include "config/config-reporter.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* ngircd and most networks cap nicks at 9 to 30 bytes; channels at 50. */
#define CONFIG_IRC_MAX_NICK 30
#define CONFIG_IRC_MAX_CHANNEL 50
#define CONFIG_IRC_MAX_CHANNELS 16

const char *const config_reporter_irc_keys[] = {
	"host",   "port", "nick",  "channels",    "password",
	"notify", "rate", "burst", "allow_force", NULL,
};

/* RFC 2812's nick: a letter or one of []\`_^{|} first, then those, digits and '-'. */
static bool config_irc_nick_ok(const char *s, size_t len)
{
	if (len == 0 || len > CONFIG_IRC_MAX_NICK)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
		bool special = c && strchr("[]\\`_^{|}", c);
		bool rest = (c >= '0' && c <= '9') || c == '-';
		if (!(letter || special || (i > 0 && rest)))
			return false;
	}
	return true;
}

/* '#', '&', '+' or '!' first, then no space, comma, BEL, colon or control character. */
static bool config_irc_channel_ok(const char *s, size_t len)
{
	if (len < 2 || len > CONFIG_IRC_MAX_CHANNEL || !strchr("#&+!", s[0]))
		return false;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == ',' || c == ':' || c == 0x7f)
			return false;
	}
	return true;
}

static unsigned config_irc_mode_one(lua_State *L, const char *what, const char *s)
{
	for (unsigned bit = 1; bit <= CONFIG_REPORT_PASSING; bit <<= 1)
		if (!strcmp(s, config_report_mode_name((enum config_report_mode)bit)))
			return bit;
	config_raise(L,
		     "%s: 'notify': unknown mode '%.60s' (one of \"all\", \"failing\", "
		     "\"problem\", \"change\", \"warnings\", \"exception\", \"passing\")",
		     what, s);
	return 0;
}

/* notify = "failing" or notify = { "failing", "passing" }: the filter's modes. */
static void config_irc_notify(lua_State *L, const char *what, struct config_reporter *r)
{
	int t = dsl_get(L, 1, "notify");
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (dsl_get(L, 1, "mode") != LUA_TNIL)
		config_raise(L, "%s: give 'notify' or 'mode', not both (they are the same filter)",
			     what);
	lua_pop(L, 1);
	unsigned modes = 0;
	if (t == LUA_TSTRING)
		modes = config_irc_mode_one(L, what, lua_tostring(L, -1));
	else if (t == LUA_TTABLE) {
		size_t n = dsl_check_list(L, -1, what, "notify", "modes");
		if (n == 0)
			config_raise(L, "%s: 'notify' must not be an empty list", what);
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i);
			if (lua_type(L, -1) != LUA_TSTRING)
				config_raise(L, "%s: notify[%zu] must be a string (got %s)", what,
					     i, dsl_typename(L, -1));
			modes |= config_irc_mode_one(L, what, lua_tostring(L, -1));
			lua_pop(L, 1);
		}
	} else
		config_raise(L,
			     "%s: 'notify' must be a mode or a list of modes: notify = { "
			     "\"failing\", \"passing\" } (got %s)",
			     what, dsl_typename(L, -1));
	lua_pop(L, 1);
	r->filter.modes = modes;
}

void config_reporter_irc(lua_State *L, const char *what, struct config_reporter *r)
{
	struct config_reporter_irc *c = &r->irc;
	size_t len;
	const char *host = dsl_opt_string(L, 1, what, "host", &len);
	if (!host)
		config_raise(L, "%s: 'host' is required: host = \"irc.example.org\"", what);
	if (!config_reporter_host_ok(host, len))
		config_raise(L,
			     "%s: 'host' must be a host name or a numeric address (letters, "
			     "digits, '.', '-', '_', ':'), got '%.60s'",
			     what, host);
	c->host = config_strdup(L, host, len);
	c->port = (int)dsl_opt_int(L, 1, what, "port", 6667, 1, 65535);

	const char *nick = dsl_opt_string(L, 1, what, "nick", &len);
	if (!nick)
		nick = "kiln";
	len = strlen(nick);
	if (!config_irc_nick_ok(nick, len))
		config_raise(L,
			     "%s: 'nick' must be an IRC nick of 1 to %d bytes (a letter or one "
			     "of []\\`_^{|} first, then also digits and '-'), got '%.60s'",
			     what, CONFIG_IRC_MAX_NICK, nick);
	c->nick = config_strdup(L, nick, len);

	int t = dsl_get(L, 1, "channels");
	if (t == LUA_TSTRING) {
		lua_createtable(L, 1, 0);
		lua_pushvalue(L, -2);
		lua_rawseti(L, -2, 1);
		lua_remove(L, -2);
	} else if (t == LUA_TNIL)
		config_raise(L, "%s: 'channels' is required: channels = { \"#ci\" }", what);
	size_t n = dsl_check_list(L, -1, what, "channels", "channel names");
	if (n == 0 || n > CONFIG_IRC_MAX_CHANNELS)
		config_raise(L, "%s: 'channels' must list 1 to %d channels", what,
			     CONFIG_IRC_MAX_CHANNELS);
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i);
		if (lua_type(L, -1) != LUA_TSTRING)
			config_raise(L, "%s: channels[%zu] must be a string (got %s)", what, i,
				     dsl_typename(L, -1));
		const char *ch = lua_tolstring(L, -1, &len);
		if (!config_irc_channel_ok(ch, len) || strlen(ch) != len)
			config_raise(L,
				     "%s: channels[%zu] must be a channel name such as \"#ci\" "
				     "('#', '&', '+' or '!' first; no spaces, commas or colons; at "
				     "most %d bytes), got '%.60s'",
				     what, i, CONFIG_IRC_MAX_CHANNEL, ch);
		lua_pop(L, 1);
	}
	c->channels = dsl_new_strv(L, n);
	dsl_fill_list(L, -1, c->channels, &c->nchannels, n);
	lua_pop(L, 1);

	int pt = dsl_get(L, 1, "password");
	if (pt == LUA_TSTRING)
		config_raise(L,
			     "%s: 'password' must come from secret(...): password = "
			     "secret(\"irc\")",
			     what);
	if (pt != LUA_TNIL) {
		struct dsl_secret *sec = luaL_testudata(L, -1, MT_SECRET);
		if (!sec)
			config_raise(L, "%s: 'password' must be a secret(...) (got %s)", what,
				     dsl_typename(L, -1));
		if (strpbrk(sec->value, "\r\n") || !*sec->value)
			config_raise(L, "%s: 'password' must be one non-empty line", what);
		c->password = config_strdup(L, sec->value, strlen(sec->value));
	}
	lua_pop(L, 1);

	c->rate = 1;
	int rt = dsl_get(L, 1, "rate");
	if (rt == LUA_TNUMBER)
		c->rate = (double)lua_tonumber(L, -1);
	else if (rt != LUA_TNIL)
		config_raise(L, "%s: 'rate' must be a number of lines per second (got %s)", what,
			     dsl_typename(L, -1));
	lua_pop(L, 1);
	if (!(c->rate > 0 && c->rate <= 100))
		config_raise(L, "%s: 'rate' must be more than 0 and at most 100 lines per second",
			     what);
	c->burst = (int)dsl_opt_int(L, 1, what, "burst", 4, 1, 100);
	c->allow_force = dsl_opt_bool(L, 1, what, "allow_force", false);
	config_irc_notify(L, what, r);
}

void config_reporter_irc_release(struct config_reporter *r)
{
	struct config_reporter_irc *c = &r->irc;
	free(c->host);
	free(c->nick);
	for (size_t i = 0; i < c->nchannels; i++)
		free(c->channels[i]);
	free(c->channels);
	config_reporter_free_secret(c->password);
}
