/*
 * reporter { kind = "email", from = ..., to = { ... }, smtp = { ... } }:
 * the email reporter's own keys (the common ones: config-reporter.c).
 */
#include "config/config-internal.h"
#include "config/config-reporter.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* RFC 5321's limit on a path (address). */
#define CONFIG_EMAIL_MAX_ADDRESS 254
#define CONFIG_EMAIL_MAX_TO 64
#define CONFIG_EMAIL_MAX_LOG_LINES 1000
#define CONFIG_EMAIL_MAX_SUBJECT 128

const char *const config_reporter_email_keys[] = {
	"from", "to", "blamelist", "smtp", "log_lines", "subject", "extra_recipients", NULL,
};

void config_reporter_check_address(lua_State *L, const char *what, const char *key, const char *s,
				   size_t len)
{
	const char *at = memchr(s, '@', len);
	bool ok = len > 0 && len <= CONFIG_EMAIL_MAX_ADDRESS && at && at != s &&
		  at != s + len - 1 && !memchr(at + 1, '@', len - (size_t)(at - s) - 1);
	for (size_t i = 0; ok && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || strchr("<>\"(),;:\\[]", c))
			ok = false;
	}
	if (!ok)
		config_raise(L,
			     "%s: '%s' must be an address such as \"ci@example.org\" (printable "
			     "ASCII without spaces, quotes, <> or commas; at most %d bytes), got "
			     "'%.60s'",
			     what, key, CONFIG_EMAIL_MAX_ADDRESS, s);
}

/* smtp = { host = "127.0.0.1", port = 25, tls = "starttls", user = "ci", password = secret("smtp")
 * } */
static void config_email_smtp(lua_State *L, const char *what, struct config_reporter_email *e)
{
	static const char *const keys[] = {"host", "port", "tls", "user", "password", NULL};
	char swhat[300];
	snprintf(swhat, sizeof(swhat), "%s: smtp", what);
	int t = dsl_get(L, 1, "smtp");
	if (t != LUA_TTABLE)
		config_raise(L,
			     "%s: 'smtp' is required: smtp = { host = \"127.0.0.1\", port = 25 } "
			     "(got %s)",
			     what, dsl_typename(L, -1));
	int s = lua_gettop(L);
	dsl_check_keys(L, s, swhat, keys);
	size_t len;
	const char *host = dsl_opt_string(L, s, swhat, "host", &len);
	if (!host)
		config_raise(L, "%s: 'host' is required (a host name or address)", swhat);
	if (!config_reporter_host_ok(host, len))
		config_raise(
			L,
			"%s: 'host' must be a host name or a numeric address (letters, digits, "
			"'.', '-', '_', ':'), got '%.60s'",
			swhat, host);
	e->smtp_host = config_strdup(L, host, len);

	const char *tls = dsl_opt_string(L, s, swhat, "tls", &len);
	e->tls = CONFIG_SMTP_TLS_NONE;
	if (!tls || !strcmp(tls, "none"))
		e->tls = CONFIG_SMTP_TLS_NONE;
	else if (!strcmp(tls, "starttls"))
		e->tls = CONFIG_SMTP_TLS_STARTTLS;
	else if (!strcmp(tls, "required"))
		e->tls = CONFIG_SMTP_TLS_REQUIRED;
	else if (!strcmp(tls, "smtps"))
		e->tls = CONFIG_SMTP_TLS_SMTPS;
	else
		config_raise(
			L,
			"%s: 'tls' must be \"none\", \"starttls\" (when offered), "
			"\"required\" (STARTTLS or nothing is sent) or \"smtps\" (got '%.60s')",
			swhat, tls);
	e->smtp_port = (int)dsl_opt_int(L, s, swhat, "port",
					e->tls == CONFIG_SMTP_TLS_SMTPS ? 465 : 25, 1, 65535);

	const char *user = dsl_opt_string(L, s, swhat, "user", &len);
	if (user) {
		if (len == 0 || len > 256 || strlen(user) != len)
			config_raise(L, "%s: 'user' must be 1 to 256 bytes", swhat);
		e->smtp_user = config_strdup(L, user, len);
	}
	int pt = dsl_get(L, s, "password");
	if (pt == LUA_TSTRING)
		config_raise(L,
			     "%s: 'password' must come from secret(...): password = "
			     "secret(\"smtp\")",
			     swhat);
	if (pt != LUA_TNIL) {
		struct dsl_secret *sec = luaL_testudata(L, -1, MT_SECRET);
		if (!sec)
			config_raise(L, "%s: 'password' must be a secret(...) (got %s)", swhat,
				     dsl_typename(L, -1));
		e->smtp_password = config_strdup(L, sec->value, strlen(sec->value));
	}
	lua_pop(L, 1);
	if (!!e->smtp_user != !!e->smtp_password)
		config_raise(L, "%s: 'user' and 'password' go together (a login needs both)",
			     swhat);
	lua_pop(L, 1);
}

