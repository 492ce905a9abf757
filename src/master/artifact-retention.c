/*
 * Artifact retention (see artifact-retention.h): the picker, and the
 * runner that applies it in passes of KILN_RETENTION_BATCH rows: rows are
 * read and deleted through the db's answers on the loop (each step starts
 * from the last one's answer), then the files they left unused are
 * removed on the thread pool.  docs/CONFIG.md "artifacts".
 */
#define LOG_SUBSYS "retention"

#include "master/artifact-retention.h"
#include "master/master.h"
#include "master/retention.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

size_t artifact_retention_pick(const struct artifact_retention_policy *p,
			       struct artifact_retention_state *st,
			       const struct db_artifact_age *rows, size_t n, int64_t *ret_ids,
			       bool *ret_more)
{
	double cutoff = p->keep_days > 0 ? st->now - p->keep_days * 86400.0 : -INFINITY;
	/* the cap as a signed count: anything past INT64_MAX is never reached */
	int64_t cap = p->max_bytes > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)p->max_bytes;
	size_t k = 0;
	bool last = false;
	for (size_t i = 0; i < n; i++) {
		const struct db_artifact_age *a = &rows[i];
		bool old = a->created_at < cutoff;
		bool past = st->keep_from_buildid > 0 && a->buildid < st->keep_from_buildid;
		bool over = p->max_bytes > 0 && st->total_bytes > cap;
		last = old || past || over;
		if (!last || !a->build_done)
			continue; /* a running build's files may still be written */
		ret_ids[k++] = a->artifactid;
		st->total_bytes -= a->size;
	}
	*ret_more = last;
	return k;
}

/* ------------------------------------------------------------- the runner */

struct artifact_retention {
	struct master *m; /* borrowed */
	struct artifact_retention_policy policy;
	uv_timer_t tick; /* periodic passes */
	uv_timer_t next; /* the next batch, or a pass asked for meanwhile */
	int open_handles;
	bool busy;     /* a pass is under way */
	bool again;    /* kicked during a pass: one more after it */
	bool stopping; /* artifact_retention_stop() was called */
	bool working;  /* the thread-pool job is in flight */
	bool asking;   /* a db answer is awaited (the db answers even at its close) */
	size_t picked; /* the batch's rows being deleted */
	struct artifact_retention_state st;
	/* the total kept between passes: the bytes of the rows up to known_id
	 * (a pass adds the newer rows' bytes, a range of the primary key, so
	 * it never sums the whole table again); only retention deletes rows */
	bool known;
	int64_t known_id;
	int64_t after_id; /* the pass's position: the last row read */
	size_t deleted;   /* this pass so far */
	int64_t freed;
	/* the thread-pool job: files to remove, and what failed */
	uv_work_t work;
	struct db_artifact_file *files; /* owned */
	size_t nfiles;
	size_t failed;
	bool more;                 /* after the job: read the next batch */
	bool files_due;            /* rows deleted: their files go on the next timer */
	bool recount;              /* rows went with purged builds: sum the total again */
	struct retention *general; /* owned: retention = { } (retention.h), its timer drives both */
};

static void artifact_retention_maybe_free(struct artifact_retention *r)
{
	if (r->stopping && !r->working && !r->asking && r->open_handles == 0) {
		db_artifact_files_free(r->files, r->nfiles);
		free(r);
	}
}

static void artifact_retention_closed(uv_handle_t *h)
{
	struct artifact_retention *r = h->data;
	r->open_handles--;
	artifact_retention_maybe_free(r);
}

/* On the thread pool: removes each unused file (or extracted directory),
 * then the directories that held it while they are empty, up to the
 * artifacts root (retention.c). */
static void artifact_retention_job(uv_work_t *w)
{
	struct artifact_retention *r = w->data;
	r->failed = retention_remove_files(r->m->basedir, r->files, r->nfiles);
}

static void artifact_retention_batch(struct artifact_retention *r);
static void artifact_retention_end(struct artifact_retention *r);
static void artifact_retention_next_cb(uv_timer_t *t);

/* Continues on a later callback of the 'next' timer; a timer that cannot
 * start (never, while the handle is open) ends the pass. */
static void artifact_retention_later(struct artifact_retention *r, uint64_t ms)
{
	int rr = uv_timer_start(&r->next, artifact_retention_next_cb, ms, 0);
	if (rr < 0) {
		log_warn_errno(rr, "cannot schedule the artifact retention");
		r->busy = r->again = r->more = r->files_due = false;
		db_artifact_files_free(r->files, r->nfiles);
		r->files = NULL;
		r->nfiles = 0;
	}
}

