/*
 * Child processes for kiln-worker commands: uv_spawn in a new session (so
 * the whole process group can be signalled), stdout/stderr read on the loop
 * with pause/resume for backpressure, initial stdin, signal escalation, and a
 * bounded drain after the leader exits so children holding the pipes cannot
 * keep a command alive.  Orphans re-parented to the worker (it is a child
 * subreaper) are reaped by runner_reaper_start().
 */
#ifndef KILN_WORKER_RUNNER_H
#define KILN_WORKER_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

enum { RUNNER_STDOUT = 1, RUNNER_STDERR = 2 };

struct runner_ops {
	/* Output read from the child; data is only valid during the call. */
	void (*output)(void *ud, int stream, const char *data, size_t len);
	/*
	 * Called exactly once, on a later loop turn than runner_start(): the
	 * leader has exited and its pipes are closed or were given up on after
	 * the drain time.  term_signal > 0 if it was killed by that signal (then
	 * exit_status is meaningless); gave_up if it did not die even after
	 * SIGKILL (it is left to the reaper).  The runner is freed after this
	 * returns: do not use it again.
	 */
	void (*done)(void *ud, int64_t exit_status, int term_signal, bool gave_up);
};

struct runner_opts {
	char **argv;          /* argv[0] is looked up in env's PATH */
	char **env;           /* NULL-terminated "NAME=value" */
	const char *cwd;
	const char *stdin_data; /* NULL: stdin is /dev/null */
	size_t stdin_len;
	unsigned drain_ms;    /* after the leader exits; 0 = default (2000) */
};

struct runner;

/* Starts the process.  Returns 0 and *ret_runner, or a negative libuv/errno
 * code (nothing started, no callbacks). */
int runner_start(uv_loop_t *loop, const struct runner_opts *o, const struct runner_ops *ops,
		 void *ud, struct runner **ret_runner);
pid_t runner_pid(const struct runner *r);
bool runner_exited(const struct runner *r);
/*
 * Signals the process group with sig.  Unless sig is SIGKILL, SIGKILL follows
 * after grace_s seconds if the leader is still alive.  If even SIGKILL does
 * not end it within a few seconds, done() is called with gave_up.  After a
 * kill, the drain after exit is short and the group is SIGKILLed once the
 * leader is gone, so lingering children die too.
 */
void runner_kill(struct runner *r, int sig, double grace_s);
/* The caller no longer wants callbacks (its command is gone): the group is
 * SIGKILLed and the runner frees itself once the process is reaped. */
void runner_abandon(struct runner *r);
/* Stops / restarts reading the child's output (and the drain clock). */
void runner_pause(struct runner *r, bool paused);

/* Reaps zombies of orphaned grandchildren on SIGCHLD; call once per process
 * (after prctl(PR_SET_CHILD_SUBREAPER)).  runner_reaper_stop() closes it. */
int runner_reaper_start(uv_loop_t *loop);
void runner_reaper_stop(void);
/* One reaping pass (also done on every SIGCHLD); returns how many were reaped. */
int runner_reap_orphans(void);

/* Parses "KILL", "TERM", "SIGINT", "9"...; -1 if unknown. */
int runner_signal_from_name(const char *name);

#endif
