/*
 * Web login, sessions, CSRF and roles (auth.h; docs/AUTH.md).
 *
 * Who a request is: an API token ("Authorization: Bearer kiln_..."), the
 * shared change_hook token (an administrator's), a session (the
 * kiln_session cookie: 32 random bytes, stored hashed by db_session_*), or
 * nobody.  What it may do: a token its scopes (and, when it belongs to a
 * user and master.lua has auth = { }, that user's roles too); a session
 * its user's roles, from users.roles and auth.roles (per builder for
 * force, stop and cancel), and only with the X-Kiln-CSRF header; nobody
 * what auth.anonymous_read / anonymous_control allow.
 *
 * Passwords are checked on the loop (argon2id interactive, or bcrypt);
 * failed logins open a backoff per address and per username (authlimit.h),
 * so a client cannot make the loop hash more than a few a second.  Neither
 * a password nor a session or token is ever logged.
 */
#define LOG_SUBSYS "auth"

#include "master/auth.h"

#include <crypt.h>
#include <pthread.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>
#include <uv.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "master/api-int.h"
#include "master/apitoken.h"
#include "master/authlimit.h"
#include "master/engine.h"
#include "master/http.h"
#include "master/master.h"

#define AUTH_ROLES_ALL                                                                             \
	(CONFIG_ROLE_ADMIN | CONFIG_ROLE_FORCE | CONFIG_ROLE_STOP | CONFIG_ROLE_CANCEL |           \
	 CONFIG_ROLE_VIEW)

enum auth_kind { AUTH_ANON, AUTH_TOKEN, AUTH_SHARED, AUTH_SESSION };

struct auth_who {
	enum auth_kind kind;
	int64_t uid;
	char username[DB_USER_TEXT_MAX + 1];
	char cookie[AUTH_SESSION_TEXT_LEN + 1]; /* AUTH_SESSION: the cookie's value */
	struct db_token token;                  /* AUTH_TOKEN */
	char roles[DB_ROLES_TEXT_MAX + 1];      /* users.roles of uid ("" none) */
};

/* What the gate learnt before the handler ran (auth_prepare, issue 14). */
struct auth_known {
	int r; /* auth_identify's answer: 0, or its refusal (why) */
	char why[512];
	struct auth_who who;
	int tok_r;         /* apitoken_check's answer for need 0: 0 none, 1, or <0 */
	bool have_builder; /* builder: the one of the build or request a POST names */
	char builder[256];
};

/* ---- pure helpers ---------------------------------------------------------------------- */

static bool auth_sodium(void)
{
	static bool ready;
	if (!ready && sodium_init() >= 0)
		ready = true;
	return ready;
}

