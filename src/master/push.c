/*
 * Results pushed from outside (push.h, docs/PUSH.md).  The request path
 * only checks: the API token (scope push), the per-token caps (body size,
 * pushes a minute, stored results), the bag (push-bag.c) and, for an
 * append, the update token; then it queues a job and answers 202 (after
 * reading, on the loop, the token's stored results for the package and the
 * row of the builder push:PACKAGE the first time either is needed).  A zero
 * timer stores the queued jobs on the next loop turn, each in one write
 * (db_push_atomic: the submission row with its build, steps and logs, so a
 * bag is stored whole or not at all), inside the loop's database batch;
 * events follow the write.  Open submissions (finished: false) and recent
 * failures are kept in memory for the update tokens and the status URL.
 */
#define LOG_SUBSYS "push"

#include "master/push.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/api-int.h"
#include "master/apitoken.h"
#include "master/events-logs.h"
#include "master/events-steps.h"
#include "master/events.h"
#include "master/master.h"
#include "master/numbers.h"
#include "master/push-bag.h"

#define PUSH_QUEUE_MAX 4096          /* jobs waiting for the next turn (then 503) */
#define PUSH_QUEUE_BYTES (64u << 20) /* their log bytes (then 503) */
#define PUSH_FAILED_KEEP 256         /* recent failures kept for the status URL */
#define PUSH_OPEN_MAX 4096           /* open (partial) submissions at once */
#define PUSH_UPDATE_PREFIX "kpu_"
#define PUSH_UPDATE_LEN (4 + 32)   /* kpu_ + base64url of 24 bytes */
#define PUSH_TURN_BYTES (8u << 20) /* log bytes stored per loop turn (one batch) */
#define PUSH_IDS_TRIES 100         /* turns a job waits for ids (PostgreSQL) */
#define PUSH_IDS_RETRY_MS 10

enum push_job_kind { JOB_NEW, JOB_STEPS, JOB_FINISH };

struct push_job {
	struct push_job *next;
	enum push_job_kind kind;
	int64_t id, tokenid;
	struct push_bag bag;
	unsigned char hash[32]; /* JOB_NEW of an open submission: its update token's */
	double at;
	bool abandoned;    /* JOB_FINISH of the idle sweep: results exception */
	unsigned id_tries; /* turns it waited for the id reserves */
};

struct push_open {
	int64_t id, tokenid, buildid, builderid;
	double started; /* its build's start */
	unsigned char hash[32];
	int64_t nsteps; /* accepted so far (queued included) */
	int results;    /* stored so far */
	bool finishing; /* a finish is queued: nothing more is accepted */
	double last;    /* when it was opened or last appended to */
};

struct push_rate {
	int64_t tokenid;
	double window; /* start of the current minute */
	long long n;
};

struct push_count {
	int64_t tokenid;
	char *package;
	int64_t n;
};

struct push_failed {
	int64_t id;
	char *reason;
};

struct push_expect {
	const struct config_expected_reporter *cfg; /* borrowed from m->cfg */
	double last;                                /* last push, or the master's start */
	bool quiet;
};

struct push_builder {
	char *package;
	int64_t builderid;
};

struct push {
	struct master *m;
	struct config_push caps;
	uv_timer_t run;   /* stores the queue on the next turn */
	uv_timer_t watch; /* expected reporters */
	bool timers;
	int closing; /* timers still closing (push_stop) */
	struct push_job *head, *tail;
	unsigned nqueued;
	size_t queued_bytes;
	int64_t next_id;
	struct push_open *open;
	size_t nopen, open_alloc;
	struct push_rate *rates;
	size_t nrates, rates_alloc;
	struct push_count *counts;
	size_t ncounts, counts_alloc;
	struct push_failed failed[PUSH_FAILED_KEEP];
	size_t nfailed_total;
	struct push_expect *expect;
	size_t nexpect;
	struct push_builder *builders;
	size_t nbuilders, builders_alloc;
};

static struct push *push_g;

/* ---- state ---------------------------------------------------------------------------- */

static void push_free(struct push *p)
{
	while (p->head) {
		struct push_job *j = p->head;
		p->head = j->next;
		push_bag_release(&j->bag);
		free(j);
	}
	free(p->open);
	free(p->rates);
	for (size_t i = 0; i < p->ncounts; i++)
		free(p->counts[i].package);
	free(p->counts);
	for (size_t i = 0; i < PUSH_FAILED_KEEP; i++)
		free(p->failed[i].reason);
	free(p->expect);
	for (size_t i = 0; i < p->nbuilders; i++)
		free(p->builders[i].package);
	free(p->builders);
	free(p);
}

static void push_timer_closed(uv_handle_t *h)
{
	struct push *p = h->data;
	if (--p->closing == 0) /* both timers closed, in whichever order */
		push_free(p);
}

static struct push *push_state(struct master *m)
{
	if (push_g && push_g->m == m)
		return push_g;
	if (push_g) /* another master in this process (tests): start afresh */
		push_stop();
	struct push *p = xcalloc(1, sizeof(*p));
	p->m = m;
	if (m->cfg && m->cfg->push)
		p->caps = *m->cfg->push;
	else
		config_push_defaults(&p->caps);
	p->caps.expected = NULL;
	p->caps.nexpected = 0;
	int64_t max = 0;
	if (db_push_max_id(m->db, &max) < 0)
		log_error("cannot read the last push id: %s", db_errmsg(m->db));
	p->next_id = max + 1;
	if (m->loop) {
		uv_timer_init(m->loop, &p->run);
		uv_timer_init(m->loop, &p->watch);
		p->run.data = p->watch.data = p;
		p->timers = true;
	}
	push_g = p;
	return p;
}

unsigned push_queued(void)
{
	return push_g ? push_g->nqueued : 0;
}

/* ---- storing (on the next loop turn) ------------------------------------------------- */

