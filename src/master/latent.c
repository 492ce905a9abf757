/*
 * Latent and local workers (latent.h): one entry per worker master.lua
 * declares with latent = { } or local_worker { }, each a small state
 * machine (stopped -> starting -> running -> stopping -> stopped, or
 * failed) driven by the distributor's demand, its connection's attach and
 * detach, its commands' exits (common/proc.h) and one timer (start
 * timeout, idle timeout, stop guard or a local worker's restart backoff).
 */
#define LOG_SUBSYS "latent"

#include "master/latent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/events.h"
#include "master/master.h"
#include "master/sched/sched.h"

extern char **environ;

#define LATENT_TAIL 512                    /* bytes of a command's output kept for errors */
#define LATENT_LOG_MAX (16u * 1024 * 1024) /* BASEDIR/workers/NAME.log, per master run */
#define LATENT_LOCAL_START_S 60            /* a local worker must attach within */
#define LATENT_LOCAL_STOP_S 10             /* SIGTERM to SIGKILL of a local worker */
#define LATENT_BACKOFF_MAX_S 60            /* a local worker's restart delay, at most */
#define LATENT_REASON_MAX 400              /* bytes of a failure reason */

struct latent_worker {
	struct latent *lm;
	char *name;                      /* owned */
	const struct config_worker *cfg; /* borrowed: lives in gen */
	struct config *gen;              /* referenced: the generation cfg lives in */
	size_t widx;                     /* index of cfg in m->cfg->worker */
	enum latent_state state;
	char *error; /* owned: why the last start failed, NULL */
	double failed_at;
	struct proc *start_proc; /* the start command (or the worker itself) while it runs */
	struct proc *stop_proc;  /* the stop command while it runs */
	uv_timer_t timer;
	bool attached;
	bool removed;       /* a reconfig dropped it: freed once stopped */
	bool closing;       /* its timer is closing: freed in the close callback */
	bool counted;       /* in lm->live (latent_stop) */
	uint64_t active_ms; /* last attach, build start or build end */
	uint64_t launched_ms;
	unsigned backoff; /* local: consecutive quick deaths */
	char *password;   /* owned: a local worker's, made here */
	char tail[LATENT_TAIL];
	size_t ntail;
	int log_fd;
	size_t log_bytes;
};

struct latent {
	struct master *m;
	struct latent_worker **w; /* owned */
	size_t n, alloc;
	struct latent_worker **by_widx; /* owned array, per m->cfg->worker index; NULL entries */
	size_t nby_widx;
	char *worker_bin; /* owned */
	char *master;     /* owned: HOST:PORT of the worker listener */
	bool stopping;
	size_t live; /* entries not freed yet while stopping */
	/* builders whose queue is being read (latent_demand): one read each */
	int64_t *asking;
	size_t nasking, asking_alloc;
};

static void latent_begin_stop(struct latent_worker *lw, const char *why);
static struct wconn *latent_conn(const struct latent_worker *lw);
static void latent_check_stopped(struct latent_worker *lw);

const char *latent_state_name(enum latent_state s)
{
	static const char *const names[] = {"stopped", "starting", "running", "stopping", "failed"};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static bool latent_is_local(const struct latent_worker *lw)
{
	return lw->cfg->local;
}

static void latent_kick(struct latent *lm)
{
	if (!lm->stopping && lm->m->engine)
		engine_kick(lm->m->engine);
}

/* ---- entries --------------------------------------------------------------------- */

static void latent_index(struct latent *lm)
{
	const struct config *cfg = lm->m->cfg;
	free(lm->by_widx);
	lm->by_widx = xcalloc(cfg->nworkers + 1, sizeof(*lm->by_widx));
	lm->nby_widx = cfg->nworkers;
	for (size_t i = 0; i < lm->n; i++) {
		struct latent_worker *lw = lm->w[i];
		if (!lw->removed && lw->widx < cfg->nworkers)
			lm->by_widx[lw->widx] = lw;
	}
}

static struct latent_worker *latent_find(const struct latent *lm, const struct config_worker *cw)
{
	if (!lm || !cw)
		return NULL;
	const struct config *cfg = lm->m->cfg;
	if (cw >= cfg->worker && cw < cfg->worker + cfg->nworkers) {
		size_t i = (size_t)(cw - cfg->worker);
		return i < lm->nby_widx ? lm->by_widx[i] : NULL;
	}
	/* a connection from a retired generation: by name */
	for (size_t i = 0; i < lm->n; i++)
		if (!strcmp(lm->w[i]->name, cw->name))
			return lm->w[i];
	return NULL;
}

static void latent_set_error(struct latent_worker *lw, char *reason)
{
	free(lw->error);
	lw->error = reason;
}

static void latent_timer_closed(uv_handle_t *h)
{
	struct latent_worker *lw = h->data;
	struct latent *lm = lw->lm;
	if (lw->log_fd >= 0)
		close(lw->log_fd);
	free(lw->name);
	free(lw->error);
	config_unref(lw->gen);
	if (lw->password)
		sodium_memzero(lw->password, strlen(lw->password));
	free(lw->password);
	bool counted = lw->counted;
	free(lw);
	if (counted && --lm->live == 0) {
		log_debug("every started worker is stopped");
		free(lm->w);
		free(lm->by_widx);
		free(lm->worker_bin);
		free(lm->master);
		free(lm->asking);
		free(lm);
	}
}

/* Frees lw once nothing of it runs (stopping master or removed by a reconfig). */
static void latent_release(struct latent_worker *lw)
{
	if (lw->closing || lw->start_proc || lw->stop_proc)
		return;
	struct latent *lm = lw->lm;
	lw->closing = true;
	for (size_t i = 0; i < lm->n; i++)
		if (lm->w[i] == lw) {
			lm->w[i] = lm->w[--lm->n];
			break;
		}
	if (!lm->stopping)
		latent_index(lm);
	uv_timer_stop(&lw->timer);
	uv_close((uv_handle_t *)&lw->timer, latent_timer_closed);
}

static struct latent_worker *latent_add(struct latent *lm, size_t widx)
{
	const struct config_worker *cw = &lm->m->cfg->worker[widx];
	struct latent_worker *lw = xcalloc(1, sizeof(*lw));
	lw->lm = lm;
	lw->name = xstrdup(cw->name);
	lw->cfg = cw;
	lw->gen = config_ref(lm->m->cfg);
	lw->widx = widx;
	lw->log_fd = -1;
	uv_timer_init(lm->m->loop, &lw->timer);
	lw->timer.data = lw;
	if (cw->local) {
		unsigned char raw[24];
		randombytes_buf(raw, sizeof(raw));
		lw->password = xcalloc(1, sizeof(raw) * 2 + 1);
		sodium_bin2hex(lw->password, sizeof(raw) * 2 + 1, raw, sizeof(raw));
		sodium_memzero(raw, sizeof(raw));
	}
	ARRAY_GROW(lm->w, lm->n + 1, lm->alloc);
	lm->w[lm->n++] = lw;
	return lw;
}

/* ---- commands ---------------------------------------------------------------------- */

/* kiln-worker: $KILN_WORKER_BIN, beside this program, or in a build tree's src/worker/. */
static char *latent_find_worker_bin(void)
{
	const char *env = getenv("KILN_WORKER_BIN");
	if (env && *env)
		return xstrdup(env);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			char *c = xasprintf("%s/kiln-worker", self);
			if (access(c, X_OK) == 0)
				return c;
			free(c);
			/* a build tree: kiln at its top or in src/kiln/ */
			static const char *const rel[] = {"src/worker", "../worker"};
			for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
				c = xasprintf("%s/%s/kiln-worker", self, rel[i]);
				char real[PATH_MAX];
				if (access(c, X_OK) == 0 && realpath(c, real)) {
					free(c);
					return xstrdup(real);
				}
				free(c);
			}
		}
	}
	return xstrdup("kiln-worker");
}

