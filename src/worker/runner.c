/*
 * kiln-worker's process runner (runner.h).  One runner per shell-like
 * command: a detached (setsid) child with piped stdout/stderr on the worker's
 * libuv loop.  The runner owns its handles and frees itself once done() has
 * been delivered and every handle is closed.
 */
#include "worker/runner.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/str.h"
#include "common/xalloc.h"

#define RUNNER_DRAIN_MS 2000      /* leader gone, children still hold the pipes */
#define RUNNER_KILL_DRAIN_MS 300  /* the same after we killed the group */
#define RUNNER_GIVEUP_MS 5000     /* SIGKILL sent, leader still not reaped */
#define RUNNER_READ_CHUNK (64u << 10)

enum runner_kill_stage { KILL_NONE, KILL_ESCALATE, KILL_GIVEUP };

struct runner {
	uv_loop_t *loop;
	uv_process_t proc;
	uv_pipe_t out, err, in;
	uv_timer_t kill_timer, drain_timer;
	uv_write_t wreq;
	char *stdin_copy; /* owned */
	struct runner_ops ops;
	void *ud;
	pid_t pid;
	int open_handles;
	bool proc_open, out_open, err_open, in_open;
	bool exited, paused, killing, done_sent, drain_armed;
	enum runner_kill_stage stage;
	int64_t exit_status;
	int term_signal;
	unsigned drain_ms;
	uint64_t drain_left_ms; /* drain time not yet used (the clock stops while paused) */
	uint64_t drain_started;
	struct runner *next_active; /* list of live leaders, for the reaper */
	char rbuf[RUNNER_READ_CHUNK];
};

static struct runner *runner_active;

static void runner_active_remove(struct runner *r)
{
	for (struct runner **p = &runner_active; *p; p = &(*p)->next_active)
		if (*p == r) {
			*p = r->next_active;
			break;
		}
	r->next_active = NULL;
}

static void runner_maybe_free(struct runner *r)
{
	if (r->open_handles == 0 && r->done_sent) {
		free(r->stdin_copy);
		free(r);
	}
}

static void runner_on_close(uv_handle_t *h)
{
	struct runner *r = h->data;
	r->open_handles--;
	runner_maybe_free(r);
}

static void runner_close(struct runner *r, uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, runner_on_close);
}

static void runner_close_pipes(struct runner *r)
{
	if (r->out_open) {
		r->out_open = false;
		runner_close(r, (uv_handle_t *)&r->out);
	}
	if (r->err_open) {
		r->err_open = false;
		runner_close(r, (uv_handle_t *)&r->err);
	}
	if (r->in_open) {
		r->in_open = false;
		runner_close(r, (uv_handle_t *)&r->in);
	}
}

static void runner_deliver(struct runner *r, bool gave_up)
{
	if (r->done_sent)
		return;
	r->done_sent = true;
	runner_close_pipes(r);
	uv_timer_stop(&r->drain_timer);
	uv_timer_stop(&r->kill_timer);
	runner_close(r, (uv_handle_t *)&r->drain_timer);
	runner_close(r, (uv_handle_t *)&r->kill_timer);
	/* the handles close on a later turn, so r is still valid after done() */
	r->open_handles++;
	if (r->ops.done)
		r->ops.done(r->ud, r->exit_status, r->term_signal, gave_up);
	r->open_handles--;
	runner_maybe_free(r);
}

static void runner_maybe_done(struct runner *r)
{
	if (r->exited && !r->out_open && !r->err_open)
		runner_deliver(r, false);
}

static void runner_on_drain(uv_timer_t *t)
{
	struct runner *r = t->data;
	r->drain_armed = false;
	runner_close_pipes(r);
	runner_maybe_done(r);
}

static void runner_drain_start(struct runner *r)
{
	if (r->drain_armed || r->paused || r->done_sent || !r->exited)
		return;
	r->drain_armed = true;
	r->drain_started = uv_now(r->loop);
	uv_timer_start(&r->drain_timer, runner_on_drain, r->drain_left_ms, 0);
}

static void runner_drain_pause(struct runner *r)
{
	if (!r->drain_armed)
		return;
	uint64_t used = uv_now(r->loop) - r->drain_started;
	r->drain_left_ms = used >= r->drain_left_ms ? 0 : r->drain_left_ms - used;
	uv_timer_stop(&r->drain_timer);
	r->drain_armed = false;
}

static void runner_on_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct runner *r = p->data;
	r->exited = true;
	r->exit_status = exit_status;
	r->term_signal = term_signal;
	runner_active_remove(r);
	r->proc_open = false;
	runner_close(r, (uv_handle_t *)&r->proc);
	if (r->killing) {
		/* lingering members of the group die with the leader */
		(void)uv_kill(-r->pid, SIGKILL);
		if (r->drain_left_ms > RUNNER_KILL_DRAIN_MS)
			r->drain_left_ms = RUNNER_KILL_DRAIN_MS;
	}
	if (r->stage != KILL_NONE) {
		uv_timer_stop(&r->kill_timer);
		r->stage = KILL_NONE;
	}
	if (r->done_sent) {
		/* we had given up on it; it finally went */
		runner_maybe_free(r);
		return;
	}
	runner_maybe_done(r);
	if (!r->done_sent)
		runner_drain_start(r);
}

