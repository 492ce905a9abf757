/*
 * The retention runner (retention.h): a pass is a chain of short batches
 * on the loop, each one db_retention_batch_async() (its own write, in the
 * turn's transaction; the next batch starts from its answer), the files of
 * purged artifacts removed on the thread pool after the rows are
 * committed.
 */
#define LOG_SUBSYS "retention"

#include "master/retention.h"
#include "master/master.h"
#include "master/sched/sched.h"
#include "master/transfer.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* between batches while a WAL checkpoint runs */
#define RETENTION_CKPT_WAIT_MS 5

struct retention_stats retention_stats;

static bool retention_override_set(const struct config_retention_override *o)
{
	return o && (o->builds_keep_days > 0 || o->builds_keep_per_builder > 0 ||
		     o->logs_keep_days > 0 || o->logs_success_keep_days > 0 ||
		     o->test_results_keep_days > 0 || o->numbers_keep_days > 0);
}

bool retention_configured(const struct config *cfg)
{
	if (cfg->retention_builds_keep_days > 0 || cfg->retention_builds_keep_per_builder > 0 ||
	    cfg->retention_logs_keep_days > 0 || cfg->retention_logs_success_keep_days > 0 ||
	    cfg->retention_changes_keep_days > 0 || cfg->retention_test_results_keep_days > 0 ||
	    cfg->retention_numbers_keep_days > 0)
		return true;
	for (size_t i = 0; i < cfg->nbuilders; i++)
		if (retention_override_set(cfg->builder[i].retention))
			return true;
	return false;
}

static double retention_cut(double now, double days)
{
	return days > 0 ? now - days * 86400.0 : 0;
}

void retention_policy(const struct config *cfg, double now, struct db_retention_policy *p)
{
	*p = (struct db_retention_policy){
		.builds_before = retention_cut(now, cfg->retention_builds_keep_days),
		.keep_per_builder = cfg->retention_builds_keep_per_builder,
		.logs_before = retention_cut(now, cfg->retention_logs_keep_days),
		.success_logs_before = retention_cut(now, cfg->retention_logs_success_keep_days),
		.tests_before = retention_cut(now, cfg->retention_test_results_keep_days),
		.numbers_before = retention_cut(now, cfg->retention_numbers_keep_days),
		.changes_before = retention_cut(now, cfg->retention_changes_keep_days),
	};
	/* builders with their own retention = { }: what they leave out is the
	 * global setting's */
	size_t n = 0;
	for (size_t i = 0; i < cfg->nbuilders; i++)
		n += retention_override_set(cfg->builder[i].retention);
	if (n == 0)
		return;
	p->builders = xcalloc(n, sizeof(*p->builders));
	for (size_t i = 0; i < cfg->nbuilders; i++) {
		const struct config_retention_override *o = cfg->builder[i].retention;
		if (!retention_override_set(o))
			continue;
		p->builders[p->nbuilders++] = (struct db_retention_builder){
			.name = xstrdup(cfg->builder[i].name),
			.builds_before = o->builds_keep_days > 0
						 ? retention_cut(now, o->builds_keep_days)
						 : p->builds_before,
			.keep_per_builder = o->builds_keep_per_builder > 0
						    ? o->builds_keep_per_builder
						    : p->keep_per_builder,
			.logs_before = o->logs_keep_days > 0 ? retention_cut(now, o->logs_keep_days)
							     : p->logs_before,
			.success_logs_before =
				o->logs_success_keep_days > 0
					? retention_cut(now, o->logs_success_keep_days)
					: p->success_logs_before,
			.tests_before = o->test_results_keep_days > 0
						? retention_cut(now, o->test_results_keep_days)
						: p->tests_before,
			.numbers_before = o->numbers_keep_days > 0
						  ? retention_cut(now, o->numbers_keep_days)
						  : p->numbers_before,
		};
	}
}

void retention_policy_release(struct db_retention_policy *p)
{
	for (size_t i = 0; i < p->nbuilders; i++)
		free((char *)p->builders[i].name);
	free(p->builders);
	p->builders = NULL;
	p->nbuilders = 0;
}

/* nftw's callback: one entry, children first; links are not followed. */
static int retention_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	int r = flag == FTW_DP ? rmdir(path) : unlink(path);
	(void)r; /* a failure is left in place; the caller checks the top */
	return 0;
}

size_t retention_remove_files(const char *basedir, const struct db_artifact_file *files, size_t n)
{
	size_t failed = 0;
	for (size_t i = 0; i < n; i++) {
		const struct db_artifact_file *f = &files[i];
		_cleanup_free_ char *rel = NULL;
		/* rows are written by the master, but a path never leaves the root */
		if (transfer_relpath(f->path, &rel) < 0 || !*rel) {
			failed++;
			continue;
		}
		_cleanup_free_ char *full = xasprintf("%s/artifacts/%s", basedir, rel);
		int rr = f->dir ? nftw(full, retention_rm_entry, 16, FTW_DEPTH | FTW_PHYS)
				: unlink(full);
		if ((rr < 0 && errno != ENOENT) || (f->dir && access(full, F_OK) == 0))
			failed++;
		for (char *slash = strrchr(rel, '/'); slash; slash = strrchr(rel, '/')) {
			*slash = '\0';
			free(full);
			full = xasprintf("%s/artifacts/%s", basedir, rel);
			if (rmdir(full) < 0)
				break; /* not empty (or gone): its parents are not either */
		}
	}
	return failed;
}

