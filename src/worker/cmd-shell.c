/*
 * The `shell` remote command (PROTOCOL.md §3.7) and the plain process runs
 * that rmdir/cpdir use: argv or /bin/sh -c, env rules, workdir, Buildbot-style
 * header lines, line-split stdout/stderr, logfiles polled into `log`, no-output
 * timeout and maxTime, interrupt with the step's signal (SIGKILL fallback),
 * then rc, elapsedTime and complete.
 */
#define LOG_SUBSYS "shell"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/xalloc.h"
#include "worker/env.h"
#include "worker/runner.h"
#include "worker/worker.h"

extern char **environ;

#define SHELL_KILL_GRACE 5.0 /* s between a non-KILL signal and SIGKILL */
#define SHELL_LOG_POLL_MS 1000
#define SHELL_LOG_READ_MAX (1u << 20) /* per logfile per poll */
#define SHELL_DEFAULT_TIMEOUT 1200.0

struct shell_logfile {
	char *name; /* owned */
	char *path; /* owned, absolute */
	bool follow;
	bool existed;
	struct stat st0; /* at start: an unchanged old file is not this build's log */
	int fd;
	off_t drain_end; /* once the command ended: read up to here (its size then), -1 before */
	struct lines lines;
	struct shell *sh;
};

struct shell {
	struct cmd *c;  /* borrowed; NULL once the command is gone */
	struct proc *r; /* NULL when done */
	char **argv;    /* owned */
	struct env env;
	char *workdir; /* owned */
	bool want_stdout, want_stderr;
	double timeout, max_time, sigterm_time; /* <= 0: off */
	int interrupt_sig;
	bool killed; /* we signalled it (interrupt, timeout, abort) */
	struct lines out, err;
	struct shell_logfile *logs;
	size_t nlogs;
	uv_timer_t t_timeout, t_max, t_poll;
	int open_handles;
	bool released;
	bool paused;         /* backpressure: no reading, logfiles included */
	bool draining;       /* the process ended: logfiles are read to their end before rc */
	int64_t exit_status; /* how it ended, kept while draining */
	int term_signal;
	bool gave_up;
	void (*on_done)(struct cmd *c, int rc); /* plain runs: instead of rc/elapsed/complete */
};

/* ---- teardown --------------------------------------------------------------------- */

static void shell_free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static void shell_free(struct shell *sh)
{
	for (size_t i = 0; i < sh->nlogs; i++) {
		struct shell_logfile *lf = &sh->logs[i];
		if (lf->fd >= 0)
			close(lf->fd);
		lines_release(&lf->lines);
		free(lf->name);
		free(lf->path);
	}
	free(sh->logs);
	lines_release(&sh->out);
	lines_release(&sh->err);
	shell_free_strv(sh->argv);
	env_release(&sh->env);
	free(sh->workdir);
	free(sh);
}

static void shell_on_close(uv_handle_t *h)
{
	struct shell *sh = h->data;
	if (--sh->open_handles == 0 && sh->released)
		shell_free(sh);
}

static void shell_stop_timers(struct shell *sh)
{
	uv_timer_stop(&sh->t_timeout);
	uv_timer_stop(&sh->t_max);
	uv_timer_stop(&sh->t_poll);
}

/* cmd's free_priv: the command is gone; the process (if any) is killed. */
static void shell_release(struct cmd *c)
{
	struct shell *sh = c->priv;
	if (!sh)
		return;
	c->priv = NULL;
	sh->c = NULL;
	if (sh->r) {
		proc_abandon(sh->r);
		sh->r = NULL;
	}
	shell_stop_timers(sh);
	sh->released = true;
	if (sh->open_handles == 0) {
		shell_free(sh);
		return;
	}
	uv_close((uv_handle_t *)&sh->t_timeout, shell_on_close);
	uv_close((uv_handle_t *)&sh->t_max, shell_on_close);
	uv_close((uv_handle_t *)&sh->t_poll, shell_on_close);
}

/* ---- output ------------------------------------------------------------------------- */

static void shell_emit_stdout(void *ud, const char *line, size_t len, double t)
{
	struct shell *sh = ud;
	if (sh->c)
		cmd_add_line(sh->c, "stdout", NULL, line, len, t);
}

