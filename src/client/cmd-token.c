/*
 * `kiln token create|list|revoke`: API tokens (docs/AUTH.md) through the
 * master's API: JSON-RPC "add" on /api/v2/tokens (the answer holds the new
 * token, printed once here and never again), GET /api/v2/tokens (no token
 * texts, no hashes) and "revoke" on /api/v2/tokens/ID.
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "common/err.h"
#include "common/xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char token_options[] =
	"  -n, --name N              what the token is for (create: required)\n"
	"  -U, --user USER           the user it acts for (a uid or an identifier)\n"
	"  -s, --scope S,S...        what it may do (create: required): force, stop,\n"
	"                            cancel, sendchange, try, push, admin, view\n"
	"  -e, --expires DAYS        it stops working after DAYS days (default: never)\n"
	"commands:\n"
	"  create                    make a token; prints it once on stdout\n"
	"  list                      a table of the tokens (never their texts)\n"
	"  revoke ID                 revoke token ID (at once, for good)\n";

static const struct option token_longopts[] = {
	{"name", required_argument, NULL, 'n'},
	{"user", required_argument, NULL, 'U'},
	{"scope", required_argument, NULL, 's'},
	{"expires", required_argument, NULL, 'e'},
	{0},
};

struct token_args {
	const char *sub, *name, *user, *scope; /* borrowed: argv */
	long long expires, id;
};

static int token_option(void *state, int opt, const char *arg)
{
	struct token_args *a = state;
	switch (opt) {
	case 'n':
		a->name = arg;
		break;
	case 'U':
		a->user = arg;
		break;
	case 's':
		a->scope = arg;
		break;
	case 'e':
		if (cli_parse_int(arg, 1, 3650, &a->expires) < 0)
			return cli_usage_error(&cmd_token, "bad --expires '%s': 1 to 3650 days",
					       arg);
		break;
	}
	return CLI_EXIT_OK;
}

static int token_args(void *state, int argc, char **argv)
{
	struct token_args *a = state;
	if (argc == 0)
		return cli_usage_error(&cmd_token, "missing command: create, list or revoke");
	a->sub = argv[0];
	bool revoke = !strcmp(a->sub, "revoke");
	if (!revoke && strcmp(a->sub, "create") && strcmp(a->sub, "list"))
		return cli_usage_error(&cmd_token, "unknown command '%s'", a->sub);
	if (revoke && (argc < 2 || cli_parse_int(argv[1], 1, INT64_MAX, &a->id) < 0))
		return cli_usage_error(&cmd_token, "revoke: missing or bad token ID '%s'",
				       argc < 2 ? "" : argv[1]);
	if (argc > 1 + revoke)
		return cli_usage_error(&cmd_token, "unexpected argument '%s'", argv[1 + revoke]);
	bool create = !strcmp(a->sub, "create");
	if (!create && (a->name || a->user || a->scope || a->expires))
		return cli_usage_error(&cmd_token, "%s takes no options but --url and --token",
				       a->sub);
	if (create && (!a->name || !a->scope))
		return cli_usage_error(&cmd_token, "create: --name and --scope are required");
	return CLI_EXIT_OK;
}

/* The uid of ref (a uid or an identifier): > 0, or 0 after an error message. */
static long long token_user(struct http_client *c, const char *ref)
{
	if (ref[0] && strspn(ref, "0123456789") == strlen(ref))
		return strtoll(ref, NULL, 10);
	char *esc = http_escape(ref);
	char *path = xasprintf("/api/v2/users?identifier=%s", esc);
	free(esc);
	json_t *list = NULL;
	int r = http_get_list(c, path, "users", &list);
	free(path);
	if (r < 0) {
		cli_fail(c);
		return 0;
	}
	long long uid = cli_json_int(json_array_get(list, 0), "uid", 0);
	json_decref(list);
	if (!uid)
		cli_error("no user '%s'", ref);
	return uid;
}

