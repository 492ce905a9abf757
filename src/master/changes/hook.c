/*
 * POST /change_hook/DIALECT: the HTTP side of the change hooks.  Checks
 * that the dialect is enabled in master.lua (change_hook = {...}), the
 * bearer token (base, poller) or the provider's signature (HMAC-SHA256 of
 * the raw body for GitHub and Gitea, the shared token for GitLab), all in
 * constant time; parses (hook-*.c); stores the changes through
 * change_add(); answers once they are committed.
 */
#define LOG_SUBSYS "changes"

#include "master/changes/hook.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/changes/poller.h"
#include "master/http.h"
#include "master/master.h"

#define HOOK_MAX_HEADER 1024

enum hook_auth { AUTH_TOKEN, AUTH_HMAC_GITHUB, AUTH_HMAC_GITEA, AUTH_GITLAB };

struct hook_dialect {
	const char *name;
	const char *event_header; /* NULL: none */
	int (*parse_event)(const char *event, const char *body, size_t len, struct change **ret,
			   size_t *ret_n, char **ret_err);
	enum hook_auth auth;
};

static const struct hook_dialect hook_dialects[] = {
	{"base", NULL, NULL, AUTH_TOKEN},
	{"poller", NULL, NULL, AUTH_TOKEN},
	{"github", "x-github-event", hook_github_parse, AUTH_HMAC_GITHUB},
	{"gitlab", "x-gitlab-event", hook_gitlab_parse, AUTH_GITLAB},
	{"gitea", "x-gitea-event", hook_gitea_parse, AUTH_HMAC_GITEA},
};

static void hook_reply(struct http_req *req, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void hook_reply(struct http_req *req, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = NULL;
	int n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	http_reply_take(req, status, "text/plain; charset=utf-8", text, (size_t)n);
}

/* Equal strings, compared in constant time whatever their lengths. */
static bool hook_secret_eq(const char *a, const char *b)
{
	unsigned char ha[32], hb[32];
	crypto_generichash(ha, sizeof(ha), (const unsigned char *)a, strlen(a), NULL, 0);
	crypto_generichash(hb, sizeof(hb), (const unsigned char *)b, strlen(b), NULL, 0);
	return sodium_memcmp(ha, hb, sizeof(ha)) == 0;
}

/* HEX (or "sha256=HEX") against HMAC-SHA256(secret, body). */
static bool hook_hmac_ok(const char *secret, const struct http_req *req, const char *sig)
{
	unsigned char want[crypto_auth_hmacsha256_BYTES], got[crypto_auth_hmacsha256_BYTES];
	size_t n = 0;
	if (strlen(sig) != 2 * sizeof(got) ||
	    sodium_hex2bin(got, sizeof(got), sig, strlen(sig), NULL, &n, NULL) != 0 ||
	    n != sizeof(got))
		return false;
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)req->body, req->body_len);
	crypto_auth_hmacsha256_final(&st, want);
	return sodium_memcmp(want, got, sizeof(want)) == 0;
}

/* 0 if allowed, else answers 401/403 and returns -1. */
static int hook_check_auth(struct http_req *req, const struct hook_dialect *d,
			   const struct config_change_hook *h)
{
	char v[HOOK_MAX_HEADER];
	int n;
	switch (d->auth) {
	case AUTH_TOKEN:
		if (!h->token)
			return 0;
		n = http_req_header(req, "authorization", v, sizeof(v));
		if (n == -ENOENT) {
			hook_reply(req, 401,
				   "this change hook needs 'Authorization: Bearer TOKEN'\n");
			return -1;
		}
		if (n < 0 || strncasecmp(v, "Bearer ", 7) || !hook_secret_eq(v + 7, h->token)) {
			hook_reply(req, 403, "wrong token\n");
			return -1;
		}
		return 0;
	case AUTH_HMAC_GITHUB:
	case AUTH_HMAC_GITEA: {
		const char *secret =
			d->auth == AUTH_HMAC_GITHUB ? h->github_secret : h->gitea_secret;
		if (!secret)
			return 0;
		const char *hdr =
			d->auth == AUTH_HMAC_GITHUB ? "x-hub-signature-256" : "x-gitea-signature";
		n = http_req_header(req, hdr, v, sizeof(v));
		const char *sig = v;
		if (n >= 0 && d->auth == AUTH_HMAC_GITHUB) {
			if (strncmp(v, "sha256=", 7))
				n = -EINVAL;
			sig = v + 7;
		}
		if (n < 0 || !hook_hmac_ok(secret, req, sig)) {
			hook_reply(req, 403, "%s: %s\n", hdr,
				   n == -ENOENT ? "missing signature" : "bad signature");
			return -1;
		}
		return 0;
	}
	case AUTH_GITLAB:
		if (!h->gitlab_token)
			return 0;
		n = http_req_header(req, "x-gitlab-token", v, sizeof(v));
		if (n < 0 || !hook_secret_eq(v, h->gitlab_token)) {
			hook_reply(req, 403, "x-gitlab-token: %s\n",
				   n == -ENOENT ? "missing token" : "wrong token");
			return -1;
		}
		return 0;
	}
	return -1;
}