static void shell_emit_stderr(void *ud, const char *line, size_t len, double t)
{
	struct shell *sh = ud;
	if (sh->c)
		cmd_add_line(sh->c, "stderr", NULL, line, len, t);
}

static void shell_emit_log(void *ud, const char *line, size_t len, double t)
{
	struct shell_logfile *lf = ud;
	if (lf->sh->c)
		cmd_add_line(lf->sh->c, "log", lf->name, line, len, t);
}

static int shell_on_output(void *ud, int stream, const char *data, size_t len)
{
	struct shell *sh = ud;
	if (sh->timeout > 0 && !sh->killed)
		uv_timer_again(&sh->t_timeout);
	double t = clock_wall();
	/* the other stream's partial line goes first, so lines keep the order
	 * the command wrote them in (the master masks secrets split across
	 * stdout and stderr in that order) */
	if (stream == PROC_STDOUT && sh->want_stdout) {
		lines_cut_partial(&sh->err);
		lines_feed(&sh->out, data, len, t);
	} else if (stream == PROC_STDERR && sh->want_stderr) {
		lines_cut_partial(&sh->out);
		lines_feed(&sh->err, data, len, t);
	}
	return 0;
}

/* Reads what the logfiles have, at most SHELL_LOG_READ_MAX each; once the
 * command has ended, only up to each file's size then (a file a leftover
 * process keeps writing still ends).  True if a file may have more. */
