/*
 * Running one build: the worker_preparation step, then the builder's steps
 * in order through remote commands on one worker, storing output as it
 * arrives and combining step results with Buildbot's rules (halt, flunk,
 * warn, always_run; db_db_results_worst() orders results).  A failed database
 * write on a build's path ends the build EXCEPTION (build_db_check).
 */
#define LOG_SUBSYS "build"

#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/stats.h" /* slice "operator" */
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/events.h"
#include "master/events-steps.h"
#include "master/master.h"
#include "master/logmask.h"
#include "master/numbers.h"
#include "master/sched/sched.h"
#include "master/steps/step.h"

/* A worker that dies on the same request this often: EXCEPTION, not RETRY. */
#define MAX_BUILD_RETRIES 3
/* The text of the build's state string naming its failed steps. */
#define BUILD_TEXT_MAX (1u << 16)

int64_t build_id(const struct build *b)
{
	return b->buildid;
}

int64_t build_request_id(const struct build *b)
{
	return b->brid;
}

struct wconn *build_worker(const struct build *b)
{
	return b->w;
}

int build_results(const struct build *b)
{
	return b->results;
}

/* Every database write on the build's path goes through here.  A failure
 * ends the build EXCEPTION: the reason goes to the daemon log and to the
 * running step's log, or (when that cannot be written either) into the
 * build's state string; no further step starts and a running command is
 * given up on a later turn.  Returns r. */
int build_db_check(struct build *b, int r, const char *what)
{
	if (r >= 0)
		return r;
	struct db *db = b->e->m->db;
	log_error("build=%lld cannot %s: %s", (long long)b->buildid, what, db_errmsg(db));
	if (b->db_failed || b->finished)
		return r;
	b->db_failed = true;
	b->terminate = true;
	char *reason = xasprintf("database write failed: cannot %s: %s", what, db_errmsg(db));
	bool logged = false;
	if (b->step && b->step->logid) {
		_cleanup_free_ char *line = xasprintf("h%s\n", reason);
		logged = db_log_append(db, b->step->logid, line, strlen(line)) >= 0;
	}
	if (logged)
		free(reason);
	else
		b->db_error = reason;
	if (b->step)
		step_db_failed(b->step);
	return r;
}

static void build_run_next(struct build *b);
static void build_run_next_cb(uv_timer_t *t);
/* Steps that end as they start (skipped, set_property...) run this many
 * in one loop turn, the rest on the next turns. */
#define BUILD_STEPS_PER_TURN 64

int build_combine(const struct config_step *s, int step_results, int build_results, bool *terminate)
{
	/* Buildbot's computeResultAndTermination */
	int possible = step_results;
	if (step_results == RESULTS_FAILURE) {
		possible = RESULTS_SUCCESS;
		if (s->warn_on_failure)
			possible = RESULTS_WARNINGS;
		if (s->flunk_on_failure)
			possible = RESULTS_FAILURE;
		if (s->halt_on_failure)
			*terminate = true;
	} else if (step_results == RESULTS_WARNINGS) {
		possible = RESULTS_WARNINGS;
	} else if (step_results == RESULTS_EXCEPTION || step_results == RESULTS_RETRY ||
		   step_results == RESULTS_CANCELLED) {
		*terminate = true;
	}
	return db_results_worst(build_results, possible);
}

/* Buildbot's updateBuildSummaryPolicy default: a step is named in the
 * build's state string when it ended EXCEPTION, RETRY or CANCELLED, or
 * FAILURE with any of the on-failure flags; never when skipped. */
static bool build_step_in_summary(const struct config_step *s, int results)
{
	switch (results) {
	case RESULTS_EXCEPTION:
	case RESULTS_RETRY:
	case RESULTS_CANCELLED:
		return true;
	case RESULTS_FAILURE:
		return s->flunk_on_failure || s->halt_on_failure || s->warn_on_failure;
	default:
		return false;
	}
}

