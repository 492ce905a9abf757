/*
 * master_shell { }: a command run on the master, as Buildbot's
 * MasterShellCommand: spawned off the loop through common/proc.h (its own
 * process group, read on the loop, never waited for), in the master's base
 * directory (or workdir under it), the master's environment with the step's
 * env over it; output into the stdio log (masked) up to
 * KILN_MASTERSHELL_MAX_OUTPUT, then the command is killed and the step
 * ends EXCEPTION; timeout (no output) and max_time kill it (FAILURE).  Its
 * exit code decides the results (decode_rc applies).
 */
#define LOG_SUBSYS "build"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/master.h"
#include "master/steps/step.h"

extern char **environ;

struct step_mastershell {
	struct step *st; /* NULL once the step is gone (the timers still close) */
	struct proc *proc;
	uv_timer_t *idle, *total; /* owned; closed and freed with their close callback */
	uint64_t logged;
	const char *killed; /* why the master killed it, NULL if it did not */
	bool over, cancelled;
};

static void step_mastershell_timer_free(uv_handle_t *h)
{
	free(h);
}

static void step_mastershell_timers_close(struct step_mastershell *c)
{
	if (c->idle)
		uv_close((uv_handle_t *)c->idle, step_mastershell_timer_free);
	if (c->total)
		uv_close((uv_handle_t *)c->total, step_mastershell_timer_free);
	c->idle = c->total = NULL;
}

static void step_mastershell_kill(struct step_mastershell *c, const char *why)
{
	if (!c->proc || c->killed)
		return;
	c->killed = why;
	proc_kill(c->proc, SIGKILL, 0);
}

static void step_mastershell_timeout(uv_timer_t *t)
{
	struct step_mastershell *c = t->data;
	step_mastershell_kill(c, t == c->idle ? "timeout: no output" : "max_time reached");
}

static int step_mastershell_output(void *ud, int stream, const char *data, size_t len)
{
	struct step_mastershell *c = ud;
	struct step *st = c->st;
	if (c->idle && st->cfg->timeout > 0)
		uv_timer_again(c->idle);
	if (c->logged + len > KILN_MASTERSHELL_MAX_OUTPUT) {
		c->over = true;
		c->killed = "output over the cap";
		return KILN_ETOOBIG; /* proc.h kills the group */
	}
	c->logged += len;
	step_log(st, stream == PROC_STDERR ? 'e' : 'o', data, len);
	return 0;
}

static void step_mastershell_done(void *ud, int64_t exit_status, int term_signal, bool gave_up)
{
	struct step_mastershell *c = ud;
	struct step *st = c->st;
	c->proc = NULL;
	step_mastershell_timers_close(c);
	int results;
	if (c->over) {
		step_log_header(st, "output over %u bytes: the command was killed",
				(unsigned)KILN_MASTERSHELL_MAX_OUTPUT);
		results = RESULTS_EXCEPTION;
	} else if (c->cancelled) {
		step_log_header(st, "interrupted");
		results = RESULTS_CANCELLED;
	} else if (gave_up || term_signal > 0) {
		if (c->killed)
			step_log_header(st, "%s: killed", c->killed);
		step_log_header(st, "signal %d", term_signal > 0 ? term_signal : SIGKILL);
		_cleanup_free_ char *d = xasprintf("killed (%d)", term_signal);
		step_set_description(st, d);
		results = RESULTS_FAILURE;
	} else {
		st->rc = (int)exit_status;
		st->have_rc = true;
		step_log_header(st, "exit status %d", st->rc);
		results = step_rc_results(st);
		if (st->rc) {
			_cleanup_free_ char *d = xasprintf("failed (%d)", st->rc);
			step_set_description(st, d);
		} else {
			step_set_description(st, "Ran");
		}
	}
	step_finish(st, results);
}

static const struct proc_ops step_mastershell_ops = {step_mastershell_output,
						     step_mastershell_done};

