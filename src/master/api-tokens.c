/*
 * /api/v2/tokens (slice "tokens", a Kiln extension; docs/API.md "API
 * tokens"): GET lists the tokens without their hashes, JSON-RPC "add" on
 * /tokens makes one (the only answer that ever holds a token's text) and
 * "revoke" on /tokens/ID revokes one.  Managing tokens needs an admin
 * token or, while none is presented, the shared change_hook token when
 * master.lua sets one (so a token can never open a door that the shared
 * token closes); without a change_hook token it is open, like the other
 * control calls until logins land (docs/SECURITY.md "Known gaps").
 */
#define LOG_SUBSYS "api"

#include "master/apitoken.h"
#include "master/auth.h" /* slice "weblogin" */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "master/api-int.h"
#include "master/master.h"

#define TOKENS_MAX_DAYS 3650 /* --expires: at most ten years */

/* 0 if the caller may manage tokens; else answers (rpc id, or a plain
 * error when id is NULL and this is a GET) and returns -1. */
static int api_tokens_allowed(struct api_ctx *ctx, json_t *id, bool rpc)
{
	char why[256];
	int r = apitoken_check(ctx->req, DB_SCOPE_ADMIN, NULL, why, sizeof(why));
	if (r == 1)
		return 0;
	const char *hook = ctx->m->cfg ? ctx->m->cfg->change_hook.token : NULL;
	int status = r == -EPERM ? 403 : 401;
	if (r == 0) {
		if (!hook || apitoken_bearer_is(ctx->req, hook) ||
		    auth_admin_session(ctx->req)) /* slice "weblogin" */
			return 0;
		snprintf(why, sizeof(why),
			 "managing API tokens needs an admin token or the change_hook token "
			 "(Authorization: Bearer ...)");
	}
	if (rpc)
		api_rpc_reply_error(ctx, status, id, -32001, why);
	else
		api_reply_error(ctx, status, why);
	return -1;
}

static json_t *api_token_time(int64_t t)
{
	return t ? json_integer(t) : json_null();
}

static json_t *api_token_json(const struct db_token *t)
{
	char sc[128];
	db_token_scopes_format(t->scopes, sc, sizeof(sc));
	json_t *scopes = json_array();
	for (char *p = sc, *save = NULL, *s; (s = strtok_r(p, ",", &save)); p = NULL)
		json_array_append_new(scopes, json_string(s));
	return json_pack(
		"{s:I,s:o,s:s,s:o,s:I,s:o,s:o,s:o,s:b}", "tokenid", (json_int_t)t->id, "uid",
		t->uid ? json_integer(t->uid) : json_null(), "name", t->name, "scopes", scopes,
		"created_at", (json_int_t)t->created_at, "last_used_at",
		api_token_time(t->last_used_at), "revoked_at", api_token_time(t->revoked_at),
		"expires_at", api_token_time(t->expires_at), "active",
		!t->revoked_at && (!t->expires_at || t->expires_at > (int64_t)clock_wall()));
}

struct api_tokens_wait {
	struct http_deferred *d;
	struct api_ctx ctx; /* without path segments: none are read after the wait */
};

static void api_tokens_listed(void *arg, int r, const struct db_token *v, size_t n, const char *err)
{
	struct api_tokens_wait *w = arg;
	struct api_ctx *ctx = api_deferred_ctx(w->d, &w->ctx, r, err);
	if (ctx) {
		json_t *list = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, api_token_json(&v[i]));
		api_reply_json(
			ctx, 200,
			json_pack("{s:o,s:{s:I}}", "tokens", list, "meta", "total", (json_int_t)n));
	}
	http_deferred_end(w->d);
	free(w);
}