/* Appends one step summary to the build's text; past its cap, " ..." once. */
static void build_text_add(struct build *b, const char *summary, size_t len)
{
	if (b->text_full)
		return;
	size_t sep = b->text.len ? 1 : 0;
	if (buf_room(&b->text) < sep + len + 4) {
		b->text_full = true;
		if (buf_adds(&b->text, " ...") < 0)
			buf_reset(&b->text); /* cannot happen: 4 bytes were kept free */
		return;
	}
	int r = sep ? buf_addch(&b->text, ' ') : 0;
	if (r >= 0)
		r = buf_add(&b->text, summary, len);
	if (r < 0)
		buf_reset(&b->text); /* cannot happen: the room was checked */
}

/* retry = N: a step that ended FAILURE or EXCEPTION (not a stop, a lost
 * worker or a database failure) runs again, a new step row each time (its
 * name gains _1, _2 ... as Buildbot names repeats); only the last attempt
 * counts for the build. */
static bool build_step_retry(struct build *b, const struct config_step *s, int results)
{
	if ((results != RESULTS_FAILURE && results != RESULTS_EXCEPTION) ||
	    b->step_attempts >= s->retry || b->stop_requested || b->lost || b->db_failed ||
	    !b->next_step || &b->bcfg->steps[b->next_step - 1] != s) {
		b->step_attempts = 0;
		return false;
	}
	b->step_attempts++;
	b->next_step--; /* build_run_next() runs it again */
	log_info("build=%lld step '%s' %s: attempt %d of %d", (long long)b->buildid, s->name,
		 db_results_name(results), b->step_attempts + 1, s->retry + 1);
	return true;
}

void build_step_ended(struct build *b, const struct config_step *s, int results, const char *state)
{
	if (build_step_retry(b, s, results)) {
		build_run_next(b);
		return;
	}
	if (state && build_step_in_summary(s, results))
		build_text_add(b, state, strlen(state));
	log_debug("build=%lld step '%s' %s", (long long)b->buildid, s->name,
		  db_results_name(results));
	b->results = build_combine(s, results, b->results, &b->terminate);
	if (b->starting) {
		/* ended inside its own start: build_run_next's loop goes on, so a
		 * long run of steps that end at once does not nest on the stack */
		b->ended_at_start = true;
		return;
	}
	build_run_next(b);
}

/* -------------------------------------------------------- build lifecycle */

/* The build's state string: "build successful", or the results, the stop
 * reason, the failed steps and a database failure not in any log. */
static char *build_state_string(const struct build *b)
{
	if (b->results == RESULTS_SUCCESS && !b->db_error)
		return xstrdup("build successful");
	struct buf state;
	buf_init(&state, BUILD_TEXT_MAX + 4096);
	int r = buf_adds(&state, db_results_name(b->results));
	if (r >= 0 && b->stop_reason)
		r = buf_addf(&state, " (%.1000s)", b->stop_reason);
	if (r >= 0 && b->text.len)
		r = buf_addf(&state, " %s", b->text.ptr);
	if (r >= 0 && b->db_error)
		r = buf_addf(&state, " (%.2000s)", b->db_error);
	if (r < 0) {
		buf_release(&state);
		return xasprintf("%s (state text too long)", db_results_name(b->results));
	}
	return buf_detach(&state, NULL);
}

/* Counts one lost-worker retry of request brid; returns the count.  The
 * list holds only requests being retried and at most
 * KILN_MAX_RETRY_ENTRIES of them: past that the oldest entry goes (that
 * request may be retried a few more times, never forever). */
static int build_retry_count(struct engine *e, int64_t brid)
{
	for (size_t i = 0; i < e->nretries; i++)
		if (e->retries[i].brid == brid)
			return ++e->retries[i].n;
	if (e->nretries >= KILN_MAX_RETRY_ENTRIES) {
		memmove(e->retries, e->retries + 1, (e->nretries - 1) * sizeof(*e->retries));
		e->nretries--;
	}
	ARRAY_GROW(e->retries, e->nretries + 1, e->retries_alloc);
	e->retries[e->nretries++] = (struct retry_count){brid, 1};
	return 1;
}