/* The builder push:PACKAGE's id, once asked for (push_builder_ask), or 0. */
static int64_t push_builder_id(struct push *p, const char *package)
{
	for (size_t i = 0; i < p->nbuilders; i++)
		if (!strcmp(p->builders[i].package, package))
			return p->builders[i].builderid;
	return 0;
}

static void push_builder_add(struct push *p, const char *package, int64_t id)
{
	if (push_builder_id(p, package))
		return; /* two first pushes of a package asked at once */
	ARRAY_GROW(p->builders, p->nbuilders + 1, p->builders_alloc);
	p->builders[p->nbuilders++] = (struct push_builder){xstrdup(package), id};
}

/* text as an 's' log: each line gains the stream character */
static int push_log_stream(struct db *db, int64_t logid, char stream, const char *text, size_t len)
{
	if (!len)
		return 0;
	size_t cap = len * 2 + 2, n = 0;
	_cleanup_free_ char *out = xmalloc(cap);
	const char *q = text, *end = text + len;
	while (q < end) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		size_t k = nl ? (size_t)(nl - q) : (size_t)(end - q);
		out[n++] = stream;
		memcpy(out + n, q, k);
		n += k;
		out[n++] = '\n';
		q += k + 1;
	}
	return db_log_append(db, logid, out, n);
}

struct push_store {
	struct push *p;
	struct push_job *j;
	struct push_open *o; /* JOB_STEPS, JOB_FINISH; JOB_NEW of an open one: after */
	int64_t builderid, buildid, nsteps_before;
	int64_t *stepids, *logids;
	int results;
	double now;
	double started, ended; /* the build's start; its end once finished */
};

static const char *push_results_name(int r)
{
	static const char *const names[] = {"success",   "warnings", "failure",  "skipped",
					    "exception", "retry",    "cancelled"};
	return r >= 0 && r <= RESULTS_CANCELLED ? names[r] : "unknown";
}

static int push_store_steps(struct db *db, struct push_store *s)
{
	const struct push_bag *b = &s->j->bag;
	s->stepids = xcalloc(b->nsteps + 1, sizeof(*s->stepids));
	s->logids = xcalloc(b->nsteps + 1, sizeof(*s->logids));
	for (size_t i = 0; i < b->nsteps; i++) {
		const struct push_step *st = &b->steps[i];
		double start = st->started_at ? st->started_at : s->now;
		double end = st->finished_at ? st->finished_at : start;
		int64_t number;
		int r = db_step_begin(db, s->buildid, st->name, start, NULL, &s->stepids[i],
				      &number);
		if (r < 0)
			return r;
		if ((r = db_log_add(db, s->stepids[i], "stdio", 's', &s->logids[i])) < 0)
			return r;
		if (st->cmd) {
			_cleanup_free_ char *h = xasprintf("%s", st->cmd);
			if ((r = push_log_stream(db, s->logids[i], 'h', h, strlen(h))) < 0)
				return r;
		}
		if ((r = push_log_stream(db, s->logids[i], 'o', st->out, st->out_len)) < 0 ||
		    (r = push_log_stream(db, s->logids[i], 'e', st->err, st->err_len)) < 0 ||
		    (r = db_log_finish(db, s->logids[i])) < 0)
			return r;
		_cleanup_free_ char *state =
			xasprintf("%s %s", st->name, push_results_name(st->results));
		if ((r = db_step_finish(db, s->stepids[i], st->results, state, false, end)) < 0)
			return r;
		s->results = db_results_worst(s->results, st->results);
	}
	return 0;
}

static int push_store_finish(struct db *db, struct push_store *s)
{
	const struct push_bag *b = &s->j->bag;
	double end = s->now;
	if (b->nsteps && b->steps[b->nsteps - 1].finished_at)
		end = b->steps[b->nsteps - 1].finished_at;
	int results = s->results == RESULTS_NONE ? RESULTS_SUCCESS : s->results;
	if (s->j->abandoned)
		results = db_results_worst(results, RESULTS_EXCEPTION);
	_cleanup_free_ char *state =
		s->j->abandoned
			? xasprintf("abandoned: no update for %.0f s", s->p->caps.open_timeout)
			: xasprintf("%s", results == RESULTS_SUCCESS ? "build successful"
								     : push_results_name(results));
	s->results = results;
	s->ended = end;
	return db_build_finish(db, s->buildid, results, state, end);
}

static int push_store_new(struct db *db, void *ud)
{
	struct push_store *s = ud;
	struct push_job *j = s->j;
	const struct push_bag *b = &j->bag;
	double start = b->nsteps && b->steps[0].started_at ? b->steps[0].started_at : j->at;
	s->started = start;
	/* no number: on PostgreSQL the server numbers it, in this write */
	int r = db_build_add(db, s->builderid, 0, 0, s->p->m->masterid, start, &s->buildid, NULL);
	if (r < 0)
		return r;
	const char *key;
	json_t *v;
	json_object_foreach(b->client, key, v)
	{
		if ((r = db_build_set_property(db, s->buildid, key, v, "push")) < 0)
			return r;
	}
	json_t *extra =
		json_pack("{s:I,s:s*}", "pushid", (json_int_t)j->id, "revision", b->revision);
	json_object_foreach(extra, key, v)
	{
		if (!json_is_null(v) &&
		    (r = db_build_set_property(db, s->buildid, key, v, "push")) < 0)
			break;
	}
	json_decref(extra);
	if (r < 0)
		return r;
	if ((r = db_build_set_state(db, s->buildid, "building (pushed)")) < 0)
		return r;
	if ((r = push_store_steps(db, s)) < 0)
		return r;
	if (b->finished && (r = push_store_finish(db, s)) < 0)
		return r;
	struct buf_tags {
		char *p;
		size_t n;
	} t = {xstrdup(","), 1};
	for (size_t i = 0; i < b->ntags; i++) {
		char *nt = xasprintf("%s%s,", t.p, b->tags[i]);
		free(t.p);
		t.p = nt;
	}
	struct db_push_row row = {
		.id = j->id,
		.tokenid = j->tokenid,
		.builderid = s->builderid,
		.buildid = s->buildid,
		.package = b->package,
		.host = b->host,
		.arch = b->arch,
		.revision = b->revision,
		.tags = t.p,
		.state = "stored",
		.finished = b->finished,
		.results = b->finished ? s->results : RESULTS_NONE,
		.nsteps = (int64_t)b->nsteps,
		.update_hash = b->finished ? NULL : j->hash,
		.created_at = j->at,
		.finished_at = b->finished ? s->now : 0,
	};
	r = db_push_insert(db, &row);
	free(t.p);
	return r;
}

