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

static const char builds_options[] = "  -n, --limit N     show at most N builds (default 20)\n";

struct builds_args {
	const char *builder; /* borrowed: argv; NULL for all */
	long long limit;
};

/* The name of builder 'id' in the builders list, or NULL. */
static const char *builds_builder_name(json_t *builders, long long id)
{
	json_t *b;
	size_t i;

	json_array_foreach(builders, i, b)
	{
		if (cli_json_int(b, "builderid", -1) == id)
			return cli_json_str(b, "name", NULL);
	}
	return NULL;
}

static const struct option builds_longopts[] = {
	{"limit", required_argument, NULL, 'n'},
	{0},
};

static void builds_init(void *state)
{
	struct builds_args *a = state;
	a->limit = BUILDS_DEFAULT_LIMIT;
}

static int builds_option(void *state, int opt, const char *arg)
{
	struct builds_args *a = state;
	/* the only option: 'n' */
	if (cli_parse_int(arg, 1, BUILDS_MAX_LIMIT, &a->limit) < 0)
		return cli_usage_error(&cmd_builds, "bad limit '%s': expected 1..%d", arg,
				       BUILDS_MAX_LIMIT);
	return CLI_EXIT_OK;
}

static int builds_args(void *state, int argc, char **argv)
{
	struct builds_args *a = state;
	if (argc > 0)
		a->builder = argv[0];
	if (argc > 1)
		return cli_usage_error(&cmd_builds, "unexpected argument '%s'", argv[1]);
	return CLI_EXIT_OK;
}

static int builds_exec(void *state, struct http_client *c)
{
	const struct builds_args *a = state;
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
		json_array_foreach(builders, i, b)
		{
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
	json_array_foreach(builds, i, b)
	{
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

const struct cmd cmd_builds = {
	.name = "builds",
	.usage = "[BUILDER] [--limit N]",
	.summary = "list recent builds, newest first",
	.flags = CMD_MASTER,
	.optstring = "n:",
	.options = builds_longopts,
	.options_help = builds_options,
	.state_size = sizeof(struct builds_args),
	.init = builds_init,
	.option = builds_option,
	.args = builds_args,
	.exec = builds_exec,
};
