/*
 * Child processes on a libuv loop (proc.h), shared by kiln-worker's shell
 * commands and the master's VCS pollers: a detached (setsid) child with piped
 * stdout/stderr, signal escalation on its group, a bounded drain after the
 * leader exits, and capped capture of what it writes.  A proc owns its
 * handles and frees itself once done() has been delivered and every handle
 * is closed.
 */
#include "common/proc.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/xalloc.h"

#define PROC_DRAIN_MS 2000     /* leader gone, children still hold the pipes */
#define PROC_KILL_DRAIN_MS 300 /* the same after we killed the group */
#define PROC_GIVEUP_MS 5000    /* SIGKILL sent, leader still not reaped */
#define PROC_READ_CHUNK (64u << 10)

enum proc_kill_stage { PROC_KILL_NONE, PROC_KILL_ESCALATE, PROC_KILL_GIVEUP };

struct proc {
	uv_loop_t *loop;
	uv_process_t proc;
	uv_pipe_t out, err, in;
	uv_timer_t kill_timer, drain_timer;
	uv_write_t wreq;
	char *stdin_copy; /* owned */
	struct proc_ops ops;
	void *ud;
	pid_t pid;
	int open_handles;
	bool proc_open, out_open, err_open, in_open;
	bool exited, paused, killing, done_sent, drain_armed;
	bool refused; /* output() refused more: the group was killed, the rest is dropped */
	enum proc_kill_stage stage;
	int64_t exit_status;
	int term_signal;
	unsigned drain_ms;
	uint64_t drain_left_ms; /* drain time not yet used (the clock stops while paused) */
	uint64_t drain_started;
	struct proc *next_active; /* list of live leaders, for the reaper */
	char rbuf[PROC_READ_CHUNK];
};

static struct proc *proc_active;

static void proc_active_remove(struct proc *r)
{
	for (struct proc **p = &proc_active; *p; p = &(*p)->next_active)
		if (*p == r) {
			*p = r->next_active;
			break;
		}
	r->next_active = NULL;
}

static void proc_maybe_free(struct proc *r)
{
	if (r->open_handles == 0 && r->done_sent) {
		free(r->stdin_copy);
		free(r);
	}
}

static void proc_on_close(uv_handle_t *h)
{
	struct proc *r = h->data;
	r->open_handles--;
	proc_maybe_free(r);
}

static void proc_close(struct proc *r, uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, proc_on_close);
}

static void proc_close_pipes(struct proc *r)
{
	if (r->out_open) {
		r->out_open = false;
		proc_close(r, (uv_handle_t *)&r->out);
	}
	if (r->err_open) {
		r->err_open = false;
		proc_close(r, (uv_handle_t *)&r->err);
	}
	if (r->in_open) {
		r->in_open = false;
		proc_close(r, (uv_handle_t *)&r->in);
	}
}

static void proc_deliver(struct proc *r, bool gave_up)
{
	if (r->done_sent)
		return;
	r->done_sent = true;
	proc_close_pipes(r);
	uv_timer_stop(&r->drain_timer);
	uv_timer_stop(&r->kill_timer);
	proc_close(r, (uv_handle_t *)&r->drain_timer);
	proc_close(r, (uv_handle_t *)&r->kill_timer);
	/* the handles close on a later turn, so r is still valid after done() */
	r->open_handles++;
	if (r->ops.done)
		r->ops.done(r->ud, r->exit_status, r->term_signal, gave_up);
	r->open_handles--;
	proc_maybe_free(r);
}

static void proc_maybe_done(struct proc *r)
{
	if (r->exited && !r->out_open && !r->err_open)
		proc_deliver(r, false);
}

static void proc_on_drain(uv_timer_t *t)
{
	struct proc *r = t->data;
	r->drain_armed = false;
	proc_close_pipes(r);
	proc_maybe_done(r);
}

static void proc_drain_start(struct proc *r)
{
	if (r->drain_armed || r->paused || r->done_sent || !r->exited)
		return;
	r->drain_armed = true;
	r->drain_started = uv_now(r->loop);
	uv_timer_start(&r->drain_timer, proc_on_drain, r->drain_left_ms, 0);
}

