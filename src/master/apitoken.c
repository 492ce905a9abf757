/*
 * API tokens at the master's doors (apitoken.h; docs/AUTH.md): reads the
 * Authorization header, lets db_token_verify() find the token by its
 * SHA-256 and check revocation, expiry and scope, and answers or logs a
 * refusal.  Only "Bearer kiln_..." values are API tokens: anything else
 * (the shared change_hook token, a try scheduler's token) is left to the
 * checks that were there before, so those keep working unchanged.
 */
#define LOG_SUBSYS "auth"

#include "master/apitoken.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "master/api-int.h"
#include "master/auth.h"
#include "master/authlimit.h"
#include "master/http.h"
#include "master/master.h"

/* The bearer value into v: its length, or -ENOENT (none, or not Bearer). */
static int apitoken_bearer(const struct http_req *req, char *v, size_t size)
{
	int n = http_req_header(req, "authorization", v, size);
	if (n < 0)
		return n == -E2BIG ? -E2BIG : -ENOENT;
	if (strncasecmp(v, "Bearer ", 7))
		return -ENOENT;
	memmove(v, v + 7, (size_t)n - 6);
	return n - 7;
}

static bool apitoken_sodium(void)
{
	static bool ready;
	if (!ready && sodium_init() >= 0)
		ready = true;
	return ready;
}

int apitoken_begin(const struct http_req *req, char *tok, size_t n, char *why, size_t whylen)
{
	char v[APITOKEN_MAX_HEADER];
	int len = apitoken_bearer(req, v, sizeof(v));
	if (len == -E2BIG) {
		snprintf(why, whylen, "Authorization header too long");
		return KILN_EAUTH;
	}
	if (len < 0 || strncmp(v, DB_TOKEN_PREFIX, strlen(DB_TOKEN_PREFIX)))
		return 0;
	if (!apitoken_sodium()) {
		snprintf(why, whylen, "cannot initialise libsodium");
		return KILN_EAUTH;
	}
	/* brute force: unknown, revoked or expired tokens count per address
	 * (slice "authhard"); past the free failures every token from there is
	 * refused unchecked, 429 with Retry-After (http_req_throttle) */
	char peer[64];
	http_req_peer(req, peer, sizeof(peer));
	struct authlimit *al = authlimit_shared(AUTHLIMIT_TOKENS);
	struct authlimit_note note;
	uint64_t wait = authlimit_check(al, peer, clock_mono_ms(), &note);
	if (wait) {
		sodium_memzero(v, sizeof(v));
		unsigned s = (unsigned)((wait + 999) / 1000);
		snprintf(why, whylen, "too many failed API token checks from %s: retry in %u s",
			 peer, s);
		if (note.log)
			log_warn("API token refused for %s on %s: %s (%u refused since the last "
				 "line)",
				 peer, req->path, why, note.refused);
		http_req_throttle((struct http_req *)req, s);
		return -EAGAIN;
	}
	snprintf(tok, n, "%s", v);
	sodium_memzero(v, sizeof(v));
	return 1;
}

int apitoken_end(const struct http_req *req, int r, const char *err, char *why, size_t whylen)
{
	if (r == 0)
		return 1;
	snprintf(why, whylen, "%s", r == KILN_EAUTH || r == -EPERM ? err : err_str(r));
	/* only an unknown (or malformed) token is a guess: a revoked or expired
	 * one ("token N '...' was revoked") was real, and a valid token lacking
	 * a scope is no guess; a success does not reset the count (one valid
	 * token must not buy unlimited guesses) */
	char peer[64];
	http_req_peer(req, peer, sizeof(peer));
	if (r == KILN_EAUTH && strncmp(why, "token ", 6))
		authlimit_failed(authlimit_shared(AUTHLIMIT_TOKENS), peer, clock_mono_ms(), NULL);
	log_warn("API token refused for %s on %s: %s", peer, req->path, why);
	return r == -EPERM ? -EPERM : KILN_EAUTH;
}

int apitoken_check(const struct http_req *req, unsigned need, struct db_token *ret, char *why,
		   size_t whylen)
{
	/* checked before the handler ran (auth.h, issue 14) */
	struct db_token t;
	int r = auth_known_token(req, need, &t, why, whylen);
	if (r != -ENOENT) {
		if (r == 1 && ret)
			*ret = t;
		return r;
	}
	char v[APITOKEN_MAX_HEADER];
	r = apitoken_begin(req, v, sizeof(v), why, whylen);
	if (r <= 0)
		return r;
	struct db *db = req->m->db;
	r = db_token_verify(db, v, need, (int64_t)clock_wall(), ret);
	sodium_memzero(v, sizeof(v));
	return apitoken_end(req, r, db_errmsg(db), why, whylen);
}

bool apitoken_bearer_is(const struct http_req *req, const char *secret)
{
	char v[APITOKEN_MAX_HEADER];
	if (!secret || apitoken_bearer(req, v, sizeof(v)) < 0 || !apitoken_sodium())
		return false;
	unsigned char ha[32], hb[32];
	crypto_generichash(ha, sizeof(ha), (const unsigned char *)v, strlen(v), NULL, 0);
	crypto_generichash(hb, sizeof(hb), (const unsigned char *)secret, strlen(secret), NULL, 0);
	sodium_memzero(v, sizeof(v));
	return sodium_memcmp(ha, hb, sizeof(ha)) == 0;
}

unsigned apitoken_method_scope(const char *method)
{
	static const struct {
		const char *method;
		unsigned scope;
	} map[] = {
		{"force", DB_SCOPE_FORCE}, {"rebuild", DB_SCOPE_FORCE},
		{"stop", DB_SCOPE_STOP},   {"cancel", DB_SCOPE_CANCEL},
		{"try", DB_SCOPE_TRY},     {"poll", DB_SCOPE_SENDCHANGE},
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (!strcmp(map[i].method, method))
			return map[i].scope;
	return DB_SCOPE_ADMIN;
}
