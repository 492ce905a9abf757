/*
 * `kiln builds [BUILDER]`: a table of recent builds, newest first, from
 * GET /api/v2/builds (builder names from GET /api/v2/builders).
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "common/clock.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <string.h>

#define BUILDS_DEFAULT_LIMIT 20
#define BUILDS_MAX_LIMIT 100000

static const char builds_options[] =
    "  -n, --limit N     show at most N builds (default 20)\n" CLI_COMMON_HELP;

struct builds_args {
	struct cli_common co;
	const char *builder; /* borrowed: argv; NULL for all */
	long long limit;
};

static int builds_parse(int argc, char **argv, struct builds_args *a)
{
	static const struct option longopts[] = {
	    {"limit", required_argument, NULL, 'n'},
	    CLI_COMMON_OPTIONS,
	    {0},
	};
	int opt;

	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":hn:", longopts, NULL)) != -1) {
		if (cli_common_opt(&a->co, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			return cli_help(&cmd_builds, builds_options);
		case 'n':
			if (cli_parse_int(optarg, 1, BUILDS_MAX_LIMIT, &a->limit) < 0)
				return cli_usage_error(&cmd_builds,
				                       "bad limit '%s': expected 1..%d", optarg,
				                       BUILDS_MAX_LIMIT);
			break;
		default:
			return cli_bad_option(&cmd_builds, opt, argc, argv);
		}
	}
	if (optind < argc)
		a->builder = argv[optind++];
	if (optind < argc)
		return cli_usage_error(&cmd_builds, "unexpected argument '%s'", argv[optind]);
	return CLI_EXIT_OK;
}

/* The name of builder 'id' in the builders list, or NULL. */
static const char *builds_builder_name(json_t *builders, long long id)
{
	json_t *b;
	size_t i;

	json_array_foreach (builders, i, b) {
		if (cli_json_int(b, "builderid", -1) == id)
			return cli_json_str(b, "name", NULL);
	}
	return NULL;
}

static int builds_exec(const struct builds_args *a, struct http_client *c)
{
	json_t *builders = NULL, *builds = NULL, *b;
	struct cli_table t;
	char *path = NULL, idfilter[48] = "";
	size_t i;
	int r;

	cli_table_init(&t, 7);
	r = http_get_list(c, "/api/v2/builders", "builders", &builders);
	if (r < 0) {
		r = cli_fail(c);
		goto out;
	}
	if (a->builder) {
		long long id = -1;
		json_array_foreach (builders, i, b) {
			if (!strcmp(cli_json_str(b, "name", ""), a->builder))
				id = cli_json_int(b, "builderid", -1);
		}
		if (id < 0) {
			r = cli_error("no builder named '%s'", a->builder);
			goto out;
		}
		snprintf(idfilter, sizeof(idfilter), "&builderid=%lld", id);
	}
	path = xasprintf("/api/v2/builds?order=-buildid&limit=%lld%s", a->limit, idfilter);
	r = http_get_list(c, path, "builds", &builds);
	if (r < 0) {
		r = cli_fail(c);
		goto out;
	}
	if (json_array_size(builds) == 0) {
		fprintf(stderr, "no builds\n");
		r = CLI_EXIT_OK;
		goto out;
	}
	cli_table_add(&t, (const char *const[]){"ID", "BUILDER", "NUMBER", "RESULT", "STARTED",
	                                        "DURATION", "STATUS"});
	json_array_foreach (builds, i, b) {
		char id[24], number[24], started[32], duration[32], builderid[24];
		const char *name, *result;
		double start = cli_json_num(b, "started_at", 0);
		bool complete = cli_json_bool(b, "complete", false);
		double end = complete ? cli_json_num(b, "complete_at", 0) : clock_wall();

		snprintf(id, sizeof(id), "%lld", cli_json_int(b, "buildid", -1));
		snprintf(number, sizeof(number), "%lld", cli_json_int(b, "number", -1));
		snprintf(builderid, sizeof(builderid), "#%lld", cli_json_int(b, "builderid", -1));
		name = builds_builder_name(builders, cli_json_int(b, "builderid", -1));
		result = complete ? cli_result_name(cli_json_int(b, "results", -1)) : "running";
		cli_format_time(start, started, sizeof(started));
		if (start > 0 && end >= start)
			cli_format_duration(end - start, duration, sizeof(duration));
		else
			snprintf(duration, sizeof(duration), "-");
		cli_table_add(&t, (const char *const[]){id, name ? name : builderid, number, result,
		                                        started, duration,
		                                        cli_json_str(b, "state_string", "")});
	}
	cli_table_print(&t, stdout);
	r = CLI_EXIT_OK;
out:
	cli_table_release(&t);
	json_decref(builds);
	json_decref(builders);
	free(path);
	return r;
}

static int builds_run(int argc, char **argv)
{
	struct builds_args a = {.limit = BUILDS_DEFAULT_LIMIT};
	struct http_client c;
	int r;

	r = builds_parse(argc, argv, &a);
	if (r != CLI_EXIT_OK)
		return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
	r = cli_connect(&a.co, &c);
	if (r != CLI_EXIT_OK)
		return r;
	r = builds_exec(&a, &c);
	http_client_release(&c);
	return r;
}

const struct cmd cmd_builds = {
    "builds",
    "[BUILDER] [--limit N]",
    "list recent builds, newest first",
    builds_run,
    true,
};
