/*
 * `kiln master [-d BASEDIR]`: the master daemon, in the foreground, logging
 * to stderr.  Loads the configuration, opens the database, starts the
 * engine and the HTTP/worker listeners on one libuv loop, and stops
 * cleanly on SIGTERM/SIGINT (running builds recorded as interrupted).
 * BASEDIR/pid is locked first, so one base directory has one master; a
 * failed database commit stops the master at once (memory never runs
 * ahead of disk), except on a full disk: then it holds, serving reads, and
 * execs itself once space returns (docs/OPERATING.md, "Disk full").
 */
#define LOG_SUBSYS "master"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include "client/cmd.h"
#include "common/clock.h"
#include "common/daemon.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "kiln/kiln.h"
#include "master/artifact-retention.h"
#include "master/engine.h"
#include "master/latent.h"
#include "master/masters.h"
#include "master/events.h"
#include "master/tsdb.h"
#include "master/reporters/reporters.h"
#include "master/numbers.h"
#include "master/http.h"
#include "master/loop-stall.h"
#include "master/metrics.h"
#include "master/master.h"
#include "master/sched/sched.h"
#include "master/changes/poller.h"
#include "master/push.h"     /* slice "push" */
#include "master/reconfig.h" /* slice "reconfig" */

/* What master_run() shares with its signal and commit-error callbacks. */
struct master_state {
	struct master *m;
	bool commit_failed; /* a batch was rolled back: stop without writing more */
	uv_check_t drain;   /* clean stop (SIGUSR1): stops once no build runs */
	/* slice "faults": a full disk holds the master (reads served, writes
	 * refused) until space returns, then it execs itself again */
	bool disk_hold;
	bool reexec;
	uint64_t space_wait_ms; /* the probe's back-off */
	uv_timer_t space_timer;
};

/*
 * Locks BASEDIR/pid (flock, held for the life of the process) and writes
 * our pid into it.  Done before the database is opened: a second master on
 * the same folder must not run start-up recovery under a live one.  Prints
 * the error; returns the locked fd or -1.
 */