static int push_store_more(struct db *db, void *ud)
{
	struct push_store *s = ud;
	int r = push_store_steps(db, s);
	if (r < 0)
		return r;
	bool fin = s->j->kind == JOB_FINISH;
	if (fin && (r = push_store_finish(db, s)) < 0)
		return r;
	return db_push_update(db, s->j->id, s->nsteps_before + (int64_t)s->j->bag.nsteps,
			      fin ? s->results : RESULTS_NONE, fin, s->now);
}

static struct push_open *push_open_find(struct push *p, int64_t id)
{
	for (size_t i = 0; i < p->nopen; i++)
		if (p->open[i].id == id)
			return &p->open[i];
	return NULL;
}

static void push_open_drop(struct push *p, int64_t id)
{
	for (size_t i = 0; i < p->nopen; i++)
		if (p->open[i].id == id) {
			p->open[i] = p->open[--p->nopen];
			return;
		}
}

static void push_fail(struct push *p, int64_t id, const char *reason)
{
	struct push_failed *f = &p->failed[p->nfailed_total++ % PUSH_FAILED_KEEP];
	free(f->reason);
	f->id = id;
	f->reason = xstrdup(reason);
	log_warn("push %" PRId64 " failed: %s", id, reason);
}

static const char *push_failed_reason(struct push *p, int64_t id)
{
	for (size_t i = 0; i < PUSH_FAILED_KEEP; i++)
		if (p->failed[i].reason && p->failed[i].id == id)
			return p->failed[i].reason;
	return NULL;
}

static void push_expect_heard(struct push *p, const char *package, const char *host, double now);

static void push_events(struct push *p, struct push_store *s, bool is_new, bool finished)
{
	struct master *m = p->m;
	if (is_new)
		events_publish_row(m, DB_BUILDS, "builds", "buildid", s->buildid, "new");
	for (size_t i = 0; i < s->j->bag.nsteps; i++) {
		events_step_started(m, s->buildid, s->stepids[i]);
		events_log(m, s->logids[i], EVENTS_LOG_NEW);
		events_log(m, s->logids[i], EVENTS_LOG_FINISHED);
		events_step_finished(m, s->buildid, s->stepids[i]);
	}
	if (finished) {
		events_publish_row(m, DB_BUILDS, "builds", "buildid", s->buildid, "finished");
		struct db_build_times bt = {.builderid = s->builderid,
					    .started_at = s->started,
					    .complete_at = s->ended,
					    .results = s->results};
		numbers_build_ended(m, s->buildid, &bt); /* durations, ETA cache (numbers.h) */
	}
}

/* One job stored (or failed, recorded for its status URL): 0, or -EAGAIN
 * when it is to wait for a later turn (PostgreSQL's id reserves). */
static int push_run_job(struct push *p, struct push_job *j)
{
	struct db *db = p->m->db;
	struct push_store s = {.p = p, .j = j, .results = RESULTS_NONE, .now = clock_wall()};
	int r = 0;
	if (j->kind == JOB_NEW) {
		s.builderid = push_builder_id(p, j->bag.package);
		if (!s.builderid) { /* its request asked for it: only a restarted module */
			push_fail(p, j->id, "cannot add the external builder (database error)");
			push_open_drop(p, j->id);
			goto out;
		}
		r = db_push_atomic(db, j->bag.nsteps, push_store_new, &s);
		if (r == -EAGAIN && ++j->id_tries < PUSH_IDS_TRIES)
			goto out;
		if (r < 0) {
			_cleanup_free_ char *why = xasprintf("not stored: %s", db_errmsg(db));
			push_fail(p, j->id, why);
			push_open_drop(p, j->id);
			r = 0;
			goto out;
		}
		struct push_open *o = push_open_find(p, j->id);
		if (o) {
			o->buildid = s.buildid;
			o->builderid = s.builderid;
			o->started = s.started;
			o->results = s.results;
		}
		log_info("push %" PRId64 " stored: package=%s host=%s build=%" PRId64
			 " steps=%zu%s",
			 j->id, j->bag.package, j->bag.host, s.buildid, j->bag.nsteps,
			 j->bag.finished ? "" : " (open)");
		push_events(p, &s, true, j->bag.finished);
		push_expect_heard(p, j->bag.package, j->bag.host, s.now);
	} else {
		struct push_open *o = push_open_find(p, j->id);
		if (!o || !o->buildid) {
			push_fail(p, j->id, "the submission is not open (its first part failed)");
			goto out;
		}
		s.buildid = o->buildid;
		s.builderid = o->builderid;
		s.started = o->started;
		s.results = o->results;
		s.nsteps_before = o->nsteps - (int64_t)j->bag.nsteps;
		r = db_push_atomic(db, j->bag.nsteps, push_store_more, &s);
		if (r == -EAGAIN && ++j->id_tries < PUSH_IDS_TRIES)
			goto out;
		if (r < 0) {
			_cleanup_free_ char *why =
				xasprintf("update not stored: %s", db_errmsg(db));
			push_fail(p, j->id, why);
			r = 0;
			goto out;
		}
		o->results = s.results;
		bool fin = j->kind == JOB_FINISH;
		push_events(p, &s, false, fin);
		if (fin)
			push_open_drop(p, j->id);
	}
out:
	free(s.stepids);
	free(s.logids);
	return r == -EAGAIN ? r : 0;
}