static void runner_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct runner *r = h->data;
	*buf = uv_buf_init(r->rbuf, sizeof(r->rbuf));
}

static void runner_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct runner *r = s->data;
	int stream = s == (uv_stream_t *)&r->out ? RUNNER_STDOUT : RUNNER_STDERR;
	if (nread > 0) {
		if (!r->done_sent && r->ops.output)
			r->ops.output(r->ud, stream, buf->base, (size_t)nread);
		return;
	}
	if (nread == 0)
		return;
	/* EOF or error: this stream is over */
	if (stream == RUNNER_STDOUT && r->out_open) {
		r->out_open = false;
		runner_close(r, (uv_handle_t *)&r->out);
	} else if (stream == RUNNER_STDERR && r->err_open) {
		r->err_open = false;
		runner_close(r, (uv_handle_t *)&r->err);
	}
	runner_maybe_done(r);
}

static void runner_on_stdin_written(uv_write_t *w, int status)
{
	struct runner *r = w->data;
	if (r->in_open) {
		r->in_open = false;
		runner_close(r, (uv_handle_t *)&r->in);
	}
}

static void runner_on_kill_timer(uv_timer_t *t)
{
	struct runner *r = t->data;
	if (r->exited)
		return;
	if (r->stage == KILL_ESCALATE) {
		(void)uv_kill(-r->pid, SIGKILL);
		(void)uv_kill(r->pid, SIGKILL);
		r->stage = KILL_GIVEUP;
		uv_timer_start(&r->kill_timer, runner_on_kill_timer, RUNNER_GIVEUP_MS, 0);
	} else if (r->stage == KILL_GIVEUP) {
		r->stage = KILL_NONE;
		runner_deliver(r, true);
	}
}

