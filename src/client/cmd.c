/*
 * The verb table's runner (tmux cmd.c): what every client verb used to
 * repeat -- getopt with the common options, --help, usage errors, resolving
 * the master URL and token, connecting and releasing -- done once here from
 * the verb's entry (cmd.h).
 */
#include "client/cmd.h"
#include "client/cli.h"
#include "client/http.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct option cmd_common_options[] = {
	CLI_COMMON_OPTIONS,
	{0},
};

static bool cmd_is_help(int argc, char **argv)
{
	return argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
}

/* The verb's long options followed by the common ones; a new array. */
static struct option *cmd_longopts(const struct cmd *cmd)
{
	size_t n = 0, k = 0;
	while (cmd->options && cmd->options[n].name)
		n++;
	struct option *all = xreallocarray(NULL, n + ARRAY_SIZE(cmd_common_options), sizeof(*all));
	for (size_t i = 0; i < n; i++)
		all[k++] = cmd->options[i];
	for (size_t i = 0; i < ARRAY_SIZE(cmd_common_options); i++)
		if ((cmd->flags & CMD_MASTER) || !cmd_common_options[i].name ||
		    !strcmp(cmd_common_options[i].name, "help"))
			all[k++] = cmd_common_options[i];
	return all;
}

static int cmd_help(const struct cmd *cmd)
{
	_cleanup_free_ char *text = xasprintf(
		"%s%s", cmd->options_help ? cmd->options_help : "",
		(cmd->flags & CMD_MASTER) ? CLI_COMMON_HELP : "  -h, --help        this help\n");
	cli_help(cmd, text);
	return CLI_EXIT_OK;
}

/* getopt over argv into state and *co; CLI_EXIT_OK, CLI_HELP_SHOWN or a usage error */
static int cmd_parse(const struct cmd *cmd, int argc, char **argv, void *state,
		     struct cli_common *co)
{
	_cleanup_free_ struct option *longopts = cmd_longopts(cmd);
	_cleanup_free_ char *optstring = xasprintf(":h%s", cmd->optstring ? cmd->optstring : "");
	int opt, r;

	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		if ((cmd->flags & CMD_MASTER) && cli_common_opt(co, opt, optarg))
			continue;
		if (opt == 'h') {
			cmd_help(cmd);
			return CLI_HELP_SHOWN;
		}
		if (opt == '?' || opt == ':' || !cmd->option)
			return cli_bad_option(cmd, opt, argc, argv);
		r = cmd->option(state, opt, optarg);
		if (r != CLI_EXIT_OK)
			return r;
	}
	if (cmd->args)
		return cmd->args(state, argc - optind, argv + optind);
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return CLI_EXIT_OK;
}

int cmd_run(const struct cmd *cmd, int argc, char **argv)
{
	if (cmd->run) {
		if (!cmd->own_help && cmd_is_help(argc, argv)) {
			printf("usage: kiln %s %s\n%s\n", cmd->name, cmd->usage, cmd->summary);
			return CLI_EXIT_OK;
		}
		return cmd->run(argc, argv);
	}

	struct cli_common co = {0};
	struct http_client c;
	void *state = xcalloc(1, cmd->state_size ? cmd->state_size : 1);
	int r;

	if (cmd->init)
		cmd->init(state);
	r = cmd_parse(cmd, argc, argv, state, &co);
	if (r == CLI_HELP_SHOWN) {
		r = CLI_EXIT_OK;
	} else if (r == CLI_EXIT_OK && !(cmd->flags & CMD_MASTER)) {
		r = cmd->exec(state, NULL);
	} else if (r == CLI_EXIT_OK) {
		r = cli_connect(&co, &c);
		if (r == CLI_EXIT_OK) {
			r = cmd->exec(state, &c);
			http_client_release(&c);
		}
	}
	if (cmd->release)
		cmd->release(state);
	free(state);
	return r;
}
