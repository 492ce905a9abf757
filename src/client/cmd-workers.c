/*
 * `kiln workers`: a table of the configured workers from GET
 * /api/v2/workers: connected or not, paused, and the version and host the
 * worker reported (workerinfo), and, for a worker the master starts (latent
 * or local), its latent_state.
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <string.h>

/* The first line of a workerinfo string (Buildbot's 'host' ends in '\n'). */
static char *workers_first_line(const char *s)
{
	return s ? xstrndup(s, strcspn(s, "\r\n")) : xstrdup("");
}

static int workers_exec(void *state, struct http_client *c)
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
	cli_table_init(&t, 6);
	cli_table_add(&t, (const char *const[]){"NAME", "CONNECTED", "PAUSED", "VERSION", "HOST",
						"LATENT"});
	json_array_foreach(workers, i, w)
	{
		json_t *info = json_object_get(w, "workerinfo");
		json_t *conn = json_object_get(w, "connected_to");
		bool connected = json_is_array(conn) ? json_array_size(conn) > 0
						     : cli_json_bool(w, "connected", false);
		char *version = workers_first_line(cli_json_str(info, "version", NULL));
		char *host = workers_first_line(cli_json_str(info, "host", NULL));
		const char *paused = cli_json_bool(w, "paused", false) ? "yes" : "no";
		/* Kiln's latent_state (Buildbot has none): '-' for an ordinary worker */
		const char *latent = cli_json_str(w, "latent_state", NULL);

		cli_table_add(&t, (const char *const[]){cli_json_str(w, "name", "?"),
							connected ? "yes" : "no", paused,
							*version ? version : "-",
							*host ? host : "-", latent ? latent : "-"});
		free(version);
		free(host);
	}
	cli_table_print(&t, stdout);
	cli_table_release(&t);
	json_decref(workers);
	return CLI_EXIT_OK;
}

const struct cmd cmd_workers = {
	.name = "workers",
	.usage = "",
	.summary = "list workers: connected, paused, version, host and latent state",
	.flags = CMD_MASTER,
	.exec = workers_exec,
};