static void push_run(uv_timer_t *t)
{
	struct push *p = t->data;
	/* one turn's worth: later arrivals wait for the next turn's batch */
	unsigned n = p->nqueued;
	size_t bytes = 0;
	while (n-- && p->head && (!bytes || bytes + p->head->bag.log_bytes <= PUSH_TURN_BYTES)) {
		struct push_job *j = p->head;
		if (push_run_job(p, j) == -EAGAIN) { /* ids on their way: in order, later */
			if (p->timers)
				uv_timer_start(&p->run, push_run, PUSH_IDS_RETRY_MS, 0);
			return;
		}
		bytes += j->bag.log_bytes + 1;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		p->nqueued--;
		p->queued_bytes -= j->bag.log_bytes;
		push_bag_release(&j->bag);
		free(j);
	}
	if (p->head && p->timers)
		uv_timer_start(&p->run, push_run, 0, 0);
}

static void push_enqueue(struct push *p, struct push_job *j)
{
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->nqueued++;
	p->queued_bytes += j->bag.log_bytes;
	if (p->timers && !uv_is_active((uv_handle_t *)&p->run))
		uv_timer_start(&p->run, push_run, 0, 0);
	else if (!p->timers)
		push_run(&p->run); /* no loop (tools): at once */
}

/* ---- expected reporters ------------------------------------------------------------------ */

static void push_expect_event(struct push *p, size_t i, const char *event, double now)
{
	struct push_expect *e = &p->expect[i];
	char key[64];
	snprintf(key, sizeof(key), "expected_reporters/%zu/%s", i + 1, event);
	json_t *msg = json_pack("{s:I,s:s,s:s,s:f,s:o,s:b,s:f}", "reporterid", (json_int_t)(i + 1),
				"package", e->cfg->package, "host", e->cfg->host, "interval",
				e->cfg->interval, "last_push",
				e->last > 0 ? json_integer((json_int_t)e->last) : json_null(),
				"quiet", e->quiet, "silent_for", now - e->last);
	events_publish(p->m, key, msg);
}

static void push_expect_heard(struct push *p, const char *package, const char *host, double now)
{
	for (size_t i = 0; i < p->nexpect; i++) {
		struct push_expect *e = &p->expect[i];
		if (strcmp(e->cfg->package, package) || strcmp(e->cfg->host, host))
			continue;
		bool was_quiet = e->quiet;
		e->last = now;
		e->quiet = false;
		if (db_push_expected_set(p->m->db, package, host, now, 0) < 0)
			log_error("cannot store expected reporter %s on %s: %s", package, host,
				  db_errmsg(p->m->db));
		if (was_quiet) {
			log_info("expected reporter package=%s host=%s is back", package, host);
			push_expect_event(p, i, "back", now);
		}
	}
}

/* Open submissions idle for push.open_timeout are finished as abandoned. */
static void push_sweep_open(struct push *p, double now)
{
	for (size_t i = 0; i < p->nopen; i++) {
		struct push_open *o = &p->open[i];
		if (o->finishing || !o->buildid || now - o->last <= p->caps.open_timeout)
			continue;
		o->finishing = true;
		log_warn("push %" PRId64 " abandoned: no update for %.0f s (push.open_timeout)",
			 o->id, now - o->last);
		struct push_job *j = xcalloc(1, sizeof(*j));
		j->kind = JOB_FINISH;
		j->id = o->id;
		j->tokenid = o->tokenid;
		j->at = now;
		j->abandoned = true;
		push_enqueue(p, j);
	}
}

static void push_watch(uv_timer_t *t)
{
	struct push *p = t->data;
	double now = clock_wall();
	push_sweep_open(p, now);
	for (size_t i = 0; i < p->nexpect; i++) {
		struct push_expect *e = &p->expect[i];
		if (e->quiet || now - e->last <= e->cfg->interval)
			continue;
		e->quiet = true;
		if (db_push_expected_set(p->m->db, e->cfg->package, e->cfg->host, e->last, 1) < 0)
			log_error("cannot store expected reporter %s on %s: %s", e->cfg->package,
				  e->cfg->host, db_errmsg(p->m->db));
		log_warn("expected reporter package=%s host=%s has not pushed for %.0f s (interval "
			 "%.0f s)",
			 e->cfg->package, e->cfg->host, now - e->last, e->cfg->interval);
		push_expect_event(p, i, "quiet", now);
	}
}

void push_start(struct master *m)
{
	struct push *p = push_state(m);
	int n = db_push_close_open(m->db, clock_wall());
	if (n < 0)
		log_error("cannot close the pushes left open: %s", db_errmsg(m->db));
	else if (n > 0)
		log_info("%d pushed results left open by the previous run are finished", n);
	const struct config_push *cp = m->cfg ? m->cfg->push : NULL;
	if (!p->timers)
		return;
	double now = clock_wall(), min_iv = p->caps.open_timeout;
	size_t nexp = cp ? cp->nexpected : 0;
	p->expect = xcalloc(nexp + 1, sizeof(*p->expect));
	p->nexpect = nexp;
	for (size_t i = 0; i < nexp; i++) {
		struct push_expect *e = &p->expect[i];
		e->cfg = &cp->expected[i];
		double last = 0;
		int quiet = 0;
		if (db_push_expected_get(m->db, e->cfg->package, e->cfg->host, &last, &quiet) < 0)
			log_error("cannot read expected reporter state: %s", db_errmsg(m->db));
		/* never heard of: the master's start counts as heard */
		e->last = last > 0 ? fmin(last, now) : now;
		e->quiet = quiet;
		min_iv = fmin(min_iv, e->cfg->interval);
	}
	uint64_t every = (uint64_t)fmax(100, fmin(30000, min_iv * 1000 / 4));
	uv_timer_start(&p->watch, push_watch, every, every);
	if (p->nexpect)
		log_info("expecting %zu reporters (checked every %" PRIu64 " ms)", p->nexpect,
			 every);
}

