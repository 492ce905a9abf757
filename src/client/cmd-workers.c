/*
 * `kiln workers`: a table of the configured workers from GET
 * /api/v2/workers: connected or not, paused, and the version and host the
 * worker reported (workerinfo).
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <string.h>

static const char workers_options[] = CLI_COMMON_HELP;

static int workers_parse(int argc, char **argv, struct cli_common *co)
{
	static const struct option longopts[] = {
	    CLI_COMMON_OPTIONS,
	    {0},
	};
	int opt;

	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (cli_common_opt(co, opt, optarg))
			continue;
		if (opt == 'h')
			return cli_help(&cmd_workers, workers_options);
		return cli_bad_option(&cmd_workers, opt, argc, argv);
	}
	if (optind < argc)
		return cli_usage_error(&cmd_workers, "unexpected argument '%s'", argv[optind]);
	return CLI_EXIT_OK;
}

/* The first line of a workerinfo string (Buildbot's 'host' ends in '\n'). */
static char *workers_first_line(const char *s)
{
	return s ? xstrndup(s, strcspn(s, "\r\n")) : xstrdup("");
}

static int workers_exec(struct http_client *c)
{
	json_t *workers, *w;
	struct cli_table t;
	size_t i;
	int r;

	r = http_get_list(c, "/api/v2/workers", "workers", &workers);
	if (r < 0)
		return cli_fail(c);
	if (json_array_size(workers) == 0) {
		fprintf(stderr, "no workers\n");
		json_decref(workers);
		return CLI_EXIT_OK;
	}
	cli_table_init(&t, 5);
	cli_table_add(&t, (const char *const[]){"NAME", "CONNECTED", "PAUSED", "VERSION", "HOST"});
	json_array_foreach (workers, i, w) {
		json_t *info = json_object_get(w, "workerinfo");
		json_t *conn = json_object_get(w, "connected_to");
		bool connected = json_is_array(conn) ? json_array_size(conn) > 0
		                                     : cli_json_bool(w, "connected", false);
		char *version = workers_first_line(cli_json_str(info, "version", NULL));
		char *host = workers_first_line(cli_json_str(info, "host", NULL));
		const char *paused = cli_json_bool(w, "paused", false) ? "yes" : "no";

		cli_table_add(&t, (const char *const[]){
		                      cli_json_str(w, "name", "?"), connected ? "yes" : "no",
		                      paused, *version ? version : "-", *host ? host : "-"});
		free(version);
		free(host);
	}
	cli_table_print(&t, stdout);
	cli_table_release(&t);
	json_decref(workers);
	return CLI_EXIT_OK;
}

static int workers_run(int argc, char **argv)
{
	struct cli_common co = {0};
	struct http_client c;
	int r;

	r = workers_parse(argc, argv, &co);
	if (r != CLI_EXIT_OK)
		return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
	r = cli_connect(&co, &c);
	if (r != CLI_EXIT_OK)
		return r;
	r = workers_exec(&c);
	http_client_release(&c);
	return r;
}

const struct cmd cmd_workers = {
    "workers",
    "",
    "list workers: connected, paused, version and host",
    workers_run,
    true,
};
