/*
 * reporter { kind = ..., ... } inside src/config/: the declaration's common
 * keys (config-reporter.c: name, the filter, the queue) and one reader per
 * kind (config-reporter-KIND.c), listed in config-reporter.c's table.
 */
#ifndef KILN_CONFIG_REPORTER_H
#define KILN_CONFIG_REPORTER_H

#include "config/config.h"

#include <lua.h>

/* Registers reporter { } (config-dsl.c calls it once per state). */
void config_reporter_open(lua_State *L);
/* After master.lua ran: builder names that are not globs must be declared. */
void config_reporter_finish(lua_State *L);
void config_reporter_release(struct config *cfg);

/* A host name or address a reporter connects to: 1..253 bytes of letters,
 * digits, '.', '-', '_' and ':' (an IPv6 address). */
bool config_reporter_host_ok(const char *s, size_t len);

/* An http:// or https:// URL with a host, of at most max bytes, without
 * spaces or control characters; userinfo: "user@" allowed before the
 * host. */
bool config_reporter_url_ok(const char *s, size_t len, size_t max, bool userinfo);
/* Wipes a secret's text (NULL-safe) and frees it. */
void config_reporter_free_secret(char *s);

/* A kind's own keys, read from the table at index 1 into r (the common
 * fields already set); what names the declaration for messages. */
void config_reporter_email(lua_State *L, const char *what, struct config_reporter *r);
void config_reporter_email_release(struct config_reporter *r);
/* The keys email takes besides the common ones (NULL-terminated). */
extern const char *const config_reporter_email_keys[];

void config_reporter_irc(lua_State *L, const char *what, struct config_reporter *r);
void config_reporter_irc_release(struct config_reporter *r);
extern const char *const config_reporter_irc_keys[];
/* kinds http, slack, mattermost, matrix (config-reporter-http.c) */
void config_reporter_http(lua_State *L, const char *what, struct config_reporter *r);
void config_reporter_http_release(struct config_reporter *r);
extern const char *const config_reporter_http_keys[];
extern const char *const config_reporter_webhook_keys[];
extern const char *const config_reporter_matrix_keys[];

/* kinds telegram, zulip (config-reporter-chat.c; slice "alerts") */
void config_reporter_chat(lua_State *L, const char *what, struct config_reporter *r);
void config_reporter_chat_release(struct config_reporter *r);
extern const char *const config_reporter_telegram_keys[];
extern const char *const config_reporter_zulip_keys[];
/* kinds github, gitlab, gitea, bitbucket, gerrit (config-reporter-statuses.c) */
void config_reporter_status(lua_State *L, const char *what, struct config_reporter *r);
void config_reporter_status_release(struct config_reporter *r);
extern const char *const config_reporter_github_keys[];
extern const char *const config_reporter_gitlab_keys[];
extern const char *const config_reporter_gitea_keys[];
extern const char *const config_reporter_bitbucket_keys[];
extern const char *const config_reporter_gerrit_keys[];

/* Checks an e-mail address (local@domain, printable ASCII, no <>, spaces
 * or quotes, at most 254 bytes); raises naming what and key. */
void config_reporter_check_address(lua_State *L, const char *what, const char *key, const char *s,
				   size_t len);

#endif
