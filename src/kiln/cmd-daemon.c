/*
 * `kiln start|stop|restart BASEDIR`: the master as a background daemon, the
 * way `buildbot start|stop|restart` run one (common/daemon.h has the
 * mechanics, docs/OPERATING.md the whole story).  start forks the master
 * (its log appended to BASEDIR/master.log) and returns once its HTTP and
 * worker listeners are bound, or prints why it failed; stop signals the pid
 * in BASEDIR/pid (SIGTERM, or SIGUSR1 for --clean) and waits for it to exit.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "client/cmd.h"
#include "common/daemon.h"
#include "common/xalloc.h"
#include "kiln/kiln.h"
#include "master/reconfig.h" /* slice "reconfig": the verdict file's name */

enum daemon_verb { VERB_START, VERB_STOP, VERB_RESTART };

static const char *const verb_names[] = {"start", "stop", "restart"};

static void daemon_usage(FILE *f, enum daemon_verb v)
{
	fprintf(f, "usage: kiln %s [--timeout SECS]%s [BASEDIR]\n", verb_names[v],
		v == VERB_START ? "" : " [--clean]");
	switch (v) {
	case VERB_START:
		fprintf(f, "Starts the master on BASEDIR (default .) in the background, its log\n"
			   "appended to BASEDIR/master.log, and waits (up to --timeout, default\n"
			   "60 s) until its HTTP and worker listeners are bound.  If it fails to\n"
			   "start, prints the error from its log (e.g. 'master.lua:LINE: ...').\n");
		break;
	case VERB_STOP:
		fprintf(f, "Stops the master whose pid is in BASEDIR/pid: SIGTERM (running builds\n"
			   "are interrupted and retried at the next start), then waits up to\n"
			   "--timeout (default 60 s) for it to exit.  --clean: a clean stop\n"
			   "(SIGUSR1): no new build starts and the master exits once the running\n"
			   "builds finish; after --timeout they are interrupted (SIGTERM).\n"
			   "A stale pid file (no live master holds it) is reported and removed.\n");
		break;
	case VERB_RESTART:
		fprintf(f, "stop (if running), then start; options as for both.\n");
		break;
	}
	fprintf(f, "Exit status: 0 done, 1 failed (start error, or still running after\n"
		   "--timeout), 2 usage, 3 not running (stop), 4 not ready within --timeout\n"
		   "(start; the master is left running).\n");
}