/* ------------------------------------------------------------- the runner */

struct retention {
	struct master *m; /* borrowed */
	retention_after_fn after;
	void *ud;
	uv_timer_t tick; /* periodic passes */
	uv_timer_t next; /* the next batch, or the files after a commit */
	int open_handles;
	bool busy, again, stopping, working, files_due;
	bool asking; /* a batch's answer is awaited (the db answers even at its close) */
	struct db_retention_policy policy;
	struct db_retention_pass st;
	struct db_retention_counts counts;
	double pass_started; /* monotonic seconds */
	double worst_batch_s;
	double batch_started; /* monotonic seconds */
	double batch_call_s;  /* the batch's call on the loop (all of SQLite's work) */
	uv_work_t work;
	struct db_artifact_file *files; /* owned: of the committed batch */
	size_t nfiles;
	size_t failed;
	uint64_t interval_ms;
};

static double retention_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void retention_maybe_free(struct retention *r)
{
	if (r->stopping && !r->working && !r->asking && r->open_handles == 0) {
		db_artifact_files_free(r->files, r->nfiles);
		retention_policy_release(&r->policy);
		free(r);
	}
}

static void retention_closed(uv_handle_t *h)
{
	struct retention *r = h->data;
	r->open_handles--;
	retention_maybe_free(r);
}

static void retention_next_cb(uv_timer_t *t);

static void retention_later(struct retention *r, uint64_t ms)
{
	int rr = uv_timer_start(&r->next, retention_next_cb, ms, 0);
	if (rr < 0) {
		log_warn_errno(rr, "cannot schedule the retention");
		r->busy = r->files_due = false;
	}
}

static void retention_end(struct retention *r)
{
	const struct db_retention_counts *c = &r->counts;
	double took = retention_mono() - r->pass_started;
	retention_stats.passes++;
	retention_stats.builds += (uint64_t)c->builds;
	retention_stats.logs += (uint64_t)c->logs;
	retention_stats.test_results += (uint64_t)c->test_results;
	retention_stats.numbers += (uint64_t)c->numbers;
	retention_stats.changes += (uint64_t)c->changes;
	retention_stats.buildrequests += (uint64_t)c->buildrequests;
	retention_stats.buildsets += (uint64_t)c->buildsets;
	retention_stats.artifacts += (uint64_t)c->artifacts;
	retention_stats.last_pass_s = took;
	log_info("purged %" PRId64 " builds, %" PRId64 " logs' content, %" PRId64
		 " test results, %" PRId64 " numbers, %" PRId64 " changes, %" PRId64
		 " build requests, %" PRId64 " buildsets, %" PRId64
		 " artifacts in %.3f s (longest batch %.1f ms)",
		 c->builds, c->logs, c->test_results, c->numbers, c->changes, c->buildrequests,
		 c->buildsets, c->artifacts, took, r->worst_batch_s * 1e3);
	r->busy = false;
	if (r->after)
		r->after(r->ud, c->artifacts > 0);
	if (r->again && !r->stopping) {
		r->again = false;
		retention_kick(r);
	}
}

static void retention_job(uv_work_t *w)
{
	struct retention *r = w->data;
	r->failed = retention_remove_files(r->m->basedir, r->files, r->nfiles);
}

static void retention_job_done(uv_work_t *w, int status)
{
	struct retention *r = w->data;
	r->working = false;
	if (status < 0 || r->failed) {
		log_warn("%zu of %zu artifact files could not be removed%s", r->failed, r->nfiles,
			 status < 0 ? " (job cancelled)" : "");
		retention_stats.files_failed += r->failed;
	}
	db_artifact_files_free(r->files, r->nfiles);
	r->files = NULL;
	r->nfiles = 0;
	if (r->stopping) {
		retention_maybe_free(r);
		return;
	}
	retention_later(r, 0);
}

