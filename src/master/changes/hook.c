/*
 * POST /change_hook/DIALECT: the HTTP side of the change hooks.  Checks
 * that the dialect is enabled in master.lua (change_hook = {...}), refuses
 * browsers' cross-site posts, then the bearer token (base, poller) or the
 * provider's signature (HMAC-SHA256 of the raw body for GitHub and Gitea,
 * the shared token for GitLab), all in constant time and with a backoff
 * per address after failures (authlimit.h); refuses a delivery already
 * processed (replays); parses (hook-*.c); stores the changes through
 * change_add_list(); answers once they are committed.
 */
#define LOG_SUBSYS "changes"

#include "master/changes/hook.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/apitoken.h" /* slice "tokens" */
#include "master/auth.h"     /* slice "weblogin" */
#include "master/authlimit.h"
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

/* Does the dialect check a secret (else anyone may post)? */
static bool hook_secret_set(const struct hook_dialect *d, const struct config_change_hook *h)
{
	switch (d->auth) {
	case AUTH_TOKEN:
		return h->token;
	case AUTH_HMAC_GITHUB:
		return h->github_secret;
	case AUTH_HMAC_GITEA:
		return h->gitea_secret;
	case AUTH_GITLAB:
		return h->gitlab_token;
	}
	return false;
}

