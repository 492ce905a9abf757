/*
 * Background start and pid-file stop for the daemons; see daemon.h.
 */
#include "common/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* the most of the daemon's start-up log the launcher prints on failure */
#define DAEMON_ERRLOG_MAX 8192

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int daemon_parse_timeout(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 86400)
		return -1;
	return (int)v;
}

/* Closes every descriptor above stderr but keep: the daemon holds nothing
 * of its launcher's (a pipe the launcher's caller reads, a lock). */
static void close_inherited(int keep)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int fds[256];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < sizeof(fds) / sizeof(fds[0])) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end || end == e->d_name || fd <= 2 || fd == keep || fd == dirfd(d))
			continue;
		fds[n++] = (int)fd;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* Prints what the daemon appended to its log from offset 'from' (its last
 * DAEMON_ERRLOG_MAX bytes) on stderr. */
static void print_log_since(const char *logpath, off_t from)
{
	int fd = open(logpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size > from) {
		off_t start = from;
		if (st.st_size - start > DAEMON_ERRLOG_MAX)
			start = st.st_size - DAEMON_ERRLOG_MAX;
		char buf[DAEMON_ERRLOG_MAX];
		ssize_t n = pread(fd, buf, sizeof(buf), start);
		if (n > 0)
			fwrite(buf, 1, (size_t)n, stderr);
	}
	close(fd);
}

int daemon_launch(const char *what, const char *logpath, unsigned timeout_s, int *ret_ready_fd)
{
	*ret_ready_fd = -1;
	int logfd = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (logfd < 0) {
		fprintf(stderr, "%s: cannot open log file '%s': %s\n", what, logpath,
			strerror(errno));
		return DAEMON_EXIT_FAILED;
	}
	off_t from = lseek(logfd, 0, SEEK_END);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		fprintf(stderr, "%s: pipe: %s\n", what, strerror(errno));
		close(logfd);
		return DAEMON_EXIT_FAILED;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "%s: fork: %s\n", what, strerror(errno));
		close(p[0]);
		close(p[1]);
		close(logfd);
		return DAEMON_EXIT_FAILED;
	}
	if (child == 0) {
		/* the middle process: a new session, then the daemon, then gone */
		close(p[0]);
		if (setsid() < 0)
			_exit(1);
		pid_t d = fork();
		if (d < 0)
			_exit(1);
		if (d > 0)
			_exit(0);
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
			_exit(1);
		close(nul);
		close(logfd);
		close_inherited(p[1]);
		*ret_ready_fd = p[1];
		return -1;
	}
	close(p[1]);
	close(logfd);
	int status;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;

	char msg[64];
	size_t got = 0;
	int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
	int rc = -1;
	while (rc < 0) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			fprintf(stderr,
				"%s: not ready after %u s (still starting, left running); see "
				"%s\n",
				what, timeout_s, logpath);
			rc = DAEMON_EXIT_TIMEOUT;
			break;
		}
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		int n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue; /* the deadline check above ends it */
		ssize_t r = read(p[0], msg + got, sizeof(msg) - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0) {
			got += (size_t)r;
			msg[got] = '\0';
			if (!strchr(msg, '\n') && got < sizeof(msg) - 1)
				continue;
			long pid = 0;
			if (sscanf(msg, "ready %ld", &pid) == 1) {
				printf("%s started (pid %ld); log %s\n", what, pid, logpath);
				rc = DAEMON_EXIT_OK;
			} else {
				fprintf(stderr, "%s: bad readiness message from the daemon\n",
					what);
				rc = DAEMON_EXIT_FAILED;
			}
			break;
		}
		/* end of file: the daemon exited before it was ready */
		fprintf(stderr, "%s: failed to start:\n", what);
		print_log_since(logpath, from);
		rc = DAEMON_EXIT_FAILED;
	}
	close(p[0]);
	return rc;
}

void daemon_ready(int *fd)
{
	if (*fd < 0)
		return;
	char msg[32];
	int len = snprintf(msg, sizeof(msg), "ready %ld\n", (long)getpid());
	ssize_t n;
	do
		n = write(*fd, msg, (size_t)len);
	while (n < 0 && errno == EINTR);
	close(*fd);
	*fd = -1;
}

