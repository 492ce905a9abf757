/*
 * `kiln stop-build BUILD`: asks the master to stop a running build with
 * the JSON-RPC "stop" method on /api/v2/builds/N.  The build then ends
 * CANCELLED once its worker confirms.
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "common/xalloc.h"

#include <stdio.h>

static const char stop_build_options[] = "  -r, --reason R    reason recorded with the stop\n";

struct stop_build_args {
	const char *build;  /* borrowed: argv */
	const char *reason; /* borrowed: argv */
};

static const struct option stop_build_longopts[] = {
	{"reason", required_argument, NULL, 'r'},
	{0},
};

static int stop_build_option(void *state, int opt, const char *arg)
{
	struct stop_build_args *a = state;
	a->reason = arg; /* the only option: 'r' */
	return CLI_EXIT_OK;
}

static int stop_build_args(void *state, int argc, char **argv)
{
	struct stop_build_args *a = state;
	char *builder;
	long long number;

	if (argc == 0)
		return cli_usage_error(&cmd_stop_build, "missing BUILD");
	if (argc > 1)
		return cli_usage_error(&cmd_stop_build, "unexpected argument '%s'", argv[1]);
	a->build = argv[0];
	if (cli_parse_build_ref(a->build, &builder, &number) < 0)
		return cli_usage_error(&cmd_stop_build,
				       "bad build '%s': expected an id or BUILDER/NUMBER",
				       a->build);
	free(builder);
	return CLI_EXIT_OK;
}

static int stop_build_exec(void *state, struct http_client *c)
{
	const struct stop_build_args *a = state;
	json_t *build, *params;
	long long buildid;
	char *path;
	int r;

	/* Buildbot answers "stop" on a finished or unknown build with success:
	 * look first, so the user learns what really happened */
	r = cli_build_get(c, a->build, &build);
	if (r < 0)
		return cli_fail(c);
	buildid = cli_json_int(build, "buildid", -1);
	if (cli_json_bool(build, "complete", false)) {
		r = cli_error("build %lld is already complete: %s", buildid,
			      cli_result_name(cli_json_int(build, "results", -1)));
		json_decref(build);
		return r;
	}
	json_decref(build);

	params = json_object();
	if (a->reason)
		json_object_set_new(params, "reason", json_string(a->reason));
	path = xasprintf("/api/v2/builds/%lld", buildid);
	r = http_rpc(c, path, "stop", params, NULL);
	free(path);
	json_decref(params);
	if (r < 0)
		return cli_error("cannot stop build %lld: %s", buildid, http_client_error(c));
	printf("stopping build %lld\n", buildid);
	return CLI_EXIT_OK;
}

const struct cmd cmd_stop_build = {
	.name = "stop-build",
	.usage = "BUILD [--reason R]",
	.summary = "stop a running build (BUILD: a build id or BUILDER/NUMBER)",
	.flags = CMD_MASTER,
	.optstring = "r:",
	.options = stop_build_longopts,
	.options_help = stop_build_options,
	.state_size = sizeof(struct stop_build_args),
	.option = stop_build_option,
	.args = stop_build_args,
	.exec = stop_build_exec,
};