int runner_start(uv_loop_t *loop, const struct runner_opts *o, const struct runner_ops *ops,
		 void *ud, struct runner **ret_runner)
{
	struct runner *r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->ops = *ops;
	r->ud = ud;
	r->drain_ms = o->drain_ms ? o->drain_ms : RUNNER_DRAIN_MS;
	r->drain_left_ms = r->drain_ms;

	uv_pipe_init(loop, &r->out, 0);
	uv_pipe_init(loop, &r->err, 0);
	r->out.data = r->err.data = r->in.data = r->proc.data = r;
	r->out_open = r->err_open = true;
	r->open_handles = 2;
	if (o->stdin_data) {
		uv_pipe_init(loop, &r->in, 0);
		r->in_open = true;
		r->open_handles++;
	}

	uv_stdio_container_t io[3];
	if (o->stdin_data) {
		io[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
		io[0].data.stream = (uv_stream_t *)&r->in;
	} else {
		io[0].flags = UV_IGNORE;
	}
	io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[1].data.stream = (uv_stream_t *)&r->out;
	io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[2].data.stream = (uv_stream_t *)&r->err;

	uv_process_options_t po = {
		.exit_cb = runner_on_exit,
		.file = o->argv[0],
		.args = o->argv,
		.env = o->env,
		.cwd = o->cwd,
		.flags = UV_PROCESS_DETACHED, /* setsid: its own process group */
		.stdio_count = 3,
		.stdio = io,
	};
	int rc = uv_spawn(loop, &r->proc, &po);
	r->open_handles++; /* the process handle needs closing either way */
	if (rc < 0) {
		r->done_sent = true; /* no callbacks */
		runner_close_pipes(r);
		runner_close(r, (uv_handle_t *)&r->proc);
		return rc;
	}
	r->proc_open = true;
	r->pid = r->proc.pid;
	r->next_active = runner_active;
	runner_active = r;

	uv_timer_init(loop, &r->kill_timer);
	uv_timer_init(loop, &r->drain_timer);
	r->kill_timer.data = r->drain_timer.data = r;
	r->open_handles += 2;

	uv_read_start((uv_stream_t *)&r->out, runner_alloc, runner_on_read);
	uv_read_start((uv_stream_t *)&r->err, runner_alloc, runner_on_read);
	if (o->stdin_data) {
		r->stdin_copy = xmemdup(o->stdin_data, o->stdin_len ? o->stdin_len : 1);
		uv_buf_t b = uv_buf_init(r->stdin_copy, (unsigned)o->stdin_len);
		r->wreq.data = r;
		if (uv_write(&r->wreq, (uv_stream_t *)&r->in, &b, 1, runner_on_stdin_written) < 0) {
			r->in_open = false;
			runner_close(r, (uv_handle_t *)&r->in);
		}
	}
	*ret_runner = r;
	return 0;
}

pid_t runner_pid(const struct runner *r)
{
	return r->pid;
}

bool runner_exited(const struct runner *r)
{
	return r->exited;
}

void runner_kill(struct runner *r, int sig, double grace_s)
{
	if (r->done_sent)
		return;
	r->killing = true;
	if (r->drain_left_ms > RUNNER_KILL_DRAIN_MS)
		r->drain_left_ms = RUNNER_KILL_DRAIN_MS;
	(void)uv_kill(-r->pid, sig);
	if (r->exited) {
		/* only stragglers are left: make sure they go, and stop waiting soon */
		(void)uv_kill(-r->pid, SIGKILL);
		if (r->drain_armed) {
			runner_drain_pause(r);
			runner_drain_start(r);
		}
		return;
	}
	(void)uv_kill(r->pid, sig); /* in case the leader left its group */
	if (r->stage == KILL_GIVEUP)
		return; /* SIGKILL already on its way */
	if (sig == SIGKILL) {
		r->stage = KILL_GIVEUP;
		uv_timer_start(&r->kill_timer, runner_on_kill_timer, RUNNER_GIVEUP_MS, 0);
	} else {
		if (grace_s < 0.1)
			grace_s = 0.1;
		r->stage = KILL_ESCALATE;
		uv_timer_start(&r->kill_timer, runner_on_kill_timer, (uint64_t)(grace_s * 1000), 0);
	}
}

void runner_abandon(struct runner *r)
{
	memset(&r->ops, 0, sizeof(r->ops));
	if (r->done_sent)
		return;
	runner_pause(r, false);
	runner_kill(r, SIGKILL, 0);
	if (r->exited)
		runner_deliver(r, false);
}

void runner_pause(struct runner *r, bool paused)
{
	if (r->paused == paused || r->done_sent)
		return;
	r->paused = paused;
	if (paused) {
		if (r->out_open)
			uv_read_stop((uv_stream_t *)&r->out);
		if (r->err_open)
			uv_read_stop((uv_stream_t *)&r->err);
		runner_drain_pause(r);
	} else {
		if (r->out_open)
			uv_read_start((uv_stream_t *)&r->out, runner_alloc, runner_on_read);
		if (r->err_open)
			uv_read_start((uv_stream_t *)&r->err, runner_alloc, runner_on_read);
		runner_drain_start(r);
	}
}

/* ---- orphan reaper ----------------------------------------------------------- */

static uv_signal_t runner_sigchld;
static bool runner_reaper_on;

static bool runner_is_active(pid_t pid)
{
	for (struct runner *r = runner_active; r; r = r->next_active)
		if (r->pid == pid)
			return true;
	return false;
}

int runner_reap_orphans(void)
{
	/* children libuv does not know: only those may be waited for here */
	int reaped = 0;
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300];
		snprintf(path, sizeof(path), "/proc/self/task/%.255s/children", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		long pid;
		while (fscanf(f, "%ld", &pid) == 1) {
			if (pid <= 0 || runner_is_active((pid_t)pid))
				continue;
			int st;
			if (waitpid((pid_t)pid, &st, WNOHANG) == (pid_t)pid)
				reaped++;
		}
		fclose(f);
	}
	closedir(d);
	return reaped;
}

static void runner_on_sigchld(uv_signal_t *s, int signum)
{
	(void)runner_reap_orphans();
}

int runner_reaper_start(uv_loop_t *loop)
{
	if (runner_reaper_on)
		return 0;
	int r = uv_signal_init(loop, &runner_sigchld);
	if (r < 0)
		return r;
	r = uv_signal_start(&runner_sigchld, runner_on_sigchld, SIGCHLD);
	if (r < 0) {
		uv_close((uv_handle_t *)&runner_sigchld, NULL);
		return r;
	}
	uv_unref((uv_handle_t *)&runner_sigchld);
	runner_reaper_on = true;
	return 0;
}

void runner_reaper_stop(void)
{
	if (!runner_reaper_on)
		return;
	runner_reaper_on = false;
	uv_close((uv_handle_t *)&runner_sigchld, NULL);
}

int runner_signal_from_name(const char *name)
{
	static const struct {
		const char *n;
		int sig;
	} names[] = {
		{"KILL", SIGKILL}, {"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},
		{"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"ABRT", SIGABRT},
	};
	if (!name || !*name)
		return -1;
	if (name[0] >= '0' && name[0] <= '9') {
		long long v;
		if (str_to_i64(name, &v) < 0 || v <= 0 || v >= 65)
			return -1;
		return (int)v;
	}
	if (strncmp(name, "SIG", 3) == 0)
		name += 3;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i].n, name) == 0)
			return names[i].sig;
	return -1;
}
