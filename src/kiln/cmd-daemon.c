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
#include <unistd.h>

#include "client/cmd.h"
#include "common/daemon.h"
#include "common/xalloc.h"
#include "kiln/kiln.h"

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
