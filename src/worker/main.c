/*
 * kiln-worker: the worker daemon's command line.  `create` writes a worker
 * directory (worker.conf, info/admin, info/host); `start` runs the worker in
 * the foreground on one libuv loop: conn.c (WebSocket client) feeds worker.c
 * (protocol engine), which runs commands through runner.c.
 */
#define LOG_SUBSYS "main"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/daemon.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "worker/conn.h"
#include "worker/runner.h"
#include "worker/wconf.h"
#include "worker/worker.h"

#define SHUTDOWN_DELAY_MS 200 /* after answering `shutdown`, as Buildbot's worker */

static void usage(FILE *f)
{
	fprintf(f, "usage: kiln-worker create DIR --master HOST:PORT --name NAME\n"
		   "                          (--password PASS | --password-file FILE) "
		   "[--send-environ]\n"
		   "       kiln-worker start [--daemon] [--timeout SECS] [--log-format F] DIR\n"
		   "       kiln-worker stop [--timeout SECS] DIR\n"
		   "       kiln-worker restart [--timeout SECS] [--log-format F] DIR\n"
		   "       kiln-worker --help | --version\n");
}

static int worker_run(const char *dir, int *ready_fd, int *lock_fd);

static void usage_create(FILE *f)
{
	fprintf(f,
		"usage: kiln-worker create DIR --master HOST:PORT --name NAME\n"
		"                          (--password PASS | --password-file FILE) "
		"[--send-environ]\n"
		"Creates the worker directory DIR: DIR/worker.conf (mode 0600), DIR/info/admin "
		"and\n"
		"DIR/info/host.  --master also accepts ws://HOST:PORT.  Several masters (sharing\n"
		"one PostgreSQL database, docs/SCALING.md): --master again, or a comma-separated\n"
		"list; the worker connects to whichever answers, trying them in turn.\n"
		"--send-environ makes the worker report its whole environment to the master\n"
		"(off by default).\n");
}

static void usage_start(FILE *f)
{
	fprintf(f, "usage: kiln-worker start [--daemon] [--timeout SECS] [--log-format text|json] "
		   "DIR\n"
		   "Runs the worker in the foreground, logging to stderr (level from KILN_LOG;\n"
		   "--log-format json: one JSON object per line, docs/OPERATING.md).\n"
		   "--daemon: runs it in the background instead, its log appended to\n"
		   "DIR/worker.log, and returns once it has started (its connection to the\n"
		   "master begun), or prints why it failed (waits up to --timeout, default\n"
		   "60 s).  DIR/worker.pid holds its pid and a lock: a second worker on DIR\n"
		   "exits with status 1.\n"
		   "KILN_WORKER_SEND_ENVIRON=1 reports the whole environment to the master.\n"
		   "KILN_WORKER_HANDSHAKE_TIMEOUT=SECS (1-600, default 30) bounds each connection\n"
		   "attempt (TCP connect and the master's WebSocket answer); then the worker\n"
		   "retries, waiting 1 s, then x1.5 each time up to 60 s (plus 0-20 %% jitter).\n"
		   "Exit status of --daemon: 0 started, 1 failed, 2 usage, 4 not started\n"
		   "within --timeout (left running).\n");
}

static void usage_stop(FILE *f, const char *verb)
{
	fprintf(f,
		"usage: kiln-worker %s [--timeout SECS]%s DIR\n"
		"%sStops the worker whose pid is in DIR/worker.pid: SIGTERM (running\n"
		"commands are killed, as a lost connection does), then waits up to --timeout\n"
		"(default 60 s) for it to exit.  A stale pid file (no live worker holds it)\n"
		"is reported and removed.\n"
		"Exit status: 0 done, 1 failed (still running after --timeout, or the\n"
		"start failed), 2 usage, 3 not running (stop), 4 not started within\n"
		"--timeout (restart).\n",
		verb, strcmp(verb, "restart") ? "" : " [--log-format text|json]",
		strcmp(verb, "restart") ? "" : "stop (if running), then start --daemon.\n");
}

