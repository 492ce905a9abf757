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
	char text[DB_TOKEN_TEXT_LEN + 1];
	unsigned char hash[DB_TOKEN_HASH_BYTES];
	db_token_generate(text, hash);
	int64_t now = (int64_t)clock_wall(), id = 0;
	int64_t expires = days ? now + (int64_t)days * 86400 : 0;
	int r = db_token_add(ctx->db, (int64_t)uid, name, hash, bits, now, expires, &id);
	if (r >= 0)
		r = db_flush(ctx->db); /* the answer hands out a stored token */
	if (r < 0) {
		sodium_memzero(text, sizeof(text));
		int status = r == -EINVAL          ? 400
			     : r == KILN_ENOTFOUND ? 404
			     : r == -ENOSPC        ? 409
						   : 500;
		if (status == 500)
			log_warn("tokens: %s", db_errmsg(ctx->db));
		api_rpc_reply_error(ctx, status, rpc->id, status == 500 ? -32603 : -32602,
				    status == 500 ? err_str(r) : db_errmsg(ctx->db));
		return;
	}
	char sc[128];
	db_token_scopes_format(bits, sc, sizeof(sc));
	log_info("API token %" PRId64 " '%s' added (scopes %s%s)", id, name, sc,
		 expires ? ", expires" : "");
	api_rpc_reply_result(ctx, rpc->id,
			     json_pack("{s:I,s:s,s:s,s:s,s:o}", "tokenid", (json_int_t)id, "token",
				       text, "name", name, "scopes", sc, "expires_at",
				       api_token_time(expires)));
	sodium_memzero(text, sizeof(text));
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
	int r = db_token_revoke(ctx->db, id, (int64_t)clock_wall());
	int was = r;
	if (r >= 0)
		r = db_flush(ctx->db); /* revoked once the answer says so */
	if (r == KILN_ENOTFOUND) {
		api_rpc_reply_error(ctx, 404, rpc->id, -32602, "no such token");
		return;
	}
	if (r < 0) {
		log_warn("tokens: %s", db_errmsg(ctx->db));
		api_rpc_reply_error(ctx, 500, rpc->id, -32603, err_str(r));
		return;
	}
	if (was == 1)
		log_info("API token %lld revoked", id);
	api_rpc_reply_result(
		ctx, rpc->id,
		json_pack("{s:I,s:b}", "tokenid", (json_int_t)id, "already", was == 0));
}