void auth_csrf_of(const char *cookie, char out[AUTH_SESSION_TEXT_LEN + 1])
{
	crypto_hash_sha256_state st;
	unsigned char h[32];
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)"kiln-csrf:", 10);
	crypto_hash_sha256_update(&st, (const unsigned char *)cookie, strlen(cookie));
	crypto_hash_sha256_final(&st, h);
	sodium_bin2base64(out, AUTH_SESSION_TEXT_LEN + 1, h, sizeof(h),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int auth_cookie_value(const char *header, char *out, size_t n)
{
	size_t klen = strlen(AUTH_COOKIE);
	for (const char *p = header; p && *p;) {
		while (*p == ' ' || *p == ';' || *p == '\t')
			p++;
		size_t len = strcspn(p, ";");
		if (len > klen && !strncmp(p, AUTH_COOKIE, klen) && p[klen] == '=') {
			size_t vlen = len - klen - 1;
			while (vlen && (p[klen + 1 + vlen - 1] == ' '))
				vlen--;
			if (vlen == 0 || vlen >= n)
				return -1;
			memcpy(out, p + klen + 1, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p += len;
	}
	return -1;
}

void auth_set_cookie(const char *value, long long max_age, bool secure, char *out, size_t n)
{
	snprintf(out, n, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s", AUTH_COOKIE,
		 value ? value : "", value ? max_age : 0, secure ? "; Secure" : "");
}

int auth_htpasswd_line(const char *line, size_t len, const char *user, char *hash, size_t n)
{
	size_t ulen = strlen(user);
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len <= ulen + 1 || line[ulen] != ':' || strncmp(line, user, ulen))
		return 0;
	size_t hlen = len - ulen - 1;
	if (hlen >= n)
		return 0;
	memcpy(hash, line + ulen + 1, hlen);
	hash[hlen] = '\0';
	return 1;
}

int auth_password_ok(const char *hash, const char *password)
{
	if (!auth_sodium())
		return 0;
	if (!strncmp(hash, "$argon2id$", 10))
		return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
	if (!strncmp(hash, "$2y$", 4) || !strncmp(hash, "$2b$", 4) || !strncmp(hash, "$2a$", 4)) {
		struct crypt_data *cd = xcalloc(1, sizeof(*cd));
		/* crypt_rn, not crypt_r: ASan intercepts crypt_r, and its interceptor
		 * would then be all a sanitized build links (libcrypt dropped) */
		const char *got = crypt_rn(password, hash, cd, (int)sizeof(*cd));
		int ok = got && got[0] == '$' && strlen(got) == strlen(hash) &&
			 sodium_memcmp(got, hash, strlen(hash)) == 0;
		sodium_memzero(cd, sizeof(*cd));
		free(cd);
		return ok;
	}
	return 0;
}

/* ---- configuration --------------------------------------------------------------------- */

static const struct config_auth *auth_cfg(struct master *m)
{
	return m->cfg ? m->cfg->auth : NULL;
}

bool auth_anonymous_control(struct master *m)
{
	const struct config_auth *a = auth_cfg(m);
	if (a && a->anonymous_control >= 0)
		return a->anonymous_control;
	if (a)
		return false;
	int64_t n = 0;
	if (db_login_users_count(m->db, &n) < 0)
		return false; /* fail closed */
	return n == 0;
}

static bool auth_anonymous_read(struct master *m)
{
	const struct config_auth *a = auth_cfg(m);
	return !a || a->anonymous_read;
}

static bool auth_secure(struct master *m)
{
	return m->cfg && m->cfg->url && !strncasecmp(m->cfg->url, "https://", 8);
}

static long long auth_max_age(struct master *m)
{
	const struct config_auth *a = auth_cfg(m);
	return a ? a->session_max_age : 7 * 86400;
}

static long long auth_idle(struct master *m)
{
	const struct config_auth *a = auth_cfg(m);
	return a ? a->session_idle : 86400;
}

/* The roles who (uid 0: htpasswd) holds for every builder: users.roles
 * (read with who) and master.lua's rules. */
static unsigned auth_roles_full(struct master *m, const struct auth_who *who)
{
	unsigned bits = 0;
	if (who->uid && who->roles[0]) {
		unsigned b = 0;
		if (config_roles_parse_list(who->roles, &b) == 0)
			bits |= b;
	}
	const struct config_auth *a = auth_cfg(m);
	for (size_t i = 0; a && i < a->nrules; i++) {
		const struct config_auth_rule *r = &a->rule[i];
		if (r->nbuilders)
			continue;
		for (size_t k = 0; k < r->nusers; k++)
			if (!strcmp(r->users[k], "*") || !strcmp(r->users[k], who->username))
				bits |= r->role;
	}
	if (bits & CONFIG_ROLE_ADMIN)
		bits |= AUTH_ROLES_ALL;
	return bits | CONFIG_ROLE_VIEW; /* a login reads */
}

static bool auth_rule_has_user(const struct config_auth_rule *r, const char *username)
{
	for (size_t k = 0; k < r->nusers; k++)
		if (!strcmp(r->users[k], "*") || !strcmp(r->users[k], username))
			return true;
	return false;
}

/* May username hold role on builder (NULL: on some builder)? */
static bool auth_user_may(struct master *m, const struct auth_who *who, unsigned role,
			  const char *builder)
{
	const char *username = who->username;
	if (auth_roles_full(m, who) & role)
		return true;
	const struct config_auth *a = auth_cfg(m);
	for (size_t i = 0; a && i < a->nrules; i++) {
		const struct config_auth_rule *r = &a->rule[i];
		if (r->role != role || !r->nbuilders || !auth_rule_has_user(r, username))
			continue;
		if (!builder)
			return true;
		for (size_t k = 0; k < r->nbuilders; k++)
			if (fnmatch(r->builders[k], builder, 0) == 0)
				return true;
	}
	return false;
}

/* ---- who is asking -------------------------------------------------------------------- */

/* The session cookie's value into cookie and the SHA-256 of its 32 bytes
 * into hash: true, or false when there is no well-formed one. */
static bool auth_cookie_hash(struct http_req *req, char cookie[AUTH_SESSION_TEXT_LEN + 1],
			     unsigned char hash[32])
{
	char hdr[4096];
	if (http_req_header(req, "cookie", hdr, sizeof(hdr)) < 0 ||
	    auth_cookie_value(hdr, cookie, AUTH_SESSION_TEXT_LEN + 1) < 0)
		return false;
	unsigned char raw[32];
	size_t rawlen = 0;
	if (strlen(cookie) != AUTH_SESSION_TEXT_LEN || !auth_sodium() ||
	    sodium_base642bin(raw, sizeof(raw), cookie, strlen(cookie), NULL, &rawlen, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    rawlen != sizeof(raw)) {
		cookie[0] = '\0';
		return false;
	}
	crypto_hash_sha256(hash, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	return true;
}

/* ---- what the gate learnt, and a short memory of it for /ws (issue 14) ---- */

/* A WebSocket upgrade is answered inside libwebsockets' callback and
 * cannot wait for the database: on PostgreSQL it is judged by what an
 * HTTP request with the same credentials learnt in the last
 * AUTH_MEMO_TTL_MS (the web UI reads /auth/me before it opens /ws).
 * Keyed by the SHA-256 of the credential, never the credential itself; a
 * logout forgets its session at once. */
#define AUTH_MEMO_N 64
#define AUTH_MEMO_TTL_MS 30000

struct auth_memo {
	unsigned char key[32];
	uint64_t at_ms; /* clock_mono_ms() when put */
	bool used;
	struct auth_known k;
};
static struct auth_memo auth_memo[AUTH_MEMO_N];
/* Bumped by every forgetting: a check that began before one does not put
 * its (older) answer in the memo. */
static uint64_t auth_memo_gen;

/* The key of req's credential: the bearer value or the session cookie. */
static bool auth_memo_key(struct http_req *req, unsigned char key[32])
{
	char v[APITOKEN_MAX_HEADER], cookie[AUTH_SESSION_TEXT_LEN + 1];
	unsigned char h[32];
	if (!auth_sodium())
		return false;
	if (http_req_header(req, "authorization", v, sizeof(v)) > 0) {
		crypto_hash_sha256(key, (const unsigned char *)v, strlen(v));
		sodium_memzero(v, sizeof(v));
		return true;
	}
	if (!auth_cookie_hash(req, cookie, h))
		return false;
	crypto_hash_sha256(key, h, sizeof(h));
	sodium_memzero(cookie, sizeof(cookie));
	return true;
}

static void auth_memo_put(struct http_req *req, const struct auth_known *k)
{
	unsigned char key[32];
	if (!auth_memo_key(req, key))
		return;
	struct auth_memo *slot = &auth_memo[0];
	for (size_t i = 0; i < AUTH_MEMO_N; i++) {
		struct auth_memo *e = &auth_memo[i];
		if (e->used && !sodium_memcmp(e->key, key, sizeof(key))) {
			slot = e;
			break;
		}
		if (!e->used || (slot->used && e->at_ms < slot->at_ms))
			slot = e; /* an empty one, or the oldest */
	}
	memcpy(slot->key, key, sizeof(key));
	slot->k = *k;
	/* the session's own text is not kept: a /ws upgrade needs only who */
	sodium_memzero(slot->k.who.cookie, sizeof(slot->k.who.cookie));
	slot->at_ms = clock_mono_ms();
	slot->used = true;
}

static const struct auth_known *auth_memo_get(struct http_req *req)
{
	unsigned char key[32];
	if (!auth_memo_key(req, key))
		return NULL;
	uint64_t now = clock_mono_ms();
	for (size_t i = 0; i < AUTH_MEMO_N; i++) {
		struct auth_memo *e = &auth_memo[i];
		if (e->used && now - e->at_ms < AUTH_MEMO_TTL_MS &&
		    !sodium_memcmp(e->key, key, sizeof(key)))
			return &e->k;
	}
	return NULL;
}

/* Forgets what was learnt of req's credential (a logout), or of every
 * credential of user uid (> 0: a password changed, a user removed). */
static void auth_memo_forget(struct http_req *req, int64_t uid)
{
	auth_memo_gen++;
	unsigned char key[32];
	bool have = req && auth_memo_key(req, key);
	for (size_t i = 0; i < AUTH_MEMO_N; i++) {
		struct auth_memo *e = &auth_memo[i];
		if ((have && !sodium_memcmp(e->key, key, sizeof(key))) ||
		    (uid > 0 && e->k.who.uid == uid))
			sodium_memzero(e, sizeof(*e));
	}
}

void auth_forget_user(int64_t uid)
{
	if (uid > 0) {
		auth_memo_forget(NULL, uid);
	} else {
		auth_memo_gen++;
		sodium_memzero(auth_memo, sizeof(auth_memo));
	}
}

/* The refusal's text learnt into why (whylen bytes, cut to fit). */
static void auth_why_copy(char *why, size_t whylen, const char *text)
{
	if (!whylen)
		return;
	size_t n = strnlen(text, whylen - 1);
	memcpy(why, text, n);
	why[n] = '\0';
}

void auth_known_free(struct auth_known *k)
{
	if (k) {
		sodium_memzero(k, sizeof(*k));
		free(k);
	}
}

int auth_known_token(const struct http_req *req, unsigned need, struct db_token *ret, char *why,
		     size_t whylen)
{
	const struct auth_known *k = req->auth;
	if (!k)
		return -ENOENT;
	if (k->tok_r <= 0) {
		if (k->tok_r < 0)
			auth_why_copy(why, whylen, k->why);
		return k->tok_r;
	}
	const struct db_token *t = &k->who.token;
	if ((t->scopes & need) != need) {
		char sc[128], peer[64];
		db_token_scopes_format(need & ~t->scopes, sc, sizeof(sc));
		snprintf(why, whylen, "token %lld '%s' lacks the scope %s", (long long)t->id,
			 t->name, sc);
		http_req_peer(req, peer, sizeof(peer));
		log_warn("API token refused for %s on %s: %s", peer, req->path, why);
		return -EPERM;
	}
	if (ret)
		*ret = *t;
	return 1;
}

/* Fills who; 0, or an error (KILN_EAUTH / -EPERM for a refused token,
 * the reason in why).  From what auth_prepare learnt when it ran; else
 * (a /ws upgrade) read at once on SQLite, remembered on PostgreSQL. */
static int auth_identify(struct http_req *req, struct auth_who *who, char *why, size_t whylen)
{
	struct master *m = req->m;
	const struct auth_known *k = req->auth;
	if (!k && db_is_postgresql(m->db) && !(k = auth_memo_get(req))) {
		/* nothing learnt of this credential (a /ws upgrade): nobody, or a
		 * token refused until an HTTP request has made it known */
		*who = (struct auth_who){.kind = AUTH_ANON};
		char tok[APITOKEN_MAX_HEADER];
		int t = apitoken_begin(req, tok, sizeof(tok), why, whylen);
		sodium_memzero(tok, sizeof(tok));
		if (t == 1) {
			snprintf(why, whylen,
				 "API token not checked yet: make an HTTP request with "
				 "it first");
			return KILN_EAUTH;
		}
		if (t < 0)
			return t;
		const char *hook = m->cfg ? m->cfg->change_hook.token : NULL;
		if (hook && apitoken_bearer_is(req, hook)) {
			who->kind = AUTH_SHARED;
			snprintf(who->username, sizeof(who->username), "(change_hook token)");
		}
		return 0;
	}
	if (k) {
		*who = k->who;
		if (k->r < 0)
			auth_why_copy(why, whylen, k->why);
		return k->r;
	}
	*who = (struct auth_who){.kind = AUTH_ANON};
	int r = apitoken_check(req, 0, &who->token, why, whylen);
	if (r < 0)
		return r;
	if (r == 1) {
		who->kind = AUTH_TOKEN;
		who->uid = who->token.uid;
		if (who->uid)
			db_user_login(m->db, who->uid, who->username, sizeof(who->username),
				      who->roles, sizeof(who->roles));
		return 0;
	}
	const char *hook = m->cfg ? m->cfg->change_hook.token : NULL;
	if (hook && apitoken_bearer_is(req, hook)) {
		who->kind = AUTH_SHARED;
		snprintf(who->username, sizeof(who->username), "(change_hook token)");
		return 0;
	}
	unsigned char hash[32];
	if (!auth_cookie_hash(req, who->cookie, hash))
		return 0;
	struct db_session s;
	r = db_session_get(m->db, hash, (int64_t)clock_wall(), auth_idle(m), &s);
	if (r != 1) {
		who->cookie[0] = '\0';
		return 0;
	}
	who->kind = AUTH_SESSION;
	who->uid = s.uid;
	snprintf(who->username, sizeof(who->username), "%s", s.username);
	if (who->uid)
		db_user_login(m->db, who->uid, NULL, 0, who->roles, sizeof(who->roles));
	return 0;
}

/* ---- the gate's reads before the handler (issue 14) ---- */

/* One request's credentials being checked on the loop. */
struct auth_prep {
	struct http_deferred *d;
	struct master *m;
	struct auth_known *k;
	uint64_t memo_gen;    /* auth_memo_gen when the check began */
	enum db_resource res; /* the build or request a POST names, its builder wanted */
	char objid[24];
	struct db_filter f;
	const char *fv[1];
};

static void auth_prep_builder(struct auth_prep *p, struct http_req *req);

/* The request back, or NULL (p freed: the client went, or the master stops). */
static struct http_req *auth_prep_req(struct auth_prep *p)
{
	struct http_req *req = http_deferred_req(p->d);
	if (!req) {
		http_deferred_end(p->d);
		auth_known_free(p->k);
		sodium_memzero(p, sizeof(*p));
		free(p);
	}
	return req;
}

/* Everything learnt: the request goes to its handler. */
static void auth_prep_done(struct auth_prep *p, struct http_req *req)
{
	/* not if a logout, a revoke or a user's change came meanwhile: what
	 * was read may be from before it */
	if (db_is_postgresql(p->m->db) && p->memo_gen == auth_memo_gen)
		auth_memo_put(req, p->k);
	req->auth = p->k;
	struct http_deferred *d = p->d;
	sodium_memzero(p, sizeof(*p));
	free(p);
	http_deferred_redispatch(d);
}

static void auth_prep_builder_named(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct auth_prep *p = arg;
	(void)total;
	(void)err;
	struct http_req *req = auth_prep_req(p);
	if (!req) {
		json_decref(items);
		return;
	}
	const char *name =
		r < 0 ? NULL : json_string_value(json_object_get(json_array_get(items, 0), "name"));
	if (name) {
		snprintf(p->k->builder, sizeof(p->k->builder), "%s", name);
		p->k->have_builder = true;
	}
	json_decref(items);
	auth_prep_done(p, req);
}

static void auth_prep_builder_found(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct auth_prep *p = arg;
	(void)total;
	(void)err;
	struct http_req *req = auth_prep_req(p);
	if (!req) {
		json_decref(items);
		return;
	}
	if (r < 0) { /* unread: the gate checks a builder of no name (a role on every one) */
		json_decref(items);
		auth_prep_done(p, req);
		return;
	}
	json_t *bid = json_object_get(json_array_get(items, 0), "builderid");
	if (!json_is_integer(bid)) {
		json_decref(items);
		p->k->have_builder = true; /* none: the handler answers 404 */
		auth_prep_done(p, req);
		return;
	}
	snprintf(p->objid, sizeof(p->objid), "%lld", (long long)json_integer_value(bid));
	json_decref(items);
	p->f = (struct db_filter){
		.field = "builderid", .op = DB_OP_EQ, .values = p->fv, .nvalues = 1};
	p->fv[0] = p->objid;
	struct db_query q = {.filters = &p->f, .nfilters = 1, .limit = 1};
	if (db_list_async(p->m->db, DB_BUILDERS, &q, NULL, false, auth_prep_builder_named, p) < 0)
		auth_prep_done(p, req);
}

/* A POST to builds/N or buildrequests/N: its builder's name, for the
 * roles per builder (auth_call_role); then the handler. */
static void auth_prep_builder(struct auth_prep *p, struct http_req *req)
{
	const char *rest = req->path;
	const char *id = NULL;
	if (req->method != HTTP_POST ||
	    (p->k->who.kind != AUTH_TOKEN && p->k->who.kind != AUTH_SESSION)) {
		auth_prep_done(p, req);
		return;
	}
	if (!strncmp(rest, "/api/v2/builds/", 15))
		p->res = DB_BUILDS, id = rest + 15;
	else if (!strncmp(rest, "/api/v2/buildrequests/", 22))
		p->res = DB_BUILDREQUESTS, id = rest + 22;
	if (!id || !api_is_num(id) || strlen(id) >= sizeof(p->objid)) {
		auth_prep_done(p, req);
		return;
	}
	snprintf(p->objid, sizeof(p->objid), "%s", id);
	p->fv[0] = p->objid;
	p->f = (struct db_filter){.field = p->res == DB_BUILDS ? "buildid" : "buildrequestid",
				  .op = DB_OP_EQ,
				  .values = p->fv,
				  .nvalues = 1};
	struct db_query q = {.filters = &p->f, .nfilters = 1, .limit = 1};
	if (db_list_async(p->m->db, p->res, &q, NULL, false, auth_prep_builder_found, p) < 0)
		auth_prep_done(p, req);
}

static void auth_prep_user(void *arg, int r, const struct db_user_login *u, const char *err)
{
	struct auth_prep *p = arg;
	(void)err;
	struct http_req *req = auth_prep_req(p);
	if (!req)
		return;
	struct auth_who *who = &p->k->who;
	if (r == 1 && u) {
		if (who->kind == AUTH_TOKEN)
			snprintf(who->username, sizeof(who->username), "%s", u->username);
		snprintf(who->roles, sizeof(who->roles), "%s", u->roles);
	}
	auth_prep_builder(p, req);
}

/* The user's name (a token's) and roles, then the builder. */
static void auth_prep_then_user(struct auth_prep *p, struct http_req *req)
{
	if (!p->k->who.uid ||
	    db_user_login_async(p->m->db, p->k->who.uid, NULL, auth_prep_user, p) < 0)
		auth_prep_builder(p, req);
}

static void auth_prep_session(void *arg, int r, const struct db_session *s, const char *err)
{
	struct auth_prep *p = arg;
	(void)err;
	struct http_req *req = auth_prep_req(p);
	if (!req)
		return;
	struct auth_who *who = &p->k->who;
	if (r != 1 || !s) {
		who->cookie[0] = '\0';
		auth_prep_done(p, req);
		return;
	}
	who->kind = AUTH_SESSION;
	who->uid = s->uid;
	snprintf(who->username, sizeof(who->username), "%s", s->username);
	auth_prep_then_user(p, req);
}

static void auth_prep_token(void *arg, int r, const struct db_token *t, const char *err)
{
	struct auth_prep *p = arg;
	struct http_req *req = auth_prep_req(p);
	if (!req)
		return;
	struct auth_known *k = p->k;
	k->tok_r = apitoken_end(req, r, err ? err : "", k->why, sizeof(k->why));
	if (k->tok_r < 0) {
		k->r = k->tok_r;
		auth_prep_done(p, req);
		return;
	}
	k->who.kind = AUTH_TOKEN;
	k->who.token = *t;
	k->who.uid = t->uid;
	auth_prep_then_user(p, req);
}

bool auth_prepare(struct http_req *req)
{
	struct master *m = req->m;
	if (req->auth)
		return false;
	char tok[APITOKEN_MAX_HEADER], cookie[AUTH_SESSION_TEXT_LEN + 1];
	unsigned char hash[32];
	struct auth_known *k = xcalloc(1, sizeof(*k));
	k->who.kind = AUTH_ANON;
	int t = apitoken_begin(req, tok, sizeof(tok), k->why, sizeof(k->why));
	bool session = false;
	if (t == 0) {
		const char *hook = m->cfg ? m->cfg->change_hook.token : NULL;
		if (hook && apitoken_bearer_is(req, hook)) {
			k->who.kind = AUTH_SHARED;
			snprintf(k->who.username, sizeof(k->who.username), "(change_hook token)");
		} else {
			session = auth_cookie_hash(req, cookie, hash);
		}
	}
	if (t < 0 || (t == 0 && !session)) {
		/* nothing to read: known at once */
		k->r = k->tok_r = t < 0 ? t : 0;
		req->auth = k;
		return false;
	}
	struct auth_prep *p = xcalloc(1, sizeof(*p));
	p->m = m;
	p->k = k;
	p->memo_gen = auth_memo_gen;
	p->d = http_req_defer(req);
	int r;
	if (t == 1) {
		r = db_token_verify_async(m->db, tok, 0, (int64_t)clock_wall(), auth_prep_token, p);
	} else {
		snprintf(k->who.cookie, sizeof(k->who.cookie), "%s", cookie);
		r = db_session_get_async(m->db, hash, (int64_t)clock_wall(), auth_idle(m),
					 auth_prep_session, p);
	}
	sodium_memzero(tok, sizeof(tok));
	sodium_memzero(cookie, sizeof(cookie));
	if (r < 0) {
		/* the database refused the read: nobody, and a token refused */
		log_warn("cannot check credentials: %s", db_errmsg(m->db));
		if (t == 1) {
			k->r = k->tok_r = KILN_EAUTH;
			snprintf(k->why, sizeof(k->why), "cannot check the token now");
		}
		k->who.cookie[0] = '\0';
		auth_prep_done(p, req);
	}
	return true;
}

/* Does the request carry the session's CSRF token (constant time)? */
static bool auth_csrf_ok(struct http_req *req, const struct auth_who *who)
{
	char got[128], want[AUTH_SESSION_TEXT_LEN + 1];
	int n = http_req_header(req, AUTH_CSRF_HEADER, got, sizeof(got));
	if (n != AUTH_SESSION_TEXT_LEN)
		return false;
	auth_csrf_of(who->cookie, want);
	return sodium_memcmp(got, want, AUTH_SESSION_TEXT_LEN) == 0;
}

/* ---- what a call needs ---------------------------------------------------------------- */

/* The role a JSON-RPC call needs and the builders it acts on (*ret_b,
 * malloc'd names; *ret_nb 0 when the call is not a builder's). */
static unsigned auth_call_role(struct api_ctx *ctx, struct api_rpc *rpc, const char *route,
			       char ***ret_b, size_t *ret_nb)
{
	const char *meth = rpc->method;
	*ret_b = NULL;
	*ret_nb = 0;
	unsigned role = CONFIG_ROLE_ADMIN;
	const char *idfield = NULL;
	enum db_resource res = DB_BUILDS;
	if (!strcmp(route, "forceschedulers/*") && !strcmp(meth, "force"))
		role = CONFIG_ROLE_FORCE;
	else if (!strcmp(route, "tryschedulers/*") && !strcmp(meth, "try"))
		role = CONFIG_ROLE_FORCE;
	else if (!strcmp(route, "builds/#") && !strcmp(meth, "rebuild"))
		role = CONFIG_ROLE_FORCE, idfield = "buildid";
	else if (!strcmp(route, "builds/#") && !strcmp(meth, "stop"))
		role = CONFIG_ROLE_STOP, idfield = "buildid";
	else if (!strcmp(route, "buildrequests/#") && !strcmp(meth, "cancel"))
		role = CONFIG_ROLE_CANCEL, idfield = "buildrequestid", res = DB_BUILDREQUESTS;
	else
		return role;

	char **v = NULL;
	size_t n = 0;
	const struct auth_known *k = ctx->req->auth;
	if (idfield && k) {
		/* read before the handler (auth_prepare); none found: the
		 * handler answers 404; unread: no builder's role allows it */
		if (!k->have_builder || k->builder[0]) {
			v = xcalloc(1, sizeof(*v));
			v[n++] = xstrdup(k->have_builder ? k->builder : "");
		}
	} else if (idfield) {
		const char *f[] = {idfield, ctx->cap[0], NULL};
		json_t *items = NULL;
		if (api_fetch(ctx, res, f, &items) >= 0 && json_array_size(items) == 1) {
			char bid[32];
			snprintf(bid, sizeof(bid), "%lld",
				 (long long)json_integer_value(
					 json_object_get(json_array_get(items, 0), "builderid")));
			const char *g[] = {"builderid", bid, NULL};
			json_t *b = NULL;
			if (api_fetch(ctx, DB_BUILDERS, g, &b) >= 0 && json_array_size(b) == 1) {
				const char *name = json_string_value(
					json_object_get(json_array_get(b, 0), "name"));
				if (name) {
					v = xcalloc(1, sizeof(*v));
					v[n++] = xstrdup(name);
				}
			}
			json_decref(b);
		}
		json_decref(items);
	} else {
		/* a scheduler's: the builders named in the call, else all of them */
		const struct config *cfg = ctx->m->cfg;
		const struct config_scheduler *sc = NULL;
		for (size_t i = 0; cfg && i < cfg->nschedulers && !sc; i++)
			if (!strcmp(cfg->scheduler[i].name, ctx->cap[0]))
				sc = &cfg->scheduler[i];
		json_t *names = json_object_get(rpc->params, "builderNames");
		json_t *bid = json_object_get(rpc->params, "builderid");
		if (json_is_array(names) && json_array_size(names) > 0 &&
		    json_array_size(names) <= 10000) {
			size_t i;
			json_t *x;
			v = xcalloc(json_array_size(names), sizeof(*v));
			json_array_foreach(names, i, x) v[n++] =
				xstrdup(json_is_string(x) ? json_string_value(x) : "");
		} else if (json_is_integer(bid) || json_is_string(bid)) {
			char idtext[32];
			if (json_is_integer(bid))
				snprintf(idtext, sizeof(idtext), "%lld",
					 (long long)json_integer_value(bid));
			else
				snprintf(idtext, sizeof(idtext), "%.20s", json_string_value(bid));
			/* a configured builder's name from memory; another's is
			 * read (on SQLite only: none on PostgreSQL, no role allows it) */
			char *end = NULL;
			long long id = strtoll(idtext, &end, 10);
			const struct config_builder *bc =
				end && !*end && id > 0 ? engine_builder_cfg(ctx->m->engine, id)
						       : NULL;
			const char *g[] = {"builderid", idtext, NULL};
			json_t *b = NULL;
			v = xcalloc(1, sizeof(*v));
			const char *name = bc ? bc->name : NULL;
			if (!bc && !db_is_postgresql(ctx->db) &&
			    api_fetch(ctx, DB_BUILDERS, g, &b) >= 0 && json_array_size(b) == 1)
				name = json_string_value(
					json_object_get(json_array_get(b, 0), "name"));
			v[n++] = xstrdup(name ? name : "");
			json_decref(b);
		} else if (sc && sc->nbuilders) {
			v = xcalloc(sc->nbuilders, sizeof(*v));
			for (size_t i = 0; i < sc->nbuilders; i++)
				v[n++] = xstrdup(sc->builders[i]);
		}
	}
	*ret_b = v;
	*ret_nb = n;
	return role;
}

static void auth_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* May the user hold role on every builder of b (or, with none, at all)?
 * The first refused builder into *ret_bad. */
static bool auth_user_may_all(struct master *m, const struct auth_who *who, unsigned role, char **b,
			      size_t nb, const char **ret_bad)
{
	*ret_bad = NULL;
	if (nb == 0)
		return role == CONFIG_ROLE_ADMIN ? (auth_roles_full(m, who) & role) != 0
						 : auth_user_may(m, who, role, NULL);
	for (size_t i = 0; i < nb; i++)
		if (!auth_user_may(m, who, role, b[i])) {
			*ret_bad = b[i];
			return false;
		}
	return true;
}

static void auth_refuse_log(struct http_req *req, const char *why)
{
	char peer[64];
	http_req_peer(req, peer, sizeof(peer));
	log_warn("control call refused for %s on %s: %s", peer, req->path, why);
}

/* A try API token stands for the scheduler's own token (docs/AUTH.md). */
static void auth_try_token(struct api_ctx *ctx, struct api_rpc *rpc)
{
	const struct config *cfg = ctx->m->cfg;
	for (size_t i = 0; cfg && i < cfg->nschedulers; i++) {
		const struct config_scheduler *sc = &cfg->scheduler[i];
		if (sc->kind == CONFIG_SCHED_TRY && !strcmp(sc->name, ctx->cap[0]) && sc->token &&
		    json_is_object(rpc->params))
			json_object_set_new(rpc->params, "token", json_string(sc->token));
	}
}

int auth_rpc_gate(struct api_ctx *ctx, struct api_rpc *rpc, const char *route)
{
	struct master *m = ctx->m;
	struct auth_who who;
	char why[512];
	int r = auth_identify(ctx->req, &who, why, sizeof(why));
	if (r < 0) {
		api_rpc_reply_error(ctx,
				    r == -EPERM    ? 403
				    : r == -EAGAIN ? 429
						   : 401,
				    rpc->id, -32001, why);
		return -1;
	}
	if (who.kind == AUTH_SHARED)
		return 0;
	if (who.kind == AUTH_ANON) {
		if (auth_anonymous_control(m))
			return 0;
		/* a try scheduler checks its own token (params "token") as before */
		if (!strcmp(route, "tryschedulers/*") && !strcmp(rpc->method, "try"))
			return 0;
		snprintf(why, sizeof(why),
			 "login required: control calls need a session (POST /auth/login) or an "
			 "API token");
		auth_refuse_log(ctx->req, why);
		api_rpc_reply_error(ctx, 401, rpc->id, -32001, why);
		return -1;
	}
	if (who.kind == AUTH_TOKEN) {
		unsigned need = apitoken_method_scope(rpc->method);
		if ((who.token.scopes & need) != need) {
			char sc[128];
			db_token_scopes_format(need & ~who.token.scopes, sc, sizeof(sc));
			snprintf(why, sizeof(why), "token %lld '%s' lacks the scope %s",
				 (long long)who.token.id, who.token.name, sc);
			auth_refuse_log(ctx->req, why);
			api_rpc_reply_error(ctx, 403, rpc->id, -32001, why);
			return -1;
		}
		if (!who.uid || !auth_cfg(m)) {
			if (!strcmp(rpc->method, "try") && !strcmp(route, "tryschedulers/*"))
				auth_try_token(ctx, rpc);
			return 0;
		}
	} else if (!auth_csrf_ok(ctx->req, &who)) {
		snprintf(why, sizeof(why),
			 "missing or wrong X-Kiln-CSRF header (a session's control calls carry "
			 "the csrf value of GET /auth/me)");
		auth_refuse_log(ctx->req, why);
		api_rpc_reply_error(ctx, 403, rpc->id, -32001, why);
		return -1;
	}
	/* a login is never worth less than no login */
	if (who.kind == AUTH_SESSION && auth_anonymous_control(m))
		return 0;
	char **b = NULL;
	size_t nb = 0;
	unsigned role = auth_call_role(ctx, rpc, route, &b, &nb);
	const char *bad = NULL;
	bool ok = auth_user_may_all(m, &who, role, b, nb, &bad);
	if (!ok) {
		if (bad)
			snprintf(why, sizeof(why),
				 "user '%s' lacks the role %s on builder '%.100s'", who.username,
				 config_role_name(role), bad);
		else
			snprintf(why, sizeof(why), "user '%s' lacks the role %s", who.username,
				 config_role_name(role));
		auth_refuse_log(ctx->req, why);
		api_rpc_reply_error(ctx, 403, rpc->id, -32001, why);
	}
	auth_strv_free(b, nb);
	if (ok && who.kind == AUTH_TOKEN && !strcmp(rpc->method, "try") &&
	    !strcmp(route, "tryschedulers/*"))
		auth_try_token(ctx, rpc);
	return ok ? 0 : -1;
}

int auth_read_check(struct http_req *req, char *why, size_t whylen)
{
	if (auth_anonymous_read(req->m))
		return 0;
	struct auth_who who;
	int r = auth_identify(req, &who, why, whylen);
	if (r < 0)
		return r == -EPERM ? 403 : r == -EAGAIN ? 429 : 401;
	if (who.kind == AUTH_SHARED || who.kind == AUTH_SESSION)
		return 0;
	if (who.kind == AUTH_TOKEN) {
		if (who.token.scopes & (DB_SCOPE_VIEW | DB_SCOPE_ADMIN))
			return 0;
		snprintf(why, whylen, "token %lld '%s' lacks the scope view",
			 (long long)who.token.id, who.token.name);
		return 403;
	}
	snprintf(why, whylen, "login required: reading needs a session or an API token with view");
	return 401;
}

int auth_hook_open(struct http_req *req)
{
	if (auth_anonymous_control(req->m))
		return 0;
	http_reply(req, 401, "text/plain; charset=utf-8",
		   "this change hook needs 'Authorization: Bearer TOKEN' (an API token with "
		   "sendchange)\n",
		   strlen("this change hook needs 'Authorization: Bearer TOKEN' (an API token "
			  "with sendchange)\n"));
	return -1;
}

/* ---- /auth/... ------------------------------------------------------------------------ */

static void auth_reply_json(struct http_req *req, int status, json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (!s) {
		http_reply_errmsg(req, 500, "cannot encode JSON");
		return;
	}
	http_reply_take(req, status, "application/json", s, strlen(s));
	http_reply_header(req, "cache-control", "no-store");
}

/* The roles and builder patterns a user holds, for /auth/me and the UI. */
static json_t *auth_can(struct master *m, const struct auth_who *who)
{
	json_t *can = json_object();
	static const unsigned roles[] = {CONFIG_ROLE_FORCE, CONFIG_ROLE_STOP, CONFIG_ROLE_CANCEL};
	bool anon = who->kind == AUTH_ANON;
	bool all = who->kind == AUTH_SHARED ||
		   ((anon || who->kind == AUTH_SESSION) && auth_anonymous_control(m));
	unsigned full = all ? AUTH_ROLES_ALL : anon ? 0 : auth_roles_full(m, who);
	if (who->kind == AUTH_TOKEN) {
		unsigned t = 0, s = who->token.scopes;
		t |= s & DB_SCOPE_ADMIN ? CONFIG_ROLE_ADMIN : 0;
		t |= s & DB_SCOPE_FORCE ? CONFIG_ROLE_FORCE : 0;
		t |= s & DB_SCOPE_STOP ? CONFIG_ROLE_STOP : 0;
		t |= s & DB_SCOPE_CANCEL ? CONFIG_ROLE_CANCEL : 0;
		full = who->uid && auth_cfg(m) ? full & t : t;
	}
	json_object_set_new(can, "admin", json_boolean(full & CONFIG_ROLE_ADMIN));
	json_object_set_new(
		can, "view",
		json_boolean(!anon || auth_anonymous_read(m) || (full & CONFIG_ROLE_VIEW)));
	const struct config_auth *a = auth_cfg(m);
	for (size_t i = 0; i < ARRAY_SIZE(roles); i++) {
		json_t *pats = json_array();
		if (full & roles[i]) {
			json_array_append_new(pats, json_string("*"));
		} else if (!anon && who->kind != AUTH_TOKEN) {
			for (size_t k = 0; a && k < a->nrules; k++) {
				const struct config_auth_rule *r = &a->rule[k];
				if (r->role != roles[i] || !auth_rule_has_user(r, who->username))
					continue;
				for (size_t j = 0; j < r->nbuilders; j++)
					json_array_append_new(pats, json_string(r->builders[j]));
			}
		}
		json_object_set_new(can, config_role_name(roles[i]), pats);
	}
	return can;
}

static json_t *auth_me_doc(struct master *m, const struct auth_who *who)
{
	json_t *user = json_null();
	json_t *csrf = json_null();
	if (who->kind == AUTH_SESSION) {
		char c[AUTH_SESSION_TEXT_LEN + 1];
		auth_csrf_of(who->cookie, c);
		csrf = json_string(c);
	}
	if (who->kind != AUTH_ANON) {
		user = json_object();
		json_object_set_new(user, "username", json_string(who->username));
		json_object_set_new(user, "uid", who->uid ? json_integer(who->uid) : json_null());
		json_object_set_new(user, "via",
				    json_string(who->kind == AUTH_SESSION ? "session"
						: who->kind == AUTH_TOKEN ? "token"
									  : "shared"));
	}
	json_t *doc = json_object();
	json_object_set_new(doc, "user", user);
	json_object_set_new(doc, "csrf", csrf);
	json_object_set_new(doc, "can", auth_can(m, who));
	json_object_set_new(doc, "anonymous_read", json_boolean(auth_anonymous_read(m)));
	json_object_set_new(doc, "anonymous_control", json_boolean(auth_anonymous_control(m)));
	return doc;
}

/* The htpasswd file's hash for user into hash: 1, 0 (none), <0 error. */
static int auth_htpasswd_find(struct master *m, const char *user, char *hash, size_t n)
{
	const struct config_auth *a = auth_cfg(m);
	if (!a || !a->htpasswd)
		return 0;
	_cleanup_free_ char *path = a->htpasswd[0] == '/'
					    ? xstrdup(a->htpasswd)
					    : xasprintf("%s/%s", m->basedir, a->htpasswd);
	FILE *f = fopen(path, "re");
	if (!f) {
		log_warn("cannot open htpasswd file '%s': %s", path, strerror(errno));
		return -errno;
	}
	char line[1024];
	size_t total = 0;
	int found = 0;
	while (!found && total < AUTH_HTPASSWD_MAX && fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		total += len;
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		if (user) {
			found = auth_htpasswd_line(line, len, user, hash, n);
		} else {
			/* any user's line (the dummy hash for unknown names) */
			const char *c = memchr(line, ':', len);
			if (c && c > line) {
				_cleanup_free_ char *u = xstrndup(line, (size_t)(c - line));
				found = auth_htpasswd_line(line, len, u, hash, n);
			}
		}
	}
	fclose(f);
	sodium_memzero(line, sizeof(line));
	return found;
}

/* Database users that can log in, 0 on error. */
static int64_t auth_login_users(struct master *m)
{
	int64_t n = 0;
	if (db_login_users_count(m->db, &n) < 0)
		return 0;
	return n;
}

/* Two limiters: per client address and per username. */
static struct authlimit *auth_limiter(int which)
{
	static struct authlimit *al[2];
	if (!al[which]) {
		struct authlimit_cfg cfg;
		authlimit_cfg_default(&cfg);
		/* a person retyping a password waits a few seconds anyway: the
		 * first window is 5 s (not the workers' 1 s), then doubles */
		if (cfg.first_ms < AUTH_LOGIN_FIRST_MS)
			cfg.first_ms =
				AUTH_LOGIN_FIRST_MS < cfg.max_ms ? AUTH_LOGIN_FIRST_MS : cfg.max_ms;
		al[which] = authlimit_new(&cfg);
	}
	return al[which];
}

static int auth_login_params(struct http_req *req, char *user, size_t un, char *pass, size_t pn)
{
	const char *u = NULL, *p = NULL;
	json_t *doc = NULL;
	struct http_arg *args = NULL;
	size_t nargs = 0;
	int r = -EINVAL;
	if (!strncmp(req->content_type, "application/json", 16)) {
		doc = json_loadb(req->body, req->body_len, 0, NULL);
		u = json_string_value(json_object_get(doc, "username"));
		p = json_string_value(json_object_get(doc, "password"));
	} else if (!strncmp(req->content_type, "application/x-www-form-urlencoded", 33)) {
		if (http_query_parse(req->body, req->body_len, 16, &args, &nargs) == 0)
			for (size_t i = 0; i < nargs; i++) {
				if (!strcmp(args[i].name, "username"))
					u = args[i].value;
				else if (!strcmp(args[i].name, "password"))
					p = args[i].value;
			}
	}
	if (u && p && *u && strlen(u) < un && strlen(p) < pn) {
		snprintf(user, un, "%s", u);
		snprintf(pass, pn, "%s", p);
		r = 0;
		for (const char *c = user; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				r = -EINVAL;
	}
	if (doc) {
		/* the password's copy inside jansson's document goes too */
		if (p)
			sodium_memzero((char *)p, strlen(p));
		json_decref(doc);
	}
	if (args) {
		for (size_t i = 0; i < nargs; i++)
			sodium_memzero(args[i].value, strlen(args[i].value));
		http_args_free(args, nargs);
	}
	return r;
}

/* A login's password check on the thread pool (uv_queue_work): only what
 * the job reads and writes lives here; the loop owns everything else. */
struct auth_login_job {
	uv_work_t work;
	struct master *m;
	struct http_deferred *d;
	char *hash; /* owned: the stored hash, or the dummy's (NULL: the dummy argon2id) */
	bool known; /* the user exists and has a hash: ok counts */
	int ok;     /* the job's verdict */
	int64_t uid;
	uint64_t now;
	char user[DB_USER_TEXT_MAX + 1];
	char ukey[DB_USER_TEXT_MAX + 8];
	char peer[64];
	char pass[AUTH_PASSWORD_MAX + 1];
	char roles[DB_ROLES_TEXT_MAX + 1];      /* the database user's */
	char cookie[AUTH_SESSION_TEXT_LEN + 1]; /* the new session's, until answered */
	long long age;
	bool counted; /* in auth_login_inflight */
};

static unsigned auth_login_inflight; /* loop thread only */

/* The dummy argon2id hash an unknown username is checked against, made once
 * (on a pool thread, at the first such login) with `kiln user`'s limits. */
static char auth_dummy_hash[crypto_pwhash_STRBYTES];
static bool auth_dummy_ok;
static pthread_once_t auth_dummy_once = PTHREAD_ONCE_INIT;

static void auth_dummy_make(void)
{
	unsigned char pw[16];
	randombytes_buf(pw, sizeof(pw));
	auth_dummy_ok = crypto_pwhash_str(auth_dummy_hash, (const char *)pw, sizeof(pw),
					  crypto_pwhash_OPSLIMIT_INTERACTIVE,
					  crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0;
	sodium_memzero(pw, sizeof(pw));
}

static void auth_login_work(uv_work_t *w)
{
	struct auth_login_job *j = w->data;
	const char *hash = j->hash;
	if (!hash) {
		pthread_once(&auth_dummy_once, auth_dummy_make);
		hash = auth_dummy_ok ? auth_dummy_hash : "";
	}
	int ok = auth_password_ok(hash, j->pass);
	j->ok = j->known && ok;
	sodium_memzero(j->pass, sizeof(j->pass));
}

static void auth_login_job_free(struct auth_login_job *j)
{
	if (j->counted)
		auth_login_inflight--;
	if (j->hash) {
		sodium_memzero(j->hash, strlen(j->hash));
		free(j->hash);
	}
	sodium_memzero(j, sizeof(*j));
	free(j);
}

/* The session is stored (or not): the answer. */
static void auth_login_committed(void *arg, int r, const char *err)
{
	struct auth_login_job *j = arg;
	struct http_req *req = http_deferred_req(j->d);
	if (req && r < 0) {
		log_error("cannot store a session: %s (%s)", err_str(r), err ? err : "");
		http_reply_errmsg(req, 500, "cannot store the session");
	} else if (req) {
		struct master *m = j->m;
		log_info("login for '%s' from %s", j->user, j->peer);
		struct auth_who who = {.kind = AUTH_SESSION, .uid = j->uid};
		snprintf(who.username, sizeof(who.username), "%s", j->user);
		snprintf(who.cookie, sizeof(who.cookie), "%s", j->cookie);
		snprintf(who.roles, sizeof(who.roles), "%s", j->roles);
		char sc[256];
		auth_set_cookie(j->cookie, j->age, auth_secure(m), sc, sizeof(sc));
		auth_reply_json(req, 200, auth_me_doc(m, &who));
		http_reply_header(req, "set-cookie", sc);
		sodium_memzero(&who, sizeof(who));
		sodium_memzero(sc, sizeof(sc));
	}
	http_deferred_end(j->d);
	auth_login_job_free(j);
}

/* The password checked: true when j waits for the session's commit (it
 * answers then), false when answered here. */
static bool auth_login_finish(struct auth_login_job *j, struct http_req *req)
{
	struct master *m = j->m;
	if (!j->ok) {
		authlimit_failed(auth_limiter(0), j->peer, j->now, NULL);
		authlimit_failed(auth_limiter(1), j->ukey, j->now, NULL);
		log_warn("failed login for '%s' from %s", j->user, j->peer);
		http_reply_errmsg(req, 401, "wrong username or password");
		return false;
	}
	authlimit_succeeded(auth_limiter(0), j->peer);
	authlimit_succeeded(auth_limiter(1), j->ukey);

	unsigned char raw[32], sh[32];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(j->cookie, sizeof(j->cookie), raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	crypto_hash_sha256(sh, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	int64_t wall = (int64_t)clock_wall();
	j->age = auth_max_age(m);
	int r = db_session_add(m->db, sh, j->uid, j->user, wall, wall + j->age, NULL);
	sodium_memzero(sh, sizeof(sh));
	if (r < 0) {
		log_error("cannot store a session: %s (%s)", err_str(r), db_errmsg(m->db));
		http_reply_errmsg(req, 500, "cannot store the session");
		return false;
	}
	db_commit_then(m->db, auth_login_committed, j);
	return true;
}

static void auth_login_after(uv_work_t *w, int status)
{
	struct auth_login_job *j = w->data;
	/* NULL: the client left (or the master stops): nothing to answer, and
	 * the database may be closing */
	struct http_req *req = http_deferred_req(j->d);
	if (req && status == 0 && auth_login_finish(j, req))
		return;
	if (req && status != 0)
		http_reply_errmsg(req, 503, "the password check was cancelled");
	http_deferred_end(j->d);
	auth_login_job_free(j);
}

/* The user's hash read: the check goes to the thread pool. */
static void auth_login_found(void *arg, int r, const struct db_user_login *u, const char *err)
{
	struct auth_login_job *j = arg;
	struct http_req *req = http_deferred_req(j->d);
	if (!req) {
		http_deferred_end(j->d);
		auth_login_job_free(j);
		return;
	}
	struct master *m = j->m;
	/* An unknown username, or one without a usable hash, is checked
	 * against a dummy hash of the same kind so that it costs what a wrong
	 * password costs (docs/AUTH.md "Equal timing"). */
	char hash[512];
	if (r < 0) {
		log_error("cannot read user '%s' for a login: %s", j->user, err ? err : "");
		http_reply_errmsg(req, 500, "cannot read the user");
		http_deferred_end(j->d);
		auth_login_job_free(j);
		return;
	}
	if (r == 1) {
		j->uid = u->uid;
		snprintf(j->roles, sizeof(j->roles), "%s", u->roles);
		if (u->hash && *u->hash) {
			j->hash = xstrdup(u->hash);
			j->known = true;
		}
	} else {
		j->uid = 0;
		if (auth_htpasswd_find(m, j->user, hash, sizeof(hash)) == 1) {
			j->hash = xstrdup(hash);
			j->known = true;
		} else if (auth_htpasswd_find(m, NULL, hash, sizeof(hash)) == 1 &&
			   auth_login_users(m) == 0) {
			/* only htpasswd users: a hash of theirs (bcrypt, say) is
			 * the dummy of the same kind and cost */
			j->hash = xstrdup(hash);
		}
		sodium_memzero(hash, sizeof(hash));
	}
	j->work.data = j;
	if (uv_queue_work(m->loop, &j->work, auth_login_work, auth_login_after) < 0) {
		http_deferred_end(j->d); /* answers 500 */
		auth_login_job_free(j);
	}
}

static void auth_login(struct http_req *req)
{
	struct master *m = req->m;
	if (auth_login_inflight >= AUTH_LOGIN_INFLIGHT_MAX) {
		http_reply_errmsg(req, 503,
				  "too many logins being checked at once: try again in a second");
		http_reply_retry_after(req, 1);
		return;
	}
	struct auth_login_job *j = xcalloc(1, sizeof(*j));
	if (auth_login_params(req, j->user, sizeof(j->user), j->pass, sizeof(j->pass)) < 0) {
		auth_login_job_free(j);
		http_reply_errmsg(
			req, 400,
			"POST /auth/login takes 'username' and 'password' (JSON or a form; "
			"a username of at most 255 bytes, a password of at most 1024)");
		return;
	}
	http_req_peer(req, j->peer, sizeof(j->peer));
	snprintf(j->ukey, sizeof(j->ukey), "user:%s", j->user);
	j->now = clock_mono_ms();
	uint64_t wa = authlimit_check(auth_limiter(0), j->peer, j->now, NULL);
	uint64_t wu = authlimit_check(auth_limiter(1), j->ukey, j->now, NULL);
	uint64_t wait = wa > wu ? wa : wu;
	if (wait) {
		log_warn(
			"login for '%s' from %s refused: too many failed logins (retry in %llu ms)",
			j->user, j->peer, (unsigned long long)wait);
		auth_login_job_free(j);
		http_reply_errmsg(req, 429, "too many failed logins: try again later");
		http_reply_retry_after(req, (unsigned)((wait + 999) / 1000));
		return;
	}
	/* the hash is read on the loop (the database is the loop's), then
	 * checked on the thread pool */
	j->m = m;
	j->d = http_req_defer(req);
	j->counted = true;
	auth_login_inflight++;
	if (db_user_login_async(m->db, 0, j->user, auth_login_found, j) < 0) {
		log_error("cannot read user '%s' for a login: %s", j->user, db_errmsg(m->db));
		http_deferred_end(j->d); /* answers 500 */
		auth_login_job_free(j);
	}
}

static void auth_logout_reply(struct http_req *req, bool was)
{
	char sc[256];
	auth_set_cookie(NULL, 0, auth_secure(req->m), sc, sizeof(sc));
	auth_reply_json(req, 200, json_pack("{s:b}", "logged_out", was));
	http_reply_header(req, "set-cookie", sc);
}

/* The session's delete is committed (or not): the answer. */
static void auth_logout_committed(void *arg, int r, const char *err)
{
	struct http_deferred *d = arg;
	struct http_req *req = http_deferred_req(d);
	if (req && r < 0) {
		log_error("cannot delete a session: %s (%s)", err_str(r), err ? err : "");
		http_reply_errmsg(req, 500, "cannot end the session");
	} else if (req) {
		auth_logout_reply(req, true);
	}
	http_deferred_end(d);
}

static void auth_logout(struct http_req *req)
{
	struct master *m = req->m;
	struct auth_who who;
	char why[256];
	auth_identify(req, &who, why, sizeof(why));
	if (who.kind != AUTH_SESSION) {
		auth_logout_reply(req, false);
		return;
	}
	if (!auth_csrf_ok(req, &who)) {
		http_reply_errmsg(req, 403, "missing or wrong X-Kiln-CSRF header");
		return;
	}
	unsigned char sh[32];
	char cookie[AUTH_SESSION_TEXT_LEN + 1];
	bool have = auth_cookie_hash(req, cookie, sh);
	sodium_memzero(cookie, sizeof(cookie));
	auth_memo_forget(req, 0);
	char peer[64];
	http_req_peer(req, peer, sizeof(peer));
	log_info("logout for '%s' from %s", who.username, peer);
	if (!have || db_session_delete(m->db, sh) < 0) {
		auth_logout_reply(req, true);
		return;
	}
	sodium_memzero(sh, sizeof(sh));
	db_commit_then(m->db, auth_logout_committed, http_req_defer(req));
}

static void auth_me(struct http_req *req)
{
	struct auth_who who;
	char why[256];
	int r = auth_identify(req, &who, why, sizeof(why));
	if (r < 0) {
		http_reply_errmsg(req, r == -EPERM ? 403 : r == -EAGAIN ? 429 : 401, why);
		return;
	}
	auth_reply_json(req, 200, auth_me_doc(req->m, &who));
}

void auth_handle(struct http_req *req)
{
	const char *p = req->path + strlen("/auth");
	bool post = req->method == HTTP_POST;
	if (!strcmp(p, "/login") && post)
		auth_login(req);
	else if (!strcmp(p, "/logout") && post)
		auth_logout(req);
	else if (!strcmp(p, "/me") && (req->method == HTTP_GET || req->method == HTTP_HEAD))
		auth_me(req);
	else if (!strcmp(p, "/login") || !strcmp(p, "/logout") || !strcmp(p, "/me"))
		http_reply_errmsg(req, 405,
				  "method not allowed here: POST /auth/login, POST "
				  "/auth/logout, GET /auth/me");
	else
		http_reply_errmsg(req, 404, "no such page: /auth/login, /auth/logout, /auth/me");
}

/* A roles call waiting for the database. */
struct auth_roles_call {
	struct http_deferred *d;
	struct api_ctx ctx;
	char *cap[API_MAX_SEGS];
	json_t *rpcid;
	char roles[DB_ROLES_TEXT_MAX + 1];
	int64_t uid;
};

static void auth_roles_call_free(struct auth_roles_call *c)
{
	if (c->d)
		http_deferred_end(c->d);
	api_ctx_unhold(&c->ctx, c->cap);
	json_decref(c->rpcid);
	free(c);
}

static void auth_roles_set(void *arg, int r, int64_t id, const char *err)
{
	struct auth_roles_call *c = arg;
	(void)id;
	struct api_ctx *ctx = api_deferred_ctx(c->d, &c->ctx, r == KILN_ENOTFOUND ? 0 : r, err);
	if (ctx && r == KILN_ENOTFOUND) {
		api_rpc_reply_error(ctx, 404, c->rpcid, -32602, "no such user");
	} else if (ctx) {
		log_info("roles of user %lld set to '%s'", (long long)c->uid, c->roles);
		api_rpc_reply_result(ctx, c->rpcid, json_null());
	}
	auth_roles_call_free(c);
}

static void auth_roles_found(void *arg, int r, int64_t uid, const char *err)
{
	struct auth_roles_call *c = arg;
	struct api_ctx *ctx = api_deferred_ctx(c->d, &c->ctx, r, err);
	if (!ctx) {
		auth_roles_call_free(c);
		return;
	}
	if (r == 0) {
		api_rpc_reply_error(ctx, 404, c->rpcid, -32602, "no such user");
		auth_roles_call_free(c);
		return;
	}
	c->uid = uid;
	if ((r = db_user_set_roles_async(ctx->db, uid, c->roles, auth_roles_set, c)) < 0) {
		api_rpc_reply_error(ctx, 500, c->rpcid, -32603, db_errmsg(ctx->db));
		auth_roles_call_free(c);
	}
}

void auth_user_roles_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	const char *roles = json_string_value(json_object_get(rpc->params, "roles"));
	unsigned bits = 0;
	if (!roles || config_roles_parse_list(roles, &bits) < 0 ||
	    strlen(roles) > DB_ROLES_TEXT_MAX) {
		api_rpc_reply_error(ctx, 400, rpc->id, -32602,
				    "'roles' must be a comma list of admin, force, stop, cancel, "
				    "view (\"\" for none)");
		return;
	}
	long long uid = 0;
	if (str_to_i64(ctx->cap[0], &uid) < 0)
		uid = 0;
	struct auth_roles_call *c = xcalloc(1, sizeof(*c));
	api_ctx_hold(&c->ctx, c->cap, ctx);
	c->rpcid = json_incref(rpc->id);
	snprintf(c->roles, sizeof(c->roles), "%s", roles);
	c->d = http_req_defer(ctx->req);
	int r = db_user_find_async(ctx->db, uid > 0 ? uid : 0, uid > 0 ? NULL : ctx->cap[0], false,
				   auth_roles_found, c);
	if (r < 0) {
		api_rpc_reply_error(ctx, 500, rpc->id, -32603, db_errmsg(ctx->db));
		auth_roles_call_free(c);
	}
}

bool auth_admin_session(struct http_req *req)
{
	struct auth_who who;
	char why[256];
	if (auth_identify(req, &who, why, sizeof(why)) < 0 || who.kind != AUTH_SESSION)
		return false;
	if (req->method == HTTP_POST && !auth_csrf_ok(req, &who))
		return false;
	return (auth_roles_full(req->m, &who) & CONFIG_ROLE_ADMIN) != 0;
}