/* Whether process pid has the file of (dev, ino) open. */
static bool pid_holds(pid_t pid, dev_t dev, ino_t ino)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%ld/fd", (long)pid);
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && st.st_dev == dev &&
		    st.st_ino == ino)
			found = true;
	}
	closedir(d);
	return found;
}

int daemon_pidfile_probe(const char *what, const char *pidpath, bool remove_stale, pid_t *ret_pid)
{
	*ret_pid = 0;
	int fd = open(pidpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			fprintf(stderr, "%s: cannot open '%s': %s\n", what, pidpath,
				strerror(errno));
		return errno == ENOENT ? 0 : -1;
	}
	char text[32] = "";
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	text[strcspn(text, "\r\n")] = '\0';
	char *end;
	long pid = strtol(text, &end, 10);
	bool pid_ok = end != text && *end == '\0' && pid > 1 && pid <= INT32_MAX;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		/* nobody holds it: whatever pid it names is not our daemon */
		*ret_pid = pid_ok ? (pid_t)pid : 0;
		if (remove_stale) {
			fprintf(stderr, "%s: stale pid file '%s' (pid %s, not running): removed\n",
				what, pidpath, pid_ok ? text : "none");
			unlink(pidpath);
		}
		close(fd);
		return 0;
	}
	struct stat st;
	int r = -1;
	if (!pid_ok) {
		fprintf(stderr, "%s: '%s' is locked but holds no pid yet (starting?)\n", what,
			pidpath);
	} else if (fstat(fd, &st) < 0 || !pid_holds((pid_t)pid, st.st_dev, st.st_ino)) {
		fprintf(stderr,
			"%s: '%s' names pid %ld, which does not hold it: not touching that "
			"process\n",
			what, pidpath, pid);
	} else {
		*ret_pid = (pid_t)pid;
		r = 1;
	}
	close(fd);
	return r;
}

/* Waits up to ms for pid (not our child) to exit: true when it did. */
static bool wait_exit(pid_t pid, int64_t ms)
{
	int64_t deadline = now_ms() + ms;
#ifdef SYS_pidfd_open
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		bool gone = false;
		for (;;) {
			int64_t left = deadline - now_ms();
			if (left <= 0)
				break;
			struct pollfd p = {.fd = pfd, .events = POLLIN};
			int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
			if (n > 0) {
				gone = true;
				break;
			}
			if (n < 0 && errno != EINTR)
				break;
		}
		close(pfd);
		return gone;
	}
	if (errno == ESRCH)
		return true;
#endif
	/* no pidfd here: check the pid every 50 ms up to the deadline */
	while (kill(pid, 0) == 0 || errno != ESRCH) {
		if (now_ms() >= deadline)
			return false;
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return true;
}

int daemon_stop_pidfile(const char *what, const char *pidpath, int sig, unsigned grace_s,
			bool escalate)
{
	pid_t pid;
	int r = daemon_pidfile_probe(what, pidpath, true, &pid);
	if (r < 0)
		return DAEMON_EXIT_FAILED;
	if (r == 0) {
		fprintf(stderr, "%s: not running\n", what);
		return DAEMON_EXIT_NOT_RUNNING;
	}
	if (kill(pid, sig) < 0) {
		if (errno == ESRCH) {
			printf("%s stopped (pid %ld)\n", what, (long)pid);
			return DAEMON_EXIT_OK;
		}
		fprintf(stderr, "%s: cannot signal pid %ld: %s\n", what, (long)pid,
			strerror(errno));
		return DAEMON_EXIT_FAILED;
	}
	if (wait_exit(pid, (int64_t)grace_s * 1000)) {
		printf("%s stopped (pid %ld)\n", what, (long)pid);
		return DAEMON_EXIT_OK;
	}
	if (escalate && sig != SIGTERM) {
		fprintf(stderr, "%s: still running after %u s: sending SIGTERM\n", what, grace_s);
		if (kill(pid, SIGTERM) == 0 && !wait_exit(pid, (int64_t)grace_s * 1000)) {
			fprintf(stderr, "%s: pid %ld still running after SIGTERM and %u s\n", what,
				(long)pid, grace_s);
			return DAEMON_EXIT_FAILED;
		}
		printf("%s stopped (pid %ld)\n", what, (long)pid);
		return DAEMON_EXIT_OK;
	}
	fprintf(stderr, "%s: pid %ld still running after %u s\n", what, (long)pid, grace_s);
	return DAEMON_EXIT_FAILED;
}