/* 0 if allowed, else answers 401/403 and returns -1. */
static int hook_check_auth(struct http_req *req, const struct hook_dialect *d,
			   const struct config_change_hook *h)
{
	char v[HOOK_MAX_HEADER];
	int n;
	switch (d->auth) {
	case AUTH_TOKEN:
		/* an API token with the sendchange scope, besides the shared token */
		if ((n = apitoken_check(req, DB_SCOPE_SENDCHANGE, NULL, v, sizeof(v))) != 0) {
			if (n < 0)
				hook_reply(req, n == -EPERM ? 403 : 401, "%s\n", v);
			return n < 0 ? -1 : 0;
		}
		if (!h->token)
			return auth_hook_open(req); /* slice "weblogin": auth.h */
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

/* A browser's cross-site request: a page on any site can post a form here
 * (no CORS preflight for form or text bodies), so a request that says it
 * comes from another site (Sec-Fetch-Site), or whose Origin is not this
 * host, is refused whatever its content type.  Providers send neither. */
static bool hook_cross_site(const struct http_req *req)
{
	char v[HOOK_MAX_HEADER], host[HOOK_MAX_HEADER];
	int n = http_req_header(req, "sec-fetch-site", v, sizeof(v));
	if (n == -E2BIG || (n >= 0 && strcasecmp(v, "same-origin") && strcasecmp(v, "none")))
		return true;
	n = http_req_header(req, "origin", v, sizeof(v));
	if (n == -ENOENT)
		return false;
	const char *o = n >= 0 ? strstr(v, "://") : NULL;
	if (!o)
		return true; /* "null" (a sandboxed page, a file) or malformed */
	int hn = http_req_header(req, "host", host, sizeof(host));
	return hn < 0 || strcasecmp(o + 3, host) != 0;
}

/* Deliveries already turned into changes, against replays of a captured
 * signed request: its provider's delivery id and a digest of its body
 * (the signatures cover the body only, so a replay may carry a new id).
 * A ring of KILN_HOOK_SEEN_MAX, each remembered KILN_HOOK_SEEN_AGE s. */
struct hook_seen {
	unsigned char digest[16];
	double at; /* clock_wall(); 0 = free */
};
static struct hook_seen hook_seen_ring[KILN_HOOK_SEEN_MAX];
static size_t hook_seen_next;

static const char *hook_delivery_header(const struct hook_dialect *d, size_t i)
{
	static const char *const github[] = {"x-github-delivery", NULL};
	static const char *const gitea[] = {"x-gitea-delivery", "x-github-delivery", NULL};
	/* Webhook-UUID is per request, Event-UUID per event (GitLab >= 16.x) */
	static const char *const gitlab[] = {"x-gitlab-webhook-uuid", "x-gitlab-event-uuid", NULL};
	const char *const *v = !strcmp(d->name, "github")   ? github
			       : !strcmp(d->name, "gitea")  ? gitea
			       : !strcmp(d->name, "gitlab") ? gitlab
							    : NULL;
	return v ? v[i] : NULL;
}

/* The keys of this delivery (dialect-tagged digests): 0, 1 or 2. */
static size_t hook_seen_keys(const struct http_req *req, const struct hook_dialect *d,
			     unsigned char keys[2][16])
{
	if (!hook_delivery_header(d, 0))
		return 0; /* base, poller: no delivery identity */
	size_t nk = 0;
	crypto_generichash_state st;
	char v[HOOK_MAX_HEADER];
	for (size_t i = 0; hook_delivery_header(d, i); i++) {
		int n = http_req_header(req, hook_delivery_header(d, i), v, sizeof(v));
		if (n <= 0)
			continue;
		crypto_generichash_init(&st, NULL, 0, sizeof(keys[0]));
		crypto_generichash_update(&st, (const unsigned char *)d->name, strlen(d->name) + 1);
		crypto_generichash_update(&st, (const unsigned char *)"id", 3);
		crypto_generichash_update(&st, (const unsigned char *)v, (size_t)n);
		crypto_generichash_final(&st, keys[nk++], sizeof(keys[0]));
		break;
	}
	crypto_generichash_init(&st, NULL, 0, sizeof(keys[0]));
	crypto_generichash_update(&st, (const unsigned char *)d->name, strlen(d->name) + 1);
	crypto_generichash_update(&st, (const unsigned char *)"body", 5);
	crypto_generichash_update(&st, (const unsigned char *)req->body, req->body_len);
	crypto_generichash_final(&st, keys[nk++], sizeof(keys[0]));
	return nk;
}

static bool hook_seen_has(const unsigned char keys[2][16], size_t nk, double now)
{
	for (size_t i = 0; i < ARRAY_SIZE(hook_seen_ring); i++) {
		const struct hook_seen *e = &hook_seen_ring[i];
		if (e->at <= 0 || now - e->at > KILN_HOOK_SEEN_AGE)
			continue;
		for (size_t k = 0; k < nk; k++)
			if (!memcmp(e->digest, keys[k], sizeof(e->digest)))
				return true;
	}
	return false;
}

static void hook_seen_add(const unsigned char keys[2][16], size_t nk, double now)
{
	for (size_t k = 0; k < nk; k++) {
		struct hook_seen *e = &hook_seen_ring[hook_seen_next];
		hook_seen_next = (hook_seen_next + 1) % ARRAY_SIZE(hook_seen_ring);
		memcpy(e->digest, keys[k], sizeof(e->digest));
		e->at = now;
	}
}

/* Logs a line about refused attempts from peer as the limiter says. */
static void hook_log_refusal(const struct hook_dialect *d, const char *peer,
			     const struct authlimit_note *note)
{
	if (!note->log)
		return;
	if (note->first)
		log_warn("change hook '%s' refused for %s: bad token or signature (further "
			 "failures from this address are summarised once a minute)",
			 d->name, peer);
	else
		log_warn("change hook: %s: %u failed and %u refused attempt%s since the last "
			 "report (backing off %llu s)",
			 peer, note->failures, note->refused, note->refused == 1 ? "" : "s",
			 (unsigned long long)((note->retry_ms + 999) / 1000));
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
static void hook_store_failed(struct master *m, struct http_req *req, const char *name,
			      const char *why, int r)
{
	log_error("change hook '%s': cannot store changes: %s (%s)", name, why, err_str(r));
	if (req)
		hook_reply(req, 500, "cannot store the changes%s\n",
			   db_disk_full(m->db) ? ": database or disk is full" : ""); /* "faults" */
}

struct hook_wait {
	struct master *m;
	struct http_deferred *d;
	const char *dialect; /* static */
	size_t stored;
};

static void hook_committed(void *arg, int r, const char *err)
{
	struct hook_wait *w = arg;
	struct http_req *req = http_deferred_req(w->d);
	if (r < 0) {
		hook_store_failed(req ? w->m : NULL, req, w->dialect, err ? err : "failed", r);
	} else {
		log_debug("change hook '%s': %zu change%s stored", w->dialect, w->stored,
			  w->stored == 1 ? "" : "s");
		/* Buildbot answers "1 change found" as text/html */
		char text[64];
		int tn = snprintf(text, sizeof(text), "%zu change%s found", w->stored,
				  w->stored == 1 ? "" : "s");
		if (req)
			http_reply(req, 200, "text/html", text, (size_t)tn);
	}
	http_deferred_end(w->d);
	free(w);
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
	if (hook_cross_site(req)) {
		hook_reply(req, 403, "cross-site requests to change hooks are refused\n");
		return;
	}
	/* a secret being guessed: a backoff per address after a few failures */
	char peer[64];
	http_req_peer(req, peer, sizeof(peer));
	struct authlimit *al = authlimit_shared(AUTHLIMIT_HOOKS);
	struct authlimit_note note;
	bool guarded = hook_secret_set(d, h);
	uint64_t wait = guarded ? authlimit_check(al, peer, clock_mono_ms(), &note) : 0;
	if (wait > 0) {
		hook_log_refusal(d, peer, &note);
		unsigned secs = (unsigned)((wait + 999) / 1000);
		hook_reply(req, 429, "too many failed attempts from this address; retry in %u s\n",
			   secs);
		http_reply_retry_after(req, secs);
		return;
	}
	if (hook_check_auth(req, d, h) < 0) {
		authlimit_failed(al, peer, clock_mono_ms(), &note);
		hook_log_refusal(d, peer, &note);
		return;
	}
	if (guarded)
		authlimit_succeeded(al, peer);
	if (!strcmp(d->name, "poller")) {
		hook_poller(req);
		return;
	}

	unsigned char keys[2][16];
	size_t nkeys = hook_seen_keys(req, d, keys);
	double now = clock_wall();
	if (nkeys && hook_seen_has(keys, nkeys, now)) {
		static double last_log;
		if (now - last_log >= 60) {
			log_warn("change hook '%s': a delivery already processed was sent again by "
				 "%s (refused; such repeats are reported once a minute)",
				 d->name, peer);
			last_log = now;
		}
		hook_reply(req, 409, "duplicate delivery: already processed, nothing changed\n");
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
	if (r == HOOK_TRUNCATED)
		log_warn("change hook '%s': %s", d->name, err);
	size_t stored = 0;
	r = change_add_list(m, v, n, &stored);
	change_list_free(v, n);
	if (r < 0) {
		hook_store_failed(m, req, d->name, db_errmsg(m->db), r);
		return;
	}
	/* a replay meanwhile is one already (a failed commit stops the master) */
	if (stored > 0)
		hook_seen_add(keys, nkeys, now);
	/* the answer acknowledges stored changes: it waits for their commit */
	struct hook_wait *w = xmalloc(sizeof(*w));
	*w = (struct hook_wait){
		.m = m, .d = http_req_defer(req), .dialect = d->name, .stored = stored};
	db_commit_then(m->db, hook_committed, w);
}
