/*
 * API tokens at the master's doors (slice "tokens", docs/AUTH.md): the
 * check of an "Authorization: Bearer kiln_..." header that the change
 * hooks and the API's control calls use, and /api/v2/tokens (api-tokens.c).
 */
#ifndef KILN_MASTER_APITOKEN_H
#define KILN_MASTER_APITOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include "db/db.h"

struct http_req;
struct api_ctx;
struct api_rpc;

/*
 * The request's API token, if it presents one ("Authorization: Bearer
 * kiln_..."): 0 when it presents none (no header, another scheme, or a
 * bearer value that is not a Kiln token, such as the shared change_hook
 * token); 1 when it is valid and holds every scope of need (*ret, may be
 * NULL, filled); KILN_EAUTH (answer 401: unknown, revoked, expired) or
 * -EPERM (403: a scope missing), with the reason in why (never the token).
 * Refusals are logged with the client's address.  Unknown (and
 * malformed) tokens count per address (authlimit AUTHLIMIT_TOKENS, slice
 * "authhard"); while the address's window is open the token is not looked
 * at: -EAGAIN, and the request is throttled (http_req_throttle: its 401 or
 * 403 answer goes out as 429 with Retry-After).
 */
int apitoken_check(const struct http_req *req, unsigned need, struct db_token *ret, char *why,
		   size_t whylen);
/* The same in two halves around an asynchronous db_token_verify_async
 * (auth.c's gate, issue 14): apitoken_begin puts the bearer token into
 * tok (n bytes: APITOKEN_MAX_HEADER) and returns 1, or 0 when there is
 * none, or the refusal apitoken_check would return (the address backing
 * off: -EAGAIN); apitoken_end takes the verification's r and err and
 * returns what apitoken_check would (1, or the refusal, logged). */
#define APITOKEN_MAX_HEADER 1024
int apitoken_begin(const struct http_req *req, char *tok, size_t n, char *why, size_t whylen);
int apitoken_end(const struct http_req *req, int r, const char *err, char *why, size_t whylen);

/* Is the request's bearer value equal to secret (constant time)? */
bool apitoken_bearer_is(const struct http_req *req, const char *secret);

/* The scope a JSON-RPC method on the API needs (force, stop, ...; admin
 * for anything it does not know). */
unsigned apitoken_method_scope(const char *method);

/* The API's JSON-RPC gate is auth_rpc_gate() (auth.h, slice "weblogin"):
 * tokens, sessions and roles together. */

/* /api/v2/tokens (api-tokens.c) */
void api_tokens_get(struct api_ctx *ctx);
void api_tokens_rpc(struct api_ctx *ctx, struct api_rpc *rpc); /* "add" */
void api_token_rpc(struct api_ctx *ctx, struct api_rpc *rpc);  /* "revoke" */

#endif
