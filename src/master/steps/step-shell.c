/*
 * shell { }: one command on the worker; its exit code decides the step
 * (0 SUCCESS, anything else FAILURE).
 */
#include <stdbool.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/steps/step.h"
#include "proto/msg.h"

static void step_shell_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* "'make test'" / "'sh -c ...'": the first words of the command, as
 * Buildbot describes a shell step.  argv NULL: command's words. */
static char *step_shell_words(char *const *argv, const char *command)
{
	struct buf out;
	buf_init(&out, 1024);
	char *words[3] = {0};
	size_t n = 0;
	bool more = false;
	if (argv) {
		for (size_t i = 0; argv[i]; i++) {
			if (n < 2)
				words[n++] = xstrdup(argv[i]);
			else
				more = true;
		}
	} else if (command) {
		const char *p = command;
		while (*p) {
			while (*p == ' ' || *p == '\t' || *p == '\n')
				p++;
			if (!*p)
				break;
			const char *q = p;
			while (*q && *q != ' ' && *q != '\t' && *q != '\n')
				q++;
			if (n < 2)
				words[n++] = xstrndup(p, (size_t)(q - p));
			else
				more = true;
			p = q;
		}
	}
	/* at most two words of 60 bytes: always fits */
	int r = buf_addch(&out, '\'');
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(words[i]);
		if (r >= 0)
			r = buf_add(&out, words[i], l > 60 ? 60 : l);
		if (r >= 0 && i + 1 < n)
			r = buf_addch(&out, ' ');
		free(words[i]);
	}
	if (r >= 0 && more)
		r = buf_adds(&out, " ...");
	if (r >= 0)
		r = buf_addch(&out, '\'');
	if (r < 0) {
		buf_release(&out);
		return xstrdup("'...'");
	}
	return buf_detach(&out, NULL);
}

/* A shell step's command rendered by step_shell_describe() (before its
 * row is inserted, so the row holds the rendered words from the start)
 * and taken by step_shell_run() of the same step, which then needs no
 * second render nor an UPDATE of the state.  One at a time: step_begin
 * calls start right after describe; a stash left by a step that did not
 * start (skipped, a failed insert) is dropped by the next describe or run
 * (the step, its config and its build must all match). */
static struct {
	const struct step *st;
	const struct config_step *cfg;
	const struct build *b;
	char **argv;
	char *command;
} step_shell_pre;

static void step_shell_pre_forget(void)
{
	step_shell_strv_free(step_shell_pre.argv);
	free(step_shell_pre.command);
	memset(&step_shell_pre, 0, sizeof(step_shell_pre));
}

/* Whether rendering the command is free of effects (interpolate() and
 * plain text, no Lua function) and changes the words describe gives. */
static bool step_shell_prerender_ok(const struct step *st)
{
	const struct config_step *s = st->cfg;
	if (st->kind != &step_kind_shell || s->command.fn)
		return false;
	if (!s->argv)
		return s->command.interp;
	for (size_t i = 0; i < s->nargv; i++)
		if (s->argv[i].fn)
			return false;
	return s->nargv > 0;
}

/* Before rendering: the words the config has (a function: its name); for
 * a plain shell step whose command is interpolate() or a list, the words
 * of the rendered command (rendered here once, see step_shell_pre). */
char *step_shell_describe(const struct step *st)
{
	const struct config_step *s = st->cfg;
	step_shell_pre_forget();
	if (step_shell_prerender_ok(st)) {
		char **argv, *command;
		/* interpolate() only reads the build; a failure logs nothing
		 * here (no log yet) and is rendered again, logged, at start */
		if (step_shell_render((struct step *)st, &argv, &command) == 0) {
			step_shell_pre.st = st;
			step_shell_pre.cfg = st->cfg;
			step_shell_pre.b = st->b;
			step_shell_pre.argv = argv;
			step_shell_pre.command = command;
			return step_shell_words(argv, command);
		}
	}
	if (s->command.fn || (s->argv && (!s->nargv || s->argv[0].fn)))
		return xasprintf("'%s'", s->name);
	if (!s->argv)
		return step_shell_words(NULL, s->command.text);
	char *argv[3] = {s->argv[0].text, NULL, NULL};
	if (s->nargv > 1)
		argv[1] = s->argv[1].fn ? "..." : s->argv[1].text;
	return step_shell_words(argv, NULL);
}

