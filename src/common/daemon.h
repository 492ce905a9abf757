/*
 * Running a daemon in the background and stopping it, the way
 * `buildbot start|stop` do: `kiln start|stop|restart BASEDIR` and
 * `kiln-worker start --daemon|stop|restart DIR` (docs/OPERATING.md).
 *
 * Start: the launching process forks, the child calls setsid() and forks
 * again; the grandchild is the daemon, with stdin on /dev/null and stdout
 * and stderr appended to its log file.  A pipe (the readiness pipe) goes
 * from the daemon back to the launcher: the daemon writes "ready PID\n"
 * once it serves (daemon_ready()); if it exits first the pipe reaches end of
 * file and the launcher prints what the daemon wrote to its log since the
 * launch (e.g. "master.lua:12: ...") and fails.  No polling, no sleeping:
 * the launcher blocks in poll() on the pipe, bounded by the timeout.
 *
 * Stop: the pid file is the daemon's lock (flock, held for its life).  A
 * pid file nobody holds is stale: reported and removed, nothing is
 * signalled.  A held one is signalled only if the pid it names really
 * holds the file open (checked through /proc/PID/fd), so an unrelated
 * process that got the pid is never killed; then the stop waits for the
 * process to exit (pidfd, poll) up to the grace period.
 */
#ifndef KILN_COMMON_DAEMON_H
#define KILN_COMMON_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

/* Exit statuses of the start/stop/restart verbs (docs/OPERATING.md). */
enum {
	DAEMON_EXIT_OK = 0,          /* started and ready / stopped */
	DAEMON_EXIT_FAILED = 1,      /* start failed, or did not stop in time */
	DAEMON_EXIT_USAGE = 2,       /* bad arguments */
	DAEMON_EXIT_NOT_RUNNING = 3, /* stop: nothing running (a stale pid file removed) */
	DAEMON_EXIT_TIMEOUT = 4,     /* start: not ready within --timeout (left running) */
};

#define DAEMON_DEFAULT_TIMEOUT 60 /* seconds: start's readiness wait, stop's grace period */

/*
 * In the launcher: forks the daemon and waits up to timeout_s seconds for it
 * to be ready; prints the outcome ("WHAT started (pid N); log LOGPATH" or
 * the daemon's start-up error) and returns an exit status (DAEMON_EXIT_*).
 * In the daemon: returns -1 with *ret_ready_fd set (pass it to
 * daemon_ready()); the caller carries on as the daemon.
 */
int daemon_launch(const char *what, const char *logpath, unsigned timeout_s, int *ret_ready_fd);

/* The daemon serves: tells the launcher (once; *fd becomes -1).  A *fd of
 * -1 (not launched by daemon_launch) does nothing. */
void daemon_ready(int *fd);

/*
 * What holds pidpath: 1 and *ret_pid when a live process holds its lock
 * (and the pid named in it holds the file), 0 when none (no file, or a
 * stale one: *ret_pid is the stale pid or 0), -1 when the file is held
 * but its pid does not match (message printed).  remove_stale: unlink a
 * stale file and say so on stderr.
 */
int daemon_pidfile_probe(const char *what, const char *pidpath, bool remove_stale, pid_t *ret_pid);

/*
 * Sends sig to the daemon of pidpath and waits up to grace_s seconds for it
 * to exit.  Prints what happened; returns DAEMON_EXIT_OK (stopped),
 * DAEMON_EXIT_NOT_RUNNING (no daemon, a stale pid file removed) or
 * DAEMON_EXIT_FAILED (still running after grace_s, or not ours to signal).
 * escalate: after grace_s, send SIGTERM and wait grace_s again.
 */
int daemon_stop_pidfile(const char *what, const char *pidpath, int sig, unsigned grace_s,
			bool escalate);

/* Parses a --timeout value (seconds, 1..86400); -1 when bad. */
int daemon_parse_timeout(const char *s);

#endif
