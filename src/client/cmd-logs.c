/*
 * `kiln logs BUILD`: prints the stdio logs of a build's steps in step
 * order, reading each log by line offset in pages (never the whole log at
 * once).  --follow keeps a cursor (step number, log line) and polls, so a
 * reader that joins late prints every line exactly once, then exits with
 * the build's result.
 */
#include "client/cli.h"
#include "client/cmd.h"
#include "client/http.h"
#include "client/ws.h"
#include "common/err.h"
#include "common/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define LOGS_PAGE_LINES 10000 /* lines per contents request */
#define LOGS_POLL_MS 200

static const char logs_options[] =
	"  -s, --step S      only the step named S, or numbered S (0 is the first)\n"
	"  -l, --log NAME    which log of each step (default: stdio)\n"
	"  -f, --follow      keep printing new lines until the build ends; exit 0 for\n"
	"                    SUCCESS/WARNINGS, 1 otherwise\n";

struct logs_args {
	const char *build; /* borrowed: argv */
	const char *step;  /* borrowed: argv; NULL for every step */
	const char *log;   /* borrowed: argv or literal */
	bool follow;
};

/* The reader's position: everything before it has been printed. */
struct logs_cursor {
	struct http_client *c;
	const struct logs_args *a;
	long long buildid;
	long long step;   /* number of the first step not finished with */
	long long offset; /* next line of that step's log */
	bool header_done; /* that step's header line is out */
	bool matched;     /* some step matched --step */
	bool color;
};

static bool logs_step_matches(const char *filter, json_t *step)
{
	long long n;

	if (!filter)
		return true;
	if (cli_parse_int(filter, 0, INT32_MAX, &n) == 0)
		return cli_json_int(step, "number", -1) == n;
	return !strcmp(cli_json_str(step, "name", ""), filter);
}

/* The log of 'stepid' named (or slugged) 'name', as a new reference, or NULL. */
static int logs_find_log(struct logs_cursor *cur, long long stepid, json_t **ret_log)
{
	json_t *logs, *l;
	size_t i;
	int r;
	char *path = xasprintf("/api/v2/steps/%lld/logs", stepid);

	r = http_get_list(cur->c, path, "logs", &logs);
	free(path);
	if (r < 0)
		return r;
	*ret_log = NULL;
	json_array_foreach(logs, i, l)
	{
		if (!strcmp(cli_json_str(l, "name", ""), cur->a->log) ||
		    !strcmp(cli_json_str(l, "slug", ""), cur->a->log)) {
			*ret_log = json_incref(l);
			break;
		}
	}
	json_decref(logs);
	return 0;
}

/*
 * Prints one page of a log from cur->offset and advances it.  Only whole
 * lines are printed unless the log is complete, so a line the master is
 * still receiving is printed once, whole, on a later page.
 * *ret_lines gets the number of lines printed.
 */
static int logs_print_page(struct logs_cursor *cur, long long logid, char type, bool complete,
			   long long *ret_lines)
{
	json_t *chunks, *ch;
	long long printed = 0;
	size_t i;
	int r;
	char *path = xasprintf("/api/v2/logs/%lld/contents?offset=%lld&limit=%d", logid,
			       cur->offset, LOGS_PAGE_LINES);

	r = http_get_list(cur->c, path, "logchunks", &chunks);
	free(path);
	if (r < 0)
		return r;
	json_array_foreach(chunks, i, ch)
	{
		const char *p = cli_json_str(ch, "content", "");
		size_t len = json_string_length(json_object_get(ch, "content"));
		long long first = cli_json_int(ch, "firstline", cur->offset);
		const char *end = p + len, *nl;

		/* a chunk may start before our offset: skip what was printed */
		while (first < cur->offset && p < end) {
			nl = memchr(p, '\n', (size_t)(end - p));
			p = nl ? nl + 1 : end;
			first++;
		}
		if (first > cur->offset)
			cur->offset = first; /* lines the master no longer has */
		if (!complete) {
			const char *last = memrchr(p, '\n', (size_t)(end - p));
			end = last ? last + 1 : p;
		}
		long long n =
			(long long)cli_log_write(stdout, p, (size_t)(end - p), type, cur->color);
		cur->offset += n;
		printed += n;
	}
	json_decref(chunks);
	*ret_lines = printed;
	return 0;
}

/*
 * Prints what is new in 'step'.  Returns 1 when the reader is done with
 * the step (it and its log are complete and read to the end), 0 when more
 * may come, or a negative code.  *progress is set when lines were printed.
 */
static int logs_step(struct logs_cursor *cur, json_t *step, bool *progress)
{
	bool step_complete = cli_json_bool(step, "complete", false);
	json_t *log = NULL;
	long long logid, num_lines, lines;
	bool complete, exhausted = false;
	char type;
	int r;

	r = logs_find_log(cur, cli_json_int(step, "stepid", -1), &log);
	if (r < 0 || !log)
		return r < 0 ? r : step_complete;
	logid = cli_json_int(log, "logid", -1);
	/* the log's state is read after the step's: complete here is final */
	complete = cli_json_bool(log, "complete", step_complete);
	num_lines = cli_json_int(log, "num_lines", -1);
	type = cli_json_str(log, "type", "s")[0];
	json_decref(log);

	if (!cur->header_done && !cur->a->step && num_lines != 0) {
		printf(cur->color ? "\033[1m--- %s (step %lld)\033[0m\n" : "--- %s (step %lld)\n",
		       cli_json_str(step, "name", "?"), cli_json_int(step, "number", -1));
		cur->header_done = true;
	}
	/* a master may send fewer lines than asked (a byte cap per reply), so
	 * a short page ends the loop only when the length is unknown */
	for (;;) {
		if (num_lines >= 0 && cur->offset >= num_lines)
			break;
		r = logs_print_page(cur, logid, type, complete, &lines);
		if (r < 0)
			return r;
		if (lines == 0) {
			exhausted = true;
			break;
		}
		*progress = true;
		if (num_lines < 0 && lines < LOGS_PAGE_LINES) {
			exhausted = true;
			break;
		}
	}
	fflush(stdout);
	if (num_lines >= 0 && cur->offset >= num_lines)
		exhausted = true;
	return complete && step_complete && exhausted;
}