static void artifact_retention_job_done(uv_work_t *w, int status)
{
	struct artifact_retention *r = w->data;
	r->working = false;
	if (status < 0 || r->failed)
		log_warn("%zu of %zu artifact files could not be removed%s", r->failed, r->nfiles,
			 status < 0 ? " (job cancelled)" : "");
	db_artifact_files_free(r->files, r->nfiles);
	r->files = NULL;
	r->nfiles = 0;
	if (r->stopping) {
		artifact_retention_maybe_free(r);
		return;
	}
	artifact_retention_end(r);
}

static void artifact_retention_files(struct artifact_retention *r);

static void artifact_retention_next_cb(uv_timer_t *t)
{
	struct artifact_retention *r = t->data;
	if (r->files_due)
		artifact_retention_files(r);
	else if (r->busy)
		artifact_retention_batch(r);
	else
		artifact_retention_kick(r);
}

/* The pass is over, or goes on with the next batch on a later turn. */
static void artifact_retention_end(struct artifact_retention *r)
{
	if (r->more) {
		r->more = false;
		artifact_retention_later(r, 0);
		return;
	}
	if (r->deleted)
		log_info("deleted %zu artifacts (%" PRId64 " bytes); %" PRId64 " bytes remain",
			 r->deleted, r->freed, r->st.total_bytes);
	r->busy = false;
	if (r->again) {
		r->again = false;
		artifact_retention_later(r, 0);
	}
}

/* A batch that failed: the pass ends there. */
static void artifact_retention_failed(struct artifact_retention *r, int rr, const char *err)
{
	log_warn_errno(rr, "cannot delete old artifacts: %s", err ? err : "failed");
	r->known = false; /* the picker counted deletions that were undone */
	r->more = false;
	artifact_retention_end(r);
}

/* The deletion's answer, once committed: the files to the thread pool. */
static void artifact_retention_deleted(void *arg, int rr, struct db_artifact_file *files, size_t n,
				       const char *err)
{
	struct artifact_retention *r = arg;
	r->asking = false;
	if (r->stopping) {
		db_artifact_files_free(files, n);
		artifact_retention_maybe_free(r);
		return;
	}
	if (rr < 0) {
		artifact_retention_failed(r, rr, err);
		return;
	}
	r->deleted += r->picked;
	db_artifact_files_free(r->files, r->nfiles);
	r->files = files;
	r->nfiles = n;
	if (r->nfiles == 0) {
		artifact_retention_end(r);
		return;
	}
	/* the rows must be gone for good before any file is: on SQLite the
	 * answer may come in the deletion's own turn, before the db's check
	 * handle committed it, so the files wait for a later one.  1 ms, not
	 * 0: a timer started from a timer callback with 0 may run in this
	 * turn */
	r->files_due = true;
	artifact_retention_later(r, 1);
}

/* The oldest rows' answer: pick, then delete what goes. */
static void artifact_retention_read(void *arg, int rr, const struct db_artifact_age *rows, size_t n,
				    const char *err)
{
	struct artifact_retention *r = arg;
	r->asking = false;
	if (r->stopping) {
		artifact_retention_maybe_free(r);
		return;
	}
	if (rr < 0) {
		artifact_retention_failed(r, rr, err);
		return;
	}
	struct db *db = r->m->db;
	int64_t *ids = xreallocarray(NULL, KILN_RETENTION_BATCH, sizeof(*ids));
	size_t k = 0;
	bool more = false;
	/* rows stored since the pass began are not in its total: the next one's */
	size_t all = n;
	while (n > 0 && rows[n - 1].artifactid > r->known_id)
		n--;
	if (n > 0) {
		k = artifact_retention_pick(&r->policy, &r->st, rows, n, ids, &more);
		r->after_id = rows[n - 1].artifactid;
		for (size_t i = 0, j = 0; i < n && j < k; i++)
			if (rows[i].artifactid == ids[j]) {
				r->freed += rows[i].size;
				j++;
			}
	}
	r->more = more && n == KILN_RETENTION_BATCH && all == n;
	r->picked = k;
	if (k == 0) {
		free(ids);
		artifact_retention_end(r);
		return;
	}
	rr = db_artifacts_delete_async(db, ids, k, artifact_retention_deleted, r);
	free(ids);
	if (rr < 0) {
		artifact_retention_failed(r, rr, db_errmsg(db));
		return;
	}
	r->asking = true;
}

