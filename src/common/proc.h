/*
 * Child processes on a libuv loop, for kiln-worker's commands and the
 * master's VCS pollers: uv_spawn in a new session (so the whole process group
 * can be signalled), stdout/stderr read on the loop with pause/resume for
 * backpressure, initial stdin, signal escalation, a bounded drain after the
 * leader exits so children holding the pipes cannot keep a run alive, and a
 * capped capture of the output (proc_capture) for callers that want it whole.
 * Everything runs on the loop given to proc_start(); nothing blocks.
 */
#ifndef KILN_COMMON_PROC_H
#define KILN_COMMON_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common/buf.h"

enum { PROC_STDOUT = 1, PROC_STDERR = 2 };

struct proc_ops {
	/*
	 * Output read from the child; data is only valid during the call.
	 * Returning < 0 refuses the rest (a cap was hit): the process group is
	 * SIGKILLed and nothing more is delivered; done() still follows.
	 */
	int (*output)(void *ud, int stream, const char *data, size_t len);
	/*
	 * Called exactly once, on a later loop turn than proc_start(): the
	 * leader has exited and its pipes are closed or were given up on after
	 * the drain time.  term_signal > 0 if it was killed by that signal (then
	 * exit_status is meaningless); gave_up if it did not die even after
	 * SIGKILL (it is left to the reaper).  The proc is freed after this
	 * returns: do not use it again.
	 */
	void (*done)(void *ud, int64_t exit_status, int term_signal, bool gave_up);
};

struct proc_opts {
	char **argv; /* argv[0] is looked up in env's PATH */
	char **env;  /* NULL-terminated "NAME=value" */
	const char *cwd;
	const char *stdin_data; /* NULL: stdin is /dev/null */
	size_t stdin_len;
	unsigned drain_ms; /* after the leader exits; 0 = default (2000) */
};

struct proc;

/* Starts the process.  Returns 0 and *ret_proc, or a negative libuv/errno
 * code (nothing started, no callbacks). */
int proc_start(uv_loop_t *loop, const struct proc_opts *o, const struct proc_ops *ops, void *ud,
	       struct proc **ret_proc);
pid_t proc_pid(const struct proc *r);
bool proc_exited(const struct proc *r);
/*
 * Signals the process group with sig.  Unless sig is SIGKILL, SIGKILL follows
 * after grace_s seconds if the leader is still alive.  If even SIGKILL does
 * not end it within a few seconds, done() is called with gave_up.  After a
 * kill, the drain after exit is short and the group is SIGKILLed once the
 * leader is gone, so lingering children die too.
 */
void proc_kill(struct proc *r, int sig, double grace_s);
/* The caller no longer wants callbacks (its owner is gone): the group is
 * SIGKILLed and the proc frees itself once the process is reaped. */
void proc_abandon(struct proc *r);
/* Stops / restarts reading the child's output (and the drain clock). */
void proc_pause(struct proc *r, bool paused);
/* True while pid is the leader of a proc libuv has not reaped yet: an orphan
 * reaper must not wait for it. */
bool proc_is_live(pid_t pid);

/*
 * Capped capture for a proc_ops.output: stdout is kept whole or not at all
 * (past out_max the buffer's sticky overflow empties it, proc_capture_out_over()
 * says so, and proc_capture_add returns KILN_ETOOBIG, which the output callback
 * returns so the tool is killed);
 * stderr keeps its first err_max bytes (the error comes first) and sets
 * err_cut when more was dropped.
 */
struct proc_capture {
	struct buf out, err;
	bool err_cut;
};
void proc_capture_init(struct proc_capture *c, size_t out_max, size_t err_max);
/* Empties both for the next run (keeps the memory). */
void proc_capture_reset(struct proc_capture *c);
/* Frees the memory; the capture stays usable (empty). */
void proc_capture_release(struct proc_capture *c);
/* True once stdout passed out_max (its contents are gone). */
static inline bool proc_capture_out_over(const struct proc_capture *c)
{
	return buf_error(&c->out) < 0;
}
int proc_capture_add(struct proc_capture *c, int stream, const char *data, size_t len);

#endif
