/*
 * `kiln master [-d BASEDIR]`: the master daemon, in the foreground, logging
 * to stderr.  Loads the configuration, opens the database, starts the
 * engine and the HTTP/worker listeners on one libuv loop, and stops
 * cleanly on SIGTERM/SIGINT (running builds recorded as interrupted).
 */
#define LOG_SUBSYS "master"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client/cmd.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "kiln/kiln.h"
#include "master/engine.h"
#include "master/events.h"
#include "master/http.h"
#include "master/master.h"
#include "master/sched/sched.h"
#include "master/changes/poller.h"

static int write_file_atomic(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *tmp = xasprintf("%s/.%s.tmp", dir, name);
	_cleanup_free_ char *dst = xasprintf("%s/%s", dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	size_t len = strlen(text);
	ssize_t w = write(fd, text, len);
	int r = (w == (ssize_t)len) ? 0 : -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, dst) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct master *m = h->data;
	if (m->stopping)
		return;
	log_info("got signal %d, stopping", signum);
	m->stopping = true;
	uv_stop(m->loop);
}

static void on_commit_error(struct db *db, int r, const char *errmsg, void *userdata)
{
	(void)db;
	(void)userdata;
	log_error("database write failed and was rolled back: %s (%s)", errmsg, err_str(r));
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int master_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"basedir", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *basedir_arg = ".";
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			basedir_arg = optarg;
			break;
		case 'h':
			printf("usage: kiln master [-d BASEDIR]\n"
			       "Runs the master in the foreground; logs go to stderr.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc)
		basedir_arg = argv[optind];

	char real[PATH_MAX];
	if (!realpath(basedir_arg, real)) {
		fprintf(stderr, "kiln master: cannot open base directory '%s': %s\n", basedir_arg,
			strerror(errno));
		return 1;
	}

	struct master m = {0};
	m.basedir = xstrdup(real);
	char host[256] = "localhost";
	gethostname(host, sizeof(host) - 1);
	m.name = xasprintf("%s:%s", host, m.basedir);

	_cleanup_free_ char *err = NULL;
	_cleanup_free_ char *pid = NULL;
	int r = config_load(m.basedir, &m.cfg, &err);
	if (r < 0) {
		fprintf(stderr, "%s\n", err ? err : "master.lua: cannot load");
		free(m.basedir);
		free(m.name);
		return 1;
	}

	uv_loop_t loop;
	uv_loop_init(&loop);
	m.loop = &loop;
	int status = 1;
	uv_signal_t sigterm, sigint;
	uv_signal_init(&loop, &sigterm);
	uv_signal_init(&loop, &sigint);
	sigterm.data = sigint.data = &m;
	signal(SIGPIPE, SIG_IGN);

	r = db_open(&loop, m.cfg->db_url, m.basedir, &m.db);
	if (r < 0) {
		log_error("cannot open database '%s': %s", m.cfg->db_url, db_open_errmsg());
		goto out;
	}
	db_set_commit_error_cb(m.db, on_commit_error, &m);
	r = db_master_register(m.db, m.name, &m.masterid);
	if (r < 0) {
		log_error("cannot register master: %s", db_errmsg(m.db));
		goto out;
	}
	m.events = events_new();
	r = engine_new(&m, &m.engine);
	if (r < 0)
		goto out;
	r = sched_new(&m, &m.sched); /* logs its own errors */
	if (r < 0)
		goto out;
	r = pollers_start(&m, &m.pollers); /* logs its errors */
	if (r < 0)
		goto out;
	r = http_server_start(&m, engine_worker_ops(m.engine), &m.http); /* logs its errors */
	if (r < 0)
		goto out;
	pid = xasprintf("%d\n", (int)getpid());
	r = write_file_atomic(m.basedir, "pid", pid);
	if (r < 0) {
		log_error_errno(r, "cannot write '%s/pid'", m.basedir);
		goto out;
	}
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_start(&sigint, on_signal, SIGINT);
	log_info("master '%s' running (%zu builders, %zu workers)", m.name, m.cfg->nbuilders,
		 m.cfg->nworkers);

	while (!m.stopping)
		uv_run(&loop, UV_RUN_DEFAULT);
	status = 0;

out:
	if (m.engine)
		engine_stop(m.engine);
	if (m.db && m.masterid && db_master_set_active(m.db, m.masterid, false, clock_wall()) < 0)
		log_error("cannot mark the master inactive: %s", db_errmsg(m.db));
	/* worker closed() callbacks all happen inside http_server_stop */
	if (m.http) {
		http_server_stop(m.http);
		m.http = NULL;
	}
	pollers_stop(m.pollers);
	m.pollers = NULL;
	sched_free(m.sched);
	if (m.engine)
		engine_free(m.engine);
	db_close(m.db);
	events_free(m.events);
	m.events = NULL;
	uv_signal_stop(&sigterm);
	uv_signal_stop(&sigint);
	/* close frames go out, lws finishes its destroy, handles close */
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_walk(&loop, close_walk_cb, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		log_debug("loop still had handles at exit");
	_cleanup_free_ char *pidfile = xasprintf("%s/pid", m.basedir);
	if (status == 0)
		unlink(pidfile);
	log_info("master stopped");
	config_free(m.cfg);
	free(m.basedir);
	free(m.name);
	return status;
}

const struct cmd cmd_master = {"master", "[-d BASEDIR]",
			       "run the master daemon in the foreground", master_run,
			       true};
