/*
 * Web login, sessions, CSRF and roles (slice "weblogin"; docs/AUTH.md):
 * /auth/login, /auth/logout and /auth/me, and the gates every control call
 * (JSON-RPC under /api/v2, the sendchange hooks) and, with anonymous_read
 * off, every read passes.  Everything here runs on the loop thread but a
 * login's password check (thread pool, its answer deferred: slice "authhard").
 */
#ifndef KILN_MASTER_AUTH_H
#define KILN_MASTER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_req;
struct master;
struct api_ctx;
struct api_rpc;
struct db_token;

#define AUTH_COOKIE "kiln_session"
#define AUTH_CSRF_HEADER "x-kiln-csrf"
#define AUTH_SESSION_TEXT_LEN 43    /* 32 bytes, unpadded base64url */
#define AUTH_PASSWORD_MAX 1024      /* bytes of a password a login may carry */
#define AUTH_HTPASSWD_MAX (1 << 20) /* bytes of the htpasswd file read */
#define AUTH_LOGIN_FIRST_MS 5000    /* first refusal window after the free failed logins */
/* Password checks on the thread pool at once; past it a login is 503 with
 * Retry-After: 1 (slice "authhard") */
#define AUTH_LOGIN_INFLIGHT_MAX 4

/* /auth/login, /auth/logout, /auth/me (http.c's route table). */
void auth_handle(struct http_req *req);

/* The JSON-RPC gate (api.c): 0 to go on, -1 after answering 401/403.
 * route is the matched pattern ("builds/#", ...). */
int auth_rpc_gate(struct api_ctx *ctx, struct api_rpc *rpc, const char *route);
/* JSON-RPC "roles" on /users/ID, {"roles": "force,stop"} (admin): sets
 * users.roles ("" removes them). */
void auth_user_roles_rpc(struct api_ctx *ctx, struct api_rpc *rpc);
/* The read gate for GETs under /api/v2 (and /ws): 0 to go on, else the
 * status to refuse with (401), the reason in why. */
int auth_read_check(struct http_req *req, char *why, size_t whylen);
/* Whether a request without any credentials may make control calls now:
 * auth.anonymous_control when set, else true only while master.lua has no
 * auth = { } and no user can log in. */
bool auth_anonymous_control(struct master *m);
/* A change hook with no shared token (changes/hook.c): 0 when the
 * request may go on, else answers 401 and returns -1. */
int auth_hook_open(struct http_req *req);

/* Is the request a session (with its X-Kiln-CSRF on a POST) of a user
 * with the admin role?  (api-tokens.c: an administrator's session manages
 * tokens like an admin token.) */
bool auth_admin_session(struct http_req *req);

/* Pure helpers (tests/unit/test-session.c). */
/* The CSRF token of a session cookie value: base64url of
 * SHA-256("kiln-csrf:" + cookie), AUTH_SESSION_TEXT_LEN + 1 bytes. */
void auth_csrf_of(const char *cookie, char out[AUTH_SESSION_TEXT_LEN + 1]);
/* The kiln_session value of a Cookie header into out: 0, or -1. */
int auth_cookie_value(const char *header, char *out, size_t n);
/* The Set-Cookie value for a session (value NULL: the expiring one). */
void auth_set_cookie(const char *value, long long max_age, bool secure, char *out, size_t n);
/* Whether one line "name:hash" of an htpasswd file holds user's entry: its
 * hash into hash (n bytes) and 1, else 0. */
int auth_htpasswd_line(const char *line, size_t len, const char *user, char *hash, size_t n);
/* Verifies password against a stored hash: "$argon2id$" (libsodium) or a
 * bcrypt "$2y$"/"$2b$"/"$2a$" (crypt(3), libxcrypt), compared in constant
 * time.  1 when it matches, 0 when not or the format is unknown. */
int auth_password_ok(const char *hash, const char *password);

/* ---- the gate's reads before the handler (issue 14) ---- */
/* What the gate learnt of a request's credentials (auth_prepare); the
 * request owns it (http.c frees it with the request). */
struct auth_known;
void auth_known_free(struct auth_known *k);
/*
 * Before a request's handler: if it carries credentials the database
 * checks (an API token, a session cookie), defers it, checks them on the
 * loop (the token, the session, its user's roles, and for a POST to
 * builds/N or buildrequests/N that object's builder) and dispatches it
 * again (http_deferred_redispatch) with req->auth set: true.  false: the
 * handler may run now (req->auth set, or nothing to learn).  The gates
 * below then read what it learnt and nothing else.
 */
bool auth_prepare(struct http_req *req);
/* apitoken_check's answer for need from what auth_prepare learnt:
 * -ENOENT when it learnt nothing (no prepare ran). */
int auth_known_token(const struct http_req *req, unsigned need, struct db_token *ret, char *why,
		     size_t whylen);
/* Forgets what /ws upgrades remember of user uid's credentials (a
 * password or username changed, the user removed), or of every
 * credential (uid 0: a token revoked). */
void auth_forget_user(int64_t uid);

#endif