/* The rendered command: *ret_argv (NULL-terminated, owned) or *ret_cmd. */
int step_shell_render(struct step *st, char ***ret_argv, char **ret_cmd)
{
	const struct config_step *s = st->cfg;
	*ret_argv = NULL;
	*ret_cmd = NULL;
	if (s->argv) {
		char **argv = xcalloc(s->nargv + 1, sizeof(char *));
		for (size_t i = 0; i < s->nargv; i++) {
			_cleanup_free_ char *what = xasprintf("command[%zu]", i + 1);
			int r = step_render(st, &s->argv[i], what, &argv[i]);
			if (r < 0) {
				step_shell_strv_free(argv);
				return r;
			}
		}
		*ret_argv = argv;
		return 0;
	}
	json_t *v;
	int r = step_render_json(st, &s->command, "command", &v);
	if (r < 0)
		return r;
	if (json_is_array(v)) {
		size_t n = json_array_size(v);
		if (n == 0) {
			step_log_header(st, "cannot render 'command': the function returned an "
					    "empty list");
			json_decref(v);
			return KILN_ECONFIG;
		}
		char **argv = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			argv[i] = step_json_text(json_array_get(v, i));
		*ret_argv = argv;
	} else {
		*ret_cmd = step_json_text(v);
	}
	json_decref(v);
	return 0;
}

static void step_shell_done(struct step *st, int status, const char *failure)
{
	int results = step_command_results(st, status, failure);
	step_finish(st, results >= 0 ? results : step_rc_results(st));
}

static const struct step_cmd_ops step_shell_ops = {NULL, step_shell_done};

int step_shell_run(struct step *st, const struct step_cmd_ops *ops)
{
	const struct config_step *s = st->cfg;
	char **argv, *command;
	int r = 0;
	bool pre = step_shell_pre.st == st && step_shell_pre.cfg == st->cfg &&
		   step_shell_pre.b == st->b && (step_shell_pre.argv || step_shell_pre.command);
	if (pre) { /* rendered by step_shell_describe: the row has its words */
		argv = step_shell_pre.argv;
		command = step_shell_pre.command;
		step_shell_pre.argv = NULL;
		step_shell_pre.command = NULL;
	}
	step_shell_pre_forget();
	if (!pre)
		r = step_shell_render(st, &argv, &command);
	if (r < 0) {
		step_finish(st, RESULTS_EXCEPTION);
		return r;
	}
	if (!pre && (s->command.fn || s->command.interp || s->argv)) {
		/* the description from the rendered words */
		char *desc = step_shell_words(argv, command);
		step_set_description(st, desc);
		free(desc);
	}
	struct proto_enc args;
	proto_enc_init(&args);
	uint32_t nargs;
	r = step_shell_args(st, argv, command, NULL, NULL, 0, &args, &nargs);
	step_shell_strv_free(argv);
	free(command);
	if (r < 0) {
		proto_enc_release(&args);
		step_finish(st, RESULTS_EXCEPTION);
		return r;
	}
	r = step_command(st, "shell", &args, nargs, ops);
	proto_enc_release(&args);
	if (r < 0)
		step_finish(st, step_unstarted_results(st));
	return r;
}

static void step_shell_start(struct step *st)
{
	step_shell_run(st, &step_shell_ops);
}

const struct step_kind step_kind_shell = {
	.kind = CONFIG_STEP_SHELL,
	.name = "shell",
	.describe = step_shell_describe,
	.start = step_shell_start,
};