static char *latent_password_file(const struct latent_worker *lw)
{
	return xasprintf("%s/workers/.%s.password", lw->lm->m->basedir, lw->name);
}

/* Writes the password file (0600) the commands may use. */
static int latent_write_password(const struct latent_worker *lw, const char *password)
{
	_cleanup_free_ char *path = latent_password_file(lw);
	return fsutil_write_atomic(path, NULL, password, strlen(password), 0600);
}

struct strv {
	char **v;
	size_t n, alloc;
};

static void strv_add(struct strv *s, char *owned)
{
	ARRAY_GROW(s->v, s->n + 2, s->alloc);
	s->v[s->n++] = owned;
	s->v[s->n] = NULL;
}

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

/* The master's environment, minus what we set, plus the worker's variables. */
static void latent_env(const struct latent_worker *lw, const char *password, struct strv *env)
{
	static const char *const ours[] = {
		"KILN_WORKER_NAME=", "KILN_WORKER_PASSWORD=", "KILN_WORKER_PASSWORD_FILE=",
		"KILN_MASTER=",      "KILN_MASTER_URL=",      "KILN_WORKER_DIR=",
		"KILN_WORKER_BIN=",  "KILN_MASTER_BASEDIR=",
	};
	for (char **e = environ; e && *e; e++) {
		bool skip = false;
		for (size_t k = 0; !skip && k < sizeof(ours) / sizeof(ours[0]); k++)
			skip = !strncmp(*e, ours[k], strlen(ours[k]));
		if (!skip)
			strv_add(env, xstrdup(*e));
	}
	struct latent *lm = lw->lm;
	strv_add(env, xasprintf("KILN_WORKER_NAME=%s", lw->name));
	/* the password only by file: a worker's environment reaches its builds'
	 * commands; the container kind passes it by name to the engine, and the
	 * command in the container unsets it before kiln-worker starts */
	if (lw->cfg->latent && lw->cfg->latent->kind == CONFIG_LATENT_CONTAINER)
		strv_add(env, xasprintf("KILN_WORKER_PASSWORD=%s", password));
	strv_add(env, xasprintf("KILN_WORKER_PASSWORD_FILE=%s/workers/.%s.password", lm->m->basedir,
				lw->name));
	strv_add(env, xasprintf("KILN_MASTER=%s", lm->master));
	strv_add(env, xasprintf("KILN_MASTER_URL=ws://%s", lm->master));
	strv_add(env, xasprintf("KILN_WORKER_DIR=%s/workers/%s", lm->m->basedir, lw->name));
	strv_add(env, xasprintf("KILN_WORKER_BIN=%s", lm->worker_bin));
	strv_add(env, xasprintf("KILN_MASTER_BASEDIR=%s", lm->m->basedir));
}

#define LATENT_LOCAL_SH                                                                            \
	"\"$KILN_WORKER_BIN\" create \"$KILN_WORKER_DIR\" --master \"$KILN_MASTER\" "              \
	"--name \"$KILN_WORKER_NAME\" --password-file \"$KILN_WORKER_PASSWORD_FILE\" >/dev/null "  \
	"&& exec \"$KILN_WORKER_BIN\" start \"$KILN_WORKER_DIR\""

static char *latent_container_name(const struct latent_worker *lw)
{
	return xasprintf("kiln-worker-%s", lw->name);
}