/* Request brid is complete: its retry count is no longer needed. */
static void build_retry_forget(struct engine *e, int64_t brid)
{
	for (size_t i = 0; i < e->nretries; i++)
		if (e->retries[i].brid == brid) {
			memmove(e->retries + i, e->retries + i + 1,
				(e->nretries - i - 1) * sizeof(*e->retries));
			e->nretries--;
			return;
		}
}

/* A request of a finished build being completed (answered on the loop,
 * after the build itself may be gone). */
struct build_request_done {
	struct master *m;
	int64_t brid, bsid;
	int results;
	engine_done_fn done;
	void *arg;
};

static void build_request_done_free(struct build_request_done *d, int r)
{
	if (d->done)
		d->done(d->arg, r);
	free(d);
}

static void build_request_completed(void *arg, int r, int64_t bsid_done, int bs_results,
				    const char *err)
{
	struct build_request_done *d = arg;
	struct master *m = d->m;
	if (r == -ECANCELED) { /* the database closed first: the master is going */
		build_request_done_free(d, r);
		return;
	}
	if (r < 0) {
		log_error("request=%lld cannot be completed: %s", (long long)d->brid,
			  err ? err : "failed");
		build_request_done_free(d, r);
		return;
	}
	events_request_complete(m, d->brid, bsid_done);
	int res = d->results;
	if (m->sched && bsid_done)
		sched_buildset_completed(m->sched, bsid_done, bs_results);
	else if (m->sched && res != RESULTS_SUCCESS && res != RESULTS_WARNINGS &&
		 res != RESULTS_SKIPPED)
		sched_buildset_failing(m->sched, d->bsid, res);
	build_request_done_free(d, 0);
}

int build_complete_request(struct master *m, int64_t brid, int64_t bsid, int results, double now,
			   engine_done_fn done, void *arg)
{
	struct build_request_done *d = xmalloc(sizeof(*d));
	*d = (struct build_request_done){
		.m = m, .brid = brid, .bsid = bsid, .results = results, .done = done, .arg = arg};
	int r = db_request_complete_async(m->db, brid, results, now, build_request_completed, d);
	if (r < 0) {
		log_error("cannot complete request %lld: %s", (long long)brid, db_errmsg(m->db));
		free(d);
	}
	return r;
}

