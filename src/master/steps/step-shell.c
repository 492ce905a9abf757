/*
 * shell { }: one command on the worker; its exit code decides the step
 * (0 SUCCESS, anything else FAILURE).
 */
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/steps/step.h"
#include "proto/msg.h"

/* "'make test'" / "'sh -c ...'": the first words of the command, as
 * Buildbot describes a shell step. */
static char *step_shell_describe(const struct step *st)
{
	const struct config_step *s = st->cfg;
	struct buf out;
	buf_init(&out, 1024);
	char *words[3] = {0};
	size_t n = 0;
	bool more = false;
	if (s->argv) {
		for (size_t i = 0; s->argv[i]; i++) {
			if (n < 2)
				words[n++] = xstrdup(s->argv[i]);
			else
				more = true;
		}
	} else if (s->command) {
		const char *p = s->command;
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

static void step_shell_done(struct step *st, int status, const char *failure)
{
	int results = step_command_results(st, status, failure);
	step_finish(st, results >= 0 ? results : step_rc_results(st));
}

static const struct step_cmd_ops step_shell_ops = {NULL, step_shell_done};

static void step_shell_start(struct step *st)
{
	const struct config_step *s = st->cfg;
	struct proto_enc args;
	proto_enc_init(&args);
	uint32_t nargs;
	int r = step_shell_args(st, s->argv, s->command, NULL, NULL, 0, &args, &nargs);
	if (r < 0) {
		proto_enc_release(&args);
		step_log_header(st, "the step's working directory path is too long");
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	r = step_command(st, "shell", &args, nargs, &step_shell_ops);
	proto_enc_release(&args);
	if (r < 0)
		step_finish(st, step_unstarted_results(st));
}

const struct step_kind step_kind_shell = {
	.kind = CONFIG_STEP_SHELL,
	.name = "shell",
	.describe = step_shell_describe,
	.start = step_shell_start,
};