static void proc_drain_pause(struct proc *r)
{
	if (!r->drain_armed)
		return;
	uint64_t used = uv_now(r->loop) - r->drain_started;
	r->drain_left_ms = used >= r->drain_left_ms ? 0 : r->drain_left_ms - used;
	uv_timer_stop(&r->drain_timer);
	r->drain_armed = false;
}

static void proc_on_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct proc *r = p->data;
	r->exited = true;
	r->exit_status = exit_status;
	r->term_signal = term_signal;
	proc_active_remove(r);
	r->proc_open = false;
	proc_close(r, (uv_handle_t *)&r->proc);
	if (r->killing) {
		/* lingering members of the group die with the leader */
		(void)uv_kill(-r->pid, SIGKILL);
		if (r->drain_left_ms > PROC_KILL_DRAIN_MS)
			r->drain_left_ms = PROC_KILL_DRAIN_MS;
	}
	if (r->stage != PROC_KILL_NONE) {
		uv_timer_stop(&r->kill_timer);
		r->stage = PROC_KILL_NONE;
	}
	if (r->done_sent) {
		/* we had given up on it; it finally went */
		proc_maybe_free(r);
		return;
	}
	proc_maybe_done(r);
	if (!r->done_sent)
		proc_drain_start(r);
}

static void proc_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct proc *r = h->data;
	*buf = uv_buf_init(r->rbuf, sizeof(r->rbuf));
}

static void proc_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct proc *r = s->data;
	int stream = s == (uv_stream_t *)&r->out ? PROC_STDOUT : PROC_STDERR;
	if (nread > 0) {
		if (!r->done_sent && !r->refused && r->ops.output &&
		    r->ops.output(r->ud, stream, buf->base, (size_t)nread) < 0) {
			r->refused = true;
			proc_kill(r, SIGKILL, 0);
		}
		return;
	}
	if (nread == 0)
		return;
	/* EOF or error: this stream is over */
	if (stream == PROC_STDOUT && r->out_open) {
		r->out_open = false;
		proc_close(r, (uv_handle_t *)&r->out);
	} else if (stream == PROC_STDERR && r->err_open) {
		r->err_open = false;
		proc_close(r, (uv_handle_t *)&r->err);
	}
	proc_maybe_done(r);
}

static void proc_on_stdin_written(uv_write_t *w, int status)
{
	(void)status; /* a child that does not read its stdin is not an error */
	struct proc *r = w->data;
	if (r->in_open) {
		r->in_open = false;
		proc_close(r, (uv_handle_t *)&r->in);
	}
}

static void proc_on_kill_timer(uv_timer_t *t)
{
	struct proc *r = t->data;
	if (r->exited)
		return;
	if (r->stage == PROC_KILL_ESCALATE) {
		(void)uv_kill(-r->pid, SIGKILL);
		(void)uv_kill(r->pid, SIGKILL);
		r->stage = PROC_KILL_GIVEUP;
		uv_timer_start(&r->kill_timer, proc_on_kill_timer, PROC_GIVEUP_MS, 0);
	} else if (r->stage == PROC_KILL_GIVEUP) {
		r->stage = PROC_KILL_NONE;
		proc_deliver(r, true);
	}
}

int proc_start(uv_loop_t *loop, const struct proc_opts *o, const struct proc_ops *ops, void *ud,
	       struct proc **ret_proc)
{
	struct proc *r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->ops = *ops;
	r->ud = ud;
	r->drain_ms = o->drain_ms ? o->drain_ms : PROC_DRAIN_MS;
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
		.exit_cb = proc_on_exit,
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
		proc_close_pipes(r);
		proc_close(r, (uv_handle_t *)&r->proc);
		return rc;
	}
	r->proc_open = true;
	r->pid = r->proc.pid;
	r->next_active = proc_active;
	proc_active = r;

	uv_timer_init(loop, &r->kill_timer);
	uv_timer_init(loop, &r->drain_timer);
	r->kill_timer.data = r->drain_timer.data = r;
	r->open_handles += 2;

	uv_read_start((uv_stream_t *)&r->out, proc_alloc, proc_on_read);
	uv_read_start((uv_stream_t *)&r->err, proc_alloc, proc_on_read);
	if (o->stdin_data) {
		r->stdin_copy = xmalloc(o->stdin_len + 1); /* never a 0-byte allocation */
		memcpy(r->stdin_copy, o->stdin_data, o->stdin_len);
		uv_buf_t b = uv_buf_init(r->stdin_copy, (unsigned)o->stdin_len);
		r->wreq.data = r;
		if (uv_write(&r->wreq, (uv_stream_t *)&r->in, &b, 1, proc_on_stdin_written) < 0) {
			r->in_open = false;
			proc_close(r, (uv_handle_t *)&r->in);
		}
	}
	*ret_proc = r;
	return 0;
}