static int token_create(const struct token_args *a, struct http_client *c)
{
	json_t *p = json_pack("{s:s,s:s}", "name", a->name, "scopes", a->scope), *res = NULL;
	if (a->user) {
		long long uid = token_user(c, a->user);
		if (!uid) {
			json_decref(p);
			return CLI_EXIT_FAIL;
		}
		json_object_set_new(p, "uid", json_integer(uid));
	}
	if (a->expires)
		json_object_set_new(p, "expires_days", json_integer(a->expires));
	int r = http_rpc(c, "/api/v2/tokens", "add", p, &res);
	json_decref(p);
	if (r < 0)
		return cli_error("cannot create token '%s': %s", a->name, http_client_error(c));
	const char *text = cli_json_str(res, "token", NULL);
	if (!text) {
		json_decref(res);
		return cli_error("the master's answer holds no token");
	}
	printf("%s\n", text);
	fflush(stdout);
	fprintf(stderr,
		"created token %lld '%s' (scopes %s): it is shown only this once; keep it in "
		"$KILN_TOKEN or client.conf 'token'\n",
		cli_json_int(res, "tokenid", 0), a->name, cli_json_str(res, "scopes", "?"));
	json_decref(res);
	return CLI_EXIT_OK;
}

static void token_time(const json_t *t, const char *key, char *out, size_t n)
{
	double v = cli_json_num(t, key, 0);
	if (v > 0)
		cli_format_time(v, out, n);
	else
		snprintf(out, n, "-");
}

static int token_list(struct http_client *c)
{
	json_t *list = NULL, *t;
	size_t i;
	if (http_get_list(c, "/api/v2/tokens", "tokens", &list) < 0)
		return cli_fail(c);
	if (json_array_size(list) == 0) {
		fprintf(stderr, "no tokens\n");
		json_decref(list);
		return CLI_EXIT_OK;
	}
	struct cli_table tb;
	cli_table_init(&tb, 8);
	cli_table_add(&tb, (const char *const[]){"ID", "NAME", "UID", "SCOPES", "CREATED",
						 "LAST USED", "EXPIRES", "STATE"});
	json_array_foreach(list, i, t)
	{
		char id[32], uid[32], cr[64], lu[64], ex[64], sc[160] = "";
		snprintf(id, sizeof(id), "%lld", cli_json_int(t, "tokenid", 0));
		long long u = cli_json_int(t, "uid", 0);
		snprintf(uid, sizeof(uid), u ? "%lld" : "-", u);
		size_t j;
		json_t *s;
		json_array_foreach(json_object_get(t, "scopes"), j, s)
		{
			size_t len = strlen(sc);
			snprintf(sc + len, sizeof(sc) - len, "%s%s", j ? "," : "",
				 json_string_value(s) ? json_string_value(s) : "?");
		}
		token_time(t, "created_at", cr, sizeof(cr));
		token_time(t, "last_used_at", lu, sizeof(lu));
		token_time(t, "expires_at", ex, sizeof(ex));
		const char *state = cli_json_num(t, "revoked_at", 0) > 0 ? "revoked"
				    : cli_json_bool(t, "active", false)  ? "active"
									 : "expired";
		cli_table_add(&tb, (const char *const[]){id, cli_json_str(t, "name", ""), uid, sc,
							 cr, lu, ex, state});
	}
	cli_table_print(&tb, stdout);
	cli_table_release(&tb);
	json_decref(list);
	return CLI_EXIT_OK;
}

static int token_exec(void *state, struct http_client *c)
{
	const struct token_args *a = state;
	if (!strcmp(a->sub, "create"))
		return token_create(a, c);
	if (!strcmp(a->sub, "list"))
		return token_list(c);
	char *path = xasprintf("/api/v2/tokens/%lld", a->id);
	json_t *res = NULL;
	int r = http_rpc(c, path, "revoke", NULL, &res);
	free(path);
	if (r < 0)
		return cli_error("cannot revoke token %lld: %s", a->id, http_client_error(c));
	printf("%s token %lld\n",
	       cli_json_bool(res, "already", false) ? "already revoked" : "revoked", a->id);
	json_decref(res);
	return CLI_EXIT_OK;
}

const struct cmd cmd_token = {
	.name = "token",
	.usage = "create|list|revoke [ID] [options]",
	.summary = "manage API tokens (scoped, revocable; shown once)",
	.flags = CMD_MASTER,
	.optstring = "n:U:s:e:",
	.options = token_longopts,
	.options_help = token_options,
	.state_size = sizeof(struct token_args),
	.option = token_option,
	.args = token_args,
	.exec = token_exec,
};