static bool shell_poll_logs(struct shell *sh)
{
	bool more = false;
	for (size_t i = 0; i < sh->nlogs; i++) {
		struct shell_logfile *lf = &sh->logs[i];
		if (lf->fd < 0) {
			struct stat st;
			if (stat(lf->path, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			if (lf->existed && st.st_ino == lf->st0.st_ino &&
			    st.st_dev == lf->st0.st_dev &&
			    st.st_mtim.tv_sec == lf->st0.st_mtim.tv_sec &&
			    st.st_mtim.tv_nsec == lf->st0.st_mtim.tv_nsec &&
			    st.st_size == lf->st0.st_size)
				continue; /* the old file, untouched */
			lf->fd = open(lf->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
			if (lf->fd < 0)
				continue;
			if (lf->follow && lf->existed && st.st_ino == lf->st0.st_ino &&
			    st.st_size >= lf->st0.st_size)
				(void)lseek(lf->fd, lf->st0.st_size, SEEK_SET);
		}
		off_t pos = 0;
		if (sh->draining) {
			struct stat st;
			if (lf->drain_end < 0)
				lf->drain_end = fstat(lf->fd, &st) == 0 ? st.st_size : 0;
			pos = lseek(lf->fd, 0, SEEK_CUR);
			if (pos < 0)
				continue;
		}
		char tmp[16384];
		size_t total = 0;
		ssize_t n;
		double t = clock_wall();
		while (total < SHELL_LOG_READ_MAX) {
			size_t want = sizeof(tmp);
			if (sh->draining) {
				if (pos >= lf->drain_end)
					break;
				if ((off_t)want > lf->drain_end - pos)
					want = (size_t)(lf->drain_end - pos);
			}
			n = read(lf->fd, tmp, want);
			if (n <= 0)
				break;
			lines_feed(&lf->lines, tmp, (size_t)n, t);
			total += (size_t)n;
			pos += n;
		}
		if (total >= SHELL_LOG_READ_MAX)
			more = true;
	}
	return more;
}

static void shell_on_poll(uv_timer_t *t)
{
	(void)shell_poll_logs(t->data);
}

/* ---- killing ------------------------------------------------------------------------- */

static void shell_kill(struct shell *sh, const char *msg)
{
	if (!sh->r || sh->killed)
		return;
	sh->killed = true;
	uv_timer_stop(&sh->t_timeout);
	uv_timer_stop(&sh->t_max);
	if (sh->c && msg) {
		_cleanup_free_ char *h = xasprintf("\n%s, attempting to kill\n", msg);
		cmd_add_text(sh->c, "header", h);
	}
	if (sh->sigterm_time > 0)
		proc_kill(sh->r, SIGTERM, sh->sigterm_time);
	else
		proc_kill(sh->r, sh->interrupt_sig, SHELL_KILL_GRACE);
}

static char *shell_argv_repr(char *const *argv);

static void shell_on_timeout(uv_timer_t *t)
{
	struct shell *sh = t->data;
	_cleanup_free_ char *a = shell_argv_repr(sh->argv);
	_cleanup_free_ char *msg = xasprintf(
		"command timed out: %g seconds without output running %s", sh->timeout, a);
	shell_kill(sh, msg);
}

static void shell_on_max_time(uv_timer_t *t)
{
	struct shell *sh = t->data;
	_cleanup_free_ char *a = shell_argv_repr(sh->argv);
	_cleanup_free_ char *msg =
		xasprintf("command timed out: %g seconds elapsed running %s", sh->max_time, a);
	shell_kill(sh, msg);
}

static void shell_interrupt(struct cmd *c, const char *why)
{
	struct shell *sh = c->priv;
	if (sh)
		shell_kill(sh, "command interrupted");
}

static void shell_abort(struct cmd *c)
{
	struct shell *sh = c->priv;
	if (sh && sh->r) {
		sh->killed = true;
		proc_kill(sh->r, SIGKILL, 0);
	}
}

static void shell_on_drain(uv_timer_t *t);

static void shell_pause(struct cmd *c, bool paused)
{
	struct shell *sh = c->priv;
	if (!sh)
		return;
	sh->paused = paused;
	if (!sh->r && !sh->draining)
		return;
	if (sh->r)
		proc_pause(sh->r, paused);
	/* logfiles are output too: their tailing waits with the pipes, so the
	 * send queue stays bounded by backpressure */
	if (paused)
		uv_timer_stop(&sh->t_poll);
	else if (sh->draining)
		uv_timer_start(&sh->t_poll, shell_on_drain, 0, 0);
	else if (sh->nlogs)
		uv_timer_start(&sh->t_poll, shell_on_poll, SHELL_LOG_POLL_MS, SHELL_LOG_POLL_MS);
}

/* ---- completion ------------------------------------------------------------------------ */

/* The logfiles are read to their end: the rest of the output, rc, elapsed, complete. */
static void shell_end(struct shell *sh)
{
	struct cmd *c = sh->c;
	sh->draining = false;
	lines_finish(&sh->out);
	lines_finish(&sh->err);
	for (size_t i = 0; i < sh->nlogs; i++)
		lines_finish(&sh->logs[i].lines);

	int rc;
	if (sh->gave_up) {
		cmd_add_text(c, "header", "SIGKILL failed to kill process\nusing fake rc=-1\n");
		rc = -1;
	} else if (sh->term_signal > 0) {
		if (!sh->on_done) {
			_cleanup_free_ char *h =
				xasprintf("process killed by signal %d\n", sh->term_signal);
			cmd_add_text(c, "header", h);
		}
		rc = -1;
	} else {
		rc = (int)sh->exit_status;
	}
	if (sh->on_done) {
		sh->on_done(c, rc);
		return;
	}
	cmd_add_int(c, "rc", rc);
	_cleanup_free_ char *el = xasprintf("elapsedTime=%0.6f\n", cmd_elapsed(c));
	cmd_add_text(c, "header", el);
	if (!c->interrupted)
		cmd_add_double(c, "elapsed", cmd_elapsed(c));
	cmd_finish(c, NULL);
}

/* Reads the logfiles in SHELL_LOG_READ_MAX steps, one per loop turn and
 * never while paused (the send queue stays bounded), then ends. */
static void shell_drain(struct shell *sh)
{
	if (shell_poll_logs(sh)) {
		if (!sh->paused)
			uv_timer_start(&sh->t_poll, shell_on_drain, 0, 0);
		return; /* else shell_pause() resumes it */
	}
	shell_end(sh);
}

static void shell_on_drain(uv_timer_t *t)
{
	struct shell *sh = t->data;
	if (sh->c && sh->draining)
		shell_drain(sh);
}

static void shell_on_done(void *ud, int64_t exit_status, int term_signal, bool gave_up)
{
	struct shell *sh = ud;
	sh->r = NULL;
	shell_stop_timers(sh);
	if (!sh->c || sh->c->finished)
		return; /* gone, or ended without it (worker_free) */
	sh->exit_status = exit_status;
	sh->term_signal = term_signal;
	sh->gave_up = gave_up;
	sh->draining = true;
	shell_drain(sh);
}

/* ---- formatting ----------------------------------------------------------------------- */

static bool shell_needs_quote(const char *s)
{
	if (!*s)
		return true;
	for (const char *p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./"
			    "-_",
			    *p))
			return true;
	return false;
}

/* Shell-quoted join, for the first header line; a stand-in if over 1 MiB. */
static char *shell_display(char *const *argv)
{
	struct buf b;
	buf_init(&b, 1u << 20);
	for (size_t i = 0; argv[i]; i++) {
		if (i && buf_addch(&b, ' ') < 0)
			goto full;
		if (!shell_needs_quote(argv[i])) {
			if (buf_adds(&b, argv[i]) < 0)
				goto full;
			continue;
		}
		if (buf_addch(&b, '\'') < 0)
			goto full;
		for (const char *p = argv[i]; *p; p++) {
			if (*p == '\'' ? buf_adds(&b, "'\"'\"'") < 0 : buf_addch(&b, *p) < 0)
				goto full;
		}
		if (buf_addch(&b, '\'') < 0)
			goto full;
	}
	return buf_detach(&b, NULL);
full:
	buf_release(&b);
	return xstrdup("(command line over 1 MiB, not shown)");
}

/* A Python-list-like rendering, for ' argv: [...]' and timeout messages; a
 * stand-in if over 1 MiB. */
static char *shell_argv_repr(char *const *argv)
{
	struct buf b;
	buf_init(&b, 1u << 20);
	if (buf_addch(&b, '[') < 0)
		goto full;
	for (size_t i = 0; argv && argv[i]; i++) {
		if (buf_adds(&b, i ? ", '" : "'") < 0)
			goto full;
		for (const char *p = argv[i]; *p; p++) {
			if ((*p == '\'' || *p == '\\') && buf_addch(&b, '\\') < 0)
				goto full;
			if (*p == '\n' ? buf_adds(&b, "\\n") < 0 : buf_addch(&b, *p) < 0)
				goto full;
		}
		if (buf_addch(&b, '\'') < 0)
			goto full;
	}
	if (buf_addch(&b, ']') < 0)
		goto full;
	return buf_detach(&b, NULL);
full:
	buf_release(&b);
	return xstrdup("[(argv over 1 MiB, not shown)]");
}

/* ---- starting --------------------------------------------------------------------------- */

static struct shell *shell_new(struct cmd *c)
{
	struct shell *sh = xcalloc(1, sizeof(*sh));
	sh->c = c;
	sh->want_stdout = sh->want_stderr = true;
	sh->interrupt_sig = SIGKILL;
	sh->paused = c->w->paused;
	size_t ml = c->w->settings.max_line_length;
	lines_init(&sh->out, ml, shell_emit_stdout, sh);
	lines_init(&sh->err, ml, shell_emit_stderr, sh);
	uv_timer_init(c->w->loop, &sh->t_timeout);
	uv_timer_init(c->w->loop, &sh->t_max);
	uv_timer_init(c->w->loop, &sh->t_poll);
	sh->t_timeout.data = sh->t_max.data = sh->t_poll.data = sh;
	sh->open_handles = 3;
	c->priv = sh;
	return sh;
}

/* Spawns sh->argv; on failure reports it as the command's result (on a later turn
 * is not needed: callers are inside start, and cmd_finish may run synchronously). */
static void shell_spawn(struct shell *sh, const char *stdin_data, size_t stdin_len)
{
	struct cmd *c = sh->c;
	struct proc_opts o = {
		.argv = sh->argv,
		.env = sh->env.v,
		.cwd = sh->workdir,
		.stdin_data = stdin_data,
		.stdin_len = stdin_len,
	};
	static const struct proc_ops ops = {shell_on_output, shell_on_done};
	int r = proc_start(c->w->loop, &o, &ops, sh, &sh->r);
	if (r < 0) {
		sh->r = NULL;
		_cleanup_free_ char *msg =
			xasprintf("cannot run '%s': %s\n", sh->argv[0], uv_strerror(r));
		cmd_add_text(c, "stderr", msg);
		if (sh->on_done) {
			sh->on_done(c, -1);
			return;
		}
		cmd_add_int(c, "rc", -1);
		cmd_add_double(c, "elapsed", cmd_elapsed(c));
		cmd_finish(c, NULL);
		return;
	}
	if (sh->timeout > 0) {
		uint64_t ms = (uint64_t)(sh->timeout * 1000);
		uv_timer_start(&sh->t_timeout, shell_on_timeout, ms, ms);
	}
	if (sh->max_time > 0)
		uv_timer_start(&sh->t_max, shell_on_max_time, (uint64_t)(sh->max_time * 1000), 0);
	if (sh->nlogs)
		uv_timer_start(&sh->t_poll, shell_on_poll, SHELL_LOG_POLL_MS, SHELL_LOG_POLL_MS);
}

static bool shell_num_arg(const msgpack_object *args, const char *key, double *ret)
{
	const msgpack_object *o = proto_map_get(args, key);
	if (!o)
		return false;
	if (o->type == MSGPACK_OBJECT_NIL) {
		*ret = 0;
		return true;
	}
	return proto_obj_double(o, ret);
}

static bool shell_bool_arg(const msgpack_object *args, const char *key, bool def)
{
	const msgpack_object *o = proto_map_get(args, key);
	bool b;
	int64_t i;
	if (proto_obj_bool(o, &b))
		return b;
	if (proto_obj_int(o, &i))
		return i != 0;
	return def;
}

/* command: array of str (or ["obfuscated", real, shown]) or one str for /bin/sh -c.
 * Fills the real argv and the argv shown in headers. */
static int shell_parse_command(const msgpack_object *cmd, char ***ret_argv, char ***ret_shown,
			       bool *ret_string)
{
	struct str s;
	if (proto_obj_str(cmd, &s)) {
		char **a = xcalloc(4, sizeof(char *)), **b = xcalloc(4, sizeof(char *));
		a[0] = xstrdup("/bin/sh");
		a[1] = xstrdup("-c");
		a[2] = xstrndup(s.p, s.len);
		b[0] = xstrdup("/bin/sh");
		b[1] = xstrdup("-c");
		b[2] = xstrndup(s.p, s.len);
		*ret_argv = a;
		*ret_shown = b;
		*ret_string = true;
		return 0;
	}
	if (!cmd || cmd->type != MSGPACK_OBJECT_ARRAY || cmd->via.array.size == 0)
		return -EINVAL;
	uint32_t n = cmd->via.array.size;
	char **a = xcalloc(n + 1, sizeof(char *)), **b = xcalloc(n + 1, sizeof(char *));
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *el = &cmd->via.array.ptr[i];
		if (proto_obj_str(el, &s)) {
			a[i] = xstrndup(s.p, s.len);
			b[i] = xstrndup(s.p, s.len);
		} else if (el->type == MSGPACK_OBJECT_ARRAY && el->via.array.size == 3 &&
			   proto_obj_str(&el->via.array.ptr[1], &s)) {
			a[i] = xstrndup(s.p, s.len);
			struct str shown;
			b[i] = proto_obj_str(&el->via.array.ptr[2], &shown)
				       ? xstrndup(shown.p, shown.len)
				       : xstrdup("********");
		} else {
			int64_t iv;
			double dv;
			if (proto_obj_int(el, &iv)) {
				a[i] = xasprintf("%lld", (long long)iv);
			} else if (proto_obj_double(el, &dv)) {
				a[i] = xasprintf("%g", dv);
			} else {
				shell_free_strv(a);
				shell_free_strv(b);
				return -EINVAL;
			}
			b[i] = xstrdup(a[i]);
		}
	}
	*ret_argv = a;
	*ret_shown = b;
	*ret_string = false;
	return 0;
}

static int shell_parse_logfiles(struct shell *sh, const msgpack_object *lfs)
{
	if (proto_obj_nil(lfs))
		return 0;
	if (lfs->type != MSGPACK_OBJECT_MAP)
		return -EINVAL;
	sh->logs = xcalloc(lfs->via.map.size ? lfs->via.map.size : 1, sizeof(*sh->logs));
	for (uint32_t i = 0; i < lfs->via.map.size; i++) {
		const msgpack_object *v = &lfs->via.map.ptr[i].val;
		char *name = proto_obj_strdup(&lfs->via.map.ptr[i].key);
		char *file = proto_obj_strdup(v);
		bool follow = false;
		if (!file && v->type == MSGPACK_OBJECT_MAP) {
			file = proto_obj_strdup(proto_map_get(v, "filename"));
			(void)proto_obj_bool(proto_map_get(v, "follow"), &follow);
		}
		if (!name || !file) {
			free(name);
			free(file);
			return -EINVAL;
		}
		struct shell_logfile *lf = &sh->logs[sh->nlogs++];
		lf->sh = sh;
		lf->name = name;
		lf->path = file[0] == '/' ? xstrdup(file) : xasprintf("%s/%s", sh->workdir, file);
		free(file);
		lf->follow = follow;
		lf->fd = -1;
		lf->drain_end = -1;
		lf->existed = stat(lf->path, &lf->st0) == 0;
		lines_init(&lf->lines, sh->c->w->settings.max_line_length, shell_emit_log, lf);
	}
	return 0;
}

static char *shell_logfiles_repr(const struct shell *sh)
{
	struct buf b;
	buf_init(&b, 1u << 16);
	if (buf_addch(&b, '{') < 0)
		goto full;
	for (size_t i = 0; i < sh->nlogs; i++)
		if (buf_addf(&b, "%s'%s': '%s'", i ? ", " : "", sh->logs[i].name,
			     sh->logs[i].path) < 0)
			goto full;
	if (buf_addch(&b, '}') < 0)
		goto full;
	return buf_detach(&b, NULL);
full:
	buf_release(&b);
	return xstrdup("{(over 64 KiB, not shown)}");
}

static int shell_start(struct cmd *c, const msgpack_object *args, char **ret_err)
{
	struct shell *sh = shell_new(c);
	char **shown = NULL;
	bool is_string = false;

	sh->workdir = cmd_arg_str(args, "workdir");
	if (!sh->workdir || sh->workdir[0] != '/') {
		*ret_err = xstrdup("shell: 'workdir' must be an absolute path");
		return -EINVAL;
	}
	if (shell_parse_command(proto_map_get(args, "command"), &sh->argv, &shown, &is_string) <
	    0) {
		*ret_err = xstrdup("shell: 'command' must be a string or a list of strings");
		return -EINVAL;
	}
	sh->want_stdout = shell_bool_arg(args, "want_stdout", true);
	sh->want_stderr = shell_bool_arg(args, "want_stderr", true);
	bool log_environ = shell_bool_arg(args, "logEnviron", true);
	sh->timeout = SHELL_DEFAULT_TIMEOUT;
	(void)shell_num_arg(args, "timeout", &sh->timeout);
	(void)shell_num_arg(args, "maxTime", &sh->max_time);
	(void)shell_num_arg(args, "sigtermTime", &sh->sigterm_time);
	_cleanup_free_ char *sig = cmd_arg_str(args, "interruptSignal");
	if (sig) {
		int s = runner_signal_from_name(sig);
		if (s < 0) {
			shell_free_strv(shown);
			*ret_err = xasprintf("shell: unknown interruptSignal '%s'", sig);
			return -EINVAL;
		}
		sh->interrupt_sig = s;
	}

	/* environment: the worker's, then the step's rules, then PWD */
	struct env base;
	env_init(&base, environ);
	env_init(&sh->env, environ);
	const msgpack_object *envmap = proto_map_get(args, "env");
	int er = proto_obj_nil(envmap) ? 0 : env_apply(&sh->env, envmap, &base);
	if (er < 0) {
		env_release(&base);
		shell_free_strv(shown);
		*ret_err = xstrdup(er == -E2BIG ? "shell: an 'env' value is over 1 MiB"
						: "shell: 'env' must be a map of strings");
		return er;
	}
	env_release(&base);
	env_set(&sh->env, "PWD", sh->workdir);

	if (shell_parse_logfiles(sh, proto_map_get(args, "logfiles")) < 0) {
		shell_free_strv(shown);
		*ret_err = xstrdup("shell: bad 'logfiles'");
		return -EINVAL;
	}
	/* borrowed from args, which outlive this call; proc_start() copies it */
	const char *stdin_data = NULL;
	size_t stdin_len = 0;
	struct str sin;
	if (proto_obj_str(proto_map_get(args, "initial_stdin"), &sin)) {
		stdin_data = sin.len ? sin.p : "";
		stdin_len = sin.len;
	}

	/* headers, as Buildbot's worker writes them */
	_cleanup_free_ char *display = is_string ? xstrdup(shown[2]) : shell_display(shown);
	_cleanup_free_ char *argv_repr = shell_argv_repr(shown);
	struct buf h;
	buf_init(&h, 1u << 22);
	int hr = buf_addf(&h, "%s\n in dir %s", display, sh->workdir);
	if (hr >= 0 && sh->timeout > 0)
		hr = buf_addf(&h, " (timeout %g %s)", sh->timeout,
			      sh->timeout == 1 ? "sec" : "secs");
	if (hr >= 0 && sh->max_time > 0)
		hr = buf_addf(&h, " (maxTime %g %s)", sh->max_time,
			      sh->max_time == 1 ? "sec" : "secs");
	_cleanup_free_ char *lfr = shell_logfiles_repr(sh);
	if (hr >= 0)
		hr = buf_addf(&h, "\n watching logfiles %s\n argv: %s\n", lfr, argv_repr);
	if (hr >= 0 && log_environ) {
		struct env sorted;
		env_init(&sorted, sh->env.v);
		env_sort(&sorted);
		hr = buf_adds(&h, " environment:\n");
		for (size_t i = 0; hr >= 0 && i < sorted.n; i++)
			hr = buf_addf(&h, "  %s\n", sorted.v[i]);
		env_release(&sorted);
	}
	if (hr >= 0 && stdin_data)
		hr = buf_addf(&h, " writing %zu bytes to stdin\n", stdin_len);
	if (hr >= 0)
		hr = buf_adds(&h, " using PTY: False\n");
	if (hr < 0) {
		/* the buffer emptied itself: say so rather than show a part */
		buf_reset(&h);
		if (buf_addf(&h, "%.1000s\n (header over 4 MiB, not shown)\n", display) < 0)
			buf_reset(&h); /* not reached: ~1 KiB */
	}
	shell_free_strv(shown);

	int r = fsutil_mkdir_p(sh->workdir, 0777);
	if (r < 0) {
		cmd_add_text(c, "header", h.ptr);
		buf_release(&h);
		_cleanup_free_ char *msg =
			xasprintf("cannot create workdir '%s': %s\n", sh->workdir, strerror(-r));
		cmd_add_text(c, "stderr", msg);
		cmd_add_int(c, "rc", -1);
		cmd_finish(c, NULL);
		return 0;
	}
	cmd_add_text(c, "header", h.ptr);
	buf_release(&h);
	shell_spawn(sh, stdin_data, stdin_len);
	return 0;
}

const struct cmd_type cmd_shell = {
	.name = "shell",
	.start = shell_start,
	.interrupt = shell_interrupt,
	.pause = shell_pause,
	.abort = shell_abort,
	.free_priv = shell_release,
};

/* ---- plain runs for other commands ------------------------------------------------------ */

int cmd_spawn_simple(struct cmd *c, char **argv, const char *cwd, double timeout_s,
		     void (*on_done)(struct cmd *c, int rc))
{
	struct shell *sh = c->priv;
	if (!sh) {
		sh = shell_new(c);
	} else {
		/* a second run for the same command (rmdir's retry): reuse the shell */
		shell_free_strv(sh->argv);
		env_release(&sh->env);
		free(sh->workdir);
		sh->killed = false;
		sh->draining = false;
	}
	size_t n = 0;
	while (argv[n])
		n++;
	sh->argv = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		sh->argv[i] = xstrdup(argv[i]);
	env_init(&sh->env, environ);
	sh->workdir = xstrdup(cwd ? cwd : "/");
	sh->timeout = timeout_s;
	sh->on_done = on_done;
	_cleanup_free_ char *display = shell_display(sh->argv);
	_cleanup_free_ char *hdr = xasprintf("%s\n in dir %s\n", display, sh->workdir);
	cmd_add_text(c, "header", hdr);
	shell_spawn(sh, NULL, 0);
	return 0;
}

void cmd_simple_interrupt(struct cmd *c, const char *why)
{
	shell_interrupt(c, why);
}
void cmd_simple_pause(struct cmd *c, bool paused)
{
	shell_pause(c, paused);
}
void cmd_simple_abort(struct cmd *c)
{
	shell_abort(c);
}
void cmd_simple_release(struct cmd *c)
{
	shell_release(c);
}