/* The start command's argv. */
static void latent_start_argv(const struct latent_worker *lw, struct strv *argv)
{
	const struct config_latent *l = lw->cfg->latent;
	if (latent_is_local(lw)) {
		strv_add(argv, xstrdup("/bin/sh"));
		strv_add(argv, xstrdup("-c"));
		strv_add(argv, xstrdup(LATENT_LOCAL_SH));
		return;
	}
	if (l->kind == CONFIG_LATENT_COMMAND) {
		for (size_t i = 0; i < l->nstart; i++)
			strv_add(argv, xstrdup(l->start[i]));
		return;
	}
	/* the container runs in the foreground: this process is the worker */
	strv_add(argv, xstrdup(l->engine));
	strv_add(argv, xstrdup("run"));
	strv_add(argv, xstrdup("--rm"));
	strv_add(argv, xstrdup("--name"));
	strv_add(argv, latent_container_name(lw));
	strv_add(argv, xasprintf("--network=%s", l->network));
	strv_add(argv, xstrdup("-e"));
	strv_add(argv, xstrdup("KILN_WORKER_PASSWORD")); /* its value from our environment */
	strv_add(argv, xstrdup("-e"));
	strv_add(argv, xasprintf("KILN_WORKER_NAME=%s", lw->name));
	strv_add(argv, xstrdup("-e"));
	strv_add(argv, xasprintf("KILN_MASTER=%s", lw->lm->master));
	for (size_t i = 0; i < l->nrun_args; i++)
		strv_add(argv, xstrdup(l->run_args[i]));
	strv_add(argv, xstrdup(l->image));
	strv_add(argv, xstrdup("/bin/sh"));
	strv_add(argv, xstrdup("-c"));
	strv_add(argv,
		 xasprintf("umask 077 && printf %%s \"$KILN_WORKER_PASSWORD\" > "
			   "/tmp/kiln-worker.password && unset KILN_WORKER_PASSWORD && "
			   "'%s' create /tmp/kiln-worker "
			   "--master \"$KILN_MASTER\" --name \"$KILN_WORKER_NAME\" "
			   "--password-file /tmp/kiln-worker.password >/dev/null && exec '%s' "
			   "start /tmp/kiln-worker",
			   l->worker_bin, l->worker_bin));
}

/* The stop command's argv; false when there is none. */
static bool latent_stop_argv(const struct latent_worker *lw, struct strv *argv)
{
	const struct config_latent *l = lw->cfg->latent;
	if (!l)
		return false;
	if (l->kind == CONFIG_LATENT_CONTAINER) {
		strv_add(argv, xstrdup(l->engine));
		strv_add(argv, xstrdup("stop"));
		strv_add(argv, xasprintf("--time=%d", (int)(l->stop_timeout / 2)));
		strv_add(argv, latent_container_name(lw));
		return true;
	}
	for (size_t i = 0; i < l->nstop; i++)
		strv_add(argv, xstrdup(l->stop[i]));
	return l->nstop > 0;
}

/* Output of a command: its last LATENT_TAIL bytes are kept for an error,
 * and everything goes to BASEDIR/workers/NAME.log (capped). */
static int latent_output(void *ud, int stream, const char *data, size_t len)
{
	struct latent_worker *lw = ud;
	(void)stream;
	if (lw->log_fd >= 0 && lw->log_bytes < LATENT_LOG_MAX) {
		size_t n =
			len < LATENT_LOG_MAX - lw->log_bytes ? len : LATENT_LOG_MAX - lw->log_bytes;
		ssize_t w = write(lw->log_fd, data, n);
		lw->log_bytes += n;
		if (w < 0 || lw->log_bytes >= LATENT_LOG_MAX) {
			static const char cut[] =
				"\n[kiln: log cap reached, the rest is dropped]\n";
			if (w >= 0 && write(lw->log_fd, cut, sizeof(cut) - 1) < 0)
				log_debug("worker=%s cannot write its log", lw->name);
			lw->log_bytes = LATENT_LOG_MAX;
		}
	}
	if (len >= LATENT_TAIL) {
		memcpy(lw->tail, data + len - LATENT_TAIL, LATENT_TAIL);
		lw->ntail = LATENT_TAIL;
	} else {
		size_t keep = lw->ntail + len > LATENT_TAIL ? LATENT_TAIL - len : lw->ntail;
		memmove(lw->tail, lw->tail + lw->ntail - keep, keep);
		memcpy(lw->tail + keep, data, len);
		lw->ntail = keep + len;
	}
	return 0;
}