void push_stop(void)
{
	struct push *p = push_g;
	if (!p)
		return;
	/* what was accepted is stored before the database closes */
	while (p->head) {
		unsigned n = p->nqueued;
		push_run(&p->run);
		if (p->nqueued == n)
			break;
	}
	push_g = NULL;
	if (!p->timers) {
		push_free(p);
		return;
	}
	uv_timer_stop(&p->run);
	uv_timer_stop(&p->watch);
	p->closing = 2;
	uv_close((uv_handle_t *)&p->watch, push_timer_closed);
	uv_close((uv_handle_t *)&p->run, push_timer_closed);
}

/* ---- the request path ---------------------------------------------------------------------- */

static void push_reply(struct api_ctx *ctx, int status, json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (!s) {
		api_reply_error(ctx, 500, "cannot encode the answer");
		return;
	}
	http_reply_take(ctx->req, status, "application/json", s, strlen(s));
}

/* The token: 1 and *t, or -1 after answering. */
static int push_token(struct api_ctx *ctx, struct db_token *t)
{
	char why[256];
	int r = apitoken_check(ctx->req, DB_SCOPE_PUSH, t, why, sizeof(why));
	if (r == 1)
		return 1;
	if (r == 0)
		snprintf(why, sizeof(why),
			 "pushing results needs an API token with the scope push "
			 "(Authorization: Bearer kiln_...)");
	api_reply_error(ctx, r == -EPERM ? 403 : 401, why);
	return -1;
}

/* Pushes a minute: 0, or -1 after answering 429. */
static int push_rate(struct push *p, struct api_ctx *ctx, int64_t tokenid, double now)
{
	struct push_rate *r = NULL;
	for (size_t i = 0; i < p->nrates; i++)
		if (p->rates[i].tokenid == tokenid)
			r = &p->rates[i];
	if (!r) {
		ARRAY_GROW(p->rates, p->nrates + 1, p->rates_alloc);
		r = &p->rates[p->nrates++];
		*r = (struct push_rate){.tokenid = tokenid, .window = now};
	}
	if (now - r->window >= 60) {
		r->window = now;
		r->n = 0;
	}
	if (r->n >= p->caps.per_minute) {
		unsigned wait = (unsigned)ceil(60 - (now - r->window));
		api_reply_errorf(ctx, 429,
				 "token %" PRId64 " pushed %lld times this minute: at most %lld "
				 "(push.per_minute); retry in %u s",
				 tokenid, r->n, p->caps.per_minute, wait ? wait : 1);
		http_reply_retry_after(ctx->req, wait ? wait : 1);
		return -1;
	}
	r->n++;
	return 0;
}

static struct push_count *push_count_find(struct push *p, int64_t tokenid, const char *package)
{
	for (size_t i = 0; i < p->ncounts; i++)
		if (p->counts[i].tokenid == tokenid && !strcmp(p->counts[i].package, package))
			return &p->counts[i];
	return NULL;
}

/* Stored results of token and package: 1 (counted), 0 after answering 429,
 * or -EAGAIN when they are not known yet (db_push_count_async first). */
static int push_count(struct push *p, struct api_ctx *ctx, int64_t tokenid, const char *package)
{
	struct push_count *c = push_count_find(p, tokenid, package);
	if (!c)
		return -EAGAIN;
	if (c->n >= p->caps.max_results) {
		api_reply_errorf(ctx, 429,
				 "token %" PRId64 " has stored %" PRId64
				 " results for package '%s': "
				 "at most %lld (push.max_results); new pushes are refused, nothing "
				 "is pruned",
				 tokenid, c->n, package, p->caps.max_results);
		http_reply_retry_after(ctx->req, 3600);
		return 0;
	}
	c->n++;
	return 1;
}

static int push_busy(struct push *p, struct api_ctx *ctx, size_t bytes)
{
	if (p->nqueued < PUSH_QUEUE_MAX && p->queued_bytes + bytes <= PUSH_QUEUE_BYTES)
		return 0;
	api_reply_error(ctx, 503, "too many pushes waiting to be stored: retry in a second");
	http_reply_retry_after(ctx->req, 1);
	return -1;
}

static void push_status_url(struct push *p, int64_t id, char *out, size_t n)
{
	const char *base = p->m->cfg && p->m->cfg->url ? p->m->cfg->url : "";
	size_t bl = strlen(base);
	snprintf(out, n, "%.*s/api/v2/push/%" PRId64,
		 (int)(bl && base[bl - 1] == '/' ? bl - 1 : bl), base, id);
}