static void retention_batch_done(void *arg, int rr, struct db_retention_step *s, const char *err)
{
	struct retention *r = arg;
	r->asking = false;
	if (r->stopping) {
		retention_maybe_free(r);
		return;
	}
	/* SQLite's batch is the call's work on the loop; PostgreSQL's, the
	 * server's until the commit is answered */
	double took =
		db_is_postgresql(r->m->db) ? retention_mono() - r->batch_started : r->batch_call_s;
	if (took > r->worst_batch_s)
		r->worst_batch_s = took;
	if (took > retention_stats.worst_batch_s)
		retention_stats.worst_batch_s = took;
	if (rr < 0) {
		log_warn_errno(rr, "the retention pass stopped: %s", err ? err : "failed");
		retention_end(r);
		return;
	}
	struct db_retention_counts *c = &r->counts;
	const struct db_retention_counts *k = &s->counts;
	r->st = s->st;
	c->builds += k->builds;
	c->logs += k->logs;
	c->test_results += k->test_results;
	c->numbers += k->numbers;
	c->changes += k->changes;
	c->buildrequests += k->buildrequests;
	c->buildsets += k->buildsets;
	c->sourcestamps += k->sourcestamps;
	c->artifacts += k->artifacts;
	c->rows += k->rows;
	if (s->nfiles) {
		/* these files only: the ones of the batches before are gone */
		db_artifact_files_free(r->files, r->nfiles);
		r->files = TAKE_PTR(s->files);
		r->nfiles = s->nfiles;
		s->nfiles = 0;
		/* the rows must be committed before any file goes: on SQLite the
		 * answer may come in the batch's own turn, before the db's check
		 * handle committed it, so the files wait for a later one.  1 ms,
		 * not 0: a timer started from a timer callback with 0 may run in
		 * this same turn */
		r->files_due = true;
		retention_later(r, 1);
		return;
	}
	if (rr == 0) {
		retention_end(r);
		return;
	}
	retention_later(r, 1); /* yield to the loop between batches */
}

static void retention_batch(struct retention *r)
{
	r->batch_started = retention_mono();
	int rr = db_retention_batch_async(r->m->db, &r->policy, &r->st, RETENTION_BATCH_ROWS,
					  RETENTION_BATCH_MS, retention_batch_done, r);
	r->batch_call_s = retention_mono() - r->batch_started;
	if (rr < 0) {
		log_warn_errno(rr, "the retention pass stopped: %s", db_errmsg(r->m->db));
		retention_end(r);
		return;
	}
	r->asking = true;
}

static void retention_files(struct retention *r)
{
	r->files_due = false;
	r->work.data = r;
	int rr = uv_queue_work(r->m->loop, &r->work, retention_job, retention_job_done);
	if (rr < 0) {
		log_warn_errno(rr, "cannot remove the files of %zu purged artifacts", r->nfiles);
		db_artifact_files_free(r->files, r->nfiles);
		r->files = NULL;
		r->nfiles = 0;
		retention_later(r, 0);
		return;
	}
	r->working = true;
}

static void retention_next_cb(uv_timer_t *t)
{
	struct retention *r = t->data;
	if (r->stopping)
		return;
	if (r->files_due)
		retention_files(r);
	else if (r->busy && db_checkpoint_running(r->m->db))
		retention_later(r, RETENTION_CKPT_WAIT_MS); /* let it catch up first */
	else if (r->busy)
		retention_batch(r);
}

void retention_kick(struct retention *r)
{
	if (!r || r->stopping)
		return;
	if (r->busy) {
		r->again = true;
		return;
	}
	const struct config *cfg = r->m->cfg;
	double now = r->m->sched ? sched_now(r->m->sched) : clock_wall();
	retention_policy_release(&r->policy);
	retention_policy(cfg, now, &r->policy);
	r->st = (struct db_retention_pass){0};
	r->counts = (struct db_retention_counts){0};
	r->worst_batch_s = 0;
	r->pass_started = retention_mono();
	if (!retention_configured(cfg)) {
		/* nothing to purge here: the artifacts' limits still apply */
		if (r->after)
			r->after(r->ud, false);
		return;
	}
	int rr = db_retention_resolve(r->m->db, &r->policy);
	if (rr < 0) {
		log_warn_errno(rr, "the retention pass did not start: %s", db_errmsg(r->m->db));
		if (r->after)
			r->after(r->ud, false);
		return;
	}
	r->busy = true;
	retention_batch(r);
}

static void retention_tick_cb(uv_timer_t *t)
{
	retention_kick(t->data);
}

int retention_start(struct master *m, retention_after_fn after, void *ud, struct retention **ret)
{
	*ret = NULL;
	struct retention *r = xcalloc(1, sizeof(*r));
	r->m = m;
	r->after = after;
	r->ud = ud;
	double iv = m->cfg->retention_interval_s > 0 ? m->cfg->retention_interval_s
						     : RETENTION_INTERVAL_S;
	r->interval_ms = (uint64_t)(iv * 1000.0);
	int rr = uv_timer_init(m->loop, &r->tick);
	if (rr < 0) {
		free(r);
		return rr;
	}
	r->tick.data = r;
	r->open_handles++;
	rr = uv_timer_init(m->loop, &r->next);
	if (rr >= 0) {
		r->next.data = r;
		r->open_handles++;
		rr = uv_timer_start(&r->tick, retention_tick_cb, 0, r->interval_ms);
	}
	if (rr < 0) {
		retention_stop(r);
		return rr;
	}
	*ret = r;
	return 0;
}

void retention_stop(struct retention *r)
{
	if (!r || r->stopping)
		return;
	r->stopping = true;
	if (!uv_is_closing((uv_handle_t *)&r->tick))
		uv_close((uv_handle_t *)&r->tick, retention_closed);
	if (r->open_handles > 1 && !uv_is_closing((uv_handle_t *)&r->next))
		uv_close((uv_handle_t *)&r->next, retention_closed);
}
