/*
 * `kiln user add|update|remove|show|list`: user objects (docs/USERS.md)
 * through the master's API: GET /api/v2/users to read, JSON-RPC "add" on
 * /api/v2/users and "update" / "remove" on /api/v2/users/UID to write, so
 * it works against a running master.  A password is read from a file
 * (never the command line) and hashed here with argon2id
 * (crypto_pwhash_str): only the hash is sent and stored.
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "common/err.h"
#include "common/xalloc.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USERS_PASSWORD_MAX 1024 /* bytes read from --password-file */

static const char users_options[] =
	"  -i, --identifier ID       the user's identifier (add: required; update: rename)\n"
	"  -u, --username U          login name (\"\" removes it and the password)\n"
	"  -p, --password-file F     read the password from F's first line (- for stdin);\n"
	"                            it is hashed here (argon2id), only the hash is sent\n"
	"      --no-password         remove the password (update)\n"
	"  -r, --roles LIST          the user's roles for every builder: a comma list of\n"
	"                            admin, force, stop, cancel, view (\"\" for none)\n"
	"  -I, --info TYPE=VALUE     an identity (git, hg, svn, email, irc, ...); repeat;\n"
	"                            update: replaces the user's TYPE identities, TYPE=\n"
	"                            removes them\n"
	"commands:\n"
	"  add                       create a user (--identifier required)\n"
	"  update USER               change a user (USER: a uid or an identifier)\n"
	"  remove USER               delete a user, its identities and change links\n"
	"  show USER                 print one user\n"
	"  list                      a table of the users\n";

enum { USERS_OPT_NO_PASSWORD = 1000 };
#define USERS_ROLES_MAX 128 /* bytes of --roles (the master's users.roles cap) */

static const struct option users_longopts[] = {
	{"identifier", required_argument, NULL, 'i'},
	{"username", required_argument, NULL, 'u'},
	{"password-file", required_argument, NULL, 'p'},
	{"no-password", no_argument, NULL, USERS_OPT_NO_PASSWORD},
	{"info", required_argument, NULL, 'I'},
	{"roles", required_argument, NULL, 'r'},
	{0},
};

struct users_args {
	const char *sub, *user;            /* borrowed: argv */
	const char *identifier, *username; /* borrowed: argv */
	const char *password_file;         /* borrowed: argv */
	bool no_password;
	const char *roles; /* borrowed: argv; --roles (slice "authhard") */
	const char **info; /* borrowed: argv; "TYPE=VALUE" */
	size_t ninfo;
};

static int users_option(void *state, int opt, const char *arg)
{
	struct users_args *a = state;
	switch (opt) {
	case 'i':
		a->identifier = arg;
		break;
	case 'u':
		a->username = arg;
		break;
	case 'p':
		a->password_file = arg;
		break;
	case USERS_OPT_NO_PASSWORD:
		a->no_password = true;
		break;
	case 'r':
		if (strlen(arg) > USERS_ROLES_MAX)
			return cli_usage_error(&cmd_user, "--roles: at most %d bytes",
					       USERS_ROLES_MAX);
		a->roles = arg;
		break;
	case 'I':
		if (!strchr(arg, '=') || arg[0] == '=')
			return cli_usage_error(&cmd_user, "bad --info '%s': expected TYPE=VALUE",
					       arg);
		a->info = xreallocarray(a->info, a->ninfo + 1, sizeof(*a->info));
		a->info[a->ninfo++] = arg;
		break;
	}
	return CLI_EXIT_OK;
}

static int users_args(void *state, int argc, char **argv)
{
	struct users_args *a = state;
	if (argc == 0)
		return cli_usage_error(&cmd_user, "missing command: add, update, remove, show or "
						  "list");
	a->sub = argv[0];
	bool takes_user =
		!strcmp(a->sub, "update") || !strcmp(a->sub, "remove") || !strcmp(a->sub, "show");
	if (!takes_user && strcmp(a->sub, "add") && strcmp(a->sub, "list"))
		return cli_usage_error(&cmd_user, "unknown command '%s'", a->sub);
	if (takes_user && argc < 2)
		return cli_usage_error(&cmd_user, "%s: missing USER (a uid or an identifier)",
				       a->sub);
	if (argc > 1 + takes_user)
		return cli_usage_error(&cmd_user, "unexpected argument '%s'", argv[1 + takes_user]);
	a->user = takes_user ? argv[1] : NULL;
	bool writes = !strcmp(a->sub, "add") || !strcmp(a->sub, "update");
	if (!writes && (a->identifier || a->username || a->password_file || a->no_password ||
			a->ninfo || a->roles))
		return cli_usage_error(&cmd_user, "%s takes no options but --url and --token",
				       a->sub);
	if (!strcmp(a->sub, "add") && !a->identifier)
		return cli_usage_error(&cmd_user, "add: --identifier is required");
	if (!strcmp(a->sub, "add") && a->no_password)
		return cli_usage_error(&cmd_user, "add: --no-password is for update");
	if (a->password_file && a->no_password)
		return cli_usage_error(&cmd_user, "--password-file and --no-password together");
	if (!strcmp(a->sub, "update") && !a->identifier && !a->username && !a->password_file &&
	    !a->no_password && !a->ninfo && !a->roles)
		return cli_usage_error(&cmd_user, "update: nothing to change");
	return CLI_EXIT_OK;
}

