/*
 * `kiln`: the master daemon and every client command behind one binary,
 * dispatched through a table of verbs (tmux cmd_table, git commands[]).
 * The daemon verbs are in this folder, the client verbs in src/client/.
 */
#include "client/cmd.h"
#include "kiln/kiln.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <string.h>

static const struct cmd *const cmds[] = {
	&cmd_master, &cmd_create_master, &cmd_checkconfig, &cmd_force,
	&cmd_builds, &cmd_logs,          &cmd_workers,     &cmd_stop_build,
	&cmd_try,    &cmd_sendchange,    &cmd_artifacts,   &cmd_artifact, /* slice "artcli" */
	&cmd_user,                                                        /* slice "users" */
	&cmd_token,                                                       /* slice "tokens" */
	&cmd_watch,                                                       /* slice "watch" */
	&cmd_push,   &cmd_reconfig, /* slice "push"; slice "reconfig" */
	&cmd_start,  &cmd_stop,          &cmd_restart,     &cmd_status, /* slice "operator" */
	&cmd_upgrd,                                                     /* slice "package" */
	&cmd_purge,                                                     /* slice "retention" */
	&cmd_copydb,                                                    /* issue 14 */
};

static void kiln_usage(FILE *f)
{
	fprintf(f, "usage: kiln COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		fprintf(f, "  %-14s %s\n", cmds[i]->name, cmds[i]->summary);
	fprintf(f, "  %-14s %s\n", "version", "print the version");
	fprintf(f, "\n'kiln COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv)
{
	log_init_from_env();
	if (argc < 2) {
		kiln_usage(stderr);
		return 2;
	}
	const char *verb = argv[1];
	if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
		kiln_usage(stdout);
		return 0;
	}
	if (!strcmp(verb, "version") && argc > 2 &&
	    (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
		printf("usage: kiln version\nprint the version\n");
		return 0;
	}
	if (!strcmp(verb, "version") || !strcmp(verb, "--version")) {
		printf("kiln %s\n", KILN_VERSION);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		if (!strcmp(cmds[i]->name, verb))
			return cmd_run(cmds[i], argc - 1, argv + 1);
	}
	fprintf(stderr, "kiln: unknown command '%s'\n", verb);
	kiln_usage(stderr);
	return 2;
}
