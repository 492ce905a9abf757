/*
 * `kiln status [--url URL | BASEDIR]`: a short summary of a running master
 * from its /metrics (up since, workers, running builds, queued requests,
 * builds finished by result) and its API (the last finished builds).  With
 * BASEDIR (default .) the master's HTTP address is read from BASEDIR/ports.
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "common/buf.h"
#include "common/xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the most of /metrics kept */
#define STATUS_METRICS_MAX (4u << 20)
#define STATUS_LAST_BUILDS 5

static int status_sink(void *ud, long status, const void *data, size_t len)
{
	(void)status;
	return buf_add(ud, data, len);
}

/* The value of sample 'key' (name with its labels) in the text, or -1. */
static double sample(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (*p != '#' && !strncmp(p, key, kl) && p[kl] == ' ')
			return strtod(p + kl + 1, NULL);
	}
	return -1;
}

static void status_usage(FILE *f)
{
	fprintf(f, "usage: kiln status [--url URL] [--token TOKEN] [BASEDIR]\n"
		   "A short summary of a running master from its /metrics and API: up since,\n"
		   "workers connected, builds running, requests queued (per builder), builds\n"
		   "finished by result since it started, the last finished builds.  With\n"
		   "BASEDIR (default .) the address comes from BASEDIR/ports.\n"
		   "Exit status: 0, 1 when the master cannot be reached, 2 usage.\n");
}

/* "http://HOST:PORT" from BASEDIR/ports, or NULL (message printed) */
static char *status_url_from_basedir(const char *basedir)
{
	_cleanup_free_ char *path = xasprintf("%s/ports", basedir);
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "kiln status: cannot read '%s' (is a master running there?): %s\n",
			path, strerror(errno));
		return NULL;
	}
	char line[256], addr[200];
	char *url = NULL;
	while (!url && fgets(line, sizeof(line), f))
		if (sscanf(line, "http %199s", addr) == 1)
			url = xasprintf("http://%s", addr);
	fclose(f);
	if (!url)
		fprintf(stderr, "kiln status: no 'http' line in '%s'\n", path);
	return url;
}

static void print_builders_queued(const char *text)
{
	static const char pre[] = "kiln_builder_buildrequests_queued{builder=\"";
	bool any = false;
	for (const char *p = strstr(text, pre); p; p = strstr(p + 1, pre)) {
		/* the label value, unescaped (\\ \" \n) */
		const char *q = p + sizeof(pre) - 1;
		struct buf name;
		buf_init(&name, 1024);
		for (; *q && *q != '"' && *q != '\n'; q++) {
			char ch = *q;
			if (ch == '\\' && q[1]) {
				ch = *++q == 'n' ? '\n' : *q;
			}
			(void)!buf_addch(&name, ch);
		}
		if (strncmp(q, "\"} ", 3)) {
			buf_release(&name);
			break;
		}
		long long n = strtoll(q + 3, NULL, 10);
		if (n > 0 && !buf_error(&name)) {
			printf("%s%s %lld", any ? ", " : " (", name.ptr, n);
			any = true;
		}
		buf_release(&name);
	}
	if (any)
		printf(")");
}

static int status_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"url", required_argument, NULL, 'u'},
		{"token", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *url_arg = NULL, *token = NULL;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'u':
			url_arg = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'h':
			status_usage(stdout);
			return CLI_EXIT_OK;
		default:
			status_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind > 1 || (url_arg && argc - optind == 1)) {
		status_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	_cleanup_free_ char *url =
		url_arg ? xstrdup(url_arg)
			: status_url_from_basedir(optind < argc ? argv[optind] : ".");
	if (!url)
		return CLI_EXIT_FAIL;
	struct http_client c;
	if (http_client_init(&c, url, token) < 0) {
		fprintf(stderr, "kiln status: bad URL '%s'\n", url);
		return CLI_EXIT_USAGE;
	}
	struct buf text;
	buf_init(&text, STATUS_METRICS_MAX);
	int r = http_get_stream(&c, "/metrics", 0, status_sink, &text);
	if (r < 0 || buf_error(&text) < 0) {
		fprintf(stderr, "kiln status: cannot read %s/metrics: %s\n", url,
			r < 0 ? http_client_error(&c) : "too long");
		buf_release(&text);
		http_client_release(&c);
		return CLI_EXIT_FAIL;
	}
	const char *t = text.ptr;
	char when[64], up[32];
	double start = sample(t, "process_start_time_seconds");
	cli_format_time(start, when, sizeof(when));
	cli_format_duration(sample(t, "kiln_uptime_seconds"), up, sizeof(up));
	printf("master:    %s\n", url);
	printf("up since:  %s (%s)\n", when, up);
	printf("workers:   %.0f connected\n", sample(t, "kiln_workers_connected"));
	printf("builds:    %.0f running, %.0f requests queued", sample(t, "kiln_builds_running"),
	       sample(t, "kiln_buildrequests_queued"));
	print_builders_queued(t);
	printf("\nfinished:  ");
	static const char *const results[] = {"success",   "warnings", "failure",   "skipped",
					      "exception", "retry",    "cancelled", "other"};
	bool any = false;
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		char key[96];
		snprintf(key, sizeof(key), "kiln_builds_finished_total{result=\"%s\"}", results[i]);
		double n = sample(t, key);
		if (n > 0) {
			printf("%s%.0f %s", any ? ", " : "", n, results[i]);
			any = true;
		}
	}
	printf("%s (since it started)\n", any ? "" : "none");
	buf_release(&text);

	json_t *builds = NULL, *builders = NULL;
	int rc = CLI_EXIT_OK;
	if (http_get_list(&c, "/api/v2/builders", "builders", &builders) < 0 ||
	    http_get_list(&c, "/api/v2/builds?complete=true&order=-buildid&limit=5", "builds",
			  &builds) < 0) {
		rc = cli_fail(&c);
	} else if (json_array_size(builds)) {
		printf("last builds:\n");
		size_t i;
		json_t *b;
		json_array_foreach(builds, i, b)
		{
			json_int_t bid = json_integer_value(json_object_get(b, "builderid"));
			const char *name = "?";
			size_t k;
			json_t *bl;
			json_array_foreach(builders, k, bl)
			{
				if (json_integer_value(json_object_get(bl, "builderid")) == bid)
					name = cli_json_str(bl, "name", "?");
			}
			char ended[64];
			cli_format_time(json_number_value(json_object_get(b, "complete_at")), ended,
					sizeof(ended));
			printf("  %-20s #%-5lld %-9s %s\n", name,
			       (long long)json_integer_value(json_object_get(b, "number")),
			       cli_result_name(json_integer_value(json_object_get(b, "results"))),
			       ended);
		}
	}
	json_decref(builds);
	json_decref(builders);
	http_client_release(&c);
	return rc;
}

const struct cmd cmd_status = {
	.name = "status",
	.usage = "[--url URL] [--token TOKEN] [BASEDIR]",
	.summary = "summary of a running master: uptime, workers, builds, queue",
	.run = status_run,
	.own_help = true,
};
