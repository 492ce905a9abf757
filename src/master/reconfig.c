/*
 * Live reconfiguration: load, check, apply, report (reconfig.h).
 */
#define LOG_SUBSYS "reconfig"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/changes/poller.h"
#include "master/engine.h"
#include "master/latent.h"
#include "master/master.h"
#include "master/reconfig.h"
#include "master/reporters/reporters.h"
#include "master/sched/sched.h"

/* a message cut at its buffer's cap is still sent, shorter */
#define BUF_IGNORE(x)                                                                              \
	do {                                                                                       \
		if ((x) < 0)                                                                       \
			break;                                                                     \
	} while (0)

static uint64_t reconfig_seq; /* this process's reconfigs (one master per process) */

static void reconfig_write_result(struct master *m, uint64_t seq, bool ok, const char *message)
{
	json_t *o = json_pack("{s:I,s:I,s:b,s:s}", "pid", (json_int_t)getpid(), "seq",
			      (json_int_t)seq, "ok", ok, "message", message);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	_cleanup_free_ char *path = xasprintf("%s/%s", m->basedir, RECONFIG_RESULT_FILE);
	_cleanup_free_ char *line = xasprintf("%s\n", text);
	int r = fsutil_write_atomic(path, NULL, line, strlen(line), 0644);
	if (r < 0)
		log_error_errno(r, "cannot write '%s'", path);
	free(text);
}

static void reconfig_count(struct buf *b, const char *what, const struct config_diff_count *c)
{
	BUF_IGNORE(buf_addf(b, "%s%zu %s (+%zu -%zu ~%zu)", b->len ? ", " : "", c->total, what,
			    c->added, c->removed, c->changed));
}

static bool str_differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/* Settings read only at start: named in the verdict, applied at the next start. */
static void reconfig_restart_only(const struct config *o, const struct config *n, struct buf *b)
{
	const char *names[8];
	size_t k = 0;
	if (str_differ(o->http.host, n->http.host) || o->http.port != n->http.port)
		names[k++] = "http";
	if (str_differ(o->workers.host, n->workers.host) || o->workers.port != n->workers.port)
		names[k++] = "workers_listen";
	if (str_differ(o->db_url, n->db_url))
		names[k++] = "db_url";
	if ((o->metrics_push == NULL) != (n->metrics_push == NULL))
		names[k++] = "metrics_push";
	if (o->artifacts_max_bytes != n->artifacts_max_bytes ||
	    o->artifacts_keep_days != n->artifacts_keep_days ||
	    o->artifacts_keep_builds != n->artifacts_keep_builds)
		names[k++] = "artifacts";
	if (o->log_json != n->log_json)
		names[k++] = "log_format";
	for (size_t i = 0; i < k; i++)
		BUF_IGNORE(buf_addf(b, "%s%s", i ? ", " : "; at the next start only: ", names[i]));
}

/* A reload between its check and its apply (PostgreSQL: the engine's
 * registrations asked on the loop first).  One at a time per process. */
struct reconfig_job {
	struct master *m;
	struct config *ncfg;
	struct config_diff d;
	struct buf note;
	uint64_t seq, t0;
};
static struct reconfig_job *reconfig_pending;
static bool reconfig_again; /* a SIGHUP came meanwhile: one more reload after it */

static void reconfig_refuse(struct master *m, uint64_t seq, char *err)
{
	log_error("reconfig refused, the configuration stays as it was: %s",
		  err ? err : "master.lua: cannot load");
	reconfig_write_result(m, seq, false, err ? err : "master.lua: cannot load");
	free(err);
}