/*
 * One pass over the build's steps from the cursor.  Returns 1 when every
 * step seen is finished with, 0 when the cursor stopped at a step still
 * running, or a negative code.
 */
static int logs_pass(struct logs_cursor *cur, bool *progress)
{
	json_t *steps, *s;
	size_t i;
	int r = 1;
	char *path = xasprintf("/api/v2/builds/%lld/steps", cur->buildid);

	r = http_get_list(cur->c, path, "steps", &steps);
	free(path);
	if (r < 0)
		return r;
	r = 1;
	json_array_foreach(steps, i, s)
	{
		long long number = cli_json_int(s, "number", -1);

		if (number < cur->step)
			continue;
		if (!logs_step_matches(cur->a->step, s)) {
			/* never printed, so never waited for */
			cur->step = number + 1;
			continue;
		}
		cur->matched = true;
		r = logs_step(cur, s, progress);
		if (r < 0)
			break;
		if (r == 0 && cur->a->follow)
			break; /* wait here: later steps come after this one */
		cur->step = number + 1;
		cur->offset = 0;
		cur->header_done = false;
		r = 1;
	}
	json_decref(steps);
	return r;
}

static const struct option logs_longopts[] = {
	{"step", required_argument, NULL, 's'},
	{"log", required_argument, NULL, 'l'},
	{"follow", no_argument, NULL, 'f'},
	{0},
};

static void logs_init(void *state)
{
	struct logs_args *a = state;
	a->log = "stdio";
}

static int logs_option(void *state, int opt, const char *arg)
{
	struct logs_args *a = state;
	switch (opt) {
	case 's':
		a->step = arg;
		break;
	case 'l':
		a->log = arg;
		break;
	default: /* 'f' */
		a->follow = true;
		break;
	}
	return CLI_EXIT_OK;
}

static int logs_args(void *state, int argc, char **argv)
{
	struct logs_args *a = state;
	char *builder;
	long long number;

	if (argc == 0)
		return cli_usage_error(&cmd_logs, "missing BUILD");
	if (argc > 1)
		return cli_usage_error(&cmd_logs, "unexpected argument '%s'", argv[1]);
	a->build = argv[0];
	if (cli_parse_build_ref(a->build, &builder, &number) < 0)
		return cli_usage_error(
			&cmd_logs, "bad build '%s': expected an id or BUILDER/NUMBER", a->build);
	free(builder);
	return CLI_EXIT_OK;
}

static int logs_exec(void *state, struct http_client *c)
{
	const struct logs_args *a = state;
	struct logs_cursor cur = {.c = c, .a = a, .color = cli_is_color_tty(stdout)};
	json_t *build;
	struct ws_waiter waiter = {0};
	bool build_complete, progress;
	long long result;
	int r;

	if (a->follow) {
		/* Buildbot publishes log appends; Kiln the build's end (and a re-read
		 * at least every WS_WAIT_MAX_MS catches what it does not publish) */
		static const char *const paths[] = {"builds/*/*", "steps/*/*", "logs/*/*", NULL};
		ws_waiter_open(&waiter, c->base, c->token, paths, LOGS_POLL_MS);
	}
	for (;;) {
		r = cli_build_get(c, a->build, &build);
		if (r < 0)
			break;
		cur.buildid = cli_json_int(build, "buildid", -1);
		build_complete = cli_json_bool(build, "complete", false);
		result = cli_json_int(build, "results", -1);
		json_decref(build);

		/* steps are read after the build: if it was complete, they are final */
		progress = false;
		r = logs_pass(&cur, &progress);
		if (r < 0)
			break;
		if (!a->follow || (r == 1 && build_complete))
			break;
		if (!progress)
			ws_waiter_wait(&waiter, 0);
	}
	ws_waiter_release(&waiter);
	if (r < 0)
		return cli_fail(c);
	if (a->step && !cur.matched)
		return cli_error("build %lld has no step '%s'", cur.buildid, a->step);
	return a->follow ? cli_result_exit(result) : CLI_EXIT_OK;
}

const struct cmd cmd_logs = {
	.name = "logs",
	.usage = "BUILD [--step NAME|NUMBER] [--log NAME] [--follow]",
	.summary = "print the logs of a build's steps (BUILD: a build id or BUILDER/NUMBER)",
	.flags = CMD_MASTER,
	.optstring = "s:l:f",
	.options = logs_longopts,
	.options_help = logs_options,
	.state_size = sizeof(struct logs_args),
	.init = logs_init,
	.option = logs_option,
	.args = logs_args,
	.exec = logs_exec,
};