static int write_if_missing(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno == EEXIST ? 0 : -errno;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{"master", required_argument, NULL, 'm'},
		{"name", required_argument, NULL, 'n'},
		{"password", required_argument, NULL, 'p'},
		{"password-file", required_argument, NULL, 'f'},
		{"send-environ", no_argument, NULL, 'e'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct wconf c = {0};
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'm': { /* repeated: several masters, the worker takes whichever answers */
			char *prev = c.master;
			c.master = prev ? xasprintf("%s, %s", prev, optarg) : xstrdup(optarg);
			free(prev);
			break;
		}
		case 'n':
			free(c.name);
			c.name = xstrdup(optarg);
			break;
		case 'p':
			free(c.password);
			c.password = xstrdup(optarg);
			break;
		case 'f':
			free(c.password_file);
			c.password_file = realpath(optarg, NULL);
			if (!c.password_file) {
				fprintf(stderr, "kiln-worker: cannot read password file '%s': %s\n",
					optarg, strerror(errno));
				wconf_release(&c);
				return 2;
			}
			break;
		case 'e':
			c.send_environ = true;
			break;
		case 'h':
			usage_create(stdout);
			wconf_release(&c);
			return 0;
		default:
			usage_create(stderr);
			wconf_release(&c);
			return 2;
		}
	}
	int rc = 2;
	struct conn_master ms[CONN_MAX_MASTERS];
	int nms = 0;
	size_t bad = 0;
	if (optind != argc - 1) {
		fprintf(stderr, "kiln-worker: create needs exactly one DIR\n");
		usage_create(stderr);
	} else if (!c.master || !c.name || (!c.password && !c.password_file)) {
		fprintf(stderr, "kiln-worker: create needs --master, --name and --password or "
				"--password-file\n");
	} else if (c.password && c.password_file) {
		fprintf(stderr, "kiln-worker: give --password or --password-file, not both\n");
	} else if ((nms = conn_parse_master_list(c.master, ms, CONN_MAX_MASTERS, &bad)) < 0) {
		if (nms == -E2BIG)
			fprintf(stderr, "kiln-worker: more than %d masters in --master '%s'\n",
				CONN_MAX_MASTERS, c.master);
		else
			fprintf(stderr,
				"kiln-worker: bad --master '%s' (master %zu of the list): "
				"expected HOST:PORT or ws://HOST:PORT\n",
				c.master, bad + 1);
		nms = 0;
	} else if (strchr(c.name, ':') || !*c.name || strchr(c.name, '\n')) {
		fprintf(stderr, "kiln-worker: bad --name '%s': must be non-empty, without ':'\n",
			c.name);
	} else if (c.password && strchr(c.password, '\n')) {
		fprintf(stderr, "kiln-worker: the password may not contain a newline\n");
	} else {
		const char *dir = argv[optind];
		_cleanup_free_ char *info = xasprintf("%s/info", dir);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "kiln-worker: cannot create '%s': %s\n", dir,
				strerror(errno));
		} else if (mkdir(info, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "kiln-worker: cannot create '%s': %s\n", info,
				strerror(errno));
		} else {
			int r = wconf_save(dir, &c);
			struct utsname u;
			_cleanup_free_ char *hostinfo = NULL;
			if (uname(&u) == 0)
				hostinfo = xasprintf("%s %s %s %s\n", u.sysname, u.nodename,
						     u.release, u.machine);
			_cleanup_free_ char *admin = xasprintf("%s/admin", info);
			_cleanup_free_ char *hostf = xasprintf("%s/host", info);
			if (r == 0)
				r = write_if_missing(admin,
						     "Kiln worker admin <admin@example.invalid>\n");
			if (r == 0)
				r = write_if_missing(hostf, hostinfo ? hostinfo : "unknown\n");
			if (r < 0) {
				fprintf(stderr, "kiln-worker: cannot write in '%s': %s\n", dir,
					err_str(r));
			} else {
				printf("worker created in %s (master %s, name %s)\n", dir, c.master,
				       c.name);
				rc = 0;
			}
		}
	}
	conn_masters_release(ms, (size_t)nms);
	wconf_release(&c);
	return rc;
}

