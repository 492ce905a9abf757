/*
 * Schedulers: they receive every change and decide when to create
 * buildsets (single_branch, any_branch, periodic, nightly, force,
 * triggerable, dependent, try).  Their state (timers, classified changes,
 * last runs) persists across restarts in object_state ("sched:NAME"), written
 * in the same batch as the change or buildset that changed it, so a master
 * killed at any moment resumes exactly where its last commit left it.
 *
 * Time: sched_now() is the wall clock, plus an offset that only the test
 * hook (KILN_TEST_CLOCK=1, POST /api/v2/_test/clock) can advance.  Cron
 * expressions are evaluated in UTC.  Everything runs on the loop thread.
 */
#ifndef KILN_SCHED_H
#define KILN_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct change;
struct master;
struct sched;
struct db_sourcestamp;

/* Builds the configured schedulers and restores their stored state. */
int sched_new(struct master *m, struct sched **ret);
void sched_free(struct sched *s); /* NULL-safe */
/* On PostgreSQL the timed schedulers (periodic, nightly) start paused and
 * run only on the master holding the services' lease (masters.c): lead
 * true when it comes (each reads its state back, the last holder's next
 * run, then is armed), false when it goes.  On SQLite they run from the
 * start and this is never called. */
void sched_lead(struct sched *s, bool lead);
/* slice "reconfig": takes ncfg's schedulers (m->cfg is ncfg already and the
 * engine knows its builders), matched by name and kind: one whose
 * declaration is the same keeps everything (pending tree-stable timers,
 * the next periodic or nightly run); a changed one keeps its state and
 * computes its next timed run again from its last run; a new one starts
 * from its stored state (a scheduler named so before); a removed one stops
 * (its stored state stays).  Cannot fail. */
struct config;
void sched_reconfig(struct sched *s, const struct config *ncfg);

/* A change was stored (c->changeid set); called by change_add(). */
void sched_change_added(struct sched *s, const struct change *c);
/* Bracket the changes of one burst (one hook request, one poll): inside,
 * each scheduler's state is written and the timer re-armed once, at the
 * outermost sched_changes_end(), so N changes cost O(N), not O(N^2).
 * Nests; NULL-safe. */
void sched_changes_begin(struct sched *s);
void sched_changes_end(struct sched *s);
/* A buildset completed (for dependent schedulers and trigger steps).
 * results: the buildset's results, or RESULTS_NONE when the caller does not
 * know them (read the buildset then). */
void sched_buildset_completed(struct sched *s, int64_t bsid, int results);
/* A request of an incomplete buildset finished badly: the buildset will fail
 * (Buildbot's "first failure").  Fired once per buildset. */
void sched_buildset_failing(struct sched *s, int64_t bsid, int results);

/* The scheduler clock (wall clock plus the test offset). */
double sched_now(const struct sched *s);
/* Test hook: moves the clock forward and runs what became due.  -EPERM
 * unless the master runs with KILN_TEST_CLOCK=1. */
int sched_test_clock_advance(struct sched *s, double seconds);
bool sched_test_clock_enabled(const struct sched *s);

/* ---- force (sched-force.c) ---- */
/* Forces scheduler 'name' on builderids with Buildbot's force parameters
 * (reason, username, branch/revision/repository/project/codebase,
 * priority and the scheduler's typed params), validated: -EINVAL with
 * *ret_err (owned) naming the bad field.  KILN_ENOTFOUND: no such force
 * scheduler.  The buildset is written in the current batch. */
int sched_force(struct sched *s, const char *name, json_t *params, const int64_t *builderids,
		size_t n, int64_t *ret_bsid, int64_t *ret_brids, char **ret_err);
/* The checks sched_force() starts with, alone (no database): types and sizes of
 * every field (limits.h, "force and try"), the sourcestamp fields against c's
 * allow lists (or: branch/revision shaped like a ref, repository/project/
 * codebase empty or the configured value), property count, size and nesting.
 * -EINVAL with *ret_err (owned) naming the field. */