pid_t proc_pid(const struct proc *r)
{
	return r->pid;
}

bool proc_exited(const struct proc *r)
{
	return r->exited;
}

void proc_kill(struct proc *r, int sig, double grace_s)
{
	if (r->done_sent)
		return;
	r->killing = true;
	if (r->drain_left_ms > PROC_KILL_DRAIN_MS)
		r->drain_left_ms = PROC_KILL_DRAIN_MS;
	(void)uv_kill(-r->pid, sig);
	if (r->exited) {
		/* only stragglers are left: make sure they go, and stop waiting soon */
		(void)uv_kill(-r->pid, SIGKILL);
		if (r->drain_armed) {
			proc_drain_pause(r);
			proc_drain_start(r);
		}
		return;
	}
	(void)uv_kill(r->pid, sig); /* in case the leader left its group */
	if (r->stage == PROC_KILL_GIVEUP)
		return; /* SIGKILL already on its way */
	if (sig == SIGKILL) {
		r->stage = PROC_KILL_GIVEUP;
		uv_timer_start(&r->kill_timer, proc_on_kill_timer, PROC_GIVEUP_MS, 0);
	} else {
		if (grace_s < 0.1)
			grace_s = 0.1;
		r->stage = PROC_KILL_ESCALATE;
		uv_timer_start(&r->kill_timer, proc_on_kill_timer, (uint64_t)(grace_s * 1000), 0);
	}
}

void proc_abandon(struct proc *r)
{
	memset(&r->ops, 0, sizeof(r->ops));
	if (r->done_sent)
		return;
	proc_pause(r, false);
	proc_kill(r, SIGKILL, 0);
	if (r->exited)
		proc_deliver(r, false);
}

void proc_pause(struct proc *r, bool paused)
{
	if (r->paused == paused || r->done_sent)
		return;
	r->paused = paused;
	if (paused) {
		if (r->out_open)
			uv_read_stop((uv_stream_t *)&r->out);
		if (r->err_open)
			uv_read_stop((uv_stream_t *)&r->err);
		proc_drain_pause(r);
	} else {
		if (r->out_open)
			uv_read_start((uv_stream_t *)&r->out, proc_alloc, proc_on_read);
		if (r->err_open)
			uv_read_start((uv_stream_t *)&r->err, proc_alloc, proc_on_read);
		proc_drain_start(r);
	}
}

bool proc_is_live(pid_t pid)
{
	for (struct proc *r = proc_active; r; r = r->next_active)
		if (r->pid == pid)
			return true;
	return false;
}

/* ---- capped capture ------------------------------------------------------------ */

void proc_capture_init(struct proc_capture *c, size_t out_max, size_t err_max)
{
	buf_init(&c->out, out_max);
	buf_init(&c->err, err_max);
	c->err_cut = false;
}

void proc_capture_reset(struct proc_capture *c)
{
	buf_reset(&c->out);
	buf_reset(&c->err);
	c->err_cut = false;
}

void proc_capture_release(struct proc_capture *c)
{
	buf_release(&c->out);
	buf_release(&c->err);
	c->err_cut = false;
}

int proc_capture_add(struct proc_capture *c, int stream, const char *data, size_t len)
{
	if (stream == PROC_STDOUT) {
		/* past the cap the buf empties itself and refuses every later
		 * append: nothing partial to misuse */
		return buf_add(&c->out, data, len) < 0 ? KILN_ETOOBIG : 0;
	}
	/* stderr: the head is kept (the error comes first), the rest dropped */
	size_t room = buf_room(&c->err);
	if (len > room) {
		c->err_cut = true;
		len = room;
	}
	int r = len ? buf_add(&c->err, data, len) : 0;
	assert(r == 0); /* len fits the room */
	(void)r;
	return 0;
}