/* engine_reconfig and the rest: one loop turn, no failure after the engine's */
static void reconfig_apply(struct reconfig_job *job)
{
	struct master *m = job->m;
	struct config *ncfg = job->ncfg;
	char *err = NULL;
	ncfg->generation = m->cfg->generation + 1;
	int r = engine_reconfig(m->engine, ncfg, &err); /* m->cfg = ncfg from here on */
	if (r < 0) {
		config_unref(ncfg);
		reconfig_refuse(m, job->seq, err);
		return;
	}
	if (m->sched)
		sched_reconfig(m->sched, m->cfg);
	latent_reconfig(m); /* latent and local workers, by name (issue 14) */
	if (m->pollers && pollers_reconfig(m->pollers, m->cfg) < 0)
		log_error("change sources: not all could start");
	struct config_diff *d = &job->d;
	bool rchanged = d->reporters.added || d->reporters.removed || d->reporters.changed;
	if (reporters_reconfig(m, &m->reporters, rchanged) < 0)
		log_error("reporters: not all could start");
	if (rchanged) /* unchanged ones keep pointers into the generation they started with */
		engine_pin_reporters(m->engine, m->cfg);
	if (db_flush(m->db) < 0)
		log_error("cannot store the reconfig: %s", db_errmsg(m->db));

	struct buf b;
	buf_init(&b, 4096);
	reconfig_count(&b, "builders", &d->builders);
	reconfig_count(&b, "workers", &d->workers);
	reconfig_count(&b, "schedulers", &d->schedulers);
	reconfig_count(&b, "change sources", &d->pollers);
	reconfig_count(&b, "reporters", &d->reporters);
	BUF_IGNORE(buf_addf(&b, "; generation %llu in %llu ms%.*s",
			    (unsigned long long)m->cfg->generation,
			    (unsigned long long)(clock_mono_ms() - job->t0), (int)job->note.len,
			    job->note.len ? job->note.ptr : ""));
	char *summary = buf_detach(&b, NULL);
	char *msg = xasprintf("reconfig done: %s", summary ? summary : "");
	free(summary);
	log_info("%s", msg);
	reconfig_write_result(m, job->seq, true, msg);
	free(msg);
}

static void reconfig_job_free(struct reconfig_job *job)
{
	buf_release(&job->note);
	free(job);
}

static void reconfig_prepared(void *arg, int r, char *err)
{
	struct reconfig_job *job = arg;
	struct master *m = job->m;
	reconfig_pending = NULL;
	if (r == -ECANCELED) { /* the master stops */
		config_unref(job->ncfg);
		reconfig_job_free(job);
		reconfig_again = false;
		return;
	}
	if (r < 0) {
		config_unref(job->ncfg);
		reconfig_refuse(m, job->seq, err ? err : xstrdup(err_str(r)));
	} else {
		free(err);
		reconfig_apply(job);
	}
	reconfig_job_free(job);
	if (reconfig_again) {
		reconfig_again = false;
		reconfig_run(m);
	}
}

void reconfig_run(struct master *m)
{
	if (reconfig_pending) {
		log_info("a reconfig is under way: another one follows it");
		reconfig_again = true;
		return;
	}
	uint64_t seq = ++reconfig_seq;
	uint64_t t0 = clock_mono_ms();
	struct config *ncfg = NULL;
	char *err = NULL;
	int r = config_load(m->basedir, &ncfg, &err);
	struct config_diff d;
	if (r == 0) {
		config_diff(m->cfg, ncfg, &d);
		if (d.locks_changed) {
			err = xstrdup(
				"master.lua: the lock declarations changed: a reconfig cannot "
				"change locks (restart the master)");
			r = KILN_ECONFIG;
		}
	}
	if (r == 0 && ncfg->npollers > 0) {
		/* what the change sources need, made before anything changes */
		_cleanup_free_ char *dir = xasprintf("%s/pollers", m->basedir);
		int mr = fsutil_mkdir_p(dir, 0755);
		if (mr < 0) {
			err = xasprintf("cannot create '%s': %s", dir, err_str(mr));
			r = mr;
		}
	}
	if (r < 0) {
		config_unref(ncfg);
		reconfig_refuse(m, seq, err);
		return;
	}
	struct reconfig_job *job = xcalloc(1, sizeof(*job));
	*job = (struct reconfig_job){.m = m, .ncfg = ncfg, .d = d, .seq = seq, .t0 = t0};
	buf_init(&job->note, 1024);
	reconfig_restart_only(m->cfg, ncfg, &job->note);
	if (db_is_postgresql(m->db)) {
		/* the new builders' and workers' rows first, on the loop */
		r = engine_reconfig_prepare(m->engine, ncfg, reconfig_prepared, job);
		if (r == 0) {
			reconfig_pending = job;
			return;
		}
		config_unref(ncfg);
		reconfig_refuse(m, seq, xasprintf("cannot start the reconfig: %s", err_str(r)));
		reconfig_job_free(job);
		return;
	}
	reconfig_apply(job);
	reconfig_job_free(job);
}