static void build_finish(struct build *b)
{
	struct master *m = b->e->m;
	struct engine *e = b->e;
	double now = clock_wall();
	if (b->lost)
		b->results = db_results_worst(b->results, b->stop_requested ? RESULTS_CANCELLED
									    : RESULTS_RETRY);
	if (b->db_failed)
		b->results = db_results_worst(b->results, RESULTS_EXCEPTION);
	/* slice "faults": the MAX_BUILD_RETRIES-th lost worker of a request
	 * ends its build EXCEPTION, and its state says why */
	int retries = b->results == RESULTS_RETRY ? build_retry_count(e, b->brid) : 0;
	if (retries >= MAX_BUILD_RETRIES) {
		b->results = RESULTS_EXCEPTION;
		free(b->stop_reason);
		b->stop_reason = xasprintf("worker lost %d times: giving up", retries);
	}

	_cleanup_free_ char *state = build_state_string(b);
	build_db_check(b, db_build_finish(m->db, b->buildid, b->results, state, now),
		       "finish build");
	b->finished = true;
	stats_build_finished(b->results); /* slice "operator": /metrics */
	events_publish_row(m, DB_BUILDS, "builds", "buildid", b->buildid, "finished");
	struct db_build_times bt = {.builderid = b->builderid,
				    .number = b->number,
				    .started_at = b->started_at,
				    .complete_at = now,
				    .results = b->results};
	numbers_build_ended(m, b->buildid, &bt); /* durations, ETA cache (numbers.h) */

	int req_results = b->results;
	if (b->results == RESULTS_RETRY) {
		build_db_check(b, db_request_unclaim(m->db, b->brid), "requeue request");
		for (size_t i = 0; i < b->nmerged; i++) {
			build_db_check(b, db_request_unclaim(m->db, b->merged[i]),
				       "requeue request");
			build_db_check(b, db_request_set_collapsed(m->db, b->merged[i], 0),
				       "unlink a collapsed request");
		}
		req_results = RESULTS_NONE;
	} else if (retries >= MAX_BUILD_RETRIES) {
		log_warn("build=%lld request %lld lost its worker %d times: giving up",
			 (long long)b->buildid, (long long)b->brid, retries);
	}
	if (req_results != RESULTS_NONE) {
		build_retry_forget(e, b->brid);
		/* the build's own request, then those collapsed into it: same results */
		for (size_t i = 0; i <= b->nmerged; i++)
			build_complete_request(m, i == 0 ? b->brid : b->merged[i - 1],
					       i == 0 ? b->bsid : b->merged_bsids[i - 1],
					       req_results, now, NULL, NULL);
	}
	log_info("build=%lld builder=%s number=%lld worker=%s: %s", (long long)b->buildid,
		 b->bcfg->name, (long long)b->number, b->w->cfg->name, state);
	engine_build_done(e, b);
}

static void build_ids_ready(struct db_ids_waiter *w)
{
	build_run_next((struct build *)((char *)w - offsetof(struct build, ids_wait)));
}

static void build_run_next(struct build *b)
{
	for (;;) {
		if (b->finished)
			return;
		build_locks_step_end(b); /* slice "locks": the step that ended lets its locks go */
		if (b->stop_requested || b->lost || b->db_failed)
			b->terminate = true;
		/* PostgreSQL: steps that end at once may empty the reserve of
		 * row ids faster than it is refilled; the next waits for it */
		b->ids_wait.fn = build_ids_ready;
		if (db_ids_wait(b->e->m->db, &b->ids_wait) > 0)
			return;
		const struct config_step *s = NULL;
		while (!s && b->next_step < b->bcfg->nsteps) {
			s = &b->bcfg->steps[b->next_step++];
			/* always_run steps run after failures, not when the worker or
			 * the database is gone */
			if (b->terminate && !(s->always_run && !b->lost && !b->db_failed))
				s = NULL;
		}
		if (!s) {
			build_finish(b);
			return;
		}
		if (!build_locks_take_step(b, s)) /* slice "locks": waits for the step's locks */
			return;
		b->starting = true;
		b->ended_at_start = false;
		step_begin(b, s);
		b->starting = false;
		if (!b->ended_at_start) {
			b->ended_in_row = 0;
			return; /* it runs: build_step_ended comes back here */
		}
		if (++b->ended_in_row >= BUILD_STEPS_PER_TURN) {
			/* the others wait for the next loop turn */
			b->ended_in_row = 0;
			uv_timer_start(&b->interrupt_timer, build_run_next_cb, 0, 0);
			return;
		}
	}
}

static void build_run_next_cb(uv_timer_t *t)
{
	build_run_next(t->data);
}

void build_set_property(struct build *b, const char *name, json_t *value, const char *source)
{
	build_db_check(b, db_build_set_property(b->e->m->db, b->buildid, name, value, source),
		       "set property");
	json_object_set_new(b->props, name, json_pack("[o,s]", value, source));
}

/* One layer of the build's properties, in memory (build_setup_properties
 * stores them all); a later layer wins.  Consumes value. */
static void build_prop_layer(struct build *b, const char *name, json_t *value, const char *source)
{
	json_object_set_new(b->props, name, json_pack("[o,s]", value, source));
}

