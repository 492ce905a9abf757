/*
 * Private structures of the scheduler module (sched.c registry and
 * persistence; sched-branch.c, sched-timed.c, sched-force.c,
 * sched-trigger.c, sched-try.c).  Nothing outside src/master/sched/
 * includes this.
 */
#ifndef KILN_SCHED_INT_H
#define KILN_SCHED_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "common/cron.h"
#include "master/sched/sched.h"

struct config_scheduler;
struct db_sourcestamp;

/* One codebase's newest change in a pending entry (owned strings). */
struct sched_source {
	char *codebase, *branch, *revision, *repository, *project;
};

/* Changes waiting for one tree-stable timer (one per branch for any_branch;
 * one in all for single_branch and nightly). */
struct sched_pending {
	char *key;          /* owned: branch line key */
	double deadline;    /* when to build (sched_now), 0 = no timer running */
	bool important;     /* at least one important change */
	int64_t *changeids; /* owned; important changes, then (if wanted) others */
	size_t nchanges, changeids_alloc;
	/* the newest change's source (owned) */
	char *branch, *revision, *repository, *project, *codebase;
	/* with a codebases map: the newest change's source per codebase, in the
	 * map's order (at most KILN_MAX_CODEBASES; owned; NULL fields unset) */
	struct sched_source *sources;
	size_t nsources;
};

struct sched_one {
	struct sched *s;
	const struct config_scheduler *cfg; /* borrowed: m->cfg */
	char *state_name;                   /* owned: "sched:NAME" */
	int64_t *builderids;                /* owned */
	size_t nbuilders;
	struct sched_pending *pending;  /* owned array, sorted by key (bsearch) */
	size_t npending, pending_alloc; /* npending <= KILN_MAX_SCHED_BRANCHES */
	bool pending_full_warned;       /* the cap's warning was logged since it last had room */
	bool save_due;                  /* sched_save() deferred by a change batch */
	double next_run;                /* timed: when next (sched_now), 0 = not set */
	double last_run;
	struct cron cron;
	bool disabled; /* JSON-RPC "enable" false: makes no buildsets (slice "uichanges") */
};

struct sched_waiter {
	int64_t bsid;
	sched_wait_fn fn;
	void *ud;
};

struct sched {
	struct master *m;
	struct sched_one *all; /* owned, one per cfg->scheduler */
	size_t n;
	uv_timer_t timer; /* wakes at the earliest deadline */
	bool test_clock;
	double clock_offset;
	struct sched_waiter *waiters;
	size_t nwaiters, waiters_alloc;
	int64_t *failing; /* buildsets already reported failing (bounded) */
	size_t nfailing, failing_alloc;
	unsigned batch; /* sched_changes_begin() depth: saves and re-arming wait for the end */
	/* On PostgreSQL the timed schedulers (periodic, nightly) run on the
	 * master holding the services' lease only (sched_lead) */
	bool paused;
	unsigned gen;       /* bumped when the lease comes or goes */
	int reads;          /* state reads in flight (they hold the struct) */
	bool closed;        /* sched_free ran: s->all is gone, answers are dropped */
	bool handle_closed; /* the timer is closed: the last read frees it */
};

/* sched.c */
/* Writes one's state (current database batch); inside sched_changes_begin/end
 * it only marks it due, and sched_changes_end() writes it once. */
void sched_save(struct sched_one *o);
/* Re-arms the timer for the earliest deadline of all schedulers. */
void sched_arm(struct sched *s);
/* Creates a buildset for o's builders: reason, sourcestamps ss[0..nss)
 * (merged with o's codebases map: sched_sourcestamps), changes to link,
 * extra properties (borrowed, may be NULL), parent build (0 none). */
int sched_add_buildset(struct sched_one *o, const char *reason, const struct db_sourcestamp *ss,
		       size_t nss, const int64_t *changeids, size_t nchanges, json_t *extra_props,
		       int64_t parent_buildid, int priority, int64_t *ret_bsid);
/* Same on chosen builders; ret_brids (may be NULL): caller's array of nbuilders. */
int sched_add_buildset_on(struct sched_one *o, const int64_t *builderids, size_t nbuilders,
			  const char *reason, const struct db_sourcestamp *ss, size_t nss,
			  const int64_t *changeids, size_t nchanges, json_t *extra_props,
			  int64_t parent_buildid, int priority, int64_t *ret_bsid,
			  int64_t *ret_brids);
/* The sourcestamps of a buildset of o, as Buildbot's
 * addBuildsetForSourceStampsWithDefaults makes them: without a codebases
 * map, given[0..ngiven) as is (one empty sourcestamp when none); with one,
 * one per codebase of the map (given's entry for that codebase, else the
 * map's repository, branch and revision and o's project), then given's
 * other codebases.  *ret (owned array; strings borrowed from given and
 * o->cfg) holds the returned count, at least 1; -EINVAL if given names a
 * codebase twice. */
int sched_sourcestamps(const struct sched_one *o, const struct db_sourcestamp *given, size_t ngiven,
		       struct db_sourcestamp **ret);
struct sched_one *sched_find(struct sched *s, const char *name);
void sched_pending_release(struct sched_pending *p);

/* sched-branch.c: single_branch, any_branch (and nightly's change tracking) */
void sched_branch_change(struct sched_one *o, const struct change *c);
void sched_branch_tick(struct sched_one *o, double now);
json_t *sched_pending_to_json(const struct sched_one *o);
/* p's sources as sourcestamps into ret (room for max(1, p->nsources);
 * strings borrowed from p): one per codebase with a change when o has a
 * codebases map, else the newest change's.  Returns how many. */
size_t sched_pending_sources(const struct sched_pending *p, struct db_sourcestamp *ret);
void sched_pending_from_json(struct sched_one *o, json_t *arr);

/* sched-timed.c: periodic, nightly */
void sched_timed_start(struct sched_one *o, double now);
void sched_timed_tick(struct sched_one *o, double now);

/* sched-trigger.c: dependent */
void sched_dependent_completed(struct sched *s, int64_t bsid, int results);

#endif