static bool hook_enabled(const struct config_change_hook *h, const struct hook_dialect *d)
{
	if (!strcmp(d->name, "github"))
		return h->github;
	if (!strcmp(d->name, "gitlab"))
		return h->gitlab;
	if (!strcmp(d->name, "gitea"))
		return h->gitea;
	return true; /* base, poller */
}

static void hook_poller(struct http_req *req)
{
	struct master *m = req->m;
	const char *name = http_req_arg(req, "poller");
	if (!m->pollers) {
		hook_reply(req, 404, "no pollers are configured\n");
		return;
	}
	int r = pollers_poll(m->pollers, name && *name ? name : NULL);
	if (r == KILN_ENOTFOUND) {
		hook_reply(req, 404, "no poller named '%.200s'\n", name);
		return;
	}
	hook_reply(req, 200, "%d poller%s triggered\n", r, r == 1 ? "" : "s");
}

void change_hook_handle(struct http_req *req)
{
	struct master *m = req->m;
	const struct config_change_hook *h = &m->cfg->change_hook;
	const char *name = req->path + strlen("/change_hook");
	name = *name == '/' ? name + 1 : "base";
	if (!*name)
		name = "base";

	const struct hook_dialect *d = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(hook_dialects); i++)
		if (!strcmp(hook_dialects[i].name, name))
			d = &hook_dialects[i];
	if (!h->enabled) {
		hook_reply(req, 404,
			   "change hooks are not enabled (set change_hook = { ... } in "
			   "master.lua)\n");
		return;
	}
	if (!d || !hook_enabled(h, d)) {
		hook_reply(req, 404, "no change hook dialect '%.100s'%s\n", name,
			   d ? " (not enabled in change_hook)" : "");
		return;
	}
	if (req->method != HTTP_POST) {
		hook_reply(req, 405, "change hooks take POST\n");
		return;
	}
	static bool sodium_ready;
	if (!sodium_ready) {
		if (sodium_init() < 0) {
			hook_reply(req, 500, "cannot initialise libsodium\n");
			return;
		}
		sodium_ready = true;
	}
	if (hook_check_auth(req, d, h) < 0) {
		log_info("change hook '%s' refused (bad token or signature)", d->name);
		return;
	}
	if (!strcmp(d->name, "poller")) {
		hook_poller(req);
		return;
	}

	struct change *v = NULL;
	size_t n = 0;
	_cleanup_free_ char *err = NULL;
	int r;
	if (d->parse_event) {
		char event[128];
		int en = http_req_header(req, d->event_header, event, sizeof(event));
		if (en == -E2BIG) {
			hook_reply(req, 400, "%s header too long\n", d->event_header);
			return;
		}
		if (en < 0)
			event[0] = '\0';
		/* GitHub may post the JSON as a form field 'payload' (its "form"
		 * content type); anything else is the JSON itself */
		const char *body = req->body;
		size_t len = req->body_len;
		struct http_arg *args = NULL;
		size_t nargs = 0;
		if (!strncasecmp(req->content_type, "application/x-www-form-urlencoded", 33) &&
		    !strncmp(req->body, "payload=", 8)) {
			if (http_query_parse(req->body, req->body_len, 16, &args, &nargs) < 0) {
				hook_reply(req, 400, "malformed form body\n");
				return;
			}
			for (size_t i = 0; i < nargs; i++)
				if (!strcmp(args[i].name, "payload")) {
					body = args[i].value;
					len = strlen(body);
					break;
				}
		}
		r = d->parse_event(event, body, len, &v, &n, &err);
		http_args_free(args, nargs);
	} else {
		r = hook_base_parse(req->content_type, req->body, req->body_len, &v, &n, &err);
	}
	if (r < 0) {
		hook_reply(req, 400, "%s\n", err ? err : "malformed change");
		return;
	}
	if (r == HOOK_IGNORED) {
		hook_reply(req, 200, "ignored\n");
		return;
	}
	size_t stored = 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		r = change_add(m, &v[i]);
		if (r >= 0)
			stored++;
	}
	if (r >= 0)
		r = db_flush(m->db);
	change_list_free(v, n);
	if (r < 0) {
		log_error("change hook '%s': cannot store changes: %s (%s)", d->name,
			  db_errmsg(m->db), err_str(r));
		hook_reply(req, 500, "cannot store the changes\n");
		return;
	}
	log_debug("change hook '%s': %zu change%s stored", d->name, stored, stored == 1 ? "" : "s");
	/* Buildbot answers "1 change found" as text/html */
	char text[64];
	int tn = snprintf(text, sizeof(text), "%zu change%s found", stored, stored == 1 ? "" : "s");
	http_reply(req, 200, "text/html", text, (size_t)tn);
}