static int master_lock_basedir(const char *basedir)
{
	char holder[32] = "";
	int fd = kiln_flock_basedir(basedir, true, NULL, holder);
	if (fd == -EWOULDBLOCK) {
		fprintf(stderr,
			"kiln master: base directory '%s' is in use by a running master (pid %s); "
			"not starting\n",
			basedir, *holder ? holder : "unknown, still starting");
		return -1;
	}
	if (fd < 0) {
		fprintf(stderr, "kiln master: cannot lock '%s/pid': %s\n", basedir, strerror(-fd));
		return -1;
	}
	_cleanup_free_ char *path = xasprintf("%s/pid", basedir);
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		fprintf(stderr, "kiln master: cannot write '%s': %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Clean stop: after every loop turn, stop once the running builds are done. */
static void master_on_drain_check(uv_check_t *h)
{
	struct master_state *st = h->data;
	if (st->m->stopping || engine_running_builds(st->m->engine) > 0)
		return;
	log_info("clean stop: no build running, stopping");
	uv_check_stop(h);
	st->m->stopping = true;
	uv_stop(st->m->loop);
}

static void master_on_signal(uv_signal_t *h, int signum)
{
	struct master_state *st = h->data;
	if (signum == SIGUSR1) {
		if (st->m->draining || st->m->stopping)
			return;
		st->m->draining = true;
		log_info("SIGUSR1: clean stop, no new builds start; stopping once the %zu running "
			 "build(s) finish",
			 engine_running_builds(st->m->engine));
		uv_check_start(&st->drain, master_on_drain_check);
		return;
	}
	if (signum == SIGHUP) {
		/* slice "reconfig": load master.lua again and apply the difference;
		 * the verdict is logged and written to BASEDIR/reconfig.result */
		if (st->m->stopping || !st->m->engine)
			return;
		log_info("SIGHUP: reconfig");
		reconfig_run(st->m);
		return;
	}
	if (st->m->stopping)
		return;
	log_info("got signal %d, stopping", signum);
	st->m->stopping = true;
	uv_stop(st->m->loop);
}

/* Free space needed on the database's file system before the master resumes. */
#define MASTER_DISK_RESUME_BYTES (4u << 20)
#define MASTER_DISK_PROBE_FIRST_MS 500
#define MASTER_DISK_PROBE_MAX_MS 10000

static void master_on_space_timer(uv_timer_t *h)
{
	struct master_state *st = h->data;
	uint64_t free_bytes = 0;
	int r = db_free_bytes(st->m->db, &free_bytes);
	if (r >= 0 && free_bytes >= MASTER_DISK_RESUME_BYTES) {
		log_info("disk space is back (%llu bytes free): restarting from the database",
			 (unsigned long long)free_bytes);
		st->reexec = true;
		st->commit_failed = true; /* no teardown: it would write */
		st->m->stopping = true;
		uv_stop(st->m->loop);
		return;
	}
	if (r < 0)
		log_warn_errno(r, "cannot read the database's free space");
	else
		log_debug("disk still full (%llu bytes free)", (unsigned long long)free_bytes);
	st->space_wait_ms *= 2;
	if (st->space_wait_ms > MASTER_DISK_PROBE_MAX_MS)
		st->space_wait_ms = MASTER_DISK_PROBE_MAX_MS;
	uv_timer_start(h, master_on_space_timer, st->space_wait_ms, 0);
}

/*
 * The disk under the database is full: the rolled-back batch means memory
 * is ahead of the database, as for any failed commit, but a restart would
 * only fail again.  The master holds instead: every later write fails at
 * once with "database write failed: database or disk is full" (the API's
 * writes answer an error, reads are served), and a timer with back-off
 * watches the free space; once there is room it execs itself, and the new
 * process recovers from the database as after any stop (running builds
 * retried).  Same pid, same base directory lock (taken again after exec).
 */
static void master_disk_hold(struct master_state *st, struct db *db, const char *errmsg)
{
	db_refuse_writes(db, true);
	if (st->disk_hold)
		return;
	st->disk_hold = true;
	uint64_t free_bytes = 0;
	const char *file = st->m->cfg->db_url;
	(void)db_free_bytes(db, &free_bytes);
	log_error("database write failed: database or disk is full (%s, %llu bytes free): %s; "
		  "holding: reads are served, writes refused; the master restarts from the "
		  "database once %u bytes are free",
		  file, (unsigned long long)free_bytes, errmsg ? errmsg : "?",
		  MASTER_DISK_RESUME_BYTES);
	st->space_wait_ms = MASTER_DISK_PROBE_FIRST_MS;
	uv_timer_init(st->m->loop, &st->space_timer);
	st->space_timer.data = st;
	uv_timer_start(&st->space_timer, master_on_space_timer, st->space_wait_ms, 0);
}

/* A master stopped without teardown (a failed commit): its state, kept
 * reachable until the exit drops it */
__attribute__((used)) static struct master master_held_m;
__attribute__((used)) static uv_loop_t master_held_loop;

/* After a disk-full hold: the same program, as `kiln master -d BASEDIR`. */
static int master_reexec(const char *basedir)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		log_error("cannot restart: /proc/self/exe: %s", strerror(errno));
		return 1;
	}
	self[n] = '\0';
	char *argv[] = {self, "master", "-d", (char *)basedir, NULL};
	log_info("restarting: %s master -d %s", self, basedir);
	execv(self, argv);
	log_error("cannot restart: exec %s: %s", self, strerror(errno));
	return 1;
}

/*
 * A batch commit failed and was rolled back: what memory holds is now ahead
 * of the database.  Stop at once; the teardown then writes nothing more and
 * the next start recovers from what was stored (running builds retried).
 */
static void master_on_commit_error(struct db *db, int r, const char *errmsg, void *userdata)
{
	struct master_state *st = userdata;
	if (db_disk_full(db) && !st->commit_failed) {
		master_disk_hold(st, db, errmsg);
		return;
	}
	log_error("database commit failed and was rolled back: %s (%s); stopping, a restart "
		  "recovers from the database",
		  errmsg ? errmsg : "?", err_str(r));
	st->commit_failed = true;
	st->m->stopping = true;
	uv_stop(st->m->loop);
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Every connection costs a descriptor: the soft limit goes up to the hard
 * one at start (the listeners stop accepting at the limit, see http.h). */
static void master_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn_errno(-errno, "cannot read the file-descriptor limit");
		return;
	}
	if (rl.rlim_cur == rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn_errno(-errno, "cannot raise the file-descriptor limit from %llu",
			       (unsigned long long)was);
		return;
	}
	log_info("file-descriptor limit raised from %llu to %llu", (unsigned long long)was,
		 (unsigned long long)rl.rlim_cur);
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
			       "Runs the master in the foreground; logs go to stderr.\n"
			       "BASEDIR/pid holds its pid and a lock: a second master on the\n"
			       "same BASEDIR exits with status 1 and touches nothing.\n"
			       "SIGTERM/SIGINT stop it cleanly (running builds are interrupted\n"
			       "and retried at the next start); SIGUSR1 is a clean stop: no new\n"
			       "build starts and it stops once the running ones finish.\n"
			       "SIGHUP loads master.lua again and applies the difference (`kiln\n"
			       "reconfig` sends it and prints the verdict).  A failed database\n"
			       "commit stops it with status 1; the next start recovers from the\n"
			       "database.\n"
			       "At exit it logs the event loop's worst stall; with\n"
			       "KILN_LOOP_STATS=FILE set it also writes them to FILE as JSON.\n"
			       "KILN_LOG=debug|info|warn|error sets the log level.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc)
		basedir_arg = argv[optind];
	int no_ready = -1;
	return master_serve(basedir_arg, &no_ready);
}