/* The last line of the kept output, as text for a reason ("" if none). */
static void latent_tail_line(const struct latent_worker *lw, char *out, size_t size)
{
	size_t end = lw->ntail;
	while (end > 0 && (lw->tail[end - 1] == '\n' || lw->tail[end - 1] == '\r'))
		end--;
	size_t start = end;
	while (start > 0 && lw->tail[start - 1] != '\n')
		start--;
	size_t k = 0;
	for (size_t i = start; i < end && k + 1 < size; i++) {
		unsigned char c = (unsigned char)lw->tail[i];
		out[k++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[k] = '\0';
}

static int latent_open_log(struct latent_worker *lw)
{
	if (lw->log_fd >= 0)
		return 0;
	_cleanup_free_ char *path = xasprintf("%s/workers/%s.log", lw->lm->m->basedir, lw->name);
	lw->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	return lw->log_fd < 0 ? -errno : 0;
}

/* ---- failing ----------------------------------------------------------------------- */

static void latent_fail(struct latent_worker *lw, char *reason);
static void latent_run_stop_command(struct latent_worker *lw);
static double latent_stop_timeout(const struct latent_worker *lw);

static void latent_timer_fire(uv_timer_t *t);

static void latent_arm(struct latent_worker *lw, double seconds)
{
	uint64_t ms = seconds <= 0 ? 1 : (uint64_t)(seconds * 1000);
	uv_timer_start(&lw->timer, latent_timer_fire, ms, 0);
}

static unsigned latent_backoff_s(const struct latent_worker *lw)
{
	unsigned s = 1u << (lw->backoff < 6 ? lw->backoff : 6);
	return s > LATENT_BACKOFF_MAX_S ? LATENT_BACKOFF_MAX_S : s;
}

/* A start failed: lw is failed with reason (owned); the distributor
 * decides what becomes of the requests (latent_demand). */
static void latent_fail(struct latent_worker *lw, char *reason)
{
	if (strlen(reason) > LATENT_REASON_MAX)
		reason[LATENT_REASON_MAX] = '\0';
	log_warn("worker=%s %s: %s", lw->name,
		 lw->state == LATENT_RUNNING ? "ended unexpectedly" : "did not start", reason);
	latent_set_error(lw, reason);
	lw->state = LATENT_FAILED;
	lw->failed_at = clock_wall();
	uv_timer_stop(&lw->timer);
	if (lw->start_proc && !proc_exited(lw->start_proc))
		proc_kill(lw->start_proc, SIGTERM, 5);
	if (latent_is_local(lw) && !lw->lm->stopping) {
		unsigned s = latent_backoff_s(lw);
		lw->backoff++;
		log_info("worker=%s restarting in %u s", lw->name, s);
		latent_arm(lw, s);
	} else if (!latent_is_local(lw) && !lw->lm->stopping) {
		/* what a failed start left behind (a half-made machine) is cleaned
		 * up; the timer bounds the stop command */
		latent_run_stop_command(lw);
		if (lw->stop_proc)
			latent_arm(lw, latent_stop_timeout(lw));
	}
	latent_kick(lw->lm);
}

/* ---- starting ---------------------------------------------------------------------- */

static void latent_start_done(void *ud, int64_t status, int sig, bool gave_up);
static const struct proc_ops latent_start_ops = {latent_output, latent_start_done};

static size_t latent_active_count(const struct latent *lm)
{
	size_t n = 0;
	for (size_t i = 0; i < lm->n; i++) {
		const struct latent_worker *lw = lm->w[i];
		if (!latent_is_local(lw) && lw->state != LATENT_STOPPED &&
		    lw->state != LATENT_FAILED)
			n++;
	}
	return n;
}

static void latent_begin_start(struct latent_worker *lw)
{
	struct latent *lm = lw->lm;
	const char *password = lw->password ? lw->password : lw->cfg->password;
	_cleanup_free_ char *dir = xasprintf("%s/workers", lm->m->basedir);
	int r = fsutil_mkdir_p(dir, 0755);
	if (r < 0) {
		latent_fail(lw, xasprintf("cannot create '%s': %s", dir, err_str(r)));
		return;
	}
	r = latent_write_password(lw, password);
	if (r < 0) {
		latent_fail(lw, xasprintf("cannot write the password file in '%s': %s", dir,
					  err_str(r)));
		return;
	}
	if (latent_open_log(lw) < 0)
		log_warn("worker=%s cannot open its log in '%s': %s", lw->name, dir,
			 strerror(errno));
	lw->log_bytes = 0;
	lw->ntail = 0;
	struct strv argv = {0}, env = {0};
	latent_start_argv(lw, &argv);
	latent_env(lw, password, &env);
	struct proc_opts o = {.argv = argv.v, .env = env.v, .cwd = lm->m->basedir};
	lw->state = LATENT_STARTING;
	lw->launched_ms = clock_mono_ms();
	r = proc_start(lm->m->loop, &o, &latent_start_ops, lw, &lw->start_proc);
	strv_free(&argv);
	for (size_t i = 0; i < env.n; i++)
		sodium_memzero(env.v[i], strlen(env.v[i]));
	strv_free(&env);
	if (r < 0) {
		lw->start_proc = NULL;
		latent_fail(lw, xasprintf("cannot run the start command: %s", err_str(r)));
		return;
	}
	double timeout =
		latent_is_local(lw) ? LATENT_LOCAL_START_S : lw->cfg->latent->start_timeout;
	log_info("worker=%s starting (pid %d; it has %g s to connect)", lw->name,
		 (int)proc_pid(lw->start_proc), timeout);
	latent_arm(lw, timeout);
}

static void latent_start_done(void *ud, int64_t status, int sig, bool gave_up)
{
	struct latent_worker *lw = ud;
	(void)gave_up;
	lw->start_proc = NULL;
	char line[200];
	latent_tail_line(lw, line, sizeof(line));
	char *how = sig ? xasprintf("the start command was killed by signal %d", sig)
			: xasprintf("the start command exited with status %lld", (long long)status);
	switch (lw->state) {
	case LATENT_STARTING:
		if (!sig && status == 0 && !latent_is_local(lw)) {
			/* a launcher (ssh, a cloud CLI): the worker connects later */
			log_info("worker=%s start command done; waiting for the worker", lw->name);
			free(how);
			return;
		}
		latent_fail(lw, *line ? xasprintf("%s: %s", how, line) : xstrdup(how));
		break;
	case LATENT_RUNNING:
		if (latent_is_local(lw)) {
			log_warn("worker=%s: %s", lw->name, how);
			if (clock_mono_ms() - lw->launched_ms > 60000)
				lw->backoff = 0; /* it ran a while: not a crash loop */
			if (!lw->attached)
				latent_fail(lw, xstrdup(how));
			/* else: its connection drops next (latent_detached restarts it) */
		} else if (!lw->attached) {
			latent_begin_stop(lw, "its start command ended and it is not connected");
		}
		break;
	case LATENT_STOPPING:
		latent_check_stopped(lw);
		break;
	case LATENT_FAILED:
	case LATENT_STOPPED:
		if (lw->removed || lw->lm->stopping)
			latent_release(lw);
		break;
	}
	free(how);
}

/* ---- stopping ---------------------------------------------------------------------- */

static void latent_stop_done(void *ud, int64_t status, int sig, bool gave_up);
static const struct proc_ops latent_stop_ops = {latent_output, latent_stop_done};

static double latent_stop_timeout(const struct latent_worker *lw)
{
	return lw->cfg->latent ? lw->cfg->latent->stop_timeout : LATENT_LOCAL_STOP_S;
}

static void latent_check_stopped(struct latent_worker *lw)
{
	if (lw->state != LATENT_STOPPING || lw->stop_proc)
		return;
	if (lw->start_proc) {
		if (!proc_exited(lw->start_proc))
			proc_kill(lw->start_proc, SIGTERM, latent_stop_timeout(lw));
		return; /* its done() comes back here */
	}
	uv_timer_stop(&lw->timer);
	lw->state = LATENT_STOPPED;
	log_info("worker=%s stopped", lw->name);
	if (lw->removed || lw->lm->stopping) {
		latent_release(lw);
		return;
	}
	if (latent_is_local(lw)) { /* stopped by its death: back after the backoff */
		unsigned s = latent_backoff_s(lw);
		lw->backoff++;
		latent_arm(lw, s);
	}
	latent_kick(lw->lm);
}

static void latent_stop_done(void *ud, int64_t status, int sig, bool gave_up)
{
	struct latent_worker *lw = ud;
	(void)gave_up;
	lw->stop_proc = NULL;
	if (sig || status != 0) {
		char line[200];
		latent_tail_line(lw, line, sizeof(line));
		log_warn("worker=%s stop command %s %d%s%s", lw->name,
			 sig ? "killed by signal" : "exited with status", sig ? sig : (int)status,
			 *line ? ": " : "", line);
	}
	if (lw->state == LATENT_STOPPING)
		latent_check_stopped(lw);
	else if (lw->removed || lw->lm->stopping)
		latent_release(lw);
}

static void latent_run_stop_command(struct latent_worker *lw)
{
	struct strv argv = {0}, env = {0};
	if (lw->stop_proc || !latent_stop_argv(lw, &argv)) {
		strv_free(&argv);
		return;
	}
	const char *password = lw->password ? lw->password : lw->cfg->password;
	latent_env(lw, password, &env);
	struct proc_opts o = {.argv = argv.v, .env = env.v, .cwd = lw->lm->m->basedir};
	int r = proc_start(lw->lm->m->loop, &o, &latent_stop_ops, lw, &lw->stop_proc);
	strv_free(&argv);
	strv_free(&env);
	if (r < 0) {
		lw->stop_proc = NULL;
		log_warn("worker=%s cannot run the stop command: %s", lw->name, err_str(r));
		return;
	}
	/* bounded: the timer (stop_timeout) kills it */
}

static void latent_begin_stop(struct latent_worker *lw, const char *why)
{
	log_info("worker=%s stopping: %s", lw->name, why);
	lw->state = LATENT_STOPPING;
	struct wconn *w = latent_conn(lw);
	if (w && w->attached && !w->closed && w->running == 0)
		wconn_kill(w); /* `shutdown`: the worker leaves by itself */
	latent_run_stop_command(lw);
	latent_arm(lw, latent_stop_timeout(lw));
	latent_check_stopped(lw);
}

/* ---- the timer --------------------------------------------------------------------- */

/* lw's live connection, NULL: by index, or by name for a worker a reconfig
 * removed (its connection stays until its builds end). */
static struct wconn *latent_conn(const struct latent_worker *lw)
{
	const struct latent *lm = lw->lm;
	struct engine *e = lm->stopping ? NULL : lm->m->engine;
	if (!e)
		return NULL;
	if (!lw->removed && lw->widx < lm->nby_widx && lm->by_widx[lw->widx] == lw)
		return e->conn[lw->widx];
	for (struct wconn *w = e->workers; w; w = w->next)
		if (!w->closed && !strcmp(w->cfg->name, lw->name))
			return w;
	return NULL;
}

static void latent_timer_fire(uv_timer_t *t)
{
	struct latent_worker *lw = t->data;
	struct latent *lm = lw->lm;
	switch (lw->state) {
	case LATENT_STARTING: {
		double s =
			latent_is_local(lw) ? LATENT_LOCAL_START_S : lw->cfg->latent->start_timeout;
		latent_fail(lw, xasprintf("it did not connect within %g s (start_timeout)", s));
		break;
	}
	case LATENT_RUNNING: {
		struct wconn *w = latent_conn(lw);
		if (lw->removed) { /* by a reconfig: once its builds are done */
			if (w && w->running > 0)
				latent_arm(lw, 1);
			else
				latent_begin_stop(lw, "removed by a reconfig");
			break;
		}
		if (latent_is_local(lw))
			break;
		double idle = lw->cfg->latent->idle_timeout;
		uint64_t now = clock_mono_ms();
		if (w && w->running > 0) {
			latent_arm(lw, idle);
			break;
		}
		uint64_t since = now - lw->active_ms;
		if ((double)since < idle * 1000) {
			latent_arm(lw, idle - (double)since / 1000);
			break;
		}
		char why[96];
		snprintf(why, sizeof(why), "no build for %g s (idle_timeout)", idle);
		latent_begin_stop(lw, why);
		break;
	}
	case LATENT_STOPPING:
		/* the stop command (or the group's SIGTERM) overran stop_timeout */
		log_warn("worker=%s did not stop within %g s: killing", lw->name,
			 latent_stop_timeout(lw));
		if (lw->stop_proc)
			proc_kill(lw->stop_proc, SIGKILL, 0);
		if (lw->start_proc)
			proc_kill(lw->start_proc, SIGKILL, 0);
		break;
	case LATENT_FAILED:
	case LATENT_STOPPED:
		if (lw->stop_proc) /* the clean-up after a failed start overran */
			proc_kill(lw->stop_proc, SIGKILL, 0);
		if (latent_is_local(lw) && !lm->stopping && !lw->removed) {
			if (lw->start_proc) { /* the failed one is still going away */
				latent_arm(lw, 1);
				break;
			}
			latent_begin_start(lw);
		}
		break;
	}
}

/* ---- the distributor's side -------------------------------------------------------- */

/* A request ending EXCEPTION because no worker started: its build row is
 * being added (answered on the loop). */
struct latent_fail {
	struct master *m;
	int64_t brid, bsid;
	double when;
	char *state; /* owned: "worker did not start: ..." */
};

static void latent_fail_free(struct latent_fail *f)
{
	free(f->state);
	free(f);
}

/* The row is there (or could not be added): the worker_preparation step
 * says why, the build and its request end EXCEPTION. */
static void latent_fail_added(void *arg, int r, int64_t buildid, int64_t number, const char *err)
{
	struct latent_fail *f = arg;
	struct master *m = f->m;
	(void)number;
	if (r == -ECANCELED) { /* the database closed first: the master is going */
		latent_fail_free(f);
		return;
	}
	struct db *db = m->db;
	if (r < 0) {
		log_error("cannot record the failed build of request %lld: %s", (long long)f->brid,
			  err ? err : "failed");
	} else {
		events_publish_row(m, DB_BUILDS, "builds", "buildid", buildid, "new");
		_cleanup_free_ char *text = xasprintf("%s\n", f->state);
		int64_t stepid = 0, logid = 0;
		if (db_step_begin(db, buildid, "worker_preparation", f->when,
				  "worker did not start", &stepid, NULL) < 0 ||
		    db_log_add(db, stepid, "stdio", 's', &logid) < 0 ||
		    db_log_append(db, logid, text, strlen(text)) < 0 ||
		    db_log_finish(db, logid) < 0 ||
		    db_step_finish(db, stepid, RESULTS_EXCEPTION, "worker did not start", false,
				   f->when) < 0 ||
		    db_build_finish(db, buildid, RESULTS_EXCEPTION, f->state, f->when) < 0)
			log_error("build=%lld cannot record why it failed: %s", (long long)buildid,
				  db_errmsg(db));
		events_publish_row(m, DB_BUILDS, "builds", "buildid", buildid, "finished");
	}
	build_complete_request(m, f->brid, f->bsid, RESULTS_EXCEPTION, f->when, NULL, NULL);
	latent_fail_free(f);
}

/* A request to end EXCEPTION, while its claim is in flight. */
struct latent_claim {
	struct master *m;
	struct db_request req;
	int64_t workerid;
	char *state; /* owned: "worker did not start: ..." */
};

/* Claimed (or taken by another master meanwhile): its build row says why. */
static void latent_fail_claimed(void *arg, int r, const struct db_request_line *v, size_t n,
				const char *err)
{
	struct latent_claim *c = arg;
	struct master *m = c->m;
	if (r < 0 || n != 1) {
		if (r < 0 && r != -ECANCELED)
			log_error("cannot claim request %lld: %s", (long long)c->req.buildrequestid,
				  err ? err : "failed");
		free(c->state);
		free(c);
		return;
	}
	(void)v;
	double now = clock_wall();
	events_publish_row(m, DB_BUILDREQUESTS, "buildrequests", "buildrequestid",
			   c->req.buildrequestid, "claimed");
	struct latent_fail *f = xmalloc(sizeof(*f));
	*f = (struct latent_fail){.m = m,
				  .brid = c->req.buildrequestid,
				  .bsid = c->req.buildsetid,
				  .when = now,
				  .state = c->state};
	int64_t builderid = c->req.builderid, workerid = c->workerid;
	free(c);
	r = db_build_add_async(m->db, builderid, f->brid, workerid, m->masterid, now,
			       latent_fail_added, f);
	if (r < 0) {
		log_error("cannot record the failed build of request %lld: %s", (long long)f->brid,
			  db_errmsg(m->db));
		build_complete_request(m, f->brid, f->bsid, RESULTS_EXCEPTION, now, NULL, NULL);
		latent_fail_free(f);
	}
}

/* Ends request req of builder i EXCEPTION: claimed first (on the loop),
 * then a build row that says why (the worker_preparation step failed with
 * the reasons in its log). */
static void latent_fail_request(struct latent *lm, size_t i, const struct db_request *req,
				const char *reason, const struct config_worker *cw)
{
	struct master *m = lm->m;
	struct latent_claim *c = xmalloc(sizeof(*c));
	*c = (struct latent_claim){.m = m,
				   .req = *req,
				   .workerid = engine_worker_id(m->engine, cw),
				   .state = xasprintf("worker did not start: %s", reason)};
	log_warn("builder=%s request %lld ends EXCEPTION: %s", m->cfg->builder[i].name,
		 (long long)req->buildrequestid, c->state);
	int r = db_request_claim_many_async(m->db, &req->buildrequestid, 1, m->masterid,
					    clock_wall(), latent_fail_claimed, c);
	if (r < 0) {
		log_error("cannot claim request %lld: %s", (long long)req->buildrequestid,
			  db_errmsg(m->db));
		free(c->state);
		free(c);
	}
}

bool latent_any(const struct latent *lm)
{
	return lm && lm->n > 0 && !lm->stopping;
}

/* What becomes of builder i's best queued request req: a latent worker
 * of the builder started for it, or it waits, or (every one failed to
 * start for it) it ends EXCEPTION. */
static void latent_decide(struct latent *lm, size_t i, const struct db_request *req)
{
	struct master *m = lm->m;
	struct engine *e = m->engine;
	const struct config_builder *bc = &m->cfg->builder[i];
	struct latent_worker *cand = NULL;
	bool waiting = false, plain = false, starting = false;
	for (size_t k = 0; k < bc->nworkers; k++) {
		size_t wi = e->builder_workers[i][k];
		struct latent_worker *lw = wi < lm->nby_widx ? lm->by_widx[wi] : NULL;
		if (!lw || latent_is_local(lw)) {
			plain = true; /* it may connect; the request waits for it */
			continue;
		}
		switch (lw->state) {
		case LATENT_STARTING:
			starting = true;
			break;
		case LATENT_RUNNING:
		case LATENT_STOPPING:
			waiting = true;
			break;
		case LATENT_STOPPED:
			if (!cand)
				cand = lw;
			break;
		case LATENT_FAILED:
			/* tried for this request already: not again (no loop) */
			if (!cand && lw->failed_at < req->submitted_at && !lw->start_proc &&
			    !lw->stop_proc)
				cand = lw;
			break;
		}
	}
	if (starting)
		return; /* one start at a time per builder */
	if (cand) {
		if (m->cfg->latent_max_count > 0 &&
		    latent_active_count(lm) >= (size_t)m->cfg->latent_max_count) {
			log_debug("builder=%s waits: latent_max_count (%d) reached", bc->name,
				  m->cfg->latent_max_count);
			return;
		}
		log_info("worker=%s starting for builder=%s request %lld", cand->name, bc->name,
			 (long long)req->buildrequestid);
		latent_begin_start(cand);
		return;
	}
	if (waiting || plain)
		return;
	/* every latent worker of the builder failed to start for it */
	struct buf why;
	buf_init(&why, LATENT_REASON_MAX * 4);
	const struct config_worker *first = NULL; /* the failed build names it */
	for (size_t k = 0; k < bc->nworkers; k++) {
		struct latent_worker *lw = lm->by_widx[e->builder_workers[i][k]];
		if (!first)
			first = &m->cfg->worker[e->builder_workers[i][k]];
		if (buf_addf(&why, "%s%s: %s", why.len ? "; " : "", lw->name,
			     lw->error ? lw->error : "failed") < 0)
			break;
	}
	if (!first)
		return; /* a builder without workers: nothing to start */
	latent_fail_request(lm, i, req, why.len ? why.ptr : "failed", first);
	buf_release(&why);
	engine_kick(e); /* the builder's next request, once this one is claimed */
}

/* A look at a builder's queue, in flight. */
struct latent_ask {
	struct master *m;
	int64_t builderid;
};

static void latent_asked(void *arg, int r, const struct db_request *req, const char *err)
{
	struct latent_ask *a = arg;
	struct master *m = a->m;
	int64_t builderid = a->builderid;
	free(a);
	struct latent *lm = r == -ECANCELED ? NULL : m->latent;
	if (!lm || lm->stopping)
		return; /* the master is stopping */
	for (size_t k = 0; k < lm->nasking; k++)
		if (lm->asking[k] == builderid) {
			lm->asking[k] = lm->asking[--lm->nasking];
			break;
		}
	if (r < 0) {
		log_error("cannot look at the queue of builder %lld: %s", (long long)builderid,
			  err ? err : "failed");
		return;
	}
	int i = req && m->engine ? engine_builder_index(m->engine, builderid) : -1;
	if (i >= 0)
		latent_decide(lm, (size_t)i, req);
}

void latent_demand(struct latent *lm, size_t i)
{
	if (!lm || lm->stopping || !lm->master)
		return;
	struct master *m = lm->m;
	int64_t builderid = m->engine->builderids[i];
	for (size_t k = 0; k < lm->nasking; k++)
		if (lm->asking[k] == builderid)
			return; /* its answer decides */
	struct latent_ask *a = xmalloc(sizeof(*a));
	*a = (struct latent_ask){.m = m, .builderid = builderid};
	if (db_request_next_async(m->db, builderid, latent_asked, a) < 0) {
		log_error("builder=%s cannot look at its queue: %s", m->cfg->builder[i].name,
			  db_errmsg(m->db));
		free(a);
		return;
	}
	ARRAY_GROW(lm->asking, lm->nasking + 1, lm->asking_alloc);
	lm->asking[lm->nasking++] = builderid;
}

/* ---- events of the engine -------------------------------------------------------- */

void latent_attached(struct latent *lm, const struct config_worker *cw)
{
	struct latent_worker *lw = latent_find(lm, cw);
	if (!lw || lm->stopping)
		return;
	lw->attached = true;
	lw->active_ms = clock_mono_ms();
	if (lw->state == LATENT_STOPPING || lw->removed)
		return;
	if (lw->state != LATENT_RUNNING)
		log_info("worker=%s running (connected %llu ms after its start)", lw->name,
			 (unsigned long long)(clock_mono_ms() - lw->launched_ms));
	lw->state = LATENT_RUNNING;
	latent_set_error(lw, NULL);
	uv_timer_stop(&lw->timer);
	if (!latent_is_local(lw))
		latent_arm(lw, lw->cfg->latent->idle_timeout);
}

void latent_detached(struct latent *lm, const struct config_worker *cw)
{
	struct latent_worker *lw = latent_find(lm, cw);
	if (!lw || lm->stopping)
		return;
	lw->attached = false;
	if (lw->state != LATENT_RUNNING)
		return;
	bool alive = lw->start_proc && !proc_exited(lw->start_proc);
	if (latent_is_local(lw)) {
		if (!alive)
			latent_fail(lw, xstrdup("the worker process ended"));
		return; /* alive: it reconnects by itself */
	}
	if (!alive)
		latent_begin_stop(lw, "it disconnected");
}

void latent_activity(struct latent *lm, const struct config_worker *cw)
{
	struct latent_worker *lw = latent_find(lm, cw);
	if (lw)
		lw->active_ms = clock_mono_ms();
}

const char *latent_local_password(const struct latent *lm, const struct config_worker *cw)
{
	if (!cw || !cw->local)
		return NULL;
	const struct latent_worker *lw = latent_find(lm, cw);
	return lw ? lw->password : NULL;
}

void latent_api_fix(const struct latent *lm, json_t *item)
{
	const char *name = json_string_value(json_object_get(item, "name"));
	const struct latent_worker *lw = NULL;
	for (size_t i = 0; lm && name && i < lm->n; i++)
		if (!strcmp(lm->w[i]->name, name) && !lm->w[i]->removed)
			lw = lm->w[i];
	json_object_set_new(item, "latent_state",
			    lw ? json_string(latent_state_name(lw->state)) : json_null());
	json_object_set_new(item, "latent_error",
			    lw && lw->error ? json_string(lw->error) : json_null());
	json_object_set_new(item, "latent_kind",
			    !lw ? json_null()
			    : latent_is_local(lw)
				    ? json_string("local")
				    : json_string(lw->cfg->latent->kind == CONFIG_LATENT_CONTAINER
							  ? "container"
							  : "command"));
}

/* ---- the manager ------------------------------------------------------------------- */

static bool latent_declared(const struct config_worker *cw)
{
	return cw->local || cw->latent;
}

int latent_start(struct master *m)
{
	const struct config *cfg = m->cfg;
	bool any = false;
	for (size_t i = 0; i < cfg->nworkers && !any; i++)
		any = latent_declared(&cfg->worker[i]);
	m->latent = NULL;
	if (!any)
		return 0;
	struct latent *lm = xcalloc(1, sizeof(*lm));
	lm->m = m;
	lm->worker_bin = latent_find_worker_bin();
	const char *host = cfg->workers.host;
	int port = m->workers_port;
	if (!strcmp(host, "0.0.0.0"))
		host = "127.0.0.1";
	if (strchr(host, ':'))
		lm->master = xasprintf("[%s]:%d", strcmp(host, "::") ? host : "::1", port);
	else
		lm->master = xasprintf("%s:%d", host, port);
	for (size_t i = 0; i < cfg->nworkers; i++)
		if (latent_declared(&cfg->worker[i]))
			latent_add(lm, i);
	latent_index(lm);
	m->latent = lm;
	log_info("%zu worker(s) started by the master (kiln-worker: '%s', master %s)", lm->n,
		 lm->worker_bin, lm->master);
	for (size_t i = 0; i < lm->n; i++)
		if (latent_is_local(lm->w[i]))
			latent_begin_start(lm->w[i]);
	latent_kick(lm);
	return 0;
}

void latent_reconfig(struct master *m)
{
	struct latent *lm = m->latent;
	if (!lm) {
		if (m->workers_port > 0 && latent_start(m) < 0)
			log_error("cannot start the latent and local workers");
		return;
	}
	const struct config *cfg = m->cfg;
	for (size_t i = 0; i < lm->n; i++)
		lm->w[i]->widx = SIZE_MAX;
	for (size_t j = 0; j < cfg->nworkers; j++) {
		const struct config_worker *cw = &cfg->worker[j];
		struct latent_worker *lw = NULL;
		for (size_t i = 0; i < lm->n && !lw; i++)
			if (!lm->w[i]->removed && !strcmp(lm->w[i]->name, cw->name))
				lw = lm->w[i];
		if (lw && latent_declared(cw) && cw->local == lw->cfg->local) {
			lw->cfg = cw; /* a changed command applies from its next start */
			config_unref(lw->gen);
			lw->gen = config_ref(m->cfg);
			lw->widx = j;
			continue;
		}
		if (lw) { /* no longer started by the master, or another kind */
			lw->removed = true;
		}
		if (latent_declared(cw)) {
			struct latent_worker *nw = latent_add(lm, j);
			log_info("worker=%s added by the reconfig", nw->name);
			if (lw) /* the old entry's process must go first: start after */
				continue;
			if (latent_is_local(nw))
				latent_begin_start(nw);
		}
	}
	latent_index(lm);
	for (size_t i = lm->n; i-- > 0;) {
		struct latent_worker *lw = lm->w[i];
		if (lw->widx != SIZE_MAX && !lw->removed)
			continue;
		lw->removed = true;
		log_info("worker=%s no longer started by the master: stopping it", lw->name);
		/* the entry keeps pointing at its old declaration (a retired
		 * generation, kept while its connection lives): copy nothing, stop now */
		struct wconn *w = latent_conn(lw);
		if (lw->state == LATENT_RUNNING && w && w->running > 0) {
			log_info("worker=%s stops once its %d build(s) end", lw->name, w->running);
			latent_arm(lw, 1);
		} else if (lw->state == LATENT_STARTING || lw->state == LATENT_RUNNING)
			latent_begin_stop(lw, "removed by a reconfig");
		else if (lw->state != LATENT_STOPPING)
			latent_release(lw);
	}
	/* local workers added in place of a removed entry: started on the next
	 * timer turn (their backoff timer) */
	for (size_t i = 0; i < lm->n; i++) {
		struct latent_worker *lw = lm->w[i];
		if (!lw->removed && latent_is_local(lw) && lw->state == LATENT_STOPPED &&
		    !lw->start_proc && !uv_is_active((uv_handle_t *)&lw->timer))
			latent_arm(lw, 1);
	}
	latent_kick(lm);
}

void latent_stop(struct latent *lm)
{
	if (!lm)
		return;
	lm->stopping = true;
	lm->live = lm->n;
	for (size_t i = 0; i < lm->n; i++)
		lm->w[i]->counted = true;
	if (lm->n == 0) { /* nothing to wait for */
		free(lm->w);
		free(lm->by_widx);
		free(lm->worker_bin);
		free(lm->master);
		free(lm->asking);
		free(lm);
		return;
	}
	/* latent_release() edits lm->w: walk a copy */
	size_t n = lm->n;
	struct latent_worker **v = xcalloc(n + 1, sizeof(*v));
	memcpy(v, lm->w, n * sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		struct latent_worker *lw = v[i];
		if (lw->state == LATENT_STARTING || lw->state == LATENT_RUNNING)
			latent_begin_stop(lw, "the master is stopping");
		else if (lw->state != LATENT_STOPPING) {
			if (lw->start_proc && !proc_exited(lw->start_proc))
				proc_kill(lw->start_proc, SIGTERM, latent_stop_timeout(lw));
			latent_release(lw);
		}
	}
	free(v);
}

void latent_kill_now(struct latent *lm)
{
	for (size_t i = 0; lm && i < lm->n; i++) {
		struct latent_worker *lw = lm->w[i];
		if (lw->start_proc && !proc_exited(lw->start_proc))
			kill(-proc_pid(lw->start_proc), SIGTERM);
		if (lw->stop_proc && !proc_exited(lw->stop_proc))
			kill(-proc_pid(lw->stop_proc), SIGTERM);
	}
}