/* The bag accepted (its checks passed, counted): queued, answered 202. */
static void push_accept(struct push *p, struct api_ctx *ctx, struct push_bag *bag, int64_t tokenid,
			double now)
{
	int64_t id = 0;
	if (db_push_id_next(p->m->db, &p->next_id, &id) < 0) {
		/* PostgreSQL's reserve of ids, emptied by a burst: refilled at once */
		api_reply_error(ctx, 503, "push ids are being reserved: retry in a second");
		http_reply_retry_after(ctx->req, 1);
		push_bag_release(bag);
		*bag = (struct push_bag){0}; /* as when the job takes it */
		return;
	}
	struct push_job *j = xcalloc(1, sizeof(*j));
	j->kind = JOB_NEW;
	j->id = id;
	j->tokenid = tokenid;
	j->at = now;
	j->bag = *bag; /* the job's now */
	*bag = (struct push_bag){0};
	bool finished = j->bag.finished;
	json_t *doc = json_object();
	if (!finished) {
		char upd[PUSH_UPDATE_LEN + 8];
		unsigned char raw[24];
		randombytes_buf(raw, sizeof(raw));
		memcpy(upd, PUSH_UPDATE_PREFIX, 4);
		sodium_bin2base64(upd + 4, sizeof(upd) - 4, raw, sizeof(raw),
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		crypto_hash_sha256(j->hash, (const unsigned char *)upd, strlen(upd));
		ARRAY_GROW(p->open, p->nopen + 1, p->open_alloc);
		struct push_open *o = &p->open[p->nopen++];
		*o = (struct push_open){.id = j->id,
					.last = now,
					.tokenid = tokenid,
					.nsteps = (int64_t)j->bag.nsteps,
					.results = RESULTS_NONE};
		memcpy(o->hash, j->hash, 32);
		json_object_set_new(doc, "update_token", json_string(upd));
		sodium_memzero(upd, sizeof(upd));
	}
	char url[512];
	push_status_url(p, j->id, url, sizeof(url));
	json_object_set_new(doc, "pushid", json_integer(j->id));
	json_object_set_new(doc, "state", json_string("queued"));
	json_object_set_new(doc, "status_url", json_string(url));
	json_object_set_new(doc, "finished", json_boolean(finished));
	push_enqueue(p, j);
	push_reply(ctx, 202, doc);
}

/* A POST /push held back for the loop: its token's stored results for the
 * package (the first push of the two since the start), then the row of
 * the builder push:PACKAGE (the first push of the package), read before
 * it is queued. */
struct push_call {
	struct http_deferred *d;
	struct api_ctx ctx; /* the handler's, its path segments copied into cap */
	char *cap[API_MAX_SEGS];
	struct push_bag bag; /* owned until queued */
	int64_t tokenid;
	double now;
};

static void push_call_free(struct push_call *c)
{
	if (c->d)
		http_deferred_end(c->d);
	api_ctx_unhold(&c->ctx, c->cap);
	push_bag_release(&c->bag);
	free(c);
}

static void push_call_builder(void *arg, int r, int64_t id, const char *err);

/* Goes on with c once counted: the builder's row, then the queue.  c is
 * freed here (or by the read it sends). */
static void push_call_next(struct push *p, struct push_call *c)
{
	if (push_builder_id(p, c->bag.package)) {
		push_accept(p, &c->ctx, &c->bag, c->tokenid, c->now);
		push_call_free(c);
		return;
	}
	_cleanup_free_ char *name = xasprintf("push:%s", c->bag.package);
	_cleanup_free_ char *desc = xasprintf(
		"external: results of %s pushed from outside (docs/PUSH.md)", c->bag.package);
	int r = db_ensure_async(c->ctx.db, DB_NAMED_BUILDER, name, desc, "[\"external\",\"push\"]",
				push_call_builder, c);
	if (r < 0)
		push_call_builder(c, r, 0, db_errmsg(c->ctx.db)); /* answered there */
}

/* The builder push:PACKAGE's row (new or existing). */
static void push_call_builder(void *arg, int r, int64_t id, const char *err)
{
	struct push_call *c = arg;
	c->ctx.req = http_deferred_req(c->d);
	if (!c->ctx.req) { /* gone, or the master is stopping: touch nothing */
		push_call_free(c);
		return;
	}
	struct push *p = push_state(c->ctx.m);
	if (r >= 0 && (r = db_builder_set_masters(c->ctx.db, id, &p->m->masterid, 1)) < 0)
		err = db_errmsg(c->ctx.db);
	if (r < 0) {
		struct push_count *n = push_count_find(p, c->tokenid, c->bag.package);
		if (n && n->n > 0)
			n->n--; /* not queued after all */
		log_error("cannot add the external builder push:%s: %s", c->bag.package,
			  err ? err : err_str(r));
		api_reply_errorf(&c->ctx, 500,
				 "cannot add the external builder 'push:%s' (database error)",
				 c->bag.package);
		push_call_free(c);
		return;
	}
	push_builder_add(p, c->bag.package, id);
	push_call_next(p, c);
}

/* The token's stored results for the package. */
static void push_call_counted(void *arg, int r, int64_t n, const char *err)
{
	struct push_call *c = arg;
	struct api_ctx *ctx = api_deferred_ctx(c->d, &c->ctx, r, err);
	if (!ctx) { /* gone, or a database error answered 500 */
		push_call_free(c);
		return;
	}
	struct push *p = push_state(ctx->m);
	if (!push_count_find(p, c->tokenid, c->bag.package)) {
		ARRAY_GROW(p->counts, p->ncounts + 1, p->counts_alloc);
		p->counts[p->ncounts++] =
			(struct push_count){c->tokenid, xstrdup(c->bag.package), n};
	}
	if (push_count(p, ctx, c->tokenid, c->bag.package) <= 0) {
		push_call_free(c); /* 429 answered */
		return;
	}
	push_call_next(p, c);
}

static void push_post_new(struct push *p, struct api_ctx *ctx)
{
	struct db_token tok;
	if (push_token(ctx, &tok) < 0)
		return;
	if (ctx->req->body_len > p->caps.max_body_bytes) {
		api_reply_errorf(ctx, 413,
				 "the bag has %zu bytes: at most %" PRIu64
				 " are accepted (push.max_body_bytes)",
				 ctx->req->body_len, p->caps.max_body_bytes);
		return;
	}
	double now = clock_wall();
	struct push_limits lim = {(size_t)p->caps.max_steps, (size_t)p->caps.max_log_bytes};
	struct push_bag bag;
	char why[256];
	int st = push_bag_parse(ctx->req->body, ctx->req->body_len, &lim, false, &bag, why,
				sizeof(why));
	if (st) {
		api_reply_error(ctx, st, why);
		return;
	}
	int counted = 0;
	if ((!bag.finished && p->nopen >= PUSH_OPEN_MAX) || push_busy(p, ctx, bag.log_bytes) < 0 ||
	    push_rate(p, ctx, tok.id, now) < 0 ||
	    (counted = push_count(p, ctx, tok.id, bag.package)) == 0) {
		if (!bag.finished && p->nopen >= PUSH_OPEN_MAX)
			api_reply_error(ctx, 503, "too many open submissions: finish some first");
		push_bag_release(&bag);
		return;
	}
	if (counted == 1 && push_builder_id(p, bag.package)) {
		push_accept(p, ctx, &bag, tok.id, now);
		return;
	}
	struct push_call *c = xcalloc(1, sizeof(*c));
	api_ctx_hold(&c->ctx, c->cap, ctx);
	c->bag = bag;
	c->tokenid = tok.id;
	c->now = now;
	c->d = http_req_defer(ctx->req);
	if (counted == 1) {
		push_call_next(p, c);
		return;
	}
	int r = db_push_count_async(ctx->db, tok.id, bag.package, push_call_counted, c);
	if (r < 0) {
		api_reply_db_error(ctx, r);
		push_call_free(c);
	}
}

/* An append to a submission that is not open: 409 if it is known (stored,
 * failed or finishing), else 404. */
static void push_more_closed(struct api_ctx *ctx, int64_t id, bool known)
{
	if (known)
		api_reply_errorf(ctx, 409, "push %" PRId64 " is not open: it is finished", id);
	else
		api_reply_errorf(ctx, 404, "no open push %" PRId64, id);
}

/* The submission's row read ([] or [it]); the id from the path again. */
static void push_more_known(struct api_ctx *ctx, json_t *items, void *arg)
{
	(void)arg;
	push_more_closed(ctx, strtoll(ctx->rest + 5, NULL, 10), json_array_size(items) > 0);
}

/* POST /push/ID/steps and /push/ID/finish */
static void push_post_more(struct push *p, struct api_ctx *ctx, int64_t id, bool finish)
{
	struct push_open *o = push_open_find(p, id);
	/* a presented API token is checked as on /push (a revoked one is refused) */
	char why[256];
	struct db_token tok;
	int tr = apitoken_check(ctx->req, DB_SCOPE_PUSH, &tok, why, sizeof(why));
	if (tr < 0) {
		api_reply_error(ctx, tr == -EPERM ? 403 : 401, why);
		return;
	}
	if (ctx->req->body_len > p->caps.max_body_bytes) {
		api_reply_errorf(ctx, 413,
				 "the body has %zu bytes: at most %" PRIu64
				 " are accepted (push.max_body_bytes)",
				 ctx->req->body_len, p->caps.max_body_bytes);
		return;
	}
	struct push_limits lim = {(size_t)p->caps.max_steps, (size_t)p->caps.max_log_bytes};
	struct push_bag bag = {0};
	bool empty = ctx->req->body_len == 0;
	if (!empty) {
		int st = push_bag_parse(ctx->req->body, ctx->req->body_len, &lim, true, &bag, why,
					sizeof(why));
		if (st) {
			api_reply_error(ctx, st, why);
			return;
		}
	} else if (!finish) {
		api_reply_error(ctx, 400,
				"the body must be {\"steps\": [...], \"update_token\": ...}");
		return;
	}
	/* the update token: X-Kiln-Update-Token or the body's update_token */
	char upd[128] = "";
	if (http_req_header(ctx->req, "x-kiln-update-token", upd, sizeof(upd)) < 0 && !empty) {
		json_t *doc = json_loadb(ctx->req->body, ctx->req->body_len, 0, NULL);
		json_t *v = json_object_get(doc, "update_token");
		if (json_is_string(v))
			snprintf(upd, sizeof(upd), "%s", json_string_value(v));
		json_decref(doc);
	}
	unsigned char h[32];
	crypto_hash_sha256(h, (const unsigned char *)upd, strlen(upd));
	if (!o || o->finishing) {
		push_bag_release(&bag);
		if (push_failed_reason(p, id) || (o && o->finishing)) {
			push_more_closed(ctx, id, true);
			return;
		}
		struct api_wait *w = api_wait_new(ctx, push_more_known, NULL);
		api_wait_begin(ctx, w, db_push_get_async(ctx->db, id, api_wait_answered, w));
		return;
	}
	if (!*upd || sodium_memcmp(h, o->hash, 32)) {
		push_bag_release(&bag);
		api_reply_errorf(ctx, 401,
				 "push %" PRId64 ": wrong or missing update token "
				 "(X-Kiln-Update-Token or \"update_token\")",
				 id);
		return;
	}
	if (tr == 1 && tok.id != o->tokenid) {
		push_bag_release(&bag);
		api_reply_errorf(ctx, 403, "push %" PRId64 " belongs to another token", id);
		return;
	}
	if (o->nsteps + (int64_t)bag.nsteps > p->caps.max_steps) {
		push_bag_release(&bag);
		api_reply_errorf(ctx, 413,
				 "push %" PRId64 " would have %" PRId64 " steps: at most %lld "
				 "(push.max_steps)",
				 id, o->nsteps + (int64_t)bag.nsteps, p->caps.max_steps);
		return;
	}
	double now = clock_wall();
	if (push_busy(p, ctx, bag.log_bytes) < 0 || push_rate(p, ctx, o->tokenid, now) < 0) {
		push_bag_release(&bag);
		return;
	}
	o->nsteps += (int64_t)bag.nsteps;
	o->finishing = finish;
	o->last = now;
	struct push_job *j = xcalloc(1, sizeof(*j));
	j->kind = finish ? JOB_FINISH : JOB_STEPS;
	j->id = id;
	j->tokenid = o->tokenid;
	j->at = now;
	j->bag = bag;
	size_t nsteps = bag.nsteps;
	push_enqueue(p, j);
	char url[512];
	push_status_url(p, id, url, sizeof(url));
	push_reply(ctx, 202,
		   json_pack("{s:I,s:s,s:s,s:I,s:b}", "pushid", (json_int_t)id, "state", "queued",
			     "status_url", url, "steps_added", (json_int_t)nsteps, "finished",
			     finish));
}

bool push_api_post(struct api_ctx *ctx)
{
	const char *r = ctx->rest;
	if (strncmp(r, "push", 4) || (r[4] && r[4] != '/'))
		return false;
	struct push *p = push_state(ctx->m);
	if (!r[4] || !strcmp(r + 4, "/")) {
		push_post_new(p, ctx);
		return true;
	}
	char *end;
	errno = 0;
	long long id = strtoll(r + 5, &end, 10);
	if (errno || id <= 0 || end == r + 5 || (strcmp(end, "/steps") && strcmp(end, "/finish"))) {
		api_reply_errorf(ctx, 404,
				 "Invalid path: %.200s (POST /api/v2/push, /push/ID/steps, "
				 "/push/ID/finish)",
				 r);
		return true;
	}
	push_post_more(p, ctx, id, !strcmp(end, "/finish"));
	return true;
}

/* ---- queries ----------------------------------------------------------------------------- */

static void api_push_got(struct api_ctx *ctx, json_t *items, void *arg)
{
	(void)arg;
	int64_t id = strtoll(ctx->cap[0], NULL, 10);
	json_t *row = json_array_get(items, 0);
	if (!row) {
		api_reply_errorf(ctx, 404, "no push %" PRId64, id);
		return;
	}
	struct push_open *o = push_open_find(push_state(ctx->m), id);
	if (o) /* steps accepted and not stored yet */
		json_object_set_new(row, "steps_queued",
				    json_integer(o->nsteps - json_integer_value(json_object_get(
								     row, "nsteps"))));
	push_reply(ctx, 200, json_incref(row));
}

void api_push_get(struct api_ctx *ctx)
{
	struct push *p = push_state(ctx->m);
	int64_t id = strtoll(ctx->cap[0], NULL, 10);
	for (struct push_job *j = p->head; j; j = j->next)
		if (j->kind == JOB_NEW && j->id == id) {
			push_reply(ctx, 200,
				   json_pack("{s:I,s:s,s:s,s:s}", "pushid", (json_int_t)id, "state",
					     "queued", "package", j->bag.package, "host",
					     j->bag.host));
			return;
		}
	const char *failed = push_failed_reason(p, id);
	if (failed) {
		push_reply(ctx, 200,
			   json_pack("{s:I,s:s,s:s}", "pushid", (json_int_t)id, "state", "failed",
				     "reason", failed));
		return;
	}
	struct api_wait *w = api_wait_new(ctx, api_push_got, NULL);
	api_wait_begin(ctx, w, db_push_get_async(ctx->db, id, api_wait_answered, w));
}

static const char *push_arg(struct api_ctx *ctx, const char *name)
{
	const char *v = http_req_arg(ctx->req, name);
	return v && *v ? v : NULL;
}

static void api_push_latest_got(struct api_ctx *ctx, json_t *list, void *arg)
{
	(void)arg;
	json_int_t n = (json_int_t)json_array_size(list);
	push_reply(ctx, 200, json_pack("{s:O,s:{s:I}}", "pushes", list, "meta", "total", n));
}

void api_push_latest_get(struct api_ctx *ctx)
{
	struct api_wait *w = api_wait_new(ctx, api_push_latest_got, NULL);
	api_wait_begin(ctx, w,
		       db_push_latest_async(ctx->db, push_arg(ctx, "package"),
					    push_arg(ctx, "host"), push_arg(ctx, "tag"), 1000,
					    api_wait_answered, w));
}

static void api_push_checked(struct api_ctx *ctx, json_t *list, void *arg);

void api_push_check_get(struct api_ctx *ctx)
{
	const char *package = push_arg(ctx, "package"), *host = push_arg(ctx, "host");
	const char *age = push_arg(ctx, "max_age");
	if (!package || !host) {
		api_reply_error(ctx, 400,
				"check needs ?package= and ?host= (and revision= or "
				"max_age=)");
		return;
	}
	double max_age = 86400; /* pony-build's: a result older than a day is stale */
	if (age) {
		char *end;
		max_age = strtod(age, &end);
		if (*end || !isfinite(max_age) || max_age < 0) {
			api_reply_error(ctx, 400, "max_age must be a number of seconds");
			return;
		}
	}
	struct api_wait *w = api_wait_new(ctx, api_push_checked, NULL);
	api_wait_begin(ctx, w,
		       db_push_latest_async(ctx->db, package, host, NULL, 1, api_wait_answered, w));
}

/* The check's answer from the latest stored result (list: none or one). */
static void api_push_checked(struct api_ctx *ctx, json_t *list, void *arg)
{
	(void)arg;
	const char *package = push_arg(ctx, "package"), *host = push_arg(ctx, "host");
	const char *rev = push_arg(ctx, "revision"), *age = push_arg(ctx, "max_age");
	double max_age = age ? strtod(age, NULL) : 86400; /* checked before the read */
	json_t *last = json_array_get(list, 0);
	bool build;
	char why[256];
	double now = clock_wall();
	if (!last) {
		build = true;
		snprintf(why, sizeof(why), "no result for %s on %s", package, host);
	} else {
		const char *lrev = json_string_value(json_object_get(last, "revision"));
		double at = (double)json_integer_value(json_object_get(last, "created_at"));
		bool fin = json_is_true(json_object_get(last, "finished"));
		json_int_t res = json_integer_value(json_object_get(last, "results"));
		json_int_t lid = json_integer_value(json_object_get(last, "pushid"));
		if (rev) {
			build = !lrev || strcmp(lrev, rev);
			if (build)
				snprintf(why, sizeof(why),
					 "the latest result (push %lld) is for revision %.64s",
					 (long long)lid, lrev ? lrev : "(none)");
			else
				snprintf(why, sizeof(why),
					 "push %lld already has a result for revision %.64s",
					 (long long)lid, rev);
		} else if (now - at > max_age) {
			build = true;
			snprintf(why, sizeof(why),
				 "the latest result (push %lld) is %.0f s old: older than %.0f s",
				 (long long)lid, now - at, max_age);
		} else if (!age && fin && res != RESULTS_SUCCESS && res != RESULTS_WARNINGS) {
			build = true;
			snprintf(why, sizeof(why), "the latest result (push %lld) failed",
				 (long long)lid);
		} else {
			build = false;
			snprintf(why, sizeof(why), "push %lld is %.0f s old: newer than %.0f s",
				 (long long)lid, now - at, max_age);
		}
	}
	json_t *doc = json_pack("{s:b,s:s,s:O}", "should_build", build, "reason", why, "latest",
				last ? last : json_null());
	push_reply(ctx, 200, doc);
}
