/*
 * A `kiln` verb's table entry.  The table itself is in src/kiln/main.c;
 * daemon verbs (master, create-master, checkconfig) live in src/kiln/,
 * client verbs in src/client/cmd-<verb>.c and talk only to the master's
 * public HTTP API.
 *
 * A client verb is table-driven (tmux's cmd_entry): the entry names its
 * options, a state struct and four callbacks, and cmd_run() does the rest
 * once for every verb: getopt with the common --url/--token/--help added,
 * usage errors, --help, the operands, resolving the master and connecting.
 *
 * Adding a new client command:
 *   1. write src/client/cmd-<verb>.c exporting `const struct cmd cmd_<verb>`
 *      with CMD_MASTER, its options, state_size and option/args/exec;
 *   2. declare it below and add one line to the table in src/kiln/main.c;
 *   3. add the file to src/client/meson.build and document it in docs/CLIENT.md.
 */
#ifndef KILN_CLIENT_CMD_H
#define KILN_CLIENT_CMD_H

#include <stdbool.h>
#include <stddef.h>

struct http_client;
struct option;

enum {
	/* takes --url/--token; cmd_run() connects before exec() */
	CMD_MASTER = 1 << 0,
};

struct cmd {
	const char *name;
	const char *usage;   /* arguments after the verb, for --help */
	const char *summary; /* one line */

	/* A verb that parses its own argv (the daemon verbs, sendchange, try):
	 * argv[0] is the verb; returns the process exit status. */
	int (*run)(int argc, char **argv);
	/* run() prints its own --help; otherwise cmd_run() prints usage + summary */
	bool own_help;

	/* A table-driven verb (run == NULL): */
	unsigned flags;               /* CMD_* */
	const char *optstring;        /* its own short options in getopt syntax, e.g. "n:" */
	const struct option *options; /* its own long options, {0}-terminated (NULL: none) */
	const char *options_help;     /* their --help lines; the common ones are added */
	size_t state_size;            /* cmd_run() allocates this much, zeroed, per run */
	void (*init)(void *state);    /* optional: defaults */
	/* one of its own options: CLI_EXIT_OK, or cli_usage_error() */
	int (*option)(void *state, int opt, const char *arg);
	/* the operands (argv after the options): CLI_EXIT_OK, or cli_usage_error() */
	int (*args)(void *state, int argc, char **argv);
	/* the work, connected to the master when CMD_MASTER; the exit status */
	int (*exec)(void *state, struct http_client *c);
	void (*release)(void *state); /* optional: frees what init/option kept */
};

/*
 * Runs one verb: argv[0] is the verb.  Returns the process exit status (0,
 * CLI_EXIT_FAIL, CLI_EXIT_USAGE; --help exits 0).
 */
int cmd_run(const struct cmd *cmd, int argc, char **argv);

/* client commands (src/client/cmd-<verb>.c; docs/CLIENT.md) */
extern const struct cmd cmd_force;
extern const struct cmd cmd_builds;
extern const struct cmd cmd_logs;
extern const struct cmd cmd_workers;
extern const struct cmd cmd_stop_build;
extern const struct cmd cmd_try;
extern const struct cmd cmd_sendchange;
extern const struct cmd cmd_artifacts; /* cmd-artifacts.c */
extern const struct cmd cmd_artifact;
extern const struct cmd cmd_user; /* cmd-users.c (slice "users") */
/* cmd-token.c (slice "tokens") */
extern const struct cmd cmd_token;
extern const struct cmd cmd_watch;  /* cmd-watch.c (slice "watch") */
extern const struct cmd cmd_push;   /* cmd-push.c (slice "push") */
extern const struct cmd cmd_status; /* cmd-status.c (slice "operator") */

#endif
