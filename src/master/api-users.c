/*
 * /api/v2/users (slice "users"): user objects, listed through db_list like
 * every collection (paging, filters, order, fields), by uid or identifier;
 * the authors of a change (/changes/N/users) and a build's blamelist users
 * (/builds/N/users); JSON-RPC "add" on /users and "update" and "remove" on
 * /users/ID for `kiln user`.  Buildbot 3.7 has no users endpoint: this is
 * Kiln's, in Buildbot's conventions (docs/API.md "Users").  Passwords
 * arrive as argon2id hash strings made by the client (the master's loop
 * never runs argon2) and no answer ever holds one.
 */
#define LOG_SUBSYS "api"

#include "master/api-int.h"
#include "master/auth.h"
#include "master/master.h"

#include "common/err.h"
#include "common/log.h"
#include "master/http.h"
#include "common/xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_users_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_USERS, "users", false, NULL, NULL);
}

void api_user_get(struct api_ctx *ctx)
{
	const char *f[] = {api_is_num(ctx->cap[0]) ? "uid" : "identifier", ctx->cap[0], NULL};
	api_list(ctx, DB_USERS, "users", true, NULL, f);
}

void api_change_users_get(struct api_ctx *ctx)
{
	const char *f[] = {"changeid", ctx->cap[0], NULL};
	api_list(ctx, DB_USERS, "users", false, NULL, f);
}

void api_build_users_get(struct api_ctx *ctx)
{
	const char *f[] = {"buildid", ctx->cap[0], NULL};
	api_list(ctx, DB_USERS, "users", false, NULL, f);
}

/* ---- JSON-RPC ------------------------------------------------------------------------ */

static void api_users_bad(struct api_ctx *ctx, json_t *id, const char *fmt, const char *arg)
{
	char *msg = xasprintf(fmt, arg);
	api_rpc_reply_error(ctx, 400, id, -32602, msg);
	free(msg);
}

/* An argon2id hash at least as costly as libsodium's "interactive" limits,
 * which `kiln user` uses: a cheaper one would make a stolen database easy
 * to crack.  Only the parameters are read; the master never hashes. */
static bool api_users_hash_ok(const char *h)
{
	unsigned long m = 0, t = 0, p = 0;
	int used = 0;
	if (sscanf(h, "$argon2id$v=19$m=%lu,t=%lu,p=%lu$%n", &m, &t, &p, &used) != 3 || !used)
		return false;
	return m * 1024 >= crypto_pwhash_MEMLIMIT_INTERACTIVE &&
	       t >= crypto_pwhash_OPSLIMIT_INTERACTIVE && p >= 1;
}

/* Reads the params of add / update into *u (strings borrowed from params;
 * info[] sized DB_USER_INFO_MAX).  Answers a 400 itself and returns false
 * on anything it does not understand, so a typo never passes silently. */