/* The master's environment with the step's env over it (NULL-terminated). */
static int step_mastershell_env(struct step *st, char ***ret)
{
	const struct config_step *s = st->cfg;
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = xcalloc(n + s->nenv + 1, sizeof(*env));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		size_t nl = strcspn(environ[i], "=");
		bool mine = false;
		for (size_t j = 0; j < s->nenv && !mine; j++)
			mine = strlen(s->env[j].name) == nl &&
			       !strncmp(environ[i], s->env[j].name, nl);
		if (!mine)
			env[k++] = xstrdup(environ[i]);
	}
	for (size_t j = 0; j < s->nenv; j++) {
		_cleanup_free_ char *what = xasprintf("env %s", s->env[j].name);
		char *v = NULL;
		int r = step_render(st, &s->env[j].value, what, &v);
		if (r < 0) {
			for (size_t i = 0; i < k; i++)
				free(env[i]);
			free(env);
			return r;
		}
		if (v) /* no value: removed */
			env[k++] = xasprintf("%s=%s", s->env[j].name, v);
		free(v);
	}
	*ret = env;
	return 0;
}

static void step_mastershell_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void step_mastershell_start(struct step *st)
{
	const struct config_step *s = st->cfg;
	struct master *m = st->b->e->m;
	char **argv = NULL, *command = NULL, **env = NULL;
	if (step_shell_render(st, &argv, &command) < 0 || step_mastershell_env(st, &env) < 0) {
		step_mastershell_strv_free(argv);
		free(command);
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	if (!argv) {
		argv = xcalloc(4, sizeof(*argv));
		argv[0] = xstrdup("/bin/sh");
		argv[1] = xstrdup("-c");
		argv[2] = command;
		command = NULL;
	}
	_cleanup_free_ char *cwd =
		s->workdir ? xasprintf("%s/%s", m->basedir, s->workdir) : xstrdup(m->basedir);
	step_log_header(st, "%s", argv[2] && !strcmp(argv[0], "/bin/sh") ? argv[2] : argv[0]);
	step_log_header(st, " in dir %s", cwd);
	struct step_mastershell *c = xcalloc(1, sizeof(*c));
	c->st = st;
	st->priv = c;
	struct proc_opts o = {.argv = argv, .env = env, .cwd = cwd};
	int r = proc_start(m->loop, &o, &step_mastershell_ops, c, &c->proc);
	step_mastershell_strv_free(argv);
	step_mastershell_strv_free(env);
	if (r < 0) {
		c->proc = NULL;
		step_log_header(st, "cannot run the command: %s", err_str(r));
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	step_set_description(st, "Running");
	if (s->timeout > 0) {
		c->idle = xcalloc(1, sizeof(*c->idle));
		uv_timer_init(m->loop, c->idle);
		c->idle->data = c;
		uint64_t ms = (uint64_t)(s->timeout * 1000);
		uv_timer_start(c->idle, step_mastershell_timeout, ms, ms);
	}
	if (s->max_time > 0) {
		c->total = xcalloc(1, sizeof(*c->total));
		uv_timer_init(m->loop, c->total);
		c->total->data = c;
		uv_timer_start(c->total, step_mastershell_timeout, (uint64_t)(s->max_time * 1000),
			       0);
	}
}

static void step_mastershell_interrupt(struct step *st, const char *why)
{
	struct step_mastershell *c = st->priv;
	(void)why;
	if (!c || !c->proc || c->cancelled)
		return;
	c->cancelled = true;
	step_mastershell_kill(c, "interrupted");
}

static void step_mastershell_free(struct step *st)
{
	struct step_mastershell *c = st->priv;
	if (!c)
		return;
	if (c->proc)
		proc_abandon(c->proc); /* the build goes away: no more callbacks */
	step_mastershell_timers_close(c);
	free(c);
	st->priv = NULL;
}

const struct step_kind step_kind_mastershell = {
	.kind = CONFIG_STEP_MASTERSHELL,
	.name = "master_shell",
	.describe = step_shell_describe,
	.start = step_mastershell_start,
	.interrupt = step_mastershell_interrupt,
	.free = step_mastershell_free,
};