struct config_scheduler;
int sched_force_check(const struct config_scheduler *c, json_t *params, char **ret_err);
/* Looks like a ref name or revision: 1..KILN_FORCE_MAX_REF bytes of letters,
 * digits and ._/+-@~^:,= not starting with '-'. */
bool sched_force_ref_ok(const char *v);
/* At most max bytes, no control characters. */
bool sched_force_text_ok(const char *v, size_t max);
/* A string parameter of a force or try call (null or missing: *ret NULL):
 * a string of at most max bytes without NUL and, when text, without
 * control characters; *ret borrows from params.  -EINVAL with *ret_err
 * (owned) naming the parameter. */
int sched_param_string(json_t *params, const char *name, size_t max, bool text, const char **ret,
		       char **ret_err);

/* ---- trigger step (sched-trigger.c) ---- */
/* Called when a triggered buildset completes (results final). */
typedef void (*sched_wait_fn)(void *ud, int64_t bsid, int results);
/* Triggers triggerable scheduler 'name' from build parent_buildid: a
 * buildset with the given sourcestamp and properties ({"n": [v, src]},
 * borrowed).  ret_bsid set on success. */
int sched_trigger(struct sched *s, const char *name, int64_t parent_buildid,
		  const struct db_sourcestamp *ss, json_t *properties, int64_t *ret_bsid);
/* The same with every sourcestamp of the triggering build's buildset
 * (ss[0..nss), borrowed; db_buildset_sourcestamps gives them): they pass
 * through as given, and a codebases map on the scheduler adds its defaults
 * for the codebases they lack (Buildbot's Trigger step).  With one
 * sourcestamp and no map, exactly sched_trigger(). */
int sched_trigger_all(struct sched *s, const char *name, int64_t parent_buildid,
		      const struct db_sourcestamp *ss, size_t nss, json_t *properties,
		      int64_t *ret_bsid);
/* Calls fn(ud, bsid, results) once bsid completes; sched_unwait forgets
 * every wait registered with ud (the build went away). */
void sched_wait(struct sched *s, int64_t bsid, sched_wait_fn fn, void *ud);
void sched_unwait(struct sched *s, void *ud);

/* ---- try (sched-try.c) ---- */
struct sched_try_job {
	const char *scheduler; /* NULL: the only try scheduler */
	const char *token;     /* as sent by the client */
	const char *branch, *revision, *repository, *project, *codebase;
	const char *patch; /* the diff */
	size_t patch_len;
	int patch_level;
	const char *patch_subdir; /* may be NULL */
	const char *who, *comment;
	const char *const *builders; /* NULL: every builder of the scheduler */
	size_t nbuilders;
};
/* KILN_EAUTH on a bad token, KILN_ENOTFOUND for an unknown scheduler,
 * -EINVAL with *ret_err for bad input. */
int sched_try(struct sched *s, const struct sched_try_job *job, int64_t *ret_bsid, char **ret_err);
/* The types and sizes of a try call's params (before any of them is used):
 * strings where strings are expected, patch_level an integer 0..100,
 * builderNames a list of at most KILN_FORCE_MAX_BUILDER_NAMES strings, branch
 * and revision shaped like refs.  -EINVAL with *ret_err (owned) naming it. */
int sched_try_check(json_t *params, char **ret_err);

/* ---- enabled (slice "uichanges": /api/v2/schedulers) ---- */
/* How many schedulers are configured; the i-th's configuration (0-based, the
 * order of master.lua; NULL past the end) and whether it is enabled. */
size_t sched_count(const struct sched *s);
const struct config_scheduler *sched_config(const struct sched *s, size_t i);
bool sched_enabled(const struct sched *s, size_t i);
/* Enables or disables the i-th scheduler.  A disabled scheduler makes no
 * buildset: it ignores changes, its timers pass without building, and force,
 * try and trigger calls on it are refused.  Kept in its stored state (the
 * current database batch), so it survives a restart.  KILN_ENOTFOUND past
 * the end. */
int sched_set_enabled(struct sched *s, size_t i, bool enabled);

#endif