int master_serve(const char *basedir_arg, int *ready_fd)
{
	char real[PATH_MAX];
	if (!realpath(basedir_arg, real)) {
		fprintf(stderr, "kiln master: cannot open base directory '%s': %s\n", basedir_arg,
			strerror(errno));
		return 1;
	}

	/* an upload's messages (256 KiB blocks) are allocated and freed at a high
	 * rate: glibc's default would mmap and unmap (or trim) them and fault
	 * their pages in again for every block */
	(void)mallopt(M_MMAP_THRESHOLD, KILN_MASTER_MMAP_THRESHOLD);
	(void)mallopt(M_TRIM_THRESHOLD, KILN_MASTER_TRIM_THRESHOLD);

	int lock_fd = master_lock_basedir(real);
	if (lock_fd < 0)
		return 1;

	struct master m = {0};
	struct master_state st = {.m = &m};
	m.basedir = xstrdup(real);
	char host[256] = "localhost";
	gethostname(host, sizeof(host) - 1);
	m.name = xasprintf("%s:%s", host, m.basedir);

	_cleanup_free_ char *err = NULL;
	_cleanup_free_ char *pidfile = xasprintf("%s/pid", m.basedir);
	int r = config_load(m.basedir, &m.cfg, &err);
	if (r == 0)
		m.cfg->generation = 1; /* slice "reconfig": +1 per reconfig */
	if (r < 0) {
		fprintf(stderr, "%s\n", err ? err : "master.lua: cannot load");
		unlink(pidfile);
		close(lock_fd);
		free(m.basedir);
		free(m.name);
		return 1;
	}

	if (m.cfg->log_json) /* log_format = "json" (common/log.h) */
		log_set_format(LOG_FORMAT_JSON);
	master_raise_nofile();
	uv_loop_t loop;
	uv_loop_init(&loop);
	m.loop = &loop;
	int status = 1;
	uv_signal_t sigterm, sigint, sighup, sigusr1;
	uv_signal_init(&loop, &sigterm);
	uv_signal_init(&loop, &sigint);
	uv_signal_init(&loop, &sighup);
	uv_signal_init(&loop, &sigusr1);
	uv_check_init(&loop, &st.drain);
	sigterm.data = sigint.data = sighup.data = sigusr1.data = st.drain.data = &st;
	/* ignored from here on, not only once the loop runs */
	uv_signal_start(&sighup, master_on_signal, SIGHUP);
	signal(SIGPIPE, SIG_IGN);

	r = db_open(&loop, m.cfg->db_url, m.basedir, &m.db);
	if (r < 0) {
		log_error("cannot open database '%s': %s", m.cfg->db_url, db_open_errmsg());
		goto out;
	}
	db_set_commit_error_cb(m.db, master_on_commit_error, &st);
	r = db_master_register(m.db, m.name, &m.masterid);
	if (r < 0) {
		log_error("cannot register master: %s", db_errmsg(m.db));
		goto out;
	}
	m.events = events_new();
	metrics_start(&m); /* counts from here on (/metrics) */
	m.numbers = numbers_new();
	r = engine_new(&m, &m.engine);
	if (r < 0)
		goto out;
	r = sched_new(&m, &m.sched); /* logs its own errors */
	if (r < 0)
		goto out;
	r = pollers_start(&m, &m.pollers); /* logs its errors */
	if (r < 0)
		goto out;
	if (m.cfg->metrics_push) {
		r = tsdb_start(&loop, m.cfg->metrics_push, &m.tsdb);
		if (r < 0) {
			log_error_errno(r, "cannot start the metrics push");
			goto out;
		}
	}
	r = artifact_retention_start(&m, &m.retention); /* slice "artcli" */
	if (r < 0) {
		log_error_errno(r, "cannot start the artifact retention");
		goto out;
	}
	r = reporters_start(&m, &m.reporters); /* slice "email": logs its errors */
	if (r < 0)
		goto out;
	push_start(&m); /* slice "push": logs its errors */
	r = http_server_start(&m, engine_worker_ops(m.engine), &m.http); /* logs its errors */
	if (r < 0)
		goto out;
	m.workers_port = http_server_workers_port(m.http);
	r = latent_start(&m); /* latent and local workers (issue 14): logs its errors */
	if (r < 0)
		goto out;
	r = masters_start(&m, &m.masters); /* heartbeats, on PostgreSQL (issue 14) */
	if (r < 0)
		goto out;
	uv_signal_start(&sigterm, master_on_signal, SIGTERM);
	uv_signal_start(&sigint, master_on_signal, SIGINT);
	uv_signal_start(&sigusr1, master_on_signal, SIGUSR1);
	log_info("master '%s' running (%zu builders, %zu workers)", m.name, m.cfg->nbuilders,
		 m.cfg->nworkers);
	daemon_ready(ready_fd); /* `kiln start`: the listeners are bound */

	r = loop_stall_start(&loop);
	if (r < 0)
		log_warn_errno(r, "loop stall measurement unavailable");
	int64_t nusers; /* PostgreSQL keeps the count for the auth gate (db_set_serving) */
	if (db_is_postgresql(m.db) && db_login_users_count(m.db, &nusers) < 0)
		log_warn("cannot count the users that can log in: %s", db_errmsg(m.db));
	db_set_serving(m.db, true); /* PostgreSQL: no loop run inside a call from here */
	while (!m.stopping)
		uv_run(&loop, UV_RUN_DEFAULT);
	db_set_serving(m.db, false); /* the shut-down's writes are waited for */
	(void)loop_stall_finish();   /* logs "loop: worst stall ..." and its own errors */
	status = 0;

out:
	if (st.commit_failed || st.disk_hold) { /* a stop while holding: the same */
		/*
		 * No teardown: stopping builds, closing worker connections and
		 * closing the database would all write on top of the rolled-back
		 * batch.  The process exit drops the connections and the lock;
		 * the next start's recovery marks running builds for retry.
		 */
		latent_kill_now(m.latent); /* the workers it started do not outlive it */
		if (st.reexec)             /* slice "faults": space is back after a full disk */
			return master_reexec(m.basedir);
		log_error("master stopped after a failed database commit%s",
			  st.disk_hold ? " (the disk is full)" : "");
		/* what is left for the exit to drop stays reachable, so that a
		 * leak checker (scripts/check-leaks) reports only real leaks */
		master_held_m = m;
		master_held_loop = loop;
		return 1;
	}
	masters_stop(m.masters); /* freed by the uv_run below */
	m.masters = NULL;
	if (m.engine)
		engine_stop(m.engine);
	latent_stop(m.latent); /* stop commands run; it frees itself in the uv_run below */
	m.latent = NULL;
	if (m.db && m.masterid && db_master_set_active(m.db, m.masterid, false, clock_wall()) < 0)
		log_error("cannot mark the master inactive: %s", db_errmsg(m.db));
	/* worker closed() callbacks all happen inside http_server_stop */
	if (m.http) {
		http_server_stop(m.http);
		m.http = NULL;
	}
	reporters_stop(m.reporters); /* queued mail dropped (logged); freed by the uv_run below */
	push_stop();                 /* slice "push": freed by the uv_run below */
	m.reporters = NULL;
	artifact_retention_stop(m.retention); /* freed by the uv_run below */
	m.retention = NULL;
	pollers_stop(m.pollers);
	m.pollers = NULL;
	/* PostgreSQL: the answers still in flight are delivered while the schedulers and
	 * the engine they tell (a request's completion) still exist; the
	 * close delivers any later ones, and finds these gone */
	if (m.db && db_is_postgresql(m.db) && db_flush(m.db) < 0)
		log_warn("the last writes were not committed: %s", db_errmsg(m.db));
	sched_free(m.sched);
	m.sched = NULL;
	if (m.engine)
		engine_free(m.engine);
	m.engine = NULL;
	db_close(m.db);
	metrics_stop(&m);
	events_free(m.events);
	m.events = NULL;
	tsdb_stop(m.tsdb); /* freed by the uv_run below */
	m.tsdb = NULL;
	numbers_free(m.numbers);
	m.numbers = NULL;
	uv_signal_stop(&sigterm);
	uv_signal_stop(&sigint);
	uv_signal_stop(&sighup);
	uv_signal_stop(&sigusr1);
	uv_check_stop(&st.drain);
	/* close frames go out, lws finishes its destroy, handles close */
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_walk(&loop, close_walk_cb, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		log_debug("loop still had handles at exit");
	/* still ours (locked): a stale pid file would only mislead */
	unlink(pidfile);
	close(lock_fd);
	log_info("master stopped");
	config_unref(m.cfg); /* slice "reconfig": the master's reference */
	free(m.basedir);
	free(m.name);
	return status;
}

const struct cmd cmd_master = {
	.name = "master",
	.usage = "[-d BASEDIR]",
	.summary = "run the master daemon in the foreground",
	.run = master_run,
	.own_help = true,
};