static int daemon_verb_run(enum daemon_verb v, int argc, char **argv)
{
	static const struct option opts[] = {
		{"timeout", required_argument, NULL, 't'},
		{"clean", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int timeout = DAEMON_DEFAULT_TIMEOUT;
	bool clean = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			timeout = daemon_parse_timeout(optarg);
			if (timeout < 0) {
				fprintf(stderr,
					"kiln %s: bad --timeout '%s': seconds, 1 to 86400\n",
					verb_names[v], optarg);
				return DAEMON_EXIT_USAGE;
			}
			break;
		case 'c':
			if (v == VERB_START) {
				daemon_usage(stderr, v);
				return DAEMON_EXIT_USAGE;
			}
			clean = true;
			break;
		case 'h':
			daemon_usage(stdout, v);
			return DAEMON_EXIT_OK;
		default:
			daemon_usage(stderr, v);
			return DAEMON_EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		daemon_usage(stderr, v);
		return DAEMON_EXIT_USAGE;
	}
	const char *arg = optind < argc ? argv[optind] : ".";
	char real[PATH_MAX];
	if (!realpath(arg, real)) {
		fprintf(stderr, "kiln %s: cannot open base directory '%s': %s\n", verb_names[v],
			arg, strerror(errno));
		return DAEMON_EXIT_FAILED;
	}
	_cleanup_free_ char *pidpath = xasprintf("%s/pid", real);
	if (v != VERB_START) {
		int r = daemon_stop_pidfile("kiln master", pidpath, clean ? SIGUSR1 : SIGTERM,
					    (unsigned)timeout, clean);
		if (v == VERB_STOP || (r != DAEMON_EXIT_OK && r != DAEMON_EXIT_NOT_RUNNING))
			return r;
	}
	pid_t pid;
	int p = daemon_pidfile_probe("kiln master", pidpath, false, &pid);
	if (p != 0) {
		if (p > 0)
			fprintf(stderr,
				"kiln start: a master is already running on '%s' (pid %ld); not "
				"starting\n",
				real, (long)pid);
		return DAEMON_EXIT_FAILED;
	}
	_cleanup_free_ char *logpath = xasprintf("%s/master.log", real);
	int ready_fd;
	int r = daemon_launch("kiln master", logpath, (unsigned)timeout, &ready_fd);
	if (r >= 0)
		return r;
	/* the daemon */
	exit(master_serve(real, &ready_fd));
}

static int start_run(int argc, char **argv)
{
	return daemon_verb_run(VERB_START, argc, argv);
}

static int stop_run(int argc, char **argv)
{
	return daemon_verb_run(VERB_STOP, argc, argv);
}

static int restart_run(int argc, char **argv)
{
	return daemon_verb_run(VERB_RESTART, argc, argv);
}

const struct cmd cmd_start = {
	.name = "start",
	.usage = "[--timeout SECS] [BASEDIR]",
	.summary = "start the master in the background and wait until it is ready",
	.run = start_run,
	.own_help = true,
};

const struct cmd cmd_stop = {
	.name = "stop",
	.usage = "[--timeout SECS] [--clean] [BASEDIR]",
	.summary = "stop the background master (--clean: after its running builds)",
	.run = stop_run,
	.own_help = true,
};

const struct cmd cmd_restart = {
	.name = "restart",
	.usage = "[--timeout SECS] [--clean] [BASEDIR]",
	.summary = "stop then start the background master",
	.run = restart_run,
	.own_help = true,
};

/* ---- `kiln reconfig BASEDIR` (slice "reconfig") ---------------------------------- */

static void reconfig_usage(FILE *f)
{
	fprintf(f, "usage: kiln reconfig [--timeout SECS] [BASEDIR]\n"
		   "Makes the master whose pid is in BASEDIR/pid (default .) load master.lua\n"
		   "again (SIGHUP) and waits (up to --timeout, default 60 s) for its verdict:\n"
		   "\"reconfig done: N builders (+added -removed ~changed), ...\" or the\n"
		   "config error (\"master.lua:LINE: message\"; the master keeps its old\n"
		   "configuration).  Running builds go on with the configuration they\n"
		   "started with (docs/OPERATING.md, \"Reconfiguration\").\n"
		   "Exit status: 0 applied, 1 refused (config error) or no verdict within\n"
		   "--timeout, 2 usage, 3 no master running.\n");
}

/* The verdict in BASEDIR/reconfig.result if it is pid's: its seq (0: none). */
static uint64_t reconfig_read(const char *path, pid_t pid, bool *ok, char **message)
{
	json_error_t jerr;
	json_t *o = json_load_file(path, 0, &jerr);
	uint64_t seq = 0;
	if (json_is_object(o) && json_integer_value(json_object_get(o, "pid")) == pid) {
		seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
		if (ok)
			*ok = json_is_true(json_object_get(o, "ok"));
		if (message) {
			const char *m = json_string_value(json_object_get(o, "message"));
			*message = xstrdup(m ? m : "?");
		}
	}
	json_decref(o);
	return seq;
}

static int64_t reconfig_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int reconfig_verb_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int timeout = DAEMON_DEFAULT_TIMEOUT;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			timeout = daemon_parse_timeout(optarg);
			if (timeout < 0) {
				fprintf(stderr,
					"kiln reconfig: bad --timeout '%s': seconds, 1 to 86400\n",
					optarg);
				return DAEMON_EXIT_USAGE;
			}
			break;
		case 'h':
			reconfig_usage(stdout);
			return DAEMON_EXIT_OK;
		default:
			reconfig_usage(stderr);
			return DAEMON_EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		reconfig_usage(stderr);
		return DAEMON_EXIT_USAGE;
	}
	const char *arg = optind < argc ? argv[optind] : ".";
	char real[PATH_MAX];
	if (!realpath(arg, real)) {
		fprintf(stderr, "kiln reconfig: cannot open base directory '%s': %s\n", arg,
			strerror(errno));
		return DAEMON_EXIT_FAILED;
	}
	_cleanup_free_ char *pidpath = xasprintf("%s/pid", real);
	pid_t pid;
	int p = daemon_pidfile_probe("kiln reconfig", pidpath, false, &pid);
	if (p <= 0) {
		if (p == 0)
			fprintf(stderr, "kiln reconfig: no master is running on '%s'\n", real);
		return p == 0 ? DAEMON_EXIT_NOT_RUNNING : DAEMON_EXIT_FAILED;
	}
	_cleanup_free_ char *path = xasprintf("%s/%s", real, RECONFIG_RESULT_FILE);
	/* watch first, then read the last verdict, then signal: none is missed */
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (in < 0 || inotify_add_watch(in, real, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		fprintf(stderr, "kiln reconfig: cannot watch '%s': %s\n", real, strerror(errno));
		if (in >= 0)
			close(in);
		return DAEMON_EXIT_FAILED;
	}
	uint64_t before = reconfig_read(path, pid, NULL, NULL);
	if (kill(pid, SIGHUP) < 0) {
		fprintf(stderr, "kiln reconfig: cannot signal pid %ld: %s\n", (long)pid,
			strerror(errno));
		close(in);
		return DAEMON_EXIT_FAILED;
	}
	int64_t deadline = reconfig_now_ms() + (int64_t)timeout * 1000;
	for (;;) {
		bool ok = false;
		char *message = NULL;
		if (reconfig_read(path, pid, &ok, &message) > before) {
			close(in);
			fprintf(ok ? stdout : stderr, "%s\n", message);
			free(message);
			return ok ? DAEMON_EXIT_OK : DAEMON_EXIT_FAILED;
		}
		free(message);
		int64_t left = deadline - reconfig_now_ms();
		if (left <= 0)
			break;
		if (kill(pid, 0) < 0 && errno == ESRCH) {
			fprintf(stderr, "kiln reconfig: the master (pid %ld) exited\n", (long)pid);
			close(in);
			return DAEMON_EXIT_FAILED;
		}
		/* woken by the verdict's rename; at least once a second to notice
		 * a master that died */
		struct pollfd pfd = {.fd = in, .events = POLLIN};
		if (poll(&pfd, 1, left < 1000 ? (int)left : 1000) > 0) {
			char ev[4096];
			while (read(in, ev, sizeof(ev)) > 0)
				;
		}
	}
	close(in);
	fprintf(stderr, "kiln reconfig: no verdict from the master (pid %ld) within %d s\n",
		(long)pid, timeout);
	return DAEMON_EXIT_FAILED;
}

const struct cmd cmd_reconfig = {
	.name = "reconfig",
	.usage = "[--timeout SECS] [BASEDIR]",
	.summary = "make the running master load master.lua again and apply it",
	.run = reconfig_verb_run,
	.own_help = true,
};
