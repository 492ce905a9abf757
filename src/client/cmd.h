/*
 * A `kiln` verb's table entry.  The table itself is in src/kiln/main.c;
 * daemon verbs (master, create-master, checkconfig) live in src/kiln/,
 * client verbs in src/client/cmd-<verb>.c and talk only to the master's
 * public HTTP API.
 *
 * Adding a new client command:
 *   1. write src/client/cmd-<verb>.c exporting `const struct cmd cmd_<verb>`;
 *   2. declare it below and add one line to the table in src/kiln/main.c;
 *   3. add the file to src/client/meson.build and document it in docs/CLIENT.md.
 */
#ifndef KILN_CLIENT_CMD_H
#define KILN_CLIENT_CMD_H

#include <stdbool.h>

struct cmd {
	const char *name;
	const char *usage;   /* arguments after the verb, for --help */
	const char *summary; /* one line */
	/* argv[0] is the verb; returns the process exit status */
	int (*run)(int argc, char **argv);
	/* run() prints its own --help; otherwise main prints usage + summary */
	bool own_help;
};

/* client commands (src/client/cmd-<verb>.c; docs/CLIENT.md) */
extern const struct cmd cmd_force;
extern const struct cmd cmd_builds;
extern const struct cmd cmd_logs;
extern const struct cmd cmd_workers;
extern const struct cmd cmd_stop_build;
extern const struct cmd cmd_try;
extern const struct cmd cmd_sendchange;

#endif