/* ---- start -------------------------------------------------------------------------- */

struct daemon {
	uv_loop_t loop;
	struct worker *w;
	struct conn *conn;
	uv_signal_t sigint, sigterm;
	uv_timer_t shutdown_timer;
	bool stopping;
};

static int daemon_send(void *ud, const void *data, size_t len)
{
	struct daemon *d = ud;
	return d->conn ? conn_send(d->conn, data, len) : -ENOTCONN;
}

/* An upload's block, read into the message in place (worker.h's msg_new). */
static void *daemon_msg_new(void *ud, size_t cap, unsigned char **ret_payload)
{
	struct daemon *d = ud;
	if (d->conn)
		return conn_msg_new(d->conn, cap, ret_payload);
	return *ret_payload = xmalloc(cap); /* never sent: daemon_msg_send frees it */
}

static int daemon_msg_send(void *ud, void *msg, size_t len)
{
	struct daemon *d = ud;
	if (d->conn)
		return conn_msg_send(d->conn, msg, len);
	free(msg);
	return -ENOTCONN;
}

static void daemon_msg_free(void *ud, void *msg)
{
	(void)ud;
	conn_msg_free(msg);
}

static void daemon_stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	conn_free(d->conn);
	d->conn = NULL;
	worker_free(d->w);
	d->w = NULL;
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->shutdown_timer, NULL);
	runner_reaper_stop();
}

static void daemon_on_shutdown_timer(uv_timer_t *t)
{
	daemon_stop(t->data);
}

static void daemon_shutdown(void *ud)
{
	struct daemon *d = ud;
	uv_timer_start(&d->shutdown_timer, daemon_on_shutdown_timer, SHUTDOWN_DELAY_MS, 0);
}

static void daemon_on_signal(uv_signal_t *s, int signum)
{
	log_info("signal %d: stopping", signum);
	daemon_stop(s->data);
}

static const struct worker_host daemon_host = {
	.send = daemon_send,
	.shutdown = daemon_shutdown,
	.msg_new = daemon_msg_new,
	.msg_send = daemon_msg_send,
	.msg_free = daemon_msg_free,
};

/*
 * Locks DIR/worker.pid (flock, held for the life of the process) and writes
 * our pid into it, as the master does with BASEDIR/pid.  Prints the error;
 * returns the locked fd or -1.
 */