static bool api_users_params(struct api_ctx *ctx, struct api_rpc *rpc, bool adding,
			     struct db_user_set *u, struct db_user_info *info)
{
	const char *key;
	json_t *v;
	*u = (struct db_user_set){.info = info};
	json_object_foreach(rpc->params, key, v)
	{
		if (!strcmp(key, "identities")) {
			if (!json_is_array(v)) {
				api_users_bad(ctx, rpc->id, "'%s' must be a list", key);
				return false;
			}
			if (json_array_size(v) > DB_USER_INFO_MAX) {
				char n[16];
				snprintf(n, sizeof(n), "%d", DB_USER_INFO_MAX);
				api_users_bad(ctx, rpc->id, "more than %s identities", n);
				return false;
			}
			size_t i;
			json_t *e;
			json_array_foreach(v, i, e)
			{
				const char *t = json_string_value(json_object_get(e, "attr_type"));
				const char *d = json_string_value(json_object_get(e, "attr_data"));
				if (!t || !d || json_object_size(e) != 2) {
					api_users_bad(ctx, rpc->id, "%s",
						      "each identity must be {\"attr_type\": "
						      "string, \"attr_data\": string}");
					return false;
				}
				info[u->ninfo++] = (struct db_user_info){t, d};
			}
			continue;
		}
		const char **dst = !strcmp(key, "identifier")      ? &u->identifier
				   : !strcmp(key, "username")      ? &u->bb_username
				   : !strcmp(key, "password_hash") ? &u->bb_password
								   : NULL;
		if (!strcmp(key, "password")) {
			api_users_bad(ctx, rpc->id, "%s",
				      "'password' is not accepted: send 'password_hash', an "
				      "argon2id hash (crypto_pwhash_str; `kiln user` makes it)");
			return false;
		}
		if (!dst) {
			api_users_bad(ctx, rpc->id, "unknown parameter '%s'", key);
			return false;
		}
		if (json_is_null(v) && !adding) {
			*dst = ""; /* null clears, as "" does */
			continue;
		}
		if (!json_is_string(v)) {
			api_users_bad(ctx, rpc->id, "'%s' must be a string", key);
			return false;
		}
		*dst = json_string_value(v);
	}
	if (u->bb_password && *u->bb_password && !api_users_hash_ok(u->bb_password)) {
		api_users_bad(ctx, rpc->id, "%s",
			      "'password_hash' must be an argon2id hash string "
			      "($argon2id$v=19$m=...,t=...,p=...$...) at least as costly as "
			      "libsodium's interactive limits");
		return false;
	}
	return true;
}

/* Answers a failed db call: 400 bad value, 409 taken, 404 no such user. */
static void api_users_db_error(struct api_ctx *ctx, json_t *id, int r, const char *msg)
{
	if (r == -EINVAL)
		api_rpc_reply_error(ctx, 400, id, -32602, msg);
	else if (r == -EEXIST)
		api_rpc_reply_error(ctx, 409, id, -32602, msg);
	else if (r == KILN_ENOTFOUND)
		api_rpc_reply_error(ctx, 404, id, -32602, "no such user");
	else {
		log_warn("users: %s", msg ? msg : err_str(r));
		api_rpc_reply_error(ctx, 500, id, -32603, err_str(r));
	}
}

/* A users call waiting for the database (issue 14: its answer comes once
 * the write is committed). */
struct api_users_call {
	struct http_deferred *d;
	struct api_ctx ctx;
	char *cap[API_MAX_SEGS];
	json_t *rpcid;
	enum { API_USERS_ADD, API_USERS_UPDATE, API_USERS_REMOVE } op;
	struct db_user_info info[DB_USER_INFO_MAX];
	struct db_user_set u; /* borrowed from params */
	json_t *params;
	char identifier[DB_USER_TEXT_MAX + 1];
	bool end_sessions;
};

static void api_users_call_free(struct api_users_call *c)
{
	if (c->d)
		http_deferred_end(c->d);
	api_ctx_unhold(&c->ctx, c->cap);
	json_decref(c->rpcid);
	json_decref(c->params);
	free(c);
}

static struct api_users_call *api_users_call_new(struct api_ctx *ctx, struct api_rpc *rpc)
{
	struct api_users_call *c = xcalloc(1, sizeof(*c));
	api_ctx_hold(&c->ctx, c->cap, ctx);
	c->rpcid = json_incref(rpc->id);
	c->params = json_incref(rpc->params);
	return c;
}

/* The write answered (after its commit). */
static void api_users_written(void *arg, int r, int64_t id, const char *err)
{
	struct api_users_call *c = arg;
	struct http_req *req = http_deferred_req(c->d);
	c->ctx.req = req;
	if (!req) {
		api_users_call_free(c);
		return;
	}
	struct api_ctx *ctx = &c->ctx;
	if (r < 0) {
		api_users_db_error(ctx, c->rpcid, r, err);
	} else if (c->op == API_USERS_ADD) {
		log_info("user %" PRId64 " '%s' added", id, c->identifier);
		api_rpc_reply_result(ctx, c->rpcid, json_pack("{s:I}", "uid", (json_int_t)id));
	} else {
		if (c->op == API_USERS_UPDATE && id > 0)
			log_info("user %s: password or username changed, %" PRId64
				 " session(s) ended",
				 c->identifier, id);
		log_info("user %s %s", c->identifier,
			 c->op == API_USERS_UPDATE ? "updated" : "removed");
		api_rpc_reply_result(ctx, c->rpcid, json_null());
	}
	api_users_call_free(c);
}