/* One batch: the oldest rows after the pass's position, read on the loop. */
static void artifact_retention_batch(struct artifact_retention *r)
{
	struct db *db = r->m->db;
	int rr = db_artifacts_oldest_async(db, r->after_id, KILN_RETENTION_BATCH,
					   artifact_retention_read, r);
	if (rr < 0) {
		artifact_retention_failed(r, rr, db_errmsg(db));
		return;
	}
	r->asking = true;
}

/* The files of the rows deleted on an earlier turn, to the thread pool. */
static void artifact_retention_files(struct artifact_retention *r)
{
	r->files_due = false;
	r->work.data = r;
	int rr = uv_queue_work(r->m->loop, &r->work, artifact_retention_job,
			       artifact_retention_job_done);
	if (rr < 0) {
		log_warn_errno(rr, "cannot remove the files of %zu deleted artifacts", r->nfiles);
		db_artifact_files_free(r->files, r->nfiles);
		r->files = NULL;
		r->nfiles = 0;
		artifact_retention_end(r);
		return;
	}
	r->working = true;
}

/* The totals' answer: the pass begins from the oldest row. */
static void artifact_retention_counted(void *arg, int rr, int64_t added, int64_t max_id,
				       int64_t keep_from_buildid, const char *err)
{
	struct artifact_retention *r = arg;
	r->asking = false;
	if (r->stopping) {
		artifact_retention_maybe_free(r);
		return;
	}
	if (rr < 0) {
		log_warn_errno(rr, "cannot read the artifacts' usage: %s", err ? err : "failed");
		r->busy = false;
		if (r->again) {
			r->again = false;
			artifact_retention_later(r, 0);
		}
		return;
	}
	r->st.keep_from_buildid = keep_from_buildid;
	r->st.total_bytes = (r->known ? r->st.total_bytes : 0) + added;
	r->known = true;
	r->known_id = max_id;
	r->st.now = clock_wall();
	r->after_id = 0;
	r->deleted = 0;
	r->freed = 0;
	artifact_retention_batch(r);
}

/* A new pass: the totals once, then batches from the oldest row. */
static void artifact_retention_pass(struct artifact_retention *r)
{
	if (r->recount) {
		r->known = false;
		r->recount = false;
	}
	int rr = db_artifacts_usage_async(r->m->db, r->known ? r->known_id : 0,
					  r->policy.keep_builds, artifact_retention_counted, r);
	if (rr < 0) {
		log_warn_errno(rr, "cannot read the artifacts' usage: %s", db_errmsg(r->m->db));
		return;
	}
	r->busy = true;
	r->asking = true;
}

void artifact_retention_kick(struct artifact_retention *r)
{
	if (!r || r->stopping)
		return;
	if (!r->policy.max_bytes && !(r->policy.keep_days > 0) && r->policy.keep_builds <= 0)
		return; /* no artifacts = { } limit */
	if (r->busy) {
		r->again = true;
		return;
	}
	artifact_retention_pass(r);
}

/* After each pass of the general retention (slice "retention"): purged
 * builds took their artifacts with them, so the kept total is counted
 * again; then this pass. */
static void artifact_retention_after(void *ud, bool artifacts_deleted)
{
	struct artifact_retention *r = ud;
	if (artifacts_deleted)
		r->recount = true;
	artifact_retention_kick(r);
}

int artifact_retention_start(struct master *m, struct artifact_retention **ret)
{
	const struct config *cfg = m->cfg;
	*ret = NULL;
	struct artifact_retention *r = xcalloc(1, sizeof(*r));
	r->m = m;
	r->policy = (struct artifact_retention_policy){.max_bytes = cfg->artifacts_max_bytes,
						       .keep_days = cfg->artifacts_keep_days,
						       .keep_builds = cfg->artifacts_keep_builds};
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
		/* the passes come from the general runner's timer */
		rr = retention_start(m, artifact_retention_after, r, &r->general);
	}
	if (rr < 0) {
		artifact_retention_stop(r);
		return rr;
	}
	*ret = r;
	return 0;
}
void artifact_retention_stop(struct artifact_retention *r)
{
	if (!r || r->stopping)
		return;
	r->stopping = true;
	/* now, not once this is freed: its passes must not outlive the master's
	 * stop (it frees itself once its own answers are in) */
	retention_stop(r->general);
	r->general = NULL;
	if (!uv_is_closing((uv_handle_t *)&r->tick))
		uv_close((uv_handle_t *)&r->tick, artifact_retention_closed);
	if (r->open_handles > 1 && !uv_is_closing((uv_handle_t *)&r->next))
		uv_close((uv_handle_t *)&r->next, artifact_retention_closed);
}