static int worker_lock_dir(const char *dir)
{
	_cleanup_free_ char *path = xasprintf("%s/worker.pid", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "kiln-worker: cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char text[32] = "";
		ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
		text[n > 0 ? n : 0] = '\0';
		text[strcspn(text, "\r\n")] = '\0';
		if (errno == EWOULDBLOCK)
			fprintf(stderr,
				"kiln-worker: worker directory '%s' is in use by a running worker "
				"(pid %s); not starting\n",
				dir, *text ? text : "unknown, still starting");
		else
			fprintf(stderr, "kiln-worker: cannot lock '%s': %s\n", path,
				strerror(errno));
		close(fd);
		return -1;
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		fprintf(stderr, "kiln-worker: cannot write '%s': %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int worker_serve(const char *dir, int *ready_fd);

/* The options of start/stop/restart; returns -1 to go on, or an exit status. */
static int parse_daemon_opts(const char *verb, int argc, char **argv, bool *daemon, int *timeout,
			     const char **dir)
{
	static const struct option opts[] = {
		{"daemon", no_argument, NULL, 'D'},
		{"timeout", required_argument, NULL, 't'},
		{"log-format", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool start = !strcmp(verb, "start");
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'D':
			if (!start)
				goto bad;
			*daemon = true;
			break;
		case 't':
			*timeout = daemon_parse_timeout(optarg);
			if (*timeout < 0) {
				fprintf(stderr,
					"kiln-worker: bad --timeout '%s': seconds, 1 to 86400\n",
					optarg);
				return 2;
			}
			break;
		case 'L':
			if (!strcmp(verb, "stop"))
				goto bad;
			if (log_set_format_name(optarg) < 0) {
				fprintf(stderr,
					"kiln-worker: bad --log-format '%s': 'text' or 'json'\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			if (start)
				usage_start(stdout);
			else
				usage_stop(stdout, verb);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind == argc - 1) {
		*dir = argv[optind];
		return -1;
	}
	fprintf(stderr, "kiln-worker: %s needs exactly one DIR\n", verb);
bad:
	if (start)
		usage_start(stderr);
	else
		usage_stop(stderr, verb);
	return 2;
}

/* kiln-worker start --daemon DIR (and the second half of restart) */
static int worker_launch(const char *dir, int timeout)
{
	_cleanup_free_ char *pidpath = xasprintf("%s/worker.pid", dir);
	_cleanup_free_ char *logpath = xasprintf("%s/worker.log", dir);
	pid_t pid;
	int p = daemon_pidfile_probe("kiln-worker", pidpath, false, &pid);
	if (p != 0) {
		if (p > 0)
			fprintf(stderr,
				"kiln-worker: a worker is already running in '%s' (pid %ld); not "
				"starting\n",
				dir, (long)pid);
		return 1;
	}
	int ready_fd;
	int r = daemon_launch("kiln-worker", logpath, (unsigned)timeout, &ready_fd);
	if (r >= 0)
		return r;
	exit(worker_serve(dir, &ready_fd)); /* the daemon */
}

static int cmd_stop(const char *verb, int argc, char **argv)
{
	bool daemon = false;
	int timeout = DAEMON_DEFAULT_TIMEOUT;
	const char *dir = NULL;
	int r = parse_daemon_opts(verb, argc, argv, &daemon, &timeout, &dir);
	if (r >= 0)
		return r;
	_cleanup_free_ char *pidpath = xasprintf("%s/worker.pid", dir);
	r = daemon_stop_pidfile("kiln-worker", pidpath, SIGTERM, (unsigned)timeout, false);
	if (!strcmp(verb, "stop") || (r != DAEMON_EXIT_OK && r != DAEMON_EXIT_NOT_RUNNING))
		return r;
	return worker_launch(dir, timeout);
}

static int cmd_start(int argc, char **argv)
{
	bool daemon = false;
	int timeout = DAEMON_DEFAULT_TIMEOUT;
	const char *dir = NULL;
	int r = parse_daemon_opts("start", argc, argv, &daemon, &timeout, &dir);
	if (r >= 0)
		return r;
	if (daemon)
		return worker_launch(dir, timeout);
	int no_ready = -1;
	return worker_serve(dir, &no_ready);
}

static int worker_serve(const char *dir, int *ready_fd)
{
	log_init_from_env();
	int lock_fd = -1;
	int rc = worker_run(dir, ready_fd, &lock_fd);
	if (lock_fd >= 0) {
		/* still ours (locked): a stale pid file would only mislead */
		_cleanup_free_ char *pidpath = xasprintf("%s/worker.pid", dir);
		unlink(pidpath);
		close(lock_fd);
	}
	return rc;
}

/* Runs the worker until it stops; *lock_fd: DIR/worker.pid once locked. */
static int worker_run(const char *dir, int *ready_fd, int *lock_fd)
{

	struct wconf conf;
	char *err = NULL;
	if (wconf_load(dir, &conf, &err) < 0) {
		fprintf(stderr, "kiln-worker: %s\n", err);
		free(err);
		return 1;
	}
	_cleanup_free_ char *password = NULL;
	if (wconf_password(&conf, dir, &password, &err) < 0) {
		fprintf(stderr, "kiln-worker: %s\n", err);
		free(err);
		wconf_release(&conf);
		return 1;
	}
	unsigned handshake_secs = 0;
	const char *hs = getenv("KILN_WORKER_HANDSHAKE_TIMEOUT");
	if (hs && *hs) {
		unsigned long long v;
		if (str_to_u64((struct str){hs, strlen(hs)}, &v) < 0 || v < 1 ||
		    v > KILN_WORKER_HANDSHAKE_MAX_SECS) {
			fprintf(stderr,
				"kiln-worker: bad KILN_WORKER_HANDSHAKE_TIMEOUT '%s': expected "
				"seconds, 1 to %d\n",
				hs, KILN_WORKER_HANDSHAKE_MAX_SECS);
			wconf_release(&conf);
			return 1;
		}
		handshake_secs = (unsigned)v;
	}
	struct conn_master ms[CONN_MAX_MASTERS];
	int nms = conn_parse_master_list(conf.master, ms, CONN_MAX_MASTERS, NULL);
	if (nms < 0) {
		fprintf(stderr,
			"kiln-worker: bad master '%s' in %s/worker.conf: expected HOST:PORT or "
			"ws://HOST:PORT, up to %d separated by commas\n",
			conf.master, dir, CONN_MAX_MASTERS);
		wconf_release(&conf);
		return 1;
	}
	*lock_fd = worker_lock_dir(dir); /* a valid directory: one worker on it */
	if (*lock_fd < 0) {
		conn_masters_release(ms, (size_t)nms);
		wconf_release(&conf);
		return 1;
	}

	/* orphans of build commands are re-parented to us and reaped by runner.c */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		log_warn("cannot become a child subreaper: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	/* an upload's messages (a block each, encoded then queued) are
	 * allocated and freed at a high rate: glibc's default would mmap or
	 * trim and fault them in again each time (a third of the worker's CPU) */
	(void)mallopt(M_MMAP_THRESHOLD, KILN_MAX_WS_FRAME);
	(void)mallopt(M_TRIM_THRESHOLD, 4 * KILN_MAX_WS_FRAME);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());

	struct daemon d;
	memset(&d, 0, sizeof(d));
	uv_loop_init(&d.loop);
	d.w = worker_new(&d.loop, dir, &daemon_host, &d);
	const char *se = getenv("KILN_WORKER_SEND_ENVIRON");
	d.w->send_environ = conf.send_environ || (se && !strcmp(se, "1"));

	struct conn_opts co = {.masters = ms,
			       .nmasters = (size_t)nms,
			       .name = conf.name,
			       .password = password,
			       .handshake_secs = handshake_secs};
	int r = conn_new(&d.loop, &co, d.w, &d.conn);
	conn_masters_release(ms, (size_t)nms);
	if (r < 0) {
		/* lws_create_context() says why in its own "lws:" lines above; a
		 * missing libuv plugin (libwebsockets-evlib_uv.so) is the usual cause */
		log_error("cannot start the WebSocket client: %s",
			  r == -ENOMEM ? "libwebsockets could not set up (its lines above say why)"
				       : err_str(r));
		worker_free(d.w);
		wconf_release(&conf);
		uv_run(&d.loop, UV_RUN_DEFAULT);
		uv_loop_close(&d.loop);
		return 1;
	}
	uv_signal_init(&d.loop, &d.sigint);
	uv_signal_init(&d.loop, &d.sigterm);
	uv_timer_init(&d.loop, &d.shutdown_timer);
	d.sigint.data = d.sigterm.data = d.shutdown_timer.data = &d;
	uv_signal_start(&d.sigint, daemon_on_signal, SIGINT);
	uv_signal_start(&d.sigterm, daemon_on_signal, SIGTERM);
	(void)runner_reaper_start(&d.loop);
	log_info("kiln-worker %s starting in %s, master%s %s, name '%s'", KILN_VERSION,
		 d.w->basedir, nms > 1 ? "s" : "", conf.master, conf.name);
	wconf_release(&conf);
	daemon_ready(ready_fd); /* `start --daemon`: started, connecting */

	uv_run(&d.loop, UV_RUN_DEFAULT);
	conn_finish();
	uv_run(&d.loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&d.loop);
	if (r < 0)
		log_debug("loop closed with handles left: %s", uv_strerror(r));
	log_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("kiln-worker %s\n", KILN_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "create"))
		return cmd_create(argc - 1, argv + 1);
	if (!strcmp(argv[1], "start"))
		return cmd_start(argc - 1, argv + 1);
	if (!strcmp(argv[1], "stop") || !strcmp(argv[1], "restart"))
		return cmd_stop(argv[1], argc - 1, argv + 1);
	fprintf(stderr, "kiln-worker: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