static void users_release(void *state)
{
	struct users_args *a = state;
	free(a->info);
}

/* The password's argon2id hash string (malloc'd), or NULL after an error
 * message.  The password is the file's first line, without its newline. */
static char *users_hash_password(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	if (!f) {
		cli_error("cannot read password file '%s': %s", path, strerror(errno));
		return NULL;
	}
	char pw[USERS_PASSWORD_MAX + 2];
	size_t n = fread(pw, 1, sizeof(pw) - 1, f);
	bool err = ferror(f);
	if (f != stdin)
		fclose(f);
	pw[n] = '\0';
	pw[strcspn(pw, "\r\n")] = '\0';
	n = strlen(pw);
	char *hash = NULL;
	if (err)
		cli_error("cannot read password file '%s'", path);
	else if (n == 0)
		cli_error("password file '%s' holds no password", path);
	else if (n > USERS_PASSWORD_MAX)
		cli_error("password in '%s' is longer than %d bytes", path, USERS_PASSWORD_MAX);
	else if (sodium_init() < 0)
		cli_error("libsodium cannot start");
	else {
		hash = xmalloc(crypto_pwhash_STRBYTES);
		if (crypto_pwhash_str(hash, pw, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
				      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
			cli_error("cannot hash the password (out of memory?)");
			free(hash);
			hash = NULL;
		}
	}
	sodium_memzero(pw, sizeof(pw));
	return hash;
}

/* The JSON-RPC params of add / update, or NULL after an error message. */
static json_t *users_params(const struct users_args *a)
{
	json_t *p = json_object();
	if (a->identifier)
		json_object_set_new(p, "identifier", json_string(a->identifier));
	if (a->username)
		json_object_set_new(p, "username", json_string(a->username));
	if (a->no_password)
		json_object_set_new(p, "password_hash", json_string(""));
	if (a->ninfo) {
		json_t *ids = json_array();
		for (size_t i = 0; i < a->ninfo; i++) {
			const char *eq = strchr(a->info[i], '=');
			json_array_append_new(ids, json_pack("{s:s%,s:s}", "attr_type", a->info[i],
							     (size_t)(eq - a->info[i]), "attr_data",
							     eq + 1));
		}
		json_object_set_new(p, "identities", ids);
	}
	if (a->password_file) {
		char *hash = users_hash_password(a->password_file);
		if (!hash) {
			json_decref(p);
			return NULL;
		}
		json_object_set_new(p, "password_hash", json_string(hash));
		sodium_memzero(hash, strlen(hash));
		free(hash);
	}
	return p;
}

/* The user named by ref (a uid or an identifier), a new reference, or
 * NULL after an error message. */
static json_t *users_get(struct http_client *c, const char *ref)
{
	bool num = ref[0] && strspn(ref, "0123456789") == strlen(ref);
	char *esc = http_escape(ref);
	char *path = xasprintf(num ? "/api/v2/users?uid=%s" : "/api/v2/users?identifier=%s", esc);
	free(esc);
	json_t *list = NULL;
	int r = http_get_list(c, path, "users", &list);
	free(path);
	if (r < 0) {
		cli_fail(c);
		return NULL;
	}
	json_t *u = json_incref(json_array_get(list, 0));
	json_decref(list);
	if (!u)
		cli_error("no user '%s'", ref);
	return u;
}

static void users_print(json_t *u)
{
	const char *un = cli_json_str(u, "bb_username", NULL);
	printf("uid:        %lld\n", cli_json_int(u, "uid", 0));
	printf("identifier: %s\n", cli_json_str(u, "identifier", ""));
	printf("username:   %s\n", un ? un : "-");
	printf("password:   %s\n", cli_json_bool(u, "has_password", false) ? "set" : "none");
	size_t i;
	json_t *id;
	json_array_foreach(json_object_get(u, "identities"), i, id)
		printf("%-11s %s\n", cli_json_str(id, "attr_type", "?"),
		       cli_json_str(id, "attr_data", ""));
}

static int users_list(struct http_client *c)
{
	json_t *list = NULL, *u;
	size_t i;
	if (http_get_list(c, "/api/v2/users?limit=10000", "users", &list) < 0)
		return cli_fail(c);
	if (json_array_size(list) == 0) {
		fprintf(stderr, "no users\n");
		json_decref(list);
		return CLI_EXIT_OK;
	}
	struct cli_table t;
	cli_table_init(&t, 5);
	cli_table_add(
		&t, (const char *const[]){"UID", "IDENTIFIER", "USERNAME", "EMAIL", "IDENTITIES"});
	json_array_foreach(list, i, u)
	{
		char uid[32];
		snprintf(uid, sizeof(uid), "%lld", cli_json_int(u, "uid", 0));
		const char *un = cli_json_str(u, "bb_username", NULL);
		const char *em = cli_json_str(u, "email", NULL);
		char n[32];
		snprintf(n, sizeof(n), "%zu", json_array_size(json_object_get(u, "identities")));
		cli_table_add(&t, (const char *const[]){uid, cli_json_str(u, "identifier", ""),
							un ? un : "-", em ? em : "-", n});
	}
	cli_table_print(&t, stdout);
	cli_table_release(&t);
	json_decref(list);
	return CLI_EXIT_OK;
}

/* --roles: JSON-RPC "roles" on /api/v2/users/UID (the master checks the
 * list).  CLI_EXIT_OK, or an error printed. */
static int users_set_roles(struct http_client *c, long long uid, const char *roles)
{
	char *path = xasprintf("/api/v2/users/%lld", uid);
	json_t *p = json_pack("{s:s}", "roles", roles);
	int r = http_rpc(c, path, "roles", p, NULL);
	json_decref(p);
	free(path);
	if (r < 0)
		return cli_error("cannot set the roles of user %lld: %s", uid,
				 http_client_error(c));
	printf("roles of user %lld: %s\n", uid, *roles ? roles : "(none)");
	return CLI_EXIT_OK;
}

static int users_exec(void *state, struct http_client *c)
{
	const struct users_args *a = state;
	if (!strcmp(a->sub, "list"))
		return users_list(c);
	if (!strcmp(a->sub, "add")) {
		json_t *p = users_params(a), *res = NULL;
		if (!p)
			return CLI_EXIT_FAIL;
		int r = http_rpc(c, "/api/v2/users", "add", p, &res);
		json_decref(p);
		if (r < 0)
			return cli_error("cannot add user '%s': %s", a->identifier,
					 http_client_error(c));
		long long nuid = cli_json_int(res, "uid", 0);
		printf("added user %lld '%s'\n", nuid, a->identifier);
		json_decref(res);
		return a->roles ? users_set_roles(c, nuid, a->roles) : CLI_EXIT_OK;
	}
	json_t *u = users_get(c, a->user);
	if (!u)
		return CLI_EXIT_FAIL;
	long long uid = cli_json_int(u, "uid", 0);
	if (!strcmp(a->sub, "show")) {
		users_print(u);
		json_decref(u);
		return CLI_EXIT_OK;
	}
	json_decref(u);
	bool update = !strcmp(a->sub, "update");
	json_t *p = update ? users_params(a) : json_object();
	if (!p)
		return CLI_EXIT_FAIL;
	if (update && a->roles && !json_object_size(p)) { /* --roles alone */
		json_decref(p);
		return users_set_roles(c, uid, a->roles);
	}
	char *path = xasprintf("/api/v2/users/%lld", uid);
	int r = http_rpc(c, path, a->sub, p, NULL);
	free(path);
	json_decref(p);
	if (r < 0)
		return cli_error("cannot %s user %lld: %s", a->sub, uid, http_client_error(c));
	printf("%s user %lld\n", update ? "updated" : "removed", uid);
	return update && a->roles ? users_set_roles(c, uid, a->roles) : CLI_EXIT_OK;
}

const struct cmd cmd_user = {
	.name = "user",
	.usage = "add|update|remove|show|list [USER] [options]",
	.summary = "manage user objects (identities, login name, password)",
	.flags = CMD_MASTER,
	.optstring = "i:u:p:I:r:",
	.options = users_longopts,
	.options_help = users_options,
	.state_size = sizeof(struct users_args),
	.option = users_option,
	.args = users_args,
	.exec = users_exec,
	.release = users_release,
};
