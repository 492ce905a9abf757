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

static const char stop_build_options[] =
    "  -r, --reason R    reason recorded with the stop\n" CLI_COMMON_HELP;

struct stop_build_args {
	struct cli_common co;
	const char *build;  /* borrowed: argv */
	const char *reason; /* borrowed: argv */
};

static int stop_build_parse(int argc, char **argv, struct stop_build_args *a)
{
	static const struct option longopts[] = {
	    {"reason", required_argument, NULL, 'r'},
	    CLI_COMMON_OPTIONS,
	    {0},
	};
	char *builder;
	long long number;
	int opt;

	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":hr:", longopts, NULL)) != -1) {
		if (cli_common_opt(&a->co, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			return cli_help(&cmd_stop_build, stop_build_options);
		case 'r':
			a->reason = optarg;
			break;
		default:
			return cli_bad_option(&cmd_stop_build, opt, argc, argv);
		}
	}
	if (optind == argc)
		return cli_usage_error(&cmd_stop_build, "missing BUILD");
	if (optind + 1 != argc)
		return cli_usage_error(&cmd_stop_build, "unexpected argument '%s'",
		                       argv[optind + 1]);
	a->build = argv[optind];
	if (cli_parse_build_ref(a->build, &builder, &number) < 0)
		return cli_usage_error(
		    &cmd_stop_build, "bad build '%s': expected an id or BUILDER/NUMBER", a->build);
	free(builder);
	return CLI_EXIT_OK;
}

static int stop_build_exec(const struct stop_build_args *a, struct http_client *c)
{
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

static int stop_build_run(int argc, char **argv)
{
	struct stop_build_args a = {0};
	struct http_client c;
	int r;

	r = stop_build_parse(argc, argv, &a);
	if (r != CLI_EXIT_OK)
		return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
	r = cli_connect(&a.co, &c);
	if (r != CLI_EXIT_OK)
		return r;
	r = stop_build_exec(&a, &c);
	http_client_release(&c);
	return r;
}

const struct cmd cmd_stop_build = {
    "stop-build",
    "BUILD [--reason R]",
    "stop a running build (BUILD: a build id or BUILDER/NUMBER)",
    stop_build_run,
    true,
};