/* extra_recipients = { "ann", "bob@example.org" }: users (an identifier or
 * an identity's value) told about every build, mailed at their user
 * object's address (slice "alerts"; docs/USERS.md). */
static void config_email_extra_recipients(lua_State *L, const char *what,
					  struct config_reporter_email *e)
{
	if (dsl_get(L, 1, "extra_recipients") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	size_t n = dsl_check_list(L, -1, what, "extra_recipients", "users");
	if (n > CONFIG_EMAIL_MAX_TO)
		config_raise(L, "%s: 'extra_recipients' lists more than %d users", what,
			     CONFIG_EMAIL_MAX_TO);
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i);
		size_t len = 0;
		const char *u = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
		bool ok = u && len > 0 && len <= 255 && strlen(u) == len;
		for (size_t k = 0; ok && k < len; k++)
			ok = (unsigned char)u[k] >= 0x20 && u[k] != 0x7f;
		if (!ok)
			config_raise(L,
				     "%s: extra_recipients[%zu] must be a user's identifier or an "
				     "identity (1 to 255 bytes, no control characters)",
				     what, i);
		lua_pop(L, 1);
	}
	e->extra_recipients = dsl_new_strv(L, n);
	dsl_fill_list(L, -1, e->extra_recipients, &e->nextra_recipients, n);
	lua_pop(L, 1);
}

void config_reporter_email(lua_State *L, const char *what, struct config_reporter *r)
{
	struct config_reporter_email *e = &r->email;
	size_t len;
	const char *from = dsl_opt_string(L, 1, what, "from", &len);
	if (!from)
		config_raise(L, "%s: 'from' is required: from = \"kiln@example.org\"", what);
	config_reporter_check_address(L, what, "from", from, len);
	e->from = config_strdup(L, from, len);

	if (dsl_get(L, 1, "to") != LUA_TNIL) {
		if (lua_type(L, -1) == LUA_TSTRING) {
			/* one address: as a list of one */
			lua_createtable(L, 1, 0);
			lua_pushvalue(L, -2);
			lua_rawseti(L, -2, 1);
			lua_remove(L, -2);
		}
		size_t n = dsl_check_list(L, -1, what, "to", "addresses");
		if (n > CONFIG_EMAIL_MAX_TO)
			config_raise(L, "%s: 'to' lists more than %d addresses", what,
				     CONFIG_EMAIL_MAX_TO);
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i);
			if (lua_type(L, -1) != LUA_TSTRING)
				config_raise(L, "%s: to[%zu] must be a string (got %s)", what, i,
					     dsl_typename(L, -1));
			const char *a = lua_tolstring(L, -1, &len);
			char key[32];
			snprintf(key, sizeof(key), "to[%zu]", i);
			config_reporter_check_address(L, what, key, a, len);
			lua_pop(L, 1);
		}
		e->to = dsl_new_strv(L, n);
		dsl_fill_list(L, -1, e->to, &e->nto, n);
	}
	lua_pop(L, 1);
	e->blamelist = dsl_opt_bool(L, 1, what, "blamelist", true);
	config_email_extra_recipients(L, what, e);
	if (!e->nto && !e->blamelist && !e->nextra_recipients)
		config_raise(L, "%s: nobody to mail: give 'to' or keep blamelist = true", what);
	e->log_lines = (int)dsl_opt_int(L, 1, what, "log_lines", 40, 0, CONFIG_EMAIL_MAX_LOG_LINES);
	const char *subject = dsl_opt_string(L, 1, what, "subject", &len);
	if (!subject)
		subject = "[kiln]";
	len = strlen(subject);
	if (len > CONFIG_EMAIL_MAX_SUBJECT || strpbrk(subject, "\r\n"))
		config_raise(L, "%s: 'subject' must be one line of at most %d bytes", what,
			     CONFIG_EMAIL_MAX_SUBJECT);
	e->subject = config_strdup(L, subject, len);
	config_email_smtp(L, what, e);
}

void config_reporter_email_release(struct config_reporter *r)
{
	struct config_reporter_email *e = &r->email;
	free(e->from);
	for (size_t i = 0; i < e->nto; i++)
		free(e->to[i]);
	free(e->to);
	for (size_t i = 0; i < e->nextra_recipients; i++)
		free(e->extra_recipients[i]);
	free(e->extra_recipients);
	free(e->smtp_host);
	free(e->smtp_user);
	config_reporter_free_secret(e->smtp_password);
	free(e->subject);
}
