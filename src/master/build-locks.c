/*
 * A build's builder-level locks (builder { locks = { ... } }): taken after
 * the build has started and before its first step, held until the build is
 * freed.  The distributor only starts a build whose locks are free on the
 * chosen worker (engine.c, locks_available), so waiting here is rare; while
 * it waits the build's state string says for what (locks_describe_waiting).
 * A stop or a lost worker ends the wait.  The manager is master/locks.c.
 */
#define LOG_SUBSYS "build"

#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/locks.h"
#include "master/master.h"

/* A failed state write ends the build EXCEPTION, as build.c's writes do. */
static void build_locks_db_check(struct build *b, int r, const char *what)
{
	if (r >= 0)
		return;
	struct db *db = b->e->m->db;
	log_error("build=%lld cannot %s: %s", (long long)b->buildid, what, db_errmsg(db));
	if (b->db_failed)
		return;
	b->db_failed = true;
	b->terminate = true;
	free(b->db_error);
	b->db_error = xasprintf("database write failed: cannot %s: %s", what, db_errmsg(db));
}

/* True while h waits (not yet held whole). */
static bool build_locks_waits(const struct lock_handle *h)
{
	return h && !locks_held(h);
}

/* Sets the build's state string to what h waits for (logged). */
static void build_locks_show_wait(struct build *b, const struct lock_handle *h)
{
	_cleanup_free_ char *state = locks_describe_waiting(h);
	log_info("build=%lld builder=%s %s", (long long)b->buildid, b->bcfg->name, state);
	build_locks_db_check(b, db_build_set_state(b->e->m->db, b->buildid, state), "set state");
}

/* Ends a wait (a stop, a lost worker): the builder's locks: no step runs
 * (always_run ones neither: they would run without the build's locks); a
 * step's locks: that step does not run.  Then the build goes on with
 * results folded in (build_run_next skips what a stopped or lost build
 * must not run). */
static void build_locks_give_up(struct build *b, int results)
{
	if (build_locks_waits(b->locks)) {
		locks_cancel(b->locks);
		b->locks = NULL;
		b->next_step = b->bcfg->nsteps;
	} else {
		locks_cancel(b->step_locks);
		b->step_locks = NULL;
		b->next_step = b->step_locks_idx + 1;
	}
	b->results = db_results_worst(b->results, results);
	b->locks_resume(b);
}

/* A set of b's (the builder's or a step's) is held: the build goes on. */
static void build_locks_held(void *ud)
{
	struct build *b = ud;
	log_info("build=%lld builder=%s got its locks", (long long)b->buildid, b->bcfg->name);
	build_locks_db_check(b, db_build_set_state(b->e->m->db, b->buildid, "building"),
			     "set state");
	b->locks_resume(b);
}

static char *build_locks_owner(const struct build *b, const struct config_step *s)
{
	if (s)
		return xasprintf("step '%s' of build %lld of builder '%s'", s->name,
				 (long long)b->number, b->bcfg->name);
	return xasprintf("build %lld of builder '%s'", (long long)b->number, b->bcfg->name);
}

bool build_locks_take(struct build *b, void (*resume)(struct build *))
{
	const struct config_builder *bc = b->bcfg;
	b->locks_resume = resume;
	if (!bc->nlocks)
		return true;
	_cleanup_free_ char *owner = build_locks_owner(b, NULL);
	int r = locks_acquire(b->e->locks, bc->locks, bc->nlocks, b->w->cfg->name, owner,
			      build_locks_held, b, &b->locks);
	if (r < 0) {
		/* config validation rules this out */
		log_error("build=%lld cannot take its locks: %s", (long long)b->buildid,
			  err_str(r));
		b->results = db_results_worst(b->results, RESULTS_EXCEPTION);
		b->terminate = true;
		b->next_step = bc->nsteps;
		return true;
	}
	if (r == 1)
		return true;
	build_locks_show_wait(b, b->locks);
	/* a failed write: the build goes on to end EXCEPTION at once (no
	 * step runs after one); freeing it gives the wait up */
	return b->db_failed;
}

void build_locks_step_end(struct build *b)
{
	if (b->step_locks && b->step_locks_idx != b->next_step)
		build_locks_release_step(b);
}

bool build_locks_take_step(struct build *b, const struct config_step *s)
{
	size_t idx = (size_t)(s - b->bcfg->steps);
	if (b->step_locks && b->step_locks_idx == idx)
		return true; /* woken: its locks are held */
	build_locks_release_step(b);
	if (!s->nlocks)
		return true;
	_cleanup_free_ char *owner = build_locks_owner(b, s);
	b->step_locks_idx = idx;
	int r = locks_acquire(b->e->locks, s->locks, s->nlocks, b->w->cfg->name, owner,
			      build_locks_held, b, &b->step_locks);
	if (r < 0) {
		log_error("build=%lld step '%s' cannot take its locks: %s", (long long)b->buildid,
			  s->name, err_str(r));
		return true; /* config validation rules this out */
	}
	if (r == 1)
		return true;
	/* build_run_next comes back to this step once the locks are held */
	b->next_step = idx;
	build_locks_show_wait(b, b->step_locks);
	if (b->db_failed)
		build_locks_give_up(b, RESULTS_EXCEPTION);
	return false;
}

bool build_locks_waiting(const struct build *b)
{
	return build_locks_waits(b->locks) || build_locks_waits(b->step_locks);
}

bool build_locks_stop(struct build *b)
{
	if (!build_locks_waiting(b) || b->e->stopping)
		return false; /* at shutdown the build is left to be retried */
	log_info("build=%lld stops waiting for locks", (long long)b->buildid);
	build_locks_give_up(b, RESULTS_CANCELLED);
	return true;
}

void build_locks_check_workers(struct engine *e)
{
	struct build *next;
	for (struct build *b = e->builds; b && locks_nwaiting(e->locks) > 0; b = next) {
		next = b->next;
		if (build_locks_waiting(b) && b->w->closed) {
			log_info("build=%lld lost its worker while waiting for locks",
				 (long long)b->buildid);
			b->lost = true;
			build_locks_give_up(b, RESULTS_RETRY);
		}
	}
}

void build_locks_release_step(struct build *b)
{
	locks_release(b->step_locks);
	b->step_locks = NULL;
}

void build_locks_release(struct build *b)
{
	build_locks_release_step(b);
	locks_release(b->locks);
	b->locks = NULL;
}