void api_tokens_get(struct api_ctx *ctx)
{
	if (api_tokens_allowed(ctx, NULL, false) < 0)
		return;
	struct api_tokens_wait *w = xcalloc(1, sizeof(*w));
	w->ctx = *ctx;
	w->ctx.ncap = 0;
	int r = db_token_list_async(ctx->db, api_tokens_listed, w);
	if (r < 0) {
		api_reply_db_error(ctx, r);
		free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}

static void api_tokens_bad(struct api_ctx *ctx, json_t *id, const char *msg)
{
	api_rpc_reply_error(ctx, 400, id, -32602, msg);
}

/* A token's add or revoke waiting for the database (issue 14: answered
 * once the write is committed). */
struct api_tokens_call {
	struct http_deferred *d;
	struct api_ctx ctx;
	char *cap[API_MAX_SEGS];
	json_t *rpcid;
	char text[DB_TOKEN_TEXT_LEN + 1]; /* the new token, shown once */
	char name[DB_TOKEN_NAME_MAX + 1];
	unsigned bits;
	int64_t expires;
};

static struct api_tokens_call *api_tokens_call_new(struct api_ctx *ctx, struct api_rpc *rpc)
{
	struct api_tokens_call *c = xcalloc(1, sizeof(*c));
	api_ctx_hold(&c->ctx, c->cap, ctx);
	c->rpcid = json_incref(rpc->id);
	return c;
}

static void api_tokens_call_free(struct api_tokens_call *c)
{
	if (c->d)
		http_deferred_end(c->d);
	api_ctx_unhold(&c->ctx, c->cap);
	json_decref(c->rpcid);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

static void api_tokens_added(void *arg, int r, int64_t id, const char *err)
{
	struct api_tokens_call *c = arg;
	struct http_req *req = http_deferred_req(c->d);
	c->ctx.req = req;
	struct api_ctx *ctx = &c->ctx;
	if (!req) {
		/* the client went: the token stays stored, shown to nobody */
	} else if (r < 0) {
		int status = r == -EINVAL          ? 400
			     : r == KILN_ENOTFOUND ? 404
			     : r == -ENOSPC        ? 409
						   : 500;
		if (status == 500)
			log_warn("tokens: %s", err ? err : err_str(r));
		api_rpc_reply_error(ctx, status, c->rpcid, status == 500 ? -32603 : -32602,
				    status == 500 ? err_str(r) : err);
	} else {
		char sc[128];
		db_token_scopes_format(c->bits, sc, sizeof(sc));
		log_info("API token %" PRId64 " '%s' added (scopes %s%s)", id, c->name, sc,
			 c->expires ? ", expires" : "");
		api_rpc_reply_result(ctx, c->rpcid,
				     json_pack("{s:I,s:s,s:s,s:s,s:o}", "tokenid", (json_int_t)id,
					       "token", c->text, "name", c->name, "scopes", sc,
					       "expires_at", api_token_time(c->expires)));
	}
	api_tokens_call_free(c);
}

static void api_token_revoked(void *arg, int r, int64_t id, const char *err)
{
	struct api_tokens_call *c = arg;
	struct http_req *req = http_deferred_req(c->d);
	c->ctx.req = req;
	struct api_ctx *ctx = &c->ctx;
	if (!req) {
		/* gone: nothing to answer */
	} else if (r == KILN_ENOTFOUND) {
		api_rpc_reply_error(ctx, 404, c->rpcid, -32602, "no such token");
	} else if (r < 0) {
		log_warn("tokens: %s", err ? err : err_str(r));
		api_rpc_reply_error(ctx, 500, c->rpcid, -32603, err_str(r));
	} else {
		if (r == 1)
			log_info("API token %" PRId64 " revoked", id);
		api_rpc_reply_result(
			ctx, c->rpcid,
			json_pack("{s:I,s:b}", "tokenid", (json_int_t)id, "already", r == 0));
	}
	api_tokens_call_free(c);
}

/* POST /tokens {"method": "add", "params": {"name": N, "scopes": "force,...",
 * "uid": U, "expires_days": D}} -> {"tokenid", "token", ...} */
void api_tokens_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	if (strcmp(rpc->method, "add")) {
		char *msg = xasprintf("action: %s is not supported", rpc->method);
		api_rpc_reply_error(ctx, 501, rpc->id, -32601, msg);
		free(msg);
		return;
	}
	if (api_tokens_allowed(ctx, rpc->id, true) < 0)
		return;
	const char *name = NULL, *scopes = NULL, *key;
	json_int_t uid = 0, days = 0;
	json_t *v;
	json_object_foreach(rpc->params, key, v)
	{
		if (!strcmp(key, "name") && json_is_string(v))
			name = json_string_value(v);
		else if (!strcmp(key, "scopes") && json_is_string(v))
			scopes = json_string_value(v);
		else if (!strcmp(key, "uid") && (json_is_integer(v) || json_is_null(v)))
			uid = json_is_null(v) ? 0 : json_integer_value(v);
		else if (!strcmp(key, "expires_days") && (json_is_integer(v) || json_is_null(v)))
			days = json_is_null(v) ? 0 : json_integer_value(v);
		else {
			char *msg = xasprintf("unknown parameter '%.64s' or wrong type (name: "
					      "string, scopes: string, uid: integer, "
					      "expires_days: integer)",
					      key);
			api_tokens_bad(ctx, rpc->id, msg);
			free(msg);
			return;
		}
	}
	if (!name || !scopes) {
		api_tokens_bad(ctx, rpc->id, "'name' and 'scopes' are required");
		return;
	}
	if (uid < 0) {
		api_tokens_bad(ctx, rpc->id, "'uid' must be a user id");
		return;
	}
	if (days < 0 || days > TOKENS_MAX_DAYS) {
		api_tokens_bad(ctx, rpc->id, "'expires_days' must be 1 to 3650 (0 or null: never)");
		return;
	}
	unsigned bits = 0;
	const char *bad = NULL;
	if (db_token_scopes_parse(scopes, &bits, &bad) < 0) {
		int blen = bad ? (int)strcspn(bad, ",") : 0;
		char *msg =
			bad ? xasprintf("unknown scope '%.*s' (force, stop, cancel, sendchange, "
					"try, push, admin, view)",
					blen > 64 ? 64 : blen, bad)
			    : xstrdup("'scopes' is empty");
		api_tokens_bad(ctx, rpc->id, msg);
		free(msg);
		return;
	}
	if (sodium_init() < 0) {
		api_rpc_reply_error(ctx, 500, rpc->id, -32603, "cannot initialise libsodium");
		return;
	}
	struct api_tokens_call *c = api_tokens_call_new(ctx, rpc);
	unsigned char hash[DB_TOKEN_HASH_BYTES];
	db_token_generate(c->text, hash);
	int64_t now = (int64_t)clock_wall();
	c->expires = days ? now + (int64_t)days * 86400 : 0;
	c->bits = bits;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->d = http_req_defer(ctx->req);
	int r = db_token_add_async(ctx->db, (int64_t)uid, name, hash, bits, now, c->expires,
				   api_tokens_added, c);
	sodium_memzero(hash, sizeof(hash));
	if (r < 0) {
		api_tokens_added(c, r, 0, db_errmsg(ctx->db));
		return;
	}
}

/* POST /tokens/ID {"method": "revoke"} */
void api_token_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	if (strcmp(rpc->method, "revoke")) {
		char *msg = xasprintf("action: %s is not supported", rpc->method);
		api_rpc_reply_error(ctx, 501, rpc->id, -32601, msg);
		free(msg);
		return;
	}
	if (api_tokens_allowed(ctx, rpc->id, true) < 0)
		return;
	long long id = strtoll(ctx->cap[0], NULL, 10);
	struct api_tokens_call *c = api_tokens_call_new(ctx, rpc);
	c->d = http_req_defer(ctx->req);
	/* what /ws upgrades remember of tokens goes (it cannot tell which) */
	auth_forget_user(0);
	int r = db_token_revoke_async(ctx->db, id, (int64_t)clock_wall(), api_token_revoked, c);
	if (r < 0)
		api_token_revoked(c, r, id, db_errmsg(ctx->db));
}