/* POST /users {"method": "add", "params": {"identifier": ..., ...}} */
void api_users_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	if (strcmp(rpc->method, "add")) {
		char *msg = xasprintf("action: %s is not supported", rpc->method);
		api_rpc_reply_error(ctx, 501, rpc->id, -32601, msg);
		free(msg);
		return;
	}
	struct api_users_call *c = api_users_call_new(ctx, rpc);
	if (!api_users_params(ctx, rpc, true, &c->u, c->info)) {
		api_users_call_free(c);
		return;
	}
	c->op = API_USERS_ADD;
	snprintf(c->identifier, sizeof(c->identifier), "%s", c->u.identifier);
	c->d = http_req_defer(ctx->req);
	int r = db_user_add_async(ctx->db, &c->u, api_users_written, c);
	if (r < 0) {
		api_users_db_error(ctx, rpc->id, r, db_errmsg(ctx->db));
		api_users_call_free(c);
	}
}

/* The user named by its identifier found: the update or remove. */
static void api_user_found(void *arg, int r, int64_t uid, const char *err)
{
	struct api_users_call *c = arg;
	struct api_ctx *ctx = api_deferred_ctx(c->d, &c->ctx, r, err);
	if (!ctx) {
		api_users_call_free(c);
		return;
	}
	if (r == 0) {
		api_rpc_reply_error(ctx, 404, c->rpcid, -32602, "no such user");
		api_users_call_free(c);
		return;
	}
	snprintf(c->identifier, sizeof(c->identifier), "%" PRId64, uid);
	if (c->op == API_USERS_UPDATE) {
		r = db_user_update_async(ctx->db, uid, &c->u, c->end_sessions, api_users_written,
					 c);
		/* what /ws upgrades remember of the user's sessions goes too */
		if (c->end_sessions)
			auth_forget_user(uid);
	} else {
		r = db_user_remove_async(ctx->db, uid, api_users_written, c);
		auth_forget_user(uid);
	}
	if (r < 0) {
		api_users_db_error(ctx, c->rpcid, r, db_errmsg(ctx->db));
		api_users_call_free(c);
	}
}

/* POST /users/ID {"method": "update" | "remove", "params": {...}} */
void api_user_rpc(struct api_ctx *ctx, struct api_rpc *rpc)
{
	bool update = !strcmp(rpc->method, "update");
	if (!update && strcmp(rpc->method, "remove")) {
		char *msg = xasprintf("action: %s is not supported", rpc->method);
		api_rpc_reply_error(ctx, 501, rpc->id, -32601, msg);
		free(msg);
		return;
	}
	struct api_users_call *c = api_users_call_new(ctx, rpc);
	if (update) {
		if (!api_users_params(ctx, rpc, false, &c->u, c->info)) {
			api_users_call_free(c);
			return;
		}
		/* a new password (or username) ends the user's sessions (docs/AUTH.md) */
		c->end_sessions = c->u.bb_password || c->u.bb_username;
		c->op = API_USERS_UPDATE;
	} else {
		if (json_object_size(rpc->params)) {
			api_users_bad(ctx, rpc->id, "%s", "remove takes no parameters");
			api_users_call_free(c);
			return;
		}
		c->op = API_USERS_REMOVE;
	}
	long long v = api_is_num(ctx->cap[0]) ? strtoll(ctx->cap[0], NULL, 10) : 0;
	c->d = http_req_defer(ctx->req);
	int r = db_user_find_async(ctx->db, v, api_is_num(ctx->cap[0]) ? NULL : ctx->cap[0], false,
				   api_user_found, c);
	if (r < 0) {
		api_users_db_error(ctx, rpc->id, r, db_errmsg(ctx->db));
		api_users_call_free(c);
	}
}