static void build_prop_layer_config(struct build *b, const struct config_prop *p, size_t n,
				    const char *source)
{
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_loads(p[i].value, JSON_DECODE_ANY, NULL);
		if (v)
			build_prop_layer(b, p[i].name, v, source);
	}
}

static json_t *build_opt_string(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Buildbot's order, each layer over the one before: the global properties,
 * the buildset's (its scheduler's, force parameters, trigger steps'), the
 * builder's, the worker's, then the build's own; all stored at once. */
static void build_setup_properties(struct build *b, json_t *props, json_t *owners)
{
	struct master *m = b->e->m;
	const struct config *cfg = m->cfg;
	struct wconn *w = b->w;
	build_prop_layer_config(b, cfg->props, cfg->nprops, "master.lua");
	if (json_is_object(props)) {
		const char *k;
		json_t *v;
		json_object_foreach(props, k, v)
		{
			if (json_is_array(v) && json_array_size(v) == 2)
				build_prop_layer(b, k, json_incref(json_array_get(v, 0)),
						 json_string_value(json_array_get(v, 1))
							 ?: "Buildset");
		}
	}
	build_prop_layer(b, "buildername", json_string(b->bcfg->name), "Builder");
	build_prop_layer_config(b, b->bcfg->props, b->bcfg->nprops, "Builder");
	build_prop_layer(b, "workername", json_string(w->cfg->name), "Worker");
	build_prop_layer_config(b, w->cfg->props, w->cfg->nprops, "Worker");
	build_prop_layer(b, "buildnumber", json_integer(b->number), "Build");
	build_prop_layer(b, "branch", build_opt_string(b->ss_branch), "Build");
	build_prop_layer(b, "revision", build_opt_string(b->ss_revision), "Build");
	build_prop_layer(b, "repository", build_opt_string(b->ss_repository ?: ""), "Build");
	build_prop_layer(b, "codebase", build_opt_string(b->ss_codebase ?: ""), "Build");
	build_prop_layer(b, "project", build_opt_string(b->ss_project ?: ""), "Build");
	_cleanup_free_ char *builddir = wconn_path(w, w->basedir, b->bcfg->builddir, NULL);
	if (builddir)
		build_prop_layer(b, "builddir", json_string(builddir), "Worker");
	/* owners: the blamelist and the requests' owner, sorted (Buildbot's setupBuild) */
	if (json_is_array(owners)) {
		build_prop_layer(b, "blamelist", json_copy(owners), "Build");
		json_t *owner = json_array_get(json_object_get(b->props, "owner"), 0);
		if (json_is_string(owner)) {
			size_t i;
			json_t *o;
			bool have = false;
			json_array_foreach(owners, i, o) have = have || json_equal(o, owner);
			if (!have)
				json_array_append(owners, owner);
		}
		if (json_array_size(owners) > 1) {
			/* sort: json has no sort; a few entries, insertion sort */
			for (size_t i = 1; i < json_array_size(owners); i++)
				for (size_t k = i; k > 0; k--) {
					json_t *x = json_array_get(owners, k - 1);
					json_t *y = json_array_get(owners, k);
					if (strcmp(json_string_value(x), json_string_value(y)) <= 0)
						break;
					json_incref(x);
					json_array_set(owners, k - 1, y);
					json_array_set_new(owners, k, x);
				}
		}
		if (json_array_size(owners))
			build_prop_layer(b, "owners", json_incref(owners), "Build");
	}
	const char *k;
	json_t *v;
	json_object_foreach(b->props, k, v)
	{
		build_db_check(b,
			       db_build_set_property(m->db, b->buildid, k, json_array_get(v, 0),
						     json_string_value(json_array_get(v, 1))),
			       "set property");
	}
}

bool build_same_line(const struct build *b, const struct db_request_line *l)
{
	const char *mine[] = {b->ss_codebase, b->ss_repository, b->ss_project, b->ss_branch};
	const char *theirs[] = {l->codebase, l->repository, l->project, l->branch};
	for (size_t i = 0; i < ARRAY_SIZE(mine); i++) {
		const char *x = mine[i] ? mine[i] : "", *y = theirs[i] ? theirs[i] : "";
		if (strcmp(x, y))
			return false;
	}
	return true;
}

/* What a build waits for as it starts: its row (id and number) and its
 * buildset's inputs, both answered on the loop (issue 14).  Lives until
 * both answers are in, even when the build is dropped first (b NULL). */
struct build_open {
	struct build *b;
	int pending;
	int add_r, inputs_r;
	char *add_err, *inputs_err; /* owned */
	json_t *props, *blamelist;  /* owned: the buildset's, once read */
};

static void build_open_free(struct build_open *o)
{
	free(o->add_err);
	free(o->inputs_err);
	json_decref(o->props);
	json_decref(o->blamelist);
	free(o);
}

/* The build's start is answered (or it is dropped first). */
static void build_open_end(struct build *b)
{
	b->open = NULL;
	if (b->bcfg->nlocks) {
		/* slice "locks": the builds it held back may start now (engine.c) */
		b->e->opening_locked--;
		engine_kick(b->e);
	}
}

/* The build could not be added: its requests go back to the queue. */
static void build_open_failed(struct build *b, const char *why)
{
	struct engine *e = b->e;
	struct master *m = e->m;
	log_error("builder=%s cannot add build: %s", b->bcfg->name, why);
	db_request_unclaim(m->db, b->brid);
	for (size_t i = 0; i < b->nmerged; i++)
		db_request_unclaim(m->db, b->merged[i]);
	b->finished = true;
	/* engine_build_done kicks the distributor: not at once, the database
	 * refused the last try */
	for (struct build **pp = &e->builds; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	engine_worker_slot_freed(e, b->w);
	build_free(b);
}

/* Both answers are in: the build runs. */
static void build_opened(struct build *b, struct build_open *o)
{
	struct master *m = b->e->m;
	struct wconn *w = b->w;
	double now = clock_wall();
	build_open_end(b);
	if (o->add_r < 0) {
		build_open_failed(b, o->add_err ? o->add_err : "failed");
		return;
	}
	if (o->inputs_r < 0) {
		/* the row is there: the build ends EXCEPTION, the reason in its state */
		log_error("build=%lld cannot read buildset %lld: %s", (long long)b->buildid,
			  (long long)b->bsid, o->inputs_err ? o->inputs_err : "failed");
		b->db_failed = true;
		b->db_error =
			xasprintf("database read failed: buildset %lld: %s", (long long)b->bsid,
				  o->inputs_err ? o->inputs_err : "failed");
	}
	if (w->closed)
		b->lost = true; /* it went away meanwhile: the build is retried */
	build_db_check(b, db_build_set_state(m->db, b->buildid, "building"), "set state");
	events_publish_row(m, DB_BUILDS, "builds", "buildid", b->buildid, "new");
	for (size_t i = 0; i < b->nmerged; i++)
		build_db_check(b, db_request_set_collapsed(m->db, b->merged[i], b->buildid),
			       "link a collapsed request");
	build_setup_properties(b, o->props, o->blamelist);

	/* Buildbot's first step: the worker is ready */
	int64_t stepid, number;
	if (build_db_check(b,
			   db_step_begin(m->db, b->buildid, "worker_preparation", now, NULL,
					 &stepid, &number),
			   "add step") == 0) {
		events_step_started(m, b->buildid, stepid); /* slice "uibuild" */
		_cleanup_free_ char *st = xasprintf("worker %s ready", w->cfg->name);
		build_db_check(b, db_step_finish(m->db, stepid, RESULTS_SUCCESS, st, false, now),
			       "finish step");
		events_step_finished(m, b->buildid, stepid); /* slice "uibuild" */
	}
	log_info("build=%lld builder=%s number=%lld started on worker=%s", (long long)b->buildid,
		 b->bcfg->name, (long long)b->number, w->cfg->name);
	/* slice "locks": or wait for them; a build stopped or without its
	 * worker meanwhile ends without them */
	if (b->stop_requested || b->lost || build_locks_take(b, build_run_next))
		build_run_next(b);
}

static void build_open_answered(struct build_open *o)
{
	if (--o->pending > 0)
		return;
	if (o->b)
		build_opened(o->b, o);
	build_open_free(o);
}

static void build_on_added(void *arg, int r, int64_t buildid, int64_t number, const char *err)
{
	struct build_open *o = arg;
	o->add_r = r;
	if (r < 0)
		o->add_err = xstrdup(err ? err : "failed");
	else if (o->b) {
		o->b->buildid = buildid;
		o->b->number = number;
	}
	build_open_answered(o);
}

/* A try build's patches, read before it runs (its steps apply them). */
static void build_on_patches(void *arg, int r, struct db_patch_data *v, size_t n, const char *err)
{
	struct build_open *o = arg;
	struct build *b = o->b;
	if (r < 0 && o->inputs_r >= 0) {
		o->inputs_r = r;
		o->inputs_err = xstrdup(err ? err : "failed");
	}
	if (b && r >= 0) {
		b->patches = v;
		b->npatches = n;
	} else {
		for (size_t i = 0; i < n; i++)
			db_patch_data_release(&v[i]);
		free(v);
	}
	build_open_answered(o);
}

int build_patch(const struct build *b, const char *codebase, struct db_patch_data *ret)
{
	for (size_t i = 0; i < b->npatches; i++) {
		const struct db_patch_data *p = &b->patches[i];
		if (codebase && strcmp(p->codebase ? p->codebase : "", codebase))
			continue;
		char *body = xmalloc(p->len + 1);
		memcpy(body, p->body, p->len + 1);
		*ret = (struct db_patch_data){.level = p->level,
					      .body = body,
					      .len = p->len,
					      .subdir = p->subdir ? xstrdup(p->subdir) : NULL};
		return 1;
	}
	return 0;
}

static void build_on_inputs(void *arg, int r, struct db_build_inputs *in, const char *err)
{
	struct build_open *o = arg;
	struct build *b = o->b;
	o->inputs_r = r;
	if (r < 0) {
		o->inputs_err = xstrdup(err ? err : "failed");
	} else if (b) {
		b->ss_branch = TAKE_PTR(in->bs.branch);
		b->ss_revision = TAKE_PTR(in->bs.revision);
		b->ss_repository = TAKE_PTR(in->bs.repository);
		b->ss_project = TAKE_PTR(in->bs.project);
		b->ss_codebase = TAKE_PTR(in->bs.codebase);
		b->ss_all = TAKE_PTR(in->ss);
		b->nss_all = in->nss;
		in->nss = 0;
		b->has_patch = in->bs.npatches > 0;
		o->props = TAKE_PTR(in->props);
		o->blamelist = TAKE_PTR(in->blamelist);
		struct db *db = b->e->m->db;
		if (b->has_patch) {
			if (db_buildset_patches_async(db, b->bsid, build_on_patches, o) < 0) {
				o->inputs_r = KILN_EDB;
				o->inputs_err =
					xasprintf("cannot read the patch: %s", db_errmsg(db));
			} else {
				o->pending++;
			}
		}
	}
	build_open_answered(o);
}

struct build *build_start(struct engine *e, int builder_idx, struct wconn *w, int64_t brid,
			  int64_t bsid, const int64_t *merged, const int64_t *merged_bsids,
			  size_t nmerged)
{
	struct master *m = e->m;
	double now = clock_wall();
	struct build *b = xcalloc(1, sizeof(*b));
	b->e = e;
	b->bcfg = &m->cfg->builder[builder_idx];
	b->cfg = config_ref(m->cfg); /* slice "reconfig": kept until build_free */
	b->builderid = e->builderids[builder_idx];
	b->w = w;
	wconn_ref(w);
	b->brid = brid;
	b->bsid = bsid;
	b->results = RESULTS_SUCCESS;
	b->props = json_object();
	buf_init(&b->text, BUILD_TEXT_MAX);
	uv_timer_init(m->loop, &b->interrupt_timer);
	b->interrupt_timer.data = b;
	if (nmerged) {
		b->merged = xmalloc(nmerged * sizeof(*b->merged));
		memcpy(b->merged, merged, nmerged * sizeof(*merged));
		b->merged_bsids = xmalloc(nmerged * sizeof(*b->merged_bsids));
		memcpy(b->merged_bsids, merged_bsids, nmerged * sizeof(*merged_bsids));
		b->nmerged = nmerged;
	}

	if (events_wanted_like(m, "builds/*/new")) /* the ETA its "new" event carries */
		numbers_prefetch(m, b->builderid);
	/* the row and the buildset's inputs, asked together */
	struct build_open *o = xcalloc(1, sizeof(*o));
	o->b = b;
	b->started_at = now;
	int r = db_build_add_async(m->db, b->builderid, brid, w->workerid, m->masterid, now,
				   build_on_added, o);
	if (r < 0) {
		log_error("builder=%s cannot add build: %s", b->bcfg->name, db_errmsg(m->db));
		build_open_free(o);
		build_free(b);
		return NULL;
	}
	o->pending = 1;
	b->open = o;
	if (b->bcfg->nlocks)
		e->opening_locked++;
	r = db_build_inputs_async(m->db, bsid, build_on_inputs, o);
	if (r < 0) {
		o->inputs_r = r;
		o->inputs_err = xstrdup(db_errmsg(m->db));
	} else {
		o->pending++;
	}
	/* running from here: its worker's slot is taken */
	w->running++;
	b->next = e->builds;
	e->builds = b;
	return b;
}

void build_stop(struct build *b, const char *reason)
{
	if (b->finished || b->stop_requested)
		return;
	b->stop_requested = true;
	b->stop_reason = xstrdup(reason && *reason ? reason : "stopped");
	log_info("build=%lld stop requested: %s", (long long)b->buildid, b->stop_reason);
	if (build_locks_stop(b)) /* slice "locks": waiting for locks: ends CANCELLED */
		return;
	if (b->step)
		step_stop(b->step, b->stop_reason);
	/* between steps: the next step will not start */
}

static void build_free_cb(uv_handle_t *h)
{
	struct build *b = h->data;
	free(b);
}

void build_free(struct build *b)
{
	if (!b)
		return;
	if (b->open) {
		b->open->b = NULL; /* its answers arrive into nothing */
		build_open_end(b);
	}
	db_ids_unwait(b->e->m->db, &b->ids_wait);
	step_free(b->step);
	for (size_t i = 0; i < b->npatches; i++)
		db_patch_data_release(&b->patches[i]);
	free(b->patches);
	build_locks_release(b); /* slice "locks": every ending path frees the build */
	if (b->w)
		wconn_unref(b->w);
	buf_release(&b->text);
	free(b->stop_reason);
	free(b->db_error);
	free(b->merged);
	free(b->merged_bsids);
	json_decref(b->props);
	free(b->ss_branch);
	free(b->ss_revision);
	free(b->ss_repository);
	free(b->ss_project);
	free(b->ss_codebase);
	free(b->ss_all);
	logmask_set_free(b->maskset); /* after step_free: its maskers use it */
	config_unref(b->cfg);         /* slice "reconfig": may free a replaced generation */
	b->cfg = NULL;
	uv_close((uv_handle_t *)&b->interrupt_timer, build_free_cb);
}

void build_worker_lost(struct build *b)
{
	b->lost = true;
}
