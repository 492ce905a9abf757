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
#include "master/master.h"

#include "common/err.h"
#include "common/log.h"
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
static void api_users_db_error(struct api_ctx *ctx, json_t *id, int r)
{
	const char *msg = db_errmsg(ctx->db);
	if (r == -EINVAL)
		api_rpc_reply_error(ctx, 400, id, -32602, msg);
	else if (r == -EEXIST)
		api_rpc_reply_error(ctx, 409, id, -32602, msg);
	else if (r == KILN_ENOTFOUND)
		api_rpc_reply_error(ctx, 404, id, -32602, "no such user");
	else {
		log_warn("users: %s", msg);
		api_rpc_reply_error(ctx, 500, id, -32603, err_str(r));
	}
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
	struct db_user_info info[DB_USER_INFO_MAX];
	struct db_user_set u;
	if (!api_users_params(ctx, rpc, true, &u, info))
		return;
	int64_t uid = 0;
	int r = db_user_add(ctx->db, &u, &uid);
	if (r >= 0)
		r = db_flush(ctx->db); /* the answer acknowledges a stored user */
	if (r < 0) {
		api_users_db_error(ctx, rpc->id, r);
		return;
	}
	log_info("user %" PRId64 " '%s' added", uid, u.identifier);
	api_rpc_reply_result(ctx, rpc->id, json_pack("{s:I}", "uid", (json_int_t)uid));
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
	int64_t uid = 0;
	int r;
	if (api_is_num(ctx->cap[0])) {
		long long v = strtoll(ctx->cap[0], NULL, 10);
		uid = v;
		r = v > 0;
	} else {
		r = db_user_by_identifier(ctx->db, ctx->cap[0], &uid);
	}
	if (r < 0) {
		api_users_db_error(ctx, rpc->id, r);
		return;
	}
	if (r == 0) {
		api_rpc_reply_error(ctx, 404, rpc->id, -32602, "no such user");
		return;
	}
	struct db_user_info info[DB_USER_INFO_MAX];
	struct db_user_set u;
	if (update) {
		if (!api_users_params(ctx, rpc, false, &u, info))
			return;
		r = db_user_update(ctx->db, uid, &u);
		/* a new password (or username) ends the user's sessions (docs/AUTH.md) */
		if (r >= 0 && (u.bb_password || u.bb_username)) {
			r = db_sessions_delete_user(ctx->db, uid);
			if (r > 0)
				log_info("user %" PRId64
					 ": password or username changed, %d session(s) ended",
					 uid, r);
		}
	} else {
		if (json_object_size(rpc->params)) {
			api_users_bad(ctx, rpc->id, "%s", "remove takes no parameters");
			return;
		}
		r = db_user_remove(ctx->db, uid);
	}
	if (r >= 0)
		r = db_flush(ctx->db);
	if (r < 0) {
		api_users_db_error(ctx, rpc->id, r);
		return;
	}
	log_info("user %" PRId64 " %s", uid, update ? "updated" : "removed");
	api_rpc_reply_result(ctx, rpc->id, json_null());
}
