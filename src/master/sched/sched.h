/*
 * Schedulers: they receive every change and decide when to create
 * buildsets (single_branch, any_branch, periodic, nightly, force,
 * triggerable, dependent, try).  Their state (timers, classified changes,
 * last runs) persists across restarts.
 */
#ifndef KILN_SCHED_H
#define KILN_SCHED_H

#include <stdint.h>

struct change;
struct master;
struct sched;

/* Builds the configured schedulers and restores their stored state. */
int sched_new(struct master *m, struct sched **ret);
void sched_free(struct sched *s); /* NULL-safe */

/* A change was stored (c->changeid set); called by change_add(). */
void sched_change_added(struct sched *s, const struct change *c);
/* A buildset completed (for dependent schedulers and trigger steps).
 * results: the buildset's results, or RESULTS_NONE when the caller does not
 * know them (read the buildset then). */
void sched_buildset_completed(struct sched *s, int64_t bsid, int results);

#endif
